/* main.c — goscope's entry point: dispatches `goscope COMMAND [OPTIONS]` to the subcommand
 * table, perf/bpftool style. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct gs_command commands[] = {
	{"agent", "profile every Go process on the node continuously into a store", cmd_agent,
	 usage_agent},
	{"export", "read profiles from the agent's store as pprof, or list them", cmd_export,
	 usage_export},
	{"cpu", "CPU profile of Go processes (BPF sampling) as pprof", cmd_cpu, usage_cpu},
	{"block", "goroutine blocking profile of a Go process (uprobes) as pprof", cmd_block,
	 usage_block},
	{"heap", "heap (or block, mutex) profile of a Go process read from its memory", cmd_heap,
	 usage_heap},
	{"goroutines", "every goroutine of a live Go process or a core file", cmd_goroutines,
	 usage_goroutines},
	{"ps", "list running Go processes", cmd_ps, usage_ps},
	{"info", "describe a binary: Go version, build IDs, pclntab, linking", cmd_info,
	 usage_info},
	{"addr2line", "symbolize addresses of a binary (go tool addr2line compatible)",
	 cmd_addr2line, usage_addr2line},
	{"symbolize", "symbolize addresses of a live process", cmd_symbolize, usage_symbolize},
	{"version", "print versions and check BTF, BPF and capabilities", cmd_version,
	 usage_version},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: goscope COMMAND [OPTIONS]\n\n"
		     "An eBPF profiler for Go services.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "  %-10s %s\n", "help", "show help for goscope or a command");
	fprintf(out, "\nRun 'goscope COMMAND --help' for a command's options.\n");
}

static const struct gs_command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct gs_command *cmd;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			cmd = find(argv[2]);
			if (!cmd) {
				fprintf(stderr, "goscope: unknown command '%s'\n\n", argv[2]);
				usage(stderr);
				return EXIT_USAGE;
			}
			cmd->usage(stdout);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, (char *[]){"version", NULL});
	cmd = find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "goscope: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
