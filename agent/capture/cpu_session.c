/* cpu_session.c — the long-lived CPU profiling session (see cpu_session.h): the userspace
 * side of bpf/cpu.bpf.c. Loads the skeleton and opens a cpu-clock perf event per online CPU
 * once, keeps the in-kernel target filter up to date, drains the ring buffer into the current
 * window (leaf frames repaired, stacks turned into locations by agent/stacks/) and cuts
 * windows into profiles. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/core.h"
#include "capture/cpu_session.h"
#include "cpu.skel.h"
#include "goscope/cpu.h"
#include "procs/proc.h"
#include "stacks/leaf.h"
#include "stacks/stacks.h"

#define NSEC_PER_SEC 1000000000ULL

/* A target process image, from cpu_session_add_target (or the exec that started it) to the
 * cut after it ended. */
struct cpu_target {
	pid_t pid;
	uint64_t start_ticks;  /* with the pid, the process's identity (pid reuse) */
	bool ended;	       /* out of the filter (removed, exited, exec'd); freed at the cut */
	bool exec;	       /* ended by an exec */
	struct stack_proc *sp; /* its image; closed once its last samples are drained */
	char comm[32];
	uint64_t samples;     /* this window */
	struct profile *prof; /* this window (per-process mode), created at its first sample */
};

/* An on-demand capture reading the session's samples (cpu_session.h). */
struct cpu_tap {
	pid_t pids[CPU_TAP_MAX_PIDS];
	size_t npids;
	struct profile *prof;
	uint64_t start_ns;     /* monotonic */
	int64_t start_wall_ns; /* the profile's time_nanos */
};

/* A growable array of targets. */
struct target_list {
	struct cpu_target *v;
	size_t n, cap;
};

struct cpu_session {
	struct cpu_session_config cfg;
	int64_t period_ns;
	struct cpu_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int nlinks;
	struct bpf_link *exec_link, *exit_link;
	struct stacks stacks; /* symbolizer, processes, kernel symbols: the session's life */
	struct golabels_cache labels; /* label sets of the samples, from BPF's labelsets map */

	/* Live targets and ended ones whose image may still get samples (searched per sample);
	 * ended images, closed, wait in done for the cut. */
	struct target_list targets, done;
	size_t nlive;
	size_t last; /* index of the last target found (samples come in runs of one pid) */
	uint64_t last_reap_ns;

	/* The current window. */
	struct profile *merged; /* merge mode, created at the first sample */
	struct cpu_window_stats win;
	uint64_t bpf_prev[CPU_STAT_COUNT]; /* BPF counters at the previous cut */

	unsigned bpf_loads, perf_events;
	size_t windows;

	struct cpu_tap *taps[CPU_SESSION_MAX_TAPS];
	size_t ntaps;

	uint64_t labels_lost; /* samples whose label set was gone from BPF (this window) */
	int error; /* first error inside the ring buffer callback, reported by poll/cut */
	struct gs_error cb_err;
	uint64_t locs[CPU_MAX_KERNEL_FRAMES + CPU_MAX_USER_FRAMES + 1];
};

static long perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group,
			    unsigned long flags)
{
	return syscall(SYS_perf_event_open, attr, pid, cpu, group, flags);
}

static struct cpu_target *list_push(struct target_list *l, const struct cpu_target *t)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct cpu_target *nv = realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = *t;
	return &l->v[l->n++];
}

static void list_free(struct target_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		profile_free(l->v[i].prof);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The live (not ended) target of pid, NULL when there is none. */
static struct cpu_target *find_live(struct cpu_session *s, pid_t pid)
{
	struct target_list *l = &s->targets;

	if (s->last < l->n && l->v[s->last].pid == pid && !l->v[s->last].ended)
		return &l->v[s->last];
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].pid == pid && !l->v[i].ended) {
			s->last = i;
			return &l->v[i];
		}
	}
	return NULL;
}

/* The image a sample of (pid, start) belongs to: the live target, or one that ended (removed)
 * and whose samples in flight are still being drained. NULL for a stray sample. */
static struct cpu_target *find_sampled(struct cpu_session *s, pid_t pid, uint64_t start)
{
	struct cpu_target *t = find_live(s, pid);

	if (t && t->start_ticks == start)
		return t;
	for (size_t i = s->targets.n; i-- > 0;) {
		t = &s->targets.v[i];
		if (t->pid == pid && t->start_ticks == start && t->sp)
			return t;
	}
	return NULL;
}

/* A profile with the session's sample types and period (same as `goscope cpu` writes). */
static struct profile *new_profile(const struct cpu_session *s)
{
	struct profile *p = profile_new();

	if (!p)
		return NULL;
	profile_add_sample_type(p, "samples", "count");
	profile_add_sample_type(p, "cpu", "nanoseconds");
	profile_set_default_sample_type(p, "cpu");
	profile_set_period(p, "cpu", "nanoseconds", s->period_ns);
	return p;
}

static int callback_error(struct cpu_session *s, int code)
{
	if (!s->error) {
		s->error = code;
		if (code == -ENOMEM)
			gs_error_set(&s->cb_err, code, "out of memory");
	}
	return code;
}

/* Puts (pid, start) in the in-kernel filter, with how to read its goroutines' labels (from
 * its image sp); flags: BPF_ANY, or BPF_EXIST to change an entry BPF still has. -errno
 * (-E2BIG when the map is full). */
static int filter_add(struct cpu_session *s, pid_t pid, uint64_t start, const struct stack_proc *sp,
		      __u64 flags)
{
	struct cpu_target_value v = {.start_ticks = start, .labels = sp->golabels};
	__u32 key = (__u32)pid;

	return bpf_map__update_elem(s->skel->maps.targets, &key, sizeof(key), &v, sizeof(v),
				    flags) < 0
		       ? -errno
		       : 0;
}

/* Takes pid out of the filter if the filter holds it for the process started at start (a
 * newer target of the pid, or BPF's own exit handling, may have replaced or removed it). */
static void filter_remove(struct cpu_session *s, pid_t pid, uint64_t start)
{
	struct cpu_target_value v;
	__u32 key = (__u32)pid;

	if (bpf_map__lookup_elem(s->skel->maps.targets, &key, sizeof(key), &v, sizeof(v), 0) == 0 &&
	    v.start_ticks == start)
		bpf_map__delete_elem(s->skel->maps.targets, &key, sizeof(key), 0);
}

/* Marks t ended (its image stays open until its samples are drained: close_ended). */
static void end_target(struct cpu_session *s, struct cpu_target *t, bool filter)
{
	if (t->ended)
		return;
	if (filter)
		filter_remove(s, t->pid, t->start_ticks);
	t->ended = true;
	s->nlive--;
}

/* A new live entry for the image pid runs now (its binaries are opened now: they may be
 * gone once it exits). Not put in the filter. */
static struct cpu_target *new_target(struct cpu_session *s, pid_t pid, uint64_t start)
{
	struct cpu_target t = {.pid = pid, .start_ticks = start};

	t.sp = stacks_open(&s->stacks, pid);
	if (!t.sp)
		return NULL;
	memcpy(t.comm, t.sp->comm, sizeof(t.comm));
	if (!list_push(&s->targets, &t)) {
		stacks_close(&s->stacks, t.sp);
		return NULL;
	}
	s->nlive++;
	return &s->targets.v[s->targets.n - 1];
}

/* An exec or exit record of a target (see cpu.h). */
static int on_event(struct cpu_session *s, const struct cpu_event *ev)
{
	struct cpu_target *t = find_live(s, (pid_t)ev->pid);

	if (!t || t->start_ticks != ev->start_ticks)
		return 0; /* not (or no longer) a target: removed meanwhile */
	if (ev->kind == CPU_EVENT_EXIT) {
		s->win.exits++;
		end_target(s, t, false);	 /* BPF took it out of the map */
		stacks_close(&s->stacks, t->sp); /* every sample of it came before the record */
		t->sp = NULL;
	} else if (ev->kind == CPU_EVENT_EXEC) {
		/* Samples from here on are of the new image: the pid stays in the filter, under a
		 * new entry with the new program's maps, binaries and comm. */
		s->win.execs++;
		t->exec = true;
		end_target(s, t, false);
		stacks_close(&s->stacks, t->sp);
		t->sp = NULL;
		t = new_target(s, (pid_t)ev->pid, ev->start_ticks);
		if (!t)
			return callback_error(s, -ENOMEM);
		/* BPF stopped reading labels at the exec: the new image's layout. */
		filter_add(s, t->pid, t->start_ticks, t->sp, BPF_EXIST);
	}
	return 0;
}

/* One sample (its stacks already repaired) into prof: its locations are made in prof (each
 * profile has its own location table); labels: the goroutine's pprof labels (nset). -errno
 * with s->cb_err set. */
static int add_sample(struct cpu_session *s, struct profile *prof, struct stack_proc *sp,
		      const struct cpu_sample *cs, size_t nk, const uint64_t *user, size_t nu,
		      const char *comm, const struct profile_label *set, size_t nset)
{
	struct profile_label labels[2 + GS_LABELS_MAX];
	int64_t values[2];
	size_t nl = 0;

	stacks_set_profile(&s->stacks, prof);
	for (size_t i = 0; i < nk; i++) {
		uint64_t id = stacks_kernel_location(&s->stacks, cs->kernel[i]);

		if (id)
			s->locs[nl++] = id;
	}
	nl = stacks_user_stack(&s->stacks, sp, user, nu, s->locs, nl);
	values[0] = 1;
	values[1] = s->period_ns;
	labels[0] = (struct profile_label){.key = "pid", .num = cs->pid};
	labels[1] = (struct profile_label){.key = "comm", .str = comm};
	if (nset > GS_LABELS_MAX)
		nset = GS_LABELS_MAX;
	if (nset)
		memcpy(labels + 2, set, nset * sizeof(*set));
	return profile_add_sample(prof, s->locs, nl, values, labels, 2 + nset, &s->cb_err);
}

static bool tap_wants(const struct cpu_tap *tap, pid_t pid)
{
	for (size_t i = 0; i < tap->npids; i++)
		if (tap->pids[i] == pid)
			return true;
	return false;
}

/* add_sample failed with rc: a sample the profile refused is left out and counted (one bad
 * sample must not end the session, nor the agent that runs on it); anything else ends the
 * callback. */
static int sample_failed(struct cpu_session *s, int rc)
{
	return profile_reject(&s->win.rejected, rc, &s->cb_err) < 0
		       ? callback_error(s, s->cb_err.code)
		       : 0;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct cpu_session *s = ctx;
	const struct cpu_sample *cs = data;
	uint64_t user[CPU_MAX_USER_FRAMES];
	const struct profile_label *pl = NULL;
	struct leaf_regs regs;
	enum leaf_result leaf;
	struct cpu_target *t;
	struct stack_proc *sp;
	struct profile **pp;
	size_t nu, nk;
	int nset, rc;

	if (size == sizeof(struct cpu_event))
		return on_event(s, data);
	if (size < sizeof(*cs))
		return 0;
	t = find_sampled(s, (pid_t)cs->pid, cs->start_ticks);
	sp = t ? t->sp : NULL;
	if (!sp) {
		s->win.stray++; /* in flight when its target was cut away */
		return 0;
	}
	s->win.received++;
	pp = s->cfg.merge ? &s->merged : &t->prof;
	if (!*pp && !(*pp = new_profile(s)))
		return callback_error(s, -ENOMEM);

	nk = cs->n_kernel <= CPU_MAX_KERNEL_FRAMES ? cs->n_kernel : CPU_MAX_KERNEL_FRAMES;
	nu = cs->n_user <= CPU_MAX_USER_FRAMES ? cs->n_user : CPU_MAX_USER_FRAMES;
	memcpy(user, cs->user, nu * sizeof(*user));
	regs = (struct leaf_regs){
		.ip = cs->ip,
		.sp = cs->sp,
		.bp = cs->bp,
		.window = (const uint64_t *)cs->window,
		.window_words = cs->flags & CPU_SAMPLE_NO_WINDOW      ? 0
				: cs->flags & CPU_SAMPLE_WINDOW_SHORT ? CPU_STACK_WINDOW_MIN_WORDS
								      : CPU_STACK_WINDOW_WORDS,
	};
	nu = stacks_leaf_repair(sp->proc, &regs, user, nu, CPU_MAX_USER_FRAMES, &leaf);
	if (leaf == LEAF_FIXED)
		s->win.leaf_fixed++;
	else if (leaf == LEAF_UNRECOVERED)
		s->win.leaf_unrecovered++;

	nset = cs->labels_id ? golabels_cache_get(&s->labels, cs->labels_id, &pl) : 0;
	if (nset < 0) {
		s->labels_lost++; /* evicted from BPF before it was read */
		nset = 0;
	}
	rc = add_sample(s, *pp, sp, cs, nk, user, nu, t->comm, pl, (size_t)nset);
	if (rc < 0)
		return sample_failed(s, rc);
	t->samples++;
	for (size_t i = 0; i < s->ntaps; i++) {
		if (!tap_wants(s->taps[i], (pid_t)cs->pid))
			continue;
		rc = add_sample(s, s->taps[i]->prof, sp, cs, nk, user, nu, t->comm, pl,
				(size_t)nset);
		if (rc < 0)
			return sample_failed(s, rc);
	}
	return 0;
}

static int open_events(struct cpu_session *s, struct gs_error *err)
{
	int ncpus = capture_ncpus();
	struct perf_event_attr attr;

	if (ncpus < 0)
		return gs_error_set(err, ncpus, "cannot count CPUs");
	s->links = calloc((size_t)ncpus, sizeof(*s->links));
	if (!s->links)
		return gs_error_set(err, -ENOMEM, "out of memory");
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = 1;
	attr.sample_freq = s->cfg.frequency;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		long fd = perf_event_open(&attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		struct bpf_link *link;

		if (fd < 0) {
			if (errno == ENODEV)
				continue; /* offline CPU */
			return capture_bpf_error(err, -errno, "perf_event_open");
		}
		s->perf_events++;
		link = bpf_program__attach_perf_event(s->skel->progs.cpu_sample, (int)fd);
		if (!link) {
			int e = -errno;

			close((int)fd);
			return capture_bpf_error(err, e, "attach perf event");
		}
		s->links[s->nlinks++] = link;
	}
	if (s->nlinks == 0)
		return gs_error_set(err, -ENODEV, "no online CPU to sample");
	return 0;
}

static void start_window(struct cpu_session *s)
{
	memset(&s->win, 0, sizeof(s->win));
	s->win.start_ns = capture_monotonic_ns();
	s->win.start_wall_ns = capture_realtime_ns();
}

int cpu_session_open(const struct cpu_session_config *cfg, struct cpu_session **out,
		     struct gs_error *err)
{
	struct cpu_session *s;
	int rc;

	*out = NULL;
	if (cfg->frequency == 0 || cfg->frequency > NSEC_PER_SEC)
		return gs_error_set(err, -EINVAL, "bad frequency %u", cfg->frequency);
	s = calloc(1, sizeof(*s));
	if (!s)
		return gs_error_set(err, -ENOMEM, "out of memory");
	s->cfg = *cfg;
	if (!s->cfg.max_targets)
		s->cfg.max_targets = CPU_MAX_TARGETS;
	if (!s->cfg.reap_ms)
		s->cfg.reap_ms = CPU_SESSION_REAP_MS;
	s->period_ns = (int64_t)(NSEC_PER_SEC / cfg->frequency);
	rc = stacks_init(&s->stacks, NULL, cfg->kernel, err);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->skel = cpu_bpf__open();
	if (!s->skel) {
		rc = capture_bpf_error(err, -errno, "open BPF object cpu");
		goto fail;
	}
	s->skel->rodata->capture_kernel = cfg->kernel;
	s->skel->rodata->read_labels = !cfg->no_labels;
	rc = bpf_map__set_max_entries(s->skel->maps.targets, s->cfg.max_targets);
	if (rc < 0) {
		rc = gs_error_set(err, rc, "target map size %u: %s", s->cfg.max_targets,
				  strerror(-rc));
		goto fail;
	}
	rc = capture_bpf_load(s->skel->skeleton, "load BPF program cpu", err);
	if (rc < 0)
		goto fail;
	s->bpf_loads++;
	golabels_cache_init(&s->labels, bpf_map__fd(s->skel->maps.labelsets));
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.samples), on_sample, s, NULL);
	if (!s->rb) {
		rc = gs_error_set(err, -errno, "ring buffer: %s", strerror(errno));
		goto fail;
	}
	/* Exec and exit first: a target added from here on is followed through both. */
	s->exec_link = bpf_program__attach(s->skel->progs.cpu_exec);
	if (!s->exec_link) {
		rc = capture_bpf_error(err, -errno, "attach sched_process_exec");
		goto fail;
	}
	s->exit_link = bpf_program__attach(s->skel->progs.cpu_exit);
	if (!s->exit_link) {
		rc = capture_bpf_error(err, -errno, "attach sched_process_exit");
		goto fail;
	}
	for (size_t i = 0; i < cfg->npids; i++) {
		rc = cpu_session_add_target(s, cfg->pids[i], err);
		if (rc < 0)
			goto fail;
	}
	s->cfg.pids = NULL;
	s->cfg.npids = 0;
	rc = open_events(s, err);
	if (rc < 0)
		goto fail;
	start_window(s);
	s->last_reap_ns = s->win.start_ns;
	*out = s;
	return 0;
fail:
	cpu_session_close(s);
	return rc;
}

bool cpu_session_has_target(const struct cpu_session *s, pid_t pid)
{
	for (size_t i = 0; i < s->targets.n; i++) {
		if (s->targets.v[i].pid == pid && !s->targets.v[i].ended)
			return true;
	}
	return false;
}

int cpu_session_add_target(struct cpu_session *s, pid_t pid, struct gs_error *err)
{
	struct cpu_target *t;
	struct proc_stat st;
	int rc;

	if (pid <= 0)
		return gs_error_set(err, -EINVAL, "bad pid %d", pid);
	if (proc_stat_read("/proc", pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
		return gs_error_set(err, -ESRCH, "no process %d", pid);
	t = find_live(s, pid);
	if (t && t->start_ticks == st.start_ticks)
		return 0;
	if (t) /* the target exited and its pid is another process's now */
		end_target(s, t, true);
	if (s->nlive >= s->cfg.max_targets) {
		s->win.map_full++;
		return gs_error_set(err, -ENOSPC, "add target %d: target map full (%u targets)",
				    pid, s->cfg.max_targets);
	}
	t = new_target(s, pid, st.start_ticks);
	if (!t)
		return gs_error_set(err, -ENOMEM, "out of memory");
	rc = filter_add(s, pid, st.start_ticks, t->sp, BPF_ANY);
	if (rc < 0) {
		end_target(s, t, false);
		if (rc == -E2BIG || rc == -ENOSPC || rc == -ENOMEM) {
			s->win.map_full++;
			return gs_error_set(err, -ENOSPC, "add target %d: target map full: %s", pid,
					    strerror(-rc));
		}
		return gs_error_set(err, rc, "add target %d: %s", pid, strerror(-rc));
	}
	return 0;
}

void cpu_session_remove_target(struct cpu_session *s, pid_t pid)
{
	struct cpu_target *t = find_live(s, pid);

	if (t)
		end_target(s, t, true);
}

/* Closes the images of ended targets (their samples are drained by now) and moves them to
 * the done list, out of the per-sample search. */
static void close_ended(struct cpu_session *s)
{
	size_t j = 0;

	for (size_t i = 0; i < s->targets.n; i++) {
		struct cpu_target *t = &s->targets.v[i];

		if (!t->ended) {
			s->targets.v[j++] = *t;
			continue;
		}
		stacks_close(&s->stacks, t->sp);
		t->sp = NULL;
		if (!list_push(&s->done, t)) {
			/* No memory for its record: its samples go with it (its profile too). */
			profile_free(t->prof);
			callback_error(s, -ENOMEM);
		}
	}
	s->targets.n = j;
	s->last = 0;
}

/* Ends targets that exited without their exit record (gone, zombie, or pid reused). */
static void reap_exited(struct cpu_session *s)
{
	for (size_t i = 0; i < s->targets.n; i++) {
		struct cpu_target *t = &s->targets.v[i];
		struct proc_stat st;

		if (t->ended)
			continue;
		if (proc_stat_read("/proc", t->pid, &st) < 0 || st.state == 'Z' ||
		    st.state == 'X' || st.start_ticks != t->start_ticks) {
			s->win.exits++;
			end_target(s, t, true);
		}
	}
	s->last_reap_ns = capture_monotonic_ns();
}

/* Drains whatever the ring buffer holds. */
static int drain(struct cpu_session *s, int rc, struct gs_error *err)
{
	if (rc >= 0 || rc == -EINTR)
		rc = ring_buffer__consume(s->rb);
	if (s->error) {
		rc = s->error;
		s->error = 0;
		return gs_error_set(err, rc, "%s", s->cb_err.msg);
	}
	if (rc < 0 && rc != -EINTR)
		return gs_error_set(err, rc, "ring buffer poll: %s", strerror(-rc));
	return 0;
}

int cpu_session_poll(struct cpu_session *s, int timeout_ms, struct gs_error *err)
{
	bool reap;
	int rc;

	/* BPF rarely wakes us (CPU_RINGBUF_WAKEUP_BYTES): the timeout is the normal way out of
	 * the poll, so drain the ring after it either way. */
	rc = drain(s, ring_buffer__poll(s->rb, timeout_ms), err);
	if (rc < 0)
		return rc;
	reap = capture_monotonic_ns() - s->last_reap_ns >= s->cfg.reap_ms * 1000000ULL;
	if (reap) {
		/* Exited targets whose record was lost leave the filter, then their last samples
		 * are drained. */
		reap_exited(s);
		rc = drain(s, 0, err);
	}
	/* What ended (exit, exec, removal) releases its binaries now, not at the cut: a
	 * one-shot capture cuts only once, at the end. */
	close_ended(s);
	return rc;
}

static void read_bpf_stats(struct cpu_session *s)
{
	uint64_t sums[CPU_STAT_COUNT], d[CPU_STAT_COUNT];

	if (capture_percpu_sums(s->skel->maps.stats, CPU_STAT_COUNT, sums) < 0)
		return;
	for (int i = 0; i < CPU_STAT_COUNT; i++)
		d[i] = sums[i] - s->bpf_prev[i];
	memcpy(s->bpf_prev, sums, sizeof(sums));
	s->win.samples = d[CPU_STAT_SAMPLES];
	s->win.ringbuf_drops = d[CPU_STAT_RINGBUF_DROPS];
	s->win.truncated = d[CPU_STAT_TRUNCATED];
	s->win.kstack_errors = d[CPU_STAT_KSTACK_ERRORS];
	s->win.no_user_regs = d[CPU_STAT_NO_USER_REGS];
	s->win.reused = d[CPU_STAT_REUSED];
	s->win.event_drops = d[CPU_STAT_EVENT_DROPS];
	s->win.labelled = d[CPU_STAT_LABELLED];
	s->win.labels_truncated = d[CPU_STAT_LABELS_TRUNCATED];
	s->win.labels_unread = d[CPU_STAT_LABELS_UNREAD] + s->labels_lost;
	s->labels_lost = 0;
}

/* Whether an entry goes into the window's process list. */
static bool in_window(const struct cpu_target *t)
{
	return t->samples > 0 || t->ended;
}

/* Moves one entry's window data to wp (or frees it without wp). */
static void hand_out(struct cpu_session *s, struct cpu_target *t, struct cpu_window_proc *wp)
{
	if (wp) {
		wp->pid = t->pid;
		wp->start_ticks = t->start_ticks;
		memcpy(wp->comm, t->comm, sizeof(wp->comm));
		wp->samples = t->samples;
		wp->ended = t->ended;
		wp->exec = t->exec;
		wp->prof = t->prof;
		if (wp->prof)
			profile_set_time(wp->prof, s->win.start_wall_ns,
					 (int64_t)s->win.duration_ns);
	} else {
		profile_free(t->prof);
	}
	t->prof = NULL;
	t->samples = 0;
}

/* Hands the window's profiles, and the targets that ended, to out (or frees them without
 * out); -ENOMEM when the process list cannot be allocated (the window is then lost, its
 * profiles freed). Every ended target is in the done list by now. */
static int fill_window(struct cpu_session *s, struct cpu_window *out)
{
	struct target_list *lists[2] = {&s->targets, &s->done};
	size_t n = 0;
	int rc = 0;

	if (out) {
		memset(out, 0, sizeof(*out));
		for (int l = 0; l < 2; l++)
			for (size_t i = 0; i < lists[l]->n; i++)
				n += in_window(&lists[l]->v[i]);
		out->procs = n ? calloc(n, sizeof(*out->procs)) : NULL;
		if (n && !out->procs)
			rc = -ENOMEM;
		if (!rc && s->cfg.merge && !s->merged && !(s->merged = new_profile(s)))
			rc = -ENOMEM;
	}
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < lists[l]->n; i++) {
			struct cpu_target *t = &lists[l]->v[i];
			bool give = !rc && out && in_window(t);

			hand_out(s, t, give ? &out->procs[out->nprocs++] : NULL);
		}
	}
	if (out && !rc && s->merged) {
		profile_set_time(s->merged, s->win.start_wall_ns, (int64_t)s->win.duration_ns);
		out->merged = s->merged;
	} else {
		profile_free(s->merged);
	}
	s->merged = NULL;
	if (out) {
		out->stats = s->win;
		if (rc)
			cpu_window_free(out);
	}
	return rc;
}

int cpu_session_cut(struct cpu_session *s, struct cpu_window *out, struct gs_error *err)
{
	int rc;

	/* Exited targets leave the filter first, so that a process reusing the pid is not
	 * sampled under the old identity, then their last samples are drained. */
	reap_exited(s);
	rc = drain(s, 0, err);
	close_ended(s);
	read_bpf_stats(s);
	s->win.duration_ns = capture_monotonic_ns() - s->win.start_ns;
	stacks_set_profile(&s->stacks, NULL);
	if (fill_window(s, rc < 0 ? NULL : out) < 0)
		rc = gs_error_set(err, -ENOMEM, "out of memory");
	else if (rc < 0 && out)
		memset(out, 0, sizeof(*out));
	list_free(&s->done);
	if (s->targets.n == 0)
		list_free(&s->targets);
	s->windows++;
	start_window(s);
	return rc;
}

void cpu_window_free(struct cpu_window *w)
{
	for (size_t i = 0; i < w->nprocs; i++)
		profile_free(w->procs[i].prof);
	free(w->procs);
	profile_free(w->merged);
	w->procs = NULL;
	w->nprocs = 0;
	w->merged = NULL;
}

void cpu_session_counters(const struct cpu_session *s, struct cpu_session_counters *out)
{
	struct bpf_program *prog;
	unsigned nprogs = 0;

	bpf_object__for_each_program(prog, s->skel->obj) nprogs++;
	*out = (struct cpu_session_counters){.bpf_loads = s->bpf_loads,
					     .bpf_programs = s->bpf_loads ? nprogs : 0,
					     .perf_events = s->perf_events,
					     .targets = s->nlive,
					     .procs = s->targets.n + s->done.n,
					     .images_open = s->stacks.nprocs,
					     .max_targets = s->cfg.max_targets,
					     .windows = s->windows};
}

void cpu_session_symbolizer_stats(const struct cpu_session *s, struct gs_symbolizer_stats *out)
{
	gs_symbolizer_stats(s->stacks.sym, out);
}

int cpu_session_fd(const struct cpu_session *s)
{
	return ring_buffer__epoll_fd(s->rb);
}

int cpu_session_tap_open(struct cpu_session *s, const pid_t *pids, size_t npids,
			 struct cpu_tap **out, struct gs_error *err)
{
	struct cpu_tap *t;

	*out = NULL;
	if (npids > CPU_TAP_MAX_PIDS)
		return gs_error_set(err, -E2BIG, "at most %d processes per capture",
				    CPU_TAP_MAX_PIDS);
	if (s->ntaps == CPU_SESSION_MAX_TAPS)
		return gs_error_set(err, -ENOSPC, "too many captures at once");
	t = calloc(1, sizeof(*t));
	if (!t || !(t->prof = new_profile(s))) {
		free(t);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	memcpy(t->pids, pids, npids * sizeof(*pids));
	t->npids = npids;
	t->start_ns = capture_monotonic_ns();
	t->start_wall_ns = capture_realtime_ns();
	/* Samples taken before now but not drained yet belong to the window only. */
	drain(s, 0, err);
	gs_error_clear(err);
	s->taps[s->ntaps++] = t;
	*out = t;
	return 0;
}

int cpu_session_tap_close(struct cpu_session *s, struct cpu_tap *t, struct profile **out,
			  struct gs_error *err)
{
	int rc = drain(s, 0, err);

	for (size_t i = 0; i < s->ntaps; i++) {
		if (s->taps[i] == t) {
			s->taps[i] = s->taps[--s->ntaps];
			break;
		}
	}
	if (out && rc == 0) {
		profile_set_time(t->prof, t->start_wall_ns,
				 (int64_t)(capture_monotonic_ns() - t->start_ns));
		*out = t->prof;
	} else {
		profile_free(t->prof);
		if (out)
			*out = NULL;
	}
	free(t);
	return rc;
}

void cpu_session_close(struct cpu_session *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nlinks; i++)
		bpf_link__destroy(s->links[i]);
	free(s->links);
	bpf_link__destroy(s->exec_link);
	bpf_link__destroy(s->exit_link);
	ring_buffer__free(s->rb);
	cpu_bpf__destroy(s->skel);
	list_free(&s->targets);
	list_free(&s->done);
	profile_free(s->merged);
	for (size_t i = 0; i < s->ntaps; i++) {
		profile_free(s->taps[i]->prof);
		free(s->taps[i]);
	}
	golabels_cache_free(&s->labels);
	stacks_free(&s->stacks);
	free(s);
}
