/* agent.c — the agent's main loop: which processes are profiled, the window clock, and where
 * each window's profiles go. The capture itself is the sessions' (cpu_session, block_session);
 * the agent only decides, labels and stores.
 *
 * Processes are kept in one table keyed by (pid, start time): profiled Go processes with their
 * labels, and the processes found not to be profiled (not Go, excluded, goscope itself) so that
 * rescans and exec events do not open their binaries again. Entries of processes that are not
 * profiled are forgotten when a rescan no longer sees them; profiled ones when the CPU session
 * reports their exit or exec (at the cut, after their last window is stored). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "capture/block.h"
#include "goruntime/heap.h"
#include "capture/core.h"
#include "capture/cpu_session.h"
#include "daemon/agent.h"
#include "daemon/agent_impl.h"
#include "daemon/discover.h"
#include "kube/kube.h"
#include "procs/goprocs.h"
#include "procs/labels.h"
#include "procs/proc.h"
#include "push/push.h"
#include "store/store.h"

/* Labels of a profile: service, exe, go_version, module, node, container_id, the four
 * Kubernetes ones and the pod labels (--k8s-pod-labels). */
#define PPROF_LABELS_MAX (10 + PROC_LABELS_K8S_MAX)
/* The store row's: those and pid, comm. */
#define STORE_LABELS_MAX (PPROF_LABELS_MAX + 2)

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define logf_ agent_logf
void agent_logf(struct agent *a, enum agent_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!a->cfg->log || (lvl == AGENT_LOG_DEBUG && !a->cfg->verbose))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->cfg->log(a->cfg->log_arg, lvl, msg);
}

/* ---- the process table ---- */

static struct agent_proc **bucket(struct agent *a, pid_t pid)
{
	return &a->buckets[(unsigned)pid % PROC_BUCKETS];
}

/* The entry of (pid, start); with start == 0 the live (not ended) entry of pid. */
static struct agent_proc *proc_find(struct agent *a, pid_t pid, uint64_t start)
{
	for (struct agent_proc *p = *bucket(a, pid); p; p = p->next) {
		if (p->pid != pid)
			continue;
		if (start ? p->start_ticks == start : p->kind != PROC_ENDED)
			return p;
	}
	return NULL;
}

struct agent_proc *agent_proc_find(struct agent *a, pid_t pid, uint64_t start)
{
	return proc_find(a, pid, start);
}

static void proc_free(struct agent *a, struct agent_proc *p)
{
	if (p->block) {
		block_session_close(p->block);
		a->st.block_sessions--;
	}
	free(p->labels);
	free(p);
}

/* Unlinks and frees every entry pred selects. */
static void proc_sweep(struct agent *a, bool (*pred)(struct agent *a, struct agent_proc *p))
{
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		struct agent_proc **pp = &a->buckets[b];

		while (*pp) {
			struct agent_proc *p = *pp;

			if (pred(a, p)) {
				*pp = p->next;
				proc_free(a, p);
			} else {
				pp = &p->next;
			}
		}
	}
}

static struct agent_proc *proc_new(struct agent *a, pid_t pid, uint64_t start, enum proc_kind k)
{
	struct agent_proc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pid = pid;
	p->start_ticks = start;
	p->kind = k;
	p->seen_gen = a->scan_gen + 1; /* a rescan under way has seen it */
	p->next = *bucket(a, pid);
	*bucket(a, pid) = p;
	return p;
}

/* Ends the live entry of a profiled process: no longer a target; its entry stays until the
 * cut that stores its last window. */
static void proc_end(struct agent *a, struct agent_proc *p)
{
	if (p->kind != PROC_PROFILED)
		return;
	p->kind = PROC_ENDED;
	a->st.processes_gone++;
	a->st.processes_now--;
	logf_(a, AGENT_LOG_INFO, "pid %d (%s) gone", p->pid, p->labels->comm);
}

/* ---- deciding what to profile ---- */

static uint64_t exe_hash(const struct stat *st)
{
	return ((uint64_t)st->st_ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)st->st_dev) >> 17;
}

static struct exe_slot *exe_slot(struct agent *a, const struct stat *st)
{
	return &a->not_go[exe_hash(st) % EXE_CACHE_SLOTS];
}

static struct go_exe_slot *go_exe_slot(struct agent *a, const struct stat *st)
{
	return &a->go_exes[exe_hash(st) % GO_EXE_CACHE_SLOTS];
}

static bool exe_same(const struct exe_slot *e, const struct stat *st)
{
	return e->valid && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
	       e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static struct exe_slot exe_id(const struct stat *st)
{
	return (struct exe_slot){.dev = st->st_dev,
				 .ino = st->st_ino,
				 .size = st->st_size,
				 .mtime = st->st_mtim,
				 .ctime = st->st_ctim,
				 .valid = true};
}

/* goproc_inspect, with the build facts of an executable seen before taken from the cache
 * (the process's own pid, comm and exe path are read). 1 Go, 0 not, -errno. */
static int inspect(struct agent *a, pid_t pid, const struct stat *st, struct goproc *g,
		   struct gs_error *err)
{
	struct go_exe_slot *gs = st ? go_exe_slot(a, st) : NULL;
	char link[64];
	ssize_t n;
	int rc;

	if (gs && exe_same(&gs->id, st)) {
		*g = gs->facts;
		g->pid = pid;
		snprintf(link, sizeof(link), "%s/%d/exe", a->proc_root, pid);
		n = readlink(link, g->exe, sizeof(g->exe) - 1);
		if (n < 0)
			return gs_error_set(err, -ESRCH, "pid %d exited", pid);
		g->exe[n] = '\0';
		proc_comm(a->proc_root, pid, g->comm, sizeof(g->comm));
		return 1;
	}
	rc = goproc_inspect(a->proc_root, pid, g, err);
	if (st && rc == 0)
		*exe_slot(a, st) = exe_id(st);
	if (gs && rc == 1) {
		gs->id = exe_id(st);
		gs->facts = *g;
		gs->facts.pid = 0;
		gs->facts.comm[0] = gs->facts.exe[0] = '\0';
	}
	return rc;
}

static bool wants_block(struct agent *a, const struct proc_labels *l)
{
	if (a->cfg->block_all)
		return true;
	if (l->k8s_block) /* the pod annotation goscope.io/block: "true" */
		return true;
	return a->cfg->block_filter && proc_filter_match(a->cfg->block_filter, l);
}

static void start_block(struct agent *a, struct agent_proc *p)
{
	struct block_config bc = {
		.pid = p->pid,
		.max_overhead_pct = a->cfg->block_max_overhead_pct,
	};
	struct gs_error err = {0};
	int rc = block_session_open(&bc, &p->block, &err);

	if (rc < 0) {
		p->block = NULL;
		a->st.block_failures++;
		p->block_failed = true;
		logf_(a, AGENT_LOG_ERROR, "pid %d (%s): no blocking profile: %s", p->pid,
		      p->labels->comm, err.msg);
		return;
	}
	a->st.block_sessions++;
	if (p->labels->k8s_block)
		logf_(a, AGENT_LOG_INFO, "pid %d (%s): blocking profiles (pod annotation %s)",
		      p->pid, p->labels->comm, KUBE_ANNOTATION_BLOCK);
}

/* A process that may be new (exec: it just exec'd, so the same (pid, start) may run another
 * program now): inspect it, and profile it when it is a Go process the filters let through.
 * Every outcome is remembered under (pid, start). The entry of what the pid ran before ends;
 * a CPU target stays a target when the new program is profiled too (the CPU session follows
 * execs itself) and is removed otherwise. */
static void consider(struct agent *a, pid_t pid, uint64_t start, bool exec)
{
	struct gs_error err = {0};
	struct agent_proc *old = proc_find(a, pid, 0), *p;
	struct proc_labels *l = NULL;
	bool was_target = false;
	struct goproc g;
	struct stat st;
	char exe[64];
	bool have_stat;
	int rc;

	if (old && old->start_ticks == start && !exec)
		return;
	if (old) {
		was_target = old->kind == PROC_PROFILED;
		if (was_target)
			proc_end(a, old);
		else
			old->kind = PROC_ENDED; /* freed at the next cut */
	}
	if (pid == a->self)
		goto ignore;
	snprintf(exe, sizeof(exe), "%s/%d/exe", a->proc_root, pid);
	have_stat = stat(exe, &st) == 0;
	if (have_stat && exe_same(exe_slot(a, &st), &st))
		goto ignore;
	rc = inspect(a, pid, have_stat ? &st : NULL, &g, &err);
	if (rc <= 0) {
		/* Not Go, gone, or unreadable (said when it is not just gone). */
		if (rc < 0 && rc != -ESRCH && rc != -ENOENT)
			logf_(a, AGENT_LOG_DEBUG, "not profiled: %s", err.msg);
		goto ignore;
	}
	l = calloc(1, sizeof(*l));
	if (!l || proc_labels_read(a->proc_root, &g, a->cfg->node, l, &err) < 0 ||
	    l->start_ticks != start)
		goto ignore;
	kube_label_proc(a->cfg->kube, l);
	if (a->cfg->filter && !proc_filter_match(a->cfg->filter, l)) {
		a->st.excluded++;
		logf_(a, AGENT_LOG_DEBUG, "pid %d (%s) excluded", pid, l->comm);
		goto ignore;
	}
	rc = cpu_session_add_target(a->cpu, pid, &err); /* a no-op for a current target */
	if (rc < 0) {
		if (rc == -ENOSPC)
			a->st.not_profiled++;
		if (rc != -ESRCH)
			logf_(a, AGENT_LOG_ERROR, "pid %d (%s) not profiled: %s", pid, l->comm,
			      err.msg);
		goto ignore;
	}
	p = proc_new(a, pid, start, PROC_PROFILED);
	if (!p) {
		cpu_session_remove_target(a->cpu, pid);
		free(l);
		return;
	}
	p->labels = l;
	a->st.processes_found++;
	a->st.processes_now++;
	logf_(a, AGENT_LOG_INFO, "profiling pid %d (%s, service %s, %s)", pid, l->comm, l->service,
	      l->go_version[0] ? l->go_version : "go version unknown");
	if (wants_block(a, l))
		start_block(a, p);
	return;
ignore:
	free(l);
	if (was_target)
		cpu_session_remove_target(a->cpu, pid);
	proc_new(a, pid, start, PROC_IGNORED);
}

/* discover_poll reports scans' new processes (known() said no) and every exec. */
static void on_found(void *arg, pid_t pid, uint64_t start)
{
	struct agent *a = arg;

	consider(a, pid, start, proc_find(a, pid, start) != NULL);
}

static bool on_known(void *arg, pid_t pid, uint64_t start)
{
	struct agent *a = arg;
	struct agent_proc *p = proc_find(a, pid, start);

	if (!p)
		return false;
	p->seen_gen = a->scan_gen + 1; /* the rescan under way */
	return true;
}

static bool unseen_ignored(struct agent *a, struct agent_proc *p)
{
	return p->kind == PROC_IGNORED && p->seen_gen < a->scan_gen;
}

static bool is_ended(struct agent *a, struct agent_proc *p)
{
	(void)a;
	return p->kind == PROC_ENDED && !p->block;
}

/* ---- windows ---- */

/* The Kubernetes labels of l that are known (agent/kube/): namespace, pod, container, workload
 * and the pod labels named by --k8s-pod-labels. */
static size_t k8s_labels(const struct proc_labels *l, struct profile_label *out)
{
	const struct {
		const char *key, *value;
	} k[] = {{LABEL_NAMESPACE, l->k8s_namespace},
		 {LABEL_POD, l->k8s_pod},
		 {LABEL_CONTAINER_NAME, l->k8s_container},
		 {LABEL_WORKLOAD, l->k8s_workload}};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (k[i].value[0])
			out[n++] = (struct profile_label){.key = k[i].key, .str = k[i].value};
	for (size_t i = 0; i < l->k8s_nlabels && i < PROC_LABELS_K8S_MAX; i++)
		out[n++] = (struct profile_label){.key = l->k8s_labels[i].key,
						  .str = l->k8s_labels[i].value};
	return n;
}

/* The labels every profile of p carries (pid and comm come from the sessions' samples). */
static size_t pprof_labels(const struct proc_labels *l, struct profile_label *out)
{
	size_t n = 0;

	out[n++] = (struct profile_label){.key = LABEL_SERVICE, .str = l->service};
	out[n++] = (struct profile_label){.key = LABEL_EXE, .str = l->exe};
	out[n++] = (struct profile_label){.key = LABEL_GO_VERSION, .str = l->go_version};
	out[n++] = (struct profile_label){.key = LABEL_MODULE, .str = l->module};
	out[n++] = (struct profile_label){.key = LABEL_NODE, .str = l->node};
	if (l->container_id[0])
		out[n++] = (struct profile_label){.key = LABEL_CONTAINER, .str = l->container_id};
	n += k8s_labels(l, out + n);
	return n;
}

/* Labels the profile and stores it as a row of the window [start, end). */
static void store_profile(struct agent *a, const char *type, const struct proc_labels *l,
			  struct profile *prof, int64_t start, int64_t end)
{
	struct profile_label pl[PPROF_LABELS_MAX], kl[PPROF_LABELS_MAX];
	struct store_label sl[STORE_LABELS_MAX];
	struct gs_error err = {0};
	char pid[24];
	size_t n = pprof_labels(l, pl), ns = 0;
	int rc;

	if (*a->cfg->stop >= 2) {
		/* Told to exit at once: nothing more is stored (still counted). */
		a->st.profiles_dropped++;
		return;
	}
	if (profile_add_labels_all(prof, pl, n, &err) < 0)
		goto drop;
	snprintf(pid, sizeof(pid), "%d", l->pid);
	sl[ns++] = (struct store_label){LABEL_SERVICE, l->service};
	sl[ns++] = (struct store_label){LABEL_PID, pid};
	sl[ns++] = (struct store_label){LABEL_COMM, l->comm};
	sl[ns++] = (struct store_label){LABEL_EXE, l->exe};
	sl[ns++] = (struct store_label){LABEL_GO_VERSION, l->go_version};
	sl[ns++] = (struct store_label){LABEL_MODULE, l->module};
	sl[ns++] = (struct store_label){LABEL_NODE, l->node};
	if (l->container_id[0])
		sl[ns++] = (struct store_label){LABEL_CONTAINER, l->container_id};
	for (size_t i = 0, nk = k8s_labels(l, kl); i < nk; i++)
		sl[ns++] = (struct store_label){kl[i].key, kl[i].str};
	rc = store_put(a->store,
		       &(struct store_window){.type = type,
					      .service = l->service,
					      .pid = l->pid,
					      .start_ticks = l->start_ticks,
					      .start_ns = start,
					      .end_ns = end,
					      .labels = sl,
					      .nlabels = ns},
		       prof, &err);
	if (rc == 0) {
		a->st.profiles_stored++;
		a->store_error[0] = '\0';
		return;
	}
	snprintf(a->store_error, sizeof(a->store_error), "%s", err.msg);
drop:
	a->st.profiles_dropped++;
	/* Every drop is counted; the message is rate-limited so a full disk does not flood. */
	if (capture_monotonic_ns() - a->last_drop_log >= LOG_EVERY_NS || !a->last_drop_log) {
		a->last_drop_log = capture_monotonic_ns();
		logf_(a, AGENT_LOG_ERROR, "%s profile of pid %d dropped (%llu dropped so far): %s",
		      type, l->pid, (unsigned long long)a->st.profiles_dropped, err.msg);
	}
}

/* The entry a window's per-process record belongs to: an image that ended by an exec is the
 * ended entry of (pid, start); any other, the live entry (else an ended one: an exit). */
static struct agent_proc *window_owner(struct agent *a, const struct cpu_window_proc *wp)
{
	struct agent_proc *live = NULL, *ended = NULL;

	for (struct agent_proc *p = *bucket(a, wp->pid); p; p = p->next) {
		if (p->pid != wp->pid || p->start_ticks != wp->start_ticks)
			continue;
		if (p->kind == PROC_ENDED) {
			if (!ended)
				ended = p;
		} else if (!live) {
			live = p;
		}
	}
	if (wp->exec)
		return ended ? ended : live;
	return live ? live : ended;
}

static void cut_cpu(struct agent *a, int64_t start, int64_t end)
{
	struct cpu_window w = {0};
	struct gs_error err = {0};

	if (!a->cpu)
		return;
	if (cpu_session_cut(a->cpu, &w, &err) < 0) {
		logf_(a, AGENT_LOG_ERROR, "CPU window lost: %s", err.msg);
		return;
	}
	a->st.samples += w.stats.received;
	a->st.sample_drops += w.stats.ringbuf_drops + w.stats.rejected.n;
	/* An exec of a target the exec watcher did not report (its record lost): the entry of
	 * the old program is still the live one; end it and inspect the new program now. */
	for (size_t i = 0; i < w.nprocs; i++) {
		const struct cpu_window_proc *wp = &w.procs[i];
		struct agent_proc *p = window_owner(a, wp);

		if (wp->exec && p && p->kind == PROC_PROFILED)
			consider(a, wp->pid, wp->start_ticks, true);
	}
	for (size_t i = 0; i < w.nprocs; i++) {
		struct cpu_window_proc *wp = &w.procs[i];
		struct agent_proc *p = window_owner(a, wp);

		if (wp->prof && profile_sample_count(wp->prof)) {
			if (p && p->labels)
				store_profile(a, "cpu", p->labels, wp->prof, start, end);
			else
				a->st.unattributed++;
		}
		if (wp->ended && !wp->exec && p && p->kind == PROC_PROFILED)
			proc_end(a, p);
	}
	if (w.stats.ringbuf_drops)
		logf_(a, AGENT_LOG_ERROR, "%llu CPU samples lost (ring buffer full)",
		      (unsigned long long)w.stats.ringbuf_drops);
	if (w.stats.rejected.n)
		logf_(a, AGENT_LOG_ERROR, "%llu CPU samples left out as malformed (a bug): %s",
		      (unsigned long long)w.stats.rejected.n, w.stats.rejected.why);
	cpu_window_free(&w);
}

/* --heap: the heap profile of p as of the end of its last GC cycle, read from its memory
 * (no probe, no trap). A process that has none to read (MemProfileRate 0, Go too old, the
 * variables not found) is said so once and not read again; other failures are counted and
 * logged like drops (rate-limited). */
static void cut_heap_one(struct agent *a, struct agent_proc *p, int64_t start, int64_t end)
{
	struct profile *prof = NULL;
	struct gs_error err = {0};
	int rc;

	if (p->no_heap || !p->labels)
		return;
	rc = heap_reader_read(a->heap, p->pid, HEAP_KIND_HEAP, &prof, NULL, &err);
	if (rc == 0) {
		if (profile_sample_count(prof))
			store_profile(a, "heap", p->labels, prof, start, end);
		profile_free(prof);
		return;
	}
	if (rc == -ESRCH)
		return; /* exited: the CPU session sees its end */
	if (rc == -ENODATA || rc == -ENOENT || rc == -EPROTONOSUPPORT || rc == -ENOEXEC) {
		p->no_heap = true;
		logf_(a, AGENT_LOG_INFO, "pid %d (%s): no heap profile: %s", p->pid,
		      p->labels->comm, err.msg);
		return;
	}
	a->st.heap_failures++;
	if (capture_monotonic_ns() - a->last_heap_log >= LOG_EVERY_NS || !a->last_heap_log) {
		a->last_heap_log = capture_monotonic_ns();
		logf_(a, AGENT_LOG_ERROR, "heap profile of pid %d lost (%llu so far): %s", p->pid,
		      (unsigned long long)a->st.heap_failures, err.msg);
	}
}

/* final: the agent stops (every probe is removed and still-blocked goroutines reported). */
static void cut_block_one(struct agent *a, struct agent_proc *p, int64_t start, int64_t end,
			  bool final)
{
	struct block_stats bs;
	struct profile *prof = NULL;
	struct gs_error err = {0};
	bool alive = block_session_target_alive(p->block);
	bool last = final || !alive || p->kind != PROC_PROFILED;

	memset(&bs, 0, sizeof(bs));
	if (block_session_cut(p->block, last, &prof, &bs, &err) < 0) {
		a->st.profiles_dropped++;
		logf_(a, AGENT_LOG_ERROR, "pid %d: block window lost: %s", p->pid, err.msg);
	} else if (prof && profile_sample_count(prof)) {
		store_profile(a, "block", p->labels, prof, start, end);
	}
	if (bs.rejected.n)
		logf_(a, AGENT_LOG_ERROR,
		      "pid %d: %llu block samples left out as malformed (a bug): %s", p->pid,
		      (unsigned long long)bs.rejected.n, bs.rejected.why);
	profile_free(prof);
	if (last || bs.target_exited || bs.target_exec) {
		block_session_close(p->block);
		p->block = NULL;
		a->st.block_sessions--;
	}
}

/* Pod metadata may arrive after a process was found (the API server was late or down): the
 * labels of every profiled process are looked up again before its windows are stored, and a
 * pod annotated goscope.io/block: "true" gets its blocking profiles from then on. */
static void refresh_kube(struct agent *a)
{
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		for (struct agent_proc *p = a->buckets[b]; p; p = p->next) {
			if (!p->labels)
				continue;
			kube_label_proc(a->cfg->kube, p->labels);
			if (p->kind == PROC_PROFILED && !p->block && !p->block_failed &&
			    p->labels->k8s_block)
				start_block(a, p);
		}
	}
}

/* Undelivered windows deleted by retention or --max-disk (while storing or maintaining):
 * the pusher counts them as lost, and the log says so (rate-limited). */
static void note_lost(struct agent *a)
{
	uint64_t lost = store_rows_lost(a->store), n = lost - a->rows_lost_seen;

	if (!a->push || n == 0)
		return;
	a->rows_lost_seen = lost;
	push_add_lost(a->push, n);
	if (capture_monotonic_ns() - a->last_lost_log >= LOG_EVERY_NS || !a->last_lost_log) {
		a->last_lost_log = capture_monotonic_ns();
		logf_(a, AGENT_LOG_ERROR,
		      "push: %llu undelivered windows deleted by retention (--retention/--max-disk)"
		      " and lost, %llu in all",
		      (unsigned long long)n, (unsigned long long)lost);
	}
}

/* The pusher's log lines go to the agent's log. */
static void push_log(void *arg, enum push_log_level level, const char *msg)
{
	struct agent *a = arg;

	logf_(a,
	      level == PUSH_LOG_ERROR  ? AGENT_LOG_ERROR
	      : level == PUSH_LOG_INFO ? AGENT_LOG_INFO
				       : AGENT_LOG_DEBUG,
	      "%s", msg);
}

static void cut_window(struct agent *a, int64_t end, bool final)
{
	int64_t start = a->window_start_wall;
	struct gs_error err = {0};

	if (a->cfg->kube)
		refresh_kube(a);
	cut_cpu(a, start, end);
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		for (struct agent_proc *p = a->buckets[b]; p; p = p->next) {
			if (p->block)
				cut_block_one(a, p, start, end, final);
			if (a->heap && p->kind == PROC_PROFILED && *a->cfg->stop < 2)
				cut_heap_one(a, p, start, end);
		}
	}
	a->st.windows++;
	a->window_start_wall = end;
	proc_sweep(a, is_ended);
	if (!final && store_maintain(a->store, wall_ns(), &err) < 0)
		logf_(a, AGENT_LOG_ERROR, "store maintenance: %s", err.msg);
	note_lost(a);
	push_wake(a->push);
	if (a->cfg->log && a->cfg->verbose) {
		struct store_stats ss;

		store_stats(a->store, &ss);
		logf_(a, AGENT_LOG_DEBUG,
		      "window %llu: %llu processes, %llu profiles stored, %llu dropped, %llu "
		      "samples; store %llu rows, %llu + %llu WAL bytes, cache %llu bytes",
		      (unsigned long long)a->st.windows, (unsigned long long)a->st.processes_now,
		      (unsigned long long)a->st.profiles_stored,
		      (unsigned long long)a->st.profiles_dropped, (unsigned long long)a->st.samples,
		      (unsigned long long)ss.rows, (unsigned long long)ss.db_bytes,
		      (unsigned long long)ss.wal_bytes, (unsigned long long)ss.cache_bytes);
	}
}

static void tick_blocks(struct agent *a)
{
	uint64_t now = capture_monotonic_ns();

	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		for (struct agent_proc *p = a->buckets[b]; p; p = p->next) {
			struct gs_error err = {0};

			if (p->block && block_session_tick(p->block, now, &err) < 0)
				logf_(a, AGENT_LOG_DEBUG, "pid %d: %s", p->pid, err.msg);
		}
	}
}

static void after_poll(struct agent *a)
{
	uint64_t scans = discover_rescans(a->disc);

	if (scans != a->scan_gen) {
		a->scan_gen = scans;
		proc_sweep(a, unseen_ignored);
	}
}

static int64_t next_boundary(int64_t now, uint64_t window)
{
	return (now / (int64_t)window + 1) * (int64_t)window;
}

/* The BPF side: the node-wide CPU session and the exec watcher (with rescans only when the
 * watcher cannot load). */
static int open_bpf(struct agent *a, struct gs_error *err)
{
	const struct agent_config *c = a->cfg;
	struct cpu_session_config cc = {.frequency = c->frequency, .reap_ms = REAP_MS};
	struct discover_config dc = {.proc_root = a->proc_root,
				     .rescan_ms = c->rescan_ms,
				     .no_exec_watch = c->no_exec_watch};
	int rc;

	rc = cpu_session_open(&cc, &a->cpu, err);
	if (rc < 0)
		return rc;
	rc = discover_open(&dc, &a->disc, err);
	if (rc < 0 && !dc.no_exec_watch) {
		logf_(a, AGENT_LOG_ERROR, "no exec watcher (%s): finding new processes by rescans",
		      err->msg);
		gs_error_clear(err);
		dc.no_exec_watch = true;
		if (!dc.rescan_ms)
			dc.rescan_ms = 1000;
		rc = discover_open(&dc, &a->disc, err);
	}
	if (rc < 0) {
		cpu_session_close(a->cpu);
		a->cpu = NULL;
		return rc;
	}
	if (a->epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};

		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, cpu_session_fd(a->cpu), &ev) < 0)
			return gs_error_set(err, -errno, "epoll: %s", strerror(errno));
	}
	a->bpf_error[0] = '\0';
	return 0;
}

/* Loads BPF, or with an API, remembers why it could not (for /healthz) and goes on: the loop
 * tries again every AGENT_BPF_RETRY_NS. */
static int try_bpf(struct agent *a, struct gs_error *err)
{
	int rc = open_bpf(a, err);

	if (rc == 0 || !a->api)
		return rc;
	snprintf(a->bpf_error, sizeof(a->bpf_error), "%s", err->msg);
	logf_(a, AGENT_LOG_ERROR,
	      "BPF failed to load: %s (retrying every %llu s; /healthz answers 503)", err->msg,
	      AGENT_BPF_RETRY_NS / 1000000000ULL);
	gs_error_clear(err);
	return 0;
}

static void api_log(void *arg, const char *msg)
{
	logf_(arg, AGENT_LOG_ERROR, "api: %s", msg);
}

static int open_all(struct agent *a, struct gs_error *err)
{
	const struct agent_config *c = a->cfg;
	bool push = c->push && c->push->url;
	struct store_config sc = {.dir = c->data_dir,
				  .retention_ns = c->retention_ns,
				  .max_disk_bytes = c->max_disk_bytes,
				  .rollup_after_ns = c->rollup_after_ns,
				  .spool = push};
	int rc;

	rc = store_open(&sc, &a->store, err);
	if (rc < 0)
		return gs_error_prefix(err, "store %s", c->data_dir);
	if (push) {
		/* After the store: its schema is current when the pusher opens its own handle. */
		rc = push_start(c->push, c->data_dir, c->node, push_log, a, &a->push, err);
		if (rc < 0)
			return rc;
	}
	if (c->api) {
		struct api_config ac = *c->api;
		struct epoll_event ev = {.events = EPOLLIN};

		ac.data_dir = c->data_dir;
		ac.log = api_log;
		ac.log_arg = a;
		rc = api_start(&ac, &a->api, err);
		if (rc < 0)
			return rc;
		a->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (a->epfd < 0 || epoll_ctl(a->epfd, EPOLL_CTL_ADD, api_fd(a->api), &ev) < 0)
			return gs_error_set(err, -errno, "epoll: %s", strerror(errno));
		logf_(a, AGENT_LOG_INFO, "API on %s (port %u)", c->api->listen, api_port(a->api));
		if (c->on_listen)
			c->on_listen(c->log_arg, api_port(a->api));
	}
	return try_bpf(a, err);
}

/* Waits up to timeout_ms for samples or API requests, then drains the CPU ring. */
static int wait_events(struct agent *a, int timeout_ms, struct gs_error *err)
{
	struct epoll_event ev[4];

	if (a->epfd < 0)
		return cpu_session_poll(a->cpu, timeout_ms, err);
	if (epoll_wait(a->epfd, ev, 4, timeout_ms) < 0 && errno != EINTR)
		return gs_error_set(err, -errno, "epoll: %s", strerror(errno));
	return a->cpu ? cpu_session_poll(a->cpu, 0, err) : 0;
}

static void close_all(struct agent *a)
{
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		while (a->buckets[b]) {
			struct agent_proc *p = a->buckets[b];

			a->buckets[b] = p->next;
			proc_free(a, p);
		}
	}
	discover_close(a->disc);
	cpu_session_close(a->cpu);
	api_stop(a->api);
	heap_reader_free(a->heap);
	a->heap = NULL;
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->push)
		push_get_stats(a->push, &a->st.push);
	push_stop(a->push);
	store_close(a->store);
}

int agent_run(const struct agent_config *cfg, struct agent_stats *stats, struct gs_error *err)
{
	struct agent *a = calloc(1, sizeof(*a));
	int64_t next;
	uint64_t bpf_tried = capture_monotonic_ns();
	bool ready = false;
	int rc;

	if (!a)
		return gs_error_set(err, -ENOMEM, "out of memory");
	if (cfg->window_ns < AGENT_MIN_WINDOW_NS || cfg->window_ns > AGENT_MAX_WINDOW_NS) {
		free(a);
		return gs_error_set(err, -EINVAL, "window must be between 1s and 1h");
	}
	a->cfg = cfg;
	a->epfd = -1;
	a->proc_root = cfg->proc_root ? cfg->proc_root : "/proc";
	a->self = getpid();
	rc = open_all(a, err);
	if (rc < 0)
		goto out;
	if (cfg->heap) {
		struct gs_error herr = {0};

		if (heap_reader_new(&a->heap, &herr) < 0)
			logf_(a, AGENT_LOG_ERROR, "no heap profiles: %s", herr.msg);
	}
	a->window_start_wall = wall_ns();
	next = next_boundary(a->window_start_wall, cfg->window_ns);
	logf_(a, AGENT_LOG_INFO, "profiling at %u Hz, windows of %.0f s, store %s/%s",
	      cfg->frequency, cfg->window_ns / 1e9, cfg->data_dir, STORE_DB_NAME);
	while (!*cfg->stop) {
		int64_t now = wall_ns(), left_ms;
		int timeout;

		if (now >= next) {
			cut_window(a, next, false);
			next = next_boundary(now, cfg->window_ns);
			continue;
		}
		if (!a->cpu && capture_monotonic_ns() - bpf_tried >= AGENT_BPF_RETRY_NS) {
			bpf_tried = capture_monotonic_ns();
			rc = try_bpf(a, err);
			if (rc < 0)
				break;
		}
		left_ms = (next - now) / 1000000 + 1;
		timeout = a->st.block_sessions || agent_api_has_block(a) ? POLL_BLOCK_MS
									 : POLL_IDLE_MS;
		if (left_ms < timeout)
			timeout = (int)left_ms;
		timeout = agent_api_timeout_ms(a, timeout);
		rc = wait_events(a, timeout, err);
		if (rc < 0)
			break;
		agent_api_serve(a);
		agent_api_tick(a);
		if (!a->cpu)
			continue;
		rc = discover_poll(a->disc, 0, on_known, on_found, a, err);
		if (rc < 0)
			break;
		after_poll(a);
		if (a->st.block_sessions)
			tick_blocks(a);
		if (!ready) {
			ready = true;
			if (cfg->on_ready)
				cfg->on_ready(cfg->log_arg);
		}
	}
	/* Running captures are answered with what they have; queued requests get a 503. */
	agent_api_finish_all(a);
	/* A first stop signal stores the window under way; a second one skips it. */
	if (rc == 0 && *cfg->stop < 2)
		cut_window(a, wall_ns(), true);
out:
	close_all(a);
	if (stats)
		*stats = a->st;
	free(a);
	return rc;
}
