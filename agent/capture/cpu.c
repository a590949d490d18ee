/* cpu.c — the one-shot CPU capture behind `goscope cpu`: a thin user of cpu_session (see
 * cpu_session.h). Opens a session, adds the targets (rescanning for new Go processes with
 * --all-go), polls until the capture ends (capture_check_end), and cuts once into one profile
 * whose samples carry pid and comm labels (and the pprof labels of the goroutine sampled). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/core.h"
#include "capture/cpu.h"
#include "capture/cpu_session.h"
#include "goscope/golabels.h"
#include "procs/goprocs.h"
#include "procs/proc.h"

#define POLL_MS 100
#define RESCAN_EVERY_NS 2000000000ULL

/* A process refused because the target map was full, counted once. */
struct refused {
	pid_t pid;
	uint64_t start_ticks;
};

/* The --all-go state: processes not profiled because the target map was full (the live ones
 * are kept, to count each once; the list holds at most the live Go processes of the host). */
struct all_go {
	struct cpu_session *s;
	struct refused *v;
	size_t n, cap;
	unsigned refused_total;
};

static bool known_target(pid_t pid, void *arg)
{
	struct all_go *a = arg;

	return pid == getpid() || cpu_session_has_target(a->s, pid);
}

/* Counts pid as not profiled, once per process. */
static void refuse(struct all_go *a, pid_t pid)
{
	struct proc_stat st;

	if (proc_stat_read("/proc", pid, &st) < 0)
		return;
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].pid == pid && a->v[i].start_ticks == st.start_ticks)
			return;
	}
	a->refused_total++;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		struct refused *nv = realloc(a->v, nc * sizeof(*nv));

		if (!nv)
			return; /* counted; may be counted again */
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = (struct refused){pid, st.start_ticks};
}

/* Forgets refused processes that are gone (their count stays). */
static void prune_refused(struct all_go *a)
{
	size_t j = 0;

	for (size_t i = 0; i < a->n; i++) {
		struct proc_stat st;

		if (proc_stat_read("/proc", a->v[i].pid, &st) == 0 &&
		    st.start_ticks == a->v[i].start_ticks)
			a->v[j++] = a->v[i];
	}
	a->n = j;
}

/* Adds every Go process on the host (but this one) that is not a target yet; those the
 * target map has no room for are counted. */
static void rescan_go(struct all_go *a)
{
	struct goproc_scan scan;

	prune_refused(a);
	if (goproc_scan_some("/proc", known_target, a, &scan, NULL) < 0)
		return;
	for (size_t i = 0; i < scan.n; i++) {
		struct gs_error ignored = {0};

		/* A process that exits during the scan is simply not a target. */
		if (cpu_session_add_target(a->s, scan.procs[i].pid, &ignored) == -ENOSPC)
			refuse(a, scan.procs[i].pid);
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

	if (st->not_profiled) {
		snprintf(text, sizeof(text),
			 "goscope cpu: %u processes not profiled: target map full",
			 st->not_profiled);
		profile_add_comment(prof, text);
	}

	snprintf(text, sizeof(text),
		 "goscope cpu: %llu samples, %llu dropped (ring buffer full), %llu truncated "
		 "stacks, %llu leaf frames repaired, %llu leaf frames unrecovered",
		 (unsigned long long)st->counts.samples,
		 (unsigned long long)st->counts.ringbuf_drops,
		 (unsigned long long)st->counts.truncated,
		 (unsigned long long)st->counts.leaf_fixed,
		 (unsigned long long)st->counts.leaf_unrecovered);
	profile_add_comment(prof, text);
	if (st->counts.labelled) {
		snprintf(text, sizeof(text),
			 "goscope cpu: %llu samples with pprof labels, %llu label sets truncated "
			 "(more than %d labels, keys over %d bytes or values over %d bytes), %llu "
			 "not readable",
			 (unsigned long long)st->counts.labelled,
			 (unsigned long long)st->counts.labels_truncated, GS_LABELS_MAX,
			 GS_LABEL_KEY_LEN, GS_LABEL_VALUE_LEN,
			 (unsigned long long)st->counts.labels_unread);
		profile_add_comment(prof, text);
	}
	if (st->counts.rejected.n) {
		snprintf(text, sizeof(text),
			 "goscope cpu: %llu samples left out as malformed: %.160s",
			 (unsigned long long)st->counts.rejected.n, st->counts.rejected.why);
		profile_add_comment(prof, text);
	}
}

static void copy_stats(struct cpu_stats *st, const struct cpu_window *w)
{
	st->counts = w->stats;
	for (size_t i = 0; i < w->nprocs; i++)
		st->processes += w->procs[i].samples > 0;
}

int cpu_capture(const struct cpu_config *cfg, struct profile **out, struct cpu_stats *stats,
		struct gs_error *err)
{
	struct cpu_session_config scfg = {.frequency = cfg->frequency,
					  .kernel = cfg->kernel,
					  .merge = true,
					  .pids = cfg->all_go ? NULL : cfg->pids,
					  .npids = cfg->all_go ? 0 : cfg->npids,
					  .max_targets = cfg->max_targets,
					  .no_labels = cfg->no_labels};
	struct all_go all = {0};
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
	all.s = s;
	if (cfg->all_go) {
		rescan_go(&all);
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
			rescan_go(&all);
		}
	}
	/* Whatever is still in the ring buffer belongs to the capture: the cut drains it. */
	rc = cpu_session_cut(s, &w, err);
	if (rc < 0)
		goto out;
	copy_stats(stats, &w);
	stats->not_profiled = all.refused_total;
	stats->ended_by = capture_end_name(end, true);
	*out = w.merged;
	w.merged = NULL;
	cpu_window_free(&w);
	add_comments(*out, stats);
out:
	free(all.v);
	cpu_session_close(s);
	return rc;
}
