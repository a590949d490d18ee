/* pprof_traces.c — parsing `go tool pprof -traces` output (see pprof_traces.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_traces.h"
#include "run.h"

#define SEPARATOR "-----------+-------------------------------------------------------"

double traces_parse_value(const char *s)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6},
		     {"s", 1e9}, {"mins", 60e9}, {"hrs", 3600e9}};
	char *end;
	double v = strtod(s, &end);

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0)
			return v * units[i].mult;
	}
	return v;
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int traces_load(const char *go, const char *file, const char *extra, struct traces *out,
		char *why, size_t why_len)
{
	char cmd[4096], *text = NULL, *save = NULL, *line;
	struct trace *cur = NULL;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(cmd, sizeof(cmd),
		 "HOME=/tmp PPROF_BINARY_PATH=/nonexistent %s tool pprof -traces -symbolize=none %s "
		 "'%s' 2>&1",
		 go, extra ? extra : "", file);
	rc = run_capture(cmd, 0, &text, NULL);
	if (rc != 0) {
		snprintf(why, why_len, "%s: exit %d: %.500s", cmd, rc, text ? text : "");
		free(text);
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *t;

		if (strncmp(line, SEPARATOR, strlen(SEPARATOR)) == 0) {
			if (out->n == cap) {
				cap = cap ? cap * 2 : 256;
				out->t = realloc(out->t, cap * sizeof(*out->t));
			}
			cur = &out->t[out->n++];
			memset(cur, 0, sizeof(*cur));
			cur->frames = calloc(TRACE_MAX_FRAMES, sizeof(char *));
			continue;
		}
		if (!cur) {
			size_t old = out->header ? strlen(out->header) : 0;

			out->header = realloc(out->header, old + strlen(line) + 2);
			strcpy(out->header + old, line);
			strcat(out->header, "\n");
			continue;
		}
		/* Label lines: "      comm:  cpuburn" (before the first frame). */
		t = trim(line);
		if (cur->nframes == 0 && cur->value == 0 && strchr(t, ':') &&
		    strchr(t, ':') < t + strcspn(t, " ")) {
			if (cur->nlabels < TRACE_MAX_LABELS) {
				char *colon = strchr(t, ':');

				*colon = '\0';
				if (asprintf(&cur->labels[cur->nlabels], "%s:%s", t, trim(colon + 1)) >= 0)
					cur->nlabels++;
			}
			continue;
		}
		if (cur->nframes == 0 && cur->value == 0) {
			/* "  535.35ms   main.hot": the value, then the leaf frame. */
			char *sp = strchr(t, ' ');

			if (!sp)
				continue;
			*sp = '\0';
			cur->value = traces_parse_value(t);
			out->total += cur->value;
			t = trim(sp + 1);
		}
		{
			char *inl = strstr(t, " (inline)");

			if (inl)
				*inl = '\0';
		}
		if (cur->nframes < TRACE_MAX_FRAMES)
			cur->frames[cur->nframes++] = strdup(t);
	}
	free(text);
	return 0;
}

void traces_free(struct traces *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		for (int j = 0; j < tr->t[i].nframes; j++)
			free(tr->t[i].frames[j]);
		for (int j = 0; j < tr->t[i].nlabels; j++)
			free(tr->t[i].labels[j]);
		free(tr->t[i].frames);
	}
	free(tr->t);
	free(tr->header);
	memset(tr, 0, sizeof(*tr));
}

double traces_flat(const struct traces *tr, const char *func)
{
	double v = 0;

	for (size_t i = 0; i < tr->n; i++) {
		if (tr->t[i].nframes && strcmp(tr->t[i].frames[0], func) == 0)
			v += tr->t[i].value;
	}
	return v;
}

int traces_has_edge(const struct traces *tr, const char *caller, const char *callee)
{
	for (size_t i = 0; i < tr->n; i++) {
		for (int j = 0; j + 1 < tr->t[i].nframes; j++) {
			if (strcmp(tr->t[i].frames[j], callee) == 0 &&
			    strcmp(tr->t[i].frames[j + 1], caller) == 0)
				return 1;
		}
	}
	return 0;
}
