/* sink.h — where encoded profiles go: a gzip stream onto an fd, and whole-file writes that
 * are atomic for regular files (tmp + fsync + rename) and in place for the rest ("-" is
 * stdout). Independent of the profile model: the encoder (profile_encode_to) streams into a
 * gz_sink through gz_sink_write, and profile_write_gzip / profile_write_file (profile.h) are
 * the two glued together. */
#ifndef GOSCOPE_AGENT_PROFILE_SINK_H
#define GOSCOPE_AGENT_PROFILE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

struct gz_sink;

/* Starts a gzip member on fd (which stays the caller's); -ENOMEM. */
int gz_sink_open(struct gz_sink **out, int fd, struct gs_error *err);
/* Compresses len bytes of data onto the fd (a profile_write_fn: ctx is the gz_sink). */
int gz_sink_write(void *ctx, const uint8_t *data, size_t len, struct gs_error *err);
/* Ends the gzip member (trailer written); the sink must still be freed. */
int gz_sink_finish(struct gz_sink *g, struct gs_error *err);
void gz_sink_free(struct gz_sink *g);

/* Fills fd with a file's content; 0 or a negative errno (having filled err). */
typedef int (*sink_fill_fn)(int fd, void *ctx, struct gs_error *err);

/* Writes what fill produces to path: "-" is stdout; an existing non-regular file (FIFO,
 * /dev/null) is written in place; anything else through a temporary file in the same
 * directory, fsync'ed and renamed over path (keeping the mode of the file it replaces), so
 * that a reader sees the old file or the whole new one, never a part. Errors name path. */
int sink_write_file(const char *path, sink_fill_fn fill, void *ctx, struct gs_error *err);

/* The same in two steps, so that a capture can check its output before it starts: open
 * creates the temporary file (or checks that a FIFO/device may be written) and fails as
 * writing would; commit writes what fill produces and frees f; abort (on any other way out)
 * removes the temporary file and frees f. */
struct file_sink;
int file_sink_open(const char *path, struct file_sink **out, struct gs_error *err);
int file_sink_commit(struct file_sink *f, sink_fill_fn fill, void *ctx, struct gs_error *err);
void file_sink_abort(struct file_sink *f);
struct profile;
/* file_sink_commit of a gzip profile. */
int profile_file_commit(struct file_sink *f, const struct profile *p, struct gs_error *err);

#endif
