/* pclntab.c — decoding Go's pclntab. The semantics follow runtime/symtab.go, symtabinl.go and
 * debug/gosym (read, not copied): header fields per magic, a functab sorted by entry, _func
 * records with pcvalue tables (zig-zag varint deltas), and inline trees reached through
 * FUNCDATA_InlTree / PCDATA_InlTreeIndex. Nothing is copied out of the image: lookups are a
 * binary search plus varint walks, each read checked against the table's bounds. A lazily
 * built, bounded index (pcindex.c) shortens both for the functions lookups keep hitting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "pcindex.h"
#include "pclntab.h"

#define HDR_MAGIC_LEN 8 /* magic u32 + pad + pad + quantum + ptrsize */
#define INLCALL_SIZE_GO118 20
#define INLCALL_SIZE_GO120 16
#define FUNCDATA_ABSENT_GO118 0xffffffffu
#define CUTAB_FILE_MISSING 0xffffffffu

static bool in_range(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static uint64_t rd_word(const uint8_t *p, unsigned size)
{
	return size == 8 ? gs_rd64(p) : gs_rd32(p);
}

/* A NUL-terminated string at base+off inside [base, base+size), else NULL. */
static const char *cstr(const uint8_t *base, uint64_t size, uint64_t off)
{
	if (!base || off >= size || !memchr(base + off, '\0', size - off))
		return NULL;
	return (const char *)base + off;
}

/* cstr for the string table which of t, remembering offsets already found terminated. */
static const char *cstr_tab(const struct gs_pclntab *t, enum pcindex_strtab which,
			    const uint8_t *base, uint64_t size, uint64_t off)
{
	uint64_t nbits = 0;
	uint8_t *map = t->pcindex ? gs_pcindex_strmap(t->pcindex, which, &nbits) : NULL;
	const char *s;

	if (map && off < nbits && nbits == size &&
	    (__atomic_load_n(&map[off >> 3], __ATOMIC_RELAXED) >> (off & 7) & 1))
		return (const char *)base + off;
	s = cstr(base, size, off);
	if (s && map && off < nbits && nbits == size)
		__atomic_fetch_or(&map[off >> 3], (uint8_t)(1u << (off & 7)), __ATOMIC_RELAXED);
	return s;
}

static enum gs_pclntab_format format_of(uint32_t magic)
{
	switch (magic) {
	case PCLNTAB_MAGIC_GO12:
		return GS_PCLNTAB_GO12;
	case PCLNTAB_MAGIC_GO116:
		return GS_PCLNTAB_GO116;
	case PCLNTAB_MAGIC_GO118:
		return GS_PCLNTAB_GO118;
	case PCLNTAB_MAGIC_GO120:
		return GS_PCLNTAB_GO120;
	default:
		return GS_PCLNTAB_NONE;
	}
}

const char *gs_pclntab_format_name(enum gs_pclntab_format f)
{
	switch (f) {
	case GS_PCLNTAB_GO12:
		return "go1.2 (0xfffffffb)";
	case GS_PCLNTAB_GO116:
		return "go1.16 (0xfffffffa)";
	case GS_PCLNTAB_GO118:
		return "go1.18 (0xfffffff0)";
	case GS_PCLNTAB_GO120:
		return "go1.20 (0xfffffff1)";
	default:
		return "none";
	}
}

bool gs_pclntab_looks_valid(const uint8_t *data, uint64_t size)
{
	struct gs_pclntab t;

	return gs_pclntab_parse(&t, data, size, 0, NULL) == 0;
}

/* Sub-table at header word `word`: from its offset to the end of the data. */
static int subtable(const struct gs_pclntab *t, unsigned word, const uint8_t **p, uint64_t *size)
{
	uint64_t hoff = HDR_MAGIC_LEN + (uint64_t)word * t->ptrsize;
	uint64_t off;

	if (!in_range(hoff, t->ptrsize, t->size))
		return -EINVAL;
	off = rd_word(t->data + hoff, t->ptrsize);
	if (off >= t->size)
		return -EINVAL;
	*p = t->data + off;
	*size = t->size - off;
	return 0;
}

int gs_pclntab_parse(struct gs_pclntab *t, const uint8_t *data, uint64_t size, uint64_t addr,
		     struct gs_error *err)
{
	uint64_t need;

	memset(t, 0, sizeof(*t));
	t->wrapper_funcid = -1;
	if (size < HDR_MAGIC_LEN)
		return gs_error_set(err, -EINVAL, "pclntab: truncated header");
	t->data = data;
	t->size = size;
	t->addr = addr;
	t->magic = gs_rd32(data);
	t->format = format_of(t->magic);
	if (t->format == GS_PCLNTAB_NONE)
		return gs_error_set(err, -EINVAL, "pclntab: unknown magic 0x%08x", t->magic);
	if (data[4] != 0 || data[5] != 0)
		return gs_error_set(err, -EINVAL, "pclntab: bad header padding");
	t->quantum = data[6];
	t->ptrsize = data[7];
	if (t->quantum != 1 && t->quantum != 2 && t->quantum != 4)
		return gs_error_set(err, -EINVAL, "pclntab: bad pc quantum %u", t->quantum);
	if (t->ptrsize != 4 && t->ptrsize != 8)
		return gs_error_set(err, -EINVAL, "pclntab: bad pointer size %u", t->ptrsize);
	if (!in_range(HDR_MAGIC_LEN, 2ULL * t->ptrsize, size))
		return gs_error_set(err, -EINVAL, "pclntab: truncated header");
	t->nfunc = rd_word(data + HDR_MAGIC_LEN, t->ptrsize);

	switch (t->format) {
	case GS_PCLNTAB_GO12: {
		uint64_t ftab_off = HDR_MAGIC_LEN + t->ptrsize, ftab_len, filetab_off;

		t->field_size = t->ptrsize;
		t->func_size = t->ptrsize + 8 * 4;
		if (t->nfunc > size / (2ULL * t->ptrsize))
			return gs_error_set(err, -EINVAL, "pclntab: function count %llu too large",
					    (unsigned long long)t->nfunc);
		ftab_len = (2 * t->nfunc + 1) * t->ptrsize;
		if (!in_range(ftab_off, ftab_len + 4, size))
			return gs_error_set(err, -EINVAL, "pclntab: functab past end of table");
		t->functab = data + ftab_off;
		t->functab_size = size - ftab_off;
		filetab_off = gs_rd32(data + ftab_off + ftab_len);
		if (!in_range(filetab_off, 4, size))
			return gs_error_set(err, -EINVAL, "pclntab: filetab past end of table");
		t->filetab = data + filetab_off;
		t->filetab_size = size - filetab_off;
		t->nfiles = gs_rd32(t->filetab);
		t->funcnametab = data;
		t->funcnametab_size = size;
		t->pctab = data;
		t->pctab_size = size;
		break;
	}
	case GS_PCLNTAB_GO116:
	case GS_PCLNTAB_GO118:
	case GS_PCLNTAB_GO120: {
		unsigned base = t->format == GS_PCLNTAB_GO116 ? 2 : 3; /* word of funcnameOffset */

		if (!in_range(HDR_MAGIC_LEN, (uint64_t)(base + 5) * t->ptrsize, size))
			return gs_error_set(err, -EINVAL, "pclntab: truncated header");
		t->nfiles = rd_word(data + HDR_MAGIC_LEN + t->ptrsize, t->ptrsize);
		if (t->format != GS_PCLNTAB_GO116)
			t->header_text_start = rd_word(data + HDR_MAGIC_LEN + 2 * t->ptrsize,
						       t->ptrsize);
		if (subtable(t, base, &t->funcnametab, &t->funcnametab_size) < 0 ||
		    subtable(t, base + 1, &t->cutab, &t->cutab_size) < 0 ||
		    subtable(t, base + 2, &t->filetab, &t->filetab_size) < 0 ||
		    subtable(t, base + 3, &t->pctab, &t->pctab_size) < 0 ||
		    subtable(t, base + 4, &t->functab, &t->functab_size) < 0)
			return gs_error_set(err, -EINVAL, "pclntab: table offset past end");
		if (t->format == GS_PCLNTAB_GO116) {
			t->field_size = t->ptrsize;
			t->func_size = t->ptrsize + 9 * 4; /* entry + 8 u32 + 4 bytes */
		} else {
			t->field_size = 4;
			t->func_size = t->format == GS_PCLNTAB_GO120 ? 44 : 40;
		}
		if (t->nfunc > t->functab_size / (2ULL * t->field_size))
			return gs_error_set(err, -EINVAL, "pclntab: function count %llu too large",
					    (unsigned long long)t->nfunc);
		need = (2 * t->nfunc + 1) * t->field_size;
		if (need > t->functab_size)
			return gs_error_set(err, -EINVAL, "pclntab: functab past end of table");
		break;
	}
	default:
		break;
	}
	if (t->nfunc == 0)
		return gs_error_set(err, -EINVAL, "pclntab: no functions");
	t->text_start = t->header_text_start;
	return 0;
}

/* Entry address stored in functab slot i (0 <= i <= nfunc; nfunc is the end marker). */
static uint64_t functab_entry(const struct gs_pclntab *t, uint64_t i)
{
	const uint8_t *p = t->functab + i * 2 * t->field_size;

	if (t->field_size == 4 && (t->format == GS_PCLNTAB_GO118 || t->format == GS_PCLNTAB_GO120))
		return t->text_start + gs_rd32(p);
	return rd_word(p, t->field_size);
}

int gs_pclntab_func_at(const struct gs_pclntab *t, uint64_t idx, struct gs_func *f,
		       struct gs_error *err)
{
	uint64_t funcoff;
	const uint8_t *base;
	uint64_t base_size;

	if (idx >= t->nfunc)
		return gs_error_set(err, -ENOENT, "pclntab: function index out of range");
	funcoff = rd_word(t->functab + idx * 2 * t->field_size + t->field_size, t->field_size);
	if (t->format == GS_PCLNTAB_GO12) {
		base = t->data;
		base_size = t->size;
	} else {
		base = t->functab;
		base_size = t->functab_size;
	}
	if (!in_range(funcoff, t->func_size, base_size))
		return gs_error_set(err, -EINVAL, "pclntab: _func record %llu out of range",
				    (unsigned long long)idx);
	f->rec = base + funcoff;
	f->rec_avail = base_size - funcoff;
	f->entry = functab_entry(t, idx);
	f->end = functab_entry(t, idx + 1);
	f->index = idx;
	if (f->end < f->entry)
		return gs_error_set(err, -EINVAL, "pclntab: functab not sorted at %llu",
				    (unsigned long long)idx);
	/* The record repeats its entry; a mismatch means the table is corrupt. */
	if (t->field_size == 4 ? gs_rd32(f->rec) != (uint32_t)(f->entry - t->text_start)
			       : rd_word(f->rec, t->ptrsize) != f->entry)
		return gs_error_set(err, -EINVAL, "pclntab: _func entry mismatch at %llu",
				    (unsigned long long)idx);
	return 0;
}

/* Index of the last function whose entry is <= pc, searching [lo, hi) (entry(lo) <= pc <
 * entry(hi) must hold). */
static uint64_t search_func(const struct gs_pclntab *t, uint64_t pc, uint64_t lo, uint64_t hi)
{
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (functab_entry(t, mid) <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Function covering the first byte of bucket b (see PCINDEX_BUCKET_SHIFT), computed once. */
static uint64_t bucket_func(const struct gs_pclntab *t, uint32_t *buckets, uint64_t nbuckets,
			    uint64_t b, uint64_t first)
{
	uint32_t v;
	uint64_t idx;

	if (b >= nbuckets)
		return t->nfunc - 1;
	v = __atomic_load_n(&buckets[b], __ATOMIC_RELAXED);
	if (v)
		return v - 1;
	idx = search_func(t, first + (b << PCINDEX_BUCKET_SHIFT), 0, t->nfunc);
	__atomic_store_n(&buckets[b], (uint32_t)idx + 1, __ATOMIC_RELAXED);
	return idx;
}

int gs_pclntab_find_func(const struct gs_pclntab *t, uint64_t pc, struct gs_func *f,
			 struct gs_error *err)
{
	uint64_t lo = 0, hi = t->nfunc, first = functab_entry(t, 0), nbuckets;
	uint32_t *buckets;

	if (pc < first || pc >= functab_entry(t, t->nfunc))
		return -ENOENT;
	/* Narrow the binary search to the functions of pc's bucket of text. */
	buckets = t->pcindex ? gs_pcindex_buckets(t->pcindex, &nbuckets) : NULL;
	if (buckets) {
		uint64_t b = (pc - first) >> PCINDEX_BUCKET_SHIFT;
		uint64_t l = bucket_func(t, buckets, nbuckets, b, first);
		uint64_t h = bucket_func(t, buckets, nbuckets, b + 1, first) + 1;

		if (l < h && h <= t->nfunc) {
			lo = l;
			hi = h;
		}
	}
	lo = search_func(t, pc, lo, hi);
	if (gs_pclntab_func_at(t, lo, f, err) < 0)
		return err ? err->code : -EINVAL;
	if (pc < f->entry || pc >= f->end)
		return -ENOENT;
	return 0;
}

/* u32 field n of _func in debug/gosym's numbering (1 = nameOff, ... 9 = startLine). */
uint32_t gs_func_field(const struct gs_pclntab *t, const struct gs_func *f, unsigned n)
{
	uint64_t off = t->field_size + (uint64_t)(n - 1) * 4;

	if (off + 4 > t->func_size)
		return 0;
	return gs_rd32(f->rec + off);
}

#define FIELD_NAMEOFF 1
#define FIELD_PCSP 4
#define FIELD_PCFILE 5
#define FIELD_PCLN 6
#define FIELD_NPCDATA 7
#define FIELD_CUOFFSET 8
#define FIELD_STARTLINE 9

const char *gs_pclntab_name_at(const struct gs_pclntab *t, int32_t nameoff)
{
	if (nameoff < 0)
		return NULL;
	return cstr_tab(t, PCINDEX_STR_FUNCNAME, t->funcnametab, t->funcnametab_size,
			(uint64_t)nameoff);
}

const char *gs_pclntab_func_name(const struct gs_pclntab *t, const struct gs_func *f)
{
	return gs_pclntab_name_at(t, (int32_t)gs_func_field(t, f, FIELD_NAMEOFF));
}

int32_t gs_pclntab_start_line(const struct gs_pclntab *t, const struct gs_func *f)
{
	if (t->format != GS_PCLNTAB_GO120)
		return 0;
	return (int32_t)gs_func_field(t, f, FIELD_STARTLINE);
}

/* Offsets of the u8 fields funcID and nfuncdata in the fixed part of _func. */
static unsigned funcid_off(const struct gs_pclntab *t)
{
	return t->func_size - 4;
}

static uint8_t func_nfuncdata(const struct gs_pclntab *t, const struct gs_func *f)
{
	return f->rec[t->func_size - 1];
}

/* Decodes one uvarint at *pp: the one- and two-byte forms (nearly all of a pcvalue table)
 * inline, the rest through gs_uvarint. false on a bad or truncated varint. */
static inline bool pc_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	size_t n;

	if (p < end && *p < 0x80) {
		*out = *p;
		*pp = p + 1;
		return true;
	}
	if (end - p >= 2 && p[1] < 0x80) {
		*out = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		*pp = p + 2;
		return true;
	}
	n = gs_uvarint(p, end, out);
	*pp = p + n;
	return n != 0;
}

/* One entry of a pcvalue table (as runtime.step): advances *p, *pc and *v. 1 when an entry
 * was decoded, 0 at the end of the table (or past pctab), -1 on a bad varint. */
static inline int pcvalue_step(const struct gs_pclntab *t, const uint8_t **pp, const uint8_t *end,
			       uint64_t entry, uint64_t *pc, int32_t *v)
{
	const uint8_t *p = *pp;
	uint64_t uv, pcdelta;

	if (p >= end || (*p == 0 && *pc != entry))
		return 0; /* a zero value delta past the first entry ends the table */
	if (!pc_uvarint(&p, end, &uv))
		return -1;
	uint32_t u32 = (uint32_t)uv;
	/* int32 arithmetic wraps in Go; here it must not overflow (UB) on corrupt tables. */
	*v = (int32_t)((uint32_t)*v + (-(u32 & 1) ^ (u32 >> 1)));
	if (!pc_uvarint(&p, end, &pcdelta))
		return -1;
	*pc += (uint64_t)(uint32_t)((uint32_t)pcdelta * t->quantum);
	*pp = p;
	return 1;
}

/* Records a checkpoint every PCINDEX_INTERVAL entries of the table at off (see pcindex.c)
 * and publishes them; gives up silently when the budget is spent or the table is bad. */
static void pcvalue_index(const struct gs_pclntab *t, const struct gs_func *f, uint32_t off)
{
	const uint8_t *p = t->pctab + off, *end = t->pctab + t->pctab_size;
	uint64_t pc = f->entry, entries = 0, n;
	struct pcindex_table *tab;
	int32_t v = -1;
	int rc;

	if (t->pctab_size > UINT32_MAX)
		return;
	while ((rc = pcvalue_step(t, &p, end, f->entry, &pc, &v)) == 1)
		entries++;
	n = entries / PCINDEX_INTERVAL;
	if (rc < 0 || n == 0 || n > UINT32_MAX || pc - f->entry > UINT32_MAX ||
	    !gs_pcindex_reserve(t->pcindex, pcindex_table_size(n)) ||
	    !(tab = malloc(pcindex_table_size(n))))
		return;
	tab->off = off;
	tab->n = (uint32_t)n;
	p = t->pctab + off;
	pc = f->entry;
	v = -1;
	for (uint64_t i = 1, k = 0; i <= entries; i++) {
		pcvalue_step(t, &p, end, f->entry, &pc, &v);
		if (i % PCINDEX_INTERVAL == 0 && k < n) {
			tab->cp[k++] = (struct pcindex_cp){
				.pc_off = (uint32_t)(pc - f->entry),
				.p_off = (uint32_t)(p - t->pctab),
				.val = v,
			};
		}
	}
	gs_pcindex_put(t->pcindex, f->index, tab);
}

/* How many checkpoints of ix lie at or below want (pc offsets are increasing). */
static uint32_t checkpoints_at_or_below(const struct pcindex_view *ix, uint64_t want)
{
	const struct pcindex_cp *cp = ix->cp;
	uint32_t n = ix->n, lo, hi, i;

	if (want >= ix->last)
		return n;
	/* Guess by interpolation, then scan a little; a skewed table falls back to bisection
	 * between the bounds the scan found. Invariant: cp[lo-1] <= want < cp[hi]. */
	i = (uint32_t)((want * n) / ((uint64_t)ix->last + 1));
	lo = 0;
	hi = n - 1;
	for (int step = 0; step < PCINDEX_SCAN_STEPS; step++) {
		if (cp[i].pc_off <= want) {
			lo = i + 1;
			if (cp[i + 1].pc_off > want) /* i + 1 <= n - 1: cp[n - 1] > want */
				return lo;
			i++;
		} else {
			hi = i;
			if (i == 0 || cp[i - 1].pc_off <= want)
				return i;
			i--;
		}
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (cp[mid].pc_off <= want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int gs_pclntab_pcvalue(const struct gs_pclntab *t, const struct gs_func *f, uint32_t off,
		       uint64_t target, int32_t *val)
{
	const uint8_t *p, *end;
	struct pcindex_view view;
	bool ix;
	uint64_t pc = f->entry;
	int32_t v = -1;
	unsigned steps = 0;
	int rc;

	if (off == 0 || off >= t->pctab_size)
		return -ENOENT;
	p = t->pctab + off;
	end = t->pctab + t->pctab_size;
	ix = t->pcindex && target >= f->entry && gs_pcindex_get(t->pcindex, f->index, off, &view);
	if (ix) {
		/* Resume after the last checkpoint at or below target. */
		uint32_t k = checkpoints_at_or_below(&view, target - f->entry);

		if (k > 0) {
			p = t->pctab + view.cp[k - 1].p_off;
			pc = f->entry + view.cp[k - 1].pc_off;
			v = view.cp[k - 1].val;
		}
	}
	while ((rc = pcvalue_step(t, &p, end, f->entry, &pc, &v)) == 1) {
		steps++;
		if (target < pc) {
			*val = v;
			if (!ix && t->pcindex && steps >= PCINDEX_MIN_STEPS &&
			    gs_pcindex_mark(t->pcindex, f->index, off))
				pcvalue_index(t, f, off);
			return 0;
		}
	}
	return -ENOENT; /* a bad varint, or the table ended without covering target */
}

int gs_pclntab_pcdata(const struct gs_pclntab *t, const struct gs_func *f, unsigned table,
		      uint64_t target, int32_t *val)
{
	uint32_t npcdata = gs_func_field(t, f, FIELD_NPCDATA);
	uint64_t off = t->func_size + (uint64_t)table * 4;

	if (table >= npcdata || !in_range(off, 4, f->rec_avail))
		return -ENOENT;
	return gs_pclntab_pcvalue(t, f, gs_rd32(f->rec + off), target, val);
}

/* Readable bytes of funcdata `index` of f, located through gofunc (1.18+) or an absolute
 * pointer (older); NULL when absent or unreadable. */
static const uint8_t *funcdata(const struct gs_pclntab *t, const struct gs_func *f,
			       unsigned index, uint64_t *avail)
{
	uint32_t npcdata = gs_func_field(t, f, FIELD_NPCDATA);
	uint64_t off = t->func_size + (uint64_t)npcdata * 4, addr;

	if (!t->elf || index >= func_nfuncdata(t, f))
		return NULL;
	if (t->field_size == 4) {
		uint32_t rel;

		off += (uint64_t)index * 4;
		if (!in_range(off, 4, f->rec_avail) || !t->gofunc)
			return NULL;
		rel = gs_rd32(f->rec + off);
		if (rel == FUNCDATA_ABSENT_GO118)
			return NULL;
		addr = t->gofunc + rel;
		if (t->gofunc_seg && addr >= t->gofunc_seg_vaddr &&
		    addr - t->gofunc_seg_vaddr < t->gofunc_seg_size) {
			*avail = t->gofunc_seg_size - (addr - t->gofunc_seg_vaddr);
			return t->gofunc_seg + (addr - t->gofunc_seg_vaddr);
		}
	} else {
		off = (off + t->ptrsize - 1) & ~((uint64_t)t->ptrsize - 1);
		off += (uint64_t)index * t->ptrsize;
		if (!in_range(off, t->ptrsize, f->rec_avail))
			return NULL;
		addr = rd_word(f->rec + off, t->ptrsize);
		if (addr == 0)
			return NULL;
	}
	*avail = gs_elf_vaddr_avail(t->elf, addr);
	if (*avail == 0)
		return NULL;
	return gs_elf_vaddr_bytes(t->elf, addr, *avail);
}

const char *gs_pclntab_file(const struct gs_pclntab *t, const struct gs_func *f, int32_t fileno)
{
	if (fileno < 0)
		return NULL;
	if (t->format == GS_PCLNTAB_GO12) {
		uint64_t off = 4ULL * (uint64_t)fileno;

		if (fileno == 0 || (uint64_t)fileno >= t->nfiles || !in_range(off, 4, t->filetab_size))
			return NULL;
		return cstr(t->data, t->size, gs_rd32(t->filetab + off));
	} else {
		uint64_t idx = (uint64_t)gs_func_field(t, f, FIELD_CUOFFSET) + (uint64_t)fileno;
		uint32_t foff;

		if (!in_range(idx * 4, 4, t->cutab_size))
			return NULL;
		foff = gs_rd32(t->cutab + idx * 4);
		if (foff == CUTAB_FILE_MISSING)
			return NULL;
		return cstr_tab(t, PCINDEX_STR_FILE, t->filetab, t->filetab_size, foff);
	}
}

/* Go prints generic functions with their shape arguments elided ("pkg.F[...]"), as
 * runtime.funcNameForPrint does; raw stays the stored name. */
static void set_function(struct gs_frame *fr, const char *raw)
{
	const char *open = raw ? strchr(raw, '[') : NULL;
	const char *close = raw ? strrchr(raw, ']') : NULL;

	fr->raw_function = raw ? raw : "?";
	fr->function = fr->raw_function;
	if (open && close && close > open) {
		size_t head = (size_t)(open - raw), tail = strlen(close + 1);

		if (head + 5 + tail < sizeof(fr->namebuf)) {
			memcpy(fr->namebuf, raw, head);
			memcpy(fr->namebuf + head, "[...]", 5);
			memcpy(fr->namebuf + head + 5, close + 1, tail + 1);
			fr->function = fr->namebuf;
		}
	}
	fr->function_len = strlen(fr->function);
}

/* Function-name facts kept per function (gs_pcindex_name_meta): the name was found
 * NUL-terminated inside funcnametab and has no type arguments to elide, and its length. */
#define NAME_META_PLAIN (1u << 31)
#define NAME_META_LEN_MASK 0x7fffffffu

/* set_function for f's own name: after the first time, a plain name is neither scanned nor
 * even read (a cache miss per lookup otherwise). */
static void set_outer_function(const struct gs_pclntab *t, const struct gs_func *f,
			       struct gs_frame *fr)
{
	uint32_t *meta = t->pcindex ? gs_pcindex_name_meta(t->pcindex, f->index) : NULL;
	uint32_t m = meta ? __atomic_load_n(meta, __ATOMIC_RELAXED) : 0;
	const char *raw;

	if (m & NAME_META_PLAIN) {
		raw = (const char *)t->funcnametab + gs_func_field(t, f, FIELD_NAMEOFF);
		fr->raw_function = fr->function = raw;
		fr->function_len = m & NAME_META_LEN_MASK;
		return;
	}
	raw = gs_pclntab_func_name(t, f);
	set_function(fr, raw);
	if (meta && raw && fr->function == raw && fr->function_len <= NAME_META_LEN_MASK)
		__atomic_store_n(meta, NAME_META_PLAIN | (uint32_t)fr->function_len,
				 __ATOMIC_RELAXED);
}

static void position_at(const struct gs_pclntab *t, const struct gs_func *f, uint64_t pc,
			struct gs_frame *fr)
{
	int32_t fileno, line;
	const char *file = NULL;

	if (gs_pclntab_pcvalue(t, f, gs_func_field(t, f, FIELD_PCFILE), pc, &fileno) == 0)
		file = gs_pclntab_file(t, f, fileno);
	fr->file = file ? file : "?";
	fr->raw_file = file ? file : "";
	fr->line = 0;
	fr->raw_line = -1;
	if (gs_pclntab_pcvalue(t, f, gs_func_field(t, f, FIELD_PCLN), pc, &line) == 0) {
		fr->raw_line = line;
		if (line > 0)
			fr->line = line;
	}
	/* The runtime (funcline1) reports neither when either is missing. */
	if (!file || fr->raw_line < 0) {
		fr->file = "?";
		fr->line = 0;
	}
}

int gs_pclntab_frames(const struct gs_pclntab *t, uint64_t pc, bool inlines,
		      struct gs_frame *frames, int max, struct gs_error *err)
{
	const uint8_t *tree = NULL;
	uint64_t tree_avail = 0;
	unsigned call_size = t->format == GS_PCLNTAB_GO120 ? INLCALL_SIZE_GO120 : INLCALL_SIZE_GO118;
	struct gs_func f;
	uint64_t cur = pc;
	int n = 0, rc;
	int32_t ix = -1;

	if (max <= 0)
		return 0;
	rc = gs_pclntab_find_func(t, pc, &f, err);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (inlines && t->format != GS_PCLNTAB_GO12 &&
	    gs_pclntab_pcdata(t, &f, PCDATA_INL_TREE_INDEX, pc, &ix) == 0 && ix >= 0)
		tree = funcdata(t, &f, FUNCDATA_INL_TREE, &tree_avail);
	/* Inline frames, innermost first: each inlinedCall names the inlined function and the
	 * parentPc of an instruction whose position is the call site in the caller. */
	for (int depth = 0; tree && ix >= 0; depth++) {
		const uint8_t *call;
		int32_t nameoff, parent_pc, start_line = 0;
		uint8_t funcid;

		if (depth >= PCLNTAB_MAX_INLINE_DEPTH)
			return gs_error_set(err, -ELOOP, "pclntab: inline tree too deep (cycle?)");
		if (!in_range((uint64_t)ix * call_size, call_size, tree_avail))
			return gs_error_set(err, -EINVAL, "pclntab: inline index %d out of range", ix);
		call = tree + (uint64_t)ix * call_size;
		if (call_size == INLCALL_SIZE_GO120) {
			funcid = call[0];
			nameoff = (int32_t)gs_rd32(call + 4);
			parent_pc = (int32_t)gs_rd32(call + 8);
			start_line = (int32_t)gs_rd32(call + 12);
		} else {
			funcid = call[2];
			nameoff = (int32_t)gs_rd32(call + 12);
			parent_pc = (int32_t)gs_rd32(call + 16);
		}
		if (parent_pc < 0 || f.entry + (uint64_t)parent_pc >= f.end)
			return gs_error_set(err, -EINVAL, "pclntab: inline parentPc out of range");
		/* runtime.CallersFrames drops inlined wrapper frames (elideWrapperCalling). */
		if (!(t->wrapper_funcid >= 0 && funcid == t->wrapper_funcid && n > 0)) {
			if (n < max) {
				struct gs_frame *fr = &frames[n++];

				set_function(fr, gs_pclntab_name_at(t, nameoff));
				position_at(t, &f, cur, fr);
				fr->start_line = start_line;
				fr->entry = f.entry;
				fr->inlined = true;
				fr->go = true;
				fr->wrapper = false;
			}
		}
		cur = f.entry + (uint64_t)parent_pc;
		if (gs_pclntab_pcdata(t, &f, PCDATA_INL_TREE_INDEX, cur, &ix) < 0)
			ix = -1;
	}
	/* The real function too, unless it is a wrapper that had inlined frames (the runtime
	 * elides autogenerated wrappers such as method-value and go-statement wrappers). */
	bool wrapper = t->wrapper_funcid >= 0 && f.rec[funcid_off(t)] == (uint8_t)t->wrapper_funcid;

	if (n < max && !(n > 0 && wrapper)) {
		struct gs_frame *fr = &frames[n++];

		set_outer_function(t, &f, fr);
		position_at(t, &f, cur, fr);
		fr->start_line = gs_pclntab_start_line(t, &f);
		fr->entry = f.entry;
		fr->inlined = false;
		fr->go = true;
		fr->wrapper = wrapper;
	}
	return n;
}
