/* archive_edit.c - edits and deletes of texts in archive.db (archive_ext.h). */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "archive_ext.h"
#include "archive_sqlite.h"
#include "archive_store.h"
#include "archkey.h"
#include "err.h"
#include "sqlutil.h"

/* Copy column i of st (text or NULL) into out. */
static void col_name(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	snprintf(out, outlen, "%s", s ? s : "");
}

int archive_sqlite__text_find(struct archive *ar, const char *sender, const char *id, const char *room,
		struct archive_text *t)
{
	/* The (sender, id) hash index, as ingest's duplicate check: ids are
	 * unique per sender, the newest row is the current holder's. */
	static const char *sql =
		"SELECT seq, sender, recipient, room, server_ts, deleted FROM messages INDEXED BY messages_idh"
		" WHERE idh=?1 AND sender=?2 AND id=?3 AND type='text' AND (?4 IS NULL OR room=?4)"
		" ORDER BY seq DESC LIMIT 1";
	sqlite3_stmt *st = NULL;
	int rc;

	memset(t, 0, sizeof(*t));
	if(sender == NULL || id == NULL) return MQC_ERR_INVAL;
	rc = sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	if(sqlite3_bind_int64(st, 1, archkey__id_hash(sender, id))
			|| sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC)
			|| (room ? sqlite3_bind_text(st, 4, room, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 4))){
		sqlite3_finalize(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		t->seq = sqlite3_column_int64(st, 0);
		snprintf(t->id, sizeof(t->id), "%s", id);
		col_name(st, 1, t->sender, sizeof(t->sender));
		col_name(st, 2, t->recipient, sizeof(t->recipient));
		col_name(st, 3, t->room, sizeof(t->room));
		t->server_ts = sqlite3_column_int64(st, 4);
		t->deleted = sqlite3_column_type(st, 5) != SQLITE_NULL;
		rc = MQC_OK;
	}else{
		rc = rc == SQLITE_DONE ? MQC_ERR_NOTFOUND : sqlutil__status(rc);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Run sql (one UPDATE of the row ?1, with ?2 and ?3 bound to text a and
 * integer b): MQC_OK if it changed exactly that row. */
static int update_text(struct archive *ar, const char *sql, int64_t seq, const char *a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL);

	if(rc != SQLITE_OK) return sqlutil__status(rc);
	if(sqlite3_bind_int64(st, 1, seq) || sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 3, b)){
		sqlite3_finalize(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? (sqlite3_changes(archive__db(ar)) == 1 ? MQC_OK : MQC_ERR_NOTFOUND)
		: sqlutil__status(rc);
	sqlite3_finalize(st);
	return rc;
}

/* Store the row of type ('edit' or 'delete') from sender about text t,
 * in t's conversation, with body: *seq its seq. */
static int store_row(struct archive *ar, const struct archive_text *t, const char *type,
		const char *sender, const char *row_id, const char *body, int64_t now, int64_t *seq)
{
	static const char *sql =
		"INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts, idh, ref, of)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)";
	char conv[2 * NAME_MAX_LEN + 8];
	const char *recipient = t->room[0] ? NULL : t->recipient, *room = t->room[0] ? t->room : NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if(room) snprintf(conv, sizeof(conv), "r:%s", room);
	else archkey__dm_conv(t->sender, recipient, conv, sizeof(conv));
	rc = sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	if(sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC)
			|| (recipient ? sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 2))
			|| (room ? sqlite3_bind_text(st, 3, room, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 3))
			|| sqlite3_bind_text(st, 4, conv, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 5, type, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 6, row_id, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 7, body, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 8, now)
			|| sqlite3_bind_int64(st, 9, archkey__id_hash(sender, row_id))
			|| sqlite3_bind_text(st, 10, t->id, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 11, t->sender, -1, SQLITE_STATIC)){
		sqlite3_finalize(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	if(rc == SQLITE_DONE) *seq = sqlite3_last_insert_rowid(archive__db(ar));
	sqlite3_finalize(st);
	return sqlutil__status(rc);
}

int archive_sqlite__text_edit(struct archive *ar, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq)
{
	/* The index follows the body (the schema's trigger). */
	int rc = update_text(ar, "UPDATE messages SET body=?2, edited=?3 WHERE seq=?1 AND deleted IS NULL",
			t->seq, body, now);

	if(rc != MQC_OK) return rc;
	return store_row(ar, t, "edit", t->sender, row_id, body, now, seq);
}

int archive_sqlite__text_delete(struct archive *ar, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq)
{
	/* Out of the index, its reactions dropped (the schema's triggers). */
	int rc = update_text(ar, "UPDATE messages SET body='', deleted_by=?2, deleted=?3"
			" WHERE seq=?1 AND deleted IS NULL", t->seq, who, now);

	if(rc != MQC_OK) return rc;
	return store_row(ar, t, "delete", who, row_id, "", now, seq);
}
