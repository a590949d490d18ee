// SPDX-License-Identifier: GPL-2.0
/* block.bpf.c — goroutine blocking profile from entry uprobes on the Go runtime (amd64,
 * register ABI, Go >= 1.17). Never a uretprobe: Go moves stacks and goroutines migrate
 * between threads, so return probes crash Go programs.
 *
 *  - block_gopark, attached right after runtime.gopark's stack-check branch (so the
 *    morestack restart, which re-runs the function from its first byte, cannot fire it
 *    twice): records g (R14) -> {now, reason (CL), stack} in `pending`.
 *  - block_ready on runtime.ready(gp=RAX): the goroutine is runnable again; the delay is
 *    park -> ready, summed in the kernel per (stack, reason[, goid]) in `agg`.
 *  - block_execute on runtime.execute(gp=RAX, inheritTime=BL): a goroutine that runs again
 *    while still pending was made runnable without ready (the network poller's batches,
 *    GC assist queues): it is counted here — unless the park was cancelled (see below).
 *  - block_calibrate: an empty probe userspace times to learn the trap cost.
 *
 * Stacks: at the probe nothing of gopark's frame exists yet, so RBP is still the caller's
 * frame and a frame-pointer walk from it starts at the caller's caller. The direct caller's
 * return address is at [SP]; the stack is {probe ip, [SP], FP walk from RBP...}. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "goscope/block.h"

char LICENSE[] SEC("license") = "GPL";

/* Set before load by userspace (agent/block.c, values from agent/goversion_table.c). */
const volatile __u32 target_tgid = 0;
const volatile bool capture_goid = false;
const volatile __u32 goid_offset = 0;   /* offset of runtime.g.goid */
const volatile bool filter_reasons = false;
const volatile __u8 reason_allowed[BLOCK_MAX_REASONS] = {};
const volatile __u64 min_delay_ns = 0;  /* shorter blocks are not counted */

/* Written by userspace between sampling windows (duty cycling). */
__u32 window_gen = 0;

#define FP_ALIGN_MASK 7
#define REASON_MASK 0xff
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCK_MAX_PENDING);
	__type(key, __u64); /* g pointer */
	__type(value, struct block_pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCK_MAX_AGG);
	__type(key, struct block_key);
	__type(value, struct block_value);
} agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCK_MAX_STACKS);
	__type(key, __u64);
	__type(value, struct block_stack);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct block_stack);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BLOCK_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		(*v)++;
}

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("uprobe")
int block_gopark(struct pt_regs *ctx)
{
	__u64 g = ctx->r14, fp = ctx->bp, ra = 0, h = FNV_OFFSET, goid = 0;
	__u8 reason = ctx->cx & REASON_MASK;
	struct block_pending p = {};
	struct block_stack *st;
	__u32 zero = 0, n;

	if (!is_target() || g == 0)
		return 0;
	stat_inc(BLOCK_STAT_PARKS);
	if (filter_reasons && !reason_allowed[reason]) {
		stat_inc(BLOCK_STAT_FILTERED);
		return 0;
	}
	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return 0;
	st->flags = 0;
	st->pcs[0] = ctx->ip;
	n = 1;
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)ctx->sp) == 0 && ra)
		st->pcs[n++] = ra;
	for (int i = 0; i < BLOCK_MAX_FRAMES; i++) {
		__u64 frame[2]; /* saved BP, return address */

		if (fp == 0 || (fp & FP_ALIGN_MASK))
			break;
		if (bpf_probe_read_user(frame, sizeof(frame), (void *)fp) != 0 || frame[1] == 0)
			break;
		if (n >= BLOCK_MAX_FRAMES) {
			st->flags |= BLOCK_STACK_TRUNCATED;
			stat_inc(BLOCK_STAT_TRUNCATED);
			break;
		}
		st->pcs[n++] = frame[1];
		/* Callers' frames live at higher addresses; anything else ends the chain. */
		if (frame[0] <= fp)
			break;
		fp = frame[0];
	}
	st->n = n;
	for (int i = 0; i < BLOCK_MAX_FRAMES; i++) {
		if (i >= n)
			break;
		h = (h ^ st->pcs[i]) * FNV_PRIME;
	}
	h ^= h >> 29;
	if (bpf_map_update_elem(&stacks, &h, st, BPF_NOEXIST) < 0 &&
	    !bpf_map_lookup_elem(&stacks, &h)) {
		stat_inc(BLOCK_STAT_STACKS_FULL);
		return 0;
	}
	if (capture_goid)
		bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + goid_offset));
	p.park_ns = bpf_ktime_get_ns();
	p.stack_id = h;
	p.goid = goid;
	p.tid = (__u32)bpf_get_current_pid_tgid();
	p.window = window_gen;
	p.reason = reason;
	/* A pending entry for the same g is a park that never completed: it was cancelled
	 * (unlockf returned false) and the goroutine is parking again. */
	if (bpf_map_lookup_elem(&pending, &g))
		stat_inc(BLOCK_STAT_OVERWRITTEN);
	if (bpf_map_update_elem(&pending, &g, &p, BPF_ANY) < 0)
		stat_inc(BLOCK_STAT_PENDING_FULL);
	return 0;
}

static __always_inline void account(__u64 g, struct block_pending *p, __u64 now)
{
	struct block_key k = {.stack_id = p->stack_id, .goid = p->goid, .reason = p->reason};
	__u64 delay = now > p->park_ns ? now - p->park_ns : 0;
	struct block_value *v, nv = {.count = 1, .delay_ns = delay};

	if (delay < min_delay_ns) {
		stat_inc(BLOCK_STAT_SHORT);
		goto out;
	}
	v = bpf_map_lookup_elem(&agg, &k);
	if (!v) {
		if (bpf_map_update_elem(&agg, &k, &nv, BPF_NOEXIST) == 0)
			goto out;
		v = bpf_map_lookup_elem(&agg, &k);
		if (!v) {
			stat_inc(BLOCK_STAT_AGG_FULL);
			goto out;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->delay_ns, delay);
out:
	bpf_map_delete_elem(&pending, &g);
}

SEC("uprobe")
int block_ready(struct pt_regs *ctx)
{
	__u64 g = ctx->ax, now = bpf_ktime_get_ns();
	struct block_pending *p;

	if (!is_target())
		return 0;
	stat_inc(BLOCK_STAT_READY);
	p = bpf_map_lookup_elem(&pending, &g);
	if (!p)
		return 0;
	stat_inc(BLOCK_STAT_COUNTED_READY);
	account(g, p, now);
	return 0;
}

/* A goroutine that reaches execute while still pending was not readied. Two cases:
 *  - it was made runnable in a batch without ready (netpoll -> injectglist / findRunnable
 *    taking it directly, GC assist queues): a real block, counted with delay park -> now;
 *  - its park was cancelled: park_m ran unlockf, which returned false, and park_m calls
 *    execute(gp, inheritTime=true) at once on the same thread.
 * Rule: cancelled iff inheritTime is true and the thread is the one that parked it. Every
 * other path to execute with a pending g passes inheritTime=false: goroutines woken without
 * ready go to run queues through injectglist/globrunqput (never runnext), or are returned by
 * findRunnable's netpoll paths with inheritTime=false; only runnext (filled by ready, which
 * already removed the pending entry) and park_m's cancel path give true. */
SEC("uprobe")
int block_execute(struct pt_regs *ctx)
{
	__u64 g = ctx->ax, now = bpf_ktime_get_ns();
	bool inherit = (ctx->bx & REASON_MASK) != 0;
	struct block_pending *p;

	if (!is_target())
		return 0;
	stat_inc(BLOCK_STAT_EXECUTE);
	p = bpf_map_lookup_elem(&pending, &g);
	if (!p)
		return 0;
	if (inherit && p->tid == (__u32)bpf_get_current_pid_tgid()) {
		stat_inc(BLOCK_STAT_CANCELLED);
		bpf_map_delete_elem(&pending, &g);
		return 0;
	}
	stat_inc(BLOCK_STAT_COUNTED_EXEC);
	account(g, p, now);
	return 0;
}

/* Empty probe on a function of goscope itself: userspace times calls to learn what one
 * uprobe hit costs on this machine. */
SEC("uprobe")
int block_calibrate(struct pt_regs *ctx)
{
	stat_inc(BLOCK_STAT_CALIBRATE);
	return 0;
}
