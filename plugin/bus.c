/* bus.c - the plugin's side of the bus between nodes (docs/SCALING.md,
 * "The bus"): what goes out, who wants what, and what comes in.
 *
 * Out: the MESSAGE callback (spool.c) flags SPOOL_F_FORWARD on every
 * accepted publish the bus carries (chat/inbox, chat/room: clients' and
 * the archiver's own; chat/typing, chat/roomtyping: FORWARD only, never
 * stored). The bus process reads them from the spool.
 *
 * Interest: the broker checks each SUBSCRIBE and UNSUBSCRIBE filter with
 * the ACL callback; acl.c hands the allowed ones here and they become
 * BUS_F_INTEREST records. Per filter rather than per user: the broker
 * already knows exactly which filters each session holds (rooms joined,
 * a device that does not take typing), where deriving them from logins
 * would need the room memberships of the snapshot in the bus. A session
 * that ends with its connection (MQTT 3.1.1 clean session) drops its
 * filters at DISCONNECT; a persistent one keeps them, so a message for it
 * while it is away still reaches this node and is queued. (An MQTT 5
 * session's expiry is not visible to a plugin in 2.0: its filters stay
 * until it unsubscribes, which costs traffic and loses nothing.)
 *
 * In: the bus appends what other nodes sent to DATA/inbox; TICK, which
 * runs at the end of every pass of the broker's loop, publishes it with
 * mosquitto_broker_publish_copy, QoS 1 (typing QoS 0), not retained, with
 * the user property mqchat-origin. Such a publish never passes MESSAGE
 * (mosquitto v2.0.11 src/loop.c queue_plugin_msgs queues it straight to
 * the subscribers), so it is never spooled again; the ACL's READ check
 * still runs for each local subscriber. */
#include <stdio.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bus.h"
#include "bus_plugin.h"
#include "err.h"
#include "plugin.h"
#include "spool.h"
#include "topic.h"

int plugin_bus__init(struct mqchat *m, char *err, size_t errlen)
{
	struct plugin_bus *b;
	const char *slash;
	char path[4096], why[512];
	int n, rc;

	if(m->cfg.bus_inbox_mb == 0) return MQC_OK;
	if(m->spool.sp == NULL){
		snprintf(err, errlen, "mqchat: plugin_opt_bus_inbox_mb needs the spool"
				" (plugin_opt_spool_mb): the bus reads what to send from it");
		return MQC_ERR_INVAL;
	}
	slash = strrchr(m->cfg.db, '/');
	n = snprintf(path, sizeof(path), "%.*s%s", slash ? (int)(slash - m->cfg.db + 1) : 0,
			m->cfg.db, BUS_INBOX_FILE);
	if(n < 0 || (size_t)n >= sizeof(path)){
		snprintf(err, errlen, "mqchat: the bus inbox's path is too long");
		return MQC_ERR_INVAL;
	}
	b = calloc(1, sizeof(*b));
	if(b == NULL){
		snprintf(err, errlen, "mqchat: out of memory");
		return MQC_ERR_NOMEM;
	}
	/* The broker makes it (the bus waits for it): its size is the
	 * broker's option. */
	rc = spool__open(path, (size_t)m->cfg.bus_inbox_mb, 0, &b->inbox, why, sizeof(why));
	if(rc){
		snprintf(err, errlen, "mqchat: cannot open the bus inbox: %s", why);
		free(b);
		return rc;
	}
	b->pos = spool__position(b->inbox, SPOOL_READER_ARCHIVER);
	m->bus = b;
	mosquitto_log_printf(MOSQ_LOG_INFO, "mqchat: bus inbox %s: %d MiB", path, m->cfg.bus_inbox_mb);
	return MQC_OK;
}

void plugin_bus__cleanup(struct mqchat *m)
{
	if(m->bus == NULL) return;
	plugin_bus__presence_cleanup(m->bus);
	spool__close(m->bus->inbox);
	free(m->bus);
	m->bus = NULL;
}

uint32_t plugin_bus__forward(const struct mqchat *m, const char *topic)
{
	struct topic_parts p;

	/* On every accepted publish: the shape only (the ACL has checked the
	 * names), with the parser the ACL uses; the bus makes the subject. */
	if(m->bus == NULL || !topic__parse(topic, &p)) return 0;
	switch(p.kind){
		case TOPIC_INBOX:
		case TOPIC_ROOM:
		case TOPIC_TYPING:
		case TOPIC_ROOMTYPING:
			return SPOOL_F_FORWARD;
		default:
			return 0;
	}
}

static void interest(struct mqchat *m, const char *client_id, const char *filter, char op)
{
	struct plugin_bus *b = m->bus;

	if(spool__append(m->spool.sp, BUS_F_INTEREST, client_id, filter, &op, 1, NULL, 0, NULL)
			== MQC_OK){
		b->interest++;
		return;
	}
	/* The session then misses what other nodes send it until it
	 * subscribes again: said, not hidden. */
	b->interest_lost++;
	if(plog__begin(&m->log, m->clock_ms())){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: the spool is full: the bus does not learn"
				" of a change of interest (%lu lost)", b->interest_lost);
	}
}

void plugin_bus__interest(struct mqchat *m, struct mosquitto *client, const char *filter,
		int access)
{
	char subjects[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	const char *id;

	if(m->bus == NULL || filter == NULL) return;
	if(bus__filter_subjects(filter, subjects) == 0) return;
	id = mosquitto_client_id(client);
	if(id == NULL) return;
	interest(m, id, filter, access == MOSQ_ACL_SUBSCRIBE ? BUS_OP_SUBSCRIBE : BUS_OP_UNSUBSCRIBE);
}

int plugin_bus__disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct mqchat *m = userdata;
	const char *id;

	(void)event;
	if(m->bus == NULL) return MOSQ_ERR_SUCCESS;
	/* MQTT 3.1.1 clean session: the broker drops it now. MQTT 5's clean
	 * start says nothing of its expiry (above). Asked of what the
	 * connection said when it logged in (bus_presence.c): the broker marks
	 * a persistent session's old context clean when a new connection takes
	 * the session over, and that session goes on. */
	if(!plugin_bus__ends_clean(m, ed->client)) return MOSQ_ERR_SUCCESS;
	id = mosquitto_client_id(ed->client);
	if(id != NULL) interest(m, id, BUS_GONE_TOPIC, BUS_OP_GONE);
	return MOSQ_ERR_SUCCESS;
}

void plugin_bus__drain(struct mqchat *m)
{
	struct plugin_bus *b = m->bus;
	struct spool_rec rec;
	mosquitto_property *props;
	uint64_t start;
	int n, rc;

	if(b == NULL) return;
	start = b->pos;
	for(n=0; n<PLUGIN_BUS_DRAIN_MAX; n++){
		rc = spool__read(b->inbox, &b->pos, &rec);
		if(rc == MQC_ERR_AGAIN) break;
		if(rc != MQC_OK){
			/* Never trust the bytes after a bad record: skip to what the
			 * bus writes next. */
			b->corrupt++;
			mosquitto_log_printf(MOSQ_LOG_ERR, "mqchat: the bus inbox holds a bad record at %llu:"
					" skipped to %llu", (unsigned long long)b->pos,
					(unsigned long long)spool__write_position(b->inbox));
			b->pos = spool__write_position(b->inbox);
			break;
		}
		if(rec.topic[0] == '$'){
			/* For the plugin itself: presence, takeover (bus_presence.c). */
			plugin_bus__control(m, &rec);
			b->pos = rec.end;
			continue;
		}
		props = NULL;
		if(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, BUS_ORIGIN_PROPERTY,
					rec.client_id) != MOSQ_ERR_SUCCESS){
			props = NULL;
		}
		/* The broker owns props from here, also on failure. */
		if(mosquitto_broker_publish_copy(NULL, rec.topic, (int)rec.len, rec.payload,
					topic__is_typing(rec.topic) ? 0 : 1, false, props) == MOSQ_ERR_SUCCESS){
			b->injected++;
		}
		b->pos = rec.end;
	}
	if(b->pos != start) spool__consume(b->inbox, SPOOL_READER_ARCHIVER, b->pos);
}
