/* bench.h - mqchat-bench, a load generator for mosquitto setups.
 *
 * One process, one thread: every client is a libmosquitto handle driven by
 * our own poll() loop (net.c), so the generator costs one core at most and
 * its figures do not depend on thread scheduling. Each mode prints one JSON
 * object on stdout; bench/bench.py turns those into the results table. */
#ifndef MQCHAT_BENCH_H
#define MQCHAT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct mosquitto;
struct mosquitto_message;

/* Options of every mode; bench__opts_defaults fills them. */
struct bench_opts {
	const char *host;
	int port;
	const char *password;     /* the password of every bench user */
	int qos;
	int size;                 /* payload bytes */
	int window;               /* messages in flight per publisher */
	double rate;              /* offered deliveries/s; 0: as fast as the window allows */
	long count;               /* measured messages (or connections, requests) */
	double seconds;           /* bound of the measured phase */
	int warmup_ms;
	int settle_ms;            /* after the SUBACKs, before the first publish */
	int broker_pid;           /* for CPU per message; 0 for none */
	/* pairs */
	int pairs;
	const char *sub_host;     /* the subscribers' broker (another node); NULL: host */
	int sub_port;             /* 0: port */
	const char *cpu_pids;     /* "PID,PID,...": each one's CPU over the measured phase */
	const char *archive_db;   /* archiver store to watch, or NULL */
	const char *archive_sql;  /* query returning the stored count */
	/* fanout */
	int members;
	const char *room;
	/* connect / flood */
	int users;                /* users s0..s<users/2-1>, r0..: login set */
	int concurrency;
	int flood;                /* concurrent wrong-password connections */
	const char *bind_good;
	const char *bind_flood;
	/* rpc */
	const char *op;           /* history | sync | conversations | search | catchup */
	const char *rpc_user;
	const char *rpc_with;
	int rpc_limit;
	long max_seq;
	const char *text;         /* search: what to look for */
	int depth;                /* conversations: the page asked (0: the first) */
	long after;               /* catchup: the device's last seq */
	/* prefill */
	int peers;                /* c0's direct conversations, with c1..c<peers> */
	/* resume */
	const char *prefix;       /* users <prefix>0..<prefix><users-1> */
	int persistent;           /* 1: clean session false, client id <user>@bench */
	const char *token_seed;   /* log in with device tokens derived from it (bench/README.md) */
};

void bench__opts_defaults(struct bench_opts *o);

/* ---- net.c: clients and the poll loop ---- */

struct bclient {
	struct mosquitto *mosq;
	int idx;
	bool connack;             /* CONNACK arrived */
	int connack_rc;           /* its return code */
	bool suback;
	int granted;              /* first granted QoS, 128 = refused */
	bool lost;                /* connection closed */
	void *owner;              /* the mode's state */
};

/* Create a client with TCP_NODELAY, MQTT 3.1.1, clean session, the given
 * credentials and client id, and start a blocking TCP connect (loopback) from
 * bind_addr (NULL for any). The CONNACK arrives through net__pass.
 * Returns MQC_OK, or an error with a message in err; c is then cleaned. */
int bclient__start(struct bclient *c, const struct bench_opts *o, const char *clientid,
		const char *username, const char *password, const char *bind_addr,
		void (*on_message)(struct mosquitto *, void *, const struct mosquitto_message *),
		char *err, size_t errlen);
/* Disconnect (if connected) and free; safe on a zeroed or cleaned struct. */
void bclient__cleanup(struct bclient *c);

/* One pass of the loop over n clients: poll up to timeout_ms, then read,
 * write and run keepalive for each. Clients that lose their connection get
 * lost = true and are skipped from then on. */
void net__pass(struct bclient **cs, size_t n, int timeout_ms);
/* Run passes until every client has its CONNACK (or is lost) or timeout_ms.
 * Returns the number of clients that connected with rc 0. */
size_t net__wait_connack(struct bclient **cs, size_t n, int timeout_ms);
/* Same for SUBACK. Returns the number granted (not 128). */
size_t net__wait_suback(struct bclient **cs, size_t n, int timeout_ms);

/* ---- stats.c ---- */

/* Latency samples in nanoseconds; a fixed capacity, extra samples dropped. */
struct lat {
	int64_t *v;
	size_t n, cap;
};
int lat__init(struct lat *l, size_t cap);
void lat__add(struct lat *l, int64_t ns);
/* Percentile p (0..100) in microseconds; sorts the samples. 0 if empty. */
double lat__pct_us(struct lat *l, double p);
void lat__cleanup(struct lat *l);

/* CPU time of a process (all threads) in seconds, -1 if unreadable:
 * schedstat (ns) where the kernel has it, else utime + stime of stat. */
double proc__cpu_s(int pid);

/* ---- the modes; each prints one JSON object and returns an exit status ---- */
int load__pairs(const struct bench_opts *o);
int load__fanout(const struct bench_opts *o);
int conn__rate(const struct bench_opts *o);
int conn__flood(const struct bench_opts *o);
int conn__resume(const struct bench_opts *o);
int rpc__latency(const struct bench_opts *o);
int prefill__archive(const struct bench_opts *o);

/* ---- payload.c ---- */

/* Write a valid text envelope of exactly size bytes (size >= 128) whose body
 * starts with the send time (monotonic ns) and the sequence number.
 * Returns the length written. */
int payload__make(char *buf, int size, const char *idprefix, long seq, int64_t now_ns);
/* The send time embedded by payload__make, or -1 if not found. */
int64_t payload__sent_ns(const void *payload, int len);

#endif
