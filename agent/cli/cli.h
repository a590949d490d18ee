/* cli.h — the subcommand table and helpers shared by the agent/cmd_*.c files.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (unknown command or option, bad
 * argument). Only the CLI prints; capabilities below it return struct gs_error. */
#ifndef GOSCOPE_AGENT_CLI_H
#define GOSCOPE_AGENT_CLI_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct file_sink;

#define GOSCOPE_VERSION "0.1.0"

#define EXIT_USAGE 2

struct gs_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	void (*usage)(FILE *out);
};

int cmd_version(int argc, char **argv);
void usage_version(FILE *out);
int cmd_ps(int argc, char **argv);
void usage_ps(FILE *out);
int cmd_addr2line(int argc, char **argv);
void usage_addr2line(FILE *out);
int cmd_symbolize(int argc, char **argv);
void usage_symbolize(FILE *out);
int cmd_info(int argc, char **argv);
int cmd_cpu(int argc, char **argv);
void usage_cpu(FILE *out);
int cmd_block(int argc, char **argv);
void usage_block(FILE *out);
int cmd_heap(int argc, char **argv);
void usage_heap(FILE *out);
int cmd_goroutines(int argc, char **argv);
void usage_goroutines(FILE *out);
void usage_info(FILE *out);
int cmd_agent(int argc, char **argv);
void usage_agent(FILE *out);
int cmd_export(int argc, char **argv);
void usage_export(FILE *out);

/* Prints "goscope CMD: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the command's usage to stderr and returns EXIT_USAGE. */
int cli_usage_error(void (*usage)(FILE *out));
/* Parses a hex address ("0x4a1b2c" or "4a1b2c"); false when it is not one. */
bool cli_parse_hex(const char *s, unsigned long long *out);
/* Calls fn for each argument argv[first..argc), or, when there are none, for each line of
 * stdin (newline stripped; empty lines too when keep_empty). */
void cli_for_each_input(int argc, char **argv, int first, bool keep_empty,
			void (*fn)(void *ctx, const char *text), void *ctx);
/* Parses the options of a command whose only options are --json and --help: -1 to go on
 * (optind then indexes the first argument), else the exit code to return. */
int cli_json_opts(const char *cmd, void (*usage)(FILE *out), int argc, char **argv, bool *json);
/* Parses a pid (positive decimal). */
bool cli_parse_pid(const char *s, int *out);
/* "10s", "500ms", "2m", "1h", "1.5s" or a plain number of seconds. Rejects NaN, infinities,
 * negative values and values that are not 0 but round to 0 ns. */
bool cli_parse_duration(const char *s, uint64_t *ns);

/* "1GiB", "512MiB", "10MB", "1G" or a plain number of bytes (binary and decimal units). */
bool cli_parse_size(const char *s, uint64_t *bytes);
/* Prints one libbpf message line (capture_set_log's callback); arg is the command name. */
void cli_print_libbpf(void *arg, const char *line);

/* Set by the SIGINT/SIGTERM handlers that cli_install_signals installs; captures poll it.
 * It counts the signals (at most 2): the agent exits at once on the second. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_install_signals(void);

/* Options every capturing command shares (agent/cli/capture_opts.c). */
struct cli_capture_opts {
	const char *cmd; /* "cpu", "block" */
	void (*usage)(FILE *out);
	pid_t *pids; /* --pid, repeatable up to max_pids */
	size_t npids, max_pids;
	uint64_t duration_ns;  /* --duration */
	const char *output;    /* -o/--output ("-" = stdout) */
	bool verbose;	       /* --verbose: libbpf's messages on stderr */
	int exit_code;	       /* when cli_capture_opt returned -1 */
	struct file_sink *out; /* the output, opened by cli_capture_ready */
};

/* getopt_long entries of the shared options, to append to a command's own. */
#define CLI_CAPTURE_LONGOPTS                                                                       \
	{"pid", required_argument, NULL, 'p'}, {"duration", required_argument, NULL, 'd'},         \
		{"output", required_argument, NULL, 'o'}, {"verbose", no_argument, NULL, 'v'},     \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
#define CLI_CAPTURE_SHORTOPTS "p:d:o:vh"
/* Help lines of the shared --verbose option. */
#define CLI_VERBOSE_HELP                                                                           \
	"  -v, --verbose         libbpf's messages (and the BPF verifier's log) on stderr\n"

/* Handles option c of the shared set: 1 when handled, 0 when c is not one of them, -1 when
 * the command must return o->exit_code now (--help printed: 0; a bad value: EXIT_USAGE). */
int cli_capture_opt(struct cli_capture_opts *o, int c, const char *arg);
/* The checks after option parsing that are common: no stray argument, every --pid a live
 * process goscope may read, the output writable (its temporary file is created now, so that a
 * bad -o fails before the capture, not after it); routes libbpf's messages (--verbose) and
 * installs the stop signals. 0 or an exit code. */
int cli_capture_ready(struct cli_capture_opts *o, int argc, char **argv);
struct profile;
/* Writes the profile to o->output and frees it: 0, or 1 after printing the error. */
int cli_capture_write(struct cli_capture_opts *o, struct profile *prof);
/* Removes the output's temporary file after a failed capture. */
void cli_capture_abort(struct cli_capture_opts *o);

#endif
