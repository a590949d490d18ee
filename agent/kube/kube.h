/* kube.h — pod metadata for the agent on Kubernetes: a client of the API server that keeps
 * the pods of this node (list, then watch from the list's resourceVersion) in a bounded table,
 * and answers "which pod is container ID X in" for the agent's labels.
 *
 * The client runs in its own thread (kube_open starts it, kube_close stops it); kube_lookup
 * and kube_get_stats are thread-safe and never block on the network. While the API server is
 * unreachable the agent goes on: lookups answer from what was last known (nothing at first),
 * and the client retries with backoff. Nothing here prints or reads the environment: the CLI
 * resolves the API server's address and passes it in. */
#ifndef GOSCOPE_AGENT_KUBE_KUBE_H
#define GOSCOPE_AGENT_KUBE_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goscope/error.h"

struct proc_labels;

/* The in-cluster service account directory (token, ca.crt). */
#define KUBE_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Pod labels copied into profiles (--k8s-pod-labels): at most this many names. */
#define KUBE_MAX_POD_LABELS 8
/* Label keys are at most 253 (prefix) + 1 + 63 (name) bytes; values at most 63. */
#define KUBE_LABEL_KEY_MAX 320
#define KUBE_LABEL_VALUE_MAX 64
/* The annotations the agent reads. */
#define KUBE_ANNOTATION_SERVICE "pyroscope.io/service_name"
#define KUBE_ANNOTATION_BLOCK "goscope.io/block"

struct kube_config {
	const char *api_url;	       /* "https://HOST:PORT" (from KUBERNETES_SERVICE_HOST/PORT) */
	const char *sa_dir;	       /* NULL: KUBE_DEFAULT_SA_DIR (token and ca.crt inside) */
	const char *node;	       /* this node's name: fieldSelector=spec.nodeName=NODE */
	const char *const *pod_labels; /* pod label names copied into profiles */
	size_t npod_labels;	       /* <= KUBE_MAX_POD_LABELS */
	unsigned max_pods;	       /* pods tracked at most (0: KUBE_DEFAULT_MAX_PODS) */
	unsigned backoff_max_ms;       /* retry backoff cap (0: KUBE_DEFAULT_BACKOFF_MAX_MS) */
	unsigned watch_timeout_s;      /* the watch's timeoutSeconds (0: the default) */
};

#define KUBE_DEFAULT_MAX_PODS 2048
#define KUBE_DEFAULT_BACKOFF_MAX_MS 30000

/* What the agent learns about one container. */
struct kube_meta {
	char ns[64];
	char pod[256];
	char container[64];
	char workload[256];
	char service[256]; /* the pyroscope.io/service_name annotation, "" when none */
	bool block;	   /* goscope.io/block: "true" */
	/* The values of the configured pod labels, in kube_config.pod_labels' order ("" for a
	 * label the pod does not have). */
	char label_values[KUBE_MAX_POD_LABELS][KUBE_LABEL_VALUE_MAX];
};

/* Counters for /metrics (goscope_kube_*). */
struct kube_stats {
	uint64_t pods;		/* pods known now */
	uint64_t lists;		/* successful lists */
	uint64_t list_errors;	/* lists that failed (network, TLS, HTTP status, bad JSON) */
	uint64_t watch_errors;	/* watches that ended in an error (not a clean timeout) */
	uint64_t relists;	/* lists after the first one (410 Gone, watch errors) */
	uint64_t gone;		/* 410 Gone answers */
	uint64_t events;	/* watch events applied */
	uint64_t pods_dropped;	/* pods not tracked: the max_pods cap was reached */
	uint64_t token_reloads; /* the token file was read again (rotation, 401) */
	bool synced;		/* a list succeeded and the watch has not failed since */
};

struct kube;

/* Checks the configuration and starts the client's thread; the first list happens there (an
 * unreachable API server is not an error here: it is retried). -EINVAL for a bad config. */
int kube_open(const struct kube_config *cfg, struct kube **out, struct gs_error *err);
/* Stops the thread (an ongoing request is cut within about a second) and frees everything. */
void kube_close(struct kube *k);

/* The metadata of the container whose 64-hex ID is container_id: 1 and *out, 0 unknown. */
int kube_lookup(struct kube *k, const char *container_id, struct kube_meta *out);
void kube_get_stats(struct kube *k, struct kube_stats *out);

/* Refreshes l's Kubernetes fields from the client (l->container_id): namespace, pod,
 * container, workload, the configured pod labels, and service_name when the process does not
 * set its own (annotation, else NAMESPACE/WORKLOAD). Cheap (one lookup). Returns true when a
 * field changed. Fields stay as they were when the container is not (or no longer) known. */
bool kube_label_proc(struct kube *k, struct proc_labels *l);

#endif
