/* heap.h — the heap (and block / mutex) profile of a live Go process, read from outside: the
 * runtime's memory-profile buckets (runtime.mbuckets; bbuckets / xbuckets for block and
 * mutex) read from its memory, turned into exactly the profile the process's own
 * runtime/pprof would write (/debug/pprof/heap). No probe, no trap, the target is never
 * stopped: reads are validated against the runtime's concurrent updates instead.
 *
 * Layers, each usable (and tested) on its own:
 *  - heap_find.c: where the variables are (ELF symbols, else the RIP-relative loads of small
 *    runtime functions, as goroutines.c finds runtime.allgs);
 *  - heap.c: the bucket walk through a gr_mem (bounded, every read checked, re-read when a
 *    record changed, restarted when a GC cycle was published meanwhile);
 *  - heap_profile.c: the pprof profile (runtime/pprof's writeHeapProto /
 *    printCountCycleProfile: sample types, period, scaleHeapSample, frames);
 *  - heap_read.c: all of it for a pid, thread-safe (the CLI, the agent, the HTTP API). */
#ifndef GOSCOPE_AGENT_GORUNTIME_HEAP_H
#define GOSCOPE_AGENT_GORUNTIME_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "goscope/symbolizer.h"
#include "goruntime/goversion_table.h"
#include "goruntime/memread.h"

enum heap_kind {
	HEAP_KIND_HEAP,	 /* runtime.mbuckets: /debug/pprof/heap */
	HEAP_KIND_BLOCK, /* runtime.bbuckets: /debug/pprof/block */
	HEAP_KIND_MUTEX, /* runtime.xbuckets: /debug/pprof/mutex */
};

/* runtime.bucketType of each list (memProfile = 1 + iota). */
#define HEAP_BUCKET_TYPE_MEM 1
#define HEAP_BUCKET_TYPE_BLOCK 2
#define HEAP_BUCKET_TYPE_MUTEX 3

#define HEAP_MAX_BUCKETS_DEFAULT 1000000u /* a longer list is taken as garbage (cut, counted) */
#define HEAP_RETRIES_DEFAULT 3		  /* re-reads of a record that changed */
#define HEAP_WALK_RESTARTS 3		  /* walks restarted when a GC cycle was published */

/* "heap", "block", "mutex" <-> enum heap_kind; -EINVAL for other names. */
int heap_kind_parse(const char *s, enum heap_kind *out);
const char *heap_kind_name(enum heap_kind k);

/* Runtime addresses of the runtime's variables in the target (0 = not found). */
struct heap_vars {
	uint64_t list;	     /* &runtime.mbuckets / bbuckets / xbuckets (a *bucket) */
	uint64_t cycle;	     /* &runtime.mProfCycle (uint32: cycle << 1 | flushed) */
	uint64_t rate;	     /* &runtime.MemProfileRate (int) */
	uint64_t mutex_rate; /* &runtime.mutexprofilerate (1.19 mutex scaling only) */
	const char
		*list_found_by; /* "symbol runtime.mbuckets" / "runtime.mProf_FlushLocked code" */
};

/* Finds the variables kind needs in bin (mapped at bias, memory readable through mem: each
 * candidate from code is checked against it). -ENOENT with a message. (heap_find.c) */
int heap_find_vars(struct gs_binary *bin, uint64_t bias, struct gr_mem *mem,
		   const struct goversion_mprof *f, enum heap_kind kind, struct heap_vars *out,
		   struct gs_error *err);

/* One bucket as the runtime publishes it (runtime.MemProfile / BlockProfile records). */
struct heap_bucket {
	uint64_t size; /* object size (heap) */
	/* heap: alloc_objects, alloc_bytes, free_objects, free_bytes (bytes = objects * size
	 * in 1.27, which keeps no byte counts); block/mutex: count, cycles */
	int64_t v[4];
	uint64_t *stk; /* return PCs (runtime addresses), as the runtime stored them */
	uint32_t nstk;
};

struct heap_snapshot {
	enum heap_kind kind;
	struct goversion_mprof facts;
	int64_t rate;	/* MemProfileRate (heap) / mutexprofilerate (1.19 mutex), else 0 */
	uint32_t cycle; /* heap: mProfCycle's cycle when read */
	struct heap_bucket *b;
	size_t n;
	/* how the read went */
	size_t inconsistent; /* records that changed on every re-read (kept as last read) */
	size_t unreadable;   /* a bucket that could not be read ended the walk */
	size_t restarts;     /* walks restarted because a GC cycle was published meanwhile */
	bool cut;	     /* the walk stopped at max_buckets */
	bool all_cycles;     /* no published data yet: every cycle summed, as MemProfile does */
};

struct heap_read_opts {
	size_t max_buckets; /* 0: HEAP_MAX_BUCKETS_DEFAULT */
	unsigned retries;   /* 0: HEAP_RETRIES_DEFAULT */
};

/* Walks the bucket list of kind at v through mem. -ENODATA (with a clear message) when the
 * heap profile rate is 0, or when a block/mutex list is empty (profiling never enabled),
 * -ESRCH (process gone), -EFAULT (the list head cannot be read), -ENOMEM. (heap.c) */
int heap_snapshot_read(struct gr_mem *mem, const struct goversion_mprof *f,
		       const struct heap_vars *v, enum heap_kind kind,
		       const struct heap_read_opts *o, struct heap_snapshot **out,
		       struct gs_error *err);
void heap_snapshot_free(struct heap_snapshot *s);

struct profile;
/* The profile runtime/pprof writes for s (writeHeapProto for heap, printCountCycleProfile
 * for block and mutex), frames from bin mapped at bias. cycles_per_second converts block
 * and mutex cycles to nanoseconds (0: measured here, heap_cycles_per_second). (heap_profile.c) */
int heap_snapshot_profile(const struct heap_snapshot *s, const struct gs_binary *bin, uint64_t bias,
			  double cycles_per_second, struct profile **out, struct gs_error *err);
/* runtime/pprof's scaleHeapSample (count, size: objects and bytes; 1.27's avgSize form when
 * object_size) with Go's math.Exp, so that the values are bit for bit Go's. */
void heap_scale_sample(int64_t count, int64_t size, int64_t rate, bool object_size,
		       int64_t *count_out, int64_t *size_out);
/* Go's math.Exp on amd64 (exp_amd64.s, with its FMA path when the CPU has AVX and FMA). */
double heap_go_exp(double x, bool fma);
/* The rate of the TSC (Go's cputicks on amd64), measured once. */
double heap_cycles_per_second(void);

/* What a read of a pid reports besides the profile. */
struct heap_stats {
	char go_version[64];
	const char *list_found_by;
	int64_t rate;
	size_t buckets, inconsistent, unreadable, restarts;
	bool cut, all_cycles;
	uint64_t reads; /* memory reads it took */
};

/* A reader with its own binary cache, for repeated reads (the agent). Thread-safe: reads
 * are serialized on it. */
struct heap_reader;
int heap_reader_new(struct heap_reader **out, struct gs_error *err);
void heap_reader_free(struct heap_reader *r);
int heap_reader_read(struct heap_reader *r, pid_t pid, enum heap_kind kind, struct profile **prof,
		     struct heap_stats *stats, struct gs_error *err);

/* One read of pid with a reader of its own (the CLI; the HTTP API from any thread).
 * -ESRCH (gone), -ENOEXEC (not Go), -EPROTONOSUPPORT (Go too old), -ENOENT (variables not
 * found), -ENODATA (rate 0 / profiling not enabled), -EFAULT, -ENOMEM. (heap_read.c) */
int heap_profile_read(pid_t pid, enum heap_kind kind, struct profile **prof,
		      struct heap_stats *stats, struct gs_error *err);

#endif
