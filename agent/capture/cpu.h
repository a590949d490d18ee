/* cpu.h — the CPU profiling capability: config in, pprof profile out. Called by
 * `goscope cpu` (cmd_cpu.c) and, later, by the agent daemon and HTTP API. */
#ifndef GOSCOPE_AGENT_CPU_H
#define GOSCOPE_AGENT_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "profile/profile.h"

struct cpu_config {
	const pid_t *pids; /* target processes (ignored with all_go) */
	size_t npids;
	bool all_go;		  /* every Go process on the host, rescanned while capturing */
	uint64_t duration_ns;	  /* 0 = until stopped */
	unsigned frequency;	  /* samples per second per CPU */
	bool kernel;		  /* also capture kernel stacks */
	volatile const int *stop; /* polled; nonzero ends the capture (may be NULL) */
	unsigned max_targets;	  /* processes profiled at once (target map); 0: CPU_MAX_TARGETS */
};

struct cpu_stats {
	uint64_t samples;	   /* samples of target processes seen by BPF */
	uint64_t received;	   /* samples that reached userspace */
	uint64_t ringbuf_drops;	   /* lost because the ring buffer was full */
	uint64_t truncated;	   /* user stacks deeper than the walk limit */
	uint64_t kstack_errors;	   /* kernel stack could not be read */
	uint64_t no_user_regs;	   /* samples without user registers */
	uint64_t leaf_fixed;	   /* direct callers recovered from [SP + pcsp] */
	uint64_t leaf_unrecovered; /* leaf frame not set up and [SP + pcsp] not captured */
	unsigned processes;	   /* distinct processes sampled (an exec'd image counts apart) */
	unsigned not_profiled;	   /* Go processes not profiled: the target map was full */
	uint64_t execs;		   /* targets that exec'd (profiled on as their new program) */
	uint64_t exits;		   /* targets that exited during the capture */
	uint64_t duration_ns;	   /* actual capture time */
	const char *ended_by;	   /* "duration", "signal", "targets exited" */
};

/* Profiles until the duration passes, *stop becomes nonzero or every target exits, and
 * returns the profile of what was captured (also on a stop). */
int cpu_capture(const struct cpu_config *cfg, struct profile **out, struct cpu_stats *stats,
		struct gs_error *err);

#endif
