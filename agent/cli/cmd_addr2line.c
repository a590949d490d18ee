/* cmd_addr2line.c — `goscope addr2line -e BINARY [ADDR...]`. By default the output is
 * byte-for-byte what `go tool addr2line` prints, so the two can be diffed; --inlines and
 * --json give the full inline expansion. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "goscope/symbolizer.h"
#include "cli/frames_out.h"

#define MAX_FRAMES 64

void usage_addr2line(FILE *out)
{
	fprintf(out,
		"usage: goscope addr2line -e BINARY [--inlines] [--json] [ADDR...]\n\n"
		"Symbolize hex addresses (link-time, as in the binary) given as arguments, or one\n"
		"per line on stdin. By default prints what `go tool addr2line` prints: for each\n"
		"address the function name, then file:line ('?' and '?:0' when unknown).\n\n"
		"  -e, --exe BINARY   the binary (stripped, PIE and cgo binaries work)\n"
		"  -i, --inlines      print every inlined frame, innermost first\n"
		"  -j, --json         one JSON object per address\n"
		"  -r, --return-address  treat addresses as return addresses (look up pc-1)\n"
		"  -h, --help         show this help\n");
}

static void one(struct gs_binary *bin, const char *text, enum frames_style style, unsigned flags)
{
	struct gs_frame frames[MAX_FRAMES];
	unsigned long long addr = 0;
	struct gs_error err = {0};
	int n = 0;

	if (strchr(text, ':')) {
		/* go tool addr2line's answer to the old file:line syntax. */
		printf("!reverse translation not implemented\n");
		return;
	}
	if (cli_parse_hex(text, &addr)) {
		if (style == FRAMES_GO_ADDR2LINE)
			flags |= GS_LOOKUP_NO_INLINE;
		n = gs_binary_symbolize(bin, addr, flags, frames, MAX_FRAMES, &err);
		if (n < 0) {
			cli_error("addr2line", "0x%llx: %s", addr, err.msg);
			n = 0;
		}
	}
	frames_print(stdout, style, addr, frames, n, NULL);
}

struct input_ctx {
	struct gs_binary *bin;
	enum frames_style style;
	unsigned flags;
};

static void one_input(void *arg, const char *text)
{
	struct input_ctx *ctx = arg;

	one(ctx->bin, text, ctx->style, ctx->flags);
}

int cmd_addr2line(int argc, char **argv)
{
	static const struct option opts[] = {
		{"exe", required_argument, NULL, 'e'}, {"inlines", no_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},      {"return-address", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	enum frames_style style = FRAMES_GO_ADDR2LINE;
	struct gs_error err = {0};
	const char *exe = NULL;
	struct gs_binary *bin;
	unsigned flags = 0;
	bool json = false, inl = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+e:ijrh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			exe = optarg;
			break;
		case 'i':
			inl = true;
			break;
		case 'j':
			json = true;
			break;
		case 'r':
			flags |= GS_LOOKUP_RETURN_ADDR;
			break;
		case 'h':
			usage_addr2line(stdout);
			return 0;
		default:
			cli_error("addr2line", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_addr2line);
		}
	}
	if (!exe) {
		cli_error("addr2line", "missing -e BINARY");
		return cli_usage_error(usage_addr2line);
	}
	if (json)
		style = FRAMES_JSON;
	else if (inl)
		style = FRAMES_INLINES;
	if (gs_binary_open(exe, &bin, &err) < 0) {
		cli_error("addr2line", "%s", err.msg);
		return 1;
	}
	{
		struct input_ctx ctx = {bin, style, flags};

		cli_for_each_input(argc, argv, optind, true, one_input, &ctx);
	}
	gs_binary_close(bin);
	return 0;
}
