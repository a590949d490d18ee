/* push.h — pushing the stored windows to Pyroscope (issue 14). A thread of its own reads the
 * undelivered windows from the store (its own SQLite handle on the agent's data directory:
 * the store is the spool, agent/store/store_deliver.c), sends several per request as
 * Pyroscope's Connect unary Push (push_proto.h, push_http.h), and marks them delivered only
 * after a 2xx. 5xx, 408, 429 and connection errors are retried with backoff and jitter
 * (push_backoff.h), honouring Retry-After; any other 4xx drops the window it is about
 * (a batch refused as a whole is split until the refused window is found) and counts it;
 * a window beyond Pyroscope's default limits is dropped and counted before it is sent.
 * Windows go out in their stored order (time order per series); a restart resumes from the
 * undelivered ones, a window whose answer never came is sent again with the same ID. */
#ifndef GOSCOPE_AGENT_PUSH_PUSH_H
#define GOSCOPE_AGENT_PUSH_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

#define PUSH_DEFAULT_CONNECT_TIMEOUT_MS 5000ULL
#define PUSH_DEFAULT_TIMEOUT_MS 30000ULL

struct push_config {
	const char *url; /* Pyroscope base URL; NULL: no push */
	const char *tenant;
	const char *basic_auth_file;
	const char *bearer_token_file;
	const char *const *headers; /* "Name: value" */
	size_t nheaders;
	const char *ca_file;
	bool insecure_skip_verify;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;
	uint64_t max_backoff_ms; /* 0: PUSH_BACKOFF_MAX_MS (5 min) */
};

enum push_log_level {
	PUSH_LOG_ERROR,
	PUSH_LOG_INFO,
	PUSH_LOG_DEBUG,
};

/* What the pusher did since it started; backlog_* as of its last look at the store. */
struct push_stats {
	uint64_t pushed;       /* windows delivered (2xx) */
	uint64_t retried;      /* requests that failed and are retried (5xx, 408, 429, network) */
	uint64_t dropped;      /* windows refused by the remote (4xx) or beyond its limits */
	uint64_t lost;	       /* undelivered windows deleted by retention (push_add_lost) */
	uint64_t requests;     /* requests sent */
	uint64_t bytes_sent;   /* request bodies */
	uint64_t backlog_rows; /* undelivered windows in the store */
	int64_t oldest_backlog_ns; /* start of the oldest undelivered window (Unix ns), 0 = none */
	int last_status;	   /* the last answer's HTTP status, 0 when none (or no answer) */
};

struct push;

/* Starts the pusher on the store in data_dir (opened by the agent already, so its schema is
 * current). node: the node label (in the windows' IDs). log may be NULL; it is called from the
 * pusher's thread. */
int push_start(const struct push_config *cfg, const char *data_dir, const char *node,
	       void (*log)(void *arg, enum push_log_level level, const char *msg), void *log_arg,
	       struct push **out, struct gs_error *err);
/* A window was stored: look now rather than at the next poll. */
void push_wake(struct push *p);
/* Undelivered windows deleted by retention (counted as lost, logged by the caller). */
void push_add_lost(struct push *p, uint64_t n);
/* Thread-safe snapshot of the counters. */
void push_get_stats(struct push *p, struct push_stats *out);
/* Stops the thread (a request under way is aborted: its windows stay undelivered) and frees.
 * NULL is fine. */
void push_stop(struct push *p);

#endif
