/* cpu.h — types shared by bpf/cpu.bpf.c and agent/capture/cpu.c: one CPU sample as the BPF program
 * hands it to userspace through the ring buffer, the exec/exit records it sends through the
 * same ring (so that they are ordered with the samples), and the counters it keeps. Each
 * sample carries the id of the pprof label set of the goroutine it caught (goscope/golabels.h). */
#ifndef GOSCOPE_CPU_H
#define GOSCOPE_CPU_H

#include "goscope/golabels.h"

/* Frames of the user stack walked by frame pointers in BPF (Go keeps frame pointers). */
#define CPU_MAX_USER_FRAMES 256
/* Kernel frames from bpf_get_stack (kernel.perf_event_max_stack defaults to 127). */
#define CPU_MAX_KERNEL_FRAMES 64
/* Words copied from the user SP, so userspace can read the leaf's return address at
 * [SP + pcsp(pc)] when the leaf's frame is not set up (prologue, epilogue, frameless leaf). */
#define CPU_STACK_WINDOW_WORDS 32
#define CPU_STACK_WINDOW_MIN_WORDS 4
/* Processes whose samples are kept (the filter is in the kernel): the default size of the
 * target map (cpu_session_config.max_targets sets another before load). */
#define CPU_MAX_TARGETS 4096
/* Clock ticks per second of /proc/PID/stat's start time (USER_HZ, 100 on every arch goscope
 * runs on): BPF turns task->start_boottime into the same unit. */
#define CPU_USER_HZ 100
#define CPU_RINGBUF_BYTES (8u << 20)
/* Samples are submitted without waking the reader (a wakeup per sample costs the reader a
 * context switch on a CPU the target wants): userspace drains the ring every poll period,
 * and BPF wakes it early only once this much data is waiting. */
#define CPU_RINGBUF_WAKEUP_BYTES (CPU_RINGBUF_BYTES / 4)

enum cpu_sample_flags {
	CPU_SAMPLE_IN_KERNEL = 1 << 0,	    /* the CPU was in kernel mode */
	CPU_SAMPLE_USER_TRUNCATED = 1 << 1, /* the user stack had more frames */
	CPU_SAMPLE_WINDOW_SHORT = 1 << 2,   /* only CPU_STACK_WINDOW_MIN_WORDS could be read */
	CPU_SAMPLE_NO_WINDOW = 1 << 3,	    /* the stack window could not be read */
};

enum cpu_stat {
	CPU_STAT_SAMPLES,	/* samples of target processes */
	CPU_STAT_RINGBUF_DROPS, /* samples lost because the ring buffer was full */
	CPU_STAT_TRUNCATED,	/* user stacks deeper than CPU_MAX_USER_FRAMES */
	CPU_STAT_KSTACK_ERRORS, /* bpf_get_stack failed for the kernel stack */
	CPU_STAT_NO_USER_REGS,	/* no user registers (kernel thread of a target) */
	CPU_STAT_REUSED,	/* samples of a target's pid that is another process now */
	CPU_STAT_EVENT_DROPS,	/* exec/exit records lost because the ring buffer was full */
	CPU_STAT_EXITS,		/* target processes that exited (pruned from the map in BPF) */
	CPU_STAT_LABELLED,	/* samples of a goroutine with pprof labels */
	CPU_STAT_LABELS_TRUNCATED, /* of those, label sets cut (GS_LABELS_MORE, _KEY_CUT, _VALUE_CUT) */
	CPU_STAT_LABELS_UNREAD, /* of those, label sets (partly) unreadable (GS_LABELS_UNREAD) */
	CPU_STAT_COUNT,
};

/* A record of the ring that is not a sample (told apart by its size): a target exec'd (its
 * pid now runs a new image: samples after this record are of the new image) or exited (the
 * last thread of the process: BPF took it out of the target map). */
enum cpu_event_kind {
	CPU_EVENT_EXEC = 1,
	CPU_EVENT_EXIT = 2,
};

struct cpu_event {
	__u32 pid; /* tgid */
	__u32 kind;
	__u64 start_ticks; /* the process's start time, as in cpu_sample */
};

/* The target map's value: the start time of the process the pid was added for, so that a
 * pid reused by another process is not sampled as the target. */
struct cpu_target_value {
	__u64 start_ticks;
	struct gs_labels_cfg labels; /* how to read its goroutines' labels */
};

struct cpu_sample {
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 flags;
	__u16 n_user;
	__u16 n_kernel;
	__u64 start_ticks; /* start of the process after boot, clock ticks (/proc/PID/stat) */
	__u64 ip;	   /* user registers at the sample (or at kernel entry) */
	__u64 sp;
	__u64 bp;
	__u64 window[CPU_STACK_WINDOW_WORDS];
	__u64 labels_id; /* the sampled goroutine's pprof labels in `labelsets` (0: none) */
	__u64 kernel[CPU_MAX_KERNEL_FRAMES];
	__u64 user[CPU_MAX_USER_FRAMES]; /* user[0] = ip, then return addresses */
};

#endif
