/* block.c — userspace side of bpf/block.bpf.c: finds runtime.gopark/ready/netpollready/
 * injectglist through the pclntab (stripped binaries work), places each probe on the function's
 * stack-check branch (block_probe_offset says why), attaches entry uprobes to /proc/PID/exe for
 * the target only, duty-cycles them to stay within --max-overhead, and turns the in-kernel sums
 * into a pprof profile shaped like Go's block profile (contentions/count, delay/nanoseconds,
 * label wait_reason).
 *
 * Probes are bpf_link fds owned by this process: whatever way goscope ends (SIGKILL included)
 * the kernel removes them with the fds.
 *
 * Throttling (--max-overhead < 100). A uprobe hit is a trap (calibrated at start-up). The
 * capture runs in cycles of BLOCK_CYCLE_NS: an on-window with every probe attached, then the
 * rest of the cycle off. The on-fraction is chosen from the cost of a probe hit (the calibrated
 * trap, plus the BPF programs' run time per hit measured on the workload in the first cycle
 * with probe hits), the probe hit rate measured while attached, and the target's own CPU time
 * (/proc/PID/stat), so that cost x hits stays within the budget. Sampling is by park: only
 * parks that start in an on-window are recorded (at the window's end gopark stops recording: it
 * then only ends its g's earlier park, which tells a cancelled park from a block), and their
 * wake-ups are still observed afterwards: the probes stay attached for a drain period, until
 * every park of the window is resolved (woken, or its goroutine seen not parked any more), but
 * for at most BLOCK_DRAIN_FACTOR on-windows, since attached probes cost the same whether they
 * record or not. The window's parks still blocked then are long blocks: with the probes
 * detached, userspace looks at their goroutines every tick (g status and wait reason, from
 * /proc/PID/mem; g.trackingSeq tells a later park from the same one) and counts each one's
 * block as ended at the midpoint of the tick in which it was first seen running again, or as
 * still blocked at the end of the capture. So a sampled park is measured with its full delay
 * whatever the window edge (long ones to a tick), and the counted parks are a time-uniform
 * sample of all parks: scaling counts and delays by 1/fraction is unbiased. The budget covers
 * the drains and the churn: destroying a perf-event uprobe takes about 100 ms here, with its
 * breakpoint still trapping for part of it (a uprobe_multi link, used where the kernel has
 * them, stops trapping at once but still takes 50 ms to close), so attaching and detaching
 * once per cycle can cost more than the window itself. block_plan_cycle stretches the cycle (up to 10 s) until the
 * churn and a shortest window fit. A generation number per window (window_gen) tells
 * leftovers from the current window's parks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/block.h"
#include "block.skel.h"
#include "capture/core.h"
#include "goscope/block.h"
#include "goscope/symbolizer.h"
#include "goruntime/goversion_table.h"
#include "procs/proc.h"
#include "stacks/stacks.h"

#define NSEC_PER_SEC 1000000000ULL
#define POLL_NS 20000000ULL /* main loop tick */
#define LIVENESS_EVERY_NS 250000000ULL
#define BLOCK_CYCLE_NS 1000000000ULL	  /* shortest duty-cycle period */
#define BLOCK_CYCLE_MAX_NS 10000000000ULL /* longest, when attach + detach cost much */
#define BLOCK_MIN_ON_NS 20000000ULL	  /* shortest on-window */
#define BLOCK_DRAIN_FACTOR 2		  /* longest drain, in on-window lengths */
#define BLOCK_FRACTION_GROWTH 2.0	  /* most the on-window grows from one cycle to the next */
#define BLOCK_MIN_FRACTION 0.005	  /* never sample less than this */
#define PROLOGUE_BYTES 32
#define BPF_TRACE_UPROBE_MULTI_NR 48 /* enum bpf_attach_type, Linux 6.6 */
#define UPROBE_MULTI_ATTR_TAIL 64    /* zeroes after link_create.uprobe_multi */
#define CALIBRATE_CALLS 2000
#define DEFAULT_TRAP_COST_NS 9000.0 /* measured on this kind of VM (docs/go-runtime.md 6) */

/* amd64 split-stack prologue encodings (cmd/internal/obj/x86/obj6.go stacksplit). */
static const uint8_t CMP_RSP_G_GUARD[] = {0x49, 0x3b, 0x66, 0x10}; /* cmp 0x10(%r14),%rsp */
static const uint8_t CMP_R12_G_GUARD[] = {0x4d, 0x3b, 0x66, 0x10}; /* cmp 0x10(%r14),%r12 */
#define LEA_R12_RSP_DISP8_LEN 5	 /* 4c 8d 64 24 d8: lea -N(%rsp),%r12 */
#define LEA_R12_RSP_DISP32_LEN 8 /* 4c 8d a4 24 d32 */
#define JBE_REL8 0x76
#define JBE_REL8_LEN 2
#define JCC_REL32_PREFIX 0x0f
#define JBE_REL32 0x86
#define JBE_REL32_LEN 6

static const char *const probe_funcs[BLOCK_NPROBES] = {
	"runtime.gopark", "runtime.ready", "runtime.netpollready", "runtime.injectglist"};

/* runtime g status values (stable since Go 1.0) and the bit GC scanning ORs in. */
#define G_STATUS_WAITING 4
#define G_STATUS_SCAN 0x1000

struct block_run {
	const struct block_config *cfg;
	struct block_stats *stats;
	struct gs_error *err;
	struct block_bpf *skel;
	struct bpf_program *progs[BLOCK_NPROBES];
	bool multi; /* probes are uprobe_multi links (see load_bpf), else perf-event uprobes */
	struct probe_link {
		struct bpf_link *perf; /* perf-event uprobe */
		int multi_fd;	       /* uprobe_multi link fd, or -1 */
	} links[BLOCK_NPROBES];
	uint64_t offsets[BLOCK_NPROBES]; /* file offsets of the probe points */
	bool want[BLOCK_NPROBES];      /* netpollready is skipped when --reasons excludes IO wait */
	bool on_branch[BLOCK_NPROBES]; /* probed on the stack-check branch (else at the entry) */
	bool filter_reasons, io_wait;  /* --reasons given; it includes IO wait */
	uint8_t reason_allowed[BLOCK_MAX_REASONS];
	struct reaper {
		pthread_t thread;
		bool busy;
		struct probe_link link;
		uint64_t done_at; /* when its destroy returned */
	} reapers[BLOCK_NPROBES]; /* destroying detached links (see detach_one) */
	char exe[64];
	int mem_fd;	  /* /proc/PID/mem, to check that a pending g is still parked */
	int bpf_stats_fd; /* BPF run-time stats on while >= 0 (first throttled cycle) */
	uint64_t polled_short, polled_lost; /* poll_long_blocks: below --min-delay; agg full */
	struct goversion_facts facts;
	struct profile *prof;
	struct stacks stacks;
	int ncpus;
};

int block_probe_offset(const uint8_t *code, size_t len)
{
	size_t off = 0;

	if (len >= sizeof(CMP_RSP_G_GUARD) &&
	    memcmp(code, CMP_RSP_G_GUARD, sizeof(CMP_RSP_G_GUARD)) == 0) {
		off = sizeof(CMP_RSP_G_GUARD);
	} else if (len >= 3 && code[0] == 0x4c && code[1] == 0x8d &&
		   (code[2] == 0x64 || code[2] == 0xa4) && len > 3 && code[3] == 0x24) {
		off = code[2] == 0x64 ? LEA_R12_RSP_DISP8_LEN : LEA_R12_RSP_DISP32_LEN;
		if (len < off + sizeof(CMP_R12_G_GUARD) ||
		    memcmp(code + off, CMP_R12_G_GUARD, sizeof(CMP_R12_G_GUARD)) != 0)
			return -ENOENT;
		off += sizeof(CMP_R12_G_GUARD);
	} else {
		return -ENOENT;
	}
	if (len >= off + JBE_REL32_LEN && code[off] == JCC_REL32_PREFIX &&
	    code[off + 1] == JBE_REL32)
		return (int)off;
	if (len >= off + JBE_REL8_LEN && code[off] == JBE_REL8)
		return (int)off;
	return -ENOENT;
}

int block_parse_reasons(const char *list, const struct goversion_facts *f, uint8_t *allowed,
			bool *io_wait, struct gs_error *err)
{
	char buf[1024], *save = NULL, *tok;
	int n;

	memset(allowed, 0, BLOCK_MAX_REASONS);
	*io_wait = false;
	if (strlen(list) >= sizeof(buf))
		return gs_error_set(err, -EINVAL, "--reasons list too long");
	strcpy(buf, list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		n = goversion_wait_reason_number(f, tok);
		if (n < 0 || n >= BLOCK_MAX_REASONS)
			return gs_error_set(err, -EINVAL, "unknown wait reason '%s' for go1.%d",
					    tok, f->minor);
		allowed[n] = 1;
		if (strcmp(tok, "IO wait") == 0)
			*io_wait = true;
	}
	return 0;
}

double block_duty_fraction(double budget_pct, double trap_cost_ns, double hits_per_on_sec,
			   double target_cpu_per_sec)
{
	double cost_per_on_sec = trap_cost_ns * 1e-9 * hits_per_on_sec, f;

	if (budget_pct >= BLOCK_OVERHEAD_UNTHROTTLED || cost_per_on_sec <= 0)
		return 1.0;
	f = budget_pct / 100.0 * target_cpu_per_sec / cost_per_on_sec;
	if (f > 1.0)
		return 1.0;
	return f < BLOCK_MIN_FRACTION ? BLOCK_MIN_FRACTION : f;
}

/* ---- BPF plumbing ---- */

static void read_stats(struct block_run *run, uint64_t *sums)
{
	capture_percpu_sums(run->skel->maps.stats, BLOCK_STAT_COUNT, sums);
}

static uint64_t probe_hits(const uint64_t *s)
{
	return s[BLOCK_STAT_PARKS] + s[BLOCK_STAT_READY] + s[BLOCK_STAT_NETPOLL] +
	       s[BLOCK_STAT_INJECT] + s[BLOCK_STAT_RESTARTS];
}

static bool link_live(const struct probe_link *l)
{
	return l->perf || l->multi_fd >= 0;
}

/* A uprobe_multi link (kernel >= 6.6) through the bpf syscall: Debian's libbpf (1.1) has no
 * API for it. The attr is the link_create member of union bpf_attr, laid out by hand for
 * the same reason (the installed uapi header predates it). */
struct uprobe_multi_attr {
	__u32 prog_fd, target_fd, attach_type, flags;
	__aligned_u64 path, offsets, ref_ctr_offsets, cookies;
	__u32 cnt, multi_flags, pid;
	__u8 rest[UPROBE_MULTI_ATTR_TAIL]; /* the rest of union bpf_attr, zero */
};

static int attach_multi(struct block_run *run, enum block_probe k)
{
	struct uprobe_multi_attr a;
	__u64 off = run->offsets[k];

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)bpf_program__fd(run->progs[k]);
	a.attach_type = BPF_TRACE_UPROBE_MULTI_NR;
	a.path = (__u64)(uintptr_t)run->exe;
	a.offsets = (__u64)(uintptr_t)&off;
	a.cnt = 1;
	a.pid = (__u32)run->cfg->pid;
	return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
}

static int attach_one(struct block_run *run, enum block_probe k)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct probe_link *l = &run->links[k];

	if (link_live(l) || !run->want[k])
		return 0;
	if (run->multi) {
		l->multi_fd = attach_multi(run, k);
		if (l->multi_fd < 0)
			return capture_bpf_error(run->err, -errno, "attach uprobe_multi");
		return 0;
	}
	l->perf = bpf_program__attach_uprobe_opts(run->progs[k], run->cfg->pid, run->exe,
						  run->offsets[k], &opts);
	if (!l->perf)
		return capture_bpf_error(run->err, -errno, "attach uprobe");
	return 0;
}

static void *destroy_link(void *arg)
{
	struct reaper *r = arg;

	if (r->link.perf)
		bpf_link__destroy(r->link.perf);
	if (r->link.multi_fd >= 0)
		close(r->link.multi_fd);
	r->done_at = capture_monotonic_ns();
	return NULL;
}

/* Waits for the thread destroying probe k's previous link, if any. */
static void reap_one(struct block_run *run, enum block_probe k)
{
	if (run->reapers[k].busy) {
		pthread_join(run->reapers[k].thread, NULL);
		run->reapers[k].busy = false;
	}
}

/* Destroying a uprobe link returns only after the kernel's grace periods (about 100 ms per
 * link on this VM), though its breakpoint is gone at the start. With async, each link is
 * destroyed by a thread of its own: the breakpoints all go at once, and the capture loop
 * keeps its 20 ms pace (duty cycle, polling of long blocks) instead of stalling for 400 ms
 * with the wake-up probes still trapping. */
static void detach_one(struct block_run *run, enum block_probe k, bool async)
{
	struct probe_link l = run->links[k];

	if (!link_live(&l))
		return;
	run->links[k] = (struct probe_link){.perf = NULL, .multi_fd = -1};
	reap_one(run, k);
	run->reapers[k].link = l;
	if (async &&
	    pthread_create(&run->reapers[k].thread, NULL, destroy_link, &run->reapers[k]) == 0) {
		run->reapers[k].busy = true;
		return;
	}
	destroy_link(&run->reapers[k]);
}

static void detach_all(struct block_run *run, bool async)
{
	for (int k = 0; k < BLOCK_NPROBES; k++)
		detach_one(run, (enum block_probe)k, async);
	if (!async)
		for (int k = 0; k < BLOCK_NPROBES; k++)
			reap_one(run, (enum block_probe)k);
}

static int attach_all(struct block_run *run)
{
	/* Wake-up probes first, so no park recorded here can miss its wake-up. */
	int rc = attach_one(run, BLOCK_PROBE_READY);

	if (rc == 0)
		rc = attach_one(run, BLOCK_PROBE_NETPOLL);
	if (rc == 0)
		rc = attach_one(run, BLOCK_PROBE_INJECT);
	if (rc == 0)
		rc = attach_one(run, BLOCK_PROBE_GOPARK);
	return rc;
}

/* Whether the goroutine of a pending park is still in that park: g.atomicstatus is
 * _Gwaiting (GC may have set the scan bit) and g.waitreason is the park's. A pending g that
 * is not was cancelled (park_m's unlockf returned false) or woken by a path without a probe
 * (GC workers, the trace reader) and has not parked since. Unreadable memory counts as
 * parked: the caller keeps the entry as before. */
static bool g_still_parked(struct block_run *run, uint64_t g, const struct block_pending *p)
{
	uint32_t status;
	uint8_t reason, seq;

	if (run->mem_fd < 0)
		return true;
	if (pread(run->mem_fd, &status, sizeof(status), (off_t)(g + run->facts.g_atomicstatus)) !=
		    sizeof(status) ||
	    pread(run->mem_fd, &reason, sizeof(reason), (off_t)(g + run->facts.g_waitreason)) !=
		    sizeof(reason))
		return true;
	if ((status & ~(uint32_t)G_STATUS_SCAN) != G_STATUS_WAITING || reason != p->reason)
		return false;
	/* Waiting again for the same reason after a wake-up we did not see (probes detached)
	 * is a later park: g.trackingSeq moved on by more than the park's own step. */
	if (run->facts.g_tracking_seq &&
	    pread(run->mem_fd, &seq, sizeof(seq), (off_t)(g + run->facts.g_tracking_seq)) ==
		    sizeof(seq))
		return seq == (uint8_t)(p->seq + 1);
	return true;
}

typedef bool (*pending_visit_fn)(struct block_run *run, __u64 g, const struct block_pending *p,
				 void *arg);

/* Calls visit for each pending park; returns how many visits returned true. visit may delete
 * its entry: a BPF hash map restarts get_next_key from its first key when the key passed is
 * gone, so the next key is taken before the visit. */
static uint64_t pending_each(struct block_run *run, pending_visit_fn visit, void *arg)
{
	int fd = bpf_map__fd(run->skel->maps.pending);
	__u64 key, next;
	struct block_pending p;
	uint64_t n = 0;
	int more = bpf_map_get_next_key(fd, NULL, &key) == 0;

	while (more) {
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		if (bpf_map_lookup_elem(fd, &key, &p) == 0 && visit(run, key, &p, arg))
			n++;
		key = next;
	}
	return n;
}

/* While the probes are attached, a pending park of the window whose goroutine is not parked
 * any more was cancelled (a wake-up would have ended it): removes it. Older windows' parks
 * are left to poll_long_blocks. */
static bool visit_cancelled(struct block_run *run, __u64 g, const struct block_pending *p,
			    void *arg)
{
	uint32_t gen = *(const uint32_t *)arg;

	if (p->window != gen || g_still_parked(run, g, p))
		return false;
	/* A wake-up probe may have ended it meanwhile: count only a real removal. */
	return bpf_map_delete_elem(bpf_map__fd(run->skel->maps.pending), &g) == 0;
}

static uint64_t drop_not_parked(struct block_run *run, uint32_t gen)
{
	return pending_each(run, visit_cancelled, &gen);
}

struct poll_span {
	uint64_t half; /* half the time since the last look */
};

/* A long block, seen ended now: it ended since this entry's last look, which was about one
 * polling interval before this look (the map is walked in the same order each time), and is
 * counted at the middle of that interval, into agg like the blocks the BPF programs count. */
static bool visit_long_block(struct block_run *run, __u64 g, const struct block_pending *p,
			     void *arg)
{
	const struct poll_span *span = arg;
	int afd = bpf_map__fd(run->skel->maps.agg);
	struct block_key k;
	struct block_value v = {0};
	uint64_t end, delay;

	if (g_still_parked(run, g, p))
		return false;
	end = capture_monotonic_ns() - span->half;
	bpf_map_delete_elem(bpf_map__fd(run->skel->maps.pending), &g);
	run->stats->polled++;
	delay = end > p->park_ns ? end - p->park_ns : 0;
	if (delay < run->cfg->min_delay_ns) {
		run->polled_short++;
		return true;
	}
	k = (struct block_key){.stack_id = p->stack_id, .goid = p->goid, .reason = p->reason};
	bpf_map_lookup_elem(afd, &k, &v);
	v.count++;
	v.delay_ns += delay;
	if (bpf_map_update_elem(afd, &k, &v, BPF_ANY) < 0)
		run->polled_lost++;
	return true;
}

/* Long blocks, while the probes are detached (so no BPF program writes agg meanwhile): the
 * goroutines of pending parks are looked at (status, wait reason, trackingSeq, from
 * /proc/PID/mem); since is the time of the last look (or of the detach). */
static void poll_long_blocks(struct block_run *run, uint64_t since, uint64_t now)
{
	struct poll_span span = {.half = now > since ? (now - since) / 2 : 0};

	pending_each(run, visit_long_block, &span);
}

static bool visit_of_window(struct block_run *run, __u64 g, const struct block_pending *p,
			    void *arg)
{
	(void)run;
	(void)g;
	return p->window == *(const uint32_t *)arg;
}

/* Pending parks of window gen. */
static uint64_t pending_of_window(struct block_run *run, uint32_t gen)
{
	return pending_each(run, visit_of_window, &gen);
}

/* ---- Calibration of the trap cost ---- */

/* The calibration probe must cost what the real ones cost, so it sits on the same kind of
 * instruction: a conditional branch after a cmp, which the kernel emulates in the trap (the
 * real probes sit on the Go stack check's jbe; see block_probe_offset). A C function would
 * start with whatever the compiler emits (a `ret` here), which is single-stepped out of
 * line at several times the cost. */
void block_calibrate_target(void);
extern const char block_calibrate_branch[];
#if defined(__x86_64__)
__asm__(".pushsection .text\n"
	".globl block_calibrate_target\n"
	".hidden block_calibrate_target\n"
	".type block_calibrate_target, @function\n"
	"block_calibrate_target:\n"
	"\tcmp %rsp, %rsp\n"
	".globl block_calibrate_branch\n"
	".hidden block_calibrate_branch\n"
	"block_calibrate_branch:\n"
	"\tjbe 1f\n"
	"1:\tret\n"
	".size block_calibrate_target, .-block_calibrate_target\n"
	".popsection\n");
#else
#error "goscope block supports amd64 only (the BPF side reads Go's amd64 register ABI)"
#endif

static uint64_t self_file_offset(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long long start, end, off;
	char line[512], perms[8];
	uint64_t res = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %7s %llx", &start, &end, perms, &off) != 4)
			continue;
		if (addr >= start && addr < end && perms[2] == 'x') {
			res = addr - start + off;
			break;
		}
	}
	fclose(f);
	return res;
}

static double time_calls(unsigned n)
{
	uint64_t t0 = capture_monotonic_ns();

	for (unsigned i = 0; i < n; i++)
		block_calibrate_target();
	return (double)(capture_monotonic_ns() - t0) / n;
}

/* Cost of one uprobe hit on this machine: an empty probe on a function of goscope, timed
 * with and without. Falls back to DEFAULT_TRAP_COST_NS. */
static double calibrate(struct block_run *run)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	uint64_t off = self_file_offset((uintptr_t)block_calibrate_branch);
	struct bpf_link *l;
	double base, with;

	if (!off)
		return DEFAULT_TRAP_COST_NS;
	l = bpf_program__attach_uprobe_opts(run->skel->progs.block_calibrate, 0, "/proc/self/exe",
					    off, &opts);
	if (!l)
		return DEFAULT_TRAP_COST_NS;
	with = time_calls(CALIBRATE_CALLS);
	bpf_link__destroy(l);
	base = time_calls(CALIBRATE_CALLS);
	return with > base ? with - base : DEFAULT_TRAP_COST_NS;
}

/* BPF run time per probe hit, averaged over goscope's programs since load, or -1 when the
 * kernel kept no run-time stats. */
static double bpf_ns_per_hit(struct block_run *run)
{
	uint64_t ns = 0, cnt = 0;

	for (int k = 0; k < BLOCK_NPROBES; k++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (!run->progs[k] ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(run->progs[k]), &info, &len) < 0)
			continue;
		ns += info.run_time_ns;
		cnt += info.run_cnt;
	}
	return cnt ? (double)ns / (double)cnt : -1;
}

/* ---- Setup ---- */

static int find_probes(struct block_run *run, struct gs_binary *bin)
{
	for (int k = 0; k < BLOCK_NPROBES; k++) {
		uint8_t code[PROLOGUE_BYTES];
		uint64_t entry, end, off;
		int po;

		if (gs_binary_find_function(bin, probe_funcs[k], &entry, &end) < 0)
			return gs_error_set(run->err, -ENOENT, "%s not found in the pclntab of %s",
					    probe_funcs[k], run->exe);
		if (end - entry < sizeof(code) ||
		    gs_binary_read(bin, entry, code, sizeof(code)) < 0)
			return gs_error_set(run->err, -ENOENT, "cannot read the code of %s",
					    probe_funcs[k]);
		/* On the stack-check branch: see block_probe_offset. An unknown prologue, or a
		 * nosplit function (netpollready), is probed at its entry; a morestack restart
		 * there fires the probe twice, which only replaces gopark's own pending record
		 * and finds nothing left to count in ready. */
		po = block_probe_offset(code, sizeof(code));
		run->on_branch[k] = po >= 0;
		if (po < 0)
			po = 0;
		if (gs_binary_addr_to_offset(bin, entry + (uint64_t)po, &off) < 0)
			return gs_error_set(run->err, -ENOENT, "no file offset for %s",
					    probe_funcs[k]);
		run->offsets[k] = off;
	}
	return 0;
}

static int open_target(struct block_run *run)
{
	const struct gs_binary_info *info;
	struct gs_binary *bin;
	int rc;

	snprintf(run->exe, sizeof(run->exe), "/proc/%d/exe", run->cfg->pid);
	rc = gs_binary_open(run->exe, &bin, run->err);
	if (rc < 0)
		return rc;
	info = gs_binary_info(bin);
	if (!info->is_go) {
		rc = gs_error_set(run->err, -ENOEXEC, "process %d is not a Go program",
				  run->cfg->pid);
	} else if (!info->has_buildinfo) {
		rc = gs_error_set(run->err, -ENOEXEC,
				  "process %d: no Go build info, cannot tell the Go version",
				  run->cfg->pid);
	} else {
		snprintf(run->stats->go_version, sizeof(run->stats->go_version), "%s",
			 info->buildinfo.go_version);
		rc = goversion_lookup(info->buildinfo.go_version, &run->facts, run->err);
		if (rc == -EPROTONOSUPPORT)
			gs_error_prefix(run->err, "process %d", run->cfg->pid);
		if (rc == 0)
			rc = find_probes(run, bin);
	}
	gs_binary_close(bin);
	run->stats->table_measured = run->facts.measured;
	return rc;
}

/* Opens and loads the BPF object; with multi, the probe programs are loaded for
 * uprobe_multi links. */
static int open_load(struct block_run *run, bool multi)
{
	struct block_bpf *skel = block_bpf__open();

	if (!skel)
		return capture_bpf_error(run->err, -errno, "open BPF object block");
	run->skel = skel;
	run->multi = multi;
	skel->rodata->target_tgid = (__u32)run->cfg->pid;
	skel->rodata->capture_goid = run->cfg->goroutine_ids;
	skel->rodata->goid_offset = run->facts.g_goid;
	skel->rodata->min_delay_ns = run->cfg->min_delay_ns;
	skel->rodata->g_schedlink_offset = run->facts.g_schedlink;
	skel->rodata->pd_rg_offset = run->facts.pd_rg;
	skel->rodata->pd_wg_offset = run->facts.pd_wg;
	skel->rodata->g_tracking_seq_offset = run->facts.g_tracking_seq;
	if (run->filter_reasons) {
		memcpy((uint8_t *)skel->rodata->reason_allowed, run->reason_allowed,
		       sizeof(run->reason_allowed));
		skel->rodata->filter_reasons = true;
	}
	for (int k = 0; k < BLOCK_NPROBES; k++)
		if (run->on_branch[k])
			skel->rodata->probe_on_branch |= 1u << k;
	run->progs[BLOCK_PROBE_GOPARK] = skel->progs.block_gopark;
	run->progs[BLOCK_PROBE_READY] = skel->progs.block_ready;
	run->progs[BLOCK_PROBE_NETPOLL] = skel->progs.block_netpollready;
	run->progs[BLOCK_PROBE_INJECT] = skel->progs.block_injectglist;
	run->want[BLOCK_PROBE_GOPARK] = run->want[BLOCK_PROBE_READY] =
		run->want[BLOCK_PROBE_INJECT] = true;
	/* netpollready only ends IO waits: without IO wait in --reasons it would trap per
	 * poller batch for nothing. injectglist is rare (poller and GC batches) and ends
	 * several reasons, so it stays. */
	run->want[BLOCK_PROBE_NETPOLL] = run->io_wait;
	for (int k = 0; multi && k < BLOCK_NPROBES; k++)
		bpf_program__set_expected_attach_type(run->progs[k], BPF_TRACE_UPROBE_MULTI_NR);
	return capture_bpf_load(skel->skeleton, "load BPF program block", run->err);
}

/* uprobe_multi links where the kernel has them (6.6): closing one removes its breakpoint at
 * once and then waits for a grace period (about 4 ms of hits, then 50 ms here), where
 * destroying a perf-event uprobe kept trapping for tens of ms of its 100 ms, and the
 * throttled cycle pays that churn each time. Older kernels reject the attach type at load:
 * then perf-event uprobes. cfg->perf_uprobes forces those. */
static int load_bpf(struct block_run *run)
{
	struct gs_error first = {0};
	struct gs_error *err = run->err;
	int rc;

	/* --reasons is parsed once, here: a bad list is the user's error, reported before
	 * trying any kernel, and each open_load attempt copies the result. */
	run->io_wait = true;
	if (run->cfg->reasons && *run->cfg->reasons) {
		rc = block_parse_reasons(run->cfg->reasons, &run->facts, run->reason_allowed,
					 &run->io_wait, err);
		if (rc < 0)
			return rc;
		run->filter_reasons = true;
	}
	if (!run->cfg->perf_uprobes) {
		run->err = &first;
		rc = open_load(run, true);
		run->err = err;
		if (rc == 0)
			return 0;
		block_bpf__destroy(run->skel);
		run->skel = NULL;
	}
	return open_load(run, false);
}

/* ---- Profile ---- */

static int add_sample(struct block_run *run, const struct block_key *k, uint64_t count,
		      uint64_t delay, bool still_blocked, const char *fraction_label)
{
	uint64_t locs[BLOCK_MAX_FRAMES + 1];
	struct profile_label labels[4];
	struct block_stack st;
	struct stack_proc *sp;
	char rbuf[32];
	int64_t values[2];
	size_t nl = 0, nlab = 0;

	sp = stacks_proc(&run->stacks, run->cfg->pid);
	if (!sp)
		return gs_error_set(run->err, -ENOMEM, "out of memory");
	if (bpf_map__lookup_elem(run->skel->maps.stacks, &k->stack_id, sizeof(k->stack_id), &st,
				 sizeof(st), 0) == 0) {
		uint32_t n = st.n <= BLOCK_MAX_FRAMES ? st.n : BLOCK_MAX_FRAMES;

		nl = stacks_user_stack(&run->stacks, sp, (const uint64_t *)st.pcs, n, locs, 0);
	}
	values[0] = (int64_t)count;
	values[1] = (int64_t)delay;
	labels[nlab++] = (struct profile_label){
		.key = "wait_reason",
		.str = goversion_wait_reason(&run->facts, k->reason, rbuf, sizeof(rbuf))};
	if (run->cfg->goroutine_ids)
		labels[nlab++] = (struct profile_label){.key = "goid", .num = (int64_t)k->goid};
	if (still_blocked)
		labels[nlab++] = (struct profile_label){.key = "still_blocked", .str = "true"};
	if (fraction_label)
		labels[nlab++] =
			(struct profile_label){.key = "sampled_fraction", .str = fraction_label};
	return profile_add_sample(run->prof, locs, nl, values, labels, nlab, run->err);
}

static int collect(struct block_run *run, bool target_alive, const char *fraction_label)
{
	int afd = bpf_map__fd(run->skel->maps.agg), pfd = bpf_map__fd(run->skel->maps.pending);
	struct block_key key, next, *prev = NULL;
	uint64_t now = capture_monotonic_ns();
	struct block_value v;
	__u64 gk, gnext, *gprev = NULL;
	struct block_pending p;
	int rc;

	while (bpf_map_get_next_key(afd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(afd, &key, &v) < 0 || v.count == 0)
			continue;
		run->stats->blocks += v.count;
		rc = add_sample(run, &key, v.count, v.delay_ns, false, fraction_label);
		if (rc < 0)
			return rc;
	}
	/* Goroutines blocked now: their delay so far. Once the target has exited there is
	 * no blocked goroutine any more, so they are not reported then. */
	if (!target_alive)
		return 0;
	while (bpf_map_get_next_key(pfd, gprev, &gnext) == 0) {
		gk = gnext;
		gprev = &gk;
		if (bpf_map_lookup_elem(pfd, &gk, &p) < 0)
			continue;
		if (now > p.park_ns && now - p.park_ns < run->cfg->min_delay_ns)
			continue;
		if (!g_still_parked(run, gk, &p)) {
			run->stats->cancelled++;
			continue;
		}
		key = (struct block_key){
			.stack_id = p.stack_id, .goid = p.goid, .reason = p.reason};
		run->stats->still_blocked++;
		rc = add_sample(run, &key, 1, now > p.park_ns ? now - p.park_ns : 0, true,
				fraction_label);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void add_comments(struct block_run *run, const uint64_t *s)
{
	struct block_stats *st = run->stats;
	char text[768];

	snprintf(text, sizeof(text),
		 "goscope block: %s (wait-reason table %s); %" PRIu64 " parks, %" PRIu64
		 " blocks (%" PRIu64 " woken without runtime.ready), %" PRIu64
		 " cancelled parks dropped (or woken by an unprobed path), %" PRIu64
		 " still blocked at the end, %" PRIu64 " below --min-delay, %" PRIu64
		 " lost (maps full), %" PRIu64
		 " probe hits skipped (headed for morestack, which re-runs the function)",
		 st->go_version, st->table_measured ? "measured" : "inferred", st->parks,
		 st->blocks, st->counted_without_ready, st->cancelled, st->still_blocked,
		 st->short_blocks, st->lost, st->restarts);
	profile_add_comment(run->prof, text);
	if (st->sampled_fraction < 1.0) {
		snprintf(text, sizeof(text),
			 "goscope block: throttled by --max-overhead %.3g%%: probes on %.2f%% of "
			 "the time in %u windows (cost per probe hit: trap %.0f ns + BPF %.0f ns); "
			 "counts and delays are scaled by 1/%.4f; %" PRIu64 " blocks outlived "
			 "their window's drain and were timed by polling the goroutine's status "
			 "(to %.0f ms)",
			 run->cfg->max_overhead_pct, st->sampled_fraction * 100, st->windows,
			 st->trap_cost_ns, st->bpf_cost_ns, st->sampled_fraction, st->polled,
			 POLL_NS / 1e6);
		profile_add_comment(run->prof, text);
	}
	(void)s;
}

/* ---- Capture loop ---- */

struct duty {
	bool throttled, on, draining;
	uint64_t window_start, on_len, drain_end, cycle_end, cycle_len;
	uint64_t on_total, hits_at_cycle, cpu_at_cycle, cycle_start;
	uint64_t attach_ns;   /* how long this cycle's attach took */
	uint64_t detach_at;   /* when this cycle's detach began (0: not yet) */
	uint64_t attached_ns; /* this cycle's on-window + drain */
	uint64_t detached_at; /* last look at the long blocks (or the detach) */
	uint32_t gen;
};

void block_plan_cycle(double attach_frac, uint64_t churn_ns, double attached_per_on,
		      uint64_t prev_on_ns, uint64_t *on_ns, uint64_t *cycle_ns)
{
	double cycle = (double)BLOCK_CYCLE_NS, on, need;

	if (attached_per_on < 1.0)
		attached_per_on = 1.0;
	if (attach_frac >= 1.0) {
		on = cycle;
	} else {
		need = ((double)BLOCK_MIN_ON_NS * attached_per_on + (double)churn_ns) / attach_frac;
		if (need > cycle)
			cycle = need < (double)BLOCK_CYCLE_MAX_NS ? need
								  : (double)BLOCK_CYCLE_MAX_NS;
		on = (attach_frac * cycle - (double)churn_ns) / attached_per_on;
	}
	if (on > (double)prev_on_ns * BLOCK_FRACTION_GROWTH)
		on = (double)prev_on_ns * BLOCK_FRACTION_GROWTH;
	if (on < (double)BLOCK_MIN_ON_NS)
		on = (double)BLOCK_MIN_ON_NS;
	if (on > cycle)
		cycle = on;
	*on_ns = (uint64_t)on;
	*cycle_ns = (uint64_t)cycle;
}

static int start_window(struct block_run *run, struct duty *d, uint64_t now)
{
	int rc;

	/* Long blocks woken since the last tick are counted before the probes come back. */
	poll_long_blocks(run, d->detached_at, now);
	d->gen++;
	run->skel->bss->window_gen = d->gen;
	d->on = true;
	d->draining = false;
	d->cycle_start = now;
	d->cycle_end = now + d->cycle_len;
	d->detach_at = 0;
	run->stats->windows++;
	run->skel->data->parks_open = 0;
	rc = attach_all(run);
	d->attach_ns = capture_monotonic_ns() - now;
	/* Registering uprobes takes milliseconds, and gopark's probe goes live somewhere in
	 * its registration: the window (the sampled time) starts after it, and only then may
	 * gopark record parks, so no park is sampled outside the time the fraction counts. */
	d->window_start = capture_monotonic_ns();
	run->skel->data->parks_open = 1;
	return rc;
}

/* One duty-cycle step; called every tick while throttled. */
static int duty_step(struct block_run *run, struct duty *d, uint64_t now)
{
	uint64_t s[BLOCK_STAT_COUNT];

	if (d->on && now - d->window_start >= d->on_len) {
		d->on_total += capture_monotonic_ns() - d->window_start;
		/* No new parks; wake-ups still seen, and a g parking again ends its cancelled
		 * park. */
		run->skel->data->parks_open = 0;
		d->on = false;
		d->draining = true;
		d->drain_end = now + BLOCK_DRAIN_FACTOR * d->on_len;
	}
	if (d->draining)
		run->stats->cancelled += drop_not_parked(run, d->gen);
	if (d->draining && (pending_of_window(run, d->gen) == 0 || now >= d->drain_end)) {
		d->detach_at = capture_monotonic_ns();
		detach_all(run, true);
		d->detached_at = capture_monotonic_ns();
		d->attached_ns += d->detached_at - d->window_start;
		d->draining = false;
	} else if (!d->on && !d->draining) {
		poll_long_blocks(run, d->detached_at, now);
		d->detached_at = now;
	}
	if (!d->on && !d->draining && now >= d->cycle_end) {
		/* Re-estimate the fraction from the cycle that ended. */
		uint64_t cpu = proc_cpu_ns(run->cfg->pid), hits, on_ns = d->on_len;
		double cycle_s = (double)(now - d->cycle_start) / 1e9, cpu_rate, probe_cpu, cost_ns;
		double attached_per_on =
			d->attached_ns ? (double)d->attached_ns / (double)on_ns : 1.0;
		uint64_t churn = d->attach_ns, detach_done = 0;
		double attached_s, attach_frac;

		/* Attaching and detaching cost attached time too: a uprobe link takes about
		 * 100 ms to destroy here, and its breakpoint can keep trapping meanwhile. */
		for (int k = 0; k < BLOCK_NPROBES; k++) {
			reap_one(run, (enum block_probe)k);
			if (run->reapers[k].done_at > detach_done)
				detach_done = run->reapers[k].done_at;
		}
		if (d->detach_at && detach_done > d->detach_at)
			churn += detach_done - d->detach_at;
		attached_s = (double)((d->attached_ns ? d->attached_ns : on_ns) + churn) / 1e9;
		read_stats(run, s);
		if (run->bpf_stats_fd >= 0) {
			/* The programs' own cost, measured on this workload (its stack depths,
			 * its map sizes) in the first cycle with probe hits; stats are then turned
			 * off again, as they slow every BPF program of the machine a little. */
			double b = bpf_ns_per_hit(run);

			if (b > 0) {
				run->stats->bpf_cost_ns = b;
				close(run->bpf_stats_fd);
				run->bpf_stats_fd = -1;
			}
		}
		hits = probe_hits(s) - d->hits_at_cycle;
		cost_ns = run->stats->trap_cost_ns + run->stats->bpf_cost_ns;
		probe_cpu = (double)hits * cost_ns;
		cpu_rate = ((double)(cpu - d->cpu_at_cycle) - probe_cpu) / 1e9 / cycle_s;
		if (cpu_rate < 0)
			cpu_rate = 0;
		/* The fraction of the time the probes may be attached, then the next cycle's
		 * on-window and length (block_plan_cycle). */
		attach_frac = block_duty_fraction(run->cfg->max_overhead_pct, cost_ns,
						  (double)hits / attached_s, cpu_rate);
		block_plan_cycle(attach_frac, churn, attached_per_on, d->on_len, &d->on_len,
				 &d->cycle_len);
		d->attached_ns = 0;
		d->hits_at_cycle = probe_hits(s);
		d->cpu_at_cycle = cpu;
		return start_window(run, d, now);
	}
	return 0;
}

int block_capture(const struct block_config *cfg, struct profile **out, struct block_stats *stats,
		  struct gs_error *err)
{
	struct block_run run = {
		.cfg = cfg, .stats = stats, .err = err, .mem_fd = -1, .bpf_stats_fd = -1};
	char mem_path[64];
	uint64_t start, now, last_live = 0, s[BLOCK_STAT_COUNT];
	struct duty d = {.on_len = BLOCK_MIN_ON_NS, .cycle_len = BLOCK_CYCLE_NS};
	char fraction_label[32], *flabel = NULL;
	bool alive = true;
	int64_t start_wall;
	int rc;

	for (int k = 0; k < BLOCK_NPROBES; k++)
		run.links[k].multi_fd = run.reapers[k].link.multi_fd = -1;
	memset(stats, 0, sizeof(*stats));
	stats->sampled_fraction = 1.0;
	rc = proc_check_alive(cfg->pid, err);
	if (rc < 0)
		return rc;
	run.ncpus = capture_ncpus();
	if (run.ncpus <= 0)
		return gs_error_set(err, -EINVAL, "cannot count CPUs");
	rc = open_target(&run);
	if (rc < 0)
		return rc;
	run.prof = profile_new();
	if (!run.prof)
		return gs_error_set(err, -ENOMEM, "out of memory");
	profile_add_sample_type(run.prof, "contentions", "count");
	profile_add_sample_type(run.prof, "delay", "nanoseconds");
	profile_set_period(run.prof, "contentions", "count", 1);
	rc = stacks_init(&run.stacks, run.prof, false, err);
	if (rc < 0)
		goto out_prof;
	/* Open the process (and its binaries) now: they may be gone once it exits. */
	stacks_proc(&run.stacks, cfg->pid);
	snprintf(mem_path, sizeof(mem_path), "/proc/%d/mem", cfg->pid);
	run.mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC); /* optional: see g_still_parked */
	rc = load_bpf(&run);
	if (rc < 0)
		goto out_skel;
	stats->probes = run.multi ? "uprobe_multi" : "perf-event";

	d.throttled = cfg->max_overhead_pct < BLOCK_OVERHEAD_UNTHROTTLED;
	if (d.throttled) {
		stats->trap_cost_ns = calibrate(&run);
		/* Unavailable (kernel < 5.8, or on already by sysctl, when the counters move
		 * anyway) is no error: without a measurement the estimate is the trap alone. */
		run.bpf_stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (run.bpf_stats_fd < 0)
			run.bpf_stats_fd = -1;
		d.cpu_at_cycle = proc_cpu_ns(cfg->pid);
		/* The first window runs for BLOCK_MIN_ON_NS of a BLOCK_CYCLE_NS cycle (see d's
		 * initializer); the plan is then learned from what it cost. */
	}
	start = capture_monotonic_ns();
	start_wall = capture_realtime_ns();
	rc = d.throttled ? start_window(&run, &d, start) : attach_all(&run);
	if (rc < 0)
		goto out_links;
	if (cfg->on_attached)
		cfg->on_attached(cfg->arg, stats->go_version);

	stats->ended_by = "signal";
	for (;;) {
		struct timespec ts = {0, (long)POLL_NS};

		nanosleep(&ts, NULL);
		if (cfg->stop && *cfg->stop)
			break;
		now = capture_monotonic_ns();
		if (cfg->duration_ns && now - start >= cfg->duration_ns) {
			stats->ended_by = "duration";
			break;
		}
		if (now - last_live >= LIVENESS_EVERY_NS) {
			last_live = now;
			if (!proc_alive(cfg->pid)) {
				stats->ended_by = "target exited";
				alive = false;
				break;
			}
		}
		if (d.throttled) {
			rc = duty_step(&run, &d, now);
			if (rc < 0 && !proc_alive(cfg->pid)) {
				/* The target exited while a window was being attached. */
				gs_error_clear(err);
				rc = 0;
				stats->ended_by = "target exited";
				alive = false;
				break;
			}
			if (rc < 0)
				goto out_links;
		}
	}
	now = capture_monotonic_ns();
	if (d.on)
		d.on_total += now - d.window_start;
	detach_all(&run, false);
	stats->duration_ns = now - start;
	if (alive)
		alive = proc_alive(cfg->pid);
	if (d.throttled) {
		/* Long blocks that ended since the last look; what stays pending is still
		 * blocked. A park of the last window whose goroutine runs again while the
		 * probes were attached was cancelled, as in a drain. */
		if (d.on || d.draining)
			stats->cancelled += drop_not_parked(&run, d.gen);
		poll_long_blocks(&run, d.detached_at, now);
		stats->sampled_fraction =
			stats->duration_ns ? (double)d.on_total / (double)stats->duration_ns : 1.0;
		if (stats->sampled_fraction > 1.0)
			stats->sampled_fraction = 1.0;
		if (stats->sampled_fraction < 1.0) {
			snprintf(fraction_label, sizeof(fraction_label), "%.4f",
				 stats->sampled_fraction);
			flabel = fraction_label;
		}
	}
	rc = collect(&run, alive, flabel);
	if (rc < 0)
		goto out_links;
	if (flabel)
		profile_scale(run.prof, (uint64_t)(1e6 / stats->sampled_fraction), 1000000);
	read_stats(&run, s);
	stats->parks = s[BLOCK_STAT_RECORDED];
	stats->counted_without_ready = s[BLOCK_STAT_COUNTED_NETPOLL] + s[BLOCK_STAT_COUNTED_INJECT];
	stats->cancelled += s[BLOCK_STAT_OVERWRITTEN];
	stats->short_blocks = s[BLOCK_STAT_SHORT] + run.polled_short;
	stats->restarts = s[BLOCK_STAT_RESTARTS];
	stats->lost = s[BLOCK_STAT_PENDING_FULL] + s[BLOCK_STAT_STACKS_FULL] +
		      s[BLOCK_STAT_AGG_FULL] + run.polled_lost;
	profile_set_time(run.prof, start_wall, (int64_t)stats->duration_ns);
	add_comments(&run, s);
out_links:
	detach_all(&run, false);
out_skel:
	if (run.bpf_stats_fd >= 0)
		close(run.bpf_stats_fd);
	block_bpf__destroy(run.skel);
	if (run.mem_fd >= 0)
		close(run.mem_fd);
	stacks_free(&run.stacks);
out_prof:
	if (rc < 0) {
		profile_free(run.prof);
		return rc;
	}
	*out = run.prof;
	return 0;
}
