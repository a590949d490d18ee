/* pprof_decode.c — profile_decode (profile.h): reads profile.proto (gzip-compressed or not)
 * back into a struct profile through the model's public API, so that the store can merge
 * stored windows and roll them up. The input is untrusted (a damaged database, a profile
 * from elsewhere): every length and index is checked against the buffer and the tables,
 * every loop is bounded by the input's size, and the decompressed size is capped.
 *
 * pprof locations have no key of their own (the model keys locations by (key, address));
 * a decoded location's key is a hash of its mapping's identity, its address and its lines
 * (functions by content), so identical locations of several profiles dedupe on merge and
 * different ones do not collapse (short of a 64-bit hash collision at the same address). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profile/gzip.h"
#include "profile/profile.h"

/* The largest decompressed profile accepted (a 10 s window is well under 1 MiB). */
#define DECODE_MAX_RAW (256u << 20)

/* A bounds-checked cursor over a byte range. */
struct rd {
	const uint8_t *p, *end;
};

static bool rd_varint(struct rd *r, uint64_t *out)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (r->p >= r->end)
			return false;
		b = *r->p++;
		if (shift == 63 && b > 1)
			return false;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = x;
			return true;
		}
	}
	return false;
}

/* One field: its number, wire type and either a varint value or a byte range. */
struct field {
	uint64_t num;
	int wire;
	uint64_t v;
	struct rd sub; /* WIRE 2 */
};

/* Reads the next field of r; false on malformed input. Fixed32/64 are skipped over (v=0),
 * groups (wire 3, 4) are refused. */
static bool rd_field(struct rd *r, struct field *f)
{
	uint64_t key, n;

	if (!rd_varint(r, &key) || key >> 3 == 0)
		return false;
	f->num = key >> 3;
	f->wire = (int)(key & 7);
	f->v = 0;
	switch (f->wire) {
	case 0:
		return rd_varint(r, &f->v);
	case 1:
		n = 8;
		break;
	case 5:
		n = 4;
		break;
	case 2:
		if (!rd_varint(r, &n))
			return false;
		break;
	default:
		return false;
	}
	if (n > (uint64_t)(r->end - r->p))
		return false;
	f->sub.p = r->p;
	f->sub.end = r->p + n;
	r->p += n;
	return true;
}

/* Walks the varints of a repeated scalar field: packed (wire 2) or one value (wire 0).
 * Calls fn for each; false on malformed data or when fn fails. */
static bool each_varint(const struct field *f, bool (*fn)(void *ctx, uint64_t v), void *ctx)
{
	struct rd r = f->sub;
	uint64_t v;

	if (f->wire == 0)
		return fn(ctx, f->v);
	if (f->wire != 2)
		return false;
	while (r.p < r.end) {
		if (!rd_varint(&r, &v) || !fn(ctx, v))
			return false;
	}
	return true;
}

/* ---- the decoder's state ---- */

struct str {
	const uint8_t *p;
	size_t len;
};

/* An id of the file and the model's id it became. */
struct id_pair {
	uint64_t file_id, model_id;
	uint64_t hash; /* for functions and mappings: a content hash (location keys) */
};

struct dec {
	struct profile *prof;
	struct gs_error *err;
	struct str *strs;
	char **cstr; /* NUL-terminated copies, NULL for "" (the model's "none") */
	size_t nstrs;
	struct id_pair *maps, *funcs;
	size_t nmaps, nfuncs;
	struct id_pair *locs;
	size_t nlocs;
	/* scratch for one sample / location */
	uint64_t *u64;
	size_t nu64, cap_u64;
	int64_t *vals;
	size_t nvals, cap_vals;
};

static int bad(struct dec *d, const char *what)
{
	return gs_error_set(d->err, -EINVAL, "pprof decode: malformed profile (%s)", what);
}

static int oom(struct dec *d)
{
	return gs_error_set(d->err, -ENOMEM, "pprof decode: out of memory");
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 29);
}

static uint64_t mix_str(uint64_t h, const struct str *s)
{
	uint64_t x = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < s->len; i++) {
		x ^= s->p[i];
		x *= 0x100000001b3ULL;
	}
	return mix(mix(h, s->len), x);
}

/* The string at idx as the model takes it; false when out of range. */
static bool str_at(const struct dec *d, uint64_t idx, const char **out)
{
	if (idx >= d->nstrs)
		return false;
	*out = d->cstr[idx];
	return true;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct id_pair *x = a, *y = b;

	return x->file_id < y->file_id ? -1 : x->file_id > y->file_id;
}

static const struct id_pair *find_pair(const struct id_pair *arr, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (arr[mid].file_id == id)
			return &arr[mid];
		if (arr[mid].file_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Sorts an id table and refuses duplicate or zero ids. */
static bool sort_ids(struct id_pair *arr, size_t n)
{
	if (n > 1)
		qsort(arr, n, sizeof(*arr), cmp_pair);
	for (size_t i = 0; i < n; i++) {
		if (arr[i].file_id == 0 || (i && arr[i].file_id == arr[i - 1].file_id))
			return false;
	}
	return true;
}

/* ---- the passes ---- */

/* Pass 1: counts the top-level tables and collects the string table. */
static int collect_strings(struct dec *d, struct rd whole, size_t *nmaps, size_t *nfuncs,
			   size_t *nlocs, size_t *max_sub)
{
	struct field f;
	struct rd r = whole;
	size_t n = 0, total = 0;
	char *block;

	*nmaps = *nfuncs = *nlocs = *max_sub = 0;
	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "field");
		if ((f.num == 2 || f.num == 4) && f.wire == 2 &&
		    (size_t)(f.sub.end - f.sub.p) > *max_sub)
			*max_sub = (size_t)(f.sub.end - f.sub.p);
		if (f.num == 6 && f.wire == 2)
			n++;
		else if (f.num == 6)
			return bad(d, "string_table wire type");
		(*nmaps) += f.num == 3 && f.wire == 2;
		(*nlocs) += f.num == 4 && f.wire == 2;
		(*nfuncs) += f.num == 5 && f.wire == 2;
	}
	if (n == 0)
		return bad(d, "no string table");
	d->strs = calloc(n, sizeof(*d->strs));
	d->cstr = calloc(n, sizeof(*d->cstr));
	if (!d->strs || !d->cstr)
		return oom(d);
	r = whole;
	while (r.p < r.end) {
		rd_field(&r, &f); /* checked above */
		if (f.num != 6)
			continue;
		d->strs[d->nstrs].p = f.sub.p;
		d->strs[d->nstrs].len = (size_t)(f.sub.end - f.sub.p);
		total += d->strs[d->nstrs].len + 1;
		d->nstrs++;
	}
	if (d->strs[0].len != 0)
		return bad(d, "string_table[0] is not empty");
	block = malloc(total);
	if (!block)
		return oom(d);
	/* One block holds every copy; cstr[1] (or the first non-empty one) owns it. */
	for (size_t i = 0, at = 0; i < d->nstrs; i++) {
		memcpy(block + at, d->strs[i].p, d->strs[i].len);
		block[at + d->strs[i].len] = '\0';
		d->cstr[i] = block + at;
		at += d->strs[i].len + 1;
	}
	/* A string with an embedded NUL would be cut short: refuse it (goscope never writes
	 * one, and a shorter string would silently merge with another). */
	for (size_t i = 0; i < d->nstrs; i++) {
		if (strlen(d->cstr[i]) != d->strs[i].len)
			return bad(d, "string with a NUL byte");
	}
	return 0;
}

static int value_type(struct dec *d, struct rd r, const char **type, const char **unit)
{
	struct field f;
	uint64_t t = 0, u = 0;

	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "value type");
		if (f.num == 1 && f.wire == 0)
			t = f.v;
		else if (f.num == 2 && f.wire == 0)
			u = f.v;
	}
	if (!str_at(d, t, type) || !str_at(d, u, unit))
		return bad(d, "value type string index");
	return 0;
}

static int decode_mapping(struct dec *d, struct rd r)
{
	struct field f;
	uint64_t v[7] = {0}; /* id, start, limit, offset, file, build_id, - */
	bool flags[4] = {0};
	const char *file, *build_id;
	struct id_pair *pr = &d->maps[d->nmaps];
	uint64_t h;

	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "mapping");
		if (f.wire != 0)
			continue;
		if (f.num >= 1 && f.num <= 6)
			v[f.num - 1] = f.v;
		else if (f.num >= 7 && f.num <= 10)
			flags[f.num - 7] = f.v != 0;
	}
	if (!str_at(d, v[4], &file) || !str_at(d, v[5], &build_id))
		return bad(d, "mapping string index");
	pr->file_id = v[0];
	pr->model_id = profile_mapping(d->prof, v[1], v[2], v[3], file, build_id, flags[0],
				       flags[1], flags[2], flags[3]);
	if (!pr->model_id)
		return oom(d);
	h = mix(mix(mix(0x6d6170, v[1]), v[2]), v[3]);
	h = mix_str(h, &d->strs[v[4]]);
	pr->hash = mix_str(h, &d->strs[v[5]]);
	d->nmaps++;
	return 0;
}

static int decode_function(struct dec *d, struct rd r)
{
	struct field f;
	uint64_t id = 0, name = 0, sys = 0, file = 0;
	int64_t start_line = 0;
	const char *sn, *ss, *sf;
	struct id_pair *pr = &d->funcs[d->nfuncs];
	uint64_t h;

	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "function");
		if (f.wire != 0)
			continue;
		if (f.num == 1)
			id = f.v;
		else if (f.num == 2)
			name = f.v;
		else if (f.num == 3)
			sys = f.v;
		else if (f.num == 4)
			file = f.v;
		else if (f.num == 5)
			start_line = (int64_t)f.v;
	}
	if (!str_at(d, name, &sn) || !str_at(d, sys, &ss) || !str_at(d, file, &sf))
		return bad(d, "function string index");
	pr->file_id = id;
	pr->model_id = profile_function(d->prof, sn, ss, sf, start_line);
	if (!pr->model_id)
		return oom(d);
	h = mix_str(0x66756e63, &d->strs[name]);
	h = mix_str(h, &d->strs[sys]);
	h = mix_str(h, &d->strs[file]);
	pr->hash = mix(h, (uint64_t)start_line);
	d->nfuncs++;
	return 0;
}

static int decode_location(struct dec *d, struct rd r, struct profile_line *lines, size_t maxl)
{
	struct field f, g;
	uint64_t id = 0, mapping = 0, address = 0, map_model = 0, key;
	size_t nlines = 0;
	struct rd body = r;

	/* Ids and address first: lines may come before them on the wire. */
	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "location");
		if (f.wire == 0 && f.num == 1)
			id = f.v;
		else if (f.wire == 0 && f.num == 2)
			mapping = f.v;
		else if (f.wire == 0 && f.num == 3)
			address = f.v;
	}
	key = mix(0x6c6f63, address);
	if (mapping) {
		const struct id_pair *m = find_pair(d->maps, d->nmaps, mapping);

		if (!m)
			return bad(d, "location's mapping id");
		map_model = m->model_id;
		key = mix(key, m->hash);
	}
	r = body;
	while (r.p < r.end) {
		uint64_t fn = 0;
		int64_t line = 0;
		const struct id_pair *fp;

		rd_field(&r, &f); /* checked above */
		if (f.num != 4 || f.wire != 2)
			continue;
		while (f.sub.p < f.sub.end) {
			if (!rd_field(&f.sub, &g))
				return bad(d, "line");
			if (g.wire == 0 && g.num == 1)
				fn = g.v;
			else if (g.wire == 0 && g.num == 2)
				line = (int64_t)g.v;
		}
		fp = find_pair(d->funcs, d->nfuncs, fn);
		if (!fp || nlines >= maxl)
			return bad(d, "line's function id");
		lines[nlines].function_id = fp->model_id;
		lines[nlines].line = line;
		key = mix(mix(key, fp->hash), (uint64_t)line);
		nlines++;
	}
	d->locs[d->nlocs].file_id = id;
	d->locs[d->nlocs].model_id =
		profile_location_add(d->prof, key, address, map_model, lines, nlines);
	if (!d->locs[d->nlocs].model_id)
		return oom(d);
	d->nlocs++;
	return 0;
}

static bool push_u64(void *ctx, uint64_t v)
{
	struct dec *d = ctx;

	if (d->nu64 >= d->cap_u64)
		return false; /* cap = the field bytes: cannot happen for valid varints */
	d->u64[d->nu64++] = v;
	return true;
}

static bool push_val(void *ctx, uint64_t v)
{
	struct dec *d = ctx;

	if (d->nvals >= d->cap_vals)
		return false;
	d->vals[d->nvals++] = (int64_t)v;
	return true;
}

static int decode_sample(struct dec *d, struct rd r, size_t ntypes, struct profile_label *labels,
			 size_t max_labels)
{
	struct field f, g;
	size_t nlabels = 0;

	d->nu64 = d->nvals = 0;
	while (r.p < r.end) {
		if (!rd_field(&r, &f))
			return bad(d, "sample");
		if (f.num == 1) {
			if (!each_varint(&f, push_u64, d))
				return bad(d, "sample location ids");
		} else if (f.num == 2) {
			if (!each_varint(&f, push_val, d))
				return bad(d, "sample values");
		} else if (f.num == 3 && f.wire == 2) {
			uint64_t k = 0, s = 0, u = 0;
			int64_t num = 0;
			const char *ks, *ss, *us;

			while (f.sub.p < f.sub.end) {
				if (!rd_field(&f.sub, &g))
					return bad(d, "label");
				if (g.wire != 0)
					continue;
				if (g.num == 1)
					k = g.v;
				else if (g.num == 2)
					s = g.v;
				else if (g.num == 3)
					num = (int64_t)g.v;
				else if (g.num == 4)
					u = g.v;
			}
			if (!str_at(d, k, &ks) || !str_at(d, s, &ss) || !str_at(d, u, &us) ||
			    k == 0 || nlabels >= max_labels)
				return bad(d, "label string index");
			labels[nlabels++] = (struct profile_label){
				.key = ks, .str = s ? ss : NULL, .num = num, .num_unit = us};
		}
	}
	if (d->nvals != ntypes)
		return bad(d, "sample value count");
	for (size_t i = 0; i < d->nu64; i++) {
		const struct id_pair *lp = find_pair(d->locs, d->nlocs, d->u64[i]);

		if (!lp)
			return bad(d, "sample's location id");
		d->u64[i] = lp->model_id;
	}
	return profile_add_sample(d->prof, d->u64, d->nu64, d->vals, labels, nlabels, d->err);
}

static bool push_comment(void *ctx, uint64_t v)
{
	struct dec *d = ctx;
	const char *s;

	return str_at(d, v, &s) && profile_add_comment(d->prof, s ? s : "") == 0;
}

/* Decodes an uncompressed Profile message into d->prof. */
static int decode_raw(struct dec *d, const uint8_t *buf, size_t len)
{
	struct rd whole = {buf, buf + len}, r;
	struct field f;
	size_t nmaps, nfuncs, nlocs, ntypes = 0, max_sub, maxl;
	struct profile_line *lines = NULL;
	struct profile_label *labels = NULL;
	uint64_t period_t = 0, period_u = 0, deflt = 0;
	int64_t period = 0, time = 0, duration = 0;
	bool have_period_type = false;
	int rc;

	rc = collect_strings(d, whole, &nmaps, &nfuncs, &nlocs, &max_sub);
	if (rc)
		return rc;
	/* A sample or location holds at most one id or value per byte of its message and one
	 * line or label per two bytes: the scratch arrays are sized by the largest message. */
	maxl = max_sub / 2 + 1;
	d->maps = calloc(nmaps + 1, sizeof(*d->maps));
	d->funcs = calloc(nfuncs + 1, sizeof(*d->funcs));
	d->locs = calloc(nlocs + 1, sizeof(*d->locs));
	d->cap_u64 = d->cap_vals = max_sub + 1;
	d->u64 = calloc(d->cap_u64, sizeof(*d->u64));
	d->vals = calloc(d->cap_vals, sizeof(*d->vals));
	lines = calloc(maxl, sizeof(*lines));
	labels = calloc(maxl, sizeof(*labels));
	if (!d->maps || !d->funcs || !d->locs || !d->u64 || !d->vals || !lines || !labels) {
		rc = oom(d);
		goto out;
	}

	/* Sample types, mappings and functions; the scalars. */
	for (r = whole; r.p < r.end && !rc;) {
		const char *t = NULL, *u = NULL;

		rd_field(&r, &f); /* checked in collect_strings */
		if (f.num == 1 && f.wire == 2) {
			rc = value_type(d, f.sub, &t, &u);
			if (!rc && profile_add_sample_type(d->prof, t, u))
				rc = oom(d);
			ntypes++;
		} else if (f.num == 3 && f.wire == 2) {
			rc = decode_mapping(d, f.sub);
		} else if (f.num == 5 && f.wire == 2) {
			rc = decode_function(d, f.sub);
		} else if (f.num == 9 && f.wire == 0) {
			time = (int64_t)f.v;
		} else if (f.num == 10 && f.wire == 0) {
			duration = (int64_t)f.v;
		} else if (f.num == 11 && f.wire == 2) {
			struct field g;
			struct rd s = f.sub;

			have_period_type = true;
			while (s.p < s.end && !rc) {
				if (!rd_field(&s, &g))
					rc = bad(d, "period type");
				else if (g.num == 1 && g.wire == 0)
					period_t = g.v;
				else if (g.num == 2 && g.wire == 0)
					period_u = g.v;
			}
		} else if (f.num == 12 && f.wire == 0) {
			period = (int64_t)f.v;
		} else if (f.num == 14 && f.wire == 0) {
			deflt = f.v;
		} else if (f.num == 13) {
			if (!each_varint(&f, push_comment, d))
				rc = bad(d, "comment");
		}
	}
	if (rc)
		goto out;
	if (!sort_ids(d->maps, d->nmaps) || !sort_ids(d->funcs, d->nfuncs)) {
		rc = bad(d, "duplicate or zero mapping/function id");
		goto out;
	}
	for (r = whole; r.p < r.end && !rc;) {
		rd_field(&r, &f);
		if (f.num == 4 && f.wire == 2)
			rc = decode_location(d, f.sub, lines, maxl);
	}
	if (rc)
		goto out;
	if (!sort_ids(d->locs, d->nlocs)) {
		rc = bad(d, "duplicate or zero location id");
		goto out;
	}
	if (have_period_type || period) {
		const char *t, *u;

		if (!str_at(d, period_t, &t) || !str_at(d, period_u, &u)) {
			rc = bad(d, "period type string index");
			goto out;
		}
		profile_set_period(d->prof, t, u, period);
	}
	if (deflt) {
		const char *t;

		if (!str_at(d, deflt, &t)) {
			rc = bad(d, "default sample type string index");
			goto out;
		}
		profile_set_default_sample_type(d->prof, t);
	}
	profile_set_time(d->prof, time, duration);
	for (r = whole; r.p < r.end && !rc;) {
		rd_field(&r, &f);
		if (f.num == 2 && f.wire == 2) {
			if (ntypes == 0)
				rc = bad(d, "sample without sample types");
			else
				rc = decode_sample(d, f.sub, ntypes, labels, maxl);
		}
	}
out:
	free(lines);
	free(labels);
	return rc;
}

/* Inflates a gzip member into a malloc'd buffer of at most DECODE_MAX_RAW bytes. */
static int gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, struct gs_error *err)
{
	size_t cap = 0;
	int rc;

	*out = NULL;
	*outlen = 0;
	rc = gzip_inflate_append(in, n, DECODE_MAX_RAW, out, outlen, &cap, err);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		return gs_error_prefix(err, "pprof decode");
	}
	return 0;
}

int profile_decode(const uint8_t *buf, size_t len, struct profile **out, struct gs_error *err)
{
	struct dec d = {.err = err};
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int rc;

	*out = NULL;
	if (!buf && len)
		return gs_error_set(err, -EINVAL, "pprof decode: no input");
	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		rc = gunzip(buf, len, &raw, &rawlen, err);
		if (rc)
			return rc;
		buf = raw;
		len = rawlen;
	}
	d.prof = profile_new();
	if (!d.prof) {
		free(raw);
		return gs_error_set(err, -ENOMEM, "pprof decode: out of memory");
	}
	rc = decode_raw(&d, buf, len);
	if (d.cstr && d.nstrs)
		free(d.cstr[0]);
	free(d.cstr);
	free(d.strs);
	free(d.maps);
	free(d.funcs);
	free(d.locs);
	free(d.u64);
	free(d.vals);
	free(raw);
	if (rc) {
		profile_free(d.prof);
		return rc;
	}
	*out = d.prof;
	return 0;
}
