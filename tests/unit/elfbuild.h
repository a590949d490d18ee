/* elfbuild.h — builds small little-endian ELF64 images in memory for tests and fuzz seeds.
 *
 * The symbolizer reads untrusted binaries, so tests need ELFs with exactly the sections,
 * segments, notes and symbols a case calls for (and nothing a real linker would add). Data is
 * appended to a growing image; sections and segments then point at it by file offset. The
 * usual layout maps file offset X to address EB_BASE + X, which eb_add_data does for you.
 *
 * Also #included (not linked) by the fuzz targets, hence the include guard in elfbuild.c. */
#ifndef GOSCOPE_TESTS_ELFBUILD_H
#define GOSCOPE_TESTS_ELFBUILD_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#define EB_BASE 0x400000ULL  /* address of file offset 0 in the usual layout */
#define EB_DATA_START 0x1000 /* first data offset: ELF header and room for program headers */
#define EB_MAX_SECTIONS 32
#define EB_MAX_SEGMENTS 16
#define EB_MAX_SHSTR 1024

#define EB_NO_SHDRS 0x1 /* eb_finish: leave out section headers (sstrip-like) */

struct elfb {
	uint8_t *img;
	size_t size, cap;
	uint16_t type;			 /* ET_EXEC by default */
	uint16_t machine;		 /* EM_X86_64 by default */
	Elf64_Shdr sec[EB_MAX_SECTIONS]; /* written out as they are */
	unsigned nsec;			 /* including the null section 0 */
	Elf64_Phdr seg[EB_MAX_SEGMENTS];
	unsigned nseg;
	char shstr[EB_MAX_SHSTR];
	size_t shstr_len;
};

struct eb_sym {
	const char *name;
	uint64_t value;
	uint64_t size;
	uint8_t type;	/* STT_FUNC, STT_OBJECT, ... */
	uint16_t shndx; /* 0 (SHN_UNDEF) makes the symbol undefined */
};

void eb_init(struct elfb *b);
void eb_release(struct elfb *b);
/* Appends size bytes (zeros when data is NULL) at the next offset aligned to align; returns
 * that file offset. */
uint64_t eb_append(struct elfb *b, const void *data, size_t size, size_t align);
/* Pads the image with zeros up to file offset off (no-op when already past it). */
void eb_pad_to(struct elfb *b, uint64_t off);
/* Adds a section header; returns its index. */
unsigned eb_section(struct elfb *b, const char *name, uint32_t type, uint64_t flags, uint64_t addr,
		    uint64_t offset, uint64_t size, uint32_t link, uint64_t entsize);
void eb_segment(struct elfb *b, uint32_t type, uint32_t flags, uint64_t offset, uint64_t vaddr,
		uint64_t filesz, uint64_t memsz);
/* Appends data and adds a section for it at address EB_BASE + offset; returns the address. */
uint64_t eb_add_data(struct elfb *b, const char *name, uint32_t type, uint64_t flags,
		     const void *data, size_t size, size_t align);
/* PT_LOAD covering [addr, end) of the usual layout (file offset = addr - EB_BASE). */
void eb_add_load(struct elfb *b, uint32_t flags, uint64_t addr, uint64_t end);
/* Adds .symtab and .strtab with these symbols (after the null symbol). */
void eb_add_symtab(struct elfb *b, const struct eb_sym *syms, unsigned n);
/* Writes an ELF note (header, padded name, padded desc) into out (cap bytes); returns its
 * length, or 0 when it does not fit. namesz is strlen(owner) + 1 unless namesz_override. */
size_t eb_note(uint8_t *out, size_t cap, const char *owner, uint32_t namesz_override, uint32_t type,
	       const void *desc, uint32_t desc_len);
/* Writes the ELF and program headers (and, unless EB_NO_SHDRS, .shstrtab and the section
 * headers) and hands the image over: the caller frees it. b is left empty. */
uint8_t *eb_finish(struct elfb *b, size_t *size, unsigned opts);

/* Writes v as a Go uvarint (7 bits a byte, low first) at p; returns its length (at most 10). */
size_t eb_put_uvarint(uint8_t *p, uint64_t v);
/* A Go 1.18+ (inline format) .go.buildinfo blob for version and mod_len bytes of modinfo (which
 * may hold NULs, as the real sentinels do) into out; returns its length, 0 if it does not fit. */
size_t eb_buildinfo_inline(uint8_t *out, size_t cap, const char *version, const char *modinfo,
			   size_t mod_len);

#endif
