/* test_pprof_decode.c — profile_decode (agent/profile/pprof_decode.c): round trips of real-
 * shaped profiles (raw and gzip) compared stack by stack through the independent test
 * decoder, location deduplication across decoded profiles, the dictionary/own-part split
 * (concatenated, it is the same profile), profile_add_labels_all, and malformed inputs
 * (every truncation, bad varints, out-of-range indices and ids) refused with -EINVAL. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile/profile.h"
#include "tests/helpers/store_fixture.h"

static void stacks(const struct profile *p, struct fx_stacks *out)
{
	char why[256];

	cr_assert_eq(fx_stacks_of(p, out, why, sizeof(why)), 0, "%s", why);
}

static void encode(const struct profile *p, uint8_t **buf, size_t *len)
{
	struct gs_error err;

	cr_assert_eq(profile_encode(p, buf, len, &err), 0, "%s", err.msg);
}

static struct profile *decode_ok(const uint8_t *buf, size_t len)
{
	struct gs_error err = {0};
	struct profile *p;
	int rc = profile_decode(buf, len, &p, &err);

	cr_assert_eq(rc, 0, "profile_decode: %d %s", rc, err.msg);
	return p;
}

static int decode_rc(const uint8_t *buf, size_t len)
{
	struct gs_error err = {0};
	struct profile *p = (struct profile *)1;
	int rc = profile_decode(buf, len, &p, &err);

	if (rc == 0)
		profile_free(p);
	else
		cr_assert_null(p);
	return rc;
}

Test(pprof_decode, round_trip_raw_and_gzip)
{
	struct profile *p = fx_window(11, 400, 150, "api", 3), *q, *r;
	struct fx_stacks a, b, c;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char path[] = "/tmp/goscope-dec-XXXXXX";
	int fd = mkstemp(path);
	struct gs_error err;
	FILE *f;
	uint8_t gz[1 << 20];
	size_t gzlen;

	cr_assert_not_null(p);
	encode(p, &buf, &len);
	q = decode_ok(buf, len);
	stacks(p, &a);
	stacks(q, &b);
	cr_assert_null(fx_stacks_diff(&a, &b), "%s", fx_stacks_diff(&a, &b));
	/* Decoded again, the encoding is byte-identical (same tables in the same order). */
	encode(q, &buf2, &len2);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(buf, buf2, len), 0);
	/* gzip, as profile_write_gzip writes it. */
	cr_assert_geq(fd, 0);
	cr_assert_eq(profile_write_gzip(p, fd, &err), 0, "%s", err.msg);
	close(fd);
	f = fopen(path, "rb");
	gzlen = fread(gz, 1, sizeof(gz), f);
	fclose(f);
	unlink(path);
	cr_assert_eq(gz[0], 0x1f);
	r = decode_ok(gz, gzlen);
	stacks(r, &c);
	cr_assert_null(fx_stacks_diff(&a, &c), "%s", fx_stacks_diff(&a, &c));
	/* A truncated gzip stream is refused. */
	cr_assert_eq(decode_rc(gz, gzlen / 2), -EINVAL);
	fx_stacks_free(&a);
	fx_stacks_free(&b);
	fx_stacks_free(&c);
	free(buf);
	free(buf2);
	profile_free(p);
	profile_free(q);
	profile_free(r);
}

/* Two decoded windows of one process merge their identical locations (hash keys), and
 * the merge sums per stack. */
Test(pprof_decode, decoded_locations_dedupe_on_merge)
{
	struct profile *p1 = fx_window(1, 300, 60, "api", 3), *p2 = fx_window(2, 300, 60, "api", 3);
	struct profile *d1, *d2, *m = profile_new(), *direct = profile_new();
	struct fx_stacks want, got;
	uint8_t *b1, *b2, *e1, *e2, *em;
	size_t l1, l2, n1, n2, nm;
	struct gs_error err;

	encode(p1, &b1, &l1);
	encode(p2, &b2, &l2);
	d1 = decode_ok(b1, l1);
	d2 = decode_ok(b2, l2);
	cr_assert_eq(profile_merge(m, d1, &err), 0, "%s", err.msg);
	cr_assert_eq(profile_merge(m, d2, &err), 0, "%s", err.msg);
	cr_assert_eq(profile_merge(direct, p1, &err), 0);
	cr_assert_eq(profile_merge(direct, p2, &err), 0);
	stacks(direct, &want);
	stacks(m, &got);
	cr_assert_null(fx_stacks_diff(&want, &got), "%s", fx_stacks_diff(&want, &got));
	/* Same tables as merging the originals (keyed by pid there): no location doubled. */
	encode(d1, &e1, &n1);
	encode(direct, &e2, &n2);
	encode(m, &em, &nm);
	cr_assert_eq(nm, n2, "merged decoded %zu bytes, merged originals %zu", nm, n2);
	fx_stacks_free(&want);
	fx_stacks_free(&got);
	free(b1);
	free(b2);
	free(e1);
	free(e2);
	free(em);
	profile_free(p1);
	profile_free(p2);
	profile_free(d1);
	profile_free(d2);
	profile_free(m);
	profile_free(direct);
}

/* Dictionary deltas then the own part, concatenated, decode to the profile. */
Test(pprof_decode, dictionary_chunks_and_own_part_concatenate)
{
	struct profile *dict = profile_new(), *w1 = fx_window(1, 200, 50, "api", 3),
		       *w2 = fx_window(2, 200, 200, "api", 3), *back;
	struct profile_dict_mark mark = {0};
	struct fx_stacks want, got;
	struct gs_error err;
	uint8_t *c0, *c1, *own, *all;
	size_t n0, n1, nown;

	cr_assert_eq(profile_merge(dict, w1, &err), 0);
	cr_assert_eq(profile_encode_dict_delta(dict, &mark, &c0, &n0, &err), 0);
	profile_dict_mark(dict, &mark);
	profile_clear_samples(dict);
	cr_assert_eq(profile_sample_count(dict), 0);
	cr_assert_eq(profile_merge(dict, w2, &err), 0);
	cr_assert_eq(profile_encode_dict_delta(dict, &mark, &c1, &n1, &err), 0);
	cr_assert_gt(n1, 0); /* w2 has functions w1 had not */
	cr_assert_eq(profile_encode_own(dict, &own, &nown, &err), 0);
	all = malloc(n0 + n1 + nown);
	memcpy(all, c0, n0);
	memcpy(all + n0, c1, n1);
	memcpy(all + n0 + n1, own, nown);
	back = decode_ok(all, n0 + n1 + nown);
	stacks(w2, &want);
	stacks(back, &got);
	cr_assert_null(fx_stacks_diff(&want, &got), "%s", fx_stacks_diff(&want, &got));
	/* Without the second chunk the own part points past the tables: refused. */
	memcpy(all + n0, own, nown);
	cr_assert_eq(decode_rc(all, n0 + nown), -EINVAL);
	fx_stacks_free(&want);
	fx_stacks_free(&got);
	free(c0);
	free(c1);
	free(own);
	free(all);
	profile_free(dict);
	profile_free(w1);
	profile_free(w2);
	profile_free(back);
}

Test(pprof_decode, add_labels_all_keeps_samples_apart)
{
	struct profile *p = fx_window(4, 100, 40, "api", 3);
	struct profile_label l[] = {{.key = "node", .str = "n1"}, {.key = "n", .num = 5}};
	struct fx_stacks before, after;
	struct gs_error err;

	stacks(p, &before);
	cr_assert_eq(profile_add_labels_all(p, l, 2, &err), 0);
	stacks(p, &after);
	cr_assert_eq(before.n, after.n);
	for (size_t i = 0; i < after.n; i++)
		cr_assert(strstr(after.s[i].key, "pid=3,node=n1,n=#,"), "%s", after.s[i].key);
	cr_assert_eq(fx_stacks_total(&before, 1), fx_stacks_total(&after, 1));
	/* A sample added afterwards with the same stack and labels merges with its twin. */
	fx_stacks_free(&before);
	fx_stacks_free(&after);
	profile_free(p);
}

Test(pprof_decode, malformed_inputs_are_refused)
{
	struct profile *p = fx_window(5, 50, 20, "api", 3);
	uint8_t *buf, *bad;
	size_t len;
	int ok = 0, refused = 0;

	encode(p, &buf, &len);
	/* Every truncation: decoded (a prefix ending on a field boundary may be a valid,
	 * smaller profile) or -EINVAL; never a crash (ASan in make asan-test). */
	for (size_t n = 0; n < len; n++) {
		bad = malloc(n ? n : 1);
		memcpy(bad, buf, n);
		int rc = decode_rc(bad, n);

		cr_assert(rc == 0 || rc == -EINVAL, "prefix %zu: %d", n, rc);
		rc == 0 ? ok++ : refused++;
		free(bad);
	}
	cr_assert_gt(refused, (int)len / 2);
	/* A varint of 11 bytes. */
	{
		uint8_t v[] = {0x32, 0x00, 0x08, 0xff, 0xff, 0xff, 0xff,
			       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
	}
	/* string_table = [""], a sample type pointing at string 5. */
	{
		uint8_t v[] = {0x32, 0x00, 0x0a, 0x02, 0x08, 0x05};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
	}
	/* A sample type, then a sample naming location 7 that does not exist. */
	{
		uint8_t v[] = {0x32, 0x00, 0x32, 0x01, 'x',  0x0a, 0x02, 0x08, 0x01,
			       0x12, 0x06, 0x0a, 0x01, 0x07, 0x12, 0x01, 0x01};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
		v[13] = 0x00; /* location id 0: also unknown */
		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
	}
	/* A location whose line names function 9 (none), and a duplicated location id. */
	{
		uint8_t v[] = {0x32, 0x00, 0x22, 0x06, 0x08, 0x01, 0x22, 0x02, 0x08, 0x09};
		uint8_t w[] = {0x32, 0x00, 0x22, 0x02, 0x08, 0x01, 0x22, 0x02, 0x08, 0x01};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
		cr_assert_eq(decode_rc(w, sizeof(w)), -EINVAL);
	}
	/* A length running past the end, a group wire type, string_table[0] not "". */
	{
		uint8_t v[] = {0x32, 0x00, 0x12, 0x7f, 0x00};
		uint8_t g[] = {0x32, 0x00, 0x0b};
		uint8_t s[] = {0x32, 0x01, 'a'};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
		cr_assert_eq(decode_rc(g, sizeof(g)), -EINVAL);
		cr_assert_eq(decode_rc(s, sizeof(s)), -EINVAL);
	}
	/* A sample with two values where there is one sample type. */
	{
		uint8_t v[] = {0x32, 0x00, 0x32, 0x01, 'x',  0x0a, 0x02, 0x08,
			       0x01, 0x12, 0x04, 0x12, 0x02, 0x01, 0x02};

		cr_assert_eq(decode_rc(v, sizeof(v)), -EINVAL);
		v[10] = 0x03;
		v[12] = 0x01; /* one value: fine */
		cr_assert_eq(decode_rc(v, sizeof(v) - 1), 0);
	}
	free(buf);
	profile_free(p);
}
