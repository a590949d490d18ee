/* memread.h — one interface for reading the memory of a Go program, whether it is a live
 * process (process_vm_readv, else /proc/PID/mem) or a core file (agent/goruntime/coredump.h).
 *
 * Everything read through it is untrusted: the goroutine reader checks every pointer and
 * length it gets back. A read either fills the whole buffer or fails (-EFAULT for an address
 * that is not mapped or not in the core, -ESRCH for a process that is gone). */
#ifndef GOSCOPE_AGENT_GORUNTIME_MEMREAD_H
#define GOSCOPE_AGENT_GORUNTIME_MEMREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

struct gr_mem {
	/* Reads len bytes at addr into buf: 0, or a negative errno (err may be NULL). */
	int (*read)(struct gr_mem *m, uint64_t addr, void *buf, size_t len, struct gs_error *err);
	void (*close)(struct gr_mem *m);
	uint64_t reads; /* calls that reached the target (statistics) */
};

static inline int gr_mem_read(struct gr_mem *m, uint64_t addr, void *buf, size_t len,
			      struct gs_error *err)
{
	return m->read(m, addr, buf, len, err);
}

static inline void gr_mem_close(struct gr_mem *m)
{
	if (m)
		m->close(m);
}

/* A reader of the live process pid: process_vm_readv, falling back to /proc/PID/mem when
 * the kernel refuses it (-ENOSYS, or a seccomp filter). Never stops the process. */
int gr_mem_open_pid(pid_t pid, struct gr_mem **out, struct gs_error *err);

#endif
