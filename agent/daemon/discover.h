/* discover.h — how the agent learns of new processes: a BPF tracepoint on exec
 * (sched_process_exec, every exec on the host, through a ring buffer) and a rescan of /proc
 * now and then, which catches what the ring lost (counted) and the processes that existed
 * before the agent started. The discoverer only names candidates (pid, start time); the
 * agent decides whether each is a Go process worth profiling (goproc_inspect, filters).
 * Exits are not reported here: the CPU session sees its targets exit.
 *
 * One thread. Nothing prints. */
#ifndef GOSCOPE_AGENT_DAEMON_DISCOVER_H
#define GOSCOPE_AGENT_DAEMON_DISCOVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

struct discover;

struct discover_config {
	const char *proc_root; /* "/proc" except in tests */
	unsigned rescan_ms;    /* full /proc rescan period; 0: DISCOVER_RESCAN_MS */
	bool no_exec_watch;    /* rescans only (no BPF): for measurements and fallbacks */

	/* The exec watcher wakes a discover_poll waiting on it at every exec. By default it
	 * does not (it wakes it only when its ring is a quarter full): an exec is then reported
	 * when the poll's timeout ends, so the caller's poll timeout bounds the latency, and an
	 * exec storm does not cost a wakeup per exec (tests/bench/agent_discovery.sh). */
	bool exec_wake_each;
};

#define DISCOVER_RESCAN_MS 30000

/* Called for a process that may be new: each pid of the first scan, each exec, and each pid
 * a rescan finds that known() says is unknown. start_ticks from /proc/PID/stat.
 * An exec is reported even when known() knows the process: the same (pid, start_ticks) then
 * runs another program (a shell or an entrypoint that exec'd a Go binary), to inspect again.
 * Candidates are reported after they are gathered (one call per process per poll). */
typedef void (*discover_found_fn)(void *arg, pid_t pid, uint64_t start_ticks);
/* Whether the caller already knows the process (pid, start_ticks): scans (the first one too)
 * skip those without opening their binaries. It should say true for every process found()
 * was told of that is still alive, Go or not: else each rescan reports every non-Go process
 * again (and counts it in rescan_found). */
typedef bool (*discover_known_fn)(void *arg, pid_t pid, uint64_t start_ticks);

/* Loads the exec watcher (unless no_exec_watch; when BPF cannot be loaded the error says why
 * and the caller may retry with no_exec_watch). The first discover_poll scans /proc. */
int discover_open(const struct discover_config *cfg, struct discover **out, struct gs_error *err);
/* Waits up to timeout_ms for exec events, reports them, and rescans /proc when one is due.
 * Returns 0 or -errno. (Unless exec_wake_each, it waits the whole timeout_ms, or until the
 * next rescan, and then reports what came.) */
int discover_poll(struct discover *d, int timeout_ms, discover_known_fn known,
		  discover_found_fn found, void *arg, struct gs_error *err);

struct discover_stats {
	uint64_t execs;		 /* exec events read */
	uint64_t ring_drops;	 /* exec events lost (ring full), caught by the next rescan */
	uint64_t rescans;	 /* full /proc scans */
	uint64_t rescan_found;	 /* processes a rescan found that no exec event named */
	uint64_t rescan_ns;	 /* CPU time spent rescanning (thread CPU clock) */
	uint64_t exec_ns;	 /* CPU time spent on exec events (thread CPU clock) */
	bool exec_watch;	 /* the BPF exec watcher is running */
	/* rescan_found leaves out the first scan's processes: they are counted here. */
	uint64_t first_scan_found;
	/* Execs the BPF program saw (execs + ring_drops + records not read yet). */
	uint64_t bpf_execs;
	/* The exec watcher's run time and runs, when kernel.bpf_stats_enabled is on (else 0). */
	uint64_t bpf_run_ns, bpf_runs;
};
void discover_stats(const struct discover *d, struct discover_stats *out);
/* Full scans done so far (discover_stats.rescans, without the system calls discover_stats
 * makes to read the BPF counters): the caller's cue that a scan ended. */
uint64_t discover_rescans(const struct discover *d);
/* The exec watcher's epoll fd (readable when exec records wait), for a caller that waits on
 * several sources; -1 without the watcher. discover_poll(d, 0, ...) then reads them. */
int discover_fd(const struct discover *d);
void discover_close(struct discover *d);

#endif
