/* pprof_decode.c — the profile.proto reader of pprof_decode.h: a protobuf field walker
 * (varints, length-delimited fields, packed or unpacked repeated scalars) and one decoder per
 * message of github.com/google/pprof/proto/profile.proto. Checks that the encoding is well
 * formed (no truncated field, no length past its message, no field number 0). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pprof_decode.h"

struct rd {
	const uint8_t *p, *end;
};

struct fld {
	uint32_t num, wire;
	uint64_t v;	     /* wire 0 (and the length for wire 2) */
	const uint8_t *data; /* wire 2 */
	size_t len;
};

/* The decoding state: the first error wins and stops the decoding. */
struct dec {
	struct pprof_doc *d;
	char *why;
	size_t why_len;
	bool failed;
};

static bool fail(struct dec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct dec *x, const char *fmt, ...)
{
	va_list ap;

	if (!x->failed && x->why && x->why_len) {
		va_start(ap, fmt);
		vsnprintf(x->why, x->why_len, fmt, ap);
		va_end(ap);
	}
	x->failed = true;
	return false;
}

static bool rd_varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (r->p >= r->end)
			return false;
		b = *r->p++;
		if (shift == 63 && b > 1)
			return false;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* The next field of the message; false at its end or on an error (x->failed tells). Fixed
 * 64- and 32-bit fields (none in profile.proto) are skipped over and counted as unknown. */
static bool rd_next(struct dec *x, struct rd *r, struct fld *f)
{
	uint64_t key;

	for (;;) {
		if (x->failed || r->p == r->end)
			return false;
		if (!rd_varint(r, &key))
			return fail(x, "truncated field key");
		f->num = (uint32_t)(key >> 3);
		f->wire = key & 7;
		if (f->num == 0)
			return fail(x, "field number 0");
		if (f->wire == 0) {
			if (!rd_varint(r, &f->v))
				return fail(x, "truncated varint (field %u)", f->num);
			return true;
		}
		if (f->wire == 2) {
			if (!rd_varint(r, &f->v))
				return fail(x, "truncated length (field %u)", f->num);
			if (f->v > (uint64_t)(r->end - r->p))
				return fail(x, "length past the end (field %u)", f->num);
			f->data = r->p;
			f->len = f->v;
			r->p += f->len;
			return true;
		}
		if (f->wire == 1 || f->wire == 5) {
			size_t n = f->wire == 1 ? 8 : 4;

			if ((size_t)(r->end - r->p) < n)
				return fail(x, "truncated fixed field %u", f->num);
			r->p += n;
			x->d->unknown_fields++;
			continue;
		}
		return fail(x, "unexpected wire type %u (field %u)", f->wire, f->num);
	}
}

static bool rd_sub(struct dec *x, const struct fld *f, struct rd *r)
{
	if (f->wire != 2)
		return fail(x, "field %u is not length-delimited", f->num);
	*r = (struct rd){f->data, f->data + f->len};
	return true;
}

/* Grows *arrp (of elem-byte records, *n of them) by one zeroed record and returns it. */
static void *push(struct dec *x, void *arrp, size_t *n, size_t elem)
{
	void *arr;
	char *rec;

	memcpy(&arr, arrp, sizeof(arr));
	arr = realloc(arr, (*n + 1) * elem);
	if (!arr) {
		fail(x, "out of memory");
		return NULL;
	}
	memcpy(arrp, &arr, sizeof(arr));
	rec = (char *)arr + *n * elem;
	memset(rec, 0, elem);
	(*n)++;
	return rec;
}

/* Appends the values of a repeated scalar field, packed or not, to *arrp (uint64_t or
 * int64_t elements: both 8 bytes, int64 being two's complement on the wire). */
static void rd_repeated(struct dec *x, const struct fld *f, void *arrp, size_t *n)
{
	struct rd r = {0};
	uint64_t *slot;

	if (f->wire == 0) {
		slot = push(x, arrp, n, sizeof(uint64_t));
		if (slot)
			*slot = f->v;
		return;
	}
	if (!rd_sub(x, f, &r))
		return;
	while (r.p < r.end && !x->failed) {
		uint64_t v;

		if (!rd_varint(&r, &v)) {
			fail(x, "truncated packed varint (field %u)", f->num);
			return;
		}
		slot = push(x, arrp, n, sizeof(uint64_t));
		if (slot)
			*slot = v;
	}
}

static void dec_value_type(struct dec *x, const struct fld *f, struct pprof_value_type *vt)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		if (g.num == 1)
			vt->type = g.v;
		else if (g.num == 2)
			vt->unit = g.v;
		else
			x->d->unknown_fields++;
	}
}

static void dec_label(struct dec *x, const struct fld *f, struct pprof_label *l)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		if (g.num == 1)
			l->key = g.v;
		else if (g.num == 2)
			l->str = g.v;
		else if (g.num == 3)
			l->num = (int64_t)g.v;
		else if (g.num == 4)
			l->num_unit = g.v;
		else
			x->d->unknown_fields++;
	}
}

static void dec_sample(struct dec *x, const struct fld *f, struct pprof_sample *s)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		if (g.num == 1) {
			rd_repeated(x, &g, &s->locs, &s->nlocs);
		} else if (g.num == 2) {
			rd_repeated(x, &g, &s->values, &s->nvalues);
		} else if (g.num == 3) {
			struct pprof_label *l = push(x, &s->labels, &s->nlabels, sizeof(*l));

			if (l)
				dec_label(x, &g, l);
		} else {
			x->d->unknown_fields++;
		}
	}
}

static void dec_mapping(struct dec *x, const struct fld *f, struct pprof_mapping *m)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		switch (g.num) {
		case 1:
			m->id = g.v;
			break;
		case 2:
			m->start = g.v;
			break;
		case 3:
			m->limit = g.v;
			break;
		case 4:
			m->offset = g.v;
			break;
		case 5:
			m->file = g.v;
			break;
		case 6:
			m->build_id = g.v;
			break;
		case 7:
			m->has_functions = g.v;
			break;
		case 8:
			m->has_filenames = g.v;
			break;
		case 9:
			m->has_line_numbers = g.v;
			break;
		case 10:
			m->has_inline_frames = g.v;
			break;
		default:
			x->d->unknown_fields++;
		}
	}
}

static void dec_line(struct dec *x, const struct fld *f, struct pprof_line *ln)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		if (g.num == 1)
			ln->fn = g.v;
		else if (g.num == 2)
			ln->line = (int64_t)g.v;
		else
			x->d->unknown_fields++;
	}
}

static void dec_location(struct dec *x, const struct fld *f, struct pprof_location *l)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		if (g.num == 1) {
			l->id = g.v;
		} else if (g.num == 2) {
			l->mapping = g.v;
		} else if (g.num == 3) {
			l->address = g.v;
		} else if (g.num == 4) {
			struct pprof_line *ln = push(x, &l->lines, &l->nlines, sizeof(*ln));

			if (ln)
				dec_line(x, &g, ln);
		} else {
			x->d->unknown_fields++; /* is_folded */
		}
	}
}

static void dec_function(struct dec *x, const struct fld *f, struct pprof_function *fn)
{
	struct rd r = {0};
	struct fld g;

	if (!rd_sub(x, f, &r))
		return;
	while (rd_next(x, &r, &g)) {
		switch (g.num) {
		case 1:
			fn->id = g.v;
			break;
		case 2:
			fn->name = g.v;
			break;
		case 3:
			fn->system_name = g.v;
			break;
		case 4:
			fn->filename = g.v;
			break;
		case 5:
			fn->start_line = (int64_t)g.v;
			break;
		default:
			x->d->unknown_fields++;
		}
	}
}

/* One top-level field of Profile. */
static void dec_profile_field(struct dec *x, const struct fld *f)
{
	struct pprof_doc *d = x->d;
	void *rec;

	switch (f->num) {
	case 1:
		if ((rec = push(x, &d->sample_types, &d->nsample_types, sizeof(*d->sample_types))))
			dec_value_type(x, f, rec);
		break;
	case 2:
		if ((rec = push(x, &d->samples, &d->nsamples, sizeof(*d->samples))))
			dec_sample(x, f, rec);
		break;
	case 3:
		if ((rec = push(x, &d->maps, &d->nmaps, sizeof(*d->maps))))
			dec_mapping(x, f, rec);
		break;
	case 4:
		if ((rec = push(x, &d->locs, &d->nlocs, sizeof(*d->locs))))
			dec_location(x, f, rec);
		break;
	case 5:
		if ((rec = push(x, &d->funcs, &d->nfuncs, sizeof(*d->funcs))))
			dec_function(x, f, rec);
		break;
	case 6: {
		char **s;

		if (f->wire != 2) {
			fail(x, "string_table entry is not length-delimited");
			break;
		}
		s = push(x, &d->strings, &d->nstrings, sizeof(*d->strings));
		if (s && !(*s = strndup((const char *)f->data, f->len)))
			fail(x, "out of memory");
		break;
	}
	case 9:
		d->time = (int64_t)f->v;
		break;
	case 10:
		d->duration = (int64_t)f->v;
		break;
	case 11:
		dec_value_type(x, f, &d->period_type);
		break;
	case 12:
		d->period = (int64_t)f->v;
		break;
	case 13:
		rd_repeated(x, f, &d->comments, &d->ncomments);
		break;
	case 14:
		d->default_type = f->v;
		break;
	default: /* 7 drop_frames, 8 keep_frames, or unknown */
		d->unknown_fields++;
	}
}

int pprof_decode(const uint8_t *buf, size_t len, struct pprof_doc *d, char *why, size_t why_len)
{
	struct dec x = {d, why, why_len, false};
	struct rd r = {buf, buf + len};
	struct fld f;

	memset(d, 0, sizeof(*d));
	while (rd_next(&x, &r, &f))
		dec_profile_field(&x, &f);
	if (x.failed) {
		pprof_doc_free(d);
		return -1;
	}
	return 0;
}

void pprof_doc_free(struct pprof_doc *d)
{
	for (size_t i = 0; i < d->nstrings; i++)
		free(d->strings[i]);
	free(d->strings);
	free(d->sample_types);
	for (size_t i = 0; i < d->nsamples; i++) {
		free(d->samples[i].locs);
		free(d->samples[i].values);
		free(d->samples[i].labels);
	}
	free(d->samples);
	free(d->maps);
	for (size_t i = 0; i < d->nlocs; i++)
		free(d->locs[i].lines);
	free(d->locs);
	free(d->funcs);
	free(d->comments);
	memset(d, 0, sizeof(*d));
}

int pprof_gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, char *why,
		 size_t why_len)
{
	z_stream zs = {0};
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap), *nb;
	int zrc;

	*out = NULL;
	*outlen = 0;
	if (!buf || inflateInit2(&zs, 15 + 16) != Z_OK) {
		free(buf);
		snprintf(why, why_len, "gunzip: out of memory");
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	do {
		if (len == cap) {
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				snprintf(why, why_len, "gunzip: out of memory");
				goto fail;
			}
			buf = nb;
		}
		zs.next_out = buf + len;
		zs.avail_out = (uInt)(cap - len);
		zrc = inflate(&zs, Z_NO_FLUSH);
		len = cap - zs.avail_out;
		if (zrc != Z_OK && zrc != Z_STREAM_END) {
			snprintf(why, why_len, "gunzip: inflate: %d (%s)", zrc,
				 zs.msg ? zs.msg : "truncated?");
			goto fail;
		}
	} while (zrc != Z_STREAM_END);
	if (zs.avail_in != 0) {
		snprintf(why, why_len, "gunzip: %u trailing bytes after the gzip member",
			 zs.avail_in);
		goto fail;
	}
	inflateEnd(&zs);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	inflateEnd(&zs);
	free(buf);
	return -1;
}

int pprof_decode_file(const char *path, struct pprof_doc *d, char *why, size_t why_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *plain = NULL, *nb;
	size_t cap = 0, n = 0, r, plain_len;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (!f) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				snprintf(why, why_len, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	if (n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		if (pprof_gunzip(buf, n, &plain, &plain_len, why, why_len))
			goto out;
		rc = pprof_decode(plain, plain_len, d, why, why_len);
	} else {
		rc = pprof_decode(buf, n, d, why, why_len);
	}
out:
	fclose(f);
	free(buf);
	free(plain);
	return rc;
}

const char *pprof_str(const struct pprof_doc *d, uint64_t idx)
{
	return idx < d->nstrings ? d->strings[idx] : NULL;
}

const struct pprof_location *pprof_location(const struct pprof_doc *d, uint64_t id)
{
	/* Writers (goscope, Go) number locations 1..n in order: try that first. */
	if (id >= 1 && id <= d->nlocs && d->locs[id - 1].id == id)
		return &d->locs[id - 1];
	for (size_t i = 0; i < d->nlocs; i++) {
		if (d->locs[i].id == id)
			return &d->locs[i];
	}
	return NULL;
}

const struct pprof_function *pprof_function(const struct pprof_doc *d, uint64_t id)
{
	if (id >= 1 && id <= d->nfuncs && d->funcs[id - 1].id == id)
		return &d->funcs[id - 1];
	for (size_t i = 0; i < d->nfuncs; i++) {
		if (d->funcs[i].id == id)
			return &d->funcs[i];
	}
	return NULL;
}

int pprof_sample_type(const struct pprof_doc *d, const char *type)
{
	for (size_t i = 0; i < d->nsample_types; i++) {
		const char *s = pprof_str(d, d->sample_types[i].type);

		if (s && strcmp(s, type) == 0)
			return (int)i;
	}
	return -1;
}
