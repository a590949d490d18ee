/* test_capture_core.c — the capture core's failure reports (agent/capture/core.c): when BPF
 * cannot be loaded, the error names the real cause (a seccomp filter, a missing capability),
 * and libbpf's own messages reach the terminal only with --verbose. Each case runs in a child
 * process, since a seccomp filter or dropped capabilities cannot be undone. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/core.h"
#include "tests/helpers/run.h"
#include "tests/helpers/seccomp_deny.h"

/* Reads fd to its end into buf (NUL-terminated, cut at len - 1) and closes it. */
static void read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
}

/* Runs fn in a child and returns what it wrote to its pipe (malloc'd). */
static char *in_child(void (*fn)(int out_fd))
{
	static char buf[4096];
	int fds[2], status;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		fn(fds[1]);
		_exit(0);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", buf);
	return strdup(buf);
}

static void report(int fd, const struct gs_error *err)
{
	if (write(fd, err->msg, strlen(err->msg)) < 0)
		_exit(3);
}

static void explain_under_seccomp(int fd)
{
	struct gs_error err = {0};

	if (seccomp_deny_syscall(SYS_bpf) < 0)
		_exit(2);
	capture_bpf_error(&err, -EPERM, "load BPF program cpu");
	report(fd, &err);
}

Test(capture_core, seccomp_named_as_the_cause)
{
	char *msg = in_child(explain_under_seccomp);

	cr_assert(strstr(msg, "load BPF program cpu: "), "%s", msg);
	cr_assert(strstr(msg, "seccomp"), "the cause is not named: %s", msg);
	cr_assert(!strstr(msg, "verifier"), "%s", msg);
	free(msg);
}

/* A profile that allows bpf() but not perf_event_open(): the refused call is named. */
static void explain_perf_under_seccomp(int fd)
{
	struct gs_error err = {0};

	if (seccomp_deny_syscall(SYS_perf_event_open) < 0)
		_exit(2);
	capture_bpf_error(&err, -EPERM, "perf_event_open");
	report(fd, &err);
}

Test(capture_core, seccomp_refusing_perf_event_open_named)
{
	char *msg = in_child(explain_perf_under_seccomp);

	cr_assert(strstr(msg, "perf_event_open() is refused by this process's seccomp filter"),
		  "%s", msg);
	cr_assert(!strstr(msg, "verifier"), "%s", msg);
	free(msg);
}

static void explain_without_caps(int fd)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	struct gs_error err = {0};

	if (syscall(SYS_capset, &hdr, data) < 0)
		_exit(2);
	capture_bpf_error(&err, -EPERM, "load BPF program cpu");
	report(fd, &err);
}

Test(capture_core, missing_capability_named)
{
	char *msg = in_child(explain_without_caps);

	cr_assert(strstr(msg, "permission denied"), "%s", msg);
	cr_assert(strstr(msg, "CAP_BPF"), "%s", msg);
	free(msg);
}

static void explain_privileged(int fd)
{
	struct gs_error err = {0};

	capture_bpf_error(&err, -EACCES, "load BPF program block");
	report(fd, &err);
}

Test(capture_core, verifier_or_lsm_when_privileged_and_unfiltered)
{
	char *msg = in_child(explain_privileged);

	cr_assert(strstr(msg, "rejected by the kernel"), "%s", msg);
	cr_assert(strstr(msg, "--verbose"), "%s", msg);
	cr_assert(!strstr(msg, "seccomp"), "%s", msg);
	free(msg);
}

/* goscope itself under a filter that refuses bpf(), as under a container runtime's default
 * seccomp profile: exit 1, the error names seccomp, and libbpf's messages stay off the
 * terminal unless --verbose. */
static int goscope_under_seccomp(const char *extra, char **out)
{
	char pidarg[32], *argv[12];
	int fds[2], status, argc = 0;
	static char buf[16384];
	pid_t pid;

	snprintf(pidarg, sizeof(pidarg), "%d", getpid());
	argv[argc++] = (char *)goscope_bin();
	argv[argc++] = "cpu";
	argv[argc++] = "--pid";
	argv[argc++] = pidarg;
	argv[argc++] = "--duration";
	argv[argc++] = "1s";
	argv[argc++] = "-o";
	argv[argc++] = "/dev/null";
	if (extra)
		argv[argc++] = (char *)extra;
	argv[argc] = NULL;
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		dup2(fds[1], 1);
		close(fds[0]);
		if (seccomp_deny_syscall(SYS_bpf) < 0)
			_exit(120);
		execv(argv[0], argv);
		_exit(121);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	waitpid(pid, &status, 0);
	*out = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(capture_core, goscope_cpu_under_seccomp_says_so)
{
	char *out;
	int rc = goscope_under_seccomp(NULL, &out);

	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "seccomp"), "%s", out);
	cr_assert(!strstr(out, "libbpf:"), "libbpf's messages without --verbose: %s", out);
	rc = goscope_under_seccomp("--verbose", &out);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "seccomp"), "%s", out);
	cr_assert(strstr(out, "libbpf:"), "--verbose shows no libbpf message: %s", out);
}
