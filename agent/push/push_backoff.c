/* push_backoff.c — backoff with jitter and Retry-After (push_backoff.h). */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>

#include "push/push_backoff.h"

/* xorshift64*: the jitter needs no more. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x2545f4914f6cdd1dULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

uint64_t push_backoff_ms(unsigned attempt, uint64_t max_ms, uint64_t *rng)
{
	uint64_t cap = PUSH_BACKOFF_MIN_MS;

	if (!max_ms)
		max_ms = PUSH_BACKOFF_MAX_MS;
	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return cap / 2 + next_rand(rng) % (cap - cap / 2 + 1);
}

int64_t push_retry_after_ms(const char *value, int64_t now_s)
{
	const char *p = value;
	int64_t ms;

	if (!p)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		char *end;
		unsigned long long s;

		errno = 0;
		s = strtoull(p, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno || *end)
			return -1;
		ms = s > PUSH_BACKOFF_MAX_MS / 1000 ? (int64_t)PUSH_BACKOFF_MAX_MS
						    : (int64_t)s * 1000;
		return ms;
	} else {
		time_t t = curl_getdate(p, NULL);

		if (t < 0)
			return -1;
		ms = ((int64_t)t - now_s) * 1000;
		if (ms < 0)
			ms = 0;
		return ms > (int64_t)PUSH_BACKOFF_MAX_MS ? (int64_t)PUSH_BACKOFF_MAX_MS : ms;
	}
}
