/* store_blob.c — the bytes of the store's rows: gzip in memory (each profile, dictionary chunk
 * and minute part is its own gzip member) and reading a row back as one uncompressed
 * profile.proto. A rolled-up row's profile is its dictionary's chunks 0..dict_seq-1, inflated
 * and concatenated, then its own inflated part (store_rollup.c explains why that is a valid
 * profile). Stored bytes are untrusted like any file: inflating is capped. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "store/store_impl.h"

/* The largest profile read back (the decoder's cap too). */
#define STORE_MAX_RAW (256u << 20)

int store_gzip(const uint8_t *in, size_t len, int level, uint8_t **out, size_t *outlen,
	       struct gs_error *err)
{
	z_stream zs = {0};
	uLong bound;
	uint8_t *buf;
	int zrc;

	*out = NULL;
	*outlen = 0;
	if (len > UINT_MAX / 2)
		return gs_error_set(err, -EFBIG, "store: profile too large");
	/* windowBits 15 + 16: a gzip member. */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return gs_error_set(err, -ENOMEM, "store: deflateInit2 failed");
	bound = deflateBound(&zs, (uLong)len);
	buf = malloc(bound ? bound : 1);
	if (!buf) {
		deflateEnd(&zs);
		return gs_error_set(err, -ENOMEM, "store: out of memory");
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
		return gs_error_set(err, -EIO, "store: deflate failed (%d)", zrc);
	}
	*out = buf;
	return 0;
}

int store_gunzip_append(const uint8_t *in, size_t n, uint8_t **buf, size_t *len, size_t *cap,
			struct gs_error *err)
{
	z_stream zs = {0};
	int zrc;

	if (n > UINT_MAX)
		return gs_error_set(err, -EINVAL, "store: stored blob too large");
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return gs_error_set(err, -ENOMEM, "store: inflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		if (*len == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64 * 1024;
			uint8_t *nb;

			if (*cap >= STORE_MAX_RAW) {
				zrc = Z_MEM_ERROR;
				break;
			}
			ncap = ncap > STORE_MAX_RAW ? STORE_MAX_RAW : ncap;
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
				    "store: bad or too large stored gzip data");
	return 0;
}

/* Appends the inflated chunks 0..nseq-1 of dictionary dict to buf. */
static int read_dict(struct store *s, int64_t dict, int64_t nseq, uint8_t **buf, size_t *len,
		     size_t *cap, struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t want = 0;
	int rc = sqlite3_prepare_v2(
		s->db,
		"SELECT seq, data FROM dict_chunks WHERE dict_id = ? AND seq < ? ORDER BY seq", -1,
		&st, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare dictionary read", err);
	sqlite3_bind_int64(st, 1, dict);
	sqlite3_bind_int64(st, 2, nseq);
	rc = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		/* A missing chunk would shift the string table: refuse it. */
		if (sqlite3_column_int64(st, 0) != want++)
			rc = gs_error_set(err, -EIO, "store: dictionary %lld misses chunk %lld",
					  (long long)dict, (long long)(want - 1));
		else
			rc = store_gunzip_append(sqlite3_column_blob(st, 1),
						 (size_t)sqlite3_column_bytes(st, 1), buf, len, cap,
						 err);
	}
	sqlite3_finalize(st);
	if (!rc && want != nseq)
		rc = gs_error_set(err, -EIO, "store: dictionary %lld has %lld of %lld chunks",
				  (long long)dict, (long long)want, (long long)nseq);
	return rc;
}

int store_row_pprof(struct store *s, int64_t id, uint8_t **out, size_t *outlen,
		    struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*outlen = 0;
	/* One read transaction: the row and its dictionary as of the same moment. */
	rc = store_exec(s, "BEGIN", err);
	if (rc)
		return rc;
	rc = sqlite3_prepare_v2(s->db, "SELECT dict_id, dict_seq, data FROM profiles WHERE id = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = store_sql_error(s, rc, "prepare row read", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = 0;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			rc = read_dict(s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				       &buf, &len, &cap, err);
		if (!rc)
			rc = store_gunzip_append(sqlite3_column_blob(st, 2),
						 (size_t)sqlite3_column_bytes(st, 2), &buf, &len,
						 &cap, err);
	} else if (rc == SQLITE_DONE) {
		rc = gs_error_set(err, -ENOENT, "store: no row %lld", (long long)id);
	} else {
		rc = store_sql_error(s, rc, "row read", err);
	}
	sqlite3_finalize(st);
out:
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = len;
	return 0;
}
