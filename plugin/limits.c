/* limits.c - how much of the broker one account may hold.
 *
 * Every connection, session and subscription costs the broker memory, and
 * a persistent session keeps costing it (queued messages, and time at the
 * next start) after its client has gone. Nothing about these is counted by
 * Mosquitto 2.0 per user, so the plugin counts, for each person or device
 * (services are trusted and not counted):
 *
 * - connections open at once: plugin_opt_max_connections. A client id
 *   already connected may always reconnect (the broker then closes the old
 *   connection: a phone that changed networks is never locked out by its
 *   own half-open connection);
 * - sessions: client ids that ask to keep a session (clean session /
 *   clean start false) seen since the broker started:
 *   plugin_opt_max_sessions. A client id counted once stays counted until
 *   the broker restarts (its session outlives the connection). An MQTT 5
 *   client that starts clean but sets a session expiry also keeps one, but
 *   a plugin cannot see the expiry in Mosquitto 2.0.11; counting every
 *   clean start would refuse apps and tools that start clean with a new
 *   client id each time (session expiry 0, no session), so those are not
 *   counted (docs/SECURITY.md says what that leaves);
 * - subscriptions per connection: plugin_opt_max_subscriptions, checked in
 *   acl.c with the broker's own count.
 *
 * And the MQTT 5 properties of chat messages (EVT_MESSAGE): a publish may
 * carry up to the packet limit in user properties, which the broker does
 * not count against any queue limit and which recipients would get
 * unchecked. The contract (docs/PROTOCOL.md) puts everything in the
 * envelope, so on inbox and room topics they are dropped before fan-out.
 *
 * Only logins and disconnections reach the tables, never a message. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "topic.h"

struct limit_account {
	UT_hash_handle hh;              /* by name */
	unsigned live_ids;              /* client ids with a connection now */
	unsigned sessions;              /* client ids counted as sessions */
	char name[];
};

struct limit_id {
	UT_hash_handle hh;              /* by client id */
	struct limit_account *acct;
	unsigned live;                  /* connections holding this client id now */
	bool session;                   /* counted in acct->sessions */
	char clientid[];
};

struct limit_conn {
	UT_hash_handle hh;              /* by client pointer */
	const struct mosquitto *client;
	struct limit_id *id;
};

static struct limit_account *account(struct limits *l, const char *name)
{
	struct limit_account *a;
	size_t len = strlen(name);

	HASH_FIND(hh, l->accounts, name, len, a);
	if(a != NULL) return a;
	a = calloc(1, sizeof(*a) + len + 1);
	if(a == NULL) return NULL;
	memcpy(a->name, name, len + 1);
	HASH_ADD_KEYPTR(hh, l->accounts, a->name, len, a);
	return a;
}

static void drop_id_if_idle(struct limits *l, struct limit_id *id)
{
	struct limit_account *a = id->acct;

	if(id->live > 0 || id->session) return;
	HASH_DELETE(hh, l->ids, id);
	free(id);
	if(a->live_ids == 0 && a->sessions == 0){
		HASH_DELETE(hh, l->accounts, a);
		free(a);
	}
}

/* Asks to keep (or resume) a session: clean session / clean start false. */
static bool keeps_session(const struct mosquitto *client)
{
	return !mosquitto_client_clean_session(client);
}

enum limit_result limits__admit(struct mqchat *m, const struct mosquitto *client,
		const char *name, const char *clientid)
{
	struct limits *l = &m->limits;
	struct limit_account *a;
	struct limit_id *id;
	struct limit_conn *c;
	size_t idlen = strlen(clientid);
	bool session = keeps_session(client);

	a = account(l, name);
	if(a == NULL) return LIMIT_NOMEM;
	HASH_FIND(hh, l->ids, clientid, idlen, id);
	if(id == NULL || id->live == 0){
		if(m->cfg.max_connections > 0 && a->live_ids >= (unsigned)m->cfg.max_connections){
			return LIMIT_CONNECTIONS;
		}
	}
	if(session && (id == NULL || !id->session)){
		if(m->cfg.max_sessions > 0 && a->sessions >= (unsigned)m->cfg.max_sessions){
			return LIMIT_SESSIONS;
		}
	}
	c = calloc(1, sizeof(*c));
	if(c == NULL) return LIMIT_NOMEM;
	if(id == NULL){
		id = calloc(1, sizeof(*id) + idlen + 1);
		if(id == NULL){
			free(c);
			return LIMIT_NOMEM;
		}
		memcpy(id->clientid, clientid, idlen + 1);
		id->acct = a;
		HASH_ADD_KEYPTR(hh, l->ids, id->clientid, idlen, id);
	}
	if(session && !id->session){
		id->session = true;
		a->sessions++;
	}
	if(id->live++ == 0) a->live_ids++;
	c->client = client;
	c->id = id;
	HASH_ADD_PTR(l->conns, client, c);
	return LIMIT_OK;
}

void limits__disconnect(struct mqchat *m, const struct mosquitto *client)
{
	struct limits *l = &m->limits;
	struct limit_conn *c;
	struct limit_id *id;

	HASH_FIND_PTR(l->conns, &client, c);
	if(c == NULL) return;
	id = c->id;
	HASH_DELETE(hh, l->conns, c);
	free(c);
	if(--id->live == 0) id->acct->live_ids--;
	drop_id_if_idle(l, id);
}

int limits__disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;

	(void)event;
	limits__disconnect(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}

const char *limits__why(enum limit_result r)
{
	switch(r){
		case LIMIT_OK: return "ok";
		case LIMIT_CONNECTIONS: return "too many connections for this account";
		case LIMIT_SESSIONS: return "too many sessions for this account";
		case LIMIT_NOMEM: return "out of memory";
	}
	return "?";
}

/* On chat message and typing topics the payload is everything: MQTT 5
 * properties (user properties, correlation data) are dropped before
 * delivery. */
int limits__message_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;

	(void)event;
	(void)userdata;
	/* MQTT 3.1.1 and plain MQTT 5 publishes stop at the first test. */
	if(ed->properties != NULL && ed->topic != NULL
			&& (topic__is_message(ed->topic) || topic__is_typing(ed->topic))){
		mosquitto_property_free_all(&ed->properties);
	}
	return MOSQ_ERR_SUCCESS;
}

void limits__cleanup(struct limits *l)
{
	struct limit_conn *c, *ctmp;
	struct limit_id *id, *itmp;
	struct limit_account *a, *atmp;

	HASH_FREE_ALL(l->conns, c, ctmp);
	HASH_FREE_ALL(l->ids, id, itmp);
	HASH_FREE_ALL(l->accounts, a, atmp);
}
