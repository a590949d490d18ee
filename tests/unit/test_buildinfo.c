/* test_buildinfo.c — reading .go.buildinfo (symbolizer/buildinfo.c) from crafted blobs in
 * minimal ELFs: both formats, every way a length or pointer can lead out of the data, the
 * section-less scan, sentinel stripping, modinfo parsing and the varint decoder. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/buildinfo.h"
#include "symbolizer/elf_image.h"
#include "tests/unit/elfbuild.h"
#include "tests/unit/testutil.h"

#define MAGIC "\xff Go buildinf:"
/* runtime/debug's modinfo sentinels (16 bytes each). */
#define SENT_START "0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6"
#define SENT_END "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"
#define MODINFO                                                                                    \
	"path\texample.com/svc/cmd/svc\n"                                                          \
	"mod\texample.com/svc\t(devel)\t\n"                                                        \
	"dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n"                                                 \
	"build\t-buildmode=exe\n"                                                                  \
	"build\t-compiler=gc\n"                                                                    \
	"build\tCGO_ENABLED=0\n"                                                                   \
	"build\tGOARCH=amd64\n"
#define RW_ADDR (EB_BASE + 0x2000) /* where bi_elf's writable segment starts */

#define BI_NO_SECTION 0x100	  /* no .go.buildinfo section header (the blob is still there) */
#define BI_EXEC 0x200		  /* make the segment RWX */
#define BI_MISALIGN(n) ((n) << 4) /* place the blob n (< 16) bytes past a 16-byte boundary */

struct img {
	uint8_t *p;
	size_t size;
};

/* An ELF whose writable PT_LOAD holds pre (at RW_ADDR), then blob at the next 16-aligned
 * address (plus a BI_MISALIGN), and ends with it. */
static uint64_t bi_elf(struct img *o, const void *pre, size_t pre_len, const void *blob, size_t len,
		       unsigned opts)
{
	struct elfb b;
	uint64_t rw, off;

	eb_init(&b);
	eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, "\xc3", 1, 1);
	eb_add_load(&b, PF_R | PF_X, EB_BASE, EB_BASE + b.size);
	rw = EB_BASE + eb_append(&b, NULL, 0, 0x1000);
	cr_assert_eq(rw, RW_ADDR);
	if (pre_len)
		eb_append(&b, pre, pre_len, 1);
	eb_append(&b, NULL, 0, 16);
	if ((opts >> 4) & 0xf)
		eb_append(&b, NULL, (opts >> 4) & 0xf, 1);
	off = eb_append(&b, blob, len, 1);
	if (!(opts & BI_NO_SECTION))
		eb_section(&b, ".go.buildinfo", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, EB_BASE + off,
			   off, len, 0, 0);
	eb_add_load(&b, PF_R | PF_W | ((opts & BI_EXEC) ? PF_X : 0), rw, EB_BASE + b.size);
	o->p = eb_finish(&b, &o->size, opts & EB_NO_SHDRS);
	return EB_BASE + off;
}

/* Reads build info from an image; returns the rc (bi valid when 0). */
static int read_bi(const struct img *o, struct gs_buildinfo *bi, struct gs_error *err)
{
	struct gs_elf elf;

	cr_assert_eq(gs_elf_open_mem(&elf, o->p, o->size, NULL), 0);
	gs_error_clear(err);
	return gs_buildinfo_read(&elf, bi, err);
}

/* An inline-format blob with explicit lengths (which may lie). */
static size_t inline_blob(uint8_t *out, uint8_t flags, uint64_t vlen, const char *vers,
			  uint64_t mlen, const char *mod, size_t mod_bytes)
{
	size_t n = 32;

	memset(out, 0, 32);
	memcpy(out, MAGIC, 14);
	out[14] = 8;
	out[15] = flags;
	n += eb_put_uvarint(out + n, vlen);
	memcpy(out + n, vers, strlen(vers));
	n += strlen(vers);
	n += eb_put_uvarint(out + n, mlen);
	memcpy(out + n, mod, mod_bytes);
	return n + mod_bytes;
}

static const char sentinel_modinfo[] = SENT_START MODINFO SENT_END;

Test(buildinfo, inline_format)
{
	uint8_t blob[1024];
	size_t len = inline_blob(blob, 2, 8, "go1.27.3", sizeof(sentinel_modinfo) - 1,
				 sentinel_modinfo, sizeof(sentinel_modinfo) - 1);
	struct gs_buildinfo bi;
	struct gs_error err;
	struct img o;
	char val[64];

	bi_elf(&o, NULL, 0, blob, len, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.27.3");
	cr_assert_str_eq(bi.path, "example.com/svc/cmd/svc");
	cr_assert_str_eq(bi.mod_path, "example.com/svc");
	cr_assert_str_eq(bi.mod_version, "(devel)");
	/* Sentinels are stripped. */
	cr_assert_eq(bi.modinfo_len, sizeof(MODINFO) - 1);
	cr_assert_str_eq(bi.modinfo, MODINFO);
	cr_assert_eq(gs_buildinfo_setting(&bi, "CGO_ENABLED", val, sizeof(val)), 0);
	cr_assert_str_eq(val, "0");
	cr_assert_eq(gs_buildinfo_setting(&bi, "-compiler", val, sizeof(val)), 0);
	cr_assert_str_eq(val, "gc");
	cr_assert_eq(gs_buildinfo_setting(&bi, "GOARCH", val, 4), 0);
	cr_assert_str_eq(val, "amd", "truncated to the buffer");
	cr_assert_eq(gs_buildinfo_setting(&bi, "GOOS", val, sizeof(val)), -ENOENT);
	cr_assert_eq(gs_buildinfo_setting(&bi, "CGO", val, sizeof(val)), -ENOENT, "prefix only");
	cr_assert_eq(gs_buildinfo_setting(&bi, "CGO_ENABLED", val, 0), -ENOENT);
	gs_buildinfo_free(&bi);
	cr_assert_null(bi.modinfo);
	free(o.p);
}

Test(buildinfo, inline_format_ignores_endian_flag)
{
	uint8_t blob[256];
	size_t len = inline_blob(blob, 3, 6, "go1.21", 5, "abcde", 5);
	struct gs_buildinfo bi;
	struct gs_error err;
	struct img o;

	bi_elf(&o, NULL, 0, blob, len, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.21");
	cr_assert_str_eq(bi.modinfo, "abcde", "short modinfo: no sentinels to strip");
	cr_assert_str_eq(bi.path, "");
	gs_buildinfo_free(&bi);
	free(o.p);
}

/* Expects an error containing what from the blob. */
static void expect_error(const void *blob, size_t len, unsigned opts, int code, const char *what)
{
	struct gs_buildinfo bi;
	struct gs_error err;
	struct img o;
	int rc;

	bi_elf(&o, NULL, 0, blob, len, opts);
	rc = read_bi(&o, &bi, &err);
	cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, err.msg, code);
	cr_assert_eq(err.code, code);
	cr_assert(strstr(err.msg, what), "message '%s' lacks '%s'", err.msg, what);
	cr_assert_null(bi.modinfo);
	free(o.p);
}

Test(buildinfo, inline_lengths_past_end)
{
	uint8_t blob[256];
	size_t len;

	/* The version length runs past the end of the segment (the blob is last in it). */
	len = inline_blob(blob, 2, 1000, "go1.27.3", 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "Go version past end");
	/* Exactly one byte too long: the version would swallow the modinfo length. */
	len = inline_blob(blob, 2, 8 + 1 + 3 + 1, "go1.27.3", 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "past end");
	len = inline_blob(blob, 2, UINT64_MAX, "go1.27.3", 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "Go version past end");
	/* modinfo length past the end, by one byte and by a lot. */
	len = inline_blob(blob, 2, 8, "go1.27.3", 4, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "modinfo past end");
	len = inline_blob(blob, 2, 8, "go1.27.3", 1ULL << 62, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "modinfo past end");
	/* The modinfo length varint itself is cut off by the end of the data. */
	len = inline_blob(blob, 2, 8, "go1.27.3", 300, "", 0);
	expect_error(blob, len - 1, 0, -EINVAL, "modinfo past end");
}

Test(buildinfo, overlong_varint)
{
	uint8_t blob[256];
	size_t n = 32;

	memset(blob, 0, sizeof(blob));
	memcpy(blob, MAGIC, 14);
	blob[14] = 8;
	blob[15] = 2;
	for (int i = 0; i < 10; i++)
		blob[n++] = 0x80;
	blob[n++] = 0x01; /* 11 bytes */
	memcpy(blob + n, "go1.27.3", 8);
	n += 8;
	expect_error(blob, n, 0, -EINVAL, "Go version past end");
	/* 10 bytes whose last one overflows 64 bits. */
	memset(blob + 32, 0xff, 9);
	blob[41] = 0x02;
	expect_error(blob, n, 0, -EINVAL, "Go version past end");
}

Test(buildinfo, bad_versions)
{
	uint8_t blob[256];
	size_t len;
	char longv[80];

	len = inline_blob(blob, 2, 0, "", 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "bad Go version length");
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	len = inline_blob(blob, 2, strlen(longv), longv, 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "bad Go version length");
	len = inline_blob(blob, 2, 8, "go1.2\n.3", 3, "abc", 3);
	expect_error(blob, len, 0, -EINVAL, "not text");
}

Test(buildinfo, truncated_header)
{
	uint8_t blob[32];

	memset(blob, 0, sizeof(blob));
	memcpy(blob, MAGIC, 14);
	blob[15] = 2;
	expect_error(blob, 20, 0, -EINVAL, "truncated header");
	expect_error(blob, 14, 0, -EINVAL, "truncated header");
	/* Too short for the magic: not build info at all. */
	expect_error(blob, 13, 0, -ENOENT, "no Go build info");
}

/* Pointer-format (Go < 1.18) blob with version/modinfo string headers stored before it. */
struct ptr_case {
	uint8_t pre[256];
	size_t pre_len;
	uint8_t blob[32];
};

static void ptr_case(struct ptr_case *c, unsigned ptrsize, const char *vers, const char *mod)
{
	uint64_t base = RW_ADDR, vstr, mstr, vhdr, mhdr;
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	vstr = base + n;
	memcpy(c->pre + n, vers, strlen(vers));
	n += strlen(vers);
	mstr = base + n;
	memcpy(c->pre + n, mod, strlen(mod));
	n += strlen(mod);
	n = (n + 7) & ~7UL;
	vhdr = base + n;
	memcpy(c->pre + n, &vstr, ptrsize);
	memcpy(c->pre + n + ptrsize, &(uint64_t){strlen(vers)}, ptrsize);
	n += 2 * ptrsize;
	mhdr = base + n;
	memcpy(c->pre + n, &mstr, ptrsize);
	memcpy(c->pre + n + ptrsize, &(uint64_t){strlen(mod)}, ptrsize);
	n += 2 * ptrsize;
	c->pre_len = n;
	memcpy(c->blob, MAGIC, 14);
	c->blob[14] = (uint8_t)ptrsize;
	c->blob[15] = 0;
	memcpy(c->blob + 16, &vhdr, ptrsize);
	memcpy(c->blob + 16 + ptrsize, &mhdr, ptrsize);
}

static int read_ptr_case(const struct ptr_case *c, struct gs_buildinfo *bi, struct gs_error *err)
{
	struct img o;
	int rc;

	bi_elf(&o, c->pre, c->pre_len, c->blob, sizeof(c->blob), 0);
	rc = read_bi(&o, bi, err);
	free(o.p);
	return rc;
}

Test(buildinfo, pointer_format_valid)
{
	struct ptr_case c;
	struct gs_buildinfo bi;
	struct gs_error err;

	ptr_case(&c, 8, "go1.16.15", "path\tcmd/old\nmod\texample.com/old\tv1.2.3\th1:x=\n");
	cr_assert_eq(read_ptr_case(&c, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.16.15");
	cr_assert_str_eq(bi.path, "cmd/old");
	cr_assert_str_eq(bi.mod_path, "example.com/old");
	cr_assert_str_eq(bi.mod_version, "v1.2.3");
	gs_buildinfo_free(&bi);

	ptr_case(&c, 4, "go1.17", "path\tx\n");
	cr_assert_eq(read_ptr_case(&c, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.17");
	cr_assert_str_eq(bi.path, "x");
	gs_buildinfo_free(&bi);

	/* An empty modinfo string (len 0) is valid; its pointer is not read. */
	ptr_case(&c, 8, "go1.15", "");
	cr_assert_eq(read_ptr_case(&c, &bi, &err), 0, "%s", err.msg);
	cr_assert_eq(bi.modinfo_len, 0);
	gs_buildinfo_free(&bi);
}

Test(buildinfo, pointer_format_errors)
{
	struct ptr_case c;
	struct gs_buildinfo bi;
	struct gs_error err;
	uint64_t v;

	/* Wrong pointer sizes. */
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	c.blob[14] = 3;
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);
	cr_assert(strstr(err.msg, "bad pointer size 3"), "%s", err.msg);
	c.blob[14] = 16;
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);
	cr_assert(strstr(err.msg, "bad pointer size 16"), "%s", err.msg);

	/* Big-endian pointer format. */
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	c.blob[15] = 1;
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -ENOTSUP);
	cr_assert(strstr(err.msg, "big-endian"), "%s", err.msg);

	/* Header pointer outside every segment. */
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	v = 0xdead0000;
	memcpy(c.blob + 16, &v, 8);
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);
	cr_assert(strstr(err.msg, "string pointer out of range"), "%s", err.msg);

	/* Header pointer whose 16 bytes straddle the end of the segment's file data. */
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	v = RW_ADDR + ((c.pre_len + 15) & ~15UL) + sizeof(c.blob) - 8;
	memcpy(c.blob + 24, &v, 8);
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);

	/* String data pointer out of range, and a length past the segment. */
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	memcpy(&v, c.blob + 16, 8);
	memcpy(c.pre + (v - RW_ADDR), &(uint64_t){0x10}, 8);
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);
	ptr_case(&c, 8, "go1.16", "path\tx\n");
	memcpy(&v, c.blob + 24, 8);
	memcpy(c.pre + (v - RW_ADDR) + 8, &(uint64_t){4096}, 8);
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);
	/* Absurd lengths are refused before any lookup. */
	memcpy(c.pre + (v - RW_ADDR) + 8, &(uint64_t){UINT64_MAX}, 8);
	cr_assert_eq(read_ptr_case(&c, &bi, &err), -EINVAL);

	/* A pointer header cut short by the end of the data. */
	{
		struct img o;

		ptr_case(&c, 8, "go1.16", "path\tx\n");
		bi_elf(&o, c.pre, c.pre_len, c.blob, 16 + 8, 0);
		cr_assert_eq(read_bi(&o, &bi, &err), -EINVAL);
		cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
		free(o.p);
	}
}

Test(buildinfo, found_without_section_headers)
{
	uint8_t blob[512];
	size_t len = inline_blob(blob, 2, 8, "go1.24.4", sizeof(sentinel_modinfo) - 1,
				 sentinel_modinfo, sizeof(sentinel_modinfo) - 1);
	uint8_t pre[100];
	struct gs_buildinfo bi;
	struct gs_error err;
	struct img o;

	memset(pre, 'x', sizeof(pre));
	/* No section headers at all: the 16-aligned scan of the writable PT_LOAD finds it. */
	bi_elf(&o, pre, sizeof(pre), blob, len, EB_NO_SHDRS);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.24.4");
	cr_assert_str_eq(bi.path, "example.com/svc/cmd/svc");
	gs_buildinfo_free(&bi);
	free(o.p);

	/* Section headers without .go.buildinfo: same scan. */
	bi_elf(&o, pre, sizeof(pre), blob, len, BI_NO_SECTION);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, "go1.24.4");
	gs_buildinfo_free(&bi);
	free(o.p);

	/* Not 16-aligned: the scan does not see it (as debug/buildinfo). */
	bi_elf(&o, pre, sizeof(pre), blob, len, EB_NO_SHDRS | BI_MISALIGN(8));
	cr_assert_eq(read_bi(&o, &bi, &err), -ENOENT);
	free(o.p);

	/* In an executable segment: not scanned. */
	bi_elf(&o, pre, sizeof(pre), blob, len, EB_NO_SHDRS | BI_EXEC);
	cr_assert_eq(read_bi(&o, &bi, &err), -ENOENT);
	cr_assert_str_eq(err.msg, "no Go build info");
	free(o.p);

	/* Magic at the very end of the segment, header cut off. */
	bi_elf(&o, pre, sizeof(pre), MAGIC, 14, EB_NO_SHDRS);
	cr_assert_eq(read_bi(&o, &bi, &err), -EINVAL);
	cr_assert(strstr(err.msg, "truncated header"), "%s", err.msg);
	free(o.p);
}

Test(buildinfo, truncated_everywhere)
{
	uint8_t blob[512];
	size_t len = inline_blob(blob, 2, 8, "go1.27.3", sizeof(sentinel_modinfo) - 1,
				 sentinel_modinfo, sizeof(sentinel_modinfo) - 1);

	for (unsigned noshdr = 0; noshdr < 2; noshdr++) {
		for (size_t n = 0; n <= len; n++) {
			struct gs_buildinfo bi;
			struct gs_error err;
			struct img o;
			int rc;

			bi_elf(&o, NULL, 0, blob, n, noshdr ? EB_NO_SHDRS : 0);
			/* Exactly sized copy: a read past the segment end is past the buffer. */
			rc = read_bi(&o, &bi, &err);
			if (n == len) {
				cr_assert_eq(rc, 0, "%s", err.msg);
				gs_buildinfo_free(&bi);
			} else if (n < 14) {
				cr_assert_eq(rc, -ENOENT, "length %zu: %d %s", n, rc, err.msg);
			} else {
				cr_assert_eq(rc, -EINVAL, "length %zu: %d %s", n, rc, err.msg);
			}
			free(o.p);
		}
	}
}

Test(buildinfo, sentinel_stripping)
{
	struct gs_buildinfo bi;
	struct gs_error err;
	struct img o;
	uint8_t blob[256];
	/* 33 bytes with '\n' at len-17: stripped down to the 1-byte middle. */
	char m33[34];
	size_t len;

	memset(m33, 'S', 33);
	m33[16] = '\n';
	m33[33] = '\0';
	len = inline_blob(blob, 2, 4, "go1X", 33, m33, 33);
	bi_elf(&o, NULL, 0, blob, len, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_eq(bi.modinfo_len, 1);
	cr_assert_str_eq(bi.modinfo, "\n");
	gs_buildinfo_free(&bi);
	free(o.p);

	/* No '\n' at len-17: left alone. */
	m33[16] = 'S';
	len = inline_blob(blob, 2, 4, "go1X", 33, m33, 33);
	bi_elf(&o, NULL, 0, blob, len, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_eq(bi.modinfo_len, 33);
	gs_buildinfo_free(&bi);
	free(o.p);

	/* 32 bytes: too short to carry sentinels. */
	m33[15] = '\n';
	len = inline_blob(blob, 2, 4, "go1X", 32, m33, 32);
	bi_elf(&o, NULL, 0, blob, len, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), 0, "%s", err.msg);
	cr_assert_eq(bi.modinfo_len, 32);
	gs_buildinfo_free(&bi);
	free(o.p);
}

Test(buildinfo, modinfo_parse)
{
	static const char t2[] = "junk\nnotab line\npathx\tno\nmodule\tno\n\tempty key\n"
				 "mod\tm\tv9\nbuild\tK=V\npath\tfinal";
	struct gs_buildinfo bi;
	char longpath[700];
	char text[800];

	memset(&bi, 0, sizeof(bi));
	gs_buildinfo_parse_modinfo(&bi, "path\ta/b\nmod\tm/n\n", 17);
	cr_assert_str_eq(bi.path, "a/b");
	cr_assert_str_eq(bi.mod_path, "m/n");
	cr_assert_str_eq(bi.mod_version, "", "mod line without a version");

	/* Last line without '\n', junk lines, keys that only start like known ones. */
	memset(&bi, 0, sizeof(bi));
	gs_buildinfo_parse_modinfo(&bi, t2, sizeof(t2) - 1);
	cr_assert_str_eq(bi.path, "final");
	cr_assert_str_eq(bi.mod_path, "m");
	cr_assert_str_eq(bi.mod_version, "v9");

	/* A length that stops inside a line: nothing past it is read. */
	memset(&bi, 0, sizeof(bi));
	gs_buildinfo_parse_modinfo(&bi, "path\tabcdef\n", 7);
	cr_assert_str_eq(bi.path, "ab");
	memset(&bi, 0, sizeof(bi));
	gs_buildinfo_parse_modinfo(&bi, "path\t", 5);
	cr_assert_str_eq(bi.path, "");
	gs_buildinfo_parse_modinfo(&bi, "", 0);

	/* Values longer than the fields are truncated, NUL-terminated. */
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(text, sizeof(text), "path\t%s\n", longpath);
	memset(&bi, 0, sizeof(bi));
	gs_buildinfo_parse_modinfo(&bi, text, strlen(text));
	cr_assert_eq(strlen(bi.path), sizeof(bi.path) - 1);
}

Test(buildinfo, uvarint)
{
	uint8_t b[16] = {0};
	uint64_t v = 12345;

	cr_assert_eq(gs_uvarint(b, b, &v), 0, "empty");
	cr_assert_eq(v, 12345, "untouched on failure");
	b[0] = 0;
	cr_assert_eq(gs_uvarint(b, b + 1, &v), 1);
	cr_assert_eq(v, 0);
	b[0] = 0x7f;
	cr_assert_eq(gs_uvarint(b, b + 1, &v), 1);
	cr_assert_eq(v, 127);
	b[0] = 0x80;
	b[1] = 0x01;
	cr_assert_eq(gs_uvarint(b, b + 2, &v), 2);
	cr_assert_eq(v, 128);
	cr_assert_eq(gs_uvarint(b, b + 1, &v), 0, "truncated continuation");
	/* 2^64-1: nine 0xff and a final 0x01. */
	memset(b, 0xff, 9);
	b[9] = 0x01;
	cr_assert_eq(gs_uvarint(b, b + 10, &v), 10);
	cr_assert_eq(v, UINT64_MAX);
	b[9] = 0x02;
	cr_assert_eq(gs_uvarint(b, b + 10, &v), 0, "overflows 64 bits");
	b[9] = 0x81;
	b[10] = 0x00;
	cr_assert_eq(gs_uvarint(b, b + 11, &v), 0, "11 bytes");
	memset(b, 0x80, 16);
	cr_assert_eq(gs_uvarint(b, b + 16, &v), 0, "endless continuation");
	/* Non-minimal but in range ("0x80 0x00" = 0) is accepted, as Go's binary.Uvarint. */
	b[0] = 0x80;
	b[1] = 0x00;
	cr_assert_eq(gs_uvarint(b, b + 2, &v), 2);
	cr_assert_eq(v, 0);
	/* Round trip through the encoder over a spread of values. */
	for (uint64_t x = 1; x; x <<= 1) {
		for (uint64_t y = x - 1; y <= x; y++) {
			size_t n = eb_put_uvarint(b, y);

			cr_assert_eq(gs_uvarint(b, b + n, &v), n);
			cr_assert_eq(v, y);
		}
	}
}

Test(buildinfo, go_version_parse)
{
	int ma = 0, mi = 0;

	cr_assert_eq(gs_go_version_parse("go1.27.3", &ma, &mi), 0);
	cr_assert_eq(ma, 1);
	cr_assert_eq(mi, 27);
	cr_assert_eq(gs_go_version_parse("go1.19", &ma, &mi), 0);
	cr_assert_eq(mi, 19);
	cr_assert_eq(gs_go_version_parse("go1.22rc1", &ma, &mi), 0);
	cr_assert_eq(mi, 22);
	cr_assert_eq(gs_go_version_parse("devel +abc", &ma, &mi), -EINVAL);
	cr_assert_eq(gs_go_version_parse("go1", &ma, &mi), -EINVAL);
	cr_assert_eq(gs_go_version_parse("", &ma, &mi), -EINVAL);
	cr_assert_eq(gs_go_version_parse(NULL, &ma, &mi), -EINVAL);
}

Test(buildinfo, none)
{
	struct img o;
	struct gs_buildinfo bi;
	struct gs_error err;

	bi_elf(&o, NULL, 0, "not build info at all, just bytes", 33, 0);
	cr_assert_eq(read_bi(&o, &bi, &err), -ENOENT);
	cr_assert_null(bi.modinfo);
	free(o.p);
}

static void real_binary(const char *path, const char *want_version)
{
	struct gs_elf elf;
	struct gs_error err = {0};
	struct gs_buildinfo bi;
	char val[32];

	if (gs_elf_open_path(&elf, path, &err) < 0)
		cr_skip_test("%s", err.msg);
	cr_assert_eq(gs_buildinfo_read(&elf, &bi, &err), 0, "%s", err.msg);
	cr_assert_str_eq(bi.go_version, want_version);
	cr_assert_str_eq(bi.path, "cmd/vet");
	cr_assert_eq(gs_buildinfo_setting(&bi, "GOARCH", val, sizeof(val)), 0);
	cr_assert_str_eq(val, "amd64");
	gs_buildinfo_free(&bi);
	gs_elf_close(&elf);
}

Test(buildinfo, real_go119)
{
	real_binary(TU_VET119, "go1.19.8");
}

Test(buildinfo, real_go127)
{
	real_binary(TU_VET127, "go1.27.3");
}
