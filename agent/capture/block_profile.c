/* block_profile.c — the profile of one cut: the blocks summed in the kernel (`agg`) since the
 * previous cut, each scaled by the sampled fraction of the window its park started in, plus
 * (when asked) the goroutines still blocked, as a pprof profile shaped like Go's block profile
 * (contentions/count, delay/nanoseconds, label wait_reason), with the counters and the
 * throttling explained in comments.
 *
 * Windows and weights. When throttled, a park is recorded only if it starts in an on-window,
 * which covers on_ns of its cycle's cycle_ns: each recorded park stands for cycle_ns / on_ns
 * parks. The block ends whenever it ends (in the same cut or a later one), so the weight goes
 * with the park's window (block_key.window), not with the cut; the last BLOCK_WINDOW_RING
 * windows are remembered for that. A cycle still running at a cut is weighed by its plan (its
 * on-window and cycle as block_plan_cycle chose them); a cycle cut short by the end of the
 * session by what it ran.
 *
 * Epochs. The BPF programs sum each block under the cut epoch current when it ends. A cut
 * moves cut_epoch on, waits until no BPF program can still be running with the old value
 * (an RCU grace period: the programs run under rcu_read_lock), then reads and deletes every
 * entry of the past epochs: nothing is added to an entry after it was read, and agg holds
 * only the current epoch's entries between cuts, so hours of cuts do not grow it. A park
 * pending at a cut stays in `pending` and is counted in the cut its block ends in (as Go's
 * block profile counts at wake-up). */
#include <errno.h>
#include <inttypes.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"

void block_window_begin(struct block_session *s, uint32_t gen, uint64_t now)
{
	s->windows[gen % BLOCK_WINDOW_RING] = (struct block_window){
		.gen = gen,
		.cycle_start = now,
		.planned_on = s->duty.on_len,
		.planned_cycle = s->duty.cycle_len,
	};
}

void block_window_on_end(struct block_session *s, uint32_t gen, uint64_t on_ns)
{
	struct block_window *w = &s->windows[gen % BLOCK_WINDOW_RING];

	if (w->gen == gen)
		w->on_ns = on_ns ? on_ns : 1;
}

void block_window_cycle_end(struct block_session *s, uint32_t gen, uint64_t cycle_ns)
{
	struct block_window *w = &s->windows[gen % BLOCK_WINDOW_RING];

	if (w->gen == gen)
		w->cycle_ns = cycle_ns ? cycle_ns : 1;
}

/* The session's sampled fraction from its start to now. */
static double overall_fraction(const struct block_session *s, uint64_t now)
{
	uint64_t on = block_duty_on_time(&s->duty, now);

	if (now <= s->start || on == 0)
		return 1.0;
	return (double)on / (double)(now - s->start);
}

static double clamp_fraction(double f)
{
	if (!(f > 0))
		return BLOCK_MIN_FRACTION;
	return f > 1.0 ? 1.0 : f;
}

/* The sampled fraction of window gen: what a block whose park started in it is scaled by. */
static double window_fraction(const struct block_session *s, uint32_t gen, uint64_t now)
{
	const struct block_window *w = &s->windows[gen % BLOCK_WINDOW_RING];
	uint64_t on, span;

	if (s->duty.state == BLOCK_DUTY_UNTHROTTLED)
		return 1.0;
	if (w->gen != gen || gen == 0)
		return clamp_fraction(overall_fraction(s, now));
	on = w->on_ns ? w->on_ns : w->planned_on;
	span = w->cycle_ns ? w->cycle_ns : w->planned_cycle;
	return clamp_fraction(span ? (double)on / (double)span : 1.0);
}

static int64_t scaled(uint64_t v, double fraction)
{
	double x = (double)v / fraction;

	return x >= 9.2e18 ? INT64_MAX : (int64_t)(x + 0.5);
}

struct cut {
	struct block_session *s;
	struct profile *prof;
	struct block_stats *stats;
	uint64_t now;
	const char *fraction_label; /* NULL when unthrottled */
	uint64_t labels_lost;	    /* blocks whose label set was gone from BPF */
	/* Samples the profile refused: left out, the window keeps its other blocks. */
	struct profile_rejects rejected;
};

static int add_sample(struct cut *c, const struct block_key *k, uint64_t count, uint64_t delay,
		      bool still_blocked)
{
	struct block_session *s = c->s;
	uint64_t locs[BLOCK_MAX_FRAMES + 1];
	struct profile_label labels[4 + GS_LABELS_MAX];
	struct golabels_strs strs;
	struct gs_labels ls;
	double f = window_fraction(s, k->window, c->now);
	struct block_stack st;
	struct stack_proc *sp;
	char rbuf[32];
	int64_t values[2];
	size_t nl = 0, nlab = 0;

	sp = stacks_proc(&s->stacks, s->cfg.pid);
	if (!sp)
		return gs_error_set(s->err, -ENOMEM, "out of memory");
	if (bpf_map__lookup_elem(s->skel->maps.stacks, &k->stack_id, sizeof(k->stack_id), &st,
				 sizeof(st), 0) == 0) {
		uint32_t n = st.n <= BLOCK_MAX_FRAMES ? st.n : BLOCK_MAX_FRAMES;

		nl = stacks_user_stack(&s->stacks, sp, (const uint64_t *)st.pcs, n, locs, 0);
	}
	values[0] = scaled(count, f);
	values[1] = scaled(delay, f);
	labels[nlab++] = (struct profile_label){
		.key = "wait_reason",
		.str = goversion_wait_reason(&s->facts, k->reason, rbuf, sizeof(rbuf))};
	if (s->cfg.goroutine_ids)
		labels[nlab++] = (struct profile_label){.key = "goid", .num = (int64_t)k->goid};
	if (still_blocked)
		labels[nlab++] = (struct profile_label){.key = "still_blocked", .str = "true"};
	if (c->fraction_label)
		labels[nlab++] =
			(struct profile_label){.key = "sampled_fraction", .str = c->fraction_label};
	/* The parking goroutine's pprof labels (a set BPF could not keep, or evicted since from
	 * its LRU map: none, counted). */
	if (k->labels_id && bpf_map__lookup_elem(s->skel->maps.labelsets, &k->labels_id,
						 sizeof(k->labels_id), &ls, sizeof(ls), 0) == 0)
		nlab += golabels_to_profile(&ls, &strs, labels + nlab, GS_LABELS_MAX);
	else if (k->labels_id)
		c->labels_lost++;
	return profile_reject(&c->rejected,
			      profile_add_sample(c->prof, locs, nl, values, labels, nlab, s->err),
			      s->err);
}

/* Waits until no BPF program that read the old cut_epoch can still be running: they run
 * under rcu_read_lock, and MEMBARRIER_CMD_GLOBAL returns after a synchronize_rcu. Where it
 * is refused (nohz_full kernels), a millisecond, many times a program's run time. */
static void wait_for_programs(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0)
		usleep(1000);
}

/* Moves the BPF side to a new epoch and adds every entry of the past ones to the profile,
 * deleting it. */
static int take_agg(struct cut *c)
{
	struct block_session *s = c->s;
	int afd = bpf_map__fd(s->skel->maps.agg);
	struct block_key key, next;
	struct block_value v;
	int more, rc;

	s->epoch++;
	s->skel->bss->cut_epoch = s->epoch;
	if (block_links_live(s))
		wait_for_programs();
	more = bpf_map_get_next_key(afd, NULL, &key) == 0;
	while (more) {
		/* The next key first: a hash map restarts from its first key when the key
		 * passed is gone. */
		more = bpf_map_get_next_key(afd, &key, &next) == 0;
		if (key.epoch != s->epoch && bpf_map_lookup_elem(afd, &key, &v) == 0) {
			bpf_map_delete_elem(afd, &key);
			if (v.count) {
				c->stats->blocks += v.count;
				rc = add_sample(c, &key, v.count, v.delay_ns, false);
				if (rc < 0)
					return rc;
			}
		}
		key = next;
	}
	return 0;
}

/* Goroutines blocked now: their delay so far. */
static int add_still_blocked(struct cut *c)
{
	struct block_session *s = c->s;
	int pfd = bpf_map__fd(s->skel->maps.pending);
	__u64 gk, gnext, *gprev = NULL;
	struct block_pending p;
	struct block_key key;
	int rc;

	while (bpf_map_get_next_key(pfd, gprev, &gnext) == 0) {
		gk = gnext;
		gprev = &gk;
		if (bpf_map_lookup_elem(pfd, &gk, &p) < 0)
			continue;
		if (c->now > p.park_ns && c->now - p.park_ns < s->cfg.min_delay_ns)
			continue;
		if (!block_g_still_parked(s, gk, &p)) {
			s->cancelled++;
			continue;
		}
		key = (struct block_key){.stack_id = p.stack_id,
					 .goid = p.goid,
					 .reason = p.reason,
					 .window = p.window,
					 .labels_id = p.labels_id};
		c->stats->still_blocked++;
		rc = add_sample(c, &key, 1, c->now > p.park_ns ? c->now - p.park_ns : 0, true);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* This cut's counters: the session's totals minus those at the previous cut. */
static void cut_stats(struct block_session *s, struct block_stats *st)
{
	uint64_t b[BLOCK_STAT_COUNT], d[BLOCK_STAT_COUNT];

	block_read_stats(s, b);
	for (int i = 0; i < BLOCK_STAT_COUNT; i++) {
		d[i] = b[i] - s->bpf_at_cut[i];
		s->bpf_at_cut[i] = b[i];
	}
	st->parks = d[BLOCK_STAT_RECORDED];
	st->counted_without_ready = d[BLOCK_STAT_COUNTED_NETPOLL] + d[BLOCK_STAT_COUNTED_INJECT];
	st->cancelled = s->cancelled - s->cancelled_at_cut + d[BLOCK_STAT_OVERWRITTEN];
	st->short_blocks = d[BLOCK_STAT_SHORT] + s->polled_short - s->polled_short_at_cut;
	st->restarts = d[BLOCK_STAT_RESTARTS];
	st->labelled = d[BLOCK_STAT_LABELLED];
	st->labels_truncated = d[BLOCK_STAT_LABELS_TRUNCATED];
	st->labels_unread = d[BLOCK_STAT_LABELS_UNREAD];
	st->lost = d[BLOCK_STAT_PENDING_FULL] + d[BLOCK_STAT_STACKS_FULL] + d[BLOCK_STAT_AGG_FULL] +
		   s->polled_lost - s->polled_lost_at_cut;
	st->polled = s->polled - s->polled_at_cut;
	st->windows = (unsigned)(s->windows_started - s->windows_at_cut);
	s->cancelled_at_cut = s->cancelled;
	s->polled_short_at_cut = s->polled_short;
	s->polled_lost_at_cut = s->polled_lost;
	s->polled_at_cut = s->polled;
	s->windows_at_cut = s->windows_started;
}

static void add_comments(struct block_session *s, struct profile *prof,
			 const struct block_stats *st)
{
	char text[768];

	snprintf(text, sizeof(text),
		 "goscope block: %s (wait-reason table %s); %" PRIu64 " parks, %" PRIu64
		 " blocks (%" PRIu64 " woken without runtime.ready), %" PRIu64
		 " cancelled parks dropped (or woken by an unprobed path), %" PRIu64
		 " still blocked at the end, %" PRIu64 " below --min-delay, %" PRIu64
		 " lost (maps full), %" PRIu64
		 " probe hits skipped (headed for morestack, which re-runs the function)",
		 st->go_version, st->table_measured ? "measured" : "inferred", st->parks,
		 st->blocks, st->counted_without_ready, st->cancelled, st->still_blocked,
		 st->short_blocks, st->lost, st->restarts);
	profile_add_comment(prof, text);
	if (st->sampled_fraction < 1.0) {
		snprintf(text, sizeof(text),
			 "goscope block: throttled by --max-overhead %.3g%%: probes on %.2f%% of "
			 "the time in %u windows (cost per probe hit: trap %.0f ns + BPF %.0f ns); "
			 "counts and delays are scaled by 1/%.4f; %" PRIu64 " blocks outlived "
			 "their window's drain and were timed by polling the goroutine's status "
			 "(to %.0f ms)",
			 s->cfg.max_overhead_pct, st->sampled_fraction * 100, st->windows,
			 st->trap_cost_ns, st->bpf_cost_ns, st->sampled_fraction, st->polled,
			 BLOCK_TICK_NS / 1e6);
		profile_add_comment(prof, text);
	}
	if (st->labelled) {
		snprintf(text, sizeof(text),
			 "goscope block: %" PRIu64
			 " parks of goroutines with pprof labels, %" PRIu64
			 " label sets truncated (more than %d labels, keys over %d bytes or values "
			 "over %d bytes), %" PRIu64 " not readable or not kept",
			 st->labelled, st->labels_truncated, GS_LABELS_MAX, GS_LABEL_KEY_LEN,
			 GS_LABEL_VALUE_LEN, st->labels_unread);
		profile_add_comment(prof, text);
	}
	if (st->rejected.n) {
		snprintf(text, sizeof(text),
			 "goscope block: %" PRIu64 " samples left out as malformed: %.160s",
			 st->rejected.n, st->rejected.why);
		profile_add_comment(prof, text);
	}
	if (st->repaired_breakpoints) {
		snprintf(text, sizeof(text),
			 "goscope block: %" PRIu64 " leaked breakpoints from an earlier capture "
			 "repaired",
			 st->repaired_breakpoints);
		profile_add_comment(prof, text);
	}
	if (st->target_exec) {
		snprintf(text, sizeof(text),
			 "goscope block: target_exec: process %d exec'd another program; the old "
			 "image's probes were removed and its %" PRIu64 " pending parks dropped "
			 "(not reported as blocked); the new image is not captured",
			 s->cfg.pid, st->exec_dropped);
		profile_add_comment(prof, text);
	}
}

int block_cut_profile(struct block_session *s, bool still_blocked, uint64_t now,
		      struct profile **out, struct block_stats *stats)
{
	struct cut c = {.s = s, .stats = stats, .now = now};
	uint64_t on = block_duty_on_time(&s->duty, now) - s->on_at_cut;
	char fraction_label[32];
	int rc;

	*stats = s->info;
	stats->duration_ns = now - s->cut_at;
	stats->sampled_fraction = 1.0;
	stats->target_exited = s->exited;
	stats->target_exec = s->execed;
	stats->exec_dropped = s->exec_dropped;
	stats->ended_by = s->execed ? "target exec" : s->exited ? "target exited" : NULL;
	if (s->duty.state != BLOCK_DUTY_UNTHROTTLED) {
		/* The time this cut covers that the probes sampled; a cut between two
		 * on-windows sampled none of its own time: the fraction of the window its
		 * blocks started in then says what it is. */
		stats->sampled_fraction = on && stats->duration_ns
						  ? (double)on / (double)stats->duration_ns
						  : window_fraction(s, s->duty.gen, now);
		if (stats->sampled_fraction > 1.0)
			stats->sampled_fraction = 1.0;
		if (stats->sampled_fraction < 1.0) {
			snprintf(fraction_label, sizeof(fraction_label), "%.4f",
				 stats->sampled_fraction);
			c.fraction_label = fraction_label;
		}
	}
	c.prof = profile_new();
	if (!c.prof)
		return gs_error_set(s->err, -ENOMEM, "out of memory");
	profile_add_sample_type(c.prof, "contentions", "count");
	profile_add_sample_type(c.prof, "delay", "nanoseconds");
	profile_set_period(c.prof, "contentions", "count", 1);
	/* The locations of this cut's profile (the symbolizer's caches stay with the session). */
	stacks_set_profile(&s->stacks, c.prof);
	rc = take_agg(&c);
	/* Once the target has exited there is no blocked goroutine any more, so they are not
	 * reported then. */
	if (rc == 0 && still_blocked && !s->exited)
		rc = add_still_blocked(&c);
	stacks_set_profile(&s->stacks, NULL);
	if (rc < 0) {
		profile_free(c.prof);
		return rc;
	}
	cut_stats(s, stats);
	stats->labels_unread += c.labels_lost;
	stats->rejected = c.rejected;
	profile_set_time(c.prof, s->cut_wall, (int64_t)stats->duration_ns);
	add_comments(s, c.prof, stats);
	s->cut_at = now;
	s->cut_wall += (int64_t)stats->duration_ns;
	s->on_at_cut += on;
	*out = c.prof;
	return 0;
}
