/* make_corpus.c — writes the crafted part of the fuzz seed corpus (tests/fuzz/corpus/): small
 * ELFs with notes and symbols, Go binaries in all four pclntab formats (tests/unit/pclnbuild),
 * raw .go.buildinfo blobs laid out for fuzz_buildinfo's wrapper, and raw pclntabs with inline
 * trees laid out for fuzz_inline's wrapper. Run by tests/fuzz/make_corpus.sh, which adds the
 * slices of real Go binaries. Usage: make_corpus OUTDIR */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/elfbuild.c"
#include "tests/unit/pclnbuild.c"

static const char *outdir;

static void put(const char *name, const void *data, size_t size)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void small_elfs(void)
{
	static const uint8_t code[32] = {0x55, 0x48, 0x89, 0xe5, 0xc3};
	struct eb_sym syms[] = {
		{"main.f", 0, 16, STT_FUNC, 2},
		{"main.g", 0, 0, STT_FUNC, 2},
		{"runtime.text", 0, 0, STT_FUNC, 2},
	};
	uint8_t notes[256];
	size_t n, size;
	uint64_t text, naddr;
	uint8_t *img;

	for (unsigned noshdr = 0; noshdr < 2; noshdr++) {
		struct elfb b;

		eb_init(&b);
		n = eb_note(notes, sizeof(notes), "Go", 4, 4, "abc/def/ghi/jkl", 15);
		n += eb_note(notes + n, sizeof(notes) - n, "GNU", 0, NT_GNU_BUILD_ID,
			     "0123456789abcdefghij", 20);
		naddr = eb_add_data(&b, ".note.go.buildid", SHT_NOTE, SHF_ALLOC, notes, n, 4);
		text = eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code,
				   sizeof(code), 16);
		eb_add_load(&b, PF_R | PF_X, EB_BASE, text + sizeof(code));
		eb_segment(&b, PT_NOTE, PF_R, naddr - EB_BASE, naddr, n, n);
		syms[0].value = text;
		syms[1].value = text + 16;
		syms[2].value = text;
		eb_add_symtab(&b, syms, 3);
		img = eb_finish(&b, &size, noshdr ? EB_NO_SHDRS : 0);
		put(noshdr ? "elf-small-noshdr.elf" : "elf-small.elf", img, size);
		free(img);
	}
}

static void crafted_go(void)
{
	static const struct {
		const char *name;
		enum gs_pclntab_format fmt;
		struct pb_elf_opts o;
	} cases[] = {
		{"go12-crafted.elf", GS_PCLNTAB_GO12, {.go_version = "go1.15.15"}},
		{"go116-crafted.elf", GS_PCLNTAB_GO116, {.go_version = "go1.16.15"}},
		{"go118-crafted.elf",
		 GS_PCLNTAB_GO118,
		 {.go_version = "go1.19.8", .moduledata = true}},
		{"go120-crafted.elf",
		 GS_PCLNTAB_GO120,
		 {.go_version = "go1.27.3", .moduledata = true}},
		{"go120-crafted-syms.elf", GS_PCLNTAB_GO120, {.symbols = true}},
		{"go120-crafted-noshdr.elf",
		 GS_PCLNTAB_GO120,
		 {.go_version = "go1.24.4", .moduledata = true, .eb_flags = EB_NO_SHDRS}},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pb_table t;
		struct pb_out out;
		uint8_t *img;
		size_t size;

		pb_sample(&t, cases[i].fmt);
		if (pb_build(&t, &out) < 0)
			exit(1);
		img = pb_elf(&t, &out, &cases[i].o, &size);
		put(cases[i].name, img, size);
		free(img);
		pb_free(&out);
	}
}

/* .go.buildinfo blobs as fuzz_buildinfo places them (at FUZZ_BLOB_ADDR). */
static void buildinfo_blobs(void)
{
	static const char modinfo[] =
		"0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
		"path\texample.com/x\nmod\texample.com/x\t(devel)\t\nbuild\tCGO_ENABLED=0\n"
		"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";
	uint8_t blob[512];
	size_t n =
		eb_buildinfo_inline(blob, sizeof(blob), "go1.27.3", modinfo, sizeof(modinfo) - 1);

	put("buildinfo-inline.bin", blob, n);
	/* Pointer format: header, then two string headers, then the strings. */
	for (unsigned ptr = 4; ptr <= 8; ptr += 4) {
		static const char vers[] = "go1.16.15",
				  mod[] = "path\tcmd/x\nmod\tex.com/m\tv1.0.0\t\n";
		uint64_t a = FUZZ_BLOB_ADDR, vh = a + 32, mh = vh + 2 * ptr, vs = mh + 2 * ptr,
			 ms = vs + sizeof(vers) - 1;
		uint64_t vl = sizeof(vers) - 1, ml = sizeof(mod) - 1;

		memset(blob, 0, sizeof(blob));
		memcpy(blob, "\xff Go buildinf:", 14);
		blob[14] = (uint8_t)ptr;
		blob[15] = 0;
		memcpy(blob + 16, &vh, ptr);
		memcpy(blob + 16 + ptr, &mh, ptr);
		memcpy(blob + 32, &vs, ptr);
		memcpy(blob + 32 + ptr, &vl, ptr);
		memcpy(blob + 32 + 2 * ptr, &ms, ptr);
		memcpy(blob + 32 + 3 * ptr, &ml, ptr);
		memcpy(blob + (vs - a), vers, vl);
		memcpy(blob + (ms - a), mod, ml);
		put(ptr == 4 ? "buildinfo-ptr4.bin" : "buildinfo-ptr8.bin", blob, ms - a + ml);
	}
}

/* Raw pclntabs (+ 4-byte gofunc trailer) as fuzz_inline places them. */
static void inline_tables(void)
{
	static const struct pb_row rows[] = {
		{0x00, 0, 10, -1, 0}, {0x10, 0, 11, -1, 8}, {0x18, 1, 30, 0, 8},
		{0x20, 1, 31, 0, 8},  {0x28, 1, 40, 1, 8},  {0x30, 0, 12, -1, 8},
	};
	static const struct pb_inl two[] = {
		{"main.b", -1, 0, 0, 11, 0x10, 29},
		{"main.c", 0, 23, 1, 30, 0x18, 39},
	};
	static const struct pb_inl cycle[] = {
		{"main.b", -1, 0, 0, 11, 0x28, 29},
		{"main.c", 0, 0, 1, 30, 0x18, 39},
	};
	static const struct {
		const char *name;
		enum gs_pclntab_format fmt;
		const struct pb_inl *inl;
	} cases[] = {
		{"inline-go120.pcln", GS_PCLNTAB_GO120, two},
		{"inline-go118.pcln", GS_PCLNTAB_GO118, two},
		{"inline-go116.pcln", GS_PCLNTAB_GO116, two},
		{"inline-go12.pcln", GS_PCLNTAB_GO12, two},
		{"inline-go120-cycle.pcln", GS_PCLNTAB_GO120, cycle},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pb_func funcs[3];
		struct pb_table t;
		struct pb_out out;
		uint8_t *buf;
		uint32_t goff;

		pb_sample(&t, cases[i].fmt);
		memcpy(funcs, t.funcs, sizeof(funcs));
		funcs[0].rows = rows;
		funcs[0].nrows = 6;
		funcs[0].inl = cases[i].inl;
		funcs[0].ninl = 2;
		t.funcs = funcs;
		t.text = FUZZ_TEXT;
		t.addr = FUZZ_PCLN_ADDR;
		if (pb_build(&t, &out) < 0)
			exit(1);
		buf = malloc(out.size + 4);
		memcpy(buf, out.data, out.size);
		goff = (uint32_t)out.gofunc_off;
		memcpy(buf + out.size, &goff, 4);
		put(cases[i].name, buf, out.size + 4);
		free(buf);
		pb_free(&out);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	small_elfs();
	crafted_go();
	buildinfo_blobs();
	inline_tables();
	return 0;
}
