/* session.h - one MQTT connection of the chat client (libmosquitto, MQTT 5)
 * with blocking request/response helpers, each bounded by --timeout.
 *
 * The event loop is ours (poll on the broker socket and optionally one more
 * fd, such as stdin for chat), so commands stay single-threaded: callbacks
 * only record what arrived, the helpers wait for it. */
#ifndef MQCHAT_SESSION_H
#define MQCHAT_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "devtoken.h"
#include "mqchat.h"
#include "notice.h"

enum session_kind {
	/* <user>@<device>.<random>, clean start: one-shot commands (send, RPC),
	 * so they never take over the persistent session of the same device.
	 * With the stored device token: <user>@<device>.cmd (token.h), one
	 * command of the device at a time. */
	SESSION_ONESHOT,
	/* <user>@<device>, clean start false, 7-day session expiry, reconnects
	 * with backoff: listen and chat, so nothing sent meanwhile is missed. */
	SESSION_PERSISTENT,
	/* _register@<16 hex>, clean start: self-registration. */
	SESSION_REGISTER,
};

/* Outcome of session__wait. */
enum session_wait {
	WAIT_DONE = 0,     /* the condition holds */
	WAIT_TIMEOUT,      /* the deadline passed */
	WAIT_LOST,         /* connection lost and not reconnecting */
	WAIT_STOP,         /* SIGINT/SIGTERM */
	WAIT_FD,           /* the extra fd is readable */
	WAIT_FATAL,        /* reconnect refused (credentials changed); see s->fatal */
};

struct session;

/* Called for each message that is not an RPC answer. Topic and payload are
 * borrowed for the duration of the call. */
typedef void (*session_message_cb)(struct session *s, const char *topic,
		const void *payload, size_t len, void *ud);
/* Called for each RPC answer that session__rpc is not waiting for (the
 * answers to session__rpc_send). answer is borrowed for the call. */
typedef void (*session_rpc_cb)(struct session *s, json_t *answer, void *ud);

struct pub_slot {
	int mid;
	bool track;   /* kept until session__pub_result collects it */
	bool done;
	int reason;
};

struct sub_entry {
	char *topic;
	int qos;
};

struct session {
	struct mosquitto *mosq;
	struct options *opt;
	enum session_kind kind;
	char client_id[CLIENTID_MAX_LEN + 1];
	char user[NAME_MAX_LEN + 1];
	bool connected;
	bool ever_connected;
	int connack;            /* -1 until the first CONNACK */
	int fatal;              /* exit code if a reconnect was refused */
	int conn_error;         /* MOSQ_ERR_TLS* of a failed first handshake */
	bool reconnect;         /* reconnect with backoff (persistent sessions) */
	int64_t retry_at;
	int backoff_ms;
	int64_t connected_at;   /* monotonic ms of the last CONNACK */
	int quick_losses;       /* connections lost within 2 s in a row */
	bool lasted_then_lost;  /* the last connection before them had lasted */
	struct sub_entry *subs; /* restored if the broker lost the session */
	int nsubs;
	int wait_mid;           /* the SUBSCRIBE/UNSUBSCRIBE being waited for */
	bool wait_done;
	int granted[64];
	int ngranted;
	struct pub_slot *pubs;  /* publishes awaiting their PUBACK */
	int npubs, cappubs;
	int refused;            /* refused untracked publishes */
	unsigned acks;          /* PUBACKs received */
	unsigned barrier_acks;  /* acks when the last notice barrier was sent */
	char rpc_topic[TOPIC_MAX_LEN + 1];/* where answers come: chat/rpc/<me>/resp */
	char rpc_req[TOPIC_MAX_LEN + 1];  /* where requests go: chat/rpc/<me>/req */
	bool rpc_subscribed;
	char rpc_id[40];
	char rpc_error[300];    /* why the last session__rpc failed, in words */
	char rpc_code[32];      /* ... and the error answer's code, if any */
	int64_t rpc_retry_ms;   /* ... and its retry_ms (rate_limited) */
	json_t *rpc_resp;       /* new reference, taken by session__rpc */
	bool quiet;             /* session__rpc: no message on a timeout */
	bool silent;            /* connect, subscribe: no message at all (login.c's probe) */
	int64_t until;          /* if set, no wait lasts past it (monotonic ms) */
	char notice_topic[TOPIC_MAX_LEN + 1];/* chat/notice/<me>; "" for _register */
	struct notice_box notices; /* refusal notices not yet claimed */
	/* How many times messages on their way to me may have been lost: a
	 * CONNACK without my session after the first (the broker restarted
	 * without it, or another node took me: its queue is gone), or a
	 * resync notice. Whoever shows messages syncs from the largest seq it
	 * has whenever this grows (docs/PROTOCOL.md, "Several nodes"). */
	unsigned resyncs;
	session_message_cb on_message;
	session_rpc_cb on_rpc;
	void *ud;
	/* Another connection with my client id keeps taking the session over
	 * (connections closed right after they open, 3 in a row after one that
	 * had lasted; 8 if none had): with pause_on_takeover, reconnecting
	 * stops and taken_over is set, until session__resume. */
	bool pause_on_takeover;
	bool taken_over;
	/* Device tokens (token.h): unless a password is given, a stored token
	 * is the MQTT password; if the broker refuses it, it is deleted and
	 * the password used, and a new token asked for. */
	bool use_token;         /* logging in with token */
	bool token_refused;     /* the stored token was refused and deleted */
	bool no_fallback;       /* then EXIT_AUTH, no password (logout) */
	int lock_fd;            /* the client id's lock (one-shot with a token, or persistent), or -1 */
	char token[DEVTOKEN_LEN + 1];
	char token_dev[DEVICE_MAX_LEN + 1]; /* the device the token is bound to */
};

extern volatile sig_atomic_t session_stop;

/* Install SIGINT/SIGTERM handlers that set session_stop (no SA_RESTART). */
void session__signals(void);

/* Set up s (no connection yet). opt is borrowed and must outlive s. For
 * SESSION_REGISTER, opt->user is not needed. Without a password given
 * (options__explicit_password), a stored device token is read (and for a
 * one-shot session its client id locked, waiting up to --timeout, else
 * the password is used). Returns EXIT_OK, EXIT_FAILED, or EXIT_USAGE (a
 * token file readable by others or corrupt, said). */
int session__init(struct session *s, struct options *opt, enum session_kind kind);
/* Connect and wait for the CONNACK, then (but for _register) subscribe to
 * chat/notice/<me>, where the broker says why it refused what I send.
 * A refused token: see struct session. After a login with a prompted
 * password (or one that replaced a refused token, or for `login`), asks
 * for the device tokens this installation lacks (token__obtain).
 * Returns EXIT_OK, EXIT_AUTH (login refused: login.c asks why and says
 * what to do), EXIT_UNREACH, EXIT_TIMEOUT; prints errors unless s->silent. */
int session__connect(struct session *s);
/* Publish the pending messages' PUBACKs (bounded), disconnect, free all. */
void session__cleanup(struct session *s);

/* Run the loop once: wait at most max_ms for the broker socket or extra_fd
 * (-1 for none). Returns true if extra_fd is readable. */
bool session__step(struct session *s, int max_ms, int extra_fd);
/* Run the loop until cond(s, arg) is true, deadline (monotonic ms, 0 for
 * none) passes, extra_fd is readable, a signal arrives or the connection is
 * lost for good. */
enum session_wait session__wait(struct session *s, bool (*cond)(struct session *, void *),
		void *arg, int64_t deadline, int extra_fd);
/* A deadline --timeout seconds from now (or s->until if sooner). */
int64_t session__deadline(const struct session *s);

/* Subscribe to n filters at qos and wait for the SUBACK; granted codes in
 * s->granted. remember: restore them after a reconnect without session.
 * Returns EXIT_OK, EXIT_TIMEOUT or EXIT_UNREACH (the caller judges refusals). */
int session__subscribe(struct session *s, const char *const *topics, int n, int qos,
		bool remember);
/* Unsubscribe and wait for the UNSUBACK: also a barrier, since the broker
 * answers in order (retained messages of an earlier subscribe come first). */
int session__unsubscribe(struct session *s, const char *topic);

/* Publish at QoS 1. track: keep the outcome for session__pub_wait. *mid
 * (may be NULL) receives the message id. Returns EXIT_OK or EXIT_FAILED. */
int session__publish(struct session *s, const char *topic, const void *payload,
		size_t len, bool track, int *mid);
/* Wait for the PUBACK of a tracked publish. Returns EXIT_OK with *reason
 * the MQTT 5 reason code, or EXIT_TIMEOUT / EXIT_UNREACH. */
int session__pub_wait(struct session *s, int mid, int *reason);
/* Wait until every publish is acknowledged or the deadline passes. */
enum session_wait session__flush(struct session *s, int64_t deadline);

/* The refusal notice about my message with id ref, whose PUBACK (already
 * in) said refused: true and *n filled (and claimed) if it came. If it is
 * not in yet, first a round trip (SUBSCRIBE to the notice topic again),
 * unless one was sent after every PUBACK so far: the broker queues a
 * notice before it reads anything sent after the PUBACK, so once that
 * SUBACK is in, a notice that is not there will not come (the plugin
 * explains at most 10 refusals a second; a server without the plugin's
 * notices sends none). */
bool session__notice(struct session *s, const char *ref, struct notice *n);

/* Send an RPC request (req is borrowed; its "id" is set here) on
 * chat/rpc/<me>/req and wait for the matching answer. On EXIT_OK *resp is a
 * new reference with "ok": true. An error answer prints "Error: ..." and
 * returns EXIT_FAILED, as does a refused request (with the reason, see
 * session__notice); no answer: EXIT_TIMEOUT. A SESSION_REGISTER session
 * uses chat/register/<clientid>/req and .../resp and returns every answer,
 * ok or not, for the caller to judge. Failing, s->rpc_error says why (and
 * with s->silent nothing is printed). */
int session__rpc(struct session *s, json_t *req, json_t **resp);

/* Send an RPC request (req borrowed; its "id" set here and copied to id,
 * 40 bytes) without waiting: the answer goes to s->on_rpc. The answer topic
 * must be subscribed (session__rpc does it once; or session__rpc_subscribe).
 * Returns EXIT_OK, or EXIT_FAILED (not connected and not reconnecting, no
 * memory). */
int session__rpc_send(struct session *s, json_t *req, char *id);
/* Subscribe to the RPC answer topic if not done yet (as session__rpc). */
int session__rpc_subscribe(struct session *s);
/* After taken_over: reconnect now. */
void session__resume(struct session *s);

/* Map a wait outcome to an exit code, printing what happened. */
int session__wait_rc(struct session *s, enum session_wait w, const char *what);

#endif
