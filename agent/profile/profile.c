/* profile.c — the in-memory profile model (see profile.h): a string table and tables of
 * mappings, functions, locations and samples, each deduplicated through a hash index so that
 * building a profile of 100k+ samples stays linear, and the merge of one profile into another.
 * Its layout is in profile_impl.h; encoding lives in pprof.c, file writing in sink.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_impl.h"

/* ---- growable arrays ---- */

/* Makes *(T **)arrp hold at least need elements of elem bytes (doubling); -ENOMEM. */
static int reserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
	void *arr, *n;
	size_t ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	memcpy(&arr, arrp, sizeof(arr));
	n = realloc(arr, ncap * elem);
	if (!n)
		return -ENOMEM;
	memcpy(arrp, &n, sizeof(n));
	*cap = ncap;
	return 0;
}

#define RESERVE(arr, cap, need) reserve(&(arr), &(cap), (need), sizeof(*(arr)))

/* ---- hashing ---- */

/* Folds v into the running hash h (multiply-xorshift; fmix64 finishes it). */
static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 29);
}

/* MurmurHash3's fmix64, truncated: the 32-bit hash stored in index slots. */
static uint32_t hash_final(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return hash_final(h);
}

/* ---- hash index of record ids ---- */

typedef bool (*index_eq_fn)(const struct profile *p, uint32_t id, const void *key);

/* Returns the id of the record equal to key (eq decides), or 0. */
static uint32_t index_find(const struct profile *p, const struct profile_index *ix, uint32_t hash,
			   index_eq_fn eq, const void *key)
{
	if (!ix->slots)
		return 0;
	for (size_t i = hash & ix->mask;; i = (i + 1) & ix->mask) {
		const struct profile_index_slot *s = &ix->slots[i];

		if (s->id == 0)
			return 0;
		if (s->hash == hash && eq(p, s->id, key))
			return s->id;
	}
}

/* Puts id in the first free slot of its probe sequence (the table has room). */
static void index_put(struct profile_index *ix, uint32_t id, uint32_t hash)
{
	size_t i = hash & ix->mask;

	while (ix->slots[i].id != 0)
		i = (i + 1) & ix->mask;
	ix->slots[i].id = id;
	ix->slots[i].hash = hash;
}

/* Adds id (known to be absent) under hash, growing the table to stay at most 3/4 full. */
static int index_insert(struct profile_index *ix, uint32_t id, uint32_t hash)
{
	size_t cap = ix->slots ? ix->mask + 1 : 0;

	if ((ix->count + 1) * 4 > cap * 3) {
		struct profile_index nix = {0};
		size_t ncap = cap ? cap * 2 : 64;

		if (ncap > SIZE_MAX / sizeof(*nix.slots))
			return -ENOMEM;
		nix.slots = calloc(ncap, sizeof(*nix.slots));
		if (!nix.slots)
			return -ENOMEM;
		nix.mask = ncap - 1;
		for (size_t i = 0; i < cap; i++) {
			if (ix->slots[i].id)
				index_put(&nix, ix->slots[i].id, ix->slots[i].hash);
		}
		nix.count = ix->count;
		free(ix->slots);
		*ix = nix;
	}
	index_put(ix, id, hash);
	ix->count++;
	return 0;
}

/* ---- strings ---- */

struct str_key {
	const char *s;
	size_t len;
};

static bool string_eq(const struct profile *p, uint32_t id, const void *key)
{
	const struct str_key *k = key;

	const struct profile_string *s = &p->strings[id - 1];

	return s->len == k->len && memcmp(s->s, k->s, k->len) == 0;
}

/* Stores the string-table index of s (NULL = "") in *out, adding s when new. */
static int intern(struct profile *p, const char *s, uint32_t *out)
{
	struct str_key k;
	uint32_t hash, id;
	char *copy;

	if (!s || !*s) {
		*out = 0;
		return 0;
	}
	k.s = s;
	k.len = strlen(s);
	if (k.len > UINT32_MAX)
		return -ENOMEM;
	hash = hash_bytes(s, k.len);
	id = index_find(p, &p->string_index, hash, string_eq, &k);
	if (id) {
		*out = id - 1;
		return 0;
	}
	if (p->nstrings >= UINT32_MAX - 1 || RESERVE(p->strings, p->cap_strings, p->nstrings + 1))
		return -ENOMEM;
	copy = malloc(k.len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, k.len + 1);
	if (index_insert(&p->string_index, (uint32_t)p->nstrings + 1, hash)) {
		free(copy);
		return -ENOMEM;
	}
	p->strings[p->nstrings].s = copy;
	p->strings[p->nstrings].len = k.len;
	*out = (uint32_t)p->nstrings++;
	return 0;
}

/* intern() for functions that cannot report errors: records the failure in p->oom. */
static uint32_t intern_or_oom(struct profile *p, const char *s)
{
	uint32_t idx;

	if (intern(p, s, &idx)) {
		p->oom = true;
		return 0;
	}
	return idx;
}

/* ---- profile ---- */

struct profile *profile_new(void)
{
	struct profile *p = calloc(1, sizeof(*p));
	char *empty;

	if (!p)
		return NULL;
	empty = strdup("");
	if (!empty || RESERVE(p->strings, p->cap_strings, 1)) {
		free(empty);
		profile_free(p);
		return NULL;
	}
	/* string_table[0] == "", never looked up through the index (intern short-cuts it). */
	p->strings[0].s = empty;
	p->strings[0].len = 0;
	p->nstrings = 1;
	return p;
}

void profile_free(struct profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nstrings; i++)
		free(p->strings[i].s);
	free(p->strings);
	free(p->string_index.slots);
	free(p->sample_types);
	free(p->comments);
	free(p->mappings);
	free(p->mapping_index.slots);
	free(p->functions);
	free(p->function_index.slots);
	free(p->locations);
	free(p->location_index.slots);
	free(p->lines);
	free(p->samples);
	free(p->sample_index.slots);
	free(p->sample_locs);
	free(p->values);
	free(p->labels);
	free(p);
}

int profile_add_sample_type(struct profile *p, const char *type, const char *unit)
{
	struct profile_value_type vt;

	if (p->nsamples > 0)
		return -EBUSY;
	if (intern(p, type, &vt.type) || intern(p, unit, &vt.unit) ||
	    RESERVE(p->sample_types, p->cap_sample_types, p->nsample_types + 1))
		return -ENOMEM;
	p->sample_types[p->nsample_types++] = vt;
	return 0;
}

void profile_set_default_sample_type(struct profile *p, const char *type)
{
	p->default_sample_type = intern_or_oom(p, type);
}

void profile_set_period(struct profile *p, const char *type, const char *unit, int64_t period)
{
	p->period_type.type = intern_or_oom(p, type);
	p->period_type.unit = intern_or_oom(p, unit);
	p->period = period;
}

void profile_set_time(struct profile *p, int64_t time_nanos, int64_t duration_nanos)
{
	p->time_nanos = time_nanos;
	p->duration_nanos = duration_nanos;
}

int profile_add_comment(struct profile *p, const char *text)
{
	uint32_t idx;

	if (intern(p, text, &idx) || RESERVE(p->comments, p->cap_comments, p->ncomments + 1))
		return -ENOMEM;
	p->comments[p->ncomments++] = idx;
	return 0;
}

/* ---- mappings ---- */

static uint32_t mapping_hash(const struct profile_mapping_rec *m)
{
	uint64_t h = hash_mix(0, m->start);

	h = hash_mix(h, m->limit);
	h = hash_mix(h, m->offset);
	h = hash_mix(h, (uint64_t)m->file << 32 | m->build_id);
	return hash_final(h);
}

static bool mapping_eq(const struct profile *p, uint32_t id, const void *key)
{
	const struct profile_mapping_rec *a = &p->mappings[id - 1], *b = key;

	return a->start == b->start && a->limit == b->limit && a->offset == b->offset &&
	       a->file == b->file && a->build_id == b->build_id;
}

uint64_t profile_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
			 const char *file, const char *build_id, bool has_functions,
			 bool has_filenames, bool has_line_numbers, bool has_inline_frames)
{
	struct profile_mapping_rec m = {
		.start = start,
		.limit = limit,
		.offset = offset,
		.has_functions = has_functions,
		.has_filenames = has_filenames,
		.has_line_numbers = has_line_numbers,
		.has_inline_frames = has_inline_frames,
	};
	uint32_t hash, id;

	if (intern(p, file, &m.file) || intern(p, build_id, &m.build_id))
		goto oom;
	hash = mapping_hash(&m);
	id = index_find(p, &p->mapping_index, hash, mapping_eq, &m);
	if (id)
		return id;
	if (p->nmappings >= UINT32_MAX - 1 ||
	    RESERVE(p->mappings, p->cap_mappings, p->nmappings + 1) ||
	    index_insert(&p->mapping_index, (uint32_t)p->nmappings + 1, hash))
		goto oom;
	p->mappings[p->nmappings++] = m;
	return p->nmappings;
oom:
	p->oom = true;
	return 0;
}

/* ---- functions ---- */

static uint32_t function_hash(const struct profile_function_rec *f)
{
	uint64_t h = hash_mix(0, (uint64_t)f->name << 32 | f->system_name);

	h = hash_mix(h, f->filename);
	h = hash_mix(h, (uint64_t)f->start_line);
	return hash_final(h);
}

static bool function_eq(const struct profile *p, uint32_t id, const void *key)
{
	const struct profile_function_rec *a = &p->functions[id - 1], *b = key;

	return a->name == b->name && a->system_name == b->system_name &&
	       a->filename == b->filename && a->start_line == b->start_line;
}

uint64_t profile_function(struct profile *p, const char *name, const char *system_name,
			  const char *filename, int64_t start_line)
{
	struct profile_function_rec f = {.start_line = start_line};
	uint32_t hash, id;

	if (intern(p, name, &f.name) || intern(p, system_name, &f.system_name) ||
	    intern(p, filename, &f.filename))
		goto oom;
	hash = function_hash(&f);
	id = index_find(p, &p->function_index, hash, function_eq, &f);
	if (id)
		return id;
	if (p->nfunctions >= UINT32_MAX - 1 ||
	    RESERVE(p->functions, p->cap_functions, p->nfunctions + 1) ||
	    index_insert(&p->function_index, (uint32_t)p->nfunctions + 1, hash))
		goto oom;
	p->functions[p->nfunctions++] = f;
	return p->nfunctions;
oom:
	p->oom = true;
	return 0;
}

/* ---- locations ---- */

struct loc_key {
	uint64_t key, address;
};

static uint32_t location_hash(uint64_t key, uint64_t address)
{
	return hash_final(hash_mix(hash_mix(0, key), address));
}

static bool location_eq(const struct profile *p, uint32_t id, const void *key)
{
	const struct profile_location_rec *a = &p->locations[id - 1];
	const struct loc_key *k = key;

	return a->key == k->key && a->address == k->address;
}

uint64_t profile_location_find(const struct profile *p, uint64_t key, uint64_t address)
{
	struct loc_key k = {key, address};

	return index_find(p, &p->location_index, location_hash(key, address), location_eq, &k);
}

uint64_t profile_location_add(struct profile *p, uint64_t key, uint64_t address,
			      uint64_t mapping_id, const struct profile_line *lines, size_t nlines)
{
	struct loc_key k = {key, address};
	uint32_t hash = location_hash(key, address), id;
	struct profile_location_rec *loc;

	id = index_find(p, &p->location_index, hash, location_eq, &k);
	if (id)
		return id;
	if (mapping_id > p->nmappings || nlines > UINT32_MAX || (nlines && !lines))
		return 0;
	for (size_t i = 0; i < nlines; i++) {
		if (lines[i].function_id == 0 || lines[i].function_id > p->nfunctions)
			return 0;
	}
	if (p->nlocations >= UINT32_MAX - 1 ||
	    RESERVE(p->locations, p->cap_locations, p->nlocations + 1) ||
	    RESERVE(p->lines, p->cap_lines, p->nlines + nlines) ||
	    index_insert(&p->location_index, (uint32_t)p->nlocations + 1, hash)) {
		p->oom = true;
		return 0;
	}
	loc = &p->locations[p->nlocations];
	loc->key = key;
	loc->address = address;
	loc->mapping_id = mapping_id;
	loc->line_off = p->nlines;
	loc->nlines = (uint32_t)nlines;
	if (nlines)
		memcpy(&p->lines[p->nlines], lines, nlines * sizeof(*lines));
	p->nlines += nlines;
	return ++p->nlocations;
}

/* ---- samples ---- */

static uint32_t sample_hash(const uint32_t *locs, size_t nlocs,
			    const struct profile_label_rec *labels, size_t nlabels)
{
	uint64_t h = hash_mix(0, (uint64_t)nlocs << 32 | nlabels);

	for (size_t i = 0; i < nlocs; i++)
		h = hash_mix(h, locs[i]);
	for (size_t i = 0; i < nlabels; i++) {
		h = hash_mix(h, (uint64_t)labels[i].key << 32 | labels[i].str);
		h = hash_mix(h, (uint64_t)labels[i].num);
		h = hash_mix(h, labels[i].num_unit);
	}
	return hash_final(h);
}

/* A candidate sample, staged at the free ends of the location and label pools. */
struct sample_key {
	const uint32_t *locs;
	const struct profile_label_rec *labels;
	uint32_t nlocs, nlabels;
};

static bool sample_eq(const struct profile *p, uint32_t id, const void *key)
{
	const struct profile_sample_rec *s = &p->samples[id - 1];
	const struct sample_key *k = key;

	if (s->nlocs != k->nlocs || s->nlabels != k->nlabels)
		return false;
	if (s->nlocs && memcmp(&p->sample_locs[s->loc_off], k->locs, s->nlocs * sizeof(*k->locs)))
		return false;
	for (uint32_t i = 0; i < s->nlabels; i++) {
		const struct profile_label_rec *a = &p->labels[s->label_off + i],
					       *b = &k->labels[i];

		if (a->key != b->key || a->str != b->str || a->num != b->num ||
		    a->num_unit != b->num_unit)
			return false;
	}
	return true;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int profile_add_sample(struct profile *p, const uint64_t *location_ids, size_t nlocs,
		       const int64_t *values, const struct profile_label *labels, size_t nlabels,
		       struct gs_error *err)
{
	size_t nt = p->nsample_types;
	struct profile_sample_rec *s;
	struct sample_key k;
	uint32_t *locs;
	struct profile_label_rec *lrec;
	uint32_t hash, id;

	if (nt == 0)
		return gs_error_set(err, -EINVAL, "profile: sample added before any sample type");
	if (!values)
		return gs_error_set(err, -EINVAL, "profile: sample without values");
	if (nlocs > UINT32_MAX || nlabels > UINT32_MAX || (nlocs && !location_ids) ||
	    (nlabels && !labels))
		return gs_error_set(err, -EINVAL, "profile: bad sample arguments");
	/* One more than needed: the staging pointers below stay valid (not NULL + 0) for a
	 * sample without locations or labels. */
	if (p->nsamples >= UINT32_MAX - 1 ||
	    RESERVE(p->sample_locs, p->cap_sample_locs, p->nsample_locs + nlocs + 1) ||
	    RESERVE(p->labels, p->cap_labels, p->nlabels + nlabels + 1))
		goto oom;

	/* Stage the candidate at the pools' ends; it is committed only when new. */
	locs = &p->sample_locs[p->nsample_locs];
	for (size_t i = 0; i < nlocs; i++) {
		if (location_ids[i] == 0 || location_ids[i] > p->nlocations)
			return gs_error_set(err, -EINVAL,
					    "profile: sample with unknown location id %llu",
					    (unsigned long long)location_ids[i]);
		locs[i] = (uint32_t)location_ids[i];
	}
	lrec = &p->labels[p->nlabels];
	for (size_t i = 0; i < nlabels; i++) {
		const struct profile_label *l = &labels[i];

		if (!l->key || !*l->key)
			return gs_error_set(err, -EINVAL, "profile: label without a key");
		lrec[i] = (struct profile_label_rec){.num = l->str ? 0 : l->num};
		if (intern(p, l->key, &lrec[i].key) || intern(p, l->str, &lrec[i].str) ||
		    intern(p, l->str ? NULL : l->num_unit, &lrec[i].num_unit))
			goto oom;
	}
	k = (struct sample_key){locs, lrec, (uint32_t)nlocs, (uint32_t)nlabels};
	hash = sample_hash(locs, nlocs, lrec, nlabels);
	id = index_find(p, &p->sample_index, hash, sample_eq, &k);
	if (id) {
		int64_t *v = &p->values[(id - 1) * nt];

		for (size_t i = 0; i < nt; i++)
			v[i] = add_sat(v[i], values[i]);
		return 0;
	}

	if (p->nsamples + 1 > SIZE_MAX / nt ||
	    RESERVE(p->samples, p->cap_samples, p->nsamples + 1) ||
	    RESERVE(p->values, p->cap_values, (p->nsamples + 1) * nt) ||
	    index_insert(&p->sample_index, (uint32_t)p->nsamples + 1, hash))
		goto oom;
	s = &p->samples[p->nsamples];
	s->loc_off = p->nsample_locs;
	s->label_off = p->nlabels;
	s->nlocs = (uint32_t)nlocs;
	s->nlabels = (uint32_t)nlabels;
	s->hash = hash;
	memcpy(&p->values[p->nsamples * nt], values, nt * sizeof(*values));
	p->nsample_locs += nlocs;
	p->nlabels += nlabels;
	p->nsamples++;
	return 0;
oom:
	return gs_error_set(err, -ENOMEM, "profile: out of memory");
}

size_t profile_sample_count(const struct profile *p)
{
	return p->nsamples;
}

/* v * num / den rounded half away from zero, clamped to the int64 range. */
static int64_t scale_value(int64_t v, uint64_t num, uint64_t den)
{
	unsigned __int128 mag = v < 0 ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
	unsigned __int128 r = (mag * num + den / 2) / den;

	if (v >= 0)
		return r > INT64_MAX ? INT64_MAX : (int64_t)r;
	if (r == 0)
		return 0;
	return r > (unsigned __int128)INT64_MAX + 1 ? INT64_MIN : -(int64_t)(r - 1) - 1;
}

void profile_scale(struct profile *p, uint64_t num, uint64_t den)
{
	size_t n = p->nsamples * p->nsample_types;

	if (den == 0)
		return;
	for (size_t i = 0; i < n; i++)
		p->values[i] = scale_value(p->values[i], num, den);
}

/* ---- merging ---- */

/* src's string idx as the C string profile_* functions take (NULL for ""). */
static const char *src_str(const struct profile *src, uint32_t idx)
{
	return idx ? src->strings[idx].s : NULL;
}

static bool same_str(const struct profile *a, uint32_t ia, const struct profile *b, uint32_t ib)
{
	return a->strings[ia].len == b->strings[ib].len &&
	       memcmp(a->strings[ia].s, b->strings[ib].s, a->strings[ia].len) == 0;
}

/* Checks (or, for an empty dst, takes) src's sample types, period and default type. */
static int merge_header(struct profile *dst, const struct profile *src, struct gs_error *err)
{
	if (dst->nsample_types == 0 && dst->nsamples == 0) {
		for (size_t i = 0; i < src->nsample_types; i++) {
			const struct profile_value_type *vt = &src->sample_types[i];

			if (profile_add_sample_type(dst, src_str(src, vt->type),
						    src_str(src, vt->unit)))
				return gs_error_set(err, -ENOMEM, "profile: out of memory");
		}
	} else {
		bool same = dst->nsample_types == src->nsample_types;

		for (size_t i = 0; same && i < src->nsample_types; i++)
			same = same_str(dst, dst->sample_types[i].type, src,
					src->sample_types[i].type) &&
			       same_str(dst, dst->sample_types[i].unit, src,
					src->sample_types[i].unit);
		if (!same)
			return gs_error_set(err, -EINVAL,
					    "profile: merging profiles of different sample types");
	}
	if (!dst->period_type.type && !dst->period_type.unit && !dst->period)
		profile_set_period(dst, src_str(src, src->period_type.type),
				   src_str(src, src->period_type.unit), src->period);
	if (!dst->default_sample_type && src->default_sample_type)
		profile_set_default_sample_type(dst, src_str(src, src->default_sample_type));
	/* The span covering both (a zero time means "not set"). */
	if (src->time_nanos || src->duration_nanos) {
		int64_t start = src->time_nanos,
			end = add_sat(src->time_nanos, src->duration_nanos);

		if (dst->time_nanos || dst->duration_nanos) {
			int64_t dend = add_sat(dst->time_nanos, dst->duration_nanos);

			start = dst->time_nanos < start ? dst->time_nanos : start;
			end = dend > end ? dend : end;
		}
		dst->time_nanos = start;
		dst->duration_nanos = end - start;
	}
	for (size_t i = 0; i < src->ncomments; i++) {
		const char *c = src_str(src, src->comments[i]);
		struct str_key k = {c ? c : "", c ? strlen(c) : 0};
		uint32_t id = c ? index_find(dst, &dst->string_index, hash_bytes(k.s, k.len),
					     string_eq, &k)
				: 0;
		bool have = false;

		/* A comment dst has is a string dst has: look it up before scanning. */
		for (size_t j = 0; id && j < dst->ncomments && !have; j++)
			have = dst->comments[j] == id - 1;
		if (!have && profile_add_comment(dst, c))
			return gs_error_set(err, -ENOMEM, "profile: out of memory");
	}
	return dst->oom ? gs_error_set(err, -ENOMEM, "profile: out of memory") : 0;
}

/* Maps src's mapping, function and location ids (index = src id) to dst's. */
struct merge_ids {
	uint64_t *mapping, *function, *location;
	struct profile_line *lines; /* scratch: one location's lines */
	uint64_t *locs;		    /* scratch: one sample's location ids */
	struct profile_label *labels;
};

static void merge_ids_free(struct merge_ids *m)
{
	free(m->mapping);
	free(m->function);
	free(m->location);
	free(m->lines);
	free(m->locs);
	free(m->labels);
}

/* Brings src's mappings, functions and locations into dst, filling m. */
static int merge_tables(struct profile *dst, const struct profile *src, struct merge_ids *m)
{
	size_t max_lines = 0;

	m->mapping = calloc(src->nmappings + 1, sizeof(*m->mapping));
	m->function = calloc(src->nfunctions + 1, sizeof(*m->function));
	m->location = calloc(src->nlocations + 1, sizeof(*m->location));
	for (size_t i = 0; i < src->nlocations; i++)
		max_lines =
			src->locations[i].nlines > max_lines ? src->locations[i].nlines : max_lines;
	m->lines = calloc(max_lines + 1, sizeof(*m->lines));
	if (!m->mapping || !m->function || !m->location || !m->lines)
		return -ENOMEM;
	for (size_t i = 0; i < src->nmappings; i++) {
		const struct profile_mapping_rec *r = &src->mappings[i];

		m->mapping[i + 1] = profile_mapping(
			dst, r->start, r->limit, r->offset, src_str(src, r->file),
			src_str(src, r->build_id), r->has_functions, r->has_filenames,
			r->has_line_numbers, r->has_inline_frames);
		if (!m->mapping[i + 1])
			return -ENOMEM;
	}
	for (size_t i = 0; i < src->nfunctions; i++) {
		const struct profile_function_rec *r = &src->functions[i];

		m->function[i + 1] =
			profile_function(dst, src_str(src, r->name), src_str(src, r->system_name),
					 src_str(src, r->filename), r->start_line);
		if (!m->function[i + 1])
			return -ENOMEM;
	}
	for (size_t i = 0; i < src->nlocations; i++) {
		const struct profile_location_rec *r = &src->locations[i];

		for (uint32_t j = 0; j < r->nlines; j++) {
			const struct profile_line *ln = &src->lines[r->line_off + j];

			m->lines[j].function_id = m->function[ln->function_id];
			m->lines[j].line = ln->line;
		}
		m->location[i + 1] = profile_location_add(
			dst, r->key, r->address, m->mapping[r->mapping_id], m->lines, r->nlines);
		if (!m->location[i + 1])
			return -ENOMEM; /* the ids are valid: only an allocation can fail */
	}
	return 0;
}

int profile_merge(struct profile *dst, const struct profile *src, struct gs_error *err)
{
	struct merge_ids m = {0};
	size_t max_locs = 0, max_labels = 0;
	int rc;

	if (dst == src)
		return gs_error_set(err, -EINVAL, "profile: merging a profile into itself");
	if (src->oom || dst->oom)
		return gs_error_set(err, -ENOMEM,
				    "profile: out of memory while building the profile");
	rc = merge_header(dst, src, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < src->nsamples; i++) {
		const struct profile_sample_rec *s = &src->samples[i];

		max_locs = s->nlocs > max_locs ? s->nlocs : max_locs;
		max_labels = s->nlabels > max_labels ? s->nlabels : max_labels;
	}
	m.locs = calloc(max_locs + 1, sizeof(*m.locs));
	m.labels = calloc(max_labels + 1, sizeof(*m.labels));
	if (!m.locs || !m.labels || merge_tables(dst, src, &m)) {
		merge_ids_free(&m);
		return gs_error_set(err, -ENOMEM, "profile: out of memory");
	}
	for (size_t i = 0; i < src->nsamples && rc == 0; i++) {
		const struct profile_sample_rec *s = &src->samples[i];

		for (uint32_t j = 0; j < s->nlocs; j++)
			m.locs[j] = m.location[src->sample_locs[s->loc_off + j]];
		for (uint32_t j = 0; j < s->nlabels; j++) {
			const struct profile_label_rec *l = &src->labels[s->label_off + j];

			/* A string label has str != 0; anything else was numeric (num, unit). */
			m.labels[j] = (struct profile_label){
				.key = src_str(src, l->key),
				.str = src_str(src, l->str),
				.num = l->num,
				.num_unit = src_str(src, l->num_unit),
			};
		}
		rc = profile_add_sample(dst, m.locs, s->nlocs, &src->values[i * src->nsample_types],
					m.labels, s->nlabels, err);
	}
	merge_ids_free(&m);
	return rc;
}

/* ---- label-all, clearing ---- */

/* Rebuilds the sample index from the samples' (possibly changed) locations and labels. */
static int rebuild_sample_index(struct profile *p)
{
	free(p->sample_index.slots);
	p->sample_index = (struct profile_index){0};
	for (size_t i = 0; i < p->nsamples; i++) {
		struct profile_sample_rec *s = &p->samples[i];

		s->hash = sample_hash(&p->sample_locs[s->loc_off], s->nlocs,
				      &p->labels[s->label_off], s->nlabels);
		if (index_insert(&p->sample_index, (uint32_t)i + 1, s->hash))
			return -ENOMEM;
	}
	return 0;
}

int profile_reject(struct profile_rejects *r, int rc, struct gs_error *err)
{
	if (rc != -EINVAL)
		return rc;
	if (r->n++ == 0)
		snprintf(r->why, sizeof(r->why), "%s", err->msg);
	gs_error_clear(err);
	return 0;
}

int profile_add_labels_all(struct profile *p, const struct profile_label *labels, size_t n,
			   struct gs_error *err)
{
	struct profile_label_rec *add, *pool;
	size_t total, at = 0;

	if (n == 0)
		return 0;
	if (!labels || n > UINT32_MAX)
		return gs_error_set(err, -EINVAL, "profile: bad labels");
	add = calloc(n, sizeof(*add));
	if (!add)
		return gs_error_set(err, -ENOMEM, "profile: out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct profile_label *l = &labels[i];

		if (!l->key || !*l->key) {
			free(add);
			return gs_error_set(err, -EINVAL, "profile: label without a key");
		}
		add[i].num = l->str ? 0 : l->num;
		if (intern(p, l->key, &add[i].key) || intern(p, l->str, &add[i].str) ||
		    intern(p, l->str ? NULL : l->num_unit, &add[i].num_unit)) {
			free(add);
			return gs_error_set(err, -ENOMEM, "profile: out of memory");
		}
	}
	for (size_t i = 0; i < p->nsamples; i++) {
		if (p->samples[i].nlabels > UINT32_MAX - n) {
			free(add);
			return gs_error_set(err, -EINVAL, "profile: too many labels");
		}
	}
	if (p->nsamples > (SIZE_MAX - p->nlabels) / n ||
	    p->nsamples * n + p->nlabels > SIZE_MAX / sizeof(*pool)) {
		free(add);
		return gs_error_set(err, -ENOMEM, "profile: out of memory");
	}
	total = p->nlabels + p->nsamples * n;
	pool = malloc((total ? total : 1) * sizeof(*pool));
	if (!pool) {
		free(add);
		return gs_error_set(err, -ENOMEM, "profile: out of memory");
	}
	for (size_t i = 0; i < p->nsamples; i++) {
		struct profile_sample_rec *s = &p->samples[i];

		if (s->nlabels)
			memcpy(&pool[at], &p->labels[s->label_off], s->nlabels * sizeof(*pool));
		memcpy(&pool[at + s->nlabels], add, n * sizeof(*pool));
		s->label_off = at;
		s->nlabels += (uint32_t)n;
		at += s->nlabels;
	}
	free(add);
	free(p->labels);
	p->labels = pool;
	p->nlabels = at;
	p->cap_labels = total ? total : 1;
	/* The same labels on every sample keep distinct samples distinct: only the hashes move. */
	if (rebuild_sample_index(p))
		return gs_error_set(err, -ENOMEM, "profile: out of memory");
	return 0;
}

void profile_clear_samples(struct profile *p)
{
	p->nsamples = 0;
	p->nsample_locs = 0;
	p->nlabels = 0;
	free(p->sample_index.slots);
	p->sample_index = (struct profile_index){0};
	p->ncomments = 0;
	p->time_nanos = 0;
	p->duration_nanos = 0;
}

void profile_dict_mark(const struct profile *p, struct profile_dict_mark *m)
{
	m->strings = p->nstrings;
	m->mappings = p->nmappings;
	m->functions = p->nfunctions;
	m->locations = p->nlocations;
}
