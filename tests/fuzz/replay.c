/* replay.c — runs a corpus through every fuzz target's code without libFuzzer, so that the
 * committed seeds (and any crash reproducer dropped into the corpus) are replayed by the
 * normal compiler under ASan/UBSan in `make asan-test`. Each target is #included with its
 * entry point renamed. Usage: fuzz-replay CORPUS_DIR (searched recursively). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LLVMFuzzerTestOneInput fuzz_elf_one
#include "tests/fuzz/fuzz_elf.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_pclntab_one
#include "tests/fuzz/fuzz_pclntab.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_buildinfo_one
#include "tests/fuzz/fuzz_buildinfo.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_inline_one
#include "tests/fuzz/fuzz_inline.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_pprof_decode_one
#include "tests/fuzz/fuzz_pprof_decode.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_core_one
#include "tests/fuzz/fuzz_core.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_api_query_one
#include "tests/fuzz/fuzz_api_query.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_kube_watch_one
#include "tests/fuzz/fuzz_kube_watch.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_heap_one
#include "tests/fuzz/fuzz_heap.c"
#undef LLVMFuzzerTestOneInput

static int (*const targets[])(const uint8_t *, size_t) = {
	fuzz_elf_one,	       fuzz_pclntab_one, fuzz_buildinfo_one, fuzz_inline_one,
	fuzz_pprof_decode_one, fuzz_core_one,	 fuzz_api_query_one, fuzz_heap_one,
	fuzz_kube_watch_one,
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static unsigned long replayed;

/* Reads path into an exactly sized buffer (as libFuzzer hands inputs over) and runs it. */
static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	for (size_t i = 0; i < NTARGETS; i++)
		targets[i](buf, got);
	free(buf);
	replayed++;
	return 0;
}

static int walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc |= walk(path);
		else if (S_ISREG(st.st_mode))
			rc |= replay_file(path);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (walk(argv[1]) < 0)
		return 1;
	printf("replayed %lu inputs through %zu targets\n", replayed, NTARGETS);
	return 0;
}
