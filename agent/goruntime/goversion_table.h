/* goversion_table.h — per-Go-version facts that block capture needs and that the binary does
 * not carry when it is stripped: waitReason number -> string, and runtime.g / runtime.pollDesc
 * field offsets. One table keyed by the Go minor version from .go.buildinfo; every number and
 * how it was measured: docs/go-runtime.md. This is the only place these facts live. */
#ifndef GOSCOPE_AGENT_GOVERSION_TABLE_H
#define GOSCOPE_AGENT_GOVERSION_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

/* The register ABI (gopark's args in registers, g in R14) arrived in Go 1.17. */
#define GOVERSION_MIN_MINOR 17

/* The numberings of the runtime's waitReason enum: a column of the wait-reason table in
 * goversion_table.c. Versions with the same numbering share one (1.26 and 1.27 do). */
enum goversion_wait_numbering {
	GOVERSION_WAIT_GO119,
	GOVERSION_WAIT_GO121,
	GOVERSION_WAIT_GO122,
	GOVERSION_WAIT_GO123,
	GOVERSION_WAIT_GO124,
	GOVERSION_WAIT_GO126,
	GOVERSION_WAIT_NUMBERINGS,
};

struct goversion_facts {
	int minor;     /* 1.N */
	bool measured; /* false: inferred from neighbouring versions */
	enum goversion_wait_numbering wait_reasons;
	size_t nwait_reasons;	 /* waitReason numbers are 0 .. nwait_reasons-1 */
	uint32_t g_goid;	 /* offset of runtime.g.goid */
	uint32_t g_atomicstatus; /* offset of runtime.g.atomicstatus (uint32) */
	uint32_t g_schedlink;	 /* offset of runtime.g.schedlink */
	uint32_t g_waitreason;	 /* offset of runtime.g.waitreason (uint8) */
	uint32_t pd_rg, pd_wg;	 /* offsets of runtime.pollDesc.rg / .wg */
	/* Offset of runtime.g.trackingSeq (uint8), 0 when not known. The runtime adds 1 to it
	 * each time the goroutine stops running (casgstatus), so it tells one park from the
	 * next even when both wait for the same reason. */
	uint32_t g_tracking_seq;
	/* For `goscope goroutines` (agent/goruntime/goroutines.c): the rest of runtime.g and
	 * runtime.m it reads, measured like the offsets above (DWARF of tests/go/netpark, see
	 * docs/go-runtime.md, "runtime.g fields for goroutine dumps"). 0 = the field does not
	 * exist in that version (only for g_syscallbp and g_parent_goid). */
	uint32_t g_stack_lo, g_stack_hi;	     /* g.stack.lo / .hi */
	uint32_t g_m;				     /* g.m (*m) */
	uint32_t g_sched_sp, g_sched_pc, g_sched_bp; /* g.sched.sp / .pc / .bp, from g */
	uint32_t g_syscallsp, g_syscallpc, g_syscallbp;
	uint32_t g_waitsince;	/* int64 nanotime */
	uint32_t g_lockedm;	/* muintptr */
	uint32_t g_parent_goid; /* 1.21+ */
	uint32_t g_gopc, g_startpc;
	uint32_t g_labels;	   /* unsafe.Pointer to the pprof label set */
	uint32_t g_size;	   /* sizeof(runtime.g) */
	uint32_t m_procid, m_curg; /* runtime.m.procid (OS thread id) / .curg */
	/* The label set g.labels points to: a struct whose first field is a []{Key, Value string}
	 * (1.24+: pprof.labelMap{LabelSet}, 1.26+: label.Set{List}); before 1.24 a
	 * map[string]string, which `goscope goroutines` does not read (BPF does, for CPU and block
	 * samples: bpf/golabels.bpf.h). */
	bool labels_slice;
};

/* Facts for "go1.N[.M]". -EPROTONOSUPPORT for Go < 1.17 (message says why); -EINVAL for a
 * version string that does not parse. Versions newer than the table use the newest entry
 * (measured = false). */
int goversion_lookup(const char *go_version, struct goversion_facts *out, struct gs_error *err);

/* The runtime's string for waitReason n, or "waitReason(N)" in buf for unknown numbers. */
const char *goversion_wait_reason(const struct goversion_facts *f, unsigned n, char *buf,
				  size_t len);
/* The waitReason number of a string ("chan receive"); -ENOENT. */
int goversion_wait_reason_number(const struct goversion_facts *f, const char *s);

/* ---- the runtime's profile buckets (runtime/mprof.go), read by agent/goruntime/heap*.c ----
 * Layouts of runtime.bucket, runtime.memRecord and runtime.blockRecord, and how
 * runtime/pprof turns them into a profile, per Go version. Measured: the byte sizes of
 * runtime.bucket, runtime.memRecord, runtime.memRecordCycle and runtime.blockRecord from
 * the DWARF of tests/go/heapalloc built by each toolchain (readelf --debug-dump=info), the
 * field order from runtime/mprof.go of each toolchain (/usr/lib/go-1.N/src), the pprof
 * behaviour from runtime/pprof/protomem.go and pprof.go; docs/go-runtime.md, "Memory
 * profile buckets". */
struct goversion_mprof {
	int minor;	     /* first Go minor version with this layout */
	bool measured;	     /* false: inferred (the version is not installed here) */
	uint32_t bucket_hdr; /* sizeof(runtime.bucket); the stack follows, then the record */
	uint32_t b_allnext, b_typ, b_size, b_nstk; /* offsets in runtime.bucket */
	uint32_t cycle_size;	/* sizeof(memRecordCycle): {allocs, frees[, alloc_bytes,
				free_bytes]} as uintptr */
	uint32_t nfuture;	/* len(memRecord.future); memRecord = active + future[] */
	uint32_t blockrec_size; /* sizeof(blockRecord) = {count float64, cycles int64} */
	uint32_t max_stack;	/* nstk of a bucket never exceeds it (maxStack /
				   maxProfStackDepth) */
	/* 1.27: memRecordCycle has no byte counts; runtime/pprof scales with ObjectSize and
	 * always adds the "bytes" label (before: AllocBytes/AllocObjects, label when != 0). */
	bool object_size;
	bool hide_internal_runtime; /* 1.24+: "internal/runtime/" frames elided like "runtime." */
	bool mutex_scaled_by_pprof; /* 1.19: runtime/pprof multiplies mutex values by the
				       fraction (later the runtime does it when recording) */
	const char *bbuckets_fn, *xbuckets_fn; /* the functions whose code loads bbuckets /
						  xbuckets (one RIP-relative MOVQ each) */
};

/* The bucket facts of Go 1.minor (>= GOVERSION_MIN_MINOR); newer versions than the table
 * get the newest entry with measured = false. */
void goversion_mprof_lookup(int minor, struct goversion_mprof *out);

#endif
