/* goversion_table.c — the per-Go-version facts behind goversion_table.h: one wait-reason table
 * (each string once, its number in every numbering) and one table of versions (one entry per Go
 * minor version, named fields). docs/go-runtime.md says how each number was measured and gives
 * the program that measures them; the short form:
 *  - wait reasons: the `waitReason = iota` const block of runtime/runtime2.go of each
 *    installed toolchain (/usr/lib/go-1.N/src) in order, with the strings of
 *    waitReasonStrings; the same lists read back from runtime.waitReasonStrings in binaries
 *    built by each toolchain (docs/go-runtime.md, "Wait reasons").
 *  - runtime.g and runtime.pollDesc offsets: DW_AT_data_member_location in the DWARF of
 *    tests/go/netpark built by each toolchain (tests/gobuild.sh netpark 1.N default)
 *    (docs/go-runtime.md, "runtime.g and runtime.pollDesc offsets").
 *  - the runtime.g / runtime.m fields goroutine dumps read (stack, m, sched, syscall*,
 *    waitsince, lockedm, parentGoid, gopc, startpc, labels, sizeof(g), m.procid, m.curg):
 *    the same DWARF measurement (docs/go-runtime.md, "runtime.g fields for goroutine
 *    dumps"); 1.20 takes 1.21's g layout and 1.25 1.24's, unmeasured.
 *  - Versions not installed here (1.17, 1.18, 1.20, 1.25, > 1.27) are inferred from their
 *    neighbours, measured = false, and the profile says so; each such value says where it
 *    comes from. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "goscope/symbolizer.h"
#include "goruntime/goversion_table.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NONE (-1) /* this numbering has no such wait reason */

/* One row per string the runtime prints for a wait reason (waitReasonStrings); num[] is its
 * waitReason number in each numbering (enum goversion_wait_numbering), NONE where that
 * version does not have it. Ordered as Go 1.26 numbers them; 1.26 reordered the enum, and
 * renamed 1.24's "(synctest)" reasons "(durable)". Numbers per version, total:
 * 1.19: 27, 1.21: 32, 1.22: 37, 1.23: 38, 1.24: 44, 1.26 and 1.27: 47. */
struct wait_reason_row {
	const char *str;
	short num[GOVERSION_WAIT_NUMBERINGS];
};

/* clang-format off */
static const struct wait_reason_row wait_reasons[] = {
	/*      string                                   1.19  1.21  1.22  1.23  1.24  1.26+ */
	{.str = "",                              .num = {   0,    0,    0,    0,    0,    0}},
	{.str = "GC assist marking",             .num = {   1,    1,    1,    1,    1,    1}},
	{.str = "IO wait",                       .num = {   2,    2,    2,    2,    2,    2}},
	{.str = "dumping heap",                  .num = {   5,    5,    5,    5,    5,    3}},
	{.str = "garbage collection",            .num = {   6,    6,    6,    6,    6,    4}},
	{.str = "garbage collection scan",       .num = {   7,    7,    7,    7,    7,    5}},
	{.str = "panicwait",                     .num = {   8,    8,    8,    8,    8,    6}},
	{.str = "GC assist wait",                .num = {  11,   11,   11,   11,   11,    7}},
	{.str = "GC sweep wait",                 .num = {  12,   12,   12,   12,   12,    8}},
	{.str = "GC scavenge wait",              .num = {  13,   13,   13,   13,   13,    9}},
	{.str = "finalizer wait",                .num = {  16,   16,   16,   16,   16,   10}},
	{.str = "force gc (idle)",               .num = {  17,   17,   17,   17,   17,   11}},
	{.str = "GOMAXPROCS updater (idle)",     .num = {NONE, NONE, NONE, NONE, NONE,   12}},
	{.str = "semacquire",                    .num = {  18,   18,   18,   18,   18,   13}},
	{.str = "sleep",                         .num = {  19,   19,   19,   19,   19,   14}},
	{.str = "chan receive (nil chan)",       .num = {   3,    3,    3,    3,    3,   15}},
	{.str = "chan send (nil chan)",          .num = {   4,    4,    4,    4,    4,   16}},
	{.str = "select (no cases)",             .num = {  10,   10,   10,   10,   10,   17}},
	{.str = "select",                        .num = {   9,    9,    9,    9,    9,   18}},
	{.str = "chan receive",                  .num = {  14,   14,   14,   14,   14,   19}},
	{.str = "chan send",                     .num = {  15,   15,   15,   15,   15,   20}},
	{.str = "sync.Cond.Wait",                .num = {  20,   20,   20,   20,   20,   21}},
	{.str = "sync.Mutex.Lock",               .num = {NONE,   21,   21,   21,   21,   22}},
	{.str = "sync.RWMutex.RLock",            .num = {NONE,   22,   22,   22,   22,   23}},
	{.str = "sync.RWMutex.Lock",             .num = {NONE,   23,   23,   23,   23,   24}},
	{.str = "sync.WaitGroup.Wait",           .num = {NONE, NONE, NONE, NONE,   24,   25}},
	{.str = "trace reader (blocked)",        .num = {  22,   24,   24,   24,   25,   26}},
	{.str = "wait for GC cycle",             .num = {  23,   25,   25,   25,   26,   27}},
	{.str = "GC worker (idle)",              .num = {  24,   26,   26,   26,   27,   28}},
	{.str = "GC worker (active)",            .num = {NONE,   27,   27,   27,   28,   29}},
	{.str = "preempted",                     .num = {  25,   28,   28,   28,   29,   30}},
	{.str = "debug call",                    .num = {  26,   29,   29,   29,   30,   31}},
	{.str = "GC mark termination",           .num = {NONE,   30,   30,   30,   31,   32}},
	{.str = "stopping the world",            .num = {NONE,   31,   31,   31,   32,   33}},
	{.str = "flushing proc caches",          .num = {NONE, NONE,   32,   32,   33,   34}},
	{.str = "trace goroutine status",        .num = {NONE, NONE,   33,   33,   34,   35}},
	{.str = "trace proc status",             .num = {NONE, NONE,   34,   34,   35,   36}},
	{.str = "page trace flush",              .num = {NONE, NONE,   35,   35,   36,   37}},
	{.str = "coroutine",                     .num = {NONE, NONE,   36,   36,   37,   38}},
	{.str = "GC weak to strong wait",        .num = {NONE, NONE, NONE,   37,   38,   39}},
	{.str = "synctest.Run",                  .num = {NONE, NONE, NONE, NONE,   39,   40}},
	{.str = "synctest.Wait",                 .num = {NONE, NONE, NONE, NONE,   40,   41}},
	{.str = "chan receive (synctest)",       .num = {NONE, NONE, NONE, NONE,   41, NONE}},
	{.str = "chan receive (durable)",        .num = {NONE, NONE, NONE, NONE, NONE,   42}},
	{.str = "chan send (synctest)",          .num = {NONE, NONE, NONE, NONE,   42, NONE}},
	{.str = "chan send (durable)",           .num = {NONE, NONE, NONE, NONE, NONE,   43}},
	{.str = "select (synctest)",             .num = {NONE, NONE, NONE, NONE,   43, NONE}},
	{.str = "select (durable)",              .num = {NONE, NONE, NONE, NONE, NONE,   44}},
	{.str = "sync.WaitGroup.Wait (durable)", .num = {NONE, NONE, NONE, NONE, NONE,   45}},
	{.str = "cleanup wait",                  .num = {NONE, NONE, NONE, NONE, NONE,   46}},
	{.str = "timer goroutine (idle)",        .num = {  21, NONE, NONE, NONE, NONE, NONE}},
};
/* clang-format on */

/* One entry per Go minor version. The g offsets move together: g.syscallbp was inserted
 * before goid in 1.23 (+8), gobuf.ret removed in 1.26 (-8); pollDesc gained fdseq before rg
 * in 1.20 or 1.21 (1.20 is not installed). */
static const struct goversion_facts table[] = {
	{
		/* not installed: every value as 1.19 (no source of 1.17 here to check) */
		.minor = 17,	       .measured = false,     .wait_reasons = GOVERSION_WAIT_GO119,
		.g_goid = 152,	       .g_atomicstatus = 144, .g_schedlink = 160,
		.g_waitreason = 176,   .pd_rg = 24,	      .pd_wg = 32,
		.g_tracking_seq = 0, /* not measured: goscope does without it */
		.g_stack_lo = 0,       .g_stack_hi = 8,	      .g_m = 48,
		.g_sched_sp = 56,      .g_sched_pc = 64,      .g_sched_bp = 104,
		.g_syscallsp = 112,    .g_syscallpc = 120,    .g_syscallbp = 0,
		.g_waitsince = 168,    .g_lockedm = 232,      .g_parent_goid = 0,
		.g_gopc = 296,	       .g_startpc = 312,      .g_labels = 360,
		.g_size = 392,	       .m_procid = 72,	      .m_curg = 192,
		.labels_slice = false,
	},
	{
		/* not installed: every value as 1.19 */
		.minor = 18,	       .measured = false,     .wait_reasons = GOVERSION_WAIT_GO119,
		.g_goid = 152,	       .g_atomicstatus = 144, .g_schedlink = 160,
		.g_waitreason = 176,   .pd_rg = 24,	      .pd_wg = 32,
		.g_tracking_seq = 0, /* not measured */
		.g_stack_lo = 0,       .g_stack_hi = 8,	      .g_m = 48,
		.g_sched_sp = 56,      .g_sched_pc = 64,      .g_sched_bp = 104,
		.g_syscallsp = 112,    .g_syscallpc = 120,    .g_syscallbp = 0,
		.g_waitsince = 168,    .g_lockedm = 232,      .g_parent_goid = 0,
		.g_gopc = 296,	       .g_startpc = 312,      .g_labels = 360,
		.g_size = 392,	       .m_procid = 72,	      .m_curg = 192,
		.labels_slice = false,
	},
	{
		.minor = 19,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO119,
		.g_goid = 152,
		.g_atomicstatus = 144,
		.g_schedlink = 160,
		.g_waitreason = 176,
		.pd_rg = 24,
		.pd_wg = 32,
		.g_tracking_seq = 189,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 104,
		.g_syscallsp = 112,
		.g_syscallpc = 120,
		.g_syscallbp = 0,
		.g_waitsince = 168,
		.g_lockedm = 232,
		.g_parent_goid = 0,
		.g_gopc = 296,
		.g_startpc = 312,
		.g_labels = 360,
		.g_size = 392,
		.m_procid = 72,
		.m_curg = 192,
		.labels_slice = false,
	},
	{
		/* not installed: g as 1.19 and 1.21 (equal there), pollDesc and wait reasons as
		 * 1.21 (the sync.* and stop-the-world reasons arrived around 1.20/1.21: a reason
		 * this binary does not know is never produced, but a number could name the wrong
		 * string if 1.20 inserted entries differently) */
		.minor = 20,	       .measured = false,     .wait_reasons = GOVERSION_WAIT_GO121,
		.g_goid = 152,	       .g_atomicstatus = 144, .g_schedlink = 160,
		.g_waitreason = 176,   .pd_rg = 32,	      .pd_wg = 40,
		.g_tracking_seq = 0, /* not measured */
		.g_stack_lo = 0,       .g_stack_hi = 8,	      .g_m = 48,
		.g_sched_sp = 56,      .g_sched_pc = 64,      .g_sched_bp = 104,
		.g_syscallsp = 112,    .g_syscallpc = 120,    .g_syscallbp = 0,
		.g_waitsince = 168,    .g_lockedm = 208,      .g_parent_goid = 272,
		.g_gopc = 280,	       .g_startpc = 296,      .g_labels = 344,
		.g_size = 408,	       .m_procid = 72,	      .m_curg = 192,
		.labels_slice = false,
	},
	{
		.minor = 21,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO121,
		.g_goid = 152,
		.g_atomicstatus = 144,
		.g_schedlink = 160,
		.g_waitreason = 176,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 188,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 104,
		.g_syscallsp = 112,
		.g_syscallpc = 120,
		.g_syscallbp = 0,
		.g_waitsince = 168,
		.g_lockedm = 208,
		.g_parent_goid = 272,
		.g_gopc = 280,
		.g_startpc = 296,
		.g_labels = 344,
		.g_size = 408,
		.m_procid = 72,
		.m_curg = 192,
		.labels_slice = false,
	},
	{
		.minor = 22,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO122,
		.g_goid = 152,
		.g_atomicstatus = 144,
		.g_schedlink = 160,
		.g_waitreason = 176,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 191,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 104,
		.g_syscallsp = 112,
		.g_syscallpc = 120,
		.g_syscallbp = 0,
		.g_waitsince = 168,
		.g_lockedm = 208,
		.g_parent_goid = 272,
		.g_gopc = 280,
		.g_startpc = 296,
		.g_labels = 344,
		.g_size = 424,
		.m_procid = 72,
		.m_curg = 192,
		.labels_slice = false,
	},
	{
		.minor = 23,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO123,
		.g_goid = 160,
		.g_atomicstatus = 152,
		.g_schedlink = 168,
		.g_waitreason = 184,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 199,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 104,
		.g_syscallsp = 112,
		.g_syscallpc = 120,
		.g_syscallbp = 128,
		.g_waitsince = 176,
		.g_lockedm = 216,
		.g_parent_goid = 280,
		.g_gopc = 288,
		.g_startpc = 304,
		.g_labels = 352,
		.g_size = 432,
		.m_procid = 72,
		.m_curg = 192,
		.labels_slice = false,
	},
	{
		.minor = 24,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO124,
		.g_goid = 160,
		.g_atomicstatus = 152,
		.g_schedlink = 168,
		.g_waitreason = 184,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 199,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 104,
		.g_syscallsp = 112,
		.g_syscallpc = 120,
		.g_syscallbp = 128,
		.g_waitsince = 176,
		.g_lockedm = 216,
		.g_parent_goid = 280,
		.g_gopc = 288,
		.g_startpc = 304,
		.g_labels = 352,
		.g_size = 440,
		.m_procid = 72,
		.m_curg = 192,
		.labels_slice = true,
	},
	{
		/* not installed: every value as 1.24 (the wait-reason reorder is 1.26's) */
		.minor = 25,	      .measured = false,     .wait_reasons = GOVERSION_WAIT_GO124,
		.g_goid = 160,	      .g_atomicstatus = 152, .g_schedlink = 168,
		.g_waitreason = 184,  .pd_rg = 32,	     .pd_wg = 40,
		.g_tracking_seq = 0, /* not measured */
		.g_stack_lo = 0,      .g_stack_hi = 8,	     .g_m = 48,
		.g_sched_sp = 56,     .g_sched_pc = 64,	     .g_sched_bp = 104,
		.g_syscallsp = 112,   .g_syscallpc = 120,    .g_syscallbp = 128,
		.g_waitsince = 176,   .g_lockedm = 216,	     .g_parent_goid = 280,
		.g_gopc = 288,	      .g_startpc = 304,	     .g_labels = 352,
		.g_size = 440,	      .m_procid = 72,	     .m_curg = 192,
		.labels_slice = true,
	},
	{
		.minor = 26,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO126,
		.g_goid = 152,
		.g_atomicstatus = 144,
		.g_schedlink = 160,
		.g_waitreason = 176,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 191,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 96,
		.g_syscallsp = 104,
		.g_syscallpc = 112,
		.g_syscallbp = 120,
		.g_waitsince = 168,
		.g_lockedm = 208,
		.g_parent_goid = 280,
		.g_gopc = 288,
		.g_startpc = 304,
		.g_labels = 352,
		.g_size = 456,
		.m_procid = 64,
		.m_curg = 184,
		.labels_slice = true,
	},
	{
		.minor = 27,
		.measured = true,
		.wait_reasons = GOVERSION_WAIT_GO126, /* the same numbering as 1.26 */
		.g_goid = 152,
		.g_atomicstatus = 144,
		.g_schedlink = 160,
		.g_waitreason = 176,
		.pd_rg = 32,
		.pd_wg = 40,
		.g_tracking_seq = 191,
		.g_stack_lo = 0,
		.g_stack_hi = 8,
		.g_m = 48,
		.g_sched_sp = 56,
		.g_sched_pc = 64,
		.g_sched_bp = 96,
		.g_syscallsp = 104,
		.g_syscallpc = 112,
		.g_syscallbp = 120,
		.g_waitsince = 168,
		.g_lockedm = 208,
		.g_parent_goid = 280,
		.g_gopc = 288,
		.g_startpc = 304,
		.g_labels = 352,
		.g_size = 456,
		.m_procid = 64,
		.m_curg = 184,
		.labels_slice = true,
	},
};

/* How many waitReason numbers a numbering has (they are dense from 0). */
static size_t wait_reason_count(enum goversion_wait_numbering w)
{
	size_t n = 0;

	for (size_t i = 0; i < N(wait_reasons); i++) {
		if (wait_reasons[i].num[w] != NONE && (size_t)wait_reasons[i].num[w] + 1 > n)
			n = (size_t)wait_reasons[i].num[w] + 1;
	}
	return n;
}

int goversion_lookup(const char *go_version, struct goversion_facts *out, struct gs_error *err)
{
	int major, minor;

	if (!go_version || gs_go_version_parse(go_version, &major, &minor) < 0 || major != 1)
		return gs_error_set(err, -EINVAL, "unknown Go version '%s'",
				    go_version ? go_version : "");
	if (minor < GOVERSION_MIN_MINOR)
		return gs_error_set(err, -EPROTONOSUPPORT,
				    "unsupported: goscope needs Go >= 1.%d (register ABI); "
				    "the target runs %s",
				    GOVERSION_MIN_MINOR, go_version);
	*out = table[N(table) - 1];
	for (size_t i = 0; i < N(table); i++) {
		if (table[i].minor == minor)
			*out = table[i];
	}
	if (out->minor != minor) {
		/* Newer than the table: the newest entry's layout, nothing measured. */
		out->minor = minor;
		out->measured = false;
		out->g_tracking_seq = 0;
	}
	out->nwait_reasons = wait_reason_count(out->wait_reasons);
	return 0;
}

const char *goversion_wait_reason(const struct goversion_facts *f, unsigned n, char *buf,
				  size_t len)
{
	for (size_t i = 0; i < N(wait_reasons); i++) {
		if (wait_reasons[i].num[f->wait_reasons] != NONE &&
		    (unsigned)wait_reasons[i].num[f->wait_reasons] == n)
			return wait_reasons[i].str;
	}
	snprintf(buf, len, "waitReason(%u)", n);
	return buf;
}

int goversion_wait_reason_number(const struct goversion_facts *f, const char *s)
{
	for (size_t i = 0; i < N(wait_reasons); i++) {
		if (wait_reasons[i].num[f->wait_reasons] != NONE &&
		    strcmp(wait_reasons[i].str, s) == 0)
			return wait_reasons[i].num[f->wait_reasons];
	}
	return -ENOENT;
}

/* ---- memory-profile buckets (goversion_table.h, struct goversion_mprof) ----
 * One entry per layout, from its first version. The bucket header is the same in every
 * version; memRecordCycle lost alloc_bytes/free_bytes in 1.27; maxStack (32) became
 * maxProfStackDepth (1024) in 1.23; BlockProfile/MutexProfile moved their walks into
 * blockProfileInternal/mutexProfileInternal in 1.23. 1.17, 1.18 (not installed) as 1.19;
 * 1.20 as 1.19/1.21 (equal); 1.25 as 1.24/1.26 (equal). */
static const struct goversion_mprof mprof_table[] = {
	{.minor = 17,
	 .measured = false,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 32,
	 .mutex_scaled_by_pprof = true,
	 .bbuckets_fn = "runtime.BlockProfile",
	 .xbuckets_fn = "runtime.MutexProfile"},
	{.minor = 19,
	 .measured = true,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 32,
	 .mutex_scaled_by_pprof = true,
	 .bbuckets_fn = "runtime.BlockProfile",
	 .xbuckets_fn = "runtime.MutexProfile"},
	{.minor = 20,
	 .measured = false,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 32,
	 .bbuckets_fn = "runtime.BlockProfile",
	 .xbuckets_fn = "runtime.MutexProfile"},
	{.minor = 21,
	 .measured = true,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 32,
	 .bbuckets_fn = "runtime.BlockProfile",
	 .xbuckets_fn = "runtime.MutexProfile"},
	{.minor = 23,
	 .measured = true,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 1024,
	 .bbuckets_fn = "runtime.blockProfileInternal",
	 .xbuckets_fn = "runtime.mutexProfileInternal"},
	{.minor = 24,
	 .measured = true,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 32,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 1024,
	 .hide_internal_runtime = true,
	 .bbuckets_fn = "runtime.blockProfileInternal",
	 .xbuckets_fn = "runtime.mutexProfileInternal"},
	{.minor = 27,
	 .measured = true,
	 .bucket_hdr = 48,
	 .b_allnext = 8,
	 .b_typ = 16,
	 .b_size = 32,
	 .b_nstk = 40,
	 .cycle_size = 16,
	 .nfuture = 3,
	 .blockrec_size = 16,
	 .max_stack = 1024,
	 .object_size = true,
	 .hide_internal_runtime = true,
	 .bbuckets_fn = "runtime.blockProfileInternal",
	 .xbuckets_fn = "runtime.mutexProfileInternal"},
};

void goversion_mprof_lookup(int minor, struct goversion_mprof *out)
{
	*out = mprof_table[0];
	for (size_t i = 0; i < N(mprof_table); i++) {
		if (mprof_table[i].minor <= minor)
			*out = mprof_table[i];
	}
	/* measured only for the installed versions themselves */
	out->measured = out->measured && (minor == 19 || minor == 21 || minor == 22 ||
					  minor == 23 || minor == 24 || minor == 26 || minor == 27);
}
