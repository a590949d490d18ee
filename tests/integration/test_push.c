/* test_push.c — `goscope agent --push-url`: the real agent with real BPF profiles real Go
 * programs (CPU and goroutine blocking) and pushes the stored windows to a Pyroscope.
 *
 * No Pyroscope server can be installed on the test machines: the remote is
 * tests/go/pyrostand, a loopback stand-in written from Pyroscope's source (push.proto,
 * types.proto, its validation and rate limiter, see its header). It decodes every
 * PushRequest and every gzipped pprof by hand, refuses what Pyroscope would refuse (labels,
 * limits, sample types: the profile type IDs process_cpu:cpu:nanoseconds:cpu:nanoseconds and
 * block:delay:nanoseconds:contentions:count must be derivable), checks basic auth and the
 * tenant header when told to, and writes what it accepted as JSON lines that these tests read.
 *
 * Checked, each window identified by the ID the agent derives from its row (push_window_id):
 *   - every window stored for the test's processes is delivered exactly once, in time order
 *     per series, with __name__ (process_cpu / block), service_name first, and the agent's
 *     labels; over TLS with a CA made by openssl here, basic auth, tenant and an extra header;
 *     a TLS failure (no CA given) delivers nothing, and the restarted agent delivers that
 *     backlog;
 *   - a 2-minute outage (503): nothing lost, the backlog delivered in order after it, retries
 *     spaced by a growing backoff, the failure logged at most once a minute;
 *   - 429 with Retry-After: the next try waits for it;
 *   - 400 for one series: its windows dropped and counted (and logged once), the others
 *     delivered;
 *   - a remote that hangs: the request times out (--push-timeout) and is retried; SIGTERM
 *     during a hung request exits at once;
 *   - the agent SIGKILLed during a push: after the restart the windows of that request are
 *     delivered with the same IDs, and nothing is delivered twice;
 *   - undelivered windows deleted by --retention: counted as lost (/metrics) and logged;
 *   - the push counters in /metrics. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "push/push_labels.h"
#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

#define NODE "push-node-3"
#define CPU_NAME "pushcpu"
#define BLOCK_NAME "pushblock"

static size_t count_substr(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- the stand-in ---- */

struct stand {
	struct gotarget t;
	char addr[64];
	char out[300];
	int ncmd;
};

static void stand_start(struct stand *s, const char *tmp, const char *const *extra)
{
	char path[512], line[256];
	char *argv[16];
	int n = 0;

	GOTARGET_BUILD_OR_SKIP(path, "pyrostand", "1.27", "default");
	snprintf(s->out, sizeof(s->out), "%s/received.jsonl", tmp);
	argv[n++] = path;
	argv[n++] = "-out";
	argv[n++] = s->out;
	for (size_t i = 0; extra && extra[i] && n < 14; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	s->ncmd = 0;
	cr_assert_eq(gotarget_start(&s->t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&s->t, line, sizeof(line), 20000), 0);
	cr_assert_eq(sscanf(line, "listening %63s", s->addr), 1, "%s", line);
}

/* Sends a command line and waits for its acknowledgement. */
static void stand_cmd(struct stand *s, const char *cmd)
{
	char line[256], want[32];

	cr_assert(write(s->t.stdin_fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd));
	cr_assert(write(s->t.stdin_fd, "\n", 1) == 1);
	snprintf(want, sizeof(want), "ack %d", ++s->ncmd);
	cr_assert_gt(gotarget_read_line(&s->t, line, sizeof(line), 5000), 0);
	cr_assert_str_eq(line, want);
}

/* What the stand-in wrote: "window", "request" and "inflight" lines. */
struct recv {
	cJSON **win, **req, **inflight;
	size_t nwin, nreq, ninflight;
};

static void recv_free(struct recv *r)
{
	for (size_t i = 0; i < r->nwin; i++)
		cJSON_Delete(r->win[i]);
	for (size_t i = 0; i < r->nreq; i++)
		cJSON_Delete(r->req[i]);
	for (size_t i = 0; i < r->ninflight; i++)
		cJSON_Delete(r->inflight[i]);
	free(r->win);
	free(r->req);
	free(r->inflight);
	memset(r, 0, sizeof(*r));
}

static void push_json(cJSON ***v, size_t *n, cJSON *j)
{
	*v = realloc(*v, (*n + 1) * sizeof(**v));
	cr_assert(*v);
	(*v)[(*n)++] = j;
}

static void recv_read(const struct stand *s, struct recv *r)
{
	char *text = agentrun_slurp(s->out), *save = NULL;

	memset(r, 0, sizeof(*r));
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);
		const char *kind;

		if (!j)
			continue; /* a line being written */
		kind = cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind"));
		if (kind && !strcmp(kind, "window"))
			push_json(&r->win, &r->nwin, j);
		else if (kind && !strcmp(kind, "request"))
			push_json(&r->req, &r->nreq, j);
		else if (kind && !strcmp(kind, "inflight"))
			push_json(&r->inflight, &r->ninflight, j);
		else
			cJSON_Delete(j);
	}
	free(text);
}

static double num(const cJSON *j, const char *key)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItem(j, key));
}

static const char *str(const cJSON *j, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(j, key));

	return v ? v : "";
}

/* Requests the stand-in answered with status (0: any). */
static size_t count_requests(const struct stand *s, int status, const char *flag)
{
	struct recv r;
	size_t n = 0;

	recv_read(s, &r);
	for (size_t i = 0; i < r.nreq; i++)
		n += (!status || (int)num(r.req[i], "status") == status) &&
		     (!flag || cJSON_IsTrue(cJSON_GetObjectItem(r.req[i], flag)));
	recv_free(&r);
	return n;
}

/* ---- the agent (tests/helpers/agentrun: its API on a free port) ---- */

/* `goscope agent` on dir, windows of 1 s, only the test's programs, pushing to url. */
static void agent_start(struct agentrun *a, const char *dir, const char *url, const char *extra)
{
	char args[2048], why[1024];

	snprintf(args, sizeof(args),
		 "--window 1s --rescan 1s --node " NODE
		 " --retention 0 --max-disk 0 --rollup-after 0 --include comm=" CPU_NAME
		 " --include comm=" BLOCK_NAME " --block-include comm=" BLOCK_NAME
		 " --block-max-overhead 100 --push-url %s %s",
		 url, extra ? extra : "");
	cr_assert_eq(agentrun_start(a, NULL, dir, args, true, why, sizeof(why)), 0, "%s", why);
}

static void agent_stop_ok(struct agentrun *a)
{
	int st = agentrun_stop(a, SIGTERM, 5000);
	char *text = agentrun_log(a);

	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "agent did not exit 0 within 5 s of SIGTERM (status %d): %s", st, text);
	free(text);
}

/* ---- the test's programs ---- */

struct targets {
	struct gotarget cpu, block;
};

static void copy_exe(const char *from, const char *to)
{
	char cmd[1200], *text = NULL;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
	cr_assert_eq(run_capture(cmd, 1, &text, &n), 0, "%s", text);
	free(text);
}

/* A program that uses a fifth of a CPU (CPU windows) and one that blocks on channels
 * (block windows), under names the agent's --include picks. */
static void targets_start(struct targets *t, const char *tmp)
{
	char built[512], pc[512], pb[512], line[128];
	char *argv_c[] = {pc, "-mode", "busy", "-duty", "0.2", "-duration", "600s", NULL};
	char *argv_b[] = {pb, "-duration", "600s", NULL};

	GOTARGET_BUILD_OR_SKIP(built, "churn", "1.27", "default");
	snprintf(pc, sizeof(pc), "%s/" CPU_NAME, tmp);
	copy_exe(built, pc);
	GOTARGET_BUILD_OR_SKIP(built, "blocker", "1.27", "default");
	snprintf(pb, sizeof(pb), "%s/" BLOCK_NAME, tmp);
	copy_exe(built, pb);
	cr_assert_eq(gotarget_start(&t->cpu, pc, argv_c), 0);
	cr_assert_eq(gotarget_start(&t->block, pb, argv_b), 0);
	cr_assert_gt(gotarget_read_line(&t->block, line, sizeof(line), 20000), 0);
}

static void targets_stop(struct targets *t)
{
	if (t->cpu.pid > 0)
		gotarget_stop(&t->cpu, 100);
	if (t->block.pid > 0)
		gotarget_stop(&t->block, 100);
	t->cpu.pid = t->block.pid = 0;
}

/* ---- the store's rows of the test's programs ---- */

struct row {
	long long id;
	char type[16];
	int pid;
	unsigned long long start_ticks;
	long long start_ns;
	int state; /* push_state, -1 for NULL */
	char uuid[PUSH_ID_LEN];
};

struct rows {
	struct row *v;
	size_t n;
};

static void rows_read(const char *dir, struct rows *r)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/goscope.db", dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(
		sqlite3_prepare_v2(db,
				   "SELECT id, type, pid, start_ticks, start_ns, push_state FROM"
				   " profiles WHERE json_extract(labels, '$.comm') IN ('" CPU_NAME
				   "', '" BLOCK_NAME "') ORDER BY start_ns, id",
				   -1, &st, NULL),
		SQLITE_OK, "%s", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct row *w;

		r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
		cr_assert(r->v);
		w = &r->v[r->n++];
		w->id = sqlite3_column_int64(st, 0);
		snprintf(w->type, sizeof(w->type), "%s", sqlite3_column_text(st, 1));
		w->pid = sqlite3_column_int(st, 2);
		w->start_ticks = (unsigned long long)sqlite3_column_int64(st, 3);
		w->start_ns = sqlite3_column_int64(st, 4);
		w->state =
			sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5);
		push_window_id(NODE, w->id, w->pid, w->start_ticks, w->start_ns, w->type, w->uuid);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static size_t rows_count(const struct rows *r, const char *type, int state)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += (!type || !strcmp(r->v[i].type, type)) &&
		     (state == -2 || r->v[i].state == state);
	return n;
}

/* Rows of pid in state (-2: any). */
static size_t rows_of_pid(const struct rows *r, int pid, int state)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->v[i].pid == pid && (state == -2 || r->v[i].state == state);
	return n;
}

/* Waits until the store holds at least min_cpu CPU and min_block block rows of the test's
 * programs and none of them undelivered; false on timeout. */
static bool wait_delivered(const char *dir, size_t min_cpu, size_t min_block, int timeout_ms)
{
	uint64_t t0 = agentrun_mono_ms();

	while (agentrun_mono_ms() - t0 < (uint64_t)timeout_ms) {
		struct rows r;
		bool done;

		rows_read(dir, &r);
		done = rows_count(&r, "cpu", -2) >= min_cpu &&
		       rows_count(&r, "block", -2) >= min_block && rows_count(&r, NULL, 0) == 0;
		free(r.v);
		if (done)
			return true;
		agentrun_sleep_ms(250);
	}
	return false;
}

static const struct row *row_of(const struct rows *r, const char *uuid)
{
	for (size_t i = 0; i < r->n; i++) {
		if (!strcmp(r->v[i].uuid, uuid))
			return &r->v[i];
	}
	return NULL;
}

/* Every delivered row received exactly once (allow_twice: IDs that may arrive twice),
 * nothing received that is not one of the rows, in time order per series, with the right
 * __name__ and labels. Returns the windows received. */
static size_t check_delivery(const struct stand *s, const struct rows *r, const cJSON *allow_twice)
{
	struct recv rc;
	long long last_start[3][2] = {{0}}; /* [cpu, block, heap][pid slot] */
	static const char *const names[3] = {"process_cpu", "block", "memory"};
	int pids[2] = {0};

	recv_read(s, &rc);
	for (size_t i = 0; i < rc.nwin; i++) {
		const cJSON *w = rc.win[i], *labels = cJSON_GetObjectItem(w, "labels");
		const cJSON *order = cJSON_GetObjectItem(w, "label_order");
		const char *id = str(w, "id");
		const struct row *row = row_of(r, id);
		size_t same = 0;
		int t, slot;
		char pid[24];

		cr_assert_not_null(row, "received window %s is no row of the store", id);
		for (size_t j = 0; j < rc.nwin; j++)
			same += !strcmp(str(rc.win[j], "id"), id);
		if (same > 1) {
			bool ok = false;
			const cJSON *x;

			cJSON_ArrayForEach(x, allow_twice)
			{
				ok |= !strcmp(cJSON_GetStringValue(x), id);
			}
			cr_assert(ok && same == 2, "window %s received %zu times", id, same);
		}
		t = !strcmp(row->type, "block") ? 1 : !strcmp(row->type, "heap") ? 2 : 0;
		cr_assert(t || !strcmp(row->type, "cpu"), "a %s window", row->type);
		cr_assert_str_eq(str(labels, "__name__"), names[t]);
		/* Both programs have CPU (and heap) windows, the blocker block windows too. */
		cr_assert_str_eq(str(labels, "service_name"), str(labels, "comm"));
		cr_assert(!strcmp(str(labels, "comm"), BLOCK_NAME) ||
				  (t != 1 && !strcmp(str(labels, "comm"), CPU_NAME)),
			  "%s window of %s", row->type, str(labels, "comm"));
		cr_assert_str_eq(str(labels, "node"), NODE);
		cr_assert(strncmp(str(labels, "go_version"), "go1.27", 6) == 0);
		snprintf(pid, sizeof(pid), "%d", row->pid);
		cr_assert_str_eq(str(labels, "pid"), pid);
		cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(order, 0)), "__name__");
		cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(order, 1)),
				 "service_name");
		/* Time order per series (a series is a process and type here). */
		slot = pids[0] == row->pid || !pids[0] ? 0 : 1;
		cr_assert(pids[slot] == 0 || pids[slot] == row->pid, "more than two processes");
		pids[slot] = row->pid;
		bool first = true;

		for (size_t j = 0; j < i && first; j++)
			first = strcmp(str(rc.win[j], "id"), id) != 0;
		if (first) {
			cr_assert(row->start_ns >= last_start[t][slot],
				  "%s window %s (start %lld) received after one of %lld", row->type,
				  id, row->start_ns, last_start[t][slot]);
			last_start[t][slot] = row->start_ns;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		bool found = false;

		if (r->v[i].state != 1)
			continue;
		for (size_t j = 0; j < rc.nwin && !found; j++)
			found = !strcmp(str(rc.win[j], "id"), r->v[i].uuid);
		cr_assert(found, "row %lld (%s, start %lld) marked delivered but never received",
			  r->v[i].id, r->v[i].type, r->v[i].start_ns);
	}
	{
		size_t n = rc.nwin;

		recv_free(&rc);
		return n;
	}
}

static void url_of(const struct stand *s, const char *scheme, char *out, size_t len)
{
	snprintf(out, len, "%s://%s", scheme, s->addr);
}

/* The value of a metric in the agent's /metrics (-1 when absent). */
static double metric(const struct agentrun *a, const char *name)
{
	char *body = NULL, want[128], *p;
	size_t len;
	double v = -1;

	cr_assert_eq(agentrun_http(a, "/metrics", NULL, &body, &len), 200);
	snprintf(want, sizeof(want), "\n%s ", name);
	p = body ? strstr(body, want) : NULL;
	if (p)
		v = strtod(p + strlen(want), NULL);
	free(body);
	return v;
}

/* ---- tests ---- */

/* TLS with a CA made here, basic auth, tenant, an extra header; every window of a CPU and a
 * block series delivered exactly once, in order, labelled. First without the CA: the TLS
 * check refuses the remote, nothing is sent, windows wait in the store; the restarted agent
 * delivers them. */
Test(push, tls_auth_tenant_exactly_once_in_order, .timeout = 150)
{
	char tmp[256], dir[300], url[128], cmd[2048], extra[1024], *text = NULL;
	char ca[300], key[300], cert[300], auth[300];
	const char *sargs[] = {"-tls-cert",	  cert,	     "-tls-key", key, "-basic-auth",
			       "goscope:s3cr:et", "-tenant", "team-a",	 NULL};
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	struct rows r;
	struct recv rc;
	size_t n, before;
	FILE *f;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmp);
	snprintf(key, sizeof(key), "%s/srv.key", tmp);
	snprintf(cert, sizeof(cert), "%s/srv.pem", tmp);
	snprintf(auth, sizeof(auth), "%s/auth", tmp);
	/* A self-signed CA and a server certificate for 127.0.0.1 signed by it. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=goscope-test-ca && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
		 "srv.key -out srv.csr -subj /CN=127.0.0.1 && printf "
		 "'subjectAltName=IP:127.0.0.1\\n' > ext && openssl x509 -req -in srv.csr -CA "
		 "ca.pem "
		 "-CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext",
		 tmp);
	cr_assert_eq(run_capture(cmd, 1, &text, &n), 0, "%s", text);
	free(text);
	f = fopen(auth, "we");
	cr_assert(f);
	fputs("goscope:s3cr:et\n", f); /* the password holds a colon */
	fclose(f);
	stand_start(&s, tmp, sargs);
	url_of(&s, "https", url, sizeof(url));
	targets_start(&t, tmp);

	/* No CA: the certificate cannot be verified, nothing goes out. */
	agent_start(&a, dir, url, NULL);
	agentrun_sleep_ms(3500);
	agent_stop_ok(&a);
	cr_assert(agentrun_log_has(&a, "certificate") || agentrun_log_has(&a, "SSL"),
		  "no TLS error logged");
	cr_assert_eq(count_requests(&s, 0, NULL), 0, "a request passed an unverified TLS");
	rows_read(dir, &r);
	before = rows_count(&r, NULL, 0);
	cr_assert_geq(before, 2, "no undelivered windows kept");
	free(r.v);

	/* With the CA, basic auth, tenant and a header: the backlog and the new windows. */
	snprintf(extra, sizeof(extra),
		 "--push-ca-file %s --push-basic-auth-file %s --push-tenant team-a "
		 "--push-header 'X-Goscope-Test: yes'",
		 ca, auth);
	agent_start(&a, dir, url, extra);
	cr_assert(wait_delivered(dir, before + 4, 3, 30000), "windows left undelivered");
	targets_stop(&t);
	agentrun_sleep_ms(2500); /* their last windows */
	cr_assert(wait_delivered(dir, 0, 0, 15000), "windows left undelivered");
	agent_stop_ok(&a);
	rows_read(dir, &r);
	cr_assert_eq(rows_count(&r, NULL, 1), r.n, "every window delivered");
	n = check_delivery(&s, &r, NULL);
	cr_assert_eq(n, r.n);
	cr_assert_geq(rows_count(&r, "block", 1), 3);
	free(r.v);
	recv_read(&s, &rc);
	for (size_t i = 0; i < rc.nreq; i++) {
		cr_assert_eq((int)num(rc.req[i], "status"), 200);
		cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(rc.req[i], "tls")));
		cr_assert_str_eq(str(rc.req[i], "tenant"), "team-a");
		cr_assert_str_eq(str(rc.req[i], "extra"), "yes");
	}
	cr_assert_lt(rc.nreq, n, "several windows per request");
	recv_free(&rc);
	cr_assert(agentrun_log_has(&a, "push: ") && agentrun_log_has(&a, " dropped, 0 lost"),
		  "summary");
	gotarget_stop(&s.t, 2000);
}

/* The remote down (503) for 2 minutes: the windows wait in the store, retries back off
 * (capped by --push-max-backoff here, so the test does not wait up to 5 minutes after the
 * outage), and after it the backlog goes out in order, nothing lost or duplicated. */
Test(push, two_minute_outage, .timeout = 240)
{
	char tmp[256], dir[300], url[128], *text;
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	struct rows r;
	struct recv rc;
	double first_gap = -1, max_gap = 0, prev = 0;
	size_t failed = 0, backlog;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	stand_start(&s, tmp, NULL);
	url_of(&s, "http", url, sizeof(url));
	targets_start(&t, tmp);
	agent_start(&a, dir, url, "--push-max-backoff 10s");
	cr_assert(wait_delivered(dir, 2, 1, 20000), "nothing delivered before the outage");
	stand_cmd(&s, "fail 503");
	agentrun_sleep_ms(120000);
	rows_read(dir, &r);
	backlog = rows_count(&r, NULL, 0);
	free(r.v);
	cr_assert_geq(backlog, 100, "a 2-minute backlog of two processes: %zu", backlog);
	stand_cmd(&s, "ok");
	cr_assert(wait_delivered(dir, 0, 0, 30000), "backlog not delivered after the outage");
	targets_stop(&t);
	agentrun_sleep_ms(2500);
	cr_assert(wait_delivered(dir, 0, 0, 15000), "windows left undelivered");
	agent_stop_ok(&a);
	rows_read(dir, &r);
	cr_assert_eq(rows_count(&r, NULL, 1), r.n, "nothing lost or dropped");
	cr_assert_eq(check_delivery(&s, &r, NULL), r.n);
	free(r.v);
	/* Retries: the first soon (0.25-0.5 s), then growing up to the 10 s cap. */
	recv_read(&s, &rc);
	for (size_t i = 0; i < rc.nreq; i++) {
		double ts = num(rc.req[i], "t_ms");

		if ((int)num(rc.req[i], "status") != 503)
			continue;
		if (failed++) {
			double gap = ts - prev;

			if (first_gap < 0)
				first_gap = gap;
			max_gap = gap > max_gap ? gap : max_gap;
		}
		prev = ts;
	}
	recv_free(&rc);
	cr_assert_gt(failed, 10);
	cr_assert_lt(failed, 60, "retries not backed off: %zu in 2 minutes", failed);
	cr_assert(first_gap >= 200 && first_gap <= 1500, "first retry after %.0f ms", first_gap);
	/* At most the 10 s cap plus one request and store read on a loaded machine (without
	 * the cap the gaps would reach 16-32 s in 2 minutes). */
	cr_assert(max_gap >= 5000 && max_gap <= 12500, "longest gap %.0f ms", max_gap);
	text = agentrun_log(&a);
	cr_assert_leq(count_substr(text, "remote answered 503"), 3,
		      "logged more than once a minute");
	cr_assert_geq(count_substr(text, "remote answered 503"), 1);
	free(text);
	gotarget_stop(&s.t, 2000);
}

/* 429 with Retry-After: 3: the next request waits 3 s (the backoff alone: 0.25-0.5 s);
 * 400 for one series: its windows are dropped, counted and logged once, the others go on. */
Test(push, retry_after_and_one_series_refused, .timeout = 120)
{
	char tmp[256], dir[300], url[128], *text, *summary;
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	struct rows r;
	struct recv rc;
	double t429[2] = {0};
	size_t n429 = 0, dropped, after_reject = 0;
	long long t_reject;
	struct timespec ts;
	double pushed;
	uint64_t t0;
	int bpid, cpid;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	stand_start(&s, tmp, NULL);
	url_of(&s, "http", url, sizeof(url));
	stand_cmd(&s, "fail 429 3");
	targets_start(&t, tmp);
	bpid = t.block.pid;
	cpid = t.cpu.pid;
	agent_start(&a, dir, url, NULL);
	t0 = agentrun_mono_ms();
	while (count_requests(&s, 429, NULL) < 2 && agentrun_mono_ms() - t0 < 15000)
		agentrun_sleep_ms(100);
	stand_cmd(&s, "ok");
	recv_read(&s, &rc);
	for (size_t i = 0; i < rc.nreq && n429 < 2; i++) {
		if ((int)num(rc.req[i], "status") == 429)
			t429[n429++] = num(rc.req[i], "t_ms");
	}
	recv_free(&rc);
	cr_assert_eq(n429, 2);
	cr_assert(t429[1] - t429[0] >= 2900, "Retry-After not honoured: %.0f ms",
		  t429[1] - t429[0]);

	/* One series refused (the stand-in answers 400 to any request that carries it). */
	clock_gettime(CLOCK_REALTIME, &ts);
	t_reject = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	stand_cmd(&s, "reject-service " BLOCK_NAME);
	agentrun_sleep_ms(5000);
	targets_stop(&t);
	agentrun_sleep_ms(2500);
	t0 = agentrun_mono_ms();
	for (;;) {
		rows_read(dir, &r);
		if (rows_count(&r, NULL, 0) == 0 || agentrun_mono_ms() - t0 > 15000)
			break;
		free(r.v);
		agentrun_sleep_ms(250);
	}
	/* The counters in /metrics. */
	pushed = metric(&a, "goscope_push_windows_pushed_total");
	cr_assert_geq(metric(&a, "goscope_push_windows_dropped_total"), 6);
	cr_assert_geq(metric(&a, "goscope_push_requests_retried_total"), 2);
	cr_assert_eq(metric(&a, "goscope_push_windows_lost_total"), 0);
	cr_assert_geq(metric(&a, "goscope_push_backlog_windows"), 0);
	cr_assert_geq(metric(&a, "goscope_push_backlog_oldest_age_seconds"), 0);
	agent_stop_ok(&a);
	free(r.v);
	rows_read(dir, &r);
	cr_assert_eq(rows_count(&r, NULL, 0), 0, "windows left undelivered");
	/* The refused service's windows (its CPU and block series) after the refusal. */
	dropped = rows_of_pid(&r, bpid, 2);
	cr_assert_geq(dropped, 6, "windows of the refused service dropped");
	cr_assert_geq(rows_count(&r, "block", 2), 3);
	cr_assert_eq(rows_of_pid(&r, cpid, 1), rows_of_pid(&r, cpid, -2),
		     "the other service's windows delivered");
	cr_assert_geq(pushed, (double)rows_of_pid(&r, cpid, 1));
	/* ... and went on while the other was refused (5 s of 1 s windows: how many of them
	 * had samples depends on the host's load; 3 is well above none). */
	for (size_t i = 0; i < r.n; i++)
		after_reject +=
			r.v[i].pid == cpid && r.v[i].state == 1 && r.v[i].start_ns >= t_reject;
	cr_assert_geq(after_reject, 3, "the other service's windows after the refusal: %zu",
		      after_reject);
	cr_assert_eq(rows_count(&r, NULL, 2), dropped, "only the refused service dropped");
	check_delivery(&s, &r, NULL);
	free(r.v);
	text = agentrun_log(&a);
	cr_assert_eq(count_substr(text, "refused by the stand-in"), 1,
		     "the server's message logged once a minute at most: %s", text);
	summary = strstr(text, "goscope agent: push:");
	cr_assert(summary, "%s", text);
	{
		char want[64];

		snprintf(want, sizeof(want), "%zu dropped", dropped);
		cr_assert(strstr(summary, want), "dropped not counted (%s): %s", want, summary);
	}
	free(text);
	gotarget_stop(&s.t, 2000);
}

/* A remote that accepts the connection and never answers: each request ends at
 * --push-timeout and is retried; after it answers again every window is delivered. A SIGTERM
 * while a request hangs ends the agent at once (the request is aborted). */
Test(push, hang_timeouts_and_retries, .timeout = 120)
{
	char tmp[256], dir[300], url[128];
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	struct rows r;
	struct recv rc;
	uint64_t t0;
	int st;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	stand_start(&s, tmp, NULL);
	url_of(&s, "http", url, sizeof(url));
	targets_start(&t, tmp);
	agent_start(&a, dir, url, "--push-timeout 3s --push-max-backoff 1s");
	cr_assert(wait_delivered(dir, 1, 0, 20000));
	stand_cmd(&s, "hang");
	t0 = agentrun_mono_ms();
	while (count_requests(&s, 0, "hung") < 2 && agentrun_mono_ms() - t0 < 20000)
		agentrun_sleep_ms(100);
	cr_assert_geq(count_requests(&s, 0, "hung"), 2, "no retry after a timeout");
	cr_assert(agentrun_log_has(&a, "timed out") || agentrun_log_has(&a, "Timeout"),
		  "timeout not logged");
	recv_read(&s, &rc);
	{
		/* The stand-in records a hung request when the client gives up: 3 s apart at
		 * least (timeout + backoff). */
		double prev = 0;
		size_t k = 0;

		for (size_t i = 0; i < rc.nreq; i++) {
			if (!cJSON_IsTrue(cJSON_GetObjectItem(rc.req[i], "hung")))
				continue;
			if (k++)
				cr_assert_geq(num(rc.req[i], "t_ms") - prev, 2900);
			prev = num(rc.req[i], "t_ms");
		}
	}
	recv_free(&rc);
	stand_cmd(&s, "ok");
	cr_assert(wait_delivered(dir, 0, 0, 20000), "not delivered after the remote came back");

	/* SIGTERM during a hung request: out well before the 3 s timeout. */
	stand_cmd(&s, "hang");
	t0 = agentrun_mono_ms();
	for (;;) {
		recv_read(&s, &rc);
		if (rc.ninflight > 0 || agentrun_mono_ms() - t0 > 10000)
			break;
		recv_free(&rc);
		agentrun_sleep_ms(20);
	}
	cr_assert_gt(rc.ninflight, 0);
	recv_free(&rc);
	t0 = agentrun_mono_ms();
	st = agentrun_stop(&a, SIGTERM, 5000);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_lt(agentrun_mono_ms() - t0, 2000, "SIGTERM waited for the hung request");
	targets_stop(&t);
	rows_read(dir, &r);
	check_delivery(&s, &r, NULL);
	free(r.v);
	gotarget_stop(&s.t, 2000);
}

/* SIGKILL while a request is under way (the stand-in holds it): after a restart its windows
 * are delivered with the same IDs, every other window exactly once. */
Test(push, sigkill_mid_push_redelivers_same_ids, .timeout = 120)
{
	char tmp[256], dir[300], url[128];
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	struct rows r;
	struct recv rc;
	cJSON *ids;
	uint64_t t0;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	stand_start(&s, tmp, NULL);
	url_of(&s, "http", url, sizeof(url));
	targets_start(&t, tmp);
	agent_start(&a, dir, url, NULL);
	cr_assert(wait_delivered(dir, 2, 1, 20000));
	stand_cmd(&s, "delay 4000");
	t0 = agentrun_mono_ms();
	for (;;) {
		recv_read(&s, &rc);
		if (rc.ninflight > 0 || agentrun_mono_ms() - t0 > 10000)
			break;
		recv_free(&rc);
		agentrun_sleep_ms(20);
	}
	cr_assert_gt(rc.ninflight, 0, "no request under way");
	ids = cJSON_Duplicate(cJSON_GetObjectItem(rc.inflight[0], "ids"), 1);
	recv_free(&rc);
	cr_assert_gt(cJSON_GetArraySize(ids), 0);
	agentrun_stop(&a, SIGKILL, 5000);
	stand_cmd(&s, "ok");
	agentrun_sleep_ms(1000);
	agent_start(&a, dir, url, NULL);
	agentrun_sleep_ms(2000);
	targets_stop(&t);
	agentrun_sleep_ms(2500);
	cr_assert(wait_delivered(dir, 0, 0, 20000), "windows left undelivered after the restart");
	agent_stop_ok(&a);
	rows_read(dir, &r);
	cr_assert_eq(rows_count(&r, NULL, 1), r.n);
	/* The stand-in saw the client go and accepted nothing of the killed request; if it had,
	 * those IDs (and only those) could arrive twice. */
	cr_assert_eq(check_delivery(&s, &r, ids), r.n, "every window once");
	{
		const cJSON *x;

		recv_read(&s, &rc);
		cJSON_ArrayForEach(x, ids)
		{
			bool found = false;

			for (size_t j = 0; j < rc.nwin && !found; j++)
				found = !strcmp(str(rc.win[j], "id"), cJSON_GetStringValue(x));
			cr_assert(found, "in-flight window %s not delivered after the restart",
				  cJSON_GetStringValue(x));
		}
		recv_free(&rc);
	}
	cJSON_Delete(ids);
	free(r.v);
	gotarget_stop(&s.t, 2000);
}

/* Undelivered windows deleted by --retention while the remote is down: counted as lost in
 * /metrics and the log, never delivered. */
Test(push, retention_counts_undelivered_windows_lost, .timeout = 90)
{
	char tmp[256], dir[300], url[128];
	struct stand s;
	struct targets t = {0};
	struct agentrun a;
	uint64_t t0;
	double lost = 0;

	cr_assert(test_tmpdir(tmp, sizeof(tmp)));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	stand_start(&s, tmp, NULL);
	url_of(&s, "http", url, sizeof(url));
	stand_cmd(&s, "fail 503");
	targets_start(&t, tmp);
	agent_start(&a, dir, url, "--retention 3s");
	t0 = agentrun_mono_ms();
	while (lost < 3 && agentrun_mono_ms() - t0 < 20000) {
		agentrun_sleep_ms(500);
		lost = metric(&a, "goscope_push_windows_lost_total");
	}
	cr_assert_geq(lost, 3, "undelivered windows deleted by retention not counted as lost");
	cr_assert_eq(metric(&a, "goscope_push_windows_pushed_total"), 0);
	cr_assert(agentrun_log_has(&a, "undelivered windows deleted by retention"),
		  "lost windows not logged");
	targets_stop(&t);
	agent_stop_ok(&a);
	cr_assert_eq(count_requests(&s, 200, NULL), 0);
	gotarget_stop(&s.t, 2000);
}
