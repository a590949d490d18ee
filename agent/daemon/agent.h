/* agent.h — `goscope agent`: every Go process on the node profiled continuously. One
 * node-wide cpu_session, one block_session per opted-in process, discovery of new processes
 * (agent/daemon/discover.h), labels and filters (agent/procs/labels.h), and a window clock
 * aligned to wall-clock multiples of the window; each window's profiles go to the store
 * (agent/store/store.h).
 *
 * The agent runs in the calling thread until *cfg->stop becomes nonzero (1: cut and store the
 * current window, detach, close; 2 or more: detach and close at once, storing nothing more).
 * It prints nothing: what a user should see goes through cfg->log. */
#ifndef GOSCOPE_AGENT_DAEMON_AGENT_H
#define GOSCOPE_AGENT_DAEMON_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"
#include "push/push.h"

struct proc_filter;
struct kube;
struct api_config;

enum agent_log_level {
	AGENT_LOG_ERROR, /* something the user must know: a dropped window, a store failure */
	AGENT_LOG_INFO,	 /* start, stop, processes found and gone */
	AGENT_LOG_DEBUG, /* per window summaries (--verbose) */
};

struct agent_config {
	const char *data_dir;
	uint64_t window_ns; /* AGENT_MIN_WINDOW_NS .. AGENT_MAX_WINDOW_NS */
	unsigned frequency; /* CPU samples per second per CPU */
	bool block_all;	    /* --block: blocking profiles of every profiled process */
	const struct proc_filter *block_filter; /* --block-include: of those that match (may be
						 * NULL) */
	double block_max_overhead_pct;
	const struct proc_filter *filter; /* --include/--exclude (may be NULL: every process) */
	int64_t retention_ns;
	uint64_t max_disk_bytes;
	int64_t rollup_after_ns;
	const char *node;      /* the node label (already resolved: --node, NODE_NAME, hostname) */
	const char *proc_root; /* "/proc" except in tests (NULL: "/proc") */
	bool no_exec_watch;    /* discover by rescans only */
	unsigned rescan_ms;    /* 0: the discoverer's default */
	volatile sig_atomic_t *stop;
	bool verbose; /* AGENT_LOG_DEBUG messages too (they cost a look at the store) */
	/* Called for every message (may be NULL); msg has no trailing newline. */
	void (*log)(void *arg, enum agent_log_level level, const char *msg);
	void *log_arg;
	/* Called once the agent profiles (store open, BPF loaded, first scan done). */
	void (*on_ready)(void *arg);
	/* Pod metadata on Kubernetes (agent/kube/kube.h; NULL elsewhere): opened and closed by the
	 * caller, looked up for every profiled process at discovery and at each window cut. */
	struct kube *kube;
	/* The HTTP API (agent/api/api.h; NULL: none). Its data_dir is the store's. */
	const struct api_config *api;
	/* --heap: a heap profile of every profiled process per window, type "heap", read from
	 * the runtime's memory-profile buckets (agent/goruntime/heap.h); on by default. */
	bool heap;
	/* Called once the API listens, with its port (may be NULL). */
	void (*on_listen)(void *arg, unsigned port);
	/* Push to Pyroscope (agent/push/push.h); NULL or a NULL url: no push. The store then
	 * keeps each window undelivered until the remote took it. */
	const struct push_config *push;
};

/* While the BPF programs cannot be loaded the agent keeps serving its API (/healthz says
 * why) and tries again this often. */
#define AGENT_BPF_RETRY_NS 30000000000ULL

#define AGENT_MIN_WINDOW_NS 1000000000ULL
#define AGENT_MAX_WINDOW_NS 3600000000000ULL

/* What the agent did, for its summary line and (later) its metrics. */
struct agent_stats {
	uint64_t windows;	   /* window cuts */
	uint64_t processes_found;  /* Go processes that started being profiled */
	uint64_t processes_gone;   /* profiled processes that exited or exec'd */
	uint64_t processes_now;	   /* profiled now */
	uint64_t excluded;	   /* Go processes left out by --include/--exclude */
	uint64_t not_profiled;	   /* refused by the CPU session (target map full) */
	uint64_t profiles_stored;  /* rows written */
	uint64_t profiles_dropped; /* profiles that could not be stored (counted, logged) */
	uint64_t unattributed;	   /* per-process profiles of images the agent did not know */
	uint64_t samples;	   /* CPU samples received */
	uint64_t sample_drops;	   /* CPU samples lost (ring buffer full, or malformed) */
	uint64_t block_sessions;   /* block sessions open now */
	uint64_t block_failures;   /* block sessions that could not be opened */
	uint64_t heap_failures;	   /* heap reads that failed (not those of processes without
				      heap profiles, e.g. MemProfileRate 0: said once each) */
	struct push_stats push;	   /* with push: the pusher's counters at the stop */
};

/* Runs the agent until *cfg->stop. 0 after a clean stop; -errno when it could not start
 * (store, BPF) or failed for good. stats (may be NULL) gets the totals. */
int agent_run(const struct agent_config *cfg, struct agent_stats *stats, struct gs_error *err);

#endif
