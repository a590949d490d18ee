/* labels.c — the labels of a profiled process (see labels.h): its service name (from its own
 * environment, else its executable's name), comm, exe, Go version, main module, node and
 * container id, and the --include/--exclude filter on them.
 *
 * Every byte read here comes from another process (its environ, its cgroup path, its comm):
 * reads are bounded, values are kept as they are (bounded, NUL-terminated; the writers escape
 * them), and no parse loops beyond the bytes read. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "procs/labels.h"
#include "procs/proc.h"

/* A process's environ can be as large as its argument space (a quarter of its stack limit) and
 * is written by the process: read at most this much. The variables looked up are usually set
 * by whoever started the process, near the start. */
#define ENVIRON_MAX (256u << 10)
/* /proc/PID/cgroup: one line per v1 hierarchy (about 13) plus the v2 line; paths are short. */
#define CGROUP_FILE_MAX (16u << 10)
#define CONTAINER_ID_LEN 64
#define DELETED_SUFFIX " (deleted)"

/* Reads at most max bytes of path into a malloc'd buffer (NUL-terminated, *len bytes before the
 * NUL). -errno (-ESRCH for a vanished process). /proc files are read in several read() calls:
 * one call returns at most a page of environ. */
static int read_bounded(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = malloc(max + 1);
	size_t used = 0;
	int fd, rc = 0;

	*out = NULL;
	*len = 0;
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? -ESRCH : -errno;
		free(buf);
		return rc;
	}
	while (used < max) {
		ssize_t n = read(fd, buf + used, max - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	return 0;
}

/* Copies n bytes of src into out (out_len > 0), truncated, NUL-terminated. */
static void copy_bounded(char *out, size_t out_len, const char *src, size_t n)
{
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, src, n);
	out[n] = '\0';
}

int environ_lookup(const char *env, size_t len, const char *name, char *out, size_t out_len)
{
	size_t nlen = strlen(name), i = 0;

	if (out_len)
		out[0] = '\0';
	/* Entries are NAME=VALUE, each ended by a NUL; the last one may be cut by the bound. */
	while (i < len) {
		const char *e = env + i, *end = memchr(e, '\0', len - i);
		size_t elen = end ? (size_t)(end - e) : len - i;

		if (elen > nlen && memcmp(e, name, nlen) == 0 && e[nlen] == '=') {
			if (out_len)
				copy_bounded(out, out_len, e + nlen + 1, elen - nlen - 1);
			return 1;
		}
		i += elen + 1;
	}
	return 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static bool has_prefix(const char *s, size_t n, const char *prefix, size_t *plen)
{
	*plen = strlen(prefix);
	return n >= *plen && memcmp(s, prefix, *plen) == 0;
}

/* The container id in one path component (n bytes, no '/'), or NULL. Runtimes name the
 * container's cgroup after its 64-hex id, with a runtime prefix and, under the systemd cgroup
 * driver, a ".scope" suffix; the same layouts as Falco's libsinsp (userspace/libsinsp/runc.cpp
 * and the docker, cri, podman resolvers: "/<id>", "/docker-<id>.scope", "/cri-containerd-<id>
 * .scope", ":cri-containerd:<id>", "/crio-<id>", "/crio-<id>.scope", "/libpod-<id>",
 * "/libpod-<id>.scope", "/libpod-<id>.scope/container") and the OpenTelemetry eBPF profiler's
 * cgroupv2ContainerIDPattern (`0:.*?:.*?([0-9a-fA-F]{64})(?:\.scope)?(?:/[a-z]+)?$`, in
 * processmanager). Unlike that pattern the id must be the whole component after the prefix:
 * 64 hex digits inside a longer token are not an id, and the conmon monitor's cgroups
 * ("crio-conmon-<id>.scope", "libpod-conmon-<id>.scope") are not the container. */
static const char *component_id(const char *c, size_t n)
{
	static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-", "libpod-",
					       ""};
	static const char cri_colon[] = ":cri-containerd:";
	const char *colon;
	size_t plen;

	if (n > 6 && memcmp(c + n - 6, ".scope", 6) == 0)
		n -= 6;
	/* containerd without SystemdCgroup under the systemd driver:
	 * "kubepods-burstable-pod<uid>.slice:cri-containerd:<id>". */
	colon = memmem(c, n, cri_colon, sizeof(cri_colon) - 1);
	if (colon) {
		const char *id = colon + sizeof(cri_colon) - 1;

		return (size_t)(c + n - id) == CONTAINER_ID_LEN && is_hex(id, CONTAINER_ID_LEN)
			       ? id
			       : NULL;
	}
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (!has_prefix(c, n, prefixes[i], &plen))
			continue;
		if (n - plen == CONTAINER_ID_LEN && is_hex(c + plen, CONTAINER_ID_LEN))
			return c + plen;
	}
	return NULL;
}

/* The container id in a cgroup path (n bytes): the deepest component that names one (the
 * process is inside that container; a nested runtime's id is deeper than its host's, and
 * podman's "libpod-<id>.scope/container" puts a plain component below the id). */
static const char *path_id(const char *path, size_t n)
{
	size_t end = n;

	while (end > 0) {
		size_t start = end;
		const char *id;

		while (start > 0 && path[start - 1] != '/')
			start--;
		id = component_id(path + start, end - start);
		if (id)
			return id;
		end = start > 0 ? start - 1 : 0;
	}
	return NULL;
}

/* Walks the lines of a /proc/PID/cgroup text: "hierarchy-ID:controllers:path" (v1) or
 * "0::path" (v2). Calls fn for each path; stops when fn returns nonzero and returns that. */
static int for_each_cgroup_path(const char *text, size_t len,
				int (*fn)(void *arg, bool v2, const char *path, size_t n),
				void *arg)
{
	size_t i = 0;

	while (i < len) {
		const char *line = text + i, *nl = memchr(line, '\n', len - i), *c1, *c2;
		size_t llen = nl ? (size_t)(nl - line) : len - i;
		int rc;

		i += llen + 1;
		c1 = memchr(line, ':', llen);
		if (!c1)
			continue;
		c2 = memchr(c1 + 1, ':', llen - (size_t)(c1 + 1 - line));
		if (!c2)
			continue;
		/* The path may itself hold ':' (":cri-containerd:"): it is the rest of the line. */
		rc = fn(arg, c1 - line == 1 && line[0] == '0' && c2 == c1 + 1, c2 + 1,
			llen - (size_t)(c2 + 1 - line));
		if (rc)
			return rc;
	}
	return 0;
}

struct id_search {
	bool v2_only;
	const char *id;
};

static int id_in_path(void *arg, bool v2, const char *path, size_t n)
{
	struct id_search *s = arg;

	if (s->v2_only && !v2)
		return 0;
	s->id = path_id(path, n);
	return s->id != NULL;
}

int container_id_from_cgroup(const char *text, size_t len, char *out, size_t out_len)
{
	/* The v2 line first (on a hybrid host the v1 hierarchies may lag behind), then every v1
	 * line: under cgroup v1 runtimes place the process in the same path in each hierarchy. */
	struct id_search s = {.v2_only = true};

	if (out_len)
		out[0] = '\0';
	if (!for_each_cgroup_path(text, len, id_in_path, &s)) {
		s.v2_only = false;
		if (!for_each_cgroup_path(text, len, id_in_path, &s))
			return 0;
	}
	if (out_len)
		copy_bounded(out, out_len, s.id, CONTAINER_ID_LEN);
	return 1;
}

struct path_pick {
	char *out;
	size_t out_len;
	bool have;
};

/* The v2 path, else the first v1 one. */
static int pick_path(void *arg, bool v2, const char *path, size_t n)
{
	struct path_pick *p = arg;

	if (v2 || !p->have) {
		copy_bounded(p->out, p->out_len, path, n);
		p->have = true;
	}
	return v2;
}

void labels_node_name(const char *node, const char *node_env, char *out, size_t len)
{
	struct utsname u;

	if (!len)
		return;
	if (node && node[0])
		snprintf(out, len, "%s", node);
	else if (node_env && node_env[0])
		snprintf(out, len, "%s", node_env);
	else if (uname(&u) == 0)
		snprintf(out, len, "%s", u.nodename);
	else
		snprintf(out, len, "unknown");
}

/* The service name from the executable's path: its base name, without the " (deleted)" the
 * kernel appends to a replaced binary's link ("/usr/bin/etcd" -> "etcd"). */
static void exe_base(const char *exe, char *out, size_t len)
{
	const char *base = strrchr(exe, '/');
	size_t n, dl = sizeof(DELETED_SUFFIX) - 1;

	base = base ? base + 1 : exe;
	n = strlen(base);
	if (n > dl && strcmp(base + n - dl, DELETED_SUFFIX) == 0)
		n -= dl;
	copy_bounded(out, len, base, n);
}

/* service_name: the process's GOSCOPE_SERVICE_NAME, else its OTEL_SERVICE_NAME (non-empty),
 * else the executable's base name (else its comm, when even the exe link is unreadable). An
 * unreadable environ (another user's process without CAP_SYS_PTRACE) is not an error. */
static int read_service(const char *proc_root, struct proc_labels *l)
{
	char path[128], *env;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/%d/environ", proc_root, l->pid);
	rc = read_bounded(path, ENVIRON_MAX, &env, &len);
	if (rc == -ESRCH)
		return rc;
	if (rc == 0) {
		if (environ_lookup(env, len, "GOSCOPE_SERVICE_NAME", l->service,
				   sizeof(l->service)) &&
		    l->service[0])
			l->service_from = SERVICE_FROM_GOSCOPE_ENV;
		else if (environ_lookup(env, len, "OTEL_SERVICE_NAME", l->service,
					sizeof(l->service)) &&
			 l->service[0])
			l->service_from = SERVICE_FROM_OTEL_ENV;
		free(env);
		if (l->service[0])
			return 0;
	}
	l->service_from = SERVICE_FROM_EXE;
	exe_base(l->exe, l->service, sizeof(l->service));
	if (!l->service[0])
		snprintf(l->service, sizeof(l->service), "%s", l->comm);
	return 0;
}

int proc_labels_read(const char *proc_root, const struct goproc *g, const char *node,
		     struct proc_labels *l, struct gs_error *err)
{
	struct path_pick pick = {.out = l->cgroup, .out_len = sizeof(l->cgroup)};
	struct proc_stat st;
	char path[128], *cg;
	size_t len;
	int rc;

	*l = (struct proc_labels){.pid = g->pid};
	rc = proc_stat_read(proc_root, g->pid, &st);
	if (rc < 0)
		return gs_error_set(err, rc == -ESRCH ? -ESRCH : rc, "pid %d: stat: %s", g->pid,
				    strerror(-rc));
	l->start_ticks = st.start_ticks;
	if (g->comm[0])
		snprintf(l->comm, sizeof(l->comm), "%s", g->comm);
	else
		proc_comm(proc_root, g->pid, l->comm, sizeof(l->comm));
	snprintf(l->exe, sizeof(l->exe), "%s", g->exe);
	snprintf(l->go_version, sizeof(l->go_version), "%s", g->go_version);
	snprintf(l->module, sizeof(l->module), "%s", g->mod_path);
	snprintf(l->node, sizeof(l->node), "%s", node ? node : "");
	rc = read_service(proc_root, l);
	if (rc < 0)
		return gs_error_set(err, rc, "pid %d: exited", g->pid);
	snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root, g->pid);
	rc = read_bounded(path, CGROUP_FILE_MAX, &cg, &len);
	if (rc == -ESRCH)
		return gs_error_set(err, rc, "pid %d: exited", g->pid);
	if (rc == 0) {
		/* No cgroup file (a kernel without cgroups) or an unreadable one: no labels. */
		container_id_from_cgroup(cg, len, l->container_id, sizeof(l->container_id));
		for_each_cgroup_path(cg, len, pick_path, &pick);
		free(cg);
	}
	return 0;
}

/* ---- --include / --exclude ---- */

enum filter_field { FIELD_COMM, FIELD_EXE, FIELD_MODULE, FIELD_CGROUP };

static const char *const field_names[] = {"comm", "exe", "module", "cgroup"};

struct filter_rule {
	enum filter_field field;
	char *glob;
};

struct rule_list {
	struct filter_rule *v;
	size_t n;
};

struct proc_filter {
	struct rule_list include, exclude;
};

struct proc_filter *proc_filter_new(void)
{
	return calloc(1, sizeof(struct proc_filter));
}

int proc_filter_add(struct proc_filter *f, bool include, const char *pattern, struct gs_error *err)
{
	struct rule_list *list = include ? &f->include : &f->exclude;
	const char *eq = strchr(pattern, '=');
	struct filter_rule *v;
	size_t flen = eq ? (size_t)(eq - pattern) : 0;
	size_t i;

	for (i = 0; eq && i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (strlen(field_names[i]) == flen && memcmp(pattern, field_names[i], flen) == 0)
			break;
	if (!eq || i == sizeof(field_names) / sizeof(field_names[0]))
		return gs_error_set(err, -EINVAL,
				    "%s pattern '%s': expected FIELD=GLOB with FIELD one of comm, "
				    "exe, module, cgroup (e.g. comm=kubelet)",
				    include ? "include" : "exclude", pattern);
	if (!eq[1])
		return gs_error_set(err, -EINVAL, "%s pattern '%s': empty glob",
				    include ? "include" : "exclude", pattern);
	v = realloc(list->v, (list->n + 1) * sizeof(*v));
	if (!v)
		return gs_error_set(err, -ENOMEM, "out of memory");
	list->v = v;
	v[list->n].field = (enum filter_field)i;
	v[list->n].glob = strdup(eq + 1);
	if (!v[list->n].glob)
		return gs_error_set(err, -ENOMEM, "out of memory");
	list->n++;
	return 0;
}

static const char *field_value(const struct proc_labels *l, enum filter_field field)
{
	switch (field) {
	case FIELD_COMM:
		return l->comm;
	case FIELD_EXE:
		return l->exe;
	case FIELD_MODULE:
		return l->module;
	case FIELD_CGROUP:
		return l->cgroup;
	}
	return "";
}

/* fnmatch without FNM_PATHNAME: '*' crosses '/', so exe=*etcd and cgroup=*kubepods* match
 * whole paths. */
static bool any_match(const struct rule_list *list, const struct proc_labels *l)
{
	for (size_t i = 0; i < list->n; i++)
		if (fnmatch(list->v[i].glob, field_value(l, list->v[i].field), 0) == 0)
			return true;
	return false;
}

bool proc_filter_match(const struct proc_filter *f, const struct proc_labels *l)
{
	if (!f)
		return true;
	if (f->include.n && !any_match(&f->include, l))
		return false;
	return !any_match(&f->exclude, l);
}

static void rules_free(struct rule_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->v[i].glob);
	free(list->v);
}

void proc_filter_free(struct proc_filter *f)
{
	if (!f)
		return;
	rules_free(&f->include);
	rules_free(&f->exclude);
	free(f);
}
