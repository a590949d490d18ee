// SPDX-License-Identifier: GPL-2.0
/* procwatch.bpf.c — the agent's exec watcher: on every exec on the host (the sched_process_exec
 * tracepoint) it sends the process's (pid, start time) through a ring buffer, so that the agent
 * learns of a new process at once instead of at its next /proc rescan. Nothing else: deciding
 * whether the process is worth profiling is userspace's job (agent/daemon/discover.c).
 * Records that do not fit in the ring are counted in `stats`, never lost silently. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "goscope/procwatch.h"

#define GS_STAT_COUNT PROCWATCH_STAT_COUNT
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PROCWATCH_RINGBUF_BYTES);
} execs SEC(".maps");

/* The current task has just exec'd (after de_thread: it is its process's leader, pid = tgid).
 * Flags 0: the kernel wakes the reader only when it had drained the ring, so an exec storm
 * costs one wakeup per drain, not one per exec. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(procwatch_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct procwatch_event *e;

	stat_inc(PROCWATCH_STAT_EXECS);
	e = bpf_ringbuf_reserve(&execs, sizeof(*e), 0);
	if (!e) {
		stat_inc(PROCWATCH_STAT_DROPS);
		return 0;
	}
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->pad = 0;
	e->start_ticks = start_ticks(bpf_get_current_task_btf());
	bpf_ringbuf_submit(e, 0);
	return 0;
}
