/* test_userdb.c - the user store's retired names and its upgrade from
 * schema version 1 (common/userdb_sqlite.c), on real SQLite files in /tmp; then
 * the same tests on PostgreSQL 15 (common/userdb_pg.c), on a server of
 * the test's own that tests/unit/pg_cluster.sh starts in a temp folder
 * (a Unix socket there only) and stops at the end, whatever happened:
 * the tests run in a child process and the parent stops the server. That
 * run is skipped, saying why, when PostgreSQL 15 is not installed. The
 * PostgreSQL run adds what only it has: schema creation by several
 * programs at once, the notification of each change, and a reconnection
 * after the server restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <poll.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "err.h"
#include "pg_fixture.h"
#include "pwhash.h"
#include "timeutil.h"
#include "userdb.h"

/* The schema the previous release shipped (run from the repository root,
 * as scripts/test.sh does). */
#define V1_SCHEMA "tests/fixtures/userdb_schema_v1.sql"
#define V2_SCHEMA "tests/fixtures/userdb_schema_v2.sql"
#define HEX_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_B "0000000000000000000000000000000000000000000000000000000000000001"

struct fx {
	char dir[64];
	char path[128];
	char hash[PWHASH_STR_LEN];
	struct userdb *udb;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqchat-unit-userdb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/auth.db", f->dir);
	assert_int_equal(pwhash__make("password-xxxx", 13, 1000, f->hash, sizeof(f->hash)), MQC_OK);
	*state = f;
	if(be.pg) pg_fresh(f->dir);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	userdb__close(f->udb);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Run sql on the file with a connection of its own. */
static void sql(const char *path, const char *text)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Run text on the store as the test opened it, whichever the backend. */
static void raw(struct fx *f, const char *text)
{
	if(be.pg) pg_sql(text);
	else sql(f->path, text);
}

/* The rows of a table of the store, whichever the backend. */
static int raw_count(struct fx *f, const char *table)
{
	char text[128], v[32];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n;

	snprintf(text, sizeof(text), "SELECT count(*) FROM %s%s", be.pg ? "auth." : "", table);
	if(be.pg){
		pg_value(text, v, sizeof(v));
		return atoi(v);
	}
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int64_t created_of(struct userdb *udb, const char *name)
{
	struct userdb_user u;

	assert_int_equal(userdb__user_get(udb, name, &u), MQC_OK);
	return u.created;
}

static int add(struct fx *f, const char *name)
{
	int rc = userdb__begin_write(f->udb);

	if(rc == MQC_OK) rc = userdb__user_add(f->udb, name, USER_KIND_USER, name, f->hash);
	if(rc == MQC_OK) return userdb__commit(f->udb);
	userdb__rollback(f->udb);
	return rc;
}

static int del(struct fx *f, const char *name)
{
	int rc = userdb__begin_write(f->udb);

	if(rc == MQC_OK) rc = userdb__user_del(f->udb, name);
	if(rc == MQC_OK) return userdb__commit(f->udb);
	userdb__rollback(f->udb);
	return rc;
}

static int restore(struct fx *f, const char *name)
{
	int rc = userdb__begin_write(f->udb);

	if(rc == MQC_OK) rc = userdb__user_restore(f->udb, name, USER_KIND_USER, name, f->hash);
	if(rc == MQC_OK) return userdb__commit(f->udb);
	userdb__rollback(f->udb);
	return rc;
}

static void test_a_deleted_name_is_retired(void **state)
{
	struct fx *f = *state;
	int64_t created, deleted, was;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	was = created_of(f->udb, "alice");
	assert_int_equal(userdb__retired_get(f->udb, "alice", &created, &deleted), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_ERR_EXISTS);

	assert_int_equal(del(f, "alice"), MQC_OK);
	assert_int_equal(del(f, "alice"), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__retired_get(f->udb, "alice", &created, &deleted), MQC_OK);
	assert_true(created == was);
	assert_true(deleted >= was && deleted <= time__now_ms());
	/* Taken, for add; restore gives it back with the old created. */
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_ERR_EXISTS);
	assert_int_equal(add(f, "alice"), MQC_ERR_EXISTS);
	assert_int_equal(restore(f, "alice"), MQC_OK);
	assert_true(created_of(f->udb, "alice") == was);
	assert_int_equal(userdb__retired_get(f->udb, "alice", &created, &deleted), MQC_ERR_NOTFOUND);
	assert_int_equal(restore(f, "alice"), MQC_ERR_EXISTS);
	assert_int_equal(restore(f, "nobody"), MQC_ERR_NOTFOUND);

	/* Retired a day short of USERDB_RETIRE_DAYS: still taken; past it: free. */
	assert_int_equal(del(f, "alice"), MQC_OK);
	raw(f, "UPDATE retired SET deleted = deleted - (29 * CAST(86400000 AS BIGINT))");
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_ERR_EXISTS);
	raw(f, "UPDATE retired SET deleted = deleted - (2 * 86400000)");
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_true(created_of(f->udb, "alice") > was);
	assert_int_equal(userdb__retired_get(f->udb, "alice", &created, &deleted), MQC_ERR_NOTFOUND);
	/* A deletion "in the future" (a clock set back) is recent too. */
	assert_int_equal(del(f, "alice"), MQC_OK);
	raw(f, "UPDATE retired SET deleted = deleted + 86400000");
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_ERR_EXISTS);
}

struct walk {
	char names[4][16];
	int n;
};

static int walk_cb(const char *name, int64_t created, int64_t deleted, void *arg)
{
	struct walk *w = arg;

	assert_true(created > 0 && deleted >= created);
	assert_true(w->n < 4);
	snprintf(w->names[w->n++], sizeof(w->names[0]), "%s", name);
	return MQC_OK;
}

static void test_retired_each(void **state)
{
	struct fx *f = *state;
	struct walk w = {0};

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "zed"), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_OK);
	assert_int_equal(add(f, "carol"), MQC_OK);
	assert_int_equal(del(f, "zed"), MQC_OK);
	assert_int_equal(del(f, "bob"), MQC_OK);
	assert_int_equal(userdb__retired_each(f->udb, walk_cb, &w), MQC_OK);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.names[0], "bob");
	assert_string_equal(w.names[1], "zed");
}

/* A store exactly as a previous release made it (schema file fixture),
 * with one of each row of the version 1 tables. */
static void make_old(const char *path, const char *fixture)
{
	FILE *fp = fopen(fixture, "r");
	char *text;
	long len;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	assert_true(len > 0);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	sql(path, "PRAGMA journal_mode=WAL");
	sql(path, text);
	free(text);
	sql(path, "PRAGMA foreign_keys=ON;"
			"INSERT INTO users VALUES('alice','user','Alice','$pbkdf2-sha512$1000$AAAA$AAAA',1,1000);"
			"INSERT INTO users VALUES('bob','device','bob','$pbkdf2-sha512$1000$AAAA$AAAA',0,2000);"
			"INSERT INTO rooms VALUES('lab',7,3000);"
			"INSERT INTO members VALUES('lab','alice');"
			"INSERT INTO blocks VALUES('alice','bob');"
			"INSERT INTO invites VALUES('code1',2,0,4000);");
}

/* The schema version and a digest of every row of the version 1 tables. */
static void state_of(const char *path, char *out, size_t outlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
			"SELECT (SELECT value FROM meta WHERE key='schema_version')"
			" || '|' || (SELECT group_concat(name||kind||nick||pwhash||enabled||created) FROM users)"
			" || '|' || (SELECT group_concat(name||retention_days||created) FROM rooms)"
			" || '|' || (SELECT group_concat(room||user) FROM members)"
			" || '|' || (SELECT group_concat(user||blocked) FROM blocks)"
			" || '|' || (SELECT group_concat(code||uses_left||expires||created) FROM invites)",
			-1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void state_of_has_no_retired(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name='retired'"
			" UNION ALL SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void make_v1(const char *path)
{
	make_old(path, V1_SCHEMA);
}

static int count_devices(const struct userdb_device *d, void *arg)
{
	(void)d;
	++*(int *)arg;
	return 0;
}

static void upgrade_from(struct fx *f, const char *fixture, char version)
{
	char before[512], after[512];
	struct walk w = {0};
	int n = 0;

	make_old(f->path, fixture);
	state_of(f->path, before, sizeof(before));
	assert_int_equal(before[0], version);

	/* A reader takes it as it is. */
	assert_int_equal(userdb__open(f->path, USERDB_READONLY, &f->udb, NULL, 0), MQC_OK);
	assert_true(userdb__is_member(f->udb, "lab", "alice"));
	assert_int_equal(userdb__retired_each(f->udb, walk_cb, &w), MQC_OK);
	assert_int_equal(w.n, 0);
	assert_int_equal(userdb__device_each(f->udb, NULL, count_devices, &n), MQC_OK);
	assert_int_equal(n, 0);
	userdb__close(f->udb);
	f->udb = NULL;
	state_of(f->path, after, sizeof(after));
	assert_string_equal(after, before);

	/* A writer upgrades it, keeping every row, and says nothing committed
	 * that a broker would have to apply. */
	assert_int_equal(userdb__open(f->path, 0, &f->udb, NULL, 0), MQC_OK);
	assert_true(userdb__committed_ns(f->udb) == 0);
	state_of(f->path, after, sizeof(after));
	assert_string_equal(after + 1, before + 1);
	assert_int_equal(after[0], '3');
	assert_int_equal(userdb__name_free(f->udb, "alice"), MQC_ERR_EXISTS);
	assert_int_equal(del(f, "bob"), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_ERR_EXISTS);
	userdb__close(f->udb);
	/* Opened again: version 3, nothing to do; devices can be stored. */
	assert_int_equal(userdb__open(f->path, 0, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(userdb__retired_each(f->udb, walk_cb, &w), MQC_OK);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.names[0], "bob");
	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", HEX_A, 5000), MQC_OK);
	assert_int_equal(userdb__device_each(f->udb, NULL, count_devices, &n), MQC_OK);
	assert_int_equal(n, 1);
}

static void test_upgrade_from_v1(void **state)
{
	upgrade_from(*state, V1_SCHEMA, '1');
}

static void test_upgrade_from_v2(void **state)
{
	upgrade_from(*state, V2_SCHEMA, '2');
}

struct devs {
	int n;
	struct userdb_device d[4];
};

static int devs_cb(const struct userdb_device *d, void *arg)
{
	struct devs *l = arg;

	if(l->n < 4) l->d[l->n] = *d;
	l->n++;
	return 0;
}

static void test_devices(void **state)
{
	struct fx *f = *state;
	struct devs l = {0};
	int count = -1;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_OK);
	/* Bad input changes nothing. */
	assert_int_equal(userdb__device_set(f->udb, "alice", "ph/one", HEX_A, 1), MQC_ERR_INVAL);
	assert_int_equal(userdb__device_set(f->udb, "alice", "", HEX_A, 1), MQC_ERR_INVAL);
	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", "xyz", 1), MQC_ERR_INVAL);
	assert_int_equal(userdb__device_set(f->udb, "zed", "phone", HEX_A, 1), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__device_each(f->udb, NULL, devs_cb, &l), MQC_OK);
	assert_int_equal(l.n, 0);

	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", HEX_A, 1000), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "alice", "laptop", HEX_A, 1100), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "alice", "tablet", HEX_A, 1200), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "bob", "phone", HEX_A, 1300), MQC_OK);
	/* A new token for a device replaces the old one. */
	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", HEX_B, 2000), MQC_OK);
	assert_int_equal(userdb__device_seen(f->udb, "alice", "phone", 3000), MQC_OK);
	assert_int_equal(userdb__device_seen(f->udb, "alice", "phone", 2500), MQC_OK);   /* never back */
	assert_int_equal(userdb__device_seen(f->udb, "alice", "watch", 3000), MQC_OK);   /* no row: nothing */
	assert_int_equal(userdb__device_each(f->udb, "alice", devs_cb, &l), MQC_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.d[0].device, "laptop");
	assert_string_equal(l.d[2].device, "tablet");
	assert_string_equal(l.d[1].device, "phone");
	assert_string_equal(l.d[1].token_sha256, HEX_B);
	assert_int_equal(l.d[1].created, 2000);
	assert_int_equal(l.d[1].last_seen, 3000);

	assert_int_equal(userdb__device_del(f->udb, "alice", "watch"), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__device_del(f->udb, "alice", "tablet"), MQC_OK);
	assert_int_equal(userdb__device_del_others(f->udb, "alice", "phone", &count), MQC_OK);
	assert_int_equal(count, 1);
	l.n = 0;
	assert_int_equal(userdb__device_each(f->udb, NULL, devs_cb, &l), MQC_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.d[0].user, "alice");
	assert_string_equal(l.d[0].device, "phone");
	assert_string_equal(l.d[1].user, "bob");
	assert_int_equal(userdb__device_del_others(f->udb, "alice", NULL, &count), MQC_OK);
	assert_int_equal(count, 1);
	/* Devices go with their account. */
	assert_int_equal(del(f, "bob"), MQC_OK);
	l.n = 0;
	assert_int_equal(userdb__device_each(f->udb, NULL, devs_cb, &l), MQC_OK);
	assert_int_equal(l.n, 0);
}

/* The same on PostgreSQL: a newer schema, and one that lacks a table,
 * are refused with the same messages, and left as they are. */
static void test_pg_newer_version_refused(struct fx *f)
{
	char err[512] = "", v[16];

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	userdb__close(f->udb);
	f->udb = NULL;
	pg_sql("UPDATE meta SET value='4' WHERE key='schema_version'");
	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_null(f->udb);
	assert_non_null(strstr(err, "user store schema version 4 is newer than this program's (3)"));
	pg_value("SELECT value FROM auth.meta WHERE key='schema_version'", v, sizeof(v));
	assert_string_equal(v, "4");
	pg_sql("UPDATE meta SET value='3' WHERE key='schema_version'; DROP TABLE blocks");
	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_null(f->udb);
	assert_non_null(strstr(err, "wrong schema"));
	/* No schema at all: not found, unless asked to create it. */
	pg_sql("DROP SCHEMA auth CASCADE");
	assert_int_equal(userdb__open(f->path, 0, &f->udb, err, sizeof(err)), MQC_ERR_NOTFOUND);
	assert_non_null(strstr(err, "no user store"));
}

static void test_newer_version_refused(void **state)
{
	struct fx *f = *state;
	char err[512] = "";

	if(be.pg){
		test_pg_newer_version_refused(f);
		return;
	}
	make_v1(f->path);
	sql(f->path, "UPDATE meta SET value='4' WHERE key='schema_version'");
	assert_int_equal(userdb__open(f->path, 0, &f->udb, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_non_null(strstr(err, "user store schema version 4 is newer than this program's (3)"));
	/* A version 1 store without one of its tables is not upgraded. */
	snprintf(f->path, sizeof(f->path), "%s/other.db", f->dir);
	make_v1(f->path);
	sql(f->path, "DROP TABLE blocks");
	assert_int_equal(userdb__open(f->path, 0, &f->udb, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_null(f->udb);
	state_of_has_no_retired(f->path);
}

static int contact_cb(const char *user, const char *contact, int64_t since, void *arg)
{
	struct walk *w = arg;

	(void)since;
	if(w->n < 4) snprintf(w->names[w->n], sizeof(w->names[0]), "%s>%s", user, contact);
	w->n++;
	return 0;
}

static void test_privacy_and_contacts(void **state)
{
	struct fx *f = *state;
	struct userdb_privacy p, q;
	struct walk w = {0};
	enum privacy_level level = PRIVACY_NOBODY;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_OK);
	/* Names both ways; nothing else parses. */
	assert_true(privacy__parse("everyone", &level));
	assert_int_equal(level, PRIVACY_EVERYONE);
	assert_false(privacy__parse("Everyone", &level));
	assert_false(privacy__parse(NULL, &level));
	assert_int_equal(level, PRIVACY_EVERYONE);
	assert_string_equal(privacy__name(PRIVACY_CONTACTS), "contacts");
	assert_string_equal(privacy__name(PRIVACY_LEVEL_COUNT), "?");

	/* Defaults until set; unknown users and bad levels change nothing. */
	assert_int_equal(userdb__privacy_get(f->udb, "alice", &p), MQC_OK);
	assert_int_equal(p.presence, PRIVACY_CONTACTS);
	assert_int_equal(p.room_adds, PRIVACY_CONTACTS);
	assert_int_equal(userdb__privacy_get(f->udb, "zed", &p), MQC_ERR_NOTFOUND);
	p.presence = PRIVACY_NOBODY;
	p.room_adds = PRIVACY_EVERYONE;
	assert_int_equal(userdb__privacy_set(f->udb, "zed", &p), MQC_ERR_NOTFOUND);
	q.presence = PRIVACY_LEVEL_COUNT;
	q.room_adds = PRIVACY_CONTACTS;
	assert_int_equal(userdb__privacy_set(f->udb, "alice", &q), MQC_ERR_INVAL);
	assert_int_equal(userdb__privacy_set(f->udb, "alice", &p), MQC_OK);
	assert_int_equal(userdb__privacy_get(f->udb, "alice", &q), MQC_OK);
	assert_int_equal(q.presence, PRIVACY_NOBODY);
	assert_int_equal(q.room_adds, PRIVACY_EVERYONE);

	assert_int_equal(userdb__contact_add(f->udb, "alice", "alice", 1), MQC_ERR_INVAL);
	assert_int_equal(userdb__contact_add(f->udb, "alice", "zed", 1), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__contact_add(f->udb, "alice", "bob", 1), MQC_OK);
	assert_int_equal(userdb__contact_add(f->udb, "alice", "bob", 2), MQC_OK);
	assert_int_equal(userdb__contact_add(f->udb, "bob", "alice", 3), MQC_OK);
	assert_int_equal(userdb__contact_each(f->udb, "alice", contact_cb, &w), MQC_OK);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.names[0], "alice>bob");
	assert_int_equal(userdb__contact_del(f->udb, "alice", "bob"), MQC_OK);
	assert_int_equal(userdb__contact_del(f->udb, "alice", "bob"), MQC_ERR_NOTFOUND);
	/* Rows go with their accounts. */
	assert_int_equal(del(f, "alice"), MQC_OK);
	w.n = 0;
	assert_int_equal(userdb__contact_each(f->udb, NULL, contact_cb, &w), MQC_OK);
	assert_int_equal(w.n, 0);
	assert_int_equal(userdb__privacy_get(f->udb, "alice", &q), MQC_ERR_NOTFOUND);
}

static int role_cb(const char *user, enum room_role role, void *arg)
{
	char *out = arg;

	snprintf(out + strlen(out), 256 - strlen(out), "%s:%s ", user, room_role__name(role));
	return MQC_OK;
}

/* Rooms run by their members: metadata, roles, admins, the hand-over
 * order, the counts, room_adds, and retired room names. */
static void test_rooms_run_by_members(void **state)
{
	struct fx *f = *state;
	struct userdb_room_meta m;
	enum room_role role;
	char list[256] = "", next[NAME_MAX_LEN + 1];
	struct userdb_privacy p = {PRIVACY_CONTACTS, PRIVACY_NOBODY};
	int64_t deleted;
	bool may;
	int n;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_OK);
	assert_int_equal(add(f, "carol"), MQC_OK);
	assert_int_equal(add(f, "dave"), MQC_OK);
	assert_int_equal(userdb__room_create(f->udb, "hall", 0), MQC_OK);
	assert_int_equal(userdb__room_meta_get(f->udb, "hall", &m), MQC_OK);
	assert_string_equal(m.owner, "");
	assert_string_equal(m.title, "");
	assert_true(m.created > 0);
	assert_int_equal(userdb__room_meta_get(f->udb, "nowhere", &m), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__member_add(f->udb, "hall", "alice"), MQC_OK);
	assert_int_equal(userdb__member_add(f->udb, "hall", "bob"), MQC_OK);
	assert_int_equal(userdb__member_add(f->udb, "hall", "carol"), MQC_OK);
	snprintf(m.owner, sizeof(m.owner), "alice");
	snprintf(m.title, sizeof(m.title), "Hall \xc3\xa9");
	assert_int_equal(userdb__room_meta_set(f->udb, "hall", &m), MQC_OK);
	snprintf(m.title, sizeof(m.title), "a\tb");
	assert_int_equal(userdb__room_meta_set(f->udb, "hall", &m), MQC_ERR_INVAL);
	snprintf(m.title, sizeof(m.title), "Hall");
	assert_int_equal(userdb__room_meta_set(f->udb, "nowhere", &m), MQC_ERR_NOTFOUND);
	assert_true(room_text__valid("\xc3\xa9\xc3\xa9", 2));
	assert_false(room_text__valid("\xc3\xa9\xc3\xa9x", 2));
	assert_false(room_text__valid("\xc3", 2));
	/* Roles: the owner, admins (since), members. */
	assert_int_equal(userdb__room_admin_set(f->udb, "hall", "carol", true, 10), MQC_OK);
	assert_int_equal(userdb__room_admin_set(f->udb, "hall", "dave", true, 10), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__room_role(f->udb, "hall", "alice", &role), MQC_OK);
	assert_int_equal(role, ROOM_ROLE_OWNER);
	assert_int_equal(userdb__room_role(f->udb, "hall", "carol", &role), MQC_OK);
	assert_int_equal(role, ROOM_ROLE_ADMIN);
	assert_int_equal(userdb__room_role(f->udb, "hall", "dave", &role), MQC_OK);
	assert_int_equal(role, ROOM_ROLE_NONE);
	assert_int_equal(userdb__room_roles(f->udb, "hall", role_cb, list), MQC_OK);
	assert_string_equal(list, "alice:owner carol:admin bob:member ");
	/* The hand-over: the longest-standing admin, else member. */
	assert_int_equal(userdb__room_successor(f->udb, "hall", "alice", next, sizeof(next)), MQC_OK);
	assert_string_equal(next, "carol");
	assert_int_equal(userdb__room_admin_set(f->udb, "hall", "carol", false, 0), MQC_OK);
	assert_int_equal(userdb__room_successor(f->udb, "hall", "alice", next, sizeof(next)), MQC_OK);
	assert_string_equal(next, "bob");
	assert_int_equal(userdb__rooms_owned(f->udb, "alice", &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(userdb__room_size(f->udb, "hall", &n), MQC_OK);
	assert_int_equal(n, 3);
	/* room_adds: contacts (a shared room or the contacts table), nobody, everyone. */
	assert_int_equal(userdb__may_add(f->udb, "bob", "alice", &may), MQC_OK);
	assert_true(may);
	assert_int_equal(userdb__may_add(f->udb, "dave", "alice", &may), MQC_OK);
	assert_false(may);
	assert_int_equal(userdb__contact_add(f->udb, "dave", "alice", 1), MQC_OK);
	assert_int_equal(userdb__may_add(f->udb, "dave", "alice", &may), MQC_OK);
	assert_true(may);
	assert_int_equal(userdb__privacy_set(f->udb, "dave", &p), MQC_OK);
	assert_int_equal(userdb__may_add(f->udb, "dave", "alice", &may), MQC_OK);
	assert_false(may);
	p.room_adds = PRIVACY_EVERYONE;
	assert_int_equal(userdb__privacy_set(f->udb, "bob", &p), MQC_OK);
	assert_int_equal(userdb__may_add(f->udb, "bob", "dave", &may), MQC_OK);
	assert_true(may);
	assert_int_equal(userdb__may_add(f->udb, "zed", "dave", &may), MQC_ERR_NOTFOUND);
	/* A deleted account's owner and admin rows go with it. */
	assert_int_equal(userdb__room_admin_set(f->udb, "hall", "bob", true, 20), MQC_OK);
	assert_int_equal(del(f, "alice"), MQC_OK);
	assert_int_equal(del(f, "bob"), MQC_OK);
	assert_int_equal(userdb__room_meta_get(f->udb, "hall", &m), MQC_OK);
	assert_string_equal(m.owner, "");
	list[0] = '\0';
	assert_int_equal(userdb__room_roles(f->udb, "hall", role_cb, list), MQC_OK);
	assert_string_equal(list, "carol:member ");
	/* No admin row left. */
	assert_int_equal(raw_count(f, "room_admins"), 0);
	/* A deleted room takes its rows along and its name is retired. */
	assert_int_equal(userdb__room_del(f->udb, "hall"), MQC_OK);
	assert_int_equal(userdb__room_del(f->udb, "hall"), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__rooms_owned(f->udb, "alice", &n), MQC_OK);
	assert_int_equal(n, 0);
	assert_int_equal(userdb__room_retired_get(f->udb, "hall", &deleted), MQC_OK);
	assert_int_equal(userdb__room_name_free(f->udb, "hall"), MQC_ERR_EXISTS);
	assert_int_equal(userdb__room_create(f->udb, "hall", 0), MQC_ERR_EXISTS);
	/* ... until USERDB_RETIRE_DAYS have passed. */
	raw(f, "UPDATE rooms_retired SET deleted = deleted - 31 * CAST(86400000 AS BIGINT)");
	assert_int_equal(userdb__room_name_free(f->udb, "hall"), MQC_OK);
	assert_int_equal(userdb__room_create(f->udb, "hall", 0), MQC_OK);
	assert_int_equal(userdb__room_retired_get(f->udb, "hall", &deleted), MQC_ERR_NOTFOUND);
	assert_int_equal(userdb__room_name_free(f->udb, "hall"), MQC_ERR_EXISTS);
	assert_string_equal(room_role__name(ROOM_ROLE_NONE), "?");
}

/* Several programs (nodes starting at once) create the schema at the same
 * moment: every one opens it without error, and there is one schema. */
#define CREATORS 4
static void test_pg_created_by_several_at_once(void **state)
{
	struct fx *f = *state;
	int go[2], i, st, failed = 0;
	pid_t pids[CREATORS];
	char v[64];

	assert_int_equal(pipe(go), 0);
	for(i=0; i<CREATORS; i++){
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if(pids[i] == 0){
			struct userdb *udb = NULL;
			char err[512] = "", c;
			int rc;

			close(go[1]);
			(void)!read(go[0], &c, 1);   /* all start when the parent closes the pipe */
			rc = userdb__open(f->path, USERDB_CREATE, &udb, err, sizeof(err));
			if(rc != MQC_OK) fprintf(stderr, "creator %d: %s\n", i, err);
			userdb__close(udb);
			_exit(rc == MQC_OK ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);
	for(i=0; i<CREATORS; i++){
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if(!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
	}
	assert_int_equal(failed, 0);
	pg_value("SELECT count(*) FROM pg_namespace WHERE nspname='auth'", v, sizeof(v));
	assert_string_equal(v, "1");
	pg_value("SELECT string_agg(key || '=' || value, ',') FROM auth.meta", v, sizeof(v));
	assert_string_equal(v, "schema_version=3");
	assert_int_equal(userdb__open(f->path, 0, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	/* A reader's connection writes nothing, even when asked. */
	userdb__close(f->udb);
	assert_int_equal(userdb__open(f->path, USERDB_READONLY, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "bob"), MQC_ERR_DB);
	assert_int_equal(raw_count(f, "users"), 1);
}

/* The next notification on c, within 5 s, into out (its payload). */
static void next_notice(PGconn *c, char *out, size_t outlen)
{
	int64_t until = time__now_ms() + 5000;
	PGnotify *n;

	for(;;){
		struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
		int left = (int)(until - time__now_ms());

		assert_int_equal(PQconsumeInput(c), 1);
		n = PQnotifies(c);
		if(n != NULL) break;
		if(left <= 0) fail_msg("no notification within 5 s");
		(void)poll(&p, 1, left);
	}
	assert_string_equal(n->relname, "mqchat_auth");
	snprintf(out, outlen, "%s", n->extra);
	PQfreemem(n);
}

/* Every change the broker must apply reaches a LISTEN connection when it
 * commits, as "ID KIND NAME", ID the store's new version; a rolled-back
 * change sends nothing, and a device's login time is not a change. */
static void test_pg_notify(void **state)
{
	struct fx *f = *state;
	char got[128], want[128];
	int64_t version = -1, before;
	PGconn *c;
	PGresult *r;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(userdb__data_version(f->udb, &before), MQC_OK);
	c = pg_connect();
	r = PQexec(c, "LISTEN mqchat_auth");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);

	assert_int_equal(add(f, "alice"), MQC_OK);
	next_notice(c, got, sizeof(got));
	assert_int_equal(userdb__data_version(f->udb, &version), MQC_OK);
	assert_true(version > before);
	snprintf(want, sizeof(want), "%lld user alice", (long long)version);
	assert_string_equal(got, want);

	assert_int_equal(userdb__begin_write(f->udb), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "bob", USER_KIND_USER, "bob", f->hash), MQC_OK);
	userdb__rollback(f->udb);
	/* Outside a transaction, a call is one of its own. */
	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", HEX_A, 1000), MQC_OK);
	assert_int_equal(userdb__device_seen(f->udb, "alice", "phone", 2000), MQC_OK);
	assert_int_equal(userdb__user_set_enabled(f->udb, "alice", false), MQC_OK);
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " device alice/phone"));
	next_notice(c, got, sizeof(got));
	assert_int_equal(userdb__data_version(f->udb, &version), MQC_OK);
	snprintf(want, sizeof(want), "%lld disable alice", (long long)version);
	assert_string_equal(got, want);
	/* Two-name changes say both; logging out the other devices names
	 * each one cut off, not the one kept. */
	assert_int_equal(userdb__device_set(f->udb, "alice", "laptop", HEX_A, 1000), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "alice", "laptop", HEX_B, 1000), MQC_OK);
	assert_int_equal(userdb__device_del_others(f->udb, "alice", "phone", &(int){0}), MQC_OK);
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " device alice/laptop"));
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " revoke alice/laptop"));
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " revoke alice/laptop"));
	assert_int_equal(add(f, "bob"), MQC_OK);
	assert_int_equal(userdb__block_add(f->udb, "alice", "bob"), MQC_OK);
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " user bob"));
	next_notice(c, got, sizeof(got));
	assert_non_null(strstr(got, " block alice/bob"));
	PQfinish(c);
}

/* The server restarted (every connection cut): the next transaction
 * and the version query connect again by themselves, and nothing
 * committed is lost. */
static void test_pg_reconnects(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	int64_t before, after;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_int_equal(userdb__data_version(f->udb, &before), MQC_OK);
	snprintf(cmd, sizeof(cmd), "sh tests/unit/pg_cluster.sh restart '%s'", be.dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(userdb__data_version(f->udb, &after), MQC_OK);
	assert_true(after == before);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(add(f, "bob"), MQC_OK);
	assert_int_equal(created_of(f->udb, "alice") > 0, true);
	assert_int_equal(raw_count(f, "users"), 2);
}

/* A refusal inside a transaction (a member twice, an invite code twice)
 * leaves the transaction going, as on SQLite, so a caller may go on and
 * commit the rest. */
static void test_refusal_keeps_the_transaction(void **state)
{
	struct fx *f = *state;
	struct userdb_user u;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(add(f, "alice"), MQC_OK);
	assert_int_equal(userdb__begin_write(f->udb), MQC_OK);
	assert_int_equal(userdb__room_create(f->udb, "hall", 0), MQC_OK);
	assert_int_equal(userdb__member_add(f->udb, "hall", "alice"), MQC_OK);
	assert_int_equal(userdb__member_add(f->udb, "hall", "alice"), MQC_ERR_EXISTS);
	assert_int_equal(userdb__invite_create(f->udb, "code1", 1, 0), MQC_OK);
	assert_int_equal(userdb__invite_create(f->udb, "code1", 1, 0), MQC_ERR_EXISTS);
	assert_int_equal(userdb__user_add(f->udb, "alice", USER_KIND_USER, "a", f->hash), MQC_ERR_EXISTS);
	assert_int_equal(userdb__user_add(f->udb, "bob", USER_KIND_USER, "bob", f->hash), MQC_OK);
	assert_int_equal(userdb__commit(f->udb), MQC_OK);
	assert_int_equal(userdb__user_get(f->udb, "bob", &u), MQC_OK);
	assert_true(userdb__is_member(f->udb, "hall", "alice"));
	assert_int_equal(userdb__invite_use(f->udb, "code1", time__now_ms()), MQC_OK);
	assert_int_equal(userdb__invite_use(f->udb, "code1", time__now_ms()), MQC_ERR_NOTFOUND);
}

/* A transaction a statement failed in (here: one the test's SQL breaks)
 * does not commit, and the commit says so: nothing of it is kept. */
static void test_pg_failed_transaction_does_not_commit(void **state)
{
	struct fx *f = *state;
	struct userdb_user u;

	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	pg_sql("ALTER TABLE users ADD CHECK (name <> 'bob')");
	assert_int_equal(userdb__begin_write(f->udb), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "alice", USER_KIND_USER, "alice", f->hash), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "bob", USER_KIND_USER, "bob", f->hash), MQC_ERR_EXISTS);
	assert_int_equal(userdb__commit(f->udb), MQC_ERR_DB);
	assert_int_equal(userdb__user_get(f->udb, "alice", &u), MQC_ERR_NOTFOUND);
	assert_int_equal(add(f, "carol"), MQC_OK);
}

/* The tests of both backends, then those of one (cmocka's skip() would
 * read as a failure in TAP: "not ok ... # SKIP"). */
#define BOTH \
	cmocka_unit_test_setup_teardown(test_a_deleted_name_is_retired, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_retired_each, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_devices, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_privacy_and_contacts, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_rooms_run_by_members, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_refusal_keeps_the_transaction, setup, teardown)

static int run_sqlite(void)
{
	const struct CMUnitTest tests[] = {
		BOTH,
		/* SQLite files of previous releases (PostgreSQL stores begin at 3). */
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v2, setup, teardown),
	};
	return cmocka_run_group_tests_name("userdb on sqlite", tests, NULL, NULL);
}

static int run_pg_tests(void)
{
	const struct CMUnitTest tests[] = {
		BOTH,
		cmocka_unit_test_setup_teardown(test_pg_created_by_several_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_reconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_failed_transaction_does_not_commit, setup, teardown),
	};
	return cmocka_run_group_tests_name("userdb on postgresql", tests, NULL, NULL);
}

int main(void)
{
	int failed = run_sqlite() != 0;

	return pg_run("userdb", run_pg_tests) || failed;
}
