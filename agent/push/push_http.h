/* push_http.h — the push's HTTP client (libcurl): one Connect unary call,
 * POST {url}/push.v1.PusherService/Push with Content-Type application/proto, TLS verified
 * unless told otherwise (a CA file may be given), basic auth or a bearer token read from
 * their files at each call (a rotated secret is picked up), the tenant as X-Scope-OrgID,
 * extra headers, connect and whole-request timeouts, and a way to abort a call under way
 * (the agent stopping). Secrets never appear in messages. */
#ifndef GOSCOPE_AGENT_PUSH_HTTP_H
#define GOSCOPE_AGENT_PUSH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

#define PUSH_PATH "/push.v1.PusherService/Push"
#define PUSH_TENANT_HEADER "X-Scope-OrgID"

struct push_http_config {
	const char *url; /* base URL: http:// or https:// */
	const char *tenant;
	const char *basic_auth_file;   /* "user:password" */
	const char *bearer_token_file; /* the token */
	const char *const *headers;    /* "Name: value" */
	size_t nheaders;
	const char *ca_file;
	bool insecure_skip_verify;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;
	/* Polled during a call: nonzero aborts it. */
	int (*abort)(void *arg);
	void *abort_arg;
};

/* What a call got. status 0: no HTTP answer (connection error, timeout, abort: why in
 * error). */
#define PUSH_HTTP_BODY_MAX 1024
#define PUSH_HTTP_RETRY_AFTER_MAX 128
struct push_http_result {
	long status;
	bool aborted;
	bool timed_out;
	char retry_after[PUSH_HTTP_RETRY_AFTER_MAX]; /* "" when absent */
	char body[PUSH_HTTP_BODY_MAX];		     /* the start of the answer's body */
	char error[256];			     /* curl's reason when status is 0 */
};

struct push_http;

/* Checks the configuration (URL scheme, files readable) and prepares the client. */
int push_http_open(const struct push_http_config *cfg, struct push_http **out,
		   struct gs_error *err);
/* One call with body[0..len). -errno only for a local failure (out of memory, an
 * unreadable auth file); an HTTP or transport failure is 0 with res saying what. */
int push_http_post(struct push_http *h, const uint8_t *body, size_t len,
		   struct push_http_result *res, struct gs_error *err);
void push_http_close(struct push_http *h);

/* The secret file's first line (trailing CR/LF and spaces cut) in a malloc'd string. */
int push_read_secret(const char *path, char **out, struct gs_error *err);

#endif
