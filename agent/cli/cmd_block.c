/* cmd_block.c — `goscope block`: a goroutine blocking profile of a running Go process from
 * uprobes on the Go runtime, written as pprof (like Go's own block profile). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "capture/block.h"
#include "cli/cli.h"
#include "goscope/golabels.h"

#define DEFAULT_DURATION_NS (30ULL * 1000000000ULL)
#define DEFAULT_MAX_OVERHEAD 2.0
/* Exit code for a target goscope block cannot handle (Go < 1.17). */
#define EXIT_UNSUPPORTED 2

void usage_block(FILE *out)
{
	fprintf(out,
		"usage: goscope block --pid PID [--duration 30s] [--min-delay 0] [--reasons LIST]\n"
		"                     [--max-overhead PCT] [--goroutine-ids] [-o block.pb.gz]\n\n"
		"Where the goroutines of a running Go program (>= 1.17, stripped or not) block, "
		"why\n"
		"(the runtime's wait reason) and for how long, from entry uprobes on "
		"runtime.gopark,\n"
		"runtime.ready, runtime.netpollready and runtime.injectglist. Writes a gzip pprof\n"
		"profile shaped like Go's block profile (contentions/count, delay/nanoseconds, "
		"label\n"
		"wait_reason). The capture ends at\n"
		"--duration, on Ctrl-C/SIGTERM or when the target exits; what was captured is "
		"always\n"
		"written, goroutines still blocked carry the label still_blocked=true.\n\n"
		"  -p, --pid PID           the Go process\n"
		"  -d, --duration D        capture length, e.g. 30s, 500ms (default 30s; 0 = until "
		"stopped)\n"
		"  -m, --min-delay D       ignore blocks shorter than D (default 0)\n"
		"  -r, --reasons LIST      only these wait reasons, comma-separated runtime "
		"strings,\n"
		"                          e.g. 'chan receive,sync.Mutex.Lock,IO wait'\n"
		"  -O, --max-overhead PCT  CPU budget vs the target's own CPU time; probes are\n"
		"                          duty-cycled and the profile scaled (default 2; 100 = "
		"off)\n"
		"  -g, --goroutine-ids     add the numeric label goid\n"
		"  -o, --output FILE       output file, '-' for stdout (default "
		"block.pb.gz)\n" CLI_VERBOSE_HELP "  -h, --help              show this help\n");
}

static void on_attached(void *arg, const char *go_version)
{
	const struct block_config *cfg = arg;

	fprintf(stderr, "goscope block: attached to pid %d (%s), capturing\n", cfg->pid,
		go_version);
}

int cmd_block(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_CAPTURE_LONGOPTS,
		{"min-delay", required_argument, NULL, 'm'},
		{"reasons", required_argument, NULL, 'r'},
		{"max-overhead", required_argument, NULL, 'O'},
		{"goroutine-ids", no_argument, NULL, 'g'},
		{NULL, 0, NULL, 0},
	};
	pid_t pid = 0;
	struct cli_capture_opts o = {.cmd = "block",
				     .usage = usage_block,
				     .pids = &pid,
				     .max_pids = 1,
				     .duration_ns = DEFAULT_DURATION_NS,
				     .output = "block.pb.gz"};
	struct block_config cfg = {.max_overhead_pct = DEFAULT_MAX_OVERHEAD};
	const char *force_perf = getenv("GOSCOPE_BLOCK_PERF_UPROBES");
	struct gs_error err = {0};
	struct block_stats stats;
	struct profile *prof;
	int c, rc;
	char *end;
	double pct;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_CAPTURE_SHORTOPTS "m:r:O:g", opts, NULL)) !=
	       -1) {
		rc = cli_capture_opt(&o, c, optarg);
		if (rc < 0)
			return o.exit_code;
		if (rc > 0)
			continue;
		switch (c) {
		case 'm':
			if (!cli_parse_duration(optarg, &cfg.min_delay_ns)) {
				cli_error("block", "bad min delay '%s'", optarg);
				return cli_usage_error(usage_block);
			}
			break;
		case 'r':
			/* An empty list (",,," or "") would capture nothing at all. */
			if (optarg[strspn(optarg, ", ")] == '\0') {
				cli_error("block", "--reasons lists no wait reason ('%s')", optarg);
				return cli_usage_error(usage_block);
			}
			cfg.reasons = optarg;
			break;
		case 'O':
			errno = 0;
			pct = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(pct > 0) || pct > 100) {
				cli_error("block", "bad max overhead '%s' (0 < PCT <= 100)",
					  optarg);
				return cli_usage_error(usage_block);
			}
			cfg.max_overhead_pct = pct;
			break;
		case 'g':
			cfg.goroutine_ids = true;
			break;
		default:
			cli_error("block", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_block);
		}
	}
	if (!o.npids) {
		cli_error("block", "give --pid PID");
		return cli_usage_error(usage_block);
	}
	rc = cli_capture_ready(&o, argc, argv);
	if (rc)
		return rc;
	cfg.pid = pid;
	cfg.duration_ns = o.duration_ns;
	/* GOSCOPE_BLOCK_PERF_UPROBES=1: perf-event uprobes even where uprobe_multi exists. */
	cfg.perf_uprobes = force_perf && strcmp(force_perf, "1") == 0;
	cfg.stop = (volatile const int *)&cli_stop_requested;
	cfg.on_attached = on_attached;
	cfg.arg = &cfg;
	rc = block_capture(&cfg, &prof, &stats, &err);
	if (rc < 0) {
		cli_error("block", "%s", err.msg);
		cli_capture_abort(&o);
		return rc == -EPROTONOSUPPORT ? EXIT_UNSUPPORTED : rc == -EINVAL ? EXIT_USAGE : 1;
	}
	if (cli_capture_write(&o, prof))
		return 1;
	fprintf(stderr,
		"goscope block: %s, %llu parks, %llu blocks (%llu without ready), %llu cancelled, "
		"%llu still blocked, %llu lost, %llu morestack re-runs skipped in %.1fs (ended by "
		"%s)",
		stats.go_version, (unsigned long long)stats.parks, (unsigned long long)stats.blocks,
		(unsigned long long)stats.counted_without_ready,
		(unsigned long long)stats.cancelled, (unsigned long long)stats.still_blocked,
		(unsigned long long)stats.lost, (unsigned long long)stats.restarts,
		stats.duration_ns / 1e9, stats.ended_by);
	if (stats.sampled_fraction < 1.0)
		fprintf(stderr,
			"; sampled %.2f%% of the time (cost per probe hit: trap %.0f ns + BPF %.0f "
			"ns)",
			stats.sampled_fraction * 100, stats.trap_cost_ns, stats.bpf_cost_ns);
	fprintf(stderr, "; %s uprobes; wrote %s\n", stats.probes,
		strcmp(o.output, "-") ? o.output : "stdout");
	if (stats.labelled)
		fprintf(stderr,
			"goscope block: %llu parks with pprof labels; %llu label sets truncated "
			"(limits: %d labels, keys %d bytes, values %d bytes), %llu not readable\n",
			(unsigned long long)stats.labelled,
			(unsigned long long)stats.labels_truncated, GS_LABELS_MAX, GS_LABEL_KEY_LEN,
			GS_LABEL_VALUE_LEN, (unsigned long long)stats.labels_unread);
	if (stats.rejected.n)
		fprintf(stderr, "goscope block: %llu samples left out as malformed (a bug): %s\n",
			(unsigned long long)stats.rejected.n, stats.rejected.why);
	return 0;
}
