/* block_duty.c — the duty cycle that keeps a block capture within --max-overhead, as a state
 * machine (enum block_duty_state; block_duty_next decides, duty_enter acts).
 *
 * Throttling (--max-overhead < 100). A uprobe hit is a trap (calibrated at start-up). The
 * capture runs in cycles of BLOCK_CYCLE_NS: an on-window with every probe attached, then the
 * rest of the cycle off. The on-fraction is chosen from the cost of a probe hit (the calibrated
 * trap, plus the BPF programs' run time per hit measured on the workload in the first cycle
 * with probe hits), the probe hit rate measured while attached, and the target's own CPU time
 * (/proc/PID/stat), so that cost x hits stays within the budget. Sampling is by park: only
 * parks that start in an on-window are recorded (at the window's end gopark stops recording: it
 * then only ends its g's earlier park, which tells a cancelled park from a block), and their
 * wake-ups are still observed afterwards: the probes stay attached for a drain period, until
 * every park of the window is resolved (woken, or its goroutine seen not parked any more), but
 * for at most BLOCK_DRAIN_FACTOR on-windows, since attached probes cost the same whether they
 * record or not. The window's parks still blocked then are long blocks: with the probes
 * detached, userspace looks at their goroutines every tick (g status and wait reason, from
 * /proc/PID/mem; g.trackingSeq tells a later park from the same one) and counts each one's
 * block as ended at the midpoint of the tick in which it was first seen running again, or as
 * still blocked at the end of the capture. So a sampled park is measured with its full delay
 * whatever the window edge (long ones to a tick), and the counted parks are a time-uniform
 * sample of all parks: scaling counts and delays by 1/fraction is unbiased. The budget covers
 * the drains and the churn: destroying a perf-event uprobe takes about 100 ms here, with its
 * breakpoint still trapping for part of it (a uprobe_multi link, used where the kernel has
 * them, stops trapping at once but still takes 50 ms to close), so attaching and detaching
 * once per cycle can cost more than the window itself. block_plan_cycle stretches the cycle (up
 * to 10 s) until the churn and a shortest window fit. A generation number per window
 * (window_gen) tells leftovers from the current window's parks.
 *
 * The states, in cycle order:
 *   ON        every probe attached, gopark records parks (parks_open = 1), for on_len;
 *   DRAINING  still attached, parks closed: the window's parks resolve, until none is pending
 *             or drain_end;
 *   OFF       detached; the long blocks are polled every tick until cycle_end, then the next
 *             cycle is planned from what this one cost and a new ON begins.
 * UNTHROTTLED (every probe attached all along) and STOPPED (probes removed for good) have no
 * transition. */
#include <unistd.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"
#include "procs/proc.h"

double block_duty_fraction(double budget_pct, double trap_cost_ns, double hits_per_on_sec,
			   double target_cpu_per_sec)
{
	double cost_per_on_sec = trap_cost_ns * 1e-9 * hits_per_on_sec, f;

	if (budget_pct >= BLOCK_OVERHEAD_UNTHROTTLED || cost_per_on_sec <= 0)
		return 1.0;
	f = budget_pct / 100.0 * target_cpu_per_sec / cost_per_on_sec;
	if (f > 1.0)
		return 1.0;
	return f < BLOCK_MIN_FRACTION ? BLOCK_MIN_FRACTION : f;
}

void block_plan_cycle(double attach_frac, uint64_t churn_ns, double attached_per_on,
		      uint64_t prev_on_ns, uint64_t *on_ns, uint64_t *cycle_ns)
{
	double cycle = (double)BLOCK_CYCLE_NS, on, need;

	if (attached_per_on < 1.0)
		attached_per_on = 1.0;
	if (attach_frac >= 1.0) {
		on = cycle;
	} else {
		need = ((double)BLOCK_MIN_ON_NS * attached_per_on + (double)churn_ns) / attach_frac;
		if (need > cycle)
			cycle = need < (double)BLOCK_CYCLE_MAX_NS ? need
								  : (double)BLOCK_CYCLE_MAX_NS;
		on = (attach_frac * cycle - (double)churn_ns) / attached_per_on;
	}
	if (on > (double)prev_on_ns * BLOCK_FRACTION_GROWTH)
		on = (double)prev_on_ns * BLOCK_FRACTION_GROWTH;
	if (on < (double)BLOCK_MIN_ON_NS)
		on = (double)BLOCK_MIN_ON_NS;
	if (on > cycle)
		cycle = on;
	*on_ns = (uint64_t)on;
	*cycle_ns = (uint64_t)cycle;
}

enum block_duty_state block_duty_next(const struct block_duty *d, uint64_t now,
				      uint64_t window_pending)
{
	switch (d->state) {
	case BLOCK_DUTY_ON:
		/* The window starts after the attach, later than the now of the tick that
		 * opened it. */
		return now >= d->window_start && now - d->window_start >= d->on_len
			       ? BLOCK_DUTY_DRAINING
			       : BLOCK_DUTY_ON;
	case BLOCK_DUTY_DRAINING:
		return window_pending == 0 || now >= d->drain_end ? BLOCK_DUTY_OFF
								  : BLOCK_DUTY_DRAINING;
	case BLOCK_DUTY_OFF:
		return now >= d->cycle_end ? BLOCK_DUTY_ON : BLOCK_DUTY_OFF;
	case BLOCK_DUTY_UNTHROTTLED:
	case BLOCK_DUTY_STOPPED:
		break;
	}
	return d->state;
}

uint64_t block_duty_on_time(const struct block_duty *d, uint64_t now)
{
	if (d->state == BLOCK_DUTY_UNTHROTTLED)
		return 0;
	if (d->state == BLOCK_DUTY_ON && now > d->window_start)
		return d->on_total + (now - d->window_start);
	return d->on_total;
}

/* The next cycle's on-window and length, re-estimated from the cycle that ended at now. */
static void replan(struct block_session *s, struct block_duty *d, uint64_t now)
{
	uint64_t st[BLOCK_STAT_COUNT];
	uint64_t cpu = proc_cpu_ns(s->cfg.pid), hits, on_ns = d->on_len;
	double cycle_s = (double)(now - d->cycle_start) / 1e9, cpu_rate, probe_cpu, cost_ns;
	double attached_per_on = d->attached_ns ? (double)d->attached_ns / (double)on_ns : 1.0;
	uint64_t churn = d->attach_ns;
	double attached_s, attach_frac;

	/* Attaching and detaching cost attached time too: a uprobe link takes about
	 * 100 ms to destroy here, and its breakpoint can keep trapping meanwhile. The keeper
	 * says when its closes completed. */
	block_sync_detaches(s);
	if (d->detach_at && s->detach_done > d->detach_at)
		churn += s->detach_done - d->detach_at;
	attached_s = (double)((d->attached_ns ? d->attached_ns : on_ns) + churn) / 1e9;
	block_read_stats(s, st);
	if (s->bpf_stats_fd >= 0) {
		/* The programs' own cost, measured on this workload (its stack depths,
		 * its map sizes) in the first cycle with probe hits; stats are then turned
		 * off again, as they slow every BPF program of the machine a little. */
		double b = block_bpf_ns_per_hit(s);

		if (b > 0) {
			s->info.bpf_cost_ns = b;
			close(s->bpf_stats_fd);
			s->bpf_stats_fd = -1;
		}
	}
	hits = block_probe_hits(st) - d->hits_at_cycle;
	cost_ns = s->info.trap_cost_ns + s->info.bpf_cost_ns;
	probe_cpu = (double)hits * cost_ns;
	cpu_rate = ((double)(cpu - d->cpu_at_cycle) - probe_cpu) / 1e9 / cycle_s;
	if (cpu_rate < 0)
		cpu_rate = 0;
	/* The fraction of the time the probes may be attached, then the next cycle's
	 * on-window and length (block_plan_cycle). */
	attach_frac = block_duty_fraction(s->cfg.max_overhead_pct, cost_ns,
					  (double)hits / attached_s, cpu_rate);
	block_plan_cycle(attach_frac, churn, attached_per_on, d->on_len, &d->on_len, &d->cycle_len);
	d->attached_ns = 0;
	d->hits_at_cycle = block_probe_hits(st);
	d->cpu_at_cycle = cpu;
}

/* Entering ON: a new window (generation) with every probe attached. */
static int enter_on(struct block_session *s, struct block_duty *d, uint64_t now)
{
	int rc;

	if (d->state == BLOCK_DUTY_OFF) {
		/* Long blocks woken since the last tick are counted before the probes come
		 * back; then the cycle that ended is closed and the next one planned. */
		block_poll_long_blocks(s, d->last_poll, now);
		block_window_cycle_end(s, d->gen, now - d->cycle_start);
		replan(s, d, now);
	}
	d->gen++;
	s->skel->bss->window_gen = d->gen;
	d->state = BLOCK_DUTY_ON;
	d->cycle_start = now;
	d->cycle_end = now + d->cycle_len;
	d->detach_at = 0;
	s->windows_started++;
	s->skel->data->parks_open = 0;
	rc = block_attach_all(s);
	d->attach_ns = capture_monotonic_ns() - now;
	/* Registering uprobes takes milliseconds, and gopark's probe goes live somewhere in
	 * its registration: the window (the sampled time) starts after it, and only then may
	 * gopark record parks, so no park is sampled outside the time the fraction counts. */
	d->window_start = capture_monotonic_ns();
	block_window_begin(s, d->gen, now);
	s->skel->data->parks_open = 1;
	return rc;
}

/* Entering DRAINING: no new parks; wake-ups still seen, and a g parking again ends its
 * cancelled park. */
static void enter_draining(struct block_session *s, struct block_duty *d, uint64_t now)
{
	uint64_t on = capture_monotonic_ns() - d->window_start;

	d->on_total += on;
	block_window_on_end(s, d->gen, on);
	s->skel->data->parks_open = 0;
	d->state = BLOCK_DUTY_DRAINING;
	d->drain_end = now + BLOCK_DRAIN_FACTOR * d->on_len;
}

/* Entering OFF: every probe detached (closed by the probe keeper while the loop goes on);
 * long blocks are polled from the detach on. */
static void enter_off(struct block_session *s, struct block_duty *d)
{
	d->detach_at = capture_monotonic_ns();
	block_detach_all(s, true);
	d->last_poll = capture_monotonic_ns();
	d->attached_ns += d->last_poll - d->window_start;
	d->state = BLOCK_DUTY_OFF;
}

/* Does what entering next means. */
static int duty_enter(struct block_session *s, enum block_duty_state next, uint64_t now)
{
	struct block_duty *d = &s->duty;

	switch (next) {
	case BLOCK_DUTY_ON:
		return enter_on(s, d, now);
	case BLOCK_DUTY_DRAINING:
		enter_draining(s, d, now);
		return 0;
	case BLOCK_DUTY_OFF:
		enter_off(s, d);
		return 0;
	case BLOCK_DUTY_UNTHROTTLED:
	case BLOCK_DUTY_STOPPED:
		break;
	}
	d->state = next;
	return 0;
}

int block_duty_start(struct block_session *s, uint64_t now)
{
	struct block_duty *d = &s->duty;

	if (s->cfg.max_overhead_pct >= BLOCK_OVERHEAD_UNTHROTTLED) {
		d->state = BLOCK_DUTY_UNTHROTTLED;
		return block_attach_all(s);
	}
	/* The first window runs for BLOCK_MIN_ON_NS of a BLOCK_CYCLE_NS cycle; the plan is
	 * then learned from what it cost. */
	d->on_len = BLOCK_MIN_ON_NS;
	d->cycle_len = BLOCK_CYCLE_NS;
	d->cpu_at_cycle = proc_cpu_ns(s->cfg.pid);
	d->state = BLOCK_DUTY_STOPPED; /* no cycle before the first */
	return enter_on(s, d, now);
}

/* One duty-cycle step, every tick: the state's own work (DRAINING drops its window's
 * cancelled parks, OFF polls the long blocks), then as many transitions as are due now (a
 * drain can end, and a cycle with it, in the tick that ends the on-window). */
int block_duty_tick(struct block_session *s, uint64_t now)
{
	struct block_duty *d = &s->duty;
	uint64_t window_pending = 0;
	enum block_duty_state next;
	int rc;

	if (d->state == BLOCK_DUTY_OFF && now < d->cycle_end) {
		block_poll_long_blocks(s, d->last_poll, now);
		d->last_poll = now;
	}
	for (;;) {
		if (d->state == BLOCK_DUTY_DRAINING) {
			s->cancelled += block_drop_not_parked(s, d->gen);
			window_pending = block_pending_of_window(s, d->gen);
		}
		next = block_duty_next(d, now, window_pending);
		if (next == d->state)
			return 0;
		rc = duty_enter(s, next, now);
		if (rc < 0)
			return rc;
	}
}
