/* agent_api.c — the HTTP API's requests served from the agent's thread, which owns what they
 * read: the process table (selectors, /api/processes), the CPU session (on-demand CPU
 * captures are taps on it: no second set of perf events), block sessions opened for an
 * on-demand blocking capture, and the counters /metrics and /healthz report.
 *
 * A capture runs for its duration while the loop goes on; it ends early when its client
 * hangs up (the client's socket is polled for POLLRDHUP each pass) and is answered with
 * what was captured when its targets exit. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "capture/block.h"
#include "capture/core.h"
#include "capture/cpu_session.h"
#include "goruntime/heap.h"
#include "daemon/agent_impl.h"
#include "procs/labels.h"
#include "profile/gzip.h"
#include "profile/profile.h"
#include "push/push.h"
#include "store/store.h"

#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define HTTP_NOT_FOUND 404
#define HTTP_INTERNAL 500
#define HTTP_UNAVAILABLE 503
/* Captured profiles are sent once; a middle level keeps the agent's CPU low. */
#define CAPTURE_GZIP_LEVEL 6
/* Processes one capture may cover (a service= selector on a node running many copies). */
#define CAPTURE_MAX_PIDS CPU_TAP_MAX_PIDS

struct capture_block {
	pid_t pid;
	struct block_session *s;
	struct profile *prof; /* cut when its target ended before the capture did */
};

/* One running on-demand capture. */
struct agent_capture {
	struct api_request *r;
	uint64_t end_ns; /* monotonic */
	struct cpu_tap *tap;
	struct capture_block blocks[CAPTURE_MAX_PIDS];
	size_t nblocks;
	bool used;
};

static void answer_error(struct agent *a, struct api_request *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void answer_error(struct agent *a, struct api_request *r, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->status = status;
	api_done(a->api, r);
}

/* ---- selectors ---- */

static bool selected(const struct api_selector *sel, const struct agent_proc *p)
{
	const struct proc_labels *l = p->labels;

	if (p->kind != PROC_PROFILED || !l)
		return false;
	if (sel->pid)
		return p->pid == sel->pid;
	if (sel->service[0])
		return !strcmp(l->service, sel->service);
	if (sel->container_id[0])
		return l->container_id[0] &&
		       !strncmp(l->container_id, sel->container_id, strlen(sel->container_id));
	if (sel->k8s_pod[0])
		return !strcmp(l->k8s_namespace, sel->k8s_namespace) &&
		       !strcmp(l->k8s_pod, sel->k8s_pod) &&
		       (!sel->k8s_container[0] || !strcmp(l->k8s_container, sel->k8s_container));
	return false;
}

/* The profiled processes sel names, at most max; how many matched in all. */
static size_t select_procs(struct agent *a, const struct api_selector *sel, struct agent_proc **out,
			   size_t max)
{
	size_t n = 0;

	for (size_t b = 0; b < PROC_BUCKETS; b++)
		for (struct agent_proc *p = a->buckets[b]; p; p = p->next)
			if (selected(sel, p)) {
				if (n < max)
					out[n] = p;
				n++;
			}
	return n;
}

static void describe(const struct api_selector *sel, char *out, size_t len)
{
	if (sel->pid)
		snprintf(out, len, "pid %d", sel->pid);
	else if (sel->service[0])
		snprintf(out, len, "service %s", sel->service);
	else if (sel->container_id[0])
		snprintf(out, len, "container %s", sel->container_id);
	else
		snprintf(out, len, "pod %.63s/%.100s%s%.100s", sel->k8s_namespace, sel->k8s_pod,
			 sel->k8s_container[0] ? " container " : "", sel->k8s_container);
}

/* ---- captures ---- */

static struct agent_capture *capture_slot(struct agent *a)
{
	for (unsigned i = 0; i < a->ncaptures; i++)
		if (!a->captures[i].used)
			return &a->captures[i];
	if (a->ncaptures == CPU_SESSION_MAX_TAPS)
		return NULL;
	struct agent_capture *nc = realloc(a->captures, (a->ncaptures + 1) * sizeof(*nc));

	if (!nc)
		return NULL;
	a->captures = nc;
	memset(&nc[a->ncaptures], 0, sizeof(*nc));
	return &nc[a->ncaptures++];
}

static void answer_profile(struct agent *a, struct api_request *r, struct profile *prof);

/* /pprof/heap: the heap profiles of the selected processes read now (no duration: the
 * runtime publishes them at each GC), each sample labelled with its pid, merged. */
static void answer_heap(struct agent *a, struct api_request *r, struct agent_proc **procs, size_t n)
{
	struct profile *all = NULL;
	struct gs_error err = {0};
	int rc = 0, status = HTTP_INTERNAL;

	for (size_t i = 0; i < n; i++) {
		struct profile_label pl = {.key = LABEL_PID, .num = procs[i]->pid};
		struct profile *p = NULL;

		rc = a->heap ? heap_reader_read(a->heap, procs[i]->pid, HEAP_KIND_HEAP, &p, NULL,
						&err)
			     : heap_profile_read(procs[i]->pid, HEAP_KIND_HEAP, &p, NULL, &err);
		if (rc == 0)
			rc = profile_add_labels_all(p, &pl, 1, &err);
		if (rc == 0 && all)
			rc = profile_merge(all, p, &err);
		if (rc == 0 && !all) {
			all = p;
			p = NULL;
		}
		profile_free(p);
		if (rc < 0 && n == 1)
			break;
		if (rc < 0) /* the others are still answered */
			gs_error_prefix(&err, "pid %d", procs[i]->pid);
	}
	if (!all) {
		if (rc == -ENODATA || rc == -ESRCH || rc == -ENOENT || rc == -EPROTONOSUPPORT)
			status = HTTP_NOT_FOUND;
		answer_error(a, r, status, "%s", err.msg);
		return;
	}
	answer_profile(a, r, all);
	profile_free(all);
}

static void start_capture(struct agent *a, struct api_request *r)
{
	const struct api_capture *cap = &r->capture;
	struct agent_proc *procs[CAPTURE_MAX_PIDS];
	pid_t pids[CAPTURE_MAX_PIDS];
	struct gs_error err = {0};
	struct agent_capture *c;
	char what[320];
	size_t n = select_procs(a, &cap->sel, procs, CAPTURE_MAX_PIDS);

	describe(&cap->sel, what, sizeof(what));
	if (!n) {
		if (cap->sel.pid)
			answer_error(
				a, r, HTTP_NOT_FOUND,
				"pid %d: not a Go process this agent profiles (unknown, exited, "
				"not Go, or excluded by --include/--exclude)",
				cap->sel.pid);
		else
			answer_error(a, r, HTTP_NOT_FOUND, "no profiled Go process matches %s",
				     what);
		return;
	}
	if (n > CAPTURE_MAX_PIDS) {
		answer_error(a, r, HTTP_BAD_REQUEST, "%s matches %zu processes (at most %d)", what,
			     n, CAPTURE_MAX_PIDS);
		return;
	}
	if (cap->kind == API_CAPTURE_HEAP) {
		answer_heap(a, r, procs, n);
		return;
	}
	if (cap->kind == API_CAPTURE_CPU && !a->cpu) {
		answer_error(a, r, HTTP_UNAVAILABLE, "CPU profiling is not running: %s",
			     a->bpf_error);
		return;
	}
	c = capture_slot(a);
	if (!c) {
		answer_error(a, r, HTTP_UNAVAILABLE, "too many captures at once");
		return;
	}
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		pids[i] = procs[i]->pid;
	if (cap->kind == API_CAPTURE_CPU) {
		if (cpu_session_tap_open(a->cpu, pids, n, &c->tap, &err) < 0) {
			answer_error(a, r, HTTP_UNAVAILABLE, "%s", err.msg);
			return;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			struct block_config bc = {
				.pid = pids[i],
				.min_delay_ns = cap->min_delay_ns,
				.reasons = cap->reasons[0] ? cap->reasons : NULL,
				.max_overhead_pct = cap->max_overhead_pct >= 0
							    ? cap->max_overhead_pct
							    : a->cfg->block_max_overhead_pct,
			};
			struct capture_block *cb = &c->blocks[c->nblocks];
			int rc = block_session_open(&bc, &cb->s, &err);

			if (rc == -ESRCH)
				continue; /* exited meanwhile: the others are still captured */
			if (rc < 0) {
				for (size_t j = 0; j < c->nblocks; j++)
					block_session_close(c->blocks[j].s);
				answer_error(a, r,
					     rc == -EINVAL ? HTTP_BAD_REQUEST : HTTP_UNAVAILABLE,
					     "pid %d: %s", pids[i], err.msg);
				return;
			}
			cb->pid = pids[i];
			c->nblocks++;
		}
		if (!c->nblocks) {
			answer_error(a, r, HTTP_NOT_FOUND, "%s: every process exited", what);
			return;
		}
	}
	c->r = r;
	c->end_ns = capture_monotonic_ns() + cap->duration_ns;
	c->used = true;
	agent_logf(a, AGENT_LOG_DEBUG, "%s capture of %s for %.0f s started",
		   cap->kind == API_CAPTURE_CPU ? "CPU" : "blocking", what, cap->duration_ns / 1e9);
}

/* The block profile of one session, with a pid label on every sample. */
static int cut_block(struct capture_block *cb, struct profile **out, struct gs_error *err)
{
	struct profile_label pl = {.key = LABEL_PID, .num = cb->pid};
	struct block_stats bs;
	int rc;

	*out = NULL;
	memset(&bs, 0, sizeof(bs));
	rc = block_session_cut(cb->s, true, out, &bs, err);
	if (rc == 0 && *out)
		rc = profile_add_labels_all(*out, &pl, 1, err);
	return rc;
}

/* Encodes prof as the answer's gzip pprof. */
static void answer_profile(struct agent *a, struct api_request *r, struct profile *prof)
{
	struct gs_error err = {0};
	uint8_t *raw = NULL;
	size_t rl = 0;
	int rc = profile_encode(prof, &raw, &rl, &err);

	if (rc == 0)
		rc = gzip_compress(raw, rl, CAPTURE_GZIP_LEVEL, &r->body, &r->body_len, &err);
	free(raw);
	if (rc < 0) {
		answer_error(a, r, HTTP_INTERNAL, "%s", err.msg);
		return;
	}
	r->status = HTTP_OK;
	r->content_type = "application/octet-stream";
	a->captures_total++;
	api_done(a->api, r);
}

/* Ends c: answered with its profile (answer false: the client is gone, nothing is sent). */
static void end_capture(struct agent *a, struct agent_capture *c, bool answer)
{
	struct api_request *r = c->r;
	struct profile *prof = NULL;
	struct gs_error err = {0};
	int rc = 0;

	if (c->tap) {
		rc = cpu_session_tap_close(a->cpu, c->tap, answer ? &prof : NULL, &err);
	} else {
		for (size_t i = 0; i < c->nblocks; i++) {
			struct capture_block *cb = &c->blocks[i];
			struct profile *p = cb->prof;

			cb->prof = NULL;
			if (!p && answer && rc == 0)
				rc = cut_block(cb, &p, &err);
			if (p && rc == 0 && answer) {
				if (!prof || !profile_sample_count(prof)) {
					struct profile *t = prof;

					prof = p;
					p = t;
				} else if (profile_sample_count(p)) {
					rc = profile_merge(prof, p, &err);
				}
			}
			profile_free(p);
			block_session_close(cb->s);
		}
	}
	memset(c, 0, sizeof(*c));
	if (!answer) {
		profile_free(prof);
		answer_error(a, r, HTTP_UNAVAILABLE, "the client went away");
		return;
	}
	if (rc < 0) {
		profile_free(prof);
		answer_error(a, r, HTTP_INTERNAL, "%s", err.msg);
		return;
	}
	if (!prof && !(prof = profile_new())) {
		answer_error(a, r, HTTP_INTERNAL, "out of memory");
		return;
	}
	answer_profile(a, r, prof);
	profile_free(prof);
}

static bool client_gone(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};

	if (fd < 0)
		return false;
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

void agent_api_tick(struct agent *a)
{
	uint64_t now = capture_monotonic_ns();

	for (unsigned i = 0; i < a->ncaptures; i++) {
		struct agent_capture *c = &a->captures[i];
		bool alive = false;

		if (!c->used)
			continue;
		if (client_gone(c->r->client_fd)) {
			end_capture(a, c, false);
			continue;
		}
		for (size_t j = 0; j < c->nblocks; j++) {
			struct capture_block *cb = &c->blocks[j];
			struct gs_error err = {0};

			if (!cb->s || cb->prof)
				continue;
			block_session_tick(cb->s, now, &err);
			if (block_session_target_alive(cb->s)) {
				alive = true;
			} else if (cut_block(cb, &cb->prof, &err) < 0 || !cb->prof) {
				cb->prof = profile_new(); /* what it had is lost: nothing more */
			}
		}
		/* Every blocking target exited: answer now with what was captured. */
		if (now >= c->end_ns || (c->nblocks && !alive))
			end_capture(a, c, true);
	}
}

int agent_api_timeout_ms(struct agent *a, int limit)
{
	uint64_t now = capture_monotonic_ns();

	for (unsigned i = 0; i < a->ncaptures; i++) {
		const struct agent_capture *c = &a->captures[i];
		int64_t ms;

		if (!c->used)
			continue;
		ms = c->end_ns > now ? (int64_t)((c->end_ns - now) / 1000000ULL) + 1 : 0;
		if (ms < limit)
			limit = (int)ms;
	}
	return limit;
}

bool agent_api_has_block(const struct agent *a)
{
	for (unsigned i = 0; i < a->ncaptures; i++)
		if (a->captures[i].used && a->captures[i].nblocks)
			return true;
	return false;
}

void agent_api_finish_all(struct agent *a)
{
	struct api_request *r;

	for (unsigned i = 0; i < a->ncaptures; i++)
		if (a->captures[i].used)
			end_capture(a, &a->captures[i], true);
	free(a->captures);
	a->captures = NULL;
	a->ncaptures = 0;
	while (a->api && (r = api_take(a->api)))
		answer_error(a, r, HTTP_UNAVAILABLE, "the agent is stopping");
}

/* ---- immediate answers ---- */

static void answer_health(struct agent *a, struct api_request *r)
{
	if (!a->cpu && !a->bpf_error[0]) {
		answer_error(a, r, HTTP_UNAVAILABLE, "starting");
		return;
	}
	if (a->bpf_error[0]) {
		answer_error(a, r, HTTP_UNAVAILABLE, "BPF failed to load: %s", a->bpf_error);
		return;
	}
	if (a->store_error[0]) {
		answer_error(a, r, HTTP_UNAVAILABLE, "store unwritable: %s", a->store_error);
		return;
	}
	r->body = (uint8_t *)strdup("ok\n");
	r->body_len = r->body ? 3 : 0;
	r->status = HTTP_OK;
	r->content_type = "text/plain; charset=utf-8";
	api_done(a->api, r);
}

static void answer_metrics(struct agent *a, struct api_request *r)
{
	struct api_metrics *m = &r->metrics;
	struct store_stats ss;

	memset(m, 0, sizeof(*m));
	m->processes_tracked = a->st.processes_now;
	m->processes_found = a->st.processes_found;
	m->processes_gone = a->st.processes_gone;
	m->processes_excluded = a->st.excluded;
	m->samples = a->st.samples;
	m->samples_dropped = a->st.sample_drops;
	m->windows = a->st.windows;
	m->windows_stored = a->st.profiles_stored;
	m->windows_dropped = a->st.profiles_dropped;
	m->block_sessions = a->st.block_sessions;
	m->captures_total = a->captures_total;
	if (a->cfg->kube) {
		m->kube_enabled = true;
		kube_get_stats(a->cfg->kube, &m->kube);
	}
	m->heap_failures = a->st.heap_failures;
	if (a->push) {
		struct push_stats ps;

		push_get_stats(a->push, &ps);
		m->push = true;
		m->push_pushed = ps.pushed;
		m->push_retried = ps.retried;
		m->push_dropped = ps.dropped;
		m->push_lost = ps.lost;
		m->push_requests = ps.requests;
		m->push_backlog_rows = ps.backlog_rows;
		if (ps.oldest_backlog_ns) {
			struct timespec ts;
			int64_t now;

			clock_gettime(CLOCK_REALTIME, &ts);
			now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
			m->push_backlog_age_s =
				now > ps.oldest_backlog_ns ? (now - ps.oldest_backlog_ns) / 1e9 : 0;
		}
	}
	if (a->store) {
		store_stats(a->store, &ss);
		m->store_rows = ss.rows;
		m->store_bytes = ss.db_bytes + ss.wal_bytes;
		m->store_rows_expired = ss.rows_expired;
		m->store_rows_evicted = ss.rows_evicted;
	}
	if (a->cpu) {
		struct cpu_session_counters cc;
		struct gs_symbolizer_stats sy;

		cpu_session_counters(a->cpu, &cc);
		cpu_session_symbolizer_stats(a->cpu, &sy);
		m->bpf_targets = cc.targets;
		m->bpf_targets_max = cc.max_targets;
		m->symbolizer_hits = sy.hits;
		m->symbolizer_misses = sy.misses;
		m->symbolizer_binaries_open = sy.binaries;
	}
	r->status = HTTP_OK;
	api_done(a->api, r);
}

static bool add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v) != NULL;
}

/* One process of /api/processes: its labels and what is being captured. */
static cJSON *process_json(struct agent *a, const struct agent_proc *p)
{
	const struct proc_labels *l = p->labels;
	cJSON *o = cJSON_CreateObject(), *lab, *cap, *od;
	char pid[24], ticks[24];

	if (!o)
		return NULL;
	snprintf(pid, sizeof(pid), "%d", p->pid);
	snprintf(ticks, sizeof(ticks), "%llu", (unsigned long long)p->start_ticks);
	if (!cJSON_AddNumberToObject(o, "pid", p->pid) ||
	    !cJSON_AddRawToObject(o, "start_ticks", ticks) ||
	    !(lab = cJSON_AddObjectToObject(o, "labels")) ||
	    !add_str(lab, LABEL_SERVICE, l->service) || !add_str(lab, LABEL_PID, pid) ||
	    !add_str(lab, LABEL_COMM, l->comm) || !add_str(lab, LABEL_EXE, l->exe) ||
	    !add_str(lab, LABEL_GO_VERSION, l->go_version) ||
	    !add_str(lab, LABEL_MODULE, l->module) || !add_str(lab, LABEL_NODE, l->node))
		goto fail;
	if (l->container_id[0] && !add_str(lab, LABEL_CONTAINER, l->container_id))
		goto fail;
	if (l->k8s_pod[0] && (!add_str(lab, LABEL_NAMESPACE, l->k8s_namespace) ||
			      !add_str(lab, LABEL_POD, l->k8s_pod) ||
			      !add_str(lab, LABEL_CONTAINER_NAME, l->k8s_container) ||
			      !add_str(lab, LABEL_WORKLOAD, l->k8s_workload)))
		goto fail;
	if (!(cap = cJSON_AddObjectToObject(o, "capturing")) ||
	    !cJSON_AddBoolToObject(cap, "cpu", a->cpu != NULL) ||
	    !cJSON_AddBoolToObject(cap, "block", p->block != NULL) ||
	    !(od = cJSON_AddArrayToObject(cap, "on_demand")))
		goto fail;
	for (unsigned i = 0; i < a->ncaptures; i++) {
		const struct agent_capture *c = &a->captures[i];
		bool mine = false;

		if (!c->used)
			continue;
		mine = selected(&c->r->capture.sel, p);
		if (mine && !cJSON_AddItemToArray(od, cJSON_CreateString(c->tap ? "cpu" : "block")))
			goto fail;
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static void answer_processes(struct agent *a, struct api_request *r)
{
	cJSON *arr = cJSON_CreateArray();
	char *text = NULL;

	for (size_t b = 0; arr && b < PROC_BUCKETS; b++) {
		for (struct agent_proc *p = a->buckets[b]; p; p = p->next) {
			cJSON *o;

			if (p->kind != PROC_PROFILED || !p->labels)
				continue;
			o = process_json(a, p);
			if (!o) {
				cJSON_Delete(arr);
				arr = NULL;
				break;
			}
			cJSON_AddItemToArray(arr, o);
		}
	}
	if (arr)
		text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (!text) {
		answer_error(a, r, HTTP_UNAVAILABLE, "out of memory");
		return;
	}
	r->body = (uint8_t *)text;
	r->body_len = strlen(text);
	r->status = HTTP_OK;
	r->content_type = "application/json";
	api_done(a->api, r);
}

void agent_api_serve(struct agent *a)
{
	struct api_request *r;

	if (!a->api)
		return;
	while ((r = api_take(a->api))) {
		switch (r->kind) {
		case API_REQ_HEALTH:
			answer_health(a, r);
			break;
		case API_REQ_METRICS:
			answer_metrics(a, r);
			break;
		case API_REQ_PROCESSES:
			answer_processes(a, r);
			break;
		case API_REQ_CAPTURE:
			start_capture(a, r);
			break;
		default:
			answer_error(a, r, HTTP_NOT_FOUND, "no such request");
		}
	}
}
