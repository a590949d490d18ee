/* gotarget: build and run the Go test programs in tests/go (see gotarget.h). */
#include "gotarget.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const gotarget_toolchains[] = {"1.19", "1.21", "1.22", "1.23",
                                           "1.24", "1.26", "1.27", NULL};
const char *const gotarget_modes[] = {"default", "stripped", "pie", "static", "cgo", NULL};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_why(char *why, size_t why_len, const char *fmt, const char *a, const char *b)
{
	if (why && why_len)
		snprintf(why, why_len, fmt, a, b);
}

/* Read everything from fd into buf (NUL-terminated, truncated to len-1). */
static void read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char scratch[512];
	for (;;) {
		char *dst = n + 1 < len ? buf + n : scratch;
		size_t room = n + 1 < len ? len - 1 - n : sizeof(scratch);
		ssize_t r = read(fd, dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst == buf + n)
			n += (size_t)r;
	}
	if (len)
		buf[n < len ? n : len - 1] = '\0';
}

int gotarget_build(const char *program, const char *toolchain, const char *mode, char *path,
                   size_t path_len, char *why, size_t why_len)
{
	char root[4096], script[4096 + 32];
	const char *src = getenv("GOSCOPE_SRC_DIR");
	if (why && why_len)
		why[0] = '\0';
	if (src && *src)
		snprintf(root, sizeof(root), "%s", src);
	else if (!getcwd(root, sizeof(root))) {
		set_why(why, why_len, "getcwd: %s%s", strerror(errno), "");
		return -1;
	}
	snprintf(script, sizeof(script), "%s/tests/gobuild.sh", root);

	int outp[2], errp[2];
	if (pipe2(outp, O_CLOEXEC) < 0)
		return set_why(why, why_len, "pipe: %s%s", strerror(errno), ""), -1;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		close(outp[0]);
		close(outp[1]);
		return set_why(why, why_len, "pipe: %s%s", strerror(errno), ""), -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		set_why(why, why_len, "fork: %s%s", strerror(errno), "");
		close(outp[0]), close(outp[1]), close(errp[0]), close(errp[1]);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execl("/bin/bash", "bash", script, program, toolchain, mode, (char *)NULL);
		dprintf(2, "exec %s: %s\n", script, strerror(errno));
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	/* gobuild.sh prints only one short line on stdout; stderr may be long.
	 * Drain stderr first (stdout fits in the pipe buffer). */
	char errbuf[8192], outbuf[4096];
	read_all(errp[0], errbuf, sizeof(errbuf));
	read_all(outp[0], outbuf, sizeof(outbuf));
	close(outp[0]);
	close(errp[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			set_why(why, why_len, "waitpid: %s%s", strerror(errno), "");
			return -1;
		}
	}
	size_t el = strlen(errbuf);
	while (el && (errbuf[el - 1] == '\n' || errbuf[el - 1] == '\r'))
		errbuf[--el] = '\0';
	if (!WIFEXITED(st)) {
		set_why(why, why_len, "gobuild.sh killed by signal%s%s", "", "");
		return -1;
	}
	int rc = WEXITSTATUS(st);
	if (rc == 77) {
		set_why(why, why_len, "%s%s", errbuf[0] ? errbuf : "skipped: toolchain not installed", "");
		return GOTARGET_SKIP;
	}
	if (rc != 0) {
		if (why && why_len)
			snprintf(why, why_len, "gobuild.sh %s %s %s: exit %d: %s", program, toolchain, mode,
			         rc, errbuf);
		return -1;
	}
	size_t ol = strcspn(outbuf, "\r\n");
	outbuf[ol] = '\0';
	if (ol == 0) {
		set_why(why, why_len, "gobuild.sh printed no path%s%s", "", "");
		return -1;
	}
	if (ol + 1 > path_len) {
		set_why(why, why_len, "path buffer too small for %s%s", outbuf, "");
		return -1;
	}
	memcpy(path, outbuf, ol + 1);
	return 0;
}

int gotarget_start(struct gotarget *t, const char *path, char *const argv[])
{
	int in[2], out[2];
	memset(t, 0, sizeof(*t));
	t->pid = -1;
	t->stdin_fd = t->stdout_fd = -1;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0) {
		int e = errno;
		close(in[0]), close(in[1]);
		errno = e;
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* Restore default signal state for the Go runtime. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execv(path, argv);
		dprintf(2, "gotarget: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	t->pid = pid;
	t->stdin_fd = in[1];
	t->stdout_fd = out[0];
	t->out = NULL;
	t->rlen = 0;
	return 0;
}

int gotarget_read_line(struct gotarget *t, char *buf, size_t len, int timeout_ms)
{
	long long deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	int discarding = 0;
	size_t copied = 0;
	for (;;) {
		char *nl = memchr(t->rbuf, '\n', t->rlen);
		size_t take = nl ? (size_t)(nl - t->rbuf) : t->rlen;
		if (!discarding && len) {
			size_t room = len - 1 - copied;
			size_t c = take < room ? take : room;
			memcpy(buf + copied, t->rbuf, c);
			copied += c;
			buf[copied] = '\0';
		}
		if (nl) {
			size_t consumed = take + 1;
			memmove(t->rbuf, t->rbuf + consumed, t->rlen - consumed);
			t->rlen -= consumed;
			if (copied && buf[copied - 1] == '\r')
				buf[--copied] = '\0';
			/* An empty line returns 0 like EOF would; callers that care can
			 * distinguish via stdout_fd. */
			return (int)copied;
		}
		/* no newline yet: the buffered bytes were copied, drop them */
		t->rlen = 0;
		if (len && copied >= len - 1)
			discarding = 1;

		if (t->stdout_fd < 0)
			return copied ? (int)copied : 0;
		long long left = deadline - now_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = {.fd = t->stdout_fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = read(t->stdout_fd, t->rbuf, sizeof(t->rbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) /* EOF: return a final unterminated line, or 0 */
			return (int)copied;
		t->rlen = (size_t)n;
	}
}

int gotarget_stop(struct gotarget *t, int timeout_ms)
{
	int st = -1;
	if (t->stdin_fd >= 0) {
		close(t->stdin_fd);
		t->stdin_fd = -1;
	}
	if (t->pid > 0) {
		long long deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
		int reaped = 0;
		for (;;) {
			pid_t r = waitpid(t->pid, &st, WNOHANG);
			if (r == t->pid) {
				reaped = 1;
				break;
			}
			if (r < 0 && errno != EINTR) {
				st = -1;
				reaped = 1;
				break;
			}
			if (now_ms() >= deadline)
				break;
			struct timespec ts = {0, 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (!reaped) {
			kill(t->pid, SIGKILL);
			while (waitpid(t->pid, &st, 0) < 0) {
				if (errno != EINTR) {
					st = -1;
					break;
				}
			}
		}
		t->pid = -1;
	}
	if (t->out) {
		fclose(t->out);
		t->out = NULL;
		t->stdout_fd = -1;
	}
	if (t->stdout_fd >= 0) {
		close(t->stdout_fd);
		t->stdout_fd = -1;
	}
	return st;
}
