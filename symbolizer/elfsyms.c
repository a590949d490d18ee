/* elfsyms.c — symbol tables read through the bounds-checked ELF reader (one code path that
 * the fuzzer covers, rather than a second parser). */
#include <elf.h>
#include <errno.h>
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
		/* Cannot fail: room for count was reserved. */
		gs_symtab_add(out, value, gs_rd64(s + offsetof(Elf64_Sym, st_size)), name);
	}
	gs_symtab_sort(out);
	return 0;
}
