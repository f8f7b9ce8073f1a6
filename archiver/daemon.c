/* daemon.c - the archiver daemon: setup, the poll loop, broker connections. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "archive.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"
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
/* Packets read from one connection per poll wake-up, so K connections and
 * the timers take turns. */
#define READ_BURST 256
/* How often the checkpointer thread copies the WAL into archive.db. */
#define CHECKPOINT_INTERVAL_MS 200

static int sigpipe_w = -1;

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

void daemon__reply(struct conn *c, const char *topic, json_t *resp,
		const struct mqtt5__property *req_props)
{
	mosquitto_property *props = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;
	char *text;
	int rc;

	if(resp == NULL){
		log_warnx("out of memory building an answer on %s", topic);
		return;
	}
	text = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if(text == NULL){
		log_warnx("out of memory building an answer on %s", topic);
		return;
	}
	if(req_props && mosquitto_property_read_binary(req_props, MQTT_PROP_CORRELATION_DATA,
				&corr, &corr_len, false)){
		if(mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, corr_len)){
			props = NULL;
		}
		free(corr);
	}
	rc = mosquitto_publish_v5(c->mosq, NULL, topic, (int)strlen(text), text, 1, false, props);
	if(rc != MOSQ_ERR_SUCCESS){
		log_warnx("cannot answer on %s: %s", topic, mosquitto_strerror(rc));
	}
	mosquitto_property_free_all(&props);
	free(text);
}

void daemon__db_failed(struct daemon *d, int rc, const char *what)
{
	int i;

	if(!d->db_ok) return;
	log_warnx("%s cannot be written (%s: %s, %s): leaving the broker, which keeps"
			" queueing for the archiver, until a test write succeeds",
			d->archive_path, what, mqc_strerror(rc), d->ar ? archive__errmsg(d->ar) : "not open");
	d->db_ok = false;
	d->db_backoff = BACKOFF_MIN_MS * 2;
	d->db_next_try = time__mono_ms() + d->db_backoff;
	for(i = 0; i < d->nconns; i++){
		if(d->conns[i].open) mosquitto_disconnect(d->conns[i].mosq);
	}
}

/* Open archive.db with its checkpointer thread. */
static int open_archive(struct daemon *d, char *err, size_t errlen)
{
	int rc = archive__open(d->archive_path, &d->ar, err, errlen);

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
	if(rc == MQC_OK) rc = ingest__flush(d);
	if(rc != MQC_OK){
		d->db_backoff = d->db_backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->db_backoff * 2;
		d->db_next_try = now + d->db_backoff;
		log_debug("archive still not writable (%s); next try in %d ms", mqc_strerror(rc), d->db_backoff);
		return;
	}
	log_info("%s is writable again: reconnecting", d->archive_path);
	d->db_ok = true;
	for(i = 0; i < d->nconns; i++){
		d->conns[i].next_try = now;
		d->conns[i].backoff = BACKOFF_MIN_MS;
	}
}

static void flush(struct daemon *d);

/* ---- libmosquitto callbacks ---- */

static void subscribe(struct conn *c, const char *filter, bool share)
{
	char buf[256];
	int rc;

	snprintf(buf, sizeof(buf), "%s%s", share ? SHARE_GROUP : "", filter);
	rc = mosquitto_subscribe_v5(c->mosq, NULL, buf, 1, 0, NULL);
	if(rc == MOSQ_ERR_SUCCESS) c->subs_due++;
	else log_warnx("archiver@%d: subscribe %s: %s", c->index, buf, mosquitto_strerror(rc));
}

static void unsubscribe(struct conn *c, const char *filter, bool share)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", share ? SHARE_GROUP : "", filter);
	mosquitto_unsubscribe_v5(c->mosq, NULL, buf, NULL);
}

static void on_connect_cb(struct mosquitto *mosq, void *obj, int rc, int flags,
		const mosquitto_property *props)
{
	struct conn *c = obj;
	bool share = c->d->nconns > 1;

	(void)mosq;
	(void)props;
	if(rc != 0){
		log_warnx("archiver@%d: the broker refused the connection: %s", c->index,
				mosquitto_reason_string(rc));
		return;
	}
	log_info("archiver@%d: connected to %s:%d (%s session)", c->index, c->d->cfg.host,
			c->d->cfg.port, (flags & 1) ? "resumed" : "new");
	c->ready = true;
	c->failing = false;
	c->backoff = BACKOFF_MIN_MS;
	c->subs_due = 0;
	/* The session keeps these, but say them every time: a new session or a
	 * changed connection count must not leave a filter out. A filter of
	 * the other form (shared or not) left by an earlier run would deliver
	 * everything twice: drop it. */
	subscribe(c, "chat/inbox/#", share);
	subscribe(c, "chat/room/#", share);
	unsubscribe(c, "chat/inbox/#", !share);
	unsubscribe(c, "chat/room/#", !share);
	/* Requests go to connection 0 only, so each is answered once. */
	if(c->index == 0){
		subscribe(c, "chat/rpc/+/req", false);
		subscribe(c, "chat/register/+/req", false);
	}else{
		unsubscribe(c, "chat/rpc/+/req", false);
		unsubscribe(c, "chat/register/+/req", false);
	}
}

static void on_subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted_qos, const mosquitto_property *props)
{
	struct conn *c = obj;
	int i;

	(void)mosq;
	(void)mid;
	(void)props;
	for(i = 0; i < qos_count; i++){
		if(granted_qos[i] > 2){
			log_warnx("archiver@%d: the broker refused a subscription (0x%02x): is %s a service account?",
					c->index, granted_qos[i], c->d->cfg.user);
		}
	}
	if(c->subs_due > 0 && --c->subs_due == 0){
		log_info("archiver@%d: subscribed", c->index);
	}
}

static void on_disconnect_cb(struct mosquitto *mosq, void *obj, int rc,
		const mosquitto_property *props)
{
	struct conn *c = obj;

	(void)mosq;
	(void)props;
	c->open = false;
	c->ready = false;
	c->next_try = time__mono_ms() + c->backoff;
	if(!c->d->stop && c->d->db_ok){
		log_warnx("archiver@%d: disconnected (%s); reconnecting in %d ms", c->index,
				mosquitto_strerror(rc), c->backoff);
	}
	c->backoff = c->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff * 2;
}

static void on_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct conn *c = obj;
	struct daemon *d = c->d;

	(void)mosq;
	/* The PUBACK is already on its way: from here the message is ours. */
	if(strncmp(msg->topic, "chat/inbox/", 11) == 0 || strncmp(msg->topic, "chat/room/", 10) == 0){
		d->msg_t0 = time__mono_ns();
		ingest__message(d, msg->topic, msg->payload, (size_t)msg->payloadlen);
	}else if(strncmp(msg->topic, "chat/rpc/", 9) == 0){
		/* A user asking for history right after sending sees it. */
		flush(d);
		rpc__handle(c, msg, props);
	}else if(strncmp(msg->topic, "chat/register/", 14) == 0){
		register__handle(c, msg, props);
	}else{
		log_debug("archiver@%d: ignoring a message on an unexpected topic", c->index);
	}
}

/* ---- connections ---- */

static int conn_init(struct daemon *d, int i)
{
	struct conn *c = &d->conns[i];
	char id[64];
	int rc;

	c->d = d;
	c->index = i;
	c->backoff = BACKOFF_MIN_MS;
	snprintf(id, sizeof(id), "archiver@%d", i);
	c->mosq = mosquitto_new(id, false, c);
	if(c->mosq == NULL) return MQC_ERR_NOMEM;
	rc = mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_username_pw_set(c->mosq, d->cfg.user, d->password);
	if(rc == MOSQ_ERR_SUCCESS && d->cfg.cafile){
		rc = mosquitto_tls_set(c->mosq, d->cfg.cafile, NULL, NULL, NULL, NULL);
	}
	if(rc != MOSQ_ERR_SUCCESS){
		log_warnx("archiver@%d: %s", i, mosquitto_strerror(rc));
		return MQC_ERR_INVAL;
	}
	mosquitto_connect_v5_callback_set(c->mosq, on_connect_cb);
	mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect_cb);
	mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe_cb);
	mosquitto_message_v5_callback_set(c->mosq, on_message_cb);
	return MQC_OK;
}

static void conn_try(struct conn *c, int64_t now)
{
	mosquitto_property *props = NULL;
	int rc;

	mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_S);
	mosquitto_property_add_int16(&props, MQTT_PROP_RECEIVE_MAXIMUM, RECEIVE_MAXIMUM);
	rc = mosquitto_connect_bind_v5(c->mosq, c->d->cfg.host, c->d->cfg.port,
			c->d->cfg.keepalive, NULL, props);
	mosquitto_property_free_all(&props);
	if(rc != MOSQ_ERR_SUCCESS){
		/* Once per failure streak at warning level (the broker down, a
		 * wrong port or CA must be visible without -v), then at debug. */
		if(!c->failing) log_warnx("archiver@%d: cannot connect to %s:%d: %s; retrying",
				c->index, c->d->cfg.host, c->d->cfg.port,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		else log_debug("archiver@%d: connect to %s:%d: %s", c->index, c->d->cfg.host, c->d->cfg.port,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		c->failing = true;
		c->next_try = now + c->backoff;
		c->backoff = c->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff * 2;
		return;
	}
	c->open = true;
}

/* Read what one connection has, up to READ_BURST packets (libmosquitto
 * reads one packet per call whatever max_packets says). */
static void conn_read(struct conn *c)
{
	int i, rc;

	for(i = 0; i < READ_BURST && c->open && c->d->db_ok; i++){
		errno = 0;
		rc = mosquitto_loop_read(c->mosq, 1);
		if(rc != MOSQ_ERR_SUCCESS){
			if(c->open){
				/* The library closed the socket; make sure we know. Before
				 * a CONNACK that is a failed connection (a TLS handshake
				 * with the wrong CA, say): say so once per streak. */
				if(!c->ready && !c->failing){
					log_warnx("archiver@%d: connection to %s:%d lost before the broker"
							" accepted it (%s); retrying", c->index, c->d->cfg.host,
							c->d->cfg.port, rc == MOSQ_ERR_ERRNO ? strerror(errno)
							: mosquitto_strerror(rc));
					c->failing = true;
				}
				c->open = false;
				c->ready = false;
				c->next_try = time__mono_ms() + c->backoff;
			}
			return;
		}
		if(errno == EAGAIN || errno == EWOULDBLOCK) return;
	}
}

/* Commit what waits. Called when the oldest pending message is
 * INGEST_MAX_DELAY_MS old, before an RPC answer and at the end; ingest.c
 * commits a full batch itself. Never when the socket merely runs dry: the
 * broker hands a QoS 1 subscriber one message per loop pass, so the socket
 * is dry after nearly every message and that meant a commit per message.
 * The journal already makes each message durable; the delay costs nothing
 * but the time before a CLI reader sees it. */
static void flush(struct daemon *d)
{
	int rc;

	if(d->pend_head == NULL || !d->db_ok) return;
	rc = ingest__flush(d);
	if(rc != MQC_OK) daemon__db_failed(d, rc, "store");
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

static void run_loop(struct daemon *d)
{
	struct pollfd fds[CONFIG_MAX_CONNECTIONS + 1];
	int map[CONFIG_MAX_CONNECTIONS + 1];
	int64_t now, wake, next_exp;
	int i, n, timeout;

	while(!d->stop){
		now = time__mono_ms();
		wake = now + 1000;
		if(!d->db_ok){
			if(now >= d->db_next_try) db_retry(d, now);
			if(!d->db_ok && d->db_next_try < wake) wake = d->db_next_try;
		}
		if(d->db_ok && d->pend_head){
			if(d->pend_since + INGEST_MAX_DELAY_MS < wake) wake = d->pend_since + INGEST_MAX_DELAY_MS;
		}
		if(d->db_ok){
			for(i = 0; i < d->nconns; i++){
				struct conn *c = &d->conns[i];

				if(!c->open && now >= c->next_try) conn_try(c, now);
				if(!c->open && c->next_try < wake) wake = c->next_try;
			}
			next_exp = expiry__tick(d, now);
			if(next_exp < wake) wake = next_exp;
		}

		fds[0].fd = d->sigpipe[0];
		fds[0].events = POLLIN;
		map[0] = -1;
		n = 1;
		for(i = 0; i < d->nconns; i++){
			struct conn *c = &d->conns[i];
			int sock;

			if(!c->open) continue;
			sock = mosquitto_socket(c->mosq);
			if(sock < 0) continue;
			fds[n].fd = sock;
			/* With the archive unwritable, read nothing more: what is not
			 * read is not acknowledged, and the broker keeps it. */
			fds[n].events = (short)((d->db_ok ? POLLIN : 0) | (mosquitto_want_write(c->mosq) ? POLLOUT : 0));
			map[n] = i;
			n++;
		}
		now = time__mono_ms();
		timeout = wake > now ? (int)(wake - now) : 0;
		if(poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR){
			log_warn("poll");
		}
		if(fds[0].revents & POLLIN) handle_signals(d);
		for(i = 1; i < n; i++){
			struct conn *c = &d->conns[map[i]];

			if(!c->open) continue;
			if(fds[i].revents & (POLLIN | POLLERR | POLLHUP)){
				if(d->db_ok){
					conn_read(c);
				}else if(fds[i].revents & (POLLERR | POLLHUP)){
					mosquitto_loop_read(c->mosq, 1);
				}
			}
			if(c->open && (fds[i].revents & POLLOUT)) mosquitto_loop_write(c->mosq, 1);
		}
		if(d->pend_head && time__mono_ms() - d->pend_since >= INGEST_MAX_DELAY_MS){
			flush(d);
		}
		for(i = 0; i < d->nconns; i++){
			struct conn *c = &d->conns[i];

			if(!c->open) continue;
			if(mosquitto_want_write(c->mosq)) mosquitto_loop_write(c->mosq, 1);
			if(c->open) mosquitto_loop_misc(c->mosq);
		}
	}
}

/* Leave cleanly: write what is pending, say DISCONNECT (the session and
 * everything the broker still holds for it stay), wait a little for the
 * packets to go out. */
static void shutdown_all(struct daemon *d)
{
	int64_t deadline;
	int i, busy;

	if(d->pend_head && ingest__flush(d) != MQC_OK){
		log_warnx("%zu message(s) could not be archived; they stay in %s for the next start",
				d->npending, d->journal_path);
	}
	for(i = 0; i < d->nconns; i++){
		if(d->conns[i].open) mosquitto_disconnect(d->conns[i].mosq);
	}
	deadline = time__mono_ms() + 1000;
	do{
		busy = 0;
		for(i = 0; i < d->nconns; i++){
			struct conn *c = &d->conns[i];

			if(c->open && mosquitto_want_write(c->mosq)){
				mosquitto_loop_write(c->mosq, 1);
				busy = 1;
			}
		}
	}while(busy && time__mono_ms() < deadline);
}

static void daemon_cleanup(struct daemon *d)
{
	int i;
	struct pending *p, *next;

	for(i = 0; i < CONFIG_MAX_CONNECTIONS; i++){
		if(d->conns[i].mosq) mosquitto_destroy(d->conns[i].mosq);
		d->conns[i].mosq = NULL;
	}
	for(p = d->pend_head; p; p = next){
		next = p->next;
		free(p);   /* the topic is in the same allocation (ingest__keep) */
	}
	d->pend_head = d->pend_tail = NULL;
	expiry__cleanup(&d->exp);
	archive__close(d->ar);
	userdb__close(d->udb);
	if(d->journal_fd >= 0) close(d->journal_fd);
	if(d->sigpipe[0] >= 0) close(d->sigpipe[0]);
	if(d->sigpipe[1] >= 0) close(d->sigpipe[1]);
	sigpipe_w = -1;
	memset(d->password, 0, sizeof(d->password));
	config__cleanup(&d->cfg);
}

static bool data_path(const struct daemon *d, const char *name, char *out, size_t outlen)
{
	const char *dir = d->cfg.datadir;
	size_t len = strlen(dir);
	int n;

	n = snprintf(out, outlen, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
	return n > 0 && (size_t)n < outlen;
}

int daemon__main(const char *datadir, int argc, char **argv)
{
	static struct daemon dd;
	struct daemon *d = &dd;
	char err[1024];
	int rc, i, status = 1;

	memset(d, 0, sizeof(*d));
	d->sigpipe[0] = d->sigpipe[1] = -1;
	d->journal_fd = -1;
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
			|| !data_path(d, "archive.journal", d->journal_path, sizeof(d->journal_path))){
		log_error("data folder path too long");
		goto done;
	}
	if(config__read_password(&d->cfg, d->password, sizeof(d->password), err, sizeof(err)) != MQC_OK){
		log_error("cannot read the service password: %s", err);
		goto done;
	}
	rc = userdb__open(d->auth_path, 0, &d->udb, err, sizeof(err));
	if(rc != MQC_OK){
		log_error("%s", err);
		goto done;
	}
	d->db_ok = true;
	rc = open_archive(d, err, sizeof(err));
	if(rc == MQC_ERR_SCHEMA || rc == MQC_ERR_INVAL){
		log_error("%s", err);
		goto done;
	}
	if(rc == MQC_OK) rc = archive__probe(d->ar);
	if(rc != MQC_OK){
		daemon__db_failed(d, rc, "open");
	}
	if(ingest__journal_open(d) != MQC_OK) goto done;
	if(setup_signals(d) != MQC_OK){
		log_warn("signals");
		goto done;
	}
	mosquitto_lib_init();
	d->nconns = d->cfg.connections;
	for(i = 0; i < d->nconns; i++){
		if(conn_init(d, i) != MQC_OK) goto done_lib;
	}
	d->reg_tokens = 20;
	d->reg_last = time__mono_ms();
	d->exp.next_run = time__mono_ms() + 1000;
	if(d->db_ok && d->pend_head){
		size_t n = d->npending;

		rc = ingest__flush(d);
		if(rc != MQC_OK) daemon__db_failed(d, rc, "journal replay");
		else log_info("journal replayed: %zu message(s)", n);
	}
	log_info("archiving %s:%d into %s (%d connection%s, retention %d days, registration %s)",
			d->cfg.host, d->cfg.port, d->archive_path, d->nconns, d->nconns > 1 ? "s" : "",
			d->cfg.retention_days, reg_mode__name(d->cfg.registration));

	run_loop(d);

	shutdown_all(d);
	log_info("stopped: %lld stored, %lld duplicates, %lld receipts, %lld invalid, %lld requests,"
			" %lld registrations, %lld expired; %lld commits",
			(long long)d->stats.stored, (long long)d->stats.duplicates,
			(long long)d->stats.receipts, (long long)d->stats.invalid, (long long)d->stats.rpc,
			(long long)d->stats.registrations, (long long)d->stats.expired,
			(long long)d->stats.batches);
	if(d->stats.window_n){
		log_info("PUBACK-to-journal window: mean %.1f us, max %.1f us over %lld messages",
				(double)d->stats.window_ns_sum / (double)d->stats.window_n / 1000.0,
				(double)d->stats.window_ns_max / 1000.0, (long long)d->stats.window_n);
	}
	status = 0;
done_lib:
	daemon_cleanup(d);
	mosquitto_lib_cleanup();
	return status;
done:
	daemon_cleanup(d);
	return status;
}
