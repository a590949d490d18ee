/* test_mapguard.c — a binary file truncated while the symbolizer has it mapped
 * (symbolizer/mapguard.c): lookups return -EIO ("binary changed while being read") instead of
 * the process dying of SIGBUS, the binary cache stops handing out the changed binary and
 * closes it once unreferenced, and a SIGBUS outside the symbolizer's mappings still reaches
 * the handler that was installed before (run under ASan by `make asan-test` too). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "goscope/symbolizer.h"
#include "symbolizer/elf_image.h"
#include "symbolizer/elfsyms.h"
#include "tests/unit/elfbuild.h"
#include "tests/unit/testutil.h"

#define TEXT_SIZE (64u << 10)

static char dir[] = "/tmp/goscope-mapguard-XXXXXX";
static char path[sizeof(dir) + 16];

static void setup(void)
{
	cr_assert(mkdtemp(dir), "mkdtemp");
	snprintf(path, sizeof(path), "%s/bin", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(mapguard, .init = setup, .fini = teardown);

/* Writes an ELF whose .text (TEXT_SIZE bytes) is the function f; its symbol table lies past
 * the text, far beyond 12288 bytes. Returns f's address. */
static uint64_t write_small_elf(void)
{
	static uint8_t code[TEXT_SIZE];
	struct elfb b;
	uint8_t *img;
	uint64_t text;
	size_t size;
	FILE *f;

	eb_init(&b);
	text = eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code, sizeof(code),
			   16);
	eb_add_load(&b, PF_R | PF_X, EB_BASE, text + sizeof(code));
	eb_add_symtab(&b, (struct eb_sym[]){{"f", text, sizeof(code), STT_FUNC, 1}}, 1);
	img = eb_finish(&b, &size, 0);
	cr_assert_gt(size, 3 * 12288);
	f = fopen(path, "we");
	cr_assert(f);
	cr_assert_eq(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
	return text;
}

/* Copies a real Go binary (the toolchain's vet) to path; false when it is not installed. */
static bool copy_go_binary(void)
{
	size_t size;
	uint8_t *img = tu_read_file(TU_VET127, &size);
	FILE *f;

	if (!img)
		return false;
	f = fopen(path, "we");
	cr_assert(f);
	cr_assert_eq(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
	return true;
}

static void truncate_to(off_t size)
{
	cr_assert_eq(truncate(path, size), 0, "truncate: %s", strerror(errno));
}

struct count_ctx {
	unsigned long n;
};

static int count_fn(void *ctx, const char *name, uint64_t entry, uint64_t end)
{
	(void)name;
	(void)entry;
	(void)end;
	((struct count_ctx *)ctx)->n++;
	return 0;
}

/* ELF symbols read for the first time after the file shrank: -EIO, no signal. */
Test(mapguard, elf_symbols_after_truncate)
{
	uint64_t f = write_small_elf();
	struct gs_frame frames[4];
	struct gs_error err = {0};
	struct gs_binary *bin;
	uint64_t off;

	cr_assert_eq(gs_binary_open(path, &bin, &err), 0, "%s", err.msg);
	cr_assert_eq(gs_binary_changed(bin), false);
	truncate_to(12288);
	cr_assert_eq(gs_binary_symbolize(bin, f + 100, 0, frames, 4, &err), -EIO);
	cr_assert(strstr(err.msg, "changed while being read"), "%s", err.msg);
	cr_assert(strstr(err.msg, path), "names the file: %s", err.msg);
	cr_assert_eq(gs_binary_changed(bin), true);
	/* Every lookup fails from now on, even those whose bytes are still in the file. */
	cr_assert_eq(gs_binary_symbolize(bin, f, 0, frames, 4, NULL), -EIO);
	cr_assert_eq(gs_binary_addr_to_offset(bin, f, &off), -EIO);
	gs_binary_close(bin);
}

/* The same through the raw ELF reader that crashed (gs_elfsyms_load), down to 0 bytes:
 * even the header page is gone. */
Test(mapguard, elfsyms_load_after_truncate_to_zero)
{
	struct gs_error err = {0};
	struct gs_symtab syms;
	struct gs_elf elf;
	uint64_t v;

	write_small_elf();
	cr_assert_eq(gs_elf_open_path(&elf, path, &err), 0, "%s", err.msg);
	truncate_to(0);
	cr_assert_eq(gs_elfsyms_load(&elf, &syms, NULL), 0);
	cr_assert_eq(gs_elf_changed(&elf), true);
	cr_assert_eq(syms.n, 0, "zero pages hold no symbols");
	gs_symtab_free(&syms);
	cr_assert_eq(gs_elf_symbol(&elf, "f", &v, NULL), -ENOENT);
	gs_elf_close(&elf);
}

/* A real Go binary truncated as in the report (12288 bytes), then to 0: the pclntab, the
 * ELF headers, everything fails with -EIO; no signal. */
Test(mapguard, go_binary_truncated)
{
	static const off_t sizes[] = {12288, 0};

	for (unsigned k = 0; k < 2; k++) {
		struct gs_frame frames[8];
		struct gs_error err = {0};
		struct count_ctx cc = {0};
		struct gs_binary *bin;
		uint64_t entry, end, off;
		uint8_t buf[16];

		if (!copy_go_binary())
			cr_skip_test("%s not installed", TU_VET127);
		cr_assert_eq(gs_binary_open(path, &bin, &err), 0, "%s", err.msg);
		cr_assert_eq(gs_binary_find_function(bin, "main.main", &entry, &end), 0);
		truncate_to(sizes[k]);
		cr_assert_eq(gs_binary_symbolize(bin, entry + 1, 0, frames, 8, &err), -EIO,
			     "truncated to %lld", (long long)sizes[k]);
		cr_assert_eq(gs_binary_find_function(bin, "main.main", &entry, &end), -EIO);
		cr_assert_eq(gs_binary_foreach_function(bin, count_fn, &cc), -EIO);
		cr_assert_eq(gs_binary_read(bin, entry, buf, sizeof(buf)), -EIO);
		cr_assert_eq(gs_binary_offset_to_addr(bin, 0x1000, &off), -EIO);
		gs_binary_close(bin);
		/* Opening the truncated file gives an error or a binary without the table. */
		if (gs_binary_open(path, &bin, &err) == 0) {
			cr_assert_eq(gs_binary_symbolize(bin, entry + 1, 0, frames, 8, NULL) > 0,
				     false);
			gs_binary_close(bin);
		}
	}
}

/* Threads looking up while the file is truncated: each lookup succeeds or fails with -EIO,
 * none crashes. */
struct race_ctx {
	struct gs_binary *bin;
	uint64_t entry;
	int eio;
};

static void *lookup_loop(void *arg)
{
	struct race_ctx *rc = arg;
	struct gs_frame frames[8];

	/* Until the change is seen (the test truncates 2 ms in), or 50 million lookups. */
	for (int i = 0; i < 50000000; i++) {
		int n = gs_binary_symbolize(rc->bin, rc->entry + (uint64_t)(i % 4096), 0, frames, 8,
					    NULL);

		if (n == -EIO) {
			rc->eio = 1;
			break;
		}
		cr_assert_geq(n, 0);
	}
	return NULL;
}

Test(mapguard, truncate_during_lookups)
{
	struct race_ctx rc[2] = {0};
	struct gs_error err = {0};
	struct gs_binary *bin;
	pthread_t th[2];
	uint64_t end;

	if (!copy_go_binary())
		cr_skip_test("%s not installed", TU_VET127);
	cr_assert_eq(gs_binary_open(path, &bin, &err), 0, "%s", err.msg);
	for (int i = 0; i < 2; i++) {
		rc[i].bin = bin;
		cr_assert_eq(gs_binary_find_function(bin, i ? "runtime.mallocgc" : "main.main",
						     &rc[i].entry, &end),
			     0);
		pthread_create(&th[i], NULL, lookup_loop, &rc[i]);
	}
	usleep(2000);
	truncate_to(12288);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(rc[0].eio && rc[1].eio, true, "every thread saw the change");
	gs_binary_close(bin);
}

/* The cache never hands out a changed binary again and closes it as soon as it is
 * unreferenced, whatever its limits. */
Test(mapguard, cache_drops_changed_binary)
{
	struct gs_symbolizer *s;
	struct gs_error err = {0};
	struct gs_binary *a, *b = NULL;
	struct gs_frame frames[4];
	uint64_t f = write_small_elf();
	int fd;

	cr_assert_eq(gs_symbolizer_new(&s, &err), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_eq(gs_symbolizer_acquire(s, fd, path, &a, &err), 0, "%s", err.msg);
	close(fd);
	truncate_to(12288);
	cr_assert_eq(gs_binary_symbolize(a, f, 0, frames, 4, NULL), -EIO);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (gs_symbolizer_acquire(s, fd, path, &b, &err) == 0)
		cr_assert_neq(a, b, "the changed binary was handed out again");
	close(fd);
	cr_assert_eq(gs_symbolizer_cached_binaries(s), b ? 2u : 1u);
	gs_symbolizer_release(s, a);
	cr_assert_eq(gs_symbolizer_cached_binaries(s), b ? 1u : 0u, "closed once unreferenced");
	gs_symbolizer_release(s, b);
	gs_symbolizer_free(s);
}

static sigjmp_buf jump;
static volatile sig_atomic_t chained;

static void test_handler(int sig)
{
	(void)sig;
	chained = 1;
	siglongjmp(jump, 1);
}

/* A SIGBUS outside the symbolizer's mappings goes to the handler installed before it. */
Test(mapguard, foreign_sigbus_chains)
{
	struct sigaction sa = {0};
	struct gs_binary *bin;
	char other[sizeof(dir) + 16];
	volatile uint8_t *p;
	int fd;

	sa.sa_handler = test_handler;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
	write_small_elf();
	cr_assert_eq(gs_binary_open(path, &bin, NULL), 0); /* installs the guard */
	snprintf(other, sizeof(other), "%s/other", dir);
	fd = open(other, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8192), 0);
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq((void *)p, MAP_FAILED);
	cr_assert_eq(ftruncate(fd, 0), 0);
	if (sigsetjmp(jump, 1) == 0)
		(void)p[4096];
	cr_assert_eq(chained, 1, "the previous SIGBUS handler was not called");
	cr_assert_eq(gs_binary_changed(bin), false);
	munmap((void *)p, 8192);
	close(fd);
	unlink(other);
	gs_binary_close(bin);
}
