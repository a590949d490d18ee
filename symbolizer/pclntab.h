/* pclntab.h — decoder for Go's pclntab (runtime.pcHeader + functab + _func + pcvalue tables +
 * inline trees), every format from Go 1.2 to 1.27. Reads straight from the mapped image; no
 * table is copied. Every access is bounds-checked. */
#ifndef GOSCOPE_SYMBOLIZER_PCLNTAB_H
#define GOSCOPE_SYMBOLIZER_PCLNTAB_H

#include "elf_image.h"
#include "goscope/symbolizer.h"

#define PCLNTAB_MAGIC_GO12 0xfffffffbu
#define PCLNTAB_MAGIC_GO116 0xfffffffau
#define PCLNTAB_MAGIC_GO118 0xfffffff0u
#define PCLNTAB_MAGIC_GO120 0xfffffff1u

/* PCDATA / FUNCDATA indices (runtime/symtab.go, internal/abi/symtab.go; stable since 1.12). */
#define PCDATA_INL_TREE_INDEX 2
#define FUNCDATA_INL_TREE 3

/* Deepest inline chain we follow; Go's inliner stays far below (guards cyclic trees). */
#define PCLNTAB_MAX_INLINE_DEPTH 256

struct gs_pclntab {
	const uint8_t *data; /* from the pcHeader to the end of the table's section/segment */
	uint64_t size;
	uint64_t addr; /* link-time address of data[0] */
	uint32_t magic;
	enum gs_pclntab_format format;
	unsigned quantum;
	unsigned ptrsize;
	uint64_t nfunc;
	uint64_t nfiles;
	uint64_t header_text_start; /* pcHeader.textStart (1.18+; 0 in 1.26+) */
	uint64_t text_start;        /* the text base used for 1.18+ entry offsets */
	const uint8_t *funcnametab;
	uint64_t funcnametab_size;
	const uint8_t *cutab;
	uint64_t cutab_size;
	const uint8_t *filetab;
	uint64_t filetab_size;
	const uint8_t *pctab;
	uint64_t pctab_size;
	const uint8_t *functab; /* functab followed by the _func records ("pclntable") */
	uint64_t functab_size;
	unsigned field_size; /* bytes of one functab word: 4 (1.18+) or ptrsize */
	unsigned func_size;  /* fixed part of _func */
	/* funcdata resolution */
	const struct gs_elf *elf;
	uint64_t gofunc; /* moduledata.gofunc (1.18+), 0 when unknown */
	/* The loaded segment holding gofunc (funcdata lives there), so resolving a funcdata
	 * address needs no search of the program headers; NULL: search them. */
	const uint8_t *gofunc_seg;
	uint64_t gofunc_seg_vaddr, gofunc_seg_size;
	int wrapper_funcid; /* abi.FuncIDWrapper for this Go version, -1 when unknown */
	/* Skip index over long pcvalue tables (pcindex.c); NULL: every lookup walks. Owned by
	 * whoever set it (gs_binary). */
	struct gs_pcindex *pcindex;
};

struct gs_func {
	const uint8_t *rec; /* the _func record, func_size + pcdata/funcdata validated lazily */
	uint64_t rec_avail; /* bytes readable from rec */
	uint64_t entry;
	uint64_t end;
	uint64_t index;
};

/* Validates the header at data (size bytes readable) and fills t. text_start must be set by
 * the caller afterwards for 1.18+ tables (from moduledata); it defaults to the header's. */
int gs_pclntab_parse(struct gs_pclntab *t, const uint8_t *data, uint64_t size, uint64_t addr,
		     struct gs_error *err);
/* Cheap magic + shape check used by scans (no allocation, no error text). */
bool gs_pclntab_looks_valid(const uint8_t *data, uint64_t size);

int gs_pclntab_func_at(const struct gs_pclntab *t, uint64_t idx, struct gs_func *f,
		       struct gs_error *err);
/* 0 and f when a function covers pc; -ENOENT when none; other negatives on corruption. */
int gs_pclntab_find_func(const struct gs_pclntab *t, uint64_t pc, struct gs_func *f,
			 struct gs_error *err);
uint32_t gs_func_field(const struct gs_pclntab *t, const struct gs_func *f, unsigned n);
const char *gs_pclntab_func_name(const struct gs_pclntab *t, const struct gs_func *f);
int32_t gs_pclntab_start_line(const struct gs_pclntab *t, const struct gs_func *f);
/* pcvalue: value of the table at offset off for target pc; -ENOENT when there is no table or
 * it does not cover pc. */
int gs_pclntab_pcvalue(const struct gs_pclntab *t, const struct gs_func *f, uint32_t off,
		       uint64_t target, int32_t *val);
int gs_pclntab_pcdata(const struct gs_pclntab *t, const struct gs_func *f, unsigned table,
		      uint64_t target, int32_t *val);
/* File name for a file number of f (pcfile value or inlinedCall.file); NULL when invalid. */
const char *gs_pclntab_file(const struct gs_pclntab *t, const struct gs_func *f, int32_t fileno);
/* Name at a funcnametab offset (inlinedCall.nameOff); NULL when invalid. */
const char *gs_pclntab_name_at(const struct gs_pclntab *t, int32_t nameoff);
/* Fills frames for pc (already adjusted for return addresses); see gs_binary_symbolize. */
int gs_pclntab_frames(const struct gs_pclntab *t, uint64_t pc, bool inlines,
		      struct gs_frame *frames, int max, struct gs_error *err);

#endif
