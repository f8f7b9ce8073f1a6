/* bus_presence.h - presence across nodes, heartbeats and the takeover of a
 * session by another node, in the bus process (bus_presence.c; the records
 * and subjects: common/bus.h; the design: docs/SCALING.md, "Presence" and
 * "The session directory is NATS's interest"). */
#ifndef MQCHAT_ARCHIVER_BUS_PRESENCE_H
#define MQCHAT_ARCHIVER_BUS_PRESENCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

struct spool;
struct bus_presence;

/* What the bus lends it (bus.c). Both are called on the main thread. */
struct bus_presence_hooks {
	void *arg;
	/* Is the broker there? A PINGREQ on the bus's MQTT connection, or a new
	 * connection when there is none. *gen: connections made so far (a new
	 * one means a broker that may have restarted). */
	bool (*broker_up)(void *arg, int64_t now_ms, unsigned long *gen);
	/* client_id connected on another node: stop this node's interest of
	 * its session. True if this node held one (interest not yet dropped). */
	bool (*drop_session)(void *arg, const char *client_id);
	/* Wake the broker (a PINGREQ), which may sleep up to 100 ms before it
	 * reads the inbox. */
	void (*wake)(void *arg);
	/* Call fn(ctx, client id) for each session whose interest was dropped
	 * (drop_session) and that has not come back. */
	void (*each_dropped)(void *arg, void (*fn)(void *ctx, const char *client_id), void *ctx);
};

/* Subscribe to mq.p.*, mq.hb.*, mq.to.* and mq.pq.<node> on nc. inbox is
 * written under inbox_lock (libnats's delivery thread writes it too).
 * MQC_OK or MQC_ERR_NOMEM / MQC_ERR_IO (logged). */
int bus_presence__start(struct bus_presence **out, natsConnection *nc, struct spool *inbox,
		pthread_mutex_t *inbox_lock, const char *node, uint64_t epoch,
		const struct bus_presence_hooks *hooks);
/* A presence or connect record of this node's spool (common/bus.h): op
 * BUS_OP_*, who the account or client id, time_ms its wall time. */
void bus_presence__record(struct bus_presence *p, char op, const char *who, int64_t time_ms);
/* The main loop, at least every 500 ms: the heartbeat, silent nodes, the
 * broker's connection, takeovers from other nodes. spool_seq: the last
 * seq of this node's spool. */
void bus_presence__tick(struct bus_presence *p, uint64_t spool_seq);
/* NATS connected again: the other nodes may have dropped this one; send
 * the whole list (from the next tick). Any thread. */
void bus_presence__reconnected(struct bus_presence *p);
/* Unsubscribe and free (before the connection goes). */
void bus_presence__stop(struct bus_presence *p);

#endif
