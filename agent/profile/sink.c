/* sink.c — the file and gzip side of writing a profile (sink.h): a streaming gzip writer onto
 * an fd and atomic file replacement, plus profile_write_gzip / profile_write_file (profile.h),
 * which stream the encoder's output (agent/profile/pprof.c) through them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "profile/profile.h"
#include "profile/sink.h"

/* Writes all of data to fd, retrying on EINTR and short writes. */
static int write_all(int fd, const uint8_t *data, size_t len, struct gs_error *err)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gs_error_set(err, -errno, "pprof: write: %s", strerror(errno));
		}
		if (n == 0)
			return gs_error_set(err, -EIO, "pprof: write: wrote nothing");
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

struct gz_sink {
	z_stream zs;
	int fd;
	uint8_t out[64 * 1024];
};

int gz_sink_open(struct gz_sink **out, int fd, struct gs_error *err)
{
	struct gz_sink *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return gs_error_set(err, -ENOMEM, "pprof: out of memory");
	g->fd = fd;
	/* Best speed, as Go's runtime/pprof: a profiler should not burn the CPU it measures.
	 * windowBits 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&g->zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(g);
		return gs_error_set(err, -ENOMEM, "pprof: deflateInit2 failed");
	}
	*out = g;
	return 0;
}

/* Deflates len bytes of data (flush = Z_NO_FLUSH or Z_FINISH) and writes the output to fd.
 * zlib takes at most a uInt per call, so larger inputs go in chunks. */
static int gz_deflate(struct gz_sink *g, const uint8_t *data, size_t len, int flush,
		      struct gs_error *err)
{
	int zrc, rc;

	do {
		uInt chunk = len > UINT_MAX / 2 ? UINT_MAX / 2 : (uInt)len;
		int mode = len > chunk ? Z_NO_FLUSH : flush;

		g->zs.next_in = (Bytef *)data;
		g->zs.avail_in = chunk;
		do {
			g->zs.next_out = g->out;
			g->zs.avail_out = sizeof(g->out);
			zrc = deflate(&g->zs, mode);
			if (zrc == Z_STREAM_ERROR)
				return gs_error_set(err, -EIO, "pprof: deflate failed");
			rc = write_all(g->fd, g->out, sizeof(g->out) - g->zs.avail_out, err);
			if (rc)
				return rc;
		} while (g->zs.avail_out == 0 || (mode == Z_FINISH && zrc != Z_STREAM_END));
		data += chunk;
		len -= chunk;
	} while (len > 0);
	return 0;
}

int gz_sink_write(void *ctx, const uint8_t *data, size_t len, struct gs_error *err)
{
	return gz_deflate(ctx, data, len, Z_NO_FLUSH, err);
}

int gz_sink_finish(struct gz_sink *g, struct gs_error *err)
{
	return gz_deflate(g, NULL, 0, Z_FINISH, err);
}

void gz_sink_free(struct gz_sink *g)
{
	if (!g)
		return;
	deflateEnd(&g->zs);
	free(g);
}

/* Writes to an existing non-regular file (a FIFO, /dev/stdout...) in place: no rename. */
static int write_in_place(const char *path, sink_fill_fn fill, void *ctx, struct gs_error *err)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return gs_error_set(err, -errno, "%s: %s", path, strerror(errno));
	rc = fill(fd, ctx, err);
	if (close(fd) && rc == 0)
		rc = gs_error_set(err, -errno, "%s: close: %s", path, strerror(errno));
	if (rc)
		gs_error_prefix(err, "%s", path);
	return rc;
}

int sink_write_file(const char *path, sink_fill_fn fill, void *ctx, struct gs_error *err)
{
	struct stat st;
	mode_t mode = 0644;
	char *tmp;
	int fd, rc;

	if (strcmp(path, "-") == 0)
		return fill(STDOUT_FILENO, ctx, err);
	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return write_in_place(path, fill, ctx, err);
		mode = st.st_mode & 07777;
	}
	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
		return gs_error_set(err, -ENOMEM, "pprof: out of memory");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = gs_error_set(err, -errno, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	rc = fill(fd, ctx, err);
	if (rc)
		gs_error_prefix(err, "%s", path);
	if (rc == 0 && fchmod(fd, mode))
		rc = gs_error_set(err, -errno, "%s: chmod: %s", tmp, strerror(errno));
	if (rc == 0 && fsync(fd))
		rc = gs_error_set(err, -errno, "%s: fsync: %s", tmp, strerror(errno));
	if (close(fd) && rc == 0)
		rc = gs_error_set(err, -errno, "%s: close: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path))
		rc = gs_error_set(err, -errno, "%s: rename: %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* ---- profiles ---- */

int profile_write_gzip(const struct profile *p, int fd, struct gs_error *err)
{
	struct gz_sink *g;
	int rc = gz_sink_open(&g, fd, err);

	if (rc)
		return rc;
	rc = profile_encode_to(p, gz_sink_write, g, err);
	if (rc == 0)
		rc = gz_sink_finish(g, err);
	gz_sink_free(g);
	return rc;
}

/* sink_fill_fn for profile_write_file: ctx is the profile. */
static int fill_profile(int fd, void *ctx, struct gs_error *err)
{
	return profile_write_gzip(ctx, fd, err);
}

int profile_write_file(const struct profile *p, const char *path, struct gs_error *err)
{
	return sink_write_file(path, fill_profile, (void *)p, err);
}
