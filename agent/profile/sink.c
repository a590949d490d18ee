/* sink.c — the file and gzip side of writing a profile (sink.h): a streaming gzip writer onto
 * an fd and atomic file replacement, plus profile_write_gzip / profile_write_file (profile.h),
 * which stream the encoder's output (agent/profile/pprof.c) through them. */
#include <errno.h>
#include <stdbool.h>
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

/* An output file, opened before a capture so that a path that cannot be written fails at
 * once, not after the capture: kind says how commit writes it. */
struct file_sink {
	enum { SINK_STDOUT, SINK_IN_PLACE, SINK_RENAME } kind;
	char *path;
	char *tmp; /* SINK_RENAME: the temporary file, created at open */
	int fd;	   /* SINK_RENAME: open on tmp */
	mode_t mode;
};

/* Whether renaming over path will be refused although the directory is writable: in a sticky
 * directory (/tmp) only the owner of the file or of the directory may replace the file. */
static bool sticky_refuses(const char *path, const struct stat *st)
{
	char *dir = strdup(path), *slash;
	struct stat ds;
	bool refuses = false;

	if (!dir)
		return false;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (stat(dir, &ds) == 0 && (ds.st_mode & S_ISVTX) && geteuid() != 0 &&
	    st->st_uid != geteuid() && ds.st_uid != geteuid())
		refuses = true;
	free(dir);
	return refuses;
}

int file_sink_open(const char *path, struct file_sink **out, struct gs_error *err)
{
	struct file_sink *f = calloc(1, sizeof(*f));
	struct stat st;
	int rc;

	if (!f || !(f->path = strdup(path))) {
		free(f);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	f->fd = -1;
	f->mode = 0644;
	if (strcmp(path, "-") == 0) {
		f->kind = SINK_STDOUT;
	} else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A FIFO or a device is opened when written: opening a FIFO waits for its
		 * reader. Whether it may be written is known now. */
		f->kind = SINK_IN_PLACE;
		if (access(path, W_OK) < 0) {
			rc = gs_error_set(err, -errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
	} else {
		f->kind = SINK_RENAME;
		if (stat(path, &st) == 0) {
			f->mode = st.st_mode & 07777;
			if (sticky_refuses(path, &st)) {
				rc = gs_error_set(
					err, -EPERM,
					"%s: owned by another user in a sticky directory: "
					"it cannot be replaced",
					path);
				goto fail;
			}
		}
		if (asprintf(&f->tmp, "%s.tmp-XXXXXX", path) < 0) {
			f->tmp = NULL;
			rc = gs_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		f->fd = mkostemp(f->tmp, O_CLOEXEC);
		if (f->fd < 0) {
			rc = gs_error_set(err, -errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	*out = f;
	return 0;
fail:
	free(f->tmp);
	free(f->path);
	free(f);
	return rc;
}

void file_sink_abort(struct file_sink *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	free(f->path);
	free(f);
}

int file_sink_commit(struct file_sink *f, sink_fill_fn fill, void *ctx, struct gs_error *err)
{
	int rc, fd;

	switch (f->kind) {
	case SINK_STDOUT:
		rc = fill(STDOUT_FILENO, ctx, err);
		break;
	case SINK_IN_PLACE:
		fd = open(f->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0) {
			rc = gs_error_set(err, -errno, "%s: %s", f->path, strerror(errno));
			break;
		}
		rc = fill(fd, ctx, err);
		if (close(fd) && rc == 0)
			rc = gs_error_set(err, -errno, "%s: close: %s", f->path, strerror(errno));
		if (rc)
			gs_error_prefix(err, "%s", f->path);
		break;
	case SINK_RENAME:
		rc = fill(f->fd, ctx, err);
		if (rc)
			gs_error_prefix(err, "%s", f->path);
		if (rc == 0 && fchmod(f->fd, f->mode))
			rc = gs_error_set(err, -errno, "%s: chmod: %s", f->tmp, strerror(errno));
		if (rc == 0 && fsync(f->fd))
			rc = gs_error_set(err, -errno, "%s: fsync: %s", f->tmp, strerror(errno));
		if (close(f->fd) && rc == 0)
			rc = gs_error_set(err, -errno, "%s: close: %s", f->tmp, strerror(errno));
		f->fd = -1;
		if (rc == 0 && rename(f->tmp, f->path))
			rc = gs_error_set(err, -errno, "%s: rename: %s", f->path, strerror(errno));
		if (rc == 0) {
			free(f->tmp);
			f->tmp = NULL; /* renamed: nothing to unlink */
		}
		break;
	default:
		rc = gs_error_set(err, -EINVAL, "bad sink");
	}
	file_sink_abort(f);
	return rc;
}

int sink_write_file(const char *path, sink_fill_fn fill, void *ctx, struct gs_error *err)
{
	struct file_sink *f;
	int rc = file_sink_open(path, &f, err);

	return rc ? rc : file_sink_commit(f, fill, ctx, err);
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

int profile_file_commit(struct file_sink *f, const struct profile *p, struct gs_error *err)
{
	return file_sink_commit(f, fill_profile, (void *)p, err);
}
