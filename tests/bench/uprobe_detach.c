/* uprobe_detach.c — benchmark helper for tests/bench/uprobe_detach.sh: what detaching a uprobe
 * costs the probed process, per kind of link. Attaches the empty program of bpf/block.bpf.c
 * (block_calibrate, a per-CPU counter) at the given file offsets of a running process, either
 * as perf-event uprobes (one link per offset) or as one uprobe_multi link (Linux >= 6.6, made
 * with the bpf syscall as agent/capture/block.c does), counts hits for 100 ms, then destroys the
 * links and reports how long that took and how many hits came in meanwhile (the breakpoints
 * still trapping), and whether any came after.
 *
 * Usage: uprobe_detach perf|multi PID FILE_OFFSET...
 * Output: "kind=K attach_ms=A hits_per_s=H detach_ms=D hits_during_detach=N hits_after=M" */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "goscope/block.h"

#define MAX_OFFSETS 8
#define UPROBE_MULTI 48 /* BPF_TRACE_UPROBE_MULTI */
#define MAX_CPUS 1024

struct uprobe_multi_attr { /* link_create of union bpf_attr, as in agent/capture/block.c */
	__u32 prog_fd, target_fd, attach_type, flags;
	__aligned_u64 path, offsets, ref_ctr_offsets, cookies;
	__u32 cnt, multi_flags, pid;
	__u8 rest[64];
};

static unsigned long long hits(struct block_bpf *skel)
{
	static unsigned long long v[MAX_CPUS];
	unsigned long long sum = 0;
	__u32 k = BLOCK_STAT_CALIBRATE;
	int n = libbpf_num_possible_cpus();

	memset(v, 0, sizeof(v));
	if (n > MAX_CPUS || bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &k, v) < 0)
		return 0;
	for (int i = 0; i < n; i++)
		sum += v[i];
	return sum;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct bpf_link *links[MAX_OFFSETS] = {0};
	__u64 offs[MAX_OFFSETS];
	struct block_bpf *skel;
	int n = argc - 3, multi, pid, fd = -1;
	unsigned long long h0, h1;
	double t0, attach_ms, detach_ms, rate;
	char exe[64];

	if (argc < 4 || n > MAX_OFFSETS || (strcmp(argv[1], "perf") && strcmp(argv[1], "multi"))) {
		fprintf(stderr, "usage: uprobe_detach perf|multi PID FILE_OFFSET... (at most 8)\n");
		return 2;
	}
	multi = strcmp(argv[1], "multi") == 0;
	pid = atoi(argv[2]);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	for (int i = 0; i < n; i++)
		offs[i] = strtoull(argv[3 + i], NULL, 0);
	skel = block_bpf__open();
	if (!skel)
		return 1;
	if (multi)
		bpf_program__set_expected_attach_type(skel->progs.block_calibrate, UPROBE_MULTI);
	if (block_bpf__load(skel)) {
		fprintf(stderr, "uprobe_detach: load failed\n");
		return 1;
	}
	t0 = now_ms();
	if (multi) {
		struct uprobe_multi_attr a;

		memset(&a, 0, sizeof(a));
		a.prog_fd = (__u32)bpf_program__fd(skel->progs.block_calibrate);
		a.attach_type = UPROBE_MULTI;
		a.path = (__u64)(uintptr_t)exe;
		a.offsets = (__u64)(uintptr_t)offs;
		a.cnt = (__u32)n;
		a.pid = (__u32)pid;
		fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
		if (fd < 0) {
			perror("uprobe_detach: uprobe_multi link");
			return 1;
		}
	} else {
		for (int i = 0; i < n; i++) {
			links[i] = bpf_program__attach_uprobe_opts(skel->progs.block_calibrate, pid,
								   exe, offs[i], &opts);
			if (!links[i]) {
				perror("uprobe_detach: attach");
				return 1;
			}
		}
	}
	attach_ms = now_ms() - t0;
	h0 = hits(skel);
	usleep(100000);
	h1 = hits(skel);
	rate = (double)(h1 - h0) * 10;
	h0 = hits(skel);
	t0 = now_ms();
	if (multi)
		close(fd);
	for (int i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	detach_ms = now_ms() - t0;
	h1 = hits(skel);
	usleep(100000);
	printf("kind=%s attach_ms=%.1f hits_per_s=%.0f detach_ms=%.1f hits_during_detach=%llu "
	       "hits_after=%llu\n",
	       multi ? "uprobe_multi" : "perf-event", attach_ms, rate, detach_ms, h1 - h0,
	       hits(skel) - h1);
	block_bpf__destroy(skel);
	return 0;
}
