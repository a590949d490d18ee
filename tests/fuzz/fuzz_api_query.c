/* fuzz_api_query.c — libFuzzer target for the HTTP API's request-target parsing
 * (agent/api/query.c): any bytes as a request target are either refused with -EINVAL/-E2BIG
 * or split into a path and parameters within the bounds, and every endpoint's parser (the
 * captures' selectors, the stored-profile queries, durations) then accepts or refuses them
 * without reading or writing out of bounds. Seeds: tests/fuzz/corpus/api-*.txt. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"

/* A fixed clock: the relative times in from=/to= do not depend on when the input runs. */
#define FUZZ_NOW_NS 1764583200000000000LL
#define FUZZ_MAX_SECONDS 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_query *q = malloc(sizeof(*q));
	struct api_capture cap;
	struct api_stored st;
	struct gs_error err;
	uint64_t ns;
	int rc;

	if (!q)
		return 0;
	rc = api_query_parse((const char *)data, size, q, &err);
	if (rc) {
		if (rc != -EINVAL && rc != -E2BIG)
			abort();
		free(q);
		return 0;
	}
	if (q->nparams > API_MAX_PARAMS || strlen(q->path) >= sizeof(q->path))
		abort();
	for (size_t i = 0; i < q->nparams; i++) {
		if (strlen(q->params[i].name) > API_MAX_VALUE ||
		    strlen(q->params[i].value) > API_MAX_VALUE)
			abort();
		if (api_parse_duration(q->params[i].value, &ns, &err) == 0 &&
		    ns > API_MAX_DURATION_NS)
			abort();
	}
	for (int k = API_CAPTURE_CPU; k <= API_CAPTURE_HEAP; k++) {
		if (api_capture_parse(q, (enum api_capture_kind)k, FUZZ_MAX_SECONDS, &cap, &err) ==
		    0) {
			if (cap.duration_ns > FUZZ_MAX_SECONDS * 1000000000ULL)
				abort();
			if (!cap.sel.pid && !cap.sel.service[0] && !cap.sel.container_id[0] &&
			    !cap.sel.k8s_pod[0])
				abort();
		}
	}
	for (int merge = 0; merge < 2; merge++) {
		if (api_stored_parse(q, merge, FUZZ_NOW_NS, &st, &err) == 0) {
			if (st.to_ns <= st.from_ns || st.nlabels > API_MAX_LABELS)
				abort();
			for (size_t i = 0; i < st.nlabels; i++)
				if (!st.label_keys[i] || !st.label_values[i])
					abort();
		}
	}
	free(q);
	return 0;
}
