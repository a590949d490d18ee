/* test_ps.c — `goscope ps` lists a running Go test program built by every installed
 * toolchain in every build mode, with exactly the Go version and module path that
 * `go version -m` prints. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

struct pscase {
	char toolchain[8];
	char mode[16];
};

static const char *const ps_modes[] = {"default", "stripped", "pie", "static",
				       "cgo", "stripped-pie", "cgo-stripped", NULL};

ParameterizedTestParameters(ps, lists_go_process)
{
	static struct pscase cases[64];
	size_t n = 0;

	for (int t = 0; gotarget_toolchains[t]; t++) {
		for (int m = 0; ps_modes[m] && n < 64; m++) {
			snprintf(cases[n].toolchain, sizeof(cases[n].toolchain), "%s",
				 gotarget_toolchains[t]);
			snprintf(cases[n].mode, sizeof(cases[n].mode), "%s", ps_modes[m]);
			n++;
		}
	}
	return cr_make_param_array(struct pscase, cases, n);
}

/* Value of a "\tKEY\tVALUE" line of `go version -m`, or of the first line's version. */
static void version_m(const char *go, const char *bin, char *version, size_t vlen, char *mod,
		      size_t mlen)
{
	char cmd[8192], *out = NULL, *line, *save = NULL;

	snprintf(cmd, sizeof(cmd), "%s version -m '%s'", go, bin);
	cr_assert_eq(run_capture(cmd, 1, &out, NULL), 0, "%s", out);
	version[0] = mod[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = strstr(line, ": go");

		if (p && !version[0])
			snprintf(version, vlen, "%s", p + 2);
		else if (strncmp(line, "\tmod\t", 5) == 0) {
			char *v = line + 5;

			v[strcspn(v, "\t")] = '\0';
			snprintf(mod, mlen, "%s", v);
		}
	}
	free(out);
}

/* The JSON object of pid in `goscope ps --json` output, copied into obj. */
static bool find_pid(const char *json, int pid, char *obj, size_t len)
{
	char key[64];
	const char *p, *end;

	snprintf(key, sizeof(key), "{\"pid\": %d,", pid);
	p = strstr(json, key);
	if (!p)
		return false;
	end = strchr(p, '}');
	cr_assert(end);
	snprintf(obj, len, "%.*s", (int)(end - p + 1), p);
	return true;
}

ParameterizedTest(struct pscase *c, ps, lists_go_process, .timeout = 120)
{
	char path[4096], gobuf[256], version[128], mod[512], cmd[512], want[1024], obj[8192];
	char line[128], *out = NULL;
	char *argv[] = {path, NULL};
	const char *go;
	struct gotarget t;

	GOTARGET_BUILD_OR_SKIP(path, "idle", c->toolchain, c->mode);
	go = go_tool_path(c->toolchain, gobuf, sizeof(gobuf));
	version_m(go, path, version, sizeof(version), mod, sizeof(mod));
	cr_assert_str_eq(mod, "goscope.test/idle");
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);

	snprintf(cmd, sizeof(cmd), "%s ps --json", goscope_bin());
	cr_assert_eq(run_capture(cmd, 0, &out, NULL), 0);
	cr_assert(find_pid(out, t.pid, obj, sizeof(obj)), "pid %d missing from: %.2000s", t.pid,
		  out);
	snprintf(want, sizeof(want), "\"go_version\": \"%s\"", version);
	cr_assert(strstr(obj, want), "want %s in %s", want, obj);
	snprintf(want, sizeof(want), "\"module\": \"%s\"", mod);
	cr_assert(strstr(obj, want), "want %s in %s", want, obj);
	cr_assert(strstr(obj, strstr(c->mode, "stripped") ? "\"stripped\": true"
							   : "\"stripped\": false"),
		  "%s", obj);
	cr_assert(strstr(obj, strstr(c->mode, "pie") ? "\"pie\": true" : "\"pie\": false"), "%s",
		  obj);
	free(out);

	/* The table form shows the same process. */
	snprintf(cmd, sizeof(cmd), "%s ps", goscope_bin());
	cr_assert_eq(run_capture(cmd, 0, &out, NULL), 0);
	snprintf(want, sizeof(want), "\n%-8d idle", t.pid);
	cr_assert(strstr(out, want), "want '%s' in:\n%s", want + 1, out);
	cr_assert(strstr(out, version));
	free(out);
	cr_assert_eq(gotarget_stop(&t, 5000), 0);
}

/* Non-Go processes (this test runner, the shell) are not listed. */
Test(ps, skips_non_go)
{
	char cmd[256], key[64], *out = NULL;

	snprintf(cmd, sizeof(cmd), "%s ps --json", goscope_bin());
	cr_assert_eq(run_capture(cmd, 0, &out, NULL), 0);
	snprintf(key, sizeof(key), "{\"pid\": %d,", getpid());
	cr_assert_null(strstr(out, key));
	cr_assert_eq(out[0], '[');
	free(out);
}

/* Processes that exit during the scan never make ps fail: run it while processes churn. */
Test(ps, survives_process_churn, .timeout = 60)
{
	char cmd[512], *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "(for i in $(seq 1 300); do /bin/true & done; wait) & "
		 "for i in 1 2 3 4 5; do %s ps --json > /dev/null || exit 1; done; wait",
		 goscope_bin());
	rc = run_capture(cmd, 1, &out, NULL);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
}
