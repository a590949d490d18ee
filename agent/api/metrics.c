/* metrics.c — /metrics in the Prometheus text format (version 0.0.4): the agent's counters
 * (a snapshot its thread took), the server's own, and the standard process_* metrics of the
 * agent process read from /proc/self, as Prometheus' client libraries export them. Names are
 * goscope_<what>[_<unit>][_total]; counters end in _total, units are base units (seconds,
 * bytes), so that `promtool check metrics` accepts the output. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api_impl.h"

struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = b->cap * 2 + (size_t)n + 1;
		char *np = realloc(b->p, nc);

		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
}

static void metric(struct mbuf *b, const char *type, const char *name, const char *help, double v)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

#define COUNTER(b, name, help, v) metric(b, "counter", name, help, (double)(v))
#define GAUGE(b, name, help, v) metric(b, "gauge", name, help, (double)(v))

/* process_* from /proc/self: CPU time, memory, open and max descriptors, start time. */
static void process_metrics(struct mbuf *b)
{
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024], *p;
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
	double boot = 0;
	unsigned nfds = 0;
	struct rlimit rl;
	FILE *f;
	DIR *d;

	f = fopen("/proc/self/stat", "re");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		fclose(f);
		buf[n] = '\0';
		/* Fields after the comm, which may hold spaces and parentheses. */
		p = strrchr(buf, ')');
		if (p && sscanf(p + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
				"%*d %*d %*d %llu %llu %llu",
				&utime, &stime, &start, &vsize, &rss) != 5)
			utime = stime = start = vsize = rss = 0;
	}
	f = fopen("/proc/stat", "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "btime %lf", &boot) == 1)
				break;
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;

		while ((e = readdir(d)))
			nfds += e->d_name[0] != '.';
		closedir(d);
		nfds--; /* the directory's own descriptor */
	}
	if (tck <= 0)
		tck = 100;
	COUNTER(b, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
		(double)(utime + stime) / (double)tck);
	GAUGE(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
	      (double)rss * (double)page);
	GAUGE(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize);
	GAUGE(b, "process_open_fds", "Number of open file descriptors.", nfds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		GAUGE(b, "process_max_fds", "Maximum number of open file descriptors.",
		      rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
	GAUGE(b, "process_start_time_seconds",
	      "Start time of the process since unix epoch in seconds.",
	      boot + (double)start / (double)tck);
}

/* The Kubernetes metadata client's counters (agent/kube/kube.h), when it runs. */
static void kube_metrics(struct mbuf *b, const struct kube_stats *k)
{
	GAUGE(b, "goscope_kube_pods", "Pods of this node known from the Kubernetes API server.",
	      k->pods);
	GAUGE(b, "goscope_kube_synced",
	      "1 while the pod list and watch are up to date (0: the API server is unreachable).",
	      k->synced ? 1 : 0);
	COUNTER(b, "goscope_kube_lists_total", "Successful lists of this node's pods.", k->lists);
	COUNTER(b, "goscope_kube_relists_total", "Lists after the first (410 Gone, watch errors).",
		k->relists);
	COUNTER(b, "goscope_kube_list_errors_total", "Pod lists that failed.", k->list_errors);
	COUNTER(b, "goscope_kube_watch_errors_total", "Pod watches that ended in an error.",
		k->watch_errors);
	COUNTER(b, "goscope_kube_gone_total", "410 Gone answers (an expired resourceVersion).",
		k->gone);
	COUNTER(b, "goscope_kube_watch_events_total", "Pod watch events applied.", k->events);
	COUNTER(b, "goscope_kube_pods_dropped_total",
		"Pods not tracked because the table was full.", k->pods_dropped);
	COUNTER(b, "goscope_kube_token_reloads_total",
		"Service account token reads after the first (rotation, 401).", k->token_reloads);
}

int api_metrics_render(const struct api_metrics *m, const struct api_server_counters *sc,
		       char **out, size_t *len)
{
	struct mbuf b = {.cap = 8192};

	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	GAUGE(&b, "goscope_processes_tracked", "Go processes being profiled now.",
	      m->processes_tracked);
	COUNTER(&b, "goscope_processes_found_total", "Go processes that started being profiled.",
		m->processes_found);
	COUNTER(&b, "goscope_processes_gone_total", "Profiled processes that exited or exec'd.",
		m->processes_gone);
	COUNTER(&b, "goscope_processes_excluded_total",
		"Go processes left out by --include/--exclude.", m->processes_excluded);
	COUNTER(&b, "goscope_samples_total", "CPU samples received from BPF.", m->samples);
	COUNTER(&b, "goscope_samples_dropped_total",
		"CPU samples lost: the ring buffer was full, or the profile refused them as "
		"malformed (logged).",
		m->samples_dropped);
	COUNTER(&b, "goscope_windows_total", "Profiling windows cut.", m->windows);
	COUNTER(&b, "goscope_windows_stored_total", "Profiles (one per process and window) stored.",
		m->windows_stored);
	COUNTER(&b, "goscope_windows_dropped_total",
		"Profiles that could not be stored (disk full, I/O error) or made (a block "
		"window's cut failed), each also logged.",
		m->windows_dropped);
	GAUGE(&b, "goscope_store_rows", "Rows in the profile store.", m->store_rows);
	GAUGE(&b, "goscope_store_size_bytes", "Size of the store's database and WAL files.",
	      m->store_bytes);
	COUNTER(&b, "goscope_store_rows_expired_total", "Rows deleted by --retention.",
		m->store_rows_expired);
	COUNTER(&b, "goscope_store_rows_evicted_total", "Rows deleted to stay under --max-disk.",
		m->store_rows_evicted);
	GAUGE(&b, "goscope_captures_running", "On-demand captures running.", sc->captures_running);
	COUNTER(&b, "goscope_captures_rejected_total",
		"Captures and merges refused with 429 (too many at once).", sc->captures_rejected);
	COUNTER(&b, "goscope_captures_total", "On-demand captures answered.", m->captures_total);
	COUNTER(&b, "goscope_heap_read_failures_total",
		"Heap profiles that could not be read from a process's memory (--heap).",
		m->heap_failures);
	COUNTER(&b, "goscope_symbolizer_cache_hits_total",
		"Binary lookups that found the binary open in the symbolizer's cache.",
		m->symbolizer_hits);
	COUNTER(&b, "goscope_symbolizer_cache_misses_total",
		"Binary lookups that had to open the binary.", m->symbolizer_misses);
	GAUGE(&b, "goscope_symbolizer_binaries_open", "Binaries open in the symbolizer's cache.",
	      m->symbolizer_binaries_open);
	GAUGE(&b, "goscope_bpf_map_entries", "Entries in the CPU sampler's target map.",
	      m->bpf_targets);
	GAUGE(&b, "goscope_bpf_map_max_entries", "Size of the CPU sampler's target map.",
	      m->bpf_targets_max);
	GAUGE(&b, "goscope_bpf_map_fill_ratio",
	      "Fill of the CPU sampler's target map (entries / size).",
	      m->bpf_targets_max ? (double)m->bpf_targets / (double)m->bpf_targets_max : 0.0);
	GAUGE(&b, "goscope_block_sessions", "Continuous blocking-profile sessions running.",
	      m->block_sessions);
	if (m->kube_enabled)
		kube_metrics(&b, &m->kube);
	if (m->push) {
		COUNTER(&b, "goscope_push_windows_pushed_total",
			"Stored windows delivered to the push remote (2xx).", m->push_pushed);
		COUNTER(&b, "goscope_push_requests_total", "Push requests sent.", m->push_requests);
		COUNTER(&b, "goscope_push_requests_retried_total",
			"Push requests that failed (5xx, 408, 429, network) and are retried.",
			m->push_retried);
		COUNTER(&b, "goscope_push_windows_dropped_total",
			"Windows refused by the remote (4xx) or beyond its limits, not retried.",
			m->push_dropped);
		COUNTER(&b, "goscope_push_windows_lost_total",
			"Undelivered windows deleted by --retention or --max-disk.", m->push_lost);
		GAUGE(&b, "goscope_push_backlog_windows", "Stored windows not delivered yet.",
		      m->push_backlog_rows);
		GAUGE(&b, "goscope_push_backlog_oldest_age_seconds",
		      "Age of the oldest undelivered window's start (0 when none).",
		      m->push_backlog_age_s);
	}
	process_metrics(&b);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

enum MHD_Result api_metrics_answer(struct api *a, struct MHD_Connection *conn,
				   const struct api_metrics *m)
{
	struct api_server_counters sc;
	char *text;
	size_t len;

	api_server_counters(a, &sc);
	if (api_metrics_render(m, &sc, &text, &len) < 0)
		return api_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
	return api_respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
			   true, NULL);
}
