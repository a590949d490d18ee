/* push_labels.c — Pyroscope series labels and sample IDs of stored windows (push_labels.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/push_labels.h"

#define NAME_LABEL "__name__"
#define SERVICE_LABEL "service_name"
/* A service_name Pyroscope accepts when the row has none (it refuses an empty one). */
#define SERVICE_UNKNOWN "unknown_service"
/* Arena bytes beyond the JSON's for the labels the row does not have. */
#define LABELS_ARENA_EXTRA 256

static const struct {
	const char *type, *name;
} profile_names[] = {
	{"cpu", "process_cpu"},
	{"block", "block"},
	{"heap", "memory"},
	{"goroutines", "goroutines"},
};

const char *push_profile_name(const char *type)
{
	for (size_t i = 0; i < sizeof(profile_names) / sizeof(profile_names[0]); i++) {
		if (type && strcmp(type, profile_names[i].type) == 0)
			return profile_names[i].name;
	}
	return NULL;
}

static bool name_char(unsigned char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '.');
}

void push_sanitize_name(const char *in, char *out)
{
	size_t n = 0;

	/* A digit or '.' may follow but not lead: kept behind a '_'. Other bytes become '_'. */
	if (in[0] && !name_char((unsigned char)in[0], true) &&
	    name_char((unsigned char)in[0], false))
		out[n++] = '_';
	for (size_t i = 0; in[i] && n < PUSH_MAX_LABEL_NAME; i++)
		out[n++] = name_char((unsigned char)in[i], false) ? in[i] : '_';
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
}

/* The length of the valid UTF-8 sequence at s (1-4), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void push_sanitize_value(const char *in, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = 0;

	while (*s) {
		size_t k = utf8_len(s);

		if (k == 0) {
			if (n + 1 > PUSH_MAX_LABEL_VALUE)
				break;
			out[n++] = '?';
			s++;
			continue;
		}
		if (n + k > PUSH_MAX_LABEL_VALUE)
			break;
		memcpy(out + n, s, k);
		n += k;
		s += k;
	}
	out[n] = '\0';
}

void push_series_labels_free(struct push_series_labels *l)
{
	free(l->strings);
	memset(l, 0, sizeof(*l));
}

/* Appends name=value (sanitized) unless the sanitized name is there already or the series is
 * full; the strings go into the arena at *pos. */
static void add(struct push_series_labels *o, size_t *pos, const char *name, const char *value)
{
	char *nm = o->strings + *pos, *val;

	if (o->n >= PUSH_MAX_LABELS)
		return;
	push_sanitize_name(name, nm);
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->l[i].name, nm) == 0)
			return;
	}
	val = nm + strlen(nm) + 1;
	push_sanitize_value(value, val);
	o->l[o->n].name = nm;
	o->l[o->n].value = val;
	o->n++;
	*pos += strlen(nm) + 1 + strlen(val) + 1;
}

int push_series_labels(const char *type, const char *labels_json, struct push_series_labels *out,
		       struct gs_error *err)
{
	const char *pname = push_profile_name(type);
	cJSON *o, *it, *svc;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	if (!pname)
		return gs_error_set(err, -EINVAL, "push: no Pyroscope profile name for type '%s'",
				    type ? type : "");
	o = cJSON_Parse(labels_json ? labels_json : "");
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return gs_error_set(err, -EINVAL, "push: the row's labels are not a JSON object");
	}
	/* One arena for the strings. A sanitized name is at most its JSON text plus a '_' and a
	 * NUL, a value at most its JSON text plus a NUL (a byte of invalid UTF-8 becomes one
	 * '?'), and each pair has at least 6 bytes of JSON syntax: twice the JSON's length
	 * plus room for __name__ and the service fallback is more than enough. */
	out->strings = malloc(2 * strlen(labels_json) + LABELS_ARENA_EXTRA);
	if (!out->strings) {
		cJSON_Delete(o);
		return gs_error_set(err, -ENOMEM, "push: out of memory");
	}
	add(out, &pos, NAME_LABEL, pname);
	svc = cJSON_GetObjectItemCaseSensitive(o, SERVICE_LABEL);
	add(out, &pos, SERVICE_LABEL,
	    cJSON_IsString(svc) && svc->valuestring[0] ? svc->valuestring : SERVICE_UNKNOWN);
	cJSON_ArrayForEach(it, o)
	{
		/* An empty value is no label (as in Prometheus and Pyroscope's queries). */
		if (!it->string || !cJSON_IsString(it) || !it->valuestring[0] ||
		    strcmp(it->string, NAME_LABEL) == 0)
			continue;
		add(out, &pos, it->string, it->valuestring);
	}
	cJSON_Delete(o);
	return 0;
}

/* 64-bit FNV-1a over a byte string, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A finalizer (splitmix64's) so that close inputs give unrelated IDs. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void push_window_id(const char *node, int64_t row_id, int pid, uint64_t start_ticks,
		    int64_t start_ns, const char *type, char out[PUSH_ID_LEN])
{
	uint64_t h = 0xcbf29ce484222325ULL, hi, lo;

	h = fnv(h, node ? node : "", node ? strlen(node) + 1 : 1);
	h = fnv(h, type ? type : "", type ? strlen(type) + 1 : 1);
	h = fnv(h, &row_id, sizeof(row_id));
	h = fnv(h, &pid, sizeof(pid));
	h = fnv(h, &start_ticks, sizeof(start_ticks));
	h = fnv(h, &start_ns, sizeof(start_ns));
	hi = mix(h);
	lo = mix(h ^ 0x9e3779b97f4a7c15ULL);
	/* Version 8 (custom), variant 10. */
	hi = (hi & ~0xf000ULL) | 0x8000ULL;
	lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
	snprintf(out, PUSH_ID_LEN, "%08llx-%04llx-%04llx-%04llx-%012llx",
		 (unsigned long long)(hi >> 32), (unsigned long long)(hi >> 16 & 0xffff),
		 (unsigned long long)(hi & 0xffff), (unsigned long long)(lo >> 48),
		 (unsigned long long)(lo & 0xffffffffffffULL));
}
