/* kube.c — the Kubernetes metadata client's thread and its thread-safe lookups (kube.h).
 *
 * The client follows the API server's list-then-watch protocol for the pods of this node
 * (fieldSelector=spec.nodeName=NODE): a list gives every pod and a resourceVersion, a watch
 * from that version streams ADDED/MODIFIED/DELETED events (and BOOKMARKs that only move the
 * version on). A watch that ends cleanly (its timeoutSeconds) is started again from the last
 * version; a 410 Gone (the version is older than the server's history) lists again at once;
 * any other failure (network, TLS, HTTP status, a malformed or oversized event) lists again
 * after a backoff that doubles up to a cap. What was last known stays readable the whole time,
 * so profiles keep their pod labels through an API server outage, and get them once it is back
 * when they had none. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube.h"
#include "kube/kube_impl.h"
#include "procs/labels.h"

#define BACKOFF_MIN_MS 500u
/* The watch's timeoutSeconds: the server ends it then and the client starts a new one (also
 * where a rotated token takes effect for the stream). */
#define DEFAULT_WATCH_TIMEOUT_S 300u
/* A list of a node's pods is a few MiB at most (110 pods of tens of KiB each). */
#define LIST_MAX_BYTES (64u << 20)
/* One watch event is one pod object. */
#define EVENT_MAX_BYTES (4u << 20)
/* The list request as a whole. */
#define LIST_TIMEOUT_S 60L
/* A watch that ends cleanly sooner than this is not started again at once. */
#define WATCH_MIN_MS 1000u
#define URL_MAX 2048
/* The service account directory's path (the token and CA paths are made from it). */
#define SA_DIR_MAX 480
#define HTTP_OK 200
#define HTTP_UNAUTHORIZED 401
#define HTTP_GONE 410
/* kube_watch's result for a 410 Gone. */
#define WATCH_GONE 1

_Static_assert(KUBE_MAX_POD_LABELS == PROC_LABELS_K8S_MAX, "pod label count");
_Static_assert(KUBE_LABEL_KEY_MAX == PROC_LABELS_K8S_KEY_MAX, "pod label key size");
_Static_assert(KUBE_LABEL_VALUE_MAX == PROC_LABELS_K8S_VALUE_MAX, "pod label value size");

struct kube {
	char api[512], node[256], ca_file[600];
	char label_names[KUBE_MAX_POD_LABELS][KUBE_LABEL_KEY_MAX];
	const char *label_ptrs[KUBE_MAX_POD_LABELS];
	size_t nlabels;
	unsigned max_pods, backoff_max_ms, watch_timeout_s;

	pthread_t thread;
	bool started;
	volatile int stop;
	pthread_mutex_t mu; /* table, st, stop's wakeup */
	pthread_cond_t cv;
	struct kube_table table;
	struct kube_stats st;

	/* The thread's own state. */
	struct kube_token token;
	bool token_bad; /* a 401: read the token again before the next request */
	char rv[64];	/* the resourceVersion to watch from */
	struct kube_lines lines;
	char *body; /* the list's body */
	size_t body_len, body_cap;
	struct gs_error last_err; /* why on_event or the line splitter cut a watch */
	int watch_cut;		  /* what they returned then */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps ms unless told to stop. */
static void nap(struct kube *k, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->mu);
	while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&k->mu);
}

/* Node names are DNS subdomains; anything else is percent-encoded all the same. */
static void url_escape(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* The request with the current token (read again when its file changed or after a 401). */
static int request(struct kube *k, const char *url, long timeout_s,
		   int (*on_data)(void *arg, const char *data, size_t n), long *status,
		   struct gs_error *err)
{
	struct kube_get g = {.url = url,
			     .ca_file = k->ca_file,
			     .timeout_s = timeout_s,
			     .stop = &k->stop,
			     .on_data = on_data,
			     .arg = k};
	uint64_t before = k->token.reloads;
	int rc = kube_token_refresh(&k->token, k->token_bad, err);

	if (k->token.reloads != before) {
		pthread_mutex_lock(&k->mu);
		k->st.token_reloads++;
		pthread_mutex_unlock(&k->mu);
	}
	if (rc < 0)
		return rc;
	k->token_bad = false;
	g.token = k->token.value;
	rc = kube_http_get(&g, status, err);
	if (rc == 0 && *status == HTTP_UNAUTHORIZED)
		k->token_bad = true;
	return rc;
}

static int collect_body(void *arg, const char *data, size_t n)
{
	struct kube *k = arg;

	if (k->body_len + n > LIST_MAX_BYTES)
		return 1;
	if (k->body_len + n + 1 > k->body_cap) {
		size_t cap = k->body_cap ? k->body_cap : 65536;
		char *b;

		while (cap < k->body_len + n + 1)
			cap *= 2;
		b = realloc(k->body, cap);
		if (!b)
			return 1;
		k->body = b;
		k->body_cap = cap;
	}
	memcpy(k->body + k->body_len, data, n);
	k->body_len += n;
	return 0;
}

static void pods_url(struct kube *k, char *url, size_t len, bool watch)
{
	char sel[600];

	url_escape(k->node, sel, sizeof(sel));
	if (!watch)
		snprintf(url, len, "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", k->api, sel);
	else
		snprintf(url, len,
			 "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&watch=1&"
			 "allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u",
			 k->api, sel, k->rv, k->watch_timeout_s);
}

/* Lists the node's pods and replaces the table with them. 0, WATCH_GONE, -errno. */
static int kube_list(struct kube *k, struct gs_error *err)
{
	struct kube_table fresh = {.max = k->max_pods}, old;
	const cJSON *items, *item, *rv;
	uint64_t dropped = 0;
	char url[URL_MAX];
	cJSON *doc;
	long status;
	int rc;

	pods_url(k, url, sizeof(url), false);
	k->body_len = 0;
	rc = request(k, url, LIST_TIMEOUT_S, collect_body, &status, err);
	if (rc < 0)
		return gs_error_prefix(err, "list pods");
	if (status == HTTP_GONE)
		return WATCH_GONE;
	if (status != HTTP_OK)
		return gs_error_set(err, -EIO, "list pods: HTTP status %ld", status);
	doc = cJSON_ParseWithLength(k->body ? k->body : "", k->body_len);
	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	rv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "metadata"),
					      "resourceVersion");
	if (!cJSON_IsArray(items) || !cJSON_IsString(rv) || !rv->valuestring[0] ||
	    strlen(rv->valuestring) >= sizeof(k->rv)) {
		cJSON_Delete(doc);
		return gs_error_set(err, -EPROTO, "list pods: not a PodList");
	}
	cJSON_ArrayForEach(item, items)
	{
		struct kube_pod p;

		if (kube_pod_parse(item, k->label_ptrs, k->nlabels, &p, err) < 0) {
			kube_pod_clear(&p);
			continue;
		}
		if (kube_table_put(&fresh, &p) == -ENOSPC)
			dropped++;
	}
	snprintf(k->rv, sizeof(k->rv), "%s", rv->valuestring);
	cJSON_Delete(doc);
	/* Lists are rare (start, 410, errors): their buffer is not kept between them. */
	free(k->body);
	k->body = NULL;
	k->body_len = k->body_cap = 0;
	pthread_mutex_lock(&k->mu);
	old = k->table;
	k->table = fresh;
	k->st.pods = fresh.n;
	k->st.pods_dropped += dropped;
	pthread_mutex_unlock(&k->mu);
	kube_table_free(&old);
	gs_error_clear(err);
	return 0;
}

/* One watch event line: {"type": ..., "object": {...}}. 0 applied (or ignored), WATCH_GONE,
 * -EPROTO for a line that is not an event. */
static int on_event(void *arg, char *line, size_t len)
{
	struct kube *k = arg;
	cJSON *ev = cJSON_ParseWithLength(line, len);
	const char *type = NULL;
	const cJSON *obj, *t, *code, *rv;
	struct kube_pod p;
	int rc = 0, put = 0;

	t = cJSON_GetObjectItemCaseSensitive(ev, "type");
	obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	if (cJSON_IsString(t))
		type = t->valuestring;
	if (!type || !cJSON_IsObject(obj)) {
		cJSON_Delete(ev);
		gs_error_set(&k->last_err, -EPROTO, "watch: not a watch event");
		return -EPROTO;
	}
	if (!strcmp(type, "ERROR")) {
		/* The object is a Status; 410 Gone: the version is too old, list again. */
		code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		rc = cJSON_IsNumber(code) && code->valueint == HTTP_GONE ? WATCH_GONE : -EIO;
		if (rc < 0)
			gs_error_set(&k->last_err, -EIO, "watch: error event (code %d)",
				     cJSON_IsNumber(code) ? code->valueint : 0);
		cJSON_Delete(ev);
		return rc;
	}
	rv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
					      "resourceVersion");
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
		if (kube_pod_parse(obj, k->label_ptrs, k->nlabels, &p, &k->last_err) < 0) {
			kube_pod_clear(&p);
			cJSON_Delete(ev);
			return -EPROTO;
		}
		pthread_mutex_lock(&k->mu);
		if (!strcmp(type, "DELETED"))
			kube_table_del(&k->table, p.uid);
		else
			put = kube_table_put(&k->table, &p);
		if (put == -ENOSPC)
			k->st.pods_dropped++;
		k->st.pods = k->table.n;
		k->st.events++;
		pthread_mutex_unlock(&k->mu);
		kube_pod_clear(&p);
	}
	/* Every event (BOOKMARK included) moves the version on. */
	if (cJSON_IsString(rv) && rv->valuestring[0] && strlen(rv->valuestring) < sizeof(k->rv))
		snprintf(k->rv, sizeof(k->rv), "%s", rv->valuestring);
	cJSON_Delete(ev);
	return 0;
}

static int watch_data(void *arg, const char *data, size_t n)
{
	struct kube *k = arg;
	int rc = kube_lines_feed(&k->lines, data, n, on_event, k);

	if (rc == -E2BIG)
		gs_error_set(&k->last_err, -E2BIG, "watch: an event beyond %u bytes",
			     EVENT_MAX_BYTES);
	if (rc) {
		k->watch_cut = rc; /* for kube_watch: the transfer is cut */
		return 1;
	}
	return 0;
}

/* Watches from k->rv until the server ends the watch (0), a 410 Gone (WATCH_GONE) or a
 * failure (-errno). */
static int kube_watch(struct kube *k, struct gs_error *err)
{
	char url[URL_MAX];
	long status;
	int rc;

	pods_url(k, url, sizeof(url), true);
	kube_lines_reset(&k->lines);
	gs_error_clear(&k->last_err);
	k->watch_cut = 0;
	rc = request(k, url, (long)k->watch_timeout_s * 2, watch_data, &status, err);
	if (rc == -EPROTO && k->watch_cut == WATCH_GONE)
		return WATCH_GONE;
	if (rc == -EPROTO && k->last_err.code) {
		*err = k->last_err;
		return err->code;
	}
	if (rc < 0)
		return gs_error_prefix(err, "watch pods");
	if (status == HTTP_GONE)
		return WATCH_GONE;
	if (status != HTTP_OK)
		return gs_error_set(err, -EIO, "watch pods: HTTP status %ld", status);
	return 0;
}

static void set_synced(struct kube *k, bool synced)
{
	pthread_mutex_lock(&k->mu);
	k->st.synced = synced;
	pthread_mutex_unlock(&k->mu);
}

static void *run(void *arg)
{
	struct kube *k = arg;
	unsigned backoff = BACKOFF_MIN_MS;
	bool need_list = true, listed = false;
	struct gs_error err = {0};
	int rc;

	while (!k->stop) {
		uint64_t t0;

		if (need_list) {
			rc = kube_list(k, &err);
			pthread_mutex_lock(&k->mu);
			if (rc == 0) {
				k->st.lists++;
				if (listed)
					k->st.relists++;
				k->st.synced = true;
			} else if (rc == WATCH_GONE) {
				k->st.gone++;
			} else if (!k->stop) {
				k->st.list_errors++;
				k->st.synced = false;
			}
			pthread_mutex_unlock(&k->mu);
			if (rc != 0) {
				nap(k, backoff);
				backoff = backoff * 2 > k->backoff_max_ms ? k->backoff_max_ms
									  : backoff * 2;
				continue;
			}
			listed = true;
			need_list = false;
			backoff = BACKOFF_MIN_MS;
		}
		t0 = mono_ms();
		rc = kube_watch(k, &err);
		if (k->stop)
			break;
		if (rc == WATCH_GONE) {
			pthread_mutex_lock(&k->mu);
			k->st.gone++;
			pthread_mutex_unlock(&k->mu);
			need_list = true;
		} else if (rc < 0) {
			pthread_mutex_lock(&k->mu);
			k->st.watch_errors++;
			k->st.synced = false;
			pthread_mutex_unlock(&k->mu);
			need_list = true;
			nap(k, backoff);
			backoff = backoff * 2 > k->backoff_max_ms ? k->backoff_max_ms : backoff * 2;
		} else if (mono_ms() - t0 < WATCH_MIN_MS) {
			nap(k, BACKOFF_MIN_MS);
		}
	}
	set_synced(k, false);
	return NULL;
}

int kube_open(const struct kube_config *cfg, struct kube **out, struct gs_error *err)
{
	const char *sa = cfg->sa_dir ? cfg->sa_dir : KUBE_DEFAULT_SA_DIR;
	struct kube *k;
	int rc;

	*out = NULL;
	if (!cfg->api_url || strncmp(cfg->api_url, "https://", 8) != 0 ||
	    strlen(cfg->api_url) >= sizeof(k->api))
		return gs_error_set(err, -EINVAL,
				    "Kubernetes API server: expected https://HOST:PORT");
	if (!cfg->node || !cfg->node[0] || strlen(cfg->node) >= sizeof(k->node))
		return gs_error_set(err, -EINVAL, "Kubernetes: no node name (set NODE_NAME)");
	if (cfg->npod_labels > KUBE_MAX_POD_LABELS)
		return gs_error_set(err, -EINVAL, "at most %d pod labels", KUBE_MAX_POD_LABELS);
	if (strlen(sa) > SA_DIR_MAX)
		return gs_error_set(err, -EINVAL, "service account directory path too long");
	rc = kube_http_init(err);
	if (rc < 0)
		return rc;
	k = calloc(1, sizeof(*k));
	if (!k)
		return gs_error_set(err, -ENOMEM, "out of memory");
	snprintf(k->api, sizeof(k->api), "%s", cfg->api_url);
	while (strlen(k->api) > 8 && k->api[strlen(k->api) - 1] == '/')
		k->api[strlen(k->api) - 1] = '\0';
	snprintf(k->node, sizeof(k->node), "%s", cfg->node);
	snprintf(k->ca_file, sizeof(k->ca_file), "%s/ca.crt", sa);
	snprintf(k->token.path, sizeof(k->token.path), "%s/token", sa);
	for (size_t i = 0; i < cfg->npod_labels; i++) {
		if (!cfg->pod_labels[i][0] || strlen(cfg->pod_labels[i]) >= KUBE_LABEL_KEY_MAX) {
			free(k);
			return gs_error_set(err, -EINVAL, "bad pod label name '%s'",
					    cfg->pod_labels[i]);
		}
		snprintf(k->label_names[i], KUBE_LABEL_KEY_MAX, "%s", cfg->pod_labels[i]);
		k->label_ptrs[i] = k->label_names[i];
	}
	k->nlabels = cfg->npod_labels;
	k->max_pods = cfg->max_pods ? cfg->max_pods : KUBE_DEFAULT_MAX_PODS;
	k->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : KUBE_DEFAULT_BACKOFF_MAX_MS;
	if (k->backoff_max_ms < BACKOFF_MIN_MS)
		k->backoff_max_ms = BACKOFF_MIN_MS;
	k->watch_timeout_s = cfg->watch_timeout_s ? cfg->watch_timeout_s : DEFAULT_WATCH_TIMEOUT_S;
	k->table.max = k->max_pods;
	k->lines.max = EVENT_MAX_BYTES;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	rc = pthread_create(&k->thread, NULL, run, k);
	if (rc) {
		kube_close(k);
		return gs_error_set(err, -rc, "Kubernetes client thread: %s", strerror(rc));
	}
	k->started = true;
	*out = k;
	return 0;
}

void kube_close(struct kube *k)
{
	if (!k)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->mu);
		k->stop = 1;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->thread, NULL);
	}
	kube_table_free(&k->table);
	kube_lines_free(&k->lines);
	free(k->body);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	explicit_bzero(k->token.value, sizeof(k->token.value));
	free(k);
}

int kube_lookup(struct kube *k, const char *container_id, struct kube_meta *out)
{
	int found;

	if (!k || !container_id || !container_id[0])
		return 0;
	pthread_mutex_lock(&k->mu);
	found = kube_table_find(&k->table, container_id, out);
	pthread_mutex_unlock(&k->mu);
	return found;
}

void kube_get_stats(struct kube *k, struct kube_stats *out)
{
	pthread_mutex_lock(&k->mu);
	*out = k->st;
	pthread_mutex_unlock(&k->mu);
}

/* Sets dst to src (bounded), noting a change. */
static void set_field(char *dst, size_t len, const char *src, bool *changed)
{
	if (strncmp(dst, src, len - 1) == 0)
		return;
	snprintf(dst, len, "%s", src);
	*changed = true;
}

bool kube_label_proc(struct kube *k, struct proc_labels *l)
{
	struct kube_meta m;
	bool changed = false;
	size_t n = 0;
	char svc[sizeof(l->service)];

	if (!k || !kube_lookup(k, l->container_id, &m))
		return false;
	set_field(l->k8s_namespace, sizeof(l->k8s_namespace), m.ns, &changed);
	set_field(l->k8s_pod, sizeof(l->k8s_pod), m.pod, &changed);
	set_field(l->k8s_container, sizeof(l->k8s_container), m.container, &changed);
	set_field(l->k8s_workload, sizeof(l->k8s_workload), m.workload, &changed);
	for (size_t i = 0; i < k->nlabels; i++) {
		if (!m.label_values[i][0])
			continue;
		set_field(l->k8s_labels[n].key, sizeof(l->k8s_labels[n].key), k->label_names[i],
			  &changed);
		set_field(l->k8s_labels[n].value, sizeof(l->k8s_labels[n].value), m.label_values[i],
			  &changed);
		n++;
	}
	if (n != l->k8s_nlabels) {
		l->k8s_nlabels = n;
		changed = true;
	}
	if (m.block != l->k8s_block) {
		l->k8s_block = m.block;
		changed = true;
	}
	if (l->service_from == SERVICE_FROM_EXE || l->service_from == SERVICE_FROM_KUBE) {
		if (m.service[0])
			snprintf(svc, sizeof(svc), "%s", m.service);
		else
			snprintf(svc, sizeof(svc), "%.63s/%.190s", m.ns, m.workload);
		set_field(l->service, sizeof(l->service), svc, &changed);
		l->service_from = SERVICE_FROM_KUBE;
	}
	return changed;
}
