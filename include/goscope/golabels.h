/* golabels.h — the pprof labels of a goroutine (runtime/pprof's pprof.Do / SetGoroutineLabels),
 * as BPF reads them from the Go runtime and hands them to userspace: the layout facts BPF
 * needs per target (filled in userspace from agent/goruntime/goversion_table.c) and the fixed-
 * size label set it keeps, once per set, in its `labelsets` map (by id). Shared by
 * bpf/golabels.bpf.h (cpu and block programs) and agent/stacks/golabels.c.
 *
 * Bounded: at most GS_LABELS_MAX labels per goroutine, keys cut at GS_LABEL_KEY_LEN bytes and
 * values at GS_LABEL_VALUE_LEN; every cut is flagged in the set and counted. */
#ifndef GOSCOPE_GOLABELS_H
#define GOSCOPE_GOLABELS_H

#ifndef __VMLINUX_H__ /* userspace; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define GS_LABELS_MAX 10
#define GS_LABEL_KEY_LEN 32
#define GS_LABEL_VALUE_LEN 64
/* Label sets kept in BPF at once (an LRU map per program, by id: goscope/golabels.bpf.h). */
#define GS_LABELSETS_MAX 8192

/* What g.labels points to, by Go version. */
enum gs_labels_layout {
	GS_LABELS_NONE = 0,  /* not read (not Go, unknown version, or label reading off) */
	GS_LABELS_MAP = 1,   /* Go <= 1.23: *map[string]string (runtime.hmap, buckets of 8) */
	GS_LABELS_SLICE = 2, /* Go >= 1.24: *struct{ []struct{key, value string} } */
};

/* Per target image: where its g is and how its label set is laid out. The g of a sample is
 * R14 while the thread runs Go code ([text_lo, text_hi), the executable's Go text at run-
 * time addresses), else the word at fs_base + tls_g (0: unknown, no labels outside Go
 * code). */
struct gs_labels_cfg {
	__u64 text_lo, text_hi;
	__s32 tls_g;	/* offset of the runtime's g slot from the thread pointer (fs_base) */
	__u16 g_labels; /* offset of runtime.g.labels */
	__u8 layout;	/* enum gs_labels_layout */
	__u8 pad;
};

enum gs_labels_flags {
	GS_LABELS_MORE = 1 << 0,      /* the set had more than GS_LABELS_MAX labels */
	GS_LABELS_KEY_CUT = 1 << 1,   /* a key was longer than GS_LABEL_KEY_LEN */
	GS_LABELS_VALUE_CUT = 1 << 2, /* a value was longer than GS_LABEL_VALUE_LEN */
	GS_LABELS_UNREAD = 1 << 3,    /* the set (or part of it) could not be read: a map
				       * with more than 2 buckets or overflow buckets, a read
				       * fault, or lengths that make no sense */
};

/* One label; key and value are not NUL-terminated (their lengths say). */
struct gs_label {
	__u8 key_len;
	__u8 value_len;
	__u8 pad[6];
	char key[GS_LABEL_KEY_LEN];
	char value[GS_LABEL_VALUE_LEN];
};

struct gs_labels {
	__u8 n;	    /* labels in v */
	__u8 flags; /* enum gs_labels_flags */
	__u8 pad[6];
	struct gs_label v[GS_LABELS_MAX];
};

#endif
