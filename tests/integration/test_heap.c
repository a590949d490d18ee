/* test_heap.c — `goscope heap` against the Go program's own profile: tests/go/heapalloc
 * allocates known amounts at known call sites (some freed), runs runtime.GC(), writes its own
 * heap (block, mutex) profile with runtime/pprof, then stays still; goscope reads the
 * buckets from its memory, and for every stack (function and line of every frame, and the
 * "bytes" label) all values must be equal — exactly for the heap and the contention counts,
 * within the TSC measurement for block/mutex delays. Stacks goscope has and Go's profile
 * lacks must be all zero (buckets the profile writer itself created afterwards: their
 * allocations are not published before the next GC, which the program has turned off).
 * Also: MemProfileRate = 0, usage errors, a process killed while it is read. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/run.h"

#define LINE_TIMEOUT_MS 30000
#define MAX_STACKS 4096
#define KEY_MAX 8192
/* block/mutex delays: Go divides cycles by its own estimate of the TSC rate, goscope by
 * its own 20 ms measurement; both are within 0.1 % of the true rate here */
#define DELAY_TOLERANCE 0.01

struct stack_vals {
	char *key;
	int64_t v[4];
};

struct stacks {
	struct stack_vals s[MAX_STACKS];
	size_t n;
	char types[256];
	int64_t period;
	char period_type[64];
};

static const char *str(const struct pprof_doc *d, uint64_t i)
{
	return i < d->nstrings ? d->strings[i] : "<bad string index>";
}

static const struct pprof_location *loc_by_id(const struct pprof_doc *d, uint64_t id)
{
	for (size_t i = 0; i < d->nlocs; i++)
		if (d->locs[i].id == id)
			return &d->locs[i];
	return NULL;
}

static const struct pprof_function *fn_by_id(const struct pprof_doc *d, uint64_t id)
{
	for (size_t i = 0; i < d->nfuncs; i++)
		if (d->funcs[i].id == id)
			return &d->funcs[i];
	return NULL;
}

/* Reads a profile into (stack and labels) -> summed values. */
static void load(const char *path, struct stacks *st)
{
	struct pprof_doc d;
	char why[256];

	memset(st, 0, sizeof(*st));
	cr_assert_eq(pprof_decode_file(path, &d, why, sizeof(why)), 0, "%s: %s", path, why);
	for (size_t i = 0; i < d.nsample_types; i++) {
		size_t l = strlen(st->types);

		snprintf(st->types + l, sizeof(st->types) - l, "%s/%s ",
			 str(&d, d.sample_types[i].type), str(&d, d.sample_types[i].unit));
	}
	st->period = d.period;
	snprintf(st->period_type, sizeof(st->period_type), "%s/%s", str(&d, d.period_type.type),
		 str(&d, d.period_type.unit));
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		char key[KEY_MAX] = "";
		size_t kl = 0, j;

		for (size_t l = 0; l < s->nlocs; l++) {
			const struct pprof_location *loc = loc_by_id(&d, s->locs[l]);

			cr_assert_not_null(loc, "%s: sample with unknown location", path);
			for (size_t k = 0; k < loc->nlines && kl < KEY_MAX - 1; k++) {
				const struct pprof_function *f = fn_by_id(&d, loc->lines[k].fn);

				kl += (size_t)snprintf(key + kl, KEY_MAX - kl, "%s:%lld%s",
						       f ? str(&d, f->name) : "?",
						       (long long)loc->lines[k].line,
						       k + 1 < loc->nlines ? "," : "|");
				if (kl >= KEY_MAX)
					kl = KEY_MAX - 1;
			}
		}
		for (size_t l = 0; l < s->nlabels && kl < KEY_MAX - 1; l++) {
			/* the agent's own labels (pid, service...) are not Go's */
			if (strcmp(str(&d, s->labels[l].key), "bytes") != 0)
				continue;
			kl += (size_t)snprintf(key + kl, KEY_MAX - kl, " {%s=%s%lld}",
					       str(&d, s->labels[l].key), str(&d, s->labels[l].str),
					       (long long)s->labels[l].num);
			if (kl >= KEY_MAX)
				kl = KEY_MAX - 1;
		}
		for (j = 0; j < st->n && strcmp(st->s[j].key, key) != 0; j++)
			;
		if (j == st->n) {
			cr_assert_lt(st->n, MAX_STACKS);
			st->s[st->n++].key = strdup(key);
		}
		for (size_t v = 0; v < s->nvalues && v < 4; v++)
			st->s[j].v[v] += s->values[v];
	}
	pprof_doc_free(&d);
}

static void unload(struct stacks *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->s[i].key);
	st->n = 0;
}

static const struct stack_vals *find(const struct stacks *st, const char *key)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->s[i].key, key) == 0)
			return &st->s[i];
	return NULL;
}

static bool close_enough(int64_t want, int64_t got, double tol)
{
	double d = (double)(want > got ? want - got : got - want);

	return d <= tol * (double)(want > 0 ? want : 1) + 1000;
}

/* Whether every frame of a stack key is the runtime's. */
static bool runtime_only(const char *key)
{
	const char *p = key;

	while (*p && *p != ' ') {
		if (strncmp(p, "runtime.", 8) != 0)
			return false;
		p += strcspn(p, ",|");
		if (*p)
			p++;
	}
	return true;
}

/* Every stack of want in got with the same values (nvals; value 1 within tol_v1 when
 * tol_v1 > 0); every other stack of got all zero. Returns the stacks compared. */
static size_t compare(const struct stacks *want, const struct stacks *got, size_t nvals,
		      double tol_v1)
{
	size_t nonzero = 0;

	cr_assert_str_eq(got->types, want->types);
	cr_assert_str_eq(got->period_type, want->period_type);
	cr_assert_eq(got->period, want->period);
	for (size_t i = 0; i < want->n; i++) {
		const struct stack_vals *w = &want->s[i], *g = find(got, w->key);

		cr_assert_not_null(g, "goscope lacks the stack %s", w->key);
		if (tol_v1 > 0 && runtime_only(w->key)) {
			/* the runtime's own lock contention goes on being recorded after the
			 * program wrote its profile (1.22+: runtime.unlock records it) */
			cr_assert_geq(g->v[0], w->v[0], "%s", w->key);
			continue;
		}
		for (size_t v = 0; v < nvals; v++) {
			if (v == 1 && tol_v1 > 0)
				cr_assert(close_enough(w->v[v], g->v[v], tol_v1),
					  "value %zu of %s: go %lld goscope %lld", v, w->key,
					  (long long)w->v[v], (long long)g->v[v]);
			else
				cr_assert_eq(g->v[v], w->v[v],
					     "value %zu of %s: go %lld goscope %lld", v, w->key,
					     (long long)w->v[v], (long long)g->v[v]);
		}
		nonzero++;
	}
	for (size_t i = 0; i < got->n; i++) {
		const struct stack_vals *g = &got->s[i];

		if (find(want, g->key) || (tol_v1 > 0 && runtime_only(g->key)))
			continue;
		for (size_t v = 0; v < nvals; v++)
			cr_assert_eq(g->v[v], 0, "goscope has the stack %s (value %zu = %lld)",
				     g->key, v, (long long)g->v[v]);
	}
	return nonzero;
}

/* Starts heapalloc with mode, waits for its "ready" line (its profile is written then). */
static int start(struct gotarget *t, const char *bin, const char *mode, const char *own)
{
	char *argv[] = {(char *)bin, "-mode", (char *)mode, "-o", (char *)own, NULL};
	char line[256];
	int pid;

	cr_assert_eq(gotarget_start(t, bin, argv), 0, "start %s", bin);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), LINE_TIMEOUT_MS), 0,
		     "no ready line");
	cr_assert_eq(sscanf(line, "ready %d", &pid), 1, "bad ready line '%s'", line);
	return pid;
}

struct hcase {
	char toolchain[8];
	char mode[16];
};

ParameterizedTestParameters(heap, matches_runtime_pprof)
{
	static struct hcase cases[48];
	size_t n = 0;

	for (int t = 0; gotarget_toolchains[t]; t++) {
		const char *modes[] = {"default", "stripped", NULL, NULL};

		/* PIE (a load bias) and cgo (external linking), as the goroutine dumps test */
		if (strcmp(gotarget_toolchains[t], "1.27") == 0) {
			modes[2] = "pie";
			modes[3] = "cgo-stripped";
		} else if (strcmp(gotarget_toolchains[t], "1.21") == 0) {
			modes[2] = "cgo";
			modes[3] = "stripped-pie";
		}
		for (int m = 0; m < 4 && modes[m]; m++) {
			snprintf(cases[n].toolchain, sizeof(cases[n].toolchain), "%s",
				 gotarget_toolchains[t]);
			snprintf(cases[n].mode, sizeof(cases[n].mode), "%s", modes[m]);
			n++;
		}
	}
	return cr_make_param_array(struct hcase, cases, n);
}

/* Runs one kind against one build; returns the stacks compared. */
static size_t run_kind(const struct hcase *c, const char *kind, size_t nvals, double tol)
{
	static struct stacks want, got;
	char bin[4096], tmp[256], own[512], gs[512], cmd[8192];
	struct gotarget t;
	char *out = NULL;
	size_t outlen, n;
	int pid, rc;

	GOTARGET_BUILD_OR_SKIP(bin, "heapalloc", c->toolchain, c->mode);
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(own, sizeof(own), "%s/own.pb.gz", tmp);
	snprintf(gs, sizeof(gs), "%s/goscope.pb.gz", tmp);
	pid = start(&t, bin, kind, own);
	snprintf(cmd, sizeof(cmd), "%s heap --pid %d --kind %s -o %s 2>&1", goscope_bin(), pid,
		 kind, gs);
	rc = run_capture(cmd, 1, &out, &outlen);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 0, "goscope heap failed: %s", out);
	cr_assert(strstr(out, " 0 inconsistent, 0 unreadable"), "summary: %s", out);
	cr_assert(strstr(out, strstr(c->mode, "stripped") ? "list from runtime." : "symbol"),
		  "list head found by: %s", out);
	load(own, &want);
	load(gs, &got);
	n = compare(&want, &got, nvals, tol);
	if (!strcmp(kind, "heap")) {
		/* the generic call site was sampled (12 samples expected of the int64 shape's
		 * 6.4 MB at the default rate), so compare() held goscope's names of generic
		 * functions to the runtime's: full symbol names since Go 1.21
		 * (main.allocGeneric[go.shape.int64]), before that the binary's own
		 * (main.allocGeneric[...]) */
		bool generic = false;

		for (size_t i = 0; i < got.n && !generic; i++)
			generic = strstr(got.s[i].key, "main.allocGeneric[") != NULL;
		cr_assert(generic, "no stack with main.allocGeneric");
	}
	unload(&want);
	unload(&got);
	free(out);
	return n;
}

ParameterizedTest(struct hcase *c, heap, matches_runtime_pprof, .timeout = 120)
{
	/* the program's eight call sites, and the allocations of its runtime */
	cr_assert_geq(run_kind(c, "heap", 4, 0), 6);
}

ParameterizedTestParameters(heap, block_and_mutex)
{
	static struct hcase cases[] = {
		{"1.19", "default"}, {"1.22", "stripped"}, {"1.23", "default"},
		{"1.27", "default"}, {"1.27", "stripped"},
	};

	return cr_make_param_array(struct hcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct hcase *c, heap, block_and_mutex, .timeout = 120)
{
	cr_assert_geq(run_kind(c, "block", 2, DELAY_TOLERANCE), 1);
	cr_assert_geq(run_kind(c, "mutex", 2, DELAY_TOLERANCE), 1);
}

Test(heap, rate_zero_is_an_error, .timeout = 60)
{
	char bin[4096], cmd[8192];
	struct gotarget t;
	char *out = NULL;
	size_t outlen;
	int pid, rc;

	GOTARGET_BUILD_OR_SKIP(bin, "heapalloc", "1.27", "stripped");
	pid = start(&t, bin, "rate0", "");
	snprintf(cmd, sizeof(cmd), "%s heap --pid %d -o /dev/null 2>&1", goscope_bin(), pid);
	rc = run_capture(cmd, 1, &out, &outlen);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "runtime.MemProfileRate is 0"), "message: %s", out);
	free(out);
	/* block profiling never enabled: said so too */
	pid = start(&t, bin, "heap", "/dev/null");
	snprintf(cmd, sizeof(cmd), "%s heap --pid %d --kind block -o /dev/null 2>&1", goscope_bin(),
		 pid);
	rc = run_capture(cmd, 1, &out, &outlen);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	cr_assert(strstr(out, "SetBlockProfileRate"), "message: %s", out);
	free(out);
}

Test(heap, usage_errors)
{
	const char *bad[] = {"heap",
			     "heap --pid",
			     "heap --pid 0",
			     "heap --pid 1 --kind cpu",
			     "heap --pid 1 extra",
			     "heap --bogus"};
	char cmd[1024];
	char *out = NULL;
	size_t outlen;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s %s 2>&1", goscope_bin(), bad[i]);
		cr_assert_eq(run_capture(cmd, 1, &out, &outlen), 2, "%s: %s", bad[i], out);
		cr_assert(strstr(out, "usage: goscope heap"), "%s: %s", bad[i], out);
		free(out);
	}
	snprintf(cmd, sizeof(cmd), "%s heap --pid 999999999 2>&1", goscope_bin());
	cr_assert_neq(run_capture(cmd, 1, &out, &outlen), 0, "%s", out);
	free(out);
}

/* A program that allocates and collects all the time: every read succeeds, its records
 * validated (the summary counts what changed meanwhile), the churn site in the profile. */
Test(heap, busy_program, .timeout = 120)
{
	char bin[4096], line[256], cmd[8192], tmp[256], gs[512];
	char *argv[] = {bin, "-mode", "churn", NULL};
	struct gotarget t;
	int pid;

	GOTARGET_BUILD_OR_SKIP(bin, "heapalloc", "1.27", "stripped");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(gs, sizeof(gs), "%s/busy.pb.gz", tmp);
	cr_assert_eq(gotarget_start(&t, bin, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), LINE_TIMEOUT_MS), 0);
	cr_assert_eq(sscanf(line, "ready %d", &pid), 1);
	usleep(300000);
	for (int i = 0; i < 5; i++) {
		static struct stacks got;
		char *out = NULL;
		size_t outlen;
		bool churn = false;

		snprintf(cmd, sizeof(cmd), "%s heap --pid %d -o %s", goscope_bin(), pid, gs);
		cr_assert_eq(run_capture(cmd, 1, &out, &outlen), 0, "%s", out);
		cr_assert(strstr(out, " inconsistent, 0 unreadable"), "%s", out);
		load(gs, &got);
		for (size_t k = 0; k < got.n; k++)
			churn |= strncmp(got.s[k].key, "main.churn:", 11) == 0 && got.s[k].v[0] > 0;
		cr_assert(churn, "no main.churn allocations in the profile");
		unload(&got);
		free(out);
	}
	gotarget_stop(&t, 2000);
}

/* A target SIGKILLed while goscope walks its 10,000 buckets: an error, never a crash. */
Test(heap, process_killed_mid_read, .timeout = 120)
{
	char bin[4096], line[256], cmd[8192];
	int gone = 0, ok = 0;

	GOTARGET_BUILD_OR_SKIP(bin, "heapalloc", "1.27", "stripped");
	for (int i = 0; i < 6; i++) {
		char *argv[] = {bin, "-mode", "bench", "-tick", "1h", NULL};
		struct gotarget t;
		char *out = NULL;
		size_t outlen;
		struct timespec delay = {
			0, (long)i * 5000000L}; /* 0 to 25 ms: before, during and after the read */
		int pid, rc;
		pid_t killer;

		cr_assert_eq(gotarget_start(&t, bin, argv), 0);
		cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), LINE_TIMEOUT_MS), 0);
		cr_assert_eq(sscanf(line, "ready %d", &pid), 1);
		killer = fork();
		if (killer == 0) {
			nanosleep(&delay, NULL);
			kill(pid, SIGKILL);
			_exit(0);
		}
		snprintf(cmd, sizeof(cmd), "%s heap --pid %d -o /dev/null 2>&1", goscope_bin(),
			 pid);
		rc = run_capture(cmd, 1, &out, &outlen);
		waitpid(killer, NULL, 0);
		gotarget_stop(&t, 2000);
		cr_assert(rc == 0 || rc == 1 || rc == 2, "goscope died (%d): %s", rc, out);
		if (rc == 0)
			ok++;
		else
			gone++;
		free(out);
	}
	cr_assert_gt(gone, 0, "no read was cut by the kill (%d complete)", ok);
}

static void expect_agent_stop(struct agentrun *a)
{
	int st = agentrun_stop(a, SIGTERM, 10000);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent stop: %d", st);
}

/* Rows of type heap the agent stored for pid (sqlite3 CLI on the live store). */
static int heap_rows(const char *dir, int pid)
{
	char cmd[1024];
	char *out = NULL;
	size_t len;
	int n = -1;

	snprintf(cmd, sizeof(cmd),
		 "sqlite3 %s/goscope.db \"SELECT count(*) FROM profiles WHERE type = 'heap' AND "
		 "pid = %d\"",
		 dir, pid);
	if (run_capture(cmd, 0, &out, &len) == 0)
		n = atoi(out);
	free(out);
	return n;
}

/* The agent (--heap is the default): a heap row per window equal to the program's own
 * profile, and /pprof/heap?pid= the same; GOSCOPE_HEAP=0 stores none. */
Test(heap, agent_rows_and_api, .timeout = 120)
{
	static struct stacks want, got;
	char bin[4096], tmp[256], own[512], file[512], dir[512], path[128], cmd[2048], why[4096];
	struct agentrun a;
	struct gotarget t;
	uint64_t t0;
	int pid, code = 0, rows = 0;

	GOTARGET_BUILD_OR_SKIP(bin, "heapalloc", "1.27", "stripped");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(own, sizeof(own), "%s/own.pb.gz", tmp);
	snprintf(file, sizeof(file), "%s/api.pb.gz", tmp);
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	pid = start(&t, bin, "heap", own);
	load(own, &want);
	cr_assert_eq(agentrun_start(&a, NULL, dir, "--window 1s --include comm=heapalloc", true,
				    why, sizeof(why)),
		     0, "%s", why);
	/* the API: as soon as the agent profiles the process */
	snprintf(path, sizeof(path), "/pprof/heap?pid=%d", pid);
	for (t0 = agentrun_mono_ms(); agentrun_mono_ms() - t0 < 15000; agentrun_sleep_ms(200)) {
		code = agentrun_http_file(&a, path, NULL, file);
		if (code == 200)
			break;
	}
	cr_assert_eq(code, 200, "/pprof/heap: %d", code);
	load(file, &got);
	cr_assert_geq(compare(&want, &got, 4, 0), 6);
	unload(&got);
	{
		/* a process without a heap profile: 404 and the reason */
		struct gotarget t0g;
		char *body = NULL;
		int pid0 = start(&t0g, bin, "rate0", "");

		snprintf(path, sizeof(path), "/pprof/heap?pid=%d", pid0);
		for (t0 = agentrun_mono_ms(); agentrun_mono_ms() - t0 < 15000;
		     agentrun_sleep_ms(200)) {
			free(body);
			body = NULL;
			code = agentrun_http(&a, path, NULL, &body, NULL);
			if (code != 404 || (body && strstr(body, "MemProfileRate")))
				break;
		}
		cr_assert_eq(code, 404, "%d %s", code, body);
		cr_assert(body && strstr(body, "MemProfileRate is 0"), "%s", body);
		free(body);
		gotarget_stop(&t0g, 2000);
	}
	/* the store: a row per window */
	for (t0 = agentrun_mono_ms(); agentrun_mono_ms() - t0 < 15000; agentrun_sleep_ms(200)) {
		rows = heap_rows(dir, pid);
		if (rows >= 2)
			break;
	}
	cr_assert_geq(rows, 2, "heap rows: %d", rows);
	{
		char *body = NULL;

		cr_assert_eq(agentrun_http(&a, "/metrics", NULL, &body, NULL), 200);
		cr_assert(strstr(body, "\ngoscope_heap_read_failures_total 0\n"), "%s", body);
		free(body);
	}
	snprintf(file, sizeof(file), "%s/row.pb.gz", tmp);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 %s/goscope.db \"SELECT writefile('%s', data) FROM profiles WHERE type = "
		 "'heap' AND pid = %d AND dict_id IS NULL LIMIT 1\" >/dev/null",
		 dir, file, pid);
	cr_assert_eq(run_capture(cmd, 0, NULL, NULL), 0);
	load(file, &got);
	cr_assert_geq(compare(&want, &got, 4, 0), 6);
	unload(&got);
	expect_agent_stop(&a);
	/* off */
	snprintf(dir, sizeof(dir), "%s/data-off", tmp);
	cr_assert_eq(agentrun_start(&a, "GOSCOPE_HEAP=0", dir,
				    "--window 1s --include comm=heapalloc", true, why, sizeof(why)),
		     0, "%s", why);
	agentrun_sleep_ms(3500);
	cr_assert_eq(heap_rows(dir, pid), 0);
	expect_agent_stop(&a);
	gotarget_stop(&t, 2000);
	unload(&want);
}
