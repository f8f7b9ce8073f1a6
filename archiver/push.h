/* push.h - push notifications: the push thread, presence, and the rules
 * they follow (archiver/README.md, "Push notifications").
 *
 * The push thread (push.c) has connections of its own: archive.db (read,
 * WAL: it never blocks ingest's writer), auth.db (read: room members) and
 * push.db (push_store.h). From a cursor kept in push.db it reads the texts
 * ingest stored, decides who is told (push__recipients), queues a job per
 * push target of each person who is not online and has not muted the
 * conversation, and sends the jobs that are due through push_send.h (libcurl
 * multi: several requests in flight, HTTP/2 for APNs). Storing never waits
 * for any of it: the poll loop only sets a flag (push__wake) and updates the
 * presence map (push__presence, a hash update under a mutex).
 *
 * Who is online: the archiver subscribes to chat/presence/+ on connection
 * 0; retained presence arrives at each subscribe, an empty payload is "no
 * presence" (offline). */
#ifndef MQCHAT_PUSH_H
#define MQCHAT_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct push;

/* Rows of archive.db read per batch (one push.db transaction each). */
#define PUSH_BATCH 500
/* Requests in flight at once. */
#define PUSH_INFLIGHT_MAX 64
/* Retries: 1 s doubling to 10 min (plus up to a quarter of jitter); a job
 * is given up once its backoffs add up to 24 h. */
#define PUSH_BACKOFF_MIN_MS 1000
#define PUSH_BACKOFF_MAX_MS (10 * 60 * 1000)
#define PUSH_GIVE_UP_MS (24LL * 3600 * 1000)
/* At SIGTERM, requests in flight get this long to finish. */
#define PUSH_STOP_GRACE_MS 2000
/* Texts stored longer ago than this when the push thread reads them (it was
 * off, the archiver was down) are not notified: old news. */
#define PUSH_MAX_AGE_MS (24LL * 3600 * 1000)
/* The longest preview, in characters (code points). */
#define PUSH_PREVIEW_MAX 200

/* Check the push settings of cfg at start: the files named exist (the
 * default VAPID key may be missing: push__start makes it), URLs parse and
 * are https (http too with push_allow_http), APNs has all four settings or
 * none, the FCM service account has its members. MQC_OK, or MQC_ERR_INVAL
 * with "SETTING: why" in err. */
int push__check_config(const struct config *cfg, char *err, size_t errlen);

/* Is url an absolute https URL (http too when allow_http) with a host and
 * without user or password? The one rule for the push settings' URLs and
 * the endpoints and webhook URLs people register. */
bool push__url_ok(const char *url, int allow_http);

/* Make cfg->push_vapid_key (a new P-256 key, mode 0600) if it is missing:
 * `init` does, and `run` at start for a data folder of an older release.
 * MQC_OK with *made (may be NULL) telling whether it was made, or
 * MQC_ERR_IO with err filled. */
int push__vapid_ensure(const char *path, bool *made, char *err, size_t errlen);

/* Start the push thread for cfg (borrowed: it must outlive the thread) on
 * the stores at archive_path and auth_path (push.db beside them, in
 * cfg->datadir). Checks the settings (push__check_config), makes the
 * default VAPID key if missing, loads the keys. MQC_OK and *out, or an
 * error with err filled (nothing started): MQC_ERR_INVAL for a setting or
 * key that is wrong, another code for a store that cannot be opened. */
int push__start(const struct config *cfg, const char *archive_path, const char *auth_path,
		struct push **out, char *err, size_t errlen);
/* Stop the thread: requests in flight get PUSH_STOP_GRACE_MS, then are
 * abandoned; jobs not sent stay in push.db for the next start. Frees p;
 * NULL is fine. */
void push__stop(struct push *p);

/* New texts may be in archive.db (ingest committed). Cheap, any thread. */
void push__wake(struct push *p);

/* A message on chat/presence/<user> (user: the topic's level, n bytes):
 * payload {"status":"online",...} marks user online, anything else
 * (offline, empty: no presence) not. Poll loop. */
void push__presence(struct push *p, const char *user, size_t n, const void *payload, size_t len);
/* Is user online now? Any thread. */
bool push__online(struct push *p, const char *user);

/* ---- the rules, pure (tests/unit/test_push.c) ---- */

/* Who is told of a text from sender: to recipient (a direct message: not
 * a note to self), or to room's members (each of members[0..n)) but the
 * sender. Calls cb(name, arg) for each; returns how many. */
int push__recipients(const char *sender, const char *recipient, const char *room,
		const char *const *members, size_t n, void (*cb)(const char *name, void *arg), void *arg);

/* The conversation as recipient sees it: "d:<sender>" or "r:<room>". false
 * if it does not fit in out. */
bool push__conv(const char *sender, const char *room, char *out, size_t outlen);

/* The delay before attempt attempts + 1 (attempts >= 1 failures so far):
 * 1 s doubling to PUSH_BACKOFF_MAX_MS, plus jitter (0..1/4 of it, from
 * rnd), and never before retry_after_ms (a provider's Retry-After; 0: none). */
int64_t push__backoff_ms(int attempts, int64_t retry_after_ms, uint32_t rnd);
/* Has a job failed attempts times over at least PUSH_GIVE_UP_MS? (The
 * backoffs without jitter add up to it: a Retry-After only makes it
 * longer.) */
bool push__give_up(int attempts);
/* A Retry-After value (seconds, or an HTTP date) as ms from now_ms (wall
 * clock); -1 if it is neither, 0 for a date in the past. */
int64_t push__retry_after_ms(const char *value, int64_t now_ms);
/* The preview of body: at most PUSH_PREVIEW_MAX characters of UTF-8, cut
 * at a character boundary. New string (free), or NULL (no memory). */
char *push__preview(const char *body);

#endif
