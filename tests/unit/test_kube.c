/* test_kube.c — the pieces of the Kubernetes metadata client (agent/kube/) on their own: pod
 * objects recorded in the shape of the real API (tests/go/kubeapi/testdata/, the same files the
 * stand-in API server serves in tests/integration/test_kube.c) to what the agent keeps; the
 * workload rules (Deployment from a ReplicaSet and its pod-template-hash, CronJob from a Job's
 * scheduled-time suffix); container IDs of each runtime; the bounded pod table; and the watch
 * stream's line splitter fed in arbitrary pieces, with its bound. Run under ASan/UBSan too. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_impl.h"
#include "tests/unit/testutil.h"

#define ID_CHECKOUT "c7761e58969f7edd498186641b2021e8477e1bcd230de4cf3435242da4a40d14"
#define ID_ENVOY "84532b306f259587c364bd7301e0813963d5b84fd27c9338f0862dab8f0499d7"
#define ID_DB "7bdc25d1694ef984782a16f6f1710c1c6bc83ba7a131b515baf532bea021d011"
#define ID_BACKUP "54d00d867758cef816bc4685f58e327b949712b07ebd17c3485f3ffc9e9f5133"

static const char *const label_names[] = {"app", "version"};

/* A recorded JSON file of the stand-in API server, parsed. */
static cJSON *testdata(const char *name)
{
	const char *src = getenv("GOSCOPE_SRC_DIR");
	char path[1024];
	size_t size;
	uint8_t *buf;
	cJSON *doc;

	snprintf(path, sizeof(path), "%s/tests/go/kubeapi/testdata/%s", src ? src : ".", name);
	buf = tu_read_file(path, &size);
	cr_assert_not_null(buf, "%s: %s (run from the source tree or set GOSCOPE_SRC_DIR)", path,
			   strerror(errno));
	doc = cJSON_ParseWithLength((const char *)buf, size);
	free(buf);
	cr_assert_not_null(doc, "%s: not JSON", path);
	return doc;
}

static const char *workload(const char *kind, const char *owner, const char *pod, const char *hash)
{
	static char out[256];

	kube_workload(kind, owner, pod, hash, out, sizeof(out));
	return out;
}

Test(kube_workload, owners)
{
	/* A Deployment's ReplicaSet: its name minus "-" and the pod-template-hash. */
	cr_assert_str_eq(workload("ReplicaSet", "checkout-7d4b9c8f6", "checkout-7d4b9c8f6-x2x9q",
				  "7d4b9c8f6"),
			 "checkout");
	cr_assert_str_eq(workload("ReplicaSet", "my-app-v2-5f6d7c8b9", "p", "5f6d7c8b9"),
			 "my-app-v2");
	/* A ReplicaSet of its own (no hash, or one its name does not end with). */
	cr_assert_str_eq(workload("ReplicaSet", "frontend", "frontend-abcde", NULL), "frontend");
	cr_assert_str_eq(workload("ReplicaSet", "frontend-1234", "p", "9999"), "frontend-1234");
	cr_assert_str_eq(workload("ReplicaSet", "7d4b9c8f6", "p", "7d4b9c8f6"), "7d4b9c8f6",
			 "the hash alone is not a Deployment name");
	cr_assert_str_eq(workload("StatefulSet", "db", "db-0", NULL), "db");
	cr_assert_str_eq(workload("DaemonSet", "node-exporter", "node-exporter-8vjz4", NULL),
			 "node-exporter");
	/* A CronJob's Job: "<cronjob>-<minutes since the epoch>". */
	cr_assert_str_eq(workload("Job", "backup-29034720", "backup-29034720-7xk2p", NULL),
			 "backup");
	cr_assert_str_eq(workload("Job", "nightly-report-29034720", "p", NULL), "nightly-report");
	/* A Job of its own: no such suffix. */
	cr_assert_str_eq(workload("Job", "migrate-db", "migrate-db-x7k2p", NULL), "migrate-db");
	cr_assert_str_eq(workload("Job", "migrate-42", "p", NULL), "migrate-42", "too few digits");
	cr_assert_str_eq(workload("Job", "m-2903472a", "p", NULL), "m-2903472a");
	cr_assert_str_eq(workload("Job", "-29034720", "p", NULL), "-29034720");
	/* No owner: a bare pod is its own workload; an unknown owner kind is its name. */
	cr_assert_str_eq(workload(NULL, NULL, "debug-shell", NULL), "debug-shell");
	cr_assert_str_eq(workload("Node", "node-a", "kube-proxy-node-a", NULL), "node-a");
	cr_assert_str_eq(workload("Rollout", "canary", "canary-abc", NULL), "canary");
}

Test(kube_container_id, runtimes)
{
	char out[KUBE_CONTAINER_ID_LEN + 1];

	cr_assert_eq(kube_container_id("containerd://" ID_CHECKOUT, out), 1);
	cr_assert_str_eq(out, ID_CHECKOUT);
	cr_assert_eq(kube_container_id("cri-o://" ID_DB, out), 1);
	cr_assert_str_eq(out, ID_DB);
	cr_assert_eq(kube_container_id("docker://" ID_BACKUP, out), 1);
	cr_assert_str_eq(out, ID_BACKUP);
	/* The cgroup path names it in lower case; matching ignores the case the API gives. */
	cr_assert_eq(kube_container_id("containerd://C7761E58969F7EDD498186641B2021E8477E1BCD230DE4"
				       "CF3435242DA4A40D14",
				       out),
		     1);
	cr_assert_str_eq(out, ID_CHECKOUT);
	cr_assert_eq(kube_container_id("", out), 0);
	cr_assert_eq(kube_container_id(NULL, out), 0);
	cr_assert_eq(kube_container_id("containerd://", out), 0);
	cr_assert_eq(kube_container_id("containerd://" ID_CHECKOUT "0", out), 0);
	cr_assert_eq(
		kube_container_id("containerd://g7761e58969f7edd498186641b2021e8477e1bcd230de4c"
				  "f3435242da4a40d14",
				  out),
		0);
	cr_assert_str_eq(out, "", "nothing left behind");
}

/* The recorded PodList: every pod of node-a and node-b (the stand-in filters by node). */
Test(kube_pod, recorded_list)
{
	cJSON *doc = testdata("podlist.json"), *items = cJSON_GetObjectItem(doc, "items"), *it;
	struct gs_error err = {0};
	struct kube_pod p;
	int n = 0;

	cr_assert(cJSON_IsArray(items));
	cJSON_ArrayForEach(it, items)
	{
		cr_assert_eq(kube_pod_parse(it, label_names, 2, &p, &err), 0, "%s", err.msg);
		if (!strcmp(p.meta.pod, "checkout-7d4b9c8f6-x2x9q")) {
			cr_assert_str_eq(p.meta.ns, "shop");
			cr_assert_str_eq(p.uid, "3f0c8a51-7a4e-4b8e-9d61-2a9f5c0e1b11");
			cr_assert_str_eq(p.meta.workload, "checkout");
			cr_assert_str_eq(p.meta.service, "shop-checkout");
			cr_assert_not(p.meta.block);
			cr_assert_str_eq(p.meta.label_values[0], "checkout");
			cr_assert_str_eq(p.meta.label_values[1], "v2");
			cr_assert_eq(p.ncontainers, 2);
			cr_assert_str_eq(p.containers[0].id, ID_CHECKOUT);
			cr_assert_str_eq(p.containers[0].name, "checkout");
			cr_assert_str_eq(p.containers[1].id, ID_ENVOY);
			cr_assert_str_eq(p.containers[1].name, "envoy");
		} else if (!strcmp(p.meta.pod, "db-0")) {
			cr_assert_str_eq(p.meta.ns, "data");
			cr_assert_str_eq(p.meta.workload, "db");
			cr_assert_str_eq(p.meta.service, "");
			cr_assert_str_eq(p.meta.label_values[0], "db");
			cr_assert_str_eq(p.meta.label_values[1], "", "no version label");
			cr_assert_eq(p.ncontainers, 1);
			cr_assert_str_eq(p.containers[0].id, ID_DB);
		} else if (!strcmp(p.meta.pod, "web-6b7c8d9e0f-pend1")) {
			cr_assert_eq(p.ncontainers, 0, "a container still being created has no ID");
			cr_assert_str_eq(p.meta.workload, "web");
		}
		n++;
		kube_pod_clear(&p);
	}
	cr_assert_eq(n, 4);
	cJSON_Delete(doc);
}

Test(kube_pod, cronjob_block_annotation)
{
	cJSON *doc = testdata("pod-cronjob.json");
	struct gs_error err = {0};
	struct kube_pod p;

	cr_assert_eq(kube_pod_parse(doc, label_names, 2, &p, &err), 0, "%s", err.msg);
	cr_assert_str_eq(p.meta.workload, "backup");
	cr_assert(p.meta.block, "goscope.io/block: \"true\"");
	cr_assert_eq(p.ncontainers, 1);
	cr_assert_str_eq(p.containers[0].id, ID_BACKUP);
	kube_pod_clear(&p);
	cJSON_Delete(doc);
}

/* Objects that are not pods, and pods with fields of the wrong JSON types. */
Test(kube_pod, hostile)
{
	static const char *const bad[] = {
		"null",
		"[]",
		"{}",
		"{\"metadata\":{}}",
		"{\"metadata\":{\"uid\":\"u\",\"name\":\"n\"}}",
		"{\"metadata\":{\"uid\":1,\"name\":\"n\",\"namespace\":\"x\"}}",
		/* a Status (what an ERROR event carries) */
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"code\":410}",
	};
	struct gs_error err = {0};
	struct kube_pod p;
	char big[2000];
	cJSON *doc;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc = cJSON_Parse(bad[i]);
		cr_assert_eq(kube_pod_parse(doc, label_names, 2, &p, &err), -EINVAL, "%s", bad[i]);
		kube_pod_clear(&p);
		cJSON_Delete(doc);
	}
	/* Wrong types everywhere else are absent values; overlong strings are cut. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	doc = cJSON_Parse("{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":\"x\","
			  "\"labels\":[1],\"annotations\":{\"goscope.io/block\":true},"
			  "\"ownerReferences\":{\"kind\":\"Job\"}},"
			  "\"status\":{\"containerStatuses\":[1,{\"containerID\":5},"
			  "{\"name\":7,\"containerID\":\"containerd://" ID_DB "\"}]}}");
	cr_assert_not_null(doc);
	cJSON_AddStringToObject(cJSON_GetObjectItem(doc, "metadata"), "generateName", big);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "metadata"), "name",
				  cJSON_CreateString(big));
	cr_assert_eq(kube_pod_parse(doc, label_names, 2, &p, &err), 0, "%s", err.msg);
	cr_assert_eq(strlen(p.meta.pod), sizeof(p.meta.pod) - 1);
	cr_assert_str_eq(p.meta.workload, p.meta.pod, "no owner: the pod");
	cr_assert_not(p.meta.block, "only the string \"true\"");
	cr_assert_eq(p.ncontainers, 1);
	cr_assert_str_eq(p.containers[0].name, "");
	kube_pod_clear(&p);
	cJSON_Delete(doc);
}

/* A pod with more containers than kept: bounded. */
Test(kube_pod, containers_bounded)
{
	cJSON *doc = cJSON_Parse("{\"metadata\":{\"uid\":\"u\",\"name\":\"n\",\"namespace\":\"x\"},"
				 "\"status\":{}}");
	cJSON *list =
		cJSON_AddArrayToObject(cJSON_GetObjectItem(doc, "status"), "containerStatuses");
	struct gs_error err = {0};
	struct kube_pod p;

	for (int i = 0; i < KUBE_MAX_CONTAINERS + 10; i++) {
		cJSON *c = cJSON_CreateObject();
		char id[80];

		snprintf(id, sizeof(id), "containerd://%064x", i);
		cJSON_AddStringToObject(c, "containerID", id);
		cJSON_AddStringToObject(c, "name", "c");
		cJSON_AddItemToArray(list, c);
	}
	cr_assert_eq(kube_pod_parse(doc, NULL, 0, &p, &err), 0, "%s", err.msg);
	cr_assert_eq(p.ncontainers, KUBE_MAX_CONTAINERS);
	kube_pod_clear(&p);
	cJSON_Delete(doc);
}

static struct kube_pod make_pod(const char *uid, const char *name, const char *id)
{
	struct kube_pod p = {0};

	snprintf(p.uid, sizeof(p.uid), "%s", uid);
	snprintf(p.meta.ns, sizeof(p.meta.ns), "ns");
	snprintf(p.meta.pod, sizeof(p.meta.pod), "%s", name);
	p.containers = calloc(1, sizeof(*p.containers));
	cr_assert_not_null(p.containers);
	snprintf(p.containers[0].id, sizeof(p.containers[0].id), "%s", id);
	snprintf(p.containers[0].name, sizeof(p.containers[0].name), "main");
	p.ncontainers = 1;
	return p;
}

Test(kube_table, put_replace_delete_cap)
{
	struct kube_table t = {.max = 3};
	struct kube_meta m;
	struct kube_pod p;
	char id[KUBE_CONTAINER_ID_LEN + 1];

	p = make_pod("u1", "a", ID_CHECKOUT);
	cr_assert_eq(kube_table_put(&t, &p), 0);
	cr_assert_null(p.containers, "moved in");
	p = make_pod("u2", "b", ID_DB);
	cr_assert_eq(kube_table_put(&t, &p), 0);
	cr_assert_eq(kube_table_find(&t, ID_DB, &m), 1);
	cr_assert_str_eq(m.pod, "b");
	cr_assert_str_eq(m.container, "main");
	cr_assert_eq(kube_table_find(&t, ID_BACKUP, &m), 0);
	/* The same uid again (MODIFIED): replaced, not added. */
	p = make_pod("u1", "a2", ID_BACKUP);
	cr_assert_eq(kube_table_put(&t, &p), 0);
	cr_assert_eq(t.n, 2);
	cr_assert_eq(kube_table_find(&t, ID_CHECKOUT, &m), 0, "the old container is gone");
	cr_assert_eq(kube_table_find(&t, ID_BACKUP, &m), 1);
	cr_assert_str_eq(m.pod, "a2");
	p = make_pod("u3", "c", ID_ENVOY);
	cr_assert_eq(kube_table_put(&t, &p), 0);
	/* Full: a new pod is refused (and freed), a known one still replaced. */
	p = make_pod("u4", "d", ID_CHECKOUT);
	cr_assert_eq(kube_table_put(&t, &p), -ENOSPC);
	cr_assert_null(p.containers);
	cr_assert_eq(t.n, 3);
	p = make_pod("u3", "c2", ID_ENVOY);
	cr_assert_eq(kube_table_put(&t, &p), 0);
	kube_table_del(&t, "u2");
	kube_table_del(&t, "nope");
	cr_assert_eq(t.n, 2);
	cr_assert_eq(kube_table_find(&t, ID_DB, &m), 0);
	cr_assert_eq(kube_table_find(&t, ID_ENVOY, &m), 1);
	cr_assert_str_eq(m.pod, "c2");
	/* Many pods through a table of one: memory stays bounded, nothing leaks (ASan). */
	for (int i = 0; i < 1000; i++) {
		char uid[16];

		snprintf(uid, sizeof(uid), "x%d", i);
		snprintf(id, sizeof(id), "%064x", i);
		p = make_pod(uid, "x", id);
		kube_table_put(&t, &p);
	}
	cr_assert_eq(t.n, 3);
	kube_table_free(&t);
	cr_assert_eq(t.n, 0);
}

struct got {
	char lines[8][64];
	int n;
	int stop_at; /* return 7 at this line (0: never) */
};

static int on_line(void *arg, char *line, size_t len)
{
	struct got *g = arg;

	cr_assert_eq(strlen(line), len, "NUL-terminated at len");
	cr_assert_lt(g->n, 8);
	snprintf(g->lines[g->n], sizeof(g->lines[g->n]), "%s", line);
	g->n++;
	return g->stop_at && g->n == g->stop_at ? 7 : 0;
}

Test(kube_lines, pieces_and_bound)
{
	static const char stream[] = "{\"type\":\"ADDED\"}\n\n{\"type\":\"DELETED\"}\n{\"tail";
	struct kube_lines l = {.max = 32};
	struct got g = {0};
	char big[100];

	/* Byte by byte: the same lines as in one piece. */
	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		cr_assert_eq(kube_lines_feed(&l, stream + i, 1, on_line, &g), 0);
	cr_assert_eq(g.n, 2, "empty lines skipped, the partial one kept");
	cr_assert_str_eq(g.lines[0], "{\"type\":\"ADDED\"}");
	cr_assert_str_eq(g.lines[1], "{\"type\":\"DELETED\"}");
	cr_assert_eq(kube_lines_feed(&l, "\"}\n", 3, on_line, &g), 0);
	cr_assert_eq(g.n, 3);
	cr_assert_str_eq(g.lines[2], "{\"tail\"}");
	/* A callback's nonzero result stops the feed and is returned. */
	g = (struct got){.stop_at = 1};
	cr_assert_eq(kube_lines_feed(&l, "a\nb\n", 4, on_line, &g), 7);
	cr_assert_eq(g.n, 1);
	/* A line beyond the bound, in one piece or many: -E2BIG, memory bounded. */
	kube_lines_reset(&l);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(kube_lines_feed(&l, big, sizeof(big), on_line, &g), -E2BIG);
	kube_lines_reset(&l);
	cr_assert_eq(kube_lines_feed(&l, big, 20, on_line, &g), 0);
	cr_assert_eq(kube_lines_feed(&l, big, 20, on_line, &g), -E2BIG);
	cr_assert_leq(l.cap, l.max + 1);
	/* Exactly the bound is fine. */
	kube_lines_reset(&l);
	g = (struct got){0};
	cr_assert_eq(kube_lines_feed(&l, big, 32, on_line, &g), 0);
	cr_assert_eq(kube_lines_feed(&l, "\n", 1, on_line, &g), 0);
	cr_assert_eq(g.n, 1);
	kube_lines_free(&l);
}
