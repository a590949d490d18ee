/* store_rollup.c — rolling up raw windows into one row per (process, type, wall-clock minute),
 * and deduplicating what every window repeats.
 *
 * Every window of a process carries the same string table, mappings, functions and
 * locations; only its samples differ. The rollup keeps, per (process, type), a dictionary: a
 * struct profile whose tables only grow (the model keeps them in insertion order with
 * positional ids). For each minute it clears the dictionary's samples, merges the minute's
 * windows into it (profile_merge: same stack and labels summed), then writes
 *   - the dictionary delta: the tables' entries added since the last chunk (profile.h's
 *     profile_encode_dict_delta), as the next row of dict_chunks, when there are any;
 *   - the minute's own part (sample types, samples, period, time, comments, default type)
 *     as the profiles row, with dict_id and dict_seq (the number of chunks it needs),
 * and deletes the raw windows, all in one transaction. Protobuf repeated fields concatenate
 * and the string table is positional, so chunks 0..dict_seq-1 followed by the part are one
 * valid profile.proto (store_blob.c reads it back that way).
 *
 * Dictionaries live in memory only while the agent runs: at most STORE_MAX_DICTS are open
 * (the least recently used is closed; its process's next minute starts a new dictionary),
 * one unused for DICT_IDLE_MINUTES is closed (its process exited or went idle),
 * and a restarted agent starts new ones. Work per call is bounded (STORE_ROLLUP_PER_CALL
 * minutes), so a backlog is worked off over several calls.
 *
 * Windows not yet delivered to the push remote (push_state 0, store_deliver.c) are left raw:
 * each must go out as the window it was, with its own id, and a minute merging delivered
 * and undelivered windows could not say which part was sent. They are rolled up once
 * delivered (or refused); a minute row has push_state NULL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

#define MINUTE_NS 60000000000LL
/* Windows merged into one minute row per call (more in a minute are left for the next). */
#define MAX_WINDOWS_PER_MINUTE 600
/* A dictionary grown past this many entries is closed and a new one started, so that a
 * process with ever new strings (labels) does not keep an ever larger one in memory. */
#define DICT_MAX_ENTRIES 1000000
/* A dictionary no minute used for this long (in the rolled-up data's time) is closed: the
 * processes that exited (or went idle) do not hold memory until the least recently used
 * slot is needed. A process seen again later starts a new dictionary. */
#define DICT_IDLE_MINUTES 10

struct minute {
	pid_t pid;
	uint64_t start_ticks;
	char type[32];
	int64_t minute;
};

static void dict_close(struct store_dict *d)
{
	profile_free(d->prof);
	memset(d, 0, sizeof(*d));
}

void store_dicts_free(struct store *s)
{
	if (!s->dicts)
		return;
	for (size_t i = 0; i < STORE_MAX_DICTS; i++)
		dict_close(&s->dicts[i]);
}

/* The open dictionary of (pid, start_ticks, type), or a new one in a free or the least
 * recently used slot; NULL on ENOMEM. */
static struct store_dict *dict_get(struct store *s, const struct minute *m)
{
	struct store_dict *victim = NULL;

	for (size_t i = 0; i < STORE_MAX_DICTS; i++) {
		struct store_dict *d = &s->dicts[i];

		if (d->prof && d->pid == m->pid && d->start_ticks == m->start_ticks &&
		    strcmp(d->type, m->type) == 0) {
			d->last_used = ++s->dict_clock;
			return d;
		}
		if (!victim || (victim->prof && (!d->prof || d->last_used < victim->last_used)))
			victim = d;
	}
	dict_close(victim);
	victim->prof = profile_new();
	if (!victim->prof)
		return NULL;
	victim->pid = m->pid;
	victim->start_ticks = m->start_ticks;
	snprintf(victim->type, sizeof(victim->type), "%s", m->type);
	victim->last_used = ++s->dict_clock;
	return victim;
}

void store_dict_forget(struct store *s, int64_t id)
{
	for (size_t i = 0; i < STORE_MAX_DICTS; i++) {
		if (s->dicts[i].prof && s->dicts[i].id == id)
			dict_close(&s->dicts[i]);
	}
}

/* The raw windows of one minute, read and decoded. */
struct windows {
	int64_t ids[MAX_WINDOWS_PER_MINUTE];
	struct profile *profs[MAX_WINDOWS_PER_MINUTE];
	size_t n;
	int64_t start_ns, end_ns;
	char *service, *labels;
};

static void windows_free(struct windows *w)
{
	for (size_t i = 0; i < w->n; i++)
		profile_free(w->profs[i]);
	free(w->service);
	free(w->labels);
}

static int read_windows(struct store *s, const struct minute *m, int64_t cutoff, struct windows *w,
			struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		s->db,
		"SELECT id, service, labels, start_ns, end_ns FROM profiles WHERE dict_id IS NULL"
		" AND push_state IS NOT 0 AND pid = ? AND start_ticks = ? AND type = ? AND "
		"start_ns >= ? AND start_ns < ?"
		" AND end_ns < ? ORDER BY start_ns, id LIMIT ?",
		-1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare rollup read", err);
	sqlite3_bind_int64(st, 1, m->pid);
	sqlite3_bind_int64(st, 2, (int64_t)m->start_ticks);
	sqlite3_bind_text(st, 3, m->type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, m->minute * MINUTE_NS);
	sqlite3_bind_int64(st, 5, (m->minute + 1) * MINUTE_NS);
	sqlite3_bind_int64(st, 6, cutoff);
	sqlite3_bind_int64(st, 7, MAX_WINDOWS_PER_MINUTE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t start = sqlite3_column_int64(st, 3), end = sqlite3_column_int64(st, 4);

		if (w->n == 0) {
			w->service = strdup((const char *)sqlite3_column_text(st, 1));
			w->labels = strdup((const char *)sqlite3_column_text(st, 2));
			w->start_ns = start;
			w->end_ns = end;
		}
		w->start_ns = start < w->start_ns ? start : w->start_ns;
		w->end_ns = end > w->end_ns ? end : w->end_ns;
		w->ids[w->n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sql_error(s, rc, "rollup read", err);
	if (w->n && (!w->service || !w->labels))
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	for (size_t i = 0; i < w->n; i++) {
		uint8_t *raw;
		size_t len;

		w->profs[i] = NULL;
		rc = store_row_pprof(s, w->ids[i], &raw, &len, err);
		if (!rc) {
			rc = profile_decode(raw, len, &w->profs[i], err);
			free(raw);
		}
		if (rc)
			return gs_error_prefix(err, "store: rollup of row %lld",
					       (long long)w->ids[i]);
	}
	return 0;
}

/* Merges the minute's windows into the dictionary's cleared samples. A dictionary of other
 * sample types (a changed profile layout) is replaced by a new one. */
static int merge_minute(struct store *s, const struct minute *m, struct store_dict **dp,
			const struct windows *w, struct gs_error *err)
{
	struct store_dict *d = *dp;
	int rc = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		profile_clear_samples(d->prof);
		for (size_t i = 0; i < w->n && !rc; i++)
			rc = profile_merge(d->prof, w->profs[i], err);
		if (rc != -EINVAL || attempt == 1)
			return rc;
		dict_close(d);
		d = *dp = dict_get(s, m);
		if (!d)
			return gs_error_set(err, -ENOMEM, "store: out of memory");
		rc = 0;
	}
	return rc;
}

static int exec_bound(struct store *s, const char *sql, const int64_t *v, int n, const void *blob,
		      size_t bloblen, const char *t1, const char *t2, const char *t3,
		      int64_t *rowid, struct gs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), col = 0;

	if (rc != SQLITE_OK)
		return store_sql_error(s, rc, "prepare rollup write", err);
	if (t1)
		sqlite3_bind_text(st, ++col, t1, -1, SQLITE_STATIC);
	if (t2)
		sqlite3_bind_text(st, ++col, t2, -1, SQLITE_STATIC);
	if (t3)
		sqlite3_bind_text(st, ++col, t3, -1, SQLITE_STATIC);
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, ++col, v[i]);
	if (blob)
		sqlite3_bind_blob(st, ++col, bloblen ? blob : "", (int)bloblen, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sql_error(s, rc, "rollup write", err);
	if (rowid)
		*rowid = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* Writes the delta chunk (if any) and the minute row and deletes the windows: one
 * transaction. */
static int write_minute(struct store *s, struct store_dict *d, const struct minute *m,
			const struct windows *w, const uint8_t *delta, size_t deltalen,
			const uint8_t *own, size_t ownlen, int64_t now_ns, struct gs_error *err)
{
	int64_t dict_id = d->id, seq = d->next_seq + (deltalen ? 1 : 0), row;
	int rc = store_exec(s, "BEGIN IMMEDIATE", err);

	if (rc)
		return rc;
	if (!dict_id) {
		int64_t v[] = {m->pid, (int64_t)m->start_ticks, now_ns};

		rc = exec_bound(s,
				"INSERT INTO dicts(type, pid, start_ticks, created_ns) VALUES "
				"(?, ?, ?, ?)",
				v, 3, NULL, 0, m->type, NULL, NULL, &dict_id, err);
	}
	if (!rc && deltalen) {
		int64_t v[] = {dict_id, d->next_seq};

		rc = exec_bound(s, "INSERT INTO dict_chunks(dict_id, seq, data) VALUES (?, ?, ?)",
				v, 2, delta, deltalen, NULL, NULL, NULL, NULL, err);
	}
	if (!rc) {
		int64_t v[] = {m->pid,	  (int64_t)m->start_ticks, w->start_ns,
			       w->end_ns, (int64_t)w->n,	   dict_id,
			       seq,	  (int64_t)ownlen};

		rc = exec_bound(s,
				"INSERT INTO profiles(type, service, labels, pid, start_ticks,"
				" start_ns, end_ns, windows, dict_id, dict_seq, bytes, data)"
				" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				v, 8, own, ownlen, m->type, w->service, w->labels, &row, err);
	}
	for (size_t i = 0; i < w->n && !rc; i++)
		rc = exec_bound(s, "DELETE FROM profiles WHERE id = ?", &w->ids[i], 1, NULL, 0,
				NULL, NULL, NULL, NULL, err);
	if (!rc)
		rc = store_exec(s, "COMMIT", err);
	if (rc) {
		store_rollback(s);
		return rc;
	}
	d->id = dict_id;
	d->next_seq = seq;
	profile_dict_mark(d->prof, &d->mark);
	return 0;
}

/* Rolls up one minute of one process and type. */
static int rollup_minute(struct store *s, const struct minute *m, int64_t cutoff, int64_t now_ns,
			 struct gs_error *err)
{
	struct windows *w = calloc(1, sizeof(*w));
	struct store_dict *d;
	uint8_t *delta = NULL, *own = NULL, *gzdelta = NULL, *gzown = NULL;
	size_t deltalen = 0, ownlen = 0, gzdeltalen = 0, gzownlen = 0;
	int rc;

	if (!w)
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	rc = read_windows(s, m, cutoff, w, err);
	if (rc || w->n == 0)
		goto out;
	d = dict_get(s, m);
	if (!d) {
		rc = gs_error_set(err, -ENOMEM, "store: out of memory");
		goto out;
	}
	rc = merge_minute(s, m, &d, w, err);
	if (!rc)
		rc = profile_encode_dict_delta(d->prof, &d->mark, &delta, &deltalen, err);
	if (!rc)
		rc = profile_encode_own(d->prof, &own, &ownlen, err);
	if (!rc && deltalen)
		rc = gzip_compress(delta, deltalen, STORE_ROLLUP_GZIP_LEVEL, &gzdelta, &gzdeltalen,
				err);
	if (!rc)
		rc = gzip_compress(own, ownlen, STORE_ROLLUP_GZIP_LEVEL, &gzown, &gzownlen, err);
	if (!rc)
		rc = write_minute(s, d, m, w, gzdelta, deltalen ? gzdeltalen : 0, gzown, gzownlen,
				  now_ns, err);
	if (rc) {
		/* The dictionary holds entries no chunk has (or a stale id): start over. */
		dict_close(d);
	} else {
		s->stats.rows_rolled_up += w->n;
		s->stats.minutes_written++;
		d->last_minute = m->minute;
		if (d->mark.strings + d->mark.locations + d->mark.functions > DICT_MAX_ENTRIES)
			dict_close(d);
	}
out:
	free(delta);
	free(own);
	free(gzdelta);
	free(gzown);
	windows_free(w);
	free(w);
	return rc;
}

int store_rollup(struct store *s, int64_t now_ns, struct gs_error *err)
{
	struct minute *mins;
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int64_t cutoff, minute_cut;
	int rc, first_rc = 0;

	if (s->cfg.rollup_after_ns <= 0)
		return 0;
	cutoff = now_ns - s->cfg.rollup_after_ns;
	/* Only whole minutes: one that has begun after the cutoff is left for later. */
	minute_cut = cutoff / MINUTE_NS * MINUTE_NS;
	mins = calloc(STORE_ROLLUP_PER_CALL, sizeof(*mins));
	if (!mins)
		return gs_error_set(err, -ENOMEM, "store: out of memory");
	rc = sqlite3_prepare_v2(
		s->db,
		"SELECT pid, start_ticks, type, start_ns / 60000000000 AS m"
		" FROM profiles WHERE dict_id IS NULL AND push_state IS NOT 0 AND end_ns < ?"
		" AND start_ns < ?"
		" GROUP BY pid, start_ticks, type, m ORDER BY min(start_ns) LIMIT ?",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		free(mins);
		return store_sql_error(s, rc, "prepare rollup", err);
	}
	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int64(st, 2, minute_cut);
	sqlite3_bind_int64(st, 3, STORE_ROLLUP_PER_CALL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < STORE_ROLLUP_PER_CALL) {
		struct minute *m = &mins[n++];

		m->pid = (pid_t)sqlite3_column_int64(st, 0);
		m->start_ticks = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(m->type, sizeof(m->type), "%s", sqlite3_column_text(st, 2));
		m->minute = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(mins);
		return store_sql_error(s, rc, "rollup", err);
	}
	/* One minute failing (e.g. a damaged row) does not hold up the others. */
	for (size_t i = 0; i < n; i++) {
		rc = rollup_minute(s, &mins[i], cutoff, now_ns, first_rc ? NULL : err);
		if (rc && !first_rc)
			first_rc = rc;
		if (rc == -ENOSPC)
			break;
	}
	free(mins);
	for (size_t i = 0; i < STORE_MAX_DICTS; i++) {
		struct store_dict *d = &s->dicts[i];

		if (d->prof && d->last_minute + DICT_IDLE_MINUTES < minute_cut / MINUTE_NS)
			dict_close(d);
	}
	return first_rc;
}
