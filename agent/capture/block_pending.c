/* block_pending.c — pending-park tracking from userspace. The BPF side keeps a goroutine's
 * park in the `pending` map until a wake-up probe ends it; what no probe sees is handled here
 * by looking at the goroutine itself in /proc/PID/mem (g status, wait reason, trackingSeq):
 * parks that were cancelled (dropped), and, while the probes are detached, long blocks that
 * outlived their window's drain (timed by polling, counted into agg as the BPF side would). */
#include <stdint.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"

/* Whether the goroutine of a pending park is still in that park: g.atomicstatus is
 * _Gwaiting (GC may have set the scan bit) and g.waitreason is the park's. A pending g that
 * is not was cancelled (park_m's unlockf returned false) or woken by a path without a probe
 * (GC workers, the trace reader) and has not parked since. Unreadable memory counts as
 * parked: the caller keeps the entry as before. */
bool block_g_still_parked(struct block_session *s, uint64_t g, const struct block_pending *p)
{
	uint32_t status;
	uint8_t reason, seq;

	if (s->mem_fd < 0)
		return true;
	if (pread(s->mem_fd, &status, sizeof(status), (off_t)(g + s->facts.g_atomicstatus)) !=
		    sizeof(status) ||
	    pread(s->mem_fd, &reason, sizeof(reason), (off_t)(g + s->facts.g_waitreason)) !=
		    sizeof(reason))
		return true;
	if ((status & ~(uint32_t)G_STATUS_SCAN) != G_STATUS_WAITING || reason != p->reason)
		return false;
	/* Waiting again for the same reason after a wake-up we did not see (probes detached)
	 * is a later park: g.trackingSeq moved on by more than the park's own step. */
	if (s->facts.g_tracking_seq && pread(s->mem_fd, &seq, sizeof(seq),
					     (off_t)(g + s->facts.g_tracking_seq)) == sizeof(seq))
		return seq == (uint8_t)(p->seq + 1);
	return true;
}

typedef bool (*pending_visit_fn)(struct block_session *s, __u64 g, const struct block_pending *p,
				 void *arg);

/* Calls visit for each pending park; returns how many visits returned true. visit may delete
 * its entry: a BPF hash map restarts get_next_key from its first key when the key passed is
 * gone, so the next key is taken before the visit. */
static uint64_t pending_each(struct block_session *s, pending_visit_fn visit, void *arg)
{
	int fd = bpf_map__fd(s->skel->maps.pending);
	__u64 key, next;
	struct block_pending p;
	uint64_t n = 0;
	int more = bpf_map_get_next_key(fd, NULL, &key) == 0;

	while (more) {
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		if (bpf_map_lookup_elem(fd, &key, &p) == 0 && visit(s, key, &p, arg))
			n++;
		key = next;
	}
	return n;
}

/* While the probes are attached, a pending park of the window whose goroutine is not parked
 * any more was cancelled (a wake-up would have ended it): removes it. Older windows' parks
 * are left to block_poll_long_blocks. */
static bool visit_cancelled(struct block_session *s, __u64 g, const struct block_pending *p,
			    void *arg)
{
	uint32_t gen = *(const uint32_t *)arg;

	if (p->window != gen || block_g_still_parked(s, g, p))
		return false;
	/* A wake-up probe may have ended it meanwhile: count only a real removal. */
	return bpf_map_delete_elem(bpf_map__fd(s->skel->maps.pending), &g) == 0;
}

/* Drops window gen's cancelled parks (visit_cancelled); returns how many. */
uint64_t block_drop_not_parked(struct block_session *s, uint32_t gen)
{
	return pending_each(s, visit_cancelled, &gen);
}

struct poll_span {
	uint64_t half; /* half the time since the last look */
};

/* A long block, seen ended now: it ended since this entry's last look, which was about one
 * polling interval before this look (the map is walked in the same order each time), and is
 * counted at the middle of that interval, into agg like the blocks the BPF programs count. */
static bool visit_long_block(struct block_session *s, __u64 g, const struct block_pending *p,
			     void *arg)
{
	const struct poll_span *span = arg;
	int afd = bpf_map__fd(s->skel->maps.agg);
	struct block_key k;
	struct block_value v = {0};
	uint64_t end, delay;

	if (block_g_still_parked(s, g, p))
		return false;
	end = capture_monotonic_ns() - span->half;
	bpf_map_delete_elem(bpf_map__fd(s->skel->maps.pending), &g);
	s->polled++;
	delay = end > p->park_ns ? end - p->park_ns : 0;
	if (delay < s->cfg.min_delay_ns) {
		s->polled_short++;
		return true;
	}
	k = (struct block_key){.stack_id = p->stack_id,
			       .goid = p->goid,
			       .reason = p->reason,
			       .window = p->window,
			       .epoch = s->epoch,
			       .labels_id = p->labels_id};
	bpf_map_lookup_elem(afd, &k, &v);
	v.count++;
	v.delay_ns += delay;
	if (bpf_map_update_elem(afd, &k, &v, BPF_ANY) < 0)
		s->polled_lost++;
	return true;
}

/* Long blocks, while the probes are detached (so no BPF program writes agg meanwhile): the
 * goroutines of pending parks are looked at (status, wait reason, trackingSeq, from
 * /proc/PID/mem); since is the time of the last look (or of the detach). */
void block_poll_long_blocks(struct block_session *s, uint64_t since, uint64_t now)
{
	struct poll_span span = {.half = now > since ? (now - since) / 2 : 0};

	pending_each(s, visit_long_block, &span);
}

static bool visit_of_window(struct block_session *s, __u64 g, const struct block_pending *p,
			    void *arg)
{
	(void)s;
	(void)g;
	return p->window == *(const uint32_t *)arg;
}

/* Pending parks of window gen. */
uint64_t block_pending_of_window(struct block_session *s, uint32_t gen)
{
	return pending_each(s, visit_of_window, &gen);
}
