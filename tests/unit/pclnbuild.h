/* pclnbuild.h — builds small Go pclntabs from a description, in any of the four formats
 * (Go 1.2, 1.16, 1.18, 1.20+), and wraps them in an ELF that looks enough like a Go binary
 * for gs_binary_open_mem. Only Go 1.19+ toolchains are installed here, so this is how the
 * 1.2 and 1.16 decoders get tested against known answers; it also makes fuzz seeds with
 * inline trees, and known-bad tables (cyclic inline trees). */
#ifndef GOSCOPE_TESTS_PCLNBUILD_H
#define GOSCOPE_TESTS_PCLNBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/symbolizer.h"

#define PB_TEXT 0x401000ULL	    /* text start used by pb_elf */
#define PB_TEXT_SIZE 0x1000ULL	    /* functions must end below PB_TEXT + PB_TEXT_SIZE */
#define PB_PCLNTAB_ADDR 0x402000ULL /* pclntab address used by pb_elf (file offset 0x2000) */

/* Position information from pcoff up to the next row (or the end of the function). */
struct pb_row {
	uint32_t pcoff;
	int32_t file; /* index into pb_table.files */
	int32_t line;
	int32_t inl; /* inline tree index, -1 for the function itself */
	int32_t sp;  /* pcsp value */
};

/* One inlinedCall. */
struct pb_inl {
	const char *name;
	int16_t parent; /* 1.16/1.18 layout only */
	uint8_t funcid;
	int32_t file; /* 1.16/1.18 layout: file index of the call site */
	int32_t line; /* 1.16/1.18 layout: line of the call site */
	int32_t parent_pc;
	int32_t start_line; /* 1.20 layout */
};

struct pb_func {
	const char *name;
	uint32_t off;  /* entry - text start */
	uint32_t size; /* bytes */
	int32_t start_line;
	uint8_t funcid;
	const struct pb_row *rows;
	unsigned nrows;
	const struct pb_inl *inl; /* NULL: no inline tree (npcdata = nfuncdata = 0) */
	unsigned ninl;
};

struct pb_table {
	enum gs_pclntab_format format;
	uint64_t text;	      /* text start; absolute entries (1.2, 1.16) are text + off */
	uint64_t addr;	      /* address of the table (1.16 funcdata pointers are absolute) */
	bool zero_text_start; /* write pcHeader.textStart = 0, as Go 1.26+ does */
	const char *const *files;
	unsigned nfiles;
	const struct pb_func *funcs; /* sorted by off */
	unsigned nfuncs;
};

struct pb_out {
	uint8_t *data; /* malloc'd table */
	size_t size;
	uint64_t gofunc_off; /* 1.18+: offset in data of the funcdata area (inline trees) */
	uint64_t functab_off;
	uint64_t funcrec_off[16]; /* offset in data of each function's _func record */
	uint64_t inltree_off[16]; /* offset in data of each function's inline tree (0: none) */
};

/* Builds the table; returns 0 or -1 (bad description). */
int pb_build(const struct pb_table *in, struct pb_out *out);
void pb_free(struct pb_out *out);

struct pb_elf_opts {
	const char *go_version; /* non-NULL: add .go.buildinfo with this version */
	bool moduledata;	/* add a firstmoduledata carrying text and gofunc */
	bool symbols;		/* add runtime.text and go:func.* symbols */
	unsigned eb_flags;	/* EB_NO_SHDRS, ... */
};

/* An ELF with .text, .gopclntab (the table at PB_PCLNTAB_ADDR) and what opts asks for.
 * in->text must be PB_TEXT and in->addr PB_PCLNTAB_ADDR. Returns a malloc'd image. */
uint8_t *pb_elf(const struct pb_table *in, const struct pb_out *pcl, const struct pb_elf_opts *o,
		size_t *size);

/* The test program every format shares: main.main (with main.helper inlined at 0x20..0x30),
 * main.helper and a generic main.G[go.shape.int]. */
void pb_sample(struct pb_table *t, enum gs_pclntab_format format);

#endif
