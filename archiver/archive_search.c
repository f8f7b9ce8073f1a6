/* archive_search.c - search of the texts in archive.db (archive_ext.h).
 *
 * msg_fts is an FTS5 index with the trigram tokenizer: a query that is one
 * double-quoted string matches the texts holding it as a substring, case
 * folded. Its entries come newest first (rowid = seq, descending, which
 * FTS5 walks without sorting); each is looked up by its primary key and
 * kept if the asker may read it. At most max_scan entries and budget_ms
 * per page: a text that matches a great many messages of other people
 * costs a page of bounded work that says "more", never a walk over the
 * whole index. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "archive_ext.h"
#include "archive_sqlite.h"
#include "archive_store.h"
#include "err.h"
#include "sqlutil.h"
#include "timeutil.h"

bool archive__fts_literal(const char *text, char *out, size_t outlen)
{
	size_t j = 0;
	const char *p;

	if(outlen < 3) return false;
	out[j++] = '"';
	for(p = text; *p; p++){
		/* Inside an FTS5 string only '"' means anything: doubled, it is
		 * itself. */
		if(*p == '"'){
			if(j + 1 >= outlen) return false;
			out[j++] = '"';
		}
		if(j + 1 >= outlen) return false;
		out[j++] = *p;
	}
	if(j + 2 > outlen) return false;
	out[j++] = '"';
	out[j] = '\0';
	return true;
}

static int room_cmp(const void *a, const void *b)
{
	return strcmp(((const struct archive_room *)a)->name, ((const struct archive_room *)b)->name);
}

/* What search needs to decide whether the asker may read the row. */
struct cand {
	const char *sender, *recipient, *room, *type;
	int64_t server_ts;
	bool deleted;
};

/* May the asker of q read c (rooms: q's, sorted by name, n of them)? */
static bool readable(const struct archive_search *q, const struct archive_room *rooms, size_t n,
		const struct cand *c)
{
	const struct archive_room *r, key = {c->room, 0};
	const char *peer;

	if(c->type == NULL || strcmp(c->type, "text") != 0 || c->deleted || c->sender == NULL) return false;
	if(c->room != NULL){
		if(q->with != NULL || (q->room != NULL && strcmp(q->room, c->room) != 0)) return false;
		r = n ? bsearch(&key, rooms, n, sizeof(*rooms), room_cmp) : NULL;
		return r != NULL && c->server_ts >= r->since;
	}
	if(q->room != NULL || c->recipient == NULL) return false;
	if(strcmp(c->sender, q->user) == 0) peer = c->recipient;
	else if(strcmp(c->recipient, q->user) == 0) peer = c->sender;
	else return false;
	if(q->with != NULL && strcmp(peer, q->with) != 0) return false;
	return c->server_ts >= q->user_since;
}

/* Append the archived form of message seq to arr. MQC_OK or MQC_ERR_*. */
static int append_msg(struct archive *ar, json_t *arr, int64_t seq)
{
	json_t *one = archive__get(ar, seq);
	json_t *m = json_array_get(one, 0);
	int rc = MQC_OK;

	if(one == NULL) return MQC_ERR_DB;
	if(m != NULL && json_array_append(arr, m)) rc = MQC_ERR_NOMEM;
	json_decref(one);
	return rc;
}

/* One page of a search as it goes. */
struct page {
	struct archive *ar;
	const struct archive_search *q;
	const struct archive_room *rooms;   /* q's, sorted by name */
	json_t *arr;
	int hits, scanned, max_scan;
	int64_t until;                      /* time__mono_ns() past which it stops */
	int64_t last_scanned, last_hit;
	bool extra, cut;
};

/* Count one entry (seq) looked at: false if the page stops before it
 * (out of time; it starts the next page). */
static bool look(struct page *p, int64_t seq)
{
	p->scanned++;
	if(p->scanned > 1 && time__mono_ns() > p->until){
		p->cut = true;
		p->last_scanned = seq + 1;
		return false;
	}
	p->last_scanned = seq;
	return true;
}

/* Is the page over (the bounds reached, or one hit more than asked)? */
static bool over(const struct page *p)
{
	return p->extra || p->cut || p->scanned >= p->max_scan;
}

/* A hit, seq: into the page, or it tells that there are more. MQC_OK or
 * an MQC_ERR_*. */
static int hit(struct page *p, int64_t seq)
{
	int rc;

	if(p->hits == p->q->limit){
		p->extra = true;
		return MQC_OK;
	}
	rc = append_msg(p->ar, p->arr, seq);
	if(rc == MQC_OK){
		p->hits++;
		p->last_hit = seq;
	}
	return rc;
}

/* The row of st (columns sender, recipient, room, type, server_ts,
 * deleted from col) as a candidate. */
static void cand_of(sqlite3_stmt *st, int col, struct cand *c)
{
	c->sender = (const char *)sqlite3_column_text(st, col);
	c->recipient = (const char *)sqlite3_column_text(st, col + 1);
	c->room = (const char *)sqlite3_column_text(st, col + 2);
	c->type = (const char *)sqlite3_column_text(st, col + 3);
	c->server_ts = sqlite3_column_int64(st, col + 4);
	c->deleted = sqlite3_column_type(st, col + 5) != SQLITE_NULL;
}

/* The texts stored since the index's watermark (seq in (mark, before)),
 * newest first: the ones the asker may read go into a small trigram
 * index of this connection's own (temp.search_tail), which the same
 * query then matches, so they are found as the index would find them.
 * MQC_OK or an MQC_ERR_*. */
static int search_tail(struct page *p, const char *match, int64_t mark, int64_t before)
{
	static const char *scan_sql =
		"SELECT seq, sender, recipient, room, type, server_ts, deleted, body FROM messages"
		" WHERE seq>?1 AND seq<?2 ORDER BY seq DESC LIMIT ?3";
	sqlite3 *db = archive__db(p->ar);
	sqlite3_stmt *scan = NULL, *put = NULL, *find = NULL;
	int rc;

	rc = sqlite3_exec(db, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_tail USING fts5(body,"
			" tokenize='trigram'); DELETE FROM temp.search_tail", NULL, NULL, NULL);
	if(rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, scan_sql, -1, &scan, NULL);
	if(rc == SQLITE_OK){
		rc = sqlite3_prepare_v2(db, "INSERT INTO temp.search_tail(rowid, body) VALUES(?1, ?2)", -1, &put, NULL);
	}
	if(rc == SQLITE_OK){
		rc = sqlite3_prepare_v2(db, "SELECT rowid FROM temp.search_tail WHERE search_tail MATCH ?1"
				" ORDER BY rowid DESC", -1, &find, NULL);
	}
	if(rc == SQLITE_OK){
		rc = sqlite3_bind_int64(scan, 1, mark) || sqlite3_bind_int64(scan, 2, before)
			|| sqlite3_bind_int(scan, 3, p->max_scan) || sqlite3_bind_text(find, 1, match, -1, SQLITE_STATIC);
	}
	while(rc == SQLITE_OK && (rc = sqlite3_step(scan)) == SQLITE_ROW){
		int64_t seq = sqlite3_column_int64(scan, 0);
		struct cand c;

		rc = SQLITE_OK;
		if(!look(p, seq)) break;
		cand_of(scan, 1, &c);
		if(!readable(p->q, p->rooms, p->q->nrooms, &c)) continue;
		if(sqlite3_bind_int64(put, 1, seq) || sqlite3_bind_value(put, 2, sqlite3_column_value(scan, 7))){
			rc = SQLITE_ERROR;
			break;
		}
		rc = sqlite3_step(put);
		sqlite3_reset(put);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if(rc == SQLITE_DONE) rc = SQLITE_OK;
	while(rc == SQLITE_OK && !p->extra && (rc = sqlite3_step(find)) == SQLITE_ROW){
		rc = hit(p, sqlite3_column_int64(find, 0)) == MQC_OK ? SQLITE_OK : SQLITE_ERROR;
	}
	if(rc == SQLITE_DONE) rc = SQLITE_OK;
	sqlite3_finalize(scan);
	sqlite3_finalize(put);
	sqlite3_finalize(find);
	if(rc == SQLITE_OK) rc = sqlite3_exec(db, "DELETE FROM temp.search_tail", NULL, NULL, NULL);
	return sqlutil__status(rc);
}

/* The texts of the index below before, newest first. */
static int search_index(struct page *p, const char *match, int64_t before)
{
	static const char *cand_sql =
		"SELECT rowid FROM msg_fts WHERE msg_fts MATCH ?1 AND rowid<?2 ORDER BY rowid DESC LIMIT ?3";
	static const char *row_sql =
		"SELECT sender, recipient, room, type, server_ts, deleted FROM messages WHERE seq=?1";
	sqlite3 *db = archive__db(p->ar);
	sqlite3_stmt *cand = NULL, *row = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, cand_sql, -1, &cand, NULL);
	if(rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, row_sql, -1, &row, NULL);
	if(rc == SQLITE_OK){
		rc = sqlite3_bind_text(cand, 1, match, -1, SQLITE_STATIC) || sqlite3_bind_int64(cand, 2, before)
			|| sqlite3_bind_int(cand, 3, p->max_scan - p->scanned);
	}
	while(rc == SQLITE_OK && (rc = sqlite3_step(cand)) == SQLITE_ROW){
		int64_t seq = sqlite3_column_int64(cand, 0);
		struct cand c;
		bool ok;

		if(!look(p, seq)){
			rc = SQLITE_OK;
			break;
		}
		sqlite3_bind_int64(row, 1, seq);
		rc = sqlite3_step(row);
		if(rc != SQLITE_ROW){
			sqlite3_reset(row);
			/* None: cannot happen, the index follows the table. */
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
			continue;
		}
		cand_of(row, 0, &c);
		ok = readable(p->q, p->rooms, p->q->nrooms, &c);
		sqlite3_reset(row);
		rc = ok && hit(p, seq) != MQC_OK ? SQLITE_ERROR : SQLITE_OK;
		if(p->extra) break;
	}
	if(rc == SQLITE_DONE) rc = SQLITE_OK;
	sqlite3_finalize(cand);
	sqlite3_finalize(row);
	return sqlutil__status(rc);
}

json_t *archive_sqlite__search(struct archive *ar, const struct archive_search *q, bool *more, int64_t *next)
{
	sqlite3 *db = archive__db(ar);
	struct archive_room *rooms = NULL;
	struct page p;
	char match[2 * 256 + 3];
	int64_t before = q->before > 0 ? q->before : INT64_MAX, mark = 0;
	int rc;

	*more = false;
	*next = 0;
	if(q->text == NULL || q->limit < 1 || !archive__fts_literal(q->text, match, sizeof(match))) return NULL;
	if(q->nrooms > 0){
		rooms = malloc(q->nrooms * sizeof(*rooms));
		if(rooms == NULL) return NULL;
		memcpy(rooms, q->rooms, q->nrooms * sizeof(*rooms));
		qsort(rooms, q->nrooms, sizeof(*rooms), room_cmp);
	}
	memset(&p, 0, sizeof(p));
	p.ar = ar;
	p.q = q;
	p.rooms = rooms;
	p.max_scan = q->max_scan > 0 ? q->max_scan : ARCHIVE_SEARCH_SCAN;
	p.until = time__mono_ns() + (int64_t)(q->budget_ms > 0 ? q->budget_ms : ARCHIVE_SEARCH_BUDGET_MS) * 1000000;
	p.arr = json_array();
	if(p.arr == NULL){
		free(rooms);
		return NULL;
	}
	/* One read transaction: the watermark, the candidates and their rows
	 * agree. The newest texts may not be indexed yet: they are looked at
	 * first, then the index below them. */
	rc = sqlutil__status(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL));
	if(rc == MQC_OK) rc = archive__index_mark(ar, &mark);
	if(rc == MQC_OK && before > mark + 1) rc = search_tail(&p, match, mark, before);
	if(rc == MQC_OK && !over(&p)) rc = search_index(&p, match, before < mark + 1 ? before : mark + 1);
	if(rc == MQC_OK) rc = sqlutil__status(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
	free(rooms);
	if(rc != MQC_OK){
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		json_decref(p.arr);
		return NULL;
	}
	if(p.extra){
		*more = true;
		*next = p.last_hit;
	}else if(p.cut || p.scanned >= p.max_scan){
		*more = true;
		*next = p.last_scanned;
	}
	return p.arr;
}
