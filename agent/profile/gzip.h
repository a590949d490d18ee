/* gzip.h — gzip members in memory (agent/profile/gzip.c). */
#ifndef GOSCOPE_AGENT_PROFILE_GZIP_H
#define GOSCOPE_AGENT_PROFILE_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

/* One gzip member of in[0..len) at level (0-9) in a malloc'd *out. -ENOMEM, -EFBIG, -EIO. */
int gzip_compress(const uint8_t *in, size_t len, int level, uint8_t **out, size_t *outlen,
		  struct gs_error *err);
/* Inflates the gzip member in[0..n) and appends it to the malloc'd *buf (*len used of *cap;
 * all three may start at 0/NULL), growing it up to limit bytes in all. -EINVAL for bad or
 * truncated data, -ENOMEM past limit or out of memory; *buf stays the caller's to free. */
int gzip_inflate_append(const uint8_t *in, size_t n, size_t limit, uint8_t **buf, size_t *len,
			size_t *cap, struct gs_error *err);

#endif
