/* api.h — the agent's HTTP API (libmicrohttpd): on-demand captures `go tool pprof` opens,
 * the stored profiles, the discovered processes, Prometheus metrics and a health check.
 *
 * Threads. The server runs in libmicrohttpd's own threads. What needs the agent's state
 * (its process table, its CPU session, its counters) is handed to the agent's thread as a
 * struct api_request: the HTTP side suspends the connection and queues the request; the
 * agent wakes on api_fd(), takes requests with api_take(), answers them (a capture after
 * its duration) and calls api_done(), which resumes the connection. Stored profiles are
 * read in the HTTP threads through their own read-only store handles (SQLite's WAL).
 *
 * Nothing here prints: errors go to cfg->log. */
#ifndef GOSCOPE_AGENT_API_API_H
#define GOSCOPE_AGENT_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/query.h"
#include "kube/kube.h"
#include "goscope/error.h"

struct api;

#define API_DEFAULT_LISTEN "127.0.0.1:6061"
#define API_DEFAULT_MAX_CAPTURE_S 300
#define API_DEFAULT_MAX_CAPTURES 4
#define API_MAX_TOKEN 4096

struct api_config {
	const char *listen; /* "ADDR:PORT" ("[::1]:6061" for IPv6); port 0 picks a free one */
	const char *token;  /* required as "Authorization: Bearer TOKEN"; NULL on loopback only */
	unsigned max_capture_s;		  /* seconds= is capped to this */
	unsigned max_concurrent_captures; /* more at once: 429 */
	const char *data_dir;		  /* the store /api/profiles reads */
	/* Errors worth a line in the agent's log (may be NULL); msg has no newline. */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
};

/* Whether addr ("ADDR:PORT") names a loopback address (127.0.0.0/8, ::1, localhost). */
bool api_listen_is_loopback(const char *addr);
/* 0 when addr is a valid ADDR:PORT for --listen, -EINVAL otherwise. */
int api_parse_listen_check(const char *addr);
/* The host part of addr as a URL writes it ("127.0.0.1", "[::1]"; "127.0.0.1" for 0.0.0.0). */
void api_url_host(const char *addr, char *out, size_t len);
/* Reads a token file: its first line, trimmed; -EINVAL when empty or too long. */
int api_read_token_file(const char *path, char *out, size_t len, struct gs_error *err);

/* Binds and starts serving. A non-loopback address without a token is refused (-EPERM). */
int api_start(const struct api_config *cfg, struct api **out, struct gs_error *err);
/* The port it listens on (the chosen one for port 0). */
unsigned api_port(const struct api *a);
/* Readable when requests wait for the agent's thread. */
int api_fd(const struct api *a);
/* Answers every request still queued or running with 503, stops the server. NULL is fine. */
void api_stop(struct api *a);

/* ---- the agent's side ---- */

enum api_req_kind {
	API_REQ_HEALTH,	   /* status 200 or 503 and a reason in error */
	API_REQ_PROCESSES, /* body: the JSON array of /api/processes */
	API_REQ_METRICS,   /* fill metrics */
	API_REQ_CAPTURE,   /* body: the gzip pprof of capture */
};

/* What the agent knows that /metrics shows (the HTTP side adds its own and process_*). */
struct api_metrics {
	uint64_t processes_tracked; /* profiled now */
	uint64_t processes_found;   /* started being profiled, total */
	uint64_t processes_gone;
	uint64_t processes_excluded;
	uint64_t samples;	  /* CPU samples received */
	uint64_t samples_dropped; /* lost (ring buffer full) */
	uint64_t windows;	  /* window cuts */
	uint64_t windows_stored;  /* profiles stored (rows written) */
	uint64_t windows_dropped; /* profiles that could not be stored */
	uint64_t store_rows;
	uint64_t store_bytes;	     /* database + WAL */
	uint64_t store_rows_expired; /* deleted by retention */
	uint64_t store_rows_evicted; /* deleted for --max-disk */
	uint64_t symbolizer_hits, symbolizer_misses, symbolizer_binaries_open;
	uint64_t bpf_targets, bpf_targets_max; /* the CPU target map: entries, size */
	uint64_t block_sessions;	       /* continuous blocking profiles running */
	uint64_t captures_total;	       /* on-demand captures answered by the agent */
	/* Kubernetes pod metadata (agent/kube/): shown when kube_enabled. */
	bool kube_enabled;
	struct kube_stats kube;
	uint64_t heap_failures; /* --heap: heap profile reads that failed (agent_stats) */
	/* Push to Pyroscope (agent/push/push.h), when --push-url is set. */
	bool push;
	uint64_t push_pushed, push_retried, push_dropped, push_lost, push_requests;
	uint64_t push_backlog_rows;
	double push_backlog_age_s; /* of the oldest undelivered window; 0 when none */
};

struct api_request {
	enum api_req_kind kind;
	struct api_capture capture; /* API_REQ_CAPTURE */
	int client_fd;		    /* the client's socket: a hang-up ends the capture */

	/* The answer, set by the agent before api_done. */
	int status;	 /* HTTP status */
	char error[256]; /* status >= 400 (or a 503 health): the message */
	uint8_t *body;	 /* malloc'd; the request owns it once set */
	size_t body_len;
	const char *content_type; /* static string */
	struct api_metrics metrics;

	/* Agent-side state (e.g. the running capture); the API never touches it. */
	void *agent_state;

	/* The API's own. */
	struct api_request *next;
	void *conn;
};

/* The next queued request (NULL when none). The agent owns it until api_done. */
struct api_request *api_take(struct api *a);
/* Hands the answered request back (the connection is resumed; r must not be used after). */
void api_done(struct api *a, struct api_request *r);

#endif
