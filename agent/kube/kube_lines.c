/* kube_lines.c — a watch response to its lines. The API server streams one JSON watch event
 * per line (newline-delimited, chunked); the bytes arrive in arbitrary pieces, so they are
 * collected until a newline. Each line is bounded (kube_lines.max): a server that never ends
 * a line would otherwise grow the agent's memory without limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_impl.h"

#define LINES_FIRST_CAP 4096

/* Makes room for need bytes plus a NUL, growing geometrically up to max + 1. */
static int reserve(struct kube_lines *l, size_t need)
{
	size_t cap = l->cap ? l->cap : LINES_FIRST_CAP;
	char *b;

	if (need + 1 <= l->cap)
		return 0;
	while (cap < need + 1)
		cap *= 2;
	if (cap > l->max + 1)
		cap = l->max + 1;
	b = realloc(l->buf, cap);
	if (!b)
		return -ENOMEM;
	l->buf = b;
	l->cap = cap;
	return 0;
}

int kube_lines_feed(struct kube_lines *l, const char *data, size_t n,
		    int (*fn)(void *arg, char *line, size_t len), void *arg)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		int rc;

		if (l->len + take > l->max)
			return -E2BIG;
		rc = reserve(l, l->len + take);
		if (rc < 0)
			return rc;
		memcpy(l->buf + l->len, data, take);
		l->len += take;
		l->buf[l->len] = '\0';
		data += take;
		n -= take;
		if (!nl)
			break;
		data++; /* the newline */
		n--;
		rc = l->len ? fn(arg, l->buf, l->len) : 0;
		l->len = 0;
		if (rc)
			return rc;
	}
	return 0;
}

void kube_lines_reset(struct kube_lines *l)
{
	l->len = 0;
}

void kube_lines_free(struct kube_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = l->cap = 0;
}
