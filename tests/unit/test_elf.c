/* test_elf.c — the bounds-checked ELF reader (symbolizer/elf_image.h, elfsyms.h) on valid,
 * truncated and deliberately malformed images. Every image lives in a heap buffer of exactly
 * its size, so under ASan a read one byte past the end fails the test. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/elf_image.h"
#include "symbolizer/elfsyms.h"
#include "tests/unit/elfbuild.h"
#include "tests/unit/testutil.h"

#define GO_BUILDID "abcdefgh/ijklmnop/qrstuvwx/yz012345"
#define GNU_BUILDID                                                                                \
	"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67"

struct small {
	uint8_t *img;
	size_t size;
	uint64_t text, data, notes;
	size_t notes_len;
};

/* A valid ELF: .text (RX), .data (RW), two notes (Go-style "Go\0\0" owner and GNU), a
 * symbol table, three PT_LOADs and a PT_NOTE. */
static void small_elf(struct small *s, unsigned opts)
{
	static const uint8_t code[64] = {0x90};
	static const uint8_t data[32] = {1, 2, 3};
	struct elfb b;
	uint8_t notes[256];
	size_t n;
	uint64_t notes_addr;

	eb_init(&b);
	n = eb_note(notes, sizeof(notes), "Go", 4, 4, GO_BUILDID, sizeof(GO_BUILDID) - 1);
	n += eb_note(notes + n, sizeof(notes) - n, "GNU", 0, NT_GNU_BUILD_ID, GNU_BUILDID, 20);
	notes_addr = eb_add_data(&b, ".note.go.buildid", SHT_NOTE, SHF_ALLOC, notes, n, 4);
	s->notes = notes_addr;
	s->notes_len = n;
	s->text = eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code,
			      sizeof(code), 16);
	eb_add_load(&b, PF_R | PF_X, EB_BASE, s->text + sizeof(code));
	s->data = EB_BASE + eb_append(&b, NULL, 0, 0x1000);
	eb_add_data(&b, ".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data, sizeof(data), 1);
	eb_section(&b, ".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, s->data + sizeof(data),
		   s->data + sizeof(data) - EB_BASE, 4096, 0, 0);
	eb_segment(&b, PT_LOAD, PF_R | PF_W, s->data - EB_BASE, s->data, sizeof(data),
		   sizeof(data) + 4096);
	eb_segment(&b, PT_NOTE, PF_R, notes_addr - EB_BASE, notes_addr, n, n);
	{
		struct eb_sym syms[] = {
			{"main.f", s->text, 16, STT_FUNC, 2},
			{"main.g", s->text + 32, 0, STT_FUNC, 2},
			{"main.v", s->data, 8, STT_OBJECT, 3},
			{"undef", 0x1234, 8, STT_FUNC, 0},
		};

		eb_add_symtab(&b, syms, 4);
	}
	s->img = eb_finish(&b, &s->size, opts);
}

static const Elf64_Ehdr *ehdr(const uint8_t *img)
{
	return (const Elf64_Ehdr *)img;
}

Test(elf, valid_image)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_section sec;
	struct gs_elf_segment seg;
	struct gs_error err = {0};
	const uint8_t *desc;
	uint32_t len;

	small_elf(&s, 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), 0, "%s", err.msg);
	cr_assert_eq(elf.type, ET_EXEC);
	cr_assert_eq(elf.machine, EM_X86_64);
	cr_assert_eq(elf.phnum, 3);
	cr_assert_eq(elf.shnum, 8); /* null, note, text, data, bss, strtab, symtab, shstrtab */
	cr_assert_not_null(elf.shstrtab);

	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), 0);
	cr_assert_str_eq(sec.name, ".text");
	cr_assert_eq(sec.addr, s.text);
	cr_assert_eq(sec.size, 64);
	cr_assert_eq(sec.data, s.img + (s.text - EB_BASE));
	cr_assert_eq(sec.data[0], 0x90);
	cr_assert_eq(gs_elf_find_section(&elf, ".bss", &sec), 0);
	cr_assert_null(sec.data, "SHT_NOBITS has no file data");
	cr_assert_eq(gs_elf_find_section(&elf, ".nope", &sec), -ENOENT);
	cr_assert_eq(gs_elf_section(&elf, elf.shnum, &sec), -EINVAL);

	cr_assert_eq(gs_elf_segment(&elf, 1, &seg), 0);
	cr_assert_eq(seg.type, PT_LOAD);
	cr_assert_eq(seg.flags, PF_R | PF_W);
	cr_assert_eq(seg.vaddr, s.data);
	cr_assert_eq(seg.filesz, 32);
	cr_assert_eq(seg.memsz, 32 + 4096);
	cr_assert_eq(seg.data, s.img + (s.data - EB_BASE));
	cr_assert_eq(gs_elf_segment(&elf, 3, &seg), -EINVAL);

	/* Address lookups: file-backed part only, within one segment. */
	cr_assert_eq(gs_elf_vaddr_bytes(&elf, s.data, 32), s.img + (s.data - EB_BASE));
	cr_assert_null(gs_elf_vaddr_bytes(&elf, s.data, 33), "bss is not file-backed");
	cr_assert_null(gs_elf_vaddr_bytes(&elf, s.data + 31, UINT64_MAX), "length overflow");
	cr_assert_eq(gs_elf_vaddr_avail(&elf, s.data + 30), 2);
	cr_assert_eq(gs_elf_vaddr_avail(&elf, s.data + 32), 0);
	cr_assert_eq(gs_elf_vaddr_avail(&elf, EB_BASE - 1), 0);
	cr_assert_eq(gs_elf_base_vaddr(&elf), EB_BASE);

	/* Notes: the GNU one, and Go's, whose owner is padded ("Go\0\0", namesz 4). */
	cr_assert_eq(gs_elf_find_note(&elf, "GNU", NT_GNU_BUILD_ID, &desc, &len), 0);
	cr_assert_eq(len, 20);
	cr_assert_eq(memcmp(desc, GNU_BUILDID, 20), 0);
	cr_assert_eq(gs_elf_find_note(&elf, "Go", 4, &desc, &len), 0);
	cr_assert_eq(len, sizeof(GO_BUILDID) - 1);
	cr_assert_eq(memcmp(desc, GO_BUILDID, len), 0);
	cr_assert_eq(gs_elf_find_note(&elf, "Go", 5, &desc, &len), -ENOENT);
	cr_assert_eq(gs_elf_find_note(&elf, "G", 4, &desc, &len), -ENOENT);
	free(s.img);
}

Test(elf, symbols)
{
	struct small s;
	struct gs_elf elf;
	struct gs_symtab syms;
	const struct gs_sym *sym;
	uint64_t v, sz;

	small_elf(&s, 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_symbol(&elf, "main.v", &v, &sz), 0);
	cr_assert_eq(v, s.data);
	cr_assert_eq(sz, 8);
	cr_assert_eq(gs_elf_symbol(&elf, "main.nope", &v, &sz), -ENOENT);
	cr_assert_eq(gs_elfsyms_load(&elf, &syms, NULL), 0);
	cr_assert_eq(syms.n, 2, "only defined functions are indexed");
	sym = gs_symtab_lookup(&syms, s.text + 15);
	cr_assert_not_null(sym);
	cr_assert_str_eq(sym->name, "main.f");
	cr_assert_null(gs_symtab_lookup(&syms, s.text + 16), "past main.f's size");
	cr_assert_null(gs_symtab_lookup(&syms, s.text - 1));
	sym = gs_symtab_lookup(&syms, s.text + 1000);
	cr_assert_not_null(sym);
	cr_assert_str_eq(sym->name, "main.g", "unsized symbol covers what follows");
	/* ... up to the next symbol of any kind (main.v), not every later address (issue 11:
	 * 0xffffffffffffffff gave runtime.etext). */
	cr_assert_null(gs_symtab_lookup(&syms, s.data), "main.g stops at main.v");
	cr_assert_null(gs_symtab_lookup(&syms, UINT64_MAX));
	gs_symtab_free(&syms);
	free(s.img);
}

/* Checks every accessor on an image that opened: nothing may point outside it. Returns the
 * open result. */
static int check_image(const uint8_t *img, size_t len)
{
	struct gs_elf elf;
	struct gs_error err = {0};
	struct gs_symtab syms;
	const uint8_t *end = img + len, *desc;
	uint32_t dlen;
	int rc = gs_elf_open_mem(&elf, img, len, &err);

	if (rc < 0) {
		cr_assert_eq(err.code, rc);
		cr_assert_neq(err.msg[0], '\0');
		return rc;
	}
	for (unsigned i = 0; i < elf.shnum; i++) {
		struct gs_elf_section sec;

		cr_assert_eq(gs_elf_section(&elf, i, &sec), 0);
		cr_assert_not_null(sec.name);
		if (*sec.name) {
			cr_assert(sec.name >= (const char *)img &&
				  sec.name + strlen(sec.name) < (const char *)end);
		}
		if (sec.offset > len || sec.size > len - sec.offset)
			cr_assert_null(sec.data, "section %u past the end has data", i);
		if (sec.data)
			cr_assert(sec.data >= img && sec.size <= (uint64_t)(end - sec.data));
	}
	for (unsigned i = 0; i < elf.phnum; i++) {
		struct gs_elf_segment seg;

		cr_assert_eq(gs_elf_segment(&elf, i, &seg), 0);
		if (seg.offset > len || seg.filesz > len - seg.offset)
			cr_assert_null(seg.data, "segment %u past the end has data", i);
		if (seg.data)
			cr_assert(seg.data >= img && seg.filesz <= (uint64_t)(end - seg.data));
	}
	if (gs_elf_find_note(&elf, "GNU", NT_GNU_BUILD_ID, &desc, &dlen) == 0)
		cr_assert(desc >= img && dlen <= (uint64_t)(end - desc));
	if (gs_elf_find_note(&elf, "Go", 4, &desc, &dlen) == 0)
		cr_assert(desc >= img && dlen <= (uint64_t)(end - desc));
	cr_assert_eq(gs_elfsyms_load(&elf, &syms, NULL), 0);
	for (size_t i = 0; i < syms.n; i++) {
		cr_assert((const uint8_t *)syms.syms[i].name >= img &&
			  (const uint8_t *)syms.syms[i].name + strlen(syms.syms[i].name) < end);
		cr_assert_eq(gs_symtab_lookup(&syms, syms.syms[i].addr)->addr, syms.syms[i].addr);
	}
	gs_symtab_free(&syms);
	(void)gs_elf_base_vaddr(&elf);
	return rc;
}

/* Opens every prefix [0, n) of img for n in [0, limit] from an exactly sized copy. */
static void truncate_everywhere(const uint8_t *img, size_t size, size_t limit)
{
	const Elf64_Ehdr *eh = ehdr(img);
	uint64_t ph_end = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	uint64_t sh_end = eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr);
	uint8_t *buf = malloc(limit ? limit : 1);

	cr_assert_not_null(buf);
	for (size_t n = 0; n <= limit && n <= size; n++) {
		uint8_t *copy = n ? malloc(n) : buf;
		struct gs_elf elf;
		int rc;

		cr_assert_not_null(copy);
		memcpy(copy, img, n);
		rc = check_image(copy, n);
		if (n < sizeof(Elf64_Ehdr) || n < ph_end)
			cr_assert_eq(rc, -EINVAL, "prefix %zu: rc %d", n, rc);
		else
			cr_assert_eq(rc, 0, "prefix %zu: rc %d", n, rc);
		if (rc == 0) {
			cr_assert_eq(gs_elf_open_mem(&elf, copy, n, NULL), 0);
			/* Section headers count only when all of them are inside. */
			cr_assert_eq(elf.shnum, n >= sh_end ? eh->e_shnum : 0, "prefix %zu", n);
		}
		if (copy != buf)
			free(copy);
	}
	free(buf);
}

Test(elf, truncated_bin_true)
{
	size_t size;
	uint8_t *img = tu_read_file("/bin/true", &size);

	if (!img)
		cr_skip_test("/bin/true missing");
	cr_assert_eq(check_image(img, size), 0);
	truncate_everywhere(img, size, size);
	free(img);
}

Test(elf, truncated_go_binary_head)
{
	size_t size;
	uint8_t *img = tu_read_file(TU_VET127, &size);

	if (!img)
		cr_skip_test("%s missing", TU_VET127);
	cr_assert_eq(check_image(img, size), 0);
	truncate_everywhere(img, size, 64 * 1024);
	free(img);
}

Test(elf, truncated_small_elf)
{
	struct small s;

	small_elf(&s, 0);
	truncate_everywhere(s.img, s.size, s.size);
	free(s.img);
}

/* The small ELF with n bytes at off replaced by val (s->img must be freed). */
static uint8_t *mutated(struct small *s, size_t off, const void *val, size_t n)
{
	small_elf(s, 0);
	memcpy(s->img + off, val, n);
	return s->img;
}

Test(elf, header_errors)
{
	struct small s;
	struct gs_elf elf;
	struct gs_error err = {0};
	uint8_t b;
	uint16_t h;
	uint64_t q;

	mutated(&s, 1, "X", 1);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -EINVAL);
	cr_assert(strstr(err.msg, "bad magic"), "%s", err.msg);
	free(s.img);

	b = ELFCLASS32;
	mutated(&s, EI_CLASS, &b, 1);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -ENOTSUP);
	free(s.img);

	b = ELFDATA2MSB;
	mutated(&s, EI_DATA, &b, 1);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -ENOTSUP);
	free(s.img);

	/* Fewer bytes than an ELF header. */
	small_elf(&s, 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, sizeof(Elf64_Ehdr) - 1, &err), -EINVAL);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, 0, &err), -EINVAL);
	free(s.img);

	/* Program headers: count running past the end, offset overflowing, wrong entry size. */
	h = 0xffff;
	mutated(&s, offsetof(Elf64_Ehdr, e_phnum), &h, 2);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -EINVAL);
	cr_assert(strstr(err.msg, "program headers"), "%s", err.msg);
	free(s.img);
	q = UINT64_MAX - 8;
	mutated(&s, offsetof(Elf64_Ehdr, e_phoff), &q, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -EINVAL);
	free(s.img);
	h = 32;
	mutated(&s, offsetof(Elf64_Ehdr, e_phentsize), &h, 2);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, &err), -EINVAL);
	free(s.img);
}

Test(elf, broken_section_headers_are_ignored)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_section sec;
	struct gs_elf_segment seg;
	uint16_t h;
	uint64_t q;

	/* shnum past the end: behave as if there were no section headers; segments still work. */
	h = 0xfff0;
	mutated(&s, offsetof(Elf64_Ehdr, e_shnum), &h, 2);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(elf.shnum, 0);
	cr_assert_null(elf.shdrs);
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), -ENOENT);
	cr_assert_eq(gs_elf_section(&elf, 0, &sec), -EINVAL);
	cr_assert_eq(gs_elf_segment(&elf, 0, &seg), 0);
	free(s.img);

	q = UINT64_MAX - 100;
	mutated(&s, offsetof(Elf64_Ehdr, e_shoff), &q, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(elf.shnum, 0);
	free(s.img);

	h = 40;
	mutated(&s, offsetof(Elf64_Ehdr, e_shentsize), &h, 2);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(elf.shnum, 0);
	free(s.img);

	/* No section headers at all (sstrip-like). */
	small_elf(&s, EB_NO_SHDRS);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(elf.shnum, 0);
	cr_assert_eq(elf.phnum, 3);
	free(s.img);
}

Test(elf, shstrndx_out_of_range)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_section sec;
	uint16_t h = 200;

	mutated(&s, offsetof(Elf64_Ehdr, e_shstrndx), &h, 2);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_null(elf.shstrtab);
	cr_assert_eq(gs_elf_section(&elf, 2, &sec), 0);
	cr_assert_str_eq(sec.name, "", "no name table: empty names");
	cr_assert_eq(sec.addr, s.text, "the rest of the header is still read");
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), -ENOENT);
	free(s.img);
}

/* Offset in img of section header idx. */
static size_t shdr_off(const uint8_t *img, unsigned idx)
{
	return ehdr(img)->e_shoff + (size_t)idx * sizeof(Elf64_Shdr);
}

Test(elf, section_names_past_strtab)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_section sec;
	uint32_t name;
	uint64_t sz;
	unsigned stridx;

	/* sh_name past the end of .shstrtab. */
	small_elf(&s, 0);
	name = 0x7fffffff;
	memcpy(s.img + shdr_off(s.img, 2) + offsetof(Elf64_Shdr, sh_name), &name, 4);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_section(&elf, 2, &sec), 0);
	cr_assert_str_eq(sec.name, "");
	free(s.img);

	/* .shstrtab shrunk so that the last name has no terminating NUL inside it. */
	small_elf(&s, 0);
	stridx = ehdr(s.img)->e_shstrndx;
	memcpy(&sz, s.img + shdr_off(s.img, stridx) + offsetof(Elf64_Shdr, sh_size), 8);
	sz -= 1;
	memcpy(s.img + shdr_off(s.img, stridx) + offsetof(Elf64_Shdr, sh_size), &sz, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_section(&elf, stridx, &sec), 0);
	cr_assert_str_eq(sec.name, "", "unterminated name must not be used");
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), 0, "other names still work");
	free(s.img);

	/* A .shstrtab of size 0 is treated as missing. */
	small_elf(&s, 0);
	sz = 0;
	memcpy(s.img + shdr_off(s.img, stridx) + offsetof(Elf64_Shdr, sh_size), &sz, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_null(elf.shstrtab);
	free(s.img);
}

Test(elf, section_data_out_of_file)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_section sec;
	uint64_t q;

	/* Offset near UINT64_MAX: offset + size overflows. */
	small_elf(&s, 0);
	q = UINT64_MAX - 4;
	memcpy(s.img + shdr_off(s.img, 2) + offsetof(Elf64_Shdr, sh_offset), &q, 8);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), 0);
	cr_assert_null(sec.data);
	free(s.img);

	/* Size one byte past the end of the file. */
	small_elf(&s, 0);
	memcpy(&q, s.img + shdr_off(s.img, 2) + offsetof(Elf64_Shdr, sh_offset), 8);
	q = s.size - q + 1;
	memcpy(s.img + shdr_off(s.img, 2) + offsetof(Elf64_Shdr, sh_size), &q, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), 0);
	cr_assert_null(sec.data);
	q -= 1; /* exactly to the end: fine */
	memcpy(s.img + shdr_off(s.img, 2) + offsetof(Elf64_Shdr, sh_size), &q, 8);
	cr_assert_eq(gs_elf_find_section(&elf, ".text", &sec), 0);
	cr_assert_not_null(sec.data);
	free(s.img);
}

Test(elf, zero_size_sections)
{
	struct elfb b;
	struct gs_elf elf;
	struct gs_elf_section sec;
	uint8_t *img;
	size_t size;

	eb_init(&b);
	eb_add_data(&b, ".empty", SHT_PROGBITS, SHF_ALLOC, NULL, 0, 1);
	eb_section(&b, ".atend", SHT_PROGBITS, 0, 0, 0, 0, 0, 0);
	img = eb_finish(&b, &size, 0);
	/* Point .atend at exactly the end of the file. */
	memcpy(img + shdr_off(img, 2) + offsetof(Elf64_Shdr, sh_offset), &(uint64_t){size}, 8);
	cr_assert_eq(check_image(img, size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, img, size, NULL), 0);
	cr_assert_eq(gs_elf_find_section(&elf, ".empty", &sec), 0);
	cr_assert_eq(sec.size, 0);
	cr_assert_eq(gs_elf_find_section(&elf, ".atend", &sec), 0);
	cr_assert_eq(sec.size, 0);
	cr_assert_eq(sec.data, img + size, "empty range at the end is in range");
	free(img);
}

Test(elf, segments_out_of_file)
{
	struct small s;
	struct gs_elf elf;
	struct gs_elf_segment seg;
	uint64_t q = 1ULL << 40;
	size_t off;

	small_elf(&s, 0);
	off = ehdr(s.img)->e_phoff + sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_filesz);
	memcpy(s.img + off, &q, 8);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_segment(&elf, 1, &seg), 0);
	cr_assert_null(seg.data);
	cr_assert_null(gs_elf_vaddr_bytes(&elf, s.data, 1), "segment without file data");
	cr_assert_eq(gs_elf_vaddr_avail(&elf, s.data), 0);
	free(s.img);
}

/* An ELF whose only note area is the given bytes (as SHT_NOTE and PT_NOTE). */
static uint8_t *note_elf(const void *notes, size_t n, size_t *size)
{
	struct elfb b;
	uint64_t addr;

	eb_init(&b);
	addr = eb_add_data(&b, ".note", SHT_NOTE, SHF_ALLOC, notes, n, 4);
	eb_segment(&b, PT_NOTE, PF_R, addr - EB_BASE, addr, n, n);
	return eb_finish(&b, size, 0);
}

/* gs_elf_find_note's result for the GNU build ID in an ELF whose notes are these bytes (the
 * image itself checked by check_image first when check is set); *len is the note's length. */
static int find_gnu_note(const uint8_t *notes, size_t n, bool check, uint32_t *len)
{
	const uint8_t *desc;
	struct gs_elf elf;
	size_t size;
	uint8_t *img = note_elf(notes, n, &size);
	int rc;

	if (check)
		cr_assert_eq(check_image(img, size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, img, size, NULL), 0);
	rc = gs_elf_find_note(&elf, "GNU", NT_GNU_BUILD_ID, &desc, len);
	free(img);
	return rc;
}

Test(elf, notes_past_end)
{
	uint8_t notes[64];
	size_t n;
	uint32_t len, v;

	n = eb_note(notes, sizeof(notes), "GNU", 0, NT_GNU_BUILD_ID, GNU_BUILDID, 20);
	/* Well-formed first, so that the failures below are caused by the corruption. */
	cr_assert_eq(find_gnu_note(notes, n, false, &len), 0);

	/* namesz past the end of the note area. */
	memcpy(notes, &(uint32_t){0xfffffff0}, 4);
	cr_assert_eq(find_gnu_note(notes, n, true, &len), -ENOENT);

	/* descsz past the end (by one byte, and hugely). */
	v = 4;
	memcpy(notes, &v, 4);
	v = 21;
	memcpy(notes + 4, &v, 4);
	cr_assert_eq(find_gnu_note(notes, n, false, &len), -ENOENT);
	v = 0xffffffff;
	memcpy(notes + 4, &v, 4);
	cr_assert_eq(find_gnu_note(notes, n, false, &len), -ENOENT);

	/* A note area shorter than a note header. */
	cr_assert_eq(find_gnu_note(notes, 11, false, &len), -ENOENT);
}

Test(elf, many_empty_notes_then_match)
{
	uint8_t notes[12 * 40 + 64];
	size_t n = 0;
	uint32_t len;

	/* Zero-sized notes still advance by their 12-byte header. */
	memset(notes, 0, 12 * 40);
	n = 12 * 40;
	n += eb_note(notes + n, sizeof(notes) - n, "GNU", 0, NT_GNU_BUILD_ID, GNU_BUILDID, 20);
	cr_assert_eq(find_gnu_note(notes, n, false, &len), 0);
	cr_assert_eq(len, 20);
}

Test(elf, real_binaries_notes)
{
	struct gs_elf elf;
	struct gs_error err = {0};
	const uint8_t *desc;
	uint32_t len;

	if (gs_elf_open_path(&elf, TU_VET127, &err) < 0)
		cr_skip_test("%s: %s", TU_VET127, err.msg);
	cr_assert_eq(gs_elf_find_note(&elf, "GNU", NT_GNU_BUILD_ID, &desc, &len), 0);
	cr_assert_eq(len, 20);
	/* Go writes its owner as "Go\0\0" (namesz 4); the ID is four '/'-separated hashes. */
	cr_assert_eq(gs_elf_find_note(&elf, "Go", 4, &desc, &len), 0);
	cr_assert_gt(len, 40);
	cr_assert_eq(memchr(desc, '/', len) != NULL, true);
	gs_elf_close(&elf);
}

Test(elf, open_path_errors)
{
	struct gs_elf elf;
	struct gs_error err = {0};
	char tmpl[] = "/tmp/goscope-elf-XXXXXX";
	int fd;

	cr_assert_eq(gs_elf_open_path(&elf, "/nonexistent/goscope", &err), -ENOENT);
	cr_assert_eq(gs_elf_open_path(&elf, "/tmp", &err), -EINVAL, "a directory");
	fd = mkstemp(tmpl);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd,
			   "\x7f"
			   "ELF",
			   4),
		     4);
	close(fd);
	cr_assert_eq(gs_elf_open_path(&elf, tmpl, &err), -EINVAL, "4-byte file");
	cr_assert(strstr(err.msg, tmpl), "message names the file: %s", err.msg);
	unlink(tmpl);
}

Test(elf, bad_symbol_tables)
{
	struct small s;
	struct gs_elf elf;
	struct gs_symtab syms;
	uint64_t v, q;
	uint32_t w;
	unsigned symidx = 6, stridx = 5; /* see small_elf: strtab then symtab */

	/* Symbol name offsets past the string table: skipped. */
	small_elf(&s, 0);
	memcpy(&q, s.img + shdr_off(s.img, symidx) + offsetof(Elf64_Shdr, sh_offset), 8);
	w = 0xffffff;
	memcpy(s.img + q + sizeof(Elf64_Sym), &w, 4); /* main.f */
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_symbol(&elf, "main.f", &v, NULL), -ENOENT);
	cr_assert_eq(gs_elfsyms_load(&elf, &syms, NULL), 0);
	cr_assert_eq(syms.n, 1);
	gs_symtab_free(&syms);
	free(s.img);

	/* sh_link out of range and a wrong entsize: the table is ignored. */
	small_elf(&s, 0);
	w = 999;
	memcpy(s.img + shdr_off(s.img, symidx) + offsetof(Elf64_Shdr, sh_link), &w, 4);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_symbol(&elf, "main.f", &v, NULL), -ENOENT);
	free(s.img);
	small_elf(&s, 0);
	q = 23;
	memcpy(s.img + shdr_off(s.img, symidx) + offsetof(Elf64_Shdr, sh_entsize), &q, 8);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_symbol(&elf, "main.f", &v, NULL), -ENOENT);
	free(s.img);

	/* A symbol table whose size is not a multiple of the entry size, running to the end. */
	small_elf(&s, 0);
	q = 3 * sizeof(Elf64_Sym) + 5;
	memcpy(s.img + shdr_off(s.img, symidx) + offsetof(Elf64_Shdr, sh_size), &q, 8);
	cr_assert_eq(check_image(s.img, s.size), 0);
	free(s.img);

	/* String table that is not NUL-terminated at its end. */
	small_elf(&s, 0);
	memcpy(&q, s.img + shdr_off(s.img, stridx) + offsetof(Elf64_Shdr, sh_size), 8);
	q -= 1; /* cuts the terminator of the last name ("undef") */
	memcpy(s.img + shdr_off(s.img, stridx) + offsetof(Elf64_Shdr, sh_size), &q, 8);
	cr_assert_eq(check_image(s.img, s.size), 0);
	cr_assert_eq(gs_elf_open_mem(&elf, s.img, s.size, NULL), 0);
	cr_assert_eq(gs_elf_symbol(&elf, "undef", &v, NULL), -ENOENT);
	cr_assert_eq(gs_elf_symbol(&elf, "main.v", &v, NULL), 0);
	free(s.img);
}

Test(elf, random_header_corruption)
{
	struct small s;
	uint64_t seed = 0x5eed;

	/* Random bytes over the ELF, program and section headers, many times. */
	for (int iter = 0; iter < 3000; iter++) {
		size_t off, shoff;

		small_elf(&s, 0);
		shoff = ehdr(s.img)->e_shoff;
		for (int k = 0; k < 4; k++) {
			uint64_t r = tu_rand(&seed);

			if (k & 1)
				off = shoff + r % (s.size - shoff);
			else
				off = r % (sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr));
			if (off < SELFMAG + 2)
				continue; /* keep it an ELF64 LE so the rest is exercised */
			s.img[off] = (uint8_t)(r >> 32);
		}
		check_image(s.img, s.size);
		free(s.img);
	}
}
