/* server.c — the HTTP side of the agent's API: libmicrohttpd set up with bounded resources,
 * authentication, routing, error answers, and the queue of requests for the agent's thread
 * (api.h). Stored profiles are answered here (agent/api/stored.c); metrics are rendered here
 * from the agent's snapshot (agent/api/metrics.c).
 *
 * libmicrohttpd runs a small pool of threads polling with epoll. A request that needs the
 * agent is suspended (MHD_suspend_connection) until the agent answers: suspended connections
 * neither time out nor use a thread, so a 300 s capture costs one queue entry. The agent
 * watches the client's socket of a running capture and ends the capture when the client
 * hangs up. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "api/api_impl.h"

/* Threads polling connections (captures wait suspended, not in a thread; a stored-profile
 * merge holds one while it runs, hence more than one). */
#define API_THREADS 2
/* Connections at once (suspended ones count). libmicrohttpd divides the limit between the
 * pool's threads, and one thread may accept most of a burst: 256 each. */
#define API_MAX_CONNECTIONS 512
/* A client that sends nothing or reads nothing for this long is dropped. */
#define API_IDLE_TIMEOUT_S 10
/* Memory for one connection's request line and headers (larger: 431/414 by MHD). */
#define API_CONN_MEMORY (32 * 1024)
#define API_LISTEN_BACKLOG 512
/* How long api_stop waits for resumed connections to be answered before stopping. */
#define API_STOP_WAIT_MS 2000
/* The largest symbolz request read (pprof sends "0x<addr>+..." for each location it could
 * not name): a longer one closes the connection. */
#define API_SYMBOLZ_MAX_BODY (16u << 20)

enum conn_state {
	CONN_NEW,
	CONN_QUEUED,  /* suspended, with the agent */
	CONN_DONE,    /* answered */
	CONN_SYMBOLZ, /* a symbolz POST: its body being read (and dropped) */
};

/* One request's state, from the URI log callback to the completion callback. */
struct api_conn {
	char uri[API_MAX_URI + 1];
	bool uri_too_long;
	enum conn_state state;
	bool capture_slot; /* holds one of max_concurrent_captures */
	bool merge_slot;
	uint64_t capture_end_ns; /* monotonic, for Retry-After */
	size_t body_read;	 /* CONN_SYMBOLZ */
	struct api_request req;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void api_log(struct api *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!a->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->cfg.log(a->cfg.log_arg, msg);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char msg[512];
	size_t n;

	if (!a->cfg.log)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	a->cfg.log(a->cfg.log_arg, msg);
}

/* ---- answers ---- */

enum MHD_Result api_respond(struct MHD_Connection *conn, unsigned status, const char *type,
			    void *body, size_t len, bool must_free, const char *const *headers)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (!r) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	if (type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(r, headers[0], headers[1]);
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

enum MHD_Result api_error(struct MHD_Connection *conn, unsigned status, const char *msg,
			  const char *const *headers)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	if (!o || !cJSON_AddStringToObject(o, "error", msg) ||
	    !(text = cJSON_PrintUnformatted(o))) {
		cJSON_Delete(o);
		return api_respond(conn, status, "application/json",
				   (void *)"{\"error\":\"out of memory\"}", 25, false, headers);
	}
	cJSON_Delete(o);
	return api_respond(conn, status, "application/json", text, strlen(text), true, headers);
}

/* ---- the agent's queue ---- */

/* Suspends conn first (the agent may answer before this returns), then queues. */
static enum MHD_Result submit(struct api *a, struct MHD_Connection *conn, struct api_conn *c)
{
	uint64_t one = 1;

	c->state = CONN_QUEUED;
	c->req.conn = conn;
	c->req.next = NULL;
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&a->mu);
	a->suspended++;
	if (a->stopping) {
		pthread_mutex_unlock(&a->mu);
		c->req.status = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(c->req.error, sizeof(c->req.error), "the agent is stopping");
		api_done(a, &c->req);
		return MHD_YES;
	}
	if (a->tail)
		a->tail->next = &c->req;
	else
		a->head = &c->req;
	a->tail = &c->req;
	if (write(a->efd, &one, sizeof(one)) < 0) {
		/* The counter is saturated only if nobody reads it: the agent is not polling,
		 * the request still waits in the queue for its next pass. */
	}
	pthread_mutex_unlock(&a->mu);
	return MHD_YES;
}

struct api_request *api_take(struct api *a)
{
	struct api_request *r;
	uint64_t v;

	pthread_mutex_lock(&a->mu);
	if (read(a->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the queue is checked anyway */
	}
	r = a->head;
	if (r) {
		a->head = r->next;
		if (!a->head)
			a->tail = NULL;
		r->next = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}

void api_done(struct api *a, struct api_request *r)
{
	(void)a;
	MHD_resume_connection(r->conn);
}

int api_fd(const struct api *a)
{
	return a->efd;
}

unsigned api_port(const struct api *a)
{
	return a->port;
}

/* The answer of a request the agent handed back. */
static enum MHD_Result answer_queued(struct api *a, struct MHD_Connection *conn, struct api_conn *c)
{
	struct api_request *r = &c->req;
	enum MHD_Result ok;
	char secs[32];
	const char *capped[] = {"X-Goscope-Capture-Capped", secs, NULL};

	pthread_mutex_lock(&a->mu);
	a->suspended--;
	pthread_mutex_unlock(&a->mu);
	c->state = CONN_DONE;
	if (r->kind == API_REQ_METRICS && r->status == MHD_HTTP_OK)
		return api_metrics_answer(a, conn, &r->metrics);
	if (r->status >= 400 || !r->status) {
		const char *retry[] = {"Retry-After", "1", NULL};

		return api_error(conn,
				 r->status ? (unsigned)r->status : MHD_HTTP_INTERNAL_SERVER_ERROR,
				 r->error[0] ? r->error : "internal error",
				 r->status == MHD_HTTP_SERVICE_UNAVAILABLE ||
						 r->status == MHD_HTTP_TOO_MANY_REQUESTS
					 ? retry
					 : NULL);
	}
	snprintf(secs, sizeof(secs), "%llu",
		 (unsigned long long)(r->capture.duration_ns / 1000000000ULL));
	if (r->kind == API_REQ_CAPTURE) {
		const char *hdrs[] = {"Content-Disposition", "attachment; filename=\"profile\"",
				      r->capture.capped ? capped[0] : NULL, secs, NULL};

		ok = api_respond(conn, MHD_HTTP_OK, r->content_type, r->body, r->body_len, true,
				 hdrs);
	} else {
		ok = api_respond(conn, (unsigned)r->status, r->content_type, r->body, r->body_len,
				 true, NULL);
	}
	r->body = NULL; /* MHD owns it now */
	return ok;
}

/* ---- captures: the concurrency limit ---- */

static bool take_capture_slot(struct api *a, struct api_conn *c, unsigned *retry_s)
{
	bool ok;

	pthread_mutex_lock(&a->mu);
	ok = a->captures_running < a->cfg.max_concurrent_captures;
	if (ok) {
		a->captures_running++;
		c->capture_slot = true;
		c->capture_end_ns = mono_ns() + c->req.capture.duration_ns;
		for (size_t i = 0; i < API_MAX_CAPTURE_ENDS; i++) {
			if (!a->capture_ends[i]) {
				a->capture_ends[i] = c->capture_end_ns;
				break;
			}
		}
	} else {
		uint64_t now = mono_ns(), first = 0;

		a->captures_rejected++;
		for (size_t i = 0; i < API_MAX_CAPTURE_ENDS; i++)
			if (a->capture_ends[i] && (!first || a->capture_ends[i] < first))
				first = a->capture_ends[i];
		*retry_s =
			first > now ? (unsigned)((first - now + 999999999ULL) / 1000000000ULL) : 1;
	}
	pthread_mutex_unlock(&a->mu);
	return ok;
}

static void release_slots(struct api *a, struct api_conn *c)
{
	pthread_mutex_lock(&a->mu);
	if (c->capture_slot) {
		a->captures_running--;
		for (size_t i = 0; i < API_MAX_CAPTURE_ENDS; i++) {
			if (a->capture_ends[i] == c->capture_end_ns) {
				a->capture_ends[i] = 0;
				break;
			}
		}
		c->capture_slot = false;
	}
	if (c->merge_slot) {
		a->merges_running--;
		c->merge_slot = false;
	}
	pthread_mutex_unlock(&a->mu);
}

bool api_take_merge_slot(struct api *a, struct api_conn *c)
{
	bool ok;

	pthread_mutex_lock(&a->mu);
	ok = a->merges_running < API_MAX_MERGES;
	if (ok) {
		a->merges_running++;
		c->merge_slot = true;
	} else {
		a->captures_rejected++;
	}
	pthread_mutex_unlock(&a->mu);
	return ok;
}

static enum MHD_Result start_capture(struct api *a, struct MHD_Connection *conn, struct api_conn *c,
				     const struct api_query *q, enum api_capture_kind kind)
{
	const union MHD_ConnectionInfo *ci;
	struct gs_error err = {0};
	unsigned retry = 1;
	char rs[16];
	const char *hdrs[] = {"Retry-After", rs, NULL};

	if (api_capture_parse(q, kind, a->cfg.max_capture_s, &c->req.capture, &err) < 0)
		return api_error(conn, MHD_HTTP_BAD_REQUEST, err.msg, NULL);
	if (!take_capture_slot(a, c, &retry)) {
		char msg[128];

		snprintf(rs, sizeof(rs), "%u", retry);
		snprintf(msg, sizeof(msg),
			 "%u captures are running already (--max-concurrent-captures)",
			 a->cfg.max_concurrent_captures);
		return api_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, msg, hdrs);
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	c->req.client_fd = ci ? ci->connect_fd : -1;
	c->req.kind = API_REQ_CAPTURE;
	return submit(a, conn, c);
}

/* ---- routing ---- */

/* Compares without leaking where the first difference is (the token's length aside). */
static bool same_secret(const char *got, size_t got_len, const char *want)
{
	size_t want_len = strlen(want);
	volatile unsigned char diff = got_len != want_len;

	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned char)(i < got_len ? got[i] : 0) ^ (unsigned char)want[i];
	return diff == 0;
}

static bool authorized(struct api *a, struct MHD_Connection *conn)
{
	const char *h;

	if (!a->cfg.token)
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	return same_secret(h, strlen(h), a->cfg.token);
}

enum route {
	R_NONE,
	R_HEALTHZ,
	R_METRICS,
	R_PROCESSES,
	R_PROFILES,
	R_MERGE,
	R_CPU,
	R_BLOCK,
	R_HEAP,
	R_SYMBOLZ,
};

static const struct {
	const char *path;
	enum route r;
} routes[] = {
	{"/healthz", R_HEALTHZ},
	{"/metrics", R_METRICS},
	{"/api/processes", R_PROCESSES},
	{"/api/profiles", R_PROFILES},
	{"/api/profiles/merge", R_MERGE},
	{"/pprof/cpu", R_CPU},
	{"/pprof/block", R_BLOCK},
	{"/pprof/heap", R_HEAP},
	/* where `go tool pprof` looks for symbolz next to the profile URLs above */
	{"/pprof/symbolz", R_SYMBOLZ},
	{"/api/profiles/symbolz", R_SYMBOLZ},
	{"/api/symbolz", R_SYMBOLZ},
};

static enum route route_of(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(path, routes[i].path))
			return routes[i].r;
	return R_NONE;
}

/* `go tool pprof URL` asks the server to name the addresses of locations it got without
 * function names (in a mapping not marked as having them), at <URL's path>/../symbolz
 * (net/http/pprof's /debug/pprof/symbol), and gives up the whole fetch when that fails:
 * a 404 would make a profile with one unnamed frame unreadable. goscope names every frame it
 * can when it builds a profile; what is left (memory no file backs, a binary gone before
 * its samples were read) it cannot name later either. So it answers as net/http/pprof does
 * for addresses it does not know: a GET says no symbols are available ("num_symbols: 0"),
 * a POST's body is read and answered with no lines (the frames stay unnamed). */
static enum MHD_Result symbolz_answer(struct MHD_Connection *conn, struct api_conn *c,
				      const char *method)
{
	static const char *const allow_hdrs[] = {"Allow", "GET, HEAD, POST", NULL};

	if (!strcmp(method, MHD_HTTP_METHOD_POST)) {
		c->state = CONN_SYMBOLZ; /* answered once the body is read (on_request) */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return api_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST",
				 allow_hdrs);
	return api_respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
			   (void *)"num_symbols: 0\n", 15, false, NULL);
}

/* The next part of a symbolz POST's body (dropped), or its end (answered). */
static enum MHD_Result symbolz_body(struct MHD_Connection *conn, struct api_conn *c,
				    size_t *upload_data_size)
{
	if (*upload_data_size) {
		c->body_read += *upload_data_size;
		*upload_data_size = 0;
		return c->body_read > API_SYMBOLZ_MAX_BODY ? MHD_NO : MHD_YES;
	}
	c->state = CONN_DONE;
	return api_respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", (void *)"", 0, false,
			   NULL);
}

static enum MHD_Result handle_new(struct api *a, struct MHD_Connection *conn, struct api_conn *c,
				  const char *method)
{
	static const char *const auth_hdrs[] = {"WWW-Authenticate", "Bearer realm=\"goscope\"",
						NULL};
	static const char *const allow_hdrs[] = {"Allow", "GET, HEAD", NULL};
	struct api_query *q;
	struct gs_error err = {0};
	enum MHD_Result ok;
	enum route r;

	if (!authorized(a, conn))
		return api_error(conn, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token",
				 auth_hdrs);
	if (c->uri_too_long)
		return api_error(conn, MHD_HTTP_URI_TOO_LONG, "request target too long", NULL);
	q = malloc(sizeof(*q));
	if (!q)
		return api_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
	if (api_query_parse(c->uri, strlen(c->uri), q, &err) < 0) {
		ok = api_error(conn,
			       err.code == -E2BIG ? MHD_HTTP_URI_TOO_LONG : MHD_HTTP_BAD_REQUEST,
			       err.msg, NULL);
		goto out;
	}
	r = route_of(q->path);
	if (r == R_NONE) {
		ok = api_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
		goto out;
	}
	if (r == R_SYMBOLZ) {
		ok = q->nparams ? api_error(conn, MHD_HTTP_BAD_REQUEST,
					    "this endpoint takes no parameters", NULL)
				: symbolz_answer(conn, c, method);
		goto out;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		ok = api_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET", allow_hdrs);
		goto out;
	}
	if ((r == R_HEALTHZ || r == R_METRICS || r == R_PROCESSES) && q->nparams) {
		ok = api_error(conn, MHD_HTTP_BAD_REQUEST, "this endpoint takes no parameters",
			       NULL);
		goto out;
	}
	switch (r) {
	case R_HEALTHZ:
		c->req.kind = API_REQ_HEALTH;
		ok = submit(a, conn, c);
		break;
	case R_METRICS:
		c->req.kind = API_REQ_METRICS;
		ok = submit(a, conn, c);
		break;
	case R_PROCESSES:
		c->req.kind = API_REQ_PROCESSES;
		ok = submit(a, conn, c);
		break;
	case R_PROFILES:
	case R_MERGE:
		ok = api_stored_answer(a, conn, c, q, r == R_MERGE);
		break;
	case R_CPU:
		ok = start_capture(a, conn, c, q, API_CAPTURE_CPU);
		break;
	case R_BLOCK:
		ok = start_capture(a, conn, c, q, API_CAPTURE_BLOCK);
		break;
	case R_HEAP:
		ok = start_capture(a, conn, c, q, API_CAPTURE_HEAP);
		break;
	default:
		ok = api_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL);
	}
out:
	free(q);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct api *a = cls;
	struct api_conn *c = *req_cls;

	(void)url;
	(void)version;
	(void)upload_data;
	if (!c)
		return MHD_NO;
	switch (c->state) {
	case CONN_NEW:
		*upload_data_size = 0; /* nothing of a body comes with the first call */
		return handle_new(a, conn, c, method);
	case CONN_QUEUED:
		return answer_queued(a, conn, c);
	case CONN_SYMBOLZ:
		return symbolz_body(conn, c, upload_data_size);
	default:
		*upload_data_size = 0;
		return MHD_YES;
	}
}

/* Called with the raw request target before anything else: the per-request state starts
 * here, so the query string is parsed from the bytes the client sent. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct api_conn *c = calloc(1, sizeof(*c));
	size_t n;

	(void)cls;
	(void)conn;
	if (!c)
		return NULL;
	c->req.client_fd = -1;
	n = strnlen(uri, API_MAX_URI + 1);
	if (n > API_MAX_URI)
		c->uri_too_long = true;
	else
		memcpy(c->uri, uri, n + 1);
	return c;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api *a = cls;
	struct api_conn *c = *req_cls;

	(void)conn;
	(void)toe;
	if (!c)
		return;
	release_slots(a, c);
	free(c->req.body);
	free(c);
	*req_cls = NULL;
}

/* ---- start and stop ---- */

bool api_listen_is_loopback(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (api_parse_listen(addr, &ss, &len, NULL) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

int api_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		     struct gs_error *err)
{
	char host[128];
	const char *colon, *h = addr, *port;
	size_t hl;
	char *e;
	unsigned long p;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			return gs_error_set(err, -EINVAL, "listen address '%s': [IPv6]:PORT", addr);
		h = addr + 1;
		hl = (size_t)(rb - h);
		port = rb + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return gs_error_set(err, -EINVAL, "listen address '%s': ADDR:PORT", addr);
		hl = (size_t)(colon - addr);
		port = colon + 1;
	}
	if (hl >= sizeof(host))
		return gs_error_set(err, -EINVAL, "listen address '%s': too long", addr);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtoul(port, &e, 10);
	if (!*port || *e || p > 65535 || errno)
		return gs_error_set(err, -EINVAL, "listen address '%s': bad port", addr);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (!host[0])
		snprintf(host, sizeof(host), "0.0.0.0");
	if (addr[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return gs_error_set(err, -EINVAL,
					    "listen address '%s': not a numeric IPv4 address",
					    addr);
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return gs_error_set(err, -EINVAL,
					    "listen address '%s': not a numeric IPv6 address",
					    addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*in6);
	}
	return 0;
}

int api_parse_listen_check(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return api_parse_listen(addr, &ss, &len, NULL);
}

void api_url_host(const char *addr, char *out, size_t len)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);

	if (n == 0 || (n == 7 && !strncmp(addr, "0.0.0.0", 7)) ||
	    (n == 4 && !strncmp(addr, "[::]", 4)))
		snprintf(out, len, "127.0.0.1");
	else
		snprintf(out, len, "%.*s", (int)n, addr);
}

int api_read_token_file(const char *path, char *out, size_t len, struct gs_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	size_t l;

	if (fd < 0)
		return gs_error_set(err, -errno, "token file %s: %s", path, strerror(errno));
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return gs_error_set(err, -EIO, "token file %s: %s", path, strerror(errno));
	out[n] = '\0';
	l = strcspn(out, "\r\n");
	if ((size_t)n == len - 1 && l == (size_t)n)
		return gs_error_set(err, -EINVAL, "token file %s: longer than %zu bytes", path,
				    len - 2);
	out[l] = '\0';
	while (l && (out[l - 1] == ' ' || out[l - 1] == '\t'))
		out[--l] = '\0';
	if (!l)
		return gs_error_set(err, -EINVAL, "token file %s is empty", path);
	return 0;
}

int api_start(const struct api_config *cfg, struct api **out, struct gs_error *err)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	socklen_t sl;
	struct api *a;
	int rc;

	*out = NULL;
	rc = api_parse_listen(cfg->listen, &ss, &sl, err);
	if (rc < 0)
		return rc;
	if (!cfg->token && !api_listen_is_loopback(cfg->listen))
		return gs_error_set(err, -EPERM,
				    "--listen %s is not a loopback address: give --api-token-file "
				    "(every request then needs Authorization: Bearer TOKEN)",
				    cfg->listen);
	a = calloc(1, sizeof(*a));
	if (!a)
		return gs_error_set(err, -ENOMEM, "out of memory");
	a->cfg = *cfg;
	if (!a->cfg.max_capture_s)
		a->cfg.max_capture_s = API_DEFAULT_MAX_CAPTURE_S;
	if (!a->cfg.max_concurrent_captures)
		a->cfg.max_concurrent_captures = API_DEFAULT_MAX_CAPTURES;
	a->cfg.token = cfg->token ? strdup(cfg->token) : NULL;
	a->cfg.data_dir = cfg->data_dir ? strdup(cfg->data_dir) : NULL;
	a->cfg.listen = NULL;
	pthread_mutex_init(&a->mu, NULL);
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0 || (cfg->token && !a->cfg.token) || (cfg->data_dir && !a->cfg.data_dir)) {
		rc = gs_error_set(err, -errno ? -errno : -ENOMEM, "api: %s", strerror(errno));
		goto fail;
	}
	a->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, a,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)API_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)API_LISTEN_BACKLOG,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, a, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		a, MHD_OPTION_END);
	if (!a->d) {
		rc = gs_error_set(err, -EADDRINUSE,
				  "cannot listen on %s (address in use, or not this host's?)",
				  cfg->listen);
		goto fail;
	}
	di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
	a->port = di ? di->port : 0;
	*out = a;
	return 0;
fail:
	if (a->efd >= 0)
		close(a->efd);
	free((char *)a->cfg.token);
	free((char *)a->cfg.data_dir);
	pthread_mutex_destroy(&a->mu);
	free(a);
	return rc;
}

void api_stop(struct api *a)
{
	struct api_request *r;
	uint64_t t0;

	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_mutex_unlock(&a->mu);
	while ((r = api_take(a))) {
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(r->error, sizeof(r->error), "the agent is stopping");
		api_done(a, r);
	}
	/* Resumed connections are answered by MHD's threads: give them a moment, so that
	 * none is still suspended when the daemon stops. */
	t0 = mono_ns();
	for (;;) {
		unsigned n;

		pthread_mutex_lock(&a->mu);
		n = a->suspended;
		pthread_mutex_unlock(&a->mu);
		if (!n || mono_ns() - t0 > API_STOP_WAIT_MS * 1000000ULL)
			break;
		usleep(10000);
	}
	MHD_stop_daemon(a->d);
	close(a->efd);
	free((char *)a->cfg.token);
	free((char *)a->cfg.data_dir);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void api_server_counters(struct api *a, struct api_server_counters *out)
{
	pthread_mutex_lock(&a->mu);
	out->captures_running = a->captures_running;
	out->captures_rejected = a->captures_rejected;
	out->merges_running = a->merges_running;
	pthread_mutex_unlock(&a->mu);
}
