/* pprof.c — the wire encoding of a struct profile (profile.h): a small protobuf writer
 * modeled on Go's runtime/pprof (protobuf.go, proto.go) and profile.proto's field numbers.
 * Top-level messages are handed to a writer (profile_write_fn) as soon as the buffer grows
 * past a threshold, so a sink (agent/profile/sink.c: gzip to an fd or a file) streams instead
 * of holding the whole encoding in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_impl.h"

/* profile.proto field numbers. */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,

	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,

	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,

	LABEL_KEY = 1,
	LABEL_STR = 2,
	LABEL_NUM = 3,
	LABEL_NUM_UNIT = 4,

	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	MAPPING_HAS_INLINE_FRAMES = 10,

	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_ADDRESS = 3,
	LOCATION_LINE = 4,

	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,

	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
	FUNCTION_START_LINE = 5,
};

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

/* Hand buffered top-level messages to the sink once this much is pending. */
#define PB_FLUSH_AT (64 * 1024)

/* The encoder state: a growable buffer, like Go's `protobuf` type. Errors are sticky: after
 * one, writes do nothing and pb.err tells. */
struct pb {
	uint8_t *data;
	size_t len, cap;
	int nest; /* open messages: data cannot be flushed while > 0 */
	int err;
	profile_write_fn sink; /* NULL: keep everything in data */
	void *ctx;
	struct gs_error *sink_err; /* where the sink reports its errors */
};

/* Makes room for n more bytes; false (and b->err set) when it cannot. */
static bool pb_room(struct pb *b, size_t n)
{
	size_t ncap;
	uint8_t *nd;

	if (b->err)
		return false;
	if (b->cap - b->len >= n)
		return true;
	ncap = b->cap ? b->cap : 4096;
	while (ncap - b->len < n) {
		if (ncap > SIZE_MAX / 2) {
			b->err = -ENOMEM;
			return false;
		}
		ncap *= 2;
	}
	nd = realloc(b->data, ncap);
	if (!nd) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = nd;
	b->cap = ncap;
	return true;
}

/* Encodes x as a base-128 varint into out (at least 10 bytes); returns its length. */
static size_t varint_put(uint8_t *out, uint64_t x)
{
	size_t n = 0;

	while (x >= 0x80) {
		out[n++] = (uint8_t)x | 0x80;
		x >>= 7;
	}
	out[n++] = (uint8_t)x;
	return n;
}

static void pb_varint(struct pb *b, uint64_t x)
{
	if (pb_room(b, 10))
		b->len += varint_put(b->data + b->len, x);
}

static void pb_uint64(struct pb *b, int tag, uint64_t x)
{
	pb_varint(b, (uint64_t)tag << 3 | WIRE_VARINT);
	pb_varint(b, x);
}

static void pb_uint64_opt(struct pb *b, int tag, uint64_t x)
{
	if (x)
		pb_uint64(b, tag, x);
}

/* int64 fields (not sint64): two's complement, so negative numbers take 10 bytes. */
static void pb_int64_opt(struct pb *b, int tag, int64_t x)
{
	if (x)
		pb_uint64(b, tag, (uint64_t)x);
}

static void pb_bool_opt(struct pb *b, int tag, bool x)
{
	if (x)
		pb_uint64(b, tag, 1);
}

static void pb_bytes(struct pb *b, int tag, const void *s, size_t n)
{
	pb_varint(b, (uint64_t)tag << 3 | WIRE_BYTES);
	pb_varint(b, n);
	if (pb_room(b, n)) {
		if (n)
			memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

/* Opens a length-delimited field (sub-message or packed repeated field); pb_end closes it. */
static size_t pb_start(struct pb *b)
{
	b->nest++;
	return b->len;
}

/* Closes the field opened at start: its tag and length go in front of the bytes written since,
 * which move up by the header's size (Go's endMessage). */
static void pb_end(struct pb *b, int tag, size_t start)
{
	uint8_t hdr[20];
	size_t body, n;

	b->nest--;
	if (b->err)
		return;
	body = b->len - start;
	n = varint_put(hdr, (uint64_t)tag << 3 | WIRE_BYTES);
	n += varint_put(hdr + n, body);
	if (!pb_room(b, n))
		return;
	memmove(b->data + start + n, b->data + start, body);
	memcpy(b->data + start, hdr, n);
	b->len += n;
}

/* Hands the pending bytes to the sink between top-level messages, past PB_FLUSH_AT. */
static void pb_maybe_flush(struct pb *b, bool force)
{
	int rc;

	if (b->err || !b->sink || b->nest > 0 || b->len == 0 || (!force && b->len < PB_FLUSH_AT))
		return;
	rc = b->sink(b->ctx, b->data, b->len, b->sink_err);
	if (rc)
		b->err = rc;
	b->len = 0;
}

/* ---- profile messages ---- */

static void pb_value_type(struct pb *b, int tag, const struct profile_value_type *vt)
{
	size_t start = pb_start(b);

	pb_uint64_opt(b, VALUE_TYPE_TYPE, vt->type);
	pb_uint64_opt(b, VALUE_TYPE_UNIT, vt->unit);
	pb_end(b, tag, start);
}

/* Sample i: packed location ids and values, then its labels. */
static void pb_sample(struct pb *b, const struct profile *p, size_t i)
{
	const struct profile_sample_rec *s = &p->samples[i];
	const int64_t *values = &p->values[i * p->nsample_types];
	size_t start = pb_start(b), packed;

	/* Repeated scalars are packed (proto3's default); Go packs them too. */
	if (s->nlocs) {
		packed = pb_start(b);
		for (uint32_t j = 0; j < s->nlocs; j++)
			pb_varint(b, p->sample_locs[s->loc_off + j]);
		pb_end(b, SAMPLE_LOCATION_ID, packed);
	}
	packed = pb_start(b);
	for (size_t j = 0; j < p->nsample_types; j++)
		pb_varint(b, (uint64_t)values[j]);
	pb_end(b, SAMPLE_VALUE, packed);
	for (uint32_t j = 0; j < s->nlabels; j++) {
		const struct profile_label_rec *l = &p->labels[s->label_off + j];
		size_t lstart = pb_start(b);

		pb_uint64_opt(b, LABEL_KEY, l->key);
		pb_uint64_opt(b, LABEL_STR, l->str);
		pb_int64_opt(b, LABEL_NUM, l->num);
		pb_uint64_opt(b, LABEL_NUM_UNIT, l->num_unit);
		pb_end(b, SAMPLE_LABEL, lstart);
	}
	pb_end(b, PROFILE_SAMPLE, start);
}

static void pb_mapping(struct pb *b, const struct profile_mapping_rec *m, uint64_t id)
{
	size_t start = pb_start(b);

	pb_uint64_opt(b, MAPPING_ID, id);
	pb_uint64_opt(b, MAPPING_MEMORY_START, m->start);
	pb_uint64_opt(b, MAPPING_MEMORY_LIMIT, m->limit);
	pb_uint64_opt(b, MAPPING_FILE_OFFSET, m->offset);
	pb_uint64_opt(b, MAPPING_FILENAME, m->file);
	pb_uint64_opt(b, MAPPING_BUILD_ID, m->build_id);
	pb_bool_opt(b, MAPPING_HAS_FUNCTIONS, m->has_functions);
	pb_bool_opt(b, MAPPING_HAS_FILENAMES, m->has_filenames);
	pb_bool_opt(b, MAPPING_HAS_LINE_NUMBERS, m->has_line_numbers);
	pb_bool_opt(b, MAPPING_HAS_INLINE_FRAMES, m->has_inline_frames);
	pb_end(b, PROFILE_MAPPING, start);
}

static void pb_location(struct pb *b, const struct profile *p, size_t i)
{
	const struct profile_location_rec *loc = &p->locations[i];
	size_t start = pb_start(b);

	pb_uint64_opt(b, LOCATION_ID, i + 1);
	pb_uint64_opt(b, LOCATION_MAPPING_ID, loc->mapping_id);
	pb_uint64_opt(b, LOCATION_ADDRESS, loc->address);
	for (uint32_t j = 0; j < loc->nlines; j++) {
		const struct profile_line *ln = &p->lines[loc->line_off + j];
		size_t lstart = pb_start(b);

		pb_uint64_opt(b, LINE_FUNCTION_ID, ln->function_id);
		pb_int64_opt(b, LINE_LINE, ln->line);
		pb_end(b, LOCATION_LINE, lstart);
	}
	pb_end(b, PROFILE_LOCATION, start);
}

static void pb_function(struct pb *b, const struct profile_function_rec *f, uint64_t id)
{
	size_t start = pb_start(b);

	pb_uint64_opt(b, FUNCTION_ID, id);
	pb_uint64_opt(b, FUNCTION_NAME, f->name);
	pb_uint64_opt(b, FUNCTION_SYSTEM_NAME, f->system_name);
	pb_uint64_opt(b, FUNCTION_FILENAME, f->filename);
	pb_int64_opt(b, FUNCTION_START_LINE, f->start_line);
	pb_end(b, PROFILE_FUNCTION, start);
}

/* The dictionary fields (mappings, locations, functions, string table) of the entries past
 * since, in field-number order. */
static void encode_dict(struct pb *b, const struct profile *p,
			const struct profile_dict_mark *since)
{
	for (size_t i = since->mappings; i < p->nmappings; i++)
		pb_mapping(b, &p->mappings[i], i + 1);
	for (size_t i = since->locations; i < p->nlocations; i++) {
		pb_location(b, p, i);
		pb_maybe_flush(b, false);
	}
	for (size_t i = since->functions; i < p->nfunctions; i++) {
		pb_function(b, &p->functions[i], i + 1);
		pb_maybe_flush(b, false);
	}
	/* Every entry, "" at index 0 included. */
	for (size_t i = since->strings; i < p->nstrings; i++) {
		pb_bytes(b, PROFILE_STRING_TABLE, p->strings[i].s, p->strings[i].len);
		pb_maybe_flush(b, false);
	}
}

enum encode_what { ENCODE_ALL, ENCODE_OWN };

/* Encodes the whole Profile message (or only its own part) into b (flushing to b's sink as
 * it goes), fields in field-number order. */
static int encode_profile(struct pb *b, const struct profile *p, enum encode_what what,
			  struct gs_error *err)
{
	static const struct profile_dict_mark all;

	if (p->oom)
		return gs_error_set(err, -ENOMEM,
				    "profile: out of memory while building the profile");

	for (size_t i = 0; i < p->nsample_types; i++)
		pb_value_type(b, PROFILE_SAMPLE_TYPE, &p->sample_types[i]);
	for (size_t i = 0; i < p->nsamples; i++) {
		pb_sample(b, p, i);
		pb_maybe_flush(b, false);
	}
	if (what == ENCODE_ALL)
		encode_dict(b, p, &all);
	pb_int64_opt(b, PROFILE_TIME_NANOS, p->time_nanos);
	pb_int64_opt(b, PROFILE_DURATION_NANOS, p->duration_nanos);
	if (p->period_type.type || p->period_type.unit)
		pb_value_type(b, PROFILE_PERIOD_TYPE, &p->period_type);
	pb_int64_opt(b, PROFILE_PERIOD, p->period);
	if (p->ncomments) {
		size_t start = pb_start(b);

		for (size_t i = 0; i < p->ncomments; i++)
			pb_varint(b, p->comments[i]);
		pb_end(b, PROFILE_COMMENT, start);
	}
	pb_uint64_opt(b, PROFILE_DEFAULT_SAMPLE_TYPE, p->default_sample_type);
	pb_maybe_flush(b, true);

	if (b->err == -ENOMEM)
		return gs_error_set(err, -ENOMEM, "pprof: out of memory while encoding");
	return b->err; /* a sink error, already in err */
}

int profile_encode(const struct profile *p, uint8_t **buf, size_t *len, struct gs_error *err)
{
	struct pb b = {0};
	int rc;

	*buf = NULL;
	*len = 0;
	rc = encode_profile(&b, p, ENCODE_ALL, err);
	if (rc) {
		free(b.data);
		return rc;
	}
	*buf = b.data;
	*len = b.len;
	return 0;
}

int profile_encode_to(const struct profile *p, profile_write_fn write, void *ctx,
		      struct gs_error *err)
{
	struct pb b = {.sink = write, .ctx = ctx, .sink_err = err};
	int rc = encode_profile(&b, p, ENCODE_ALL, err);

	free(b.data);
	return rc;
}

/* Hands over b's buffer, or frees it on an error. */
static int pb_take(struct pb *b, int rc, uint8_t **buf, size_t *len, struct gs_error *err)
{
	if (!rc && b->err)
		rc = gs_error_set(err, -ENOMEM, "pprof: out of memory while encoding");
	if (rc) {
		free(b->data);
		return rc;
	}
	*buf = b->data;
	*len = b->len;
	return 0;
}

int profile_encode_dict_delta(const struct profile *p, const struct profile_dict_mark *since,
			      uint8_t **buf, size_t *len, struct gs_error *err)
{
	struct pb b = {0};

	*buf = NULL;
	*len = 0;
	if (p->oom)
		return gs_error_set(err, -ENOMEM,
				    "profile: out of memory while building the profile");
	if (since->strings > p->nstrings || since->mappings > p->nmappings ||
	    since->functions > p->nfunctions || since->locations > p->nlocations)
		return gs_error_set(err, -EINVAL,
				    "pprof: dictionary mark past the profile's tables");
	encode_dict(&b, p, since);
	return pb_take(&b, 0, buf, len, err);
}

int profile_encode_own(const struct profile *p, uint8_t **buf, size_t *len, struct gs_error *err)
{
	struct pb b = {0};

	*buf = NULL;
	*len = 0;
	return pb_take(&b, encode_profile(&b, p, ENCODE_OWN, err), buf, len, err);
}
