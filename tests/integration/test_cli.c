/* test_cli.c — the command-line contract: help, usage errors (exit code 2, usage on stderr),
 * version output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/run.h"

static int goscope(const char *args, int merge, char **out)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s %s", goscope_bin(), args);
	return run_capture(cmd, merge, out, NULL);
}

Test(cli, help_lists_commands)
{
	static const char *const cmds[] = {"ps", "cpu", "info", "addr2line", "symbolize",
					   "version", NULL};
	char *out;

	cr_assert_eq(goscope("help", 0, &out), 0);
	for (int i = 0; cmds[i]; i++)
		cr_assert(strstr(out, cmds[i]), "help lacks %s", cmds[i]);
	free(out);
	cr_assert_eq(goscope("--help", 0, &out), 0);
	free(out);
}

Test(cli, command_help_goes_to_stdout)
{
	static const char *const cmds[] = {"ps", "cpu", "info", "addr2line", "symbolize",
					   "version", NULL};
	char args[64], want[64], *out;

	for (int i = 0; cmds[i]; i++) {
		snprintf(args, sizeof(args), "%s --help 2>/dev/null", cmds[i]);
		cr_assert_eq(goscope(args, 0, &out), 0, "%s --help", cmds[i]);
		snprintf(want, sizeof(want), "usage: goscope %s", cmds[i]);
		cr_assert(strstr(out, want), "%s --help: %s", cmds[i], out);
		free(out);
		snprintf(args, sizeof(args), "help %s", cmds[i]);
		cr_assert_eq(goscope(args, 0, &out), 0);
		cr_assert(strstr(out, want));
		free(out);
	}
}

Test(cli, usage_errors_exit_2_on_stderr)
{
	static const char *const bad[] = {"", "frobnicate", "ps --bogus", "ps extra",
					  "info", "addr2line", "addr2line -x",
					  "symbolize 0x1", "version extra", "help nosuch", NULL};
	char args[128], *out;

	for (int i = 0; bad[i]; i++) {
		/* stdout must stay empty: usage goes to stderr. */
		snprintf(args, sizeof(args), "%s 2>/dev/null", bad[i]);
		cr_assert_eq(goscope(args, 0, &out), 2, "'%s' should exit 2", bad[i]);
		cr_assert_str_eq(out, "", "'%s' wrote to stdout", bad[i]);
		free(out);
		snprintf(args, sizeof(args), "%s 2>&1 >/dev/null", bad[i]);
		goscope(args, 0, &out);
		cr_assert(strstr(out, "usage: goscope"), "'%s' stderr: %s", bad[i], out);
		free(out);
	}
}

Test(cli, version_reports_environment)
{
	char *out;

	cr_assert_eq(goscope("version", 0, &out), 0);
	cr_assert(strstr(out, "goscope "));
	cr_assert(strstr(out, "libbpf v"));
	cr_assert(strstr(out, "kernel "));
	cr_assert(strstr(out, "btf yes"), "%s", out); /* this machine has BTF */
	cr_assert(strstr(out, "CAP_BPF=yes"), "%s", out);
	free(out);
}

Test(cli, info_on_non_go_binary)
{
	char *out;

	cr_assert_eq(goscope("info /bin/true", 0, &out), 0);
	cr_assert(strstr(out, "go:              no"), "%s", out);
	free(out);
	cr_assert_eq(goscope("info /etc/hostname 2>&1", 0, &out), 1);
	cr_assert(strstr(out, "not an ELF"), "%s", out);
	free(out);
	cr_assert_eq(goscope("info /nonexistent 2>&1", 0, &out), 1);
	cr_assert(strstr(out, "No such file"), "%s", out);
	free(out);
}
