/* profile_impl.h — the layout of struct profile (profile.h), private to agent/profile/: the
 * model (profile.c) builds it, the encoder (pprof.c) reads it. Outside agent/profile/ only
 * the model's white-box unit tests (tests/unit/test_pprof.c) include it; the rest of the code
 * goes through profile.h.
 *
 * Strings are string-table indices (0 is ""); ids are 1-based array positions. */
#ifndef GOSCOPE_AGENT_PROFILE_IMPL_H
#define GOSCOPE_AGENT_PROFILE_IMPL_H

#include "profile/profile.h"

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
