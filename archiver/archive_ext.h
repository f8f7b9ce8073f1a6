/* archive_ext.h - edits, deletes and search over archive.db
 * (docs/PROTOCOL.md, "edit", "delete", "search"), on an archive handle:
 * same thread, same transactions (in SQLite, archive_edit.c and
 * archive_search.c use the handle's connection, archive_sqlite.h).
 *
 * An edit or a delete changes the text in place and stores a row of its
 * own, which sync returns so that a device that had the original applies
 * the change:
 *   edit:   the text's body := the new one, edited := when; a row of type
 *           'edit' from the text's sender (by = from), to the same
 *           conversation, ref/of naming the text, body the new text.
 *   delete: the text becomes a tombstone: body '', deleted := when,
 *           deleted_by := who; a row of type 'delete' from who deleted it
 *           (by = from: the sender, or a room's owner or admin), ref/of
 *           naming the text, body ''.
 * The schema's triggers (archive.c) keep msg_fts (an edit reindexes, a
 * tombstone leaves the index) and reactions (a tombstone has none) right.
 *
 * Search reads msg_fts (a trigram index of the texts not deleted, filled
 * in batches up to a watermark: archive__index_mark), newest first, after
 * the texts above the watermark (matched through a small index of the
 * connection's own), and keeps the hits the asker may read, as history
 * would give them: direct messages to or from them stored since their account was
 * created, messages of rooms they are in now stored since the room was
 * created. It looks at a bounded number of index entries per page, so a
 * page costs about the same on any archive, whatever the text; a page may
 * then hold fewer hits than asked for and still say more. */
#ifndef MQCHAT_ARCHIVE_EXT_H
#define MQCHAT_ARCHIVE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "archive.h"
#include "names.h"

/* A text an edit or a delete is about. */
struct archive_text {
	int64_t seq;
	char id[MSGID_MAX_LEN + 1];
	char sender[NAME_MAX_LEN + 1];
	char recipient[NAME_MAX_LEN + 1];   /* "" for a room's */
	char room[NAME_MAX_LEN + 1];        /* "" for a direct message */
	int64_t server_ts;                  /* when the archiver stored it (ms) */
	bool deleted;                       /* a tombstone already */
};

/* The newest text (type 'text') of sender with id, of room (NULL: of any
 * conversation), into *t. MQC_OK, MQC_ERR_NOTFOUND (none) or another
 * MQC_ERR_*. Who may change it (since when, window, role) is the caller's
 * to check; call it inside the write transaction (archive__begin) that
 * changes it, so nothing changes it in between. */
int archive__text_find(struct archive *ar, const char *sender, const char *id, const char *room,
		struct archive_text *t);

/* Edit text t (found by archive__text_find, not deleted) to body at now
 * (ms): update it and store its 'edit' row with id row_id (unique for the
 * sender), *seq the row's seq. Inside the caller's transaction. MQC_OK or
 * an MQC_ERR_*. */
int archive__text_edit(struct archive *ar, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq);

/* Delete text t (not deleted yet) by who at now (ms): make it a tombstone
 * and store its 'delete' row from who with id row_id (unique for who),
 * *seq the row's seq. Inside the caller's transaction. MQC_OK or an
 * MQC_ERR_*. */
int archive__text_delete(struct archive *ar, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq);

/* A search page looks at index entries until it has its hits, or has
 * looked at this many, or has spent this long (checked between entries):
 * the bounds that keep a page under 50 ms on a 1,000,000-message archive
 * whatever the text, while a conversation of the asker's among millions
 * of others' still gets hits on most pages. */
#define ARCHIVE_SEARCH_SCAN 5000
#define ARCHIVE_SEARCH_BUDGET_MS 10

/* A search. rooms[0..nrooms) are the rooms the asker may read, each with
 * its created time (archive_room, archive.h); with or room narrow it to
 * one conversation (room must then be one of rooms). */
struct archive_search {
	const char *text;            /* 3..256 bytes of UTF-8, matched as a literal substring */
	const char *user;
	int64_t user_since;          /* the asker's account's created */
	const struct archive_room *rooms;
	size_t nrooms;
	const char *with;            /* NULL, or only the DMs with this person */
	const char *room;            /* NULL, or only this room */
	int64_t before;              /* only seqs below it; <= 0: no bound */
	int limit;                   /* hits wanted, >= 1 */
	int max_scan;                /* <= 0: ARCHIVE_SEARCH_SCAN */
	int budget_ms;               /* <= 0: ARCHIVE_SEARCH_BUDGET_MS */
};

/* New reference: up to q->limit texts (not deleted) whose body holds
 * q->text, case-insensitively, that q->user may read, newest first, in the
 * archived-message form (archive__get's). *more says whether older hits
 * may exist; then *next is the `before` of the next page (every seq from
 * it up has been looked at). NULL on error. */
json_t *archive__search(struct archive *ar, const struct archive_search *q, bool *more, int64_t *next);

/* The FTS5 query of a literal text: text between double quotes, each of
 * its double quotes doubled (a string, never syntax), into out (outlen
 * bytes). False if it does not fit. */
bool archive__fts_literal(const char *text, char *out, size_t outlen);

#endif
