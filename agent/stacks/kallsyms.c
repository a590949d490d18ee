/* kallsyms.c — a sorted table of kernel text symbols (see kallsyms.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks/kallsyms.h"

static int by_addr(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

int kallsyms_load(struct kallsyms *k, const char *path, struct gs_error *err)
{
	char line[512], name[256], type;
	unsigned long long addr;
	size_t cap = 0;
	bool any_nonzero = false;
	FILE *f;

	memset(k, 0, sizeof(*k));
	f = fopen(path, "re");
	if (!f)
		return gs_error_set(err, -errno, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (addr)
			any_nonzero = true;
		if (k->n == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			struct ksym *ns = realloc(k->syms, nc * sizeof(*ns));

			if (!ns)
				goto nomem;
			k->syms = ns;
			cap = nc;
		}
		k->syms[k->n].addr = addr;
		k->syms[k->n].name = strdup(name);
		if (!k->syms[k->n].name)
			goto nomem;
		k->n++;
	}
	fclose(f);
	if (!any_nonzero) {
		kallsyms_free(k);
		return gs_error_set(err, -EPERM,
				    "kernel symbol addresses are hidden (kernel.kptr_restrict)");
	}
	qsort(k->syms, k->n, sizeof(*k->syms), by_addr);
	return 0;
nomem:
	fclose(f);
	kallsyms_free(k);
	return gs_error_set(err, -ENOMEM, "out of memory reading %s", path);
}

void kallsyms_free(struct kallsyms *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->syms[i].name);
	free(k->syms);
	memset(k, 0, sizeof(*k));
}

const struct ksym *kallsyms_lookup(const struct kallsyms *k, uint64_t addr)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &k->syms[lo - 1] : NULL;
}
