/* push_proto.h — the protobuf encoding of Pyroscope's push request, by hand (a few fields do
 * not justify a protobuf library): push.v1.PushRequest { repeated RawProfileSeries series = 1 },
 * RawProfileSeries { repeated types.v1.LabelPair labels = 1; repeated RawSample samples = 2 },
 * LabelPair { string name = 1; string value = 2 }, RawSample { bytes raw_profile = 1;
 * string ID = 2 } — field numbers from grafana/pyroscope's api/push/v1/push.proto and
 * api/types/v1/types.proto. Also a bounded reader of a profile.proto's top level (to count
 * its samples against Pyroscope's limit). */
#ifndef GOSCOPE_AGENT_PUSH_PROTO_H
#define GOSCOPE_AGENT_PUSH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Field numbers. */
#define PB_PUSH_REQUEST_SERIES 1
#define PB_SERIES_LABELS 1
#define PB_SERIES_SAMPLES 2
#define PB_LABEL_NAME 1
#define PB_LABEL_VALUE 2
#define PB_SAMPLE_RAW_PROFILE 1
#define PB_SAMPLE_ID 2
/* profile.proto: repeated Sample sample = 2. */
#define PB_PROFILE_SAMPLE 2

/* A growable byte buffer; ok turns false on ENOMEM (and stays false). */
struct push_pb_buf {
	uint8_t *data;
	size_t len, cap;
	bool ok;
};

void push_pb_init(struct push_pb_buf *b);
void push_pb_free(struct push_pb_buf *b);
void push_pb_varint(struct push_pb_buf *b, uint64_t v);
/* A length-delimited field (wire type 2): tag, length, bytes. */
void push_pb_bytes(struct push_pb_buf *b, unsigned field, const void *data, size_t len);
/* The size of a varint and of a length-delimited field's header + body. */
size_t push_pb_varint_size(uint64_t v);
size_t push_pb_field_size(unsigned field, size_t len);

/* The request is built series by series: what a series holds is known before it is written,
 * so each message is written with its length in front (no patching). */
struct push_label {
	const char *name;
	const char *value;
};
struct push_sample {
	const uint8_t *raw_profile; /* gzipped pprof */
	size_t len;
	const char *id;
};
/* Appends one RawProfileSeries as field 1 of a PushRequest. */
void push_pb_push_series(struct push_pb_buf *b, const struct push_label *labels, size_t nlabels,
			 const struct push_sample *samples, size_t nsamples);

/* Counts the samples (field 2) at the top level of an uncompressed profile.proto; -1 when it
 * is not well-formed protobuf (bounded by len: every step moves forward). */
long push_pb_count_profile_samples(const uint8_t *buf, size_t len);

#endif
