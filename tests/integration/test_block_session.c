/* test_block_session.c — block_session, the API the agent uses, on real Go targets: one
 * session cut into 30 short windows of a busy target at the default budget (the windows'
 * counts, probes placed once), and what is left after close (no breakpoint byte at any probe
 * address, no link fd, no block program loaded); and a session whose target exits (the probes
 * go at once, the cut says so). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/block.h"
#include "capture/core.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/run.h"

#define LINE_MAX_LEN 512
#define WINDOWS 30
/* A window as long as the shortest duty cycle (BLOCK_CYCLE_NS): at the default budget a busy
 * target's cycle is 1 s (attaching and detaching cost too much for shorter ones), and a
 * window shorter than that holds an on-window only every few windows (at 300 ms, 11 of 30
 * windows had blocks here: those with an on-window, or the end of its drain). */
#define WINDOW_NS 1000000000ULL
#define INT3 0xcc
#define DEFAULT_BUDGET 2.0 /* goscope block's default --max-overhead */

/* This process's fds of kind what (anon_inode targets): links (uprobe_multi and perf-event
 * links) and perf events (a perf-event uprobe is one of each), or BPF programs. Counted in
 * this process, not with bpftool: other captures may run on the machine. */
enum fd_kind { FD_LINKS, FD_PROGS };
static int bpf_fds(enum fd_kind what)
{
	if (what == FD_PROGS)
		return fd_count(0, "anon_inode:bpf-prog");
	return fd_count(0, "anon_inode:bpf_link") + fd_count(0, "anon_inode:[perf_event]");
}

/* The address of file offset off of the target's executable in its address space, from
 * /proc/PID/maps (0 when not mapped). */
static uint64_t exe_address(pid_t pid, uint64_t off)
{
	char path[64], exe[PATH_MAX], line[PATH_MAX + 128];
	unsigned long long start, end, moff;
	uint64_t addr = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		char perms[8], *file = strchr(line, '/');

		if (sscanf(line, "%llx-%llx %7s %llx", &start, &end, perms, &moff) != 4 || !file)
			continue;
		file[strcspn(file, "\n")] = '\0';
		if (strcmp(file, exe) || perms[2] != 'x')
			continue;
		if (off >= moff && off < moff + (end - start)) {
			addr = start + (off - moff);
			break;
		}
	}
	fclose(f);
	return addr;
}

/* The code byte at addr in the target, as the CPU sees it (a uprobe's int3 included). */
static int code_byte(pid_t pid, uint64_t addr)
{
	char path[64];
	uint8_t b;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, &b, 1, (off_t)addr);
	close(fd);
	return n == 1 ? b : -1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL)};

	nanosleep(&ts, NULL);
}

/* Ticks the session until deadline (monotonic); counts the ticks at which gopark's probe
 * byte was an int3 into *seen_int3 (when addr is not 0). */
static void run_until(struct block_session *s, uint64_t deadline, pid_t pid, uint64_t addr,
		      int *seen_int3)
{
	struct gs_error err = {0};
	uint64_t now;

	while ((now = capture_monotonic_ns()) < deadline) {
		cr_assert_eq(block_session_tick(s, now, &err), 0, "%s", err.msg);
		if (addr && code_byte(pid, addr) == INT3)
			(*seen_int3)++;
		sleep_ns(BLOCK_TICK_NS);
	}
}

static void start_blocker(struct gotarget *t, char *path, const char *duration)
{
	char line[LINE_MAX_LEN];
	char *argv[] = {path, "-duration", (char *)duration, "-delay", "2ms", NULL};

	cr_assert_eq(gotarget_start(t, path, argv), 0);
	cr_assert_gt(gotarget_read_line(t, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
}

/* One session, 30 windows of 1 s of a busy target (tests/go/blocker: goroutines parking
 * every 2 ms on channels, mutexes, select, sleep, network reads) at the default budget: the
 * probes are placed and the BPF programs loaded once, the windows see blocks, and close
 * leaves nothing behind. */
Test(block_session, cuts_30_windows_then_no_probe_left, .timeout = 180)
{
	char path[4096];
	struct gotarget t;
	struct block_config cfg = {.max_overhead_pct = DEFAULT_BUDGET};
	struct block_probe_point pts[BLOCK_NPROBES];
	uint64_t addrs[BLOCK_NPROBES], total = 0, scaled_windows = 0;
	struct block_session *s = NULL;
	struct gs_error err = {0};
	struct block_stats st;
	struct profile *prof;
	int fds0, progs0, nonzero = 0, seen_int3 = 0, nused = 0;
	unsigned windows = 0;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", "1.27", "default");
	start_blocker(&t, path, "60s");
	fds0 = bpf_fds(FD_LINKS);
	progs0 = bpf_fds(FD_PROGS);
	cfg.pid = t.pid;
	cr_assert_eq(block_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	cr_assert_gt(bpf_fds(FD_PROGS), progs0);
	block_session_probes(s, pts);
	for (int k = 0; k < BLOCK_NPROBES; k++) {
		addrs[k] = exe_address(t.pid, pts[k].file_offset);
		cr_assert_neq(addrs[k], 0, "%s not mapped", pts[k].function);
		nused += pts[k].used;
	}
	cr_assert_eq(nused, BLOCK_NPROBES);
	for (int w = 0; w < WINDOWS; w++) {
		run_until(s, capture_monotonic_ns() + WINDOW_NS, t.pid, addrs[0], &seen_int3);
		cr_assert_eq(block_session_cut(s, false, &prof, &st, &err), 0, "window %d: %s", w,
			     err.msg);
		cr_assert_not(st.target_exited);
		cr_assert_eq(st.still_blocked, 0,
			     "still-blocked goroutines are reported only "
			     "when asked");
		cr_assert(st.duration_ns >= WINDOW_NS && st.duration_ns < 3 * WINDOW_NS,
			  "window %d: %.0f ms", w, st.duration_ns / 1e6);
		cr_assert_eq(st.blocks == 0, profile_sample_count(prof) == 0,
			     "window %d: %llu blocks, %zu samples", w,
			     (unsigned long long)st.blocks, profile_sample_count(prof));
		cr_log_info("window %d: %llu blocks (%llu parks, %llu polled), %u duty cycles "
			    "began, sampled %.2f%%",
			    w, (unsigned long long)st.blocks, (unsigned long long)st.parks,
			    (unsigned long long)st.polled, st.windows, st.sampled_fraction * 100);
		nonzero += st.blocks > 0;
		total += st.blocks;
		windows += st.windows;
		scaled_windows += st.sampled_fraction < 1.0;
		profile_free(prof);
	}
	cr_assert_eq(block_session_cut(s, true, &prof, &st, &err), 0, "%s", err.msg);
	profile_free(prof);
	cr_assert_eq(block_session_live_links(s), 0, "the final cut removes every probe");
	block_session_close(s);

	cr_log_info("%d of %d windows with blocks, %llu blocks, %u duty cycles, gopark's int3 "
		    "seen at %d ticks",
		    nonzero, WINDOWS, (unsigned long long)total, windows, seen_int3);
	cr_expect_eq(scaled_windows, WINDOWS, "throttled at the default budget");
	cr_expect_gt(seen_int3, 0, "the probe was never seen in the code: the check is blind");
	cr_expect_gt(nonzero, WINDOWS / 2, "%d of %d windows with blocks", nonzero, WINDOWS);
	cr_expect_geq(windows, WINDOWS / 2, "the duty cycle did not run");
	/* Nothing left: no breakpoint, no link, no program. */
	for (int k = 0; k < BLOCK_NPROBES; k++) {
		int b = code_byte(t.pid, addrs[k]);

		cr_expect(b >= 0 && b != INT3, "%s: byte %#x at %#llx after close", pts[k].function,
			  b, (unsigned long long)addrs[k]);
	}
	cr_expect_eq(bpf_fds(FD_LINKS), fds0, "link fds left after close");
	cr_expect_eq(bpf_fds(FD_PROGS), progs0, "block programs left after close");
	cr_assert_eq(kill(t.pid, 0), 0, "the target died");
	gotarget_stop(&t, 1000);
}

/* A target that exits under a session: the session notices within a liveness interval,
 * removes every probe while still open, and the next cut says the target exited. */
Test(block_session, target_exit_removes_probes, .timeout = 60)
{
	char path[4096];
	struct gotarget t;
	struct block_config cfg = {.max_overhead_pct = DEFAULT_BUDGET};
	struct block_session *s = NULL;
	struct gs_error err = {0};
	struct block_stats st;
	struct profile *prof;
	uint64_t deadline;
	int fds0;

	GOTARGET_BUILD_OR_SKIP(path, "blocker", "1.27", "default");
	start_blocker(&t, path, "60s");
	fds0 = bpf_fds(FD_LINKS);
	cfg.pid = t.pid;
	cr_assert_eq(block_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	cr_assert(block_session_target_alive(s));
	run_until(s, capture_monotonic_ns() + 2 * WINDOW_NS, t.pid, 0, NULL);
	/* Killed, not yet reaped: a zombie is an exited target too. */
	cr_assert_eq(kill(t.pid, SIGKILL), 0);
	deadline = capture_monotonic_ns() + 5000000000ULL;
	while (block_session_target_alive(s) && capture_monotonic_ns() < deadline) {
		cr_assert_eq(block_session_tick(s, capture_monotonic_ns(), &err), 0, "%s", err.msg);
		sleep_ns(BLOCK_TICK_NS);
	}
	cr_assert_not(block_session_target_alive(s), "the exit was not seen");
	cr_expect_eq(block_session_live_links(s), 0, "probes left on an exited target");
	cr_expect_eq(bpf_fds(FD_LINKS), fds0, "link fds left while the session is still open");
	cr_assert_eq(block_session_tick(s, capture_monotonic_ns(), &err), 0, "%s", err.msg);
	cr_assert_eq(block_session_cut(s, false, &prof, &st, &err), 0, "%s", err.msg);
	cr_expect(st.target_exited);
	cr_expect_str_eq(st.ended_by, "target exited");
	cr_expect_eq(st.still_blocked, 0);
	profile_free(prof);
	cr_assert_eq(block_session_cut(s, true, &prof, &st, &err), 0, "%s", err.msg);
	cr_expect(st.target_exited);
	profile_free(prof);
	block_session_close(s);
	cr_expect_eq(bpf_fds(FD_LINKS), fds0);
	gotarget_stop(&t, 1000);
}
