/* presence.c - who is connected, and the retained chat/presence/<user> topic.
 *
 * Every authenticated client context is remembered by pointer; accounts
 * count their connections. The first connection of a user or device
 * publishes "online", the last one to go "offline" (retained, QoS 1), so
 * several devices give one correct presence. MOSQ_EVT_DISCONNECT fires for
 * every context (also never-authenticated ones, the old context of a session
 * takeover, kicks and keepalive timeouts); unknown pointers are ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "timeutil.h"

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) do{ oom = true; }while(0)

static void publish_presence(const char *name, bool online)
{
	char topic[sizeof("chat/presence/") + NAME_MAX_LEN];
	char payload[64];
	int plen;

	snprintf(topic, sizeof(topic), "chat/presence/%s", name);
	plen = snprintf(payload, sizeof(payload), "{\"status\":\"%s\",\"since\":%lld}",
			online ? "online" : "offline", (long long)time__now_ms());
	if(mosquitto_broker_publish_copy(NULL, topic, plen, payload, 1, true, NULL) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: cannot publish presence of %s", name);
	}
}

/* Delete the retained presence of name (an empty retained message): the
 * account has not connected since the broker started. */
static void clear_presence(const char *name)
{
	char topic[sizeof("chat/presence/") + NAME_MAX_LEN];

	snprintf(topic, sizeof(topic), "chat/presence/%s", name);
	(void)mosquitto_broker_publish_copy(NULL, topic, 0, NULL, 1, true, NULL);
}

static bool has_presence(enum user_kind kind)
{
	return kind == USER_KIND_USER || kind == USER_KIND_DEVICE;
}

static struct conn *find_conn(struct conn *head, const struct mosquitto *client)
{
	struct conn *c = NULL;

	HASH_FIND_PTR(head, &client, c);
	return c;
}

int presence__connect(struct mqchat *m, const struct mosquitto *client, const char *name,
		enum user_kind kind)
{
	struct presence *p = &m->presence;
	struct conn *c;
	struct conn_user *u = NULL;
	size_t len = strlen(name);
	bool oom = false, new_user = false;

	if(len == 0 || len > NAME_MAX_LEN) return MQC_ERR_INVAL;
	/* Basic auth runs once per context; a second call changes nothing. */
	if(find_conn(p->conns, client)) return MQC_OK;

	HASH_FIND(hh, p->users, name, len, u);
	if(u == NULL){
		u = calloc(1, sizeof(*u));
		if(u == NULL) return MQC_ERR_NOMEM;
		memcpy(u->name, name, len);
		u->len = (uint8_t)len;
		u->kind = kind;
		HASH_ADD_KEYPTR(hh, p->users, u->name, u->len, u);
		if(oom){
			free(u);
			return MQC_ERR_NOMEM;
		}
		new_user = true;
	}
	c = calloc(1, sizeof(*c));
	if(c != NULL){
		c->client = client;
		c->user = u;
		HASH_ADD_PTR(p->conns, client, c);
	}
	if(c == NULL || oom){
		free(c);
		if(new_user){
			HASH_DELETE(hh, p->users, u);
			free(u);
		}
		return MQC_ERR_NOMEM;
	}
	u->count++;
	u->kind = kind;
	if(u->count == 1 && has_presence(kind)) publish_presence(u->name, true);
	return MQC_OK;
}

int presence__register(struct mqchat *m, const struct mosquitto *client, const char *clientid,
		int64_t deadline)
{
	struct presence *p = &m->presence;
	struct conn *c;
	bool oom = false;

	if(find_conn(p->registers, client)) return MQC_OK;
	if(p->register_count >= REGISTER_MAX_CONNS) return MQC_ERR_TOOBIG;
	c = calloc(1, sizeof(*c));
	if(c == NULL) return MQC_ERR_NOMEM;
	c->client = client;
	c->deadline = deadline;
	snprintf(c->clientid, sizeof(c->clientid), "%s", clientid);
	HASH_ADD_PTR(p->registers, client, c);
	if(oom){
		free(c);
		return MQC_ERR_NOMEM;
	}
	p->register_count++;
	return MQC_OK;
}

void presence__disconnect(struct mqchat *m, const struct mosquitto *client)
{
	struct presence *p = &m->presence;
	struct conn *c;
	struct conn_user *u;

	c = find_conn(p->registers, client);
	if(c){
		HASH_DELETE(hh, p->registers, c);
		free(c);
		p->register_count--;
		return;
	}
	c = find_conn(p->conns, client);
	if(c == NULL) return;
	u = c->user;
	HASH_DELETE(hh, p->conns, c);
	free(c);
	if(u == NULL) return;
	if(u->count > 0) u->count--;
	if(u->count == 0){
		if(u->kick_pending) p->kicks_pending--;
		if(has_presence(u->kind)) publish_presence(u->name, false);
		HASH_DELETE(hh, p->users, u);
		free(u);
	}
}

void presence__sweep(struct mqchat *m, size_t budget)
{
	struct presence *p = &m->presence;
	const struct snap_user *u;
	struct conn_user *cu;

	if(!p->sweep_active) return;
	/* (Re)start on the current snapshot: a swap mid-sweep starts over. */
	if(!p->sweep_started || p->sweep_snap != m->snap){
		p->sweep_snap = m->snap;
		p->sweep_pos = m->snap ? m->snap->users : NULL;
		p->sweep_started = true;
	}
	for(u=p->sweep_pos; u && budget > 0; u=u->next){
		if(!has_presence(u->kind)) continue;
		cu = NULL;
		HASH_FIND(hh, p->users, u->name, u->len, cu);
		if(cu != NULL) continue;        /* connected: "online" is right */
		clear_presence(u->name);
		budget--;
	}
	p->sweep_pos = u;
	if(u == NULL){
		p->sweep_active = false;
		p->sweep_snap = NULL;
	}
}

unsigned presence__count(struct mqchat *m, const char *name)
{
	struct conn_user *u = NULL;
	size_t len = strlen(name);

	if(len == 0 || len > NAME_MAX_LEN) return 0;
	HASH_FIND(hh, m->presence.users, name, len, u);
	return u ? u->count : 0;
}

int presence__disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;

	(void)event;
	presence__disconnect(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}

void presence__cleanup(struct presence *p)
{
	struct conn *c, *ctmp;
	struct conn_user *u, *utmp;

	HASH_ITER(hh, p->conns, c, ctmp){
		HASH_DELETE(hh, p->conns, c);
		free(c);
	}
	HASH_ITER(hh, p->registers, c, ctmp){
		HASH_DELETE(hh, p->registers, c);
		free(c);
	}
	HASH_ITER(hh, p->users, u, utmp){
		HASH_DELETE(hh, p->users, u);
		free(u);
	}
	p->register_count = 0;
	p->kicks_pending = 0;
}
