/* test_json.c — json_string (agent/cli/json.c): the CLI's JSON output carries function and file
 * names read from untrusted binaries, so quotes, control characters and invalid UTF-8 must
 * come out as a valid JSON string literal. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/json.h"

/* json_string(s) as a heap string. */
static char *enc(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	json_string(f, s);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

static void expect(const char *in, const char *want)
{
	char *got = enc(in);

	cr_assert_str_eq(got, want, "json_string(%s)", in ? in : "NULL");
	/* Never a raw control character in the output. */
	for (const char *p = got; *p; p++)
		cr_assert_geq((unsigned char)*p, 0x20, "raw control byte in %s", got);
	free(got);
}

Test(json, plain)
{
	expect("", "\"\"");
	expect(NULL, "\"\"");
	expect("main.main", "\"main.main\"");
	expect("/src/a b.go", "\"/src/a b.go\"");
}

Test(json, quotes_and_backslashes)
{
	expect("a\"b", "\"a\\\"b\"");
	expect("C:\\x", "\"C:\\\\x\"");
	expect("\"\\\"", "\"\\\"\\\\\\\"\"");
	expect("/", "\"/\""); /* '/' needs no escape */
}

Test(json, control_characters)
{
	expect("a\nb", "\"a\\nb\"");
	expect("\t\r", "\"\\t\\r\"");
	expect("\x01", "\"\\u0001\"");
	expect("\x08\x0c", "\"\\u0008\\u000c\"");
	expect("x\x1fy", "\"x\\u001fy\"");
	/* DEL is not a JSON control character. */
	expect("\x7f", "\"\x7f\"");
}

Test(json, valid_utf8_kept)
{
	expect("caf\xc3\xa9", "\"caf\xc3\xa9\"");	    /* é, 2 bytes */
	expect("\xe2\x82\xac", "\"\xe2\x82\xac\"");	    /* €, 3 bytes */
	expect("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* emoji, 4 bytes */
	expect("\xc2\x80", "\"\xc2\x80\"");		    /* U+0080, smallest 2-byte */
	expect("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

Test(json, invalid_utf8_escaped)
{
	/* A lone continuation byte. */
	expect("a\x80z", "\"a\\u0080z\"");
	/* Overlong two-byte NUL (C0 80): both bytes escaped one by one. */
	expect("\xc0\x80", "\"\\u00c0\\u0080\"");
	expect("\xc1\xbf", "\"\\u00c1\\u00bf\"");
	/* Bytes that never start a sequence. */
	expect("\xf5\x80\x80\x80", "\"\\u00f5\\u0080\\u0080\\u0080\"");
	expect("\xff\xfe", "\"\\u00ff\\u00fe\"");
	/* A lead byte followed by a non-continuation. */
	expect("\xc3(", "\"\\u00c3(\"");
	expect("\xe2\x82(", "\"\\u00e2\\u0082(\"");
}

Test(json, truncated_sequences_at_end)
{
	/* The decoder must stop at the terminating NUL, not read past it. Build each input at
	 * the very end of a heap buffer so ASan would see an overrun. */
	static const char *const cases[][2] = {
		{"\xc3", "\"\\u00c3\""},
		{"\xe2\x82", "\"\\u00e2\\u0082\""},
		{"\xf0\x9f\x98", "\"\\u00f0\\u009f\\u0098\""},
		{"\xf0", "\"\\u00f0\""},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i][0]) + 1;
		char *in = malloc(n);
		char *got;

		memcpy(in, cases[i][0], n);
		got = enc(in);
		cr_assert_str_eq(got, cases[i][1]);
		free(got);
		free(in);
	}
}

Test(json, every_byte)
{
	/* All 255 non-NUL bytes alone: the output is "X", an escape, or a 2-char escape. */
	for (int c = 1; c < 256; c++) {
		char in[2] = {(char)c, 0};
		char *got = enc(in);
		size_t len = strlen(got);

		cr_assert_eq(got[0], '"');
		cr_assert_eq(got[len - 1], '"');
		if (c >= 0x80)
			cr_assert_eq(len, 8, "byte %#x alone is invalid UTF-8: %s", c, got);
		else if (c < 0x20 || c == '"' || c == '\\')
			cr_assert(len == 4 || len == 8, "byte %#x: %s", c, got);
		else
			cr_assert_eq(len, 3, "byte %#x: %s", c, got);
		free(got);
	}
}
