/* notice.h - why the broker refused something I sent: the refusal notices
 * the plugin sends on chat/notice/<me> (docs/PROTOCOL.md, "Refusals"), kept
 * until the command that sent the message claims them, and put in words. */
#ifndef MQCHAT_NOTICE_H
#define MQCHAT_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

/* Notices not yet claimed that a session keeps (the oldest goes first). The
 * plugin sends at most 10 at once and 10 a second per account. */
#define NOTICE_KEEP 64

/* One refusal notice; every string is a copy, NUL-terminated. */
struct notice {
	char ref[MSGID_MAX_LEN + 1];  /* the refused message's id; "" if null */
	char client[CLIENTID_MAX_LEN + 1]; /* the client id that sent it; "" if not said */
	char code[32];                /* stable code: "blocked", "rate_limited", ... */
	char message[128];            /* the plugin's words, control characters as '?' */
	char kind[8];                 /* "inbox", "room" or "" from the topic */
	char target[NAME_MAX_LEN + 1];/* recipient or room from the topic, or "" */
	int64_t retry_ms;             /* rate_limited: when the next may go; else 0 */
};

struct notice_box {
	struct notice n[NOTICE_KEEP];
	int count;                    /* entries in use, n[0..count) */
};

/* Parse a payload received on chat/notice/<me>. Returns true and fills *n
 * if it is a {"type":"refused",...} notice; false for anything else. */
bool notice__parse(const void *payload, size_t len, struct notice *n);
/* True if a payload received on chat/notice/<me> is a resync notice,
 * {"type":"resync",...}: messages on their way to me may have been lost,
 * and whoever shows them syncs (docs/PROTOCOL.md, "Several nodes"). */
bool notice__is_resync(const void *payload, size_t len);
/* Keep a copy of n in b, dropping the oldest if b is full. */
void notice__keep(struct notice_box *b, const struct notice *n);
/* Move the notice about message id ref out of b into *out. Returns false
 * (and leaves *out alone) if none came. */
bool notice__take(struct notice_box *b, const char *ref, struct notice *out);
/* Put a refusal in words a person understands, without a prefix, into out:
 * "bob blocks you", "sending too fast, retry in 0.9 s". n may be NULL (no
 * notice came): then the MQTT 5 PUBACK reason is all there is to go by. */
void notice__explain(const struct notice *n, int reason, char *out, size_t len);

#endif
