/* block_bare.c — benchmark helper: attaches the empty uprobe program of bpf/block.bpf.c
 * (block_calibrate, which only bumps a per-CPU counter) to a process at the given file
 * offsets (runtime.gopark's entry, or gopark and runtime.ready where goscope block probes
 * them: their stack-check branch), for the "bare uprobe" sides of
 * tests/bench/block_pingpong.sh.
 * Usage: block_bare PID SECONDS FILE_OFFSET... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "block.skel.h"

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct block_bpf *skel;
	struct bpf_link *links[8];
	char exe[64];
	int pid, n = argc - 3;

	if (argc < 4 || n > 8) {
		fprintf(stderr, "usage: block_bare PID SECONDS FILE_OFFSET... (at most 8)\n");
		return 2;
	}
	pid = atoi(argv[1]);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	skel = block_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "block_bare: load: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		links[i] = bpf_program__attach_uprobe_opts(skel->progs.block_calibrate, pid, exe,
							   strtoull(argv[3 + i], NULL, 0), &opts);
		if (!links[i]) {
			fprintf(stderr, "block_bare: attach %s: %s\n", argv[3 + i],
				strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "block_bare: attached %d\n", n);
	sleep((unsigned)atoi(argv[2]));
	for (int i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	block_bpf__destroy(skel);
	return 0;
}
