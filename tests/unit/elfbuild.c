/* elfbuild.c — in-memory ELF64 builder for the unit tests and fuzz seeds (see elfbuild.h).
 * Guarded so that a fuzz target (or the replay driver, which includes several of them) can
 * #include this file instead of linking it. Host byte order is assumed little-endian. */
#ifndef GOSCOPE_TESTS_ELFBUILD_C
#define GOSCOPE_TESTS_ELFBUILD_C

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/elfbuild.h"

static void *eb_xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fputs("elfbuild: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void eb_reserve(struct elfb *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	b->img = eb_xrealloc(b->img, cap);
	memset(b->img + b->cap, 0, cap - b->cap);
	b->cap = cap;
}

static uint32_t eb_shstr(struct elfb *b, const char *name)
{
	size_t len = strlen(name) + 1;
	uint32_t off = (uint32_t)b->shstr_len;

	if (b->shstr_len + len > sizeof(b->shstr))
		abort();
	memcpy(b->shstr + b->shstr_len, name, len);
	b->shstr_len += len;
	return off;
}

void eb_init(struct elfb *b)
{
	memset(b, 0, sizeof(*b));
	b->type = ET_EXEC;
	b->machine = EM_X86_64;
	b->nsec = 1; /* SHN_UNDEF */
	b->shstr_len = 1;
	eb_reserve(b, EB_DATA_START);
	b->size = EB_DATA_START;
}

void eb_release(struct elfb *b)
{
	free(b->img);
	memset(b, 0, sizeof(*b));
}

uint64_t eb_append(struct elfb *b, const void *data, size_t size, size_t align)
{
	size_t off = b->size;

	if (align > 1)
		off = (off + align - 1) / align * align;
	eb_reserve(b, off + size);
	if (data)
		memcpy(b->img + off, data, size);
	else
		memset(b->img + off, 0, size);
	b->size = off + size;
	return off;
}

void eb_pad_to(struct elfb *b, uint64_t off)
{
	if (off > b->size)
		eb_append(b, NULL, off - b->size, 1);
}

unsigned eb_section(struct elfb *b, const char *name, uint32_t type, uint64_t flags, uint64_t addr,
		    uint64_t offset, uint64_t size, uint32_t link, uint64_t entsize)
{
	if (b->nsec >= EB_MAX_SECTIONS - 1) /* keep one for .shstrtab */
		abort();
	/* In the order of the ELF spec: name, type, flags, addr, offset, size, link, info,
	 * addralign, entsize (eb_finish sets addralign). */
	b->sec[b->nsec] = (Elf64_Shdr){
		eb_shstr(b, name), type, flags, addr, offset, size, link, 0, 0, entsize};
	return b->nsec++;
}

void eb_segment(struct elfb *b, uint32_t type, uint32_t flags, uint64_t offset, uint64_t vaddr,
		uint64_t filesz, uint64_t memsz)
{
	if (b->nseg >= EB_MAX_SEGMENTS)
		abort();
	/* type, flags, offset, vaddr, paddr, filesz, memsz, align (the ELF spec's order) */
	b->seg[b->nseg++] = (Elf64_Phdr){type, flags, offset, vaddr, vaddr, filesz, memsz, 0x1000};
}

uint64_t eb_add_data(struct elfb *b, const char *name, uint32_t type, uint64_t flags,
		     const void *data, size_t size, size_t align)
{
	uint64_t off = eb_append(b, data, size, align);

	eb_section(b, name, type, flags, EB_BASE + off, off, size, 0, 0);
	return EB_BASE + off;
}

void eb_add_load(struct elfb *b, uint32_t flags, uint64_t addr, uint64_t end)
{
	eb_segment(b, PT_LOAD, flags, addr - EB_BASE, addr, end - addr, end - addr);
}

void eb_add_symtab(struct elfb *b, const struct eb_sym *syms, unsigned n)
{
	size_t strsz = 1;
	char *str;
	Elf64_Sym *tab;
	uint64_t stroff, symoff;
	unsigned stridx;

	for (unsigned i = 0; i < n; i++)
		strsz += strlen(syms[i].name) + 1;
	str = eb_xrealloc(NULL, strsz);
	tab = eb_xrealloc(NULL, (n + 1) * sizeof(*tab));
	memset(tab, 0, (n + 1) * sizeof(*tab));
	str[0] = '\0';
	strsz = 1;
	for (unsigned i = 0; i < n; i++) {
		size_t len = strlen(syms[i].name) + 1;

		memcpy(str + strsz, syms[i].name, len);
		tab[i + 1].st_name = (uint32_t)strsz;
		tab[i + 1].st_info = ELF64_ST_INFO(STB_GLOBAL, syms[i].type);
		tab[i + 1].st_shndx = syms[i].shndx;
		tab[i + 1].st_value = syms[i].value;
		tab[i + 1].st_size = syms[i].size;
		strsz += len;
	}
	stroff = eb_append(b, str, strsz, 1);
	stridx = eb_section(b, ".strtab", SHT_STRTAB, 0, 0, stroff, strsz, 0, 0);
	symoff = eb_append(b, tab, (n + 1) * sizeof(*tab), 8);
	eb_section(b, ".symtab", SHT_SYMTAB, 0, 0, symoff, (n + 1) * sizeof(*tab), stridx,
		   sizeof(Elf64_Sym));
	free(str);
	free(tab);
}

size_t eb_note(uint8_t *out, size_t cap, const char *owner, uint32_t namesz_override, uint32_t type,
	       const void *desc, uint32_t desc_len)
{
	uint32_t namesz = namesz_override ? namesz_override : (uint32_t)strlen(owner) + 1;
	size_t name_pad = (namesz + 3u) & ~3u, desc_pad = (desc_len + 3u) & ~3u;
	size_t len = 12 + name_pad + desc_pad;
	uint32_t hdr[3] = {namesz, desc_len, type};

	if (len > cap)
		return 0;
	memset(out, 0, len);
	memcpy(out, hdr, sizeof(hdr));
	memcpy(out + 12, owner, strlen(owner) < namesz ? strlen(owner) : namesz);
	if (desc_len)
		memcpy(out + 12 + name_pad, desc, desc_len);
	return len;
}

uint8_t *eb_finish(struct elfb *b, size_t *size, unsigned opts)
{
	Elf64_Ehdr eh;
	uint8_t *img;

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = b->type;
	eh.e_machine = b->machine;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	if (b->nseg) {
		eh.e_phoff = sizeof(Elf64_Ehdr);
		eh.e_phentsize = sizeof(Elf64_Phdr);
		eh.e_phnum = (uint16_t)b->nseg;
	}
	if (!(opts & EB_NO_SHDRS)) {
		uint32_t name = eb_shstr(b, ".shstrtab");
		uint64_t off = eb_append(b, b->shstr, b->shstr_len, 1);

		b->sec[b->nsec] = (Elf64_Shdr){name, SHT_STRTAB, 0, 0, off, b->shstr_len};
		eh.e_shstrndx = (uint16_t)b->nsec++;
		eh.e_shoff = eb_append(b, NULL, b->nsec * sizeof(Elf64_Shdr), 8);
		eh.e_shentsize = sizeof(Elf64_Shdr);
		eh.e_shnum = (uint16_t)b->nsec;
		for (unsigned i = 0; i < b->nsec; i++)
			b->sec[i].sh_addralign = 1;
		memcpy(b->img + eh.e_shoff, b->sec, b->nsec * sizeof(Elf64_Shdr));
	}
	if (b->nseg)
		memcpy(b->img + sizeof(eh), b->seg, b->nseg * sizeof(Elf64_Phdr));
	memcpy(b->img, &eh, sizeof(eh));
	img = b->img;
	*size = b->size;
	b->img = NULL;
	eb_release(b);
	return img;
}

size_t eb_put_uvarint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t eb_buildinfo_inline(uint8_t *out, size_t cap, const char *version, const char *modinfo,
			   size_t mlen)
{
	size_t vlen = strlen(version), n = 32;

	if (32 + 20 + vlen + mlen > cap)
		return 0;
	memset(out, 0, 32);
	memcpy(out, "\xff Go buildinf:", 14);
	out[14] = 8;
	out[15] = 2; /* inline strings, little-endian */
	n += eb_put_uvarint(out + n, vlen);
	memcpy(out + n, version, vlen);
	n += vlen;
	n += eb_put_uvarint(out + n, mlen);
	memcpy(out + n, modinfo, mlen);
	return n + mlen;
}

#endif
