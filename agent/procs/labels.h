/* labels.h — what the agent says about each profiled process: its labels (service_name,
 * pid, comm, exe, go_version, module, node, container_id), read from /proc and the binary's
 * build info, and the --include/--exclude filter that decides which processes are profiled.
 *
 * Everything is read from other users' processes: untrusted, bounded, and a process may be
 * gone between two reads (-ESRCH). Nothing here prints. */
#ifndef GOSCOPE_AGENT_PROCS_LABELS_H
#define GOSCOPE_AGENT_PROCS_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goscope/error.h"
#include "procs/goprocs.h"

/* The label names, as written in the pprof, the store and (later) pushed. */
#define LABEL_SERVICE "service_name"
#define LABEL_PID "pid"
#define LABEL_COMM "comm"
#define LABEL_EXE "exe"
#define LABEL_GO_VERSION "go_version"
#define LABEL_MODULE "module"
#define LABEL_NODE "node"
#define LABEL_CONTAINER "container_id"
/* Kubernetes metadata (agent/kube/), only when known. */
#define LABEL_NAMESPACE "namespace"
#define LABEL_POD "pod"
#define LABEL_CONTAINER_NAME "container"
#define LABEL_WORKLOAD "workload"

/* Extra pod labels (--k8s-pod-labels): at most this many, Kubernetes' key and value limits. */
#define PROC_LABELS_K8S_MAX 8
#define PROC_LABELS_K8S_KEY_MAX 320
#define PROC_LABELS_K8S_VALUE_MAX 64

/* Where service_name came from. */
enum service_source {
	SERVICE_FROM_GOSCOPE_ENV, /* the process's GOSCOPE_SERVICE_NAME */
	SERVICE_FROM_OTEL_ENV,	  /* its OTEL_SERVICE_NAME */
	SERVICE_FROM_EXE,	  /* the executable's base name */
	/* its pod (agent/kube/): the pyroscope.io/service_name annotation, else
	 * NAMESPACE/WORKLOAD; only instead of SERVICE_FROM_EXE */
	SERVICE_FROM_KUBE,
};

struct proc_labels {
	pid_t pid;
	uint64_t start_ticks;
	char service[256];
	enum service_source service_from;
	char comm[32];
	char exe[512];
	char go_version[64];
	char module[512];      /* main module path ("" when the binary has no build info) */
	char node[256];
	char container_id[80]; /* "" outside a container */
	char cgroup[1024];     /* the process's cgroup path (v2 "0::" line, else the first v1 one) */
	/* Kubernetes metadata of the process's container ("" when unknown or not on
	 * Kubernetes): filled by the agent from agent/kube/, possibly after the process was
	 * found (the pod watch may be late). The HTTP API's namespace=, pod=, container=
	 * selectors match these. */
	char k8s_namespace[64];
	char k8s_pod[256];
	char k8s_container[256];
	char k8s_workload[256];
	/* The pod labels named by --k8s-pod-labels that the pod has (key as named, value), and
	 * the pod annotation goscope.io/block: "true" (continuous blocking profiles). */
	struct {
		char key[PROC_LABELS_K8S_KEY_MAX];
		char value[PROC_LABELS_K8S_VALUE_MAX];
	} k8s_labels[PROC_LABELS_K8S_MAX];
	size_t k8s_nlabels;
	bool k8s_block;
};

/* Fills l from /proc/PID/{stat,environ,cgroup} under proc_root and from g (goproc_inspect's
 * result for the same pid). node is copied as is. -ESRCH when the process is gone. */
int proc_labels_read(const char *proc_root, const struct goproc *g, const char *node,
		     struct proc_labels *l, struct gs_error *err);

/* The container id in the text of a /proc/PID/cgroup file (cgroup v1 or v2; docker,
 * containerd/cri-containerd, CRI-O and podman/libpod path formats, systemd and cgroupfs
 * drivers): 1 and the 64-hex id in out, 0 when none. */
int container_id_from_cgroup(const char *text, size_t len, char *out, size_t out_len);

/* The value of NAME in a /proc/PID/environ image (NUL-separated NAME=VALUE): 1 and the value
 * in out (truncated to out_len - 1), 0 when absent. */
int environ_lookup(const char *env, size_t len, const char *name, char *out, size_t out_len);

/* The node name: node when set, else the NODE_NAME value given (the CLI reads the
 * environment), else the hostname. */
void labels_node_name(const char *node, const char *node_env, char *out, size_t len);

/* --include / --exclude: GLOB patterns on one field each: "comm=GLOB", "exe=GLOB",
 * "module=GLOB", "cgroup=GLOB" (fnmatch(3) globs). A process is profiled when it matches
 * at least one include (or there is none) and no exclude. */
struct proc_filter;
struct proc_filter *proc_filter_new(void);
/* -EINVAL with a message for a pattern without a known field. */
int proc_filter_add(struct proc_filter *f, bool include, const char *pattern,
		    struct gs_error *err);
bool proc_filter_match(const struct proc_filter *f, const struct proc_labels *l);
void proc_filter_free(struct proc_filter *f);

#endif
