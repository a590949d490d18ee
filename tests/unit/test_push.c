/* test_push.c — the pusher's pure parts (agent/push/): the hand-written protobuf encoding of
 * Pyroscope's PushRequest checked byte for byte against a request worked out by hand from
 * push.proto's field numbers, the sample counter of a profile.proto against the profile
 * model's own count, label names and values sanitized as Pyroscope validates them, the
 * series labels of a stored window (__name__, service_name, order, duplicates, the limit of
 * 30), sample IDs, and the backoff's bounds, jitter and Retry-After. The whole request is
 * decoded independently by the Go stand-in of tests/integration/test_push.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile/profile.h"
#include "push/push_backoff.h"
#include "push/push_labels.h"
#include "push/push_proto.h"
#include "tests/helpers/store_fixture.h"

Test(push_proto, request_bytes_match_the_proto_by_hand)
{
	/* PushRequest{series: [RawProfileSeries{labels: [LabelPair{"a","b"}],
	 *   samples: [RawSample{raw_profile: "xy", ID: "i"}]}]} */
	static const uint8_t want[] = {0x0a, 0x11, 0x0a, 0x06, 0x0a, 0x01, 'a',	 0x12, 0x01, 'b',
				       0x12, 0x07, 0x0a, 0x02, 'x',  'y',  0x12, 0x01, 'i'};
	struct push_label l = {"a", "b"};
	struct push_sample s = {(const uint8_t *)"xy", 2, "i"};
	struct push_pb_buf b;

	push_pb_init(&b);
	push_pb_push_series(&b, &l, 1, &s, 1);
	cr_assert(b.ok);
	cr_assert_eq(b.len, sizeof(want));
	cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
	push_pb_free(&b);
}

Test(push_proto, long_fields_use_multi_byte_lengths)
{
	size_t n = 300;
	uint8_t *blob = calloc(1, n);
	struct push_label l[2] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
	struct push_sample s[2] = {{blob, n, "id-1"}, {blob, 1, "id-2"}};
	struct push_pb_buf b;
	size_t pos = 0;
	uint64_t v = 0;

	push_pb_init(&b);
	push_pb_push_series(&b, l, 2, s, 2);
	push_pb_push_series(&b, l, 1, s + 1, 1);
	cr_assert(b.ok);
	/* First series: tag 0x0a, then a two-byte varint length that covers exactly it. */
	cr_assert_eq(b.data[pos++], 0x0a);
	for (int shift = 0;; shift += 7) {
		v |= (uint64_t)(b.data[pos] & 0x7f) << shift;
		if (!(b.data[pos++] & 0x80))
			break;
	}
	cr_assert_eq(pos, 3);
	cr_assert_eq(b.data[pos + v], 0x0a, "the second series starts right after the first");
	cr_assert_eq(push_pb_varint_size(127), 1);
	cr_assert_eq(push_pb_varint_size(128), 2);
	cr_assert_eq(push_pb_varint_size(UINT64_MAX), 10);
	push_pb_free(&b);
	free(blob);
}

Test(push_proto, counts_profile_samples)
{
	struct profile *p = fx_window(7, 500, 80, "api", 42);
	struct gs_error err = {0};
	uint8_t *raw;
	size_t len;

	cr_assert_not_null(p);
	cr_assert_eq(profile_encode(p, &raw, &len, &err), 0, "%s", err.msg);
	cr_assert_gt(profile_sample_count(p), 10);
	cr_assert_eq(push_pb_count_profile_samples(raw, len), (long)profile_sample_count(p));
	/* Truncated or garbage: refused, never read past the end. */
	cr_assert_eq(push_pb_count_profile_samples(raw, len - 1), -1);
	cr_assert_eq(push_pb_count_profile_samples((const uint8_t *)"\x12\xff\xff\xff\x0f", 5), -1);
	cr_assert_eq(push_pb_count_profile_samples((const uint8_t *)"\x00", 1), -1);
	cr_assert_eq(push_pb_count_profile_samples(NULL, 0), 0);
	free(raw);
	profile_free(p);
}

Test(push_labels, names_are_sanitized)
{
	char out[PUSH_MAX_LABEL_NAME + 1], *longname;

	push_sanitize_name("k8s-pod", out);
	cr_assert_str_eq(out, "k8s_pod");
	push_sanitize_name("1abc", out);
	cr_assert_str_eq(out, "_1abc");
	push_sanitize_name(".x", out);
	cr_assert_str_eq(out, "_.x");
	push_sanitize_name("a.b_C9", out);
	cr_assert_str_eq(out, "a.b_C9");
	push_sanitize_name("", out);
	cr_assert_str_eq(out, "_");
	push_sanitize_name("\xc3\xa9t\xc3\xa9", out);
	cr_assert_str_eq(out, "__t__");
	longname = malloc(5000);
	memset(longname, 'n', 4999);
	longname[4999] = '\0';
	push_sanitize_name(longname, out);
	cr_assert_eq(strlen(out), PUSH_MAX_LABEL_NAME);
	free(longname);
}

Test(push_labels, values_are_utf8_and_bounded)
{
	char out[PUSH_MAX_LABEL_VALUE + 1], *v;

	push_sanitize_value("caf\xc3\xa9", out);
	cr_assert_str_eq(out, "caf\xc3\xa9");
	push_sanitize_value("a\xff"
			    "b\xc3",
			    out);
	cr_assert_str_eq(out, "a?b?");
	push_sanitize_value("\xed\xa0\x80", out); /* a surrogate */
	cr_assert_str_eq(out, "???");
	push_sanitize_value("\xc0\xaf", out); /* overlong */
	cr_assert_str_eq(out, "??");
	/* Cut at a character boundary: 2047 ASCII bytes then a 2-byte character. */
	v = malloc(3000);
	memset(v, 'x', 2047);
	strcpy(v + 2047, "\xc3\xa9tail");
	push_sanitize_value(v, out);
	cr_assert_eq(strlen(out), 2047);
	free(v);
}

Test(push_labels, series_labels_of_a_window)
{
	struct push_series_labels l;
	struct gs_error err = {0};

	cr_assert_eq(push_series_labels("cpu",
					"{\"pid\":\"42\",\"service_name\":\"api\",\"bad-name\":"
					"\"x\",\"bad_name\":\"y\",\"__name__\":\"evil\",\"n\":7,"
					"\"module\":\"\"}",
					&l, &err),
		     0, "%s", err.msg);
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(l.l[0].name, "__name__");
	cr_assert_str_eq(l.l[0].value, "process_cpu");
	cr_assert_str_eq(l.l[1].name, "service_name");
	cr_assert_str_eq(l.l[1].value, "api");
	cr_assert_str_eq(l.l[2].name, "pid");
	cr_assert_str_eq(l.l[2].value, "42");
	cr_assert_str_eq(l.l[3].name, "bad_name");
	cr_assert_str_eq(l.l[3].value, "x", "the first of two names equal once sanitized wins");
	push_series_labels_free(&l);

	cr_assert_eq(push_series_labels("block", "{}", &l, &err), 0);
	cr_assert_str_eq(l.l[0].value, "block");
	cr_assert_str_eq(l.l[1].value, "unknown_service");
	push_series_labels_free(&l);
	cr_assert_eq(push_series_labels("heap", "{\"service_name\":\"\"}", &l, &err), 0);
	cr_assert_str_eq(l.l[0].value, "memory");
	cr_assert_str_eq(l.l[1].value, "unknown_service");
	push_series_labels_free(&l);
	cr_assert_eq(push_series_labels("goroutines", "{}", &l, &err), 0);
	cr_assert_str_eq(l.l[0].value, "goroutines");
	push_series_labels_free(&l);

	cr_assert_eq(push_series_labels("mutex", "{}", &l, &err), -EINVAL);
	cr_assert_eq(push_series_labels("cpu", "[1]", &l, &err), -EINVAL);
	cr_assert_eq(push_series_labels("cpu", "{", &l, &err), -EINVAL);
}

Test(push_labels, at_most_30_labels)
{
	char json[4096];
	size_t n = 0;
	struct push_series_labels l;
	struct gs_error err = {0};

	n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"service_name\":\"s\"");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, ",\"k%02d\":\"v%d\"", i, i);
	snprintf(json + n, sizeof(json) - n, "}");
	cr_assert_eq(push_series_labels("cpu", json, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, PUSH_MAX_LABELS);
	cr_assert_eq(PUSH_MAX_LABELS, 30);
	cr_assert_str_eq(l.l[29].name, "k27");
	push_series_labels_free(&l);
}

Test(push_labels, window_ids_are_stable_and_distinct)
{
	char a[PUSH_ID_LEN], b[PUSH_ID_LEN], c[PUSH_ID_LEN], d[PUSH_ID_LEN];

	push_window_id("node-1", 17, 42, 1000, 1700000000000000000LL, "cpu", a);
	push_window_id("node-1", 17, 42, 1000, 1700000000000000000LL, "cpu", b);
	push_window_id("node-1", 18, 42, 1000, 1700000000000000000LL, "cpu", c);
	push_window_id("node-2", 17, 42, 1000, 1700000000000000000LL, "cpu", d);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_str_neq(a, d);
	cr_assert_eq(strlen(a), 36);
	cr_assert(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-', "%s", a);
	cr_assert_eq(a[14], '8', "version 8: %s", a);
	cr_assert(strchr("89ab", a[19]), "variant: %s", a);
}

Test(push_backoff, bounds_growth_and_jitter)
{
	uint64_t rng = 12345, lo = UINT64_MAX, hi = 0, prev_cap = 0;
	uint64_t seen[64];
	size_t distinct = 0;

	for (unsigned attempt = 0; attempt < 40; attempt++) {
		uint64_t cap = PUSH_BACKOFF_MIN_MS << (attempt < 20 ? attempt : 20);

		if (cap > PUSH_BACKOFF_MAX_MS)
			cap = PUSH_BACKOFF_MAX_MS;
		cr_assert_geq(cap, prev_cap);
		prev_cap = cap;
		for (int i = 0; i < 50; i++) {
			uint64_t d = push_backoff_ms(attempt, 0, &rng);

			cr_assert_geq(d, cap / 2, "attempt %u: %llu", attempt,
				      (unsigned long long)d);
			cr_assert_leq(d, cap, "attempt %u: %llu", attempt, (unsigned long long)d);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
	}
	cr_assert_geq(lo, PUSH_BACKOFF_MIN_MS / 2);
	cr_assert_leq(hi, PUSH_BACKOFF_MAX_MS);
	cr_assert_gt(hi, PUSH_BACKOFF_MAX_MS * 9 / 10, "reaches the 5 min cap");
	/* Jitter: the first retry's delays are not all the same. */
	for (int i = 0; i < 64; i++) {
		uint64_t d = push_backoff_ms(0, 0, &rng);
		bool dup = false;

		for (size_t j = 0; j < distinct; j++)
			dup |= seen[j] == d;
		if (!dup)
			seen[distinct++] = d;
	}
	cr_assert_gt(distinct, 20);
	/* A lower cap (--push-max-backoff). */
	for (int i = 0; i < 50; i++) {
		uint64_t d = push_backoff_ms(30, 10000, &rng);

		cr_assert(d >= 5000 && d <= 10000, "%llu", (unsigned long long)d);
	}
}

Test(push_backoff, retry_after)
{
	time_t now = time(NULL), then = now + 10;
	char date[64];
	struct tm tm;
	int64_t ms;

	cr_assert_eq(push_retry_after_ms("7", now), 7000);
	cr_assert_eq(push_retry_after_ms(" 3 ", now), 3000);
	cr_assert_eq(push_retry_after_ms("0", now), 0);
	cr_assert_eq(push_retry_after_ms("100000", now), (int64_t)PUSH_BACKOFF_MAX_MS);
	cr_assert_eq(push_retry_after_ms("abc", now), -1);
	cr_assert_eq(push_retry_after_ms("5x", now), -1);
	cr_assert_eq(push_retry_after_ms(NULL, now), -1);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&then, &tm));
	ms = push_retry_after_ms(date, now);
	cr_assert(ms >= 9000 && ms <= 10000, "%s: %lld", date, (long long)ms);
	then = now - 100;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&then, &tm));
	cr_assert_eq(push_retry_after_ms(date, now), 0);
}
