/* pcindex.c — skip index over long pcvalue tables, and function lookup buckets.
 *
 * A pcvalue table (pc→line, pc→file, pc→inline index, pc→SP delta) can only be read from its
 * start: each entry is a delta. For a PC deep inside a big function (the compiler's SSA
 * rewrite functions have tens of thousands of entries) every lookup decodes thousands of
 * varints, and so does debug/gosym. The first walk that turns out long records a checkpoint
 * (decoder state) every PCINDEX_INTERVAL entries of that table; later lookups in it binary
 * search the checkpoints and decode at most PCINDEX_INTERVAL entries.
 *
 * The pclntab itself is still never copied: only long tables that lookups actually reach get
 * checkpoints, about 16 bytes per 16 entries, within a byte budget per binary. Readers are
 * lock-free: a function's indexed tables hang off an array by function index (calloc'd, so
 * untouched entries cost no memory), published by compare-and-swap and never removed until
 * the binary is closed. One symbolization reads several tables of one function: they share
 * one entry, so the index costs about one cache miss per lookup.
 *
 * The function lookup buckets (PCINDEX_BUCKET_SHIFT) are filled the same lazy way: each entry
 * is computed by a full binary search the first time a PC of its bucket is looked up. */
#include <stdbool.h>
#include <stdlib.h>

#include "pcindex.h"

/* The long tables of one function (pcsp, pcfile, pcln and the pcdata tables that lookups
 * reach; a function has fewer than this many). Slots fill in order: off[i] when a long walk
 * first went through the table (marked), tab[i] when the next one built its checkpoints. */
#define PCINDEX_TABLES_PER_FUNC 8

struct pcindex_slot {
	uint32_t off;		    /* atomic; 0 = free */
	uint32_t n;		    /* copies of tab->n and its last pc offset, written */
	uint32_t last;		    /* (atomically) before tab is published, so a */
	uint32_t pad;		    /* lookup reads one line here, not the table's */
	struct pcindex_table *tab; /* atomic */
};

struct pcindex_func {
	uint32_t name_meta; /* atomic; see gs_pcindex_name_meta */
	uint32_t pad;
	struct pcindex_slot slot[PCINDEX_TABLES_PER_FUNC];
};

struct gs_pcindex {
	uint64_t nfunc;
	struct pcindex_func **funcs; /* [nfunc], atomic pointers */
	size_t bytes;		     /* atomic: reserved bytes */
	uint32_t *buckets;	     /* see PCINDEX_BUCKET_SHIFT */
	uint64_t nbuckets;
	uint8_t *strmap[PCINDEX_NSTRTABS]; /* see enum pcindex_strtab */
	uint64_t strbits[PCINDEX_NSTRTABS];
};

struct gs_pcindex *gs_pcindex_new(uint64_t nfunc, uint64_t text_size, uint64_t funcnametab_size,
				  uint64_t filetab_size)
{
	const uint64_t strtab_size[PCINDEX_NSTRTABS] = {funcnametab_size, filetab_size};
	struct gs_pcindex *ix;
	uint64_t n;

	if (nfunc == 0 || nfunc >= UINT32_MAX)
		return NULL;
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return NULL;
	/* Large callocs are fresh zero pages: only the entries used cost memory. */
	ix->funcs = calloc(nfunc, sizeof(*ix->funcs));
	if (!ix->funcs) {
		free(ix);
		return NULL;
	}
	ix->nfunc = nfunc;
	n = (text_size >> PCINDEX_BUCKET_SHIFT) + 1;
	if (n <= PCINDEX_MAX_BUCKETS) {
		ix->buckets = calloc(n, sizeof(*ix->buckets));
		ix->nbuckets = ix->buckets ? n : 0;
	}
	for (int k = 0; k < PCINDEX_NSTRTABS; k++) {
		if (strtab_size[k] == 0 || strtab_size[k] > PCINDEX_MAX_STRTAB_BYTES)
			continue;
		ix->strmap[k] = calloc(strtab_size[k] / 8 + 1, 1);
		ix->strbits[k] = ix->strmap[k] ? strtab_size[k] : 0;
	}
	return ix;
}

void gs_pcindex_free(struct gs_pcindex *ix)
{
	if (!ix)
		return;
	for (uint64_t i = 0; i < ix->nfunc; i++) {
		if (!ix->funcs[i])
			continue;
		for (int k = 0; k < PCINDEX_TABLES_PER_FUNC; k++)
			free(ix->funcs[i]->slot[k].tab);
		free(ix->funcs[i]);
	}
	free(ix->funcs);
	free(ix->buckets);
	for (int k = 0; k < PCINDEX_NSTRTABS; k++)
		free(ix->strmap[k]);
	free(ix);
}

bool gs_pcindex_get(const struct gs_pcindex *ix, uint64_t func, uint32_t off,
		    struct pcindex_view *view)
{
	struct pcindex_func *fe;

	if (func >= ix->nfunc)
		return false;
	fe = __atomic_load_n(&ix->funcs[func], __ATOMIC_ACQUIRE);
	if (!fe)
		return false;
	for (int k = 0; k < PCINDEX_TABLES_PER_FUNC; k++) {
		struct pcindex_slot *sl = &fe->slot[k];
		uint32_t o = __atomic_load_n(&sl->off, __ATOMIC_ACQUIRE);
		struct pcindex_table *tab;

		if (o == 0)
			return false;
		if (o != off)
			continue;
		tab = __atomic_load_n(&sl->tab, __ATOMIC_ACQUIRE);
		if (!tab)
			return false;
		view->cp = tab->cp;
		view->n = __atomic_load_n(&sl->n, __ATOMIC_RELAXED);
		view->last = __atomic_load_n(&sl->last, __ATOMIC_RELAXED);
		return view->n > 0;
	}
	return false;
}

int gs_pcindex_reserve(struct gs_pcindex *ix, size_t add)
{
	size_t cur = __atomic_load_n(&ix->bytes, __ATOMIC_RELAXED);

	do {
		if (add > PCINDEX_MAX_BYTES - cur)
			return 0;
	} while (!__atomic_compare_exchange_n(&ix->bytes, &cur, cur + add, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 1;
}

/* The function's entry, created when missing; NULL when there is no room. */
static struct pcindex_func *func_entry(struct gs_pcindex *ix, uint64_t func)
{
	struct pcindex_func *fe = __atomic_load_n(&ix->funcs[func], __ATOMIC_ACQUIRE), *expect = NULL;

	if (fe)
		return fe;
	if (!gs_pcindex_reserve(ix, sizeof(*fe)) || !(fe = calloc(1, sizeof(*fe))))
		return NULL;
	if (__atomic_compare_exchange_n(&ix->funcs[func], &expect, fe, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return fe;
	free(fe); /* another thread was first (its bytes stay counted: the budget errs low) */
	return expect;
}

int gs_pcindex_mark(struct gs_pcindex *ix, uint64_t func, uint32_t off)
{
	struct pcindex_func *fe;

	if (func >= ix->nfunc || off == 0 || !(fe = func_entry(ix, func)))
		return 0;
	for (int k = 0; k < PCINDEX_TABLES_PER_FUNC; k++) {
		uint32_t expect = 0;

		if (__atomic_compare_exchange_n(&fe->slot[k].off, &expect, off, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return 0; /* marked now */
		if (expect == off)
			return 1; /* marked before */
	}
	return 0;
}

void gs_pcindex_put(struct gs_pcindex *ix, uint64_t func, struct pcindex_table *tab)
{
	struct pcindex_func *fe;

	if (func >= ix->nfunc || !(fe = __atomic_load_n(&ix->funcs[func], __ATOMIC_ACQUIRE)))
		goto drop;
	for (int k = 0; k < PCINDEX_TABLES_PER_FUNC; k++) {
		struct pcindex_slot *sl = &fe->slot[k];
		struct pcindex_table *expect = NULL;

		if (__atomic_load_n(&sl->off, __ATOMIC_ACQUIRE) != tab->off)
			continue;
		if (tab->n == 0 || __atomic_load_n(&sl->tab, __ATOMIC_ACQUIRE))
			break; /* another thread indexed it first */
		/* Racing builders of one table store the same values. */
		__atomic_store_n(&sl->n, tab->n, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->last, tab->cp[tab->n - 1].pc_off, __ATOMIC_RELAXED);
		if (__atomic_compare_exchange_n(&sl->tab, &expect, tab, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return;
		break;
	}
drop:
	free(tab);
}

size_t gs_pcindex_bytes(const struct gs_pcindex *ix)
{
	size_t n;

	if (!ix)
		return 0;
	n = sizeof(*ix) + ix->nfunc * sizeof(*ix->funcs) + ix->nbuckets * sizeof(*ix->buckets);
	for (int k = 0; k < PCINDEX_NSTRTABS; k++)
		n += ix->strmap[k] ? ix->strbits[k] / 8 + 1 : 0;
	return n + __atomic_load_n(&ix->bytes, __ATOMIC_RELAXED);
}

size_t gs_pcindex_tables(const struct gs_pcindex *ix)
{
	size_t n = 0;

	for (uint64_t i = 0; ix && i < ix->nfunc; i++) {
		struct pcindex_func *fe = __atomic_load_n(&ix->funcs[i], __ATOMIC_ACQUIRE);

		for (int k = 0; fe && k < PCINDEX_TABLES_PER_FUNC; k++)
			n += __atomic_load_n(&fe->slot[k].tab, __ATOMIC_ACQUIRE) != NULL;
	}
	return n;
}

uint32_t *gs_pcindex_buckets(struct gs_pcindex *ix, uint64_t *n)
{
	*n = ix->nbuckets;
	return ix->buckets;
}


uint8_t *gs_pcindex_strmap(const struct gs_pcindex *ix, enum pcindex_strtab which,
			   uint64_t *nbits)
{
	*nbits = ix->strbits[which];
	return ix->strmap[which];
}

uint32_t *gs_pcindex_name_meta(struct gs_pcindex *ix, uint64_t func)
{
	struct pcindex_func *fe;

	if (func >= ix->nfunc || !(fe = func_entry(ix, func)))
		return NULL;
	return &fe->name_meta;
}
