/* heap.c — the walk of one of the runtime's profile bucket lists (runtime.mbuckets,
 * bbuckets, xbuckets) through a gr_mem, without stopping the process. See heap.h.
 *
 * What the runtime guarantees and what is validated here (runtime/mprof.go):
 *  - buckets are persistentalloc'd and never freed; a new one is pushed at the list head,
 *    so the list seen from a head pointer never changes: the walk is safe, but the memory
 *    is untrusted anyway (typ and nstk checked, the walk bounded by max_buckets);
 *  - a bucket's stack is immutable; only its record changes (under locks goscope does not
 *    take): each record is read again after the bucket, and a record that changed is read
 *    until two reads agree, at most `retries` times (else counted as inconsistent);
 *  - the heap values runtime.MemProfile reports are memRecord.active plus
 *    future[cycle % 3] (the cycle published by the last mark termination but not yet
 *    flushed); a walk during which mProfCycle advanced (a GC published the next cycle) is
 *    restarted, at most HEAP_WALK_RESTARTS times (counted). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goruntime/heap.h"

#define WORD 8u
#define MAX_RECORD_WORDS 16u /* memRecord: 4 cycles of at most 4 words */

static const char *const kind_names[] = {"heap", "block", "mutex"};

int heap_kind_parse(const char *s, enum heap_kind *out)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (s && strcmp(s, kind_names[i]) == 0) {
			*out = (enum heap_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *heap_kind_name(enum heap_kind k)
{
	return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "?";
}

static uint64_t word(const uint8_t *p, uint32_t off)
{
	uint64_t v;

	memcpy(&v, p + off, WORD);
	return v;
}

static int64_t sat_add(int64_t a, uint64_t b)
{
	if (b > (uint64_t)INT64_MAX || a > INT64_MAX - (int64_t)b)
		return INT64_MAX;
	return a + (int64_t)b;
}

static int64_t sat_mul(uint64_t a, uint64_t b)
{
	if (a && b > (uint64_t)INT64_MAX / a)
		return INT64_MAX;
	return (int64_t)(a * b);
}

/* Go's int64(float64): truncation; values C cannot convert are clamped. */
static int64_t f64_to_i64(double d)
{
	if (!(d > -9.2e18))
		return d != d ? 0 : INT64_MIN;
	if (d > 9.2e18)
		return INT64_MAX;
	return (int64_t)d;
}

/* The heap record's published values: active + future[cycle % nfuture]; all: every cycle
 * summed (what MemProfile reports when nothing was published yet). v: allocs, alloc_bytes,
 * frees, free_bytes. */
static void mem_values(const struct goversion_mprof *f, const uint64_t *rec, uint64_t size,
		       uint32_t cycle, int64_t pub[4], int64_t all[4])
{
	uint32_t cw = f->cycle_size / WORD, idx = 1 + cycle % f->nfuture;
	uint64_t sum_pub[4] = {0}, sum_all[4] = {0};

	for (uint32_t c = 0; c <= f->nfuture; c++) {
		const uint64_t *cy = rec + c * cw;

		for (uint32_t k = 0; k < cw && k < 4; k++) {
			sum_all[k] += cy[k];
			if (c == 0 || c == idx)
				sum_pub[k] += cy[k];
		}
	}
	/* memRecordCycle: allocs, frees[, alloc_bytes, free_bytes] */
	pub[0] = sat_add(0, sum_pub[0]);
	pub[2] = sat_add(0, sum_pub[1]);
	all[0] = sat_add(0, sum_all[0]);
	all[2] = sat_add(0, sum_all[1]);
	if (f->object_size) {
		pub[1] = sat_mul(sum_pub[0], size);
		pub[3] = sat_mul(sum_pub[1], size);
		all[1] = sat_mul(sum_all[0], size);
		all[3] = sat_mul(sum_all[1], size);
	} else {
		pub[1] = sat_add(0, sum_pub[2]);
		pub[3] = sat_add(0, sum_pub[3]);
		all[1] = sat_add(0, sum_all[2]);
		all[3] = sat_add(0, sum_all[3]);
	}
}

static void free_buckets(struct heap_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->b[i].stk);
	s->n = 0;
}

void heap_snapshot_free(struct heap_snapshot *s)
{
	if (!s)
		return;
	free_buckets(s);
	free(s->b);
	free(s);
}

/* Reads rec_len bytes of record at addr until two reads agree (at most retries re-reads);
 * rec holds the first read. 1: consistent, 0: changed every time (rec: the last read). */
static int settle_record(struct gr_mem *mem, uint64_t addr, uint8_t *rec, size_t rec_len,
			 unsigned retries, struct gs_error *err)
{
	uint8_t again[MAX_RECORD_WORDS * WORD];

	for (unsigned i = 0; i <= retries; i++) {
		int rc = gr_mem_read(mem, addr, again, rec_len, err);

		if (rc < 0)
			return rc;
		if (memcmp(again, rec, rec_len) == 0)
			return 1;
		memcpy(rec, again, rec_len);
	}
	return 0;
}

/* ---- reads through a window ----
 * Buckets are persistentalloc'd one after the other, so a list (newest first) mostly runs
 * down through adjacent memory: one read of WINDOW_BYTES ending at the page after the
 * bucket serves the buckets below it. A window that cannot be read whole (the start of a
 * mapping) falls back to the exact read. */
#define WINDOW_BYTES 16384u
#define PAGE_BYTES 4096u

struct window {
	uint64_t base;
	size_t len;
	uint8_t buf[WINDOW_BYTES];
};

static int win_read(struct gr_mem *mem, struct window *w, uint64_t addr, void *dst, size_t len,
		    struct gs_error *err)
{
	uint64_t end, base;
	int rc;

	if (w->len && addr >= w->base && addr + len >= addr && addr + len <= w->base + w->len) {
		memcpy(dst, w->buf + (addr - w->base), len);
		return 0;
	}
	end = (addr + len + PAGE_BYTES - 1) & ~(uint64_t)(PAGE_BYTES - 1);
	if (len <= WINDOW_BYTES / 2 && end > addr && end >= WINDOW_BYTES) {
		base = end - WINDOW_BYTES;
		rc = gr_mem_read(mem, base, w->buf, WINDOW_BYTES, NULL);
		if (rc == -ESRCH)
			return gs_error_set(err, rc, "process is gone");
		if (rc == 0) {
			w->base = base;
			w->len = WINDOW_BYTES;
			memcpy(dst, w->buf + (addr - base), len);
			return 0;
		}
	}
	return gr_mem_read(mem, addr, dst, len, err);
}

/* The walk's state: the snapshot being filled, and per bucket where its record is. */
struct walk {
	struct heap_snapshot *s;
	uint64_t *rec_addr;
	size_t cap;
	struct window win;
};

static int push(struct walk *w, const struct heap_bucket *b, uint64_t rec_addr)
{
	struct heap_snapshot *s = w->s;

	if (s->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 256;
		void *p = realloc(s->b, nc * sizeof(*s->b)), *q;

		if (!p)
			return -ENOMEM;
		s->b = p;
		q = realloc(w->rec_addr, nc * sizeof(*w->rec_addr));
		if (!q)
			return -ENOMEM;
		w->rec_addr = q;
		w->cap = nc;
	}
	s->b[s->n] = *b;
	w->rec_addr[s->n] = rec_addr;
	s->n++;
	return 0;
}

/* Pass 1: the buckets from the head at v->list, each with its stack and record (the record
 * kept after the stack in b->stk). Returns 0 or a negative errno that ends the read
 * (-ESRCH, -ENOMEM, -EFAULT for an unreadable head). */
static int walk_list(struct gr_mem *mem, const struct heap_vars *v, const struct heap_read_opts *o,
		     struct walk *w, size_t rec_len, struct gs_error *err)
{
	struct heap_snapshot *s = w->s;
	const struct goversion_mprof *f = &s->facts;
	uint64_t expect = s->kind == HEAP_KIND_HEAP    ? HEAP_BUCKET_TYPE_MEM
			  : s->kind == HEAP_KIND_BLOCK ? HEAP_BUCKET_TYPE_BLOCK
						       : HEAP_BUCKET_TYPE_MUTEX;
	uint8_t hdr[64];
	uint64_t b;
	int rc;

	if (f->bucket_hdr > sizeof(hdr))
		return gs_error_set(err, -EINVAL, "bad bucket layout for go1.%d", f->minor);
	rc = gr_mem_read(mem, v->list, &b, WORD, err);
	if (rc < 0)
		return rc == -ESRCH ? rc : gs_error_prefix(err, "reading the bucket list head");
	w->win.len = 0;
	while (b) {
		struct heap_bucket hb = {0};
		uint64_t nstk;

		if (s->n >= o->max_buckets) {
			s->cut = true;
			break;
		}
		rc = win_read(mem, &w->win, b, hdr, f->bucket_hdr, err);
		if (rc == -ESRCH)
			return rc;
		nstk = rc < 0 ? 0 : word(hdr, f->b_nstk);
		if (rc < 0 || word(hdr, f->b_typ) != expect || nstk > f->max_stack) {
			s->unreadable++; /* not a bucket: the rest of the list is unreachable */
			break;
		}
		hb.size = word(hdr, f->b_size);
		hb.nstk = (uint32_t)nstk;
		/* the stack and the record follow the header */
		hb.stk = malloc(nstk * WORD + rec_len);
		if (!hb.stk)
			return gs_error_set(err, -ENOMEM, "out of memory");
		rc = win_read(mem, &w->win, b + f->bucket_hdr, hb.stk, nstk * WORD + rec_len, err);
		if (rc < 0) {
			free(hb.stk);
			if (rc == -ESRCH)
				return rc;
			s->unreadable++;
			break;
		}
		if (push(w, &hb, b + f->bucket_hdr + nstk * WORD) < 0) {
			free(hb.stk);
			return gs_error_set(err, -ENOMEM, "out of memory");
		}
		b = word(hdr, f->b_allnext);
	}
	return 0;
}

/* Pass 2: every record read again (through fresh windows); one that changed since pass 1 is
 * read directly until two reads agree (at most retries times, else counted). */
static int validate(struct gr_mem *mem, const struct heap_read_opts *o, struct walk *w,
		    size_t rec_len, struct gs_error *err)
{
	struct heap_snapshot *s = w->s;
	uint8_t now[MAX_RECORD_WORDS * WORD];

	w->win.len = 0;
	for (size_t i = 0; i < s->n; i++) {
		uint8_t *rec = (uint8_t *)s->b[i].stk + (size_t)s->b[i].nstk * WORD;
		int rc = win_read(mem, &w->win, w->rec_addr[i], now, rec_len, err);

		if (rc == 0 && memcmp(now, rec, rec_len) != 0) {
			memcpy(rec, now, rec_len);
			rc = settle_record(mem, w->rec_addr[i], rec, rec_len, o->retries, err);
			if (rc == 0)
				s->inconsistent++;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The values of bucket b from its record; all: a heap record's every cycle summed. */
static void decode(const struct heap_snapshot *s, struct heap_bucket *b, size_t rec_len,
		   int64_t all[4])
{
	const uint8_t *rec = (const uint8_t *)b->stk + (size_t)b->nstk * WORD;

	memset(all, 0, 4 * sizeof(*all));
	if (s->kind == HEAP_KIND_HEAP) {
		uint64_t words[MAX_RECORD_WORDS];

		memcpy(words, rec, rec_len);
		mem_values(&s->facts, words, b->size, s->cycle, b->v, all);
	} else {
		double count;
		int64_t cycles;

		memcpy(&count, rec, WORD);
		memcpy(&cycles, rec + WORD, WORD);
		b->v[0] = f64_to_i64(count);
		/* blockProfileInternal: "Prevent callers from having to worry about division
		 * by zero errors" (not done for mutex records) */
		if (b->v[0] == 0 && s->kind == HEAP_KIND_BLOCK)
			b->v[0] = 1;
		b->v[1] = cycles;
		b->v[2] = b->v[3] = 0;
	}
}

/* One walk, validated, decoded. */
static int walk_once(struct gr_mem *mem, const struct heap_vars *v, const struct heap_read_opts *o,
		     struct walk *w, int64_t (**all)[4], struct gs_error *err)
{
	struct heap_snapshot *s = w->s;
	const struct goversion_mprof *f = &s->facts;
	size_t rec_len = s->kind == HEAP_KIND_HEAP ? (size_t)f->cycle_size * (1 + f->nfuture)
						   : f->blockrec_size;
	int rc;

	if (rec_len > MAX_RECORD_WORDS * WORD || rec_len % WORD || rec_len < 2 * WORD)
		return gs_error_set(err, -EINVAL, "bad record layout for go1.%d", f->minor);
	rc = walk_list(mem, v, o, w, rec_len, err);
	if (rc == 0)
		rc = validate(mem, o, w, rec_len, err);
	if (rc < 0)
		return rc;
	free(*all);
	*all = calloc(s->n ? s->n : 1, sizeof(**all));
	if (!*all)
		return gs_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++)
		decode(s, &s->b[i], rec_len, (*all)[i]);
	return 0;
}

int heap_snapshot_read(struct gr_mem *mem, const struct goversion_mprof *f,
		       const struct heap_vars *v, enum heap_kind kind,
		       const struct heap_read_opts *opts, struct heap_snapshot **out,
		       struct gs_error *err)
{
	struct heap_read_opts o = opts ? *opts : (struct heap_read_opts){0};
	struct heap_snapshot *s = calloc(1, sizeof(*s));
	struct walk *w = calloc(1, sizeof(*w));
	int64_t(*all)[4] = NULL;
	uint32_t c1 = 0, c2 = 0;
	int rc = 0;

	if (!s || !w) {
		free(s);
		free(w);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	w->s = s;
	if (!o.max_buckets)
		o.max_buckets = HEAP_MAX_BUCKETS_DEFAULT;
	if (!o.retries)
		o.retries = HEAP_RETRIES_DEFAULT;
	s->kind = kind;
	s->facts = *f;
	if (!v->list) {
		rc = gs_error_set(err, -ENOENT, "the %s profile's bucket list was not found",
				  heap_kind_name(kind));
		goto fail;
	}
	if (kind == HEAP_KIND_HEAP) {
		rc = gr_mem_read(mem, v->rate, &s->rate, sizeof(s->rate), err);
		if (rc < 0) {
			if (rc != -ESRCH)
				gs_error_prefix(err, "reading runtime.MemProfileRate");
			goto fail;
		}
		if (s->rate == 0) {
			rc = gs_error_set(
				err, -ENODATA,
				"runtime.MemProfileRate is 0: the program does not sample its "
				"allocations (it set MemProfileRate = 0, or it does not use "
				"runtime.MemProfile and the Go linker turned memory profiling "
				"off)");
			goto fail;
		}
	} else if (kind == HEAP_KIND_MUTEX && f->mutex_scaled_by_pprof && v->mutex_rate) {
		rc = gr_mem_read(mem, v->mutex_rate, &s->rate, sizeof(s->rate), err);
		if (rc < 0)
			goto fail;
	}
	for (unsigned attempt = 0;; attempt++) {
		free_buckets(s);
		s->inconsistent = s->unreadable = 0;
		s->cut = false;
		if (kind == HEAP_KIND_HEAP) {
			rc = gr_mem_read(mem, v->cycle, &c1, sizeof(c1), err);
			if (rc < 0) {
				if (rc != -ESRCH)
					gs_error_prefix(err, "reading runtime.mProfCycle");
				goto fail;
			}
			s->cycle = c1 >> 1;
		}
		rc = walk_once(mem, v, &o, w, &all, err);
		if (rc < 0)
			goto fail;
		if (kind != HEAP_KIND_HEAP)
			break;
		rc = gr_mem_read(mem, v->cycle, &c2, sizeof(c2), err);
		if (rc < 0)
			goto fail;
		if (c1 >> 1 == c2 >> 1 || attempt >= HEAP_WALK_RESTARTS)
			break;
		s->restarts++;
	}
	if (kind == HEAP_KIND_HEAP) {
		bool clear = true;

		/* memProfileInternal: no published allocs/frees at all (no GC yet): every
		 * cycle accumulated */
		for (size_t i = 0; i < s->n && clear; i++)
			clear = s->b[i].v[0] == 0 && s->b[i].v[2] == 0;
		if (clear && s->n) {
			s->all_cycles = true;
			for (size_t i = 0; i < s->n; i++)
				memcpy(s->b[i].v, all[i], sizeof(s->b[i].v));
		}
	} else if (s->n == 0 && !s->unreadable) {
		rc = gs_error_set(err, -ENODATA,
				  kind == HEAP_KIND_BLOCK
					  ? "the block profile is empty: the program has not "
					    "enabled it (runtime.SetBlockProfileRate) or nothing "
					    "blocked yet"
					  : "the mutex profile is empty: the program has not "
					    "enabled it (runtime.SetMutexProfileFraction) or no "
					    "mutex was contended yet");
		goto fail;
	}
	free(all);
	free(w->rec_addr);
	free(w);
	*out = s;
	return 0;
fail:
	free(all);
	free(w->rec_addr);
	free(w);
	heap_snapshot_free(s);
	return rc;
}
