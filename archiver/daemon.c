/* daemon.c - the archiver daemon: setup, the poll loop, broker connections. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "archive.h"
#include "daemon.h"
#include "datadir.h"
#include "datalock.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "mqtt.h"
#include "push.h"
#include "store_conf.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

/* The broker keeps the session (subscriptions and queued messages) this
 * long after the archiver leaves: the broker's persistent_client_expiration
 * (30 days in config/mosquitto.conf) matches it. */
#define SESSION_EXPIRY_S (30u * 24 * 3600)
/* QoS 1 messages the broker may have in flight to one connection. */
#define RECEIVE_MAXIMUM 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SHARE_GROUP "$share/mqchat-archiver/"
/* The broker's figures and the plugin's, for /metrics (metrics.h). */
#define SYS_BROKER_FILTER "$SYS/broker/#"
#define SYS_PLUGIN_TOPIC "$SYS/mqchat/plugin"
/* Bytes read from one connection per poll wake-up, so K connections and
 * the timers take turns. */
#define READ_BUDGET (256 * 1024)
/* The largest packet the broker may send us: a payload at the ingest limit
 * and its topic and properties. */
#define MAX_PACKET (INGEST_MAX_PAYLOAD + 70 * 1024)
/* How often the checkpointer thread copies the WAL into archive.db. */
#define CHECKPOINT_INTERVAL_MS 200

static int sigpipe_w = -1;

static void conn_closed(struct conn *c, const char *why);

/* The next retry delay after a failure: doubled, at most BACKOFF_MAX_MS. */
static int backoff_next(int ms)
{
	return ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
}

static void signal_cb(int sig)
{
	char c = sig == SIGHUP ? 'H' : 'T';
	int saved = errno;

	if(sigpipe_w >= 0 && write(sigpipe_w, &c, 1) < 0){
		/* The pipe is full: a wake-up is already pending. */
	}
	errno = saved;
}

static int setup_signals(struct daemon *d)
{
	struct sigaction sa;

	if(pipe2(d->sigpipe, O_NONBLOCK | O_CLOEXEC) != 0) return MQC_ERR_IO;
	sigpipe_w = d->sigpipe[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = signal_cb;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if(sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)
			|| sigaction(SIGHUP, &sa, NULL)){
		return MQC_ERR_IO;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A write past RLIMIT_FSIZE must fail with EFBIG like a full disk
	 * (stop acknowledging, retry), not kill the process. */
	signal(SIGXFSZ, SIG_IGN);
	return MQC_OK;
}

void daemon__send(struct conn *c, const char *topic, const char *text, size_t len,
		const unsigned char *corr, size_t corr_len)
{
	int rc = mqtt__publish(c->mq, topic, text, len, corr, corr_len);

	if(rc != MQC_OK) log_warnx("cannot answer on %s: %s", topic, mqc_strerror(rc));
}

/* Say DISCONNECT on every open connection. The PUBACKs waiting to go are
 * for messages in the journal buffer: they are sent only if that reaches
 * the file; otherwise they are dropped and the broker sends those messages
 * again. */
static void leave_broker(struct daemon *d)
{
	int jrc = ingest__journal_sync(&d->ing), i;

	for(i = 0; i < d->nconns; i++){
		struct conn *c = &d->conns[i];

		if(!mqtt__is_open(c->mq)) continue;
		mqtt__disconnect(c->mq, jrc != MQC_OK, 1000);
		conn_closed(c, NULL);
	}
}

void daemon__db_failed(struct daemon *d, int rc, const char *what)
{

	metrics__store_write(MS_ARCHIVE, rc);
	if(!d->db_ok) return;
	log_warnx("%s cannot be written (%s: %s, %s): leaving the broker, which keeps"
			" queueing for the archiver, until a test write succeeds",
			d->archive_path, what, mqc_strerror(rc), d->ar ? archive__errmsg(d->ar) : "not open");
	d->db_ok = false;
	d->db_backoff = BACKOFF_MIN_MS * 2;
	d->db_next_try = time__mono_ms() + d->db_backoff;
	leave_broker(d);
}

/* Open archive.db with its checkpointer thread. */
static int open_archive(struct daemon *d, char *err, size_t errlen)
{
	int rc = datadir__sqlite_no_link(d->archive_path, err, errlen);

	if(rc == MQC_OK) rc = archive__open(d->archive_path, &d->ar, err, errlen);
	if(rc == MQC_OK) rc = archive__start_checkpointer(d->ar, CHECKPOINT_INTERVAL_MS);
	return rc;
}

/* Try to make the archive writable again: (re)open it, write a probe, then
 * the pending messages. On success the connections come back. */
static void db_retry(struct daemon *d, int64_t now)
{
	char err[512];
	int rc, i;

	rc = d->ar ? archive__probe(d->ar) : MQC_ERR_IO;
	if(rc != MQC_OK && rc != MQC_ERR_BUSY){
		/* A read-only or vanished file stays so on an open handle: reopen. */
		archive__close(d->ar);
		d->ar = NULL;
		rc = open_archive(d, err, sizeof(err));
		if(rc == MQC_OK) rc = archive__probe(d->ar);
		else log_debug("%s", err);
	}
	if(rc == MQC_OK) rc = ingest__flush(&d->ing, d->ar, d->udb);
	if(rc != MQC_OK){
		d->db_backoff = backoff_next(d->db_backoff);
		d->db_next_try = now + d->db_backoff;
		log_debug("archive still not writable (%s); next try in %d ms", mqc_strerror(rc), d->db_backoff);
		return;
	}
	log_info("%s is writable again: reconnecting", d->archive_path);
	metrics__store_write(MS_ARCHIVE, MQC_OK);
	d->db_ok = true;
	for(i = 0; i < d->nconns; i++){
		d->conns[i].next_try = now;
		d->conns[i].backoff = BACKOFF_MIN_MS;
		d->conns[i].failing = false;
	}
}

static void flush(struct daemon *d);

/* ---- connection events ---- */

/* The connection c has closed (why: the reason, or NULL when we closed it):
 * schedule the next try. */
/* The broker connections up, for /metrics. */
static void count_up(const struct daemon *d)
{
	int i, n = 0;

	for(i = 0; i < d->nconns; i++) n += d->conns[i].ready_once;
	metrics__set(MG_BROKER_CONNECTIONS, n);
}

static void conn_closed(struct conn *c, const char *why)
{
	struct daemon *d = c->d;

	c->next_try = time__mono_ms() + c->backoff;
	if(why && !d->stop && d->db_ok){
		if(!c->ready_once && !c->failing){
			/* Lost before the broker accepted it (a refusal, a TLS
			 * failure): once per streak at warning level. */
			log_warnx("archiver@%d: connection to %s:%d failed: %s; retrying", c->index,
					d->cfg.host, d->cfg.port, why);
			c->failing = true;
		}else if(c->ready_once){
			log_warnx("archiver@%d: disconnected (%s); reconnecting in %d ms", c->index, why,
					c->backoff);
		}else{
			log_debug("archiver@%d: connection to %s:%d failed: %s", c->index, d->cfg.host,
					d->cfg.port, why);
		}
	}
	c->ready_once = false;
	c->backoff = backoff_next(c->backoff);
	count_up(d);
	if(c->index == 0){
		metrics__broker_up(false);
		metrics__broker_forget();
	}
}

static void subscribe(struct conn *c, const char *filter, bool share)
{
	char buf[256];
	int rc;

	snprintf(buf, sizeof(buf), "%s%s", share ? SHARE_GROUP : "", filter);
	rc = mqtt__subscribe(c->mq, buf);
	if(rc == MQC_OK){
		c->subs_due++;
		c->subs_sent++;
	}else log_warnx("archiver@%d: subscribe %s: %s", c->index, buf, mqc_strerror(rc));
}

/* The broker's and the plugin's figures, on connection 0 while metrics
 * are served. QoS 0: figures are not queued for the session while the
 * archiver is away (with upgrade_outgoing_qos, a QoS 1 subscription would
 * queue them in front of the messages). The plugin lets service accounts
 * read $SYS; a broker that refuses (an older plugin) costs the figures
 * only (on_suback). */
static void subscribe_sys(struct conn *c)
{
	const char *f[2] = {SYS_BROKER_FILTER, SYS_PLUGIN_TOPIC};
	int i, rc;

	for(i = 0; i < 2; i++){
		rc = mqtt__subscribe_qos0(c->mq, f[i]);
		if(rc != MQC_OK){
			log_warnx("archiver@%d: subscribe %s: %s", c->index, f[i], mqc_strerror(rc));
			continue;
		}
		c->sys_sub[i] = c->subs_sent++;
		c->subs_due++;
	}
}

static void unsubscribe(struct conn *c, const char *filter, bool share)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", share ? SHARE_GROUP : "", filter);
	mqtt__unsubscribe(c->mq, buf);
}

static void on_connack(void *arg, bool session_present)
{
	struct conn *c = arg;
	bool share = c->d->nconns > 1;

	log_info("archiver@%d: connected to %s:%d (%s session)", c->index, c->d->cfg.host,
			c->d->cfg.port, session_present ? "resumed" : "new");
	c->ready_once = true;
	c->failing = false;
	c->backoff = BACKOFF_MIN_MS;
	c->subs_due = 0;
	c->subs_sent = c->subacks_seen = 0;
	c->sys_sub[0] = c->sys_sub[1] = -1;
	count_up(c->d);
	if(c->index == 0) metrics__broker_up(true);
	if(c->index == 0 && c->d->spool_dropped_streak > 0){
		log_warnx("%lld request(s) read from the spool while the broker was down were dropped",
				(long long)c->d->spool_dropped_streak);
		c->d->spool_dropped_streak = 0;
	}
	if(c->d->spool){
		/* Everything these filters carry comes from the spool. The session
		 * of an earlier run without it would still hold them, and deliver
		 * every message twice: drop both forms. (What that session had
		 * queued still arrives once and is taken as always.) */
		unsubscribe(c, topic__filter_all(TOPIC_INBOX), false);
		unsubscribe(c, topic__filter_all(TOPIC_ROOM), false);
		unsubscribe(c, topic__filter_all(TOPIC_INBOX), true);
		unsubscribe(c, topic__filter_all(TOPIC_ROOM), true);
		unsubscribe(c, topic__filter_all(TOPIC_RPC_REQ), false);
		unsubscribe(c, topic__filter_all(TOPIC_REGISTER_REQ), false);
		unsubscribe(c, topic__filter_all(TOPIC_SEEN), false);
	}else{
		/* The session keeps these, but say them every time: a new session
		 * or a changed connection count must not leave a filter out. A
		 * filter of the other form (shared or not) left by an earlier run
		 * would deliver everything twice: drop it. */
		subscribe(c, topic__filter_all(TOPIC_INBOX), share);
		subscribe(c, topic__filter_all(TOPIC_ROOM), share);
		unsubscribe(c, topic__filter_all(TOPIC_INBOX), !share);
		unsubscribe(c, topic__filter_all(TOPIC_ROOM), !share);
	}
	/* Requests, and the plugin's device login reports, go to connection
	 * 0 only, so each is answered (stored) once. */
	if(c->d->spool){
		/* Unsubscribed above. */
	}else if(c->index == 0){
		subscribe(c, topic__filter_all(TOPIC_RPC_REQ), false);
		subscribe(c, topic__filter_all(TOPIC_REGISTER_REQ), false);
		subscribe(c, topic__filter_all(TOPIC_SEEN), false);
	}else{
		unsubscribe(c, topic__filter_all(TOPIC_RPC_REQ), false);
		unsubscribe(c, topic__filter_all(TOPIC_REGISTER_REQ), false);
		unsubscribe(c, topic__filter_all(TOPIC_SEEN), false);
	}
	/* Who is online, for the push thread: on connection 0 too. The
	 * retained presence of everyone arrives with each SUBACK, so a
	 * reconnection starts from the broker's state. */
	if(c->index == 0 && c->d->push) subscribe(c, topic__filter_all(TOPIC_PRESENCE), false);
	else unsubscribe(c, topic__filter_all(TOPIC_PRESENCE), false);
	if(c->index == 0 && c->d->metrics){
		subscribe_sys(c);
	}else{
		unsubscribe(c, SYS_BROKER_FILTER, false);
		unsubscribe(c, SYS_PLUGIN_TOPIC, false);
	}
	/* With the spool and neither push nor metrics there is nothing to
	 * subscribe to: ready now (scripts and tests wait for this line). */
	if(c->subs_due == 0) log_info("archiver@%d: subscribed", c->index);
}

static void on_suback(void *arg, const unsigned char *codes, size_t n)
{
	struct conn *c = arg;
	int nth = c->subacks_seen++;
	size_t i;

	if(nth == c->sys_sub[0] || nth == c->sys_sub[1]){
		/* No figures of the broker (or the plugin) in /metrics, and
		 * nothing else lost: said once per run. */
		if(n > 0 && codes[0] >= 0x80 && !c->d->sys_refused_told){
			log_warnx("archiver@%d: the broker refused %s (%s): /metrics has no %s figures (the"
					" plugin lets service accounts read $SYS from this release on)", c->index,
					nth == c->sys_sub[0] ? SYS_BROKER_FILTER : SYS_PLUGIN_TOPIC,
					mqtt__reason(codes[0]), nth == c->sys_sub[0] ? "mosquitto_*" : "mqchat_plugin_*");
			c->d->sys_refused_told = true;
		}
		n = 0;
	}
	for(i = 0; i < n; i++){
		if(codes[i] >= 0x80){
			log_warnx("archiver@%d: the broker refused a subscription (%s, 0x%02x): is %s a"
					" service account?", c->index, mqtt__reason(codes[i]), codes[i],
					c->d->cfg.user);
		}
	}
	if(c->subs_due > 0 && --c->subs_due == 0){
		log_info("archiver@%d: subscribed", c->index);
	}
}

/* Is c's broker still there? The loop may read the spool after the broker
 * died and before it has read the end of c: ask the socket (a request is
 * rare beside messages, so one poll each is cheap). */
static bool peer_open(const struct conn *c)
{
	struct pollfd p = { .fd = mqtt__fd(c->mq), .events = POLLRDHUP };

	if(!mqtt__is_ready(c->mq)) return false;
	if(poll(&p, 1, 0) <= 0) return true;
	return !(p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Hand a request (or a device login report) on to the worker, or refuse
 * it at once if its queue is full: never wait for it here, where every
 * message behind it waits too. A report has nobody to refuse to: it is
 * dropped, which costs a last_seen. */
static void request(struct conn *c, const struct mqtt_msg *msg, enum job_kind kind, bool from_spool)
{
	struct daemon *d = c->d;
	int rc;

	/* From the spool while connection 0 is down: the broker went away,
	 * and with it the asker's connection, so nobody would get the answer.
	 * A device login report needs none: it is stored all the same. */
	if(from_spool && kind != JOB_SEEN && !peer_open(c)){
		if(d->spool_dropped_streak++ == 0){
			log_warnx("requests read from the spool while the broker is down are dropped (their"
					" askers' connections closed with it); counted until it is back");
		}
		metrics__add(MC_REQUESTS_DROPPED, 1);
		return;
	}

	if(!worker__room(d->worker, kind, msg->topic, msg->len)){
		if(kind == JOB_SEEN) log_warnx("a device login report is dropped: too many requests waiting");
		else worker__refuse(c, msg);
		return;
	}
	/* A user asking for history right after sending sees it: the worker
	 * reads archive.db, so commit what is pending first. */
	if(kind == JOB_RPC){
		flush(d);
		if(!d->db_ok) return;
	}
	rc = worker__submit(d->worker, c, kind, msg);
	if(rc == MQC_ERR_BUSY && kind != JOB_SEEN) worker__refuse(c, msg);
	else if(rc != MQC_OK) log_warnx("a request is not answered: %s", mqc_strerror(rc));
}

/* Hand a chat message to ingest and do what it asks: commit a full batch,
 * or leave the broker when it could not keep the message (not
 * acknowledged either, so the broker keeps it). */
static void take(struct daemon *d, const struct mqtt_msg *msg)
{
	switch(ingest__message(&d->ing, msg->topic, msg->payload, msg->len)){
	case INGEST_KEPT:
		break;
	case INGEST_FULL:
		flush(d);
		break;
	case INGEST_NOMEM:
		daemon__db_failed(d, MQC_ERR_NOMEM, "memory");
		break;
	}
}

void daemon__dispatch(struct conn *c, const struct mqtt_msg *msg, bool from_spool)
{
	struct daemon *d = c->d;
	struct topic_parts tp;

	/* $SYS figures (QoS 0) for /metrics: never a chat message. */
	if(msg->topic[0] == '$'){
		metrics__sys_message(msg->topic, msg->payload, msg->len, time__mono_ms());
		return;
	}
	/* Everything under the message filters is ingest's, malformed or not
	 * (it counts those as invalid); requests come only in the shape of
	 * their filter, chat/<kind>/+/req, reports in that of chat/seen/+. */
	topic__parse(msg->topic, &tp);
	if(ingest__takes(msg->topic)){
		take(d, msg);
	}else if(tp.kind == TOPIC_RPC_REQ){
		request(c, msg, JOB_RPC, from_spool);
	}else if(tp.kind == TOPIC_REGISTER_REQ){
		request(c, msg, JOB_REGISTER, from_spool);
	}else if(tp.kind == TOPIC_SEEN){
		request(c, msg, JOB_SEEN, from_spool);
	}else if(tp.kind == TOPIC_PRESENCE){
		push__presence(d->push, tp.a.p, tp.a.n, msg->payload, msg->len);
	}else{
		log_debug("archiver@%d: ignoring a message on an unexpected topic", c->index);
	}
}

static void on_message(void *arg, const struct mqtt_msg *msg)
{
	/* Another node's message, brought by the bus: that node's archiver
	 * stores it (docs/SCALING.md, "Archivers sharing the work"). Only an
	 * archiver that subscribes rather than reads its spool sees one. */
	if(msg->from_bus) return;
	daemon__dispatch(arg, msg, false);
}

/* ---- connections ---- */

static int conn_init(struct daemon *d, int i)
{
	static const struct mqtt_callbacks cb = {
		.on_connack = on_connack,
		.on_suback = on_suback,
		.on_message = on_message,
	};
	struct conn *c = &d->conns[i];
	struct mqtt_opts o;

	c->d = d;
	c->index = i;
	c->backoff = BACKOFF_MIN_MS;
	snprintf(c->client_id, sizeof(c->client_id), "archiver@%d", i);
	memset(&o, 0, sizeof(o));
	o.host = d->cfg.host;
	o.port = d->cfg.port;
	o.client_id = c->client_id;
	o.user = d->cfg.user;
	o.password = d->password;
	o.cafile = d->cfg.cafile;
	o.keepalive = d->cfg.keepalive;
	o.session_expiry = SESSION_EXPIRY_S;
	o.receive_max = RECEIVE_MAXIMUM;
	o.max_packet = MAX_PACKET;
	c->mq = mqtt__new(&o, &cb, c);
	return c->mq ? MQC_OK : MQC_ERR_NOMEM;
}

static void conn_try(struct conn *c, int64_t now)
{
	char err[512];

	if(mqtt__connect(c->mq, err, sizeof(err)) == MQC_OK) return;
	/* Once per failure streak at warning level (the broker down, a wrong
	 * port or CA must be visible without -v), then at debug. */
	if(!c->failing) log_warnx("archiver@%d: cannot connect to %s:%d: %s; retrying",
			c->index, c->d->cfg.host, c->d->cfg.port, err);
	else log_debug("archiver@%d: connect to %s:%d: %s", c->index, c->d->cfg.host, c->d->cfg.port, err);
	c->failing = true;
	c->next_try = now + c->backoff;
	c->backoff = backoff_next(c->backoff);
}

/* Let the PUBACKs (and answers) waiting on c go, once the messages they
 * acknowledge are on file. */
static void conn_send(struct conn *c)
{
	char err[512];
	int rc;

	if(!mqtt__is_open(c->mq)) return;
	rc = ingest__journal_sync(&c->d->ing);
	if(rc != MQC_OK){
		daemon__db_failed(c->d, rc, "journal");
		return;
	}
	if(mqtt__flush(c->mq, err, sizeof(err)) != MQC_OK) conn_closed(c, err);
}

/* Read what one connection has, up to READ_BUDGET bytes, then send the
 * PUBACKs of what was read. */
static void conn_read(struct conn *c)
{
	char err[512];

	if(mqtt__read(c->mq, READ_BUDGET, err, sizeof(err)) != MQC_OK){
		/* Closed: what was read is kept (pending and in the journal
		 * buffer) but was never acknowledged, so the broker sends it
		 * again and dedup drops the second copy. */
		conn_closed(c, err);
		return;
	}
	conn_send(c);
}

/* Commit what waits. Called when the oldest pending message is
 * INGEST_MAX_DELAY_MS old (ingest__due), when ingest says a batch is full,
 * before an RPC answer and at the end. The journal already makes each message
 * durable; the delay costs nothing but the time before a CLI reader sees
 * it. */
static void flush(struct daemon *d)
{
	int rc;

	if(ingest__pending(&d->ing) == 0 || !d->db_ok) return;
	rc = ingest__flush(&d->ing, d->ar, d->udb);
	if(rc != MQC_OK) daemon__db_failed(d, rc, "store");
	else{
		metrics__store_write(MS_ARCHIVE, MQC_OK);
		push__wake(d->push);
	}
}

/* ---- the loop ---- */

static void handle_signals(struct daemon *d)
{
	char buf[16];
	ssize_t n, i;

	while((n = read(d->sigpipe[0], buf, sizeof(buf))) > 0){
		for(i = 0; i < n; i++){
			if(buf[i] == 'H'){
				log_reopen();
				log_info("log reopened");
			}else{
				d->stop = 1;
			}
		}
	}
}

/* Is it time to read the spool? Not while the archive cannot be written
 * (as no connection is read then), nor while connection 0 waits for its
 * CONNACK: a request read then would be dropped though its asker is still
 * there (at start, or back from an archive failure). With the broker down
 * the connection is closed, and storing goes on. */
static bool spool_live(const struct daemon *d)
{
	const struct mqtt *m0 = d->conns[0].mq;

	return d->spool && d->db_ok && !(mqtt__is_open(m0) && !mqtt__is_ready(m0));
}

static void run_loop(struct daemon *d)
{
	struct pollfd fds[CONFIG_MAX_CONNECTIONS + 3];
	int map[CONFIG_MAX_CONNECTIONS + 3];
	int64_t now, wake, next, spool_next = 0;
	char err[512];
	int i, n, timeout;

	while(!d->stop){
		now = time__mono_ms();
		wake = now + 1000;
		if(!d->db_ok){
			if(now >= d->db_next_try) db_retry(d, now);
			if(!d->db_ok && d->db_next_try < wake) wake = d->db_next_try;
		}
		if(d->db_ok){
			next = ingest__due(&d->ing);
			if(next < wake) wake = next;
		}
		if(d->later_head){
			next = later__run(d, now);
			if(next < wake) wake = next;
		}
		if(d->db_ok){
			for(i = 0; i < d->nconns; i++){
				struct conn *c = &d->conns[i];

				if(!mqtt__is_open(c->mq) && now >= c->next_try) conn_try(c, now);
				if(!mqtt__is_open(c->mq)){
					if(c->next_try < wake) wake = c->next_try;
					continue;
				}
				if(mqtt__tick(c->mq, now, &next, err, sizeof(err)) != MQC_OK){
					conn_closed(c, err);
					continue;
				}
				if(next < wake) wake = next;
				if(mqtt__pending(c->mq)) wake = now;
			}
			next = expiry__tick(d, now);
			if(next < wake) wake = next;
		}
		if(spool_live(d) && spool_next < wake) wake = spool_next;

		fds[0].fd = d->sigpipe[0];
		fds[0].events = POLLIN;
		map[0] = -1;
		fds[1].fd = worker__fd(d->worker);
		fds[1].events = POLLIN;
		map[1] = -1;
		/* poll ignores a negative fd: no spool, or not read now. */
		fds[2].fd = spool_live(d) ? spool_in__fd(d->spool) : -1;
		fds[2].events = POLLIN;
		fds[2].revents = 0;
		map[2] = -1;
		n = 3;
		for(i = 0; i < d->nconns; i++){
			struct conn *c = &d->conns[i];

			if(!mqtt__is_open(c->mq)) continue;
			fds[n].fd = mqtt__fd(c->mq);
			/* With the archive unwritable, read nothing more: what is not
			 * read is not acknowledged, and the broker keeps it. */
			fds[n].events = (short)((d->db_ok ? POLLIN : 0) | (mqtt__want_write(c->mq) ? POLLOUT : 0));
			map[n] = i;
			n++;
		}
		now = time__mono_ms();
		timeout = wake > now ? (int)(wake - now) : 0;
		if(poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR){
			log_warn("poll");
		}
		if(fds[0].revents & POLLIN) handle_signals(d);
		if(fds[1].revents & POLLIN) worker__deliver(d->worker, d);
		for(i = 3; i < n; i++){
			struct conn *c = &d->conns[map[i]];

			if(!mqtt__is_open(c->mq)) continue;
			if(d->db_ok && ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) || mqtt__pending(c->mq))){
				conn_read(c);
			}
			if(mqtt__is_open(c->mq) && (fds[i].revents & POLLOUT)) conn_send(c);
		}
		/* Every turn, not only when the thread says so: a read that finds
		 * nothing costs a load, and this way nothing waits on a wake-up
		 * that was spent while the spool was not read. */
		if(spool_live(d)){
			spool_next = spool_in__tick(d->spool, d, time__mono_ms(), fds[2].revents & POLLIN);
		}
		if(time__mono_ms() >= ingest__due(&d->ing)) flush(d);
	}
}

/* Leave cleanly: write what is pending, send the PUBACKs that are due and
 * DISCONNECT (the session and everything the broker still holds for it
 * stay). */
static void shutdown_all(struct daemon *d)
{
	if(ingest__pending(&d->ing) && ingest__flush(&d->ing, d->ar, d->udb) != MQC_OK){
		log_warnx("%zu message(s) could not be archived; they stay in %s for the next start",
				ingest__pending(&d->ing), ingest__journal_path(&d->ing));
	}
	leave_broker(d);
}

static void daemon_cleanup(struct daemon *d)
{
	int i;

	/* Before the connections go: it may hand answers to them. */
	worker__stop(d->worker, d);
	d->worker = NULL;
	spool_in__stop(d->spool);
	d->spool = NULL;
	push__stop(d->push);
	d->push = NULL;
	http__stop(d->http);
	d->http = NULL;
	metrics_http__stop(d->metrics);
	d->metrics = NULL;
	for(i = 0; i < CONFIG_MAX_CONNECTIONS; i++){
		mqtt__free(d->conns[i].mq);
		d->conns[i].mq = NULL;
	}
	ingest__cleanup(&d->ing);
	expiry__cleanup(&d->exp);
	later__cleanup(d);
	archive__close(d->ar);
	userdb__close(d->udb);
	if(d->sigpipe[0] >= 0) close(d->sigpipe[0]);
	if(d->sigpipe[1] >= 0) close(d->sigpipe[1]);
	sigpipe_w = -1;
	memset(d->password, 0, sizeof(d->password));
	config__cleanup(&d->cfg);
}

/* A data folder made before the fast secret form: store the service
 * password in it (common/userdb.h), so failing logins on our name can
 * never keep us out. Not fatal: the old form still logs in. */
static void upgrade_secret(struct daemon *d)
{
	bool changed = false;
	int rc = userdb__service_secret(d->udb, d->cfg.user, d->password, &changed);

	if(rc != MQC_OK){
		log_warnx("cannot store the service password in its fast form: %s", mqc_strerror(rc));
	}else if(changed){
		log_info("the service password of %s is now stored in its fast form", d->cfg.user);
	}
}

static bool data_path(const struct daemon *d, const char *name, char *out, size_t outlen)
{
	const char *dir = d->cfg.datadir;
	size_t len = strlen(dir);
	int n;

	n = snprintf(out, outlen, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
	return n > 0 && (size_t)n < outlen;
}

/* Root only where no one else can plant a file: MQC_OK unless this runs as
 * root on a data folder that another user owns, or that its group or
 * others may write. Such a user could put links there for root to follow
 * (the journal truncated, a root-only file sent as the password), so the
 * archiver must run as that user instead, as `make run` does. */
static int refuse_root(const char *dir, char *err, size_t errlen)
{
	struct passwd *pw;
	struct stat st;
	char uid[32];

	if(geteuid() != 0) return MQC_OK;
	if(stat(dir, &st) != 0) return MQC_OK;   /* the lock below says why */
	if(st.st_uid == 0 && (st.st_mode & 022) == 0) return MQC_OK;
	pw = getpwuid(st.st_uid);
	snprintf(uid, sizeof(uid), "uid %ld", (long)st.st_uid);
	mqc_seterr(err, errlen, "refusing to run as root on %s (owned by %s, mode %04o): a user who"
			" may write there could make root follow links it planted; run the archiver as %s"
			" (e.g. runuser -u %s -- mqchat-archiver --data %s run), as make run does",
			dir, pw ? pw->pw_name : uid, (unsigned)(st.st_mode & 07777),
			pw ? pw->pw_name : "the folder's owner", pw ? pw->pw_name : uid, dir);
	return MQC_ERR_PERM;
}

/* Serve the web app when http_port says so (http.h). MQC_OK (also when
 * there is nothing to serve), or an error with err filled. */
static int start_http(struct daemon *d, char *err, size_t errlen)
{
	struct http_opts o = {
		.bind = d->cfg.http_bind,
		.port = d->cfg.http_port,
		.dir = d->cfg.web_dir,
		.mqtt_url = d->cfg.web_mqtt_url,
	};

	if(d->cfg.http_port == 0) return MQC_OK;
	if(d->cfg.web_dir == NULL){
		mqc_seterr(err, errlen, "http_port %d needs web_dir, the folder to serve (make web builds"
				" BUILD/web)", d->cfg.http_port);
		return MQC_ERR_INVAL;
	}
	return http__start(&o, &d->http, err, errlen);
}

/* Serve /metrics and /health when metrics_port says so (metrics_http.h).
 * MQC_OK (also when there is nothing to serve), or an error with err
 * filled. */
static int start_metrics(struct daemon *d, char *err, size_t errlen)
{
	struct metrics_http_opts o = {
		.bind = d->cfg.metrics_bind,
		.port = d->cfg.metrics_port,
		.datadir = d->cfg.datadir,
		.push = d->cfg.push != 0,
	};

	if(d->cfg.metrics_port == 0) return MQC_OK;
	return metrics_http__start(&o, &d->metrics, err, errlen);
}

int daemon__main(const char *datadir, int argc, char **argv)
{
	static struct daemon dd;
	struct daemon *d = &dd;
	char err[1024], journal_path[4096];
	int rc, i, status = 1, lock_fd = -1;

	memset(d, 0, sizeof(*d));
	d->sigpipe[0] = d->sigpipe[1] = -1;
	ingest__init(&d->ing);
	archive__library_init();
	if(config__defaults(&d->cfg, datadir) != MQC_OK){
		fprintf(stderr, "Error: out of memory\n");
		goto done;
	}
	rc = config__parse_args(&d->cfg, argc, argv, err, sizeof(err));
	if(rc != MQC_OK){
		if(strcmp(err, "help") == 0){
			printf("usage: mqchat-archiver [--data DIR] %s\n", CONFIG_USAGE);
			status = 0;
		}else{
			fprintf(stderr, "Error: %s\nusage: mqchat-archiver [--data DIR] %s\n", err, CONFIG_USAGE);
			status = rc == MQC_ERR_IO ? 1 : 2;
		}
		goto done;
	}
	log_init("mqchat-archiver", LOG_LVL_INFO + d->cfg.verbose);
	if(d->cfg.log && log_open(d->cfg.log) != 0){
		fprintf(stderr, "Error: cannot open log %s: %s\n", d->cfg.log, strerror(errno));
		goto done;
	}
	if(!data_path(d, "archive.db", d->archive_path, sizeof(d->archive_path))
			|| !data_path(d, "auth.db", d->auth_path, sizeof(d->auth_path))
			|| !data_path(d, "archive.journal", journal_path, sizeof(journal_path))){
		log_error("data folder path too long");
		goto done;
	}
	if(refuse_root(d->cfg.datadir, err, sizeof(err)) != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	/* Before anything in the folder is read or written: a second daemon on
	 * the same journal and archive would take messages the first one
	 * acknowledged. Held until exit; the kernel drops it if we are killed. */
	if(datalock__take(d->cfg.datadir, DATALOCK_ARCHIVER, "mqchat-archiver run", &lock_fd,
			err, sizeof(err)) != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	/* Wrong push settings stop the start, as any bad setting does. */
	if(d->cfg.push && push__check_config(&d->cfg, err, sizeof(err)) != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	/* Early, so that a wrong folder or a taken port stops the start before
	 * anything is opened (one process per data folder: the lock first). */
	if(start_http(d, err, sizeof(err)) != MQC_OK){
		log_error("http: %s", err);
		goto done;
	}
	if(start_metrics(d, err, sizeof(err)) != MQC_OK){
		log_error("metrics: %s", err);
		goto done;
	}
	if(config__read_password(&d->cfg, d->password, sizeof(d->password), err, sizeof(err)) != MQC_OK){
		log_error("cannot read the service password: %s", err);
		goto done;
	}
	/* On PostgreSQL (DATA/store.conf) no file to look for: the open says
	 * what is wrong. */
	if(store_conf__auth_is_file(d->cfg.datadir)
			&& datadir__need_file(d->cfg.datadir, d->auth_path, err, sizeof(err)) != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	rc = datadir__sqlite_no_link(d->auth_path, err, sizeof(err));
	if(rc == MQC_OK) rc = userdb__open(d->auth_path, 0, &d->udb, err, sizeof(err));
	if(rc != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	upgrade_secret(d);
	d->db_ok = true;
	rc = open_archive(d, err, sizeof(err));
	if(rc == MQC_ERR_SCHEMA || rc == MQC_ERR_INVAL || rc == MQC_ERR_PERM){
		log_error("%s", err);
		goto done;
	}
	if(rc == MQC_OK) rc = archive__probe(d->ar);
	if(rc != MQC_OK){
		daemon__db_failed(d, rc, "open");
	}
	if(ingest__journal_open(&d->ing, journal_path) != MQC_OK) goto done;
	if(setup_signals(d) != MQC_OK){
		log_warn("signals");
		goto done;
	}
	d->nconns = d->cfg.connections;
	if(d->cfg.spool && d->nconns > 1){
		/* More connections shared the broker's deliveries; with the spool
		 * there are none, and answers go out on connection 0. */
		log_info("spool yes: one broker connection (connections = %d is for the subscriptions"
				" the spool replaces)", d->nconns);
		d->nconns = 1;
	}
	for(i = 0; i < d->nconns; i++){
		if(conn_init(d, i) != MQC_OK){
			log_error("out of memory");
			goto done;
		}
	}
	if(worker__start(d, &d->worker) != MQC_OK){
		log_error("cannot start the thread that answers requests");
		goto done;
	}
	if(d->cfg.spool && spool_in__start(d->cfg.datadir, &d->spool, err, sizeof(err)) != MQC_OK){
		log_error("spool: %s", err);
		goto done;
	}
	d->exp.next_run = time__mono_ms() + 1000;
	if(d->db_ok && ingest__pending(&d->ing)){
		size_t n = ingest__pending(&d->ing);

		rc = ingest__flush(&d->ing, d->ar, d->udb);
		if(rc != MQC_OK) daemon__db_failed(d, rc, "journal replay");
		else log_info("journal replayed: %zu message(s)", n);
	}
	/* After the replay, so that a new push.db starts after what was
	 * there. A bad key stops the start like a bad setting, and so does a
	 * push.db newer than this program (a downgrade: what it holds is not
	 * ours to ignore); a store it cannot open costs notifications, not
	 * storing. */
	if(d->cfg.push){
		rc = push__start(&d->cfg, d->archive_path, d->auth_path, &d->push, err, sizeof(err));
		if(rc == MQC_ERR_INVAL || rc == MQC_ERR_SCHEMA){
			log_error("%s", err);
			goto done;
		}
		if(rc != MQC_OK) log_warnx("push: off: %s", err);
	}
	log_info("archiving %s:%d into %s (%d connection%s%s, retention %d days, registration %s)",
			d->cfg.host, d->cfg.port, store_conf__auth_is_file(d->cfg.datadir) ? d->archive_path
			: "schema archive on PostgreSQL", d->nconns, d->nconns > 1 ? "s" : "",
			d->spool ? ", messages from the spool" : "", d->cfg.retention_days,
			registration__name(d->cfg.registration));

	run_loop(d);

	/* No new page loads (or scrapes) while the archiver stops. */
	http__stop(d->http);
	d->http = NULL;
	metrics_http__stop(d->metrics);
	d->metrics = NULL;
	/* Its last answers go out before the DISCONNECT. */
	worker__stop(d->worker, d);
	d->worker = NULL;
	/* Requests in flight get their grace (PUSH_STOP_GRACE_MS); the rest
	 * stays in push.db. */
	push__stop(d->push);
	d->push = NULL;
	shutdown_all(d);
	log_info("stopped: %lld stored, %lld duplicates, %lld receipts, %lld invalid, %lld requests,"
			" %lld registrations, %lld expired; %lld commits, %lld journal writes",
			(long long)d->ing.stats.stored, (long long)d->ing.stats.duplicates,
			(long long)d->ing.stats.receipts, (long long)d->ing.stats.invalid, (long long)d->stats.rpc,
			(long long)d->stats.registrations, (long long)d->stats.expired,
			(long long)d->ing.stats.batches, (long long)d->ing.stats.journal_writes);
	status = 0;
done:
	daemon_cleanup(d);
	if(lock_fd >= 0) close(lock_fd);
	return status;
}
