/* store_bench.c — the storage benchmark's driver (tests/bench/agent_storage.sh): feeds one
 * process-hour of windows (given as pprof files, used in turn) into a fresh store with
 * timestamps spread over the hour, rolls everything up, and prints the bytes of
 *   raw:     the gzipped 10 s windows as stored,
 *   minutes: rollup alone (each minute a whole pprof, gzip level 9 as the rollup's, no
 *            dictionary),
 *   dict:    rollup + dictionary (minute parts + dictionary chunks, as the store keeps them),
 * and the database file sizes. Usage: store_bench DIR WINDOWS_PER_HOUR FILE... */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "store/store.h"

#define SEC 1000000000LL

static int64_t sql_int(const char *dir, const char *sql)
{
	char path[600];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

struct acc {
	struct store *s;
	uint64_t minutes_gz;
	int err;
};

/* Gzipped size of each rolled-up minute as one whole pprof (no dictionary). */
static int whole_minute(void *arg, const struct store_row_info *r)
{
	struct acc *a = arg;
	struct gs_error err;
	uint8_t *buf;
	size_t len;
	struct profile *p;
	static uint8_t z[32 << 20];
	uLongf zlen = sizeof(z);

	if (!r->rolled_up)
		return 0;
	if (store_read_pprof(a->s, r->id, &buf, &len, &err) || profile_decode(buf, len, &p, &err)) {
		fprintf(stderr, "row %lld: %s\n", (long long)r->id, err.msg);
		a->err = 1;
		return 1;
	}
	free(buf);
	/* At the rollup's gzip level (9), so the two rollups differ only by the dictionary. */
	if (profile_encode(p, &buf, &len, &err) || compress2(z, &zlen, buf, len, 9) != Z_OK) {
		a->err = 1;
		return 1;
	}
	a->minutes_gz += zlen + 18; /* gzip's header and trailer around the deflate stream */
	free(buf);
	profile_free(p);
	return 0;
}

int main(int argc, char **argv)
{
	struct store_config cfg = {.rollup_after_ns = 3600 * SEC};
	struct store *s;
	struct gs_error err;
	struct store_stats st;
	int n, nfiles = argc - 3;
	int64_t t0 = 1700000000LL * SEC, span;
	uint64_t raw;
	struct acc a = {0};

	if (argc < 4) {
		fprintf(stderr, "usage: %s DIR WINDOWS_PER_HOUR FILE...\n", argv[0]);
		return 2;
	}
	cfg.dir = argv[1];
	n = atoi(argv[2]);
	span = 3600 * SEC / n;
	if (store_open(&cfg, &s, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *file = argv[3 + i % nfiles];
		FILE *f = fopen(file, "rb");
		static uint8_t buf[16 << 20];
		size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
		struct profile *p;
		struct store_label labels[] = {{"service_name", "bench"}, {"pid", "4242"}};
		struct store_window w = {.type = "cpu",
					 .service = "bench",
					 .pid = 4242,
					 .start_ticks = 1,
					 .start_ns = t0 + i * span,
					 .end_ns = t0 + (i + 1) * span,
					 .labels = labels,
					 .nlabels = 2};
		struct profile_label pl[] = {{.key = "service_name", .str = "bench"},
					     {.key = "pid", .str = "4242"}};

		if (f)
			fclose(f);
		if (profile_decode(buf, len, &p, &err) || profile_add_labels_all(p, pl, 2, &err) ||
		    store_put(s, &w, p, &err)) {
			fprintf(stderr, "%s: %s\n", file, err.msg);
			return 1;
		}
		profile_free(p);
	}
	raw = (uint64_t)sql_int(cfg.dir, "SELECT sum(bytes) FROM profiles");
	printf("windows=%d raw_bytes=%llu db_bytes_raw=%lld\n", n, (unsigned long long)raw,
	       (long long)sql_int(cfg.dir, "SELECT page_count * page_size FROM pragma_page_count, "
					   "pragma_page_size"));
	/* Everything is over an hour old two hours later: roll it all up. */
	for (int i = 0; i < 10; i++) {
		if (store_maintain(s, t0 + 2 * 3600 * SEC + 120 * SEC, &err)) {
			fprintf(stderr, "maintain: %s\n", err.msg);
			return 1;
		}
	}
	store_stats(s, &st);
	a.s = s;
	store_list(s, NULL, whole_minute, &a, &err);
	if (a.err)
		return 1;
	{
		int64_t parts = sql_int(cfg.dir, "SELECT sum(length(data)) FROM profiles");
		int64_t chunks =
			sql_int(cfg.dir, "SELECT coalesce(sum(length(data)), 0) FROM dict_chunks");
		int64_t nchunks = sql_int(cfg.dir, "SELECT count(*) FROM dict_chunks");

		printf("minutes=%llu rolled_windows=%llu rows_left=%llu\n",
		       (unsigned long long)st.minutes_written,
		       (unsigned long long)st.rows_rolled_up, (unsigned long long)st.rows);
		printf("rollup_only_bytes=%llu dict_parts_bytes=%lld dict_chunks_bytes=%lld "
		       "dict_chunks=%lld\n",
		       (unsigned long long)a.minutes_gz, (long long)parts, (long long)chunks,
		       (long long)nchunks);
		printf("ratio_rollup_only=%.4f ratio_rollup_dict=%.4f\n",
		       (double)a.minutes_gz / (double)raw, (double)(parts + chunks) / (double)raw);
		printf("bytes_per_process_hour_raw=%llu bytes_per_process_hour_rollup_dict=%lld\n",
		       (unsigned long long)raw, (long long)(parts + chunks));
	}
	store_close(s);
	printf("db_file_bytes_after=%lld\n",
	       (long long)sql_int(cfg.dir, "SELECT page_count * page_size FROM pragma_page_count, "
					   "pragma_page_size"));
	return 0;
}
