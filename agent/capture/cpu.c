/* cpu.c — userspace side of bpf/cpu.bpf.c: loads the skeleton, opens a cpu-clock perf
 * event per online CPU, keeps the in-kernel target filter up to date, drains the ring
 * buffer, repairs leaf frames and builds the pprof profile.
 *
 * Leaf repair: when the sampled function's frame is not set up (frameless leaf, prologue,
 * epilogue), RBP still belongs to the caller, so the frame-pointer walk starts at the
 * caller's caller and the direct caller is missing. The pclntab's pcsp table gives the SP
 * delta d at the PC; the frame is set up iff RBP == SP + d - 8, and otherwise the return
 * address is the word at [SP + d], which BPF copied in the stack window. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/core.h"
#include "capture/cpu.h"
#include "cpu.skel.h"
#include "procs/goprocs.h"
#include "procs/proc.h"
#include "goscope/cpu.h"
#include "stacks/stacks.h"

#define POLL_MS 100
#define LIVENESS_EVERY_NS 250000000ULL
#define RESCAN_EVERY_NS 2000000000ULL
#define NSEC_PER_SEC 1000000000ULL
#define MAX_CPUS 1024

struct cpu_run {
	const struct cpu_config *cfg;
	struct cpu_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[MAX_CPUS];
	int nlinks;
	struct profile *prof;
	struct stacks stacks;
	struct cpu_stats *stats;
	int64_t period_ns;
	uint64_t locs[CPU_MAX_KERNEL_FRAMES + CPU_MAX_USER_FRAMES + 1];
	int error; /* first error inside the ring buffer callback */
	struct gs_error *err;
};

static long perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group,
			    unsigned long flags)
{
	return syscall(SYS_perf_event_open, attr, pid, cpu, group, flags);
}

static int add_target(struct cpu_run *run, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	if (bpf_map__update_elem(run->skel->maps.targets, &key, sizeof(key), &one, sizeof(one),
				 BPF_ANY) < 0)
		return -errno;
	/* Open the process now: its binaries may be gone once it exits. */
	stacks_proc(&run->stacks, pid);
	return 0;
}

static void rescan_go(struct cpu_run *run)
{
	struct goproc_scan scan;

	if (goproc_scan_all("/proc", &scan, NULL) < 0)
		return;
	for (size_t i = 0; i < scan.n; i++) {
		if (scan.procs[i].pid != getpid())
			add_target(run, scan.procs[i].pid);
	}
	goproc_scan_free(&scan);
}

/* Inserts the direct caller of the leaf when the leaf's frame is not set up (see top). */
static uint32_t repair_leaf(struct cpu_run *run, struct stack_proc *sp,
			    const struct cpu_sample *s, uint64_t *user, uint32_t n)
{
	struct gs_location loc;
	int32_t d;
	uint64_t words;

	if (!sp->proc || n == 0 || gs_process_locate(sp->proc, s->ip, &loc) < 0 || !loc.binary ||
	    gs_binary_pcsp(loc.binary, loc.file_addr, &d) < 0 || d < 0)
		return n;
	if (s->bp == s->sp + (uint64_t)d - 8)
		return n; /* frame set up: the FP walk is right */
	words = s->flags & CPU_SAMPLE_NO_WINDOW	     ? 0
		: s->flags & CPU_SAMPLE_WINDOW_SHORT ? CPU_STACK_WINDOW_MIN_WORDS
						     : CPU_STACK_WINDOW_WORDS;
	if ((d & 7) || (uint64_t)d / 8 >= words) {
		run->stats->leaf_unrecovered++;
		return n;
	}
	if (n >= CPU_MAX_USER_FRAMES)
		n = CPU_MAX_USER_FRAMES - 1;
	memmove(&user[2], &user[1], (n - 1) * sizeof(*user));
	user[1] = s->window[d / 8];
	run->stats->leaf_fixed++;
	return n + 1;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct cpu_run *run = ctx;
	const struct cpu_sample *s = data;
	uint64_t user[CPU_MAX_USER_FRAMES + 1];
	struct profile_label labels[2];
	struct stack_proc *sp;
	int64_t values[2];
	uint32_t nu, nk;
	size_t nl = 0;

	if (size < sizeof(*s))
		return 0;
	run->stats->received++;
	sp = stacks_proc(&run->stacks, (pid_t)s->pid);
	if (!sp) {
		run->error = -ENOMEM;
		return -ENOMEM;
	}
	nk = s->n_kernel <= CPU_MAX_KERNEL_FRAMES ? s->n_kernel : CPU_MAX_KERNEL_FRAMES;
	nu = s->n_user <= CPU_MAX_USER_FRAMES ? s->n_user : CPU_MAX_USER_FRAMES;
	memcpy(user, s->user, nu * sizeof(*user));
	nu = repair_leaf(run, sp, s, user, nu);

	for (uint32_t i = 0; i < nk; i++) {
		uint64_t id = stacks_kernel_location(&run->stacks, s->kernel[i]);

		if (id)
			run->locs[nl++] = id;
	}
	nl = stacks_user_stack(&run->stacks, sp, user, nu, run->locs, nl);
	values[0] = 1;
	values[1] = run->period_ns;
	labels[0] = (struct profile_label){.key = "pid", .num = s->pid};
	labels[1] = (struct profile_label){.key = "comm", .str = sp->comm};
	if (profile_add_sample(run->prof, run->locs, nl, values, labels, 2, run->err) < 0) {
		run->error = run->err->code;
		return run->error;
	}
	return 0;
}

static int open_events(struct cpu_run *run)
{
	int ncpus = capture_ncpus();
	struct perf_event_attr attr;

	if (ncpus < 0)
		return gs_error_set(run->err, ncpus, "cannot count CPUs");
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = 1;
	attr.sample_freq = run->cfg->frequency;
	for (int cpu = 0; cpu < ncpus && cpu < MAX_CPUS; cpu++) {
		long fd = perf_event_open(&attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		struct bpf_link *link;

		if (fd < 0) {
			if (errno == ENODEV)
				continue; /* offline CPU */
			return capture_bpf_error(run->err, -errno, "perf_event_open");
		}
		link = bpf_program__attach_perf_event(run->skel->progs.cpu_sample, (int)fd);
		if (!link) {
			int e = -errno;

			close((int)fd);
			return capture_bpf_error(run->err, e, "attach perf event");
		}
		run->links[run->nlinks++] = link;
	}
	if (run->nlinks == 0)
		return gs_error_set(run->err, -ENODEV, "no online CPU to sample");
	return 0;
}

static void read_stats(struct cpu_run *run)
{
	uint64_t sums[CPU_STAT_COUNT];

	capture_percpu_sums(run->skel->maps.stats, CPU_STAT_COUNT, sums);
	run->stats->samples = sums[CPU_STAT_SAMPLES];
	run->stats->ringbuf_drops = sums[CPU_STAT_RINGBUF_DROPS];
	run->stats->truncated = sums[CPU_STAT_TRUNCATED];
	run->stats->kstack_errors = sums[CPU_STAT_KSTACK_ERRORS];
	run->stats->no_user_regs = sums[CPU_STAT_NO_USER_REGS];
}

static bool any_target_alive(const struct cpu_config *cfg)
{
	for (size_t i = 0; i < cfg->npids; i++) {
		if (proc_alive(cfg->pids[i]))
			return true;
	}
	return false;
}

static void detach(struct cpu_run *run)
{
	for (int i = 0; i < run->nlinks; i++)
		bpf_link__destroy(run->links[i]);
	run->nlinks = 0;
}

static void add_comments(struct cpu_run *run)
{
	char text[256];

	snprintf(text, sizeof(text),
		 "goscope cpu: %llu samples, %llu dropped (ring buffer full), %llu truncated "
		 "stacks, %llu leaf frames repaired, %llu leaf frames unrecovered",
		 (unsigned long long)run->stats->samples,
		 (unsigned long long)run->stats->ringbuf_drops,
		 (unsigned long long)run->stats->truncated,
		 (unsigned long long)run->stats->leaf_fixed,
		 (unsigned long long)run->stats->leaf_unrecovered);
	profile_add_comment(run->prof, text);
}

int cpu_capture(const struct cpu_config *cfg, struct profile **out, struct cpu_stats *stats,
		struct gs_error *err)
{
	struct cpu_run run = {.cfg = cfg, .stats = stats, .err = err};
	uint64_t start, now, last_live = 0, last_scan = 0;
	int64_t start_wall;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (cfg->frequency == 0 || cfg->frequency > NSEC_PER_SEC)
		return gs_error_set(err, -EINVAL, "bad frequency %u", cfg->frequency);
	run.period_ns = (int64_t)(NSEC_PER_SEC / cfg->frequency);
	for (size_t i = 0; i < cfg->npids; i++) {
		rc = proc_check_alive(cfg->pids[i], err);
		if (rc < 0)
			return rc;
	}
	run.prof = profile_new();
	if (!run.prof)
		return gs_error_set(err, -ENOMEM, "out of memory");
	profile_add_sample_type(run.prof, "samples", "count");
	profile_add_sample_type(run.prof, "cpu", "nanoseconds");
	profile_set_default_sample_type(run.prof, "cpu");
	profile_set_period(run.prof, "cpu", "nanoseconds", run.period_ns);
	rc = stacks_init(&run.stacks, run.prof, cfg->kernel, err);
	if (rc < 0)
		goto out_prof;

	run.skel = cpu_bpf__open();
	if (!run.skel) {
		rc = capture_bpf_error(err, -errno, "open BPF object cpu");
		goto out_stacks;
	}
	run.skel->rodata->capture_kernel = cfg->kernel;
	rc = capture_bpf_load(run.skel->skeleton, "load BPF program cpu", err);
	if (rc < 0)
		goto out_skel;
	for (size_t i = 0; i < cfg->npids; i++) {
		rc = add_target(&run, cfg->pids[i]);
		if (rc < 0) {
			gs_error_set(err, rc, "add target %d: %s", cfg->pids[i], strerror(-rc));
			goto out_skel;
		}
	}
	if (cfg->all_go)
		rescan_go(&run);
	run.rb = ring_buffer__new(bpf_map__fd(run.skel->maps.samples), on_sample, &run, NULL);
	if (!run.rb) {
		rc = gs_error_set(err, -errno, "ring buffer: %s", strerror(errno));
		goto out_skel;
	}
	rc = open_events(&run);
	if (rc < 0)
		goto out_links;

	start = capture_monotonic_ns();
	start_wall = capture_realtime_ns();
	last_scan = start;
	stats->ended_by = "signal";
	for (;;) {
		/* BPF rarely wakes us (CPU_RINGBUF_WAKEUP_BYTES): the timeout is the normal
		 * way out of the poll, so drain the ring after it either way. */
		rc = ring_buffer__poll(run.rb, POLL_MS);
		if (rc >= 0 || rc == -EINTR)
			rc = ring_buffer__consume(run.rb);
		if (rc < 0 && rc != -EINTR) {
			gs_error_set(err, rc, "ring buffer poll: %s", strerror(-rc));
			break;
		}
		rc = 0;
		if (run.error) {
			rc = run.error;
			break;
		}
		if (cfg->stop && *cfg->stop) {
			stats->ended_by = "signal";
			break;
		}
		now = capture_monotonic_ns();
		if (cfg->duration_ns && now - start >= cfg->duration_ns) {
			stats->ended_by = "duration";
			break;
		}
		if (!cfg->all_go && now - last_live >= LIVENESS_EVERY_NS) {
			last_live = now;
			if (!any_target_alive(cfg)) {
				stats->ended_by = "targets exited";
				break;
			}
		}
		if (cfg->all_go && now - last_scan >= RESCAN_EVERY_NS) {
			last_scan = now;
			rescan_go(&run);
		}
	}
	detach(&run);
	/* Whatever is still in the ring buffer belongs to the capture. */
	if (rc == 0)
		ring_buffer__consume(run.rb);
	stats->duration_ns = capture_monotonic_ns() - start;
	read_stats(&run);
	stats->processes = (unsigned)run.stacks.nprocs;
	profile_set_time(run.prof, start_wall, (int64_t)stats->duration_ns);
	add_comments(&run);
out_links:
	detach(&run);
	ring_buffer__free(run.rb);
out_skel:
	cpu_bpf__destroy(run.skel);
out_stacks:
	stacks_free(&run.stacks);
out_prof:
	if (rc < 0) {
		profile_free(run.prof);
		return rc;
	}
	*out = run.prof;
	return 0;
}
