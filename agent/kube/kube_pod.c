/* kube_pod.c — a Pod object of the Kubernetes API (as a list item or a watch event's object)
 * to what the agent keeps: namespace, name, uid, workload, the service-name and block
 * annotations, the configured pod labels, and the container IDs of its started containers.
 *
 * The workload is derived from the pod alone: the agent's ClusterRole grants pods and nodes
 * only (least privilege), so a ReplicaSet's Deployment or a Job's CronJob is read from the
 * names the controllers give, never fetched. Values are copied bounded; anything missing or
 * of the wrong JSON type is treated as absent. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_impl.h"

/* A CronJob names its Jobs "<cronjob>-<scheduled time in minutes since the epoch>" (the
 * CronJob controller's getTimeHashInMinutes): 8 digits since 1976, 9 from 2160. */
#define CRONJOB_SUFFIX_MIN_DIGITS 8
#define CRONJOB_SUFFIX_MAX_DIGITS 10

static const char *str_item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static void copy(char *out, size_t len, const char *s)
{
	snprintf(out, len, "%s", s ? s : "");
}

/* "<prefix>-<suffix>": s minus "-" suffix, when s ends so and the rest is not empty. */
static bool strip_suffix(const char *s, const char *suffix, size_t *keep)
{
	size_t n = strlen(s), sl = strlen(suffix);

	if (!sl || n < sl + 2 || s[n - sl - 1] != '-' || strcmp(s + n - sl, suffix) != 0)
		return false;
	*keep = n - sl - 1;
	return true;
}

/* The digits after a Job name's last '-', when they look like a CronJob's scheduled time. */
static bool cronjob_prefix(const char *job, size_t *keep)
{
	const char *dash = strrchr(job, '-');
	size_t digits;

	if (!dash || dash == job)
		return false;
	digits = strlen(dash + 1);
	if (digits < CRONJOB_SUFFIX_MIN_DIGITS || digits > CRONJOB_SUFFIX_MAX_DIGITS)
		return false;
	for (const char *c = dash + 1; *c; c++)
		if (!isdigit((unsigned char)*c))
			return false;
	*keep = (size_t)(dash - job);
	return true;
}

void kube_workload(const char *owner_kind, const char *owner_name, const char *pod_name,
		   const char *template_hash, char *out, size_t len)
{
	size_t keep;

	if (!len)
		return;
	if (!owner_kind || !owner_name || !owner_name[0]) {
		copy(out, len, pod_name);
		return;
	}
	if (!strcmp(owner_kind, "ReplicaSet") && template_hash &&
	    strip_suffix(owner_name, template_hash, &keep)) {
		snprintf(out, len, "%.*s", (int)keep, owner_name);
		return;
	}
	if (!strcmp(owner_kind, "Job") && cronjob_prefix(owner_name, &keep)) {
		snprintf(out, len, "%.*s", (int)keep, owner_name);
		return;
	}
	copy(out, len, owner_name);
}

int kube_container_id(const char *status_id, char *out)
{
	const char *sep = status_id ? strstr(status_id, "://") : NULL;
	const char *id = sep ? sep + 3 : status_id;

	out[0] = '\0';
	if (!id || strlen(id) != KUBE_CONTAINER_ID_LEN)
		return 0;
	for (size_t i = 0; i < KUBE_CONTAINER_ID_LEN; i++) {
		if (!isxdigit((unsigned char)id[i])) {
			out[0] = '\0';
			return 0;
		}
		out[i] = (char)tolower((unsigned char)id[i]);
	}
	out[KUBE_CONTAINER_ID_LEN] = '\0';
	return 1;
}

/* The controller owner reference (controller: true), else the first one. */
static const cJSON *controller_owner(const cJSON *meta)
{
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences"), *r;
	const cJSON *first = NULL;

	if (!cJSON_IsArray(refs))
		return NULL;
	cJSON_ArrayForEach(r, refs)
	{
		if (!cJSON_IsObject(r))
			continue;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")))
			return r;
		if (!first)
			first = r;
	}
	return first;
}

/* Appends the started containers of one status list (containerStatuses, init..., ephemeral...). */
static int add_containers(struct kube_pod *p, const cJSON *list)
{
	const cJSON *c;

	if (!cJSON_IsArray(list))
		return 0;
	cJSON_ArrayForEach(c, list)
	{
		struct kube_container *k;

		if (p->ncontainers >= KUBE_MAX_CONTAINERS)
			return 0;
		if (!cJSON_IsObject(c))
			continue;
		k = &p->containers[p->ncontainers];
		if (!kube_container_id(str_item(c, "containerID"), k->id))
			continue; /* not started yet: no ID */
		copy(k->name, sizeof(k->name), str_item(c, "name"));
		p->ncontainers++;
	}
	return 0;
}

int kube_pod_parse(const cJSON *obj, const char *const *label_names, size_t nlabels,
		   struct kube_pod *p, struct gs_error *err)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *owner = controller_owner(meta);
	const char *uid = str_item(meta, "uid"), *name = str_item(meta, "name");
	const char *ns = str_item(meta, "namespace"), *block;

	memset(p, 0, sizeof(*p));
	if (!cJSON_IsObject(obj) || !uid || !name || !ns)
		return gs_error_set(err, -EINVAL,
				    "not a pod object (no metadata.uid/name/namespace)");
	copy(p->uid, sizeof(p->uid), uid);
	copy(p->resource_version, sizeof(p->resource_version), str_item(meta, "resourceVersion"));
	copy(p->meta.ns, sizeof(p->meta.ns), ns);
	copy(p->meta.pod, sizeof(p->meta.pod), name);
	kube_workload(owner ? str_item(owner, "kind") : NULL,
		      owner ? str_item(owner, "name") : NULL, name,
		      str_item(labels, "pod-template-hash"), p->meta.workload,
		      sizeof(p->meta.workload));
	copy(p->meta.service, sizeof(p->meta.service), str_item(ann, KUBE_ANNOTATION_SERVICE));
	block = str_item(ann, KUBE_ANNOTATION_BLOCK);
	p->meta.block = block && !strcmp(block, "true");
	for (size_t i = 0; i < nlabels && i < KUBE_MAX_POD_LABELS; i++)
		copy(p->meta.label_values[i], sizeof(p->meta.label_values[i]),
		     str_item(labels, label_names[i]));
	p->containers = calloc(KUBE_MAX_CONTAINERS, sizeof(*p->containers));
	if (!p->containers)
		return gs_error_set(err, -ENOMEM, "out of memory");
	add_containers(p, cJSON_GetObjectItemCaseSensitive(status, "containerStatuses"));
	add_containers(p, cJSON_GetObjectItemCaseSensitive(status, "initContainerStatuses"));
	add_containers(p, cJSON_GetObjectItemCaseSensitive(status, "ephemeralContainerStatuses"));
	/* Keep only what is used: a node's pods have a few containers each. */
	if (p->ncontainers == 0) {
		free(p->containers);
		p->containers = NULL;
	} else {
		struct kube_container *c =
			realloc(p->containers, p->ncontainers * sizeof(*p->containers));

		if (c)
			p->containers = c;
	}
	return 0;
}

void kube_pod_clear(struct kube_pod *p)
{
	free(p->containers);
	memset(p, 0, sizeof(*p));
}
