/* test_query_time.c — the time arguments of store queries (agent/store/query_time.c) and the
 * CLI's size arguments (--max-disk). */
#include <criterion/criterion.h>
#include <errno.h>

#include "cli/cli.h"
#include "store/query_time.h"

#define NOW 1764583200000000000LL /* 2025-12-01T10:00:00Z */
#define S 1000000000LL

static int64_t parse_ok(const char *s)
{
	struct gs_error err = {0};
	int64_t v = 0;

	cr_assert_eq(query_time_parse(s, NOW, &v, &err), 0, "%s: %s", s, err.msg);
	return v;
}

static void parse_bad(const char *s)
{
	struct gs_error err = {0};
	int64_t v = 0;

	cr_assert_eq(query_time_parse(s, NOW, &v, &err), -EINVAL, "%s accepted", s);
	cr_assert(err.msg[0]);
}

Test(query_time, forms)
{
	cr_assert_eq(parse_ok("now"), NOW);
	cr_assert_eq(parse_ok("-15m"), NOW - 900 * S);
	cr_assert_eq(parse_ok("-1h30m"), NOW - 5400 * S);
	cr_assert_eq(parse_ok("-90s"), NOW - 90 * S);
	cr_assert_eq(parse_ok("-500ms"), NOW - S / 2);
	cr_assert_eq(parse_ok("-1d"), NOW - 86400 * S);
	cr_assert_eq(parse_ok("1764583200"), NOW);
	cr_assert_eq(parse_ok("2025-12-01T10:00:00Z"), NOW);
	cr_assert_eq(parse_ok("2025-12-01T10:00:00.25Z"), NOW + S / 4);
	cr_assert_eq(parse_ok("2025-12-01T11:30:00+01:30"), NOW);
	cr_assert_eq(parse_ok("2025-12-01T08:00:00-02:00"), NOW);
	cr_assert_eq(parse_ok("2025-12-01 10:00:00z"), NOW);
}

Test(query_time, rejects)
{
	const char *bad[] = {"",
			     "yesterday",
			     "-",
			     "-15",
			     "-15x",
			     "--15m",
			     "-1m-1s",
			     "-99999999999d",
			     "2025-12-01T10:00:00",
			     "2025-13-01T10:00:00Z",
			     "2025-12-01T10:00:00Zjunk",
			     "2025-12-01T10:00Z",
			     "12abc",
			     "-1e400s",
			     "99999999999999999999"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

Test(cli_size, units)
{
	uint64_t b;

	cr_assert(cli_parse_size("1GiB", &b) && b == 1ULL << 30);
	cr_assert(cli_parse_size("512MiB", &b) && b == 512ULL << 20);
	cr_assert(cli_parse_size("10MB", &b) && b == 10000000ULL);
	cr_assert(cli_parse_size("1G", &b) && b == 1000000000ULL);
	cr_assert(cli_parse_size("4096", &b) && b == 4096);
	cr_assert(cli_parse_size("0", &b) && b == 0);
	cr_assert(!cli_parse_size("", &b));
	cr_assert(!cli_parse_size("-1GiB", &b));
	cr_assert(!cli_parse_size("1 GiB", &b));
	cr_assert(!cli_parse_size("1XB", &b));
	cr_assert(!cli_parse_size("1e30", &b));
	cr_assert(!cli_parse_size("nan", &b));
}
