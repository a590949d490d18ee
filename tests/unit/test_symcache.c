/* test_symcache.c — the symbolizer's bounded binary cache (symbolizer/process.c): least
 * recently used eviction, the count and byte limits, references that keep a binary open
 * however far over the limits the cache is (run under ASan by `make asan-test`, where a
 * binary freed under a holder fails the test), reopening after eviction, and the references
 * a gs_process holds on the binaries of its mappings. */
#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goscope/symbolizer.h"
#include "tests/unit/elfbuild.h"

#define NFILES 5
#define TEXT_SIZE (64u << 10)

static char dir[] = "/tmp/goscope-symcache-XXXXXX";
static char paths[NFILES][sizeof(dir) + 16];
static uint64_t text_addr[NFILES];

/* An ELF whose .text of TEXT_SIZE bytes is the function f<i>. */
static void write_elf(int i)
{
	static uint8_t code[TEXT_SIZE];
	char name[16];
	struct elfb b;
	uint8_t *img;
	size_t size;
	FILE *f;

	eb_init(&b);
	text_addr[i] = eb_add_data(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code,
				   sizeof(code), 16);
	eb_add_load(&b, PF_R | PF_X, EB_BASE, text_addr[i] + sizeof(code));
	snprintf(name, sizeof(name), "f%d", i);
	eb_add_symtab(&b, (struct eb_sym[]){{name, text_addr[i], sizeof(code), STT_FUNC, 1}}, 1);
	img = eb_finish(&b, &size, 0);
	snprintf(paths[i], sizeof(paths[i]), "%s/bin%d", dir, i);
	f = fopen(paths[i], "we");
	cr_assert(f);
	cr_assert_eq(fwrite(img, 1, size, f), size);
	fclose(f);
	free(img);
}

static void setup(void)
{
	cr_assert(mkdtemp(dir), "mkdtemp");
	for (int i = 0; i < NFILES; i++)
		write_elf(i);
}

static void teardown(void)
{
	for (int i = 0; i < NFILES; i++)
		unlink(paths[i]);
	rmdir(dir);
	strcpy(dir + strlen(dir) - 6, "XXXXXX");
}

TestSuite(symcache, .init = setup, .fini = teardown);

static struct gs_binary *acquire(struct gs_symbolizer *s, int i)
{
	struct gs_error err = {0};
	struct gs_binary *bin = NULL;
	int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(gs_symbolizer_acquire(s, fd, paths[i], &bin, &err), 0, "%s", err.msg);
	close(fd);
	return bin;
}

/* Symbolizes inside f<i> through bin: the binary is open and is file i. */
static void check_symbolize(const struct gs_binary *bin, int i)
{
	struct gs_frame fr[4];
	char want[16];

	snprintf(want, sizeof(want), "f%d", i);
	cr_assert_eq(gs_binary_symbolize(bin, text_addr[i] + 100, 0, fr, 4, NULL), 1);
	cr_assert_str_eq(fr[0].function, want);
}

/* Acquires, uses and releases file i. */
static void use(struct gs_symbolizer *s, int i)
{
	struct gs_binary *bin = acquire(s, i);

	check_symbolize(bin, i);
	gs_symbolizer_release(s, bin);
}

static struct gs_symbolizer_stats stats(const struct gs_symbolizer *s)
{
	struct gs_symbolizer_stats st;

	gs_symbolizer_stats(s, &st);
	return st;
}

static struct gs_symbolizer *new_symbolizer(unsigned max_binaries, uint64_t max_bytes)
{
	struct gs_symbolizer *s;

	cr_assert_eq(gs_symbolizer_new(&s, NULL), 0);
	gs_symbolizer_set_limits(s, max_binaries, max_bytes);
	return s;
}

Test(symcache, defaults)
{
	struct gs_symbolizer *s;

	cr_assert_eq(gs_symbolizer_new(&s, NULL), 0);
	cr_assert_eq(stats(s).max_binaries, GS_SYMBOLIZER_DEFAULT_MAX_BINARIES);
	cr_assert_eq(stats(s).max_bytes, GS_SYMBOLIZER_DEFAULT_MAX_BYTES);
	cr_assert_eq(gs_symbolizer_cached_binaries(s), 0);
	cr_assert_eq(gs_symbolizer_cached_bytes(s), 0);
	gs_symbolizer_free(s);
}

/* Unreferenced binaries go least recently used first; a hit makes a binary recent again. */
Test(symcache, lru_order)
{
	struct gs_symbolizer *s = new_symbolizer(2, UINT64_MAX);

	use(s, 0);
	use(s, 1);
	use(s, 2); /* evicts 0 */
	cr_assert_eq(stats(s).binaries, 2);
	cr_assert_eq(stats(s).evictions, 1);
	cr_assert_eq(stats(s).misses, 3);
	use(s, 1); /* a hit: 1 is now more recent than 2 */
	cr_assert_eq(stats(s).hits, 1);
	cr_assert_eq(stats(s).misses, 3);
	use(s, 0); /* 0 was evicted: a miss, which evicts 2, the least recently used */
	cr_assert_eq(stats(s).misses, 4);
	cr_assert_eq(stats(s).evictions, 2);
	use(s, 1);
	cr_assert_eq(stats(s).hits, 2, "1 was kept");
	use(s, 2);
	cr_assert_eq(stats(s).misses, 5, "2 was evicted");
	cr_assert_eq(stats(s).binaries, 2);
	gs_symbolizer_free(s);
}

/* The byte limit counts each binary's mapped file and indexes (gs_binary_bytes). */
Test(symcache, byte_limit)
{
	struct gs_symbolizer *s = new_symbolizer(UINT_MAX, UINT64_MAX);
	struct gs_binary *bin = acquire(s, 0);
	uint64_t one;

	check_symbolize(bin, 0); /* builds the symbol index, which counts too */
	one = gs_binary_bytes(bin);
	cr_assert_gt(one, TEXT_SIZE);
	cr_assert_eq(gs_symbolizer_cached_bytes(s), one);
	gs_symbolizer_release(s, bin);
	gs_symbolizer_set_limits(s, UINT_MAX, one * 2 + one / 2);
	for (int i = 1; i < NFILES; i++) {
		use(s, i);
		cr_assert_leq(gs_symbolizer_cached_bytes(s), one * 2 + one / 2);
	}
	cr_assert_eq(stats(s).binaries, 2);
	cr_assert_eq(stats(s).evictions, NFILES - 2);
	cr_assert_eq(gs_symbolizer_cached_bytes(s), 2 * one);
	gs_symbolizer_free(s);
}

/* A held binary stays open however far over the limits the cache goes, and is closed when
 * its last reference goes. */
Test(symcache, referenced_never_freed)
{
	struct gs_symbolizer *s = new_symbolizer(0, 0);
	struct gs_binary *a = acquire(s, 0), *b = acquire(s, 1), *a2;

	cr_assert_eq(stats(s).binaries, 2);
	cr_assert_eq(stats(s).referenced, 2);
	use(s, 2); /* opened and closed again at once: nothing unreferenced is kept */
	cr_assert_eq(stats(s).binaries, 2);
	cr_assert_eq(stats(s).evictions, 1);
	a2 = acquire(s, 0); /* a second reference to the same binary */
	cr_assert_eq(a2, a);
	gs_symbolizer_set_limits(s, 0, 0);
	gs_symbolizer_release(s, a);
	check_symbolize(a2, 0);
	check_symbolize(b, 1);
	gs_symbolizer_release(s, a2);
	cr_assert_eq(stats(s).binaries, 1);
	check_symbolize(b, 1);
	gs_symbolizer_release(s, b);
	cr_assert_eq(stats(s).binaries, 0);
	cr_assert_eq(gs_symbolizer_cached_bytes(s), 0);
	gs_symbolizer_free(s);
}

/* An evicted binary is opened again on the next lookup and works as before. */
Test(symcache, reopen_after_eviction)
{
	struct gs_symbolizer *s = new_symbolizer(1, UINT64_MAX);

	use(s, 3);
	use(s, 4); /* evicts 3 */
	cr_assert_eq(stats(s).evictions, 1);
	use(s, 3);
	cr_assert_eq(stats(s).misses, 3);
	cr_assert_eq(stats(s).hits, 0);
	gs_symbolizer_free(s);
}

Test(symcache, set_limits_trims_now)
{
	struct gs_symbolizer *s = new_symbolizer(UINT_MAX, UINT64_MAX);

	for (int i = 0; i < NFILES; i++)
		use(s, i);
	cr_assert_eq(stats(s).binaries, NFILES);
	cr_assert_eq(stats(s).referenced, 0);
	gs_symbolizer_set_limits(s, 1, UINT64_MAX);
	cr_assert_eq(stats(s).binaries, 1);
	cr_assert_eq(stats(s).evictions, NFILES - 1);
	use(s, NFILES - 1);
	cr_assert_eq(stats(s).hits, 1, "the most recently used one was kept");
	gs_symbolizer_free(s);
}

/* A function of this test binary, to symbolize through this process's mappings. */
__attribute__((noinline)) int symcache_probe_function(int x)
{
	return x * 3 + 1;
}

static void check_self_symbolize(struct gs_process *p)
{
	struct gs_frame fr[8];
	struct gs_location loc;
	int n = gs_process_symbolize(p, (uint64_t)(uintptr_t)&symcache_probe_function + 1, 0, fr,
				     8, &loc, NULL);

	cr_assert_eq(n, 1);
	cr_assert(loc.binary);
	cr_assert_str_eq(fr[0].function, "symcache_probe_function");
}

/* An open process holds its binaries; closing it makes them unreferenced, kept within the
 * limits for the next process (a restart), or closed at once when nothing may be kept. */
Test(symcache, process_references)
{
	struct gs_symbolizer *s = new_symbolizer(0, 0);
	struct gs_process *p;
	unsigned held;

	cr_assert_eq(gs_process_open(s, getpid(), &p, NULL), 0);
	cr_assert_gt(gs_process_preload(p), 0);
	held = stats(s).binaries;
	cr_assert_gt(held, 0);
	cr_assert_eq(stats(s).referenced, held, "all held, though over the limits");
	cr_assert(gs_process_main_binary(p));
	cr_assert_eq(stats(s).binaries, held, "the executable is one of the mapped files");
	check_self_symbolize(p);
	cr_assert_eq(gs_process_refresh(p, NULL), 0);
	cr_assert_eq(stats(s).binaries, held, "a refresh keeps the mappings' binaries");
	check_self_symbolize(p);
	gs_process_close(p);
	cr_assert_eq(stats(s).binaries, 0);
	cr_assert_eq(stats(s).evictions, held);

	/* With room, a restarting process finds its binaries cached. */
	gs_symbolizer_set_limits(s, GS_SYMBOLIZER_DEFAULT_MAX_BINARIES, UINT64_MAX);
	cr_assert_eq(gs_process_open(s, getpid(), &p, NULL), 0);
	gs_process_preload(p);
	gs_process_close(p);
	cr_assert_eq(stats(s).binaries, held);
	cr_assert_eq(stats(s).referenced, 0);
	cr_assert_eq(gs_process_open(s, getpid(), &p, NULL), 0);
	gs_process_preload(p);
	cr_assert_eq(stats(s).misses, 2 * held, "the second process opened nothing");
	check_self_symbolize(p);
	gs_process_close(p);
	gs_symbolizer_free(s);
}

struct worker {
	struct gs_symbolizer *s;
	struct gs_process *p;
	unsigned seed;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int k = 0; k < 300; k++) {
		int i = rand_r(&w->seed) % NFILES;
		struct gs_binary *bin = acquire(w->s, i);

		check_symbolize(bin, i);
		if (k % 50 == 0)
			check_self_symbolize(w->p);
		gs_symbolizer_release(w->s, bin);
		if (k % 100 == 0)
			gs_process_refresh(w->p, NULL);
	}
	return NULL;
}

/* Threads sharing the cache (and one process) over tight limits: every lookup finds its
 * binary open, and nothing is left referenced. */
Test(symcache, concurrent)
{
	struct gs_symbolizer *s = new_symbolizer(2, UINT64_MAX);
	struct worker w[4];
	pthread_t t[4];
	struct gs_process *p;

	cr_assert_eq(gs_process_open(s, getpid(), &p, NULL), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = s, .p = p, .seed = (unsigned)i + 1};
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	gs_process_close(p);
	cr_assert_eq(stats(s).referenced, 0);
	cr_assert_leq(stats(s).binaries, 2);
	gs_symbolizer_free(s);
}
