/* block_impl.h — what the files of the block capture share (private; capture/block.h is the
 * public API). One struct block_session holds one target's capture: the probe points found in
 * the prologues (block_probes.c), the loaded BPF object and its links (block_attach.c), the
 * duty-cycle state machine (block_duty.c), the pending parks followed from userspace
 * (block_pending.c), the trap-cost calibration (block_calibrate.c), the per-window sampling
 * fractions and the profile of each cut (block_profile.c), tied together by
 * block_session.c. */
#ifndef GOSCOPE_AGENT_CAPTURE_BLOCK_IMPL_H
#define GOSCOPE_AGENT_CAPTURE_BLOCK_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "capture/block.h"
#include "goruntime/goversion_table.h"
#include "goscope/block.h"
#include "stacks/stacks.h"

struct block_bpf;
struct bpf_program;
struct gs_binary;
struct probe_keeper;

#define NSEC_PER_SEC 1000000000ULL
#define BLOCK_CYCLE_NS 1000000000ULL	  /* shortest duty-cycle period */
#define BLOCK_CYCLE_MAX_NS 10000000000ULL /* longest, when attach + detach cost much */
#define BLOCK_MIN_ON_NS 20000000ULL	  /* shortest on-window */
#define BLOCK_DRAIN_FACTOR 2		  /* longest drain, in on-window lengths */
#define BLOCK_FRACTION_GROWTH 2.0	  /* most the on-window grows from one cycle to the next */
#define BLOCK_MIN_FRACTION 0.005	  /* never sample less than this */
/* Sampling windows whose fraction is remembered, for the blocks that end after them (a
 * block that outlives this many windows, over 17 minutes at the shortest cycle, is scaled by
 * the session's overall fraction instead). */
#define BLOCK_WINDOW_RING 1024

/* runtime g status values (stable since Go 1.0) and the bit GC scanning ORs in. */
#define G_STATUS_WAITING 4
#define G_STATUS_SCAN 0x1000

/* What one sampling window (one duty cycle, window_gen) sampled: parks that started in its
 * on-window were recorded, so each stands for cycle_ns / on_ns parks (block_profile.c). */
struct block_window {
	uint32_t gen;	      /* 0: slot unused */
	uint64_t cycle_start; /* when the cycle began (monotonic) */
	uint64_t planned_on;  /* the on-window and cycle block_plan_cycle chose */
	uint64_t planned_cycle;
	uint64_t on_ns;	   /* the on-window as it ran; 0 while it is still open */
	uint64_t cycle_ns; /* the cycle as it ran; 0 while it is the current one */
};

/* The duty cycle's states (block_duty.c says what each transition does). */
enum block_duty_state {
	BLOCK_DUTY_UNTHROTTLED, /* --max-overhead 100: every probe attached all the time */
	BLOCK_DUTY_ON,		/* on-window: every probe attached, gopark records parks */
	BLOCK_DUTY_DRAINING,	/* probes attached, parks closed: the window's parks resolve */
	BLOCK_DUTY_OFF,		/* probes detached; long blocks polled until the cycle ends */
	BLOCK_DUTY_STOPPED,	/* probes removed for good (final cut, target exited) */
};

/* The duty cycle (block_duty.c): its state and the times each transition looks at. Each
 * field means one thing. */
struct block_duty {
	enum block_duty_state state;
	uint32_t gen;	      /* window_gen of the current (or last) window */
	uint64_t cycle_start; /* the current cycle began (it ends at cycle_end) */
	uint64_t cycle_end;
	uint64_t window_start;	/* the on-window began: every probe attached, parks open */
	uint64_t on_len;	/* planned on-window length */
	uint64_t cycle_len;	/* planned cycle length */
	uint64_t drain_end;	/* the drain ends at the latest here */
	uint64_t on_total;	/* sum of the finished on-windows */
	uint64_t attach_ns;	/* how long this cycle's attach took */
	uint64_t detach_at;	/* when this cycle's detach began (0: not yet) */
	uint64_t attached_ns;	/* this cycle's on-window + drain */
	uint64_t last_poll;	/* long blocks may have ended unseen since here (the detach,
				 * then each look at them) */
	uint64_t hits_at_cycle; /* probe hits and target CPU time when the cycle began */
	uint64_t cpu_at_cycle;
};

/* One target's block capture. */
struct block_session {
	struct block_config cfg;
	char reasons[1024];   /* cfg.reasons points here */
	struct gs_error *err; /* where the call in progress reports */
	struct block_bpf *skel;
	struct bpf_program *progs[BLOCK_NPROBES];
	bool multi; /* probes are uprobe_multi links (see load_bpf), else perf-event uprobes */
	/* Every link on the target is created and closed by this process (probe_keeper.h:
	 * a SIGKILL of goscope must not land inside a uprobe (un)registration); its slot k is
	 * probe k. */
	struct probe_keeper *keeper;
	bool attached[BLOCK_NPROBES];	 /* probe k's link is live */
	bool detaching[BLOCK_NPROBES];	 /* its close was asked and not yet seen completed */
	uint64_t detach_done;		 /* when the last completed detach completed (monotonic) */
	uint64_t offsets[BLOCK_NPROBES]; /* file offsets of the probe points */
	uint64_t vaddrs[BLOCK_NPROBES];	 /* their link-time addresses */
	bool want[BLOCK_NPROBES];      /* netpollready is skipped when --reasons excludes IO wait */
	bool on_branch[BLOCK_NPROBES]; /* probed on the stack-check branch (else at the entry) */
	bool filter_reasons, io_wait;  /* --reasons given; it includes IO wait */
	uint8_t reason_allowed[BLOCK_MAX_REASONS];
	/* The target's executable, held open from the session's start: every probe is placed
	 * through exe (/proc/<goscope>/fd/<exe_fd>), so an exec of the target can never make a
	 * later attach land in another program's code; exe_dev/exe_ino are its identity. */
	char exe[64];
	int exe_fd;
	uint64_t exe_dev, exe_ino;
	uint64_t addrs[BLOCK_NPROBES]; /* the probe points in the target's address space */
	/* /proc/PID/mem, to check that a pending g is still parked; opened first, it is bound to
	 * the address space the session opened: reading it gives 0 bytes once the target has
	 * exec'd (block_session.c, target_execed). */
	int mem_fd;
	int bpf_stats_fd;      /* BPF run-time stats on while >= 0 (first throttled cycle) */
	uint64_t start_ticks;  /* the target's start time: with the pid, its identity */
	bool exited;	       /* the target is gone (or exec'd): every probe removed */
	bool execed;	       /* the target exec'd: its new image is not this session's */
	uint64_t exec_dropped; /* pending parks of the old image dropped at the exec */
	bool stopped;	       /* every probe removed for good (final cut, or exited) */
	uint64_t last_live;    /* the last look at the target's liveness */
	struct goversion_facts facts;
	struct stacks stacks;
	bool stacks_ready;
	int ncpus;

	struct block_duty duty;
	struct block_window windows[BLOCK_WINDOW_RING];
	uint32_t epoch; /* cut_epoch of the BPF side: blocks counted since the last cut */

	/* Session totals (userspace counters; the BPF ones are in its stats map). */
	struct block_stats info; /* go_version, costs, probes: the same for every cut */
	uint64_t start;		 /* monotonic: the first window began */
	uint64_t cancelled, polled, polled_short, polled_lost, windows_started;
	/* Totals at the last cut (each cut reports the difference). */
	uint64_t cut_at;
	int64_t cut_wall;
	uint64_t on_at_cut;
	uint64_t bpf_at_cut[BLOCK_STAT_COUNT];
	uint64_t cancelled_at_cut, polled_at_cut, polled_short_at_cut, polled_lost_at_cut;
	uint64_t windows_at_cut;
};

/* block_probes.c */
extern const char *const block_probe_funcs[BLOCK_NPROBES];
int block_open_target(struct block_session *s);
void block_probe_addrs(struct block_session *s);

/* block_attach.c */
int block_load_bpf(struct block_session *s);
int block_attach_all(struct block_session *s);
void block_detach_all(struct block_session *s, bool async);
int block_sync_detaches(struct block_session *s);
int block_repair_leftovers(struct block_session *s);
bool block_links_live(const struct block_session *s);
void block_read_stats(struct block_session *s, uint64_t *sums);
uint64_t block_probe_hits(const uint64_t *sums);

/* block_pending.c */
bool block_g_still_parked(struct block_session *s, uint64_t g, const struct block_pending *p);
uint64_t block_drop_not_parked(struct block_session *s, uint32_t gen);
void block_poll_long_blocks(struct block_session *s, uint64_t since, uint64_t now);
uint64_t block_pending_of_window(struct block_session *s, uint32_t gen);

/* block_calibrate.c */
double block_calibrate(struct block_session *s);
double block_bpf_ns_per_hit(struct block_session *s);

/* block_duty.c */
/* The state after st at now (pure: the caller does what entering it means). window_pending
 * is how many parks of the current window are still pending (looked at in DRAINING only). */
enum block_duty_state block_duty_next(const struct block_duty *d, uint64_t now,
				      uint64_t window_pending);
int block_duty_start(struct block_session *s, uint64_t now);
int block_duty_tick(struct block_session *s, uint64_t now);
/* On-time up to now, the open on-window included. */
uint64_t block_duty_on_time(const struct block_duty *d, uint64_t now);

/* block_profile.c: the sampling windows' fractions (begin: the on-window opens; on_end: it
 * closes after on_ns; cycle_end: the cycle ran cycle_ns), and the profile of a cut. */
void block_window_begin(struct block_session *s, uint32_t gen, uint64_t now);
void block_window_on_end(struct block_session *s, uint32_t gen, uint64_t on_ns);
void block_window_cycle_end(struct block_session *s, uint32_t gen, uint64_t cycle_ns);
/* Fills a new profile with the blocks counted since the last cut (and the goroutines still
 * blocked when still_blocked) and this cut's counters in stats. */
int block_cut_profile(struct block_session *s, bool still_blocked, uint64_t now,
		      struct profile **out, struct block_stats *stats);

#endif
