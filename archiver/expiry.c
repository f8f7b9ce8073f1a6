/* expiry.c - deleting archived messages older than their retention.
 *
 * A pass visits each room with a retention of its own (rooms.retention_days
 * > 0 in auth.db), then everything else against the global retention
 * (retention_days, 0 = keep forever). Each call does one small step (at most
 * EXPIRY_SCAN rows in one transaction) and hands control back to the poll
 * loop, so ingest never waits behind a long delete. The same tick runs
 * the full-text indexing steps (ingest__index_tick). Deleting a message
 * takes its index entry, its reactions and its place as its
 * conversation's last with it (the archive's triggers). */
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "userdb.h"

#define EXPIRY_SCAN ARCHIVE_BATCH
#define DAY_MS (24LL * 3600 * 1000)

void expiry__cleanup(struct expiry *e)
{
	size_t i;

	for(i = 0; i < e->nrooms; i++) free(e->rooms[i]);
	free(e->rooms);
	free(e->room_days);
	e->rooms = NULL;
	e->room_days = NULL;
	e->nrooms = 0;
	e->running = false;
}

static int room_cb(const char *room, int retention_days, int64_t created, void *arg)
{
	struct expiry *e = arg;
	char **rooms;
	int *days;

	(void)created;
	if(retention_days <= 0) return MQC_OK;
	rooms = realloc(e->rooms, (e->nrooms + 1) * sizeof(*rooms));
	if(rooms == NULL) return MQC_ERR_NOMEM;
	e->rooms = rooms;
	days = realloc(e->room_days, (e->nrooms + 1) * sizeof(*days));
	if(days == NULL) return MQC_ERR_NOMEM;
	e->room_days = days;
	e->rooms[e->nrooms] = strdup(room);
	if(e->rooms[e->nrooms] == NULL) return MQC_ERR_NOMEM;
	e->room_days[e->nrooms] = retention_days;
	e->nrooms++;
	return MQC_OK;
}

static void end_pass(struct daemon *d, int64_t now)
{
	struct expiry *e = &d->exp;

	if(e->deleted > 0){
		log_info("expiry: %lld message(s) past their retention deleted", (long long)e->deleted);
	}
	log_debug("expiry: pass done");
	expiry__cleanup(e);
	e->next_run = now + (int64_t)d->cfg.expiry_interval * 1000;
}

static int64_t expire_tick(struct daemon *d, int64_t now)
{
	struct expiry *e = &d->exp;
	char conv[NAME_MAX_LEN + 3];
	int64_t cutoff, wall = time__now_ms();
	int64_t deleted0;
	bool done = false;
	int rc;

	if(!e->running){
		if(now < e->next_run) return e->next_run;
		rc = userdb__room_each(d->udb, room_cb, e);
		if(rc != MQC_OK){
			log_warnx("expiry: cannot read the rooms: %s", mqc_strerror(rc));
			end_pass(d, now);
			return e->next_run;
		}
		e->running = true;
		e->stage = 0;
		e->cursor = 0;
		e->deleted = 0;
	}
	deleted0 = e->deleted;
	if(e->stage < e->nrooms){
		snprintf(conv, sizeof(conv), "r:%s", e->rooms[e->stage]);
		cutoff = wall - e->room_days[e->stage] * DAY_MS;
		rc = archive__expire_step(d->ar, conv, NULL, 0, cutoff, EXPIRY_SCAN,
				&e->cursor, &e->deleted, &done);
	}else if(d->cfg.retention_days > 0){
		cutoff = wall - d->cfg.retention_days * DAY_MS;
		rc = archive__expire_step(d->ar, NULL, (const char *const *)e->rooms, e->nrooms,
				cutoff, EXPIRY_SCAN, &e->cursor, &e->deleted, &done);
	}else{
		rc = MQC_OK;
		done = true;
	}
	/* A step that deleted (or failed) was a write. */
	metrics__add(MC_EXPIRED, e->deleted - deleted0);
	if(rc != MQC_OK || e->deleted != deleted0) metrics__store_write(MS_ARCHIVE, rc);
	if(rc != MQC_OK){
		/* Not a lost message: try again at the next pass. */
		log_warnx("expiry: %s (%s); next pass later", mqc_strerror(rc), archive__errmsg(d->ar));
		end_pass(d, now);
		return e->next_run;
	}
	if(done){
		e->stage++;
		e->cursor = 0;
		if(e->stage > e->nrooms){
			d->stats.expired += e->deleted;
			end_pass(d, now);
			return e->next_run;
		}
	}
	/* More to do: again soon, after the sockets had their turn. */
	return now + 1;
}

int64_t expiry__tick(struct daemon *d, int64_t now)
{
	/* The archive's other background work: the full-text index of what
	 * was stored, in batches (ingest.h). */
	int64_t a = expire_tick(d, now), b = ingest__index_tick(&d->ing, d->ar, now);

	return a < b ? a : b;
}
