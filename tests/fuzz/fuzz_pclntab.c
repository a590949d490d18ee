/* fuzz_pclntab.c — libFuzzer target for the pclntab decoder, two ways: the input as a whole
 * binary (gs_binary_open_mem, then gs_binary_symbolize at many PCs: entries, interiors and
 * ends of the functions it reports, and addresses around the text), and the input as a raw
 * pclntab (gs_pclntab_parse, then func_at / pcvalue / pcdata / file lookups per function). */
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/pclntab.h"
#include "tests/fuzz/fuzz_common.h"

#define FP_MAX_FUNCS 48

struct fp_fns {
	uint64_t entry[FP_MAX_FUNCS], end[FP_MAX_FUNCS];
	unsigned n;
};

static int fp_collect(void *ctx, const char *name, uint64_t entry, uint64_t end)
{
	struct fp_fns *l = ctx;

	fuzz_touch_str(name);
	l->entry[l->n] = entry;
	l->end[l->n] = end;
	return ++l->n == FP_MAX_FUNCS;
}

static void fp_as_binary(const uint8_t *data, size_t size)
{
	static const unsigned flags[] = {0, GS_LOOKUP_RETURN_ADDR, GS_LOOKUP_NO_INLINE};
	const struct gs_binary_info *info;
	struct gs_binary *bin;
	struct gs_error err = {0};
	struct fp_fns fns = {.n = 0};
	uint64_t entry, end, addr;
	int32_t sp;

	if (gs_binary_open_mem(data, size, "fuzz", &bin, &err) < 0) {
		if (!err.msg[0])
			__builtin_trap();
		return;
	}
	info = gs_binary_info(bin);
	fuzz_touch_str(info->buildinfo.modinfo);
	fuzz_touch_str(info->go_build_id);
	gs_binary_foreach_function(bin, fp_collect, &fns);
	for (unsigned i = 0; i < fns.n; i++) {
		uint64_t pcs[4] = {fns.entry[i], fns.entry[i] + 1,
				   fns.entry[i] + (fns.end[i] - fns.entry[i]) / 2, fns.end[i] - 1};

		for (unsigned k = 0; k < 4; k++) {
			for (unsigned f = 0; f < 3; f++)
				fuzz_symbolize(bin, pcs[k], flags[f]);
			gs_binary_pcsp(bin, pcs[k], &sp);
		}
	}
	for (unsigned k = 0; k < 32; k++)
		fuzz_symbolize(bin, info->text_start + k * 97, 0);
	fuzz_symbolize(bin, 0, GS_LOOKUP_RETURN_ADDR);
	fuzz_symbolize(bin, UINT64_MAX, GS_LOOKUP_RETURN_ADDR);
	fuzz_symbolize(bin, info->text_end, 0);
	gs_binary_find_function(bin, "runtime.gopark", &entry, &end);
	gs_binary_find_function(bin, "main.main", &entry, &end);
	gs_binary_offset_to_addr(bin, 0, &addr);
	gs_binary_close(bin);
}

static void fp_as_table(const uint8_t *data, size_t size)
{
	struct gs_pclntab t;
	struct gs_frame fr[8];
	struct gs_error err = {0};

	if (gs_pclntab_parse(&t, data, size, FUZZ_PCLN_ADDR, &err) < 0) {
		if (err.code >= 0 || !err.msg[0])
			__builtin_trap();
		return;
	}
	if (!t.text_start)
		t.text_start = FUZZ_TEXT;
	for (uint64_t i = 0; i < t.nfunc && i < 512; i++) {
		struct gs_func f;
		int32_t v;

		if (gs_pclntab_func_at(&t, i, &f, &err) < 0)
			continue;
		if (f.rec < t.data || f.rec + t.func_size > t.data + t.size)
			__builtin_trap();
		fuzz_touch_str(gs_pclntab_func_name(&t, &f));
		fuzz_sink ^= (uint8_t)gs_pclntab_start_line(&t, &f);
		for (unsigned k = 4; k <= 6; k++) {
			uint32_t off = gs_func_field(&t, &f, k);

			gs_pclntab_pcvalue(&t, &f, off, f.entry, &v);
			gs_pclntab_pcvalue(&t, &f, off, f.end - 1, &v);
			if (k == 5 && gs_pclntab_pcvalue(&t, &f, off, f.entry, &v) == 0)
				fuzz_touch_str(gs_pclntab_file(&t, &f, v));
		}
		for (unsigned k = 0; k < 4; k++)
			gs_pclntab_pcdata(&t, &f, k, f.entry + (f.end - f.entry) / 2, &v);
		for (int32_t fno = -1; fno < 3; fno++)
			fuzz_touch_str(gs_pclntab_file(&t, &f, fno));
		if (i < 64) {
			int n = gs_pclntab_frames(&t, f.entry, true, fr, 8, &err);

			for (int k = 0; k < n; k++)
				fuzz_touch_str(fr[k].file);
		}
	}
	fuzz_touch_str(gs_pclntab_name_at(&t, 0));
	fuzz_touch_str(gs_pclntab_name_at(&t, -1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fp_as_binary(data, size);
	fp_as_table(data, size);
	return 0;
}
