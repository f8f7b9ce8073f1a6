/* test_plugin_snapshot.c - loading the snapshot from a real auth.db, the
 * loader thread (reload on change, on force, after a file replacement;
 * a failed reload keeps the last good snapshot and logs once), and the
 * load-time/memory figure (MQCHAT_BENCH=1 for 100,000 users + 10,000 rooms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker_stubs.h"
#include "err.h"
#include "plugin.h"
#include "timeutil.h"

#define HASH "$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

struct fixture {
	char dir[64];
	char path[128];
	struct userdb *udb;             /* a writer, as the CLI/archiver */
	struct loader loader;           /* here, so a failed assertion cannot leave
	                                 * a thread pointing into a dead stack */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqchat-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/auth.db", f->dir);
	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, err, sizeof(err)), MQC_OK);
	stub_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	loader__cleanup(&f->loader);
	userdb__close(f->udb);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void fill_small(struct userdb *udb)
{
	assert_int_equal(userdb__user_add(udb, "alice", USER_KIND_USER, "Alice", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "bob", USER_KIND_USER, "Bob", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "dev1", USER_KIND_DEVICE, "Dev", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "archiver", USER_KIND_SERVICE, "Archiver", HASH), MQC_OK);
	assert_int_equal(userdb__user_set_enabled(udb, "bob", false), MQC_OK);
	assert_int_equal(userdb__room_create(udb, "lobby", 0), MQC_OK);
	assert_int_equal(userdb__room_create(udb, "quiet", 7), MQC_OK);
	assert_int_equal(userdb__member_add(udb, "lobby", "alice"), MQC_OK);
	assert_int_equal(userdb__member_add(udb, "lobby", "dev1"), MQC_OK);
	assert_int_equal(userdb__block_add(udb, "alice", "bob"), MQC_OK);
}

static void test_load(void **state)
{
	struct fixture *f = *state;
	struct snapshot *s;
	struct snap_user *u;
	struct snap_room *r;
	char err[256];

	fill_small(f->udb);
	assert_int_equal(snapshot__load(f->udb, &s, err, sizeof(err)), MQC_OK);
	assert_int_equal(s->user_count, 4);
	assert_int_equal(s->room_count, 2);
	assert_int_equal(s->member_count, 2);
	assert_int_equal(s->block_count, 1);
	u = snapshot__user(s, "alice", 5);
	assert_non_null(u);
	assert_int_equal(u->kind, USER_KIND_USER);
	assert_true(u->enabled);
	assert_string_equal(u->pwhash, HASH);
	assert_true(snapshot__name_in(u->blocked, "bob", 3));
	assert_false(snapshot__name_in(u->blocked, "bo", 2));
	u = snapshot__user(s, "bob", 3);
	assert_non_null(u);
	assert_false(u->enabled);
	assert_int_equal(snapshot__user(s, "archiver", 8)->kind, USER_KIND_SERVICE);
	assert_int_equal(snapshot__user(s, "dev1", 4)->kind, USER_KIND_DEVICE);
	assert_null(snapshot__user(s, "alic", 4));
	assert_null(snapshot__user(s, "alicee", 6));
	r = snapshot__room(s, "lobby", 5);
	assert_non_null(r);
	assert_true(snapshot__name_in(r->members, "alice", 5));
	assert_true(snapshot__name_in(r->members, "dev1", 4));
	assert_false(snapshot__name_in(r->members, "bob", 3));
	assert_null(snapshot__room(s, "quiet", 5)->members);
	snapshot__free(s);
}

static void test_load_foreign_schema(void **state)
{
	struct fixture *f = *state;
	struct snapshot *s = (struct snapshot *)(uintptr_t)1;
	char err[256];

	assert_int_equal(sqlite3_exec(f->udb->db, "DROP TABLE blocks", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(snapshot__load(f->udb, &s, err, sizeof(err)), MQC_OK);
	assert_null(s);
	assert_non_null(strstr(err, "reading blocks"));
}

/* Wait (bounded) for the loader to leave a snapshot; NULL on timeout. */
static struct snapshot *wait_snapshot(struct loader *l, int timeout_ms)
{
	int64_t end = time__mono_ms() + timeout_ms;
	char msg[600];
	int level;
	bool has;
	struct snapshot *s;

	do{
		s = loader__take(l, msg, sizeof(msg), &level, &has);
		if(has) mosquitto_log_printf(level, "%s", msg);
		if(s) return s;
		usleep(5000);
	}while(time__mono_ms() < end);
	return NULL;
}

/* Let the loader run a few polls, collecting its log lines. */
static void drain(struct loader *l, int ms)
{
	struct snapshot *s = wait_snapshot(l, ms);

	assert_null(s);
}

/* Pump the loader (no snapshot may come) until a log line holds text. */
static void wait_log(struct loader *l, const char *text, int timeout_ms)
{
	int64_t end = time__mono_ms() + timeout_ms;

	while(stub_log_contains(text) == 0){
		assert_true(time__mono_ms() < end);
		drain(l, 10);
	}
}

static void test_loader(void **state)
{
	struct fixture *f = *state;
	struct loader *l = &f->loader;
	struct userdb *own;
	struct snapshot *s;
	char err[256], newpath[160];
	int64_t version;

	fill_small(f->udb);
	assert_int_equal(userdb__open(f->path, 0, &own, err, sizeof(err)), MQC_OK);
	assert_int_equal(userdb__data_version(own, &version), MQC_OK);
	assert_int_equal(loader__start(l, own, f->path, version, 20), MQC_OK);

	/* Nothing changed: nothing comes. */
	drain(l, 100);
	/* A change by another connection comes within a few polls. */
	assert_int_equal(userdb__user_set_enabled(f->udb, "bob", true), MQC_OK);
	s = wait_snapshot(l, 5000);
	assert_non_null(s);
	assert_true(snapshot__user(s, "bob", 3)->enabled);
	snapshot__free(s);
	/* Forced (SIGHUP) without a change. */
	loader__force(l);
	s = wait_snapshot(l, 5000);
	assert_non_null(s);
	snapshot__free(s);

	/* A broken store: no snapshot, one log line however many polls. */
	assert_int_equal(sqlite3_exec(f->udb->db, "ALTER TABLE blocks RENAME TO blocks_old", NULL, NULL,
				NULL), SQLITE_OK);
	wait_log(l, "mqchat: cannot reload user store", 5000);
	drain(l, 200);
	assert_int_equal(stub_log_contains("mqchat: cannot reload user store"), 1);
	assert_non_null(strstr(stub.last_log, "keeping the last good snapshot"));
	/* Repaired: a snapshot and a line saying so. */
	assert_int_equal(sqlite3_exec(f->udb->db, "ALTER TABLE blocks_old RENAME TO blocks", NULL, NULL,
				NULL), SQLITE_OK);
	s = wait_snapshot(l, 5000);
	assert_non_null(s);
	snapshot__free(s);
	drain(l, 60);
	assert_int_equal(stub_log_contains("readable again"), 1);

	/* The file replaced by rename (or deleted) under the open connection:
	 * no snapshot from a mix of files, one line saying to restart. */
	snprintf(newpath, sizeof(newpath), "%s/new.db", f->dir);
	{
		struct userdb *n;
		assert_int_equal(userdb__open(newpath, USERDB_CREATE, &n, err, sizeof(err)), MQC_OK);
		assert_int_equal(userdb__user_add(n, "zoe", USER_KIND_USER, "Zoe", HASH), MQC_OK);
		userdb__close(n);
	}
	assert_int_equal(rename(newpath, f->path), 0);
	wait_log(l, "replaced or deleted while in use", 5000);
	drain(l, 200);
	assert_int_equal(stub_log_contains("replaced or deleted while in use"), 1);

	loader__cleanup(l);
	/* Cleanup twice is harmless. */
	loader__cleanup(l);
}

/* CPU time of this thread: wall time on a shared machine says little. */
static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long rss_kb(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if(fp == NULL) return 0;
	if(fscanf(fp, "%ld %ld", &pages, &rss) != 2) rss = 0;
	fclose(fp);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Fill the store with raw inserts (fast): n users, n/10 rooms of 10
 * members, n/10 blocks. */
static void fill_many(struct userdb *udb, int n)
{
	sqlite3_stmt *st;
	char name[40], room[40];
	int i, j;

	assert_int_equal(sqlite3_exec(udb->db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(udb->db, "INSERT INTO users(name, kind, nick, pwhash, enabled,"
				" created) VALUES(?, 'user', ?, ?, 1, 0)", -1, &st, NULL), SQLITE_OK);
	for(i=0; i<n; i++){
		snprintf(name, sizeof(name), "user%06d", i);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, HASH, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(udb->db, "INSERT INTO rooms(name, retention_days, created)"
				" VALUES(?, 0, 0)", -1, &st, NULL), SQLITE_OK);
	for(i=0; i<n/10; i++){
		snprintf(room, sizeof(room), "room%05d", i);
		sqlite3_bind_text(st, 1, room, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(udb->db, "INSERT INTO members(room, user) VALUES(?, ?)", -1,
				&st, NULL), SQLITE_OK);
	for(i=0; i<n/10; i++){
		snprintf(room, sizeof(room), "room%05d", i);
		for(j=0; j<10; j++){
			snprintf(name, sizeof(name), "user%06d", (i * 10 + j * 7) % n);
			sqlite3_bind_text(st, 1, room, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
			sqlite3_step(st);       /* a rare duplicate pair is fine */
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(udb->db, "INSERT OR IGNORE INTO blocks(user, blocked)"
				" VALUES(?, ?)", -1, &st, NULL), SQLITE_OK);
	for(i=0; i<n/10; i++){
		snprintf(name, sizeof(name), "user%06d", i);
		snprintf(room, sizeof(room), "user%06d", (i + 1) % n);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, room, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(udb->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static void test_load_many(void **state)
{
	struct fixture *f = *state;
	const int n = getenv("MQCHAT_BENCH") ? 100000 : 5000;
	struct userdb *own;
	struct snapshot *s;
	char err[256];
	long rss0, rss1;
	size_t arena;
	int64_t t0, t1, t2, cpu0, cpu1;

	fill_many(f->udb, n);
	assert_int_equal(userdb__open(f->path, 0, &own, err, sizeof(err)), MQC_OK);
	rss0 = rss_kb();
	cpu0 = cpu_ns();
	t0 = time__mono_ns();
	assert_int_equal(snapshot__load(own, &s, err, sizeof(err)), MQC_OK);
	t1 = time__mono_ns();
	cpu1 = cpu_ns();
	rss1 = rss_kb();
	assert_int_equal(s->user_count, (size_t)n);
	assert_int_equal(s->room_count, (size_t)n / 10);
	assert_true(s->member_count >= (size_t)n * 9 / 10);
	assert_non_null(snapshot__user(s, "user000042", 10));
	arena = s->bytes;
	snapshot__free(s);
	t2 = time__mono_ns();
	printf("# snapshot: %d users, %d rooms, %d memberships, %d blocks: load %.0f ms (CPU %.0f ms),"
			" RSS +%ld KiB (nodes %zu KiB + hash tables + SQLite cache), free %.1f ms\n",
			n, n / 10, n, n / 10, (double)(t1 - t0) / 1e6, (double)(cpu1 - cpu0) / 1e6,
			rss1 - rss0, arena / 1024,
			(double)(t2 - t1) / 1e6);
	/* The target is < 1 s for 100k users; be generous on a shared machine. */
	assert_true(t1 - t0 < 5000000000LL);
	userdb__close(own);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_foreign_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_many, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
