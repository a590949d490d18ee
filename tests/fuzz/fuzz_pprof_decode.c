/* fuzz_pprof_decode.c — libFuzzer target for profile_decode (agent/profile/pprof_decode.c):
 * any bytes, gzip-compressed or not, either decode into a profile or are refused with
 * -EINVAL/-ENOMEM; a decoded profile must encode again and decode to the same sample count
 * (every id it kept is valid). Seeds: tests/fuzz/corpus/pprof-*.pb(.gz). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile *p = NULL, *q = NULL;
	struct gs_error err;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = profile_decode(data, size, &p, &err);

	if (rc) {
		if (p || (rc != -EINVAL && rc != -ENOMEM))
			abort();
		return 0;
	}
	if (profile_encode(p, &buf, &len, &err) != 0)
		abort();
	if (profile_decode(buf, len, &q, &err) != 0 ||
	    profile_sample_count(q) != profile_sample_count(p))
		abort();
	free(buf);
	profile_free(p);
	profile_free(q);
	return 0;
}
