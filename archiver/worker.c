/* worker.c - the thread that answers requests (RPC and registration).
 *
 * Requests arrive on the same broker connection as everybody's messages, in
 * one stream: every millisecond the poll loop spends on a request, every
 * message behind it waits in the broker's queue for the archiver, and past
 * max_queued_bytes the broker drops them. Some requests are dear by design
 * (a password check or a registration is a slow hash, 0.5-2 ms) or by size
 * (a sync of 500 large messages reads 30 MB: ~60 ms), and a handful of
 * accounts can send them as fast as their send limit allows. So the loop
 * only copies a request into this queue (worker__submit) and goes back to
 * storing; the worker thread answers it with its own connections to
 * auth.db and archive.db (struct responder) and hands the answer back
 * (worker__deliver), which the loop publishes, or keeps until the broker
 * has applied the change it made (later.c).
 *
 * The queue is bounded: WORKER_MAX_JOBS requests, WORKER_MAX_BYTES of
 * payload, WORKER_MAX_PER_KEY of one account. A request past that is
 * answered at once, by the loop, with rate_limited and retry_ms: nothing
 * ever waits for room. Accounts take turns (fair queueing by rounds): the
 * next request is the oldest of those in the lowest round, an account's
 * k-th waiting request is in round k after the current one, and a request
 * that took longer than WORKER_QUANTUM_MS pushes its account's waiting ones
 * back a round per quantum. So a few accounts with many requests hold up
 * anyone else's by at most one request each, and accounts whose requests
 * are dear wait behind those whose requests are cheap. Registrations share
 * one account, "_register".
 *
 * Locking: w->mu guards the queue, the answers and stop; the responder is
 * the worker thread's alone while it runs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "daemon.h"
#include "datadir.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "push_store.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"
#include "worker_internal.h"

/* The account a request counts against: the user of chat/rpc/<user>/req;
 * every registration the same, every device login report another. Empty when the topic has no such part (the
 * handler then ignores the request). */
static void job_key(enum job_kind kind, const char *topic, char *key, size_t keylen)
{
	struct topic_parts tp;
	size_t len;

	if(kind == JOB_REGISTER || kind == JOB_SEEN){
		snprintf(key, keylen, "%s", kind == JOB_REGISTER ? REGISTER_USER : WORKER_SEEN_KEY);
		return;
	}
	len = topic__parse(topic, &tp) && tp.kind == TOPIC_RPC_REQ ? tp.a.n : 0;
	if(len >= keylen) len = 0;
	memcpy(key, tp.a.p, len);
	key[len] = '\0';
}

/* Waiting requests of key, and the round of its last one. Under w->mu. */
static size_t key_count(const struct worker *w, const char *key, uint64_t *last_round)
{
	const struct job *j;
	size_t n = 0;

	for(j = w->jobs; j; j = j->next){
		if(strcmp(j->key, key) == 0){
			n++;
			*last_round = j->round;
		}
	}
	return n;
}

/* Take the next request (lowest round, then oldest), or NULL. Under w->mu. */
static struct job *take(struct worker *w)
{
	struct job **pp, **best = NULL, *j;

	for(pp = &w->jobs; *pp; pp = &(*pp)->next){
		if(best == NULL || (*pp)->round < (*best)->round) best = pp;
	}
	if(best == NULL) return NULL;
	j = *best;
	*best = j->next;
	w->njobs--;
	w->bytes -= j->len;
	w->round = j->round;
	return j;
}

/* Open the responder's own connections if they are not open. MQC_OK when
 * both are; a failure is logged once until they open. Worker thread. */
static int responder_open(struct worker *w)
{
	struct responder *rs = &w->rs;
	char err[512];
	int rc = MQC_OK;

	if(rs->udb == NULL){
		rc = datadir__sqlite_no_link(rs->auth_path, err, sizeof(err));
		if(rc == MQC_OK) rc = userdb__open(rs->auth_path, 0, &rs->udb, err, sizeof(err));
		if(rc == MQC_OK) rs->answered_ns = userdb__committed_ns(rs->udb);
	}
	if(rc == MQC_OK && rs->ar == NULL){
		rc = datadir__sqlite_no_link(rs->archive_path, err, sizeof(err));
		if(rc == MQC_OK) rc = archive__open(rs->archive_path, &rs->ar, err, sizeof(err));
	}
	if(rc != MQC_OK && !w->open_failing){
		log_warnx("requests cannot be answered: %s", err);
	}
	w->open_failing = rc != MQC_OK;
	return rc;
}

/* The topic the answer to a request on topic goes to: chat/rpc/X/req ->
 * chat/rpc/X/resp, chat/register/X/req -> chat/register/X/resp. False for
 * any other topic (the handlers ignore those requests too). */
static bool resp_topic(const char *topic, char *out, size_t outlen)
{
	struct topic_parts tp;
	enum topic_kind kind;
	char a[256];

	topic__parse(topic, &tp);
	if(tp.kind == TOPIC_RPC_REQ) kind = TOPIC_RPC_RESP;
	else if(tp.kind == TOPIC_REGISTER_REQ) kind = TOPIC_REGISTER_RESP;
	else return false;
	if(tp.a.n == 0 || tp.a.n >= sizeof(a)) return false;
	memcpy(a, tp.a.p, tp.a.n);
	a[tp.a.n] = '\0';
	return topic__build(out, outlen, kind, a, NULL) > 0;
}

/* New reference: the refusal {"id":..,"ok":false,"error":code,...} of the
 * request payload, with retry_ms when retry_ms > 0. */
static json_t *refusal(const void *payload, size_t len, const char *code, int64_t retry_ms,
		const char *message)
{
	json_t *req, *id = NULL, *resp = NULL;

	req = rpc__load_request(payload, len, WORKER_MAX_PARSE, WORKER_MAX_ID, &id, &resp);
	json_decref(resp);
	resp = rpc__fail(id, code, "%s", message);
	json_decref(req);
	if(resp && retry_ms > 0 && json_object_set_new(resp, "retry_ms", json_integer(retry_ms))){
		json_decref(resp);
		resp = NULL;
	}
	return resp;
}

/* Answer one request. Worker thread. */
static void run_job(struct worker *w, struct job *j)
{
	struct responder *rs = &w->rs;
	struct mqtt_msg msg;
	char topic[256];

	memset(&msg, 0, sizeof(msg));
	msg.topic = j->topic;
	msg.payload = j->payload;
	msg.len = j->len;
	msg.corr = j->corr_len ? j->corr : NULL;
	msg.corr_len = j->corr_len;
	msg.resp_topic = j->resp_topic;
	rs->conn = j->conn;
	rs->arrived_ns = j->arrived_ns;
	if(responder_open(w) != MQC_OK){
		/* A device login report has no answer: it is lost (logged once
		 * by responder_open), which costs a last_seen, nothing more. */
		if(resp_topic(j->topic, topic, sizeof(topic))){
			responder__reply(rs, topic, refusal(j->payload, j->len, "internal", 0,
					"the archiver cannot read its stores now; try again later"), &msg);
		}
		return;
	}
	switch(j->kind){
	case JOB_RPC:
		rpc__handle(rs, &msg);
		break;
	case JOB_REGISTER:
		register__handle(rs, &msg);
		break;
	case JOB_SEEN:
		seen__handle(rs, &msg);
		/* Nobody waits for this commit: the next answer must not. */
		rs->answered_ns = userdb__committed_ns(rs->udb);
		break;
	}
}

/* Charge key for spent ms of the worker's time: its waiting requests go
 * back a round per quantum. Under w->mu. */
static void charge(struct worker *w, const char *key, int64_t spent)
{
	uint64_t extra = spent > 0 ? (uint64_t)(spent / w->quantum_ms) : 0;
	struct job *j;

	for(j = w->jobs; extra > 0 && j; j = j->next){
		if(strcmp(j->key, key) == 0) j->round += extra;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j;
	int64_t t0;

	pthread_mutex_lock(&w->mu);
	while(!w->stop){
		j = take(w);
		if(j == NULL){
			pthread_cond_wait(&w->cond, &w->mu);
			continue;
		}
		pthread_mutex_unlock(&w->mu);
		t0 = time__mono_ms();
		run_job(w, j);
		pthread_mutex_lock(&w->mu);
		charge(w, j->key, time__mono_ms() - t0);
		free(j);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Queue text (stolen) for the poll loop to publish on topic through the
 * request's connection, with corr (clen bytes) as correlation data, once
 * the change committed at commit_ns is in force (0: at once). Returns the
 * message's number (responder__sent), 0 if it was dropped. */
static uint64_t queue(struct responder *rs, const char *topic, char *text, const unsigned char *corr,
		size_t clen, int64_t commit_ns)
{
	struct worker *w = rs->w;
	size_t tlen = strlen(topic) + 1;
	struct answer *a = text ? malloc(sizeof(*a) + tlen + clen) : NULL;
	uint64_t n;

	if(a == NULL){
		free(text);
		log_warnx("out of memory building a message on %s", topic);
		return 0;
	}
	a->next = NULL;
	a->conn = rs->conn;
	a->text = text;
	a->topic = (char *)(a + 1);
	a->corr = (unsigned char *)a->topic + tlen;
	a->corr_len = clen;
	a->commit_ns = commit_ns;
	a->change = commit_ns != 0 && rs->udb != NULL ? userdb__committed_change(rs->udb) : 0;
	memcpy(a->topic, topic, tlen);
	if(clen) memcpy(a->corr, corr, clen);
	pthread_mutex_lock(&w->mu);
	*(w->ans_tail ? &w->ans_tail->next : &w->ans_head) = a;
	w->ans_tail = a;
	n = ++w->queued;
	a->seq = n;
	pthread_mutex_unlock(&w->mu);
	if(write(w->wake[1], "a", 1) < 0){
		/* The pipe is full: a wake-up is already pending. */
	}
	return n;
}

void responder__reply(struct responder *rs, const char *topic, json_t *resp, const struct mqtt_msg *req)
{
	size_t clen = req && req->corr ? req->corr_len : 0;
	int64_t commit_ns = 0;
	char *text;

	if(resp == NULL){
		log_warnx("out of memory building an answer on %s", topic);
		return;
	}
	text = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	/* Requests are answered one at a time: a commit since the last answer
	 * is this request's, and the answer waits until the broker has it. */
	if(rs->udb != NULL && userdb__committed_ns(rs->udb) != rs->answered_ns){
		rs->answered_ns = userdb__committed_ns(rs->udb);
		commit_ns = rs->answered_ns;
	}
	queue(rs, topic, text, clen ? req->corr : NULL, clen, commit_ns);
}

uint64_t responder__publish(struct responder *rs, const char *topic, json_t *msg, bool now)
{
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	int64_t commit_ns = 0;

	json_decref(msg);
	/* After the request's commit (not yet answered), like its answer. */
	if(!now && rs->udb != NULL && userdb__committed_ns(rs->udb) != rs->answered_ns){
		commit_ns = userdb__committed_ns(rs->udb);
	}
	return queue(rs, topic, text, NULL, 0, commit_ns);
}

bool responder__sent(struct responder *rs, uint64_t n, int timeout_ms)
{
	struct worker *w = rs->w;
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if(until.tv_nsec >= 1000000000L){
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while(w->delivered < n && !w->stop){
		if(pthread_cond_timedwait(&w->sent, &w->mu, &until) != 0) break;
	}
	done = w->delivered >= n;
	pthread_mutex_unlock(&w->mu);
	return done;
}

int worker__start(struct daemon *d, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));

	*out = NULL;
	if(w == NULL) return MQC_ERR_NOMEM;
	w->wake[0] = w->wake[1] = -1;
	w->rs.cfg = &d->cfg;
	w->rs.auth_path = d->auth_path;
	w->rs.archive_path = d->archive_path;
	w->rs.w = w;
	w->quantum_ms = WORKER_QUANTUM_MS;
	w->rs.reg_tokens = 2.0 * d->cfg.registration_rate;
	w->rs.reg_last = time__mono_ms();
	if(pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) != 0){
		free(w);
		return MQC_ERR_IO;
	}
	if(pthread_mutex_init(&w->mu, NULL) != 0) goto fail_pipe;
	if(pthread_cond_init(&w->cond, NULL) != 0) goto fail_mutex;
	if(pthread_cond_init(&w->sent, NULL) != 0){
		pthread_cond_destroy(&w->cond);
		goto fail_mutex;
	}
	/* jansson picks its hash seed when the first object is made; pick it
	 * now, before a second thread makes objects too. */
	json_object_seed(0);
	if(pthread_create(&w->thread, NULL, worker_main, w) != 0) goto fail_cond;
	w->running = true;
	*out = w;
	return MQC_OK;
fail_cond:
	pthread_cond_destroy(&w->sent);
	pthread_cond_destroy(&w->cond);
fail_mutex:
	pthread_mutex_destroy(&w->mu);
fail_pipe:
	close(w->wake[0]);
	close(w->wake[1]);
	free(w);
	return MQC_ERR_NOMEM;
}

int worker__fd(const struct worker *w)
{
	return w->wake[0];
}

bool worker__room(struct worker *w, enum job_kind kind, const char *topic, size_t len)
{
	char key[CLIENTID_MAX_LEN + 1];
	uint64_t last = 0;
	bool room;

	job_key(kind, topic, key, sizeof(key));
	pthread_mutex_lock(&w->mu);
	room = w->njobs < WORKER_MAX_JOBS && w->bytes + len <= WORKER_MAX_BYTES
		&& key_count(w, key, &last) < WORKER_MAX_PER_KEY;
	pthread_mutex_unlock(&w->mu);
	return room;
}

int worker__submit(struct worker *w, struct conn *c, enum job_kind kind, const struct mqtt_msg *msg)
{
	size_t tlen = strlen(msg->topic) + 1, clen = msg->corr ? msg->corr_len : 0, n;
	size_t rlen = msg->resp_topic ? strlen(msg->resp_topic) + 1 : 0;
	struct job *j = malloc(sizeof(*j) + tlen + rlen + msg->len + clen), **pp;
	uint64_t last = 0;

	if(j == NULL) return MQC_ERR_NOMEM;
	j->next = NULL;
	j->kind = kind;
	j->conn = c->index;
	j->arrived_ns = time__mono_ns();
	j->topic = (char *)(j + 1);
	j->resp_topic = rlen ? j->topic + tlen : NULL;
	j->payload = (unsigned char *)j->topic + tlen + rlen;
	j->corr = j->payload + msg->len;
	j->len = msg->len;
	j->corr_len = clen;
	memcpy(j->topic, msg->topic, tlen);
	if(rlen) memcpy(j->resp_topic, msg->resp_topic, rlen);
	if(msg->len) memcpy(j->payload, msg->payload, msg->len);
	if(clen) memcpy(j->corr, msg->corr, clen);
	job_key(j->kind, j->topic, j->key, sizeof(j->key));

	pthread_mutex_lock(&w->mu);
	n = key_count(w, j->key, &last);
	if(w->stop || w->njobs >= WORKER_MAX_JOBS || w->bytes + j->len > WORKER_MAX_BYTES
			|| n >= WORKER_MAX_PER_KEY){
		pthread_mutex_unlock(&w->mu);
		free(j);
		return MQC_ERR_BUSY;
	}
	/* An account with nothing waiting joins the current round; each
	 * request it has waiting puts its next one a round later. */
	j->round = n > 0 ? last + 1 : w->round;
	for(pp = &w->jobs; *pp; pp = &(*pp)->next){
		/* to the end: arrival order */
	}
	*pp = j;
	w->njobs++;
	w->bytes += j->len;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return MQC_OK;
}

void worker__refuse(struct conn *c, const struct mqtt_msg *msg)
{
	char topic[256], *text;
	json_t *resp;

	if(!resp_topic(msg->topic, topic, sizeof(topic))) return;
	metrics__add(MC_REQUESTS_REFUSED, 1);
	resp = refusal(msg->payload, msg->len, "rate_limited", WORKER_RETRY_MS,
			"too many requests waiting; try again later");
	text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	json_decref(resp);
	if(text == NULL){
		log_warnx("out of memory building an answer on %s", topic);
		return;
	}
	daemon__send(c, topic, text, strlen(text), msg->corr, msg->corr ? msg->corr_len : 0);
	free(text);
}

void worker__deliver(struct worker *w, struct daemon *d)
{
	struct answer *a, *next;
	uint64_t last = 0;
	char buf[64];

	while(read(w->wake[0], buf, sizeof(buf)) > 0){
		/* drained: the list below is what the bytes announced */
	}
	pthread_mutex_lock(&w->mu);
	a = w->ans_head;
	w->ans_head = w->ans_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for(; a; a = next){
		last = a->seq;
		struct conn *c = &d->conns[a->conn];
		struct mqtt_msg req;

		next = a->next;
		memset(&req, 0, sizeof(req));
		req.corr = a->corr_len ? a->corr : NULL;
		req.corr_len = a->corr_len;
		if(!mqtt__is_open(c->mq)){
			log_warnx("connection closed; the answer on %s is dropped", a->topic);
			free(a->text);
		}else if(a->commit_ns != 0){
			later__add(c, a->topic, a->text, &req, a->commit_ns, a->change);
		}else{
			daemon__send(c, a->topic, a->text, strlen(a->text), req.corr, req.corr_len);
			free(a->text);
		}
		free(a);
	}
	if(last != 0){
		pthread_mutex_lock(&w->mu);
		w->delivered = last;
		pthread_cond_broadcast(&w->sent);
		pthread_mutex_unlock(&w->mu);
	}
}

void worker__stop(struct worker *w, struct daemon *d)
{
	struct job *j, *next;
	size_t dropped = 0;

	if(w == NULL) return;
	if(w->running){
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	/* The thread is gone: everything below is ours. */
	worker__deliver(w, d);
	for(j = w->jobs; j; j = next){
		next = j->next;
		free(j);
		dropped++;
	}
	if(dropped) log_warnx("stopping: %zu request(s) not answered", dropped);
	d->stats.rpc += w->rs.rpc;
	d->stats.registrations += w->rs.registrations;
	pwthrottle__cleanup(&w->rs);
	register__cleanup(&w->rs);
	archive__close(w->rs.ar);
	userdb__close(w->rs.udb);
	push_store__close(w->rs.push);
	pthread_cond_destroy(&w->sent);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	close(w->wake[0]);
	close(w->wake[1]);
	free(w);
}
