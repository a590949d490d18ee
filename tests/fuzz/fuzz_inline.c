/* fuzz_inline.c — libFuzzer target for inline-tree expansion. Random bytes almost never make
 * a whole binary whose pclntab reaches the inline walk, so the input is only the pclntab (with
 * its gofunc area, as in Go 1.26+ binaries) and this target wraps it in a fixed ELF: text at
 * FUZZ_TEXT (symbol runtime.text), the input at FUZZ_PCLN_ADDR as .gopclntab, gofunc at the
 * input offset named by its last 4 bytes (symbol go:func.*), and build info whose Go version
 * follows the table's magic (so the 1.18/1.20 inlinedCall layouts and wrapper IDs are used).
 * Then every function is symbolized at a spread of PCs, with inline expansion. */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/pclntab.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/elfbuild.c"

#define FI_MAX_FUNCS 24
#define FI_PCS_PER_FUNC 24

static const char *fi_version(const uint8_t *data, size_t size)
{
	if (size < 4 || data[1] != 0xff || data[2] != 0xff || data[3] != 0xff)
		return "go1.27.3";
	switch (data[0]) {
	case 0xf0:
		return "go1.19.8";
	case 0xfa:
		return "go1.16.15";
	case 0xfb:
		return "go1.15.15";
	default:
		return "go1.27.3";
	}
}

static uint8_t *fi_wrap(const uint8_t *data, size_t size, size_t *out_size)
{
	struct elfb b;
	uint8_t blob[128];
	uint64_t off, goff = 0;
	size_t n;
	unsigned text_idx, pcln_idx;

	if (size >= 4) {
		uint32_t x;

		memcpy(&x, data + size - 4, 4);
		goff = x % size;
	}
	eb_init(&b);
	off = eb_append(&b, "\xcc", 1, 1);
	text_idx = eb_section(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, FUZZ_TEXT, off,
			      1, 0, 0);
	eb_segment(&b, PT_LOAD, PF_R | PF_X, 0, EB_BASE, off + 1, FUZZ_TEXT_MEMSZ);
	off = eb_append(&b, data, size, 0x1000);
	pcln_idx = eb_section(&b, ".gopclntab", SHT_PROGBITS, SHF_ALLOC, FUZZ_PCLN_ADDR, off, size,
			      0, 0);
	eb_segment(&b, PT_LOAD, PF_R, off, FUZZ_PCLN_ADDR, size, size);
	n = eb_buildinfo_inline(blob, sizeof(blob), fi_version(data, size), "path\tfuzz\n", 10);
	off = eb_append(&b, blob, n, 0x1000);
	eb_section(&b, ".go.buildinfo", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, EB_BASE + off, off, n,
		   0, 0);
	eb_segment(&b, PT_LOAD, PF_R | PF_W, off, EB_BASE + off, n, n);
	{
		struct eb_sym syms[] = {
			{"runtime.text", FUZZ_TEXT, 0, STT_FUNC, (uint16_t)text_idx},
			{"go:func.*", FUZZ_PCLN_ADDR + goff, 0, STT_OBJECT, (uint16_t)pcln_idx},
		};

		eb_add_symtab(&b, syms, 2);
	}
	return eb_finish(&b, out_size, 0);
}

struct fi_fns {
	uint64_t entry[FI_MAX_FUNCS], end[FI_MAX_FUNCS];
	unsigned n;
};

static int fi_collect(void *ctx, const char *name, uint64_t entry, uint64_t end)
{
	struct fi_fns *l = ctx;

	fuzz_touch_str(name);
	l->entry[l->n] = entry;
	l->end[l->n] = end;
	return ++l->n == FI_MAX_FUNCS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct fi_fns fns = {.n = 0};
	uint8_t *img;
	size_t img_size;

	if (size > (1u << 20))
		return 0;
	img = fi_wrap(data, size, &img_size);
	if (gs_binary_open_mem(img, img_size, "fuzz-inline", &bin, &err) < 0) {
		if (!err.msg[0])
			__builtin_trap();
		free(img);
		return 0;
	}
	gs_binary_foreach_function(bin, fi_collect, &fns);
	for (unsigned i = 0; i < fns.n; i++) {
		uint64_t len = fns.end[i] - fns.entry[i];
		uint64_t step = len / FI_PCS_PER_FUNC ? len / FI_PCS_PER_FUNC : 1;

		for (uint64_t pc = fns.entry[i], k = 0; pc < fns.end[i] && k < FI_PCS_PER_FUNC;
		     pc += step, k++) {
			fuzz_symbolize(bin, pc, 0);
			fuzz_symbolize(bin, pc + 1, GS_LOOKUP_RETURN_ADDR);
		}
	}
	gs_binary_close(bin);
	free(img);
	return 0;
}
