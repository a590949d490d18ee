/* pcindex.h — a lazily built skip index over long pcvalue tables (see pcindex.c). */
#ifndef GOSCOPE_SYMBOLIZER_PCINDEX_H
#define GOSCOPE_SYMBOLIZER_PCINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A walk that decodes this many entries is long (see gs_pcindex_mark). */
#define PCINDEX_MIN_STEPS 24
/* One checkpoint every this many entries: an indexed lookup decodes fewer than this many. */
#define PCINDEX_INTERVAL 8
/* Checkpoints scanned from the interpolation guess before bisecting. */
#define PCINDEX_SCAN_STEPS 4
/* Checkpoint bytes per binary; past it, lookups walk from the table's start as before. */
#define PCINDEX_MAX_BYTES (16u << 20)

/* Checkpoint k is the decoder's state right after entry (k + 1) * PCINDEX_INTERVAL: that
 * entry covers pcs below entry + pc_off; the next entry starts at pctab offset p_off and
 * the value is val. Finding the checkpoint is an interpolation guess (code offsets grow
 * about linearly with entries) and a short scan, so it costs a cache miss or two, and the
 * state is on the same line as the offset that found it. */
struct pcindex_cp {
	uint32_t pc_off;
	uint32_t p_off;
	int32_t val;
};

struct pcindex_table {
	uint32_t off; /* the table's offset in pctab */
	uint32_t n;
	struct pcindex_cp cp[]; /* n, increasing pc_off */
};

static inline size_t pcindex_table_size(uint64_t n)
{
	return sizeof(struct pcindex_table) + n * sizeof(struct pcindex_cp);
}

/* Function lookup: text is cut into buckets of 1 << PCINDEX_BUCKET_SHIFT bytes, and the
 * function covering each bucket's first byte is remembered once looked up, so finding a PC's
 * function is a binary search over the few functions of one bucket (as the runtime's
 * findfunctab does), not over all of them. */
#define PCINDEX_BUCKET_SHIFT 11
/* Text larger than this gets no buckets (a crafted functab could claim any range). */
#define PCINDEX_MAX_BUCKETS (1u << 20)

struct gs_pcindex;

/* String tables: a bit per byte offset says "a NUL-terminated string starts here inside the
 * table", set after the first bounds-checked scan, so a name is scanned once, not per lookup
 * (the scan is a cache miss on every name a lookup returns). */
enum pcindex_strtab { PCINDEX_STR_FUNCNAME, PCINDEX_STR_FILE, PCINDEX_NSTRTABS };
/* String tables larger than this get no bitmap. */
#define PCINDEX_MAX_STRTAB_BYTES (256u << 20)

/* Index for a pclntab of nfunc functions whose text spans text_size bytes, with string tables
 * of the given sizes; NULL when out of memory (lookups then walk, search and scan as without
 * it). */
struct gs_pcindex *gs_pcindex_new(uint64_t nfunc, uint64_t text_size, uint64_t funcnametab_size,
				  uint64_t filetab_size);
/* The bitmap of string table which (atomic bytes) and its length in bits; NULL when none. */
uint8_t *gs_pcindex_strmap(const struct gs_pcindex *ix, enum pcindex_strtab which,
			   uint64_t *nbits);
/* The bucket array (entries: function index + 1, 0 = not looked up yet; atomic) and its
 * length; NULL when the text was too large. */
uint32_t *gs_pcindex_buckets(struct gs_pcindex *ix, uint64_t *n);
void gs_pcindex_free(struct gs_pcindex *ix);
/* What a lookup needs of an indexed table: its checkpoints, their count and the last one's
 * pc offset (for the interpolation guess). */
struct pcindex_view {
	const struct pcindex_cp *cp;
	uint32_t n;
	uint32_t last;
};

/* The published index of function func's table at off: true and *view. Lock-free; safe
 * with concurrent puts. */
bool gs_pcindex_get(const struct gs_pcindex *ix, uint64_t func, uint32_t off,
		    struct pcindex_view *view);
/* Room for bytes more in the byte budget? Reserves them when so. */
int gs_pcindex_reserve(struct gs_pcindex *ix, size_t bytes);
/* Notes a long walk through function func's table at off: 1 when one was noted before (time
 * to index it), else 0. Indexing on the second long walk, not the first, keeps one-off
 * lookups (a single address, the first lookup after open) from reading whole tables. */
int gs_pcindex_mark(struct gs_pcindex *ix, uint64_t func, uint32_t off);
/* Publishes tab (allocated with malloc, its bytes reserved) for function func's marked table
 * tab->off; takes ownership: frees it when another thread published it first. */
void gs_pcindex_put(struct gs_pcindex *ix, uint64_t func, struct pcindex_table *tab);
/* What is known of function func's name, for lookups that need not read it again (atomic;
 * 0 = nothing yet; the meaning belongs to the caller), creating the function's entry when
 * needed; NULL when there is no room. */
uint32_t *gs_pcindex_name_meta(struct gs_pcindex *ix, uint64_t func);
/* Heap bytes the index holds now: its arrays and what lookups reserved so far (the large
 * arrays are counted whole, though only their touched pages cost memory). 0 for NULL. */
size_t gs_pcindex_bytes(const struct gs_pcindex *ix);
/* Tables indexed so far (for tests and statistics). */
size_t gs_pcindex_tables(const struct gs_pcindex *ix);

#endif
