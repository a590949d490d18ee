/* test_labels.c — the labels of a profiled process (agent/procs/labels.c): container ids from
 * real-looking /proc/PID/cgroup texts of each runtime and cgroup driver (and texts that must not
 * give one), environ lookups on hostile images, proc_labels_read on a fake /proc and on a real
 * child process, the node name, and the --include/--exclude filter. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procs/labels.h"
#include "tests/unit/testutil.h"

#define ID_A "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970"
#define ID_B "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
#define POD_UID_SYSTEMD "pod8d3fc4a1_2b6e_4c1f_9a7d_0e5b3c2a1f90"
#define POD_UID "pod8d3fc4a1-2b6e-4c1f-9a7d-0e5b3c2a1f90"

/* container_id_from_cgroup on a C string; the id or "" when none. */
static const char *cid(const char *text)
{
	static char out[80];
	int rc = container_id_from_cgroup(text, strlen(text), out, sizeof(out));

	cr_assert(rc == 0 || rc == 1);
	cr_assert_eq(rc == 1, out[0] != '\0', "return %d with out '%s'", rc, out);
	return out;
}

Test(container_id, docker_cgroupfs_v1)
{
	cr_assert_str_eq(cid("12:pids:/docker/" ID_A "\n"
			     "11:memory:/docker/" ID_A "\n"
			     "2:cpu,cpuacct:/docker/" ID_A "\n"
			     "1:name=systemd:/docker/" ID_A "\n"
			     "0::/system.slice/containerd.service\n"),
			 ID_A);
}

Test(container_id, docker_systemd_v1_and_v2)
{
	cr_assert_str_eq(cid("10:devices:/system.slice/docker-" ID_B ".scope\n"
			     "1:name=systemd:/system.slice/docker-" ID_B ".scope\n"),
			 ID_B);
	cr_assert_str_eq(cid("0::/system.slice/docker-" ID_B ".scope\n"), ID_B);
	/* Docker's cgroupfs driver under v2 (no trailing newline: the bound may cut it). */
	cr_assert_str_eq(cid("0::/docker/" ID_A), ID_A);
}

Test(container_id, containerd_kubernetes)
{
	/* systemd driver */
	cr_assert_str_eq(cid("0::/kubepods.slice/kubepods-burstable.slice/"
			     "kubepods-burstable-" POD_UID_SYSTEMD ".slice/cri-containerd-" ID_A
			     ".scope\n"),
			 ID_A);
	/* cgroupfs driver, v1 and v2 */
	cr_assert_str_eq(cid("12:memory:/kubepods/burstable/" POD_UID "/" ID_B "\n"
			     "11:cpuset:/kubepods/burstable/" POD_UID "/" ID_B "\n"),
			 ID_B);
	cr_assert_str_eq(cid("0::/kubepods/besteffort/" POD_UID "/" ID_A "\n"), ID_A);
	/* containerd without SystemdCgroup under a systemd kubelet */
	cr_assert_str_eq(cid("0::/system.slice/containerd.service/"
			     "kubepods-besteffort-" POD_UID_SYSTEMD ".slice:cri-containerd:" ID_B
			     "\n"),
			 ID_B);
	/* plain containerd (ctr run), namespace "default" */
	cr_assert_str_eq(cid("0::/default/" ID_A "\n"), ID_A);
}

Test(container_id, crio)
{
	cr_assert_str_eq(cid("0::/kubepods.slice/kubepods-besteffort.slice/"
			     "kubepods-besteffort-" POD_UID_SYSTEMD ".slice/crio-" ID_A ".scope\n"),
			 ID_A);
	cr_assert_str_eq(cid("11:memory:/kubepods/burstable/" POD_UID "/crio-" ID_B "\n"), ID_B);
	/* conmon, the container's monitor, is not the container */
	cr_assert_str_eq(cid("0::/kubepods.slice/kubepods-besteffort.slice/"
			     "kubepods-besteffort-" POD_UID_SYSTEMD ".slice/crio-conmon-" ID_A
			     ".scope\n"),
			 "");
}

Test(container_id, podman)
{
	cr_assert_str_eq(cid("0::/machine.slice/libpod-" ID_A ".scope\n"), ID_A);
	/* nested cgroup: the payload is in a child "container" cgroup */
	cr_assert_str_eq(cid("0::/machine.slice/libpod-" ID_A ".scope/container\n"), ID_A);
	/* rootless, under the user's systemd */
	cr_assert_str_eq(cid("0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
			     "libpod-" ID_B ".scope\n"),
			 ID_B);
	/* cgroupfs manager */
	cr_assert_str_eq(cid("0::/libpod_parent/libpod-" ID_A "\n"), ID_A);
	cr_assert_str_eq(cid("0::/machine.slice/libpod-conmon-" ID_A ".scope\n"), "");
	cr_assert_str_eq(cid("0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
			     "libpod-conmon-" ID_B ".scope\n"),
			 "");
}

Test(container_id, nested_and_preferred)
{
	/* docker in docker: the inner container is the process's */
	cr_assert_str_eq(cid("0::/docker/" ID_A "/docker/" ID_B "\n"), ID_B);
	/* the v2 line wins over v1 lines on a hybrid host */
	cr_assert_str_eq(cid("4:memory:/docker/" ID_A "\n0::/system.slice/docker-" ID_B ".scope\n"),
			 ID_B);
	/* hybrid host whose v2 line is the root: the v1 lines have it */
	cr_assert_str_eq(cid("4:memory:/docker/" ID_A "\n0::/\n"), ID_A);
}

Test(container_id, not_containers)
{
	cr_assert_str_eq(cid(""), "");
	cr_assert_str_eq(cid("0::/\n"), "");
	cr_assert_str_eq(cid("0::/init.scope\n"), "");
	cr_assert_str_eq(cid("0::/system.slice/docker.service\n"), "");
	cr_assert_str_eq(cid("0::/user.slice/user-1000.slice/session-3.scope\n"), "");
	cr_assert_str_eq(cid("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
			     "app-gnome-firefox-4242.scope\n"),
			 "");
	/* 64 hex digits inside a longer token */
	cr_assert_str_eq(cid("0::/system.slice/foo" ID_A "\n"), "");
	cr_assert_str_eq(cid("0::/system.slice/" ID_A "0\n"), "");
	cr_assert_str_eq(cid("0::/system.slice/docker-" ID_A "x.scope\n"), "");
	cr_assert_str_eq(cid("0::/system.slice/my-docker-" ID_A ".scope\n"), "");
	/* 63 digits, and a non-hex digit */
	cr_assert_str_eq(cid("0::/docker/"
			     "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c3842814297"
			     "\n"),
			 "");
	cr_assert_str_eq(cid("0::/docker/"
			     "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c3842814297g"
			     "\n"),
			 "");
	/* an id in the controller field, not in the path; lines without two colons */
	cr_assert_str_eq(cid("3:" ID_A ":/\n" ID_A "\n/docker/" ID_A "\n"), "");
}

Test(container_id, bounded_and_binary)
{
	char text[] = "0::/docker/" ID_A "\n";
	char out[65];
	char junk[300];

	/* A cut before the id's end gives no id; the length bounds the read, not a NUL. */
	cr_assert_eq(container_id_from_cgroup(text, strlen(text) - 10, out, sizeof(out)), 0);
	cr_assert_eq(container_id_from_cgroup(text, strlen(text), out, sizeof(out)), 1);
	cr_assert_str_eq(out, ID_A, "a 65-byte buffer holds the id");
	/* NULs and newlines anywhere do not confuse the walk. */
	memset(junk, 0, sizeof(junk));
	memcpy(junk + 100, text, strlen(text));
	junk[99] = '\n';
	cr_assert_eq(container_id_from_cgroup(junk, sizeof(junk), out, sizeof(out)), 1);
	cr_assert_str_eq(out, ID_A);
	/* The last byte of the id cut off: nothing, even with NULs after it. */
	junk[100 + strlen(text) - 2] = '\0';
	cr_assert_eq(container_id_from_cgroup(junk, sizeof(junk), out, sizeof(out)), 0);
}

Test(environ, lookup)
{
	static const char env[] = "PATH=/usr/bin\0OTEL_SERVICE_NAMEX=no\0XOTEL_SERVICE_NAME=no\0"
				  "OTEL_SERVICE_NAME=checkout=v2\0EMPTY=\0LAST=cut";
	size_t len = sizeof(env) - 1;
	char out[16];

	cr_assert_eq(environ_lookup(env, len, "OTEL_SERVICE_NAME", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "checkout=v2");
	cr_assert_eq(environ_lookup(env, len, "EMPTY", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "");
	cr_assert_eq(environ_lookup(env, len, "LAST", out, sizeof(out)), 1, "unterminated last");
	cr_assert_str_eq(out, "cut");
	cr_assert_eq(environ_lookup(env, len - 1, "LAST", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "cu", "the length bounds the value");
	cr_assert_eq(environ_lookup(env, len, "PATH", out, 5), 1);
	cr_assert_str_eq(out, "/usr", "truncated to out_len - 1");
	cr_assert_eq(environ_lookup(env, len, "HOME", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(environ_lookup(env, len, "OTEL", out, sizeof(out)), 0, "prefix only");
	cr_assert_eq(environ_lookup("", 0, "PATH", out, sizeof(out)), 0);
	cr_assert_eq(environ_lookup("PATH", 4, "PATH", out, sizeof(out)), 0, "no '='");
}

Test(environ, binary_value_kept)
{
	static const char env[] = "GOSCOPE_SERVICE_NAME=a\"b\\\n\x01\xff";
	char out[32];

	cr_assert_eq(environ_lookup(env, sizeof(env) - 1, "GOSCOPE_SERVICE_NAME", out, sizeof(out)),
		     1);
	cr_assert_str_eq(out, "a\"b\\\n\x01\xff", "bytes kept as they are; writers escape");
}

/* ---- proc_labels_read on a fake /proc ---- */

static char root[64];

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* <root>/<pid>/ with stat (start time start) and, when not NULL, environ and cgroup. */
static void fake_proc(int pid, unsigned long long start, const void *env, size_t env_len,
		      const char *cgroup)
{
	char path[256], stat[256];

	snprintf(path, sizeof(path), "%s/%d", root, pid);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(stat, sizeof(stat),
		 "%d (etcd) S 1 %d %d 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 8 0 %llu 1000 50 "
		 "18446744073709551615\n",
		 pid, pid, pid, start);
	snprintf(path, sizeof(path), "%s/%d/stat", root, pid);
	write_file(path, stat, strlen(stat));
	if (env) {
		snprintf(path, sizeof(path), "%s/%d/environ", root, pid);
		write_file(path, env, env_len);
	}
	if (cgroup) {
		snprintf(path, sizeof(path), "%s/%d/cgroup", root, pid);
		write_file(path, cgroup, strlen(cgroup));
	}
}

static struct goproc etcd_goproc(int pid, const char *exe)
{
	struct goproc g = {.pid = pid};

	snprintf(g.comm, sizeof(g.comm), "etcd");
	snprintf(g.exe, sizeof(g.exe), "%s", exe);
	snprintf(g.go_version, sizeof(g.go_version), "go1.23.4");
	snprintf(g.path, sizeof(g.path), "go.etcd.io/etcd/server/v3");
	snprintf(g.mod_path, sizeof(g.mod_path), "go.etcd.io/etcd/server/v3");
	return g;
}

static void setup(void)
{
	tu_mkdtemp(root, sizeof(root), "labels");
}

static void teardown(void)
{
	tu_rmtree(root);
}

TestSuite(labels, .init = setup, .fini = teardown);

Test(labels, service_from_env_and_fallback)
{
	static const char both[] = "OTEL_SERVICE_NAME=otel\0GOSCOPE_SERVICE_NAME=gs\0";
	static const char otel[] = "HOME=/\0OTEL_SERVICE_NAME=otel\0";
	static const char empty[] = "GOSCOPE_SERVICE_NAME=\0OTEL_SERVICE_NAME=\0";
	struct goproc g = etcd_goproc(10, "/usr/bin/etcd");
	struct gs_error err = {0};
	struct proc_labels l;
	char dir[256];

	fake_proc(10, 4242, both, sizeof(both) - 1, "0::/system.slice/docker-" ID_A ".scope\n");
	cr_assert_eq(proc_labels_read(root, &g, "node-1", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "gs");
	cr_assert_eq(l.service_from, SERVICE_FROM_GOSCOPE_ENV);
	cr_assert_eq(l.pid, 10);
	cr_assert_eq(l.start_ticks, 4242);
	cr_assert_str_eq(l.comm, "etcd");
	cr_assert_str_eq(l.exe, "/usr/bin/etcd");
	cr_assert_str_eq(l.go_version, "go1.23.4");
	cr_assert_str_eq(l.module, "go.etcd.io/etcd/server/v3");
	cr_assert_str_eq(l.node, "node-1");
	cr_assert_str_eq(l.container_id, ID_A);
	cr_assert_str_eq(l.cgroup, "/system.slice/docker-" ID_A ".scope");

	g.pid = 11;
	fake_proc(11, 1, otel, sizeof(otel) - 1, "12:memory:/user.slice\n0::/init.scope\n");
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "otel");
	cr_assert_eq(l.service_from, SERVICE_FROM_OTEL_ENV);
	cr_assert_str_eq(l.container_id, "");
	cr_assert_str_eq(l.cgroup, "/init.scope", "the v2 path");

	/* Empty values fall back to the executable's base name, not the module's "v3". */
	g.pid = 12;
	fake_proc(12, 1, empty, sizeof(empty) - 1, "3:cpu:/a\n4:memory:/b\n");
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "etcd");
	cr_assert_eq(l.service_from, SERVICE_FROM_EXE);
	cr_assert_str_eq(l.cgroup, "/a", "no v2 line: the first v1 path");

	/* Unreadable environ and cgroup (EISDIR here; EACCES for another user's process
	 * without CAP_SYS_PTRACE): still labels. A replaced binary's link. */
	g = etcd_goproc(13, "/opt/etcd/bin/etcd-3.5 (deleted)");
	fake_proc(13, 1, NULL, 0, NULL);
	snprintf(dir, sizeof(dir), "%s/13/environ", root);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/13/cgroup", root);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "etcd-3.5");
	cr_assert_str_eq(l.exe, "/opt/etcd/bin/etcd-3.5 (deleted)");
	cr_assert_str_eq(l.cgroup, "");
}

Test(labels, environ_read_is_bounded)
{
	size_t big = 1u << 20, pos;
	char *env = malloc(big);
	struct goproc g = etcd_goproc(20, "/usr/bin/etcd");
	struct gs_error err = {0};
	struct proc_labels l;
	static const char var[] = "GOSCOPE_SERVICE_NAME=far";

	cr_assert_not_null(env);
	/* 1 MiB of "X=xxxx...\0" entries, the variable at 200 KiB for pid 20, at 900 KiB for
	 * pid 21: the first is read, the second is past the bound. */
	memset(env, 'x', big);
	for (pos = 0; pos + 1000 < big; pos += 1000) {
		env[pos] = 'X';
		env[pos + 1] = '=';
		env[pos + 999] = '\0';
	}
	memcpy(env + 200000, var, sizeof(var));
	fake_proc(20, 1, env, big, "");
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "far");
	memset(env + 200000, 'x', sizeof(var));
	memcpy(env + 900000, var, sizeof(var));
	g.pid = 21;
	fake_proc(21, 1, env, big, "");
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), 0, "%s", err.msg);
	cr_assert_str_eq(l.service, "etcd", "beyond 256 KiB is not read");
	free(env);
}

Test(labels, gone)
{
	struct goproc g = etcd_goproc(30, "/usr/bin/etcd");
	struct gs_error err = {0};
	struct proc_labels l;

	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), -ESRCH);
	cr_assert_eq(err.code, -ESRCH);
	/* Gone between the stat and the environ read (ENOENT there). */
	fake_proc(31, 1, NULL, 0, "0::/\n");
	g.pid = 31;
	cr_assert_eq(proc_labels_read(root, &g, "n", &l, &err), -ESRCH);
}

/* A real process started with its own environment. */
Test(labels, real_child)
{
	char *const argv[] = {"sleep", "10", NULL};
	char *const envp[] = {"A=1", "OTEL_SERVICE_NAME=payments", NULL};
	struct gs_error err = {0};
	struct proc_labels l;
	struct goproc g = {0};
	char path[64], envpath[64];
	pid_t pid = fork();
	ssize_t n;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	/* Wait for the exec to complete: the exe link changes from this test binary to sleep
	 * early in execve, the new environment is in place only at its end (the agent reads
	 * labels after the exec tracepoint, which fires there). */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	snprintf(envpath, sizeof(envpath), "/proc/%d/environ", pid);
	for (int i = 0; i < 200; i++) {
		char env[256] = "";
		int fd = open(envpath, O_RDONLY | O_CLOEXEC);
		ssize_t e = fd >= 0 ? read(fd, env, sizeof(env) - 1) : -1;

		if (fd >= 0)
			close(fd);
		n = readlink(path, g.exe, sizeof(g.exe) - 1);
		g.exe[n > 0 ? n : 0] = '\0';
		if (strstr(g.exe, "sleep") && e > 0 && memmem(env, (size_t)e, "OTEL", 4))
			break;
		usleep(10000);
	}
	g.pid = pid;
	cr_assert_eq(proc_labels_read("/proc", &g, "node-x", &l, &err), 0, "%s", err.msg);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_str_eq(l.service, "payments");
	cr_assert_str_eq(l.comm, "sleep", "comm read from /proc when the goproc has none");
	cr_assert_neq(l.start_ticks, 0);
	cr_assert_neq(l.cgroup[0], '\0');
}

Test(labels, node_name)
{
	char out[256];
	struct utsname u;

	labels_node_name("flag", "env", out, sizeof(out));
	cr_assert_str_eq(out, "flag");
	labels_node_name("", "env", out, sizeof(out));
	cr_assert_str_eq(out, "env");
	labels_node_name(NULL, NULL, out, sizeof(out));
	cr_assert_eq(uname(&u), 0);
	cr_assert_str_eq(out, u.nodename);
	labels_node_name("a-long-node-name", NULL, out, 5);
	cr_assert_str_eq(out, "a-lo");
}

/* ---- the filter ---- */

static struct proc_labels sample(const char *comm, const char *exe, const char *module,
				 const char *cgroup)
{
	struct proc_labels l = {0};

	snprintf(l.comm, sizeof(l.comm), "%s", comm);
	snprintf(l.exe, sizeof(l.exe), "%s", exe);
	snprintf(l.module, sizeof(l.module), "%s", module);
	snprintf(l.cgroup, sizeof(l.cgroup), "%s", cgroup);
	return l;
}

Test(filter, bad_patterns)
{
	struct proc_filter *f = proc_filter_new();
	struct gs_error err = {0};

	cr_assert_not_null(f);
	cr_assert_eq(proc_filter_add(f, true, "name=etcd", &err), -EINVAL);
	cr_assert(strstr(err.msg, "comm, exe, module, cgroup"), "%s", err.msg);
	cr_assert(strstr(err.msg, "name=etcd"), "%s", err.msg);
	cr_assert_eq(proc_filter_add(f, false, "kubelet", &err), -EINVAL, "no field");
	cr_assert_eq(proc_filter_add(f, false, "comm", &err), -EINVAL);
	cr_assert_eq(proc_filter_add(f, false, "commx=a", &err), -EINVAL);
	cr_assert_eq(proc_filter_add(f, false, "=a", &err), -EINVAL);
	cr_assert_eq(proc_filter_add(f, false, "comm=", &err), -EINVAL, "empty glob");
	cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
	proc_filter_free(f);
}

Test(filter, include_exclude)
{
	struct proc_filter *f = proc_filter_new();
	struct gs_error err = {0};
	struct proc_labels etcd = sample("etcd", "/usr/bin/etcd", "go.etcd.io/etcd/server/v3",
					 "/kubepods/burstable/" POD_UID "/" ID_A);
	struct proc_labels kubelet = sample("kubelet", "/usr/bin/kubelet", "k8s.io/kubernetes",
					    "/system.slice/kubelet.service");
	struct proc_labels api = sample("api", "/app/api", "example.com/api",
					"/kubepods/besteffort/" POD_UID "/" ID_B);

	cr_assert(proc_filter_match(f, &etcd), "no rule: everything");
	cr_assert(proc_filter_match(NULL, &etcd));
	cr_assert_eq(proc_filter_add(f, false, "comm=kubelet", &err), 0, "%s", err.msg);
	cr_assert(proc_filter_match(f, &etcd));
	cr_assert_not(proc_filter_match(f, &kubelet));
	/* an include: only what matches one of them */
	cr_assert_eq(proc_filter_add(f, true, "cgroup=*/kubepods/*", &err), 0, "%s", err.msg);
	cr_assert(proc_filter_match(f, &etcd));
	cr_assert(proc_filter_match(f, &api));
	cr_assert_eq(proc_filter_add(f, false, "module=go.etcd.io/*", &err), 0);
	cr_assert_not(proc_filter_match(f, &etcd), "excluded by module");
	cr_assert(proc_filter_match(f, &api));
	cr_assert_eq(proc_filter_add(f, false, "exe=*/api", &err), 0);
	cr_assert_not(proc_filter_match(f, &api), "'*' crosses '/'");
	proc_filter_free(f);

	f = proc_filter_new();
	cr_assert_eq(proc_filter_add(f, true, "exe=/usr/bin/[ek]*", &err), 0);
	cr_assert_eq(proc_filter_add(f, true, "comm=ap?", &err), 0);
	cr_assert(proc_filter_match(f, &etcd));
	cr_assert(proc_filter_match(f, &kubelet));
	cr_assert(proc_filter_match(f, &api));
	proc_filter_free(f);
	f = proc_filter_new();
	cr_assert_eq(proc_filter_add(f, true, "module=example.com/api", &err), 0);
	cr_assert_not(proc_filter_match(f, &etcd));
	cr_assert(proc_filter_match(f, &api));
	proc_filter_free(f);
}

/* ---- container ids from cgroup files the kernel writes ----
 *
 * The recorded texts above are what runtimes produce; these check the same layouts as the
 * kernel prints them: a child process is moved into cgroups named as each runtime names them
 * (cgroup v2, and a v1 hierarchy where the host has one) and its real /proc/PID/cgroup is
 * read. Needs root (skipped otherwise). */

/* Cgroup directories one run makes at most. */
#define CG_MADE_MAX 64

struct cg_mounts {
	char v2[256]; /* the cgroup2 mount, "" when none */
	char v1[256]; /* a v1 hierarchy (pids, else name=systemd), "" when none */
};

static void cg_find_mounts(struct cg_mounts *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];

	memset(m, 0, sizeof(*m));
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char mnt[256], fstype[64], opts[512];
		const char *dash = strstr(line, " - ");

		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS" */
		if (!dash || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (!strcmp(fstype, "cgroup2") && !m->v2[0])
			snprintf(m->v2, sizeof(m->v2), "%s", mnt);
		else if (!strcmp(fstype, "cgroup") &&
			 (strstr(opts, "pids") || (!m->v1[0] && strstr(opts, "name=systemd"))))
			snprintf(m->v1, sizeof(m->v1), "%s", mnt);
	}
	fclose(f);
}

/* Moves pid into the cgroup dir (made with its parents under base; each made dir is
 * recorded in made[] for removal). */
static void cg_move(const char *base, const char *rel, pid_t pid, char made[][512], int *nmade)
{
	char path[512], procs[600], num[16];
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	for (i = 1; i <= strlen(path); i++) {
		char c = path[i];

		if (c != '/' && c != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) == 0) {
			cr_assert_lt(*nmade, CG_MADE_MAX);
			snprintf(made[(*nmade)++], 512, "%s", path);
		} else {
			cr_assert_eq(errno, EEXIST, "mkdir %s: %s", path, strerror(errno));
		}
		path[i] = c;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	snprintf(num, sizeof(num), "%d", pid);
	write_file(procs, num, strlen(num));
}

static const char *cg_id_of(pid_t pid, char *text, size_t len)
{
	static char id[80];
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	n = read(fd, text, len - 1);
	close(fd);
	cr_assert_gt(n, 0);
	text[n] = '\0';
	container_id_from_cgroup(text, (size_t)n, id, sizeof(id));
	return id;
}

/* The cgroup path of this process in the hierarchy whose line matches (v2: "0::"). */
static void cg_own_path(bool v2, const char *v1_ctl, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];

	snprintf(out, len, "/");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		line[strcspn(line, "\n")] = '\0';
		*c2 = '\0';
		if (v2 ? !strcmp(line, "0:") : strstr(c1 + 1, v1_ctl) != NULL) {
			snprintf(out, len, "%s", c2 + 1);
			break;
		}
	}
	fclose(f);
}

Test(container_id_real, kernel_cgroup_files, .timeout = 30)
{
	static const struct {
		const char *rel; /* under the test's own cgroup; %s is the id */
		const char *id;
	} v2cases[] = {
		{"docker/%s", ID_A},
		{"system.slice/docker-%s.scope", ID_B},
		{"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" POD_UID_SYSTEMD
		 ".slice/cri-containerd-%s.scope",
		 ID_A},
		{"kubepods/besteffort/" POD_UID "/%s", ID_B},
		{"containerd.service/kubepods-besteffort-" POD_UID_SYSTEMD
		 ".slice:cri-containerd:%s",
		 ID_A},
		{"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-" POD_UID_SYSTEMD
		 ".slice/crio-%s.scope",
		 ID_B},
		{"machine.slice/libpod-%s.scope/container", ID_A},
		{"libpod_parent/libpod-%s", ID_B},
		{"machine.slice/libpod-conmon-%s.scope", ""},
		{"kubepods.slice/crio-conmon-%s.scope", ""},
	};
	struct cg_mounts m;
	char made[CG_MADE_MAX][512], own2[512], own1[512], base2[1024], base1[1024], rel[512],
		text[4096];
	char name[64];
	int nmade = 0;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root (moves a process between cgroups)");
	cg_find_mounts(&m);
	if (!m.v2[0])
		cr_skip_test("no cgroup2 mount");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion ends the test */
		for (;;)
			pause();
	}
	/* Under this process's own cgroup: with systemd's delegation, the place root may write. */
	cg_own_path(true, NULL, own2, sizeof(own2));
	snprintf(name, sizeof(name), "goscope-labels-%d", getpid());
	snprintf(base2, sizeof(base2), "%s%s/%s", m.v2, strcmp(own2, "/") ? own2 : "", name);
	for (size_t i = 0; i < sizeof(v2cases) / sizeof(v2cases[0]); i++) {
		snprintf(rel, sizeof(rel), v2cases[i].rel, v2cases[i].id[0] ? v2cases[i].id : ID_A);
		cg_move(base2, rel, pid, made, &nmade);
		cr_assert_str_eq(cg_id_of(pid, text, sizeof(text)), v2cases[i].id, "%s", text);
	}
	if (m.v1[0]) {
		/* A v1 hierarchy holds a container id, the v2 line a plain cgroup: the v1 line's
		 * id (a hybrid host); with both naming one, the v2 line wins. */
		cg_own_path(false, strstr(m.v1, "pids") ? "pids" : "name=systemd", own1,
			    sizeof(own1));
		snprintf(base1, sizeof(base1), "%s%s/%s", m.v1, strcmp(own1, "/") ? own1 : "",
			 name);
		snprintf(rel, sizeof(rel), "docker/%s", ID_B);
		cg_move(base1, rel, pid, made, &nmade);
		cg_move(base2, "plain", pid, made, &nmade);
		cr_assert_str_eq(cg_id_of(pid, text, sizeof(text)), ID_B, "%s", text);
		snprintf(rel, sizeof(rel), "docker/%s", ID_A);
		cg_move(base2, rel, pid, made, &nmade);
		cr_assert_str_eq(cg_id_of(pid, text, sizeof(text)), ID_A, "%s", text);
	}
	/* Leave no trace: the child dies, its cgroups go (deepest first). */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = nmade - 1; i >= 0; i--)
		rmdir(made[i]);
}

/* Every process on this host: whatever its cgroup file says, an id found is 64 hex digits
 * that the file names, and this test (not in a container) has none. */
Test(container_id_real, this_host)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char text[16384], id[80];
	int seen = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[300];
		ssize_t n;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cgroup", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (n <= 0)
			continue;
		text[n] = '\0';
		seen++;
		if (container_id_from_cgroup(text, (size_t)n, id, sizeof(id))) {
			cr_assert_eq(strlen(id), 64);
			cr_assert_not_null(strstr(text, id), "pid %s: %s not in %s", e->d_name, id,
					   text);
		}
	}
	closedir(d);
	cr_assert_gt(seen, 1);
	cr_assert_str_eq(cg_id_of(getpid(), text, sizeof(text)), "", "%s", text);
}
