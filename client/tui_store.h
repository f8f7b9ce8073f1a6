/* tui_store.h - what the terminal app knows: conversations and their
 * messages, merged from everything that brings them (live envelopes, sent
 * copies, history, sync, the conversation list) by (from, id) as
 * docs/PROTOCOL.md "Writing an app" step 7 says; receipts, reads, edits,
 * deletes and reactions applied; presence, typing and nicks. Pure: no
 * MQTT, no curses (tests drive it with JSON).
 *
 * Times are server times in ms since the epoch: server_ts when the archive
 * gave it, else when the message arrived (the caller passes the arrival
 * time on the server's clock, see tui_store.clock_offset). The sender's own
 * "ts" is never shown. */
#ifndef MQCHAT_TUI_STORE_H
#define MQCHAT_TUI_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "names.h"

enum tmsg_status {
	TMSG_PENDING = 0,   /* mine, not acknowledged by the broker yet (queued while offline) */
	TMSG_FAILED,        /* mine, refused: fail_reason says why */
	TMSG_SENT,          /* mine, the broker has it (or: not mine, no status) */
	TMSG_DELIVERED,
	TMSG_READ,
};

struct treaction {
	char emoji[33];
	char **users;       /* owned, in the order they reacted */
	int nusers;
};

struct tmsg {
	char from[NAME_MAX_LEN + 1];
	char id[MSGID_MAX_LEN + 1];
	int64_t seq;        /* the archive's; 0 while only seen live */
	int64_t order;      /* arrival counter: orders messages without seq after those with */
	int64_t time_ms;    /* server time (see above) */
	bool is_event;      /* a room's membership event (from the archiver) */
	char event[16];     /* "added", ...; is_event only */
	char ev_user[NAME_MAX_LEN + 1], ev_by[NAME_MAX_LEN + 1]; /* "" when absent */
	char *body;         /* text: owned, NUL-terminated ("" when deleted or an event) */
	bool truncated;     /* the archive sent only the start (body_bytes bytes in all) */
	char reply_to[MSGID_MAX_LEN + 1], reply_from[NAME_MAX_LEN + 1]; /* "" when not a reply */
	int64_t edited;     /* 0, or when last edited */
	int64_t deleted;    /* 0, or when deleted ... */
	char deleted_by[NAME_MAX_LEN + 1]; /* ... and by whom */
	enum tmsg_status status;   /* of my messages; TMSG_SENT for others' */
	char *fail_reason;  /* TMSG_FAILED: owned words ("bob blocks you") */
	struct treaction *reactions; /* owned */
	int nreactions;
	/* Room messages of mine: how many other members sent delivered/read
	 * receipts (each member counted once; read implies delivered). */
	int room_delivered, room_read;
	char **receipt_users;    /* owned: who sent a receipt (for the counts) */
	int nreceipt_users;
	bool receipt_sent;  /* the app sent its read receipt for it (others' messages) */
};

enum tconv_kind { TCONV_DIRECT, TCONV_ROOM };

struct tconv {
	enum tconv_kind kind;
	char name[NAME_MAX_LEN + 1];   /* the peer (myself for notes) or the room */
	char *title;        /* rooms: owned, "" when none */
	struct tmsg **msgs; /* owned; ordered: by seq, then those without seq by order */
	int nmsgs, capmsgs;
	int64_t last_seq;   /* of the last text or event (from the list or seen) */
	int64_t last_time;  /* time of the last text or event: orders the list */
	int64_t read_seq;   /* my read marker */
	int unread;         /* the badge */
	bool history_loaded;/* the newest page of history has been merged */
	bool more_before;   /* history has older messages than msgs[0] */
	int nmembers;       /* rooms: from rooms/room_info, 0 unknown */
	char **members;     /* rooms: owned names, or NULL */
	char role[8];       /* rooms: mine ("owner", "admin", "member") or "" */
	/* Who is typing here, with when it was last said (monotonic ms). */
	char typing[4][NAME_MAX_LEN + 1];
	int64_t typing_at[4];
	int ntyping;
};

struct tpresence {
	char user[NAME_MAX_LEN + 1];
	bool online;
	int64_t since;
};

struct tstore {
	char me[NAME_MAX_LEN + 1];
	struct tconv **convs;   /* owned; kept in list order: last_time newest first */
	int nconvs, capconvs;
	struct tpresence *presence; /* owned */
	int npresence, cappresence;
	char **nick_users, **nicks; /* owned, parallel */
	int nnicks, capnicks;
	char **blocked;         /* owned: people I block, whose messages are hidden */
	int nblocked;
	int64_t max_seq;        /* largest seq any archived message brought (sync position) */
	int64_t next_order;
	int64_t clock_offset;   /* server clock minus local clock, ms (set by the app) */
};

void tui_store__init(struct tstore *st, const char *me);
void tui_store__free(struct tstore *st);

/* The conversation (kind, name); created (empty, last at the end of the
 * list) if create, else NULL when unknown. */
struct tconv *tui_store__conv(struct tstore *st, enum tconv_kind kind, const char *name,
		bool create);
/* Remove a conversation (a room I left, or deleted). */
void tui_store__drop_conv(struct tstore *st, struct tconv *c);
/* Re-sort st->convs: last_time newest first, stable. */
void tui_store__sort(struct tstore *st);

/* A live envelope (a JSON object, borrowed) that came on topic (the whole
 * topic string: chat/inbox/<to>/<from> or chat/room/<room>/<from>) at
 * now_ms (server clock). Applies it:
 * - text / event: added to its conversation (direct: the other person,
 *   me-to-me is my notes; room: the room) unless (from, id) is there; the
 *   conversation moves to the top; unread +1 if from someone else (not for
 *   events), cleared if from me (sending reads).
 * - receipt (to me, about my message ref): raises its status (direct) or
 *   counts the member (room); never lowers.
 * - reaction: adds/removes (author = topic's sender) on (of, ref) of the
 *   conversation.
 * - edit / delete (from the archiver): applied to (of, ref) of the
 *   conversation (direct: "with"; room: the topic's room).
 * - read (from the archiver): sets read_seq and unread of the conversation.
 * - a type it does not know, or from someone blocked: ignored.
 * Returns what it did, so the app can react (send a receipt, redraw). *out
 * (may be NULL) is set to the message concerned (text/event/changed), *conv
 * to its conversation (either may be NULL when nothing applied). */
enum tui_store_live {
	TSL_IGNORED = 0,    /* unknown, duplicate, blocked, not applicable */
	TSL_NEW,            /* a new text or event */
	TSL_CHANGED,        /* a receipt, reaction, edit or delete changed a message */
	TSL_READ,           /* a read envelope moved a marker */
};
enum tui_store_live tui_store__live(struct tstore *st, const char *topic, json_t *env,
		int64_t now_ms, struct tconv **conv, struct tmsg **out);

/* An archived message (the archived form of history, sync, search or the
 * conversation list's "last", borrowed). Texts and events are merged by
 * (from, id) into their conversation (created if needed): a message held
 * live takes the archive's seq, time and status (never lowering a status
 * that receipts raised) and moves to its place; edit / delete / reaction
 * rows (sync with changes) are applied. Raises st->max_seq. Does not touch
 * unread or the list order. Returns the message (or NULL). */
struct tmsg *tui_store__archived(struct tstore *st, json_t *m);
/* One entry of a conversations answer (borrowed): sets the conversation's
 * last_seq, read_seq, unread, title, and merges its "last". */
struct tconv *tui_store__conv_entry(struct tstore *st, json_t *entry);

/* My message being sent: added as TMSG_PENDING with the time now_ms; the
 * conversation moves to the top and its unread is cleared. body copied. */
struct tmsg *tui_store__outgoing(struct tstore *st, struct tconv *c, const char *id,
		const char *body, const char *reply_to, const char *reply_from, int64_t now_ms);
/* The broker acknowledged (refused: reason != NULL, words copied) my message id in c. */
void tui_store__acked(struct tstore *st, struct tconv *c, const char *id, const char *reason);

/* Find (from, id) in c; NULL if not held. */
struct tmsg *tui_store__find(struct tconv *c, const char *from, const char *id);

/* Presence from chat/presence/<user> (payload borrowed; empty: none). */
void tui_store__presence(struct tstore *st, const char *user, const void *payload, size_t len);
const struct tpresence *tui_store__presence_of(const struct tstore *st, const char *user);

/* Typing: who (not me) typing or not in c, at mono_ms. */
void tui_store__typing(struct tconv *c, const char *who, bool typing, int64_t mono_ms);
/* Forget typing older than 6 s (and who sent a text since: the app calls
 * tui_store__typing(c, who, false, ...) on a text). True if anything changed. */
bool tui_store__typing_expire(struct tstore *st, int64_t mono_ms);

/* Nicks: set (nick NULL or "" forgets), and the name to show for user
 * (its nick if known, else the name; borrowed, valid until the next set). */
void tui_store__set_nick(struct tstore *st, const char *user, const char *nick);
const char *tui_store__nick(const struct tstore *st, const char *user);

/* The people I block (array of JSON strings, borrowed), replacing the list;
 * and one test. Messages from them are not added while blocked. */
void tui_store__set_blocked(struct tstore *st, json_t *users);
bool tui_store__is_blocked(const struct tstore *st, const char *user);

/* Total unread over all conversations. */
int tui_store__unread_total(const struct tstore *st);

#endif
