/* cpu.h — the CPU profiling capability: config in, pprof profile out. Called by
 * `goscope cpu` (cmd_cpu.c) and, later, by the agent daemon and HTTP API. */
#ifndef GOSCOPE_AGENT_CPU_H
#define GOSCOPE_AGENT_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "capture/cpu_session.h"
#include "profile/profile.h"

struct cpu_config {
	const pid_t *pids; /* target processes (ignored with all_go) */
	size_t npids;
	bool all_go;		  /* every Go process on the host, rescanned while capturing */
	uint64_t duration_ns;	  /* 0 = until stopped */
	unsigned frequency;	  /* samples per second per CPU */
	bool kernel;		  /* also capture kernel stacks */
	bool no_labels;		  /* read no pprof labels (cpu_session_config.no_labels) */
	volatile const int *stop; /* polled; nonzero ends the capture (may be NULL) */
	unsigned max_targets;	  /* processes profiled at once (target map); 0: CPU_MAX_TARGETS */
};

struct cpu_stats {
	struct cpu_window_stats counts; /* of the capture's one window (cpu_session.h) */
	unsigned processes;    /* distinct processes sampled (an exec'd image counts apart) */
	unsigned not_profiled; /* Go processes not profiled: the target map was full */
	const char *ended_by;  /* "duration", "signal", "targets exited" */
};

/* Profiles until the duration passes, *stop becomes nonzero or every target exits, and
 * returns the profile of what was captured (also on a stop). */
int cpu_capture(const struct cpu_config *cfg, struct profile **out, struct cpu_stats *stats,
		struct gs_error *err);

#endif
