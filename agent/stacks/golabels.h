/* golabels.h — the userspace side of the pprof labels BPF reads (bpf/golabels.bpf.h): what
 * BPF needs to know of a target image to read them (its Go version's g.labels offset and
 * label-set layout, its Go text at run-time addresses, its TLS slot of g), and the label set
 * BPF copied out turned into pprof string labels, as runtime/pprof writes them. */
#ifndef GOSCOPE_AGENT_GOLABELS_H
#define GOSCOPE_AGENT_GOLABELS_H

#include <stddef.h>

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
 * Returns how many were appended. in comes from BPF: lengths are bounded here again. */
size_t golabels_to_profile(const struct gs_labels *in, struct golabels_strs *strs,
			   struct profile_label *out, size_t max);

#endif
