/* text.c — escaping untrusted strings for terminal output (see text.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/text.h"

#define SAFE_BUFS 8	   /* strings text_safe can hand out at once */
#define SAFE_BUF_LEN 8192  /* longer escaped strings are cut */
#define ESCAPED_BYTE_LEN 4 /* "\xNN" */
#define ASCII_DEL 0x7f
#define UTF8_C1_LEAD 0xc2 /* U+0080..U+009F are c2 80..c2 9f */
#define UTF8_C1_LAST 0x9f

int text_utf8_len(const unsigned char *p)
{
	uint32_t cp;
	int n;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0 && p[0] >= 0xc2)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Length of the printable character at p, or 0 when its first byte must be escaped. */
static int printable_len(const unsigned char *p)
{
	int n;

	if (*p < 0x20 || *p == ASCII_DEL)
		return 0;
	n = text_utf8_len(p);
	if (n == 2 && p[0] == UTF8_C1_LEAD && p[1] <= UTF8_C1_LAST)
		return 0; /* a C1 control, e.g. U+009B (CSI) */
	return n;
}

const char *text_safe(const char *s)
{
	static __thread char bufs[SAFE_BUFS][SAFE_BUF_LEN];
	static __thread unsigned next;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t used = 0;
	char *out;

	for (const unsigned char *q = p; *q;) {
		int n = printable_len(q);

		if (n == 0)
			goto escape;
		q += n;
	}
	return (const char *)p;
escape:
	out = bufs[next++ % SAFE_BUFS];
	while (*p) {
		int n = printable_len(p);
		size_t need = n ? (size_t)n : ESCAPED_BYTE_LEN;

		if (used + need + sizeof("...") > SAFE_BUF_LEN) {
			memcpy(out + used, "...", sizeof("..."));
			return out;
		}
		if (n) {
			memcpy(out + used, p, (size_t)n);
			p += n;
		} else {
			snprintf(out + used, ESCAPED_BYTE_LEN + 1, "\\x%02x", *p++);
		}
		used += need;
	}
	out[used] = '\0';
	return out;
}
