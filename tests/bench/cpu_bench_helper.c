/* cpu_bench_helper.c — runs one process for the cpu_overhead benchmark (tests/bench/run.sh)
 * and reports what it cost.
 *
 *   cpu_bench_helper [--bpf] -o REPORT -- CMD [ARG...]
 *
 * Runs CMD (stdin, stdout and stderr inherited), waits for it with wait4 and writes to REPORT:
 *
 *   rusage user_ms=... sys_ms=... wall_ms=... maxrss_kb=... status=...
 *
 * (user and sys of the whole process, every thread, and of any children it waited for).
 *
 * With --bpf, CMD is a BPF loader (goscope): while it starts, the helper watches
 * /proc/PID/fdinfo for BPF program fds and duplicates them (pidfd_getfd), so the programs
 * outlive CMD's exit; after CMD exited it reads each program's final run_time_ns / run_cnt
 * with `bpftool prog show id ID` (and from its own fdinfo, as a cross-check) and adds
 *
 *   bpf id=... name=... run_time_ns=... run_cnt=... fdinfo_run_time_ns=... fdinfo_run_cnt=...
 *
 * per program. The counters only move while the sysctl kernel.bpf_stats_enabled is 1.
 * The watch polls every 5 ms only during CMD's start (until a BPF link shows up, then 200 ms
 * more), then the helper sleeps in wait4. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROGS 64

struct prog {
	unsigned id;
	int fd; /* our duplicate */
};

static struct prog progs[MAX_PROGS];
static int nprogs;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Value of "key:\tNUMBER" in an fdinfo text; -1 when absent. */
static long long fdinfo_value(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			return strtoll(p + klen + 1, NULL, 10);
	}
	return -1;
}

static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
	return 0;
}

/* One pass over the child's fds: duplicates BPF programs not seen yet. Returns the number
 * of BPF link fds the child holds. */
static int scan(pid_t pid, int pidfd)
{
	char dir[64], path[384], text[4096];
	struct dirent *de;
	int links = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		long long id;
		int fd, dup;
		bool seen = false;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (read_text(path, text, sizeof(text)) < 0)
			continue;
		if (strstr(text, "link_type:"))
			links++;
		if (!strstr(text, "prog_tag:"))
			continue;
		id = fdinfo_value(text, "prog_id");
		if (id <= 0)
			continue;
		for (int i = 0; i < nprogs; i++)
			seen |= progs[i].id == (unsigned)id;
		if (seen || nprogs == MAX_PROGS)
			continue;
		fd = atoi(de->d_name);
		dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (dup < 0) {
			fprintf(stderr, "cpu_bench_helper: pidfd_getfd(%d): %s\n", fd,
				strerror(errno));
			continue;
		}
		progs[nprogs].id = (unsigned)id;
		progs[nprogs].fd = dup;
		nprogs++;
	}
	closedir(d);
	return links;
}

static void report_bpf(FILE *out)
{
	for (int i = 0; i < nprogs; i++) {
		char path[64], text[4096], cmd[96], line[1024], name[128] = "?";
		long long rt = -1, rc = -1, frt, frc;
		FILE *p;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", progs[i].fd);
		text[0] = 0;
		read_text(path, text, sizeof(text));
		frt = fdinfo_value(text, "run_time_ns");
		frc = fdinfo_value(text, "run_cnt");
		/* "ID: TYPE  name NAME  tag ...  run_time_ns N run_cnt M" */
		snprintf(cmd, sizeof(cmd), "bpftool prog show id %u 2>&1", progs[i].id);
		p = popen(cmd, "r");
		while (p && fgets(line, sizeof(line), p)) {
			char *s;

			if ((s = strstr(line, " name ")))
				sscanf(s + 6, "%127s", name);
			if ((s = strstr(line, "run_time_ns ")))
				rt = strtoll(s + 12, NULL, 10);
			if ((s = strstr(line, "run_cnt ")))
				rc = strtoll(s + 8, NULL, 10);
		}
		if (p)
			pclose(p);
		fprintf(out,
			"bpf id=%u name=%s run_time_ns=%lld run_cnt=%lld fdinfo_run_time_ns=%lld "
			"fdinfo_run_cnt=%lld\n",
			progs[i].id, name, rt < 0 ? frt : rt, rc < 0 ? frc : rc, frt, frc);
		close(progs[i].fd);
	}
}

int main(int argc, char **argv)
{
	const char *report = NULL;
	bool bpf = false;
	struct rusage ru;
	double t0, seen_link = -1;
	int i, st, pidfd = -1;
	pid_t pid;
	FILE *out;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bpf") == 0) {
			bpf = true;
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			report = argv[++i];
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			break;
		}
	}
	if (!report || i >= argc) {
		fprintf(stderr, "usage: cpu_bench_helper [--bpf] -o REPORT -- CMD [ARG...]\n");
		return 2;
	}
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[i], argv + i);
		perror(argv[i]);
		_exit(127);
	}
	if (bpf) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0)
			fprintf(stderr, "cpu_bench_helper: pidfd_open: %s\n", strerror(errno));
	}
	while (pidfd >= 0) {
		int links = scan(pid, pidfd);
		siginfo_t si = {0};

		/* Exited already? (WNOWAIT: wait4 below reaps it and gets the rusage.) */
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid)
			break;
		if (links > 0 && seen_link < 0)
			seen_link = now_ms();
		if (seen_link >= 0 && now_ms() - seen_link > 200)
			break;
		usleep(5000);
	}
	if (wait4(pid, &st, 0, &ru) < 0) {
		perror("wait4");
		return 1;
	}
	out = fopen(report, "w");
	if (!out) {
		perror(report);
		return 1;
	}
	fprintf(out, "rusage user_ms=%.1f sys_ms=%.1f wall_ms=%.1f maxrss_kb=%ld status=%d\n",
		ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
		ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3, now_ms() - t0, ru.ru_maxrss,
		WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	if (bpf)
		report_bpf(out);
	fclose(out);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
