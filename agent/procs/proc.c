/* proc.c — the /proc parsers (see proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procs/proc.h"

#define NSEC_PER_SEC 1000000000ULL
#define STAT_LINE_MAX 2048 /* comm is at most 64 bytes; the rest is numbers */

/* Reads a small /proc file into buf (NUL-terminated); bytes read or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

int proc_stat_parse(const char *line, struct proc_stat *st)
{
	unsigned long long ut, stm, start;
	const char *paren;
	unsigned flags;
	char state;
	int ppid;

	/* "pid (comm) S ppid ...": comm may contain spaces and parentheses, so the fields
	 * start after the last ')'. Fields 3.. per proc(5): state ppid pgrp session tty_nr
	 * tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	 * num_threads itrealvalue starttime. */
	paren = strrchr(line, ')');
	if (!paren || paren[1] != ' ')
		return -EINVAL;
	if (sscanf(paren + 2,
		   "%c %d %*d %*d %*d %*d %u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
		   "%*d %llu",
		   &state, &ppid, &flags, &ut, &stm, &start) != 6)
		return -EINVAL;
	*st = (struct proc_stat){.state = state,
				 .ppid = ppid,
				 .utime_ticks = ut,
				 .stime_ticks = stm,
				 .start_ticks = start,
				 .flags = flags};
	return 0;
}

int proc_stat_read(const char *proc_root, pid_t pid, struct proc_stat *st)
{
	char path[128], buf[STAT_LINE_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	return proc_stat_parse(buf, st);
}

bool proc_alive(pid_t pid)
{
	struct proc_stat st;

	if (pid <= 0 || proc_stat_read("/proc", pid, &st) < 0)
		return false;
	return st.state != 'Z' && st.state != 'X';
}

int proc_check_alive(pid_t pid, struct gs_error *err)
{
	if (!proc_alive(pid))
		return gs_error_set(err, -ESRCH, "no such process: %d", pid);
	return 0;
}

uint64_t proc_cpu_ns(pid_t pid)
{
	struct proc_stat st;
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || proc_stat_read("/proc", pid, &st) < 0)
		return 0;
	return (st.utime_ticks + st.stime_ticks) * (NSEC_PER_SEC / (uint64_t)hz);
}

pid_t proc_tgid(pid_t tid)
{
	char path[64], buf[4096], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (pid_t)n;
	p = strstr(buf, "\nTgid:");
	if (!p)
		return -EINVAL;
	return (pid_t)strtol(p + sizeof("\nTgid:") - 1, NULL, 10);
}

/* The capabilities a capture needs that this process lacks, comma-separated. */
static void missing_caps(char *out, size_t len)
{
	static const struct {
		int cap;
		const char *name;
	} need[] = {{PROC_CAP_BPF, "CAP_BPF"},
		    {PROC_CAP_PERFMON, "CAP_PERFMON"},
		    {PROC_CAP_SYS_PTRACE, "CAP_SYS_PTRACE"},
		    {PROC_CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"}};
	struct proc_self_status st;
	size_t used = 0;

	out[0] = '\0';
	if (proc_self_status(&st) < 0)
		st.cap_eff = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		bool have = st.cap_eff & (1ULL << need[i].cap);

		/* CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON. */
		if (need[i].cap == PROC_CAP_BPF || need[i].cap == PROC_CAP_PERFMON)
			have |= (st.cap_eff & (1ULL << PROC_CAP_SYS_ADMIN)) != 0;
		if (!have && used + strlen(need[i].name) + 3 < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "",
						 need[i].name);
	}
}

int proc_check_target(pid_t pid, struct gs_error *err)
{
	struct proc_stat st;
	char comm[64], path[64], lacks[128];
	struct stat sb;
	pid_t tgid;
	int fd, e;

	if (proc_stat_read("/proc", pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
		return gs_error_set(err, -ESRCH, "no such process: %d", pid);
	proc_comm("/proc", pid, comm, sizeof(comm));
	if (st.flags & PROC_PF_KTHREAD)
		return gs_error_set(err, -EINVAL,
				    "pid %d is a kernel thread (%s), not a user-space process", pid,
				    comm);
	tgid = proc_tgid(pid);
	if (tgid > 0 && tgid != pid)
		return gs_error_set(err, -EINVAL,
				    "%d is a thread of process %d (%s): give the process id", pid,
				    tgid, comm);
	/* Everything goscope does with a target starts from its executable. */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		e = -errno;
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (stat(path, &sb) < 0)
			sb.st_uid = (uid_t)-1;
		missing_caps(lacks, sizeof(lacks));
		return gs_error_set(
			err, e,
			"cannot read the executable of process %d (%s, uid %d): to profile "
			"another user's process goscope needs root, or the capabilities it "
			"lacks: %s (see 'goscope version')",
			pid, comm, (int)sb.st_uid, lacks);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

void proc_comm(const char *proc_root, pid_t pid, char *out, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%d/comm", proc_root, pid);
	if (read_small(path, out, len) < 0)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

int proc_self_status(struct proc_self_status *st)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	*st = (struct proc_self_status){.seccomp = -1};
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0)
			st->cap_eff = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "Seccomp:", 8) == 0)
			st->seccomp = atoi(line + 8);
	}
	fclose(f);
	return 0;
}

bool proc_self_has_cap(int cap)
{
	struct proc_self_status st;

	return proc_self_status(&st) == 0 && (st.cap_eff & (1ULL << cap));
}
