/* query_time.h — the time arguments of store queries (`goscope export --from`, and the HTTP
 * API's from=/to=): RFC 3339 ("2026-12-01T10:00:00Z", fractional seconds and offsets
 * allowed), Unix seconds ("1764583200"), relative to now ("-15m", "-1h30m", "-90s"), or "now".
 * Kept beside the store so that every reader of the store parses times the same way. */
#ifndef GOSCOPE_AGENT_STORE_QUERY_TIME_H
#define GOSCOPE_AGENT_STORE_QUERY_TIME_H

#include <stdint.h>

#include "goscope/error.h"

/* Unix nanoseconds in *out; -EINVAL with a message for anything else. */
int query_time_parse(const char *s, int64_t now_ns, int64_t *out, struct gs_error *err);

#endif
