/* test_block.c — the pure parts of goscope block (agent/capture/block_*.c, agent/goruntime/goversion_table.c):
 * the Go version gate (no Go < 1.17 toolchain is installed here, so the "unsupported" path is
 * tested on version strings), wait-reason tables per version (1.26 reordered them), the
 * prologue decoder that places probes on the stack-check branch, --reasons parsing and
 * the duty-cycle fraction of --max-overhead and its state machine. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "capture/block.h"
#include "capture/block_impl.h"
#include "goruntime/goversion_table.h"
#include "goscope/block.h"

Test(block_version, old_go_is_unsupported)
{
	struct goversion_facts f;
	struct gs_error err = {0};

	cr_assert_eq(goversion_lookup("go1.16.15", &f, &err), -EPROTONOSUPPORT);
	cr_assert(strstr(err.msg, "unsupported"), "%s", err.msg);
	cr_assert(strstr(err.msg, "go1.16.15"), "%s", err.msg);
	cr_assert_eq(goversion_lookup("go1.12", &f, &err), -EPROTONOSUPPORT);
	cr_assert_eq(goversion_lookup("devel", &f, &err), -EINVAL);
	cr_assert_eq(goversion_lookup("go1.17", &f, &err), 0);
	cr_assert_not(f.measured);
	cr_assert_eq(goversion_lookup("go1.99.1", &f, &err), 0);
	cr_assert_not(f.measured);
}

static const char *reason(const char *ver, unsigned n)
{
	static struct goversion_facts f;
	static char buf[32];
	struct gs_error err = {0};

	cr_assert_eq(goversion_lookup(ver, &f, &err), 0, "%s", err.msg);
	return goversion_wait_reason(&f, n, buf, sizeof(buf));
}

/* Numbers from docs/go-runtime.md, "Wait reasons" (the runtime2.go const blocks, read back
 * from runtime.waitReasonStrings of binaries built with each toolchain). */
Test(block_version, wait_reasons_per_version)
{
	cr_assert_str_eq(reason("go1.19.8", 14), "chan receive");
	cr_assert_str_eq(reason("go1.19.8", 18), "semacquire");
	cr_assert_str_eq(reason("go1.19.8", 21), "timer goroutine (idle)");
	cr_assert_str_eq(reason("go1.21.13", 21), "sync.Mutex.Lock");
	cr_assert_str_eq(reason("go1.22.12", 36), "coroutine");
	cr_assert_str_eq(reason("go1.23.5", 37), "GC weak to strong wait");
	cr_assert_str_eq(reason("go1.24.4", 24), "sync.WaitGroup.Wait");
	/* go1.24.4 source says "select (synctest)"; the notes list 1.26+ wording */
	cr_assert_str_eq(reason("go1.24.4", 43), "select (synctest)");
	/* 1.26 reordered the enum */
	cr_assert_str_eq(reason("go1.26.10", 14), "sleep");
	cr_assert_str_eq(reason("go1.26.10", 19), "chan receive");
	cr_assert_str_eq(reason("go1.27.3", 20), "chan send");
	cr_assert_str_eq(reason("go1.27.3", 2), "IO wait");
	cr_assert_str_eq(reason("go1.27.3", 46), "cleanup wait");
	cr_assert_str_eq(reason("go1.27.3", 47), "waitReason(47)");
}

/* Every numbering is dense from 0 and names each number once: the string of n maps back to
 * n, and the number past the last one is unknown. Counts as in runtime.waitReasonStrings. */
Test(block_version, wait_reason_numberings_are_dense)
{
	static const struct {
		const char *version;
		size_t count;
	} v[] = {
		{"go1.19.8", 27}, {"go1.21.13", 32}, {"go1.22.12", 37}, {"go1.23.5", 38},
		{"go1.24.4", 44}, {"go1.26.10", 47}, {"go1.27.3", 47},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct goversion_facts f;
		char buf[32], want[32];

		cr_assert_eq(goversion_lookup(v[i].version, &f, NULL), 0);
		cr_assert_eq(f.nwait_reasons, v[i].count, "%s", v[i].version);
		for (unsigned n = 0; n < f.nwait_reasons; n++) {
			const char *s = goversion_wait_reason(&f, n, buf, sizeof(buf));

			cr_assert_eq(goversion_wait_reason_number(&f, s), (int)n, "%s %u '%s'",
				     v[i].version, n, s);
		}
		snprintf(want, sizeof(want), "waitReason(%zu)", v[i].count);
		cr_assert_str_eq(goversion_wait_reason(&f, (unsigned)v[i].count, buf, sizeof(buf)),
				 want);
	}
}

/* A string is only known to the versions that have it: 1.26 renamed 1.24's synctest
 * reasons, 1.21 dropped "timer goroutine (idle)". */
Test(block_version, wait_reason_strings_per_version)
{
	struct goversion_facts f;

	cr_assert_eq(goversion_lookup("go1.24.4", &f, NULL), 0);
	cr_assert_eq(goversion_wait_reason_number(&f, "chan receive (synctest)"), 41);
	cr_assert_eq(goversion_wait_reason_number(&f, "chan receive (durable)"), -ENOENT);
	cr_assert_eq(goversion_lookup("go1.26.10", &f, NULL), 0);
	cr_assert_eq(goversion_wait_reason_number(&f, "chan receive (durable)"), 42);
	cr_assert_eq(goversion_wait_reason_number(&f, "chan receive (synctest)"), -ENOENT);
	cr_assert_eq(goversion_wait_reason_number(&f, "timer goroutine (idle)"), -ENOENT);
	cr_assert_eq(goversion_lookup("go1.19.8", &f, NULL), 0);
	cr_assert_eq(goversion_wait_reason_number(&f, "timer goroutine (idle)"), 21);
	cr_assert_eq(goversion_wait_reason_number(&f, "sync.Mutex.Lock"), -ENOENT);
}

Test(block_version, goid_offsets)
{
	struct goversion_facts f;

	cr_assert_eq(goversion_lookup("go1.19.8", &f, NULL), 0);
	cr_assert_eq(f.g_goid, 152);
	cr_assert_eq(goversion_lookup("go1.23.5", &f, NULL), 0);
	cr_assert_eq(f.g_goid, 160);
	cr_assert_eq(goversion_lookup("go1.24.4", &f, NULL), 0);
	cr_assert_eq(f.g_goid, 160);
	cr_assert_eq(goversion_lookup("go1.27.3", &f, NULL), 0);
	cr_assert_eq(f.g_goid, 152);
}

/* The other offsets, as measured (docs/go-runtime.md, "runtime.g and runtime.pollDesc
 * offsets"): g.syscallbp moved them +8 in 1.23, gobuf.ret's removal -8 in 1.26. */
Test(block_version, g_and_polldesc_offsets)
{
	static const struct {
		const char *version;
		uint32_t status, schedlink, waitreason, rg, wg;
	} v[] = {
		{"go1.19.8", 144, 160, 176, 24, 32},  {"go1.21.13", 144, 160, 176, 32, 40},
		{"go1.22.12", 144, 160, 176, 32, 40}, {"go1.23.5", 152, 168, 184, 32, 40},
		{"go1.24.4", 152, 168, 184, 32, 40},  {"go1.26.10", 144, 160, 176, 32, 40},
		{"go1.27.3", 144, 160, 176, 32, 40},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct goversion_facts f;

		cr_assert_eq(goversion_lookup(v[i].version, &f, NULL), 0);
		cr_assert(f.measured, "%s", v[i].version);
		cr_assert_eq(f.g_atomicstatus, v[i].status, "%s", v[i].version);
		cr_assert_eq(f.g_schedlink, v[i].schedlink, "%s", v[i].version);
		cr_assert_eq(f.g_waitreason, v[i].waitreason, "%s", v[i].version);
		cr_assert_eq(f.pd_rg, v[i].rg, "%s", v[i].version);
		cr_assert_eq(f.pd_wg, v[i].wg, "%s", v[i].version);
	}
}

/* g.trackingSeq tells one park from the next; only measured offsets are used. */
Test(block_version, tracking_seq_offsets)
{
	struct goversion_facts f;

	cr_assert_eq(goversion_lookup("go1.19.8", &f, NULL), 0);
	cr_assert_eq(f.g_tracking_seq, 189);
	cr_assert_eq(goversion_lookup("go1.23.5", &f, NULL), 0);
	cr_assert_eq(f.g_tracking_seq, 199);
	cr_assert_eq(goversion_lookup("go1.27.3", &f, NULL), 0);
	cr_assert_eq(f.g_tracking_seq, 191);
	cr_assert_eq(goversion_lookup("go1.25.1", &f, NULL), 0);
	cr_assert_eq(f.g_tracking_seq, 0, "1.25 is not installed here: not measured");
	cr_assert_eq(goversion_lookup("go1.31", &f, NULL), 0);
	cr_assert_eq(f.g_tracking_seq, 0, "a newer Go than the table: not known");
}

/* The throttled cycle plan keeps (window x (1 + drain) + attach/detach churn) / cycle
 * within the affordable attached fraction, stretching the cycle when the churn is large. */
Test(block_duty, plan_cycle)
{
	uint64_t on, cycle;

	/* Cheap churn: a 1 s cycle, the window fills the budget (capped by the growth). */
	block_plan_cycle(0.10, 5000000, 2.0, 40000000, &on, &cycle);
	cr_assert_eq(cycle, 1000000000ULL);
	cr_assert_eq(on, 47500000ULL); /* (0.1 x 1 s - 5 ms) / 2 */
	/* 350 ms of churn at 5 %: the cycle stretches to (20 ms x 3 + 350 ms) / 0.05 = 8.2 s. */
	block_plan_cycle(0.05, 350000000, 3.0, 20000000, &on, &cycle);
	cr_assert_eq(cycle, 8200000000ULL);
	cr_assert_eq(on, 20000000ULL);
	cr_assert_leq((double)(on * 3 + 350000000) / (double)cycle, 0.05 + 1e-9);
	/* More than 10 s would be needed: capped, shortest window. */
	block_plan_cycle(0.01, 350000000, 3.0, 20000000, &on, &cycle);
	cr_assert_eq(cycle, 10000000000ULL);
	cr_assert_eq(on, 20000000ULL);
	/* An idle cycle (everything affordable) at most doubles the window. */
	block_plan_cycle(1.0, 5000000, 1.0, 20000000, &on, &cycle);
	cr_assert_eq(on, 40000000ULL);
	cr_assert_eq(cycle, 1000000000ULL);
}

/* Prologues as the Go linker emits them (objdump of gopark/ready/execute, 1.19-1.27). */
Test(block_prologue, on_stack_check_branch)
{
	static const uint8_t rel32[] = {0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xdc,
					0x00, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5};
	static const uint8_t rel8[] = {0x49, 0x3b, 0x66, 0x10, 0x76, 0x20, 0x55};
	static const uint8_t big8[] = {0x4c, 0x8d, 0x64, 0x24, 0xd8, 0x4d, 0x3b, 0x66,
				       0x10, 0x0f, 0x86, 0x10, 0x01, 0x00, 0x00, 0x55};
	static const uint8_t big32[] = {0x4c, 0x8d, 0xa4, 0x24, 0x00, 0xfe, 0xff, 0xff,
					0x4d, 0x3b, 0x66, 0x10, 0x76, 0x10, 0x55};
	static const uint8_t nosplit[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x58};

	cr_assert_eq(block_probe_offset(rel32, sizeof(rel32)), 4);
	cr_assert_eq(block_probe_offset(rel8, sizeof(rel8)), 4);
	cr_assert_eq(block_probe_offset(big8, sizeof(big8)), 9);
	cr_assert_eq(block_probe_offset(big32, sizeof(big32)), 12);
	cr_assert_eq(block_probe_offset(nosplit, sizeof(nosplit)), -ENOENT);
	cr_assert_eq(block_probe_offset(rel32, 5), -ENOENT);
}

Test(block_reasons, parse)
{
	struct goversion_facts f;
	uint8_t allowed[BLOCK_MAX_REASONS];
	struct gs_error err = {0};
	bool io;

	cr_assert_eq(goversion_lookup("go1.27.3", &f, NULL), 0);
	cr_assert_eq(block_parse_reasons("chan receive,IO wait", &f, allowed, &io, &err), 0);
	cr_assert(io);
	cr_assert_eq(allowed[19], 1);
	cr_assert_eq(allowed[2], 1);
	cr_assert_eq(allowed[20], 0);
	cr_assert_eq(block_parse_reasons("sync.Mutex.Lock", &f, allowed, &io, &err), 0);
	cr_assert_not(io);
	cr_assert_eq(allowed[22], 1);
	cr_assert_eq(block_parse_reasons("chan receive,bogus", &f, allowed, &io, &err), -EINVAL);
	cr_assert(strstr(err.msg, "bogus"), "%s", err.msg);
}

/* A list of separators only names no reason: it would capture nothing (issue 11, defect 10). */
Test(block_reasons, empty_list_refused)
{
	struct goversion_facts f;
	uint8_t allowed[BLOCK_MAX_REASONS];
	struct gs_error err = {0};
	bool io;

	cr_assert_eq(goversion_lookup("go1.27.3", &f, NULL), 0);
	cr_assert_eq(block_parse_reasons(",,,", &f, allowed, &io, &err), -EINVAL);
	cr_assert(strstr(err.msg, "no wait reason"), "%s", err.msg);
	cr_assert_eq(block_parse_reasons(",chan receive,", &f, allowed, &io, &err), 0);
}

Test(block_overhead, duty_fraction)
{
	/* 100k hits/s at 9 us = 0.9 CPU-s/s while on; the target uses 1 CPU: 2% -> 2.2% on */
	cr_assert_float_eq(block_duty_fraction(2, 9000, 100000, 1.0), 0.02 / 0.9, 1e-9);
	cr_assert_float_eq(block_duty_fraction(100, 9000, 100000, 1.0), 1.0, 1e-12);
	cr_assert_float_eq(block_duty_fraction(2, 9000, 10, 1.0), 1.0, 1e-12);
	cr_assert_float_eq(block_duty_fraction(2, 9000, 0, 0), 1.0, 1e-12);
	/* an idle target with many hits: floor */
	cr_assert_float_eq(block_duty_fraction(2, 9000, 1e6, 0.0), 0.005, 1e-12);
}

/* The duty cycle's transitions (block_duty.c): ON until the on-window has run (counted from
 * the end of the attach, which is later than the tick that began it), DRAINING until the
 * window's parks are resolved or the drain's end, OFF until the cycle's end. */
Test(block_duty, state_transitions)
{
	struct block_duty d = {.state = BLOCK_DUTY_ON,
			       .window_start = 1000,
			       .on_len = 100,
			       .drain_end = 1400,
			       .cycle_end = 2000};

	cr_assert_eq(block_duty_next(&d, 990, 0), BLOCK_DUTY_ON, "before the window began");
	cr_assert_eq(block_duty_next(&d, 1099, 0), BLOCK_DUTY_ON);
	cr_assert_eq(block_duty_next(&d, 1100, 0), BLOCK_DUTY_DRAINING);
	d.state = BLOCK_DUTY_DRAINING;
	cr_assert_eq(block_duty_next(&d, 1200, 3), BLOCK_DUTY_DRAINING);
	cr_assert_eq(block_duty_next(&d, 1200, 0), BLOCK_DUTY_OFF, "every park resolved");
	cr_assert_eq(block_duty_next(&d, 1400, 3), BLOCK_DUTY_OFF, "drain over");
	d.state = BLOCK_DUTY_OFF;
	cr_assert_eq(block_duty_next(&d, 1999, 0), BLOCK_DUTY_OFF);
	cr_assert_eq(block_duty_next(&d, 2000, 0), BLOCK_DUTY_ON);
	d.state = BLOCK_DUTY_UNTHROTTLED;
	cr_assert_eq(block_duty_next(&d, 5000, 0), BLOCK_DUTY_UNTHROTTLED);
	d.state = BLOCK_DUTY_STOPPED;
	cr_assert_eq(block_duty_next(&d, 5000, 0), BLOCK_DUTY_STOPPED);
}
