/* test_text.c — text_safe (agent/cli/text.c): untrusted names printed for a human keep
 * printable text (UTF-8 included) as is and show control bytes as \xNN. */
#include <criterion/criterion.h>
#include <string.h>

#include "cli/text.h"

Test(text, safe)
{
	static const char *const same[] = {"main.main", "", "héllo wörld", "日本語", "a\\b", NULL};
	char big[20000];

	for (int i = 0; same[i]; i++)
		cr_assert_eq(text_safe(same[i]), same[i], "'%s' copied", same[i]);
	cr_assert_str_eq(text_safe(NULL), "");
	cr_assert_str_eq(text_safe("\033[7mREV"), "\\x1b[7mREV");
	cr_assert_str_eq(text_safe("a\nb\tc\x7f"), "a\\x0ab\\x09c\\x7f");
	/* C1 controls: the 8-bit CSI as UTF-8 (c2 9b) and as a lone byte (invalid UTF-8). */
	cr_assert_str_eq(text_safe("x\xc2\x9b"
				   "1m"),
			 "x\\xc2\\x9b1m");
	cr_assert_str_eq(text_safe("x\x9b"
				   "1m"),
			 "x\\x9b1m");
	cr_assert_str_eq(text_safe("\xc2\xa0ok"), "\xc2\xa0ok"); /* U+00A0 prints */
	/* Two at once in one printf. */
	cr_assert_str_eq(text_safe("\001"), "\\x01");
	{
		const char *a = text_safe("\001"), *b = text_safe("\002");

		cr_assert_str_eq(a, "\\x01");
		cr_assert_str_eq(b, "\\x02");
	}
	/* Too long once escaped: cut, marked, NUL-terminated. */
	memset(big, '\001', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		const char *r = text_safe(big);
		size_t n = strlen(r);

		cr_assert_lt(n, 8192);
		cr_assert_str_eq(r + n - 3, "...");
	}
}
