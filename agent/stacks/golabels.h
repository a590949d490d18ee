/* golabels.h — the userspace side of the pprof labels BPF reads (bpf/golabels.bpf.h): what
 * BPF needs to know of a target image to read them (its Go version's g.labels offset and
 * label-set layout, its Go text at run-time addresses, its TLS slot of g), and the label set
 * BPF copied out turned into pprof string labels, as runtime/pprof writes them. */
#ifndef GOSCOPE_AGENT_GOLABELS_H
#define GOSCOPE_AGENT_GOLABELS_H

#include <stddef.h>
#include <stdint.h>

#include "goscope/golabels.h"
#include "goscope/symbolizer.h"
#include "profile/profile.h"

/* Fills *out for the process image proc: layout GS_LABELS_NONE (nothing read) for a process
 * that is not Go, a Go version before the register ABI or a version the table does not
 * know. Never fails: labels are an addition to a profile, not a reason to refuse one. */
void golabels_cfg(struct gs_process *proc, struct gs_labels_cfg *out);

/* The NUL-terminated copies of a label set's strings the profile labels point to. */
struct golabels_strs {
	char key[GS_LABELS_MAX][GS_LABEL_KEY_LEN + 1];
	char value[GS_LABELS_MAX][GS_LABEL_VALUE_LEN + 1];
};

/* Appends in's labels (at most max) to out as string labels key -> value, sorted by key (a
 * map's order is random; the same set must make the same sample), their strings in strs.
 * Returns how many were appended. in comes from BPF: lengths are bounded here again, and a
 * label without a key (empty, unreadable or starting with a NUL) is left out. */
size_t golabels_to_profile(const struct gs_labels *in, struct golabels_strs *strs,
			   struct profile_label *out, size_t max);

#endif

/* Label sets by the id BPF gives a sample (bpf/golabels.bpf.h), read once from BPF's
 * labelsets map and kept: an id names one set for good (it is a hash of the set). Bounded:
 * GOLABELS_CACHE_SLOTS sets, all forgotten when half full. */
#define GOLABELS_CACHE_SLOTS 1024

struct golabels_entry {
	uint64_t id; /* 0: free */
	size_t n;
	struct golabels_strs strs;
	struct profile_label labels[GS_LABELS_MAX];
};

struct golabels_cache {
	int map_fd;
	struct golabels_entry *v; /* GOLABELS_CACHE_SLOTS, allocated at the first use */
	size_t n;
};

void golabels_cache_init(struct golabels_cache *c, int map_fd);
void golabels_cache_free(struct golabels_cache *c);
/* The profile labels of set id (sorted by key) in *out, valid until the next call; returns
 * how many. -ENOENT when BPF no longer has the set (evicted before it was read), -ENOMEM. */
int golabels_cache_get(struct golabels_cache *c, uint64_t id, const struct profile_label **out);
