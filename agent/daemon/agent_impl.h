/* agent_impl.h — the agent's state, shared by the files of agent/daemon/ (agent.c: the loop,
 * the process table and the windows; agent_api.c: the HTTP API's requests) and no one else. */
#ifndef GOSCOPE_AGENT_DAEMON_AGENT_IMPL_H
#define GOSCOPE_AGENT_DAEMON_AGENT_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "capture/block.h"
#include "daemon/agent.h"
#include "goscope/error.h"
#include "procs/goprocs.h"

struct store;
struct cpu_session;
struct discover;
struct api;
struct block_session;
struct proc_labels;
struct agent_capture;
struct heap_reader;

#define PROC_BUCKETS 1024
/* Poll period while block sessions run (their duty cycle wants a tick every BLOCK_TICK_NS). */
#define POLL_BLOCK_MS (BLOCK_TICK_NS / 1000000)
/* Otherwise: new processes are found (exec records read) within this, well inside the 2 s
 * the agent promises; the CPU ring (CPU_RINGBUF_BYTES) holds far more than this much of
 * samples; and each wakeup costs the agent CPU (tests/bench/agent_overhead.sh). */
#define POLL_IDLE_MS 500
/* The CPU session's /proc check for exits whose BPF record was lost. */
#define REAP_MS 10000
/* Executables known not to be Go, by (device, inode, size, mtime, ctime): an exec storm of
 * shells does not parse /bin/sh each time. Direct-mapped; a collision only costs a parse. */
#define EXE_CACHE_SLOTS 512
/* Go executables' build facts, the same way: a service restarting (or a job started every
 * few seconds) is not parsed at each start (tests/bench/agent_overhead.sh: the parse was a
 * fifth of the agent's CPU under churn). */
#define GO_EXE_CACHE_SLOTS 64
/* Errors of the same kind logged at most this often (each still counted). */
#define LOG_EVERY_NS 60000000000ULL

enum proc_kind {
	PROC_IGNORED,  /* not Go, excluded, unreadable or goscope itself */
	PROC_PROFILED, /* a CPU target */
	PROC_ENDED,    /* profiled, exited or exec'd: freed after the cut that stores its last
			* window */
};

struct agent_proc {
	pid_t pid;
	uint64_t start_ticks;
	enum proc_kind kind;
	uint64_t seen_gen;	     /* the last rescan that saw it (ignored entries) */
	struct proc_labels *labels;  /* profiled and ended */
	struct block_session *block; /* with --block */
	bool block_failed;	     /* its block session could not be opened */
	bool no_heap;		     /* has no heap profile to read (said once) */
	struct agent_proc *next;
};

struct exe_slot {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	bool valid;
};

struct go_exe_slot {
	struct exe_slot id;
	struct goproc facts; /* goproc_inspect's result but pid, comm and exe */
};

struct agent {
	const struct agent_config *cfg;
	const char *proc_root;
	struct store *store;
	struct push *push;	 /* NULL without --push-url (agent/push/push.h) */
	uint64_t rows_lost_seen; /* store_rows_lost already given to the pusher */
	uint64_t last_lost_log;
	struct cpu_session *cpu;
	struct discover *disc;
	struct agent_proc *buckets[PROC_BUCKETS];
	struct exe_slot not_go[EXE_CACHE_SLOTS];
	struct go_exe_slot go_exes[GO_EXE_CACHE_SLOTS];
	uint64_t scan_gen; /* rescans seen (discover_stats.rescans) */
	pid_t self;
	struct agent_stats st;
	int64_t window_start_wall; /* Unix ns of the current window's start */
	uint64_t last_drop_log;
	/* --heap: the reader of heap profiles (NULL when off), its failures' last log */
	struct heap_reader *heap;
	uint64_t last_heap_log;

	/* The HTTP API (NULL without one) and its on-demand captures (agent_api.c). */
	struct api *api;
	struct agent_capture *captures;
	unsigned ncaptures;
	uint64_t captures_total;
	int epfd; /* waits on the CPU ring and the API's queue at once (-1: the ring only) */
	/* Why profiling does not work now, for /healthz ("" when it does). */
	char bpf_error[GS_ERROR_MSG_MAX];   /* the BPF programs could not be loaded (retried) */
	char store_error[GS_ERROR_MSG_MAX]; /* the last store write failed */
};

/* agent.c */
void agent_logf(struct agent *a, enum agent_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct agent_proc *agent_proc_find(struct agent *a, pid_t pid, uint64_t start);

/* agent_api.c: the API's requests, served from the agent's loop. */
/* Takes the queued requests: answers the immediate ones, starts captures. */
void agent_api_serve(struct agent *a);
/* Ends the captures that are due or whose client hung up; ticks their block sessions. */
void agent_api_tick(struct agent *a);
/* Milliseconds until the next capture is due (or limit when none is sooner). */
int agent_api_timeout_ms(struct agent *a, int limit);
/* Ends every capture (the agent stops): each client gets what was captured so far. */
void agent_api_finish_all(struct agent *a);
/* Whether a capture runs block sessions (the loop then ticks every POLL_BLOCK_MS). */
bool agent_api_has_block(const struct agent *a);

#endif
