/* symtab.c — the sorted symbol table shared by ELF symbols and kernel symbols (see
 * include/goscope/symtab.h). Copied names live in a few large blocks rather than one heap
 * allocation each: /proc/kallsyms has a few hundred thousand of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goscope/symtab.h"

#define NAMES_BLOCK (64u << 10)

struct gs_symtab_names {
	struct gs_symtab_names *next;
	size_t used, cap;
	char data[];
};

int gs_symtab_reserve(struct gs_symtab *t, size_t n)
{
	struct gs_sym *ns;

	if (n <= t->cap)
		return 0;
	ns = realloc(t->syms, n * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	t->syms = ns;
	t->cap = n;
	return 0;
}

int gs_symtab_add(struct gs_symtab *t, uint64_t addr, uint64_t size, const char *name)
{
	if (t->n == t->cap && gs_symtab_reserve(t, t->cap ? t->cap * 2 : 1024) < 0)
		return -ENOMEM;
	t->syms[t->n++] = (struct gs_sym){.addr = addr, .size = size, .name = name};
	return 0;
}

/* Room for len bytes in the current names block, starting a new block when it is full. */
static char *names_alloc(struct gs_symtab *t, size_t len)
{
	struct gs_symtab_names *b = t->names;
	char *p;

	if (!b || b->cap - b->used < len) {
		size_t cap = len > NAMES_BLOCK ? len : NAMES_BLOCK;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = t->names;
		b->used = 0;
		b->cap = cap;
		t->names = b;
		t->name_bytes += sizeof(*b) + cap;
	}
	p = b->data + b->used;
	b->used += len;
	return p;
}

int gs_symtab_add_copy(struct gs_symtab *t, uint64_t addr, uint64_t size, const char *name,
		       size_t len)
{
	char *copy = names_alloc(t, len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, len);
	copy[len] = '\0';
	/* A failed add leaves the copy in its block, freed with the table. */
	return gs_symtab_add(t, addr, size, copy);
}

static int cmp_sym(const void *a, const void *b)
{
	const struct gs_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (x->size < y->size) - (x->size > y->size);
}

void gs_symtab_sort(struct gs_symtab *t)
{
	if (t->n > 1)
		qsort(t->syms, t->n, sizeof(*t->syms), cmp_sym);
}

const struct gs_sym *gs_symtab_lookup(const struct gs_symtab *t, uint64_t addr)
{
	const struct gs_sym *best;
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	best = &t->syms[lo - 1];
	/* Among symbols at the same address, take the first: the sized one. */
	while (best > t->syms && best[-1].addr == best->addr)
		best--;
	if (best->size && addr - best->addr >= best->size)
		return NULL;
	return best;
}

size_t gs_symtab_bytes(const struct gs_symtab *t)
{
	return t->cap * sizeof(*t->syms) + t->name_bytes;
}

void gs_symtab_free(struct gs_symtab *t)
{
	while (t->names) {
		struct gs_symtab_names *next = t->names->next;

		free(t->names);
		t->names = next;
	}
	free(t->syms);
	memset(t, 0, sizeof(*t));
}
