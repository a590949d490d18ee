/* kube_impl.h — the pieces of the Kubernetes metadata client (agent/kube/), each in its own
 * file and tested on its own: a pod object of the API to what the agent keeps (kube_pod.c),
 * the bounded pod table (kube_table.c), the watch stream's line splitter (kube_lines.c), and
 * the HTTP requests with the service account's token and CA (kube_http.c). kube.c runs them
 * in the client's thread. */
#ifndef GOSCOPE_AGENT_KUBE_IMPL_H
#define GOSCOPE_AGENT_KUBE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "goscope/error.h"
#include "kube/kube.h"

struct cJSON;

/* A container ID: 64 hex digits (lower case), as the cgroup path names it. */
#define KUBE_CONTAINER_ID_LEN 64
/* Containers of one pod kept at most (init, regular and ephemeral ones together). */
#define KUBE_MAX_CONTAINERS 64

struct kube_container {
	char id[KUBE_CONTAINER_ID_LEN + 1];
	char name[64];
};

/* One pod as the agent keeps it: its uid, what every container's profiles are labelled with
 * (meta, container name empty), and its containers that have an ID (started ones). */
struct kube_pod {
	char uid[64];
	char resource_version[32];
	struct kube_meta meta;
	size_t ncontainers;
	struct kube_container *containers;
};

/* ---- kube_pod.c ---- */

/* Fills p from a Pod object of the API (metadata, status.*containerStatuses). The values
 * of the pod labels named in label_names go to meta.label_values. -EINVAL for an object that
 * is not a pod (no metadata.uid/name/namespace); -ENOMEM. p is cleared first, and must be
 * freed with kube_pod_clear. */
int kube_pod_parse(const struct cJSON *obj, const char *const *label_names, size_t nlabels,
		   struct kube_pod *p, struct gs_error *err);
void kube_pod_clear(struct kube_pod *p);

/* The workload of a pod from its controller owner (kind, name; NULL when none), its name and
 * its pod-template-hash label (NULL when none): a ReplicaSet "web-7d4b9c8f6" with hash
 * "7d4b9c8f6" is its Deployment "web"; a Job "backup-29034720" (a scheduled time in minutes)
 * is its CronJob "backup"; StatefulSet, DaemonSet and any other owner are their own name; a
 * pod without an owner is its own workload. */
void kube_workload(const char *owner_kind, const char *owner_name, const char *pod_name,
		   const char *template_hash, char *out, size_t len);

/* The 64-hex ID of a containerStatuses[].containerID ("containerd://ID", "cri-o://ID",
 * "docker://ID"; lower-cased into out, which holds KUBE_CONTAINER_ID_LEN + 1): 1, else 0. */
int kube_container_id(const char *status_id, char *out);

/* ---- kube_table.c: the pods of the node, by uid; not locked (kube.c locks) ---- */

struct kube_table {
	struct kube_pod *v;
	size_t n, cap, max;
};

/* Takes p (moved in: *p is left empty): replaces the pod with the same uid or adds it.
 * -ENOSPC when the table holds max pods already (p is cleared), -ENOMEM. */
int kube_table_put(struct kube_table *t, struct kube_pod *p);
/* Removes the pod of that uid (no-op when unknown). */
void kube_table_del(struct kube_table *t, const char *uid);
/* The metadata of the container with that ID (the container name filled in): 1, else 0. */
int kube_table_find(const struct kube_table *t, const char *container_id, struct kube_meta *out);
void kube_table_free(struct kube_table *t);

/* ---- kube_lines.c: a byte stream to bounded lines ---- */

/* Collects the bytes of a stream and calls fn for each complete line (no '\n', NUL-terminated
 * in a buffer fn may not keep). A line longer than max is an error: the watch is broken off
 * (a pod object is tens of KiB; a stream that never ends a line must not grow memory). */
struct kube_lines {
	char *buf;
	size_t len, cap, max;
};

/* 0, the first nonzero fn result, or -E2BIG (a line beyond max), -ENOMEM. */
int kube_lines_feed(struct kube_lines *l, const char *data, size_t n,
		    int (*fn)(void *arg, char *line, size_t len), void *arg);
void kube_lines_reset(struct kube_lines *l);
void kube_lines_free(struct kube_lines *l);

/* ---- kube_http.c: requests to the API server ---- */

/* The service account's token, read again when its file changes (kubelet rotates projected
 * tokens by swapping a symlink: the inode changes) or after a 401. */
struct kube_token {
	char path[512];
	char value[8192];
	struct stat st;
	bool loaded;
	uint64_t reloads;
};

/* Reads the token when it was never read, its file changed, or force. -errno with a message. */
int kube_token_refresh(struct kube_token *t, bool force, struct gs_error *err);

/* A GET: the status code in *status; the body to on_data as it arrives (returning nonzero
 * stops the transfer). stop is polled about once a second: nonzero cuts the request.
 * timeout_s bounds the whole request (0: none). -errno with a message for a transport error
 * (connect, TLS, cut by on_data or stop); an HTTP error status is not one. */
struct kube_get {
	const char *url;
	const char *ca_file;
	const char *token;
	long timeout_s;
	const volatile int *stop;
	int (*on_data)(void *arg, const char *data, size_t n);
	void *arg;
};
int kube_http_get(const struct kube_get *g, long *status, struct gs_error *err);

/* Global libcurl setup, once per process (thread-safe). */
int kube_http_init(struct gs_error *err);

#endif
