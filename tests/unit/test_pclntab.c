/* test_pclntab.c — the pclntab decoder (symbolizer/pclntab.c) and gs_binary on top of it:
 * real tables from the installed Go 1.19 and 1.27 tool binaries, those tables corrupted in
 * every way we could think of (the symbolizer must return frames or an error, never crash or
 * read out of bounds), and handcrafted tables in all four formats with known answers (the
 * only way to test the Go 1.2 and 1.16 decoders: no such toolchain is installed). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/elf_image.h"
#include "symbolizer/pcindex.h"
#include "symbolizer/pclntab.h"
#include "tests/unit/elfbuild.h"
#include "tests/unit/pclnbuild.h"
#include "tests/unit/testutil.h"

#define MAXF 16

/* ---- helpers ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Symbolizes pc and checks that the answer is well formed: frames whose strings are readable
 * (ASan checks the reads), or a negative errno with a message. Returns the result. */
static int check_pc(const struct gs_binary *bin, uint64_t pc, unsigned flags)
{
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};
	int n = gs_binary_symbolize(bin, pc, flags, fr, MAXF, &err);

	if (n < 0) {
		cr_assert_eq(err.code, n, "pc %#llx: rc %d but err.code %d", (unsigned long long)pc,
			     n, err.code);
		cr_assert_neq(err.msg[0], '\0');
		return n;
	}
	cr_assert_leq(n, MAXF);
	for (int i = 0; i < n; i++) {
		cr_assert_not_null(fr[i].function);
		cr_assert_not_null(fr[i].raw_function);
		cr_assert_not_null(fr[i].file);
		cr_assert_eq(strlen(fr[i].function), fr[i].function_len);
		(void)strlen(fr[i].raw_function);
		(void)strlen(fr[i].file);
		if (fr[i].raw_file)
			(void)strlen(fr[i].raw_file);
		cr_assert_geq(fr[i].line, 0);
		if (i < n - 1)
			cr_assert(fr[i].inlined, "only the last frame can be the real function");
	}
	return n;
}

struct fn {
	const char *name;
	uint64_t entry, end;
};

struct fnlist {
	struct fn *v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name, uint64_t entry, uint64_t end)
{
	struct fnlist *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	l->v[l->n++] = (struct fn){name, entry, end};
	return 0;
}

/* A real Go binary in memory, opened. */
struct real {
	uint8_t *img;
	size_t size;
	struct gs_binary *bin;
	uint64_t pcl_off, pcl_size; /* .gopclntab in the file */
	struct gs_pclntab tab;	    /* parsed by the test itself (text base from the binary) */
	struct gs_elf elf;
};

static void real_open(struct real *r, const char *path)
{
	struct gs_error err = {0};
	struct gs_elf_section sec;

	memset(r, 0, sizeof(*r));
	r->img = tu_read_file(path, &r->size);
	if (!r->img)
		cr_skip_test("%s not installed", path);
	cr_assert_eq(gs_binary_open_mem(r->img, r->size, path, &r->bin, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_elf_open_mem(&r->elf, r->img, r->size, NULL), 0);
	cr_assert_eq(gs_elf_find_section(&r->elf, ".gopclntab", &sec), 0);
	r->pcl_off = sec.offset;
	r->pcl_size = sec.size;
	cr_assert_eq(gs_pclntab_parse(&r->tab, sec.data, sec.size, sec.addr, &err), 0, "%s",
		     err.msg);
	r->tab.text_start = gs_binary_info(r->bin)->text_start;
}

static void real_close(struct real *r)
{
	gs_binary_close(r->bin);
	free(r->img);
}

/* ---- real tables ---- */

static void real_consistent(const char *path, enum gs_pclntab_format want)
{
	struct real r;
	const struct gs_binary_info *info;
	struct fnlist l = {0};
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};
	size_t inlined_pcs = 0;

	real_open(&r, path);
	info = gs_binary_info(r.bin);
	cr_assert(info->is_go);
	cr_assert_eq(info->pclntab_format, want);
	cr_assert_str_eq(info->text_found_by, "moduledata");
	cr_assert_eq(info->text_start, 0x401000);
	cr_assert_gt(info->nfunc, 1000);
	cr_assert_eq(gs_binary_foreach_function(r.bin, collect, &l), 0);
	cr_assert_eq(l.n, info->nfunc, "every _func record is readable");
	for (size_t i = 0; i < l.n; i++) {
		struct fn *f = &l.v[i];
		struct gs_func gf;
		int n;

		cr_assert_neq(f->name[0], '\0', "function %zu has no name", i);
		cr_assert_neq(strcmp(f->name, "?"), 0);
		cr_assert_leq(f->entry, f->end);
		cr_assert_geq(f->entry, info->text_start, "%s below text", f->name);
		cr_assert_leq(f->end, info->text_end, "%s past text", f->name);
		if (i)
			cr_assert_geq(f->entry, l.v[i - 1].end, "functab sorted at %zu", i);
		if (f->entry == f->end)
			continue;
		/* find_func of the entry (and of the last byte) is this very function. */
		cr_assert_eq(gs_pclntab_find_func(&r.tab, f->entry, &gf, &err), 0, "%s", f->name);
		cr_assert_eq(gf.index, i);
		cr_assert_eq(gs_pclntab_find_func(&r.tab, f->end - 1, &gf, &err), 0);
		cr_assert_eq(gf.index, i);
		n = gs_binary_symbolize(r.bin, f->entry, GS_LOOKUP_NO_INLINE, fr, MAXF, &err);
		cr_assert_eq(n, 1, "%s: %d %s", f->name, n, err.msg);
		cr_assert_str_eq(fr[0].raw_function, f->name);
		cr_assert_eq(fr[0].entry, f->entry);
		cr_assert(fr[0].go);
		cr_assert_not(fr[0].inlined);
		/* A PC inside it, with inlining, on a sample of functions. */
		if (i % 7 == 0) {
			uint64_t pc = f->entry + (f->end - f->entry) / 2;

			n = check_pc(r.bin, pc, 0);
			cr_assert_geq(n, 1);
			gs_binary_symbolize(r.bin, pc, 0, fr, MAXF, &err);
			cr_assert_eq(fr[n - 1].entry, f->entry);
			/* (An elided wrapper leaves only its inlined frames.) */
			if (!fr[n - 1].inlined)
				cr_assert_str_eq(fr[n - 1].raw_function, f->name);
			if (n > 1)
				inlined_pcs++;
		}
	}
	cr_assert_gt(inlined_pcs, 10, "the Go compiler inlines: expected inlined frames");
	cr_assert_eq(gs_binary_symbolize(r.bin, info->text_start - 1, 0, fr, MAXF, &err), 0);
	cr_assert_eq(gs_binary_symbolize(r.bin, info->text_end, 0, fr, MAXF, &err), 0);
	free(l.v);
	real_close(&r);
}

Test(pclntab, real_go119_consistent)
{
	real_consistent(TU_VET119, GS_PCLNTAB_GO118);
}

Test(pclntab, real_go127_consistent)
{
	real_consistent(TU_VET127, GS_PCLNTAB_GO120);
}

/* The skip index over long pcvalue tables (pcindex.c) must not change a single answer: every
 * PC of every big function, looked up in a scrambled order (so tables get indexed part-way and
 * are then read through their checkpoints) through a table with an index and one without. */
static void real_index_matches_walk(const char *path)
{
	struct real r;
	struct gs_pclntab indexed;
	struct gs_frame a[MAXF], b[MAXF];
	struct gs_error err = {0};
	uint64_t big = 0, checked = 0;

	real_open(&r, path);
	indexed = r.tab;
	indexed.pcindex = gs_pcindex_new(
		r.tab.nfunc, gs_binary_info(r.bin)->text_end - gs_binary_info(r.bin)->text_start,
		r.tab.funcnametab_size, r.tab.filetab_size);
	cr_assert_not_null(indexed.pcindex);
	/* Function lookup through the buckets: every function's first and last byte. */
	for (uint64_t i = 0; i < r.tab.nfunc; i++) {
		struct gs_func f, g;

		cr_assert_eq(gs_pclntab_func_at(&r.tab, i, &f, &err), 0, "%s", err.msg);
		if (f.entry == f.end)
			continue;
		cr_assert_eq(gs_pclntab_find_func(&indexed, f.entry, &g, &err), 0);
		cr_assert_eq(g.index, i);
		cr_assert_eq(gs_pclntab_find_func(&indexed, f.end - 1, &g, &err), 0);
		cr_assert_eq(g.index, i);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < r.tab.nfunc; i++) {
			struct gs_func f;
			uint64_t size, step;

			cr_assert_eq(gs_pclntab_func_at(&r.tab, i, &f, &err), 0, "%s", err.msg);
			size = f.end - f.entry;
			if (size < 4096)
				continue;
			big += pass == 0;
			/* A stride coprime to the size visits every PC once, out of order. */
			step = 7919 % size ? 7919 : 7907;
			for (uint64_t k = 0, off = 0; k < size; k++, off = (off + step) % size) {
				uint64_t pc = f.entry + off;
				int32_t va = 0, vb = 0;
				int ra, rb, na, nb;

				na = gs_pclntab_frames(&indexed, pc, true, a, MAXF, &err);
				nb = gs_pclntab_frames(&r.tab, pc, true, b, MAXF, &err);
				cr_assert_eq(na, nb, "frames at %#llx", (unsigned long long)pc);
				for (int j = 0; j < na; j++) {
					cr_assert_str_eq(a[j].raw_function, b[j].raw_function);
					cr_assert_str_eq(a[j].raw_file, b[j].raw_file);
					cr_assert_eq(a[j].raw_line, b[j].raw_line, "line at %#llx",
						     (unsigned long long)pc);
				}
				ra = gs_pclntab_pcdata(&indexed, &f, 0, pc, &va);
				rb = gs_pclntab_pcdata(&r.tab, &f, 0, pc, &vb);
				cr_assert_eq(ra, rb);
				cr_assert_eq(va, vb);
				ra = gs_pclntab_pcvalue(&indexed, &f, gs_func_field(&r.tab, &f, 4), pc, &va);
				rb = gs_pclntab_pcvalue(&r.tab, &f, gs_func_field(&r.tab, &f, 4), pc, &vb);
				cr_assert_eq(ra, rb);
				cr_assert_eq(va, vb, "pcsp at %#llx", (unsigned long long)pc);
				checked++;
			}
		}
	}
	cr_assert_gt(big, 10, "expected big functions in %s", path);
	cr_assert_gt(gs_pcindex_tables(indexed.pcindex), big, "long tables got indexed");
	cr_log_info("%s: %llu big functions, %llu lookups, %zu tables indexed", path,
		    (unsigned long long)big, (unsigned long long)checked,
		    gs_pcindex_tables(indexed.pcindex));
	gs_pcindex_free(indexed.pcindex);
	real_close(&r);
}

Test(pclntab, real_go119_index_matches_walk, .timeout = 120)
{
	real_index_matches_walk(TU_VET119);
}

Test(pclntab, real_go127_index_matches_walk, .timeout = 120)
{
	real_index_matches_walk(TU_VET127);
}

/* Concurrent lookups (the symbolizer's contract: thread-safe) while the index is being built
 * and published by the same threads: every answer equals a plain walk's. */
struct index_race {
	struct real *r;
	const struct gs_pclntab *indexed;
	const uint64_t *pcs;
	size_t npcs, start;
	size_t bad;
};

static void *index_race_thread(void *arg)
{
	struct index_race *ir = arg;
	struct gs_frame a[MAXF], b[MAXF];

	for (size_t k = 0; k < ir->npcs; k++) {
		uint64_t pc = ir->pcs[(ir->start + k * 7) % ir->npcs];
		int na = gs_pclntab_frames(ir->indexed, pc, true, a, MAXF, NULL);
		int nb = gs_pclntab_frames(&ir->r->tab, pc, true, b, MAXF, NULL);

		if (na != nb) {
			ir->bad++;
			continue;
		}
		for (int j = 0; j < na; j++) {
			if (strcmp(a[j].raw_function, b[j].raw_function) ||
			    strcmp(a[j].raw_file, b[j].raw_file) || a[j].raw_line != b[j].raw_line)
				ir->bad++;
		}
	}
	return NULL;
}

Test(pclntab, real_go127_index_concurrent, .timeout = 120)
{
	enum { NTHREADS = 4 };
	struct real r;
	struct gs_pclntab indexed;
	struct index_race ir[NTHREADS];
	pthread_t th[NTHREADS];
	uint64_t *pcs = NULL;
	size_t npcs = 0, cap = 0;
	struct gs_error err = {0};

	real_open(&r, TU_VET127);
	for (uint64_t i = 0; i < r.tab.nfunc; i++) {
		struct gs_func f;

		cr_assert_eq(gs_pclntab_func_at(&r.tab, i, &f, &err), 0, "%s", err.msg);
		if (f.end - f.entry < 4096)
			continue;
		for (uint64_t pc = f.entry; pc < f.end; pc += 5) {
			if (npcs == cap) {
				cap = cap ? cap * 2 : 4096;
				pcs = realloc(pcs, cap * sizeof(*pcs));
				cr_assert_not_null(pcs);
			}
			pcs[npcs++] = pc;
		}
	}
	cr_assert_gt(npcs, 10000);
	indexed = r.tab;
	indexed.pcindex = gs_pcindex_new(
		r.tab.nfunc, gs_binary_info(r.bin)->text_end - gs_binary_info(r.bin)->text_start,
		r.tab.funcnametab_size, r.tab.filetab_size);
	cr_assert_not_null(indexed.pcindex);
	for (int i = 0; i < NTHREADS; i++) {
		ir[i] = (struct index_race){.r = &r, .indexed = &indexed, .pcs = pcs, .npcs = npcs,
					    .start = npcs / NTHREADS * (size_t)i};
		cr_assert_eq(pthread_create(&th[i], NULL, index_race_thread, &ir[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(ir[i].bad, 0, "thread %d: %zu answers differ", i, ir[i].bad);
	}
	cr_expect_gt(gs_pcindex_tables(indexed.pcindex), 10, "the threads built the index");
	gs_pcindex_free(indexed.pcindex);
	free(pcs);
	real_close(&r);
}

static void real_known(const char *path, bool start_lines)
{
	struct real r;
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};
	uint64_t entry, end;
	int32_t sp, max_sp = 0;
	int n;

	real_open(&r, path);
	cr_assert_eq(gs_binary_find_function(r.bin, "runtime.gopark", &entry, &end), 0);
	cr_assert_gt(end, entry);
	n = gs_binary_symbolize(r.bin, entry, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1, "%s", err.msg);
	cr_assert_str_eq(fr[0].function, "runtime.gopark");
	cr_assert(ends_with(fr[0].file, "runtime/proc.go"), "%s", fr[0].file);
	cr_assert_gt(fr[0].line, 300);
	if (start_lines) {
		cr_assert_gt(fr[0].start_line, 300);
		cr_assert_geq(fr[0].line, fr[0].start_line);
	} else {
		cr_assert_eq(fr[0].start_line, 0, "no startLine before Go 1.20");
	}
	/* The SP delta at the entry is 0; somewhere inside, gopark has a frame. */
	cr_assert_eq(gs_binary_pcsp(r.bin, entry, &sp), 0);
	cr_assert_eq(sp, 0);
	for (uint64_t pc = entry; pc < end; pc++) {
		if (gs_binary_pcsp(r.bin, pc, &sp) == 0 && sp > max_sp)
			max_sp = sp;
	}
	cr_assert_gt(max_sp, 0);

	cr_assert_eq(gs_binary_find_function(r.bin, "main.main", &entry, &end), 0);
	n = gs_binary_symbolize(r.bin, entry, GS_LOOKUP_NO_INLINE, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert(ends_with(fr[0].file, "cmd/vet/main.go"), "%s", fr[0].file);
	/* A return address is looked up one byte earlier, except at the entry. */
	n = gs_binary_symbolize(r.bin, entry + 1, GS_LOOKUP_RETURN_ADDR | GS_LOOKUP_NO_INLINE, fr,
				MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fr[0].function, "main.main");
	cr_assert_eq(gs_binary_find_function(r.bin, "no.such.function", &entry, &end), -ENOENT);
	real_close(&r);
}

Test(pclntab, real_go119_known_functions)
{
	real_known(TU_VET119, false);
}

Test(pclntab, real_go127_known_functions)
{
	real_known(TU_VET127, true);
}

/* ---- corrupted real tables ---- */

/* Sample of PCs worth asking about: every function's entry and middle for a spread of
 * functions, plus random addresses in text. */
static size_t sample_pcs(const struct real *r, uint64_t *pcs, size_t max, uint64_t *seed)
{
	const struct gs_binary_info *info = gs_binary_info(r->bin);
	struct gs_func f;
	size_t n = 0;

	while (n + 3 <= max) {
		uint64_t idx = tu_rand(seed) % r->tab.nfunc;

		if (gs_pclntab_func_at(&r->tab, idx, &f, NULL) == 0) {
			pcs[n++] = f.entry;
			pcs[n++] = f.entry + (f.end - f.entry) / 2;
		}
		pcs[n++] =
			info->text_start + tu_rand(seed) % (info->text_end - info->text_start + 64);
	}
	return n;
}

/* Opens the (possibly corrupted) image and asks about pcs; returns the open result. */
static int open_and_query(const uint8_t *img, size_t size, const uint64_t *pcs, size_t npcs)
{
	struct gs_binary *bin;
	struct gs_error err = {0};
	int rc = gs_binary_open_mem(img, size, "corrupt", &bin, &err);

	if (rc < 0) {
		cr_assert_eq(err.code, rc, "rc %d code %d: %s", rc, err.code, err.msg);
		cr_assert_neq(err.msg[0], '\0');
		return rc;
	}
	for (size_t i = 0; i < npcs; i++) {
		check_pc(bin, pcs[i], 0);
		check_pc(bin, pcs[i], GS_LOOKUP_RETURN_ADDR);
	}
	gs_binary_close(bin);
	return 0;
}

static void corrupt_random(const char *path, uint64_t seed)
{
	struct real r;
	uint64_t pcs[96], ftab, ftab_len;
	size_t npcs;
	uint8_t *copy;
	int opened = 0, failed = 0;

	real_open(&r, path);
	npcs = sample_pcs(&r, pcs, 96, &seed);
	copy = tu_dup(r.img, r.size);
	ftab = r.pcl_off + (uint64_t)(r.tab.functab - r.tab.data);
	ftab_len = (2 * r.tab.nfunc + 1) * r.tab.field_size;
	for (int iter = 0; iter < 300; iter++) {
		uint64_t x = tu_rand(&seed), off;
		uint8_t saved[8];
		unsigned len = 1 + (unsigned)(x >> 60) % 8;

		switch (iter % 4) {
		case 0: /* the header */
			off = r.pcl_off + x % 96;
			break;
		case 1: /* the functab */
			off = ftab + x % ftab_len;
			break;
		case 2: /* the _func records after it */
			off = ftab + ftab_len + x % (r.pcl_size - (ftab - r.pcl_off) - ftab_len);
			break;
		default: /* anywhere in the table */
			off = r.pcl_off + x % r.pcl_size;
			break;
		}
		if (off + len > r.pcl_off + r.pcl_size)
			off = r.pcl_off + r.pcl_size - len;
		memcpy(saved, copy + off, len);
		for (unsigned k = 0; k < len; k++)
			copy[off + k] = (uint8_t)tu_rand(&seed);
		if (open_and_query(copy, r.size, pcs, npcs) == 0)
			opened++;
		else
			failed++;
		memcpy(copy + off, saved, len);
	}
	cr_assert_eq(memcmp(copy, r.img, r.size), 0, "the test restores every byte");
	cr_assert_gt(opened, 0);
	cr_assert_gt(failed, 0, "header corruption must be detected sometimes");
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_random_go119)
{
	corrupt_random(TU_VET119, 0x119);
}

Test(pclntab, corrupt_random_go127)
{
	corrupt_random(TU_VET127, 0x127);
}

/* Sets the pointer-sized header word `word` (after the 8 magic bytes) of the table in img. */
static void set_hdr_word(uint8_t *img, const struct real *r, unsigned word, uint64_t v)
{
	memcpy(img + r->pcl_off + 8 + 8 * word, &v, 8);
}

static void expect_open_error(const uint8_t *img, size_t size, const char *what)
{
	struct gs_binary *bin = NULL;
	struct gs_error err = {0};
	int rc = gs_binary_open_mem(img, size, "corrupt", &bin, &err);

	cr_assert_eq(rc, -EINVAL, "rc %d (%s)", rc, err.msg);
	cr_assert(strstr(err.msg, what), "'%s' lacks '%s'", err.msg, what);
	cr_assert_null(bin);
}

Test(pclntab, corrupt_nfunc)
{
	struct real r;
	uint8_t *copy;
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct gs_frame fr[MAXF];
	struct gs_func f0, f1;
	uint64_t pcs[48], seed = 7;
	size_t npcs;
	const uint64_t bad[] = {0, (uint64_t)1 << 40, UINT64_MAX, (uint64_t)1 << 63};

	real_open(&r, TU_VET127);
	npcs = sample_pcs(&r, pcs, 48, &seed);
	copy = tu_dup(r.img, r.size);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_hdr_word(copy, &r, 0, bad[i]);
		expect_open_error(copy, r.size, bad[i] ? "function count" : "no functions");
	}
	/* One function: it covers up to the next entry; everything else is unknown. */
	set_hdr_word(copy, &r, 0, 1);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "one", &bin, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_pclntab_func_at(&r.tab, 0, &f0, NULL), 0);
	cr_assert_eq(gs_pclntab_func_at(&r.tab, 1, &f1, NULL), 0);
	cr_assert_eq(gs_binary_symbolize(bin, f0.entry, 0, fr, MAXF, &err), 1);
	cr_assert_eq(gs_binary_symbolize(bin, f1.entry, 0, fr, MAXF, &err), 0);
	gs_binary_close(bin);
	/* A few more than there are: the end marker and beyond are misread, but in bounds. */
	for (uint64_t extra = 1; extra < 4; extra++) {
		set_hdr_word(copy, &r, 0, r.tab.nfunc + extra);
		open_and_query(copy, r.size, pcs, npcs);
	}
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_offsets_past_end)
{
	struct real r;
	uint8_t *copy;

	real_open(&r, TU_VET119);
	/* Words 3..7 are funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset. */
	for (unsigned word = 3; word <= 7; word++) {
		const uint64_t vals[] = {r.pcl_size, r.pcl_size + 1, UINT64_MAX, 1ULL << 32};

		for (unsigned i = 0; i < 4; i++) {
			copy = tu_dup(r.img, r.size);
			set_hdr_word(copy, &r, word, vals[i]);
			expect_open_error(copy, r.size, "table offset past end");
			free(copy);
		}
	}
	/* pclnOffset near the end: the functab no longer fits. */
	copy = tu_dup(r.img, r.size);
	set_hdr_word(copy, &r, 7, r.pcl_size - 16);
	expect_open_error(copy, r.size, "too large");
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_bad_header_fields)
{
	struct real r;
	uint8_t *copy;

	real_open(&r, TU_VET127);
	copy = tu_dup(r.img, r.size);
	copy[r.pcl_off] = 0xf5;
	expect_open_error(copy, r.size, "unknown magic");
	memcpy(copy, r.img, r.size);
	copy[r.pcl_off + 4] = 1;
	expect_open_error(copy, r.size, "padding");
	memcpy(copy, r.img, r.size);
	copy[r.pcl_off + 6] = 3;
	expect_open_error(copy, r.size, "quantum");
	memcpy(copy, r.img, r.size);
	copy[r.pcl_off + 7] = 16;
	expect_open_error(copy, r.size, "pointer size");
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_functab_not_sorted)
{
	struct real r;
	uint8_t *copy;
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct gs_frame fr[MAXF];
	struct gs_pclntab t;
	struct gs_func f;
	uint64_t i, ftab, e_i, e_j;
	uint32_t a, b;
	int bad = 0;

	real_open(&r, TU_VET127);
	i = r.tab.nfunc / 2;
	cr_assert_eq(gs_pclntab_func_at(&r.tab, i, &f, NULL), 0);
	e_i = f.entry;
	cr_assert_eq(gs_pclntab_func_at(&r.tab, i + 1, &f, NULL), 0);
	e_j = f.entry;
	cr_assert_lt(e_i, e_j);
	copy = tu_dup(r.img, r.size);
	ftab = r.pcl_off + (uint64_t)(r.tab.functab - r.tab.data);
	memcpy(&a, copy + ftab + 8 * i, 4);
	memcpy(&b, copy + ftab + 8 * (i + 1), 4);
	memcpy(copy + ftab + 8 * i, &b, 4);
	memcpy(copy + ftab + 8 * (i + 1), &a, 4);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "unsorted", &bin, &err), 0, "%s", err.msg);
	/* The decoder itself notices. */
	t = r.tab;
	t.data = copy + r.pcl_off;
	t.functab = copy + ftab;
	cr_assert_eq(gs_pclntab_func_at(&t, i, &f, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not sorted"), "%s", err.msg);
	/* Lookups near the swap give frames or -EINVAL, and at least one is an error. */
	for (uint64_t pc = e_i; pc < e_j + 64; pc++) {
		int n = check_pc(bin, pc, 0);

		if (n < 0) {
			cr_assert_eq(n, -EINVAL);
			bad++;
		}
	}
	cr_assert_gt(bad, 0);
	cr_assert_geq(gs_binary_symbolize(bin, r.tab.text_start, 0, fr, MAXF, &err), 1,
		      "far from the swap still works");
	gs_binary_close(bin);
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_pcvalue_overlong_varint)
{
	struct real r;
	uint8_t *copy;
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct gs_frame fr[MAXF];
	struct gs_func f;
	uint64_t off, end;
	int32_t v;

	real_open(&r, TU_VET119);
	cr_assert_eq(gs_binary_find_function(r.bin, "runtime.gopark", &off, &end), 0);
	cr_assert_eq(gs_pclntab_find_func(&r.tab, off, &f, NULL), 0);
	/* Before: a line. */
	cr_assert_eq(gs_pclntab_pcvalue(&r.tab, &f, gs_func_field(&r.tab, &f, 6), f.entry, &v), 0);
	cr_assert_gt(v, 0);
	/* Replace the start of its pcln table with an 11-byte varint. */
	off = r.pcl_off + (uint64_t)(r.tab.pctab - r.tab.data) + gs_func_field(&r.tab, &f, 6);
	copy = tu_dup(r.img, r.size);
	memset(copy + off, 0x80, 10);
	copy[off + 10] = 0x01;
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "varint", &bin, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_binary_symbolize(bin, f.entry, GS_LOOKUP_NO_INLINE, fr, MAXF, &err), 1);
	cr_assert_str_eq(fr[0].function, "runtime.gopark");
	cr_assert_eq(fr[0].raw_line, -1, "no line from a broken table");
	cr_assert_eq(fr[0].line, 0);
	cr_assert_str_eq(fr[0].file, "?");
	for (uint64_t pc = f.entry; pc < f.end; pc++)
		check_pc(bin, pc, 0);
	gs_binary_close(bin);
	/* The same for its pcsp table: no SP delta. */
	memcpy(copy, r.img, r.size);
	off = r.pcl_off + (uint64_t)(r.tab.pctab - r.tab.data) + gs_func_field(&r.tab, &f, 4);
	memset(copy + off, 0xff, 10);
	copy[off + 10] = 0x7f;
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "varint", &bin, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_binary_pcsp(bin, f.entry, &v), -ENOENT);
	gs_binary_close(bin);
	free(copy);
	real_close(&r);
}

Test(pclntab, corrupt_zero_size_section)
{
	struct real r;
	uint8_t *copy;
	const Elf64_Ehdr *eh;
	int idx = -1;

	real_open(&r, TU_VET127);
	copy = tu_dup(r.img, r.size);
	eh = (const Elf64_Ehdr *)copy;
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		struct gs_elf_section sec;

		if (gs_elf_section(&r.elf, i, &sec) == 0 && strcmp(sec.name, ".gopclntab") == 0)
			idx = (int)i;
	}
	cr_assert_geq(idx, 0);
	memset(copy + eh->e_shoff + (size_t)idx * sizeof(Elf64_Shdr) +
		       offsetof(Elf64_Shdr, sh_size),
	       0, 8);
	/* A Go binary (it has build info) whose named table is empty is refused. */
	expect_open_error(copy, r.size, "section .gopclntab: pclntab: truncated header");
	/* Sizes that cut the header or the functab are refused the same way. */
	for (uint64_t sz = 1; sz < 200; sz += 7) {
		memcpy(copy + eh->e_shoff + (size_t)idx * sizeof(Elf64_Shdr) +
			       offsetof(Elf64_Shdr, sh_size),
		       &sz, 8);
		expect_open_error(copy, r.size, "section .gopclntab");
	}
	free(copy);
	real_close(&r);
}

/* The table alone (no ELF) truncated: every read must stay inside the exactly sized copy. */
static void query_table(const uint8_t *data, uint64_t size, uint64_t addr, uint64_t text,
			const uint64_t *pcs, size_t npcs)
{
	struct gs_pclntab t;
	struct gs_error err = {0};
	struct gs_frame fr[MAXF];

	if (gs_pclntab_parse(&t, data, size, addr, &err) < 0) {
		cr_assert_neq(err.msg[0], '\0');
		return;
	}
	t.text_start = text;
	for (uint64_t i = 0; i < t.nfunc && i < 4096; i += 1 + i / 64) {
		struct gs_func f;
		int32_t v;

		if (gs_pclntab_func_at(&t, i, &f, NULL) < 0)
			continue;
		if (gs_pclntab_func_name(&t, &f))
			(void)strlen(gs_pclntab_func_name(&t, &f));
		for (unsigned k = 4; k <= 6; k++)
			gs_pclntab_pcvalue(&t, &f, gs_func_field(&t, &f, k), f.end - 1, &v);
		gs_pclntab_pcdata(&t, &f, PCDATA_INL_TREE_INDEX, f.entry, &v);
	}
	for (size_t i = 0; i < npcs; i++) {
		int n = gs_pclntab_frames(&t, pcs[i], true, fr, MAXF, &err);

		for (int k = 0; k < n; k++)
			(void)strlen(fr[k].file);
	}
}

static void truncate_table(const char *path, uint64_t seed)
{
	struct real r;
	uint64_t pcs[48], ftab;
	size_t npcs;
	const uint8_t *tab;

	real_open(&r, path);
	npcs = sample_pcs(&r, pcs, 48, &seed);
	tab = r.img + r.pcl_off;
	ftab = (uint64_t)(r.tab.functab - r.tab.data);
	for (int i = 0; i < 700; i++) {
		uint64_t n;
		uint8_t *copy;

		if (i < 200)
			n = (uint64_t)i; /* inside the header */
		else if (i < 300)
			n = tu_rand(&seed) % ftab;
		else if (i < 400)
			n = ftab + (uint64_t)(i - 300) * 8;
		else
			n = ftab + tu_rand(&seed) % (r.pcl_size - ftab + 1);
		copy = tu_dup(tab, n);
		query_table(copy, n, r.tab.addr, r.tab.text_start, pcs, npcs);
		free(copy);
	}
	real_close(&r);
}

Test(pclntab, truncated_table_go119)
{
	truncate_table(TU_VET119, 19);
}

Test(pclntab, truncated_table_go127)
{
	truncate_table(TU_VET127, 27);
}

/* Go 1.27: gofunc (moduledata + 344) found the way binary.c does, by scanning for the
 * moduledata words {pcHeader, funcnametab}. */
static uint64_t gofunc_127(const struct real *r)
{
	uint64_t fnt = r->tab.addr + (uint64_t)(r->tab.funcnametab - r->tab.data);

	struct gs_elf_segment seg;

	for (unsigned i = 0; gs_elf_next_load(&r->elf, &i, &seg) == 0;) {
		if (!seg.data || !(seg.flags & PF_W))
			continue;
		for (uint64_t off = 0; off + 352 <= seg.filesz; off += 8) {
			if (gs_rd64(seg.data + off) == r->tab.addr &&
			    gs_rd64(seg.data + off + 8) == fnt)
				return gs_rd64(seg.data + off + 344);
		}
	}
	return 0;
}

/* Finds a PC with an inline index (from a third of the way into the table); returns the file
 * offset of the inlinedCall it names (0 if none) and sets *pc_out, *fout and *ix_out. */
static uint64_t find_inlined_pc(struct real *r, uint64_t *pc_out, struct gs_func *fout,
				int32_t *ix_out)
{
	uint64_t gofunc = gofunc_127(r);

	cr_assert_neq(gofunc, 0);
	for (uint64_t i = r->tab.nfunc / 3; i < r->tab.nfunc; i++) {
		struct gs_func f;
		uint32_t npcdata, fd;
		uint8_t nfuncdata;

		if (gs_pclntab_func_at(&r->tab, i, &f, NULL) < 0)
			continue;
		npcdata = gs_func_field(&r->tab, &f, 7);
		nfuncdata = f.rec[r->tab.func_size - 1];
		if (npcdata <= PCDATA_INL_TREE_INDEX || nfuncdata <= FUNCDATA_INL_TREE)
			continue;
		fd = gs_rd32(f.rec + r->tab.func_size + 4 * npcdata + 4 * FUNCDATA_INL_TREE);
		if (fd == 0xffffffffu)
			continue;
		for (uint64_t pc = f.entry; pc < f.end; pc++) {
			int32_t ix;
			const uint8_t *call;

			if (gs_pclntab_pcdata(&r->tab, &f, PCDATA_INL_TREE_INDEX, pc, &ix) < 0 ||
			    ix < 0)
				continue;
			call = gs_elf_vaddr_bytes(&r->elf, gofunc + fd + 16ULL * (uint64_t)ix, 16);
			cr_assert_not_null(call);
			*pc_out = pc;
			*fout = f;
			*ix_out = ix;
			return (uint64_t)(call - r->img);
		}
	}
	return 0;
}

Test(pclntab, corrupt_cyclic_inline_tree_real)
{
	struct real r;
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct gs_frame fr[MAXF];
	struct gs_func f;
	uint64_t pc, call_off;
	int32_t ix, rel;
	uint8_t *copy;
	int n;

	real_open(&r, TU_VET127);
	call_off = find_inlined_pc(&r, &pc, &f, &ix);
	cr_assert_neq(call_off, 0, "no inlined PC found in %s", TU_VET127);
	n = gs_binary_symbolize(r.bin, pc, 0, fr, MAXF, &err);
	cr_assert_geq(n, 2, "an inlined pc has 2+ frames: %d %s", n, err.msg);
	cr_assert(fr[0].inlined);
	/* parentPc → an instruction whose inline index is this same entry: a cycle. */
	copy = tu_dup(r.img, r.size);
	rel = (int32_t)(pc - f.entry);
	memcpy(copy + call_off + 8, &rel, 4);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "cycle", &bin, &err), 0, "%s", err.msg);
	n = gs_binary_symbolize(bin, pc, 0, fr, MAXF, &err);
	cr_assert_eq(n, -ELOOP, "got %d (%s)", n, err.msg);
	cr_assert(strstr(err.msg, "cycle"), "%s", err.msg);
	/* Without inline expansion the function itself is still reported. */
	cr_assert_eq(gs_binary_symbolize(bin, pc, GS_LOOKUP_NO_INLINE, fr, MAXF, &err), 1);
	cr_assert_eq(fr[0].entry, f.entry);
	gs_binary_close(bin);

	/* parentPc outside the function, negative, and the name offset garbage. */
	rel = (int32_t)(f.end - f.entry);
	memcpy(copy + call_off + 8, &rel, 4);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "parentpc", &bin, &err), 0);
	cr_assert_eq(gs_binary_symbolize(bin, pc, 0, fr, MAXF, &err), -EINVAL);
	cr_assert(strstr(err.msg, "parentPc"), "%s", err.msg);
	gs_binary_close(bin);
	rel = -1;
	memcpy(copy + call_off + 8, &rel, 4);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "parentpc", &bin, &err), 0);
	cr_assert_eq(gs_binary_symbolize(bin, pc, 0, fr, MAXF, &err), -EINVAL);
	gs_binary_close(bin);
	memcpy(copy, r.img, r.size);
	memset(copy + call_off + 4, 0x7f, 4);
	cr_assert_eq(gs_binary_open_mem(copy, r.size, "nameoff", &bin, &err), 0);
	n = check_pc(bin, pc, 0);
	cr_assert_geq(n, 2);
	gs_binary_symbolize(bin, pc, 0, fr, MAXF, &err);
	cr_assert_str_eq(fr[0].function, "?", "bad name offset gives '?'");
	gs_binary_close(bin);
	free(copy);
	real_close(&r);
}

/* ---- handcrafted tables ---- */

struct crafted {
	struct pb_table t;
	struct pb_out out;
	uint8_t *img;
	size_t size;
	struct gs_binary *bin;
};

static void crafted_open(struct crafted *c, enum gs_pclntab_format fmt, const struct pb_elf_opts *o)
{
	struct gs_error err = {0};

	pb_sample(&c->t, fmt);
	cr_assert_eq(pb_build(&c->t, &c->out), 0);
	c->img = pb_elf(&c->t, &c->out, o, &c->size);
	cr_assert_not_null(c->img);
	cr_assert_eq(gs_binary_open_mem(c->img, c->size, "crafted", &c->bin, &err), 0, "%s",
		     err.msg);
}

static void crafted_close(struct crafted *c)
{
	gs_binary_close(c->bin);
	free(c->img);
	pb_free(&c->out);
}

/* Checks the sample program's answers (see pb_sample). */
static void check_sample(const struct gs_binary *bin, enum gs_pclntab_format fmt)
{
	bool start_lines = fmt == GS_PCLNTAB_GO120, inlines = fmt != GS_PCLNTAB_GO12;
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};
	const struct gs_binary_info *info = gs_binary_info(bin);
	uint64_t entry, end;
	int32_t sp;
	int n;

	cr_assert(info->is_go);
	cr_assert_eq(info->pclntab_format, fmt);
	cr_assert_eq(info->nfunc, 3);
	cr_assert_eq(info->pclntab_addr, PB_PCLNTAB_ADDR);

	n = gs_binary_symbolize(bin, PB_TEXT, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1, "%d %s", n, err.msg);
	cr_assert_str_eq(fr[0].function, "main.main");
	cr_assert_str_eq(fr[0].file, "/src/main.go");
	cr_assert_eq(fr[0].line, 10);
	cr_assert_eq(fr[0].start_line, start_lines ? 9 : 0);
	cr_assert_eq(fr[0].entry, PB_TEXT);
	cr_assert(fr[0].go);

	n = gs_binary_symbolize(bin, PB_TEXT + 0x1f, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_eq(fr[0].line, 11);

	/* The inlined call of main.helper at 0x20..0x30, called from line 11 (parentPc 0x10). */
	n = gs_binary_symbolize(bin, PB_TEXT + 0x25, 0, fr, MAXF, &err);
	if (inlines) {
		cr_assert_eq(n, 2, "%d %s", n, err.msg);
		cr_assert_str_eq(fr[0].function, "main.helper");
		cr_assert(fr[0].inlined);
		cr_assert_str_eq(fr[0].file, "/src/util.go");
		cr_assert_eq(fr[0].line, 5);
		cr_assert_eq(fr[0].start_line, start_lines ? 4 : 0);
		cr_assert_eq(fr[0].entry, PB_TEXT, "entry of the real function");
		cr_assert_str_eq(fr[1].function, "main.main");
		cr_assert_not(fr[1].inlined);
		cr_assert_str_eq(fr[1].file, "/src/main.go");
		cr_assert_eq(fr[1].line, 11);
		/* Only room for one frame: the innermost. */
		cr_assert_eq(gs_binary_symbolize(bin, PB_TEXT + 0x25, 0, fr, 1, &err), 1);
		cr_assert_str_eq(fr[0].function, "main.helper");
	} else {
		/* Go 1.2 tables carry no inline tree here: the position is the inlinee's. */
		cr_assert_eq(n, 1);
		cr_assert_str_eq(fr[0].function, "main.main");
		cr_assert_str_eq(fr[0].file, "/src/util.go");
		cr_assert_eq(fr[0].line, 5);
	}
	n = gs_binary_symbolize(bin, PB_TEXT + 0x25, GS_LOOKUP_NO_INLINE, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fr[0].function, "main.main");
	/* A return address right after the inlined range belongs to it (looked up at pc-1). */
	n = gs_binary_symbolize(bin, PB_TEXT + 0x30, GS_LOOKUP_RETURN_ADDR, fr, MAXF, &err);
	cr_assert_eq(n, inlines ? 2 : 1);
	cr_assert_eq(fr[0].line, 5);
	n = gs_binary_symbolize(bin, PB_TEXT + 0x30, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_eq(fr[0].line, 12);

	n = gs_binary_symbolize(bin, PB_TEXT + 0x48, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fr[0].function, "main.helper");
	cr_assert_str_eq(fr[0].file, "/src/util.go");
	cr_assert_eq(fr[0].line, 5);
	cr_assert_eq(fr[0].entry, PB_TEXT + 0x40);
	/* At an entry, a return address is not moved into the previous function. */
	n = gs_binary_symbolize(bin, PB_TEXT + 0x40, GS_LOOKUP_RETURN_ADDR, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fr[0].function, "main.helper");
	cr_assert_eq(fr[0].line, 4);

	/* Generic: printed with [...] like the runtime, raw name kept. */
	n = gs_binary_symbolize(bin, PB_TEXT + 0x7f, 0, fr, MAXF, &err);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(fr[0].function, "main.G[...]");
	cr_assert_eq(fr[0].function_len, strlen("main.G[...]"));
	cr_assert_str_eq(fr[0].raw_function, "main.G[go.shape.int]");
	cr_assert_eq(fr[0].line, 20);

	/* Outside the table: nothing, or an ELF symbol (runtime.text when there are symbols). */
	{
		static const uint64_t outside[] = {PB_TEXT + 0x80, PB_TEXT - 1, 0, UINT64_MAX};

		for (unsigned i = 0; i < 4; i++) {
			n = gs_binary_symbolize(bin, outside[i], GS_LOOKUP_RETURN_ADDR, fr, MAXF,
						&err);
			cr_assert(n == 0 || (n == 1 && !fr[0].go), "pc %#llx: %d",
				  (unsigned long long)outside[i], n);
		}
	}
	cr_assert_eq(gs_binary_symbolize(bin, PB_TEXT, 0, fr, 0, &err), 0, "max 0");

	cr_assert_eq(gs_binary_find_function(bin, "main.helper", &entry, &end), 0);
	cr_assert_eq(entry, PB_TEXT + 0x40);
	cr_assert_eq(end, PB_TEXT + 0x60);
	cr_assert_eq(gs_binary_pcsp(bin, PB_TEXT + 0x40, &sp), 0);
	cr_assert_eq(sp, 0);
	cr_assert_eq(gs_binary_pcsp(bin, PB_TEXT + 0x48, &sp), 0);
	cr_assert_eq(sp, 16);
	cr_assert_eq(gs_binary_pcsp(bin, PB_TEXT + 0x80, &sp), -ENOENT);
}

Test(pclntab, crafted_go12)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.15.15"};

	crafted_open(&c, GS_PCLNTAB_GO12, &o);
	check_sample(c.bin, GS_PCLNTAB_GO12);
	crafted_close(&c);
}

Test(pclntab, crafted_go116)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.16.15"};

	crafted_open(&c, GS_PCLNTAB_GO116, &o);
	check_sample(c.bin, GS_PCLNTAB_GO116);
	crafted_close(&c);
}

Test(pclntab, crafted_go118_moduledata)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.19.8", .moduledata = true};

	crafted_open(&c, GS_PCLNTAB_GO118, &o);
	cr_assert_str_eq(gs_binary_info(c.bin)->text_found_by, "moduledata");
	check_sample(c.bin, GS_PCLNTAB_GO118);
	crafted_close(&c);
}

Test(pclntab, crafted_go120_moduledata)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.27.3", .moduledata = true};

	crafted_open(&c, GS_PCLNTAB_GO120, &o);
	cr_assert_str_eq(gs_binary_info(c.bin)->text_found_by, "moduledata");
	check_sample(c.bin, GS_PCLNTAB_GO120);
	crafted_close(&c);
}

Test(pclntab, crafted_go120_symbols_no_buildinfo)
{
	struct crafted c;
	struct pb_elf_opts o = {.symbols = true};

	crafted_open(&c, GS_PCLNTAB_GO120, &o);
	cr_assert_str_eq(gs_binary_info(c.bin)->text_found_by, "symbol runtime.text");
	cr_assert_not(gs_binary_info(c.bin)->has_buildinfo);
	check_sample(c.bin, GS_PCLNTAB_GO120);
	crafted_close(&c);
}

Test(pclntab, crafted_go120_no_section_headers)
{
	struct crafted c;
	struct pb_elf_opts o = {
		.go_version = "go1.24.4", .moduledata = true, .eb_flags = EB_NO_SHDRS};

	crafted_open(&c, GS_PCLNTAB_GO120, &o);
	cr_assert_str_eq(gs_binary_info(c.bin)->pclntab_found_by, "magic scan");
	cr_assert_str_eq(gs_binary_info(c.bin)->buildinfo.go_version, "go1.24.4");
	check_sample(c.bin, GS_PCLNTAB_GO120);
	crafted_close(&c);
}

Test(pclntab, crafted_go118_header_text_start)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.18.10"};
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};

	/* No moduledata: the header's textStart is the base; without gofunc no inlining. */
	crafted_open(&c, GS_PCLNTAB_GO118, &o);
	cr_assert_str_eq(gs_binary_info(c.bin)->text_found_by, "pcHeader.textStart");
	cr_assert_eq(gs_binary_symbolize(c.bin, PB_TEXT + 0x25, 0, fr, MAXF, &err), 1);
	cr_assert_str_eq(fr[0].function, "main.main");
	cr_assert_eq(fr[0].line, 5);
	crafted_close(&c);
}

Test(pclntab, crafted_go120_zero_text_start)
{
	struct crafted c;
	struct pb_elf_opts o = {.go_version = "go1.27.3"};
	struct gs_frame fr[MAXF];
	struct gs_error err = {0};

	/* Go 1.26+ writes textStart = 0: without moduledata or symbols, .text is the guess. */
	pb_sample(&c.t, GS_PCLNTAB_GO120);
	c.t.zero_text_start = true;
	cr_assert_eq(pb_build(&c.t, &c.out), 0);
	c.img = pb_elf(&c.t, &c.out, &o, &c.size);
	cr_assert_eq(gs_binary_open_mem(c.img, c.size, "zero", &c.bin, &err), 0, "%s", err.msg);
	cr_assert_str_eq(gs_binary_info(c.bin)->text_found_by, "section .text (fallback)");
	cr_assert_eq(gs_binary_symbolize(c.bin, PB_TEXT + 0x48, 0, fr, MAXF, &err), 1);
	cr_assert_str_eq(fr[0].function, "main.helper");
	crafted_close(&c);
}

/* A frame copied out of an image that is about to be freed. */
struct res {
	char function[64];
	char file[64];
	int line, start_line;
};

/* The sample with main.main's inline tree and rows replaced; symbolizes pc into fr. */
static int crafted_inline_case(enum gs_pclntab_format fmt, const struct pb_inl *inl, unsigned ninl,
			       const struct pb_row *rows, unsigned nrows, uint64_t pc,
			       struct res *fr, struct gs_error *err)
{
	struct gs_frame frames[MAXF];
	struct pb_func funcs[3];
	struct pb_table t;
	struct pb_out out;
	struct pb_elf_opts o = {.go_version = "go1.27.3", .moduledata = true};
	struct gs_binary *bin;
	uint8_t *img;
	size_t size;
	int n;

	pb_sample(&t, fmt);
	memcpy(funcs, t.funcs, sizeof(funcs));
	funcs[0].inl = inl;
	funcs[0].ninl = ninl;
	funcs[0].rows = rows;
	funcs[0].nrows = nrows;
	t.funcs = funcs;
	cr_assert_eq(pb_build(&t, &out), 0);
	img = pb_elf(&t, &out, &o, &size);
	cr_assert_eq(gs_binary_open_mem(img, size, "inline", &bin, err), 0, "%s", err->msg);
	gs_error_clear(err);
	n = gs_binary_symbolize(bin, pc, 0, frames, MAXF, err);
	for (int i = 0; i < n; i++) {
		snprintf(fr[i].function, sizeof(fr[i].function), "%s", frames[i].function);
		snprintf(fr[i].file, sizeof(fr[i].file), "%s", frames[i].file);
		fr[i].line = frames[i].line;
		fr[i].start_line = frames[i].start_line;
	}
	for (uint64_t p = PB_TEXT; p < PB_TEXT + 0x90; p++)
		check_pc(bin, p, 0);
	gs_binary_close(bin);
	free(img);
	pb_free(&out);
	return n;
}

Test(pclntab, crafted_inline_trees)
{
	/* Two levels: c inlined into b at 0x28 (b's position at 0x18), b into main at 0x20. */
	static const struct pb_row rows[] = {
		{0x00, 0, 10, -1, 0}, {0x10, 0, 11, -1, 8}, {0x18, 1, 30, 0, 8},
		{0x20, 1, 31, 0, 8},  {0x28, 1, 40, 1, 8},  {0x30, 0, 12, -1, 8},
	};
	struct pb_inl two[] = {
		{"main.b", -1, 0, 0, 11, 0x10, 29},
		{"main.c", 0, 0, 1, 30, 0x18, 39},
	};
	static const struct pb_inl cyc[] = {
		{"main.b", -1, 0, 0, 11, 0x28, 29}, /* parentPc has index 1, whose parent is 0 */
		{"main.c", 0, 0, 1, 30, 0x18, 39},  /* ... 0x18 has index 0 → 0x28 → ... */
	};
	static const struct pb_inl self[] = {
		{"main.b", -1, 0, 0, 11, 0x18, 29}, /* parentPc has index 0 itself */
		{"main.c", 0, 0, 1, 30, 0x18, 39},
	};
	static const struct pb_row far_rows[] = {
		{0x00, 0, 10, -1, 0},
		{0x20, 1, 5, 100000, 8},
		{0x30, 0, 12, -1, 8},
	};
	struct res fr[MAXF];
	struct gs_error err;
	int n;

	n = crafted_inline_case(GS_PCLNTAB_GO120, two, 2, rows, 6, PB_TEXT + 0x2a, fr, &err);
	cr_assert_eq(n, 3, "%d %s", n, err.msg);
	cr_assert_str_eq(fr[0].function, "main.c");
	cr_assert_eq(fr[0].line, 40);
	cr_assert_eq(fr[0].start_line, 39);
	cr_assert_str_eq(fr[1].function, "main.b");
	cr_assert_str_eq(fr[1].file, "/src/util.go");
	cr_assert_eq(fr[1].line, 30);
	cr_assert_str_eq(fr[2].function, "main.main");
	cr_assert_eq(fr[2].line, 11);
	n = crafted_inline_case(GS_PCLNTAB_GO118, two, 2, rows, 6, PB_TEXT + 0x2a, fr, &err);
	cr_assert_eq(n, 3, "%d %s", n, err.msg);
	cr_assert_str_eq(fr[0].function, "main.c");
	cr_assert_str_eq(fr[1].function, "main.b");
	n = crafted_inline_case(GS_PCLNTAB_GO116, two, 2, rows, 6, PB_TEXT + 0x2a, fr, &err);
	cr_assert_eq(n, 3, "%d %s", n, err.msg);

	/* Wrapper elision: an inlined frame with the 1.27 wrapper funcID (23) is dropped when
	 * it is not the innermost one. */
	two[0].funcid = 23;
	n = crafted_inline_case(GS_PCLNTAB_GO120, two, 2, rows, 6, PB_TEXT + 0x2a, fr, &err);
	cr_assert_eq(n, 2, "%d %s", n, err.msg);
	cr_assert_str_eq(fr[0].function, "main.c");
	cr_assert_str_eq(fr[1].function, "main.main");
	two[0].funcid = 0;

	/* Cycles: through two entries, and an entry whose parentPc maps back to itself. */
	n = crafted_inline_case(GS_PCLNTAB_GO120, cyc, 2, rows, 6, PB_TEXT + 0x2a, fr, &err);
	cr_assert_eq(n, -ELOOP, "%d %s", n, err.msg);
	n = crafted_inline_case(GS_PCLNTAB_GO120, self, 2, rows, 6, PB_TEXT + 0x1a, fr, &err);
	cr_assert_eq(n, -ELOOP, "%d %s", n, err.msg);
	n = crafted_inline_case(GS_PCLNTAB_GO118, self, 2, rows, 6, PB_TEXT + 0x1a, fr, &err);
	cr_assert_eq(n, -ELOOP, "%d %s", n, err.msg);

	/* An inline index far past the tree. */
	n = crafted_inline_case(GS_PCLNTAB_GO120, two, 2, far_rows, 3, PB_TEXT + 0x25, fr, &err);
	cr_assert_eq(n, -EINVAL, "%d %s", n, err.msg);
	cr_assert(strstr(err.msg, "inline index"), "%s", err.msg);
}

Test(pclntab, crafted_random_corruption)
{
	static const enum gs_pclntab_format fmts[] = {GS_PCLNTAB_GO12, GS_PCLNTAB_GO116,
						      GS_PCLNTAB_GO118, GS_PCLNTAB_GO120};
	uint64_t seed = 0xc0ffee;

	for (unsigned fi = 0; fi < 4; fi++) {
		struct pb_table t;
		struct pb_out out;
		struct pb_elf_opts o = {.go_version = "go1.27.3", .moduledata = true};
		uint8_t *img;
		size_t size;
		uint64_t pcs[24];

		pb_sample(&t, fmts[fi]);
		cr_assert_eq(pb_build(&t, &out), 0);
		img = pb_elf(&t, &out, &o, &size);
		for (unsigned i = 0; i < 24; i++)
			pcs[i] = PB_TEXT - 2 + i * 6;
		for (int iter = 0; iter < 1500; iter++) {
			uint8_t *copy = tu_dup(img, size);

			for (int k = 0; k < 1 + iter % 4; k++) {
				uint64_t off =
					(PB_PCLNTAB_ADDR - EB_BASE) + tu_rand(&seed) % out.size;

				copy[off] = (uint8_t)tu_rand(&seed);
			}
			open_and_query(copy, size, pcs, 24);
			/* And the raw table alone, exactly sized. */
			query_table(copy + (PB_PCLNTAB_ADDR - EB_BASE), out.size, PB_PCLNTAB_ADDR,
				    PB_TEXT, pcs, 24);
			free(copy);
		}
		free(img);
		pb_free(&out);
	}
}

Test(pclntab, looks_valid_and_format_names)
{
	struct pb_table t;
	struct pb_out out;

	pb_sample(&t, GS_PCLNTAB_GO120);
	cr_assert_eq(pb_build(&t, &out), 0);
	cr_assert(gs_pclntab_looks_valid(out.data, out.size));
	cr_assert_not(gs_pclntab_looks_valid(out.data, 7));
	cr_assert_not(gs_pclntab_looks_valid(out.data + 1, out.size - 1));
	pb_free(&out);
	cr_assert_str_eq(gs_pclntab_format_name(GS_PCLNTAB_GO12), "go1.2 (0xfffffffb)");
	cr_assert_str_eq(gs_pclntab_format_name(GS_PCLNTAB_GO120), "go1.20 (0xfffffff1)");
	cr_assert_str_eq(gs_pclntab_format_name(GS_PCLNTAB_NONE), "none");
}

Test(pclntab, binary_open_errors)
{
	struct gs_binary *bin = NULL;
	struct gs_error err = {0};
	static const uint8_t junk[100] = "not an ELF";

	/* The errno comes back whether or not the caller wants the message. */
	cr_assert_eq(gs_binary_open("/nonexistent/goscope", &bin, NULL), -ENOENT);
	cr_assert_eq(gs_binary_open("/etc/passwd", &bin, NULL), -EINVAL);
	cr_assert_eq(gs_binary_open("/etc/passwd", &bin, &err), -EINVAL);
	cr_assert(strstr(err.msg, "/etc/passwd"), "%s", err.msg);
	cr_assert_eq(gs_binary_open_mem(junk, sizeof(junk), "junk", &bin, NULL), -EINVAL);
	cr_assert_null(bin);
	/* An ELF without Go in it opens fine and says so. */
	cr_assert_eq(gs_binary_open("/bin/true", &bin, &err), 0, "%s", err.msg);
	cr_assert_not(gs_binary_info(bin)->is_go);
	cr_assert_eq(gs_binary_info(bin)->pclntab_format, GS_PCLNTAB_NONE);
	cr_assert_eq(gs_binary_foreach_function(bin, collect, NULL), -ENOENT);
	gs_binary_close(bin);
}
