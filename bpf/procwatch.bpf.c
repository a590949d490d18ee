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

/* Set before load by userspace (discover_config.exec_wake_each). */
const volatile bool wake_each = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PROCWATCH_RINGBUF_BYTES);
} execs SEC(".maps");

/* The current task has just exec'd (after de_thread: it is its process's leader, pid = tgid).
 * With wake_each, flags 0: the kernel wakes a waiting reader when it had drained the ring
 * (every exec when execs are sparse); else the reader is woken only when the ring holds
 * PROCWATCH_WAKEUP_BYTES and otherwise reads the ring when its poll times out. */
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
	if (wake_each)
		bpf_ringbuf_submit(e, 0);
	else
		bpf_ringbuf_submit(e, bpf_ringbuf_query(&execs, BPF_RB_AVAIL_DATA) >=
						      PROCWATCH_WAKEUP_BYTES
					      ? BPF_RB_FORCE_WAKEUP
					      : BPF_RB_NO_WAKEUP);
	return 0;
}
