/* test_cpu_session.c — the long-lived CPU session (agent/capture/cpu_session.h), in process:
 * one session cuts 60 consecutive 1 s windows of three Go processes (one exits mid-way, one
 * starts mid-way) with one BPF load and one set of perf events; the windows add up to what
 * one-shot `goscope cpu` captures of the same processes see; memory does not grow with the
 * cuts; each per-process profile holds only its process; a removed target's samples stop. */
#include <criterion/criterion.h>
#include <math.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/core.h"
#include "capture/cpu_session.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"

#define TOOLCHAIN "1.27"
#define FREQ 99
#define FREQ_STR "99"
#define NWINDOWS 60
#define MAX_PIDS 8

static long rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	cr_assert(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Starts cpuburn gated (it burns only after gate()), burning for duration. */
static void start_burn(struct gotarget *t, const char *path, const char *duration)
{
	char *argv[] = {(char *)path,  "-gate", "-duration", (char *)duration,
			"-goroutines", "1",	NULL};
	char line[128];

	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 20000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
}

static void gate(struct gotarget *t)
{
	cr_assert_eq(write(t->stdin_fd, "\n", 1), 1);
}

/* Starts `goscope cpu --pid P... --duration 0` (it ends when its targets exit) and waits
 * until its BPF program is attached to every CPU: one perf event and one bpf_link per online
 * CPU in its fd table (on kernels without perf bpf_links: the perf events, then 500 ms). */
static pid_t start_oneshot(const pid_t *pids, int n, const char *out)
{
	char pidstr[MAX_PIDS][16];
	char *argv[8 + 2 * MAX_PIDS];
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int a = 0, waited = 0, perf_since = -1;
	pid_t child;

	argv[a++] = (char *)goscope_bin();
	argv[a++] = "cpu";
	for (int i = 0; i < n; i++) {
		snprintf(pidstr[i], sizeof(pidstr[i]), "%d", pids[i]);
		argv[a++] = "--pid";
		argv[a++] = pidstr[i];
	}
	argv[a++] = "--duration";
	argv[a++] = "0";
	argv[a++] = "--frequency";
	argv[a++] = FREQ_STR;
	argv[a++] = "-o";
	argv[a++] = (char *)out;
	argv[a] = NULL;
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		int perf = fd_count(child, "anon_inode:[perf_event]");
		int links = fd_count(child, "anon_inode:bpf_link");

		if (perf == online && links >= online)
			break;
		if (perf == online && perf_since < 0)
			perf_since = waited;
		if (perf_since >= 0 && waited - perf_since >= 500)
			break;
		cr_assert_lt(waited, 30000, "goscope cpu did not attach (perf %d, links %d)", perf,
			     links);
		sleep_ms(20);
		waited += 20;
	}
	return child;
}

/* The pid label of a trace, 0 without one ("pid:[1234]" or "pid:1234"). */
static long trace_pid(const struct trace *t)
{
	for (int i = 0; i < t->nlabels; i++) {
		if (strncmp(t->labels[i], "pid:", 4) == 0)
			return strtol(t->labels[i] + 4 + strcspn(t->labels[i] + 4, "0123456789"),
				      NULL, 10);
	}
	return 0;
}

/* Samples per pid in a profile file (sample type "samples"). */
static double file_samples(const char *file, long pid, double *total_out)
{
	char gobuf[256], why[2048];
	const char *go = go_tool_path(TOOLCHAIN, gobuf, sizeof(gobuf));
	struct traces tr;
	double v = 0, total = 0;

	cr_assert(go);
	cr_assert_eq(traces_load(go, file, "-sample_index=samples", &tr, why, sizeof(why)), 0, "%s",
		     why);
	for (size_t i = 0; i < tr.n; i++) {
		total += tr.t[i].value;
		if (trace_pid(&tr.t[i]) == pid)
			v += tr.t[i].value;
	}
	traces_free(&tr);
	if (total_out)
		*total_out = total;
	return v;
}

/* "N dropped" from the goscope cpu comment of a profile file. */
static double file_drops(const char *file)
{
	char gobuf[256], why[2048];
	const char *go = go_tool_path(TOOLCHAIN, gobuf, sizeof(gobuf));
	struct traces tr;
	double drops = -1;
	const char *c;

	cr_assert_eq(traces_load(go, file, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	c = tr.header ? strstr(tr.header, "goscope cpu: ") : NULL;
	if (c) {
		c = strstr(c, "samples, ");
		if (c)
			drops = strtod(c + strlen("samples, "), NULL);
	}
	traces_free(&tr);
	cr_assert_geq(drops, 0, "no goscope cpu comment in %s", file);
	return drops;
}

struct tally {
	pid_t pid;
	double samples;	 /* over every window */
	int last_window; /* last window with samples */
	int ended_window;
};

static struct tally *tally_of(struct tally *t, int n, pid_t pid)
{
	for (int i = 0; i < n; i++) {
		if (t[i].pid == pid)
			return &t[i];
	}
	return NULL;
}

/* Polls the session until the deadline (monotonic ns). */
static void poll_until(struct cpu_session *s, uint64_t deadline)
{
	struct gs_error err = {0};
	uint64_t now;

	while ((now = capture_monotonic_ns()) < deadline) {
		uint64_t left_ms = (deadline - now) / 1000000 + 1;

		cr_assert_eq(cpu_session_poll(s, left_ms < 100 ? (int)left_ms : 100, &err), 0, "%s",
			     err.msg);
	}
}

/* Checks that a window's profile carries only samples labelled with its own pid. */
static void check_own_samples(const struct cpu_window_proc *wp, const char *dir, int window)
{
	char file[512];
	struct gs_error err = {0};
	double total, own;

	snprintf(file, sizeof(file), "%s/w%d-%d.pb.gz", dir, window, wp->pid);
	cr_assert_eq(profile_write_file(wp->prof, file, &err), 0, "%s", err.msg);
	own = file_samples(file, wp->pid, &total);
	cr_assert_gt(total, 0, "window %d pid %d: empty profile", window, wp->pid);
	cr_assert_eq(own, total, "window %d pid %d: %.0f of %.0f samples are its own", window,
		     wp->pid, own, total);
	cr_assert_eq((uint64_t)total, wp->samples, "window %d pid %d: profile %.0f, counted %llu",
		     window, wp->pid, total, (unsigned long long)wp->samples);
}

Test(cpu_session, windows_add_up, .timeout = 400)
{
	char path[4096], dir[64], file_a[256], file_b[256];
	struct cpu_session_config cfg = {.frequency = FREQ};
	struct tally tally[3] = {0};
	struct cpu_session_counters c;
	struct gotarget t1, t2, t3;
	struct gs_error err = {0};
	struct cpu_session *s;
	int perf_before, perf_open, prog_before, prog_open;
	long rss10 = 0, rss60 = 0;
	uint64_t drops = 0, t0;
	pid_t a, b = 0;

	GOTARGET_BUILD_OR_SKIP(path, "cpuburn", TOOLCHAIN, "default");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(file_a, sizeof(file_a), "%s/a.pb.gz", dir);
	snprintf(file_b, sizeof(file_b), "%s/b.pb.gz", dir);

	perf_before = fd_count(0, "anon_inode:[perf_event]");
	prog_before = fd_count(0, "anon_inode:bpf-prog");
	cr_assert_eq(cpu_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	cpu_session_counters(s, &c);
	perf_open = fd_count(0, "anon_inode:[perf_event]");
	prog_open = fd_count(0, "anon_inode:bpf-prog");
	cr_assert_eq(c.bpf_loads, 1);
	cr_assert_geq(c.perf_events, 1);
	cr_assert_eq(perf_open - perf_before, (int)c.perf_events);
	/* One load of the object: its programs (sampling, exec, exit), each once. */
	cr_assert_eq(prog_open - prog_before, (int)c.bpf_programs);

	/* P1 exits after ~20 s, P2 after ~50 s; P3 starts at window 22 and exits ~25 s later:
	 * every process lives inside both the session's 60 windows and its one-shot capture,
	 * which is attached before the process burns (gate) and ends when it exits. */
	start_burn(&t1, path, "20s");
	start_burn(&t2, path, "50s");
	tally[0].pid = t1.pid;
	tally[1].pid = t2.pid;
	{
		pid_t pids[2] = {t1.pid, t2.pid};

		a = start_oneshot(pids, 2, file_a);
	}
	cr_assert_eq(cpu_session_add_target(s, t1.pid, &err), 0, "%s", err.msg);
	cr_assert_eq(cpu_session_add_target(s, t2.pid, &err), 0, "%s", err.msg);
	cr_assert_eq(cpu_session_add_target(s, t2.pid, &err), 0, "adding twice: %s", err.msg);
	cpu_session_counters(s, &c);
	cr_assert_eq(c.targets, 2);
	gate(&t1);
	gate(&t2);

	t0 = capture_monotonic_ns();
	for (int w = 1; w <= NWINDOWS; w++) {
		struct cpu_window win;

		if (w == 22) {
			start_burn(&t3, path, "25s");
			tally[2].pid = t3.pid;
			b = start_oneshot(&t3.pid, 1, file_b);
			cr_assert_eq(cpu_session_add_target(s, t3.pid, &err), 0, "%s", err.msg);
			gate(&t3);
		}
		poll_until(s, t0 + (uint64_t)w * 1000000000ULL);
		cr_assert_eq(cpu_session_cut(s, &win, &err), 0, "window %d: %s", w, err.msg);
		cr_assert_null(win.merged);
		drops += win.stats.ringbuf_drops;
		for (size_t i = 0; i < win.nprocs; i++) {
			const struct cpu_window_proc *wp = &win.procs[i];
			struct tally *ta = tally_of(tally, 3, wp->pid);

			cr_assert(ta, "window %d: unknown pid %d", w, wp->pid);
			cr_assert_not(ta->ended_window, "window %d: pid %d after its end (%d)", w,
				      wp->pid, ta->ended_window);
			cr_assert(wp->ended || wp->samples > 0, "window %d pid %d", w, wp->pid);
			cr_assert_eq(wp->prof != NULL, wp->samples > 0);
			cr_assert_str_eq(wp->comm, "cpuburn");
			ta->samples += (double)wp->samples;
			if (wp->samples)
				ta->last_window = w;
			if (wp->ended)
				ta->ended_window = w;
			if ((w == 5 || w == 30) && wp->samples)
				check_own_samples(wp, dir, w);
		}
		cpu_window_free(&win);
		cpu_session_counters(s, &c);
		cr_assert_eq(c.bpf_loads, 1, "window %d", w);
		cr_assert_eq(c.perf_events, (unsigned)(perf_open - perf_before), "window %d", w);
		cr_assert_eq(fd_count(0, "anon_inode:[perf_event]"), perf_open, "window %d", w);
		cr_assert_eq(fd_count(0, "anon_inode:bpf-prog"), prog_open, "window %d", w);
		if (w == 10)
			rss10 = rss_bytes();
	}
	rss60 = rss_bytes();
	cpu_session_counters(s, &c);
	cr_assert_eq(c.windows, NWINDOWS);
	/* Every target exited: their entries are gone. */
	cr_assert_eq(c.targets, 0);
	cr_assert_eq(c.procs, 0);
	cr_assert_leq(rss60, rss10 + (1L << 20), "RSS grew from %ld after window 10 to %ld", rss10,
		      rss60);
	cpu_session_close(s);
	cr_assert_eq(fd_count(0, "anon_inode:[perf_event]"), perf_before);
	cr_assert_eq(fd_count(0, "anon_inode:bpf-prog"), prog_before);

	cr_assert_eq(wait_exit_code(a), 0);
	cr_assert_eq(wait_exit_code(b), 0);
	cr_assert_eq(gotarget_stop(&t1, 10000), 0);
	cr_assert_eq(gotarget_stop(&t2, 10000), 0);
	cr_assert_eq(gotarget_stop(&t3, 10000), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_gt(tally[i].ended_window, 0, "pid %d never ended", tally[i].pid);
		cr_assert_leq(tally[i].last_window, tally[i].ended_window);
		cr_assert_geq(tally[i].last_window, tally[i].ended_window - 1,
			      "pid %d: last samples in window %d, ended in %d", tally[i].pid,
			      tally[i].last_window, tally[i].ended_window);
	}
	cr_assert_lt(tally[0].ended_window, 30, "P1 exits mid-way");
	cr_assert_gt(tally[2].ended_window, 30, "P3 runs on after P1");

	/* The session and the one-shot captures sample the same CPU time with two independent
	 * sets of cpu-clock events (same frequency, independent phases). Each count is a sum of
	 * per-run-slice counts whose error against time/period is within ±1 tick, a Bernoulli
	 * variable of variance p(1-p) <= p for slices shorter than the period, less for longer
	 * ones: the variance of each count is at most the count itself, whatever the host load
	 * (load changes how much CPU time there is, which both see alike). Five standard
	 * deviations of each side (a 1 in 3.5 million chance of exceeding for each), plus
	 * samples either side lost to a full ring buffer, plus 2 at the edges, bound the
	 * difference. */
	{
		double drops_a = file_drops(file_a), drops_b = file_drops(file_b);

		for (int i = 0; i < 3; i++) {
			const char *f = i == 2 ? file_b : file_a;
			double one = file_samples(f, tally[i].pid, NULL);
			double sess = tally[i].samples;
			double tol = 5 * (sqrt(one) + sqrt(sess)) + (i == 2 ? drops_b : drops_a) +
				     (double)drops + 2;

			cr_assert_gt(one, 20, "pid %d: one-shot saw only %.0f samples",
				     tally[i].pid, one);
			cr_assert_leq((sess > one ? sess - one : one - sess), tol,
				      "pid %d: windows add up to %.0f samples, one-shot %.0f "
				      "(tolerance %.0f)",
				      tally[i].pid, sess, one, tol);
			cr_log_info("pid %d: windows %.0f, one-shot %.0f, tolerance %.0f",
				    tally[i].pid, sess, one, tol);
		}
	}
}

Test(cpu_session, removed_target_stops, .timeout = 120)
{
	char path[4096], line[128];
	struct cpu_session_config cfg = {.frequency = FREQ};
	struct cpu_session_counters c;
	struct gs_error err = {0};
	struct cpu_session *s;
	struct cpu_window win;
	struct gotarget t;
	uint64_t t0;

	GOTARGET_BUILD_OR_SKIP(path, "cpuburn", TOOLCHAIN, "default");
	{
		char *argv[] = {path, "-duration", "30s", "-goroutines", "1", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
		cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 20000), 0);
	}
	cr_assert_eq(cpu_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	cr_assert_eq(cpu_session_add_target(s, t.pid, &err), 0, "%s", err.msg);
	cr_assert(cpu_session_has_target(s, t.pid));
	t0 = capture_monotonic_ns();
	poll_until(s, t0 + 1500000000ULL);
	cr_assert_eq(cpu_session_cut(s, &win, &err), 0, "%s", err.msg);
	cr_assert_eq(win.nprocs, 1);
	cr_assert_eq(win.procs[0].pid, t.pid);
	cr_assert_gt(win.procs[0].samples, 10);
	cr_assert_not(win.procs[0].ended);
	cpu_window_free(&win);

	poll_until(s, t0 + 2500000000ULL);
	cpu_session_remove_target(s, t.pid);
	cr_assert_not(cpu_session_has_target(s, t.pid));
	cpu_session_counters(s, &c);
	cr_assert_eq(c.targets, 0);
	cr_assert_eq(c.procs, 1, "the removed target is held until the cut");
	poll_until(s, t0 + 3000000000ULL);
	/* The samples taken before the removal are in this window, marked as its last. */
	cr_assert_eq(cpu_session_cut(s, &win, &err), 0, "%s", err.msg);
	cr_assert_eq(win.nprocs, 1);
	cr_assert(win.procs[0].ended);
	cr_assert_gt(win.procs[0].samples, 10);
	cpu_window_free(&win);
	cpu_session_counters(s, &c);
	cr_assert_eq(c.procs, 0);

	/* The process still burns, but nothing of it is sampled any more. */
	for (int w = 0; w < 3; w++) {
		poll_until(s, t0 + 4000000000ULL + (uint64_t)w * 1000000000ULL);
		cr_assert_eq(cpu_session_cut(s, &win, &err), 0, "%s", err.msg);
		cr_assert_eq(win.nprocs, 0);
		cr_assert_eq(win.stats.samples, 0, "BPF still samples the removed target");
		cr_assert_eq(win.stats.stray, 0);
		cpu_window_free(&win);
	}
	cr_assert(kill(t.pid, 0) == 0, "the target was still running");

	/* Added again, it is sampled again. */
	cr_assert_eq(cpu_session_add_target(s, t.pid, &err), 0, "%s", err.msg);
	poll_until(s, capture_monotonic_ns() + 1000000000ULL);
	cr_assert_eq(cpu_session_cut(s, &win, &err), 0, "%s", err.msg);
	cr_assert_eq(win.nprocs, 1);
	cr_assert_gt(win.procs[0].samples, 10);
	cpu_window_free(&win);
	cpu_session_close(s);
	kill(t.pid, SIGTERM);
	gotarget_stop(&t, 10000);
}
