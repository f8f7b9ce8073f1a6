/* metrics_http.c - /metrics and /health over HTTP (metrics_http.h says what
 * they answer). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "archive.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "push_store.h"
#include "timeutil.h"
#include "userdb.h"

struct metrics_http {
	struct MHD_Daemon *mhd;
	char *datadir;
	bool push;
	int listen_fd;           /* ours until libmicrohttpd has it */
};

/* The stores /health checks, in the data folder, and each one's check
 * that it can be written now (NULL if so, else why, in why). */
static const struct {
	enum metrics_store s;
	const char *file;
	const char *(*writable)(const char *path, int busy_ms, char *why, size_t whylen);
} stores[] = {
	{MS_AUTH, "auth.db", userdb__writable},
	{MS_ARCHIVE, "archive.db", archive__writable},
	{MS_PUSH, "push.db", push_store__writable},
};

/* Queue the answer body[0..len) (taken: freed by libmicrohttpd, or here on
 * failure) with status and type. */
static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
		char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if(r == NULL){
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if(status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	char *body = strdup(text);

	if(body == NULL) return MHD_NO;
	return answer(conn, status, "text/plain; charset=utf-8", body, strlen(body));
}

static enum MHD_Result answer_metrics(const struct metrics_http *mh, struct MHD_Connection *conn)
{
	struct metrics_buf b = {0};

	metrics__render(&b, mh->datadir, time__mono_ms());
	if(b.failed || b.p == NULL){
		metrics_buf__free(&b);
		return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

static enum MHD_Result answer_health(const struct metrics_http *mh, struct MHD_Connection *conn)
{
	json_t *o, *st;
	bool ok = metrics__broker_is_up();
	char *text;
	size_t i;

	st = json_object();
	o = json_pack("{s:s, s:s}", "status", "ok", "broker", ok ? "ok" : "not connected");
	if(o == NULL || st == NULL || json_object_set(o, "stores", st) != 0) goto nomem;
	for(i = 0; i < sizeof(stores) / sizeof(stores[0]); i++){
		char path[4200], why[300];
		const char *bad = NULL;
		int last = metrics__store_last(stores[i].s);

		if(stores[i].s == MS_PUSH && !mh->push){
			if(json_object_set_new(st, stores[i].file, json_string("off")) != 0) goto nomem;
			continue;
		}
		if(last != MQC_OK){
			snprintf(why, sizeof(why), "last write failed: %s", mqc_strerror(last));
			bad = why;
		}else{
			snprintf(path, sizeof(path), "%s/%s", mh->datadir, stores[i].file);
			bad = stores[i].writable(path, METRICS_HTTP_BUSY_MS, why, sizeof(why));
		}
		if(bad) ok = false;
		if(json_object_set_new(st, stores[i].file, json_string(bad ? bad : "ok")) != 0) goto nomem;
	}
	if(!ok && json_object_set_new(o, "status", json_string("fail")) != 0) goto nomem;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(st);
	json_decref(o);
	if(text == NULL) return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	if(!ok) log_debug("metrics: /health: %s", text);
	return answer(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", text,
			strlen(text));
nomem:
	json_decref(st);
	json_decref(o);
	return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
}

static enum MHD_Result request_cb(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload_data,
		size_t *upload_data_size, void **req_cls)
{
	const struct metrics_http *mh = cls;

	(void)version;
	(void)upload_data;
	switch(http__get_step(method, upload_data_size, req_cls)){
	case HTTP_STEP_NOT_ALLOWED:
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
	case HTTP_STEP_WAIT:
		return MHD_YES;
	case HTTP_STEP_ANSWER:
		break;
	}
	if(strcmp(url, "/metrics") == 0) return answer_metrics(mh, conn);
	if(strcmp(url, "/health") == 0) return answer_health(mh, conn);
	return answer_text(conn, MHD_HTTP_NOT_FOUND, "Not Found\n");
}

int metrics_http__start(const struct metrics_http_opts *o, struct metrics_http **out, char *err,
		size_t errlen)
{
	struct metrics_http *mh;
	bool v6 = false;
	int rc;

	*out = NULL;
	mh = calloc(1, sizeof(*mh));
	if(mh == NULL || (mh->datadir = strdup(o->datadir)) == NULL){
		free(mh);
		mqc_seterr(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	mh->push = o->push;
	mh->listen_fd = -1;
	rc = http__listen("metrics", o->bind, o->port, &mh->listen_fd, &v6, err, errlen);
	if(rc != MQC_OK) goto fail;
	/* /health builds JSON on this thread: jansson's hash seed is chosen
	 * before a second thread makes objects (as worker.c does). */
	json_object_seed(0);
	mh->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG
			| (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, request_cb, mh,
			MHD_OPTION_EXTERNAL_LOGGER, http__mhd_log_cb, (void *)(uintptr_t)"metrics",
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)mh->listen_fd,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_MAX_CONNECTIONS,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_REQUEST_MEMORY,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_IDLE_TIMEOUT_S,
			MHD_OPTION_END);
	if(mh->mhd == NULL){
		mqc_seterr(err, errlen, "cannot start the metrics server on %s:%d (libmicrohttpd refused;"
				" -v says why)", o->bind, o->port);
		rc = MQC_ERR_IO;
		goto fail;
	}
	mh->listen_fd = -1;   /* libmicrohttpd's now: MHD_stop_daemon closes it */
	log_info("metrics: serving /metrics and /health on http://%s%s%s:%d/", v6 ? "[" : "", o->bind,
			v6 ? "]" : "", o->port);
	*out = mh;
	return MQC_OK;
fail:
	metrics_http__stop(mh);
	return rc;
}

void metrics_http__stop(struct metrics_http *mh)
{
	if(mh == NULL) return;
	if(mh->mhd) MHD_stop_daemon(mh->mhd);
	if(mh->listen_fd >= 0) close(mh->listen_fd);
	free(mh->datadir);
	free(mh);
}
