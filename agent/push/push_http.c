/* push_http.c — the libcurl client of the push (push_http.h). One easy handle, reused so
 * that the connection (and TLS session) stays open between calls. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "push/push_http.h"

/* A secret file larger than this is not a token or a password. */
#define SECRET_MAX 16384

struct push_http {
	struct push_http_config cfg;
	CURL *curl;
	char *endpoint;
	char errbuf[CURL_ERROR_SIZE];
};

int push_read_secret(const char *path, char **out, struct gs_error *err)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	*out = NULL;
	if (!f)
		return gs_error_set(err, -errno, "push: cannot read %s: %s", path, strerror(errno));
	buf = calloc(1, SECRET_MAX + 1);
	if (!buf) {
		fclose(f);
		return gs_error_set(err, -ENOMEM, "push: out of memory");
	}
	n = fread(buf, 1, SECRET_MAX, f);
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	n = strlen(buf);
	while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (!n) {
		free(buf);
		return gs_error_set(err, -EINVAL, "push: %s is empty", path);
	}
	*out = buf;
	return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct push_http_result *r = arg;
	size_t n = size * nmemb, have = strlen(r->body), room = sizeof(r->body) - 1 - have;

	memcpy(r->body + have, ptr, n < room ? n : room);
	r->body[have + (n < room ? n : room)] = '\0';
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct push_http_result *r = arg;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
		size_t vlen = n - (sizeof(name) - 1);

		if (vlen >= sizeof(r->retry_after))
			vlen = sizeof(r->retry_after) - 1;
		memcpy(r->retry_after, ptr + sizeof(name) - 1, vlen);
		r->retry_after[vlen] = '\0';
		r->retry_after[strcspn(r->retry_after, "\r\n")] = '\0';
	}
	return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct push_http *h = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return h->cfg.abort && h->cfg.abort(h->cfg.abort_arg) ? 1 : 0;
}

int push_http_open(const struct push_http_config *cfg, struct push_http **out, struct gs_error *err)
{
	struct push_http *h;
	size_t ulen;
	char *secret;
	int rc;

	*out = NULL;
	if (!cfg->url || (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)))
		return gs_error_set(err, -EINVAL,
				    "push: the URL must start with http:// or https://");
	/* The files must be readable now: a typo is said at start, not at the first push. */
	if (cfg->basic_auth_file) {
		rc = push_read_secret(cfg->basic_auth_file, &secret, err);
		if (rc)
			return rc;
		if (!strchr(secret, ':')) {
			free(secret);
			return gs_error_set(err, -EINVAL, "push: %s must hold user:password",
					    cfg->basic_auth_file);
		}
		free(secret);
	}
	if (cfg->bearer_token_file) {
		rc = push_read_secret(cfg->bearer_token_file, &secret, err);
		if (rc)
			return rc;
		free(secret);
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return gs_error_set(err, -ENOMEM, "push: out of memory");
	h->cfg = *cfg;
	ulen = strlen(cfg->url);
	while (ulen && cfg->url[ulen - 1] == '/')
		ulen--;
	if (asprintf(&h->endpoint, "%.*s%s", (int)ulen, cfg->url, PUSH_PATH) < 0)
		h->endpoint = NULL;
	h->curl = curl_easy_init();
	if (!h->endpoint || !h->curl) {
		push_http_close(h);
		return gs_error_set(err, -ENOMEM, "push: cannot set up the HTTP client");
	}
	*out = h;
	return 0;
}

void push_http_close(struct push_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->endpoint);
	free(h);
}

/* The request's headers (auth files read now); NULL with err on failure. */
static struct curl_slist *build_headers(struct push_http *h, struct gs_error *err)
{
	struct curl_slist *l = NULL, *n;
	char *secret = NULL, *line = NULL;
	int rc = 0;

#define ADD(s)                                                                                     \
	do {                                                                                       \
		n = curl_slist_append(l, (s));                                                     \
		if (!n)                                                                            \
			goto nomem;                                                                \
		l = n;                                                                             \
	} while (0)
	ADD("Content-Type: application/proto");
	ADD("Connect-Protocol-Version: 1");
	ADD("Expect:"); /* no 100-continue round trip */
	if (h->cfg.tenant && *h->cfg.tenant) {
		if (asprintf(&line, PUSH_TENANT_HEADER ": %s", h->cfg.tenant) < 0)
			goto nomem;
		ADD(line);
		free(line);
		line = NULL;
	}
	if (h->cfg.bearer_token_file) {
		rc = push_read_secret(h->cfg.bearer_token_file, &secret, err);
		if (rc)
			goto fail;
		if (asprintf(&line, "Authorization: Bearer %s", secret) < 0)
			goto nomem;
		ADD(line);
		explicit_bzero(line, strlen(line));
		free(line);
		line = NULL;
		explicit_bzero(secret, strlen(secret));
		free(secret);
		secret = NULL;
	}
	for (size_t i = 0; i < h->cfg.nheaders; i++)
		ADD(h->cfg.headers[i]);
	return l;
#undef ADD
nomem:
	gs_error_set(err, -ENOMEM, "push: out of memory");
fail:
	free(line);
	free(secret);
	curl_slist_free_all(l);
	return NULL;
}

int push_http_post(struct push_http *h, const uint8_t *body, size_t len,
		   struct push_http_result *res, struct gs_error *err)
{
	struct curl_slist *hdrs;
	char *userpwd = NULL;
	CURL *c = h->curl;
	CURLcode cc;
	int rc;

	memset(res, 0, sizeof(*res));
	hdrs = build_headers(h, err);
	if (!hdrs)
		return err && err->code ? err->code : -ENOMEM;
	if (h->cfg.basic_auth_file) {
		rc = push_read_secret(h->cfg.basic_auth_file, &userpwd, err);
		if (rc) {
			curl_slist_free_all(hdrs);
			return rc;
		}
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, h->endpoint);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "goscope");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->cfg.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, res);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	if (h->cfg.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.ca_file);
	if (h->cfg.insecure_skip_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	}
	h->errbuf[0] = '\0';
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	} else {
		res->status = 0;
		res->aborted = cc == CURLE_ABORTED_BY_CALLBACK;
		res->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		snprintf(res->error, sizeof(res->error), "%s",
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
	}
	/* The credentials leave the handle with the request. */
	curl_easy_setopt(c, CURLOPT_USERPWD, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (userpwd) {
		explicit_bzero(userpwd, strlen(userpwd));
		free(userpwd);
	}
	return 0;
}
