/* block_bare.c — benchmark helper: attaches the empty uprobe program of bpf/block.bpf.c
 * (block_calibrate, which only bumps a per-CPU counter) to runtime.gopark of a process at the
 * same place goscope block probes (after the stack-check branch), for the "bare uprobe" side
 * of tests/bench/block_pingpong.sh. Usage: block_bare PID FILE_OFFSET SECONDS. */
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
	struct bpf_link *l;
	char exe[64];
	int pid;

	if (argc != 4) {
		fprintf(stderr, "usage: block_bare PID FILE_OFFSET SECONDS\n");
		return 2;
	}
	pid = atoi(argv[1]);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	skel = block_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "block_bare: load: %s\n", strerror(errno));
		return 1;
	}
	l = bpf_program__attach_uprobe_opts(skel->progs.block_calibrate, pid, exe,
					    strtoull(argv[2], NULL, 0), &opts);
	if (!l) {
		fprintf(stderr, "block_bare: attach: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "block_bare: attached\n");
	sleep((unsigned)atoi(argv[3]));
	bpf_link__destroy(l);
	block_bpf__destroy(skel);
	return 0;
}
