/* elfsyms.c — symbol tables read through the bounds-checked ELF reader (one code path that
 * the fuzzer covers, rather than a second parser). */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elfsyms.h"

/* Symbol table section (.symtab preferred) and its string table; -ENOENT when none. */
static int symtab_sections(const struct gs_elf *elf, struct gs_elf_section *sym,
			   struct gs_elf_section *str)
{
	static const uint32_t kinds[] = {SHT_SYMTAB, SHT_DYNSYM};

	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < elf->shnum; i++) {
			if (gs_elf_section(elf, i, sym) < 0 || sym->type != kinds[k] || !sym->data ||
			    sym->entsize != sizeof(Elf64_Sym))
				continue;
			if (gs_elf_section(elf, sym->link, str) < 0 || !str->data || str->size == 0)
				continue;
			return 0;
		}
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
	static const uint32_t kinds[] = {SHT_SYMTAB, SHT_DYNSYM};

	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < elf->shnum; i++) {
			if (gs_elf_section(elf, i, &sym) < 0 || sym.type != kinds[k] || !sym.data ||
			    sym.entsize != sizeof(Elf64_Sym))
				continue;
			if (gs_elf_section(elf, sym.link, &str) < 0 || !str.data)
				continue;
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
	}
	return -ENOENT;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct gs_elfsym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* Prefer sized symbols first among equals. */
	return (x->size < y->size) - (x->size > y->size);
}

int gs_elfsyms_load(const struct gs_elf *elf, struct gs_elfsyms *out, struct gs_error *err)
{
	struct gs_elf_section sym, str;
	uint64_t count;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (symtab_sections(elf, &sym, &str) < 0)
		return 0; /* no symbols is not an error */
	count = sym.size / sizeof(Elf64_Sym);
	out->syms = calloc(count ? count : 1, sizeof(*out->syms));
	if (!out->syms)
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
		out->syms[n].addr = value;
		out->syms[n].size = gs_rd64(s + offsetof(Elf64_Sym, st_size));
		out->syms[n].name = name;
		n++;
	}
	out->n = n;
	qsort(out->syms, n, sizeof(*out->syms), cmp_sym);
	return 0;
}

void gs_elfsyms_free(struct gs_elfsyms *s)
{
	free(s->syms);
	memset(s, 0, sizeof(*s));
}

const struct gs_elfsym *gs_elfsyms_lookup(const struct gs_elfsyms *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct gs_elfsym *best = &s->syms[lo - 1];
	/* Among symbols at the same address, take the first (sized) one. */
	while (best > s->syms && best[-1].addr == best->addr)
		best--;
	if (best->size && addr - best->addr >= best->size)
		return NULL;
	return best;
}
