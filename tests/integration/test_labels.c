/* test_labels.c — pprof labels on goscope's CPU and block samples, for real, against the
 * program's own runtime/pprof, for every Go toolchain (1.19-1.23 keep label sets in a map,
 * 1.24+ in a slice), default and stripped builds.
 *
 * tests/go/labels splits CPU work between label sets with known ratios (pprof.Do in worker
 * goroutines) and profiles itself with runtime/pprof. All 14 builds run at once, sampled by
 * one `goscope cpu` (one BPF load for every target) and, for the 7 default builds, one
 * `goscope block` each while a goroutine under work=blocker sleeps in a loop. Then, per
 * target and pooled over all targets: each label set's share of the samples in goscope's
 * profile is compared with its share in runtime/pprof's.
 *
 * The shares compared are those of each label set among the samples that have labels. Their
 * noise floor is computed from the sample counts each run got: under "same distribution"
 * the difference of a share p between profiles of na and nb samples has sd
 * sqrt(p(1-p)(1/na + 1/nb)) (p pooled from both); shares must agree within SHARE_SIGMAS of
 * that, per target (~170 runtime/pprof samples each: sd 2-3 pp) and pooled (sd ~1 pp).
 *
 * Samples without labels are not a label value: the two samplers do differ there, and by
 * design. goscope samples every instruction of the process, the runtime's own work outside
 * goroutines too (the scheduler on g0, futex waits, signal sending: no g.labels), and
 * reads the labels of the g the thread runs, where runtime/pprof charges system-stack
 * samples to the goroutine the thread was running (m.curg). Measured here: goscope had
 * +0.7 pp more unlabelled samples than runtime/pprof on one target on an idle host, +2.0 pp
 * pooled (+4.1 sd) with the 14 targets sharing 2 CPUs, up to +3.6 pp when other jobs kept
 * the host at load average 28 (more scheduling, more preemption signals). The excess is
 * bounded by UNLABELLED_EXCESS, pooled, and per target by that plus SHARE_SIGMAS of its
 * noise (6-14 pp): a target whose labels are lost on half its samples (+45 pp), or lost
 * everywhere (no labelled samples), fails.
 *
 * Cost in `make test`: the builds (cached by gobuild.sh) plus one 8 s run (~12 s). */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goscope/golabels.h"
#include "tests/helpers/agentrun.h"
#include "tests/helpers/gotarget.h"
#include "tests/helpers/pprof_decode.h"
#include "tests/helpers/run.h"

#define NMODES 2
#define MAX_TARGETS 16
#define RUN_SECONDS "8s"
#define PPROF_HZ "500"
#define GOSCOPE_HZ "499"
/* Time for the goscope processes to set up (BPF load, probes) before the work starts. */
#define SETUP_US 1500000
#define SHARE_SIGMAS 4.0
/* goscope's unlabelled share minus runtime/pprof's, pooled (see the top). */
#define UNLABELLED_EXCESS 0.06
/* Labelled samples a target (pooled: all targets) needs for the comparison to mean
 * anything; the noise bound follows the counts, these only refuse empty runs (a host so
 * loaded that each target got almost no CPU). */
#define MIN_SAMPLES 30
#define MIN_POOLED_SAMPLES 300
/* Block: parks of the sleeping goroutine expected in an 8 s run (it sleeps 2 ms each). */
#define MIN_BLOCKER_PARKS 100

static const char *const modes[NMODES] = {"default", "stripped"};

/* The label sets of tests/go/labels, by their work label ("many" has 11 labels, goscope
 * keeps 10: in a map (<= 1.23) the work label may be the one left out, so a set is also
 * known by its x* keys); NCAT - 1 is samples without labels. */
static const char *const cats[] = {"a", "b", "c", "long", "many", "blocker", "(none)"};
#define NCAT (sizeof(cats) / sizeof(cats[0]))

struct target {
	char toolchain[8];
	const char *mode;
	char path[4096];
	char goprof[256];
	char blockprof[256];
	struct gotarget t;
	pid_t pid;	 /* the target's (gotarget_stop forgets it) */
	pid_t block_pid; /* goscope block, 0: none */
	double go[NCAT], gs[NCAT];
};

static const char *str(const struct pprof_doc *d, uint64_t i)
{
	return i < d->nstrings ? d->strings[i] : "";
}

/* The category of a sample from its labels; *pid set from a numeric pid label. */
static size_t category(const struct pprof_doc *d, const struct pprof_sample *s, int64_t *pid)
{
	size_t cat = NCAT - 1;
	bool many = false;

	for (size_t i = 0; i < s->nlabels; i++) {
		const char *k = str(d, s->labels[i].key), *v = str(d, s->labels[i].str);

		if (strcmp(k, "pid") == 0 && pid)
			*pid = s->labels[i].num;
		if (k[0] == 'x' && strlen(k) == 3)
			many = true;
		if (strcmp(k, "work") == 0) {
			for (size_t c = 0; c < NCAT - 1; c++)
				if (strcmp(v, cats[c]) == 0)
					cat = c;
			cr_assert_neq(cat, NCAT - 1, "unknown work label '%s'", v);
		}
	}
	return cat == NCAT - 1 && many ? 4 : cat;
}

/* Sample counts (first value) per category of the runtime/pprof profile at path. */
static void go_counts(const char *path, double *counts)
{
	struct pprof_doc d;
	char why[512];

	cr_assert_eq(pprof_decode_file(path, &d, why, sizeof(why)), 0, "%s: %s", path, why);
	for (size_t i = 0; i < d.nsamples; i++)
		counts[category(&d, &d.samples[i], NULL)] += (double)d.samples[i].values[0];
	pprof_doc_free(&d);
}

/* goscope's profile: counts per target (by pid), and the truncation checks: the long set's
 * key and value cut at the limits, no more than GS_LABELS_MAX labels of the program's, and
 * the cuts counted in the profile's comments. */
static void goscope_counts(const char *path, struct target *tg, size_t n)
{
	bool long_cut = false, counted = false;
	struct pprof_doc d;
	char why[512], key[GS_LABEL_KEY_LEN + 1], value[GS_LABEL_VALUE_LEN + 1];

	memset(key, 'K', GS_LABEL_KEY_LEN);
	key[0] = 'k';
	key[GS_LABEL_KEY_LEN] = '\0';
	memset(value, 'v', GS_LABEL_VALUE_LEN);
	value[GS_LABEL_VALUE_LEN] = '\0';
	cr_assert_eq(pprof_decode_file(path, &d, why, sizeof(why)), 0, "%s: %s", path, why);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		int64_t pid = -1;
		size_t cat = category(&d, s, &pid), own = 0;

		for (size_t j = 0; j < s->nlabels; j++) {
			const char *k = str(&d, s->labels[j].key), *v = str(&d, s->labels[j].str);

			if (strcmp(k, "pid") && strcmp(k, "comm"))
				own++;
			cr_assert_leq(strlen(k), GS_LABEL_KEY_LEN, "key '%s'", k);
			cr_assert_leq(strlen(v), GS_LABEL_VALUE_LEN, "value '%s'", v);
			if (strcmp(k, key) == 0 && strcmp(v, value) == 0)
				long_cut = true;
		}
		cr_assert_leq(own, GS_LABELS_MAX);
		for (size_t t = 0; t < n; t++)
			if (tg[t].pid == pid)
				tg[t].gs[cat] += (double)s->values[0];
	}
	for (size_t i = 0; i < d.ncomments; i++) {
		unsigned long long labelled, cut;

		if (sscanf(str(&d, d.comments[i]),
			   "goscope cpu: %llu samples with pprof labels, %llu label sets truncated",
			   &labelled, &cut) == 2)
			counted = labelled > 0 && cut > 0;
	}
	pprof_doc_free(&d);
	cr_assert(long_cut, "no sample with the long key and value cut at %d and %d bytes",
		  GS_LABEL_KEY_LEN, GS_LABEL_VALUE_LEN);
	cr_assert(counted, "the profile's comments do not count the truncated label sets");
}

/* The sd of the difference between shares a/na and b/nb of one distribution. */
static double share_sd(double a, double na, double b, double nb)
{
	double p = (a + b) / (na + nb);

	return sqrt(p * (1 - p) * (1 / na + 1 / nb));
}

/* Shares of each label set among the labelled samples of both profiles agree within the
 * noise of their sample counts; goscope's share of samples without labels exceeds runtime/
 * pprof's by less than UNLABELLED_EXCESS (per target: plus the noise). */
static void compare(const char *what, const double *go, const double *gs, bool pooled)
{
	double na = 0, nb = 0, ga, gb, ta = go[NCAT - 1], tb = gs[NCAT - 1];

	for (size_t c = 0; c < NCAT - 1; c++) {
		na += go[c];
		nb += gs[c];
	}
	cr_assert_geq(na, pooled ? MIN_POOLED_SAMPLES : MIN_SAMPLES,
		      "%s: runtime/pprof has %.0f samples", what, na);
	cr_assert_geq(nb, pooled ? MIN_POOLED_SAMPLES : MIN_SAMPLES, "%s: goscope has %.0f samples",
		      what, nb);
	ga = ta + na;
	gb = tb + nb;
	ta = ta / (ta + na);
	tb = tb / (tb + nb);
	cr_log_info("%s without labels: runtime/pprof %.1f%% goscope %.1f%%", what, ta * 100,
		    tb * 100);
	cr_expect_leq(
		tb - ta,
		UNLABELLED_EXCESS +
			(pooled ? 0 : SHARE_SIGMAS * share_sd(go[NCAT - 1], ga, gs[NCAT - 1], gb)),
		"%s: %.1f%% of goscope's samples have no labels, %.1f%% of "
		"runtime/pprof's",
		what, tb * 100, ta * 100);
	for (size_t c = 0; c < NCAT - 1; c++) {
		double pa = go[c] / na, pb = gs[c] / nb, sd = share_sd(go[c], na, gs[c], nb);

		cr_log_info("%s %-7s runtime/pprof %5.1f%% goscope %5.1f%% (%+.1f sd)", what,
			    cats[c], pa * 100, pb * 100, sd > 0 ? (pb - pa) / sd : 0);
		cr_expect_leq(fabs(pa - pb), SHARE_SIGMAS * sd,
			      "%s: work=%s is %.1f%% of runtime/pprof's %.0f samples, %.1f%% of "
			      "goscope's %.0f (noise sd %.2f pp)",
			      what, cats[c], pa * 100, na, pb * 100, nb, sd * 100);
	}
}

/* Block samples carry the labels of the goroutine that blocked: those whose stack is in
 * main.blocker have work=blocker, no other has a work label. */
static void check_block(const struct target *t)
{
	double blocker = 0;
	struct pprof_doc d;
	char why[512];

	cr_assert_eq(pprof_decode_file(t->blockprof, &d, why, sizeof(why)), 0, "%s: %s",
		     t->blockprof, why);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];
		bool in_blocker = false;
		const char *work = NULL;

		for (size_t j = 0; j < s->nlocs; j++) {
			for (size_t l = 0; l < d.nlocs; l++) {
				if (d.locs[l].id != s->locs[j])
					continue;
				for (size_t k = 0; k < d.locs[l].nlines; k++) {
					uint64_t fn = d.locs[l].lines[k].fn;

					for (size_t f = 0; f < d.nfuncs; f++)
						if (d.funcs[f].id == fn &&
						    strstr(str(&d, d.funcs[f].name),
							   "main.blocker"))
							in_blocker = true;
				}
			}
		}
		for (size_t j = 0; j < s->nlabels; j++)
			if (strcmp(str(&d, s->labels[j].key), "work") == 0)
				work = str(&d, s->labels[j].str);
		if (in_blocker) {
			cr_assert(work && strcmp(work, "blocker") == 0,
				  "go%s: a block in main.blocker has work=%s", t->toolchain,
				  work ? work : "(none)");
			blocker += (double)s->values[0];
		} else {
			cr_assert_null(work, "go%s: a block outside main.blocker has work=%s",
				       t->toolchain, work);
		}
	}
	pprof_doc_free(&d);
	cr_assert_geq(blocker, MIN_BLOCKER_PARKS, "go%s: %.0f blocks in main.blocker", t->toolchain,
		      blocker);
}

Test(labels, cpu_and_block_every_toolchain, .timeout = 300)
{
	static struct target tg[MAX_TARGETS];
	char dir[64], gsprof[256], line[256], pid_args[MAX_TARGETS][16];
	char *argv[8 + 2 * MAX_TARGETS];
	double go_all[NCAT] = {0}, gs_all[NCAT] = {0};
	size_t n = 0, a = 0;
	pid_t gs;
	int rc;

	cr_assert(test_tmpdir(dir, sizeof(dir)));
	for (size_t v = 0; gotarget_toolchains[v]; v++) {
		for (size_t m = 0; m < NMODES; m++) {
			struct target *t = &tg[n];
			char why[1024];

			rc = gotarget_build("labels", gotarget_toolchains[v], modes[m], t->path,
					    sizeof(t->path), why, sizeof(why));
			if (rc == GOTARGET_SKIP)
				continue;
			cr_assert_eq(rc, 0, "building labels go%s %s: %s", gotarget_toolchains[v],
				     modes[m], why);
			snprintf(t->toolchain, sizeof(t->toolchain), "%s", gotarget_toolchains[v]);
			t->mode = modes[m];
			n++;
		}
	}
	if (n == 0)
		cr_skip_test("no Go toolchain installed");

	/* Every target waits at its gate; runtime/pprof starts when the gate opens. */
	for (size_t i = 0; i < n; i++) {
		struct target *t = &tg[i];
		bool block = strcmp(t->mode, "default") == 0;
		char *targv[] = {t->path,	"-gate",   "-duration",
				 RUN_SECONDS,	"-hz",	   PPROF_HZ,
				 "-cpuprofile", t->goprof, block ? "-block" : NULL,
				 NULL};

		snprintf(t->goprof, sizeof(t->goprof), "%s/go-%zu.pprof", dir, i);
		snprintf(t->blockprof, sizeof(t->blockprof), "%s/block-%zu.pb.gz", dir, i);
		cr_assert_eq(gotarget_start(&t->t, t->path, targv), 0);
		cr_assert_gt(gotarget_read_line(&t->t, line, sizeof(line), 10000), 0);
		cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
		t->pid = t->t.pid;
		snprintf(pid_args[i], sizeof(pid_args[i]), "%d", t->t.pid);
		if (block) {
			char *bargv[] = {(char *)goscope_bin(), "block",      "--pid",
					 pid_args[i],		"--duration", "0",
					 "--max-overhead",	"100",	      "-o",
					 t->blockprof,		NULL};

			t->block_pid = spawn_argv(bargv);
			cr_assert_geq(t->block_pid, 0);
		}
	}
	argv[a++] = (char *)goscope_bin();
	argv[a++] = "cpu";
	for (size_t i = 0; i < n; i++) {
		argv[a++] = "--pid";
		argv[a++] = pid_args[i];
	}
	snprintf(gsprof, sizeof(gsprof), "%s/goscope.pb.gz", dir);
	argv[a++] = "--duration";
	argv[a++] = "0"; /* ends when every target has exited */
	argv[a++] = "--frequency";
	argv[a++] = GOSCOPE_HZ;
	argv[a++] = "-o";
	argv[a++] = gsprof;
	argv[a] = NULL;
	gs = spawn_argv(argv);
	cr_assert_geq(gs, 0);
	usleep(SETUP_US);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(write(tg[i].t.stdin_fd, "go\n", 3), 3);
	for (size_t i = 0; i < n; i++) {
		while (gotarget_read_line(&tg[i].t, line, sizeof(line), 60000) > 0 &&
		       strncmp(line, "done", 4))
			;
		cr_assert_eq(gotarget_stop(&tg[i].t, 10000), 0, "go%s %s", tg[i].toolchain,
			     tg[i].mode);
	}
	rc = wait_exit_code(gs);
	cr_assert_eq(rc, 0, "goscope cpu exited %d", rc);
	for (size_t i = 0; i < n; i++) {
		if (tg[i].block_pid) {
			rc = wait_exit_code(tg[i].block_pid);
			cr_assert_eq(rc, 0, "goscope block (go%s) exited %d", tg[i].toolchain, rc);
		}
	}

	goscope_counts(gsprof, tg, n);
	for (size_t i = 0; i < n; i++) {
		char what[32];

		go_counts(tg[i].goprof, tg[i].go);
		snprintf(what, sizeof(what), "go%s %s", tg[i].toolchain, tg[i].mode);
		compare(what, tg[i].go, tg[i].gs, false);
		for (size_t c = 0; c < NCAT; c++) {
			go_all[c] += tg[i].go[c];
			gs_all[c] += tg[i].gs[c];
		}
		if (tg[i].block_pid)
			check_block(&tg[i]);
	}
	compare("all toolchains", go_all, gs_all, true);
}

/* ---- a label with an empty key ----
 *
 * pprof.Labels("", v) is legal Go. A profile label needs a key, and goscope's profile model
 * refuses one without: before the fix every capture of such a program failed ("profile: label
 * without a key"), and so did the agent, which exited. The same happened when BPF could not
 * read a key (length 0): an agent in CI exited on one. Now the keyless label is left out and
 * the rest of the set kept: by `goscope cpu`, `goscope block`, `goscope goroutines --format
 * pprof` and the agent (CPU and block windows), for the map (Go <= 1.23) and slice (1.24+)
 * layouts. */

#define KEYLESS_TARGETS 2
#define KEYLESS_RUN "60s"
#define KEYLESS_WINDOWS 3
#define KEYLESS_WAIT_MS 30000

/* Samples of the profile at path whose work label is work (NULL: with any work label); fails
 * on a label without a key. */
static double work_samples(const char *path, const char *work)
{
	struct pprof_doc d;
	char why[512];
	double n = 0;

	cr_assert_eq(pprof_decode_file(path, &d, why, sizeof(why)), 0, "%s: %s", path, why);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct pprof_sample *s = &d.samples[i];

		for (size_t j = 0; j < s->nlabels; j++) {
			const char *k = str(&d, s->labels[j].key);

			cr_assert(k[0], "%s: a label without a key (value '%s')", path,
				  str(&d, s->labels[j].str));
			if (strcmp(k, "work") == 0 &&
			    (!work || strcmp(str(&d, s->labels[j].str), work) == 0))
				n += (double)s->values[0];
		}
	}
	pprof_doc_free(&d);
	return n;
}

#define KEYLESS_MAX_ARGS 16

/* Runs `goscope ARGS... -o DIR/NAME-I.pb.gz` (ARGS NULL-terminated), which must succeed, and
 * returns work_samples() of what it wrote. */
static double goscope_work(const char *dir, const char *name, size_t i, const char *work, ...)
{
	char *argv[KEYLESS_MAX_ARGS], file[256];
	size_t n = 0;
	va_list ap;
	pid_t p;
	int rc;

	snprintf(file, sizeof(file), "%s/%s-%zu.pb.gz", dir, name, i);
	argv[n++] = (char *)goscope_bin();
	va_start(ap, work);
	for (char *x; (x = va_arg(ap, char *)) && n < KEYLESS_MAX_ARGS - 3;)
		argv[n++] = x;
	va_end(ap);
	argv[n++] = "-o";
	argv[n++] = file;
	argv[n] = NULL;
	p = spawn_argv(argv);
	cr_assert_geq(p, 0);
	rc = wait_exit_code(p);
	cr_assert_eq(rc, 0, "goscope %s exited %d", argv[1], rc);
	return work_samples(file, work);
}

Test(labels, keyless_label_left_out, .timeout = 180)
{
	/* Go 1.23: a map of labels (the goroutine dump reads no such labels, see
	 * goroutines.c); 1.27: a slice. */
	static const char *const want[KEYLESS_TARGETS] = {"1.23", "1.27"};
	const char *ver[KEYLESS_TARGETS];
	struct gotarget tg[KEYLESS_TARGETS];
	char dir[64], data[128], path[KEYLESS_TARGETS][4096], pid[KEYLESS_TARGETS][16];
	char line[256], args[2 * 4096 + 128], why[1024];
	struct agentrun a;
	size_t n = 0, al = 0;
	int rc;

	cr_assert(test_tmpdir(dir, sizeof(dir)));
	for (size_t v = 0; v < KEYLESS_TARGETS; v++) {
		rc = gotarget_build("labels", want[v], "default", path[n], sizeof(path[n]), why,
				    sizeof(why));
		if (rc == GOTARGET_SKIP)
			continue;
		cr_assert_eq(rc, 0, "building labels go%s: %s", want[v], why);
		ver[n++] = want[v];
	}
	if (n == 0)
		cr_skip_test("neither Go 1.23 nor 1.27 installed");
	al = (size_t)snprintf(args, sizeof(args), "--window 1s --block");
	for (size_t i = 0; i < n; i++) {
		char *targv[] = {path[i], "-emptykey", "-block", "-duration", KEYLESS_RUN, NULL};

		cr_assert_eq(gotarget_start(&tg[i], path[i], targv), 0);
		cr_assert_gt(gotarget_read_line(&tg[i], line, sizeof(line), 10000), 0);
		snprintf(pid[i], sizeof(pid[i]), "%d", tg[i].pid);
		al += (size_t)snprintf(args + al, sizeof(args) - al, " --include exe=%s", path[i]);
	}

	snprintf(data, sizeof(data), "%s/data", dir);
	cr_assert_eq(agentrun_start(&a, NULL, data, args, true, why, sizeof(why)), 0, "%s", why);

	for (size_t i = 0; i < n; i++) {
		cr_assert_gt(goscope_work(dir, "cpu", i, "emptykey", "cpu", "--pid", pid[i],
					  "--duration", "2", NULL),
			     0, "go%s: no work=emptykey sample", ver[i]);
		cr_assert_gt(goscope_work(dir, "block", i, "blocker", "block", "--pid", pid[i],
					  "--duration", "2", "--max-overhead", "100", NULL),
			     0, "go%s: no work=blocker block", ver[i]);
		/* Go 1.23: no labels in the dump, and no keyless one all the same. */
		if (goscope_work(dir, "goroutines", i, "blocker", "goroutines", "--pid", pid[i],
				 "--format", "pprof", NULL) == 0)
			cr_assert_str_eq(ver[i], "1.23", "go%s: no work=blocker goroutine", ver[i]);
	}

	/* The agent profiled them all along: still running, and its windows have the labels. */
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = agentrun_mono_ms();
		char cmd[512];
		char *out = NULL;
		size_t rows = 0;

		snprintf(cmd, sizeof(cmd), "%s export --data-dir %s --pid %s --type cpu --list",
			 goscope_bin(), data, pid[i]);
		while (agentrun_mono_ms() - t0 < KEYLESS_WAIT_MS) {
			rows = 0;
			free(out);
			out = NULL;
			if (run_capture(cmd, 0, &out, NULL) == 0)
				for (char *p = out; p && (p = strchr(p, '\n')); p++)
					rows++;
			if (rows > KEYLESS_WINDOWS)
				break;
			cr_assert_eq(waitpid(a.pid, &rc, WNOHANG), 0,
				     "the agent exited (status %d): %s", rc, agentrun_log(&a));
			agentrun_sleep_ms(500);
		}
		free(out);
		cr_assert_gt(rows, KEYLESS_WINDOWS, "go%s: %zu CPU windows stored: %s", ver[i],
			     rows, agentrun_log(&a));
	}
	rc = agentrun_stop(&a, SIGTERM, 30000);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "agent status %d: %s", rc,
		  agentrun_log(&a));
	for (size_t i = 0; i < n; i++) {
		cr_assert_gt(goscope_work(dir, "agent-cpu", i, "emptykey", "export", "--data-dir",
					  data, "--pid", pid[i], "--type", "cpu", NULL),
			     0, "go%s: agent: no work=emptykey", ver[i]);
		cr_assert_gt(goscope_work(dir, "agent-block", i, "blocker", "export", "--data-dir",
					  data, "--pid", pid[i], "--type", "block", NULL),
			     0, "go%s: agent: no work=blocker", ver[i]);
		kill(tg[i].pid, SIGKILL);
		gotarget_stop(&tg[i], 5000);
	}
}
