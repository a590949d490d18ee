/* discover.c — how the agent learns of new processes (see discover.h): the exec watcher
 * (bpf/procwatch.bpf.c, one record per exec through a ring buffer) and a rescan of /proc every
 * rescan_ms, the first one at the first poll.
 *
 * Candidates are gathered first and reported after, so that the CPU time counted for the exec
 * watcher and for rescans (stats exec_ns, rescan_ns) is discovery's own and not what the
 * caller's found() does with each process. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/core.h"
#include "daemon/discover.h"
#include "goscope/procwatch.h"
#include "procs/proc.h"
#include "procwatch.skel.h"

#define NSEC_PER_MSEC 1000000ULL
/* After the ring lost records, the next rescan comes at most this soon. */
#define DROP_RESCAN_MS 1000u

struct cand {
	pid_t pid;
	uint64_t start_ticks;
};

struct cand_list {
	struct cand *v;
	size_t n, cap;
	bool oom; /* a push failed: the next rescan finds what was not kept */
};

struct discover {
	struct discover_config cfg;
	char *proc_root;
	struct procwatch_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *link;
	struct cand_list events; /* exec records drained, not yet reported */
	struct cand_list scan;	 /* rescan candidates, not yet reported */
	bool scanned;		 /* the first scan is done */
	uint64_t next_rescan_ns; /* monotonic */
	uint64_t drops_seen;	 /* PROCWATCH_STAT_DROPS at the last look */
	struct discover_stats st;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void push(struct cand_list *l, pid_t pid, uint64_t start)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct cand *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct cand){.pid = pid, .start_ticks = start};
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start_ticks < y->start_ticks ? -1 : x->start_ticks > y->start_ticks;
}

/* Sorts and removes repeats (a process that exec'd twice between two drains is one
 * candidate: whoever inspects it sees its latest image). */
static void sort_unique(struct cand_list *l)
{
	size_t out = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cand_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (out == 0 || cand_cmp(&l->v[out - 1], &l->v[i]) != 0)
			l->v[out++] = l->v[i];
	l->n = out;
}

static int on_exec(void *ctx, void *data, size_t size)
{
	struct discover *d = ctx;
	const struct procwatch_event *e = data;

	if (size < sizeof(*e))
		return 0;
	d->st.execs++;
	push(&d->events, (pid_t)e->pid, e->start_ticks);
	return 0;
}

/* Drains the ring into d->events (sorted, unique); the CPU time goes to exec_ns. When the
 * BPF side counted lost records since the last look, the next rescan is brought forward. */
static int drain(struct discover *d, uint64_t cpu0)
{
	uint64_t sums[PROCWATCH_STAT_COUNT], now;
	uint64_t before = d->st.execs;
	int rc;

	rc = ring_buffer__consume(d->rb);
	sort_unique(&d->events);
	/* Lost records (ring full, or no memory to keep them here) are found by a rescan. */
	if (d->events.oom ||
	    (d->st.execs != before &&
	     capture_percpu_sums(d->skel->maps.stats, PROCWATCH_STAT_COUNT, sums) == 0 &&
	     sums[PROCWATCH_STAT_DROPS] != d->drops_seen)) {
		if (!d->events.oom)
			d->drops_seen = sums[PROCWATCH_STAT_DROPS];
		now = capture_monotonic_ns();
		if (d->next_rescan_ns > now + DROP_RESCAN_MS * NSEC_PER_MSEC)
			d->next_rescan_ns = now + DROP_RESCAN_MS * NSEC_PER_MSEC;
	}
	d->st.exec_ns += thread_cpu_ns() - cpu0;
	return rc < 0 ? rc : 0;
}

/* Whether (pid, start) is among the sorted exec candidates. */
static bool in_events(const struct discover *d, const struct cand *c)
{
	return d->events.n && bsearch(c, d->events.v, d->events.n, sizeof(*c), cand_cmp);
}

/* A pid directory name: digits only, a positive pid_t. */
static pid_t dir_pid(const char *name)
{
	long v = 0;

	if (!*name)
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9' || v > 0x3fffffff)
			return 0;
		v = v * 10 + (*p - '0');
	}
	return (pid_t)v;
}

/* One pass over proc_root: every live user-space process known() does not know goes to
 * d->scan. Kernel threads (PF_KTHREAD in the stat line that gives the start time anyway) and
 * zombies are skipped. */
static int rescan(struct discover *d, discover_known_fn known, void *arg, struct gs_error *err)
{
	uint64_t cpu0 = thread_cpu_ns();
	struct dirent *de;
	DIR *dir = opendir(d->proc_root);

	if (!dir)
		return gs_error_set(err, -errno, "open %s: %s", d->proc_root, strerror(errno));
	while ((de = readdir(dir)) != NULL) {
		pid_t pid = dir_pid(de->d_name);
		struct proc_stat st;

		if (pid <= 0 || proc_stat_read(d->proc_root, pid, &st) < 0)
			continue;
		if ((st.flags & PROC_PF_KTHREAD) || st.state == 'Z' || st.state == 'X')
			continue;
		if (known && known(arg, pid, st.start_ticks))
			continue;
		push(&d->scan, pid, st.start_ticks);
	}
	closedir(dir);
	d->st.rescans++;
	d->st.rescan_ns += thread_cpu_ns() - cpu0;
	return 0;
}

static void report_events(struct discover *d, discover_found_fn found, void *arg)
{
	for (size_t i = 0; i < d->events.n; i++)
		found(arg, d->events.v[i].pid, d->events.v[i].start_ticks);
	d->events.n = 0;
	d->events.oom = false;
}

int discover_open(const struct discover_config *cfg, struct discover **out, struct gs_error *err)
{
	struct discover *d;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return gs_error_set(err, -ENOMEM, "out of memory");
	d->cfg = *cfg;
	if (!d->cfg.rescan_ms)
		d->cfg.rescan_ms = DISCOVER_RESCAN_MS;
	d->proc_root = strdup(cfg->proc_root ? cfg->proc_root : "/proc");
	if (!d->proc_root) {
		free(d);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	d->cfg.proc_root = d->proc_root;
	if (!cfg->no_exec_watch) {
		d->skel = procwatch_bpf__open();
		if (!d->skel) {
			rc = capture_bpf_error(err, -errno, "open BPF object procwatch");
			goto fail;
		}
		d->skel->rodata->wake_each = cfg->exec_wake_each;
		rc = capture_bpf_load(d->skel->skeleton, "load BPF program procwatch", err);
		if (rc < 0)
			goto fail;
		d->rb = ring_buffer__new(bpf_map__fd(d->skel->maps.execs), on_exec, d, NULL);
		if (!d->rb) {
			rc = gs_error_set(err, -errno, "ring buffer: %s", strerror(errno));
			goto fail;
		}
		d->link = bpf_program__attach(d->skel->progs.procwatch_exec);
		if (!d->link) {
			rc = capture_bpf_error(err, -errno, "attach sched_process_exec");
			goto fail;
		}
		d->st.exec_watch = true;
	}
	*out = d;
	return 0;
fail:
	discover_close(d);
	return rc;
}

int discover_fd(const struct discover *d)
{
	return d->rb ? ring_buffer__epoll_fd(d->rb) : -1;
}

int discover_poll(struct discover *d, int timeout_ms, discover_known_fn known,
		  discover_found_fn found, void *arg, struct gs_error *err)
{
	uint64_t now = capture_monotonic_ns(), cpu0;
	int wait_ms = timeout_ms < 0 ? 0 : timeout_ms, rc;

	/* Wait no longer than the next rescan (the first one is due at once). */
	if (!d->scanned)
		wait_ms = 0;
	else if (d->next_rescan_ns <= now)
		wait_ms = 0;
	else if ((d->next_rescan_ns - now) / NSEC_PER_MSEC < (uint64_t)wait_ms)
		wait_ms = (int)((d->next_rescan_ns - now) / NSEC_PER_MSEC) + 1;
	if (d->rb) {
		rc = ring_buffer__poll(d->rb, wait_ms);
		if (rc < 0 && rc != -EINTR)
			return gs_error_set(err, rc, "exec watcher poll: %s", strerror(-rc));
		rc = drain(d, thread_cpu_ns());
		if (rc < 0)
			return gs_error_set(err, rc, "exec watcher ring: %s", strerror(-rc));
		report_events(d, found, arg);
	} else if (wait_ms > 0) {
		poll(NULL, 0, wait_ms);
	}
	now = capture_monotonic_ns();
	if (d->scanned && now < d->next_rescan_ns)
		return 0;

	/* A rescan. The execs it raced with are drained after it: a process both named by an
	 * exec record and found by the scan is reported once, as an exec. */
	rc = rescan(d, known, arg, err);
	d->next_rescan_ns = capture_monotonic_ns() + d->cfg.rescan_ms * NSEC_PER_MSEC;
	if (rc < 0)
		return rc;
	if (d->rb) {
		cpu0 = thread_cpu_ns();
		rc = drain(d, cpu0);
		if (rc < 0)
			return gs_error_set(err, rc, "exec watcher ring: %s", strerror(-rc));
	}
	for (size_t i = 0; i < d->scan.n; i++) {
		if (in_events(d, &d->scan.v[i]))
			continue;
		if (d->scanned)
			d->st.rescan_found++;
		else
			d->st.first_scan_found++;
		found(arg, d->scan.v[i].pid, d->scan.v[i].start_ticks);
	}
	d->scan.n = 0;
	d->scan.oom = false;
	d->scanned = true;
	report_events(d, found, arg);
	return 0;
}

uint64_t discover_rescans(const struct discover *d)
{
	return d->st.rescans;
}

void discover_stats(const struct discover *d, struct discover_stats *out)
{
	uint64_t sums[PROCWATCH_STAT_COUNT];

	*out = d->st;
	if (d->skel && capture_percpu_sums(d->skel->maps.stats, PROCWATCH_STAT_COUNT, sums) == 0) {
		out->ring_drops = sums[PROCWATCH_STAT_DROPS];
		out->bpf_execs = sums[PROCWATCH_STAT_EXECS];
	}
	if (d->skel) {
		struct bpf_prog_info info = {0};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_program__fd(d->skel->progs.procwatch_exec), &info,
					   &len) == 0) {
			out->bpf_run_ns = info.run_time_ns;
			out->bpf_runs = info.run_cnt;
		}
	}
}

void discover_close(struct discover *d)
{
	if (!d)
		return;
	bpf_link__destroy(d->link);
	ring_buffer__free(d->rb);
	procwatch_bpf__destroy(d->skel);
	free(d->events.v);
	free(d->scan.v);
	free(d->proc_root);
	free(d);
}
