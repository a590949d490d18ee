/* store_blob.c — the bytes of the store's rows: gzip in memory (each profile, dictionary chunk
 * and minute part is its own gzip member) and reading a row back as one uncompressed
 * profile.proto. A rolled-up row's profile is its dictionary's chunks 0..dict_seq-1, inflated
 * and concatenated, then its own inflated part (store_rollup.c explains why that is a valid
 * profile). Stored bytes are untrusted like any file: inflating is capped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profile/gzip.h"
#include "store/store_impl.h"

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
			rc = gzip_inflate_append(sqlite3_column_blob(st, 1),
						 (size_t)sqlite3_column_bytes(st, 1), STORE_MAX_RAW,
						 buf, len, cap, err);
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
			rc = gzip_inflate_append(sqlite3_column_blob(st, 2),
						 (size_t)sqlite3_column_bytes(st, 2), STORE_MAX_RAW,
						 &buf, &len, &cap, err);
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
