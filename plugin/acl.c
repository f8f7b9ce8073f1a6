/* acl.c - the topic policy (docs/PROTOCOL.md): everything not listed is denied.
 *
 * The hot path: READ runs for every delivery to every subscriber. The topic
 * is split in place into (pointer, length) levels by common/topic.c; names
 * are looked up in the snapshot's indexes by those slices; nothing is
 * allocated, nothing is logged except rate-limited denials. acl__decide is the policy alone; the
 * callback asks it through the cache of aclcache.c, which keeps what a
 * message's topic named for its deliveries. */
#include <string.h>

#include <jansson.h>

#include "bus_plugin.h"
#include "envelope.h"
#include "plugin.h"
#include "snapshot.h"
#include "topic.h"

/* A registration request is small: user, password, nick, invite, id. */
#define REGISTER_MAX_PAYLOAD 4096u

static bool lv_eq(const struct topic_level *l, const char *s, size_t n)
{
	return l->n == n && snapshot__name_eq(l->p, s, n);
}

/* The last level of a user's filter: "#", "+" or one name. */
static bool lv_sub_tail(const struct topic_level *l)
{
	return topic__level_is(l, "#") || topic__level_is(l, "+") || names__valid(l->p, l->n);
}

const char *acl__reason_name(enum acl_reason reason)
{
	switch(reason){
		case ACL_OK: return "ok";
		case ACL_DENY_NO_USER: return "unknown user";
		case ACL_DENY_DISABLED: return "account disabled";
		case ACL_DENY_TOPIC: return "topic not allowed";
		case ACL_DENY_NOT_OWNER: return "sender is not the publisher";
		case ACL_DENY_RETAIN: return "retained publish";
		case ACL_DENY_TOO_BIG: return "payload too large";
		case ACL_DENY_ENVELOPE: return "invalid payload";
		case ACL_DENY_RECIPIENT: return "no such recipient";
		case ACL_DENY_BLOCKED: return "blocked by recipient";
		case ACL_DENY_NOT_MEMBER: return "not a room member";
		case ACL_DENY_REGISTER: return "registration connection";
		case ACL_DENY_RATE: return "sending too fast";
		case ACL_DENY_QOS: return "messages need a QoS 1 subscription";
		case ACL_DENY_SUBSCRIPTIONS: return "too many subscriptions";
		case ACL_DENY_PRIVATE: return "not shown to this account";
		case ACL_DENY_TYPING_QOS: return "typing needs a QoS 0 subscription";
		case ACL_DENY_UNAVAILABLE: return "the server cannot take messages now";
		case ACL_REASON_COUNT: break;
	}
	return "?";
}

const char *acl__reason_code(enum acl_reason reason)
{
	switch(reason){
		case ACL_OK: return "ok";
		case ACL_DENY_NO_USER: return "no_account";
		case ACL_DENY_DISABLED: return "account_disabled";
		case ACL_DENY_TOPIC: return "topic_not_allowed";
		case ACL_DENY_NOT_OWNER: return "not_sender";
		case ACL_DENY_RETAIN: return "retained";
		case ACL_DENY_TOO_BIG: return "too_large";
		case ACL_DENY_ENVELOPE: return "invalid_envelope";
		case ACL_DENY_RECIPIENT: return "no_recipient";
		case ACL_DENY_BLOCKED: return "blocked";
		case ACL_DENY_NOT_MEMBER: return "not_member";
		case ACL_DENY_REGISTER: return "registration_only";
		case ACL_DENY_RATE: return "rate_limited";
		case ACL_DENY_QOS: return "qos0_subscription";
		case ACL_DENY_SUBSCRIPTIONS: return "too_many_subscriptions";
		case ACL_DENY_PRIVATE: return "private";
		case ACL_DENY_TYPING_QOS: return "typing_qos";
		case ACL_DENY_UNAVAILABLE: return "unavailable";
		case ACL_REASON_COUNT: break;
	}
	return "unknown";
}

/* Payload checks shared by every WRITE: not retained, not too big. */
static enum acl_reason write_basics(const struct mqchat *m, const struct acl_request *req)
{
	if(req->retain) return ACL_DENY_RETAIN;
	if(req->payloadlen > m->cfg.max_payload) return ACL_DENY_TOO_BIG;
	return ACL_OK;
}

enum acl_reason acl__write_payload(const struct mqchat *m, struct acl_request *req)
{
	struct envelope env;
	enum acl_reason r = write_basics(m, req);

	if(r) return r;
	if(!envelope__parse(req->payload, req->payloadlen, &env, NULL)) return ACL_DENY_ENVELOPE;
	/* A person sends texts, receipts and reactions; membership events,
	 * edits, deletes and read markers come from a service only
	 * (decide_service). One compare for a text or a receipt. */
	if(env.type > ENVELOPE_RECEIPT && env.type != ENVELOPE_REACTION) return ACL_DENY_ENVELOPE;
	req->receipt = env.type == ENVELOPE_RECEIPT;
	return ACL_OK;
}

/* The account a topic's level l names as the recipient of what me writes
 * (an inbox, typing; a service's inbox envelope with me NULL) into *out:
 * it exists, is enabled, is a person or device, and does not block me. */
static inline enum acl_reason recipient(const struct snapshot *s, const struct topic_level *l,
		const struct snap_user *me, const struct snap_user **out)
{
	const struct snap_user *to = snapshot__user(s, l->p, l->n);

	*out = to;
	if(to == NULL || !to->enabled || to->kind == USER_KIND_SERVICE) return ACL_DENY_RECIPIENT;
	if(me != NULL && snapshot__user_in(&to->blocked, me)) return ACL_DENY_BLOCKED;
	return ACL_OK;
}

/* A typing indicator's payload (docs/PROTOCOL.md, "Typing"). */
static enum acl_reason typing_payload(const struct mqchat *m, struct acl_request *req)
{
	enum acl_reason r = write_basics(m, req);
	bool typing;

	req->typing = true;
	if(r) return r;
	return envelope__parse_typing(req->payload, req->payloadlen, &typing, NULL)
		? ACL_OK : ACL_DENY_ENVELOPE;
}

/* The envelope types a service may publish on a room's topic and on a
 * person's inbox (docs/PROTOCOL.md, "Conversations"). */
#define SERVICE_ROOM_TYPES ((1u << ENVELOPE_EVENT) | (1u << ENVELOPE_EDIT) | (1u << ENVELOPE_DELETE))
#define SERVICE_INBOX_TYPES ((1u << ENVELOPE_EDIT) | (1u << ENVELOPE_DELETE) | (1u << ENVELOPE_READ))

/* A service's publish on chat/room/<room>/<itself> (a room that exists)
 * or chat/inbox/<person>/<itself> (an enabled person or device): an
 * envelope of one of the types it may send there, nothing else. */
static enum acl_reason service_message(const struct mqchat *m, const struct snapshot *s,
		const struct snap_user *me, const struct topic_parts *t, const struct acl_request *req)
{
	const struct snap_user *to;
	struct envelope env;
	enum acl_reason r;
	unsigned types = SERVICE_ROOM_TYPES;

	if(!lv_eq(&t->b, me->name, me->len)) return ACL_DENY_NOT_OWNER;
	if(t->kind == TOPIC_ROOM){
		if(snapshot__room(s, t->a.p, t->a.n) == NULL) return ACL_DENY_NOT_MEMBER;
	}else{
		/* Nobody blocks a service. */
		if((r = recipient(s, &t->a, NULL, &to)) != ACL_OK) return r;
		types = SERVICE_INBOX_TYPES;
	}
	if((r = write_basics(m, req)) != ACL_OK) return r;
	if(!envelope__parse(req->payload, req->payloadlen, &env, NULL) || !(types & (1u << env.type))){
		return ACL_DENY_ENVELOPE;
	}
	return ACL_OK;
}

/* A JSON object, by jansson: this runs once per registration attempt, which
 * is rate limited per address, so an allocation here is fine. With type
 * set, its "type" member must be that string. */
static bool json_object_payload(const void *payload, uint32_t len, const char *type)
{
	json_t *j;
	bool ok;

	if(payload == NULL || len == 0 || !utf8__valid(payload, len)) return false;
	j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	ok = j != NULL && json_is_object(j);
	if(ok && type != NULL){
		const char *t = json_string_value(json_object_get(j, "type"));
		ok = t != NULL && strcmp(t, type) == 0;
	}
	json_decref(j);
	return ok;
}

/* The longest resync notice a service may send: {"type":"resync","ts":...}
 * and room to grow, far below a message. */
#define RESYNC_NOTICE_MAX 1024

/* A service's publish on chat/notice/<person>: only a resync notice
 * (docs/PROTOCOL.md, "Several nodes"), which a node that lost messages on
 * their way sends so the person's apps sync. Refusal notices are the
 * plugin's alone: a forged one could make an app drop a message it sent.
 * Rare (a node's recovery), so jansson's allocation is fine here. */
static enum acl_reason service_notice(const struct mqchat *m, const struct snapshot *s,
		const struct topic_parts *t, const struct acl_request *req)
{
	const struct snap_user *to;
	enum acl_reason r;

	if((r = recipient(s, &t->a, NULL, &to)) != ACL_OK) return r;
	if((r = write_basics(m, req)) != ACL_OK) return r;
	if(req->payloadlen > RESYNC_NOTICE_MAX) return ACL_DENY_TOO_BIG;
	return json_object_payload(req->payload, req->payloadlen, "resync")
		? ACL_OK : ACL_DENY_ENVELOPE;
}

/* `_register@<device>`: only its own chat/register/<clientid>/{req,resp}.
 * With registration off it may still ask login_status, which the callback
 * answers before the archiver would see it (and says "closed" to any
 * other request). */
static enum acl_reason decide_register(const struct mqchat *m, const struct acl_request *req)
{
	struct topic_parts t;

	if(req->clientid == NULL || !topic__parse(req->topic, &t)
			|| !lv_eq(&t.a, req->clientid, strlen(req->clientid))){
		return ACL_DENY_REGISTER;
	}
	switch(req->access){
		case MOSQ_ACL_SUBSCRIBE:
		case MOSQ_ACL_UNSUBSCRIBE:
		case MOSQ_ACL_READ:
			return t.kind == TOPIC_REGISTER_RESP ? ACL_OK : ACL_DENY_REGISTER;
		case MOSQ_ACL_WRITE:
			if(t.kind != TOPIC_REGISTER_REQ) return ACL_DENY_REGISTER;
			if(req->retain) return ACL_DENY_RETAIN;
			if(req->payloadlen > m->cfg.max_payload || req->payloadlen > REGISTER_MAX_PAYLOAD){
				return ACL_DENY_TOO_BIG;
			}
			return json_object_payload(req->payload, req->payloadlen, NULL)
				? ACL_OK : ACL_DENY_ENVELOPE;
	}
	return ACL_DENY_REGISTER;
}

/* Strip one "$share/<group>/" prefix; false if it is malformed. */
static bool strip_share(const char **topic)
{
	const char *t = *topic, *slash;

	if(strncmp(t, "$share/", 7) != 0) return true;
	t += 7;
	slash = strchr(t, '/');
	if(slash == NULL || slash == t) return false;
	if(memchr(t, '+', (size_t)(slash - t)) || memchr(t, '#', (size_t)(slash - t))) return false;
	*topic = slash + 1;
	return true;
}

/* The broker's $SYS tree (a topic, or a filter whose first level is
 * $SYS): in Mosquitto 2.0 $SYS/broker/... from the broker and
 * $SYS/mqchat/plugin from this plugin (stats.c), the figures a service
 * (the archiver's metrics) reads. Nobody may write there: the broker
 * refuses it before asking, and decide_service denies every WRITE outside
 * chat/. */
static bool is_sys(const char *topic)
{
	return strncmp(topic, "$SYS/", 5) == 0;
}

static enum acl_reason decide_service(const struct mqchat *m, const struct snapshot *s,
		const struct snap_user *me, const struct acl_request *req)
{
	const char *topic = req->topic;
	struct topic_parts t;

	/* chat/ first: the archiver reads every message. */
	switch(req->access){
		case MOSQ_ACL_UNSUBSCRIBE:
			return ACL_OK;
		case MOSQ_ACL_SUBSCRIBE:
			if(!strip_share(&topic)) return ACL_DENY_TOPIC;
			return topic__is_chat(topic) || is_sys(topic) ? ACL_OK : ACL_DENY_TOPIC;
		case MOSQ_ACL_READ:
			return topic__is_chat(topic) || is_sys(topic) ? ACL_OK : ACL_DENY_TOPIC;
		case MOSQ_ACL_WRITE:
			/* Answers; a room's membership events, edits and deletes;
			 * a person's edits, deletes and read markers; a person's
			 * resync notices: never a text, never presence or typing. */
			topic__parse(topic, &t);
			if(t.kind == TOPIC_ROOM || t.kind == TOPIC_INBOX){
				return service_message(m, s, me, &t, req);
			}else if(t.kind == TOPIC_NOTICE){
				return service_notice(m, s, &t, req);
			}else if(t.kind == TOPIC_RPC_RESP){
				if(!names__valid(t.a.p, t.a.n)) return ACL_DENY_TOPIC;
			}else if(t.kind == TOPIC_REGISTER_RESP){
				if(!names__register_clientid(t.a.p, t.a.n, NULL)) return ACL_DENY_TOPIC;
			}else{
				return ACL_DENY_TOPIC;
			}
			return write_basics(m, req);
	}
	return ACL_DENY_TOPIC;
}

/* The decision for me, a person or a device; named: see acl_named. */
static enum acl_reason decide_user(const struct mqchat *m, const struct snapshot *s,
		const struct snap_user *me, struct acl_request *req, struct acl_named *named)
{
	struct topic_parts t;
	const struct snap_user *to;
	const struct snap_room *room;
	enum acl_reason r;

	if(req->access == MOSQ_ACL_UNSUBSCRIBE) return ACL_OK;

	switch(topic__parse(req->topic, &t) ? t.kind : TOPIC_NONE){
		case TOPIC_PRESENCE:
			/* chat/presence/<name>; the plugin alone publishes here, and
			 * each delivery goes only to whom <name> shows it (a name no
			 * account has: only the clearing of its topic travels). */
			if(req->access == MOSQ_ACL_SUBSCRIBE) return lv_sub_tail(&t.a) ? ACL_OK : ACL_DENY_TOPIC;
			if(req->access != MOSQ_ACL_READ || !names__valid(t.a.p, t.a.n)) return ACL_DENY_TOPIC;
			to = snapshot__user(s, t.a.p, t.a.n);
			return to == NULL || snapshot__sees(to, me) ? ACL_OK : ACL_DENY_PRIVATE;
		case TOPIC_NOTICE:
			/* chat/notice/<me>: refusals of what I sent; the plugin alone
			 * publishes here. */
			if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
			return req->access == MOSQ_ACL_SUBSCRIBE || req->access == MOSQ_ACL_READ
				? ACL_OK : ACL_DENY_TOPIC;
		case TOPIC_INBOX:
			switch(req->access){
				case MOSQ_ACL_WRITE:
					/* chat/inbox/<to>/<me> */
					if(!lv_eq(&t.b, me->name, me->len)) return ACL_DENY_NOT_OWNER;
					if((r = recipient(s, &t.a, me, &to)) != ACL_OK) return r;
					if(named != NULL){
						named->kind = ACL_TOPIC_INBOX;
						named->len = t.len;
						named->room = NULL;
						named->to = to;
						named->from = me;
						named->sent = true;
					}
					return acl__write_payload(m, req);
				case MOSQ_ACL_SUBSCRIBE:
					/* chat/inbox/<me>/..., and chat/inbox/+/<me>: what I
					 * send, for my other devices (carbons). */
					if(topic__level_is(&t.a, "+")){
						return lv_eq(&t.b, me->name, me->len) ? ACL_OK : ACL_DENY_TOPIC;
					}
					if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
					return lv_sub_tail(&t.b) ? ACL_OK : ACL_DENY_TOPIC;
				case MOSQ_ACL_READ:
					/* chat/inbox/<me>/<from>, unless I block <from>;
					 * chat/inbox/<to>/<me>, my own message's copy. */
					if(!lv_eq(&t.a, me->name, me->len)){
						return lv_eq(&t.b, me->name, me->len) ? ACL_OK : ACL_DENY_TOPIC;
					}
					if(snapshot__name_in(&me->blocked, t.b.p, t.b.n)) return ACL_DENY_BLOCKED;
					return ACL_OK;
			}
			return ACL_DENY_TOPIC;
		case TOPIC_TYPING:
			switch(req->access){
				case MOSQ_ACL_WRITE:
					/* chat/typing/<to>/<me>: whom I may write to. */
					if(!lv_eq(&t.b, me->name, me->len)) return ACL_DENY_NOT_OWNER;
					if((r = recipient(s, &t.a, me, &to)) != ACL_OK) return r;
					return typing_payload(m, req);
				case MOSQ_ACL_SUBSCRIBE:
					if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
					return lv_sub_tail(&t.b) ? ACL_OK : ACL_DENY_TOPIC;
				case MOSQ_ACL_READ:
					if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
					if(snapshot__name_in(&me->blocked, t.b.p, t.b.n)) return ACL_DENY_BLOCKED;
					return ACL_OK;
			}
			return ACL_DENY_TOPIC;
		case TOPIC_ROOMTYPING:
			room = snapshot__room(s, t.a.p, t.a.n);
			if(room == NULL || !snapshot__user_in(&room->members, me)) return ACL_DENY_NOT_MEMBER;
			switch(req->access){
				case MOSQ_ACL_WRITE:
					if(!lv_eq(&t.b, me->name, me->len)) return ACL_DENY_NOT_OWNER;
					return typing_payload(m, req);
				case MOSQ_ACL_SUBSCRIBE:
					return lv_sub_tail(&t.b) ? ACL_OK : ACL_DENY_TOPIC;
				case MOSQ_ACL_READ:
					return ACL_OK;
			}
			return ACL_DENY_TOPIC;
		case TOPIC_ROOM:
			room = snapshot__room(s, t.a.p, t.a.n);
			if((req->access == MOSQ_ACL_READ || req->access == MOSQ_ACL_WRITE) && named != NULL){
				named->kind = ACL_TOPIC_ROOM;
				named->len = t.len;
				named->room = room;
				named->to = NULL;
				named->from = NULL;
			}
			if(room == NULL || !snapshot__user_in(&room->members, me)){
				return ACL_DENY_NOT_MEMBER;
			}
			switch(req->access){
				case MOSQ_ACL_WRITE:
					if(!lv_eq(&t.b, me->name, me->len)) return ACL_DENY_NOT_OWNER;
					if(named != NULL) named->sent = true;
					return acl__write_payload(m, req);
				case MOSQ_ACL_SUBSCRIBE:
					return lv_sub_tail(&t.b) ? ACL_OK : ACL_DENY_TOPIC;
				case MOSQ_ACL_READ:
					return ACL_OK;
			}
			return ACL_DENY_TOPIC;
		case TOPIC_RPC_REQ:
			if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
			return req->access == MOSQ_ACL_WRITE ? write_basics(m, req) : ACL_DENY_TOPIC;
		case TOPIC_RPC_RESP:
			if(!lv_eq(&t.a, me->name, me->len)) return ACL_DENY_TOPIC;
			return req->access == MOSQ_ACL_SUBSCRIBE || req->access == MOSQ_ACL_READ
				? ACL_OK : ACL_DENY_TOPIC;
		default:
			return ACL_DENY_TOPIC;
	}
}

enum acl_reason acl__decide_account(const struct mqchat *m, const struct snapshot *s,
		const struct snap_user *me, struct acl_request *req, struct acl_named *named)
{
	if(me == NULL) return ACL_DENY_NO_USER;
	req->user = me;
	if(!me->enabled) return ACL_DENY_DISABLED;
	if(me->kind == USER_KIND_SERVICE) return decide_service(m, s, me, req);
	return decide_user(m, s, me, req, named);
}

enum acl_reason acl__decide(const struct mqchat *m, const struct snapshot *s,
		struct acl_request *req)
{
	size_t ulen;

	if(req->topic == NULL || req->username == NULL) return ACL_DENY_NO_USER;
	if(acl__is_register(req->username, &ulen)) return decide_register(m, req);
	return acl__decide_account(m, s, snapshot__user(s, req->username, ulen), req, NULL);
}

/* A subscription the topic policy allows, by a person or device: what it
 * may cost the broker. A QoS 0 subscription to messages would take them
 * at QoS 0, which Mosquitto 2.0 queues for a connected client by count
 * only, never by bytes (max_queued_bytes counts QoS 1 and 2): a client
 * that stops reading could pin 100,000 messages of 64 KiB. With the
 * broker's upgrade_outgoing_qos (config/mosquitto.conf) every message
 * then goes out at QoS 1, inside max_inflight_messages and
 * max_queued_bytes. */
static enum acl_reason subscribe_limits(const struct mqchat *m,
		const struct mosquitto_evt_acl_check *ed)
{
	if(ed->qos == 0 && topic__is_message(ed->topic)){
		return ACL_DENY_QOS;
	}
	/* Typing is the other way round: at QoS 0 the broker never queues it
	 * for a session that is away (queue_qos0_messages false), and with
	 * upgrade_outgoing_qos a QoS 1 subscription would. */
	if(ed->qos > 0 && topic__is_typing(ed->topic)){
		return ACL_DENY_TYPING_QOS;
	}
	/* The broker's count is of slots the connection ever filled (2.0.11
	 * reuses a freed one): a bound on its memory all the same. */
	if(m->cfg.max_subscriptions > 0
			&& mosquitto_client_sub_count(ed->client) >= m->cfg.max_subscriptions){
		return ACL_DENY_SUBSCRIPTIONS;
	}
	return ACL_OK;
}

int acl__check_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct mqchat *m = userdata;
	struct acl_request req;
	enum acl_reason r;
	int64_t retry_ms = 0;
	char ubuf[ESC_LEN], abuf[ESC_LEN], tbuf[ESC_LEN * 2];

	(void)event;
	/* A session whose client went to another node gets nothing (bus_presence.c). */
	if(ed->access == MOSQ_ACL_READ && m->bus != NULL && plugin_bus__moved(m, ed->client)){
		return MOSQ_ERR_ACL_DENIED;
	}
	req.username = mosquitto_client_username(ed->client);
	/* Only the registration pseudo-user's decision reads the client id:
	 * no broker call for it on every other check. */
	req.clientid = req.username != NULL && req.username[0] == REGISTER_USER[0]
		? mosquitto_client_id(ed->client) : NULL;
	req.access = ed->access;
	req.topic = ed->topic;
	req.payload = ed->payload;
	req.payloadlen = ed->payloadlen;
	req.retain = ed->retain;
	req.user = NULL;
	req.receipt = false;
	req.typing = false;

	r = aclcache__decide(m, m->snap, &m->acl_cache, &req);
	if(ed->access == MOSQ_ACL_SUBSCRIBE && r == ACL_OK && req.user != NULL
			&& req.user->kind != USER_KIND_SERVICE){
		r = subscribe_limits(m, ed);
	}else if(ed->access == MOSQ_ACL_WRITE){
		if(r == ACL_OK && req.user != NULL && req.user->kind != USER_KIND_SERVICE){
			retry_ms = ratelimit__take(req.typing ? &m->typing_limit : &m->send_limit, req.user,
					m->now_ms, req.receipt, ed->payloadlen);
			if(retry_ms > 0) r = ACL_DENY_RATE;
		}else if(r == ACL_OK && req.clientid != NULL
				&& notice__register_request(m, ed->client, req.clientid, ed->payload, ed->payloadlen)){
			return MOSQ_ERR_ACL_DENIED;   /* answered here, not by the archiver */
		}
	}
	/* The bus follows each session's filters (bus.c). */
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE || (ed->access == MOSQ_ACL_SUBSCRIBE && r == ACL_OK)){
		plugin_bus__interest(m, ed->client, ed->topic, ed->access);
	}
	if(r == ACL_OK) return MOSQ_ERR_SUCCESS;

	m->acl_denied[r]++;
	/* Privacy is policy, not misuse: every presence change meets it once
	 * per subscriber it is not shown to. Counted, never logged. */
	if(r == ACL_DENY_PRIVATE) return MOSQ_ERR_ACL_DENIED;
	if((ed->access == MOSQ_ACL_WRITE || r == ACL_DENY_QOS || r == ACL_DENY_SUBSCRIPTIONS
				|| r == ACL_DENY_TYPING_QOS)
			&& req.user != NULL && req.user->kind != USER_KIND_SERVICE){
		notice__refused(m, ed->client, req.username, ed->topic, ed->payload, ed->payloadlen, r,
				retry_ms);
	}
	/* Escaping costs more than the decision: only for lines that are written. */
	if(!plog__begin(&m->log, m->clock_ms())) return MOSQ_ERR_ACL_DENIED;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: denied %s of \"%s\" to %s (%s): %s",
			ed->access == MOSQ_ACL_WRITE ? "publish"
			: ed->access == MOSQ_ACL_READ ? "delivery"
			: ed->access == MOSQ_ACL_SUBSCRIBE ? "subscribe" : "unsubscribe",
			plugin__esc(ed->topic, tbuf, sizeof(tbuf)),
			plugin__esc(req.username, ubuf, sizeof(ubuf)),
			plugin__esc(mosquitto_client_address(ed->client), abuf, sizeof(abuf)),
			acl__reason_name(r));
	return MOSQ_ERR_ACL_DENIED;
}
