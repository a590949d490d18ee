/* elfsyms.h — ELF symbol tables (.symtab, else .dynsym): name lookups and a sorted address
 * index of function symbols for code that has no pclntab (cgo, libc, shared objects). */
#ifndef GOSCOPE_SYMBOLIZER_ELFSYMS_H
#define GOSCOPE_SYMBOLIZER_ELFSYMS_H

#include "elf_image.h"

struct gs_elfsym {
	uint64_t addr;
	uint64_t size;
	const char *name; /* points into the image's string table */
};

struct gs_elfsyms {
	struct gs_elfsym *syms; /* sorted by addr */
	size_t n;
};

/* Builds the index of STT_FUNC (and sized STT_NOTYPE text) symbols. */
int gs_elfsyms_load(const struct gs_elf *elf, struct gs_elfsyms *out, struct gs_error *err);
void gs_elfsyms_free(struct gs_elfsyms *s);
/* The symbol covering addr (within its size, or the nearest preceding one when sizes are 0). */
const struct gs_elfsym *gs_elfsyms_lookup(const struct gs_elfsyms *s, uint64_t addr);
/* Value and size of the symbol called name in .symtab or .dynsym; -ENOENT. */
int gs_elf_symbol(const struct gs_elf *elf, const char *name, uint64_t *value, uint64_t *size);

#endif
