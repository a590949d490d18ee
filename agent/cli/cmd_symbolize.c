/* cmd_symbolize.c — `goscope symbolize --pid PID ADDR...`: addresses of a live process. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/frames_out.h"
#include "procs/proc.h"

#define MAX_FRAMES 64

void usage_symbolize(FILE *out)
{
	fprintf(out,
		"usage: goscope symbolize --pid PID [--json] [--return-address] [ADDR...]\n\n"
		"Symbolize hex addresses of a live process (as the process sees them; PIE and\n"
		"shared objects included), given as arguments or one per line on stdin. Prints\n"
		"every inlined frame, innermost first, as function then file:line.\n\n"
		"  -p, --pid PID          the process\n"
		"  -j, --json             one JSON object per address\n"
		"  -r, --return-address   treat addresses as return addresses (look up pc-1)\n"
		"  -h, --help             show this help\n");
}

/* Prints the frames of one address; false when text is not an address. */
static bool one(struct gs_process *proc, const char *text, enum frames_style style, unsigned flags)
{
	bool ok = true;

	struct gs_frame frames[MAX_FRAMES];
	struct gs_location loc = {0};
	struct gs_error err = {0};
	unsigned long long addr = 0;
	int n = 0;

	if (cli_parse_hex(text, &addr)) {
		n = gs_process_symbolize(proc, addr, flags, frames, MAX_FRAMES, &loc, &err);
		if (n < 0) {
			cli_error("symbolize", "0x%llx: %s", addr, err.msg);
			n = 0;
		}
	} else {
		cli_error("symbolize", "'%s' is not a hex address", text);
		ok = false;
	}
	/* An unknown frame prints as "?"; its mapping and offset are in --json. */
	if (n == 1 && !frames[0].go && strcmp(frames[0].function, "?") == 0 && style != FRAMES_JSON)
		n = 0;
	frames_print(stdout, style, addr, frames, n, &loc);
	return ok;
}

struct input_ctx {
	struct gs_process *proc;
	enum frames_style style;
	unsigned flags;
	unsigned bad; /* inputs that were not addresses */
};

static void one_input(void *arg, const char *text)
{
	struct input_ctx *ctx = arg;

	if (!one(ctx->proc, text, ctx->style, ctx->flags))
		ctx->bad++;
}

int cmd_symbolize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},
		{"return-address", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum frames_style style = FRAMES_INLINES;
	struct gs_error err = {0};
	struct gs_symbolizer *sym;
	struct gs_process *proc;
	struct input_ctx ctx = {0};
	unsigned flags = 0;
	int c, pid = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:jrh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!cli_parse_pid(optarg, &pid)) {
				cli_error("symbolize", "bad pid '%s'", optarg);
				return cli_usage_error(usage_symbolize);
			}
			break;
		case 'j':
			style = FRAMES_JSON;
			break;
		case 'r':
			flags |= GS_LOOKUP_RETURN_ADDR;
			break;
		case 'h':
			usage_symbolize(stdout);
			return 0;
		default:
			cli_error("symbolize", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_symbolize);
		}
	}
	if (!pid) {
		cli_error("symbolize", "missing --pid PID");
		return cli_usage_error(usage_symbolize);
	}
	if (proc_check_target(pid, &err) < 0) {
		cli_error("symbolize", "%s", err.msg);
		return err.code == -EACCES || err.code == -EPERM ? 1 : EXIT_USAGE;
	}
	if (gs_symbolizer_new(&sym, &err) < 0) {
		cli_error("symbolize", "%s", err.msg);
		return 1;
	}
	if (gs_process_open(sym, pid, &proc, &err) < 0) {
		cli_error("symbolize", "%s", err.msg);
		gs_symbolizer_free(sym);
		return err.code == -ESRCH || err.code == -ENOENT ? EXIT_USAGE : 1;
	}
	ctx = (struct input_ctx){.proc = proc, .style = style, .flags = flags};
	cli_for_each_input(argc, argv, optind, false, one_input, &ctx);
	gs_process_close(proc);
	gs_symbolizer_free(sym);
	/* Every input is answered, but a bad one makes the run fail. */
	return ctx.bad ? EXIT_USAGE : 0;
}
