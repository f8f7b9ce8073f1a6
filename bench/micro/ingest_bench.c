/* ingest_bench.c - the archiver's ingest capacity on one thread, without
 * broker or sockets: messages through ingest__message + ingest__flush
 * (batches of INGEST_BATCH, as the daemon commits them under load) with
 * the checkpointer on and ingest__index_tick called every 64 messages, as
 * the daemon's loop calls it after each read from the broker. Not part of `make`: build and run with
 *
 *   make all && bench/micro/ingest_bench.sh [--runs 3] [--count 100000] [--prefill 20000]
 *
 * With IB_STORE_CONF=FILE the archive is the one FILE (a store.conf)
 * names on PostgreSQL instead: give it a database without schema archive
 * (each run makes it; drop it between runs, so --runs 1). Several at
 * once into one archive, each with its own IB_ID_OFFSET, measure writers
 * sharing the seq lock.
 *
 * Each run: a fresh archive.db under /tmp, --prefill messages stored and
 * indexed (not timed), then --count messages timed (wall clock from the
 * first ingest__message to the last flush: "stored msg/s"), then the index
 * caught up (timed apart: "index catch-up"). The mix: 90% direct texts
 * among --people people (each writes to --contacts others, 10 by
 * default: about 10,000 conversations), 10% texts in 10 rooms; bodies of
 * 4..16 common words. No user store (udb NULL: contacts are not written,
 * the same before and after any change in the archive). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "archive_sqlite.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "timeutil.h"

static const char *const words[] = {
	"the", "meeting", "is", "at", "noon", "see", "you", "there", "thanks", "for", "coming",
	"lunch", "today", "running", "late", "call", "me", "when", "ready", "sounds", "good",
	"tomorrow", "morning", "project", "update", "sending", "files", "now", "great", "idea",
	"weekend", "plans", "working", "from", "home", "coffee", "break", "review", "pull",
	"request", "deploy", "finished", "nothing", "something", "everything", "evening",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static unsigned long long rs = 88172645463325252ULL;

static unsigned long long rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

/* One message's topic and payload. */
static int contacts = 10;
/* Added to every id (IB_ID_OFFSET): several runs at once into one
 * PostgreSQL archive store different messages. */
static long id_offset;

static size_t make(long i, int people, char *topic, size_t tlen, char *payload, size_t plen)
{
	char body[256];
	int n = 4 + (int)(rnd() % 13), at = 0;
	unsigned long long r = rnd();
	int from = (int)(r % (unsigned)people);
	/* one of from's contacts: (from * 7919 + k * 104729) mod people */
	int to = (int)(((unsigned long long)from * 7919u + ((r >> 20) % (unsigned)contacts) * 104729u)
			% (unsigned)people);

	for(int k = 0; k < n; k++){
		at += snprintf(body + at, sizeof(body) - (size_t)at, "%s%s", k ? " " : "", words[rnd() % NWORDS]);
	}
	if((r >> 40) % 10 == 0) snprintf(topic, tlen, "chat/room/room%d/u%d", (int)((r >> 44) % 10), from);
	else snprintf(topic, tlen, "chat/inbox/u%d/u%d", to, from);
	return (size_t)snprintf(payload, plen, "{\"id\":\"b-%ld\",\"type\":\"text\",\"body\":\"%s\",\"ts\":%lld}",
			i + id_offset, body, (long long)(1700000000000LL + i));
}

static int catchup_rows;   /* rows per index step when catching up (0: the default) */
static int64_t index_ns;   /* time in ingest__index_tick during the timed part */

static int feed(struct ingest *in, struct archive *ar, long from, long count, int people, bool index)
{
	char topic[128], payload[512];

	for(long i = from; i < from + count; i++){
		size_t len = make(i, people, topic, sizeof(topic), payload, sizeof(payload));

		if(ingest__message(in, topic, payload, len) == INGEST_FULL
				&& ingest__flush(in, ar, NULL) != MQC_OK){
			return -1;
		}
		/* the daemon's loop: a read of a chunk of messages, then the
		 * background work that is due (expiry__tick) */
		if(index && i % 64 == 63){
			int64_t t = time__mono_ns();

			ingest__index_tick(in, ar, time__mono_ms());
			index_ns += time__mono_ns() - t;
		}
	}
	if(ingest__flush(in, ar, NULL) != MQC_OK) return -1;
	return 0;
}

int main(int argc, char **argv)
{
	int runs = 3, people = 1000;
	long count = 100000, prefill = 20000;
	bool index = true;

	for(int i = 1; i < argc; i++){
		if(strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
		else if(strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atol(argv[++i]);
		else if(strcmp(argv[i], "--prefill") == 0 && i + 1 < argc) prefill = atol(argv[++i]);
		else if(strcmp(argv[i], "--people") == 0 && i + 1 < argc) people = atoi(argv[++i]);
		else if(strcmp(argv[i], "--contacts") == 0 && i + 1 < argc) contacts = atoi(argv[++i]);
		else if(strcmp(argv[i], "--catchup-rows") == 0 && i + 1 < argc) catchup_rows = atoi(argv[++i]);
		else if(strcmp(argv[i], "--no-index") == 0) index = false;
		else{
			fprintf(stderr, "usage: %s [--runs N] [--count N] [--prefill N] [--people N] [--contacts N] [--no-index] [--catchup-rows N]\n", argv[0]);
			return 2;
		}
	}
	if(getenv("IB_ID_OFFSET")) id_offset = atol(getenv("IB_ID_OFFSET"));
	log_init("ingest_bench", LOG_LVL_ERROR);
	archive__library_init();
	for(int run = 0; run < runs; run++){
		char dir[64], path[128], err[256], cmd[160];
		struct archive *ar;
		struct ingest in;
		int64_t t0, t1, t2, left;

		snprintf(dir, sizeof(dir), "/tmp/ingest_bench.XXXXXX");
		if(mkdtemp(dir) == NULL) return 1;
		snprintf(path, sizeof(path), "%s/archive.db", dir);
		if(getenv("IB_STORE_CONF")){
			/* The archive on PostgreSQL: a store.conf of the caller's
			 * naming a database with no schema archive yet. */
			snprintf(cmd, sizeof(cmd), "cp '%s' %s/store.conf", getenv("IB_STORE_CONF"), dir);
			if(system(cmd) != 0) return 1;
		}
		if(archive__open(path, &ar, err, sizeof(err)) != MQC_OK){
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		archive__start_checkpointer(ar, 200);
		if(getenv("IB_SQL") && archive__db(ar)) sqlite3_exec(archive__db(ar), getenv("IB_SQL"), NULL, NULL, NULL);
		ingest__init(&in);
		rs = 88172645463325252ULL;
		if(feed(&in, ar, 0, prefill, people, false) != 0) goto fail;
		do{
			if(archive__index_step(ar, 0, &left) != MQC_OK) goto fail;
		}while(left > 0);
		index_ns = 0;
		t0 = time__mono_ns();
		if(feed(&in, ar, prefill, count, people, index) != 0) goto fail;
		t1 = time__mono_ns();
		do{
			if(archive__index_step(ar, catchup_rows, &left) != MQC_OK) goto fail;
		}while(left > 0);
		t2 = time__mono_ns();
		printf("run %d: %ld messages stored in %.3f s: %.0f msg/s (%.3f s of it indexing);"
				" index catch-up after %.3f s\n",
				run + 1, count, (double)(t1 - t0) / 1e9, (double)count * 1e9 / (double)(t1 - t0),
				(double)index_ns / 1e9, (double)(t2 - t1) / 1e9);
		fflush(stdout);
		ingest__cleanup(&in);
		archive__close(ar);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if(system(cmd) != 0) return 1;
		continue;
fail:
		fprintf(stderr, "run %d failed: %s\n", run + 1, archive__errmsg(ar));
		return 1;
	}
	return 0;
}
