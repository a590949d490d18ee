/* pprof_traces.h — reads a pprof profile through `go tool pprof -traces` (an independent
 * decoder) into samples of function names, so tests can compare goscope's profiles with
 * Go's own. */
#ifndef GOSCOPE_TESTS_PPROF_TRACES_H
#define GOSCOPE_TESTS_PPROF_TRACES_H

#include <stddef.h>

#define TRACE_MAX_FRAMES 512
#define TRACE_MAX_LABELS 8

struct trace {
	double value;  /* of the default sample type, in its base unit (ns, count) */
	int nframes;   /* leaf first */
	char **frames; /* function names, " (inline)" removed */
	int nlabels;
	char *labels[TRACE_MAX_LABELS]; /* "key:value" */
};

struct traces {
	struct trace *t;
	size_t n;
	double total;
	char *header; /* everything before the first trace */
};

/* Runs `GO tool pprof -traces [extra] FILE` and parses it; 0 or -1 (message in why). */
int traces_load(const char *go, const char *file, const char *extra, struct traces *out,
		char *why, size_t why_len);
void traces_free(struct traces *tr);
/* Flat value of a function (as leaf frame). */
double traces_flat(const struct traces *tr, const char *func);
/* Whether some trace has caller directly above callee. */
int traces_has_edge(const struct traces *tr, const char *caller, const char *callee);
/* Parses "535.35ms", "1.69s", "270ms", "12" into the base unit (ns for durations). */
double traces_parse_value(const char *s);

#endif
