/* kube_http.c — GET requests to the API server with libcurl: HTTPS verified against the
 * service account's CA (never skipped), the service account's bearer token (re-read when
 * kubelet rotates it), the body streamed to a callback (a watch never ends), and a stop flag
 * polled so that the agent's exit is not held up by a request in flight. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kube/kube_impl.h"

/* Connecting (TCP + TLS) to the API server takes this long at most. */
#define CONNECT_TIMEOUT_MS 5000L
/* A watch with no bytes at all for this long is dead (the API server sends bookmarks and
 * ends watches at timeoutSeconds, well inside it): low-speed limit 1 byte/s over it. */
#define STALL_TIMEOUT_S 600L
#define AUTH_HEADER_MAX (sizeof(((struct kube_token *)0)->value) + 32)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kube_http_init(struct gs_error *err)
{
	pthread_once(&curl_once, init_once);
	if (curl_init_rc != CURLE_OK)
		return gs_error_set(err, -EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int kube_token_refresh(struct kube_token *t, bool force, struct gs_error *err)
{
	struct stat st;
	ssize_t n;
	size_t used = 0;
	int fd;

	if (stat(t->path, &st) < 0)
		return gs_error_set(err, -errno, "token %s: %s", t->path, strerror(errno));
	if (t->loaded && !force && same_file(&st, &t->st))
		return 0;
	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gs_error_set(err, -errno, "token %s: %s", t->path, strerror(errno));
	while (used < sizeof(t->value) - 1) {
		n = read(fd, t->value + used, sizeof(t->value) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	/* A token is one line of base64url and dots; trailing whitespace is not part of it. */
	while (used > 0 && (t->value[used - 1] == '\n' || t->value[used - 1] == '\r' ||
			    t->value[used - 1] == ' '))
		used--;
	t->value[used] = '\0';
	for (size_t i = 0; i < used; i++)
		if ((unsigned char)t->value[i] < 0x21 || (unsigned char)t->value[i] > 0x7e)
			return gs_error_set(err, -EINVAL, "token %s: not a bearer token", t->path);
	if (t->loaded)
		t->reloads++;
	t->st = st;
	t->loaded = true;
	return 0;
}

struct xfer {
	const struct kube_get *g;
	bool cut; /* on_data asked to stop */
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	if (x->g->on_data && x->g->on_data(x->g->arg, data, n)) {
		x->cut = true;
		return 0; /* CURLE_WRITE_ERROR: ends the transfer */
	}
	return n;
}

/* Called by libcurl about once a second even while no byte arrives. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return x->g->stop && *x->g->stop;
}

int kube_http_get(const struct kube_get *g, long *status, struct gs_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "", auth[AUTH_HEADER_MAX];
	struct curl_slist *hdrs = NULL, *h;
	struct xfer x = {.g = g};
	CURLcode rc;
	CURL *c;
	int ret = 0;

	*status = 0;
	c = curl_easy_init();
	if (!c)
		return gs_error_set(err, -ENOMEM, "libcurl: no handle");
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", g->token ? g->token : "");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (hdrs && g->token && g->token[0]) {
		h = curl_slist_append(hdrs, auth);
		if (!h)
			curl_slist_free_all(hdrs);
		hdrs = h;
	}
	if (!hdrs) {
		curl_easy_cleanup(c);
		return gs_error_set(err, -ENOMEM, "out of memory");
	}
	curl_easy_setopt(c, CURLOPT_URL, g->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CAINFO, g->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, g->timeout_s);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "goscope-agent");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK) {
		if (x.cut)
			ret = gs_error_set(err, -EPROTO, "response cut: bad or oversized data");
		else if (rc == CURLE_ABORTED_BY_CALLBACK)
			ret = gs_error_set(err, -ECANCELED, "stopped");
		else
			ret = gs_error_set(err, rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO,
					   "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return ret;
}
