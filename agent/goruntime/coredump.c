/* coredump.c — ELF core files as a gr_mem: PT_LOAD segments, NT_PRSTATUS threads, NT_FILE
 * mappings, NT_AUXV, and the executable for the ranges the core leaves out (coredump.h). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "goruntime/coredump.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* struct elf_prstatus on x86-64: pr_cursig at 12, pr_pid at 32, pr_reg (user_regs_struct) at
 * 112 (rbp is its 5th word, rip the 17th, rsp the 20th), 336 bytes in all. */
#define PRSTATUS_SIZE 336
#define PRSTATUS_CURSIG 12
#define PRSTATUS_PID 32
#define PRSTATUS_REG 112
#define REG_RBP 4
#define REG_RIP 16
#define REG_RSP 19

struct seg {
	uint64_t vaddr, memsz, offset, filesz;
};

struct gr_core {
	struct gr_mem mem; /* first: gr_core_mem hands out &c->mem */
	int fd;		   /* -1 for a memory image */
	const uint8_t *image;
	uint64_t size;
	struct seg *segs;
	size_t nsegs;
	uint8_t *notes; /* the PT_NOTE segments' bytes, concatenated */
	size_t notes_len;
	struct gr_thread *threads;
	size_t nthreads;
	struct gr_core_file *files;
	size_t nfiles;
	uint64_t entry;
	bool has_entry;
	struct gs_binary *exe;
	uint64_t bias;
};

/* Reads file bytes [off, off+len): 0, or -EIO when the file is shorter. */
static int src_read(struct gr_core *c, uint64_t off, void *buf, size_t len)
{
	if (c->fd < 0) {
		if (off > c->size || len > c->size - off)
			return -EIO;
		memcpy(buf, c->image + off, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(c->fd, buf, len, (off_t)off);

		if (n <= 0)
			return -EIO;
		buf = (uint8_t *)buf + n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A PT_LOAD holding addr, by binary search (segments sorted by vaddr, non-overlapping). */
static const struct seg *seg_at(const struct gr_core *c, uint64_t addr)
{
	size_t lo = 0, hi = c->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct seg *s = &c->segs[mid];

		if (addr < s->vaddr)
			hi = mid;
		else if (addr - s->vaddr >= s->memsz)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

/* Reads memory: the core's bytes where it has them; the executable's file for the ranges it
 * left out (filesz < memsz: a read-only file mapping the kernel did not dump). */
static int core_read(struct gr_mem *m, uint64_t addr, void *buf, size_t len, struct gs_error *err)
{
	struct gr_core *c = (struct gr_core *)m;
	uint8_t *out = buf;

	m->reads++;
	while (len) {
		const struct seg *s = seg_at(c, addr);
		uint64_t in, chunk;

		if (!s) {
			/* not in the core at all (gcore leaves read-only file mappings out): the
			 * executable's file, in one piece */
			if (c->exe && addr >= c->bias &&
			    gs_binary_read(c->exe, addr - c->bias, out, len) == 0)
				return 0;
			goto fault;
		}
		in = addr - s->vaddr;
		chunk = s->memsz - in < len ? s->memsz - in : len;
		if (in < s->filesz) {
			if (chunk > s->filesz - in)
				chunk = s->filesz - in;
			if (src_read(c, s->offset + in, out, chunk) < 0)
				return gs_error_set(err, -EIO,
						    "core file truncated: 0x%llx is past its end",
						    (unsigned long long)addr);
		} else if (!c->exe || addr < c->bias ||
			   gs_binary_read(c->exe, addr - c->bias, out, chunk) < 0) {
			goto fault;
		}
		addr += chunk;
		out += chunk;
		len -= chunk;
	}
	return 0;
fault:
	return gs_error_set(err, -EFAULT, "address 0x%llx is not in the core",
			    (unsigned long long)addr);
}

static void core_close_mem(struct gr_mem *m)
{
	(void)m; /* owned by the core: gr_core_close frees it */
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static int parse_prstatus(struct gr_core *c, const uint8_t *d, uint32_t len)
{
	struct gr_thread *t;

	if (len < PRSTATUS_SIZE || c->nthreads >= GR_CORE_MAX_THREADS)
		return 0;
	if (!c->threads) {
		c->threads = calloc(GR_CORE_MAX_THREADS, sizeof(*c->threads));
		if (!c->threads)
			return -ENOMEM;
	}
	t = &c->threads[c->nthreads++];
	t->tid = (int)le32(d + PRSTATUS_PID);
	t->signo = (int16_t)(d[PRSTATUS_CURSIG] | (d[PRSTATUS_CURSIG + 1] << 8));
	t->bp = le64(d + PRSTATUS_REG + 8 * REG_RBP);
	t->pc = le64(d + PRSTATUS_REG + 8 * REG_RIP);
	t->sp = le64(d + PRSTATUS_REG + 8 * REG_RSP);
	return 0;
}

/* NT_FILE: count, page size, count x {start, end, page offset}, then count names. */
static int parse_file_note(struct gr_core *c, const uint8_t *d, uint32_t len)
{
	uint64_t count, page;
	const uint8_t *names, *end = d + len;

	if (c->files || len < 16)
		return 0;
	count = le64(d);
	page = le64(d + 8);
	if (count > GR_CORE_MAX_FILES || count > (len - 16) / 24 || page == 0 || page > (1u << 30))
		return 0;
	c->files = calloc(count ? count : 1, sizeof(*c->files));
	if (!c->files)
		return -ENOMEM;
	names = d + 16 + count * 24;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *e = d + 16 + i * 24, *nul;
		uint64_t pofs = le64(e + 16);

		if (names >= end || !(nul = memchr(names, 0, (size_t)(end - names))))
			break;
		if (pofs > UINT64_MAX / page)
			break;
		c->files[c->nfiles++] = (struct gr_core_file){.start = le64(e),
							      .end = le64(e + 8),
							      .offset = pofs * page,
							      .path = (const char *)names};
		names = nul + 1;
	}
	return 0;
}

static void parse_auxv(struct gr_core *c, const uint8_t *d, uint32_t len)
{
	for (uint32_t i = 0; i + 16 <= len; i += 16) {
		if (le64(d + i) == AT_ENTRY) {
			c->entry = le64(d + i + 8);
			c->has_entry = true;
		}
	}
}

/* Walks the notes (4-byte aligned name and descriptor, as the kernel and gdb write them). */
static int parse_notes(struct gr_core *c, struct gs_error *err)
{
	size_t off = 0;

	while (off + 12 <= c->notes_len) {
		uint32_t namesz = le32(c->notes + off), descsz = le32(c->notes + off + 4),
			 type = le32(c->notes + off + 8);
		size_t name_al = ((size_t)namesz + 3) & ~(size_t)3;
		size_t desc_al = ((size_t)descsz + 3) & ~(size_t)3;
		const uint8_t *desc;
		int rc = 0;

		if (name_al > c->notes_len - off - 12 ||
		    desc_al > c->notes_len - off - 12 - name_al)
			return gs_error_set(err, -EINVAL, "malformed note in the core (at %zu)",
					    off);
		desc = c->notes + off + 12 + name_al;
		if (namesz == 5 && memcmp(c->notes + off + 12, "CORE", 5) == 0) {
			if (type == NT_PRSTATUS)
				rc = parse_prstatus(c, desc, descsz);
			else if (type == NT_FILE)
				rc = parse_file_note(c, desc, descsz);
			else if (type == NT_AUXV)
				parse_auxv(c, desc, descsz);
		}
		if (rc < 0)
			return gs_error_set(err, rc, "out of memory");
		off += 12 + name_al + desc_al;
	}
	/* The kernel writes the thread that got the signal first; gdb writes the threads in
	 * its own order, so the crashing one is the first with a signal. */
	for (size_t i = 0; i < c->nthreads; i++) {
		if (c->threads[i].signo > 0) {
			struct gr_thread t = c->threads[i];

			memmove(&c->threads[1], &c->threads[0], i * sizeof(t));
			t.crashing = true;
			c->threads[0] = t;
			break;
		}
	}
	return 0;
}

static int parse(struct gr_core *c, struct gs_error *err)
{
	Elf64_Ehdr eh;
	uint8_t *ph = NULL;
	int rc;

	if (src_read(c, 0, &eh, sizeof(eh)) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return gs_error_set(err, -EINVAL, "not an ELF file");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return gs_error_set(err, -EINVAL, "not an x86-64 ELF file");
	if (eh.e_type != ET_CORE)
		return gs_error_set(err, -EINVAL, "not a core file (ELF type %u)", eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0)
		return gs_error_set(err, -EINVAL, "core file without program headers");
	ph = malloc((size_t)eh.e_phnum * sizeof(Elf64_Phdr));
	c->segs = calloc(eh.e_phnum, sizeof(*c->segs));
	if (!ph || !c->segs) {
		free(ph);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	if (src_read(c, eh.e_phoff, ph, (size_t)eh.e_phnum * sizeof(Elf64_Phdr)) < 0) {
		free(ph);
		return gs_error_set(err, -EIO, "core file truncated (program headers)");
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr p;

		memcpy(&p, ph + i * sizeof(p), sizeof(p));
		if (p.p_type == PT_LOAD && p.p_memsz) {
			if (p.p_filesz > p.p_memsz || p.p_vaddr + p.p_memsz < p.p_vaddr)
				continue;
			c->segs[c->nsegs++] = (struct seg){.vaddr = p.p_vaddr,
							   .memsz = p.p_memsz,
							   .offset = p.p_offset,
							   .filesz = p.p_filesz};
		} else if (p.p_type == PT_NOTE && p.p_filesz) {
			uint8_t *n;

			if (p.p_filesz > GR_CORE_MAX_NOTES_BYTES - c->notes_len) {
				free(ph);
				return gs_error_set(err, -EINVAL, "core notes too large");
			}
			n = realloc(c->notes, c->notes_len + p.p_filesz);
			if (!n) {
				free(ph);
				return gs_error_set(err, -ENOMEM, "out of memory");
			}
			c->notes = n;
			if (src_read(c, p.p_offset, c->notes + c->notes_len, p.p_filesz) < 0) {
				free(ph);
				return gs_error_set(err, -EIO, "core file truncated (notes)");
			}
			c->notes_len += p.p_filesz;
		}
	}
	free(ph);
	if (c->nsegs > 1)
		qsort(c->segs, c->nsegs, sizeof(*c->segs), cmp_seg);
	/* overlapping segments would make lookups ambiguous: keep the first of each overlap */
	{
		size_t k = 0;

		for (size_t i = 0; i < c->nsegs; i++) {
			if (k && c->segs[i].vaddr < c->segs[k - 1].vaddr + c->segs[k - 1].memsz)
				continue;
			c->segs[k++] = c->segs[i];
		}
		c->nsegs = k;
	}
	if (!c->nsegs)
		return gs_error_set(err, -EINVAL, "core file has no memory segments");
	rc = parse_notes(c, err);
	if (rc < 0)
		return rc;
	if (!c->nthreads)
		return gs_error_set(err, -EINVAL, "core file has no thread (NT_PRSTATUS)");
	return 0;
}

static int core_new(struct gr_core **out, struct gr_core **c, struct gs_error *err)
{
	*c = calloc(1, sizeof(**c));
	if (!*c)
		return gs_error_set(err, -ENOMEM, "out of memory");
	(*c)->fd = -1;
	(*c)->mem.read = core_read;
	(*c)->mem.close = core_close_mem;
	*out = NULL;
	return 0;
}

int gr_core_open(const char *path, struct gr_core **out, struct gs_error *err)
{
	struct gr_core *c;
	struct stat st;
	int rc = core_new(out, &c, err);

	if (rc < 0)
		return rc;
	c->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0) {
		rc = gs_error_set(err, -errno, "cannot open %s: %m", path);
		gr_core_close(c);
		return rc;
	}
	if (fstat(c->fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		gr_core_close(c);
		return gs_error_set(err, -EINVAL, "%s is not a regular file", path);
	}
	rc = parse(c, err);
	if (rc < 0) {
		gs_error_prefix(err, "%s", path);
		gr_core_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int gr_core_open_mem(const void *data, size_t size, struct gr_core **out, struct gs_error *err)
{
	struct gr_core *c;
	int rc = core_new(out, &c, err);

	if (rc < 0)
		return rc;
	c->image = data;
	c->size = size;
	rc = parse(c, err);
	if (rc < 0) {
		gr_core_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void gr_core_close(struct gr_core *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->segs);
	free(c->notes);
	free(c->threads);
	free(c->files);
	free(c);
}

const struct gr_thread *gr_core_threads(const struct gr_core *c, size_t *n)
{
	*n = c->nthreads;
	return c->threads;
}

const struct gr_core_file *gr_core_files(const struct gr_core *c, size_t *n)
{
	*n = c->nfiles;
	return c->files;
}

int gr_core_entry(const struct gr_core *c, uint64_t *entry)
{
	if (!c->has_entry)
		return -ENOENT;
	*entry = c->entry;
	return 0;
}

/* The NT_FILE mapping holding AT_ENTRY. */
static const struct gr_core_file *exe_file(const struct gr_core *c)
{
	for (size_t i = 0; c->has_entry && i < c->nfiles; i++) {
		if (c->entry >= c->files[i].start && c->entry < c->files[i].end)
			return &c->files[i];
	}
	return NULL;
}

int gr_core_exe_path(const struct gr_core *c, const char **path)
{
	const struct gr_core_file *f = exe_file(c);

	if (!f)
		return -ENOENT;
	*path = f->path;
	return 0;
}

struct gr_mem *gr_core_mem(struct gr_core *c)
{
	return &c->mem;
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t len)
{
	if (!len || len > n)
		return false;
	for (size_t i = 0; i + len <= n; i++) {
		if (hay[i] == *(const uint8_t *)needle && memcmp(hay + i, needle, len) == 0)
			return true;
	}
	return false;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

#define ID_WINDOW 16384 /* bytes at the executable's start searched for its build IDs */

int gr_core_set_exe(struct gr_core *c, struct gs_binary *bin, uint64_t *bias, struct gs_error *err)
{
	const struct gs_binary_info *bi = gs_binary_info(bin);
	const struct gr_core_file *f = exe_file(c);
	uint8_t *page, gnu[40];
	size_t gnulen = 0, have = 0;
	uint64_t link, start = 0;
	bool found = false;

	if (f && gs_binary_offset_to_addr(bin, f->offset, &link) == 0) {
		*bias = f->start - link;
	} else if (!bi->pie) {
		*bias = 0;
	} else {
		return gs_error_set(err, -ENOENT,
				    "the core does not say where the executable was mapped "
				    "(no NT_FILE note holding AT_ENTRY)");
	}
	/* build ID check: the IDs of the file must be in the executable's first pages as the
	 * core holds them (the kernel dumps the first page of each ELF mapping) */
	for (size_t i = 0; f && i < c->nfiles; i++) {
		if (c->files[i].offset == 0 && strcmp(c->files[i].path, f->path) == 0) {
			start = c->files[i].start;
			break;
		}
	}
	if (!f && gs_binary_offset_to_addr(bin, 0, &link) == 0)
		start = link + *bias;
	page = malloc(ID_WINDOW);
	if (!page)
		return gs_error_set(err, -ENOMEM, "out of memory");
	if (start) {
		/* only the core's own bytes (c->exe is not set yet: no fallback to the file) */
		for (have = 0; have < ID_WINDOW; have += 4096) {
			if (core_read(&c->mem, start + have, page + have, 4096, NULL) < 0)
				break;
		}
	}
	for (size_t i = 0; bi->gnu_build_id[i] && bi->gnu_build_id[i + 1] && gnulen < sizeof(gnu);
	     i += 2) {
		int h = hexval(bi->gnu_build_id[i]), l = hexval(bi->gnu_build_id[i + 1]);

		if (h < 0 || l < 0)
			break;
		gnu[gnulen++] = (uint8_t)(h << 4 | l);
	}
	if (have && (bi->go_build_id[0] || gnulen)) {
		found = (bi->go_build_id[0] &&
			 contains(page, have, bi->go_build_id, strlen(bi->go_build_id))) ||
			(gnulen && contains(page, have, gnu, gnulen));
		if (!found) {
			free(page);
			return gs_error_set(
				err, -ENOEXEC,
				"core does not match the binary %s: its build ID (%s) is "
				"not in the executable the core was dumped from",
				gs_binary_name(bin),
				bi->go_build_id[0] ? bi->go_build_id : bi->gnu_build_id);
		}
	}
	free(page);
	c->exe = bin;
	c->bias = *bias;
	return 0;
}
