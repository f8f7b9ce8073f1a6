/* feed.h - incoming chat messages for listen and chat: parse, drop
 * duplicates, print (text or JSON lines), acknowledge with receipts; and the
 * printing of archived messages for history and sync. */
#ifndef MQCHAT_FEED_H
#define MQCHAT_FEED_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mqchat.h"

#define FEED_SEEN 256

struct session;

struct feed {
	struct session *s;
	const char *me;         /* borrowed */
	bool json;
	const char *status;     /* receipt status sent back: "delivered" or "read" */
	long count;             /* messages and receipts printed */
	char seen[FEED_SEEN][NAME_MAX_LEN + 1 + MSGID_MAX_LEN + 1];
	int seen_next;
};

/* Set up f for session s (borrowed); status is a string constant. */
void feed__init(struct feed *f, struct session *s, const char *me, bool json,
		const char *status);
/* The session's message callback (ud is the struct feed). */
void feed__message_cb(struct session *s, const char *topic, const void *payload,
		size_t len, void *ud);
/* Print one archived message (an object of a history/sync answer, borrowed).
 * with_to: show "from -> to" for direct messages (sync shows every
 * conversation); me marks the status of my own messages. */
void feed__print_archived(json_t *m, bool json, bool with_to, const char *me);

#endif
