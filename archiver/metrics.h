/* metrics.h - the archiver's figures for Prometheus: one registry, counted
 * by whichever thread does the work, rendered by the metrics HTTP thread
 * (metrics_http.h; archiver/README.md "Metrics and health" lists them).
 *
 * Decisions:
 *   - One registry for the process, like the log: ingest (the poll loop),
 *     the worker, the push thread, registration and expiry each count
 *     where they are, without a handle threaded down to them. Tests call
 *     metrics__reset.
 *   - The counting side never allocates, locks or calls the system on the
 *     per-message path: C11 atomics with relaxed order (a scrape may see
 *     one counter a step ahead of another; each is exact on its own). The
 *     per-message path touches one atomic store (the pending gauge);
 *     stored messages are added once per committed batch.
 *   - Labelled series (RPC op and code, push provider, registration
 *     result) take a slot of a fixed table the first time a label pair is
 *     seen, under a mutex (at most once per pair); later counts find it
 *     without the lock. Label values come from the program (the op table,
 *     error codes, provider names), never from a request: an op nobody
 *     knows is counted as "unknown". A full table counts in its last slot,
 *     labelled "other".
 *   - Broker figures ($SYS/broker/...) and the plugin's payload
 *     ($SYS/mqchat/plugin) arrive on the poll loop a few times a minute;
 *     they are kept under a mutex and copied out by the renderer. */
#ifndef MQCHAT_METRICS_H
#define MQCHAT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

/* Counters without labels. */
enum metrics_counter {
	MC_MESSAGES_STORED = 0,
	MC_MESSAGES_DUPLICATE,
	MC_MESSAGES_INVALID,
	MC_RECEIPTS,
	MC_COMMITS,
	MC_REQUESTS_REFUSED,    /* the worker's queue was full: rate_limited at once */
	MC_PUSH_QUEUED,
	MC_PUSH_DROPPED,        /* the person came online (or muted it) first */
	MC_EXPIRED,             /* messages deleted past their retention */
	MC_SPOOL_RECORDS,       /* records read from the spool (spool yes) */
	MC_REQUESTS_DROPPED,    /* requests read from the spool while connection 0 was down */
	MC_COUNT
};

/* Gauges without labels. */
enum metrics_gauge {
	MG_PENDING = 0,         /* messages in the journal, not yet committed */
	MG_COMMIT_LAG_MS,       /* the last batch: its oldest message's arrival to the commit */
	MG_BROKER_CONNECTIONS,  /* broker connections up (CONNACK received) */
	MG_SPOOL_LAG_BYTES,     /* spool bytes written by the broker, not yet consumed by the archiver */
	MG_COUNT
};

/* Labelled counters. */
enum metrics_family {
	MF_RPC_ERRORS = 0,      /* {op, code} */
	MF_REGISTRATIONS,       /* {result}: "ok" or the error code */
	MF_PUSH_SENT,           /* {provider} */
	MF_PUSH_FAILED,         /* {provider}: given up */
	MF_PUSH_GONE,           /* {provider}: the target is gone, removed */
	MF_COUNT
};

/* The stores /health and mqchat_archiver_store_write_ok speak of. */
enum metrics_store {
	MS_AUTH = 0,
	MS_ARCHIVE,
	MS_PUSH,
	MS_COUNT
};

/* RPC latency buckets (seconds, upper bounds; +Inf follows). */
#define METRICS_RPC_BUCKETS 14
extern const double metrics__rpc_bounds[METRICS_RPC_BUCKETS];
/* Label slots per family, and label values' longest length (a longer
 * value is cut). */
#define METRICS_SLOTS 96
#define METRICS_LABEL_MAX 40
/* The largest plugin payload taken (the plugin sends less). */
#define METRICS_PLUGIN_MAX 16384
/* Broker figures kept at most. */
#define METRICS_BROKER_MAX 128

/* ---- counting: any thread ---- */

void metrics__add(enum metrics_counter c, int64_t n);
void metrics__set(enum metrics_gauge g, int64_t v);
/* One more of family f with label values a (and b for two-label
 * families; NULL otherwise). */
void metrics__count(enum metrics_family f, const char *a, const char *b);
/* An RPC answered: op (NULL: no op could be read; "unknown": not one of
 * ours), code (NULL: ok; else the error code) and ns from its arrival to
 * its answer. */
void metrics__rpc(const char *op, const char *code, int64_t ns);
/* A batch was committed (ingest.c): the counts moved from before to
 * after, and lag_ms from its oldest message's arrival. */
void metrics__committed(const struct ingest_stats *before, const struct ingest_stats *after,
		int64_t lag_ms);
/* The last write to store s ended with rc (MQC_OK or an MQC_ERR_*). */
void metrics__store_write(enum metrics_store s, int rc);
/* Is the archiver's connection 0 to the broker up? Poll loop. */
void metrics__broker_up(bool up);

/* ---- figures from the broker: poll loop ---- */

/* A message on $SYS/...: a numeric $SYS/broker/<path> is kept as
 * mosquitto_<path>; $SYS/mqchat/plugin is the plugin's payload, kept if
 * it passes metrics__plugin_valid; anything else is ignored. now is
 * monotonic ms. */
void metrics__sys_message(const char *topic, const void *payload, size_t len, int64_t now);
/* Forget the broker's figures (connection 0 closed: they would go stale;
 * the broker sends them again, retained, at the next subscription). */
void metrics__broker_forget(void);

/* ---- pure rules (tests/unit/test_metrics.c) ---- */

/* The Prometheus name of $SYS topic (topic less "$SYS/broker/": path)
 * into out: "mosquitto_" + path with '/', ' ' and '-' as '_', "_total"
 * after the cumulative ones, "uptime" as "mosquitto_uptime_seconds".
 * *counter says which type. False when path has another character than
 * letters, digits, '_', '/', ' ' and '-', or out is too small. */
bool metrics__broker_name(const char *path, char *out, size_t outlen, bool *counter);
/* The number of a $SYS payload: a decimal integer or fraction, or "N
 * seconds" (uptime). False for anything else (version strings). */
bool metrics__broker_value(const void *payload, size_t len, double *out);
/* Does the plugin's payload[0..len) hold only lines (each ending '\n') of
 * printable ASCII that start "mqchat_plugin_" or "# " (HELP and TYPE only
 * of mqchat_plugin_ names), none of them about mqchat_plugin_up? */
bool metrics__plugin_valid(const void *payload, size_t len);
/* value as a Prometheus label value (\\, \" and \n escaped) into out,
 * NUL-terminated and cut to fit. */
void metrics__escape(const char *value, char *out, size_t outlen);

/* ---- rendering: the HTTP thread ---- */

/* A growing text buffer. */
struct metrics_buf {
	char *p;
	size_t len, cap;
	bool failed;             /* out of memory: p holds what fitted */
};
void metrics_buf__printf(struct metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void metrics_buf__free(struct metrics_buf *b);

/* Append every figure in the Prometheus text format 0.0.4 to b: the
 * archiver's, the file sizes of datadir's stores (stat at this call), the
 * broker's and the plugin's (while fresh: mqchat_plugin_up says). now is
 * monotonic ms. */
void metrics__render(struct metrics_buf *b, const char *datadir, int64_t now);

/* The state /health reads: connection 0 up, and store s's last write
 * (MQC_OK when it succeeded or none was made). */
bool metrics__broker_is_up(void);
int metrics__store_last(enum metrics_store s);

/* Zero everything (tests). */
void metrics__reset(void);

#endif
