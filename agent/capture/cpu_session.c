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

/* A target process, from cpu_session_add_target to the cut after it ended. */
struct cpu_target {
	pid_t pid;
	uint64_t start_ticks; /* with the pid, the process's identity (pid reuse) */
	bool ended;	      /* out of the filter (removed or exited); freed at the next cut */
	uint64_t samples;     /* this window */
	struct profile *prof; /* this window (per-process mode), created at its first sample */
};

struct cpu_session {
	struct cpu_session_config cfg;
	int64_t period_ns;
	struct cpu_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int nlinks;
	struct stacks stacks; /* symbolizer, processes, kernel symbols: the session's life */

	struct cpu_target *targets;
	size_t ntargets, cap, nlive;
	size_t last; /* index of the last target found (samples come in runs of one pid) */

	/* The current window. */
	struct profile *merged; /* merge mode, created at the first sample */
	struct cpu_window_stats win;
	uint64_t bpf_prev[CPU_STAT_COUNT]; /* BPF counters at the previous cut */

	unsigned bpf_loads, perf_events;
	size_t windows;

	int error; /* first error inside the ring buffer callback, reported by poll/cut */
	struct gs_error cb_err;
	uint64_t locs[CPU_MAX_KERNEL_FRAMES + CPU_MAX_USER_FRAMES + 1];
};

static long perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group,
			    unsigned long flags)
{
	return syscall(SYS_perf_event_open, attr, pid, cpu, group, flags);
}

static struct cpu_target *find_target(struct cpu_session *s, pid_t pid)
{
	if (s->last < s->ntargets && s->targets[s->last].pid == pid)
		return &s->targets[s->last];
	for (size_t i = 0; i < s->ntargets; i++) {
		if (s->targets[i].pid == pid) {
			s->last = i;
			return &s->targets[i];
		}
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

static int on_sample(void *ctx, void *data, size_t size)
{
	struct cpu_session *s = ctx;
	const struct cpu_sample *cs = data;
	uint64_t user[CPU_MAX_USER_FRAMES];
	struct profile_label labels[2];
	struct leaf_regs regs;
	enum leaf_result leaf;
	struct cpu_target *t;
	struct stack_proc *sp;
	struct profile **pp;
	int64_t values[2];
	size_t nu, nk, nl = 0;

	if (size < sizeof(*cs))
		return 0;
	t = find_target(s, (pid_t)cs->pid);
	sp = t ? stacks_find(&s->stacks, t->pid) : NULL;
	if (!sp) {
		s->win.stray++; /* in flight when its target was cut away */
		return 0;
	}
	s->win.received++;
	pp = s->cfg.merge ? &s->merged : &t->prof;
	if (!*pp && !(*pp = new_profile(s)))
		return callback_error(s, -ENOMEM);
	stacks_set_profile(&s->stacks, *pp);

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

	for (size_t i = 0; i < nk; i++) {
		uint64_t id = stacks_kernel_location(&s->stacks, cs->kernel[i]);

		if (id)
			s->locs[nl++] = id;
	}
	nl = stacks_user_stack(&s->stacks, sp, user, nu, s->locs, nl);
	values[0] = 1;
	values[1] = s->period_ns;
	labels[0] = (struct profile_label){.key = "pid", .num = cs->pid};
	labels[1] = (struct profile_label){.key = "comm", .str = sp->comm};
	if (profile_add_sample(*pp, s->locs, nl, values, labels, 2, &s->cb_err) < 0)
		return callback_error(s, s->cb_err.code);
	t->samples++;
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
	rc = capture_bpf_load(s->skel->skeleton, "load BPF program cpu", err);
	if (rc < 0)
		goto fail;
	s->bpf_loads++;
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.samples), on_sample, s, NULL);
	if (!s->rb) {
		rc = gs_error_set(err, -errno, "ring buffer: %s", strerror(errno));
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
	*out = s;
	return 0;
fail:
	cpu_session_close(s);
	return rc;
}

bool cpu_session_has_target(const struct cpu_session *s, pid_t pid)
{
	for (size_t i = 0; i < s->ntargets; i++) {
		if (s->targets[i].pid == pid && !s->targets[i].ended)
			return true;
	}
	return false;
}

/* Puts pid in (or takes it out of) the in-kernel filter. -errno. */
static int filter_set(struct cpu_session *s, pid_t pid, bool on)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;
	int rc = on ? bpf_map__update_elem(s->skel->maps.targets, &key, sizeof(key), &one,
					   sizeof(one), BPF_ANY)
		    : bpf_map__delete_elem(s->skel->maps.targets, &key, sizeof(key), 0);

	return rc < 0 ? -errno : 0;
}

int cpu_session_add_target(struct cpu_session *s, pid_t pid, struct gs_error *err)
{
	struct cpu_target *t = find_target(s, pid);
	struct proc_stat st;
	int rc;

	if (pid <= 0)
		return gs_error_set(err, -EINVAL, "bad pid %d", pid);
	if (proc_stat_read("/proc", pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
		return gs_error_set(err, -ESRCH, "no process %d", pid);
	if (t && !t->ended)
		return 0;
	if (t && t->start_ticks != st.start_ticks)
		return gs_error_set(err, -EBUSY,
				    "pid %d: its previous process is still held until the next cut",
				    pid);
	if (s->nlive >= CPU_MAX_TARGETS)
		return gs_error_set(err, -ENOSPC, "add target %d: more than %d targets", pid,
				    CPU_MAX_TARGETS);
	if (!t) {
		if (s->ntargets == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 16;
			struct cpu_target *nt = realloc(s->targets, nc * sizeof(*nt));

			if (!nt)
				return gs_error_set(err, -ENOMEM, "out of memory");
			s->targets = nt;
			s->cap = nc;
		}
		/* Open the process now: its binaries may be gone once it exits. */
		if (!stacks_proc(&s->stacks, pid))
			return gs_error_set(err, -ENOMEM, "out of memory");
		t = &s->targets[s->ntargets++];
		*t = (struct cpu_target){.pid = pid, .start_ticks = st.start_ticks, .ended = true};
	}
	rc = filter_set(s, pid, true);
	if (rc < 0)
		return gs_error_set(err, rc, "add target %d: %s", pid, strerror(-rc));
	t->ended = false;
	s->nlive++;
	return 0;
}

static void end_target(struct cpu_session *s, struct cpu_target *t)
{
	if (t->ended)
		return;
	filter_set(s, t->pid, false);
	t->ended = true;
	s->nlive--;
}

void cpu_session_remove_target(struct cpu_session *s, pid_t pid)
{
	struct cpu_target *t = find_target(s, pid);

	if (t)
		end_target(s, t);
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
	/* BPF rarely wakes us (CPU_RINGBUF_WAKEUP_BYTES): the timeout is the normal way out of
	 * the poll, so drain the ring after it either way. */
	return drain(s, ring_buffer__poll(s->rb, timeout_ms), err);
}

/* Ends targets that exited (gone, zombie, or pid reused since they were added). */
static void reap_exited(struct cpu_session *s)
{
	for (size_t i = 0; i < s->ntargets; i++) {
		struct cpu_target *t = &s->targets[i];
		struct proc_stat st;

		if (t->ended)
			continue;
		if (proc_stat_read("/proc", t->pid, &st) < 0 || st.state == 'Z' ||
		    st.state == 'X' || st.start_ticks != t->start_ticks)
			end_target(s, t);
	}
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
}

/* Hands the window's profiles, and the targets that ended, to out (or frees them without out); -ENOMEM when the process
 * list cannot be allocated (the window is then lost, its profiles freed). */
static int fill_window(struct cpu_session *s, struct cpu_window *out)
{
	size_t n = 0;
	int rc = 0;

	if (out) {
		memset(out, 0, sizeof(*out));
		for (size_t i = 0; i < s->ntargets; i++)
			n += s->targets[i].samples > 0 || s->targets[i].ended;
		out->procs = n ? calloc(n, sizeof(*out->procs)) : NULL;
		if (n && !out->procs)
			rc = -ENOMEM;
		if (!rc && s->cfg.merge && !s->merged && !(s->merged = new_profile(s)))
			rc = -ENOMEM;
	}
	for (size_t i = 0; i < s->ntargets; i++) {
		struct cpu_target *t = &s->targets[i];
		struct cpu_window_proc *wp;
		struct stack_proc *sp;

		if (rc || !out || (!t->samples && !t->ended)) {
			profile_free(t->prof);
		} else {
			wp = &out->procs[out->nprocs++];
			sp = stacks_find(&s->stacks, t->pid);
			wp->pid = t->pid;
			if (sp)
				memcpy(wp->comm, sp->comm, sizeof(wp->comm));
			wp->samples = t->samples;
			wp->ended = t->ended;
			wp->prof = t->prof;
			if (wp->prof)
				profile_set_time(wp->prof, s->win.start_wall_ns,
						 (int64_t)s->win.duration_ns);
		}
		t->prof = NULL;
		t->samples = 0;
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

/* Frees the entries of ended targets (their last samples are drained by now). */
static void free_ended(struct cpu_session *s)
{
	size_t j = 0;

	for (size_t i = 0; i < s->ntargets; i++) {
		if (s->targets[i].ended)
			stacks_forget(&s->stacks, s->targets[i].pid);
		else
			s->targets[j++] = s->targets[i];
	}
	s->ntargets = j;
	s->last = 0;
	if (j == 0) {
		free(s->targets);
		s->targets = NULL;
		s->cap = 0;
	}
}

int cpu_session_cut(struct cpu_session *s, struct cpu_window *out, struct gs_error *err)
{
	int rc;

	/* Exited targets leave the filter first, so that a process reusing the pid is not
	 * sampled under the old identity, then their last samples are drained. */
	reap_exited(s);
	rc = drain(s, 0, err);
	read_bpf_stats(s);
	s->win.duration_ns = capture_monotonic_ns() - s->win.start_ns;
	stacks_set_profile(&s->stacks, NULL);
	if (fill_window(s, rc < 0 ? NULL : out) < 0)
		rc = gs_error_set(err, -ENOMEM, "out of memory");
	else if (rc < 0 && out)
		memset(out, 0, sizeof(*out));
	free_ended(s);
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
	*out = (struct cpu_session_counters){.bpf_loads = s->bpf_loads,
					     .perf_events = s->perf_events,
					     .targets = s->nlive,
					     .procs = s->ntargets,
					     .windows = s->windows};
}

void cpu_session_close(struct cpu_session *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nlinks; i++)
		bpf_link__destroy(s->links[i]);
	free(s->links);
	ring_buffer__free(s->rb);
	cpu_bpf__destroy(s->skel);
	for (size_t i = 0; i < s->ntargets; i++)
		profile_free(s->targets[i].prof);
	free(s->targets);
	profile_free(s->merged);
	stacks_free(&s->stacks);
	free(s);
}
