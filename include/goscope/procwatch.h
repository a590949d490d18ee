/* procwatch.h — types shared by bpf/procwatch.bpf.c and agent/daemon/discover.c: the record the
 * exec watcher sends through its ring buffer for every exec on the host, and its counters. */
#ifndef GOSCOPE_PROCWATCH_H
#define GOSCOPE_PROCWATCH_H

/* 16-byte records (+ 8 bytes of ring header each): 10922 execs fit in the ring between two
 * drains; an exec storm beyond that is counted in PROCWATCH_STAT_DROPS and left to the next
 * rescan. */
#define PROCWATCH_RINGBUF_BYTES (256u << 10)
/* Unless told to wake the reader at every exec, the program wakes it only once this much is
 * waiting: the reader drains the ring at each of its polls anyway, and a wakeup per exec
 * costs it a context switch per exec during an exec storm. */
#define PROCWATCH_WAKEUP_BYTES (PROCWATCH_RINGBUF_BYTES / 4)

enum procwatch_stat {
	PROCWATCH_STAT_EXECS, /* execs seen by the program */
	PROCWATCH_STAT_DROPS, /* records lost because the ring buffer was full */
	PROCWATCH_STAT_COUNT,
};

struct procwatch_event {
	__u32 pid; /* tgid */
	__u32 pad;
	__u64 start_ticks; /* the process's start time, as field 22 of /proc/PID/stat */
};

#endif
