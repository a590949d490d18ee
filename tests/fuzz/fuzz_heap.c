/* fuzz_heap.c — libFuzzer target for the bucket walk of agent/goruntime/heap.c: the input is
 * a memory image of a Go program (what goscope reads from a live process is untrusted),
 * read through a gr_mem that fails outside it, with the walk's variables at its start:
 *   byte 0: kind (mod 3: heap, block, mutex); byte 1: Go version (mod 5: 1.19, 1.21, 1.23,
 *   1.24, 1.27); byte 2: max_buckets (0: the default); bytes 3-7: unused;
 *   then the image, mapped at FUZZ_HEAP_BASE: the list head (a *bucket) at +0,
 *   mProfCycle (uint32) at +8, MemProfileRate at +16, mutexprofilerate at +24.
 * Every bucket the walk returns is touched (stack and values), so a length that strays
 * outside what was read trips ASan. Built with -DFUZZ_HEAP_SEEDS it is a program that
 * writes the seeds (tests/fuzz/corpus/heap-*.bin): `cc -DFUZZ_HEAP_SEEDS ... && ./a.out DIR`. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/goruntime/goversion_table.c"
#include "agent/goruntime/heap.c"
#include "tests/fuzz/fuzz_common.h"

#define FUZZ_HEAP_BASE 0x10000ULL
#define FUZZ_HEAP_HDR 8

struct fuzz_heap_mem {
	struct gr_mem m;
	const uint8_t *img;
	size_t len;
};

static int fuzz_heap_read(struct gr_mem *m, uint64_t addr, void *buf, size_t len,
			  struct gs_error *err)
{
	struct fuzz_heap_mem *fm = (struct fuzz_heap_mem *)m;

	m->reads++;
	if (addr < FUZZ_HEAP_BASE || addr - FUZZ_HEAP_BASE > fm->len ||
	    len > fm->len - (addr - FUZZ_HEAP_BASE))
		return gs_error_set(err, -EFAULT, "unmapped");
	memcpy(buf, fm->img + (addr - FUZZ_HEAP_BASE), len);
	return 0;
}

static void fuzz_heap_close(struct gr_mem *m)
{
	(void)m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int minors[] = {19, 21, 23, 24, 27};
	struct fuzz_heap_mem fm = {.m = {.read = fuzz_heap_read, .close = fuzz_heap_close}};
	struct heap_vars v = {.list = FUZZ_HEAP_BASE,
			      .cycle = FUZZ_HEAP_BASE + 8,
			      .rate = FUZZ_HEAP_BASE + 16,
			      .mutex_rate = FUZZ_HEAP_BASE + 24};
	struct heap_read_opts o = {0};
	struct goversion_mprof f;
	struct heap_snapshot *s;
	enum heap_kind kind;

	if (size < FUZZ_HEAP_HDR)
		return 0;
	kind = (enum heap_kind)(data[0] % 3);
	goversion_mprof_lookup(minors[data[1] % 5], &f);
	o.max_buckets = data[2] ? data[2] : 4096; /* a self-loop is walked that far */
	fm.img = data + FUZZ_HEAP_HDR;
	fm.len = size - FUZZ_HEAP_HDR;
	if (heap_snapshot_read(&fm.m, &f, &v, kind, &o, &s, NULL) < 0)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->b[i].nstk)
			fuzz_touch(s->b[i].stk, s->b[i].nstk * sizeof(uint64_t));
		fuzz_sink ^= (uint8_t)(s->b[i].v[0] ^ s->b[i].v[1] ^ s->b[i].v[2] ^ s->b[i].v[3]);
	}
	heap_snapshot_free(s);
	return 0;
}

#ifdef FUZZ_HEAP_SEEDS
/* A heap list of two buckets in the 1.27 layout, and a block list of one. */
static void put64(uint8_t *img, size_t off, uint64_t v)
{
	memcpy(img + off, &v, 8);
}

static void seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(buf, 1, len, fp) != len) {
		perror(path);
		exit(1);
	}
	fclose(fp);
}

int main(int argc, char **argv)
{
	uint8_t in[FUZZ_HEAP_HDR + 1024] = {0}, *img = in + FUZZ_HEAP_HDR;
	size_t b1 = 64, b2 = 256;

	if (argc != 2)
		return 2;
	in[0] = 0; /* heap */
	in[1] = 4; /* 1.27 */
	put64(img, 0, FUZZ_HEAP_BASE + b1);
	put64(img, 8, 5u << 1);
	put64(img, 16, 512 * 1024);
	put64(img, b1 + 8, FUZZ_HEAP_BASE + b2); /* allnext */
	put64(img, b1 + 16, 1);			 /* typ: memProfile */
	put64(img, b1 + 32, 4096);		 /* size */
	put64(img, b1 + 40, 2);			 /* nstk */
	put64(img, b1 + 48, 0x401234);
	put64(img, b1 + 56, 0x405678);
	put64(img, b1 + 64, 10); /* active.allocs */
	put64(img, b1 + 72, 3);	 /* active.frees */
	put64(img, b2 + 16, 1);
	put64(img, b2 + 32, 64);
	put64(img, b2 + 40, 1);
	put64(img, b2 + 48, 0x401000);
	put64(img, b2 + 56 + 16 * 3, 7); /* future[(5 % 3)] allocs: published */
	seed(argv[1], "heap-go127-two-buckets.bin", in, FUZZ_HEAP_HDR + 512);
	memset(in, 0, sizeof(in));
	in[0] = 1; /* block */
	in[1] = 0; /* 1.19 */
	put64(img, 0, FUZZ_HEAP_BASE + b1);
	put64(img, b1 + 16, 2);
	put64(img, b1 + 40, 1);
	put64(img, b1 + 48, 0x401000);
	put64(img, b1 + 56, 0x4008000000000000ull); /* count 3.0 */
	put64(img, b1 + 64, 123456);		    /* cycles */
	seed(argv[1], "heap-go119-block.bin", in, FUZZ_HEAP_HDR + 256);
	return 0;
}
#endif
