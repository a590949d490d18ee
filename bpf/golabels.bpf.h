/* golabels.bpf.h — reads a goroutine's pprof labels (pprof.Do, SetGoroutineLabels) from the Go
 * runtime's memory, for the cpu and block programs: each label set once into a struct
 * gs_labels (include/goscope/golabels.h) kept in the LRU map `labelsets` under an id that
 * samples and blocks carry (go_labels_id says how the id is made and what it costs). Everything read is the target's memory: untrusted, every length bounded, every
 * loop bounded.
 *
 * g.labels points to the label set of the goroutine, or is nil (most goroutines): reading it
 * is one load and a branch, and nothing else is done for a goroutine without labels.
 *  - Go >= 1.24 (GS_LABELS_SLICE): a *labelMap{LabelSet{list []label}} (1.26+: label.Set{List
 *    []label.Label}); the slice, sorted by key, deduplicated, of {key, value string}.
 *  - Go <= 1.23 (GS_LABELS_MAP): a *labelMap, labelMap being map[string]string: a pointer to a
 *    word holding the *runtime.hmap. Its buckets hold 8 slots each: {tophash [8]uint8, keys
 *    [8]string, values [8]string, overflow *bmap}. A label map is built once (WithLabels
 *    copies the parent's into a new map) and never changed after: up to 8 labels it is one
 *    bucket (B = 0), 9 to 13 labels two (B = 1, the growth is finished by the insert that
 *    starts it). Both are read here (2 buckets of 8 slots, bounded loops); larger maps,
 *    overflow buckets and maps caught growing are flagged GS_LABELS_UNREAD (their other
 *    labels kept). */
#ifndef GOSCOPE_BPF_GOLABELS_H
#define GOSCOPE_BPF_GOLABELS_H

#include <bpf/bpf_core_read.h>

#include "goscope/golabels.h"

/* A Go string or slice header as stored in memory. */
struct go_str {
	__u64 ptr;
	__s64 len;
};

struct go_slice {
	__u64 ptr;
	__s64 len;
	__s64 cap;
};

/* runtime.hmap's first fields (Go 1.17 - 1.23). */
struct go_hmap {
	__s64 count;
	__u8 flags;
	__u8 B;
	__u16 noverflow;
	__u32 hash0;
	__u64 buckets;
	__u64 oldbuckets;
};

#define GO_MAP_BUCKET_SLOTS 8
/* tophash values below this mark an empty or evacuated slot (runtime/map.go). */
#define GO_MAP_MIN_TOP_HASH 5
/* Buckets read: 2^B for B <= GO_MAP_MAX_B. */
#define GO_MAP_MAX_B 1
#define GO_MAP_MAX_BUCKETS (1 << GO_MAP_MAX_B)

/* A bucket of map[string]string. */
struct go_map_bucket {
	__u8 tophash[GO_MAP_BUCKET_SLOTS];
	struct go_str keys[GO_MAP_BUCKET_SLOTS];
	struct go_str values[GO_MAP_BUCKET_SLOTS];
	__u64 overflow;
};

/* Scratch space for one label read (per CPU): the slice's elements or the map's buckets, and
 * the set being built on a miss. */
struct go_labels_scratch {
	union {
		struct go_str pairs[2 * GS_LABELS_MAX];
		struct go_map_bucket buckets[GO_MAP_MAX_BUCKETS];
	};
	struct gs_labels out;
};

/* Label sets read so far, by id (see go_labels_id); userspace reads them by the id a sample
 * carries (agent/stacks/golabels.c). Least recently used sets go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GS_LABELSETS_MAX);
	__type(key, __u64);
	__type(value, struct gs_labels);
} labelsets SEC(".maps");

/* Counters after the family's "labelled" one (cpu.h, block.h keep this order). */
#define GO_LABELS_STAT_TRUNCATED 1
#define GO_LABELS_STAT_UNREAD 2

#define GO_LABELS_FNV_OFFSET 0xcbf29ce484222325ULL
#define GO_LABELS_FNV_PRIME 0x100000001b3ULL

static __always_inline __u64 go_labels_mix(__u64 h, __u64 v)
{
	return (h ^ v) * GO_LABELS_FNV_PRIME;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct go_labels_scratch);
} go_labels_scratch SEC(".maps");

/* The running goroutine's g: R14 in Go code (the register ABI keeps g there, Go >= 1.17),
 * else the runtime's TLS slot (cgo, the vDSO, assembly that used R14 as scratch is not told
 * apart: its samples read R14 too). 0 when unknown. */
static __always_inline __u64 go_current_g(const struct gs_labels_cfg *c, __u64 ip, __u64 r14)
{
	struct task_struct *task;
	__u64 fs, g = 0;

	if (ip >= c->text_lo && ip < c->text_hi)
		return r14;
	if (c->tls_g == 0)
		return 0;
	task = bpf_get_current_task_btf();
	fs = BPF_CORE_READ(task, thread.fsbase);
	if (fs == 0 || bpf_probe_read_user(&g, sizeof(g), (void *)(fs + (__s64)c->tls_g)) != 0)
		return 0;
	return g;
}

/* The label set pointer of g (nil for a goroutine without labels): the one load every
 * sample pays. */
static __always_inline __u64 go_labels_ptr(__u64 g, __u32 g_labels)
{
	__u64 set = 0;

	if (g == 0 || (g & PTR_ALIGN_MASK) || g_labels == 0)
		return 0;
	if (bpf_probe_read_user(&set, sizeof(set), (void *)(g + g_labels)) != 0)
		return 0;
	return set;
}

/* Copies the string s into dst (cap bytes); returns the bytes kept and flags a cut. */
static __always_inline __u8 go_read_str(char *dst, __u32 cap, const struct go_str *s, __u8 *flags,
					__u8 cut_flag)
{
	__u32 n;

	if (s->len <= 0 || s->ptr == 0)
		return 0;
	n = s->len > cap ? cap : (__u32)s->len;
	if (s->len > cap)
		*flags |= cut_flag;
	if (n > cap) /* for the verifier */
		return 0;
	if (bpf_probe_read_user(dst, n, (void *)s->ptr) != 0) {
		*flags |= GS_LABELS_UNREAD;
		return 0;
	}
	return (__u8)n;
}

/* Appends {key, value} (the strings' addresses and lengths) to the set being built in the
 * per-CPU scratch, unless it is full (then flagged GS_LABELS_MORE). A global function: the
 * verifier checks it once, not once per slot of the loops that call it (which made loading
 * the programs take 0.4 s). */
__noinline int go_add_label(__u64 kptr, __s64 klen, __u64 vptr, __s64 vlen)
{
	struct go_str key = {.ptr = kptr, .len = klen}, value = {.ptr = vptr, .len = vlen};
	struct go_labels_scratch *sc;
	struct gs_labels *out;
	struct gs_label *l;
	__u32 zero = 0, i;

	sc = bpf_map_lookup_elem(&go_labels_scratch, &zero);
	if (!sc)
		return 0;
	out = &sc->out;
	i = out->n;
	if (i >= GS_LABELS_MAX) {
		out->flags |= GS_LABELS_MORE;
		return 0;
	}
	l = &out->v[i];
	l->key_len = go_read_str(l->key, GS_LABEL_KEY_LEN, &key, &out->flags, GS_LABELS_KEY_CUT);
	l->value_len =
		go_read_str(l->value, GS_LABEL_VALUE_LEN, &value, &out->flags, GS_LABELS_VALUE_CUT);
	out->n = i + 1;
	return 0;
}

/* Stores the set built in sc->out under id; the id, or 0 when it could not be stored. */
static __always_inline __u64 go_labels_store(__u64 id, struct go_labels_scratch *sc, __u8 *flags)
{
	*flags = sc->out.flags;
	if (bpf_map_update_elem(&labelsets, &id, &sc->out, BPF_ANY) < 0) {
		*flags |= GS_LABELS_UNREAD;
		return 0;
	}
	return id;
}

/* Go >= 1.24: the sorted slice of {key, value}. */
static __always_inline __u64 go_labels_slice(__u64 set, __u64 h, struct go_labels_scratch *sc,
					     __u8 *flags)
{
	struct gs_labels *known;
	struct go_slice sl;
	__u32 n;

	if (bpf_probe_read_user(&sl, sizeof(sl), (void *)set) != 0 || sl.len < 0 ||
	    sl.len > sl.cap || (sl.len && !sl.ptr)) {
		*flags = GS_LABELS_UNREAD;
		return 0;
	}
	n = sl.len > GS_LABELS_MAX ? GS_LABELS_MAX : (__u32)sl.len;
	if (n == 0 || n > GS_LABELS_MAX)
		return 0;
	if (bpf_probe_read_user(sc->pairs, n * 2 * sizeof(struct go_str), (void *)sl.ptr) != 0) {
		*flags = GS_LABELS_UNREAD;
		return 0;
	}
	h = go_labels_mix(h, (__u64)sl.len);
	for (__u32 i = 0; i < 2 * GS_LABELS_MAX; i++) {
		if (i >= 2 * n)
			break;
		h = go_labels_mix(go_labels_mix(h, sc->pairs[i].ptr), (__u64)sc->pairs[i].len);
	}
	known = bpf_map_lookup_elem(&labelsets, &h);
	if (known) {
		*flags = known->flags;
		return h;
	}
	sc->out.n = 0;
	sc->out.flags = sl.len > GS_LABELS_MAX ? GS_LABELS_MORE : 0;
	for (__u32 i = 0; i < GS_LABELS_MAX; i++) {
		if (i >= n)
			break;
		go_add_label(sc->pairs[2 * i].ptr, sc->pairs[2 * i].len, sc->pairs[2 * i + 1].ptr,
			     sc->pairs[2 * i + 1].len);
	}
	return go_labels_store(h, sc, flags);
}

/* Go <= 1.23: the buckets of the map[string]string (see the top of this file). */
static __always_inline __u64 go_labels_map(__u64 set, __u64 h, struct go_labels_scratch *sc,
					   __u8 *flags)
{
	struct gs_labels *known;
	struct go_hmap m;
	__u8 cut = 0;
	__u64 hp = 0;
	__u64 sum;
	__u32 nb;

	if (bpf_probe_read_user(&hp, sizeof(hp), (void *)set) != 0 || hp == 0 ||
	    bpf_probe_read_user(&m, sizeof(m), (void *)hp) != 0) {
		*flags = GS_LABELS_UNREAD;
		return 0;
	}
	if (m.count <= 0 || m.buckets == 0)
		return 0;
	if (m.B > GO_MAP_MAX_B || m.oldbuckets != 0)
		cut = GS_LABELS_UNREAD;
	if (m.oldbuckets != 0) {
		*flags = cut;
		return 0;
	}
	nb = m.B > GO_MAP_MAX_B ? GO_MAP_MAX_BUCKETS : 1u << m.B;
	if (nb > GO_MAP_MAX_BUCKETS)
		return 0;
	/* One bucket or two (GO_MAP_MAX_B = 1), as constants for the verifier. */
	if (bpf_probe_read_user(sc->buckets, nb > 1 ? sizeof(sc->buckets) : sizeof(sc->buckets[0]),
				(void *)m.buckets) != 0) {
		*flags = GS_LABELS_UNREAD;
		return 0;
	}
	/* The pairs identify the set, in any order: each map has its own hash seed, so the same
	 * labels sit in other slots in the map the next pprof.Do makes (WithLabels copies the
	 * parent's into a new map each time): a sum of the pairs' hashes. */
	sum = go_labels_mix(h, (__u64)m.count);
	for (__u32 b = 0; b < GO_MAP_MAX_BUCKETS; b++) {
		if (b >= nb)
			break;
		for (__u32 i = 0; i < GO_MAP_BUCKET_SLOTS; i++) {
			const struct go_map_bucket *k = &sc->buckets[b];

			if (k->tophash[i] < GO_MAP_MIN_TOP_HASH)
				continue;
			sum += go_labels_mix(
				go_labels_mix(go_labels_mix(go_labels_mix(h, k->keys[i].ptr),
							    (__u64)k->keys[i].len),
					      k->values[i].ptr),
				(__u64)k->values[i].len);
		}
	}
	h = sum;
	known = bpf_map_lookup_elem(&labelsets, &h);
	if (known) {
		*flags = known->flags;
		return h;
	}
	sc->out.n = 0;
	sc->out.flags = cut;
	for (__u32 b = 0; b < GO_MAP_MAX_BUCKETS; b++) {
		if (b >= nb)
			break;
		if (sc->buckets[b].overflow)
			sc->out.flags |= GS_LABELS_UNREAD;
		for (__u32 i = 0; i < GO_MAP_BUCKET_SLOTS; i++) {
			if (sc->buckets[b].tophash[i] < GO_MAP_MIN_TOP_HASH)
				continue;
			go_add_label(sc->buckets[b].keys[i].ptr, sc->buckets[b].keys[i].len,
				     sc->buckets[b].values[i].ptr, sc->buckets[b].values[i].len);
		}
	}
	return go_labels_store(h, sc, flags);
}

/* The id of the label set at set (a goroutine's non-nil g.labels) laid out as layout, in
 * process tgid: the set is in `labelsets` under it. 0 when the set is empty or could not be
 * read or stored. Counted in the family's stats: stat_labelled, and the two counters after
 * it (GO_LABELS_STAT_TRUNCATED, _UNREAD) when the set was cut or not (fully) read. A global
 * function: the verifier checks it once, not at each call site and path of the caller (the
 * sampling program's paths times these loops exceed its complexity limit).
 *
 * The id is a hash of the set as it is in memory: the process, the slice's length and its
 * elements (the strings' addresses and lengths), or the map's buckets. So a set read once
 * costs 2 or 3 reads afterwards instead of 2 more per label (the strings), and goroutines
 * sharing a set (pprof.Do passes it on) share an entry. A set whose memory was reused for
 * another (the GC frees them) gets another id unless the new one has the same strings at the
 * same addresses with the same lengths: strings a program builds at run time and frees
 * could in principle leave an older text under a new set; constant strings (the common
 * labels: routes, job names) cannot. */
__noinline __u64 go_labels_id(__u64 set, __u32 layout, __u32 tgid, __u32 stat_labelled)
{
	struct go_labels_scratch *sc;
	__u64 h = go_labels_mix(GO_LABELS_FNV_OFFSET, tgid);
	__u32 zero = 0;
	__u8 flags = 0;

	stat_inc(stat_labelled);
	sc = bpf_map_lookup_elem(&go_labels_scratch, &zero);
	if (!sc)
		return 0;
	if (set & PTR_ALIGN_MASK)
		flags = GS_LABELS_UNREAD, h = 0;
	else if (layout == GS_LABELS_SLICE)
		h = go_labels_slice(set, h, sc, &flags);
	else if (layout == GS_LABELS_MAP)
		h = go_labels_map(set, h, sc, &flags);
	else
		h = 0;
	if (flags & (GS_LABELS_MORE | GS_LABELS_KEY_CUT | GS_LABELS_VALUE_CUT))
		stat_inc(stat_labelled + GO_LABELS_STAT_TRUNCATED);
	if (flags & GS_LABELS_UNREAD)
		stat_inc(stat_labelled + GO_LABELS_STAT_UNREAD);
	return h;
}

#endif
