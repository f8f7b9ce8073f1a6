/* test_plugin_snapshot.c - loading the snapshot from a real auth.db, the
 * loader process (first snapshot, reload on change and on force into the
 * other slot, no build over a slot still in use, wiping, a failed reload
 * keeps the last good snapshot and logs once, a file replacement, a dead
 * loader restarted, a store too big for its slot), and the
 * load-time/memory figure (MQCHAT_BENCH=1 for 100,000 users + 10,000 rooms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker_stubs.h"
#include "err.h"
#include "plugin.h"
#include "timeutil.h"
#include "userdb_sqlite.h"

#define HASH "$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

struct fixture {
	char dir[64];
	char path[128];
	struct userdb *udb;             /* a writer, as the CLI/archiver */
	struct loader loader;           /* here, so teardown stops its process
	                                 * even after a failed assertion */
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
	assert_true(snapshot__name_in(&u->blocked, "bob", 3));
	assert_false(snapshot__name_in(&u->blocked, "bo", 2));
	u = snapshot__user(s, "bob", 3);
	assert_non_null(u);
	assert_false(u->enabled);
	assert_int_equal(snapshot__user(s, "archiver", 8)->kind, USER_KIND_SERVICE);
	assert_int_equal(snapshot__user(s, "dev1", 4)->kind, USER_KIND_DEVICE);
	assert_null(snapshot__user(s, "alic", 4));
	assert_null(snapshot__user(s, "alicee", 6));
	r = snapshot__room(s, "lobby", 5);
	assert_non_null(r);
	assert_true(snapshot__name_in(&r->members, "alice", 5));
	assert_true(snapshot__name_in(&r->members, "dev1", 4));
	assert_false(snapshot__name_in(&r->members, "bob", 3));
	assert_int_equal(snapshot__room(s, "quiet", 5)->members.count, 0);
	snapshot__free(s);
}

static void test_load_foreign_schema(void **state)
{
	struct fixture *f = *state;
	struct snapshot *s = (struct snapshot *)(uintptr_t)1;
	char err[256];

	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "DROP TABLE blocks", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(snapshot__load(f->udb, &s, err, sizeof(err)), MQC_OK);
	assert_null(s);
	assert_non_null(strstr(err, "reading blocks"));
}

/* The flat user and room indexes through every doubling: each name is
 * found as itself, names one byte shorter, longer or different are not,
 * and a duplicate add is refused. */
static void test_index(void **state)
{
	struct snapshot *s = snapshot__new();
	char name[NAME_MAX_LEN + 2];
	int i, len;

	(void)state;
	assert_non_null(s);
	assert_null(snapshot__user(s, "nobody", 6));
	assert_null(snapshot__room(s, "nowhere", 7));
	for(i=0; i<3000; i++){
		/* Lengths 1..64, so every hash path (1-3, 4-7, 8+ bytes) is used. */
		len = 1 + i % NAME_MAX_LEN;
		memset(name, 'a' + i % 26, (size_t)len);
		snprintf(name, sizeof(name), "%d", i);
		name[strlen(name)] = 'x';
		name[len] = '\0';
		if(snapshot__user(s, name, strlen(name)) != NULL) continue;   /* short names repeat */
		assert_non_null(snapshot__add_user(s, name, USER_KIND_USER, true, HASH));
		assert_non_null(snapshot__add_room(s, name));
		assert_null(snapshot__add_user(s, name, USER_KIND_USER, true, HASH));
	}
	assert_true(s->user_count > 2000);
	assert_int_equal(s->user_index.count, s->user_count);
	assert_true(s->user_index.count * 2 <= s->user_index.mask + 1);
	for(i=0; i<3000; i++){
		struct snap_user *u;
		size_t n;

		len = 1 + i % NAME_MAX_LEN;
		memset(name, 'a' + i % 26, (size_t)len);
		snprintf(name, sizeof(name), "%d", i);
		name[strlen(name)] = 'x';
		name[len] = '\0';
		n = strlen(name);
		u = snapshot__user(s, name, n);
		assert_non_null(u);
		assert_int_equal(u->len, n);
		assert_memory_equal(u->name, name, n);
		assert_non_null(snapshot__room(s, name, n));
		if(n > 1) assert_true(snapshot__user(s, name, n - 1) == NULL
				|| snapshot__user(s, name, n - 1)->len == n - 1);
		name[n - 1] ^= 0x20;        /* still a name byte, another name */
		u = snapshot__user(s, name, n);
		assert_true(u == NULL || memcmp(u->name, name, n) == 0);
	}
	assert_null(snapshot__user(s, name, 0));
	assert_null(snapshot__user(s, name, NAME_MAX_LEN + 1));
	snapshot__free(s);
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

static void fill_many(struct userdb *udb, int n);

/* A forked loader must inherit no open SQLite connection (SQLite's
 * in-process lock state would come along): the broker holds none, and
 * the tests close their writer around every fork. */
static void writer_close(struct fixture *f)
{
	userdb__close(f->udb);
	f->udb = NULL;
}

static void writer_open(struct fixture *f)
{
	char err[256];

	assert_int_equal(userdb__open(f->path, 0, &f->udb, err, sizeof(err)), MQC_OK);
}

/* loader__start on path with f's writer closed meanwhile. */
static int start_at(struct fixture *f, const char *path, int slot_mb, struct snapshot **s,
		char *err, size_t errlen)
{
	int rc;

	writer_close(f);
	rc = loader__start(&f->loader, path, 20, true, slot_mb, s, err, errlen);
	writer_open(f);
	return rc;
}

/* Start a loader on f's store with a short poll; its first snapshot. */
static struct snapshot *start(struct fixture *f, int slot_mb)
{
	struct snapshot *s = NULL;
	char err[512];

	if(start_at(f, f->path, slot_mb, &s, err, sizeof(err)) != MQC_OK){
		fail_msg("loader__start: %s", err);
	}
	assert_non_null(s);
	return s;
}

/* Retire cur, take the next one (bounded wait): the broker's TICK. */
static struct snapshot *next(struct loader *l, struct snapshot *cur, int timeout_ms)
{
	struct snapshot *s = wait_snapshot(l, timeout_ms);

	assert_non_null(s);
	assert_ptr_not_equal(s, cur);
	loader__retire(l, cur);
	return s;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

static void test_loader(void **state)
{
	struct fixture *f = *state;
	struct loader *l = &f->loader;
	struct snapshot *s, *first;
	char err[256], newpath[160];
	pid_t pid;

	fill_small(f->udb);
	s = first = start(f, 4);
	assert_int_equal(s->user_count, 4);
	assert_false(snapshot__user(s, "bob", 3)->enabled);
	pid = l->pid;
	assert_true(pid_alive(pid));

	/* Nothing changed: nothing comes. */
	drain(l, 100);
	/* A change by another connection comes within a few polls, in the
	 * other slot. */
	assert_int_equal(userdb__user_set_enabled(f->udb, "bob", true), MQC_OK);
	s = next(l, s, 5000);
	assert_true(snapshot__user(s, "bob", 3)->enabled);
	/* The slot left behind is wiped (its pages returned): reads zero. */
	{
		int64_t end = time__mono_ms() + 5000;

		while(first->user_count != 0){
			assert_true(time__mono_ms() < end);
			usleep(5000);
		}
		assert_null(first->users);
	}
	/* Forced (SIGHUP) without a change: back in the first slot. */
	loader__force(l);
	s = next(l, s, 5000);
	assert_ptr_equal(s, first);
	assert_int_equal(s->user_count, 4);

	/* While the broker has not retired the one before, the loader must
	 * not build over it: nothing comes, and both stay intact. */
	{
		struct snapshot *held = wait_snapshot(l, 10);

		assert_null(held);
		loader__force(l);
		held = wait_snapshot(l, 5000);          /* taken, not retired */
		assert_non_null(held);
		assert_int_equal(userdb__user_add(f->udb, "carol", USER_KIND_USER, "Carol", HASH), MQC_OK);
		drain(l, 200);
		assert_int_equal(s->user_count, 4);
		assert_int_equal(held->user_count, 4);
		assert_non_null(snapshot__user(s, "alice", 5));
		loader__retire(l, s);
		s = next(l, held, 5000);
		assert_int_equal(s->user_count, 5);
	}

	/* A broken store: no snapshot, one log line however many polls. */
	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "ALTER TABLE blocks RENAME TO blocks_old", NULL, NULL,
				NULL), SQLITE_OK);
	wait_log(l, "mqchat: cannot reload user store", 5000);
	drain(l, 200);
	assert_int_equal(stub_log_contains("mqchat: cannot reload user store"), 1);
	assert_non_null(strstr(stub.last_log, "keeping the last good snapshot"));
	assert_int_equal(s->user_count, 5);
	/* Repaired: a snapshot and a line saying so. */
	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "ALTER TABLE blocks_old RENAME TO blocks", NULL, NULL,
				NULL), SQLITE_OK);
	s = next(l, s, 5000);
	drain(l, 60);
	assert_int_equal(stub_log_contains("readable again"), 1);

	/* The loader process dies: TICK notices, logs, starts a new one,
	 * which reloads; the snapshot in use stays intact meanwhile. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	{
		int64_t now = time__mono_ms() + 2000, end = time__mono_ms() + 5000;

		writer_close(f);
		while(l->pid == pid){
			assert_true(time__mono_ms() < end);
			loader__watch(l, now);
			now += 1000;
			usleep(5000);
		}
		assert_int_equal(stub_log_contains("the loader process exited (signal 9)"), 1);
		assert_int_equal(s->user_count, 5);
		loader__watch(l, now + 10000);
		writer_open(f);
		assert_int_equal(stub_log_contains("started a new loader process"), 1);
		assert_true(pid_alive(l->pid));
		pid = l->pid;
		s = next(l, s, 5000);       /* a new loader builds at once */
		assert_int_equal(s->user_count, 5);
	}

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

	/* Cleanup ends the process (reaped: no zombie left). */
	loader__cleanup(l);
	assert_int_equal(l->pid, 0);
	assert_false(pid_alive(pid));
	/* Cleanup twice is harmless. */
	loader__cleanup(l);
}

/* A store that cannot be read at start: loader__start fails with the
 * loader's reason, and leaves no process behind. */
static void test_loader_start_fails(void **state)
{
	struct fixture *f = *state;
	struct snapshot *s = (struct snapshot *)(uintptr_t)1;
	char err[512], path[200];

	snprintf(path, sizeof(path), "%s/missing.db", f->dir);
	assert_int_not_equal(start_at(f, path, 4, &s, err, sizeof(err)), MQC_OK);
	assert_null(s);
	assert_non_null(strstr(err, "cannot open user store"));
	assert_non_null(strstr(err, "missing.db"));
	assert_null(f->loader.sh);
	assert_int_equal(f->loader.pid, 0);

	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "DROP TABLE blocks", NULL, NULL, NULL), SQLITE_OK);
	s = (struct snapshot *)(uintptr_t)1;
	writer_close(f);                /* of a foreign schema now: no reopening */
	assert_int_not_equal(loader__start(&f->loader, f->path, 20, true, 4, &s, err, sizeof(err)), MQC_OK);
	assert_null(s);
	assert_non_null(strstr(err, "wrong schema"));
	assert_int_equal(f->loader.pid, 0);
}

/* A store larger than a slot: refused at start with the option to raise;
 * grown past it later: the last good snapshot stays, the reason is logged. */
static void test_loader_slot_full(void **state)
{
	struct fixture *f = *state;
	struct loader *l = &f->loader;
	struct snapshot *s = NULL;
	char err[512];

	fill_many(f->udb, 20000);       /* several MiB of nodes */
	assert_int_not_equal(start_at(f, f->path, 1, &s, err, sizeof(err)), MQC_OK);
	assert_null(s);
	assert_non_null(strstr(err, "plugin_opt_snapshot_mb"));

	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "DELETE FROM members; DELETE FROM blocks;"
				" DELETE FROM rooms; DELETE FROM users WHERE name >= 'user000100'", NULL, NULL, NULL),
			SQLITE_OK);
	s = start(f, 1);
	assert_int_equal(s->user_count, 100);
	/* One statement: the loader never sees half of it. */
	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(f->udb), "INSERT INTO users(name, kind, nick, pwhash, enabled,"
				" created) WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c"
				" WHERE i < 19999) SELECT 'big' || i, 'user', 'big', '" HASH "', 1, 0 FROM c",
				NULL, NULL, NULL), SQLITE_OK);
	wait_log(l, "plugin_opt_snapshot_mb", 5000);
	assert_non_null(strstr(stub.last_log, "keeping the last good snapshot"));
	assert_int_equal(s->user_count, 100);
	assert_non_null(snapshot__user(s, "user000042", 10));
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

	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(udb), "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(userdb_sqlite__handle(udb), "INSERT INTO users(name, kind, nick, pwhash, enabled,"
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
	assert_int_equal(sqlite3_prepare_v2(userdb_sqlite__handle(udb), "INSERT INTO rooms(name, retention_days, created)"
				" VALUES(?, 0, 0)", -1, &st, NULL), SQLITE_OK);
	for(i=0; i<n/10; i++){
		snprintf(room, sizeof(room), "room%05d", i);
		sqlite3_bind_text(st, 1, room, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(userdb_sqlite__handle(udb), "INSERT INTO members(room, user) VALUES(?, ?)", -1,
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
	assert_int_equal(sqlite3_prepare_v2(userdb_sqlite__handle(udb), "INSERT OR IGNORE INTO blocks(user, blocked)"
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
	assert_int_equal(sqlite3_exec(userdb_sqlite__handle(udb), "COMMIT", NULL, NULL, NULL), SQLITE_OK);
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
		cmocka_unit_test(test_index),
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_foreign_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_start_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loader_slot_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_many, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
