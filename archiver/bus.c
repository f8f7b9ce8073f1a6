/* bus.c - `mqchat-archiver bus`: one process per node that carries messages
 * between the nodes over NATS (docs/SCALING.md, "The bus"; what it shares
 * with the broker's plugin: common/bus.h).
 *
 * Out (the main thread): read the node's spool (DATA/spool) in the bus's
 * reader slot, which is soft: the broker may write over what the bus has
 * not read, so a bus that is down never stops the node taking messages.
 * FORWARD records are published on their subject with the origin node,
 * spool epoch and seq in headers; INTEREST records change which subjects
 * this node subscribes to, counted per subject, kept in DATA/bus.interest
 * (written whole and renamed into place whenever the spool runs dry after
 * a change), so a restarted bus or broker keeps the interest of sessions
 * that are away. One NATS connection: NATS keeps one publisher's order,
 * so one connection per node keeps a conversation's order across nodes.
 *
 * In (libnats's one delivery thread: natsOptions_UseGlobalMessageDelivery
 * with a pool of one, so messages of every subscription pass one thread in
 * the order they came): drop this node's own messages and any
 * (origin, epoch, seq) already taken (a topic two filters match comes once
 * per subscription), append to DATA/inbox, and when the broker may be
 * asleep wake it with a PINGREQ on an MQTT connection of the bus's own.
 * The broker's loop sleeps in epoll_wait up to 100 ms when idle and runs
 * TICK, which publishes the inbox, at the end of each pass.
 *
 * Presence across nodes, heartbeats and takeover: bus_presence.c, with
 * hooks here (its records in the spool, its tick in the main loop, the
 * broker's connection, a session's interest dropped when its client
 * connected on another node).
 *
 * Replay and resync (what NATS did not deliver while a bus or NATS was
 * down): bus_replay.c; this file calls it where records go out, come in,
 * and where the NATS connection drops. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <uthash.h>

#include "bus.h"
#include "bus_daemon.h"
#include "bus_presence.h"
#include "bus_replay.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "spool.h"
#include "timeutil.h"

#define BUS_SEND_MAX_AGE_MS 60000       /* older records are not sent: their live moment passed */
#define BUS_WAIT_MS 500                 /* the spool wait; also how often a stop is seen */
#define BUS_PING_EVERY_MS 30000         /* PINGREQ for the MQTT connection's keepalive */
#define BUS_MQTT_KEEPALIVE 60
#define BUS_WAKE_AGAIN_MS 20            /* wake again if the inbox stayed non-empty this long */

struct subject_ref {
	char *subject;
	int refs;                       /* (client, filter) pairs that need it */
	natsSubscription *sub;
	UT_hash_handle hh;
};

struct client_filters {
	char *client_id;
	char **filters;
	size_t n, cap;
	bool suspended;                 /* its client is on another node: filters not counted */
	UT_hash_handle hh;
};

struct bus {
	struct config cfg;
	char password[512];
	char client_id[CLIENTID_MAX_LEN + 1];
	char spool_path[4096], inbox_path[4096], interest_path[4096], seen_path[4096];
	uint64_t epoch;                 /* of this node's spool */
	natsConnection *nc;
	struct spool *spool, *inbox;
	uint64_t pos;
	struct subject_ref *subjects;
	struct client_filters *clients;
	char **fresh;                   /* subjects subscribed since the last flush */
	size_t fresh_n, fresh_cap;
	bool dirty;                     /* the interest changed since it was saved */
	struct replay *replay;          /* bus_replay.c */
	/* The delivery thread's (the main thread only reads the counters). */
	int64_t last_wake_ms;
	unsigned long sent, stale, unsendable, received, dups, inbox_full, wakes;
	/* The MQTT connection that wakes the broker; both threads use it. */
	pthread_mutex_t mqtt_lock;
	int mqtt_fd;
	int64_t mqtt_retry_ms, mqtt_ping_ms;
	unsigned long mqtt_connects;
	pthread_mutex_t inbox_lock;     /* inject() and bus_presence.c both append */
	struct bus_presence *presence;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- waking the broker: a minimal MQTT 3.1.1 client ---- */

static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* Connect and log in as the service; the fd or -1 (logged). */
static int mqtt_connect(struct bus *b)
{
	struct addrinfo hints, *ai = NULL, *a;
	unsigned char pkt[1200], hdr[5], ack[4];
	char port[16];
	size_t len, body, h;
	struct pollfd pfd;
	ssize_t got;
	int fd = -1;

	if(strlen(b->client_id) + strlen(b->cfg.user) + strlen(b->password) + 20 > sizeof(pkt)) return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", b->cfg.port);
	if(getaddrinfo(b->cfg.host, port, &hints, &ai) != 0) return -1;
	for(a = ai; a != NULL && fd < 0; a = a->ai_next){
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if(fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0){
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if(fd < 0) return -1;
	/* Variable header: "MQTT", level 4, flags (user, password, clean). */
	len = put_str(pkt, "MQTT");
	pkt[len++] = 4;
	pkt[len++] = 0xC2;
	pkt[len++] = 0;
	pkt[len++] = BUS_MQTT_KEEPALIVE;
	len += put_str(pkt + len, b->client_id);
	len += put_str(pkt + len, b->cfg.user);
	len += put_str(pkt + len, b->password);
	hdr[0] = 0x10;
	for(h = 1, body = len; ; h++){
		hdr[h] = (unsigned char)(body & 0x7f);
		body >>= 7;
		if(body == 0) break;
		hdr[h] |= 0x80;
	}
	h++;
	if(send(fd, hdr, h, MSG_NOSIGNAL) != (ssize_t)h || send(fd, pkt, len, MSG_NOSIGNAL) != (ssize_t)len){
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	if(poll(&pfd, 1, 2000) != 1 || (got = recv(fd, ack, sizeof(ack), MSG_WAITALL)) != 4
			|| ack[0] != 0x20 || ack[3] != 0){
		log_warnx("bus: the broker refused %s's wake-up connection", b->client_id);
		close(fd);
		return -1;
	}
	log_info("bus: wake-up connection to the broker as %s", b->client_id);
	return fd;
}

/* Send a PINGREQ: the broker's loop wakes, answers it, and runs TICK.
 * Under b->mqtt_lock. False if there is no connection (one is tried at
 * most once a second). */
static bool mqtt_ping(struct bus *b, int64_t now)
{
	static const unsigned char ping[2] = {0xC0, 0x00};
	unsigned char buf[256];
	ssize_t n;

	if(b->mqtt_fd < 0){
		if(now < b->mqtt_retry_ms) return false;
		b->mqtt_retry_ms = now + 1000;
		b->mqtt_fd = mqtt_connect(b);
		if(b->mqtt_fd < 0) return false;
		b->mqtt_connects++;
	}
	/* PINGRESPs (and nothing else: it subscribes to nothing) to discard. */
	while((n = recv(b->mqtt_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) ;
	if(n == 0 || send(b->mqtt_fd, ping, sizeof(ping), MSG_NOSIGNAL | MSG_DONTWAIT) != 2){
		close(b->mqtt_fd);
		b->mqtt_fd = -1;
		return false;
	}
	b->mqtt_ping_ms = now;
	return true;
}

/* ---- in: NATS to DATA/inbox ---- */

/* Append a message for the broker to DATA/inbox and wake it if it may
 * sleep. Called by bus_replay.c under its lock (one appender at a time). */
static bool inject(void *ctx, const char *origin, const char *topic, const void *payload,
		size_t len)
{
	struct bus *b = ctx;
	uint64_t used;
	int64_t now;
	int rc;

	pthread_mutex_lock(&b->inbox_lock);     /* bus_presence.c appends too */
	used = spool__used(b->inbox);
	rc = spool__append(b->inbox, 0, origin, topic, payload, len, NULL, 0, NULL);
	pthread_mutex_unlock(&b->inbox_lock);
	if(rc != MQC_OK){
		if(b->inbox_full++ % 1000 == 0){
			log_warnx("bus: DATA/inbox has no room (the broker does not publish it?):"
					" %lu messages from other nodes dropped", b->inbox_full);
		}
		return false;
	}
	/* The broker publishes the inbox at the end of each pass of its loop.
	 * An empty ring means it may sleep (up to 100 ms): wake it. One that
	 * stays non-empty gets woken again now and then, in case the broker
	 * read it just before this append. */
	now = time__mono_ms();
	if(b->cfg.wake && (used == 0 || now - b->last_wake_ms >= BUS_WAKE_AGAIN_MS)){
		pthread_mutex_lock(&b->mqtt_lock);
		if(mqtt_ping(b, now)) b->wakes++;
		pthread_mutex_unlock(&b->mqtt_lock);
		b->last_wake_ms = now;
	}
	return true;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bus *b = closure;
	char topic[BUS_SUBJECT_MAX];
	const char *origin = NULL, *epoch_s = NULL, *seq_s = NULL;

	(void)nc;
	(void)sub;
	b->received++;
	if(!bus__topic(natsMsg_GetSubject(msg), topic, sizeof(topic))
			|| natsMsgHeader_Get(msg, BUS_ORIGIN_HEADER, &origin) != NATS_OK
			|| natsMsgHeader_Get(msg, BUS_EPOCH_HEADER, &epoch_s) != NATS_OK
			|| natsMsgHeader_Get(msg, BUS_SEQ_HEADER, &seq_s) != NATS_OK
			|| !names__valid_str(origin)){
		b->unsendable++;
		goto done;
	}
	/* Repeats dropped, live messages held while a replay is awaited. */
	if(strcmp(origin, b->cfg.node) == 0
			|| !replay__take(b->replay, origin, strtoull(epoch_s, NULL, 10),
				strtoull(seq_s, NULL, 10), topic, natsMsg_GetData(msg),
				(size_t)natsMsg_GetDataLength(msg))){
		b->dups++;
	}
done:
	natsMsg_Destroy(msg);
}

/* ---- interest ---- */

static void subject_ref(struct bus *b, const char *subject)
{
	struct subject_ref *s;
	natsStatus st;
	char **grown;

	HASH_FIND_STR(b->subjects, subject, s);
	if(s == NULL){
		s = calloc(1, sizeof(*s));
		if(s == NULL || (s->subject = strdup(subject)) == NULL) fatal("out of memory");
		HASH_ADD_KEYPTR(hh, b->subjects, s->subject, strlen(s->subject), s);
	}
	if(s->refs++ > 0) return;
	st = natsConnection_Subscribe(&s->sub, b->nc, subject, on_msg, b);
	if(st != NATS_OK){
		log_error("bus: cannot subscribe to %s: %s", subject, natsStatus_GetText(st));
		s->sub = NULL;
		return;
	}
	if(b->fresh_n == b->fresh_cap){
		b->fresh_cap = b->fresh_cap ? b->fresh_cap * 2 : 16;
		grown = realloc(b->fresh, b->fresh_cap * sizeof(*grown));
		if(grown == NULL) fatal("out of memory");
		b->fresh = grown;
	}
	b->fresh[b->fresh_n] = strdup(subject);
	if(b->fresh[b->fresh_n] == NULL) fatal("out of memory");
	b->fresh_n++;
}

static void subject_unref(struct bus *b, const char *subject)
{
	struct subject_ref *s;

	HASH_FIND_STR(b->subjects, subject, s);
	if(s == NULL || --s->refs > 0) return;
	if(s->sub != NULL){
		natsSubscription_Unsubscribe(s->sub);
		natsSubscription_Destroy(s->sub);
	}
	log_debug("bus: unsubscribed %s", s->subject);
	HASH_DEL(b->subjects, s);
	free(s->subject);
	free(s);
}

static void filter_refs(struct bus *b, const char *filter, bool add)
{
	char subjects[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	size_t i, n = bus__filter_subjects(filter, subjects);

	for(i=0; i<n; i++){
		if(add) subject_ref(b, subjects[i]);
		else subject_unref(b, subjects[i]);
	}
}

/* One change of a session's filters (op BUS_OP_*). Idempotent: the spool
 * is read again from the last saved position after a restart. */
static void interest_apply(struct bus *b, const char *client_id, const char *filter, char op)
{
	char subjects[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	struct client_filters *c;
	char **grown;
	size_t i;

	HASH_FIND_STR(b->clients, client_id, c);
	if(op == BUS_OP_SUBSCRIBE){
		if(bus__filter_subjects(filter, subjects) == 0) return;
		if(c == NULL){
			c = calloc(1, sizeof(*c));
			if(c == NULL || (c->client_id = strdup(client_id)) == NULL) fatal("out of memory");
			HASH_ADD_KEYPTR(hh, b->clients, c->client_id, strlen(c->client_id), c);
		}
		for(i=0; i<c->n; i++){
			if(strcmp(c->filters[i], filter) == 0) return;
		}
		if(c->n == c->cap){
			c->cap = c->cap ? c->cap * 2 : 4;
			grown = realloc(c->filters, c->cap * sizeof(*grown));
			if(grown == NULL) fatal("out of memory");
			c->filters = grown;
		}
		c->filters[c->n] = strdup(filter);
		if(c->filters[c->n] == NULL) fatal("out of memory");
		c->n++;
		if(!c->suspended) filter_refs(b, filter, true);
		b->dirty = true;
		return;
	}
	if(c == NULL) return;
	for(i=0; i<c->n; ){
		if(op == BUS_OP_GONE || strcmp(c->filters[i], filter) == 0){
			if(!c->suspended) filter_refs(b, c->filters[i], false);
			free(c->filters[i]);
			c->filters[i] = c->filters[--c->n];
			b->dirty = true;
			continue;
		}
		i++;
	}
	if(c->n == 0){
		HASH_DEL(b->clients, c);
		free(c->filters);
		free(c->client_id);
		free(c);
	}
}

/* client_id connected on another node (bus_presence.c): its session here
 * stops counting until it connects here again. The file keeps its filters:
 * a restarted bus counts them again (that session then gets messages
 * until the client comes back and syncs; not yet kept across restarts). */
static bool interest_suspend(void *arg, const char *client_id)
{
	struct bus *b = arg;
	struct client_filters *c;
	size_t i;

	HASH_FIND_STR(b->clients, client_id, c);
	if(c == NULL || c->suspended) return false;
	for(i=0; i<c->n; i++) filter_refs(b, c->filters[i], false);
	c->suspended = true;
	return true;
}

static void each_suspended(void *arg, void (*fn)(void *ctx, const char *client_id), void *ctx)
{
	struct bus *b = arg;
	struct client_filters *c, *tmp;

	HASH_ITER(hh, b->clients, c, tmp){
		if(c->suspended) fn(ctx, c->client_id);
	}
}

/* client_id connected here: its session's filters count again. */
static void interest_resume(struct bus *b, const char *client_id)
{
	struct client_filters *c;
	size_t i;

	HASH_FIND_STR(b->clients, client_id, c);
	if(c == NULL || !c->suspended) return;
	c->suspended = false;
	for(i=0; i<c->n; i++) filter_refs(b, c->filters[i], true);
	log_info("bus: %s is back on this node: its session's interest counts again", client_id);
}

/* For bus_replay.c's notices: every client id with a session here. */
static void each_client(void *ctx, void (*fn)(void *arg, const char *client_id), void *arg)
{
	struct bus *b = ctx;
	struct client_filters *c, *tmp;

	HASH_ITER(hh, b->clients, c, tmp) fn(arg, c->client_id);
}

/* DATA/bus.interest: "client id TAB filter" lines, replaced whole. */
static int interest_save(struct bus *b)
{
	struct client_filters *c, *tmp;
	char path[4200];
	FILE *f;
	size_t i;
	int ok;

	snprintf(path, sizeof(path), "%s.tmp", b->interest_path);
	f = fopen(path, "w");
	if(f == NULL){
		log_warn("bus: cannot write %s", path);
		return MQC_ERR_IO;
	}
	HASH_ITER(hh, b->clients, c, tmp){
		for(i=0; i<c->n; i++) fprintf(f, "%s\t%s\n", c->client_id, c->filters[i]);
	}
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if(!ok || rename(path, b->interest_path) != 0){
		log_warn("bus: cannot write %s", b->interest_path);
		unlink(path);
		return MQC_ERR_IO;
	}
	b->dirty = false;
	return MQC_OK;
}

static int interest_load(struct bus *b)
{
	char line[8192], *tab, *nl;
	FILE *f = fopen(b->interest_path, "r");
	size_t n = 0;

	if(f == NULL){
		if(errno == ENOENT){
			log_info("bus: 0 filters of sessions from %s (none yet)", b->interest_path);
			return MQC_OK;
		}
		log_error("bus: cannot read %s: %s", b->interest_path, strerror(errno));
		return MQC_ERR_IO;
	}
	while(fgets(line, sizeof(line), f) != NULL){
		nl = strchr(line, '\n');
		tab = strchr(line, '\t');
		if(nl == NULL || tab == NULL){
			log_warnx("bus: %s: a line that is not \"client<TAB>filter\" skipped", b->interest_path);
			continue;
		}
		*nl = '\0';
		*tab = '\0';
		interest_apply(b, line, tab + 1, BUS_OP_SUBSCRIBE);
		n++;
	}
	fclose(f);
	log_info("bus: %zu filters of sessions from %s", n, b->interest_path);
	return MQC_OK;
}

/* The spool ran dry: make the new subscriptions known to the server (a
 * round trip: what is published after this reaches them), say so, save. */
static void settle(struct bus *b)
{
	natsStatus st;
	size_t i;

	if(b->fresh_n > 0){
		st = natsConnection_FlushTimeout(b->nc, 2000);
		for(i=0; i<b->fresh_n; i++){
			if(st == NATS_OK) log_debug("bus: subscribed %s", b->fresh[i]);
			free(b->fresh[i]);
		}
		if(st != NATS_OK){
			/* libnats sends them when it is connected again. */
			log_warnx("bus: %zu new subscriptions not confirmed: %s", b->fresh_n,
					natsStatus_GetText(st));
		}
		b->fresh_n = 0;
	}
	if(b->dirty) interest_save(b);
}

/* ---- out: the spool to NATS ---- */

/* The bus's slot is soft: the broker may have written over the record at
 * p while the bus read it. Asked after copying what the bus needs of it:
 * false means the copy may be torn and must not be used. */
static bool intact(const struct bus *b, uint64_t p)
{
	return spool__write_position(b->spool) - p <= spool__ring_size(b->spool);
}

/* Publish the FORWARD record at p; false if it was written over meanwhile. */
static bool send_record(struct bus *b, const struct spool_rec *rec, uint64_t p, int64_t now_ms)
{
	char subject[BUS_SUBJECT_MAX], num[24];
	natsMsg *msg = NULL;
	natsStatus st;

	if(!bus__subject(rec->topic, subject, sizeof(subject))){
		b->unsendable++;
		return intact(b, p);
	}
	if(now_ms - rec->time_ms > BUS_SEND_MAX_AGE_MS){
		b->stale++;
		replay__lost(b->replay);
		return intact(b, p);
	}
	st = natsMsg_Create(&msg, subject, NULL, (const char *)rec->payload, (int)rec->len);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_ORIGIN_HEADER, b->cfg.node);
	snprintf(num, sizeof(num), "%" PRIu64, b->epoch);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_EPOCH_HEADER, num);
	snprintf(num, sizeof(num), "%" PRIu64, rec->seq);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_SEQ_HEADER, num);
	/* natsMsg_Create copied the payload: check before it goes out. */
	if(!intact(b, p)){
		natsMsg_Destroy(msg);
		return false;
	}
	if(st == NATS_OK) st = natsConnection_PublishMsg(b->nc, msg);
	natsMsg_Destroy(msg);
	if(st == NATS_OK){
		b->sent++;
		replay__keep(b->replay, subject, rec->seq, rec->time_ms, rec->payload, rec->len);
	}else if(b->unsendable++ % 1000 == 0){
		log_warnx("bus: cannot publish on %s: %s (%lu not sent so far)", subject,
				natsStatus_GetText(st), b->unsendable);
	}
	return true;
}

/* Apply the interest record at p; false if it was written over meanwhile. */
static bool take_interest(struct bus *b, const struct spool_rec *rec, uint64_t p)
{
	char *client = strdup(rec->client_id), *filter = strdup(rec->topic);
	char op = (char)rec->payload[0];
	bool ok;

	if(client == NULL || filter == NULL) fatal("out of memory");
	ok = intact(b, p);
	if(ok) interest_apply(b, client, filter, op);
	free(client);
	free(filter);
	return ok;
}

/* A presence or connect record (common/bus.h); false if it was written
 * over meanwhile. */
static bool take_presence(struct bus *b, const struct spool_rec *rec, uint64_t p)
{
	char who[CLIENTID_MAX_LEN + 1];
	char op = (char)rec->payload[0];
	bool connect = strcmp(rec->topic, BUS_CONNECT_TOPIC) == 0;
	bool known = connect || strcmp(rec->topic, BUS_PRESENCE_TOPIC) == 0;
	int64_t time_ms = rec->time_ms;

	snprintf(who, sizeof(who), "%s", rec->client_id);
	if(!intact(b, p)) return false;
	if(!known) return true;
	if(connect && op == BUS_OP_CONNECT) interest_resume(b, who);
	bus_presence__record(b->presence, op, who, time_ms);
	return true;
}

/* Hooks of bus_presence.c: the broker is there if the MQTT connection is. */
static bool broker_up(void *arg, int64_t now, unsigned long *gen)
{
	struct bus *b = arg;
	bool up;

	pthread_mutex_lock(&b->mqtt_lock);
	up = mqtt_ping(b, now);
	*gen = b->mqtt_connects;
	pthread_mutex_unlock(&b->mqtt_lock);
	return up;
}

static void broker_wake(void *arg)
{
	struct bus *b = arg;

	pthread_mutex_lock(&b->mqtt_lock);
	if(mqtt_ping(b, time__mono_ms())) b->wakes++;
	pthread_mutex_unlock(&b->mqtt_lock);
}

/* The spool's time_ms is the wall clock. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void out_loop(struct bus *b)
{
	struct spool_rec rec;
	int64_t now, report = time__mono_ms() + 10000;
	unsigned n = 0;
	bool ok;
	int rc;

	b->pos = spool__position(b->spool, SPOOL_READER_BUS);
	while(!stop_flag){
		rc = spool__read(b->spool, &b->pos, &rec);
		if(rc == MQC_ERR_AGAIN || n >= 1024){
			settle(b);
			replay__tick(b->replay);
			spool__consume(b->spool, SPOOL_READER_BUS, b->pos);
			n = 0;
			now = time__mono_ms();
			if(now - b->mqtt_ping_ms >= BUS_PING_EVERY_MS){
				pthread_mutex_lock(&b->mqtt_lock);
				(void)mqtt_ping(b, now);
				pthread_mutex_unlock(&b->mqtt_lock);
			}
			bus_presence__tick(b->presence, spool__next_seq(b->spool) - 1);
			if(now >= report){
				report = now + 60000;
				log_info("bus: sent %lu (%lu too old, %lu not sendable), received %lu"
						" (%lu own or repeated), inbox full %lu, wake-ups %lu, %u subjects",
						b->sent, b->stale, b->unsendable, b->received, b->dups, b->inbox_full,
						b->wakes, HASH_COUNT(b->subjects));
				replay__report(b->replay);
			}
			/* A reconnect to act on (replay__tick asks for the gap): soon. */
			if(rc == MQC_ERR_AGAIN){
				(void)spool__wait(b->spool, SPOOL_READER_BUS, b->pos,
						replay__may_send(b->replay) ? BUS_WAIT_MS : 20);
			}
			continue;
		}
		if(rc != MQC_OK){
			/* The bus's slot is soft: the broker wrote over what it had not
			 * read (a bus long down), or the bytes are bad. Go on from the
			 * newest: what was lost is in the archive (apps sync). */
			log_warnx("bus: the spool at %" PRIu64 " is gone or unreadable: going on from %" PRIu64
					" (messages in between not sent, interest changes in between missed)",
					b->pos, spool__write_position(b->spool));
			b->pos = spool__write_position(b->spool);
			replay__lost(b->replay);
			continue;
		}
		if((rec.flags & SPOOL_F_FORWARD) && !replay__may_send(b->replay)){
			/* NATS is away (or just back and the replay not yet asked for):
			 * hold this record rather than leave it to libnats's reconnect
			 * buffer, which goes out before the others subscribe again. */
			settle(b);
			replay__tick(b->replay);
			usleep(20000);
			continue;
		}
		n++;
		ok = true;
		if(rec.flags & SPOOL_F_FORWARD){
			ok = send_record(b, &rec, b->pos, wall_ms());
		}else if(rec.flags == BUS_F_INTEREST && rec.len == 1 && rec.topic[0] == '$'){
			ok = take_presence(b, &rec, b->pos);
		}else if(rec.flags == BUS_F_INTEREST && rec.len == 1){
			ok = take_interest(b, &rec, b->pos);
		}
		if(!ok){
			log_warnx("bus: the broker wrote over the spool at %" PRIu64 " while it was read:"
					" going on from %" PRIu64, b->pos, spool__write_position(b->spool));
			b->pos = spool__write_position(b->spool);
			replay__lost(b->replay);
			continue;
		}
		b->pos = rec.end;
	}
}

/* ---- start and stop ---- */

/* Open a ring the broker makes, waiting for it (bounded by a stop). */
static int open_made_by_broker(const char *path, int flags, struct spool **out)
{
	struct spool *s = NULL;
	char err[512];
	bool said = false;
	size_t mb;
	int rc;

	while(!stop_flag){
		rc = spool__open(path, 0, 0, &s, err, sizeof(err));
		if(rc == MQC_OK) break;
		if(rc != MQC_ERR_NOTFOUND){
			log_error("bus: %s", err);
			return rc;
		}
		if(!said){
			log_info("bus: waiting for the broker to make %s", path);
			said = true;
		}
		usleep(100000);
	}
	if(stop_flag) return MQC_ERR_INVAL;
	if(!(flags & SPOOL_OPEN_WRITER)){
		*out = s;
		return MQC_OK;
	}
	/* The writer names the size: the one the broker gave it. */
	mb = (size_t)(spool__ring_size(s) >> 20);
	spool__close(s);
	rc = spool__open(path, mb, flags, out, err, sizeof(err));
	if(rc != MQC_OK) log_error("bus: %s%s", err, rc == MQC_ERR_BUSY ? " (another bus runs here)" : "");
	return rc;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct bus *b = closure;

	(void)nc;
	replay__disconnected(b->replay);
	log_warnx("bus: NATS connection lost; reconnecting (what is published meanwhile is"
			" buffered up to libnats's limit)");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct bus *b = closure;
	char url[256];

	if(natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK) url[0] = '\0';
	log_info("bus: NATS connected again (%s)", url);
	if(b->presence != NULL) bus_presence__reconnected(b->presence);
}

static int nats_start(struct bus *b)
{
	natsOptions *opts = NULL;
	natsStatus st;
	char name[128];

	st = nats_Open(-1);
	/* One delivery thread for all subscriptions: one order, one inbox writer. */
	if(st == NATS_OK) st = nats_SetMessageDeliveryPoolSize(1);
	if(st == NATS_OK) st = natsOptions_Create(&opts);
	if(st == NATS_OK) st = natsOptions_SetServers(opts, (const char *[]){b->cfg.nats}, 1);
	snprintf(name, sizeof(name), "mqchat-bus %s", b->cfg.node);
	if(st == NATS_OK) st = natsOptions_SetName(opts, name);
	/* Its own messages would come back on its own subscriptions. */
	if(st == NATS_OK) st = natsOptions_SetNoEcho(opts, true);
	if(st == NATS_OK) st = natsOptions_UseGlobalMessageDelivery(opts, true);
	if(st == NATS_OK) st = natsOptions_SetMaxReconnect(opts, -1);
	if(st == NATS_OK) st = natsOptions_SetReconnectWait(opts, 250);
	if(st == NATS_OK) st = natsOptions_SetRetryOnFailedConnect(opts, true, NULL, NULL);
	if(st == NATS_OK) st = natsOptions_SetDisconnectedCB(opts, on_disconnected, b);
	if(st == NATS_OK) st = natsOptions_SetReconnectedCB(opts, on_reconnected, b);
	if(st == NATS_OK){
		st = natsConnection_Connect(&b->nc, opts);
		if(st == NATS_NOT_YET_CONNECTED){
			log_warnx("bus: NATS at %s not reachable yet; trying on", b->cfg.nats);
			st = NATS_OK;
		}else if(st == NATS_OK){
			log_info("bus: NATS connected (%s)", b->cfg.nats);
		}
	}
	natsOptions_Destroy(opts);
	if(st != NATS_OK){
		log_error("bus: NATS at %s: %s", b->cfg.nats, natsStatus_GetText(st));
		return MQC_ERR_IO;
	}
	return MQC_OK;
}

static bool data_file(const struct bus *b, const char *name, char *out, size_t outlen)
{
	size_t len = strlen(b->cfg.datadir);
	int n = snprintf(out, outlen, "%s%s%s", b->cfg.datadir,
			len && b->cfg.datadir[len - 1] == '/' ? "" : "/", name);

	return n > 0 && (size_t)n < outlen;
}

int bus__main(const char *datadir, int argc, char **argv)
{
	static struct bus bb;
	struct bus *b = &bb;
	struct client_filters *c, *ctmp;
	struct subject_ref *s, *stmp;
	struct sigaction sa;
	char err[1024];
	int rc, status = 1;
	size_t i;

	memset(b, 0, sizeof(*b));
	b->mqtt_fd = -1;
	pthread_mutex_init(&b->mqtt_lock, NULL);
	pthread_mutex_init(&b->inbox_lock, NULL);
	if(config__defaults(&b->cfg, datadir) != MQC_OK){
		fprintf(stderr, "Error: out of memory\n");
		goto done;
	}
	rc = config__parse_args(&b->cfg, argc, argv, err, sizeof(err));
	if(rc == MQC_OK && (b->cfg.node == NULL || b->cfg.nats == NULL)){
		snprintf(err, sizeof(err), "the bus needs `node` and `nats` (--node, --nats)");
		rc = MQC_ERR_INVAL;
	}
	if(rc == MQC_OK && !names__valid_str(b->cfg.node)){
		snprintf(err, sizeof(err), "node \"%s\": a name of a-z 0-9 . _ - (up to %d, a letter first)",
				b->cfg.node, NAME_MAX_LEN);
		rc = MQC_ERR_INVAL;
	}
	if(rc != MQC_OK){
		if(strcmp(err, "help") == 0){
			printf("usage: mqchat-archiver [--data DIR] %s\n", BUS_USAGE);
			status = 0;
		}else{
			fprintf(stderr, "Error: %s\nusage: mqchat-archiver [--data DIR] %s\n", err, BUS_USAGE);
			status = rc == MQC_ERR_IO ? 1 : 2;
		}
		goto done;
	}
	log_init("mqchat-archiver bus", LOG_LVL_INFO + b->cfg.verbose);
	if(b->cfg.log && log_open(b->cfg.log) != 0){
		fprintf(stderr, "Error: cannot open log %s: %s\n", b->cfg.log, strerror(errno));
		goto done;
	}
	if(!data_file(b, SPOOL_FILE, b->spool_path, sizeof(b->spool_path))
			|| !data_file(b, BUS_INBOX_FILE, b->inbox_path, sizeof(b->inbox_path))
			|| !data_file(b, BUS_INTEREST_FILE, b->interest_path, sizeof(b->interest_path))
			|| !data_file(b, REPLAY_SEEN_FILE, b->seen_path, sizeof(b->seen_path))){
		log_error("bus: data folder path too long");
		goto done;
	}
	if(config__read_password(&b->cfg, b->password, sizeof(b->password), err, sizeof(err)) != MQC_OK){
		log_error("bus: cannot read the service password: %s", err);
		goto done;
	}
	/* <service>@bus-<node>: the plugin takes <username>@<device>. */
	if(snprintf(b->client_id, sizeof(b->client_id), "%s@bus-%s", b->cfg.user, b->cfg.node)
			>= (int)sizeof(b->client_id)){
		log_error("bus: the client id %s@bus-%s is too long", b->cfg.user, b->cfg.node);
		goto done;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The inbox's writer lock first: one bus per node. */
	if(open_made_by_broker(b->inbox_path, SPOOL_OPEN_WRITER, &b->inbox) != MQC_OK) goto done;
	if(open_made_by_broker(b->spool_path, 0, &b->spool) != MQC_OK) goto done;
	b->epoch = spool__epoch(b->spool);
	if(replay__open(&b->replay, b->seen_path, b->cfg.node, b->cfg.user,
				&(struct replay_hooks){inject, each_client, b}) != MQC_OK) goto done;
	if(nats_start(b) != MQC_OK) goto done;
	if(replay__start(b->replay, b->nc, b->epoch,
				spool__position(b->spool, SPOOL_READER_BUS) == 0) != MQC_OK) goto done;
	if(interest_load(b) != MQC_OK) goto done;
	if(bus_presence__start(&b->presence, b->nc, b->inbox, &b->inbox_lock, b->cfg.node, b->epoch,
				&(struct bus_presence_hooks){b, broker_up, interest_suspend, broker_wake, each_suspended}) != MQC_OK){
		goto done;
	}
	log_info("bus: node %s, spool from %" PRIu64 ", NATS %s", b->cfg.node,
			spool__position(b->spool, SPOOL_READER_BUS), b->cfg.nats);
	out_loop(b);
	settle(b);
	spool__consume(b->spool, SPOOL_READER_BUS, b->pos);
	log_info("bus: stopping: sent %lu, received %lu", b->sent, b->received);
	status = 0;
done:
	bus_presence__stop(b->presence);
	b->presence = NULL;
	if(b->nc != NULL){
		natsConnection_Destroy(b->nc);
		b->nc = NULL;
	}
	HASH_ITER(hh, b->subjects, s, stmp){
		HASH_DEL(b->subjects, s);
		natsSubscription_Destroy(s->sub);
		free(s->subject);
		free(s);
	}
	HASH_ITER(hh, b->clients, c, ctmp){
		HASH_DEL(b->clients, c);
		for(i=0; i<c->n; i++) free(c->filters[i]);
		free(c->filters);
		free(c->client_id);
		free(c);
	}
	for(i=0; i<b->fresh_n; i++) free(b->fresh[i]);
	free(b->fresh);
	nats_Close();
	replay__close(b->replay);        /* after libnats's threads: they call it */
	if(b->mqtt_fd >= 0) close(b->mqtt_fd);
	spool__close(b->spool);
	spool__close(b->inbox);
	config__cleanup(&b->cfg);
	return status;
}
