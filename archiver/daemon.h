/* daemon.h - the archiver daemon (`mqchat-archiver [--data DIR] run ...`).
 *
 * The public entry point is daemon__main; the rest of this header is shared
 * by the daemon's own files (daemon.c, rpc.c, register.c, worker.c,
 * later.c, expiry.c) and by nothing else. Ingest has its own (ingest.h).
 *
 * The poll loop: one thread over the K broker connections (mqtt.c), a
 * self-pipe for signals and timers. Each read from a connection hands its
 * messages to ingest.c, which keeps them in memory and adds them to a
 * journal buffer; after the read the buffer goes to the journal
 * (archive.journal) with one write(), and only then do the PUBACKs of those
 * messages leave, in one write() too. Batches are committed to archive.db by
 * the batch size (INGEST_BATCH, up to INGEST_BATCH_MAX while a backlog
 * drains: ingest.h) or INGEST_MAX_DELAY_MS and before every RPC request is handed
 * on, then the journal is emptied; it is replayed at start. So a killed
 * process loses nothing it acknowledged.
 *
 * Requests (RPC, registration) never run on the loop: it copies each into
 * the worker's bounded queue (worker.c) and goes on storing; the worker
 * thread answers with its own connections to both stores (struct
 * responder), and the loop publishes its answers. A third thread, the
 * archive's checkpointer (archive.c), copies the WAL back. */
#ifndef MQCHAT_DAEMON_H
#define MQCHAT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "ingest.h"
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
struct http;
struct metrics_http;
struct push;
struct spool_in;

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
	/* SUBACKs come back in the order of the SUBSCRIBEs (the broker
	 * answers each packet as it reads it): which of them, counted since
	 * the CONNACK, are for the $SYS filters (-1: none). */
	int subs_sent, subacks_seen;
	int sys_sub[2];
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

/* The daemon's counts beside ingest's (struct ingest_stats). */
struct daemon_stats {
	int64_t rpc;
	int64_t registrations;
	int64_t expired;
};

struct daemon {
	struct config cfg;
	char archive_path[4096];
	char auth_path[4096];
	char password[1025];
	struct archive *ar;
	struct userdb *udb;
	struct conn conns[CONFIG_MAX_CONNECTIONS];
	int nconns;

	bool db_ok;          /* false: the archive cannot be written; stay off the broker */
	int64_t db_next_try; /* monotonic ms */
	int db_backoff;
	/* Messages taken, their journal (ingest.c). */
	struct ingest ing;

	struct expiry exp;
	struct daemon_stats stats;

	/* The thread that answers requests (worker.c). */
	struct worker *worker;
	/* Answers waiting for the broker to apply their change (later.c). */
	struct later *later_head, *later_tail;
	/* The web app's HTTP server (http.h), on a thread of its own; NULL
	 * without http_port. */
	struct http *http;
	/* /metrics and /health (metrics_http.h), on a thread of its own; NULL
	 * without metrics_port. */
	struct metrics_http *metrics;
	bool sys_refused_told;   /* a refused $SYS subscription was logged */
	/* The push thread (push.h); NULL with push off or when it could not
	 * start. */
	struct push *push;
	/* The spool intake (spool_in.c); NULL unless `spool yes`. */
	struct spool_in *spool;
	/* Requests read from the spool while connection 0 was down, since it
	 * was last up (logged when it comes back; the metric counts them all). */
	int64_t spool_dropped_streak;

	int sigpipe[2];
	volatile int stop;
};

/* What answering requests needs (rpc.c, register.c, pwthrottle.c). It
 * belongs to the worker thread (worker.c), which opens its own connections
 * to both stores: the poll loop never shares a handle with it, and SQLite
 * connections are never used by two threads. */
struct responder {
	const struct config *cfg;      /* the daemon's, read only */
	const char *auth_path;         /* the daemon's */
	const char *archive_path;
	struct userdb *udb;            /* its own connection to auth.db */
	struct archive *ar;            /* its own connection to archive.db (reads) */
	struct push_store *push;       /* its own connection to push.db (rpc_push.c opens it) */
	struct worker *w;              /* where its answers go */
	int conn;                      /* connection of the request being answered */
	int64_t arrived_ns;            /* when it arrived (time__mono_ns): its latency's start */
	/* userdb__committed_ns(udb) the last answer accounted for */
	int64_t answered_ns;
	/* registration token bucket */
	double reg_tokens;
	int64_t reg_last;
	/* accounts whose password was checked lately (pwthrottle.c) */
	struct pwt_entry *pwt;
	size_t pwt_n, pwt_cap;
	/* client ids that made an account (register.c) */
	struct reg_done *reg_done;
	size_t reg_done_n, reg_done_cap;
	int64_t rpc, registrations;    /* requests answered, accounts made */
	/* bad device login reports (seen.c): when one was last told, and how
	 * many since were not */
	int64_t seen_warned;
	int64_t seen_quiet;
};

/* ---- daemon.c ---- */
/* Publish text (len bytes) on topic at QoS 1 through c, now. */
void daemon__send(struct conn *c, const char *topic, const char *text, size_t len,
		const unsigned char *corr, size_t corr_len);
/* The archive cannot be written (rc from the store): leave the broker, so
 * nothing more is acknowledged into the void, and retry with backoff. */
void daemon__db_failed(struct daemon *d, int rc, const char *what);
/* A message that arrived on c, or (from_spool) a record of the spool
 * answered on c, connection 0: store it, hand a request to the worker, or
 * take a figure. A request from the spool while c is down is dropped
 * (counted): its asker's connection closed with the broker. */
void daemon__dispatch(struct conn *c, const struct mqtt_msg *msg, bool from_spool);

/* ---- spool_in.c ---- */
/* Start the spool intake for data folder datadir: its eventfd and the
 * thread that waits on the spool. The spool itself is opened by
 * spool_in__tick once the broker has made it. MQC_OK, or an error with err
 * filled. */
int spool_in__start(const char *datadir, struct spool_in **out, char *err, size_t errlen);
/* Readable when records wait: poll it, then call spool_in__tick with
 * signalled true. */
int spool_in__fd(const struct spool_in *si);
/* Open the spool if needed, read records (a budget's worth) into the
 * daemon's dispatch, consume what the journal holds. Poll loop; call it
 * while d->db_ok. Returns when to call again (INT64_MAX: when the fd says). */
int64_t spool_in__tick(struct spool_in *si, struct daemon *d, int64_t now, bool signalled);
/* Has the spool been opened? */
bool spool_in__is_open(const struct spool_in *si);
/* Stop the thread, close the spool, free si. NULL is fine. */
void spool_in__stop(struct spool_in *si);

/* ---- rpc.c ---- */
/* Answer one request that arrived on chat/rpc/<user>/req. Worker thread. */
void rpc__handle(struct responder *rs, const struct mqtt_msg *msg);
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

/* ---- seen.c ---- */
/* Entries a report may hold (the plugin sends at most 500), and how far
 * ahead of the archiver's clock a login time may be. */
#define SEEN_MAX_ENTRIES 4096
#define SEEN_MAX_AHEAD_MS (10 * 60 * 1000)

/* One device login of a report on chat/seen/<node>. */
struct seen_entry {
	char user[NAME_MAX_LEN + 1];
	char device[DEVICE_MAX_LEN + 1];
	int64_t ts;             /* wall clock ms */
};
/* Parse the report payload[0..len) received at now (wall clock ms):
 * {"seen":[{"user":NAME,"device":DEVICE,"ts":MS},...]}, 1 to
 * SEEN_MAX_ENTRIES entries, each a valid name and device and 0 < ts <= now
 * + SEEN_MAX_AHEAD_MS (other members are ignored). MQC_OK with *out (the
 * caller free()s it) and *n; otherwise MQC_ERR_INVAL (or MQC_ERR_NOMEM),
 * why says what, *out is NULL: a report is taken whole or not at all. */
int seen__parse(const void *payload, size_t len, int64_t now, struct seen_entry **out, size_t *n,
		char *why, size_t whylen);
/* userdb__device_seen for each of v[0..n) in one write transaction. */
int seen__apply(struct userdb *udb, const struct seen_entry *v, size_t n);
/* Store the report msg (a message on chat/seen/<node>), or log why not
 * (rate limited). Worker thread. */
void seen__handle(struct responder *rs, const struct mqtt_msg *msg);

/* ---- register.c ---- */
/* Answer one request that arrived on chat/register/<clientid>/req. Worker
 * thread. */
void register__handle(struct responder *rs, const struct mqtt_msg *msg);

/* ---- pwthrottle.c ---- */
struct pwt_entry;
/* How many ms user's password may not be checked yet (0: it may). */
int64_t pwthrottle__locked(struct responder *d, const char *user, int64_t now);
/* Record a check of user's password (right or wrong) at now (mono ms).
 * MQC_OK or MQC_ERR_NOMEM (nothing recorded). */
int pwthrottle__result(struct responder *d, const char *user, bool right, int64_t now);
void pwthrottle__cleanup(struct responder *d);

/* ---- register.c ---- */
/* Forget the client ids that made accounts. */
void register__cleanup(struct responder *d);

/* ---- worker.c ---- */
struct worker;
/* What the worker is handed. */
enum job_kind {
	JOB_RPC,                /* chat/rpc/<user>/req */
	JOB_REGISTER,           /* chat/register/<clientid>/req */
	JOB_SEEN,               /* chat/seen/<node>: stored, never answered */
};
/* Start the worker thread, with a responder for the daemon d's stores and
 * settings (its connections are opened by the thread, when the first
 * request comes). MQC_OK, or MQC_ERR_NOMEM / MQC_ERR_IO (no thread). */
int worker__start(struct daemon *d, struct worker **out);
/* Readable when answers wait: poll it, then call worker__deliver. */
int worker__fd(const struct worker *w);
/* Is there room for a job of kind, of len bytes on topic? The poll loop's
 * answer to "flush and submit, or refuse". */
bool worker__room(struct worker *w, enum job_kind kind, const char *topic, size_t len);
/* Queue a copy of the message msg that arrived on c, a job of kind.
 * MQC_OK; MQC_ERR_BUSY when there is no room (worker__room), MQC_ERR_NOMEM. */
int worker__submit(struct worker *w, struct conn *c, enum job_kind kind, const struct mqtt_msg *msg);
/* Answer msg at once with rate_limited and retry_ms: no room for it. */
void worker__refuse(struct conn *c, const struct mqtt_msg *msg);
/* Publish the answers the worker has made (later.c keeps those that wait
 * for the broker). Poll loop. */
void worker__deliver(struct worker *w, struct daemon *d);
/* Stop the thread once its current request is answered, deliver what it
 * answered, drop what still waits (logged), add its counts to d->stats and
 * free w. NULL is fine. */
void worker__stop(struct worker *w, struct daemon *d);
/* Hand the answer resp (stolen) to req, on topic, to the poll loop. If the
 * request committed a change to auth.db, the answer waits (later.c) until
 * the broker has applied it. Worker thread. */
void responder__reply(struct responder *rs, const char *topic, json_t *resp, const struct mqtt_msg *req);

/* Publish msg (stolen) on topic at QoS 1 through the request's
 * connection: a message of the archiver's own (a room's membership
 * event). It leaves once the change the request committed is in force, as
 * its answer will (which it precedes), or with now at once. Returns its
 * number for responder__sent (0: dropped, logged). Worker thread. */
uint64_t responder__publish(struct responder *rs, const char *topic, json_t *msg, bool now);
/* Wait until the poll loop has sent message n of responder__publish, at
 * most timeout_ms: true if it has. Worker thread. */
bool responder__sent(struct responder *rs, uint64_t n, int timeout_ms);

/* ---- later.c ---- */
struct later;
/* Keep the answer text (stolen) to req until the broker has applied the
 * change committed at commit_ns (time__mono_ns), and, on a store shared by
 * several nodes, every node heard from lately uses version change
 * (userdb__committed_change; 0: no such wait). */
void later__add(struct conn *c, const char *topic, char *text, const struct mqtt_msg *req,
		int64_t commit_ns, int64_t change);
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
