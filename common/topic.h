/* topic.h - the topic table (docs/PROTOCOL.md, "Topics"): the one place
 * that knows how every chat topic is spelled. The plugin, the archiver,
 * the client and the bench parse and build topics here; a new topic kind
 * is one row of the table in topic.c.
 *
 * Every topic is "chat/<kind>/<a>" or "chat/<kind>/<a>/<b>":
 *
 *   TOPIC_INBOX          chat/inbox/<to>/<from>       a message to a person
 *   TOPIC_ROOM           chat/room/<room>/<from>      a message to a room
 *   TOPIC_PRESENCE       chat/presence/<name>         retained, by the plugin
 *   TOPIC_NOTICE         chat/notice/<name>           refusals, by the plugin
 *   TOPIC_RPC_REQ        chat/rpc/<name>/req          archive requests
 *   TOPIC_RPC_RESP       chat/rpc/<name>/resp         their answers
 *   TOPIC_REGISTER_REQ   chat/register/<clientid>/req registration
 *   TOPIC_REGISTER_RESP  chat/register/<clientid>/resp
 *   TOPIC_SEEN           chat/seen/<node>             device logins, by the
 *                                                     plugin, for services
 *   TOPIC_TYPING         chat/typing/<to>/<from>      typing to a person
 *   TOPIC_ROOMTYPING     chat/roomtyping/<room>/<from> typing in a room
 *
 * Parsing checks the shape only (kind, number of levels, the fixed last
 * level of rpc and register); whether <a> and <b> are valid names, or
 * wildcards of a filter, is the caller's rule. */
#ifndef MQCHAT_TOPIC_H
#define MQCHAT_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "names.h"

enum topic_kind {
	TOPIC_NONE = 0,                 /* not one of the shapes below */
	TOPIC_INBOX,
	TOPIC_ROOM,
	TOPIC_PRESENCE,
	TOPIC_NOTICE,
	TOPIC_RPC_REQ,
	TOPIC_RPC_RESP,
	TOPIC_REGISTER_REQ,
	TOPIC_REGISTER_RESP,
	TOPIC_SEEN,
	TOPIC_TYPING,
	TOPIC_ROOMTYPING,
	TOPIC_KIND_COUNT
};

/* One level of a topic: a slice of the parsed string, not NUL-terminated. */
struct topic_level {
	const char *p;
	size_t n;
};

struct topic_parts {
	enum topic_kind kind;
	struct topic_level a;           /* <to>, <room>, <name> or <clientid> */
	struct topic_level b;           /* <from> of inbox, room and typing, else empty */
	size_t len;                     /* strlen of the whole topic */
};

/* The longest topic of valid levels: a client id in a register topic
 * (every other kind is shorter); a buffer of TOPIC_MAX_LEN + 1 holds any. */
#define TOPIC_MAX_LEN (sizeof("chat/register//resp") - 1 + CLIENTID_MAX_LEN)

/* Split topic into its kind and levels (slices of topic itself); false,
 * and out->kind TOPIC_NONE, for any other shape. Allocates nothing and
 * reads nothing past topic's NUL: the plugin's ACL calls it for every
 * delivery. */
bool topic__parse(const char *topic, struct topic_parts *out);

/* Write the topic of kind with its levels into buf: a names the person,
 * room or client id; b is the sender of inbox, room and the typing topics
 * and is ignored for the others. Either may be a wildcard ("+", "#") to build a filter, for
 * example topic__build(.., TOPIC_INBOX, me, "#") is chat/inbox/<me>/#.
 * Returns the length, or -1 (buf holds "") if it does not fit. */
int topic__build(char *buf, size_t size, enum topic_kind kind, const char *a, const char *b);

/* The filter of every topic of kind: "chat/inbox/#", "chat/rpc/+/req". */
const char *topic__filter_all(enum topic_kind kind);

/* True if topic (or filter) lies under the service's root, "chat/". */
bool topic__is_chat(const char *topic);

/* True if topic (or filter) lies under chat/inbox/ or chat/room/: where
 * chat messages travel. A prefix test, cheap enough for every publish. */
bool topic__is_message(const char *topic);

/* True if topic (or filter) lies under chat/typing/ or chat/roomtyping/:
 * typing indicators, never queued. A prefix test. */
bool topic__is_typing(const char *topic);

/* The name of kind for tables and programs that are not in C:
 * "inbox", "room", "presence", "notice", "rpc_req", "rpc_resp",
 * "register_req", "register_resp", "seen", "typing", "roomtyping"; "none"
 * for TOPIC_NONE. */
const char *topic__kind_name(enum topic_kind kind);

/* The word of kind in its topic ("inbox", "room", ...); "" for TOPIC_NONE. */
const char *topic__kind_word(enum topic_kind kind);

/* True if level l is exactly the NUL-terminated s. */
bool topic__level_is(const struct topic_level *l, const char *s);

#endif
