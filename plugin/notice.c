/* notice.c - telling a client why the broker said no.
 *
 * Mosquitto 2.0 lets a plugin refuse a publish only as "not authorized"
 * (MQTT 5 PUBACK 0x87), and MQTT 3.1.1 has no refusal at all, so the plugin
 * says why on a topic of the sender's own: chat/notice/<me>, QoS 0, never
 * retained, naming the client id that sent the refused message. And it
 * cannot say why a CONNECT was refused beyond CONNACK 0x87 / 5, so a client
 * that was refused may ask, over a `_register` connection, what it may know
 * (login_status).
 *
 * Only refusals reach here, never an accepted message: allocation and
 * jansson are fine, and each account's notices are rate limited so a
 * flood of bad publishes cannot turn into a flood of notices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "envelope.h"
#include "err.h"
#include "plugin.h"
#include "timeutil.h"
#include "topic.h"

/* A message id is echoed only if it is a string of at most this many bytes. */
#define NOTICE_MAX_REF 128

/* The "id" member of payload if it is a JSON object with a short string id
 * (new reference), else JSON null. */
static json_t *ref_of(const void *payload, uint32_t len)
{
	json_t *j, *id, *out = NULL;

	if(payload == NULL || len == 0 || !utf8__valid(payload, len)) return json_null();
	j = json_loadb(payload, len, 0, NULL);
	id = json_object_get(j, "id");
	if(json_is_string(id) && json_string_length(id) <= NOTICE_MAX_REF) out = json_incref(id);
	json_decref(j);
	return out ? out : json_null();
}

/* Send obj (stolen) as JSON on topic at QoS 0: to the one client with
 * clientid, or (NULL) to the topic's subscribers. */
static void send_to(const char *clientid, const char *topic, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if(text == NULL) return;
	/* The broker takes the payload and frees it. */
	if(mosquitto_broker_publish(clientid, topic, (int)strlen(text), text, 0, false, NULL)
			!= MOSQ_ERR_SUCCESS){
		free(text);
	}
}

void notice__refused(struct mqchat *m, const struct mosquitto *client, const char *username,
		const char *topic, const void *payload, uint32_t payloadlen, enum acl_reason reason,
		int64_t retry_ms)
{
	const char *clientid = mosquitto_client_id(client);
	char ntopic[TOPIC_MAX_LEN + 1];
	json_t *n;

	if(clientid == NULL || username == NULL || strlen(username) > NAME_MAX_LEN) return;
	if(!throttle__take(&m->notice_limit, username, strlen(username), m->clock_ms())) return;
	topic__build(ntopic, sizeof(ntopic), TOPIC_NOTICE, username, NULL);
	n = json_pack("{sssosssosssssI}", "type", "refused", "ref", ref_of(payload, payloadlen),
			"client", clientid, "topic", json_string(topic), "code", acl__reason_code(reason),
			"message", acl__reason_name(reason), "ts", (json_int_t)time__now_ms());
	if(n != NULL && retry_ms > 0) json_object_set_new(n, "retry_ms", json_integer(retry_ms));
	/* To the account's connections that subscribed to their notices (the
	 * refused one among them, if it did): nothing unasked-for reaches an
	 * app, and "client" says which device sent it. */
	send_to(NULL, ntopic, n);
}

/* What login_status may tell the address addr about name: only what does
 * not say whether the name exists, unless the asker showed its password. */
static json_t *login_status(struct mqchat *m, const char *addr, const char *name, json_t *id)
{
	int64_t now = m->clock_ms(), wait_user = 0, wait_addr = 0;
	char key[AUTH_USER_KEY_LEN];
	const char *taddr = auth__throttle_address(m, addr);   /* NULL: a front's */
	size_t klen = auth__user_key(key, name, taddr ? taddr : "");
	bool by_user, by_addr;

	/* The name as seen from the asking address: the throttle a login from
	 * here meets (auth.c keys them the same way). */
	by_user = throttle__locked(&m->user_throttle, key, klen, now, &wait_user);
	by_addr = taddr != NULL && throttle__locked(&m->addr_throttle, taddr, strlen(taddr), now,
			&wait_addr);
	if(by_user || by_addr){
		/* Unknown names are throttled alike: nothing about the name leaks. */
		return json_pack("{sOsbsssssI}", "id", id, "ok", 1, "user", name, "status", "throttled",
				"retry_ms", (json_int_t)(wait_user > wait_addr ? wait_user : wait_addr));
	}
	if(throttle__locked(&m->disabled_seen, key, klen, now, NULL)){
		return json_pack("{sOsbssss}", "id", id, "ok", 1, "user", name, "status", "disabled");
	}
	/* The right password was shown from here, and a limit refused it. */
	if(throttle__locked(&m->connections_seen, key, klen, now, NULL)){
		return json_pack("{sOsbsssssi}", "id", id, "ok", 1, "user", name,
				"status", "too_many_connections", "limit", m->cfg.max_connections);
	}
	if(throttle__locked(&m->sessions_seen, key, klen, now, NULL)){
		return json_pack("{sOsbsssssi}", "id", id, "ok", 1, "user", name,
				"status", "too_many_sessions", "limit", m->cfg.max_sessions);
	}
	/* A wrong password, an unknown name, or a client id that is not the
	 * name's: the same answer for all. */
	return json_pack("{sOsbssss}", "id", id, "ok", 1, "user", name, "status", "refused");
}

/* The "id" of a request (borrowed from req), or JSON null. */
static json_t *id_of(json_t *req)
{
	json_t *id = json_object_get(req, "id");

	return json_is_string(id) ? id : json_null();
}

static void answer_register(const char *clientid, json_t *resp)
{
	char topic[TOPIC_MAX_LEN + 1];

	topic__build(topic, sizeof(topic), TOPIC_REGISTER_RESP, clientid, NULL);
	send_to(clientid, topic, resp);
}

bool notice__register_request(struct mqchat *m, const struct mosquitto *client,
		const char *clientid, const void *payload, uint32_t payloadlen)
{
	const char *addr = mosquitto_client_address(client), *name;
	json_t *req, *op, *resp;

	req = json_loadb(payload, payloadlen, JSON_REJECT_DUPLICATES, NULL);
	op = json_object_get(req, "op");
	if(json_is_string(op) && strcmp(json_string_value(op), "login_status") == 0){
		name = json_string_value(json_object_get(req, "user"));
		if(name == NULL || !names__valid_str(name)){
			resp = json_pack("{sOsbssss}", "id", id_of(req), "ok", 0, "error", "bad_request",
					"message", "\"user\" must be an account name");
		}else{
			resp = login_status(m, addr ? addr : "?", name, id_of(req));
		}
	}else if(plugin_config__registration(&m->cfg, m->snap) == REGISTRATION_OFF){
		/* Off is answered here: the archiver need not be up for it. */
		resp = json_pack("{sOsbssss}", "id", id_of(req), "ok", 0, "error", "closed",
				"message", "registration is closed");
	}else{
		json_decref(req);
		return false;           /* a registration: the archiver's */
	}
	answer_register(clientid, resp);
	json_decref(req);
	return true;
}
