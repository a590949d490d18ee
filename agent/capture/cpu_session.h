/* cpu_session.h — a long-lived CPU profiling session for a whole node: the BPF program is
 * loaded and one cpu-clock perf event per CPU opened ONCE, when the session opens; target
 * processes are added and removed while it runs (the in-kernel filter map); each cut returns
 * the profile of every sampled process for the time since the previous cut, without
 * reloading or reattaching anything.
 *
 * Use:
 *	cpu_session_open(&cfg, &s, &err);
 *	cpu_session_add_target(s, pid, &err);          // any time, any number (CPU_MAX_TARGETS)
 *	loop: cpu_session_poll(s, 100, &err);          // drains the ring buffer into the window
 *	      every window: cpu_session_cut(s, &w, &err); ... use w ...; cpu_window_free(&w);
 *	cpu_session_remove_target(s, pid);             // samples stop now; state freed at the cut
 *	cpu_session_close(s);
 *
 * Process identity. A target is a process image: (pid, start time) from its start or exec to
 * its exit or next exec. BPF sends the exec and exit of targets through the sample ring
 * (ordered with the samples) and keeps each target's start time in its map, so that:
 *  - a target that execs goes on as a new image under the same pid (a new entry, new
 *    symbols, its own per-process profile; the old image ends with ended = true);
 *  - a target that exits leaves the in-kernel map at once, in BPF (the map never fills up
 *    with exited processes, and a process that reuses the pid is not sampled as the target);
 *    its binaries are released as soon as its exit record is read (not at the next cut);
 *  - adding a pid whose process is not the target's any more makes a new entry.
 * Exits are also found by reading /proc every reap_ms (CPU_SESSION_REAP_MS), in case a record
 * was lost.
 *
 * Memory: everything of a window (its profiles, with their location, function and mapping
 * tables) is handed out or freed at the cut; the gs_process of a target that exited, exec'd
 * or was removed is closed at the first poll after its last samples were drained, and the
 * small record of it (pid, comm, counts) is freed at the cut. What lives as long as the
 * session: the BPF objects, the symbolizer (its binary cache is bounded by the symbolizer),
 * kernel symbols, and one entry per live target.
 *
 * Not thread-safe: one thread polls, cuts and changes targets. Nothing is printed. */
#ifndef GOSCOPE_AGENT_CPU_SESSION_H
#define GOSCOPE_AGENT_CPU_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "goscope/symbolizer.h"
#include "profile/profile.h"

struct cpu_session;

struct cpu_session_config {
	unsigned frequency; /* samples per second per CPU, 1..1e9 */
	bool kernel;	    /* also kernel stacks (symbols from /proc/kallsyms) */
	/* Cut into one profile for all processes (cpu_window.merged) instead of one per
	 * process. Either way every sample has the labels pid (number) and comm. Samples of a
	 * goroutine with pprof labels also have those (golabels.h). */
	bool merge;
	/* Targets added before the perf events are attached, so that their sampling starts
	 * with the first window (cpu_session_add_target adds more later). */
	const pid_t *pids;
	size_t npids;
	/* Size of the in-kernel target map (live targets at once); 0: CPU_MAX_TARGETS. */
	unsigned max_targets;
	/* How often poll reads /proc for targets that exited without an exit record (each
	 * target's stat file is read); 0: CPU_SESSION_REAP_MS. A long-running agent with many
	 * targets reads less often: the BPF exit record is the normal way exits are seen. */
	unsigned reap_ms;
	/* Read no pprof labels: the BPF label code is dead and removed by the verifier at load
	 * (for overhead comparisons: tests/bench/labels_overhead.sh). */
	bool no_labels;
};

/* How often poll reads /proc for targets that exited without an exit record. */
#define CPU_SESSION_REAP_MS 2000

/* One process of a window: sampled in it, or ended in it (then perhaps without samples). */
struct cpu_window_proc {
	pid_t pid;
	uint64_t start_ticks; /* with pid, which process (/proc/PID/stat start time) */
	char comm[32];	      /* of this image (read when it was added or exec'd) */
	uint64_t samples;     /* samples of the process that reached userspace in the window */
	bool ended;	      /* removed, exited or exec'd: its last window, its state is freed */
	bool exec;	      /* ended by an exec: the pid goes on as another entry (new image) */
	struct profile *prof; /* the process's profile (caller owns it); NULL with merge or
			       * without samples */
};

/* Counters of one window (deltas since the previous cut). */
struct cpu_window_stats {
	uint64_t samples;	   /* samples of target processes seen by BPF */
	uint64_t received;	   /* samples that reached userspace */
	uint64_t ringbuf_drops;	   /* lost because the ring buffer was full */
	uint64_t truncated;	   /* user stacks deeper than the walk limit */
	uint64_t kstack_errors;	   /* kernel stack could not be read */
	uint64_t no_user_regs;	   /* samples without user registers */
	uint64_t leaf_fixed;	   /* direct callers recovered from [SP + pcsp] */
	uint64_t leaf_unrecovered; /* leaf frame not set up and [SP + pcsp] not captured */
	uint64_t stray;		   /* samples of a pid no longer a target (in flight at removal) */
	uint64_t reused;	   /* samples of a target's pid run by another process (BPF) */
	uint64_t event_drops;	   /* exec/exit records lost (ring buffer full) */
	uint64_t execs;		   /* targets that exec'd (each went on as a new entry) */
	uint64_t exits;		   /* targets that exited */
	uint64_t map_full;	   /* adds refused because the target map was full */
	uint64_t labelled;	   /* samples of goroutines with pprof labels (BPF) */
	uint64_t labels_truncated; /* of those, label sets cut: more than GS_LABELS_MAX labels, or
				    * a key or value longer than GS_LABEL_KEY_LEN / _VALUE_LEN */
	uint64_t labels_unread;	   /* of those, label sets (partly) unreadable */
	uint64_t start_ns;	   /* monotonic start of the window (the previous cut) */
	int64_t start_wall_ns;	   /* the same, realtime (the profiles' time_nanos) */
	uint64_t duration_ns;	   /* start to this cut (the profiles' duration_nanos) */
	struct profile_rejects rejected; /* samples the profile refused: left out */
};

struct cpu_window {
	struct cpu_window_proc *procs; /* processes with samples, and targets that ended */
	size_t nprocs;
	struct profile *merged; /* with cfg.merge: every sample of the window (caller owns it;
				 * an empty profile when there was none); NULL otherwise */
	struct cpu_window_stats stats;
};

/* What the session holds, for tests and the agent's own metrics. */
struct cpu_session_counters {
	unsigned bpf_loads;    /* BPF program loads (1 for the session's life) */
	unsigned bpf_programs; /* programs of that load: sampling, exec and exit (3) */
	unsigned perf_events;  /* perf events opened (one per online CPU, once) */
	size_t targets;	       /* targets in the in-kernel filter */
	size_t procs;	       /* per-process entries held (targets + ended, until the cut) */
	size_t images_open;    /* process images with their gs_process open (binaries held) */
	unsigned max_targets;  /* size of the target map */
	size_t windows;	       /* cuts made */
};

/* Loads the BPF program, adds cfg->pids, opens and attaches the perf events; the first window
 * starts now. cfg is copied except pids, which is read during the call only. */
int cpu_session_open(const struct cpu_session_config *cfg, struct cpu_session **out,
		     struct gs_error *err);
/* Starts sampling pid (its binaries are opened now: they may be gone once it exits).
 * Adding a current target again is a no-op; adding a pid whose target exited and was
 * reused by another process ends the old entry and makes a new one. -ESRCH for a process
 * that is gone, -ENOSPC when the target map is full (counted in the window's map_full). */
int cpu_session_add_target(struct cpu_session *s, pid_t pid, struct gs_error *err);
/* Stops sampling pid now; its samples so far stay in the window, its binaries are released
 * at the next poll and its record at the next cut. No-op for a pid that is not a target. */
void cpu_session_remove_target(struct cpu_session *s, pid_t pid);
/* Whether pid is a current target. */
bool cpu_session_has_target(const struct cpu_session *s, pid_t pid);
/* Waits up to timeout_ms for samples and drains the ring buffer into the current window.
 * Returns 0 (also when interrupted by a signal) or a negative error. */
int cpu_session_poll(struct cpu_session *s, int timeout_ms, struct gs_error *err);
/* Ends the current window and starts the next: drains the ring buffer, frees the state of
 * ended targets and hands the window's profiles out in *out (NULL: the window is dropped,
 * e.g. to start the first window after the targets are set up). */
int cpu_session_cut(struct cpu_session *s, struct cpu_window *out, struct gs_error *err);
/* Frees what a cut handed out (the profiles too), for a window the caller keeps nothing of. */
void cpu_window_free(struct cpu_window *w);
void cpu_session_counters(const struct cpu_session *s, struct cpu_session_counters *out);
/* Symbolizer counters (binary cache hits, misses, binaries open), for the agent's metrics. */
void cpu_session_symbolizer_stats(const struct cpu_session *s, struct gs_symbolizer_stats *out);
/* The ring buffer's epoll descriptor: readable when samples wait (for a caller that waits on
 * several things at once, then calls cpu_session_poll with timeout 0). */
int cpu_session_fd(const struct cpu_session *s);

/* Taps: on-demand captures read from the running session (the agent's HTTP API), with no
 * second set of perf events. From cpu_session_tap_open to cpu_session_tap_close, every
 * sample of the tapped pids also goes into the tap's own profile (labels pid and comm on
 * each sample, as in the windows). A tapped pid that exits simply stops adding samples.
 * At most CPU_SESSION_MAX_TAPS at once, each on at most CPU_TAP_MAX_PIDS pids. Costs nothing
 * while no tap is open. */
#define CPU_SESSION_MAX_TAPS 16
#define CPU_TAP_MAX_PIDS 64
struct cpu_tap;
/* -ENOSPC when CPU_SESSION_MAX_TAPS are open, -E2BIG for too many pids. */
int cpu_session_tap_open(struct cpu_session *s, const pid_t *pids, size_t npids,
			 struct cpu_tap **out, struct gs_error *err);
/* Ends the tap: the ring buffer is drained first, so the profile holds every sample taken
 * up to now; *out (caller owns it) has its time and duration set. The tap is freed either
 * way; out NULL discards the profile. */
int cpu_session_tap_close(struct cpu_session *s, struct cpu_tap *t, struct profile **out,
			  struct gs_error *err);
/* Detaches and closes everything. NULL is fine. */
void cpu_session_close(struct cpu_session *s);

#endif
