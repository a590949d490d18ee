/* block.h — types shared by bpf/block.bpf.c and agent/capture/block_*.c: the pending-park record, the
 * in-kernel aggregation key/value, the stack records and the counters, plus the per-Go-version
 * facts the BPF programs need (passed through rodata). */
#ifndef GOSCOPE_BLOCK_H
#define GOSCOPE_BLOCK_H

#ifndef __VMLINUX_H__ /* userspace; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#include "goscope/golabels.h"

/* Frames kept per stack: {probe ip, [SP], frame-pointer walk...}. Go's own block profile
 * keeps 32 (<= 1.22) or 128 (1.23+) frames. */
#define BLOCK_MAX_FRAMES 128
/* Distinct stacks / (stack, reason[, goid]) keys / goroutines parked at once. */
#define BLOCK_MAX_STACKS 16384
#define BLOCK_MAX_AGG 65536
#define BLOCK_MAX_PENDING 65536
/* pprof label sets kept per block session (an LRU map, preallocated: 1 KiB each). */
#define BLOCK_MAX_LABELSETS 1024
/* Wait-reason numbers are uint8 in every Go version; what each number means depends on the
 * version (agent/goruntime/goversion_table.c). */
#define BLOCK_MAX_REASONS 256
/* Goroutines followed per runtime.injectglist call (the list is walked through
 * g.schedlink). The batches it gets are a netpoll result or a GC wait queue; longer ones are
 * cut (counted in BLOCK_STAT_INJECT_CUT) and their tail ends as cancelled/overwritten. */
#define BLOCK_MAX_INJECT 64

/* The probed runtime functions; also bit numbers of the rodata mask probe_on_branch. */
enum block_probe {
	BLOCK_PROBE_GOPARK,
	BLOCK_PROBE_READY,
	BLOCK_PROBE_NETPOLL,
	BLOCK_PROBE_INJECT,
	BLOCK_NPROBES,
};

enum block_stat {
	BLOCK_STAT_PARKS,	     /* gopark probe hits of the target */
	BLOCK_STAT_READY,	     /* ready probe hits */
	BLOCK_STAT_NETPOLL,	     /* netpollready probe hits */
	BLOCK_STAT_INJECT,	     /* injectglist probe hits */
	BLOCK_STAT_COUNTED_READY,    /* blocks completed at ready */
	BLOCK_STAT_COUNTED_NETPOLL,  /* blocks completed at netpollready (IO waits) */
	BLOCK_STAT_COUNTED_INJECT,   /* blocks completed at injectglist (GC wait queues) */
	BLOCK_STAT_INJECT_CUT,	     /* injectglist lists longer than BLOCK_MAX_INJECT */
	BLOCK_STAT_FILTERED,	     /* parks whose reason is not in --reasons */
	BLOCK_STAT_PENDING_FULL,     /* parks lost: the pending map was full */
	BLOCK_STAT_STACKS_FULL,	     /* parks lost: the stack map was full */
	BLOCK_STAT_AGG_FULL,	     /* blocks lost: the aggregation map was full */
	BLOCK_STAT_TRUNCATED,	     /* stacks deeper than BLOCK_MAX_FRAMES */
	BLOCK_STAT_OVERWRITTEN,	     /* a pending park ended by the same g's next park: it was
				    * cancelled, or woken by a path that is not probed */
	BLOCK_STAT_SHORT,	     /* blocks shorter than --min-delay */
	BLOCK_STAT_CALIBRATE,	     /* hits of the empty calibration probe */
	BLOCK_STAT_RESTARTS,	     /* hits skipped: the stack check was branching to morestack,
				    * which re-runs the function (and the probe) from its entry */
	BLOCK_STAT_RECORDED,	     /* parks recorded (in a sampling window, reason allowed) */
	BLOCK_STAT_LABELLED,	     /* recorded parks of goroutines with pprof labels */
	BLOCK_STAT_LABELS_TRUNCATED, /* of those, label sets cut (see goscope/golabels.h) */
	BLOCK_STAT_LABELS_UNREAD,    /* of those, label sets (partly) unreadable */
	BLOCK_STAT_COUNT,
};

/* A goroutine parked and not yet running again, keyed by its g pointer. */
struct block_pending {
	__u64 park_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) at gopark */
	__u64 stack_id;
	__u64 goid;   /* 0 unless goroutine ids are captured */
	__u32 tid;    /* thread that parked it */
	__u32 window; /* sampling window (duty cycle) the park started in */
	__u8 reason;  /* runtime waitReason number */
	__u8 seq;     /* g.trackingSeq at gopark (when its offset is known) */
	__u8 pad[6];
	__u64 labels_id; /* the parking goroutine's pprof labels in `labelsets` (0: none) */
};

/* Aggregation key: in-kernel sums per (stack, reason[, goid]) and pprof label set, apart per sampling window
 * (each is scaled by its own fraction) and per cut epoch (a cut takes the past epochs'
 * entries while new blocks go to the next one). */
struct block_key {
	__u64 stack_id;
	__u64 goid; /* 0 unless goroutine ids are captured */
	__u32 reason;
	__u32 window; /* the park's window (block_pending.window) */
	__u32 epoch;  /* cut_epoch when the block ended */
	__u32 pad;
	__u64 labels_id; /* block_pending.labels_id */
};

struct block_value {
	__u64 count;
	__u64 delay_ns;
};

/* A user stack: pcs[0] is the probe address inside runtime.gopark (leaf), then return
 * addresses. stack_id is a hash of the PCs. */
struct block_stack {
	__u32 n;
	__u32 flags;
	__u64 pcs[BLOCK_MAX_FRAMES];
};

#define BLOCK_STACK_TRUNCATED 1

#endif
