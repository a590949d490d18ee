/* test_cpu.c — `goscope cpu` for real: loads the BPF program, samples a Go workload
 * (cpuburn: functions of known relative cost, inlined helpers, a frameless leaf, recursion
 * deeper than 64 frames, several goroutines) while the workload profiles itself with
 * runtime/pprof, and compares both profiles by function; plus the command's contracts. */
#include <criterion/criterion.h>
#include <math.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"

#define TOP_FUNCS 20
#define MAX_FUNCS 4096
#define TOP_MIN_SHARE 0.01

/* The flat-share comparison of cpu::matches_runtime_pprof, and how its bound is derived.
 *
 * Both profilers sample: runtime/pprof at 100 Hz of each thread's CPU time, goscope at
 * --frequency 499 on cpu-clock. The total variation distance (TVD) between the two leaf-
 * function distributions is then a real difference between the samplers plus sampling
 * noise, and the noise depends on how many samples each profile got — which host load
 * decides: cpuburn's 2 goroutines for 8 s give runtime/pprof ~1600 samples on an idle
 * 2-CPU machine, 400-750 when other jobs share the CPUs (measured here, load average 5). The
 * TVD of two multinomial samples of one distribution then has mean ~2.0 pp, sd ~0.8 pp at
 * 1600 samples (mean + 3 sd = 4.4 pp) but mean ~3.9 pp, sd ~1.5 pp at 400 (8.4 pp): a fixed
 * 5 pp bound fails on a loaded host with no defect (CI saw 5.4 pp; 2 of 7 cases failed here
 * under load, at 6.0 and 6.3 pp).
 *
 * So each run measures its own noise floor from the samples it got: tvd_noise() draws both
 * profiles' sample counts again and again from their pooled distribution (the null
 * hypothesis: one distribution, sampled twice) and gives the mean + 3 sd of the TVD of those
 * pairs. The bound is max(TVD_LIMIT, TVD_BIAS + that). With Go's async preemption off (see
 * burn_and_profile) no difference between the samplers is left to measure: over 23 cases
 * at load average 4-28 (pooled to 450-2100 Go samples) the TVD stood at -1.6 to +2.3 sd
 * from the noise mean, mean 0.0 sd. TVD_BIAS is a margin for what might remain and for the
 * TVD's right tail, longer than a normal one's (2 of the 23 at +2.3 sd): with it the bound
 * is 3.6-4.2 sd from the noise mean. To keep the test sharp on a loaded host, runs are repeated and pooled (counts
 * added) until the bound is at most TVD_POOL_UNTIL, up to TVD_MAX_RUNS runs: one run on an
 * idle host (~1600 samples: bound 5.4 pp), three when the host is busy. A defect the size of
 * a PC-convention slip (the leaf looked up at pc - 1) made 8-11 pp. */
#define TVD_LIMIT 0.05
#define TVD_BIAS 0.01
#define TVD_POOL_UNTIL 0.06
#define TVD_MAX_RUNS 3
#define TVD_NULL_DRAWS 400

struct cpucase {
	char toolchain[8];
	char mode[16];
};

ParameterizedTestParameters(cpu, matches_runtime_pprof)
{
	static struct cpucase cases[] = {
		{"1.19", "default"},  {"1.19", "stripped"}, {"1.22", "default"},
		{"1.22", "stripped"}, {"1.27", "default"},  {"1.27", "stripped"},
		{"1.27", "pie"},
	};
	return cr_make_param_array(struct cpucase, cases, sizeof(cases) / sizeof(cases[0]));
}

struct func_value {
	char *name;
	double a, b; /* flat sample counts in profile a (Go's) and b (goscope's), all runs */
	double cum;  /* cumulative in profile a, this run */
};

static struct func_value *fv_get(struct func_value *fv, int *n, const char *name)
{
	for (int i = 0; i < *n; i++) {
		if (strcmp(fv[i].name, name) == 0)
			return &fv[i];
	}
	cr_assert_lt(*n, MAX_FUNCS);
	fv[*n] = (struct func_value){.name = strdup(name)};
	cr_assert_not_null(fv[*n].name);
	return &fv[(*n)++];
}

static int by_cum(const void *x, const void *y)
{
	const struct func_value *a = x, *b = y;

	return (a->cum < b->cum) - (a->cum > b->cum);
}

/* Total variation distance between the flat distributions of a and b. */
static double tvd_of(const struct func_value *fv, int nf, double na, double nb)
{
	double tvd = 0;

	for (int i = 0; i < nf; i++) {
		double d = fv[i].a / na - fv[i].b / nb;

		tvd += d > 0 ? d : -d;
	}
	return tvd / 2;
}

/* xorshift64*: a fixed seed, so the noise estimate of given counts is reproducible. */
static double rnd01(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Draws n samples from the distribution whose cumulative shares are cdf[0..k-1] into cnt. */
static void draw_counts(const double *cdf, int k, long n, double *cnt, uint64_t *seed)
{
	memset(cnt, 0, (size_t)k * sizeof(*cnt));
	for (long i = 0; i < n; i++) {
		double u = rnd01(seed);
		int lo = 0, hi = k - 1;

		while (lo < hi) {
			int mid = (lo + hi) / 2;

			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		cnt[lo]++;
	}
}

/* The sampling noise of the TVD for these sample counts: mean + 3 sd of the TVD between two
 * profiles of na and nb samples drawn from the pooled distribution (see above). */
static double tvd_noise(const struct func_value *fv, int nf, double na, double nb, double *mean,
			double *sd)
{
	double *cdf = calloc((size_t)nf, sizeof(double)), *ca = calloc((size_t)nf, sizeof(double));
	double *cb = calloc((size_t)nf, sizeof(double)), sum = 0, sum2 = 0, c = 0;
	uint64_t seed = 0x9E3779B97F4A7C15ULL;

	cr_assert(cdf && ca && cb);
	for (int i = 0; i < nf; i++) {
		c += (fv[i].a + fv[i].b) / (na + nb);
		cdf[i] = c;
	}
	cdf[nf - 1] = 1.0;
	for (int r = 0; r < TVD_NULL_DRAWS; r++) {
		double t = 0;

		draw_counts(cdf, nf, (long)na, ca, &seed);
		draw_counts(cdf, nf, (long)nb, cb, &seed);
		for (int i = 0; i < nf; i++) {
			double d = ca[i] / na - cb[i] / nb;

			t += d > 0 ? d : -d;
		}
		t /= 2;
		sum += t;
		sum2 += t * t;
	}
	*mean = sum / TVD_NULL_DRAWS;
	*sd = sqrt(sum2 / TVD_NULL_DRAWS - *mean * *mean);
	free(cdf);
	free(ca);
	free(cb);
	return *mean + 3 * *sd;
}

/* One run: cpuburn for 8 s profiling itself while goscope profiles it; both profiles read by
 * go tool pprof in sample counts (tg: Go's, ts: goscope's). */
static void burn_and_profile(const char *path, const char *go, struct traces *tg, struct traces *ts)
{
	char dir[64], goprof[256], gsprof[256], pidbuf[16], line[256], why[2048];
	struct gotarget t;
	int rc;
	pid_t gs;

	/* Go's own profiler has a bias goscope does not: a SIGPROF that arrives while the
	 * runtime handles its async-preemption signal (SIGURG) is taken right after the handler
	 * returns, at the entry of the injected runtime.asyncPreempt call. The interrupted
	 * function is then asyncPreempt's caller frame, looked up at its PC - 1 (as a return
	 * address) although it is the next instruction to run, so the instruction before it
	 * is charged (main.mix's last inlined instruction for a thread stopped on the call to
	 * main.leaf). On an idle host those samples are ~3 % of the profile; when other jobs
	 * keep the threads waiting for a CPU both signals are pending whenever a thread runs
	 * again and they were 50-70 % (measured here at load average 12-28), and charging
	 * them to the caller frame gave main.mix 3.2 pp more than goscope on average over 16
	 * such runs. Without async preemption (the workload's calls are still cooperative
	 * preemption points) runtime/pprof's samples all stand at the interrupted PC. */
	cr_assert_eq(setenv("GODEBUG", "asyncpreemptoff=1", 1), 0);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(goprof, sizeof(goprof), "%s/go.pprof", dir);
	snprintf(gsprof, sizeof(gsprof), "%s/goscope.pb.gz", dir);
	{
		char *argv[] = {(char *)path, "-duration",   "8s",   "-goroutines",
				"2",	      "-cpuprofile", goprof, NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		/* No --duration limit: the capture must end by itself when the target exits. */
		char *argv[] = {(char *)goscope_bin(), "cpu", "--pid", pidbuf, "--duration", "0",
				"--frequency",	       "499", "-o",    gsprof, NULL};

		gs = spawn_argv(argv);
		cr_assert_geq(gs, 0);
	}
	while (gotarget_read_line(&t, line, sizeof(line), 20000) > 0 && strncmp(line, "done", 4))
		;
	cr_assert_eq(gotarget_stop(&t, 10000), 0);
	rc = wait_exit_code(gs);
	cr_assert_eq(rc, 0, "goscope cpu exited %d", rc);

	/* Sample counts: the noise estimate needs them (the shares are the same in ns). */
	cr_assert_eq(traces_load(go, goprof, "-sample_index=samples", tg, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(traces_load(go, gsprof, "-sample_index=samples", ts, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_gt(ts->n, 10, "goscope profile has %zu traces", ts->n);
	cr_assert_gt(tg->total, 0);
}

ParameterizedTest(struct cpucase *c, cpu, matches_runtime_pprof, .timeout = 300)
{
	static struct func_value fv[MAX_FUNCS];
	char path[4096], gobuf[256];
	const char *go = go_tool_path(c->toolchain, gobuf, sizeof(gobuf));
	double na = 0, nb = 0, tvd = 0, noise = 0, mean = 0, sd = 0, bound = TVD_LIMIT;
	double preempt = 0; /* Go's samples left out (asyncPreempt, see below) */
	int nf = 0, runs = 0;

	GOTARGET_BUILD_OR_SKIP(path, "cpuburn", c->toolchain, c->mode);
	while (runs < TVD_MAX_RUNS) {
		struct traces tg, ts;

		burn_and_profile(path, go, &tg, &ts);
		runs++;
		/* Async preemption is off in cpuburn (see burn_and_profile); a sample at
		 * runtime.asyncPreempt would be charged one instruction early (see there): left
		 * out, should there be any. */
		for (size_t i = 0; i < tg.n; i++) {
			struct trace *tr = &tg.t[i];

			if (tr->nframes > 1 && strcmp(tr->frames[0], "runtime.asyncPreempt") == 0) {
				for (int j = 0; j < tr->nframes; j++)
					free(tr->frames[j]);
				tr->nframes = 0;
				tg.total -= tr->value;
				preempt += tr->value;
			}
		}

		for (int i = 0; i < nf; i++)
			fv[i].cum = 0;
		for (size_t i = 0; i < tg.n; i++) {
			struct trace *tr = &tg.t[i];

			if (tr->nframes == 0)
				continue;
			fv_get(fv, &nf, tr->frames[0])->a += tr->value;
			na += tr->value;
			for (int j = 0; j < tr->nframes; j++) {
				bool seen = false;

				for (int k = 0; k < j; k++)
					seen |= strcmp(tr->frames[k], tr->frames[j]) == 0;
				if (!seen)
					fv_get(fv, &nf, tr->frames[j])->cum += tr->value;
			}
		}
		for (size_t i = 0; i < ts.n; i++) {
			if (ts.t[i].nframes) {
				fv_get(fv, &nf, ts.t[i].frames[0])->b += ts.t[i].value;
				nb += ts.t[i].value;
			}
		}

		/* Every caller->callee edge among the top 20 functions of Go's profile (each
		 * run). cpuburn has fewer than 20 functions of its own, so "top" also requires
		 * a cumulative share of at least TOP_MIN_SHARE: below that a function is seen
		 * in a handful of samples (runtime preemption internals such as asyncPreempt2
		 * -> xRegSave), where whether either sampler catches it is chance, not
		 * correctness. */
		qsort(fv, (size_t)nf, sizeof(fv[0]), by_cum);
		{
			int top = nf < TOP_FUNCS ? nf : TOP_FUNCS, checked = 0;

			while (top > 0 && fv[top - 1].cum < TOP_MIN_SHARE * tg.total)
				top--;

			for (size_t i = 0; i < tg.n; i++) {
				struct trace *tr = &tg.t[i];

				for (int j = 0; j + 1 < tr->nframes; j++) {
					bool callee_top = false, caller_top = false;

					for (int k = 0; k < top; k++) {
						callee_top |=
							strcmp(fv[k].name, tr->frames[j]) == 0;
						caller_top |=
							strcmp(fv[k].name, tr->frames[j + 1]) == 0;
					}
					if (!callee_top || !caller_top)
						continue;
					checked++;
					cr_assert(traces_has_edge(&ts, tr->frames[j + 1],
								  tr->frames[j]),
						  "edge %s -> %s of Go's profile missing from "
						  "goscope's",
						  tr->frames[j + 1], tr->frames[j]);
				}
			}
			cr_assert_gt(checked, 5);
		}
		/* The frameless leaf keeps its direct caller. */
		cr_assert(traces_has_edge(&ts, "main.hot", "main.leaf"));
		traces_free(&tg);
		traces_free(&ts);

		tvd = tvd_of(fv, nf, na, nb);
		noise = tvd_noise(fv, nf, na, nb, &mean, &sd);
		bound = TVD_BIAS + noise > TVD_LIMIT ? TVD_BIAS + noise : TVD_LIMIT;
		cr_log_info(
			"go%s %s run %d: %.0f Go samples (%.0f more at asyncPreempt left out), "
			"%.0f goscope samples (pooled), TVD %.2f pp; noise mean %.2f sd %.2f pp; "
			"bound %.2f pp",
			c->toolchain, c->mode, runs, na, preempt, nb, tvd * 100, mean * 100,
			sd * 100, bound * 100);
		if (bound <= TVD_POOL_UNTIL)
			break;
	}
	if (bound > TVD_POOL_UNTIL)
		cr_log_warn("go%s %s: only %.0f Go samples in %d runs (host busy): bound %.1f pp",
			    c->toolchain, c->mode, na, runs, bound * 100);
	cr_assert_leq(tvd, bound,
		      "flat-share total variation distance %.1f pp > %.1f pp (%.0f Go samples, "
		      "%.0f goscope samples, %d runs; noise mean %.2f sd %.2f pp)",
		      tvd * 100, bound * 100, na, nb, runs, mean * 100, sd * 100);
	for (int i = 0; i < nf; i++)
		free(fv[i].name);
}

/* Starts cpuburn (go1.27) for secs seconds; fills t. */
static void start_burn(struct gotarget *t, char *path, size_t len, const char *secs)
{
	char why[1024], line[256];
	char *argv[] = {path, "-duration", (char *)secs, NULL};
	int rc = gotarget_build("cpuburn", "1.27", "default", path, len, why, sizeof(why));

	if (rc == GOTARGET_SKIP)
		cr_skip_test("%s", why);
	cr_assert_eq(rc, 0, "%s", why);
	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 10000), 0);
}

Test(cpu, nonexistent_pid_is_usage_error)
{
	char cmd[512], *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s cpu --pid 999999999 --duration 1s -o /dev/null",
		 goscope_bin());
	rc = run_capture(cmd, 1, &out, NULL);
	cr_assert_eq(rc, 2, "rc %d: %s", rc, out);
	cr_assert(strstr(out, "no such process: 999999999"), "%s", out);
	free(out);
}

Test(cpu, bad_options_are_usage_errors)
{
	static const char *const bad[] = {"cpu",
					  "cpu --frequency 0 --pid 1",
					  "cpu --duration 10x --pid 1",
					  "cpu --pid 1 --all-go",
					  "cpu --bogus",
					  NULL};
	char cmd[512], *out = NULL;

	for (int i = 0; bad[i]; i++) {
		snprintf(cmd, sizeof(cmd), "%s %s", goscope_bin(), bad[i]);
		cr_assert_eq(run_capture(cmd, 1, &out, NULL), 2, "%s: %s", bad[i], out);
		cr_assert(strstr(out, "usage: goscope cpu"), "%s: %s", bad[i], out);
		free(out);
	}
}

/* A non-Go process is still profiled; its frames come from ELF symbols. */
Test(cpu, non_go_process, .timeout = 60)
{
	char dir[64], prof[128], cmd[512], why[1024], gobuf[256], *out = NULL;
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	struct traces tr;
	pid_t busy = fork();
	int rc;

	cr_assert_geq(busy, 0);
	if (busy == 0) {
		execl("/bin/sh", "sh", "-c", "i=0; while :; do i=$((i+1)); done", NULL);
		_exit(127);
	}
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(prof, sizeof(prof), "%s/sh.pb.gz", dir);
	snprintf(cmd, sizeof(cmd), "%s cpu --pid %d --duration 2s -o %s", goscope_bin(), busy,
		 prof);
	rc = run_capture(cmd, 1, &out, NULL);
	kill(busy, SIGKILL);
	waitpid(busy, NULL, 0);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	if (!go)
		cr_skip_test("go1.27 not installed: cannot decode the profile");
	cr_assert_eq(traces_load(go, prof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(tr.n, 0);
	/* dash/bash: at least some frames resolve to dynamic symbols of libc or the shell. */
	{
		int named = 0;

		for (size_t i = 0; i < tr.n; i++) {
			for (int j = 0; j < tr.t[i].nframes; j++)
				named += strncmp(tr.t[i].frames[j], "0x", 2) != 0;
		}
		cr_assert_gt(named, 0, "no frame was symbolized");
	}
	traces_free(&tr);
}

/* Ctrl-C ends the capture early and the profile is still written. */
Test(cpu, sigint_writes_profile, .timeout = 60)
{
	char path[4096], dir[64], prof[128], pidbuf[16];
	struct gotarget t;
	struct stat st;
	pid_t gs;

	start_burn(&t, path, sizeof(path), "30s");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(prof, sizeof(prof), "%s/int.pb.gz", dir);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(),
				"cpu",
				"--pid",
				pidbuf,
				"--duration",
				"60s",
				"-o",
				prof,
				NULL};

		gs = spawn_argv(argv);
		cr_assert_geq(gs, 0);
	}
	sleep(2);
	kill(gs, SIGINT);
	cr_assert_eq(wait_exit_code(gs), 0);
	cr_assert_eq(stat(prof, &st), 0, "no profile written");
	cr_assert_gt(st.st_size, 100);
	/* The target is unharmed. */
	cr_assert_eq(kill(t.pid, 0), 0);
	kill(t.pid, SIGTERM);
	gotarget_stop(&t, 5000);
}

/* --all-go finds the Go workload by itself; -o - writes to stdout. */
Test(cpu, all_go_to_stdout, .timeout = 60)
{
	char path[4096], dir[64], prof[128], cmd[512], why[1024], gobuf[256], *out = NULL;
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	struct gotarget t;
	struct traces tr;
	int rc;

	start_burn(&t, path, sizeof(path), "4s");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(prof, sizeof(prof), "%s/all.pb.gz", dir);
	snprintf(cmd, sizeof(cmd), "%s cpu --all-go --duration 2s -o - 2>/dev/null > %s",
		 goscope_bin(), prof);
	rc = run_capture(cmd, 0, &out, NULL);
	gotarget_stop(&t, 10000);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	cr_assert_eq(traces_load(go, prof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(traces_flat(&tr, "main.hot") + traces_flat(&tr, "main.spin"), 0);
	/* Each sample says which process it came from. */
	cr_assert_gt(tr.t[0].nlabels, 0);
	traces_free(&tr);
}

/* --kernel adds kernel frames for time spent in the kernel on behalf of the target. */
Test(cpu, kernel_stacks, .timeout = 60)
{
	char path[4096], dir[64], prof[128], cmd[512], why[1024], gobuf[256], line[256];
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	char *argv[] = {path, "-duration", "3s", NULL};
	char *out = NULL;
	struct gotarget t;
	struct traces tr;
	int rc, kernel = 0;

	/* pingpong parks and wakes goroutines: futex system calls. */
	rc = gotarget_build("pingpong", "1.27", "default", path, sizeof(path), why, sizeof(why));
	if (rc == GOTARGET_SKIP)
		cr_skip_test("%s", why);
	cr_assert_eq(rc, 0, "%s", why);
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(prof, sizeof(prof), "%s/k.pb.gz", dir);
	/* At 99 Hz a 2 s capture of a busy host saw as few as 4 samples in system calls, and
	 * sometimes none: 999 Hz gives about ten times as many, so the test does not depend on
	 * how much of the target's time a loaded host leaves in the kernel. */
	snprintf(cmd, sizeof(cmd), "%s cpu --pid %d --kernel --frequency 999 --duration 2s -o %s",
		 goscope_bin(), t.pid, prof);
	rc = run_capture(cmd, 1, &out, NULL);
	gotarget_stop(&t, 10000);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	cr_assert_eq(traces_load(go, prof, NULL, &tr, why, sizeof(why)), 0, "%s", why);
	for (size_t i = 0; i < tr.n; i++) {
		for (int j = 0; j < tr.t[i].nframes; j++) {
			if (strstr(tr.t[i].frames[j], "entry_SYSCALL") ||
			    strstr(tr.t[i].frames[j], "do_syscall") ||
			    strstr(tr.t[i].frames[j], "futex"))
				kernel++;
		}
	}
	cr_assert_gt(kernel, 0, "no kernel frames in the profile");
	traces_free(&tr);
}

/* A CPU profile opens in `go tool pprof` of every installed toolchain (-top, -raw and a
 * -proto round trip) and in an independent decoder (npm pprof-format), with the sample
 * types, period and labels the contract names. */
Test(cpu, profile_validates_everywhere, .timeout = 180)
{
	char path[4096], dir[64], prof[128], rt[160], cmd[1024], gobuf[256], *out = NULL;
	struct gotarget t;
	int rc, validated = 0;

	start_burn(&t, path, sizeof(path), "4s");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(prof, sizeof(prof), "%s/v.pb.gz", dir);
	snprintf(cmd, sizeof(cmd), "%s cpu --pid %d --duration 2s --frequency 199 -o %s 2>&1",
		 goscope_bin(), t.pid, prof);
	rc = run_capture(cmd, 0, &out, NULL);
	gotarget_stop(&t, 10000);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	for (int i = 0; gotarget_toolchains[i]; i++) {
		const char *go = go_tool_path(gotarget_toolchains[i], gobuf, sizeof(gobuf));
		static const char *const views[] = {"-top", "-raw", NULL};

		if (!go)
			continue;
		for (int v = 0; views[v]; v++) {
			snprintf(cmd, sizeof(cmd),
				 "HOME=/tmp PPROF_BINARY_PATH=/nonexistent %s tool pprof "
				 "-symbolize=none %s %s 2>&1",
				 go, views[v], prof);
			rc = run_capture(cmd, 0, &out, NULL);
			cr_assert_eq(rc, 0, "go%s pprof %s: %s", gotarget_toolchains[i], views[v],
				     out);
			cr_assert(strstr(out, "main.hot"), "go%s %s: %s", gotarget_toolchains[i],
				  views[v], out);
			if (strcmp(views[v], "-raw") == 0) {
				cr_assert(strstr(out, "samples/count cpu/nanoseconds"), "%s", out);
				cr_assert(strstr(out, "pid:"), "%s", out);
				cr_assert(strstr(out, "comm:"), "%s", out);
			}
			free(out);
		}
		snprintf(rt, sizeof(rt), "%s/rt-%d.pb.gz", dir, i);
		snprintf(cmd, sizeof(cmd),
			 "HOME=/tmp PPROF_BINARY_PATH=/nonexistent %s tool pprof -symbolize=none "
			 "-proto %s > %s && HOME=/tmp %s tool pprof -symbolize=none -top %s 2>&1",
			 go, prof, rt, go, rt);
		rc = run_capture(cmd, 0, &out, NULL);
		cr_assert_eq(rc, 0, "go%s -proto round trip: %s", gotarget_toolchains[i], out);
		cr_assert(strstr(out, "main.hot"));
		free(out);
		validated++;
	}
	cr_assert_gt(validated, 0, "no Go toolchain installed");
	snprintf(cmd, sizeof(cmd), "node tests/tools/pprof-check.js %s", prof);
	rc = run_capture(cmd, 1, &out, NULL);
	if (rc == 127 || strstr(out, "Cannot find module"))
		cr_skip_test("node or tests/tools/node_modules missing (make deps installs them)");
	cr_assert_eq(rc, 0, "pprof-check: %s", out);
	cr_assert(strstr(out, "\"nanoseconds\""), "%s", out);
	cr_assert(strstr(out, "main.hot"), "%s", out);
	free(out);
}

/* Without privileges the error names what is missing (run as user nobody via setpriv). */
Test(cpu, missing_privileges_named, .timeout = 60)
{
	char path[4096], cmd[1024], *out = NULL;
	struct gotarget t;
	int rc;

	if (access("/usr/bin/setpriv", X_OK) != 0)
		cr_skip_test("setpriv (util-linux) not installed");
	start_burn(&t, path, sizeof(path), "5s");
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
		 "--bounding-set=-all %s cpu --pid %d --duration 1s -o /tmp/nobody.pb.gz 2>&1",
		 goscope_bin(), t.pid);
	rc = run_capture(cmd, 0, &out, NULL);
	gotarget_stop(&t, 10000);
	cr_assert_eq(rc, 1, "rc %d: %s", rc, out);
	cr_assert(strstr(out, "CAP_BPF") && strstr(out, "CAP_PERFMON"), "%s", out);
	free(out);
}
