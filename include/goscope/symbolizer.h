/* symbolizer.h — the public API of goscope's symbolizer library (symbolizer/).
 *
 * Turns addresses of Go (and non-Go) code into frames: function, file, line, start line, with
 * inlined calls expanded innermost first, as runtime.CallersFrames reports them. Go code is
 * resolved through the pclntab (present in stripped binaries too); other code through ELF
 * symbols. No BPF, CLI or pprof knowledge lives here.
 *
 * Threading: an opened gs_binary is immutable and safe for concurrent lookups. A
 * gs_symbolizer (binary cache) and gs_process serialize their own mutations internally; every
 * function on them may be called from several threads at once, except that a gs_process must
 * not be used once gs_process_close has started, nor a gs_symbolizer once gs_symbolizer_free
 * has (close its processes and release its binaries first). */
#ifndef GOSCOPE_SYMBOLIZER_H
#define GOSCOPE_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

/* ---- Go build info (.go.buildinfo) ---- */
struct gs_buildinfo {
	char go_version[64];   /* "go1.27.3" */
	char path[512];        /* main package path ("path" line) */
	char mod_path[512];    /* main module path ("mod" line), "" when absent */
	char mod_version[128]; /* main module version, e.g. "(devel)" */
	char *modinfo;         /* the whole modinfo text, NUL-terminated (heap) */
	size_t modinfo_len;
};
void gs_buildinfo_free(struct gs_buildinfo *bi);
/* Value of "build\tKEY=VALUE" in modinfo; -ENOENT when absent. */
int gs_buildinfo_setting(const struct gs_buildinfo *bi, const char *key, char *out, size_t len);
/* Parses "go1.N[.M]..." into major/minor (1, N); -EINVAL when it is not such a string. */
int gs_go_version_parse(const char *s, int *major, int *minor);

/* ---- A binary opened for symbolization ---- */
enum gs_pclntab_format {
	GS_PCLNTAB_NONE = 0,
	GS_PCLNTAB_GO12,  /* 0xfffffffb: Go 1.2 - 1.15 */
	GS_PCLNTAB_GO116, /* 0xfffffffa: Go 1.16 - 1.17 */
	GS_PCLNTAB_GO118, /* 0xfffffff0: Go 1.18 - 1.19 */
	GS_PCLNTAB_GO120, /* 0xfffffff1: Go 1.20 - 1.27 */
};
const char *gs_pclntab_format_name(enum gs_pclntab_format f);

struct gs_binary_info {
	bool is_go;         /* has Go build info or a valid pclntab */
	bool has_buildinfo;
	struct gs_buildinfo buildinfo; /* valid when has_buildinfo */
	char go_build_id[256];         /* "" when absent */
	char gnu_build_id[80];         /* hex, "" when absent */
	enum gs_pclntab_format pclntab_format;
	uint32_t pclntab_magic;
	uint64_t pclntab_addr; /* link-time address of the pcHeader */
	uint64_t pclntab_size;
	const char *pclntab_found_by; /* "section .gopclntab", "symbol", "magic scan" */
	uint64_t nfunc;
	uint64_t text_start; /* link-time runtime.text (moduledata.text) */
	uint64_t text_end;
	const char *text_found_by; /* "moduledata", "pcheader", "symbol", ... */
	bool stripped;             /* no .symtab */
	bool has_section_headers;
	bool pie;           /* ET_DYN */
	bool external_link; /* linked by the external (C) linker */
	uint16_t elf_type;
};

/* An open Go or ELF binary. Opening maps the file and reads only headers; lookups are
 * thread-safe. Lookups that keep hitting a function build a skip index over its line tables
 * as they go (symbolizer/pcindex.c): at most 16 MB per binary, freed by gs_binary_close.
 *
 * The file belongs to someone else and may shrink while it is mapped: reading past its new
 * end never raises SIGBUS in goscope (symbolizer/mapguard.c) but marks the binary changed,
 * and from then on every function below that reads the file returns -EIO ("binary changed
 * while being read") rather than results computed from missing bytes. Strings of frames
 * returned before stay valid memory but may read as "" (copy them if they must survive). A
 * file rewritten in place gives wrong frames or errors, never a crash: every read of the
 * image is bounds-checked. */
struct gs_binary;

int gs_binary_open(const char *path, struct gs_binary **out, struct gs_error *err);
/* Like gs_binary_open on an already-open file (it is mmapped; fd may be closed after). */
int gs_binary_open_fd(int fd, const char *name, struct gs_binary **out, struct gs_error *err);
/* On a caller-owned memory image that must outlive the binary (tests, fuzzing). */
int gs_binary_open_mem(const void *data, size_t size, const char *name, struct gs_binary **out,
		       struct gs_error *err);
void gs_binary_close(struct gs_binary *bin);
const struct gs_binary_info *gs_binary_info(const struct gs_binary *bin);
const char *gs_binary_name(const struct gs_binary *bin);
/* Whether the file shrank under a read since the binary was opened (then lookups give -EIO;
 * the symbolizer's cache stops handing it out and reopens the file). */
bool gs_binary_changed(const struct gs_binary *bin);
/* Bytes the binary holds now: its image (the mapped file) plus the indexes built so far. */
size_t gs_binary_bytes(const struct gs_binary *bin);

/* One source frame. Strings point into the binary's image (or static storage) and stay
 * valid while the binary is open. */
struct gs_frame {
	const char *function;     /* as runtime.Frame.Function prints it (generics as "[...]") */
	const char *raw_function; /* the symbol name as stored, e.g. "main.F[go.shape.int]",
				     NUL-terminated: the name runtime/pprof gives the function
				     in profiles (runtime_FrameSymbolName) */
	size_t function_len;      /* length of function (it may not be NUL-terminated) */
	const char *file;         /* "?" when unknown */
	int line;                 /* 0 when unknown */
	int start_line;           /* first line of the function, 0 when unknown */
	const char *raw_file;     /* file as debug/gosym reports it: "" when the table has none */
	int raw_line;             /* line as debug/gosym reports it: -1 when the table has none */
	uint64_t entry;           /* link-time entry of the real (outermost) function */
	bool inlined;             /* this frame was inlined into the next (outer) one */
	bool go;                  /* resolved from the pclntab (else ELF symbols) */
	bool wrapper;             /* an autogenerated wrapper, which the runtime's tracebacks
				     leave out of stacks (method values, go statements) */
	char namebuf[128];        /* storage for function when it had to be rewritten */
};

/* Flags for lookups. */
#define GS_LOOKUP_RETURN_ADDR 0x1 /* pc is a return address: look up pc-1 (past the entry) */
#define GS_LOOKUP_NO_INLINE 0x2   /* report only the outermost function, position at pc */

/* Symbolizes a link-time address. Returns the number of frames written (inlined frames
 * innermost first, at most max), 0 when no function covers the address, or a negative errno
 * for a corrupt table or -EIO for a changed file (err says why). */
int gs_binary_symbolize(const struct gs_binary *bin, uint64_t pc, unsigned flags,
			struct gs_frame *frames, int max, struct gs_error *err);

/* Link-time address of file offset off (through the PT_LOAD that holds it); -ENOENT. */
int gs_binary_offset_to_addr(const struct gs_binary *bin, uint64_t off, uint64_t *addr);

/* File offset of link-time address addr (through the PT_LOAD that holds it, file-backed
 * part only) — what uprobe attachment wants; -ENOENT. */
int gs_binary_addr_to_offset(const struct gs_binary *bin, uint64_t addr, uint64_t *off);

/* Copies len file-backed bytes at link-time address addr (e.g. to decode a function's
 * prologue); -ENOENT when the range is not file-backed in one PT_LOAD. */
int gs_binary_read(const struct gs_binary *bin, uint64_t addr, void *buf, size_t len);

/* Entry and end (link-time) of the function named name ("runtime.gopark"); -ENOENT. */
int gs_binary_find_function(const struct gs_binary *bin, const char *name, uint64_t *entry,
			    uint64_t *end);

/* Value (link-time) and size of the ELF symbol called name (.symtab, else .dynsym), data
 * symbols included ("runtime.allgs"); -ENOENT (stripped binaries have none). */
int gs_binary_find_symbol(const struct gs_binary *bin, const char *name, uint64_t *value,
			  uint64_t *size);

/* SP delta (frame size so far) at pc from the function's pcsp table; -ENOENT when none. */
int gs_binary_pcsp(const struct gs_binary *bin, uint64_t pc, int32_t *sp_delta);

/* Calls fn for every function of the pclntab in address order; stops when fn returns nonzero. */
int gs_binary_foreach_function(const struct gs_binary *bin,
			       int (*fn)(void *ctx, const char *name, uint64_t entry, uint64_t end),
			       void *ctx);

/* ---- Live processes ---- */
struct gs_mapping {
	uint64_t start, end, offset; /* from /proc/PID/maps */
	uint64_t dev_major, dev_minor, inode;
	bool exec;
	char path[256]; /* "" for anonymous; "[vdso]" etc. for special mappings */
};

struct gs_location {
	const struct gs_mapping *mapping; /* NULL when no mapping covers the address */
	struct gs_binary *binary;         /* NULL when the mapping's file could not be opened */
	uint64_t file_addr;               /* link-time address inside binary */
	uint64_t map_offset;              /* file offset of the address inside the mapping */
};

struct gs_symbolizer;
struct gs_process;

/* The binary cache. Binaries are shared by every process that maps the same file (same
 * device, inode, size and mtime). Each holder has a reference: an open gs_process for the
 * binaries of its mappings and its main executable, a gs_symbolizer_acquire caller until
 * gs_symbolizer_release. A referenced binary is never closed. Unreferenced ones stay open
 * for reuse (a restarting service) while the cache is within both limits, and are closed
 * least recently used first when it is not: the limits bound what is kept beyond what is in
 * use, which may by itself exceed them. */
#define GS_SYMBOLIZER_DEFAULT_MAX_BINARIES 64u
#define GS_SYMBOLIZER_DEFAULT_MAX_BYTES (512ull << 20)

int gs_symbolizer_new(struct gs_symbolizer **out, struct gs_error *err);
/* Closes every cached binary; no process may be open and no binary acquired. */
void gs_symbolizer_free(struct gs_symbolizer *s);
/* Sets the limits (binaries cached, and their bytes as gs_binary_bytes counts them) and
 * closes unreferenced binaries beyond them now. 0 keeps nothing unreferenced; UINT_MAX and
 * UINT64_MAX mean no limit. */
void gs_symbolizer_set_limits(struct gs_symbolizer *s, unsigned max_binaries, uint64_t max_bytes);

struct gs_symbolizer_stats {
	unsigned binaries;   /* open in the cache now, referenced or not */
	unsigned referenced; /* of those, held by a process or an acquirer */
	uint64_t bytes;      /* sum of their gs_binary_bytes */
	unsigned max_binaries;
	uint64_t max_bytes;
	uint64_t hits;      /* lookups that found the binary open */
	uint64_t misses;    /* lookups that opened it */
	uint64_t evictions; /* binaries closed to stay within the limits */
};
void gs_symbolizer_stats(const struct gs_symbolizer *s, struct gs_symbolizer_stats *out);
/* Binaries open in the cache now (for tests and stats). */
unsigned gs_symbolizer_cached_binaries(const struct gs_symbolizer *s);
/* Their bytes now (gs_binary_bytes summed). */
uint64_t gs_symbolizer_cached_bytes(const struct gs_symbolizer *s);

/* The cached binary of an open file (opened and cached on a miss; fd may be closed after),
 * with a reference the caller gives back with gs_symbolizer_release. name is used in
 * messages and gs_binary_name. */
int gs_symbolizer_acquire(struct gs_symbolizer *s, int fd, const char *name,
			  struct gs_binary **out, struct gs_error *err);
void gs_symbolizer_release(struct gs_symbolizer *s, struct gs_binary *bin);

/* Reads /proc/PID/maps. Binaries are opened lazily, through /proc/PID/map_files or
 * /proc/PID/root, from the symbolizer's cache; the process holds a reference to each until it
 * is closed (or, for a mapping gone at a refresh, until then). */
int gs_process_open(struct gs_symbolizer *s, pid_t pid, struct gs_process **out,
		    struct gs_error *err);
void gs_process_close(struct gs_process *p);
/* Re-reads the maps (after dlopen etc.). Mappings still there keep their binaries. */
int gs_process_refresh(struct gs_process *p, struct gs_error *err);
size_t gs_process_mappings(const struct gs_process *p, const struct gs_mapping **out);

/* Symbolizes an address of the process. Unknown addresses give one frame whose function is
 * "?" (loc says which mapping and offset). Returns the number of frames (>= 1) or a negative
 * errno. */
int gs_process_symbolize(struct gs_process *p, uint64_t addr, unsigned flags,
			 struct gs_frame *frames, int max, struct gs_location *loc,
			 struct gs_error *err);
/* Which mapping and binary hold addr, and its link-time address; -ENOENT when no mapping
 * covers it (loc->binary may be NULL when the file could not be opened). loc->mapping and
 * loc->binary stay valid until the process is refreshed or closed (a binary whose mapping
 * survives the refresh stays valid through it). */
int gs_process_locate(struct gs_process *p, uint64_t addr, struct gs_location *loc);
/* The load bias of bin in p (where its first mapping is, minus the link-time address of
 * that file offset): what turns a link-time address of bin into one of p's. -ENOENT when
 * bin is not mapped in p. */
int gs_process_load_bias(struct gs_process *p, const struct gs_binary *bin, uint64_t *bias);
/* Opens the binaries of every executable mapping now, while the process is alive (the
 * files may be gone once it exits). Returns how many binaries are open. */
int gs_process_preload(struct gs_process *p);
/* Which process this is. */
pid_t gs_process_pid(const struct gs_process *p);

/* The binary of the process's main executable (via /proc/PID/exe), or NULL. Valid while the
 * process is open (until the next call, if the process exec'd another file meanwhile). */
struct gs_binary *gs_process_main_binary(struct gs_process *p);

#endif
