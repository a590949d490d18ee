/* heap_profile.c — a heap_snapshot as the profile the process's own runtime/pprof writes:
 * writeHeapProto (runtime/pprof/protomem.go) for the heap, printCountCycleProfile
 * (runtime/pprof/pprof.go) for block and mutex, per Go version (goversion_mprof):
 *  - heap: period type space/bytes, period = MemProfileRate, sample types alloc_objects/count,
 *    alloc_space/bytes, inuse_objects/count, inuse_space/bytes, no default type (as
 *    /debug/pprof/heap), values through scaleHeapSample with Go's own math.Exp, a numeric
 *    "bytes" label (the object size);
 *  - block/mutex: period type contentions/count, period 1, contentions/count and
 *    delay/nanoseconds (cycles / (cycles per second / 1e9)); 1.19 scales mutex values by
 *    the fraction as its runtime/pprof did;
 *  - frames: appendLocsForStack's result — one location per real PC with its inlined frames
 *    (innermost first), the "virtual" PCs the runtime stores for inlined frames folded into
 *    it, wrappers left out, runtime.goexit dropped; for the heap, leading runtime frames
 *    ("runtime." and, 1.24+, "internal/runtime/") hidden unless the stack is all runtime. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "goruntime/heap.h"
#include "profile/profile.h"

#define MAX_INLINE 64	  /* frames of one PC (inlining depth) */
#define MAX_LOCS 2048	  /* locations of one sample (stacks are at most 1024 PCs) */
#define NAME_MAX_LEN 1024 /* function names are cut there */
#define NS_PER_SEC 1e9

/* ---- Go's math.Exp (amd64 assembly, src/math/exp_amd64.s, the same in 1.19-1.27) ---- */

static double f64(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static uint64_t bits64(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

/* Constants of exp_amd64.s, in its order. */
#define EXP_LN2U 0.69314718055966295651160180568695068359375
#define EXP_LN2L 0.28235290563031577122588448175013436025525412068e-12
#define EXP_LOG2E 1.4426950408889634073599246810018920
#define EXP_OVERFLOW 7.09782712893384e+02
#define POS_INF_BITS 0x7FF0000000000000ull
#define NEG_INF_BITS 0xFFF0000000000000ull
static const double exprodata[] = {0.5,
				   1.0,
				   2.0,
				   1.6666666666666666667e-1,
				   4.1666666666666666667e-2,
				   8.3333333333333333333e-3,
				   1.3888888888888888889e-3,
				   1.9841269841269841270e-4,
				   2.4801587301587301587e-5};

/* CVTSD2SL: round to nearest even, 0x80000000 when out of range. */
static int32_t cvtsd2sl(double d)
{
	if (!(d >= -2147483648.5 && d < 2147483647.5))
		return INT32_MIN;
	return (int32_t)nearbyint(d);
}

/* The assembly instruction by instruction: every multiply and add rounded on its own
 * (the non-FMA path; goscope is built without -mfma, so the compiler fuses nothing), or
 * fused where the assembly uses VFMADD/VFNMADD. */
double heap_go_exp(double x, bool use_fma)
{
	uint64_t bx = bits64(x);
	double x0 = x, x1, x2;
	int32_t e;

	if ((int64_t)(bx & ~(1ull << 63)) >= (int64_t)POS_INF_BITS) {
		if (bx == NEG_INF_BITS)
			return 0;
		return x; /* NaN or +Inf */
	}
	if (x0 > EXP_OVERFLOW)
		return f64(POS_INF_BITS);
	x1 = EXP_LOG2E * x0;
	e = cvtsd2sl(x1);
	x1 = (double)e;
	if (use_fma) {
		x0 = fma(-x1, EXP_LN2U, x0);
		x0 = fma(-x1, EXP_LN2L, x0);
		x0 = x0 * 0.0625;
		x1 = exprodata[8];
		x1 = fma(x1, x0, exprodata[7]);
		x1 = fma(x1, x0, exprodata[6]);
		x1 = fma(x1, x0, exprodata[5]);
		x1 = fma(x1, x0, exprodata[4]);
		x1 = fma(x1, x0, exprodata[3]);
		x1 = fma(x1, x0, exprodata[0]);
		x1 = fma(x1, x0, exprodata[1]);
		x0 = x0 * x1;
		x1 = x0 + exprodata[2];
		x0 = x0 * x1;
		x1 = x0 + exprodata[2];
		x0 = x0 * x1;
		x1 = x0 + exprodata[2];
		x0 = x0 * x1;
		x1 = x0 + exprodata[2];
		x0 = fma(x0, x1, exprodata[1]);
	} else {
		x2 = EXP_LN2U * x1;
		x0 = x0 - x2;
		x2 = EXP_LN2L * x1;
		x0 = x0 - x2;
		x0 = x0 * 0.0625;
		x1 = exprodata[8] * x0;
		x1 = x1 + exprodata[7];
		x1 = x1 * x0;
		x1 = x1 + exprodata[6];
		x1 = x1 * x0;
		x1 = x1 + exprodata[5];
		x1 = x1 * x0;
		x1 = x1 + exprodata[4];
		x1 = x1 * x0;
		x1 = x1 + exprodata[3];
		x1 = x1 * x0;
		x1 = x1 + exprodata[0];
		x1 = x1 * x0;
		x1 = x1 + exprodata[1];
		x0 = x0 * x1;
		for (int i = 0; i < 4; i++) {
			x1 = exprodata[2] + x0;
			x0 = x0 * x1;
		}
		x0 = x0 + exprodata[1];
	}
	/* ldexp */
	if ((int64_t)e + 0x3FF <= 0) {
		int64_t b = (int64_t)e + 0x3FF;

		if (b < -52)
			return 0;
		b += 0x3FE;
		x0 = x0 * f64((uint64_t)b << 52);
		return x0 * f64(1ull << 52);
	}
	if ((int64_t)e + 0x3FF >= 0x7FF)
		return f64(POS_INF_BITS);
	return x0 * f64((uint64_t)((int64_t)e + 0x3FF) << 52);
}

static bool cpu_has_fma(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
}

/* Go's int64(float64) on amd64 (CVTTSD2SQ): truncation, INT64_MIN when out of range. */
static int64_t go_f64_to_i64(double d)
{
	if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)d;
}

static bool cpu_fma;
static pthread_once_t fma_once = PTHREAD_ONCE_INIT;

static void fma_detect(void)
{
	cpu_fma = cpu_has_fma();
}

void heap_scale_sample(int64_t count, int64_t size, int64_t rate, bool object_size,
		       int64_t *count_out, int64_t *size_out)
{
	double scale;

	pthread_once(&fma_once, fma_detect);
	/* object_size (1.27): size is the object size, bytes are count * size */
	if (count == 0 || size == 0) {
		*count_out = *size_out = 0;
		return;
	}
	if (rate <= 1) {
		*count_out = count;
		*size_out = object_size ? count * size : size;
		return;
	}
	if (object_size) {
		scale = 1 / (1 - heap_go_exp(-(double)size / (double)rate, cpu_fma));
		*count_out = go_f64_to_i64((double)count * scale);
		*size_out = go_f64_to_i64((double)(count * size) * scale);
	} else {
		double avg = (double)size / (double)count;

		scale = 1 / (1 - heap_go_exp(-avg / (double)rate, cpu_fma));
		*count_out = go_f64_to_i64((double)count * scale);
		*size_out = go_f64_to_i64((double)size * scale);
	}
}

/* ---- TSC rate (Go's cputicks() is RDTSC on amd64) ---- */

#define TSC_MEASURE_NS 20000000ll /* 20 ms */

static double tsc_rate;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void tsc_measure(void)
{
	int64_t t0 = mono_ns(), t1;
	uint64_t c0 = __builtin_ia32_rdtsc(), c1;

	do {
		t1 = mono_ns();
	} while (t1 - t0 < TSC_MEASURE_NS);
	c1 = __builtin_ia32_rdtsc();
	tsc_rate = (double)(c1 - c0) * NS_PER_SEC / (double)(t1 - t0);
}

double heap_cycles_per_second(void)
{
	pthread_once(&tsc_once, tsc_measure);
	return tsc_rate;
}

/* ---- frames ---- */

#define SYMCACHE_SLOTS 8192u /* pcs remembered (a profile repeats the same pcs a lot) */

struct symslot {
	uint64_t pc; /* runtime address */
	bool used, exact;
	int n; /* frames (0: no Go function there) */
	struct gs_frame *fr;
};

struct builder {
	const struct heap_snapshot *s;
	struct symslot *cache;
	const struct gs_binary *bin;
	uint64_t bias;
	struct profile *p;
	uint64_t mapping;
	struct gs_frame fr[MAX_INLINE], fr2[MAX_INLINE];
};

static size_t fname_len(const struct gs_frame *f)
{
	return strnlen(f->function, f->function_len ? f->function_len : NAME_MAX_LEN);
}

static void copy_frames(struct gs_frame *dst, const struct gs_frame *src, int n)
{
	memcpy(dst, src, (size_t)n * sizeof(*dst));
	/* function may point into namebuf: re-point it into the copy */
	for (int i = 0; i < n; i++) {
		if (src[i].function == src[i].namebuf)
			dst[i].function = dst[i].namebuf;
	}
}

/* The frames of pc (exact: looked up at pc, else at pc-1 as a return address) into fr,
 * through the cache. */
static int symbolize(struct builder *b, uint64_t pc, bool exact, struct gs_frame *fr)
{
	struct symslot *sl =
		&b->cache[((pc * 0x9E3779B97F4A7C15ull) >> 40 ^ exact) % SYMCACHE_SLOTS];
	struct gs_error err = {0};
	int n;

	if (sl->used && sl->pc == pc && sl->exact == exact) {
		copy_frames(fr, sl->fr, sl->n);
		return sl->n;
	}
	if (pc < b->bias)
		return 0;
	n = gs_binary_symbolize(b->bin, pc - b->bias, exact ? 0 : GS_LOOKUP_RETURN_ADDR, fr,
				MAX_INLINE, &err);
	if (n < 0)
		n = 0;
	free(sl->fr);
	*sl = (struct symslot){0};
	sl->fr = malloc((size_t)(n ? n : 1) * sizeof(*sl->fr));
	if (sl->fr) {
		copy_frames(sl->fr, fr, n);
		*sl = (struct symslot){
			.pc = pc, .used = true, .exact = exact, .n = n, .fr = sl->fr};
	}
	return n;
}

/* Frames of a return PC, innermost first, wrappers left out (the runtime's tracebacks
 * elide them); 0 when no Go function covers it. */
static int frames_of(struct builder *b, uint64_t pc, struct gs_frame *fr)
{
	int n = symbolize(b, pc, false, fr), k = 0;

	for (int i = 0; i < n; i++) {
		if (fr[i].wrapper)
			continue;
		if (k != i) {
			fr[k] = fr[i];
			if (fr[i].function == fr[i].namebuf)
				fr[k].function = fr[k].namebuf;
		}
		k++;
	}
	return n > 0 ? k : 0;
}

static bool same_frames(const struct gs_frame *a, const struct gs_frame *b, int n)
{
	for (int i = 0; i < n; i++) {
		size_t la = fname_len(&a[i]), lb = fname_len(&b[i]);

		if (la != lb || memcmp(a[i].function, b[i].function, la) != 0 ||
		    a[i].line != b[i].line)
			return false;
	}
	return true;
}

static bool has_prefix(const char *s, size_t len, const char *p)
{
	size_t pl = strlen(p);

	return len >= pl && memcmp(s, p, pl) == 0;
}

/* runtime.FuncForPC(pc).Name() starts with "runtime." (or "internal/runtime/"): the name
 * of the innermost function at pc itself (not pc-1). */
static bool runtime_pc(struct builder *b, uint64_t pc)
{
	struct gs_frame *fr = b->fr2;
	int n = symbolize(b, pc, true, fr);
	size_t len;

	if (n <= 0)
		return false;
	len = fname_len(&fr[0]);
	return has_prefix(fr[0].function, len, "runtime.") ||
	       (b->s->facts.hide_internal_runtime &&
		has_prefix(fr[0].function, len, "internal/runtime/"));
}

/* The location of pc with frames fr[0..n), found or added. */
static uint64_t location(struct builder *b, uint64_t pc, const struct gs_frame *fr, int n)
{
	struct profile_line lines[MAX_INLINE];
	uint64_t id = profile_location_find(b->p, 0, pc);

	if (id)
		return id;
	/* full symbol names, generics' shapes included, as runtime/pprof writes them */
	for (int k = 0; k < n; k++) {
		lines[k].function_id = profile_function(
			b->p, fr[k].raw_function, fr[k].raw_function, fr[k].file, fr[k].start_line);
		lines[k].line = fr[k].line;
	}
	return profile_location_add(b->p, 0, pc, b->mapping, lines, (size_t)n);
}

/* appendLocsForStack on stk[from..n). Returns the number of locations, -ENOMEM. */
static int stack_locs(struct builder *b, const uint64_t *stk, size_t n, size_t from, uint64_t *locs)
{
	size_t nl = 0, i = from;

	while (i < n && nl < MAX_LOCS) {
		uint64_t pc = stk[i++];
		int nf = frames_of(b, pc, b->fr);

		if (nf > 0 && fname_len(&b->fr[nf - 1]) == 14 &&
		    memcmp(b->fr[nf - 1].function, "runtime.goexit", 14) == 0)
			continue;
		locs[nl] = location(b, pc, b->fr, nf);
		if (!locs[nl])
			return -ENOMEM;
		nl++;
		/* the virtual PCs of the outer frames of an inlined call (runtime.Callers
		 * stores one per inlined frame) belong to this location */
		for (int k = 1; k < nf && i < n; k++) {
			int nf2 = frames_of(b, stk[i], b->fr2);

			if (nf2 != nf - k || !same_frames(b->fr2, b->fr + k, nf2))
				break;
			i++;
		}
	}
	return (int)nl;
}

static int add_heap_sample(struct builder *b, const struct heap_bucket *hb, uint64_t *locs,
			   struct gs_error *err)
{
	const struct goversion_mprof *f = &b->s->facts;
	struct profile_label label = {.key = "bytes"};
	int64_t v[4];
	size_t from = 0, nlabels = 0;
	int nl = 0;

	for (int tries = 0; tries < 2; tries++) {
		from = 0;
		if (tries == 0) {
			size_t i;

			for (i = 0; i < hb->nstk && runtime_pc(b, hb->stk[i]); i++)
				;
			/* writeHeapProto: sliced at the first non-runtime PC; all-runtime
			 * stacks are kept whole */
			if (i < hb->nstk)
				from = i;
		}
		nl = stack_locs(b, hb->stk, hb->nstk, from, locs);
		if (nl < 0)
			return gs_error_set(err, -ENOMEM, "out of memory");
		if (nl > 0)
			break;
	}
	if (f->object_size) {
		heap_scale_sample(hb->v[0], (int64_t)hb->size, b->s->rate, true, &v[0], &v[1]);
		heap_scale_sample(hb->v[0] - hb->v[2], (int64_t)hb->size, b->s->rate, true, &v[2],
				  &v[3]);
		label.num = (int64_t)hb->size;
		nlabels = 1;
	} else {
		heap_scale_sample(hb->v[0], hb->v[1], b->s->rate, false, &v[0], &v[1]);
		heap_scale_sample(hb->v[0] - hb->v[2], hb->v[1] - hb->v[3], b->s->rate, false,
				  &v[2], &v[3]);
		if (hb->v[0] > 0 && hb->v[1] / hb->v[0] != 0) {
			label.num = hb->v[1] / hb->v[0];
			nlabels = 1;
		}
	}
	return profile_add_sample(b->p, locs, (size_t)nl, v, &label, nlabels, err);
}

static int add_count_sample(struct builder *b, const struct heap_bucket *hb, double ghz,
			    uint64_t *locs, struct gs_error *err)
{
	const struct heap_snapshot *s = b->s;
	int64_t v[2];
	double ns = (double)hb->v[1] / ghz;
	int nl = stack_locs(b, hb->stk, hb->nstk, 0, locs);

	if (nl < 0)
		return gs_error_set(err, -ENOMEM, "out of memory");
	v[0] = hb->v[0];
	if (s->kind == HEAP_KIND_MUTEX && s->facts.mutex_scaled_by_pprof) {
		/* go1.19 scaleMutexProfile: cnt * period, ns * period */
		v[0] = hb->v[0] * s->rate;
		ns = ns * (double)s->rate;
	}
	v[1] = go_f64_to_i64(ns);
	return profile_add_sample(b->p, locs, (size_t)nl, v, NULL, 0, err);
}

int heap_snapshot_profile(const struct heap_snapshot *s, const struct gs_binary *bin, uint64_t bias,
			  double cycles_per_second, struct profile **out, struct gs_error *err)
{
	const struct gs_binary_info *bi = gs_binary_info(bin);
	struct builder *b = calloc(1, sizeof(*b));
	uint64_t *locs = malloc(MAX_LOCS * sizeof(*locs));
	bool heap = s->kind == HEAP_KIND_HEAP;
	struct timespec now;
	char comment[256];
	int rc = 0;

	if (!b || !locs || !(b->cache = calloc(SYMCACHE_SLOTS, sizeof(*b->cache))) ||
	    !(b->p = profile_new())) {
		rc = gs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	b->s = s;
	b->bin = bin;
	b->bias = bias;
	if (heap) {
		profile_set_period(b->p, "space", "bytes", s->rate);
		if (profile_add_sample_type(b->p, "alloc_objects", "count") < 0 ||
		    profile_add_sample_type(b->p, "alloc_space", "bytes") < 0 ||
		    profile_add_sample_type(b->p, "inuse_objects", "count") < 0 ||
		    profile_add_sample_type(b->p, "inuse_space", "bytes") < 0)
			rc = -ENOMEM;
	} else {
		profile_set_period(b->p, "contentions", "count", 1);
		if (profile_add_sample_type(b->p, "contentions", "count") < 0 ||
		    profile_add_sample_type(b->p, "delay", "nanoseconds") < 0)
			rc = -ENOMEM;
		if (cycles_per_second <= 0)
			cycles_per_second = heap_cycles_per_second();
	}
	if (rc < 0) {
		gs_error_set(err, rc, "out of memory");
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	profile_set_time(b->p, (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec, 0);
	snprintf(comment, sizeof(comment),
		 "goscope heap: %s profile read from memory: %zu buckets, %zu inconsistent, "
		 "%zu unreadable, %zu restarts%s%s",
		 heap_kind_name(s->kind), s->n, s->inconsistent, s->unreadable, s->restarts,
		 s->cut ? ", list cut" : "", s->facts.measured ? "" : ", layout not measured");
	profile_add_comment(b->p, comment);
	b->mapping = profile_mapping(b->p, 0, UINT64_MAX, 0, gs_binary_name(bin),
				     bi->go_build_id[0] ? bi->go_build_id : bi->gnu_build_id, true,
				     true, true, true);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		if (heap)
			rc = add_heap_sample(b, &s->b[i], locs, err);
		else
			rc = add_count_sample(b, &s->b[i], cycles_per_second / NS_PER_SEC, locs,
					      err);
	}
	if (rc == 0) {
		*out = b->p;
		b->p = NULL;
	}
out:
	if (b) {
		profile_free(b->p);
		for (size_t i = 0; b->cache && i < SYMCACHE_SLOTS; i++)
			free(b->cache[i].fr);
		free(b->cache);
	}
	free(b);
	free(locs);
	return rc;
}
