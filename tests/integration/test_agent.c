/* test_agent.c — `goscope agent` end to end: the real binary with real BPF profiles real Go
 * programs (several toolchains and build modes) into a real SQLite store, read back through
 * `goscope export` (the public way out) and opened with `go tool pprof`.
 *
 * Checked: every profiled process gets rows with exactly its labels, in the rows and in every
 * sample of the pprof; a process started later appears within 2 s plus one window; one that
 * exits stops getting rows; a reused pid is a new process; --include/--exclude;
 * service_name from GOSCOPE_SERVICE_NAME / OTEL_SERVICE_NAME / the executable's name; SIGTERM
 * stores the last window and exits 0 within 5 s, a second signal exits at once; SIGKILL at
 * random moments then a restart on the same directory (20 rounds): integrity ok and every
 * window listed before the kill still there; a full disk (a small tmpfs): windows dropped and
 * counted, no crash, writing resumes when space returns.
 *
 * The agent profiles every Go process on the host: the tests look only at their own pids. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/run.h"

#define WINDOW_S 1
#define NODE "test-node-7"

/* An agent run: tests/helpers/agentrun.h. */
#define agent_proc_run agentrun
#define mono_ms agentrun_mono_ms
#define sleep_ms agentrun_sleep_ms
#define slurp agentrun_slurp
#define log_has agentrun_log_has

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Starts `goscope agent --data-dir DIR --window 1s ... EXTRA` (tests/helpers/agentrun.c: stderr
 * in DIR.log, the API on a free port) and waits until it profiles. */
static void agent_start(struct agent_proc_run *a, const char *dir, const char *extra)
{
	char args[1024], why[8192];

	snprintf(args, sizeof(args),
		 "--window %ds --rescan 1s --node " NODE
		 " --retention 0 --max-disk 0 --rollup-after 0 --verbose %s",
		 WINDOW_S, extra ? extra : "");
	cr_assert_eq(agentrun_start(a, NULL, dir, args, true, why, sizeof(why)), 0, "%s", why);
}

/* GET path from the agent's API: the HTTP status, the body. */
static int agent_http(const struct agent_proc_run *a, const char *path, char **body)
{
	cr_assert(a->port, "no API port in the agent's log");
	return agentrun_http(a, path, NULL, body, NULL);
}

/* Sends sig and waits up to timeout_ms: the exit status (as waitpid's), -1 on timeout (the
 * agent is then killed). *took_ms gets the time it took. */
static int agent_signal_wait(struct agent_proc_run *a, int sig, int timeout_ms, uint64_t *took)
{
	uint64_t t0 = mono_ms();
	int st;

	kill(a->pid, sig);
	while (mono_ms() - t0 < (uint64_t)timeout_ms) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			if (took)
				*took = mono_ms() - t0;
			a->pid = 0;
			return st;
		}
		sleep_ms(10);
	}
	kill(a->pid, SIGKILL);
	waitpid(a->pid, &st, 0);
	a->pid = 0;
	return -1;
}

static void agent_stop_ok(struct agent_proc_run *a)
{
	uint64_t took = 0;
	int st = agent_signal_wait(a, SIGTERM, 5000, &took);
	char *text = slurp(a->log);

	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "agent did not exit 0 within 5 s of SIGTERM (status %d): %s", st, text);
	free(text);
}

/* ---- reading the store through `goscope export` ---- */

struct row {
	long long id;
	char type[16];
	char service[256];
	int pid;
	unsigned long long start_ticks;
	long long start_ns, end_ns;
	bool rolled_up;
	cJSON *labels;
};

struct rows {
	struct row *v;
	size_t n;
};

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		cJSON_Delete(r->v[i].labels);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static void list_rows(const char *dir, const char *filter, struct rows *r)
{
	char cmd[1024], *out = NULL, *line, *save = NULL;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(cmd, sizeof(cmd), "%s export --data-dir %s --list --json --from 0 %s",
		 goscope_bin(), dir, filter ? filter : "");
	rc = run_capture(cmd, 0, &out, &len);
	cr_assert_eq(rc, 0, "%s: %s", cmd, out);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line), *x;
		struct row *w;

		cr_assert(j, "bad listing line: %s", line);
		r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
		cr_assert(r->v);
		w = &r->v[r->n++];
		memset(w, 0, sizeof(*w));
		w->id = (long long)cJSON_GetObjectItem(j, "id")->valuedouble;
		snprintf(w->type, sizeof(w->type), "%s",
			 cJSON_GetObjectItem(j, "type")->valuestring);
		snprintf(w->service, sizeof(w->service), "%s",
			 cJSON_GetObjectItem(j, "service")->valuestring);
		w->pid = cJSON_GetObjectItem(j, "pid")->valueint;
		w->start_ticks =
			(unsigned long long)cJSON_GetObjectItem(j, "start_ticks")->valuedouble;
		w->start_ns = (long long)cJSON_GetObjectItem(j, "start_ns")->valuedouble;
		w->end_ns = (long long)cJSON_GetObjectItem(j, "end_ns")->valuedouble;
		w->rolled_up = cJSON_IsTrue(cJSON_GetObjectItem(j, "rolled_up"));
		x = cJSON_DetachItemFromObject(j, "labels");
		cr_assert(x && cJSON_IsObject(x), "no labels: %s", line);
		w->labels = x;
		cJSON_Delete(j);
	}
	free(out);
}

static size_t count_pid(const struct rows *r, int pid, const char *type)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->v[i].pid == pid && (!type || !strcmp(r->v[i].type, type));
	return n;
}

static const char *label(const struct row *w, const char *key)
{
	cJSON *x = cJSON_GetObjectItem(w->labels, key);

	return x && cJSON_IsString(x) ? x->valuestring : NULL;
}

/* Waits until the store holds at least n rows of pid (type cpu); false on timeout. */
static bool wait_rows(const char *dir, int pid, size_t n, int timeout_ms)
{
	uint64_t t0 = mono_ms();
	char filter[64];

	snprintf(filter, sizeof(filter), "--pid %d", pid);
	while (mono_ms() - t0 < (uint64_t)timeout_ms) {
		struct rows r;
		size_t got;

		list_rows(dir, filter, &r);
		got = count_pid(&r, pid, "cpu");
		rows_free(&r);
		if (got >= n)
			return true;
		sleep_ms(200);
	}
	return false;
}

static void export_pid(const char *dir, int pid, const char *type, const char *out)
{
	char cmd[1024], *text = NULL;
	size_t len;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s export --data-dir %s --pid %d --type %s --from 0 -o %s",
		 goscope_bin(), dir, pid, type, out);
	rc = run_capture(cmd, 1, &text, &len);
	cr_assert_eq(rc, 0, "%s: %s", cmd, text);
	free(text);
}

/* The value of the string label key of sample s, or NULL. */
static const char *sample_label(const struct pprof_doc *d, const struct pprof_sample *s,
				const char *key)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		const char *k = pprof_str(d, s->labels[i].key);

		if (k && !strcmp(k, key))
			return s->labels[i].str ? pprof_str(d, s->labels[i].str) : "";
	}
	return NULL;
}

static int64_t sample_num_label(const struct pprof_doc *d, const struct pprof_sample *s,
				const char *key)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		const char *k = pprof_str(d, s->labels[i].key);

		if (k && !strcmp(k, key) && !s->labels[i].str)
			return s->labels[i].num;
	}
	return -1;
}

/* ---- test programs ---- */

struct burner {
	struct gotarget t;
	char path[512];
	char exe[512]; /* realpath of what runs */
};

static void start_burner(struct burner *b, const char *path, const char *duration)
{
	char *argv[] = {(char *)path, "-duration", (char *)duration, "-goroutines", "1", NULL};
	char line[128];

	snprintf(b->path, sizeof(b->path), "%s", path);
	cr_assert(realpath(path, b->exe), "%s", path);
	cr_assert_eq(gotarget_start(&b->t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&b->t, line, sizeof(line), 20000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
}

/* A copy of the built program under another name (a copy, not a link: /proc/PID/exe, and
 * with it the exe label and the fallback service name, name the file itself). */
static void copy_exe(const char *from, const char *to)
{
	char cmd[1200], *text = NULL;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
	cr_assert_eq(run_capture(cmd, 1, &text, &n), 0, "%s", text);
	free(text);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Go version string of a toolchain's binary, from `goscope info --json`. */
static void go_version_of(const char *path, char *out, size_t len)
{
	char cmd[1024], *text = NULL;
	size_t n;
	cJSON *j;

	snprintf(cmd, sizeof(cmd), "%s info --json %s", goscope_bin(), path);
	cr_assert_eq(run_capture(cmd, 0, &text, &n), 0, "%s", text);
	j = cJSON_Parse(text);
	cr_assert(j, "%s", text);
	snprintf(out, len, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "go_version")) ?: "");
	cJSON_Delete(j);
	free(text);
}

/* Checks the rows and the exported pprof of one process: exactly its labels. */
static void check_labels(const char *dir, const struct burner *b, const char *service,
			 const char *go_version, const char *tmp)
{
	char filter[64], out[512], why[256], comm[32];
	struct pprof_doc d;
	struct rows r;
	size_t cpu = 0;

	snprintf(comm, sizeof(comm), "%.15s", base_name(b->exe));
	long long last_end = 0;

	snprintf(filter, sizeof(filter), "--pid %d", b->t.pid);
	list_rows(dir, filter, &r);
	for (size_t i = 0; i < r.n; i++)
		last_end = r.v[i].end_ns > last_end ? r.v[i].end_ns : last_end;
	for (size_t i = 0; i < r.n; i++) {
		const struct row *w = &r.v[i];
		char pid[16];
		int nkeys = cJSON_GetArraySize(w->labels);

		if (strcmp(w->type, "cpu"))
			continue;
		cpu++;
		snprintf(pid, sizeof(pid), "%d", b->t.pid);
		cr_assert_str_eq(w->service, service);
		cr_assert_str_eq(label(w, "service_name"), service);
		cr_assert_str_eq(label(w, "pid"), pid);
		cr_assert_str_eq(label(w, "comm"), comm);
		cr_assert_str_eq(label(w, "exe"), b->exe);
		cr_assert_str_eq(label(w, "go_version"), go_version);
		cr_assert_str_eq(label(w, "module"), "goscope.test/cpuburn");
		cr_assert_str_eq(label(w, "node"), NODE);
		/* Not in a container: no container_id; nothing else. */
		cr_assert_null(label(w, "container_id"));
		cr_assert_eq(nkeys, 7, "labels: %s", cJSON_PrintUnformatted(w->labels));
		cr_assert_leq(w->start_ns, w->end_ns);
		/* Windows end at wall-clock multiples of the window, but the last one, cut when
		 * the agent stopped. */
		if (w->end_ns != last_end)
			cr_assert_eq(w->end_ns % (WINDOW_S * 1000000000LL), 0, "end %lld",
				     w->end_ns);
	}
	rows_free(&r);
	cr_assert_gt(cpu, 0, "no cpu rows of pid %d (%s)", b->t.pid, b->exe);

	snprintf(out, sizeof(out), "%s/pid%d.pb.gz", tmp, b->t.pid);
	export_pid(dir, b->t.pid, "cpu", out);
	cr_assert_eq(pprof_decode_file(out, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(d.nsamples, 0);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];

		cr_assert_eq(sample_num_label(&d, s, "pid"), b->t.pid);
		cr_assert_str_eq(sample_label(&d, s, "comm"), comm);
		cr_assert_str_eq(sample_label(&d, s, "service_name"), service);
		cr_assert_str_eq(sample_label(&d, s, "exe"), b->exe);
		cr_assert_str_eq(sample_label(&d, s, "go_version"), go_version);
		cr_assert_str_eq(sample_label(&d, s, "module"), "goscope.test/cpuburn");
		cr_assert_str_eq(sample_label(&d, s, "node"), NODE);
		cr_assert_null(sample_label(&d, s, "container_id"));
	}
	pprof_doc_free(&d);
}

static void go_pprof_opens(const char *file)
{
	char gobuf[512], cmd[1200], *text = NULL;
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	size_t n;
	int rc;

	if (!go)
		go = go_tool_path("1.19", gobuf, sizeof(gobuf));
	cr_assert(go, "no Go toolchain");
	snprintf(cmd, sizeof(cmd), "%s tool pprof -top %s", go, file);
	rc = run_capture(cmd, 1, &text, &n);
	cr_assert_eq(rc, 0, "go tool pprof failed: %s", text);
	cr_assert(strstr(text, "main.hot"), "%s", text);
	free(text);
}

/* The usual start of a test: a temporary directory with the data dir under it, and the
 * 1.27 cpuburn built (the test is skipped without that toolchain). */
static void test_dirs(char *tmp, size_t tmplen, char *dir, size_t dirlen, char *built,
		      size_t builtlen)
{
	char why[1024];
	int rc;

	test_tmpdir(tmp, tmplen);
	snprintf(dir, dirlen, "%s/data", tmp);
	rc = gotarget_build("cpuburn", "1.27", "default", built, builtlen, why, sizeof(why));
	if (rc == GOTARGET_SKIP)
		cr_skip_test("%s", why);
	cr_assert_eq(rc, 0, "building cpuburn: %s", why);
}

/* Toolchains × modes, service names from each source, and a process started after the
 * agent. */
Test(agent, labels_modes_and_late_start, .timeout = 240)
{
	static const struct {
		const char *tc, *mode, *env, *val;
	} cases[] = {
		{"1.19", "default", NULL, NULL},
		{"1.22", "stripped", "GOSCOPE_SERVICE_NAME", "checkout"},
		{"1.24", "pie", "OTEL_SERVICE_NAME", "payments"},
		{"1.27", "cgo", NULL, NULL},
		{"1.26", "default", NULL, NULL},
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct burner b[N + 1];
	char tmp[256], dir[300], paths[N][512], names[N][64], vers[N][64], svc[N][64];
	struct agent_proc_run a;
	uint64_t t_late;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	for (size_t i = 0; i < N; i++) {
		char built[512];

		GOTARGET_BUILD_OR_SKIP(built, "cpuburn", cases[i].tc, cases[i].mode);
		/* A distinct executable name per case: the fallback service name is its own. */
		snprintf(names[i], sizeof(names[i]), "burn%s_%s", cases[i].tc, cases[i].mode);
		for (char *c = names[i]; *c; c++)
			*c = *c == '.' ? '_' : *c;
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", tmp, names[i]);
		copy_exe(built, paths[i]);
		go_version_of(paths[i], vers[i], sizeof(vers[i]));
		snprintf(svc[i], sizeof(svc[i]), "%s", cases[i].val ? cases[i].val : names[i]);
	}
	/* Both service variables: GOSCOPE_SERVICE_NAME wins. */
	setenv("OTEL_SERVICE_NAME", "not-this-one", 1);
	setenv("GOSCOPE_SERVICE_NAME", "checkout", 1);
	start_burner(&b[1], paths[1], "120s");
	unsetenv("GOSCOPE_SERVICE_NAME");
	unsetenv("OTEL_SERVICE_NAME");
	for (size_t i = 0; i < N - 1; i++) {
		if (i == 1)
			continue;
		if (cases[i].env)
			setenv(cases[i].env, cases[i].val, 1);
		start_burner(&b[i], paths[i], "120s");
		if (cases[i].env)
			unsetenv(cases[i].env);
	}
	agent_start(&a, dir, NULL);
	/* Started after the agent: found through the exec watcher. */
	t_late = mono_ms();
	start_burner(&b[N - 1], paths[N - 1], "120s");
	cr_assert(wait_rows(dir, b[N - 1].t.pid, 1, 2000 + WINDOW_S * 1000 + 1500),
		  "the late process has no row within 2 s + one window (+1.5 s to list)");
	for (size_t i = 0; i < N; i++)
		cr_assert(wait_rows(dir, b[i].t.pid, 2, 15000), "pid %d (%s): no rows", b[i].t.pid,
			  names[i]);
	(void)t_late;
	agent_stop_ok(&a);
	for (size_t i = 0; i < N; i++)
		check_labels(dir, &b[i], svc[i], vers[i], tmp);
	{
		char out[512];

		snprintf(out, sizeof(out), "%s/pid%d.pb.gz", tmp, b[0].t.pid);
		go_pprof_opens(out);
	}
	for (size_t i = 0; i < N; i++)
		gotarget_stop(&b[i].t, 5000);
}

/* A process that exits stops getting rows; a reused pid is a new process with its own rows. */
Test(agent, exit_and_pid_reuse, .timeout = 180)
{
	char tmp[256], dir[300], built[512], pa[512], pb[512], filter[64];
	struct burner b1, b2;
	struct agent_proc_run a;
	struct rows r;
	int64_t exited;
	pid_t pid;
	bool reused = false;

	test_dirs(tmp, sizeof(tmp), dir, sizeof(dir), built, sizeof(built));
	snprintf(pa, sizeof(pa), "%s/first", tmp);
	snprintf(pb, sizeof(pb), "%s/second", tmp);
	copy_exe(built, pa);
	copy_exe(built, pb);
	agent_start(&a, dir, NULL);
	start_burner(&b1, pa, "120s");
	pid = b1.t.pid;
	cr_assert(wait_rows(dir, pid, 2, 15000));
	kill(pid, SIGKILL);
	gotarget_stop(&b1.t, 5000);
	exited = now_ns();
	/* Reuse the pid: the next fork gets ns_last_pid + 1 (root in the initial pid namespace). */
	for (int attempt = 0; attempt < 20 && !reused; attempt++) {
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");

		cr_assert(f);
		fprintf(f, "%d", pid - 1);
		fclose(f);
		start_burner(&b2, pb, "120s");
		if (b2.t.pid == pid)
			reused = true;
		else
			gotarget_stop(&b2.t, 5000);
	}
	cr_assert(reused, "could not get pid %d again", pid);
	sleep_ms(3500 + WINDOW_S * 1000);
	agent_stop_ok(&a);
	snprintf(filter, sizeof(filter), "--pid %d", pid);
	list_rows(dir, filter, &r);
	{
		size_t first = 0, second = 0;
		unsigned long long t1 = 0, t2 = 0;

		for (size_t i = 0; i < r.n; i++) {
			const struct row *w = &r.v[i];

			if (!strcmp(label(w, "comm"), "first")) {
				first++;
				t1 = w->start_ticks;
				/* No window of the first process after its exit (+ the window it
				 * exited in). */
				cr_assert_leq(w->start_ns, exited,
					      "row of the exited process after "
					      "its exit");
				cr_assert_str_eq(w->service, "first");
			} else {
				cr_assert_str_eq(label(w, "comm"), "second");
				cr_assert_str_eq(w->service, "second");
				second++;
				t2 = w->start_ticks;
			}
		}
		cr_assert_gt(first, 0);
		cr_assert_gt(second, 0, "the process that reused pid %d has no rows", pid);
		cr_assert_neq(t1, t2, "same start_ticks for two processes");
	}
	rows_free(&r);
	gotarget_stop(&b2.t, 5000);
}

/* --include / --exclude on comm= and exe= globs; goscope never profiles itself. */
Test(agent, include_exclude, .timeout = 180)
{
	char tmp[256], dir[300], built[512], p[3][512], extra[1024];
	const char *names[3] = {"inc_a", "inc_b", "other"};
	struct burner b[3];
	struct agent_proc_run a;
	struct rows r;

	test_dirs(tmp, sizeof(tmp), dir, sizeof(dir), built, sizeof(built));
	for (int i = 0; i < 3; i++) {
		snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, names[i]);
		copy_exe(built, p[i]);
		start_burner(&b[i], p[i], "120s");
	}
	snprintf(extra, sizeof(extra), "--include 'exe=%s/inc_*' --exclude comm=inc_b", tmp);
	agent_start(&a, dir, extra);
	cr_assert(wait_rows(dir, b[0].t.pid, 2, 15000));
	agent_stop_ok(&a);
	list_rows(dir, NULL, &r);
	cr_assert_gt(count_pid(&r, b[0].t.pid, "cpu"), 0);
	cr_assert_eq(count_pid(&r, b[1].t.pid, NULL), 0, "excluded process profiled");
	cr_assert_eq(count_pid(&r, b[2].t.pid, NULL), 0, "process outside --include profiled");
	cr_assert_eq(count_pid(&r, a.pid, NULL), 0);
	rows_free(&r);
	for (int i = 0; i < 3; i++)
		gotarget_stop(&b[i].t, 5000);

	/* A bad pattern is a usage error. */
	{
		char cmd[512], *text = NULL;
		size_t n;

		snprintf(cmd, sizeof(cmd), "%s agent --data-dir %s --include pid=1", goscope_bin(),
			 dir);
		cr_assert_eq(run_capture(cmd, 1, &text, &n), 2, "%s", text);
		cr_assert(strstr(text, "comm"), "%s", text);
		free(text);
	}
}

/* SIGTERM stores the window under way (it ends after the last aligned boundary) and exits 0
 * within 5 s; a second signal exits at once. */
Test(agent, signals, .timeout = 120)
{
	char tmp[256], dir[300], built[512];
	struct burner b;
	struct agent_proc_run a;
	struct rows r;
	int64_t stopped;
	uint64_t took = 0;
	bool last_window = false;
	int st;

	test_dirs(tmp, sizeof(tmp), dir, sizeof(dir), built, sizeof(built));
	start_burner(&b, built, "120s");
	agent_start(&a, dir, "--window 30s");
	sleep_ms(2500);
	stopped = now_ns();
	st = agent_signal_wait(&a, SIGTERM, 5000, &took);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	cr_assert_lt(took, 5000);
	list_rows(dir, NULL, &r);
	for (size_t i = 0; i < r.n; i++) {
		if (r.v[i].pid == b.t.pid && r.v[i].end_ns >= stopped - 1000000000LL)
			last_window = true;
	}
	rows_free(&r);
	cr_assert(last_window, "the window under way at SIGTERM was not stored");

	/* Two signals: exits at once, probes detached (block sessions too). */
	agent_start(&a, dir, "--window 30s --block");
	sleep_ms(1500);
	kill(a.pid, SIGTERM);
	st = agent_signal_wait(&a, SIGINT, 5000, &took);
	cr_assert(st >= 0 && WIFEXITED(st), "status %d", st);
	gotarget_stop(&b.t, 5000);
}

static int integrity_ok(const char *dir, char *why, size_t len)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/goscope.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(why, len, "open: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		snprintf(why, len, "integrity_check: %s", sqlite3_errmsg(db));
		goto out;
	}
	snprintf(why, len, "%s", (const char *)sqlite3_column_text(q, 0));
	ok = !strcmp(why, "ok");
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	return ok;
}

/* SIGKILL at random moments, then a restart on the same directory: the store is reused,
 * intact, and every window committed before the kill is still there. */
/* How long a SIGKILLed agent may take to be gone (see the loop). */
#define SIGKILL_DEATH_MS 30000

Test(agent, sigkill_restart_20_rounds, .timeout = 600)
{
	char tmp[256], dir[300], built[512], why[256];
	struct burner b;
	struct agent_proc_run a;
	unsigned seed = (unsigned)time(NULL);

	test_dirs(tmp, sizeof(tmp), dir, sizeof(dir), built, sizeof(built));
	start_burner(&b, built, "300s");
	for (int round = 0; round < 20; round++) {
		struct rows before, after;
		int st;

		agent_start(&a, dir, NULL);
		sleep_ms(800 + (int)(rand_r(&seed) % 1700));
		list_rows(dir, NULL, &before);
		sleep_ms((int)(rand_r(&seed) % 300));
		/* A process dies of SIGKILL once it leaves the kernel: an fsync of the store in
		 * progress ends first, which on a host busy writing can take seconds. */
		st = agent_signal_wait(&a, SIGKILL, SIGKILL_DEATH_MS, NULL);
		if (!(st >= 0 && WIFSIGNALED(st))) {
			char *text = slurp(a.log);

			cr_assert_fail("round %d: the agent %s (status %d): %s", round,
				       st < 0 ? "outlived SIGKILL by 30 s"
					      : "had exited before SIGKILL",
				       st, text);
		}
		cr_assert(integrity_ok(dir, why, sizeof(why)), "round %d: %s", round, why);
		list_rows(dir, NULL, &after);
		for (size_t i = 0; i < before.n; i++) {
			bool found = false;

			for (size_t j = 0; j < after.n && !found; j++)
				found = after.v[j].id == before.v[i].id;
			cr_assert(found, "round %d: row %lld lost", round, before.v[i].id);
		}
		rows_free(&before);
		rows_free(&after);
	}
	/* The store still works after 20 kills. */
	agent_start(&a, dir, NULL);
	cr_assert(wait_rows(dir, b.t.pid, 1, 10000));
	agent_stop_ok(&a);
	cr_assert(integrity_ok(dir, why, sizeof(why)), "%s", why);
	gotarget_stop(&b.t, 5000);
}

/* A full disk: windows that cannot be stored are dropped and counted, the agent goes on, and
 * writing resumes when space returns. */
Test(agent, full_disk, .timeout = 180)
{
	char tmp[256], dir[300], filler[400], built[512], why[256];
	struct burner b;
	struct agent_proc_run a;
	struct rows r;
	size_t n_full, n_after;
	FILE *f;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(mount("tmpfs", dir, "tmpfs", 0, "size=4m"), 0, "mount: %s", strerror(errno));
	GOTARGET_BUILD_OR_SKIP(built, "cpuburn", "1.27", "default");
	start_burner(&b, built, "180s");
	agent_start(&a, dir, NULL);
	cr_assert(wait_rows(dir, b.t.pid, 1, 15000));
	/* Fill what is left. */
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	f = fopen(filler, "we");
	cr_assert(f);
	{
		static char blk[65536];

		while (fwrite(blk, 1, sizeof(blk), f) == sizeof(blk))
			;
		fflush(f);
	}
	fclose(f);
	{
		uint64_t t0 = mono_ms();

		while (!log_has(&a, "dropped so far") && mono_ms() - t0 < 20000)
			sleep_ms(200);
	}
	cr_assert(log_has(&a, "dropped so far"), "no drop reported on a full disk");
	cr_assert_eq(kill(a.pid, 0), 0, "the agent died on a full disk");
	/* /healthz says why profiles are not kept. */
	{
		char *body = NULL;
		int code = agent_http(&a, "/healthz", &body);

		cr_assert_eq(code, 503, "healthz on a full disk: %d %s", code, body);
		cr_assert(strstr(body, "store unwritable"), "%s", body);
		free(body);
	}
	list_rows(dir, NULL, &r);
	n_full = count_pid(&r, b.t.pid, "cpu");
	rows_free(&r);
	/* Space returns: writing resumes. */
	cr_assert_eq(unlink(filler), 0);
	sleep_ms(4000 + WINDOW_S * 1000);
	list_rows(dir, NULL, &r);
	n_after = count_pid(&r, b.t.pid, "cpu");
	rows_free(&r);
	cr_assert_gt(n_after, n_full, "no rows after space returned (%zu)", n_full);
	{
		char *body = NULL;
		int code = agent_http(&a, "/healthz", &body);

		cr_assert_eq(code, 200, "healthz once space returned: %d %s", code, body);
		free(body);
	}
	agent_stop_ok(&a);
	{
		char *text = slurp(a.log);
		const char *s = strstr(text, "stopped after");

		cr_assert(s && strstr(s, "dropped") && !strstr(s, " 0 dropped"),
			  "drops not counted in the summary: %s", s ? s : text);
		free(text);
	}
	cr_assert(integrity_ok(dir, why, sizeof(why)), "%s", why);
	gotarget_stop(&b.t, 5000);
	umount2(dir, MNT_DETACH);
}

/* --block-include: blocking profiles of the matching processes only, labelled like the CPU
 * ones, with the wait reasons of goscope block; the others get CPU profiles only. */
Test(agent, block_profiles, .timeout = 180)
{
	char tmp[256], dir[300], built[512], pb[512], pc[512], out[512], why[256], extra[256];
	char *argv_b[] = {pb, "-duration", "120s", NULL};
	struct gotarget blk;
	struct burner burn;
	struct agent_proc_run a;
	struct pprof_doc d;
	struct rows r;
	char line[128];
	bool chan_recv = false;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	GOTARGET_BUILD_OR_SKIP(built, "blocker", "1.27", "default");
	snprintf(pb, sizeof(pb), "%s/blockme", tmp);
	copy_exe(built, pb);
	GOTARGET_BUILD_OR_SKIP(built, "cpuburn", "1.27", "default");
	snprintf(pc, sizeof(pc), "%s/burnonly", tmp);
	copy_exe(built, pc);
	cr_assert_eq(gotarget_start(&blk, pb, argv_b), 0);
	cr_assert_gt(gotarget_read_line(&blk, line, sizeof(line), 20000), 0);
	start_burner(&burn, pc, "120s");
	snprintf(extra, sizeof(extra), "--block-include comm=blockme --block-max-overhead 100");
	agent_start(&a, dir, extra);
	{
		uint64_t t0 = mono_ms();
		size_t n = 0;

		while (mono_ms() - t0 < 20000 && n < 2) {
			list_rows(dir, NULL, &r);
			n = count_pid(&r, blk.pid, "block");
			rows_free(&r);
			sleep_ms(300);
		}
		cr_assert_geq(n, 2, "no block rows for the --block-include process");
	}
	agent_stop_ok(&a);
	list_rows(dir, NULL, &r);
	cr_assert_eq(count_pid(&r, burn.t.pid, "block"), 0, "block rows of a process not included");
	cr_assert_gt(count_pid(&r, burn.t.pid, "cpu"), 0);
	for (size_t i = 0; i < r.n; i++) {
		if (r.v[i].pid == blk.pid && !strcmp(r.v[i].type, "block")) {
			cr_assert_str_eq(label(&r.v[i], "service_name"), "blockme");
			cr_assert_str_eq(label(&r.v[i], "comm"), "blockme");
		}
	}
	rows_free(&r);
	snprintf(out, sizeof(out), "%s/block.pb.gz", tmp);
	export_pid(dir, blk.pid, "block", out);
	cr_assert_eq(pprof_decode_file(out, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(d.nsamples, 0);
	cr_assert_geq(pprof_sample_type(&d, "delay"), 0);
	for (size_t i = 0; i < d.nsamples; i++) {
		const char *wr = sample_label(&d, &d.samples[i], "wait_reason");

		cr_assert_str_eq(sample_label(&d, &d.samples[i], "service_name"), "blockme");
		cr_assert_str_eq(sample_label(&d, &d.samples[i], "node"), NODE);
		chan_recv |= wr && !strcmp(wr, "chan receive");
	}
	cr_assert(chan_recv, "no 'chan receive' blocks in the block profile");
	pprof_doc_free(&d);
	gotarget_stop(&blk, 5000);
	gotarget_stop(&burn.t, 5000);
}

/* --retention: rows older than the retention are deleted while the agent runs. */
Test(agent, retention_by_age, .timeout = 120)
{
	char tmp[256], dir[300], built[512];
	struct burner b;
	struct agent_proc_run a;
	struct rows r;
	int64_t now;

	test_dirs(tmp, sizeof(tmp), dir, sizeof(dir), built, sizeof(built));
	start_burner(&b, built, "120s");
	agent_start(&a, dir, "--retention 3s");
	sleep_ms(8000);
	list_rows(dir, NULL, &r);
	now = now_ns();
	cr_assert_gt(count_pid(&r, b.t.pid, "cpu"), 0);
	for (size_t i = 0; i < r.n; i++) {
		/* Deleted at the first window boundary after they aged out. */
		cr_assert_geq(r.v[i].end_ns, now - (3 + 2 * WINDOW_S) * 1000000000LL - 500000000LL,
			      "row %lld ended %.1f s ago", r.v[i].id, (now - r.v[i].end_ns) / 1e9);
	}
	rows_free(&r);
	agent_stop_ok(&a);
	gotarget_stop(&b.t, 5000);
}

/* Every flag has its environment variable, listed in --help; a bad value in the environment
 * is a usage error naming the variable; a flag overrides its variable. */
Test(agent, help_and_environment)
{
	static const char *const vars[] = {"GOSCOPE_DATA_DIR",
					   "GOSCOPE_WINDOW",
					   "GOSCOPE_FREQUENCY",
					   "GOSCOPE_BLOCK",
					   "GOSCOPE_BLOCK_INCLUDE",
					   "GOSCOPE_BLOCK_MAX_OVERHEAD",
					   "GOSCOPE_INCLUDE",
					   "GOSCOPE_EXCLUDE",
					   "GOSCOPE_RETENTION",
					   "GOSCOPE_MAX_DISK",
					   "GOSCOPE_ROLLUP_AFTER",
					   "GOSCOPE_NODE",
					   "GOSCOPE_VERBOSE",
					   "GOSCOPE_LISTEN",
					   "GOSCOPE_API_TOKEN_FILE",
					   "GOSCOPE_MAX_CAPTURE",
					   "GOSCOPE_MAX_CONCURRENT_CAPTURES"};
	char cmd[1024], *out = NULL;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s agent --help", goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 0, "%s", out);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		cr_assert(strstr(out, vars[i]), "%s not in --help:\n%s", vars[i], out);
	free(out);
	snprintf(cmd, sizeof(cmd), "GOSCOPE_WINDOW=500ms %s agent --data-dir /nonexistent/x",
		 goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 2, "%s", out);
	cr_assert(strstr(out, "GOSCOPE_WINDOW"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "GOSCOPE_MAX_DISK=lots %s agent", goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 2, "%s", out);
	cr_assert(strstr(out, "GOSCOPE_MAX_DISK"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "GOSCOPE_EXCLUDE=comm=a,pid=3 %s agent", goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 2, "%s", out);
	free(out);
	/* A flag overrides its variable: the store that fails to open is the flag's. */
	snprintf(cmd, sizeof(cmd),
		 "GOSCOPE_DATA_DIR=/proc/not-writable %s agent --data-dir /proc/also-not --window "
		 "1s",
		 goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 1, "%s", out);
	cr_assert(strstr(out, "/proc/also-not"), "the flag did not override: %s", out);
	free(out);
}
