/* kallsyms.c — kernel text symbols from /proc/kallsyms in the symbolizer's sorted table
 * (see kallsyms.h, include/goscope/symtab.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks/kallsyms.h"

int kallsyms_load(struct kallsyms *k, const char *path, struct gs_error *err)
{
	char line[512], name[256], type;
	unsigned long long addr;
	bool any_nonzero = false;
	FILE *f;

	memset(k, 0, sizeof(*k));
	f = fopen(path, "re");
	if (!f)
		return gs_error_set(err, -errno, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		struct gs_symtab *t = &k->tab;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (addr)
			any_nonzero = true;
		/* Of aliases listed together, the last one names the address. */
		if (t->n && t->syms[t->n - 1].addr == addr)
			t->n--;
		if (gs_symtab_add_copy(t, addr, 0, name, strlen(name)) < 0) {
			fclose(f);
			kallsyms_free(k);
			return gs_error_set(err, -ENOMEM, "out of memory reading %s", path);
		}
	}
	fclose(f);
	if (!any_nonzero) {
		kallsyms_free(k);
		return gs_error_set(err, -EPERM,
				    "kernel symbol addresses are hidden (kernel.kptr_restrict)");
	}
	gs_symtab_sort(&k->tab);
	return 0;
}

void kallsyms_free(struct kallsyms *k)
{
	gs_symtab_free(&k->tab);
}

const struct gs_sym *kallsyms_lookup(const struct kallsyms *k, uint64_t addr)
{
	return gs_symtab_lookup(&k->tab, addr);
}

uint64_t kallsyms_first_addr(const struct kallsyms *k)
{
	return k->tab.n ? k->tab.syms[0].addr : 0;
}
