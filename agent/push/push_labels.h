/* push_labels.h — a stored window's labels as a Pyroscope series: `__name__` from the
 * profile type (cpu: process_cpu, block: block, heap: memory, goroutines: goroutines), then
 * service_name, then the row's other labels in their order (those with an empty value left
 * out); names sanitized to
 * [A-Za-z_][A-Za-z0-9_.]* (a later name equal to an earlier one once sanitized is left out),
 * values made valid UTF-8 and cut to Pyroscope's default length limit, at most
 * PUSH_MAX_LABELS in all (Pyroscope's default max_label_names_per_series). Also each
 * window's sample ID. */
#ifndef GOSCOPE_AGENT_PUSH_LABELS_H
#define GOSCOPE_AGENT_PUSH_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"
#include "push/push_proto.h"

/* Pyroscope's defaults (pkg/validation/limits.go). */
#define PUSH_MAX_LABELS 30
#define PUSH_MAX_LABEL_NAME 1024
#define PUSH_MAX_LABEL_VALUE 2048

/* The series' labels, owning their strings. */
struct push_series_labels {
	struct push_label l[PUSH_MAX_LABELS];
	size_t n;
	char *strings; /* one allocation for every name and value */
};

/* Pyroscope's profile name of a store type, NULL when there is none. */
const char *push_profile_name(const char *type);

/* Sanitizes a label name into out (size PUSH_MAX_LABEL_NAME + 1): every byte outside
 * [A-Za-z0-9_.] becomes '_', a leading digit or '.' gets a '_' in front; "" becomes "_";
 * at most PUSH_MAX_LABEL_NAME bytes. */
void push_sanitize_name(const char *in, char *out);

/* Copies a label value into out (size PUSH_MAX_LABEL_VALUE + 1) as valid UTF-8 (each byte of
 * an invalid sequence becomes '?'), cut at a character boundary. */
void push_sanitize_value(const char *in, char *out);

/* The labels of a window of type with the row's labels (a JSON object of strings).
 * -EINVAL for an unknown type or labels that are not a JSON object; -ENOMEM. */
int push_series_labels(const char *type, const char *labels_json, struct push_series_labels *out,
		       struct gs_error *err);
void push_series_labels_free(struct push_series_labels *l);

/* The window's sample ID: a UUID (version 8) derived from the node label, the row id, and the
 * window's process and time, so that a window sent again after a restart has the same one
 * and windows of other nodes (other stores) do not share it. out: 37 bytes. */
#define PUSH_ID_LEN 37
void push_window_id(const char *node, int64_t row_id, int pid, uint64_t start_ticks,
		    int64_t start_ns, const char *type, char out[PUSH_ID_LEN]);

#endif
