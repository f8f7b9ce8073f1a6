/* spool_in.c - the daemon's intake from the node's spool (`spool yes`).
 *
 * With the spool on, the broker's plugin copies every client publish the
 * archiver would receive through its subscriptions into DATA/spool before
 * the broker acknowledges it (common/spool.h), and the archiver reads them
 * from there instead: a broker killed with SIGKILL loses nothing it
 * acknowledged, and the broker no longer delivers each message a second
 * time, to the archiver.
 *
 * The poll loop reads records (at most SPOOL_READ_BUDGET bytes a turn, so
 * the broker connections and timers take turns with a backlog) and hands
 * each to the same dispatch as a message from the broker (daemon__dispatch).
 * Its position in the spool moves (spool__consume) only once the journal
 * holds what it read: where the PUBACKs leave in the MQTT intake. So a
 * killed archiver starts again from a position whose messages are all in
 * the journal or the archive, and reads again at most what it had read
 * since (dedup drops those).
 *
 * A thread sleeps in spool__wait while the loop has read everything, and
 * wakes the loop through an eventfd when the broker writes more. The loop
 * arms it with the position it reached; it disarms itself after a wake-up,
 * so a busy spool costs the thread nothing and the loop one read() of the
 * eventfd per burst.
 *
 * The broker makes the file (plugin_opt_spool_mb says its size); until it
 * exists the loop looks for it once a second. Nothing can be in a spool
 * that does not exist yet, so waiting loses nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "daemon.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "spool.h"
#include "timeutil.h"

/* Bytes of records read per turn of the poll loop (as READ_BUDGET per
 * connection in daemon.c). */
#define SPOOL_READ_BUDGET (256 * 1024)
/* How often to look for a spool the broker has not made yet. */
#define SPOOL_OPEN_RETRY_MS 1000
/* How often a missing spool is said again. */
#define SPOOL_TELL_MS 60000
/* The waiting thread's longest sleep: how long a stop may wait for it. */
#define SPOOL_WAIT_MS 250

struct spool_in {
	char path[4096];
	struct spool *s;             /* NULL until the file exists */
	uint64_t pos;                /* the next record to read */
	uint64_t consumed;           /* the last position given to spool__consume */
	int64_t next_open;           /* monotonic ms of the next open attempt */
	int64_t told_missing;        /* monotonic ms "waiting for the broker" was last said; 0: never */
	bool broken;                 /* a corrupt record: reading stopped (logged) */
	int efd;                     /* eventfd: the thread says records wait */
	pthread_t thread;
	bool started;
	/* Guarded by mu: the thread sleeps on cv until armed. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool armed;
	uint64_t armed_pos;
	bool stop;
};

static void *waiter_main(void *arg)
{
	struct spool_in *si = arg;
	uint64_t one = 1, pos;

	pthread_mutex_lock(&si->mu);
	while(!si->stop){
		if(!si->armed){
			pthread_cond_wait(&si->cv, &si->mu);
			continue;
		}
		pos = si->armed_pos;
		pthread_mutex_unlock(&si->mu);
		/* Only this thread waits on the archiver's slot: spool.h allows
		 * spool__wait beside the loop's spool__read. */
		if(spool__wait(si->s, SPOOL_READER_ARCHIVER, pos, SPOOL_WAIT_MS) == MQC_OK){
			pthread_mutex_lock(&si->mu);
			si->armed = false;
			pthread_mutex_unlock(&si->mu);
			if(write(si->efd, &one, sizeof(one)) < 0){
				/* The counter is full: a wake-up is pending anyway. */
			}
		}
		pthread_mutex_lock(&si->mu);
	}
	pthread_mutex_unlock(&si->mu);
	return NULL;
}

int spool_in__start(const char *datadir, struct spool_in **out, char *err, size_t errlen)
{
	struct spool_in *si = calloc(1, sizeof(*si));
	size_t len = strlen(datadir);
	int n;

	*out = NULL;
	if(si == NULL) return MQC_ERR_NOMEM;
	n = snprintf(si->path, sizeof(si->path), "%s%s%s", datadir,
			len && datadir[len - 1] == '/' ? "" : "/", SPOOL_FILE);
	if(n < 0 || (size_t)n >= sizeof(si->path)){
		free(si);
		mqc_seterr(err, errlen, "data folder path too long");
		return MQC_ERR_INVAL;
	}
	si->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if(si->efd < 0){
		mqc_seterr(err, errlen, "eventfd: %s", strerror(errno));
		free(si);
		return MQC_ERR_IO;
	}
	pthread_mutex_init(&si->mu, NULL);
	pthread_cond_init(&si->cv, NULL);
	if(pthread_create(&si->thread, NULL, waiter_main, si) != 0){
		mqc_seterr(err, errlen, "cannot start the thread that waits on the spool");
		spool_in__stop(si);
		return MQC_ERR_IO;
	}
	si->started = true;
	*out = si;
	return MQC_OK;
}

int spool_in__fd(const struct spool_in *si)
{
	return si ? si->efd : -1;
}

/* Open the spool if the broker has made it. MQC_OK when open. */
static int try_open(struct spool_in *si, int64_t now)
{
	char err[1024];
	int rc;

	if(si->s) return MQC_OK;
	if(now < si->next_open) return MQC_ERR_AGAIN;
	si->next_open = now + SPOOL_OPEN_RETRY_MS;
	/* Size 0: the broker's plugin_opt_spool_mb says how large the ring
	 * is; the archiver never makes the file (it would have to guess). */
	rc = spool__open(si->path, 0, 0, &si->s, err, sizeof(err));
	if(rc == MQC_ERR_NOTFOUND){
		/* A warning, again every minute: without the file nothing is
		 * stored, and a broker without plugin_opt_spool_mb never makes
		 * it (the archiver does not subscribe either). */
		if(si->told_missing == 0 || now - si->told_missing >= SPOOL_TELL_MS){
			log_warnx("%s does not exist yet: waiting for the broker to make it (nothing is"
					" stored until then; is plugin_opt_spool_mb set in its config?)", si->path);
			si->told_missing = now;
		}
		return rc;
	}
	if(rc != MQC_OK){
		/* Every try, once a second: an unreadable spool stops storing,
		 * and the broker refuses messages once its ring is full. */
		log_warnx("cannot open the spool: %s", err);
		return rc;
	}
	si->pos = si->consumed = spool__position(si->s, SPOOL_READER_ARCHIVER);
	log_info("reading %s from position %llu (%llu bytes waiting, ring of %llu bytes)", si->path,
			(unsigned long long)si->pos,
			(unsigned long long)(spool__write_position(si->s) - si->pos),
			(unsigned long long)spool__ring_size(si->s));
	return MQC_OK;
}

/* Hand the thread the position to wait past. */
static void arm(struct spool_in *si)
{
	pthread_mutex_lock(&si->mu);
	si->armed = true;
	si->armed_pos = si->pos;
	pthread_cond_signal(&si->cv);
	pthread_mutex_unlock(&si->mu);
}

/* What one record asks: the same dispatch as a message from the broker,
 * answered on connection 0. Records not flagged for the archiver (the bus's,
 * later) are passed over. */
static void dispatch(struct daemon *d, const struct spool_rec *rec)
{
	struct mqtt_msg msg = {
		.topic = rec->topic,
		.payload = rec->payload,
		.len = rec->len,
		.corr = rec->corr_len ? rec->corr : NULL,
		.corr_len = rec->corr_len,
		.resp_topic = rec->resp_topic,
	};

	if(!(rec->flags & SPOOL_F_STORE)) return;
	daemon__dispatch(&d->conns[0], &msg, true);
}

/* The journal holds what was read: let the broker reuse its space. */
static void consume(struct spool_in *si, struct daemon *d)
{
	int rc;

	if(si->pos == si->consumed) return;
	rc = ingest__journal_sync(&d->ing);
	if(rc != MQC_OK){
		/* Not consumed: read again after the restart, if it comes to
		 * that; dedup drops what was already stored. */
		daemon__db_failed(d, rc, "journal");
		return;
	}
	spool__consume(si->s, SPOOL_READER_ARCHIVER, si->pos);
	si->consumed = si->pos;
}

int64_t spool_in__tick(struct spool_in *si, struct daemon *d, int64_t now, bool signalled)
{
	struct spool_rec rec;
	uint64_t one, start;
	int64_t n = 0;
	int rc = MQC_ERR_AGAIN;

	if(signalled && read(si->efd, &one, sizeof(one)) < 0){
		/* Already drained: we read anyway. */
	}
	if(try_open(si, now) != MQC_OK) return si->next_open;
	if(si->broken) return INT64_MAX;
	start = si->pos;
	while(d->db_ok && !d->stop && si->pos - start < SPOOL_READ_BUDGET){
		rc = spool__read(si->s, &si->pos, &rec);
		if(rc != MQC_OK) break;
		si->pos = rec.end;
		n++;
		dispatch(d, &rec);
	}
	if(n) metrics__add(MC_SPOOL_RECORDS, n);
	if(rc == MQC_ERR_CORRUPT){
		/* Where the next record starts is unknown: stop here, loudly.
		 * The broker refuses messages once the ring is full, so nothing
		 * acknowledged is lost. */
		log_error("%s: the record at position %llu is corrupt: reading from the spool stopped"
				" (what is before it is stored; the broker refuses messages once the spool is"
				" full)", si->path, (unsigned long long)si->pos);
		si->broken = true;
	}
	if(d->db_ok) consume(si, d);
	/* The archive or the journal failed on the way (daemon__db_failed):
	 * a record may have been read and not kept. Read again from what the
	 * journal holds once the archive is back; dedup drops the rest. */
	if(!d->db_ok) si->pos = si->consumed;
	metrics__set(MG_SPOOL_LAG_BYTES, (int64_t)(spool__write_position(si->s) - si->consumed));
	if(rc == MQC_OK && d->db_ok && !d->stop) return now;   /* the budget ran out: more waits */
	if(rc == MQC_ERR_AGAIN && d->db_ok) arm(si);
	return INT64_MAX;
}

bool spool_in__is_open(const struct spool_in *si)
{
	return si && si->s;
}

void spool_in__stop(struct spool_in *si)
{
	if(si == NULL) return;
	if(si->started){
		pthread_mutex_lock(&si->mu);
		si->stop = true;
		pthread_cond_signal(&si->cv);
		pthread_mutex_unlock(&si->mu);
		pthread_join(si->thread, NULL);
	}
	pthread_mutex_destroy(&si->mu);
	pthread_cond_destroy(&si->cv);
	if(si->efd >= 0) close(si->efd);
	spool__close(si->s);
	free(si);
}
