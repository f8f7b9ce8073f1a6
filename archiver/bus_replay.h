/* bus_replay.h - the bus's replay window and resync (docs/SCALING.md,
 * "Replay and resync: when the bus lost something"; bus_replay.c).
 *
 * Core NATS keeps nothing: what a node publishes while another node's bus
 * is not subscribed (NATS restarted, a connection cut, a bus restarted) is
 * gone. So each bus keeps what it published in the last REPLAY_WINDOW_MS
 * (at most REPLAY_WINDOW_BYTES), and a bus that (re)connects asks the
 * others, on mq.ctl.resync, for what they published since it lost NATS;
 * they send it to it alone on mq.rp.<node>, then an end mark. What cannot
 * be replayed makes the node send `{"type":"resync","ts":...}` on chat/notice/<user>
 * to its local people (through DATA/inbox), and apps sync.
 *
 * Threads: replay__keep, replay__may_send, replay__tick and replay__start
 * on the main (out) thread; replay__take and replay__on_ctl on libnats's one
 * delivery thread; replay__disconnected on libnats's callback
 * thread. The shared part is under the struct's own lock, which also
 * serializes every append to DATA/inbox (hooks.inject). */
#ifndef MQCHAT_ARCHIVER_BUS_REPLAY_H
#define MQCHAT_ARCHIVER_BUS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>

#include <nats/nats.h>

#define REPLAY_WINDOW_MS 60000          /* what a bus keeps of what it published */
#define REPLAY_WINDOW_BYTES (64u << 20) /* ... and at most this much of it */
#define REPLAY_SEEN_FILE "bus.seen"     /* in the data folder: last seq taken per origin */
#define REPLAY_CTL_SUBJECT "mq.ctl.resync"
#define REPLAY_SUBJECT_PREFIX "mq.rp."  /* mq.rp.<node>: a replay for that node */
#define REPLAY_SUBJECT_HEADER "Mq-Subject" /* a replayed record's own subject */
#define REPLAY_SINCE_HEADER "Mq-Since"  /* resync: wall clock ms */
#define REPLAY_NONCE_HEADER "Mq-Nonce"  /* resync and its answers: which request */
#define REPLAY_END_HEADER "Mq-End"      /* the end of a replay: "1" complete, "0" not */
#define REPLAY_FOR_HEADER "Mq-For"      /* resync asked again of that node only */
#define REPLAY_LOST_HEADER "Mq-Lost"    /* on mq.ctl.resync: the origin lost records unsent */
#define REPLAY_NOTICE_EVERY_MS 10000    /* at most one round of notices this often */

struct replay;

struct replay_hooks {
	/* Append a message to DATA/inbox (called under the replay's lock, from
	 * either thread); false if it did not fit. */
	bool (*inject)(void *ctx, const char *origin, const char *topic, const void *payload,
			size_t len);
	/* The users with a session on this node (main thread): calls fn for
	 * each client id. */
	void (*each_client)(void *ctx, void (*fn)(void *arg, const char *client_id), void *arg);
	void *ctx;
};

/* Map DATA/bus.seen (made if absent) and decide what a (re)started bus
 * must ask for. MQC_OK or MQC_ERR_* (logged). */
int replay__open(struct replay **out, const char *seen_path, const char *node,
		const char *service_user, const struct replay_hooks *hooks);
void replay__close(struct replay *r);

/* After the NATS connection exists: subscribe to mq.ctl.resync and to
 * mq.rp.<node>; the first tick then asks for the gap. fresh: the bus has
 * never read this spool (nothing was published from it before). */
int replay__start(struct replay *r, natsConnection *nc, uint64_t epoch, bool fresh);

/* ---- out (main thread) ---- */

/* May a FORWARD record be published now? False while NATS is away and
 * until the reconnect is handled (replay__tick): the out loop holds the
 * record, so nothing is published into libnats's reconnect buffer. */
bool replay__may_send(struct replay *r);

/* Keep a copy of a record just published (subject, its seq, wall time). */
void replay__keep(struct replay *r, const char *subject, uint64_t seq, int64_t time_ms,
		const void *payload, size_t len);

/* Records were lost before they could be published (written over in the
 * spool, too old): a later replay from before now cannot be complete, and
 * the next tick tells every node (mq.ctl.resync with Mq-Lost), whose
 * people then get a resync notice. */
void replay__lost(struct replay *r);

/* Regular work: a reconnect (resync request), replays others asked for,
 * receivers whose replay did not come, notices due, DATA/bus.seen's clock. */
void replay__tick(struct replay *r);

/* ---- in (the delivery thread) ---- */

/* A message from another node: true if it goes to the inbox now (it was
 * injected here), false if it is a repeat, held for later, or did not fit. */
bool replay__take(struct replay *r, const char *origin, uint64_t epoch, uint64_t seq,
		const char *topic, const void *payload, size_t len);

/* libnats's disconnected callback (the reconnect is seen by replay__tick). */
void replay__disconnected(struct replay *r);

/* Log the replay's counters (main thread, with the bus's own). */
void replay__report(struct replay *r);

#endif
