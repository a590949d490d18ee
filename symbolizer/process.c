/* process.c — live processes: /proc/PID/maps → mappings and load bias, binaries opened
 * through /proc/PID/map_files (or /proc/PID/root) so that processes in other mount
 * namespaces work, and a cache keyed by (device, inode, size, mtime) so that a binary shared
 * by many processes is opened and parsed once.
 *
 * The cache is bounded for an agent that runs for months while processes come and go: every
 * binary a process uses holds a reference (one per mapping that resolved to it, one for the
 * main executable), and unreferenced binaries stay open only within the symbolizer's limits
 * (count and bytes: mapped file plus index memory), least recently used closed first. A
 * binary still referenced is never closed, even over the limits; it is closed when its last
 * reference goes if the cache is over them then. A restarting service finds its binary still
 * cached when the limits allow. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "goscope/symbolizer.h"

struct cache_entry {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct gs_binary *bin;
	unsigned refs;                    /* gs_process mappings and gs_symbolizer_acquire holders */
	struct cache_entry *prev, *next; /* LRU list, most recently used first */
};

struct gs_symbolizer {
	pthread_mutex_t lock; /* everything below */
	struct cache_entry *head, *tail;
	unsigned n;
	unsigned max_binaries;
	uint64_t max_bytes;
	uint64_t hits, misses, evictions;
};

struct proc_mapping {
	struct gs_mapping m;
	bool resolved;           /* binary lookup attempted */
	struct gs_binary *bin;   /* ent->bin, or NULL */
	struct cache_entry *ent; /* holds one reference, or NULL */
};

struct gs_process {
	struct gs_symbolizer *sym;
	pid_t pid;
	/* Read-held while the maps and their binaries are in use (lookups), write-held when
	 * gs_process_refresh replaces them (and drops the binaries of vanished mappings). */
	pthread_rwlock_t maps_lock;
	pthread_mutex_t lock; /* lazy binary resolution under a read hold; main_ent */
	struct proc_mapping *maps;
	struct gs_mapping *pub; /* copies for gs_process_mappings */
	size_t n;
	struct cache_entry *main_ent; /* gs_process_main_binary's reference, or NULL */
};

int gs_symbolizer_new(struct gs_symbolizer **out, struct gs_error *err)
{
	struct gs_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return gs_error_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->max_binaries = GS_SYMBOLIZER_DEFAULT_MAX_BINARIES;
	s->max_bytes = GS_SYMBOLIZER_DEFAULT_MAX_BYTES;
	*out = s;
	return 0;
}

/* Closes a list of evicted entries (chained by next), outside the cache lock: unmapping and
 * freeing an index can take a while. */
static void close_entries(struct cache_entry *e)
{
	while (e) {
		struct cache_entry *next = e->next;

		gs_binary_close(e->bin);
		free(e);
		e = next;
	}
}

void gs_symbolizer_free(struct gs_symbolizer *s)
{
	if (!s)
		return;
	close_entries(s->head);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void lru_unlink(struct gs_symbolizer *s, struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct gs_symbolizer *s, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	else
		s->tail = e;
	s->head = e;
}

static uint64_t cache_bytes(const struct gs_symbolizer *s)
{
	uint64_t bytes = 0;

	for (const struct cache_entry *e = s->head; e; e = e->next)
		bytes += gs_binary_bytes(e->bin);
	return bytes;
}

/* Takes unreferenced entries, least recently used first, off the cache until it is within
 * its limits (or only referenced entries are left), and every unreferenced binary whose file
 * changed under it (it is useless: see gs_binary_changed). Returns them for close_entries,
 * to be called once the lock is dropped. Called with the lock held. */
static struct cache_entry *cache_trim(struct gs_symbolizer *s)
{
	struct cache_entry *victims = NULL, *e = s->tail;
	uint64_t bytes = cache_bytes(s);

	while (e) {
		struct cache_entry *prev = e->prev;
		bool over = s->n > s->max_binaries || bytes > s->max_bytes;

		if (e->refs == 0 && (over || gs_binary_changed(e->bin))) {
			bytes -= gs_binary_bytes(e->bin);
			lru_unlink(s, e);
			s->n--;
			s->evictions += over;
			e->next = victims;
			victims = e;
		}
		e = prev;
	}
	return victims;
}

/* The cached binary of a file, if any. A binary whose file changed under it is never
 * handed out again: the file is reopened (and parsed as it is now). */
static struct cache_entry *cache_find(struct gs_symbolizer *s, const struct stat *st)
{
	for (struct cache_entry *e = s->head; e; e = e->next) {
		if (gs_binary_changed(e->bin))
			continue;
		if (e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
		    e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec)
			return e;
	}
	return NULL;
}

/* A cache hit: one more reference, and the entry becomes the most recently used. Called
 * with the lock held. */
static void cache_ref(struct gs_symbolizer *s, struct cache_entry *e)
{
	e->refs++;
	s->hits++;
	lru_unlink(s, e);
	lru_push_front(s, e);
}

/* The cache entry for an open file, opened on a miss, with one reference for the caller.
 * The file is parsed outside the lock; when another thread cached it meanwhile, its entry
 * wins and this copy is closed. */
static int cache_get(struct gs_symbolizer *s, int fd, const char *name, struct cache_entry **out,
		     struct gs_error *err)
{
	struct cache_entry *e, *fresh, *victims = NULL;
	struct gs_binary *bin;
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		return gs_error_set(err, -errno, "%s: %s", name, strerror(errno));
	pthread_mutex_lock(&s->lock);
	e = cache_find(s, &st);
	if (e)
		cache_ref(s, e);
	pthread_mutex_unlock(&s->lock);
	if (e) {
		*out = e;
		return 0;
	}
	rc = gs_binary_open_fd(fd, name, &bin, err);
	if (rc < 0)
		return rc;
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		gs_binary_close(bin);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	*fresh = (struct cache_entry){.dev = st.st_dev,
				      .ino = st.st_ino,
				      .size = st.st_size,
				      .mtime = st.st_mtim,
				      .bin = bin,
				      .refs = 1};
	pthread_mutex_lock(&s->lock);
	e = cache_find(s, &st);
	if (e) {
		cache_ref(s, e);
	} else {
		e = fresh;
		fresh = NULL;
		lru_push_front(s, e);
		s->n++;
		s->misses++;
		victims = cache_trim(s);
	}
	pthread_mutex_unlock(&s->lock);
	close_entries(victims);
	close_entries(fresh);
	*out = e;
	return 0;
}

/* Adds n references to an entry the caller already holds one of. */
static void cache_hold(struct gs_symbolizer *s, struct cache_entry *e, unsigned n)
{
	pthread_mutex_lock(&s->lock);
	e->refs += n;
	pthread_mutex_unlock(&s->lock);
}

/* Drops one reference; an entry left unreferenced becomes the most recently used one, and
 * the cache is trimmed to its limits. */
static void cache_put(struct gs_symbolizer *s, struct cache_entry *e)
{
	struct cache_entry *victims = NULL;

	if (!e)
		return;
	pthread_mutex_lock(&s->lock);
	if (--e->refs == 0) {
		lru_unlink(s, e);
		lru_push_front(s, e);
		victims = cache_trim(s);
	}
	pthread_mutex_unlock(&s->lock);
	close_entries(victims);
}

void gs_symbolizer_set_limits(struct gs_symbolizer *s, unsigned max_binaries, uint64_t max_bytes)
{
	struct cache_entry *victims;

	pthread_mutex_lock(&s->lock);
	s->max_binaries = max_binaries;
	s->max_bytes = max_bytes;
	victims = cache_trim(s);
	pthread_mutex_unlock(&s->lock);
	close_entries(victims);
}

void gs_symbolizer_stats(const struct gs_symbolizer *cs, struct gs_symbolizer_stats *out)
{
	struct gs_symbolizer *s = (struct gs_symbolizer *)cs; /* for the lock only */

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->binaries = s->n;
	for (const struct cache_entry *e = s->head; e; e = e->next)
		out->referenced += e->refs > 0;
	out->bytes = cache_bytes(s);
	out->max_binaries = s->max_binaries;
	out->max_bytes = s->max_bytes;
	out->hits = s->hits;
	out->misses = s->misses;
	out->evictions = s->evictions;
	pthread_mutex_unlock(&s->lock);
}

unsigned gs_symbolizer_cached_binaries(const struct gs_symbolizer *s)
{
	struct gs_symbolizer_stats st;

	gs_symbolizer_stats(s, &st);
	return st.binaries;
}

uint64_t gs_symbolizer_cached_bytes(const struct gs_symbolizer *s)
{
	struct gs_symbolizer_stats st;

	gs_symbolizer_stats(s, &st);
	return st.bytes;
}

int gs_symbolizer_acquire(struct gs_symbolizer *s, int fd, const char *name,
			  struct gs_binary **out, struct gs_error *err)
{
	struct cache_entry *e;
	int rc = cache_get(s, fd, name, &e, err);

	if (rc == 0)
		*out = e->bin;
	return rc;
}

void gs_symbolizer_release(struct gs_symbolizer *s, struct gs_binary *bin)
{
	struct cache_entry *e;

	if (!bin)
		return;
	pthread_mutex_lock(&s->lock);
	for (e = s->head; e && e->bin != bin; e = e->next)
		;
	pthread_mutex_unlock(&s->lock);
	cache_put(s, e);
}

/* Parses one /proc/PID/maps line; false when malformed. */
static bool parse_maps_line(const char *line, struct gs_mapping *m)
{
	char perms[8] = "";
	unsigned long long start, end, offset, inode;
	unsigned int dmaj, dmin;
	int pos = 0;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset, &dmaj,
		   &dmin, &inode, &pos) < 7 ||
	    end <= start)
		return false;
	*m = (struct gs_mapping){.start = start,
				 .end = end,
				 .offset = offset,
				 .dev_major = dmaj,
				 .dev_minor = dmin,
				 .inode = inode,
				 .exec = strlen(perms) >= 3 && perms[2] == 'x'};
	if (pos > 0) {
		const char *path = line + pos;
		size_t len = strcspn(path, "\n");

		if (len >= sizeof(m->path))
			len = sizeof(m->path) - 1;
		memcpy(m->path, path, len);
		m->path[len] = '\0';
	}
	return true;
}

/* The mapping holding addr in an array sorted by address (as /proc/PID/maps lists them). */
static struct proc_mapping *find_mapping(struct proc_mapping *maps, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < maps[mid].m.start)
			hi = mid;
		else if (addr >= maps[mid].m.end)
			lo = mid + 1;
		else
			return &maps[mid];
	}
	return NULL;
}

static bool same_mapping(const struct gs_mapping *a, const struct gs_mapping *b)
{
	return a->start == b->start && a->end == b->end && a->offset == b->offset &&
	       a->dev_major == b->dev_major && a->dev_minor == b->dev_minor &&
	       a->inode == b->inode && strcmp(a->path, b->path) == 0;
}

/* Drops the binary references of an array of mappings and frees it. */
static void release_maps(struct gs_symbolizer *s, struct proc_mapping *maps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cache_put(s, maps[i].ent);
	free(maps);
}

/* Parses /proc/PID/maps into a new array *out of *count mappings; -errno (err set). */
static int parse_maps(pid_t pid, struct proc_mapping **out, size_t *count, struct gs_error *err)
{
	char path[64], *line = NULL;
	size_t cap = 0, n = 0, mcap = 64;
	struct proc_mapping *maps;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		return gs_error_set(err, e == ENOENT ? -ESRCH : -e, "pid %d: %s", pid,
				    e == ENOENT ? "no such process" : strerror(e));
	}
	maps = calloc(mcap, sizeof(*maps));
	while (maps && getline(&line, &cap, f) >= 0) {
		if (n == mcap) {
			struct proc_mapping *nm = reallocarray(maps, mcap * 2, sizeof(*nm));

			if (!nm) {
				free(maps);
				maps = NULL;
				break;
			}
			memset(nm + mcap, 0, mcap * sizeof(*nm));
			maps = nm;
			mcap *= 2;
		}
		n += parse_maps_line(line, &maps[n].m);
	}
	free(line);
	fclose(f);
	if (!maps)
		return gs_error_set(err, -ENOMEM, "out of memory");
	*out = maps;
	*count = n;
	return 0;
}

/* Replaces the process's mappings by a fresh read of /proc/PID/maps. A mapping that is still
 * there keeps its resolved binary (and reference), so lookups after a refresh do not reopen
 * anything; the binaries of vanished mappings lose their reference. On failure the old
 * mappings stay. Called with maps_lock held for writing (or before the process is shared). */
static int read_maps(struct gs_process *p, struct gs_error *err)
{
	struct proc_mapping *maps = NULL;
	struct gs_mapping *pub;
	size_t n = 0;
	int rc = parse_maps(p->pid, &maps, &n, err);

	if (rc < 0)
		return rc;
	pub = calloc(n ? n : 1, sizeof(*pub));
	if (!pub) {
		free(maps);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct proc_mapping *old = find_mapping(p->maps, p->n, maps[i].m.start);

		pub[i] = maps[i].m;
		/* A binary whose file changed is dropped: the mapping reopens the file. */
		if (old && old->ent && same_mapping(&old->m, &maps[i].m) &&
		    !gs_binary_changed(old->bin)) {
			maps[i].resolved = true;
			maps[i].bin = old->bin;
			maps[i].ent = old->ent;
			old->ent = NULL; /* the reference moved */
		}
	}
	release_maps(p->sym, p->maps, p->n);
	free(p->pub);
	p->maps = maps;
	p->pub = pub;
	p->n = n;
	return 0;
}

int gs_process_open(struct gs_symbolizer *s, pid_t pid, struct gs_process **out,
		    struct gs_error *err)
{
	struct gs_process *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return gs_error_set(err, -ENOMEM, "out of memory");
	p->sym = s;
	p->pid = pid;
	pthread_rwlock_init(&p->maps_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	rc = read_maps(p, err);
	if (rc < 0) {
		gs_process_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

void gs_process_close(struct gs_process *p)
{
	if (!p)
		return;
	release_maps(p->sym, p->maps, p->n);
	cache_put(p->sym, p->main_ent);
	free(p->pub);
	pthread_mutex_destroy(&p->lock);
	pthread_rwlock_destroy(&p->maps_lock);
	free(p);
}

int gs_process_refresh(struct gs_process *p, struct gs_error *err)
{
	int rc;

	pthread_rwlock_wrlock(&p->maps_lock);
	rc = read_maps(p, err);
	pthread_rwlock_unlock(&p->maps_lock);
	return rc;
}

size_t gs_process_mappings(const struct gs_process *p, const struct gs_mapping **out)
{
	*out = p->pub;
	return p->n;
}

/* Opens a file of the process from the cache: fd's file, named name. */
static struct cache_entry *open_cached(struct gs_process *p, int fd, const char *name)
{
	struct cache_entry *e = NULL;

	if (fd < 0)
		return NULL;
	if (cache_get(p->sym, fd, name, &e, NULL) < 0)
		e = NULL;
	close(fd);
	return e;
}

/* Opens a mapping's file: /proc/PID/map_files/START-END first (works across mount
 * namespaces and for deleted files), then /proc/PID/root/PATH. Called with maps_lock held
 * and p->lock. */
static struct gs_binary *resolve_binary(struct gs_process *p, struct proc_mapping *pm)
{
	char path[sizeof(pm->m.path) + 64];
	unsigned shared = 0;
	int fd;

	if (pm->resolved)
		return pm->bin;
	pm->resolved = true;
	if (pm->m.path[0] != '/' || pm->m.inode == 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, p->pid,
		 pm->m.start, pm->m.end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/root%s", p->pid, pm->m.path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	pm->ent = open_cached(p, fd, pm->m.path);
	if (!pm->ent)
		return NULL;
	pm->bin = pm->ent->bin;
	/* Every mapping of the same file shares the binary, each with its reference. */
	for (size_t i = 0; i < p->n; i++) {
		struct proc_mapping *o = &p->maps[i];

		if (!o->resolved && o->m.inode == pm->m.inode && o->m.dev_major == pm->m.dev_major &&
		    o->m.dev_minor == pm->m.dev_minor && strcmp(o->m.path, pm->m.path) == 0) {
			o->resolved = true;
			o->bin = pm->bin;
			o->ent = pm->ent;
			shared++;
		}
	}
	if (shared)
		cache_hold(p->sym, pm->ent, shared);
	return pm->bin;
}

pid_t gs_process_pid(const struct gs_process *p)
{
	return p->pid;
}

int gs_process_preload(struct gs_process *p)
{
	int n = 0;

	pthread_rwlock_rdlock(&p->maps_lock);
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++) {
		if (p->maps[i].m.exec && resolve_binary(p, &p->maps[i]))
			n++;
	}
	pthread_mutex_unlock(&p->lock);
	pthread_rwlock_unlock(&p->maps_lock);
	return n;
}

/* gs_process_locate with maps_lock held. */
static int locate(struct gs_process *p, uint64_t addr, struct gs_location *loc)
{
	struct proc_mapping *pm;

	memset(loc, 0, sizeof(*loc));
	pthread_mutex_lock(&p->lock);
	pm = find_mapping(p->maps, p->n, addr);
	if (pm) {
		loc->mapping = &p->pub[pm - p->maps];
		loc->map_offset = addr - pm->m.start + pm->m.offset;
		loc->binary = resolve_binary(p, pm);
	}
	pthread_mutex_unlock(&p->lock);
	if (!pm)
		return -ENOENT;
	if (loc->binary &&
	    gs_binary_offset_to_addr(loc->binary, loc->map_offset, &loc->file_addr) < 0)
		loc->binary = NULL;
	return 0;
}

int gs_process_locate(struct gs_process *p, uint64_t addr, struct gs_location *loc)
{
	int rc;

	pthread_rwlock_rdlock(&p->maps_lock);
	rc = locate(p, addr, loc);
	pthread_rwlock_unlock(&p->maps_lock);
	return rc;
}

int gs_process_symbolize(struct gs_process *p, uint64_t addr, unsigned flags,
			 struct gs_frame *frames, int max, struct gs_location *loc,
			 struct gs_error *err)
{
	struct gs_location l;
	int n = 0;

	if (max <= 0)
		return 0;
	/* Held through the lookup: a concurrent refresh cannot drop the binary under it. */
	pthread_rwlock_rdlock(&p->maps_lock);
	locate(p, addr, &l);
	if (l.binary)
		n = gs_binary_symbolize(l.binary, l.file_addr, flags, frames, max, err);
	pthread_rwlock_unlock(&p->maps_lock);
	if (n < 0)
		return n;
	if (n == 0) {
		memset(&frames[0], 0, sizeof(frames[0]));
		frames[0].function = frames[0].raw_function = "?";
		frames[0].function_len = 1;
		frames[0].file = "?";
		n = 1;
	}
	if (loc)
		*loc = l;
	return n;
}

struct gs_binary *gs_process_main_binary(struct gs_process *p)
{
	char path[64], name[256];
	struct cache_entry *e, *old;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
	len = readlink(path, name, sizeof(name) - 1);
	name[len > 0 ? len : 0] = '\0';
	e = open_cached(p, open(path, O_RDONLY | O_CLOEXEC), name);
	if (!e)
		return NULL;
	/* The process keeps one reference to its executable: the latest one looked up. */
	pthread_mutex_lock(&p->lock);
	old = p->main_ent;
	p->main_ent = e;
	pthread_mutex_unlock(&p->lock);
	cache_put(p->sym, old);
	return e->bin;
}

int gs_process_load_bias(struct gs_process *p, const struct gs_binary *bin, uint64_t *bias)
{
	const struct gs_mapping *maps;
	size_t n = gs_process_mappings(p, &maps);

	for (size_t i = 0; i < n; i++) {
		struct gs_location loc;

		if (gs_process_locate(p, maps[i].start, &loc) == 0 && loc.binary == bin) {
			*bias = maps[i].start - loc.file_addr;
			return 0;
		}
	}
	return -ENOENT;
}
