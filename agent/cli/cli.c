/* cli.c — helpers shared by the subcommands: error messages, usage errors, argument
 * parsing. Kept out of main.c so tests can link the subcommands. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/text.h"

void cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	char msg[4096];

	/* Messages quote paths and names of other users' processes: escaped as a whole. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "goscope %s: %s\n", cmd, text_safe(msg));
}

int cli_usage_error(void (*u)(FILE *out))
{
	u(stderr);
	return EXIT_USAGE;
}

bool cli_parse_hex(const char *s, unsigned long long *out)
{
	char *end;

	if (!s || !*s)
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s || *s == '-' || *s == '+')
		return false;
	*out = strtoull(s, &end, 16);
	return *end == '\0';
}

bool cli_parse_pid(const char *s, int *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return false;
	v = strtol(s, &end, 10);
	if (*end || v <= 0 || v > 0x3fffffff)
		return false;
	*out = (int)v;
	return true;
}

void cli_for_each_input(int argc, char **argv, int first, bool keep_empty,
			void (*fn)(void *ctx, const char *text), void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (first < argc) {
		for (int i = first; i < argc; i++)
			fn(ctx, argv[i]);
		return;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len || keep_empty)
			fn(ctx, line);
	}
	free(line);
}

int cli_json_opts(const char *cmd, void (*usage)(FILE *out), int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*json = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			cli_error(cmd, "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage);
		}
	}
	return -1;
}
