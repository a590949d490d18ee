/* goroutines.h — every goroutine of a Go program read from outside: a live process (without
 * stopping it) or a core file, from the pclntab alone (stripped binaries included).
 *
 * The reader finds runtime.allgs (its ELF symbol, else from the machine code of
 * runtime.allgadd: see goroutines.c), reads each runtime.g at the offsets of the program's Go
 * version (goversion_table.h), and unwinds parked goroutines from g.sched (g.syscall* for
 * goroutines in a system call) by frame pointers, the leaf checked against the pcsp table.
 * Memory that changes while it is read (a live process) is validated: each goroutine is read
 * again after its stack, and one that changed is read again, a bounded number of times.
 * Everything read from the target is untrusted: counts, depths, label counts and string
 * lengths are capped, every pointer is checked against the g's stack bounds.
 *
 * Printing is the CLI's (agent/cli/cmd_goroutines.c); the pprof form is built here
 * (gr_dump_profile). */
#ifndef GOSCOPE_AGENT_GORUNTIME_GOROUTINES_H
#define GOSCOPE_AGENT_GORUNTIME_GOROUTINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"
#include "goscope/symbolizer.h"
#include "goruntime/goversion_table.h"
#include "goruntime/memread.h"

#define GR_MAX_GOROUTINES_DEFAULT 2000000u /* allglen above this is taken as garbage */
#define GR_MAX_FRAMES 100		   /* as Go's own traceback prints at most 100 */
#define GR_MAX_LABELS 64
#define GR_MAX_LABEL_LEN 1024
#define GR_RETRIES_DEFAULT 3

/* runtime.g.atomicstatus values (stable since Go 1.0 except where said). */
enum gr_status {
	GR_IDLE = 0,
	GR_RUNNABLE = 1,
	GR_RUNNING = 2,
	GR_SYSCALL = 3,
	GR_WAITING = 4,
	GR_DEAD = 6,
	GR_COPYSTACK = 8,
	GR_PREEMPTED = 9,
	GR_LEAKED = 10,	   /* 1.26+ (goroutine leak detection) */
	GR_DEADEXTRA = 11, /* 1.27: a g kept for cgo callbacks */
	GR_SCAN = 0x1000,
};

/* A thread of a core file (NT_PRSTATUS): its registers when it was dumped. */
struct gr_thread {
	int tid;
	uint64_t pc, sp, bp;
	int signo; /* pr_cursig: the signal that killed the process, on the thread that got it */
	bool crashing; /* the first thread with a signal (the kernel writes it first) */
};

struct gr_target {
	struct gr_mem *mem;
	struct gs_binary *bin; /* the main executable: all Go code is in it */
	uint64_t bias;	       /* runtime address - link-time address (PIE) */
	int64_t now_ns;	       /* the target's nanotime (CLOCK_MONOTONIC) now; 0 = unknown */
	bool frozen;	       /* memory does not change (a core, or --stop): no re-reads */
	const struct gr_thread *threads; /* core files: registers of running goroutines */
	size_t nthreads;
};

struct gr_options {
	size_t max_goroutines; /* 0: GR_MAX_GOROUTINES_DEFAULT */
	unsigned retries;      /* re-reads of a goroutine that changed; 0: GR_RETRIES_DEFAULT */
	bool system; /* keep the runtime's own goroutines (GOTRACEBACK=system shows them) */
};

struct gr_label {
	char *key, *value;
};

struct gr_goroutine {
	uint64_t addr;		    /* of its runtime.g */
	uint64_t goid, parent_goid; /* parent_goid 0: unknown (Go < 1.21) */
	uint32_t status;	    /* without the scan bit */
	bool scan;
	unsigned waitreason;
	char status_str[48]; /* as Go prints it in the header: wait reason, or the status */
	int64_t wait_ns;     /* how long it has waited (waitsince), -1 unknown */
	uint64_t gopc, startpc;
	bool locked;	   /* lockedm != 0: locked to its thread */
	bool system;	   /* started by a runtime function (Go's isSystemGoroutine) */
	bool inconsistent; /* kept changing while read: no stack */
	bool no_stack;	   /* running on a thread whose registers cannot be had */
	bool crashing;	   /* running on the thread that got the fatal signal (cores) */
	int tid;	   /* its thread (m.procid) when running, else 0 */
	bool leaf_exact;   /* pcs[0] came from thread registers (not a return address) */
	bool truncated;	   /* the walk stopped at the frame cap or on a bad frame pointer */
	uint64_t *pcs;	   /* runtime addresses, innermost first */
	unsigned npcs;
	struct gr_label *labels;
	unsigned nlabels;
	bool labels_unreadable; /* has labels, in a form goscope does not read (Go < 1.24) */
};

struct gr_dump {
	struct goversion_facts facts;
	char go_version[64];
	const char *allgs_found_by; /* "symbol runtime.allgs" / "runtime.allgadd code" */
	uint64_t allgs_addr;	    /* runtime address of runtime.allgs */
	size_t allglen;		    /* goroutine structs the runtime has (dead ones too) */
	size_t ndead, nsystem_hidden;
	size_t inconsistent; /* goroutines that changed on every read */
	size_t unreadable;   /* g pointers whose struct could not be read */
	struct gr_goroutine *gs;
	size_t n;
	struct gs_binary *bin; /* not owned */
	uint64_t bias;
	struct gr_symcache *symcache;
};

/* Reads every goroutine. -EPROTONOSUPPORT for Go < 1.17, -ENOENT when runtime.allgs cannot
 * be found, -EFAULT when the goroutine list cannot be read, -ESRCH (process gone). */
int gr_dump_read(const struct gr_target *t, const struct gr_options *o, struct gr_dump **out,
		 struct gs_error *err);
void gr_dump_free(struct gr_dump *d);

/* The frames of pcs[i] of g, innermost first (inlined calls expanded), from a cache (the
 * pointer is valid until gr_dump_free); the count, 0 when no Go function covers it. */
int gr_dump_frames(struct gr_dump *d, const struct gr_goroutine *g, unsigned i,
		   const struct gs_frame **frames);
/* The function that made the go statement (outermost, as Go's "created by" prints it) and
 * the line of gopc; false when it is not to be shown (goid 1, runtime creators, unknown). */
bool gr_dump_creator(struct gr_dump *d, const struct gr_goroutine *g, struct gs_frame *out);
/* Whether Go's traceback shows this frame (runtime.showframe at GOTRACEBACK=single): not a
 * wrapper, and not an unexported runtime function. */
bool gr_frame_shown(const struct gs_frame *f);
/* "+0x1d": pc minus the entry of its function (0 when pc is at the entry). */
uint64_t gr_dump_pc_offset(const struct gr_dump *d, const struct gr_goroutine *g, unsigned i,
			   const struct gs_frame *outer);

struct profile;
/* Go's goroutine profile shape: sample type goroutine/count, one sample per distinct stack
 * and label set (their counts summed), frames as Go's profile has them. */
int gr_dump_profile(struct gr_dump *d, struct profile **out, struct gs_error *err);

/* The targets (link-time) of the RIP-relative 64-bit loads (`MOVQ disp32(RIP), reg`) in code
 * at link-time address base, at most max: a byte scan whose candidates the caller validates
 * against memory (also used by heap_find.c to find runtime.mbuckets and friends). */
size_t gr_rip_loads(const uint8_t *code, size_t len, uint64_t base, uint64_t *out, size_t max);

#endif
