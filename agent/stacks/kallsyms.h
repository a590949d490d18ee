/* kallsyms.h — kernel symbols from /proc/kallsyms, for kernel frames of CPU samples. */
#ifndef GOSCOPE_AGENT_KALLSYMS_H
#define GOSCOPE_AGENT_KALLSYMS_H

#include <stdint.h>
#include <stddef.h>

#include "goscope/error.h"
#include "goscope/symtab.h"

/* Kernel text symbols in the symbolizer's sorted table (sizes unknown, names owned). */
struct kallsyms {
	struct gs_symtab tab;
};

/* Loads text symbols; -EPERM when addresses are hidden (kptr_restrict). path is normally
 * "/proc/kallsyms". */
int kallsyms_load(struct kallsyms *k, const char *path, struct gs_error *err);
void kallsyms_free(struct kallsyms *k);
/* The symbol at or before addr, or NULL. */
const struct gs_sym *kallsyms_lookup(const struct kallsyms *k, uint64_t addr);
/* The lowest symbol address (where the kernel mapping starts), 0 when there is none. */
uint64_t kallsyms_first_addr(const struct kallsyms *k);

#endif
