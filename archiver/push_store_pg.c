/* push_store_pg.c - the push store on PostgreSQL, schema `push` (see
 * push_store.h for what each call means, docs/SCALING.md "The stores on
 * PostgreSQL" for why it is shaped so). Built into the module
 * mqchat_store_pg.so, which push_store.c loads with dlopen only when
 * DATA/store.conf says `store postgresql`: a single node needs no libpq.
 *
 * The same tables and meanings as push.db, with what several push threads
 * on several nodes sharing one queue need:
 * - A job push_store__due hands out is taken: the row names its taker
 *   (this connection: a random id made at open) and until when. The
 *   selecting statement locks the rows FOR UPDATE SKIP LOCKED, so two
 *   takers asking at once never get the same job, and neither waits for
 *   the other; the mark outlives that statement, so the job stays taken
 *   while its request is on its way. Its taker gets it again from due (the
 *   push thread skips its own jobs in flight, and tries again those it
 *   could not start); sent, done or retried, it is free again. A taker
 *   that died leaves its mark, and another takes the job once
 *   PUSH_STORE_LEASE_MS have passed.
 * - The cursor is one row for the whole service (every node's push thread
 *   reads the one shared archive): read inside a batch it is locked until
 *   the batch ends, so another node's batch waits and then starts where
 *   this one stopped, and each message is queued once.
 * - The schema is made in steps, each one transaction under an advisory
 *   lock, the version read again under it: several nodes may start at
 *   once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "err.h"
#include "pgconn.h"
#include "push_store.h"
#include "push_store_backend.h"
#include "rand.h"
#include "sqlutil.h"
#include "store_conf.h"
#include "timeutil.h"
#include "userdb.h"

static const struct push_store_ops pg_ops;

/* The advisory lock of the schema's creation and upgrades (two bigints,
 * the same in every release; the user store's are ...60 and ...61). */
#define LOCK_SCHEMA "7165012657120370"

#define SCHEMA_VERSION 1

struct push_pg {
	struct push_store ps;
	PGconn *conn;
	int busy_ms;           /* lock_timeout */
	bool batch;            /* inside push_store__begin's transaction */
	bool broken;           /* a statement failed for the connection */
	bool opened;           /* the schema is there: close frees what it took */
	char taker[33];        /* this connection's mark on the jobs it takes */
	char errmsg[512];
	char path[4096];       /* the setting file: names the store in messages */
};

static struct push_pg *pg_of(struct push_store *ps)
{
	return (struct push_pg *)ps;
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

/* The MQC_ERR_* of a result (pgconn.h says which). One that failed for
 * the connection marks it broken: the next call outside a batch connects
 * again. */
static int status_of(struct push_pg *s, PGresult *res)
{
	int rc = pgconn__status(s->conn, res, s->errmsg, sizeof(s->errmsg));

	if(rc == MQC_ERR_IO) s->broken = true;
	return rc;
}

/* The connection's settings (pgconn__session's). */
static int session(struct push_pg *s)
{
	int rc = pgconn__session(s->conn, "push", s->busy_ms, NULL, s->errmsg, sizeof(s->errmsg));

	if(rc == MQC_ERR_IO) s->broken = true;
	return rc;
}

/* A connection that broke (the server restarted, a failover) is made
 * again before the next statement outside a batch: the store outlives
 * this program's connection. Inside a batch it is not: the statements
 * after would run outside the transaction the caller believes open. */
static int connected(struct push_pg *s)
{
	if(PQstatus(s->conn) == CONNECTION_OK && !s->broken) return MQC_OK;
	if(s->batch){
		snprintf(s->errmsg, sizeof(s->errmsg), "the connection broke inside a batch");
		return MQC_ERR_IO;
	}
	s->broken = false;
	if(pgconn__reset(s->conn, s->errmsg, sizeof(s->errmsg)) != MQC_OK) return MQC_ERR_IO;
	return session(s);
}

/* Run sql with n text parameters (NULL: SQL NULL); *res (if res is not
 * NULL) gets the result to read and PQclear, else it is cleared here. */
static int query(struct push_pg *s, const char *sql, int n, const char *const *args, PGresult **res)
{
	PGresult *r;
	int rc = connected(s);

	if(rc != MQC_OK){
		if(res) *res = NULL;
		return rc;
	}
	r = PQexecParams(s->conn, sql, n, NULL, args, NULL, NULL, 0);
	return pgconn__result(r, status_of(s, r), res);
}

/* A write of one statement; *changes (may be NULL) the rows it changed. */
static int run(struct push_pg *s, const char *sql, int n, const char *const *args, int *changes)
{
	PGresult *r;
	int rc = query(s, sql, n, args, &r);

	if(rc != MQC_OK) return rc;
	if(changes) *changes = atoi(PQcmdTuples(r));
	PQclear(r);
	return MQC_OK;
}

/* Statements without parameters, several at once (the schema). */
static int exec(struct push_pg *s, const char *sql)
{
	PGresult *r;
	int rc = connected(s);

	if(rc != MQC_OK) return rc;
	r = PQexec(s->conn, sql);
	rc = status_of(s, r);
	PQclear(r);
	return rc;
}

static int64_t col64(PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? 0 : strtoll(PQgetvalue(r, i, col), NULL, 10);
}

static void column_copy(PGresult *r, int i, int col, char *out, size_t n)
{
	snprintf(out, n, "%s", PQgetisnull(r, i, col) ? "" : PQgetvalue(r, i, col));
}

/* A write of several statements: its own transaction outside a batch, a
 * SAVEPOINT inside one, so it is whole or not at all without ending the
 * caller's transaction. *own says which, for write_end. */
static int write_begin(struct push_pg *s, bool *own)
{
	int rc = connected(s);

	*own = PQtransactionStatus(s->conn) == PQTRANS_IDLE;
	return rc == MQC_OK ? exec(s, *own ? "BEGIN" : "SAVEPOINT push_store") : rc;
}

static int write_end(struct push_pg *s, bool own, int rc)
{
	if(rc == MQC_OK){
		rc = exec(s, own ? "COMMIT" : "RELEASE push_store");
		if(rc == MQC_OK) return MQC_OK;
	}
	if(own){
		if(PQtransactionStatus(s->conn) != PQTRANS_IDLE) (void)exec(s, "ROLLBACK");
	}else{
		(void)exec(s, "ROLLBACK TO push_store");
		(void)exec(s, "RELEASE push_store");
	}
	return rc;
}

/* ---- schema ---- */

/* Text compared and ordered bytewise, as SQLite's BINARY. */
#define T "text COLLATE \"C\""

/* Version 1: push.db's tables (push_store.h says what each holds), `user`
 * quoted (a reserved word), and the queue's two columns of PostgreSQL
 * only: who took a job and until when. The cursor row exists from the
 * start, so a batch can always lock it. */
static const char schema_v1[] =
	"CREATE SCHEMA IF NOT EXISTS push;"
	"CREATE TABLE push.meta(key " T " PRIMARY KEY, value " T " NOT NULL);"
	"CREATE TABLE push.targets(\"user\" " T " NOT NULL, device " T " NOT NULL,"
	" provider " T " NOT NULL, data text NOT NULL, secret text NOT NULL DEFAULT '',"
	" created bigint NOT NULL, last_ok bigint NOT NULL DEFAULT 0,"
	" failures integer NOT NULL DEFAULT 0, PRIMARY KEY(\"user\", device));"
	"CREATE TABLE push.mutes(\"user\" " T " NOT NULL, conv " T " NOT NULL, until bigint NOT NULL,"
	" PRIMARY KEY(\"user\", conv));"
	"CREATE TABLE push.prefs(\"user\" " T " PRIMARY KEY, previews boolean NOT NULL DEFAULT false);"
	"CREATE TABLE push.queue(id bigserial PRIMARY KEY, \"user\" " T " NOT NULL,"
	" device " T " NOT NULL, conv " T " NOT NULL, count integer NOT NULL,"
	" last_seq bigint NOT NULL, msg_id text NOT NULL, sender " T " NOT NULL, preview text,"
	" due bigint NOT NULL, attempts integer NOT NULL DEFAULT 0, created bigint NOT NULL,"
	" taken_by text, taken_until bigint NOT NULL DEFAULT 0,"
	" UNIQUE(\"user\", device, conv));"
	"CREATE INDEX queue_due ON push.queue(due);"
	"INSERT INTO push.meta(key, value) VALUES('cursor', '0');"
	"INSERT INTO push.meta(key, value) VALUES('schema_version', '1');";

/* The steps from each version to the next, in order. A step that changes
 * meaning rather than adds must say so (docs/SCALING.md, "Upgrades"). */
static const struct pgconn_step steps[] = {
	{0, SCHEMA_VERSION, schema_v1},
};

/* Every table must be there, with the columns this build reads. */
#define V1_TABLES \
	"SELECT key, value FROM meta LIMIT 0;" \
	"SELECT \"user\", device, provider, data, secret, created, last_ok, failures FROM targets LIMIT 0;" \
	"SELECT \"user\", conv, until FROM mutes LIMIT 0;" \
	"SELECT \"user\", previews FROM prefs LIMIT 0;" \
	"SELECT id, \"user\", device, conv, count, last_seq, msg_id, sender, preview, due, attempts," \
	" created, taken_by, taken_until FROM queue LIMIT 0;"

static const struct pgconn_schema schema = {
	.name = "push",
	.lock = LOCK_SCHEMA,
	.version = SCHEMA_VERSION,
	.steps = steps,
	.nsteps = sizeof(steps) / sizeof(steps[0]),
	.tables = V1_TABLES,
	.what = "push store",
	.label = "push store schema",
};

/* ---- opening ---- */

/* A taker that stops frees what it took (a job still on its way at the
 * stop may then go out twice, as on SQLite after a restart): another
 * node need not wait for the lease. */
static void pg_close(struct push_store *ps)
{
	struct push_pg *s = pg_of(ps);
	const char *taker = s->taker;

	if(s->conn && PQstatus(s->conn) == CONNECTION_OK && !s->broken
			&& PQtransactionStatus(s->conn) == PQTRANS_IDLE && s->opened){
		(void)run(s, "UPDATE queue SET taken_by = NULL, taken_until = 0 WHERE taken_by = $1", 1,
				&taker, NULL);
	}
	if(s->conn) PQfinish(s->conn);
	free(s);
}

/* The taker's mark: random, so a restarted program is a new taker and
 * two connections of one program are two. */
static int make_taker(char out[33])
{
	unsigned char raw[16];
	int i, rc = rand__bytes(raw, sizeof(raw));

	if(rc != MQC_OK) return rc;
	for(i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return MQC_OK;
}

int push_store_pg__open(const struct store_conf *conf, struct push_store **out, char *err,
		size_t errlen)
{
	struct push_pg *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if(s == NULL) return MQC_ERR_NOMEM;
	s->ps.ops = &pg_ops;
	/* Named by the setting file, never by the connection string (it may
	 * hold a password). */
	snprintf(s->path, sizeof(s->path), "%s", conf->path);
	s->busy_ms = USERDB_BUSY_TIMEOUT_MS;
	rc = make_taker(s->taker);
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: no random bytes for the taker's mark", s->path);
		pg_close(&s->ps);
		return rc;
	}
	rc = pgconn__connect(conf->conninfo, s->path, &s->conn, err, errlen);
	if(rc != MQC_OK){
		pg_close(&s->ps);
		return rc;
	}
	rc = session(s);
	if(rc == MQC_OK){
		int version;

		rc = pgconn__check_schema(s->conn, &schema, true, s->path, &version, s->errmsg,
				sizeof(s->errmsg), err, errlen);
	}else{
		mqc_seterr(err, errlen, "%s: %s", s->path, s->errmsg);
	}
	if(rc != MQC_OK){
		pg_close(&s->ps);
		return rc;
	}
	s->errmsg[0] = '\0';
	s->opened = true;
	*out = &s->ps;
	return MQC_OK;
}

/* Writable: the server answers and is a primary (a standby refuses
 * writes), and the schema is there. A connection of its own: /health
 * runs on another thread than the store's users. */
const char *push_store_pg__writable(const struct store_conf *conf, int busy_ms, char *why,
		size_t whylen)
{
	char conninfo[STORE_CONNINFO_MAX + 64];
	const char *bad = NULL;
	PGconn *c;
	PGresult *r;

	/* connect_timeout is in whole seconds, at least 2 (libpq). */
	snprintf(conninfo, sizeof(conninfo), "%s connect_timeout=%d", conf->conninfo,
			busy_ms / 1000 > 2 ? busy_ms / 1000 : 2);
	c = PQconnectdb(conninfo);
	if(c == NULL || PQstatus(c) != CONNECTION_OK){
		snprintf(why, whylen, "cannot connect to PostgreSQL (%s)", c ? PQerrorMessage(c) : "out of memory");
		why[strcspn(why, "\n")] = '\0';
		PQfinish(c);
		return why;
	}
	r = PQexec(c, "SELECT pg_is_in_recovery(), EXISTS(SELECT 1 FROM pg_catalog.pg_tables"
			" WHERE schemaname='push' AND tablename='queue')");
	if(PQresultStatus(r) != PGRES_TUPLES_OK){
		snprintf(why, whylen, "%s", PQresultErrorMessage(r));
		why[strcspn(why, "\n")] = '\0';
		bad = why;
	}else if(strcmp(PQgetvalue(r, 0, 0), "f") != 0){
		snprintf(why, whylen, "the PostgreSQL server is a standby (read only)");
		bad = why;
	}else if(strcmp(PQgetvalue(r, 0, 1), "t") != 0){
		snprintf(why, whylen, "no push store (schema push) in the database");
		bad = why;
	}
	PQclear(r);
	PQfinish(c);
	return bad;
}

static int pg_set_busy_ms(struct push_store *ps, int ms)
{
	pg_of(ps)->busy_ms = ms;
	return session(pg_of(ps));
}

/* ---- targets ---- */

static int pg_target_set(struct push_store *ps, const char *user, const char *device,
		const char *provider, const char *data, const char *secret, int64_t now_ms)
{
	char now[I64_LEN];
	const char *args[6] = {user, device, provider, data, secret, i64(now, now_ms)};

	/* A new registration of the device starts afresh: its jobs stay (they
	 * are the device's), its record of answers does not. */
	return run(pg_of(ps), "INSERT INTO targets(\"user\", device, provider, data, secret, created,"
			" last_ok, failures) VALUES($1, $2, $3, $4, $5, $6, 0, 0)"
			" ON CONFLICT(\"user\", device) DO UPDATE SET provider = excluded.provider,"
			" data = excluded.data, secret = excluded.secret, created = excluded.created,"
			" last_ok = 0, failures = 0", 6, args, NULL);
}

static int pg_target_remove(struct push_store *ps, const char *user, const char *device, bool except,
		int *removed)
{
	static const char *const sql[2][2] = {
		{"DELETE FROM queue WHERE \"user\" = $1 AND ($2::text IS NULL OR device = $2)",
		 "DELETE FROM targets WHERE \"user\" = $1 AND ($2::text IS NULL OR device = $2)"},
		{"DELETE FROM queue WHERE \"user\" = $1 AND ($2::text IS NULL OR device <> $2)",
		 "DELETE FROM targets WHERE \"user\" = $1 AND ($2::text IS NULL OR device <> $2)"},
	};
	struct push_pg *s = pg_of(ps);
	const char *args[2] = {user, device};
	int rc, n = 0;
	bool own;

	rc = write_begin(s, &own);
	if(rc == MQC_OK) rc = run(s, sql[except][0], 2, args, NULL);
	if(rc == MQC_OK) rc = run(s, sql[except][1], 2, args, &n);
	rc = write_end(s, own, rc);
	if(rc == MQC_OK && removed) *removed = n;
	return rc;
}

static int pg_user_forget(struct push_store *ps, const char *user)
{
	static const char *const tables[] = {"queue", "targets", "mutes", "prefs"};
	struct push_pg *s = pg_of(ps);
	char sql[64];
	size_t i;
	bool own;
	int rc;

	rc = write_begin(s, &own);
	for(i = 0; rc == MQC_OK && i < sizeof(tables) / sizeof(tables[0]); i++){
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE \"user\" = $1", tables[i]);
		rc = run(s, sql, 1, &user, NULL);
	}
	return write_end(s, own, rc);
}

/* The end of a list read from r into arr: *out gets arr if rc is MQC_OK. */
static int json_list_end(PGresult *r, json_t *arr, int rc, json_t **out)
{
	PQclear(r);
	if(rc != MQC_OK){
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return MQC_OK;
}

static int pg_targets_json(struct push_store *ps, const char *user, json_t **out)
{
	json_t *arr;
	PGresult *r;
	int rc, i;

	rc = query(pg_of(ps), "SELECT device, provider, created, last_ok, failures FROM targets"
			" WHERE \"user\" = $1 ORDER BY device", 1, &user, &r);
	if(rc != MQC_OK) return rc;
	arr = json_array();
	rc = arr ? MQC_OK : MQC_ERR_NOMEM;
	for(i = 0; rc == MQC_OK && i < PQntuples(r); i++){
		rc = push_store_target_append(arr, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), col64(r, i, 2),
				col64(r, i, 3), col64(r, i, 4));
	}
	return json_list_end(r, arr, rc, out);
}

static void target_clear(struct push_target *t)
{
	json_decref(t->data);
	t->data = NULL;
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
}

static int pg_targets(struct push_store *ps, const char *user, struct push_target **out, int *n)
{
	struct push_target *v, *t;
	PGresult *r;
	int rc, i, rows;

	rc = query(pg_of(ps), "SELECT device, provider, data, secret FROM targets WHERE \"user\" = $1"
			" ORDER BY device", 1, &user, &r);
	if(rc != MQC_OK) return rc;
	rows = PQntuples(r);
	v = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*v));
	if(v == NULL){
		PQclear(r);
		return MQC_ERR_NOMEM;
	}
	for(i = 0; i < rows; i++){
		t = &v[*n];
		memset(t, 0, sizeof(*t));
		snprintf(t->user, sizeof(t->user), "%s", user);
		column_copy(r, i, 0, t->device, sizeof(t->device));
		t->provider = (enum push_provider)push_store_provider_parse(PQgetvalue(r, i, 1));
		column_copy(r, i, 3, t->secret, sizeof(t->secret));
		t->data = json_loads(PQgetvalue(r, i, 2), 0, NULL);
		/* A row this code did not write is skipped, not sent to. */
		if(t->provider == 0 || !json_is_object(t->data)){
			target_clear(t);
			continue;
		}
		(*n)++;
	}
	PQclear(r);
	*out = v;
	return MQC_OK;
}

/* The one integer of a query on user ($1), dflt without a row. */
static int user_int(struct push_pg *s, const char *sql, const char *user, int64_t dflt, int64_t *v)
{
	PGresult *r;
	int rc = query(s, sql, 1, &user, &r);

	*v = dflt;
	if(rc != MQC_OK) return rc;
	if(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) *v = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

static int pg_target_count(struct push_store *ps, const char *user, int *n)
{
	int64_t v;
	int rc = user_int(pg_of(ps), "SELECT count(*) FROM targets WHERE \"user\" = $1", user, 0, &v);

	*n = (int)v;
	return rc;
}

/* A target removed meanwhile has nothing to record: MQC_OK all the same. */
static int pg_target_result(struct push_store *ps, const char *user, const char *device, bool ok,
		int64_t now_ms)
{
	char now[I64_LEN];
	const char *args[3] = {user, device, i64(now, now_ms)};

	if(ok){
		return run(pg_of(ps), "UPDATE targets SET last_ok = $3, failures = 0"
				" WHERE \"user\" = $1 AND device = $2", 3, args, NULL);
	}
	return run(pg_of(ps), "UPDATE targets SET failures = failures + 1"
			" WHERE \"user\" = $1 AND device = $2", 2, args, NULL);
}

/* ---- mutes and previews ---- */

static int pg_mute(struct push_store *ps, const char *user, const char *conv, int64_t until_ms)
{
	char until[I64_LEN];
	const char *args[3] = {user, conv, i64(until, until_ms)};

	return run(pg_of(ps), "INSERT INTO mutes(\"user\", conv, until) VALUES($1, $2, $3)"
			" ON CONFLICT(\"user\", conv) DO UPDATE SET until = excluded.until", 3, args, NULL);
}

static int pg_unmute(struct push_store *ps, const char *user, const char *conv)
{
	const char *args[2] = {user, conv};

	return run(pg_of(ps), "DELETE FROM mutes WHERE \"user\" = $1 AND conv = $2", 2, args, NULL);
}

static int pg_mutes_json(struct push_store *ps, const char *user, int64_t now_ms, json_t **out)
{
	char now[I64_LEN];
	const char *args[2] = {user, i64(now, now_ms)};
	json_t *arr;
	PGresult *r;
	int rc, i;

	rc = query(pg_of(ps), "SELECT conv, until FROM mutes WHERE \"user\" = $1"
			" AND (until = 0 OR until > $2) ORDER BY conv", 2, args, &r);
	if(rc != MQC_OK) return rc;
	arr = json_array();
	rc = arr ? MQC_OK : MQC_ERR_NOMEM;
	for(i = 0; rc == MQC_OK && i < PQntuples(r); i++){
		rc = push_store_mute_append(arr, PQgetvalue(r, i, 0), col64(r, i, 1));
	}
	return json_list_end(r, arr, rc, out);
}

/* On a read error: not muted (a notification too many, never one lost). */
static bool pg_muted(struct push_store *ps, const char *user, const char *conv, int64_t now_ms)
{
	char now[I64_LEN];
	const char *args[3] = {user, conv, i64(now, now_ms)};
	PGresult *r;
	bool muted;

	if(query(pg_of(ps), "SELECT 1 FROM mutes WHERE \"user\" = $1 AND conv = $2"
				" AND (until = 0 OR until > $3)", 3, args, &r) != MQC_OK){
		return false;
	}
	muted = PQntuples(r) > 0;
	PQclear(r);
	return muted;
}

static int pg_previews_set(struct push_store *ps, const char *user, bool on)
{
	const char *args[2] = {user, on ? "true" : "false"};

	return run(pg_of(ps), "INSERT INTO prefs(\"user\", previews) VALUES($1, $2)"
			" ON CONFLICT(\"user\") DO UPDATE SET previews = excluded.previews", 2, args, NULL);
}

/* On a read error: off (no text leaves by mistake). */
static bool pg_previews(struct push_store *ps, const char *user)
{
	int64_t v = 0;

	if(user_int(pg_of(ps), "SELECT previews::int FROM prefs WHERE \"user\" = $1", user, 0, &v) != MQC_OK){
		return false;
	}
	return v != 0;
}

/* ---- the queue ---- */

static int pg_enqueue(struct push_store *ps, const char *user, const char *device, const char *conv,
		int64_t seq, const char *msg_id, const char *sender, const char *preview, int64_t due_ms)
{
	char seqs[I64_LEN], due[I64_LEN], now[I64_LEN];
	const char *args[9] = {user, device, conv, i64(seqs, seq), msg_id, sender, preview,
		i64(due, due_ms), i64(now, time__now_ms())};

	return run(pg_of(ps), "INSERT INTO queue(\"user\", device, conv, count, last_seq, msg_id, sender,"
			" preview, due, attempts, created) VALUES($1, $2, $3, 1, $4, $5, $6, $7, $8, 0, $9)"
			" ON CONFLICT(\"user\", device, conv) DO UPDATE SET count = queue.count + 1,"
			" last_seq = excluded.last_seq, msg_id = excluded.msg_id, sender = excluded.sender,"
			" preview = excluded.preview", 9, args, NULL);
}

/* Take the due jobs no other taker holds (SKIP LOCKED: rows another
 * taker's statement is taking now are not waited for) and mark them this
 * taker's until now + PUSH_STORE_LEASE_MS; this taker's own come again. */
static int pg_due(struct push_store *ps, int64_t now_ms, struct push_job *jobs, int max, int *n)
{
	struct push_pg *s = pg_of(ps);
	char now[I64_LEN], lim[I64_LEN], until[I64_LEN];
	const char *args[4] = {i64(now, now_ms), i64(lim, max), s->taker,
		i64(until, now_ms + PUSH_STORE_LEASE_MS)};
	PGresult *r;
	int rc, i;

	rc = query(s, "WITH t AS (SELECT id FROM queue WHERE due <= $1"
			" AND (taken_until <= $1 OR taken_by = $3) ORDER BY due, id LIMIT $2"
			" FOR UPDATE SKIP LOCKED),"
			" u AS (UPDATE queue q SET taken_by = $3, taken_until = $4 FROM t WHERE q.id = t.id"
			" RETURNING q.id, q.\"user\", q.device, q.conv, q.count, q.last_seq, q.msg_id, q.sender,"
			" q.preview, q.attempts, q.due)"
			" SELECT * FROM u ORDER BY due, id", 4, args, &r);
	if(rc != MQC_OK) return rc;
	for(i = 0; i < PQntuples(r) && *n < max; i++){
		struct push_job *j = &jobs[*n];

		memset(j, 0, sizeof(*j));
		j->id = col64(r, i, 0);
		column_copy(r, i, 1, j->user, sizeof(j->user));
		column_copy(r, i, 2, j->device, sizeof(j->device));
		column_copy(r, i, 3, j->conv, sizeof(j->conv));
		j->count = (int)col64(r, i, 4);
		j->last_seq = col64(r, i, 5);
		column_copy(r, i, 6, j->msg_id, sizeof(j->msg_id));
		column_copy(r, i, 7, j->sender, sizeof(j->sender));
		j->attempts = (int)col64(r, i, 9);
		j->due = col64(r, i, 10);
		(*n)++;
		if(!PQgetisnull(r, i, 8) && (j->preview = strdup(PQgetvalue(r, i, 8))) == NULL){
			rc = MQC_ERR_NOMEM;
			break;
		}
	}
	PQclear(r);
	if(rc != MQC_OK){
		for(i = 0; i < *n; i++){
			free(jobs[i].preview);
			jobs[i].preview = NULL;
		}
		*n = 0;
	}
	return rc;
}

/* Another taker's job is not due here before its mark runs out. */
static int pg_next_due(struct push_store *ps, int64_t *due_ms)
{
	struct push_pg *s = pg_of(ps);
	const char *taker = s->taker;
	PGresult *r;
	int rc = query(s, "SELECT min(CASE WHEN taken_by = $1 THEN due ELSE greatest(due, taken_until) END)"
			" FROM queue", 1, &taker, &r);

	if(rc != MQC_OK) return rc;
	*due_ms = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

static int pg_job_done(struct push_store *ps, int64_t id)
{
	char ids[I64_LEN];
	const char *args[1] = {i64(ids, id)};

	return run(pg_of(ps), "DELETE FROM queue WHERE id = $1", 1, args, NULL);
}

static int pg_job_sent(struct push_store *ps, const struct push_job *j)
{
	struct push_pg *s = pg_of(ps);
	char ids[I64_LEN], seq[I64_LEN], count[I64_LEN];
	const char *args[3] = {i64(ids, j->id), i64(seq, j->last_seq), i64(count, j->count)};
	int rc, n = 0;
	bool own;

	rc = write_begin(s, &own);
	if(rc == MQC_OK) rc = run(s, "DELETE FROM queue WHERE id = $1 AND last_seq = $2", 2, args, &n);
	/* Messages came while it was on its way: it stays, free for any taker. */
	if(rc == MQC_OK && n == 0){
		rc = run(s, "UPDATE queue SET count = greatest(count - $3, 1), attempts = 0, taken_by = NULL,"
				" taken_until = 0 WHERE id = $1 AND last_seq <> $2", 3, args, NULL);
	}
	return write_end(s, own, rc);
}

static int pg_job_retry(struct push_store *ps, int64_t id, int64_t due_ms)
{
	char ids[I64_LEN], due[I64_LEN];
	const char *args[2] = {i64(ids, id), i64(due, due_ms)};

	return run(pg_of(ps), "UPDATE queue SET due = $2, attempts = attempts + 1, taken_by = NULL,"
			" taken_until = 0 WHERE id = $1", 2, args, NULL);
}

static int pg_jobs_drop(struct push_store *ps, const char *user, const char *conv)
{
	const char *args[2] = {user, conv};

	return run(pg_of(ps), "DELETE FROM queue WHERE \"user\" = $1 AND ($2::text IS NULL OR conv = $2)",
			2, args, NULL);
}

/* ---- batches and the cursor ---- */

static int pg_begin(struct push_store *ps)
{
	struct push_pg *s = pg_of(ps);
	int rc = exec(s, "BEGIN");

	s->batch = rc == MQC_OK;
	return rc;
}

static void pg_rollback(struct push_store *ps)
{
	struct push_pg *s = pg_of(ps);

	s->batch = false;
	if(PQstatus(s->conn) == CONNECTION_OK && !s->broken
			&& PQtransactionStatus(s->conn) != PQTRANS_IDLE){
		(void)exec(s, "ROLLBACK");
	}
}

/* COMMIT of a transaction a statement failed in "succeeds" as a
 * ROLLBACK: a failure to the caller, who asked for a commit. */
static int pg_commit(struct push_store *ps)
{
	struct push_pg *s = pg_of(ps);
	PGresult *r;
	int rc;

	if(PQstatus(s->conn) != CONNECTION_OK || s->broken){
		s->batch = false;
		return MQC_ERR_IO;
	}
	r = PQexec(s->conn, "COMMIT");
	rc = status_of(s, r);
	if(rc == MQC_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0){
		snprintf(s->errmsg, sizeof(s->errmsg), "the batch failed and was rolled back");
		rc = MQC_ERR_DB;
	}
	PQclear(r);
	if(rc != MQC_OK) pg_rollback(ps);
	s->batch = false;
	return rc;
}

/* Inside a batch the row stays locked until the batch ends. */
static int pg_cursor(struct push_store *ps, int64_t *seq)
{
	struct push_pg *s = pg_of(ps);
	PGresult *r;
	int rc = query(s, s->batch ? "SELECT value FROM meta WHERE key = 'cursor' FOR UPDATE"
			: "SELECT value FROM meta WHERE key = 'cursor'", 0, NULL, &r);

	if(rc != MQC_OK) return rc;
	if(PQntuples(r) > 0) *seq = col64(r, 0, 0);
	PQclear(r);
	return MQC_OK;
}

static int pg_set_cursor(struct push_store *ps, int64_t seq)
{
	char v[I64_LEN];
	const char *args[1] = {i64(v, seq)};

	return run(pg_of(ps), "INSERT INTO meta(key, value) VALUES('cursor', $1)"
			" ON CONFLICT(key) DO UPDATE SET value = excluded.value", 1, args, NULL);
}

static const struct push_store_ops pg_ops = {
	.close = pg_close,
	.set_busy_ms = pg_set_busy_ms,
	.target_set = pg_target_set,
	.target_remove = pg_target_remove,
	.user_forget = pg_user_forget,
	.targets_json = pg_targets_json,
	.targets = pg_targets,
	.target_count = pg_target_count,
	.target_result = pg_target_result,
	.mute = pg_mute,
	.unmute = pg_unmute,
	.mutes_json = pg_mutes_json,
	.muted = pg_muted,
	.previews_set = pg_previews_set,
	.previews = pg_previews,
	.enqueue = pg_enqueue,
	.due = pg_due,
	.next_due = pg_next_due,
	.job_done = pg_job_done,
	.job_sent = pg_job_sent,
	.job_retry = pg_job_retry,
	.jobs_drop = pg_jobs_drop,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.cursor = pg_cursor,
	.set_cursor = pg_set_cursor,
};
