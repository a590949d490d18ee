/* query_time.c — see query_time.h. Hand-written rather than strptime: strptime ignores
 * offsets and fractions and accepts trailing junk, which would silently shift a query. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/query_time.h"

#define NS_PER_S 1000000000LL
/* Relative times at most ten years back: beyond that the caller mistyped. */
#define MAX_RELATIVE_NS (10LL * 366 * 86400 * NS_PER_S)

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* "-15m", "-1h30m", "-90s", "-500ms" (also with '+'). */
static int parse_relative(const char *s, int64_t now, int64_t *out)
{
	int sign = *s == '-' ? -1 : 1;
	int64_t total = 0;
	const char *p = s + 1;

	if (!*p)
		return -EINVAL;
	while (*p) {
		static const struct {
			const char *u;
			int64_t ns;
		} units[] = {{"ms", 1000000LL},
			     {"s", NS_PER_S},
			     {"m", 60 * NS_PER_S},
			     {"h", 3600 * NS_PER_S},
			     {"d", 86400 * NS_PER_S}};
		char *end;
		double v;
		size_t i;

		errno = 0;
		v = strtod(p, &end);
		if (errno || end == p || v < 0 || *p == '+' || *p == '-')
			return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].u);

			if (!strncmp(end, units[i].u, n))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		if (v * (double)units[i].ns > (double)MAX_RELATIVE_NS)
			return -EINVAL;
		total += (int64_t)(v * (double)units[i].ns);
		if (total > MAX_RELATIVE_NS)
			return -EINVAL;
		p = end + strlen(units[i].u);
	}
	*out = now + sign * total;
	return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't'/' ' and 'z' accepted too. */
static int parse_rfc3339(const char *p, int64_t *out)
{
	int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = NS_PER_S / 10;
	struct tm tm = {0};
	time_t t;

	if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' ||
	    !digits(&p, 2, &D))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &m) || *p++ != ':' ||
	    !digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	t = timegm(&tm);
	t -= sign * (oh * 3600 + om * 60);
	/* Only times int64 nanoseconds can hold (1970 to 2262). */
	if (t < 0 || (int64_t)t >= INT64_MAX / NS_PER_S)
		return -EINVAL;
	*out = (int64_t)t * NS_PER_S + frac;
	return 0;
}

int query_time_parse(const char *s, int64_t now_ns, int64_t *out, struct gs_error *err)
{
	int rc = -EINVAL;

	if (!s || !*s)
		return gs_error_set(err, -EINVAL, "empty time");
	if (!strcmp(s, "now")) {
		*out = now_ns;
		return 0;
	}
	if (*s == '-' || *s == '+') {
		rc = parse_relative(s, now_ns, out);
	} else if (strlen(s) > 10 && s[4] == '-') {
		rc = parse_rfc3339(s, out);
	} else {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		/* Unix seconds that fit int64 nanoseconds (to the year 2262). */
		if (!errno && !*end && v >= 0 && v <= INT64_MAX / NS_PER_S) {
			*out = v * NS_PER_S;
			rc = 0;
		}
	}
	if (rc < 0)
		return gs_error_set(err, -EINVAL,
				    "bad time '%.64s' (RFC 3339, Unix seconds, -15m or now)", s);
	return 0;
}
