/* archive.c - the message archive in SQLite, archive.db (see archive.h): the
 * SQLite backend of the table of functions in archive_store.h, with
 * archive_edit.c, archive_search.c and archive_feed.c. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "archive.h"
#include "archive_sqlite.h"
#include "archive_store.h"
#include "archkey.h"
#include "err.h"
#include "names.h"
#include "sqlutil.h"

/* Columns of the archived-message form, in the order row_to_json reads them. */
#define MSG_COLS "seq, id, sender, recipient, room, type, body, ts, server_ts, status," \
	" ref, of, reply_to, reply_from, emoji, remove, edited, deleted, deleted_by"
/* The same, of the table named m in a join. */
#define MSG_COLS_M "m.seq, m.id, m.sender, m.recipient, m.room, m.type, m.body, m.ts, m.server_ts," \
	" m.status, m.ref, m.of, m.reply_to, m.reply_from, m.emoji, m.remove, m.edited, m.deleted," \
	" m.deleted_by"
/* Their indexes. */
enum msg_col {
	MC_SEQ, MC_ID, MC_SENDER, MC_RECIPIENT, MC_ROOM, MC_TYPE, MC_BODY, MC_TS, MC_SERVER_TS,
	MC_STATUS, MC_REF, MC_OF, MC_REPLY_TO, MC_REPLY_FROM, MC_EMOJI, MC_REMOVE, MC_EDITED,
	MC_DELETED, MC_DELETED_BY,
};

/* The tables and indexes of schema version 1 that version 2 keeps as they
 * are (messages gains columns: see MESSAGES_V2_COLS). */
#define SCHEMA_V1_INDEXES \
	/* Duplicates are found by a 64-bit hash of (sender, id): an INTEGER \
	 * index stays small and fast where a UNIQUE index over random text ids \
	 * would halve the insert rate on a large archive. */ \
	"CREATE INDEX IF NOT EXISTS messages_idh ON messages(idh);" \
	"CREATE INDEX IF NOT EXISTS messages_conv ON messages(conv, seq);" \
	"CREATE INDEX IF NOT EXISTS messages_recipient ON messages(recipient, seq) WHERE recipient IS NOT NULL;" \
	"CREATE INDEX IF NOT EXISTS messages_sender ON messages(sender, seq);"

/* A new archive: version 2 at once. */
static const char *schema_fresh_sql =
	"CREATE TABLE meta("
	"  key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE messages("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  sender TEXT NOT NULL,"
	"  recipient TEXT,"
	"  room TEXT,"
	"  conv TEXT NOT NULL,"
	"  type TEXT NOT NULL DEFAULT 'text',"
	"  id TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  ts INTEGER,"
	"  server_ts INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'sent' CHECK(status IN ('sent','delivered','read')),"
	"  idh INTEGER NOT NULL,"
	"  ref TEXT, of TEXT, reply_to TEXT, reply_from TEXT, emoji TEXT, remove INTEGER,"
	"  edited INTEGER, deleted INTEGER, deleted_by TEXT, n INTEGER,"
	"  CHECK((recipient IS NULL) <> (room IS NULL)));"
	SCHEMA_V1_INDEXES
	"INSERT INTO meta(key, value) VALUES('invalid', '0');";

/* Version 1 to 2: the new columns of messages (NULL in the old rows). */
static const char *schema_v1_columns_sql =
	"ALTER TABLE messages ADD COLUMN ref TEXT;"
	"ALTER TABLE messages ADD COLUMN of TEXT;"
	"ALTER TABLE messages ADD COLUMN reply_to TEXT;"
	"ALTER TABLE messages ADD COLUMN reply_from TEXT;"
	"ALTER TABLE messages ADD COLUMN emoji TEXT;"
	"ALTER TABLE messages ADD COLUMN remove INTEGER;"
	"ALTER TABLE messages ADD COLUMN edited INTEGER;"
	"ALTER TABLE messages ADD COLUMN deleted INTEGER;"
	"ALTER TABLE messages ADD COLUMN deleted_by TEXT;"
	"ALTER TABLE messages ADD COLUMN n INTEGER;";

/* What version 2 adds beside the columns (archive.h): the conversations,
 * the read markers, the reactions, the full-text index of the texts, and
 * the triggers that keep them right whoever writes messages (ingest, the
 * edit and delete ops, retention, purge, erasure). */
static const char *schema_v2_sql =
	"CREATE TABLE convs(conv TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, n INTEGER NOT NULL)"
	"  WITHOUT ROWID;"
	"CREATE TABLE reads(user TEXT NOT NULL, conv TEXT NOT NULL, peer TEXT, room TEXT,"
	"  read_seq INTEGER NOT NULL DEFAULT 0, read_n INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY(user, conv)) WITHOUT ROWID;"
	/* For the markers of a conversation emptied by retention (below). */
	"CREATE INDEX reads_conv ON reads(conv);"
	"CREATE TABLE reactions(seq INTEGER NOT NULL, user TEXT NOT NULL, emoji TEXT NOT NULL,"
	"  at INTEGER NOT NULL, PRIMARY KEY(seq, user, emoji)) WITHOUT ROWID;"
	"CREATE VIRTUAL TABLE msg_fts USING fts5(body, content='messages', content_rowid='seq',"
	"  tokenize='trigram');"
	/* The index holds the texts that are not deleted, each with its
	 * current body: an edit replaces it, a delete (tombstone) or a row
	 * going away removes it. It is filled in batches after the commits
	 * (archive__index_step): meta fts_seq is the watermark, every text
	 * with seq <= fts_seq is indexed as it is now, those above are not
	 * (yet), so the triggers touch the index only below it. An
	 * external-content 'delete' must be given the body that was indexed:
	 * the old one. */
	"CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages"
	"  WHEN old.type='text' AND old.deleted IS NULL"
	"  AND old.seq <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq') BEGIN"
	"  INSERT INTO msg_fts(msg_fts, rowid, body) VALUES('delete', old.seq, old.body);"
	"END;"
	"CREATE TRIGGER messages_fts_au AFTER UPDATE OF body, deleted ON messages"
	"  WHEN old.type='text'"
	"  AND old.seq <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq') BEGIN"
	"  INSERT INTO msg_fts(msg_fts, rowid, body) SELECT 'delete', old.seq, old.body"
	"    WHERE old.deleted IS NULL;"
	"  INSERT INTO msg_fts(rowid, body) SELECT new.seq, new.body WHERE new.deleted IS NULL;"
	"END;"
	"INSERT OR IGNORE INTO meta(key, value) VALUES('fts_seq', '0');"
	/* A text or event moves its conversation on: last_seq, and for a text
	 * n (the INSERT numbers it: convs.n + 1). A text moves its sender's
	 * read marker to it (sending means having read the conversation;
	 * never back) and gives the other person of a direct conversation a
	 * marker row. Triggers, not statements of archive__store: one
	 * statement per message instead of four. */
	"CREATE TRIGGER messages_conv_ai AFTER INSERT ON messages"
	"  WHEN new.type='text' AND new.n IS NOT NULL BEGIN"
	"  INSERT INTO convs(conv, last_seq, n) VALUES(new.conv, new.seq, new.n)"
	"    ON CONFLICT(conv) DO UPDATE SET last_seq=excluded.last_seq, n=excluded.n;"
	"  INSERT INTO reads(user, conv, peer, room, read_seq, read_n)"
	"    VALUES(new.sender, new.conv, new.recipient, new.room, new.seq, new.n)"
	"    ON CONFLICT(user, conv) DO UPDATE SET read_seq=MAX(read_seq, excluded.read_seq),"
	"    read_n=MAX(read_n, excluded.read_n);"
	"  INSERT OR IGNORE INTO reads(user, conv, peer, room, read_seq, read_n)"
	"    SELECT new.recipient, new.conv, new.sender, NULL, 0, 0"
	"    WHERE new.recipient IS NOT NULL AND new.recipient<>new.sender;"
	"END;"
	"CREATE TRIGGER messages_conv_event AFTER INSERT ON messages"
	"  WHEN new.type='event' BEGIN"
	"  INSERT INTO convs(conv, last_seq, n) VALUES(new.conv, new.seq, 0)"
	"    ON CONFLICT(conv) DO UPDATE SET last_seq=excluded.last_seq;"
	"END;"
	/* The same for a text inserted by hand without its n (tools, tests),
	 * which is numbered here: archive__store's INSERT numbers its own. */
	"CREATE TRIGGER messages_conv_hand AFTER INSERT ON messages"
	"  WHEN new.type='text' AND new.n IS NULL BEGIN"
	"  INSERT INTO convs(conv, last_seq, n) VALUES(new.conv, new.seq, 1)"
	"    ON CONFLICT(conv) DO UPDATE SET last_seq=excluded.last_seq, n=n + 1;"
	"  UPDATE messages SET n=(SELECT n FROM convs WHERE conv=new.conv) WHERE seq=new.seq;"
	"  INSERT INTO reads(user, conv, peer, room, read_seq, read_n)"
	"    SELECT new.sender, new.conv, new.recipient, new.room, new.seq, n FROM convs"
	"    WHERE conv=new.conv"
	"    ON CONFLICT(user, conv) DO UPDATE SET read_seq=MAX(read_seq, excluded.read_seq),"
	"    read_n=MAX(read_n, excluded.read_n);"
	"  INSERT OR IGNORE INTO reads(user, conv, peer, room, read_seq, read_n)"
	"    SELECT new.recipient, new.conv, new.sender, NULL, 0, 0"
	"    WHERE new.recipient IS NOT NULL AND new.recipient<>new.sender;"
	"END;"
	/* A deleted text (tombstone) has no reactions. */
	"CREATE TRIGGER messages_tombstone AFTER UPDATE OF deleted ON messages"
	"  WHEN new.deleted IS NOT NULL BEGIN"
	"  DELETE FROM reactions WHERE seq=new.seq;"
	"END;"
	/* A text or event going away (retention, purge, erasure): its
	 * reactions with it, and its conversation's last_seq back to the last
	 * text or event left (0: none left). */
	"CREATE TRIGGER messages_gone AFTER DELETE ON messages"
	"  WHEN old.type IN ('text','event') BEGIN"
	"  DELETE FROM reactions WHERE seq=old.seq;"
	"  UPDATE convs SET last_seq=COALESCE((SELECT seq FROM messages WHERE conv=old.conv"
	"      AND type IN ('text','event') ORDER BY seq DESC LIMIT 1), 0)"
	"    WHERE conv=old.conv AND last_seq=old.seq;"
	"END;"
	/* A conversation with nothing left has nothing unread: every marker
	 * goes to its end, so texts that come later count from there. */
	"CREATE TRIGGER convs_emptied AFTER UPDATE OF last_seq ON convs"
	"  WHEN new.last_seq=0 BEGIN"
	"  UPDATE reads SET read_n=new.n, read_seq=MAX(read_seq, old.last_seq) WHERE conv=new.conv;"
	"END;";

/* Version 1 to 2: what the new tables hold for the rows already there, as
 * if version 2 had stored them: n numbers each conversation's texts; a
 * conversation's last text or event and its count; a read marker per
 * person of a direct conversation and per person who wrote in a room, at
 * their own last text or, for direct messages to them, the last they
 * marked read; every text indexed (the watermark at the last). */
static const char *schema_v1_fill_sql =
	"UPDATE messages SET n=o.rn FROM (SELECT seq AS s,"
	"    ROW_NUMBER() OVER (PARTITION BY conv ORDER BY seq) AS rn"
	"    FROM messages WHERE type='text') AS o"
	"  WHERE messages.seq=o.s;"
	"INSERT INTO convs(conv, last_seq, n)"
	"  SELECT conv, COALESCE(MAX(CASE WHEN type IN ('text','event') THEN seq END), 0),"
	"    COALESCE(MAX(n), 0) FROM messages GROUP BY conv;"
	"INSERT INTO reads(user, conv, peer, room, read_seq, read_n)"
	"  SELECT u, conv, MAX(peer), MAX(rm), MAX(rs), 0 FROM ("
	"    SELECT sender AS u, conv, recipient AS peer, NULL AS rm,"
	"      CASE WHEN type='text' THEN seq ELSE 0 END AS rs FROM messages WHERE recipient IS NOT NULL"
	"    UNION ALL SELECT recipient, conv, sender, NULL,"
	"      CASE WHEN type='text' AND status='read' THEN seq ELSE 0 END"
	"      FROM messages WHERE recipient IS NOT NULL AND recipient<>sender"
	"    UNION ALL SELECT sender, conv, NULL, room, seq FROM messages"
	"      WHERE room IS NOT NULL AND type='text')"
	"  GROUP BY u, conv;"
	"UPDATE reads SET read_n=COALESCE((SELECT n FROM messages WHERE seq=reads.read_seq), 0)"
	"  WHERE read_seq>0;"
	"INSERT INTO msg_fts(rowid, body) SELECT seq, body FROM messages WHERE type='text';"
	"UPDATE meta SET value=CAST(COALESCE((SELECT MAX(seq) FROM messages), 0) AS TEXT)"
	"  WHERE key='fts_seq';";

enum stmt_id {
	ST_STORE,
	ST_DUP,
	ST_FIND,
	ST_SET_STATUS,
	ST_INVALID,
	ST_PROBE,
	ST_HISTORY,
	ST_FIRST,
	ST_LAST,
	ST_AT,
	ST_SCAN_CONV,
	ST_SCAN_ALL,
	ST_DELETE,
	ST_TARGET,
	ST_REACT_ADD,
	ST_REACT_DEL,
	ST_REACTIONS,
	ST_GET,
	ST_DM_CONVS,
	ST_CONV_GET,
	ST_N_AT,
	ST_TARGET_SEQ,
	ST_TARGET_REF,
	ST_READ_SET,
	ST_STORE_N,
	ST_CONV_N,
	ST_CONV_PUT,
	ST_READ_ADD,
	ST__COUNT,
};

static const char *stmt_sql[ST__COUNT] = {
	/* A plain one-row INSERT ... VALUES: SQLite checks every constraint
	 * before it writes, so it needs no statement journal. The former
	 * INSERT ... SELECT ... WHERE NOT EXISTS may insert several rows, so
	 * each one kept a statement journal, which spilled to a temp file:
	 * two pwrite()s per message on top of the WAL's. ST_DUP checks first. */
	[ST_STORE] =
		"INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts, idh,"
		" ref, of, reply_to, reply_from, emoji, remove, n)"
		" VALUES(?1, ?2, ?3, ?4, COALESCE(?10, 'text'), ?5, ?6, ?7, ?8, ?9,"
		" ?11, ?12, ?13, ?14, ?15, ?16,"
		" CASE WHEN ?10 IS NULL THEN COALESCE((SELECT n FROM convs WHERE conv=?4), 0) + 1 END)",
	/* The newest row of (sender, id): the next holder of a name may use
	 * the ids of the one before (archive__store). */
	[ST_DUP] =
		"SELECT server_ts FROM messages INDEXED BY messages_idh WHERE idh=?1 AND sender=?2 AND id=?3"
		" ORDER BY seq DESC LIMIT 1",
	[ST_FIND] =
		"SELECT seq, recipient, room, status, server_ts FROM messages INDEXED BY messages_idh"
		" WHERE idh=?1 AND sender=?2 AND id=?3 ORDER BY seq DESC LIMIT 1",
	[ST_SET_STATUS] = "UPDATE messages SET status=?2 WHERE seq=?1",
	[ST_INVALID] =
		"UPDATE meta SET value=CAST(CAST(value AS INTEGER) + ?1 AS TEXT) WHERE key='invalid'",
	[ST_PROBE] = "INSERT OR REPLACE INTO meta(key, value) VALUES('probe', ?1)",
	/* One range of the (conv, seq) index: [?4, ?2). */
	[ST_HISTORY] =
		"SELECT " MSG_COLS " FROM messages WHERE conv=?1 AND seq<?2 AND seq>=?4 AND server_ts>=?5"
		" AND type IN ('text','event') ORDER BY seq DESC LIMIT ?3",
	/* Primary-key look-ups for seq_floor. */
	[ST_FIRST] = "SELECT seq, server_ts FROM messages ORDER BY seq LIMIT 1",
	[ST_LAST] = "SELECT seq, server_ts FROM messages ORDER BY seq DESC LIMIT 1",
	[ST_AT] = "SELECT seq, server_ts FROM messages WHERE seq>=?1 ORDER BY seq LIMIT 1",
	[ST_SCAN_CONV] =
		"SELECT seq, server_ts, room FROM messages WHERE conv=?1 AND seq>?2 ORDER BY seq LIMIT ?3",
	[ST_SCAN_ALL] =
		"SELECT seq, server_ts, room FROM messages WHERE seq>?2 ORDER BY seq LIMIT ?3",
	[ST_DELETE] = "DELETE FROM messages WHERE seq=?1",
	/* The newest (of, ref) of a conversation: what a reaction is about. */
	[ST_TARGET] =
		"SELECT seq, type, deleted FROM messages INDEXED BY messages_idh"
		" WHERE idh=?1 AND sender=?2 AND id=?3 AND conv=?4 ORDER BY seq DESC LIMIT 1",
	[ST_REACT_ADD] = "INSERT OR IGNORE INTO reactions(seq, user, emoji, at) VALUES(?1, ?2, ?3, ?4)",
	[ST_REACT_DEL] = "DELETE FROM reactions WHERE seq=?1 AND user=?2 AND emoji=?3",
	[ST_REACTIONS] = "SELECT emoji, user FROM reactions WHERE seq=?1 ORDER BY at, user, emoji",
	[ST_GET] = "SELECT " MSG_COLS " FROM messages WHERE seq=?1",
	/* A person's direct conversations: their markers' rows (peer set),
	 * each joined to its conversation by primary key. */
	[ST_DM_CONVS] =
		"SELECT r.conv, r.peer, c.last_seq, c.n, r.read_seq, r.read_n FROM reads AS r"
		" JOIN convs AS c ON c.conv=r.conv"
		" WHERE r.user=?1 AND r.peer IS NOT NULL AND c.last_seq>=?2 AND c.last_seq<?3",
	[ST_CONV_GET] =
		"SELECT c.last_seq, c.n, r.read_seq, r.read_n, r.peer FROM (SELECT ?2 AS k) AS q"
		" LEFT JOIN convs AS c ON c.conv=q.k LEFT JOIN reads AS r ON r.user=?1 AND r.conv=q.k",
	/* Backwards in the (conv, seq) index to the first text. */
	[ST_N_AT] =
		"SELECT n FROM messages WHERE conv=?1 AND seq<=?2 AND type='text' ORDER BY seq DESC LIMIT 1",
	[ST_TARGET_SEQ] =
		"SELECT seq FROM messages WHERE seq=?1 AND conv=?2 AND type IN ('text','event') AND server_ts>=?3",
	[ST_TARGET_REF] =
		"SELECT seq, type, server_ts FROM messages INDEXED BY messages_idh"
		" WHERE idh=?1 AND sender=?2 AND id=?3 AND conv=?4 ORDER BY seq DESC LIMIT 1",
	[ST_READ_SET] =
		"INSERT INTO reads(user, conv, peer, room, read_seq, read_n) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT(user, conv) DO UPDATE SET read_seq=MAX(read_seq, excluded.read_seq),"
		" read_n=MAX(read_n, excluded.read_n)",
	/* The batch path (archive__batch_begin): ST_STORE with the text's n
	 * given (?17, NULL for other types), and what the triggers
	 * messages_conv_ai and messages_conv_event write, once per
	 * conversation and marker of the batch. */
	[ST_STORE_N] =
		"INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts, idh,"
		" ref, of, reply_to, reply_from, emoji, remove, n)"
		" VALUES(?1, ?2, ?3, ?4, COALESCE(?10, 'text'), ?5, ?6, ?7, ?8, ?9,"
		" ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	[ST_CONV_N] = "SELECT n FROM convs WHERE conv=?1",
	[ST_CONV_PUT] =
		"INSERT INTO convs(conv, last_seq, n) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(conv) DO UPDATE SET last_seq=excluded.last_seq, n=excluded.n",
	[ST_READ_ADD] =
		"INSERT OR IGNORE INTO reads(user, conv, peer, room, read_seq, read_n) VALUES(?1, ?2, ?3, NULL, 0, 0)",
};

/* WAL size (pages) past which the checkpointer waits for a gap between
 * writers to restart the log, so it cannot grow without bound under a
 * steady load. */
#define CHECKPOINT_RESTART_PAGES 16384

#define CONV_LEN (2 * NAME_MAX_LEN + 8)

/* The batch path's memory (archive__batch_begin): per conversation of the
 * batch its texts so far and its last text or event; per read marker the
 * batch touches, what the triggers would have written last. */
struct batch_conv {
	char conv[CONV_LEN];
	int64_t n;          /* texts so far (convs.n, read once, then counted here) */
	int64_t last_seq;   /* 0: no text or event of the batch yet */
};
struct batch_read {
	char user[NAME_MAX_LEN + 1];
	char conv[CONV_LEN];
	char peer[NAME_MAX_LEN + 1];   /* "" with has_peer false: NULL */
	char room[NAME_MAX_LEN + 1];
	bool has_peer, has_room;
	bool upsert;        /* the person wrote: marker to (seq, n); else a row if none (0, 0) */
	int64_t seq, n;
};
struct batch {
	bool on;
	struct batch_conv *convs;
	size_t nconvs, capconvs;
	struct batch_read *reads;
	size_t nreads, capreads;
	/* open addressing, entry index + 1 (0: empty); sizes powers of 2 */
	uint32_t *cslot, *rslot;
	size_t ncslot, nrslot;
};

static void batch_free(struct batch *b);

/* The handle: struct archive (archive_store.h) first, so the table of
 * functions finds its own. */
struct archive_sqlite {
	struct archive base;   /* first: the table of functions */
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct batch batch;
	char path[4096];
	/* checkpointer thread (archive__start_checkpointer) */
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_mutex;
	pthread_cond_t ckpt_cond;
	bool ckpt_running;
	bool ckpt_stop;
	int ckpt_interval_ms;
};

static const struct archive_ops sqlite_ops;

static struct archive_sqlite *sq(struct archive *base)
{
	return (struct archive_sqlite *)base;
}

static void sq_close(struct archive *base);
static void sq_rollback(struct archive *base);

void archive__library_init(void)
{
	/* Without this every sqlite3_malloc() takes a global mutex to keep
	 * memory statistics nobody reads: 7% of the archiver's CPU at full
	 * ingest. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int exec(struct archive_sqlite *ar, const char *sql)
{
	return sqlutil__status(sqlite3_exec(ar->db, sql, NULL, NULL, NULL));
}

/* Is there a table called name? */
static bool has_table(struct archive_sqlite *ar, const char *name)
{
	sqlite3_stmt *st = NULL;
	bool found = false;

	if(sqlite3_prepare_v2(ar->db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
				-1, &st, NULL) == SQLITE_OK
			&& sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK){
		found = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return found;
}

static int set_version(struct archive_sqlite *ar)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', '%d')",
			ARCHIVE_SCHEMA_VERSION);
	return exec(ar, sql);
}

/* Bring the schema to ARCHIVE_SCHEMA_VERSION inside the caller's write
 * transaction: create it in an empty file, upgrade a version 1 archive in
 * place (archive.h), accept the current version, refuse anything else. */
static int migrate(struct archive_sqlite *ar, char *err, size_t errlen)
{
	int rc, version;
	bool prepared;

	rc = sqlutil__schema_version(ar->db, &version, &prepared);
	if(!prepared){
		if(has_table(ar, "messages")){
			mqc_seterr(err, errlen, "%s: not an mqchat archive (%s)", ar->path, sqlite3_errmsg(ar->db));
			return MQC_ERR_SCHEMA;
		}
		rc = exec(ar, schema_fresh_sql);
		if(rc == MQC_OK) rc = exec(ar, schema_v2_sql);
		if(rc == MQC_OK) rc = set_version(ar);
		goto done;
	}
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", ar->path, sqlite3_errstr(rc));
		return sqlutil__status(rc);
	}
	if(version == ARCHIVE_SCHEMA_VERSION) return MQC_OK;
	if(version > ARCHIVE_SCHEMA_VERSION){
		sqlutil__newer_error(err, errlen, ar->path, "archive", version, ARCHIVE_SCHEMA_VERSION);
		return MQC_ERR_SCHEMA;
	}
	if(version != 1){
		mqc_seterr(err, errlen, "%s: archive schema version %d, this build needs %d", ar->path,
				version, ARCHIVE_SCHEMA_VERSION);
		return MQC_ERR_SCHEMA;
	}
	/* Version 1: nothing lost, everything filled in (archive.h). */
	rc = exec(ar, schema_v1_columns_sql);
	if(rc == MQC_OK) rc = exec(ar, schema_v2_sql);
	if(rc == MQC_OK) rc = exec(ar, schema_v1_fill_sql);
	if(rc == MQC_OK) rc = set_version(ar);
done:
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: cannot %s the archive (%s)", ar->path,
				prepared ? "upgrade" : "create", sqlite3_errmsg(ar->db));
		if(rc == MQC_ERR_DB) rc = MQC_ERR_SCHEMA;
	}
	return rc;
}

int archive_sqlite__open(const char *path, struct archive **out, char *err, size_t errlen)
{
	struct archive_sqlite *ar;
	bool prepared = false;
	int rc, i, version = 0;

	*out = NULL;
	if(path == NULL || strlen(path) >= sizeof(ar->path)){
		mqc_seterr(err, errlen, "invalid archive path");
		return MQC_ERR_INVAL;
	}
	ar = calloc(1, sizeof(*ar));
	if(ar == NULL) return MQC_ERR_NOMEM;
	ar->base.ops = &sqlite_ops;
	snprintf(ar->path, sizeof(ar->path), "%s", path);

	rc = sqlite3_open_v2(path, &ar->db,
			SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", path, ar->db ? sqlite3_errmsg(ar->db) : sqlite3_errstr(rc));
		rc = sqlutil__status(rc);
		goto fail;
	}
	sqlite3_busy_timeout(ar->db, ARCHIVE_BUSY_TIMEOUT_MS);
	/* WAL: readers (the CLI) never block the daemon. synchronous=NORMAL: a
	 * commit is a write() into the WAL, no fsync, which survives a killed
	 * process; a power cut can lose the last commits, never corrupt. */
	rc = exec(ar, "PRAGMA journal_mode=WAL");
	if(rc == MQC_OK) rc = exec(ar, "PRAGMA synchronous=NORMAL");
	/* Statement journals and sort files in memory, never in a temp file:
	 * a write() there costs as much as one into the WAL. */
	if(rc == MQC_OK) rc = exec(ar, "PRAGMA temp_store=MEMORY");
	if(rc == MQC_OK) rc = exec(ar, "PRAGMA cache_size=-32768");
	/* The usual case, an archive of this version, takes no write lock:
	 * the daemon's other connection, or the CLI beside a busy daemon,
	 * opens without waiting for a commit. */
	if(rc == MQC_OK && sqlutil__schema_version(ar->db, &version, &prepared) == SQLITE_OK && prepared
			&& version == ARCHIVE_SCHEMA_VERSION){
		goto ready;
	}
	if(rc == MQC_OK) rc = exec(ar, "BEGIN IMMEDIATE");
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: cannot open the archive (%s)", path, sqlite3_errmsg(ar->db));
		if(rc == MQC_ERR_DB) rc = MQC_ERR_SCHEMA;
		goto fail;
	}
	rc = migrate(ar, err, errlen);
	if(rc == MQC_OK){
		rc = exec(ar, "COMMIT");
		if(rc != MQC_OK) mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(ar->db));
	}
	if(rc != MQC_OK){
		sq_rollback(&ar->base);
		goto fail;
	}
ready:
	for(i = 0; i < ST__COUNT; i++){
		if(sqlite3_prepare_v3(ar->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&ar->st[i], NULL) != SQLITE_OK){
			mqc_seterr(err, errlen, "%s: wrong schema (%s)", path, sqlite3_errmsg(ar->db));
			rc = MQC_ERR_SCHEMA;
			goto fail;
		}
	}
	*out = &ar->base;
	return MQC_OK;
fail:
	sq_close(&ar->base);
	return rc;
}

/* The checkpointer: its own connection copies the WAL back into the
 * database and does the fsyncs that go with it, off the ingest thread. */
static void *checkpoint_main(void *arg)
{
	struct archive_sqlite *ar = arg;
	sqlite3 *db = NULL;
	struct timespec ts;
	int log_frames, done_frames, rc;

	if(sqlite3_open_v2(ar->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK){
		sqlite3_close_v2(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 200);
	/* A connection sees the WAL only once it has read the database:
	 * before that a checkpoint is a no-op ("not in WAL mode"). */
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	pthread_mutex_lock(&ar->ckpt_mutex);
	while(!ar->ckpt_stop){
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)ar->ckpt_interval_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&ar->ckpt_cond, &ar->ckpt_mutex, &ts);
		if(ar->ckpt_stop) break;
		pthread_mutex_unlock(&ar->ckpt_mutex);
		log_frames = done_frames = 0;
		rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
		if(rc == SQLITE_OK && log_frames > CHECKPOINT_RESTART_PAGES){
			/* Blocks writers for a moment (they wait in their busy
			 * handler), then the log starts over from its beginning. */
			sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
		}
		pthread_mutex_lock(&ar->ckpt_mutex);
	}
	pthread_mutex_unlock(&ar->ckpt_mutex);
	sqlite3_close_v2(db);
	return NULL;
}

static int sq_start_checkpointer(struct archive *base, int interval_ms)
{
	struct archive_sqlite *ar = sq(base);

	pthread_condattr_t attr;

	if(ar->ckpt_running) return MQC_OK;
	ar->ckpt_interval_ms = interval_ms > 0 ? interval_ms : 100;
	ar->ckpt_stop = false;
	if(pthread_mutex_init(&ar->ckpt_mutex, NULL) != 0) return MQC_ERR_NOMEM;
	/* The wait is timed on the monotonic clock: a wall clock set back
	 * must not stop the checkpoints. */
	if(pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0
			|| pthread_cond_init(&ar->ckpt_cond, &attr) != 0){
		pthread_mutex_destroy(&ar->ckpt_mutex);
		return MQC_ERR_NOMEM;
	}
	pthread_condattr_destroy(&attr);
	if(pthread_create(&ar->ckpt_thread, NULL, checkpoint_main, ar) != 0){
		pthread_cond_destroy(&ar->ckpt_cond);
		pthread_mutex_destroy(&ar->ckpt_mutex);
		return MQC_ERR_NOMEM;
	}
	ar->ckpt_running = true;
	/* Only the helper checkpoints from now on. */
	exec(ar, "PRAGMA wal_autocheckpoint=0");
	return MQC_OK;
}

static void stop_checkpointer(struct archive_sqlite *ar)
{
	if(!ar->ckpt_running) return;
	pthread_mutex_lock(&ar->ckpt_mutex);
	ar->ckpt_stop = true;
	pthread_cond_signal(&ar->ckpt_cond);
	pthread_mutex_unlock(&ar->ckpt_mutex);
	pthread_join(ar->ckpt_thread, NULL);
	pthread_cond_destroy(&ar->ckpt_cond);
	pthread_mutex_destroy(&ar->ckpt_mutex);
	ar->ckpt_running = false;
}

static void sq_close(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);
	int i;

	if(ar == NULL) return;
	stop_checkpointer(ar);
	batch_free(&ar->batch);
	for(i = 0; i < ST__COUNT; i++){
		sqlite3_finalize(ar->st[i]);
	}
	sqlite3_close_v2(ar->db);
	free(ar);
}

static int sq_begin(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);

	return exec(ar, "BEGIN IMMEDIATE");
}

static int sq_commit(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);

	return exec(ar, "COMMIT");
}

static void sq_rollback(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);

	if(!sqlite3_get_autocommit(ar->db)) exec(ar, "ROLLBACK");
}

sqlite3 *archive__db(struct archive *base)
{
	/* NULL for another backend's handle: its callers are SQLite-only. */
	return base->ops == &sqlite_ops ? sq(base)->db : NULL;
}

static const char *sq_errmsg(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);

	return ar && ar->db ? sqlite3_errmsg(ar->db) : "no archive";
}

/* Bind text or NULL. */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Bind a message's key (the id's hash, sender, id) to st's first three
 * parameters: MQC_OK, or MQC_ERR_DB with st reset. */
static int bind_key(sqlite3_stmt *st, int64_t idh, const char *sender, const char *id)
{
	if(sqlite3_bind_int64(st, 1, idh)
			|| sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	return MQC_OK;
}

/* Is (sender, id) stored already? MQC_OK with *found and the newest
 * copy's server_ts in *server_ts, or an MQC_ERR_*. */
static int find_dup(struct archive_sqlite *ar, const char *sender, const char *id, int64_t idh,
		bool *found, int64_t *server_ts)
{
	sqlite3_stmt *st = ar->st[ST_DUP];
	int rc;

	*found = false;
	*server_ts = 0;
	if(bind_key(st, idh, sender, id) != MQC_OK) return MQC_ERR_DB;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		*found = true;
		*server_ts = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return sqlutil__status(rc);
}

/* Is a row of (sender, id) stored at server_ts a copy of a message the
 * sender sends now? Not if it is older than the sender's account: it was
 * the previous holder's of the name. Asked only when such a row exists
 * (a redelivery, or an id reused), so ingest pays nothing for it. A
 * sender without an account (deleted since it sent) keeps the copy. */
static int same_holder(const char *sender, int64_t server_ts, archive_created_fn created_of,
		void *arg, bool *same)
{
	int64_t created;
	int rc;

	*same = true;
	if(created_of == NULL) return MQC_OK;
	rc = created_of(sender, &created, arg);
	if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
	if(rc != MQC_OK) return rc;
	*same = server_ts >= created;
	return MQC_OK;
}

/* Step the bound statement st once and reset it: MQC_OK or an MQC_ERR_*. */
static int step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return sqlutil__status(rc);
}

/* A reaction row m was stored: add or take back the sender's reaction on
 * its target, the newest (of, ref) of the conversation, if that is a text
 * not deleted. No target: nothing to apply (the row still tells sync). */
static int apply_reaction(struct archive_sqlite *ar, const struct archive_msg *m, const char *conv)
{
	sqlite3_stmt *st = ar->st[ST_TARGET];
	sqlite3_int64 seq = 0;
	bool ok = false;
	int rc;

	if(bind_key(st, archkey__id_hash(m->of, m->ref), m->of, m->ref) != MQC_OK) return MQC_ERR_DB;
	if(bind_text(st, 4, conv)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		const char *type = (const char *)sqlite3_column_text(st, 1);

		seq = sqlite3_column_int64(st, 0);
		ok = type && strcmp(type, "text") == 0 && sqlite3_column_type(st, 2) == SQLITE_NULL;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc != SQLITE_DONE) return sqlutil__status(rc);
	if(!ok) return MQC_OK;
	st = ar->st[m->remove ? ST_REACT_DEL : ST_REACT_ADD];
	if(sqlite3_bind_int64(st, 1, seq) || bind_text(st, 2, m->sender) || bind_text(st, 3, m->emoji)
			|| (!m->remove && sqlite3_bind_int64(st, 4, m->server_ts))){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	return step_once(st);
}

/* ---- the batch path (archive__batch_begin) ----
 * The plain path is the triggers: each stored text upserts its
 * conversation, its sender's marker and its recipient's (three statements
 * per message, each a trigger program). The batch path switches the
 * triggers off for this connection while it stores, keeps the same
 * effects in memory (per conversation its n, read from convs once, and its
 * last seq; per marker the last upsert), and writes each conversation and
 * marker once before the commit: the same rows, as messages_conv_ai and
 * messages_conv_event would leave them (tests/unit/test_archive.c runs
 * both paths and compares). */

static uint64_t batch_hash(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;

	for(; *a; a++) h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for(; *b; b++) h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h ^ (h >> 29);
}

/* Make the slot table of at least 2 * want entries and fill it from the
 * entries (key of entry i: keyf(i)). Non-zero if out of memory. */
static int batch_rehash(uint32_t **slot, size_t *nslot, size_t want, size_t n,
		uint64_t (*keyf)(const struct batch *, size_t), const struct batch *b)
{
	size_t cap = 64, i, j;
	uint32_t *t;

	while(cap < 2 * want) cap *= 2;
	if(cap <= *nslot) return 0;
	t = calloc(cap, sizeof(*t));
	if(t == NULL) return -1;
	for(i = 0; i < n; i++){
		for(j = (size_t)keyf(b, i) & (cap - 1); t[j]; j = (j + 1) & (cap - 1)){
		}
		t[j] = (uint32_t)(i + 1);
	}
	free(*slot);
	*slot = t;
	*nslot = cap;
	return 0;
}

static uint64_t conv_key(const struct batch *b, size_t i)
{
	return batch_hash(b->convs[i].conv, "");
}

static uint64_t read_key(const struct batch *b, size_t i)
{
	return batch_hash(b->reads[i].user, b->reads[i].conv);
}

/* The batch's entry for conv, made (n from convs) if new; NULL with *rc
 * set on error. */
static struct batch_conv *batch_conv(struct archive_sqlite *ar, const char *conv, int *rc)
{
	struct batch *b = &ar->batch;
	sqlite3_stmt *st = ar->st[ST_CONV_N];
	struct batch_conv *c;
	uint64_t h = batch_hash(conv, "");
	size_t j;
	int src;

	*rc = MQC_OK;
	if(b->ncslot){
		for(j = (size_t)h & (b->ncslot - 1); b->cslot[j]; j = (j + 1) & (b->ncslot - 1)){
			c = &b->convs[b->cslot[j] - 1];
			if(strcmp(c->conv, conv) == 0) return c;
		}
	}
	if(b->nconvs == b->capconvs){
		size_t cap = b->capconvs ? 2 * b->capconvs : 256;

		c = realloc(b->convs, cap * sizeof(*c));
		if(c == NULL) goto nomem;
		b->convs = c;
		b->capconvs = cap;
	}
	if(batch_rehash(&b->cslot, &b->ncslot, b->nconvs + 1, b->nconvs, conv_key, b)) goto nomem;
	c = &b->convs[b->nconvs];
	snprintf(c->conv, sizeof(c->conv), "%s", conv);
	c->n = 0;
	c->last_seq = 0;
	if(bind_text(st, 1, conv)){
		sqlite3_reset(st);
		*rc = MQC_ERR_DB;
		return NULL;
	}
	src = sqlite3_step(st);
	if(src == SQLITE_ROW){
		c->n = sqlite3_column_int64(st, 0);
		src = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(src != SQLITE_DONE){
		*rc = sqlutil__status(src);
		return NULL;
	}
	for(j = (size_t)h & (b->ncslot - 1); b->cslot[j]; j = (j + 1) & (b->ncslot - 1)){
	}
	b->cslot[j] = (uint32_t)(++b->nconvs);
	return c;
nomem:
	*rc = MQC_ERR_NOMEM;
	return NULL;
}

/* The batch's entry for user's marker in conv, made if new (peer and
 * room as the row would get them if the batch inserts it); NULL if out
 * of memory. */
static struct batch_read *batch_read(struct archive_sqlite *ar, const char *user, const char *conv,
		const char *peer, const char *room)
{
	struct batch *b = &ar->batch;
	struct batch_read *r;
	uint64_t h = batch_hash(user, conv);
	size_t j;

	if(b->nrslot){
		for(j = (size_t)h & (b->nrslot - 1); b->rslot[j]; j = (j + 1) & (b->nrslot - 1)){
			r = &b->reads[b->rslot[j] - 1];
			if(strcmp(r->user, user) == 0 && strcmp(r->conv, conv) == 0) return r;
		}
	}
	if(b->nreads == b->capreads){
		size_t cap = b->capreads ? 2 * b->capreads : 512;

		r = realloc(b->reads, cap * sizeof(*r));
		if(r == NULL) return NULL;
		b->reads = r;
		b->capreads = cap;
	}
	if(batch_rehash(&b->rslot, &b->nrslot, b->nreads + 1, b->nreads, read_key, b)) return NULL;
	r = &b->reads[b->nreads];
	snprintf(r->user, sizeof(r->user), "%s", user);
	snprintf(r->conv, sizeof(r->conv), "%s", conv);
	snprintf(r->peer, sizeof(r->peer), "%s", peer ? peer : "");
	snprintf(r->room, sizeof(r->room), "%s", room ? room : "");
	r->has_peer = peer != NULL;
	r->has_room = room != NULL;
	r->upsert = false;
	r->seq = r->n = 0;
	for(j = (size_t)h & (b->nrslot - 1); b->rslot[j]; j = (j + 1) & (b->nrslot - 1)){
	}
	b->rslot[j] = (uint32_t)(++b->nreads);
	return r;
}

/* What messages_conv_ai / messages_conv_event do for the row m just
 * stored at seq (n: a text's, 0 for an event), into the batch's memory. */
static int batch_note(struct archive_sqlite *ar, const struct archive_msg *m, struct batch_conv *c,
		bool text, int64_t seq)
{
	struct batch_read *r;

	c->last_seq = seq;
	if(!text) return MQC_OK;
	c->n++;
	r = batch_read(ar, m->sender, c->conv, m->recipient, m->room);
	if(r == NULL) return MQC_ERR_NOMEM;
	/* seq and n only grow within a batch: the last is the MAX */
	r->upsert = true;
	r->seq = seq;
	r->n = c->n;
	if(m->recipient && strcmp(m->recipient, m->sender) != 0
			&& batch_read(ar, m->recipient, c->conv, m->sender, NULL) == NULL){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

static void batch_clear(struct batch *b)
{
	b->nconvs = b->nreads = 0;
	if(b->cslot) memset(b->cslot, 0, b->ncslot * sizeof(*b->cslot));
	if(b->rslot) memset(b->rslot, 0, b->nrslot * sizeof(*b->rslot));
}

static void batch_free(struct batch *b)
{
	free(b->convs);
	free(b->reads);
	free(b->cslot);
	free(b->rslot);
	memset(b, 0, sizeof(*b));
}

/* The triggers on or off for this connection (SQLITE_DBCONFIG_ENABLE_TRIGGER). */
static int set_triggers(struct archive_sqlite *ar, bool on)
{
	int now = -1;

	if(sqlite3_db_config(ar->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on ? 1 : 0, &now) != SQLITE_OK
			|| now != (on ? 1 : 0)){
		return MQC_ERR_DB;
	}
	return MQC_OK;
}

/* Write what the batch's memory holds: each conversation once, each
 * marker once. (In key order it was no faster: convs and reads are small
 * beside the messages and stay in the cache.) */
static int batch_write(struct archive_sqlite *ar)
{
	struct batch *b = &ar->batch;
	sqlite3_stmt *st;
	size_t i;
	int rc = MQC_OK;


	st = ar->st[ST_CONV_PUT];
	for(i = 0; rc == MQC_OK && i < b->nconvs; i++){
		const struct batch_conv *c = &b->convs[i];

		if(c->last_seq == 0) continue;   /* only reactions: nothing moves */
		if(bind_text(st, 1, c->conv) || sqlite3_bind_int64(st, 2, c->last_seq)
				|| sqlite3_bind_int64(st, 3, c->n)){
			sqlite3_reset(st);
			return MQC_ERR_DB;
		}
		rc = step_once(st);
	}
	for(i = 0; rc == MQC_OK && i < b->nreads; i++){
		const struct batch_read *r = &b->reads[i];

		if(r->upsert){
			st = ar->st[ST_READ_SET];
			if(bind_text(st, 1, r->user) || bind_text(st, 2, r->conv)
					|| bind_text(st, 3, r->has_peer ? r->peer : NULL)
					|| bind_text(st, 4, r->has_room ? r->room : NULL)
					|| sqlite3_bind_int64(st, 5, r->seq) || sqlite3_bind_int64(st, 6, r->n)){
				sqlite3_reset(st);
				return MQC_ERR_DB;
			}
		}else{
			st = ar->st[ST_READ_ADD];
			if(bind_text(st, 1, r->user) || bind_text(st, 2, r->conv)
					|| bind_text(st, 3, r->has_peer ? r->peer : NULL)){
				sqlite3_reset(st);
				return MQC_ERR_DB;
			}
		}
		rc = step_once(st);
	}
	return rc;
}

static int sq_batch_begin(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);
	int rc;

	if(ar->batch.on) return MQC_ERR_INVAL;
	rc = sq_begin(&ar->base);
	if(rc != MQC_OK) return rc;
	rc = set_triggers(ar, false);
	if(rc != MQC_OK){
		set_triggers(ar, true);
		sq_rollback(&ar->base);
		return rc;
	}
	batch_clear(&ar->batch);
	ar->batch.on = true;
	return MQC_OK;
}

static int sq_batch_commit(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);
	int rc;

	if(!ar->batch.on) return MQC_ERR_INVAL;
	rc = batch_write(ar);
	ar->batch.on = false;
	batch_clear(&ar->batch);
	if(set_triggers(ar, true) != MQC_OK && rc == MQC_OK) rc = MQC_ERR_DB;
	if(rc == MQC_OK) rc = sq_commit(&ar->base);
	if(rc != MQC_OK) sq_rollback(&ar->base);
	return rc;
}

static void sq_batch_rollback(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);

	if(ar->batch.on){
		ar->batch.on = false;
		batch_clear(&ar->batch);
		set_triggers(ar, true);
	}
	sq_rollback(&ar->base);
}

static int store(struct archive_sqlite *ar, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored)
{
	sqlite3_stmt *st = ar->st[ar->batch.on ? ST_STORE_N : ST_STORE];
	char conv[CONV_LEN];
	struct batch_conv *bc = NULL;
	int64_t idh, dup_ts;
	bool found, same, text, reaction;
	int rc;

	if(stored) *stored = false;
	if(m->sender == NULL || m->id == NULL || m->body == NULL
			|| (m->recipient == NULL) == (m->room == NULL)){
		return MQC_ERR_INVAL;
	}
	text = m->type == NULL || strcmp(m->type, "text") == 0;
	reaction = !text && strcmp(m->type, ARCHIVE_TYPE_REACTION) == 0;
	if(reaction && (m->ref == NULL || m->of == NULL || m->emoji == NULL)) return MQC_ERR_INVAL;
	if(m->recipient){
		archkey__dm_conv(m->sender, m->recipient, conv, sizeof(conv));
	}else{
		snprintf(conv, sizeof(conv), "r:%s", m->room);
	}
	idh = archkey__id_hash(m->sender, m->id);
	rc = find_dup(ar, m->sender, m->id, idh, &found, &dup_ts);
	if(rc != MQC_OK) return rc;
	if(found){
		rc = same_holder(m->sender, dup_ts, created_of, arg, &same);
		if(rc != MQC_OK || same) return rc;
	}
	if(ar->batch.on && (text || strcmp(m->type, ARCHIVE_TYPE_EVENT) == 0)){
		bc = batch_conv(ar, conv, &rc);
		if(bc == NULL) return rc;
		if(text && sqlite3_bind_int64(st, 17, bc->n + 1) != SQLITE_OK) return MQC_ERR_DB;
	}
	rc = bind_text(st, 1, m->sender)
		|| bind_text(st, 2, m->recipient)
		|| bind_text(st, 3, m->room)
		|| bind_text(st, 4, conv)
		|| bind_text(st, 5, m->id)
		|| sqlite3_bind_text(st, 6, m->body, -1, SQLITE_STATIC)
		|| (m->ts >= 0 ? sqlite3_bind_int64(st, 7, m->ts) : sqlite3_bind_null(st, 7))
		|| sqlite3_bind_int64(st, 8, m->server_ts)
		|| sqlite3_bind_int64(st, 9, idh)
		|| bind_text(st, 10, text ? NULL : m->type)
		|| bind_text(st, 11, m->ref)
		|| bind_text(st, 12, m->of)
		|| bind_text(st, 13, text ? m->reply_to : NULL)
		|| bind_text(st, 14, text ? m->reply_from : NULL)
		|| bind_text(st, 15, reaction ? m->emoji : NULL)
		|| (reaction ? sqlite3_bind_int(st, 16, m->remove ? 1 : 0) : sqlite3_bind_null(st, 16));
	if(rc != SQLITE_OK){
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return MQC_ERR_DB;
	}
	rc = step_once(st);
	if(rc != MQC_OK) return rc;
	if(bc) rc = batch_note(ar, m, bc, text, sqlite3_last_insert_rowid(ar->db));
	if(rc == MQC_OK && reaction) rc = apply_reaction(ar, m, conv);
	if(rc == MQC_OK && stored) *stored = true;
	return rc;
}

static int sq_store(struct archive *base, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored)
{
	struct archive_sqlite *ar = sq(base);
	int rc;

	/* A store is several statements (archive.h): all or none. */
	if(!sqlite3_get_autocommit(ar->db)) return store(ar, m, created_of, arg, stored);
	rc = sq_begin(&ar->base);
	if(rc != MQC_OK) return rc;
	rc = store(ar, m, created_of, arg, stored);
	if(rc == MQC_OK) rc = sq_commit(&ar->base);
	if(rc != MQC_OK){
		sq_rollback(&ar->base);
		if(stored) *stored = false;
	}
	return rc;
}

static int sq_receipt(struct archive *base, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_FIND];
	sqlite3_int64 seq = 0;
	int64_t server_ts = 0;
	bool allowed = false;
	int rc;

	*updated = false;
	if(archive_store__status_rank(status) < 1) return MQC_ERR_INVAL;
	if(bind_key(st, archkey__id_hash(orig_sender, ref), orig_sender, ref) != MQC_OK) return MQC_ERR_DB;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		seq = sqlite3_column_int64(st, 0);
		server_ts = sqlite3_column_int64(st, 4);
		allowed = archive_store__receipt_may((const char *)sqlite3_column_text(st, 1),
				(const char *)sqlite3_column_text(st, 3), reader, status);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc != SQLITE_DONE) return sqlutil__status(rc);
	if(!allowed) return MQC_OK;
	rc = archive_store__sent_to_holder(reader, server_ts, created_of, arg, &allowed);
	if(rc != MQC_OK || !allowed) return rc;

	st = ar->st[ST_SET_STATUS];
	if(sqlite3_bind_int64(st, 1, seq) || sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc != SQLITE_DONE) return sqlutil__status(rc);
	*updated = true;
	return MQC_OK;
}

static int sq_count_invalid(struct archive *base, int64_t n)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_INVALID];
	int rc;

	sqlite3_bind_int64(st, 1, n);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return sqlutil__status(rc);
}

static int sq_probe(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_PROBE];
	char buf[32];
	int rc;

	/* A changing value, so the page really is written. */
	snprintf(buf, sizeof(buf), "%lld", (long long)sqlite3_last_insert_rowid(ar->db) ^ (long long)(uintptr_t)buf);
	sqlite3_bind_text(st, 1, buf, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return sqlutil__status(rc);
}

/* Set key of o to column col of st as a string, if it is not NULL. */
static int opt_str(json_t *o, const char *key, sqlite3_stmt *st, int col)
{
	if(sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
	return json_object_set_new(o, key, json_string((const char *)sqlite3_column_text(st, col)));
}

/* The same, as an integer. */
static int opt_int(json_t *o, const char *key, sqlite3_stmt *st, int col)
{
	if(sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
	return json_object_set_new(o, key, json_integer(sqlite3_column_int64(st, col)));
}

/* The reactions on message seq into o as "reactions":[{"emoji","users"}]
 * (emojis in the order of their first reaction, users in the order they
 * reacted); nothing when there are none. Non-zero on error. */
static int reactions_to_json(struct archive_sqlite *ar, json_t *o, int64_t seq)
{
	sqlite3_stmt *st = ar->st[ST_REACTIONS];
	json_t *arr = NULL;
	int rc;

	if(sqlite3_bind_int64(st, 1, seq) != SQLITE_OK){
		sqlite3_reset(st);
		return -1;
	}
	while((rc = sqlite3_step(st)) == SQLITE_ROW){
		const char *emoji = (const char *)sqlite3_column_text(st, 0);
		const char *user = (const char *)sqlite3_column_text(st, 1);

		if(archive_store__reaction_add(&arr, emoji, user)) break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc != SQLITE_DONE){
		json_decref(arr);
		return -1;
	}
	return arr ? json_object_set_new(o, "reactions", arr) : 0;
}

/* New reference: the current row of st (selected with MSG_COLS) in the
 * contract's archived-message form, as it is now (docs/PROTOCOL.md):
 * a text with its quote, edit time and reactions, or as a tombstone (body
 * "", deleted, deleted_by); an event with its members; a reaction, edit
 * or delete row with its target (ref, of) and what it says, "by" being
 * its sender. Members appear only when set. NULL if out of memory. */
static json_t *row_to_json(struct archive_sqlite *ar, sqlite3_stmt *st)
{
	json_t *o = json_object();
	const char *recipient, *room, *type;
	bool text, deleted, change;

	if(o == NULL) return NULL;
	recipient = (const char *)sqlite3_column_text(st, MC_RECIPIENT);
	room = (const char *)sqlite3_column_text(st, MC_ROOM);
	type = (const char *)sqlite3_column_text(st, MC_TYPE);
	if(type == NULL) type = "text";
	text = strcmp(type, "text") == 0;
	deleted = text && sqlite3_column_type(st, MC_DELETED) != SQLITE_NULL;
	change = strcmp(type, "edit") == 0 || strcmp(type, "delete") == 0;
	if(json_object_set_new(o, "seq", json_integer(sqlite3_column_int64(st, MC_SEQ)))
			|| json_object_set_new(o, "id", json_string((const char *)sqlite3_column_text(st, MC_ID)))
			|| json_object_set_new(o, "from", json_string((const char *)sqlite3_column_text(st, MC_SENDER)))
			|| (recipient && json_object_set_new(o, "to", json_string(recipient)))
			|| (room && json_object_set_new(o, "room", json_string(room)))
			|| json_object_set_new(o, "type", json_string(type))){
		goto fail;
	}
	if(text || strcmp(type, ARCHIVE_TYPE_EVENT) == 0){
		/* A tombstone's body is "": apps of protocol 1 read a body on
		 * every text. */
		if(deleted ? json_object_set_new(o, "body", json_string(""))
				: archive_store__body_to_json(o, type, (const char *)sqlite3_column_text(st, MC_BODY),
					(size_t)sqlite3_column_bytes(st, MC_BODY))){
			goto fail;
		}
		if(text && !deleted && (opt_str(o, "reply_to", st, MC_REPLY_TO)
					|| opt_str(o, "reply_from", st, MC_REPLY_FROM))){
			goto fail;
		}
	}else{
		if(opt_str(o, "ref", st, MC_REF) || opt_str(o, "of", st, MC_OF)) goto fail;
		if(strcmp(type, ARCHIVE_TYPE_REACTION) == 0){
			if(opt_str(o, "emoji", st, MC_EMOJI)
					|| json_object_set_new(o, "remove",
						json_boolean(sqlite3_column_int(st, MC_REMOVE) != 0))){
				goto fail;
			}
		}else if(strcmp(type, "edit") == 0 && json_object_set_new(o, "body",
					json_stringn((const char *)sqlite3_column_text(st, MC_BODY),
						(size_t)sqlite3_column_bytes(st, MC_BODY)))){
			goto fail;
		}
		if(change && opt_str(o, "by", st, MC_SENDER)) goto fail;
	}
	if(json_object_set_new(o, "ts", sqlite3_column_type(st, MC_TS) == SQLITE_NULL
				? json_null() : json_integer(sqlite3_column_int64(st, MC_TS)))
			|| json_object_set_new(o, "server_ts", json_integer(sqlite3_column_int64(st, MC_SERVER_TS)))
			|| json_object_set_new(o, "status", json_string((const char *)sqlite3_column_text(st, MC_STATUS)))){
		goto fail;
	}
	if(text && !deleted && (opt_int(o, "edited", st, MC_EDITED)
				|| reactions_to_json(ar, o, sqlite3_column_int64(st, MC_SEQ)))){
		goto fail;
	}
	if(deleted && (opt_int(o, "deleted", st, MC_DELETED) || opt_str(o, "deleted_by", st, MC_DELETED_BY))){
		goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Step st to the end, appending each row to a new array; at most max rows
 * (max < 0: all). *extra says whether a row beyond max existed. st is reset.
 * New reference, NULL on error. */
static json_t *collect(struct archive_sqlite *ar, sqlite3_stmt *st, long max, bool *extra)
{
	json_t *arr = json_array();
	long n = 0;
	int rc;

	if(extra) *extra = false;
	if(arr == NULL) goto fail;
	while((rc = sqlite3_step(st)) == SQLITE_ROW){
		json_t *m;

		if(max >= 0 && n >= max){
			if(extra) *extra = true;
			rc = SQLITE_DONE;
			break;
		}
		m = row_to_json(ar, st);
		if(m == NULL || json_array_append_new(arr, m)) goto fail;
		n++;
	}
	if(rc != SQLITE_DONE) goto fail;
	sqlite3_reset(st);
	return arr;
fail:
	sqlite3_reset(st);
	json_decref(arr);
	return NULL;
}

/* Step st (a ST_FIRST, ST_LAST or ST_AT look-up, bound) to its row: MQC_OK
 * with *seq and *ts, MQC_ERR_NOTFOUND when there is none, or an MQC_ERR_*.
 * st is reset. */
static int seq_row(sqlite3_stmt *st, int64_t *seq, int64_t *ts)
{
	int rc = sqlite3_step(st);

	if(rc == SQLITE_ROW){
		*seq = sqlite3_column_int64(st, 0);
		*ts = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc == SQLITE_ROW) return MQC_OK;
	return rc == SQLITE_DONE ? MQC_ERR_NOTFOUND : sqlutil__status(rc);
}

/* The first row with seq >= x. */
static int row_at(struct archive_sqlite *ar, int64_t x, int64_t *seq, int64_t *ts)
{
	if(sqlite3_bind_int64(ar->st[ST_AT], 1, x) != SQLITE_OK){
		sqlite3_reset(ar->st[ST_AT]);
		return MQC_ERR_DB;
	}
	return seq_row(ar->st[ST_AT], seq, ts);
}

/* The lowest seq a message stored at since_ms or later can have, into
 * *floor (0: no bound). seq is the archive's arrival order and server_ts
 * its arrival time, so a binary search on the primary key finds where
 * server_ts reaches since_ms in about log2(seqs) look-ups (one when since_ms
 * is older than every message, the usual case), and a read then starts its
 * (.., seq) index range there instead of stepping over the older rows: a
 * new holder of a name with a long-gone holder's million messages costs
 * what a new name costs. Reads still compare server_ts, so a wall clock
 * set back can only hide a message, never show an older holder's. */
static int seq_floor(struct archive_sqlite *ar, int64_t since_ms, int64_t *floor)
{
	int64_t lo, hi, seq, ts;
	int rc;

	*floor = 0;
	if(since_ms <= 0) return MQC_OK;
	rc = seq_row(ar->st[ST_FIRST], &seq, &ts);
	if(rc != MQC_OK || ts >= since_ms) return rc == MQC_ERR_NOTFOUND ? MQC_OK : rc;
	lo = seq + 1;                      /* server_ts(first row at or after lo) unknown */
	rc = seq_row(ar->st[ST_LAST], &seq, &ts);
	if(rc != MQC_OK) return rc == MQC_ERR_NOTFOUND ? MQC_OK : rc;
	if(ts < since_ms){
		*floor = seq + 1;          /* nothing yet */
		return MQC_OK;
	}
	hi = seq;                          /* server_ts(hi) >= since_ms */
	while(lo < hi){
		int64_t mid = lo + (hi - lo) / 2;

		rc = row_at(ar, mid, &seq, &ts);
		if(rc != MQC_OK) return rc;   /* hi exists: NOTFOUND cannot happen */
		if(ts >= since_ms) hi = mid;
		else lo = seq + 1;
	}
	*floor = lo;
	return MQC_OK;
}

static json_t *sq_history(struct archive *base, const char *conv, int64_t since_ms, int64_t before,
		int limit, bool *more)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_HISTORY];
	int64_t floor;
	json_t *arr;

	*more = false;
	if(seq_floor(ar, since_ms, &floor) != MQC_OK) return NULL;
	if(sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX)
			|| sqlite3_bind_int(st, 3, limit + 1)
			|| sqlite3_bind_int64(st, 4, floor)
			|| sqlite3_bind_int64(st, 5, since_ms)){
		sqlite3_reset(st);
		return NULL;
	}
	arr = collect(ar, st, limit, more);
	sqlite3_clear_bindings(st);
	return arr;
}

static json_t *sq_get(struct archive *base, int64_t seq)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_GET];
	json_t *arr;

	if(sqlite3_bind_int64(st, 1, seq) != SQLITE_OK){
		sqlite3_reset(st);
		return NULL;
	}
	arr = collect(ar, st, 1, NULL);
	sqlite3_clear_bindings(st);
	return arr;
}

static int sq_seq_floor(struct archive *base, int64_t since_ms, int64_t *floor)
{
	struct archive_sqlite *ar = sq(base);

	return seq_floor(ar, since_ms, floor);
}

static int sq_dm_convs(struct archive *base, const char *user, int64_t min_seq, int64_t before,
		int (*fn)(const struct archive_conv *c, void *arg), void *arg)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_DM_CONVS];
	struct archive_conv c;
	int rc = SQLITE_DONE, frc = MQC_OK;

	if(bind_text(st, 1, user) || sqlite3_bind_int64(st, 2, min_seq)
			|| sqlite3_bind_int64(st, 3, before > 0 ? before : INT64_MAX)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	while(frc == MQC_OK && (rc = sqlite3_step(st)) == SQLITE_ROW){
		memset(&c, 0, sizeof(c));
		snprintf(c.conv, sizeof(c.conv), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(c.peer, sizeof(c.peer), "%s", (const char *)sqlite3_column_text(st, 1));
		c.last_seq = sqlite3_column_int64(st, 2);
		c.n = sqlite3_column_int64(st, 3);
		c.read_seq = sqlite3_column_int64(st, 4);
		c.read_n = sqlite3_column_int64(st, 5);
		frc = fn(&c, arg);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(frc != MQC_OK) return frc;
	return sqlutil__status(rc);
}

static int sq_conv_get(struct archive *base, const char *user, const char *conv, struct archive_conv *out)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_CONV_GET];
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->conv, sizeof(out->conv), "%s", conv);
	if(bind_text(st, 1, user) || bind_text(st, 2, conv)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		out->last_seq = sqlite3_column_int64(st, 0);
		out->n = sqlite3_column_int64(st, 1);
		out->read_seq = sqlite3_column_int64(st, 2);
		out->read_n = sqlite3_column_int64(st, 3);
		if(sqlite3_column_type(st, 4) != SQLITE_NULL){
			snprintf(out->peer, sizeof(out->peer), "%s", (const char *)sqlite3_column_text(st, 4));
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return sqlutil__status(rc);
}

static int sq_text_n_at(struct archive *base, const char *conv, int64_t seq, int64_t *n)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_N_AT];
	int rc;

	*n = 0;
	if(bind_text(st, 1, conv) || sqlite3_bind_int64(st, 2, seq)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		*n = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return sqlutil__status(rc);
}

static int sq_conv_target(struct archive *base, const char *conv, int64_t seq, const char *of,
		const char *ref, int64_t since_ms, int64_t *found)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st;
	int rc;

	*found = 0;
	if(seq > 0){
		st = ar->st[ST_TARGET_SEQ];
		if(sqlite3_bind_int64(st, 1, seq) || bind_text(st, 2, conv) || sqlite3_bind_int64(st, 3, since_ms)){
			sqlite3_reset(st);
			return MQC_ERR_DB;
		}
		rc = sqlite3_step(st);
		if(rc == SQLITE_ROW){
			*found = sqlite3_column_int64(st, 0);
			rc = SQLITE_DONE;
		}
	}else{
		if(of == NULL || ref == NULL) return MQC_ERR_INVAL;
		st = ar->st[ST_TARGET_REF];
		if(bind_key(st, archkey__id_hash(of, ref), of, ref) != MQC_OK) return MQC_ERR_DB;
		if(bind_text(st, 4, conv)){
			sqlite3_reset(st);
			return MQC_ERR_DB;
		}
		rc = sqlite3_step(st);
		if(rc == SQLITE_ROW){
			const char *type = (const char *)sqlite3_column_text(st, 1);

			/* The newest (of, ref) of the conversation, if it is a
			 * text or event the reader may see. */
			if(type && (strcmp(type, "text") == 0 || strcmp(type, ARCHIVE_TYPE_EVENT) == 0)
					&& sqlite3_column_int64(st, 2) >= since_ms){
				*found = sqlite3_column_int64(st, 0);
			}
			rc = SQLITE_DONE;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if(rc != SQLITE_DONE) return sqlutil__status(rc);
	return *found > 0 ? MQC_OK : MQC_ERR_NOTFOUND;
}

static int sq_read_set(struct archive *base, const char *user, const char *conv, const char *peer,
		const char *room, int64_t seq, int64_t n)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = ar->st[ST_READ_SET];

	if(bind_text(st, 1, user) || bind_text(st, 2, conv) || bind_text(st, 3, peer)
			|| bind_text(st, 4, room) || sqlite3_bind_int64(st, 5, seq) || sqlite3_bind_int64(st, 6, n)){
		sqlite3_reset(st);
		return MQC_ERR_DB;
	}
	return step_once(st);
}

/* SQLite caps a compound SELECT at 500 terms: past this many rooms, sync
 * reads rooms through one join with json_each instead of one term per room. */
#define SYNC_MAX_ROOM_TERMS 400
/* The term of one room: its conversation key, the seq it starts after and
 * its created time are ?N, ?N+1, ?N+2 (N = 5, 8, 11, ...). */
#define SYNC_ROOM_TERM " UNION ALL SELECT * FROM (SELECT " MSG_COLS " FROM messages" \
	" WHERE conv=?%d AND seq>?%d AND server_ts>=?%d%s ORDER BY seq LIMIT ?3)"
/* What a sync without the change rows keeps (as history). */
#define SYNC_CONTENT_ONLY " AND type IN ('text','event')"

/* The seq a source starts after: after, or just below the floor of since_ms. */
static int start_after(struct archive_sqlite *ar, int64_t after, int64_t since_ms, int64_t *out)
{
	int64_t floor;
	int rc = seq_floor(ar, since_ms, &floor);

	*out = floor - 1 > after ? floor - 1 : after;
	return rc;
}

static json_t *sq_sync(struct archive *base, const char *user, int64_t user_since,
		const struct archive_room *rooms, size_t nrooms, int64_t after, int limit, bool changes,
		bool *more)
{
	struct archive_sqlite *ar = sq(base);

	/* One index range per source (DMs in, DMs out, each room), each already
	 * in seq order, starting where its holder's messages can start (the
	 * user's or the room's created), cut at limit+1, merged by one small
	 * sort. */
	size_t i, cap;
	char *sql = NULL, *p;
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL, *list = NULL;
	const char *kinds = changes ? "" : SYNC_CONTENT_ONLY;
	int64_t from;
	int rc, idx;

	*more = false;
	cap = 1024 + (nrooms <= SYNC_MAX_ROOM_TERMS
			? nrooms * (sizeof(SYNC_ROOM_TERM) + sizeof(SYNC_CONTENT_ONLY) + 32) : 512);
	sql = malloc(cap);
	if(sql == NULL) return NULL;
	p = sql;
	p += sprintf(p,
			"SELECT * FROM ("
			"SELECT * FROM (SELECT " MSG_COLS " FROM messages"
			" WHERE recipient=?1 AND seq>?2 AND server_ts>=?4%s ORDER BY seq LIMIT ?3)"
			" UNION ALL SELECT * FROM (SELECT " MSG_COLS " FROM messages"
			" WHERE sender=?1 AND recipient IS NOT NULL AND recipient<>?1 AND seq>?2"
			" AND server_ts>=?4%s ORDER BY seq LIMIT ?3)", kinds, kinds);
	if(nrooms <= SYNC_MAX_ROOM_TERMS){
		for(i = 0; i < nrooms; i++){
			idx = 5 + 3 * (int)i;
			p += sprintf(p, SYNC_ROOM_TERM, idx, idx + 1, idx + 2, kinds);
		}
	}else{
		/* ?5: [[conv, after, since], ...]; one (conv, seq) range per room. */
		p += sprintf(p, " UNION ALL SELECT * FROM (SELECT " MSG_COLS_M
				" FROM json_each(?5) AS j CROSS JOIN messages AS m"
				" WHERE m.conv=json_extract(j.value, '$[0]') AND m.seq>json_extract(j.value, '$[1]')"
				" AND m.server_ts>=json_extract(j.value, '$[2]')%s ORDER BY m.seq LIMIT ?3)",
				changes ? "" : " AND m.type IN ('text','event')");
	}
	p += sprintf(p, ") ORDER BY seq LIMIT ?3");

	rc = sqlite3_prepare_v2(ar->db, sql, -1, &st, NULL);
	if(rc != SQLITE_OK) goto fail;
	if(start_after(ar, after, user_since, &from) != MQC_OK
			|| sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 2, from)
			|| sqlite3_bind_int(st, 3, limit + 1)
			|| sqlite3_bind_int64(st, 4, user_since)){
		goto fail;
	}
	if(nrooms <= SYNC_MAX_ROOM_TERMS){
		for(i = 0; i < nrooms; i++){
			char conv[NAME_MAX_LEN + 3];

			idx = 5 + 3 * (int)i;
			snprintf(conv, sizeof(conv), "r:%s", rooms[i].name);
			if(start_after(ar, after, rooms[i].since, &from) != MQC_OK
					|| sqlite3_bind_text(st, idx, conv, -1, SQLITE_TRANSIENT)
					|| sqlite3_bind_int64(st, idx + 1, from)
					|| sqlite3_bind_int64(st, idx + 2, rooms[i].since)){
				goto fail;
			}
		}
	}else{
		char *js;

		list = json_array();
		if(list == NULL) goto fail;
		for(i = 0; i < nrooms; i++){
			char conv[NAME_MAX_LEN + 3];

			snprintf(conv, sizeof(conv), "r:%s", rooms[i].name);
			if(start_after(ar, after, rooms[i].since, &from) != MQC_OK
					|| json_array_append_new(list, json_pack("[sII]", conv, (json_int_t)from,
							(json_int_t)rooms[i].since))){
				goto fail;
			}
		}
		js = json_dumps(list, JSON_COMPACT);
		if(js == NULL) goto fail;
		rc = sqlite3_bind_text(st, 5, js, -1, SQLITE_TRANSIENT);
		free(js);
		if(rc) goto fail;
	}
	arr = collect(ar, st, limit, more);
fail:
	sqlite3_finalize(st);
	json_decref(list);
	free(sql);
	return arr;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	if(s == NULL) return false;
	for(i = 0; i < n; i++){
		if(strcmp(s, list[i]) == 0) return true;
	}
	return false;
}

static int sq_expire_step(struct archive *base, const char *conv,
		const char *const *skip_rooms, size_t nskip, int64_t cutoff_ms, int max_scan,
		int64_t *cursor, int64_t *deleted, bool *done)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *scan = ar->st[conv ? ST_SCAN_CONV : ST_SCAN_ALL];
	sqlite3_stmt *del = ar->st[ST_DELETE];
	int rc, n = 0;

	*done = false;
	if(max_scan <= 0) max_scan = ARCHIVE_BATCH;
	rc = exec(ar, "BEGIN IMMEDIATE");
	if(rc != MQC_OK) return rc;
	if((conv && sqlite3_bind_text(scan, 1, conv, -1, SQLITE_STATIC))
			|| sqlite3_bind_int64(scan, 2, *cursor)
			|| sqlite3_bind_int(scan, 3, max_scan)){
		rc = MQC_ERR_DB;
		goto fail;
	}
	while((rc = sqlite3_step(scan)) == SQLITE_ROW){
		sqlite3_int64 seq = sqlite3_column_int64(scan, 0);
		int64_t server_ts = sqlite3_column_int64(scan, 1);
		const char *room = (const char *)sqlite3_column_text(scan, 2);

		n++;
		/* Rows are in seq order, which is arrival order: the first row not
		 * yet due ends the pass (a wall clock set back can only delay a
		 * deletion, by at most the size of the jump). */
		if(server_ts >= cutoff_ms){
			*done = true;
			break;
		}
		*cursor = seq;
		if(in_list(room, skip_rooms, nskip)) continue;
		sqlite3_bind_int64(del, 1, seq);
		rc = sqlite3_step(del);
		sqlite3_reset(del);
		if(rc != SQLITE_DONE){
			rc = sqlutil__status(rc);
			goto fail;
		}
		(*deleted)++;
	}
	if(rc != SQLITE_ROW && rc != SQLITE_DONE){
		rc = sqlutil__status(rc);
		goto fail;
	}
	if(n < max_scan) *done = true;
	sqlite3_reset(scan);
	sqlite3_clear_bindings(scan);
	rc = exec(ar, "COMMIT");
	if(rc != MQC_OK) goto fail;
	return MQC_OK;
fail:
	sqlite3_reset(scan);
	sqlite3_clear_bindings(scan);
	exec(ar, "ROLLBACK");
	return rc;
}

/* Run sql, which deletes at most :batch rows, until it deletes fewer;
 * :text is bound to text and :num to num where sql has them. Each batch
 * is its own short transaction, so the daemon's inserts wait at most one
 * batch. */
static int delete_batches(struct archive_sqlite *ar, const char *sql, const char *text,
		int64_t num, int64_t *deleted)
{
	sqlite3_stmt *st = NULL;
	int rc, changes, i;

	*deleted = 0;
	rc = sqlite3_prepare_v2(ar->db, sql, -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	i = sqlite3_bind_parameter_index(st, ":text");
	rc = i && text ? sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC) : SQLITE_OK;
	i = sqlite3_bind_parameter_index(st, ":num");
	if(rc == SQLITE_OK && i) rc = sqlite3_bind_int64(st, i, num);
	i = sqlite3_bind_parameter_index(st, ":batch");
	if(rc == SQLITE_OK && i) rc = sqlite3_bind_int(st, i, ARCHIVE_BATCH);
	if(rc != SQLITE_OK) goto done;
	do{
		rc = sqlite3_step(st);
		changes = sqlite3_changes(ar->db);
		sqlite3_reset(st);
		if(rc != SQLITE_DONE) break;
		*deleted += changes;
	}while(changes >= ARCHIVE_BATCH);
done:
	sqlite3_finalize(st);
	return sqlutil__status(rc);
}

/* The single integer of a one-row query; def if there is no row. */
static int query_int(struct archive_sqlite *ar, const char *sql, int64_t def, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = def;
	rc = sqlite3_prepare_v2(ar->db, sql, -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		if(sqlite3_column_type(st, 0) != SQLITE_NULL) *out = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return sqlutil__status(rc);
}

/* Run sql, with ?1 and ?2 bound to a and b, once. */
static int exec_range(struct archive_sqlite *ar, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(ar->db, sql, -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	rc = sqlite3_bind_int64(st, 1, a);
	if(rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, b);
	if(rc == SQLITE_OK) rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return sqlutil__status(rc);
}

static int sq_index_step(struct archive *base, int max_rows, int64_t *left)
{
	struct archive_sqlite *ar = sq(base);
	int64_t mark, last, upto;
	int rc;

	*left = 0;
	if(max_rows <= 0) max_rows = ARCHIVE_INDEX_BATCH;
	/* Nothing new (the usual answer when idle): no write lock taken. */
	rc = query_int(ar, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq'", 0, &mark);
	if(rc == MQC_OK) rc = query_int(ar, "SELECT seq FROM messages ORDER BY seq DESC LIMIT 1", 0, &last);
	if(rc != MQC_OK || last <= mark) return rc;
	rc = sq_begin(&ar->base);
	if(rc != MQC_OK) return rc;
	/* Again inside the transaction: another writer may have moved it. */
	rc = query_int(ar, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq'", 0, &mark);
	if(rc == MQC_OK) rc = query_int(ar, "SELECT seq FROM messages ORDER BY seq DESC LIMIT 1", 0, &last);
	if(rc != MQC_OK || last <= mark){
		sq_rollback(&ar->base);
		return rc;
	}
	/* A range of seq, whatever its rows are: texts not deleted are
	 * indexed as they are now. */
	upto = last - mark > max_rows ? mark + max_rows : last;
	rc = exec_range(ar, "INSERT INTO msg_fts(rowid, body) SELECT seq, body FROM messages"
			" WHERE seq>?1 AND seq<=?2 AND type='text' AND deleted IS NULL", mark, upto);
	if(rc == MQC_OK){
		rc = exec_range(ar, "UPDATE meta SET value=CAST(?2 AS TEXT) WHERE key='fts_seq' AND ?1=?1",
				mark, upto);
	}
	if(rc == MQC_OK) rc = sq_commit(&ar->base);
	if(rc != MQC_OK){
		sq_rollback(&ar->base);
		return rc;
	}
	*left = last - upto;
	return MQC_OK;
}

static int sq_index_mark(struct archive *base, int64_t *mark)
{
	struct archive_sqlite *ar = sq(base);

	return query_int(ar, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='fts_seq'", 0, mark);
}

static int sq_purge(struct archive *base, int64_t cutoff_ms, int64_t *deleted)
{
	struct archive_sqlite *ar = sq(base);

	return delete_batches(ar,
			"DELETE FROM messages WHERE seq IN"
			" (SELECT seq FROM messages WHERE server_ts<:num ORDER BY seq LIMIT :batch)",
			NULL, cutoff_ms, deleted);
}

static int sq_erase_user(struct archive *base, const char *user, int64_t since_ms, int64_t *deleted)
{
	struct archive_sqlite *ar = sq(base);
	int64_t n;
	int rc;

	if(user == NULL) return MQC_ERR_INVAL;
	/* The messages (the triggers take their index entries, the reactions
	 * on them and their conversations' last_seq along), then what the
	 * user did to others': reactions, read markers. */
	rc = delete_batches(ar,
			"DELETE FROM messages WHERE seq IN"
			" (SELECT seq FROM messages WHERE (sender=:text OR recipient=:text) AND server_ts>=:num"
			" LIMIT :batch)",
			user, since_ms, deleted);
	if(rc == MQC_OK){
		rc = delete_batches(ar, "DELETE FROM reactions WHERE (seq, user, emoji) IN (SELECT seq, user,"
				" emoji FROM reactions WHERE user=:text AND at>=:num LIMIT :batch)", user, since_ms, &n);
	}
	if(rc == MQC_OK) rc = delete_batches(ar, "DELETE FROM reads WHERE user=:text", user, 0, &n);
	return rc;
}

static json_t *sq_stats(struct archive *base)
{
	struct archive_sqlite *ar = sq(base);
	sqlite3_stmt *st = NULL;
	json_t *o = NULL, *days = NULL;
	int64_t count, invalid, last_seq, last_ts, pages, psize;
	struct stat sb;
	char wal[4096 + 8];
	int rc;

	rc = exec(ar, "BEGIN");
	if(rc != MQC_OK) return NULL;
	if(query_int(ar, "SELECT count(*) FROM messages", 0, &count)
			|| query_int(ar, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='invalid'", 0, &invalid)
			|| query_int(ar, "SELECT seq FROM sqlite_sequence WHERE name='messages'", 0, &last_seq)
			|| query_int(ar, "SELECT server_ts FROM messages ORDER BY seq DESC LIMIT 1", 0, &last_ts)
			|| query_int(ar, "PRAGMA page_count", 0, &pages)
			|| query_int(ar, "PRAGMA page_size", 0, &psize)){
		goto fail;
	}
	days = json_object();
	if(days == NULL) goto fail;
	if(sqlite3_prepare_v2(ar->db,
				"SELECT strftime('%Y-%m-%d', server_ts / 1000, 'unixepoch') AS d, count(*)"
				" FROM messages GROUP BY d ORDER BY d", -1, &st, NULL) != SQLITE_OK){
		goto fail;
	}
	while((rc = sqlite3_step(st)) == SQLITE_ROW){
		const char *d = (const char *)sqlite3_column_text(st, 0);

		if(d && json_object_set_new(days, d, json_integer(sqlite3_column_int64(st, 1)))) goto fail;
	}
	if(rc != SQLITE_DONE) goto fail;
	sqlite3_finalize(st);
	st = NULL;
	exec(ar, "COMMIT");

	/* The file and its write-ahead log: what the archive takes on disk. */
	pages *= psize;
	snprintf(wal, sizeof(wal), "%s-wal", ar->path);
	if(stat(wal, &sb) == 0) pages += (int64_t)sb.st_size;

	o = json_pack("{sI sO sI sI sI sI}",
			"messages", (json_int_t)count,
			"by_day", days,
			"invalid", (json_int_t)invalid,
			"last_seq", (json_int_t)last_seq,
			"last_server_ts", (json_int_t)last_ts,
			"db_bytes", (json_int_t)pages);
	json_decref(days);
	return o;
fail:
	sqlite3_finalize(st);
	exec(ar, "ROLLBACK");
	json_decref(days);
	return NULL;
}

static json_t *sq_export_page(struct archive *base, const char *user, int64_t since_ms, int64_t after,
		int limit, bool *more)
{
	struct archive_sqlite *ar = sq(base);

	/* Two index ranges (messages_sender, messages_recipient), each in seq
	 * order and cut at limit+1, merged: a page costs its own rows, not
	 * every row of the user before it. A DM to oneself is in the first. */
	static const char *sql =
		"SELECT * FROM (SELECT " MSG_COLS " FROM messages WHERE sender=?1 AND seq>?3"
		" AND server_ts>=?2 ORDER BY seq LIMIT ?4)"
		" UNION ALL SELECT * FROM (SELECT " MSG_COLS " FROM messages WHERE recipient=?1"
		" AND sender<>?1 AND seq>?3 AND server_ts>=?2 ORDER BY seq LIMIT ?4)"
		" ORDER BY seq LIMIT ?4";
	sqlite3_stmt *st = NULL;
	json_t *arr;

	if(more) *more = false;
	if(user == NULL) return NULL;
	if(sqlite3_prepare_v2(ar->db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
	if(sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC) != SQLITE_OK
			|| sqlite3_bind_int64(st, 2, since_ms) != SQLITE_OK
			|| sqlite3_bind_int64(st, 3, after) != SQLITE_OK
			|| sqlite3_bind_int64(st, 4, limit < 0 ? -1 : (int64_t)limit + 1) != SQLITE_OK){
		sqlite3_finalize(st);
		return NULL;
	}
	arr = collect(ar, st, limit, more);
	sqlite3_finalize(st);
	return arr;
}

const char *archive_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	return sqlutil__writable(path, busy_ms, why, whylen);
}

static const struct archive_ops sqlite_ops = {
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.errmsg = sq_errmsg,
	.batch_begin = sq_batch_begin,
	.batch_commit = sq_batch_commit,
	.batch_rollback = sq_batch_rollback,
	.store = sq_store,
	.receipt = sq_receipt,
	.start_checkpointer = sq_start_checkpointer,
	.count_invalid = sq_count_invalid,
	.probe = sq_probe,
	.history = sq_history,
	.get = sq_get,
	.seq_floor = sq_seq_floor,
	.dm_convs = sq_dm_convs,
	.conv_get = sq_conv_get,
	.text_n_at = sq_text_n_at,
	.conv_target = sq_conv_target,
	.read_set = sq_read_set,
	.sync = sq_sync,
	.expire_step = sq_expire_step,
	.index_step = sq_index_step,
	.index_mark = sq_index_mark,
	.purge = sq_purge,
	.erase_user = sq_erase_user,
	.stats = sq_stats,
	.export_page = sq_export_page,
	.text_find = archive_sqlite__text_find,
	.text_edit = archive_sqlite__text_edit,
	.text_delete = archive_sqlite__text_delete,
	.search = archive_sqlite__search,
};
