/* archwatch.c - watch the archiver's store while a load runs. */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "archwatch.h"
#include "err.h"
#include "timeutil.h"

#define SAMPLE_MS 200
#define DRAIN_LIMIT_MS 20000
#define DRAIN_STALL_MS 5000
#define SETTLE_LIMIT_MS 20000
#define SETTLE_QUIET_MS 500

static int64_t stored_now(struct archwatch *w)
{
	int64_t v = -1;

	if(sqlite3_step(w->q) == SQLITE_ROW){
		v = sqlite3_column_int64(w->q, 0);
	}
	sqlite3_reset(w->q);
	return v;
}

static int64_t settle(struct archwatch *w);

int archwatch__init(struct archwatch *w, const char *path, const char *sql,
		char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->drain_ms = -1;
	if(sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK
			|| sqlite3_busy_timeout(w->db, 1000) != SQLITE_OK
			|| sqlite3_prepare_v2(w->db, sql, -1, &w->q, NULL) != SQLITE_OK){
		snprintf(err, errlen, "archive %s: %s", path, w->db ? sqlite3_errmsg(w->db) : "open failed");
		archwatch__cleanup(w);
		return MQC_ERR_DB;
	}
	w->base = settle(w);
	w->t_start = time__mono_ms();
	return MQC_OK;
}

/* The stored count once it has stopped moving: what an earlier load left
 * in flight must not count as this one's. Bounded by SETTLE_LIMIT_MS. */
static int64_t settle(struct archwatch *w)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	int64_t start = time__mono_ms(), last = start, v, prev = stored_now(w);

	while(time__mono_ms() - start < SETTLE_LIMIT_MS && time__mono_ms() - last < SETTLE_QUIET_MS){
		nanosleep(&ts, NULL);
		v = stored_now(w);
		if(v != prev){
			prev = v;
			last = time__mono_ms();
		}
	}
	return prev < 0 ? 0 : prev;
}

static int64_t take(struct archwatch *w, long sent)
{
	int64_t now = time__mono_ms(), stored = stored_now(w);

	if(stored < 0){
		return -1;
	}
	stored -= w->base;
	if(sent - stored > w->max_lag){
		w->max_lag = sent - stored;
	}
	if(w->ns < ARCHWATCH_SAMPLES){
		w->st[w->ns][0] = now - w->t_start;
		w->st[w->ns][1] = sent;
		w->st[w->ns][2] = stored;
		w->ns++;
	}
	w->next_ms = now + SAMPLE_MS;
	return stored;
}

void archwatch__sample(struct archwatch *w, long sent)
{
	if(w->db == NULL || time__mono_ms() < w->next_ms){
		return;
	}
	take(w, sent);
}

void archwatch__mark(struct archwatch *w, long sent)
{
	int64_t stored;

	if(w->db == NULL || w->nmarks >= 2){
		return;
	}
	stored = take(w, sent);
	w->mark_t[w->nmarks] = time__mono_ms();
	w->mark_stored[w->nmarks] = stored;
	w->mark_sent[w->nmarks] = sent;
	w->nmarks++;
}

void archwatch__drain(struct archwatch *w, long sent)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int64_t start = time__mono_ms(), last = start, now, stored, prev = -1;

	if(w->db == NULL){
		return;
	}
	for(;;){
		stored = take(w, sent);
		now = time__mono_ms();
		if(stored >= sent){
			w->drain_ms = now - start;
			break;
		}
		if(stored != prev){
			last = now;
			prev = stored;
		}
		if(now - start > DRAIN_LIMIT_MS || now - last > DRAIN_STALL_MS){
			break;
		}
		nanosleep(&ts, NULL);
	}
	w->sent_final = sent;
	w->stored_final = stored;
	w->final_lag = sent - stored;
}

void archwatch__print(const struct archwatch *w, FILE *out)
{
	double secs = w->nmarks == 2 ? (double)(w->mark_t[1] - w->mark_t[0]) / 1000.0 : 0.0;
	int i, step;

	fprintf(out, "{\"published\":%" PRId64 ",\"stored\":%" PRId64 ",\"stored_per_s\":%.1f,"
			"\"published_per_s\":%.1f,\"max_lag\":%" PRId64 ",\"final_lag\":%" PRId64
			",\"drain_ms\":%" PRId64 ",\"series\":[",
			w->sent_final, w->stored_final,
			secs > 0 ? (double)(w->mark_stored[1] - w->mark_stored[0]) / secs : 0.0,
			secs > 0 ? (double)(w->mark_sent[1] - w->mark_sent[0]) / secs : 0.0,
			w->max_lag, w->final_lag, w->drain_ms);
	/* At most ~60 points of the lag over time. */
	step = w->ns / 60 + 1;
	for(i = 0; i < w->ns; i += step){
		fprintf(out, "%s[%" PRId64 ",%" PRId64 ",%" PRId64 "]", i ? "," : "",
				w->st[i][0], w->st[i][1], w->st[i][2]);
	}
	fprintf(out, "]}");
}

void archwatch__cleanup(struct archwatch *w)
{
	if(w->q){
		sqlite3_finalize(w->q);
	}
	if(w->db){
		sqlite3_close(w->db);
	}
	w->q = NULL;
	w->db = NULL;
}
