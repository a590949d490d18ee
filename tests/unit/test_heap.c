/* test_heap.c — unit tests of the bucket walk (agent/goruntime/heap.c) on crafted memory
 * images of the runtime's profile buckets, read through a fake gr_mem that can fail, make
 * the process vanish, or change memory between reads as the running program would; and of
 * the numbers the profile is made of (Go's math.Exp bit for bit, scaleHeapSample). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goruntime/heap.h"

#define BASE 0x7f0000000000ull
#define IMG 8192
#define HDR 48

struct fake {
	struct gr_mem m;
	uint8_t img[IMG];
	unsigned long reads, fail_after; /* -ESRCH from read fail_after on (0: never) */
	/* bump: each read that covers bump_off adds 1 to the word there (a record that the
	 * program keeps changing); cycle_at: on that read, the word at +8 (mProfCycle) grows */
	long bump_off;
	unsigned long cycle_at;
};

static int fake_read(struct gr_mem *m, uint64_t addr, void *buf, size_t len, struct gs_error *err)
{
	struct fake *f = (struct fake *)m;
	uint64_t off = addr - BASE;

	f->reads++;
	if (f->fail_after && f->reads >= f->fail_after)
		return gs_error_set(err, -ESRCH, "gone");
	if (f->cycle_at && f->reads == f->cycle_at) {
		uint32_t c;

		memcpy(&c, f->img + 8, 4);
		c += 2;
		memcpy(f->img + 8, &c, 4);
	}
	if (addr < BASE || off > IMG || len > IMG - off)
		return gs_error_set(err, -EFAULT, "unmapped");
	if (f->bump_off >= 0 && (uint64_t)f->bump_off >= off && (uint64_t)f->bump_off < off + len) {
		uint64_t v;

		memcpy(&v, f->img + f->bump_off, 8);
		v++;
		memcpy(f->img + f->bump_off, &v, 8);
	}
	memcpy(buf, f->img + off, len);
	return 0;
}

static void fake_close(struct gr_mem *m)
{
	(void)m;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	cr_assert_not_null(f);
	f->m.read = fake_read;
	f->m.close = fake_close;
	f->bump_off = -1;
	return f;
}

static void put(struct fake *f, size_t off, uint64_t v)
{
	memcpy(f->img + off, &v, 8);
}

static const struct heap_vars vars = {
	.list = BASE, .cycle = BASE + 8, .rate = BASE + 16, .mutex_rate = BASE + 24};

/* A bucket at off: header, nstk PCs (0x401000 + i), then the record words. */
static void bucket(struct fake *f, size_t off, uint64_t allnext, uint64_t typ, uint64_t size,
		   unsigned nstk, const uint64_t *rec, unsigned nrec)
{
	put(f, off + 8, allnext ? BASE + allnext : 0);
	put(f, off + 16, typ);
	put(f, off + 32, size);
	put(f, off + 40, nstk);
	for (unsigned i = 0; i < nstk; i++)
		put(f, off + HDR + 8 * i, 0x401000 + i);
	for (unsigned i = 0; i < nrec; i++)
		put(f, off + HDR + 8 * nstk + 8 * i, rec[i]);
}

static struct heap_snapshot *read_ok(struct fake *f, int minor, enum heap_kind kind,
				     const struct heap_read_opts *o)
{
	struct goversion_mprof mf;
	struct heap_snapshot *s = NULL;
	struct gs_error err = {0};
	int rc;

	goversion_mprof_lookup(minor, &mf);
	rc = heap_snapshot_read(&f->m, &mf, &vars, kind, o, &s, &err);
	cr_assert_eq(rc, 0, "heap_snapshot_read: %d %s", rc, err.msg);
	return s;
}

static int read_err(struct fake *f, int minor, enum heap_kind kind, struct gs_error *err)
{
	struct goversion_mprof mf;
	struct heap_snapshot *s = NULL;
	int rc;

	goversion_mprof_lookup(minor, &mf);
	rc = heap_snapshot_read(&f->m, &mf, &vars, kind, NULL, &s, err);
	cr_assert_lt(rc, 0);
	cr_assert_null(s);
	return rc;
}

/* Go 1.27: memRecord = active + future[3], each {allocs, frees}; published = active +
 * future[cycle % 3]; bytes = objects * size. */
Test(heap, published_values_go127)
{
	struct fake *f = fake_new();
	/* cycle 5: future[2] is the published, not yet flushed cycle */
	const uint64_t r1[] = {10, 3, 100, 100, 50, 50, 2, 1};
	const uint64_t r2[] = {0, 0, 7, 0, 0, 0, 0, 0};
	struct heap_snapshot *s;

	put(f, 0, BASE + 64);
	put(f, 8, 5 << 1 | 1);
	put(f, 16, 512 * 1024);
	bucket(f, 64, 512, HEAP_BUCKET_TYPE_MEM, 4096, 3, r1, 8);
	bucket(f, 512, 0, HEAP_BUCKET_TYPE_MEM, 64, 1, r2, 8);
	s = read_ok(f, 27, HEAP_KIND_HEAP, NULL);
	cr_assert_eq(s->n, 2);
	cr_assert_eq(s->rate, 512 * 1024);
	cr_assert_eq(s->cycle, 5);
	cr_assert_eq(s->b[0].nstk, 3);
	cr_assert_eq(s->b[0].stk[2], 0x401002);
	cr_assert_eq(s->b[0].size, 4096);
	cr_assert_eq(s->b[0].v[0], 12);
	cr_assert_eq(s->b[0].v[1], 12 * 4096);
	cr_assert_eq(s->b[0].v[2], 4);
	cr_assert_eq(s->b[0].v[3], 4 * 4096);
	/* allocations of a future cycle are not published yet */
	cr_assert_eq(s->b[1].v[0], 0);
	cr_assert_not(s->all_cycles);
	cr_assert_eq(s->inconsistent + s->unreadable + s->restarts, 0);
	heap_snapshot_free(s);
	free(f);
}

/* Go 1.19-1.26: {allocs, frees, alloc_bytes, free_bytes} per cycle. */
Test(heap, published_values_go121)
{
	struct fake *f = fake_new();
	uint64_t rec[16] = {5, 2, 500, 200};
	struct heap_snapshot *s;

	rec[4 * (1 + 1)] = 1; /* cycle 1: future[1] published */
	rec[4 * (1 + 1) + 2] = 100;
	put(f, 0, BASE + 64);
	put(f, 8, 1 << 1);
	put(f, 16, 1);
	bucket(f, 64, 0, HEAP_BUCKET_TYPE_MEM, 100, 2, rec, 16);
	s = read_ok(f, 21, HEAP_KIND_HEAP, NULL);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->b[0].v[0], 6);
	cr_assert_eq(s->b[0].v[1], 600);
	cr_assert_eq(s->b[0].v[2], 2);
	cr_assert_eq(s->b[0].v[3], 200);
	heap_snapshot_free(s);
	free(f);
}

/* No GC yet: nothing published anywhere, every cycle summed (memProfileInternal). */
Test(heap, no_gc_yet_sums_every_cycle)
{
	struct fake *f = fake_new();
	const uint64_t rec[] = {0, 0, 0, 0, 2, 1, 4, 0}; /* cycle 0: future[0] published */
	struct heap_snapshot *s;

	put(f, 0, BASE + 64);
	put(f, 16, 512 * 1024);
	bucket(f, 64, 0, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
	s = read_ok(f, 27, HEAP_KIND_HEAP, NULL);
	cr_assert(s->all_cycles);
	cr_assert_eq(s->b[0].v[0], 6);
	cr_assert_eq(s->b[0].v[2], 1);
	cr_assert_eq(s->b[0].v[1], 6 * 32);
	heap_snapshot_free(s);
	free(f);
}

/* A GC publishes the next cycle during the walk: the walk is done again. */
Test(heap, cycle_change_restarts_the_walk)
{
	struct fake *f = fake_new();
	const uint64_t rec[] = {1, 0, 0, 0, 0, 0, 0, 0};
	struct heap_snapshot *s;

	put(f, 0, BASE + 64);
	put(f, 8, 4 << 1);
	put(f, 16, 1);
	bucket(f, 64, 0, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
	f->cycle_at = 4; /* rate, cycle, head, then the bucket's window */
	s = read_ok(f, 27, HEAP_KIND_HEAP, NULL);
	cr_assert_eq(s->restarts, 1);
	cr_assert_eq(s->cycle, 5);
	cr_assert_eq(s->n, 1);
	heap_snapshot_free(s);
	free(f);
}

Test(heap, self_loop_is_bounded)
{
	struct fake *f = fake_new();
	const uint64_t rec[] = {1, 0, 0, 0, 0, 0, 0, 0};
	struct heap_read_opts o = {.max_buckets = 100};
	struct heap_snapshot *s;

	put(f, 0, BASE + 64);
	put(f, 8, 1 << 1);
	put(f, 16, 1);
	bucket(f, 64, 64, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
	s = read_ok(f, 27, HEAP_KIND_HEAP, &o);
	cr_assert_eq(s->n, 100);
	cr_assert(s->cut);
	heap_snapshot_free(s);
	free(f);
}

/* What is not a bucket of the list's type, has too deep a stack, or is not mapped ends the
 * walk (counted); what was read before is kept. */
Test(heap, bad_buckets_end_the_walk)
{
	const uint64_t rec[] = {1, 0, 0, 0, 0, 0, 0, 0};
	const struct {
		uint64_t typ, nstk, next;
	} bad[] = {
		{HEAP_BUCKET_TYPE_BLOCK, 1, 0},	 /* wrong type */
		{HEAP_BUCKET_TYPE_MEM, 1025, 0}, /* nstk above maxProfStackDepth */
		{HEAP_BUCKET_TYPE_MEM, 1, 0},	 /* next is unmapped (below) */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fake *f = fake_new();
		struct heap_snapshot *s;

		put(f, 0, BASE + 64);
		put(f, 8, 1 << 1);
		put(f, 16, 1);
		bucket(f, 64, 1024, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
		bucket(f, 1024, 0, bad[i].typ, 32, 1, rec, 8);
		put(f, 1024 + 40, bad[i].nstk);
		if (i == 2)
			put(f, 1024 + 8, BASE + IMG * 4);
		s = read_ok(f, 27, HEAP_KIND_HEAP, NULL);
		cr_assert_eq(s->n, i == 2 ? 2 : 1, "case %zu: %zu buckets", i, s->n);
		cr_assert_eq(s->unreadable, 1, "case %zu", i);
		heap_snapshot_free(s);
		free(f);
	}
}

Test(heap, process_gone_mid_walk)
{
	const uint64_t rec[] = {1, 0, 0, 0, 0, 0, 0, 0};

	for (unsigned long after = 1; after < 8; after++) {
		struct fake *f = fake_new();
		struct gs_error err = {0};

		put(f, 0, BASE + 64);
		put(f, 8, 1 << 1);
		put(f, 16, 1);
		bucket(f, 64, 1024, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
		bucket(f, 1024, 0, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
		f->fail_after = after;
		cr_assert_eq(read_err(f, 27, HEAP_KIND_HEAP, &err), -ESRCH, "after %lu: %s", after,
			     err.msg);
		free(f);
	}
}

/* A record that changes on every read is re-read, then counted as inconsistent. */
Test(heap, changing_record_is_counted)
{
	struct fake *f = fake_new();
	const uint64_t rec[] = {1, 0, 0, 0, 0, 0, 0, 0};
	struct heap_snapshot *s;

	put(f, 0, BASE + 64);
	put(f, 8, 1 << 1);
	put(f, 16, 1);
	bucket(f, 64, 0, HEAP_BUCKET_TYPE_MEM, 32, 1, rec, 8);
	f->bump_off = 64 + HDR + 8; /* active.allocs */
	s = read_ok(f, 27, HEAP_KIND_HEAP, NULL);
	cr_assert_eq(s->inconsistent, 1);
	cr_assert_eq(s->n, 1);
	heap_snapshot_free(s);
	free(f);
}

Test(heap, rate_zero_and_empty_lists)
{
	struct fake *f = fake_new();
	struct gs_error err = {0};

	put(f, 0, 0);
	put(f, 16, 0);
	cr_assert_eq(read_err(f, 27, HEAP_KIND_HEAP, &err), -ENODATA);
	cr_assert(strstr(err.msg, "MemProfileRate is 0"), "%s", err.msg);
	cr_assert_eq(read_err(f, 27, HEAP_KIND_BLOCK, &err), -ENODATA);
	cr_assert(strstr(err.msg, "SetBlockProfileRate"), "%s", err.msg);
	cr_assert_eq(read_err(f, 23, HEAP_KIND_MUTEX, &err), -ENODATA);
	cr_assert(strstr(err.msg, "SetMutexProfileFraction"), "%s", err.msg);
	free(f);
}

/* blockRecord {count float64, cycles int64}: count truncated; a block count of 0 becomes 1
 * (blockProfileInternal), a mutex one stays 0. */
Test(heap, block_and_mutex_records)
{
	double c1 = 2.7, c0 = 0;
	uint64_t r1[2], r0[2];
	struct heap_snapshot *s;
	struct fake *f = fake_new();

	memcpy(&r1[0], &c1, 8);
	r1[1] = 1000;
	memcpy(&r0[0], &c0, 8);
	r0[1] = 5;
	put(f, 0, BASE + 64);
	bucket(f, 64, 512, HEAP_BUCKET_TYPE_BLOCK, 0, 2, r1, 2);
	bucket(f, 512, 0, HEAP_BUCKET_TYPE_BLOCK, 0, 2, r0, 2);
	s = read_ok(f, 22, HEAP_KIND_BLOCK, NULL);
	cr_assert_eq(s->n, 2);
	cr_assert_eq(s->b[0].v[0], 2);
	cr_assert_eq(s->b[0].v[1], 1000);
	cr_assert_eq(s->b[1].v[0], 1);
	heap_snapshot_free(s);
	put(f, 64 + 16, HEAP_BUCKET_TYPE_MUTEX);
	put(f, 512 + 16, HEAP_BUCKET_TYPE_MUTEX);
	put(f, 24, 5); /* mutexprofilerate, read for 1.19 */
	s = read_ok(f, 19, HEAP_KIND_MUTEX, NULL);
	cr_assert_eq(s->b[1].v[0], 0);
	cr_assert_eq(s->rate, 5);
	heap_snapshot_free(s);
	free(f);
}

/* Go's math.Exp (amd64 assembly) bit for bit: values printed by Go 1.27 on this machine's
 * CPU, with its FMA path and with GODEBUG=cpu.fma=off. */
Test(heap, go_exp_bit_for_bit)
{
	static const struct {
		double x;
		uint64_t fma, nofma;
	} want[] = {
		{-0.0078125, 0x3fefc03fd56aa225, 0x3fefc03fd56aa225},
		{-0.5, 0x3fe368b2fc6f960a, 0x3fe368b2fc6f960a},
		{-1, 0x3fd78b56362cef38, 0x3fd78b56362cef38},
		{-0.0025, 0x3fefeb8bab0b5bf7, 0x3fefeb8bab0b5bf7},
		{-1e-09, 0x3fefffffff768fa1, 0x3fefffffff768fa1},
		{-0.2, 0x3fea330ad6166159, 0x3fea330ad616615a},
		{-3.0517578125e-05, 0x3fefffc0003fffd5, 0x3fefffc0003fffd5},
		{-700, 0x00d14f2b0fb9307f, 0x00d14f2b0fb9307f},
		{-745.2, 0, 0},
		{-750, 0, 0},
		{1, 0x4005bf0a8b145769, 0x4005bf0a8b145769},
		{10, 0x40d5829dcf950560, 0x40d5829dcf950560},
		{709, 0x7fdd422d2be5dc9b, 0x7fdd422d2be5dc9b},
		{710, 0x7ff0000000000000, 0x7ff0000000000000},
		{0, 0x3ff0000000000000, 0x3ff0000000000000},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		double a = heap_go_exp(want[i].x, true), b = heap_go_exp(want[i].x, false);
		uint64_t ba, bb;

		memcpy(&ba, &a, 8);
		memcpy(&bb, &b, 8);
		cr_assert_eq(ba, want[i].fma, "exp(%g) fma: %016lx", want[i].x, (unsigned long)ba);
		cr_assert_eq(bb, want[i].nofma, "exp(%g): %016lx", want[i].x, (unsigned long)bb);
	}
}

Test(heap, scale_heap_sample)
{
	int64_t c, b;

	heap_scale_sample(0, 100, 512 * 1024, false, &c, &b);
	cr_assert(c == 0 && b == 0);
	heap_scale_sample(3, 300, 1, false, &c, &b);
	cr_assert(c == 3 && b == 300);
	heap_scale_sample(3, 100, 1, true, &c, &b);
	cr_assert(c == 3 && b == 300);
	/* large objects are nearly always sampled: barely scaled */
	heap_scale_sample(17, 17 << 20, 512 * 1024, false, &c, &b);
	cr_assert(c == 19 && b > (17 << 20), "%lld %lld", (long long)c, (long long)b);
	heap_scale_sample(17, 1 << 20, 512 * 1024, true, &c, &b);
	cr_assert(c == 19, "%lld", (long long)c);
	/* 4 KiB objects: 1 in about 128 sampled */
	heap_scale_sample(10, 40960, 512 * 1024, false, &c, &b);
	cr_assert(c > 1200 && c < 1300, "%lld", (long long)c);
}

Test(heap, kind_names)
{
	enum heap_kind k;

	cr_assert_eq(heap_kind_parse("mutex", &k), 0);
	cr_assert_eq(k, HEAP_KIND_MUTEX);
	cr_assert_str_eq(heap_kind_name(HEAP_KIND_BLOCK), "block");
	cr_assert_eq(heap_kind_parse("cpu", &k), -EINVAL);
	cr_assert_eq(heap_kind_parse(NULL, &k), -EINVAL);
}
