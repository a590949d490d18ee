/* core.h — what every capture kind (CPU sessions, block sessions) shares, so that each kind
 * holds only what is its own:
 *  - libbpf's messages, through one print callback: kept (the last lines, for errors) and
 *    handed to a sink only when the user asked for them (--verbose); nothing is printed here;
 *  - loading a bpftool skeleton, with an error that names the real cause where it can be told
 *    (missing capability, seccomp, lockdown, the verifier);
 *  - sums of per-CPU counter maps;
 *  - clocks, and the end of a capture (duration, stop flag, targets gone).
 * Per-process facts come from agent/procs/, the profile model from agent/profile/. */
#ifndef GOSCOPE_AGENT_CAPTURE_CORE_H
#define GOSCOPE_AGENT_CAPTURE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

struct bpf_map;
struct bpf_object_skeleton;

/* ---- libbpf's messages ---- */

/* Receives each libbpf message line (no trailing newline). Called from whatever thread
 * libbpf runs in; must not call back into capture_*. */
typedef void (*capture_log_fn)(void *arg, const char *line);

/* Routes libbpf's messages (warnings and info; debug too when debug) to fn, or, with
 * fn == NULL, keeps them quiet (the default). Either way the last lines are kept for
 * error messages (capture_bpf_error). */
void capture_set_log(capture_log_fn fn, void *arg, bool debug);

/* ---- BPF objects ---- */

/* Loads an opened skeleton (skel->skeleton of a bpftool skeleton): maps created, programs
 * verified and loaded, data sections mapped. On failure the error names what (e.g. "load BPF
 * program cpu") and the cause (capture_bpf_error). */
int capture_bpf_load(struct bpf_object_skeleton *skeleton, const char *what, struct gs_error *err);

/* Explains a failed bpf()/perf_event_open() call (code = -errno) in the error: a missing
 * capability, a seccomp filter that refuses bpf() (a container's default profile does), kernel
 * lockdown, or the verifier/an LSM, with the verifier's last lines when the user asked for
 * libbpf's messages. Returns code. */
int capture_bpf_error(struct gs_error *err, int code, const char *what);

/* enum bpf_attach_type's BPF_TRACE_UPROBE_MULTI (Linux 6.6): Debian's libbpf (1.1) and its uapi
 * header predate it. */
#define CAPTURE_BPF_TRACE_UPROBE_MULTI 48

/* A uprobe_multi BPF link (Linux 6.6) of prog_fd at one file offset of path, for pid (0: every
 * process), created by hand for the reason above. Needs CAP_BPF and CAP_PERFMON only, where a
 * perf-event uprobe needs CAP_SYS_ADMIN (a container without it can make these, not those).
 * No heap, no stdio (the probe keeper calls it). Returns the link's fd, or -errno. */
int capture_uprobe_multi_link(int prog_fd, const char *path, uint64_t offset, int pid);

/* Sums each of the first nkeys entries of a BPF_MAP_TYPE_PERCPU_ARRAY of __u64 over every
 * possible CPU into sums[0..nkeys). Unreadable entries sum to 0. -errno. */
int capture_percpu_sums(const struct bpf_map *map, uint32_t nkeys, uint64_t *sums);

/* Number of possible CPUs (the size of per-CPU values), > 0, or -errno. */
int capture_ncpus(void);

/* ---- Clocks and the end of a capture ---- */

uint64_t capture_monotonic_ns(void);
int64_t capture_realtime_ns(void);

/* How often target liveness is checked (reading /proc each poll would cost more than the
 * poll itself on hosts with many targets). */
#define CAPTURE_LIVENESS_EVERY_NS 250000000ULL

enum capture_end {
	CAPTURE_RUNNING = 0,
	CAPTURE_END_DURATION,
	CAPTURE_END_SIGNAL, /* *stop became nonzero */
	CAPTURE_END_TARGETS_EXITED,
};

/* When a capture started, and when it last looked at its targets. */
struct capture_clock {
	uint64_t start_ns;     /* monotonic */
	int64_t start_wall_ns; /* realtime, for the profile's time_nanos */
	uint64_t last_live_ns;
	uint64_t duration_ns;	  /* 0 = until stopped */
	volatile const int *stop; /* polled; nonzero ends the capture (may be NULL) */
};

void capture_clock_start(struct capture_clock *c, uint64_t duration_ns, volatile const int *stop);
/* Whether the capture is over at now: *stop, then the duration, then (at most every
 * CAPTURE_LIVENESS_EVERY_NS, when alive is not NULL) alive(arg) == false. */
enum capture_end capture_check_end(struct capture_clock *c, uint64_t now, bool (*alive)(void *),
				   void *arg);
/* "duration", "signal", "targets exited" (target_word: "target" or "targets"). */
const char *capture_end_name(enum capture_end e, bool plural);

#endif
