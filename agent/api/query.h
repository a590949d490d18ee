/* query.h — the HTTP API's request targets parsed: the path, the query string (percent-decoded
 * NAME=VALUE pairs) and what each endpoint reads from it (capture parameters and process
 * selectors, stored-profile selectors). Everything here comes from the network: bounded
 * sizes and counts, strict numbers, every error a message for a 400 answer. Kept apart from
 * the server (agent/api/server.c) so that it can be fuzzed (tests/fuzz/fuzz_api_query.c). */
#ifndef GOSCOPE_AGENT_API_QUERY_H
#define GOSCOPE_AGENT_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

/* Bounds on what a request may carry. */
#define API_MAX_URI 4096   /* path + query, bytes (longer: 414) */
#define API_MAX_PARAMS 32  /* NAME=VALUE pairs */
#define API_MAX_VALUE 1024 /* bytes of one decoded name or value */
#define API_MAX_LABELS 16  /* label.K=V matchers of a stored-profile query */
#define API_DEFAULT_SECONDS 30
#define API_MAX_DURATION_NS 1000000000000000000ULL /* ~31 years: any longer is a mistake */

struct api_param {
	char *name, *value; /* decoded, NUL-terminated (point into api_query.buf) */
};

struct api_query {
	char path[256]; /* decoded path, e.g. "/pprof/cpu" */
	struct api_param params[API_MAX_PARAMS];
	size_t nparams;
	char buf[API_MAX_URI + 2 * API_MAX_PARAMS]; /* the decoded names and values */
};

/* Splits a request target ("/pprof/cpu?pid=1&seconds=5") into path and parameters.
 * -EINVAL with a message for bad percent escapes, NUL bytes, too many or too long
 * parameters; -E2BIG for a target longer than API_MAX_URI. */
int api_query_parse(const char *target, size_t len, struct api_query *q, struct gs_error *err);
/* The value of name (NULL when absent). */
const char *api_query_get(const struct api_query *q, const char *name);

/* Which processes a capture covers: exactly one way of naming them. */
struct api_selector {
	pid_t pid; /* 0: not by pid */
	char service[256];
	char container_id[80]; /* a full id or a prefix of at least API_MIN_CONTAINER_PREFIX */
	char k8s_namespace[64];
	char k8s_pod[256];
	char k8s_container[256]; /* only with namespace and pod; "" = every container */
};
#define API_MIN_CONTAINER_PREFIX 12

enum api_capture_kind { API_CAPTURE_CPU, API_CAPTURE_BLOCK, API_CAPTURE_HEAP };

/* An on-demand capture: GET /pprof/KIND?selector&seconds=N[&max_overhead=PCT]
 * [&min_delay=D][&reasons=LIST]. */
struct api_capture {
	enum api_capture_kind kind;
	struct api_selector sel;
	uint64_t duration_ns;	 /* seconds, capped by the server's maximum */
	bool capped;		 /* seconds was above the maximum */
	double max_overhead_pct; /* < 0: the agent's --block-max-overhead */
	uint64_t min_delay_ns;
	char reasons[256]; /* "" = every wait reason */
};

/* The capture of path "/pprof/cpu" etc. from q. max_seconds caps seconds. -EINVAL with a
 * message (the 400's) for an unknown or repeated parameter, a bad value, or a selector
 * that is missing, ambiguous or incomplete. */
int api_capture_parse(const struct api_query *q, enum api_capture_kind kind, unsigned max_seconds,
		      struct api_capture *out, struct gs_error *err);

/* Stored profiles: GET /api/profiles?service=&type=&pid=&from=&to=[&label.K=V][&limit=N]
 * (and /api/profiles/merge, without limit). Times as query_time_parse (default from -1h to
 * now). Strings point into q. */
struct api_stored {
	const char *service, *type; /* NULL: any */
	pid_t pid;
	int64_t from_ns, to_ns;
	const char *label_keys[API_MAX_LABELS], *label_values[API_MAX_LABELS];
	size_t nlabels;
	size_t limit; /* listing: rows at most (default API_DEFAULT_LIST_LIMIT) */
};
#define API_DEFAULT_LIST_LIMIT 1000
#define API_MAX_LIST_LIMIT 100000
#define API_DEFAULT_FROM "-1h"

int api_stored_parse(const struct api_query *q, bool merge, int64_t now_ns, struct api_stored *out,
		     struct gs_error *err);

/* A duration: Go syntax ("250ms", "1.5s", "2m", "100us", "1h2m") or plain nanoseconds.
 * -EINVAL with a message otherwise. */
int api_parse_duration(const char *s, uint64_t *out_ns, struct gs_error *err);

#endif
