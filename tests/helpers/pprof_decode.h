/* pprof_decode.h — a small profile.proto reader for tests, written independently of goscope's
 * encoder (agent/profile/pprof.c): reads an uncompressed or gzip-compressed profile into plain
 * arrays that keep the file's ids and string-table indices, so a test can check exactly what
 * was written. Plain C, no Criterion: errors come back as -1 with a message.
 *
 * (tests/helpers/pprof_traces.h is the other way tests read profiles: through `go tool pprof
 * -traces`, Go's own decoder, by function names. This one is the wire-level reader.) */
#ifndef GOSCOPE_TESTS_PPROF_DECODE_H
#define GOSCOPE_TESTS_PPROF_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pprof_value_type {
	uint64_t type, unit; /* string indices */
};

struct pprof_label {
	uint64_t key, str, num_unit; /* string indices */
	int64_t num;
};

struct pprof_sample {
	uint64_t *locs; /* location ids, leaf first */
	size_t nlocs;
	int64_t *values; /* one per sample type */
	size_t nvalues;
	struct pprof_label *labels;
	size_t nlabels;
};

struct pprof_line {
	uint64_t fn; /* function id */
	int64_t line;
};

struct pprof_location {
	uint64_t id, mapping, address;
	struct pprof_line *lines; /* innermost (inlined) first */
	size_t nlines;
};

struct pprof_function {
	uint64_t id, name, system_name, filename; /* string indices but id */
	int64_t start_line;
};

struct pprof_mapping {
	uint64_t id, start, limit, offset, file, build_id;
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

/* A decoded Profile message, in the file's order. */
struct pprof_doc {
	char **strings; /* string_table, NUL-terminated copies */
	size_t nstrings;
	struct pprof_value_type *sample_types, period_type;
	size_t nsample_types;
	struct pprof_sample *samples;
	size_t nsamples;
	struct pprof_mapping *maps;
	size_t nmaps;
	struct pprof_location *locs;
	size_t nlocs;
	struct pprof_function *funcs;
	size_t nfuncs;
	int64_t time, duration, period;
	uint64_t *comments; /* string indices */
	size_t ncomments;
	uint64_t default_type; /* string index */
	/* Fields profile.proto has but goscope does not write (drop_frames, keep_frames), and
	 * fields unknown to profile.proto, skipped: a strict reader asserts this is 0. */
	size_t unknown_fields;
};

/* Decodes an uncompressed profile.proto; 0, or -1 with the reason in why (d is then freed). */
int pprof_decode(const uint8_t *buf, size_t len, struct pprof_doc *d, char *why, size_t why_len);
/* Reads a file (gzip-compressed or not, as `go tool pprof` accepts) and decodes it. */
int pprof_decode_file(const char *path, struct pprof_doc *d, char *why, size_t why_len);
void pprof_doc_free(struct pprof_doc *d);

/* Inflates exactly one gzip member (nothing may follow it) into a malloc'd buffer; 0 or -1. */
int pprof_gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, char *why,
		 size_t why_len);

/* String idx, or NULL when out of range. */
const char *pprof_str(const struct pprof_doc *d, uint64_t idx);
/* The location / function with that id, or NULL. */
const struct pprof_location *pprof_location(const struct pprof_doc *d, uint64_t id);
const struct pprof_function *pprof_function(const struct pprof_doc *d, uint64_t id);
/* The index of the sample type named type (e.g. "samples"), or -1. */
int pprof_sample_type(const struct pprof_doc *d, const char *type);

#endif
