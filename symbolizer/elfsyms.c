/* elfsyms.c — symbol tables read through the bounds-checked ELF reader (one code path that
 * the fuzzer covers, rather than a second parser). */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "elfsyms.h"

/* The next symbol table section after *idx (all .symtab sections first, then .dynsym), with
 * its string table: 0, or -ENOENT when there is none left. Start with *idx = 0. */
static int next_symtab(const struct gs_elf *elf, unsigned *idx, struct gs_elf_section *sym,
		       struct gs_elf_section *str)
{
	static const uint32_t kinds[] = {SHT_SYMTAB, SHT_DYNSYM};

	for (; *idx < 2u * elf->shnum; (*idx)++) {
		unsigned i = *idx % elf->shnum;

		if (gs_elf_section(elf, i, sym) < 0 || sym->type != kinds[*idx / elf->shnum] ||
		    !sym->data || sym->entsize != sizeof(Elf64_Sym))
			continue;
		if (gs_elf_section(elf, sym->link, str) < 0 || !str->data || str->size == 0)
			continue;
		(*idx)++;
		return 0;
	}
	return -ENOENT;
}

static const char *sym_name(const struct gs_elf_section *str, uint32_t off)
{
	if (off >= str->size || !memchr(str->data + off, '\0', str->size - off))
		return NULL;
	return (const char *)str->data + off;
}

int gs_elf_symbol(const struct gs_elf *elf, const char *name, uint64_t *value, uint64_t *size)
{
	struct gs_elf_section sym, str;

	for (unsigned idx = 0; next_symtab(elf, &idx, &sym, &str) == 0;) {
		for (uint64_t j = 0; j < sym.size / sizeof(Elf64_Sym); j++) {
			const uint8_t *s = sym.data + j * sizeof(Elf64_Sym);
			const char *n = sym_name(&str, gs_rd32(s));

			if (n && strcmp(n, name) == 0) {
				*value = gs_rd64(s + offsetof(Elf64_Sym, st_value));
				if (size)
					*size = gs_rd64(s + offsetof(Elf64_Sym, st_size));
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* Whether name marks the bounds of the text section rather than naming code: left out of
 * the address index, as Go's cmd/internal/objfile drops them (go tool addr2line prints "?"
 * at runtime.etext and past it). */
static bool is_text_marker(const char *name)
{
	static const char *const markers[] = {"runtime.text", "runtime.etext", "text",
					      "etext",	      "_text",	       "_etext"};

	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		if (strcmp(name, markers[i]) == 0)
			return true;
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Gives each function symbol of size 0 (assembly without .size: _init, _fini; labels) a
 * size: up to the next defined symbol of any kind in the table (function, object, section),
 * or its own address only when none follows. A symtab symbol of size 0 would otherwise cover
 * every later address (issue 11: 0xffffffffffffffff gave the last one, runtime.etext).
 * Only the first symbol at an address is looked up; it is the sized one when there is one
 * (gs_symtab_sort), so only first-at-their-address symbols are given a size, which keeps the
 * sort order. Without memory for the bounds, they cover their own address only. */
static void bound_unsized(const struct gs_elf_section *sym, struct gs_symtab *t)
{
	uint64_t count = sym->size / sizeof(Elf64_Sym), n = 0;
	uint64_t *addrs = malloc((count ? count : 1) * sizeof(*addrs));

	for (uint64_t j = 0; addrs && j < count; j++) {
		const uint8_t *s = sym->data + j * sizeof(Elf64_Sym);
		uint16_t shndx = gs_rd16(s + offsetof(Elf64_Sym, st_shndx));
		uint64_t value = gs_rd64(s + offsetof(Elf64_Sym, st_value));

		if (value && shndx != SHN_UNDEF && shndx < SHN_LORESERVE)
			addrs[n++] = value;
	}
	if (addrs)
		qsort(addrs, n, sizeof(*addrs), cmp_u64);
	for (size_t i = 0; i < t->n; i++) {
		struct gs_sym *e = &t->syms[i];
		uint64_t lo = 0, hi = n;

		if (e->size || (i > 0 && e[-1].addr == e->addr))
			continue;
		while (addrs && lo < hi) { /* the first address above e->addr */
			uint64_t mid = lo + (hi - lo) / 2;

			if (addrs[mid] <= e->addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		e->size = addrs && lo < n ? addrs[lo] - e->addr : 1;
	}
	free(addrs);
}

int gs_elfsyms_load(const struct gs_elf *elf, struct gs_symtab *out, struct gs_error *err)
{
	struct gs_elf_section sym, str;
	unsigned idx = 0;
	uint64_t count;

	memset(out, 0, sizeof(*out));
	if (next_symtab(elf, &idx, &sym, &str) < 0)
		return 0; /* no symbols is not an error */
	count = sym.size / sizeof(Elf64_Sym);
	if (gs_symtab_reserve(out, count ? count : 1) < 0)
		return gs_error_set(err, -ENOMEM, "out of memory for %llu symbols",
				    (unsigned long long)count);
	for (uint64_t j = 0; j < count; j++) {
		const uint8_t *s = sym.data + j * sizeof(Elf64_Sym);
		uint8_t info = s[offsetof(Elf64_Sym, st_info)];
		uint16_t shndx = gs_rd16(s + offsetof(Elf64_Sym, st_shndx));
		uint64_t value = gs_rd64(s + offsetof(Elf64_Sym, st_value));
		const char *name = sym_name(&str, gs_rd32(s));

		if (!name || !*name || shndx == SHN_UNDEF || value == 0)
			continue;
		if (ELF64_ST_TYPE(info) != STT_FUNC && ELF64_ST_TYPE(info) != STT_GNU_IFUNC)
			continue;
		if (is_text_marker(name))
			continue;
		/* Cannot fail: room for count was reserved. */
		gs_symtab_add(out, value, gs_rd64(s + offsetof(Elf64_Sym, st_size)), name);
	}
	gs_symtab_sort(out);
	bound_unsized(&sym, out);
	return 0;
}
