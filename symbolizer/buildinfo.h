/* buildinfo.h — reading Go's .go.buildinfo blob (Go version, main module, build settings). */
#ifndef GOSCOPE_SYMBOLIZER_BUILDINFO_H
#define GOSCOPE_SYMBOLIZER_BUILDINFO_H

#include "elf_image.h"
#include "goscope/symbolizer.h"

/* Fills bi from the ELF image. -ENOENT when the image has no Go build info at all; other
 * negative errnos when it has a corrupt one. On success the caller frees with
 * gs_buildinfo_free. */
int gs_buildinfo_read(const struct gs_elf *elf, struct gs_buildinfo *bi, struct gs_error *err);

/* Parses modinfo text ("path\t...", "mod\t...", "build\tK=V" lines) into bi. Exposed for tests. */
void gs_buildinfo_parse_modinfo(struct gs_buildinfo *bi, const char *text, size_t len);

/* Reads an unsigned LEB128 varint from [p, end); returns bytes consumed or 0 on overflow or
 * truncation. */
size_t gs_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *out);

#endif
