/* common.bpf.h — what every goscope BPF program family shares: the per-CPU counter map that
 * userspace sums (capture_percpu_sums in agent/capture/core.c), a process's start time and
 * one step of the Go frame-pointer walk. Include after vmlinux.h and bpf_helpers.h, with
 * GS_STAT_COUNT defined as the family's number of counters. */
#ifndef GOSCOPE_BPF_COMMON_H
#define GOSCOPE_BPF_COMMON_H

#include <bpf/bpf_core_read.h>

#ifndef GS_STAT_COUNT
#error "define GS_STAT_COUNT (the number of per-CPU counters) before including common.bpf.h"
#endif

/* Go's frames and goroutine pointers are 8-byte aligned on amd64: anything else read as one
 * is not one. */
#define PTR_ALIGN_MASK 7

/* Clock ticks per second of /proc/PID/stat's start time (USER_HZ, 100 on every arch goscope
 * runs on; CPU_USER_HZ in include/goscope/cpu.h). */
#define GS_USER_HZ 100

/* The start time of task's process in clock ticks after boot, as /proc/PID/stat gives it
 * (nsec_to_clock_t of the group leader's start_boottime; exec keeps it): with the pid, a
 * process's identity in every goscope program. */
static __always_inline __u64 start_ticks(struct task_struct *task)
{
	__u64 ns = BPF_CORE_READ(task, group_leader, start_boottime);

	return ns / (1000000000ULL / GS_USER_HZ);
}

/* Counters: drops, truncations and what each probe saw, so that nothing is lost silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GS_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += n;
}

static __always_inline void stat_inc(__u32 which)
{
	stat_add(which, 1);
}

/* One step of a frame-pointer walk: reads the frame at *fp ({saved BP, return address}, Go's
 * amd64 frame layout) and returns its return address, or 0 when there is no readable frame
 * there (the chain ends). *fp moves to the caller's frame, or to 0 when the saved BP is not
 * above this frame (callers' frames live at higher addresses; anything else is the end of the
 * chain or garbage). */
static __always_inline __u64 fp_step(__u64 *fp)
{
	__u64 frame[2];

	if (*fp == 0 || (*fp & PTR_ALIGN_MASK))
		return 0;
	if (bpf_probe_read_user(frame, sizeof(frame), (void *)*fp) != 0 || frame[1] == 0)
		return 0;
	*fp = frame[0] > *fp ? frame[0] : 0;
	return frame[1];
}

#endif
