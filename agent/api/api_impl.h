/* api_impl.h — what the files of agent/api/ share and the rest of the agent does not see:
 * the server's state and the helpers its endpoints use to answer. */
#ifndef GOSCOPE_AGENT_API_IMPL_H
#define GOSCOPE_AGENT_API_IMPL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "api/api.h"

/* Stored-profile merges at once (each holds one of the server's threads while it runs). */
#define API_MAX_MERGES 1
/* Running captures whose end times are kept for Retry-After. */
#define API_MAX_CAPTURE_ENDS 64

struct api_conn;

struct api {
	struct api_config cfg; /* token and data_dir are copies; listen is not kept */
	struct MHD_Daemon *d;
	unsigned port;
	int efd; /* eventfd: requests wait for the agent */

	pthread_mutex_t mu; /* everything below */
	struct api_request *head, *tail;
	unsigned suspended; /* connections suspended (queued or with the agent) */
	unsigned captures_running, merges_running;
	uint64_t captures_rejected; /* 429s */
	uint64_t capture_ends[API_MAX_CAPTURE_ENDS];
	bool stopping;
};

struct api_server_counters {
	unsigned captures_running, merges_running;
	uint64_t captures_rejected;
};
void api_server_counters(struct api *a, struct api_server_counters *out);

void api_log(struct api *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int api_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		     struct gs_error *err);

/* Queues a response; headers: NULL-terminated NAME, VALUE pairs (may be NULL). With
 * must_free, body is freed (also on failure). */
enum MHD_Result api_respond(struct MHD_Connection *conn, unsigned status, const char *type,
			    void *body, size_t len, bool must_free, const char *const *headers);
/* {"error": msg} with status. */
enum MHD_Result api_error(struct MHD_Connection *conn, unsigned status, const char *msg,
			  const char *const *headers);

bool api_take_merge_slot(struct api *a, struct api_conn *c);

/* /api/profiles and /api/profiles/merge (stored.c). */
enum MHD_Result api_stored_answer(struct api *a, struct MHD_Connection *conn, struct api_conn *c,
				  const struct api_query *q, bool merge);
/* /metrics from the agent's snapshot, the server's counters and the process's own (metrics.c). */
enum MHD_Result api_metrics_answer(struct api *a, struct MHD_Connection *conn,
				   const struct api_metrics *m);
/* The Prometheus text (malloc'd), for tests too. */
int api_metrics_render(const struct api_metrics *m, const struct api_server_counters *sc,
		       char **out, size_t *len);

#endif
