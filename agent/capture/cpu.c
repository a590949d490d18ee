/* cpu.c — the one-shot CPU capture behind `goscope cpu`: a thin user of cpu_session (see
 * cpu_session.h). Opens a session, adds the targets (rescanning for new Go processes with
 * --all-go), polls until the capture ends (capture_check_end), and cuts once into one profile
 * whose samples carry pid and comm labels. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capture/core.h"
#include "capture/cpu.h"
#include "capture/cpu_session.h"
#include "procs/goprocs.h"
#include "procs/proc.h"

#define POLL_MS 100
#define RESCAN_EVERY_NS 2000000000ULL

/* Adds every Go process on the host (but this one) that is not a target yet. */
static void rescan_go(struct cpu_session *s)
{
	struct goproc_scan scan;

	if (goproc_scan_all("/proc", &scan, NULL) < 0)
		return;
	for (size_t i = 0; i < scan.n; i++) {
		struct gs_error ignored = {0};

		/* A process that exits during the scan is simply not a target. */
		if (scan.procs[i].pid != getpid())
			cpu_session_add_target(s, scan.procs[i].pid, &ignored);
	}
	goproc_scan_free(&scan);
}

static bool any_target_alive(void *arg)
{
	const struct cpu_config *cfg = arg;

	for (size_t i = 0; i < cfg->npids; i++) {
		if (proc_alive(cfg->pids[i]))
			return true;
	}
	return false;
}

static void add_comments(struct profile *prof, const struct cpu_stats *st)
{
	char text[256];

	snprintf(text, sizeof(text),
		 "goscope cpu: %llu samples, %llu dropped (ring buffer full), %llu truncated "
		 "stacks, %llu leaf frames repaired, %llu leaf frames unrecovered",
		 (unsigned long long)st->samples, (unsigned long long)st->ringbuf_drops,
		 (unsigned long long)st->truncated, (unsigned long long)st->leaf_fixed,
		 (unsigned long long)st->leaf_unrecovered);
	profile_add_comment(prof, text);
}

static void copy_stats(struct cpu_stats *st, const struct cpu_window *w)
{
	st->samples = w->stats.samples;
	st->received = w->stats.received;
	st->ringbuf_drops = w->stats.ringbuf_drops;
	st->truncated = w->stats.truncated;
	st->kstack_errors = w->stats.kstack_errors;
	st->no_user_regs = w->stats.no_user_regs;
	st->leaf_fixed = w->stats.leaf_fixed;
	st->leaf_unrecovered = w->stats.leaf_unrecovered;
	for (size_t i = 0; i < w->nprocs; i++)
		st->processes += w->procs[i].samples > 0;
	st->duration_ns = w->stats.duration_ns;
}

int cpu_capture(const struct cpu_config *cfg, struct profile **out, struct cpu_stats *stats,
		struct gs_error *err)
{
	struct cpu_session_config scfg = {.frequency = cfg->frequency,
					  .kernel = cfg->kernel,
					  .merge = true,
					  .pids = cfg->all_go ? NULL : cfg->pids,
					  .npids = cfg->all_go ? 0 : cfg->npids};
	enum capture_end end = CAPTURE_RUNNING;
	struct capture_clock clock;
	struct cpu_session *s;
	struct cpu_window w;
	uint64_t last_scan;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (cfg->frequency == 0 || cfg->frequency > 1000000000U)
		return gs_error_set(err, -EINVAL, "bad frequency %u", cfg->frequency);
	for (size_t i = 0; i < cfg->npids; i++) {
		rc = proc_check_alive(cfg->pids[i], err);
		if (rc < 0)
			return rc;
	}
	/* The --pid targets are in the filter before the perf events are attached: the capture
	 * starts with every target set up (opening binaries takes time). */
	rc = cpu_session_open(&scfg, &s, err);
	if (rc < 0)
		return rc;
	if (cfg->all_go) {
		rescan_go(s);
		/* The capture starts once every target is set up. */
		rc = cpu_session_cut(s, NULL, err);
		if (rc < 0)
			goto out;
	}
	capture_clock_start(&clock, cfg->duration_ns, cfg->stop);
	last_scan = clock.start_ns;
	while (end == CAPTURE_RUNNING) {
		uint64_t now;

		rc = cpu_session_poll(s, POLL_MS, err);
		if (rc < 0)
			goto out;
		now = capture_monotonic_ns();
		end = capture_check_end(&clock, now, cfg->all_go ? NULL : any_target_alive,
					(void *)cfg);
		if (end == CAPTURE_RUNNING && cfg->all_go && now - last_scan >= RESCAN_EVERY_NS) {
			last_scan = now;
			rescan_go(s);
		}
	}
	/* Whatever is still in the ring buffer belongs to the capture: the cut drains it. */
	rc = cpu_session_cut(s, &w, err);
	if (rc < 0)
		goto out;
	copy_stats(stats, &w);
	stats->ended_by = capture_end_name(end, true);
	*out = w.merged;
	w.merged = NULL;
	cpu_window_free(&w);
	add_comments(*out, stats);
out:
	cpu_session_close(s);
	return rc;
}
