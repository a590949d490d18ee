/* test_symbolize.c — the symbolizer against the Go runtime's own answer: symtest collects
 * runtime.Callers PCs at many points (inlining chains, closures, generics, methods,
 * goroutines, defers, recursion) and prints what runtime.CallersFrames says; goscope must
 * reproduce every frame, for every toolchain and build mode, through the live process
 * (/proc/PID/maps, map_files, load bias). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goscope/symbolizer.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

#define MAX_RECORDS 2048
#define MAX_F 16
#define FIELD_MAX 1024
#define LINE_TIMEOUT_MS 20000

struct frame_rec {
	char func[FIELD_MAX];
	char file[FIELD_MAX];
	int line;
};

struct pc_rec {
	unsigned long long pc;
	int nf;
	struct frame_rec f[MAX_F];
};

struct symcase {
	char toolchain[8];
	char mode[16];
	int phys; /* 1: real return addresses, full inline chains; 0: runtime.Callers PCs */
};

static const char *const all_modes[] = {"default", "stripped", "pie", "static",
					"cgo", "stripped-pie", "cgo-stripped", NULL};

ParameterizedTestParameters(symbolize, runtime_frames)
{
	static struct symcase cases[128];
	size_t n = 0;

	for (int t = 0; gotarget_toolchains[t]; t++) {
		for (int m = 0; all_modes[m]; m++) {
			for (int phys = 0; phys < 2; phys++) {
				if (n == sizeof(cases) / sizeof(cases[0]))
					break;
				snprintf(cases[n].toolchain, sizeof(cases[n].toolchain), "%s",
					 gotarget_toolchains[t]);
				snprintf(cases[n].mode, sizeof(cases[n].mode), "%s", all_modes[m]);
				cases[n].phys = phys;
				n++;
			}
		}
	}
	return cr_make_param_array(struct symcase, cases, n);
}

/* Reads symtest's output up to "END n" into recs; returns the record count. */
static int read_records(struct gotarget *t, struct pc_rec *recs)
{
	char line[1024];
	int n = 0, len;

	while ((len = gotarget_read_line(t, line, sizeof(line), LINE_TIMEOUT_MS)) >= 0) {
		if (len == 0)
			continue;
		if (strncmp(line, "END ", 4) == 0) {
			cr_assert_eq(atoi(line + 4), n, "END count %s vs %d records", line + 4, n);
			return n;
		}
		if (line[0] == 'P' && line[1] == ' ') {
			cr_assert_lt(n, MAX_RECORDS);
			recs[n].pc = strtoull(line + 2, NULL, 16);
			recs[n].nf = 0;
			n++;
		} else if (line[0] == 'F' && line[1] == ' ' && n > 0) {
			struct pc_rec *r = &recs[n - 1];
			char *fn = line + 2, *tab1 = strchr(fn, '\t');
			char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;

			cr_assert(tab1 && tab2, "bad line '%s'", line);
			if (r->nf >= MAX_F)
				continue;
			*tab1 = *tab2 = '\0';
			snprintf(r->f[r->nf].func, sizeof(r->f[r->nf].func), "%s", fn);
			snprintf(r->f[r->nf].file, sizeof(r->f[r->nf].file), "%s", tab1 + 1);
			r->f[r->nf].line = atoi(tab2 + 1);
			r->nf++;
		}
	}
	cr_assert_fail("symtest output ended without END");
	return -1;
}

static bool same(const struct frame_rec *want, const struct gs_frame *got)
{
	return strcmp(want->func, got->function) == 0 && strcmp(want->file, got->file) == 0 &&
	       want->line == got->line;
}

ParameterizedTest(struct symcase *c, symbolize, runtime_frames, .timeout = 120)
{
	static struct pc_rec recs[MAX_RECORDS];
	char path[4096], report[4096] = "";
	char *argv[4] = {path, "--wait", NULL, NULL};
	struct gs_frame frames[64];
	struct gs_symbolizer *sym;
	struct gs_process *proc;
	struct gs_error err = {0};
	struct gotarget t;
	int n, bad = 0, frames_checked = 0, inlined = 0;

	GOTARGET_BUILD_OR_SKIP(path, "symtest", c->toolchain, c->mode);
	if (c->phys)
		argv[2] = "--phys";
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	n = read_records(&t, recs);
	cr_assert_gt(n, 100, "only %d PCs", n);
	cr_assert_eq(gs_symbolizer_new(&sym, &err), 0);
	cr_assert_eq(gs_process_open(sym, t.pid, &proc, &err), 0, "%s", err.msg);

	for (int i = 0; i < n; i++) {
		const struct pc_rec *r = &recs[i];
		int got = gs_process_symbolize(proc, r->pc, GS_LOOKUP_RETURN_ADDR, frames, 64, NULL,
					       &err);
		/* runtime.Callers PCs yield one frame each (fake PCs stand for inlined callers);
		 * real return addresses yield the whole inline chain. */
		int want = r->nf;
		bool ok = got >= want && (c->phys ? got == want : true);

		for (int j = 0; ok && j < want; j++)
			ok = same(&r->f[j], &frames[j]);
		frames_checked += want;
		if (got > 1)
			inlined++;
		if (!ok) {
			bad++;
			if (strlen(report) < sizeof(report) - 600) {
				char *p = report + strlen(report);

				snprintf(p, sizeof(report) - strlen(report),
					 "\n  pc 0x%llx: want %s %s:%d (%d frames), got %s %s:%d (%d "
					 "frames)",
					 r->pc, r->f[0].func, r->f[0].file, r->f[0].line, want,
					 got > 0 ? frames[0].function : "-",
					 got > 0 ? frames[0].file : "-", got > 0 ? frames[0].line : 0,
					 got);
			}
		}
	}
	gs_process_close(proc);
	gs_symbolizer_free(sym);
	gotarget_stop(&t, 5000);
	cr_assert_eq(bad, 0, "go%s %s%s: %d of %d PCs differ from runtime.CallersFrames:%s",
		     c->toolchain, c->mode, c->phys ? " --phys" : "", bad, n, report);
	cr_assert_gt(frames_checked, n - 1);
	/* The inlining chains must really have been expanded. */
	cr_assert_gt(inlined, 5, "only %d PCs had inlined frames", inlined);
}

/* The CLI gives the same answer as the library: `goscope symbolize --pid`. */
Test(symbolize, cli_pid, .timeout = 120)
{
	static struct pc_rec recs[MAX_RECORDS];
	char path[4096], cmd[8192], *out = NULL;
	char *argv[] = {path, "--wait", "--phys", NULL};
	struct gotarget t;
	int n, rc, pos;

	GOTARGET_BUILD_OR_SKIP(path, "symtest", "1.27", "pie");
	cr_assert_eq(gotarget_start(&t, path, argv), 0);
	n = read_records(&t, recs);
	pos = snprintf(cmd, sizeof(cmd), "%s symbolize --pid %d -r", goscope_bin(), t.pid);
	for (int i = 0; i < n && i < 40; i++)
		pos += snprintf(cmd + pos, sizeof(cmd) - (size_t)pos, " 0x%llx", recs[i].pc);
	rc = run_capture(cmd, 0, &out, NULL);
	gotarget_stop(&t, 5000);
	cr_assert_eq(rc, 0, "%s", out);
	{
		char *line = strtok(out, "\n");

		for (int i = 0; i < n && i < 40; i++) {
			for (int j = 0; j < recs[i].nf; j++) {
				char want[600];

				cr_assert(line, "output ended early at pc %d", i);
				cr_assert_str_eq(line, recs[i].f[j].func);
				line = strtok(NULL, "\n");
				cr_assert(line);
				snprintf(want, sizeof(want), "%s:%d", recs[i].f[j].file,
					 recs[i].f[j].line);
				cr_assert_str_eq(line, want);
				line = strtok(NULL, "\n");
			}
		}
	}
	free(out);
}

/* A process that does not exist is a clear error with exit code 2. */
Test(symbolize, cli_bad_pid)
{
	char cmd[512], *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s symbolize --pid 999999999 0x1000", goscope_bin());
	rc = run_capture(cmd, 1, &out, NULL);
	cr_assert_eq(rc, 2, "rc %d: %s", rc, out);
	cr_assert(strstr(out, "no such process") || strstr(out, "bad pid"), "%s", out);
	free(out);
}

/* A binary shared by several processes is opened once (cache keyed by device, inode, size
 * and mtime), and each process still symbolizes through it. */
Test(symbolize, binary_cache_shared, .timeout = 60)
{
	char path[4096], line[128];
	char *argv[] = {path, NULL};
	struct gotarget t[3];
	struct gs_symbolizer *sym;
	struct gs_process *proc[3];
	struct gs_error err = {0};

	GOTARGET_BUILD_OR_SKIP(path, "idle", "1.27", "pie");
	cr_assert_eq(gs_symbolizer_new(&sym, &err), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(gotarget_start(&t[i], path, argv), 0);
		cr_assert_gt(gotarget_read_line(&t[i], line, sizeof(line), 10000), 0);
		cr_assert_eq(gs_process_open(sym, t[i].pid, &proc[i], &err), 0, "%s", err.msg);
		cr_assert_gt(gs_process_preload(proc[i]), 0);
	}
	/* idle (static-pie or dynamic) + at most libc and ld.so: never one per process. */
	cr_assert_leq(gs_symbolizer_cached_binaries(sym), 4, "%u binaries cached",
		      gs_symbolizer_cached_binaries(sym));
	for (int i = 0; i < 3; i++) {
		struct gs_binary *b = gs_process_main_binary(proc[i]);

		cr_assert(b);
		cr_assert(gs_binary_info(b)->is_go);
		cr_assert_str_eq(gs_binary_info(b)->buildinfo.mod_path, "goscope.test/idle");
		gs_process_close(proc[i]);
		gotarget_stop(&t[i], 5000);
	}
	cr_assert_leq(gs_symbolizer_cached_binaries(sym), 4);
	gs_symbolizer_free(sym);
}
