/* store_fixture.h — profiles for the store's tests (unit and integration): windows shaped like
 * the agent's CPU windows (one executable mapping, Go-like function names, inlined frames,
 * labels on every sample), and a per-stack view of an encoded profile read through the
 * independent test decoder (tests/helpers/pprof_decode.c), so that "the rolled-up minute
 * equals the sum of its windows" compares stacks by function names and labels, not by ids.
 * Plain C, no Criterion. */
#ifndef GOSCOPE_TESTS_STORE_FIXTURE_H
#define GOSCOPE_TESTS_STORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* A CPU-like window: nsamples samples (stacks drawn from seed) over nfuncs functions, with
 * the labels service_name=service and pid=pid on every sample. NULL on ENOMEM. */
struct profile *fx_window(uint64_t seed, size_t nsamples, size_t nfuncs, const char *service,
			  int pid);

/* One stack: "leaf;caller;...|key=value,..." and its values (samples, cpu). */
struct fx_stack {
	char *key;
	int64_t v[2];
};
struct fx_stacks {
	struct fx_stack *s;
	size_t n;
};

/* The stacks of an uncompressed or gzipped profile.proto, sorted, equal stacks summed;
 * 0 or -1 with why. */
int fx_stacks_of_pprof(const uint8_t *buf, size_t len, struct fx_stacks *out, char *why,
		       size_t why_len);
/* The same for a struct profile (encoded first). */
int fx_stacks_of(const struct profile *p, struct fx_stacks *out, char *why, size_t why_len);
/* Adds b's stacks to a (a stays sorted); 0 or -1. */
int fx_stacks_add(struct fx_stacks *a, const struct fx_stacks *b);
/* NULL when equal, else a static description of the first difference. */
const char *fx_stacks_diff(const struct fx_stacks *a, const struct fx_stacks *b);
int64_t fx_stacks_total(const struct fx_stacks *a, int which);
void fx_stacks_free(struct fx_stacks *a);

#endif
