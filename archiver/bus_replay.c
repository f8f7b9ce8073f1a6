/* bus_replay.c - the bus's replay window and resync (bus_replay.h).
 *
 * Out: every record the bus publishes is copied into the window (a FIFO of
 * REPLAY_WINDOW_MS, at most REPLAY_WINDOW_BYTES; the oldest go first). While
 * NATS is away the out loop holds its next FORWARD record (replay__may_send)
 * instead of handing it to libnats's reconnect buffer, which may be lost or
 * flushed before the other nodes have subscribed again.
 *
 * Asking: a bus that lost NATS (or starts) holds what other nodes send
 * live from that moment ("recovering"), and once connected publishes
 * mq.ctl.resync {node, since: when it lost NATS, 1 s earlier; nonce}. Every
 * other bus answers on mq.rp.<node> with its window's records published
 * since then, in its order, then an end mark saying whether its window
 * reached back that far. The asker injects the replay (dropping what it
 * took already: the highest seq taken per origin and spool epoch, which
 * is enough because one origin's records come in its order), then what it
 * held of that origin (all repeats, unless newer). Holding is what keeps
 * one sender's messages whole and in order: without it a live message that
 * passes NATS after the asker's SUB but before the answer raises the last
 * seq taken past the older ones of the replay, which are then dropped as
 * repeats (lost, in the NATS restart test). An origin that does not answer within REPLAY_ANSWER_MS (down,
 * or connected after the request: it asks in turn, and is then asked
 * again) has its held messages injected anyway.
 *
 * The last seq taken per origin is in DATA/bus.seen, a small file mapped
 * shared: updated in memory with each message taken, it survives a killed
 * bus in the page cache, so a restarted bus asks for exactly what it
 * missed (since the last moment it was known to be receiving, also kept
 * there). Without the file, with a gap longer than the window, with an
 * answer whose window did not reach back (a restarted sender), when another
 * node says it lost records before they went out (Mq-Lost: written over in
 * its spool, or too old), or when a message does not fit in DATA/inbox or
 * in what may be held, the node cannot tell who missed what: it sends every
 * local person a resync notice, at most once per REPLAY_NOTICE_EVERY_MS. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "bus.h"
#include "bus_replay.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "rand.h"
#include "timeutil.h"
#include "topic.h"

#define REPLAY_ANSWER_MS 5000           /* how long a receiver waits for an origin's replay */
#define REPLAY_HELD_BYTES (16u << 20)   /* what a receiver holds meanwhile, at most */
#define REPLAY_MARGIN_MS 1000           /* asked from this long before the loss */
#define REPLAY_REQUESTS_MAX 64
#define SEEN_MAGIC "MQCSEEN1"
#define SEEN_ORIGINS 256
#define SEEN_NODE_LEN 48

struct seen_origin {
	char node[SEEN_NODE_LEN];
	uint64_t epoch, seq;            /* the highest seq taken of that spool */
};

/* DATA/bus.seen, mapped. */
struct seen_file {
	char magic[8];
	uint32_t count, pad;
	int64_t alive_ms;               /* wall clock: last moment known receiving */
	uint64_t reserved[5];
	struct seen_origin o[SEEN_ORIGINS];
};

struct kept {
	int64_t time_ms;                /* wall clock when published */
	uint64_t seq;
	size_t len;
	char *subject;
	unsigned char payload[];
};

struct held {
	struct held *next;
	uint64_t epoch, seq;
	size_t len;
	char *topic;
	unsigned char payload[];
};

struct origin_state {
	struct held *head, *tail;       /* live messages held while recovering */
	bool answered;                  /* its replay's end mark came */
};

struct request {
	char node[SEEN_NODE_LEN];
	int64_t since;
	uint64_t nonce;
};

struct client_user {
	char *user;
	UT_hash_handle hh;
};

struct replay {
	pthread_mutex_t lock;
	char node[SEEN_NODE_LEN];
	char service_user[128];
	char rp_subject[BUS_SUBJECT_MAX];
	struct replay_hooks hooks;
	natsConnection *nc;
	uint64_t epoch;
	natsSubscription *ctl_sub, *rp_sub;
	struct seen_file *seen;
	/* The window (main thread). */
	struct kept **win;
	size_t win_head, win_n, win_cap, win_bytes;
	int64_t complete_from;          /* wall ms: the window holds all published since */
	/* Under lock. */
	atomic_bool ask_due;            /* publish a resync request at the next tick */
	bool lost_due;                  /* (main thread) tell the others records were lost */
	int64_t since;                  /* ... for what was published since (wall ms) */
	uint64_t nonce;
	bool ask_fresh;                 /* the next request is a new one (a new nonce) */
	char ask_only[SEEN_NODE_LEN];   /* asked again: of that node only; "": of everyone */
	bool recovering;                /* holding live messages */
	bool blind;                     /* this request's asker knows it missed an unknown
	                                 * part: notices are sent already */
	int64_t answer_deadline;        /* mono ms; INT64_MAX until the request is out */
	struct origin_state origins[SEEN_ORIGINS];
	size_t held_bytes;
	bool notice_due;
	struct request reqs[REPLAY_REQUESTS_MAX];
	size_t req_n;
	/* Main thread. */
	int64_t last_notice;
	unsigned long replayed, held_n, notices, answered_n;
	atomic_ulong refused;           /* control messages not understood */
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A node name as a NATS token ('.' is '~', as in bus.c). */
static void node_token(const char *node, char *out, size_t outlen)
{
	size_t i;

	for(i=0; node[i] != '\0' && i + 1 < outlen; i++) out[i] = node[i] == '.' ? '~' : node[i];
	out[i] = '\0';
}

/* ---- DATA/bus.seen ---- */

static int seen_map(struct replay *r, const char *path, bool *had)
{
	struct seen_file *m;
	off_t size;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0){
		log_error("bus: cannot open %s: %s", path, strerror(errno));
		return MQC_ERR_IO;
	}
	/* Another size: not a file this version wrote; start it again. */
	size = lseek(fd, 0, SEEK_END);
	if(size != (off_t)sizeof(struct seen_file) && ftruncate(fd, 0) != 0){
		close(fd);
		return MQC_ERR_IO;
	}
	if(ftruncate(fd, sizeof(struct seen_file)) != 0){
		log_error("bus: cannot size %s: %s", path, strerror(errno));
		close(fd);
		return MQC_ERR_IO;
	}
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if(m == MAP_FAILED){
		log_error("bus: cannot map %s: %s", path, strerror(errno));
		return MQC_ERR_IO;
	}
	*had = memcmp(m->magic, SEEN_MAGIC, 8) == 0 && m->count <= SEEN_ORIGINS;
	if(!*had){
		memset(m, 0, sizeof(*m));
		memcpy(m->magic, SEEN_MAGIC, 8);
	}
	r->seen = m;
	return MQC_OK;
}

/* The origin's index, made if new; -1 when the table is full. Under lock. */
static int origin_index(struct replay *r, const char *node)
{
	struct seen_file *s = r->seen;
	uint32_t i;

	for(i=0; i<s->count; i++){
		if(strcmp(s->o[i].node, node) == 0) return (int)i;
	}
	if(s->count == SEEN_ORIGINS || strlen(node) >= SEEN_NODE_LEN) return -1;
	memset(&s->o[i], 0, sizeof(s->o[i]));
	snprintf(s->o[i].node, sizeof(s->o[i].node), "%s", node);
	s->count = i + 1;
	return (int)i;
}

/* First time this (epoch, seq) of origin i? Takes it if so. Under lock. */
static bool first_time(struct replay *r, int i, uint64_t epoch, uint64_t seq)
{
	struct seen_origin *o;

	if(i < 0) return true;
	o = &r->seen->o[i];
	if(o->epoch != epoch){
		/* A new spool file on that node: its seqs start again. */
		o->epoch = epoch;
		o->seq = seq;
		return true;
	}
	if(seq <= o->seq) return false;
	o->seq = seq;
	return true;
}

/* ---- open and close ---- */

int replay__open(struct replay **out, const char *seen_path, const char *node,
		const char *service_user, const struct replay_hooks *hooks)
{
	struct replay *r = calloc(1, sizeof(*r));
	int64_t now = wall_ms();
	bool had;

	if(r == NULL) return MQC_ERR_NOMEM;
	pthread_mutex_init(&r->lock, NULL);
	snprintf(r->node, sizeof(r->node), "%s", node);
	snprintf(r->service_user, sizeof(r->service_user), "%s", service_user);
	r->hooks = *hooks;
	r->complete_from = now;
	r->last_notice = time__mono_ms() - REPLAY_NOTICE_EVERY_MS;
	if(seen_map(r, seen_path, &had) != MQC_OK){
		free(r);
		return MQC_ERR_IO;
	}
	/* Whatever happened before this start was not received: ask. */
	r->recovering = true;
	r->answer_deadline = INT64_MAX;
	if(had && r->seen->alive_ms > 0 && now - r->seen->alive_ms <= REPLAY_WINDOW_MS){
		r->since = r->seen->alive_ms - REPLAY_MARGIN_MS;
		log_info("bus: receiving stopped %.1f s ago: asking for a replay",
				(double)(now - r->seen->alive_ms) / 1000.0);
	}else{
		r->since = now - REPLAY_WINDOW_MS;
		r->blind = true;
		/* First start (no session to tell yet, then), a lost file, or a gap
		 * longer than any window: what was missed cannot be known. */
		r->notice_due = true;
		log_info("bus: %s: asking for a replay of the whole window; local people get a"
				" resync notice", had ? "receiving stopped longer ago than the window"
				: "no record of what was received");
	}
	r->ask_fresh = true;
	atomic_store(&r->ask_due, true);
	*out = r;
	return MQC_OK;
}

static void held_free(struct origin_state *os)
{
	struct held *h, *next;

	for(h = os->head; h != NULL; h = next){
		next = h->next;
		free(h->topic);
		free(h);
	}
	os->head = os->tail = NULL;
}

void replay__close(struct replay *r)
{
	size_t i;

	if(r == NULL) return;
	if(r->ctl_sub) natsSubscription_Destroy(r->ctl_sub);
	if(r->rp_sub) natsSubscription_Destroy(r->rp_sub);
	for(i=0; i<r->win_n; i++){
		struct kept *k = r->win[(r->win_head + i) % r->win_cap];
		free(k->subject);
		free(k);
	}
	free(r->win);
	for(i=0; i<SEEN_ORIGINS; i++) held_free(&r->origins[i]);
	if(r->seen) munmap(r->seen, sizeof(*r->seen));
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- in ---- */

/* Inject a message; one that does not fit in DATA/inbox is lost here, and
 * the node's people are told to sync. Under lock. */
static bool inject(struct replay *r, const char *origin, const char *topic, const void *payload,
		size_t len)
{
	if(r->hooks.inject(r->hooks.ctx, origin, topic, payload, len)) return true;
	r->notice_due = true;
	return false;
}

/* Inject origin i's held messages that are new, in order. Under lock. */
static void release(struct replay *r, int i)
{
	struct origin_state *os = &r->origins[i];
	struct held *h;

	for(h = os->head; h != NULL; h = h->next){
		r->held_bytes -= h->len;
		if(first_time(r, i, h->epoch, h->seq)){
			(void)inject(r, r->seen->o[i].node, h->topic, h->payload, h->len);
		}
	}
	held_free(os);
}

bool replay__take(struct replay *r, const char *origin, uint64_t epoch, uint64_t seq,
		const char *topic, const void *payload, size_t len)
{
	struct origin_state *os;
	struct held *h;
	bool taken = false;
	int i;

	pthread_mutex_lock(&r->lock);
	i = origin_index(r, origin);
	if(r->recovering && i >= 0 && !r->origins[i].answered){
		os = &r->origins[i];
		h = malloc(sizeof(*h) + len);
		if(h == NULL || r->held_bytes + len > REPLAY_HELD_BYTES || (h->topic = strdup(topic)) == NULL){
			/* Lost here: those concerned must sync. */
			free(h);
			r->notice_due = true;
		}else{
			h->next = NULL;
			h->epoch = epoch;
			h->seq = seq;
			h->len = len;
			memcpy(h->payload, payload, len);
			if(os->tail) os->tail->next = h;
			else os->head = h;
			os->tail = h;
			r->held_bytes += len;
			r->held_n++;
		}
	}else if(first_time(r, i, epoch, seq)){
		taken = inject(r, origin, topic, payload, len);
	}
	pthread_mutex_unlock(&r->lock);
	return taken;
}

/* A control message that is not what a bus sends (another program on NATS,
 * or a second bus with this node's name): said, the first ten and then
 * every 1000th, and ignored. */
static void refuse(struct replay *r, natsMsg *msg, const char *why)
{
	unsigned long n = atomic_fetch_add(&r->refused, 1);

	if(n < 10 || n % 1000 == 0){
		log_warnx("bus: a message on %s ignored: %s (%lu so far)", natsMsg_GetSubject(msg), why,
				n + 1);
	}
}

/* A decimal number, all of s; false for anything else. */
static bool number(const char *s, uint64_t *out)
{
	char *end;

	if(s == NULL || *s < '0' || *s > '9') return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* A replay record or an end mark on mq.rp.<me>. */
static void on_replay(struct replay *r, natsMsg *msg)
{
	const char *origin = NULL, *epoch_s = NULL, *seq_s = NULL, *subject = NULL, *end = NULL;
	const char *nonce_s = NULL;
	char topic[BUS_SUBJECT_MAX];
	uint64_t epoch, seq, nonce;
	bool is_end;
	int i;

	if(natsMsgHeader_Get(msg, BUS_ORIGIN_HEADER, &origin) != NATS_OK || !names__valid_str(origin)){
		refuse(r, msg, "no Mq-Origin that is a node's name");
		return;
	}
	if(strcmp(origin, r->node) == 0){
		refuse(r, msg, "from a bus with this node's name (two buses named alike?)");
		return;
	}
	is_end = natsMsgHeader_Get(msg, REPLAY_END_HEADER, &end) == NATS_OK;
	if(is_end && (natsMsgHeader_Get(msg, REPLAY_NONCE_HEADER, &nonce_s) != NATS_OK
				|| !number(nonce_s, &nonce) || (strcmp(end, "1") != 0 && strcmp(end, "0") != 0))){
		refuse(r, msg, "an end mark without a numeric Mq-Nonce or with Mq-End not 0 or 1");
		return;
	}
	if(!is_end && (natsMsgHeader_Get(msg, BUS_EPOCH_HEADER, &epoch_s) != NATS_OK
				|| natsMsgHeader_Get(msg, BUS_SEQ_HEADER, &seq_s) != NATS_OK
				|| natsMsgHeader_Get(msg, REPLAY_SUBJECT_HEADER, &subject) != NATS_OK
				|| !number(epoch_s, &epoch) || !number(seq_s, &seq)
				|| !bus__topic(subject, topic, sizeof(topic)))){
		refuse(r, msg, "a record without numeric Mq-Epoch and Mq-Seq and an Mq-Subject the bus carries");
		return;
	}
	pthread_mutex_lock(&r->lock);
	i = origin_index(r, origin);
	if(is_end){
		if(nonce == r->nonce && i >= 0){
			if(strcmp(end, "1") != 0 && !r->blind){
				log_warnx("bus: %s's window does not reach back to what was missed", origin);
				r->notice_due = true;
			}
			r->origins[i].answered = true;
			release(r, i);
		}
	}else if(first_time(r, i, epoch, seq)){
		if(inject(r, origin, topic, natsMsg_GetData(msg),
					(size_t)natsMsg_GetDataLength(msg))){
			r->replayed++;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

/* Another node asks (mq.ctl.resync): queue it for the main thread. */
static void on_request(struct replay *r, natsMsg *msg)
{
	const char *node = NULL, *since_s = NULL, *nonce_s = NULL, *only = NULL;
	struct request *q;
	uint64_t since, nonce;
	int i;

	if(natsMsgHeader_Get(msg, BUS_ORIGIN_HEADER, &node) != NATS_OK || !names__valid_str(node)
			|| strlen(node) >= SEEN_NODE_LEN){
		refuse(r, msg, "no Mq-Origin that is a node's name");
		return;
	}
	if(strcmp(node, r->node) == 0){
		refuse(r, msg, "from a bus with this node's name (two buses named alike?)");
		return;
	}
	if(natsMsgHeader_Get(msg, REPLAY_LOST_HEADER, &only) == NATS_OK){
		log_warnx("bus: %s lost records before they went out", node);
		pthread_mutex_lock(&r->lock);
		r->notice_due = true;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if(natsMsgHeader_Get(msg, REPLAY_SINCE_HEADER, &since_s) != NATS_OK
			|| natsMsgHeader_Get(msg, REPLAY_NONCE_HEADER, &nonce_s) != NATS_OK
			|| !number(since_s, &since) || !number(nonce_s, &nonce) || since > INT64_MAX){
		refuse(r, msg, "a request without a numeric Mq-Since and Mq-Nonce");
		return;
	}
	pthread_mutex_lock(&r->lock);
	/* Asked again of one node only (below): the others answered already. */
	if(natsMsgHeader_Get(msg, REPLAY_FOR_HEADER, &only) == NATS_OK
			&& strcmp(only, r->node) != 0){
		pthread_mutex_unlock(&r->lock);
		return;
	}
	if(r->req_n < REPLAY_REQUESTS_MAX){
		q = &r->reqs[r->req_n++];
		snprintf(q->node, sizeof(q->node), "%s", node);
		q->since = (int64_t)since;
		q->nonce = nonce;
	}
	/* It came back after this node asked, so it did not hear the request:
	 * ask it again (two such before the next tick: everyone again). */
	i = origin_index(r, node);
	if(r->recovering && r->answer_deadline != INT64_MAX && i >= 0 && !r->origins[i].answered){
		if(!atomic_load(&r->ask_due)) snprintf(r->ask_only, sizeof(r->ask_only), "%s", node);
		else if(strcmp(r->ask_only, node) != 0) r->ask_only[0] = '\0';
		atomic_store(&r->ask_due, true);
	}
	pthread_mutex_unlock(&r->lock);
}

static void on_ctl(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct replay *r = closure;

	(void)nc;
	if(sub == r->rp_sub) on_replay(r, msg);
	else on_request(r, msg);
	natsMsg_Destroy(msg);
}

/* Has every origin heard of answered the last request? Under lock. */
static bool all_answered(const struct replay *r)
{
	uint32_t i;

	for(i=0; i<r->seen->count; i++){
		if(!r->origins[i].answered) return false;
	}
	return r->answer_deadline != INT64_MAX;
}

void replay__disconnected(struct replay *r)
{
	size_t i;

	pthread_mutex_lock(&r->lock);
	/* From now on nothing is known to arrive: hold, and ask once back.
	 * Lost again while an origin still owes an answer: ask from as early. */
	if(!r->recovering || all_answered(r)){
		r->since = wall_ms() - REPLAY_MARGIN_MS;
		r->blind = false;
	}
	r->recovering = true;
	r->answer_deadline = INT64_MAX;
	r->ask_only[0] = '\0';
	r->ask_fresh = true;
	for(i=0; i<SEEN_ORIGINS; i++) r->origins[i].answered = false;
	atomic_store(&r->ask_due, true);
	pthread_mutex_unlock(&r->lock);
}

/* ---- out ---- */

int replay__start(struct replay *r, natsConnection *nc, uint64_t epoch, bool fresh)
{
	char tok[SEEN_NODE_LEN];
	natsStatus st;

	r->nc = nc;
	r->epoch = epoch;
	/* A spool the bus never read: nothing was published before this start
	 * that the window lacks. */
	if(fresh) r->complete_from = 0;
	node_token(r->node, tok, sizeof(tok));
	snprintf(r->rp_subject, sizeof(r->rp_subject), REPLAY_SUBJECT_PREFIX "%s", tok);
	st = natsConnection_Subscribe(&r->ctl_sub, nc, REPLAY_CTL_SUBJECT, on_ctl, r);
	if(st == NATS_OK) st = natsConnection_Subscribe(&r->rp_sub, nc, r->rp_subject, on_ctl, r);
	if(st != NATS_OK){
		log_error("bus: cannot subscribe to %s: %s", REPLAY_CTL_SUBJECT, natsStatus_GetText(st));
		return MQC_ERR_IO;
	}
	return MQC_OK;
}

static bool connected(const struct replay *r)
{
	return r->nc != NULL && natsConnection_Status(r->nc) == NATS_CONN_STATUS_CONNECTED;
}

bool replay__may_send(struct replay *r)
{
	return connected(r) && !atomic_load(&r->ask_due);
}

static void window_trim(struct replay *r, int64_t now)
{
	struct kept *k;

	while(r->win_n > 0){
		k = r->win[r->win_head];
		if(now - k->time_ms <= REPLAY_WINDOW_MS && r->win_bytes <= REPLAY_WINDOW_BYTES) break;
		/* Anything asked for from before the next one is not all here. */
		r->complete_from = k->time_ms + 1;
		r->win_bytes -= k->len + sizeof(*k) + strlen(k->subject) + 1;
		free(k->subject);
		free(k);
		r->win_head = (r->win_head + 1) % r->win_cap;
		r->win_n--;
	}
}

void replay__keep(struct replay *r, const char *subject, uint64_t seq, int64_t time_ms,
		const void *payload, size_t len)
{
	struct kept *k, **grown;
	size_t i;

	(void)time_ms;
	k = malloc(sizeof(*k) + len);
	if(k == NULL || (k->subject = strdup(subject)) == NULL){
		free(k);
		replay__lost(r);
		return;
	}
	k->time_ms = wall_ms();
	k->seq = seq;
	k->len = len;
	memcpy(k->payload, payload, len);
	if(r->win_n == r->win_cap){
		grown = malloc((r->win_cap ? r->win_cap * 2 : 1024) * sizeof(*grown));
		if(grown == NULL){
			free(k->subject);
			free(k);
			replay__lost(r);
			return;
		}
		for(i=0; i<r->win_n; i++) grown[i] = r->win[(r->win_head + i) % r->win_cap];
		free(r->win);
		r->win = grown;
		r->win_head = 0;
		r->win_cap = r->win_cap ? r->win_cap * 2 : 1024;
	}
	r->win[(r->win_head + r->win_n) % r->win_cap] = k;
	r->win_n++;
	r->win_bytes += len + sizeof(*k) + strlen(subject) + 1;
	window_trim(r, k->time_ms);
}

void replay__lost(struct replay *r)
{
	r->complete_from = wall_ms() + 1;
	r->lost_due = true;
}

/* Publish msg, destroying it; false on failure. */
static bool publish(struct replay *r, natsMsg *msg, natsStatus st)
{
	if(st == NATS_OK) st = natsConnection_PublishMsg(r->nc, msg);
	natsMsg_Destroy(msg);
	return st == NATS_OK;
}

/* Tell every node that records of this one were lost before they went out
 * (their receivers cannot tell whose): their people get a notice. */
static void tell_lost(struct replay *r)
{
	natsMsg *msg = NULL;
	natsStatus st;

	st = natsMsg_Create(&msg, REPLAY_CTL_SUBJECT, NULL, NULL, 0);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_ORIGIN_HEADER, r->node);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_LOST_HEADER, "1");
	if(publish(r, msg, st)){
		r->lost_due = false;
		log_info("bus: told the other nodes that records were lost before they went out");
	}
}

/* Answer one request: the window since q->since to mq.rp.<node>, then the
 * end mark. */
static void answer(struct replay *r, const struct request *q)
{
	char subject[BUS_SUBJECT_MAX], tok[SEEN_NODE_LEN], num[24], nonce[24];
	natsMsg *msg;
	natsStatus st;
	size_t i, n = 0;
	struct kept *k;
	int64_t now = wall_ms();

	window_trim(r, now);
	node_token(q->node, tok, sizeof(tok));
	snprintf(subject, sizeof(subject), REPLAY_SUBJECT_PREFIX "%s", tok);
	snprintf(nonce, sizeof(nonce), "%" PRIu64, q->nonce);
	for(i=0; i<r->win_n; i++){
		k = r->win[(r->win_head + i) % r->win_cap];
		if(k->time_ms < q->since) continue;
		msg = NULL;
		st = natsMsg_Create(&msg, subject, NULL, (const char *)k->payload, (int)k->len);
		if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_ORIGIN_HEADER, r->node);
		snprintf(num, sizeof(num), "%" PRIu64, r->epoch);
		if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_EPOCH_HEADER, num);
		snprintf(num, sizeof(num), "%" PRIu64, k->seq);
		if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_SEQ_HEADER, num);
		if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_SUBJECT_HEADER, k->subject);
		if(!publish(r, msg, st)) return;   /* the asker times out and asks again if it can */
		n++;
	}
	msg = NULL;
	st = natsMsg_Create(&msg, subject, NULL, NULL, 0);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_ORIGIN_HEADER, r->node);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_NONCE_HEADER, nonce);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_END_HEADER, q->since >= r->complete_from ? "1" : "0");
	(void)publish(r, msg, st);
	r->answered_n++;
	log_info("bus: replayed %zu records since %.1f s ago to %s%s", n,
			(double)(now - q->since) / 1000.0, q->node,
			q->since >= r->complete_from ? "" : " (the window does not reach back so far)");
}

/* Publish this node's resync request. */
static void ask(struct replay *r)
{
	char since[24], nonce[24], body[160], only[SEEN_NODE_LEN];
	natsMsg *msg = NULL;
	natsStatus st;
	int64_t from;

	pthread_mutex_lock(&r->lock);
	if(r->ask_fresh){
		/* A new request: answers to an older one are not for it. */
		if(rand__bytes(&r->nonce, sizeof(r->nonce)) != MQC_OK) r->nonce = (uint64_t)wall_ms();
		r->nonce |= 1;
		r->ask_fresh = false;
		r->ask_only[0] = '\0';
	}
	snprintf(only, sizeof(only), "%s", r->ask_only);
	r->ask_only[0] = '\0';
	from = r->since;
	snprintf(nonce, sizeof(nonce), "%" PRIu64, r->nonce);
	atomic_store(&r->ask_due, false);
	pthread_mutex_unlock(&r->lock);
	snprintf(since, sizeof(since), "%" PRId64, from);
	snprintf(body, sizeof(body), "{\"node\":\"%s\",\"since\":%s}", r->node, since);
	st = natsMsg_Create(&msg, REPLAY_CTL_SUBJECT, NULL, body, (int)strlen(body));
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, BUS_ORIGIN_HEADER, r->node);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_SINCE_HEADER, since);
	if(st == NATS_OK) st = natsMsgHeader_Set(msg, REPLAY_NONCE_HEADER, nonce);
	if(st == NATS_OK && only[0] != '\0') st = natsMsgHeader_Set(msg, REPLAY_FOR_HEADER, only);
	if(!publish(r, msg, st)){
		/* Again at the next tick, of everyone (same nonce). */
		atomic_store(&r->ask_due, true);
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->answer_deadline = time__mono_ms() + REPLAY_ANSWER_MS;
	pthread_mutex_unlock(&r->lock);
	log_info("bus: asked for a replay since %.1f s ago%s%s", (double)(wall_ms() - from) / 1000.0,
			only[0] ? " of " : "", only);
}

/* Notices: one per local user (client ids <user>@<device>). */
struct notice_round {
	struct replay *r;
	struct client_user *users;
};

static void notice_client(void *arg, const char *client_id)
{
	struct notice_round *nr = arg;
	struct client_user *u;
	const char *at = strchr(client_id, '@');
	char user[NAME_MAX_LEN + 1];

	if(at == NULL || (size_t)(at - client_id) > NAME_MAX_LEN) return;
	memcpy(user, client_id, (size_t)(at - client_id));
	user[at - client_id] = '\0';
	if(!names__valid_str(user) || strcmp(user, nr->r->service_user) == 0) return;
	HASH_FIND_STR(nr->users, user, u);
	if(u != NULL) return;
	u = calloc(1, sizeof(*u));
	if(u == NULL || (u->user = strdup(user)) == NULL){
		free(u);
		return;
	}
	HASH_ADD_KEYPTR(hh, nr->users, u->user, strlen(u->user), u);
}

static void send_notices(struct replay *r)
{
	struct notice_round nr = {r, NULL};
	struct client_user *u, *tmp;
	char topic[TOPIC_MAX_LEN + 1], body[64];
	unsigned n = 0;
	int len;

	/* docs/PROTOCOL.md, "Several nodes": ts is when it was sent. */
	len = snprintf(body, sizeof(body), BUS_RESYNC_NOTICE_FORMAT, wall_ms());
	r->hooks.each_client(r->hooks.ctx, notice_client, &nr);
	pthread_mutex_lock(&r->lock);
	HASH_ITER(hh, nr.users, u, tmp){
		topic__build(topic, sizeof(topic), TOPIC_NOTICE, u->user, NULL);
		if(r->hooks.inject(r->hooks.ctx, r->node, topic, body, (size_t)len)){
			n++;
		}
		HASH_DEL(nr.users, u);
		free(u->user);
		free(u);
	}
	pthread_mutex_unlock(&r->lock);
	r->notices += n;
	log_info("bus: what was missed cannot be replayed: resync notice to %u local people", n);
}

void replay__tick(struct replay *r)
{
	struct request reqs[REPLAY_REQUESTS_MAX];
	size_t i, n;
	int64_t mono = time__mono_ms();
	bool notice = false;

	if(!connected(r)) return;
	if(atomic_load(&r->ask_due)) ask(r);
	if(r->lost_due) tell_lost(r);
	pthread_mutex_lock(&r->lock);
	n = r->req_n;
	memcpy(reqs, r->reqs, n * sizeof(reqs[0]));
	r->req_n = 0;
	if(r->recovering && (mono >= r->answer_deadline || (r->seen->count > 0 && all_answered(r)))){
		/* Whoever did not answer: what it sent live goes in now. (With no
		 * origin known yet, a bus that lost DATA/bus.seen, the deadline
		 * is the only end: it cannot tell who will answer.) */
		for(i=0; i<r->seen->count; i++){
			if(!r->origins[i].answered) release(r, (int)i);
		}
		r->recovering = false;
	}
	/* What a restart asks from: now, or what this request asks from. */
	r->seen->alive_ms = r->recovering ? r->since + REPLAY_MARGIN_MS : wall_ms();
	if(r->notice_due && mono - r->last_notice >= REPLAY_NOTICE_EVERY_MS){
		r->notice_due = false;
		r->last_notice = mono;
		notice = true;
	}
	pthread_mutex_unlock(&r->lock);
	for(i=0; i<n; i++) answer(r, &reqs[i]);
	if(notice) send_notices(r);
}

void replay__report(struct replay *r)
{
	unsigned long replayed, held;

	pthread_mutex_lock(&r->lock);
	replayed = r->replayed;
	held = r->held_n;
	pthread_mutex_unlock(&r->lock);
	log_info("bus: replay: %lu records taken from replays, %lu held while waiting for one,"
			" %lu answers sent, %zu records (%zu bytes) in the window, %lu resync notices",
			replayed, held, r->answered_n, r->win_n, r->win_bytes, r->notices);
}
