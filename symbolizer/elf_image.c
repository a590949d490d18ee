/* elf_image.c — bounds-checked ELF64 parsing (see elf_image.h for why it exists instead of raw structs). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf_image.h"
#include "mapguard.h"

/* True when [off, off+len) lies inside an image of size bytes, without overflow. */
static bool in_range(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

int gs_elf_open_mem(struct gs_elf *elf, const void *data, size_t size, struct gs_error *err)
{
	const uint8_t *d = data;
	uint64_t phoff, shoff;
	uint16_t phentsize, shentsize, shstrndx;

	memset(elf, 0, sizeof(*elf));
	if (size < sizeof(Elf64_Ehdr))
		return gs_error_set(err, -EINVAL, "not an ELF file: only %zu bytes", size);
	if (memcmp(d, ELFMAG, SELFMAG) != 0)
		return gs_error_set(err, -EINVAL, "not an ELF file: bad magic");
	if (d[EI_CLASS] != ELFCLASS64)
		return gs_error_set(err, -ENOTSUP, "unsupported ELF class %u (only 64-bit)",
				    d[EI_CLASS]);
	if (d[EI_DATA] != ELFDATA2LSB)
		return gs_error_set(err, -ENOTSUP, "unsupported ELF byte order (only little-endian)");

	elf->data = d;
	elf->size = size;
	elf->type = gs_rd16(d + offsetof(Elf64_Ehdr, e_type));
	elf->machine = gs_rd16(d + offsetof(Elf64_Ehdr, e_machine));
	elf->entry = gs_rd64(d + offsetof(Elf64_Ehdr, e_entry));
	phoff = gs_rd64(d + offsetof(Elf64_Ehdr, e_phoff));
	shoff = gs_rd64(d + offsetof(Elf64_Ehdr, e_shoff));
	phentsize = gs_rd16(d + offsetof(Elf64_Ehdr, e_phentsize));
	shentsize = gs_rd16(d + offsetof(Elf64_Ehdr, e_shentsize));
	elf->phnum = gs_rd16(d + offsetof(Elf64_Ehdr, e_phnum));
	elf->shnum = gs_rd16(d + offsetof(Elf64_Ehdr, e_shnum));
	shstrndx = gs_rd16(d + offsetof(Elf64_Ehdr, e_shstrndx));

	/* Real executables have a dozen program headers; every address lookup scans them, so
	 * a crafted file with thousands would make each lookup slow. */
	if (elf->phnum > GS_ELF_MAX_PHDRS)
		return gs_error_set(err, -EINVAL, "too many program headers (%u > %u)", elf->phnum,
				    GS_ELF_MAX_PHDRS);
	if (elf->phnum) {
		if (phentsize != sizeof(Elf64_Phdr))
			return gs_error_set(err, -EINVAL, "bad program header size %u", phentsize);
		if (!in_range(phoff, (uint64_t)elf->phnum * sizeof(Elf64_Phdr), size))
			return gs_error_set(err, -EINVAL, "program headers past end of file");
		elf->phdrs = d + phoff;
	}
	if (elf->shnum && shoff) {
		if (shentsize != sizeof(Elf64_Shdr) ||
		    !in_range(shoff, (uint64_t)elf->shnum * sizeof(Elf64_Shdr), size)) {
			/* Broken section headers: behave as if there were none (sstrip-like). */
			elf->shnum = 0;
		} else {
			elf->shdrs = d + shoff;
		}
	} else {
		elf->shnum = 0;
	}
	if (elf->shdrs && shstrndx < elf->shnum) {
		const uint8_t *sh = elf->shdrs + (size_t)shstrndx * sizeof(Elf64_Shdr);
		uint64_t off = gs_rd64(sh + offsetof(Elf64_Shdr, sh_offset));
		uint64_t sz = gs_rd64(sh + offsetof(Elf64_Shdr, sh_size));

		if (in_range(off, sz, size) && sz > 0) {
			elf->shstrtab = d + off;
			elf->shstrtab_size = sz;
		}
	}
	return 0;
}

int gs_elf_open_fd(struct gs_elf *elf, int fd, struct gs_error *err)
{
	struct stat st;
	void *map;
	int rc, guard;

	memset(elf, 0, sizeof(*elf));
	if (fstat(fd, &st) < 0)
		return gs_error_set(err, -errno, "fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return gs_error_set(err, -EINVAL, "not a regular file");
	if (st.st_size < (off_t)sizeof(Elf64_Ehdr))
		return gs_error_set(err, -EINVAL, "not an ELF file: only %lld bytes",
				    (long long)st.st_size);
	/* The file belongs to someone else, who may truncate it at any time, even before we
	 * read the header: guard the mapping before the first read. */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return gs_error_set(err, -errno, "mmap: %s", strerror(errno));
	guard = gs_mapguard_add(map, (size_t)st.st_size);
	if (guard < 0) {
		munmap(map, (size_t)st.st_size);
		return gs_error_set(err, guard, "cannot guard the mapping: %s", strerror(-guard));
	}
	rc = gs_elf_open_mem(elf, map, (size_t)st.st_size, err);
	elf->map = map;
	elf->map_size = (size_t)st.st_size;
	elf->guard = guard;
	if (rc == 0 && gs_elf_changed(elf))
		rc = gs_error_set(err, -EIO, "file changed while being read");
	if (rc < 0)
		gs_elf_close(elf);
	return rc;
}

int gs_elf_open_path(struct gs_elf *elf, const char *path, struct gs_error *err)
{
	int fd, rc;

	memset(elf, 0, sizeof(*elf));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gs_error_set(err, -errno, "open %s: %s", path, strerror(errno));
	rc = gs_elf_open_fd(elf, fd, err);
	close(fd);
	if (rc < 0)
		gs_error_prefix(err, "%s", path);
	return rc;
}

void gs_elf_close(struct gs_elf *elf)
{
	/* Unregistered first: once unmapped, the range may be reused by anything. */
	gs_mapguard_remove(elf->guard);
	if (elf->map)
		munmap(elf->map, elf->map_size);
	memset(elf, 0, sizeof(*elf));
}

bool gs_elf_changed(const struct gs_elf *elf)
{
	return elf->guard > 0 && gs_mapguard_changed(elf->guard);
}

int gs_elf_section(const struct gs_elf *elf, unsigned idx, struct gs_elf_section *out)
{
	const uint8_t *sh;
	uint32_t name;

	if (!elf->shdrs || idx >= elf->shnum)
		return -EINVAL;
	sh = elf->shdrs + (size_t)idx * sizeof(Elf64_Shdr);
	name = gs_rd32(sh + offsetof(Elf64_Shdr, sh_name));
	out->name = "";
	if (elf->shstrtab && name < elf->shstrtab_size &&
	    memchr(elf->shstrtab + name, '\0', elf->shstrtab_size - name))
		out->name = (const char *)elf->shstrtab + name;
	out->type = gs_rd32(sh + offsetof(Elf64_Shdr, sh_type));
	out->flags = gs_rd64(sh + offsetof(Elf64_Shdr, sh_flags));
	out->addr = gs_rd64(sh + offsetof(Elf64_Shdr, sh_addr));
	out->offset = gs_rd64(sh + offsetof(Elf64_Shdr, sh_offset));
	out->size = gs_rd64(sh + offsetof(Elf64_Shdr, sh_size));
	out->link = gs_rd32(sh + offsetof(Elf64_Shdr, sh_link));
	out->entsize = gs_rd64(sh + offsetof(Elf64_Shdr, sh_entsize));
	out->data = NULL;
	if (out->type != SHT_NOBITS && in_range(out->offset, out->size, elf->size))
		out->data = elf->data + out->offset;
	return 0;
}

int gs_elf_find_section(const struct gs_elf *elf, const char *name, struct gs_elf_section *out)
{
	for (unsigned i = 0; i < elf->shnum; i++) {
		if (gs_elf_section(elf, i, out) == 0 && strcmp(out->name, name) == 0)
			return 0;
	}
	return -ENOENT;
}

int gs_elf_segment(const struct gs_elf *elf, unsigned idx, struct gs_elf_segment *out)
{
	const uint8_t *ph;

	if (!elf->phdrs || idx >= elf->phnum)
		return -EINVAL;
	ph = elf->phdrs + (size_t)idx * sizeof(Elf64_Phdr);
	out->type = gs_rd32(ph + offsetof(Elf64_Phdr, p_type));
	out->flags = gs_rd32(ph + offsetof(Elf64_Phdr, p_flags));
	out->offset = gs_rd64(ph + offsetof(Elf64_Phdr, p_offset));
	out->vaddr = gs_rd64(ph + offsetof(Elf64_Phdr, p_vaddr));
	out->filesz = gs_rd64(ph + offsetof(Elf64_Phdr, p_filesz));
	out->memsz = gs_rd64(ph + offsetof(Elf64_Phdr, p_memsz));
	out->data = in_range(out->offset, out->filesz, elf->size) ? elf->data + out->offset : NULL;
	return 0;
}

int gs_elf_next_load(const struct gs_elf *elf, unsigned *idx, struct gs_elf_segment *out)
{
	while (*idx < elf->phnum) {
		if (gs_elf_segment(elf, (*idx)++, out) == 0 && out->type == PT_LOAD)
			return 0;
	}
	return -ENOENT;
}

int gs_elf_segment_at(const struct gs_elf *elf, uint64_t vaddr, struct gs_elf_segment *out)
{
	for (unsigned i = 0; gs_elf_next_load(elf, &i, out) == 0;) {
		if (out->data && vaddr >= out->vaddr && vaddr - out->vaddr < out->filesz)
			return 0;
	}
	return -ENOENT;
}

uint64_t gs_elf_vaddr_avail(const struct gs_elf *elf, uint64_t vaddr)
{
	struct gs_elf_segment seg;

	if (gs_elf_segment_at(elf, vaddr, &seg) < 0)
		return 0;
	return seg.filesz - (vaddr - seg.vaddr);
}

const uint8_t *gs_elf_vaddr_bytes(const struct gs_elf *elf, uint64_t vaddr, uint64_t len)
{
	struct gs_elf_segment seg;

	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) {
		if (seg.data && vaddr >= seg.vaddr && in_range(vaddr - seg.vaddr, len, seg.filesz))
			return seg.data + (vaddr - seg.vaddr);
	}
	return NULL;
}

/* Whether a note name of namesz bytes is owner (owner_len counts its NUL) followed only by
 * NUL padding: Go writes its owner as "Go\0\0" with namesz 4. */
static bool note_name_eq(const uint8_t *name, uint32_t namesz, const char *owner, size_t owner_len)
{
	if (namesz < owner_len || memcmp(name, owner, owner_len) != 0)
		return false;
	for (uint32_t i = owner_len; i < namesz; i++) {
		if (name[i])
			return false;
	}
	return true;
}

/* Scans one note area [p, p+size) for (owner, type). */
static int scan_notes(const uint8_t *p, uint64_t size, const char *owner, uint32_t type,
		      const uint8_t **desc, uint32_t *desc_len)
{
	size_t owner_len = strlen(owner) + 1;
	uint64_t off = 0;

	while (size - off >= 12) {
		uint32_t namesz = gs_rd32(p + off), descsz = gs_rd32(p + off + 4);
		uint32_t ntype = gs_rd32(p + off + 8);
		uint64_t name_off = off + 12;
		uint64_t desc_off = name_off + (((uint64_t)namesz + 3) & ~3ULL);
		uint64_t next = desc_off + (((uint64_t)descsz + 3) & ~3ULL);

		if (!in_range(name_off, namesz, size) || !in_range(desc_off, descsz, size))
			return -ENOENT;
		if (ntype == type && note_name_eq(p + name_off, namesz, owner, owner_len)) {
			*desc = p + desc_off;
			*desc_len = descsz;
			return 0;
		}
		if (next <= off || next > size)
			break;
		off = next;
	}
	return -ENOENT;
}

int gs_elf_find_note(const struct gs_elf *elf, const char *owner, uint32_t type,
		     const uint8_t **desc, uint32_t *desc_len)
{
	struct gs_elf_section sec;
	struct gs_elf_segment seg;

	for (unsigned i = 0; i < elf->shnum; i++) {
		if (gs_elf_section(elf, i, &sec) == 0 && sec.type == SHT_NOTE && sec.data &&
		    scan_notes(sec.data, sec.size, owner, type, desc, desc_len) == 0)
			return 0;
	}
	for (unsigned i = 0; i < elf->phnum; i++) {
		if (gs_elf_segment(elf, i, &seg) == 0 && seg.type == PT_NOTE && seg.data &&
		    scan_notes(seg.data, seg.filesz, owner, type, desc, desc_len) == 0)
			return 0;
	}
	return -ENOENT;
}

uint64_t gs_elf_base_vaddr(const struct gs_elf *elf)
{
	struct gs_elf_segment seg;
	uint64_t best = UINT64_MAX;

	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) {
		if (seg.vaddr >= seg.offset && seg.vaddr - seg.offset < best)
			best = seg.vaddr - seg.offset;
	}
	return best == UINT64_MAX ? 0 : best;
}
