/* push_backoff.h — when to try again after a failed push: exponential backoff from
 * PUSH_BACKOFF_MIN_MS doubling up to PUSH_BACKOFF_MAX_MS, with jitter (each delay drawn
 * uniformly from its upper half, so that many agents that failed together do not retry
 * together), and the server's Retry-After honoured (within the same cap). Pure functions:
 * the caller keeps the attempt count and the random state. */
#ifndef GOSCOPE_AGENT_PUSH_BACKOFF_H
#define GOSCOPE_AGENT_PUSH_BACKOFF_H

#include <stdint.h>

#define PUSH_BACKOFF_MIN_MS 500ULL
#define PUSH_BACKOFF_MAX_MS (5ULL * 60 * 1000)

/* The delay before retry number attempt (0 for the first retry) in ms, in
 * [cap/2, cap] where cap = min(MIN << attempt, max_ms) (max_ms 0: PUSH_BACKOFF_MAX_MS);
 * *rng is advanced (never 0 after). */
uint64_t push_backoff_ms(unsigned attempt, uint64_t max_ms, uint64_t *rng);

/* The delay a Retry-After header value asks for, in ms: delta-seconds, or an HTTP date
 * (against now_s, Unix seconds); capped at PUSH_BACKOFF_MAX_MS; -1 when it cannot be read. */
int64_t push_retry_after_ms(const char *value, int64_t now_s);

#endif
