/* agentrun.c — see agentrun.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/agentrun.h"
#include "tests/helpers/run.h"

uint64_t agentrun_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agentrun_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

char *agentrun_slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, n > 0 ? (size_t)n + 1 : 1);
	if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf ? buf : strdup("");
}

char *agentrun_log(const struct agentrun *a)
{
	return agentrun_slurp(a->log);
}

bool agentrun_log_has(const struct agentrun *a, const char *needle)
{
	char *text = agentrun_log(a);
	bool found = strstr(text, needle) != NULL;

	free(text);
	return found;
}

int agentrun_start(struct agentrun *a, const char *env, const char *dir, const char *args,
		   bool wait_ready, char *why, size_t why_len)
{
	char cmd[4096];
	uint64_t t0;
	pid_t parent;

	memset(a, 0, sizeof(*a));
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(a->log, sizeof(a->log), "%s.log", dir);
	unlink(a->log);
	snprintf(cmd, sizeof(cmd), "exec env %s %s agent --data-dir %s --listen 127.0.0.1:0 %s",
		 env ? env : "", goscope_bin(), dir, args ? args : "");
	parent = getpid();
	a->pid = fork();
	if (a->pid < 0) {
		snprintf(why, why_len, "fork: %s", strerror(errno));
		return -1;
	}
	if (a->pid == 0) {
		int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		/* A test that fails (its process exits at the assertion) must not leave an agent
		 * profiling the host: the agent is killed with its test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(fd, 2);
		dup2(null, 1);
		dup2(null, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	t0 = agentrun_mono_ms();
	for (;;) {
		char *text = agentrun_log(a), *p;
		int st;

		if ((p = strstr(text, "(port ")))
			a->port = (unsigned)strtoul(p + 6, NULL, 10);
		if (strstr(text, "API on") && !a->port)
			a->port = 0;
		if ((wait_ready && strstr(text, "profiling every Go process")) ||
		    (!wait_ready && (a->port || strstr(text, "BPF failed")))) {
			free(text);
			return 0;
		}
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			snprintf(why, why_len, "agent exited (status %d): %s", st, text);
			free(text);
			a->pid = 0;
			return -1;
		}
		if (agentrun_mono_ms() - t0 > AGENTRUN_READY_MS) {
			snprintf(why, why_len, "agent not ready after %d ms: %s", AGENTRUN_READY_MS,
				 text);
			free(text);
			agentrun_stop(a, SIGKILL, 5000);
			return -1;
		}
		free(text);
		agentrun_sleep_ms(50);
	}
}

int agentrun_stop(struct agentrun *a, int sig, int timeout_ms)
{
	uint64_t t0 = agentrun_mono_ms();
	int st;

	if (a->pid <= 0)
		return -1;
	kill(a->pid, sig);
	while (agentrun_mono_ms() - t0 < (uint64_t)timeout_ms) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = 0;
			return st;
		}
		agentrun_sleep_ms(20);
	}
	kill(a->pid, SIGKILL);
	waitpid(a->pid, &st, 0);
	a->pid = 0;
	return -1;
}

int agentrun_http_file(const struct agentrun *a, const char *path, const char *curl_opts,
		       const char *file)
{
	char cmd[8192], *out = NULL;
	size_t n;
	int code;

	snprintf(cmd, sizeof(cmd), "curl -s -o '%s' -w '%%{http_code}' %s 'http://127.0.0.1:%u%s'",
		 file, curl_opts ? curl_opts : "", a->port, path);
	run_capture(cmd, 0, &out, &n);
	code = out ? atoi(out) : 0;
	free(out);
	return code;
}

int agentrun_http(const struct agentrun *a, const char *path, const char *curl_opts, char **body,
		  size_t *len)
{
	char file[] = "/tmp/goscope-http-XXXXXX";
	int fd = mkstemp(file), code;

	if (fd < 0)
		return 0;
	close(fd);
	code = agentrun_http_file(a, path, curl_opts, file);
	if (body) {
		*body = agentrun_slurp(file);
		if (len)
			*len = strlen(*body);
	}
	unlink(file);
	return code;
}
