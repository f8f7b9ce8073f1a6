/* archive.h - the message archive (archive.db), owned by the archiver.
 *
 * One table of messages keyed by seq (INTEGER PRIMARY KEY AUTOINCREMENT, so a
 * seq is never reused even after purges or erasures), in WAL mode with
 * synchronous=NORMAL: a commit is a write() into the WAL, which survives a
 * killed process. Every function is meant for one thread; the daemon and the
 * operators' CLI each open their own handle.
 *
 * Schema version 2 (docs/PROTOCOL.md; version 1 is upgraded in place on
 * first open, nothing lost):
 *   meta(key, value)            schema_version, invalid (count)
 *   messages(seq, sender, recipient, room, conv, type, id, body, ts,
 *            server_ts, status, idh,
 *            ref, of,               target of a reaction, edit or delete row
 *            reply_to, reply_from,  a text's quote
 *            emoji, remove,         a reaction row
 *            edited, deleted,       ms, NULL: never / not (a deleted text
 *            deleted_by,            is a tombstone: body '')
 *            n)                     a text's ordinal in its conversation
 *   convs(conv, last_seq, n)    per conversation: seq of its last text or
 *                               event (0: none left), texts so far
 *   reads(user, conv, peer, room, read_seq, read_n)
 *                               a person's read marker in a conversation;
 *                               unread = convs.n - read_n
 *   reactions(seq, user, emoji, at)   on the message seq, at (ms) when
 *   msg_fts                     FTS5 trigram index of texts not deleted
 *                               (external content messages.body, rowid seq),
 *                               up to meta fts_seq (archive__index_step)
 * conv is 'd:<a>|<b>' (the two users sorted) for a DM, 'r:<room>' for a room;
 * type is 'text', 'event', 'reaction', 'edit' or 'delete' (rows other than
 * texts and events have body '' but for an edit's new text); status is
 * 'sent', 'delivered' or 'read'; idh is a 64-bit hash of (sender, id) used
 * to find duplicates without a UNIQUE index over text. Triggers keep
 * msg_fts, reactions and convs right whoever updates or deletes messages:
 * an edit (UPDATE body) reindexes, a delete (UPDATE deleted) unindexes and
 * drops the reactions, a row going away takes its index entry and
 * reactions with it and moves its conversation's last_seq back.
 *
 * A name may have several holders over time (an account deleted, the name
 * taken again later; a room deleted and created again), and the archive
 * keeps the messages of each. server_ts, when the archiver stored a
 * message, tells them apart: a holder is answered only with messages
 * stored since its account or room was created (users.created,
 * rooms.created in auth.db), the "since" of the functions below. Reads
 * never scan an older holder's rows (seq_floor in archive.c). */
#ifndef MQCHAT_ARCHIVE_H
#define MQCHAT_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "names.h"

#define ARCHIVE_SCHEMA_VERSION 2
/* Rows deleted per transaction by purge, erase and expiry. */
#define ARCHIVE_BATCH 1000
/* How long a statement waits for a lock before it gives up (MQC_ERR_BUSY). */
#define ARCHIVE_BUSY_TIMEOUT_MS 1000

struct archive;

/* Process-wide SQLite settings for a long-running writer; call once, before
 * any other SQLite use. */
void archive__library_init(void);

/* Open (creating the schema if missing) archive.db at path. MQC_OK or an
 * MQC_ERR_* with err filled. The caller frees a success with archive__close. */
int archive__open(const char *path, struct archive **out, char *err, size_t errlen);
void archive__close(struct archive *ar);                               /* NULL-safe */
/* Delete messages stored before cutoff_ms (server_ts), in small batches; *deleted gets the count. */
int archive__purge(struct archive *ar, int64_t cutoff_ms, int64_t *deleted);
/* Delete every message sent by or to user (DMs; and their room messages as
 * sender) stored since since_ms (the account's created: an older holder's
 * messages are not this account's). */
int archive__erase_user(struct archive *ar, const char *user, int64_t since_ms, int64_t *deleted);
/* New reference: a JSON array of the archived messages sent by or to user
 * stored since since_ms, oldest first (each in the contract's
 * archived-message form). NULL on error. */
json_t *archive__export_user(struct archive *ar, const char *user, int64_t since_ms);
/* New reference: the page of archive__export_user's messages with seq >
 * after, oldest first: at most limit (limit < 0: all); *more (if not NULL)
 * says whether more follow. NULL on error. */
json_t *archive__export_page(struct archive *ar, const char *user, int64_t since_ms, int64_t after,
		int limit, bool *more);
/* New reference: {"messages":N,"by_day":{"YYYY-MM-DD":N,...},"invalid":N,"last_seq":N,
 *  "last_server_ts":ms,"db_bytes":N} ; NULL on error. */
json_t *archive__stats(struct archive *ar);

/* ---- used by the daemon ---- */

/* The type of a room's membership event (docs/PROTOCOL.md). Its body
 * column holds the event's own members as a compact JSON object
 * ({"event":..,"user":..,"by":..}), which reads (history, sync, get)
 * return in place of "body". */
#define ARCHIVE_TYPE_EVENT "event"
/* A reaction row: ref and of name the message reacted to, emoji the
 * reaction, remove whether it takes it back; body ''. */
#define ARCHIVE_TYPE_REACTION "reaction"

/* One message to store. Strings are borrowed and NUL-terminated; exactly one
 * of recipient (DM) and room is set; ts < 0 means "the sender gave none". */
struct archive_msg {
	const char *sender;
	const char *recipient;
	const char *room;
	const char *id;
	const char *type;       /* NULL: "text"; ARCHIVE_TYPE_EVENT, ARCHIVE_TYPE_REACTION */
	const char *body;       /* "" for a reaction */
	int64_t ts;
	int64_t server_ts;
	const char *reply_to;   /* a text's quote: both or neither; NULL: none */
	const char *reply_from;
	const char *ref;        /* a reaction's target: (of, ref) */
	const char *of;
	const char *emoji;      /* a reaction's */
	bool remove;            /* a reaction taken back */
};

/* When the current holder of the account user was created (users.created,
 * ms) into *created: MQC_OK, MQC_ERR_NOTFOUND (no such account now) or
 * another MQC_ERR_* (then the caller gives up and tries again later). */
typedef int (*archive_created_fn)(const char *user, int64_t *created, void *arg);

/* Store m (in its own transaction, or in the caller's) unless it is a copy
 * of one stored already: (sender, id) stored since the sender's account was
 * created. A text or event also moves its conversation on (convs: last_seq,
 * and a text's ordinal n); a text moves its sender's read marker to it and
 * gives the recipient of a direct message a marker row (reads); a reaction
 * adds or takes back the sender's reaction on its target, the newest
 * (of, ref) of the conversation if that is a text not deleted. The next holder of a name may use ids its previous holder used;
 * created_of(sender, .., arg) is asked only when (sender, id) is found
 * (NULL: any copy is one). *stored (if not NULL) says whether a row was
 * added. MQC_OK, MQC_ERR_BUSY (locked past the timeout),
 * MQC_ERR_DB/MQC_ERR_IO (disk full, read-only, ...: nothing was written) or
 * what created_of returned. */
int archive__store(struct archive *ar, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored);

/* A write transaction around several stores (BEGIN IMMEDIATE: the lock is
 * taken at once). MQC_OK or an MQC_ERR_*; rollback is a no-op outside a
 * transaction. */
int archive__begin(struct archive *ar);
int archive__commit(struct archive *ar);
void archive__rollback(struct archive *ar);

/* The same transaction on the batch path: between archive__batch_begin
 * and archive__batch_commit, archive__store keeps each conversation's and
 * each read marker's bookkeeping (convs, reads) in memory and writes it
 * once per conversation and marker before the commit, instead of the
 * triggers doing it per message (they are off for this connection
 * meanwhile; archive.c). The rows are the same; nothing but stores and
 * receipts may run in such a batch. archive__batch_rollback ends it
 * without writing (and turns the triggers back on). Both MQC_OK or an
 * MQC_ERR_*; a failed archive__batch_commit has rolled back. */
int archive__batch_begin(struct archive *ar);
int archive__batch_commit(struct archive *ar);
void archive__batch_rollback(struct archive *ar);

/* Raise the status of the newest message (orig_sender, ref) to status
 * ("delivered" or "read"; never lowered) if it is a direct message to
 * reader stored since reader's account was created (created_of(reader, ..,
 * arg), asked only then; NULL: any time): a new holder of a name cannot
 * mark what was sent to the previous one. A room message keeps its status
 * ("sent"): one member's receipt says nothing about the others, and the
 * receipt itself reaches the sender's inbox, where the sender's apps see
 * who read it. *updated says whether a row changed. MQC_OK or an MQC_ERR_*
 * (created_of's included). */
int archive__receipt(struct archive *ar, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated);

/* Run WAL checkpoints (and the fsyncs they need) every interval_ms on a
 * helper thread with its own connection instead of inside commits on this
 * one: a checkpoint in the ingest thread stalls it for two fsyncs every
 * few hundred messages. Stopped by archive__close. MQC_OK or MQC_ERR_NOMEM. */
int archive__start_checkpointer(struct archive *ar, int interval_ms);

/* Add n to the persistent count of refused (invalid) payloads. */
int archive__count_invalid(struct archive *ar, int64_t n);

/* A write that changes nothing visible, to see whether the database can be
 * written again after a failure. MQC_OK or an MQC_ERR_*. */
int archive__probe(struct archive *ar);

/* New reference: up to limit messages of conversation conv ('d:<a>|<b>' or
 * 'r:<room>') stored since since_ms (the reader's account's created for a
 * DM, the room's for a room) with seq < before (before <= 0: no bound),
 * newest first; *more says whether older ones exist. NULL on error. */
json_t *archive__history(struct archive *ar, const char *conv, int64_t since_ms, int64_t before,
		int limit, bool *more);

/* A room of a sync: its name and when it was created (rooms.created). */
struct archive_room {
	const char *name;
	int64_t since;
};

/* New reference: up to limit messages with seq > after that user sent or
 * received as a DM, stored since user_since (the account's created), or
 * that were posted in one of rooms[0..nrooms) since that room's since,
 * oldest first: texts and events, and with changes the reaction, edit and
 * delete rows too; *more says whether more follow. NULL on error. */
json_t *archive__sync(struct archive *ar, const char *user, int64_t user_since,
		const struct archive_room *rooms, size_t nrooms, int64_t after, int limit, bool changes,
		bool *more);

/* New reference: an array of the message with this seq (empty if there
 * is none), in the archived-message form. NULL on error. Who may read it
 * is the caller's to check (as history: server_ts against since). */
json_t *archive__get(struct archive *ar, int64_t seq);

/* One step of expiry, in one short transaction: scan at most max_scan rows
 * with seq > *cursor in seq order (only conversation conv if not NULL,
 * else every message), deleting those stored before cutoff_ms whose room is
 * not in skip_rooms[0..nskip) (rooms with a retention of their own). Stops
 * at the first row not yet due. *cursor advances past the rows scanned,
 * *deleted is increased by the rows deleted, *done is set when the pass is
 * over (a row not yet due, or the end). Start a pass with *cursor = 0. */
int archive__expire_step(struct archive *ar, const char *conv,
		const char *const *skip_rooms, size_t nskip, int64_t cutoff_ms, int max_scan,
		int64_t *cursor, int64_t *deleted, bool *done);

/* ---- conversations and read markers (the conversations and read RPCs) ---- */

/* A conversation as one person sees it. */
struct archive_conv {
	char conv[2 * NAME_MAX_LEN + 8];
	char peer[NAME_MAX_LEN + 1];   /* a DM's other person (oneself for a note to self); "" for a room */
	int64_t last_seq;              /* its last text or event; 0: none (left) */
	int64_t n;                     /* its texts so far */
	int64_t read_seq;              /* the person's marker; 0: none */
	int64_t read_n;                /* texts up to the marker */
};

/* Call fn(c, arg) for each direct conversation of user whose last_seq is
 * in [min_seq, before) (before <= 0: no bound), in no order: an index range
 * of the person's markers and one look-up per conversation, never their
 * messages. fn's non-MQC_OK stops and is returned. */
int archive__dm_convs(struct archive *ar, const char *user, int64_t min_seq, int64_t before,
		int (*fn)(const struct archive_conv *c, void *arg), void *arg);
/* Conversation conv as user sees it into *out (zeros where there is no
 * row: a conversation without messages, a person without a marker). */
int archive__conv_get(struct archive *ar, const char *user, const char *conv, struct archive_conv *out);
/* The lowest seq a message stored at since_ms or later can have (0: no
 * bound): where a holder's messages start (see the top of this file). */
int archive__seq_floor(struct archive *ar, int64_t since_ms, int64_t *floor);
/* The number of texts of conv up to seq (the n of its last text with seq
 * <= seq; 0 if none) into *n. */
int archive__text_n_at(struct archive *ar, const char *conv, int64_t seq, int64_t *n);
/* The text or event of conv a read marker may be put at, stored since
 * since_ms: the one with seq if seq > 0, else the newest (of, ref). Its
 * seq into *found; MQC_ERR_NOTFOUND if there is none. */
int archive__conv_target(struct archive *ar, const char *conv, int64_t seq, const char *of,
		const char *ref, int64_t since_ms, int64_t *found);
/* Move user's marker in conv forward to (seq, n) (never back; peer or
 * room say what the conversation is, for a new row). MQC_OK or an
 * MQC_ERR_*. */
int archive__read_set(struct archive *ar, const char *user, const char *conv, const char *peer,
		const char *room, int64_t seq, int64_t n);

/* Texts indexed per step of archive__index_step at most (by default). */
#define ARCHIVE_INDEX_BATCH 2048

/* Add the texts stored since the last step to the full-text index
 * (msg_fts), at most max_rows seqs of them (<= 0: ARCHIVE_INDEX_BATCH) in
 * one transaction, and move the watermark (meta fts_seq) past them; *left
 * gets how many seqs are still above it. Indexing a batch at a time costs
 * a fifth of indexing each text in the commit that stores it (FTS5 writes
 * a segment per transaction). MQC_OK or an MQC_ERR_*. */
int archive__index_step(struct archive *ar, int max_rows, int64_t *left);
/* The watermark into *mark: every text with seq <= *mark is in msg_fts as
 * it is now; those above are not yet (a search looks at them itself). */
int archive__index_mark(struct archive *ar, int64_t *mark);

/* ---- the feed: what is stored after a seq, for the push thread ----
 * A connection of its own that only reads (archive_feed.c), so the push
 * thread never takes a lock the ingest writer waits for. */
struct archive_feed;
/* One stored row, as the push thread looks at it (not the body: a body may
 * be 64 KiB and most rows notify nobody who wants a preview). Texts are
 * NULL where the column is; valid during the callback only. */
struct archive_feed_row {
	int64_t seq;
	const char *sender, *recipient, *room, *type, *id;
	int64_t server_ts;
	bool deleted;
};
/* Open the archive at path to read. MQC_OK, or MQC_ERR_DB with err. */
int archive__feed_open(const char *path, struct archive_feed **out, char *err, size_t errlen);
void archive__feed_close(struct archive_feed *f);                    /* NULL-safe */
/* The largest seq stored, 0 if none: MQC_OK or MQC_ERR_DB. */
int archive__feed_end(struct archive_feed *f, int64_t *seq);
/* The rows after seq after, in seq order, at most max, each given to cb
 * until it returns non-zero: that value, or MQC_OK after the last row, or
 * MQC_ERR_DB (archive__feed_errmsg says why). */
int archive__feed_each(struct archive_feed *f, int64_t after, int max,
		int (*cb)(const struct archive_feed_row *row, void *arg), void *arg);
/* seq's body given to cb (NULL: no such row), cb's answer returned; or
 * MQC_ERR_DB. Inside archive__feed_each's callback too. */
int archive__feed_body(struct archive_feed *f, int64_t seq,
		int (*cb)(const char *body, void *arg), void *arg);
const char *archive__feed_errmsg(struct archive_feed *f);

/* Can the archive at path be written now (the archiver's /health)? NULL
 * if so, else why, in why. Waits up to busy_ms for the writer's lock;
 * changes nothing. */
const char *archive__writable(const char *path, int busy_ms, char *why, size_t whylen);

/* The last error message of this handle (the database's own words). */
const char *archive__errmsg(struct archive *ar);

#endif
