/* cmd_heap.c — `goscope heap`: the heap profile of a live Go process read from the
 * runtime's memory-profile buckets in its memory (no probe, no trap, never stopped), as the
 * process's own /debug/pprof/heap would write it; --kind block|mutex reads the block or
 * mutex profile the program itself enabled. The reading is agent/goruntime/heap*.c. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "goruntime/heap.h"
#include "procs/proc.h"
#include "profile/profile.h"

void usage_heap(FILE *out)
{
	fprintf(out,
		"usage: goscope heap --pid PID [-o heap.pb.gz] [--kind heap|block|mutex]\n\n"
		"The heap profile of a running Go program (stripped binaries included), read from\n"
		"the runtime's memory-profile buckets in its memory: exactly what its own\n"
		"/debug/pprof/heap would write (alloc_objects, alloc_space, inuse_objects,\n"
		"inuse_space; period = its MemProfileRate), as of the end of its last GC cycle.\n"
		"The program is not stopped: bucket records that change while read are read\n"
		"again (the summary says how many never read the same twice).\n\n"
		"  -p, --pid PID       the process\n"
		"  -k, --kind KIND     heap (default), or block / mutex: the block or mutex "
		"profile\n"
		"                      the program enabled itself (runtime.SetBlockProfileRate,\n"
		"                      runtime.SetMutexProfileFraction)\n"
		"  -o, --output FILE   gzip pprof output (default heap.pb.gz; - for stdout)\n"
		"  -h, --help          show this help\n");
}

int cmd_heap(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"kind", required_argument, NULL, 'k'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum heap_kind kind = HEAP_KIND_HEAP;
	const char *output = NULL;
	struct profile *prof = NULL;
	struct heap_stats st = {0};
	struct gs_error err = {0};
	int ch, pid = 0;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+p:k:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (!cli_parse_pid(optarg, &pid)) {
				cli_error("heap", "bad pid '%s'", optarg);
				return cli_usage_error(usage_heap);
			}
			break;
		case 'k':
			if (heap_kind_parse(optarg, &kind) < 0) {
				cli_error("heap", "bad --kind '%s' (heap, block or mutex)", optarg);
				return cli_usage_error(usage_heap);
			}
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage_heap(stdout);
			return 0;
		default:
			cli_error("heap", "unknown option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_heap);
		}
	}
	if (optind < argc) {
		cli_error("heap", "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(usage_heap);
	}
	if (!pid) {
		cli_error("heap", "--pid is required");
		return cli_usage_error(usage_heap);
	}
	if (!output)
		output = kind == HEAP_KIND_HEAP	   ? "heap.pb.gz"
			 : kind == HEAP_KIND_BLOCK ? "block.pb.gz"
						   : "mutex.pb.gz";
	if (proc_check_target(pid, &err) < 0) {
		cli_error("heap", "%s", err.msg);
		return err.code == -EACCES || err.code == -EPERM ? 1 : EXIT_USAGE;
	}
	if (heap_profile_read(pid, kind, &prof, &st, &err) < 0) {
		cli_error("heap", "%s", err.msg);
		return 1;
	}
	if (profile_write_file(prof, output, &err) < 0) {
		cli_error("heap", "%s: %s", output, err.msg);
		profile_free(prof);
		return 1;
	}
	fprintf(stderr,
		"goscope heap: %s profile of pid %d (%s): %zu buckets, %zu inconsistent, "
		"%zu unreadable, %zu restarts%s%s; rate %lld; list from %s; %llu reads -> %s\n",
		heap_kind_name(kind), pid, st.go_version, st.buckets, st.inconsistent,
		st.unreadable, st.restarts, st.cut ? ", list cut" : "",
		st.all_cycles ? ", no GC yet: every cycle summed" : "", (long long)st.rate,
		st.list_found_by ? st.list_found_by : "?", (unsigned long long)st.reads, output);
	profile_free(prof);
	return 0;
}
