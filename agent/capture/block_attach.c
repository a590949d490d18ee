/* block_attach.c — the kernel side of the block capture: loading bpf/block.bpf.c for the
 * target (its per-version facts and --reasons in rodata), and the two attach/detach backends:
 * uprobe_multi links where the kernel has them (6.6), perf-event uprobes elsewhere. Detached
 * links are destroyed by reaper threads, so the capture loop keeps its pace.
 *
 * Probes are bpf_link fds owned by this process: whatever way goscope ends (SIGKILL included)
 * the kernel removes them with the fds. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"

#define BPF_TRACE_UPROBE_MULTI_NR 48 /* enum bpf_attach_type, Linux 6.6 */
#define UPROBE_MULTI_ATTR_TAIL 64    /* zeroes after link_create.uprobe_multi */

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

/* The BPF side's counters (enum block_stat), summed over the CPUs. */
void block_read_stats(struct block_session *s, uint64_t *sums)
{
	capture_percpu_sums(s->skel->maps.stats, BLOCK_STAT_COUNT, sums);
}

/* Every probe hit, counted or not: what the traps cost is per hit. */
uint64_t block_probe_hits(const uint64_t *s)
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

static int attach_multi(struct block_session *s, enum block_probe k)
{
	struct uprobe_multi_attr a;
	__u64 off = s->offsets[k];

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)bpf_program__fd(s->progs[k]);
	a.attach_type = BPF_TRACE_UPROBE_MULTI_NR;
	a.path = (__u64)(uintptr_t)s->exe;
	a.offsets = (__u64)(uintptr_t)&off;
	a.cnt = 1;
	a.pid = (__u32)s->cfg.pid;
	return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
}

/* Attaches probe k, for the target process only, through the session's backend. */
static int attach_one(struct block_session *s, enum block_probe k)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct probe_link *l = &s->links[k];

	if (link_live(l) || !s->want[k])
		return 0;
	if (s->multi) {
		l->multi_fd = attach_multi(s, k);
		if (l->multi_fd < 0)
			return capture_bpf_error(s->err, -errno, "attach uprobe_multi");
		return 0;
	}
	l->perf = bpf_program__attach_uprobe_opts(s->progs[k], s->cfg.pid, s->exe, s->offsets[k],
						  &opts);
	if (!l->perf)
		return capture_bpf_error(s->err, -errno, "attach uprobe");
	return 0;
}

/* A reaper thread's body (or called inline): destroys one detached link. */
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
void block_reap_one(struct block_session *s, enum block_probe k)
{
	if (s->reapers[k].busy) {
		pthread_join(s->reapers[k].thread, NULL);
		s->reapers[k].busy = false;
	}
}

/* Destroying a uprobe link returns only after the kernel's grace periods (about 100 ms per
 * link on this VM), though its breakpoint is gone at the start. With async, each link is
 * destroyed by a thread of its own: the breakpoints all go at once, and the capture loop
 * keeps its 20 ms pace (duty cycle, polling of long blocks) instead of stalling for 400 ms
 * with the wake-up probes still trapping. */
static void detach_one(struct block_session *s, enum block_probe k, bool async)
{
	struct probe_link l = s->links[k];

	if (!link_live(&l))
		return;
	s->links[k] = (struct probe_link){.perf = NULL, .multi_fd = -1};
	block_reap_one(s, k);
	s->reapers[k].link = l;
	if (async &&
	    pthread_create(&s->reapers[k].thread, NULL, destroy_link, &s->reapers[k]) == 0) {
		s->reapers[k].busy = true;
		return;
	}
	destroy_link(&s->reapers[k]);
}

/* Detaches every probe; async: each link destroyed by a reaper thread (detach_one). */
void block_detach_all(struct block_session *s, bool async)
{
	for (int k = 0; k < BLOCK_NPROBES; k++)
		detach_one(s, (enum block_probe)k, async);
	if (!async)
		for (int k = 0; k < BLOCK_NPROBES; k++)
			block_reap_one(s, (enum block_probe)k);
}

/* Attaches every wanted probe not attached yet. */
int block_attach_all(struct block_session *s)
{
	/* Wake-up probes first, so no park recorded here can miss its wake-up. */
	int rc = attach_one(s, BLOCK_PROBE_READY);

	if (rc == 0)
		rc = attach_one(s, BLOCK_PROBE_NETPOLL);
	if (rc == 0)
		rc = attach_one(s, BLOCK_PROBE_INJECT);
	if (rc == 0)
		rc = attach_one(s, BLOCK_PROBE_GOPARK);
	return rc;
}

/* Opens and loads the BPF object; with multi, the probe programs are loaded for
 * uprobe_multi links. */
static int open_load(struct block_session *s, bool multi)
{
	struct block_bpf *skel = block_bpf__open();

	if (!skel)
		return capture_bpf_error(s->err, -errno, "open BPF object block");
	s->skel = skel;
	s->multi = multi;
	skel->rodata->target_tgid = (__u32)s->cfg.pid;
	skel->rodata->capture_goid = s->cfg.goroutine_ids;
	skel->rodata->goid_offset = s->facts.g_goid;
	skel->rodata->min_delay_ns = s->cfg.min_delay_ns;
	skel->rodata->g_schedlink_offset = s->facts.g_schedlink;
	skel->rodata->pd_rg_offset = s->facts.pd_rg;
	skel->rodata->pd_wg_offset = s->facts.pd_wg;
	skel->rodata->g_tracking_seq_offset = s->facts.g_tracking_seq;
	if (s->filter_reasons) {
		memcpy((uint8_t *)skel->rodata->reason_allowed, s->reason_allowed,
		       sizeof(s->reason_allowed));
		skel->rodata->filter_reasons = true;
	}
	for (int k = 0; k < BLOCK_NPROBES; k++)
		if (s->on_branch[k])
			skel->rodata->probe_on_branch |= 1u << k;
	s->progs[BLOCK_PROBE_GOPARK] = skel->progs.block_gopark;
	s->progs[BLOCK_PROBE_READY] = skel->progs.block_ready;
	s->progs[BLOCK_PROBE_NETPOLL] = skel->progs.block_netpollready;
	s->progs[BLOCK_PROBE_INJECT] = skel->progs.block_injectglist;
	s->want[BLOCK_PROBE_GOPARK] = s->want[BLOCK_PROBE_READY] = s->want[BLOCK_PROBE_INJECT] =
		true;
	/* netpollready only ends IO waits: without IO wait in --reasons it would trap per
	 * poller batch for nothing. injectglist is rare (poller and GC batches) and ends
	 * several reasons, so it stays. */
	s->want[BLOCK_PROBE_NETPOLL] = s->io_wait;
	for (int k = 0; multi && k < BLOCK_NPROBES; k++)
		bpf_program__set_expected_attach_type(s->progs[k], BPF_TRACE_UPROBE_MULTI_NR);
	return capture_bpf_load(skel->skeleton, "load BPF program block", s->err);
}

/* uprobe_multi links where the kernel has them (6.6): closing one removes its breakpoint at
 * once and then waits for a grace period (about 4 ms of hits, then 50 ms here), where
 * destroying a perf-event uprobe kept trapping for tens of ms of its 100 ms, and the
 * throttled cycle pays that churn each time. Older kernels reject the attach type at load:
 * then perf-event uprobes. cfg->perf_uprobes forces those. */
int block_load_bpf(struct block_session *s)
{
	struct gs_error first = {0};
	struct gs_error *err = s->err;
	int rc;

	/* --reasons is parsed once, here: a bad list is the user's error, reported before
	 * trying any kernel, and each open_load attempt copies the result. */
	s->io_wait = true;
	if (s->cfg.reasons && *s->cfg.reasons) {
		rc = block_parse_reasons(s->cfg.reasons, &s->facts, s->reason_allowed, &s->io_wait,
					 err);
		if (rc < 0)
			return rc;
		s->filter_reasons = true;
	}
	if (!s->cfg.perf_uprobes) {
		s->err = &first;
		rc = open_load(s, true);
		s->err = err;
		if (rc == 0)
			return 0;
		block_bpf__destroy(s->skel);
		s->skel = NULL;
	}
	return open_load(s, false);
}

/* Links attached now, plus detached ones whose destroy has not returned yet (a perf-event
 * uprobe can keep trapping until then). */
unsigned block_session_live_links(const struct block_session *s)
{
	unsigned n = 0;

	for (int k = 0; k < BLOCK_NPROBES; k++)
		n += link_live(&s->links[k]) +
		     (s->reapers[k].busy && link_live(&s->reapers[k].link));
	return n;
}

bool block_links_live(const struct block_session *s)
{
	return block_session_live_links(s) > 0;
}
