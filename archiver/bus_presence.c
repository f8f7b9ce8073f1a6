/* bus_presence.c - presence across nodes, heartbeats and takeover, in the
 * bus process (docs/SCALING.md, "Presence", "The session directory is
 * NATS's interest", "Faults"; records and subjects: common/bus.h).
 *
 * Presence. The plugin writes a record when its count of an account's
 * connections goes between 0 and 1; this bus publishes it on mq.p.<account>
 * and keeps, for every account, the set of nodes where it is online (its
 * own node as bit 0 of a mask). When the set goes between empty and not
 * empty, the account's state over all nodes changed: a BUS_IN_PRESENCE
 * record goes into DATA/inbox, and the plugin publishes the retained
 * chat/presence/<account> with its rate rule.
 *
 * Nodes that go away. Every bus publishes mq.hb.<node> each second with a
 * run number (random per process). A node not heard for 3 s is gone: its
 * accounts leave the sets. A node heard again after that, heard for the
 * first time, or heard with another run (a restarted bus, whose list may
 * differ) is asked for its whole list (mq.pq.<node>); its old entries go
 * first when the run changed. The bus also watches its own broker through
 * its MQTT connection: when that breaks (a broker SIGKILLed: its plugin
 * cannot say anything), every account of this node goes offline on mq.p,
 * while the heartbeat goes on: the node is still there, only its broker is
 * not. When the bus connects to its broker, the plugin
 * writes its whole list into the spool (LIST ... LIST_END: who is not in
 * it goes offline), and this bus puts every account online anywhere into
 * the inbox: a restarted broker's retained presence is right again.
 *
 * Takeover. A CONNECT record (a client id connected here) is published on
 * mq.to.<client id>. A bus that receives one drops its interest of that
 * session (bus.c, drop_session) and, if it held one, tells its plugin
 * (BUS_IN_TAKEOVER), which kicks the client if it is connected and denies
 * READ to that client id until it connects here again.
 *
 * Threads: records and the tick run on the bus's main thread; mq.*
 * messages on libnats's one delivery thread. One mutex guards the state;
 * the inbox has its own (bus.c's on_msg writes it too). drop_session runs
 * on the main thread only, as the interest it changes is the main thread's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "bus.h"
#include "bus_presence.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "rand.h"
#include "spool.h"
#include "timeutil.h"

#define NODES_MAX 64                    /* bits of a user's mask */
#define HEARTBEAT_MS 1000
#define SILENT_MS 3000                  /* a node not heard this long is gone */
#define BROKER_CHECK_MS 1000
#define TOKEN_MAX (CLIENTID_MAX_LEN + 1)
#define PAYLOAD_MAX 256

struct node_state {
	char name[NAME_MAX_LEN + 1];
	uint64_t run;                   /* its bus's run number; 0: not known */
	int64_t heard_ms;               /* mono */
	bool alive;
};

struct user_state {
	char name[NAME_MAX_LEN + 1];
	uint64_t nodes;                 /* bit i: online on nodes[i] */
	int64_t since;                  /* wall ms it went online (anywhere) */
	bool listed;                    /* in the plugin's list being read */
	UT_hash_handle hh;
};

struct moved {
	struct moved *next;
	char client_id[CLIENTID_MAX_LEN + 1];
	char node[NAME_MAX_LEN + 1];
};

struct bus_presence {
	pthread_mutex_t lock;           /* what follows, but the fields set at start */
	natsConnection *nc;
	struct spool *inbox;
	pthread_mutex_t *inbox_lock;
	struct bus_presence_hooks hooks;
	char node[NAME_MAX_LEN + 1];
	char node_token[TOKEN_MAX];
	uint64_t epoch, run;
	natsSubscription *subs[4];
	struct node_state nodes[NODES_MAX];     /* [0]: this node */
	size_t node_n;
	struct user_state *users;
	bool listing;                   /* between the plugin's LIST and LIST_END */
	bool republish;                 /* send the whole list at the next tick */
	struct moved *moved;            /* takeovers for the main thread */
	/* The main thread's. */
	int64_t heartbeat_ms, check_ms, tick_ms;
	bool broker_known, broker_was_up;
	unsigned long broker_gen;
	unsigned long inbox_full;
};

/* A message's payload as a string (libnats's is not promised to end in NUL). */
static bool payload_str(natsMsg *msg, char *out, size_t outlen)
{
	int len = natsMsg_GetDataLength(msg);

	if(len < 0 || (size_t)len >= outlen) return false;
	memcpy(out, natsMsg_GetData(msg), (size_t)len);
	out[len] = '\0';
	return true;
}

static void publish(struct bus_presence *p, const char *subject, const char *data)
{
	natsStatus st = natsConnection_PublishString(p->nc, subject, data);

	if(st != NATS_OK) log_debug("bus: cannot publish on %s: %s", subject, natsStatus_GetText(st));
}

/* ---- the sets (under p->lock) ---- */

/* This node's presence of name on mq.p.<name>. */
static void publish_state(struct bus_presence *p, const char *name, bool online, int64_t since)
{
	char subject[BUS_SUBJECT_MAX], tok[TOKEN_MAX], data[PAYLOAD_MAX];

	if(!bus__token(name, tok, sizeof(tok))) return;
	snprintf(subject, sizeof(subject), "mq.p.%s", tok);
	snprintf(data, sizeof(data), "{\"node\":\"%s\",\"run\":%" PRIu64 ",\"online\":%s,\"since\":%" PRId64 "}",
			p->node, p->run, online ? "true" : "false", since);
	publish(p, subject, data);
}

/* The account's state over all nodes changed: tell the plugin. */
static void to_inbox(struct bus_presence *p, const char *name, bool online, int64_t since)
{
	char data[32];
	int n = snprintf(data, sizeof(data), "%d %" PRId64, online ? 1 : 0, since);
	int rc;

	pthread_mutex_lock(p->inbox_lock);
	rc = spool__append(p->inbox, 0, name, BUS_IN_PRESENCE, data, (size_t)n, NULL, 0, NULL);
	pthread_mutex_unlock(p->inbox_lock);
	if(rc != MQC_OK && p->inbox_full++ % 1000 == 0){
		log_warnx("bus: DATA/inbox has no room: presence of %s not given to the broker (%lu so far)",
				name, p->inbox_full);
	}
	log_debug("bus: %s is %s over all nodes", name, online ? "online" : "offline");
}

/* name online (or not) on node i since (wall ms). True if that changed
 * the node's entry. */
static bool set_online(struct bus_presence *p, const char *name, size_t i, bool online,
		int64_t since)
{
	struct user_state *u = NULL;
	uint64_t bit = (uint64_t)1 << i, before;

	HASH_FIND_STR(p->users, name, u);
	if(u == NULL){
		if(!online) return false;
		u = calloc(1, sizeof(*u));
		if(u == NULL){
			log_warnx("bus: out of memory: presence of %s not kept", name);
			return false;
		}
		snprintf(u->name, sizeof(u->name), "%s", name);
		HASH_ADD_STR(p->users, name, u);
	}
	before = u->nodes;
	u->nodes = online ? before | bit : before & ~bit;
	if(before == 0 && u->nodes != 0){
		u->since = since;
		to_inbox(p, name, true, since);
	}else if(before != 0 && u->nodes == 0){
		to_inbox(p, name, false, since);
	}
	if(u->nodes == 0){
		HASH_DEL(p->users, u);
		free(u);
	}
	return before != (online ? before | bit : before & ~bit);
}

/* Node i's accounts leave the sets (it is gone or restarted). */
static size_t drop_node(struct bus_presence *p, size_t i)
{
	struct user_state *u, *tmp;
	uint64_t bit = (uint64_t)1 << i;
	int64_t now = time__now_ms();
	size_t n = 0;

	HASH_ITER(hh, p->users, u, tmp){
		if(!(u->nodes & bit)) continue;
		n++;
		(void)set_online(p, u->name, i, false, now);   /* may free u */
	}
	return n;
}

/* This node's whole list on mq.p (another node asked, or may have dropped
 * this one). */
static void publish_list(struct bus_presence *p)
{
	struct user_state *u, *tmp;
	size_t n = 0;

	HASH_ITER(hh, p->users, u, tmp){
		if(!(u->nodes & 1)) continue;
		publish_state(p, u->name, true, u->since);
		n++;
	}
	log_debug("bus: presence list sent (%zu accounts)", n);
}

static void ask_list(struct bus_presence *p, const char *node)
{
	char subject[BUS_SUBJECT_MAX], tok[TOKEN_MAX];

	if(!bus__token(node, tok, sizeof(tok))) return;
	snprintf(subject, sizeof(subject), "mq.pq.%s", tok);
	publish(p, subject, "");
}

/* node was heard (a heartbeat or a presence message) with run: its index,
 * or -1 when the table is full. Asks for its list when it is new to this
 * bus, back after being dropped, or restarted. */
static int node_heard(struct bus_presence *p, const char *node, uint64_t run)
{
	struct node_state *s;
	size_t i;

	for(i=1; i<p->node_n; i++){
		if(strcmp(p->nodes[i].name, node) == 0) break;
	}
	if(i == p->node_n){
		if(p->node_n == NODES_MAX){
			log_warnx("bus: more than %d nodes: presence of %s not kept", NODES_MAX, node);
			return -1;
		}
		s = &p->nodes[p->node_n++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", node);
	}
	s = &p->nodes[i];
	if(s->run != run){
		if(s->run != 0){
			log_info("bus: node %s restarted its bus: %zu accounts dropped until its list comes",
					node, drop_node(p, i));
		}
		s->run = run;
		s->alive = false;
	}
	if(!s->alive){
		s->alive = true;
		ask_list(p, node);
	}
	s->heard_ms = time__mono_ms();
	return (int)i;
}

/* ---- from NATS (libnats's delivery thread) ---- */

static void on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bus_presence *p = closure;
	char name[NAME_MAX_LEN + 1], data[PAYLOAD_MAX], node[NAME_MAX_LEN + 1], online[8];
	uint64_t run;
	int64_t since;
	int i;

	(void)nc;
	(void)sub;
	if(!bus__token_name(natsMsg_GetSubject(msg), "mq.p.", name, sizeof(name)) || !names__valid_str(name)
			|| !payload_str(msg, data, sizeof(data))
			|| sscanf(data, "{\"node\":\"%32[^\"]\",\"run\":%" SCNu64 ",\"online\":%7[a-z],\"since\":%" SCNd64 "}",
				node, &run, online, &since) != 4
			|| !names__valid_str(node) || strcmp(node, p->node) == 0){
		log_debug("bus: a presence message not understood on %s", natsMsg_GetSubject(msg));
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_lock(&p->lock);
	i = node_heard(p, node, run);
	if(i > 0 && set_online(p, name, (size_t)i, strcmp(online, "true") == 0, since)){
		log_debug("bus: %s %s on %s", name, strcmp(online, "true") == 0 ? "online" : "offline", node);
	}
	pthread_mutex_unlock(&p->lock);
	natsMsg_Destroy(msg);
}

static void on_heartbeat(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bus_presence *p = closure;
	char node[NAME_MAX_LEN + 1], data[PAYLOAD_MAX];
	uint64_t epoch, seq, run;

	(void)nc;
	(void)sub;
	if(bus__token_name(natsMsg_GetSubject(msg), "mq.hb.", node, sizeof(node)) && names__valid_str(node)
			&& strcmp(node, p->node) != 0 && payload_str(msg, data, sizeof(data))
			&& sscanf(data, "{\"epoch\":%" SCNu64 ",\"spool_seq\":%" SCNu64 ",\"run\":%" SCNu64 "}",
				&epoch, &seq, &run) == 3){
		pthread_mutex_lock(&p->lock);
		(void)node_heard(p, node, run);
		pthread_mutex_unlock(&p->lock);
	}
	natsMsg_Destroy(msg);
}

static void on_query(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bus_presence *p = closure;

	(void)nc;
	(void)sub;
	natsMsg_Destroy(msg);
	pthread_mutex_lock(&p->lock);
	publish_list(p);
	pthread_mutex_unlock(&p->lock);
}

static void on_takeover(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bus_presence *p = closure;
	struct moved *m, **tail;

	(void)nc;
	(void)sub;
	m = calloc(1, sizeof(*m));
	if(m != NULL && bus__token_name(natsMsg_GetSubject(msg), "mq.to.", m->client_id, sizeof(m->client_id))
			&& payload_str(msg, m->node, sizeof(m->node)) && names__valid_str(m->node)
			&& strcmp(m->node, p->node) != 0){
		/* For the main thread, in the order they came. */
		pthread_mutex_lock(&p->lock);
		for(tail=&p->moved; *tail; tail=&(*tail)->next) ;
		*tail = m;
		m = NULL;
		pthread_mutex_unlock(&p->lock);
	}
	free(m);
	natsMsg_Destroy(msg);
}

/* ---- from this node (the main thread) ---- */

void bus_presence__record(struct bus_presence *p, char op, const char *who, int64_t time_ms)
{
	struct user_state *u, *tmp;
	struct moved **m, *gone;
	char subject[BUS_SUBJECT_MAX], tok[TOKEN_MAX];
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	switch(op){
		case BUS_OP_ONLINE:
		case BUS_OP_OFFLINE:
			if(!names__valid_str(who)) break;
			if(set_online(p, who, 0, op == BUS_OP_ONLINE, time_ms)){
				log_debug("bus: %s %s here", who, op == BUS_OP_ONLINE ? "online" : "offline");
				publish_state(p, who, op == BUS_OP_ONLINE, time_ms);
			}
			if(op == BUS_OP_ONLINE && p->listing){
				HASH_FIND_STR(p->users, who, u);
				if(u != NULL) u->listed = true;
			}
			break;
		case BUS_OP_LIST:
			p->listing = true;
			HASH_ITER(hh, p->users, u, tmp) u->listed = false;
			break;
		case BUS_OP_LIST_END:
			if(!p->listing) break;
			p->listing = false;
			/* Online here before, not in the broker's list: gone. */
			HASH_ITER(hh, p->users, u, tmp){
				if(!(u->nodes & 1) || u->listed) continue;
				publish_state(p, u->name, false, time_ms);
				(void)set_online(p, u->name, 0, false, time_ms);
				n++;
			}
			log_info("bus: the broker's list of who is online read (%zu offline since)", n);
			break;
		case BUS_OP_CONNECT:
			/* A takeover from elsewhere not handled yet is older than
			 * this connection: it no longer applies. */
			for(m=&p->moved; *m; ){
				if(strcmp((*m)->client_id, who) == 0){
					gone = *m;
					*m = gone->next;
					free(gone);
				}else{
					m = &(*m)->next;
				}
			}
			if(!bus__token(who, tok, sizeof(tok))) break;
			snprintf(subject, sizeof(subject), "mq.to.%s", tok);
			publish(p, subject, p->node);
			break;
		default:
			break;
	}
	pthread_mutex_unlock(&p->lock);
}

/* Tell the broker: client_id's session here must get nothing. */
static bool takeover_to_inbox(struct bus_presence *p, const char *client_id, const char *node)
{
	int rc;

	pthread_mutex_lock(p->inbox_lock);
	rc = spool__append(p->inbox, 0, client_id, BUS_IN_TAKEOVER, node, strlen(node), NULL, 0, NULL);
	pthread_mutex_unlock(p->inbox_lock);
	if(rc != MQC_OK){
		log_warnx("bus: DATA/inbox has no room: the takeover of %s not given to the broker",
				client_id);
		return false;
	}
	return true;
}

struct again {
	struct bus_presence *p;
	size_t n;
};

/* A broker that (re)started forgot which sessions were taken elsewhere. */
static void takeover_again(void *ctx, const char *client_id)
{
	struct again *a = ctx;

	if(takeover_to_inbox(a->p, client_id, "another node")) a->n++;
}

static void take_over(struct bus_presence *p, const struct moved *m)
{
	if(!p->hooks.drop_session(p->hooks.arg, m->client_id)) return;
	log_info("bus: takeover of %s by %s: its session here gets nothing more", m->client_id, m->node);
	if(!takeover_to_inbox(p, m->client_id, m->node)) return;
	/* The old session must stop before more comes for it. */
	p->hooks.wake(p->hooks.arg);
}

void bus_presence__tick(struct bus_presence *p, uint64_t spool_seq)
{
	struct user_state *u, *tmp;
	struct moved *moved, *next;
	struct again again = {p, 0};
	char subject[BUS_SUBJECT_MAX], data[PAYLOAD_MAX];
	int64_t now = time__mono_ms(), wall;
	unsigned long gen = 0;
	size_t i, n;
	bool up;

	pthread_mutex_lock(&p->lock);
	if(now - p->heartbeat_ms >= HEARTBEAT_MS){
		p->heartbeat_ms = now;
		snprintf(subject, sizeof(subject), "mq.hb.%s", p->node_token);
		snprintf(data, sizeof(data), "{\"epoch\":%" PRIu64 ",\"spool_seq\":%" PRIu64 ",\"run\":%" PRIu64 "}",
				p->epoch, spool_seq, p->run);
		publish(p, subject, data);
	}
	/* This process did not run for a while (stopped, or starved): it
	 * cannot tell who was silent; the other nodes get one more chance. */
	if(now - p->tick_ms >= SILENT_MS){
		for(i=1; i<p->node_n; i++) p->nodes[i].heard_ms = now;
	}
	p->tick_ms = now;
	for(i=1; i<p->node_n; i++){
		if(!p->nodes[i].alive || now - p->nodes[i].heard_ms < SILENT_MS) continue;
		p->nodes[i].alive = false;
		log_info("bus: node %s silent for %d s: %zu accounts dropped", p->nodes[i].name,
				SILENT_MS / 1000, drop_node(p, i));
	}
	if(p->republish){
		p->republish = false;
		publish_list(p);
	}
	moved = p->moved;
	p->moved = NULL;
	pthread_mutex_unlock(&p->lock);

	for(; moved; moved=next){
		next = moved->next;
		take_over(p, moved);
		free(moved);
	}

	if(now - p->check_ms < BROKER_CHECK_MS) return;
	p->check_ms = now;
	up = p->hooks.broker_up(p->hooks.arg, now, &gen);
	pthread_mutex_lock(&p->lock);
	if(p->broker_known && p->broker_was_up && !up){
		/* Its plugin died with it and cannot say so. */
		wall = time__now_ms();
		n = 0;
		HASH_ITER(hh, p->users, u, tmp){
			if(!(u->nodes & 1)) continue;
			publish_state(p, u->name, false, wall);
			(void)set_online(p, u->name, 0, false, wall);
			n++;
		}
		log_warnx("bus: the broker is gone: %zu accounts of this node offline", n);
	}
	if(up && (!p->broker_known || gen != p->broker_gen)){
		/* A broker (maybe restarted, with its retained presence swept):
		 * everyone online anywhere. */
		n = 0;
		HASH_ITER(hh, p->users, u, tmp){
			to_inbox(p, u->name, true, u->since);
			n++;
		}
		p->hooks.each_dropped(p->hooks.arg, takeover_again, &again);
		log_info("bus: connected to the broker: %zu accounts online over all nodes and %zu sessions"
				" taken by other nodes given to it", n, again.n);
		p->broker_gen = gen;
	}
	p->broker_known = true;
	p->broker_was_up = up;
	pthread_mutex_unlock(&p->lock);
}

void bus_presence__reconnected(struct bus_presence *p)
{
	pthread_mutex_lock(&p->lock);
	p->republish = true;
	pthread_mutex_unlock(&p->lock);
}

/* ---- start and stop ---- */

int bus_presence__start(struct bus_presence **out, natsConnection *nc, struct spool *inbox,
		pthread_mutex_t *inbox_lock, const char *node, uint64_t epoch,
		const struct bus_presence_hooks *hooks)
{
	struct bus_presence *p = calloc(1, sizeof(*p));
	char subject[BUS_SUBJECT_MAX];
	natsStatus st = NATS_OK;

	if(p == NULL) return MQC_ERR_NOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->nc = nc;
	p->inbox = inbox;
	p->inbox_lock = inbox_lock;
	p->hooks = *hooks;
	p->epoch = epoch;
	snprintf(p->node, sizeof(p->node), "%s", node);
	snprintf(p->nodes[0].name, sizeof(p->nodes[0].name), "%s", node);
	p->node_n = 1;
	if(!bus__token(node, p->node_token, sizeof(p->node_token))
			|| rand__bytes(&p->run, sizeof(p->run)) != MQC_OK){
		free(p);
		return MQC_ERR_IO;
	}
	if(p->run == 0) p->run = 1;
	p->heartbeat_ms = time__mono_ms() - HEARTBEAT_MS;
	p->check_ms = time__mono_ms() - BROKER_CHECK_MS;
	p->tick_ms = time__mono_ms();
	snprintf(subject, sizeof(subject), "mq.pq.%s", p->node_token);
	st = natsConnection_Subscribe(&p->subs[0], nc, "mq.p.*", on_presence, p);
	if(st == NATS_OK) st = natsConnection_Subscribe(&p->subs[1], nc, "mq.hb.*", on_heartbeat, p);
	if(st == NATS_OK) st = natsConnection_Subscribe(&p->subs[2], nc, "mq.to.*", on_takeover, p);
	if(st == NATS_OK) st = natsConnection_Subscribe(&p->subs[3], nc, subject, on_query, p);
	if(st != NATS_OK){
		log_error("bus: cannot subscribe to presence and heartbeats: %s", natsStatus_GetText(st));
		bus_presence__stop(p);
		return MQC_ERR_IO;
	}
	log_info("bus: presence and heartbeats on (run %" PRIu64 ")", p->run);
	*out = p;
	return MQC_OK;
}

void bus_presence__stop(struct bus_presence *p)
{
	struct user_state *u, *tmp;
	struct moved *m, *next;
	size_t i;

	if(p == NULL) return;
	for(i=0; i<4; i++){
		if(p->subs[i] == NULL) continue;
		natsSubscription_Unsubscribe(p->subs[i]);
		natsSubscription_Destroy(p->subs[i]);
	}
	HASH_ITER(hh, p->users, u, tmp){
		HASH_DEL(p->users, u);
		free(u);
	}
	for(m=p->moved; m; m=next){
		next = m->next;
		free(m);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}
