/* error.c — the gs_error helpers (see include/goscope/error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "goscope/error.h"

int gs_error_set(struct gs_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int gs_error_prefix(struct gs_error *err, const char *fmt, ...)
{
	char prefix[GS_ERROR_MSG_MAX], old[GS_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	{
		size_t plen = strnlen(prefix, sizeof(err->msg) - 1);

		memcpy(err->msg, prefix, plen);
		err->msg[plen] = '\0';
		strncat(err->msg, ": ", sizeof(err->msg) - 1 - plen);
		strncat(err->msg, old, sizeof(err->msg) - 1 - strlen(err->msg));
	}
	return err->code;
}

void gs_error_clear(struct gs_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
