/* agentrun.h — a real `goscope agent` run from integration tests: started in the background
 * with its log in a file, its HTTP API on a free loopback port (so that tests and parallel
 * runs never fight over 6061), reached with curl. Plain C, no Criterion. */
#ifndef GOSCOPE_TESTS_AGENTRUN_H
#define GOSCOPE_TESTS_AGENTRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENTRUN_READY_MS 30000

struct agentrun {
	pid_t pid;
	unsigned port; /* the API's (0 with --listen off) */
	char dir[256];
	char log[300];
};

/* Starts `[env] goscope agent --data-dir DIR --listen 127.0.0.1:0 ARGS` (ARGS may override
 * --listen) with stderr in DIR.log, and waits until it profiles (ready line) or, with
 * wait_ready false, until its API listens. 0, or -1 with the reason (and the log) in why. */
int agentrun_start(struct agentrun *a, const char *env, const char *dir, const char *args,
		   bool wait_ready, char *why, size_t why_len);
/* Sends sig and waits up to timeout_ms: the exit status (waitpid's), -1 on timeout (then
 * killed). */
int agentrun_stop(struct agentrun *a, int sig, int timeout_ms);
/* The agent's log so far (malloc'd). */
char *agentrun_log(const struct agentrun *a);
bool agentrun_log_has(const struct agentrun *a, const char *needle);

/* GET (or curl_opts' method) http://127.0.0.1:PORT/PATH with curl: the HTTP status (0 when
 * curl could not connect or timed out), the body in *body (malloc'd, NUL-terminated; may be
 * NULL) and, with headers, the response headers too (curl -i). */
int agentrun_http(const struct agentrun *a, const char *path, const char *curl_opts, char **body,
		  size_t *len);
/* Same, the body saved to file. */
int agentrun_http_file(const struct agentrun *a, const char *path, const char *curl_opts,
		       const char *file);

uint64_t agentrun_mono_ms(void);
void agentrun_sleep_ms(int ms);
char *agentrun_slurp(const char *path);

#endif
