/* fuzz_buildinfo.c — libFuzzer target for .go.buildinfo reading. The input is tried as a
 * whole ELF, then as the blob itself inside a fixed wrapper ELF (at FUZZ_BLOB_ADDR in a
 * writable segment that ends with it: once as a .go.buildinfo section, once found by the
 * section-less scan), so that the fuzzer works on the blob format directly; the modinfo parser
 * and the varint decoder also get the raw bytes. */
#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/buildinfo.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/elfbuild.c"

/* Larger inputs are only tried as whole ELFs: real blobs are a few hundred bytes. */
#define FB_MAX_BLOB (64 * 1024)

static void fb_check(const struct gs_elf *elf)
{
	struct gs_buildinfo bi;
	struct gs_error err = {0};
	char val[32];
	int rc = gs_buildinfo_read(elf, &bi, &err);

	if (rc < 0) {
		if (err.code != rc || !err.msg[0] || bi.modinfo)
			__builtin_trap();
		return;
	}
	if (strlen(bi.go_version) == 0 || strlen(bi.go_version) >= sizeof(bi.go_version) ||
	    strlen(bi.modinfo) > bi.modinfo_len)
		__builtin_trap();
	fuzz_touch(bi.modinfo, bi.modinfo_len + 1);
	fuzz_touch_str(bi.path);
	fuzz_touch_str(bi.mod_path);
	fuzz_touch_str(bi.mod_version);
	gs_buildinfo_setting(&bi, "CGO_ENABLED", val, sizeof(val));
	gs_buildinfo_setting(&bi, "-buildmode", val, 1);
	gs_buildinfo_free(&bi);
}

/* The wrapper: text at 0x401000, the blob alone in a RW segment at FUZZ_BLOB_ADDR. */
static uint8_t *fb_wrap(const uint8_t *data, size_t size, bool section, unsigned opts,
			size_t *out_size)
{
	struct elfb b;
	uint64_t off;

	eb_init(&b);
	eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, "\xc3", 1, 1);
	eb_add_load(&b, PF_R | PF_X, EB_BASE, EB_BASE + b.size);
	off = eb_append(&b, data, size, 0x1000);
	if (EB_BASE + off != FUZZ_BLOB_ADDR)
		__builtin_trap();
	if (section)
		eb_section(&b, ".go.buildinfo", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, FUZZ_BLOB_ADDR,
			   off, size, 0, 0);
	eb_segment(&b, PT_LOAD, PF_R | PF_W, off, FUZZ_BLOB_ADDR, size, size);
	return eb_finish(&b, out_size, opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_elf elf;
	uint8_t *img, *copy;
	size_t img_size;
	uint64_t v;

	if (gs_elf_open_mem(&elf, data, size, NULL) == 0)
		fb_check(&elf);
	if (size > FB_MAX_BLOB)
		return 0;
	for (int mode = 0; mode < 2; mode++) {
		img = fb_wrap(data, size, mode == 0, mode ? EB_NO_SHDRS : 0, &img_size);
		/* Exactly sized, so the end of the blob is the end of the allocation. */
		copy = malloc(img_size);
		if (!copy)
			__builtin_trap();
		memcpy(copy, img, img_size);
		free(img);
		if (gs_elf_open_mem(&elf, copy, img_size, NULL) < 0)
			__builtin_trap();
		fb_check(&elf);
		free(copy);
	}
	/* The modinfo parser on the raw bytes (in their own exactly sized buffer). */
	copy = malloc(size ? size : 1);
	if (!copy)
		__builtin_trap();
	memcpy(copy, data, size);
	{
		struct gs_buildinfo bi;
		char val[16] = "";

		memset(&bi, 0, sizeof(bi));
		gs_buildinfo_parse_modinfo(&bi, (const char *)copy, size);
		fuzz_touch_str(bi.path);
		fuzz_touch_str(bi.mod_path);
		fuzz_touch_str(bi.mod_version);
		bi.modinfo = (char *)copy;
		bi.modinfo_len = size;
		gs_buildinfo_setting(&bi, "K", val, sizeof(val));
		fuzz_touch_str(val);
	}
	free(copy);
	for (size_t i = 0; i < size && i < 64; i++)
		gs_uvarint(data + i, data + size, &v);
	return 0;
}
