/* metrics_http.h - the archiver's metrics and health endpoint.
 *
 * `mqchat-archiver run --metrics-port N [--metrics-bind ADDR]` (config
 * keys metrics_port, metrics_bind; port 0, the default, serves nothing;
 * the address defaults to 127.0.0.1) serves, with libmicrohttpd on a
 * thread of its own, as the web app's server does (http.h, whose helpers
 * it shares):
 *   GET /metrics  every figure of metrics.h in the Prometheus text format
 *                 0.0.4 (text/plain; version=0.0.4; charset=utf-8).
 *   GET /health   200 {"status":"ok","broker":"ok","stores":{"auth.db":
 *                 "ok","archive.db":"ok","push.db":"ok"}}, or 503 with
 *                 "status":"fail" and each failing part's reason in place
 *                 of its "ok". The broker is reachable while the
 *                 archiver's connection 0 is up; a store is writable when
 *                 the archiver's last write to it succeeded and a
 *                 `BEGIN IMMEDIATE; ROLLBACK` on a connection of this
 *                 thread's own, opened for the probe (busy timeout
 *                 METRICS_HTTP_BUSY_MS), succeeds. push.db with push off
 *                 is "off", which is not a failure.
 * HEAD works for both; any other path is 404, any other method 405. Every
 * answer is Cache-Control: no-store. Bounded like the web app's server:
 * METRICS_HTTP_MAX_CONNECTIONS at once, METRICS_HTTP_REQUEST_MEMORY a
 * request, idle connections closed after METRICS_HTTP_IDLE_TIMEOUT_S.
 *
 * Nothing here reads what the other threads own: the figures are the
 * registry's atomics and locked copies, the sizes a stat() per file, the
 * probes their own SQLite connections. */
#ifndef MQCHAT_METRICS_HTTP_H
#define MQCHAT_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define METRICS_HTTP_MAX_CONNECTIONS 32
#define METRICS_HTTP_REQUEST_MEMORY (16 * 1024)
#define METRICS_HTTP_IDLE_TIMEOUT_S 30
#define METRICS_HTTP_BUSY_MS 1000

struct metrics_http;

struct metrics_http_opts {
	const char *bind;        /* numeric IPv4 or IPv6 address */
	int port;                /* 1..65535 */
	const char *datadir;     /* the stores' folder (copied) */
	bool push;               /* push is on: push.db is a store to check */
};

/* Start serving on o->bind:o->port. MQC_OK with *out (stop it with
 * metrics_http__stop); otherwise MQC_ERR_INVAL (not an address),
 * MQC_ERR_IO (the port cannot be had) or MQC_ERR_NOMEM, with one line in
 * err, and *out NULL. */
int metrics_http__start(const struct metrics_http_opts *o, struct metrics_http **out, char *err,
		size_t errlen);
/* Stop serving, wait for the thread, free everything. NULL is fine. */
void metrics_http__stop(struct metrics_http *mh);

#endif
