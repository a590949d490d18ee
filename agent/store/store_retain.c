/* store_retain.c — keeping the store within its limits: rows older than the retention go,
 * the oldest rows go while the database and its WAL exceed --max-disk, dictionaries no row
 * uses any more go with them, and freed pages are returned to the filesystem
 * (incremental vacuum, then a truncating WAL checkpoint). Also store_maintain, which runs
 * the rollup (store_rollup.c) and these steps once per window. Every step is bounded. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "store/store_impl.h"

/* Rounds of "delete the oldest rows, give space back" per eviction. */
#define EVICT_ROUNDS 32
/* Batches of expired rows deleted per store_maintain call. */
#define EXPIRE_BATCHES 5

/* Runs a DELETE with up to two integer parameters. With lost, the statement ends in
 * "RETURNING push_state" and *lost gets the undelivered rows among those it deleted (the
 * pusher's lost windows, store_deliver.c). */
static int delete_where(struct store *s, const char *sql, int64_t a, int64_t b, int64_t *changes,
			uint64_t *lost, struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	int64_t returned = 0;
	uint64_t undelivered = 0;

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare delete", err);
	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, b);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		returned++;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
		    sqlite3_column_int(st, 0) == STORE_PUSH_PENDING)
			undelivered++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sql_error(s, rc, "delete", err);
	if (changes)
		*changes = lost ? returned : sqlite3_changes64(s->db);
	if (lost && undelivered) {
		*lost += undelivered;
		__atomic_add_fetch(&s->rows_lost, undelivered, __ATOMIC_RELAXED);
	}
	return 0;
}

int store_drop_unused_dicts(struct store *s, struct gs_error *err)
{
	int64_t ids[256];
	size_t n = 0;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT id FROM dicts WHERE NOT EXISTS (SELECT 1 FROM profiles"
				    " WHERE dict_id = dicts.id) LIMIT 256",
				    -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare dictionary scan", err);
	while (n < 256 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sql_error(s, rc, "dictionary scan", err);
	if (n == 0)
		return 0;
	rc = store_exec(s, "BEGIN IMMEDIATE", err);
	for (size_t i = 0; i < n && !rc; i++) {
		/* An open dictionary without rows would get its next chunk without the earlier
		 * ones: close it (its process's next minute starts a new one). */
		store_dict_forget(s, ids[i]);
		rc = delete_where(s, "DELETE FROM dict_chunks WHERE dict_id = ?", ids[i], 0, NULL,
				  NULL, err);
		if (!rc)
			rc = delete_where(s, "DELETE FROM dicts WHERE id = ?", ids[i], 0, NULL,
					  NULL, err);
	}
	if (!rc)
		rc = store_exec(s, "COMMIT", err);
	if (rc)
		store_rollback(s);
	return rc;
}

/* Returns freed pages to the filesystem: the database file shrinks at the checkpoint, and
 * the WAL is truncated. Best effort (a reader may hold the WAL). */
static void give_back(struct store *s)
{
	sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

int store_expire(struct store *s, int64_t now_ns, struct gs_error *err)
{
	int64_t changes = 0, total = 0;
	int rc = 0;

	if (s->cfg.retention_ns <= 0)
		return 0;
	for (int i = 0; i < EXPIRE_BATCHES && !rc; i++) {
		rc = delete_where(s,
				  "DELETE FROM profiles WHERE id IN (SELECT id FROM profiles"
				  " WHERE end_ns < ? ORDER BY end_ns LIMIT ?) RETURNING push_state",
				  now_ns - s->cfg.retention_ns, STORE_DELETE_BATCH, &changes,
				  &s->stats.rows_lost, err);
		total += changes;
		if (changes < STORE_DELETE_BATCH)
			break;
	}
	s->stats.rows_expired += (uint64_t)total;
	if (!rc && total)
		rc = store_drop_unused_dicts(s, err);
	return rc;
}

int store_evict_to(struct store *s, uint64_t target, struct gs_error *err)
{
	uint64_t size = store_disk_bytes(s);
	int rc;

	if (size <= target)
		return 0;
	give_back(s); /* pages freed earlier may be enough */
	for (int round = 0; round < EVICT_ROUNDS; round++) {
		int64_t rows = 0, n, changes = 0;
		sqlite3_stmt *st;

		size = store_disk_bytes(s);
		if (size <= target)
			return 0;
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM profiles", -1, &st, NULL) ==
		    SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				rows = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		if (rows == 0)
			break;
		/* The excess's share of the rows, and at least one more each round. */
		n = (int64_t)((double)rows * (double)(size - target) / (double)size) + 1;
		rc = delete_where(s,
				  "DELETE FROM profiles WHERE id IN (SELECT id FROM profiles"
				  " ORDER BY end_ns, id LIMIT ?) RETURNING push_state",
				  n, 0, &changes, &s->stats.rows_lost, err);
		if (rc)
			return rc;
		s->stats.rows_evicted += (uint64_t)changes;
		rc = store_drop_unused_dicts(s, err);
		if (rc)
			return rc;
		give_back(s);
	}
	if (store_disk_bytes(s) <= target)
		return 0;
	return gs_error_set(err, -ENOSPC,
			    "store: database and WAL (%llu bytes) stay above the %llu byte cap",
			    (unsigned long long)store_disk_bytes(s), (unsigned long long)target);
}

int store_maintain(struct store *s, int64_t now_ns, struct gs_error *err)
{
	int rc, first = 0;
	int64_t changes;
	bool changed;

	if (s->cfg.read_only)
		return gs_error_set(err, -EROFS, "store: opened read-only");
	changes = sqlite3_total_changes64(s->db);
	/* Expired rows are not worth rolling up: retention first. */
	rc = store_expire(s, now_ns, err);
	first = rc;
	rc = store_rollup(s, now_ns, first ? NULL : err);
	first = first ? first : rc;
	/* Rows went (expired, or windows rolled up into minutes): dictionaries may be unused
	 * and pages free. A call that changed nothing costs no checkpoint (an fsync) unless the
	 * WAL has grown. */
	changed = sqlite3_total_changes64(s->db) != changes;
	if (changed)
		rc = store_drop_unused_dicts(s, first ? NULL : err);
	first = first ? first : rc;
	if (changed || store_wal_bytes(s) > STORE_WAL_GIVE_BACK_BYTES)
		give_back(s);
	if (s->cfg.max_disk_bytes) {
		rc = store_evict_to(s, s->cfg.max_disk_bytes, first ? NULL : err);
		first = first ? first : rc;
	}
	if (first)
		s->stats.last_error = first;
	return first;
}
