/* run.c — command runners for integration tests (see run.h). */
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

int run_capture(const char *cmd, int merge_stderr, char **out, size_t *len)
{
	char *full = NULL, *buf = NULL;
	size_t cap = 0, n = 0;
	FILE *p;
	int status;

	if (asprintf(&full, "%s%s", cmd, merge_stderr ? " 2>&1" : "") < 0)
		return -1;
	p = popen(full, "r");
	free(full);
	if (!p)
		return -1;
	for (;;) {
		size_t r;

		if (cap - n < 65536) {
			char *nb = realloc(buf, cap + 262144);

			if (!nb)
				break;
			buf = nb;
			cap += 262144;
		}
		r = fread(buf + n, 1, cap - n - 1, p);
		if (r == 0)
			break;
		n += r;
	}
	if (buf)
		buf[n] = '\0';
	status = pclose(p);
	if (out)
		*out = buf ? buf : strdup("");
	else
		free(buf);
	if (len)
		*len = n;
	if (status < 0)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

const char *goscope_bin(void)
{
	const char *b = getenv("GOSCOPE_BIN");

	return b && *b ? b : "build/goscope";
}

const char *go_tool_path(const char *toolchain, char *buf, size_t len)
{
	snprintf(buf, len, "/usr/lib/go-%s/bin/go", toolchain);
	return access(buf, X_OK) == 0 ? buf : NULL;
}

char *test_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/goscope-test-XXXXXX");
	return mkdtemp(buf);
}

int fd_count(pid_t pid, const char *prefix)
{
	char dir[64], path[384], target[256];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (pid)
		snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	else
		snprintf(dir, sizeof(dir), "/proc/self/fd");
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		n += strncmp(target, prefix, strlen(prefix)) == 0;
	}
	closedir(d);
	return n;
}

pid_t spawn_argv(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int wait_exit_code(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int held_prog_ids(pid_t pid, unsigned int *ids, int max)
{
	char dir[64], path[384], line[256];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		unsigned int id;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			bool seen = false;

			if (sscanf(line, "prog_id: %u", &id) != 1)
				continue;
			for (int i = 0; i < n && i < max; i++)
				seen |= ids[i] == id;
			if (!seen && n < max)
				ids[n] = id;
			n += !seen;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

int prog_id_loaded(unsigned int id)
{
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return errno != ENOENT;
	close(fd);
	return 1;
}
