/* golabels.c — what BPF needs to read a target's pprof labels, and the label sets it reads
 * turned into profile labels (see golabels.h and bpf/golabels.bpf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "goruntime/goversion_table.h"
#include "stacks/golabels.h"

/* Where the Go runtime keeps g in thread-local storage on linux/amd64: runtime.tlsg, the
 * executable's only TLS variable, right below the thread pointer (initial-exec model;
 * internal and external linking alike, PIE too). */
#define GO_TLS_G_OFFSET (-8)

/* The run-time address minus the link-time address of the executable's code (0 unless PIE):
 * from the executable mapping that holds main's code. -1 when no mapping of it is found. */
static int text_bias(struct gs_process *proc, struct gs_binary *main, uint64_t *bias)
{
	const struct gs_mapping *maps;
	size_t n = gs_process_mappings(proc, &maps);

	for (size_t i = 0; i < n; i++) {
		struct gs_location loc;

		if (!maps[i].exec || gs_process_locate(proc, maps[i].start, &loc) < 0 ||
		    loc.binary != main)
			continue;
		*bias = maps[i].start - loc.file_addr;
		return 0;
	}
	return -1;
}

void golabels_cfg(struct gs_process *proc, struct gs_labels_cfg *out)
{
	const struct gs_binary_info *info;
	struct goversion_facts facts;
	struct gs_binary *main;
	uint64_t bias;

	memset(out, 0, sizeof(*out));
	main = proc ? gs_process_main_binary(proc) : NULL;
	if (!main)
		return;
	info = gs_binary_info(main);
	if (!info->is_go || !info->has_buildinfo ||
	    goversion_lookup(info->buildinfo.go_version, &facts, NULL) < 0 || facts.g_labels == 0)
		return;
	out->g_labels = (__u16)facts.g_labels;
	out->tls_g = GO_TLS_G_OFFSET;
	if (info->text_end > info->text_start && text_bias(proc, main, &bias) == 0) {
		out->text_lo = info->text_start + bias;
		out->text_hi = info->text_end + bias;
	}
	out->layout = facts.labels_slice ? GS_LABELS_SLICE : GS_LABELS_MAP;
}

size_t golabels_to_profile(const struct gs_labels *in, struct golabels_strs *strs,
			   struct profile_label *out, size_t max)
{
	size_t n = in->n <= GS_LABELS_MAX ? in->n : GS_LABELS_MAX, order[GS_LABELS_MAX], m = 0;

	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		const struct gs_label *l = &in->v[i];
		size_t kl = l->key_len <= GS_LABEL_KEY_LEN ? l->key_len : GS_LABEL_KEY_LEN;
		size_t vl = l->value_len <= GS_LABEL_VALUE_LEN ? l->value_len : GS_LABEL_VALUE_LEN;
		size_t j = m;

		memcpy(strs->key[m], l->key, kl);
		strs->key[m][kl] = '\0';
		/* No key: Go's pprof.Labels("", v), a key BPF could not read (GS_LABELS_UNREAD,
		 * counted), or one that begins with a NUL byte. A profile label needs a key. */
		if (strs->key[m][0] == '\0')
			continue;
		memcpy(strs->value[m], l->value, vl);
		strs->value[m][vl] = '\0';
		/* Insertion sort by key: at most GS_LABELS_MAX entries. */
		while (j > 0 && strcmp(strs->key[order[j - 1]], strs->key[m]) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = m++;
	}
	for (size_t i = 0; i < m; i++)
		out[i] = (struct profile_label){.key = strs->key[order[i]],
						.str = strs->value[order[i]]};
	return m;
}

void golabels_cache_init(struct golabels_cache *c, int map_fd)
{
	memset(c, 0, sizeof(*c));
	c->map_fd = map_fd;
}

void golabels_cache_free(struct golabels_cache *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

int golabels_cache_get(struct golabels_cache *c, uint64_t id, const struct profile_label **out)
{
	struct golabels_entry *e;
	struct gs_labels ls;
	size_t i;

	if (!c->v && !(c->v = calloc(GOLABELS_CACHE_SLOTS, sizeof(*c->v))))
		return -ENOMEM;
	for (i = id & (GOLABELS_CACHE_SLOTS - 1); c->v[i].id;
	     i = (i + 1) & (GOLABELS_CACHE_SLOTS - 1)) {
		if (c->v[i].id == id) {
			*out = c->v[i].labels;
			return (int)c->v[i].n;
		}
	}
	if (bpf_map_lookup_elem(c->map_fd, &id, &ls) < 0)
		return -ENOENT;
	if (c->n + 1 > GOLABELS_CACHE_SLOTS / 2) {
		memset(c->v, 0, GOLABELS_CACHE_SLOTS * sizeof(*c->v));
		c->n = 0;
		i = id & (GOLABELS_CACHE_SLOTS - 1);
	}
	e = &c->v[i];
	e->id = id;
	e->n = golabels_to_profile(&ls, &e->strs, e->labels, GS_LABELS_MAX);
	c->n++;
	*out = e->labels;
	return (int)e->n;
}
