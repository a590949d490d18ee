/* json.c — JSON string escaping for CLI output (see json.h). */
#include <stdint.h>
#include <string.h>

#include "cli/json.h"
#include "cli/text.h"

void json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	fputc('"', out);
	while (*p) {
		int n;

		switch (*p) {
		case '"':
			fputs("\\\"", out);
			p++;
			continue;
		case '\\':
			fputs("\\\\", out);
			p++;
			continue;
		case '\n':
			fputs("\\n", out);
			p++;
			continue;
		case '\t':
			fputs("\\t", out);
			p++;
			continue;
		case '\r':
			fputs("\\r", out);
			p++;
			continue;
		default:
			break;
		}
		if (*p < 0x20) {
			fprintf(out, "\\u%04x", *p);
			p++;
			continue;
		}
		n = text_utf8_len(p);
		if (n == 0) {
			fprintf(out, "\\u%04x", *p);
			p++;
			continue;
		}
		fwrite(p, 1, (size_t)n, out);
		p += n;
	}
	fputc('"', out);
}
