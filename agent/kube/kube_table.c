/* kube_table.c — the pods of this node as the client last saw them, by uid, bounded by a cap
 * (max pods, counted by the caller when refused). A node runs at most a few hundred pods
 * (the kubelet's default is 110), so lookups by container ID scan the table: a few hundred
 * comparisons per process and window, no index to keep in step. Not locked: kube.c holds its
 * mutex around every call. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_impl.h"

#define TABLE_FIRST_CAP 16

static struct kube_pod *find_uid(const struct kube_table *t, const char *uid)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].uid, uid))
			return &t->v[i];
	return NULL;
}

int kube_table_put(struct kube_table *t, struct kube_pod *p)
{
	struct kube_pod *old = find_uid(t, p->uid);

	if (old) {
		kube_pod_clear(old);
		*old = *p;
		memset(p, 0, sizeof(*p));
		return 0;
	}
	if (t->n >= t->max) {
		kube_pod_clear(p);
		return -ENOSPC;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : TABLE_FIRST_CAP;
		struct kube_pod *v;

		if (cap > t->max)
			cap = t->max;
		v = realloc(t->v, cap * sizeof(*v));
		if (!v) {
			kube_pod_clear(p);
			return -ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *p;
	memset(p, 0, sizeof(*p));
	return 0;
}

void kube_table_del(struct kube_table *t, const char *uid)
{
	struct kube_pod *p = find_uid(t, uid);

	if (!p)
		return;
	kube_pod_clear(p);
	*p = t->v[--t->n];
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
}

int kube_table_find(const struct kube_table *t, const char *container_id, struct kube_meta *out)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct kube_pod *p = &t->v[i];

		for (size_t c = 0; c < p->ncontainers; c++) {
			if (strcmp(p->containers[c].id, container_id) != 0)
				continue;
			*out = p->meta;
			memcpy(out->container, p->containers[c].name, sizeof(out->container));
			return 1;
		}
	}
	return 0;
}

void kube_table_free(struct kube_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		kube_pod_clear(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
