/* stored.c — /api/profiles (a JSON listing of stored profiles) and /api/profiles/merge (one
 * merged gzip pprof of them), read in the HTTP thread through a read-only handle on the
 * agent's store (SQLite's WAL lets it read while the agent writes). The same selectors as
 * `goscope export`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/api_impl.h"
#include "profile/gzip.h"
#include "profile/profile.h"
#include "store/store.h"

/* Merged profiles can be large; speed matters more than the last percent of size. */
#define API_GZIP_LEVEL 6

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fmt_time(int64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

struct list_ctx {
	cJSON *arr;
	bool oom;
};

static int add_row(void *arg, const struct store_row_info *r)
{
	struct list_ctx *lc = arg;
	cJSON *o = cJSON_CreateObject();
	char from[32], to[32], id[24], ticks[24], sns[24], ens[24];

	fmt_time(r->start_ns, from, sizeof(from));
	fmt_time(r->end_ns, to, sizeof(to));
	/* 64-bit integers as JSON numbers, exactly (a double would round them). */
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	snprintf(ticks, sizeof(ticks), "%llu", (unsigned long long)r->start_ticks);
	snprintf(sns, sizeof(sns), "%lld", (long long)r->start_ns);
	snprintf(ens, sizeof(ens), "%lld", (long long)r->end_ns);
	if (!o || !cJSON_AddRawToObject(o, "id", id) ||
	    !cJSON_AddStringToObject(o, "type", r->type) ||
	    !cJSON_AddStringToObject(o, "service", r->service) ||
	    !cJSON_AddNumberToObject(o, "pid", r->pid) ||
	    !cJSON_AddRawToObject(o, "start_ticks", ticks) ||
	    !cJSON_AddStringToObject(o, "start", from) || !cJSON_AddStringToObject(o, "end", to) ||
	    !cJSON_AddRawToObject(o, "start_ns", sns) || !cJSON_AddRawToObject(o, "end_ns", ens) ||
	    !cJSON_AddNumberToObject(o, "bytes", (double)r->bytes) ||
	    !cJSON_AddBoolToObject(o, "rolled_up", r->rolled_up) ||
	    !cJSON_AddNumberToObject(o, "windows", r->windows) ||
	    !cJSON_AddRawToObject(o, "labels", r->labels_json ? r->labels_json : "{}")) {
		cJSON_Delete(o);
		lc->oom = true;
		return 1;
	}
	cJSON_AddItemToArray(lc->arr, o);
	return 0;
}

static unsigned status_of(int rc)
{
	switch (rc) {
	case -ENOENT:
		return MHD_HTTP_NOT_FOUND;
	case -EINVAL:
		return MHD_HTTP_BAD_REQUEST;
	case -ENOMEM:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

enum MHD_Result api_stored_answer(struct api *a, struct MHD_Connection *conn, struct api_conn *c,
				  const struct api_query *q, bool merge)
{
	struct store_config sc = {.dir = a->cfg.data_dir, .read_only = true};
	struct store_label match[API_MAX_LABELS];
	struct store_query sq = {0};
	struct api_stored st;
	struct gs_error err = {0};
	struct store *s = NULL;
	enum MHD_Result ok;
	int rc;

	if (api_stored_parse(q, merge, now_ns(), &st, &err) < 0)
		return api_error(conn, MHD_HTTP_BAD_REQUEST, err.msg, NULL);
	if (!a->cfg.data_dir)
		return api_error(conn, MHD_HTTP_NOT_FOUND, "this agent has no store", NULL);
	for (size_t i = 0; i < st.nlabels; i++)
		match[i] = (struct store_label){st.label_keys[i], st.label_values[i]};
	sq = (struct store_query){.service = st.service,
				  .type = st.type ? st.type : (merge ? "cpu" : NULL),
				  .pid = st.pid,
				  .from_ns = st.from_ns,
				  .to_ns = st.to_ns,
				  .match = match,
				  .nmatch = st.nlabels,
				  .limit = merge ? 0 : st.limit};
	if (merge && !api_take_merge_slot(a, c)) {
		static const char *const retry[] = {"Retry-After", "1", NULL};

		return api_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "a merge is running already",
				 retry);
	}
	rc = store_open(&sc, &s, &err);
	if (rc < 0) {
		gs_error_prefix(&err, "store");
		return api_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err.msg, NULL);
	}
	if (merge) {
		struct profile *p = NULL;
		uint8_t *raw = NULL, *gz = NULL;
		size_t rl = 0, gl = 0;

		rc = store_merge(s, &sq, &p, &err);
		if (rc == 0)
			rc = profile_encode(p, &raw, &rl, &err);
		if (rc == 0)
			rc = gzip_compress(raw, rl, API_GZIP_LEVEL, &gz, &gl, &err);
		profile_free(p);
		free(raw);
		if (rc < 0) {
			ok = api_error(conn, status_of(rc),
				       rc == -ENOENT ? "no stored profile matches" : err.msg, NULL);
		} else {
			static const char *const hdrs[] = {
				"Content-Disposition", "attachment; filename=\"profile\"", NULL};

			ok = api_respond(conn, MHD_HTTP_OK, "application/octet-stream", gz, gl,
					 true, hdrs);
		}
	} else {
		struct list_ctx lc = {.arr = cJSON_CreateArray()};
		char *text = NULL;

		rc = lc.arr ? store_list(s, &sq, add_row, &lc, &err) : -ENOMEM;
		if (rc >= 0 && !lc.oom)
			text = cJSON_PrintUnformatted(lc.arr);
		cJSON_Delete(lc.arr);
		if (rc < 0 && rc != 1)
			ok = api_error(conn, status_of(rc), err.msg, NULL);
		else if (!text)
			ok = api_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
		else
			ok = api_respond(conn, MHD_HTTP_OK, "application/json", text, strlen(text),
					 true, NULL);
	}
	store_close(s);
	return ok;
}
