/* symtab.h — a sorted address table of named symbols and its one lookup, "the symbol at or
 * before an address": what ELF symbol tables (symbolizer/elfsyms.c) and the kernel's
 * /proc/kallsyms (agent/stacks/kallsyms.c) both need. Part of the symbolizer library.
 *
 * Fill with gs_symtab_add / gs_symtab_add_copy, then gs_symtab_sort once; after that the
 * table is read-only and safe for concurrent lookups. A zeroed struct is an empty table. */
#ifndef GOSCOPE_SYMTAB_H
#define GOSCOPE_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

struct gs_sym {
	uint64_t addr;
	uint64_t size;	  /* 0 when unknown: the symbol then reaches up to the next one */
	const char *name; /* borrowed (gs_symtab_add) or owned by the table (gs_symtab_add_copy) */
};

struct gs_symtab_names;

struct gs_symtab {
	struct gs_sym *syms; /* by address (larger size first among equals) after gs_symtab_sort */
	size_t n;
	size_t cap;
	struct gs_symtab_names *names; /* blocks holding the copied names */
	size_t name_bytes;	       /* bytes allocated for them */
};

/* Makes room for n symbols in all (one allocation when the count is known); -ENOMEM. */
int gs_symtab_reserve(struct gs_symtab *t, size_t n);
/* Appends a symbol whose name the caller keeps alive as long as the table; -ENOMEM. */
int gs_symtab_add(struct gs_symtab *t, uint64_t addr, uint64_t size, const char *name);
/* Appends a symbol with a copy of the len bytes of name (NUL added); -ENOMEM. */
int gs_symtab_add_copy(struct gs_symtab *t, uint64_t addr, uint64_t size, const char *name,
		       size_t len);
/* Sorts by address; among symbols at one address, sized ones (largest first) come first. */
void gs_symtab_sort(struct gs_symtab *t);
/* The symbol that covers addr: the last one starting at or before it (the first of those at
 * that address), or NULL when there is none or addr lies past the end of its known size. */
const struct gs_sym *gs_symtab_lookup(const struct gs_symtab *t, uint64_t addr);
/* Heap bytes the table holds (array and copied names), for cache accounting. */
size_t gs_symtab_bytes(const struct gs_symtab *t);
/* Frees the table and its copied names; leaves it empty. */
void gs_symtab_free(struct gs_symtab *t);

#endif
