/* test_golabels.c — the userspace half of pprof labels (agent/stacks/golabels.c): a label set
 * as BPF hands it over (lengths not trusted) turned into profile labels, sorted by key, with
 * the strings cut where BPF's limits say, and never a label the profile would refuse. */
#include <criterion/criterion.h>
#include <string.h>

#include "profile/profile.h"
#include "stacks/golabels.h"

static void set_label(struct gs_labels *ls, int i, const char *k, const char *v)
{
	ls->v[i].key_len = (__u8)strlen(k);
	memcpy(ls->v[i].key, k, strlen(k));
	ls->v[i].value_len = (__u8)strlen(v);
	memcpy(ls->v[i].value, v, strlen(v));
}

Test(golabels, sorted_by_key)
{
	struct gs_labels ls = {.n = 3};
	struct golabels_strs strs;
	struct profile_label out[GS_LABELS_MAX];

	set_label(&ls, 0, "work", "a");
	set_label(&ls, 1, "route", "/c");
	set_label(&ls, 2, "job", "");
	cr_assert_eq(golabels_to_profile(&ls, &strs, out, GS_LABELS_MAX), 3);
	cr_assert_str_eq(out[0].key, "job");
	cr_assert_str_eq(out[0].str, "");
	cr_assert_str_eq(out[1].key, "route");
	cr_assert_str_eq(out[1].str, "/c");
	cr_assert_str_eq(out[2].key, "work");
	cr_assert_str_eq(out[2].str, "a");
}

/* Counts and lengths beyond the limits (corrupt or hostile) are cut, never overrun. */
Test(golabels, bounds_not_trusted)
{
	struct gs_labels ls;
	struct golabels_strs strs;
	struct profile_label out[GS_LABELS_MAX];

	memset(&ls, 'x', sizeof(ls));
	ls.n = 255;
	for (int i = 0; i < GS_LABELS_MAX; i++) {
		ls.v[i].key_len = 255;
		ls.v[i].value_len = 255;
	}
	cr_assert_eq(golabels_to_profile(&ls, &strs, out, GS_LABELS_MAX), GS_LABELS_MAX);
	for (int i = 0; i < GS_LABELS_MAX; i++) {
		cr_assert_eq(strlen(out[i].key), GS_LABEL_KEY_LEN);
		cr_assert_eq(strlen(out[i].str), GS_LABEL_VALUE_LEN);
	}
	cr_assert_eq(golabels_to_profile(&ls, &strs, out, 2), 2);
}

/* A label without a key never reaches the profile (which refuses one, and the agent with it):
 * Go's pprof.Labels("", v), a key BPF could not read (length 0), one starting with a NUL. */
Test(golabels, keyless_labels_left_out)
{
	struct gs_labels ls = {.n = 4};
	struct golabels_strs strs;
	struct profile_label out[GS_LABELS_MAX];

	set_label(&ls, 0, "work", "a");
	set_label(&ls, 1, "", "empty");
	set_label(&ls, 2, "route", "/c");
	ls.v[3].key_len = 3; /* "\0ab" */
	memcpy(ls.v[3].key, "\0ab", 3);
	ls.v[3].value_len = 1;
	ls.v[3].value[0] = 'v';
	cr_assert_eq(golabels_to_profile(&ls, &strs, out, GS_LABELS_MAX), 2);
	cr_assert_str_eq(out[0].key, "route");
	cr_assert_str_eq(out[0].str, "/c");
	cr_assert_str_eq(out[1].key, "work");
	cr_assert_str_eq(out[1].str, "a");

	/* Every key unreadable: no labels at all. */
	memset(&ls, 0, sizeof(ls));
	ls.n = GS_LABELS_MAX;
	ls.flags = GS_LABELS_UNREAD;
	cr_assert_eq(golabels_to_profile(&ls, &strs, out, GS_LABELS_MAX), 0);
}

#define RANDOM_SETS 20000

/* Whatever BPF hands over (random bytes here: lengths, flags, NULs anywhere), the labels made
 * from it are accepted by the profile: a sample is never refused for its pprof labels. */
Test(golabels, any_set_makes_an_acceptable_sample)
{
	struct profile *p = profile_new();
	struct gs_labels ls;
	struct golabels_strs strs;
	struct profile_label out[GS_LABELS_MAX];
	struct gs_error err = {0};
	int64_t one = 1;
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	cr_assert_not_null(p);
	cr_assert_eq(profile_add_sample_type(p, "samples", "count"), 0);
	for (int r = 0; r < RANDOM_SETS; r++) {
		unsigned char *b = (unsigned char *)&ls;
		size_t n;

		for (size_t i = 0; i < sizeof(ls); i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
			/* Mostly small bytes: short lengths, NULs, few labels. */
			b[i] = (unsigned char)(x & (r & 1 ? 0x0f : 0xff));
		}
		n = golabels_to_profile(&ls, &strs, out, GS_LABELS_MAX);
		cr_assert_leq(n, GS_LABELS_MAX);
		cr_assert_eq(profile_add_sample(p, NULL, 0, &one, out, n, &err), 0, "set %d: %s", r,
			     err.msg);
	}
	profile_free(p);
}
