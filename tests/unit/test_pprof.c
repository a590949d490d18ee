/* test_pprof.c — the profile model (agent/profile/profile.c), its pprof encoder
 * (agent/profile/pprof.c) and file sink (agent/profile/sink.c): exact wire bytes of small
 * messages, deduplication, sample merging, profile merging, scaling, gzip, atomic file writes,
 * a decode-back through the independent reader of tests/helpers/pprof_decode.c, and a realistic
 * profile checked by independent decoders: pprof-format (node, tests/tools/pprof-check.js)
 * and `go tool pprof` (-raw, -top, and a -proto round trip). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profile/profile_impl.h"
#include "tests/helpers/pprof_decode.h"

#define GO127 "/usr/lib/go-1.27/bin/go"

/* ---- helpers ---- */

static struct profile *new_profile(void)
{
	struct profile *p = profile_new();

	cr_assert_not_null(p);
	return p;
}

static void encode(const struct profile *p, uint8_t **buf, size_t *len)
{
	struct gs_error err = {0};
	int rc = profile_encode(p, buf, len, &err);

	cr_assert_eq(rc, 0, "profile_encode: %d %s", rc, err.msg);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether needle occurs in the haystack. */
static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	return memmem(hay, n, needle, m) != NULL;
}

static void hexdump(const char *what, const uint8_t *b, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", b[i]);
	fputc('\n', stderr);
}

#define ASSERT_BYTES(buf, len, ...)                                                                \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		if (!contains((buf), (len), want_, sizeof(want_))) {                               \
			hexdump("encoded", (buf), (len));                                          \
			hexdump("wanted", want_, sizeof(want_));                                   \
			cr_assert_fail("byte sequence not found");                                 \
		}                                                                                  \
	} while (0)

/* ---- decoding back, through the independent reader in tests/helpers/pprof_decode.c ---- */

/* Decodes strictly: well formed, and no field profile.proto has that goscope does not write. */
static void decode(const uint8_t *buf, size_t len, struct pprof_doc *d)
{
	char why[256];

	cr_assert_eq(pprof_decode(buf, len, d, why, sizeof(why)), 0, "decode: %s", why);
	cr_assert_eq(d->unknown_fields, 0, "unexpected Profile fields");
}

static void dprof_free(struct pprof_doc *d)
{
	pprof_doc_free(d);
}

static const char *dstr(const struct pprof_doc *d, uint64_t idx)
{
	cr_assert_lt(idx, d->nstrings, "string index %llu out of range", (unsigned long long)idx);
	return d->strings[idx];
}

static void encode_decode(const struct profile *p, struct pprof_doc *d)
{
	uint8_t *buf;
	size_t len;

	encode(p, &buf, &len);
	decode(buf, len, d);
	free(buf);
	cr_assert_geq(d->nstrings, 1);
	cr_assert_str_eq(d->strings[0], "");
}

/* ---- exact wire bytes ---- */

Test(pprof, empty_profile)
{
	struct profile *p = new_profile();
	uint8_t *buf;
	size_t len;

	encode(p, &buf, &len);
	/* Only string_table[0] = "". */
	cr_assert_eq(len, 2);
	cr_assert_eq(buf[0], 0x32);
	cr_assert_eq(buf[1], 0x00);
	free(buf);
	profile_free(p);
}

Test(pprof, value_type_bytes)
{
	struct profile *p = new_profile();
	/* sample_type {type: 1, unit: 2}, then the string table "", "samples", "count". */
	static const char want[] = "\x0a\x04\x08\x01\x10\x02"
				   "\x32\x00"
				   "\x32\x07samples"
				   "\x32\x05"
				   "count";
	uint8_t *buf;
	size_t len;

	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	encode(p, &buf, &len);
	if (len != sizeof(want) - 1 || memcmp(buf, want, len)) {
		hexdump("encoded", buf, len);
		cr_assert_fail("ValueType bytes differ");
	}
	free(buf);
	profile_free(p);
}

Test(pprof, sample_packed_bytes)
{
	struct profile *p = new_profile();
	struct profile_line ln = {0};
	uint64_t locs[3];
	int64_t values[3] = {1, 300, 0};
	struct profile_label lab = {.key = "comm", .str = "svc"};
	uint8_t *buf;
	size_t len;

	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);   /* strings 1, 2 */
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0); /* 3, 4 */
	cr_assert_eq(profile_add_sample_type(p, "x", "y"), 0);		   /* 5, 6 */
	ln.function_id = profile_function(p, "f", NULL, NULL, 0);	   /* 7 */
	cr_assert_eq(ln.function_id, 1);
	for (int i = 0; i < 3; i++) {
		locs[i] = profile_location_add(p, 0, 0x10 * (i + 1), 0, &ln, 1);
		cr_assert_eq(locs[i], (uint64_t)i + 1);
	}
	/* Stack order is kept as given (leaf first). */
	cr_assert_eq(profile_add_sample(p, (uint64_t[]){3, 1, 2}, 3, values, &lab, 1, NULL), 0);
	encode(p, &buf, &len);
	ASSERT_BYTES(buf, len, 0x12, 0x11,		  /* Profile.sample, 17 bytes */
		     0x0a, 0x03, 0x03, 0x01, 0x02,	  /* location_id packed [3 1 2] */
		     0x12, 0x04, 0x01, 0xac, 0x02, 0x00,  /* value packed [1 300 0] */
		     0x1a, 0x04, 0x08, 0x08, 0x10, 0x09); /* label {key: 8 "comm", str: 9} */
	/* Location 2: id, address, one Line {function_id 1}. */
	ASSERT_BYTES(buf, len, 0x22, 0x08, 0x08, 0x02, 0x18, 0x20, 0x22, 0x02, 0x08, 0x01);
	/* Function 1 {id 1, name 7}. */
	ASSERT_BYTES(buf, len, 0x2a, 0x04, 0x08, 0x01, 0x10, 0x07);
	free(buf);
	profile_free(p);
}

Test(pprof, negative_numbers)
{
	struct profile *p = new_profile();
	int64_t values[2] = {-1, -2};
	uint8_t *buf;
	size_t len;

	cr_assert_eq(profile_add_sample_type(p, "a", "b"), 0);
	cr_assert_eq(profile_add_sample_type(p, "c", "d"), 0);
	profile_set_time(p, -1, 0);
	cr_assert_eq(profile_add_sample(p, NULL, 0, values, NULL, 0, NULL), 0);
	encode(p, &buf, &len);
	/* int64 (not sint64): two's complement in 10 bytes. A sample without locations. */
	ASSERT_BYTES(buf, len, 0x12, 0x16, 0x12, 0x14, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		     0xff, 0xff, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	ASSERT_BYTES(buf, len, 0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	free(buf);
	profile_free(p);
}

Test(pprof, long_string_varint)
{
	struct profile *p = new_profile();
	char s[301];
	uint8_t *buf;
	size_t len;

	memset(s, 'x', 300);
	s[300] = 0;
	cr_assert_eq(profile_add_comment(p, s), 0);
	cr_assert_eq(profile_add_comment(p, "short"), 0);
	cr_assert_eq(profile_add_comment(p, s), 0);
	encode(p, &buf, &len);
	/* 300 = 0xac 0x02 */
	cr_assert_eq(len, 2 + 3 + 300 + 7 + 5);
	cr_assert_eq(buf[2], 0x32);
	cr_assert_eq(buf[3], 0xac);
	cr_assert_eq(buf[4], 0x02);
	cr_assert_eq(memcmp(buf + 5, s, 300), 0);
	/* comment: packed string indices [1 2 1], last field */
	cr_assert_eq(memcmp(buf + len - 5, "\x6a\x03\x01\x02\x01", 5), 0);
	free(buf);
	profile_free(p);
}

Test(pprof, mapping_and_header_bytes)
{
	struct profile *p = new_profile();
	uint8_t *buf;
	size_t len;

	cr_assert_eq(profile_mapping(p, 0x400000, 0x500000, 0, "/bin/x", "bid", true, false, true,
				     false),
		     1);
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0); /* 3, 4 */
	profile_set_period(p, "cpu", "nanoseconds", 10000000);
	profile_set_time(p, 5, 300);
	profile_set_default_sample_type(p, "cpu");
	encode(p, &buf, &len);
	ASSERT_BYTES(buf, len, 0x1a, 0x14, 0x08, 0x01, /* id 1 */
		     0x10, 0x80, 0x80, 0x80, 0x02,     /* memory_start 0x400000 */
		     0x18, 0x80, 0x80, 0xc0, 0x02,     /* memory_limit 0x500000 */
		     0x28, 0x01, 0x30, 0x02,	       /* filename 1, build_id 2 */
		     0x38, 0x01, 0x48, 0x01);	       /* has_functions, has_line_numbers */
	/* time 5, duration 300, period_type {3, 4}, period 1e7, default_sample_type 3 */
	ASSERT_BYTES(buf, len, 0x48, 0x05, 0x50, 0xac, 0x02, 0x5a, 0x04, 0x08, 0x03, 0x10, 0x04,
		     0x60, 0x80, 0xad, 0xe2, 0x04, 0x70, 0x03);
	free(buf);
	profile_free(p);
}

/* ---- model behaviour ---- */

Test(pprof, string_dedup)
{
	struct profile *p = new_profile();
	struct pprof_doc d;

	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0);
	profile_set_period(p, "cpu", "nanoseconds", 1);
	profile_set_default_sample_type(p, "cpu");
	cr_assert_neq(profile_function(p, "main.f", "main.f", "/src/main.go", 3), 0);
	cr_assert_neq(profile_function(p, "main.g", "main.f", "/src/main.go", 9), 0);
	cr_assert_eq(profile_add_comment(p, "nanoseconds"), 0);
	cr_assert_eq(profile_add_comment(p, ""), 0);
	encode_decode(p, &d);
	cr_assert_eq(d.nstrings, 6, "strings: %zu", d.nstrings); /* "" cpu ns main.f file main.g */
	for (size_t i = 0; i < d.nstrings; i++) {
		for (size_t j = i + 1; j < d.nstrings; j++)
			cr_assert_str_neq(d.strings[i], d.strings[j]);
	}
	cr_assert_eq(d.comments[0], 2);
	cr_assert_eq(d.comments[1], 0);
	dprof_free(&d);
	profile_free(p);
}

Test(pprof, function_mapping_location_dedup)
{
	struct profile *p = new_profile();
	struct profile_line ln[2];
	uint64_t f1, f2, m1, l1, l2;

	f1 = profile_function(p, "main.f", "main.f", "/src/main.go", 3);
	cr_assert_eq(f1, 1);
	cr_assert_eq(profile_function(p, "main.f", "main.f", "/src/main.go", 3), f1);
	cr_assert_eq(profile_function(p, "main.f", "main.f", "/src/main.go", 4), 2);
	cr_assert_eq(profile_function(p, "main.f", NULL, "/src/main.go", 3), 3);
	cr_assert_eq(profile_function(p, "main.f", "", "/src/main.go", 3), 3);
	f2 = profile_function(p, "main.g", "main.g", "/src/main.go", 3);
	cr_assert_eq(f2, 4);
	cr_assert_eq(p->nfunctions, 4);

	m1 = profile_mapping(p, 0x1000, 0x2000, 0, "/bin/a", "x", true, true, true, true);
	cr_assert_eq(m1, 1);
	cr_assert_eq(
		profile_mapping(p, 0x1000, 0x2000, 0, "/bin/a", "x", false, false, false, false),
		m1);
	cr_assert(p->mappings[0].has_functions, "the first call's flags win");
	cr_assert_eq(profile_mapping(p, 0x1000, 0x2000, 0, "/bin/a", "y", 1, 1, 1, 1), 2);
	cr_assert_eq(profile_mapping(p, 0x1000, 0x2000, 0x10, "/bin/a", "x", 1, 1, 1, 1), 3);
	cr_assert_eq(profile_mapping(p, 0x1000, 0x3000, 0, "/bin/a", "x", 1, 1, 1, 1), 4);
	cr_assert_eq(profile_mapping(p, 0x1000, 0x2000, 0, "/bin/b", "x", 1, 1, 1, 1), 5);

	ln[0] = (struct profile_line){f1, 10};
	ln[1] = (struct profile_line){f2, 20};
	cr_assert_eq(profile_location_find(p, 42, 0x1234), 0);
	l1 = profile_location_add(p, 42, 0x1234, m1, ln, 2);
	cr_assert_eq(l1, 1);
	cr_assert_eq(profile_location_find(p, 42, 0x1234), l1);
	/* Same address, other key (process): another location. */
	cr_assert_eq(profile_location_find(p, 43, 0x1234), 0);
	l2 = profile_location_add(p, 43, 0x1234, m1, ln, 1);
	cr_assert_eq(l2, 2);
	cr_assert_eq(profile_location_find(p, 43, 0x1234), l2);
	/* Adding a known (key, address) again returns it unchanged. */
	cr_assert_eq(profile_location_add(p, 42, 0x1234, 0, NULL, 0), l1);
	cr_assert_eq(p->locations[0].nlines, 2);
	/* Unknown mapping or function: 0, nothing recorded, no OOM flagged. */
	cr_assert_eq(profile_location_add(p, 1, 1, 99, NULL, 0), 0);
	ln[0].function_id = 77;
	cr_assert_eq(profile_location_add(p, 1, 1, 0, ln, 1), 0);
	cr_assert_eq(profile_location_find(p, 1, 1), 0);
	cr_assert_eq(p->nlocations, 2);
	cr_assert(!p->oom);
	profile_free(p);
}

Test(pprof, many_locations_and_strings)
{
	struct profile *p = new_profile();
	char name[32];

	/* Well past several index growths; every lookup must still find its entry. */
	for (uint64_t i = 0; i < 20000; i++) {
		struct profile_line ln;

		snprintf(name, sizeof(name), "pkg.fn%llu", (unsigned long long)i);
		ln.function_id = profile_function(p, name, name, "/f.go", 1);
		ln.line = (int64_t)i;
		cr_assert_eq(ln.function_id, i + 1);
		cr_assert_eq(profile_location_add(p, i % 7, i * 16, 0, &ln, 1), i + 1);
	}
	for (uint64_t i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "pkg.fn%llu", (unsigned long long)i);
		cr_assert_eq(profile_function(p, name, name, "/f.go", 1), i + 1);
		cr_assert_eq(profile_location_find(p, i % 7, i * 16), i + 1);
		cr_assert_eq(profile_location_find(p, (i + 1) % 7, i * 16), 0);
	}
	cr_assert_eq(p->nstrings, 20002);
	profile_free(p);
}

static struct profile *profile_with_locations(int n)
{
	struct profile *p = new_profile();
	struct profile_line ln = {0};

	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0);
	ln.function_id = profile_function(p, "main.f", NULL, NULL, 0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(profile_location_add(p, 0, 0x1000 + i, 0, &ln, 1), (uint64_t)i + 1);
	return p;
}

Test(pprof, sample_merge)
{
	struct profile *p = profile_with_locations(4);
	struct profile_label l1[2] = {{.key = "pid", .num = 42}, {.key = "comm", .str = "a"}};
	struct profile_label l2[2] = {{.key = "comm", .str = "a"}, {.key = "pid", .num = 42}};
	struct profile_label l3[1] = {{.key = "bytes", .num = 42, .num_unit = "bytes"}};
	struct profile_label l4[1] = {{.key = "bytes", .num = 42}};
	uint64_t s1[] = {1, 2, 3}, s2[] = {1, 2}, s3[] = {2, 1, 3};
	struct gs_error err = {0};
	struct pprof_doc d;

	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 10}, l1, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){2, 20}, l1, 2, &err), 0);
	cr_assert_eq(profile_sample_count(p), 1);
	cr_assert_eq(profile_add_sample(p, s2, 2, (int64_t[]){1, 1}, l1, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s3, 3, (int64_t[]){1, 1}, l1, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, NULL, 0, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, l1, 1, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, l2, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, l3, 1, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, l4, 1, &err), 0);
	cr_assert_eq(profile_sample_count(p), 8);
	/* Merging into the first one again, after others were added. */
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){4, 40}, l1, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s3, 3, (int64_t[]){1, 1}, l1, 2, &err), 0);
	cr_assert_eq(profile_add_sample(p, s1, 3, (int64_t[]){1, 1}, l3, 1, &err), 0);
	/* Saturation instead of overflow. */
	cr_assert_eq(profile_add_sample(p, s2, 2, (int64_t[]){INT64_MAX, INT64_MIN}, l1, 2, &err),
		     0);
	cr_assert_eq(profile_add_sample(p, s2, 2, (int64_t[]){1, INT64_MIN}, l1, 2, &err), 0);
	cr_assert_eq(profile_sample_count(p), 8);

	encode_decode(p, &d);
	cr_assert_eq(d.nsamples, 8);
	cr_assert_eq(d.samples[0].nvalues, 2);
	cr_assert_eq(d.samples[0].values[0], 7);
	cr_assert_eq(d.samples[0].values[1], 70);
	cr_assert_eq(d.samples[0].nlabels, 2);
	cr_assert_str_eq(dstr(&d, d.samples[0].labels[0].key), "pid");
	cr_assert_eq(d.samples[0].labels[0].num, 42);
	cr_assert_eq(d.samples[0].labels[0].str, 0);
	cr_assert_str_eq(dstr(&d, d.samples[0].labels[1].key), "comm");
	cr_assert_str_eq(dstr(&d, d.samples[0].labels[1].str), "a");
	cr_assert_eq((int64_t)d.samples[1].values[0], INT64_MAX);
	cr_assert_eq((int64_t)d.samples[1].values[1], INT64_MIN);
	cr_assert_eq(d.samples[2].values[0], 2);
	cr_assert_str_eq(dstr(&d, d.samples[6].labels[0].num_unit), "bytes");
	cr_assert_eq(d.samples[6].values[0], 2);
	cr_assert_eq(d.samples[7].labels[0].num_unit, 0);
	dprof_free(&d);
	profile_free(p);
}

Test(pprof, sample_errors)
{
	struct profile *p = new_profile();
	struct gs_error err = {0};
	uint64_t bad[] = {1};
	struct profile_label nokey = {.str = "x"};

	cr_assert_eq(profile_add_sample(p, NULL, 0, (int64_t[]){1}, NULL, 0, &err), -EINVAL);
	cr_assert_eq(err.code, -EINVAL);
	cr_assert(strstr(err.msg, "sample type"), "%s", err.msg);
	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	gs_error_clear(&err);
	cr_assert_eq(profile_add_sample(p, bad, 1, (int64_t[]){1}, NULL, 0, &err), -EINVAL);
	cr_assert(strstr(err.msg, "location"), "%s", err.msg);
	cr_assert_eq(profile_add_sample(p, NULL, 0, (int64_t[]){1}, &nokey, 1, &err), -EINVAL);
	cr_assert_eq(profile_add_sample(p, NULL, 0, NULL, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(profile_sample_count(p), 0);
	cr_assert_eq(profile_add_sample(p, NULL, 0, (int64_t[]){1}, NULL, 0, &err), 0);
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), -EBUSY);
	cr_assert_eq(profile_sample_count(p), 1);
	profile_free(p);
}

Test(pprof, scale_rounding)
{
	struct profile *p = profile_with_locations(8);
	static const int64_t in[][2] = {{1, -1}, {2, -2}, {3, -3}, {5, 0}, {INT64_MAX, INT64_MIN},
					{7, 100}};
	static const int64_t half[][2] = {
		{1, -1}, {1, -1}, {2, -2}, {3, 0}, {INT64_MAX / 2 + 1, INT64_MIN / 2}, {4, 50}};
	struct pprof_doc d;

	for (size_t i = 0; i < 6; i++) {
		uint64_t loc = i + 1;

		cr_assert_eq(profile_add_sample(p, &loc, 1, in[i], NULL, 0, NULL), 0);
	}
	profile_scale(p, 1, 0); /* no-op */
	profile_scale(p, 1, 1);
	profile_scale(p, 1, 2);
	encode_decode(p, &d);
	for (size_t i = 0; i < 6; i++) {
		cr_assert_eq((int64_t)d.samples[i].values[0], half[i][0], "sample %zu", i);
		cr_assert_eq((int64_t)d.samples[i].values[1], half[i][1], "sample %zu", i);
	}
	dprof_free(&d);

	/* Up-scaling (throttled capture: kept 1 in 3) clamps at the int64 limits. */
	profile_scale(p, 3, 1);
	cr_assert_eq(p->values[0], 3);
	cr_assert_eq(p->values[1], -3);
	cr_assert_eq(p->values[8], INT64_MAX);
	cr_assert_eq(p->values[9], INT64_MIN);
	profile_scale(p, 2, 3);
	cr_assert_eq(p->values[0], 2);
	cr_assert_eq(p->values[1], -2);
	cr_assert_eq(p->values[11], 100);
	profile_free(p);
}

Test(pprof, many_samples_linear)
{
	struct profile *p = profile_with_locations(64);
	struct timespec t0, t1;
	uint64_t stack[8];
	double secs;

	/* 200k distinct stacks, each added twice: quadratic dedup would take minutes. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < 200000; i++) {
			uint32_t x = i;
			struct profile_label l = {.key = "pid", .num = i % 3};

			for (int j = 0; j < 4; j++, x /= 64)
				stack[j] = x % 64 + 1;
			cr_assert_eq(
				profile_add_sample(p, stack, 4, (int64_t[]){1, 10}, &l, 1, NULL),
				0);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_eq(profile_sample_count(p), 200000);
	for (size_t i = 0; i < 200000; i++)
		cr_assert_eq(p->values[2 * i], 2);
	cr_assert_lt(secs, 20.0, "400k adds took %.1fs", secs);
	profile_free(p);
}

/* A profile using every field, for the decode-back and the external decoders. */
struct expect {
	int64_t total_count, total_cpu;
	size_t nsamples;
};

static const char *const leaf_fns[10] = {
	"runtime.mallocgc",    "runtime.memmove",
	"crypto/sha256.block", "runtime.mapaccess2_faststr",
	"sync.(*Mutex).Lock",  "encoding/json.(*encodeState).string",
	"runtime.futex",       "__memmove_avx_unaligned_erms",
	"__GI___libc_write",   "__vdso_clock_gettime",
};
static const char *const mid_fns[10] = {
	"main.(*server).handle",  "main.hashBlock",    "main.encodeReply",	"main.lookupUser",
	"net/http.(*conn).serve", "main.(*cache).get", "bufio.(*Writer).Flush", "main.work",
	"main.parseRequest",	  "time.Now",
};
static const char *const inl_fns[10] = {
	"strings.IndexByte",
	"main.min",
	"bytes.(*Buffer).Len",
	"main.(*cache).key",
	"unicode/utf8.RuneLen",
	"sync/atomic.(*Int64).Add",
	"errors.Is",
	"main.inlinedHelper",
	"strconv.Itoa",
	"main.clamp",
};
static const char *const top_fns[10] = {
	"main.loop0", "main.loop1", "main.loop2", "main.loop3", "main.loop4",
	"main.loop5", "main.loop6", "main.loop7", "main.loop8", "main.loop9",
};

/* The location of the function at slot i of kind k (0 leaf, 1 mid (+inline), 2 top, 3
 * main.main, 4 runtime.main, 5 runtime.goexit) in process pid. */
static uint64_t realistic_loc(struct profile *p, const uint64_t maps[3], uint64_t pid, int k, int i)
{
	static const char *const roots[3] = {"main.main", "runtime.main", "runtime.goexit"};
	uint64_t addr, mapping = maps[0], id;
	struct profile_line ln[2];
	size_t n = 1;
	const char *name, *file = "/src/svc/main.go";

	if (k == 0) {
		name = leaf_fns[i];
		if (i >= 7 && i <= 8) {
			mapping = maps[1];
			addr = 0x7f12345a0000 + 0x40 * (uint64_t)i;
			file = "";
		} else if (i == 9) {
			mapping = maps[2];
			addr = 0x7ffd11110a00;
			file = "";
		} else {
			addr = 0x401000 + 0x100 * (uint64_t)i + 0x17;
			file = "/usr/lib/go/src/runtime/malloc.go";
		}
	} else if (k == 1) {
		name = mid_fns[i];
		addr = 0x402000 + 0x100 * (uint64_t)i + 0x33;
	} else if (k == 2) {
		name = top_fns[i];
		addr = 0x403000 + 0x100 * (uint64_t)i + 0x21;
	} else {
		name = roots[k - 3];
		addr = 0x404000 + 0x100 * (uint64_t)k + 0x5;
	}
	id = profile_location_find(p, pid, addr);
	if (id)
		return id;
	if (k == 1) {
		/* An inlined call: the inlined function first (innermost), then its caller. */
		ln[0].function_id =
			profile_function(p, inl_fns[i], inl_fns[i], "/src/svc/util.go", 10 + i);
		ln[0].line = 12 + i;
		n = 2;
	}
	ln[n - 1].function_id = profile_function(p, name, name, file, file[0] ? 100 + k : 0);
	ln[n - 1].line = file[0] ? 110 + k * 10 + i : 0;
	id = profile_location_add(p, pid, addr, mapping, ln, n);
	cr_assert_neq(id, 0);
	return id;
}

static struct profile *build_realistic(struct expect *e)
{
	struct profile *p = new_profile();
	struct gs_error err = {0};
	uint64_t maps[3];

	memset(e, 0, sizeof(*e));
	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0);
	profile_set_default_sample_type(p, "cpu");
	profile_set_period(p, "cpu", "nanoseconds", 10000000);
	profile_set_time(p, 1767225600000000000LL, 10000000000LL);
	cr_assert_eq(profile_add_comment(p, "goscope unit test"), 0);
	maps[0] =
		profile_mapping(p, 0x400000, 0x800000, 0, "/usr/local/bin/svc",
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4", true, true, true, true);
	maps[1] = profile_mapping(
		p, 0x7f1234528000, 0x7f12346bd000, 0x28000, "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"c047672cae7964324658491e7dee26748ae5d2f8", true, false, false, false);
	maps[2] = profile_mapping(p, 0x7ffd11110000, 0x7ffd11112000, 0, "[vdso]", "", true, false,
				  false, false);
	cr_assert(maps[0] == 1 && maps[1] == 2 && maps[2] == 3);

	/* 1000 distinct stacks (leaf, mid, top slots from the digits of i), in two processes,
	 * then the first 500 again (merged). */
	for (int i = 0; i < 1500; i++) {
		int s = i % 1000;
		uint64_t pid = (s % 10 + s / 10) % 2 ? 4343 : 4242;
		uint64_t locs[6];
		int64_t values[2];
		struct profile_label labels[2] = {
			{.key = "pid", .num = (int64_t)pid},
			{.key = "comm", .str = pid == 4242 ? "svc" : "svc-worker"},
		};

		locs[0] = realistic_loc(p, maps, pid, 0, s % 10);
		locs[1] = realistic_loc(p, maps, pid, 1, s / 10 % 10);
		locs[2] = realistic_loc(p, maps, pid, 2, s / 100);
		for (int k = 3; k < 6; k++)
			locs[k] = realistic_loc(p, maps, pid, k, 0);
		values[0] = 1 + i % 5;
		values[1] = values[0] * 10000000;
		cr_assert_eq(profile_add_sample(p, locs, 6, values, labels, 2, &err), 0, "%s",
			     err.msg);
		e->total_count += values[0];
		e->total_cpu += values[1];
	}
	e->nsamples = 1000;
	cr_assert_eq(profile_sample_count(p), 1000);
	return p;
}

Test(pprof, decode_back)
{
	struct expect e;
	struct profile *p = build_realistic(&e);
	struct pprof_doc d;
	int64_t count = 0, cpu = 0;

	encode_decode(p, &d);
	cr_assert_eq(d.nsample_types, 2);
	cr_assert_str_eq(dstr(&d, d.sample_types[0].type), "samples");
	cr_assert_str_eq(dstr(&d, d.sample_types[0].unit), "count");
	cr_assert_str_eq(dstr(&d, d.sample_types[1].type), "cpu");
	cr_assert_str_eq(dstr(&d, d.sample_types[1].unit), "nanoseconds");
	cr_assert_str_eq(dstr(&d, d.default_type), "cpu");
	cr_assert_str_eq(dstr(&d, d.period_type.type), "cpu");
	cr_assert_str_eq(dstr(&d, d.period_type.unit), "nanoseconds");
	cr_assert_eq(d.period, 10000000);
	cr_assert_eq(d.time, 1767225600000000000LL);
	cr_assert_eq(d.duration, 10000000000LL);
	cr_assert_eq(d.ncomments, 1);
	cr_assert_str_eq(dstr(&d, d.comments[0]), "goscope unit test");

	cr_assert_eq(d.nmaps, 3);
	cr_assert_eq(d.maps[1].id, 2);
	cr_assert_eq(d.maps[1].start, 0x7f1234528000);
	cr_assert_eq(d.maps[1].limit, 0x7f12346bd000);
	cr_assert_eq(d.maps[1].offset, 0x28000);
	cr_assert_str_eq(dstr(&d, d.maps[1].file), "/usr/lib/x86_64-linux-gnu/libc.so.6");
	cr_assert_str_eq(dstr(&d, d.maps[1].build_id), "c047672cae7964324658491e7dee26748ae5d2f8");
	cr_assert(d.maps[1].has_functions && !d.maps[1].has_filenames);
	cr_assert(d.maps[0].has_inline_frames && d.maps[0].has_line_numbers);
	cr_assert_eq(d.maps[2].build_id, 0);

	cr_assert_eq(d.nfuncs, p->nfunctions);
	for (size_t i = 0; i < d.nfuncs; i++)
		cr_assert_eq(d.funcs[i].id, i + 1);
	cr_assert_eq(d.nlocs, p->nlocations);
	/* 2 processes x (10 leaves + 10 mids + 10 tops + 3 roots). */
	cr_assert_eq(d.nlocs, 66, "locations: %zu", d.nlocs);
	for (size_t i = 0; i < d.nlocs; i++) {
		const struct pprof_location *l = &d.locs[i];

		cr_assert_eq(l->id, i + 1);
		cr_assert(l->mapping >= 1 && l->mapping <= 3);
		cr_assert_geq(l->nlines, 1);
		for (size_t j = 0; j < l->nlines; j++)
			cr_assert(l->lines[j].fn >= 1 && l->lines[j].fn <= d.nfuncs);
	}
	/* The first mid location: inlined function first, then its caller. */
	cr_assert_eq(d.locs[1].nlines, 2);
	cr_assert_eq(d.locs[1].address, 0x402033);
	cr_assert_str_eq(dstr(&d, d.funcs[d.locs[1].lines[0].fn - 1].name), "strings.IndexByte");
	cr_assert_eq(d.locs[1].lines[0].line, 12);
	cr_assert_str_eq(dstr(&d, d.funcs[d.locs[1].lines[1].fn - 1].name),
			 "main.(*server).handle");
	cr_assert_eq(d.locs[1].lines[1].line, 120);

	cr_assert_eq(d.nsamples, e.nsamples);
	for (size_t i = 0; i < d.nsamples; i++) {
		cr_assert_eq(d.samples[i].nlocs, 6);
		cr_assert_eq(d.samples[i].nvalues, 2);
		cr_assert_eq(d.samples[i].nlabels, 2);
		count += (int64_t)d.samples[i].values[0];
		cpu += (int64_t)d.samples[i].values[1];
	}
	cr_assert_eq(count, e.total_count);
	cr_assert_eq(cpu, e.total_cpu);
	cr_assert_eq(d.samples[1].labels[0].num, 4343);
	cr_assert_str_eq(dstr(&d, d.samples[1].labels[1].str), "svc-worker");
	dprof_free(&d);
	profile_free(p);
}

/* ---- merging profiles ---- */

/* One line per sample, "labels|leaf frames...|values", built from the decoded file by names
 * and addresses (not ids), sorted: two profiles with the same content give the same text. */
static char *canonical(const struct profile *p)
{
	struct pprof_doc d;
	char **lines, *out;
	size_t total = 1;

	encode_decode(p, &d);
	lines = calloc(d.nsamples + 1, sizeof(*lines));
	cr_assert_not_null(lines);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		cr_assert_not_null(f);
		for (size_t j = 0; j < s->nlabels; j++)
			fprintf(f, "%s=%s/%lld/%s;", dstr(&d, s->labels[j].key),
				dstr(&d, s->labels[j].str), (long long)s->labels[j].num,
				dstr(&d, s->labels[j].num_unit));
		fputc('|', f);
		for (size_t j = 0; j < s->nlocs; j++) {
			const struct pprof_location *l = pprof_location(&d, s->locs[j]);

			cr_assert_not_null(l, "sample %zu: unknown location %llu", i,
					   (unsigned long long)s->locs[j]);
			fprintf(f, "%llx", (unsigned long long)l->address);
			if (l->mapping) {
				cr_assert_leq(l->mapping, d.nmaps);
				fprintf(f, "@%s", dstr(&d, d.maps[l->mapping - 1].file));
			}
			for (size_t k = 0; k < l->nlines; k++) {
				const struct pprof_function *fn =
					pprof_function(&d, l->lines[k].fn);

				cr_assert_not_null(fn);
				fprintf(f, ":%s/%s:%lld", dstr(&d, fn->name),
					dstr(&d, fn->filename), (long long)l->lines[k].line);
			}
			fputc(' ', f);
		}
		fputc('|', f);
		for (size_t j = 0; j < s->nvalues; j++)
			fprintf(f, "%lld ", (long long)s->values[j]);
		fclose(f);
		lines[i] = buf;
		total += len + 1;
	}
	qsort(lines, d.nsamples, sizeof(*lines), cmp_str);
	out = calloc(1, total);
	cr_assert_not_null(out);
	for (size_t i = 0; i < d.nsamples; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
		free(lines[i]);
	}
	free(lines);
	dprof_free(&d);
	return out;
}

/* A stack of 3 frames of process pid (leaf, mid with an inlined callee, root); leaf 5+ are in
 * a second mapping. Functions and locations are made on first use. */
static void add_stack(struct profile *p, int64_t pid, int leaf, int mid, int64_t n,
		      const char *comm)
{
	uint64_t maps[2], locs[3];
	struct profile_label labels[3] = {
		{.key = "pid", .num = pid},
		{.key = "comm", .str = comm},
		{.key = "bytes", .num = 64 * leaf, .num_unit = "bytes"},
	};
	struct gs_error err = {0};

	maps[0] = profile_mapping(p, 0x400000, 0x800000, 0, "/bin/svc", "b1", 1, 1, 1, 1);
	maps[1] = profile_mapping(p, 0x7f0000000000, 0x7f0000100000, 0x1000, "/lib/libc.so.6", "c1",
				  1, 0, 0, 0);
	for (int k = 0; k < 3; k++) {
		int i = k == 0 ? leaf : k == 1 ? mid : 0;
		uint64_t addr = 0x401000 + 0x1000 * (uint64_t)k + 0x10 * (uint64_t)i;
		uint64_t map = maps[0];
		struct profile_line ln[2];
		char name[64];
		size_t nl = 1;

		if (k == 0 && leaf >= 5) {
			addr = 0x7f0000001000 + 0x10 * (uint64_t)i;
			map = maps[1];
		}
		locs[k] = profile_location_find(p, (uint64_t)pid, addr);
		if (locs[k])
			continue;
		snprintf(name, sizeof(name), "main.f%d_%d", k, i);
		ln[0].function_id = profile_function(p, name, name, "/src/main.go", 10 * k);
		ln[0].line = 100 + i;
		if (k == 1) {
			snprintf(name, sizeof(name), "main.caller%d", i);
			ln[1].function_id = profile_function(p, name, name, "/src/c.go", 7);
			ln[1].line = 200 + i;
			nl = 2;
		}
		locs[k] = profile_location_add(p, (uint64_t)pid, addr, map, ln, nl);
		cr_assert_neq(locs[k], 0);
	}
	cr_assert_eq(profile_add_sample(p, locs, 3, (int64_t[]){n, n * 1000}, labels, 3, &err), 0,
		     "%s", err.msg);
}

static struct profile *typed_profile(void)
{
	struct profile *p = new_profile();

	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	cr_assert_eq(profile_add_sample_type(p, "cpu", "nanoseconds"), 0);
	return p;
}

/* Merging two windows gives what one profile of both windows would have held, whatever the
 * order in which each window met its functions, mappings and locations. */
Test(pprof, merge_equals_building_together)
{
	struct profile *a = typed_profile(), *b = typed_profile(), *all = typed_profile();
	struct gs_error err = {0};
	char *got, *want;

	/* b meets its functions in another order: its ids differ from a's. */
	profile_function(b, "unrelated.fn", NULL, NULL, 0);
	add_stack(b, 7, 9, 3, 1, "svc");
	for (int i = 0; i < 300; i++) {
		int64_t pid = i % 3 ? 42 : 43;
		const char *comm = pid == 42 ? "svc" : "worker";

		/* The windows overlap (i in [100, 200) in both): those samples must sum. */
		if (i < 200)
			add_stack(a, pid, i % 10, i / 10 % 7, 1 + i % 4, comm);
		if (i >= 100)
			add_stack(b, pid, (i * 7) % 10, (i / 3) % 7, 2, comm);
		if (i < 200)
			add_stack(all, pid, i % 10, i / 10 % 7, 1 + i % 4, comm);
		if (i >= 100)
			add_stack(all, pid, (i * 7) % 10, (i / 3) % 7, 2, comm);
	}
	add_stack(all, 7, 9, 3, 1, "svc");
	cr_assert_eq(profile_merge(a, b, &err), 0, "%s", err.msg);
	got = canonical(a);
	want = canonical(all);
	cr_assert_str_eq(got, want);
	cr_assert_eq(profile_sample_count(a), profile_sample_count(all));
	/* b's unused function came along; nothing else is duplicated. */
	cr_assert_eq(a->nfunctions, all->nfunctions + 1);
	cr_assert_eq(a->nlocations, all->nlocations);
	cr_assert_eq(a->nmappings, 2);
	/* Merging an empty profile changes nothing. */
	{
		struct profile *empty = typed_profile();

		cr_assert_eq(profile_merge(a, empty, &err), 0, "%s", err.msg);
		free(got);
		got = canonical(a);
		cr_assert_str_eq(got, want);
		profile_free(empty);
	}
	free(got);
	free(want);
	profile_free(a);
	profile_free(b);
	profile_free(all);
}

/* Samples with equal locations and labels sum (saturating), others stay apart; ids are
 * remapped; a location dst already has keeps dst's lines. */
Test(pprof, merge_sums_and_remaps)
{
	struct profile *dst = typed_profile(), *src = typed_profile();
	struct profile_label l42 = {.key = "pid", .num = 42}, l43 = {.key = "pid", .num = 43};
	struct profile_line ln;
	struct gs_error err = {0};
	struct pprof_doc d;
	uint64_t fd1, fs1, fs2, ld, ls1, ls2;

	fd1 = profile_function(dst, "main.a", NULL, "/a.go", 1);
	ln = (struct profile_line){fd1, 10};
	ld = profile_location_add(dst, 1, 0x100, 0, &ln, 1);
	cr_assert_eq(profile_add_sample(dst, &ld, 1, (int64_t[]){1, 10}, &l42, 1, &err), 0);
	cr_assert_eq(profile_add_sample(dst, &ld, 1, (int64_t[]){INT64_MAX - 1, 0}, &l43, 1, &err),
		     0);

	fs2 = profile_function(src, "main.b", NULL, "/b.go", 1);
	fs1 = profile_function(src, "main.a", NULL, "/a.go", 1);
	cr_assert(fs1 == 2 && fs2 == 1);
	ln = (struct profile_line){fs2, 20};
	ls2 = profile_location_add(src, 1, 0x200, 0, &ln, 1);
	/* Same (key, address) as dst's location, other lines: dst's are kept. */
	ln = (struct profile_line){fs2, 99};
	ls1 = profile_location_add(src, 1, 0x100, 0, &ln, 1);
	cr_assert(ls2 == 1 && ls1 == 2);
	cr_assert_eq(profile_add_sample(src, &ls1, 1, (int64_t[]){2, 20}, &l42, 1, &err), 0);
	cr_assert_eq(profile_add_sample(src, &ls1, 1, (int64_t[]){5, 5}, &l43, 1, &err), 0);
	cr_assert_eq(profile_add_sample(src, (uint64_t[]){ls2, ls1}, 2, (int64_t[]){4, 40}, &l42, 1,
					&err),
		     0);
	cr_assert_eq(profile_add_sample(src, &ls2, 1, (int64_t[]){8, 80}, NULL, 0, &err), 0);

	cr_assert_eq(profile_merge(dst, src, &err), 0, "%s", err.msg);
	cr_assert_eq(profile_sample_count(dst), 4);
	cr_assert_eq(dst->nlocations, 2);
	cr_assert_eq(dst->nfunctions, 2);
	encode_decode(dst, &d);
	cr_assert_eq(d.samples[0].values[0], 3);
	cr_assert_eq(d.samples[0].values[1], 30);
	cr_assert_eq(d.samples[1].values[0], INT64_MAX, "saturated");
	cr_assert_eq(d.samples[1].values[1], 5);
	/* [0x200, 0x100] with the remapped ids: location 2 (new) then 1 (dst's). */
	cr_assert_eq(d.samples[2].nlocs, 2);
	cr_assert_eq(d.samples[2].locs[0], 2);
	cr_assert_eq(d.samples[2].locs[1], 1);
	cr_assert_eq(d.samples[2].values[0], 4);
	cr_assert_eq(d.samples[3].nlabels, 0);
	cr_assert_eq(d.locs[1].address, 0x200);
	cr_assert_str_eq(dstr(&d, d.funcs[d.locs[1].lines[0].fn - 1].name), "main.b");
	cr_assert_eq(d.locs[1].lines[0].line, 20);
	cr_assert_eq(d.locs[0].nlines, 1);
	cr_assert_str_eq(dstr(&d, d.funcs[d.locs[0].lines[0].fn - 1].name), "main.a");
	cr_assert_eq(d.locs[0].lines[0].line, 10, "dst's lines kept");
	dprof_free(&d);
	profile_free(dst);
	profile_free(src);
}

/* Sample types must agree (an empty dst takes src's); the time span, period, default type
 * and comments. */
Test(pprof, merge_header)
{
	struct profile *dst = new_profile(), *src = typed_profile(), *other = new_profile();
	struct gs_error err = {0};
	struct pprof_doc d;

	profile_set_period(src, "cpu", "nanoseconds", 1000);
	profile_set_default_sample_type(src, "cpu");
	profile_set_time(src, 5000, 1000); /* [5000, 6000) */
	cr_assert_eq(profile_add_comment(src, "window 2"), 0);
	cr_assert_eq(profile_add_comment(src, "shared"), 0);
	add_stack(src, 1, 1, 1, 3, "x");
	profile_set_time(dst, 3000, 500); /* [3000, 3500) */
	cr_assert_eq(profile_add_comment(dst, "shared"), 0);

	cr_assert_eq(profile_merge(dst, dst, &err), -EINVAL);
	cr_assert_eq(profile_merge(dst, src, &err), 0, "%s", err.msg);
	encode_decode(dst, &d);
	cr_assert_eq(d.nsample_types, 2);
	cr_assert_str_eq(dstr(&d, d.sample_types[1].type), "cpu");
	cr_assert_str_eq(dstr(&d, d.sample_types[1].unit), "nanoseconds");
	cr_assert_str_eq(dstr(&d, d.period_type.type), "cpu");
	cr_assert_eq(d.period, 1000);
	cr_assert_str_eq(dstr(&d, d.default_type), "cpu");
	cr_assert_eq(d.time, 3000);
	cr_assert_eq(d.duration, 3000);
	cr_assert_eq(d.ncomments, 2);
	cr_assert_str_eq(dstr(&d, d.comments[0]), "shared");
	cr_assert_str_eq(dstr(&d, d.comments[1]), "window 2");
	cr_assert_eq(d.nsamples, 1);
	cr_assert_eq(d.samples[0].values[0], 3);
	dprof_free(&d);

	/* Other sample types: refused, dst unchanged. */
	cr_assert_eq(profile_add_sample_type(other, "contentions", "count"), 0);
	cr_assert_eq(profile_add_sample_type(other, "delay", "nanoseconds"), 0);
	gs_error_clear(&err);
	cr_assert_eq(profile_merge(dst, other, &err), -EINVAL);
	cr_assert(strstr(err.msg, "sample types"), "%s", err.msg);
	cr_assert_eq(profile_merge(other, dst, &err), -EINVAL);
	cr_assert_eq(profile_sample_count(dst), 1);
	profile_free(dst);
	profile_free(src);
	profile_free(other);
}

/* ---- gzip and files ---- */

/* Inflates a gzip stream (exactly one member, nothing after it) into a malloc'd buffer. */
static uint8_t *gunzip(const uint8_t *in, size_t n, size_t *outlen)
{
	uint8_t *out;
	char why[256];

	cr_assert_eq(pprof_gunzip(in, n, &out, outlen, why, sizeof(why)), 0, "%s", why);
	return out;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, r;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return buf;
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/goscope-pprof-XXXXXX");

	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

static void rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

Test(pprof, gzip_round_trip)
{
	struct expect e;
	struct profile *p = build_realistic(&e);
	struct gs_error err = {0};
	char *dir = make_tmpdir(), path[256];
	uint8_t *plain, *gz, *back;
	size_t plain_len, gz_len, back_len;
	int fd;

	encode(p, &plain, &plain_len);
	snprintf(path, sizeof(path), "%s/fd.pb.gz", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(profile_write_gzip(p, fd, &err), 0, "%s", err.msg);
	close(fd);
	gz = read_all(path, &gz_len);
	cr_assert_geq(gz_len, 18);
	cr_assert(gz[0] == 0x1f && gz[1] == 0x8b && gz[2] == 8, "gzip magic");
	cr_assert_lt(gz_len, plain_len);
	back = gunzip(gz, gz_len, &back_len);
	cr_assert_eq(back_len, plain_len);
	cr_assert_eq(memcmp(back, plain, plain_len), 0);
	free(back);
	free(gz);
	free(plain);
	rm_rf(dir);
	free(dir);
	profile_free(p);
}

Test(pprof, gzip_large_streams)
{
	struct profile *p = profile_with_locations(64);
	struct gs_error err = {0};
	char *dir = make_tmpdir(), path[256];
	uint8_t *plain, *gz, *back;
	size_t plain_len, gz_len, back_len;
	uint64_t stack[16];

	/* Several MB of encoding, so that the writer flushes many times. */
	for (uint32_t i = 0; i < 50000; i++) {
		for (int j = 0; j < 16; j++)
			stack[j] = (i * 2654435761u >> (j * 2)) % 64 + 1;
		cr_assert_eq(profile_add_sample(p, stack, 16, (int64_t[]){i, -(int64_t)i}, NULL, 0,
						NULL),
			     0);
	}
	encode(p, &plain, &plain_len);
	cr_assert_gt(plain_len, 1 << 20);
	snprintf(path, sizeof(path), "%s/big.pb.gz", dir);
	cr_assert_eq(profile_write_file(p, path, &err), 0, "%s", err.msg);
	gz = read_all(path, &gz_len);
	back = gunzip(gz, gz_len, &back_len);
	cr_assert_eq(back_len, plain_len);
	cr_assert_eq(memcmp(back, plain, plain_len), 0);
	free(back);
	free(gz);
	free(plain);
	rm_rf(dir);
	free(dir);
	profile_free(p);
}

Test(pprof, write_file_atomic)
{
	struct expect e;
	struct profile *p = build_realistic(&e);
	struct profile *empty = new_profile();
	struct gs_error err = {0};
	char *dir = make_tmpdir(), path[256], bad[300];
	uint8_t *gz, *back, *plain;
	size_t gz_len, back_len, plain_len;
	struct stat st;

	snprintf(path, sizeof(path), "%s/cpu.pb.gz", dir);
	cr_assert_eq(profile_write_file(empty, path, &err), 0, "%s", err.msg);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(profile_write_file(p, path, &err), 0, "%s", err.msg);
	cr_assert_eq(dir_entries(dir), 1, "a temporary file was left behind");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640, "the replaced file's mode is kept");
	gz = read_all(path, &gz_len);
	back = gunzip(gz, gz_len, &back_len);
	encode(p, &plain, &plain_len);
	cr_assert_eq(back_len, plain_len);
	cr_assert_eq(memcmp(back, plain, plain_len), 0);

	/* Not a regular file: written in place. */
	cr_assert_eq(profile_write_file(p, "/dev/null", &err), 0, "%s", err.msg);

	snprintf(bad, sizeof(bad), "%s/missing/cpu.pb.gz", dir);
	cr_assert_eq(profile_write_file(p, bad, &err), -ENOENT);
	cr_assert_eq(err.code, -ENOENT);
	cr_assert(strstr(err.msg, "missing"), "%s", err.msg);
	cr_assert_eq(dir_entries(dir), 1);

	/* Write errors surface with the path. */
	if (access("/dev/full", W_OK) == 0) {
		gs_error_clear(&err);
		cr_assert_eq(profile_write_file(p, "/dev/full", &err), -ENOSPC);
		cr_assert(strstr(err.msg, "/dev/full"), "%s", err.msg);
	}
	free(plain);
	free(back);
	free(gz);
	rm_rf(dir);
	free(dir);
	profile_free(empty);
	profile_free(p);
}

/* ---- independent decoders: pprof-format (node) and go tool pprof ---- */

/* Criterion prints skips only with --verbose: say it as a warning too. */
#define SKIP_VISIBLY(msg)                                                                          \
	do {                                                                                       \
		cr_log_warn("pprof::external_decoders skipped: %s", msg);                          \
		cr_skip_test("%s", msg);                                                           \
	} while (0)

/* Runs a shell command, returning its stdout (and stderr, 2>&1 in cmd) and exit status. */
static char *run(const char *cmd, int *status)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 65536, n = 0, r;
	char *out = malloc(cap);

	cr_assert_not_null(f, "popen %s", cmd);
	cr_assert_not_null(out);
	while ((r = fread(out + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			out = realloc(out, cap);
			cr_assert_not_null(out);
		}
	}
	out[n] = 0;
	*status = pclose(f);
	return out;
}

static bool have_node(void)
{
	int status;
	char *out = run("node --version 2>/dev/null", &status);
	bool ok = status == 0 && out[0] == 'v';

	free(out);
	return ok;
}

/* The source tree: $GOSCOPE_SRC_DIR or the current directory, if it has tests/tools. */
static bool find_root(char *root, size_t n)
{
	const char *env = getenv("GOSCOPE_SRC_DIR");
	char probe[PATH_MAX + 64];

	if (env && *env)
		snprintf(root, n, "%s", env);
	else if (!getcwd(root, n))
		return false;
	snprintf(probe, sizeof(probe), "%s/tests/tools/pprof-check.js", root);
	return access(probe, R_OK) == 0;
}

/* Checks pprof-check.js's summary of a file written from build_realistic(). */
static void check_summary(const char *out, const struct expect *e, const char *what)
{
	char want[128];

	cr_log_info("pprof-check %s:\n%s", what, out);
	snprintf(want, sizeof(want), "\"samples\": %zu,", e->nsamples);
	cr_assert(strstr(out, want), "%s: no %s", what, want);
	snprintf(want, sizeof(want), "\"samples/count\": %lld", (long long)e->total_count);
	cr_assert(strstr(out, want), "%s: no %s", what, want);
	snprintf(want, sizeof(want), "\"cpu/nanoseconds\": %lld", (long long)e->total_cpu);
	cr_assert(strstr(out, want), "%s: no %s", what, want);
	cr_assert(strstr(out, "\"locations\": 66,"), "%s: location count", what);
	cr_assert(strstr(out, "\"mappings\": 3,"), "%s: mapping count", what);
	cr_assert(strstr(out, "\"period\": 10000000,"), "%s: period", what);
	cr_assert(strstr(out, "\"inlined_locations\": 20,"), "%s: inlined locations", what);
	cr_assert(strstr(out, "\"/usr/lib/x86_64-linux-gnu/libc.so.6\""), "%s: libc mapping", what);
	cr_assert(strstr(out, "\"errors\": []"), "%s: errors reported", what);
	for (int i = 0; i < 10; i++) {
		char q[96];

		snprintf(q, sizeof(q), "\"%s\"", leaf_fns[i]);
		cr_assert(strstr(out, q), "%s: no function %s", what, q);
		snprintf(q, sizeof(q), "\"%s\"", inl_fns[i]);
		cr_assert(strstr(out, q), "%s: no function %s", what, q);
	}
	cr_assert(strstr(out, "\"runtime.goexit\""), "%s: runtime.goexit", what);
}

/* Sums the first two value columns of the Samples section of `go tool pprof -raw`. */
static void raw_totals(const char *raw, int64_t *count, int64_t *cpu, size_t *nsamples)
{
	const char *s = strstr(raw, "\nSamples:\n");
	const char *end;

	*count = *cpu = 0;
	*nsamples = 0;
	cr_assert_not_null(s, "no Samples section");
	s = strchr(s + 10, '\n'); /* skip the "samples/count cpu/nanoseconds" header */
	cr_assert_not_null(s);
	end = strstr(s, "\nLocations\n");
	cr_assert_not_null(end, "no Locations section");
	while (s && s < end) {
		long long a, b;
		int used = 0;

		s++;
		if (sscanf(s, " %lld %lld:%n", &a, &b, &used) == 2 && used > 0) {
			*count += a;
			*cpu += b;
			(*nsamples)++;
		}
		s = strchr(s, '\n');
	}
}

Test(pprof, external_decoders, .timeout = 300)
{
	char root[PATH_MAX], cmd[PATH_MAX * 3 + 512], env[PATH_MAX + 512];
	char path[300], rt[300];
	struct expect e;
	struct profile *p;
	struct gs_error err = {0};
	char *dir, *out;
	int status;
	bool node, go;

	if (!find_root(root, sizeof(root)))
		SKIP_VISIBLY("tests/tools/pprof-check.js not found: run from the source tree or "
			     "set GOSCOPE_SRC_DIR");
	node = have_node();
	go = access(GO127, X_OK) == 0;
	if (!node && !go)
		SKIP_VISIBLY("neither node nor " GO127 " is installed (deploy/deps.sh test)");

	p = build_realistic(&e);
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/cpu.pb.gz", dir);
	snprintf(rt, sizeof(rt), "%s/roundtrip.pb.gz", dir);
	cr_assert_eq(profile_write_file(p, path, &err), 0, "%s", err.msg);

	if (node) {
		snprintf(cmd, sizeof(cmd), "test -d '%s/tests/tools/node_modules/pprof-format'",
			 root);
		if (system(cmd) != 0) {
			cr_log_warn("pprof-format not installed: run `npm ci` in tests/tools "
				    "(deploy/deps.sh test does)");
			node = false;
		}
	}
	if (node) {
		snprintf(cmd, sizeof(cmd), "node '%s/tests/tools/pprof-check.js' '%s' 2>&1", root,
			 path);
		out = run(cmd, &status);
		cr_assert_eq(status, 0, "pprof-check failed (%d):\n%s", status, out);
		check_summary(out, &e, "written");
		cr_assert(strstr(out, "\"default_sample_type\": \"cpu\""), "default sample type");
		cr_assert(strstr(out, "\"comm\""), "label keys");
		free(out);
	}

	if (go) {
		int64_t count, cpu;
		size_t n;

		/* No symbolization, no network, no binaries looked up, nothing in the real HOME;
		 * the tool's build cache (go tool pprof is built on first use) is kept. */
		snprintf(env, sizeof(env),
			 "cd '%s' && GOCACHE=\"$(" GO127 " env GOCACHE)\" HOME='%s' "
			 "PPROF_BINARY_PATH=/nonexistent PPROF_TMPDIR='%s' GOTOOLCHAIN=local "
			 "GOFLAGS= GOPROXY=off " GO127 " tool pprof -symbolize=none",
			 dir, dir, dir);

		snprintf(cmd, sizeof(cmd), "%s -raw '%s' 2>&1", env, path);
		out = run(cmd, &status);
		cr_assert_eq(status, 0, "go tool pprof -raw failed (%d):\n%s", status, out);
		cr_log_info("go tool pprof -raw: %zu bytes", strlen(out));
		raw_totals(out, &count, &cpu, &n);
		cr_assert_eq(n, e.nsamples, "-raw samples: %zu", n);
		cr_assert_eq(count, e.total_count);
		cr_assert_eq(cpu, e.total_cpu);
		cr_assert(strstr(out, "PeriodType: cpu nanoseconds"), "-raw period type");
		cr_assert(strstr(out, "Period: 10000000"), "-raw period");
		cr_assert(strstr(out, "pid:[4242]") || strstr(out, "pid:[4343]"), "-raw labels");
		cr_assert(strstr(out, "comm:[svc-worker]"), "-raw string labels");
		cr_assert(strstr(out, "/usr/lib/x86_64-linux-gnu/libc.so.6"), "-raw mappings");
		for (int i = 0; i < 10; i++) {
			cr_assert(strstr(out, leaf_fns[i]), "-raw: no %s", leaf_fns[i]);
			cr_assert(strstr(out, inl_fns[i]), "-raw: no %s", inl_fns[i]);
			cr_assert(strstr(out, mid_fns[i]), "-raw: no %s", mid_fns[i]);
		}
		free(out);

		snprintf(cmd, sizeof(cmd),
			 "%s -top -nodecount=1000 -sample_index=samples '%s' 2>&1", env, path);
		out = run(cmd, &status);
		cr_assert_eq(status, 0, "go tool pprof -top failed (%d):\n%s", status, out);
		cr_log_info("go tool pprof -top:\n%.2000s", out);
		{
			char want[96];

			snprintf(want, sizeof(want), "100%% of %lld total",
				 (long long)e.total_count);
			cr_assert(strstr(out, want), "-top: no \"%s\"", want);
		}
		for (int i = 0; i < 7; i++)
			cr_assert(strstr(out, leaf_fns[i]), "-top: no %s", leaf_fns[i]);
		free(out);

		snprintf(cmd, sizeof(cmd), "%s -proto '%s' > '%s' 2>/dev/null", env, path, rt);
		out = run(cmd, &status);
		cr_assert_eq(status, 0, "go tool pprof -proto failed (%d)", status);
		free(out);
		if (node) {
			snprintf(cmd, sizeof(cmd), "node '%s/tests/tools/pprof-check.js' '%s' 2>&1",
				 root, rt);
			out = run(cmd, &status);
			cr_assert_eq(status, 0, "pprof-check (round trip) failed (%d):\n%s", status,
				     out);
			check_summary(out, &e, "after go tool pprof -proto");
			free(out);
		}
	}
	if (!node || !go)
		cr_log_warn("external decoders partly skipped: node %s, go %s",
			    node ? "ran" : "missing", go ? "ran" : "missing");
	rm_rf(dir);
	free(dir);
	profile_free(p);
}
