/* session.c - one MQTT 5 connection of the chat client (see session.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <openssl/crypto.h>

#include "session.h"
#include "timeutil.h"
#include "token.h"

#define KEEPALIVE_S 30
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 4000

/* Messages of the connect path; a probe (login.c) wants none. */
#define say(s, ...) do{ if(!(s)->silent) util__error(__VA_ARGS__); }while(0)

volatile sig_atomic_t session_stop;

static void on_signal(int sig)
{
	(void)sig;
	session_stop = 1;
}

void session__signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll() returns at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int64_t session__deadline(const struct session *s)
{
	int64_t d = time__mono_ms() + (int64_t)s->opt->timeout_s * 1000;

	return s->until && s->until < d ? s->until : d;
}

/* ---- callbacks: they only record ---- */

static void resubscribe(struct session *s)
{
	int i;

	for(i=0; i<s->nsubs; i++){
		mosquitto_subscribe_v5(s->mosq, NULL, s->subs[i].topic, s->subs[i].qos, 0, NULL);
	}
}

static void connect_cb(struct mosquitto *mosq, void *ud, int rc, int flags,
		const mosquitto_property *props)
{
	struct session *s = ud;

	(void)mosq;
	(void)props;
	s->connack = rc;
	if(rc != 0){
		if(s->ever_connected){
			fprintf(stderr, "Error: reconnect refused: %s%s\n", mosquitto_reason_string(rc),
					s->use_token ? " (the device token was revoked or replaced: run a "
					"command with the password to log in again)" : "");
			s->fatal = (rc == MQTT_RC_BAD_USERNAME_OR_PASSWORD || rc == MQTT_RC_NOT_AUTHORIZED)
				? EXIT_AUTH : EXIT_UNREACH;
		}
		return;
	}
	s->connected = true;
	s->connected_at = time__mono_ms();
	/* Backoff restarts only after a connection that lasted (see below). */
	if(s->quick_losses == 0) s->backoff_ms = BACKOFF_MIN_MS;
	if(s->ever_connected){
		fprintf(stderr, "reconnected%s\n", (flags & 1) ? "" : " (new session)");
		/* Without the old session the broker forgot our subscriptions,
		 * and what it had queued for us: the archive has it. */
		if(!(flags & 1)){
			resubscribe(s);
			s->resyncs++;
		}
	}
	s->ever_connected = true;
}

static void disconnect_cb(struct mosquitto *mosq, void *ud, int rc,
		const mosquitto_property *props)
{
	struct session *s = ud;

	(void)mosq;
	(void)props;
	if(s->connected && s->reconnect && !session_stop){
		fprintf(stderr, "connection lost (%s), reconnecting\n",
				rc ? mosquitto_strerror(rc) : "closed");
		/* Mosquitto 2.0 closes a session taken over by the same client id
		 * without a reason code: two programs with one id would throw
		 * each other out for ever. Connections that die young keep the
		 * backoff growing, and the user gets a hint. */
		if(time__mono_ms() - s->connected_at < 2000){
			if(++s->quick_losses == 3){
				fprintf(stderr, "warning: the connection keeps closing right after it opens; "
						"is another listen or chat running as %s? (use --device)\n",
						s->client_id);
			}
			/* Which of the two gives way: the one that was there first
			 * (its connection had lasted when this began), so the one
			 * just started on another machine wins; one that never had
			 * a lasting connection gives way later, if the other never
			 * does (a listen, which does not pause). */
			if(s->pause_on_takeover
					&& s->quick_losses >= (s->lasted_then_lost ? 3 : 8)){
				s->taken_over = true;
			}
		}else{
			s->quick_losses = 0;
			s->lasted_then_lost = true;
		}
	}
	s->connected = false;
	s->retry_at = time__mono_ms() + s->backoff_ms;
}

static void subscribe_cb(struct mosquitto *mosq, void *ud, int mid, int n,
		const int *granted, const mosquitto_property *props)
{
	struct session *s = ud;
	int i;

	(void)mosq;
	(void)props;
	if(mid != s->wait_mid) return;
	s->ngranted = n < 64 ? n : 64;
	for(i=0; i<s->ngranted; i++) s->granted[i] = granted[i];
	s->wait_done = true;
}

static void unsubscribe_cb(struct mosquitto *mosq, void *ud, int mid,
		const mosquitto_property *props)
{
	struct session *s = ud;

	(void)mosq;
	(void)props;
	if(mid == s->wait_mid) s->wait_done = true;
}

static void publish_cb(struct mosquitto *mosq, void *ud, int mid, int reason,
		const mosquitto_property *props)
{
	struct session *s = ud;
	int i;

	(void)mosq;
	(void)props;
	s->acks++;
	for(i=0; i<s->npubs; i++){
		if(s->pubs[i].mid != mid) continue;
		if(s->pubs[i].track){
			s->pubs[i].done = true;
			s->pubs[i].reason = reason;
		}else{
			if(reason >= 0x80) s->refused++;
			s->pubs[i] = s->pubs[--s->npubs];
		}
		return;
	}
}

static void rpc_answer(struct session *s, const void *payload, size_t len)
{
	json_t *j, *id;

	j = json_loadb(payload, len, 0, NULL);
	if(j == NULL) return;
	id = json_object_get(j, "id");
	if(s->rpc_id[0] && json_is_string(id) && !strcmp(json_string_value(id), s->rpc_id)
			&& s->rpc_resp == NULL){
		s->rpc_resp = j;
		return;
	}
	/* An answer to session__rpc_send, a late answer to an earlier request,
	 * or another device's: the owner of on_rpc tells them apart by id. */
	if(s->on_rpc) s->on_rpc(s, j, s->ud);
	json_decref(j);
}

static void message_cb(struct mosquitto *mosq, void *ud, const struct mosquitto_message *m,
		const mosquitto_property *props)
{
	struct session *s = ud;

	(void)mosq;
	(void)props;
	if(m->topic == NULL) return;
	if(s->notice_topic[0] && !strcmp(m->topic, s->notice_topic)){
		struct notice n;
		if(notice__is_resync(m->payload, (size_t)m->payloadlen)){
			s->resyncs++;
			return;
		}
		/* Every device of mine that subscribed gets the notice: only
		 * those about this connection's messages are ours to explain. */
		if(notice__parse(m->payload, (size_t)m->payloadlen, &n)
				&& (n.client[0] == '\0' || !strcmp(n.client, s->client_id))){
			notice__keep(&s->notices, &n);
		}
		return;
	}
	if(s->rpc_topic[0] && !strcmp(m->topic, s->rpc_topic)){
		rpc_answer(s, m->payload, (size_t)m->payloadlen);
		return;
	}
	if(s->on_message) s->on_message(s, m->topic, m->payload, (size_t)m->payloadlen, s->ud);
}

/* ---- set-up ---- */

/* The client id of a one-shot command without a token: a new one each
 * run, device + "." + 8 hex within the 64-character device part. */
static void random_client_id(struct session *s)
{
	char hex[9];

	util__randhex(hex, 4);
	snprintf(s->client_id, sizeof(s->client_id), "%s@%.*s.%s", s->opt->user,
			DEVICE_MAX_LEN - 9, s->opt->device, hex);
}

static void drop_token(struct session *s)
{
	OPENSSL_cleanse(s->token, sizeof(s->token));
	s->token[0] = '\0';
	s->use_token = false;
	/* A one-shot command's lock goes with its token's client id; a
	 * persistent session keeps its client id, and its lock, to the end. */
	if(s->kind == SESSION_ONESHOT && s->lock_fd >= 0){
		close(s->lock_fd);
		s->lock_fd = -1;
	}
}

/* Use the stored token of this kind of session, unless a password is
 * given (it wins) or `login` wants a new one. */
static int pick_token(struct session *s)
{
	char dev[DEVICE_MAX_LEN + 1];
	int rc;

	if(options__explicit_password(s->opt) || s->opt->want_token) return EXIT_OK;
	if(s->kind == SESSION_PERSISTENT) snprintf(dev, sizeof(dev), "%s", s->opt->device);
	else token__oneshot_device(s->opt->device, dev);
	rc = token__load(s->opt, dev, s->token);
	if(rc || s->token[0] == '\0') return rc;
	if(s->kind == SESSION_ONESHOT){
		s->lock_fd = token__lock(s->opt, dev, session__deadline(s));
		if(s->lock_fd < 0){
			drop_token(s); /* busy for --timeout: the password, as before tokens */
			return EXIT_OK;
		}
	}
	snprintf(s->token_dev, sizeof(s->token_dev), "%s", dev);
	s->use_token = true;
	return EXIT_OK;
}

/* One persistent session per client id on this machine: a second chat or
 * listen as <user>@<device> would take the session over from the first,
 * and the two would throw each other out for ever. The lock is a flock on
 * "<token file>.lock" (no token needed); a machine without a config folder
 * goes without it. */
static int lock_persistent(struct session *s)
{
	char path[4200], lock[4300];
	int fd;

	if(token__path(s->opt, s->opt->device, path, sizeof(path), true) != 0) return EXIT_OK;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0) return EXIT_OK;
	if(flock(fd, LOCK_EX | LOCK_NB) != 0){
		close(fd);
		util__error("another mqchat (chat or listen) is running as %s on this machine; "
				"one device runs one at a time (use --device NAME for another)", s->client_id);
		return EXIT_FAILED;
	}
	s->lock_fd = fd;
	return EXIT_OK;
}

/* A new libmosquitto client for s->client_id (the old one, if any, goes). */
static int new_client(struct session *s)
{
	if(s->mosq) mosquitto_destroy(s->mosq);
	s->mosq = mosquitto_new(s->client_id, s->kind != SESSION_PERSISTENT, s);
	if(s->mosq == NULL){
		util__error("cannot create the MQTT client: %s", strerror(errno));
		return EXIT_FAILED;
	}
	mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(s->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(s->mosq, connect_cb);
	mosquitto_disconnect_v5_callback_set(s->mosq, disconnect_cb);
	mosquitto_subscribe_v5_callback_set(s->mosq, subscribe_cb);
	mosquitto_unsubscribe_v5_callback_set(s->mosq, unsubscribe_cb);
	mosquitto_publish_v5_callback_set(s->mosq, publish_cb);
	mosquitto_message_v5_callback_set(s->mosq, message_cb);
	return EXIT_OK;
}

int session__init(struct session *s, struct options *opt, enum session_kind kind)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	s->opt = opt;
	s->kind = kind;
	s->connack = -1;
	s->backoff_ms = BACKOFF_MIN_MS;
	s->reconnect = (kind == SESSION_PERSISTENT);

	if(kind == SESSION_REGISTER){
		char hex[33];
		util__randhex(hex, 8);
		snprintf(s->user, sizeof(s->user), "%s", REGISTER_USER);
		snprintf(s->client_id, sizeof(s->client_id), "%s@%s", REGISTER_USER, hex);
		topic__build(s->rpc_topic, sizeof(s->rpc_topic), TOPIC_REGISTER_RESP, s->client_id, NULL);
		topic__build(s->rpc_req, sizeof(s->rpc_req), TOPIC_REGISTER_REQ, s->client_id, NULL);
	}else{
		snprintf(s->user, sizeof(s->user), "%s", opt->user);
		topic__build(s->rpc_topic, sizeof(s->rpc_topic), TOPIC_RPC_RESP, opt->user, NULL);
		topic__build(s->rpc_req, sizeof(s->rpc_req), TOPIC_RPC_REQ, opt->user, NULL);
		topic__build(s->notice_topic, sizeof(s->notice_topic), TOPIC_NOTICE, opt->user, NULL);
		if((rc = pick_token(s))) return rc;
		if(kind == SESSION_PERSISTENT){
			snprintf(s->client_id, sizeof(s->client_id), "%s@%s", opt->user, opt->device);
			if((rc = lock_persistent(s))) return rc;
		}else if(s->use_token){
			snprintf(s->client_id, sizeof(s->client_id), "%s@%s", opt->user, s->token_dev);
		}else{
			random_client_id(s);
		}
	}
	if(kind != SESSION_REGISTER){
		size_t ulen, devlen;
		const char *dev;
		/* options.c checked the user and the device; this checks the
		 * client id they make, by the rule the plugin applies. */
		if(!names__split_clientid(s->client_id, &ulen, &dev, &devlen)
				|| ulen != strlen(opt->user) || !names__valid(s->client_id, ulen)){
			util__error("invalid client id '%s' (must be <user>@<device>, device 1..%d of "
					"A-Z a-z 0-9 _ . -)", s->client_id, DEVICE_MAX_LEN);
			return EXIT_USAGE;
		}
	}
	return new_client(s);
}

static bool connack_seen(struct session *s, void *arg)
{
	(void)arg;
	return s->connack != -1 || s->conn_error != 0;
}

static int tls_failed(struct session *s)
{
	util__error("TLS handshake with %s:%d failed (is the server certificate for this "
			"host and signed by the CA in %s?)", s->opt->host, s->opt->port,
			s->opt->cafile ? s->opt->cafile : "the CA file");
	return EXIT_UNREACH;
}

/* Subscribe to chat/notice/<me>, where the plugin says why it refused what
 * this connection sent. A refusal of the filter is no error: messages still
 * go, only a refusal's reason would be missing. */
static int subscribe_notices(struct session *s)
{
	const char *topics[1] = {s->notice_topic};

	if(s->notice_topic[0] == '\0') return EXIT_OK;
	return session__subscribe(s, topics, 1, 0, s->kind == SESSION_PERSISTENT);
}

/* The broker refused the stored token. Only "refused" (or no answer)
 * blames the token: then it is deleted, and the login is made again with
 * the password (a one-shot command with a new random client id), which
 * asks for a new token. Any other status is the account's, said as for a
 * password. */
static int token_refused(struct session *s)
{
	json_t *st = login__status(s->opt, s->user);
	const char *status = json_string_value(json_object_get(st, "status"));

	if(status && strcmp(status, "refused") != 0) return login__say_status(s->user, st);
	json_decref(st);
	token__forget(s->opt, s->token_dev);
	s->token_refused = true;
	if(s->no_fallback){
		drop_token(s);
		return EXIT_AUTH;
	}
	fprintf(stderr, "the device token of %s@%s was refused (revoked or replaced): "
			"logging in with the password\n", s->user, s->token_dev);
	drop_token(s);
	if(s->kind == SESSION_ONESHOT) random_client_id(s);
	s->connack = -1;
	s->conn_error = 0;
	if(new_client(s) != EXIT_OK) return EXIT_FAILED;
	return session__connect(s);
}

int session__connect(struct session *s)
{
	mosquitto_property *props = NULL;
	const char *pw;
	enum session_wait w;
	int rc;

	if(s->kind == SESSION_REGISTER){
		pw = "register"; /* the pseudo-user takes any password */
	}else if(s->use_token){
		pw = s->token;
	}else{
		rc = options__password(s->opt);
		if(rc) return rc;
		pw = s->opt->password;
	}
	if(mosquitto_username_pw_set(s->mosq, s->user, pw) != MOSQ_ERR_SUCCESS){
		say(s, "out of memory");
		return EXIT_FAILED;
	}
	if(s->opt->cafile){
		rc = mosquitto_tls_set(s->mosq, s->opt->cafile, NULL, NULL, NULL, NULL);
		if(rc != MOSQ_ERR_SUCCESS){
			say(s, "cannot use CA file %s: %s", s->opt->cafile, mosquitto_strerror(rc));
			return EXIT_USAGE;
		}
	}
	if(s->kind == SESSION_PERSISTENT){
		if(mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
					SESSION_EXPIRY_S) != MOSQ_ERR_SUCCESS){
			say(s, "out of memory");
			return EXIT_FAILED;
		}
	}
	rc = mosquitto_connect_bind_v5(s->mosq, s->opt->host, s->opt->port, KEEPALIVE_S, NULL, props);
	mosquitto_property_free_all(&props);
	if(rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE) s->conn_error = rc;
	if(s->conn_error) return s->silent ? EXIT_UNREACH : tls_failed(s);
	if(rc != MOSQ_ERR_SUCCESS){
		char hint[512];
		say(s, "cannot reach the broker at %s:%d: %s (%s)", s->opt->host, s->opt->port,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
				options__broker_hint(s->opt, hint, sizeof(hint)));
		return EXIT_UNREACH;
	}
	w = session__wait(s, connack_seen, NULL, session__deadline(s), -1);
	if(s->connack == 0){
		rc = subscribe_notices(s);
		if(rc == EXIT_OK && s->kind != SESSION_REGISTER && !s->use_token
				&& (s->opt->prompted || s->opt->want_token || s->token_refused)){
			token__obtain(s, s->opt->password);
		}
		return rc;
	}
	if(s->conn_error) return s->silent ? EXIT_UNREACH : tls_failed(s);
	if(s->connack > 0){
		switch(s->connack){
			case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
			case MQTT_RC_NOT_AUTHORIZED:
			case MQTT_RC_BAD_AUTHENTICATION_METHOD:
			case MQTT_RC_BANNED:
				if(s->kind == SESSION_REGISTER){
					/* Every setting of registration lets _register in, up
					 * to 5 connections a minute from one address. */
					say(s, "the server refused the registration connection (%s): too many "
							"from this address, or registration is not open; try again "
							"in a minute", mosquitto_reason_string(s->connack));
					return EXIT_FAILED;
				}
				if(s->use_token) return token_refused(s);
				/* The CONNACK cannot say why: ask the plugin. */
				return s->silent ? EXIT_AUTH : login__why_refused(s->opt, s->user);
			case MQTT_RC_CLIENTID_NOT_VALID:
				say(s, "client id %s refused by the broker", s->client_id);
				return EXIT_AUTH;
			default:
				say(s, "connection refused by the broker: %s",
						mosquitto_reason_string(s->connack));
				return EXIT_UNREACH;
		}
	}
	if(w == WAIT_STOP) return EXIT_FAILED;
	if(w == WAIT_TIMEOUT){
		say(s, "no answer from the broker at %s:%d within %d s", s->opt->host,
				s->opt->port, s->opt->timeout_s);
		return EXIT_TIMEOUT;
	}
	say(s, "the broker at %s:%d closed the connection", s->opt->host, s->opt->port);
	return EXIT_UNREACH;
}

void session__cleanup(struct session *s)
{
	int i;

	if(s->mosq){
		if(s->connected){
			int64_t deadline = time__mono_ms() + 2000;
			s->reconnect = false;
			session_stop = 0; /* let the last PUBACKs in after a signal */
			session__flush(s, deadline);
			/* A normal DISCONNECT keeps the session expiry of CONNECT. */
			mosquitto_disconnect_v5(s->mosq, 0, NULL);
		}
		mosquitto_destroy(s->mosq);
	}
	for(i=0; i<s->nsubs; i++) free(s->subs[i].topic);
	free(s->subs);
	free(s->pubs);
	json_decref(s->rpc_resp);
	drop_token(s);
	if(s->lock_fd >= 0) close(s->lock_fd);
	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
}

/* ---- the loop ---- */

bool session__step(struct session *s, int max_ms, int extra_fd)
{
	struct pollfd pfd[2];
	int n = 0, sock, rc, sock_i = -1, fd_i = -1;
	int64_t now = time__mono_ms();

	sock = mosquitto_socket(s->mosq);
	if(sock < 0 && s->reconnect && s->ever_connected && s->fatal == 0 && !s->taken_over){
		if(now >= s->retry_at){
			rc = mosquitto_reconnect(s->mosq);
			if(rc != MOSQ_ERR_SUCCESS){
				s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
				s->retry_at = now + s->backoff_ms;
				fprintf(stderr, "reconnect failed (%s), retrying in %d ms\n",
						rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
						s->backoff_ms);
			}
			sock = mosquitto_socket(s->mosq);
		}else if(s->retry_at - now < max_ms){
			max_ms = (int)(s->retry_at - now);
		}
	}
	if(sock >= 0){
		pfd[n].fd = sock;
		pfd[n].events = POLLIN | (mosquitto_want_write(s->mosq) ? POLLOUT : 0);
		pfd[n].revents = 0;
		sock_i = n++;
	}
	if(extra_fd >= 0){
		pfd[n].fd = extra_fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		fd_i = n++;
	}
	if(max_ms > 1000) max_ms = 1000; /* keepalive and retries need a beat */
	if(max_ms < 0) max_ms = 0;
	rc = poll(pfd, (nfds_t)n, max_ms);
	if(rc < 0) return false; /* EINTR: the caller looks at session_stop */

	if(sock_i >= 0){
		if(pfd[sock_i].revents & (POLLIN | POLLHUP | POLLERR)){
			rc = mosquitto_loop_read(s->mosq, 1);
			/* A failed TLS handshake leaves the socket open: give up on it. */
			if((rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE) && s->connack == -1){
				s->conn_error = rc;
			}
		}
		if(mosquitto_socket(s->mosq) >= 0 && mosquitto_want_write(s->mosq)){
			mosquitto_loop_write(s->mosq, 1);
		}
		if(mosquitto_socket(s->mosq) >= 0) mosquitto_loop_misc(s->mosq);
	}
	return fd_i >= 0 && (pfd[fd_i].revents & (POLLIN | POLLHUP | POLLERR));
}

enum session_wait session__wait(struct session *s, bool (*cond)(struct session *, void *),
		void *arg, int64_t deadline, int extra_fd)
{
	for(;;){
		int64_t now;
		int max_ms = 1000;

		if(cond && cond(s, arg)) return WAIT_DONE;
		if(session_stop) return WAIT_STOP;
		if(s->fatal) return WAIT_FATAL;
		/* Waits only start once connected, so no socket means it was lost. */
		if(mosquitto_socket(s->mosq) < 0 && !(s->reconnect && s->ever_connected)){
			return WAIT_LOST;
		}
		now = time__mono_ms();
		if(deadline && now >= deadline) return WAIT_TIMEOUT;
		if(deadline && deadline - now < max_ms) max_ms = (int)(deadline - now);
		if(session__step(s, max_ms, extra_fd)) return WAIT_FD;
	}
}

int session__wait_rc(struct session *s, enum session_wait w, const char *what)
{
	if(s->silent){
		if(w == WAIT_DONE || w == WAIT_FD || w == WAIT_STOP) return EXIT_OK;
		return w == WAIT_TIMEOUT ? EXIT_TIMEOUT : w == WAIT_FATAL ? s->fatal : EXIT_UNREACH;
	}
	switch(w){
		case WAIT_DONE:
		case WAIT_FD:
			return EXIT_OK;
		case WAIT_TIMEOUT:
			util__error("no answer %s within %d s", what, s->opt->timeout_s);
			return EXIT_TIMEOUT;
		case WAIT_LOST:
			util__error("connection to the broker lost %s", what);
			return EXIT_UNREACH;
		case WAIT_STOP:
			return EXIT_OK;
		case WAIT_FATAL:
			return s->fatal;
	}
	return EXIT_FAILED;
}

/* ---- subscribe / unsubscribe ---- */

static bool wait_done(struct session *s, void *arg)
{
	(void)arg;
	return s->wait_done;
}

static int remember_sub(struct session *s, const char *topic, int qos)
{
	struct sub_entry *n;
	int i;

	for(i=0; i<s->nsubs; i++){
		if(!strcmp(s->subs[i].topic, topic)) return EXIT_OK;
	}
	n = realloc(s->subs, (size_t)(s->nsubs + 1) * sizeof(*n));
	if(n == NULL) return EXIT_FAILED;
	s->subs = n;
	n[s->nsubs].topic = strdup(topic);
	if(n[s->nsubs].topic == NULL) return EXIT_FAILED;
	n[s->nsubs].qos = qos;
	s->nsubs++;
	return EXIT_OK;
}

int session__subscribe(struct session *s, const char *const *topics, int n, int qos,
		bool remember)
{
	char *list[64];
	int rc, i, mid = 0;

	if(n <= 0 || n > 64) return EXIT_FAILED;
	s->wait_done = false;
	s->ngranted = 0;
	/* libmosquitto's prototype lacks a const it honours */
	memcpy(list, topics, (size_t)n * sizeof(list[0]));
	rc = mosquitto_subscribe_multiple(s->mosq, &mid, n, list, qos, 0, NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		say(s, "cannot subscribe: %s", mosquitto_strerror(rc));
		return rc == MOSQ_ERR_NO_CONN ? EXIT_UNREACH : EXIT_FAILED;
	}
	s->wait_mid = mid;
	rc = session__wait_rc(s, session__wait(s, wait_done, NULL, session__deadline(s), -1),
			"to the subscription");
	if(rc) return rc;
	if(!s->wait_done) return EXIT_FAILED; /* interrupted by a signal */
	if(remember){
		for(i=0; i<n && i < s->ngranted; i++){
			if(s->granted[i] < 0x80 && remember_sub(s, topics[i], qos)){
				util__error("out of memory");
				return EXIT_FAILED;
			}
		}
	}
	return EXIT_OK;
}

int session__unsubscribe(struct session *s, const char *topic)
{
	int rc, mid = 0, i;

	for(i=0; i<s->nsubs; i++){
		if(!strcmp(s->subs[i].topic, topic)){
			free(s->subs[i].topic);
			s->subs[i] = s->subs[--s->nsubs];
			break;
		}
	}
	s->wait_done = false;
	rc = mosquitto_unsubscribe_v5(s->mosq, &mid, topic, NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		util__error("cannot unsubscribe: %s", mosquitto_strerror(rc));
		return rc == MOSQ_ERR_NO_CONN ? EXIT_UNREACH : EXIT_FAILED;
	}
	s->wait_mid = mid;
	return session__wait_rc(s, session__wait(s, wait_done, NULL, session__deadline(s), -1),
			"to the unsubscribe");
}

/* ---- publish ---- */

int session__publish(struct session *s, const char *topic, const void *payload,
		size_t len, bool track, int *mid)
{
	int rc, m = 0;

	if(s->npubs == s->cappubs){
		int cap = s->cappubs ? s->cappubs * 2 : 16;
		struct pub_slot *n = realloc(s->pubs, (size_t)cap * sizeof(*n));
		if(n == NULL){
			util__error("out of memory");
			return EXIT_FAILED;
		}
		s->pubs = n;
		s->cappubs = cap;
	}
	if(len > 256 * 1024 * 1024){
		util__error("message too large");
		return EXIT_FAILED;
	}
	rc = mosquitto_publish_v5(s->mosq, &m, topic, (int)len, payload, 1, false, NULL);
	/* While disconnected libmosquitto queues QoS 1 messages and sends them
	 * on reconnect (NO_CONN then only means "not sent yet"). */
	if(rc != MOSQ_ERR_SUCCESS && !(rc == MOSQ_ERR_NO_CONN && s->reconnect)){
		util__error("cannot publish to %s: %s", topic, mosquitto_strerror(rc));
		return EXIT_FAILED;
	}
	s->pubs[s->npubs].mid = m;
	s->pubs[s->npubs].track = track;
	s->pubs[s->npubs].done = false;
	s->pubs[s->npubs].reason = 0;
	s->npubs++;
	if(mid) *mid = m;
	return EXIT_OK;
}

static bool pub_done(struct session *s, void *arg)
{
	int mid = *(int *)arg, i;

	for(i=0; i<s->npubs; i++){
		if(s->pubs[i].mid == mid) return s->pubs[i].done;
	}
	return true;
}

int session__pub_wait(struct session *s, int mid, int *reason)
{
	int rc, i;

	rc = session__wait_rc(s, session__wait(s, pub_done, &mid, session__deadline(s), -1),
			"from the broker to the publish");
	*reason = 0;
	for(i=0; i<s->npubs; i++){
		if(s->pubs[i].mid == mid){
			if(rc == EXIT_OK && !s->pubs[i].done){
				/* interrupted by a signal: not confirmed, so not sent */
				util__error("interrupted before the broker confirmed the message");
				rc = EXIT_FAILED;
			}
			*reason = s->pubs[i].reason;
			s->pubs[i] = s->pubs[--s->npubs];
			break;
		}
	}
	return rc;
}

static bool all_acked(struct session *s, void *arg)
{
	int i;

	(void)arg;
	for(i=0; i<s->npubs; i++){
		if(!s->pubs[i].done) return false;
	}
	return true;
}

enum session_wait session__flush(struct session *s, int64_t deadline)
{
	return session__wait(s, all_acked, NULL, deadline, -1);
}

/* ---- RPC ---- */

static bool rpc_answered(struct session *s, void *arg)
{
	int mid = *(int *)arg, i;

	if(s->rpc_resp) return true;
	/* A refused request will never be answered: stop waiting. */
	for(i=0; i<s->npubs; i++){
		if(s->pubs[i].mid == mid && s->pubs[i].done && s->pubs[i].reason >= 0x80) return true;
	}
	return false;
}

int session__rpc_subscribe(struct session *s)
{
	const char *topics[1];
	int rc;

	if(s->rpc_subscribed) return EXIT_OK;
	/* QoS 0 in a persistent session: answers are not queued for a later
	 * run (which could not match them anyway). */
	topics[0] = s->rpc_topic;
	rc = session__subscribe(s, topics, 1,
			s->kind == SESSION_PERSISTENT ? 0 : 1, s->kind == SESSION_PERSISTENT);
	if(rc) return rc;
	if(s->granted[0] >= 0x80){
		util__error("not authorized to subscribe to %s (%s)", s->rpc_topic,
				mosquitto_reason_string(s->granted[0]));
		return EXIT_DENIED;
	}
	s->rpc_subscribed = true;
	return EXIT_OK;
}

int session__rpc_send(struct session *s, json_t *req, char *id)
{
	char *payload;
	int rc;

	util__randhex(id, 12);
	if(json_object_set_new(req, "id", json_string(id)) != 0
			|| (payload = json_dumps(req, JSON_COMPACT)) == NULL){
		return EXIT_FAILED;
	}
	rc = session__publish(s, s->rpc_req, payload, strlen(payload), false, NULL);
	free(payload);
	return rc;
}

void session__resume(struct session *s)
{
	s->taken_over = false;
	s->quick_losses = 0;
	s->lasted_then_lost = false;
	s->backoff_ms = BACKOFF_MIN_MS;
	s->retry_at = 0;
}

int session__rpc(struct session *s, json_t *req, json_t **resp)
{
	char *payload = NULL;
	const char *topics[1];
	json_t *ok, *err, *msg;
	enum session_wait w;
	int rc, mid = 0, reason = 0, i;

	*resp = NULL;
	if((rc = session__rpc_subscribe(s))) return rc;
	s->rpc_error[0] = s->rpc_code[0] = '\0';
	s->rpc_retry_ms = 0;
	util__randhex(s->rpc_id, 12);
	json_decref(s->rpc_resp);
	s->rpc_resp = NULL;
	if(json_object_set_new(req, "id", json_string(s->rpc_id)) != 0
			|| (payload = json_dumps(req, JSON_COMPACT)) == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	rc = session__publish(s, s->rpc_req, payload, strlen(payload), true, &mid);
	free(payload);
	if(rc) return rc;

	w = session__wait(s, rpc_answered, &mid, session__deadline(s), -1);
	rc = (w == WAIT_TIMEOUT && s->quiet) ? EXIT_TIMEOUT
		: session__wait_rc(s, w, s->kind == SESSION_REGISTER
				? "to the registration (is the archiver running?)"
				: "from the archiver (is it running?)");
	for(i=0; i<s->npubs; i++){
		if(s->pubs[i].mid == mid){
			reason = s->pubs[i].reason;
			s->pubs[i] = s->pubs[--s->npubs];
			break;
		}
	}
	if(reason >= 0x80 && s->rpc_resp == NULL && s->kind == SESSION_REGISTER){
		/* The plugin answers some requests itself (registration off,
		 * login_status): PUBACK 0x87, then the answer, queued before the
		 * broker reads anything sent after that PUBACK. One round trip
		 * (subscribing again) tells whether one comes. */
		topics[0] = s->rpc_topic;
		if(session__subscribe(s, topics, 1, 1, false) == EXIT_OK && s->rpc_resp){
			reason = 0;
		}
	}
	if(reason >= 0x80){
		struct notice n;
		char why[256];
		bool have = session__notice(s, s->rpc_id, &n);
		notice__explain(have ? &n : NULL, reason, why, sizeof(why));
		s->rpc_id[0] = '\0';
		snprintf(s->rpc_error, sizeof(s->rpc_error), "request not sent: %s", why);
		say(s, "%s", s->rpc_error);
		return EXIT_FAILED;
	}
	s->rpc_id[0] = '\0';
	if(rc) return rc;
	if(session_stop && s->rpc_resp == NULL) return EXIT_FAILED;

	ok = json_object_get(s->rpc_resp, "ok");
	if(!json_is_true(ok) && s->kind != SESSION_REGISTER){
		err = json_object_get(s->rpc_resp, "error");
		msg = json_object_get(s->rpc_resp, "message");
		snprintf(s->rpc_code, sizeof(s->rpc_code), "%s",
				json_is_string(err) ? json_string_value(err) : "");
		s->rpc_retry_ms = json_integer_value(json_object_get(s->rpc_resp, "retry_ms"));
		snprintf(s->rpc_error, sizeof(s->rpc_error), "%s%s%s%s",
				json_is_string(msg) ? json_string_value(msg) : "request failed",
				json_is_string(err) ? " (" : "",
				json_is_string(err) ? json_string_value(err) : "",
				json_is_string(err) ? ")" : "");
		say(s, "%s", s->rpc_error);
		json_decref(s->rpc_resp);
		s->rpc_resp = NULL;
		return EXIT_FAILED;
	}
	*resp = s->rpc_resp;
	s->rpc_resp = NULL;
	return EXIT_OK;
}

/* ---- refusal notices ---- */

bool session__notice(struct session *s, const char *ref, struct notice *n)
{
	const char *topics[1] = {s->notice_topic};

	if(notice__take(&s->notices, ref, n)) return true;
	/* No PUBACK came since the last barrier went out: it covers this one. */
	if(s->acks == s->barrier_acks || s->notice_topic[0] == '\0' || !s->connected) return false;
	s->barrier_acks = s->acks;
	/* Re-subscribing changes nothing (no retained messages live there);
	 * its SUBACK is the round trip. */
	if(session__subscribe(s, topics, 1, 0, false) != EXIT_OK) return false;
	return notice__take(&s->notices, ref, n);
}
