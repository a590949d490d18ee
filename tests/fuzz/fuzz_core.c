/* fuzz_core.c — libFuzzer target for the ELF core file reader (agent/goruntime/coredump.c):
 * the input is a core file; every thread, mapped file and memory range the reader accepts is
 * read back, so that an offset or size that strays outside the input trips ASan. */
#include <stdint.h>
#include <stdlib.h>

#include "agent/goruntime/coredump.c"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct gr_core_file *files;
	const struct gr_thread *th;
	struct gr_core *c;
	struct gr_mem *m;
	const char *path;
	uint8_t buf[256];
	uint64_t entry;
	size_t n, nf;

	if (gr_core_open_mem(data, size, &c, NULL) < 0)
		return 0;
	th = gr_core_threads(c, &n);
	for (size_t i = 0; i < n; i++)
		fuzz_sink ^= (uint8_t)(th[i].pc ^ th[i].sp ^ th[i].bp ^ (uint64_t)th[i].tid);
	files = gr_core_files(c, &nf);
	for (size_t i = 0; i < nf; i++)
		fuzz_sink ^= (uint8_t)strlen(files[i].path);
	if (gr_core_entry(c, &entry) == 0 && gr_core_exe_path(c, &path) == 0)
		fuzz_sink ^= (uint8_t)strlen(path);
	m = gr_core_mem(c);
	/* reads at and across every segment's edges */
	for (size_t i = 0; i < c->nsegs && i < 64; i++) {
		uint64_t a = c->segs[i].vaddr, e = a + c->segs[i].memsz;

		if (gr_mem_read(m, a, buf, sizeof(buf), NULL) == 0)
			fuzz_touch(buf, sizeof(buf));
		if (e >= 16 && gr_mem_read(m, e - 16, buf, 64, NULL) == 0)
			fuzz_touch(buf, 64);
	}
	for (size_t i = 0; i < n && i < 16; i++) {
		if (gr_mem_read(m, th[i].sp, buf, sizeof(buf), NULL) == 0)
			fuzz_touch(buf, sizeof(buf));
	}
	gr_core_close(c);
	return 0;
}
