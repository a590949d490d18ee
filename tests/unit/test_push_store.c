/* test_push_store.c — the store as the push spool (agent/store/store_deliver.c) on a real
 * SQLite database: a version 1 store (made here with the version 1 schema, as the previous
 * goscope wrote it) migrated in place with its rows kept; windows stored with spool
 * undelivered and listed oldest first; marks; the backlog's size and age; rollup leaving
 * undelivered windows raw and rolling them up once delivered; retention counting the
 * undelivered rows it deletes as lost (and only those). */
#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/helpers/store_fixture.h"
#include "tests/unit/testutil.h"

#define SEC 1000000000LL
#define T0 (1700000040LL * SEC) /* a minute boundary */

/* The version 1 schema, as goscope wrote it before push (README history). */
static const char v1_schema[] =
	"PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
	"CREATE TABLE dicts(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, start_ticks INTEGER NOT"
	" NULL, type TEXT NOT NULL, created_ns INTEGER NOT NULL);"
	"CREATE TABLE dict_chunks(dict_id INTEGER NOT NULL REFERENCES dicts(id), seq INTEGER NOT"
	" NULL, data BLOB NOT NULL, PRIMARY KEY(dict_id, seq)) WITHOUT ROWID;"
	"CREATE TABLE profiles(id INTEGER PRIMARY KEY, type TEXT NOT NULL, service TEXT NOT NULL,"
	" pid INTEGER NOT NULL, start_ticks INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns"
	" INTEGER NOT NULL, labels TEXT NOT NULL, windows INTEGER NOT NULL DEFAULT 1, dict_id"
	" INTEGER REFERENCES dicts(id), dict_seq INTEGER, bytes INTEGER NOT NULL, data BLOB NOT"
	" NULL);"
	"CREATE INDEX profiles_service_type_time ON profiles(service, type, start_ns);"
	"CREATE INDEX profiles_end ON profiles(end_ns);"
	"CREATE INDEX profiles_dict ON profiles(dict_id) WHERE dict_id IS NOT NULL;"
	"INSERT INTO profiles(type, service, pid, start_ticks, start_ns, end_ns, labels, bytes,"
	" data) VALUES ('cpu', 'old', 1, 2, 3, 4, '{\"service_name\":\"old\"}', 1, x'00');"
	"PRAGMA user_version=1;";

static struct store *open_spool(const char *dir, bool spool, int64_t retention,
				int64_t rollup_after)
{
	struct store_config cfg = {.dir = dir,
				   .spool = spool,
				   .retention_ns = retention,
				   .rollup_after_ns = rollup_after};
	struct gs_error err = {0};
	struct store *s;
	int rc = store_open(&cfg, &s, &err);

	cr_assert_eq(rc, 0, "store_open: %d %s", rc, err.msg);
	return s;
}

static void put_at(struct store *s, int pid, int64_t start, uint64_t seed)
{
	struct profile *p = fx_window(seed, 50, 30, "api", pid);
	char pidbuf[16];
	struct store_label labels[] = {{"service_name", "api"}, {"pid", pidbuf}};
	struct gs_error err = {0};

	cr_assert_not_null(p);
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	cr_assert_eq(store_put(s,
			       &(struct store_window){.type = "cpu",
						      .service = "api",
						      .pid = pid,
						      .start_ticks = 100,
						      .start_ns = start,
						      .end_ns = start + 10 * SEC,
						      .labels = labels,
						      .nlabels = 2},
			       p, &err),
		     0, "%s", err.msg);
	profile_free(p);
}

static int64_t sql_int(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

struct seen {
	int64_t id[64], start[64];
	size_t n;
};

static int keep(void *arg, const struct store_pending *w)
{
	struct seen *s = arg;

	cr_assert_str_eq(w->type, "cpu");
	cr_assert(strstr(w->labels_json, "\"service_name\":\"api\""), "%s", w->labels_json);
	cr_assert_gt(w->len, 18);
	cr_assert(w->data[0] == 0x1f && w->data[1] == 0x8b, "gzip");
	s->id[s->n] = w->id;
	s->start[s->n++] = w->start_ns;
	return 0;
}

static size_t pending(struct store *s, struct seen *out)
{
	struct gs_error err = {0};

	memset(out, 0, sizeof(*out));
	cr_assert_eq(store_pending_list(s, 64, keep, out, &err), 0, "%s", err.msg);
	return out->n;
}

Test(push_store, version_1_store_is_migrated_in_place)
{
	char dir[256], path[300];
	sqlite3 *db;
	struct store *s;
	struct seen seen;

	tu_mkdtemp(dir, sizeof(dir), "pushstore");
	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	{
		/* A reader reads a version 1 store as it is (no write). */
		struct store_config cfg = {.dir = dir, .read_only = true};
		struct gs_error err = {0};
		struct store *ro;

		cr_assert_eq(store_open(&cfg, &ro, &err), 0, "%s", err.msg);
		store_close(ro);
		cr_assert_eq(sql_int(dir, "PRAGMA user_version"), 1);
	}
	s = open_spool(dir, true, 0, 0);
	cr_assert_eq(sql_int(dir, "PRAGMA user_version"), 2);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE service = 'old' AND"
				  " push_state IS NULL"),
		     1, "the old row kept, not for push");
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM sqlite_schema WHERE name ="
				  " 'profiles_push'"),
		     1);
	cr_assert_eq(pending(s, &seen), 0);
	put_at(s, 7, T0, 1);
	cr_assert_eq(pending(s, &seen), 1);
	store_close(s);
	/* Reopening a version 2 store changes nothing. */
	s = open_spool(dir, true, 0, 0);
	cr_assert_eq(pending(s, &seen), 1);
	store_close(s);
	tu_rmtree(dir);
}

Test(push_store, spool_order_marks_and_backlog)
{
	char dir[256];
	struct store *s, *pusher;
	struct seen seen;
	struct gs_error err = {0};
	uint64_t rows;
	int64_t oldest;

	tu_mkdtemp(dir, sizeof(dir), "pushstore");
	/* Without spool: nothing to push. */
	s = open_spool(dir, false, 0, 0);
	put_at(s, 1, T0 - 100 * SEC, 1);
	store_close(s);
	s = open_spool(dir, true, 0, 0);
	/* Stored out of time order on purpose: listed by start time. */
	put_at(s, 1, T0 + 20 * SEC, 2);
	put_at(s, 2, T0, 3);
	put_at(s, 1, T0 + 10 * SEC, 4);
	put_at(s, 2, T0 + 10 * SEC, 5);
	pusher = open_spool(dir, false, 0, 0); /* the pusher's own handle */
	cr_assert_eq(pending(pusher, &seen), 4);
	for (size_t i = 1; i < seen.n; i++)
		cr_assert_leq(seen.start[i - 1], seen.start[i]);
	cr_assert_eq(seen.start[0], T0);
	cr_assert_eq(store_pending_backlog(pusher, &rows, &oldest, &err), 0);
	cr_assert_eq(rows, 4);
	cr_assert_eq(oldest, T0);
	/* Deliver the first two, refuse the third. */
	cr_assert_eq(store_pending_mark(pusher, seen.id, 2, STORE_PUSH_DELIVERED, &err), 0);
	cr_assert_eq(store_pending_mark(pusher, seen.id + 2, 1, STORE_PUSH_REFUSED, &err), 0);
	/* A mark never goes back: delivered stays delivered. */
	cr_assert_eq(store_pending_mark(pusher, seen.id, 1, STORE_PUSH_REFUSED, &err), 0);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE push_state = 1"), 2);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE push_state = 2"), 1);
	cr_assert_eq(pending(s, &seen), 1, "the writer's handle sees the pusher's marks");
	cr_assert_eq(seen.start[0], T0 + 20 * SEC);
	cr_assert_eq(store_pending_backlog(s, &rows, &oldest, &err), 0);
	cr_assert_eq(rows, 1);
	cr_assert_eq(oldest, T0 + 20 * SEC);
	store_close(pusher);
	store_close(s);
	tu_rmtree(dir);
}

Test(push_store, rollup_leaves_undelivered_windows_raw)
{
	char dir[256];
	struct store *s;
	struct seen seen;
	struct gs_error err = {0};
	int64_t now = T0 + 3600 * SEC;

	tu_mkdtemp(dir, sizeof(dir), "pushstore");
	s = open_spool(dir, true, 0, 60 * SEC);
	for (int i = 0; i < 6; i++)
		put_at(s, 3, T0 + i * 10 * SEC, (uint64_t)i + 10);
	cr_assert_eq(store_maintain(s, now, &err), 0, "%s", err.msg);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE dict_id IS NULL"), 6,
		     "undelivered windows are not rolled up");
	cr_assert_eq(pending(s, &seen), 6);
	/* Half delivered: those roll up, the rest stay raw and undelivered. */
	cr_assert_eq(store_pending_mark(s, seen.id, 3, STORE_PUSH_DELIVERED, &err), 0);
	cr_assert_eq(store_maintain(s, now, &err), 0, "%s", err.msg);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE dict_id IS NOT NULL AND"
				  " windows = 3 AND push_state IS NULL"),
		     1);
	cr_assert_eq(pending(s, &seen), 3);
	cr_assert_eq(seen.start[0], T0 + 30 * SEC);
	cr_assert_eq(store_pending_mark(s, seen.id, 3, STORE_PUSH_DELIVERED, &err), 0);
	cr_assert_eq(store_maintain(s, now, &err), 0, "%s", err.msg);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles WHERE dict_id IS NULL"), 0);
	cr_assert_eq(sql_int(dir, "SELECT sum(windows) FROM profiles"), 6);
	store_close(s);
	tu_rmtree(dir);
}

Test(push_store, retention_counts_undelivered_rows_as_lost)
{
	char dir[256];
	struct store *s;
	struct seen seen;
	struct store_stats st;
	struct gs_error err = {0};

	tu_mkdtemp(dir, sizeof(dir), "pushstore");
	s = open_spool(dir, true, 600 * SEC, 0);
	for (int i = 0; i < 5; i++)
		put_at(s, 4, T0 + i * 10 * SEC, (uint64_t)i + 20);
	put_at(s, 4, T0 + 3000 * SEC, 99);
	cr_assert_eq(pending(s, &seen), 6);
	cr_assert_eq(store_pending_mark(s, seen.id, 2, STORE_PUSH_DELIVERED, &err), 0);
	/* The first five expire: two were delivered, three are lost. */
	cr_assert_eq(store_maintain(s, T0 + 3000 * SEC, &err), 0, "%s", err.msg);
	cr_assert_eq(store_rows_lost(s), 3);
	store_stats(s, &st);
	cr_assert_eq(st.rows_lost, 3);
	cr_assert_eq(st.rows_expired, 5);
	cr_assert_eq(pending(s, &seen), 1);
	store_close(s);
	tu_rmtree(dir);
}
