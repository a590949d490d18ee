/* json.h — the little JSON output the CLI needs: escaped strings, written straight to a
 * FILE. (Parsing JSON, if ever needed, comes from a library.) */
#ifndef GOSCOPE_AGENT_JSON_H
#define GOSCOPE_AGENT_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes included), escaping control characters,
 * quotes, backslashes and invalid UTF-8 bytes (as \u00XX). */
void json_string(FILE *out, const char *s);

#endif
