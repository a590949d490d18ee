/* capture.h — what every one-shot capture shares: stop on SIGINT/SIGTERM, target liveness,
 * clocks and duration parsing. */
#ifndef GOSCOPE_AGENT_CAPTURE_H
#define GOSCOPE_AGENT_CAPTURE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"

/* Set by the SIGINT/SIGTERM handlers that capture_install_signals installs. */
extern volatile sig_atomic_t capture_stop_requested;

void capture_install_signals(void);
/* True while pid exists and is not a zombie. */
bool capture_pid_alive(pid_t pid);
/* 0 when pid exists; -ESRCH with a message otherwise. */
int capture_check_pid(pid_t pid, struct gs_error *err);
uint64_t capture_monotonic_ns(void);
int64_t capture_realtime_ns(void);
/* "10s", "500ms", "2m", "1h", "1.5s" or a plain number of seconds; -EINVAL. */
int capture_parse_duration(const char *s, uint64_t *ns);
/* Explains a BPF/perf permission failure by naming the missing capability. */
int capture_permission_error(struct gs_error *err, int code, const char *what);

#endif
