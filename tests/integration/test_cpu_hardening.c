/* test_cpu_hardening.c — CPU profiles stay right, and goscope stays small, when target
 * processes exec, exit, reuse pids and churn (issue 11, defects 3–6):
 *  - exec: a target that execs another Go program mid-capture is profiled on as the new
 *    program, with its own symbols and comm (`goscope cpu --pid`);
 *  - pid_reuse: a target exits and its pid is taken (clone3 with set_tid, deterministic) by a
 *    C program, then by another Go program: the C program is not sampled under the old comm,
 *    the Go program is symbolized with its own table, under its own comm (session API, as
 *    --all-go uses it);
 *  - map_full: ten times more short-lived processes than the target map holds are profiled,
 *    late ones too, without a cut; adds past a full map are refused and counted; the one-shot
 *    says how many processes it could not profile;
 *  - churn_rss: `goscope cpu --all-go` for 60 s next to restarting programs (a fresh copy of the
 *    binary each run, deleted after it exits): goscope's RSS and mappings stay flat. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/core.h"
#include "capture/cpu.h"
#include "capture/cpu_session.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_traces.h"
#include "tests/helpers/run.h"

#define TOOLCHAIN "1.27"
#define FREQ 99

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Starts goscope with argv and waits until its perf events are attached on every CPU. */
static pid_t start_goscope(char **argv)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t child = spawn_argv(argv);
	int waited = 0;

	cr_assert_geq(child, 0);
	while (fd_count(child, "anon_inode:[perf_event]") < online) {
		cr_assert_lt(waited, 30000, "goscope did not attach");
		sleep_ms(20);
		waited += 20;
	}
	sleep_ms(300); /* links after the events */
	return child;
}

static const char *go_path(char *buf, size_t len)
{
	const char *go = go_tool_path(TOOLCHAIN, buf, len);

	cr_assert(go);
	return go;
}

static bool has_frame(const struct trace *t, const char *func)
{
	for (int i = 0; i < t->nframes; i++) {
		if (strcmp(t->frames[i], func) == 0)
			return true;
	}
	return false;
}

static bool has_label(const struct trace *t, const char *key, const char *value)
{
	size_t kl = strlen(key);

	for (int i = 0; i < t->nlabels; i++) {
		if (strncmp(t->labels[i], key, kl) == 0 && t->labels[i][kl] == ':' &&
		    strstr(t->labels[i] + kl + 1, value))
			return true;
	}
	return false;
}

#define OTHERS_SHOWN 6
#define OTHERS_FRAMES 4

/* The heaviest traces without func, for a failure message: "value: leaf < caller < ...". */
static const char *others(const struct traces *tr, const char *func, char *buf, size_t len)
{
	size_t at = 0, shown = 0;
	bool *used = calloc(tr->n ? tr->n : 1, sizeof(*used));

	buf[0] = '\0';
	while (used && shown < OTHERS_SHOWN && at < len) {
		size_t best = tr->n;

		for (size_t i = 0; i < tr->n; i++)
			if (!used[i] && tr->t[i].value > 0 && !has_frame(&tr->t[i], func) &&
			    (best == tr->n || tr->t[i].value > tr->t[best].value))
				best = i;
		if (best == tr->n)
			break;
		used[best] = true;
		at += (size_t)snprintf(buf + at, len - at, "\n  %.0f:", tr->t[best].value);
		for (int f = 0; f < tr->t[best].nframes && f < OTHERS_FRAMES && at < len; f++)
			at += (size_t)snprintf(buf + at, len - at, "%s %s", f ? " <" : "",
					       tr->t[best].frames[f]);
		shown++;
	}
	free(used);
	return buf;
}

/* Samples of traces with comm (NULL: any) and func (NULL: any) in a profile file. */
static double samples_of(const struct traces *tr, const char *comm, const char *func)
{
	double v = 0;

	for (size_t i = 0; i < tr->n; i++) {
		if ((!comm || has_label(&tr->t[i], "comm", comm)) &&
		    (!func || has_frame(&tr->t[i], func)))
			v += tr->t[i].value;
	}
	return v;
}

static void load(const char *file, struct traces *tr)
{
	char gobuf[256], why[2048];

	cr_assert_eq(traces_load(go_path(gobuf, sizeof(gobuf)), file, "-sample_index=samples", tr,
				 why, sizeof(why)),
		     0, "%s", why);
}

/* Defect 3: execa burns 1.5 s in main.burnA, then execs execb, which burns 1.5 s in
 * main.burnB. The profile must hold both, each under its own program's comm, and never an
 * execa name at execb's PCs (before the fix, execb's samples were symbolized with execa's
 * table: slices.heapSortCmpFunc[...] instead of main.burnB). */
Test(cpu_hardening, exec, .timeout = 120)
{
	char a[1024], b[1024], dir[256], out[512], line[128], pidstr[16];
	struct traces tr;
	struct gotarget t;
	double total, burn_a, burn_b, b_comm, b_with_a;
	pid_t gs;

	GOTARGET_BUILD_OR_SKIP(a, "execa", TOOLCHAIN, "default");
	GOTARGET_BUILD_OR_SKIP(b, "execb", TOOLCHAIN, "default");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(out, sizeof(out), "%s/exec.pb.gz", dir);
	{
		char *argv[] = {a, "-gate", "-next", b, "-duration", "1500ms", NULL};

		cr_assert_eq(gotarget_start(&t, a, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 20000), 0);
	snprintf(pidstr, sizeof(pidstr), "%d", t.pid);
	{
		char *argv[] = {(char *)goscope_bin(), "cpu", "--pid", pidstr, "--duration", "0",
				"--frequency",	       "99",  "-o",    out,    NULL};

		gs = start_goscope(argv);
	}
	cr_assert_eq(write(t.stdin_fd, "\n", 1), 1);
	cr_assert_eq(gotarget_stop(&t, 20000), 0, "execa/execb failed");
	cr_assert_eq(wait_exit_code(gs), 0);

	load(out, &tr);
	total = tr.total;
	burn_a = samples_of(&tr, NULL, "main.burnA");
	burn_b = samples_of(&tr, NULL, "main.burnB");
	b_comm = samples_of(&tr, "execb", NULL);
	b_with_a = samples_of(&tr, "execb", "main.burnA") + samples_of(&tr, "execa", "main.burnB");
	cr_log_info("exec: %.0f samples, burnA %.0f, burnB %.0f, comm execb %.0f\n", total, burn_a,
		    burn_b, b_comm);
	cr_assert_gt(total, 60, "too few samples (%.0f)", total);
	cr_assert_geq(burn_a, 0.3 * total, "main.burnA %.0f of %.0f", burn_a, total);
	cr_assert_geq(burn_b, 0.3 * total,
		      "main.burnB %.0f of %.0f: the new image's samples "
		      "are not symbolized with its own binary",
		      burn_b, total);
	cr_assert_eq(samples_of(&tr, "execb", "main.burnB"), burn_b,
		     "main.burnB samples not under comm execb");
	cr_assert_eq(b_with_a, 0, "a function of one image under the other's comm");
	/* Every sample of the new image is execb's: its burn, its start-up (main.main, runtime). */
	cr_assert_geq(samples_of(&tr, "execb", "main.main") +
			      samples_of(&tr, "execb", "runtime.main"),
		      0.9 * b_comm, "execb samples outside execb's own code");
	traces_free(&tr);
}

/* clone3 with set_tid: a child with pid `pid` (root), running fn. -errno (-EEXIST: taken). */
static pid_t spawn_at(pid_t pid, void (*fn)(void *), void *arg)
{
	pid_t tid = pid;
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	long rc = syscall(SYS_clone3, &ca, sizeof(ca));

	if (rc < 0)
		return -errno;
	if (rc == 0) {
		fn(arg);
		_exit(0);
	}
	return (pid_t)rc;
}

static void c_burn(void *arg)
{
	uint64_t end = capture_monotonic_ns() + 800000000ULL;
	volatile uint64_t x = 1;

	(void)arg;
	prctl(PR_SET_NAME, "cburn");
	while (capture_monotonic_ns() < end)
		x = x * 6364136223846793005ULL + 1;
}

static void exec_b(void *arg)
{
	char *argv[] = {arg, "-duration", "1s", NULL};

	execv(argv[0], argv);
	_exit(127);
}

static void poll_ms(struct cpu_session *s, int ms)
{
	struct gs_error err = {0};
	uint64_t end = capture_monotonic_ns() + (uint64_t)ms * 1000000ULL;

	while (capture_monotonic_ns() < end)
		cr_assert_eq(cpu_session_poll(s, 50, &err), 0, "%s", err.msg);
}

static void poll_until_exit(struct cpu_session *s, pid_t pid)
{
	int status;

	for (int i = 0; i < 400; i++) {
		poll_ms(s, 50);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
	}
	cr_assert_fail("pid %d did not exit", pid);
}

static void write_proc(const struct cpu_window_proc *wp, const char *dir, const char *name,
		       struct traces *tr)
{
	struct gs_error err = {0};
	char file[512];

	cr_assert(wp->prof, "%s: no profile", name);
	snprintf(file, sizeof(file), "%s/%s.pb.gz", dir, name);
	cr_assert_eq(profile_write_file(wp->prof, file, &err), 0, "%s", err.msg);
	load(file, tr);
}

/* main.burnA's share of execa's profile: between the 97-99% measured and the 56% the C
 * program's samples would leave (see the test). */
#define PID_REUSE_MIN_SHARE 0.7

/* Defect 4: execa (comm execa) burns on pid P and exits; a C program (comm cburn, not a
 * target) runs on P, then execb (added as --all-go's rescan would add it). */
Test(cpu_hardening, pid_reuse, .timeout = 120)
{
	struct cpu_session_config cfg = {.frequency = FREQ};
	char a[1024], b[1024], dir[256], line[128], why[2048];
	const struct cpu_window_proc *pa = NULL, *pb = NULL;
	struct gs_error err = {0};
	struct cpu_session *s;
	struct cpu_window w;
	struct gotarget t;
	struct traces tr;
	pid_t p, c;

	GOTARGET_BUILD_OR_SKIP(a, "execa", TOOLCHAIN, "default");
	GOTARGET_BUILD_OR_SKIP(b, "execb", TOOLCHAIN, "default");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	cr_assert_eq(cpu_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	{
		char *argv[] = {a, "-gate", "-duration", "1s", NULL};

		cr_assert_eq(gotarget_start(&t, a, argv), 0);
	}
	cr_assert_gt(gotarget_read_line(&t, line, sizeof(line), 20000), 0);
	p = t.pid;
	cr_assert_eq(cpu_session_add_target(s, p, &err), 0, "%s", err.msg);
	cr_assert_eq(write(t.stdin_fd, "\n", 1), 1);
	poll_ms(s, 1300);
	cr_assert_eq(gotarget_stop(&t, 20000), 0); /* exited and reaped: P is free */

	c = spawn_at(p, c_burn, NULL);
	if (c == -EEXIST)
		cr_skip_test("pid %d was taken by another process", p);
	cr_assert_eq(c, p, "clone3 set_tid: %s", strerror(-c));
	poll_until_exit(s, c);

	c = spawn_at(p, exec_b, b);
	if (c == -EEXIST)
		cr_skip_test("pid %d was taken by another process", p);
	cr_assert_eq(c, p, "clone3 set_tid: %s", strerror(-c));
	sleep_ms(50);
	cr_assert_eq(cpu_session_add_target(s, p, &err), 0, "%s", err.msg);
	poll_until_exit(s, c);

	cr_assert_eq(cpu_session_cut(s, &w, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < w.nprocs; i++) {
		const struct cpu_window_proc *wp = &w.procs[i];

		cr_log_info("pid_reuse: pid %d comm %s samples %llu ended %d\n", wp->pid, wp->comm,
			    (unsigned long long)wp->samples, wp->ended);
		cr_assert_neq(strcmp(wp->comm, "cburn"), 0, "the C program was sampled");
		if (wp->pid == p && strcmp(wp->comm, "execa") == 0)
			pa = wp;
		if (wp->pid == p && strcmp(wp->comm, "execb") == 0)
			pb = wp;
	}
	cr_assert(pa, "no samples of execa");
	cr_assert(pb, "no process execb on pid %d: its samples went to the old process", p);
	write_proc(pa, dir, "execa", &tr);
	cr_log_info("execa: %.0f samples, burnA %.0f\n", tr.total,
		    samples_of(&tr, NULL, "main.burnA"));
	cr_assert_eq(samples_of(&tr, "execa", NULL), tr.total);
	/* The C program's 0.8 s of samples would be there, without main.burnA: next to execa's
	 * 1 s, at most 1 / 1.8 = 56% of the profile would be main.burnA. Here 97-99% are (15
	 * runs); the rest is the runtime's own work, a larger share when the host is loaded
	 * (a CI run saw less than 85%). */
	cr_assert_geq(samples_of(&tr, NULL, "main.burnA"), PID_REUSE_MIN_SHARE * tr.total,
		      "execa's profile holds samples of another process: %.0f of %.0f in "
		      "main.burnA; the heaviest others:%s",
		      samples_of(&tr, NULL, "main.burnA"), tr.total,
		      others(&tr, "main.burnA", why, sizeof(why)));
	traces_free(&tr);
	write_proc(pb, dir, "execb", &tr);
	cr_log_info("execb: %.0f samples, burnB %.0f\n", tr.total,
		    samples_of(&tr, NULL, "main.burnB"));
	cr_assert_eq(samples_of(&tr, "execb", NULL), tr.total);
	cr_assert_geq(samples_of(&tr, NULL, "main.burnB"), 0.7 * tr.total,
		      "execb not symbolized with its own binary: %.0f of %.0f in main.burnB; "
		      "the heaviest others:%s",
		      samples_of(&tr, NULL, "main.burnB"), tr.total,
		      others(&tr, "main.burnB", why, sizeof(why)));
	traces_free(&tr);
	cpu_window_free(&w);
	cpu_session_close(s);
}

/* Starts churn -mode short (it burns `burn` and exits after `life`). */
static pid_t start_short(const char *churn, const char *life, const char *burn)
{
	char *argv[] = {(char *)churn, "-mode", "short",      "-duration",
			(char *)life,  "-burn", (char *)burn, NULL};
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

#define MAP_SIZE 8
#define ROUNDS 20
#define PER_ROUND 4

/* Defect 5, in the session: a target map of MAP_SIZE, ROUNDS x PER_ROUND short-lived
 * processes (10 times the map) added as they start, no cut until the end: every one is
 * added and sampled, late ones too (before the fix, exited targets stayed in the map until
 * the cut: the add after the map filled failed). Then more live processes than the map
 * holds: the extra adds are refused and counted. */
Test(cpu_hardening, map_full, .timeout = 180)
{
	struct cpu_session_config cfg = {.frequency = FREQ};
	pid_t pids[ROUNDS * PER_ROUND], live[MAP_SIZE + 2];
	struct gs_error err = {0};
	struct cpu_session *s;
	struct cpu_window w;
	char churn[1024];
	int n = 0, refused = 0;

	GOTARGET_BUILD_OR_SKIP(churn, "churn", TOOLCHAIN, "default");
#ifdef CPU_SESSION_REAP_MS
	cfg.max_targets = MAP_SIZE; /* before the fix: CPU_MAX_TARGETS set to MAP_SIZE */
#endif
	cr_assert_eq(cpu_session_open(&cfg, &s, &err), 0, "%s", err.msg);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER_ROUND; i++) {
			pids[n] = start_short(churn, "500ms", "300ms");
			sleep_ms(20);
			cr_assert_eq(cpu_session_add_target(s, pids[n], &err), 0,
				     "process %d of %d (map of %d): %s", n + 1, ROUNDS * PER_ROUND,
				     MAP_SIZE, err.msg);
			n++;
		}
		for (int i = n - PER_ROUND; i < n; i++)
			poll_until_exit(s, pids[i]);
	}
	poll_ms(s, 200);
	cr_assert_eq(cpu_session_cut(s, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(w.stats.map_full, 0);
	for (int i = n - 2 * MAP_SIZE; i < n; i++) {
		uint64_t got = 0;

		for (size_t j = 0; j < w.nprocs; j++)
			got += w.procs[j].pid == pids[i] ? w.procs[j].samples : 0;
		cr_assert_gt(got, 0, "late process %d (pid %d) not sampled", i + 1, pids[i]);
	}
	cpu_window_free(&w);

	/* More live processes than the map holds. */
	for (int i = 0; i < MAP_SIZE + 2; i++) {
		live[i] = start_short(churn, "3s", "10ms");
		sleep_ms(20);
		if (cpu_session_add_target(s, live[i], &err) == -ENOSPC)
			refused++;
	}
	cr_assert_eq(refused, 2);
	cr_assert_eq(cpu_session_cut(s, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(w.stats.map_full, 2);
	cpu_window_free(&w);
	for (int i = 0; i < MAP_SIZE + 2; i++)
		cr_assert_geq(wait_exit_code(live[i]), 0);
	cpu_session_close(s);
}

/* Defect 5, the one-shot: --all-go with a target map of 2 and 4 Go processes of ours (more
 * on the host perhaps): the processes it could not profile are counted and said in the
 * profile's comments. */
Test(cpu_hardening, oneshot_map_full, .timeout = 120)
{
	struct cpu_config cfg = {
		.all_go = true, .duration_ns = 3000000000ULL, .frequency = FREQ, .max_targets = 2};
	struct gs_error err = {0};
	struct cpu_stats st;
	struct profile *prof;
	char churn[1024], dir[256], file[512];
	pid_t pids[4];
	struct traces tr;

	GOTARGET_BUILD_OR_SKIP(churn, "churn", TOOLCHAIN, "default");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	for (int i = 0; i < 4; i++)
		pids[i] = start_short(churn, "8s", "10ms");
	sleep_ms(300);
	cr_assert_eq(cpu_capture(&cfg, &prof, &st, &err), 0, "%s", err.msg);
	cr_log_info("oneshot_map_full: %u not profiled\n", st.not_profiled);
	cr_assert_geq(st.not_profiled, 2);
	snprintf(file, sizeof(file), "%s/full.pb.gz", dir);
	cr_assert_eq(profile_write_file(prof, file, &err), 0, "%s", err.msg);
	profile_free(prof);
	load(file, &tr);
	cr_assert(tr.header && strstr(tr.header, "processes not profiled: target map full"),
		  "no comment: %s", tr.header ? tr.header : "");
	traces_free(&tr);
	for (int i = 0; i < 4; i++) {
		kill(pids[i], SIGKILL);
		cr_assert_geq(wait_exit_code(pids[i]), 0);
	}
}

static long status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	}
	fclose(f);
	return v;
}

static int count_maps(pid_t pid)
{
	char path[64], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strchr(line, '\n') != NULL;
	fclose(f);
	return n;
}

#define CHURN_SECONDS 60
#define NBUSY 4
#define NCHURN 8

/* One churner: runs fresh copies of churn (1 s each) until stop exists. */
static void churner(const char *churn, const char *dir, int id, const char *stop)
{
	char copy[512], cmd[2048];

	for (int n = 0; access(stop, F_OK) != 0; n++) {
		snprintf(copy, sizeof(copy), "%s/churn-%d-%d", dir, id, n);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", churn, copy);
		if (system(cmd) != 0)
			_exit(1);
		cr_assert_geq(wait_exit_code(start_short(copy, "1s", "20ms")), 0);
		unlink(copy);
	}
	_exit(0);
}

/* Defect 6: before the fix every exited process kept its binaries (and their mappings)
 * until the end of the capture: 8 churners x 1 run/s x 40 s = 320 more binaries mapped.
 * Bound: what may grow from 20 s to the end is the profile (samples with new pid labels,
 * locations of new images: a few hundred bytes per process, < 400 processes) and the
 * symbolizer's cache of unreferenced binaries, full after 20 s (64 binaries by default, 160
 * runs by then) so flat: RSS may grow 4 MB, mappings 16 (malloc arenas, slack). */
Test(cpu_hardening, churn_rss, .timeout = 240)
{
	char churn[1024], dir[256], out[512], stop[512], dur[16];
	pid_t busy[NBUSY], churners[NCHURN], gs;
	long rss20, rss_end, maps20, maps_end;

	GOTARGET_BUILD_OR_SKIP(churn, "churn", TOOLCHAIN, "default");
	cr_assert(test_tmpdir(dir, sizeof(dir)));
	snprintf(out, sizeof(out), "%s/churn.pb.gz", dir);
	snprintf(stop, sizeof(stop), "%s/stop", dir);
	snprintf(dur, sizeof(dur), "%ds", CHURN_SECONDS);
	for (int i = 0; i < NBUSY; i++) {
		char *argv[] = {churn, "-mode", "busy", "-duty", "0.02", "-duration", "90s", NULL};

		busy[i] = fork();
		cr_assert_geq(busy[i], 0);
		if (busy[i] == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
	}
	for (int i = 0; i < NCHURN; i++) {
		churners[i] = fork();
		cr_assert_geq(churners[i], 0);
		if (churners[i] == 0)
			churner(churn, dir, i, stop);
	}
	{
		char *argv[] = {(char *)goscope_bin(),
				"cpu",
				"--all-go",
				"--duration",
				dur,
				"-o",
				out,
				NULL};

		gs = start_goscope(argv);
	}
	sleep_ms(20000);
	rss20 = status_kb(gs, "VmRSS");
	maps20 = count_maps(gs);
	sleep_ms((CHURN_SECONDS - 22) * 1000);
	rss_end = status_kb(gs, "VmRSS");
	maps_end = count_maps(gs);
	close(open(stop, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	cr_assert_eq(wait_exit_code(gs), 0);
	for (int i = 0; i < NCHURN; i++)
		cr_assert_geq(wait_exit_code(churners[i]), 0);
	for (int i = 0; i < NBUSY; i++) {
		kill(busy[i], SIGKILL);
		cr_assert_geq(wait_exit_code(busy[i]), 0);
	}
	cr_log_info("churn_rss: RSS %ld -> %ld kB, mappings %ld -> %ld\n", rss20, rss_end, maps20,
		    maps_end);
	cr_assert_gt(rss20, 0);
	cr_assert_leq(rss_end - rss20, 4096, "RSS grew %ld kB under churn", rss_end - rss20);
	cr_assert_leq(maps_end - maps20, 16, "mappings grew %ld under churn", maps_end - maps20);
}
