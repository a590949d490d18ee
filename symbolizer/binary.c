/* binary.c — one executable or shared object opened for symbolization: finds its pclntab
 * (section, symbol or validated magic scan), the text base and gofunc (from
 * runtime.firstmoduledata, never from .text: external linking puts C start-up code there),
 * build metadata, and ELF symbols for non-Go code. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buildinfo.h"
#include "elfsyms.h"
#include "pcindex.h"
#include "pclntab.h"

#define GO_BUILDID_NOTE_TYPE 4 /* ELF_NOTE_GOBUILDID_TAG */
#define MD_TEXT_OFF 176        /* moduledata.text, 64-bit, Go 1.18 - 1.27 */
#define MD_ETEXT_OFF 184
#define PCLNTAB_SCAN_ALIGN 8

struct gs_binary {
	struct gs_elf elf;
	char *name;
	struct gs_binary_info info;
	struct gs_pclntab tab;
	bool has_tab;
	pthread_mutex_t syms_lock;
	bool syms_loaded;
	struct gs_symtab syms;
};

int gs_go_version_parse(const char *s, int *major, int *minor)
{
	int ma, mi;

	if (!s || strncmp(s, "go", 2) != 0 || sscanf(s + 2, "%d.%d", &ma, &mi) != 2)
		return -EINVAL;
	*major = ma;
	*minor = mi;
	return 0;
}

/* Go minor version from build info, 0 when unknown. */
static int go_minor(const struct gs_binary *bin)
{
	int ma, mi;

	if (!bin->info.has_buildinfo ||
	    gs_go_version_parse(bin->info.buildinfo.go_version, &ma, &mi) < 0 || ma != 1)
		return 0;
	return mi;
}

static void read_build_ids(struct gs_binary *bin)
{
	const uint8_t *desc;
	uint32_t len;

	if (gs_elf_find_note(&bin->elf, "Go", GO_BUILDID_NOTE_TYPE, &desc, &len) == 0) {
		size_t n = 0;

		while (n < len && n + 1 < sizeof(bin->info.go_build_id) && desc[n] >= 0x20 &&
		       desc[n] < 0x7f)
			n++;
		memcpy(bin->info.go_build_id, desc, n);
		bin->info.go_build_id[n] = '\0';
	}
	if (gs_elf_find_note(&bin->elf, "GNU", NT_GNU_BUILD_ID, &desc, &len) == 0) {
		for (uint32_t i = 0; i < len && 2 * i + 2 < sizeof(bin->info.gnu_build_id); i++)
			snprintf(bin->info.gnu_build_id + 2 * i, 3, "%02x", desc[i]);
	}
}

/* Locates the pclntab: by section name, by symbol, then by a validated magic scan of the
 * non-executable PT_LOAD segments (binaries without section headers). */
static int find_pclntab(struct gs_binary *bin, struct gs_error *err)
{
	static const char *const sections[] = {".gopclntab", ".data.rel.ro.gopclntab"};
	struct gs_elf_section sec;
	struct gs_elf_segment seg;
	uint64_t addr, size;
	int rc = -ENOENT;

	for (unsigned i = 0; i < 2; i++) {
		if (gs_elf_find_section(&bin->elf, sections[i], &sec) == 0 && sec.data) {
			rc = gs_pclntab_parse(&bin->tab, sec.data, sec.size, sec.addr, err);
			if (rc == 0) {
				bin->info.pclntab_found_by = i == 0 ? "section .gopclntab"
								    : "section .data.rel.ro.gopclntab";
				return 0;
			}
			return gs_error_prefix(err, "section %s", sections[i]);
		}
	}
	if (gs_elf_symbol(&bin->elf, "runtime.pclntab", &addr, NULL) == 0) {
		const uint8_t *p;

		size = gs_elf_vaddr_avail(&bin->elf, addr);
		p = gs_elf_vaddr_bytes(&bin->elf, addr, size);
		if (p && gs_pclntab_parse(&bin->tab, p, size, addr, err) == 0) {
			bin->info.pclntab_found_by = "symbol runtime.pclntab";
			return 0;
		}
	}
	for (unsigned i = 0; gs_elf_next_load(&bin->elf, &i, &seg) == 0;) {
		if (!seg.data || (seg.flags & PF_X))
			continue;
		uint64_t start = (PCLNTAB_SCAN_ALIGN - seg.vaddr % PCLNTAB_SCAN_ALIGN) %
				 PCLNTAB_SCAN_ALIGN;
		for (uint64_t off = start; off + 16 <= seg.filesz; off += PCLNTAB_SCAN_ALIGN) {
			const uint8_t *p = seg.data + off;

			/* Cheap pre-filter on "f? ff ff ff 00 00 q ptr" before a full parse. */
			if (p[1] != 0xff || p[2] != 0xff || p[3] != 0xff || p[4] || p[5] ||
			    (p[0] != 0xf0 && p[0] != 0xf1 && p[0] != 0xfa && p[0] != 0xfb))
				continue;
			if (gs_pclntab_parse(&bin->tab, p, seg.filesz - off, seg.vaddr + off, NULL) ==
			    0) {
				/* A real table names its first function with printable text. */
				struct gs_func f;
				const char *name;

				bin->tab.text_start = bin->tab.header_text_start;
				if (gs_pclntab_func_at(&bin->tab, 0, &f, NULL) < 0 &&
				    bin->tab.field_size != 4)
					continue;
				name = gs_pclntab_func_at(&bin->tab, 0, &f, NULL) == 0
					       ? gs_pclntab_func_name(&bin->tab, &f)
					       : NULL;
				if (bin->tab.field_size != 4 && (!name || !*name))
					continue;
				bin->info.pclntab_found_by = "magic scan";
				return 0;
			}
		}
	}
	return rc == -ENOENT ? gs_error_set(err, -ENOENT, "no pclntab") : rc;
}

/* Scans [data, data+size) at vaddr for an 8-aligned moduledata candidate: a word equal to
 * the pclntab address followed by the funcnametab data pointer. */
static uint64_t scan_moduledata(const uint8_t *data, uint64_t size, uint64_t vaddr,
				uint64_t pclntab, uint64_t funcnametab)
{
	uint64_t start = (8 - vaddr % 8) % 8;

	for (uint64_t off = start; off + MD_ETEXT_OFF + 8 <= size; off += 8) {
		if (gs_rd64(data + off) == pclntab && gs_rd64(data + off + 8) == funcnametab)
			return vaddr + off;
	}
	return 0;
}

/* The first R_X86_64_RELATIVE relocation of the SHT_RELA sections whose addend (by_addend)
 * or else whose offset is v: returns its other field (offset or addend), or 0. A PIE's file
 * holds zeros where such relocations write pointers. */
static uint64_t find_relative(const struct gs_elf *elf, uint64_t v, bool by_addend)
{
	struct gs_elf_section sec;

	for (unsigned i = 0; i < elf->shnum; i++) {
		if (gs_elf_section(elf, i, &sec) < 0 || sec.type != SHT_RELA || !sec.data ||
		    sec.entsize != sizeof(Elf64_Rela))
			continue;
		for (uint64_t j = 0; j < sec.size / sizeof(Elf64_Rela); j++) {
			const uint8_t *r = sec.data + j * sizeof(Elf64_Rela);
			uint64_t offset = gs_rd64(r), addend = gs_rd64(r + 16);

			if (ELF64_R_TYPE(gs_rd64(r + 8)) == R_X86_64_RELATIVE &&
			    (by_addend ? addend : offset) == v)
				return by_addend ? offset : addend;
		}
	}
	return 0;
}

/* Finds runtime.firstmoduledata: the symbol, or a word equal to the pclntab address followed
 * by the funcnametab slice's data pointer; in a PIE whose file holds zeros there, the
 * R_X86_64_RELATIVE relocation with that addend. Returns its address or 0. */
static uint64_t find_moduledata(const struct gs_binary *bin)
{
	static const char *const md_sections[] = {".go.module", ".noptrdata"};
	const struct gs_pclntab *t = &bin->tab;
	uint64_t md, fnt = t->addr + (uint64_t)(t->funcnametab - t->data);
	struct gs_elf_segment seg;
	struct gs_elf_section sec;

	if (gs_elf_symbol(&bin->elf, "runtime.firstmoduledata", &md, NULL) == 0 &&
	    gs_elf_vaddr_bytes(&bin->elf, md, MD_ETEXT_OFF + 8))
		return md;
	/* The linker puts firstmoduledata in .go.module (1.26+) or .noptrdata: scanning just
	 * those touches a few hundred KiB instead of every data page of a large binary. */
	for (unsigned k = 0; k < sizeof(md_sections) / sizeof(md_sections[0]); k++) {
		if (gs_elf_find_section(&bin->elf, md_sections[k], &sec) == 0 && sec.data &&
		    (md = scan_moduledata(sec.data, sec.size, sec.addr, t->addr, fnt)))
			return md;
	}
	for (unsigned i = 0; gs_elf_next_load(&bin->elf, &i, &seg) == 0;) {
		if (!seg.data || (seg.flags & PF_X))
			continue;
		md = scan_moduledata(seg.data, seg.filesz, seg.vaddr, t->addr, fnt);
		if (md)
			return md;
	}
	return find_relative(&bin->elf, t->addr, true);
}

/* Reads a pointer-sized word of moduledata; in a PIE it may be 0 in the file and carried by
 * a relocation, which we look up. */
static uint64_t md_word(const struct gs_binary *bin, uint64_t md, unsigned off)
{
	const uint8_t *p = gs_elf_vaddr_bytes(&bin->elf, md + off, 8);
	uint64_t v = p ? gs_rd64(p) : 0;

	if (v || bin->elf.type != ET_DYN)
		return v;
	return find_relative(&bin->elf, md + off, false);
}

static bool is_exec_addr(const struct gs_elf *elf, uint64_t addr)
{
	struct gs_elf_segment seg;

	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) {
		if ((seg.flags & PF_X) && addr >= seg.vaddr && addr - seg.vaddr < seg.memsz)
			return true;
	}
	return false;
}

/* moduledata.gofunc offset for a Go minor version (64-bit; measured from DWARF, see
 * docs/go-runtime.md section 1.6). */
static unsigned gofunc_offset(int minor)
{
	if (minor >= 27)
		return 344;
	if (minor >= 20)
		return 320;
	return 304;
}

/* abi.FuncIDWrapper per Go version (1.22 inserted corostart, 1.26 split runfinq). */
static int wrapper_funcid(int minor)
{
	if (minor <= 0)
		return -1;
	if (minor >= 26)
		return 23;
	if (minor >= 22)
		return 22;
	return 21;
}

static void resolve_text(struct gs_binary *bin)
{
	struct gs_pclntab *t = &bin->tab;
	struct gs_elf_section text;
	uint64_t md = 0, v;
	int minor = go_minor(bin);

	bin->info.text_found_by = "functab";
	if (t->field_size == 4) {
		md = find_moduledata(bin);
		v = md ? md_word(bin, md, MD_TEXT_OFF) : 0;
		if (v && is_exec_addr(&bin->elf, v)) {
			t->text_start = v;
			bin->info.text_found_by = "moduledata";
		} else if (gs_elf_symbol(&bin->elf, "runtime.text", &v, NULL) == 0 && v) {
			t->text_start = v;
			bin->info.text_found_by = "symbol runtime.text";
		} else if (t->header_text_start) {
			t->text_start = t->header_text_start;
			bin->info.text_found_by = "pcHeader.textStart";
		} else if (gs_elf_find_section(&bin->elf, ".text", &text) == 0) {
			t->text_start = text.addr;
			bin->info.text_found_by = "section .text (fallback)";
		}
		if (md) {
			unsigned off = gofunc_offset(minor);

			v = md_word(bin, md, off);
			if (v && gs_elf_vaddr_avail(&bin->elf, v))
				t->gofunc = v;
		}
		if (!t->gofunc && (gs_elf_symbol(&bin->elf, "go:func.*", &v, NULL) == 0 ||
				   gs_elf_symbol(&bin->elf, "go.func.*", &v, NULL) == 0))
			t->gofunc = v;
	}
	t->elf = &bin->elf;
	t->wrapper_funcid = wrapper_funcid(minor);
	{
		struct gs_elf_segment seg;

		if (t->gofunc && gs_elf_segment_at(&bin->elf, t->gofunc, &seg) == 0) {
			t->gofunc_seg = seg.data;
			t->gofunc_seg_vaddr = seg.vaddr;
			t->gofunc_seg_size = seg.filesz;
		}
	}
	{
		struct gs_func first, last;

		if (gs_pclntab_func_at(t, 0, &first, NULL) == 0 &&
		    gs_pclntab_func_at(t, t->nfunc - 1, &last, NULL) == 0) {
			bin->info.text_start = first.entry;
			bin->info.text_end = last.end;
		}
		if (t->field_size == 4)
			bin->info.text_start = t->text_start;
	}
	/* Internally linked Go programs start at a Go function (_rt0_amd64_*); the external
	 * linker puts C start-up code (_start) before runtime.text. The entry point tells
	 * without section headers; .text tells when the entry is unusual. */
	if (bin->elf.entry && bin->info.text_end > bin->info.text_start)
		bin->info.external_link = bin->elf.entry < bin->info.text_start ||
					  bin->elf.entry >= bin->info.text_end;
	else if (gs_elf_find_section(&bin->elf, ".text", &text) == 0)
		bin->info.external_link = text.addr != bin->info.text_start;
}

static int open_image(struct gs_binary *bin, struct gs_error *err)
{
	struct gs_elf_section sec;
	struct gs_error perr;
	int rc;

	pthread_mutex_init(&bin->syms_lock, NULL);
	bin->info.elf_type = bin->elf.type;
	bin->info.pie = bin->elf.type == ET_DYN;
	bin->info.has_section_headers = bin->elf.shnum > 0;
	bin->info.stripped = gs_elf_find_section(&bin->elf, ".symtab", &sec) != 0;
	rc = gs_buildinfo_read(&bin->elf, &bin->info.buildinfo, &perr);
	bin->info.has_buildinfo = rc == 0;
	read_build_ids(bin);
	rc = find_pclntab(bin, &perr);
	if (rc == 0) {
		bin->has_tab = true;
		bin->info.pclntab_format = bin->tab.format;
		bin->info.pclntab_magic = bin->tab.magic;
		bin->info.pclntab_addr = bin->tab.addr;
		bin->info.pclntab_size = bin->tab.size;
		bin->info.nfunc = bin->tab.nfunc;
		resolve_text(bin);
		/* Without it (out of memory) lookups are only slower. */
		bin->tab.pcindex = gs_pcindex_new(bin->tab.nfunc, bin->info.text_end - bin->info.text_start,
						  bin->tab.funcnametab_size, bin->tab.filetab_size);
	} else if (rc != -ENOENT && bin->info.has_buildinfo) {
		/* A Go binary whose table is corrupt: refuse rather than mis-symbolize. */
		return gs_error_set(err, rc, "%s", perr.msg);
	}
	bin->info.is_go = bin->info.has_buildinfo || bin->has_tab;
	return 0;
}

bool gs_binary_changed(const struct gs_binary *bin)
{
	return gs_elf_changed(&bin->elf);
}

/* The error of every lookup that read the image of a file changed under it (see
 * symbolizer/mapguard.h): its results may come from zeroes. */
static int changed_error(const struct gs_binary *bin, struct gs_error *err)
{
	return gs_error_set(err, -EIO, "%s: binary changed while being read", bin->name);
}

static int finish_open(struct gs_binary *bin, const char *name, struct gs_binary **out,
		       struct gs_error *err)
{
	int rc;

	bin->name = strdup(name ? name : "");
	if (!bin->name) {
		gs_elf_close(&bin->elf);
		free(bin);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	rc = open_image(bin, err);
	if (rc == 0 && gs_binary_changed(bin))
		rc = changed_error(bin, err);
	if (rc < 0) {
		gs_error_prefix(err, "%s", bin->name);
		gs_binary_close(bin);
		return rc;
	}
	*out = bin;
	return 0;
}

int gs_binary_open_mem(const void *data, size_t size, const char *name, struct gs_binary **out,
		       struct gs_error *err)
{
	struct gs_binary *bin = calloc(1, sizeof(*bin));
	int rc;

	if (!bin)
		return gs_error_set(err, -ENOMEM, "out of memory");
	rc = gs_elf_open_mem(&bin->elf, data, size, err);
	if (rc < 0) {
		free(bin);
		return rc;
	}
	return finish_open(bin, name, out, err);
}

int gs_binary_open_fd(int fd, const char *name, struct gs_binary **out, struct gs_error *err)
{
	struct gs_binary *bin = calloc(1, sizeof(*bin));
	int rc;

	if (!bin)
		return gs_error_set(err, -ENOMEM, "out of memory");
	rc = gs_elf_open_fd(&bin->elf, fd, err);
	if (rc < 0) {
		free(bin);
		gs_error_prefix(err, "%s", name ? name : "binary");
		return rc; /* not gs_error_prefix's value: err may be NULL */
	}
	return finish_open(bin, name, out, err);
}

int gs_binary_open(const char *path, struct gs_binary **out, struct gs_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return gs_error_set(err, -errno, "open %s: %s", path, strerror(errno));
	rc = gs_binary_open_fd(fd, path, out, err);
	close(fd);
	return rc;
}

void gs_binary_close(struct gs_binary *bin)
{
	if (!bin)
		return;
	gs_buildinfo_free(&bin->info.buildinfo);
	gs_symtab_free(&bin->syms);
	gs_pcindex_free(bin->tab.pcindex);
	pthread_mutex_destroy(&bin->syms_lock);
	gs_elf_close(&bin->elf);
	free(bin->name);
	free(bin);
}

const struct gs_binary_info *gs_binary_info(const struct gs_binary *bin)
{
	return &bin->info;
}

const char *gs_binary_name(const struct gs_binary *bin)
{
	return bin->name;
}

size_t gs_binary_bytes(const struct gs_binary *cbin)
{
	struct gs_binary *bin = (struct gs_binary *)cbin; /* for the lock only */
	size_t n = sizeof(*bin) + bin->elf.size + gs_pcindex_bytes(bin->tab.pcindex);

	pthread_mutex_lock(&bin->syms_lock);
	n += gs_symtab_bytes(&bin->syms);
	pthread_mutex_unlock(&bin->syms_lock);
	return n;
}

static const struct gs_symtab *elf_syms(struct gs_binary *bin)
{
	pthread_mutex_lock(&bin->syms_lock);
	if (!bin->syms_loaded) {
		gs_elfsyms_load(&bin->elf, &bin->syms, NULL);
		bin->syms_loaded = true;
	}
	pthread_mutex_unlock(&bin->syms_lock);
	return &bin->syms;
}

/* gs_binary_symbolize without the check that the file did not change. */
static int symbolize(const struct gs_binary *cbin, uint64_t pc, unsigned flags,
		     struct gs_frame *frames, int max, struct gs_error *err)
{
	struct gs_binary *bin = (struct gs_binary *)cbin; /* lazily loaded symbols only */
	const struct gs_sym *sym;
	uint64_t look = pc;
	int n;

	if (max <= 0)
		return 0;
	if (bin->has_tab) {
		struct gs_func f;

		/* As runtime.CallersFrames: a return address is looked up at pc-1 so the call
		 * instruction's position is used, unless pc is the function's entry. */
		if (flags & GS_LOOKUP_RETURN_ADDR) {
			if (gs_pclntab_find_func(&bin->tab, pc, &f, NULL) == 0 && pc > f.entry)
				look = pc - 1;
		}
		n = gs_pclntab_frames(&bin->tab, look, !(flags & GS_LOOKUP_NO_INLINE), frames, max,
				      err);
		if (n != 0)
			return n;
	}
	if ((flags & GS_LOOKUP_RETURN_ADDR) && pc > 0 && look == pc)
		look = pc - 1;
	sym = gs_symtab_lookup(elf_syms(bin), look);
	if (!sym)
		return 0;
	memset(&frames[0], 0, sizeof(frames[0]));
	frames[0].function = frames[0].raw_function = sym->name;
	frames[0].function_len = strlen(sym->name);
	frames[0].file = frames[0].raw_file = "?";
	frames[0].raw_line = 0;
	frames[0].entry = sym->addr;
	return 1;
}

int gs_binary_symbolize(const struct gs_binary *bin, uint64_t pc, unsigned flags,
			struct gs_frame *frames, int max, struct gs_error *err)
{
	int n = symbolize(bin, pc, flags, frames, max, err);

	return gs_binary_changed(bin) ? changed_error(bin, err) : n;
}

/* gs_binary_find_function without the check that the file did not change. */
static int find_function(const struct gs_binary *bin, const char *name, uint64_t *entry,
			 uint64_t *end)
{
	struct gs_func f;

	if (bin->has_tab) {
		for (uint64_t i = 0; i < bin->tab.nfunc; i++) {
			const char *n;

			if (gs_pclntab_func_at(&bin->tab, i, &f, NULL) < 0)
				continue;
			n = gs_pclntab_func_name(&bin->tab, &f);
			if (n && strcmp(n, name) == 0) {
				*entry = f.entry;
				*end = f.end;
				return 0;
			}
		}
	}
	{
		uint64_t v, size;

		if (gs_elf_symbol(&bin->elf, name, &v, &size) == 0 && v) {
			*entry = v;
			*end = v + size;
			return 0;
		}
	}
	return -ENOENT;
}

int gs_binary_find_function(const struct gs_binary *bin, const char *name, uint64_t *entry,
			    uint64_t *end)
{
	int rc = find_function(bin, name, entry, end);

	return gs_binary_changed(bin) ? -EIO : rc;
}

int gs_binary_find_symbol(const struct gs_binary *bin, const char *name, uint64_t *value,
			  uint64_t *size)
{
	int rc = gs_elf_symbol(&bin->elf, name, value, size);

	return gs_binary_changed(bin) ? -EIO : rc;
}

int gs_binary_pcsp(const struct gs_binary *bin, uint64_t pc, int32_t *sp_delta)
{
	struct gs_func f;
	int rc = -ENOENT;

	if (bin->has_tab && gs_pclntab_find_func(&bin->tab, pc, &f, NULL) == 0)
		rc = gs_pclntab_pcvalue(&bin->tab, &f, gs_func_field(&bin->tab, &f, 4), pc,
					sp_delta);
	return gs_binary_changed(bin) ? -EIO : rc;
}

int gs_binary_foreach_function(const struct gs_binary *bin,
			       int (*fn)(void *ctx, const char *name, uint64_t entry, uint64_t end),
			       void *ctx)
{
	struct gs_func f;

	if (!bin->has_tab)
		return -ENOENT;
	for (uint64_t i = 0; i < bin->tab.nfunc; i++) {
		const char *n;

		if (gs_pclntab_func_at(&bin->tab, i, &f, NULL) < 0)
			continue;
		n = gs_pclntab_func_name(&bin->tab, &f);
		if (fn(ctx, n ? n : "?", f.entry, f.end))
			break;
	}
	return gs_binary_changed(bin) ? -EIO : 0;
}

/* Translates between link-time addresses and file offsets through the first PT_LOAD that
 * holds v: an address must lie in the segment's file-backed part (filesz), an offset may lie
 * anywhere in its memory size (memsz). */
static int load_translate(const struct gs_elf *elf, uint64_t v, bool from_offset, uint64_t *out)
{
	struct gs_elf_segment seg;

	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) {
		uint64_t from = from_offset ? seg.offset : seg.vaddr;
		uint64_t to = from_offset ? seg.vaddr : seg.offset;

		if (v >= from && v - from < (from_offset ? seg.memsz : seg.filesz)) {
			*out = to + (v - from);
			return 0;
		}
	}
	return -ENOENT;
}

int gs_binary_addr_to_offset(const struct gs_binary *bin, uint64_t addr, uint64_t *off)
{
	int rc = load_translate(&bin->elf, addr, false, off);

	return gs_binary_changed(bin) ? -EIO : rc;
}

int gs_binary_offset_to_addr(const struct gs_binary *bin, uint64_t off, uint64_t *addr)
{
	int rc = load_translate(&bin->elf, off, true, addr);

	return gs_binary_changed(bin) ? -EIO : rc;
}

int gs_binary_read(const struct gs_binary *bin, uint64_t addr, void *buf, size_t len)
{
	const uint8_t *p = gs_elf_vaddr_bytes(&bin->elf, addr, len);

	if (!p)
		return gs_binary_changed(bin) ? -EIO : -ENOENT;
	memcpy(buf, p, len);
	return gs_binary_changed(bin) ? -EIO : 0;
}
