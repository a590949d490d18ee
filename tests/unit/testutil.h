/* testutil.h — small helpers shared by the unit tests: reading real binaries from the
 * installed Go toolchains into exactly-sized heap buffers (so that ASan catches any read past
 * the end of an image), and locating their sections. */
#ifndef GOSCOPE_TESTS_TESTUTIL_H
#define GOSCOPE_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TU_VET119 "/usr/lib/go-1.19/pkg/tool/linux_amd64/vet"
#define TU_VET127 "/usr/lib/go-1.27/pkg/tool/linux_amd64/vet"

/* The whole file in a malloc'd buffer of exactly its size, or NULL (errno set). */
uint8_t *tu_read_file(const char *path, size_t *size);
/* A malloc'd copy of [p, p+n) (n may be 0). */
uint8_t *tu_dup(const void *p, size_t n);
/* File offset and size of the named section of an ELF image; 0 or -1. */
int tu_section(const uint8_t *img, size_t size, const char *name, uint64_t *off, uint64_t *sz);
/* A fresh directory /tmp/goscope-NAME-XXXXXX in buf (a fake /proc tree, say), and its
 * removal with everything in it (errors said on stderr: a test's leftovers are not its
 * failure). */
void tu_mkdtemp(char *buf, size_t len, const char *name);
void tu_rmtree(const char *dir);
/* Deterministic PRNG (xorshift64*) for the corruption tests. */
uint64_t tu_rand(uint64_t *state);

#endif
