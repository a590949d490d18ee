/* fuzz_kube_watch.c — libFuzzer target for what the Kubernetes metadata client reads from the
 * API server (agent/kube/): any bytes as a watch stream, split into bounded lines
 * (kube_lines.c), each line parsed as a watch event whose object (or the line itself: a
 * PodList item) goes through kube_pod_parse into a small pod table and is looked up and
 * deleted again. Nothing may be read or written out of bounds, a line beyond the bound must
 * be refused, and the table never holds more than its cap. Seeds: tests/fuzz/corpus/kube-*. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_impl.h"

#define FUZZ_LINE_MAX 65536
#define FUZZ_TABLE_MAX 4

static const char *const fuzz_labels[] = {"app", "version"};

static int fuzz_kube_line(void *arg, char *line, size_t len)
{
	struct kube_table *t = arg;
	cJSON *doc = cJSON_ParseWithLength(line, len);
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, "object");
	struct gs_error err;
	struct kube_meta m;
	struct kube_pod p;
	char id[KUBE_CONTAINER_ID_LEN + 1];

	if (kube_pod_parse(obj ? obj : doc, fuzz_labels, 2, &p, &err) == 0) {
		if (p.ncontainers > KUBE_MAX_CONTAINERS)
			abort();
		snprintf(id, sizeof(id), "%s", p.ncontainers ? p.containers[0].id : "");
		if (kube_table_put(t, &p) == 0 && id[0] && kube_table_find(t, id, &m) != 1)
			abort();
		if (t->n > FUZZ_TABLE_MAX)
			abort();
		if (len % 3 == 0 && t->n)
			kube_table_del(t, t->v[0].uid);
	} else {
		kube_pod_clear(&p);
	}
	cJSON_Delete(doc);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_lines l = {.max = FUZZ_LINE_MAX};
	struct kube_table t = {.max = FUZZ_TABLE_MAX};
	size_t half = size ? data[0] % (size + 1) : 0;
	int rc;

	/* Two pieces, as a stream arrives: where a line is cut must not matter. */
	rc = kube_lines_feed(&l, (const char *)data, half, fuzz_kube_line, &t);
	if (rc == 0)
		rc = kube_lines_feed(&l, (const char *)data + half, size - half, fuzz_kube_line,
				     &t);
	if (rc != 0 && rc != -E2BIG)
		abort();
	if (l.cap > FUZZ_LINE_MAX + 1)
		abort();
	kube_lines_free(&l);
	kube_table_free(&t);
	return 0;
}
