/* ingest.h - the daemon's intake of chat messages (ingest.c): the pending
 * list, the journal and the invalid-payload limiter, in one struct the
 * daemon embeds and hands to every call.
 *
 * Ingest never calls the daemon back: each call returns what happened, and
 * the daemon decides what follows (commit now, leave the broker, retry).
 * The archive and auth.db handles stay the daemon's (it reopens the
 * archive after a failure); ingest__flush borrows them for the commit. */
#ifndef MQCHAT_INGEST_H
#define MQCHAT_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct archive;
struct userdb;
struct pending;

/* The largest inbox/room payload stored; anything larger is refused as
 * invalid (the plugin's own limit is far lower). */
#define INGEST_MAX_PAYLOAD (1024 * 1024)
/* Messages committed in one transaction: INGEST_BATCH when the batch
 * before was not full (a lone burst is committed soon), doubling after
 * each full one up to INGEST_BATCH_MAX while a backlog drains: a commit
 * writes every page its batch touched (the messages' four indexes, convs,
 * reads), and a larger batch touches fewer per message
 * (bench/micro/ingest_bench.c with the index ticked after each batch:
 * 1,000 -> 4,000 took 31,000 to 43,000 msg/s). */
#define INGEST_BATCH 1000
#define INGEST_BATCH_MAX 4000
/* A batch is committed at the latest this long after its first message
 * (the journal already makes it durable against a killed process). */
#define INGEST_MAX_DELAY_MS 50

struct ingest_stats {
	int64_t stored;
	int64_t duplicates;
	int64_t receipts;
	int64_t invalid;
	int64_t batches;
	int64_t journal_writes;
};

/* Contacts made by direct messages (ingest.c): the pairs known to be in
 * auth.db, and the new ones of the batch being committed. */
struct contact_pair;
struct ingest_contacts {
	uint64_t *known;            /* INGEST_CONTACT_SLOTS hashes; 0: empty */
	size_t nknown;
	struct contact_pair *fresh;
	size_t nfresh, capfresh;
};
#define INGEST_CONTACT_SLOTS 65536

/* The fields are ingest.c's; the daemon reads stats only. */
struct ingest {
	char journal_path[4096];
	int journal_fd;
	/* Journal records of the messages read since the last journal write;
	 * their PUBACKs wait until ingest__journal_sync has written them. */
	unsigned char *jbuf;
	size_t jlen, jcap;
	/* Messages taken from the broker, not yet committed to archive.db. */
	struct pending *pend_head, *pend_tail;
	size_t npending;
	int64_t pend_since;  /* monotonic ms when the oldest pending arrived */
	/* invalid payload log limiter */
	int64_t invalid_window;
	int invalid_logged;
	int64_t invalid_suppressed;
	struct ingest_contacts contacts;
	size_t batch_limit;  /* messages that make the batch full now (INGEST_BATCH..INGEST_BATCH_MAX) */
	/* full-text indexing (ingest__index_tick): when the next step may run */
	int64_t index_next;
	int64_t last_msg;    /* monotonic ms when the last message arrived */
	struct ingest_stats stats;
};

/* What ingest__message did with a message; the daemon acts on it. */
enum ingest_result {
	INGEST_KEPT = 0,     /* pending, its record in the journal buffer */
	INGEST_FULL,         /* kept, and a full batch waits: commit it (ingest__flush) */
	INGEST_NOMEM,        /* not kept whole (logged): leave the broker, which keeps it */
};

/* Make in empty, with no journal open. Nothing to free until
 * ingest__journal_open or ingest__message is called. */
void ingest__init(struct ingest *in);

/* Open the journal at path (copied), loading what a previous run left in
 * it into the pending list. MQC_OK; MQC_ERR_PERM (a link, not a regular
 * file) or MQC_ERR_IO, logged. */
int ingest__journal_open(struct ingest *in, const char *path);

/* True if topic lies under one of the message filters, chat/inbox/# or
 * chat/room/#: ingest__message takes it, and counts it as invalid unless
 * it is chat/inbox/<to>/<from> or chat/room/<room>/<from> of valid names. */
bool ingest__takes(const char *topic);

/* Take one inbox/room message (copied): add it to the pending list and its
 * record to the journal buffer. Invalid payloads are counted and logged
 * when committed. */
enum ingest_result ingest__message(struct ingest *in, const char *topic, const void *payload,
		size_t len);

/* Write the journal buffer with one write(). MQC_OK when it is on file (or
 * empty): the PUBACKs of those messages may go. MQC_ERR_IO (logged): they
 * may not; the buffer is kept. */
int ingest__journal_sync(struct ingest *in);

/* Commit the pending list to ar in one transaction, oldest first, then
 * empty the journal; udb gives the accounts' creation times. Both are
 * borrowed; ar may be NULL (not open: MQC_ERR_IO). MQC_OK when nothing is
 * left; otherwise nothing was committed and the list is intact. */
int ingest__flush(struct ingest *in, struct archive *ar, struct userdb *udb);

/* Index what was stored since the last step (archive__index_step), if it
 * is time: a step of at most INGEST_INDEX_ROWS seqs, then, while more
 * wait and messages arrived in the last INGEST_MAX_DELAY_MS, none for
 * five times as long as it took (indexing takes at most a sixth of the
 * thread that stores: under load the index falls behind, and search
 * reads the texts above its watermark itself); for as long as it took
 * (half the thread) once more than INGEST_INDEX_LAG seqs wait (the lag
 * stays bounded) or when no message arrived in that time (it catches up
 * three times as fast as under load); none for INGEST_INDEX_IDLE_MS once
 * it has caught up. now is monotonic ms; returns when to call again. A failure
 * is logged and retried then. */
int64_t ingest__index_tick(struct ingest *in, struct archive *ar, int64_t now);
#define INGEST_INDEX_ROWS 2048
#define INGEST_INDEX_IDLE_MS 250
#define INGEST_INDEX_LAG 32768

/* Messages waiting to be committed. */
size_t ingest__pending(const struct ingest *in);

/* Monotonic ms at which the pending list is due for a commit
 * (INGEST_MAX_DELAY_MS after its oldest message); INT64_MAX when empty. */
int64_t ingest__due(const struct ingest *in);

/* The journal's path, as given to ingest__journal_open ("" before). */
const char *ingest__journal_path(const struct ingest *in);

/* Free the pending list and the journal buffer, close the journal. Fine
 * on a struct that ingest__init set up and nothing else touched. */
void ingest__cleanup(struct ingest *in);

#endif
