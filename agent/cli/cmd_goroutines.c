/* cmd_goroutines.c — `goscope goroutines`: every goroutine of a live Go process (without
 * stopping it unless --stop) or of a core file, as Go's debug=2 dump, JSON or a pprof
 * goroutine profile. The reading is agent/goruntime/goroutines.c; this file holds the
 * options, --stop (SIGSTOP / SIGCONT, with a keeper process that resumes the target if
 * goscope dies) and the text and JSON writers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/text.h"
#include "goruntime/coredump.h"
#include "goruntime/goroutines.h"
#include "procs/proc.h"
#include "profile/profile.h"
#include "profile/sink.h"

enum gformat { FMT_TEXT, FMT_JSON, FMT_PPROF };

void usage_goroutines(FILE *out)
{
	fprintf(out,
		"usage: goscope goroutines (--pid PID | --core CORE [--exe BINARY])\n"
		"                          [--format text|json|pprof] [--stop] [--system] [-o "
		"FILE]\n\n"
		"Every goroutine of a Go program (Go >= 1.17, stripped binaries included): its "
		"id,\n"
		"status and wait reason, for how long it has waited, its stack (inlined calls\n"
		"expanded), its creator and its pprof labels. A live process keeps running: each\n"
		"goroutine is validated and read again when it changed meanwhile (the header says\n"
		"how many never read the same twice); running goroutines have no stack then.\n\n"
		"  -p, --pid PID       a live process\n"
		"  -c, --core CORE     an ELF core file (kernel or gcore)\n"
		"  -e, --exe BINARY    the core's executable (default: its path in the core)\n"
		"  -f, --format FMT    text (Go's debug=2 dump, default), json, or pprof (gzip\n"
		"                      goroutine profile, as /debug/pprof/goroutine)\n"
		"  -s, --stop          stop the process (SIGSTOP) for an exact snapshot; it is\n"
		"                      resumed (SIGCONT) on every way out, SIGKILL of goscope "
		"included\n"
		"  -S, --system        show the runtime's own goroutines too (GOTRACEBACK=system)\n"
		"  -o, --output FILE   write there (default: stdout)\n"
		"  -h, --help          show this help\n");
}

/* ---- --stop: SIGSTOP now, SIGCONT on every way out ---- */

static pid_t stopped_pid;
static int keeper_fd = -1;
static pid_t keeper_pid;

static void resume(void)
{
	if (stopped_pid > 0) {
		kill(stopped_pid, SIGCONT);
		stopped_pid = 0;
	}
}

static void on_signal(int sig)
{
	resume();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The keeper: a child that sends SIGCONT to the target when goscope goes away however it
 * goes (its end of the pipe reads EOF when goscope exits, is killed, or crashes). */
static int start_keeper(pid_t target, struct gs_error *err)
{
	int p[2];
	pid_t k;

	if (pipe2(p, O_CLOEXEC) < 0)
		return gs_error_set(err, -errno, "pipe: %m");
	k = fork();
	if (k < 0) {
		close(p[0]);
		close(p[1]);
		return gs_error_set(err, -errno, "fork: %m");
	}
	if (k == 0) {
		char c;

		close(p[1]);
		prctl(PR_SET_NAME, "goscope-cont");
		for (int fd = 3; fd < 64; fd++) {
			if (fd != p[0])
				close(fd);
		}
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		kill(target, SIGCONT);
		_exit(0);
	}
	close(p[0]);
	keeper_fd = p[1];
	keeper_pid = k;
	return 0;
}

static void stop_keeper(void)
{
	if (keeper_fd >= 0) {
		close(keeper_fd);
		keeper_fd = -1;
		waitpid(keeper_pid, NULL, 0);
	}
}

/* Stops pid and waits (up to 2 s) until every thread is stopped. */
static int stop_target(pid_t pid, struct gs_error *err)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGSEGV, SIGBUS, SIGABRT};
	struct proc_stat st;
	int rc = start_keeper(pid, err);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	stopped_pid = pid;
	if (kill(pid, SIGSTOP) < 0) {
		stopped_pid = 0;
		return gs_error_set(err, -errno, "cannot stop pid %d: %m", (int)pid);
	}
	for (int i = 0; i < 200; i++) {
		if (proc_stat_read("/proc", pid, &st) < 0 || st.state == 'T' || st.state == 't')
			return 0;
		usleep(10000);
	}
	return gs_error_set(err, -ETIMEDOUT, "pid %d did not stop", (int)pid);
}

/* ---- text (Go's debug=2 dump) ---- */

/* Go quotes a label key or value unless it is [A-Za-z0-9./_]*. */
static void label_str(FILE *out, const char *s)
{
	bool quote = !*s;

	for (const char *p = s; *p && !quote; p++) {
		char ch = *p;

		quote = !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '/' || ch == '_');
	}
	if (!quote) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void text_goroutine(FILE *out, struct gr_dump *d, const struct gr_goroutine *g)
{
	struct gs_frame creator;

	fprintf(out, "goroutine %llu [%s", (unsigned long long)g->goid, text_safe(g->status_str));
	if (g->scan)
		fputs(" (scan)", out);
	if (g->wait_ns >= 60000000000ll)
		fprintf(out, ", %lld minutes", (long long)(g->wait_ns / 60000000000ll));
	if (g->locked)
		fputs(", locked to thread", out);
	fputs("]", out);
	if (g->nlabels) {
		fputs(" {", out);
		for (unsigned i = 0; i < g->nlabels; i++) {
			label_str(out, g->labels[i].key);
			fputs(": ", out);
			label_str(out, g->labels[i].value);
			if (i + 1 < g->nlabels)
				fputs(", ", out);
		}
		fputs("}", out);
	}
	fputs(":\n", out);
	if (g->crashing)
		fputs("\t(goscope: the thread that got the fatal signal)\n", out);
	if (g->no_stack)
		fputs("\tgoroutine running on other thread; stack unavailable\n", out);
	if (g->inconsistent)
		fputs("\tgoscope: goroutine changed on every read; stack unavailable\n", out);
	for (unsigned i = 0; i < g->npcs; i++) {
		const struct gs_frame *fr;
		int n = gr_dump_frames(d, g, i, &fr);

		if (n <= 0) {
			fprintf(out, "?()\n\t?:0 pc=0x%llx\n", (unsigned long long)g->pcs[i]);
			continue;
		}
		for (int k = 0; k < n; k++) {
			bool outer = k == n - 1;

			if (!gr_frame_shown(&fr[k]) &&
			    !(strcmp(fr[k].function, "runtime.gopanic") == 0 && (i > 0 || k > 0)))
				continue;
			fprintf(out, "%s(...)\n\t%s:%d",
				strcmp(fr[k].function, "runtime.gopanic") == 0
					? "panic"
					: text_safe(fr[k].function),
				text_safe(fr[k].file), fr[k].line);
			if (outer) {
				uint64_t off = gr_dump_pc_offset(d, g, i, &fr[k]);

				if (off)
					fprintf(out, " +0x%llx", (unsigned long long)off);
			}
			fputc('\n', out);
		}
	}
	if (g->truncated && g->npcs >= GR_MAX_FRAMES)
		fputs("...additional frames elided...\n", out);
	if (gr_dump_creator(d, g, &creator)) {
		fprintf(out, "created by %s", text_safe(creator.function));
		if (g->parent_goid)
			fprintf(out, " in goroutine %llu", (unsigned long long)g->parent_goid);
		fprintf(out, "\n\t%s:%d", text_safe(creator.file), creator.line);
		if (d->bias + creator.entry < g->gopc)
			fprintf(out, " +0x%llx",
				(unsigned long long)(g->gopc - d->bias - creator.entry));
		fputc('\n', out);
	}
}

struct out_ctx {
	struct gr_dump *d;
	enum gformat fmt;
	const char *what; /* "pid 4242" / "core PATH" */
	bool stopped;
	struct profile *prof;
};

static void summary(FILE *out, const struct out_ctx *c)
{
	fprintf(out,
		"goscope goroutines: %s, %s%s, %zu goroutines (%zu runtime goroutines not shown), "
		"%zu inconsistent, %zu unreadable%s\n",
		text_safe(c->what), text_safe(c->d->go_version),
		c->d->facts.measured ? "" : " (layout inferred)", c->d->n, c->d->nsystem_hidden,
		c->d->inconsistent, c->d->unreadable, c->stopped ? ", stopped while read" : "");
}

static void write_text(FILE *out, struct out_ctx *c)
{
	summary(out, c);
	for (size_t i = 0; i < c->d->n; i++) {
		fputc('\n', out);
		text_goroutine(out, c->d, &c->d->gs[i]);
	}
}

/* ---- JSON ---- */

static void json_frame(FILE *out, const struct gs_frame *f, uint64_t pc, uint64_t off, bool outer)
{
	fputs("{\"function\":", out);
	json_string(out, f->function);
	fputs(",\"file\":", out);
	json_string(out, f->file);
	fprintf(out, ",\"line\":%d,\"inlined\":%s,\"hidden\":%s", f->line,
		f->inlined ? "true" : "false", gr_frame_shown(f) ? "false" : "true");
	if (outer)
		fprintf(out, ",\"pc\":\"0x%llx\",\"offset\":%llu", (unsigned long long)pc,
			(unsigned long long)off);
	fputc('}', out);
}

static void json_goroutine(FILE *out, struct gr_dump *d, const struct gr_goroutine *g)
{
	struct gs_frame creator;
	bool firstf = true;

	fprintf(out, "{\"goid\":%llu,\"status\":", (unsigned long long)g->goid);
	json_string(out,
		    g->status <= GR_DEADEXTRA
			    ? (const char *[]){"idle", "runnable", "running", "syscall", "waiting",
					       "moribund", "dead", "enqueue", "copystack",
					       "preempted", "leaked", "deadextra"}[g->status]
			    : "unknown");
	fputs(",\"wait_reason\":", out);
	json_string(out, g->status == GR_WAITING || g->status == GR_LEAKED ? g->status_str : "");
	if (g->wait_ns >= 0)
		fprintf(out, ",\"wait_seconds\":%.3f", g->wait_ns / 1e9);
	fprintf(out,
		",\"locked_to_thread\":%s,\"system\":%s,\"inconsistent\":%s,\"stack_unavailable\":%"
		"s,"
		"\"crashing\":%s,\"truncated\":%s",
		g->locked ? "true" : "false", g->system ? "true" : "false",
		g->inconsistent ? "true" : "false", g->no_stack ? "true" : "false",
		g->crashing ? "true" : "false", g->truncated ? "true" : "false");
	if (g->tid)
		fprintf(out, ",\"thread\":%d", g->tid);
	fputs(",\"frames\":[", out);
	for (unsigned i = 0; i < g->npcs; i++) {
		const struct gs_frame *fr;
		int n = gr_dump_frames(d, g, i, &fr);

		for (int k = 0; k < n; k++) {
			if (!firstf)
				fputc(',', out);
			firstf = false;
			json_frame(out, &fr[k], g->pcs[i],
				   k == n - 1 ? gr_dump_pc_offset(d, g, i, &fr[k]) : 0, k == n - 1);
		}
		if (n <= 0) {
			if (!firstf)
				fputc(',', out);
			firstf = false;
			fprintf(out, "{\"function\":\"?\",\"pc\":\"0x%llx\"}",
				(unsigned long long)g->pcs[i]);
		}
	}
	fputc(']', out);
	if (gr_dump_creator(d, g, &creator)) {
		fputs(",\"created_by\":{\"function\":", out);
		json_string(out, creator.function);
		fputs(",\"file\":", out);
		json_string(out, creator.file);
		fprintf(out, ",\"line\":%d", creator.line);
		if (g->parent_goid)
			fprintf(out, ",\"goid\":%llu", (unsigned long long)g->parent_goid);
		fputc('}', out);
	}
	if (g->nlabels) {
		fputs(",\"labels\":{", out);
		for (unsigned i = 0; i < g->nlabels; i++) {
			if (i)
				fputc(',', out);
			json_string(out, g->labels[i].key);
			fputc(':', out);
			json_string(out, g->labels[i].value);
		}
		fputc('}', out);
	}
	if (g->labels_unreadable)
		fputs(",\"labels_unreadable\":true", out);
	fputc('}', out);
}

static void write_json(FILE *out, struct out_ctx *c)
{
	fputs("{\"target\":", out);
	json_string(out, c->what);
	fputs(",\"go_version\":", out);
	json_string(out, c->d->go_version);
	fprintf(out,
		",\"layout_measured\":%s,\"allgs_found_by\":\"%s\",\"allglen\":%zu,"
		"\"goroutines_count\":%zu,\"system_hidden\":%zu,\"inconsistent\":%zu,"
		"\"unreadable\":%zu,\"stopped\":%s,\"goroutines\":[",
		c->d->facts.measured ? "true" : "false", c->d->allgs_found_by, c->d->allglen,
		c->d->n, c->d->nsystem_hidden, c->d->inconsistent, c->d->unreadable,
		c->stopped ? "true" : "false");
	for (size_t i = 0; i < c->d->n; i++) {
		if (i)
			fputc(',', out);
		fputc('\n', out);
		json_goroutine(out, c->d, &c->d->gs[i]);
	}
	fputs("\n]}\n", out);
}

static int fill(int fd, void *arg, struct gs_error *err)
{
	struct out_ctx *c = arg;
	FILE *out;
	int nfd;

	if (c->fmt == FMT_PPROF)
		return profile_write_gzip(c->prof, fd, err);
	nfd = dup(fd);
	if (nfd < 0 || !(out = fdopen(nfd, "w"))) {
		if (nfd >= 0)
			close(nfd);
		return gs_error_set(err, -errno, "cannot write: %m");
	}
	if (c->fmt == FMT_JSON)
		write_json(out, c);
	else
		write_text(out, c);
	if (fclose(out) != 0)
		return gs_error_set(err, -EIO, "write error: %m");
	return 0;
}

int cmd_goroutines(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"core", required_argument, NULL, 'c'},
		{"exe", required_argument, NULL, 'e'},
		{"format", required_argument, NULL, 'f'},
		{"stop", no_argument, NULL, 's'},
		{"system", no_argument, NULL, 'S'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *core_path = NULL, *exe_path = NULL, *output = "-";
	struct gr_options o = {0};
	struct out_ctx c = {.fmt = FMT_TEXT};
	struct gs_symbolizer *sym = NULL;
	struct gs_process *proc = NULL;
	struct gs_binary *bin = NULL;
	struct gr_mem *mem = NULL;
	struct gr_core *core = NULL;
	struct gr_target t = {0};
	struct gs_error err = {0};
	bool stop = false;
	char what[600];
	int ch, pid = 0, rc = 1;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+p:c:e:f:sSo:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (!cli_parse_pid(optarg, &pid)) {
				cli_error("goroutines", "bad pid '%s'", optarg);
				return cli_usage_error(usage_goroutines);
			}
			break;
		case 'c':
			core_path = optarg;
			break;
		case 'e':
			exe_path = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "text") == 0)
				c.fmt = FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				c.fmt = FMT_JSON;
			else if (strcmp(optarg, "pprof") == 0)
				c.fmt = FMT_PPROF;
			else {
				cli_error("goroutines", "unknown format '%s'", optarg);
				return cli_usage_error(usage_goroutines);
			}
			break;
		case 's':
			stop = true;
			break;
		case 'S':
			o.system = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage_goroutines(stdout);
			return 0;
		default:
			cli_error("goroutines", "bad option '%s'", argv[optind - 1]);
			return cli_usage_error(usage_goroutines);
		}
	}
	if (optind < argc) {
		cli_error("goroutines", "unexpected argument '%s'", argv[optind]);
		return cli_usage_error(usage_goroutines);
	}
	if (!pid == !core_path) {
		cli_error("goroutines", "give one of --pid PID or --core CORE");
		return cli_usage_error(usage_goroutines);
	}
	if ((exe_path && !core_path) || (stop && core_path)) {
		cli_error("goroutines", "%s goes with %s only", exe_path ? "--exe" : "--stop",
			  exe_path ? "--core" : "--pid");
		return cli_usage_error(usage_goroutines);
	}
	if (gs_symbolizer_new(&sym, &err) < 0)
		goto fail;
	if (pid) {
		struct timespec ts;

		if (proc_check_target(pid, &err) < 0) {
			cli_error("goroutines", "%s", err.msg);
			gs_symbolizer_free(sym);
			return err.code == -EACCES || err.code == -EPERM ? 1 : EXIT_USAGE;
		}
		if (gs_process_open(sym, pid, &proc, &err) < 0)
			goto fail;
		bin = gs_process_main_binary(proc);
		if (!bin || !gs_binary_info(bin)->is_go) {
			gs_error_set(&err, -ENOEXEC, "pid %d is not a Go program", pid);
			goto fail;
		}
		if (gs_process_load_bias(proc, bin, &t.bias) < 0) {
			gs_error_set(&err, -ENOENT,
				     "cannot find the executable's mapping in pid %d", pid);
			goto fail;
		}
		if (gr_mem_open_pid(pid, &mem, &err) < 0)
			goto fail;
		if (stop && stop_target(pid, &err) < 0)
			goto fail;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t.now_ns = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
		t.frozen = stop;
		snprintf(what, sizeof(what), "pid %d", pid);
	} else {
		const char *path = exe_path;
		size_t nth;

		if (gr_core_open(core_path, &core, &err) < 0)
			goto fail;
		if (!path && gr_core_exe_path(core, &path) < 0) {
			gs_error_set(
				&err, -ENOENT,
				"the core does not name its executable (no NT_FILE): use --exe");
			goto fail;
		}
		if (gs_binary_open(path, &bin, &err) < 0) {
			gs_error_prefix(&err, "the core's executable%s",
					exe_path ? "" : " (use --exe)");
			goto fail;
		}
		if (!gs_binary_info(bin)->is_go) {
			gs_error_set(&err, -ENOEXEC, "%s is not a Go program", path);
			goto fail;
		}
		if (gr_core_set_exe(core, bin, &t.bias, &err) < 0)
			goto fail;
		mem = gr_core_mem(core);
		t.threads = gr_core_threads(core, &nth);
		t.nthreads = nth;
		t.frozen = true;
		snprintf(what, sizeof(what), "core %s", core_path);
	}
	t.mem = mem;
	t.bin = bin;
	rc = gr_dump_read(&t, &o, &c.d, &err);
	if (stop) {
		resume();
		stop_keeper();
	}
	if (rc < 0) {
		rc = 1;
		goto fail;
	}
	c.what = what;
	c.stopped = stop;
	if (c.fmt == FMT_PPROF && gr_dump_profile(c.d, &c.prof, &err) < 0)
		goto fail;
	if (sink_write_file(output, fill, &c, &err) < 0)
		goto fail;
	/* the summary on stderr too, when the output is not text on a terminal */
	if (c.fmt != FMT_TEXT || strcmp(output, "-") != 0)
		summary(stderr, &c);
	rc = 0;
	goto out;
fail:
	cli_error("goroutines", "%s", err.msg);
	rc = 1;
out:
	if (stop) {
		resume();
		stop_keeper();
	}
	profile_free(c.prof);
	gr_dump_free(c.d);
	if (core) {
		gr_core_close(core);
		if (bin)
			gs_binary_close(bin);
	} else {
		gr_mem_close(mem);
	}
	if (proc)
		gs_process_close(proc);
	if (sym)
		gs_symbolizer_free(sym);
	return rc;
}
