/* coredump.h — an ELF core file (from the kernel or gdb's gcore) as a memory to read Go
 * runtime structures from: memory from the PT_LOAD segments, the ranges the core leaves out
 * (read-only file mappings) from the executable, thread registers from NT_PRSTATUS, mapped
 * files from NT_FILE, the entry point from NT_AUXV.
 *
 * The core is untrusted input: the file is read with pread (a core truncated meanwhile gives
 * errors, not SIGBUS), every offset and count is checked, notes are capped in size. */
#ifndef GOSCOPE_AGENT_GORUNTIME_COREDUMP_H
#define GOSCOPE_AGENT_GORUNTIME_COREDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"
#include "goscope/symbolizer.h"
#include "goruntime/goroutines.h"
#include "goruntime/memread.h"

#define GR_CORE_MAX_SEGMENTS 65535
#define GR_CORE_MAX_NOTES_BYTES (64u << 20)
#define GR_CORE_MAX_THREADS 65536
#define GR_CORE_MAX_FILES 65536

struct gr_core_file {
	uint64_t start, end, offset; /* offset in bytes */
	const char *path;	     /* points into the core's notes */
};

struct gr_core;

/* Opens and parses the core: -EINVAL with a message for what is not an x86-64 ELF core or
 * is malformed, -EIO for a truncated one. */
int gr_core_open(const char *path, struct gr_core **out, struct gs_error *err);
/* The same on a memory image the caller keeps (fuzzing, tests). */
int gr_core_open_mem(const void *data, size_t size, struct gr_core **out, struct gs_error *err);
void gr_core_close(struct gr_core *c);

/* The threads, the one that got the fatal signal first (marked crashing). */
const struct gr_thread *gr_core_threads(const struct gr_core *c, size_t *n);
const struct gr_core_file *gr_core_files(const struct gr_core *c, size_t *n);
/* AT_ENTRY of the process (runtime address of the executable's entry point); -ENOENT. */
int gr_core_entry(const struct gr_core *c, uint64_t *entry);
/* The path of the main executable from NT_FILE (the file mapped at AT_ENTRY); -ENOENT. */
int gr_core_exe_path(const struct gr_core *c, const char **path);

/* Ties the executable to the core: computes the load bias (from AT_ENTRY and the ELF entry of
 * the executable, else from its NT_FILE mapping), checks that the executable is the one the
 * process ran (its build IDs must appear in the executable's first page as the core holds it:
 * -ENOEXEC "core does not match"), and from then on serves the ranges the core left out from
 * the executable. The binary must outlive the core's memory reader. */
int gr_core_set_exe(struct gr_core *c, struct gs_binary *bin, uint64_t *bias, struct gs_error *err);

/* The memory reader over the core (owned by the core: do not close it). */
struct gr_mem *gr_core_mem(struct gr_core *c);

#endif
