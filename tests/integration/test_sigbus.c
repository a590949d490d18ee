/* test_sigbus.c — an unprivileged user truncates their own shared object while root goscope
 * profiles the program that loaded it (issue 11, defect 2). goscope mapped the file and died
 * of SIGBUS reading its symbols (gs_elfsyms_load <- stacks_user_location), losing the
 * profile. Now it must finish the capture, exit 0 and write a profile that go tool pprof
 * opens; frames of the truncated .so may be unknown.
 *
 * The program is tests/go/dlspin (cgo): it dlopens a .so built here into a temp dir, burns
 * CPU in Go until told to, then calls into the .so, which calls back a function of the
 * program that burns CPU: every stack then holds a return address into the .so. The .so is
 * truncated (to 12288 bytes: its code stays, its symbol table goes; and to 0) after goscope
 * has seen the process and before the program calls into the .so, so goscope symbolizes
 * addresses of the truncated file in the middle of the capture. Run with GOSCOPE_BIN=build/asan/goscope to check the same under ASan. */
#include <criterion/criterion.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

/* goscope_spin calls back the program's burn, which never returns: the return address into
 * the .so (kept by the frame pointer) is in every sample, the .so's code is not run again. */
static const char spin_c[] = "long goscope_spin(long (*burn)(void))\n"
			     "{\n"
			     "	return burn() + 1;\n"
			     "}\n";

/* Builds dir/libspin.so and checks that its symbol table lies past 12288 bytes (so that
 * truncating to 12288 removes it and keeps the code). */
static void build_so(const char *dir, char *so, size_t len)
{
	char src[256], cmd[1024], *out = NULL;
	Elf64_Ehdr eh;
	FILE *f;

	snprintf(src, sizeof(src), "%s/spin.c", dir);
	snprintf(so, len, "%s/libspin.so", dir);
	f = fopen(src, "w");
	cr_assert(f);
	fputs(spin_c, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "gcc -shared -fPIC -O1 -fno-omit-frame-pointer -fno-optimize-sibling-calls -o "
		 "'%s' '%s' 2>&1",
		 so, src);
	cr_assert_eq(run_capture(cmd, 1, &out, NULL), 0, "%s: %s", cmd, out);
	free(out);
	f = fopen(so, "rb");
	cr_assert(f);
	cr_assert_eq(fread(&eh, sizeof(eh), 1, f), 1);
	fclose(f);
	cr_assert_gt(eh.e_shoff, 12288, "section headers at %llu: the .so is too small",
		     (unsigned long long)eh.e_shoff);
}

static pid_t start_goscope(char *const argv[], const char *errpath)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The scenario with the .so truncated to size bytes mid-capture. */
static void truncated_so_case(off_t size)
{
	char path[4096], dir[64], so[256], prof[256], errpath[256], pidbuf[16], line[128];
	char cmd[2048], gobuf[256], *out = NULL, *log = NULL;
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	struct gotarget t;
	int rc;
	pid_t gs;

	GOTARGET_BUILD_OR_SKIP(path, "dlspin", "1.27", "cgo");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	build_so(dir, so, sizeof(so));
	snprintf(prof, sizeof(prof), "%s/cpu.pb.gz", dir);
	snprintf(errpath, sizeof(errpath), "%s/goscope.log", dir);
	{
		char *argv[] = {path, so, NULL};

		cr_assert_eq(gotarget_start(&t, path, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
	snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(),
				"cpu",
				"--pid",
				pidbuf,
				"--duration",
				"5s",
				"-o",
				prof,
				NULL};

		gs = start_goscope(argv, errpath);
	}
	/* goscope attaches and samples the program (burning CPU in Go): it has opened the
	 * process's binaries, the .so among them, when the file shrinks. */
	sleep(2);
	cr_assert_eq(truncate(so, size), 0);
	cr_assert_eq(write(t.stdin_fd, "go\n", 3), 3);
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "spinning");
	rc = wait_exit(gs);
	gotarget_stop(&t, 5000);
	snprintf(cmd, sizeof(cmd), "cat '%s'", errpath);
	run_capture(cmd, 1, &log, NULL);
	cr_assert_eq(rc, 0, "goscope exited with %d (%s) after the .so was truncated to %lld:\n%s",
		     rc, rc > 128 ? strsignal(rc - 128) : "status", (long long)size, log);
	free(log);
	cr_assert_eq(access(prof, R_OK), 0, "no profile written");
	if (!go)
		cr_skip_test("go1.27 not installed: profile not checked with pprof");
	snprintf(cmd, sizeof(cmd),
		 "HOME=/tmp PPROF_BINARY_PATH=/nonexistent %s tool pprof -symbolize=none -top "
		 "'%s' 2>&1",
		 go, prof);
	rc = run_capture(cmd, 0, &out, NULL);
	cr_assert_eq(rc, 0, "pprof: %s", out);
	cr_assert(strstr(out, "main.goSpin"), "the samples before the truncation are there:\n%s",
		  out);
	free(out);
}

Test(sigbus, so_truncated_to_12288_mid_capture, .timeout = 120)
{
	truncated_so_case(12288);
}

Test(sigbus, so_truncated_to_0_mid_capture, .timeout = 120)
{
	truncated_so_case(0);
}
