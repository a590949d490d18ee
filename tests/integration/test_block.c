/* test_block.c — `goscope block` for real: attaches to Go workloads (tests/go/blocker,
 * tests/go/netpark) and compares with Go's own block profile and with the delays the workload
 * measures itself, for every toolchain, stripped and not; plus the traps of uprobes on the Go
 * runtime (caller at [SP], morestack restart, cancelled parks, wait-reason numbering, IO waits
 * without runtime.ready), labels, -tagfocus, SIGKILL leaving no probe (unthrottled, and at
 * random moments of duty-cycled captures), a target that execs, and repeated attach/detach
 * under load. */
#include <criterion/criterion.h>
#include <math.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goscope/symbolizer.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"

/* The bounds of the comparisons below, and why they do not depend on host load:
 *
 * DELAY_TOL, against Go's block profile (check_against_go): with --max-overhead 100 every park
 * is recorded by both, and both time the same interval, park -> wake-up (Go from just before
 * gopark to the waker's releasetime, goscope from gopark to runtime.ready), so the difference
 * is a few microseconds per event of 5-10 ms, not noise; measured: 0.0 % in 14 toolchain
 * builds at load average 5-12 (pprof prints 3 digits). 10 % leaves room for the attach and
 * detach edges.
 *
 * COUNT_TOL, against Go's block profile: exact counts of the same parks (0 differences in the
 * same 14 runs); 5 % is for parks straddling the attach or the target's exit.
 *
 * DELAY_TOL, against the workload's own timings (sleep, net read, parkrestart, longblock):
 * the two do not time the same interval. The workload times call -> return, goscope park ->
 * ready, inside it; the gap is call -> park plus ready -> running again, a few microseconds
 * unless the host makes the woken thread wait for a CPU. The waits of the host (timer
 * latency, a waker descheduled) fall inside park -> ready and are seen by both: under load a
 * 200 us park of parkrestart took 1.1-3.2 ms, and goscope still agreed with the workload to
 * 1.7 %. Largest gaps measured over runs at load average 5, 20 and 20 with a CPU-bound `yes`
 * added: 1.5 % (sleep, ~40 runs), 0.6 % (net read), 1.7 % (parkrestart, 6 runs), 1.1 %
 * (longblock's mean, 3 runs). So the bound is not raised with load: 10 % is 6 times what
 * the host made of it. */
#define DELAY_TOL 0.10
#define COUNT_TOL 0.05
#define MAX_SITES 64
#define LINE_MAX_LEN 512

struct bcase {
	char toolchain[8];
	char mode[16];
};

/* goscope block running in the background, its stderr on a pipe. */
struct gsproc {
	pid_t pid;
	int err_fd;
	char buf[8192];
	size_t len;
};

static void gs_start(struct gsproc *g, char *const argv[])
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	g->pid = fork();
	cr_assert_geq(g->pid, 0);
	if (g->pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	g->err_fd = p[0];
	g->len = 0;
}

/* Reads goscope's stderr until a line containing what (or EOF/timeout); false if not seen. */
static bool gs_wait_for(struct gsproc *g, const char *what, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms;) {
		struct pollfd pfd = {.fd = g->err_fd, .events = POLLIN};
		ssize_t n;

		g->buf[g->len] = '\0';
		if (strstr(g->buf, what))
			return true;
		if (poll(&pfd, 1, 100) == 0) {
			waited += 100;
			continue;
		}
		n = read(g->err_fd, g->buf + g->len, sizeof(g->buf) - 1 - g->len);
		if (n <= 0)
			return false;
		g->len += (size_t)n;
	}
	return false;
}

static int gs_wait(struct gsproc *g)
{
	int status;

	/* Drain stderr so the summary line is kept. */
	for (;;) {
		ssize_t n = read(g->err_fd, g->buf + g->len, sizeof(g->buf) - 1 - g->len);

		if (n <= 0)
			break;
		g->len += (size_t)n;
	}
	g->buf[g->len] = '\0';
	close(g->err_fd);
	cr_assert_eq(waitpid(g->pid, &status, 0), g->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Number after "KEY " in goscope's summary line, e.g. "cancelled". */
static long long gs_stat(const struct gsproc *g, const char *after_number_word)
{
	const char *p = strstr(g->buf, after_number_word);

	if (!p)
		return -1;
	while (p > g->buf && p[-1] == ' ')
		p--;
	while (p > g->buf && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return atoll(p);
}

/* Runs PROGRAM (tests/go, built for toolchain and mode; it prints "ready PID", waits for a
 * line on stdin, works, prints its results and "done") with targs, under
 * `goscope block --pid PID -o <tmp>/OUT <gs_args>` started once "ready" is read; says "go"
 * once goscope is capturing. Fills gsprof with the profile's path and out with the target's
 * lines before "done" (each ending in \n); goscope's stderr is in g. Skips when the
 * toolchain is not installed. */
static void run_under_block(const char *program, const char *toolchain, const char *mode,
			    char *const targs[], const char *gs_args, char *gsprof,
			    size_t gsprof_len, char *out, size_t out_len, struct gsproc *g)
{
	char path[4096], dir[64], line[LINE_MAX_LEN], pidbuf[16], cmd[1024], *argv[32];
	char *save = NULL, *tok;
	struct gotarget t;
	size_t used = 0;
	int argc = 0;

	GOTARGET_BUILD_OR_SKIP(path, program, toolchain, mode);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(gsprof, gsprof_len, "%s/%s.pb.gz", dir, program);
	argv[argc++] = path;
	for (int i = 0; targs[i] && argc < 31; i++)
		argv[argc++] = targs[i];
	argv[argc] = NULL;
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	snprintf(cmd, sizeof(cmd), "%s", gs_args);
	argc = 0;
	argv[argc++] = (char *)goscope_bin();
	argv[argc++] = "block";
	argv[argc++] = "--pid";
	argv[argc++] = pidbuf;
	argv[argc++] = "-o";
	argv[argc++] = gsprof;
	for (tok = strtok_r(cmd, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	gs_start(g, argv);
	cr_assert(gs_wait_for(g, "capturing", 20000), "%s", g->buf);
	cr_assert_eq(write(t.stdin_fd, "go\n", 3), 3);
	out[0] = '\0';
	while (gotarget_read_line(&t, line, sizeof(line), 30000) > 0 && strcmp(line, "done")) {
		int n = snprintf(out + used, out_len - used, "%s\n", line);

		if (n > 0 && (size_t)n < out_len - used)
			used += (size_t)n;
	}
	cr_assert_eq(gotarget_stop(&t, 20000), 0);
	cr_assert_eq(gs_wait(g), 0, "%s", g->buf);
}

/* Number after "KEY " in the target's output lines (see run_under_block), or -1. */
static long long out_stat(const char *out, const char *key)
{
	const char *p = strstr(out, key);

	return p ? atoll(p + strlen(key)) : -1;
}

struct site {
	char name[128];
	double delay, count;
	char reason[64]; /* the reason with the largest delay at this site */
	double reason_delay;
	bool still;
};

static struct site *site_get(struct site *s, int *n, const char *name)
{
	for (int i = 0; i < *n; i++) {
		if (strcmp(s[i].name, name) == 0)
			return &s[i];
	}
	cr_assert_lt(*n, MAX_SITES);
	memset(&s[*n], 0, sizeof(s[*n]));
	snprintf(s[*n].name, sizeof(s[*n].name), "%s", name);
	return &s[(*n)++];
}

static const char *label(const struct trace *t, const char *key)
{
	size_t kl = strlen(key);

	for (int i = 0; i < t->nlabels; i++) {
		if (strncmp(t->labels[i], key, kl) == 0 && t->labels[i][kl] == ':')
			return t->labels[i] + kl + 1;
	}
	return NULL;
}

/* The blocking call site: the first frame of the program (main.*) from the leaf. */
static const char *call_site(const struct trace *t)
{
	for (int i = 0; i < t->nframes; i++) {
		if (strncmp(t->frames[i], "main.", 5) == 0)
			return t->frames[i];
	}
	return NULL;
}

/* Sums a profile per call site: delay and count (two pprof reads), wait reason. */
static int load_sites(const char *go, const char *file, struct site *s, bool *has_reason)
{
	struct traces td, tc;
	char why[2048];
	int n = 0;

	cr_assert_eq(traces_load(go, file, "-sample_index=delay", &td, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(traces_load(go, file, "-sample_index=contentions", &tc, why, sizeof(why)), 0,
		     "%s", why);
	for (size_t i = 0; i < td.n; i++) {
		const char *cs = call_site(&td.t[i]), *r = label(&td.t[i], "wait_reason");
		struct site *st;

		if (!cs)
			continue;
		st = site_get(s, &n, cs);
		st->delay += td.t[i].value;
		if (label(&td.t[i], "still_blocked"))
			st->still = true;
		if (r && td.t[i].value > st->reason_delay) {
			st->reason_delay = td.t[i].value;
			snprintf(st->reason, sizeof(st->reason), "%s", r);
		}
		if (r && has_reason)
			*has_reason = true;
	}
	for (size_t i = 0; i < tc.n; i++) {
		const char *cs = call_site(&tc.t[i]);

		if (cs)
			site_get(s, &n, cs)->count += tc.t[i].value;
	}
	traces_free(&td);
	traces_free(&tc);
	return n;
}

static const struct site *site_find(const struct site *s, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(s[i].name, name) == 0)
			return &s[i];
	}
	return NULL;
}

static double rel_err(double a, double b)
{
	return b == 0 ? (a == 0 ? 0 : 1e9) : (a > b ? a - b : b - a) / b;
}

struct kind_stat {
	char name[32];
	long long count, delay;
};

/* Runs blocker (built for c) with extra args under `goscope block` (extra goscope args);
 * fills the profile paths and the workload's own kind stats. */
static int run_blocker(const struct bcase *c, const char *blocker_args, const char *gs_args,
		       char *goprof, char *gsprof, struct kind_stat *ks, int *nks, struct gsproc *g)
{
	char path[4096], dir[64], line[LINE_MAX_LEN], pidbuf[16], cmd[8192];
	char *argv[32];
	struct gotarget t;
	int argc = 0, rc;
	char *dup1, *tok, *save = NULL;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", c->toolchain, c->mode);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	sprintf(goprof, "%s/go.pprof", dir);
	sprintf(gsprof, "%s/goscope.pb.gz", dir);
	snprintf(cmd, sizeof(cmd), "%s -wait -blockprofile %s %s", path, goprof, blocker_args);
	dup1 = strdup(cmd);
	for (tok = strtok_r(dup1, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);

	snprintf(cmd, sizeof(cmd), "%s block --pid %s -o %s %s", goscope_bin(), pidbuf, gsprof,
		 gs_args);
	free(dup1);
	dup1 = strdup(cmd);
	argc = 0;
	save = NULL;
	for (tok = strtok_r(dup1, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	gs_start(g, argv);
	cr_assert(gs_wait_for(g, "capturing", 20000), "goscope did not attach: %s", g->buf);
	cr_assert_eq(write(t.stdin_fd, "go\n", 3), 3);

	*nks = 0;
	while (gotarget_read_line(&t, line, sizeof(line), 60000) > 0 && strcmp(line, "done")) {
		struct kind_stat *k = &ks[*nks];

		if (sscanf(line, "kind %31s count %lld delay_ns %lld", k->name, &k->count,
			   &k->delay) == 3)
			(*nks)++;
	}
	cr_assert_eq(gotarget_stop(&t, 20000), 0);
	rc = gs_wait(g);
	free(dup1);
	cr_assert_eq(rc, 0, "goscope block exited %d: %s", rc, g->buf);
	return 0;
}

static const struct kind_stat *kind(const struct kind_stat *ks, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(ks[i].name, name) == 0)
			return &ks[i];
	}
	return NULL;
}

static int minor_of(const char *toolchain)
{
	return atoi(strchr(toolchain, '.') + 1);
}

/* Sites Go's block profile covers, with the wait reason the runtime gives them. */
struct covered {
	const char *site;
	const char *reason;    /* 1.21+ */
	const char *reason119; /* 1.19 */
};

static const struct covered covered_sites[] = {
	{"main.blockChanSend", "chan send", "chan send"},
	{"main.blockChanRecv", "chan receive", "chan receive"},
	{"main.blockSelect", "select", "select"},
	{"main.blockMutex", "sync.Mutex.Lock", "semacquire"},
	{"main.blockRWMutex", "sync.RWMutex.RLock", "semacquire"},
	{"main.blockWaitGroup", NULL, "semacquire"}, /* "sync.WaitGroup.Wait" from 1.24 */
	{"main.blockCond", "sync.Cond.Wait", "sync.Cond.Wait"},
};

static void check_against_go(const struct bcase *c, const char *blocker_args, bool io_too)
{
	static struct site gos[MAX_SITES], gss[MAX_SITES];
	char goprof[256], gsprof[256], gobuf[256];
	const char *go = go_tool_path(c->toolchain, gobuf, sizeof(gobuf));
	struct kind_stat ks[16];
	struct gsproc g;
	int ngo, ngs, nks, minor = minor_of(c->toolchain);
	bool has_reason = false;

	run_blocker(c, blocker_args, "--max-overhead 100 --duration 0", goprof, gsprof, ks, &nks,
		    &g);
	ngo = load_sites(go, goprof, gos, NULL);
	ngs = load_sites(go, gsprof, gss, &has_reason);
	cr_assert(has_reason, "no wait_reason label");
	for (size_t i = 0; i < sizeof(covered_sites) / sizeof(covered_sites[0]); i++) {
		const struct covered *cv = &covered_sites[i];
		const struct site *a = site_find(gos, ngo, cv->site),
				  *b = site_find(gss, ngs, cv->site);
		const char *want = minor == 19 ? cv->reason119 : cv->reason;

		if (!want)
			want = minor >= 24 ? "sync.WaitGroup.Wait" : "semacquire";
		cr_assert(a, "go%s: %s missing from Go's block profile", c->toolchain, cv->site);
		cr_assert(b, "go%s %s: %s missing from goscope's profile", c->toolchain, c->mode,
			  cv->site);
		cr_log_info("go%s %s %-20s go: %6.0f / %8.2fms  goscope: %6.0f / %8.2fms  [%s]",
			    c->toolchain, c->mode, cv->site, a->count, a->delay / 1e6, b->count,
			    b->delay / 1e6, b->reason);
		cr_expect_leq(rel_err(b->delay, a->delay), DELAY_TOL,
			      "go%s %s %s: delay goscope %.2fms vs Go %.2fms", c->toolchain,
			      c->mode, cv->site, b->delay / 1e6, a->delay / 1e6);
		cr_expect_leq(rel_err(b->count, a->count), COUNT_TOL,
			      "go%s %s %s: count goscope %.0f vs Go %.0f", c->toolchain, c->mode,
			      cv->site, b->count, a->count);
		/* The blocking site's main reason (the cond site also waits on its mutex). */
		if (strcmp(cv->site, "main.blockCond") != 0)
			cr_expect_str_eq(b->reason, want, "go%s %s: wait reason", c->toolchain,
					 cv->site);
	}
	if (io_too) {
		static const struct {
			const char *kind, *site, *reason;
		} own[] = {{"sleep", "main.blockSleep", "sleep"},
			   {"net_read", "main.blockNetRead", "IO wait"}};

		for (size_t i = 0; i < 2; i++) {
			const struct kind_stat *k = kind(ks, nks, own[i].kind);
			const struct site *b = site_find(gss, ngs, own[i].site);

			cr_assert(k && b, "go%s: %s missing", c->toolchain, own[i].site);
			cr_log_info("go%s %s %-20s workload: %lld / %8.2fms  goscope: %6.0f / "
				    "%8.2fms [%s]",
				    c->toolchain, c->mode, own[i].site, k->count, k->delay / 1e6,
				    b->count, b->delay / 1e6, b->reason);
			cr_expect_leq(rel_err(b->delay, (double)k->delay), DELAY_TOL,
				      "go%s %s %s: delay goscope %.2fms vs measured %.2fms",
				      c->toolchain, c->mode, own[i].site, b->delay / 1e6,
				      k->delay / 1e6);
			cr_expect_str_eq(b->reason, own[i].reason, "go%s %s", c->toolchain,
					 own[i].site);
		}
	}
}

ParameterizedTestParameters(block, matches_go_block_profile)
{
	static struct bcase cases[] = {
		{"1.19", "default"},  {"1.19", "stripped"}, {"1.21", "default"},
		{"1.21", "stripped"}, {"1.22", "default"},  {"1.22", "stripped"},
		{"1.23", "default"},  {"1.23", "stripped"}, {"1.24", "default"},
		{"1.24", "stripped"}, {"1.26", "default"},  {"1.26", "stripped"},
		{"1.27", "default"},  {"1.27", "stripped"},
	};
	return cr_make_param_array(struct bcase, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Correctness per call site vs Go's block profile; sleep and IO wait (trap 5: woken by the
 * network poller without runtime.ready) vs the workload's own measurements; wait-reason
 * strings per version (trap 4: 1.26 reordered the numbers). */
ParameterizedTest(struct bcase *c, block, matches_go_block_profile, .timeout = 120)
{
	check_against_go(c, "-duration 2s -delay 10ms", true);
}

ParameterizedTestParameters(block, no_double_count_under_stress)
{
	static struct bcase cases[] = {{"1.19", "default"}, {"1.27", "stripped"}};

	return cr_make_param_array(struct bcase, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Heavy preemption, GC and stack growth around every park: counts must still match Go's
 * own. (This rarely sends gopark itself through morestack: the functions that call it have
 * already grown the stack. The restart is forced by block.morestack_restart_counted_once.) */
ParameterizedTest(struct bcase *c, block, no_double_count_under_stress, .timeout = 120)
{
	check_against_go(c, "-duration 2s -delay 5ms -stress", false);
}

ParameterizedTestParameters(block, morestack_restart_counted_once)
{
	static struct bcase cases[] = {
		{"1.19", "default"}, {"1.23", "stripped"}, {"1.27", "stripped"}};

	return cr_make_param_array(struct bcase, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Trap 2: a preemption request (or stack growth) seen by gopark's own prologue sends it
 * through morestack, and it re-runs from its first byte. tests/go/parkrestart makes that
 * happen on every park. goscope's probe sits on the stack-check branch and skips the hit
 * headed for morestack: each park is counted once, with its whole delay, none is taken for
 * a cancelled one, and every restart is seen. */
/* parkrestart under goscope block: every park counted once (see the tests below); probes is
 * the kind of uprobes goscope must say it used. */
static void check_restart(const struct bcase *c, const char *probes)
{
	char gsprof[256], out[4096], gobuf[256];
	char *targs[] = {"-parks", "300", NULL};
	const char *go = go_tool_path(c->toolchain, gobuf, sizeof(gobuf));
	static struct site sites[MAX_SITES];
	long long parks, delay;
	const struct site *s;
	struct gsproc g;
	int n;

	run_under_block("parkrestart", c->toolchain, c->mode, targs,
			"--max-overhead 100 --duration 0", gsprof, sizeof(gsprof), out, sizeof(out),
			&g);
	parks = out_stat(out, "parks ");
	delay = out_stat(out, "delay_ns ");
	cr_assert_eq(parks, 300, "%s", out);
	n = load_sites(go, gsprof, sites, NULL);
	s = site_find(sites, n, "main.parkRestart");
	cr_assert(s, "go%s %s: main.parkRestart missing: %s", c->toolchain, c->mode, g.buf);
	cr_log_info("go%s %s: %.0f parks / %.2fms (workload %lld / %.2fms); %s", c->toolchain,
		    c->mode, s->count, s->delay / 1e6, parks, delay / 1e6, g.buf);
	cr_expect_eq(s->count, (double)parks, "go%s: counted %.0f of %lld parks", c->toolchain,
		     s->count, parks);
	cr_expect_leq(rel_err(s->delay, (double)delay), DELAY_TOL,
		      "go%s: delay goscope %.2fms vs measured %.2fms", c->toolchain, s->delay / 1e6,
		      delay / 1e6);
	cr_expect_geq(gs_stat(&g, "morestack re-runs"), parks, "%s", g.buf);
	cr_expect_eq(gs_stat(&g, "cancelled"), 0, "%s", g.buf);
	cr_expect(strstr(g.buf, probes), "not %s: %s", probes, g.buf);
}

ParameterizedTest(struct bcase *c, block, morestack_restart_counted_once, .timeout = 120)
{
	check_restart(c, "uprobe_multi uprobes"); /* this kernel (6.18) has them */
}

/* The fallback for kernels without uprobe_multi links (< 6.6): perf-event uprobes, forced
 * here by GOSCOPE_BLOCK_PERF_UPROBES=1 since this kernel has both. */
Test(block, perf_event_uprobes_fallback, .timeout = 120)
{
	struct bcase c = {"1.27", "stripped"};

	cr_assert_eq(setenv("GOSCOPE_BLOCK_PERF_UPROBES", "1", 1), 0);
	check_restart(&c, "perf-event uprobes");
}

/* Trap 1: the direct caller of gopark (return address at [SP]) is in the stack. */
Test(block, direct_caller_kept, .timeout = 120)
{
	static const char *const tcs[] = {"1.19", "1.27"};

	for (size_t i = 0; i < 2; i++) {
		struct bcase c;
		char goprof[256], gsprof[256], gobuf[256], why[2048];
		const char *go = go_tool_path(tcs[i], gobuf, sizeof(gobuf));
		/* runtime.timeSleep is linknamed: the pclntab calls it time.Sleep. */
		const char *sleeper = "time.Sleep";
		struct kind_stat ks[16];
		struct traces tr;
		struct gsproc g;
		int nks;

		snprintf(c.toolchain, sizeof(c.toolchain), "%s", tcs[i]);
		snprintf(c.mode, sizeof(c.mode), "stripped");
		run_blocker(&c, "-duration 500ms -delay 5ms", "--max-overhead 100 --duration 0",
			    goprof, gsprof, ks, &nks, &g);
		cr_assert_eq(traces_load(go, gsprof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
		cr_expect(traces_has_edge(&tr, "runtime.chansend", "runtime.gopark"),
			  "go%s: runtime.chansend -> runtime.gopark missing", tcs[i]);
		cr_expect(traces_has_edge(&tr, "runtime.chansend1", "runtime.chansend"));
		cr_expect(traces_has_edge(&tr, "runtime.chanrecv", "runtime.gopark"));
		cr_expect(traces_has_edge(&tr, sleeper, "runtime.gopark"),
			  "go%s: %s -> runtime.gopark missing", tcs[i], sleeper);
		cr_expect(traces_has_edge(&tr, "main.blockSleep", sleeper));
		traces_free(&tr);
	}
}

/* Trap 3: parks cancelled by netpollblockcommit (data arrived while parking) are dropped,
 * not counted: every Read parks at most once, so counted IO waits + cancelled <= reads. */
Test(block, cancelled_parks_not_counted, .timeout = 120)
{
	char gsprof[256], out[4096], gobuf[256], why[2048];
	char *targs[] = {"-wait", "-duration", "2s", NULL};
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	long long reads, cancelled;
	double client_count = 0;
	struct traces tr;
	struct gsproc g;

	run_under_block("netpark", "1.27", "default", targs, "--max-overhead 100 --duration 0",
			gsprof, sizeof(gsprof), out, sizeof(out), &g);
	reads = out_stat(out, "reads ");
	cancelled = gs_stat(&g, "cancelled");
	cr_assert_gt(reads, 1000);
	cr_assert_eq(traces_load(go, gsprof, "-sample_index=contentions", &tr, why, sizeof(why)), 0,
		     "%s", why);
	for (size_t i = 0; i < tr.n; i++) {
		const char *cs = call_site(&tr.t[i]);

		if (cs && strcmp(cs, "main.client") == 0)
			client_count += tr.t[i].value;
	}
	traces_free(&tr);
	cr_log_info("netpark: %lld reads, %.0f IO-wait blocks counted at main.client, %lld "
		    "cancelled parks dropped (all goroutines)",
		    reads, client_count, cancelled);
	cr_assert_gt(client_count, 0);
	cr_expect_geq(cancelled, 0, "%s", g.buf);
	cr_expect_leq(client_count, (double)reads + 1, "more blocks than reads");
}

/* still_blocked, goid labels and -tagfocus on the wait_reason label; ends by --duration
 * while the target keeps running. */
Test(block, labels_still_blocked_goid_tagfocus, .timeout = 120)
{
	char path[4096], dir[64], gsprof[256], line[LINE_MAX_LEN], pidbuf[16], gobuf[256];
	char why[2048], cmd[8192], *out = NULL;
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	bool still = false;
	struct traces tr;
	struct gotarget t;
	struct gsproc g;
	size_t len;
	int rc;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", "1.27", "stripped");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(gsprof, sizeof(gsprof), "%s/l.pb.gz", dir);
	{
		char *argv[] = {path, "-wait", "-stuck", "-duration", "5s", "-delay", "5ms", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(), "block", "--pid",      pidbuf,
				"--max-overhead",      "100",	"--duration", "1s",
				"--goroutine-ids",     "-o",	gsprof,	      NULL};

		gs_start(&g, argv);
	}
	/* The stuck goroutine parks after the attach (a goroutine parked before it is not
	 * seen: there is no park event to read). */
	cr_assert(gs_wait_for(&g, "capturing", 20000), "%s", g.buf);
	cr_assert_eq(write(t.stdin_fd, "go\n", 3), 3);
	rc = gs_wait(&g);
	cr_assert_eq(rc, 0, "%s", g.buf);
	cr_assert(strstr(g.buf, "ended by duration"), "%s", g.buf);
	gotarget_stop(&t, 10000);
	cr_assert_eq(traces_load(go, gsprof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	for (size_t i = 0; i < tr.n; i++) {
		const char *cs = call_site(&tr.t[i]);

		if (cs && strcmp(cs, "main.blockForever") == 0) {
			cr_expect_str_eq(label(&tr.t[i], "still_blocked"), "true");
			cr_expect_str_eq(label(&tr.t[i], "wait_reason"), "chan receive");
			/* blocked from (almost) the start of the 1 s capture */
			cr_expect_geq(tr.t[i].value, 0.8e9);
			still = true;
		}
	}
	traces_free(&tr);
	cr_assert(still, "main.blockForever not reported as still blocked");

	/* goid: a numeric label on every sample (pprof -raw prints numeric labels). */
	snprintf(cmd, sizeof(cmd), "%s tool pprof -raw %s 2>&1", go, gsprof);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s", out);
	cr_expect(strstr(out, "goid:["), "no goid label: %.2000s", out);
	free(out);

	/* -tagfocus selects by wait reason. */
	cr_assert_eq(traces_load(go, gsprof, "-tagfocus=wait_reason=sleep", &tr, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_gt(tr.n, 0);
	for (size_t i = 0; i < tr.n; i++) {
		if (tr.t[i].nframes) /* pprof ends with an empty separator-only trace */
			cr_expect_str_eq(label(&tr.t[i], "wait_reason"), "sleep");
	}
	traces_free(&tr);
}

#define MAX_HELD_PROGS 64

/* How many of the programs ids[0..n) are still loaded. */
static int progs_still_loaded(const unsigned int *ids, int n)
{
	int left = 0;

	for (int i = 0; i < n; i++)
		left += prog_id_loaded(ids[i]);
	return left;
}

/* SIGKILL mid-capture: the links die with goscope's fds; no probe is left and the target
 * keeps running. */
Test(block, sigkill_leaves_no_probe, .timeout = 60)
{
	char path[4096], line[LINE_MAX_LEN], pidbuf[16];
	unsigned int ids[MAX_HELD_PROGS];
	int nids;
	struct gotarget t;
	struct gsproc g;
	int status;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", "1.27", "default");
	{
		char *argv[] = {path, "-duration", "4s", "-delay", "5ms", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(),
				"block",
				"--pid",
				pidbuf,
				"--max-overhead",
				"100",
				"--duration",
				"0",
				"-o",
				"/dev/null",
				NULL};

		gs_start(&g, argv);
	}
	cr_assert(gs_wait_for(&g, "capturing", 20000), "%s", g.buf);
	/* The programs this goscope loaded, by id: other captures may run on the host. */
	nids = held_prog_ids(g.pid, ids, MAX_HELD_PROGS);
	cr_assert_gt(nids, 0, "goscope block holds no BPF program while capturing");
	cr_assert_leq(nids, MAX_HELD_PROGS);
	usleep(500000);
	kill(g.pid, SIGKILL);
	cr_assert_eq(waitpid(g.pid, &status, 0), g.pid);
	close(g.err_fd);
	/* The kernel releases the links and programs with the last fd (the probe keeper's
	 * included), asynchronously. */
	for (int i = 0; i < 50 && progs_still_loaded(ids, nids); i++)
		usleep(100000);
	cr_assert_eq(progs_still_loaded(ids, nids), 0,
		     "%d of goscope's %d BPF programs left after SIGKILL",
		     progs_still_loaded(ids, nids), nids);
	while (gotarget_read_line(&t, line, sizeof(line), 20000) > 0 && strcmp(line, "done"))
		;
	cr_assert_str_eq(line, "done", "the target did not finish");
	cr_assert_eq(gotarget_stop(&t, 10000), 0);
}

/* Unsupported targets and bad arguments: exit codes and messages. */
Test(block, contract_errors, .timeout = 30)
{
	char cmd[4096], *out = NULL;
	size_t len;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s block --pid %d -o /dev/null 2>&1", goscope_bin(), getpid());
	rc = run_capture(cmd, 1, &out, &len);
	cr_expect_neq(rc, 0);
	cr_expect(strstr(out, "not a Go program"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s block 2>&1", goscope_bin());
	rc = run_capture(cmd, 1, &out, &len);
	cr_expect_eq(rc, 2, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s block --pid 1 --max-overhead 0 2>&1", goscope_bin());
	rc = run_capture(cmd, 1, &out, &len);
	cr_expect_eq(rc, 2, "%s", out);
	free(out);
	/* A --reasons list of separators only names no reason (issue 11, defect 10). */
	snprintf(cmd, sizeof(cmd), "%s block --pid %d --reasons ',,,' -o /dev/null 2>&1",
		 goscope_bin(), getpid());
	rc = run_capture(cmd, 1, &out, &len);
	cr_expect_eq(rc, 2, "%s", out);
	cr_expect(strstr(out, "no wait reason"), "%s", out);
	free(out);
}

/* Safety: a target under load (stack growth, preemption, thousands of parks per second)
 * survives 200 attach/capture/detach cycles with correct output. */
Test(block, attach_detach_200_cycles, .timeout = 300)
{
	char path[4096], line[LINE_MAX_LEN], pidbuf[16], dir[64], gsprof[256], cmd[8192];
	char *out = NULL;
	struct gotarget t;
	size_t len;
	int ok = 0, rc;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", "1.27", "stripped");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(gsprof, sizeof(gsprof), "%s/c.pb.gz", dir);
	{
		char *argv[] = {path, "-duration", "600s", "-delay", "1ms", "-stress", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	for (int i = 0; i < 200; i++) {
		/* Alternate unthrottled and throttled captures. */
		snprintf(cmd, sizeof(cmd),
			 "%s block --pid %s --duration 150ms --max-overhead %s -o %s 2>&1",
			 goscope_bin(), pidbuf, i % 2 ? "100" : "2", gsprof);
		rc = run_capture(cmd, 1, &out, &len);
		cr_assert_eq(rc, 0, "cycle %d: %s", i, out);
		cr_assert(strstr(out, "ended by duration"), "cycle %d: %s", i, out);
		free(out);
		cr_assert(kill(t.pid, 0) == 0, "target died at cycle %d", i);
		ok++;
	}
	/* The last profile is a valid block profile. */
	snprintf(cmd, sizeof(cmd), "%s tool pprof -raw %s 2>&1", "/usr/lib/go-1.27/bin/go", gsprof);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s", out);
	cr_expect(strstr(out, "contentions/count delay/nanoseconds"), "%.1000s", out);
	free(out);
	kill(t.pid, SIGTERM);
	while (gotarget_read_line(&t, line, sizeof(line), 30000) > 0 && strcmp(line, "done"))
		;
	cr_assert_str_eq(line, "done", "the target did not finish cleanly");
	cr_assert_eq(gotarget_stop(&t, 10000), 0);
	cr_assert_eq(ok, 200);
}

/* Throttled capture: probes duty-cycled, counts and delays scaled by 1/fraction; the total
 * over the covered sites stays close to Go's own (unbiased window edges: parks that start in
 * a window are followed to their wake-up), and the profile says it was sampled (label and
 * comment). --max-overhead 10 samples about 20 % of this workload, enough to check totals
 * to 20 %; the default budget samples about 2 %, a few dozen parks in 6 s. */
/* The scaled totals are the sampled parks divided by the sampled fraction, so their noise is
 * that of the number of parks sampled: relative sd 1/sqrt(parks) were parks independent,
 * somewhat more as they are not (each window sees the workload's pace of that moment). Host
 * load is what shrinks that number: it raises the calibrated cost per probe hit, hence lowers
 * the sampled fraction. Measured (parks sampled, totals off): 1448, 0.7 % at load average 5;
 * 933, 2.5 % at 20; 642, 9.6 % at 20 with a CPU-bound `yes` added, i.e. 0.3, 0.8 and 2.4
 * times 1/sqrt(parks); 151 parks only with two such tests at once. The bound is
 * THROTTLE_SD / sqrt(parks) (3 sd, the sd taken as 1.5 times the independent one), at least
 * THROTTLE_TOL; runs are pooled until it is THROTTLE_TOL (506 parks sampled), up to
 * THROTTLE_MAX_RUNS, so that a busy host does not leave the test unable to see a 30 % error
 * (goscope scaling by 1.3 / fraction gave 34 % off with 151 parks: inside 3 sd of one run). */
#define THROTTLE_TOL 0.20
#define THROTTLE_SD 4.5
#define THROTTLE_MAX_RUNS 3

Test(block, throttled_is_unbiased, .timeout = 200)
{
	static struct site gos[MAX_SITES], gss[MAX_SITES];
	struct bcase c = {"1.27", "default"};
	char goprof[256], gsprof[256], gobuf[256], why[2048];
	const char *go = go_tool_path(c.toolchain, gobuf, sizeof(gobuf));
	double go_delay = 0, gs_delay = 0, go_count = 0, gs_count = 0, tol = 1;
	long long parks = 0;
	struct kind_stat ks[16];
	struct traces tr;
	struct gsproc g;
	int ngo, ngs, nks, runs = 0;

	while (runs < THROTTLE_MAX_RUNS && tol > THROTTLE_TOL) {
		long long p;

		run_blocker(&c, "-duration 6s -delay 10ms", "--duration 0 --max-overhead 10",
			    goprof, gsprof, ks, &nks, &g);
		runs++;
		cr_assert(strstr(g.buf, "sampled"), "not throttled: %s", g.buf);
		p = gs_stat(&g, "parks");
		cr_assert_gt(p, 0, "no park count in goscope's summary: %s", g.buf);
		parks += p;
		ngo = load_sites(go, goprof, gos, NULL);
		ngs = load_sites(go, gsprof, gss, NULL);
		for (size_t i = 0; i < sizeof(covered_sites) / sizeof(covered_sites[0]); i++) {
			const struct site *a = site_find(gos, ngo, covered_sites[i].site);
			const struct site *b = site_find(gss, ngs, covered_sites[i].site);

			cr_assert(a);
			go_delay += a->delay;
			go_count += a->count;
			if (b) {
				gs_delay += b->delay;
				gs_count += b->count;
			}
		}
		tol = THROTTLE_SD / sqrt((double)parks);
		tol = tol > THROTTLE_TOL ? tol : THROTTLE_TOL;
		cr_log_info("throttled run %d: Go %.0f / %.2fs, goscope (scaled) %.0f / %.2fs, "
			    "%lld parks sampled (pooled); tolerance %.0f %%; %s",
			    runs, go_count, go_delay / 1e9, gs_count, gs_delay / 1e9, parks,
			    tol * 100, g.buf);
		cr_assert_eq(traces_load(go, gsprof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
		cr_expect(strstr(tr.header, "throttled"), "%s", tr.header);
		cr_expect(tr.n > 1 && label(&tr.t[0], "sampled_fraction"),
			  "no sampled_fraction label");
		traces_free(&tr);
	}
	cr_expect_leq(rel_err(gs_delay, go_delay), tol, "delay %.2fs vs %.2fs (tolerance %.0f %%)",
		      gs_delay / 1e9, go_delay / 1e9, tol * 100);
	cr_expect_leq(rel_err(gs_count, go_count), tol, "count %.0f vs %.0f (tolerance %.0f %%)",
		      gs_count, go_count, tol * 100);
}

/* Throttled, with blocks much longer than a window's drain (tests/go/longblock: goroutines
 * that each re-park right after every wake-up, at the same place, for the same reason).
 * Those blocks are timed by polling their goroutines once the probes are detached; the
 * poller must tell one park from the next (g.trackingSeq) or it would merge them into one
 * long block. The mean delay per block must match the workload's own; the scaled count is
 * a small sample (a few 20 ms windows), so it is only checked loosely here
 * (throttled_is_unbiased checks the totals). */
Test(block, throttled_long_blocks_timed, .timeout = 120)
{
	char gsprof[256], out[4096], gobuf[256], why[2048];
	char *targs[] = {"-goroutines", "400", "-delay", "250ms", "-duration", "6s", NULL};
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	static struct site sites[MAX_SITES];
	long long blocks, delay, outlived = -1;
	const struct site *s;
	const char *c;
	struct traces tr;
	struct gsproc g;
	double mean_gs, mean_wl;
	int n;

	run_under_block("longblock", "1.27", "default", targs, "--duration 0", gsprof,
			sizeof(gsprof), out, sizeof(out), &g);
	blocks = out_stat(out, "blocks ");
	delay = out_stat(out, "delay_ns ");
	cr_assert(strstr(g.buf, "sampled"), "not throttled: %s", g.buf);
	cr_assert_gt(blocks, 0);
	n = load_sites(go, gsprof, sites, NULL);
	s = site_find(sites, n, "main.waitLong");
	cr_assert(s && s->count > 0, "main.waitLong missing: %s", g.buf);
	cr_assert_eq(traces_load(go, gsprof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	c = strstr(tr.header, " blocks outlived");
	if (c) {
		while (c > tr.header && c[-1] >= '0' && c[-1] <= '9')
			c--;
		outlived = atoll(c);
	}
	traces_free(&tr);
	mean_gs = s->delay / s->count;
	mean_wl = (double)delay / (double)blocks;
	cr_log_info("longblock throttled: goscope %.0f blocks (scaled), mean %.1fms; workload %lld "
		    "blocks, mean %.1fms; %lld timed by polling; %s",
		    s->count, mean_gs / 1e6, blocks, mean_wl / 1e6, outlived, g.buf);
	cr_expect_gt(outlived, 0, "no block outlived its drain: the polling path was not run");
	/* See DELAY_TOL: 0.3 %, 1.1 % and 0.1 % off at load average 5, 20, 20 + `yes`. */
	cr_expect_leq(rel_err(mean_gs, mean_wl), DELAY_TOL, "mean delay %.1fms vs %.1fms",
		      mean_gs / 1e6, mean_wl / 1e6);
	/* The scaled count comes from a few short windows (2-5 % of the time sampled) in which
	 * 400 goroutines re-parking every 250 ms land in bunches, so it varies far more than
	 * independent parks would: 14 %, 26 % and 17 % off with 790, 751 and 612 parks sampled
	 * (1/sqrt(parks) = 4 %) at load average 5, 20, 20 + `yes`. The sampled count is what
	 * host load shrinks (see throttled_is_unbiased); at 50 % it is not what decides here. */
	cr_expect_leq(rel_err(s->count, (double)blocks), 0.5, "count %.0f vs %lld", s->count,
		      blocks);
}

/* ---- issue 11: goscope killed at random moments; a target that execs ---- */

#define SIGKILL_DEFAULT_RUNS 5 /* GOSCOPE_BLOCK_SIGKILLS overrides (tests/bench: 100) */
#define PROLOGUE_CHECK 32      /* bytes compared at each probed function's entry */
#define KEEPER_COMM "goscope-probes"

static const char *const probed_funcs[] = {"runtime.gopark", "runtime.ready",
					   "runtime.netpollready", "runtime.injectglist"};
#define NPROBED (sizeof(probed_funcs) / sizeof(probed_funcs[0]))

struct probed_code {
	uint64_t entry[NPROBED];
	uint8_t code[NPROBED][PROLOGUE_CHECK];
};

/* The binary's first bytes of each probed function (a non-PIE Go binary: link-time
 * addresses are the process's); the probes sit at the entry or on the stack-check branch,
 * both within these bytes. */
static void probed_code_read(const char *path, struct probed_code *pc)
{
	struct gs_binary *bin;
	struct gs_error err = {0};

	cr_assert_eq(gs_binary_open(path, &bin, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < NPROBED; i++) {
		uint64_t end;

		cr_assert_eq(gs_binary_find_function(bin, probed_funcs[i], &pc->entry[i], &end), 0);
		cr_assert_eq(gs_binary_read(bin, pc->entry[i], pc->code[i], PROLOGUE_CHECK), 0);
	}
	gs_binary_close(bin);
}

/* Probed functions whose code in pid differs from the binary's (a breakpoint left). */
static int probed_code_changed(pid_t pid, const struct probed_code *pc)
{
	char mem[64];
	uint8_t b[PROLOGUE_CHECK];
	int fd, n = 0;

	snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < NPROBED; i++) {
		cr_assert_eq(pread(fd, b, sizeof(b), (off_t)pc->entry[i]), (ssize_t)sizeof(b));
		if (memcmp(b, pc->code[i], sizeof(b)) != 0) {
			for (size_t j = 0; j < sizeof(b); j++)
				if (b[j] != pc->code[i][j])
					cr_log_warn("%s+%zu: 0x%02x in the process, 0x%02x in the "
						    "binary",
						    probed_funcs[i], j, b[j], pc->code[i][j]);
			n++;
		}
	}
	close(fd);
	return n;
}

/* goscope's probe keeper: its child named KEEPER_COMM (0 when there is none). */
static pid_t find_keeper(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	cr_assert(d);
	while (!found && (e = readdir(d))) {
		char path[300], buf[512], *close_paren;
		int ppid = 0, fd;
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		close_paren = strrchr(buf, ')');
		if (!close_paren || sscanf(close_paren + 2, "%*c %d", &ppid) != 1 ||
		    ppid != parent || !strstr(buf, "(" KEEPER_COMM ")"))
			continue;
		found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

static bool pid_gone(pid_t pid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	/* A zombie (not reaped yet by init) has closed everything. */
	return strstr(buf, ") Z ") != NULL;
}

/* Issue 11, defect 1: `goscope block` at the default --max-overhead (duty-cycling: attaching
 * and detaching every cycle) SIGKILLed at a random moment 1-4 s in, N times on one busy
 * ping-pong: once goscope's probe keeper has closed its links and exited, no probed function
 * of the target differs from the binary (before the keeper, 4 of 15 kills left int3 on
 * gopark/injectglist/netpollready, the target then at a quarter of its speed). The target's
 * round-trip rate is not compared: tests/go/pingpong reports one rate for its whole run,
 * goscope's captures included, and on a shared CI machine that rate moves by a third from run
 * to run; an int3 left at a probe point is the cause of the slowdown itself, and is what this
 * compares. tests/bench/probe_sigkill.sh runs 100 kills. */
Test(block, sigkill_duty_cycled_leaves_no_breakpoint, .timeout = 600)
{
	char path[4096], line[LINE_MAX_LEN], pidbuf[16];
	const char *env = getenv("GOSCOPE_BLOCK_SIGKILLS");
	const char *nk = getenv("GOSCOPE_BLOCK_SIGKILL_NO_KEEPER");
	int runs = env ? atoi(env) : SIGKILL_DEFAULT_RUNS, leaks = 0;
	bool no_keeper = nk && strcmp(nk, "1") == 0;
	struct probed_code pc;
	struct gotarget t;

	GOTARGET_BUILD_OR_SKIP(path, "pingpong", "1.27", "default");
	probed_code_read(path, &pc);
	{
		char *argv[] = {path, "-duration", "3600s", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert_eq(probed_code_changed(t.pid, &pc), 0, "breakpoints before the first capture");
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	srand((unsigned)getpid());
	for (int i = 0; i < runs; i++) {
		char *argv[] = {
			(char *)goscope_bin(), "block", "--pid", pidbuf, "--duration", "0", "-o",
			"/dev/null",	       NULL};
		struct gsproc g;
		pid_t keeper;
		int status, changed;

		gs_start(&g, argv);
		cr_assert(gs_wait_for(&g, "capturing", 20000), "%s", g.buf);
		keeper = find_keeper(g.pid);
		/* GOSCOPE_BLOCK_SIGKILL_NO_KEEPER=1: measuring a goscope from before the keeper
		 * (tests/bench/probe_sigkill.sh); its links die with its own descriptors. */
		if (!no_keeper)
			cr_assert_gt(keeper, 0, "no %s child of goscope", KEEPER_COMM);
		usleep(1000000 + (useconds_t)(rand() % 3000) * 1000);
		kill(g.pid, SIGKILL);
		cr_assert_eq(waitpid(g.pid, &status, 0), g.pid);
		close(g.err_fd);
		/* The keeper closes the links once goscope's end of its socket is gone. */
		for (int w = 0; keeper && w < 1000 && !pid_gone(keeper); w++)
			usleep(10000);
		cr_assert(!keeper || pid_gone(keeper), "the probe keeper outlived goscope by 10 s");
		if (!keeper)
			usleep(500000);
		changed = probed_code_changed(t.pid, &pc);
		if (changed)
			leaks++;
	}
	cr_log_info("block: %d of %d SIGKILLs left breakpoints", leaks, runs);
	fprintf(stderr, "block: %d of %d SIGKILLs left breakpoints\n", leaks, runs);
	cr_expect_eq(leaks, 0, "%d of %d SIGKILLs left breakpoints in the target", leaks, runs);
	kill(t.pid, SIGTERM);
	cr_assert_eq(gotarget_stop(&t, 10000), 0);
}

/* Issue 11, defect 3: a target that execs mid-capture (here itself: same pid, start time and
 * executable, the hardest case to tell) is a new process: the capture of the old image ends
 * there ("ended by target exec", a target_exec comment), its goroutines parked for good are
 * not reported as still blocked, and no probe is left in the new image. Before, the capture
 * ran on to its duration and reported the 50 goroutines the old image had blocked. */
Test(block, target_exec_ends_capture, .timeout = 120)
{
	char path[4096], line[LINE_MAX_LEN], pidbuf[16], dir[64], gsprof[256], cmd[1024];
	char *out = NULL;
	struct probed_code pc;
	struct gotarget t;
	struct gsproc g;
	size_t len;
	int rc;

	GOTARGET_BUILD_OR_SKIP(path, "execself", "1.27", "default");
	probed_code_read(path, &pc);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(gsprof, sizeof(gsprof), "%s/exec.pb.gz", dir);
	{
		char *argv[] = {path, "-after", "8s", NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(),
				"block",
				"--pid",
				pidbuf,
				"--max-overhead",
				"100",
				"--duration",
				"5s",
				"-o",
				gsprof,
				NULL};

		gs_start(&g, argv);
	}
	cr_assert(gs_wait_for(&g, "capturing", 20000), "%s", g.buf);
	/* The old image blocks 50 goroutines for good, then execs itself. */
	kill(t.pid, SIGUSR1);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "new ", 4) == 0, "%s", line);
	rc = gs_wait(&g);
	cr_assert_eq(rc, 0, "%s", g.buf);
	cr_expect(strstr(g.buf, "ended by target exec"), "%s", g.buf);
	cr_expect_eq(gs_stat(&g, "still blocked"), 0, "%s", g.buf);
	snprintf(cmd, sizeof(cmd), "gzip -dc %s | grep -ac target_exec", gsprof);
	cr_assert_eq(run_capture(cmd, 0, &out, &len), 0);
	cr_expect_eq(atoi(out), 1, "no target_exec comment in the profile");
	free(out);
	cr_expect_eq(probed_code_changed(t.pid, &pc), 0, "breakpoints left in the new image");
	while (gotarget_read_line(&t, line, sizeof(line), 20000) > 0 && strcmp(line, "done"))
		;
	cr_assert_str_eq(line, "done", "the new image did not finish");
	cr_assert_eq(gotarget_stop(&t, 10000), 0);
}
