/* probe_keeper.h — a child process that owns goscope's uprobe links, so that killing goscope
 * can never leave a breakpoint in a profiled process.
 *
 * Why: registering or unregistering a uprobe writes the target's code page through
 * get_user_pages, which fails with EINTR when the calling task has a fatal signal pending. A
 * uprobe being registered or unregistered by goscope when goscope is SIGKILLed is then left
 * behind: the kernel logs "failed to unregister, leaking uprobe" and the int3 stays in the
 * target's code for the life of the target, each hit a trap (a channel ping-pong ran at a
 * quarter of its speed). A duty-cycled block capture attaches and detaches every cycle, each
 * taking tens of milliseconds, so a kill lands in one of those windows often (3 of 15 random
 * SIGKILLs left int3 bytes before the keeper existed).
 *
 * The keeper is forked once, ignores the signals a terminal or a supervisor sends to goscope,
 * creates and closes every link on goscope's behalf, and when goscope goes away (its end of
 * the socket closes, however goscope ended) closes every link it holds and exits. Its own
 * register/unregister calls run with no fatal signal pending. Only a SIGKILL sent to the
 * keeper itself while it is registering can still leak: probe_keeper_repair is the second
 * line of defence.
 *
 * The keeper touches no heap after the fork (the parent may be multi-threaded): only system
 * calls and stack buffers. */
#ifndef GOSCOPE_AGENT_CAPTURE_PROBE_KEEPER_H
#define GOSCOPE_AGENT_CAPTURE_PROBE_KEEPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

/* Links one keeper holds at once. */
#define PROBE_KEEPER_SLOTS 16

enum probe_link_kind {
	PROBE_LINK_UPROBE_MULTI, /* a BPF uprobe_multi link (Linux 6.6+) */
	PROBE_LINK_PERF_EVENT,	 /* a perf-event uprobe with the program attached by ioctl */
};

struct probe_spec {
	enum probe_link_kind kind;
	int prog_fd;	     /* the BPF program (kept by the caller; the keeper gets a copy) */
	pid_t pid;	     /* the process the probe fires for */
	const char *path;    /* binary to probe, e.g. "/proc/PID/exe" (< 256 bytes) */
	uint64_t offset;     /* file offset of the probed instruction */
	bool multi_expected; /* prog loaded with expected_attach_type uprobe_multi */
};

struct probe_keeper;

/* Forks the keeper. -errno with a message. */
int probe_keeper_start(struct probe_keeper **out, struct gs_error *err);
/* Creates a link in slot (0..PROBE_KEEPER_SLOTS-1, which must be free); returns when the
 * probe is live. The error names the kernel's answer (-errno). */
int probe_keeper_attach(struct probe_keeper *k, unsigned slot, const struct probe_spec *spec,
			struct gs_error *err);
/* Starts closing slot's link and returns at once: the keeper closes it while the caller goes
 * on (closing a uprobe link takes a grace period, tens of milliseconds). A free slot is a
 * no-op. */
int probe_keeper_detach(struct probe_keeper *k, unsigned slot);
/* Waits until every detach asked for has completed; *done_ns (may be NULL) is the monotonic
 * time the latest one completed (0 when none ever did). Detaches complete side by side (each
 * link is closed by a worker of the keeper), in any order. */
int probe_keeper_sync(struct probe_keeper *k, uint64_t *done_ns);
/* Closes every link, waits for the keeper to exit and frees k. NULL is a no-op. */
void probe_keeper_stop(struct probe_keeper *k);
/* The keeper's pid (tests). */
pid_t probe_keeper_pid(const struct probe_keeper *k);

/* Second line of defence, before probing a process: an int3 byte at one of the probe points
 * where the binary has another byte is a uprobe the kernel leaked there (a goscope killed by
 * hand while registering, or another tool's). The kernel still holds that uprobe, with the
 * original instruction: a probe attached at the same place and detached cleanly makes the
 * kernel write it back, in every process no other consumer still wants it for (so another
 * tool's live probe is left alone). Done through the keeper with a program that does
 * nothing. vaddrs are the points' addresses in pid, offsets their file offsets in path.
 * Returns how many leftovers were repaired; -errno when one could not be. */
int probe_keeper_repair(struct probe_keeper *k, pid_t pid, const char *path, const uint64_t *vaddrs,
			const uint64_t *offsets, size_t n, bool multi, struct gs_error *err);

#endif
