/* test_discover.c — the agent's process discovery (agent/daemon/discover.c) with the real exec
 * watcher (bpf/procwatch.bpf.c) on the real /proc: a process exec'd after discover_open is
 * reported within 2 s with its /proc start time, and again when it execs another program; the
 * first scan reports the processes that existed before; rescans alone (no_exec_watch) find new
 * processes; known() processes are never reported by a scan; close detaches everything. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/core.h"
#include "daemon/discover.h"
#include "procs/proc.h"
#include "tests/helpers/run.h"

#define MAX_SEEN 65536
#define DEADLINE_MS 2000

struct seen {
	struct {
		pid_t pid;
		uint64_t start;
		uint64_t at_ns; /* monotonic, when reported */
	} v[MAX_SEEN];
	size_t n;
	pid_t hidden; /* known() says true for this pid whatever its start */
	unsigned hidden_asked;
};

static struct seen *seen;

static void setup(void)
{
	seen = calloc(1, sizeof(*seen));
	cr_assert_not_null(seen);
}

static void teardown(void)
{
	free(seen);
}

TestSuite(discover, .init = setup, .fini = teardown, .timeout = 60);

static void on_found(void *arg, pid_t pid, uint64_t start)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, MAX_SEEN);
	s->v[s->n].pid = pid;
	s->v[s->n].start = start;
	s->v[s->n].at_ns = capture_monotonic_ns();
	s->n++;
}

/* Everything reported is known from then on, as the agent's known() is. */
static bool is_known(void *arg, pid_t pid, uint64_t start)
{
	struct seen *s = arg;

	if (pid == s->hidden) {
		s->hidden_asked++;
		return true;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].pid == pid && s->v[i].start == start)
			return true;
	return false;
}

/* How many times (pid, start) was reported; start 0: any start. */
static unsigned reports(pid_t pid, uint64_t start)
{
	unsigned n = 0;

	for (size_t i = 0; i < seen->n; i++)
		if (seen->v[i].pid == pid && (!start || seen->v[i].start == start))
			n++;
	return n;
}

static uint64_t start_of(pid_t pid)
{
	struct proc_stat st;

	cr_assert_eq(proc_stat_read("/proc", pid, &st), 0, "pid %d", pid);
	return st.start_ticks;
}

/* Forks a child that waits for a byte on *go_fd (when go_fd is not NULL) and then execs
 * /bin/sh -c script. */
static pid_t spawn(const char *script, int *go_fd)
{
	int p[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[1]);
		if (go_fd && read(p[0], &c, 1) != 1)
			_exit(1);
		close(p[0]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	if (go_fd)
		*go_fd = p[1];
	else
		close(p[1]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Polls d until (pid, start) has been reported want times or deadline_ms pass; the
 * monotonic time of the last report, or 0 when it did not come. */
static uint64_t poll_until(struct discover *d, pid_t pid, uint64_t start, unsigned want,
			   int deadline_ms)
{
	uint64_t end = capture_monotonic_ns() + (uint64_t)deadline_ms * 1000000ULL;
	struct gs_error err = {0};

	while (capture_monotonic_ns() < end) {
		cr_assert_eq(discover_poll(d, 50, is_known, on_found, seen, &err), 0, "%s",
			     err.msg);
		if (reports(pid, start) >= want)
			for (size_t i = seen->n; i-- > 0;)
				if (seen->v[i].pid == pid && seen->v[i].start == start)
					return seen->v[i].at_ns;
	}
	return 0;
}

Test(discover, exec_reported_within_2s)
{
	struct discover_config cfg = {.proc_root = "/proc", .rescan_ms = 600000};
	struct discover_stats st;
	struct gs_error err = {0};
	struct discover *d;
	uint64_t t0, at, start;
	pid_t child;
	int go;

	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	/* The first scan, then the child execs: no rescan is due for 10 minutes, so only the
	 * exec watcher can name it. */
	cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), 0, "%s", err.msg);
	child = spawn("exec sleep 30", &go);
	cr_assert_eq(reports(child, 0), 0, "forked but not exec'd yet: not a new program");
	t0 = capture_monotonic_ns();
	cr_assert_eq(write(go, "g", 1), 1);
	close(go);
	/* sh execs sleep: wait for the second image, then compare start times. */
	for (int i = 0; i < 200; i++) {
		char comm[32];

		proc_comm("/proc", child, comm, sizeof(comm));
		if (strcmp(comm, "sleep") == 0)
			break;
		usleep(10000);
	}
	start = start_of(child);
	at = poll_until(d, child, start, 1, DEADLINE_MS);
	discover_stats(d, &st);
	reap(child);
	discover_close(d);
	cr_assert_neq(at, 0, "pid %d (start %llu) not reported within %d ms", child,
		      (unsigned long long)start, DEADLINE_MS);
	cr_assert_lt(at - t0, DEADLINE_MS * 1000000ULL);
	cr_assert_eq(reports(child, 0), reports(child, start), "reported with another start");
	cr_assert(st.exec_watch);
	cr_assert_geq(st.execs, 2, "sh and sleep");
	cr_assert_eq(st.rescans, 1, "the first scan only");
	cr_assert_eq(st.ring_drops, 0);
	cr_assert_geq(st.bpf_execs, st.execs);
	cr_assert_gt(st.first_scan_found, 0);
	cr_assert_eq(st.rescan_found, 0);
}

/* A known process that execs another program is reported again (its image changed). */
Test(discover, exec_of_known_process_reported_again)
{
	struct discover_config cfg = {.proc_root = "/proc", .rescan_ms = 600000};
	struct gs_error err = {0};
	struct discover *d;
	uint64_t start;
	pid_t child;
	int go;

	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), 0, "%s", err.msg);
	child = spawn("sleep 0.7; exec sleep 30", &go);
	start = start_of(child);
	cr_assert_eq(write(go, "g", 1), 1);
	close(go);
	cr_assert_neq(poll_until(d, child, start, 1, DEADLINE_MS), 0, "the shell's exec");
	cr_assert(is_known(seen, child, start));
	cr_assert_neq(poll_until(d, child, start, 2, DEADLINE_MS), 0,
		      "the exec of sleep by the known shell process");
	reap(child);
	discover_close(d);
}

Test(discover, first_scan_reports_existing)
{
	struct discover_config cfg = {.proc_root = "/proc"};
	struct discover_stats st;
	struct gs_error err = {0};
	struct discover *d;
	pid_t child = spawn("exec sleep 30", NULL);
	uint64_t start;

	usleep(100000);
	start = start_of(child);
	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), 0, "%s", err.msg);
	discover_stats(d, &st);
	cr_assert_eq(reports(child, start), 1, "pid %d", child);
	cr_assert_eq(reports(getpid(), start_of(getpid())), 1, "this process");
	cr_assert_eq(reports(2, 0), 0, "kthreadd is a kernel thread");
	cr_assert_eq(st.rescans, 1);
	cr_assert_eq(st.first_scan_found, seen->n);
	cr_assert_eq(st.rescan_found, 0);
	reap(child);
	discover_close(d);
}

Test(discover, rescan_finds_new_without_exec_watch)
{
	struct discover_config cfg = {
		.proc_root = "/proc", .rescan_ms = 300, .no_exec_watch = true};
	struct discover_stats st;
	struct gs_error err = {0};
	struct discover *d;
	uint64_t t0, at, start;
	pid_t child;

	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	cr_assert_eq(discover_fd(d), -1);
	cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), 0, "%s", err.msg);
	t0 = capture_monotonic_ns();
	child = spawn("exec sleep 30", NULL);
	start = start_of(child);
	at = poll_until(d, child, start, 1, DEADLINE_MS);
	discover_stats(d, &st);
	reap(child);
	discover_close(d);
	cr_assert_neq(at, 0, "not found by rescans within %d ms", DEADLINE_MS);
	cr_assert_lt(at - t0, (300 + 200) * 1000000ULL, "one rescan period (+ slack)");
	cr_assert_not(st.exec_watch);
	cr_assert_eq(st.execs, 0);
	cr_assert_geq(st.rescans, 2);
	cr_assert_geq(st.rescan_found, 1);
	cr_assert_gt(st.rescan_ns, 0);
}

Test(discover, known_not_reported_again)
{
	struct discover_config cfg = {.proc_root = "/proc", .rescan_ms = 50, .no_exec_watch = true};
	struct discover_stats st;
	struct gs_error err = {0};
	struct discover *d;
	pid_t hidden = spawn("exec sleep 30", NULL), other = spawn("exec sleep 30", NULL);
	uint64_t end;

	usleep(100000);
	seen->hidden = hidden;
	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	end = capture_monotonic_ns() + 1000000000ULL;
	while (capture_monotonic_ns() < end)
		cr_assert_eq(discover_poll(d, 20, is_known, on_found, seen, &err), 0, "%s",
			     err.msg);
	discover_stats(d, &st);
	cr_assert_geq(st.rescans, 10);
	cr_assert_geq(seen->hidden_asked, st.rescans, "known() asked on every scan");
	cr_assert_eq(reports(hidden, 0), 0, "known: never reported, the first scan neither");
	cr_assert_eq(reports(other, 0), 1, "unknown: reported once, then known");
	for (size_t i = 0; i < seen->n; i++)
		cr_assert_eq(reports(seen->v[i].pid, seen->v[i].start), 1, "pid %d",
			     seen->v[i].pid);
	reap(hidden);
	reap(other);
	discover_close(d);
}

Test(discover, close_detaches)
{
	struct discover_config cfg = {.proc_root = "/proc"};
	struct gs_error err = {0};
	struct discover *d;
	int links = fd_count(0, "anon_inode:bpf_link"), progs = fd_count(0, "anon_inode:bpf-prog"),
	    maps = fd_count(0, "anon_inode:bpf-map");

	cr_assert_geq(links, 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
		cr_assert_gt(discover_fd(d), 0);
		cr_assert_eq(fd_count(0, "anon_inode:bpf_link"), links + 1);
		discover_close(d);
		cr_assert_eq(fd_count(0, "anon_inode:bpf_link"), links);
		cr_assert_eq(fd_count(0, "anon_inode:bpf-prog"), progs);
		cr_assert_eq(fd_count(0, "anon_inode:bpf-map"), maps);
	}
	discover_close(NULL);
}

Test(discover, bad_proc_root)
{
	struct discover_config cfg = {.proc_root = "/nonexistent-proc", .no_exec_watch = true};
	struct gs_error err = {0};
	struct discover *d;

	cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
	cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), -ENOENT);
	cr_assert(strstr(err.msg, "/nonexistent-proc"), "%s", err.msg);
	discover_close(d);
}

/* With exec_wake_each a waiting poll returns at the exec; batched (the default) it sleeps its
 * whole timeout and then reports the exec. */
Test(discover, wake_each_and_batched)
{
	for (int wake = 1; wake >= 0; wake--) {
		struct discover_config cfg = {
			.proc_root = "/proc", .rescan_ms = 600000, .exec_wake_each = wake};
		struct gs_error err = {0};
		struct discover *d;
		uint64_t t0, took;
		pid_t child;
		int go;

		cr_assert_eq(discover_open(&cfg, &d, &err), 0, "%s", err.msg);
		cr_assert_eq(discover_poll(d, 0, is_known, on_found, seen, &err), 0, "%s", err.msg);
		child = spawn("exec sleep 30", &go);
		t0 = capture_monotonic_ns();
		cr_assert_eq(write(go, "g", 1), 1);
		close(go);
		/* Other execs on the host may end a waking poll first: poll again until ours. */
		do
			cr_assert_eq(discover_poll(d, 1500, is_known, on_found, seen, &err), 0,
				     "%s", err.msg);
		while (wake && !reports(child, 0) && capture_monotonic_ns() - t0 < 3000000000ULL);
		took = capture_monotonic_ns() - t0;
		cr_assert_geq(reports(child, 0), 1, "wake %d: reported by the first poll", wake);
		if (wake)
			cr_assert_lt(took, 500000000ULL, "woken at the exec: %llu ns",
				     (unsigned long long)took);
		else
			cr_assert_geq(took, 1400000000ULL, "batched: the whole timeout: %llu ns",
				      (unsigned long long)took);
		reap(child);
		discover_close(d);
	}
}
