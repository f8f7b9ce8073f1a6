/* envelope.h - validation of the JSON message envelope.
 *
 * The envelope is what rides on chat/inbox/... and chat/room/... topics:
 *   {"id":"01HZX3V9K2","type":"text","body":"hello","ts":1732665600123}
 *   {"id":"01HZX3VA00","type":"receipt","ref":"01HZX3V9K2","status":"read"}
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

enum envelope_type {
	ENVELOPE_TEXT = 1,
	ENVELOPE_RECEIPT = 2,
	ENVELOPE_EVENT = 3,     /* a room's membership event, from a service only */
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

struct envelope {
	enum envelope_type type;
	struct envelope_str id;
	struct envelope_str body;    /* text only */
	struct envelope_str ref;     /* receipt only */
	enum envelope_status status; /* receipt only */
	/* event only (not set for the other types, so that their parse never
	 * spends a store on them): */
	enum envelope_event event;
	struct envelope_str user;    /* whom it concerns; ptr NULL if absent */
	struct envelope_str by;      /* who did it; ptr NULL if absent */
	bool has_ts;
	int64_t ts;
};

/* Validate payload[0..len) as an envelope and fill *env.
 *
 * Checks: the payload is valid UTF-8 and one JSON object (whitespace around it
 * allowed), no member name is repeated among the known ones, "id" matches the
 * message-id grammar, "type" is "text" (with a non-empty "body" string and no
 * "status") or "receipt" (with "ref" matching the id grammar, "status"
 * "delivered" or "read", and no "body") or "event" (with "event" one of
 * envelope__event_name's, "user" and "by" valid account names if present,
 * and no "body", "ref" or "status"), "ts" if present is an integer in
 * [0, ENVELOPE_MAX_TS]; unknown members are allowed if they are valid JSON
 * nested at most ENVELOPE_MAX_DEPTH deep.
 *
 * Returns true on success. On failure returns false and, if why is not NULL,
 * sets *why to a short constant reason ("not valid UTF-8", "missing id", ...).
 * Never allocates; env may be partly written on failure. */
bool envelope__parse(const void *payload, size_t len, struct envelope *env,
		const char **why);

/* "created", "joined", ...; "?" for anything else. */
const char *envelope__event_name(enum envelope_event ev);

/* True if buf[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF). NUL bytes are allowed here; JSON strings forbid them
 * separately. */
bool utf8__valid(const void *buf, size_t len);

/* Decode the raw JSON string bytes of s into out (at most outlen bytes,
 * NUL-terminated). s must come from a successful envelope__parse. Returns the
 * decoded length, or -1 if it does not fit. */
long envelope__unescape(const struct envelope_str *s, char *out, size_t outlen);

#endif
