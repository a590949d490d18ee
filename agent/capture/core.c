/* core.c — the shared capture core (see core.h): libbpf's log, skeleton loading with a real
 * cause on failure, per-CPU counter sums, clocks and the end of a capture. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/core.h"
#include "procs/proc.h"

#define LOG_KEEP_LINES 32 /* libbpf lines kept for error messages */
#define LOG_LINE_MAX 256  /* longer lines are cut (verifier lines are short) */
#define LOG_MSG_MAX 16384 /* one libbpf message; the verifier log comes as one */
#define ERROR_LOG_LINES 4 /* verifier lines quoted in an error */
#define LOCKDOWN_PATH "/sys/kernel/security/lockdown"
#define UPROBE_MULTI_ATTR_TAIL 64 /* zeroes after link_create.uprobe_multi */

/* libbpf's print callback is process-wide and takes no argument: its state is global,
 * guarded by a mutex because sessions may load programs from several threads. */
static struct {
	pthread_mutex_t lock;
	capture_log_fn fn;
	void *arg;
	bool debug;
	char lines[LOG_KEEP_LINES][LOG_LINE_MAX];
	unsigned next;	   /* ring position of the next line */
	unsigned count;	   /* lines kept since the last clear */
	bool saw_verifier; /* a verifier log was printed since the last clear */
} logbuf = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t print_once = PTHREAD_ONCE_INIT;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = malloc(LOG_MSG_MAX), *line, *save = NULL;

	if (!msg)
		return 0;
	vsnprintf(msg, LOG_MSG_MAX, fmt, ap);
	pthread_mutex_lock(&logbuf.lock);
	if (strstr(msg, "BEGIN PROG LOAD LOG"))
		logbuf.saw_verifier = true;
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		snprintf(logbuf.lines[logbuf.next], LOG_LINE_MAX, "%s", line);
		logbuf.next = (logbuf.next + 1) % LOG_KEEP_LINES;
		if (logbuf.count < LOG_KEEP_LINES)
			logbuf.count++;
		if (logbuf.fn && (level != LIBBPF_DEBUG || logbuf.debug))
			logbuf.fn(logbuf.arg, line);
	}
	pthread_mutex_unlock(&logbuf.lock);
	free(msg);
	return 0;
}

static void install_print(void)
{
	libbpf_set_print(libbpf_print);
}

void capture_set_log(capture_log_fn fn, void *arg, bool debug)
{
	pthread_once(&print_once, install_print);
	pthread_mutex_lock(&logbuf.lock);
	logbuf.fn = fn;
	logbuf.arg = arg;
	logbuf.debug = debug;
	pthread_mutex_unlock(&logbuf.lock);
}

static void log_clear(void)
{
	pthread_once(&print_once, install_print);
	pthread_mutex_lock(&logbuf.lock);
	logbuf.count = 0;
	logbuf.saw_verifier = false;
	pthread_mutex_unlock(&logbuf.lock);
}

/* The last n kept lines that are not the log's END marker, joined with " | ". */
static void log_tail(char *out, size_t len, unsigned n)
{
	unsigned have, first;
	size_t used = 0;

	out[0] = '\0';
	pthread_mutex_lock(&logbuf.lock);
	have = logbuf.count;
	if (have && strstr(logbuf.lines[(logbuf.next + LOG_KEEP_LINES - 1) % LOG_KEEP_LINES],
			   "END PROG LOAD LOG"))
		have--; /* the marker says nothing */
	first = have > n ? have - n : 0;
	for (unsigned i = first; i < have && used + 1 < len; i++) {
		unsigned idx = (logbuf.next + LOG_KEEP_LINES - logbuf.count + i) % LOG_KEEP_LINES;
		int w = snprintf(out + used, len - used, "%s%s", used ? " | " : "",
				 logbuf.lines[idx]);

		if (w < 0)
			break;
		used += (size_t)w < len - used ? (size_t)w : len - used - 1;
	}
	pthread_mutex_unlock(&logbuf.lock);
}

/* Whether a seccomp filter refuses bpf() itself: a BPF_MAP_CREATE of map type 0, which the
 * kernel answers with EINVAL once the call reaches it, and which a filter answers with EPERM
 * (or ENOSYS) before. Only asked when this process has the capabilities. */
static bool seccomp_blocks_bpf(void)
{
	char attr[64] = {0};

	if (syscall(__NR_bpf, BPF_MAP_CREATE, attr, sizeof(attr)) >= 0)
		return false; /* cannot happen for type 0; be safe */
	return errno == EPERM || errno == ENOSYS;
}

/* Whether a seccomp filter refuses perf_event_open() (a profile that allows bpf() alone): a
 * call with no attr, which the kernel answers with EFAULT once the call reaches it. */
static bool seccomp_blocks_perf(void)
{
	if (syscall(__NR_perf_event_open, NULL, -1, 0, -1, 0) >= 0)
		return false; /* cannot happen without an attr; be safe */
	return errno == EPERM || errno == ENOSYS;
}

/* The call this process's seccomp filter refuses among those goscope needs, or NULL. */
static const char *seccomp_refused_call(void)
{
	if (seccomp_blocks_bpf())
		return "bpf()";
	if (seccomp_blocks_perf())
		return "perf_event_open()";
	return NULL;
}

/* Kernel lockdown in confidentiality mode forbids BPF reads of kernel memory. */
static bool lockdown_confidentiality(void)
{
	char buf[128] = {0};
	FILE *f = fopen(LOCKDOWN_PATH, "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "[confidentiality]") != NULL;
}

int capture_bpf_error(struct gs_error *err, int code, const char *what)
{
	struct proc_self_status st;
	bool denied = code == -EPERM || code == -EACCES, privileged, verbose, verifier;
	const char *refused = NULL;
	char tail[LOG_KEEP_LINES * 64];

	proc_self_status(&st);
	privileged = (st.cap_eff & (1ULL << PROC_CAP_SYS_ADMIN)) ||
		     ((st.cap_eff & (1ULL << PROC_CAP_BPF)) &&
		      (st.cap_eff & (1ULL << PROC_CAP_PERFMON)));
	if (denied && !privileged)
		return gs_error_set(err, code,
				    "%s: permission denied: goscope needs root or CAP_BPF, "
				    "CAP_PERFMON and CAP_SYS_PTRACE (see 'goscope version')",
				    what);
	if (denied && st.seccomp == 2)
		refused = seccomp_refused_call();
	if (refused)
		return gs_error_set(
			err, code,
			"%s: %s is refused by this process's seccomp filter "
			"(Seccomp: 2 in /proc/self/status; a container runtime's default "
			"seccomp profile blocks bpf()): run goscope with a seccomp profile that "
			"allows bpf() and perf_event_open() (goscope's image ships one: "
			"deploy/kubernetes/seccomp-goscope.json), or unconfined",
			what, refused);
	if (denied && lockdown_confidentiality())
		return gs_error_set(err, code,
				    "%s: refused by kernel lockdown (confidentiality mode, %s)",
				    what, LOCKDOWN_PATH);
	pthread_mutex_lock(&logbuf.lock);
	verbose = logbuf.fn != NULL;
	verifier = logbuf.saw_verifier;
	pthread_mutex_unlock(&logbuf.lock);
	if (verifier || denied) {
		if (!verbose)
			return gs_error_set(
				err, code,
				"%s: rejected by the kernel (%s; --verbose shows its log)", what,
				verifier ? "BPF verifier" : "BPF verifier or LSM policy");
		log_tail(tail, sizeof(tail), ERROR_LOG_LINES);
		return gs_error_set(err, code, "%s: rejected by the kernel (%s): %s", what,
				    verifier ? "BPF verifier" : "BPF verifier or LSM policy",
				    tail[0] ? tail : strerror(-code));
	}
	return gs_error_set(err, code, "%s: %s", what, strerror(-code));
}

/* The kernel's link_create attr for uprobe_multi, laid out by hand (see core.h). */
struct uprobe_multi_attr {
	__u32 prog_fd, target_fd, attach_type, flags;
	__aligned_u64 path, offsets, ref_ctr_offsets, cookies;
	__u32 cnt, multi_flags, pid;
	__u8 rest[UPROBE_MULTI_ATTR_TAIL];
};

int capture_uprobe_multi_link(int prog_fd, const char *path, uint64_t offset, int pid)
{
	struct uprobe_multi_attr a;
	__u64 off = offset;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (__u32)prog_fd;
	a.attach_type = CAPTURE_BPF_TRACE_UPROBE_MULTI;
	a.path = (__u64)(uintptr_t)path;
	a.offsets = (__u64)(uintptr_t)&off;
	a.cnt = 1;
	a.pid = (__u32)pid;
	fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

int capture_bpf_load(struct bpf_object_skeleton *skeleton, const char *what, struct gs_error *err)
{
	int rc;

	log_clear();
	rc = bpf_object__load_skeleton(skeleton);
	if (rc < 0)
		return capture_bpf_error(err, rc, what);
	return 0;
}

int capture_ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : (n < 0 ? n : -EINVAL);
}

int capture_percpu_sums(const struct bpf_map *map, uint32_t nkeys, uint64_t *sums)
{
	int ncpus = capture_ncpus();
	__u64 *vals;

	memset(sums, 0, sizeof(*sums) * nkeys);
	if (ncpus < 0)
		return ncpus;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < nkeys; k++) {
		if (bpf_map__lookup_elem(map, &k, sizeof(k), vals, sizeof(*vals) * (size_t)ncpus,
					 0) < 0)
			continue;
		for (int c = 0; c < ncpus; c++)
			sums[k] += vals[c];
	}
	free(vals);
	return 0;
}

uint64_t capture_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t capture_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void capture_clock_start(struct capture_clock *c, uint64_t duration_ns, volatile const int *stop)
{
	*c = (struct capture_clock){.start_ns = capture_monotonic_ns(),
				    .start_wall_ns = capture_realtime_ns(),
				    .duration_ns = duration_ns,
				    .stop = stop};
	c->last_live_ns = c->start_ns;
}

enum capture_end capture_check_end(struct capture_clock *c, uint64_t now, bool (*alive)(void *),
				   void *arg)
{
	if (c->stop && *c->stop)
		return CAPTURE_END_SIGNAL;
	if (c->duration_ns && now - c->start_ns >= c->duration_ns)
		return CAPTURE_END_DURATION;
	if (alive && now - c->last_live_ns >= CAPTURE_LIVENESS_EVERY_NS) {
		c->last_live_ns = now;
		if (!alive(arg))
			return CAPTURE_END_TARGETS_EXITED;
	}
	return CAPTURE_RUNNING;
}

const char *capture_end_name(enum capture_end e, bool plural)
{
	switch (e) {
	case CAPTURE_END_DURATION:
		return "duration";
	case CAPTURE_END_SIGNAL:
		return "signal";
	case CAPTURE_END_TARGETS_EXITED:
		return plural ? "targets exited" : "target exited";
	case CAPTURE_RUNNING:
		break;
	}
	return "running";
}
