/* cmd_cpu.c — `goscope cpu`: a one-shot CPU profile of Go processes, written as pprof. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "capture/cpu.h"
#include "goscope/golabels.h"

#define DEFAULT_FREQUENCY 99
#define DEFAULT_DURATION_NS (10ULL * 1000000000ULL)
#define MAX_PIDS 1024
/* Long-only options. */
#define OPT_NO_LABELS 256

void usage_cpu(FILE *out)
{
	fprintf(out,
		"usage: goscope cpu (--pid PID [--pid PID ...] | --all-go) [--duration 10s]\n"
		"                   [--frequency 99] [--kernel] [--no-labels] [-o cpu.pb.gz]\n"
		"                   [--verbose]\n\n"
		"Sample the CPU stacks of running processes with BPF (software cpu-clock event on\n"
		"every CPU) and write a gzip pprof profile, symbolized through the Go pclntab "
		"with\n"
		"inlined frames. The capture ends at --duration, on Ctrl-C/SIGTERM, or when every\n"
		"target has exited; what was captured is always written.\n\n"
		"  -p, --pid PID         profile this process (repeatable)\n"
		"  -a, --all-go          profile every Go process on the host\n"
		"  -d, --duration D      capture length, e.g. 30s, 500ms, 2m (default 10s; 0 = "
		"until stopped)\n"
		"  -F, --frequency HZ    samples per second per CPU (default 99)\n"
		"  -k, --kernel          include kernel stacks (symbols from /proc/kallsyms)\n"
		"      --no-labels       read no pprof labels (the BPF label code is left out)\n"
		"  -o, --output FILE     output file, '-' for stdout (default "
		"cpu.pb.gz)\n" CLI_VERBOSE_HELP "  -h, --help            show this help\n");
}

int cmd_cpu(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_CAPTURE_LONGOPTS,
		{"all-go", no_argument, NULL, 'a'},
		{"frequency", required_argument, NULL, 'F'},
		{"kernel", no_argument, NULL, 'k'},
		{"no-labels", no_argument, NULL, OPT_NO_LABELS},
		{NULL, 0, NULL, 0},
	};
	static pid_t pids[MAX_PIDS];
	struct cli_capture_opts o = {.cmd = "cpu",
				     .usage = usage_cpu,
				     .pids = pids,
				     .max_pids = MAX_PIDS,
				     .duration_ns = DEFAULT_DURATION_NS,
				     .output = "cpu.pb.gz"};
	struct cpu_config cfg = {.frequency = DEFAULT_FREQUENCY};
	struct gs_error err = {0};
	struct cpu_stats stats;
	struct profile *prof;
	unsigned long freq;
	char *end;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" CLI_CAPTURE_SHORTOPTS "aF:k", opts, NULL)) != -1) {
		rc = cli_capture_opt(&o, c, optarg);
		if (rc < 0)
			return o.exit_code;
		if (rc > 0)
			continue;
		switch (c) {
		case 'a':
			cfg.all_go = true;
			break;
		case 'F':
			errno = 0;
			freq = strtoul(optarg, &end, 10);
			if (errno || *end || freq == 0 || freq > 100000) {
				cli_error("cpu", "bad frequency '%s' (1..100000)", optarg);
				return cli_usage_error(usage_cpu);
			}
			cfg.frequency = (unsigned)freq;
			break;
		case 'k':
			cfg.kernel = true;
			break;
		case OPT_NO_LABELS:
			cfg.no_labels = true;
			break;
		default:
			cli_error("cpu", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_cpu);
		}
	}
	if (!o.npids && !cfg.all_go) {
		cli_error("cpu", "give --pid PID or --all-go");
		return cli_usage_error(usage_cpu);
	}
	if (o.npids && cfg.all_go) {
		cli_error("cpu", "--pid and --all-go exclude each other");
		return cli_usage_error(usage_cpu);
	}
	rc = cli_capture_ready(&o, argc, argv);
	if (rc)
		return rc;
	cfg.pids = pids;
	cfg.npids = o.npids;
	cfg.duration_ns = o.duration_ns;
	cfg.stop = (volatile const int *)&cli_stop_requested;
	if (cpu_capture(&cfg, &prof, &stats, &err) < 0) {
		cli_error("cpu", "%s", err.msg);
		cli_capture_abort(&o);
		return 1;
	}
	if (cli_capture_write(&o, prof))
		return 1;
	if (stats.not_profiled)
		fprintf(stderr, "goscope cpu: %u processes not profiled: target map full\n",
			stats.not_profiled);
	fprintf(stderr,
		"goscope cpu: %llu samples from %u processes in %.1fs (ended by %s); "
		"dropped %llu, truncated %llu, leaf frames repaired %llu, unrecovered %llu; "
		"wrote %s\n",
		(unsigned long long)stats.counts.received, stats.processes,
		stats.counts.duration_ns / 1e9, stats.ended_by,
		(unsigned long long)stats.counts.ringbuf_drops,
		(unsigned long long)stats.counts.truncated,
		(unsigned long long)stats.counts.leaf_fixed,
		(unsigned long long)stats.counts.leaf_unrecovered,
		strcmp(o.output, "-") ? o.output : "stdout");
	if (stats.counts.labelled)
		fprintf(stderr,
			"goscope cpu: %llu samples with pprof labels; %llu label sets truncated "
			"(limits: %d labels, keys %d bytes, values %d bytes), %llu not readable\n",
			(unsigned long long)stats.counts.labelled,
			(unsigned long long)stats.counts.labels_truncated, GS_LABELS_MAX,
			GS_LABEL_KEY_LEN, GS_LABEL_VALUE_LEN,
			(unsigned long long)stats.counts.labels_unread);
	if (stats.counts.rejected.n)
		fprintf(stderr, "goscope cpu: %llu samples left out as malformed (a bug): %s\n",
			(unsigned long long)stats.counts.rejected.n, stats.counts.rejected.why);
	return 0;
}
