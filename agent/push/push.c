/* push.c — the pusher's thread (push.h): batches of undelivered windows read from the store,
 * checked against Pyroscope's default limits, sent, and marked by the answer.
 *
 * Limits (grafana/pyroscope pkg/validation/limits.go and the distributor): a profile may
 * hold at most 16,000 samples and 4 MiB uncompressed, and every request is charged to the
 * tenant's ingestion rate limiter by its uncompressed profiles plus label bytes, whose
 * default burst is 2 MiB: a request above that is refused (429) every time. So a request
 * carries at most PUSH_MAX_REQUEST_RAW of it, and a window that alone exceeds it (or the
 * sample limit) is dropped and reported instead of being sent. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "profile/gzip.h"
#include "push/push.h"
#include "push/push_backoff.h"
#include "push/push_http.h"
#include "push/push_labels.h"
#include "push/push_proto.h"
#include "store/store.h"

/* Windows per request at most. */
#define PUSH_BATCH_MAX_WINDOWS 64
/* Pyroscope's default ingestion burst (distributor.ingestion-burst-size-mb = 2, MB of
 * 1048576 bytes): a request's uncompressed profiles plus label bytes. */
#define PUSH_MAX_REQUEST_RAW (2u * 1048576u)
/* Pyroscope's default validation.max-profile-stacktrace-samples. */
#define PUSH_MAX_PROFILE_SAMPLES 16000
/* With nothing to send, the store is looked at this often (push_wake makes it sooner). */
#define PUSH_IDLE_POLL_MS 1000
/* The backlog's size and age are counted this often at most. */
#define PUSH_BACKLOG_EVERY_MS 1000
/* Messages of one kind (a refused window, the remote down) at most this often. */
#define PUSH_LOG_EVERY_MS 60000

struct window {
	int64_t id;
	char type[32];
	char *labels_json;
	struct push_series_labels labels;
	uint8_t *gz;
	size_t gzlen;
	size_t raw; /* uncompressed profile + label bytes: what Pyroscope's limiter counts */
	char uuid[PUSH_ID_LEN];
};

struct push {
	struct push_config cfg;
	char *node;
	struct store *store;
	struct push_http *http;
	void (*log)(void *arg, enum push_log_level level, const char *msg);
	void *log_arg;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, woken;
	struct push_stats st; /* under mu */
	/* The thread's own. */
	unsigned attempt;
	uint64_t rng;
	uint64_t retry_at_ms; /* monotonic; 0 = now */
	uint64_t last_refused_log_ms, last_retry_log_ms, last_backlog_ms;
	uint64_t refused_since_log, retries_since_log;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logp(struct push *p, enum push_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logp(struct push *p, enum push_log_level lvl, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!p->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->log(p->log_arg, lvl, msg);
}

static bool stopping(struct push *p)
{
	bool s;

	pthread_mutex_lock(&p->mu);
	s = p->stop;
	pthread_mutex_unlock(&p->mu);
	return s;
}

static int abort_cb(void *arg)
{
	return stopping(arg);
}

/* Waits until deadline (monotonic ms), a wake-up or stop; true when stopping. */
static bool wait_until(struct push *p, uint64_t deadline_ms, bool wakeable)
{
	bool s;

	pthread_mutex_lock(&p->mu);
	while (!p->stop && !(wakeable && p->woken) && mono_ms() < deadline_ms) {
		struct timespec ts;
		uint64_t left = deadline_ms - mono_ms();

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	if (wakeable)
		p->woken = false;
	s = p->stop;
	pthread_mutex_unlock(&p->mu);
	return s;
}

/* ---- batches ---- */

struct batch {
	struct push *p;
	struct window w[PUSH_BATCH_MAX_WINDOWS];
	size_t n;
	size_t raw;
	int64_t refused[PUSH_BATCH_MAX_WINDOWS]; /* beyond the limits, or not sendable */
	size_t nrefused;
};

static void window_free(struct window *w)
{
	free(w->labels_json);
	free(w->gz);
	push_series_labels_free(&w->labels);
	memset(w, 0, sizeof(*w));
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		window_free(&b->w[i]);
	b->n = b->raw = b->nrefused = 0;
}

static void note_refused(struct push *p, int64_t id, const char *why)
{
	uint64_t now = mono_ms();

	pthread_mutex_lock(&p->mu);
	p->st.dropped++;
	pthread_mutex_unlock(&p->mu);
	p->refused_since_log++;
	if (!p->last_refused_log_ms || now - p->last_refused_log_ms >= PUSH_LOG_EVERY_MS) {
		logp(p, PUSH_LOG_ERROR,
		     "push: window %lld dropped (%llu dropped since the last such "
		     "message): %s",
		     (long long)id, (unsigned long long)p->refused_since_log, why);
		p->last_refused_log_ms = now;
		p->refused_since_log = 0;
	}
}

/* Checks one undelivered window against the limits and adds it to the batch; 1 stops the
 * listing (the batch is full). */
static int take_window(void *arg, const struct store_pending *sw)
{
	struct batch *b = arg;
	struct window *w = &b->w[b->n];
	struct gs_error err = {0};
	uint8_t *raw = NULL;
	size_t rawlen = 0, rawcap = 0, labelbytes = 0;
	char why[400];
	long samples;
	int rc;

	if (b->n == PUSH_BATCH_MAX_WINDOWS)
		return 1;
	memset(w, 0, sizeof(*w));
	rc = gzip_inflate_append(sw->data, sw->len, PUSH_MAX_REQUEST_RAW, &raw, &rawlen, &rawcap,
				 &err);
	if (rc == -ENOMEM) {
		snprintf(why, sizeof(why),
			 "its profile exceeds %u bytes uncompressed (Pyroscope's default "
			 "ingestion burst: it would be refused)",
			 PUSH_MAX_REQUEST_RAW);
		goto refuse;
	}
	if (rc) {
		snprintf(why, sizeof(why), "unreadable profile: %s", err.msg);
		goto refuse;
	}
	samples = push_pb_count_profile_samples(raw, rawlen);
	free(raw);
	raw = NULL;
	if (samples < 0) {
		snprintf(why, sizeof(why), "malformed profile");
		goto refuse;
	}
	if (samples > PUSH_MAX_PROFILE_SAMPLES) {
		snprintf(why, sizeof(why),
			 "%ld samples, more than Pyroscope's default limit of %d per profile",
			 samples, PUSH_MAX_PROFILE_SAMPLES);
		goto refuse;
	}
	rc = push_series_labels(sw->type, sw->labels_json, &w->labels, &err);
	if (rc) {
		snprintf(why, sizeof(why), "%s", err.msg);
		goto refuse;
	}
	for (size_t i = 0; i < w->labels.n; i++)
		labelbytes += strlen(w->labels.l[i].name) + strlen(w->labels.l[i].value);
	w->raw = rawlen + labelbytes;
	if (w->raw > PUSH_MAX_REQUEST_RAW) {
		push_series_labels_free(&w->labels);
		snprintf(why, sizeof(why), "%zu bytes with its labels, more than %u", w->raw,
			 PUSH_MAX_REQUEST_RAW);
		goto refuse;
	}
	if (b->raw + w->raw > PUSH_MAX_REQUEST_RAW) {
		push_series_labels_free(&w->labels);
		return 1; /* the next request's */
	}
	w->id = sw->id;
	snprintf(w->type, sizeof(w->type), "%s", sw->type);
	w->labels_json = strdup(sw->labels_json);
	w->gz = malloc(sw->len ? sw->len : 1);
	if (!w->labels_json || !w->gz) {
		window_free(w);
		return -ENOMEM;
	}
	memcpy(w->gz, sw->data, sw->len);
	w->gzlen = sw->len;
	push_window_id(b->p->node, sw->id, sw->pid, sw->start_ticks, sw->start_ns, sw->type,
		       w->uuid);
	b->raw += w->raw;
	b->n++;
	return 0;
refuse:
	free(raw);
	if (b->nrefused < PUSH_BATCH_MAX_WINDOWS)
		b->refused[b->nrefused++] = sw->id;
	note_refused(b->p, sw->id, why);
	/* Counted as a window of the batch, so that one listing does a bounded amount. */
	return b->nrefused == PUSH_BATCH_MAX_WINDOWS ? 1 : 0;
}

/* The PushRequest of w[0..n): windows with the same type and labels are one series (their
 * samples in stored order), series in the order of their first window. */
static int encode(struct window *w, size_t n, struct push_pb_buf *out)
{
	bool done[PUSH_BATCH_MAX_WINDOWS] = {0};
	struct push_sample s[PUSH_BATCH_MAX_WINDOWS];

	push_pb_init(out);
	for (size_t i = 0; i < n; i++) {
		size_t ns = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < n; j++) {
			if (done[j] || strcmp(w[i].type, w[j].type) ||
			    strcmp(w[i].labels_json, w[j].labels_json))
				continue;
			done[j] = true;
			s[ns++] = (struct push_sample){
				.raw_profile = w[j].gz, .len = w[j].gzlen, .id = w[j].uuid};
		}
		push_pb_push_series(out, w[i].labels.l, w[i].labels.n, s, ns);
	}
	return out->ok ? 0 : -ENOMEM;
}

static bool retryable(const struct push_http_result *r)
{
	return r->status == 0 || r->status >= 500 || r->status == 408 || r->status == 429 ||
	       r->status < 200 || (r->status >= 300 && r->status < 400);
}

/* The server's message, one line, printable, for the log. */
static void server_message(const char *body, char *out, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; body[i] && n + 1 < len; i++)
		out[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
	out[n] = '\0';
}

static void mark(struct push *p, struct window *w, size_t n, enum store_push_state state)
{
	int64_t ids[PUSH_BATCH_MAX_WINDOWS];
	struct gs_error err = {0};

	for (size_t i = 0; i < n; i++)
		ids[i] = w[i].id;
	if (store_pending_mark(p->store, ids, n, state, &err) < 0)
		logp(p, PUSH_LOG_ERROR, "push: cannot mark %zu windows in the store: %s", n,
		     err.msg);
}

enum outcome { DONE, RETRY, STOPPED, FAILED };

/* Schedules the next try after a failure that may pass. */
static void schedule_retry(struct push *p, const struct push_http_result *r)
{
	uint64_t delay = push_backoff_ms(p->attempt, p->cfg.max_backoff_ms, &p->rng),
		 now = mono_ms();
	int64_t ra = r->retry_after[0] ? push_retry_after_ms(r->retry_after, time(NULL)) : -1;
	char what[320];

	if (ra > (int64_t)delay)
		delay = (uint64_t)ra;
	if (p->attempt < 32)
		p->attempt++;
	p->retry_at_ms = now + delay;
	pthread_mutex_lock(&p->mu);
	p->st.retried++;
	pthread_mutex_unlock(&p->mu);
	p->retries_since_log++;
	if (!p->last_retry_log_ms || now - p->last_retry_log_ms >= PUSH_LOG_EVERY_MS) {
		if (r->status) {
			char m[200];

			server_message(r->body, m, sizeof(m));
			snprintf(what, sizeof(what), "the remote answered %ld%s%s", r->status,
				 m[0] ? ": " : "", m);
		} else {
			snprintf(what, sizeof(what), "no answer (%s)", r->error);
		}
		logp(p, PUSH_LOG_ERROR,
		     "push: %s; retrying in %.1f s (%llu failed requests since the last such "
		     "message; the windows stay in the store)",
		     what, delay / 1000.0, (unsigned long long)p->retries_since_log);
		p->last_retry_log_ms = now;
		p->retries_since_log = 0;
	}
}

/* Sends w[0..n); a batch the remote refuses as a whole (4xx) is split in halves until the
 * refused windows are found, the rest delivered. */
static enum outcome deliver(struct push *p, struct window *w, size_t n)
{
	struct push_http_result *r;
	struct gs_error err = {0};
	struct push_pb_buf body;
	enum outcome o;
	char msg[300], why[400];

	if (n == 0)
		return DONE;
	if (encode(w, n, &body) < 0) {
		push_pb_free(&body);
		logp(p, PUSH_LOG_ERROR, "push: out of memory");
		return FAILED;
	}
	r = calloc(1, sizeof(*r));
	if (!r || push_http_post(p->http, body.data, body.len, r, &err) < 0) {
		push_pb_free(&body);
		free(r);
		logp(p, PUSH_LOG_ERROR, "push: %s", r ? err.msg : "out of memory");
		return FAILED;
	}
	pthread_mutex_lock(&p->mu);
	p->st.requests++;
	p->st.bytes_sent += body.len;
	p->st.last_status = (int)r->status;
	pthread_mutex_unlock(&p->mu);
	push_pb_free(&body);
	if (r->aborted) {
		free(r);
		return STOPPED;
	}
	if (r->status >= 200 && r->status < 300) {
		mark(p, w, n, STORE_PUSH_DELIVERED);
		pthread_mutex_lock(&p->mu);
		p->st.pushed += n;
		pthread_mutex_unlock(&p->mu);
		if (p->attempt && p->last_retry_log_ms)
			logp(p, PUSH_LOG_INFO, "push: the remote answers again");
		p->attempt = 0;
		free(r);
		return DONE;
	}
	if (retryable(r)) {
		schedule_retry(p, r);
		free(r);
		return RETRY;
	}
	if (n > 1) {
		free(r);
		o = deliver(p, w, n / 2);
		return o == DONE ? deliver(p, w + n / 2, n - n / 2) : o;
	}
	server_message(r->body, msg, sizeof(msg));
	snprintf(why, sizeof(why), "the remote answered %ld: %s", r->status, msg);
	free(r);
	mark(p, w, 1, STORE_PUSH_REFUSED);
	note_refused(p, w->id, why);
	return DONE;
}

static void refresh_backlog(struct push *p, bool force)
{
	uint64_t now = mono_ms(), rows;
	struct gs_error err = {0};
	int64_t oldest;

	if (!force && now - p->last_backlog_ms < PUSH_BACKLOG_EVERY_MS)
		return;
	p->last_backlog_ms = now;
	if (store_pending_backlog(p->store, &rows, &oldest, &err) < 0)
		return;
	pthread_mutex_lock(&p->mu);
	p->st.backlog_rows = rows;
	p->st.oldest_backlog_ns = oldest;
	pthread_mutex_unlock(&p->mu);
}

static void *push_thread(void *arg)
{
	struct push *p = arg;
	struct batch *b = calloc(1, sizeof(*b));

	if (!b) {
		logp(p, PUSH_LOG_ERROR, "push: out of memory: not pushing");
		return NULL;
	}
	b->p = p;
	while (!stopping(p)) {
		struct gs_error err = {0};
		enum outcome o;
		int rc;

		if (p->retry_at_ms && wait_until(p, p->retry_at_ms, false))
			break;
		p->retry_at_ms = 0;
		refresh_backlog(p, false);
		rc = store_pending_list(p->store, PUSH_BATCH_MAX_WINDOWS, take_window, b, &err);
		if (rc < 0 && rc != -ENOMEM)
			logp(p, PUSH_LOG_ERROR, "push: reading the store: %s", err.msg);
		if (b->nrefused) {
			/* Beyond the limits: never sent, marked so they are not read again. */
			if (store_pending_mark(p->store, b->refused, b->nrefused,
					       STORE_PUSH_REFUSED, &err) < 0)
				logp(p, PUSH_LOG_ERROR, "push: %s", err.msg);
		}
		if (b->n == 0) {
			bool refused = b->nrefused > 0;

			batch_free(b);
			if (refused)
				continue;
			refresh_backlog(p, true);
			if (wait_until(p, mono_ms() + PUSH_IDLE_POLL_MS, true))
				break;
			continue;
		}
		o = deliver(p, b->w, b->n);
		batch_free(b);
		if (o == STOPPED)
			break;
		if (o == FAILED)
			p->retry_at_ms = mono_ms() + PUSH_IDLE_POLL_MS;
	}
	batch_free(b);
	free(b);
	return NULL;
}

/* Says where windows go, without the URL's user:password if it has one. */
static void log_target(struct push *p)
{
	const char *u = p->cfg.url, *host = strstr(u, "://"), *at, *slash;

	host = host ? host + 3 : u;
	at = strchr(host, '@');
	slash = strchr(host, '/');
	if (at && (!slash || at < slash))
		logp(p, PUSH_LOG_INFO, "push: pushing to %.*s***@%s (%llu windows waiting)",
		     (int)(host - u), u, at + 1, (unsigned long long)p->st.backlog_rows);
	else
		logp(p, PUSH_LOG_INFO, "push: pushing to %s (%llu windows waiting)", u,
		     (unsigned long long)p->st.backlog_rows);
}

int push_start(const struct push_config *cfg, const char *data_dir, const char *node,
	       void (*log)(void *arg, enum push_log_level level, const char *msg), void *log_arg,
	       struct push **out, struct gs_error *err)
{
	struct store_config sc = {.dir = data_dir};
	struct push_http_config hc;
	struct push *p;
	int rc;

	*out = NULL;
	if (!cfg || !cfg->url)
		return gs_error_set(err, -EINVAL, "push: no URL");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return gs_error_set(err, -EIO, "push: libcurl initialization failed");
	p = calloc(1, sizeof(*p));
	if (!p)
		return gs_error_set(err, -ENOMEM, "push: out of memory");
	p->cfg = *cfg;
	if (!p->cfg.connect_timeout_ms)
		p->cfg.connect_timeout_ms = PUSH_DEFAULT_CONNECT_TIMEOUT_MS;
	if (!p->cfg.timeout_ms)
		p->cfg.timeout_ms = PUSH_DEFAULT_TIMEOUT_MS;
	p->node = strdup(node ? node : "");
	p->log = log;
	p->log_arg = log_arg;
	p->rng = (uint64_t)mono_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)p;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (!p->node) {
		push_stop(p);
		return gs_error_set(err, -ENOMEM, "push: out of memory");
	}
	hc = (struct push_http_config){
		.url = p->cfg.url,
		.tenant = p->cfg.tenant,
		.basic_auth_file = p->cfg.basic_auth_file,
		.bearer_token_file = p->cfg.bearer_token_file,
		.headers = p->cfg.headers,
		.nheaders = p->cfg.nheaders,
		.ca_file = p->cfg.ca_file,
		.insecure_skip_verify = p->cfg.insecure_skip_verify,
		.connect_timeout_ms = p->cfg.connect_timeout_ms,
		.timeout_ms = p->cfg.timeout_ms,
		.abort = abort_cb,
		.abort_arg = p,
	};
	rc = push_http_open(&hc, &p->http, err);
	if (!rc) {
		rc = store_open(&sc, &p->store, err);
		if (rc)
			gs_error_prefix(err, "push: store %s", data_dir);
	}
	if (!rc) {
		refresh_backlog(p, true);
		log_target(p);
		rc = -pthread_create(&p->thread, NULL, push_thread, p);
		if (rc)
			gs_error_set(err, rc, "push: cannot start its thread: %s", strerror(-rc));
		else
			p->started = true;
	}
	if (rc) {
		push_stop(p);
		return rc;
	}
	*out = p;
	return 0;
}

void push_wake(struct push *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->woken = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void push_add_lost(struct push *p, uint64_t n)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->st.lost += n;
	pthread_mutex_unlock(&p->mu);
}

void push_get_stats(struct push *p, struct push_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	pthread_mutex_unlock(&p->mu);
}

void push_stop(struct push *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->started)
		pthread_join(p->thread, NULL);
	push_http_close(p->http);
	store_close(p->store);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->node);
	free(p);
}
