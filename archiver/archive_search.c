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

json_t *archive__search(struct archive *ar, const struct archive_search *q, bool *more, int64_t *next)
{
	static const char *cand_sql =
		"SELECT rowid FROM msg_fts WHERE msg_fts MATCH ?1 AND rowid<?2 ORDER BY rowid DESC LIMIT ?3";
	static const char *row_sql =
		"SELECT sender, recipient, room, type, server_ts, deleted FROM messages WHERE seq=?1";
	sqlite3 *db = archive__db(ar);
	sqlite3_stmt *cand = NULL, *row = NULL;
	struct archive_room *rooms = NULL;
	char match[2 * 256 + 3];
	json_t *arr = NULL;
	int64_t last_scanned = 0, last_hit = 0;
	int rc, hits = 0, scanned = 0, max_scan = q->max_scan > 0 ? q->max_scan : ARCHIVE_SEARCH_SCAN;
	int64_t until = time__mono_ns()
		+ (int64_t)(q->budget_ms > 0 ? q->budget_ms : ARCHIVE_SEARCH_BUDGET_MS) * 1000000;
	bool extra = false, cut = false;

	*more = false;
	*next = 0;
	if(q->text == NULL || !archive__fts_literal(q->text, match, sizeof(match))) return NULL;
	if(q->nrooms > 0){
		rooms = malloc(q->nrooms * sizeof(*rooms));
		if(rooms == NULL) return NULL;
		memcpy(rooms, q->rooms, q->nrooms * sizeof(*rooms));
		qsort(rooms, q->nrooms, sizeof(*rooms), room_cmp);
	}
	arr = json_array();
	if(arr == NULL) goto fail;
	/* One read transaction: the candidates and their rows agree. */
	if(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto fail;
	if(sqlite3_prepare_v2(db, cand_sql, -1, &cand, NULL) != SQLITE_OK
			|| sqlite3_prepare_v2(db, row_sql, -1, &row, NULL) != SQLITE_OK
			|| sqlite3_bind_text(cand, 1, match, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(cand, 2, q->before > 0 ? q->before : INT64_MAX)
			|| sqlite3_bind_int(cand, 3, max_scan)){
		goto fail_tx;
	}
	while((rc = sqlite3_step(cand)) == SQLITE_ROW){
		int64_t seq = sqlite3_column_int64(cand, 0);
		struct cand c;
		bool ok;

		scanned++;
		last_scanned = seq;
		/* The time is up: this entry starts the next page. */
		if(scanned > 1 && time__mono_ns() > until){
			cut = true;
			last_scanned = seq + 1;
			break;
		}
		sqlite3_bind_int64(row, 1, seq);
		rc = sqlite3_step(row);
		if(rc != SQLITE_ROW){
			sqlite3_reset(row);
			if(rc == SQLITE_DONE) continue;   /* cannot happen: the index follows the table */
			goto fail_tx;
		}
		c.sender = (const char *)sqlite3_column_text(row, 0);
		c.recipient = (const char *)sqlite3_column_text(row, 1);
		c.room = (const char *)sqlite3_column_text(row, 2);
		c.type = (const char *)sqlite3_column_text(row, 3);
		c.server_ts = sqlite3_column_int64(row, 4);
		c.deleted = sqlite3_column_type(row, 5) != SQLITE_NULL;
		ok = readable(q, rooms, q->nrooms, &c);
		sqlite3_reset(row);
		if(!ok) continue;
		if(hits == q->limit){
			extra = true;
			break;
		}
		if(append_msg(ar, arr, seq) != MQC_OK) goto fail_tx;
		hits++;
		last_hit = seq;
	}
	if(rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail_tx;
	if(extra){
		*more = true;
		*next = last_hit;
	}else if(cut || scanned >= max_scan){
		*more = true;
		*next = last_scanned;
	}
	sqlite3_finalize(cand);
	sqlite3_finalize(row);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free(rooms);
	return arr;
fail_tx:
	sqlite3_finalize(cand);
	sqlite3_finalize(row);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
fail:
	free(rooms);
	json_decref(arr);
	return NULL;
}
