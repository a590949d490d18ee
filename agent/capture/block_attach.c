/* block_attach.c — the kernel side of the block capture: loading bpf/block.bpf.c for the
 * target (its per-version facts and --reasons in rodata), and the two attach/detach backends:
 * uprobe_multi links where the kernel has them (6.6), perf-event uprobes elsewhere.
 *
 * The links are owned by the session's probe keeper (probe_keeper.h), a child process that
 * creates and closes them on request: a SIGKILL of goscope can then never land inside a uprobe
 * (un)registration and leave a breakpoint in the target, and when goscope ends, however it
 * ends, the keeper closes every link and exits. Closes are asynchronous: the capture loop
 * keeps its pace and reads their completion time later (block_sync_detaches). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.skel.h"
#include "capture/block_impl.h"
#include "capture/core.h"
#include "capture/probe_keeper.h"

int block_parse_reasons(const char *list, const struct goversion_facts *f, uint8_t *allowed,
			bool *io_wait, struct gs_error *err)
{
	char buf[1024], *save = NULL, *tok;
	int n, nreasons = 0;

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
		nreasons++;
		if (strcmp(tok, "IO wait") == 0)
			*io_wait = true;
	}
	/* ",,," would allow no reason at all: a capture of nothing, surely not what was meant. */
	if (!nreasons)
		return gs_error_set(err, -EINVAL, "--reasons lists no wait reason");
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

/* Attaches probe k, for the target process only, through the session's backend. Every link
 * on the target is created by the session's probe keeper (probe_keeper.h says why). */
static int attach_one(struct block_session *s, enum block_probe k)
{
	struct probe_spec spec = {.kind = s->multi ? PROBE_LINK_UPROBE_MULTI
						   : PROBE_LINK_PERF_EVENT,
				  .prog_fd = bpf_program__fd(s->progs[k]),
				  .pid = s->cfg.pid,
				  .path = s->exe,
				  .offset = s->offsets[k],
				  .multi_expected = s->multi};
	int rc;

	if (s->attached[k] || !s->want[k])
		return 0;
	/* A detach of slot k still in flight is ahead of this attach in the keeper's queue:
	 * the slot is free by the time the keeper reads the attach. */
	rc = probe_keeper_attach(s->keeper, (unsigned)k, &spec, s->err);
	if (rc < 0)
		return rc;
	s->attached[k] = true;
	return 0;
}

/* Collects the keeper's answers to the detaches asked so far (waiting for the closes still in
 * progress); s->detach_done is then when the last one completed. */
int block_sync_detaches(struct block_session *s)
{
	uint64_t done = 0;
	bool any = false;
	int rc;

	for (int k = 0; k < BLOCK_NPROBES; k++)
		any |= s->detaching[k];
	if (!any || !s->keeper)
		return 0;
	rc = probe_keeper_sync(s->keeper, &done);
	for (int k = 0; k < BLOCK_NPROBES; k++)
		s->detaching[k] = false;
	if (done)
		s->detach_done = done;
	return rc;
}

/* Destroying a uprobe link returns only after the kernel's grace periods (about 100 ms per
 * link on this VM), though its breakpoint is gone at the start. The keeper closes the links
 * while the capture loop keeps its 20 ms pace (duty cycle, polling of long blocks); with
 * !async, this waits for every close to complete. */
void block_detach_all(struct block_session *s, bool async)
{
	for (int k = 0; k < BLOCK_NPROBES; k++) {
		if (!s->attached[k])
			continue;
		s->attached[k] = false;
		/* A keeper that is gone has closed its links already. */
		if (probe_keeper_detach(s->keeper, (unsigned)k) == 0)
			s->detaching[k] = true;
	}
	if (!async)
		block_sync_detaches(s);
}

/* Leftover breakpoints at this session's probe points: uprobes an earlier goscope leaked
 * there (killed while the kernel (un)registered one; probe_keeper_repair). Every point is
 * looked at, used in this session or not: an earlier capture may have probed it. Returns how
 * many were repaired, or -errno. */
int block_repair_leftovers(struct block_session *s)
{
	return probe_keeper_repair(s->keeper, s->cfg.pid, s->exe, s->addrs, s->offsets,
				   BLOCK_NPROBES, s->multi, s->err);
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
	/* One process's label sets: a smaller LRU map than the node-wide CPU session's (LRU maps
	 * are preallocated, and the agent runs one block session per process). */
	if (bpf_map__set_max_entries(skel->maps.labelsets, BLOCK_MAX_LABELSETS) < 0)
		return gs_error_set(s->err, -EINVAL, "labelsets map size");
	skel->rodata->target_tgid = (__u32)s->cfg.pid;
	skel->rodata->capture_goid = s->cfg.goroutine_ids;
	skel->rodata->goid_offset = s->facts.g_goid;
	skel->rodata->min_delay_ns = s->cfg.min_delay_ns;
	skel->rodata->g_schedlink_offset = s->facts.g_schedlink;
	skel->rodata->pd_rg_offset = s->facts.pd_rg;
	skel->rodata->pd_wg_offset = s->facts.pd_wg;
	skel->rodata->g_tracking_seq_offset = s->facts.g_tracking_seq;
	if (s->facts.g_labels) {
		skel->rodata->g_labels_offset = s->facts.g_labels;
		skel->rodata->labels_layout =
			s->facts.labels_slice ? GS_LABELS_SLICE : GS_LABELS_MAP;
	}
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
		bpf_program__set_expected_attach_type(s->progs[k], CAPTURE_BPF_TRACE_UPROBE_MULTI);
	/* The calibration probe is made the same way (block_calibrate). */
	if (multi)
		bpf_program__set_expected_attach_type(skel->progs.block_calibrate,
						      CAPTURE_BPF_TRACE_UPROBE_MULTI);
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

/* Links attached now, plus detached ones whose close has not been seen completed (a
 * perf-event uprobe can keep trapping until then). */
unsigned block_session_live_links(const struct block_session *s)
{
	unsigned n = 0;

	for (int k = 0; k < BLOCK_NPROBES; k++)
		n += s->attached[k] + s->detaching[k];
	return n;
}

bool block_links_live(const struct block_session *s)
{
	return block_session_live_links(s) > 0;
}
