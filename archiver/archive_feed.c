/* archive_feed.c - the push thread's reading of archive.db (see archive.h,
 * "the feed"): a connection of its own, query_only, with its two
 * statements prepared once. Part of the archive's SQLite backend. */
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "archive.h"
#include "archive_store.h"
#include "err.h"
#include "userdb.h"

struct feed_sqlite {
	struct archive_feed base;   /* first: the table of functions */
	sqlite3 *db;
	sqlite3_stmt *scan;
	sqlite3_stmt *body;
};

static void feed_close(struct archive_feed *base);
static const struct archive_feed_ops feed_ops;

int archive_sqlite__feed_open(const char *path, struct archive_feed **out, char *err, size_t errlen)
{
	struct feed_sqlite *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if(f == NULL) return MQC_ERR_NOMEM;
	f->base.ops = &feed_ops;
	rc = sqlite3_open_v2(path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(rc == SQLITE_OK){
		sqlite3_busy_timeout(f->db, USERDB_BUSY_TIMEOUT_MS);
		rc = sqlite3_exec(f->db, "PRAGMA query_only=1", NULL, NULL, NULL);
	}
	/* Not the body: a row's columns past the last one asked for are not
	 * read, and a body may be 64 KiB. */
	if(rc == SQLITE_OK) rc = sqlite3_prepare_v3(f->db, "SELECT seq, sender, recipient, room, type, id,"
			" server_ts, deleted FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
			-1, SQLITE_PREPARE_PERSISTENT, &f->scan, NULL);
	if(rc == SQLITE_OK) rc = sqlite3_prepare_v3(f->db, "SELECT body FROM messages WHERE seq = ?1",
			-1, SQLITE_PREPARE_PERSISTENT, &f->body, NULL);
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", path, f->db ? sqlite3_errmsg(f->db) : sqlite3_errstr(rc));
		feed_close(&f->base);
		return MQC_ERR_DB;
	}
	*out = &f->base;
	return MQC_OK;
}

static void feed_close(struct archive_feed *base)
{
	struct feed_sqlite *f = (struct feed_sqlite *)base;

	if(f == NULL) return;
	sqlite3_finalize(f->scan);
	sqlite3_finalize(f->body);
	sqlite3_close_v2(f->db);
	free(f);
}

static int feed_end(struct archive_feed *base, int64_t *seq)
{
	struct feed_sqlite *f = (struct feed_sqlite *)base;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(f->db, "SELECT COALESCE(MAX(seq), 0) FROM messages", -1, &st, NULL);
	if(rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) *seq = sqlite3_column_int64(st, 0);
	else rc = SQLITE_ERROR;
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? MQC_OK : MQC_ERR_DB;
}

static int feed_each(struct archive_feed *base, int64_t after, int max,
		int (*cb)(const struct archive_feed_row *row, void *arg), void *arg)
{
	struct feed_sqlite *f = (struct feed_sqlite *)base;
	struct archive_feed_row r;
	int s, crc = MQC_OK;

	if(sqlite3_bind_int64(f->scan, 1, after) || sqlite3_bind_int(f->scan, 2, max)) return MQC_ERR_DB;
	while(crc == MQC_OK && (s = sqlite3_step(f->scan)) == SQLITE_ROW){
		r.seq = sqlite3_column_int64(f->scan, 0);
		r.sender = (const char *)sqlite3_column_text(f->scan, 1);
		r.recipient = (const char *)sqlite3_column_text(f->scan, 2);
		r.room = (const char *)sqlite3_column_text(f->scan, 3);
		r.type = (const char *)sqlite3_column_text(f->scan, 4);
		r.id = (const char *)sqlite3_column_text(f->scan, 5);
		r.server_ts = sqlite3_column_int64(f->scan, 6);
		r.deleted = sqlite3_column_type(f->scan, 7) != SQLITE_NULL;
		crc = cb(&r, arg);
	}
	sqlite3_reset(f->scan);
	if(crc != MQC_OK) return crc;
	return s == SQLITE_DONE ? MQC_OK : MQC_ERR_DB;
}

static int feed_body(struct archive_feed *base, int64_t seq,
		int (*cb)(const char *body, void *arg), void *arg)
{
	struct feed_sqlite *f = (struct feed_sqlite *)base;
	int s, crc = MQC_OK;

	if(sqlite3_bind_int64(f->body, 1, seq)) return MQC_ERR_DB;
	s = sqlite3_step(f->body);
	if(s == SQLITE_ROW) crc = cb((const char *)sqlite3_column_text(f->body, 0), arg);
	else if(s == SQLITE_DONE) crc = cb(NULL, arg);
	sqlite3_reset(f->body);
	return s == SQLITE_ROW || s == SQLITE_DONE ? crc : MQC_ERR_DB;
}

static const char *feed_errmsg(struct archive_feed *base)
{
	struct feed_sqlite *f = (struct feed_sqlite *)base;

	return sqlite3_errmsg(f->db);
}

static const struct archive_feed_ops feed_ops = {
	.close = feed_close,
	.end = feed_end,
	.each = feed_each,
	.body = feed_body,
	.errmsg = feed_errmsg,
};
