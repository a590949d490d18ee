/* heap_find.c — where the runtime's profile variables are in a Go binary, stripped ones
 * included: the ELF symbol when there is one, else the one RIP-relative load of the variable
 * in a small runtime function that the pclntab still names (the way goroutines.c finds
 * runtime.allgs from runtime.allgadd). Measured on tests/go/heapalloc built by every
 * toolchain 1.19-1.27 (objdump -d against the symbols of the unstripped build;
 * docs/go-runtime.md, "Memory profile buckets"):
 *   runtime.mbuckets        MOVQ in runtime.mProf_FlushLocked (its only RIP load)
 *   runtime.mProfCycle      MOVL in runtime.mProf_PostSweep (its only 32-bit RIP load)
 *   runtime.MemProfileRate  MOVQ in runtime.allocmcache (inlined nextSample; only MOVQ)
 *   runtime.bbuckets        MOVQ in runtime.BlockProfile (<= 1.22) / blockProfileInternal
 *   runtime.xbuckets        MOVQ in runtime.MutexProfile (<= 1.22) / mutexProfileInternal
 *   runtime.mutexprofilerate MOVQ in sync.event (1.19, runtime.mutexevent's linkname)
 * Every candidate is checked against memory: a list head must be nil or point to a bucket
 * of the list's type, the cycle must be below mProfCycleWrap, the rate must be >= 0. */
#include <errno.h>
#include <string.h>

#include "goruntime/goroutines.h"
#include "goruntime/heap.h"

#define MAX_FN_CODE 8192 /* bytes of a function decoded (those above are < 1 KiB) */
#define MAX_REFS 64
#define MPROF_CYCLE_WRAP (3u * (2u << 24)) /* len(future) * (2 << 24) */

/* Targets of the RIP-relative 32-bit loads (`MOVL disp32(RIP), r32`: [REX without W] 8B
 * modrm with mod=00 rm=101) in code at link-time base. */
static size_t rip_loads32(const uint8_t *code, size_t len, uint64_t base, uint64_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i + 6 <= len && n < max; i++) {
		size_t at = i;
		int32_t disp;

		if (code[at] != 0x8b || (code[at + 1] & 0xc7) != 0x05)
			continue;
		if (i > 0 && (code[i - 1] & 0xf8) == 0x48)
			continue; /* the tail of a 64-bit load */
		memcpy(&disp, code + at + 2, 4);
		out[n++] = base + at + 6 + (uint64_t)(int64_t)disp;
	}
	return n;
}

/* The candidate addresses (link-time) a function's code loads: 64-bit loads, or 32-bit. */
static int fn_loads(struct gs_binary *bin, const char *fn, bool load32, uint64_t *refs, size_t *n)
{
	uint8_t code[MAX_FN_CODE];
	uint64_t entry, end;
	size_t len;

	*n = 0;
	if (gs_binary_find_function(bin, fn, &entry, &end) < 0)
		return -ENOENT;
	len = end > entry ? end - entry : 0;
	if (len > sizeof(code))
		len = sizeof(code);
	if (len < 6 || gs_binary_read(bin, entry, code, len) < 0)
		return -ENOENT;
	*n = load32 ? rip_loads32(code, len, entry, refs, MAX_REFS)
		    : gr_rip_loads(code, len, entry, refs, MAX_REFS);
	return 0;
}

enum check { CHECK_LIST, CHECK_CYCLE, CHECK_RATE };

/* Whether the variable at addr (runtime address) looks like what it should be. */
static bool plausible(struct gr_mem *mem, const struct goversion_mprof *f, enum check c,
		      uint64_t typ, uint64_t addr)
{
	uint64_t v = 0, t;
	uint32_t cyc;

	switch (c) {
	case CHECK_LIST:
		if (gr_mem_read(mem, addr, &v, sizeof(v), NULL) < 0 || (v & 7))
			return false;
		return v == 0 ||
		       (gr_mem_read(mem, v + f->b_typ, &t, sizeof(t), NULL) == 0 && t == typ);
	case CHECK_CYCLE:
		return gr_mem_read(mem, addr, &cyc, sizeof(cyc), NULL) == 0 &&
		       (cyc >> 1) < MPROF_CYCLE_WRAP;
	case CHECK_RATE:
		return gr_mem_read(mem, addr, &v, sizeof(v), NULL) == 0 && (int64_t)v >= 0;
	}
	return false;
}

/* One variable: its symbol, else the loads of fn. */
static int find_var(struct gs_binary *bin, uint64_t bias, struct gr_mem *mem,
		    const struct goversion_mprof *f, const char *sym, const char *fn, bool load32,
		    enum check c, uint64_t typ, uint64_t *out, const char **how,
		    struct gs_error *err)
{
	uint64_t addr, size, refs[MAX_REFS];
	size_t n;

	if (gs_binary_find_symbol(bin, sym, &addr, &size) == 0 && addr &&
	    plausible(mem, f, c, typ, addr + bias)) {
		*out = addr + bias;
		if (how)
			*how = "symbol";
		return 0;
	}
	if (fn_loads(bin, fn, load32, refs, &n) < 0)
		return gs_error_set(err, -ENOENT,
				    "%s not found (no symbol, and no %s in the pclntab)", sym, fn);
	for (size_t i = 0; i < n; i++) {
		if (plausible(mem, f, c, typ, refs[i] + bias)) {
			*out = refs[i] + bias;
			if (how)
				*how = "code";
			return 0;
		}
	}
	return gs_error_set(err, -ENOENT,
			    "%s not found (no symbol, and none of the %zu addresses %s loads "
			    "holds it)",
			    sym, n, fn);
}

int heap_find_vars(struct gs_binary *bin, uint64_t bias, struct gr_mem *mem,
		   const struct goversion_mprof *f, enum heap_kind kind, struct heap_vars *out,
		   struct gs_error *err)
{
	const char *how = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case HEAP_KIND_HEAP:
		rc = find_var(bin, bias, mem, f, "runtime.mbuckets", "runtime.mProf_FlushLocked",
			      false, CHECK_LIST, HEAP_BUCKET_TYPE_MEM, &out->list, &how, err);
		if (rc == 0)
			rc = find_var(bin, bias, mem, f, "runtime.mProfCycle",
				      "runtime.mProf_PostSweep", true, CHECK_CYCLE, 0, &out->cycle,
				      NULL, err);
		if (rc == 0)
			rc = find_var(bin, bias, mem, f, "runtime.MemProfileRate",
				      "runtime.allocmcache", false, CHECK_RATE, 0, &out->rate, NULL,
				      err);
		out->list_found_by = how && strcmp(how, "symbol") == 0
					     ? "symbol runtime.mbuckets"
					     : "runtime.mProf_FlushLocked code";
		return rc;
	case HEAP_KIND_BLOCK:
		rc = find_var(bin, bias, mem, f, "runtime.bbuckets", f->bbuckets_fn, false,
			      CHECK_LIST, HEAP_BUCKET_TYPE_BLOCK, &out->list, &how, err);
		out->list_found_by = how && strcmp(how, "symbol") == 0 ? "symbol runtime.bbuckets"
								       : f->bbuckets_fn;
		return rc;
	case HEAP_KIND_MUTEX:
		rc = find_var(bin, bias, mem, f, "runtime.xbuckets", f->xbuckets_fn, false,
			      CHECK_LIST, HEAP_BUCKET_TYPE_MUTEX, &out->list, &how, err);
		out->list_found_by = how && strcmp(how, "symbol") == 0 ? "symbol runtime.xbuckets"
								       : f->xbuckets_fn;
		if (rc == 0 && f->mutex_scaled_by_pprof)
			rc = find_var(bin, bias, mem, f, "runtime.mutexprofilerate", "sync.event",
				      false, CHECK_RATE, 0, &out->mutex_rate, NULL, err);
		return rc;
	}
	return gs_error_set(err, -EINVAL, "unknown profile kind %d", (int)kind);
}
