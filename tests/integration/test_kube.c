/* test_kube.c — pod metadata on Kubernetes (agent/kube/): the metadata client against a
 * stand-in API server, and the agent labelling real profiles with it.
 *
 * No Kubernetes can run on the test machine (no kubelet, etcd or images, no network), so the
 * API server is a stand-in written in Go's standard library (tests/go/kubeapi): loopback
 * HTTPS with a CA it makes at start, the bearer token checked on every request, and recorded
 * PodList and pod objects (tests/go/kubeapi/testdata/) served in the real API's list and
 * watch shapes, including the ERROR event with a 410 Status for an expired resourceVersion.
 * The test drives it (add, delete, compaction, token rotation, down and up) through its stdin.
 *
 * Checked: list then watch of this node's pods (the other node's pod never known); a pod
 * added and deleted; a 410 Gone leads to a re-list that finds what no event said; a rotated
 * token is read again (before a 401 and after one); a CA that does not match is refused; the
 * API server down at start and in the middle (lookups answer from what was last known, the
 * client recovers); and the real agent profiling real Go processes whose cgroup files are
 * faked through its proc_root: rows without pod labels while the API server is down, then
 * rows with namespace, pod, container, workload, the chosen pod labels and the service_name
 * from the annotation (else NAMESPACE/WORKLOAD), and blocking profiles turned on by the
 * goscope.io/block annotation; the HTTP API's /api/processes, namespace=/pod=/container=
 * selectors and /metrics (promtool-checked) from the same metadata. Also: a real podman
 * container's ID read from its cgroup file, as the agent reads it. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "daemon/agent.h"
#include "kube/kube.h"
#include "procs/labels.h"
#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/run.h"

#define NODE "node-a"
#define ID_CHECKOUT "c7761e58969f7edd498186641b2021e8477e1bcd230de4cf3435242da4a40d14"
#define ID_ENVOY "84532b306f259587c364bd7301e0813963d5b84fd27c9338f0862dab8f0499d7"
#define ID_DB "7bdc25d1694ef984782a16f6f1710c1c6bc83ba7a131b515baf532bea021d011"
#define ID_ELSEWHERE "7b1b763ee8f62eb88e4742a760f912d0b19bcd58b2b948999784bacc15a7f4d7"
#define ID_BACKUP "54d00d867758cef816bc4685f58e327b949712b07ebd17c3485f3ffc9e9f5133"
#define ID_NODEEXP "db36deea403b65ff6c41180e0a6740bb0bc72adaa4b4f0966bccf97888472835"
#define ID_API "14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479"
#define ID_PAYMENTS "df384ae97c77ad3001626aab01f2eb2aad176448109165df1d64c57b7091cd1c"
#define ID_LEDGER "fe14010b4fe83303852f0467c919ef9a7ca089b91e96e3aad7d426dd87079297"
/* The client's retry backoff is capped at this in the tests (30 s in production). */
#define TEST_BACKOFF_MAX_MS 1000
#define WAIT_MS 10000

static const char *const pod_labels[] = {"app", "version"};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static const char *src_dir(void)
{
	const char *s = getenv("GOSCOPE_SRC_DIR");

	return s ? s : ".";
}

/* ---- the stand-in API server ---- */

struct standin {
	struct gotarget t;
	char dir[256]; /* the service account directory: token, ca.crt */
	char url[64];
	char data[512]; /* testdata/ */
};

static void write_token(const struct standin *s, const char *token)
{
	char tmp[400], path[400];
	int fd;

	/* As the kubelet does: a new file put in place (a new inode), never rewritten. */
	snprintf(tmp, sizeof(tmp), "%s/.token.new", s->dir);
	snprintf(path, sizeof(path), "%s/token", s->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, token, strlen(token)), (ssize_t)strlen(token));
	cr_assert_eq(write(fd, "\n", 1), 1);
	close(fd);
	cr_assert_eq(rename(tmp, path), 0);
}

static void standin_start(struct standin *s, const char *podlist, const char *token)
{
	char bin[512], tmp[256], list[700], ca[400], line[128];
	char *argv[] = {bin, "-ca-out", ca, "-token", (char *)token, "-pods", list, NULL};

	GOTARGET_BUILD_OR_SKIP(bin, "kubeapi", "1.27", "default");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(s->dir, sizeof(s->dir), "%s", tmp);
	snprintf(s->data, sizeof(s->data), "%s/tests/go/kubeapi/testdata", src_dir());
	snprintf(list, sizeof(list), "%s/%s", s->data, podlist);
	snprintf(ca, sizeof(ca), "%s/ca.crt", s->dir);
	write_token(s, token);
	cr_assert_eq(gotarget_start(&s->t, bin, argv), 0);
	cr_assert_gt(gotarget_read_line(&s->t, line, sizeof(line), 20000), 0, "stand-in silent");
	cr_assert(!strncmp(line, "listening ", 10), "%s", line);
	snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%d", atoi(line + 10));
}

/* One command; the reply line in out (may be NULL). */
static void standin_cmd(struct standin *s, char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void standin_cmd(struct standin *s, char *out, size_t len, const char *fmt, ...)
{
	char cmd[1024], reply[1024];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
	va_end(ap);
	n = strlen(cmd);
	cmd[n++] = '\n';
	cr_assert_eq(write(s->t.stdin_fd, cmd, n), (ssize_t)n);
	cr_assert_gt(gotarget_read_line(&s->t, reply, sizeof(reply), 10000), 0, "no reply: %s",
		     cmd);
	cr_assert(!strncmp(reply, "ok", 2), "%s-> %s", cmd, reply);
	if (out && len) {
		n = strnlen(reply, len - 1);
		memcpy(out, reply, n);
		out[n] = '\0';
	}
}

/* Waits until the stand-in has served n watch requests (the client is watching). */
static void wait_watches(struct standin *s, int n)
{
	uint64_t t0 = mono_ms();
	char reply[256];
	const char *w;

	do {
		standin_cmd(s, reply, sizeof(reply), "stats");
		w = strstr(reply, "watches=");
		if (w && atoi(w + 8) >= n)
			return;
		sleep_ms(20);
	} while (mono_ms() - t0 < WAIT_MS);
	cr_assert_fail("no watch: %s", reply);
}

static void standin_stop(struct standin *s)
{
	gotarget_stop(&s->t, 5000);
}

static struct kube *client_open(const struct standin *s)
{
	struct kube_config kc = {.api_url = s->url,
				 .sa_dir = s->dir,
				 .node = NODE,
				 .pod_labels = pod_labels,
				 .npod_labels = 2,
				 .backoff_max_ms = TEST_BACKOFF_MAX_MS};
	struct gs_error err = {0};
	struct kube *k;

	cr_assert_eq(kube_open(&kc, &k, &err), 0, "%s", err.msg);
	return k;
}

/* Waits until the container's pod is known (want) or not (!want). */
static bool wait_known(struct kube *k, const char *id, bool want, int timeout_ms)
{
	uint64_t t0 = mono_ms();
	struct kube_meta m;

	do {
		if (kube_lookup(k, id, &m) == want)
			return true;
		sleep_ms(20);
	} while (mono_ms() - t0 < (uint64_t)timeout_ms);
	return false;
}

static struct kube_stats stats(struct kube *k)
{
	struct kube_stats st;

	kube_get_stats(k, &st);
	return st;
}

/* kube_label_proc: what the agent writes into a process's labels. */
static void label_proc_rules(struct kube *k)
{
	struct proc_labels l = {.service_from = SERVICE_FROM_GOSCOPE_ENV};

	snprintf(l.service, sizeof(l.service), "own");
	snprintf(l.container_id, sizeof(l.container_id), "%s", ID_CHECKOUT);
	cr_assert(kube_label_proc(k, &l));
	cr_assert_str_eq(l.service, "own", "the process's own service name wins");
	cr_assert_str_eq(l.k8s_namespace, "shop");
	cr_assert_str_eq(l.k8s_pod, "checkout-7d4b9c8f6-x2x9q");
	cr_assert_str_eq(l.k8s_container, "checkout");
	cr_assert_str_eq(l.k8s_workload, "checkout");
	cr_assert_eq(l.k8s_nlabels, 2);
	cr_assert_str_eq(l.k8s_labels[0].key, "app");
	cr_assert_str_eq(l.k8s_labels[0].value, "checkout");
	cr_assert_str_eq(l.k8s_labels[1].key, "version");
	cr_assert_str_eq(l.k8s_labels[1].value, "v2");
	cr_assert_not(kube_label_proc(k, &l), "nothing changed");
	l.service_from = SERVICE_FROM_EXE;
	cr_assert(kube_label_proc(k, &l));
	cr_assert_str_eq(l.service, "shop-checkout", "the annotation");
	cr_assert_eq(l.service_from, SERVICE_FROM_KUBE);
	/* Another container: NAMESPACE/WORKLOAD, and only the labels its pod has. */
	snprintf(l.container_id, sizeof(l.container_id), "%s", ID_DB);
	cr_assert(kube_label_proc(k, &l));
	cr_assert_str_eq(l.service, "data/db");
	cr_assert_eq(l.k8s_nlabels, 1);
	cr_assert_str_eq(l.k8s_labels[0].value, "db");
	/* An unknown container: nothing changes. */
	snprintf(l.container_id, sizeof(l.container_id), "%s", ID_ELSEWHERE);
	cr_assert_not(kube_label_proc(k, &l));
	cr_assert_str_eq(l.k8s_pod, "db-0");
	l.container_id[0] = '\0';
	cr_assert_not(kube_label_proc(k, &l));
	cr_assert_not(kube_label_proc(NULL, &l));
}

/* List, watch, a pod added (a CronJob's, annotated for blocking profiles) and deleted. */
Test(kube, list_watch_add_delete, .timeout = 60)
{
	struct standin s;
	struct kube *k;
	struct kube_meta m;
	struct kube_stats st;

	standin_start(&s, "podlist.json", "token-1");
	k = client_open(&s);
	cr_assert(wait_known(k, ID_CHECKOUT, true, WAIT_MS), "listed pod not known");
	cr_assert_eq(kube_lookup(k, ID_CHECKOUT, &m), 1);
	cr_assert_str_eq(m.ns, "shop");
	cr_assert_str_eq(m.pod, "checkout-7d4b9c8f6-x2x9q");
	cr_assert_str_eq(m.container, "checkout");
	cr_assert_str_eq(m.workload, "checkout", "a Deployment, from the ReplicaSet's name");
	cr_assert_str_eq(m.service, "shop-checkout");
	cr_assert_str_eq(m.label_values[0], "checkout");
	cr_assert_str_eq(m.label_values[1], "v2");
	cr_assert_not(m.block);
	cr_assert_eq(kube_lookup(k, ID_ENVOY, &m), 1);
	cr_assert_str_eq(m.container, "envoy", "the sidecar in the same pod");
	cr_assert_eq(kube_lookup(k, ID_DB, &m), 1);
	cr_assert_str_eq(m.workload, "db");
	cr_assert_str_eq(m.ns, "data");
	cr_assert_eq(kube_lookup(k, ID_ELSEWHERE, &m), 0, "a pod of another node");
	st = stats(k);
	cr_assert_eq(st.pods, 3, "node-a's three pods (one not started yet)");
	cr_assert(st.synced);
	label_proc_rules(k);

	standin_cmd(&s, NULL, 0, "add %s/pod-cronjob.json", s.data);
	cr_assert(wait_known(k, ID_BACKUP, true, WAIT_MS), "added pod not known");
	cr_assert_eq(kube_lookup(k, ID_BACKUP, &m), 1);
	cr_assert_str_eq(m.ns, "ops");
	cr_assert_str_eq(m.workload, "backup", "a CronJob, from its Job's name");
	cr_assert(m.block);
	cr_assert_str_eq(m.label_values[0], "backup");
	standin_cmd(&s, NULL, 0, "bookmark");
	standin_cmd(&s, NULL, 0, "add %s/pod-deployment.json", s.data);
	cr_assert(wait_known(k, ID_API, true, WAIT_MS), "a pod after a bookmark");
	standin_cmd(&s, NULL, 0, "delete ops backup-29034720-7xk2p");
	cr_assert(wait_known(k, ID_BACKUP, false, WAIT_MS), "deleted pod still known");
	st = stats(k);
	cr_assert_eq(st.pods, 4);
	cr_assert_eq(st.events, 3);
	cr_assert_eq(st.lists, 1);
	cr_assert_eq(st.relists, 0);
	cr_assert_eq(st.list_errors + st.watch_errors, 0);
	kube_close(k);
	standin_stop(&s);
}

/* A 410 Gone ends the watch; the re-list finds a pod no event announced. */
Test(kube, gone_relists, .timeout = 60)
{
	struct standin s;
	struct kube *k;
	struct kube_stats st;
	char reply[256];

	standin_start(&s, "podlist.json", "token-1");
	k = client_open(&s);
	cr_assert(wait_known(k, ID_CHECKOUT, true, WAIT_MS));
	standin_cmd(&s, NULL, 0, "addquiet %s/pod-daemonset.json", s.data);
	sleep_ms(1500);
	cr_assert(wait_known(k, ID_NODEEXP, false, 0), "known without an event or a list");
	standin_cmd(&s, NULL, 0, "gone");
	cr_assert(wait_known(k, ID_NODEEXP, true, WAIT_MS), "no re-list after 410 Gone");
	st = stats(k);
	cr_assert_geq(st.gone, 1);
	cr_assert_eq(st.relists, 1);
	cr_assert_eq(st.lists, 2);
	cr_assert_eq(st.watch_errors, 0, "410 is not an error");
	standin_cmd(&s, reply, sizeof(reply), "stats");
	cr_assert(strstr(reply, "lists=2 "), "%s", reply);
	/* Still watching after the re-list. */
	standin_cmd(&s, NULL, 0, "delete monitoring node-exporter-8vjz4");
	cr_assert(wait_known(k, ID_NODEEXP, false, WAIT_MS));
	kube_close(k);
	standin_stop(&s);
}

/* Token rotation: the file replaced before the server wants the new token, then after (a 401
 * until the file changes). The stand-in checks the bearer token of every request. */
Test(kube, token_rotation, .timeout = 60)
{
	struct standin s;
	struct kube *k;
	struct kube_stats st;
	char reply[256];

	standin_start(&s, "podlist.json", "token-1");
	k = client_open(&s);
	cr_assert(wait_known(k, ID_CHECKOUT, true, WAIT_MS));
	wait_watches(&s, 1); /* the token is rotated under a running watch */
	write_token(&s, "token-2");
	standin_cmd(&s, NULL, 0, "token token-2"); /* also ends the open watch */
	standin_cmd(&s, NULL, 0, "add %s/pod-cronjob.json", s.data);
	cr_assert(wait_known(k, ID_BACKUP, true, WAIT_MS), "nothing seen after a rotation");
	standin_cmd(&s, reply, sizeof(reply), "stats");
	cr_assert(strstr(reply, "unauthorized=0 "), "the new token was not read first: %s", reply);
	/* The server first: 401s until the kubelet's new file appears. */
	standin_cmd(&s, NULL, 0, "token token-3");
	sleep_ms(1500);
	standin_cmd(&s, NULL, 0, "add %s/pod-deployment.json", s.data);
	sleep_ms(500);
	cr_assert(wait_known(k, ID_API, false, 0), "known with a refused token");
	write_token(&s, "token-3");
	cr_assert(wait_known(k, ID_API, true, WAIT_MS), "no recovery after the token file changed");
	standin_cmd(&s, reply, sizeof(reply), "stats");
	cr_assert(!strstr(reply, "unauthorized=0 "), "%s", reply);
	cr_assert(strstr(reply, "tokens=token-1,token-2,token-3"), "%s", reply);
	st = stats(k);
	cr_assert_geq(st.token_reloads, 2);
	cr_assert(st.synced);
	kube_close(k);
	standin_stop(&s);
}

/* The API server down at start, back, down in the middle and back: what was known stays
 * known meanwhile, and what changed while it was down is learnt once it is back. */
Test(kube, api_server_down, .timeout = 60)
{
	struct standin s;
	struct kube *k;
	struct kube_stats st;
	uint64_t t0;

	standin_start(&s, "podlist.json", "token-1");
	standin_cmd(&s, NULL, 0, "down");
	k = client_open(&s);
	sleep_ms(1500);
	st = stats(k);
	cr_assert_geq(st.list_errors, 1);
	cr_assert_not(st.synced);
	cr_assert(wait_known(k, ID_CHECKOUT, false, 0));
	t0 = mono_ms();
	standin_cmd(&s, NULL, 0, "up");
	cr_assert(wait_known(k, ID_CHECKOUT, true, WAIT_MS), "no recovery");
	cr_assert_lt(mono_ms() - t0, TEST_BACKOFF_MAX_MS + 3000, "recovery took %llu ms",
		     (unsigned long long)(mono_ms() - t0));
	standin_cmd(&s, NULL, 0, "down");
	standin_cmd(&s, NULL, 0, "addquiet %s/pod-daemonset.json", s.data);
	sleep_ms(1500);
	cr_assert(wait_known(k, ID_CHECKOUT, true, 0), "forgotten while the server is down");
	st = stats(k);
	cr_assert_not(st.synced);
	cr_assert_geq(st.watch_errors + st.list_errors, 2);
	standin_cmd(&s, NULL, 0, "up");
	cr_assert(wait_known(k, ID_NODEEXP, true, WAIT_MS), "changes while down not learnt");
	cr_assert(stats(k).synced);
	kube_close(k);
	standin_stop(&s);
}

/* The server's certificate must chain to the service account's CA. */
Test(kube, wrong_ca_refused, .timeout = 60)
{
	struct standin s, other;
	struct kube *k;
	char from[400], to[400];

	standin_start(&s, "podlist.json", "token-1");
	standin_start(&other, "podlist.json", "token-1");
	snprintf(from, sizeof(from), "%s/ca.crt", other.dir);
	snprintf(to, sizeof(to), "%s/ca.crt", s.dir);
	cr_assert_eq(rename(from, to), 0);
	k = client_open(&s);
	sleep_ms(1500);
	cr_assert(wait_known(k, ID_CHECKOUT, false, 0), "trusted a server of another CA");
	cr_assert_geq(stats(k).list_errors, 1);
	kube_close(k);
	standin_stop(&other);
	standin_stop(&s);
}

/* ---- the agent: real profiles, cgroups faked through its proc_root ---- */

struct agent_thread {
	pthread_t th;
	struct agent_config cfg;
	volatile sig_atomic_t stop;
	struct agent_stats st;
	struct gs_error err;
	int rc;
	pthread_mutex_t mu;
	char log[1 << 16];
	size_t loglen;
	volatile unsigned port; /* the API's */
};

static void on_log(void *arg, enum agent_log_level level, const char *msg)
{
	struct agent_thread *a = arg;

	(void)level;
	pthread_mutex_lock(&a->mu);
	a->loglen += (size_t)snprintf(a->log + a->loglen, sizeof(a->log) - a->loglen, "%s\n", msg);
	if (a->loglen >= sizeof(a->log))
		a->loglen = sizeof(a->log) - 1;
	pthread_mutex_unlock(&a->mu);
}

static void on_listen(void *arg, unsigned port)
{
	struct agent_thread *a = arg;

	a->port = port;
}

static void *agent_thread_run(void *arg)
{
	struct agent_thread *a = arg;

	a->rc = agent_run(&a->cfg, &a->st, &a->err);
	return NULL;
}

/* <root>/<pid>/: the process's own /proc files, but for a cgroup file naming a container. */
static void fake_proc_entry(const char *root, pid_t pid, const char *cgroup)
{
	static const char *const links[] = {"stat",   "comm", "environ", "cmdline", "maps",
					    "status", "mem",  "auxv",	 "root"};
	char dir[400], path[500], target[512], exe[512];
	ssize_t n;
	int fd;

	snprintf(dir, sizeof(dir), "%s/%d", root, pid);
	cr_assert_eq(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(target, sizeof(target), "/proc/%d/%s", pid, links[i]);
		snprintf(path, sizeof(path), "%s/%s", dir, links[i]);
		cr_assert_eq(symlink(target, path), 0);
	}
	/* exe names the executable itself (its readlink is the exe label). */
	snprintf(target, sizeof(target), "/proc/%d/exe", pid);
	n = readlink(target, exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/exe", dir);
	cr_assert_eq(symlink(exe, path), 0);
	snprintf(path, sizeof(path), "%s/cgroup", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, cgroup, strlen(cgroup)), (ssize_t)strlen(cgroup));
	close(fd);
}

/* The labels JSON of the latest cpu row of pid, and how many rows it has ("" / 0: none). */
static int latest_row(const char *db, pid_t pid, char *labels, size_t len, long long *id)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int n = 0;

	labels[0] = '\0';
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return 0;
	}
	sqlite3_busy_timeout(h, 2000);
	if (sqlite3_prepare_v2(h,
			       "SELECT labels, id, (SELECT count(*) FROM profiles WHERE pid = ?1 "
			       "AND type = 'cpu') FROM profiles WHERE pid = ?1 AND type = 'cpu' "
			       "ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, pid);
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(labels, len, "%s", (const char *)sqlite3_column_text(st, 0));
			*id = sqlite3_column_int64(st, 1);
			n = sqlite3_column_int(st, 2);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return n;
}

static const char *json_label(cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Waits for a row of pid whose labels have (has_ns) or lack a namespace; its labels. */
static cJSON *wait_row(const char *db, pid_t pid, bool has_ns, long long *id, int timeout_ms)
{
	uint64_t t0 = mono_ms();
	char labels[8192];

	do {
		if (latest_row(db, pid, labels, sizeof(labels), id) > 0) {
			cJSON *l = cJSON_Parse(labels);

			cr_assert_not_null(l, "%s", labels);
			if ((json_label(l, "namespace") != NULL) == has_ns)
				return l;
			cJSON_Delete(l);
		}
		sleep_ms(200);
	} while (mono_ms() - t0 < (uint64_t)timeout_ms);
	return NULL;
}

/* Every sample of the row's pprof carries the label key=value. */
static void pprof_has(const char *db, long long id, const char *tmp, const char *key,
		      const char *value)
{
	char cmd[1200], file[400], why[256], *out = NULL;
	struct pprof_doc d;
	size_t len;

	snprintf(file, sizeof(file), "%s/row%lld.pb.gz", tmp, id);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 -readonly %s \"SELECT writefile('%s', data) FROM profiles WHERE id = "
		 "%lld\"",
		 db, file, id);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s: %s", cmd, out);
	free(out);
	cr_assert_eq(pprof_decode_file(file, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(d.nsamples, 0);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		bool found = false;

		for (size_t j = 0; j < s->nlabels; j++) {
			const char *k = pprof_str(&d, s->labels[j].key);
			const char *v = s->labels[j].str ? pprof_str(&d, s->labels[j].str) : NULL;

			if (k && v && !strcmp(k, key) && !strcmp(v, value))
				found = true;
		}
		cr_assert(found, "sample %zu has no %s=%s", i, key, value);
	}
	pprof_doc_free(&d);
}

static void start_burner(struct gotarget *t, const char *path)
{
	char *argv[] = {(char *)path, "-duration", "120s", "-goroutines", "1", NULL};
	char line[128];

	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 20000), 0);
	cr_assert(!strncmp(line, "ready", 5), "%s", line);
}

/* The HTTP API answers from the same metadata: /api/processes shows it, the namespace=
 * and pod= selectors capture the pod's process, /metrics has the client's counters. */
static void api_checks(unsigned port, const char *tmp, pid_t pay)
{
	char cmd[1024], file[400], why[256], *out = NULL;
	struct pprof_doc d;
	size_t len;
	bool ours = false;

	cr_assert_gt(port, 0);
	snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/api/processes", port);
	cr_assert_eq(run_capture(cmd, 0, &out, &len), 0, "%s", out);
	cr_assert(strstr(out, "\"namespace\":\"shop\""), "%s", out);
	cr_assert(strstr(out, "\"workload\":\"ledger\""), "%s", out);
	free(out);
	snprintf(file, sizeof(file), "%s/sel.pb.gz", tmp);
	snprintf(cmd, sizeof(cmd),
		 "curl -sf -o %s \"http://127.0.0.1:%u/pprof/cpu?namespace=shop&"
		 "pod=payments-5d8f9b7c6-k2j4h&container=payments&seconds=1\"",
		 file, port);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s: %s", cmd, out);
	free(out);
	cr_assert_eq(pprof_decode_file(file, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(d.nsamples, 0);
	for (size_t i = 0; i < d.nsamples; i++)
		for (size_t j = 0; j < d.samples[i].nlabels; j++) {
			const char *k = pprof_str(&d, d.samples[i].labels[j].key);

			if (k && !strcmp(k, "pid")) {
				cr_assert_eq(d.samples[i].labels[j].num, pay, "another process");
				ours = true;
			}
		}
	cr_assert(ours, "no pid label");
	pprof_doc_free(&d);
	snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/metrics", port);
	cr_assert_eq(run_capture(cmd, 0, &out, &len), 0, "%s", out);
	cr_assert(strstr(out, "\ngoscope_kube_pods 2\n"), "%s", out);
	cr_assert(strstr(out, "\ngoscope_kube_synced 1\n"), "%s", out);
	cr_assert(strstr(out, "\ngoscope_kube_list_errors_total "), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/metrics | promtool check metrics",
		 port);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s", out);
	free(out);
}

Test(kube_agent, pod_labels_on_profiles, .timeout = 180)
{
	struct standin s;
	struct gotarget pay, led;
	struct agent_thread *a = calloc(1, sizeof(*a));
	struct kube *k;
	char tmp[256], root[300], data[300], db[400], burn[512], cg[512], log[1 << 16];
	long long id = 0;
	cJSON *l;
	struct api_config api = {.listen = "127.0.0.1:0",
				 .max_capture_s = API_DEFAULT_MAX_CAPTURE_S,
				 .max_concurrent_captures = API_DEFAULT_MAX_CAPTURES};

	cr_assert_not_null(a);
	if (geteuid() != 0)
		cr_skip_test("needs root (BPF)");
	GOTARGET_BUILD_OR_SKIP(burn, "cpuburn", "1.27", "default");
	standin_start(&s, "agent-podlist.json", "token-1");
	standin_cmd(&s, NULL, 0, "down");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(root, sizeof(root), "%s/proc", tmp);
	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(db, sizeof(db), "%s/goscope.db", data);
	cr_assert_eq(mkdir(root, 0755), 0);
	/* Two Go processes "in" containers of two pods: containerd under the systemd driver, and
	 * CRI-O under cgroupfs on a cgroup v1 host. */
	start_burner(&pay, burn);
	start_burner(&led, burn);
	snprintf(cg, sizeof(cg),
		 "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a9b0c1d_2e3f_"
		 "4a5b_8c6d_7e8f9a0b1c2d.slice/cri-containerd-" ID_PAYMENTS ".scope\n");
	fake_proc_entry(root, pay.pid, cg);
	snprintf(cg, sizeof(cg),
		 "4:memory:/kubepods/burstable/pod9c0d1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f/"
		 "crio-" ID_LEDGER "\n3:pids:/kubepods/burstable/"
		 "pod9c0d1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f/crio-" ID_LEDGER "\n0::/\n");
	fake_proc_entry(root, led.pid, cg);

	k = client_open(&s);
	pthread_mutex_init(&a->mu, NULL);
	a->cfg = (struct agent_config){.data_dir = data,
				       .window_ns = 1000000000ULL,
				       .frequency = 99,
				       .block_max_overhead_pct = 1.0,
				       .node = NODE,
				       .proc_root = root,
				       .no_exec_watch = true,
				       .rescan_ms = 200,
				       .stop = &a->stop,
				       .verbose = true,
				       .log = on_log,
				       .log_arg = a,
				       .kube = k,
				       .api = &api,
				       .on_listen = on_listen};
	cr_assert_eq(pthread_create(&a->th, NULL, agent_thread_run, a), 0);

	/* The API server is down: profiles go on, without pod labels. */
	l = wait_row(db, pay.pid, false, &id, 15000);
	cr_assert_not_null(l, "no rows while the API server is down");
	cr_assert_str_eq(json_label(l, "container_id"), ID_PAYMENTS);
	cr_assert_str_eq(json_label(l, "service_name"), "cpuburn");
	cr_assert_null(json_label(l, "pod"));
	cJSON_Delete(l);

	/* Back: the next windows carry the pod's metadata. */
	standin_cmd(&s, NULL, 0, "up");
	l = wait_row(db, pay.pid, true, &id, 15000);
	cr_assert_not_null(l, "no pod labels after the API server came back");
	cr_assert_str_eq(json_label(l, "namespace"), "shop");
	cr_assert_str_eq(json_label(l, "pod"), "payments-5d8f9b7c6-k2j4h");
	cr_assert_str_eq(json_label(l, "container"), "payments");
	cr_assert_str_eq(json_label(l, "workload"), "payments");
	cr_assert_str_eq(json_label(l, "service_name"), "shop-payments", "the annotation");
	cr_assert_str_eq(json_label(l, "app"), "payments");
	cr_assert_str_eq(json_label(l, "version"), "v7");
	cr_assert_str_eq(json_label(l, "node"), NODE);
	cJSON_Delete(l);
	pprof_has(db, id, tmp, "pod", "payments-5d8f9b7c6-k2j4h");
	pprof_has(db, id, tmp, "workload", "payments");
	pprof_has(db, id, tmp, "service_name", "shop-payments");

	l = wait_row(db, led.pid, true, &id, 15000);
	cr_assert_not_null(l);
	cr_assert_str_eq(json_label(l, "namespace"), "finance");
	cr_assert_str_eq(json_label(l, "pod"), "ledger-0");
	cr_assert_str_eq(json_label(l, "workload"), "ledger");
	cr_assert_str_eq(json_label(l, "service_name"), "finance/ledger", "NAMESPACE/WORKLOAD");
	cr_assert_str_eq(json_label(l, "app"), "ledger");
	cr_assert_null(json_label(l, "version"), "a label the pod does not have");
	cJSON_Delete(l);
	api_checks(a->port, tmp, pay.pid);

	a->stop = 1;
	pthread_join(a->th, NULL);
	kube_close(k);
	pthread_mutex_lock(&a->mu);
	snprintf(log, sizeof(log), "%s", a->log);
	pthread_mutex_unlock(&a->mu);
	cr_assert_eq(a->rc, 0, "%s", a->err.msg);
	{
		char want[128];

		/* goscope.io/block: "true" on the ledger pod only. */
		snprintf(want, sizeof(want), "pid %d (cpuburn): blocking profiles", led.pid);
		cr_assert(strstr(log, want), "no blocking profiles for the annotated pod:\n%s",
			  log);
		snprintf(want, sizeof(want), "pid %d (cpuburn): blocking profiles", pay.pid);
		cr_assert_null(strstr(log, want), "%s", log);
	}
	cr_assert_eq(a->st.block_failures, 0, "%s", log);
	kill(pay.pid, SIGTERM);
	kill(led.pid, SIGTERM);
	gotarget_stop(&pay, 5000);
	gotarget_stop(&led, 5000);
	standin_stop(&s);
	free(a);
}

/* ---- a real container ----
 *
 * A real podman container (from a directory holding a static Go program: no image, no
 * registry), its container ID read from the container's real /proc/PID/cgroup as the agent
 * reads it. podman is set up here through its own CONTAINERS_CONF: the runc runtime, the
 * cgroupfs manager and no default ulimits (crun and raising RLIMIT_NOFILE/NPROC fail on this
 * machine's hybrid cgroups). Skipped where podman is not installed. */
Test(container_id, real_podman_container, .timeout = 120)
{
	char tmp[256], rootfs[400], conf[400], idle[512], cmd[2048], *out = NULL;
	char id[128] = "", pidtxt[32];
	struct gs_error err = {0};
	struct proc_labels l;
	struct goproc g = {0};
	size_t len;
	FILE *f;
	int rc;

	if (access("/usr/bin/podman", X_OK) != 0)
		cr_skip_test("podman not installed");
	if (geteuid() != 0)
		cr_skip_test("needs root");
	GOTARGET_BUILD_OR_SKIP(idle, "idle", "1.27", "static");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
	snprintf(conf, sizeof(conf), "%s/containers.conf", tmp);
	cr_assert_eq(mkdir(rootfs, 0755), 0);
	f = fopen(conf, "we");
	cr_assert_not_null(f);
	fputs("[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n"
	      "cgroup_manager = \"cgroupfs\"\n",
	      f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cp %s %s/idle", idle, rootfs);
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 0, "%s", out);
	free(out);
	/* -i: the program runs until its stdin ends (podman holds it open). */
	snprintf(cmd, sizeof(cmd), "CONTAINERS_CONF=%s podman run -d -i --rm --rootfs %s /idle",
		 conf, rootfs);
	rc = run_capture(cmd, 0, &out, &len);
	cr_assert_eq(rc, 0, "%s: %s", cmd, out);
	sscanf(out, "%127s", id);
	free(out);
	cr_assert_eq(strlen(id), 64, "container id '%s'", id);
	snprintf(cmd, sizeof(cmd), "CONTAINERS_CONF=%s podman inspect -f '{{.State.Pid}}' %s", conf,
		 id);
	rc = run_capture(cmd, 0, &out, &len);
	snprintf(pidtxt, sizeof(pidtxt), "%s", out ? out : "");
	free(out);
	g.pid = atoi(pidtxt);
	if (rc == 0 && g.pid > 0)
		rc = proc_labels_read("/proc", &g, NODE, &l, &err);
	snprintf(cmd, sizeof(cmd), "CONTAINERS_CONF=%s podman rm -f -t 0 %s", conf, id);
	run_capture(cmd, 1, &out, &len);
	free(out);
	cr_assert_gt(g.pid, 0, "podman inspect: '%s'", pidtxt);
	cr_assert_eq(rc, 0, "%s", err.msg);
	cr_assert_str_eq(l.container_id, id, "cgroup %s", l.cgroup);
}

/* ---- the real binary: flags, environment, errors ---- */

static int run_agent_cmd(const char *env, const char *args, char **out)
{
	char cmd[2048];
	size_t len;

	snprintf(cmd, sizeof(cmd), "env -u KUBERNETES_SERVICE_HOST -u NODE_NAME %s %s agent %s",
		 env, goscope_bin(), args);
	return run_capture(cmd, 1, out, &len);
}

/* In a pod (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and NODE_NAME set, as the kubelet
 * and the DaemonSet's downward API do) the agent follows the pods of its node on its own; the
 * flags' environment variables configure it. */
Test(kube_cli, in_pod_environment, .timeout = 90)
{
	struct standin s;
	struct agentrun a;
	char env[1024], tmp[256], dir[300], why[2048], *body = NULL, *log;
	const char *port;
	uint64_t t0;
	bool synced = false;

	if (geteuid() != 0)
		cr_skip_test("needs root (BPF)");
	standin_start(&s, "podlist.json", "token-1");
	port = strrchr(s.url, ':') + 1;
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	snprintf(env, sizeof(env),
		 "KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=%s NODE_NAME=" NODE
		 " GOSCOPE_K8S_SERVICE_ACCOUNT=%s GOSCOPE_K8S_POD_LABELS=app,version",
		 port, s.dir);
	cr_assert_eq(agentrun_start(&a, env, dir, "--window 1s", false, why, sizeof(why)), 0, "%s",
		     why);
	t0 = agentrun_mono_ms();
	while (!synced && agentrun_mono_ms() - t0 < WAIT_MS) {
		free(body);
		body = NULL;
		agentrun_http(&a, "/metrics", NULL, &body, NULL);
		synced = body && strstr(body, "\ngoscope_kube_synced 1\n") &&
			 strstr(body, "\ngoscope_kube_pods 3\n");
		if (!synced)
			agentrun_sleep_ms(100);
	}
	log = agentrun_log(&a);
	cr_assert(synced, "not synced: %s\nlog:\n%s", body ? body : "", log);
	free(log);
	free(body);
	cr_assert_eq(agentrun_stop(&a, SIGTERM, 5000), 0);
	standin_stop(&s);
}

Test(kube_cli, errors_and_help)
{
	char *out = NULL;

	cr_assert_eq(run_agent_cmd("", "--help", &out), 0);
	cr_assert(strstr(out, "GOSCOPE_KUBERNETES") && strstr(out, "GOSCOPE_K8S_POD_LABELS") &&
			  strstr(out, "GOSCOPE_K8S_API") &&
			  strstr(out, "GOSCOPE_K8S_SERVICE_ACCOUNT"),
		  "%s", out);
	free(out);
	cr_assert_eq(run_agent_cmd("", "--kubernetes --data-dir /nonexistent/x", &out), 2, "%s",
		     out);
	cr_assert(strstr(out, "KUBERNETES_SERVICE_HOST"), "%s", out);
	free(out);
	cr_assert_eq(run_agent_cmd("KUBERNETES_SERVICE_HOST=10.0.0.1",
				   "--kubernetes --data-dir /nonexistent/x", &out),
		     2, "%s", out);
	cr_assert(strstr(out, "NODE_NAME"), "%s", out);
	free(out);
	cr_assert_eq(run_agent_cmd("", "--k8s-api http://10.0.0.1 --data-dir /nonexistent/x", &out),
		     2, "%s", out);
	cr_assert(strstr(out, "k8s-api"), "%s", out);
	free(out);
	cr_assert_eq(run_agent_cmd("GOSCOPE_K8S_POD_LABELS=a,b,c,d,e,f,g,h,i", "", &out), 2, "%s",
		     out);
	cr_assert(strstr(out, "at most 8"), "%s", out);
	free(out);
	cr_assert_eq(run_agent_cmd("GOSCOPE_KUBERNETES=maybe", "", &out), 2, "%s", out);
	cr_assert(strstr(out, "GOSCOPE_KUBERNETES"), "%s", out);
	free(out);
}
