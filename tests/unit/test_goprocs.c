/* test_goprocs.c — goproc_inspect / goproc_scan_all (agent/procs/goprocs.c) against a fake /proc
 * built in a temp directory: pid directories whose `exe` is a Go binary, a non-Go binary, a
 * dangling link (the process exited), a truncated Go binary, a directory, nothing (a kernel
 * thread), a symlink loop, and so on. Each must be classified or counted, never fatal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procs/goprocs.h"
#include "tests/unit/elfbuild.h"
#include "tests/unit/pclnbuild.h"
#include "tests/unit/testutil.h"

static char root[64];

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* <root>/<pid>/ with exe -> target (NULL: no exe) and comm. */
static void add_pid(int pid, const char *target, const char *comm)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%d", root, pid);
	cr_assert_eq(mkdir(path, 0755), 0);
	if (target) {
		snprintf(path, sizeof(path), "%s/%d/exe", root, pid);
		cr_assert_eq(symlink(target, path), 0, "%s", strerror(errno));
	}
	if (comm) {
		snprintf(path, sizeof(path), "%s/%d/comm", root, pid);
		write_file(path, comm, strlen(comm));
	}
}

/* A file under root named name; returns its path in a static buffer slot. */
static const char *root_file(const char *name, const void *data, size_t n)
{
	static char paths[8][256];
	static unsigned next;
	char *p = paths[next++ % 8];

	snprintf(p, 256, "%s/%s", root, name);
	write_file(p, data, n);
	return p;
}

/* A crafted Go binary (pclnbuild sample) with build info, optionally with a broken table. */
static const char *crafted_go(const char *name, bool corrupt)
{
	struct pb_table t;
	struct pb_out out;
	struct pb_elf_opts o = {.go_version = "go1.24.4", .moduledata = true};
	uint8_t *img;
	size_t size;
	const char *path;

	pb_sample(&t, GS_PCLNTAB_GO120);
	cr_assert_eq(pb_build(&t, &out), 0);
	if (corrupt)
		out.data[0] = 0x42; /* bad magic */
	img = pb_elf(&t, &out, &o, &size);
	path = root_file(name, img, size);
	free(img);
	pb_free(&out);
	return path;
}

static void setup(void)
{
	tu_mkdtemp(root, sizeof(root), "procs");
}

static void teardown(void)
{
	tu_rmtree(root);
}

TestSuite(goprocs, .init = setup, .fini = teardown);

Test(goprocs, go_binary)
{
	struct goproc p;
	struct gs_error err = {0};

	if (access(TU_VET127, R_OK) != 0)
		cr_skip_test("%s missing", TU_VET127);
	add_pid(100, TU_VET127, "vet\n");
	cr_assert_eq(goproc_inspect(root, 100, &p, &err), 1, "%s", err.msg);
	cr_assert_eq(p.pid, 100);
	cr_assert_str_eq(p.exe, TU_VET127);
	cr_assert_str_eq(p.comm, "vet", "trailing newline stripped");
	cr_assert_str_eq(p.go_version, "go1.27.3");
	cr_assert_str_eq(p.path, "cmd/vet");
	cr_assert(p.stripped);
	cr_assert_not(p.pie);
}

Test(goprocs, crafted_go_binary_no_comm)
{
	struct goproc p;
	struct gs_error err = {0};

	add_pid(107, crafted_go("crafted", false), NULL);
	cr_assert_eq(goproc_inspect(root, 107, &p, &err), 1, "%s", err.msg);
	cr_assert_str_eq(p.go_version, "go1.24.4");
	cr_assert_str_eq(p.path, "example.com/pb");
	cr_assert_str_eq(p.comm, "", "no comm file: empty");
}

Test(goprocs, not_go)
{
	struct goproc p;
	struct gs_error err = {0};
	uint8_t *img;
	size_t size;
	char dir[128];

	/* A C binary. */
	add_pid(101, "/bin/true", "true");
	cr_assert_eq(goproc_inspect(root, 101, &p, &err), 0, "%s", err.msg);
	/* A kernel thread: no exe link at all. */
	add_pid(105, NULL, "kworker/0:1");
	cr_assert_eq(goproc_inspect(root, 105, &p, &err), 0);
	/* An empty file and a text file. */
	add_pid(106, root_file("empty", "", 0), "x");
	cr_assert_eq(goproc_inspect(root, 106, &p, &err), 0, "%s", err.msg);
	add_pid(111, root_file("script", "#!/bin/sh\nexit 0\n", 17), "sh");
	cr_assert_eq(goproc_inspect(root, 111, &p, &err), 0, "%s", err.msg);
	/* A directory as exe. */
	snprintf(dir, sizeof(dir), "%s/adir", root);
	cr_assert_eq(mkdir(dir, 0755), 0);
	add_pid(104, dir, "dir");
	cr_assert_eq(goproc_inspect(root, 104, &p, &err), 0, "%s", err.msg);
	/* The head of a Go binary: its build info and pclntab are past the end. */
	img = tu_read_file(TU_VET127, &size);
	if (img) {
		add_pid(103, root_file("truncated", img, 64 * 1024), "trunc");
		cr_assert_eq(goproc_inspect(root, 103, &p, &err), 0, "%s", err.msg);
		/* Cut inside .gopclntab: build info is gone too, so it is not recognised. */
		add_pid(112, root_file("truncated2", img, size / 2), "trunc2");
		cr_assert_eq(goproc_inspect(root, 112, &p, &err), 0, "%s", err.msg);
		free(img);
	}
	/* A Go binary whose pclntab is corrupt: refused by the symbolizer, so not listed. */
	add_pid(108, crafted_go("corrupt", true), "corrupt");
	cr_assert_eq(goproc_inspect(root, 108, &p, &err), 0, "%s", err.msg);
}

Test(goprocs, vanished_and_unreadable)
{
	struct goproc p;
	struct gs_error err = {0};
	char path[256];

	/* The process exited: exe points nowhere. */
	add_pid(102, "/nonexistent/goscope/exited", "gone");
	cr_assert_eq(goproc_inspect(root, 102, &p, &err), -ESRCH);
	cr_assert(strstr(err.msg, "exited"), "%s", err.msg);
	/* A symlink loop: an error, not a crash. */
	snprintf(path, sizeof(path), "%s/109/exe", root);
	add_pid(109, path, "loop");
	cr_assert_eq(goproc_inspect(root, 109, &p, &err), -ELOOP, "%s", err.msg);
	/* A pid entry that is a plain file. */
	root_file("110", "x", 1);
	cr_assert_eq(goproc_inspect(root, 110, &p, &err), -ENOTDIR, "%s", err.msg);
	/* A pid that does not exist at all: like a kernel thread, nothing to report. */
	cr_assert_eq(goproc_inspect(root, 999, &p, &err), 0);
}

Test(goprocs, scan_all)
{
	struct goproc_scan scan;
	struct gs_error err = {0};
	char path[256];
	bool have_vet = access(TU_VET127, R_OK) == 0;

	if (have_vet)
		add_pid(100, TU_VET127, "vet\n");
	add_pid(101, "/bin/true", "true");
	add_pid(102, "/nonexistent/goscope/exited", "gone");
	add_pid(105, NULL, "kthread");
	add_pid(107, crafted_go("crafted", false), "crafted");
	add_pid(108, crafted_go("corrupt", true), "corrupt");
	snprintf(path, sizeof(path), "%s/109/exe", root);
	add_pid(109, path, "loop");
	root_file("110", "x", 1);
	/* Entries that are not pids. */
	snprintf(path, sizeof(path), "%s/self", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	root_file("12ab", "", 0);
	root_file("-1", "", 0);

	cr_assert_eq(goproc_scan_all(root, &scan, &err), 0, "%s", err.msg);
	cr_assert_eq(scan.n, have_vet ? 2 : 1);
	cr_assert_eq(scan.vanished, 1);
	cr_assert_eq(scan.unreadable, 2, "the loop and the plain file");
	for (size_t i = 0; i < scan.n; i++) {
		struct goproc *p = &scan.procs[i];

		cr_assert(p->pid == 100 || p->pid == 107, "pid %d", p->pid);
		cr_assert_str_eq(p->go_version, p->pid == 100 ? "go1.27.3" : "go1.24.4");
	}
	goproc_scan_free(&scan);
	cr_assert_null(scan.procs);
	cr_assert_eq(scan.n, 0);
}

Test(goprocs, scan_many)
{
	struct goproc_scan scan;
	struct gs_error err = {0};
	const char *go = crafted_go("crafted", false);

	/* More Go processes than the initial capacity (64): the array grows. */
	for (int pid = 1000; pid < 1150; pid++)
		add_pid(pid, go, "g");
	cr_assert_eq(goproc_scan_all(root, &scan, &err), 0, "%s", err.msg);
	cr_assert_eq(scan.n, 150);
	cr_assert_geq(scan.cap, 150);
	goproc_scan_free(&scan);
}

Test(goprocs, missing_root)
{
	struct goproc_scan scan;
	struct gs_error err = {0};

	cr_assert_eq(goproc_scan_all("/nonexistent/goscope-proc", &scan, &err), -ENOENT);
	cr_assert(strstr(err.msg, "/nonexistent/goscope-proc"), "%s", err.msg);
}
