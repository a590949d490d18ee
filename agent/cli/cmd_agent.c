/* cmd_agent.c — `goscope agent`: flags and their environment equivalents, the log printer,
 * signals; the agent itself is agent/daemon/agent.c. Every flag has an environment variable
 * (GOSCOPE_ + the flag's name in capitals, dashes as underscores), read first, so that a
 * container's environment configures it and a flag overrides it. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "capture/core.h"
#include "capture/cpu_session.h"
#include "cli/cli.h"
#include "cli/text.h"
#include "daemon/agent.h"
#include "kube/kube.h"
#include "procs/labels.h"
#include "push/push_backoff.h"
#include "store/store.h"

#define DEFAULT_DATA_DIR "/var/lib/goscope"
#define DEFAULT_WINDOW_NS (10ULL * 1000000000ULL)
#define DEFAULT_FREQUENCY 99
#define DEFAULT_BLOCK_OVERHEAD 1.0
#define DEFAULT_RETENTION_NS (24LL * 3600 * 1000000000LL)
#define DEFAULT_MAX_DISK (1ULL << 30)
#define DEFAULT_ROLLUP_NS (3600LL * 1000000000LL)
#define MAX_PATTERNS 64
#define DEFAULT_K8S_PORT "443"
/* --push-header at most this many times. */
#define MAX_PUSH_HEADERS 32
#define MAX_PUSH_TIMEOUT_NS (3600ULL * 1000000000ULL)

enum {
	OPT_DATA_DIR = 256,
	OPT_WINDOW,
	OPT_FREQUENCY,
	OPT_BLOCK,
	OPT_BLOCK_INCLUDE,
	OPT_BLOCK_OVERHEAD,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_RETENTION,
	OPT_MAX_DISK,
	OPT_ROLLUP,
	OPT_NODE,
	OPT_VERBOSE,
	OPT_RESCAN,
	OPT_NO_EXEC_WATCH,
	OPT_KUBERNETES,
	OPT_K8S_POD_LABELS,
	OPT_K8S_API,
	OPT_K8S_SERVICE_ACCOUNT,
	OPT_LISTEN,
	OPT_TOKEN_FILE,
	OPT_MAX_CAPTURE,
	OPT_MAX_CAPTURES,
	OPT_HEAP,
	OPT_NO_HEAP,
	OPT_PUSH_URL,
	OPT_PUSH_TENANT,
	OPT_PUSH_BASIC_AUTH_FILE,
	OPT_PUSH_BEARER_TOKEN_FILE,
	OPT_PUSH_HEADER,
	OPT_PUSH_CA_FILE,
	OPT_PUSH_INSECURE,
	OPT_PUSH_CONNECT_TIMEOUT,
	OPT_PUSH_TIMEOUT,
	OPT_PUSH_MAX_BACKOFF,
	OPT_HELP,
};

/* One flag: its option code, long name, environment variable and help line. */
struct agent_flag {
	int code;
	const char *name;
	int has_arg;
	const char *env;
	const char *help;
};

static const struct agent_flag flags[] = {
	{OPT_DATA_DIR, "data-dir", required_argument, "GOSCOPE_DATA_DIR",
	 "where the store lives (default " DEFAULT_DATA_DIR ")"},
	{OPT_WINDOW, "window", required_argument, "GOSCOPE_WINDOW",
	 "profile length, aligned to wall-clock multiples (default 10s; 1s..1h)"},
	{OPT_FREQUENCY, "frequency", required_argument, "GOSCOPE_FREQUENCY",
	 "CPU samples per second per CPU (default 99)"},
	{OPT_BLOCK, "block", no_argument, "GOSCOPE_BLOCK",
	 "goroutine blocking profiles of every profiled process"},
	{OPT_BLOCK_INCLUDE, "block-include", required_argument, "GOSCOPE_BLOCK_INCLUDE",
	 "blocking profiles of the processes matching FIELD=GLOB (repeatable)"},
	{OPT_BLOCK_OVERHEAD, "block-max-overhead", required_argument, "GOSCOPE_BLOCK_MAX_OVERHEAD",
	 "blocking profiles' CPU cost, % of each target's own (default 1)"},
	{OPT_INCLUDE, "include", required_argument, "GOSCOPE_INCLUDE",
	 "profile only processes matching FIELD=GLOB (repeatable; comm=, exe=, module=, cgroup=)"},
	{OPT_EXCLUDE, "exclude", required_argument, "GOSCOPE_EXCLUDE",
	 "never profile processes matching FIELD=GLOB (repeatable), e.g. comm=kubelet"},
	{OPT_RETENTION, "retention", required_argument, "GOSCOPE_RETENTION",
	 "delete profiles older than this (default 24h; 0 = keep)"},
	{OPT_MAX_DISK, "max-disk", required_argument, "GOSCOPE_MAX_DISK",
	 "database + WAL at most this, oldest profiles deleted first (default 1GiB; 0 = no cap)"},
	{OPT_ROLLUP, "rollup-after", required_argument, "GOSCOPE_ROLLUP_AFTER",
	 "merge windows older than this into one profile per minute (default 1h; 0 = never)"},
	{OPT_NODE, "node", required_argument, "GOSCOPE_NODE",
	 "the node label (default $NODE_NAME, else the hostname)"},
	{OPT_RESCAN, "rescan", required_argument, "GOSCOPE_RESCAN",
	 "full /proc rescan period beside the exec watcher (default 30s)"},
	{OPT_NO_EXEC_WATCH, "no-exec-watch", no_argument, "GOSCOPE_NO_EXEC_WATCH",
	 "find new processes by rescans only (no BPF exec tracepoint)"},
	{OPT_KUBERNETES, "kubernetes", no_argument, "GOSCOPE_KUBERNETES",
	 "pod metadata from the Kubernetes API server (default: on when "
	 "KUBERNETES_SERVICE_HOST is set)"},
	{OPT_K8S_POD_LABELS, "k8s-pod-labels", required_argument, "GOSCOPE_K8S_POD_LABELS",
	 "pod labels copied into every profile, comma-separated (e.g. app,version)"},
	{OPT_K8S_API, "k8s-api", required_argument, "GOSCOPE_K8S_API",
	 "the API server (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)"},
	{OPT_K8S_SERVICE_ACCOUNT, "k8s-service-account", required_argument,
	 "GOSCOPE_K8S_SERVICE_ACCOUNT",
	 "directory with the token and ca.crt (default " KUBE_DEFAULT_SA_DIR ")"},
	{OPT_LISTEN, "listen", required_argument, "GOSCOPE_LISTEN",
	 "HTTP API address (default " API_DEFAULT_LISTEN "; off = no API; port 0 = any free)"},
	{OPT_TOKEN_FILE, "api-token-file", required_argument, "GOSCOPE_API_TOKEN_FILE",
	 "require 'Authorization: Bearer TOKEN' (needed off loopback)"},
	{OPT_MAX_CAPTURE, "max-capture", required_argument, "GOSCOPE_MAX_CAPTURE",
	 "longest on-demand capture; seconds= is capped to it (default 300s)"},
	{OPT_MAX_CAPTURES, "max-concurrent-captures", required_argument,
	 "GOSCOPE_MAX_CONCURRENT_CAPTURES", "on-demand captures at once; more get 429 (default 4)"},
	{OPT_HEAP, "heap", no_argument, "GOSCOPE_HEAP",
	 "a heap profile per process per window, read from its memory (default on)"},
	{OPT_NO_HEAP, "no-heap", no_argument, "GOSCOPE_NO_HEAP", "no heap profiles"},
	{OPT_VERBOSE, "verbose", no_argument, "GOSCOPE_VERBOSE",
	 "per-window summaries and libbpf's messages on stderr"},
	{OPT_PUSH_URL, "push-url", required_argument, "GOSCOPE_PUSH_URL",
	 "push every stored window to this Pyroscope base URL"},
	{OPT_PUSH_TENANT, "push-tenant", required_argument, "GOSCOPE_PUSH_TENANT",
	 "tenant ID, sent as X-Scope-OrgID"},
	{OPT_PUSH_BASIC_AUTH_FILE, "push-basic-auth-file", required_argument,
	 "GOSCOPE_PUSH_BASIC_AUTH_FILE", "file holding user:password for basic auth"},
	{OPT_PUSH_BEARER_TOKEN_FILE, "push-bearer-token-file", required_argument,
	 "GOSCOPE_PUSH_BEARER_TOKEN_FILE", "file holding a bearer token (read at each push)"},
	{OPT_PUSH_HEADER, "push-header", required_argument, "GOSCOPE_PUSH_HEADER",
	 "extra request header 'Name: value' (repeatable)"},
	{OPT_PUSH_CA_FILE, "push-ca-file", required_argument, "GOSCOPE_PUSH_CA_FILE",
	 "CA certificates (PEM) that verify the remote's TLS certificate"},
	{OPT_PUSH_INSECURE, "push-insecure-skip-verify", no_argument,
	 "GOSCOPE_PUSH_INSECURE_SKIP_VERIFY", "do not verify the remote's TLS certificate"},
	{OPT_PUSH_CONNECT_TIMEOUT, "push-connect-timeout", required_argument,
	 "GOSCOPE_PUSH_CONNECT_TIMEOUT", "push connection timeout (default 5s)"},
	{OPT_PUSH_TIMEOUT, "push-timeout", required_argument, "GOSCOPE_PUSH_TIMEOUT",
	 "whole push request timeout (default 30s)"},
	{OPT_PUSH_MAX_BACKOFF, "push-max-backoff", required_argument, "GOSCOPE_PUSH_MAX_BACKOFF",
	 "longest wait between retries of a failed push (default 5m; at least 1s)"},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

void usage_agent(FILE *out)
{
	fprintf(out,
		"usage: goscope agent [--data-dir DIR] [--window 10s] [--frequency 99] [--block]\n"
		"                     [--block-include GLOB]... [--block-max-overhead 1]\n"
		"                     [--include GLOB]... [--exclude GLOB]... [--retention 24h]\n"
		"                     [--max-disk 1GiB] [--rollup-after 1h] [--node NAME]\n"
		"                     [--listen 127.0.0.1:6061] [--api-token-file FILE]\n"
		"                     [--max-capture 300s] [--max-concurrent-captures 4] "
		"[--verbose]\n"
		"                     [--kubernetes] [--k8s-pod-labels LIST] [--k8s-api URL]\n"
		"                     [--k8s-service-account DIR]\n"
		"                     [--push-url URL [--push-tenant ID] [--push-header 'K: "
		"V']...\n"
		"                      [--push-basic-auth-file FILE | --push-bearer-token-file "
		"FILE]\n"
		"                      [--push-ca-file FILE] [--push-insecure-skip-verify]]\n\n"
		"Profile every Go process on the node continuously and keep the profiles in an\n"
		"embedded SQLite store (DIR/" STORE_DB_NAME
		"); `goscope export` reads them back as\n"
		"pprof. Ctrl-C/SIGTERM stores the current window and exits; a second one exits at\n"
		"once. Every flag can be set by its environment variable (flags win; repeatable\n"
		"ones take a comma-separated list there). GLOB: comm=, exe=, module= or cgroup=\n"
		"followed by an fnmatch(3) pattern. The HTTP API (--listen) serves on-demand\n"
		"captures (/pprof/cpu, /pprof/block), the stored profiles (/api/profiles,\n"
		"/api/profiles/merge), /api/processes, /metrics and /healthz. On Kubernetes\n"
		"(KUBERNETES_SERVICE_HOST set or --kubernetes), profiles are labelled with their\n"
		"pod: namespace, pod, container, workload and the --k8s-pod-labels.\n\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s", flags[i].name, flags[i].has_arg ? " X" : "");
		fprintf(out, "  %-24s %s\n  %-24s env %s\n", left, flags[i].help, "", flags[i].env);
	}
	fprintf(out, "  %-24s %s\n", "-h, --help", "show this help");
}

struct agent_opts {
	struct agent_config cfg;
	struct proc_filter *filter, *block_filter;
	bool verbose;
	uint64_t window_ns;
	char node[256];
	const char *node_flag;
	const char *cmd_err; /* the flag or variable being parsed, for messages */
	int kubernetes;	     /* -1: unset (on when KUBERNETES_SERVICE_HOST is set), 0 off, 1 on */
	struct kube_config kube;
	char *pod_labels_copy;
	const char *pod_labels[KUBE_MAX_POD_LABELS];
	char api_url[512];
	struct api_config api;
	unsigned port; /* the API's, once it listens */
	bool no_api;
	const char *token_file;
	char token[API_MAX_TOKEN];
	struct push_config push;
	char *push_headers[MAX_PUSH_HEADERS];
	size_t npush_headers;
};

/* Adds one 'Name: value' header (a name of token characters, no line breaks). */
static int add_push_header(struct agent_opts *o, const char *h)
{
	const char *colon = strchr(h, ':');

	if (!colon || colon == h || strpbrk(h, "\r\n") || strcspn(h, " \t") < (size_t)(colon - h))
		return -EINVAL;
	if (o->npush_headers == MAX_PUSH_HEADERS)
		return -E2BIG;
	o->push_headers[o->npush_headers] = strdup(h);
	if (!o->push_headers[o->npush_headers])
		return -ENOMEM;
	o->npush_headers++;
	return 0;
}

/* --push-header from the command line, or GOSCOPE_PUSH_HEADER's comma-separated list. */
static int add_push_headers(struct agent_opts *o, const char *v, bool split)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	if (!split)
		return add_push_header(o, v);
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		rc = add_push_header(o, tok);
	}
	free(copy);
	return rc;
}

static bool parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !*s) {
		*out = true;
		return true;
	}
	if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no")) {
		*out = false;
		return true;
	}
	return false;
}

static int add_patterns(struct proc_filter **f, bool include, const char *list, bool split)
{
	struct gs_error err = {0};
	char *copy, *save = NULL, *tok;
	int rc = 0;

	if (!*f && !(*f = proc_filter_new()))
		return -ENOMEM;
	if (!split)
		return proc_filter_add(*f, include, list, &err) < 0
			       ? (cli_error("agent", "%s", err.msg), -EINVAL)
			       : 0;
	copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		if (proc_filter_add(*f, include, tok, &err) < 0) {
			cli_error("agent", "%s", err.msg);
			rc = -EINVAL;
		}
	}
	free(copy);
	return rc;
}

/* --k8s-pod-labels app,version: the names (the last occurrence wins). */
static int parse_pod_labels(struct agent_opts *o, const char *list)
{
	char *save = NULL, *tok;

	free(o->pod_labels_copy);
	o->kube.npod_labels = 0;
	o->pod_labels_copy = strdup(list);
	if (!o->pod_labels_copy)
		return -ENOMEM;
	for (tok = strtok_r(o->pod_labels_copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->kube.npod_labels == KUBE_MAX_POD_LABELS) {
			cli_error("agent", "at most %d pod labels", KUBE_MAX_POD_LABELS);
			return -EINVAL;
		}
		if (strlen(tok) >= KUBE_LABEL_KEY_MAX) {
			cli_error("agent", "pod label name too long");
			return -EINVAL;
		}
		o->pod_labels[o->kube.npod_labels++] = tok;
	}
	o->kube.pod_labels = o->pod_labels;
	return 0;
}

/* Kubernetes pod metadata: on with --kubernetes (or --k8s-api), or when the agent runs in a pod
 * (the kubelet sets KUBERNETES_SERVICE_HOST) unless GOSCOPE_KUBERNETES=false. The API server is
 * --k8s-api, else https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT. 1 on, 0 off, -1
 * error. */
static int kube_setup(struct agent_opts *o)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	const char *node_env = getenv("NODE_NAME");
	bool asked = o->kubernetes > 0 || o->kube.api_url;

	if (o->kubernetes == 0 || (!asked && (!host || !*host)))
		return 0;
	/* The pods are this node's: without its name (the DaemonSet sets NODE_NAME from the
	 * downward API) the hostname would be the pod's own name and match no pod. */
	if (!(o->node_flag && *o->node_flag) && !(node_env && *node_env)) {
		if (asked) {
			cli_error("agent",
				  "Kubernetes pod metadata needs the node name: set NODE_NAME "
				  "or --node");
			return -1;
		}
		fprintf(stderr, "goscope agent: warning: KUBERNETES_SERVICE_HOST is set but "
				"NODE_NAME is not: no pod metadata (set NODE_NAME or --node)\n");
		return 0;
	}
	if (!o->kube.api_url) {
		if (!host || !*host) {
			cli_error("agent", "--kubernetes: KUBERNETES_SERVICE_HOST is not set (or "
					   "give --k8s-api)");
			return -1;
		}
		if (!port || !*port)
			port = DEFAULT_K8S_PORT;
		/* An IPv6 address goes in brackets. */
		snprintf(o->api_url, sizeof(o->api_url),
			 strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
		o->kube.api_url = o->api_url;
	}
	o->kube.node = o->node;
	return 1;
}

/* Applies one flag's value (from the command line, or from the environment with from_env). */
static int apply(struct agent_opts *o, const struct agent_flag *f, const char *v, bool from_env)
{
	const char *what = from_env ? f->env : f->name;
	struct agent_config *c = &o->cfg;
	uint64_t ns;
	char *end;
	bool b;

	switch (f->code) {
	case OPT_DATA_DIR:
		if (!*v)
			goto bad;
		c->data_dir = v;
		return 0;
	case OPT_WINDOW:
		if (!cli_parse_duration(v, &ns) || ns < AGENT_MIN_WINDOW_NS ||
		    ns > AGENT_MAX_WINDOW_NS)
			goto bad;
		c->window_ns = ns;
		return 0;
	case OPT_FREQUENCY: {
		unsigned long hz;

		errno = 0;
		hz = strtoul(v, &end, 10);
		if (errno || *end || hz == 0 || hz > 100000)
			goto bad;
		c->frequency = (unsigned)hz;
		return 0;
	}
	case OPT_BLOCK:
	case OPT_NO_EXEC_WATCH:
	case OPT_VERBOSE:
	case OPT_HEAP:
	case OPT_NO_HEAP:
	case OPT_PUSH_INSECURE:
		if (!from_env)
			b = true;
		else if (!parse_bool(v, &b))
			goto bad;
		if (f->code == OPT_BLOCK)
			c->block_all = b;
		else if (f->code == OPT_NO_EXEC_WATCH)
			c->no_exec_watch = b;
		else if (f->code == OPT_HEAP || f->code == OPT_NO_HEAP)
			c->heap = f->code == OPT_HEAP ? b : !b;
		else if (f->code == OPT_PUSH_INSECURE)
			o->push.insecure_skip_verify = b;
		else
			o->verbose = b;
		return 0;
	case OPT_PUSH_URL:
		if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
			goto bad;
		o->push.url = v;
		return 0;
	case OPT_PUSH_TENANT:
		if (!*v || strpbrk(v, "\r\n"))
			goto bad;
		o->push.tenant = v;
		return 0;
	case OPT_PUSH_BASIC_AUTH_FILE:
	case OPT_PUSH_BEARER_TOKEN_FILE:
	case OPT_PUSH_CA_FILE:
		if (!*v)
			goto bad;
		if (f->code == OPT_PUSH_BASIC_AUTH_FILE)
			o->push.basic_auth_file = v;
		else if (f->code == OPT_PUSH_BEARER_TOKEN_FILE)
			o->push.bearer_token_file = v;
		else
			o->push.ca_file = v;
		return 0;
	case OPT_PUSH_HEADER:
		if (add_push_headers(o, v, from_env) < 0)
			goto bad;
		return 0;
	case OPT_PUSH_MAX_BACKOFF:
		if (!cli_parse_duration(v, &ns) || ns < 1000000000ULL ||
		    ns > PUSH_BACKOFF_MAX_MS * 1000000ULL)
			goto bad;
		o->push.max_backoff_ms = ns / 1000000;
		return 0;
	case OPT_PUSH_CONNECT_TIMEOUT:
	case OPT_PUSH_TIMEOUT:
		if (!cli_parse_duration(v, &ns) || ns < 1000000ULL || ns > MAX_PUSH_TIMEOUT_NS)
			goto bad;
		if (f->code == OPT_PUSH_CONNECT_TIMEOUT)
			o->push.connect_timeout_ms = ns / 1000000;
		else
			o->push.timeout_ms = ns / 1000000;
		return 0;
	case OPT_BLOCK_INCLUDE:
		return add_patterns(&o->block_filter, true, v, from_env);
	case OPT_INCLUDE:
	case OPT_EXCLUDE:
		return add_patterns(&o->filter, f->code == OPT_INCLUDE, v, from_env);
	case OPT_BLOCK_OVERHEAD: {
		double pct;

		errno = 0;
		pct = strtod(v, &end);
		if (errno || *end || end == v || !(pct > 0) || pct > 100)
			goto bad;
		c->block_max_overhead_pct = pct;
		return 0;
	}
	case OPT_RETENTION:
	case OPT_ROLLUP:
		if (!cli_parse_duration(v, &ns) || ns > (uint64_t)INT64_MAX)
			goto bad;
		if (f->code == OPT_RETENTION)
			c->retention_ns = (int64_t)ns;
		else
			c->rollup_after_ns = (int64_t)ns;
		return 0;
	case OPT_RESCAN:
		if (!cli_parse_duration(v, &ns) || ns < 100000000ULL || ns > 3600000000000ULL)
			goto bad;
		c->rescan_ms = (unsigned)(ns / 1000000);
		return 0;
	case OPT_MAX_DISK:
		if (!cli_parse_size(v, &c->max_disk_bytes))
			goto bad;
		return 0;
	case OPT_NODE:
		o->node_flag = v;
		return 0;
	case OPT_KUBERNETES:
		if (!from_env)
			b = true;
		else if (!parse_bool(v, &b))
			goto bad;
		o->kubernetes = b;
		return 0;
	case OPT_K8S_POD_LABELS:
		return parse_pod_labels(o, v) < 0 ? -EINVAL : 0;
	case OPT_K8S_API:
		if (strncmp(v, "https://", 8) != 0)
			goto bad;
		o->kube.api_url = v;
		return 0;
	case OPT_K8S_SERVICE_ACCOUNT:
		if (!*v)
			goto bad;
		o->kube.sa_dir = v;
		return 0;
	case OPT_LISTEN:
		if (!strcmp(v, "off") || !strcmp(v, "none")) {
			o->no_api = true;
			return 0;
		}
		if (api_parse_listen_check(v) < 0)
			goto bad;
		o->no_api = false;
		o->api.listen = v;
		return 0;
	case OPT_TOKEN_FILE:
		if (!*v)
			goto bad;
		o->token_file = v;
		return 0;
	case OPT_MAX_CAPTURE:
		if (!cli_parse_duration(v, &ns) || ns < 1000000000ULL || ns > 86400000000000ULL)
			goto bad;
		o->api.max_capture_s = (unsigned)(ns / 1000000000ULL);
		return 0;
	case OPT_MAX_CAPTURES: {
		unsigned long n;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || end == v || n == 0 || n > CPU_SESSION_MAX_TAPS)
			goto bad;
		o->api.max_concurrent_captures = (unsigned)n;
		return 0;
	}
	}
bad:
	cli_error("agent", "bad %s%s value '%s'", from_env ? "" : "--", what, v);
	return -EINVAL;
}

static void print_log(void *arg, enum agent_log_level level, const char *msg)
{
	struct agent_opts *o = arg;
	char when[32];
	time_t t;
	struct tm tm;

	if (level == AGENT_LOG_DEBUG && !o->verbose)
		return;
	t = time(NULL);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
	fprintf(stderr, "%s goscope agent: %s%s\n", when, level == AGENT_LOG_ERROR ? "error: " : "",
		text_safe(msg));
}

static void print_ready(void *arg)
{
	struct agent_opts *o = arg;

	fprintf(stderr,
		"goscope agent: profiling every Go process; profiles go to %s/" STORE_DB_NAME
		" (one row per process and window).\n"
		"  list them:        goscope export --data-dir %s --list\n",
		text_safe(o->cfg.data_dir), text_safe(o->cfg.data_dir));
	if (o->port) {
		char host[128];

		api_url_host(o->api.listen, host, sizeof(host));
		fprintf(stderr,
			"  processes:        curl -s http://%s:%u/api/processes\n"
			"  last hour:        go tool pprof -http=: "
			"'http://%s:%u/api/profiles/merge?service=SERVICE&type=cpu&from=-1h'\n"
			"  30 s of CPU now:  go tool pprof -http=: "
			"'http://%s:%u/pprof/cpu?pid=PID&seconds=30'\n",
			host, o->port, host, o->port, host, o->port);
	} else {
		fprintf(stderr,
			"  last 15 minutes:  goscope export --data-dir %s --service SERVICE --type "
			"cpu --from -15m -o cpu.pb.gz && go tool pprof -http=: cpu.pb.gz\n",
			text_safe(o->cfg.data_dir));
	}
}

static void on_listen(void *arg, unsigned port)
{
	struct agent_opts *o = arg;

	o->port = port;
}

int cmd_agent(int argc, char **argv)
{
	struct option lopts[NFLAGS + 2];
	struct agent_opts o = {0};
	struct kube *kube = NULL;
	struct agent_stats st;
	struct gs_error err = {0};
	int c, rc;

	o.kubernetes = -1;
	o.cfg = (struct agent_config){.data_dir = DEFAULT_DATA_DIR,
				      .window_ns = DEFAULT_WINDOW_NS,
				      .frequency = DEFAULT_FREQUENCY,
				      .block_max_overhead_pct = DEFAULT_BLOCK_OVERHEAD,
				      .heap = true,
				      .retention_ns = DEFAULT_RETENTION_NS,
				      .max_disk_bytes = DEFAULT_MAX_DISK,
				      .rollup_after_ns = DEFAULT_ROLLUP_NS};
	o.api = (struct api_config){.listen = API_DEFAULT_LISTEN,
				    .max_capture_s = API_DEFAULT_MAX_CAPTURE_S,
				    .max_concurrent_captures = API_DEFAULT_MAX_CAPTURES};
	for (size_t i = 0; i < NFLAGS; i++) {
		const char *v = getenv(flags[i].env);

		lopts[i] = (struct option){flags[i].name, flags[i].has_arg, NULL, flags[i].code};
		if (v && apply(&o, &flags[i], v, true) < 0)
			goto usage;
	}
	lopts[NFLAGS] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[NFLAGS + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		const struct agent_flag *f = NULL;

		if (c == 'h') {
			usage_agent(stdout);
			rc = 0;
			goto out;
		}
		for (size_t i = 0; i < NFLAGS; i++) {
			if (flags[i].code == c)
				f = &flags[i];
		}
		if (!f) {
			cli_error("agent", "unknown option '%s'", argv[optind - 1]);
			goto usage;
		}
		if (apply(&o, f, optarg ? optarg : "", false) < 0)
			goto usage;
	}
	if (optind < argc) {
		cli_error("agent", "unexpected argument '%s'", argv[optind]);
		goto usage;
	}
	if (o.push.url && o.push.basic_auth_file && o.push.bearer_token_file) {
		cli_error("agent", "--push-basic-auth-file and --push-bearer-token-file exclude "
				   "each other");
		goto usage;
	}
	o.push.headers = (const char *const *)o.push_headers;
	o.push.nheaders = o.npush_headers;
	o.cfg.push = o.push.url ? &o.push : NULL;
	labels_node_name(o.node_flag, getenv("NODE_NAME"), o.node, sizeof(o.node));
	o.cfg.node = o.node;
	o.cfg.filter = o.filter;
	o.cfg.block_filter = o.block_filter;
	o.cfg.stop = &cli_stop_requested;
	o.cfg.verbose = o.verbose;
	o.cfg.log = print_log;
	o.cfg.log_arg = &o;
	o.cfg.on_ready = print_ready;
	o.cfg.on_listen = on_listen;
	if (!o.no_api) {
		if (o.token_file) {
			if (api_read_token_file(o.token_file, o.token, sizeof(o.token), &err) < 0) {
				cli_error("agent", "%s", err.msg);
				rc = 1;
				goto out;
			}
			o.api.token = o.token;
		}
		if (!o.api.token && !api_listen_is_loopback(o.api.listen)) {
			cli_error(
				"agent",
				"--listen %s is not a loopback address: refusing to serve profiles "
				"without --api-token-file",
				o.api.listen);
			rc = 1;
			goto out;
		}
		o.cfg.api = &o.api;
	}
	rc = kube_setup(&o);
	if (rc < 0)
		goto usage;
	if (rc > 0 && kube_open(&o.kube, &kube, &err) < 0) {
		cli_error("agent", "%s", err.msg);
		rc = 1;
		goto out;
	}
	o.cfg.kube = kube;
	capture_set_log(o.verbose ? cli_print_libbpf : NULL, (void *)"agent", false);
	cli_install_signals();
	rc = agent_run(&o.cfg, &st, &err);
	if (rc < 0) {
		cli_error("agent", "%s", err.msg);
		rc = 1;
	} else {
		fprintf(stderr,
			"goscope agent: stopped after %llu windows: %llu profiles stored, %llu "
			"dropped; %llu processes profiled, %llu samples (%llu lost)\n",
			(unsigned long long)st.windows, (unsigned long long)st.profiles_stored,
			(unsigned long long)st.profiles_dropped,
			(unsigned long long)st.processes_found, (unsigned long long)st.samples,
			(unsigned long long)st.sample_drops);
		if (o.cfg.push)
			fprintf(stderr,
				"goscope agent: push: %llu windows delivered, %llu dropped, %llu "
				"lost, %llu requests retried, %llu left to deliver\n",
				(unsigned long long)st.push.pushed,
				(unsigned long long)st.push.dropped,
				(unsigned long long)st.push.lost,
				(unsigned long long)st.push.retried,
				(unsigned long long)st.push.backlog_rows);
		rc = 0;
	}
out:
	proc_filter_free(o.filter);
	kube_close(kube);
	free(o.pod_labels_copy);
	proc_filter_free(o.block_filter);
	for (size_t i = 0; i < o.npush_headers; i++)
		free(o.push_headers[i]);
	return rc;
usage:
	rc = cli_usage_error(usage_agent);
	goto out;
}
