/* daemon.h - the archiver daemon (`mqchat-archiver [--data DIR] run ...`).
 *
 * The public entry point is daemon__main; the rest of this header is shared
 * by the daemon's own files (daemon.c, ingest.c, rpc.c, register.c,
 * expiry.c) and by nothing else.
 *
 * One thread: a poll() loop over the K broker connections (mqtt.c), a
 * self-pipe for signals and timers. Each read from a connection hands its
 * messages to ingest.c, which keeps them in memory and adds them to a
 * journal buffer; after the read the buffer goes to the journal
 * (archive.journal) with one write(), and only then do the PUBACKs of those
 * messages leave, in one write() too. Batches are committed to archive.db by
 * INGEST_BATCH or INGEST_MAX_DELAY_MS and before every RPC answer, then the
 * journal is emptied; it is replayed at start. So a killed process loses
 * nothing it acknowledged. */
#ifndef MQCHAT_DAEMON_H
#define MQCHAT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "names.h"

/* Run the daemon until SIGTERM/SIGINT. datadir is the data folder (auth.db,
 * archive.db, archiver.pw); argv[0] is "run", the rest its options.
 * Returns the process exit status (0 after a clean stop). */
int daemon__main(const char *datadir, int argc, char **argv);

/* ---- internal to the daemon ---- */

struct mqtt;
struct mqtt_msg;
struct archive;
struct userdb;
struct daemon;

/* The largest inbox/room payload stored; anything larger is refused as
 * invalid (the plugin's own limit is far lower). */
#define INGEST_MAX_PAYLOAD (1024 * 1024)
/* Messages committed in one transaction at most. */
#define INGEST_BATCH 1000
/* A batch is committed at the latest this long after its first message
 * (the journal already makes it durable against a killed process). */
#define INGEST_MAX_DELAY_MS 50

/* One broker connection, client id archiver@<index>. */
struct conn {
	struct daemon *d;
	struct mqtt *mq;
	int index;
	char client_id[32];
	bool ready_once;     /* the broker accepted this connection (CONNACK) */
	int subs_due;        /* SUBACKs still expected since the CONNACK */
	int64_t next_try;    /* monotonic ms of the next connection attempt */
	int backoff;         /* ms, doubled after each failure */
	bool failing;        /* a failure was logged; quiet until connected again */
};

/* A message taken from the broker but not yet committed to archive.db. */
struct pending {
	struct pending *next;
	char *topic;
	int64_t received;    /* wall clock ms: the message's server_ts */
	size_t len;
	unsigned char payload[];
};

/* A `_register` client id that made an account, and when (mono ms). */
struct reg_done {
	char clientid[CLIENTID_MAX_LEN + 1];
	int64_t at;
};

/* Expiry pass state (expiry.c). */
struct expiry {
	int64_t next_run;    /* monotonic ms */
	bool running;
	size_t stage;        /* index into rooms; == nrooms: the global stage */
	char **rooms;        /* rooms with their own retention */
	int *room_days;
	size_t nrooms;
	int64_t cursor;
	int64_t deleted;
};

struct daemon_stats {
	int64_t stored;
	int64_t duplicates;
	int64_t receipts;
	int64_t invalid;
	int64_t rpc;
	int64_t registrations;
	int64_t expired;
	int64_t batches;
	int64_t journal_writes;
};

struct daemon {
	struct config cfg;
	char archive_path[4096];
	char auth_path[4096];
	char journal_path[4096];
	int journal_fd;
	/* Journal records of the messages read since the last journal write;
	 * their PUBACKs wait until ingest__journal_sync has written them. */
	unsigned char *jbuf;
	size_t jlen, jcap;
	char password[1025];
	struct archive *ar;
	struct userdb *udb;
	struct conn conns[CONFIG_MAX_CONNECTIONS];
	int nconns;

	bool db_ok;          /* false: the archive cannot be written; stay off the broker */
	int64_t db_next_try; /* monotonic ms */
	int db_backoff;
	struct pending *pend_head, *pend_tail;
	size_t npending;
	int64_t pend_since;  /* monotonic ms when the oldest pending arrived */

	struct expiry exp;
	struct daemon_stats stats;

	/* invalid payload log limiter */
	int64_t invalid_window;
	int invalid_logged;
	int64_t invalid_suppressed;

	/* registration token bucket */
	double reg_tokens;
	int64_t reg_last;
	/* accounts whose password was checked lately (pwthrottle.c) */
	struct pwt_entry *pwt;
	size_t pwt_n, pwt_cap;
	/* client ids that made an account (register.c) */
	struct reg_done *reg_done;
	size_t reg_done_n, reg_done_cap;

	/* Answers waiting for the broker to apply their change (later.c), and
	 * the udb->committed_ns the last answer accounted for. */
	struct later *later_head, *later_tail;
	int64_t answered_ns;

	int sigpipe[2];
	volatile int stop;
};

/* ---- daemon.c ---- */
/* Publish resp (stolen) as JSON on topic at QoS 1 through c, with the MQTT 5
 * correlation data of the request req if it had one. If the request
 * committed a change to auth.db, the answer waits (later.c) until the
 * broker has applied it. */
void daemon__reply(struct conn *c, const char *topic, json_t *resp, const struct mqtt_msg *req);
/* Publish text (len bytes) on topic at QoS 1 through c, now. */
void daemon__send(struct conn *c, const char *topic, const char *text, size_t len,
		const unsigned char *corr, size_t corr_len);
/* The archive cannot be written (rc from the store): leave the broker, so
 * nothing more is acknowledged into the void, and retry with backoff. */
void daemon__db_failed(struct daemon *d, int rc, const char *what);

/* ---- ingest.c ---- */
/* Take one inbox/room message: add it to the pending list and its record to
 * the journal buffer, committing the list if it is full. If the archive
 * cannot be written, daemon__db_failed is called; the message stays pending.
 * Invalid payloads are counted and logged when committed. */
void ingest__message(struct daemon *d, const char *topic, const void *payload, size_t len);
/* Write the journal buffer with one write(). MQC_OK when it is on file (or
 * empty): the PUBACKs of those messages may go. */
int ingest__journal_sync(struct daemon *d);
/* Commit the pending list in one transaction, oldest first, then empty the
 * journal. MQC_OK when nothing is left; otherwise nothing was committed and
 * the list is intact. */
int ingest__flush(struct daemon *d);
/* Keep a copy of (topic, payload) at the end of the pending list. */
int ingest__keep(struct daemon *d, const char *topic, const void *payload, size_t len);
/* Open the journal (d->journal_path), loading what a previous run left in
 * it into the pending list. MQC_OK or MQC_ERR_IO. */
int ingest__journal_open(struct daemon *d);
/* An archive_created_fn (archive.h): when the account user was created,
 * from auth.db; arg is the daemon. */
int ingest__created_of(const char *user, int64_t *created, void *arg);

/* ---- rpc.c ---- */
/* Answer one request that arrived on chat/rpc/<user>/req. */
void rpc__handle(struct conn *c, const struct mqtt_msg *msg);
/* New reference: the error answer {"id":id,"ok":false,"error":code,
 * "message":...} shared by RPC and registration; id is borrowed (NULL gives
 * "id":null). */
json_t *rpc__fail(json_t *id, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The frame every RPC and registration request shares: at most max_len
 * bytes of JSON, an object with a string "id" of 1..max_id bytes. Returns the
 * request (new reference; *id borrowed from it), or NULL with *answer set to
 * the error answer to send (new reference). */
json_t *rpc__load_request(const void *payload, size_t len, size_t max_len, size_t max_id,
		json_t **id, json_t **answer);

/* ---- register.c ---- */
/* Answer one request that arrived on chat/register/<clientid>/req. */
void register__handle(struct conn *c, const struct mqtt_msg *msg);

/* ---- pwthrottle.c ---- */
struct pwt_entry;
/* How many ms user's password may not be checked yet (0: it may). */
int64_t pwthrottle__locked(struct daemon *d, const char *user, int64_t now);
/* Record a check of user's password (right or wrong) at now (mono ms).
 * MQC_OK or MQC_ERR_NOMEM (nothing recorded). */
int pwthrottle__result(struct daemon *d, const char *user, bool right, int64_t now);
void pwthrottle__cleanup(struct daemon *d);

/* ---- register.c ---- */
/* Forget the client ids that made accounts. */
void register__cleanup(struct daemon *d);

/* ---- later.c ---- */
struct later;
/* Keep the answer text (stolen) to req until the broker has applied the
 * change committed at commit_ns (time__mono_ns). */
void later__add(struct conn *c, const char *topic, char *text, const struct mqtt_msg *req,
		int64_t commit_ns);
/* Send the answers that are due; returns when to look again (INT64_MAX:
 * none waits). */
int64_t later__run(struct daemon *d, int64_t now);
void later__cleanup(struct daemon *d);

/* ---- expiry.c ---- */
/* Do a bounded amount of expiry work if due; returns the monotonic ms at
 * which it wants to run again. */
int64_t expiry__tick(struct daemon *d, int64_t now);
void expiry__cleanup(struct expiry *e);

#endif
