/* frames_out.h — printing symbolized frames for addr2line and symbolize. */
#ifndef GOSCOPE_AGENT_FRAMES_OUT_H
#define GOSCOPE_AGENT_FRAMES_OUT_H

#include <stdio.h>

#include "goscope/symbolizer.h"

enum frames_style {
	FRAMES_GO_ADDR2LINE, /* "function\nfile:line", outermost function, like go tool addr2line */
	FRAMES_INLINES,	     /* the same two lines for every inlined frame, innermost first */
	FRAMES_JSON,	     /* one JSON object per address */
};

/* Prints the frames of one address (n == 0: unknown). loc may be NULL. */
void frames_print(FILE *out, enum frames_style style, unsigned long long addr,
		  const struct gs_frame *frames, int n, const struct gs_location *loc);

#endif
