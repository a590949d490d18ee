/* block_calibrate.c — what one probe hit costs on this machine, for the duty cycle: the trap,
 * timed at start-up on an empty probe on goscope's own code, and the BPF programs' run time per
 * hit, read from the kernel's run-time stats once the first cycle has had probe hits. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"

#define CALIBRATE_CALLS 2000
#define DEFAULT_TRAP_COST_NS 9000.0 /* what block_calibrate measured on the development VM */

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

/* The file offset of addr in goscope's own executable mapping (0: not found). */
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

/* Mean time of one call of the calibration function, in ns. */
static double time_calls(unsigned n)
{
	uint64_t t0 = capture_monotonic_ns();

	for (unsigned i = 0; i < n; i++)
		block_calibrate_target();
	return (double)(capture_monotonic_ns() - t0) / n;
}

/* Cost of one uprobe hit on this machine: an empty probe on a function of goscope, timed
 * with and without. Falls back to DEFAULT_TRAP_COST_NS. This probe is attached by goscope
 * itself, not through the session's probe keeper (probe_keeper.h): it sits in goscope's own
 * code, so a uprobe leaked here by a SIGKILL mid-(un)registration harms no other process.
 * It is the same kind of link as the session's probes: a uprobe_multi link when the session
 * has those, which needs no CAP_SYS_ADMIN (a perf-event uprobe does: inside a container with
 * goscope's capabilities it fails with EACCES, and the cost would stay uncalibrated). */
double block_calibrate(struct block_session *s)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	uint64_t off = self_file_offset((uintptr_t)block_calibrate_branch);
	struct bpf_link *l = NULL;
	double base, with;
	int fd = -1;

	if (!off)
		return DEFAULT_TRAP_COST_NS;
	if (s->multi)
		fd = capture_uprobe_multi_link(bpf_program__fd(s->skel->progs.block_calibrate),
					       "/proc/self/exe", off, getpid());
	else
		l = bpf_program__attach_uprobe_opts(s->skel->progs.block_calibrate, 0,
						    "/proc/self/exe", off, &opts);
	if (fd < 0 && !l)
		return DEFAULT_TRAP_COST_NS;
	with = time_calls(CALIBRATE_CALLS);
	if (fd >= 0)
		close(fd);
	bpf_link__destroy(l);
	base = time_calls(CALIBRATE_CALLS);
	return with > base ? with - base : DEFAULT_TRAP_COST_NS;
}

/* BPF run time per probe hit, averaged over goscope's programs since load, or -1 when the
 * kernel kept no run-time stats. */
double block_bpf_ns_per_hit(struct block_session *s)
{
	uint64_t ns = 0, cnt = 0;

	for (int k = 0; k < BLOCK_NPROBES; k++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (!s->progs[k] ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(s->progs[k]), &info, &len) < 0)
			continue;
		ns += info.run_time_ns;
		cnt += info.run_cnt;
	}
	return cnt ? (double)ns / (double)cnt : -1;
}
