/* error.h — goscope's one error convention.
 *
 * A function that can fail returns 0 (or a count) on success and a negative errno on failure,
 * and fills a caller-provided struct gs_error with a message once, at the point where the
 * cause is known. Callers pass the code up (optionally adding context with gs_error_prefix);
 * only the CLI prints. */
#ifndef GOSCOPE_ERROR_H
#define GOSCOPE_ERROR_H

#define GS_ERROR_MSG_MAX 320

struct gs_error {
	int code;                   /* negative errno, 0 when no error was recorded */
	char msg[GS_ERROR_MSG_MAX]; /* human-readable, no trailing newline */
};

/* Records code and a printf-style message in err (err may be NULL) and returns code, so that
 * `return gs_error_set(err, -EINVAL, "...")` reads naturally. */
int gs_error_set(struct gs_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepends "context: " to the message already in err; returns err->code. */
int gs_error_prefix(struct gs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err (no error). */
void gs_error_clear(struct gs_error *err);

#endif
