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
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"
#include "capture/probe_keeper.h"
#include "procs/proc.h"

/* Empties the pending map (the probes are detached); returns how many parks it held. */
static uint64_t drop_pending(struct block_session *s)
{
	int fd = bpf_map__fd(s->skel->maps.pending);
	uint64_t n = 0;
	__u64 key;

	while (bpf_map_get_next_key(fd, NULL, &key) == 0 && bpf_map_delete_elem(fd, &key) == 0)
		n++;
	return n;
}

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
	if (s->execed) {
		/* The old image's goroutines are gone with it: none of its parks ended in a
		 * block, and none is still blocked. */
		s->exec_dropped += drop_pending(s);
	} else if (st != BLOCK_DUTY_UNTHROTTLED) {
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

/* Whether the target has exec'd since the session opened. Neither the pid nor the start time
 * changes at an exec, and a program that execs itself keeps its executable's identity too; what
 * always changes is the address space: a /proc/PID/mem file opened before the exec stays bound
 * to the old one and reads 0 bytes once it is gone (an unmapped address of a live one gives
 * EIO instead). An exiting process loses its address space too, but then /proc/PID/exe is
 * gone as well, so the exec also needs the exe still there, looked at after the read: the
 * exit clears the task's mm (and with it the exe link) before it lets the address space go,
 * so an exe seen after a dead read belongs to a new image. (Looked at before the read, an exit
 * in between read as an exec: 14 of 300 SIGKILLs of a process with 256 MiB, measured.)
 * Without a mem file (it could not be opened), a change of the executable's (dev, inode) is
 * the sign. The caller checks the start time after this, so a reused pid counts as an exit. */
static bool target_execed(struct block_session *s)
{
	struct stat st;
	char path[64];
	uint8_t b;
	bool dead = s->mem_fd >= 0 && pread(s->mem_fd, &b, 1, (off_t)s->addrs[0]) == 0;

	snprintf(path, sizeof(path), "/proc/%d/exe", s->cfg.pid);
	if (stat(path, &st) < 0)
		return false;
	if (st.st_dev != s->exe_dev || st.st_ino != s->exe_ino)
		return true;
	return dead;
}

bool block_session_target_alive(struct block_session *s)
{
	uint64_t ticks;
	bool execed;

	if (s->exited)
		return false;
	execed = target_execed(s);
	if (target_start(s->cfg.pid, &ticks) == 0 && ticks == s->start_ticks) {
		if (!execed)
			return true;
		/* The same process runs another image: for this session, the end of its
		 * target (duty_stop drops the old image's pending parks). */
		s->execed = true;
	}
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
	s->mem_fd = s->bpf_stats_fd = s->exe_fd = -1;
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
	/* The keeper first, while goscope holds few descriptors: every link on the target is
	 * created and closed by it (probe_keeper.h). */
	rc = probe_keeper_start(&s->keeper, err);
	if (rc < 0)
		goto fail;
	/* The address space first, then the executable: an exec between the two shows as a
	 * dead mem file right after (target_execed). */
	snprintf(mem_path, sizeof(mem_path), "/proc/%d/mem", cfg->pid);
	s->mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC); /* optional: see g_still_parked */
	rc = block_open_target(s);
	if (rc < 0)
		goto fail;
	block_probe_addrs(s);
	if (target_execed(s)) {
		rc = gs_error_set(err, -ESRCH, "process %d exec'd while being opened", cfg->pid);
		goto fail;
	}
	rc = stacks_init(&s->stacks, NULL, false, err);
	if (rc < 0)
		goto fail;
	s->stacks_ready = true;
	/* Open the process (and its binaries) now: they may be gone once it exits. */
	stacks_proc(&s->stacks, cfg->pid);
	rc = block_load_bpf(s);
	if (rc < 0)
		goto fail;
	s->info.probes = s->multi ? "uprobe_multi" : "perf-event";
	/* Breakpoints an earlier goscope leaked at these points (killed while the kernel
	 * (un)registered a uprobe) are put right before anything is attached. */
	rc = block_repair_leftovers(s);
	if (rc < 0) {
		gs_error_prefix(err,
				"process %d: repairing a breakpoint left by an earlier capture",
				cfg->pid);
		goto fail;
	}
	s->info.repaired_breakpoints = (uint64_t)rc;
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
	if (s->skel && s->keeper)
		block_detach_all(s, false);
	/* Closes whatever link is left (none, unless a detach failed) and waits for it. */
	probe_keeper_stop(s->keeper);
	if (s->bpf_stats_fd >= 0)
		close(s->bpf_stats_fd);
	block_bpf__destroy(s->skel);
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	if (s->exe_fd >= 0)
		close(s->exe_fd);
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
