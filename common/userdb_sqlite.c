/* userdb_sqlite.c - the user store in an SQLite file, auth.db (see
 * userdb.h; userdb.c calls these through userdb_sqlite__ops). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "devtoken.h"
#include "enumname.h"
#include "envelope.h"
#include "settings.h"
#include "err.h"
#include "sqlutil.h"
#include "timeutil.h"
#include "userdb.h"
#include "userdb_sqlite.h"
#include "userdb_store.h"

static const struct userdb_ops userdb_sqlite__ops;

/* An open auth.db: the handle userdb.c passes around, and the connection. */
struct userdb_sqlite {
	struct userdb udb;
	sqlite3 *db;
};

static sqlite3 *db_of(struct userdb *udb)
{
	return ((struct userdb_sqlite *)udb)->db;
}

sqlite3 *userdb_sqlite__handle(struct userdb *udb)
{
	return db_of(udb);
}

/* The schema, generated at build time from common/userdb_schema.sql. */
#include "userdb_schema.inc"

/* Run one statement that returns no rows. */
static int exec(struct userdb *udb, const char *sql)
{
	return sqlutil__status(sqlite3_exec(db_of(udb), sql, NULL, NULL, NULL));
}

/* Every table must be there: a half-made or foreign file is refused.
 * V1_TABLES are those of version 1, read as they were by every release. */
#define V1_TABLES \
	"SELECT name, kind, nick, pwhash, enabled, created FROM users LIMIT 0;" \
	"SELECT name, retention_days, created FROM rooms LIMIT 0;" \
	"SELECT room, user FROM members LIMIT 0;" \
	"SELECT user, blocked FROM blocks LIMIT 0;" \
	"SELECT code, uses_left, expires, created FROM invites LIMIT 0;"
#define V2_TABLES V1_TABLES "SELECT name, created, deleted FROM retired LIMIT 0;"
#define V3_TABLES V2_TABLES \
	"SELECT user, device, token_sha256, created, last_seen FROM devices LIMIT 0;" \
	"SELECT user, presence, room_adds FROM privacy LIMIT 0;" \
	"SELECT user, contact, since FROM contacts LIMIT 0;" \
	"SELECT key, value FROM settings LIMIT 0;" \
	"SELECT room, owner, title, description FROM room_meta LIMIT 0;" \
	"SELECT room, user, since FROM room_admins LIMIT 0;" \
	"SELECT room, user, since FROM room_joined LIMIT 0;" \
	"SELECT name, deleted FROM rooms_retired LIMIT 0;"

static int check_tables(struct userdb *udb, const char *sql, char *err, size_t errlen)
{
	if(sqlite3_exec(db_of(udb), sql, NULL, NULL, NULL) != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: wrong schema (%s)", udb->path, sqlite3_errmsg(db_of(udb)));
		return MQC_ERR_SCHEMA;
	}
	return MQC_OK;
}

/* Upgrade a store of version from (1 or 2) to this version in one
 * transaction: the schema file again (each statement is idempotent: it
 * adds what an older version lacks) and the new version number.
 * Everything already stored stays as it is. Another process may upgrade at
 * the same time: the version is read again under the write lock. */
static int upgrade(struct userdb *udb, int from, char *err, size_t errlen)
{
	char sql[96];
	bool prepared;
	int rc, version;

	rc = exec(udb, "BEGIN IMMEDIATE");
	if(rc == MQC_OK){
		rc = sqlutil__status(sqlutil__schema_version(db_of(udb), &version, &prepared));
		if(rc == MQC_OK && version == from){
			snprintf(sql, sizeof(sql), "UPDATE meta SET value='%d' WHERE key='schema_version'",
					USERDB_SCHEMA_VERSION);
			rc = exec(udb, schema_sql);
			if(rc == MQC_OK) rc = exec(udb, sql);
		}
	}
	if(rc == MQC_OK) rc = exec(udb, "COMMIT");
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: cannot upgrade the store from schema version %d to %d (%s)",
				udb->path, from, USERDB_SCHEMA_VERSION, sqlite3_errmsg(db_of(udb)));
		userdb__rollback(udb);
		return rc;
	}
	/* Nothing any reader uses has changed: not a change for the broker to
	 * apply before the command that opened the store may return. */
	udb->committed_ns = 0;
	return MQC_OK;
}

static int check_schema(struct userdb *udb, int flags, char *err, size_t errlen)
{
	int rc, version;
	bool prepared;

	rc = sqlutil__schema_version(db_of(udb), &version, &prepared);
	if(!prepared){
		mqc_seterr(err, errlen, "%s: not an mqchat user store (%s)", udb->path, sqlite3_errmsg(db_of(udb)));
		return rc == SQLITE_BUSY ? MQC_ERR_BUSY : MQC_ERR_SCHEMA;
	}
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", udb->path, sqlite3_errstr(rc));
		return sqlutil__status(rc);
	}
	if(version == USERDB_SCHEMA_VERSION_V1 || version == USERDB_SCHEMA_VERSION_V2){
		/* A previous release's store: its tables are read as before, so a
		 * reader takes it as it is (with no devices); a writer upgrades
		 * it. */
		rc = check_tables(udb, version == USERDB_SCHEMA_VERSION_V1 ? V1_TABLES : V2_TABLES,
				err, errlen);
		udb->version = version;
		if(rc != MQC_OK || (flags & USERDB_READONLY)) return rc;
		rc = upgrade(udb, version, err, errlen);
		if(rc != MQC_OK) return rc;
		version = USERDB_SCHEMA_VERSION;
	}
	udb->version = version;
	if(version > USERDB_SCHEMA_VERSION){
		sqlutil__newer_error(err, errlen, udb->path, "user store", version, USERDB_SCHEMA_VERSION);
		return MQC_ERR_SCHEMA;
	}
	if(version != USERDB_SCHEMA_VERSION){
		mqc_seterr(err, errlen, "%s: schema version %d, this build needs %d", udb->path,
				version, USERDB_SCHEMA_VERSION);
		return MQC_ERR_SCHEMA;
	}
	return check_tables(udb, V3_TABLES, err, errlen);
}

/* SQLite's own checkpoint threshold (pages), which a WAL hook replaces. */
#define USERDB_WAL_AUTOCHECKPOINT 1000

/* Called by SQLite after each commit is done and its write lock released:
 * from now on every new reader sees it. Remember when, and checkpoint as
 * SQLite's default hook would. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct userdb *udb = arg;

	udb->committed_ns = time__mono_ns();
	if(frames >= USERDB_WAL_AUTOCHECKPOINT) (void)sqlite3_wal_checkpoint(db, name);
	return SQLITE_OK;
}

int userdb_sqlite__open(const char *path, int flags, struct userdb **out, char *err, size_t errlen)
{
	struct userdb_sqlite *s;
	struct userdb *udb;
	struct stat st;
	int rc, oflags;

	*out = NULL;
	if(path == NULL || strlen(path) >= sizeof(udb->path)){
		mqc_seterr(err, errlen, "invalid user store path");
		return MQC_ERR_INVAL;
	}
	if(!(flags & USERDB_CREATE) && stat(path, &st) != 0){
		mqc_seterr(err, errlen, "%s: no such file (create it with `mqchat-archiver --data DIR init`)", path);
		return MQC_ERR_NOTFOUND;
	}
	s = calloc(1, sizeof(*s));
	if(s == NULL) return MQC_ERR_NOMEM;
	udb = &s->udb;
	udb->ops = &userdb_sqlite__ops;
	snprintf(udb->path, sizeof(udb->path), "%s", path);

	oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if(flags & USERDB_CREATE) oflags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
	if(rc != SQLITE_OK){
		mqc_seterr(err, errlen, "%s: %s", path, db_of(udb) ? sqlite3_errmsg(db_of(udb)) : sqlite3_errstr(rc));
		userdb__close(udb);
		return rc == SQLITE_CANTOPEN ? MQC_ERR_IO : MQC_ERR_DB;
	}
	sqlite3_busy_timeout(db_of(udb), USERDB_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db_of(udb), 0);
	sqlite3_wal_hook(db_of(udb), wal_hook, udb);

	/* WAL lets the broker read while the CLI writes; NORMAL is durable
	 * against a crashed process, and a power cut can only lose the last
	 * commits, never corrupt the file. */
	rc = exec(udb, "PRAGMA journal_mode=WAL;");
	if(rc == MQC_OK) rc = exec(udb, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(db_of(udb)));
		userdb__close(udb);
		return rc == MQC_ERR_DB ? MQC_ERR_SCHEMA : rc;
	}
	if((flags & USERDB_CREATE) && !(flags & USERDB_READONLY)){
		rc = exec(udb, schema_sql);
		if(rc != MQC_OK){
			mqc_seterr(err, errlen, "%s: cannot create the schema (%s)", path, sqlite3_errmsg(db_of(udb)));
			userdb__close(udb);
			return rc;
		}
	}
	rc = check_schema(udb, flags, err, errlen);
	if(rc != MQC_OK){
		userdb__close(udb);
		return rc;
	}
	*out = udb;
	return MQC_OK;
}

const char *userdb_sqlite__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	return sqlutil__writable(path, busy_ms, why, whylen);
}

static void sqlite_close(struct userdb *udb)
{
	struct userdb_sqlite *s = (struct userdb_sqlite *)udb;

	if(s->db) sqlite3_close_v2(s->db);
	free(s);
}

static void sqlite_set_busy_ms(struct userdb *udb, int ms)
{
	sqlite3_busy_timeout(db_of(udb), ms);
}

static int sqlite_begin_read(struct userdb *udb) { return exec(udb, "BEGIN DEFERRED"); }
static int sqlite_begin_write(struct userdb *udb) { return exec(udb, "BEGIN IMMEDIATE"); }
static int sqlite_commit(struct userdb *udb) { return exec(udb, "COMMIT"); }
static void sqlite_rollback(struct userdb *udb)
{
	if(!sqlite3_get_autocommit(db_of(udb))) sqlite3_exec(db_of(udb), "ROLLBACK", NULL, NULL, NULL);
}

static const char *sqlite_errmsg(struct userdb *udb)
{
	return db_of(udb) ? sqlite3_errmsg(db_of(udb)) : "no database";
}

static int sqlite_data_version(struct userdb *udb, int64_t *version)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db_of(udb), "PRAGMA data_version", -1, &st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW) *version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? MQC_OK : sqlutil__status(rc);
}

/* Nothing of its own to tell of changes: the loader watches the file and
 * its -wal with inotify (plugin/loader.c, "Noticing changes"). */
static int sqlite_watch_fd(struct userdb *udb)
{
	(void)udb;
	return -1;
}

static int sqlite_watch_drain(struct userdb *udb, userdb_told_fn *told, void *arg)
{
	(void)udb;
	(void)told;
	(void)arg;
	return MQC_OK;
}

/* One broker reads the file: the mark of common/applied.h says when it
 * has a change in force. */
static int sqlite_node_applied(struct userdb *udb, const char *node, int64_t version)
{
	(void)udb;
	(void)node;
	(void)version;
	return MQC_ERR_INVAL;
}

static int sqlite_in_force_version(struct userdb *udb, int64_t *version)
{
	(void)udb;
	*version = INT64_MAX;   /* one node: its file mark says (common/applied.h) */
	return MQC_OK;
}

/* ---- statement helpers ----
 * run(): prepare, bind the given texts (NULL binds NULL), step to DONE.
 * Each statement runs rarely (CLI, RPC), so preparing per call is fine. */

static int prepare_bind(struct userdb *udb, const char *sql, sqlite3_stmt **st,
		int n, const char *const *args)
{
	int rc, i;

	rc = sqlite3_prepare_v2(db_of(udb), sql, -1, st, NULL);
	if(rc != SQLITE_OK) return sqlutil__status(rc);
	for(i=0; i<n; i++){
		rc = args[i] ? sqlite3_bind_text(*st, i + 1, args[i], -1, SQLITE_STATIC)
			: sqlite3_bind_null(*st, i + 1);
		if(rc != SQLITE_OK){
			sqlite3_finalize(*st);
			*st = NULL;
			return sqlutil__status(rc);
		}
	}
	return MQC_OK;
}

/* Step a prepared statement to completion; *changes gets the rows changed. */
static int finish(struct userdb *udb, sqlite3_stmt *st, int *changes)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if(changes) *changes = sqlite3_changes(db_of(udb));
	if(rc == SQLITE_DONE || rc == SQLITE_ROW) return MQC_OK;
	return sqlutil__status(rc);
}

static int run(struct userdb *udb, const char *sql, int *changes, int n, const char *const *args)
{
	sqlite3_stmt *st;
	int rc = prepare_bind(udb, sql, &st, n, args);

	if(rc) return rc;
	return finish(udb, st, changes);
}

/* Run a one-row UPDATE/DELETE by key: MQC_ERR_NOTFOUND if no row changed. */
static int run_one(struct userdb *udb, const char *sql, int n, const char *const *args)
{
	int changes = 0, rc = run(udb, sql, &changes, n, args);

	if(rc) return rc;
	return changes > 0 ? MQC_OK : MQC_ERR_NOTFOUND;
}

/* run with an integer after the n texts: parameter n + 1 is v. */
static int run_int64(struct userdb *udb, const char *sql, int n, const char *const *args, int64_t v)
{
	sqlite3_stmt *st;
	int rc = prepare_bind(udb, sql, &st, n, args);

	if(rc) return rc;
	if(sqlite3_bind_int64(st, n + 1, v) != SQLITE_OK){
		sqlite3_finalize(st);
		return MQC_ERR_DB;
	}
	return finish(udb, st, NULL);
}

/* run and run_one for the many statements of two text parameters, a row
 * (a, b) of a two-column relation such as members or blocks. */
static int run_pair(struct userdb *udb, const char *sql, const char *a, const char *b)
{
	const char *args[2] = {a, b};

	return run(udb, sql, NULL, 2, args);
}

static int run_pair_one(struct userdb *udb, const char *sql, const char *a, const char *b)
{
	const char *args[2] = {a, b};

	return run_one(udb, sql, 2, args);
}

static bool exists(struct userdb *udb, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *st;
	const char *args[2] = {a, b};
	bool found;

	if(prepare_bind(udb, sql, &st, b ? 2 : 1, args)) return false;
	found = (sqlite3_step(st) == SQLITE_ROW);
	sqlite3_finalize(st);
	return found;
}

/* End a look-up of one row by key: finalize st, then MQC_OK if rc (the
 * step) found the row, MQC_ERR_NOTFOUND if there was none, or rc's MQC_ERR_*. */
static int row_end(sqlite3_stmt *st, int rc)
{
	sqlite3_finalize(st);
	if(rc == SQLITE_ROW) return MQC_OK;
	return rc == SQLITE_DONE ? MQC_ERR_NOTFOUND : sqlutil__status(rc);
}

/* End a walk over st's rows (the *_each functions): finalize st, then
 * return crc, the callback's non-zero answer that stopped the walk, or
 * MQC_OK if rc (the last step) is SQLITE_DONE, or rc's MQC_ERR_*. */
static int walk_end(sqlite3_stmt *st, int rc, int crc)
{
	sqlite3_finalize(st);
	if(crc) return crc;
	return rc == SQLITE_DONE ? MQC_OK : sqlutil__status(rc);
}

static bool user_exists(struct userdb *udb, const char *name)
{
	return exists(udb, "SELECT 1 FROM users WHERE name=?", name, NULL);
}

static bool room_exists(struct userdb *udb, const char *room)
{
	return exists(udb, "SELECT 1 FROM rooms WHERE name=?", room, NULL);
}

/* ---- users ---- */

/* The one integer of a one-row query on one text argument: MQC_OK,
 * MQC_ERR_NOTFOUND (no row) or an MQC_ERR_* of SQLite. */
static int get_int64(struct userdb *udb, const char *sql, const char *arg, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_bind(udb, sql, &st, 1, &arg);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
	return row_end(st, rc);
}

static int sqlite_retired_get(struct userdb *udb, const char *name, int64_t *created, int64_t *deleted)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_bind(udb, "SELECT created, deleted FROM retired WHERE name=?", &st, 1, &name);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		*created = sqlite3_column_int64(st, 0);
		*deleted = sqlite3_column_int64(st, 1);
	}
	return row_end(st, rc);
}

static int sqlite_retired_each(struct userdb *udb,
		int (*cb)(const char *name, int64_t created, int64_t deleted, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	if(!exists(udb, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", "retired", NULL)){
		return MQC_OK;   /* version 1, read as it is */
	}
	rc = prepare_bind(udb, "SELECT name, created, deleted FROM retired ORDER BY name", &st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
				sqlite3_column_int64(st, 2), arg);
	}
	return walk_end(st, rc, crc);
}

/* Insert the account with this created time, and forget the name's
 * retired row: it has a holder again. */
static int insert_user(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash, int64_t created)
{
	const char *args[4];
	int rc;

	args[0] = name;
	args[1] = user_kind__name(kind);
	args[2] = nick;
	args[3] = pwhash;
	rc = run_int64(udb, "INSERT INTO users(name, kind, nick, pwhash, enabled, created)"
			" VALUES(?, ?, ?, ?, 1, ?)", 4, args, created);
	if(rc) return rc;
	return run(udb, "DELETE FROM retired WHERE name=?", NULL, 1, &name);
}

static int sqlite_user_add(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	int rc;

	rc = userdb__name_free(udb, name);
	if(rc) return rc;
	return insert_user(udb, name, kind, nick, pwhash, time__now_ms());
}

static int sqlite_user_restore(struct userdb *udb, const char *name, enum user_kind kind,
		const char *nick, const char *pwhash)
{
	int64_t created;
	int rc;

	rc = get_int64(udb, "SELECT created FROM users WHERE name=?", name, &created);
	if(rc != MQC_ERR_NOTFOUND) return rc == MQC_OK ? MQC_ERR_EXISTS : rc;
	rc = get_int64(udb, "SELECT created FROM retired WHERE name=?", name, &created);
	if(rc) return rc;
	return insert_user(udb, name, kind, nick, pwhash, created);
}

static void row_to_user(sqlite3_stmt *st, struct userdb_user *u)
{
	const char *s;

	memset(u, 0, sizeof(*u));
	s = (const char *)sqlite3_column_text(st, 0);
	snprintf(u->name, sizeof(u->name), "%s", s ? s : "");
	u->kind = user_kind__parse((const char *)sqlite3_column_text(st, 1));
	s = (const char *)sqlite3_column_text(st, 2);
	snprintf(u->nick, sizeof(u->nick), "%s", s ? s : "");
	s = (const char *)sqlite3_column_text(st, 3);
	snprintf(u->pwhash, sizeof(u->pwhash), "%s", s ? s : "");
	u->enabled = sqlite3_column_int(st, 4) != 0;
	u->created = sqlite3_column_int64(st, 5);
}

#define USER_COLS "name, kind, nick, pwhash, enabled, created"

static int sqlite_user_get(struct userdb *udb, const char *name, struct userdb_user *out)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_bind(udb, "SELECT " USER_COLS " FROM users WHERE name=?", &st, 1, &name);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		row_to_user(st, out);
		sqlite3_finalize(st);
		return MQC_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? MQC_ERR_NOTFOUND : sqlutil__status(rc);
}

static int sqlite_user_set_enabled(struct userdb *udb, const char *name, bool enabled)
{
	const char *args[2] = {enabled ? "1" : "0", name};
	return run_one(udb, "UPDATE users SET enabled=CAST(? AS INTEGER) WHERE name=?", 2, args);
}

static int sqlite_user_set_pwhash(struct userdb *udb, const char *name, const char *pwhash)
{
	const char *args[2] = {pwhash, name};

	if(pwhash__is_secret(pwhash)){
		return run_one(udb, "UPDATE users SET pwhash=? WHERE name=? AND kind='service'", 2, args);
	}
	return run_one(udb, "UPDATE users SET pwhash=? WHERE name=?", 2, args);
}

static int sqlite_user_set_nick(struct userdb *udb, const char *name, const char *nick)
{
	const char *args[2] = {nick, name};

	return run_one(udb, "UPDATE users SET nick=? WHERE name=?", 2, args);
}

static int sqlite_user_del(struct userdb *udb, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	/* The name is retired first, with the account's created: the next
	 * account of that name is someone else (userdb__name_free), unless an
	 * operator restores this one (userdb__user_restore). */
	rc = prepare_bind(udb, "INSERT OR REPLACE INTO retired(name, created, deleted)"
			" SELECT name, created, ? FROM users WHERE name=?", &st, 0, NULL);
	if(rc) return rc;
	if(sqlite3_bind_int64(st, 1, time__now_ms()) != SQLITE_OK
			|| sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC) != SQLITE_OK){
		sqlite3_finalize(st);
		return MQC_ERR_DB;
	}
	rc = finish(udb, st, NULL);
	/* The rooms it owned have no owner until an admin or member leaves
	 * or an operator acts; its admin rows go (the schema says why these
	 * two are not cascades). */
	if(rc == MQC_OK) rc = run(udb, "UPDATE room_meta SET owner=NULL WHERE owner=?", NULL, 1, &name);
	if(rc == MQC_OK) rc = run(udb, "DELETE FROM room_admins WHERE user=?", NULL, 1, &name);
	if(rc) return rc;
	/* Memberships and blocks go with the row (ON DELETE CASCADE). */
	return run_one(udb, "DELETE FROM users WHERE name=?", 1, &name);
}

static int sqlite_user_each(struct userdb *udb,
		int (*cb)(const struct userdb_user *user, void *arg), void *arg)
{
	sqlite3_stmt *st;
	struct userdb_user u;
	int rc, crc = 0;

	rc = prepare_bind(udb, "SELECT " USER_COLS " FROM users ORDER BY name", &st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		row_to_user(st, &u);
		crc = cb(&u, arg);
	}
	return walk_end(st, rc, crc);
}

/* ---- rooms ---- */

static int sqlite_room_retired_get(struct userdb *udb, const char *room, int64_t *deleted)
{
	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_ERR_NOTFOUND;
	return get_int64(udb, "SELECT deleted FROM rooms_retired WHERE name=?", room, deleted);
}

static int sqlite_room_create(struct userdb *udb, const char *room, int retention_days)
{
	sqlite3_stmt *st;
	int rc;

	rc = userdb__room_name_free(udb, room);
	if(rc) return rc;
	rc = prepare_bind(udb, "INSERT INTO rooms(name, retention_days, created) VALUES(?, ?, ?)",
			&st, 1, &room);
	if(rc) return rc;
	sqlite3_bind_int(st, 2, retention_days > 0 ? retention_days : 0);
	sqlite3_bind_int64(st, 3, time__now_ms());
	rc = finish(udb, st, NULL);
	if(rc) return rc;
	/* The name has a holder again. */
	return run(udb, "DELETE FROM rooms_retired WHERE name=?", NULL, 1, &room);
}

static int sqlite_room_del(struct userdb *udb, const char *room)
{
	const char *args[1] = {room};
	int rc;

	if(!room_exists(udb, room)) return MQC_ERR_NOTFOUND;
	/* Retired first: nobody may create it again for USERDB_RETIRE_DAYS.
	 * Members, admins and the room's metadata go with the row. */
	rc = run_int64(udb, "INSERT OR REPLACE INTO rooms_retired(name, deleted) VALUES(?, ?2)",
			1, args, time__now_ms());
	if(rc) return rc;
	return run_one(udb, "DELETE FROM rooms WHERE name=?", 1, &room);
}

static int sqlite_room_get(struct userdb *udb, const char *room, int *retention_days, int64_t *created)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_bind(udb, "SELECT retention_days, created FROM rooms WHERE name=?", &st, 1, &room);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		if(retention_days) *retention_days = sqlite3_column_int(st, 0);
		if(created) *created = sqlite3_column_int64(st, 1);
	}
	return row_end(st, rc);
}

static int sqlite_member_add(struct userdb *udb, const char *room, const char *user)
{
	const char *args[2] = {room, user};
	int rc;

	if(!room_exists(udb, room) || !user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	rc = run_pair(udb, "INSERT INTO members(room, user) VALUES(?, ?)", room, user);
	if(rc) return rc;
	return run_int64(udb, "INSERT OR REPLACE INTO room_joined(room, user, since) VALUES(?, ?, ?3)",
			2, args, time__now_ms());
}

static int sqlite_member_remove(struct userdb *udb, const char *room, const char *user)
{
	return run_pair_one(udb, "DELETE FROM members WHERE room=? AND user=?", room, user);
}

static bool sqlite_is_member(struct userdb *udb, const char *room, const char *user)
{
	return exists(udb, "SELECT 1 FROM members WHERE room=? AND user=?", room, user);
}

static int sqlite_rooms_of(struct userdb *udb, const char *user,
		int (*cb)(const char *room, int64_t created, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	/* members_by_user, then one primary-key look-up per room. */
	rc = prepare_bind(udb, "SELECT m.room, r.created FROM members AS m JOIN rooms AS r ON r.name = m.room"
			" WHERE m.user=? ORDER BY m.room", &st, 1, &user);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), arg);
	}
	return walk_end(st, rc, crc);
}

static int sqlite_room_each(struct userdb *udb,
		int (*cb)(const char *room, int retention_days, int64_t created, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	rc = prepare_bind(udb, "SELECT name, retention_days, created FROM rooms ORDER BY name", &st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
				sqlite3_column_int64(st, 2), arg);
	}
	return walk_end(st, rc, crc);
}

/* Walk (a, b) text pairs from a query with two optional equality filters. */
static int pair_each(struct userdb *udb, const char *sql, const char *a, const char *b,
		int (*cb)(const char *, const char *, void *), void *arg)
{
	sqlite3_stmt *st;
	const char *args[2] = {a, b};
	int rc, crc = 0;

	rc = prepare_bind(udb, sql, &st, 2, args);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0),
				(const char *)sqlite3_column_text(st, 1), arg);
	}
	return walk_end(st, rc, crc);
}

static int sqlite_member_each(struct userdb *udb, const char *room, const char *user,
		int (*cb)(const char *room, const char *user, void *arg), void *arg)
{
	return pair_each(udb, "SELECT room, user FROM members"
			" WHERE (?1 IS NULL OR room=?1) AND (?2 IS NULL OR user=?2) ORDER BY room, user",
			room, user, cb, arg);
}

/* ---- rooms run by their members ---- */

/* A text column into out (outlen bytes), "" for NULL. */
static void column_copy(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	snprintf(out, outlen, "%s", v ? v : "");
}

static int sqlite_room_meta_get(struct userdb *udb, const char *room, struct userdb_room_meta *out)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if(udb->version < USERDB_SCHEMA_VERSION){
		return userdb__room_get(udb, room, NULL, &out->created);
	}
	rc = prepare_bind(udb, "SELECT r.created, m.owner, m.title, m.description FROM rooms AS r"
			" LEFT JOIN room_meta AS m ON m.room = r.name WHERE r.name=?", &st, 1, &room);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		out->created = sqlite3_column_int64(st, 0);
		column_copy(st, 1, out->owner, sizeof(out->owner));
		column_copy(st, 2, out->title, sizeof(out->title));
		column_copy(st, 3, out->description, sizeof(out->description));
	}
	return row_end(st, rc);
}

static int sqlite_room_meta_set(struct userdb *udb, const char *room, const struct userdb_room_meta *m)
{
	const char *args[4] = {room, m->owner[0] ? m->owner : NULL, m->title, m->description};

	if(!room_exists(udb, room) || (args[1] && !user_exists(udb, args[1]))) return MQC_ERR_NOTFOUND;
	return run(udb, "INSERT OR REPLACE INTO room_meta(room, owner, title, description)"
			" VALUES(?, ?, ?, ?)", NULL, 4, args);
}

/* The role of a member row: owner, admin or member. */
#define ROLE_SQL "CASE WHEN mt.owner = mb.user THEN 3 WHEN ad.user IS NOT NULL THEN 2 ELSE 1 END"
#define ROLE_FROM " FROM members AS mb LEFT JOIN room_meta AS mt ON mt.room = mb.room" \
	" LEFT JOIN room_admins AS ad ON ad.room = mb.room AND ad.user = mb.user"

static int sqlite_room_role(struct userdb *udb, const char *room, const char *user, enum room_role *out)
{
	sqlite3_stmt *st;
	int rc;

	*out = ROOM_ROLE_NONE;
	if(udb->version < USERDB_SCHEMA_VERSION){
		if(userdb__is_member(udb, room, user)) *out = ROOM_ROLE_MEMBER;
		return MQC_OK;
	}
	rc = prepare_bind(udb, "SELECT " ROLE_SQL ROLE_FROM " WHERE mb.room=?1 AND mb.user=?2",
			&st, 2, (const char *const[]){room, user});
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW) *out = (enum room_role)sqlite3_column_int(st, 0);
	rc = row_end(st, rc);
	return rc == MQC_ERR_NOTFOUND ? MQC_OK : rc;
}

static int sqlite_room_roles(struct userdb *udb, const char *room,
		int (*cb)(const char *user, enum room_role role, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;
	/* Owner first, then admins, then members, each by name. */
	rc = prepare_bind(udb, "SELECT mb.user, " ROLE_SQL " AS role" ROLE_FROM
			" WHERE mb.room=? ORDER BY role DESC, mb.user", &st, 1, &room);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), (enum room_role)sqlite3_column_int(st, 1),
				arg);
	}
	return walk_end(st, rc, crc);
}

static int sqlite_room_admin_set(struct userdb *udb, const char *room, const char *user, bool admin,
		int64_t now)
{
	const char *args[2] = {room, user};

	if(!admin) return run_pair(udb, "DELETE FROM room_admins WHERE room=? AND user=?", room, user);
	if(!userdb__is_member(udb, room, user)) return MQC_ERR_NOTFOUND;
	return run_int64(udb, "INSERT OR IGNORE INTO room_admins(room, user, since) VALUES(?, ?, ?3)",
			2, args, now);
}

/* The one integer of a count query on one text argument. */
static int count_of(struct userdb *udb, const char *sql, const char *arg, int *n)
{
	int64_t v = 0;
	int rc = get_int64(udb, sql, arg, &v);

	*n = (int)v;
	return rc;
}

static int sqlite_rooms_owned(struct userdb *udb, const char *owner, int *n)
{
	return count_of(udb, "SELECT count(*) FROM room_meta WHERE owner=?", owner, n);
}

static int sqlite_room_size(struct userdb *udb, const char *room, int *n)
{
	return count_of(udb, "SELECT count(*) FROM members WHERE room=?", room, n);
}

static int sqlite_room_successor(struct userdb *udb, const char *room, const char *leaving,
		char *out, size_t outlen)
{
	sqlite3_stmt *st;
	int rc;

	/* The longest-standing admin, else member; a member without a
	 * room_joined row (from before) counts as the longest-standing. */
	rc = prepare_bind(udb, "SELECT mb.user FROM members AS mb"
			" LEFT JOIN room_admins AS ad ON ad.room = mb.room AND ad.user = mb.user"
			" LEFT JOIN room_joined AS j ON j.room = mb.room AND j.user = mb.user"
			" WHERE mb.room=?1 AND mb.user<>?2"
			" ORDER BY ad.user IS NULL, ad.since, COALESCE(j.since, 0), mb.user LIMIT 1",
			&st, 2, (const char *const[]){room, leaving});
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW) column_copy(st, 0, out, outlen);
	return row_end(st, rc);
}

/* ---- blocks ---- */

static int sqlite_block_add(struct userdb *udb, const char *user, const char *blocked)
{
	if(!user_exists(udb, user) || !user_exists(udb, blocked)) return MQC_ERR_NOTFOUND;
	return run_pair(udb, "INSERT OR IGNORE INTO blocks(user, blocked) VALUES(?, ?)", user, blocked);
}

static int sqlite_block_del(struct userdb *udb, const char *user, const char *blocked)
{
	return run_pair_one(udb, "DELETE FROM blocks WHERE user=? AND blocked=?", user, blocked);
}

static int sqlite_block_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *blocked, void *arg), void *arg)
{
	return pair_each(udb, "SELECT user, blocked FROM blocks"
			" WHERE (?1 IS NULL OR user=?1) AND ?2 IS NULL ORDER BY user, blocked",
			user, NULL, cb, arg);
}

/* ---- devices ---- */

static int sqlite_device_set(struct userdb *udb, const char *user, const char *device,
		const char *token_sha256, int64_t now)
{
	const char *args[3] = {user, device, token_sha256};

	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	return run_int64(udb, "INSERT OR REPLACE INTO devices(user, device, token_sha256, created,"
			" last_seen) VALUES(?, ?, ?, ?4, 0)", 3, args, now);
}

static int sqlite_device_del(struct userdb *udb, const char *user, const char *device)
{
	return run_pair_one(udb, "DELETE FROM devices WHERE user=? AND device=?", user, device);
}

static int sqlite_device_del_others(struct userdb *udb, const char *user, const char *keep, int *count)
{
	const char *args[2] = {user, keep};
	return run(udb, "DELETE FROM devices WHERE user=?1 AND (?2 IS NULL OR device<>?2)",
			count, 2, args);
}

static int sqlite_device_each(struct userdb *udb, const char *user,
		int (*cb)(const struct userdb_device *d, void *arg), void *arg)
{
	sqlite3_stmt *st;
	struct userdb_device d;
	int rc, crc = 0;

	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;   /* read-only, older: none */
	rc = prepare_bind(udb, "SELECT user, device, token_sha256, created, last_seen FROM devices"
			" WHERE ?1 IS NULL OR user=?1 ORDER BY user, device", &st, 1, &user);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		snprintf(d.user, sizeof(d.user), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(d.device, sizeof(d.device), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(d.token_sha256, sizeof(d.token_sha256), "%s",
				(const char *)sqlite3_column_text(st, 2));
		d.created = sqlite3_column_int64(st, 3);
		d.last_seen = sqlite3_column_int64(st, 4);
		crc = cb(&d, arg);
	}
	return walk_end(st, rc, crc);
}

static int sqlite_device_seen(struct userdb *udb, const char *user, const char *device, int64_t ts)
{
	const char *args[2] = {user, device};

	return run_int64(udb, "UPDATE devices SET last_seen=?3 WHERE user=?1 AND device=?2"
			" AND last_seen<?3", 2, args, ts);
}

/* ---- privacy and contacts ---- */

/* A level as the store spells it; the default for anything it should not
 * hold (the table's CHECK keeps that from happening). */
static enum privacy_level column_level(sqlite3_stmt *st, int col)
{
	enum privacy_level level = PRIVACY_CONTACTS;

	privacy__parse((const char *)sqlite3_column_text(st, col), &level);
	return level;
}

static int sqlite_privacy_get(struct userdb *udb, const char *user, struct userdb_privacy *out)
{
	sqlite3_stmt *st;
	int rc;

	out->presence = out->room_adds = PRIVACY_CONTACTS;
	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;
	rc = prepare_bind(udb, "SELECT presence, room_adds FROM privacy WHERE user=?", &st, 1, &user);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		out->presence = column_level(st, 0);
		out->room_adds = column_level(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? MQC_OK : sqlutil__status(rc);
}

static int sqlite_privacy_set(struct userdb *udb, const char *user, const struct userdb_privacy *p)
{
	const char *args[3] = {user, privacy__name(p->presence), privacy__name(p->room_adds)};

	if(!user_exists(udb, user)) return MQC_ERR_NOTFOUND;
	return run(udb, "INSERT OR REPLACE INTO privacy(user, presence, room_adds) VALUES(?, ?, ?)",
			NULL, 3, args);
}

static int sqlite_privacy_each(struct userdb *udb,
		int (*cb)(const char *user, const struct userdb_privacy *p, void *arg), void *arg)
{
	sqlite3_stmt *st;
	struct userdb_privacy p;
	int rc, crc = 0;

	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;
	rc = prepare_bind(udb, "SELECT user, presence, room_adds FROM privacy ORDER BY user",
			&st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		p.presence = column_level(st, 1);
		p.room_adds = column_level(st, 2);
		crc = cb((const char *)sqlite3_column_text(st, 0), &p, arg);
	}
	return walk_end(st, rc, crc);
}

static int sqlite_contact_add(struct userdb *udb, const char *user, const char *contact, int64_t since)
{
	const char *args[2] = {user, contact};

	if(!user_exists(udb, user) || !user_exists(udb, contact)) return MQC_ERR_NOTFOUND;
	return run_int64(udb, "INSERT OR IGNORE INTO contacts(user, contact, since) VALUES(?, ?, ?3)",
			2, args, since);
}

static int sqlite_contact_del(struct userdb *udb, const char *user, const char *contact)
{
	return run_pair_one(udb, "DELETE FROM contacts WHERE user=? AND contact=?", user, contact);
}

/* Is other one of user's contacts: in user's contacts table, or in a room
 * with them? (docs/PROTOCOL.md, "Privacy") */
static bool is_contact(struct userdb *udb, const char *user, const char *other)
{
	return exists(udb, "SELECT 1 FROM contacts WHERE user=?1 AND contact=?2"
			" UNION ALL SELECT 1 FROM members a JOIN members b ON a.room=b.room"
			" WHERE a.user=?1 AND b.user=?2 LIMIT 1", user, other);
}

static int sqlite_contact_each(struct userdb *udb, const char *user,
		int (*cb)(const char *user, const char *contact, int64_t since, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;
	rc = prepare_bind(udb, "SELECT user, contact, since FROM contacts"
			" WHERE ?1 IS NULL OR user=?1 ORDER BY user, contact", &st, 1, &user);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
				sqlite3_column_int64(st, 2), arg);
	}
	return walk_end(st, rc, crc);
}

/* ---- settings ---- */

static int sqlite_setting_get(struct userdb *udb, const char *key, char *out, size_t outlen)
{
	sqlite3_stmt *st;
	int rc;

	if(outlen > 0) out[0] = '\0';
	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_ERR_NOTFOUND;
	rc = prepare_bind(udb, "SELECT value FROM settings WHERE key=?", &st, 1, &key);
	if(rc) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW) snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if(rc == SQLITE_ROW) return MQC_OK;
	return rc == SQLITE_DONE ? MQC_ERR_NOTFOUND : sqlutil__status(rc);
}

static int sqlite_setting_set(struct userdb *udb, const char *key, const char *value)
{
	const char *args[2] = {key, value};

	return run(udb, "INSERT OR REPLACE INTO settings(key, value) VALUES(?, ?)", NULL, 2, args);
}

static int sqlite_setting_unset(struct userdb *udb, const char *key)
{
	return run_one(udb, "DELETE FROM settings WHERE key=?", 1, &key);
}

static int sqlite_setting_each(struct userdb *udb,
		int (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	if(udb->version < USERDB_SCHEMA_VERSION) return MQC_OK;
	rc = prepare_bind(udb, "SELECT key, value FROM settings ORDER BY key", &st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
				arg);
	}
	return walk_end(st, rc, crc);
}

/* ---- invites ---- */

static int sqlite_invite_create(struct userdb *udb, const char *code, int uses, int64_t expires)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_bind(udb, "INSERT INTO invites(code, uses_left, expires, created) VALUES(?, ?, ?, ?)",
			&st, 1, &code);
	if(rc) return rc;
	sqlite3_bind_int(st, 2, uses);
	sqlite3_bind_int64(st, 3, expires > 0 ? expires : 0);
	sqlite3_bind_int64(st, 4, time__now_ms());
	return finish(udb, st, NULL);
}

static int sqlite_invite_use(struct userdb *udb, const char *code, int64_t now)
{
	sqlite3_stmt *st;
	int rc, changes = 0;

	rc = prepare_bind(udb, "UPDATE invites SET uses_left = uses_left - 1"
			" WHERE code=? AND uses_left > 0 AND (expires = 0 OR expires > ?)", &st, 1, &code);
	if(rc) return rc;
	sqlite3_bind_int64(st, 2, now);
	rc = finish(udb, st, &changes);
	if(rc) return rc;
	return changes > 0 ? MQC_OK : MQC_ERR_NOTFOUND;
}

static int sqlite_invite_revoke(struct userdb *udb, const char *code)
{
	return run_one(udb, "DELETE FROM invites WHERE code=?", 1, &code);
}

static int sqlite_invite_each(struct userdb *udb,
		int (*cb)(const char *code, int uses_left, int64_t expires, int64_t created, void *arg),
		void *arg)
{
	sqlite3_stmt *st;
	int rc, crc = 0;

	rc = prepare_bind(udb, "SELECT code, uses_left, expires, created FROM invites"
			" ORDER BY created, code", &st, 0, NULL);
	if(rc) return rc;
	while(!crc && (rc = sqlite3_step(st)) == SQLITE_ROW){
		crc = cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
				sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), arg);
	}
	return walk_end(st, rc, crc);
}

/* The names and nicks alone (nick.c's walk over every account): no
 * copying of whole rows, in the table's order. */
static int sqlite_nick_walk(struct userdb *udb, const char *except,
		bool (*cb)(const char *name, const char *nick, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db_of(udb), "SELECT name, nick FROM users WHERE name <> ?", -1, &st, NULL);
	if(rc != SQLITE_OK) return MQC_ERR_DB;
	sqlite3_bind_text(st, 1, except, -1, SQLITE_STATIC);
	while((rc = sqlite3_step(st)) == SQLITE_ROW){
		if(cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg))
			break;
	}
	sqlite3_finalize(st);
	if(rc == SQLITE_ROW || rc == SQLITE_DONE) return MQC_OK;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? MQC_ERR_BUSY : MQC_ERR_DB;
}

static const struct userdb_ops userdb_sqlite__ops = {
	.close = sqlite_close,
	.set_busy_ms = sqlite_set_busy_ms,
	.begin_read = sqlite_begin_read,
	.begin_write = sqlite_begin_write,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.data_version = sqlite_data_version,
	.watch_fd = sqlite_watch_fd,
	.watch_drain = sqlite_watch_drain,
	.node_applied = sqlite_node_applied,
	.in_force_version = sqlite_in_force_version,
	.user_add = sqlite_user_add,
	.user_restore = sqlite_user_restore,
	.retired_get = sqlite_retired_get,
	.retired_each = sqlite_retired_each,
	.user_get = sqlite_user_get,
	.user_set_enabled = sqlite_user_set_enabled,
	.user_set_pwhash = sqlite_user_set_pwhash,
	.user_set_nick = sqlite_user_set_nick,
	.user_del = sqlite_user_del,
	.user_each = sqlite_user_each,
	.room_create = sqlite_room_create,
	.room_del = sqlite_room_del,
	.room_get = sqlite_room_get,
	.member_add = sqlite_member_add,
	.member_remove = sqlite_member_remove,
	.is_member = sqlite_is_member,
	.rooms_of = sqlite_rooms_of,
	.room_each = sqlite_room_each,
	.member_each = sqlite_member_each,
	.room_retired_get = sqlite_room_retired_get,
	.room_meta_get = sqlite_room_meta_get,
	.room_meta_set = sqlite_room_meta_set,
	.room_role = sqlite_room_role,
	.room_roles = sqlite_room_roles,
	.room_admin_set = sqlite_room_admin_set,
	.rooms_owned = sqlite_rooms_owned,
	.room_size = sqlite_room_size,
	.room_successor = sqlite_room_successor,
	.block_add = sqlite_block_add,
	.block_del = sqlite_block_del,
	.block_each = sqlite_block_each,
	.device_set = sqlite_device_set,
	.device_del = sqlite_device_del,
	.device_del_others = sqlite_device_del_others,
	.device_each = sqlite_device_each,
	.device_seen = sqlite_device_seen,
	.privacy_get = sqlite_privacy_get,
	.privacy_set = sqlite_privacy_set,
	.privacy_each = sqlite_privacy_each,
	.contact_add = sqlite_contact_add,
	.contact_del = sqlite_contact_del,
	.is_contact = is_contact,
	.contact_each = sqlite_contact_each,
	.setting_get = sqlite_setting_get,
	.setting_set = sqlite_setting_set,
	.setting_unset = sqlite_setting_unset,
	.setting_each = sqlite_setting_each,
	.invite_create = sqlite_invite_create,
	.invite_use = sqlite_invite_use,
	.invite_revoke = sqlite_invite_revoke,
	.invite_each = sqlite_invite_each,
	.nick_walk = sqlite_nick_walk,
	.errmsg = sqlite_errmsg,
};
