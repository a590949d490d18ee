/* goroutines.c — reads every goroutine of a Go program through a gr_mem (live process or
 * core file): runtime.allgs, each runtime.g, stacks unwound from g.sched / g.syscall* by
 * frame pointers, validated against concurrent change. See goroutines.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goruntime/goroutines.h"
#include "profile/profile.h"

#define LINK(d, pc) ((pc) - (d)->bias)
#define STACK_WINDOW 2048 /* bytes read at SP in one go; beyond, word by word */
#define SYMCACHE_SLOTS 16384u
#define MAX_STACK_BYTES (1ull << 30) /* a g whose stack is larger is not a g */

/* ---- symbolization cache: pc -> frames (a goroutine dump repeats the same pcs a lot) ---- */

struct symslot {
	uint64_t pc; /* runtime address; 0 = empty */
	bool exact;  /* looked up at pc, not pc-1 */
	int n;	     /* frames, or < 0: not cached (error) */
	struct gs_frame *frames;
};

struct gr_symcache {
	struct symslot slots[SYMCACHE_SLOTS];
	struct gs_frame scratch[GR_MAX_FRAMES];
};

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* Frames for a runtime pc; exact: the pc came from registers (else it is a return address
 * or a saved resume pc, looked up at pc-1 as Go's unwinder does). */
static int symbolize(struct gr_dump *d, uint64_t pc, bool exact, const struct gs_frame **out)
{
	struct gr_symcache *c = d->symcache;
	struct symslot *s = &c->slots[hash64(pc * 2 + exact) % SYMCACHE_SLOTS];
	struct gs_error err = {0};
	int n;

	if (s->pc == pc && s->exact == exact && s->n >= 0) {
		*out = s->frames;
		return s->n;
	}
	n = gs_binary_symbolize(d->bin, LINK(d, pc), exact ? 0 : GS_LOOKUP_RETURN_ADDR, c->scratch,
				GR_MAX_FRAMES, &err);
	if (n < 0)
		n = 0;
	*out = c->scratch;
	if (n > 0) {
		struct gs_frame *copy = malloc((size_t)n * sizeof(*copy));

		if (copy) {
			memcpy(copy, c->scratch, (size_t)n * sizeof(*copy));
			/* function may point into namebuf: re-point it into the copy */
			for (int i = 0; i < n; i++) {
				if (c->scratch[i].function == c->scratch[i].namebuf)
					copy[i].function = copy[i].namebuf;
			}
			free(s->frames);
			*s = (struct symslot){.pc = pc, .exact = exact, .n = n, .frames = copy};
			*out = copy;
		}
	}
	return n;
}

int gr_dump_frames(struct gr_dump *d, const struct gr_goroutine *g, unsigned i,
		   const struct gs_frame **frames)
{
	if (i >= g->npcs)
		return 0;
	return symbolize(d, g->pcs[i], i == 0 && g->leaf_exact, frames);
}

uint64_t gr_dump_pc_offset(const struct gr_dump *d, const struct gr_goroutine *g, unsigned i,
			   const struct gs_frame *outer)
{
	uint64_t pc = LINK(d, g->pcs[i]);

	return pc > outer->entry ? pc - outer->entry : 0;
}

/* runtime.isExportedRuntime: "runtime.X" with X (after a receiver) upper case. */
static bool exported_runtime(const char *name, size_t len)
{
	const char *s = name + 8, *end = name + len;

	if (len <= 8)
		return false;
	/* runtime.(*Func).Entry: the method name decides */
	if (*s == '(') {
		const char *close = memchr(s, ')', (size_t)(end - s));

		if (!close || close + 2 > end)
			return false;
		s = close + 2;
	}
	return *s >= 'A' && *s <= 'Z';
}

bool gr_frame_shown(const struct gs_frame *f)
{
	size_t len = strnlen(f->function, f->function_len ? f->function_len : 4096);

	if (f->wrapper)
		return false;
	if (!memchr(f->function, '.', len))
		return false;
	if (len >= 8 && memcmp(f->function, "runtime.", 8) == 0) {
		if (len == 21 && memcmp(f->function, "runtime.runFinalizers", 21) == 0)
			return true;
		if (len == 19 && memcmp(f->function, "runtime.runCleanups", 19) == 0)
			return true;
		return exported_runtime(f->function, len);
	}
	return true;
}

bool gr_dump_creator(struct gr_dump *d, const struct gr_goroutine *g, struct gs_frame *out)
{
	struct gs_error err = {0};
	uint64_t pc;

	if (g->goid == 1 || g->gopc == 0)
		return false;
	pc = LINK(d, g->gopc);
	/* Go: the outermost function at gopc, the line of gopc-1 (the CALL of newproc) */
	if (gs_binary_symbolize(d->bin, pc, GS_LOOKUP_RETURN_ADDR | GS_LOOKUP_NO_INLINE, out, 1,
				&err) != 1)
		return false;
	return gr_frame_shown(out);
}

/* ---- finding runtime.allgs ---- */

/* Whether the 24 bytes at addr look like allgs: a slice {ptr, len, cap} with 0 < len <= cap,
 * whose first g has goid 1 (allgadd's first call is for the main goroutine). */
static int check_allgs(const struct gr_target *t, const struct goversion_facts *f, uint64_t addr)
{
	uint64_t s[3], g0, goid;

	if (gr_mem_read(t->mem, addr, s, sizeof(s), NULL) < 0)
		return -EFAULT;
	if (s[0] == 0 || s[1] == 0 || s[1] > s[2] || s[2] > (1ull << 32))
		return -EINVAL;
	if (gr_mem_read(t->mem, s[0], &g0, 8, NULL) < 0 ||
	    gr_mem_read(t->mem, g0 + f->g_goid, &goid, 8, NULL) < 0)
		return -EFAULT;
	return goid == 1 ? 0 : -EINVAL;
}

#define MAX_ALLGADD 4096 /* bytes of runtime.allgadd decoded (it is ~300 in 1.19-1.27) */
#define MAX_RIPREFS 64

/* The targets of the RIP-relative 64-bit loads (REX.W 8B /r with mod=00 rm=101:
 * `MOVQ disp32(RIP), reg`) in code at link-time address base. A byte scan, not a decoder:
 * an accidental match only adds a candidate, and every candidate is validated against the
 * target's memory. */
size_t gr_rip_loads(const uint8_t *code, size_t len, uint64_t base, uint64_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i + 7 <= len && n < max; i++) {
		int32_t disp;

		if ((code[i] & 0xfb) != 0x48 || code[i + 1] != 0x8b || (code[i + 2] & 0xc7) != 0x05)
			continue;
		memcpy(&disp, code + i + 3, 4);
		out[n++] = base + i + 7 + (uint64_t)(int64_t)disp;
	}
	return n;
}

static bool has(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == x)
			return true;
	}
	return false;
}

/* runtime.allgs: the ELF symbol when there is one; else from runtime.allgadd, which loads
 * allgs.ptr, .len and .cap (three RIP-relative MOVQ of X, X+8, X+16) to append to it, in
 * every Go version from 1.19 to 1.27 (docs/go-runtime.md, "Finding runtime.allgs"). */
static int find_allgs(const struct gr_target *t, const struct goversion_facts *f, struct gr_dump *d,
		      struct gs_error *err)
{
	uint64_t addr, size, entry, end, refs[MAX_RIPREFS];
	uint8_t code[MAX_ALLGADD];
	size_t len, n;

	if (gs_binary_find_symbol(t->bin, "runtime.allgs", &addr, &size) == 0 && addr) {
		if (check_allgs(t, f, addr + t->bias) == 0) {
			d->allgs_addr = addr + t->bias;
			d->allgs_found_by = "symbol runtime.allgs";
			return 0;
		}
	}
	if (gs_binary_find_function(t->bin, "runtime.allgadd", &entry, &end) < 0)
		return gs_error_set(
			err, -ENOENT,
			"runtime.allgadd not in the pclntab: cannot find runtime.allgs");
	len = end > entry ? end - entry : 0;
	if (len > sizeof(code))
		len = sizeof(code);
	if (len < 7 || gs_binary_read(t->bin, entry, code, len) < 0)
		return gs_error_set(err, -ENOENT, "cannot read the code of runtime.allgadd");
	n = gr_rip_loads(code, len, entry, refs, MAX_RIPREFS);
	for (size_t i = 0; i < n; i++) {
		if (!has(refs, n, refs[i] + 8) || !has(refs, n, refs[i] + 16))
			continue;
		if (check_allgs(t, f, refs[i] + t->bias) == 0) {
			d->allgs_addr = refs[i] + t->bias;
			d->allgs_found_by = "runtime.allgadd code";
			return 0;
		}
	}
	return gs_error_set(err, -ENOENT,
			    "runtime.allgs not found (no symbol, and none of the %zu addresses "
			    "runtime.allgadd loads holds the goroutine list)",
			    n);
}

/* ---- reading one goroutine ---- */

static uint64_t rd64(const uint8_t *g, uint32_t off)
{
	uint64_t v;

	memcpy(&v, g + off, 8);
	return v;
}

static uint32_t rd32(const uint8_t *g, uint32_t off)
{
	uint32_t v;

	memcpy(&v, g + off, 4);
	return v;
}

/* The stack of one goroutine as read: a window at SP, other words read one by one. */
struct stackread {
	struct gr_mem *mem;
	uint64_t lo, hi;
	uint64_t wbase;
	size_t wlen;
	uint8_t window[STACK_WINDOW];
};

static int stack_word(struct stackread *s, uint64_t addr, uint64_t *v)
{
	if (addr < s->lo || addr + 8 > s->hi || (addr & 7))
		return -EFAULT;
	if (addr >= s->wbase && addr + 8 <= s->wbase + s->wlen) {
		memcpy(v, s->window + (addr - s->wbase), 8);
		return 0;
	}
	return gr_mem_read(s->mem, addr, v, 8, NULL);
}

/* Where an unwind starts: a resume point (g.sched / g.syscall*) or thread registers. */
struct start {
	uint64_t pc, sp, bp;
	bool bp_known; /* g.syscallbp does not exist before 1.23 */
	bool exact;    /* from registers */
};

/* Unwinds from st into g->pcs. The leaf is checked against the pcsp table (as
 * agent/stacks/leaf.c does for CPU samples): the frame is set up iff BP == SP + d - 8, and
 * when it is not (g.sched.bp holds the caller's BP in 1.21+; a leaf caught in its prologue)
 * the return address is the word at SP + d. Then frame pointers: [BP+8] is the return
 * address, [BP] the caller's BP, each BP inside the stack and above the last. */
static void unwind(struct gr_dump *d, const struct gr_target *t, struct stackread *s,
		   const struct start *st, struct gr_goroutine *g, uint64_t goexit_lo,
		   uint64_t goexit_hi)
{
	uint64_t pc = st->pc, sp = st->sp, bp = st->bp, ret, last;
	int32_t dl;

	g->npcs = 0;
	g->truncated = false;
	if (sp < s->lo || sp >= s->hi || !pc)
		return;
	s->wbase = sp & ~7ull;
	s->wlen = s->hi - s->wbase < STACK_WINDOW ? s->hi - s->wbase : STACK_WINDOW;
	if (gr_mem_read(s->mem, s->wbase, s->window, s->wlen, NULL) < 0)
		s->wlen = 0;
	g->pcs[g->npcs++] = pc;
	if (LINK(d, pc) >= goexit_lo && LINK(d, pc) < goexit_hi)
		return;
	/* pcsp at a return address is the delta of the CALL before it: look up pc-1 */
	if (gs_binary_pcsp(t->bin, LINK(d, pc) - (st->exact ? 0 : 1), &dl) < 0 || dl < 0 ||
	    (dl & 7)) {
		g->truncated = true;
		return;
	}
	if (st->bp_known && dl >= 8 && bp == sp + (uint64_t)dl - 8) {
		/* frame set up: the FP walk below finds the return address at [BP+8] */
	} else {
		if (stack_word(s, sp + (uint64_t)dl, &ret) < 0) {
			g->truncated = true;
			return;
		}
		if (!st->bp_known) {
			/* the leaf's own saved BP (frame set up at a saved resume pc) */
			if (dl < 8 || stack_word(s, sp + (uint64_t)dl - 8, &bp) < 0) {
				g->truncated = true;
				return;
			}
		}
		g->pcs[g->npcs++] = ret;
		if (LINK(d, ret) >= goexit_lo && LINK(d, ret) < goexit_hi)
			return;
		sp = sp + (uint64_t)dl + 8; /* the caller's SP: BP must be above it */
	}
	last = sp;
	while (g->npcs < GR_MAX_FRAMES) {
		uint64_t next;

		if (bp == 0)
			return; /* end of the chain (runtime.goexit/mstart clear BP) */
		if (bp < last || bp < s->lo || bp + 16 > s->hi || (bp & 7) ||
		    stack_word(s, bp + 8, &ret) < 0 || stack_word(s, bp, &next) < 0) {
			g->truncated = true;
			return;
		}
		if (ret == 0)
			return;
		g->pcs[g->npcs++] = ret;
		if (LINK(d, ret) >= goexit_lo && LINK(d, ret) < goexit_hi)
			return;
		last = bp + 16;
		bp = next;
	}
	g->truncated = true;
}

static void free_labels(struct gr_goroutine *g)
{
	for (unsigned i = 0; i < g->nlabels; i++) {
		free(g->labels[i].key);
		free(g->labels[i].value);
	}
	free(g->labels);
	g->labels = NULL;
	g->nlabels = 0;
}

/* A Go string {ptr, len} of the target, capped at GR_MAX_LABEL_LEN bytes. */
static char *read_gostring(struct gr_mem *m, const uint8_t *hdr)
{
	uint64_t p = rd64(hdr, 0), len = rd64(hdr, 8);
	char *s;

	if (len > GR_MAX_LABEL_LEN)
		len = GR_MAX_LABEL_LEN;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	if (len && gr_mem_read(m, p, s, len, NULL) < 0) {
		free(s);
		return NULL;
	}
	s[len] = 0;
	return s;
}

/* pprof labels: g.labels points to a struct whose first field is []{Key, Value string}. */
static void read_labels(const struct gr_target *t, const struct goversion_facts *f, uint64_t lp,
			struct gr_goroutine *g)
{
	uint64_t sl[3];
	uint8_t(*kv)[32];
	size_t n;

	if (!lp)
		return;
	if (!f->labels_slice) {
		g->labels_unreadable = true;
		return;
	}
	if (gr_mem_read(t->mem, lp, sl, sizeof(sl), NULL) < 0 || sl[1] > sl[2]) {
		g->labels_unreadable = true;
		return;
	}
	n = sl[1] < GR_MAX_LABELS ? sl[1] : GR_MAX_LABELS;
	if (n == 0)
		return;
	kv = malloc(n * 32);
	g->labels = calloc(n, sizeof(*g->labels));
	if (!kv || !g->labels || gr_mem_read(t->mem, sl[0], kv, n * 32, NULL) < 0) {
		free(kv);
		free(g->labels);
		g->labels = NULL;
		g->labels_unreadable = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *k = read_gostring(t->mem, kv[i]), *v = read_gostring(t->mem, kv[i] + 16);

		if (!k || !v) {
			free(k);
			free(v);
			g->labels_unreadable = true;
			break;
		}
		g->labels[g->nlabels++] = (struct gr_label){.key = k, .value = v};
	}
	free(kv);
}

static const char *const status_names[] = {
	"idle", "runnable",	  "running",   "syscall",   "waiting", "moribund_unused",
	"dead", "enqueue_unused", "copystack", "preempted", "leaked",  "waiting for cgo callback",
};

/* The header status as goroutineheader prints it. */
static void status_string(const struct goversion_facts *f, struct gr_goroutine *g)
{
	char buf[40];
	const char *s = g->status < sizeof(status_names) / sizeof(status_names[0])
				? status_names[g->status]
				: "???";

	if ((g->status == GR_WAITING || g->status == GR_LEAKED) && g->waitreason != 0)
		s = goversion_wait_reason(f, g->waitreason, buf, sizeof(buf));
	snprintf(g->status_str, sizeof(g->status_str), "%s", s);
}

/* isSystemGoroutine: started by a runtime function other than runtime.main (and the
 * finalizer/cleanup goroutines, shown only while they run user code: goscope cannot tell
 * from outside, and they are parked nearly always). */
static bool system_goroutine(struct gr_dump *d, uint64_t startpc)
{
	const struct gs_frame *fr;
	int n = symbolize(d, startpc, true, &fr);
	const char *name;

	if (n <= 0)
		return false;
	name = fr[n - 1].function;
	if (strncmp(name, "runtime.", 8) != 0)
		return false;
	return strcmp(name, "runtime.main") != 0 && strcmp(name, "runtime.corostart") != 0 &&
	       strcmp(name, "runtime.handleAsyncEvent") != 0;
}

/* The fields of a g that must not change between the reads before and after its stack. */
static bool same_g(const struct goversion_facts *f, const uint8_t *a, const uint8_t *b)
{
	const uint32_t words[] = {f->g_goid,	  f->g_sched_sp,  f->g_sched_pc, f->g_sched_bp,
				  f->g_syscallsp, f->g_syscallpc, f->g_stack_lo, f->g_stack_hi};

	if (rd32(a, f->g_atomicstatus) != rd32(b, f->g_atomicstatus))
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (rd64(a, words[i]) != rd64(b, words[i]))
			return false;
	}
	return true;
}

/* A thread that got a signal runs the handler on its signal stack; the registers of the
 * goroutine it interrupted are in the signal frame the kernel pushed there (struct
 * sigcontext: rbp is its 11th word, rsp the 16th, rip the 17th). Finds the first such
 * frame within 64 KiB above the thread's SP whose SP and BP are inside the goroutine's stack
 * and whose PC is Go code. */
static bool signal_frame(struct gr_dump *d, const struct gr_target *t, uint64_t tsp, uint64_t lo,
			 uint64_t hi, struct start *st)
{
	enum { WORDS = 8192, RBP = 10, RSP = 15, RIP = 16 };
	uint64_t *w = malloc(WORDS * 8);
	size_t n = WORDS;
	bool found = false;

	if (!w)
		return false;
	while (n > 64 && gr_mem_read(t->mem, tsp & ~7ull, w, n * 8, NULL) < 0)
		n /= 2;
	for (size_t i = 0; n > 64 && i + RIP < n && !found; i++) {
		const struct gs_frame *fr;

		if (w[i + RSP] < lo || w[i + RSP] >= hi || w[i + RBP] < lo || w[i + RBP] >= hi ||
		    w[i + RIP] < d->bias)
			continue;
		if (symbolize(d, w[i + RIP], true, &fr) <= 0)
			continue;
		*st = (struct start){.pc = w[i + RIP],
				     .sp = w[i + RSP],
				     .bp = w[i + RBP],
				     .bp_known = true,
				     .exact = true};
		found = true;
	}
	free(w);
	return found;
}

static const struct gr_thread *thread_of(const struct gr_target *t, int tid)
{
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	}
	return NULL;
}

/* Reads the g at addr into *g (its pcs buffer allocated by the caller): 1 when it is to be
 * listed, 0 for a dead g, -EAGAIN when it changed while read, -EFAULT unreadable. */
static int read_one(struct gr_dump *d, const struct gr_target *t, const struct gr_options *o,
		    uint64_t addr, struct gr_goroutine *g, struct stackread *s, uint8_t *buf,
		    uint8_t *buf2, uint64_t goexit_lo, uint64_t goexit_hi)
{
	const struct goversion_facts *f = &d->facts;
	struct start st = {0};
	uint64_t m;
	uint32_t raw;

	if (gr_mem_read(t->mem, addr, buf, f->g_size, NULL) < 0)
		return -EFAULT;
	raw = rd32(buf, f->g_atomicstatus);
	g->addr = addr;
	g->status = raw & ~(uint32_t)GR_SCAN;
	g->scan = raw & GR_SCAN;
	if (g->status == GR_DEAD || g->status == GR_DEADEXTRA || g->status == GR_IDLE)
		return 0;
	g->goid = rd64(buf, f->g_goid);
	g->parent_goid = f->g_parent_goid ? rd64(buf, f->g_parent_goid) : 0;
	g->waitreason = buf[f->g_waitreason];
	g->gopc = rd64(buf, f->g_gopc);
	g->startpc = rd64(buf, f->g_startpc);
	g->locked = rd64(buf, f->g_lockedm) != 0;
	g->tid = 0;
	g->no_stack = g->crashing = g->leaf_exact = g->inconsistent = false;
	g->labels_unreadable = false;
	g->wait_ns = -1;
	if ((g->status == GR_WAITING || g->status == GR_SYSCALL) && rd64(buf, f->g_waitsince) &&
	    t->now_ns) {
		int64_t since = (int64_t)rd64(buf, f->g_waitsince);

		g->wait_ns = t->now_ns > since ? t->now_ns - since : 0;
	}
	status_string(f, g);
	g->system = system_goroutine(d, g->startpc);
	if (g->system && !o->system)
		return 2;
	s->lo = rd64(buf, f->g_stack_lo);
	s->hi = rd64(buf, f->g_stack_hi);
	if (s->hi <= s->lo || s->hi - s->lo > MAX_STACK_BYTES)
		s->lo = s->hi = 0;
	m = rd64(buf, f->g_m);
	if (m && (g->status == GR_RUNNING || g->status == GR_SYSCALL)) {
		uint64_t procid = 0;

		if (gr_mem_read(t->mem, m + f->m_procid, &procid, 8, NULL) == 0)
			g->tid = (int)procid;
	}
	switch (g->status) {
	case GR_RUNNING: {
		const struct gr_thread *th = thread_of(t, g->tid);

		if (th && th->sp >= s->lo && th->sp < s->hi) {
			st = (struct start){.pc = th->pc,
					    .sp = th->sp,
					    .bp = th->bp,
					    .bp_known = true,
					    .exact = true};
			g->leaf_exact = true;
		} else if (th && th->signo > 0 && signal_frame(d, t, th->sp, s->lo, s->hi, &st)) {
			g->leaf_exact = true;
		} else if (th && rd64(buf, f->g_sched_sp)) {
			/* on g0 or a signal stack (systemstack saved the user g's state) */
			st = (struct start){.pc = rd64(buf, f->g_sched_pc),
					    .sp = rd64(buf, f->g_sched_sp),
					    .bp = rd64(buf, f->g_sched_bp),
					    .bp_known = true};
		} else {
			g->no_stack = true;
		}
		if (th)
			g->crashing = th->crashing;
		break;
	}
	case GR_SYSCALL:
		if (rd64(buf, f->g_syscallsp)) {
			st = (struct start){.pc = rd64(buf, f->g_syscallpc),
					    .sp = rd64(buf, f->g_syscallsp),
					    .bp = f->g_syscallbp ? rd64(buf, f->g_syscallbp) : 0,
					    .bp_known = f->g_syscallbp != 0};
			break;
		}
		/* fallthrough */
	default:
		st = (struct start){.pc = rd64(buf, f->g_sched_pc),
				    .sp = rd64(buf, f->g_sched_sp),
				    .bp = rd64(buf, f->g_sched_bp),
				    .bp_known = true};
		break;
	}
	if (g->status == GR_COPYSTACK && !t->frozen)
		return -EAGAIN;
	g->npcs = 0;
	if (!g->no_stack)
		unwind(d, t, s, &st, g, goexit_lo, goexit_hi);
	free_labels(g);
	read_labels(t, f, rd64(buf, f->g_labels), g);
	if (t->frozen)
		return 1;
	/* validation: the same g after its stack was read, pointers inside its stack */
	if (gr_mem_read(t->mem, addr, buf2, f->g_size, NULL) < 0 || !same_g(f, buf, buf2))
		return -EAGAIN;
	if (!g->no_stack && g->status != GR_RUNNING && (st.sp < s->lo || st.sp >= s->hi))
		return -EAGAIN;
	return 1;
}

static int cmp_goid(const void *a, const void *b)
{
	const struct gr_goroutine *x = a, *y = b;

	if (x->crashing != y->crashing)
		return x->crashing ? -1 : 1; /* the goroutine of the crashing thread first */
	return x->goid < y->goid ? -1 : x->goid > y->goid;
}

int gr_dump_read(const struct gr_target *t, const struct gr_options *opt, struct gr_dump **out,
		 struct gs_error *err)
{
	const struct gs_binary_info *bi = gs_binary_info(t->bin);
	struct gr_options o = opt ? *opt : (struct gr_options){0};
	uint64_t slice[2], goexit_lo = 0, goexit_hi = 0, *ptrs = NULL;
	uint8_t *buf = NULL, *buf2 = NULL;
	struct stackread *s = NULL;
	struct gr_dump *d;
	size_t n, cap = 0;
	int rc;

	if (!o.max_goroutines)
		o.max_goroutines = GR_MAX_GOROUTINES_DEFAULT;
	if (!o.retries)
		o.retries = GR_RETRIES_DEFAULT;
	if (!bi->has_buildinfo)
		return gs_error_set(err, -EPROTONOSUPPORT,
				    "%s has no Go build info: cannot tell its Go version",
				    gs_binary_name(t->bin));
	d = calloc(1, sizeof(*d));
	if (!d || !(d->symcache = calloc(1, sizeof(*d->symcache)))) {
		free(d);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	d->bin = t->bin;
	d->bias = t->bias;
	snprintf(d->go_version, sizeof(d->go_version), "%s", bi->buildinfo.go_version);
	rc = goversion_lookup(d->go_version, &d->facts, err);
	if (rc < 0)
		goto fail;
	rc = find_allgs(t, &d->facts, d, err);
	if (rc < 0)
		goto fail;
	gs_binary_find_function(t->bin, "runtime.goexit", &goexit_lo, &goexit_hi);
	if (gr_mem_read(t->mem, d->allgs_addr, slice, sizeof(slice), err) < 0) {
		rc = gs_error_prefix(err, "reading runtime.allgs");
		goto fail;
	}
	d->allglen = slice[1];
	n = slice[1] < o.max_goroutines ? slice[1] : o.max_goroutines;
	ptrs = malloc((n ? n : 1) * 8);
	buf = malloc(d->facts.g_size);
	buf2 = malloc(d->facts.g_size);
	s = malloc(sizeof(*s));
	if (!ptrs || !buf || !buf2 || !s) {
		rc = gs_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	s->mem = t->mem;
	/* the pointer array in pieces of 64 KiB (the list may have moved meanwhile: each g is
	 * validated on its own) */
	for (size_t i = 0; i < n;) {
		size_t k = n - i < 8192 ? n - i : 8192;

		rc = gr_mem_read(t->mem, slice[0] + i * 8, ptrs + i, k * 8, err);
		if (rc < 0) {
			gs_error_prefix(err, "reading the goroutine list (%zu goroutines)", n);
			goto fail;
		}
		i += k;
	}
	for (size_t i = 0; i < n; i++) {
		struct gr_goroutine *g;
		unsigned tries = 0;

		if (d->n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			void *p = realloc(d->gs, nc * sizeof(*d->gs));

			if (!p) {
				rc = gs_error_set(err, -ENOMEM, "out of memory");
				goto fail;
			}
			d->gs = p;
			cap = nc;
		}
		g = &d->gs[d->n];
		memset(g, 0, sizeof(*g));
		g->pcs = malloc(GR_MAX_FRAMES * sizeof(*g->pcs));
		if (!g->pcs) {
			rc = gs_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		for (;;) {
			rc = read_one(d, t, &o, ptrs[i], g, s, buf, buf2, goexit_lo, goexit_hi);
			if (rc != -EAGAIN || ++tries > o.retries)
				break;
		}
		if (rc == 1 || rc == -EAGAIN) {
			if (rc == -EAGAIN) {
				/* listed with its status, without a stack that cannot be trusted */
				g->inconsistent = true;
				g->npcs = 0;
				d->inconsistent++;
			}
			if (g->npcs) {
				void *p = realloc(g->pcs, g->npcs * sizeof(*g->pcs));

				if (p)
					g->pcs = p;
			}
			d->n++;
			continue;
		}
		if (rc == 0)
			d->ndead++;
		else if (rc == 2)
			d->nsystem_hidden++;
		else
			d->unreadable++;
		free_labels(g);
		free(g->pcs);
	}
	if (d->n > 1)
		qsort(d->gs, d->n, sizeof(*d->gs), cmp_goid);
	free(ptrs);
	free(buf);
	free(buf2);
	free(s);
	*out = d;
	return 0;
fail:
	free(ptrs);
	free(buf);
	free(buf2);
	free(s);
	gr_dump_free(d);
	return rc;
}

void gr_dump_free(struct gr_dump *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free_labels(&d->gs[i]);
		free(d->gs[i].pcs);
	}
	free(d->gs);
	if (d->symcache) {
		for (size_t i = 0; i < SYMCACHE_SLOTS; i++)
			free(d->symcache->slots[i].frames);
		free(d->symcache);
	}
	free(d);
}

/* ---- pprof ---- */

int gr_dump_profile(struct gr_dump *d, struct profile **out, struct gs_error *err)
{
	struct profile *p = profile_new();
	uint64_t locs[GR_MAX_FRAMES];
	const struct gs_binary_info *bi = gs_binary_info(d->bin);
	uint64_t mapping;
	char comment[160];
	int rc = 0;

	if (!p || profile_add_sample_type(p, "goroutine", "count") < 0)
		goto nomem;
	profile_set_period(p, "goroutine", "count", 1);
	snprintf(comment, sizeof(comment), "goscope goroutines: %zu goroutines, %zu inconsistent",
		 d->n, d->inconsistent);
	profile_add_comment(p, comment);
	mapping = profile_mapping(p, 0, UINT64_MAX, 0, gs_binary_name(d->bin),
				  bi->go_build_id[0] ? bi->go_build_id : bi->gnu_build_id, true,
				  true, true, true);
	for (size_t i = 0; i < d->n; i++) {
		struct gr_goroutine *g = &d->gs[i];
		struct profile_label labels[GR_MAX_LABELS];
		const int64_t one = 1;
		size_t nl = 0;

		for (unsigned j = 0; j < g->npcs; j++) {
			const struct gs_frame *fr;
			struct profile_line lines[GR_MAX_FRAMES];
			uint64_t addr = g->pcs[j];
			int nf = gr_dump_frames(d, g, j, &fr);

			if (nf > 0 && strcmp(fr[nf - 1].function, "runtime.goexit") == 0)
				break;
			/* go-statement and method-value wrappers: as Go's own profile */
			if (nf == 1 && fr[0].wrapper)
				continue;
			locs[nl] = profile_location_find(p, 0, addr);
			if (!locs[nl]) {
				/* full symbol names, as runtime/pprof writes them */
				for (int k = 0; k < nf; k++) {
					lines[k].function_id = profile_function(
						p, fr[k].raw_function, fr[k].raw_function,
						fr[k].file, fr[k].start_line);
					lines[k].line = fr[k].line;
				}
				locs[nl] = profile_location_add(p, 0, addr, mapping, lines,
								(size_t)(nf > 0 ? nf : 0));
				if (!locs[nl])
					goto nomem;
			}
			nl++;
		}
		{
			size_t nlab = 0;

			/* pprof.Labels("", v) is legal Go, but a profile label needs a key (the
			 * text dumps keep it). */
			for (unsigned j = 0; j < g->nlabels && nlab < GR_MAX_LABELS; j++)
				if (g->labels[j].key[0])
					labels[nlab++] = (struct profile_label){
						.key = g->labels[j].key, .str = g->labels[j].value};
			rc = profile_add_sample(p, locs, nl, &one, labels, nlab, err);
			if (rc < 0) {
				profile_free(p);
				return rc;
			}
		}
	}
	*out = p;
	return 0;
nomem:
	profile_free(p);
	return gs_error_set(err, -ENOMEM, "out of memory");
}
