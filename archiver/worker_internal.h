/* worker_internal.h - the request queue's limits and structs (worker.c),
 * shared with tests/unit/test_archiver_worker.c, which checks the limits and
 * holds the thread (w->mu, w->stop, w->quantum_ms) to pile requests up in a
 * known order. Nothing else includes it: the daemon sees only the
 * functions in daemon.h. */
#ifndef MQCHAT_WORKER_INTERNAL_H
#define MQCHAT_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "names.h"

/* Requests waiting at most, all accounts together. */
#define WORKER_MAX_JOBS 256
/* ... and their payloads' bytes (a request may be up to the plugin's
 * payload limit; the worker refuses those over its own limits). */
#define WORKER_MAX_BYTES (4 * 1024 * 1024)
/* Requests of one account waiting at most: an app's start (rooms, sync,
 * blocked, profile) and some paging fit. */
#define WORKER_MAX_PER_KEY 16
/* A request that kept the worker busy this long costs its account one more
 * turn per quantum: its waiting requests go back that many rounds. */
#define WORKER_QUANTUM_MS 5
/* Told to a request refused for want of room. */
#define WORKER_RETRY_MS 1000
/* The request's id is read from at most this much JSON for a refusal
 * (rpc.c's own limit; a larger request gets "id":null, as from rpc.c). */
#define WORKER_MAX_PARSE 16384
#define WORKER_MAX_ID 128
/* The account device login reports count against (not a name anyone can
 * have, as "_register"). */
#define WORKER_SEEN_KEY "_seen"

/* One request waiting. */
struct job {
	struct job *next;
	enum job_kind kind;
	int conn;                /* index of the connection it came on */
	int64_t arrived_ns;      /* time__mono_ns when the loop handed it on */
	uint64_t round;          /* its turn (fair queueing) */
	char key[CLIENTID_MAX_LEN + 1];
	char *topic;             /* these four in the same allocation */
	char *resp_topic;        /* NULL: none asked for */
	unsigned char *payload;
	unsigned char *corr;
	size_t len, corr_len;
};

/* One answer for the loop to publish. */
struct answer {
	struct answer *next;
	int conn;
	int64_t commit_ns;       /* 0: send now; else wait for the broker (later.c) */
	int64_t change;          /* with commit_ns: its version, for every node (0: none) */
	uint64_t seq;            /* its number among the worker's (w->queued) */
	char *text;              /* from json_dumps: handed on to later__add */
	char *topic;             /* these two in the same allocation */
	unsigned char *corr;
	size_t corr_len;
};

struct worker {
	struct responder rs;     /* the worker thread's own */
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	struct job *jobs;        /* waiting, in arrival order */
	size_t njobs, bytes;
	uint64_t round;          /* round of the request last taken */
	int64_t quantum_ms;      /* WORKER_QUANTUM_MS (a test may change it) */
	bool open_failing;       /* the stores did not open (logged); worker thread */
	struct answer *ans_head, *ans_tail;
	/* Messages of the worker's own (responder__publish) handed to the
	 * poll loop, and of those the loop has sent: a worker waits on
	 * `sent` for its own (responder__sent). */
	uint64_t queued, delivered;
	pthread_cond_t sent;
	int wake[2];             /* a byte in wake[1] when answers wait */
};

#endif
