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

#endif
