/* test_api_query.c — the HTTP API's request-target parsing (agent/api/query.c): decoding,
 * bounds, selectors, capture parameters, stored-profile queries and durations. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "api/query.h"

#define NOW_NS 1764583200000000000LL /* 2025-12-01T10:00:00Z */

static struct api_query q;

static int parse(const char *target)
{
	struct gs_error err = {0};

	return api_query_parse(target, strlen(target), &q, &err);
}

Test(api_query, decodes_path_and_parameters)
{
	cr_assert_eq(parse("/pprof/cpu?pid=12&service=a+b%2Fc&empty=&flag&&"), 0);
	cr_assert_str_eq(q.path, "/pprof/cpu");
	cr_assert_eq(q.nparams, 4);
	cr_assert_str_eq(api_query_get(&q, "service"), "a b/c");
	cr_assert_str_eq(api_query_get(&q, "empty"), "");
	cr_assert_str_eq(api_query_get(&q, "flag"), "");
	cr_assert_null(api_query_get(&q, "nope"));
	cr_assert_eq(parse("/a%20b"), 0);
	cr_assert_str_eq(q.path, "/a b");
}

Test(api_query, refuses_bad_input)
{
	char big[API_MAX_URI + 10];
	char many[4096] = "/x?";

	cr_assert_eq(parse("/x?a=%zz"), -EINVAL);
	cr_assert_eq(parse("/x?a=%4"), -EINVAL);
	cr_assert_eq(parse("/x?a=%00"), -EINVAL);
	cr_assert_eq(parse("/x?=1"), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(parse(big), -E2BIG);
	for (int i = 0; i <= API_MAX_PARAMS; i++)
		strcat(many, "a=1&");
	cr_assert_eq(parse(many), -EINVAL);
}

static int capture(const char *target, enum api_capture_kind k, struct api_capture *c)
{
	struct gs_error err = {0};

	cr_assert_eq(parse(target), 0, "%s", target);
	return api_capture_parse(&q, k, 300, c, &err);
}

Test(api_query, capture_selectors_and_parameters)
{
	struct api_capture c;

	cr_assert_eq(capture("/pprof/cpu?pid=42", API_CAPTURE_CPU, &c), 0);
	cr_assert_eq(c.sel.pid, 42);
	cr_assert_eq(c.duration_ns, API_DEFAULT_SECONDS * 1000000000ULL);
	cr_assert_eq(capture("/pprof/cpu?pid=42&seconds=1000", API_CAPTURE_CPU, &c), 0);
	cr_assert_eq(c.duration_ns, 300 * 1000000000ULL);
	cr_assert(c.capped);
	cr_assert_eq(capture("/pprof/block?namespace=ns&pod=p&container=c&max_overhead=2.5&"
			     "min_delay=1ms500us&reasons=select,chan+receive",
			     API_CAPTURE_BLOCK, &c),
		     0);
	cr_assert_str_eq(c.sel.k8s_namespace, "ns");
	cr_assert_str_eq(c.sel.k8s_container, "c");
	cr_assert_float_eq(c.max_overhead_pct, 2.5, 1e-9);
	cr_assert_eq(c.min_delay_ns, 1500000);
	cr_assert_str_eq(c.reasons, "select,chan receive");
	cr_assert_eq(capture("/pprof/cpu?container_id=0123456789ab", API_CAPTURE_CPU, &c), 0);
	/* refused */
	cr_assert_eq(capture("/pprof/cpu", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=0", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=-1", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=1&pid=1", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=1&service=x", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pod=x", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?container_id=abc", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=1&min_delay=1ms", API_CAPTURE_CPU, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/block?pid=1&max_overhead=0", API_CAPTURE_BLOCK, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/block?pid=1&reasons=a;b", API_CAPTURE_BLOCK, &c), -EINVAL);
	cr_assert_eq(capture("/pprof/cpu?pid=1&seconds=1e3", API_CAPTURE_CPU, &c), -EINVAL);
}

Test(api_query, stored_queries)
{
	struct api_stored st;
	struct gs_error err = {0};

	cr_assert_eq(parse("/api/profiles?service=etcd&label.node=n1&label.pid=7&limit=5"), 0);
	cr_assert_eq(api_stored_parse(&q, false, NOW_NS, &st, &err), 0, "%s", err.msg);
	cr_assert_str_eq(st.service, "etcd");
	cr_assert_eq(st.nlabels, 2);
	cr_assert_str_eq(st.label_keys[1], "pid");
	cr_assert_eq(st.limit, 5);
	cr_assert_eq(st.to_ns, NOW_NS);
	cr_assert_eq(st.from_ns, NOW_NS - 3600LL * 1000000000LL);
	cr_assert_eq(parse("/api/profiles/merge?from=2026-12-01T10:00:00Z&to=1796122800"), 0);
	cr_assert_eq(api_stored_parse(&q, true, NOW_NS, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.from_ns, 1796119200LL * 1000000000LL);
	cr_assert_eq(st.to_ns, 1796122800LL * 1000000000LL);
	cr_assert_eq(parse("/api/profiles/merge?limit=3"), 0);
	cr_assert_eq(api_stored_parse(&q, true, NOW_NS, &st, &err), -EINVAL); /* no limit */
	cr_assert_eq(parse("/api/profiles?from=-1h&to=-2h"), 0);
	cr_assert_eq(api_stored_parse(&q, false, NOW_NS, &st, &err), -EINVAL);
	cr_assert_eq(parse("/api/profiles?label.=x"), 0);
	cr_assert_eq(api_stored_parse(&q, false, NOW_NS, &st, &err), -EINVAL);
	cr_assert_eq(parse("/api/profiles?from=99999999999"), 0);
	cr_assert_eq(api_stored_parse(&q, false, NOW_NS, &st, &err), -EINVAL);
}

Test(api_query, durations)
{
	struct gs_error err = {0};
	uint64_t ns;

	cr_assert_eq(api_parse_duration("250ms", &ns, &err), 0);
	cr_assert_eq(ns, 250000000);
	cr_assert_eq(api_parse_duration("1h2m3s", &ns, &err), 0);
	cr_assert_eq(ns, 3723000000000ULL);
	cr_assert_eq(api_parse_duration("1.5s", &ns, &err), 0);
	cr_assert_eq(ns, 1500000000);
	cr_assert_eq(api_parse_duration("100us", &ns, &err), 0);
	cr_assert_eq(ns, 100000);
	cr_assert_eq(api_parse_duration("42", &ns, &err), 0);
	cr_assert_eq(ns, 42);
	cr_assert_eq(api_parse_duration("", &ns, &err), -EINVAL);
	cr_assert_eq(api_parse_duration("1x", &ns, &err), -EINVAL);
	cr_assert_eq(api_parse_duration("-1s", &ns, &err), -EINVAL);
	cr_assert_eq(api_parse_duration("1s1s1s1s1s1s1s1s", &ns, &err), -EINVAL);
	cr_assert_eq(api_parse_duration("99999999999999999999", &ns, &err), -EINVAL);
	cr_assert_eq(api_parse_duration("999999999999h", &ns, &err), -EINVAL);
}
