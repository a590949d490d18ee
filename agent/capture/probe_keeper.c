/* probe_keeper.c — the process that owns goscope's uprobe links (see probe_keeper.h for why).
 *
 * Protocol: a SOCK_SEQPACKET socket pair. The parent sends one struct keeper_cmd per message
 * (an attach carries the program fd as SCM_RIGHTS); the keeper answers each with one struct
 * keeper_reply. The parent reads the answer of an attach at once and collects the answers of
 * detaches later (probe_keeper_sync), so that a detach costs the caller nothing. A detach is
 * answered by the worker that closed the link (close_async), so answers can come in any
 * order. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "capture/core.h"
#include "capture/probe_keeper.h"

#define KEEPER_PATH_MAX 256
#define UPROBE_PMU_TYPE_PATH "/sys/bus/event_source/devices/uprobe/type"
#define KEEPER_STOP_WAIT_MS 5000 /* the keeper closes its links, then exits */
#define X86_INT3 0xcc

enum keeper_op { OP_ATTACH = 1, OP_DETACH };

struct keeper_cmd {
	uint32_t op, slot, kind, pmu_type;
	int32_t pid;
	uint64_t offset;
	char path[KEEPER_PATH_MAX];
};

struct keeper_reply {
	uint32_t op, slot;
	int32_t err;	  /* 0 or -errno */
	uint64_t done_ns; /* monotonic */
};

struct probe_keeper {
	pid_t pid;
	int sock;
	unsigned pending_detaches; /* replies still to read */
	uint64_t last_detach_ns;
	int noop_prog[2]; /* repair program, [multi]; -1 until loaded */
};

/* ---- the keeper process (no heap, no stdio: see probe_keeper.h) ---- */

static int attach_multi(int prog_fd, const struct keeper_cmd *c)
{
	return capture_uprobe_multi_link(prog_fd, c->path, c->offset, c->pid);
}

static int attach_perf(int prog_fd, const struct keeper_cmd *c)
{
	struct perf_event_attr a;
	int fd, e;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = c->pmu_type;
	a.config1 = (__u64)(uintptr_t)c->path; /* uprobe_path */
	a.config2 = c->offset;		       /* probe_offset */
	fd = (int)syscall(__NR_perf_event_open, &a, c->pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0 ||
	    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Receives one command and, for an attach, its program fd. 0 on EOF, -1 on error. */
static ssize_t recv_cmd(int sock, struct keeper_cmd *c, int *fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = c, .iov_len = sizeof(*c)};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = ctl,
			   .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return n == sizeof(*c) ? n : -1;
}

/* Closes link fd in a worker process that shares the keeper's descriptor table (so the
 * worker's close is the last one and the kernel's unregister and grace period run there),
 * which then sends r, with the time the close returned, and exits. Closing a uprobe link
 * takes a grace period (tens of ms): the links of one detach_all are closed side by side, as
 * goscope's reaper threads did, instead of one after the other in the keeper. Returns 0 when
 * the worker runs; -1 and the link still open otherwise (the caller closes it itself). The
 * worker is a fork of the single-threaded keeper with its own copy of memory (clone without
 * CLONE_VM, stack included), so it touches no state of the keeper's. */
static int close_async(int sock, int fd, struct keeper_reply *r)
{
	long pid =
		syscall(__NR_clone, (unsigned long)(CLONE_FILES | SIGCHLD), 0UL, NULL, NULL, 0UL);

	if (pid < 0)
		return -1;
	if (pid > 0)
		return 0;
	close(fd);
	r->done_ns = now_ns();
	send(sock, r, sizeof(*r), MSG_NOSIGNAL);
	_exit(0);
}

/* The keeper holds nothing of goscope's but its socket: no pipe a reader waits on for EOF
 * (goscope's stdout or stderr), no output file, no BPF object kept loaded after goscope is
 * gone. */
static void drop_inherited_fds(int sock)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	for (int fd = 0; fd < 3; fd++)
		if (fd != sock && null >= 0)
			dup2(null, fd);
	if (sock > 3)
		syscall(__NR_close_range, 3U, (unsigned)sock - 1, 0U);
	syscall(__NR_close_range, (unsigned)sock + 1, ~0U, 0U);
}

static __attribute__((noreturn)) void keeper_main(int sock)
{
	int links[PROBE_KEEPER_SLOTS];
	struct keeper_cmd c;
	struct keeper_reply r;
	int prog_fd;

	/* Whatever is sent to goscope's process group (Ctrl-C, a supervisor's SIGTERM) is for
	 * goscope: the keeper ends when goscope's end of the socket closes, and not before. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN); /* close_async's workers reap themselves */
	setpgid(0, 0);
	drop_inherited_fds(sock);
	prctl(PR_SET_NAME, "goscope-probes", 0, 0, 0);
	for (int i = 0; i < PROBE_KEEPER_SLOTS; i++)
		links[i] = -1;
	while (recv_cmd(sock, &c, &prog_fd) > 0) {
		r = (struct keeper_reply){.op = c.op, .slot = c.slot};
		c.path[KEEPER_PATH_MAX - 1] = '\0';
		if (c.slot >= PROBE_KEEPER_SLOTS) {
			r.err = -EINVAL;
		} else if (c.op == OP_ATTACH) {
			if (links[c.slot] >= 0 || prog_fd < 0)
				r.err = -EBUSY;
			else
				r.err = c.kind == PROBE_LINK_UPROBE_MULTI
						? attach_multi(prog_fd, &c)
						: attach_perf(prog_fd, &c);
			if (r.err >= 0) {
				links[c.slot] = r.err;
				r.err = 0;
			}
		} else if (c.op == OP_DETACH) {
			int fd = links[c.slot];

			links[c.slot] = -1;
			if (fd >= 0 && close_async(sock, fd, &r) == 0) {
				if (prog_fd >= 0)
					close(prog_fd);
				continue; /* the worker answers */
			}
		} else {
			r.err = -EINVAL;
		}
		if (prog_fd >= 0)
			close(prog_fd);
		r.done_ns = now_ns();
		if (send(sock, &r, sizeof(r), MSG_NOSIGNAL) != sizeof(r))
			break;
	}
	/* goscope is gone (or asked us to stop): unregister everything, with no fatal signal
	 * pending here. */
	for (int i = 0; i < PROBE_KEEPER_SLOTS; i++)
		if (links[i] >= 0)
			close(links[i]);
	/* With SIGCHLD ignored, wait returns (ECHILD) once every worker has exited: when the
	 * keeper is gone, every close it started has completed. */
	while (wait(NULL) > 0 || errno == EINTR)
		;
	_exit(0);
}

/* ---- the parent's side ---- */

int probe_keeper_start(struct probe_keeper **out, struct gs_error *err)
{
	struct probe_keeper *k = calloc(1, sizeof(*k));
	int sv[2];

	if (!k)
		return gs_error_set(err, -ENOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(k);
		return gs_error_set(err, -errno, "probe keeper: socketpair: %s", strerror(errno));
	}
	k->pid = fork();
	if (k->pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		free(k);
		return gs_error_set(err, -e, "probe keeper: fork: %s", strerror(e));
	}
	if (k->pid == 0) {
		close(sv[0]);
		keeper_main(sv[1]);
	}
	close(sv[1]);
	k->sock = sv[0];
	k->noop_prog[0] = k->noop_prog[1] = -1;
	*out = k;
	return 0;
}

pid_t probe_keeper_pid(const struct probe_keeper *k)
{
	return k->pid;
}

static int send_cmd(struct probe_keeper *k, const struct keeper_cmd *c, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)c, .iov_len = sizeof(*c)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	if (fd >= 0) {
		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	do
		n = sendmsg(k->sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == sizeof(*c) ? 0 : -(errno ? errno : EPIPE);
}

static int recv_reply(struct probe_keeper *k, struct keeper_reply *r)
{
	ssize_t n;

	do
		n = recv(k->sock, r, sizeof(*r), 0);
	while (n < 0 && errno == EINTR);
	if (n == sizeof(*r))
		return 0;
	return n == 0 ? -EPIPE : -(errno ? errno : EPROTO);
}

/* Reads replies until the one for op arrives (for OP_DETACH: the last pending one); detach
 * replies, in any order, are counted on the way. */
static int wait_reply(struct probe_keeper *k, uint32_t op, struct keeper_reply *r)
{
	int rc;

	for (;;) {
		rc = recv_reply(k, r);
		if (rc < 0)
			return rc;
		if (r->op == OP_DETACH && k->pending_detaches) {
			k->pending_detaches--;
			if (r->done_ns > k->last_detach_ns)
				k->last_detach_ns = r->done_ns;
			if (op == OP_DETACH && !k->pending_detaches)
				return 0;
			continue;
		}
		if (r->op == op)
			return 0;
	}
}

static unsigned read_pmu_type(void)
{
	char buf[32] = {0};
	int fd = open(UPROBE_PMU_TYPE_PATH, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? (unsigned)strtoul(buf, NULL, 10) : 0;
}

int probe_keeper_attach(struct probe_keeper *k, unsigned slot, const struct probe_spec *spec,
			struct gs_error *err)
{
	struct keeper_cmd c = {.op = OP_ATTACH,
			       .slot = slot,
			       .kind = spec->kind,
			       .pid = spec->pid,
			       .offset = spec->offset};
	struct keeper_reply r;
	int rc;

	if (strlen(spec->path) >= sizeof(c.path))
		return gs_error_set(err, -ENAMETOOLONG, "probe path too long: %s", spec->path);
	strcpy(c.path, spec->path);
	if (spec->kind == PROBE_LINK_PERF_EVENT) {
		c.pmu_type = read_pmu_type();
		if (!c.pmu_type)
			return gs_error_set(err, -ENOENT, "no uprobe PMU (%s)",
					    UPROBE_PMU_TYPE_PATH);
	}
	rc = send_cmd(k, &c, spec->prog_fd);
	if (rc == 0)
		rc = wait_reply(k, OP_ATTACH, &r);
	if (rc < 0)
		return gs_error_set(err, rc, "probe keeper: %s", strerror(-rc));
	if (r.err < 0)
		return capture_bpf_error(err, r.err,
					 spec->kind == PROBE_LINK_UPROBE_MULTI
						 ? "attach uprobe_multi"
						 : "attach uprobe");
	return 0;
}

int probe_keeper_detach(struct probe_keeper *k, unsigned slot)
{
	struct keeper_cmd c = {.op = OP_DETACH, .slot = slot};
	int rc = send_cmd(k, &c, -1);

	if (rc == 0)
		k->pending_detaches++;
	return rc;
}

int probe_keeper_sync(struct probe_keeper *k, uint64_t *done_ns)
{
	struct keeper_reply r;
	int rc = 0;

	if (k->pending_detaches)
		rc = wait_reply(k, OP_DETACH, &r);
	if (done_ns)
		*done_ns = k->last_detach_ns;
	return rc;
}

void probe_keeper_stop(struct probe_keeper *k)
{
	int status;

	if (!k)
		return;
	/* EOF makes the keeper close every link and exit. */
	close(k->sock);
	for (int waited = 0; waited < KEEPER_STOP_WAIT_MS; waited++) {
		pid_t r = waitpid(k->pid, &status, WNOHANG);

		if (r == k->pid || (r < 0 && errno != EINTR))
			break;
		usleep(1000);
	}
	for (int i = 0; i < 2; i++)
		if (k->noop_prog[i] >= 0)
			close(k->noop_prog[i]);
	free(k);
}

/* ---- repairing leaked uprobes ---- */

/* A uprobe program that does nothing ("r0 = 0; exit"), loaded once per keeper. */
static int noop_prog(struct probe_keeper *k, bool multi)
{
	const struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts);

	if (k->noop_prog[multi] >= 0)
		return k->noop_prog[multi];
	if (multi)
		opts.expected_attach_type = (enum bpf_attach_type)CAPTURE_BPF_TRACE_UPROBE_MULTI;
	k->noop_prog[multi] = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "goscope_noop", "GPL", insns,
					    sizeof(insns) / sizeof(insns[0]), &opts);
	return k->noop_prog[multi];
}

/* Reads one byte of fd at off; -1 when it cannot be read. */
static int byte_at(int fd, uint64_t off)
{
	uint8_t b;

	return pread(fd, &b, 1, (off_t)off) == 1 ? b : -1;
}

int probe_keeper_repair(struct probe_keeper *k, pid_t pid, const char *path, const uint64_t *vaddrs,
			const uint64_t *offsets, size_t n, bool multi, struct gs_error *err)
{
	char mem_path[64];
	int mem_fd, file_fd, repaired = 0, rc = 0, prog;

	snprintf(mem_path, sizeof(mem_path), "/proc/%d/mem", pid);
	mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (mem_fd < 0)
		return gs_error_set(err, -errno, "open %s: %s", mem_path, strerror(errno));
	file_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (file_fd < 0) {
		rc = gs_error_set(err, -errno, "open %s: %s", path, strerror(errno));
		close(mem_fd);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct probe_spec spec = {.kind = multi ? PROBE_LINK_UPROBE_MULTI
							: PROBE_LINK_PERF_EVENT,
					  .pid = pid,
					  .path = path,
					  .offset = offsets[i]};
		int orig = byte_at(file_fd, offsets[i]);

		if (byte_at(mem_fd, vaddrs[i]) != X86_INT3 || orig < 0 || orig == X86_INT3)
			continue;
		prog = noop_prog(k, multi);
		if (prog < 0) {
			rc = capture_bpf_error(err, prog, "load the repair program");
			break;
		}
		spec.prog_fd = prog;
		/* Attach and detach at the same place: the kernel's unregister writes the
		 * original instruction back where no consumer wants the probe. */
		rc = probe_keeper_attach(k, PROBE_KEEPER_SLOTS - 1, &spec, err);
		if (rc == 0) {
			probe_keeper_detach(k, PROBE_KEEPER_SLOTS - 1);
			rc = probe_keeper_sync(k, NULL);
		}
		if (rc == 0 && byte_at(mem_fd, vaddrs[i]) == orig)
			repaired++;
	}
	close(file_fd);
	close(mem_fd);
	return rc < 0 ? rc : repaired;
}
