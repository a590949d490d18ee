/* cmd_ps.c — `goscope ps [--json]`: every running Go process on the host. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/text.h"
#include "procs/goprocs.h"
#include "cli/json.h"

void usage_ps(FILE *out)
{
	fprintf(out, "usage: goscope ps [--json]\n\n"
		     "List every running Go process: pid, comm, Go version, main module and its\n"
		     "version, stripped or not, executable path.\n\n"
		     "  --json      one JSON array of objects instead of a table\n"
		     "  -h, --help  show this help\n");
}

static int by_pid(const void *a, const void *b)
{
	const struct goproc *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void print_json(const struct goproc_scan *scan)
{
	printf("[");
	for (size_t i = 0; i < scan->n; i++) {
		const struct goproc *p = &scan->procs[i];

		printf("%s\n  {\"pid\": %d, \"comm\": ", i ? "," : "", p->pid);
		json_string(stdout, p->comm);
		printf(", \"go_version\": ");
		json_string(stdout, p->go_version);
		printf(", \"path\": ");
		json_string(stdout, p->path);
		printf(", \"module\": ");
		json_string(stdout, p->mod_path);
		printf(", \"module_version\": ");
		json_string(stdout, p->mod_version);
		printf(", \"stripped\": %s, \"pie\": %s, \"exe\": ", p->stripped ? "true" : "false",
		       p->pie ? "true" : "false");
		json_string(stdout, p->exe);
		printf("}");
	}
	printf("%s]\n", scan->n ? "\n" : "");
}

static void print_table(const struct goproc_scan *scan)
{
	printf("%-8s %-16s %-12s %-40s %-12s %-8s %s\n", "PID", "COMM", "GO", "MODULE", "VERSION",
	       "STRIPPED", "EXE");
	for (size_t i = 0; i < scan->n; i++) {
		const struct goproc *p = &scan->procs[i];
		const char *mod = *p->mod_path ? p->mod_path : p->path;

		printf("%-8d %-16s %-12s %-40s %-12s %-8s %s\n", p->pid,
		       text_safe(or_dash(p->comm)), text_safe(or_dash(p->go_version)),
		       text_safe(or_dash(mod)), text_safe(or_dash(p->mod_version)),
		       p->stripped ? "yes" : "no", text_safe(p->exe));
	}
}

int cmd_ps(int argc, char **argv)
{
	struct gs_error err = {0};
	struct goproc_scan scan;
	bool json;
	int rc;

	rc = cli_json_opts("ps", usage_ps, argc, argv, &json);
	if (rc >= 0)
		return rc;
	if (optind < argc) {
		cli_error("ps", "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(usage_ps);
	}
	if (goproc_scan_all("/proc", &scan, &err) < 0) {
		cli_error("ps", "%s", err.msg);
		return 1;
	}
	if (scan.n > 1) /* procs is NULL when none was found */
		qsort(scan.procs, scan.n, sizeof(*scan.procs), by_pid);
	if (json)
		print_json(&scan);
	else
		print_table(&scan);
	if (scan.unreadable)
		cli_error("ps",
			  "%u processes could not be inspected (permission denied or "
			  "unreadable); run as root or with CAP_SYS_PTRACE",
			  scan.unreadable);
	goproc_scan_free(&scan);
	return 0;
}
