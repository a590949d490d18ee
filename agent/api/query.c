/* query.c — request targets of the HTTP API parsed into what each endpoint needs (query.h).
 * The server hands the raw target over as received (libmicrohttpd's URI log callback), so
 * the exact bytes a client sent are what this code, and its fuzz target, sees. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"
#include "store/query_time.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes src[0..len) into *dst (advanced, NUL-terminated); plus_space: '+' is a
 * space (query strings, not paths). Refuses bad escapes, NUL bytes and results longer than
 * max. */
static int decode(const char *src, size_t len, bool plus_space, char **dst, const char *end,
		  size_t max, struct gs_error *err)
{
	char *o = *dst;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= len || (h = hexval(src[i + 1])) < 0 ||
			    (l = hexval(src[i + 2])) < 0)
				return gs_error_set(err, -EINVAL, "bad percent escape");
			c = (char)(h * 16 + l);
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		if (c == '\0')
			return gs_error_set(err, -EINVAL, "NUL byte in the request");
		if (++n > max || o + 1 >= end)
			return gs_error_set(err, -EINVAL, "parameter longer than %d bytes",
					    API_MAX_VALUE);
		*o++ = c;
	}
	*o++ = '\0';
	*dst = o;
	return 0;
}

int api_query_parse(const char *target, size_t len, struct api_query *q, struct gs_error *err)
{
	const char *qm, *p, *end = target + len;
	char *o = q->buf, *oend = q->buf + sizeof(q->buf);
	char *path = q->path;
	int rc;

	q->nparams = 0;
	q->path[0] = '\0';
	if (len > API_MAX_URI)
		return gs_error_set(err, -E2BIG, "request target longer than %d bytes",
				    API_MAX_URI);
	qm = memchr(target, '?', len);
	rc = decode(target, (size_t)((qm ? qm : end) - target), false, &path,
		    q->path + sizeof(q->path), sizeof(q->path) - 1, err);
	if (rc < 0)
		return gs_error_prefix(err, "path");
	if (!qm)
		return 0;
	for (p = qm + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		struct api_param *pa;

		if (stop == p) { /* "a=1&&b=2", or a trailing '&' */
			p = stop + 1;
			continue;
		}
		if (q->nparams == API_MAX_PARAMS)
			return gs_error_set(err, -EINVAL, "more than %d parameters",
					    API_MAX_PARAMS);
		pa = &q->params[q->nparams];
		pa->name = o;
		rc = decode(p, (size_t)((eq ? eq : stop) - p), true, &o, oend, API_MAX_VALUE, err);
		if (rc < 0)
			return rc;
		pa->value = o;
		rc = decode(eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, true, &o, oend,
			    API_MAX_VALUE, err);
		if (rc < 0)
			return gs_error_prefix(err, "parameter %s", pa->name);
		if (!pa->name[0])
			return gs_error_set(err, -EINVAL, "parameter without a name");
		q->nparams++;
		p = amp ? amp + 1 : end;
	}
	return 0;
}

const char *api_query_get(const struct api_query *q, const char *name)
{
	for (size_t i = 0; i < q->nparams; i++)
		if (!strcmp(q->params[i].name, name))
			return q->params[i].value;
	return NULL;
}

/* Every parameter is one of allowed (NULL-terminated; a name ending in '.' allows any name
 * with that prefix) and given once (prefixed ones excepted). */
static int check_names(const struct api_query *q, const char *const *allowed, struct gs_error *err)
{
	for (size_t i = 0; i < q->nparams; i++) {
		const char *n = q->params[i].name;
		bool ok = false, prefix = false;

		for (const char *const *a = allowed; *a && !ok; a++) {
			size_t al = strlen(*a);

			if ((*a)[al - 1] == '.') {
				ok = prefix = !strncmp(n, *a, al) && n[al];
			} else {
				ok = !strcmp(n, *a);
			}
		}
		if (!ok)
			return gs_error_set(err, -EINVAL, "unknown parameter '%.64s'", n);
		for (size_t j = 0; j < i && !prefix; j++)
			if (!strcmp(q->params[j].name, n))
				return gs_error_set(err, -EINVAL, "parameter '%.64s' given twice",
						    n);
	}
	return 0;
}

/* A decimal integer in [min, max], nothing else (no sign, spaces or suffix). */
static int parse_uint(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out,
		      struct gs_error *err)
{
	uint64_t v = 0;

	if (!*s)
		return gs_error_set(err, -EINVAL, "%s: empty", name);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return gs_error_set(err, -EINVAL, "%s: not a number: '%.32s'", name, s);
		if (v > (UINT64_MAX - 9) / 10)
			return gs_error_set(err, -EINVAL, "%s: out of range", name);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return gs_error_set(err, -EINVAL, "%s must be between %llu and %llu", name,
				    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int api_parse_duration(const char *s, uint64_t *out_ns, struct gs_error *err)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"ns", 1},	 {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
		     {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
	const char *p = s;
	double total = 0;

	if (!*s)
		return gs_error_set(err, -EINVAL, "empty duration");
	if (strspn(s, "0123456789") == strlen(s)) {
		uint64_t v;

		if (parse_uint("duration", s, 0, API_MAX_DURATION_NS, &v, err) < 0)
			return -EINVAL;
		*out_ns = v;
		return 0;
	}
	/* At most one term per unit: bounded, and "1s1s" is not a duration. */
	for (int terms = 0; *p; terms++) {
		char *e;
		double v;
		size_t best = 0, bi = 0;

		if (terms >= (int)(sizeof(units) / sizeof(units[0])) ||
		    ((*p < '0' || *p > '9') && *p != '.'))
			return gs_error_set(err, -EINVAL, "bad duration '%.32s'", s);
		v = strtod(p, &e);
		if (e == p || !isfinite(v) || v < 0)
			return gs_error_set(err, -EINVAL, "bad duration '%.32s'", s);
		p = e;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t ul = strlen(units[i].unit);

			if (!strncmp(p, units[i].unit, ul) && ul > best) {
				best = ul;
				bi = i;
			}
		}
		if (!best)
			return gs_error_set(err, -EINVAL,
					    "bad duration '%.32s' (units: ns, us, ms, s, m, h)", s);
		total += v * units[bi].ns;
		p += best;
	}
	if (total > (double)API_MAX_DURATION_NS)
		return gs_error_set(err, -EINVAL, "duration too long");
	*out_ns = (uint64_t)total;
	return 0;
}

static int copy_value(const char *name, const char *v, char *out, size_t len, struct gs_error *err)
{
	if (!*v)
		return gs_error_set(err, -EINVAL, "%s: empty", name);
	if (strlen(v) >= len)
		return gs_error_set(err, -EINVAL, "%s: longer than %zu bytes", name, len - 1);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int parse_selector(const struct api_query *q, struct api_selector *sel, struct gs_error *err)
{
	const char *pid = api_query_get(q, "pid"), *svc = api_query_get(q, "service");
	const char *cid = api_query_get(q, "container_id"), *ns = api_query_get(q, "namespace");
	const char *pod = api_query_get(q, "pod"), *ctr = api_query_get(q, "container");
	int ways = !!pid + !!svc + !!cid + !!(ns || pod || ctr);
	uint64_t v;

	memset(sel, 0, sizeof(*sel));
	if (ways == 0)
		return gs_error_set(err, -EINVAL,
				    "which process? pid=, service=, container_id= or "
				    "namespace=&pod=[&container=]");
	if (ways > 1)
		return gs_error_set(err, -EINVAL,
				    "give one of pid=, service=, container_id=, namespace=&pod=");
	if (pid) {
		if (parse_uint("pid", pid, 1, INT_MAX, &v, err) < 0)
			return -EINVAL;
		sel->pid = (pid_t)v;
		return 0;
	}
	if (svc)
		return copy_value("service", svc, sel->service, sizeof(sel->service), err);
	if (cid) {
		size_t n = strlen(cid);

		if (n < API_MIN_CONTAINER_PREFIX || n >= sizeof(sel->container_id) ||
		    strspn(cid, "0123456789abcdef") != n)
			return gs_error_set(err, -EINVAL,
					    "container_id: %d to 64 lowercase hex digits",
					    API_MIN_CONTAINER_PREFIX);
		memcpy(sel->container_id, cid, n + 1);
		return 0;
	}
	if (!ns || !pod)
		return gs_error_set(err, -EINVAL, "namespace= and pod= go together");
	if (copy_value("namespace", ns, sel->k8s_namespace, sizeof(sel->k8s_namespace), err) < 0 ||
	    copy_value("pod", pod, sel->k8s_pod, sizeof(sel->k8s_pod), err) < 0)
		return -EINVAL;
	if (ctr &&
	    copy_value("container", ctr, sel->k8s_container, sizeof(sel->k8s_container), err) < 0)
		return -EINVAL;
	return 0;
}

int api_capture_parse(const struct api_query *q, enum api_capture_kind kind, unsigned max_seconds,
		      struct api_capture *out, struct gs_error *err)
{
	static const char *const cpu_names[] = {"pid", "service",   "container_id", "namespace",
						"pod", "container", "seconds",	    NULL};
	static const char *const block_names[] = {
		"pid",	   "service",	   "container_id", "namespace", "pod", "container",
		"seconds", "max_overhead", "min_delay",	   "reasons",	NULL};
	static const char *const heap_names[] = {
		"pid", "service", "container_id", "namespace", "pod", "container", NULL};
	const char *const *names = kind == API_CAPTURE_BLOCK  ? block_names
				   : kind == API_CAPTURE_HEAP ? heap_names
							      : cpu_names;
	const char *v;
	uint64_t secs = API_DEFAULT_SECONDS;

	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->max_overhead_pct = -1;
	if (check_names(q, names, err) < 0 || parse_selector(q, &out->sel, err) < 0)
		return -EINVAL;
	if ((v = api_query_get(q, "seconds")) &&
	    parse_uint("seconds", v, 1, UINT32_MAX, &secs, err) < 0)
		return -EINVAL;
	if (max_seconds && secs > max_seconds) {
		secs = max_seconds;
		out->capped = true;
	}
	out->duration_ns = kind == API_CAPTURE_HEAP ? 0 : secs * 1000000000ULL;
	if ((v = api_query_get(q, "max_overhead"))) {
		char *e;
		double d = strtod(v, &e);

		if (e == v || *e || !isfinite(d) || d <= 0 || d > 100)
			return gs_error_set(err, -EINVAL,
					    "max_overhead: a percentage above 0, at most 100");
		out->max_overhead_pct = d;
	}
	if ((v = api_query_get(q, "min_delay")) &&
	    api_parse_duration(v, &out->min_delay_ns, err) < 0)
		return gs_error_prefix(err, "min_delay");
	if ((v = api_query_get(q, "reasons"))) {
		if (copy_value("reasons", v, out->reasons, sizeof(out->reasons), err) < 0)
			return -EINVAL;
		if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
			      ",_-()") != strlen(v))
			return gs_error_set(err, -EINVAL,
					    "reasons: a comma-separated list of wait reasons");
	}
	return 0;
}

int api_stored_parse(const struct api_query *q, bool merge, int64_t now_ns, struct api_stored *out,
		     struct gs_error *err)
{
	static const char *const list_names[] = {"service", "type",  "pid",    "from",
						 "to",	    "limit", "label.", NULL};
	static const char *const merge_names[] = {"service", "type",   "pid", "from",
						  "to",	     "label.", NULL};
	const char *v;
	uint64_t n;

	memset(out, 0, sizeof(*out));
	out->limit = API_DEFAULT_LIST_LIMIT;
	if (check_names(q, merge ? merge_names : list_names, err) < 0)
		return -EINVAL;
	if ((v = api_query_get(q, "service")) && !*v)
		return gs_error_set(err, -EINVAL, "service: empty");
	out->service = v;
	if ((v = api_query_get(q, "type")) && !*v)
		return gs_error_set(err, -EINVAL, "type: empty");
	out->type = v;
	if ((v = api_query_get(q, "pid"))) {
		if (parse_uint("pid", v, 1, INT_MAX, &n, err) < 0)
			return -EINVAL;
		out->pid = (pid_t)n;
	}
	v = api_query_get(q, "from");
	if (query_time_parse(v ? v : API_DEFAULT_FROM, now_ns, &out->from_ns, err) < 0)
		return gs_error_prefix(err, "from");
	v = api_query_get(q, "to");
	if (query_time_parse(v ? v : "now", now_ns, &out->to_ns, err) < 0)
		return gs_error_prefix(err, "to");
	if (out->to_ns <= out->from_ns)
		return gs_error_set(err, -EINVAL, "to must be after from");
	if ((v = api_query_get(q, "limit"))) {
		if (parse_uint("limit", v, 1, API_MAX_LIST_LIMIT, &n, err) < 0)
			return -EINVAL;
		out->limit = (size_t)n;
	}
	for (size_t i = 0; i < q->nparams; i++) {
		if (strncmp(q->params[i].name, "label.", 6))
			continue;
		if (out->nlabels == API_MAX_LABELS)
			return gs_error_set(err, -EINVAL, "at most %d label matchers",
					    API_MAX_LABELS);
		out->label_keys[out->nlabels] = q->params[i].name + 6;
		out->label_values[out->nlabels++] = q->params[i].value;
	}
	return 0;
}
