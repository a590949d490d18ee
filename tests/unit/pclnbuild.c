/* pclnbuild.c — writes Go pclntabs from a description (see pclnbuild.h). The layouts follow
 * docs/go-runtime.md section 1 and debug/gosym: header, functab, _func records,
 * zig-zag varint pcvalue tables, file tables, inline trees. Guarded so that it can be
 * #included by the corpus generator. */
#ifndef GOSCOPE_TESTS_PCLNBUILD_C
#define GOSCOPE_TESTS_PCLNBUILD_C

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/elfbuild.h"
#include "tests/unit/pclnbuild.h"

#define PB_PTR 8

struct pb_buf {
	uint8_t *p;
	size_t n, cap;
};

static void pb_grow(struct pb_buf *b, size_t need)
{
	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 256;
	while (b->cap < need)
		b->cap *= 2;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		abort();
}

static size_t pb_put(struct pb_buf *b, const void *d, size_t n)
{
	size_t off = b->n;

	pb_grow(b, b->n + n);
	if (d)
		memcpy(b->p + off, d, n);
	else
		memset(b->p + off, 0, n);
	b->n += n;
	return off;
}

static void pb_align(struct pb_buf *b, size_t a)
{
	while (b->n % a)
		pb_put(b, NULL, 1);
}

static void pb_set32(struct pb_buf *b, size_t off, uint32_t v)
{
	memcpy(b->p + off, &v, 4);
}

static void pb_set64(struct pb_buf *b, size_t off, uint64_t v)
{
	memcpy(b->p + off, &v, 8);
}

static size_t pb_put32(struct pb_buf *b, uint32_t v)
{
	return pb_put(b, &v, 4);
}

static size_t pb_put64(struct pb_buf *b, uint64_t v)
{
	return pb_put(b, &v, 8);
}

static void pb_uvarint(struct pb_buf *b, uint64_t v)
{
	uint8_t c;

	while (v >= 0x80) {
		c = (uint8_t)(v | 0x80);
		pb_put(b, &c, 1);
		v >>= 7;
	}
	c = (uint8_t)v;
	pb_put(b, &c, 1);
}

enum { PB_SP, PB_FILE, PB_LINE, PB_INL };

static int32_t pb_val(const struct pb_row *r, int which, int32_t file_adj)
{
	switch (which) {
	case PB_SP:
		return r->sp;
	case PB_FILE:
		return r->file + file_adj;
	case PB_LINE:
		return r->line;
	default:
		return r->inl;
	}
}

/* Encodes one pcvalue table (runs of equal values merged, as the linker does); returns its
 * offset in b. */
static size_t pb_pcvalue(struct pb_buf *b, const struct pb_func *f, int which, int32_t file_adj)
{
	size_t off = b->n;
	int32_t prev = -1;
	unsigned i = 0;

	while (i < f->nrows) {
		int32_t v = pb_val(&f->rows[i], which, file_adj), d = v - prev;
		unsigned j = i + 1;
		uint32_t end;

		while (j < f->nrows && pb_val(&f->rows[j], which, file_adj) == v)
			j++;
		end = j < f->nrows ? f->rows[j].pcoff : f->size;
		pb_uvarint(b,
			   d < 0 ? ((uint64_t)(uint32_t)~d << 1) | 1 : (uint64_t)(uint32_t)d << 1);
		pb_uvarint(b, end - f->rows[i].pcoff);
		prev = v;
		i = j;
	}
	pb_put(b, NULL, 1);
	return off;
}

struct pb_functabs {
	size_t name[16], pcsp[16], pcfile[16], pcln[16], pcinl[16];
	size_t inlname[16][8];
};

int pb_build(const struct pb_table *in, struct pb_out *out)
{
	struct pb_buf b = {0};
	struct pb_functabs ft;
	enum gs_pclntab_format fmt = in->format;
	bool go12 = fmt == GS_PCLNTAB_GO12, go116 = fmt == GS_PCLNTAB_GO116;
	bool abs_entries = go12 || go116;
	uint32_t magic;
	size_t hdr_words, names_base = 0, pctab_base = 0, cutab = 0, filetab = 0, functab;
	size_t file_off[16], fd_patch[16] = {0};
	int32_t file_adj = go12 ? 1 : 0;
	unsigned n = in->nfuncs;
	const struct pb_func *last;

	memset(out, 0, sizeof(*out));
	memset(&ft, 0, sizeof(ft));
	if (n == 0 || n > 16 || in->nfiles > 16)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (in->funcs[i].ninl > 8 || in->funcs[i].nrows == 0 ||
		    (i && in->funcs[i].off < in->funcs[i - 1].off + in->funcs[i - 1].size))
			return -1;
	}
	switch (fmt) {
	case GS_PCLNTAB_GO12:
		magic = 0xfffffffb;
		hdr_words = 1;
		break;
	case GS_PCLNTAB_GO116:
		magic = 0xfffffffa;
		hdr_words = 7;
		break;
	case GS_PCLNTAB_GO118:
		magic = 0xfffffff0;
		hdr_words = 8;
		break;
	case GS_PCLNTAB_GO120:
		magic = 0xfffffff1;
		hdr_words = 8;
		break;
	default:
		return -1;
	}
	pb_put32(&b, magic);
	pb_put(&b, "\0\0\1\10", 4); /* pad, pad, quantum 1, ptrsize 8 */
	pb_put(&b, NULL, hdr_words * PB_PTR);
	pb_set64(&b, 8, n);
	last = &in->funcs[n - 1];

	if (go12) {
		/* functab right after the header, then the filetab offset; records later. */
		functab = b.n;
		pb_put(&b, NULL, (2 * n + 1) * PB_PTR + 4);
	} else {
		pb_set64(&b, 16, in->nfiles + 0ULL);
		if (!go116)
			pb_set64(&b, 24, in->zero_text_start ? 0 : in->text);
		functab = 0;
	}
	/* Names. */
	names_base = go12 ? 0 : b.n;
	for (unsigned i = 0; i < n; i++) {
		const struct pb_func *f = &in->funcs[i];

		ft.name[i] = pb_put(&b, f->name, strlen(f->name) + 1) - names_base;
		for (unsigned k = 0; k < f->ninl; k++)
			ft.inlname[i][k] =
				pb_put(&b, f->inl[k].name, strlen(f->inl[k].name) + 1) - names_base;
	}
	/* Files. */
	if (go12) {
		pb_align(&b, 4);
		filetab = pb_put32(&b, in->nfiles + 1);
		pb_put(&b, NULL, 4ULL * in->nfiles);
		for (unsigned i = 0; i < in->nfiles; i++) {
			file_off[i] = pb_put(&b, in->files[i], strlen(in->files[i]) + 1);
			pb_set32(&b, filetab + 4 + 4 * i, (uint32_t)file_off[i]);
		}
		pb_set32(&b, functab + (2 * n + 1) * PB_PTR, (uint32_t)filetab);
	} else {
		pb_align(&b, 4);
		cutab = b.n;
		pb_put(&b, NULL, 4ULL * in->nfiles);
		filetab = b.n;
		for (unsigned i = 0; i < in->nfiles; i++) {
			file_off[i] = pb_put(&b, in->files[i], strlen(in->files[i]) + 1) - filetab;
			pb_set32(&b, cutab + 4 * i, (uint32_t)file_off[i]);
		}
	}
	/* pcvalue tables; a leading zero byte keeps offset 0 meaning "no table". */
	pctab_base = go12 ? 0 : b.n;
	if (!go12)
		pb_put(&b, NULL, 1);
	for (unsigned i = 0; i < n; i++) {
		const struct pb_func *f = &in->funcs[i];

		ft.pcsp[i] = pb_pcvalue(&b, f, PB_SP, file_adj) - pctab_base;
		ft.pcfile[i] = pb_pcvalue(&b, f, PB_FILE, file_adj) - pctab_base;
		ft.pcln[i] = pb_pcvalue(&b, f, PB_LINE, file_adj) - pctab_base;
		if (f->inl && !go12)
			ft.pcinl[i] = pb_pcvalue(&b, f, PB_INL, file_adj) - pctab_base;
	}
	if (!go12) {
		pb_align(&b, 8);
		functab = b.n;
		pb_put(&b, NULL, (2 * n + 1) * (abs_entries ? PB_PTR : 4));
		pb_set64(&b, 24 + (go116 ? 0 : 8), names_base);
		pb_set64(&b, 32 + (go116 ? 0 : 8), cutab);
		pb_set64(&b, 40 + (go116 ? 0 : 8), filetab);
		pb_set64(&b, 48 + (go116 ? 0 : 8), pctab_base);
		pb_set64(&b, 56 + (go116 ? 0 : 8), functab);
	}
	out->functab_off = functab;
	/* _func records. */
	for (unsigned i = 0; i < n; i++) {
		const struct pb_func *f = &in->funcs[i];
		bool inl = f->inl && !go12;
		uint32_t npcdata = inl ? 3 : 0, nfuncdata = inl ? 4 : 0;
		size_t rec, funcoff;

		pb_align(&b, 8);
		rec = b.n;
		out->funcrec_off[i] = rec;
		funcoff = rec - (go12 ? 0 : functab);
		if (abs_entries) {
			pb_set64(&b, functab + 2 * PB_PTR * i, in->text + f->off);
			pb_set64(&b, functab + 2 * PB_PTR * i + PB_PTR, funcoff);
			pb_put64(&b, in->text + f->off);
		} else {
			pb_set32(&b, functab + 8 * i, f->off);
			pb_set32(&b, functab + 8 * i + 4, (uint32_t)funcoff);
			pb_put32(&b, f->off);
		}
		pb_put32(&b, (uint32_t)ft.name[i]);
		pb_put32(&b, 0); /* args */
		pb_put32(&b, 0); /* frame / deferreturn */
		pb_put32(&b, (uint32_t)ft.pcsp[i]);
		pb_put32(&b, (uint32_t)ft.pcfile[i]);
		pb_put32(&b, (uint32_t)ft.pcln[i]);
		pb_put32(&b, npcdata);
		if (go12) {
			pb_put32(&b, nfuncdata);
		} else {
			uint8_t tail[4] = {f->funcid, 0, 0, (uint8_t)nfuncdata};

			pb_put32(&b, 0); /* cuOffset */
			if (fmt == GS_PCLNTAB_GO120)
				pb_put32(&b, (uint32_t)f->start_line);
			pb_put(&b, tail, 4);
		}
		for (uint32_t k = 0; k < npcdata; k++)
			pb_put32(&b, k == 2 ? (uint32_t)ft.pcinl[i] : 0);
		if (nfuncdata) {
			if (go116) {
				pb_align(&b, 8);
				for (uint32_t k = 0; k < nfuncdata; k++)
					fd_patch[i] = pb_put64(&b, 0);
			} else {
				for (uint32_t k = 0; k < nfuncdata; k++)
					fd_patch[i] = pb_put32(&b, 0xffffffffu);
			}
		}
	}
	if (abs_entries)
		pb_set64(&b, functab + 2 * PB_PTR * n, in->text + last->off + last->size);
	else
		pb_set32(&b, functab + 8 * n, last->off + last->size);
	/* Inline trees (the funcdata area; gofunc for 1.18+). */
	pb_align(&b, 8);
	out->gofunc_off = b.n;
	for (unsigned i = 0; i < n; i++) {
		const struct pb_func *f = &in->funcs[i];
		size_t tree;

		if (!f->inl || go12)
			continue;
		pb_align(&b, 4);
		tree = b.n;
		out->inltree_off[i] = tree;
		for (unsigned k = 0; k < f->ninl; k++) {
			const struct pb_inl *c = &f->inl[k];

			if (fmt == GS_PCLNTAB_GO120) {
				uint8_t head[4] = {c->funcid, 0, 0, 0};

				pb_put(&b, head, 4);
				pb_put32(&b, (uint32_t)ft.inlname[i][k]);
				pb_put32(&b, (uint32_t)c->parent_pc);
				pb_put32(&b, (uint32_t)c->start_line);
			} else {
				uint8_t head[4] = {(uint8_t)c->parent, (uint8_t)(c->parent >> 8),
						   c->funcid, 0};

				pb_put(&b, head, 4);
				pb_put32(&b, (uint32_t)c->file);
				pb_put32(&b, (uint32_t)c->line);
				pb_put32(&b, (uint32_t)ft.inlname[i][k]);
				pb_put32(&b, (uint32_t)c->parent_pc);
			}
		}
		if (go116)
			pb_set64(&b, fd_patch[i], in->addr + tree);
		else
			pb_set32(&b, fd_patch[i], (uint32_t)(tree - out->gofunc_off));
	}
	pb_put(&b, NULL, 8); /* keep the last table away from the end */
	out->data = b.p;
	out->size = b.n;
	return 0;
}

void pb_free(struct pb_out *out)
{
	free(out->data);
	memset(out, 0, sizeof(*out));
}

static unsigned pb_gofunc_md_off(const char *version)
{
	int minor = 0;

	if (version && sscanf(version, "go1.%d", &minor) != 1)
		minor = 0;
	if (minor >= 27)
		return 344;
	if (minor >= 20)
		return 320;
	return 304;
}

uint8_t *pb_elf(const struct pb_table *in, const struct pb_out *pcl, const struct pb_elf_opts *o,
		size_t *size)
{
	struct elfb b;
	uint64_t text_off = PB_TEXT - EB_BASE, tab_off = PB_PCLNTAB_ADDR - EB_BASE, rw, rw_end;
	uint64_t gofunc = PB_PCLNTAB_ADDR + pcl->gofunc_off;
	uint8_t code[0x100];

	if (in->text != PB_TEXT || in->addr != PB_PCLNTAB_ADDR || tab_off - text_off < sizeof(code))
		return NULL;
	eb_init(&b);
	memset(code, 0xcc, sizeof(code));
	eb_pad_to(&b, text_off);
	eb_append(&b, code, sizeof(code), 1);
	eb_section(&b, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, PB_TEXT, text_off,
		   sizeof(code), 0, 0);
	eb_segment(&b, PT_LOAD, PF_R | PF_X, 0, EB_BASE, text_off + sizeof(code),
		   PB_TEXT_SIZE + text_off);
	eb_pad_to(&b, tab_off);
	eb_append(&b, pcl->data, pcl->size, 1);
	eb_section(&b, ".gopclntab", SHT_PROGBITS, SHF_ALLOC, PB_PCLNTAB_ADDR, tab_off, pcl->size,
		   0, 0);
	eb_add_load(&b, PF_R, PB_PCLNTAB_ADDR, PB_PCLNTAB_ADDR + pcl->size);
	rw = EB_BASE + eb_append(&b, NULL, 0, 0x1000);
	if (o->go_version) {
		uint8_t blob[256];
		static const char mod[] = "path\texample.com/pb\n";
		size_t len = eb_buildinfo_inline(blob, sizeof(blob), o->go_version, mod,
						 sizeof(mod) - 1);

		eb_add_data(&b, ".go.buildinfo", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, blob, len,
			    16);
	}
	if (o->moduledata) {
		uint64_t words[4] = {PB_PCLNTAB_ADDR, 0, PB_TEXT, PB_TEXT + PB_TEXT_SIZE};
		uint64_t fnt = PB_PCLNTAB_ADDR;
		uint8_t md[600];

		memset(md, 0, sizeof(md));
		if (in->format != GS_PCLNTAB_GO12) {
			memcpy(&fnt, pcl->data + (in->format == GS_PCLNTAB_GO116 ? 24 : 32), 8);
			fnt += PB_PCLNTAB_ADDR;
		}
		words[1] = fnt;
		memcpy(md, words, 16);		 /* pcHeader, funcnametab.ptr */
		memcpy(md + 176, words + 2, 16); /* text, etext */
		memcpy(md + pb_gofunc_md_off(o->go_version), &gofunc, 8);
		eb_add_data(&b, ".go.module", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, md, sizeof(md),
			    32);
	}
	if (EB_BASE + b.size == rw)
		eb_append(&b, NULL, 16, 1);
	rw_end = EB_BASE + b.size;
	eb_add_load(&b, PF_R | PF_W, rw, rw_end);
	if (o->symbols) {
		struct eb_sym syms[] = {
			{"runtime.text", PB_TEXT, 0, STT_FUNC, 1},
			{"go:func.*", gofunc, 0, STT_OBJECT, 2},
		};

		eb_add_symtab(&b, syms, 2);
	}
	return eb_finish(&b, size, o->eb_flags);
}

static const char *const pb_sample_files[] = {"/src/main.go", "/src/util.go"};

static const struct pb_row pb_sample_main_rows[] = {
	{0x00, 0, 10, -1, 0},
	{0x10, 0, 11, -1, 8},
	{0x20, 1, 5, 0, 8},
	{0x30, 0, 12, -1, 8},
};

static const struct pb_inl pb_sample_main_inl[] = {
	{"main.helper", -1, 0, 0, 11, 0x10, 4},
};

static const struct pb_row pb_sample_helper_rows[] = {
	{0x00, 1, 4, -1, 0},
	{0x08, 1, 5, -1, 16},
};

static const struct pb_row pb_sample_generic_rows[] = {
	{0x00, 1, 20, -1, 0},
};

static const struct pb_func pb_sample_funcs[] = {
	{"main.main", 0x00, 0x40, 9, 0, pb_sample_main_rows, 4, pb_sample_main_inl, 1},
	{"main.helper", 0x40, 0x20, 4, 0, pb_sample_helper_rows, 2, NULL, 0},
	{"main.G[go.shape.int]", 0x60, 0x20, 20, 0, pb_sample_generic_rows, 1, NULL, 0},
};

void pb_sample(struct pb_table *t, enum gs_pclntab_format format)
{
	memset(t, 0, sizeof(*t));
	t->format = format;
	t->text = PB_TEXT;
	t->addr = PB_PCLNTAB_ADDR;
	t->files = pb_sample_files;
	t->nfiles = 2;
	t->funcs = pb_sample_funcs;
	t->nfuncs = 3;
}

#endif
