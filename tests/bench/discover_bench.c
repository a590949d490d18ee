/* discover_bench.c — the driver of tests/bench/agent_discovery.sh: runs three discoverers
 * (agent/daemon/discover.c) side by side on the same exec storm, each in its own thread: the
 * exec watcher (BPF, with the agent's default 30 s rescan; waking the reader at every exec,
 * and batched, the default) and rescans alone every 1 s and every 5 s. Every discoverer polls
 * with a 100 ms timeout, as an agent loop would. A spawner thread starts short-lived processes (/bin/true, RATE per second) and
 * long-lived ones (/bin/sleep, 4 per second); afterwards each discoverer's reports are matched
 * with what was spawned:
 *   - CPU: discovery's own CPU time (discover_stats exec_ns + rescan_ns, thread CPU clock), the
 *     discoverer thread's whole CPU time (with its polls and callbacks), and the BPF program's
 *     run time (kernel.bpf_stats_enabled, turned on here), per second of wall time;
 *   - latency: from the fork of a long-lived process to its report (p50, p99, max; the goal is
 *     2 s);
 *   - misses: short-lived processes never reported (they exited before a rescan looked), and
 *     long-lived ones never reported.
 * Reports are matched by pid and time (reported after the spawn): pids do not wrap within a
 * run (pid_max / spawn rate is well over the run time).
 *
 * Usage: discover_bench SECONDS RATE. Prints a table and "RESULT" lines (see run.sh). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/core.h"
#include "daemon/discover.h"

#define MAX_SPAWN 200000
#define MAX_REPORTS 400000
#define LONG_PER_SEC 4
#define NSETS 4
#define KNOWN_BITS 20

struct spawned {
	pid_t pid;
	uint64_t at_ns; /* monotonic, just before the fork */
	bool long_lived;
};

static struct spawned spawned[MAX_SPAWN];
static atomic_size_t nspawned;
static atomic_int stop;

/* One discoverer and what it reported. */
struct disc {
	const char *name;
	struct discover_config cfg;
	struct discover *d;
	struct {
		pid_t pid;
		uint64_t start, at_ns;
	} * rep;
	size_t nrep;
	bool overflow;
	/* known(): an open-addressing set of (pid, start) reported. */
	uint64_t *known;
	size_t nknown;
	uint64_t thread_cpu_ns;
	struct discover_stats st;
	int rc;
	char err[GS_ERROR_MSG_MAX];
};

static uint64_t key_of(pid_t pid, uint64_t start)
{
	return ((uint64_t)(uint32_t)pid << 40) ^ start ^ 1; /* never 0 */
}

static size_t slot(uint64_t k)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ULL) >> (64 - KNOWN_BITS));
}

static bool known_has(struct disc *x, uint64_t k)
{
	for (size_t i = slot(k), n = 0; n < ((size_t)1 << KNOWN_BITS);
	     i = (i + 1) & (((size_t)1 << KNOWN_BITS) - 1), n++) {
		if (x->known[i] == k)
			return true;
		if (x->known[i] == 0)
			return false;
	}
	return false;
}

static void known_add(struct disc *x, uint64_t k)
{
	size_t i = slot(k);

	if (x->nknown * 2 >= ((size_t)1 << KNOWN_BITS))
		return; /* full enough: the bench is far below */
	while (x->known[i] && x->known[i] != k)
		i = (i + 1) & (((size_t)1 << KNOWN_BITS) - 1);
	if (!x->known[i]) {
		x->known[i] = k;
		x->nknown++;
	}
}

static bool on_known(void *arg, pid_t pid, uint64_t start)
{
	return known_has(arg, key_of(pid, start));
}

static void on_found(void *arg, pid_t pid, uint64_t start)
{
	struct disc *x = arg;

	known_add(x, key_of(pid, start));
	if (x->nrep == MAX_REPORTS) {
		x->overflow = true;
		return;
	}
	x->rep[x->nrep].pid = pid;
	x->rep[x->nrep].start = start;
	x->rep[x->nrep].at_ns = capture_monotonic_ns();
	x->nrep++;
}

static uint64_t thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *run_disc(void *arg)
{
	struct disc *x = arg;
	struct gs_error err = {0};
	uint64_t cpu0 = thread_cpu();

	while (!atomic_load(&stop)) {
		x->rc = discover_poll(x->d, 100, on_known, on_found, x, &err);
		if (x->rc < 0) {
			snprintf(x->err, sizeof(x->err), "%s", err.msg);
			break;
		}
	}
	x->thread_cpu_ns = thread_cpu() - cpu0;
	discover_stats(x->d, &x->st);
	return NULL;
}

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ULL),
			      .tv_nsec = (long)(t_ns % 1000000000ULL)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void spawn(bool long_lived)
{
	size_t i = atomic_load(&nspawned);
	uint64_t at = capture_monotonic_ns();
	pid_t pid;

	if (i == MAX_SPAWN)
		return;
	pid = fork();
	if (pid == 0) {
		if (long_lived)
			execl("/bin/sleep", "sleep", "120", (char *)NULL);
		else
			execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return;
	spawned[i] = (struct spawned){.pid = pid, .at_ns = at, .long_lived = long_lived};
	atomic_store(&nspawned, i + 1);
}

struct storm {
	unsigned rate, seconds;
};

static void *run_storm(void *arg)
{
	struct storm *s = arg;
	uint64_t t = capture_monotonic_ns(), step = 1000000000ULL / s->rate;
	uint64_t end = t + (uint64_t)s->seconds * 1000000000ULL, next_long = t;

	while (t < end && !atomic_load(&stop)) {
		spawn(false);
		if (t >= next_long) {
			spawn(true);
			next_long += 1000000000ULL / LONG_PER_SEC;
		}
		t += step;
		sleep_until(t);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The first report of pid at or after at_ns, or 0. */
static uint64_t first_report(const struct disc *x, pid_t pid, uint64_t at_ns)
{
	for (size_t i = 0; i < x->nrep; i++)
		if (x->rep[i].pid == pid && x->rep[i].at_ns >= at_ns)
			return x->rep[i].at_ns;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 20;
	unsigned rate = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
	struct disc sets[NSETS] = {
		{.name = "exec-wake", .cfg = {.proc_root = "/proc", .exec_wake_each = true}},
		{.name = "exec-batch", .cfg = {.proc_root = "/proc"}},
		{.name = "rescan-1s",
		 .cfg = {.proc_root = "/proc", .rescan_ms = 1000, .no_exec_watch = true}},
		{.name = "rescan-5s",
		 .cfg = {.proc_root = "/proc", .rescan_ms = 5000, .no_exec_watch = true}},
	};
	struct storm storm = {.rate = rate ? rate : 1, .seconds = seconds};
	pthread_t th[NSETS], st;
	uint64_t t0, wall_ns;
	struct gs_error err = {0};
	int stats_fd, failed = 0;

	signal(SIGCHLD, SIG_IGN); /* the kernel reaps: short-lived ones vanish at once */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	for (int i = 0; i < NSETS; i++) {
		sets[i].rep = calloc(MAX_REPORTS, sizeof(*sets[i].rep));
		sets[i].known = calloc((size_t)1 << KNOWN_BITS, sizeof(uint64_t));
		if (!sets[i].rep || !sets[i].known)
			return 2;
		if (discover_open(&sets[i].cfg, &sets[i].d, &err) < 0) {
			fprintf(stderr, "%s: %s\n", sets[i].name, err.msg);
			return 2;
		}
	}
	t0 = capture_monotonic_ns();
	for (int i = 0; i < NSETS; i++)
		pthread_create(&th[i], NULL, run_disc, &sets[i]);
	/* The first scans (the host's processes) happen before the storm. */
	sleep_until(t0 + 1500000000ULL);
	pthread_create(&st, NULL, run_storm, &storm);
	pthread_join(st, NULL);
	/* Time for the last spawns to be seen by the slowest rescan. */
	sleep_until(capture_monotonic_ns() + 6000000000ULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < NSETS; i++)
		pthread_join(th[i], NULL);
	wall_ns = capture_monotonic_ns() - t0;
	for (size_t i = 0; i < atomic_load(&nspawned); i++)
		if (spawned[i].long_lived)
			kill(spawned[i].pid, SIGKILL);

	size_t n = atomic_load(&nspawned), nlong = 0, nshort;

	for (size_t i = 0; i < n; i++)
		nlong += spawned[i].long_lived;
	nshort = n - nlong;
	printf("storm: %u s, %u short-lived/s (/bin/true), %u long-lived/s (/bin/sleep): "
	       "%zu short, %zu long spawned; run %.1f s; bpf stats %s\n",
	       seconds, rate, LONG_PER_SEC, nshort, nlong, wall_ns / 1e9,
	       stats_fd >= 0 ? "on" : "unavailable");
	printf("%-11s %9s %9s %9s %7s %8s %8s %8s %9s %10s %10s %7s\n", "mode", "disc_ms/s",
	       "thr_ms/s", "bpf_ms/s", "rescans", "lat_p50", "lat_p99", "lat_max", "long_miss",
	       "short_seen", "short_miss", "drops");
	for (int s = 0; s < NSETS; s++) {
		struct disc *x = &sets[s];
		uint64_t *lat = calloc(nlong + 1, sizeof(*lat));
		size_t nlat = 0, long_miss = 0, short_seen = 0;
		double secs = wall_ns / 1e9, disc_ms, thr_ms, bpf_ms, p50 = 0, p99 = 0, pmax = 0;
		static const char *const tags[NSETS] = {"exec_wake", "exec_batch", "rescan1s",
							"rescan5s"};
		const char *tag = tags[s];

		if (x->rc < 0) {
			printf("%s: discover_poll failed: %s\n", x->name, x->err);
			failed = 1;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t at = first_report(x, spawned[i].pid, spawned[i].at_ns);

			if (spawned[i].long_lived) {
				if (at)
					lat[nlat++] = at - spawned[i].at_ns;
				else
					long_miss++;
			} else if (at) {
				short_seen++;
			}
		}
		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		if (nlat) {
			p50 = lat[nlat / 2] / 1e6;
			p99 = lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1e6;
			pmax = lat[nlat - 1] / 1e6;
		}
		disc_ms = (x->st.exec_ns + x->st.rescan_ns) / 1e6 / secs;
		thr_ms = x->thread_cpu_ns / 1e6 / secs;
		bpf_ms = x->st.bpf_run_ns / 1e6 / secs;
		if (x->st.bpf_runs)
			printf("%s: BPF program %llu runs, %.0f ns per run\n", x->name,
			       (unsigned long long)x->st.bpf_runs,
			       (double)x->st.bpf_run_ns / (double)x->st.bpf_runs);
		printf("%-11s %9.3f %9.3f %9.3f %7llu %8.1f %8.1f %8.1f %9zu %10zu %10zu %7llu\n",
		       x->name, disc_ms, thr_ms, bpf_ms, (unsigned long long)x->st.rescans, p50,
		       p99, pmax, long_miss, short_seen, nshort - short_seen,
		       (unsigned long long)x->st.ring_drops);
		printf("RESULT discovery_%s_cpu_ms_per_s=%.3f\n", tag, disc_ms + bpf_ms);
		printf("RESULT discovery_%s_latency_max_ms=%.1f goal=<=2000 (%s)\n", tag, pmax,
		       pmax <= 2000 && long_miss == 0 ? "ok" : "MISSED");
		printf("RESULT discovery_%s_short_missed_pct=%.1f\n", tag,
		       nshort ? 100.0 * (double)(nshort - short_seen) / (double)nshort : 0);
		if (x->overflow)
			printf("%s: more than %d reports, the rest not kept\n", x->name,
			       MAX_REPORTS);
		free(lat);
		discover_close(x->d);
		free(x->rep);
		free(x->known);
	}
	if (stats_fd >= 0)
		close(stats_fd);
	return failed;
}
