/* store_deliver.c — the store as the push spool: each row's push_state (store.h), the
 * migration of a version 1 database that has none, and what the pusher (agent/push/) reads
 * and writes: the undelivered windows oldest first, their marking once the remote answered,
 * and the backlog's size and age.
 *
 * Why the store and not a queue of its own: a window is on disk once (the row), delivery
 * survives a restart or a SIGKILL (a row is marked only after the remote's 2xx, so at worst
 * the windows in flight are sent again, with the same ids), and --max-disk bounds the backlog
 * like every other row. Undelivered rows are left raw by the rollup (store_rollup.c) so that
 * each goes out as the window it was, with its own id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store_impl.h"

int store_migrate_v1(struct store *s, struct gs_error *err)
{
	int rc = store_exec(s, "ALTER TABLE profiles ADD COLUMN push_state INTEGER", err);

	if (!rc)
		rc = store_exec(s, STORE_PUSH_INDEX_SQL, err);
	if (!rc)
		rc = store_exec(s, "PRAGMA user_version=" STORE_SCHEMA_VERSION_STR, err);
	return rc;
}

int store_pending_list(struct store *s, size_t limit,
		       int (*fn)(void *arg, const struct store_pending *w), void *arg,
		       struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		    s->db,
		    "SELECT id, type, labels, pid, start_ticks, start_ns, end_ns, data"
		    " FROM profiles WHERE push_state = 0 AND dict_id IS NULL"
		    " ORDER BY start_ns, id LIMIT ?",
		    -1, &st, NULL),
	    step;

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare backlog read", err);
	sqlite3_bind_int64(st, 1, (int64_t)limit);
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *type = sqlite3_column_text(st, 1);
		const unsigned char *labels = sqlite3_column_text(st, 2);
		struct store_pending w = {
			.id = sqlite3_column_int64(st, 0),
			.type = type ? (const char *)type : "",
			.labels_json = labels ? (const char *)labels : "{}",
			.pid = (pid_t)sqlite3_column_int64(st, 3),
			.start_ticks = (uint64_t)sqlite3_column_int64(st, 4),
			.start_ns = sqlite3_column_int64(st, 5),
			.end_ns = sqlite3_column_int64(st, 6),
			.data = sqlite3_column_blob(st, 7),
			.len = (size_t)sqlite3_column_bytes(st, 7),
		};

		rc = fn(arg, &w);
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = store_sql_error(s, step, "backlog read", err);
	sqlite3_finalize(st);
	return rc;
}

int store_pending_mark(struct store *s, const int64_t *ids, size_t n, enum store_push_state state,
		       struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (n == 0)
		return 0;
	rc = store_exec(s, "BEGIN IMMEDIATE", err);
	if (rc)
		return rc;
	rc = sqlite3_prepare_v2(
		s->db, "UPDATE profiles SET push_state = ? WHERE id = ? AND push_state = 0", -1,
		&st, NULL);
	if (rc != SQLITE_OK) {
		rc = store_sql_error(s, rc, "prepare mark", err);
		store_rollback(s);
		return rc;
	}
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		int step;

		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, (int)state);
		sqlite3_bind_int64(st, 2, ids[i]);
		step = sqlite3_step(st);
		if (step != SQLITE_DONE)
			rc = store_sql_error(s, step, "mark", err);
	}
	sqlite3_finalize(st);
	if (!rc)
		rc = store_exec(s, "COMMIT", err);
	if (rc)
		store_rollback(s);
	return rc;
}

int store_pending_backlog(struct store *s, uint64_t *rows, int64_t *oldest_start_ns,
			  struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		s->db, "SELECT count(*), min(start_ns) FROM profiles WHERE push_state = 0", -1, &st,
		NULL);

	*rows = 0;
	*oldest_start_ns = 0;
	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare backlog count", err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*rows = (uint64_t)sqlite3_column_int64(st, 0);
		*oldest_start_ns = sqlite3_column_int64(st, 1);
		rc = 0;
	} else {
		rc = store_sql_error(s, rc, "backlog count", err);
	}
	sqlite3_finalize(st);
	return rc;
}

uint64_t store_rows_lost(struct store *s)
{
	return __atomic_load_n(&s->rows_lost, __ATOMIC_RELAXED);
}
