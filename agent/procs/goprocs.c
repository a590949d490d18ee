/* goprocs.c — which processes are Go programs: read /proc/PID/exe (through /proc, so
 * processes in other mount namespaces work) and look for Go build info, falling back to the
 * pclntab. Processes come and go during a scan; those are counted, never fatal. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs/goprocs.h"
#include "procs/proc.h"

int goproc_inspect(const char *proc_root, pid_t pid, struct goproc *p, struct gs_error *err)
{
	const struct gs_binary_info *info;
	struct gs_binary *bin;
	char path[64];
	ssize_t n;
	int fd, rc;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(path, sizeof(path), "%s/%d/exe", proc_root, pid);
	n = readlink(path, p->exe, sizeof(p->exe) - 1);
	if (n < 0) {
		/* Kernel threads have no exe (ENOENT); a vanished process gives ENOENT too. */
		if (errno == ENOENT)
			return 0;
		return gs_error_set(err, -errno, "pid %d: %s", pid, strerror(errno));
	}
	p->exe[n] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ESRCH)
			return gs_error_set(err, -ESRCH, "pid %d exited", pid);
		return gs_error_set(err, -errno, "pid %d: open exe: %s", pid, strerror(errno));
	}
	rc = gs_binary_open_fd(fd, p->exe, &bin, err);
	close(fd);
	if (rc < 0)
		return rc == -EINVAL || rc == -ENOTSUP ? 0 : rc; /* not an ELF we read: not Go */
	info = gs_binary_info(bin);
	if (!info->is_go) {
		gs_binary_close(bin);
		return 0;
	}
	proc_comm(proc_root, pid, p->comm, sizeof(p->comm));
	if (info->has_buildinfo) {
		snprintf(p->go_version, sizeof(p->go_version), "%s", info->buildinfo.go_version);
		snprintf(p->path, sizeof(p->path), "%s", info->buildinfo.path);
		snprintf(p->mod_path, sizeof(p->mod_path), "%s", info->buildinfo.mod_path);
		snprintf(p->mod_version, sizeof(p->mod_version), "%s", info->buildinfo.mod_version);
	}
	p->stripped = info->stripped;
	p->pie = info->pie;
	gs_binary_close(bin);
	return 1;
}

static bool is_pid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

int goproc_scan_all(const char *proc_root, struct goproc_scan *scan, struct gs_error *err)
{
	return goproc_scan_some(proc_root, NULL, NULL, scan, err);
}

int goproc_scan_some(const char *proc_root, bool (*skip)(pid_t pid, void *arg), void *arg,
		     struct goproc_scan *scan, struct gs_error *err)
{
	struct dirent *de;
	DIR *dir;

	memset(scan, 0, sizeof(*scan));
	dir = opendir(proc_root);
	if (!dir)
		return gs_error_set(err, -errno, "open %s: %s", proc_root, strerror(errno));
	while ((de = readdir(dir)) != NULL) {
		struct gs_error perr = {0};
		struct goproc p;
		int rc;

		if (!is_pid_name(de->d_name))
			continue;
		if (skip && skip((pid_t)atoi(de->d_name), arg))
			continue;
		rc = goproc_inspect(proc_root, (pid_t)atoi(de->d_name), &p, &perr);
		if (rc == -ESRCH || rc == -ENOENT) {
			scan->vanished++;
			continue;
		}
		if (rc < 0) {
			scan->unreadable++;
			continue;
		}
		if (rc == 0)
			continue;
		if (scan->n == scan->cap) {
			size_t cap = scan->cap ? scan->cap * 2 : 64;
			struct goproc *np = realloc(scan->procs, cap * sizeof(*np));

			if (!np) {
				closedir(dir);
				return gs_error_set(err, -ENOMEM, "out of memory");
			}
			scan->procs = np;
			scan->cap = cap;
		}
		scan->procs[scan->n++] = p;
	}
	closedir(dir);
	return 0;
}

void goproc_scan_free(struct goproc_scan *scan)
{
	free(scan->procs);
	memset(scan, 0, sizeof(*scan));
}
