/* store.c — the agent's profile store (store.h): opening the SQLite database and creating or
 * checking its schema, storing a window, listing rows and merging them into one profile.
 * Rollup lives in store_rollup.c, retention in store_retain.c, gzip and reading a row back in
 * store_blob.c. The schema is documented in the README ("The store"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_impl.h"

/* The schema, version STORE_SCHEMA_VERSION. auto_vacuum is set before it (it only takes
 * effect on a database without tables). */
static const char schema_sql[] =
	"CREATE TABLE dicts(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  pid INTEGER NOT NULL,\n"
	"  start_ticks INTEGER NOT NULL,\n"
	"  type TEXT NOT NULL,\n"
	"  created_ns INTEGER NOT NULL);\n"
	"CREATE TABLE dict_chunks(\n"
	"  dict_id INTEGER NOT NULL REFERENCES dicts(id),\n"
	"  seq INTEGER NOT NULL,\n"
	"  data BLOB NOT NULL,\n"
	"  PRIMARY KEY(dict_id, seq)) WITHOUT ROWID;\n"
	"CREATE TABLE profiles(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  type TEXT NOT NULL,\n"
	"  service TEXT NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  start_ticks INTEGER NOT NULL,\n"
	"  start_ns INTEGER NOT NULL,\n"
	"  end_ns INTEGER NOT NULL,\n"
	"  labels TEXT NOT NULL,\n"
	"  windows INTEGER NOT NULL DEFAULT 1,\n"
	"  dict_id INTEGER REFERENCES dicts(id),\n"
	"  dict_seq INTEGER,\n"
	"  bytes INTEGER NOT NULL,\n"
	"  data BLOB NOT NULL,\n"
	"  push_state INTEGER);\n"
	"CREATE INDEX profiles_service_type_time ON profiles(service, type, start_ns);\n"
	"CREATE INDEX profiles_end ON profiles(end_ns);\n"
	"CREATE INDEX profiles_dict ON profiles(dict_id) WHERE dict_id IS NOT "
	"NULL;\n" STORE_PUSH_INDEX_SQL;

int store_sql_error(struct store *s, int rc, const char *what, struct gs_error *err)
{
	int prim = rc & 0xff, code;

	if (prim == SQLITE_FULL ||
	    (prim == SQLITE_IOERR && s->db && sqlite3_system_errno(s->db) == ENOSPC))
		code = -ENOSPC;
	else if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		code = -EBUSY;
	else if (prim == SQLITE_NOMEM)
		code = -ENOMEM;
	else if (prim == SQLITE_READONLY)
		code = -EROFS;
	else
		code = -EIO;
	return gs_error_set(err, code, "store: %s: %s", what,
			    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

int store_exec(struct store *s, const char *sql, struct gs_error *err)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_sql_error(s, rc, sql, err);
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t store_wal_bytes(struct store *s)
{
	return file_size(s->wal_path);
}

uint64_t store_disk_bytes(struct store *s)
{
	return file_size(s->path) + file_size(s->wal_path);
}

static int pragma_int(struct store *s, const char *sql, int64_t *out, struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, sql, err);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_sql_error(s, rc, sql, err);
}

/* Creates the schema in a new database, or checks the version of an existing one. */
static int schema_init(struct store *s, struct gs_error *err)
{
	int64_t version, tables;
	int rc;

	if (s->cfg.read_only) {
		rc = pragma_int(s, "PRAGMA user_version", &version, err);
		if (rc)
			return rc;
		goto check;
	}
	rc = store_exec(s, "BEGIN IMMEDIATE", err);
	if (rc)
		return rc;
	rc = pragma_int(s, "PRAGMA user_version", &version, err);
	if (!rc)
		rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema WHERE type='table'", &tables,
				err);
	if (!rc && version == 0 && tables == 0) {
		rc = store_exec(s, schema_sql, err);
		if (!rc)
			rc = store_exec(s, "PRAGMA user_version=" STORE_SCHEMA_VERSION_STR, err);
		version = STORE_SCHEMA_VERSION;
	} else if (!rc && version == STORE_SCHEMA_V1) {
		/* A version 1 store (before push): migrated in place, in this transaction. */
		rc = store_migrate_v1(s, err);
		version = STORE_SCHEMA_VERSION;
	}
	if (rc) {
		store_rollback(s);
		return rc;
	}
	rc = store_exec(s, "COMMIT", err);
	if (rc) {
		store_rollback(s);
		return rc;
	}
check:
	if (version > STORE_SCHEMA_VERSION)
		return gs_error_set(err, -EPROTO,
				    "store: %s has schema version %lld, newer than this goscope's "
				    "%d: run a newer goscope or use another data directory",
				    s->path, (long long)version, STORE_SCHEMA_VERSION);
	/* A reader never writes push_state: it reads a version 1 store as it is. */
	if (version != STORE_SCHEMA_VERSION && !(s->cfg.read_only && version == STORE_SCHEMA_V1))
		return gs_error_set(err, -EPROTO,
				    "store: %s is not a goscope store (schema version %lld)",
				    s->path, (long long)version);
	return 0;
}

static int open_db(struct store *s, struct gs_error *err)
{
	int flags = s->cfg.read_only ? SQLITE_OPEN_READONLY
				     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, s->path, err);
	sqlite3_extended_result_codes(s->db, 1);
	/* A reader and the writer (or a checkpoint) may hold the lock briefly. */
	sqlite3_busy_timeout(s->db, 5000);
	if (!s->cfg.read_only) {
		/* WAL: readers do not block the writer, and a killed writer leaves every
		 * committed transaction in place. synchronous=NORMAL with WAL syncs at
		 * checkpoints, not at each commit: a crash of the process loses nothing
		 * committed (the WAL write reached the OS), a power loss may lose the last
		 * commits but never corrupts the database — and each window costs no fsync. */
		/* First, before journal_mode writes the header of a new database and before the
		 * first table: freed pages can then be given back with incremental_vacuum (a full
		 * VACUUM would rewrite the whole database). No-op on an existing database. */
		rc = store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL", err);
		if (!rc)
			rc = store_exec(s, "PRAGMA journal_mode=WAL", err);
		if (!rc)
			rc = store_exec(s, "PRAGMA synchronous=NORMAL", err);
		/* After a checkpoint the WAL is cut back to this size (it counts on --max-disk). */
		if (!rc)
			rc = store_exec(s, "PRAGMA journal_size_limit=4194304", err);
		/* The writer appends windows and reads back only the minutes it rolls up: a small
		 * page cache does (SQLite's default, 2 MiB, would be most of the agent's growth). */
		if (!rc)
			rc = store_exec(s, "PRAGMA cache_size=" STORE_CACHE_KIB_PRAGMA, err);
		if (rc)
			return rc;
	}
	return schema_init(s, err);
}

int store_open(const struct store_config *cfg, struct store **out, struct gs_error *err)
{
	struct store *s;
	int rc;

	*out = NULL;
	if (!cfg || !cfg->dir || !*cfg->dir)
		return gs_error_set(err, -EINVAL, "store: no data directory");
	if (!cfg->read_only && mkdir(cfg->dir, 0700) < 0 && errno != EEXIST)
		return gs_error_set(err, -errno, "store: mkdir %s: %s", cfg->dir, strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s)
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	s->cfg = *cfg;
	s->dir = strdup(cfg->dir);
	if (s->dir && asprintf(&s->path, "%s/%s", cfg->dir, STORE_DB_NAME) < 0)
		s->path = NULL;
	if (s->path && asprintf(&s->wal_path, "%s-wal", s->path) < 0)
		s->wal_path = NULL;
	s->dicts = calloc(STORE_MAX_DICTS, sizeof(*s->dicts));
	if (!s->dir || !s->path || !s->wal_path || !s->dicts) {
		store_close(s);
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	}
	s->cfg.dir = s->dir;
	rc = open_db(s, err);
	if (rc) {
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_dicts_free(s);
	if (s->db) {
		if (!s->cfg.read_only)
			sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
						  NULL);
		sqlite3_close_v2(s->db);
	}
	free(s->dicts);
	free(s->dir);
	free(s->path);
	free(s->wal_path);
	free(s);
}

/* The window's labels as a JSON object, in the given order (a later duplicate key wins). */
static char *labels_json(const struct store_window *w)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	if (!o)
		return NULL;
	for (size_t i = 0; i < w->nlabels; i++) {
		const struct store_label *l = &w->labels[i];

		if (!l->key)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(o, l->key);
		if (!cJSON_AddStringToObject(o, l->key, l->value ? l->value : "")) {
			cJSON_Delete(o);
			return NULL;
		}
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* Room for a blob of n bytes under max_disk: evicts the oldest rows when needed. The WAL
 * grows by about the blob plus a few pages per commit. */
static int make_room(struct store *s, size_t n, struct gs_error *err)
{
	uint64_t need = n + 64 * 1024, cap = s->cfg.max_disk_bytes;

	if (!cap || store_disk_bytes(s) + need <= cap)
		return 0;
	if (need >= cap)
		return gs_error_set(err, -ENOSPC, "store: a window of %zu bytes exceeds max-disk",
				    n);
	return store_evict_to(s, cap - need, err);
}

static int insert_window(struct store *s, const struct store_window *w, const uint8_t *gz,
			 size_t gzlen, const char *labels, struct gs_error *err)
{
	static const char sql[] =
		"INSERT INTO profiles(type, service, pid, start_ticks, start_ns, end_ns, labels,"
		" windows, bytes, data, push_state) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare insert", err);
	sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, w->service ? w->service : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, w->pid);
	sqlite3_bind_int64(st, 4, (int64_t)w->start_ticks);
	sqlite3_bind_int64(st, 5, w->start_ns);
	sqlite3_bind_int64(st, 6, w->end_ns);
	sqlite3_bind_text(st, 7, labels, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (int64_t)gzlen);
	sqlite3_bind_blob(st, 9, gz, (int)gzlen, SQLITE_STATIC);
	/* Spooled for push: undelivered until the pusher marks it (store_deliver.c). */
	if (s->cfg.spool)
		sqlite3_bind_int(st, 10, STORE_PUSH_PENDING);
	else
		sqlite3_bind_null(st, 10);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = store_sql_error(s, rc, "insert window", err);
		store_rollback(s);
		return rc;
	}
	return 0;
}

int store_put(struct store *s, const struct store_window *w, const struct profile *p,
	      struct gs_error *err)
{
	uint8_t *raw = NULL, *gz = NULL;
	size_t rawlen, gzlen = 0;
	char *labels = NULL;
	int rc;

	if (s->cfg.read_only)
		return gs_error_set(err, -EROFS, "store: opened read-only");
	if (!w || !p || !w->type || !*w->type || w->end_ns < w->start_ns ||
	    (w->nlabels && !w->labels))
		return gs_error_set(err, -EINVAL, "store: bad window");
	rc = profile_encode(p, &raw, &rawlen, err);
	if (!rc)
		rc = gzip_compress(raw, rawlen, STORE_WINDOW_GZIP_LEVEL, &gz, &gzlen, err);
	free(raw);
	if (!rc && gzlen > INT32_MAX)
		rc = gs_error_set(err, -EFBIG, "store: profile too large (%zu bytes)", gzlen);
	if (!rc) {
		labels = labels_json(w);
		if (!labels)
			rc = gs_error_set(err, -ENOMEM, "store: out of memory");
	}
	if (!rc)
		rc = make_room(s, gzlen, err);
	if (!rc)
		rc = insert_window(s, w, gz, gzlen, labels, err);
	free(gz);
	cJSON_free(labels);
	if (rc) {
		s->stats.windows_dropped++;
		s->stats.last_error = rc;
		return rc;
	}
	s->stats.windows_stored++;
	s->stats.bytes_stored += gzlen;
	return 0;
}

/* ---- queries ---- */

/* Prepares the SELECT of the rows matching q (columns as in row_from). */
static int prepare_query(struct store *s, const struct store_query *q, sqlite3_stmt **out,
			 struct gs_error *err)
{
	char *sql = NULL;
	size_t sqllen = 0;
	FILE *f = open_memstream(&sql, &sqllen);
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	if (!f)
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	fputs("SELECT id, type, service, pid, start_ticks, start_ns, end_ns, labels, bytes,"
	      " dict_id IS NOT NULL, windows FROM profiles WHERE 1",
	      f);
	if (q->service)
		fputs(" AND service = ?", f);
	if (q->type)
		fputs(" AND type = ?", f);
	if (q->pid)
		fputs(" AND pid = ?", f);
	if (q->from_ns)
		fputs(" AND end_ns > ?", f);
	if (q->to_ns)
		fputs(" AND start_ns < ?", f);
	for (size_t i = 0; i < q->nmatch; i++) {
		const char *k = q->match[i].key;

		/* The key goes into a JSON path: "$.\"key\"" cannot hold a quote. */
		if (!k || !*k || strpbrk(k, "\"\\")) {
			fclose(f);
			free(sql);
			return gs_error_set(err, -EINVAL, "store: bad label key in a query");
		}
		fputs(" AND json_extract(labels, ?) = ?", f);
	}
	fputs(" ORDER BY start_ns, id", f);
	if (q->limit)
		fputs(" LIMIT ?", f);
	if (fclose(f) || !sql) {
		free(sql);
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	}
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare query", err);
	if (q->service)
		sqlite3_bind_text(st, ++n, q->service, -1, SQLITE_TRANSIENT);
	if (q->type)
		sqlite3_bind_text(st, ++n, q->type, -1, SQLITE_TRANSIENT);
	if (q->pid)
		sqlite3_bind_int64(st, ++n, q->pid);
	if (q->from_ns)
		sqlite3_bind_int64(st, ++n, q->from_ns);
	if (q->to_ns)
		sqlite3_bind_int64(st, ++n, q->to_ns);
	for (size_t i = 0; i < q->nmatch; i++) {
		char *path;

		if (asprintf(&path, "$.\"%s\"", q->match[i].key) < 0) {
			sqlite3_finalize(st);
			return gs_error_set(err, -ENOMEM, "store: out of memory");
		}
		sqlite3_bind_text(st, ++n, path, -1, free);
		sqlite3_bind_text(st, ++n, q->match[i].value ? q->match[i].value : "", -1,
				  SQLITE_TRANSIENT);
	}
	if (q->limit)
		sqlite3_bind_int64(st, ++n, (int64_t)q->limit);
	*out = st;
	return 0;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

static void row_from(sqlite3_stmt *st, struct store_row_info *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->type = col_text(st, 1);
	r->service = col_text(st, 2);
	r->pid = (pid_t)sqlite3_column_int64(st, 3);
	r->start_ticks = (uint64_t)sqlite3_column_int64(st, 4);
	r->start_ns = sqlite3_column_int64(st, 5);
	r->end_ns = sqlite3_column_int64(st, 6);
	r->labels_json = col_text(st, 7);
	r->bytes = (size_t)sqlite3_column_int64(st, 8);
	r->rolled_up = sqlite3_column_int(st, 9) != 0;
	r->windows = (unsigned)sqlite3_column_int64(st, 10);
}

int store_list(struct store *s, const struct store_query *q,
	       int (*fn)(void *arg, const struct store_row_info *r), void *arg,
	       struct gs_error *err)
{
	static const struct store_query all;
	sqlite3_stmt *st = NULL;
	int rc = prepare_query(s, q ? q : &all, &st, err), step;

	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row_info r;

		row_from(st, &r);
		rc = fn(arg, &r);
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = store_sql_error(s, step, "query", err);
	sqlite3_finalize(st);
	return rc;
}

int store_read_pprof(struct store *s, int64_t id, uint8_t **buf, size_t *len, struct gs_error *err)
{
	return store_row_pprof(s, id, buf, len, err);
}

/* The ids (and the first row's type) of a query's rows, for store_merge. */
struct merge_rows {
	int64_t *ids;
	size_t n, cap;
	char type[64];
	bool mixed;
};

static int collect_row(void *arg, const struct store_row_info *r)
{
	struct merge_rows *m = arg;

	if (m->n == 0)
		snprintf(m->type, sizeof(m->type), "%s", r->type);
	else if (strcmp(m->type, r->type) != 0)
		m->mixed = true;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		int64_t *n = realloc(m->ids, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->ids = n;
		m->cap = ncap;
	}
	m->ids[m->n++] = r->id;
	return 0;
}

int store_merge(struct store *s, const struct store_query *q, struct profile **out,
		struct gs_error *err)
{
	struct merge_rows m = {0};
	struct profile *dst = NULL;
	int rc;

	*out = NULL;
	rc = store_list(s, q, collect_row, &m, err);
	if (rc == -ENOMEM)
		gs_error_set(err, rc, "store: out of memory");
	if (!rc && m.n == 0)
		rc = gs_error_set(err, -ENOENT, "store: no profile matches");
	if (!rc && m.mixed)
		rc = gs_error_set(err, -EINVAL,
				  "store: the query matches profiles of several "
				  "types (give one type)");
	if (!rc) {
		dst = profile_new();
		if (!dst)
			rc = gs_error_set(err, -ENOMEM, "store: out of memory");
	}
	for (size_t i = 0; i < m.n && !rc; i++) {
		uint8_t *raw;
		size_t len;
		struct profile *p;

		rc = store_row_pprof(s, m.ids[i], &raw, &len, err);
		if (rc == -ENOENT)
			continue; /* deleted by the writer meanwhile */
		if (rc)
			break;
		rc = profile_decode(raw, len, &p, err);
		free(raw);
		if (rc) {
			gs_error_prefix(err, "store: row %lld", (long long)m.ids[i]);
			break;
		}
		rc = profile_merge(dst, p, err);
		profile_free(p);
	}
	free(m.ids);
	if (rc) {
		profile_free(dst);
		return rc;
	}
	*out = dst;
	return 0;
}

void store_stats(struct store *s, struct store_stats *out)
{
	int64_t rows = 0;

	*out = s->stats;
	if (pragma_int(s, "SELECT count(*) FROM profiles", &rows, NULL) == 0)
		out->rows = (uint64_t)rows;
	out->db_bytes = file_size(s->path);
	out->wal_bytes = file_size(s->wal_path);
	{
		int cur = 0, hi = 0;

		if (sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) == SQLITE_OK)
			out->cache_bytes = (uint64_t)cur;
	}
}
