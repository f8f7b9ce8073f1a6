/* bus.h - what the node's plugin and its bus process (`mqchat-archiver
 * bus`, archiver/bus.c) agree on: the spool records the bus reads beside
 * the messages, the inbox ring it writes, and the NATS subjects
 * (docs/SCALING.md, "The bus").
 *
 * Records in DATA/spool (common/spool.h) the bus reads:
 *   flags & SPOOL_F_FORWARD   a message to send to the other nodes: the
 *                             client's topic and payload
 *   flags == BUS_F_INTEREST   a session's interest changed: client_id the
 *                             session's client id, topic the MQTT filter
 *                             (BUS_GONE_TOPIC for BUS_OP_GONE: the spool
 *                             takes no empty topic), payload one byte BUS_OP_*
 * The archiver stores only SPOOL_F_STORE records, so it skips both kinds
 * unless a message is also STORE. BUS_F_INTEREST is 0, neither STORE nor
 * FORWARD: the spool's reader refuses flags it does not know (spool.c),
 * and a record for nobody but the bus needs none.
 *
 * DATA/inbox: a second ring of the same format (common/spool.c), written
 * by the bus (the writer's lock), read by the broker's plugin in its TICK
 * callback (reader slot SPOOL_READER_ARCHIVER, hard: the bus never
 * overwrites what the broker has not published). Its records: client_id
 * the origin node, topic and payload the message to publish.
 *
 * Subjects: chat/inbox/<to>/<from> is mq.i.<to>.<from>, chat/room/<room>/
 * <from> mq.r.<room>.<from>, chat/typing/<to>/<from> mq.t..., chat/
 * roomtyping/<room>/<from> mq.rt.... A NATS token may not hold '.', names
 * may (common/names.c): '.' is sent as '~', which names may not hold. */
#ifndef MQCHAT_BUS_H
#define MQCHAT_BUS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#define BUS_INBOX_FILE "inbox"          /* in the data folder */
#define BUS_INTEREST_FILE "bus.interest"
#define BUS_F_INTEREST 0u               /* spool flags of an interest record (above) */
#define BUS_GONE_TOPIC "#"
#define BUS_OP_SUBSCRIBE '+'            /* the session subscribed to the filter */
#define BUS_OP_UNSUBSCRIBE '-'          /* ... unsubscribed from it */
#define BUS_OP_GONE 'x'                 /* the session ended: all its filters go */
#define BUS_SUBJECT_MAX 600             /* any subject of a valid topic or filter fits */
#define BUS_SUBJECTS_PER_FILTER 4       /* the four kinds: chat/# maps to all of them */
#define BUS_ORIGIN_HEADER "Mq-Origin"   /* NATS headers: origin node, */
#define BUS_EPOCH_HEADER "Mq-Epoch"     /* its spool's epoch, */
#define BUS_SEQ_HEADER "Mq-Seq"         /* the record's seq in it */
#define BUS_ORIGIN_PROPERTY "mqchat-origin" /* MQTT 5 user property on injected messages */

/* Presence and takeover (archiver/bus_presence.c, plugin/bus_presence.c).
 * Spool records of flags BUS_F_INTEREST whose topic starts with '$' (no
 * MQTT filter the bus maps does), payload one byte:
 *   topic BUS_PRESENCE_TOPIC, client_id an account:
 *     BUS_OP_ONLINE    its first connection on this node
 *     BUS_OP_OFFLINE   its last one here went
 *     BUS_OP_LIST      (client_id "-") the accounts online here follow,
 *                      as ONLINE records, up to BUS_OP_LIST_END: the plugin
 *                      writes them when the bus's MQTT connection logs in,
 *                      so a restarted bus or broker starts from the truth
 *   topic BUS_CONNECT_TOPIC, client_id a client id, BUS_OP_CONNECT: it
 *     connected here (the bus tells the other nodes: takeover)
 * DATA/inbox records whose topic starts with '$' are for the plugin itself,
 * never published as they are:
 *   BUS_IN_PRESENCE  client_id an account, payload "1 <since>" or "0
 *                    <since>" (wall ms): its state over all nodes changed
 *   BUS_IN_TAKEOVER  client_id a client id that connected on another node
 *                    (payload that node's name) while this node holds its
 *                    session: kick it, deliver nothing to it until it
 *                    connects here again
 * NATS: mq.p.<account> {"node","run","online","since"} (one node's
 * presence of an account), mq.hb.<node> {"epoch","spool_seq","run"} every
 * second, mq.pq.<node> (a bus asks that node for its whole list), and
 * mq.to.<client id> (payload the node it is on now); '.' as '~'. */
#define BUS_PRESENCE_TOPIC "$presence"
#define BUS_CONNECT_TOPIC "$connect"
#define BUS_OP_ONLINE 'N'
#define BUS_OP_OFFLINE 'F'
#define BUS_OP_LIST 'L'
#define BUS_OP_LIST_END 'E'
#define BUS_OP_CONNECT 'C'
#define BUS_IN_PRESENCE "$presence"
#define BUS_IN_TAKEOVER "$takeover"

/* One name (an account, a node, a client id) as a NATS token into out
 * (outlen bytes): '.' as '~'. False if it is empty, does not fit, or holds
 * a byte no token may (as bus__subject). */
bool bus__token(const char *name, char *out, size_t outlen);

/* The name of the last token of subject, which must be prefix and one
 * token ("mq.p." and "alice" for "mq.p.alice"): '~' as '.'. False for
 * anything else. */
bool bus__token_name(const char *subject, const char *prefix, char *out, size_t outlen);

/* True if the topic is one the bus carries (inbox, room, typing, room
 * typing: four levels, none empty). */
bool bus__carries(const char *topic);

/* The subject of a message's topic into out (outlen bytes). False if the
 * topic is not one the bus carries or a level cannot be a NATS token
 * (a space, '*', '>', '~' or a control character). */
bool bus__subject(const char *topic, char *out, size_t outlen);

/* The topic of a subject from bus__subject (the other way round). False
 * for anything else. */
bool bus__topic(const char *subject, char *out, size_t outlen);

/* The subjects that cover every carried topic the MQTT filter matches,
 * into out[0..n) (each BUS_SUBJECT_MAX bytes); returns n (0: the filter
 * matches nothing the bus carries). '+' is '*'; a '#' is '>' where it
 * may stand for both levels, '*' where only the last is left. */
size_t bus__filter_subjects(const char *filter, char out[][BUS_SUBJECT_MAX]);

/* The notice that tells an app to sync (docs/PROTOCOL.md, "Several
 * nodes"), on chat/notice/<user>; ts is when it was sent (ms). The bus
 * sends it when it cannot replay (bus_replay.c), the plugin to a client
 * back on its session's node (bus_presence.c). */
#define BUS_RESYNC_NOTICE_FORMAT "{\"type\":\"resync\",\"ts\":%" PRId64 "}"

#endif
