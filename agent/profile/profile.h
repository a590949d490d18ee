/* profile.h — a format-agnostic in-memory profile (sample types, mappings, functions,
 * locations, samples with labels), deduplicated as it is built, and its writers.
 *
 * The capture code fills a struct profile; agent/profile/pprof.c turns it into profile.proto
 * (github.com/google/pprof/proto/profile.proto), optionally gzip-compressed, which is what
 * `go tool pprof` reads. Ids of mappings, functions and locations start at 1 and are the ids
 * written to the file. Strings passed in are copied; NULL strings are taken as "".
 *
 * Functions returning void or an id cannot report allocation failures themselves: they
 * record them in the profile, and every writer then fails with -ENOMEM. */
#ifndef GOSCOPE_AGENT_PROFILE_H
#define GOSCOPE_AGENT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

struct profile;

struct profile *profile_new(void);
void profile_free(struct profile *p);

/* Sample value types in order, e.g. ("samples","count"), ("cpu","nanoseconds"). All types must
 * be added before the first sample (-EBUSY otherwise); -ENOMEM. */
int profile_add_sample_type(struct profile *p, const char *type, const char *unit);
/* Names the type `go tool pprof` shows by default (NULL: the last one, pprof's default). */
void profile_set_default_sample_type(struct profile *p, const char *type);
void profile_set_period(struct profile *p, const char *type, const char *unit, int64_t period);
void profile_set_time(struct profile *p, int64_t time_nanos, int64_t duration_nanos);
int profile_add_comment(struct profile *p, const char *text);

/* Returns the id (>= 1) of an identical existing mapping or a new one; 0 on ENOMEM.
 * Identity = (start, limit, offset, file, build_id); the has_* flags of the first call win. */
uint64_t profile_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
			 const char *file, const char *build_id, bool has_functions,
			 bool has_filenames, bool has_line_numbers, bool has_inline_frames);

/* Returns the id of the identical function (name, system_name, filename, start_line) or a new
 * one; 0 on ENOMEM. */
uint64_t profile_function(struct profile *p, const char *name, const char *system_name,
			  const char *filename, int64_t start_line);

struct profile_line {
	uint64_t function_id;
	int64_t line;
};

/* Locations are keyed by (key, address): key is any caller-chosen 64-bit value (e.g. pid), so
 * that the same address in two processes gives two locations. find returns 0 when unknown; add
 * returns the new id, or the existing one when (key, address) is already known (its lines are
 * then left as they were); 0 on ENOMEM or when mapping_id (0 = none) or a function id is
 * unknown. lines: innermost first, as pprof expects. */
uint64_t profile_location_find(const struct profile *p, uint64_t key, uint64_t address);
uint64_t profile_location_add(struct profile *p, uint64_t key, uint64_t address,
			      uint64_t mapping_id, const struct profile_line *lines, size_t nlines);

struct profile_label {
	const char *key;
	const char *str; /* NULL for numeric */
	int64_t num;
	const char *num_unit; /* may be NULL */
};

/* Adds values to the sample with the same location list and labels (same labels in the same
 * order; merging, as Go does), or creates it. values has one entry per sample type; sums
 * saturate at the int64 limits. -EINVAL (no sample types, unknown location id, label without
 * key), -ENOMEM. */
int profile_add_sample(struct profile *p, const uint64_t *location_ids, size_t nlocs,
		       const int64_t *values, const struct profile_label *labels, size_t nlabels,
		       struct gs_error *err);
size_t profile_sample_count(const struct profile *p);

/* Multiplies every value of every sample by num/den (rounded half away from zero, clamped to
 * int64) — used for throttled captures. den == 0 leaves the values unchanged. */
void profile_scale(struct profile *p, uint64_t num, uint64_t den);

/* Encodes profile.proto (uncompressed) into a malloc'd buffer (agent/profile/pprof.c). */
int profile_encode(const struct profile *p, uint8_t **buf, size_t *len, struct gs_error *err);
/* Writes gzip-compressed profile.proto to fd (a file, or 1 for stdout). */
int profile_write_gzip(const struct profile *p, int fd, struct gs_error *err);
/* Writes gzip to the path ("-" = stdout), atomically for real files (tmp + rename). */
int profile_write_file(const struct profile *p, const char *path, struct gs_error *err);

/* ---- Model internals: read by the encoder (agent/profile/pprof.c) only. ----
 * Strings are string-table indices (0 is ""); ids are 1-based array positions. */

struct profile_value_type {
	uint32_t type, unit;
};

struct profile_mapping_rec {
	uint64_t start, limit, offset;
	uint32_t file, build_id;
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct profile_function_rec {
	uint32_t name, system_name, filename;
	int64_t start_line;
};

struct profile_location_rec {
	uint64_t key, address, mapping_id;
	size_t line_off; /* into profile.lines */
	uint32_t nlines;
};

struct profile_label_rec {
	uint32_t key, str, num_unit;
	int64_t num;
};

struct profile_sample_rec {
	size_t loc_off;	  /* into profile.sample_locs */
	size_t label_off; /* into profile.labels */
	uint32_t nlocs, nlabels;
	uint32_t hash;
};

/* Open-addressing hash index of 1-based record numbers (0 = empty slot). */
struct profile_index {
	struct profile_index_slot {
		uint32_t id, hash;
	} * slots;
	size_t mask, count;
};

struct profile {
	struct profile_string {
		char *s; /* NUL-terminated copy */
		size_t len;
	} * strings;
	size_t nstrings, cap_strings;
	struct profile_index string_index;

	struct profile_value_type *sample_types;
	size_t nsample_types, cap_sample_types;
	uint32_t default_sample_type;
	struct profile_value_type period_type;
	int64_t period, time_nanos, duration_nanos;
	uint32_t *comments;
	size_t ncomments, cap_comments;

	struct profile_mapping_rec *mappings;
	size_t nmappings, cap_mappings;
	struct profile_index mapping_index;

	struct profile_function_rec *functions;
	size_t nfunctions, cap_functions;
	struct profile_index function_index;

	struct profile_location_rec *locations;
	size_t nlocations, cap_locations;
	struct profile_index location_index;
	struct profile_line *lines;
	size_t nlines, cap_lines;

	struct profile_sample_rec *samples;
	size_t nsamples, cap_samples;
	struct profile_index sample_index;
	uint32_t *sample_locs; /* location ids */
	size_t nsample_locs, cap_sample_locs;
	int64_t *values; /* nsamples * nsample_types */
	size_t cap_values;
	struct profile_label_rec *labels;
	size_t nlabels, cap_labels;

	bool oom; /* an allocation failed in a function that could not report it */
};

#endif
