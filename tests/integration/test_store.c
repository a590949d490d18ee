/* test_store.c — the agent's store where it meets the system: a full disk (a 2 MiB tmpfs,
 * mounted here as root, as the data directory) drops and counts windows without a crash or
 * a damaged database and writing resumes once space returns; and raw and rolled-up rows
 * open in `go tool pprof` (Go's own decoder) with the values that were put. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"
#include "tests/helpers/store_fixture.h"

#define SEC 1000000000LL
#define T0 (1700000040LL * SEC)

static char mnt[256];
static bool mounted;

static void umount_tmpfs(void)
{
	if (mounted)
		umount2(mnt, MNT_DETACH);
	mounted = false;
	if (mnt[0])
		rmdir(mnt);
}

static struct store_window win(int64_t start)
{
	static const struct store_label labels[] = {{"service_name", "api"}, {"pid", "1"}};

	return (struct store_window){.type = "cpu",
				     .service = "api",
				     .pid = 1,
				     .start_ticks = 77,
				     .start_ns = start,
				     .end_ns = start + 10 * SEC,
				     .labels = labels,
				     .nlabels = 2};
}

static int integrity_ok(const char *dir)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		ok = sqlite3_step(st) == SQLITE_ROW &&
		     strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return ok;
}

Test(store, full_disk_drops_counts_and_resumes, .fini = umount_tmpfs)
{
	char filler[300];
	struct store_config cfg = {0};
	struct store *s;
	struct store_stats st;
	struct gs_error err = {0};
	int fd, rc = 0, puts = 0, stored;
	static char block[64 * 1024];

	snprintf(mnt, sizeof(mnt), "/tmp/goscope-fulldisk-XXXXXX");
	cr_assert_not_null(mkdtemp(mnt));
	cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=2m"), 0, "mount: %s", strerror(errno));
	mounted = true;
	/* A filler file to delete later: 512 KiB of the 2 MiB. */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	close(fd);

	cfg.dir = mnt;
	cr_assert_eq(store_open(&cfg, &s, &err), 0, "%s", err.msg);
	for (; puts < 200; puts++) {
		struct profile *p = fx_window((uint64_t)puts, 3000, 2000, "api", 1);
		struct store_window w = win(T0 + puts * 10 * SEC);

		cr_assert_not_null(p);
		rc = store_put(s, &w, p, &err);
		profile_free(p);
		if (rc)
			break;
	}
	cr_assert_eq(rc, -ENOSPC, "after %d puts: %d %s", puts, rc, err.msg);
	stored = puts;
	cr_assert_gt(stored, 3);
	/* Full: more puts are dropped and counted, nothing crashes. */
	for (int i = 0; i < 3; i++) {
		struct profile *p = fx_window(1000 + (uint64_t)i, 3000, 2000, "api", 1);
		struct store_window w = win(T0 + (puts + 1 + i) * 10 * SEC);

		cr_assert_eq(store_put(s, &w, p, &err), -ENOSPC);
		profile_free(p);
	}
	store_stats(s, &st);
	cr_assert_eq(st.windows_dropped, 4);
	cr_assert_eq(st.windows_stored, (uint64_t)stored);
	cr_assert_eq(st.last_error, -ENOSPC);
	cr_assert(integrity_ok(mnt));
	cr_assert_eq(st.rows, (uint64_t)stored);
	/* Space returns: the next put succeeds on the same handle. */
	cr_assert_eq(unlink(filler), 0);
	{
		struct profile *p = fx_window(5000, 3000, 2000, "api", 1);
		struct store_window w = win(T0 + 1000 * 10 * SEC);

		rc = store_put(s, &w, p, &err);
		cr_assert_eq(rc, 0, "after freeing space: %d %s", rc, err.msg);
		profile_free(p);
	}
	store_stats(s, &st);
	cr_assert_eq(st.windows_stored, (uint64_t)stored + 1);
	cr_assert_eq(st.rows, (uint64_t)stored + 1);
	{
		struct profile *all;

		cr_assert_eq(store_merge(s, NULL, &all, &err), 0, "%s", err.msg);
		cr_assert_gt(profile_sample_count(all), 0);
		profile_free(all);
	}
	store_close(s);
	cr_assert(integrity_ok(mnt));
}

/* Writes row id's profile (uncompressed, as go tool pprof also reads it) to path. */
static void export_row(struct store *s, int64_t id, const char *path)
{
	struct gs_error err = {0};
	uint8_t *buf;
	size_t len;
	FILE *f;

	cr_assert_eq(store_read_pprof(s, id, &buf, &len, &err), 0, "%s", err.msg);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
}

struct ids {
	int64_t id[16];
	bool rolled[16];
	size_t n;
};

static int keep_id(void *arg, const struct store_row_info *r)
{
	struct ids *ids = arg;

	if (ids->n < 16) {
		ids->rolled[ids->n] = r->rolled_up;
		ids->id[ids->n++] = r->id;
	}
	return 0;
}

Test(store, rows_open_in_go_tool_pprof)
{
	char tmp[256], path[300], cmd[700], gobuf[256], why[256];
	const char *go = go_tool_path("1.27", gobuf, sizeof(gobuf));
	struct store_config cfg = {.rollup_after_ns = 3600 * SEC};
	struct store *s;
	struct gs_error err = {0};
	struct ids ids = {0};
	double want_raw = 0, want_minute = 0;
	char *out;
	size_t outlen;

	cr_assert_not_null(go, "go 1.27 not installed");
	cfg.dir = test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(store_open(&cfg, &s, &err), 0, "%s", err.msg);
	for (int i = 0; i < 7; i++) { /* one minute, and one window of the next */
		struct profile *p = fx_window((uint64_t)i, 500, 200, "api", 1);
		struct store_window w = win(T0 + i * 10 * SEC);
		struct fx_stacks st;

		cr_assert_eq(fx_stacks_of(p, &st, why, sizeof(why)), 0, "%s", why);
		if (i < 6)
			want_minute += (double)fx_stacks_total(&st, 1);
		else
			want_raw = (double)fx_stacks_total(&st, 1);
		fx_stacks_free(&st);
		cr_assert_eq(store_put(s, &w, p, &err), 0, "%s", err.msg);
		profile_free(p);
	}
	cr_assert_eq(store_maintain(s, T0 + 3600 * SEC + 65 * SEC, &err), 0, "%s", err.msg);
	cr_assert_eq(store_list(s, NULL, keep_id, &ids, &err), 0);
	cr_assert_eq(ids.n, 2);
	cr_assert(ids.rolled[0]);
	cr_assert_not(ids.rolled[1]);
	for (size_t i = 0; i < ids.n; i++) {
		struct traces tr;
		double want = ids.rolled[i] ? want_minute : want_raw;

		snprintf(path, sizeof(path), "%s/row%zu.pb", tmp, i);
		export_row(s, ids.id[i], path);
		snprintf(cmd, sizeof(cmd), "%s tool pprof -raw %s", go, path);
		cr_assert_eq(run_capture(cmd, 1, &out, &outlen), 0, "%s", out);
		cr_assert(strstr(out, "github.com/acme/svc/"), "%s", out);
		free(out);
		cr_assert_eq(traces_load(go, path, NULL, &tr, why, sizeof(why)), 0, "%s", why);
		/* -traces prints values rounded to 4 digits: within 0.1 %. */
		cr_assert(tr.total > want * 0.999 && tr.total < want * 1.001,
			  "row %zu: go tool pprof total %.0f, put %.0f", i, tr.total, want);
		traces_free(&tr);
	}
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}
