/* http.h - the web app's static server, run inside the archiver daemon.
 *
 * `mqchat-archiver run --http-port N --web-dir DIR [--web-mqtt-url URL]`
 * serves the files of DIR (make web's BUILD/web) and a generated
 * /config.json over HTTP/1.1, with libmicrohttpd on a thread of its own:
 * nothing of it runs on the archiver's MQTT loop, and it touches neither
 * store.
 *
 * Why not Mosquitto's http_dir: 2.0.11 answers over HTTP/1.0 without a
 * Content-Type header (browsers refuse module scripts without one, and
 * strict CSS loading too), without compression and without the security
 * headers below (archiver/README.md, "The web app").
 *
 * Decisions:
 *   - Every file is read into memory at start (regular files of DIR and of
 *     its subfolders, one level deep; hidden names and links are skipped),
 *     within HTTP_MAX_FILE each and HTTP_MAX_TOTAL in all. A request maps
 *     its path to one of them or gets 404: no request opens a file, so no
 *     path (`/../`, `%2e%2e`, `//etc/passwd`) can reach outside DIR. Paths
 *     are matched as sent, never percent-decoded (the app's names need no
 *     escaping); `/` is /index.html. A change to DIR is served after a
 *     restart of the archiver.
 *   - A file's `.gz` twin (make web writes one beside each file) is sent
 *     with Content-Encoding: gzip when the request's Accept-Encoding allows
 *     gzip (q > 0), with Vary: Accept-Encoding.
 *   - Only GET and HEAD (405 with Allow otherwise). ETag (a hash of the
 *     bytes) and If-None-Match give 304; Cache-Control: no-cache makes the
 *     browser ask each time, which costs a 304 on loopback and never
 *     serves an old app after an update.
 *   - Every answer carries the Content-Security-Policy (no inline script
 *     or style; connect-src allows the MQTT WebSocket origin),
 *     X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer.
 *   - Bounded: HTTP_MAX_CONNECTIONS at once, HTTP_REQUEST_MEMORY for a
 *     request's line and headers (more is refused by libmicrohttpd), idle
 *     connections closed after HTTP_IDLE_TIMEOUT_S. */
#ifndef MQCHAT_HTTP_H
#define MQCHAT_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_FILE (8u * 1024 * 1024)
#define HTTP_MAX_TOTAL (64u * 1024 * 1024)
#define HTTP_MAX_FILES 1024
#define HTTP_MAX_CONNECTIONS 256
#define HTTP_REQUEST_MEMORY (32 * 1024)
#define HTTP_IDLE_TIMEOUT_S 60
/* config.json's mqtt_url when none is given: the broker's WebSockets
 * listener of config/mosquitto.conf, on the host the page came from (the
 * app replaces {host} with location.hostname). */
#define HTTP_DEFAULT_MQTT_URL "ws://{host}:8080"

struct http;

struct http_opts {
	const char *bind;       /* numeric IPv4 or IPv6 address */
	int port;               /* 1..65535 */
	const char *dir;        /* the folder to serve */
	const char *mqtt_url;   /* ws:// or wss:// URL for config.json; NULL: the default */
};

/* Check o, load the folder and start serving on o->bind:o->port. MQC_OK
 * with *out (stop it with http__stop); otherwise MQC_ERR_INVAL (a bad
 * URL or address), MQC_ERR_IO (the folder cannot be read, the port cannot
 * be had), MQC_ERR_TOOBIG (a file or the whole folder over the bounds) or
 * MQC_ERR_NOMEM, with one line in err, and *out NULL. */
int http__start(const struct http_opts *o, struct http **out, char *err, size_t errlen);
/* Stop serving: close the socket and every connection, wait for the
 * server's thread, free everything. NULL is fine. */
void http__stop(struct http *h);

/* ---- shared with the metrics server (metrics_http.c) ---- */

/* A listening socket on bind_addr:port (a numeric address), so that a
 * taken port or a wrong address is said plainly before libmicrohttpd
 * takes the socket; setting ("http", "metrics") names the settings in the
 * message ("<setting>_bind", "<setting>_port"). MQC_OK with *fd and *v6
 * (an IPv6 address); MQC_ERR_INVAL (not an address) or MQC_ERR_IO with
 * err filled and *fd -1. */
int http__listen(const char *setting, const char *bind_addr, int port, int *fd, bool *v6,
		char *err, size_t errlen);
/* libmicrohttpd's logger (MHD_OPTION_EXTERNAL_LOGGER): its messages at
 * debug level, after the prefix cls (a const char *). */
void http__mhd_log_cb(void *cls, const char *fmt, va_list ap);
/* Where a request handler stands: libmicrohttpd calls it once the request
 * line and headers are in, then for each piece of a body and once at its
 * end. GET and HEAD are answered at that end (answered at the first call,
 * libmicrohttpd would close the connection, not knowing whether a body
 * follows); any other method at once (405), its body never read. */
enum http_step {
	HTTP_STEP_WAIT,          /* return MHD_YES, answer later */
	HTTP_STEP_ANSWER,        /* answer now */
	HTTP_STEP_NOT_ALLOWED,   /* answer 405 now */
};
enum http_step http__get_step(const char *method, size_t *upload_data_size, void **req_cls);

#endif
