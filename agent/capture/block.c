/* block.c — `goscope block`'s capture: one block_session (block_session.c) on one target,
 * stepped every tick until the duration passes, the caller stops it or the target exits, then
 * one final cut: the whole capture as one profile, goroutines still blocked included. */
#include <string.h>
#include <time.h>

#include "capture/block_impl.h"
#include "capture/core.h"

/* capture_check_end's liveness callback. */
static bool session_alive(void *arg)
{
	return block_session_target_alive(arg);
}

int block_capture(const struct block_config *cfg, struct profile **out, struct block_stats *stats,
		  struct gs_error *err)
{
	struct block_session *s;
	struct capture_clock clk;
	enum capture_end end = CAPTURE_RUNNING;
	uint64_t now;
	int rc;

	memset(stats, 0, sizeof(*stats));
	rc = block_session_open(cfg, &s, err);
	if (rc < 0)
		return rc;
	capture_clock_start(&clk, cfg->duration_ns, cfg->stop);
	if (cfg->on_attached)
		cfg->on_attached(cfg->arg, s->info.go_version);
	for (;;) {
		struct timespec ts = {0, (long)BLOCK_TICK_NS};

		nanosleep(&ts, NULL);
		now = capture_monotonic_ns();
		end = capture_check_end(&clk, now, session_alive, s);
		if (end != CAPTURE_RUNNING)
			break;
		rc = block_session_tick(s, now, err);
		if (rc < 0)
			goto out;
		if (s->exited) { /* seen by the tick */
			end = CAPTURE_END_TARGETS_EXITED;
			break;
		}
	}
	rc = block_session_cut(s, true, out, stats, err);
	/* An exec ends the capture of the old image (the new one is another program). */
	if (rc == 0)
		stats->ended_by = stats->target_exec ? "target exec" : capture_end_name(end, false);
out:
	block_session_close(s);
	return rc;
}
