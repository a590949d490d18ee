/* block.h — the goroutine blocking profile capability: config in, pprof profiles out (shaped
 * like Go's own block profile). A block_session follows one target for as long as the caller
 * wants and cuts it into windows (the agent); block_capture is one session with one final cut
 * (`goscope block`, cmd_block.c). The implementation is split by concern: block_impl.h says
 * which file holds what. */
#ifndef GOSCOPE_AGENT_BLOCK_H
#define GOSCOPE_AGENT_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/block.h"
#include "goscope/error.h"
#include "profile/profile.h"

/* --max-overhead at or above this means unthrottled. */
#define BLOCK_OVERHEAD_UNTHROTTLED 100.0

struct block_config {
	pid_t pid;
	uint64_t duration_ns;	 /* 0 = until stopped or the target exits */
	uint64_t min_delay_ns;	 /* blocks shorter than this are not counted */
	const char *reasons;	 /* comma-separated wait reason strings, NULL = all */
	double max_overhead_pct; /* estimated added CPU vs the target's own; >= 100 = unthrottled */
	bool goroutine_ids;	 /* numeric label goid */
	bool perf_uprobes;	 /* perf-event uprobes even where uprobe_multi links exist */
	volatile const int *stop; /* polled; nonzero ends the capture (may be NULL) */
	/* Called once every probe is attached (may be NULL). */
	void (*on_attached)(void *arg, const char *go_version);
	void *arg;
};

struct block_stats {
	char go_version[64];
	bool table_measured; /* the wait-reason/offset table is measured for this version */
	uint64_t parks;	     /* parks recorded: in a sampling window, reason allowed */
	uint64_t blocks;     /* completed blocks counted (before scaling) */
	uint64_t counted_without_ready; /* of which completed at netpollready/injectglist */
	uint64_t cancelled;		/* parks ended without a wake-up seen: cancelled (or woken
				     * by an unprobed path), dropped */
	uint64_t still_blocked;		/* goroutines still blocked at the end */
	uint64_t lost;			/* pending/stack/aggregation maps full */
	uint64_t polled;       /* throttled: blocks that outlived their drain, timed by polling */
	uint64_t short_blocks; /* below --min-delay */
	uint64_t restarts;     /* probe hits skipped: headed for morestack (re-run) */
	uint64_t labelled;     /* parks of goroutines with pprof labels */
	uint64_t labels_truncated; /* of those, label sets cut (goscope/golabels.h limits) */
	uint64_t labels_unread;	   /* of those, label sets not (fully) read or not kept */
	double trap_cost_ns;	   /* calibrated cost of one uprobe hit (throttled captures) */
	double bpf_cost_ns;	 /* BPF run time per hit, measured in the first cycle (throttled) */
	double sampled_fraction; /* 1 when unthrottled */
	unsigned windows;	 /* sampling windows (throttled) */
	uint64_t duration_ns;
	const char *ended_by; /* "duration", "signal", "target exited", "target exec" */
	const char *probes;   /* "uprobe_multi" or "perf-event" (see load_bpf, block_attach.c) */
	bool target_exited;   /* block_session_cut: the target is gone (probes removed) */
	/* block_session_cut: the target exec'd (it is a new program now): the old image's
	 * probes were removed and its pending parks dropped (exec_dropped), not reported as
	 * blocked; the new image is not captured (target_exited is set too). */
	bool target_exec;
	uint64_t exec_dropped;
	/* Breakpoints an earlier capture leaked at this target's probe points (a goscope killed
	 * while the kernel (un)registered a uprobe), found and repaired at the open. */
	uint64_t repaired_breakpoints;
	struct profile_rejects rejected; /* samples the profile refused: left out */
};

/* ---- Sessions: one target, probes placed once, cut into windows ---- */

struct block_session;

/* Opens a session on cfg->pid: reads the target's binary (Go version, probe points), loads
 * the BPF programs, calibrates the trap cost when throttled, and attaches (the first sampling
 * window when throttled). cfg->duration_ns, stop and on_attached are not used by the session
 * (the caller decides when to cut and to stop); cfg->reasons is copied. Errors as
 * block_capture. */
int block_session_open(const struct block_config *cfg, struct block_session **out,
		       struct gs_error *err);
/* One step of the duty cycle (call it every BLOCK_TICK_NS or so): ends an on-window, a drain
 * or an off period when due, polls the long blocks, checks now and then that the target still
 * runs (once it has exited every probe is removed and this returns 0). -errno when a window
 * could not be attached to a live target. */
#define BLOCK_TICK_NS 20000000ULL
int block_session_tick(struct block_session *s, uint64_t now, struct gs_error *err);
/* The profile of the blocks that ended since the previous cut (or the open), each scaled by
 * the sampled fraction of the window its park started in; stats holds this window's counts
 * and the session's facts (go version, costs, probe kind), duration_ns the window's length.
 * With final: every probe is removed first (the session only cuts nothing more after it), and
 * goroutines still blocked are reported too (label still_blocked=true, their delay so far)
 * when the target still runs. A park that spans a cut is counted once, in the window its
 * block ends. */
int block_session_cut(struct block_session *s, bool final, struct profile **out,
		      struct block_stats *stats, struct gs_error *err);
/* Whether the target still runs (the same process: its start time is checked). When it is
 * gone, every probe is removed. */
bool block_session_target_alive(struct block_session *s);
/* Removes every probe (synchronously), unloads the BPF programs, frees s. NULL is fine. */
void block_session_close(struct block_session *s);

/* Where each probe is, for whoever must check them (tests: no breakpoint left). */
struct block_probe_point {
	const char *function; /* "runtime.gopark", ... */
	uint64_t file_offset; /* in the target's executable */
	uint64_t vaddr;	      /* link-time address (add the load bias for a PIE) */
	bool used;	      /* attached in this session (netpollready is not without IO wait) */
	bool on_branch;	      /* on the stack-check branch, else at the entry */
};
void block_session_probes(const struct block_session *s,
			  struct block_probe_point out[BLOCK_NPROBES]);
/* Links (uprobe_multi fds or perf-event uprobes) attached now, or still being destroyed. */
unsigned block_session_live_links(const struct block_session *s);

/* Captures until the duration passes, *stop becomes nonzero or the target exits, and returns
 * the profile of what was captured (one session, one final cut). -EPROTONOSUPPORT for a target older than Go 1.17,
 * -EINVAL for a bad config (unknown wait reason), -ENOEXEC for a non-Go target. */
int block_capture(const struct block_config *cfg, struct profile **out, struct block_stats *stats,
		  struct gs_error *err);

/* The next throttled cycle, from what the last one cost: attach_frac is the fraction of the
 * time the probes may be attached (block_duty_fraction), churn_ns the attached time that
 * attaching and detaching them took, attached_per_on the last (on-window + drain) /
 * on-window. The cycle is stretched (up to 10 s) until a shortest on-window plus the churn
 * fit the budget; the on-window fills the rest of it, at most doubling from prev_on_ns (a
 * cycle that saw the target idle makes any window look affordable). */
void block_plan_cycle(double attach_frac, uint64_t churn_ns, double attached_per_on,
		      uint64_t prev_on_ns, uint64_t *on_ns, uint64_t *cycle_ns);

/* Where to put the uprobe in a split-stack Go function: on the stack-check branch (the jbe
 * to morestack after `cmp 0x10(%r14),%rsp`). Two reasons:
 *  - the kernel emulates a conditional branch inside the trap, while it single-steps most
 *    other instructions (the `cmp` at the entry among them) out of line, a second trap: an
 *    empty probe on the branch costs a fraction of one on the entry
 *    (tests/bench/block_pingpong.sh prints both);
 *  - the flags of the cmp say whether this run is headed for morestack, which re-runs the
 *    function from its first byte: the BPF program skips that hit, so one call is one hit.
 * Nothing of the function's frame exists yet there: [SP] is the return address, as at the
 * entry. code holds the function's first bytes. Returns the branch's offset from the
 * entry, or -ENOENT when the prologue is not recognized (nosplit functions have none). */
int block_probe_offset(const uint8_t *code, size_t len);

/* Parses a comma-separated list of wait reason strings into allowed[256] for the given
 * table; -EINVAL with a message naming an unknown reason. */
struct goversion_facts;
int block_parse_reasons(const char *list, const struct goversion_facts *f, uint8_t *allowed,
			bool *io_wait, struct gs_error *err);

/* Duty cycle for --max-overhead: the fraction of time the probes should be on, from the
 * budget (percent), the trap cost, the probe hit rate while on (hits per second of on-time)
 * and the target's own CPU use (CPU-seconds per second, probe cost excluded). */
double block_duty_fraction(double budget_pct, double trap_cost_ns, double hits_per_on_sec,
			   double target_cpu_per_sec);

#endif
