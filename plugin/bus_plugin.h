/* bus_plugin.h - the plugin's side of the bus between nodes (bus.c; the bus
 * process is archiver/bus.c, what both agree on common/bus.h). */
#ifndef MQCHAT_PLUGIN_BUS_PLUGIN_H
#define MQCHAT_PLUGIN_BUS_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

struct mqchat;
struct mosquitto;
struct spool_rec;
struct bus_moved;
enum user_kind;

#define PLUGIN_BUS_DRAIN_MAX 1000       /* messages a pass publishes (the rest next pass) */

struct plugin_bus {
	struct spool *inbox;            /* DATA/inbox, read as SPOOL_READER_ARCHIVER */
	uint64_t pos;                   /* next record to publish */
	unsigned long injected;         /* messages from other nodes published */
	unsigned long interest;         /* interest records spooled */
	unsigned long interest_lost;    /* ... that found no room */
	unsigned long forward_lost;     /* typing that found no room (never refused) */
	unsigned long corrupt;          /* times the inbox held a bad record */
	/* Presence and takeover (bus_presence.c). */
	struct bus_moved *moved;        /* client ids now on another node */
	struct bus_clean *clean;        /* connections of MQTT 3.1.1 clean sessions */
	unsigned long presence_lost;    /* presence and login records that found no room */
	unsigned long takeovers, takeover_denied, resyncs;
};

/* plugin_opt_bus_inbox_mb not 0: make or open DATA/inbox of that many MiB
 * and spool what the bus needs. Needs the spool (plugin_opt_spool_mb).
 * MQC_OK (also when off) or an MQC_ERR_* with the log line in err. */
int plugin_bus__init(struct mqchat *m, char *err, size_t errlen);
void plugin_bus__cleanup(struct mqchat *m);
/* SPOOL_F_FORWARD if the bus is on and carries topic, else 0. */
uint32_t plugin_bus__forward(const struct mqchat *m, const char *topic);
/* An allowed SUBSCRIBE or any UNSUBSCRIBE (access MOSQ_ACL_*) of filter
 * by client: an interest record for the bus, if it maps to subjects. */
void plugin_bus__interest(struct mqchat *m, struct mosquitto *client, const char *filter,
		int access);
/* MOSQ_EVT_DISCONNECT: a session that ends with its connection drops its
 * interest. */
int plugin_bus__disconnect_cb(int event, void *event_data, void *userdata);
/* Every loop pass (TICK): publish what the bus put in DATA/inbox. */
void plugin_bus__drain(struct mqchat *m);

/* ---- presence and takeover (bus_presence.c) ---- */
/* The account's first connection here (online) or its last gone. */
void plugin_bus__presence(struct mqchat *m, const char *name, bool online);
/* A login of client_id (of an account of kind): a CONNECT record for a
 * person or device; the whole list of who is online for the bus's own
 * connection. */
void plugin_bus__login(struct mqchat *m, const struct mosquitto *client, const char *client_id,
		enum user_kind kind);
/* DISCONNECT of client: true if it logged in as an MQTT 3.1.1 clean
 * session (its session ends with it); forgets it. */
bool plugin_bus__ends_clean(struct mqchat *m, struct mosquitto *client);
/* READ: true if client's id connected on another node since (deny). Call
 * with the bus on. */
bool plugin_bus__moved(struct mqchat *m, struct mosquitto *client);
/* An inbox record whose topic starts with '$' (common/bus.h). */
void plugin_bus__control(struct mqchat *m, const struct spool_rec *rec);
void plugin_bus__presence_cleanup(struct plugin_bus *b);

#endif
