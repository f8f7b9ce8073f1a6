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
	long seen_added;        /* keys ever put in seen: texts, and receipts and
	                         * other envelopes (my own receipts' copies too) */
};

/* Set up f for session s (borrowed); status is a string constant. */
void feed__init(struct feed *f, struct session *s, const char *me, bool json,
		const char *status);
/* Mark my message id (sent by this program) as seen: my own copy of it
 * (chat/inbox/<to>/<me>) is not shown. */
void feed__sent(struct feed *f, const char *id);
/* The session's message callback (ud is the struct feed): texts, receipts,
 * events, reactions, edits, deletes, read markers, my own copies from my
 * other devices, typing indicators; an envelope type of a later contract
 * is left out quietly. */
void feed__message_cb(struct session *s, const char *topic, const void *payload,
		size_t len, void *ud);
/* A row of a sync answer (borrowed), shown as the message would have been
 * shown live, with its receipt: put back into its live topic and envelope
 * and handed to feed__message_cb, so one already shown (the same from and
 * id, among the last FEED_SEEN) is not shown again. Tombstones and rows of
 * a type listen does not show are left out. */
void feed__archived(struct feed *f, json_t *m);
/* Print one archived message (an object of a history/sync/search answer,
 * borrowed): a text with its marks ("  (edited)", its status if mine) and
 * the lines under it (what it replies to, its reactions), a tombstone as
 * "(message deleted)", an event, or an edit, delete or reaction row (sync)
 * in the words listen uses. with_to: show "from -> to" for direct messages
 * (sync shows every conversation); me marks the status of my own messages;
 * page (borrowed, or NULL): the answer's messages, where the text a reply
 * quotes is looked up. */
void feed__print_archived(json_t *m, bool json, bool with_to, const char *me, json_t *page);
/* Print the last message of a conversation (archived form, borrowed; NULL:
 * "(no messages)") as one line: "[2026-12-05 01:00:00] bob: see you", my
 * own as "me: ...", the text cut to its first line and 60 characters. */
void feed__print_preview(json_t *m, const char *me);
/* Print o (borrowed) as one JSON line. */
void feed__print_json(json_t *o);

#endif
