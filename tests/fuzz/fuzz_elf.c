/* fuzz_elf.c — libFuzzer target for the bounds-checked ELF reader: the input is an ELF image;
 * every section, segment, note and symbol the reader accepts is read in full, so that a
 * pointer or size that strays outside the input trips ASan. */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/elf_image.h"
#include "symbolizer/elfsyms.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {".gopclntab", ".go.buildinfo", ".symtab", ".text"};
	struct gs_elf elf;
	struct gs_elf_section sec;
	struct gs_elf_segment seg;
	struct gs_symtab syms;
	const uint8_t *desc;
	uint32_t dlen;
	uint64_t v, sz;

	if (gs_elf_open_mem(&elf, data, size, NULL) < 0)
		return 0;
	for (unsigned i = 0; i < elf.shnum; i++) {
		if (gs_elf_section(&elf, i, &sec) < 0)
			__builtin_trap();
		fuzz_touch_str(sec.name);
		if (sec.data)
			fuzz_within(data, size, sec.data, sec.size);
	}
	for (unsigned i = 0; i < elf.phnum; i++) {
		const uint8_t *p;

		if (gs_elf_segment(&elf, i, &seg) < 0)
			__builtin_trap();
		if (seg.data)
			fuzz_within(data, size, seg.data, seg.filesz);
		/* Address lookups scan all segments: keep this loop linear (phnum <= 65535). */
		if (i >= 64)
			continue;
		p = gs_elf_vaddr_bytes(&elf, seg.vaddr, seg.filesz);
		if (p)
			fuzz_within(data, size, p, seg.filesz);
		v = gs_elf_vaddr_avail(&elf, seg.vaddr + seg.filesz / 2);
		p = gs_elf_vaddr_bytes(&elf, seg.vaddr + seg.filesz / 2, v);
		if (p)
			fuzz_within(data, size, p, v);
	}
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (gs_elf_find_section(&elf, names[i], &sec) == 0 && sec.data)
			fuzz_within(data, size, sec.data, sec.size);
	}
	if (gs_elf_find_note(&elf, "GNU", NT_GNU_BUILD_ID, &desc, &dlen) == 0)
		fuzz_within(data, size, desc, dlen);
	if (gs_elf_find_note(&elf, "Go", 4, &desc, &dlen) == 0)
		fuzz_within(data, size, desc, dlen);
	if (gs_elf_symbol(&elf, "runtime.text", &v, &sz) == 0)
		fuzz_sink ^= (uint8_t)(v ^ sz);
	if (gs_elfsyms_load(&elf, &syms, NULL) == 0) {
		for (size_t i = 0; i < syms.n; i++) {
			const struct gs_sym *s = gs_symtab_lookup(&syms, syms.syms[i].addr);

			if (!s)
				__builtin_trap(); /* a symbol's own address finds a symbol */
			fuzz_touch_str(syms.syms[i].name);
			if (i && syms.syms[i - 1].addr > syms.syms[i].addr)
				__builtin_trap(); /* sorted */
		}
		gs_symtab_lookup(&syms, 0);
		gs_symtab_lookup(&syms, UINT64_MAX);
		gs_symtab_free(&syms);
	}
	fuzz_sink ^= (uint8_t)gs_elf_base_vaddr(&elf);
	return 0;
}
