/* elfsyms.h — ELF symbol tables (.symtab, else .dynsym): name lookups and a sorted address
 * index of function symbols for code that has no pclntab (cgo, libc, shared objects). */
#ifndef GOSCOPE_SYMBOLIZER_ELFSYMS_H
#define GOSCOPE_SYMBOLIZER_ELFSYMS_H

#include "elf_image.h"
#include "goscope/symtab.h"

/* Builds the address index (gs_symtab_lookup, gs_symtab_free) of the STT_FUNC and
 * STT_GNU_IFUNC symbols; one of size 0 covers up to the next symbol of any kind (or only its
 * address), text markers (runtime.etext) are left out; names point into the image. No symbol table is not an error. */
int gs_elfsyms_load(const struct gs_elf *elf, struct gs_symtab *out, struct gs_error *err);
/* Value and size of the symbol called name in .symtab or .dynsym; -ENOENT. */
int gs_elf_symbol(const struct gs_elf *elf, const char *name, uint64_t *value, uint64_t *size);

#endif
