/* gzip.c — gzip members in memory: compressing one, and inflating one with a cap on its
 * size. One implementation for every reader of gzip data that may be hostile or corrupt (a
 * pprof handed to the decoder, a row of the store). The streaming writer of profiles is
 * sink.c's. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "profile/gzip.h"

int gzip_compress(const uint8_t *in, size_t len, int level, uint8_t **out, size_t *outlen,
		  struct gs_error *err)
{
	z_stream zs = {0};
	uLong bound;
	uint8_t *buf;
	int zrc;

	*out = NULL;
	*outlen = 0;
	if (len > UINT_MAX / 2)
		return gs_error_set(err, -EFBIG, "gzip: input too large");
	/* windowBits 15 + 16: a gzip member. */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return gs_error_set(err, -ENOMEM, "gzip: deflateInit2 failed");
	bound = deflateBound(&zs, (uLong)len);
	buf = malloc(bound ? bound : 1);
	if (!buf) {
		deflateEnd(&zs);
		return gs_error_set(err, -ENOMEM, "gzip: out of memory");
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	zrc = deflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	if (zrc != Z_STREAM_END) {
		free(buf);
		return gs_error_set(err, -EIO, "gzip: deflate failed (%d)", zrc);
	}
	*out = buf;
	return 0;
}

int gzip_inflate_append(const uint8_t *in, size_t n, size_t limit, uint8_t **buf, size_t *len,
			size_t *cap, struct gs_error *err)
{
	z_stream zs = {0};
	int zrc;

	if (n > UINT_MAX)
		return gs_error_set(err, -EINVAL, "gzip: input too large");
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return gs_error_set(err, -ENOMEM, "gzip: inflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		if (*len == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64 * 1024;
			uint8_t *nb;

			if (*cap >= limit) {
				zrc = Z_MEM_ERROR;
				break;
			}
			ncap = ncap > limit ? limit : ncap;
			nb = realloc(*buf, ncap);
			if (!nb) {
				zrc = Z_MEM_ERROR;
				break;
			}
			*buf = nb;
			*cap = ncap;
		}
		zs.next_out = *buf + *len;
		zs.avail_out = (uInt)(*cap - *len);
		zrc = inflate(&zs, Z_NO_FLUSH);
		*len = *cap - zs.avail_out;
		if (zrc == Z_STREAM_END || (zrc != Z_OK && zrc != Z_BUF_ERROR))
			break;
		if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
			zrc = Z_DATA_ERROR; /* truncated */
			break;
		}
	}
	inflateEnd(&zs);
	if (zrc != Z_STREAM_END)
		return gs_error_set(err, zrc == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
				    "bad gzip data, or more than %zu bytes inflated", limit);
	return 0;
}
