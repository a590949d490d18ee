/* memread.c — reading a live process's memory from outside without stopping it: one
 * process_vm_readv per read (falling back to pread on /proc/PID/mem). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "goruntime/memread.h"

struct live_mem {
	struct gr_mem m;
	pid_t pid;
	int memfd; /* /proc/PID/mem once process_vm_readv was refused, else -1 */
};

/* process_vm_readv reads what it can and stops at the first unmapped page; a short read is
 * a fault for our purpose (a g or a stack word that is cut is not a g). */
static int live_read(struct gr_mem *m, uint64_t addr, void *buf, size_t len, struct gs_error *err)
{
	struct live_mem *lm = (struct live_mem *)m;
	ssize_t n = -1;

	m->reads++;
	if (len == 0)
		return 0;
	if (addr + len < addr)
		return gs_error_set(err, -EFAULT, "address 0x%llx + %zu wraps",
				    (unsigned long long)addr, len);
	if (lm->memfd < 0) {
		struct iovec local = {.iov_base = buf, .iov_len = len};
		struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};

		n = process_vm_readv(lm->pid, &local, 1, &remote, 1, 0);
		if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
			char path[64];

			snprintf(path, sizeof(path), "/proc/%d/mem", (int)lm->pid);
			lm->memfd = open(path, O_RDONLY | O_CLOEXEC);
			if (lm->memfd < 0)
				return gs_error_set(err, -errno,
						    "cannot read the memory of pid %d: %m",
						    (int)lm->pid);
		}
	}
	if (lm->memfd >= 0)
		n = pread(lm->memfd, buf, len, (off_t)addr);
	if (n < 0) {
		int e = errno;

		if (e == ESRCH)
			return gs_error_set(err, -ESRCH, "process %d is gone", (int)lm->pid);
		return gs_error_set(err, -EFAULT, "cannot read %zu bytes at 0x%llx: %s", len,
				    (unsigned long long)addr, strerror(e));
	}
	if ((size_t)n != len)
		return gs_error_set(err, -EFAULT, "cannot read %zu bytes at 0x%llx (got %zd)", len,
				    (unsigned long long)addr, n);
	return 0;
}

static void live_close(struct gr_mem *m)
{
	struct live_mem *lm = (struct live_mem *)m;

	if (lm->memfd >= 0)
		close(lm->memfd);
	free(lm);
}

int gr_mem_open_pid(pid_t pid, struct gr_mem **out, struct gs_error *err)
{
	struct live_mem *lm = calloc(1, sizeof(*lm));

	if (!lm)
		return gs_error_set(err, -ENOMEM, "out of memory");
	lm->m.read = live_read;
	lm->m.close = live_close;
	lm->pid = pid;
	lm->memfd = -1;
	*out = &lm->m;
	return 0;
}
