/* buildinfo.c — Go's .go.buildinfo: both the 1.18+ inline-string format and the older pointer
 * format, found by section name or, without section headers, by a 16-aligned magic scan of the
 * writable data segment (what debug/buildinfo does). All reads are bounds-checked. */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"

#define BUILDINFO_MAGIC "\xff Go buildinf:"
#define BUILDINFO_MAGIC_LEN 14
#define BUILDINFO_HEADER_LEN 32
#define BUILDINFO_ALIGN 16
#define BUILDINFO_FLAG_BIGENDIAN 0x1
#define BUILDINFO_FLAG_INLINE 0x2
/* Sentinels around modinfo are 16 bytes each (runtime/debug's modinfo start/end markers). */
#define MODINFO_SENTINEL_LEN 16
#define MAX_STRING_LEN (1u << 20)

size_t gs_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;

	for (size_t i = 0; p + i < end && i < 10; i++) {
		uint8_t b = p[i];

		if (i == 9 && b > 1)
			return 0; /* overflows 64 bits */
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return i + 1;
		}
		shift += 7;
	}
	return 0;
}

static void copy_field(char *dst, size_t dst_len, const char *src, size_t src_len)
{
	if (src_len >= dst_len)
		src_len = dst_len - 1;
	memcpy(dst, src, src_len);
	dst[src_len] = '\0';
}

void gs_buildinfo_parse_modinfo(struct gs_buildinfo *bi, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		const char *tab = memchr(p, '\t', (size_t)(line_end - p));

		if (tab) {
			size_t key_len = (size_t)(tab - p);
			const char *val = tab + 1;

			if (key_len == 4 && memcmp(p, "path", 4) == 0) {
				copy_field(bi->path, sizeof(bi->path), val, (size_t)(line_end - val));
			} else if (key_len == 3 && memcmp(p, "mod", 3) == 0) {
				const char *t2 = memchr(val, '\t', (size_t)(line_end - val));
				const char *vend = t2 ? t2 : line_end;

				copy_field(bi->mod_path, sizeof(bi->mod_path), val,
					   (size_t)(vend - val));
				if (t2) {
					const char *ver = t2 + 1;
					const char *t3 = memchr(ver, '\t', (size_t)(line_end - ver));

					copy_field(bi->mod_version, sizeof(bi->mod_version), ver,
						   (size_t)((t3 ? t3 : line_end) - ver));
				}
			}
		}
		p = line_end + 1;
	}
}

/* Strips the 16-byte sentinels the linker puts around modinfo, as debug/buildinfo does. */
static void strip_sentinels(const uint8_t **mod, uint64_t *len)
{
	if (*len >= 2 * MODINFO_SENTINEL_LEN + 1 && (*mod)[*len - MODINFO_SENTINEL_LEN - 1] == '\n') {
		*mod += MODINFO_SENTINEL_LEN;
		*len -= 2 * MODINFO_SENTINEL_LEN;
	}
}

static int store(struct gs_buildinfo *bi, const uint8_t *vers, uint64_t vers_len,
		 const uint8_t *mod, uint64_t mod_len, struct gs_error *err)
{
	if (vers_len == 0 || vers_len >= sizeof(bi->go_version))
		return gs_error_set(err, -EINVAL, "buildinfo: bad Go version length %llu",
				    (unsigned long long)vers_len);
	for (uint64_t i = 0; i < vers_len; i++) {
		if (vers[i] < 0x20 || vers[i] > 0x7e)
			return gs_error_set(err, -EINVAL, "buildinfo: Go version is not text");
	}
	copy_field(bi->go_version, sizeof(bi->go_version), (const char *)vers, vers_len);
	strip_sentinels(&mod, &mod_len);
	bi->modinfo = malloc(mod_len + 1);
	if (!bi->modinfo)
		return gs_error_set(err, -ENOMEM, "buildinfo: out of memory");
	memcpy(bi->modinfo, mod, mod_len);
	bi->modinfo[mod_len] = '\0';
	bi->modinfo_len = mod_len;
	gs_buildinfo_parse_modinfo(bi, bi->modinfo, mod_len);
	return 0;
}

/* Reads a Go string header {ptr, len} at vaddr (pointer format, pre-1.18). */
static int read_gostring(const struct gs_elf *elf, uint64_t hdr_addr, unsigned ptr_size,
			 const uint8_t **data, uint64_t *len)
{
	const uint8_t *hdr = gs_elf_vaddr_bytes(elf, hdr_addr, 2ULL * ptr_size);
	uint64_t ptr;

	if (!hdr)
		return -EINVAL;
	ptr = ptr_size == 8 ? gs_rd64(hdr) : gs_rd32(hdr);
	*len = ptr_size == 8 ? gs_rd64(hdr + 8) : gs_rd32(hdr + 4);
	if (*len > MAX_STRING_LEN)
		return -EINVAL;
	if (*len == 0) {
		*data = (const uint8_t *)"";
		return 0;
	}
	*data = gs_elf_vaddr_bytes(elf, ptr, *len);
	return *data ? 0 : -EINVAL;
}

/* Decodes a blob that starts with the magic; avail = bytes readable from blob. */
static int decode_blob(const struct gs_elf *elf, const uint8_t *blob, uint64_t avail,
		       struct gs_buildinfo *bi, struct gs_error *err)
{
	unsigned ptr_size, flags;

	if (avail < BUILDINFO_HEADER_LEN)
		return gs_error_set(err, -EINVAL, "buildinfo: truncated header");
	ptr_size = blob[BUILDINFO_MAGIC_LEN];
	flags = blob[BUILDINFO_MAGIC_LEN + 1];
	if (flags & BUILDINFO_FLAG_INLINE) {
		const uint8_t *p = blob + BUILDINFO_HEADER_LEN, *end = blob + avail;
		uint64_t vlen, mlen;
		size_t n;

		n = gs_uvarint(p, end, &vlen);
		if (!n || vlen > (uint64_t)(end - p - n))
			return gs_error_set(err, -EINVAL, "buildinfo: Go version past end of data");
		p += n;
		const uint8_t *vers = p;
		p += vlen;
		n = gs_uvarint(p, end, &mlen);
		if (!n || mlen > (uint64_t)(end - p - n))
			return gs_error_set(err, -EINVAL, "buildinfo: modinfo past end of data");
		p += n;
		return store(bi, vers, vlen, p, mlen, err);
	}
	if (ptr_size != 4 && ptr_size != 8)
		return gs_error_set(err, -EINVAL, "buildinfo: bad pointer size %u", ptr_size);
	if (flags & BUILDINFO_FLAG_BIGENDIAN)
		return gs_error_set(err, -ENOTSUP, "buildinfo: big-endian binaries are not supported");
	if (avail < BUILDINFO_ALIGN + 2ULL * ptr_size)
		return gs_error_set(err, -EINVAL, "buildinfo: truncated pointer header");
	{
		const uint8_t *q = blob + BUILDINFO_ALIGN;
		uint64_t vers_addr = ptr_size == 8 ? gs_rd64(q) : gs_rd32(q);
		uint64_t mod_addr = ptr_size == 8 ? gs_rd64(q + 8) : gs_rd32(q + 4);
		const uint8_t *vers, *mod;
		uint64_t vlen, mlen;

		if (read_gostring(elf, vers_addr, ptr_size, &vers, &vlen) < 0 ||
		    read_gostring(elf, mod_addr, ptr_size, &mod, &mlen) < 0)
			return gs_error_set(err, -EINVAL, "buildinfo: string pointer out of range");
		return store(bi, vers, vlen, mod, mlen, err);
	}
}

int gs_buildinfo_read(const struct gs_elf *elf, struct gs_buildinfo *bi, struct gs_error *err)
{
	struct gs_elf_section sec;
	struct gs_elf_segment seg;

	memset(bi, 0, sizeof(*bi));
	if (gs_elf_find_section(elf, ".go.buildinfo", &sec) == 0 && sec.data &&
	    sec.size >= BUILDINFO_MAGIC_LEN &&
	    memcmp(sec.data, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) == 0) {
		/* The inline format may run to the end of the segment, not only the section. */
		uint64_t avail = gs_elf_vaddr_avail(elf, sec.addr);
		const uint8_t *blob = gs_elf_vaddr_bytes(elf, sec.addr, avail);

		if (!blob || avail < sec.size) {
			blob = sec.data;
			avail = sec.size;
		}
		return decode_blob(elf, blob, avail, bi, err);
	}
	/* No usable section: scan writable, non-executable PT_LOAD segments. */
	for (unsigned i = 0; gs_elf_next_load(elf, &i, &seg) == 0;) {
		if (!seg.data || (seg.flags & (PF_W | PF_X)) != PF_W)
			continue;
		uint64_t start = (BUILDINFO_ALIGN - (seg.vaddr % BUILDINFO_ALIGN)) % BUILDINFO_ALIGN;

		for (uint64_t off = start; off + BUILDINFO_MAGIC_LEN <= seg.filesz;
		     off += BUILDINFO_ALIGN) {
			if (memcmp(seg.data + off, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) == 0)
				return decode_blob(elf, seg.data + off, seg.filesz - off, bi, err);
		}
	}
	return gs_error_set(err, -ENOENT, "no Go build info");
}

void gs_buildinfo_free(struct gs_buildinfo *bi)
{
	free(bi->modinfo);
	bi->modinfo = NULL;
	bi->modinfo_len = 0;
}

int gs_buildinfo_setting(const struct gs_buildinfo *bi, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = bi->modinfo, *end;

	if (!p || len == 0)
		return -ENOENT;
	end = p + bi->modinfo_len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		size_t line_len = (size_t)(line_end - p);

		if (line_len > 6 + klen + 1 && memcmp(p, "build\t", 6) == 0 &&
		    memcmp(p + 6, key, klen) == 0 && p[6 + klen] == '=') {
			copy_field(out, len, p + 7 + klen, line_len - 7 - klen);
			return 0;
		}
		p = line_end + 1;
	}
	return -ENOENT;
}
