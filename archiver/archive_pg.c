/* archive_pg.c - the archive on PostgreSQL, schema `archive` (see archive.h
 * and archive_ext.h for what each call means, docs/SCALING.md "The stores
 * on PostgreSQL" for why it is shaped so). Built into the module
 * mqchat_store_pg.so, which archive_ops.c loads with dlopen only when
 * DATA/store.conf says `store postgresql`: a single node needs no libpq.
 *
 * The same tables and meanings as archive.db, with these differences,
 * which come from several archivers sharing one archive:
 * - seq is assigned from the one-row table archive.seq. Every writing
 *   transaction starts by locking that row (begin), numbers its rows from
 *   it and writes the next free number back just before COMMIT. Writers
 *   therefore commit one after another in seq order, and a reader never
 *   sees a seq before every smaller one is committed: sync's promise
 *   ("after: N" misses nothing) holds with any number of writers. A
 *   sequence would not keep it (nextval hands out numbers in one order,
 *   transactions commit in another).
 * - A message is a copy when (sender, id) is stored already since the
 *   sender's account was created (as on SQLite, created_of asked only
 *   when a row is found); a unique index on (sender, id, sender_since)
 *   with ON CONFLICT DO NOTHING settles two archivers storing the same
 *   resent message at once.
 * - What archive.db's triggers do (convs, reads, reactions) is done by
 *   the storing statement itself (data-modifying WITH): one round trip
 *   per message, batch or not, so there is no separate batch path.
 * - No FTS watermark and no checkpoints: index_step and the checkpointer
 *   are no-ops, the mark is the last seq.
 * - A receipt can reach the archive before its message: the reader's
 *   node stored it while the sender's node is behind. It is kept in
 *   archive.early_receipts and applied when the message is stored
 *   (receipt(), apply_early()); one node's spool orders the two, so
 *   archive.db needs no such table.
 * - The schema is created (and later upgraded) step by step, each step
 *   one transaction under an advisory lock, the version read again under
 *   it: several archivers may start at once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "archive.h"
#include "archive_ext.h"
#include "archive_store.h"
#include "archkey.h"
#include "err.h"
#include "names.h"
#include "pgconn.h"
#include "sqlutil.h"
#include "store_conf.h"

static const struct archive_ops pg_ops;
static const struct archive_feed_ops pg_feed_ops;

/* The advisory lock of the schema's creation and upgrades (two bigints,
 * the same in every release; the user store's are ...360 and ...361). */
#define LOCK_SCHEMA "7165012657120370"

/* The schema's version: archive.db's tables are version 2
 * (ARCHIVE_SCHEMA_VERSION), then the steps only this backend has. */
#define SCHEMA_VERSION 3

#define CONV_LEN (2 * NAME_MAX_LEN + 8)
/* ARCHIVE_BATCH (archive.h) in SQL text. */
#define ARCHIVE_BATCH_TEXT "1000"
_Static_assert(ARCHIVE_BATCH == 1000, "ARCHIVE_BATCH_TEXT is ARCHIVE_BATCH");

/* The statements prepared once per connection (the storing ones: their
 * planning would cost more than their running). */
enum prep { PREP_TEXT, PREP_EVENT, PREP_OTHER, PREP__COUNT };

struct archive_pg {
	struct archive base;   /* first: the table of functions */
	PGconn *conn;
	bool prepared[PREP__COUNT];
	bool batch;            /* between batch_begin and batch_commit */
	bool locked;           /* this transaction holds archive.seq's row */
	int64_t next;          /* the next seq to give (valid while locked) */
	int64_t first;         /* the first seq this transaction may give */
	char path[4096];       /* the setting file, naming the store in messages */
	char errmsg[512];
};

static struct archive_pg *pg(struct archive *base)
{
	return (struct archive_pg *)base;
}

/* ---- statements ----
 * Every parameter goes as text, cast in the SQL where its type is not
 * plain from the context; integers are formatted into an I64 buffer. */

#define I64_LEN 24
static const char *i64(char *buf, int64_t v)
{
	snprintf(buf, I64_LEN, "%lld", (long long)v);
	return buf;
}

/* Run sql with n text parameters; *res (if res is not NULL) gets the
 * result to read and PQclear, else it is cleared here. */
static bool reconnect(struct archive_pg *s);

static int query(struct archive_pg *s, const char *sql, int n, const char *const *args, PGresult **res)
{
	bool idle = PQtransactionStatus(s->conn) == PQTRANS_IDLE;
	PGresult *r = PQexecParams(s->conn, sql, n, NULL, args, NULL, NULL, 0);
	int rc = pgconn__status(s->conn, r, s->errmsg, sizeof(s->errmsg));

	/* A connection that broke (the server restarted, a failover) while no
	 * transaction was open: nothing was done, so once more on a new one.
	 * A reader (the RPC threads') has no other moment to reconnect. */
	if(rc == MQC_ERR_IO && idle && reconnect(s)){
		PQclear(r);
		r = PQexecParams(s->conn, sql, n, NULL, args, NULL, NULL, 0);
		rc = pgconn__status(s->conn, r, s->errmsg, sizeof(s->errmsg));
	}

	return pgconn__result(r, rc, res);
}

/* The same through statement which (sql), prepared on first use. */
static int query_prepared(struct archive_pg *s, enum prep which, const char *sql, int n,
		const char *const *args, PGresult **res)
{
	char name[16];
	PGresult *r;
	int rc;

	snprintf(name, sizeof(name), "archive_%d", (int)which);
	if(!s->prepared[which]){
		r = PQprepare(s->conn, name, sql, n, NULL);
		rc = pgconn__status(s->conn, r, s->errmsg, sizeof(s->errmsg));
		PQclear(r);
		if(rc != MQC_OK) return rc;
		s->prepared[which] = true;
	}
	r = PQexecPrepared(s->conn, name, n, args, NULL, NULL, 0);
	rc = pgconn__status(s->conn, r, s->errmsg, sizeof(s->errmsg));
	return pgconn__result(r, rc, res);
}

/* Statements without parameters, several at once (the schema). */
static int exec(struct archive_pg *s, const char *sql)
{
	return pgconn__exec(s->conn, sql, s->errmsg, sizeof(s->errmsg));
}

static int64_t col64(PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? 0 : strtoll(PQgetvalue(r, i, col), NULL, 10);
}

static const char *coltext(PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? NULL : PQgetvalue(r, i, col);
}

/* One integer from a one-row query (def if no row or NULL). */
static int query_int(struct archive_pg *s, const char *sql, int n, const char *const *args,
		int64_t def, int64_t *out)
{
	PGresult *r;
	int rc = query(s, sql, n, args, &r);

	*out = def;
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) *out = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

/* ---- schema ---- */

/* Text compared and ordered bytewise, as SQLite's BINARY. */
#define T "text COLLATE \"C\""

/* Version 2, archive.db's tables (archive.h says what each holds) and
 * archive.seq. No index on idh: the unique index (sender, id,
 * sender_since) finds a message's copies, so one on idh would only cost
 * every insert; the column is kept, so that a dump holds what archive.db
 * holds. seq_floor is archive.c's binary search on the primary key, run
 * in the server: one round trip instead of twenty. */
static const char schema_v2[] =
	"CREATE SCHEMA IF NOT EXISTS archive;"
	"CREATE TABLE archive.meta(key " T " PRIMARY KEY, value " T " NOT NULL);"
	"CREATE TABLE archive.seq(one boolean PRIMARY KEY DEFAULT true CHECK(one), next bigint NOT NULL);"
	"INSERT INTO archive.seq(one, next) VALUES(true, 1);"
	"CREATE TABLE archive.messages(seq bigint PRIMARY KEY, sender " T " NOT NULL, recipient " T ","
	" room " T ", conv " T " NOT NULL, type " T " NOT NULL DEFAULT 'text', id " T " NOT NULL,"
	" body text NOT NULL, ts bigint, server_ts bigint NOT NULL,"
	" status " T " NOT NULL DEFAULT 'sent' CHECK(status IN ('sent','delivered','read')),"
	" idh bigint NOT NULL, ref " T ", of " T ", reply_to " T ", reply_from " T ", emoji " T ","
	" remove boolean, edited bigint, deleted bigint, deleted_by " T ", n bigint,"
	" sender_since bigint NOT NULL DEFAULT 0,"
	" CHECK((recipient IS NULL) <> (room IS NULL)));"
	"CREATE UNIQUE INDEX messages_key ON archive.messages(sender, id, sender_since);"
	"CREATE INDEX messages_conv ON archive.messages(conv, seq);"
	"CREATE INDEX messages_recipient ON archive.messages(recipient, seq) WHERE recipient IS NOT NULL;"
	"CREATE INDEX messages_sender ON archive.messages(sender, seq);"
	"CREATE TABLE archive.convs(conv " T " PRIMARY KEY, last_seq bigint NOT NULL, n bigint NOT NULL);"
	"CREATE TABLE archive.reads(\"user\" " T " NOT NULL, conv " T " NOT NULL, peer " T ", room " T ","
	" read_seq bigint NOT NULL DEFAULT 0, read_n bigint NOT NULL DEFAULT 0,"
	" PRIMARY KEY(\"user\", conv));"
	"CREATE INDEX reads_conv ON archive.reads(conv);"
	"CREATE TABLE archive.reactions(seq bigint NOT NULL, \"user\" " T " NOT NULL,"
	" emoji " T " NOT NULL, at bigint NOT NULL, PRIMARY KEY(seq, \"user\", emoji));"
	/* search (pg_trgm: in Debian's postgresql-15; a trusted extension,
	 * so the database's owner may create it): the texts not deleted. */
	"CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA archive;"
	"CREATE INDEX messages_trgm ON archive.messages USING gin (body archive.gin_trgm_ops)"
	" WHERE type='text' AND deleted IS NULL;"
	"CREATE FUNCTION archive.seq_floor(since bigint) RETURNS bigint LANGUAGE plpgsql STABLE AS $f$"
	" DECLARE lo bigint; hi bigint; mid bigint; s bigint; t bigint;"
	" BEGIN"
	"  IF since <= 0 THEN RETURN 0; END IF;"
	"  SELECT seq, server_ts INTO s, t FROM archive.messages ORDER BY seq LIMIT 1;"
	"  IF NOT FOUND OR t >= since THEN RETURN 0; END IF;"
	"  lo := s + 1;"
	"  SELECT seq, server_ts INTO s, t FROM archive.messages ORDER BY seq DESC LIMIT 1;"
	"  IF t < since THEN RETURN s + 1; END IF;"
	"  hi := s;"
	"  WHILE lo < hi LOOP"
	"   mid := lo + (hi - lo) / 2;"
	"   SELECT seq, server_ts INTO s, t FROM archive.messages WHERE seq >= mid ORDER BY seq LIMIT 1;"
	"   IF t >= since THEN hi := mid; ELSE lo := s + 1; END IF;"
	"  END LOOP;"
	"  RETURN lo;"
	" END $f$;"
	"INSERT INTO archive.meta(key, value) VALUES('invalid', '0'), ('schema_version', '2');";

/* Version 3 (additive): the receipts that came before their message
 * (receipt(), apply_early()), the best status per reader; reader_since
 * is the reader's account's created time when it was kept (the rule
 * receipt() applies), at when it was kept (ms, the server's clock), for
 * dropping those whose message never comes. */
static const char schema_v3[] =
	"CREATE TABLE archive.early_receipts(sender " T " NOT NULL, id " T " NOT NULL,"
	" reader " T " NOT NULL, status " T " NOT NULL CHECK(status IN ('delivered','read')),"
	" reader_since bigint NOT NULL, at bigint NOT NULL, PRIMARY KEY(sender, id, reader));"
	"CREATE INDEX early_receipts_at ON archive.early_receipts(at);"
	"UPDATE archive.meta SET value='3' WHERE key='schema_version';";

/* The steps from each version to the next (0: no schema). A step that
 * changes meaning rather than adds must say so (docs/SCALING.md,
 * "Upgrades"). */
static const struct pgconn_step steps[] = {
	{0, ARCHIVE_SCHEMA_VERSION, schema_v2},
	{2, 3, schema_v3},
};

/* Every table this build reads, with its columns. */
#define V2_TABLES \
	"SELECT seq, sender, recipient, room, conv, type, id, body, ts, server_ts, status, idh, ref, of," \
	" reply_to, reply_from, emoji, remove, edited, deleted, deleted_by, n, sender_since" \
	" FROM messages LIMIT 0;" \
	"SELECT conv, last_seq, n FROM convs LIMIT 0;" \
	"SELECT \"user\", conv, peer, room, read_seq, read_n FROM reads LIMIT 0;" \
	"SELECT seq, \"user\", emoji, at FROM reactions LIMIT 0;" \
	"SELECT next FROM seq LIMIT 0;" \
	"SELECT seq_floor(0);"
#define V3_TABLES V2_TABLES \
	"SELECT sender, id, reader, status, reader_since, at FROM early_receipts LIMIT 0;"

/* A step the server refuses is a schema error, as archive.c's upgrade
 * says for archive.db. */
static const struct pgconn_schema schema = {
	.name = "archive",
	.lock = LOCK_SCHEMA,
	.version = SCHEMA_VERSION,
	.steps = steps,
	.nsteps = sizeof(steps) / sizeof(steps[0]),
	.tables = V3_TABLES,
	.what = "archive",
	.label = "archive schema",
	.refused_step_is_schema = true,
};

/* How long a statement waits for a lock here. Not SQLite's
 * ARCHIVE_BUSY_TIMEOUT_MS (1 s): every writing transaction of every node
 * holds archive.seq's row until its commit, and a batch of INGEST_BATCH
 * to INGEST_BATCH_MAX messages, one round trip each, holds it for a
 * second or more on a busy server. With 1 s, two or three writers gave up
 * on each other in turn ("canceling statement due to lock timeout"):
 * bench/micro/pg_writers.sh's writers failed, and the cluster's archivers
 * took the archive for unwritable and stopped reading their spools, RPC
 * requests included, for up to 5 s at a time. Waiting for the row is how
 * writers take turns; a holder stuck this long is a fault. */
#define ARCHIVE_PG_LOCK_TIMEOUT_MS 30000

/* The connection's settings (pgconn__session's); a lock is waited for
 * ARCHIVE_PG_LOCK_TIMEOUT_MS. */
static int session(struct archive_pg *s)
{
	return pgconn__session(s->conn, "archive", ARCHIVE_PG_LOCK_TIMEOUT_MS, NULL, s->errmsg,
			sizeof(s->errmsg));
}

static void pg_close(struct archive *base)
{
	struct archive_pg *s = pg(base);

	if(s->conn) PQfinish(s->conn);
	free(s);
}

int archive_pg__open(const struct store_conf *conf, struct archive **out, char *err, size_t errlen)
{
	struct archive_pg *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if(s == NULL) return MQC_ERR_NOMEM;
	s->base.ops = &pg_ops;
	snprintf(s->path, sizeof(s->path), "%s", conf->path);
	rc = pgconn__connect(conf->conninfo, s->path, &s->conn, err, errlen);
	if(rc == MQC_OK){
		int version;

		rc = session(s);
		if(rc == MQC_OK){
			rc = pgconn__check_schema(s->conn, &schema, true, s->path, &version, s->errmsg,
					sizeof(s->errmsg), err, errlen);
		}
		else mqc_seterr(err, errlen, "%s: %s", s->path, s->errmsg);
	}
	if(rc != MQC_OK){
		pg_close(&s->base);
		return rc;
	}
	s->errmsg[0] = '\0';
	*out = &s->base;
	return MQC_OK;
}

/* ---- transactions ---- */

/* Make the connection again (the server restarted, a failover): true
 * with the session's settings on a new one. */
static bool reconnect(struct archive_pg *s)
{
	int rc = pgconn__reset(s->conn, s->errmsg, sizeof(s->errmsg));

	/* A new session: nothing prepared on it. */
	memset(s->prepared, 0, sizeof(s->prepared));
	return rc == MQC_OK && session(s) == MQC_OK;
}

/* A connection known broken is made again before the next transaction:
 * nothing was done yet. */
static int connected(struct archive_pg *s)
{
	if(PQstatus(s->conn) == CONNECTION_OK) return MQC_OK;
	return reconnect(s) ? MQC_OK : MQC_ERR_IO;
}

static bool in_tx(struct archive_pg *s)
{
	return PQtransactionStatus(s->conn) != PQTRANS_IDLE;
}

static void pg_rollback(struct archive *base)
{
	struct archive_pg *s = pg(base);

	if(in_tx(s)) (void)exec(s, "ROLLBACK");
	s->locked = false;
	s->batch = false;
}

/* A writing transaction: BEGIN, then archive.seq's row, before any other
 * row lock (so writers cannot deadlock), held until COMMIT. */
static int pg_begin(struct archive *base)
{
	struct archive_pg *s = pg(base);
	int rc = connected(s);

	if(rc == MQC_OK && in_tx(s)){
		snprintf(s->errmsg, sizeof(s->errmsg), "a transaction is open already");
		return MQC_ERR_INVAL;
	}
	if(rc == MQC_OK) rc = exec(s, "BEGIN");
	/* libpq sees a connection broken only when it uses it: nothing was
	 * done yet, so begin again on a new one. */
	if(rc == MQC_ERR_IO && reconnect(s)) rc = exec(s, "BEGIN");
	if(rc == MQC_OK) rc = query_int(s, "UPDATE seq SET next = next RETURNING next", 0, NULL, 1, &s->next);
	if(rc != MQC_OK){
		pg_rollback(base);
		return rc;
	}
	s->first = s->next;
	s->locked = true;
	return MQC_OK;
}

static int apply_early(struct archive_pg *s);

/* Apply the early receipts of what was stored, write the next free seq
 * back, then COMMIT. A COMMIT of a transaction a statement failed in
 * "succeeds" as a ROLLBACK: a failure to the caller. */
static int pg_commit(struct archive *base)
{
	struct archive_pg *s = pg(base);
	char v[I64_LEN];
	const char *args[1] = {i64(v, s->next)};
	PGresult *r;
	int rc = MQC_OK;

	if(s->locked && s->next > s->first) rc = apply_early(s);
	if(rc == MQC_OK && s->locked) rc = query(s, "UPDATE seq SET next = $1::bigint", 1, args, NULL);
	if(rc != MQC_OK){
		pg_rollback(base);
		return rc;
	}
	r = PQexec(s->conn, "COMMIT");
	rc = pgconn__status(s->conn, r, s->errmsg, sizeof(s->errmsg));
	if(rc == MQC_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0){
		snprintf(s->errmsg, sizeof(s->errmsg), "the transaction failed and was rolled back");
		rc = MQC_ERR_DB;
	}
	PQclear(r);
	s->locked = false;
	if(rc != MQC_OK) pg_rollback(base);
	return rc;
}

/* A write called outside a transaction gets one of its own: own() opens
 * it if none is open, done() commits it if own() opened it, or rolls it
 * back on rc. */
static int own(struct archive_pg *s, bool *mine)
{
	*mine = !in_tx(s);
	return *mine ? pg_begin(&s->base) : MQC_OK;
}

static int done(struct archive_pg *s, bool mine, int rc)
{
	if(!mine) return rc;
	if(rc == MQC_OK) return pg_commit(&s->base);
	pg_rollback(&s->base);
	return rc;
}

static int pg_batch_begin(struct archive *base)
{
	struct archive_pg *s = pg(base);
	int rc;

	if(s->batch) return MQC_ERR_INVAL;
	rc = pg_begin(base);
	if(rc == MQC_OK) s->batch = true;
	return rc;
}

static int pg_batch_commit(struct archive *base)
{
	struct archive_pg *s = pg(base);

	if(!s->batch) return MQC_ERR_INVAL;
	s->batch = false;
	return pg_commit(base);
}

static void pg_batch_rollback(struct archive *base)
{
	pg_rollback(base);
}

static const char *pg_errmsg(struct archive *base)
{
	struct archive_pg *s = pg(base);

	return s->errmsg[0] ? s->errmsg : PQerrorMessage(s->conn);
}

/* ---- storing ---- */

/* The parameters of the storing statements:
 * $1 sender, $2 recipient, $3 room, $4 conv, $5 id, $6 body, $7 ts,
 * $8 server_ts, $9 idh, $10 ref, $11 of, $12 reply_to, $13 reply_from,
 * $14 emoji, $15 remove, $16 seq, $17 sender_since, $18 whether any
 * stored (sender, id) makes this a copy. */
#define STORE_NARGS 18
#define STORE_D "WITH d AS (SELECT 1 FROM messages WHERE $18::boolean AND sender=$1::text" \
	" AND id=$5::text LIMIT 1)"
#define STORE_COLS "INSERT INTO messages(seq, sender, recipient, room, conv, type, id, body, ts," \
	" server_ts, idh, ref, of, reply_to, reply_from, emoji, remove, n, sender_since)"
#define STORE_VALS(type, n) " $16::bigint, $1::text, $2::text, $3::text, $4::text, " type "," \
	" $5::text, $6::text, $7::bigint, $8::bigint, $9::bigint, $10::text, $11::text, $12::text," \
	" $13::text, $14::text, $15::boolean, " n ", $17::bigint"

/* A text: numbered in its conversation (convs.n + 1), which moves on; its
 * sender's read marker moves to it (never back), and the other person of
 * a direct conversation gets a marker row: archive.db's
 * messages_conv_ai trigger. */
static const char sql_store_text[] =
	STORE_D ","
	" c AS (INSERT INTO convs(conv, last_seq, n) SELECT $4::text, $16::bigint, 1"
	"  WHERE NOT EXISTS(SELECT 1 FROM d)"
	"  ON CONFLICT(conv) DO UPDATE SET last_seq = excluded.last_seq, n = convs.n + 1 RETURNING n),"
	" m AS (" STORE_COLS " SELECT" STORE_VALS("'text'", "c.n") " FROM c"
	"  ON CONFLICT DO NOTHING RETURNING seq, n),"
	" r AS (INSERT INTO reads(\"user\", conv, peer, room, read_seq, read_n)"
	"  SELECT $1::text, $4::text, $2::text, $3::text, m.seq, m.n FROM m"
	"  ON CONFLICT(\"user\", conv) DO UPDATE SET read_seq = GREATEST(reads.read_seq, excluded.read_seq),"
	"  read_n = GREATEST(reads.read_n, excluded.read_n)),"
	" p AS (INSERT INTO reads(\"user\", conv, peer, room, read_seq, read_n)"
	"  SELECT $2::text, $4::text, $1::text, NULL, 0, 0 FROM m WHERE $2::text IS NOT NULL"
	"  AND $2::text <> $1::text ON CONFLICT DO NOTHING)"
	" SELECT seq FROM m";

/* An event moves its conversation's last_seq (messages_conv_event). */
static const char sql_store_event[] =
	STORE_D ","
	" m AS (" STORE_COLS " SELECT" STORE_VALS("'event'", "NULL::bigint")
	"  WHERE NOT EXISTS(SELECT 1 FROM d) ON CONFLICT DO NOTHING RETURNING seq),"
	" c AS (INSERT INTO convs(conv, last_seq, n) SELECT $4::text, m.seq, 0 FROM m"
	"  ON CONFLICT(conv) DO UPDATE SET last_seq = excluded.last_seq)"
	" SELECT seq FROM m";

/* Any other row (a reaction) moves nothing. */
static const char sql_store_other[] =
	STORE_D ","
	" m AS (" STORE_COLS " SELECT" STORE_VALS("$19::text", "NULL::bigint")
	"  WHERE NOT EXISTS(SELECT 1 FROM d) ON CONFLICT DO NOTHING RETURNING seq)"
	" SELECT seq FROM m";

/* The newest copy of (sender, id): its server_ts, for the holder rule. */
static int find_dup(struct archive_pg *s, const char *sender, const char *id, bool *found,
		int64_t *server_ts)
{
	const char *args[2] = {sender, id};
	PGresult *r;
	int rc = query(s, "SELECT server_ts FROM messages WHERE sender=$1 AND id=$2 ORDER BY seq DESC LIMIT 1",
			2, args, &r);

	*found = false;
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) > 0){
		*found = true;
		*server_ts = col64(r, 0, 0);
	}
	PQclear(r);
	return MQC_OK;
}

/* A reaction row m was stored: add or take back the sender's reaction on
 * its target, the newest (of, ref) of the conversation, if that is a text
 * not deleted. */
static int apply_reaction(struct archive_pg *s, const struct archive_msg *m, const char *conv)
{
	const char *targs[3] = {m->of, m->ref, conv};
	char at[I64_LEN];
	PGresult *r;
	int rc = query(s, "SELECT seq FROM messages WHERE sender=$1 AND id=$2 AND conv=$3::text"
			" AND type='text' AND deleted IS NULL AND seq = (SELECT max(seq) FROM messages"
			" WHERE sender=$1 AND id=$2 AND conv=$3::text)", 3, targs, &r);
	char seq[I64_LEN];

	if(rc != MQC_OK) return rc;
	if(PQntuples(r) == 0){
		PQclear(r);
		return MQC_OK;
	}
	snprintf(seq, sizeof(seq), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	{
		const char *args[4] = {seq, m->sender, m->emoji, i64(at, m->server_ts)};

		if(m->remove){
			return query(s, "DELETE FROM reactions WHERE seq=$1::bigint AND \"user\"=$2 AND emoji=$3",
					3, args, NULL);
		}
		return query(s, "INSERT INTO reactions(seq, \"user\", emoji, at)"
				" VALUES($1::bigint, $2, $3, $4::bigint) ON CONFLICT DO NOTHING", 4, args, NULL);
	}
}

/* Store m in the open transaction (seq lock held). */
static int store(struct archive_pg *s, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored)
{
	char conv[CONV_LEN], ts[I64_LEN], sts[I64_LEN], idh[I64_LEN], seq[I64_LEN], since[I64_LEN];
	const char *args[STORE_NARGS + 1];
	const char *sql;
	enum prep which;
	bool text, event, reaction, found;
	int64_t dup_ts, created = 0;
	PGresult *r;
	int rc;

	text = m->type == NULL || strcmp(m->type, "text") == 0;
	event = !text && strcmp(m->type, ARCHIVE_TYPE_EVENT) == 0;
	reaction = !text && strcmp(m->type, ARCHIVE_TYPE_REACTION) == 0;
	if(m->recipient){
		archkey__dm_conv(m->sender, m->recipient, conv, sizeof(conv));
	}else{
		snprintf(conv, sizeof(conv), "r:%s", m->room);
	}
	args[0] = m->sender;
	args[1] = m->recipient;
	args[2] = m->room;
	args[3] = conv;
	args[4] = m->id;
	args[5] = m->body;
	args[6] = m->ts >= 0 ? i64(ts, m->ts) : NULL;
	args[7] = i64(sts, m->server_ts);
	args[8] = i64(idh, archkey__id_hash(m->sender, m->id));
	args[9] = m->ref;
	args[10] = m->of;
	args[11] = text ? m->reply_to : NULL;
	args[12] = text ? m->reply_from : NULL;
	args[13] = reaction ? m->emoji : NULL;
	args[14] = reaction ? (m->remove ? "t" : "f") : NULL;
	args[15] = i64(seq, s->next);
	args[16] = i64(since, 0);
	args[17] = "t";
	args[18] = m->type;
	sql = text ? sql_store_text : event ? sql_store_event : sql_store_other;
	which = text ? PREP_TEXT : event ? PREP_EVENT : PREP_OTHER;
	rc = query_prepared(s, which, sql, text || event ? STORE_NARGS : STORE_NARGS + 1, args, &r);
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) == 0){
		/* A row of (sender, id) is there: a copy, unless it was stored
		 * before the sender's account was created (the previous holder
		 * of the name used the same id). Then this one is keyed by the
		 * account's created time. */
		PQclear(r);
		rc = find_dup(s, m->sender, m->id, &found, &dup_ts);
		if(rc != MQC_OK || !found || created_of == NULL) return rc;
		rc = created_of(m->sender, &created, arg);
		if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
		if(rc != MQC_OK) return rc;
		if(dup_ts >= created) return MQC_OK;
		args[16] = i64(since, created);
		args[17] = "f";
		rc = query_prepared(s, which, sql, text || event ? STORE_NARGS : STORE_NARGS + 1, args, &r);
		if(rc != MQC_OK) return rc;
		if(PQntuples(r) == 0){
			PQclear(r);
			return MQC_OK;
		}
	}
	PQclear(r);
	s->next++;
	if(reaction) rc = apply_reaction(s, m, conv);
	if(rc == MQC_OK && stored) *stored = true;
	return rc;
}

static int pg_store(struct archive *base, const struct archive_msg *m, archive_created_fn created_of,
		void *arg, bool *stored)
{
	struct archive_pg *s = pg(base);
	bool mine, text, reaction;
	int rc;

	if(stored) *stored = false;
	if(m->sender == NULL || m->id == NULL || m->body == NULL
			|| (m->recipient == NULL) == (m->room == NULL)){
		return MQC_ERR_INVAL;
	}
	text = m->type == NULL || strcmp(m->type, "text") == 0;
	reaction = !text && strcmp(m->type, ARCHIVE_TYPE_REACTION) == 0;
	if(reaction && (m->ref == NULL || m->of == NULL || m->emoji == NULL)) return MQC_ERR_INVAL;
	rc = own(s, &mine);
	if(rc != MQC_OK) return rc;
	if(!s->locked){
		snprintf(s->errmsg, sizeof(s->errmsg), "a store outside archive__begin's transaction");
		return done(s, mine, MQC_ERR_INVAL);
	}
	rc = store(s, m, created_of, arg, stored);
	rc = done(s, mine, rc);
	if(rc != MQC_OK && stored) *stored = false;
	return rc;
}

/* The server's clock in ms, and how long an early receipt waits for its
 * message: a node's archiver a day behind is down, not slow, and a
 * receipt of a message never sent (a wrong or forged ref) must not stay. */
#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define EARLY_KEEP_MS "86400000"

/* A receipt whose message is not stored yet: keep it (a higher status
 * replaces a lower one, never the reverse) for apply_early(), with the
 * reader's account's created time for receipt()'s rule. The rows older
 * than EARLY_KEEP_MS go first (an index range on at): only this path
 * adds rows, so the table holds at most a day of early receipts, and no
 * other path pays for the bound.
 *
 * No receipt is lost between two archivers: this transaction and the one
 * storing the message both hold archive.seq's row from their first
 * statement (pg_begin: every writing transaction), so they run one after
 * the other, and the later one (READ COMMITTED: each statement a new
 * snapshot) sees the earlier one's commit: the message here, or this row
 * in apply_early(). */
static int keep_early(struct archive_pg *s, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg)
{
	char since[I64_LEN];
	const char *args[5] = {orig_sender, ref, reader, status, NULL};
	int64_t created = 0;
	int rc;

	if(created_of){
		rc = created_of(reader, &created, arg);
		if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
		if(rc != MQC_OK) return rc;
	}
	args[4] = i64(since, created);
	rc = exec(s, "DELETE FROM early_receipts WHERE at < " NOW_MS " - " EARLY_KEEP_MS);
	if(rc != MQC_OK) return rc;
	return query(s, "INSERT INTO early_receipts(sender, id, reader, status, reader_since, at)"
			" VALUES($1, $2, $3, $4, $5::bigint, " NOW_MS ")"
			" ON CONFLICT(sender, id, reader) DO UPDATE SET status = excluded.status,"
			" reader_since = excluded.reader_since, at = excluded.at"
			" WHERE early_receipts.status = 'delivered' AND excluded.status = 'read'", 5, args, NULL);
}

/* At commit, when this transaction stored messages (seq >= $1): the
 * early receipts of their (sender, id) are applied as receipt() would
 * have (to the newest row of (sender, id), a DM to the reader, stored
 * since the reader's account was created, never lowered) and deleted,
 * applied or not (their message is here; a room message keeps its
 * status). One statement per transaction, whatever it stored. */
static int apply_early(struct archive_pg *s)
{
	char first[I64_LEN];
	const char *args[1] = {i64(first, s->first)};

	return query(s, "WITH e AS (DELETE FROM early_receipts AS e USING messages AS m"
			"  WHERE m.seq >= $1::bigint AND e.sender = m.sender AND e.id = m.id"
			"  RETURNING e.sender, e.id, e.reader, e.status, e.reader_since)"
			" UPDATE messages AS m SET status = e.status FROM e"
			" WHERE m.sender = e.sender AND m.id = e.id AND m.recipient = e.reader"
			" AND m.seq = (SELECT max(x.seq) FROM messages AS x WHERE x.sender = e.sender AND x.id = e.id)"
			" AND m.server_ts >= e.reader_since"
			" AND (m.status = 'sent' OR (m.status = 'delivered' AND e.status = 'read'))", 1, args, NULL);
}

static int receipt(struct archive_pg *s, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated)
{
	const char *args[2] = {orig_sender, ref};
	char seq[I64_LEN];
	int64_t server_ts;
	bool allowed;
	PGresult *r;
	int rc;

	rc = query(s, "SELECT seq, recipient, status, server_ts FROM messages WHERE sender=$1 AND id=$2"
			" ORDER BY seq DESC LIMIT 1", 2, args, &r);
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) == 0){
		PQclear(r);
		return keep_early(s, orig_sender, ref, reader, status, created_of, arg);
	}
	allowed = archive_store__receipt_may(coltext(r, 0, 1), coltext(r, 0, 2), reader, status);
	snprintf(seq, sizeof(seq), "%s", PQgetvalue(r, 0, 0));
	server_ts = col64(r, 0, 3);
	PQclear(r);
	if(!allowed) return MQC_OK;
	rc = archive_store__sent_to_holder(reader, server_ts, created_of, arg, &allowed);
	if(rc != MQC_OK || !allowed) return rc;
	args[0] = seq;
	args[1] = status;
	rc = query(s, "UPDATE messages SET status=$2 WHERE seq=$1::bigint", 2, args, NULL);
	if(rc == MQC_OK) *updated = true;
	return rc;
}

static int pg_receipt(struct archive *base, const char *orig_sender, const char *ref,
		const char *reader, const char *status, archive_created_fn created_of, void *arg,
		bool *updated)
{
	struct archive_pg *s = pg(base);
	bool mine;
	int rc;

	*updated = false;
	if(archive_store__status_rank(status) < 1) return MQC_ERR_INVAL;
	rc = own(s, &mine);
	if(rc != MQC_OK) return rc;
	if(!s->locked){
		/* keep_early() counts on archive.seq's row being held. */
		snprintf(s->errmsg, sizeof(s->errmsg), "a receipt outside archive__begin's transaction");
		return done(s, mine, MQC_ERR_INVAL);
	}
	rc = done(s, mine, receipt(s, orig_sender, ref, reader, status, created_of, arg, updated));
	if(rc != MQC_OK) *updated = false;
	return rc;
}

/* No WAL to checkpoint: the server does its own. */
static int pg_start_checkpointer(struct archive *base, int interval_ms)
{
	(void)base;
	(void)interval_ms;
	return MQC_OK;
}

static int pg_count_invalid(struct archive *base, int64_t n)
{
	char v[I64_LEN];
	const char *args[1] = {i64(v, n)};

	return query(pg(base), "UPDATE meta SET value=(value::bigint + $1::bigint)::text WHERE key='invalid'",
			1, args, NULL);
}

static int pg_probe(struct archive *base)
{
	struct archive_pg *s = pg(base);
	int rc = connected(s);

	/* A real write, so a read-only server (a standby, a full disk) says so. */
	if(rc == MQC_OK) rc = exec(s, "INSERT INTO meta(key, value) VALUES('probe', clock_timestamp()::text)"
			" ON CONFLICT(key) DO UPDATE SET value=excluded.value");
	return rc;
}

/* ---- reading ---- */

/* The archived-message columns, in the order row_to_json reads them, and
 * the row's reactions as a JSON array of [emoji, user] (in the order they
 * were given), wrapped around a query of MSG_COLS. */
#define MSG_COLS "seq, id, sender, recipient, room, type, body, ts, server_ts, status," \
	" ref, of, reply_to, reply_from, emoji, remove, edited, deleted, deleted_by"
#define WITH_REACTIONS(inner, order) "SELECT v.*, (SELECT json_agg(json_build_array(x.emoji, x.\"user\")" \
	" ORDER BY x.at, x.\"user\", x.emoji) FROM reactions x WHERE x.seq = v.seq) FROM (" inner ") AS v" \
	" ORDER BY v.seq " order
enum msg_col {
	MC_SEQ, MC_ID, MC_SENDER, MC_RECIPIENT, MC_ROOM, MC_TYPE, MC_BODY, MC_TS, MC_SERVER_TS,
	MC_STATUS, MC_REF, MC_OF, MC_REPLY_TO, MC_REPLY_FROM, MC_EMOJI, MC_REMOVE, MC_EDITED,
	MC_DELETED, MC_DELETED_BY, MC_REACTIONS,
};

static int opt_str(json_t *o, const char *key, PGresult *r, int i, int col)
{
	if(PQgetisnull(r, i, col)) return 0;
	return json_object_set_new(o, key, json_string(PQgetvalue(r, i, col)));
}

static int opt_int(json_t *o, const char *key, PGresult *r, int i, int col)
{
	if(PQgetisnull(r, i, col)) return 0;
	return json_object_set_new(o, key, json_integer(col64(r, i, col)));
}

/* The reactions column ([[emoji, user], ...]) into o as
 * "reactions":[{"emoji","users"}], emojis in the order of their first
 * reaction; nothing when there are none. */
static int reactions_to_json(json_t *o, PGresult *r, int i)
{
	json_t *list, *arr = NULL, *pair;
	size_t k;

	if(PQgetisnull(r, i, MC_REACTIONS)) return 0;
	list = json_loads(PQgetvalue(r, i, MC_REACTIONS), 0, NULL);
	if(!json_is_array(list)){
		json_decref(list);
		return -1;
	}
	json_array_foreach(list, k, pair){
		const char *emoji = json_string_value(json_array_get(pair, 0));
		const char *user = json_string_value(json_array_get(pair, 1));

		if(emoji == NULL || user == NULL) continue;
		if(archive_store__reaction_add(&arr, emoji, user)) break;
	}
	json_decref(list);
	return arr ? json_object_set_new(o, "reactions", arr) : 0;
}

/* Row i of r in the archived-message form: archive.c's row_to_json. */
static json_t *row_to_json(PGresult *r, int i)
{
	json_t *o = json_object();
	const char *recipient, *room, *type;
	bool text, deleted, change;

	if(o == NULL) return NULL;
	recipient = coltext(r, i, MC_RECIPIENT);
	room = coltext(r, i, MC_ROOM);
	type = coltext(r, i, MC_TYPE);
	if(type == NULL) type = "text";
	text = strcmp(type, "text") == 0;
	deleted = text && !PQgetisnull(r, i, MC_DELETED);
	change = strcmp(type, "edit") == 0 || strcmp(type, "delete") == 0;
	if(json_object_set_new(o, "seq", json_integer(col64(r, i, MC_SEQ)))
			|| json_object_set_new(o, "id", json_string(PQgetvalue(r, i, MC_ID)))
			|| json_object_set_new(o, "from", json_string(PQgetvalue(r, i, MC_SENDER)))
			|| (recipient && json_object_set_new(o, "to", json_string(recipient)))
			|| (room && json_object_set_new(o, "room", json_string(room)))
			|| json_object_set_new(o, "type", json_string(type))){
		goto fail;
	}
	if(text || strcmp(type, ARCHIVE_TYPE_EVENT) == 0){
		if(deleted ? json_object_set_new(o, "body", json_string(""))
				: archive_store__body_to_json(o, type, PQgetvalue(r, i, MC_BODY),
					(size_t)PQgetlength(r, i, MC_BODY))){
			goto fail;
		}
		if(text && !deleted && (opt_str(o, "reply_to", r, i, MC_REPLY_TO)
					|| opt_str(o, "reply_from", r, i, MC_REPLY_FROM))){
			goto fail;
		}
	}else{
		if(opt_str(o, "ref", r, i, MC_REF) || opt_str(o, "of", r, i, MC_OF)) goto fail;
		if(strcmp(type, ARCHIVE_TYPE_REACTION) == 0){
			if(opt_str(o, "emoji", r, i, MC_EMOJI)
					|| json_object_set_new(o, "remove",
						json_boolean(strcmp(PQgetvalue(r, i, MC_REMOVE), "t") == 0))){
				goto fail;
			}
		}else if(strcmp(type, "edit") == 0
				&& json_object_set_new(o, "body", json_string(PQgetvalue(r, i, MC_BODY)))){
			goto fail;
		}
		if(change && opt_str(o, "by", r, i, MC_SENDER)) goto fail;
	}
	if(json_object_set_new(o, "ts", PQgetisnull(r, i, MC_TS) ? json_null() : json_integer(col64(r, i, MC_TS)))
			|| json_object_set_new(o, "server_ts", json_integer(col64(r, i, MC_SERVER_TS)))
			|| json_object_set_new(o, "status", json_string(PQgetvalue(r, i, MC_STATUS)))){
		goto fail;
	}
	if(text && !deleted && (opt_int(o, "edited", r, i, MC_EDITED) || reactions_to_json(o, r, i))){
		goto fail;
	}
	if(deleted && (opt_int(o, "deleted", r, i, MC_DELETED) || opt_str(o, "deleted_by", r, i, MC_DELETED_BY))){
		goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Run a query of WITH_REACTIONS rows; its rows as a new array, at most max
 * (max < 0: all); *extra says whether a row beyond max came. NULL on error. */
static json_t *collect(struct archive_pg *s, const char *sql, int n, const char *const *args,
		long max, bool *extra)
{
	json_t *arr;
	PGresult *r;
	int i;

	if(extra) *extra = false;
	if(query(s, sql, n, args, &r) != MQC_OK) return NULL;
	arr = json_array();
	for(i = 0; arr && i < PQntuples(r); i++){
		json_t *m;

		if(max >= 0 && i >= max){
			if(extra) *extra = true;
			break;
		}
		m = row_to_json(r, i);
		if(m == NULL || json_array_append_new(arr, m)){
			json_decref(arr);
			arr = NULL;
		}
	}
	PQclear(r);
	return arr;
}

static json_t *pg_history(struct archive *base, const char *conv, int64_t since_ms, int64_t before,
		int limit, bool *more)
{
	char b[I64_LEN], l[I64_LEN], since[I64_LEN];
	const char *args[4] = {conv, i64(b, before > 0 ? before : INT64_MAX), i64(l, (int64_t)limit + 1),
		i64(since, since_ms)};

	*more = false;
	return collect(pg(base), WITH_REACTIONS("SELECT " MSG_COLS " FROM messages WHERE conv=$1::text"
				" AND seq<$2::bigint AND seq>=seq_floor($4::bigint) AND server_ts>=$4::bigint"
				" AND type IN ('text','event') ORDER BY seq DESC LIMIT $3::bigint", "DESC"),
			4, args, limit, more);
}

static json_t *pg_get(struct archive *base, int64_t seq)
{
	char v[I64_LEN];
	const char *args[1] = {i64(v, seq)};

	return collect(pg(base), WITH_REACTIONS("SELECT " MSG_COLS " FROM messages WHERE seq=$1::bigint", ""),
			1, args, 1, NULL);
}

static int pg_seq_floor(struct archive *base, int64_t since_ms, int64_t *floor)
{
	char v[I64_LEN];
	const char *args[1] = {i64(v, since_ms)};

	return query_int(pg(base), "SELECT seq_floor($1::bigint)", 1, args, 0, floor);
}

/* A text array literal of PostgreSQL ({"a","b"}), each element quoted, into
 * a new string. */
static char *text_array(const char *const *items, size_t n)
{
	size_t cap = 3, i;
	char *out, *p;

	for(i = 0; i < n; i++) cap += 2 * strlen(items[i]) + 3;
	out = malloc(cap);
	if(out == NULL) return NULL;
	p = out;
	*p++ = '{';
	for(i = 0; i < n; i++){
		const char *c;

		if(i) *p++ = ',';
		*p++ = '"';
		for(c = items[i]; *c; c++){
			if(*c == '"' || *c == '\\') *p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/* A bigint array literal ({1,2}) into a new string. */
static char *int_array(const int64_t *v, size_t n)
{
	char *out = malloc(n * I64_LEN + 3), *p;
	size_t i;

	if(out == NULL) return NULL;
	p = out;
	*p++ = '{';
	for(i = 0; i < n; i++) p += sprintf(p, "%s%lld", i ? "," : "", (long long)v[i]);
	*p++ = '}';
	*p = '\0';
	return out;
}

/* What sync without the change rows keeps (as history). */
#define SYNC_KINDS " AND ($5::boolean OR type IN ('text','event'))"

/* One index range per source (DMs in, DMs out, each room: unnest of the
 * arrays $6, $7), each in seq order from where its holder's messages can
 * start, cut at limit+1, merged: archive.c's sync in one statement. */
static const char sql_sync[] = WITH_REACTIONS(
	"SELECT * FROM ("
	"(SELECT " MSG_COLS " FROM messages WHERE recipient=$1::text"
	" AND seq>GREATEST($2::bigint, seq_floor($4::bigint) - 1) AND server_ts>=$4::bigint" SYNC_KINDS
	" ORDER BY seq LIMIT $3::bigint)"
	" UNION ALL (SELECT " MSG_COLS " FROM messages WHERE sender=$1::text AND recipient IS NOT NULL"
	" AND recipient<>$1::text AND seq>GREATEST($2::bigint, seq_floor($4::bigint) - 1)"
	" AND server_ts>=$4::bigint" SYNC_KINDS " ORDER BY seq LIMIT $3::bigint)"
	" UNION ALL (SELECT q.* FROM unnest($6::text[], $7::bigint[]) AS rm(conv, since)"
	" CROSS JOIN LATERAL (SELECT " MSG_COLS " FROM messages WHERE conv=rm.conv"
	" AND seq>GREATEST($2::bigint, seq_floor(rm.since) - 1) AND server_ts>=rm.since" SYNC_KINDS
	" ORDER BY seq LIMIT $3::bigint) AS q)"
	") AS u ORDER BY seq LIMIT $3::bigint", "");

static json_t *pg_sync(struct archive *base, const char *user, int64_t user_since,
		const struct archive_room *rooms, size_t nrooms, int64_t after, int limit, bool changes,
		bool *more)
{
	char a[I64_LEN], l[I64_LEN], us[I64_LEN];
	char **convs = NULL, *conv_arr = NULL, *since_arr = NULL;
	int64_t *sinces = NULL;
	const char *args[7];
	json_t *arr = NULL;
	size_t i;

	*more = false;
	convs = calloc(nrooms + 1, sizeof(*convs));
	sinces = calloc(nrooms + 1, sizeof(*sinces));
	if(convs == NULL || sinces == NULL) goto done;
	for(i = 0; i < nrooms; i++){
		convs[i] = malloc(NAME_MAX_LEN + 3);
		if(convs[i] == NULL) goto done;
		snprintf(convs[i], NAME_MAX_LEN + 3, "r:%s", rooms[i].name);
		sinces[i] = rooms[i].since;
	}
	conv_arr = text_array((const char *const *)convs, nrooms);
	since_arr = int_array(sinces, nrooms);
	if(conv_arr == NULL || since_arr == NULL) goto done;
	args[0] = user;
	args[1] = i64(a, after);
	args[2] = i64(l, (int64_t)limit + 1);
	args[3] = i64(us, user_since);
	args[4] = changes ? "t" : "f";
	args[5] = conv_arr;
	args[6] = since_arr;
	arr = collect(pg(base), sql_sync, 7, args, limit, more);
done:
	for(i = 0; convs && i < nrooms; i++) free(convs[i]);
	free(convs);
	free(sinces);
	free(conv_arr);
	free(since_arr);
	return arr;
}

/* ---- conversations and read markers ---- */

static int pg_dm_convs(struct archive *base, const char *user, int64_t min_seq, int64_t before,
		int (*fn)(const struct archive_conv *c, void *arg), void *arg)
{
	char lo[I64_LEN], hi[I64_LEN];
	const char *args[3] = {user, i64(lo, min_seq), i64(hi, before > 0 ? before : INT64_MAX)};
	struct archive_conv c;
	PGresult *r;
	int i, rc, frc = MQC_OK;

	rc = query(pg(base), "SELECT r.conv, r.peer, c.last_seq, c.n, r.read_seq, r.read_n FROM reads AS r"
			" JOIN convs AS c ON c.conv=r.conv WHERE r.\"user\"=$1 AND r.peer IS NOT NULL"
			" AND c.last_seq>=$2::bigint AND c.last_seq<$3::bigint", 3, args, &r);
	if(rc != MQC_OK) return rc;
	for(i = 0; frc == MQC_OK && i < PQntuples(r); i++){
		memset(&c, 0, sizeof(c));
		snprintf(c.conv, sizeof(c.conv), "%s", PQgetvalue(r, i, 0));
		snprintf(c.peer, sizeof(c.peer), "%s", PQgetvalue(r, i, 1));
		c.last_seq = col64(r, i, 2);
		c.n = col64(r, i, 3);
		c.read_seq = col64(r, i, 4);
		c.read_n = col64(r, i, 5);
		frc = fn(&c, arg);
	}
	PQclear(r);
	return frc;
}

static int pg_conv_get(struct archive *base, const char *user, const char *conv, struct archive_conv *out)
{
	const char *args[2] = {user, conv};
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->conv, sizeof(out->conv), "%s", conv);
	rc = query(pg(base), "SELECT c.last_seq, c.n, r.read_seq, r.read_n, r.peer FROM (SELECT $2::text AS k) AS q"
			" LEFT JOIN convs AS c ON c.conv=q.k LEFT JOIN reads AS r ON r.\"user\"=$1 AND r.conv=q.k",
			2, args, &r);
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) > 0){
		out->last_seq = col64(r, 0, 0);
		out->n = col64(r, 0, 1);
		out->read_seq = col64(r, 0, 2);
		out->read_n = col64(r, 0, 3);
		if(!PQgetisnull(r, 0, 4)) snprintf(out->peer, sizeof(out->peer), "%s", PQgetvalue(r, 0, 4));
	}
	PQclear(r);
	return MQC_OK;
}

static int pg_text_n_at(struct archive *base, const char *conv, int64_t seq, int64_t *n)
{
	char v[I64_LEN];
	const char *args[2] = {conv, i64(v, seq)};

	return query_int(pg(base), "SELECT n FROM messages WHERE conv=$1 AND seq<=$2::bigint AND type='text'"
			" ORDER BY seq DESC LIMIT 1", 2, args, 0, n);
}

static int pg_conv_target(struct archive *base, const char *conv, int64_t seq, const char *of,
		const char *ref, int64_t since_ms, int64_t *found)
{
	char v[I64_LEN], since[I64_LEN];
	int rc;

	*found = 0;
	if(seq > 0){
		const char *args[3] = {i64(v, seq), conv, i64(since, since_ms)};

		rc = query_int(pg(base), "SELECT seq FROM messages WHERE seq=$1::bigint AND conv=$2"
				" AND type IN ('text','event') AND server_ts>=$3::bigint", 3, args, 0, found);
	}else{
		const char *args[4] = {of, ref, conv, i64(since, since_ms)};

		if(of == NULL || ref == NULL) return MQC_ERR_INVAL;
		/* The newest (of, ref) of the conversation, if it is a text or
		 * event the reader may see. */
		rc = query_int(pg(base), "SELECT seq FROM (SELECT seq, type, server_ts FROM messages"
				" WHERE sender=$1 AND id=$2 AND conv=$3 ORDER BY seq DESC LIMIT 1) AS t"
				" WHERE type IN ('text','event') AND server_ts>=$4::bigint", 4, args, 0, found);
	}
	if(rc != MQC_OK) return rc;
	return *found > 0 ? MQC_OK : MQC_ERR_NOTFOUND;
}

static int pg_read_set(struct archive *base, const char *user, const char *conv, const char *peer,
		const char *room, int64_t seq, int64_t n)
{
	char sv[I64_LEN], nv[I64_LEN];
	const char *args[6] = {user, conv, peer, room, i64(sv, seq), i64(nv, n)};

	return query(pg(base), "INSERT INTO reads(\"user\", conv, peer, room, read_seq, read_n)"
			" VALUES($1, $2, $3, $4, $5::bigint, $6::bigint) ON CONFLICT(\"user\", conv) DO UPDATE"
			" SET read_seq=GREATEST(reads.read_seq, excluded.read_seq),"
			" read_n=GREATEST(reads.read_n, excluded.read_n)", 6, args, NULL);
}

/* ---- what SQLite alone needs ---- */

/* The search index (pg_trgm) is kept by the server at each insert: every
 * text is in it as soon as it is committed. */
static int pg_index_step(struct archive *base, int max_rows, int64_t *left)
{
	(void)base;
	(void)max_rows;
	*left = 0;
	return MQC_OK;
}

static int pg_index_mark(struct archive *base, int64_t *mark)
{
	return query_int(pg(base), "SELECT COALESCE(max(seq), 0) FROM messages", 0, NULL, 0, mark);
}

/* ---- deleting: expiry, purge, erasure ----
 * What archive.db's triggers do when a text or event goes
 * (messages_gone, convs_emptied) is done by the deleting statements
 * here: its reactions go, its conversation's last_seq goes back to the
 * last text or event left (0: none), and a conversation left empty has
 * nothing unread (every marker to its end). Each batch is one
 * transaction that takes the seq lock first, as every writer does. */

/* Delete the messages whose seqs sel selects (its parameters args), in
 * the open transaction; *n += how many. */
static int delete_msgs(struct archive_pg *s, const char *sel, int nargs, const char *const *args,
		int64_t *n)
{
	char sql[1024];
	const char *cargs[1];
	char *list = NULL;
	PGresult *r;
	int rc;

	snprintf(sql, sizeof(sql), "WITH g AS (DELETE FROM messages WHERE seq IN (%s) RETURNING seq, conv, type),"
			" x AS (DELETE FROM reactions WHERE seq IN (SELECT seq FROM g WHERE type IN ('text','event')))"
			" SELECT count(*), COALESCE(array_agg(DISTINCT conv) FILTER (WHERE type IN ('text','event')),"
			" '{}') FROM g", sel);
	rc = query(s, sql, nargs, args, &r);
	if(rc != MQC_OK) return rc;
	*n += col64(r, 0, 0);
	if(strcmp(PQgetvalue(r, 0, 1), "{}") != 0) list = strdup(PQgetvalue(r, 0, 1));
	PQclear(r);
	if(list == NULL) return MQC_OK;
	cargs[0] = list;
	/* A second statement: it must see the rows gone. */
	rc = query(s, "WITH old AS (SELECT conv, last_seq FROM convs WHERE conv = ANY($1::text[])"
			"  AND last_seq <> 0 AND NOT EXISTS(SELECT 1 FROM messages WHERE seq = convs.last_seq)),"
			" c AS (UPDATE convs SET last_seq = COALESCE((SELECT max(m.seq) FROM messages AS m"
			"  WHERE m.conv = convs.conv AND m.type IN ('text','event')), 0) FROM old"
			"  WHERE convs.conv = old.conv RETURNING convs.conv, convs.last_seq, convs.n, old.last_seq AS was)"
			" UPDATE reads SET read_n = c.n, read_seq = GREATEST(reads.read_seq, c.was) FROM c"
			" WHERE reads.conv = c.conv AND c.last_seq = 0", 1, cargs, NULL);
	free(list);
	return rc;
}

/* Run delete_msgs on sel (which selects at most ARCHIVE_BATCH seqs) in
 * transactions of one batch each until a batch deletes fewer. */
static int delete_batches(struct archive_pg *s, const char *sel, int nargs, const char *const *args,
		int64_t *deleted)
{
	int64_t n;
	int rc;

	*deleted = 0;
	do{
		n = 0;
		rc = pg_begin(&s->base);
		if(rc == MQC_OK) rc = delete_msgs(s, sel, nargs, args, &n);
		rc = done(s, true, rc);
		if(rc != MQC_OK) return rc;
		*deleted += n;
	}while(n >= ARCHIVE_BATCH);
	return MQC_OK;
}

static bool in_list(const char *str, const char *const *list, size_t n)
{
	if(str == NULL) return false;
	for(size_t i = 0; i < n; i++){
		if(strcmp(str, list[i]) == 0) return true;
	}
	return false;
}

/* archive.c's expire_step: the same scan in seq order, the same stop at
 * the first row not yet due, in one transaction. */
static int pg_expire_step(struct archive *base, const char *conv,
		const char *const *skip_rooms, size_t nskip, int64_t cutoff_ms, int max_scan,
		int64_t *cursor, int64_t *deleted, bool *done_)
{
	struct archive_pg *s = pg(base);
	char cur[I64_LEN], max[I64_LEN];
	const char *args[3] = {i64(cur, *cursor), i64(max, max_scan > 0 ? max_scan : ARCHIVE_BATCH), conv};
	int64_t *seqs = NULL, *left, n = 0;
	char *list = NULL;
	PGresult *r;
	int i, rows, rc;

	*done_ = false;
	if(max_scan <= 0) max_scan = ARCHIVE_BATCH;
	rc = pg_begin(base);
	if(rc != MQC_OK) return rc;
	rc = query(s, conv ? "SELECT seq, server_ts, room FROM messages WHERE conv=$3 AND seq>$1::bigint"
			" ORDER BY seq LIMIT $2::bigint"
			: "SELECT seq, server_ts, room FROM messages WHERE seq>$1::bigint ORDER BY seq LIMIT $2::bigint",
			conv ? 3 : 2, args, &r);
	if(rc != MQC_OK) goto fail;
	rows = PQntuples(r);
	seqs = malloc(((size_t)rows + 1) * sizeof(*seqs));
	if(seqs == NULL){
		PQclear(r);
		rc = MQC_ERR_NOMEM;
		goto fail;
	}
	left = seqs;
	for(i = 0; i < rows; i++){
		if(col64(r, i, 1) >= cutoff_ms){
			*done_ = true;
			break;
		}
		*cursor = col64(r, i, 0);
		if(in_list(coltext(r, i, 2), skip_rooms, nskip)) continue;
		*left++ = col64(r, i, 0);
	}
	PQclear(r);
	if(rows < max_scan) *done_ = true;
	if(left > seqs){
		const char *dargs[1];

		list = int_array(seqs, (size_t)(left - seqs));
		if(list == NULL){
			rc = MQC_ERR_NOMEM;
			goto fail;
		}
		dargs[0] = list;
		rc = delete_msgs(s, "SELECT unnest($1::bigint[])", 1, dargs, &n);
		if(rc != MQC_OK) goto fail;
	}
	rc = pg_commit(base);
	if(rc == MQC_OK) *deleted += n;
	free(seqs);
	free(list);
	return rc;
fail:
	free(seqs);
	free(list);
	pg_rollback(base);
	return rc;
}

static int pg_purge(struct archive *base, int64_t cutoff_ms, int64_t *deleted)
{
	char v[I64_LEN];
	const char *args[1] = {i64(v, cutoff_ms)};

	return delete_batches(pg(base), "SELECT seq FROM messages WHERE server_ts<$1::bigint ORDER BY seq"
			" LIMIT " ARCHIVE_BATCH_TEXT, 1, args, deleted);
}

static int pg_erase_user(struct archive *base, const char *user, int64_t since_ms, int64_t *deleted)
{
	struct archive_pg *s = pg(base);
	char v[I64_LEN];
	const char *args[2] = {user, i64(v, since_ms)};
	int rc;

	if(user == NULL) return MQC_ERR_INVAL;
	rc = delete_batches(s, "SELECT seq FROM messages WHERE (sender=$1 OR recipient=$1)"
			" AND server_ts>=$2::bigint LIMIT " ARCHIVE_BATCH_TEXT, 2, args, deleted);
	/* Then what the user did to others': reactions, read markers. */
	if(rc == MQC_OK) rc = pg_begin(base);
	if(rc == MQC_OK){
		rc = query(s, "DELETE FROM reactions WHERE \"user\"=$1 AND at>=$2::bigint", 2, args, NULL);
		if(rc == MQC_OK) rc = query(s, "DELETE FROM reads WHERE \"user\"=$1", 1, args, NULL);
		/* And the receipts waiting for a message, given or awaited. */
		if(rc == MQC_OK) rc = query(s, "DELETE FROM early_receipts WHERE reader=$1 OR sender=$1",
				1, args, NULL);
		rc = done(s, true, rc);
	}
	return rc;
}

/* ---- the operators' reads: stats and export ---- */

/* archive.c's stats: last_seq is the largest seq ever given (the next
 * free one less one), db_bytes the schema's tables with their indexes;
 * days in UTC, as SQLite's strftime. One snapshot. */
static json_t *pg_stats(struct archive *base)
{
	struct archive_pg *s = pg(base);
	json_t *o = NULL, *days = NULL;
	int64_t count, invalid, last_seq, last_ts, bytes;
	PGresult *r = NULL;
	int i;

	if(connected(s) != MQC_OK || exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != MQC_OK) return NULL;
	if(query_int(s, "SELECT count(*) FROM messages", 0, NULL, 0, &count)
			|| query_int(s, "SELECT value::bigint FROM meta WHERE key='invalid'", 0, NULL, 0, &invalid)
			|| query_int(s, "SELECT next - 1 FROM seq", 0, NULL, 0, &last_seq)
			|| query_int(s, "SELECT server_ts FROM messages ORDER BY seq DESC LIMIT 1", 0, NULL, 0, &last_ts)
			|| query_int(s, "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class AS c"
				" JOIN pg_namespace AS n ON n.oid = c.relnamespace"
				" WHERE n.nspname = 'archive' AND c.relkind = 'r'", 0, NULL, 0, &bytes)
			|| query(s, "SELECT to_char(to_timestamp(server_ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d,"
				" count(*) FROM messages GROUP BY d ORDER BY d", 0, NULL, &r)){
		goto done;
	}
	days = json_object();
	for(i = 0; days && i < PQntuples(r); i++){
		if(json_object_set_new(days, PQgetvalue(r, i, 0), json_integer(col64(r, i, 1)))){
			json_decref(days);
			days = NULL;
		}
	}
	if(days){
		o = json_pack("{sI sO sI sI sI sI}", "messages", (json_int_t)count, "by_day", days,
				"invalid", (json_int_t)invalid, "last_seq", (json_int_t)last_seq,
				"last_server_ts", (json_int_t)last_ts, "db_bytes", (json_int_t)bytes);
	}
done:
	PQclear(r);
	json_decref(days);
	exec(s, "ROLLBACK");
	return o;
}

/* archive.c's export_page: the user's two index ranges merged. */
static json_t *pg_export_page(struct archive *base, const char *user, int64_t since_ms, int64_t after,
		int limit, bool *more)
{
	char sv[I64_LEN], av[I64_LEN], lv[I64_LEN];
	const char *args[4] = {user, i64(sv, since_ms), i64(av, after),
		limit < 0 ? NULL : i64(lv, (int64_t)limit + 1)};

	if(more) *more = false;
	if(user == NULL) return NULL;
	return collect(pg(base), WITH_REACTIONS("SELECT * FROM ("
				"(SELECT " MSG_COLS " FROM messages WHERE sender=$1 AND seq>$3::bigint"
				" AND server_ts>=$2::bigint ORDER BY seq LIMIT $4::bigint)"
				" UNION ALL (SELECT " MSG_COLS " FROM messages WHERE recipient=$1 AND sender<>$1"
				" AND seq>$3::bigint AND server_ts>=$2::bigint ORDER BY seq LIMIT $4::bigint)"
				") AS u ORDER BY seq LIMIT $4::bigint", ""), 4, args, limit, more);
}

/* ---- edits and deletes (archive_ext.h) ---- */

static int pg_text_find(struct archive *base, const char *sender, const char *id, const char *room,
		struct archive_text *t)
{
	const char *args[3] = {sender, id, room};
	PGresult *r;
	int rc;

	memset(t, 0, sizeof(*t));
	if(sender == NULL || id == NULL) return MQC_ERR_INVAL;
	rc = query(pg(base), "SELECT seq, sender, recipient, room, server_ts, deleted IS NOT NULL FROM messages"
			" WHERE sender=$1 AND id=$2 AND type='text' AND ($3::text IS NULL OR room=$3::text)"
			" ORDER BY seq DESC LIMIT 1", 3, args, &r);
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) == 0){
		PQclear(r);
		return MQC_ERR_NOTFOUND;
	}
	t->seq = col64(r, 0, 0);
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->sender, sizeof(t->sender), "%s", PQgetvalue(r, 0, 1));
	snprintf(t->recipient, sizeof(t->recipient), "%s", PQgetvalue(r, 0, 2));
	snprintf(t->room, sizeof(t->room), "%s", PQgetvalue(r, 0, 3));
	t->server_ts = col64(r, 0, 4);
	t->deleted = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
	PQclear(r);
	return MQC_OK;
}

/* Run sql (one UPDATE of the row $1, $2 text a, $3 integer b): MQC_OK if
 * it changed exactly that row. */
static int update_text(struct archive_pg *s, const char *sql, int64_t seq, const char *a, int64_t b)
{
	char sv[I64_LEN], bv[I64_LEN];
	const char *args[3] = {i64(sv, seq), a, i64(bv, b)};
	PGresult *r;
	int rc = query(s, sql, 3, args, &r);

	if(rc != MQC_OK) return rc;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? MQC_OK : MQC_ERR_NOTFOUND;
	PQclear(r);
	return rc;
}

/* The row of type ('edit' or 'delete') from sender about text t, in t's
 * conversation, with body: *seq its seq. Inside the caller's transaction
 * (archive__begin: the seq lock held). */
static int store_row(struct archive_pg *s, const struct archive_text *t, const char *type,
		const char *sender, const char *row_id, const char *body, int64_t now, int64_t *seq)
{
	char conv[CONV_LEN], sv[I64_LEN], nv[I64_LEN], idh[I64_LEN];
	const char *recipient = t->room[0] ? NULL : t->recipient, *room = t->room[0] ? t->room : NULL;
	const char *args[11];
	int rc;

	if(!s->locked){
		snprintf(s->errmsg, sizeof(s->errmsg), "an edit outside archive__begin's transaction");
		return MQC_ERR_INVAL;
	}
	if(room) snprintf(conv, sizeof(conv), "r:%s", room);
	else archkey__dm_conv(t->sender, recipient, conv, sizeof(conv));
	args[0] = i64(sv, s->next);
	args[1] = sender;
	args[2] = recipient;
	args[3] = room;
	args[4] = conv;
	args[5] = type;
	args[6] = row_id;
	args[7] = body;
	args[8] = i64(nv, now);
	args[9] = i64(idh, archkey__id_hash(sender, row_id));
	args[10] = t->id;
	{
		const char *all[12];

		memcpy(all, args, sizeof(args));
		all[11] = t->sender;
		rc = query(s, "INSERT INTO messages(seq, sender, recipient, room, conv, type, id, body, ts, server_ts,"
				" idh, ref, of) VALUES($1::bigint, $2, $3, $4, $5, $6, $7, $8, $9::bigint, $9::bigint,"
				" $10::bigint, $11, $12)", 12, all, NULL);
	}
	if(rc != MQC_OK) return rc;
	*seq = s->next++;
	return MQC_OK;
}

static int pg_text_edit(struct archive *base, const struct archive_text *t, const char *body,
		const char *row_id, int64_t now, int64_t *seq)
{
	struct archive_pg *s = pg(base);
	int rc = update_text(s, "UPDATE messages SET body=$2, edited=$3::bigint WHERE seq=$1::bigint"
			" AND deleted IS NULL", t->seq, body, now);

	if(rc != MQC_OK) return rc;
	return store_row(s, t, "edit", t->sender, row_id, body, now, seq);
}

/* A tombstone has no reactions (archive.db's messages_tombstone trigger). */
static int pg_text_delete(struct archive *base, const struct archive_text *t, const char *who,
		const char *row_id, int64_t now, int64_t *seq)
{
	struct archive_pg *s = pg(base);
	char sv[I64_LEN];
	const char *args[1] = {i64(sv, t->seq)};
	int rc = update_text(s, "UPDATE messages SET body='', deleted_by=$2, deleted=$3::bigint"
			" WHERE seq=$1::bigint AND deleted IS NULL", t->seq, who, now);

	if(rc == MQC_OK) rc = query(s, "DELETE FROM reactions WHERE seq=$1::bigint", 1, args, NULL);
	if(rc != MQC_OK) return rc;
	return store_row(s, t, "delete", who, row_id, "", now, seq);
}

/* ---- search ----
 * pg_trgm's GIN index (messages_trgm, texts not deleted) serves ILIKE
 * '%text%': any substring, case folded as the database's locale folds
 * (FTS5's trigram tokenizer folds Unicode; a database in the C locale
 * folds ASCII only). One statement: the hits the asker may read, newest
 * first, as archive_search.c's readable() says. */
static const char sql_search[] = WITH_REACTIONS(
	"SELECT " MSG_COLS " FROM messages AS m WHERE type='text' AND deleted IS NULL"
	" AND body ILIKE $1 AND seq < $2::bigint AND ("
	"(recipient IS NOT NULL AND $6::text IS NULL AND server_ts >= $4::bigint"
	" AND ((sender=$3::text AND ($5::text IS NULL OR recipient=$5::text))"
	" OR (recipient=$3::text AND sender<>$3::text AND ($5::text IS NULL OR sender=$5::text))))"
	" OR (room IS NOT NULL AND $5::text IS NULL AND ($6::text IS NULL OR room=$6::text)"
	" AND EXISTS(SELECT 1 FROM unnest($7::text[], $8::bigint[]) AS r(name, since)"
	" WHERE r.name=m.room AND m.server_ts >= r.since)))"
	" ORDER BY seq DESC LIMIT $9::bigint", "DESC");

static json_t *pg_search(struct archive *base, const struct archive_search *q, bool *more, int64_t *next)
{
	char *pattern = NULL, *names = NULL, *sinces = NULL, *p;
	const char **list = NULL;
	int64_t *since = NULL;
	char before[I64_LEN], us[I64_LEN], lim[I64_LEN];
	const char *args[9];
	json_t *arr = NULL;
	size_t i, len;

	*more = false;
	*next = 0;
	if(q->text == NULL || q->limit < 1) return NULL;
	/* A literal: LIKE's %, _ and its escape \ escaped. */
	len = strlen(q->text);
	pattern = malloc(2 * len + 3);
	list = calloc(q->nrooms + 1, sizeof(*list));
	since = calloc(q->nrooms + 1, sizeof(*since));
	if(pattern == NULL || list == NULL || since == NULL) goto done;
	p = pattern;
	*p++ = '%';
	for(i = 0; i < len; i++){
		if(q->text[i] == '%' || q->text[i] == '_' || q->text[i] == '\\') *p++ = '\\';
		*p++ = q->text[i];
	}
	*p++ = '%';
	*p = '\0';
	for(i = 0; i < q->nrooms; i++){
		list[i] = q->rooms[i].name;
		since[i] = q->rooms[i].since;
	}
	names = text_array(list, q->nrooms);
	sinces = int_array(since, q->nrooms);
	if(names == NULL || sinces == NULL) goto done;
	args[0] = pattern;
	args[1] = i64(before, q->before > 0 ? q->before : INT64_MAX);
	args[2] = q->user;
	args[3] = i64(us, q->user_since);
	args[4] = q->with;
	args[5] = q->room;
	args[6] = names;
	args[7] = sinces;
	args[8] = i64(lim, (int64_t)q->limit + 1);
	arr = collect(pg(base), sql_search, 9, args, q->limit, more);
	if(arr && *more){
		*next = json_integer_value(json_object_get(json_array_get(arr, json_array_size(arr) - 1), "seq"));
	}
done:
	free(pattern);
	free(list);
	free(since);
	free(names);
	free(sinces);
	return arr;
}

static const struct archive_ops pg_ops = {
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.errmsg = pg_errmsg,
	.batch_begin = pg_batch_begin,
	.batch_commit = pg_batch_commit,
	.batch_rollback = pg_batch_rollback,
	.store = pg_store,
	.receipt = pg_receipt,
	.start_checkpointer = pg_start_checkpointer,
	.count_invalid = pg_count_invalid,
	.probe = pg_probe,
	.history = pg_history,
	.get = pg_get,
	.seq_floor = pg_seq_floor,
	.dm_convs = pg_dm_convs,
	.conv_get = pg_conv_get,
	.text_n_at = pg_text_n_at,
	.conv_target = pg_conv_target,
	.read_set = pg_read_set,
	.sync = pg_sync,
	.expire_step = pg_expire_step,
	.index_step = pg_index_step,
	.index_mark = pg_index_mark,
	.purge = pg_purge,
	.erase_user = pg_erase_user,
	.stats = pg_stats,
	.export_page = pg_export_page,
	.text_find = pg_text_find,
	.text_edit = pg_text_edit,
	.text_delete = pg_text_delete,
	.search = pg_search,
};

/* ---- the feed: a connection of its own that only reads ---- */

struct feed_pg {
	struct archive_feed base;
	struct archive_pg s;   /* its connection and error text (never a writer) */
};

static void feed_close(struct archive_feed *base)
{
	struct feed_pg *f = (struct feed_pg *)base;

	if(f->s.conn) PQfinish(f->s.conn);
	free(f);
}

int archive_pg__feed_open(const struct store_conf *conf, struct archive_feed **out, char *err,
		size_t errlen)
{
	struct feed_pg *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if(f == NULL) return MQC_ERR_NOMEM;
	f->base.ops = &pg_feed_ops;
	snprintf(f->s.path, sizeof(f->s.path), "%s", conf->path);
	rc = pgconn__connect(conf->conninfo, f->s.path, &f->s.conn, err, errlen);
	if(rc == MQC_OK && (rc = session(&f->s)) != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", f->s.path, f->s.errmsg);
	}
	if(rc == MQC_OK && (rc = exec(&f->s, "SET default_transaction_read_only = on")) != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", f->s.path, f->s.errmsg);
	}
	if(rc != MQC_OK){
		feed_close(&f->base);
		return MQC_ERR_DB;
	}
	*out = &f->base;
	return MQC_OK;
}

static int feed_end(struct archive_feed *base, int64_t *seq)
{
	struct feed_pg *f = (struct feed_pg *)base;
	int rc = connected(&f->s);

	if(rc == MQC_OK) rc = query_int(&f->s, "SELECT COALESCE(max(seq), 0) FROM messages", 0, NULL, 0, seq);
	return rc == MQC_OK ? MQC_OK : MQC_ERR_DB;
}

static int feed_each(struct archive_feed *base, int64_t after, int max,
		int (*cb)(const struct archive_feed_row *row, void *arg), void *arg)
{
	struct feed_pg *f = (struct feed_pg *)base;
	char a[I64_LEN], m[I64_LEN];
	const char *args[2] = {i64(a, after), i64(m, max)};
	struct archive_feed_row row;
	PGresult *r;
	int i, crc = MQC_OK;

	if(connected(&f->s) != MQC_OK) return MQC_ERR_DB;
	if(query(&f->s, "SELECT seq, sender, recipient, room, type, id, server_ts, deleted IS NOT NULL"
				" FROM messages WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint", 2, args, &r) != MQC_OK){
		return MQC_ERR_DB;
	}
	for(i = 0; crc == MQC_OK && i < PQntuples(r); i++){
		row.seq = col64(r, i, 0);
		row.sender = coltext(r, i, 1);
		row.recipient = coltext(r, i, 2);
		row.room = coltext(r, i, 3);
		row.type = coltext(r, i, 4);
		row.id = coltext(r, i, 5);
		row.server_ts = col64(r, i, 6);
		row.deleted = strcmp(PQgetvalue(r, i, 7), "t") == 0;
		crc = cb(&row, arg);
	}
	PQclear(r);
	return crc;
}

static int feed_body(struct archive_feed *base, int64_t seq,
		int (*cb)(const char *body, void *arg), void *arg)
{
	struct feed_pg *f = (struct feed_pg *)base;
	char v[I64_LEN];
	const char *args[1] = {i64(v, seq)};
	PGresult *r;
	int crc;

	if(query(&f->s, "SELECT body FROM messages WHERE seq = $1::bigint", 1, args, &r) != MQC_OK){
		return MQC_ERR_DB;
	}
	crc = cb(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : NULL, arg);
	PQclear(r);
	return crc;
}

static const char *feed_errmsg(struct archive_feed *base)
{
	struct feed_pg *f = (struct feed_pg *)base;

	return f->s.errmsg[0] ? f->s.errmsg : PQerrorMessage(f->s.conn);
}

static const struct archive_feed_ops pg_feed_ops = {
	.close = feed_close,
	.end = feed_end,
	.each = feed_each,
	.body = feed_body,
	.errmsg = feed_errmsg,
};

/* /health: whether a writer could take archive.seq's row within busy_ms,
 * on a connection of its own; nothing changed (rolled back). A read-only
 * server (a standby) refuses FOR UPDATE and says so. */
const char *archive_pg__writable(const struct store_conf *conf, int busy_ms, char *why, size_t whylen)
{
	struct archive_pg s;
	char sql[200];
	int rc;

	memset(&s, 0, sizeof(s));
	snprintf(s.path, sizeof(s.path), "%s", conf->path);
	rc = pgconn__connect(conf->conninfo, s.path, &s.conn, why, whylen);
	if(rc == MQC_OK){
		snprintf(sql, sizeof(sql), "SET lock_timeout = %d; BEGIN;"
				" SELECT next FROM archive.seq FOR UPDATE", busy_ms > 0 ? busy_ms : 1);
		rc = exec(&s, sql);
		if(rc != MQC_OK) mqc_seterr(why, whylen, "%s: %s", s.path, s.errmsg);
		(void)exec(&s, "ROLLBACK");
	}
	if(s.conn) PQfinish(s.conn);
	return rc == MQC_OK ? NULL : why;
}
