/* process.c — live processes: /proc/PID/maps → mappings and load bias, binaries opened
 * through /proc/PID/map_files (or /proc/PID/root) so that processes in other mount
 * namespaces work, and a cache keyed by (device, inode, size, mtime) so that a binary shared
 * by many processes is opened and parsed once. */
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
};

struct gs_symbolizer {
	pthread_mutex_t lock;
	struct cache_entry *entries;
	size_t n, cap;
};

struct proc_mapping {
	struct gs_mapping m;
	bool resolved; /* binary lookup attempted */
	struct gs_binary *bin;
};

struct gs_process {
	struct gs_symbolizer *sym;
	pid_t pid;
	pthread_mutex_t lock;
	struct proc_mapping *maps;
	struct gs_mapping *pub; /* copies for gs_process_mappings */
	size_t n;
};

int gs_symbolizer_new(struct gs_symbolizer **out, struct gs_error *err)
{
	struct gs_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return gs_error_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void gs_symbolizer_free(struct gs_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		gs_binary_close(s->entries[i].bin);
	free(s->entries);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

unsigned gs_symbolizer_cached_binaries(const struct gs_symbolizer *s)
{
	return (unsigned)s->n;
}

/* Returns the cached binary for an open file, opening it on a miss. */
static struct gs_binary *cache_get(struct gs_symbolizer *s, int fd, const char *name)
{
	struct gs_binary *bin = NULL;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct cache_entry *e = &s->entries[i];

		if (e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
		    e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
			bin = e->bin;
			goto out;
		}
	}
	if (gs_binary_open_fd(fd, name, &bin, NULL) < 0) {
		bin = NULL;
		goto out;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct cache_entry *ne = realloc(s->entries, cap * sizeof(*ne));

		if (!ne) {
			gs_binary_close(bin);
			bin = NULL;
			goto out;
		}
		s->entries = ne;
		s->cap = cap;
	}
	s->entries[s->n++] = (struct cache_entry){st.st_dev, st.st_ino, st.st_size, st.st_mtim, bin};
out:
	pthread_mutex_unlock(&s->lock);
	return bin;
}

/* Parses one /proc/PID/maps line; false when malformed. */
static bool parse_maps_line(const char *line, struct gs_mapping *m)
{
	char perms[8] = "";
	unsigned long long start, end, offset, inode;
	unsigned int dmaj, dmin;
	int pos = 0;

	memset(m, 0, sizeof(*m));
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset, &dmaj,
		   &dmin, &inode, &pos) < 7)
		return false;
	if (end <= start)
		return false;
	m->start = start;
	m->end = end;
	m->offset = offset;
	m->dev_major = dmaj;
	m->dev_minor = dmin;
	m->inode = inode;
	m->exec = strlen(perms) >= 3 && perms[2] == 'x';
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

static int read_maps(struct gs_process *p, struct gs_error *err)
{
	char path[64], *line = NULL;
	size_t cap = 0, n = 0, mcap = 0;
	struct proc_mapping *maps = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		return gs_error_set(err, e == ENOENT ? -ESRCH : -e, "pid %d: %s", p->pid,
				    e == ENOENT ? "no such process" : strerror(e));
	}
	while (getline(&line, &cap, f) >= 0) {
		struct gs_mapping m;

		if (!parse_maps_line(line, &m))
			continue;
		if (n == mcap) {
			size_t nc = mcap ? mcap * 2 : 64;
			struct proc_mapping *nm = realloc(maps, nc * sizeof(*nm));

			if (!nm) {
				free(maps);
				free(line);
				fclose(f);
				return gs_error_set(err, -ENOMEM, "out of memory");
			}
			maps = nm;
			mcap = nc;
		}
		memset(&maps[n], 0, sizeof(maps[n]));
		maps[n++].m = m;
	}
	free(line);
	fclose(f);
	free(p->maps);
	free(p->pub);
	p->maps = maps;
	p->n = n;
	p->pub = calloc(n ? n : 1, sizeof(*p->pub));
	if (!p->pub)
		return gs_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		p->pub[i] = maps[i].m;
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
	free(p->maps);
	free(p->pub);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int gs_process_refresh(struct gs_process *p, struct gs_error *err)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = read_maps(p, err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

size_t gs_process_mappings(const struct gs_process *p, const struct gs_mapping **out)
{
	*out = p->pub;
	return p->n;
}

/* Opens a mapping's file: /proc/PID/map_files/START-END first (works across mount
 * namespaces and for deleted files), then /proc/PID/root/PATH. */
static struct gs_binary *resolve_binary(struct gs_process *p, struct proc_mapping *pm)
{
	char path[sizeof(pm->m.path) + 64];
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
	if (fd < 0)
		return NULL;
	pm->bin = cache_get(p->sym, fd, pm->m.path);
	close(fd);
	/* Every mapping of the same file shares the binary. */
	for (size_t i = 0; i < p->n; i++) {
		struct proc_mapping *o = &p->maps[i];

		if (!o->resolved && o->m.inode == pm->m.inode && o->m.dev_major == pm->m.dev_major &&
		    o->m.dev_minor == pm->m.dev_minor && strcmp(o->m.path, pm->m.path) == 0) {
			o->resolved = true;
			o->bin = pm->bin;
		}
	}
	return pm->bin;
}

static struct proc_mapping *find_mapping(struct gs_process *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < p->maps[mid].m.start)
			hi = mid;
		else if (addr >= p->maps[mid].m.end)
			lo = mid + 1;
		else
			return &p->maps[mid];
	}
	return NULL;
}

pid_t gs_process_pid(const struct gs_process *p)
{
	return p->pid;
}

int gs_process_preload(struct gs_process *p)
{
	int n = 0;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++) {
		if (p->maps[i].m.exec && resolve_binary(p, &p->maps[i]))
			n++;
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

int gs_process_locate(struct gs_process *p, uint64_t addr, struct gs_location *loc)
{
	struct proc_mapping *pm;

	memset(loc, 0, sizeof(*loc));
	pthread_mutex_lock(&p->lock);
	pm = find_mapping(p, addr);
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

int gs_process_symbolize(struct gs_process *p, uint64_t addr, unsigned flags,
			 struct gs_frame *frames, int max, struct gs_location *loc,
			 struct gs_error *err)
{
	struct gs_location l;
	int n = 0;

	if (max <= 0)
		return 0;
	gs_process_locate(p, addr, &l);
	if (l.binary)
		n = gs_binary_symbolize(l.binary, l.file_addr, flags, frames, max, err);
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
	char path[64];
	struct gs_binary *bin;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	{
		char name[256];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
		n = readlink(path, name, sizeof(name) - 1);
		name[n > 0 ? n : 0] = '\0';
		bin = cache_get(p->sym, fd, name);
	}
	close(fd);
	return bin;
}
