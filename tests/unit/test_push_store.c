/* test_push_store.c - the push store (archiver/push_store.h) on both
 * backends, push.db and schema `push` on a PostgreSQL server of the
 * test's own (tests/unit/pg_fixture.h): the schema made once and found
 * again, targets set, replaced and removed (with their jobs), webhook
 * secrets, a deleted account's everything, mutes and their expiry,
 * previews, the queue's collapse into one job per conversation, its
 * order, retries and drops, the cursor, and a batch (begin/commit) that
 * is whole or absent. On PostgreSQL only: the schema made by several
 * programs at once, two takers at once never sharing a job, a dead
 * taker's jobs taken by another after the lease, and the cursor held by a
 * batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "push_store.h"
#include "push_store_sqlite.h"
#include "timeutil.h"
#include "pg_fixture.h"

#define NOW 1764892800000LL

struct fx {
	char dir[64];
	struct push_store *db;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_push_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if(be.pg){
		pg_fresh(f->dir);
		pg_sql("DROP SCHEMA IF EXISTS push CASCADE");
	}
	assert_int_equal(push_store__open(f->dir, &f->db, err, sizeof(err)), MQC_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *const ext[] = {"push.db", "push.db-wal", "push.db-shm", STORE_CONF_NAME};
	char p[128];

	push_store__close(f->db);
	for(size_t i = 0; i < 4; i++){
		snprintf(p, sizeof(p), "%s/%s", f->dir, ext[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The single integer of sql (with ?1 bound to a if given; on
 * PostgreSQL in schema push, ?1 read as $1). */
static int64_t one(struct push_store *ps, const char *sql, const char *a)
{
	sqlite3_stmt *st;
	int64_t v;

	if(be.pg){
		char text[512], *q;
		PGconn *c = pg_connect();
		PGresult *r = PQexec(c, "SET search_path TO push");

		PQclear(r);
		snprintf(text, sizeof(text), "%s", sql);
		while((q = strstr(text, "?1")) != NULL) *q = '$';
		r = PQexecParams(c, text, a ? 1 : 0, NULL, &a, NULL, NULL, 0);
		if(PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1){
			fail_msg("%s: %s", text, PQresultErrorMessage(r));
		}
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return v;
	}
	assert_int_equal(sqlite3_prepare_v2(push_store_sqlite__handle(ps), sql, -1, &st, NULL), SQLITE_OK);
	if(a) sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static json_t *data_token(const char *token)
{
	json_t *d = json_pack("{s:s}", "token", token);

	assert_non_null(d);
	return d;
}

static void set(struct push_store *db, const char *user, const char *device, enum push_provider p,
		const char *token)
{
	json_t *d = data_token(token);

	assert_int_equal(push_store__target_set(db, user, device, p, d, NULL, NOW), MQC_OK);
	json_decref(d);
}

static void dumps_equal(json_t *j, const char *want)
{
	char *s = json_dumps(j, JSON_COMPACT);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_schema_made_once_and_found_again(void **state)
{
	struct fx *f = *state;
	char path[128], err[256] = "";
	struct stat sb;
	struct push_store *db2;
	int64_t seq;

	if(be.pg){
		assert_int_equal(one(f->db, "SELECT value::int FROM meta WHERE key='schema_version'", NULL), 1);
		assert_int_equal(one(f->db, "SELECT count(*) FROM pg_tables WHERE schemaname='push' AND tablename IN"
					" ('targets','mutes','prefs','queue','meta')", NULL), 5);
	}else{
		snprintf(path, sizeof(path), "%s/push.db", f->dir);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777 & ~(mode_t)0640, 0);   /* at most 0640, as archive.db */
		assert_int_equal(one(f->db, "SELECT value FROM meta WHERE key='schema'", NULL), 1);
		assert_int_equal(one(f->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN"
					" ('targets','mutes','prefs','queue','meta')", NULL), 5);
	}
	assert_int_equal(push_store__set_cursor(f->db, 42), MQC_OK);
	set(f->db, "alice", "phone", PUSH_FCM, "t1");
	/* A second connection (the push thread beside the worker) and a
	 * reopen find the same store and change nothing. */
	assert_int_equal(push_store__open(f->dir, &db2, err, sizeof(err)), MQC_OK);
	assert_int_equal(push_store__cursor(db2, &seq), MQC_OK);
	assert_int_equal(seq, 42);
	push_store__close(db2);
	push_store__close(f->db);
	assert_int_equal(push_store__open(f->dir, &f->db, err, sizeof(err)), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM targets", NULL), 1);
	if(!be.pg) assert_int_equal(one(f->db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", NULL), 1);
}

static void test_another_schema_version_is_refused(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	struct push_store *db2 = NULL;

	if(be.pg) pg_sql("UPDATE push.meta SET value='7' WHERE key='schema_version'");
	else assert_int_equal(sqlite3_exec(push_store_sqlite__handle(f->db), "UPDATE meta SET value='7' WHERE key='schema'",
				NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(push_store__open(f->dir, &db2, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_null(db2);
	assert_non_null(strstr(err, "version 7"));
}

static void test_providers_by_name(void **state)
{
	(void)state;
	assert_string_equal(push_store__provider_name(PUSH_WEBPUSH), "webpush");
	assert_string_equal(push_store__provider_name(PUSH_FCM), "fcm");
	assert_string_equal(push_store__provider_name(PUSH_APNS), "apns");
	assert_string_equal(push_store__provider_name(PUSH_WEBHOOK), "webhook");
	assert_int_equal(push_store__provider_parse("webhook"), PUSH_WEBHOOK);
	assert_int_equal(push_store__provider_parse("apns"), PUSH_APNS);
	assert_int_equal(push_store__provider_parse("sms"), 0);
	assert_int_equal(push_store__provider_parse(""), 0);
	assert_int_equal(push_store__provider_parse(NULL), 0);
}

static void test_targets_set_replace_remove(void **state)
{
	struct fx *f = *state;
	struct push_target *t;
	json_t *list;
	int n, removed;

	set(f->db, "alice", "phone", PUSH_FCM, "f1");
	set(f->db, "alice", "ipad", PUSH_APNS, "a1");
	set(f->db, "bob", "phone", PUSH_FCM, "b1");
	assert_int_equal(push_store__target_count(f->db, "alice", &n), MQC_OK);
	assert_int_equal(n, 2);
	/* replace: one per device, the newest registration wins */
	assert_int_equal(push_store__target_result(f->db, "alice", "phone", false, NOW + 5), MQC_OK);
	set(f->db, "alice", "phone", PUSH_APNS, "a2");
	assert_int_equal(push_store__target_count(f->db, "alice", &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(push_store__targets(f->db, "alice", &t, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].device, "ipad");
	assert_string_equal(t[1].device, "phone");
	assert_string_equal(t[1].user, "alice");
	assert_int_equal(t[1].provider, PUSH_APNS);
	assert_string_equal(json_string_value(json_object_get(t[1].data, "token")), "a2");
	assert_string_equal(t[1].secret, "");
	for(int i = 0; i < n; i++) push_store__target_free(&t[i]);
	free(t);
	/* results: failures count up, an ok clears them */
	assert_int_equal(push_store__target_result(f->db, "alice", "phone", false, NOW + 10), MQC_OK);
	assert_int_equal(push_store__target_result(f->db, "alice", "phone", false, NOW + 11), MQC_OK);
	assert_int_equal(push_store__targets_json(f->db, "alice", &list), MQC_OK);
	dumps_equal(list, "[{\"device\":\"ipad\",\"provider\":\"apns\",\"created\":1764892800000,\"last_ok\":0,"
			"\"failures\":0},{\"device\":\"phone\",\"provider\":\"apns\",\"created\":1764892800000,"
			"\"last_ok\":0,\"failures\":2}]");
	json_decref(list);
	assert_int_equal(push_store__target_result(f->db, "alice", "phone", true, NOW + 12), MQC_OK);
	assert_int_equal(one(f->db, "SELECT last_ok FROM targets WHERE \"user\" ='alice' AND device='phone'", NULL),
			NOW + 12);
	assert_int_equal(one(f->db, "SELECT failures FROM targets WHERE \"user\" ='alice' AND device='phone'", NULL), 0);
	/* a result for a target removed meanwhile: nothing to record */
	assert_int_equal(push_store__target_result(f->db, "alice", "gone", true, NOW), MQC_OK);
	/* remove one, with its jobs only */
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "m1", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "ipad", "d:bob", 1, "m1", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "bob", "phone", "d:alice", 2, "m2", "alice", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__target_remove(f->db, "alice", "phone", &removed), MQC_OK);
	assert_int_equal(removed, 1);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue WHERE \"user\" ='alice' AND device='phone'", NULL), 0);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 2);
	assert_int_equal(push_store__target_remove(f->db, "alice", "phone", &removed), MQC_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(push_store__target_remove(f->db, "alice", "phone", NULL), MQC_OK);
	/* all of a person's */
	set(f->db, "alice", "laptop", PUSH_FCM, "f3");
	assert_int_equal(push_store__target_remove(f->db, "alice", NULL, &removed), MQC_OK);
	assert_int_equal(removed, 2);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue WHERE \"user\" ='alice'", NULL), 0);
	assert_int_equal(push_store__target_count(f->db, "alice", &n), MQC_OK);
	assert_int_equal(n, 0);
	assert_int_equal(push_store__target_count(f->db, "bob", &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(push_store__targets_json(f->db, "alice", &list), MQC_OK);
	dumps_equal(list, "[]");
	json_decref(list);
}

static void test_remove_others_keeps_one(void **state)
{
	struct fx *f = *state;
	int removed, n;

	set(f->db, "alice", "a", PUSH_FCM, "1");
	set(f->db, "alice", "b", PUSH_FCM, "2");
	set(f->db, "alice", "c", PUSH_FCM, "3");
	set(f->db, "bob", "a", PUSH_FCM, "4");
	assert_int_equal(push_store__enqueue(f->db, "alice", "a", "d:bob", 1, "m1", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "c", "d:bob", 1, "m1", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__target_remove_others(f->db, "alice", "b", &removed), MQC_OK);
	assert_int_equal(removed, 2);
	assert_int_equal(one(f->db, "SELECT count(*) FROM targets WHERE \"user\" ='alice' AND device='b'", NULL), 1);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 0);
	assert_int_equal(push_store__target_count(f->db, "bob", &n), MQC_OK);
	assert_int_equal(n, 1);
	/* keep NULL: every one */
	assert_int_equal(push_store__target_remove_others(f->db, "alice", NULL, &removed), MQC_OK);
	assert_int_equal(removed, 1);
}

static void test_user_forget_takes_everything_of_one_person(void **state)
{
	struct fx *f = *state;
	const char *const tables[] = {"targets", "mutes", "prefs", "queue"};
	char sql[96];

	for(int k = 0; k < 2; k++){
		const char *u = k ? "bob" : "alice";

		set(f->db, u, "phone", PUSH_FCM, "t");
		assert_int_equal(push_store__mute(f->db, u, "r:lobby", 0), MQC_OK);
		assert_int_equal(push_store__previews_set(f->db, u, true), MQC_OK);
		assert_int_equal(push_store__enqueue(f->db, u, "phone", "r:lobby", 1, "m", "carol", NULL, NOW), MQC_OK);
	}
	assert_int_equal(push_store__user_forget(f->db, "alice"), MQC_OK);
	for(size_t i = 0; i < 4; i++){
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE \"user\" = ?1", tables[i]);
		assert_int_equal(one(f->db, sql, "alice"), 0);
		assert_int_equal(one(f->db, sql, "bob"), 1);
	}
	assert_false(push_store__previews(f->db, "alice"));
	assert_int_equal(push_store__user_forget(f->db, "nobody"), MQC_OK);
}

static void test_up_to_the_most_targets(void **state)
{
	struct fx *f = *state;
	char dev[16];
	int n;

	for(int i = 0; i < PUSH_TARGETS_MAX; i++){
		snprintf(dev, sizeof(dev), "d%02d", i);
		set(f->db, "alice", dev, PUSH_FCM, dev);
	}
	assert_int_equal(push_store__target_count(f->db, "alice", &n), MQC_OK);
	assert_int_equal(n, PUSH_TARGETS_MAX);
}

static void test_bad_targets_refused(void **state)
{
	struct fx *f = *state;
	json_t *d = data_token("t");
	char secret[64] = "x";

	assert_int_equal(push_store__target_set(f->db, "Alice", "phone", PUSH_FCM, d, secret, NOW), MQC_ERR_INVAL);
	assert_string_equal(secret, "");
	assert_int_equal(push_store__target_set(f->db, "alice", "a/b", PUSH_FCM, d, NULL, NOW), MQC_ERR_INVAL);
	assert_int_equal(push_store__target_set(f->db, "alice", "phone", 0, d, NULL, NOW), MQC_ERR_INVAL);
	assert_int_equal(push_store__target_set(f->db, "alice", "phone", 9, d, NULL, NOW), MQC_ERR_INVAL);
	assert_int_equal(push_store__target_set(f->db, "alice", "phone", PUSH_FCM, json_null(), NULL, NOW),
			MQC_ERR_INVAL);
	assert_int_equal(one(f->db, "SELECT count(*) FROM targets", NULL), 0);
	json_decref(d);
}

static void test_webhook_secret_made(void **state)
{
	struct fx *f = *state;
	json_t *d = json_pack("{s:s}", "url", "https://example.net/hook");
	char s1[64], s2[64];
	struct push_target *t;
	int n;

	assert_int_equal(push_store__target_set(f->db, "alice", "bot", PUSH_WEBHOOK, d, s1, NOW), MQC_OK);
	assert_int_equal(strlen(s1), 43);   /* 32 bytes, base64url without padding */
	assert_int_equal(strspn(s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	assert_int_equal(push_store__targets(f->db, "alice", &t, &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].secret, s1);
	assert_string_equal(json_string_value(json_object_get(t[0].data, "url")), "https://example.net/hook");
	push_store__target_free(&t[0]);
	free(t);
	/* registering again makes a new one */
	assert_int_equal(push_store__target_set(f->db, "alice", "bot", PUSH_WEBHOOK, d, s2, NOW), MQC_OK);
	assert_string_not_equal(s1, s2);
	/* no secret for the others */
	assert_int_equal(push_store__target_set(f->db, "alice", "bot", PUSH_FCM, d, s2, NOW), MQC_OK);
	assert_string_equal(s2, "");
	assert_int_equal(one(f->db, "SELECT length(secret) FROM targets WHERE device='bot'", NULL), 0);
	json_decref(d);
}

static void test_mutes_with_expiry(void **state)
{
	struct fx *f = *state;
	json_t *list;

	assert_false(push_store__muted(f->db, "alice", "d:bob", NOW));
	assert_int_equal(push_store__mute(f->db, "alice", "d:bob", 0), MQC_OK);
	assert_int_equal(push_store__mute(f->db, "alice", "r:lobby", NOW + 1000), MQC_OK);
	assert_int_equal(push_store__mute(f->db, "alice", "r:old", NOW - 1), MQC_OK);
	assert_int_equal(push_store__mute(f->db, "bob", "d:alice", 0), MQC_OK);
	assert_true(push_store__muted(f->db, "alice", "d:bob", NOW + 999999999));
	assert_true(push_store__muted(f->db, "alice", "r:lobby", NOW + 999));
	assert_false(push_store__muted(f->db, "alice", "r:lobby", NOW + 1000));
	assert_false(push_store__muted(f->db, "alice", "r:old", NOW));
	assert_false(push_store__muted(f->db, "alice", "d:carol", NOW));
	assert_int_equal(push_store__mutes_json(f->db, "alice", NOW, &list), MQC_OK);
	dumps_equal(list, "[{\"with\":\"bob\",\"until\":0},{\"room\":\"lobby\",\"until\":1764892801000}]");
	json_decref(list);
	assert_int_equal(push_store__mutes_json(f->db, "alice", NOW + 1000, &list), MQC_OK);
	dumps_equal(list, "[{\"with\":\"bob\",\"until\":0}]");
	json_decref(list);
	/* muting again replaces the time */
	assert_int_equal(push_store__mute(f->db, "alice", "r:lobby", 0), MQC_OK);
	assert_true(push_store__muted(f->db, "alice", "r:lobby", NOW + 5000));
	assert_int_equal(push_store__unmute(f->db, "alice", "d:bob"), MQC_OK);
	assert_int_equal(push_store__unmute(f->db, "alice", "d:bob"), MQC_OK);   /* nothing: ok */
	assert_false(push_store__muted(f->db, "alice", "d:bob", NOW));
	assert_true(push_store__muted(f->db, "bob", "d:alice", NOW));
	assert_int_equal(push_store__mute(f->db, "alice", "d:bob", -5), MQC_ERR_INVAL);
}

static void test_previews_off_unless_set(void **state)
{
	struct fx *f = *state;

	assert_false(push_store__previews(f->db, "alice"));
	assert_int_equal(push_store__previews_set(f->db, "alice", true), MQC_OK);
	assert_true(push_store__previews(f->db, "alice"));
	assert_false(push_store__previews(f->db, "bob"));
	assert_int_equal(push_store__previews_set(f->db, "alice", false), MQC_OK);
	assert_false(push_store__previews(f->db, "alice"));
}

static void test_enqueue_collapses(void **state)
{
	struct fx *f = *state;
	struct push_job j[4];
	int n;

	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 10, "m1", "bob", "hi", NOW + 2000),
			MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 12, "m2", "bob", NULL, NOW + 3000),
			MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "r:lobby", 13, "m3", "carol", "yo", NOW + 3000),
			MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 14, "m4", "bob", "last", NOW + 4000),
			MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 2);
	/* not due yet */
	assert_int_equal(push_store__due(f->db, NOW + 1999, j, 4, &n), MQC_OK);
	assert_int_equal(n, 0);
	/* the first message's due time is kept */
	assert_int_equal(push_store__due(f->db, NOW + 2000, j, 4, &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_string_equal(j[0].user, "alice");
	assert_string_equal(j[0].device, "phone");
	assert_string_equal(j[0].conv, "d:bob");
	assert_int_equal(j[0].count, 3);
	assert_int_equal(j[0].last_seq, 14);
	assert_string_equal(j[0].msg_id, "m4");
	assert_string_equal(j[0].sender, "bob");
	assert_string_equal(j[0].preview, "last");
	assert_int_equal(j[0].due, NOW + 2000);
	assert_int_equal(j[0].attempts, 0);
	push_store__job_free(&j[0]);
	assert_int_equal(push_store__due(f->db, NOW + 3000, j, 4, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(j[1].conv, "r:lobby");
	assert_int_equal(j[1].count, 1);
	assert_string_equal(j[1].sender, "carol");
	push_store__job_free(&j[0]);
	push_store__job_free(&j[1]);
	/* a later message without a preview takes the preview away */
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "r:lobby", 15, "m5", "dan", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__due(f->db, NOW + 3000, j, 4, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(j[1].sender, "dan");
	assert_null(j[1].preview);
	assert_int_equal(j[1].count, 2);
	push_store__job_free(&j[0]);
	push_store__job_free(&j[1]);
	/* another device is another job */
	assert_int_equal(push_store__enqueue(f->db, "alice", "ipad", "d:bob", 14, "m4", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 3);
}

static void test_due_order_retry_done(void **state)
{
	struct fx *f = *state;
	struct push_job j[8];
	int64_t next;
	int n;

	assert_int_equal(push_store__next_due(f->db, &next), MQC_OK);
	assert_int_equal(next, 0);
	assert_int_equal(push_store__enqueue(f->db, "u1", "d", "d:x", 1, "a", "x", NULL, NOW + 30), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "u2", "d", "d:x", 2, "b", "x", NULL, NOW + 10), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "u3", "d", "d:x", 3, "c", "x", NULL, NOW + 20), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "u4", "d", "d:x", 4, "d", "x", NULL, NOW + 10), MQC_OK);
	assert_int_equal(push_store__next_due(f->db, &next), MQC_OK);
	assert_int_equal(next, NOW + 10);
	/* oldest due first, then in the order they came; max respected */
	assert_int_equal(push_store__due(f->db, NOW + 100, j, 3, &n), MQC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(j[0].user, "u2");
	assert_string_equal(j[1].user, "u4");
	assert_string_equal(j[2].user, "u3");
	for(int i = 0; i < n; i++) push_store__job_free(&j[i]);
	assert_int_equal(push_store__due(f->db, NOW + 100, j, 0, &n), MQC_OK);
	assert_int_equal(n, 0);
	/* retry: later, one attempt more */
	assert_int_equal(push_store__due(f->db, NOW + 10, j, 8, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(push_store__job_retry(f->db, j[0].id, NOW + 1000), MQC_OK);
	assert_int_equal(push_store__job_done(f->db, j[1].id), MQC_OK);
	for(int i = 0; i < n; i++) push_store__job_free(&j[i]);
	assert_int_equal(push_store__due(f->db, NOW + 100, j, 8, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(j[0].user, "u3");
	assert_string_equal(j[1].user, "u1");
	for(int i = 0; i < n; i++) push_store__job_free(&j[i]);
	assert_int_equal(push_store__due(f->db, NOW + 1000, j, 8, &n), MQC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(j[2].user, "u2");
	assert_int_equal(j[2].attempts, 1);
	assert_int_equal(j[2].due, NOW + 1000);
	for(int i = 0; i < n; i++) push_store__job_free(&j[i]);
	assert_int_equal(push_store__next_due(f->db, &next), MQC_OK);
	assert_int_equal(next, NOW + 20);
	/* a retried job still collapses the conversation's next message */
	assert_int_equal(push_store__enqueue(f->db, "u2", "d", "d:x", 9, "z", "x", NULL, NOW + 5), MQC_OK);
	assert_int_equal(one(f->db, "SELECT due FROM queue WHERE \"user\" ='u2'", NULL), NOW + 1000);
	assert_int_equal(one(f->db, "SELECT attempts FROM queue WHERE \"user\" ='u2'", NULL), 1);
	assert_int_equal(one(f->db, "SELECT count FROM queue WHERE \"user\" ='u2'", NULL), 2);
}

/* A message enqueued while its conversation's job is on its way is not
 * lost when the provider accepts the job. */
static void test_job_sent_keeps_what_came_meanwhile(void **state)
{
	struct fx *f = *state;
	struct push_job j[2], k[2];
	int n;

	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 2, "b", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__due(f->db, NOW, j, 2, &n), MQC_OK);
	assert_int_equal(n, 1);
	/* nothing came: gone */
	assert_int_equal(push_store__job_sent(f->db, &j[0]), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 0);
	push_store__job_free(&j[0]);
	/* two came while it was sent: it stays for them */
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 3, "c", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__due(f->db, NOW, j, 2, &n), MQC_OK);
	assert_int_equal(push_store__job_retry(f->db, j[0].id, NOW + 10), MQC_OK);
	j[0].attempts = 1;
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 4, "d", "bob", NULL, NOW + 5), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 5, "e", "bob", "hi", NOW + 6), MQC_OK);
	assert_int_equal(push_store__job_sent(f->db, &j[0]), MQC_OK);
	push_store__job_free(&j[0]);
	assert_int_equal(push_store__due(f->db, NOW + 10, k, 2, &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(k[0].count, 2);
	assert_int_equal(k[0].last_seq, 5);
	assert_string_equal(k[0].msg_id, "e");
	assert_string_equal(k[0].preview, "hi");
	assert_int_equal(k[0].attempts, 0);
	assert_int_equal(k[0].due, NOW + 10);
	assert_int_equal(push_store__job_sent(f->db, &k[0]), MQC_OK);
	push_store__job_free(&k[0]);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 0);
	/* a job removed meanwhile (its target went): nothing, ok */
	assert_int_equal(push_store__job_sent(f->db, &k[0]), MQC_OK);
}

static void test_jobs_drop(void **state)
{
	struct fx *f = *state;

	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "ipad", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "r:lobby", 2, "b", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "bob", "phone", "d:alice", 3, "c", "alice", NULL, NOW), MQC_OK);
	/* one conversation of a person (muted meanwhile) */
	assert_int_equal(push_store__jobs_drop(f->db, "alice", "d:bob"), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue WHERE \"user\" ='alice'", NULL), 1);
	/* all of a person's (came online) */
	assert_int_equal(push_store__jobs_drop(f->db, "alice", NULL), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue WHERE \"user\" ='alice'", NULL), 0);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 1);
}

static void test_cursor(void **state)
{
	struct fx *f = *state;
	int64_t seq = -1;

	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 0);
	assert_int_equal(push_store__set_cursor(f->db, 9007199254740993LL), MQC_OK);
	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 9007199254740993LL);
	assert_int_equal(push_store__set_cursor(f->db, 5), MQC_OK);
	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 5);
}

/* A batch: everything written inside it is one transaction, which the
 * functions join rather than end; a second connection sees nothing until
 * the commit, and nothing at all after a rollback. */
static void test_begin_commit_rollback(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	struct push_store *other;
	int64_t seq;
	int removed;

	assert_int_equal(push_store__open(f->dir, &other, err, sizeof(err)), MQC_OK);
	set(f->db, "alice", "phone", PUSH_FCM, "t");
	/* rolled back: nothing */
	assert_int_equal(push_store__begin(f->db), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 2, "b", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__target_remove(f->db, "alice", "phone", &removed), MQC_OK);
	assert_int_equal(removed, 1);
	assert_int_equal(push_store__set_cursor(f->db, 2), MQC_OK);
	if(!be.pg) assert_int_equal(sqlite3_get_autocommit(push_store_sqlite__handle(f->db)), 0);   /* still in the batch */
	assert_int_equal(one(other, "SELECT count(*) FROM targets", NULL), 1);
	push_store__rollback(f->db);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 0);
	assert_int_equal(one(f->db, "SELECT count(*) FROM targets", NULL), 1);
	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 0);
	/* committed: all of it, seen by the other connection only then */
	assert_int_equal(push_store__begin(f->db), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 2, "b", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "r:x", 3, "c", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__set_cursor(f->db, 3), MQC_OK);
	assert_int_equal(one(other, "SELECT count(*) FROM queue", NULL), 0);
	assert_int_equal(push_store__cursor(other, &seq), MQC_OK);
	assert_int_equal(seq, 0);
	assert_int_equal(push_store__commit(f->db), MQC_OK);
	if(!be.pg) assert_int_equal(sqlite3_get_autocommit(push_store_sqlite__handle(f->db)), 1);
	assert_int_equal(one(other, "SELECT count(*) FROM queue", NULL), 2);
	assert_int_equal(one(other, "SELECT count FROM queue WHERE conv='d:bob'", NULL), 2);
	assert_int_equal(push_store__cursor(other, &seq), MQC_OK);
	assert_int_equal(seq, 3);
	/* a refused write inside a batch leaves the batch open, the rest in */
	assert_int_equal(push_store__begin(f->db), MQC_OK);
	assert_int_equal(push_store__mute(f->db, "alice", "d:bob", 0), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", NULL, 1, "a", "bob", NULL, NOW), MQC_ERR_INVAL);
	assert_int_equal(push_store__commit(f->db), MQC_OK);
	assert_true(push_store__muted(other, "alice", "d:bob", NOW));
	/* the other connection's batch, seen here once committed */
	assert_int_equal(push_store__begin(other), MQC_OK);
	assert_int_equal(push_store__set_cursor(other, 4), MQC_OK);
	assert_int_equal(push_store__commit(other), MQC_OK);
	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 4);
	push_store__rollback(f->db);   /* none open: harmless */
	push_store__close(other);
}

/* ---- PostgreSQL only ---- */

/* Several programs (nodes starting at once) making the schema on an empty
 * database: each opens, none fails, one schema. */
static void test_pg_created_by_several_at_once(void **state)
{
	struct fx *f = *state;
	pid_t pids[4];
	int st, i;

	push_store__close(f->db);
	f->db = NULL;
	pg_sql("DROP SCHEMA push CASCADE");
	for(i = 0; i < 4; i++){
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if(pids[i] == 0){
			struct push_store *ps;
			char err[256] = "";
			int rc = push_store__open(f->dir, &ps, err, sizeof(err));

			if(rc != MQC_OK) fprintf(stderr, "child %d: %s\n", i, err);
			else push_store__close(ps);
			_exit(rc == MQC_OK ? 0 : 1);
		}
	}
	for(i = 0; i < 4; i++){
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(push_store__open(f->dir, &f->db, NULL, 0), MQC_OK);
	assert_int_equal(one(f->db, "SELECT count(*) FROM meta", NULL), 2);
}

#define TAKEN_JOBS 300

/* One taker (a child: a node's push thread): takes due jobs a few at a
 * time, writes each id to fd, then gives each back as sent, until the
 * queue is empty. Bounded in rounds. */
static int taker(const char *dir, int fd)
{
	struct push_store *ps;
	struct push_job j[5];
	int64_t next;
	int n, i, rounds;

	if(push_store__open(dir, &ps, NULL, 0) != MQC_OK) return 1;
	for(rounds = 0; rounds < 100000; rounds++){
		if(push_store__due(ps, NOW, j, 5, &n) != MQC_OK) return 2;
		for(i = 0; i < n; i++){
			if(write(fd, &j[i].id, sizeof(j[i].id)) != (ssize_t)sizeof(j[i].id)) return 3;
		}
		for(i = 0; i < n; i++){
			if(push_store__job_done(ps, j[i].id) != MQC_OK) return 4;
			push_store__job_free(&j[i]);
		}
		if(n == 0){
			if(push_store__next_due(ps, &next) != MQC_OK) return 5;
			if(next == 0) break;   /* the other took the rest */
		}
	}
	push_store__close(ps);
	return rounds < 100000 ? 0 : 6;
}

/* Two takers at once over one queue: every job taken once, by one. The
 * ids each wrote are disjoint and together are all. */
static void test_pg_two_takers_never_share_a_job(void **state)
{
	struct fx *f = *state;
	static unsigned char seen[TAKEN_JOBS + 1];
	int64_t first, id, t0, t1;
	char user[16];
	int pipes[2][2], st, k, got[2] = {0, 0};
	pid_t pids[2];

	t0 = time__mono_ns();
	for(int i = 0; i < TAKEN_JOBS; i++){
		snprintf(user, sizeof(user), "u%03d", i);
		assert_int_equal(push_store__enqueue(f->db, user, "d", "d:x", i + 1, "m", "x", NULL, NOW - 1), MQC_OK);
	}
	t1 = time__mono_ns();
	first = one(f->db, "SELECT min(id) FROM queue", NULL);
	memset(seen, 0, sizeof(seen));
	for(k = 0; k < 2; k++){
		assert_int_equal(pipe(pipes[k]), 0);
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if(pids[k] == 0){
			close(pipes[k][0]);
			_exit(taker(f->dir, pipes[k][1]));
		}
		close(pipes[k][1]);
	}
	for(k = 0; k < 2; k++){
		while(read(pipes[k][0], &id, sizeof(id)) == (ssize_t)sizeof(id)){
			assert_true(id >= first && id < first + TAKEN_JOBS);
			assert_int_equal(seen[id - first], 0);   /* never twice */
			seen[id - first] = (unsigned char)(k + 1);
			got[k]++;
		}
		close(pipes[k][0]);
		assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(got[0] + got[1], TAKEN_JOBS);
	/* What it costs, for the record (docs/SCALING.md, "Status"): an
	 * enqueue is one statement; a take of up to 5 and each job's done. */
	print_message("two takers: %d and %d of %d jobs; enqueue %.3f ms each, taken and done in %.0f ms"
			" (%.3f ms a job)\n", got[0], got[1], TAKEN_JOBS, (double)(t1 - t0) / 1e6 / TAKEN_JOBS,
			(double)(time__mono_ns() - t1) / 1e6, (double)(time__mono_ns() - t1) / 1e6 / TAKEN_JOBS);
	assert_int_equal(one(f->db, "SELECT count(*) FROM queue", NULL), 0);
}

/* A taker that died with its jobs (a child that takes them and exits
 * without closing): another has none of them before the lease ends, and
 * all of them after. While it lives, a taker gets its own again; one that
 * stops (closes) frees what it took at once. */
static void test_pg_dead_takers_jobs_taken_after_the_lease(void **state)
{
	struct fx *f = *state;
	struct push_store *other;
	struct push_job j[4], k[4];
	int64_t next, first;
	int n, m, st;
	pid_t pid;

	assert_int_equal(push_store__open(f->dir, &other, NULL, 0), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "alice", "phone", "d:bob", 1, "a", "bob", NULL, NOW), MQC_OK);
	assert_int_equal(push_store__enqueue(f->db, "carol", "phone", "d:bob", 2, "b", "bob", NULL, NOW), MQC_OK);
	first = one(f->db, "SELECT min(id) FROM queue", NULL);
	/* a live taker gets its own again (the push thread skips those in
	 * flight and starts those it could not); the other sees them not due
	 * before the lease ends */
	assert_int_equal(push_store__due(f->db, NOW, j, 4, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(push_store__due(other, NOW + 1, k, 4, &m), MQC_OK);
	assert_int_equal(m, 0);
	assert_int_equal(push_store__next_due(other, &next), MQC_OK);
	assert_int_equal(next, NOW + PUSH_STORE_LEASE_MS);
	assert_int_equal(push_store__next_due(f->db, &next), MQC_OK);
	assert_int_equal(next, NOW);
	assert_int_equal(push_store__due(f->db, NOW + 2, k, 4, &m), MQC_OK);
	assert_int_equal(m, 2);
	assert_int_equal(k[0].id, j[0].id);
	for(int i = 0; i < 2; i++){
		push_store__job_free(&j[i]);
		push_store__job_free(&k[i]);
	}
	/* a taker that stops frees them at once */
	push_store__close(f->db);
	f->db = NULL;
	assert_int_equal(push_store__due(other, NOW + 3, k, 4, &m), MQC_OK);
	assert_int_equal(m, 2);
	/* ... and one that dies does not: they wait for the lease */
	push_store__close(other);
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0){
		struct push_store *ps;

		if(push_store__open(f->dir, &ps, NULL, 0) != MQC_OK) _exit(1);
		if(push_store__due(ps, NOW + 10, j, 4, &n) != MQC_OK || n != 2) _exit(2);
		_exit(0);   /* gone, its connection with it */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(push_store__open(f->dir, &other, NULL, 0), MQC_OK);
	assert_int_equal(push_store__due(other, NOW + 10 + PUSH_STORE_LEASE_MS - 1, k, 4, &m), MQC_OK);
	assert_int_equal(m, 0);
	assert_int_equal(push_store__due(other, NOW + 10 + PUSH_STORE_LEASE_MS, k, 4, &m), MQC_OK);
	assert_int_equal(m, 2);
	assert_int_equal(k[0].id, first);
	assert_int_equal(k[1].id, first + 1);
	/* a job given back (retried) is free at once for anyone */
	assert_int_equal(push_store__job_retry(other, k[0].id, NOW + 5), MQC_OK);
	assert_int_equal(push_store__open(f->dir, &f->db, NULL, 0), MQC_OK);
	assert_int_equal(push_store__due(f->db, NOW + 20, j, 2, &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(j[0].id, k[0].id);
	assert_int_equal(j[0].attempts, 1);
	push_store__job_free(&j[0]);
	for(int i = 0; i < 2; i++) push_store__job_free(&k[i]);
	push_store__close(other);
}

/* The cursor read inside a batch is held until the batch ends: another
 * batch reading it waits (here: gives up after its lock wait), then reads
 * what the first wrote. */
static void test_pg_cursor_held_by_a_batch(void **state)
{
	struct fx *f = *state;
	struct push_store *other;
	int64_t seq = -1;

	assert_int_equal(push_store__open(f->dir, &other, NULL, 0), MQC_OK);
	assert_int_equal(push_store__set_busy_ms(other, 200), MQC_OK);
	assert_int_equal(push_store__begin(f->db), MQC_OK);
	assert_int_equal(push_store__cursor(f->db, &seq), MQC_OK);
	assert_int_equal(seq, 0);
	/* outside a batch, a read does not wait */
	assert_int_equal(push_store__cursor(other, &seq), MQC_OK);
	assert_int_equal(push_store__begin(other), MQC_OK);
	assert_int_equal(push_store__cursor(other, &seq), MQC_ERR_BUSY);
	push_store__rollback(other);
	assert_int_equal(push_store__set_cursor(f->db, 10), MQC_OK);
	assert_int_equal(push_store__commit(f->db), MQC_OK);
	assert_int_equal(push_store__begin(other), MQC_OK);
	assert_int_equal(push_store__cursor(other, &seq), MQC_OK);
	assert_int_equal(seq, 10);
	assert_int_equal(push_store__commit(other), MQC_OK);
	push_store__close(other);
}

/* The server restarted under an open store: a call may fail once, then
 * the store connects again by itself. */
static void test_pg_reconnects(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	int n = -1, rc;

	set(f->db, "alice", "phone", PUSH_FCM, "t");
	snprintf(cmd, sizeof(cmd), "sh tests/unit/pg_cluster.sh restart '%s'", be.dir);
	assert_int_equal(system(cmd), 0);
	rc = push_store__target_count(f->db, "alice", &n);
	if(rc != MQC_OK){
		assert_int_equal(rc, MQC_ERR_IO);
		rc = push_store__target_count(f->db, "alice", &n);
	}
	assert_int_equal(rc, MQC_OK);
	assert_int_equal(n, 1);
}

/* The tests of both backends, then those of one. */
#define BOTH \
	cmocka_unit_test_setup_teardown(test_schema_made_once_and_found_again, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_another_schema_version_is_refused, setup, teardown), \
	cmocka_unit_test(test_providers_by_name), \
	cmocka_unit_test_setup_teardown(test_targets_set_replace_remove, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_remove_others_keeps_one, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_user_forget_takes_everything_of_one_person, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_up_to_the_most_targets, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_bad_targets_refused, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_webhook_secret_made, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_mutes_with_expiry, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_previews_off_unless_set, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_enqueue_collapses, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_due_order_retry_done, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_job_sent_keeps_what_came_meanwhile, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_jobs_drop, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_cursor, setup, teardown), \
	cmocka_unit_test_setup_teardown(test_begin_commit_rollback, setup, teardown)

static int run_sqlite(void)
{
	const struct CMUnitTest tests[] = {
		BOTH,
	};
	return cmocka_run_group_tests_name("push store on sqlite", tests, NULL, NULL);
}

static int run_pg_tests(void)
{
	const struct CMUnitTest tests[] = {
		BOTH,
		cmocka_unit_test_setup_teardown(test_pg_created_by_several_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_two_takers_never_share_a_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_dead_takers_jobs_taken_after_the_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_cursor_held_by_a_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_reconnects, setup, teardown),
	};
	return cmocka_run_group_tests_name("push store on postgresql", tests, NULL, NULL);
}

int main(void)
{
	int failed;

	log_init("test_push_store", LOG_LVL_ERROR);
	failed = run_sqlite() != 0;
	return pg_run("push store", run_pg_tests) || failed;
}
