/* test_store.c — the agent's SQLite store (agent/store/) on a real database in a temporary
 * directory: put/list/merge round trips, label and time queries, rollup (a rolled-up minute
 * equals the sum of its windows, stack by stack, read back through the independent test
 * decoder), dictionaries shared across minutes, retention by age and by size, reopening,
 * a newer schema refused, and crash safety (a writer SIGKILLed at random moments, 20 rounds). */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/helpers/store_fixture.h"

#define SEC 1000000000LL
#define T0 (1700000040LL * SEC) /* a minute boundary */

static char *tmpdir(void)
{
	char *d = strdup("/tmp/goscope-store-XXXXXX");

	cr_assert_not_null(mkdtemp(d));
	return d;
}

static void rmtree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct store *open_store(const char *dir, int64_t retention, uint64_t max_disk,
				int64_t rollup_after)
{
	struct store_config cfg = {.dir = dir,
				   .retention_ns = retention,
				   .max_disk_bytes = max_disk,
				   .rollup_after_ns = rollup_after};
	struct gs_error err = {0};
	struct store *s;
	int rc = store_open(&cfg, &s, &err);

	cr_assert_eq(rc, 0, "store_open: %d %s", rc, err.msg);
	return s;
}

static void put(struct store *s, const char *type, const char *service, int pid, int64_t start,
		int64_t end, const struct profile *p)
{
	char pidbuf[16];
	struct store_label labels[] = {{"service_name", service}, {"pid", pidbuf}, {"node", "n1"}};
	struct store_window w = {.type = type,
				 .service = service,
				 .pid = pid,
				 .start_ticks = 1000 + (uint64_t)pid,
				 .start_ns = start,
				 .end_ns = end,
				 .labels = labels,
				 .nlabels = 3};
	struct gs_error err = {0};
	int rc;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	rc = store_put(s, &w, p, &err);
	cr_assert_eq(rc, 0, "store_put: %d %s", rc, err.msg);
}

static struct profile *window(uint64_t seed, const char *service, int pid)
{
	struct profile *p = fx_window(seed, 300, 120, service, pid);

	cr_assert_not_null(p);
	return p;
}

static void stacks(const struct profile *p, struct fx_stacks *out)
{
	char why[256];

	cr_assert_eq(fx_stacks_of(p, out, why, sizeof(why)), 0, "%s", why);
}

struct rows {
	struct store_row_info r[64];
	char labels[64][256];
	size_t n;
};

static int keep_row(void *arg, const struct store_row_info *r)
{
	struct rows *rs = arg;

	if (rs->n < 64) {
		rs->r[rs->n] = *r;
		snprintf(rs->labels[rs->n], sizeof(rs->labels[0]), "%s", r->labels_json);
		rs->r[rs->n].labels_json = rs->labels[rs->n];
		rs->r[rs->n].type = rs->r[rs->n].service = NULL; /* not kept */
		rs->n++;
	}
	return 0;
}

static size_t list(struct store *s, const struct store_query *q, struct rows *rs)
{
	struct gs_error err = {0};
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = store_list(s, q, keep_row, rs, &err);
	cr_assert_eq(rc, 0, "store_list: %d %s", rc, err.msg);
	return rs->n;
}

static int64_t sql_int(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The stacks of row id as stored (raw or rolled up), read through the test decoder. */
static void row_stacks(struct store *s, int64_t id, struct fx_stacks *out)
{
	struct gs_error err = {0};
	uint8_t *buf;
	size_t len;
	char why[256];
	int rc = store_read_pprof(s, id, &buf, &len, &err);

	cr_assert_eq(rc, 0, "store_read_pprof(%lld): %d %s", (long long)id, rc, err.msg);
	cr_assert_eq(fx_stacks_of_pprof(buf, len, out, why, sizeof(why)), 0, "row %lld: %s",
		     (long long)id, why);
	free(buf);
}

Test(store, put_list_merge_round_trip)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, 0, 0, 0);
	struct profile *p = window(1, "api", 42), *got;
	struct fx_stacks a, b;
	struct store_query q = {.service = "api", .type = "cpu"};
	struct gs_error err = {0};
	struct rows rs;
	struct stat st;

	cr_assert_eq(stat(dir, &st), 0);
	put(s, "cpu", "api", 42, T0, T0 + 10 * SEC, p);
	cr_assert_eq(list(s, &q, &rs), 1);
	cr_assert_str_eq(rs.r[0].labels_json,
			 "{\"service_name\":\"api\",\"pid\":\"42\",\"node\":\"n1\"}");
	cr_assert_eq(rs.r[0].pid, 42);
	cr_assert_eq(rs.r[0].start_ticks, 1042);
	cr_assert_eq(rs.r[0].start_ns, T0);
	cr_assert_eq(rs.r[0].end_ns, T0 + 10 * SEC);
	cr_assert_not(rs.r[0].rolled_up);
	cr_assert_eq(rs.r[0].windows, 1);
	cr_assert_gt(rs.r[0].bytes, 100);
	cr_assert_eq((int64_t)rs.r[0].bytes, sql_int(dir, "SELECT length(data) FROM profiles"));
	cr_assert_eq(store_merge(s, &q, &got, &err), 0, "%s", err.msg);
	stacks(p, &a);
	stacks(got, &b);
	cr_assert_null(fx_stacks_diff(&a, &b), "%s", fx_stacks_diff(&a, &b));
	cr_assert_gt(a.n, 100);
	cr_assert_eq(sql_int(dir, "PRAGMA auto_vacuum"), 2);
	cr_assert_eq(sql_int(dir, "PRAGMA user_version"), 2);
	cr_assert_eq(sql_int(dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
	fx_stacks_free(&a);
	fx_stacks_free(&b);
	profile_free(got);
	profile_free(p);
	store_close(s);
	rmtree(dir);
	free(dir);
}

Test(store, queries_by_labels_time_and_type)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, 0, 0, 0);
	struct profile *p1 = window(1, "api", 1), *p2 = window(2, "db", 2);
	struct store_label m_api[] = {{"service_name", "api"}}, m_none[] = {{"node", "n2"}},
			   m_both[] = {{"node", "n1"}, {"pid", "2"}}, m_bad[] = {{"a\"b", "x"}};
	struct rows rs;
	struct profile *got;
	struct gs_error err = {0};

	for (int i = 0; i < 6; i++) {
		put(s, "cpu", "api", 1, T0 + i * 10 * SEC, T0 + (i + 1) * 10 * SEC, p1);
		put(s, "cpu", "db", 2, T0 + i * 10 * SEC, T0 + (i + 1) * 10 * SEC, p2);
	}
	put(s, "block", "api", 1, T0, T0 + 10 * SEC, p1);
	cr_assert_eq(list(s, &(struct store_query){.match = m_api, .nmatch = 1}, &rs), 7);
	cr_assert_eq(list(s, &(struct store_query){.match = m_none, .nmatch = 1}, &rs), 0);
	cr_assert_eq(list(s, &(struct store_query){.match = m_both, .nmatch = 2}, &rs), 6);
	cr_assert_eq(list(s, &(struct store_query){.type = "block"}, &rs), 1);
	cr_assert_eq(list(s, &(struct store_query){.pid = 2}, &rs), 6);
	/* [T0+15s, T0+30s) overlaps the windows starting at 10 s and 20 s. */
	cr_assert_eq(list(s,
			  &(struct store_query){.service = "api",
						.type = "cpu",
						.from_ns = T0 + 15 * SEC,
						.to_ns = T0 + 30 * SEC},
			  &rs),
		     2);
	cr_assert_eq(rs.r[0].start_ns, T0 + 10 * SEC);
	cr_assert_eq(rs.r[1].start_ns, T0 + 20 * SEC);
	cr_assert_eq(list(s, &(struct store_query){.service = "api", .limit = 3}, &rs), 3);
	cr_assert_eq(store_list(s, &(struct store_query){.match = m_bad, .nmatch = 1}, keep_row,
				&rs, &err),
		     -EINVAL);
	/* Several types cannot merge; none matching is ENOENT. */
	cr_assert_eq(store_merge(s, &(struct store_query){.service = "api"}, &got, &err), -EINVAL);
	cr_assert_eq(store_merge(s, &(struct store_query){.service = "nope"}, &got, &err), -ENOENT);
	/* Six identical windows merge to six times one. */
	{
		struct fx_stacks one, six;

		cr_assert_eq(store_merge(s, &(struct store_query){.service = "db", .type = "cpu"},
					 &got, &err),
			     0, "%s", err.msg);
		stacks(p2, &one);
		stacks(got, &six);
		cr_assert_eq(one.n, six.n);
		for (size_t i = 0; i < one.n; i++)
			cr_assert_eq(six.s[i].v[1], 6 * one.s[i].v[1]);
		fx_stacks_free(&one);
		fx_stacks_free(&six);
		profile_free(got);
	}
	profile_free(p1);
	profile_free(p2);
	store_close(s);
	rmtree(dir);
	free(dir);
}

/* Windows of two processes over three minutes, different each; rollup; each minute row's
 * stacks equal the sum of its windows' stacks. Then more windows: the dictionaries grow by
 * chunks and the earlier minutes still read back the same. */
Test(store, rollup_preserves_sums)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, 0, 0, 3600 * SEC);
	struct fx_stacks want[2][4] = {0};
	struct gs_error err = {0};
	struct store_stats stats;
	struct rows rs;
	int64_t now;

	for (int proc = 0; proc < 2; proc++) {
		for (int i = 0; i < 18; i++) { /* 3 minutes of 10 s windows */
			struct profile *p =
				window((uint64_t)(proc * 100 + i), proc ? "db" : "api", proc + 1);
			struct fx_stacks st;

			put(s, "cpu", proc ? "db" : "api", proc + 1, T0 + i * 10 * SEC,
			    T0 + (i + 1) * 10 * SEC, p);
			stacks(p, &st);
			cr_assert_eq(fx_stacks_add(&want[proc][i / 6], &st), 0);
			fx_stacks_free(&st);
			profile_free(p);
		}
	}
	/* An hour and two minutes later the first two minutes are due, not the third. */
	now = T0 + 3600 * SEC + 125 * SEC;
	cr_assert_eq(store_maintain(s, now, &err), 0, "%s", err.msg);
	store_stats(s, &stats);
	cr_assert_eq(stats.minutes_written, 4);
	cr_assert_eq(stats.rows_rolled_up, 24);
	cr_assert_eq(stats.rows, 4 + 12);
	/* The third minute, one call later. */
	cr_assert_eq(store_maintain(s, now + 60 * SEC, &err), 0, "%s", err.msg);
	store_stats(s, &stats);
	cr_assert_eq(stats.minutes_written, 6);
	cr_assert_eq(stats.rows, 6);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM dicts"), 2);
	cr_assert_geq(sql_int(dir, "SELECT count(*) FROM dict_chunks"), 2);
	for (int proc = 0; proc < 2; proc++) {
		cr_assert_eq(list(s, &(struct store_query){.pid = proc + 1}, &rs), 3);
		for (int m = 0; m < 3; m++) {
			struct fx_stacks got;

			cr_assert(rs.r[m].rolled_up);
			cr_assert_eq(rs.r[m].windows, 6);
			cr_assert_eq(rs.r[m].start_ns, T0 + m * 60 * SEC);
			cr_assert_eq(rs.r[m].end_ns, T0 + (m + 1) * 60 * SEC);
			cr_assert_str_eq(
				rs.r[m].labels_json,
				proc ? "{\"service_name\":\"db\",\"pid\":\"2\",\"node\":\"n1\"}"
				     : "{\"service_name\":\"api\",\"pid\":\"1\",\"node\":\"n1\"}");
			row_stacks(s, rs.r[m].id, &got);
			cr_assert_null(fx_stacks_diff(&want[proc][m], &got),
				       "proc %d minute %d: %s", proc, m,
				       fx_stacks_diff(&want[proc][m], &got));
			cr_assert_eq(fx_stacks_total(&got, 0), 6 * 300);
			fx_stacks_free(&got);
		}
	}
	/* store_merge reads rolled-up rows too: all three minutes of api. */
	{
		struct profile *all;
		struct fx_stacks sum = {0}, got;

		for (int m = 0; m < 3; m++)
			fx_stacks_add(&sum, &want[0][m]);
		cr_assert_eq(store_merge(s, &(struct store_query){.service = "api"}, &all, &err), 0,
			     "%s", err.msg);
		stacks(all, &got);
		cr_assert_null(fx_stacks_diff(&sum, &got), "%s", fx_stacks_diff(&sum, &got));
		fx_stacks_free(&sum);
		fx_stacks_free(&got);
		profile_free(all);
	}
	/* A fourth minute with new functions (a larger function set): a new chunk. */
	{
		int64_t chunks = sql_int(dir, "SELECT count(*) FROM dict_chunks");
		struct profile *p = fx_window(999, 300, 400, "api", 1);
		struct fx_stacks w, got;

		put(s, "cpu", "api", 1, T0 + 180 * SEC, T0 + 190 * SEC, p);
		cr_assert_eq(store_maintain(s, now + 180 * SEC, &err), 0, "%s", err.msg);
		cr_assert_eq(sql_int(dir, "SELECT count(*) FROM dict_chunks"), chunks + 1);
		cr_assert_eq(list(s, &(struct store_query){.pid = 1}, &rs), 4);
		stacks(p, &w);
		row_stacks(s, rs.r[3].id, &got);
		cr_assert_null(fx_stacks_diff(&w, &got), "%s", fx_stacks_diff(&w, &got));
		fx_stacks_free(&w);
		fx_stacks_free(&got);
		/* The first minute still reads back exactly. */
		row_stacks(s, rs.r[0].id, &got);
		cr_assert_null(fx_stacks_diff(&want[0][0], &got), "%s",
			       fx_stacks_diff(&want[0][0], &got));
		fx_stacks_free(&got);
		profile_free(p);
	}
	for (int proc = 0; proc < 2; proc++)
		for (int m = 0; m < 4; m++)
			fx_stacks_free(&want[proc][m]);
	store_close(s);
	rmtree(dir);
	free(dir);
}

Test(store, retention_by_age_drops_rows_and_dictionaries)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, 2 * 3600 * SEC, 0, 3600 * SEC);
	struct profile *p = window(5, "api", 7);
	struct gs_error err = {0};
	struct store_stats stats;
	struct rows rs;

	for (int i = 0; i < 12; i++)
		put(s, "cpu", "api", 7, T0 + i * 10 * SEC, T0 + (i + 1) * 10 * SEC, p);
	/* Roll up the two minutes, then add raw windows two hours later. */
	cr_assert_eq(store_maintain(s, T0 + 3725 * SEC, &err), 0, "%s", err.msg);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM profiles"), 2);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM dicts"), 1);
	for (int i = 0; i < 3; i++)
		put(s, "cpu", "api", 7, T0 + 7200 * SEC + i * 10 * SEC,
		    T0 + 7200 * SEC + (i + 1) * 10 * SEC, p);
	/* Retention 2 h at T0 + 2 h + 90 s: the minutes (ended by T0 + 120 s) go. */
	cr_assert_eq(store_maintain(s, T0 + 7200 * SEC + 125 * SEC, &err), 0, "%s", err.msg);
	store_stats(s, &stats);
	cr_assert_eq(stats.rows_expired, 2);
	cr_assert_eq(list(s, NULL, &rs), 3);
	for (size_t i = 0; i < rs.n; i++)
		cr_assert_geq(rs.r[i].start_ns, T0 + 7200 * SEC);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM dicts"), 0);
	cr_assert_eq(sql_int(dir, "SELECT count(*) FROM dict_chunks"), 0);
	/* The process's next minute starts a new dictionary and reads back. */
	cr_assert_eq(store_maintain(s, T0 + 7200 * SEC + 3700 * SEC, &err), 0, "%s", err.msg);
	cr_assert_eq(list(s, NULL, &rs), 1);
	cr_assert(rs.r[0].rolled_up);
	{
		struct fx_stacks one, got;

		stacks(p, &one);
		row_stacks(s, rs.r[0].id, &got);
		cr_assert_eq(fx_stacks_total(&got, 1), 3 * fx_stacks_total(&one, 1));
		fx_stacks_free(&one);
		fx_stacks_free(&got);
	}
	profile_free(p);
	store_close(s);
	rmtree(dir);
	free(dir);
}

Test(store, retention_by_size_keeps_the_newest)
{
	char *dir = tmpdir();
	const uint64_t cap = 1536 * 1024;
	struct store *s = open_store(dir, 0, cap, 0);

	cr_assert_eq(sql_int(dir, "PRAGMA auto_vacuum"), 2);
	struct gs_error err = {0};
	struct store_stats stats;
	struct rows rs;
	int n = 0;

	/* Distinct, poorly compressible windows (~40 KiB gzipped each). */
	for (; n < 120; n++) {
		struct profile *p = fx_window((uint64_t)n, 3000, 2000, "api", 1);

		put(s, "cpu", "api", 1, T0 + n * 10 * SEC, T0 + (n + 1) * 10 * SEC, p);
		profile_free(p);
		cr_assert_eq(store_maintain(s, T0 + (n + 1) * 10 * SEC, &err), 0, "%s", err.msg);
		store_stats(s, &stats);
		cr_assert_leq(stats.db_bytes + stats.wal_bytes, cap, "put %d: %llu + %llu", n,
			      (unsigned long long)stats.db_bytes,
			      (unsigned long long)stats.wal_bytes);
	}
	store_stats(s, &stats);
	cr_assert_gt(stats.rows_evicted, 0);
	cr_assert_eq(stats.windows_dropped, 0);
	cr_assert_gt(stats.rows, 5);
	cr_assert_eq(stats.rows + stats.rows_evicted, 120);
	/* The newest ones stayed, contiguous up to the last. */
	cr_assert_eq(list(s, &(struct store_query){.from_ns = T0 + (n - 5) * 10 * SEC}, &rs), 5);
	cr_assert_eq(rs.r[4].start_ns, T0 + (n - 1) * 10 * SEC);
	cr_assert_eq(sql_int(dir, "SELECT min(start_ns) FROM profiles"),
		     T0 + (int64_t)(120 - stats.rows) * 10 * SEC);
	store_close(s);
	rmtree(dir);
	free(dir);
}

Test(store, reopen_reuses_and_newer_schema_is_refused)
{
	char *dir = tmpdir(), path[512];
	struct store *s = open_store(dir, 0, 0, 0), *ro;
	struct profile *p = window(3, "api", 9);
	struct store_config cfg = {.dir = dir};
	struct gs_error err = {0};
	struct rows rs;
	sqlite3 *db;

	put(s, "cpu", "api", 9, T0, T0 + 10 * SEC, p);
	store_close(s);
	s = open_store(dir, 0, 0, 0);
	cr_assert_eq(list(s, NULL, &rs), 1);
	put(s, "cpu", "api", 9, T0 + 10 * SEC, T0 + 20 * SEC, p);
	/* A reader's handle beside the writer. */
	cfg.read_only = true;
	cr_assert_eq(store_open(&cfg, &ro, &err), 0, "%s", err.msg);
	cr_assert_eq(list(ro, NULL, &rs), 2);
	cr_assert_eq(store_put(ro, &(struct store_window){.type = "cpu"}, p, &err), -EROFS);
	store_close(ro);
	store_close(s);

	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version=3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg.read_only = false;
	cr_assert_eq(store_open(&cfg, &s, &err), -EPROTO);
	cr_assert_null(s);
	cr_assert(strstr(err.msg, "newer") && strstr(err.msg, "schema version 3"), "%s", err.msg);
	profile_free(p);
	rmtree(dir);
	free(dir);
}

/* ---- crash safety ---- */

/* The child: puts windows (and every 8th put a maintain that rolls up) until killed,
 * writing each committed row's start time to the pipe after store_put returned. */
static void crash_child(const char *dir, int fd, int round)
{
	struct store *s = open_store(dir, 0, 0, 60 * SEC);
	struct profile *p = fx_window((uint64_t)round, 400, 200, "api", 1);
	struct gs_error err;

	for (int64_t i = 0;; i++) {
		int64_t start = T0 + ((int64_t)round * 100000 + i) * 10 * SEC;
		struct store_window w = {.type = "cpu",
					 .service = "api",
					 .pid = 1,
					 .start_ticks = 5,
					 .start_ns = start,
					 .end_ns = start + 10 * SEC};

		if (store_put(s, &w, p, &err))
			_exit(3);
		if (write(fd, &start, sizeof(start)) != sizeof(start))
			_exit(4);
		if (i % 8 == 7 && store_maintain(s, start, &err))
			_exit(5);
	}
}

Test(store, sigkill_at_random_moments_loses_nothing_committed, .timeout = 60)
{
	char *dir = tmpdir();
	uint64_t total = 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	srand((unsigned)ts.tv_nsec);
	for (int round = 0; round < 20; round++) {
		int fds[2], status;
		pid_t pid;
		int64_t start;
		uint64_t reported = 0;
		struct store *s;
		struct gs_error err = {0};
		struct profile *all;

		cr_assert_eq(pipe(fds), 0);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(dir, fds[1], round);
		}
		close(fds[1]);
		/* The kill comes at a random moment after the first commit (a loaded machine,
		 * e.g. under ASan, may take longer than the random delay to commit anything). */
		{
			struct pollfd pfd = {.fd = fds[0], .events = POLLIN};

			cr_assert_eq(poll(&pfd, 1, 30000), 1, "round %d: no commit in 30 s", round);
		}
		usleep(50000 + (useconds_t)(rand() % 300000));
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status), "child exited %d", WEXITSTATUS(status));
		while (read(fds[0], &start, sizeof(start)) == sizeof(start))
			reported++;
		close(fds[0]);
		cr_assert_gt(reported, 0, "round %d: nothing committed", round);
		total += reported;

		cr_assert_eq(
			sql_int(dir, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"),
			1, "round %d", round);
		s = open_store(dir, 0, 0, 0);
		/* Raw or rolled up, every reported window is there: windows counted over the
		 * rows is at least what was reported, and at most one more (a put that
		 * committed but was not reported yet). */
		{
			int64_t windows = sql_int(dir, "SELECT sum(windows) FROM profiles");

			cr_assert_geq(windows, (int64_t)total, "round %d", round);
			cr_assert_leq(windows, (int64_t)total + round + 1, "round %d", round);
			total = (uint64_t)windows;
		}
		/* Every row reads back (the rolled-up ones through their dictionaries). */
		cr_assert_eq(store_merge(s, &(struct store_query){.type = "cpu"}, &all, &err), 0,
			     "round %d: %s", round, err.msg);
		{
			struct fx_stacks st;

			stacks(all, &st);
			cr_assert_eq(fx_stacks_total(&st, 0), (int64_t)total * 400, "round %d",
				     round);
			fx_stacks_free(&st);
		}
		profile_free(all);
		store_close(s);
	}
	rmtree(dir);
	free(dir);
}
