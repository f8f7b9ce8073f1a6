/* spool.c - the plugin's side of the node's spool (common/spool.h): every
 * accepted publish the node's archiver takes is copied into DATA/spool
 * before the broker acknowledges it, so a killed broker loses nothing it
 * acknowledged (docs/SCALING.md, "The node's spool").
 *
 * What is spooled: exactly what the archiver receives through its
 * subscriptions without a spool (chat/inbox/#, chat/room/#, chat/rpc/+/req,
 * chat/register/+/req, chat/seen/+; archiver/daemon.c), which it
 * subscribes to without no-local: so the archiver's own publishes there
 * (room events, edits, read markers) are spooled too, and read back by it
 * as today. The MESSAGE callback runs once every check has passed (ACL,
 * rate; v2.0.11 src/handle_publish.c: after mosquitto_acl_check, before
 * the PUBACK), and after limits__message_cb, which drops the MQTT 5
 * properties of chat messages, so what is spooled is what is delivered:
 * correlation data and response topic of requests only. The plugin's own
 * chat/seen/<node> reports go out with mosquitto_broker_publish, which
 * passes no MESSAGE callback: plugin_spool__report spools them.
 *
 * No room: the publish is refused (MOSQ_ERR_ACL_DENIED: MQTT 5 PUBACK 0x87,
 * never delivered, never acknowledged as accepted) with the notice
 * `unavailable` and retry_ms. The hot path is one copy into the mapping and
 * a release store: no allocation (but the two MQTT 5 request properties,
 * which the broker's API hands out only as copies) and no system call
 * unless the archiver sleeps on the spool. */
#include <stdio.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "err.h"
#include "plugin.h"
#include "spool.h"

/* s past prefix p, or NULL. A plain loop rather than strncmp: the
 * compiler inlines it, and it runs for every publish. */
static const char *past(const char *s, const char *p)
{
	for(; *p; s++, p++){
		if(*s != *p) return NULL;
	}
	return s;
}

/* t is one level (no '/') and then exactly "/req". */
static bool one_level_req(const char *t)
{
	const char *slash = t ? strchr(t, '/') : NULL;

	return slash != NULL && strcmp(slash, "/req") == 0;
}

bool plugin_spool__takes(const char *topic)
{
	const char *t = past(topic, "chat/"), *rest;

	/* MQTT filter matching of the five filters: "x/#" takes "x" too. */
	if(t == NULL) return false;
	switch(t[0]){
		case 'i':
			rest = past(t, "inbox");
			return rest != NULL && (*rest == '/' || *rest == '\0');
		case 'r':
			if((rest = past(t, "room")) != NULL) return *rest == '/' || *rest == '\0';
			if((rest = past(t, "rpc/")) != NULL) return one_level_req(rest);
			return one_level_req(past(t, "register/"));
		case 's':
			rest = past(t, "seen/");
			return rest != NULL && strchr(rest, '/') == NULL;
		default:
			return false;
	}
}

int plugin_spool__init(struct mqchat *m, char *err, size_t errlen)
{
	struct plugin_spool *ps = &m->spool;
	const char *slash;
	char path[4096], why[512];
	uint64_t max_rec;
	int n, rc;

	if(m->cfg.spool_mb == 0) return MQC_OK;
	/* A record holds the payload and four strings of at most 65535 bytes
	 * (MQTT's own limit on topics, client ids and both properties): one
	 * of the largest must fit, or a publish could never be taken. */
	max_rec = (uint64_t)m->cfg.max_payload + SPOOL_REC_HEAD + 4 * 65536;
	if(((uint64_t)m->cfg.spool_mb << 20) < max_rec){
		snprintf(err, errlen, "mqchat: plugin_opt_spool_mb %d cannot hold a message of"
				" plugin_opt_max_payload %u bytes: make it at least %llu",
				m->cfg.spool_mb, m->cfg.max_payload,
				(unsigned long long)((max_rec + (1u << 20) - 1) >> 20));
		return MQC_ERR_INVAL;
	}
	slash = strrchr(m->cfg.db, '/');
	/* DATA/spool: the folder of auth.db, its slash included. */
	n = snprintf(path, sizeof(path), "%.*s%s", slash ? (int)(slash - m->cfg.db + 1) : 0,
			m->cfg.db, SPOOL_FILE);
	if(n < 0 || (size_t)n >= sizeof(path)){
		snprintf(err, errlen, "mqchat: the spool's path is too long");
		return MQC_ERR_INVAL;
	}
	/* Mosquitto runs plugin init after dropping privileges (as the loader's
	 * mapping is made), so the file belongs to the broker's user, which
	 * the archiver shares. */
	rc = spool__open(path, (size_t)m->cfg.spool_mb, SPOOL_OPEN_WRITER, &ps->sp, why, sizeof(why));
	if(rc){
		snprintf(err, errlen, "mqchat: cannot open the spool: %s", why);
		return rc;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, "mqchat: spool %s: %d MiB, %llu bytes not yet read,"
			" next seq %llu", path, m->cfg.spool_mb, (unsigned long long)spool__used(ps->sp),
			(unsigned long long)spool__next_seq(ps->sp));
	return MQC_OK;
}

void plugin_spool__cleanup(struct plugin_spool *ps)
{
	spool__close(ps->sp);
	ps->sp = NULL;
}

/* No room: said at once the first time, then at most once a minute of
 * refusals (the rate-limited log would drown the figures). */
static void say_full(struct mqchat *m, const char *what)
{
	struct plugin_spool *ps = &m->spool;
	int64_t now = m->clock_ms();

	if(ps->refusing && now - ps->said_ms < 60000) return;
	ps->said_ms = now;
	mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: the spool is full (%llu of %llu bytes not yet"
			" read by the archiver): refusing %s (%lu refused so far)",
			(unsigned long long)spool__used(ps->sp), (unsigned long long)spool__ring_size(ps->sp),
			what, ps->refused + ps->reports_lost);
}

int plugin_spool__message_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct mqchat *m = userdata;
	struct plugin_spool *ps = &m->spool;
	const struct snap_user *u;
	const char *username, *cid;
	void *corr = NULL;
	char *resp = NULL;
	uint16_t corr_len = 0;
	int rc;

	(void)event;
	if(ps->sp == NULL || ed->topic == NULL || !plugin_spool__takes(ed->topic)) return MOSQ_ERR_SUCCESS;
	if(ed->properties != NULL){
		(void)mosquitto_property_read_binary(ed->properties, MQTT_PROP_CORRELATION_DATA, &corr,
				&corr_len, false);
		(void)mosquitto_property_read_string(ed->properties, MQTT_PROP_RESPONSE_TOPIC, &resp, false);
	}
	cid = mosquitto_client_id(ed->client);
	rc = spool__append(ps->sp, SPOOL_F_STORE, cid ? cid : "", ed->topic, ed->payload,
			ed->payloadlen, corr, corr_len, resp);
	if(corr != NULL) mosquitto_free(corr);
	if(resp != NULL) mosquitto_free(resp);
	if(rc == MQC_OK){
		ps->appends++;
		if(ps->refusing){
			ps->refusing = false;
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: the spool takes messages again"
					" (%lu refused)", ps->refused - ps->refused_logged);
			ps->refused_logged = ps->refused;
		}
		return MOSQ_ERR_SUCCESS;
	}
	/* MQC_ERR_FULL; TOOBIG cannot happen (init made the ring big enough)
	 * but is refused alike rather than let through unspooled. */
	say_full(m, "publishes");
	ps->refusing = true;
	ps->refused++;
	m->acl_denied[ACL_DENY_UNAVAILABLE]++;
	/* A notice as the ACL gives one: to people and devices, not to
	 * services or the registration pseudo-user. */
	username = mosquitto_client_username(ed->client);
	u = username != NULL && m->snap != NULL
		? snapshot__user(m->snap, username, strnlen(username, NAME_MAX_LEN + 1)) : NULL;
	if(u != NULL && u->kind != USER_KIND_SERVICE){
		notice__refused(m, ed->client, username, ed->topic, ed->payload, ed->payloadlen,
				ACL_DENY_UNAVAILABLE, SPOOL_RETRY_MS);
	}
	return MOSQ_ERR_ACL_DENIED;
}

void plugin_spool__report(struct mqchat *m, const char *topic, const char *text, size_t len)
{
	struct plugin_spool *ps = &m->spool;

	if(ps->sp == NULL) return;
	/* The broker itself sends it: no client id. */
	if(spool__append(ps->sp, SPOOL_F_STORE, "", topic, text, len, NULL, 0, NULL) == MQC_OK){
		ps->appends++;
		return;
	}
	/* Device last-seen times are best effort: the next login reports again. */
	say_full(m, "device login reports");
	ps->refusing = true;
	ps->reports_lost++;
}
