/* push_store_sqlite.c - the push store in a file, DATA/push.db: push
 * targets, mutes, preview settings and the queue of notifications on
 * their way (see push_store.h; push_store.c sends each call here).
 *
 * Nothing per connection is kept but the connection: statements are prepared per call (a push.db operation is rare beside
 * what it notifies about), and whether the caller holds a transaction is
 * SQLite's own answer (sqlite3_get_autocommit). Outside one, a write is
 * its own BEGIN IMMEDIATE transaction, so it waits for the write lock at
 * its start, never half way; inside one (push_store__begin), a write of
 * several statements is a SAVEPOINT, so it is whole or not at all without
 * ending the caller's transaction. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "datadir.h"
#include "err.h"
#include "push_store.h"
#include "push_store_backend.h"
#include "push_store_sqlite.h"
#include "rand.h"
#include "sqlutil.h"
#include "timeutil.h"
#include "userdb.h"

/* One thread's connection to push.db. */
struct push_store_sqlite {
	struct push_store ps;
	sqlite3 *db;
};

static const struct push_store_ops sqlite_ops;

static sqlite3 *db_of(struct push_store *ps)
{
	return ((struct push_store_sqlite *)ps)->db;
}

#define PUSH_STORE_SCHEMA 1
#define PUSH_STORE_FILE "push.db"

static const char *schema_sql =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE targets(user TEXT NOT NULL, device TEXT NOT NULL, provider TEXT NOT NULL,"
	" data TEXT NOT NULL, secret TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
	" last_ok INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(user, device)) WITHOUT ROWID;"
	"CREATE TABLE mutes(user TEXT NOT NULL, conv TEXT NOT NULL, until INTEGER NOT NULL,"
	" PRIMARY KEY(user, conv)) WITHOUT ROWID;"
	"CREATE TABLE prefs(user TEXT PRIMARY KEY, previews INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE TABLE queue(id INTEGER PRIMARY KEY, user TEXT NOT NULL, device TEXT NOT NULL,"
	" conv TEXT NOT NULL, count INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
	" msg_id TEXT NOT NULL, sender TEXT NOT NULL, preview TEXT, due INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
	" UNIQUE(user, device, conv));"
	"CREATE INDEX queue_due ON queue(due);";

static int exec(sqlite3 *db, const char *sql)
{
	return sqlutil__status(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	*st = NULL;
	return sqlutil__status(sqlite3_prepare_v2(db, sql, -1, st, NULL));
}

/* Step st to its end and finalize it, whatever happens. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MQC_OK : sqlutil__status(rc == SQLITE_ROW ? SQLITE_ERROR : rc);
}

/* A write's own transaction: BEGIN IMMEDIATE outside the caller's, a
 * SAVEPOINT inside it. *own says which, for write_end. */
static int write_begin(sqlite3 *db, bool *own)
{
	*own = sqlite3_get_autocommit(db) != 0;
	return exec(db, *own ? "BEGIN IMMEDIATE" : "SAVEPOINT push_store");
}

/* Commit (rc MQC_OK) or undo what write_begin started; returns the
 * outcome. */
static int write_end(sqlite3 *db, bool own, int rc)
{
	if(rc == MQC_OK){
		rc = exec(db, own ? "COMMIT" : "RELEASE push_store");
		if(rc == MQC_OK) return MQC_OK;
	}
	if(own){
		exec(db, "ROLLBACK");
	}else{
		exec(db, "ROLLBACK TO push_store");
		exec(db, "RELEASE push_store");
	}
	return rc;
}

/* Run st, its parameters bound (bind_failed: one was not), as a write
 * of its own (write_begin); st is finalized whatever happens. */
static int write_one(sqlite3 *db, sqlite3_stmt *st, int bind_failed)
{
	bool own = false;
	int rc = bind_failed ? MQC_ERR_DB : write_begin(db, &own);

	if(rc != MQC_OK){
		sqlite3_finalize(st);
		return rc;
	}
	return write_end(db, own, run(st));
}

/* ---- opening ---- */

/* Read meta "schema" into *version: 0 when push.db is empty (no meta
 * table), -1 when the row is missing or not a number. */
static int schema_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	int rc;

	*version = 0;
	if(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL) != SQLITE_OK){
		sqlite3_finalize(st);
		return MQC_OK;
	}
	*version = -1;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL){
		if(sscanf((const char *)sqlite3_column_text(st, 0), "%d", version) != 1) *version = -1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? MQC_OK : sqlutil__status(rc);
}

/* Create the schema in an empty push.db, accept this version, refuse any
 * other. Its own write transaction. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char sql[96];
	int rc, version;

	if((rc = exec(db, "BEGIN IMMEDIATE")) != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		return rc;
	}
	rc = schema_version(db, &version);
	if(rc == MQC_OK && version == 0){
		snprintf(sql, sizeof(sql), "INSERT INTO meta(key, value) VALUES('schema', '%d')",
				PUSH_STORE_SCHEMA);
		rc = exec(db, schema_sql);
		if(rc == MQC_OK) rc = exec(db, sql);
		if(rc != MQC_OK){
			mqc_seterr(err, errlen, "%s: cannot create the schema (%s)", path, sqlite3_errmsg(db));
		}
	}else if(rc == MQC_OK && version > PUSH_STORE_SCHEMA){
		sqlutil__newer_error(err, errlen, path, "push store", version, PUSH_STORE_SCHEMA);
		rc = MQC_ERR_SCHEMA;
	}else if(rc == MQC_OK && version != PUSH_STORE_SCHEMA){
		mqc_seterr(err, errlen, "%s: push store schema version %d, this build needs %d", path,
				version, PUSH_STORE_SCHEMA);
		rc = MQC_ERR_SCHEMA;
	}else if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
	}
	return write_end(db, true, rc);
}

/* Make path (0640, as archive.db: the targets are the people's) if it is
 * missing, never through a link. */
static int create_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);

	if(fd >= 0){
		close(fd);
		return MQC_OK;
	}
	if(errno == EEXIST) return MQC_OK;
	mqc_seterr(err, errlen, "%s: %s", path, strerror(errno));
	return MQC_ERR_IO;
}

int push_store_sqlite__open(const char *datadir, struct push_store **out, char *err, size_t errlen)
{
	char path[4096];
	struct push_store_sqlite *s;
	sqlite3 *db = NULL;
	int rc, version = -1;

	*out = NULL;
	if(datadir == NULL || (size_t)snprintf(path, sizeof(path), "%s/%s", datadir, PUSH_STORE_FILE)
			>= sizeof(path)){
		mqc_seterr(err, errlen, "invalid data folder");
		return MQC_ERR_INVAL;
	}
	rc = datadir__sqlite_no_link(path, err, errlen);
	if(rc == MQC_OK) rc = create_file(path, err, errlen);
	if(rc != MQC_OK) return rc;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		rc = sqlutil__status(rc);
		goto fail;
	}
	sqlite3_busy_timeout(db, USERDB_BUSY_TIMEOUT_MS);
	/* WAL: the worker, the push thread and the CLI each have their
	 * connection, and readers never wait for a writer. */
	rc = exec(db, "PRAGMA journal_mode=WAL");
	if(rc == MQC_OK) rc = exec(db, "PRAGMA synchronous=NORMAL");
	if(rc == MQC_OK) rc = exec(db, "PRAGMA temp_store=MEMORY");
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	/* The usual case takes no write lock. */
	rc = schema_version(db, &version);
	if(rc == MQC_OK && version != PUSH_STORE_SCHEMA) rc = migrate(db, path, err, errlen);
	else if(rc != MQC_OK) mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
	if(rc != MQC_OK) goto fail;
	s = calloc(1, sizeof(*s));
	if(s == NULL){
		rc = MQC_ERR_NOMEM;
		goto fail;
	}
	s->ps.ops = &sqlite_ops;
	s->db = db;
	*out = &s->ps;
	return MQC_OK;
fail:
	sqlite3_close_v2(db);
	return rc;
}

static void sq_close(struct push_store *ps)
{
	if(ps == NULL) return;
	sqlite3_close_v2(db_of(ps));
	free((struct push_store_sqlite *)ps);
}

const char *push_store_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	return sqlutil__writable(path, busy_ms, why, whylen);
}

sqlite3 *push_store_sqlite__handle(struct push_store *ps)
{
	return db_of(ps);
}

static int sq_set_busy_ms(struct push_store *ps, int ms)
{
	return sqlutil__status(sqlite3_busy_timeout(db_of(ps), ms));
}

/* ---- targets ---- */

static int sq_target_set(struct push_store *ps, const char *user, const char *device,
		const char *provider, const char *data, const char *secret, int64_t now_ms)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	int rc;

	/* A new registration of the device starts afresh: its jobs stay (they
	 * are the device's), its record of answers does not. */
	rc = prep(db, "INSERT INTO targets(user, device, provider, data, secret, created, last_ok, failures)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, 0) ON CONFLICT(user, device) DO UPDATE SET"
			" provider = excluded.provider, data = excluded.data, secret = excluded.secret,"
			" created = excluded.created, last_ok = 0, failures = 0", &st);
	if(rc != MQC_OK) return rc;
	return write_one(db, st, sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 3, provider, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 4, data, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 5, secret, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 6, now_ms));
}

/* Delete user's targets (and their jobs) that device selects: that one
 * (except false), every one but it (except true), or all (device NULL). */
static int remove_targets(sqlite3 *db, const char *user, const char *device, bool except,
		int *removed)
{
	static const char *const where[2] = {
		" WHERE user = ?1 AND (?2 IS NULL OR device = ?2)",
		" WHERE user = ?1 AND (?2 IS NULL OR device <> ?2)",
	};
	char sql[160];
	sqlite3_stmt *st;
	int rc, n = 0, k;
	bool own;

	if(removed) *removed = 0;
	if(user == NULL) return MQC_ERR_INVAL;
	rc = write_begin(db, &own);
	for(k = 0; rc == MQC_OK && k < 2; k++){
		snprintf(sql, sizeof(sql), "DELETE FROM %s%s", k == 0 ? "queue" : "targets", where[except]);
		rc = prep(db, sql, &st);
		if(rc != MQC_OK) break;
		if(sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC)
				|| (device ? sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC)
					: sqlite3_bind_null(st, 2))){
			sqlite3_finalize(st);
			rc = MQC_ERR_DB;
			break;
		}
		rc = run(st);
		if(k == 1) n = sqlite3_changes(db);
	}
	rc = write_end(db, own, rc);
	if(rc == MQC_OK && removed) *removed = n;
	return rc;
}

static int sq_target_remove(struct push_store *ps, const char *user, const char *device, bool except,
		int *removed)
{
	return remove_targets(db_of(ps), user, device, except, removed);
}

static int sq_user_forget(struct push_store *ps, const char *user)
{
	sqlite3 *db = db_of(ps);

	static const char *const tables[] = {"queue", "targets", "mutes", "prefs"};
	char sql[64];
	sqlite3_stmt *st;
	size_t i;
	bool own;
	int rc;

	if(user == NULL) return MQC_ERR_INVAL;
	rc = write_begin(db, &own);
	for(i = 0; rc == MQC_OK && i < sizeof(tables) / sizeof(tables[0]); i++){
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE user = ?1", tables[i]);
		rc = prep(db, sql, &st);
		if(rc != MQC_OK) break;
		if(sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC) != SQLITE_OK){
			sqlite3_finalize(st);
			rc = MQC_ERR_DB;
			break;
		}
		rc = run(st);
	}
	return write_end(db, own, rc);
}

/* Prepare sql and bind user to ?1. */
static int prep_user(sqlite3 *db, const char *sql, const char *user, sqlite3_stmt **st)
{
	int rc = prep(db, sql, st);

	if(rc == MQC_OK && sqlite3_bind_text(*st, 1, user, -1, SQLITE_STATIC) != SQLITE_OK){
		sqlite3_finalize(*st);
		*st = NULL;
		rc = MQC_ERR_DB;
	}
	return rc;
}

/* The end of a list read by st into arr (s: its last step): *out gets arr
 * if all went well. */
static int json_list_end(sqlite3_stmt *st, int s, int rc, json_t *arr, json_t **out)
{
	if(rc == MQC_OK && s != SQLITE_DONE) rc = sqlutil__status(s);
	sqlite3_finalize(st);
	if(rc != MQC_OK){
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return MQC_OK;
}

static int sq_targets_json(struct push_store *ps, const char *user, json_t **out)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	json_t *arr = json_array();
	int rc, s;

	*out = NULL;
	if(arr == NULL) return MQC_ERR_NOMEM;
	rc = prep_user(db, "SELECT device, provider, created, last_ok, failures FROM targets"
			" WHERE user = ?1 ORDER BY device", user, &st);
	while(rc == MQC_OK && (s = sqlite3_step(st)) == SQLITE_ROW){
		rc = push_store_target_append(arr, (const char *)sqlite3_column_text(st, 0),
				(const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
				sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4));
	}
	return json_list_end(st, s, rc, arr, out);
}

/* Copy the text of column i into out (n bytes), "" if NULL. */
static void column_copy(sqlite3_stmt *st, int i, char *out, size_t n)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, n, "%s", s ? (const char *)s : "");
}

static int sq_targets(struct push_store *ps, const char *user, struct push_target **out, int *n)
{
	sqlite3 *db = db_of(ps);
	struct push_target *v = NULL, *t;
	sqlite3_stmt *st;
	int rc, s, cap = 0, i;

	*out = NULL;
	*n = 0;
	rc = prep_user(db, "SELECT device, provider, data, secret FROM targets WHERE user = ?1"
			" ORDER BY device", user, &st);
	while(rc == MQC_OK && (s = sqlite3_step(st)) == SQLITE_ROW){
		const char *data = (const char *)sqlite3_column_text(st, 2);

		if(*n == cap){
			cap = cap ? 2 * cap : 4;
			t = realloc(v, (size_t)cap * sizeof(*v));
			if(t == NULL){
				rc = MQC_ERR_NOMEM;
				break;
			}
			v = t;
		}
		t = &v[*n];
		memset(t, 0, sizeof(*t));
		snprintf(t->user, sizeof(t->user), "%s", user);
		column_copy(st, 0, t->device, sizeof(t->device));
		t->provider = (enum push_provider)push_store_provider_parse(
				(const char *)sqlite3_column_text(st, 1));
		column_copy(st, 3, t->secret, sizeof(t->secret));
		t->data = data ? json_loads(data, 0, NULL) : NULL;
		/* A row this code did not write is skipped, not sent to. */
		if(t->provider == 0 || !json_is_object(t->data)){
			json_decref(t->data);
			continue;
		}
		(*n)++;
	}
	if(rc == MQC_OK && s != SQLITE_DONE) rc = sqlutil__status(s);
	sqlite3_finalize(st);
	if(rc != MQC_OK){
		for(i = 0; i < *n; i++) push_store__target_free(&v[i]);
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return MQC_OK;
}

/* The one integer a query on user (?1) gives into *v (dflt with no row). */
static int user_int(sqlite3 *db, const char *sql, const char *user, int64_t dflt, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = prep_user(db, sql, user, &st), s;

	*v = dflt;
	if(rc != MQC_OK) return rc;
	s = sqlite3_step(st);
	if(s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) *v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return s == SQLITE_ROW || s == SQLITE_DONE ? MQC_OK : sqlutil__status(s);
}

static int sq_target_count(struct push_store *ps, const char *user, int *n)
{
	sqlite3 *db = db_of(ps);
	int64_t v;
	int rc = user_int(db, "SELECT count(*) FROM targets WHERE user = ?1", user, 0, &v);

	*n = (int)v;
	return rc;
}

/* One write statement on user (?1) and, as far as sql numbers them, text
 * (?2, may be NULL) and two integers (?3, ?4). */
static int user_write(sqlite3 *db, const char *sql, const char *user, const char *text,
		int64_t a, int64_t b)
{
	sqlite3_stmt *st;
	int rc = prep_user(db, sql, user, &st), np;

	if(rc != MQC_OK) return rc;
	np = sqlite3_bind_parameter_count(st);
	return write_one(db, st, (np >= 2 && (text ? sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC)
				: sqlite3_bind_null(st, 2)))
			|| (np >= 3 && sqlite3_bind_int64(st, 3, a)) || (np >= 4 && sqlite3_bind_int64(st, 4, b)));
}

/* A target removed meanwhile has nothing to record: MQC_OK all the same. */
static int sq_target_result(struct push_store *ps, const char *user, const char *device, bool ok,
		int64_t now_ms)
{
	sqlite3 *db = db_of(ps);

	return user_write(db, ok ? "UPDATE targets SET last_ok = ?3, failures = 0 WHERE user = ?1 AND device = ?2"
			: "UPDATE targets SET failures = failures + 1 WHERE user = ?1 AND device = ?2",
			user, device, now_ms, 0);
}

/* ---- mutes and previews ---- */

static int sq_mute(struct push_store *ps, const char *user, const char *conv, int64_t until_ms)
{
	sqlite3 *db = db_of(ps);

	if(conv == NULL || until_ms < 0) return MQC_ERR_INVAL;
	return user_write(db, "INSERT OR REPLACE INTO mutes(user, conv, until) VALUES(?1, ?2, ?3)",
			user, conv, until_ms, 0);
}

static int sq_unmute(struct push_store *ps, const char *user, const char *conv)
{
	sqlite3 *db = db_of(ps);

	if(conv == NULL) return MQC_ERR_INVAL;
	return user_write(db, "DELETE FROM mutes WHERE user = ?1 AND conv = ?2", user, conv, 0, 0);
}

static int sq_mutes_json(struct push_store *ps, const char *user, int64_t now_ms, json_t **out)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	json_t *arr = json_array();
	int rc, s = SQLITE_DONE;

	*out = NULL;
	if(arr == NULL) return MQC_ERR_NOMEM;
	rc = prep_user(db, "SELECT conv, until FROM mutes WHERE user = ?1 AND (until = 0 OR until > ?2)"
			" ORDER BY conv", user, &st);
	if(rc == MQC_OK && sqlite3_bind_int64(st, 2, now_ms)) rc = MQC_ERR_DB;
	while(rc == MQC_OK && (s = sqlite3_step(st)) == SQLITE_ROW){
		rc = push_store_mute_append(arr, (const char *)sqlite3_column_text(st, 0),
				sqlite3_column_int64(st, 1));
	}
	return json_list_end(st, s, rc, arr, out);
}

/* On a read error: not muted (a notification too many, never one lost). */
static bool sq_muted(struct push_store *ps, const char *user, const char *conv, int64_t now_ms)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	bool muted = false;

	if(conv == NULL || prep_user(db, "SELECT 1 FROM mutes WHERE user = ?1 AND conv = ?2"
				" AND (until = 0 OR until > ?3)", user, &st) != MQC_OK){
		return false;
	}
	if(sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC) == SQLITE_OK
			&& sqlite3_bind_int64(st, 3, now_ms) == SQLITE_OK){
		muted = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return muted;
}

static int sq_previews_set(struct push_store *ps, const char *user, bool on)
{
	sqlite3 *db = db_of(ps);

	return user_write(db, "INSERT OR REPLACE INTO prefs(user, previews) VALUES(?1, ?3)", user, NULL, on ? 1 : 0, 0);
}

/* On a read error: off (no text leaves by mistake). */
static bool sq_previews(struct push_store *ps, const char *user)
{
	sqlite3 *db = db_of(ps);
	int64_t v = 0;

	if(user_int(db, "SELECT previews FROM prefs WHERE user = ?1", user, 0, &v) != MQC_OK) return false;
	return v != 0;
}

/* ---- the queue ---- */

static int sq_enqueue(struct push_store *ps, const char *user, const char *device,
		const char *conv, int64_t seq, const char *msg_id, const char *sender,
		const char *preview, int64_t due_ms)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	int rc;

	if(user == NULL || device == NULL || conv == NULL || msg_id == NULL || sender == NULL){
		return MQC_ERR_INVAL;
	}
	rc = prep(db, "INSERT INTO queue(user, device, conv, count, last_seq, msg_id, sender, preview,"
			" due, attempts, created) VALUES(?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, 0, ?9)"
			" ON CONFLICT(user, device, conv) DO UPDATE SET count = count + 1,"
			" last_seq = excluded.last_seq, msg_id = excluded.msg_id, sender = excluded.sender,"
			" preview = excluded.preview", &st);
	if(rc != MQC_OK) return rc;
	return write_one(db, st, sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 3, conv, -1, SQLITE_STATIC)
			|| sqlite3_bind_int64(st, 4, seq)
			|| sqlite3_bind_text(st, 5, msg_id, -1, SQLITE_STATIC)
			|| sqlite3_bind_text(st, 6, sender, -1, SQLITE_STATIC)
			|| (preview ? sqlite3_bind_text(st, 7, preview, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 7))
			|| sqlite3_bind_int64(st, 8, due_ms)
			|| sqlite3_bind_int64(st, 9, time__now_ms()));
}

static int sq_due(struct push_store *ps, int64_t now_ms, struct push_job *jobs, int max, int *n)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	int rc, s = SQLITE_DONE, i;

	*n = 0;
	if(max <= 0) return MQC_OK;
	rc = prep(db, "SELECT id, user, device, conv, count, last_seq, msg_id, sender, preview, attempts,"
			" due FROM queue WHERE due <= ?1 ORDER BY due, id LIMIT ?2", &st);
	if(rc != MQC_OK) return rc;
	if(sqlite3_bind_int64(st, 1, now_ms) || sqlite3_bind_int(st, 2, max)) rc = MQC_ERR_DB;
	while(rc == MQC_OK && *n < max && (s = sqlite3_step(st)) == SQLITE_ROW){
		struct push_job *j = &jobs[*n];
		const unsigned char *preview = sqlite3_column_text(st, 8);

		memset(j, 0, sizeof(*j));
		j->id = sqlite3_column_int64(st, 0);
		column_copy(st, 1, j->user, sizeof(j->user));
		column_copy(st, 2, j->device, sizeof(j->device));
		column_copy(st, 3, j->conv, sizeof(j->conv));
		j->count = sqlite3_column_int(st, 4);
		j->last_seq = sqlite3_column_int64(st, 5);
		column_copy(st, 6, j->msg_id, sizeof(j->msg_id));
		column_copy(st, 7, j->sender, sizeof(j->sender));
		j->attempts = sqlite3_column_int(st, 9);
		j->due = sqlite3_column_int64(st, 10);
		(*n)++;
		if(preview && (j->preview = strdup((const char *)preview)) == NULL) rc = MQC_ERR_NOMEM;
	}
	if(rc == MQC_OK && s != SQLITE_DONE && s != SQLITE_ROW) rc = sqlutil__status(s);
	sqlite3_finalize(st);
	if(rc != MQC_OK){
		for(i = 0; i < *n; i++) push_store__job_free(&jobs[i]);
		*n = 0;
	}
	return rc;
}

static int sq_next_due(struct push_store *ps, int64_t *due_ms)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT min(due) FROM queue", &st), s;

	*due_ms = 0;
	if(rc != MQC_OK) return rc;
	s = sqlite3_step(st);
	if(s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) *due_ms = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return s == SQLITE_ROW || s == SQLITE_DONE ? MQC_OK : sqlutil__status(s);
}

/* One write statement on a job: ?1 its id, ?2 (if sql has it) v. */
static int job_write(sqlite3 *db, const char *sql, int64_t id, int64_t v)
{
	sqlite3_stmt *st;
	int rc = prep(db, sql, &st);

	if(rc != MQC_OK) return rc;
	return write_one(db, st, sqlite3_bind_int64(st, 1, id)
			|| (sqlite3_bind_parameter_count(st) >= 2 && sqlite3_bind_int64(st, 2, v)));
}

static int sq_job_done(struct push_store *ps, int64_t id)
{
	sqlite3 *db = db_of(ps);

	return job_write(db, "DELETE FROM queue WHERE id = ?1", id, 0);
}

static int sq_job_sent(struct push_store *ps, const struct push_job *j)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	bool own;
	int rc, k;

	rc = write_begin(db, &own);
	for(k = 0; rc == MQC_OK && k < 2; k++){
		rc = prep(db, k == 0 ? "DELETE FROM queue WHERE id = ?1 AND last_seq = ?2"
				: "UPDATE queue SET count = max(count - ?3, 1), attempts = 0 WHERE id = ?1"
				" AND last_seq <> ?2", &st);
		if(rc != MQC_OK) break;
		if(sqlite3_bind_int64(st, 1, j->id) || sqlite3_bind_int64(st, 2, j->last_seq)
				|| (k == 1 && sqlite3_bind_int(st, 3, j->count))){
			sqlite3_finalize(st);
			rc = MQC_ERR_DB;
			break;
		}
		rc = run(st);
		if(rc == MQC_OK && k == 0 && sqlite3_changes(db) > 0) break;   /* nothing came meanwhile */
	}
	return write_end(db, own, rc);
}

static int sq_job_retry(struct push_store *ps, int64_t id, int64_t due_ms)
{
	sqlite3 *db = db_of(ps);

	return job_write(db, "UPDATE queue SET due = ?2, attempts = attempts + 1 WHERE id = ?1", id, due_ms);
}

static int sq_jobs_drop(struct push_store *ps, const char *user, const char *conv)
{
	sqlite3 *db = db_of(ps);

	return user_write(db, "DELETE FROM queue WHERE user = ?1 AND (?2 IS NULL OR conv = ?2)",
			user, conv, 0, 0);
}

/* ---- transactions and the cursor ---- */

static int sq_begin(struct push_store *ps)
{
	sqlite3 *db = db_of(ps);

	return exec(db, "BEGIN IMMEDIATE");
}

static int sq_commit(struct push_store *ps)
{
	int rc = exec(db_of(ps), "COMMIT");

	if(rc != MQC_OK) push_store__rollback(ps);
	return rc;
}

static void sq_rollback(struct push_store *ps)
{
	sqlite3 *db = db_of(ps);

	if(!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
}

static int sq_cursor(struct push_store *ps, int64_t *seq)
{
	sqlite3 *db = db_of(ps);
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'cursor'", &st), s;

	*seq = 0;
	if(rc != MQC_OK) return rc;
	s = sqlite3_step(st);
	if(s == SQLITE_ROW) *seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return s == SQLITE_ROW || s == SQLITE_DONE ? MQC_OK : sqlutil__status(s);
}

static int sq_set_cursor(struct push_store *ps, int64_t seq)
{
	sqlite3 *db = db_of(ps);
	char v[24];

	snprintf(v, sizeof(v), "%lld", (long long)seq);
	return user_write(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", "cursor", v,
			0, 0);
}

static const struct push_store_ops sqlite_ops = {
	.close = sq_close,
	.set_busy_ms = sq_set_busy_ms,
	.target_set = sq_target_set,
	.target_remove = sq_target_remove,
	.user_forget = sq_user_forget,
	.targets_json = sq_targets_json,
	.targets = sq_targets,
	.target_count = sq_target_count,
	.target_result = sq_target_result,
	.mute = sq_mute,
	.unmute = sq_unmute,
	.mutes_json = sq_mutes_json,
	.muted = sq_muted,
	.previews_set = sq_previews_set,
	.previews = sq_previews,
	.enqueue = sq_enqueue,
	.due = sq_due,
	.next_due = sq_next_due,
	.job_done = sq_job_done,
	.job_sent = sq_job_sent,
	.job_retry = sq_job_retry,
	.jobs_drop = sq_jobs_drop,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.cursor = sq_cursor,
	.set_cursor = sq_set_cursor,
};
