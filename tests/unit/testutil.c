/* testutil.c — helpers shared by the unit tests (see testutil.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/elf_image.h"
#include "tests/unit/testutil.h"

uint8_t *tu_read_file(const char *path, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			free(buf);
			buf = NULL;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*size = got;
	return buf;
}

uint8_t *tu_dup(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

int tu_section(const uint8_t *img, size_t size, const char *name, uint64_t *off, uint64_t *sz)
{
	struct gs_elf elf;
	struct gs_elf_section sec;

	if (gs_elf_open_mem(&elf, img, size, NULL) < 0 || gs_elf_find_section(&elf, name, &sec) < 0)
		return -1;
	*off = sec.offset;
	*sz = sec.size;
	return 0;
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

void tu_mkdtemp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/tmp/goscope-%s-XXXXXX", name);
	if (!mkdtemp(buf)) {
		fprintf(stderr, "mkdtemp %s: %s\n", buf, strerror(errno));
		abort();
	}
}

void tu_rmtree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}
