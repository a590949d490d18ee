/* profile.h — a format-agnostic in-memory profile (sample types, mappings, functions,
 * locations, samples with labels), deduplicated as it is built, and its writers.
 *
 * The capture code fills a struct profile; agent/profile/pprof.c turns it into profile.proto
 * (github.com/google/pprof/proto/profile.proto) and agent/profile/sink.c writes it
 * gzip-compressed to a file or fd, which is what `go tool pprof` reads. The model's layout is
 * private to agent/profile/ (profile_impl.h). Ids of mappings, functions and locations start at 1 and are the ids
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

/* Samples profile_add_sample refused as malformed (-EINVAL: a bug, or something read from a
 * target that got past the checks before it), and the first reason: a capture leaves such a
 * sample out and goes on, and says so. */
struct profile_rejects {
	uint64_t n;
	char why[GS_ERROR_MSG_MAX];
};

/* For rc, what profile_add_sample returned: a refusal (-EINVAL) is counted in r, err cleared,
 * and 0 returned; any other rc is returned as is. */
int profile_reject(struct profile_rejects *r, int rc, struct gs_error *err);

/* Multiplies every value of every sample by num/den (rounded half away from zero, clamped to
 * int64) — used for throttled captures. den == 0 leaves the values unchanged. */
void profile_scale(struct profile *p, uint64_t num, uint64_t den);

/* Adds every sample of src to dst (profile_add_sample's merging: equal location lists and
 * labels sum), bringing src's mappings, functions and locations over under dst's ids
 * (deduplicated as in profile_mapping, profile_function and profile_location_add: a location
 * whose (key, address) dst already has keeps dst's). Both must have the same sample types, in
 * the same order (-EINVAL otherwise); a dst without sample types and samples takes src's.
 * dst keeps its period and default type (taking src's when it has none), its time span grows
 * to cover src's, and src's comments that dst lacks are appended. -EINVAL when dst == src,
 * -ENOMEM (src or dst out of memory). On an error dst may hold part of src. */
int profile_merge(struct profile *dst, const struct profile *src, struct gs_error *err);

/* Adds labels to every sample, after the sample's own (string labels with str, numeric
 * ones with num). Every sample gets the same labels, so no two samples merge. -ENOMEM. */
int profile_add_labels_all(struct profile *p, const struct profile_label *labels, size_t n,
			   struct gs_error *err);

/* Drops every sample and comment and the time span; keeps the string, mapping, function and
 * location tables, the sample types, the period and the default type. The store's rollup
 * keeps one such profile per process as a growing dictionary and merges each minute into it
 * (agent/store/store_rollup.c). */
void profile_clear_samples(struct profile *p);

/* How far a profile's tables reach: the dictionary part of an encoding (below) covers the
 * entries added after such a mark. */
struct profile_dict_mark {
	size_t strings, mappings, functions, locations;
};
void profile_dict_mark(const struct profile *p, struct profile_dict_mark *m);

/* ---- readers ---- */

/* Decodes a pprof profile (gzip-compressed or not) into a new profile: profile.proto as
 * written by Go and by goscope. Untrusted input: bounded, every index checked; -EINVAL with
 * a message for malformed data, -ENOMEM. (agent/profile/pprof_decode.c) */
int profile_decode(const uint8_t *buf, size_t len, struct profile **out, struct gs_error *err);

/* ---- writers ---- */

/* Receives encoded bytes in order; returns 0 or a negative errno (having filled err). */
typedef int (*profile_write_fn)(void *ctx, const uint8_t *data, size_t len, struct gs_error *err);

/* Encodes profile.proto (uncompressed), handing it to write in pieces of about 64 KiB
 * (agent/profile/pprof.c). */
int profile_encode_to(const struct profile *p, profile_write_fn write, void *ctx,
		      struct gs_error *err);
/* Encodes profile.proto (uncompressed) into a malloc'd buffer. */
int profile_encode(const struct profile *p, uint8_t **buf, size_t *len, struct gs_error *err);
/* The two halves of profile.proto, for a store that keeps what every window repeats once:
 * the dictionary delta holds the string_table entries, mappings, functions and locations
 * added after since (a zeroed mark: all of them, string_table[0] = "" first); the own part
 * holds everything else (sample types, samples, time, period, comments, default type).
 * Protobuf repeated fields concatenate and ids are explicit, so the deltas from a zero mark
 * on, in order, followed by one own part, are a complete profile.proto, as long as the own
 * part was encoded when every delta up to it had been taken. Uncompressed, malloc'd. */
int profile_encode_dict_delta(const struct profile *p, const struct profile_dict_mark *since,
			      uint8_t **buf, size_t *len, struct gs_error *err);
int profile_encode_own(const struct profile *p, uint8_t **buf, size_t *len, struct gs_error *err);
/* Writes gzip-compressed profile.proto to fd (a file, or 1 for stdout) (agent/profile/sink.c). */
int profile_write_gzip(const struct profile *p, int fd, struct gs_error *err);
/* Writes gzip to the path ("-" = stdout), atomically for real files (tmp + rename). */
int profile_write_file(const struct profile *p, const char *path, struct gs_error *err);

#endif
