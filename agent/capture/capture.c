/* capture.c — shared plumbing of one-shot captures (see capture.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/capture.h"

volatile sig_atomic_t capture_stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	capture_stop_requested = 1;
}

void capture_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool capture_pid_alive(pid_t pid)
{
	char path[64], buf[256], *paren;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may contain spaces and parentheses; the state follows the
	 * last ')'. */
	paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ')
		return false;
	return paren[2] != 'Z' && paren[2] != 'X';
}

int capture_check_pid(pid_t pid, struct gs_error *err)
{
	if (!capture_pid_alive(pid))
		return gs_error_set(err, -ESRCH, "no such process: %d", pid);
	return 0;
}

uint64_t capture_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t capture_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int capture_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v, mult = 1e9;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1e9;
	else if (strcmp(end, "ms") == 0)
		mult = 1e6;
	else if (strcmp(end, "us") == 0)
		mult = 1e3;
	else if (strcmp(end, "m") == 0)
		mult = 60e9;
	else if (strcmp(end, "h") == 0)
		mult = 3600e9;
	else
		return -EINVAL;
	if (v * mult > 1e18)
		return -EINVAL;
	*ns = (uint64_t)(v * mult);
	return 0;
}

/* Whether this process has the capability bit (from /proc/self/status CapEff). */
static bool has_cap(int bit)
{
	char line[256];
	unsigned long long caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0)
			caps = strtoull(line + 7, NULL, 16);
	}
	fclose(f);
	return caps & (1ULL << bit);
}

#define CAP_BIT_SYS_ADMIN 21
#define CAP_BIT_PERFMON 38
#define CAP_BIT_BPF 39

int capture_permission_error(struct gs_error *err, int code, const char *what)
{
	bool privileged = has_cap(CAP_BIT_SYS_ADMIN) ||
			  (has_cap(CAP_BIT_BPF) && has_cap(CAP_BIT_PERFMON));

	if ((code == -EPERM || code == -EACCES) && privileged)
		return gs_error_set(err, code,
				    "%s: rejected by the kernel (BPF verifier or LSM policy; "
				    "see the log above)",
				    what);
	if (code == -EPERM || code == -EACCES)
		return gs_error_set(err, code,
				    "%s: permission denied: goscope needs root or CAP_BPF, "
				    "CAP_PERFMON and CAP_SYS_PTRACE (see 'goscope version')",
				    what);
	return gs_error_set(err, code, "%s: %s", what, strerror(-code));
}
