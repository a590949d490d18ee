/* test_addr2line_edges.c — `goscope addr2line` agrees with `go tool addr2line` on addresses
 * no function covers, in unstripped binaries (issue 11, defect 11): past the end of text
 * (runtime.etext and after, up to 0xffffffffffffffff) and in the gaps between sized
 * functions. ELF symbols of size 0 (runtime.etext) used to cover every later address, so
 * goscope answered runtime.etext where go tool addr2line prints "?". */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goscope/symbolizer.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

struct edgecase {
	char toolchain[8];
	char mode[16];
};

ParameterizedTestParameters(addr2line, past_text_and_gaps)
{
	static struct edgecase cases[] = {
		{"1.19", "default"}, {"1.27", "default"}, {"1.27", "pie"}, {"1.27", "cgo"}};
	return cr_make_param_array(struct edgecase, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Writes the addresses to compare: runtime.etext and the end of the pclntab (and the byte
 * after each), the largest addresses, past the last text symbol, and the first byte after
 * every sized text symbol that the next symbol does not start at (`go tool nm -n -size`).
 * Returns how many. */
static unsigned write_edges(const char *go, const char *bin, const char *path)
{
	struct gs_error err = {0};
	struct gs_binary *b;
	uint64_t etext = 0, end, prev_addr = 0, prev_size = 0, text_end = 0;
	char cmd[8192], *nm = NULL, *line;
	unsigned n = 0, gaps = 0;
	FILE *f = fopen(path, "w");

	cr_assert(f);
	cr_assert_eq(gs_binary_open(bin, &b, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_binary_find_function(b, "runtime.etext", &etext, &end), 0,
		     "no runtime.etext symbol: not an unstripped binary");
	{
		const struct gs_binary_info *in = gs_binary_info(b);
		/* Only addresses no code covers: after runtime.etext, an externally linked
		 * binary has C functions, which goscope names and go tool addr2line cannot. */
		const uint64_t addrs[] = {etext,
					  etext + 1,
					  in->text_end,
					  in->text_end + 1,
					  0x7fffffffffffffff,
					  0xfffffffffffffffe,
					  0xffffffffffffffff};

		for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++, n++)
			fprintf(f, "0x%" PRIx64 "\n", addrs[i]);
	}
	gs_binary_close(b);
	snprintf(cmd, sizeof(cmd), "%s tool nm -n -size '%s'", go, bin);
	cr_assert_eq(run_capture(cmd, 0, &nm, NULL), 0, "%s", cmd);
	for (line = strtok(nm, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long addr, size;
		char type;

		if (sscanf(line, "%llx %llu %c", &addr, &size, &type) != 3 ||
		    (type != 'T' && type != 't'))
			continue;
		if (prev_size && prev_addr + prev_size < addr && gaps < 200) {
			fprintf(f, "0x%" PRIx64 "\n", prev_addr + prev_size);
			gaps++;
			n++;
		}
		prev_addr = addr;
		prev_size = size;
		if (addr + size > text_end)
			text_end = addr + size;
	}
	/* Past every text symbol: the middle of the page after the last one. */
	fprintf(f, "0x%" PRIx64 "\n", ((text_end + 0xfff) & ~(uint64_t)0xfff) + 0x800);
	n++;
	free(nm);
	fclose(f);
	cr_log_info("%u addresses, %u of them after a function's last byte", n, gaps);
	return n;
}

ParameterizedTest(struct edgecase *c, addr2line, past_text_and_gaps, .timeout = 120)
{
	char path[4096], dir[64], addrs[128], cmd[8192], gobuf[256];
	const char *go = go_tool_path(c->toolchain, gobuf, sizeof(gobuf));
	char *a = NULL, *b = NULL;

	if (!go)
		cr_skip_test("go%s not installed", c->toolchain);
	GOTARGET_BUILD_OR_SKIP(path, "symtest", c->toolchain, c->mode);
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(addrs, sizeof(addrs), "%s/addrs", dir);
	write_edges(go, path, addrs);
	snprintf(cmd, sizeof(cmd), "%s tool addr2line '%s' < '%s'", go, path, addrs);
	cr_assert_eq(run_capture(cmd, 0, &a, NULL), 0, "%s", cmd);
	snprintf(cmd, sizeof(cmd), "%s addr2line -e '%s' < '%s'", goscope_bin(), path, addrs);
	cr_assert_eq(run_capture(cmd, 0, &b, NULL), 0, "%s", cmd);
	{
		/* Line by line, with the address, for a readable failure. */
		FILE *fa = fopen(addrs, "r");
		char addr[64], *sa = NULL, *sb = NULL;
		char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);

		cr_assert(fa);
		while (fgets(addr, sizeof(addr), fa)) {
			addr[strcspn(addr, "\n")] = '\0';
			for (int k = 0; k < 2; k++) {
				cr_assert(la && lb, "%s: output ended", addr);
				cr_assert_str_eq(lb, la,
						 "%s: goscope says '%s', go tool addr2line '%s'",
						 addr, lb, la);
				la = strtok_r(NULL, "\n", &sa);
				lb = strtok_r(NULL, "\n", &sb);
			}
		}
		fclose(fa);
	}
	free(a);
	free(b);
}
