/* golabels.bpf.h — reads a goroutine's pprof labels (pprof.Do, SetGoroutineLabels) from the Go
 * runtime's memory into a struct gs_labels (include/goscope/golabels.h), for the cpu and block
 * programs. Everything read is the target's memory: untrusted, every length bounded, every
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

/* Scratch space for one label read (per CPU): the slice's elements or one map bucket. */
struct go_labels_scratch {
	union {
		struct go_str pairs[2 * GS_LABELS_MAX];
		struct go_map_bucket bucket;
	};
};

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

/* Appends {key, value} to out, unless it is full (then flagged GS_LABELS_MORE). */
static __always_inline void go_add_label(struct gs_labels *out, const struct go_str *key,
					 const struct go_str *value)
{
	__u32 i = out->n;
	struct gs_label *l;

	if (i >= GS_LABELS_MAX) {
		out->flags |= GS_LABELS_MORE;
		return;
	}
	l = &out->v[i];
	l->key_len = go_read_str(l->key, GS_LABEL_KEY_LEN, key, &out->flags, GS_LABELS_KEY_CUT);
	l->value_len =
		go_read_str(l->value, GS_LABEL_VALUE_LEN, value, &out->flags, GS_LABELS_VALUE_CUT);
	out->n = i + 1;
}

/* Go >= 1.24: the sorted slice of {key, value}. */
static __always_inline void go_labels_slice(__u64 set, struct gs_labels *out,
					    struct go_labels_scratch *sc)
{
	struct go_slice sl;
	__u32 n;

	if (bpf_probe_read_user(&sl, sizeof(sl), (void *)set) != 0 || sl.len < 0 ||
	    sl.len > sl.cap || (sl.len && !sl.ptr)) {
		out->flags |= GS_LABELS_UNREAD;
		return;
	}
	n = sl.len > GS_LABELS_MAX ? GS_LABELS_MAX : (__u32)sl.len;
	if (sl.len > GS_LABELS_MAX)
		out->flags |= GS_LABELS_MORE;
	if (n == 0 || n > GS_LABELS_MAX)
		return;
	if (bpf_probe_read_user(sc->pairs, n * 2 * sizeof(struct go_str), (void *)sl.ptr) != 0) {
		out->flags |= GS_LABELS_UNREAD;
		return;
	}
	for (__u32 i = 0; i < GS_LABELS_MAX; i++) {
		if (i >= n)
			break;
		go_add_label(out, &sc->pairs[2 * i], &sc->pairs[2 * i + 1]);
	}
}

/* Go <= 1.23: the buckets of the map[string]string (see the top of this file). */
static __always_inline void go_labels_map(__u64 set, struct gs_labels *out,
					  struct go_labels_scratch *sc)
{
	struct go_hmap h;
	__u64 hp = 0;
	__u32 nb;

	if (bpf_probe_read_user(&hp, sizeof(hp), (void *)set) != 0 || hp == 0 ||
	    bpf_probe_read_user(&h, sizeof(h), (void *)hp) != 0) {
		out->flags |= GS_LABELS_UNREAD;
		return;
	}
	if (h.count <= 0 || h.buckets == 0)
		return;
	if (h.B > GO_MAP_MAX_B || h.oldbuckets != 0)
		out->flags |= GS_LABELS_UNREAD;
	if (h.oldbuckets != 0)
		return;
	nb = h.B > GO_MAP_MAX_B ? GO_MAP_MAX_BUCKETS : 1u << h.B;
	for (__u32 b = 0; b < GO_MAP_MAX_BUCKETS; b++) {
		if (b >= nb)
			break;
		if (bpf_probe_read_user(&sc->bucket, sizeof(sc->bucket),
					(void *)(h.buckets + b * sizeof(sc->bucket))) != 0) {
			out->flags |= GS_LABELS_UNREAD;
			return;
		}
		if (sc->bucket.overflow)
			out->flags |= GS_LABELS_UNREAD;
		for (__u32 i = 0; i < GO_MAP_BUCKET_SLOTS; i++) {
			if (sc->bucket.tophash[i] < GO_MAP_MIN_TOP_HASH)
				continue;
			go_add_label(out, &sc->bucket.keys[i], &sc->bucket.values[i]);
		}
	}
}

/* Reads the label set at set (non-nil) laid out as layout into out (n and flags set here;
 * out's labels are written up to n only). */
static __always_inline void go_labels_read(__u64 set, __u8 layout, struct gs_labels *out)
{
	struct go_labels_scratch *sc;
	__u32 zero = 0;

	out->n = 0;
	out->flags = 0;
	if (set & PTR_ALIGN_MASK) {
		out->flags |= GS_LABELS_UNREAD;
		return;
	}
	sc = bpf_map_lookup_elem(&go_labels_scratch, &zero);
	if (!sc)
		return;
	if (layout == GS_LABELS_SLICE)
		go_labels_slice(set, out, sc);
	else if (layout == GS_LABELS_MAP)
		go_labels_map(set, out, sc);
}

#endif
