/* push_store.h - push.db: who gets push notifications, and those on their
 * way. A file of its own in the data folder, so nothing the push thread
 * writes ever waits for (or holds up) archive.db's writer.
 *
 * Tables (schema version in meta "schema"):
 *   targets(user, device, provider, data, secret, created, last_ok, failures,
 *           PRIMARY KEY(user, device))   one target per device of a person
 *   mutes(user, conv, until)             until 0: for ever
 *   prefs(user PRIMARY KEY, previews)    previews: 0 (default) or 1
 *   queue(id INTEGER PRIMARY KEY, user, device, conv, count, last_seq, msg_id,
 *         sender, preview, due, attempts, created, UNIQUE(user, device, conv))
 *                                         notifications not yet accepted by a provider
 *   meta(key PRIMARY KEY, value)         "schema", "cursor" (archive seq done)
 * conv is "d:<peer>" (as the notified person sees it) or "r:<room>".
 *
 * The tables above are the SQLite file's. Each function opens no transaction of its caller's; each write is one
 * short BEGIN IMMEDIATE transaction. Connections are per thread (the
 * worker's for the RPC ops, the push thread's, the CLI's). Returns MQC_OK
 * or an MQC_ERR_* code (common/err.h) with err filled where there is one. */
#ifndef MQCHAT_PUSH_STORE_H
#define MQCHAT_PUSH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "names.h"

/* An open push store: a connection of one thread. Opaque: push_store.c
 * sends each call to the backend DATA/store.conf names (SQLite's push.db,
 * push_store_sqlite.c; or PostgreSQL, push_store_pg.c). */
struct push_store;

/* How long a job push_store__due handed out stays taken on a shared store:
 * well past a request's time limit (push_send.h, 10 s), so a job is sent
 * twice only when its taker died or hung with it. */
#define PUSH_STORE_LEASE_MS 30000

/* At most this many targets per person (one per device). */
#define PUSH_TARGETS_MAX 32

enum push_provider {
	PUSH_WEBPUSH = 1,   /* data: {"endpoint","p256dh","auth"} */
	PUSH_FCM,           /* data: {"token"} */
	PUSH_APNS,          /* data: {"token"} (hex device token) */
	PUSH_WEBHOOK,       /* data: {"url"}; secret: the HMAC key, made at registration */
};

struct push_target {
	char user[NAME_MAX_LEN + 1];
	char device[DEVICE_MAX_LEN + 1];
	enum push_provider provider;
	json_t *data;       /* owned */
	char secret[64];    /* webhook: base64url of 32 random bytes; else "" */
};

struct push_job {
	int64_t id;
	char user[NAME_MAX_LEN + 1];
	char device[DEVICE_MAX_LEN + 1];
	char conv[NAME_MAX_LEN + 3];
	int count;          /* messages collapsed into it */
	int64_t last_seq;
	char msg_id[MSGID_MAX_LEN + 1];
	char sender[NAME_MAX_LEN + 1];
	char *preview;      /* owned, NULL unless the person allows previews */
	int attempts;
	int64_t due;        /* ms since the epoch */
};

/* Open (creating it and its schema if missing) DATADIR/push.db. */
int push_store__open(const char *datadir, struct push_store **out, char *err, size_t errlen);
void push_store__close(struct push_store *ps);
/* Can DATADIR/push.db's file at path be written now (the archiver's
 * /health)? NULL if so, else why, in why. Changes nothing. */
const char *push_store__writable(const char *path, int busy_ms, char *why, size_t whylen);
/* How long a statement waits for another connection's write lock. */
int push_store__set_busy_ms(struct push_store *ps, int ms);

const char *push_store__provider_name(enum push_provider p);   /* "webpush", ... */
int push_store__provider_parse(const char *name);              /* 0 if unknown */

/* Set (replace) the target of user's device. data is borrowed (copied).
 * For a webhook a new secret is made and copied to secret (64 bytes). */
int push_store__target_set(struct push_store *ps, const char *user, const char *device,
		enum push_provider p, json_t *data, char *secret, int64_t now_ms);
/* Remove user's target of device (NULL: all of user's); *removed (may be
 * NULL) says how many. Their queued jobs go too. */
int push_store__target_remove(struct push_store *ps, const char *user, const char *device,
		int *removed);
/* Every device of user except keep (device_revoke "others"). */
int push_store__target_remove_others(struct push_store *ps, const char *user, const char *keep,
		int *removed);
/* Everything of user's: targets, jobs, mutes, previews (the account is
 * deleted; a later holder of the name starts afresh). */
int push_store__user_forget(struct push_store *ps, const char *user);
/* user's targets for the push_targets answer: an array of {"device",
 * "provider","created","last_ok","failures"} (new reference). */
int push_store__targets_json(struct push_store *ps, const char *user, json_t **out);
/* user's targets for sending (free each with push_store__target_free, then
 * the array with free). */
int push_store__targets(struct push_store *ps, const char *user, struct push_target **out, int *n);
void push_store__target_free(struct push_target *t);
/* How many targets user has. */
int push_store__target_count(struct push_store *ps, const char *user, int *n);
/* A provider's answer about a target: ok (last_ok = now, failures 0), or
 * one more failure. */
int push_store__target_result(struct push_store *ps, const char *user, const char *device, bool ok,
		int64_t now_ms);

/* Mute conv for user until until_ms (0: for ever); unmute; the list as
 * [{"with"|"room", "until"}]; and the test (expired mutes do not count). */
int push_store__mute(struct push_store *ps, const char *user, const char *conv, int64_t until_ms);
int push_store__unmute(struct push_store *ps, const char *user, const char *conv);
int push_store__mutes_json(struct push_store *ps, const char *user, int64_t now_ms, json_t **out);
bool push_store__muted(struct push_store *ps, const char *user, const char *conv, int64_t now_ms);

/* Previews (message text in notifications): off unless the person set it. */
int push_store__previews_set(struct push_store *ps, const char *user, bool on);
bool push_store__previews(struct push_store *ps, const char *user);

/* Queue one message for user's device in conv: a new job due at due_ms,
 * or, if one for (user, device, conv) is waiting, that job takes this
 * message (count + 1, last_seq, msg_id, sender, preview; its due time is
 * kept): several messages of a conversation make one notification.
 * preview may be NULL. */
int push_store__enqueue(struct push_store *ps, const char *user, const char *device,
		const char *conv, int64_t seq, const char *msg_id, const char *sender,
		const char *preview, int64_t due_ms);
/* Up to max jobs due at now_ms, oldest due first, into jobs (each freed
 * with push_store__job_free); *n how many. On a shared store (PostgreSQL)
 * they are taken: another connection's due skips them (its push thread,
 * on another node) until job_sent, job_done or job_retry, or until
 * PUSH_STORE_LEASE_MS after now_ms (their taker died); this connection
 * gets them again. next_due counts another's taken job as due when its
 * lease ends. SQLite has one push thread and takes nothing. */
int push_store__due(struct push_store *ps, int64_t now_ms, struct push_job *jobs, int max, int *n);
void push_store__job_free(struct push_job *j);
/* The earliest due time of any job (0: none). */
int push_store__next_due(struct push_store *ps, int64_t *due_ms);
/* A job accepted by its provider (or given up): removed. */
int push_store__job_done(struct push_store *ps, int64_t id);
/* Job j (as push_store__due gave it) accepted by its provider: removed,
 * unless messages were enqueued into it while it was on its way (its
 * last_seq moved on): then it stays, due as it was, with count those
 * messages only, so they are notified too (job_done would drop them). */
int push_store__job_sent(struct push_store *ps, const struct push_job *j);
/* Try again at due_ms (attempts + 1). */
int push_store__job_retry(struct push_store *ps, int64_t id, int64_t due_ms);
/* Drop user's jobs (they came online: nothing to notify; or muted). */
int push_store__jobs_drop(struct push_store *ps, const char *user, const char *conv);

/* Several writes as one transaction (the push thread: a batch of
 * enqueues and the cursor after them, so a restart neither loses nor
 * repeats a message): the functions above then join it. */
int push_store__begin(struct push_store *ps);
int push_store__commit(struct push_store *ps);
void push_store__rollback(struct push_store *ps);

/* The archive seq the push thread has looked at (0 at first): one for
 * the store. Read inside a batch it is held until the batch ends, so
 * another connection's batch that reads it (another node's push thread,
 * reading the same shared archive) waits, then starts where this one
 * stopped: each message is queued once. */
int push_store__cursor(struct push_store *ps, int64_t *seq);
int push_store__set_cursor(struct push_store *ps, int64_t seq);

#endif
