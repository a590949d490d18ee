/* symbolizer_bench.c — driver for the symbolizer benchmarks (tests/bench/run.sh).
 *
 *   symbolizer_bench gen BINARY N SEED PCFILE [text|func]
 *       N pseudo-random PCs (xorshift64*, fixed SEED), written one "0x..." a line, so goscope
 *       and the Go debug/gosym program use the same PCs. "text" (the default): uniform in the
 *       binary's text range (so big functions get most PCs, as in a flat CPU profile of all
 *       code); "func": a uniformly chosen function, then a uniform offset inside it.
 *   symbolizer_bench lookup BINARY PCFILE MIN_SECONDS
 *       Times gs_binary_symbolize over the PCs, with full inline expansion and with
 *       GS_LOOKUP_NO_INLINE, repeating the whole list until MIN_SECONDS passed (after one
 *       untimed warm-up pass). Prints "lookup mode=... lookups=... seconds=... per_sec=...",
 *       and first, as mode=inline-first-pass, one timed pass with inlines on the freshly
 *       opened binary (before anything is indexed).
 *       Also prints "check found=... hash=..." over the outermost function, file and line of
 *       each PC (as debug/gosym reports them) for a cross-check with the Go program.
 *   symbolizer_bench first BINARY PC
 *       Opens BINARY and symbolizes one PC (with inlines); prints the time from entering main
 *       to the answer and the peak RSS (VmHWM, ru_maxrss) of this process.
 *   symbolizer_bench exec CMD [ARG...]
 *       Runs CMD (stdin inherited, stdout to stderr), prints "exec wall_ms=... maxrss_kb=..."
 *       for the whole child process tree (wait4 rusage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "goscope/symbolizer.h"

#define MAX_FRAMES 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long status_kb(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static struct gs_binary *open_or_die(const char *path)
{
	struct gs_error err = {0};
	struct gs_binary *bin;

	if (gs_binary_open(path, &bin, &err) < 0) {
		fprintf(stderr, "symbolizer_bench: %s\n", err.msg);
		exit(1);
	}
	return bin;
}

struct func_list {
	uint64_t (*r)[2];
	size_t n, cap;
};

static int add_func(void *ctx, const char *name, uint64_t entry, uint64_t end)
{
	struct func_list *l = ctx;

	(void)name;
	if (end <= entry)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		l->r = realloc(l->r, l->cap * sizeof(*l->r));
		if (!l->r)
			exit(1);
	}
	l->r[l->n][0] = entry;
	l->r[l->n][1] = end;
	l->n++;
	return 0;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

static int cmd_gen(int argc, char **argv)
{
	const struct gs_binary_info *info;
	struct func_list funcs = {0};
	struct gs_binary *bin;
	uint64_t n, x, span;
	bool by_func;
	FILE *out;

	if (argc != 6 && argc != 7)
		return 2;
	by_func = argc == 7 && strcmp(argv[6], "func") == 0;
	if (argc == 7 && !by_func && strcmp(argv[6], "text") != 0)
		return 2;
	bin = open_or_die(argv[2]);
	info = gs_binary_info(bin);
	n = strtoull(argv[3], NULL, 0);
	x = strtoull(argv[4], NULL, 0) | 1;
	if (info->text_end <= info->text_start) {
		fprintf(stderr, "symbolizer_bench: %s: no text range\n", argv[2]);
		return 1;
	}
	span = info->text_end - info->text_start;
	if (by_func && (gs_binary_foreach_function(bin, add_func, &funcs) < 0 || !funcs.n)) {
		fprintf(stderr, "symbolizer_bench: %s: no functions\n", argv[2]);
		return 1;
	}
	out = fopen(argv[5], "w");
	if (!out) {
		perror(argv[5]);
		return 1;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pc;

		if (by_func) {
			const uint64_t *f = funcs.r[xorshift(&x) % funcs.n];

			pc = f[0] + xorshift(&x) % (f[1] - f[0]);
		} else {
			pc = info->text_start + xorshift(&x) % span;
		}
		fprintf(out, "0x%" PRIx64 "\n", pc);
	}
	free(funcs.r);
	if (fclose(out) != 0) {
		perror(argv[5]);
		return 1;
	}
	fprintf(stderr, "gen: %" PRIu64 " PCs (%s) in [0x%" PRIx64 ", 0x%" PRIx64 ") of %s\n", n,
		by_func ? "by function" : "uniform in text", info->text_start, info->text_end,
		argv[2]);
	gs_binary_close(bin);
	return 0;
}

static uint64_t *read_pcs(const char *path, size_t *n)
{
	size_t cap = 1 << 16, len = 0;
	uint64_t *pcs = malloc(cap * sizeof(*pcs));
	char line[64];
	FILE *f = fopen(path, "r");

	if (!f || !pcs) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		if (len == cap) {
			cap *= 2;
			pcs = realloc(pcs, cap * sizeof(*pcs));
			if (!pcs)
				exit(1);
		}
		pcs[len++] = strtoull(line, NULL, 0);
	}
	fclose(f);
	*n = len;
	return pcs;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int cmd_lookup(int argc, char **argv)
{
	static struct gs_frame frames[MAX_FRAMES];
	static const struct {
		const char *name;
		unsigned flags;
	} modes[] = {{"inline", 0}, {"noinline", GS_LOOKUP_NO_INLINE}};
	struct gs_error err = {0};
	struct gs_binary *bin;
	double t0, min_s, open_s;
	uint64_t *pcs, hash = 0xcbf29ce484222325ULL;
	size_t n, found = 0;

	if (argc != 5)
		return 2;
	min_s = strtod(argv[4], NULL);
	pcs = read_pcs(argv[3], &n);
	t0 = now_s();
	bin = open_or_die(argv[2]);
	open_s = now_s() - t0;
	printf("open seconds=%.6f\n", open_s);

	/* The first pass over the PCs on the fresh binary: nothing cached or indexed yet (the
	 * skip index over long pcvalue tables is built during this pass). */
	t0 = now_s();
	for (size_t i = 0; i < n; i++)
		gs_binary_symbolize(bin, pcs[i], 0, frames, MAX_FRAMES, &err);
	{
		double el = now_s() - t0;

		printf("lookup mode=inline-first-pass lookups=%zu seconds=%.6f per_sec=%.0f\n", n, el,
		       el > 0 ? n / el : 0);
	}

	/* Cross-check: outermost function, file and line as debug/gosym reports them. */
	for (size_t i = 0; i < n; i++) {
		int k = gs_binary_symbolize(bin, pcs[i], GS_LOOKUP_NO_INLINE, frames, MAX_FRAMES,
					    &err);
		char num[24];

		if (k > 0 && frames[0].go) {
			found++;
			hash = fnv(hash, frames[0].raw_function, strlen(frames[0].raw_function) + 1);
			hash = fnv(hash, frames[0].raw_file, strlen(frames[0].raw_file) + 1);
			snprintf(num, sizeof(num), "%d\n", frames[0].raw_line);
		} else {
			snprintf(num, sizeof(num), "-\n");
		}
		hash = fnv(hash, num, strlen(num));
	}
	printf("check pcs=%zu found=%zu hash=%016" PRIx64 "\n", n, found, hash);

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		uint64_t lookups = 0, nframes = 0;
		double el;

		for (size_t i = 0; i < n; i++) /* warm-up */
			gs_binary_symbolize(bin, pcs[i], modes[m].flags, frames, MAX_FRAMES, &err);
		t0 = now_s();
		do {
			for (size_t i = 0; i < n; i++) {
				int k = gs_binary_symbolize(bin, pcs[i], modes[m].flags, frames,
							    MAX_FRAMES, &err);
				if (k < 0) {
					fprintf(stderr, "symbolizer_bench: 0x%" PRIx64 ": %s\n",
						pcs[i], err.msg);
					return 1;
				}
				nframes += (uint64_t)k;
			}
			lookups += n;
			el = now_s() - t0;
		} while (el < min_s);
		printf("lookup mode=%s lookups=%" PRIu64 " frames=%" PRIu64
		       " seconds=%.6f per_sec=%.0f\n",
		       modes[m].name, lookups, nframes, el, lookups / el);
	}
	gs_binary_close(bin);
	free(pcs);
	return 0;
}

static int cmd_first(int argc, char **argv)
{
	double t0 = now_s(), el;
	struct gs_frame frames[MAX_FRAMES];
	struct gs_error err = {0};
	struct gs_binary *bin;
	struct rusage ru;
	int k;

	if (argc != 4)
		return 2;
	bin = open_or_die(argv[2]);
	k = gs_binary_symbolize(bin, strtoull(argv[3], NULL, 0), 0, frames, MAX_FRAMES, &err);
	el = now_s() - t0;
	if (k <= 0) {
		fprintf(stderr, "symbolizer_bench: no function at %s\n", argv[3]);
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	/* func: the outermost function; file:line the innermost position (as addr2line). */
	printf("first ms=%.3f vmhwm_kb=%ld maxrss_kb=%ld rssfile_kb=%ld frames=%d func=%.*s "
	       "file=%s line=%d\n",
	       el * 1e3, status_kb("VmHWM"), ru.ru_maxrss, status_kb("RssFile"), k,
	       (int)frames[k - 1].function_len, frames[k - 1].function, frames[0].file,
	       frames[0].line);
	gs_binary_close(bin);
	return 0;
}

static int cmd_exec(int argc, char **argv)
{
	struct rusage ru;
	double t0;
	pid_t pid;
	int st;

	if (argc < 3)
		return 2;
	t0 = now_s();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		dup2(2, 1);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	if (wait4(pid, &st, 0, &ru) < 0) {
		perror("wait4");
		return 1;
	}
	printf("exec wall_ms=%.3f maxrss_kb=%ld user_ms=%.1f sys_ms=%.1f status=%d\n",
	       (now_s() - t0) * 1e3, ru.ru_maxrss,
	       ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
	       ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3,
	       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc >= 2 && strcmp(argv[1], "gen") == 0)
		rc = cmd_gen(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "lookup") == 0)
		rc = cmd_lookup(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "first") == 0)
		rc = cmd_first(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "exec") == 0)
		rc = cmd_exec(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: symbolizer_bench gen BINARY N SEED PCFILE [text|func] | lookup BINARY "
				"PCFILE MIN_SECONDS | first BINARY PC | exec CMD [ARG...]\n");
	return rc;
}
