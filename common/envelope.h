/* envelope.h - validation of the JSON message envelope.
 *
 * The envelope is what rides on chat/inbox/... and chat/room/... topics:
 *   {"id":"01HZX3V9K2","type":"text","body":"hello","ts":1732665600123}
 *   {"id":"01HZX3VA00","type":"receipt","ref":"01HZX3V9K2","status":"read"}
 *   {"id":"01HZX3VB00","type":"text","body":"yes","reply_to":"m-1","reply_from":"bob"}
 *   {"id":"01HZX3VC00","type":"reaction","ref":"m-1","of":"bob","emoji":"\u2764"}
 * and, from services only (the plugin refuses anyone else's):
 *   {"id":"ed-1","type":"edit","ref":"m-1","of":"bob","body":"new","by":"bob","with":"alice"}
 *   {"id":"dl-1","type":"delete","ref":"m-1","of":"bob","by":"bob"}
 *   {"id":"rd-1","type":"read","with":"bob","seq":57,"unread":0}
 *
 * envelope__parse is a single pass over the payload that neither allocates
 * nor copies: the plugin runs it on the broker thread for every publish. The
 * slices it returns point into the payload and are only valid as long as it. */
#ifndef MQCHAT_ENVELOPE_H
#define MQCHAT_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted inside unknown members (forward compatibility). */
#define ENVELOPE_MAX_DEPTH 8
/* Largest "ts" accepted: 2^53 - 1 so every JSON implementation reads it exactly. */
#define ENVELOPE_MAX_TS 9007199254740991LL
/* Most bytes a reaction's emoji may decode to. */
#define ENVELOPE_EMOJI_MAX 32

enum envelope_type {
	ENVELOPE_TEXT = 1,
	ENVELOPE_RECEIPT = 2,
	ENVELOPE_EVENT = 3,     /* a room's membership event, from a service only */
	ENVELOPE_REACTION = 4,  /* a reaction to (of, ref), or its removal */
	ENVELOPE_EDIT = 5,      /* the new body of (of, ref), from a service only */
	ENVELOPE_DELETE = 6,    /* (of, ref) was deleted, from a service only */
	ENVELOPE_READ = 7,      /* my read marker moved, from a service only */
};

/* The "event" of a membership event (docs/PROTOCOL.md, "Rooms run by
 * their members"). */
enum envelope_event {
	ENVELOPE_EVENT_NONE = 0,
	ENVELOPE_EVENT_CREATED,
	ENVELOPE_EVENT_JOINED,
	ENVELOPE_EVENT_ADDED,
	ENVELOPE_EVENT_REMOVED,
	ENVELOPE_EVENT_LEFT,
	ENVELOPE_EVENT_PROMOTED,
	ENVELOPE_EVENT_DEMOTED,
	ENVELOPE_EVENT_CHANGED,
	ENVELOPE_EVENT_DELETED,
	ENVELOPE_EVENT_COUNT
};

enum envelope_status {
	ENVELOPE_STATUS_NONE = 0,
	ENVELOPE_STATUS_DELIVERED = 1,
	ENVELOPE_STATUS_READ = 2,
};

/* A view into a JSON string's raw (still escaped) bytes, quotes excluded. */
struct envelope_str {
	const char *ptr;
	size_t len;
	bool escaped; /* true if the raw bytes hold a backslash escape */
};

/* Which members a successful parse sets, by type (a member that is not
 * listed for the type is left as it was, so that a text's parse never
 * spends a store on the others' members; ptr NULL means absent):
 *   id, has_ts, ts              every type
 *   body, ref, status           every type (ptr NULL / NONE if absent)
 *   reply_to, reply_from        text: both, or both absent (ptr NULL, len 0;
 *                               escaped is not set then)
 *   event, user, by             event (user, by optional)
 *   of, emoji, remove           reaction (remove false if absent)
 *   of, by, with                edit, delete (with optional)
 *   with, room, has_seq, seq, unread
 *                               read (exactly one of with, room)
 * Account names (reply_from, of, by, user, with) and room names are plain
 * strings in the name grammar, ids (id, ref, reply_to) in the id grammar;
 * only body and emoji may hold escapes (see escaped). */
struct envelope {
	enum envelope_type type;
	struct envelope_str id;
	struct envelope_str body;    /* text, edit */
	struct envelope_str ref;     /* receipt, reaction, edit, delete */
	enum envelope_status status; /* receipt */
	enum envelope_event event;   /* event */
	struct envelope_str user;    /* event: whom it concerns */
	struct envelope_str by;      /* event, edit, delete: who did it */
	struct envelope_str reply_to;   /* text: the id of the message quoted */
	struct envelope_str reply_from; /* text: who sent the message quoted */
	struct envelope_str of;      /* reaction, edit, delete: who sent (of, ref) */
	struct envelope_str emoji;   /* reaction: 1..ENVELOPE_EMOJI_MAX bytes decoded */
	struct envelope_str with;    /* edit, delete, read: the other person of a DM */
	struct envelope_str room;    /* read: the room */
	bool remove;                 /* reaction: true takes it back */
	bool has_seq;                /* read: always true */
	int64_t seq;                 /* read: the new read marker (archive seq) */
	int64_t unread;              /* read: texts after it */
	bool has_ts;
	int64_t ts;
};

/* Validate payload[0..len) as an envelope and fill *env.
 *
 * Checks: the payload is valid UTF-8 and one JSON object (whitespace around it
 * allowed), no member name is repeated among the known ones of its type, "id"
 * matches the message-id grammar, "ts" if present is an integer in
 * [0, ENVELOPE_MAX_TS], "ref" if present matches the id grammar, and "type" is
 *   "text": a non-empty "body" string, no "status"; "reply_to" (id grammar)
 *       and "reply_from" (account name) both or neither;
 *   "receipt": "ref", "status" "delivered" or "read", no "body";
 *   "event": "event" one of envelope__event_name's, "user" and "by" account
 *       names if present, no "body", "ref" or "status";
 *   "reaction": "ref", "of" (account name), "emoji" (a string decoding to
 *       1..ENVELOPE_EMOJI_MAX bytes without control or space characters),
 *       "remove" true or false if present, no "body" or "status";
 *   "edit": "ref", "of", a non-empty "body", "by", "with" if present (account
 *       names), no "status";
 *   "delete": as edit without "body";
 *   "read": exactly one of "with" (account name) and "room" (room name),
 *       "seq" and "unread" integers in [0, ENVELOPE_MAX_TS], no "body", "ref"
 *       or "status".
 * Unknown members are allowed if they are valid JSON nested at most
 * ENVELOPE_MAX_DEPTH deep. Who may publish which type is the plugin's rule,
 * not the parser's.
 *
 * Returns true on success. On failure returns false and, if why is not NULL,
 * sets *why to a short constant reason ("not valid UTF-8", "missing id", ...).
 * Never allocates; env may be partly written on failure. */
bool envelope__parse(const void *payload, size_t len, struct envelope *env,
		const char **why);

/* Most bytes of a typing indicator's payload. */
#define ENVELOPE_TYPING_MAX 256

/* Validate payload[0..len) as a typing indicator (chat/typing/...,
 * chat/roomtyping/...): at most ENVELOPE_TYPING_MAX bytes of one JSON
 * object, as envelope__parse reads JSON, with a boolean member "typing"
 * (once); unknown members are allowed. *typing is its value. Returns true
 * on success; on failure false and, if why is not NULL, a short constant
 * reason. Never allocates. */
bool envelope__parse_typing(const void *payload, size_t len, bool *typing, const char **why);

/* "created", "joined", ...; "?" for anything else. */
const char *envelope__event_name(enum envelope_event ev);

/* "text", "receipt", "event", "reaction", "edit", "delete", "read"; "?" for
 * anything else. */
const char *envelope__type_name(enum envelope_type type);

/* True if buf[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF). NUL bytes are allowed here; JSON strings forbid them
 * separately. */
bool utf8__valid(const void *buf, size_t len);

/* Decode the raw JSON string bytes of s into out (at most outlen bytes,
 * NUL-terminated). s must come from a successful envelope__parse. Returns the
 * decoded length, or -1 if it does not fit. */
long envelope__unescape(const struct envelope_str *s, char *out, size_t outlen);

#endif
