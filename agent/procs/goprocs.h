/* goprocs.h — finding the Go processes on the host (/proc scan + build info). */
#ifndef GOSCOPE_AGENT_GOPROCS_H
#define GOSCOPE_AGENT_GOPROCS_H

#include <stdbool.h>
#include <sys/types.h>

#include "goscope/symbolizer.h"

struct goproc {
	pid_t pid;
	char comm[32];
	char exe[512];	     /* readlink of /proc/PID/exe */
	char go_version[64]; /* "" when only the pclntab showed it is Go */
	char path[512];	     /* main package path */
	char mod_path[512];  /* main module path */
	char mod_version[128];
	bool stripped;
	bool pie;
};

struct goproc_scan {
	struct goproc *procs;
	size_t n;
	size_t cap;
	unsigned vanished;   /* exited while we looked */
	unsigned unreadable; /* permission denied or other errors */
};

/* Inspects one pid. Returns 1 when it is a Go process (p filled), 0 when it is not, or a
 * negative errno (-ESRCH when it exited, -EACCES, ...). proc_root is "/proc" except in
 * tests. */
int goproc_inspect(const char *proc_root, pid_t pid, struct goproc *p, struct gs_error *err);
/* Scans every pid under proc_root. */
int goproc_scan_all(const char *proc_root, struct goproc_scan *scan, struct gs_error *err);
/* The same, leaving out (not inspecting) the pids skip returns true for: a rescan of the host
 * need not reopen the binaries of the processes it already knows. skip may be NULL. */
int goproc_scan_some(const char *proc_root, bool (*skip)(pid_t pid, void *arg), void *arg,
		     struct goproc_scan *scan, struct gs_error *err);
void goproc_scan_free(struct goproc_scan *scan);

#endif
