/* archwatch.h - watch the archiver's store while a load runs.
 *
 * Samples a count query (e.g. SELECT max(seq) FROM messages) every 200 ms
 * and reports the stored rate, the lag (published - stored) over time, and
 * how long the archiver needs to catch up once publishing stops. */
#ifndef MQCHAT_BENCH_ARCHWATCH_H
#define MQCHAT_BENCH_ARCHWATCH_H

#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#define ARCHWATCH_SAMPLES 512

struct archwatch {
	sqlite3 *db;              /* NULL: not watching (every call is a no-op) */
	sqlite3_stmt *q;
	int64_t base;             /* stored count before the load */
	int64_t t_start;          /* mono ms of the first sample */
	int64_t next_ms;
	int64_t mark_t[2], mark_stored[2], mark_sent[2];
	int nmarks;
	int64_t max_lag;
	int64_t drain_ms;         /* -1: never caught up */
	int64_t final_lag;
	int64_t sent_final;
	int64_t stored_final;
	int ns;
	int64_t st[ARCHWATCH_SAMPLES][3]; /* t ms, published, stored (since base) */
};

/* Open path and prepare sql (one integer column; nothing is written), then
 * wait until the count stops moving (what an earlier run left in flight)
 * and take it as the base. Returns MQC_OK or an error with a message in err. */
int archwatch__init(struct archwatch *w, const char *path, const char *sql,
		char *err, size_t errlen);
/* Take a sample if 200 ms have passed since the last one. */
void archwatch__sample(struct archwatch *w, long sent);
/* Sample now and remember it as the start (first call) or end of the measured phase. */
void archwatch__mark(struct archwatch *w, long sent);
/* After publishing stopped: wait (bounded) until stored reaches sent. */
void archwatch__drain(struct archwatch *w, long sent);
/* Print the figures as one JSON object. */
void archwatch__print(const struct archwatch *w, FILE *out);
void archwatch__cleanup(struct archwatch *w);

#endif
