/* text.h — safe human-readable output. Everything goscope prints about a process (comm,
 * executable path, module path, function and file names from its pclntab) comes from
 * untrusted users: a name may hold terminal escape sequences that root's terminal would obey.
 * text_safe escapes them; JSON output escapes through json.h. */
#ifndef GOSCOPE_AGENT_CLI_TEXT_H
#define GOSCOPE_AGENT_CLI_TEXT_H

/* Length of a valid UTF-8 sequence starting at p (1-4), or 0 when invalid: overlong forms,
 * surrogates (U+D800..U+DFFF) and code points above U+10FFFF are invalid too. */
int text_utf8_len(const unsigned char *p);

/* s itself when every byte prints as text (valid UTF-8, no C0 or C1 control character, no
 * DEL); otherwise a copy with each such byte written as \xNN, in one of a few rotating
 * thread-local buffers (several may be used in one printf; a copy that does not fit is cut
 * and ends in "..."). NULL is taken as "". */
const char *text_safe(const char *s);

#endif
