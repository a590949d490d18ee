/* gotarget: build and run the Go test programs in tests/go from C tests.
 *
 * Plain C (gnu11); no Criterion dependency. If <criterion/criterion.h> is
 * included before this header, GOTARGET_BUILD_OR_SKIP is available too.
 */
#ifndef GOSCOPE_TESTS_GOTARGET_H
#define GOSCOPE_TESTS_GOTARGET_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define GOTARGET_SKIP 1

/* Toolchains and modes, NULL-terminated lists. */
extern const char *const gotarget_toolchains[]; /* "1.19", ..., "1.27" */
extern const char *const gotarget_modes[];      /* "default","stripped","pie","static","cgo" */

/* Build tests/go/PROGRAM with tests/gobuild.sh. Returns 0 and fills path,
 * GOTARGET_SKIP if the toolchain is not installed (reason in why), or -1 on
 * failure (reason in why). The repo root is GOSCOPE_SRC_DIR or, if unset, the
 * current directory. GOSCOPE_BUILD_DIR is passed through to gobuild.sh. */
int gotarget_build(const char *program, const char *toolchain, const char *mode, char *path,
                   size_t path_len, char *why, size_t why_len);

struct gotarget {
	pid_t pid;
	int stdin_fd;  /* write end of the target's stdin, -1 once closed */
	int stdout_fd; /* read end of the target's stdout */
	FILE *out;     /* unused by the helpers (kept NULL); reserved for callers */
	/* internal line buffer for gotarget_read_line */
	char rbuf[4096];
	size_t rlen;
};

/* Start an executable with argv (argv[0] = path), stdin and stdout as pipes,
 * stderr inherited. Returns 0 or -1 (errno set). */
int gotarget_start(struct gotarget *t, const char *path, char *const argv[]);

/* Read one line from the target's stdout with a timeout; returns length, 0 on
 * EOF, -1 on timeout/error. Strips the newline. A line longer than len-1 is
 * truncated (the rest of it is discarded). */
int gotarget_read_line(struct gotarget *t, char *buf, size_t len, int timeout_ms);

/* Close stdin, wait up to timeout_ms for exit, then SIGKILL; returns exit
 * status like waitpid's or -1. */
int gotarget_stop(struct gotarget *t, int timeout_ms);

#ifdef CRITERION_H_
/* Build or skip the current Criterion test; fails the test on build errors.
 * PATH must be a char array. */
#define GOTARGET_BUILD_OR_SKIP(PATH, PROGRAM, TOOLCHAIN, MODE)                                   \
	do {                                                                                       \
		char gotarget_why_[1024];                                                          \
		int gotarget_rc_ = gotarget_build((PROGRAM), (TOOLCHAIN), (MODE), (PATH),          \
		                                  sizeof(PATH), gotarget_why_,                     \
		                                  sizeof(gotarget_why_));                          \
		if (gotarget_rc_ == GOTARGET_SKIP)                                                 \
			cr_skip_test("%s", gotarget_why_);                                         \
		cr_assert_eq(gotarget_rc_, 0, "building %s go%s %s: %s", (PROGRAM), (TOOLCHAIN), \
		             (MODE), gotarget_why_);                                               \
	} while (0)
#endif

#endif
