/* test_probe_keeper.c — killing goscope never leaves a breakpoint in the profiled process
 * (agent/capture/probe_keeper.c).
 *
 * A stand-in for goscope (a child of the test) attaches and detaches uprobes on a busy Go
 * ping-pong as fast as it can, the way a duty-cycled block capture does every cycle, and is
 * SIGKILLed at a random moment; afterwards the target's code bytes at every probe point must
 * equal the binary's. With the probes attached through the keeper this must hold every time.
 * Attached from the killed process itself (GOSCOPE_KEEPER_TEST_DIRECT=1, the way goscope did
 * before the keeper) the kernel leaks the uprobe being (un)registered at the kill: the
 * `repair` case produces such a leak on purpose and checks that probe_keeper_repair removes it.
 * tests/bench/probe_sigkill.sh runs 100 kills of each kind and prints both counts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "capture/probe_keeper.h"
#include "goscope/symbolizer.h"
#include "tests/helpers/gotarget.h"

#define NPOINTS 4
#define DEFAULT_KILLS 10
#define KILL_MIN_MS 20
#define KILL_MAX_MS 400
#define KEEPER_EXIT_WAIT_MS 5000
#define BPF_TRACE_UPROBE_MULTI_NR 48
#define X86_INT3 0xcc

static const char *const points[NPOINTS] = {"runtime.gopark", "runtime.ready",
					    "runtime.netpollready", "runtime.injectglist"};

struct target {
	struct gotarget t;
	char path[4096], exe[64];
	uint64_t vaddr[NPOINTS], offset[NPOINTS];
	uint8_t orig[NPOINTS];
};

static void start_target(struct target *tg)
{
	char *argv[] = {tg->path, "-duration", "600s", NULL}, line[128];
	struct gs_binary *bin;
	struct gs_error err = {0};

	cr_assert_eq(gotarget_start(&tg->t, tg->path, argv), 0);
	cr_assert_gt(gotarget_read_line(&tg->t, line, sizeof(line), 10000), 0);
	snprintf(tg->exe, sizeof(tg->exe), "/proc/%d/exe", tg->t.pid);
	cr_assert_eq(gs_binary_open(tg->path, &bin, &err), 0, "%s", err.msg);
	for (int i = 0; i < NPOINTS; i++) {
		uint64_t end;

		cr_assert_eq(gs_binary_find_function(bin, points[i], &tg->vaddr[i], &end), 0);
		cr_assert_eq(gs_binary_addr_to_offset(bin, tg->vaddr[i], &tg->offset[i]), 0);
		cr_assert_eq(gs_binary_read(bin, tg->vaddr[i], &tg->orig[i], 1), 0);
	}
	gs_binary_close(bin);
}

/* Probe points of the target whose code byte is not the binary's. */
static int leftovers(const struct target *tg)
{
	char mem[64];
	int fd, n = 0;

	snprintf(mem, sizeof(mem), "/proc/%d/mem", tg->t.pid);
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < NPOINTS; i++) {
		uint8_t b = 0;

		cr_assert_eq(pread(fd, &b, 1, (off_t)tg->vaddr[i]), 1);
		if (b != tg->orig[i]) {
			cr_assert_eq(b, X86_INT3, "a byte that is neither the binary's nor int3");
			n++;
		}
	}
	close(fd);
	return n;
}

static int noop_prog(void)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = (enum bpf_attach_type)BPF_TRACE_UPROBE_MULTI_NR);

	return bpf_prog_load(BPF_PROG_TYPE_KPROBE, "t_noop", "GPL", insns, 2, &opts);
}

/* The pre-keeper way: a uprobe_multi link created by the process that gets killed. */
static int attach_direct(int prog, const struct target *tg, int i)
{
	struct {
		__u32 prog_fd, target_fd, attach_type, flags;
		__aligned_u64 path, offsets, ref_ctr_offsets, cookies;
		__u32 cnt, multi_flags, pid;
		__u8 rest[64];
	} a;
	__u64 off = tg->offset[i];

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)prog;
	a.attach_type = BPF_TRACE_UPROBE_MULTI_NR;
	a.path = (__u64)(uintptr_t)tg->exe;
	a.offsets = (__u64)(uintptr_t)&off;
	a.cnt = 1;
	a.pid = (__u32)tg->t.pid;
	return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
}

/* The stand-in for goscope: attach every point, detach every point, forever. Writes the
 * keeper's pid (0 when direct) to report_fd first. */
static __attribute__((noreturn)) void churn(const struct target *tg, bool direct, int report_fd)
{
	struct gs_error err = {0};
	struct probe_keeper *k = NULL;
	int prog = noop_prog(), fds[NPOINTS];
	pid_t kpid = 0;

	if (prog < 0)
		_exit(10);
	if (!direct) {
		if (probe_keeper_start(&k, &err) < 0)
			_exit(11);
		kpid = probe_keeper_pid(k);
	}
	if (write(report_fd, &kpid, sizeof(kpid)) != sizeof(kpid))
		_exit(12);
	for (;;) {
		for (int i = 0; i < NPOINTS; i++) {
			struct probe_spec spec = {.kind = PROBE_LINK_UPROBE_MULTI,
						  .prog_fd = prog,
						  .pid = tg->t.pid,
						  .path = tg->exe,
						  .offset = tg->offset[i]};

			if (direct)
				fds[i] = attach_direct(prog, tg, i);
			else if (probe_keeper_attach(k, (unsigned)i, &spec, &err) < 0)
				_exit(13);
		}
		for (int i = 0; i < NPOINTS; i++) {
			if (direct)
				close(fds[i]);
			else
				probe_keeper_detach(k, (unsigned)i);
		}
		if (!direct)
			probe_keeper_sync(k, NULL);
	}
}

static bool gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

/* Starts the stand-in, kills it at a random moment, waits for its keeper to finish; returns
 * the number of leftover breakpoints. */
static int kill_once(const struct target *tg, bool direct, unsigned *seed)
{
	int fds[2], status;
	pid_t pid, kpid = 0;
	struct timespec ts;
	long ms = KILL_MIN_MS + (long)(rand_r(seed) % (KILL_MAX_MS - KILL_MIN_MS));

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		churn(tg, direct, fds[1]);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &kpid, sizeof(kpid)), (ssize_t)sizeof(kpid),
		     "the stand-in could not start");
	close(fds[0]);
	ts = (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	for (int waited = 0; kpid && !gone(kpid) && waited < KEEPER_EXIT_WAIT_MS; waited += 10)
		usleep(10000);
	cr_assert(!kpid || gone(kpid), "the keeper outlived goscope by %d ms", KEEPER_EXIT_WAIT_MS);
	return leftovers(tg);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

Test(probe_keeper, sigkill_leaves_no_breakpoint, .timeout = 600)
{
	struct target tg;
	bool direct = env_int("GOSCOPE_KEEPER_TEST_DIRECT", 0) != 0;
	int kills = env_int("GOSCOPE_KEEPER_TEST_KILLS", DEFAULT_KILLS), leaked_runs = 0;
	unsigned seed = (unsigned)time(NULL);

	GOTARGET_BUILD_OR_SKIP(tg.path, "pingpong", "1.27", "default");
	start_target(&tg);
	cr_assert_eq(leftovers(&tg), 0);
	for (int i = 0; i < kills; i++) {
		int n = kill_once(&tg, direct, &seed);

		if (n) {
			leaked_runs++;
			if (!direct)
				break;
		}
	}
	/* The bench reads this line. */
	printf("probe_keeper: %s: %d of %d SIGKILLs left breakpoints\n",
	       direct ? "direct" : "keeper", leaked_runs, kills);
	fflush(stdout);
	gotarget_stop(&tg.t, 5000);
	if (!direct)
		cr_assert_eq(leaked_runs, 0, "a SIGKILL left a breakpoint in the target");
}

Test(probe_keeper, repair_clears_a_leaked_uprobe, .timeout = 300)
{
	struct gs_error err = {0};
	struct probe_keeper *k;
	struct target tg;
	unsigned seed = (unsigned)time(NULL);
	int tries = 0, rc;

	GOTARGET_BUILD_OR_SKIP(tg.path, "pingpong", "1.27", "default");
	start_target(&tg);
	/* Make the kernel leak one, the way goscope did before the keeper. */
	while (leftovers(&tg) == 0 && tries++ < 60)
		kill_once(&tg, true, &seed);
	if (leftovers(&tg) == 0) {
		gotarget_stop(&tg.t, 5000);
		cr_skip_test("no uprobe leaked in 60 SIGKILLs: nothing to repair");
	}
	cr_assert_eq(probe_keeper_start(&k, &err), 0, "%s", err.msg);
	rc = probe_keeper_repair(k, tg.t.pid, tg.exe, tg.vaddr, tg.offset, NPOINTS, true, &err);
	probe_keeper_stop(k);
	cr_assert_geq(rc, 1, "repair: %d %s", rc, err.msg);
	cr_assert_eq(leftovers(&tg), 0, "breakpoints left after the repair");
	gotarget_stop(&tg.t, 5000);
}
