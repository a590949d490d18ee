/* store_impl.h — the layout of struct store and the helpers shared by the store's files,
 * private to agent/store/: store.c (open, schema, put, list, merge), store_blob.c (gzip and
 * reading a row back as a profile), store_rollup.c (minutes and dictionaries) and
 * store_retain.c (age, size, space returned). */
#ifndef GOSCOPE_AGENT_STORE_IMPL_H
#define GOSCOPE_AGENT_STORE_IMPL_H

#include <sqlite3.h>

#include "profile/gzip.h"
#include "store/store.h"

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 2
#define STORE_SCHEMA_VERSION_STR "2"
/* The first schema (no push_state), migrated in place by a writer (store_deliver.c). */
#define STORE_SCHEMA_V1 1
/* The backlog of undelivered windows, oldest first (what the pusher reads). */
#define STORE_PUSH_INDEX_SQL                                                                       \
	"CREATE INDEX profiles_push ON profiles(start_ns, id) WHERE push_state = 0;\n"

/* One open rollup dictionary: the tables (strings, mappings, functions, locations) of one
 * (process, type), of which the chunks up to mark are in dict_chunks. */
struct store_dict {
	int64_t id; /* dicts.id; 0 = not written yet */
	pid_t pid;
	uint64_t start_ticks;
	char type[32];
	struct profile *prof;
	struct profile_dict_mark mark;
	int64_t next_seq;
	uint64_t last_used;
	int64_t last_minute; /* the last minute rolled up into it (Unix minutes) */
};

/* At most this many dictionaries are kept open; the least recently used one is closed (the
 * next minute of its process starts a new dictionary). */
#define STORE_MAX_DICTS 256
/* Minutes rolled up per store_maintain call (a backlog is worked off over several calls). */
#define STORE_ROLLUP_PER_CALL 64
/* Rows deleted per retention statement. */
#define STORE_DELETE_BATCH 2000

struct store {
	sqlite3 *db;
	char *dir, *path, *wal_path;
	struct store_config cfg;
	struct store_stats stats;
	/* Undelivered rows deleted by retention (read by the agent thread with
	 * store_rows_lost while this thread is the writer: a relaxed atomic). */
	uint64_t rows_lost;
	struct store_dict *dicts; /* STORE_MAX_DICTS slots, prof == NULL when free */
	uint64_t dict_clock;
};

/* An sqlite error as -errno with a message: SQLITE_FULL (and an I/O error with ENOSPC)
 * is -ENOSPC, SQLITE_BUSY/LOCKED -EBUSY, SQLITE_NOMEM -ENOMEM, the rest -EIO. */
int store_sql_error(struct store *s, int rc, const char *what, struct gs_error *err);
/* Runs SQL without results; -errno as store_sql_error. */
int store_exec(struct store *s, const char *sql, struct gs_error *err);
/* Rolls back the open transaction, if any. */
void store_rollback(struct store *s);
/* The WAL file's size in bytes. */
uint64_t store_wal_bytes(struct store *s);
/* store_maintain checkpoints (and truncates) a WAL grown past this even when nothing was
 * deleted. */
#define STORE_WAL_GIVE_BACK_BYTES (1u << 20)
/* The database + WAL size in bytes (the pages in use and the WAL file). */
uint64_t store_disk_bytes(struct store *s);

/* Rows are gzip members (profile/gzip.h). Windows are written at level 1 (as Go's
 * runtime/pprof: the put is on the agent's capture path), rollups at STORE_ROLLUP_GZIP_LEVEL
 * (background work, kept for the whole retention). */
#define STORE_WINDOW_GZIP_LEVEL 1
#define STORE_ROLLUP_GZIP_LEVEL 9
/* The writer's page cache (PRAGMA cache_size, negative: KiB). */
#define STORE_CACHE_KIB_PRAGMA "-512"
/* The largest profile read back from a row (the decoder's cap too). */
#define STORE_MAX_RAW (256u << 20)
/* The uncompressed profile.proto of row id: data alone, or the dictionary's chunks then
 * the row's own part. -ENOENT when there is no such row. */
int store_row_pprof(struct store *s, int64_t id, uint8_t **buf, size_t *len, struct gs_error *err);

/* Adds push_state and its index to a version 1 database (inside the caller's transaction) and
 * sets user_version to STORE_SCHEMA_VERSION. */
int store_migrate_v1(struct store *s, struct gs_error *err);

/* Rollup step of store_maintain. */
int store_rollup(struct store *s, int64_t now_ns, struct gs_error *err);
/* Retention steps of store_maintain; evict_to also runs from store_put. */
int store_expire(struct store *s, int64_t now_ns, struct gs_error *err);
/* Deletes the oldest rows until database + WAL <= target bytes (bounded rounds); returns
 * 0 when under target, -ENOSPC when it could not get there. */
int store_evict_to(struct store *s, uint64_t target, struct gs_error *err);
/* Deletes dictionaries no row uses any more (closing the open ones among them). */
int store_drop_unused_dicts(struct store *s, struct gs_error *err);
/* Closes the open dictionary with this id, if any (its rows are gone). */
void store_dict_forget(struct store *s, int64_t id);
/* Frees the rollup dictionaries. */
void store_dicts_free(struct store *s);

#endif
