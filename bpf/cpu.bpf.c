// SPDX-License-Identifier: GPL-2.0
/* cpu.bpf.c — CPU sampling: a perf_event program on the software cpu-clock event of every
 * CPU. For target processes only (filtered here, in the kernel) it walks the user stack by
 * frame pointers, copies the top words at SP (for exact leaf frames, see cpu.h) and the
 * kernel stack when asked, and streams one record per sample through a ring buffer.
 * Exec and exit of a target are sent through the same ring (ordered with the samples): an
 * exec starts a new image under the same pid, an exit takes the pid out of the target map at
 * once (a process's pid may be reused at any time after). The map holds each target's start
 * time, so a reused pid is never sampled as the old target.
 * Nothing is lost silently: drops and truncations are counted in `stats`. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "goscope/cpu.h"

#define GS_STAT_COUNT CPU_STAT_COUNT
#include "common.bpf.h"
#include "golabels.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set before load by userspace. */
const volatile bool capture_kernel = false;
/* false: the label-reading code is dead and the verifier removes it at load (goscope cpu
 * --no-labels; tests/bench/labels_overhead.sh compares both). */
const volatile bool read_labels = true;

/* x86-64: kernel addresses are in the upper half of the address space. */
#define KERNEL_ADDR_MIN 0xffff800000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPU_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct cpu_target_value);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CPU_RINGBUF_BYTES);
} samples SEC(".maps");

/* Batched wakeups: see CPU_RINGBUF_WAKEUP_BYTES. */
static __always_inline void submit(struct cpu_sample *s)
{
	__u64 flags = bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= CPU_RINGBUF_WAKEUP_BYTES
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(s, flags);
}

static __always_inline void send_event(__u32 tgid, __u32 kind, __u64 start)
{
	struct cpu_event *e = bpf_ringbuf_reserve(&samples, sizeof(*e), 0);

	if (!e) {
		stat_inc(CPU_STAT_EVENT_DROPS);
		return;
	}
	e->pid = tgid;
	e->kind = kind;
	e->start_ticks = start;
	/* Rare and needed promptly (the exit frees the process's state): wake the reader. */
	bpf_ringbuf_submit(e, 0);
}

/* A target exec'd: the same pid runs another program from here on. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(cpu_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct cpu_target_value *v = bpf_map_lookup_elem(&targets, &tgid);
	__u64 start;

	if (!v)
		return 0;
	start = start_ticks(task);
	if (v->start_ticks != start)
		return 0;
	/* The old image's Go layout is not the new one's: no labels are read until userspace
	 * sets the new image's (cpu_session.c, at the exec record). */
	v->labels.layout = GS_LABELS_NONE;
	send_event(tgid, CPU_EVENT_EXEC, start);
	return 0;
}

/* A thread exited; when it was the last of a target process, the pid leaves the map now
 * (it may be reused from here on) and userspace is told. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(cpu_exit, struct task_struct *p)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct cpu_target_value *v = bpf_map_lookup_elem(&targets, &tgid);
	__u64 start;

	if (!v)
		return 0;
	/* do_exit decrements signal->live before this tracepoint: 0 once every thread is out. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	start = start_ticks(task);
	if (v->start_ticks != start)
		return 0;
	bpf_map_delete_elem(&targets, &tgid);
	stat_inc(CPU_STAT_EXITS);
	send_event(tgid, CPU_EVENT_EXIT, start);
	return 0;
}

SEC("perf_event")
int cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct cpu_target_value *v;
	struct cpu_sample *s;
	__u64 ip, sp, bp, fp, start;
	__u64 r14, set;
	bool in_kernel;
	__u32 n = 0;

	if (tgid == 0)
		return 0;
	v = bpf_map_lookup_elem(&targets, &tgid);
	if (!v)
		return 0;
	start = start_ticks(bpf_get_current_task_btf());
	if (v->start_ticks != start) {
		stat_inc(CPU_STAT_REUSED);
		return 0;
	}
	stat_inc(CPU_STAT_SAMPLES);
	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		stat_inc(CPU_STAT_RINGBUF_DROPS);
		return 0;
	}
	s->pid = tgid;
	s->tid = (__u32)id;
	s->start_ticks = start;
	s->flags = 0;
	s->n_user = 0;
	s->n_kernel = 0;
	s->labels_id = 0;

	in_kernel = ctx->regs.ip >= KERNEL_ADDR_MIN;
	if (in_kernel) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);

		s->flags |= CPU_SAMPLE_IN_KERNEL;
		ip = BPF_CORE_READ(uregs, ip);
		sp = BPF_CORE_READ(uregs, sp);
		bp = BPF_CORE_READ(uregs, bp);
		r14 = BPF_CORE_READ(uregs, r14);
		if (capture_kernel) {
			long len = bpf_get_stack(ctx, s->kernel, sizeof(s->kernel), 0);

			if (len > 0)
				s->n_kernel = len / sizeof(__u64);
			else
				stat_inc(CPU_STAT_KSTACK_ERRORS);
		}
	} else {
		ip = ctx->regs.ip;
		sp = ctx->regs.sp;
		bp = ctx->regs.bp;
		r14 = ctx->regs.r14;
	}
	s->ip = ip;
	s->sp = sp;
	s->bp = bp;
	if (ip == 0) {
		stat_inc(CPU_STAT_NO_USER_REGS);
		submit(s);
		return 0;
	}
	if (read_labels && v->labels.layout != GS_LABELS_NONE) {
		set = go_labels_ptr(go_current_g(&v->labels, ip, r14), v->labels.g_labels);
		if (set)
			s->labels_id = go_labels_id(set, v->labels.layout, tgid, CPU_STAT_LABELLED);
	}

	if (bpf_probe_read_user(s->window, sizeof(s->window), (void *)sp) != 0) {
		/* Near the top of a stack mapping: fall back to fewer words. */
		if (bpf_probe_read_user(s->window, CPU_STACK_WINDOW_MIN_WORDS * sizeof(__u64),
					(void *)sp) == 0)
			s->flags |= CPU_SAMPLE_WINDOW_SHORT;
		else
			s->flags |= CPU_SAMPLE_NO_WINDOW;
	}

	s->user[0] = ip;
	n = 1;
	fp = bp;
	for (int i = 0; i < CPU_MAX_USER_FRAMES - 1; i++) {
		__u64 ra = fp_step(&fp);

		if (!ra || n >= CPU_MAX_USER_FRAMES)
			break;
		s->user[n++] = ra;
		if (!fp)
			break;
		if (i == CPU_MAX_USER_FRAMES - 2) {
			s->flags |= CPU_SAMPLE_USER_TRUNCATED;
			stat_inc(CPU_STAT_TRUNCATED);
		}
	}
	s->n_user = n;
	submit(s);
	return 0;
}
