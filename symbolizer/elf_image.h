/* elf_image.h — a small bounds-checked ELF64 reader over a read-only memory image (usually an mmap).
 *
 * Binaries of profiled containers are untrusted input to a root process, so every accessor
 * validates offsets and sizes against the image and returns an error instead of reading past
 * it. Only little-endian ELF64 is supported (x86-64, arm64). */
#ifndef GOSCOPE_SYMBOLIZER_ELF_IMAGE_H
#define GOSCOPE_SYMBOLIZER_ELF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

/* Most program headers accepted (real binaries have about a dozen). */
#define GS_ELF_MAX_PHDRS 256

struct gs_elf {
	const uint8_t *data; /* the whole file */
	size_t size;
	void *map; /* non-NULL when the image is an mmap owned by this struct */
	size_t map_size;
	int guard; /* the map's mapguard handle (> 0), 0 for a caller's memory image */
	uint16_t type; /* ET_EXEC, ET_DYN, ... */
	uint16_t machine;
	uint64_t entry;
	const uint8_t *phdrs; /* validated: phnum * sizeof(Elf64_Phdr) bytes inside the image */
	uint16_t phnum;
	const uint8_t *shdrs; /* validated likewise; NULL when there are no section headers */
	uint16_t shnum;
	const uint8_t *shstrtab; /* section name strings, NULL if missing or out of range */
	uint64_t shstrtab_size;
};

struct gs_elf_section {
	const char *name; /* "" when the name is out of range */
	uint32_t type;
	uint64_t flags;
	uint64_t addr;
	uint64_t offset;
	uint64_t size;
	uint32_t link;
	uint64_t entsize;
	const uint8_t *data; /* size bytes inside the image, or NULL (SHT_NOBITS, out of file) */
};

struct gs_elf_segment {
	uint32_t type;
	uint32_t flags;
	uint64_t offset;
	uint64_t vaddr;
	uint64_t filesz;
	uint64_t memsz;
	const uint8_t *data; /* filesz bytes inside the image, or NULL when out of range */
};

int gs_elf_open_mem(struct gs_elf *elf, const void *data, size_t size, struct gs_error *err);
/* Maps the file read-only (private) and parses it; the fd may be closed afterwards. The map
 * is guarded (mapguard.h): when the file shrinks, reads past its new end give zeroes instead
 * of SIGBUS and gs_elf_changed becomes true; -EIO when that happened while parsing. */
int gs_elf_open_fd(struct gs_elf *elf, int fd, struct gs_error *err);
int gs_elf_open_path(struct gs_elf *elf, const char *path, struct gs_error *err);
void gs_elf_close(struct gs_elf *elf);
/* Whether the mapped file shrank under a read since it was opened: anything read from the
 * image may be zeroes, and every result computed from it must be dropped. Never true for a
 * memory image. */
bool gs_elf_changed(const struct gs_elf *elf);

int gs_elf_section(const struct gs_elf *elf, unsigned idx, struct gs_elf_section *out);
/* -ENOENT when there is no section of that name. */
int gs_elf_find_section(const struct gs_elf *elf, const char *name, struct gs_elf_section *out);
int gs_elf_segment(const struct gs_elf *elf, unsigned idx, struct gs_elf_segment *out);

/* The one walk over PT_LOAD segments: the next one at or after program header *idx (which it
 * advances past it), 0 and *out, or -ENOENT when none is left. Start with *idx = 0:
 *	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) ... */
int gs_elf_next_load(const struct gs_elf *elf, unsigned *idx, struct gs_elf_segment *out);
/* File bytes for [vaddr, vaddr+len) when that range lies in the file-backed part of one
 * PT_LOAD segment; NULL otherwise. */
const uint8_t *gs_elf_vaddr_bytes(const struct gs_elf *elf, uint64_t vaddr, uint64_t len);
/* The first PT_LOAD segment whose file-backed part holds vaddr: 0 and *out, or -ENOENT. */
int gs_elf_segment_at(const struct gs_elf *elf, uint64_t vaddr, struct gs_elf_segment *out);
/* The largest n such that [vaddr, vaddr+n) is file-backed in one PT_LOAD segment (0 if none). */
uint64_t gs_elf_vaddr_avail(const struct gs_elf *elf, uint64_t vaddr);

/* Finds the first note with this owner name and type in PT_NOTE segments or SHT_NOTE
 * sections. Returns 0 and the descriptor, or -ENOENT. */
int gs_elf_find_note(const struct gs_elf *elf, const char *owner, uint32_t type,
		     const uint8_t **desc, uint32_t *desc_len);

/* Whether the image has an executable PT_LOAD whose file range includes offset 0 — i.e. the
 * usual shape of an executable; used to compute load bias. Returns the lowest PT_LOAD vaddr
 * minus its offset (page aligned), the link-time address of file offset 0. */
uint64_t gs_elf_base_vaddr(const struct gs_elf *elf);

static inline uint16_t gs_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t gs_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t gs_rd64(const uint8_t *p)
{
	return (uint64_t)gs_rd32(p) | ((uint64_t)gs_rd32(p + 4) << 32);
}

#endif
