/* presence.c - who is connected, and the retained chat/presence/<user> topic.
 *
 * Every authenticated client context is remembered by pointer; accounts
 * count their connections. The first connection of a user or device
 * makes it "online", the last one to go "offline" (retained, QoS 1), so
 * several devices give one correct presence. MOSQ_EVT_DISCONNECT fires for
 * every context (also never-authenticated ones, the old context of a session
 * takeover, kicks and keepalive timeouts); unknown pointers are ignored.
 *
 * Coalescing. One account connecting and disconnecting in a loop must not
 * send every watcher two messages a cycle (presence goes out at QoS 1, so
 * each is also queued for every offline session subscribed at QoS 1).
 * So an account's presence is published at most once per interval, and the
 * gate (struct presence_gate, pure: presence__gate_change and _fire) says
 * when:
 *   - a change while no interval runs is published at once, and starts one;
 *   - a change during an interval waits; when the interval is over, TICK
 *     publishes the state the account is in then, if it is not what was
 *     published last, and starts the next interval. "since" is always the
 *     time of the real change, not of the publish;
 *   - an interval that ends with nothing to publish is followed by a quiet
 *     one of the same length, in which a change is published at once;
 *   - a publish made while an interval (or the quiet one) runs doubles the
 *     interval, from PRESENCE_MIN_MS up to PRESENCE_MAX_MS; after a quiet
 *     interval with no change the account starts again from the first.
 * An account that keeps changing is thus published at 0, 1, 3, 7, 15 and
 * 31 s and then every 30 s at most, and always ends in its true state.
 *
 * Memory. An account's entry (struct conn_user) lives while it has a
 * connection, and after its last one while its gate runs (a change waits,
 * or an interval is not over: at most 2 x 30 s), then it is freed: a new
 * entry behaves exactly as the old one would have. So entries are bounded
 * by the accounts in the store. Running gates sit in one FIFO per interval
 * length, appended with due = now + that length: each FIFO is in due order
 * and TICK looks at its heads only.
 *
 * Deleted accounts leave no presence: the last connection of an account
 * the snapshot no longer has (it was kicked for that) clears the topic (an
 * empty retained message) instead of saying "offline", and so does the
 * swap to a snapshot without an account that was not connected
 * (presence__vanished). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "bus_plugin.h"
#include "err.h"
#include "plugin.h"
#include "timeutil.h"
#include "topic.h"

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) do{ oom = true; }while(0)

/* ---- the gate: pure, no clock of its own, no I/O ---- */

int64_t presence__gate_interval(unsigned level)
{
	int64_t ms = (int64_t)PRESENCE_MIN_MS << (level < PRESENCE_LEVELS ? level : PRESENCE_LEVELS - 1);

	return ms < PRESENCE_MAX_MS ? ms : PRESENCE_MAX_MS;
}

static uint8_t shown_of(bool online)
{
	return online ? PRESENCE_SHOWN_ONLINE : PRESENCE_SHOWN_OFFLINE;
}

/* g's state is published now: the next publish waits an interval, twice
 * the last one if that one still runs (the account keeps changing). */
static void gate_publish(struct presence_gate *g, int64_t now)
{
	if(g->due == 0) g->level = 0;
	else if(g->level + 1 < PRESENCE_LEVELS) g->level++;
	g->due = now + presence__gate_interval(g->level);
	g->cooling = false;
	g->pending = false;
	g->shown = shown_of(g->online);
}

enum presence_action presence__gate_change(struct presence_gate *g, bool online, int64_t now,
		int64_t wall)
{
	g->online = online;
	g->since = wall;
	if(g->due != 0 && !g->cooling){
		/* Inside an interval (or at its end, before TICK got there). */
		g->pending = true;
		return PRESENCE_KEEP;
	}
	if(g->shown == shown_of(online)) return PRESENCE_KEEP;
	gate_publish(g, now);
	return PRESENCE_PUBLISH;
}

enum presence_action presence__gate_fire(struct presence_gate *g, int64_t now, bool connected)
{
	if(g->due == 0 || now < g->due) return PRESENCE_KEEP;
	if(!g->cooling){
		if(g->pending && g->shown != shown_of(g->online)){
			gate_publish(g, now);
			return PRESENCE_PUBLISH;
		}
		/* Nothing to say (no change, or back where it was): a quiet
		 * interval of the same length follows. */
		g->pending = false;
		g->cooling = true;
		g->due = now + presence__gate_interval(g->level);
		return PRESENCE_KEEP;
	}
	/* Quiet for a whole interval: the next change starts from the first
	 * interval, as a new account's would. */
	g->due = 0;
	g->cooling = false;
	g->level = 0;
	return connected ? PRESENCE_KEEP : PRESENCE_FORGET;
}

/* ---- publishing ---- */

static void publish_presence(const char *name, bool online, int64_t since)
{
	char topic[TOPIC_MAX_LEN + 1];
	char payload[64];
	int plen;

	topic__build(topic, sizeof(topic), TOPIC_PRESENCE, name, NULL);
	plen = snprintf(payload, sizeof(payload), "{\"status\":\"%s\",\"since\":%lld}",
			online ? "online" : "offline", (long long)since);
	if(mosquitto_broker_publish_copy(NULL, topic, plen, payload, 1, true, NULL) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: cannot publish presence of %s", name);
	}
}

/* Delete the retained presence of name (an empty retained message): the
 * account has not connected since the broker started, or was deleted. */
static void clear_presence(const char *name)
{
	char topic[TOPIC_MAX_LEN + 1];

	topic__build(topic, sizeof(topic), TOPIC_PRESENCE, name, NULL);
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

/* ---- entries and their timers ---- */

/* Move u to the FIFO its gate now says, from the one it was in when its
 * gate's due was old_due (none when 0). Call after every gate call that
 * changed gate.due. */
static void requeue(struct presence *p, struct conn_user *u, int64_t old_due)
{
	if(old_due != 0){
		DL_DELETE2(p->timers[u->queued], u, tprev, tnext);
		p->timed--;
	}
	if(u->gate.due != 0){
		u->queued = u->gate.level;
		DL_APPEND2(p->timers[u->queued], u, tprev, tnext);
		p->timed++;
	}
}

/* Free u, which has no connection left. */
static void forget(struct presence *p, struct conn_user *u)
{
	if(u->gate.due != 0){
		DL_DELETE2(p->timers[u->queued], u, tprev, tnext);
		p->timed--;
	}
	if(u->kick_pending) p->kicks_pending--;
	HASH_DELETE(hh, p->users, u);
	free(u);
}

/* Carry out what u's gate decided (its due was old_due before). Returns
 * false if u was freed. */
static bool apply(struct mqchat *m, struct conn_user *u, enum presence_action a, int64_t old_due)
{
	struct presence *p = &m->presence;

	if(u->gate.due != old_due) requeue(p, u, old_due);
	if(a == PRESENCE_FORGET){
		forget(p, u);
		return false;
	}
	if(a == PRESENCE_PUBLISH) publish_presence(u->name, u->gate.online, u->gate.since);
	return true;
}

/* u's real state changed to online (first connection) or offline (last)
 * at wall (ms). */
static void change_at(struct mqchat *m, struct conn_user *u, bool online, int64_t wall)
{
	const int64_t old_due = u->gate.due;
	enum presence_action a;

	a = presence__gate_change(&u->gate, online, m->clock_ms(), wall);
	if(apply(m, u, a, old_due) && u->count == 0 && !u->elsewhere && u->gate.due == 0){
		forget(&m->presence, u);
	}
}

static void change(struct mqchat *m, struct conn_user *u, bool online)
{
	change_at(m, u, online, time__now_ms());
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
	if(u->count == 1 && has_presence(kind)){
		change(m, u, true);
		plugin_bus__presence(m, u->name, true);
	}
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
	if(u->count > 0) return;
	if(u->kick_pending){
		u->kick_pending = false;
		p->kicks_pending--;
	}
	if(!has_presence(u->kind)){
		forget(p, u);
	}else if(snapshot__user(m->snap, u->name, u->len) == NULL){
		/* Deleted (and kicked for it): no "offline" for the next holder
		 * of the name to inherit. */
		clear_presence(u->name);
		forget(p, u);
	}else if(m->bus != NULL){
		/* Offline only if no node has it: the bus says (presence__global). */
		plugin_bus__presence(m, u->name, false);
		if(u->gate.due == 0 && !u->elsewhere) forget(p, u);
	}else{
		change(m, u, false);
	}
}

void presence__global(struct mqchat *m, const char *name, bool online, int64_t since)
{
	struct presence *p = &m->presence;
	const struct snap_user *su;
	struct conn_user *u = NULL;
	size_t len = strlen(name);
	bool oom = false;

	if(len == 0 || len > NAME_MAX_LEN) return;
	/* An account this node does not know (deleted, or not loaded yet)
	 * gets no presence from here. */
	su = snapshot__user(m->snap, name, len);
	if(su == NULL || !has_presence(su->kind)) return;
	HASH_FIND(hh, p->users, name, len, u);
	if(u == NULL){
		u = calloc(1, sizeof(*u));
		if(u == NULL) return;
		memcpy(u->name, name, len);
		u->len = (uint8_t)len;
		u->kind = su->kind;
		HASH_ADD_KEYPTR(hh, p->users, u->name, u->len, u);
		if(oom){
			free(u);
			return;
		}
	}
	u->elsewhere = online;
	/* Connected here: online whatever another node's bus lags behind. */
	if(!online && u->count > 0) return;
	change_at(m, u, online, since);
}

void presence__tick(struct mqchat *m, int64_t now, size_t budget)
{
	struct presence *p = &m->presence;
	struct conn_user *u;
	unsigned level;

	for(level=0; level<PRESENCE_LEVELS; level++){
		while((u = p->timers[level]) != NULL && u->gate.due <= now && budget > 0){
			const int64_t old_due = u->gate.due;

			budget--;
			if(u->count > 0 && snapshot__user(m->snap, u->name, u->len) == NULL){
				/* Deleted while connected: the kick comes, and its
				 * DISCONNECT clears the topic. Nothing to publish. */
				u->gate.due = 0;
				requeue(p, u, old_due);
				continue;
			}
			(void)apply(m, u, presence__gate_fire(&u->gate, now, u->count > 0 || u->elsewhere),
					old_due);
		}
	}
}

void presence__vanished(struct mqchat *m, const struct snapshot *s)
{
	struct presence *p = &m->presence;
	const struct snap_gone *g;
	struct conn_user *u;

	for(g=s->vanished; g; g=g->next){
		if(!has_presence(g->kind)) continue;
		u = NULL;
		HASH_FIND(hh, p->users, g->name, g->len, u);
		/* Connected: kicked, and its last DISCONNECT clears the topic. */
		if(u != NULL && u->count > 0) continue;
		if(u != NULL) forget(p, u);     /* a change that waited: dropped */
		clear_presence(g->name);
	}
}

/* Clear name unless it is connected or its presence was published since
 * the broker started (it has an entry). */
static bool sweep_one(struct presence *p, const char *name, size_t len)
{
	struct conn_user *cu = NULL;

	HASH_FIND(hh, p->users, name, len, cu);
	if(cu != NULL) return false;
	clear_presence(name);
	return true;
}

void presence__sweep(struct mqchat *m, size_t budget)
{
	struct presence *p = &m->presence;
	const struct snap_user *u;
	const struct snap_gone *g;

	if(!p->sweep_active) return;
	/* (Re)start on the current snapshot: a swap mid-sweep starts over. */
	if(!p->sweep_started || p->sweep_snap != m->snap){
		p->sweep_snap = m->snap;
		p->sweep_pos = m->snap ? m->snap->users : NULL;
		p->sweep_retired = m->snap ? m->snap->retired : NULL;
		p->sweep_started = true;
	}
	for(u=p->sweep_pos; u && budget > 0; u=u->next){
		if(!has_presence(u->kind)) continue;
		if(sweep_one(p, u->name, u->len)) budget--;
	}
	p->sweep_pos = u;
	/* Then the names of accounts deleted, maybe while the broker was down
	 * (retired, and no account has them again). */
	for(g=p->sweep_retired; u == NULL && g && budget > 0; g=g->next){
		if(sweep_one(p, g->name, g->len)) budget--;
	}
	if(u == NULL) p->sweep_retired = g;
	if(u == NULL && g == NULL){
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
	unsigned level;

	HASH_FREE_ALL(p->conns, c, ctmp);
	HASH_FREE_ALL(p->registers, c, ctmp);
	HASH_FREE_ALL(p->users, u, utmp);
	for(level=0; level<PRESENCE_LEVELS; level++) p->timers[level] = NULL;
	p->timed = 0;
	p->register_count = 0;
	p->kicks_pending = 0;
}
