// SPDX-License-Identifier: GPL-2.0
/* block.bpf.c — goroutine blocking profile from entry uprobes on the Go runtime (amd64,
 * register ABI, Go >= 1.17). Never a uretprobe: Go moves stacks and goroutines migrate
 * between threads, so return probes crash Go programs.
 *
 *  - block_gopark, on runtime.gopark: records g (R14) -> {now, reason (CL), stack, pprof label
 *    set (golabels.bpf.h)} in `pending`.
 *  - block_ready on runtime.ready(gp=RAX): the goroutine is runnable again; the delay is
 *    park -> ready, summed in the kernel per (stack, reason[, goid]) in `agg`.
 *  - block_netpollready on runtime.netpollready(toRun=RAX, pd=RBX, mode=ECX): the network
 *    poller hands IO waiters to the scheduler in batches, without ready. The waiting g is
 *    still in pd.rg / pd.wg at entry (netpollunblock takes it out next); IO-wait blocks end
 *    here, which is Go's own park -> ready point for them.
 *  - block_injectglist on runtime.injectglist(glist=RAX): the other batches made runnable
 *    without ready (GC assist queue, GC-cycle and weak-to-strong waiters, the scavenger and
 *    forcegc goroutines, netpoll leftovers already counted above). The list is walked
 *    through g.schedlink.
 *  - Cancelled parks (park_m's unlockf returned false, e.g. netpollblockcommit seeing data
 *    arrive) reach none of these: their pending entry is ended by the same g's next gopark,
 *    and userspace drops the ones left at the end whose g is not parked any more. So no
 *    probe on runtime.execute, which trapped once per schedule.
 *  - block_calibrate: an empty probe userspace times to learn the trap cost.
 *
 * Probe points (agent/capture/block_probes.c, block_probe_offset): a split-stack function is probed on its
 * stack-check branch, the `jbe morestack` right after `cmp 0x10(%r14),%rsp`. The kernel
 * emulates a conditional branch inside the trap instead of single-stepping it out of line,
 * so a hit costs one trap, not two. The cmp's flags are live there: CF or ZF set means the
 * branch is taken, morestack runs and the function restarts from its first byte (stack
 * growth, or a preemption request) and will hit the probe again; that hit is skipped, so
 * one call is one counted hit. Nosplit functions (netpollready) are probed at the entry.
 *
 * Stacks: at the probe nothing of gopark's frame exists yet, so RBP is still the caller's
 * frame and a frame-pointer walk from it starts at the caller's caller. The direct caller's
 * return address is at [SP]; the stack is {probe ip, [SP], FP walk from RBP...}. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "goscope/block.h"

#define GS_STAT_COUNT BLOCK_STAT_COUNT
#include "common.bpf.h"
#include "golabels.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set before load by userspace (agent/capture/block_attach.c, values from agent/goruntime/goversion_table.c). */
const volatile __u32 target_tgid = 0;
const volatile bool capture_goid = false;
const volatile __u32 goid_offset = 0; /* offset of runtime.g.goid */
const volatile bool filter_reasons = false;
const volatile __u8 reason_allowed[BLOCK_MAX_REASONS] = {};
const volatile __u64 min_delay_ns = 0;	     /* shorter blocks are not counted */
const volatile __u32 g_schedlink_offset = 0; /* offset of runtime.g.schedlink */
const volatile __u32 pd_rg_offset = 0;	     /* offsets of runtime.pollDesc.rg / .wg */
const volatile __u32 pd_wg_offset = 0;
const volatile __u32 g_tracking_seq_offset = 0; /* offset of runtime.g.trackingSeq, 0 = unknown */
/* The parking goroutine's pprof labels: offset of runtime.g.labels and the label set's
 * layout (enum gs_labels_layout; GS_LABELS_NONE: not read, the code is removed at load). */
const volatile __u32 g_labels_offset = 0;
const volatile __u8 labels_layout = GS_LABELS_NONE;
/* Bit (1 << enum block_probe) set: that function is probed on its stack-check branch. */
const volatile __u32 probe_on_branch = 0;

/* Written by userspace between sampling windows (duty cycling). */
__u32 window_gen = 0;
/* 0 while a throttled capture drains: gopark only ends the g's earlier park then. */
__u32 parks_open = 1;
/* Written by userspace at each cut (agent/capture/block_profile.c): blocks that end from now
 * on are summed apart from those the cut takes. */
__u32 cut_epoch = 0;

/* x86 EFLAGS bits; jbe is taken when either is set. */
#define EFLAGS_CF (1UL << 0)
#define EFLAGS_ZF (1UL << 6)
#define REASON_MASK 0xff
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
/* netpollready's mode argument (runtime/netpoll.go). */
#define NETPOLL_MODE_MASK 0xffffffffULL
#define NETPOLL_MODE_READ 'r'
#define NETPOLL_MODE_WRITE 'w'
#define NETPOLL_MODE_BOTH ('r' + 'w')
/* pollDesc.rg/wg hold nil, pdReady (1), pdWait (2) or a g pointer. */
#define PD_SENTINEL_MAX 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BLOCK_MAX_PENDING);
	__type(key, __u64); /* g pointer */
	__type(value, struct block_pending);
} pending SEC(".maps");

/* agg and stacks take new keys rarely once a capture is warm, so their entries are
 * allocated on insert (BPF_F_NO_PREALLOC) rather than all at load: stacks alone would
 * otherwise take 17 MB and most of the load time. pending, written on every park, stays
 * preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, BLOCK_MAX_AGG);
	__type(key, struct block_key);
	__type(value, struct block_value);
} agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
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

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

/* A hit on the stack-check branch that is about to go to morestack: the function re-runs
 * from its entry and hits the probe again, so this hit is counted as a restart only. */
static __always_inline bool restarting(struct pt_regs *ctx, enum block_probe which)
{
	if (!(probe_on_branch & (1u << which)) || !(ctx->flags & (EFLAGS_CF | EFLAGS_ZF)))
		return false;
	stat_inc(BLOCK_STAT_RESTARTS);
	return true;
}

SEC("uprobe")
int block_gopark(struct pt_regs *ctx)
{
	__u64 g = ctx->r14, fp = ctx->bp, ra = 0, h = FNV_OFFSET, goid = 0;
	__u8 reason = ctx->cx & REASON_MASK;
	struct block_pending p = {};
	struct block_stack *st;
	__u32 zero = 0, n;

	if (!is_target() || g == 0 || restarting(ctx, BLOCK_PROBE_GOPARK))
		return 0;
	stat_inc(BLOCK_STAT_PARKS);
	if (!parks_open || (filter_reasons && !reason_allowed[reason])) {
		if (parks_open)
			stat_inc(BLOCK_STAT_FILTERED);
		/* Not recorded, but it still ends this g's earlier park: that park was
		 * cancelled (or woken unseen), and this park's ready must not count it. */
		if (bpf_map_delete_elem(&pending, &g) == 0)
			stat_inc(BLOCK_STAT_OVERWRITTEN);
		return 0;
	}
	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return 0;
	/* One loop both collects and hashes the PCs: the verifier walks every iteration of a
	 * bounded loop, so a second pass over the PCs doubled the load time. */
	st->flags = 0;
	st->pcs[0] = ctx->ip;
	h = (h ^ ctx->ip) * FNV_PRIME;
	n = 1;
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)ctx->sp) == 0 && ra) {
		st->pcs[1] = ra;
		h = (h ^ ra) * FNV_PRIME;
		n = 2;
	} else {
		fp = 0; /* an unreadable stack: no frame walk either */
	}
	for (int i = 2; i <= BLOCK_MAX_FRAMES; i++) {
		__u64 ra = fp_step(&fp);

		if (!ra)
			break;
		if (i == BLOCK_MAX_FRAMES) {
			st->flags |= BLOCK_STACK_TRUNCATED;
			stat_inc(BLOCK_STAT_TRUNCATED);
			break;
		}
		st->pcs[i] = ra;
		h = (h ^ ra) * FNV_PRIME;
		n = i + 1;
		if (!fp)
			break;
	}
	st->n = n;
	h ^= h >> 29;
	/* Most stacks are known already: a lockless lookup first, the insert (which takes the
	 * hash bucket's lock) only for new ones. */
	if (!bpf_map_lookup_elem(&stacks, &h) &&
	    bpf_map_update_elem(&stacks, &h, st, BPF_NOEXIST) < 0 &&
	    !bpf_map_lookup_elem(&stacks, &h)) {
		stat_inc(BLOCK_STAT_STACKS_FULL);
		return 0;
	}
	if (capture_goid)
		bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + goid_offset));
	if (labels_layout != GS_LABELS_NONE) {
		__u64 set = go_labels_ptr(g, g_labels_offset);

		if (set)
			p.labels_id =
				go_labels_id(set, labels_layout, target_tgid, BLOCK_STAT_LABELLED);
	}
	p.park_ns = bpf_ktime_get_ns();
	p.stack_id = h;
	p.goid = goid;
	p.tid = (__u32)bpf_get_current_pid_tgid();
	p.window = window_gen;
	p.reason = reason;
	if (g_tracking_seq_offset)
		bpf_probe_read_user(&p.seq, sizeof(p.seq), (void *)(g + g_tracking_seq_offset));
	/* The common case is a new entry. A pending entry for the same g is a park that never
	 * completed: it was cancelled (unlockf returned false) — or woken by a path without a
	 * probe — and the goroutine is parking again. */
	if (bpf_map_update_elem(&pending, &g, &p, BPF_NOEXIST) == 0) {
		stat_inc(BLOCK_STAT_RECORDED);
		return 0;
	}
	if (bpf_map_lookup_elem(&pending, &g))
		stat_inc(BLOCK_STAT_OVERWRITTEN);
	if (bpf_map_update_elem(&pending, &g, &p, BPF_ANY) < 0)
		stat_inc(BLOCK_STAT_PENDING_FULL);
	else
		stat_inc(BLOCK_STAT_RECORDED);
	return 0;
}

static __always_inline void account(__u64 g, struct block_pending *p, __u64 now)
{
	struct block_key k = {.stack_id = p->stack_id,
			      .goid = p->goid,
			      .reason = p->reason,
			      .window = p->window,
			      .epoch = cut_epoch,
			      .labels_id = p->labels_id};
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

	if (!is_target() || restarting(ctx, BLOCK_PROBE_READY))
		return 0;
	stat_inc(BLOCK_STAT_READY);
	p = bpf_map_lookup_elem(&pending, &g);
	if (!p)
		return 0;
	stat_inc(BLOCK_STAT_COUNTED_READY);
	account(g, p, now);
	return 0;
}

/* Ends the pending park of g, if any, at now; returns 1 when one was counted. A global
 * function, which the verifier checks once rather than once per iteration of
 * injectglist's walk (its result is then an unknown scalar to the callers). */
__noinline int wake(__u64 g, __u64 now)
{
	struct block_pending *p = bpf_map_lookup_elem(&pending, &g);

	if (!p)
		return 0;
	account(g, p, now);
	return 1;
}

/* The g waiting in pollDesc slot off (rg or wg), if the slot holds one. */
static __always_inline __u64 pd_waiter(__u64 pd, __u32 off)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)(pd + off)) != 0)
		return 0;
	if (v <= PD_SENTINEL_MAX || (v & PTR_ALIGN_MASK))
		return 0;
	return v;
}

/* netpollready(toRun *gList, pd *pollDesc, mode int32): nosplit, so probed at its entry
 * (no stack check, no morestack restart). A slot read as pdWait while its goroutine is
 * committing the park would be missed; that g's park then ends at its next gopark. */
SEC("uprobe")
int block_netpollready(struct pt_regs *ctx)
{
	__u64 pd = ctx->bx, mode = ctx->cx & NETPOLL_MODE_MASK, now = bpf_ktime_get_ns(), g;
	int n = 0;

	if (!is_target() || restarting(ctx, BLOCK_PROBE_NETPOLL))
		return 0;
	stat_inc(BLOCK_STAT_NETPOLL);
	if (pd == 0)
		return 0;
	if (mode == NETPOLL_MODE_READ || mode == NETPOLL_MODE_BOTH) {
		g = pd_waiter(pd, pd_rg_offset);
		if (g)
			n += wake(g, now);
	}
	if (mode == NETPOLL_MODE_WRITE || mode == NETPOLL_MODE_BOTH) {
		g = pd_waiter(pd, pd_wg_offset);
		if (g)
			n += wake(g, now);
	}
	if (n > 0)
		stat_add(BLOCK_STAT_COUNTED_NETPOLL, n);
	return 0;
}

/* injectglist(glist *gList): gList.head is the first word in every version; the list is
 * linked through g.schedlink and ends with 0. */
SEC("uprobe")
int block_injectglist(struct pt_regs *ctx)
{
	__u64 glist = ctx->ax, g = 0, now = bpf_ktime_get_ns();
	int i;

	if (!is_target() || restarting(ctx, BLOCK_PROBE_INJECT))
		return 0;
	stat_inc(BLOCK_STAT_INJECT);
	if (glist == 0 || bpf_probe_read_user(&g, sizeof(g), (void *)glist) != 0)
		return 0;
	for (i = 0; i < BLOCK_MAX_INJECT; i++) {
		if (g == 0 || (g & PTR_ALIGN_MASK))
			break;
		if (wake(g, now))
			stat_inc(BLOCK_STAT_COUNTED_INJECT);
		if (bpf_probe_read_user(&g, sizeof(g), (void *)(g + g_schedlink_offset)) != 0)
			break;
	}
	if (i == BLOCK_MAX_INJECT && g)
		stat_inc(BLOCK_STAT_INJECT_CUT);
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
