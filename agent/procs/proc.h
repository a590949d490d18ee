/* proc.h — the /proc parsers every part of goscope uses: whether a pid is a live process,
 * its stat line (state, start time, CPU time), its comm, and this process's own status
 * (capabilities, seccomp). One parser each, so that the kernel's formats (a comm may hold
 * spaces and parentheses) are handled in one place.
 *
 * Everything here reads files of other users' processes: a process can exit or change between
 * two reads, so every function reports failure instead of assuming. */
#ifndef GOSCOPE_AGENT_PROCS_PROC_H
#define GOSCOPE_AGENT_PROCS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

/* Capability numbers from linux/capability.h (CAP_PERFMON and CAP_BPF are 5.8+). */
#define PROC_CAP_DAC_READ_SEARCH 2
#define PROC_CAP_SYS_PTRACE 19
#define PROC_CAP_SYS_ADMIN 21
#define PROC_CAP_SYS_RESOURCE 24
#define PROC_CAP_PERFMON 38
#define PROC_CAP_BPF 39

/* What goscope uses of /proc/PID/stat. */
struct proc_stat {
	char state; /* R, S, D, Z, X, ... */
	pid_t ppid;
	uint64_t utime_ticks; /* user CPU time, clock ticks */
	uint64_t stime_ticks; /* system CPU time, clock ticks */
	uint64_t start_ticks; /* start time after boot, clock ticks: with the pid, a
				 * process's identity (a reused pid has a later start) */
	unsigned flags;	      /* PF_* flags (PF_KTHREAD marks kernel threads) */
};

/* Parses /proc/PID/stat under proc_root ("/proc" except in tests). -ESRCH when the process
 * is gone, -EINVAL when the line does not parse. */
int proc_stat_read(const char *proc_root, pid_t pid, struct proc_stat *st);
/* Parses one stat line (exposed for tests). */
int proc_stat_parse(const char *line, struct proc_stat *st);
/* True while pid exists and is not a zombie. */
bool proc_alive(pid_t pid);
/* 0 when pid is a live process; -ESRCH with a message otherwise. */
int proc_check_alive(pid_t pid, struct gs_error *err);
/* utime + stime of pid in nanoseconds, 0 when unreadable. */
uint64_t proc_cpu_ns(pid_t pid);
/* The thread group (process) id of task id tid, from /proc/TID/status; -errno. A thread id is
 * not listed in /proc but can be opened there like a process. */
pid_t proc_tgid(pid_t tid);
/* PF_KTHREAD in proc_stat.flags (include/linux/sched.h): a kernel thread. */
#define PROC_PF_KTHREAD 0x00200000u
/* 0 when pid is a live user-space process (not a kernel thread, not a thread id of another
 * process) whose executable this process may read; else -ESRCH / -EINVAL / -EACCES with a
 * message saying what pid is or what goscope lacks. */
int proc_check_target(pid_t pid, struct gs_error *err);
/* The process's comm ("" when unreadable), newline stripped. */
void proc_comm(const char *proc_root, pid_t pid, char *out, size_t len);

/* This process's own status (/proc/self/status). */
struct proc_self_status {
	uint64_t cap_eff; /* effective capabilities */
	int seccomp;	  /* 0 none, 1 strict, 2 filter; -1 unknown */
};
int proc_self_status(struct proc_self_status *st);
/* Whether this process has capability bit cap (CapEff). */
bool proc_self_has_cap(int cap);

#endif
