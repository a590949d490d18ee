/* push_proto.c — the hand-written protobuf encoder of Pyroscope's PushRequest and the sample
 * counter of a profile.proto (push_proto.h says why by hand and which field numbers). */
#include <stdlib.h>
#include <string.h>

#include "push/push_proto.h"

#define PB_WIRE_VARINT 0
#define PB_WIRE_I64 1
#define PB_WIRE_LEN 2
#define PB_WIRE_I32 5
#define PB_MAX_VARINT 10

void push_pb_init(struct push_pb_buf *b)
{
	memset(b, 0, sizeof(*b));
	b->ok = true;
}

void push_pb_free(struct push_pb_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct push_pb_buf *b, size_t n)
{
	size_t cap;
	uint8_t *d;

	if (!b->ok)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d) {
		b->ok = false;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void push_pb_varint(struct push_pb_buf *b, uint64_t v)
{
	if (!reserve(b, PB_MAX_VARINT))
		return;
	while (v >= 0x80) {
		b->data[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->data[b->len++] = (uint8_t)v;
}

size_t push_pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t push_pb_field_size(unsigned field, size_t len)
{
	return push_pb_varint_size((uint64_t)field << 3 | PB_WIRE_LEN) + push_pb_varint_size(len) +
	       len;
}

static void tag_len(struct push_pb_buf *b, unsigned field, size_t len)
{
	push_pb_varint(b, (uint64_t)field << 3 | PB_WIRE_LEN);
	push_pb_varint(b, len);
}

void push_pb_bytes(struct push_pb_buf *b, unsigned field, const void *data, size_t len)
{
	tag_len(b, field, len);
	if (len && reserve(b, len)) {
		memcpy(b->data + b->len, data, len);
		b->len += len;
	}
}

static size_t label_size(const struct push_label *l)
{
	return push_pb_field_size(PB_LABEL_NAME, strlen(l->name)) +
	       push_pb_field_size(PB_LABEL_VALUE, strlen(l->value));
}

static size_t sample_size(const struct push_sample *s)
{
	return push_pb_field_size(PB_SAMPLE_RAW_PROFILE, s->len) +
	       push_pb_field_size(PB_SAMPLE_ID, strlen(s->id));
}

void push_pb_push_series(struct push_pb_buf *b, const struct push_label *labels, size_t nlabels,
			 const struct push_sample *samples, size_t nsamples)
{
	size_t body = 0;

	for (size_t i = 0; i < nlabels; i++)
		body += push_pb_field_size(PB_SERIES_LABELS, label_size(&labels[i]));
	for (size_t i = 0; i < nsamples; i++)
		body += push_pb_field_size(PB_SERIES_SAMPLES, sample_size(&samples[i]));
	tag_len(b, PB_PUSH_REQUEST_SERIES, body);
	for (size_t i = 0; i < nlabels; i++) {
		tag_len(b, PB_SERIES_LABELS, label_size(&labels[i]));
		push_pb_bytes(b, PB_LABEL_NAME, labels[i].name, strlen(labels[i].name));
		push_pb_bytes(b, PB_LABEL_VALUE, labels[i].value, strlen(labels[i].value));
	}
	for (size_t i = 0; i < nsamples; i++) {
		tag_len(b, PB_SERIES_SAMPLES, sample_size(&samples[i]));
		push_pb_bytes(b, PB_SAMPLE_RAW_PROFILE, samples[i].raw_profile, samples[i].len);
		push_pb_bytes(b, PB_SAMPLE_ID, samples[i].id, strlen(samples[i].id));
	}
}

/* Reads a varint at *pos (bounded by len); false when truncated or longer than 10 bytes. */
static bool read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0, i = 0; i < PB_MAX_VARINT; i++, shift += 7) {
		uint8_t c;

		if (*pos >= len)
			return false;
		c = buf[(*pos)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

long push_pb_count_profile_samples(const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	long n = 0;

	while (pos < len) {
		uint64_t key, v;

		if (!read_varint(buf, len, &pos, &key) || key >> 3 == 0)
			return -1;
		switch (key & 7) {
		case PB_WIRE_VARINT:
			if (!read_varint(buf, len, &pos, &v))
				return -1;
			break;
		case PB_WIRE_I64:
			if (len - pos < 8)
				return -1;
			pos += 8;
			break;
		case PB_WIRE_I32:
			if (len - pos < 4)
				return -1;
			pos += 4;
			break;
		case PB_WIRE_LEN:
			if (!read_varint(buf, len, &pos, &v) || v > len - pos)
				return -1;
			pos += v;
			if (key >> 3 == PB_PROFILE_SAMPLE)
				n++;
			break;
		default:
			return -1;
		}
	}
	return n;
}
