/* test_api.c — the agent's HTTP API end to end: the real agent (real BPF) profiling real Go
 * programs, asked with curl and `go tool pprof` exactly as a user would: on-demand CPU and
 * blocking captures, the stored profiles and their merge, /api/processes, /metrics (checked
 * by promtool), /healthz, every error answer, the bearer token and the refusal to listen off
 * loopback without one, a capture whose target exits, a client that hangs up mid-capture,
 * and 200 concurrent clients against the capture limit.
 *
 * The agent profiles every Go process on the host: the tests look only at their own pids. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"
#include "tests/helpers/seccomp_deny.h"

#define NCLIENTS 200
#define MAX_CAPTURES 4

static void start_target(struct gotarget *t, const char *program, char *const extra[])
{
	char path[512], why[512], line[256];
	char *argv[16] = {path};
	int i = 1;
	int rc = gotarget_build(program, "1.27", "default", path, sizeof(path), why, sizeof(why));

	if (rc == GOTARGET_SKIP)
		cr_skip_test("%s", why);
	cr_assert_eq(rc, 0, "building %s: %s", program, why);
	for (; extra && extra[i - 1] && i < 15; i++)
		argv[i] = extra[i - 1];
	argv[i] = NULL;
	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 20000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
}

static void start_agent(struct agentrun *a, const char *env, const char *args)
{
	char tmp[256], dir[300], why[8192];

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	cr_assert_eq(agentrun_start(a, env, dir, args, true, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(a->port, 0);
}

/* Waits until /api/processes lists pid (the agent found it). */
static void wait_profiled(struct agentrun *a, pid_t pid)
{
	char needle[64];
	uint64_t t0 = agentrun_mono_ms();

	snprintf(needle, sizeof(needle), "\"pid\":%d,", pid);
	for (;;) {
		char *body = NULL;
		bool found;

		cr_assert_eq(agentrun_http(a, "/api/processes", NULL, &body, NULL), 200);
		found = strstr(body, needle) != NULL;
		free(body);
		if (found)
			return;
		cr_assert_lt(agentrun_mono_ms() - t0, 15000, "pid %d never listed", pid);
		agentrun_sleep_ms(200);
	}
}

/* An error answer: the status and a JSON body {"error": "..."} whose message holds want. */
static void expect_error(struct agentrun *a, const char *path, const char *opts, int status,
			 const char *want)
{
	char *body = NULL;
	int code = agentrun_http(a, path, opts, &body, NULL);
	cJSON *j = cJSON_Parse(body), *e = cJSON_GetObjectItem(j, "error");

	cr_assert_eq(code, status, "%s: %d (want %d): %s", path, code, status, body);
	cr_assert(cJSON_IsString(e), "%s: not a JSON error: %s", path, body);
	if (want)
		cr_assert(strstr(e->valuestring, want), "%s: '%s' lacks '%s'", path, e->valuestring,
			  want);
	cJSON_Delete(j);
	free(body);
}

/* `go tool pprof -raw URL` (pprof fetches it itself): its output, malloc'd. */
static char *pprof_raw_url(const struct agentrun *a, const char *path)
{
	char go[512], cmd[2048], *out = NULL;
	size_t n;
	int rc;

	cr_assert(go_tool_path("1.27", go, sizeof(go)), "no go 1.27");
	snprintf(cmd, sizeof(cmd), "HOME=/tmp %s tool pprof -raw 'http://127.0.0.1:%u%s'", go,
		 a->port, path);
	rc = run_capture(cmd, 1, &out, &n);
	cr_assert_eq(rc, 0, "%s: %s", cmd, out);
	return out;
}

/* Every on-demand capture, stored profile, listing and metric, through curl and pprof. */
Test(api, endpoints, .timeout = 240)
{
	char *fast[] = {"-duration", "120s", NULL};
	char *blk[] = {"-duration", "120s", NULL};
	struct gotarget burn, blocker;
	struct agentrun a;
	char path[512], *body = NULL, *raw;
	cJSON *j;
	int code;

	start_target(&burn, "cpuburn", fast);
	start_target(&blocker, "blocker", blk);
	start_agent(&a, NULL, "--window 1s --retention 0 --rollup-after 0 --max-disk 0");
	wait_profiled(&a, burn.pid);
	wait_profiled(&a, blocker.pid);

	/* /healthz */
	code = agentrun_http(&a, "/healthz", NULL, &body, NULL);
	cr_assert_eq(code, 200, "%s", body);
	cr_assert_str_eq(body, "ok\n");
	free(body);

	/* /api/processes: labels and what is captured. */
	cr_assert_eq(agentrun_http(&a, "/api/processes", NULL, &body, NULL), 200);
	j = cJSON_Parse(body);
	cr_assert(cJSON_IsArray(j), "%s", body);
	{
		bool seen = false;
		cJSON *p;

		cJSON_ArrayForEach(p, j)
		{
			cJSON *lab = cJSON_GetObjectItem(p, "labels");
			cJSON *cap = cJSON_GetObjectItem(p, "capturing");

			if (cJSON_GetObjectItem(p, "pid")->valueint != burn.pid)
				continue;
			seen = true;
			cr_assert_str_eq(cJSON_GetObjectItem(lab, "service_name")->valuestring,
					 "cpuburn");
			cr_assert_str_eq(cJSON_GetObjectItem(lab, "comm")->valuestring, "cpuburn");
			cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cap, "cpu")));
			cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(cap, "block")));
		}
		cr_assert(seen, "cpuburn missing from %s", body);
	}
	cJSON_Delete(j);
	free(body);

	/* /pprof/cpu by pid, opened by go tool pprof itself. */
	snprintf(path, sizeof(path), "/pprof/cpu?pid=%d&seconds=2", burn.pid);
	raw = pprof_raw_url(&a, path);
	cr_assert(strstr(raw, "main.hot"), "no main.hot in the capture: %s", raw);
	cr_assert(!strstr(raw, "main.block"), "another process's samples: %s", raw);
	free(raw);
	/* by service: the samples carry the pid label */
	snprintf(path, sizeof(path), "/pprof/cpu?service=cpuburn&seconds=1");
	{
		char file[300], why[256];
		struct pprof_doc d;

		snprintf(file, sizeof(file), "%s.svc.pb.gz", a.dir);
		cr_assert_eq(agentrun_http_file(&a, path, NULL, file), 200);
		cr_assert_eq(pprof_decode_file(file, &d, why, sizeof(why)), 0, "%s", why);
		cr_assert_gt(d.nsamples, 0);
		pprof_doc_free(&d);
	}

	/* /pprof/block with the capture's own parameters. */
	snprintf(path, sizeof(path), "/pprof/block?pid=%d&seconds=2&max_overhead=100&min_delay=1ms",
		 blocker.pid);
	raw = pprof_raw_url(&a, path);
	cr_assert(strstr(raw, "main.block"), "no main.block* in the blocking capture: %s", raw);
	free(raw);

	/* Stored profiles: the listing, then the merge opened by pprof. */
	agentrun_sleep_ms(2500);
	snprintf(path, sizeof(path), "/api/profiles?service=cpuburn&type=cpu&from=-5m");
	cr_assert_eq(agentrun_http(&a, path, NULL, &body, NULL), 200);
	j = cJSON_Parse(body);
	cr_assert(cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0, "%s", body);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "type")->valuestring, "cpu");
	cJSON_Delete(j);
	free(body);
	snprintf(path, sizeof(path), "/api/profiles?service=cpuburn&label.pid=%d&limit=1",
		 burn.pid);
	cr_assert_eq(agentrun_http(&a, path, NULL, &body, NULL), 200);
	j = cJSON_Parse(body);
	cr_assert_eq(cJSON_GetArraySize(j), 1, "%s", body);
	cJSON_Delete(j);
	free(body);
	raw = pprof_raw_url(&a, "/api/profiles/merge?service=cpuburn&type=cpu&from=-1h");
	cr_assert(strstr(raw, "main.hot"), "merge lacks main.hot: %s", raw);
	free(raw);

	/* /metrics: promtool accepts it, and it counts what happened. */
	{
		char file[300], cmd[700], *out = NULL;
		size_t n;

		snprintf(file, sizeof(file), "%s.metrics", a.dir);
		cr_assert_eq(agentrun_http_file(&a, "/metrics", NULL, file), 200);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", file);
		cr_assert_eq(run_capture(cmd, 1, &out, &n), 0, "promtool: %s", out);
		free(out);
		body = agentrun_slurp(file);
		cr_assert(strstr(body, "goscope_processes_tracked "), "%s", body);
		cr_assert(strstr(body, "goscope_captures_total 3\n"), "%s", body);
		cr_assert(strstr(body, "process_open_fds "), "%s", body);
		cr_assert(strstr(body, "goscope_symbolizer_cache_hits_total "), "%s", body);
		free(body);
	}

	/* symbolz, where `go tool pprof URL` asks for the names of the frames a profile left
	 * unnamed (a 404 there fails its whole fetch: seen when a sample had an address no
	 * file backs): no names known, said as net/http/pprof says it. */
	{
		const char *const symbolz[] = {"/pprof/symbolz", "/api/profiles/symbolz",
					       "/api/symbolz"};
		char big[300], opts[400];
		size_t n;
		FILE *f;

		snprintf(big, sizeof(big), "%s.addrs", a.dir);
		f = fopen(big, "w");
		cr_assert_not_null(f);
		for (int i = 0; i < 100000; i++) /* 1.2 MB, more than the socket buffers */
			fprintf(f, "%s0x%08x", i ? "+" : "", 0x401000 + i);
		fclose(f);
		snprintf(opts, sizeof(opts), "--data-binary @%s", big);
		for (size_t i = 0; i < sizeof(symbolz) / sizeof(symbolz[0]); i++) {
			cr_assert_eq(agentrun_http(&a, symbolz[i], NULL, &body, NULL), 200);
			cr_assert_str_eq(body, "num_symbols: 0\n");
			free(body);
			cr_assert_eq(agentrun_http(&a, symbolz[i],
						   "--data-binary 0x401000+0x401010", &body, &n),
				     200);
			cr_assert_eq(n, 0, "%s", body);
			free(body);
			cr_assert_eq(agentrun_http(&a, symbolz[i], opts, &body, &n), 200);
			cr_assert_eq(n, 0, "%s", body);
			free(body);
		}
		expect_error(&a, "/pprof/symbolz", "-X DELETE", 405, NULL);
		unlink(big);
	}

	/* Every error answer. */
	expect_error(&a, "/nope", NULL, 404, "no such endpoint");
	expect_error(&a, "/healthz", "-X POST", 405, NULL);
	expect_error(&a, "/pprof/cpu?pid=abc", NULL, 400, "pid");
	expect_error(&a, "/pprof/cpu?pid=1&seconds=0", NULL, 400, "seconds");
	expect_error(&a, "/pprof/cpu?pid=1&seconds=x", NULL, 400, "seconds");
	expect_error(&a, "/pprof/cpu?pid=1&service=a", NULL, 400, "one of");
	expect_error(&a, "/pprof/cpu?pid=1&pid=2", NULL, 400, "twice");
	expect_error(&a, "/pprof/cpu?pid=1&color=red", NULL, 400, "unknown parameter");
	expect_error(&a, "/pprof/cpu", NULL, 400, "which process");
	expect_error(&a, "/pprof/cpu?pod=x", NULL, 400, "namespace");
	expect_error(&a, "/pprof/cpu?pid=%zz", NULL, 400, "percent");
	expect_error(&a, "/pprof/block?pid=1&max_overhead=200", NULL, 400, "max_overhead");
	expect_error(&a, "/pprof/block?pid=1&min_delay=fast", NULL, 400, "min_delay");
	snprintf(path, sizeof(path), "/pprof/cpu?pid=%d", getpid()); /* a C program: not Go */
	expect_error(&a, path, NULL, 404, "not a Go process");
	expect_error(&a, "/pprof/cpu?service=no-such-service", NULL, 404, "no profiled");
	expect_error(&a, "/api/profiles?from=yesterday", NULL, 400, "from");
	expect_error(&a, "/api/profiles?limit=0", NULL, 400, "limit");
	expect_error(&a, "/api/profiles/merge?service=no-such-service", NULL, 404, "no stored");
	expect_error(&a, "/api/processes?x=1", NULL, 400, "no parameters");
	{
		static char longp[6000];

		memset(longp, 'a', sizeof(longp) - 1);
		memcpy(longp, "/pprof/cpu?service=", 19);
		code = agentrun_http(&a, longp, NULL, NULL, NULL);
		cr_assert(code == 414 || code == 431, "a 6000-byte target: %d", code);
	}
	cr_assert_eq(kill(a.pid, 0), 0, "the agent died");
	cr_assert_eq(WEXITSTATUS(agentrun_stop(&a, SIGTERM, 10000)), 0);
	gotarget_stop(&burn, 5000);
	gotarget_stop(&blocker, 5000);
}

/* The bearer token (every request, constant-time compare) and the refusal to listen off
 * loopback without one. */
Test(api, token_and_listen, .timeout = 120)
{
	char tmp[256], tokf[300], dir[300], cmd[1024], args[600], why[8192], *out = NULL;
	struct agentrun a;
	size_t n;
	FILE *f;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	snprintf(cmd, sizeof(cmd), "%s agent --data-dir %s --listen 0.0.0.0:0", goscope_bin(), dir);
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 1, "%s", out);
	cr_assert(strstr(out, "--api-token-file"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "GOSCOPE_LISTEN=10.1.2.3:80 %s agent --data-dir %s",
		 goscope_bin(), dir);
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 1, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s agent --data-dir %s --listen nowhere", goscope_bin(), dir);
	cr_assert_eq(run_capture(cmd, 1, &out, &n), 2, "%s", out);
	free(out);

	snprintf(tokf, sizeof(tokf), "%s/token", tmp);
	f = fopen(tokf, "we");
	cr_assert(f);
	fputs("s3cret-token\n", f);
	fclose(f);
	snprintf(args, sizeof(args), "--listen 0.0.0.0:0 --api-token-file %s --window 1s", tokf);
	cr_assert_eq(agentrun_start(&a, NULL, dir, args, false, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(a.port, 0, "%s", why);
	expect_error(&a, "/healthz", NULL, 401, "token");
	expect_error(&a, "/metrics", "-H 'Authorization: Bearer s3cret-tokeN'", 401, "token");
	expect_error(&a, "/metrics", "-H 'Authorization: Bearer s3cret-token-and-more'", 401, NULL);
	expect_error(&a, "/nope", NULL, 401, NULL); /* paths are not told to strangers */
	{
		char *body = NULL;
		int code = agentrun_http(&a, "/metrics",
					 "-i -H 'Authorization: Bearer s3cret-token'", &body, NULL);

		cr_assert_eq(code, 200, "%s", body);
		free(body);
		code = agentrun_http(&a, "/healthz", "-i", &body, NULL);
		cr_assert_eq(code, 401);
		cr_assert(strstr(body, "WWW-Authenticate: Bearer"), "%s", body);
		free(body);
	}
	cr_assert_eq(WEXITSTATUS(agentrun_stop(&a, SIGTERM, 10000)), 0);
}

/* A target that exits during the capture: 200 with what was captured. A client that hangs
 * up mid-capture: the capture ends (its slot is free again at once). */
Test(api, target_exits_and_client_leaves, .timeout = 180)
{
	char *shortrun[] = {"-duration", "4s", NULL};
	char *longrun[] = {"-duration", "120s", NULL};
	struct gotarget burn, burn2;
	struct agentrun a;
	char path[256], file[300], why[256];
	struct pprof_doc d;
	uint64_t t0;

	start_agent(&a, NULL, "--window 1s --max-concurrent-captures 1");
	start_target(&burn, "cpuburn", shortrun);
	start_target(&burn2, "cpuburn", longrun);
	wait_profiled(&a, burn.pid);
	t0 = agentrun_mono_ms();
	snprintf(path, sizeof(path), "/pprof/cpu?pid=%d&seconds=10", burn.pid);
	snprintf(file, sizeof(file), "%s.exit.pb.gz", a.dir);
	cr_assert_eq(agentrun_http_file(&a, path, NULL, file), 200);
	cr_assert_eq(pprof_decode_file(file, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(d.nsamples, 0, "nothing of what ran before the exit");
	cr_assert_geq(agentrun_mono_ms() - t0, 9000, "answered before its time");
	pprof_doc_free(&d);
	gotarget_stop(&burn, 5000);

	/* Clients that give up after 1 s of a 60 s capture; with one capture allowed at once,
	 * each next one gets its slot only if the previous capture ended with its client. */
	wait_profiled(&a, burn2.pid);
	snprintf(path, sizeof(path), "/pprof/cpu?pid=%d&seconds=60", burn2.pid);
	for (int i = 0; i < 3; i++) {
		int code = agentrun_http_file(&a, path, "--max-time 1", "/dev/null");

		cr_assert_eq(code, 0, "round %d: the capture answered (%d) before its time", i,
			     code);
		t0 = agentrun_mono_ms();
		for (;;) {
			char *body = NULL;

			cr_assert_eq(agentrun_http(&a, "/metrics", NULL, &body, NULL), 200);
			if (strstr(body, "goscope_captures_running 0\n")) {
				free(body);
				break;
			}
			free(body);
			cr_assert_lt(agentrun_mono_ms() - t0, 3000,
				     "round %d: the capture goes on without its client", i);
			agentrun_sleep_ms(100);
		}
	}
	snprintf(path, sizeof(path), "/pprof/cpu?pid=%d&seconds=1", burn2.pid);
	cr_assert_eq(agentrun_http_file(&a, path, NULL, "/dev/null"), 200);
	cr_assert_eq(WEXITSTATUS(agentrun_stop(&a, SIGTERM, 10000)), 0);
	gotarget_stop(&burn2, 5000);
}

/* NCLIENTS clients at once: MAX_CAPTURES captures run, every other client gets 429 with
 * Retry-After; no crash; the agent's open descriptors come back to their level. */
Test(api, concurrent_clients, .timeout = 180)
{
	char *longrun[] = {"-duration", "120s", NULL};
	static int fds[NCLIENTS];
	static char resp[NCLIENTS][512];
	static size_t rlen[NCLIENTS];
	struct gotarget burn;
	struct agentrun a;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char req[256];
	int before, after = -1, ok = 0, busy = 0, retry = 0, other = 0, open_left = NCLIENTS;
	const char *other_resp = NULL;
	uint64_t t0;

	start_target(&burn, "cpuburn", longrun);
	start_agent(&a, NULL, "--window 1s --max-concurrent-captures 4");
	wait_profiled(&a, burn.pid);
	before = fd_count(a.pid, "");
	sin.sin_port = htons((uint16_t)a.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(req, sizeof(req),
		 "GET /pprof/cpu?pid=%d&seconds=8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		 burn.pid);
	for (int i = 0; i < NCLIENTS; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)), 0, "%s",
			     strerror(errno));
	}
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(write(fds[i], req, strlen(req)), (ssize_t)strlen(req));
	t0 = agentrun_mono_ms();
	while (open_left && agentrun_mono_ms() - t0 < 60000) {
		struct pollfd p[NCLIENTS];
		int np = 0, idx[NCLIENTS];

		for (int i = 0; i < NCLIENTS; i++) {
			if (fds[i] >= 0) {
				p[np] = (struct pollfd){.fd = fds[i], .events = POLLIN};
				idx[np++] = i;
			}
		}
		if (poll(p, (nfds_t)np, 1000) <= 0)
			continue;
		for (int k = 0; k < np; k++) {
			int i = idx[k];
			char buf[4096];
			ssize_t r;

			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(fds[i], buf, sizeof(buf));
			if (r > 0) {
				size_t room = sizeof(resp[i]) - 1 - rlen[i];
				size_t c = (size_t)r < room ? (size_t)r : room;

				memcpy(resp[i] + rlen[i], buf, c);
				rlen[i] += c;
				continue;
			}
			close(fds[i]);
			fds[i] = -1;
			open_left--;
		}
	}
	cr_assert_eq(open_left, 0, "%d clients never answered", open_left);
	for (int i = 0; i < NCLIENTS; i++) {
		if (!strncmp(resp[i], "HTTP/1.1 200", 12)) {
			ok++;
		} else if (!strncmp(resp[i], "HTTP/1.1 429", 12)) {
			busy++;
			retry += strstr(resp[i], "Retry-After: ") != NULL;
		} else {
			other++;
			if (!other_resp)
				other_resp = resp[i];
		}
	}
	cr_assert_eq(other, 0, "%d clients got neither 200 nor 429, e.g. '%.200s'", other,
		     other_resp);
	cr_assert_eq(ok, MAX_CAPTURES, "%d captures ran (limit %d), %d got 429", ok, MAX_CAPTURES,
		     busy);
	cr_assert_eq(busy, NCLIENTS - MAX_CAPTURES, "%d 429s", busy);
	cr_assert_eq(retry, busy, "429 without Retry-After");
	cr_assert_eq(kill(a.pid, 0), 0, "the agent died");
	t0 = agentrun_mono_ms();
	while (agentrun_mono_ms() - t0 < 5000 && (after = fd_count(a.pid, "")) > before)
		agentrun_sleep_ms(100);
	cr_assert_leq(after, before, "open fds %d after, %d before", after, before);
	cr_assert_eq(agentrun_http(&a, "/healthz", NULL, NULL, NULL), 200);
	cr_assert_eq(WEXITSTATUS(agentrun_stop(&a, SIGTERM, 10000)), 0);
	gotarget_stop(&burn, 5000);
}

/* BPF that cannot be loaded (bpf() refused by seccomp, as a container runtime's default
 * profile does): the agent keeps serving, /healthz answers 503 with the reason. */
Test(api, healthz_without_bpf, .timeout = 60)
{
	char tmp[200], dir[260], log[290], cmd[1024];
	struct agentrun a = {0};
	pid_t pid;
	uint64_t t0;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(dir, sizeof(dir), "%s/data", tmp);
	snprintf(log, sizeof(log), "%s.log", dir);
	snprintf(cmd, sizeof(cmd), "exec %s agent --data-dir %s --listen 127.0.0.1:0 2>%s",
		 goscope_bin(), dir, log);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (seccomp_deny_syscall(SYS_bpf) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	a.pid = pid;
	snprintf(a.log, sizeof(a.log), "%s", log);
	t0 = agentrun_mono_ms();
	while (!agentrun_log_has(&a, "BPF failed to load")) {
		cr_assert_lt(agentrun_mono_ms() - t0, 20000, "no BPF failure reported");
		cr_assert_eq(kill(pid, 0), 0, "the agent exited");
		agentrun_sleep_ms(50);
	}
	{
		char *text = agentrun_log(&a), *p = strstr(text, "(port "), *body = NULL;
		int code;

		cr_assert(p, "%s", text);
		a.port = (unsigned)strtoul(p + 6, NULL, 10);
		free(text);
		code = agentrun_http(&a, "/healthz", NULL, &body, NULL);
		cr_assert_eq(code, 503, "%s", body);
		cr_assert(strstr(body, "BPF failed to load"), "%s", body);
		free(body);
	}
	cr_assert_eq(WEXITSTATUS(agentrun_stop(&a, SIGTERM, 10000)), 0);
}
