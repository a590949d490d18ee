/* kallsyms.h — kernel symbols from /proc/kallsyms, for kernel frames of CPU samples. */
#ifndef GOSCOPE_AGENT_KALLSYMS_H
#define GOSCOPE_AGENT_KALLSYMS_H

#include <stdint.h>
#include <stddef.h>

#include "goscope/error.h"

struct ksym {
	uint64_t addr;
	char *name;
};

struct kallsyms {
	struct ksym *syms; /* sorted by address */
	size_t n;
};

/* Loads text symbols; -EPERM when addresses are hidden (kptr_restrict). path is normally
 * "/proc/kallsyms". */
int kallsyms_load(struct kallsyms *k, const char *path, struct gs_error *err);
void kallsyms_free(struct kallsyms *k);
/* The symbol at or before addr, or NULL. */
const struct ksym *kallsyms_lookup(const struct kallsyms *k, uint64_t addr);

#endif
