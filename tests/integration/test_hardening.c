/* test_hardening.c — what a hostile user can make goscope do through the command line:
 * names with terminal escapes in human-readable output, targets that are not processes
 * (kernel threads, thread ids), several --pid where one is taken, durations that are NaN,
 * infinite or round to zero, arguments that are not addresses. Each was a defect found by
 * trying goscope as a hostile tester would; each case failed before its fix. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

#define ESC "\033"

static int goscope(const char *args, char **out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "%s %s", goscope_bin(), args);
	return run_capture(cmd, 1, out, NULL);
}

/* Starts the idle test program and waits for its first line. */
static void start_idle(struct gotarget *t, char *path)
{
	char *argv[] = {path, NULL}, line[128];

	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 10000), 0);
}

Test(hardening, terminal_escapes_escaped, .timeout = 120)
{
	char built[4096], dir[256], hostile[512], cmd[8192], args[1024], *out;
	struct gotarget t;

	GOTARGET_BUILD_OR_SKIP(built, "idle", "1.27", "default");
	test_tmpdir(dir, sizeof(dir));
	/* A binary whose name reverses root's terminal. */
	snprintf(hostile, sizeof(hostile), "%s/" ESC "[7mREV", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", built, hostile);
	cr_assert_eq(system(cmd), 0);
	start_idle(&t, hostile);

	cr_assert_eq(goscope("ps", &out), 0, "%s", out);
	cr_assert_null(strchr(out, '\033'), "raw ESC in ps output");
	cr_assert(strstr(out, "\\x1b[7mREV"), "%s", out);
	free(out);

	snprintf(args, sizeof(args), "info '%s'", hostile);
	cr_assert_eq(goscope(args, &out), 0, "%s", out);
	cr_assert_null(strchr(out, '\033'), "raw ESC in info output");
	cr_assert(strstr(out, "\\x1b[7mREV"), "%s", out);
	free(out);

	/* Error messages quote paths too. */
	snprintf(args, sizeof(args), "info '%s/nothing" ESC "[7m'", dir);
	cr_assert_neq(goscope(args, &out), 0, "%s", out);
	cr_assert_null(strchr(out, '\033'), "raw ESC in an error message: %s", out);
	free(out);
	gotarget_stop(&t, 5000);
}

Test(hardening, kernel_thread_and_thread_id_refused, .timeout = 60)
{
	char path[4096], args[256], tdir[64], *out;
	struct gotarget t;
	struct dirent *d;
	int tid = 0;
	DIR *dp;

	cr_assert_eq(goscope("cpu --pid 2 --duration 1s -o /dev/null", &out), 2, "%s", out);
	cr_assert(strstr(out, "kernel thread"), "%s", out);
	free(out);

	GOTARGET_BUILD_OR_SKIP(path, "idle", "1.27", "default");
	start_idle(&t, path);
	snprintf(tdir, sizeof(tdir), "/proc/%d/task", t.pid);
	dp = opendir(tdir);
	cr_assert(dp);
	while ((d = readdir(dp))) {
		int id = atoi(d->d_name);

		if (id > 0 && id != t.pid)
			tid = id;
	}
	closedir(dp);
	cr_assert_gt(tid, 0, "a Go program runs several threads");
	snprintf(args, sizeof(args), "cpu --pid %d --duration 1s -o /dev/null", tid);
	cr_assert_eq(goscope(args, &out), 2, "%s", out);
	cr_assert(strstr(out, "thread of process"), "%s", out);
	free(out);
	snprintf(args, sizeof(args), "block --pid %d --duration 1s -o /dev/null", tid);
	cr_assert_eq(goscope(args, &out), 2, "%s", out);
	cr_assert(strstr(out, "thread of process"), "%s", out);
	free(out);
	/* block captures one process: a second --pid is refused, not silently preferred. */
	snprintf(args, sizeof(args), "block --pid %d --pid %d --duration 1s -o /dev/null", t.pid,
		 getpid());
	cr_assert_eq(goscope(args, &out), 2, "%s", out);
	free(out);
	/* symbolize answers every input but fails on one that is not an address. */
	snprintf(args, sizeof(args), "symbolize --pid %d 0x1 zz", t.pid);
	cr_assert_eq(goscope(args, &out), 2, "%s", out);
	cr_assert(strstr(out, "'zz' is not a hex address"), "%s", out);
	free(out);
	gotarget_stop(&t, 5000);
}

Test(hardening, bad_durations_refused)
{
	static const char *const bad[] = {
		"cpu --pid 1 --duration nan",	   "cpu --pid 1 --duration inf",
		"cpu --pid 1 --duration 1e-300",   "cpu --pid 1 --duration -1s",
		"block --pid 1 --min-delay nan",   "block --pid 1 --duration 1e-12s",
		"block --pid 1 --min-delay infms", NULL};
	char *out;

	for (int i = 0; bad[i]; i++) {
		cr_assert_eq(goscope(bad[i], &out), 2, "%s: %s", bad[i], out);
		cr_assert(strstr(out, "bad "), "%s: %s", bad[i], out);
		free(out);
	}
}

/* A user with CAP_BPF and CAP_PERFMON but not root: another user's process cannot be read, and
 * goscope says what it lacks instead of a bare "Permission denied" or libbpf's
 * RLIMIT_MEMLOCK hint. */
Test(hardening, other_users_process_explained, .timeout = 60)
{
	static const char *const cmds[] = {"block --pid %d --duration 1s -o /dev/null",
					   "cpu --pid %d --duration 1s -o /dev/null",
					   "symbolize --pid %d 0x401000", NULL};
	char path[4096], fmt[256], args[512], *out;
	struct gotarget t;

	GOTARGET_BUILD_OR_SKIP(path, "idle", "1.27", "default");
	start_idle(&t, path);
	for (int i = 0; cmds[i]; i++) {
		snprintf(fmt, sizeof(fmt),
			 "setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps "
			 "+bpf,+perfmon --ambient-caps +bpf,+perfmon %s %s",
			 goscope_bin(), cmds[i]);
		snprintf(args, sizeof(args), fmt, t.pid);
		cr_assert_eq(run_capture(args, 1, &out, NULL), 1, "%s: %s", args, out);
		cr_assert(strstr(out, "cannot read the executable"), "%s: %s", args, out);
		cr_assert(strstr(out, "CAP_SYS_PTRACE"), "%s: %s", args, out);
		cr_assert_null(strstr(out, "RLIMIT_MEMLOCK"), "%s: %s", args, out);
		free(out);
	}
	gotarget_stop(&t, 5000);
}

/* An output path that cannot be written fails before the capture, not after it. */
Test(hardening, bad_output_fails_before_capturing, .timeout = 60)
{
	static const char *const cmds[] = {"cpu --pid %d --duration 30s -o /nonexistent/x.pb.gz",
					   "block --pid %d --duration 30s -o /nonexistent/x.pb.gz",
					   NULL};
	char path[4096], args[512], *out;
	struct gotarget t;
	struct timespec t0, t1;

	GOTARGET_BUILD_OR_SKIP(path, "idle", "1.27", "default");
	start_idle(&t, path);
	for (int i = 0; cmds[i]; i++) {
		snprintf(args, sizeof(args), cmds[i], t.pid);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cr_assert_eq(goscope(args, &out), 1, "%s: %s", args, out);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		cr_assert(strstr(out, "/nonexistent/x.pb.gz"), "%s", out);
		cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "%s: failed only after the capture", args);
		free(out);
	}
	gotarget_stop(&t, 5000);
}
