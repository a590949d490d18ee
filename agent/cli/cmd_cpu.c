/* cmd_cpu.c — `goscope cpu`: a one-shot CPU profile of Go processes, written as pprof. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "cli/cli.h"
#include "capture/cpu.h"

#define DEFAULT_FREQUENCY 99
#define DEFAULT_DURATION_NS (10ULL * 1000000000ULL)
#define MAX_PIDS 1024

void usage_cpu(FILE *out)
{
	fprintf(out,
		"usage: goscope cpu (--pid PID [--pid PID ...] | --all-go) [--duration 10s]\n"
		"                   [--frequency 99] [--kernel] [-o cpu.pb.gz]\n\n"
		"Sample the CPU stacks of running processes with BPF (software cpu-clock event on\n"
		"every CPU) and write a gzip pprof profile, symbolized through the Go pclntab with\n"
		"inlined frames. The capture ends at --duration, on Ctrl-C/SIGTERM, or when every\n"
		"target has exited; what was captured is always written.\n\n"
		"  -p, --pid PID         profile this process (repeatable)\n"
		"  -a, --all-go          profile every Go process on the host\n"
		"  -d, --duration D      capture length, e.g. 30s, 500ms, 2m (default 10s; 0 = until stopped)\n"
		"  -F, --frequency HZ    samples per second per CPU (default 99)\n"
		"  -k, --kernel          include kernel stacks (symbols from /proc/kallsyms)\n"
		"  -o, --output FILE     output file, '-' for stdout (default cpu.pb.gz)\n"
		"  -h, --help            show this help\n");
}

int cmd_cpu(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"all-go", no_argument, NULL, 'a'},
		{"duration", required_argument, NULL, 'd'},
		{"frequency", required_argument, NULL, 'F'},
		{"kernel", no_argument, NULL, 'k'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cpu_config cfg = {.duration_ns = DEFAULT_DURATION_NS,
				 .frequency = DEFAULT_FREQUENCY};
	static pid_t pids[MAX_PIDS];
	const char *output = "cpu.pb.gz";
	struct gs_error err = {0};
	struct cpu_stats stats;
	struct profile *prof;
	size_t npids = 0;
	int c, pid;
	char *end;
	unsigned long freq;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:ad:F:ko:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_pid(optarg, &pid)) {
				cli_error("cpu", "bad pid '%s'", optarg);
				return cli_usage_error(usage_cpu);
			}
			if (npids == MAX_PIDS) {
				cli_error("cpu", "too many --pid (at most %d)", MAX_PIDS);
				return EXIT_USAGE;
			}
			pids[npids++] = pid;
			break;
		case 'a':
			cfg.all_go = true;
			break;
		case 'd':
			if (capture_parse_duration(optarg, &cfg.duration_ns) < 0) {
				cli_error("cpu", "bad duration '%s'", optarg);
				return cli_usage_error(usage_cpu);
			}
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
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage_cpu(stdout);
			return 0;
		default:
			cli_error("cpu", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_cpu);
		}
	}
	if (optind < argc) {
		cli_error("cpu", "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(usage_cpu);
	}
	if (!npids && !cfg.all_go) {
		cli_error("cpu", "give --pid PID or --all-go");
		return cli_usage_error(usage_cpu);
	}
	if (npids && cfg.all_go) {
		cli_error("cpu", "--pid and --all-go exclude each other");
		return cli_usage_error(usage_cpu);
	}
	for (size_t i = 0; i < npids; i++) {
		if (capture_check_pid(pids[i], &err) < 0) {
			cli_error("cpu", "%s", err.msg);
			return EXIT_USAGE;
		}
	}
	cfg.pids = pids;
	cfg.npids = npids;
	cfg.stop = (volatile const int *)&capture_stop_requested;
	capture_install_signals();
	if (cpu_capture(&cfg, &prof, &stats, &err) < 0) {
		cli_error("cpu", "%s", err.msg);
		return 1;
	}
	if (profile_write_file(prof, output, &err) < 0) {
		cli_error("cpu", "%s", err.msg);
		profile_free(prof);
		return 1;
	}
	fprintf(stderr,
		"goscope cpu: %llu samples from %u processes in %.1fs (ended by %s); "
		"dropped %llu, truncated %llu, leaf frames repaired %llu, unrecovered %llu; "
		"wrote %s\n",
		(unsigned long long)stats.received, stats.processes, stats.duration_ns / 1e9,
		stats.ended_by, (unsigned long long)stats.ringbuf_drops,
		(unsigned long long)stats.truncated, (unsigned long long)stats.leaf_fixed,
		(unsigned long long)stats.leaf_unrecovered, strcmp(output, "-") ? output : "stdout");
	profile_free(prof);
	return 0;
}
