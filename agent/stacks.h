/* stacks.h — turns raw stacks (pid + PCs) into profile locations: opens each process's
 * binaries through the symbolizer while the process is alive, dedupes locations by
 * (pid, address), and expands inlined frames into pprof Lines. Shared by every capture kind
 * (CPU, block). */
#ifndef GOSCOPE_AGENT_STACKS_H
#define GOSCOPE_AGENT_STACKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/symbolizer.h"
#include "kallsyms.h"
#include "profile.h"

struct stack_proc {
	pid_t pid;
	struct gs_process *proc; /* NULL when the process could not be read */
	char comm[32];
};

struct stacks {
	struct profile *prof;
	struct gs_symbolizer *sym;
	struct stack_proc *procs;
	size_t nprocs, cap;
	struct kallsyms ksyms;
	bool have_ksyms;
	uint64_t kernel_mapping;
};

int stacks_init(struct stacks *s, struct profile *prof, bool kernel, struct gs_error *err);
void stacks_free(struct stacks *s);
/* The process entry for pid, opening it (and its binaries) on first use. */
struct stack_proc *stacks_proc(struct stacks *s, pid_t pid);
/* Location id for a user PC. leaf: pc is the interrupted instruction (looked up as is);
 * otherwise a return address (looked up at pc-1, as runtime.CallersFrames does). 0 on
 * ENOMEM. */
uint64_t stacks_user_location(struct stacks *s, struct stack_proc *sp, uint64_t pc, bool leaf);
uint64_t stacks_kernel_location(struct stacks *s, uint64_t pc);

#endif
