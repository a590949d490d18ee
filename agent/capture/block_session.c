/* block_session.c — one target's block capture for as long as the caller wants: opens the
 * target (probe points from the prologues, block_probes.c), loads the BPF programs once
 * (block_attach.c), calibrates and starts the duty cycle (block_duty.c), steps it every tick,
 * and cuts profiles (block_profile.c). Every probe is removed on the final cut, on close, or as
 * soon as the target is seen gone.
 *
 * What the capture measures: runtime.gopark/ready/netpollready/injectglist are found through
 * the pclntab (stripped binaries work), each probe is placed on the function's stack-check
 * branch (block_probe_offset says why), entry uprobes are attached to /proc/PID/exe for the
 * target only, duty-cycled to stay within --max-overhead, and the in-kernel sums become pprof
 * profiles shaped like Go's block profile (contentions/count, delay/nanoseconds, label
 * wait_reason). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"
#include "procs/proc.h"

/* Removes every probe for good, first closing the books of the window in progress as the
 * end of the capture: its on-window ends now, its cycle is cut short here, a park of it
 * whose goroutine runs again while the probes were attached was cancelled (as in a drain),
 * and long blocks that ended since the last look are counted; what stays pending is still
 * blocked. */
static void duty_stop(struct block_session *s, uint64_t now)
{
	struct block_duty *d = &s->duty;
	enum block_duty_state st = d->state;

	if (s->stopped)
		return;
	if (st == BLOCK_DUTY_ON) {
		d->on_total += now > d->window_start ? now - d->window_start : 0;
		block_window_on_end(s, d->gen, now > d->window_start ? now - d->window_start : 0);
	}
	block_detach_all(s, false);
	if (st != BLOCK_DUTY_UNTHROTTLED) {
		if (st == BLOCK_DUTY_ON || st == BLOCK_DUTY_DRAINING)
			s->cancelled += block_drop_not_parked(s, d->gen);
		block_poll_long_blocks(s, d->last_poll, now);
		d->last_poll = now;
		block_window_cycle_end(s, d->gen, now - d->cycle_start);
	}
	/* STOPPED keeps the throttled/unthrottled distinction for the fractions. */
	d->state = st == BLOCK_DUTY_UNTHROTTLED ? BLOCK_DUTY_UNTHROTTLED : BLOCK_DUTY_STOPPED;
	s->stopped = true;
}

/* The target's start time: with the pid, its identity (a reused pid starts later). */
static int target_start(pid_t pid, uint64_t *ticks)
{
	struct proc_stat st;
	int rc = proc_stat_read("/proc", pid, &st);

	if (rc < 0)
		return rc;
	if (st.state == 'Z' || st.state == 'X')
		return -ESRCH;
	*ticks = st.start_ticks;
	return 0;
}

bool block_session_target_alive(struct block_session *s)
{
	uint64_t ticks;

	if (s->exited)
		return false;
	if (target_start(s->cfg.pid, &ticks) == 0 && ticks == s->start_ticks)
		return true;
	s->exited = true;
	duty_stop(s, capture_monotonic_ns());
	return false;
}

int block_session_open(const struct block_config *cfg, struct block_session **out,
		       struct gs_error *err)
{
	struct block_session *s;
	char mem_path[64];
	int rc;

	*out = NULL;
	rc = proc_check_alive(cfg->pid, err);
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return gs_error_set(err, -ENOMEM, "out of memory");
	s->cfg = *cfg;
	s->cfg.stop = NULL;
	s->cfg.on_attached = NULL;
	s->err = err;
	s->mem_fd = s->bpf_stats_fd = -1;
	for (int k = 0; k < BLOCK_NPROBES; k++)
		s->links[k].multi_fd = s->reapers[k].link.multi_fd = -1;
	if (cfg->reasons) {
		if (strlen(cfg->reasons) >= sizeof(s->reasons)) {
			rc = gs_error_set(err, -EINVAL, "--reasons list too long");
			goto fail;
		}
		strcpy(s->reasons, cfg->reasons);
		s->cfg.reasons = s->reasons;
	}
	s->info.sampled_fraction = 1.0;
	if (target_start(cfg->pid, &s->start_ticks) < 0) {
		rc = proc_check_alive(cfg->pid, err);
		if (rc == 0)
			rc = gs_error_set(err, -ESRCH, "process %d: cannot read its stat",
					  cfg->pid);
		goto fail;
	}
	s->ncpus = capture_ncpus();
	if (s->ncpus <= 0) {
		rc = gs_error_set(err, -EINVAL, "cannot count CPUs");
		goto fail;
	}
	rc = block_open_target(s);
	if (rc < 0)
		goto fail;
	rc = stacks_init(&s->stacks, NULL, false, err);
	if (rc < 0)
		goto fail;
	s->stacks_ready = true;
	/* Open the process (and its binaries) now: they may be gone once it exits. */
	stacks_proc(&s->stacks, cfg->pid);
	snprintf(mem_path, sizeof(mem_path), "/proc/%d/mem", cfg->pid);
	s->mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC); /* optional: see g_still_parked */
	rc = block_load_bpf(s);
	if (rc < 0)
		goto fail;
	s->info.probes = s->multi ? "uprobe_multi" : "perf-event";
	if (cfg->max_overhead_pct < BLOCK_OVERHEAD_UNTHROTTLED) {
		s->info.trap_cost_ns = block_calibrate(s);
		/* Unavailable (kernel < 5.8, or on already by sysctl, when the counters move
		 * anyway) is no error: without a measurement the estimate is the trap alone. */
		s->bpf_stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (s->bpf_stats_fd < 0)
			s->bpf_stats_fd = -1;
	}
	s->start = s->cut_at = capture_monotonic_ns();
	s->cut_wall = capture_realtime_ns();
	rc = block_duty_start(s, s->start);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	block_session_close(s);
	return rc;
}

int block_session_tick(struct block_session *s, uint64_t now, struct gs_error *err)
{
	int rc;

	s->err = err;
	if (s->exited || s->stopped)
		return 0;
	if (now - s->last_live >= CAPTURE_LIVENESS_EVERY_NS) {
		s->last_live = now;
		if (!block_session_target_alive(s))
			return 0;
	}
	if (s->duty.state == BLOCK_DUTY_UNTHROTTLED)
		return 0;
	rc = block_duty_tick(s, now);
	if (rc < 0 && !block_session_target_alive(s)) {
		/* The target exited while a window was being attached. */
		gs_error_clear(err);
		return 0;
	}
	return rc;
}

int block_session_cut(struct block_session *s, bool final, struct profile **out,
		      struct block_stats *stats, struct gs_error *err)
{
	uint64_t now = capture_monotonic_ns();

	s->err = err;
	*out = NULL;
	memset(stats, 0, sizeof(*stats));
	if (s->stopped && !s->exited && !final)
		return gs_error_set(err, -EINVAL, "block session: cut after the final cut");
	if (!s->exited)
		block_session_target_alive(s);
	if (final)
		duty_stop(s, now);
	else if (s->duty.state == BLOCK_DUTY_OFF) {
		/* Long blocks that ended since the last tick belong to this cut. */
		block_poll_long_blocks(s, s->duty.last_poll, now);
		s->duty.last_poll = now;
	}
	return block_cut_profile(s, final, now, out, stats);
}

void block_session_close(struct block_session *s)
{
	if (!s)
		return;
	if (s->skel)
		block_detach_all(s, false);
	if (s->bpf_stats_fd >= 0)
		close(s->bpf_stats_fd);
	block_bpf__destroy(s->skel);
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	if (s->stacks_ready)
		stacks_free(&s->stacks);
	free(s);
}

void block_session_probes(const struct block_session *s,
			  struct block_probe_point out[BLOCK_NPROBES])
{
	for (int k = 0; k < BLOCK_NPROBES; k++)
		out[k] = (struct block_probe_point){.function = block_probe_funcs[k],
						    .file_offset = s->offsets[k],
						    .vaddr = s->vaddrs[k],
						    .used = s->want[k],
						    .on_branch = s->on_branch[k]};
}
