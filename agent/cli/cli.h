/* cli.h — the subcommand table and helpers shared by the agent/cmd_*.c files.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (unknown command or option, bad
 * argument). Only the CLI prints; capabilities below it return struct gs_error. */
#ifndef GOSCOPE_AGENT_CLI_H
#define GOSCOPE_AGENT_CLI_H

#include <stdbool.h>
#include <stdio.h>

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
void usage_info(FILE *out);

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
/* Parses a pid (positive decimal). */
bool cli_parse_pid(const char *s, int *out);

#endif
