/* push_send.h - sending push notifications: the four providers' requests
 * on one libcurl multi handle, owned by the push thread (push.c).
 *
 * Providers (archiver/README.md, "Push notifications"):
 *   Web Push  POST <endpoint>, RFC 8291 aes128gcm body, VAPID (RFC 8292)
 *             Authorization, the JWT kept per origin for up to 12 h
 *   FCM       HTTP v1 messages:send with an OAuth2 token from the service
 *             account's token_uri (jwt-bearer), kept until 60 s before it
 *             expires; the notification as "data" (strings)
 *   APNs      HTTP/2 POST /3/device/<token>, the provider token (ES256 JWT)
 *             kept for up to 50 min
 *   webhook   POST <url>, the notification, signed with HMAC-SHA256
 * Every request: http/https only (https only unless push_allow_http), no
 * redirects, 10 s at most. */
#ifndef MQCHAT_PUSH_SEND_H
#define MQCHAT_PUSH_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "push_store.h"

struct push_sender;

#define PUSH_SEND_TIMEOUT_MS 10000

/* What became of a request. */
enum push_outcome {
	PUSH_SENT = 1,          /* accepted (2xx): the job is done */
	PUSH_GONE,              /* the target no longer exists: remove it and its jobs */
	PUSH_RETRY,             /* 429, 5xx, network: again later */
	PUSH_FAILED,            /* refused for good (other 4xx): give the job up */
};

struct push_result {
	enum push_outcome outcome;
	int status;             /* HTTP status, 0: none (network) */
	int64_t retry_after_ms; /* from Retry-After, 0: none */
	char why[160];          /* for the log */
};

/* Called for each finished request with the arg given to push_send__job. */
typedef void (*push_done_cb)(void *cbarg, void *arg, const struct push_result *r);

/* Set up for cfg's providers (borrowed; must outlive s): load the VAPID
 * key if it exists, the FCM service account, the APNs key. MQC_OK and *out,
 * or an error with err filled. */
int push_send__new(const struct config *cfg, struct push_sender **out, char *err, size_t errlen);
/* Abandon every request in flight (their callbacks are not called) and
 * free s. NULL is fine. */
void push_send__free(struct push_sender *s);

/* Is provider p set up? */
bool push_send__has(const struct push_sender *s, enum push_provider p);

/* Start sending job to target t (both borrowed, copied as needed). arg
 * comes back in the callback. MQC_OK; MQC_ERR_BUSY when the request must
 * wait (FCM's token is being fetched: try later); else the job cannot be
 * sent at all (*r says why, outcome PUSH_FAILED or PUSH_GONE). */
int push_send__job(struct push_sender *s, const struct push_job *job, const struct push_target *t,
		void *arg, struct push_result *r);
/* Requests in flight. */
int push_send__inflight(const struct push_sender *s);
/* Wait up to timeout_ms for network activity (or push_send__wakeup), move
 * every request on, and call cb(cbarg, arg, result) for those finished. */
void push_send__run(struct push_sender *s, int timeout_ms, push_done_cb cb, void *cbarg);
/* Make push_send__run return now. Any thread. */
void push_send__wakeup(struct push_sender *s);

/* ---- pure parts, for tests ---- */

/* The notification (new reference) for job: {"type":"message","with"|"room",
 * "from","id","seq","count"[,"body"]}. */
json_t *push_send__notification(const struct push_job *job);
/* The outcome of an answer of provider p: HTTP status (0: no answer) and
 * body (may be NULL). */
enum push_outcome push_send__classify(enum push_provider p, int status, const char *body);
/* Web Push's Topic for conv: base64url of its SHA-256's first 24 bytes (32
 * characters). */
void push_send__topic(const char *conv, char out[33]);
/* Is sa (AF_INET or AF_INET6) a public address: not loopback, private,
 * shared, link local, unique local, multicast, documentation or otherwise
 * reserved? People's URLs (Web Push endpoints, webhooks) are connected to
 * only there unless push_allow_http. */
struct sockaddr;
bool push_send__public_addr(const struct sockaddr *sa);
/* The origin (scheme://host[:port]) of url into out; false if it does not parse. */
bool push_send__origin(const char *url, char *out, size_t outlen);

#endif
