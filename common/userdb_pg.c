/* userdb_pg.c - the user store on PostgreSQL, schema `auth` (see userdb.h
 * for what each call means, docs/SCALING.md "The stores on PostgreSQL" for
 * why it is shaped so). Built into its own module, mqchat_store_pg.so,
 * which userdb.c loads with dlopen only when DATA/store.conf says
 * `store postgresql` (common/store_conf.h): a single node needs no libpq.
 *
 * The same rules as the SQLite backend, statement for statement, with
 * three differences that come from several programs on several machines
 * sharing one store:
 * - Writers are serialized by an advisory lock taken in begin_write (as
 *   SQLite's BEGIN IMMEDIATE serializes them on one file), so the
 *   look-then-write steps (a name is free, then it is taken) hold.
 * - Every write the broker must apply adds a row to auth.changes and sends
 *   pg_notify('mqchat_auth', 'ID KIND NAME') in the same transaction; the
 *   largest id is the version (what PRAGMA data_version is for SQLite).
 * - The schema is created, and later upgraded, step by step, each step
 *   one transaction under another advisory lock, the version read again
 *   under it: several nodes may start at once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "devtoken.h"
#include "envelope.h"
#include "err.h"
#include "pgconn.h"
#include "settings.h"
#include "sqlutil.h"
#include "store_conf.h"
#include "timeutil.h"
#include "userdb.h"
#include "userdb_store.h"

static const struct userdb_ops userdb_pg__ops;

/* Advisory lock keys (two bigints, the same in every release): the
 * schema's creation and upgrades, and the store's writers. */
#define LOCK_SCHEMA "7165012657120360"
#define LOCK_WRITE "7165012657120361"

/* The channel the loaders LISTEN on. */
#define CHANNEL "mqchat_auth"

struct userdb_pg {
	struct userdb udb;
	PGconn *conn;
	bool wrote;            /* the open transaction changed something */
	bool readonly;         /* opened USERDB_READONLY */
	int busy_ms;           /* lock_timeout */
	char errmsg[512];      /* the last failure, for userdb__errmsg */
	/* The watch (userdb__watch_fd): a connection that only LISTENs. */
	char *conninfo;
	PGconn *listen;
	int64_t listen_retry_at;   /* time__mono_ms before which no new try */
	int listen_backoff_ms;
	int64_t change_id;         /* the open transaction's last change row; 0 none */
};

static struct userdb_pg *pg_of(struct userdb *udb)
{
	return (struct userdb_pg *)udb;
}

/* ---- statements ----
 * Every parameter goes as text (PostgreSQL casts it to the column's type);
 * integers are formatted by the caller into an I64 buffer. */

#define I64_LEN 24
static const char *i64(char *buf, int64_t v)
{
	snprintf(buf, I64_LEN, "%lld", (long long)v);
	return buf;
}

/* The MQC_ERR_* of a result (pgconn.h says which), its message kept for
 * userdb__errmsg. */
static int status_of(struct userdb_pg *s, PGresult *res)
{
	return pgconn__status(s->conn, res, s->errmsg, sizeof(s->errmsg));
}

/* Run sql with n text parameters; *res (if res is not NULL) gets the
 * result to read and PQclear, else it is cleared here. */
static int query(struct userdb *udb, const char *sql, int n, const char *const *args, PGresult **res)
{
	struct userdb_pg *s = pg_of(udb);
	PGresult *r = PQexecParams(s->conn, sql, n, NULL, args, NULL, NULL, 0);
	int rc = status_of(s, r);

	return pgconn__result(r, rc, res);
}

/* Statements without parameters, several at once (the schema). */
static int exec(struct userdb *udb, const char *sql)
{
	struct userdb_pg *s = pg_of(udb);

	return pgconn__exec(s->conn, sql, s->errmsg, sizeof(s->errmsg));
}

/* A write: run it, note that the transaction changed something, and give
 * the rows it changed in *changes. */
static int run(struct userdb *udb, const char *sql, int *changes, int n, const char *const *args)
{
	PGresult *r;
	int rc = query(udb, sql, n, args, &r);

	if(rc != MQC_OK) return rc;
	if(changes) *changes = atoi(PQcmdTuples(r));
	pg_of(udb)->wrote = true;
	PQclear(r);
	return MQC_OK;
}

/* A one-row UPDATE/DELETE by key: MQC_ERR_NOTFOUND if no row changed. */
static int run_one(struct userdb *udb, const char *sql, int n, const char *const *args)
{
	int changes = 0, rc = run(udb, sql, &changes, n, args);

	if(rc) return rc;
	return changes > 0 ? MQC_OK : MQC_ERR_NOTFOUND;
}

static bool exists(struct userdb *udb, const char *sql, const char *a, const char *b)
{
	const char *args[2] = {a, b};
	PGresult *r;
	bool found;

	if(query(udb, sql, b ? 2 : 1, args, &r) != MQC_OK) return false;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

/* Look up one row: MQC_OK with *res to read and clear, MQC_ERR_NOTFOUND,
 * or an MQC_ERR_*. */
static int row(struct userdb *udb, const char *sql, int n, const char *const *args, PGresult **res)
{
	int rc = query(udb, sql, n, args, res);

	if(rc != MQC_OK) return rc;
	if(PQntuples(*res) > 0) return MQC_OK;
	PQclear(*res);
	*res = NULL;
	return MQC_ERR_NOTFOUND;
}

static int64_t col64(PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? 0 : strtoll(PQgetvalue(r, i, col), NULL, 10);
}

static const char *coltext(PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? NULL : PQgetvalue(r, i, col);
}

static void column_copy(PGresult *r, int i, int col, char *out, size_t outlen)
{
	const char *v = coltext(r, i, col);

	snprintf(out, outlen, "%s", v ? v : "");
}

static int get_int64(struct userdb *udb, const char *sql, const char *arg, int64_t *out)
{
	PGresult *r;
	int rc = row(udb, sql, 1, &arg, &r);

	if(rc != MQC_OK) return rc;
	*out = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

/* Record a change the broker must apply: a row in auth.changes and its
 * notification, both part of the open transaction (sent, and seen, only
 * if it commits). The payload is "ID KIND NAME", NAME one name or two
 * joined by '/' (no name holds one):
 *   user NAME, enable NAME, disable NAME, password NAME, delete NAME,
 *   room ROOM, join ROOM/USER, leave ROOM/USER, block USER/BLOCKED,
 *   unblock USER/BLOCKED, device USER/DEVICE (a new one),
 *   revoke USER/DEVICE (deleted, or its token replaced), privacy USER,
 *   contact USER/CONTACT, setting KEY.
 * Those that cut someone off (disable, delete, revoke, block, leave) are
 * what the loaders act on at once (docs/SCALING.md, "Revocation within
 * 1 s"); b NULL for a one-name change. */
static int changed(struct userdb *udb, const char *kind, const char *a, const char *b)
{
	char now[I64_LEN], name[160];
	const char *args[3] = {i64(now, time__now_ms()), kind, name};

	snprintf(name, sizeof(name), "%s%s%s", a ? a : "", b ? "/" : "", b ? b : "");

	PGresult *r;
	int rc;

	rc = query(udb, "WITH c AS (INSERT INTO changes(at, kind, name) VALUES($1, $2, $3) RETURNING id)"
			" SELECT c.id, pg_notify('" CHANNEL "', c.id || ' ' || $2 || ' ' || $3) FROM c", 3, args, &r);
	if(rc != MQC_OK) return rc;
	pg_of(udb)->wrote = true;
	pg_of(udb)->change_id = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

/* ---- transactions ---- */

static void pg_close(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);

	if(s->conn) PQfinish(s->conn);
	if(s->listen) PQfinish(s->listen);
	free(s->conninfo);
	free(s);
}

/* The connection's settings (pgconn__session's), and for a reader, no
 * writes (the server refuses them). */
static int session(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);

	return pgconn__session(s->conn, "auth", s->busy_ms, s->readonly
			? "; SET default_transaction_read_only = on" : "; SET default_transaction_read_only = off",
			s->errmsg, sizeof(s->errmsg));
}

/* A connection that broke (the server restarted, a failover) is made
 * again before the next transaction: the store is shared and outlives
 * this program's connection. */
static int reconnect(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);
	int rc = pgconn__reset(s->conn, s->errmsg, sizeof(s->errmsg));

	return rc == MQC_OK ? session(udb) : rc;
}

static int connected(struct userdb *udb)
{
	return PQstatus(pg_of(udb)->conn) == CONNECTION_OK ? MQC_OK : reconnect(udb);
}

/* Whether to run what failed once more, on a new connection: it failed
 * for the connection (libpq may not have marked it bad: an error without
 * SQLSTATE), and no transaction was open, so nothing was done yet. */
static bool again(struct userdb *udb, int rc, bool was_idle)
{
	return rc == MQC_ERR_IO && was_idle && reconnect(udb) == MQC_OK;
}

/* 0 is "do not wait" as for SQLite, not PostgreSQL's "wait forever". */
static void pg_set_busy_ms(struct userdb *udb, int ms)
{
	pg_of(udb)->busy_ms = ms;
	(void)session(udb);
}

/* Start a transaction. libpq sees a connection broken only when it uses
 * it, so a BEGIN that finds it so reconnects and begins again: nothing
 * was done yet. */
static int begin(struct userdb *udb, const char *sql)
{
	bool idle = PQtransactionStatus(pg_of(udb)->conn) != PQTRANS_INTRANS;
	int rc = connected(udb);

	pg_of(udb)->wrote = false;
	if(rc == MQC_OK) rc = exec(udb, sql);
	if(again(udb, rc, idle)) rc = exec(udb, sql);
	return rc;
}

/* A snapshot for the whole transaction, as an SQLite read transaction. */
static int pg_begin_read(struct userdb *udb)
{
	return begin(udb, "BEGIN ISOLATION LEVEL REPEATABLE READ");
}

static int pg_begin_write(struct userdb *udb)
{
	int rc = begin(udb, "BEGIN");

	if(rc == MQC_OK) rc = exec(udb, "SELECT pg_advisory_xact_lock(" LOCK_WRITE ")");
	if(rc != MQC_OK) userdb__rollback(udb);
	return rc;
}

/* COMMIT of a transaction a statement failed in "succeeds" as a
 * ROLLBACK: that is a failure to the caller, who asked for a commit. */
static int pg_commit(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);
	PGresult *r = PQexec(s->conn, "COMMIT");
	int rc = status_of(s, r);

	if(rc == MQC_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0){
		snprintf(s->errmsg, sizeof(s->errmsg), "the transaction failed and was rolled back");
		rc = MQC_ERR_DB;
	}
	PQclear(r);
	if(rc == MQC_OK && s->wrote) udb->committed_ns = time__mono_ns();
	if(rc == MQC_OK && s->change_id != 0) udb->committed_change = s->change_id;
	s->wrote = false;
	s->change_id = 0;
	return rc;
}

static void pg_rollback(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);

	if(PQtransactionStatus(s->conn) != PQTRANS_IDLE) (void)exec(udb, "ROLLBACK");
	s->wrote = false;
	s->change_id = 0;
}

/* A write called outside a transaction (SQLite's autocommit) gets one of
 * its own, so its change row commits with it: own() opens it if none is
 * open, done() commits it if own() opened it, or rolls it back on rc. */
static int own(struct userdb *udb, bool *mine)
{
	*mine = PQtransactionStatus(pg_of(udb)->conn) == PQTRANS_IDLE;
	return *mine ? userdb__begin_write(udb) : MQC_OK;
}

static int done(struct userdb *udb, bool mine, int rc)
{
	if(!mine) return rc;
	if(rc == MQC_OK) return userdb__commit(udb);
	userdb__rollback(udb);
	return rc;
}

static const char *pg_errmsg(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);

	return s->errmsg[0] ? s->errmsg : PQerrorMessage(s->conn);
}

/* The version: the last change's id. Asked again once on a connection
 * found broken (the loaders ask it after a reconnection). */
/* The one integer of sql (no arguments), asked again once on a new
 * connection if the old one was lost between transactions. */
static int ask_int64(struct userdb *udb, const char *sql, int64_t *out)
{
	bool idle = PQtransactionStatus(pg_of(udb)->conn) == PQTRANS_IDLE;
	PGresult *r;
	int rc = connected(udb);

	if(rc == MQC_OK) rc = query(udb, sql, 0, NULL, &r);
	if(again(udb, rc, idle)) rc = query(udb, sql, 0, NULL, &r);
	if(rc != MQC_OK) return rc;
	*out = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

static int pg_data_version(struct userdb *udb, int64_t *version)
{
	return ask_int64(udb, "SELECT coalesce(max(id), 0) FROM changes", version);
}

/* ---- the watch: LISTEN on a connection of its own ----
 * Its own, because the other one runs transactions: a notification is
 * read only between them, and a broken LISTEN connection must not cost a
 * transaction. PostgreSQL keeps nothing for a session that is not
 * listening, so the caller compares the version after each new one. */

#define LISTEN_RETRY_FIRST_MS 100
#define LISTEN_RETRY_MAX_MS 5000

static void listen_drop(struct userdb_pg *s)
{
	if(s->listen) PQfinish(s->listen);
	s->listen = NULL;
	if(s->listen_backoff_ms < LISTEN_RETRY_FIRST_MS) s->listen_backoff_ms = LISTEN_RETRY_FIRST_MS;
	s->listen_retry_at = time__mono_ms() + s->listen_backoff_ms;
	s->listen_backoff_ms = s->listen_backoff_ms * 2 > LISTEN_RETRY_MAX_MS
		? LISTEN_RETRY_MAX_MS : s->listen_backoff_ms * 2;
}

static int pg_watch_fd(struct userdb *udb)
{
	struct userdb_pg *s = pg_of(udb);
	PGresult *r;
	bool ok;

	if(s->listen != NULL) return PQsocket(s->listen);
	if(s->conninfo == NULL || time__mono_ms() < s->listen_retry_at) return -1;
	s->listen = PQconnectdb(s->conninfo);
	if(s->listen == NULL || PQstatus(s->listen) != CONNECTION_OK){
		listen_drop(s);
		return -1;
	}
	pgconn__quiet(s->listen);
	r = PQexec(s->listen, "LISTEN " CHANNEL);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	/* Non-blocking: a drain reads what is there and never waits. */
	if(!ok || PQsetnonblocking(s->listen, 1) != 0){
		listen_drop(s);
		return -1;
	}
	s->listen_backoff_ms = LISTEN_RETRY_FIRST_MS;
	return PQsocket(s->listen);
}

static int pg_watch_drain(struct userdb *udb, userdb_told_fn *told, void *arg)
{
	struct userdb_pg *s = pg_of(udb);
	PGnotify *n;
	long long id;
	char kind[16];
	int at;

	if(s->listen == NULL) return MQC_ERR_IO;
	/* The server gone: end of file, and libpq marks the connection bad. */
	if(!PQconsumeInput(s->listen) || PQstatus(s->listen) != CONNECTION_OK){
		listen_drop(s);
		return MQC_ERR_IO;
	}
	/* Payloads 'ID KIND NAME' (changed()); one of another form (not ours
	 * to write) is passed over: the version still says whether to rebuild. */
	while((n = PQnotifies(s->listen)) != NULL){
		if(told != NULL && sscanf(n->extra, "%lld %15s %n", &id, kind, &at) == 2 && n->extra[at] != '\0'){
			told((int64_t)id, kind, n->extra + at, arg);
		}
		PQfreemem(n);
	}
	return MQC_OK;
}

/* ---- in force on every node ----
 * Times are the server's clock (milliseconds since 1970), so the nodes'
 * clocks need not agree. A node not heard from for NODE_ALIVE_MS (its
 * loader refreshes every second) is not waited for: stopped, or cut off
 * from the store, it cannot apply anything. */

#define NODE_ALIVE_MS "3000"
#define SERVER_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define I64_MAX_TEXT "9223372036854775807"

static int pg_node_applied(struct userdb *udb, const char *node, int64_t version)
{
	char v[I64_LEN];
	const char *args[2] = {node, i64(v, version)};
	bool idle = PQtransactionStatus(pg_of(udb)->conn) == PQTRANS_IDLE;
	const char *sql = "INSERT INTO node_applied(node, change_id, at) VALUES($1, $2, " SERVER_MS ")"
		" ON CONFLICT(node) DO UPDATE SET change_id = excluded.change_id, at = excluded.at";
	PGresult *r;
	int rc = connected(udb);

	if(rc == MQC_OK) rc = query(udb, sql, 2, args, &r);
	if(again(udb, rc, idle)) rc = query(udb, sql, 2, args, &r);
	if(rc == MQC_OK) PQclear(r);
	return rc;
}

static int pg_in_force_version(struct userdb *udb, int64_t *version)
{
	return ask_int64(udb, "SELECT coalesce(min(change_id), " I64_MAX_TEXT ") FROM node_applied"
			" WHERE at > " SERVER_MS " - " NODE_ALIVE_MS, version);
}

/* ---- schema ---- */

/* Text compared and ordered bytewise, as SQLite's BINARY: the same order
 * of names whatever the database's locale. */
#define T "text COLLATE \"C\""

/* Version 3, the SQLite schema's tables (common/userdb_schema.sql says what
 * each holds), and the two of PostgreSQL only. `user` is quoted: a
 * reserved word. */
static const char schema_v3[] =
	"CREATE SCHEMA IF NOT EXISTS auth;"
	"CREATE TABLE auth.meta(key " T " PRIMARY KEY, value " T " NOT NULL);"
	"CREATE TABLE auth.users(name " T " PRIMARY KEY,"
	" kind " T " NOT NULL CHECK(kind IN ('user','device','service')),"
	" nick " T " NOT NULL, pwhash " T " NOT NULL, enabled boolean NOT NULL DEFAULT true,"
	" created bigint NOT NULL);"
	"CREATE TABLE auth.rooms(name " T " PRIMARY KEY, retention_days integer NOT NULL DEFAULT 0,"
	" created bigint NOT NULL);"
	"CREATE TABLE auth.members(room " T " NOT NULL REFERENCES auth.rooms(name) ON DELETE CASCADE,"
	" \"user\" " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" PRIMARY KEY(room, \"user\"));"
	"CREATE INDEX members_by_user ON auth.members(\"user\", room);"
	"CREATE TABLE auth.blocks(\"user\" " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" blocked " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" PRIMARY KEY(\"user\", blocked));"
	"CREATE INDEX blocks_by_blocked ON auth.blocks(blocked);"
	"CREATE TABLE auth.invites(code " T " PRIMARY KEY, uses_left integer NOT NULL,"
	" expires bigint NOT NULL DEFAULT 0, created bigint NOT NULL);"
	"CREATE TABLE auth.retired(name " T " PRIMARY KEY, created bigint NOT NULL,"
	" deleted bigint NOT NULL);"
	"CREATE TABLE auth.devices(\"user\" " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" device " T " NOT NULL, token_sha256 " T " NOT NULL, created bigint NOT NULL,"
	" last_seen bigint NOT NULL DEFAULT 0, PRIMARY KEY(\"user\", device));"
	"CREATE TABLE auth.privacy(\"user\" " T " PRIMARY KEY REFERENCES auth.users(name) ON DELETE CASCADE,"
	" presence " T " NOT NULL DEFAULT 'contacts' CHECK(presence IN ('everyone','contacts','nobody')),"
	" room_adds " T " NOT NULL DEFAULT 'contacts' CHECK(room_adds IN ('everyone','contacts','nobody')));"
	"CREATE TABLE auth.contacts(\"user\" " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" contact " T " NOT NULL REFERENCES auth.users(name) ON DELETE CASCADE,"
	" since bigint NOT NULL, PRIMARY KEY(\"user\", contact));"
	"CREATE INDEX contacts_by_contact ON auth.contacts(contact, \"user\");"
	"CREATE TABLE auth.settings(key " T " PRIMARY KEY, value " T " NOT NULL);"
	"CREATE TABLE auth.room_meta(room " T " PRIMARY KEY REFERENCES auth.rooms(name) ON DELETE CASCADE,"
	" owner " T ", title " T " NOT NULL DEFAULT '', description " T " NOT NULL DEFAULT '');"
	"CREATE TABLE auth.room_admins(room " T " NOT NULL REFERENCES auth.rooms(name) ON DELETE CASCADE,"
	" \"user\" " T " NOT NULL, since bigint NOT NULL, PRIMARY KEY(room, \"user\"));"
	"CREATE TABLE auth.room_joined(room " T " NOT NULL, \"user\" " T " NOT NULL,"
	" since bigint NOT NULL, PRIMARY KEY(room, \"user\"),"
	" FOREIGN KEY(room, \"user\") REFERENCES auth.members(room, \"user\") ON DELETE CASCADE);"
	"CREATE TABLE auth.rooms_retired(name " T " PRIMARY KEY, deleted bigint NOT NULL);"
	/* One row per change the broker must apply; the largest id is the
	 * version a loader compares (docs/SCALING.md, "How the plugin learns
	 * of changes"). */
	"CREATE TABLE auth.changes(id bigserial PRIMARY KEY, at bigint NOT NULL,"
	" kind " T " NOT NULL, name " T " NOT NULL);"
	/* Which change each node's broker has in force (written by the loaders). */
	"CREATE TABLE auth.node_applied(node " T " PRIMARY KEY, change_id bigint NOT NULL,"
	" at bigint NOT NULL);"
	"INSERT INTO auth.meta(key, value) VALUES('schema_version', '3');";

/* The steps from each version to the next, in order: steps[v] turns a
 * store of version v (0: no schema) into one of version to. A step that
 * changes meaning rather than adds must say so (docs/SCALING.md,
 * "Upgrades"). */
static const struct pgconn_step steps[] = {
	{0, USERDB_SCHEMA_VERSION, schema_v3},
};

/* Every table must be there, with the columns this build reads. */
#define V3_TABLES \
	"SELECT name, kind, nick, pwhash, enabled, created FROM users LIMIT 0;" \
	"SELECT name, retention_days, created FROM rooms LIMIT 0;" \
	"SELECT room, \"user\" FROM members LIMIT 0;" \
	"SELECT \"user\", blocked FROM blocks LIMIT 0;" \
	"SELECT code, uses_left, expires, created FROM invites LIMIT 0;" \
	"SELECT name, created, deleted FROM retired LIMIT 0;" \
	"SELECT \"user\", device, token_sha256, created, last_seen FROM devices LIMIT 0;" \
	"SELECT \"user\", presence, room_adds FROM privacy LIMIT 0;" \
	"SELECT \"user\", contact, since FROM contacts LIMIT 0;" \
	"SELECT key, value FROM settings LIMIT 0;" \
	"SELECT room, owner, title, description FROM room_meta LIMIT 0;" \
	"SELECT room, \"user\", since FROM room_admins LIMIT 0;" \
	"SELECT room, \"user\", since FROM room_joined LIMIT 0;" \
	"SELECT name, deleted FROM rooms_retired LIMIT 0;" \
	"SELECT id, at, kind, name FROM changes LIMIT 0;" \
	"SELECT node, change_id, at FROM node_applied LIMIT 0;"

static const struct pgconn_schema schema = {
	.name = "auth",
	.lock = LOCK_SCHEMA,
	.version = USERDB_SCHEMA_VERSION,
	.steps = steps,
	.nsteps = sizeof(steps) / sizeof(steps[0]),
	.tables = V3_TABLES,
	.what = "user store",
	.label = "schema",
	.missing = "no user store (schema auth) in this database"
			" (create it with `mqchat-archiver --data DIR init`)",
};

int userdb_pg__open(const struct store_conf *conf, int flags, struct userdb **out,
		char *err, size_t errlen)
{
	struct userdb_pg *s;
	struct userdb *udb;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if(s == NULL) return MQC_ERR_NOMEM;
	udb = &s->udb;
	udb->ops = &userdb_pg__ops;
	/* Named by the setting file, never by the connection string (it may
	 * hold a password). */
	snprintf(udb->path, sizeof(udb->path), "%s", conf->path);
	rc = pgconn__connect(conf->conninfo, udb->path, &s->conn, err, errlen);
	if(rc != MQC_OK){
		userdb__close(udb);
		return rc;
	}
	s->readonly = (flags & USERDB_READONLY) != 0;
	s->busy_ms = USERDB_BUSY_TIMEOUT_MS;
	s->conninfo = strdup(conf->conninfo);
	if(s->conninfo == NULL){
		userdb__close(udb);
		return MQC_ERR_NOMEM;
	}
	rc = session(udb);
	if(rc == MQC_OK){
		rc = pgconn__check_schema(s->conn, &schema, (flags & USERDB_CREATE) && !(flags & USERDB_READONLY),
				udb->path, &udb->version, s->errmsg, sizeof(s->errmsg), err, errlen);
	}else{
		mqc_seterr(err, errlen, "%s: %s", udb->path, pg_errmsg(udb));
	}
	if(rc != MQC_OK){
		userdb__close(udb);
		return rc;
	}
	s->errmsg[0] = '\0';
	*out = udb;
	return MQC_OK;
}

/* ---- users ---- */

static bool user_exists(struct userdb *udb, const char *name)
{
	return exists(udb, "SELECT 1 FROM users WHERE name=$1", name, NULL);
}

static bool room_exists(struct userdb *udb, const char *room)
{
	return exists(udb, "SELECT 1 FROM rooms WHERE name=$1", room, NULL);
}

static int pg_retired_get(struct userdb *udb, const char *name, int64_t *created, int64_t *deleted)
{
	PGresult *r;
	int rc = row(udb, "SELECT created, deleted FROM retired WHERE name=$1", 1, &name, &r);

	if(rc != MQC_OK) return rc;
	*created = col64(r, 0, 0);
	*deleted = col64(r, 0, 1);
	PQclear(r);
	return MQC_OK;
}

static int pg_retired_each(struct userdb *udb,
		int (*cb)(const char *name, int64_t created, int64_t deleted, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT name, created, deleted FROM retired ORDER BY name", 0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), col64(r, i, 1), col64(r, i, 2), arg);
	PQclear(r);
	return crc;
}

static int insert_user(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash, int64_t created)
{
	char c[I64_LEN];
	const char *args[5] = {name, user_kind__name(kind), nick, pwhash, i64(c, created)};
	int rc;

	rc = run(udb, "INSERT INTO users(name, kind, nick, pwhash, enabled, created)"
			" VALUES($1, $2, $3, $4, true, $5)", NULL, 5, args);
	if(rc == MQC_OK) rc = run(udb, "DELETE FROM retired WHERE name=$1", NULL, 1, &name);
	if(rc == MQC_OK) rc = changed(udb, "user", name, NULL);
	return rc;
}

static int pg_user_add(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	bool mine;
	int rc;

	rc = own(udb, &mine);
	if(rc) return rc;
	rc = userdb__name_free(udb, name);
	if(rc == MQC_OK) rc = insert_user(udb, name, kind, nick, pwhash, time__now_ms());
	return done(udb, mine, rc);
}

static int pg_user_restore(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	int64_t created;
	bool mine;
	int rc;

	rc = own(udb, &mine);
	if(rc) return rc;
	rc = get_int64(udb, "SELECT created FROM users WHERE name=$1", name, &created);
	if(rc != MQC_ERR_NOTFOUND) rc = rc == MQC_OK ? MQC_ERR_EXISTS : rc;
	else rc = get_int64(udb, "SELECT created FROM retired WHERE name=$1", name, &created);
	if(rc == MQC_OK) rc = insert_user(udb, name, kind, nick, pwhash, created);
	return done(udb, mine, rc);
}

#define USER_COLS "name, kind, nick, pwhash, enabled, created"

static void row_to_user(PGresult *r, int i, struct userdb_user *u)
{
	memset(u, 0, sizeof(*u));
	column_copy(r, i, 0, u->name, sizeof(u->name));
	u->kind = user_kind__parse(coltext(r, i, 1));
	column_copy(r, i, 2, u->nick, sizeof(u->nick));
	column_copy(r, i, 3, u->pwhash, sizeof(u->pwhash));
	u->enabled = !strcmp(PQgetvalue(r, i, 4), "t");
	u->created = col64(r, i, 5);
}

static int pg_user_get(struct userdb *udb, const char *name, struct userdb_user *out)
{
	PGresult *r;
	int rc;

	rc = row(udb, "SELECT " USER_COLS " FROM users WHERE name=$1", 1, &name, &r);
	if(rc != MQC_OK) return rc;
	row_to_user(r, 0, out);
	PQclear(r);
	return MQC_OK;
}

/* A one-row change of an account and its change row, in one transaction. */
static int user_change(struct userdb *udb, const char *sql, int n, const char *const *args,
		const char *kind, const char *a, const char *b)
{
	bool mine;
	int rc = own(udb, &mine);

	if(rc) return rc;
	rc = run_one(udb, sql, n, args);
	if(rc == MQC_OK) rc = changed(udb, kind, a, b);
	return done(udb, mine, rc);
}

static int pg_user_set_enabled(struct userdb *udb, const char *name, bool enabled)
{
	const char *args[2] = {enabled ? "true" : "false", name};

	return user_change(udb, "UPDATE users SET enabled=$1 WHERE name=$2", 2, args,
			enabled ? "enable" : "disable", name, NULL);
}

static int pg_user_set_pwhash(struct userdb *udb, const char *name, const char *pwhash)
{
	const char *args[2] = {pwhash, name};

	if(pwhash__is_secret(pwhash)){
		return user_change(udb, "UPDATE users SET pwhash=$1 WHERE name=$2 AND kind='service'",
				2, args, "password", name, NULL);
	}
	return user_change(udb, "UPDATE users SET pwhash=$1 WHERE name=$2", 2, args, "password", name,
			NULL);
}

static int pg_user_set_nick(struct userdb *udb, const char *name, const char *nick)
{
	const char *args[2] = {nick, name};

	return user_change(udb, "UPDATE users SET nick=$1 WHERE name=$2", 2, args, "user", name, NULL);
}

static int pg_user_del(struct userdb *udb, const char *name)
{
	char now[I64_LEN];
	const char *args[2] = {i64(now, time__now_ms()), name};
	bool mine;
	int rc = own(udb, &mine);

	if(rc) return rc;
	/* Retired first, with the account's created (userdb_sqlite.c says why). */
	rc = run(udb, "INSERT INTO retired(name, created, deleted) SELECT name, created, $1 FROM users"
			" WHERE name=$2 ON CONFLICT(name) DO UPDATE SET created=EXCLUDED.created,"
			" deleted=EXCLUDED.deleted", NULL, 2, args);
	if(rc == MQC_OK) rc = run(udb, "UPDATE room_meta SET owner=NULL WHERE owner=$1", NULL, 1, &name);
	if(rc == MQC_OK) rc = run(udb, "DELETE FROM room_admins WHERE \"user\"=$1", NULL, 1, &name);
	if(rc == MQC_OK) rc = run_one(udb, "DELETE FROM users WHERE name=$1", 1, &name);
	if(rc == MQC_OK) rc = changed(udb, "delete", name, NULL);
	return done(udb, mine, rc);
}

static int pg_user_each(struct userdb *udb,
		int (*cb)(const struct userdb_user *user, void *arg), void *arg)
{
	struct userdb_user u;
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT " USER_COLS " FROM users ORDER BY name", 0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++){
		row_to_user(r, i, &u);
		crc = cb(&u, arg);
	}
	PQclear(r);
	return crc;
}

/* ---- rooms ---- */

static int pg_room_retired_get(struct userdb *udb, const char *room, int64_t *deleted)
{
	return get_int64(udb, "SELECT deleted FROM rooms_retired WHERE name=$1", room, deleted);
}

static int pg_room_create(struct userdb *udb, const char *room, int retention_days)
{
	char days[I64_LEN], now[I64_LEN];
	const char *args[3] = {room, i64(days, retention_days > 0 ? retention_days : 0),
		i64(now, time__now_ms())};
	bool mine;
	int rc;

	rc = own(udb, &mine);
	if(rc) return rc;
	rc = userdb__room_name_free(udb, room);
	if(rc == MQC_OK) rc = run(udb, "INSERT INTO rooms(name, retention_days, created) VALUES($1, $2, $3)",
			NULL, 3, args);
	if(rc == MQC_OK) rc = run(udb, "DELETE FROM rooms_retired WHERE name=$1", NULL, 1, &room);
	if(rc == MQC_OK) rc = changed(udb, "room", room, NULL);
	return done(udb, mine, rc);
}

static int pg_room_del(struct userdb *udb, const char *room)
{
	char now[I64_LEN];
	const char *args[2] = {room, i64(now, time__now_ms())};
	bool mine;
	int rc;

	if(!room_exists(udb, room)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO rooms_retired(name, deleted) VALUES($1, $2)"
			" ON CONFLICT(name) DO UPDATE SET deleted=EXCLUDED.deleted", NULL, 2, args);
	if(rc == MQC_OK) rc = run_one(udb, "DELETE FROM rooms WHERE name=$1", 1, &room);
	if(rc == MQC_OK) rc = changed(udb, "room", room, NULL);
	return done(udb, mine, rc);
}

static int pg_room_get(struct userdb *udb, const char *room, int *retention_days, int64_t *created)
{
	PGresult *r;
	int rc = row(udb, "SELECT retention_days, created FROM rooms WHERE name=$1", 1, &room, &r);

	if(rc != MQC_OK) return rc;
	if(retention_days) *retention_days = (int)col64(r, 0, 0);
	if(created) *created = col64(r, 0, 1);
	PQclear(r);
	return MQC_OK;
}

static int pg_member_add(struct userdb *udb, const char *room, const char *user)
{
	char now[I64_LEN];
	const char *args[3] = {room, user, i64(now, time__now_ms())};
	bool mine;
	int rc;

	if(!room_exists(udb, room) || !user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	/* Looked up, not left to the key: a failed statement would end the
	 * caller's whole transaction here, where SQLite lets it go on. */
	if(userdb__is_member(udb, room, user)) return MQC_ERR_EXISTS;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO members(room, \"user\") VALUES($1, $2)", NULL, 2, args);
	if(rc == MQC_OK) rc = run(udb, "INSERT INTO room_joined(room, \"user\", since) VALUES($1, $2, $3)"
			" ON CONFLICT(room, \"user\") DO UPDATE SET since=EXCLUDED.since", NULL, 3, args);
	if(rc == MQC_OK) rc = changed(udb, "join", room, user);
	return done(udb, mine, rc);
}

static int pg_member_remove(struct userdb *udb, const char *room, const char *user)
{
	const char *args[2] = {room, user};

	return user_change(udb, "DELETE FROM members WHERE room=$1 AND \"user\"=$2", 2, args, "leave", room,
			user);
}

static bool pg_is_member(struct userdb *udb, const char *room, const char *user)
{
	return exists(udb, "SELECT 1 FROM members WHERE room=$1 AND \"user\"=$2", room, user);
}

static int pg_rooms_of(struct userdb *udb, const char *user,
		int (*cb)(const char *room, int64_t created, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT m.room, r.created FROM members AS m JOIN rooms AS r ON r.name = m.room"
			" WHERE m.\"user\"=$1 ORDER BY m.room", 1, &user, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), col64(r, i, 1), arg);
	PQclear(r);
	return crc;
}

static int pg_room_each(struct userdb *udb,
		int (*cb)(const char *room, int retention_days, int64_t created, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT name, retention_days, created FROM rooms ORDER BY name", 0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++){
		crc = cb(PQgetvalue(r, i, 0), (int)col64(r, i, 1), col64(r, i, 2), arg);
	}
	PQclear(r);
	return crc;
}

/* Walk (a, b) text pairs from a query with two optional filters $1, $2. */
static int pair_each(struct userdb *udb, const char *sql, const char *a, const char *b,
		int (*cb)(const char *, const char *, void *), void *arg)
{
	const char *args[2] = {a, b};
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, sql, 2, args, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), arg);
	PQclear(r);
	return crc;
}

static int pg_member_each(struct userdb *udb, const char *room, const char *user,
		int (*cb)(const char *room, const char *user, void *arg), void *arg)
{
	return pair_each(udb, "SELECT room, \"user\" FROM members WHERE ($1::text IS NULL OR room=$1)"
			" AND ($2::text IS NULL OR \"user\"=$2) ORDER BY room, \"user\"", room, user, cb, arg);
}

/* ---- rooms run by their members ---- */

static int pg_room_meta_get(struct userdb *udb, const char *room, struct userdb_room_meta *out)
{
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = row(udb, "SELECT r.created, m.owner, m.title, m.description FROM rooms AS r"
			" LEFT JOIN room_meta AS m ON m.room = r.name WHERE r.name=$1", 1, &room, &r);
	if(rc != MQC_OK) return rc;
	out->created = col64(r, 0, 0);
	column_copy(r, 0, 1, out->owner, sizeof(out->owner));
	column_copy(r, 0, 2, out->title, sizeof(out->title));
	column_copy(r, 0, 3, out->description, sizeof(out->description));
	PQclear(r);
	return MQC_OK;
}

static int pg_room_meta_set(struct userdb *udb, const char *room, const struct userdb_room_meta *m)
{
	const char *args[4] = {room, m->owner[0] ? m->owner : NULL, m->title, m->description};
	bool mine;
	int rc;

	if(!room_exists(udb, room) || (args[1] && !user_exists(udb, args[1]))) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO room_meta(room, owner, title, description) VALUES($1, $2, $3, $4)"
			" ON CONFLICT(room) DO UPDATE SET owner=EXCLUDED.owner, title=EXCLUDED.title,"
			" description=EXCLUDED.description", NULL, 4, args);
	if(rc == MQC_OK) rc = changed(udb, "room", room, NULL);
	return done(udb, mine, rc);
}

#define ROLE_SQL "CASE WHEN mt.owner = mb.\"user\" THEN 3 WHEN ad.\"user\" IS NOT NULL THEN 2 ELSE 1 END"
#define ROLE_FROM " FROM members AS mb LEFT JOIN room_meta AS mt ON mt.room = mb.room" \
	" LEFT JOIN room_admins AS ad ON ad.room = mb.room AND ad.\"user\" = mb.\"user\""

static int pg_room_role(struct userdb *udb, const char *room, const char *user, enum room_role *out)
{
	const char *args[2] = {room, user};
	PGresult *r;
	int rc;

	*out = ROOM_ROLE_NONE;
	rc = row(udb, "SELECT " ROLE_SQL ROLE_FROM " WHERE mb.room=$1 AND mb.\"user\"=$2", 2, args, &r);
	if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
	if(rc != MQC_OK) return rc;
	*out = (enum room_role)col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

static int pg_room_roles(struct userdb *udb, const char *room,
		int (*cb)(const char *user, enum room_role role, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT mb.\"user\", " ROLE_SQL " AS role" ROLE_FROM
			" WHERE mb.room=$1 ORDER BY role DESC, mb.\"user\"", 1, &room, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), (enum room_role)col64(r, i, 1), arg);
	PQclear(r);
	return crc;
}

static int pg_room_admin_set(struct userdb *udb, const char *room, const char *user, bool admin,
		int64_t now)
{
	char since[I64_LEN];
	const char *args[3] = {room, user, i64(since, now)};
	bool mine;
	int rc;

	if(admin && !userdb__is_member(udb, room, user)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	if(!admin) rc = run(udb, "DELETE FROM room_admins WHERE room=$1 AND \"user\"=$2", NULL, 2, args);
	else rc = run(udb, "INSERT INTO room_admins(room, \"user\", since) VALUES($1, $2, $3)"
			" ON CONFLICT DO NOTHING", NULL, 3, args);
	if(rc == MQC_OK) rc = changed(udb, "room", room, NULL);
	return done(udb, mine, rc);
}

static int count_of(struct userdb *udb, const char *sql, const char *arg, int *n)
{
	int64_t v = 0;
	int rc = get_int64(udb, sql, arg, &v);

	*n = (int)v;
	return rc;
}

static int pg_rooms_owned(struct userdb *udb, const char *owner, int *n)
{
	return count_of(udb, "SELECT count(*) FROM room_meta WHERE owner=$1", owner, n);
}

static int pg_room_size(struct userdb *udb, const char *room, int *n)
{
	return count_of(udb, "SELECT count(*) FROM members WHERE room=$1", room, n);
}

static int pg_room_successor(struct userdb *udb, const char *room, const char *leaving,
		char *out, size_t outlen)
{
	const char *args[2] = {room, leaving};
	PGresult *r;
	int rc;

	rc = row(udb, "SELECT mb.\"user\" FROM members AS mb"
			" LEFT JOIN room_admins AS ad ON ad.room = mb.room AND ad.\"user\" = mb.\"user\""
			" LEFT JOIN room_joined AS j ON j.room = mb.room AND j.\"user\" = mb.\"user\""
			" WHERE mb.room=$1 AND mb.\"user\"<>$2"
			" ORDER BY ad.\"user\" IS NULL, ad.since, COALESCE(j.since, 0), mb.\"user\" LIMIT 1",
			2, args, &r);
	if(rc != MQC_OK) return rc;
	column_copy(r, 0, 0, out, outlen);
	PQclear(r);
	return MQC_OK;
}

/* ---- blocks ---- */

static int pg_block_add(struct userdb *udb, const char *user, const char *blocked)
{
	const char *args[2] = {user, blocked};
	bool mine;
	int rc;

	if(!user_exists(udb, user) || !user_exists(udb, blocked)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO blocks(\"user\", blocked) VALUES($1, $2) ON CONFLICT DO NOTHING",
			NULL, 2, args);
	if(rc == MQC_OK) rc = changed(udb, "block", user, blocked);
	return done(udb, mine, rc);
}

static int pg_block_del(struct userdb *udb, const char *user, const char *blocked)
{
	const char *args[2] = {user, blocked};

	return user_change(udb, "DELETE FROM blocks WHERE \"user\"=$1 AND blocked=$2", 2, args,
			"unblock", user, blocked);
}

static int pg_block_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *blocked, void *arg), void *arg)
{
	return pair_each(udb, "SELECT \"user\", blocked FROM blocks"
			" WHERE ($1::text IS NULL OR \"user\"=$1) AND $2::text IS NULL ORDER BY \"user\", blocked",
			user, NULL, cb, arg);
}

/* ---- devices ---- */

static int pg_device_set(struct userdb *udb, const char *user, const char *device,
		const char *token_sha256, int64_t now)
{
	char created[I64_LEN];
	const char *args[4] = {user, device, token_sha256, i64(created, now)};
	bool mine, replaced;
	int rc;

	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	/* A new token replaces the device's old one: the old is revoked. */
	replaced = exists(udb, "SELECT 1 FROM devices WHERE \"user\"=$1 AND device=$2", user, device);
	rc = run(udb, "INSERT INTO devices(\"user\", device, token_sha256, created, last_seen)"
			" VALUES($1, $2, $3, $4, 0) ON CONFLICT(\"user\", device) DO UPDATE SET"
			" token_sha256=EXCLUDED.token_sha256, created=EXCLUDED.created, last_seen=0",
			NULL, 4, args);
	if(rc == MQC_OK) rc = changed(udb, replaced ? "revoke" : "device", user, device);
	return done(udb, mine, rc);
}

static int pg_device_del(struct userdb *udb, const char *user, const char *device)
{
	const char *args[2] = {user, device};

	return user_change(udb, "DELETE FROM devices WHERE \"user\"=$1 AND device=$2", 2, args,
			"revoke", user, device);
}

static int pg_device_del_others(struct userdb *udb, const char *user, const char *keep, int *count)
{
	const char *args[2] = {user, keep};
	PGresult *r = NULL;
	bool mine;
	int i, rc = own(udb, &mine);

	if(rc) return rc;
	/* A change per device, so only those are cut off, not the one kept. */
	rc = query(udb, "DELETE FROM devices WHERE \"user\"=$1 AND ($2::text IS NULL OR device<>$2)"
			" RETURNING device", 2, args, &r);
	if(rc == MQC_OK){
		pg_of(udb)->wrote = true;
		if(count) *count = PQntuples(r);
		for(i=0; rc == MQC_OK && i<PQntuples(r); i++) rc = changed(udb, "revoke", user, PQgetvalue(r, i, 0));
		PQclear(r);
	}
	return done(udb, mine, rc);
}

static int pg_device_each(struct userdb *udb, const char *user,
		int (*cb)(const struct userdb_device *d, void *arg), void *arg)
{
	struct userdb_device d;
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT \"user\", device, token_sha256, created, last_seen FROM devices"
			" WHERE $1::text IS NULL OR \"user\"=$1 ORDER BY \"user\", device", 1, &user, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++){
		column_copy(r, i, 0, d.user, sizeof(d.user));
		column_copy(r, i, 1, d.device, sizeof(d.device));
		column_copy(r, i, 2, d.token_sha256, sizeof(d.token_sha256));
		d.created = col64(r, i, 3);
		d.last_seen = col64(r, i, 4);
		crc = cb(&d, arg);
	}
	PQclear(r);
	return crc;
}

/* The broker's report of a login: no change row (nothing the broker
 * applies), so a login on any node wakes no loader. */
static int pg_device_seen(struct userdb *udb, const char *user, const char *device, int64_t ts)
{
	char t[I64_LEN];
	const char *args[3] = {user, device, i64(t, ts)};

	return run(udb, "UPDATE devices SET last_seen=$3 WHERE \"user\"=$1 AND device=$2"
			" AND last_seen<$3", NULL, 3, args);
}

/* ---- privacy and contacts ---- */

static enum privacy_level column_level(PGresult *r, int i, int col)
{
	enum privacy_level level = PRIVACY_CONTACTS;

	privacy__parse(coltext(r, i, col), &level);
	return level;
}

static int pg_privacy_get(struct userdb *udb, const char *user, struct userdb_privacy *out)
{
	PGresult *r;
	int rc;

	out->presence = out->room_adds = PRIVACY_CONTACTS;
	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	rc = row(udb, "SELECT presence, room_adds FROM privacy WHERE \"user\"=$1", 1, &user, &r);
	if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
	if(rc != MQC_OK) return rc;
	out->presence = column_level(r, 0, 0);
	out->room_adds = column_level(r, 0, 1);
	PQclear(r);
	return MQC_OK;
}

static int pg_privacy_set(struct userdb *udb, const char *user, const struct userdb_privacy *p)
{
	const char *args[3] = {user, privacy__name(p->presence), privacy__name(p->room_adds)};
	bool mine;
	int rc;

	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO privacy(\"user\", presence, room_adds) VALUES($1, $2, $3)"
			" ON CONFLICT(\"user\") DO UPDATE SET presence=EXCLUDED.presence,"
			" room_adds=EXCLUDED.room_adds", NULL, 3, args);
	if(rc == MQC_OK) rc = changed(udb, "privacy", user, NULL);
	return done(udb, mine, rc);
}

static int pg_privacy_each(struct userdb *udb,
		int (*cb)(const char *user, const struct userdb_privacy *p, void *arg), void *arg)
{
	struct userdb_privacy p;
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT \"user\", presence, room_adds FROM privacy ORDER BY \"user\"", 0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++){
		p.presence = column_level(r, i, 1);
		p.room_adds = column_level(r, i, 2);
		crc = cb(PQgetvalue(r, i, 0), &p, arg);
	}
	PQclear(r);
	return crc;
}

static int pg_contact_add(struct userdb *udb, const char *user, const char *contact, int64_t since)
{
	char t[I64_LEN];
	const char *args[3] = {user, contact, i64(t, since)};
	bool mine;
	int rc;

	if(!user_exists(udb, user) || !user_exists(udb, contact)) return MQC_ERR_NOTFOUND;
	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO contacts(\"user\", contact, since) VALUES($1, $2, $3)"
			" ON CONFLICT DO NOTHING", NULL, 3, args);
	if(rc == MQC_OK) rc = changed(udb, "contact", user, contact);
	return done(udb, mine, rc);
}

static int pg_contact_del(struct userdb *udb, const char *user, const char *contact)
{
	const char *args[2] = {user, contact};

	return user_change(udb, "DELETE FROM contacts WHERE \"user\"=$1 AND contact=$2", 2, args,
			"contact", user, contact);
}

static bool is_contact(struct userdb *udb, const char *user, const char *other)
{
	return exists(udb, "SELECT 1 FROM contacts WHERE \"user\"=$1 AND contact=$2"
			" UNION ALL SELECT 1 FROM members a JOIN members b ON a.room=b.room"
			" WHERE a.\"user\"=$1 AND b.\"user\"=$2 LIMIT 1", user, other);
}

static int pg_contact_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *contact, int64_t since, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT \"user\", contact, since FROM contacts"
			" WHERE $1::text IS NULL OR \"user\"=$1 ORDER BY \"user\", contact", 1, &user, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), col64(r, i, 2), arg);
	PQclear(r);
	return crc;
}

/* ---- settings ---- */

static int pg_setting_get(struct userdb *udb, const char *key, char *out, size_t outlen)
{
	PGresult *r;
	int rc;

	if(outlen > 0) out[0] = '\0';
	rc = row(udb, "SELECT value FROM settings WHERE key=$1", 1, &key, &r);
	if(rc != MQC_OK) return rc;
	snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return MQC_OK;
}

static int pg_setting_set(struct userdb *udb, const char *key, const char *value)
{
	const char *args[2] = {key, value};
	bool mine;
	int rc;

	rc = own(udb, &mine);
	if(rc) return rc;
	rc = run(udb, "INSERT INTO settings(key, value) VALUES($1, $2)"
			" ON CONFLICT(key) DO UPDATE SET value=EXCLUDED.value", NULL, 2, args);
	if(rc == MQC_OK) rc = changed(udb, "setting", key, NULL);
	return done(udb, mine, rc);
}

static int pg_setting_unset(struct userdb *udb, const char *key)
{
	return user_change(udb, "DELETE FROM settings WHERE key=$1", 1, &key, "setting", key, NULL);
}

static int pg_setting_each(struct userdb *udb,
		int (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT key, value FROM settings ORDER BY key", 0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++) crc = cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), arg);
	PQclear(r);
	return crc;
}

/* ---- invites (the archiver's alone: no change rows) ---- */

static int pg_invite_create(struct userdb *udb, const char *code, int uses, int64_t expires)
{
	char u[I64_LEN], e[I64_LEN], now[I64_LEN];
	const char *args[4] = {code, i64(u, uses), i64(e, expires > 0 ? expires : 0), i64(now, time__now_ms())};

	if(exists(udb, "SELECT 1 FROM invites WHERE code=$1", code, NULL)) return MQC_ERR_EXISTS;
	return run(udb, "INSERT INTO invites(code, uses_left, expires, created) VALUES($1, $2, $3, $4)",
			NULL, 4, args);
}

static int pg_invite_use(struct userdb *udb, const char *code, int64_t now)
{
	char t[I64_LEN];
	const char *args[2] = {code, i64(t, now)};

	return run_one(udb, "UPDATE invites SET uses_left = uses_left - 1"
			" WHERE code=$1 AND uses_left > 0 AND (expires = 0 OR expires > $2)", 2, args);
}

static int pg_invite_revoke(struct userdb *udb, const char *code)
{
	return run_one(udb, "DELETE FROM invites WHERE code=$1", 1, &code);
}

static int pg_invite_each(struct userdb *udb,
		int (*cb)(const char *code, int uses_left, int64_t expires, int64_t created, void *arg),
		void *arg)
{
	PGresult *r;
	int i, rc, crc = 0;

	rc = query(udb, "SELECT code, uses_left, expires, created FROM invites ORDER BY created, code",
			0, NULL, &r);
	if(rc) return rc;
	for(i=0; !crc && i<PQntuples(r); i++){
		crc = cb(PQgetvalue(r, i, 0), (int)col64(r, i, 1), col64(r, i, 2), col64(r, i, 3), arg);
	}
	PQclear(r);
	return crc;
}

static int pg_nick_walk(struct userdb *udb, const char *except,
		bool (*cb)(const char *name, const char *nick, void *arg), void *arg)
{
	PGresult *r;
	int i, rc;

	rc = query(udb, "SELECT name, nick FROM users WHERE name <> $1 ORDER BY name", 1, &except, &r);
	if(rc) return rc == MQC_ERR_BUSY ? rc : MQC_ERR_DB;
	for(i=0; i<PQntuples(r); i++){
		if(cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), arg)) break;
	}
	PQclear(r);
	return MQC_OK;
}

static const struct userdb_ops userdb_pg__ops = {
	.close = pg_close,
	.set_busy_ms = pg_set_busy_ms,
	.begin_read = pg_begin_read,
	.begin_write = pg_begin_write,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.data_version = pg_data_version,
	.watch_fd = pg_watch_fd,
	.watch_drain = pg_watch_drain,
	.node_applied = pg_node_applied,
	.in_force_version = pg_in_force_version,
	.user_add = pg_user_add,
	.user_restore = pg_user_restore,
	.retired_get = pg_retired_get,
	.retired_each = pg_retired_each,
	.user_get = pg_user_get,
	.user_set_enabled = pg_user_set_enabled,
	.user_set_pwhash = pg_user_set_pwhash,
	.user_set_nick = pg_user_set_nick,
	.user_del = pg_user_del,
	.user_each = pg_user_each,
	.room_create = pg_room_create,
	.room_del = pg_room_del,
	.room_get = pg_room_get,
	.member_add = pg_member_add,
	.member_remove = pg_member_remove,
	.is_member = pg_is_member,
	.rooms_of = pg_rooms_of,
	.room_each = pg_room_each,
	.member_each = pg_member_each,
	.room_retired_get = pg_room_retired_get,
	.room_meta_get = pg_room_meta_get,
	.room_meta_set = pg_room_meta_set,
	.room_role = pg_room_role,
	.room_roles = pg_room_roles,
	.room_admin_set = pg_room_admin_set,
	.rooms_owned = pg_rooms_owned,
	.room_size = pg_room_size,
	.room_successor = pg_room_successor,
	.block_add = pg_block_add,
	.block_del = pg_block_del,
	.block_each = pg_block_each,
	.device_set = pg_device_set,
	.device_del = pg_device_del,
	.device_del_others = pg_device_del_others,
	.device_each = pg_device_each,
	.device_seen = pg_device_seen,
	.privacy_get = pg_privacy_get,
	.privacy_set = pg_privacy_set,
	.privacy_each = pg_privacy_each,
	.contact_add = pg_contact_add,
	.contact_del = pg_contact_del,
	.is_contact = is_contact,
	.contact_each = pg_contact_each,
	.setting_get = pg_setting_get,
	.setting_set = pg_setting_set,
	.setting_unset = pg_setting_unset,
	.setting_each = pg_setting_each,
	.invite_create = pg_invite_create,
	.invite_use = pg_invite_use,
	.invite_revoke = pg_invite_revoke,
	.invite_each = pg_invite_each,
	.nick_walk = pg_nick_walk,
	.errmsg = pg_errmsg,
};
