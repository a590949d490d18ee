/* store.h — the agent's embedded profile store: one SQLite database (WAL mode) under the
 * data directory, one row per (process, profile type, window), rolled up into one row per
 * (process, type, minute) after a while, kept within an age and a size. The store knows
 * nothing of BPF, HTTP or Pyroscope: profiles go in as struct profile and come out as
 * struct profile (merged over a query) or as listings.
 *
 * The schema is documented in the README (users query it with the sqlite3 CLI).
 *
 * Crash safety: every store_put is one transaction; a process killed at any moment leaves
 * every committed window in place (SQLite's WAL). A full disk (SQLITE_FULL, ENOSPC) drops
 * the window being written, counts it (store_stats.windows_dropped) and returns -ENOSPC;
 * the next put tries again, so writing resumes when space returns.
 *
 * Threads: a struct store is used by one thread at a time. Readers in other threads open
 * their own handle on the same directory (store_open with read_only): WAL lets them read
 * while the writer writes. */
#ifndef GOSCOPE_AGENT_STORE_H
#define GOSCOPE_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "profile/profile.h"

struct store;

/* The database's file name under the data directory. */
#define STORE_DB_NAME "goscope.db"

struct store_config {
	const char *dir;	 /* data directory, created (0700) when missing */
	bool read_only;		 /* a reader's handle: no writes, no maintenance */
	int64_t retention_ns;	 /* rows whose window ended longer ago are deleted; 0 = keep */
	uint64_t max_disk_bytes; /* database + WAL at most this; oldest rows go first; 0 = no cap */
	int64_t rollup_after_ns; /* windows older than this are rolled up per minute; 0 = never */
	bool spool;		 /* windows are stored undelivered (push_state 0) for the pusher */
};

/* A label of a stored profile (also kept as a JSON object in the row). */
struct store_label {
	const char *key;
	const char *value;
};

/* What identifies and describes one stored window. */
struct store_window {
	const char *type;    /* "cpu", "block", ... */
	const char *service; /* service_name label */
	pid_t pid;
	uint64_t start_ticks; /* with pid, the process (/proc/PID/stat start time) */
	int64_t start_ns;     /* window start, Unix nanoseconds (wall clock) */
	int64_t end_ns;	      /* window end */
	const struct store_label *labels;
	size_t nlabels;
};

int store_open(const struct store_config *cfg, struct store **out, struct gs_error *err);

/* Stores one window's profile (encoded as pprof and gzipped here) in one transaction.
 * -ENOSPC when the disk or --max-disk is full even after evicting the oldest rows (the window
 * is dropped and counted); other -errno with a message. The profile is not changed. */
int store_put(struct store *s, const struct store_window *w, const struct profile *p,
	      struct gs_error *err);

/* Housekeeping, called by the agent once per window (bounded work per call: a call that
 * has more to do leaves it for the next): rolls up windows older than rollup_after into
 * minutes, deletes rows older than retention, evicts the oldest rows while database + WAL
 * exceed max_disk_bytes, checkpoints the WAL and returns freed pages to the filesystem.
 * now_ns: the wall clock (Unix ns). */
int store_maintain(struct store *s, int64_t now_ns, struct gs_error *err);

/* Which rows a listing or merge reads. NULL / 0 fields match everything. */
struct store_query {
	const char *service;
	const char *type;
	pid_t pid;
	int64_t from_ns;		 /* rows whose window overlaps [from_ns, to_ns) */
	int64_t to_ns;			 /* 0 = no upper bound */
	const struct store_label *match; /* every one must equal the row's label */
	size_t nmatch;
	size_t limit; /* listing only; 0 = no limit */
};

struct store_row_info {
	int64_t id;
	const char *type;
	const char *service;
	pid_t pid;
	uint64_t start_ticks;
	int64_t start_ns, end_ns;
	const char *labels_json; /* {"service_name":"...","pid":"123",...} */
	size_t bytes;		 /* stored size of the profile (gzip) */
	bool rolled_up;		 /* a minute made of several windows */
	unsigned windows;	 /* windows merged into the row (1 for a raw window) */
};

/* Calls fn for each matching row, oldest first; fn returning nonzero stops (and is returned). */
int store_list(struct store *s, const struct store_query *q,
	       int (*fn)(void *arg, const struct store_row_info *r), void *arg,
	       struct gs_error *err);

/* One profile of every matching row merged (samples with the same stack and labels summed).
 * -ENOENT when no row matches; -EINVAL when rows of different types would be merged. */
int store_merge(struct store *s, const struct store_query *q, struct profile **out,
		struct gs_error *err);

/* The uncompressed profile.proto of row id (as listed by store_list), whether a raw window
 * or a rolled-up minute (its dictionary's chunks then its own part): what `go tool pprof`
 * reads once gzipped or as is. malloc'd; -ENOENT when there is no such row. */
int store_read_pprof(struct store *s, int64_t id, uint8_t **buf, size_t *len, struct gs_error *err);

/* Counters since the open, and the current size of the store. */
struct store_stats {
	uint64_t windows_stored;  /* store_put that committed */
	uint64_t windows_dropped; /* store_put that could not store (disk full, I/O error) */
	uint64_t bytes_stored;	  /* gzip bytes of the committed windows */
	uint64_t rows_rolled_up;  /* windows merged into minutes */
	uint64_t minutes_written; /* rolled-up rows written */
	uint64_t rows_expired;	  /* deleted by retention */
	uint64_t rows_evicted;	  /* deleted to stay under max_disk_bytes */
	uint64_t rows;		  /* rows in the store now */
	uint64_t db_bytes;	  /* database file size */
	uint64_t wal_bytes;	  /* WAL file size */
	uint64_t cache_bytes;	  /* memory of SQLite's page cache for this handle */
	uint64_t rows_lost;	  /* undelivered windows deleted by retention or max_disk */
	int last_error;		  /* last put/maintain error (negative errno), 0 if none */
};
void store_stats(struct store *s, struct store_stats *out);

/* ---- the push spool (store_deliver.c) ----
 * Each row has a push_state: NULL when it is not for push (stored without spool, or a
 * rolled-up minute), else one of these. Undelivered rows are never rolled up (the pusher
 * sends raw windows, each with its own id); retention still deletes them, counted in
 * rows_lost. The pusher uses its own handle (store_open, not read-only) in its own thread. */
enum store_push_state {
	STORE_PUSH_PENDING = 0,	  /* stored, not delivered yet */
	STORE_PUSH_DELIVERED = 1, /* the remote answered 2xx */
	STORE_PUSH_REFUSED = 2, /* the remote refused it for good (4xx) or it exceeds its limits */
};

/* One undelivered window, valid during the callback only. */
struct store_pending {
	int64_t id;
	const char *type;
	const char *labels_json;
	pid_t pid;
	uint64_t start_ticks;
	int64_t start_ns, end_ns;
	const uint8_t *data; /* the gzipped pprof */
	size_t len;
};

/* Calls fn for up to limit undelivered windows, oldest first (start_ns, then id: the order
 * they were stored in, so every series is in time order); fn returning nonzero stops (and is
 * returned). */
int store_pending_list(struct store *s, size_t limit,
		       int (*fn)(void *arg, const struct store_pending *w), void *arg,
		       struct gs_error *err);

/* Sets the push_state of the rows ids[0..n) (undelivered ones only) in one transaction.
 * Rows deleted meanwhile are skipped. */
int store_pending_mark(struct store *s, const int64_t *ids, size_t n, enum store_push_state state,
		       struct gs_error *err);

/* The backlog: undelivered rows and the start of the oldest (0 when there is none). */
int store_pending_backlog(struct store *s, uint64_t *rows, int64_t *oldest_start_ns,
			  struct gs_error *err);

/* Undelivered rows deleted by retention since the open (cheap; callable from any thread). */
uint64_t store_rows_lost(struct store *s);

/* Closes the database (checkpointing the WAL). NULL is fine. */
void store_close(struct store *s);

#endif
