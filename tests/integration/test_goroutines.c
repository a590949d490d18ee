/* test_goroutines.c — `goscope goroutines` against the Go runtime's own dump: tests/go/gdump
 * parks goroutines in known places and writes runtime.Stack(buf, true) on request; goscope's
 * text dump of the live process (not stopped) must match it goroutine by goroutine: goid,
 * status and wait reason, every frame (function, file:line +offset), creator. For every
 * installed toolchain in the default and stripped modes, PIE and cgo for some. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

#define MAX_G 256
#define MAX_FR 128
#define LINE_TIMEOUT_MS 20000

struct gframe {
	char func[512]; /* without the argument list */
	char pos[1024]; /* "/path/file.go:123 +0x1d" */
};

struct grt {
	unsigned long long goid;
	char status[128]; /* inside [...], ", N minutes" removed */
	char labels[256]; /* " {k: v}" part of the header, "" when none */
	int nframes;
	struct gframe f[MAX_FR];
	char creator[512]; /* "created by ..." line, "" when none */
	char creator_pos[1024];
};

struct gdumpf {
	int n;
	struct grt g[MAX_G];
};

/* "main.f(0x1, {0x2?})" -> "main.f": cut at the '(' that opens the final argument list. */
static void strip_args(const char *line, char *out, size_t len)
{
	size_t n = strlen(line);
	int depth = 0;
	size_t cut = n;

	if (n && line[n - 1] == ')') {
		for (size_t i = n; i-- > 0;) {
			if (line[i] == ')')
				depth++;
			else if (line[i] == '(' && --depth == 0) {
				cut = i;
				break;
			}
		}
	}
	snprintf(out, len, "%.*s", (int)cut, line);
}

/* Parses a debug=2 dump (Go's or goscope's). Lines that are not part of a goroutine block
 * (goscope's summary) are skipped; " fp=... sp=... pc=..." suffixes (GOTRACEBACK=crash) are
 * dropped. */
static void parse_dump(const char *text, struct gdumpf *d)
{
	const char *p = text;
	struct grt *cur = NULL;
	char line[4096];

	memset(d, 0, sizeof(*d));
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		p += len + (nl ? 1 : 0);
		if (strncmp(line, "goroutine ", 10) == 0 && strchr(line, '[')) {
			char *lb = strchr(line, '['), *rb = strrchr(line, ']'), *mins;

			cr_assert_lt(d->n, MAX_G);
			cur = &d->g[d->n++];
			cur->goid = strtoull(line + 10, NULL, 10);
			if (rb && rb > lb) {
				snprintf(cur->status, sizeof(cur->status), "%.*s",
					 (int)(rb - lb - 1), lb + 1);
				if (rb[1] == ' ' && rb[2] == '{')
					snprintf(cur->labels, sizeof(cur->labels), "%.*s",
						 (int)(strlen(rb + 1) - 1), rb + 1);
			}
			mins = strstr(cur->status, " minutes");
			if (mins) {
				char *c = mins;

				while (c > cur->status && c[-1] != ',')
					c--;
				if (c > cur->status)
					memmove(c - 1, mins + 8, strlen(mins + 8) + 1);
			}
			continue;
		}
		if (!cur || !line[0])
			continue;
		if (line[0] == '\t') {
			char *fp = strstr(line, " fp=");

			if (fp)
				*fp = 0;
			if (cur->creator[0] && !cur->creator_pos[0])
				snprintf(cur->creator_pos, sizeof(cur->creator_pos), "%.1000s",
					 line + 1);
			else if (cur->nframes > 0 && !cur->f[cur->nframes - 1].pos[0])
				snprintf(cur->f[cur->nframes - 1].pos, sizeof(cur->f[0].pos),
					 "%.1000s", line + 1);
			continue;
		}
		if (strncmp(line, "created by ", 11) == 0) {
			snprintf(cur->creator, sizeof(cur->creator), "%.*s",
				 (int)sizeof(cur->creator) - 1, line);
			continue;
		}
		if (strchr(line, '(') && cur->nframes < MAX_FR) {
			strip_args(line, cur->f[cur->nframes].func, sizeof(cur->f[0].func));
			cur->nframes++;
		}
	}
}

static const struct grt *find_g(const struct gdumpf *d, unsigned long long goid)
{
	for (int i = 0; i < d->n; i++) {
		if (d->g[i].goid == goid)
			return &d->g[i];
	}
	return NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Every goroutine of want except skip_goid must be in got, identical; got must have no other
 * goroutine except skip_goid. Returns the number compared. */
static int compare_dumps(const struct gdumpf *want, const struct gdumpf *got,
			 unsigned long long skip_goid, bool labels, const char *what)
{
	int compared = 0;

	for (int i = 0; i < want->n; i++) {
		const struct grt *w = &want->g[i], *g;

		if (w->goid == skip_goid)
			continue;
		g = find_g(got, w->goid);
		cr_assert_not_null(g, "%s: goroutine %llu [%s] missing from goscope's dump", what,
				   w->goid, w->status);
		cr_assert_str_eq(g->status, w->status, "%s: goroutine %llu status", what, w->goid);
		if (labels && w->labels[0])
			cr_assert_str_eq(g->labels, w->labels, "%s: goroutine %llu labels", what,
					 w->goid);
		cr_assert_eq(g->nframes, w->nframes,
			     "%s: goroutine %llu [%s]: %d frames, Go has %d (first: %s / %s)", what,
			     w->goid, w->status, g->nframes, w->nframes,
			     g->nframes ? g->f[0].func : "-", w->nframes ? w->f[0].func : "-");
		for (int k = 0; k < w->nframes; k++) {
			cr_assert_str_eq(g->f[k].func, w->f[k].func, "%s: goroutine %llu frame %d",
					 what, w->goid, k);
			cr_assert_str_eq(g->f[k].pos, w->f[k].pos,
					 "%s: goroutine %llu frame %d (%s)", what, w->goid, k,
					 w->f[k].func);
		}
		cr_assert_str_eq(g->creator, w->creator, "%s: goroutine %llu creator", what,
				 w->goid);
		cr_assert_str_eq(g->creator_pos, w->creator_pos, "%s: goroutine %llu creator line",
				 what, w->goid);
		compared++;
	}
	for (int i = 0; i < got->n; i++) {
		cr_assert(got->g[i].goid == skip_goid || find_g(want, got->g[i].goid),
			  "%s: goscope lists goroutine %llu [%s] that Go does not", what,
			  got->g[i].goid, got->g[i].status);
	}
	return compared;
}

struct gcase {
	char toolchain[8];
	char mode[16];
};

ParameterizedTestParameters(goroutines, matches_runtime_stack)
{
	static struct gcase cases[64];
	size_t n = 0;

	for (int t = 0; gotarget_toolchains[t]; t++) {
		const char *modes[] = {"default", "stripped", NULL, NULL, NULL};

		if (strcmp(gotarget_toolchains[t], "1.27") == 0) {
			modes[2] = "pie";
			modes[3] = "cgo-stripped";
		} else if (strcmp(gotarget_toolchains[t], "1.21") == 0) {
			modes[2] = "cgo";
			modes[3] = "stripped-pie";
		}
		for (int m = 0; modes[m]; m++) {
			snprintf(cases[n].toolchain, sizeof(cases[n].toolchain), "%s",
				 gotarget_toolchains[t]);
			snprintf(cases[n].mode, sizeof(cases[n].mode), "%s", modes[m]);
			n++;
		}
	}
	return cr_make_param_array(struct gcase, cases, n);
}

/* Starts gdump, waits for "ready", has it write its own dump to PATH. */
static void start_and_dump(struct gotarget *t, const char *bin, const char *dumppath, int *pid)
{
	char *argv[] = {(char *)bin, NULL};
	char line[256], cmd[600];

	cr_assert_eq(gotarget_start(t, bin, argv), 0, "start %s", bin);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), LINE_TIMEOUT_MS), 0,
		     "no ready line");
	cr_assert_eq(sscanf(line, "ready %d", pid), 1, "bad ready line '%s'", line);
	snprintf(cmd, sizeof(cmd), "dump %s\n", dumppath);
	cr_assert_eq(write(t->stdin_fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), LINE_TIMEOUT_MS), 0);
	cr_assert_str_eq(line, "dumped");
}

ParameterizedTest(struct gcase *c, goroutines, matches_runtime_stack, .timeout = 120)
{
	static struct gdumpf want, got;
	char bin[4096], tmp[256], dumppath[512], cmd[8192];
	struct gotarget t;
	char *godump, *out = NULL;
	size_t outlen;
	int pid, rc, minor = atoi(c->toolchain + 2);

	GOTARGET_BUILD_OR_SKIP(bin, "gdump", c->toolchain, c->mode);
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dumppath, sizeof(dumppath), "%s/go.txt", tmp);
	start_and_dump(&t, bin, dumppath, &pid);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid %d", goscope_bin(), pid);
	rc = run_capture(cmd, 0, &out, &outlen);
	godump = slurp(dumppath);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 0, "goscope goroutines failed: %s", out);
	cr_assert_not_null(godump);
	parse_dump(godump, &want);
	parse_dump(out, &got);
	cr_assert_geq(want.n, 14, "Go's dump has %d goroutines", want.n);
	cr_assert_str_eq(want.g[0].status, "running", "Go's first goroutine is the dumper");
	cr_assert_eq(compare_dumps(&want, &got, want.g[0].goid, true, c->toolchain), want.n - 1);
	cr_assert(strstr(out, " 0 inconsistent, 0 unreadable"), "summary: %.200s", out);
	/* labels: readable from Go 1.24 (a sorted slice), shown in goscope's header */
	if (minor >= 24)
		cr_assert(strstr(out, "[chan receive] {shard: 7, worker: w1}:"),
			  "labels missing:\n%s", out);
	free(godump);
	free(out);
}

/* JSON and pprof of the same process: every goroutine, the labels, and a profile that
 * go tool pprof reads with the goroutine count. */
Test(goroutines, json_and_pprof, .timeout = 120)
{
	char bin[4096], tmp[256], dumppath[512], cmd[8192], go[256];
	struct gotarget t;
	char *out = NULL;
	size_t outlen;
	int pid, rc;

	GOTARGET_BUILD_OR_SKIP(bin, "gdump", "1.27", "stripped");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dumppath, sizeof(dumppath), "%s/go.txt", tmp);
	start_and_dump(&t, bin, dumppath, &pid);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid %d --format json", goscope_bin(), pid);
	rc = run_capture(cmd, 0, &out, &outlen);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "\"allgs_found_by\":\"runtime.allgadd code\""), "%.300s", out);
	cr_assert(strstr(out, "\"labels\":{\"shard\":\"7\",\"worker\":\"w1\"}"), "%s", out);
	cr_assert(strstr(out, "\"wait_reason\":\"sync.Mutex.Lock\""), "%s", out);
	cr_assert(strstr(out, "\"locked_to_thread\":true"), "%s", out);
	cr_assert(strstr(out, "\"function\":\"main.inlinedRecv\",\"file\":"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid %d --format pprof -o %s/g.pb.gz",
		 goscope_bin(), pid, tmp);
	rc = run_capture(cmd, 1, &out, &outlen);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	if (!go_tool_path("1.27", go, sizeof(go)))
		cr_skip_test("go 1.27 not installed");
	snprintf(cmd, sizeof(cmd), "%s tool pprof -traces %s/g.pb.gz", go, tmp);
	rc = run_capture(cmd, 1, &out, &outlen);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "Type: goroutine"), "%s", out);
	cr_assert(strstr(out, "main.recurse"), "%s", out);
	cr_assert(strstr(out, "main.lockForever"), "%s", out);
	cr_assert(strstr(out, "worker:  w1"), "%s", out);
	cr_assert(!strstr(out, "gowrap"), "wrappers are left out: %s", out);
	free(out);
}

/* Bad input: not a process, no target, both. */
Test(goroutines, usage_errors)
{
	char cmd[4096], *out = NULL;
	size_t len;

	snprintf(cmd, sizeof(cmd), "%s goroutines", goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 2, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid 1 --core /dev/null", goscope_bin());
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 2, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid %d", goscope_bin(), getpid());
	cr_assert_eq(run_capture(cmd, 1, &out, &len), 1, "%s", out);
	cr_assert(strstr(out, "not a Go program"), "%s", out);
	free(out);
}

/* ---- core files ---- */

static void goscope_dump(const char *args, struct gdumpf *d, char **text)
{
	char cmd[8192];
	char *out = NULL;
	size_t len;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s goroutines %s", goscope_bin(), args);
	rc = run_capture(cmd, 0, &out, &len);
	cr_assert_eq(rc, 0, "goscope goroutines %s failed:\n%s", args, out);
	parse_dump(out, d);
	if (text)
		*text = out;
	else
		free(out);
}

/* gdb's gcore of the still process: the same dump as the live process, and as Go's own. */
Test(goroutines, gcore_core_file, .timeout = 180)
{
	static struct gdumpf want, live, core;
	char bin[4096], tmp[256], dumppath[512], cmd[8192], args[1024];
	struct gotarget t;
	char *godump, *out = NULL;
	size_t len;
	int pid, rc;

	if (system("command -v gcore >/dev/null 2>&1") != 0)
		cr_skip_test("gdb's gcore is not installed");
	GOTARGET_BUILD_OR_SKIP(bin, "gdump", "1.27", "static");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dumppath, sizeof(dumppath), "%s/go.txt", tmp);
	start_and_dump(&t, bin, dumppath, &pid);
	snprintf(args, sizeof(args), "--pid %d", pid);
	goscope_dump(args, &live, NULL);
	snprintf(cmd, sizeof(cmd), "gcore -o %s/core %d", tmp, pid);
	rc = run_capture(cmd, 1, &out, &len);
	free(out);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 0, "gcore failed");
	snprintf(args, sizeof(args), "--core %s/core.%d", tmp, pid);
	goscope_dump(args, &core, NULL);
	godump = slurp(dumppath);
	parse_dump(godump, &want);
	free(godump);
	/* every goroutine, the main one (blocked reading stdin) included */
	cr_assert_eq(compare_dumps(&live, &core, 0, true, "gcore vs live"), live.n);
	cr_assert_eq(compare_dumps(&want, &core, want.g[0].goid, true, "gcore vs Go"), want.n - 1);
	snprintf(cmd, sizeof(cmd), "rm -f %s/core.%d", tmp, pid);
	cr_assert_eq(system(cmd), 0);
}

/* The kernel's core of a GOTRACEBACK=crash abort: written to a temporary directory through
 * core_pattern, which is restored afterwards (whatever it was: a file name or a pipe to
 * systemd-coredump), on every way out of the test (the fini runs after a failed assertion
 * too). */
static char saved_pattern[1024];
static struct rlimit saved_core_limit;
static bool pattern_saved;

static void restore_core_pattern(void)
{
	if (pattern_saved) {
		FILE *f = fopen("/proc/sys/kernel/core_pattern", "w");

		if (f) {
			fputs(saved_pattern, f);
			fclose(f);
		}
		setrlimit(RLIMIT_CORE, &saved_core_limit);
		pattern_saved = false;
	}
	unsetenv("GOTRACEBACK");
}

static bool set_core_pattern(const char *pattern)
{
	FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
	struct rlimit unl = {RLIM_INFINITY, RLIM_INFINITY};
	size_t n;

	if (!f)
		return false;
	n = fread(saved_pattern, 1, sizeof(saved_pattern) - 1, f);
	fclose(f);
	saved_pattern[n] = 0;
	getrlimit(RLIMIT_CORE, &saved_core_limit);
	pattern_saved = true;
	f = fopen("/proc/sys/kernel/core_pattern", "w");
	if (!f)
		return false;
	fputs(pattern, f);
	if (fclose(f) != 0)
		return false;
	return setrlimit(RLIMIT_CORE, &unl) == 0;
}

Test(goroutines, kernel_core_of_crash, .timeout = 120, .fini = restore_core_pattern)
{
	static struct gdumpf live, core;
	char bin[4096], other[4096], tmp[256], pattern[512], path[600], args[8192], cmd[8192];
	struct gotarget t;
	char *argv[2], line[256], *text = NULL, *out = NULL;
	const struct grt *g1;
	size_t len;
	int pid, rc;
	FILE *f;

	GOTARGET_BUILD_OR_SKIP(bin, "gdump", "1.27", "stripped");
	GOTARGET_BUILD_OR_SKIP(other, "gdump", "1.26", "stripped");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(pattern, sizeof(pattern), "%s/core.%%p", tmp);
	cr_assert(set_core_pattern(pattern), "cannot set core_pattern (root needed)");
	setenv("GOTRACEBACK", "crash", 1);
	argv[0] = bin;
	argv[1] = NULL;
	cr_assert_eq(gotarget_start(&t, bin, argv), 0);
	unsetenv("GOTRACEBACK");
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), LINE_TIMEOUT_MS), 0);
	cr_assert_eq(sscanf(line, "ready %d", &pid), 1);
	/* anonymous private and shared memory, ELF headers (the kernel's default, made sure) */
	snprintf(path, sizeof(path), "/proc/%d/coredump_filter", pid);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("0x33", f);
	fclose(f);
	snprintf(args, sizeof(args), "--pid %d", pid);
	goscope_dump(args, &live, NULL);
	cr_assert_eq(write(t.stdin_fd, "crash\n", 6), 6);
	gotarget_stop(&t, 10000);
	restore_core_pattern();
	snprintf(path, sizeof(path), "%s/core.%d", tmp, pid);
	cr_assert_eq(access(path, R_OK), 0, "no core at %s", path);

	snprintf(args, sizeof(args), "--core %s", path);
	goscope_dump(args, &core, &text);
	/* the crashing goroutine first, marked, its stack from the signal frame */
	cr_assert_eq(core.g[0].goid, 1, "%s", text);
	cr_assert(strstr(text, "goroutine 1 [running]:\n\t(goscope: the thread that got the fatal "
			       "signal)\npanic(...)\n"),
		  "%s", text);
	g1 = &core.g[0];
	cr_assert_geq(g1->nframes, 2);
	cr_assert_str_eq(g1->f[1].func, "main.main");
	cr_assert(strstr(g1->f[1].pos, "gdump/main.go:167 +0x"), "%s", g1->f[1].pos);
	/* every other goroutine as the live process had it */
	cr_assert_eq(compare_dumps(&live, &core, 1, true, "kernel core vs live"), live.n - 1);
	free(text);

	/* the wrong executable: the build ID check refuses it */
	snprintf(cmd, sizeof(cmd), "%s goroutines --core %s --exe %s", goscope_bin(), path, other);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert_eq(rc, 1, "%s", out);
	cr_assert(strstr(out, "core does not match the binary"), "%s", out);
	free(out);

	/* truncated: headers and notes only */
	snprintf(cmd, sizeof(cmd),
		 "head -c 65536 %s > %s/trunc && %s goroutines --core %s/trunc --exe %s 2>&1", path,
		 tmp, goscope_bin(), tmp, bin);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert_eq(rc, 1, "truncated core: %s", out);
	cr_assert(strstr(out, "goscope goroutines: "), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd),
		 "head -c 3000 %s > %s/trunc && %s goroutines --core %s/trunc 2>&1", path, tmp,
		 goscope_bin(), tmp);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert_eq(rc, 1, "truncated core: %s", out);
	free(out);

	/* corrupted: not an ELF file any more; notes overwritten with garbage */
	snprintf(cmd, sizeof(cmd),
		 "cp %s %s/bad && printf 'XXXX' | dd of=%s/bad conv=notrunc status=none && "
		 "%s goroutines --core %s/bad --exe %s 2>&1",
		 path, tmp, tmp, goscope_bin(), tmp, bin);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert_eq(rc, 1, "%s", out);
	cr_assert(strstr(out, "not an ELF file"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd),
		 "cp %s %s/bad && head -c 20000 /dev/urandom | dd of=%s/bad bs=1 seek=1000 "
		 "conv=notrunc status=none && %s goroutines --core %s/bad --exe %s 2>&1",
		 path, tmp, tmp, goscope_bin(), tmp, bin);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert(rc == 0 || rc == 1, "garbage notes: exit %d: %s", rc, out);
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -f %s/core.* %s/bad %s/trunc", tmp, tmp, tmp);
	cr_assert_eq(system(cmd), 0);
}

/* A core of a program that is not Go: a clear error. */
Test(goroutines, core_of_non_go_program, .timeout = 60)
{
	char tmp[256], cmd[8192], *out = NULL;
	size_t len;
	int rc;

	if (system("command -v gcore >/dev/null 2>&1") != 0)
		cr_skip_test("gdb's gcore is not installed");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(cmd, sizeof(cmd),
		 "(sleep 30 & p=$!; sleep 0.3; gcore -o %s/core $p >/dev/null 2>&1; kill $p; "
		 "%s goroutines --core %s/core.$p; rc=$?; rm -f %s/core.$p; exit $rc) 2>&1",
		 tmp, goscope_bin(), tmp, tmp);
	rc = run_capture(cmd, 1, &out, &len);
	cr_assert_eq(rc, 1, "%s", out);
	cr_assert(strstr(out, "is not a Go program"), "%s", out);
	free(out);
}

/* ---- busy programs, --stop ---- */

static char proc_state(int pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] && p[2] ? p[2] : 0;
}

/* Goroutines parking and waking all the time: no crash, no hang, the inconsistent count in
 * the header, every goroutine parked throughout exact; with --stop nothing is inconsistent and
 * the process runs again afterwards. */
Test(goroutines, busy_program, .timeout = 120)
{
	static struct gdumpf d;
	char bin[4096], args[256], *text = NULL;
	char *argv[] = {bin, "-parked", "50", "-pairs", "8", NULL};
	struct gotarget t;
	char line[256];
	int pid;

	GOTARGET_BUILD_OR_SKIP(bin, "gbusy", "1.27", "stripped");
	cr_assert_eq(gotarget_start(&t, bin, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), LINE_TIMEOUT_MS), 0);
	cr_assert_eq(sscanf(line, "ready %d", &pid), 1);
	for (int round = 0; round < 6; round++) {
		bool stop = round % 3 == 2;
		int parked = 0;
		const char *sum;

		snprintf(args, sizeof(args), "--pid %d%s", pid, stop ? " --stop" : "");
		goscope_dump(args, &d, &text);
		sum = strstr(text, " inconsistent, ");
		cr_assert_not_null(sum, "no inconsistent count: %.300s", text);
		if (stop) {
			cr_assert(
				strstr(text, ", 0 inconsistent, 0 unreadable, stopped while read"),
				"%.300s", text);
			cr_assert_neq(proc_state(pid), 'T', "the process was left stopped");
		}
		for (int i = 0; i < d.n; i++) {
			const struct grt *g = &d.g[i];

			if (g->nframes == 1 && strcmp(g->f[0].func, "main.parkedForever") == 0) {
				cr_assert_str_eq(g->status, "chan receive");
				cr_assert(strstr(g->f[0].pos, "gbusy/main.go:31 +0x"), "%s",
					  g->f[0].pos);
				cr_assert_str_eq(g->creator, "created by main.main in goroutine 1");
				parked++;
			}
		}
		cr_assert_eq(parked, 50, "round %d: %d of the 50 parked goroutines exact:\n%s",
			     round, parked, text);
		free(text);
	}
	gotarget_stop(&t, 2000);
}

/* goscope SIGKILLed while the target is stopped: its keeper process resumes the target. */
Test(goroutines, stop_survives_sigkill, .timeout = 120)
{
	char bin[4096], cmd[8192], line[256];
	char *argv[] = {bin, "-parked", "200000", "-pairs", "1", NULL};
	struct gotarget t;
	pid_t gs;
	int pid, i;

	GOTARGET_BUILD_OR_SKIP(bin, "gbusy", "1.27", "default");
	cr_assert_eq(gotarget_start(&t, bin, argv), 0);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 60000), 0);
	cr_assert_eq(sscanf(line, "ready %d", &pid), 1);
	snprintf(cmd, sizeof(cmd), "%d", pid);
	gs = fork();
	if (gs == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execl(goscope_bin(), "goscope", "goroutines", "--pid", cmd, "--stop", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 2000 && proc_state(pid) != 'T'; i++)
		usleep(1000);
	cr_assert_eq(proc_state(pid), 'T', "goscope did not stop the target");
	kill(gs, SIGKILL);
	waitpid(gs, NULL, 0);
	for (i = 0; i < 2000 && proc_state(pid) == 'T'; i++)
		usleep(1000);
	cr_assert_neq(proc_state(pid), 'T', "the target stayed stopped after goscope's SIGKILL");
	gotarget_stop(&t, 2000);
}

/* The text dump reads as Go's own in an existing tool: panicparse (Debian's package) parses
 * every goroutine of it, with its wait reason and frames — but the ones with pprof labels:
 * their header is Go 1.26's (`goroutine 28 [chan receive] {shard: 7}:`, runtime/traceback.go
 * with GODEBUG=tracebacklabels=1), which panicparse 2.3 predates. */
Test(goroutines, panicparse_reads_text, .timeout = 120)
{
	char bin[4096], tmp[256], dumppath[512], cmd[8192];
	struct gotarget t;
	char *out = NULL, *line, *save = NULL;
	size_t outlen;
	unsigned long shown = 0, parsed = 0;
	int pid, rc;

	if (access("/usr/bin/panicparse", X_OK) != 0)
		cr_skip_test("panicparse not installed (deploy/deps.sh test installs it)");
	GOTARGET_BUILD_OR_SKIP(bin, "gdump", "1.27", "stripped");
	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dumppath, sizeof(dumppath), "%s/go.txt", tmp);
	start_and_dump(&t, bin, dumppath, &pid);
	snprintf(cmd, sizeof(cmd), "%s goroutines --pid %d -o %s/g.txt", goscope_bin(), pid, tmp);
	rc = run_capture(cmd, 1, &out, &outlen);
	gotarget_stop(&t, 2000);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "grep -c '^goroutine [0-9]* \\[[^]]*\\]:$' %s/g.txt", tmp);
	cr_assert_eq(run_capture(cmd, 0, &out, &outlen), 0, "%s", out);
	shown = strtoul(out, NULL, 10);
	free(out);
	cr_assert_gt(shown, 5);
	snprintf(cmd, sizeof(cmd), "panicparse -no-color -parse=false %s/g.txt", tmp);
	rc = run_capture(cmd, 1, &out, &outlen);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "sync.Mutex.Lock"), "%s", out);
	cr_assert(strstr(out, "lockForever"), "%s", out);
	/* Buckets: "N: wait reason [...]" then the frames. */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long n = strtoul(line, &end, 10);

		if (end != line && *end == ':' && end[1] == ' ')
			parsed += n;
	}
	cr_assert_eq(parsed, shown, "panicparse found %lu goroutines of %lu", parsed, shown);
	free(out);
}
