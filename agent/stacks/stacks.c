/* stacks.c — raw PCs to pprof locations (see stacks.h). Each unique (process image, address) is
 * symbolized once. The PC conventions (leaf as is, return addresses at pc-1, the leaf written
 * as pc+1) are explained at the top of stacks.h and applied in stacks_user_location. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs/proc.h"
#include "stacks/stacks.h"

#define MAX_INLINE_FRAMES 64
/* Location key for kernel addresses (no process). */
#define KERNEL_KEY 0xffffffffffffffffULL

static uint64_t skip_hash(uint64_t key, uint64_t addr)
{
	uint64_t h = (key * 0x9e3779b97f4a7c15ULL) ^ (addr * 0xc2b2ae3d27d4eb4fULL);

	return h ^ (h >> 29);
}

static bool skip_has(const struct stacks *s, uint64_t key, uint64_t addr)
{
	if (!s->skip_cap)
		return false;
	for (size_t i = skip_hash(key, addr) & (s->skip_cap - 1);;
	     i = (i + 1) & (s->skip_cap - 1)) {
		if (!s->skip[i].used)
			return false;
		if (s->skip[i].key == key && s->skip[i].addr == addr)
			return true;
	}
}

/* Remembers (key, addr) as skipped; on ENOMEM it is simply looked up again next time. */
static void skip_add(struct stacks *s, uint64_t key, uint64_t addr)
{
	if ((s->skip_n + 1) * 2 > s->skip_cap) {
		size_t nc = s->skip_cap ? s->skip_cap * 2 : 64;
		struct stacks_skip *old = s->skip, *ns = calloc(nc, sizeof(*ns));
		size_t oc = s->skip_cap;

		if (!ns)
			return;
		s->skip = ns;
		s->skip_cap = nc;
		s->skip_n = 0;
		for (size_t i = 0; i < oc; i++) {
			if (old[i].used)
				skip_add(s, old[i].key, old[i].addr);
		}
		free(old);
	}
	for (size_t i = skip_hash(key, addr) & (s->skip_cap - 1);;
	     i = (i + 1) & (s->skip_cap - 1)) {
		if (!s->skip[i].used) {
			s->skip[i] = (struct stacks_skip){key, addr, true};
			s->skip_n++;
			return;
		}
		if (s->skip[i].key == key && s->skip[i].addr == addr)
			return;
	}
}

size_t stacks_user_stack(struct stacks *s, struct stack_proc *sp, const uint64_t *user, size_t n,
			 uint64_t *locs, size_t nlocs)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t id = stacks_user_location(s, sp, user[i], i == 0);

		if (id && id != STACKS_SKIP)
			locs[nlocs++] = id;
	}
	return nlocs;
}

int stacks_init(struct stacks *s, struct profile *prof, bool kernel, struct gs_error *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->prof = prof;
	rc = gs_symbolizer_new(&s->sym, err);
	if (rc < 0)
		return rc;
	if (kernel) {
		rc = kallsyms_load(&s->ksyms, "/proc/kallsyms", err);
		if (rc < 0) {
			gs_symbolizer_free(s->sym);
			return rc;
		}
		s->have_ksyms = true;
	}
	return 0;
}

void stacks_free(struct stacks *s)
{
	for (size_t i = 0; i < s->nprocs; i++) {
		gs_process_close(s->procs[i]->proc);
		free(s->procs[i]);
	}
	free(s->procs);
	if (s->have_ksyms)
		kallsyms_free(&s->ksyms);
	gs_symbolizer_free(s->sym);
	free(s->skip);
	memset(s, 0, sizeof(*s));
}

void stacks_set_profile(struct stacks *s, struct profile *prof)
{
	if (s->prof == prof)
		return;
	s->prof = prof;
	s->kernel_mapping = 0; /* a mapping id of the previous profile */
}

struct stack_proc *stacks_find(struct stacks *s, pid_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++) {
		if (s->procs[i]->pid == pid)
			return s->procs[i];
	}
	return NULL;
}

/* Rebuilds the skip table without the entries of key (open addressing cannot delete in
 * place without tombstones; forgetting a process is rare next to lookups). */
static void skip_drop_key(struct stacks *s, uint64_t key)
{
	struct stacks_skip *old = s->skip;
	size_t oc = s->skip_cap;

	s->skip = NULL;
	s->skip_cap = 0;
	s->skip_n = 0;
	for (size_t i = 0; i < oc; i++) {
		if (old[i].used && old[i].key != key)
			skip_add(s, old[i].key, old[i].addr);
	}
	free(old);
}

void stacks_close(struct stacks *s, struct stack_proc *sp)
{
	size_t i;

	if (!sp)
		return;
	for (i = 0; i < s->nprocs && s->procs[i] != sp; i++)
		;
	if (i == s->nprocs)
		return;
	s->procs[i] = s->procs[--s->nprocs];
	if (s->nprocs == 0) {
		free(s->procs);
		s->procs = NULL;
		s->cap = 0;
	}
	skip_drop_key(s, sp->key);
	gs_process_close(sp->proc);
	free(sp);
}

void stacks_forget(struct stacks *s, pid_t pid)
{
	stacks_close(s, stacks_find(s, pid));
}

struct stack_proc *stacks_open(struct stacks *s, pid_t pid)
{
	struct stack_proc *sp;

	if (s->nprocs == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct stack_proc **np = realloc(s->procs, nc * sizeof(*np));

		if (!np)
			return NULL;
		s->procs = np;
		s->cap = nc;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	s->procs[s->nprocs++] = sp;
	sp->pid = pid;
	sp->key = ++s->next_key;
	proc_comm("/proc", pid, sp->comm, sizeof(sp->comm));
	if (gs_process_open(s->sym, pid, &sp->proc, NULL) == 0)
		gs_process_preload(sp->proc);
	else
		sp->proc = NULL;
	golabels_cfg(sp->proc, &sp->golabels);
	return sp;
}

struct stack_proc *stacks_proc(struct stacks *s, pid_t pid)
{
	struct stack_proc *sp = stacks_find(s, pid);

	return sp ? sp : stacks_open(s, pid);
}

static uint64_t mapping_for(struct stacks *s, const struct gs_location *loc)
{
	const struct gs_binary_info *in = loc->binary ? gs_binary_info(loc->binary) : NULL;
	const char *build_id = "";
	bool go = in && in->pclntab_format != GS_PCLNTAB_NONE;

	if (!loc->mapping)
		return 0;
	if (in)
		build_id = *in->go_build_id ? in->go_build_id : in->gnu_build_id;
	return profile_mapping(s->prof, loc->mapping->start, loc->mapping->end,
			       loc->mapping->offset, loc->mapping->path, build_id, in != NULL, go,
			       go, go);
}

uint64_t stacks_user_location(struct stacks *s, struct stack_proc *sp, uint64_t pc, bool leaf)
{
	struct profile_line lines[MAX_INLINE_FRAMES];
	struct gs_frame frames[MAX_INLINE_FRAMES];
	uint64_t addr = leaf ? pc + 1 : pc, id, mapping = 0; /* PC conventions: stacks.h */
	struct gs_location loc = {0};
	int n = 0, nl = 0;

	id = profile_location_find(s->prof, sp->key, addr);
	if (id)
		return id;
	if (skip_has(s, sp->key, addr))
		return STACKS_SKIP;
	if (sp->proc && gs_process_locate(sp->proc, pc, &loc) == 0) {
		mapping = mapping_for(s, &loc);
		if (loc.binary)
			n = gs_binary_symbolize(loc.binary, loc.file_addr + (addr - pc),
						GS_LOOKUP_RETURN_ADDR, frames, MAX_INLINE_FRAMES,
						NULL);
	}
	/* An address that is only an autogenerated wrapper is left out of stacks, as the
	 * runtime's traceback does. */
	if (n == 1 && frames[0].wrapper) {
		skip_add(s, sp->key, addr);
		return STACKS_SKIP;
	}
	/* Functions by their full symbol names, generics' shapes included, as runtime/pprof
	 * writes them (runtime_FrameSymbolName), not as tracebacks print them ("F[...]"):
	 * each instantiation its own function, and the names the program's own profiles have. */
	for (int i = 0; i < n; i++) {
		uint64_t fid =
			profile_function(s->prof, frames[i].raw_function, frames[i].raw_function,
					 frames[i].go ? frames[i].file : "", frames[i].start_line);

		if (!fid)
			return 0;
		lines[nl].function_id = fid;
		lines[nl].line = frames[i].line;
		nl++;
	}
	return profile_location_add(s->prof, sp->key, addr, mapping, lines, (size_t)nl);
}

uint64_t stacks_kernel_location(struct stacks *s, uint64_t pc)
{
	struct profile_line line;
	const struct gs_sym *ks;
	uint64_t id = profile_location_find(s->prof, KERNEL_KEY, pc);

	if (id)
		return id;
	if (!s->kernel_mapping)
		s->kernel_mapping = profile_mapping(
			s->prof, s->have_ksyms ? kallsyms_first_addr(&s->ksyms) : 0, UINT64_MAX, 0,
			"[kernel.kallsyms]", "", true, false, false, false);
	ks = s->have_ksyms ? kallsyms_lookup(&s->ksyms, pc) : NULL;
	if (!ks)
		return profile_location_add(s->prof, KERNEL_KEY, pc, s->kernel_mapping, NULL, 0);
	line.function_id = profile_function(s->prof, ks->name, ks->name, "", 0);
	line.line = 0;
	if (!line.function_id)
		return 0;
	return profile_location_add(s->prof, KERNEL_KEY, pc, s->kernel_mapping, &line, 1);
}
