/* heap_read.c — the heap / block / mutex profile of a live process by pid: open its
 * executable through the symbolizer, find the variables, walk the buckets, build the
 * profile (heap_find.c, heap.c, heap_profile.c). A heap_reader keeps a binary cache for
 * repeated reads (the agent, one read per process per window) and serializes them on its
 * mutex, so that another thread (the HTTP API) may share it; heap_profile_read uses a
 * reader of its own. Nothing here stops or slows the target: it is only read. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goruntime/heap.h"
#include "profile/profile.h"

struct heap_reader {
	pthread_mutex_t mu;
	struct gs_symbolizer *sym;
};

int heap_reader_new(struct heap_reader **out, struct gs_error *err)
{
	struct heap_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return gs_error_set(err, -ENOMEM, "out of memory");
	rc = gs_symbolizer_new(&r->sym, err);
	if (rc < 0) {
		free(r);
		return rc;
	}
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void heap_reader_free(struct heap_reader *r)
{
	if (!r)
		return;
	gs_symbolizer_free(r->sym);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static int read_locked(struct gs_symbolizer *sym, pid_t pid, enum heap_kind kind,
		       struct profile **prof, struct heap_stats *stats, struct gs_error *err)
{
	const struct gs_binary_info *bi;
	struct goversion_facts gf;
	struct goversion_mprof mf;
	struct heap_snapshot *snap = NULL;
	struct gs_process *proc = NULL;
	struct gr_mem *mem = NULL;
	struct gs_binary *bin;
	struct heap_vars vars = {0};
	uint64_t bias = 0;
	int rc;

	rc = gs_process_open(sym, pid, &proc, err);
	if (rc < 0)
		return rc;
	bin = gs_process_main_binary(proc);
	if (!bin || !(bi = gs_binary_info(bin))->is_go) {
		rc = gs_error_set(err, -ENOEXEC, "pid %d is not a Go program", (int)pid);
		goto out;
	}
	if (!bi->has_buildinfo) {
		rc = gs_error_set(err, -EPROTONOSUPPORT,
				  "%s has no Go build info: cannot tell its Go version",
				  gs_binary_name(bin));
		goto out;
	}
	rc = goversion_lookup(bi->buildinfo.go_version, &gf, err);
	if (rc < 0)
		goto out;
	goversion_mprof_lookup(gf.minor, &mf);
	if (gs_process_load_bias(proc, bin, &bias) < 0) {
		rc = gs_error_set(err, -ENOENT, "cannot find the executable's mapping in pid %d",
				  (int)pid);
		goto out;
	}
	rc = gr_mem_open_pid(pid, &mem, err);
	if (rc < 0)
		goto out;
	rc = heap_find_vars(bin, bias, mem, &mf, kind, &vars, err);
	if (rc == 0)
		rc = heap_snapshot_read(mem, &mf, &vars, kind, NULL, &snap, err);
	if (rc == 0)
		rc = heap_snapshot_profile(snap, bin, bias, 0, prof, err);
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		snprintf(stats->go_version, sizeof(stats->go_version), "%s",
			 bi->buildinfo.go_version);
		stats->list_found_by = vars.list_found_by;
		stats->reads = mem ? mem->reads : 0;
		if (snap) {
			stats->rate = snap->rate;
			stats->buckets = snap->n;
			stats->inconsistent = snap->inconsistent;
			stats->unreadable = snap->unreadable;
			stats->restarts = snap->restarts;
			stats->cut = snap->cut;
			stats->all_cycles = snap->all_cycles;
		}
	}
out:
	heap_snapshot_free(snap);
	gr_mem_close(mem);
	gs_process_close(proc);
	if (rc == -ESRCH)
		gs_error_set(err, -ESRCH, "process %d is gone", (int)pid);
	return rc;
}

int heap_reader_read(struct heap_reader *r, pid_t pid, enum heap_kind kind, struct profile **prof,
		     struct heap_stats *stats, struct gs_error *err)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = read_locked(r->sym, pid, kind, prof, stats, err);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int heap_profile_read(pid_t pid, enum heap_kind kind, struct profile **prof,
		      struct heap_stats *stats, struct gs_error *err)
{
	struct heap_reader *r;
	int rc = heap_reader_new(&r, err);

	if (rc < 0)
		return rc;
	rc = heap_reader_read(r, pid, kind, prof, stats, err);
	heap_reader_free(r);
	return rc;
}
