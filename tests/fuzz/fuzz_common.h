/* fuzz_common.h — pieces shared by the fuzz targets: a sink that makes the sanitizers check
 * every byte a parser hands back (a pointer into the input is only useful if it is in
 * bounds), a frame checker, and the fixed addresses of the ELF wrappers that fuzz_buildinfo and
 * fuzz_inline put around raw fuzzer bytes (tests/fuzz/make_corpus.c builds seeds for them).
 * Header-only and guarded: tests/fuzz/replay.c includes every target in one file. */
#ifndef GOSCOPE_TESTS_FUZZ_COMMON_H
#define GOSCOPE_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "goscope/symbolizer.h"

/* fuzz_buildinfo: the raw input is the .go.buildinfo blob at this address. */
#define FUZZ_BLOB_ADDR 0x402000ULL
/* fuzz_inline: the raw input is the pclntab (and gofunc area) at this address, text starts at
 * FUZZ_TEXT, and the last 4 input bytes (mod size) give gofunc's offset in the input. */
#define FUZZ_PCLN_ADDR 0x2000000ULL
#define FUZZ_TEXT 0x401000ULL
#define FUZZ_TEXT_MEMSZ 0x1000000ULL

static volatile uint8_t fuzz_sink;

/* Reads the first and last byte of [p, p+n) (the input is one allocation, so ASan reports a
 * range that runs off either end of it). */
static inline void fuzz_touch(const void *p, size_t n)
{
	const uint8_t *b = p;

	if (n)
		fuzz_sink ^= b[0] ^ b[n - 1];
}

/* Traps unless [p, p+n) lies inside [base, base+size). */
static inline void fuzz_within(const uint8_t *base, size_t size, const uint8_t *p, uint64_t n)
{
	if (p < base || (size_t)(p - base) > size || n > size - (size_t)(p - base))
		__builtin_trap();
	fuzz_touch(p, n);
}

static inline void fuzz_touch_str(const char *s)
{
	if (s)
		fuzz_touch(s, strlen(s) + 1);
}

/* Symbolizes pc and reads everything the frames point to; aborts on a broken contract. */
static inline int fuzz_symbolize(const struct gs_binary *bin, uint64_t pc, unsigned flags)
{
	struct gs_frame fr[8];
	struct gs_error err = {0};
	int n = gs_binary_symbolize(bin, pc, flags, fr, 8, &err);

	if (n < 0) {
		if (err.code != n || !err.msg[0])
			__builtin_trap(); /* errors must say why */
		return n;
	}
	if (n > 8)
		__builtin_trap();
	for (int i = 0; i < n; i++) {
		if (!fr[i].function || !fr[i].file || strlen(fr[i].function) != fr[i].function_len)
			__builtin_trap();
		fuzz_touch_str(fr[i].raw_function);
		fuzz_touch_str(fr[i].file);
		fuzz_touch_str(fr[i].raw_file);
	}
	return n;
}

#endif
