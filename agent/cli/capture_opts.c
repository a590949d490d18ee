/* capture_opts.c — what the capturing commands (`cpu`, `block`) share: their common options
 * (--pid, --duration, -o, --verbose, --help), the checks before a capture, the stop signals,
 * libbpf's messages under --verbose, and writing the profile at the end. One implementation,
 * so every capturing command behaves the same. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "capture/core.h"
#include "cli/cli.h"
#include "procs/proc.h"
#include "profile/profile.h"
#include "profile/sink.h"

volatile sig_atomic_t cli_stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	/* Counts signals (up to 2): the agent exits at once on the second. */
	if (cli_stop_requested < 2)
		cli_stop_requested = cli_stop_requested + 1;
}

void cli_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* A number followed by one of the units' suffixes, times that unit's multiplier: false for
 * anything else, NaN, infinities and negative values. */
struct cli_unit {
	const char *suffix;
	double mult;
};
static bool parse_scaled(const char *s, const struct cli_unit *units, size_t n, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(end, units[i].suffix)) {
			*out = v * units[i].mult;
			return true;
		}
	}
	return false;
}

bool cli_parse_size(const char *s, uint64_t *bytes)
{
	static const struct cli_unit units[] = {{"", 1},
						{"B", 1},
						{"KiB", 1024.0},
						{"MiB", 1048576.0},
						{"GiB", 1073741824.0},
						{"TiB", 1099511627776.0},
						{"K", 1e3},
						{"KB", 1e3},
						{"M", 1e6},
						{"MB", 1e6},
						{"G", 1e9},
						{"GB", 1e9},
						{"T", 1e12},
						{"TB", 1e12}};
	double b;

	if (!parse_scaled(s, units, sizeof(units) / sizeof(units[0]), &b) ||
	    b >= 18446744073709551615.0)
		return false;
	*bytes = (uint64_t)b;
	return true;
}

bool cli_parse_duration(const char *s, uint64_t *ns)
{
	static const struct cli_unit units[] = {{"", 1e9},   {"s", 1e9},  {"ms", 1e6},
						{"us", 1e3}, {"m", 60e9}, {"h", 3600e9}};
	double t;

	/* Not 0 but rounding to 0 ns is a mistake, not "forever". */
	if (!parse_scaled(s, units, sizeof(units) / sizeof(units[0]), &t) || t > 1e18 ||
	    (t > 0 && t < 1))
		return false;
	*ns = (uint64_t)t;
	return true;
}

void cli_print_libbpf(void *arg, const char *line)
{
	/* libbpf starts its own lines with "libbpf: ". */
	fprintf(stderr, "goscope %s: %s\n", (const char *)arg, line);
}

int cli_capture_opt(struct cli_capture_opts *o, int c, const char *arg)
{
	int pid;

	switch (c) {
	case 'p':
		if (!cli_parse_pid(arg, &pid)) {
			cli_error(o->cmd, "bad pid '%s'", arg);
			o->exit_code = cli_usage_error(o->usage);
			return -1;
		}
		if (o->npids == o->max_pids) {
			cli_error(o->cmd, "too many --pid (at most %zu)", o->max_pids);
			o->exit_code = EXIT_USAGE;
			return -1;
		}
		o->pids[o->npids++] = pid;
		return 1;
	case 'd':
		if (!cli_parse_duration(arg, &o->duration_ns)) {
			cli_error(o->cmd, "bad duration '%s'", arg);
			o->exit_code = cli_usage_error(o->usage);
			return -1;
		}
		return 1;
	case 'o':
		o->output = arg;
		return 1;
	case 'v':
		o->verbose = true;
		return 1;
	case 'h':
		o->usage(stdout);
		o->exit_code = 0;
		return -1;
	}
	return 0;
}

int cli_capture_ready(struct cli_capture_opts *o, int argc, char **argv)
{
	struct gs_error err = {0};

	if (optind < argc) {
		cli_error(o->cmd, "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(o->usage);
	}
	for (size_t i = 0; i < o->npids; i++) {
		if (proc_check_target(o->pids[i], &err) < 0) {
			cli_error(o->cmd, "%s", err.msg);
			/* Not being allowed is no usage error. */
			return err.code == -EACCES || err.code == -EPERM ? 1 : EXIT_USAGE;
		}
	}
	if (file_sink_open(o->output, &o->out, &err) < 0) {
		cli_error(o->cmd, "%s", err.msg);
		return 1;
	}
	capture_set_log(o->verbose ? cli_print_libbpf : NULL, (void *)o->cmd, false);
	cli_install_signals();
	return 0;
}

int cli_capture_write(struct cli_capture_opts *o, struct profile *prof)
{
	struct gs_error err = {0};
	int rc = profile_file_commit(o->out, prof, &err);

	o->out = NULL;
	profile_free(prof);
	if (rc < 0) {
		cli_error(o->cmd, "%s", err.msg);
		return 1;
	}
	return 0;
}

void cli_capture_abort(struct cli_capture_opts *o)
{
	file_sink_abort(o->out);
	o->out = NULL;
}
