/* store_fixture.c — see store_fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/store_fixture.h"

static uint64_t fx_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

struct profile *fx_window(uint64_t seed, size_t nsamples, size_t nfuncs, const char *service,
			  int pid)
{
	struct profile *p = profile_new();
	uint64_t st = seed * 0x9e3779b97f4a7c15ULL + 1, m;
	char pidbuf[16];
	struct profile_label labels[2] = {{.key = "service_name", .str = service},
					  {.key = "pid", .str = pidbuf}};

	if (!p || nfuncs == 0 || profile_add_sample_type(p, "samples", "count") ||
	    profile_add_sample_type(p, "cpu", "nanoseconds"))
		goto fail;
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	profile_set_period(p, "cpu", "nanoseconds", 10101010);
	profile_set_default_sample_type(p, "cpu");
	profile_set_time(p, 1700000000000000000LL + (int64_t)seed, 10000000000LL);
	m = profile_mapping(p, 0x400000, 0x1400000, 0, "/usr/local/bin/svc", "f00dfeed", true, true,
			    true, true);
	for (size_t i = 0; i < nsamples; i++) {
		uint64_t locs[12];
		size_t depth = 3 + fx_rand(&st) % 9;
		int64_t v[2] = {1, 10101010};
		struct gs_error err;

		for (size_t d = 0; d < depth; d++) {
			/* A Zipf-ish pick: a few hot functions, a long tail. */
			size_t f = (size_t)(fx_rand(&st) % nfuncs);
			char name[96], file[96];
			struct profile_line lines[2];
			uint64_t addr;

			f = f * f / nfuncs;
			snprintf(name, sizeof(name), "github.com/acme/svc/pkg%zu.(*T).Method%zu",
				 f % 17, f);
			snprintf(file, sizeof(file), "/src/svc/pkg%zu/file%zu.go", f % 17, f % 5);
			lines[0].function_id =
				profile_function(p, name, name, file, 10 + (int64_t)f);
			lines[0].line = 12 + (int64_t)(f % 40);
			addr = 0x401000 + f * 0x40 + (d & 1) * 4;
			if (f % 7 == 0) { /* an inlined frame */
				snprintf(name, sizeof(name), "github.com/acme/svc/pkg%zu.inl%zu",
					 f % 17, f);
				lines[1] = lines[0];
				lines[0].function_id = profile_function(p, name, name, file, 5);
				lines[0].line = 6;
			}
			if (!lines[0].function_id)
				goto fail;
			locs[d] = profile_location_add(p, (uint64_t)pid, addr, m, lines,
						       f % 7 == 0 ? 2 : 1);
			if (!locs[d])
				goto fail;
		}
		if (profile_add_sample(p, locs, depth, v, NULL, 0, &err))
			goto fail;
	}
	{
		struct gs_error err;

		if (profile_add_labels_all(p, labels, 2, &err))
			goto fail;
	}
	return p;
fail:
	profile_free(p);
	return NULL;
}

static int cmp_stack(const void *a, const void *b)
{
	return strcmp(((const struct fx_stack *)a)->key, ((const struct fx_stack *)b)->key);
}

/* Sorts and sums equal keys. */
static void normalize(struct fx_stacks *a)
{
	size_t w = 0;

	qsort(a->s, a->n, sizeof(*a->s), cmp_stack);
	for (size_t i = 0; i < a->n; i++) {
		if (w && strcmp(a->s[w - 1].key, a->s[i].key) == 0) {
			a->s[w - 1].v[0] += a->s[i].v[0];
			a->s[w - 1].v[1] += a->s[i].v[1];
			free(a->s[i].key);
		} else {
			a->s[w++] = a->s[i];
		}
	}
	a->n = w;
}

int fx_stacks_of_pprof(const uint8_t *buf, size_t len, struct fx_stacks *out, char *why,
		       size_t why_len)
{
	struct pprof_doc d;
	uint8_t *raw = NULL;
	size_t rawlen = len;

	memset(out, 0, sizeof(*out));
	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		if (pprof_gunzip(buf, len, &raw, &rawlen, why, why_len))
			return -1;
		buf = raw;
	}
	if (pprof_decode(buf, rawlen, &d, why, why_len)) {
		free(raw);
		return -1;
	}
	free(raw);
	out->s = calloc(d.nsamples + 1, sizeof(*out->s));
	if (!out->s) {
		pprof_doc_free(&d);
		return -1;
	}
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		char *key = NULL;
		size_t klen = 0;
		FILE *f = open_memstream(&key, &klen);

		for (size_t j = 0; j < s->nlocs; j++) {
			const struct pprof_location *l = pprof_location(&d, s->locs[j]);

			for (size_t k = 0; l && k < l->nlines; k++) {
				const struct pprof_function *fn =
					pprof_function(&d, l->lines[k].fn);

				fprintf(f, "%s:%lld;", fn ? pprof_str(&d, fn->name) : "?",
					(long long)l->lines[k].line);
			}
			if (!l)
				fputs("?;", f);
		}
		fputc('|', f);
		for (size_t j = 0; j < s->nlabels; j++)
			fprintf(f, "%s=%s,", pprof_str(&d, s->labels[j].key),
				s->labels[j].str ? pprof_str(&d, s->labels[j].str) : "#");
		fclose(f);
		out->s[i].key = key;
		out->s[i].v[0] = s->nvalues > 0 ? s->values[0] : 0;
		out->s[i].v[1] = s->nvalues > 1 ? s->values[1] : 0;
		out->n++;
	}
	pprof_doc_free(&d);
	normalize(out);
	return 0;
}

int fx_stacks_of(const struct profile *p, struct fx_stacks *out, char *why, size_t why_len)
{
	uint8_t *buf;
	size_t len;
	struct gs_error err;
	int rc;

	if (profile_encode(p, &buf, &len, &err)) {
		snprintf(why, why_len, "%s", err.msg);
		return -1;
	}
	rc = fx_stacks_of_pprof(buf, len, out, why, why_len);
	free(buf);
	return rc;
}

int fx_stacks_add(struct fx_stacks *a, const struct fx_stacks *b)
{
	struct fx_stack *n = realloc(a->s, (a->n + b->n + 1) * sizeof(*n));

	if (!n)
		return -1;
	a->s = n;
	for (size_t i = 0; i < b->n; i++) {
		a->s[a->n].key = strdup(b->s[i].key);
		a->s[a->n].v[0] = b->s[i].v[0];
		a->s[a->n].v[1] = b->s[i].v[1];
		a->n++;
	}
	normalize(a);
	return 0;
}

const char *fx_stacks_diff(const struct fx_stacks *a, const struct fx_stacks *b)
{
	static char msg[512];

	if (a->n != b->n) {
		snprintf(msg, sizeof(msg), "%zu stacks vs %zu", a->n, b->n);
		return msg;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->s[i].key, b->s[i].key) || a->s[i].v[0] != b->s[i].v[0] ||
		    a->s[i].v[1] != b->s[i].v[1]) {
			snprintf(msg, sizeof(msg), "stack %zu: %.200s=%lld vs %.200s=%lld", i,
				 a->s[i].key, (long long)a->s[i].v[0], b->s[i].key,
				 (long long)b->s[i].v[0]);
			return msg;
		}
	}
	return NULL;
}

int64_t fx_stacks_total(const struct fx_stacks *a, int which)
{
	int64_t t = 0;

	for (size_t i = 0; i < a->n; i++)
		t += a->s[i].v[which];
	return t;
}

void fx_stacks_free(struct fx_stacks *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->s[i].key);
	free(a->s);
	memset(a, 0, sizeof(*a));
}
