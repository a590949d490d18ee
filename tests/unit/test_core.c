/* test_core.c — the pure parts of the capture core and its CLI side: the /proc stat parser
 * (agent/procs/proc.c), duration parsing (agent/cli/capture_opts.c) and the end of a capture
 * (agent/capture/core.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "capture/core.h"
#include "cli/cli.h"
#include "procs/proc.h"

Test(proc, stat_line_with_hostile_comm)
{
	/* A comm may hold spaces and parentheses: fields start after the last ')'. */
	const char *line = "4242 (a) (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 "
			   "1 0 123456 1000 10 18446744073709551615";
	struct proc_stat st;

	cr_assert_eq(proc_stat_parse(line, &st), 0);
	cr_assert_eq(st.state, 'S');
	cr_assert_eq(st.ppid, 1);
	cr_assert_eq(st.utime_ticks, 7);
	cr_assert_eq(st.stime_ticks, 3);
	cr_assert_eq(st.start_ticks, 123456);
	cr_assert_eq(st.flags, 4194560u);
	cr_assert_lt(proc_stat_parse("4242 (x", &st), 0);
	cr_assert_lt(proc_stat_parse("4242 (x) S", &st), 0);
	cr_assert_lt(proc_stat_parse("", &st), 0);
}

Test(proc, self_alive_and_started)
{
	struct proc_stat st;

	cr_assert(proc_alive(getpid()));
	cr_assert(!proc_alive(0));
	cr_assert(!proc_alive(-1));
	cr_assert_eq(proc_stat_read("/proc", getpid(), &st), 0);
	cr_assert_gt(st.start_ticks, 0);
	cr_assert_eq(proc_stat_read("/proc", 0x3fffffff, &st), -ESRCH);
}

Test(cli, durations)
{
	static const struct {
		const char *s;
		bool ok;
		uint64_t ns;
	} cases[] = {
		{"10s", true, 10000000000ULL},
		{"500ms", true, 500000000ULL},
		{"2m", true, 120000000000ULL},
		{"1.5", true, 1500000000ULL},
		{"0", true, 0},
		{"1us", true, 1000},
		{"nan", false, 0},
		{"inf", false, 0},
		{"-1s", false, 0},
		{"1e-300", false, 0},
		{"1e-10s", false, 0},
		{"1e300", false, 0},
		{"10 s", false, 0},
		{"", false, 0},
		{"s", false, 0},
		{"5d", false, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ns = 12345;
		bool ok = cli_parse_duration(cases[i].s, &ns);

		cr_assert_eq(ok, cases[i].ok, "'%s'", cases[i].s);
		if (ok)
			cr_assert_eq(ns, cases[i].ns, "'%s': %llu", cases[i].s,
				     (unsigned long long)ns);
	}
}

static bool dead(void *arg)
{
	(*(int *)arg)++;
	return false;
}

Test(capture_core, end_of_capture)
{
	struct capture_clock c;
	volatile int stop = 0;
	int asked = 0;

	capture_clock_start(&c, 1000000000ULL, &stop);
	cr_assert_eq(capture_check_end(&c, c.start_ns + 1, dead, &asked), CAPTURE_RUNNING);
	cr_assert_eq(asked, 0, "liveness is looked at every CAPTURE_LIVENESS_EVERY_NS only");
	cr_assert_eq(capture_check_end(&c, c.start_ns + CAPTURE_LIVENESS_EVERY_NS, dead, &asked),
		     CAPTURE_END_TARGETS_EXITED);
	cr_assert_eq(asked, 1);
	cr_assert_eq(capture_check_end(&c, c.start_ns + 1000000000ULL, NULL, NULL),
		     CAPTURE_END_DURATION);
	stop = 1;
	cr_assert_eq(capture_check_end(&c, c.start_ns + 1, NULL, NULL), CAPTURE_END_SIGNAL);
	cr_assert_str_eq(capture_end_name(CAPTURE_END_TARGETS_EXITED, true), "targets exited");
	cr_assert_str_eq(capture_end_name(CAPTURE_END_TARGETS_EXITED, false), "target exited");
}
