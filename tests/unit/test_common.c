/* test_common.c - the shared code the plugin relies on: the name grammar
 * (common/names.c), the envelope validator (common/envelope.c), password
 * hashing (common/pwhash.c), the archive's keys (common/archkey.c), the one
 * random source (common/rand.c) and the SQLite status mapping both stores use
 * (common/sqlutil.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archkey.h"
#include "envelope.h"
#include "err.h"
#include "fast_scan.h"
#include "names.h"
#include "pwhash.h"
#include "rand.h"
#include "sqlutil.h"

/* ---- archive keys ---- */

/* The dedup hash is stored in every row of archive.db: its values are
 * pinned (FNV-1a 64 of "alice\0m1", computed apart). */
static void test_archkey(void **state)
{
	char a[96], b[96];

	(void)state;
	assert_true(archkey__id_hash("alice", "m1") == INT64_C(5529305734151787813));
	assert_true(archkey__id_hash("", "") == INT64_C(4953163356653287321));
	assert_true(archkey__id_hash("bob", "AbC-_9") == INT64_C(-3026648388415089699));
	assert_true(archkey__id_hash("alice", "m1") != archkey__id_hash("alicem", "1"));
	archkey__dm_conv("bob", "alice", a, sizeof(a));
	archkey__dm_conv("alice", "bob", b, sizeof(b));
	assert_string_equal(a, "d:alice|bob");
	assert_string_equal(b, "d:alice|bob");
}

/* ---- random bytes ---- */

static void test_rand_bytes(void **state)
{
	unsigned char a[32], b[32], zero[32] = {0};

	(void)state;
	assert_int_equal(rand__bytes(a, 0), MQC_OK);
	memset(a, 0, sizeof(a));
	assert_int_equal(rand__bytes(a, sizeof(a)), MQC_OK);
	assert_int_equal(rand__bytes(b, sizeof(b)), MQC_OK);
	/* 2^-256 odds of a false failure */
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
}

/* ---- SQLite status: one meaning for auth.db and archive.db ---- */

static void test_sqlutil_status(void **state)
{
	(void)state;
	assert_int_equal(sqlutil__status(SQLITE_OK), MQC_OK);
	assert_int_equal(sqlutil__status(SQLITE_ROW), MQC_OK);
	assert_int_equal(sqlutil__status(SQLITE_DONE), MQC_OK);
	assert_int_equal(sqlutil__status(SQLITE_BUSY), MQC_ERR_BUSY);
	assert_int_equal(sqlutil__status(SQLITE_LOCKED), MQC_ERR_BUSY);
	assert_int_equal(sqlutil__status(SQLITE_NOMEM), MQC_ERR_NOMEM);
	assert_int_equal(sqlutil__status(SQLITE_CONSTRAINT), MQC_ERR_EXISTS);
	assert_int_equal(sqlutil__status(SQLITE_CONSTRAINT_UNIQUE), MQC_ERR_EXISTS);
	/* a full disk is "cannot write here now", like a read-only file */
	assert_int_equal(sqlutil__status(SQLITE_FULL), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_IOERR), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_IOERR_WRITE), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_READONLY), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_CANTOPEN), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_PERM), MQC_ERR_IO);
	assert_int_equal(sqlutil__status(SQLITE_CORRUPT), MQC_ERR_DB);
	assert_int_equal(sqlutil__status(SQLITE_NOTADB), MQC_ERR_DB);
	assert_int_equal(sqlutil__status(SQLITE_ERROR), MQC_ERR_DB);
}

/* A real full database (page limit reached) and a real duplicate key. */
static void test_sqlutil_status_real(void **state)
{
	sqlite3 *db = NULL;
	int rc, i;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(k TEXT PRIMARY KEY, v BLOB);"
			"INSERT INTO t VALUES('a', NULL);", NULL, NULL, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, "INSERT INTO t VALUES('a', NULL);", NULL, NULL, NULL);
	assert_int_equal(sqlutil__status(rc), MQC_ERR_EXISTS);
	assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count=8;", NULL, NULL, NULL), SQLITE_OK);
	rc = SQLITE_OK;
	for(i = 0; i < 100 && rc == SQLITE_OK; i++){
		char sql[96];

		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES('k%d', zeroblob(4000));", i);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	assert_int_equal(rc, SQLITE_FULL);
	assert_int_equal(sqlutil__status(rc), MQC_ERR_IO);
	sqlite3_close(db);
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const char *const good[] = {
		"a", "0", "alice", "a.b", "a-b", "a_b", "9lives", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const bad[] = {
		"", "A", "Alice", "_register", ".a", "-a", "_a", "a b", "a/b", "a+", "a#", "a@b",
		"a\x01", "\xc3\xa9t\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a\xff",
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(good)/sizeof(good[0]); i++){
		if(!names__valid_str(good[i])){
			print_error("refused: %s\n", good[i]);
			fail();
		}
	}
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		if(names__valid_str(bad[i])){
			print_error("accepted: %s\n", bad[i]);
			fail();
		}
	}
	assert_false(names__valid_str(NULL));
	/* Length-bounded: a valid prefix of a longer buffer. */
	assert_true(names__valid("alice/bob", 5));
	assert_false(names__valid("alice", 0));
	assert_false(names__valid(NULL, 3));

	assert_true(names__valid_device("Phone-1.x_Y", 11));
	assert_false(names__valid_device("a b", 3));
	assert_false(names__valid_device("a/b", 3));
	assert_false(names__valid_device("a+", 2));
	assert_false(names__valid_device("", 0));
	assert_true(names__valid_device("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64));
	assert_false(names__valid_device("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65));

	assert_true(names__valid_msgid("01HZX3V9K2", 10));
	assert_true(names__valid_msgid("a-b_C", 5));
	assert_false(names__valid_msgid("a.b", 3));
	assert_false(names__valid_msgid("", 0));
	assert_false(names__valid_msgid("a b", 3));
}

/* fast_scan__msgid_span16: every byte value at every position of an exact
 * 16-byte heap block (a read past it is an error under SAN=1). */
static void test_msgid_span16(void **state)
{
	char *block = malloc(16);
	unsigned pos, b;

	(void)state;
	assert_non_null(block);
	memcpy(block, "aZ09_-aZ09_-aZ09", 16);
	assert_int_equal(fast_scan__msgid_span16(block), 16);
	for(pos=0; pos<16; pos++){
		for(b=0; b<256; b++){
			bool in = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
				|| (b >= '0' && b <= '9') || b == '_' || b == '-';
			char keep = block[pos];

			block[pos] = (char)b;
			if(fast_scan__msgid_span16(block) != (in ? 16 : pos)){
				fail_msg("0x%02x at %u: span %u", b, pos, fast_scan__msgid_span16(block));
			}
			block[pos] = keep;
		}
	}
	free(block);
}

/* The registration client id, and the split-then-compare reading it
 * replaces in the plugin and the archiver: both agree on every case. */
static bool register_by_split(const char *id)
{
	size_t ulen, dlen;
	const char *dev;

	return names__split_clientid(id, &ulen, &dev, &dlen) && dev != NULL
			&& ulen == strlen(REGISTER_USER) && memcmp(id, REGISTER_USER, ulen) == 0;
}

static void test_register_clientid(void **state)
{
	static const char *const good[] = {
		"_register@a", "_register@abcdefgh", "_register@A-b_c.9",
		"_register@0123456789012345678901234567890123456789012345678901234567890123",
	};
	static const char *const bad[] = {
		"", "_register", "_register@", "_register@a@b", "_register@a/b", "_register@a b",
		"_registe@abcdefgh", "_registerx@abcdefgh", "register@abcdefgh", "alice@abcdefgh",
		"_Register@abcdefgh", "@abcdefgh", "_register@abc+", "_register@abc#",
		"_register@01234567890123456789012345678901234567890123456789012345678901234",
	};
	size_t i, dlen = 0;

	(void)state;
	for(i = 0; i < sizeof(good) / sizeof(good[0]); i++){
		assert_true(names__register_clientid(good[i], strlen(good[i]), NULL));
		assert_true(register_by_split(good[i]));
	}
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_false(names__register_clientid(bad[i], strlen(bad[i]), NULL));
		assert_false(register_by_split(bad[i]));
	}
	assert_true(names__register_clientid("_register@abcdefgh", 18, &dlen));
	assert_int_equal(dlen, 8);
	/* the length is the id's, not the string's: a topic level in place */
	assert_true(names__register_clientid("_register@abc/resp", 13, NULL));
	assert_false(names__register_clientid("_register@abc/resp", 18, NULL));
	assert_false(names__register_clientid(NULL, 0, NULL));
}

static void test_split_clientid(void **state)
{
	size_t ulen = 99, dlen = 99;
	const char *dev = (const char *)1;
	char longid[CLIENTID_MAX_LEN + 2];

	(void)state;
	assert_true(names__split_clientid("alice", &ulen, &dev, &dlen));
	assert_int_equal(ulen, 5);
	assert_null(dev);
	assert_int_equal(dlen, 0);
	assert_true(names__split_clientid("alice@Phone.1", &ulen, &dev, &dlen));
	assert_int_equal(ulen, 5);
	assert_string_equal(dev, "Phone.1");
	assert_int_equal(dlen, 7);
	/* The user part is not checked here (the caller compares it). */
	assert_true(names__split_clientid("_register@abcdefgh", &ulen, &dev, &dlen));
	assert_int_equal(ulen, 9);
	assert_false(names__split_clientid("", &ulen, &dev, &dlen));
	assert_false(names__split_clientid(NULL, &ulen, &dev, &dlen));
	assert_false(names__split_clientid("@dev", &ulen, &dev, &dlen));
	assert_false(names__split_clientid("alice@", &ulen, &dev, &dlen));
	assert_false(names__split_clientid("alice@a@b", &ulen, &dev, &dlen));
	assert_false(names__split_clientid("alice@a/b", &ulen, &dev, &dlen));
	assert_false(names__split_clientid("alice@a#", &ulen, &dev, &dlen));
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(names__split_clientid(longid, &ulen, &dev, &dlen));
}

/* ---- envelope ---- */

static bool parse(const char *s, struct envelope *env, const char **why)
{
	*why = NULL;
	return envelope__parse(s, strlen(s), env, why);
}

static void test_envelope_valid(void **state)
{
	struct envelope env;
	const char *why;
	char out[64];

	(void)state;
	assert_true(parse("{\"id\":\"01HZX3V9K2\",\"type\":\"text\",\"body\":\"hello\",\"ts\":1732665600123}",
				&env, &why));
	assert_int_equal(env.type, ENVELOPE_TEXT);
	assert_int_equal(env.id.len, 10);
	assert_memory_equal(env.body.ptr, "hello", 5);
	assert_true(env.has_ts);
	assert_int_equal(env.ts, 1732665600123LL);

	assert_true(parse("{\"id\":\"01HZX3VA00\",\"type\":\"receipt\",\"ref\":\"01HZX3V9K2\",\"status\":\"read\"}",
				&env, &why));
	assert_int_equal(env.type, ENVELOPE_RECEIPT);
	assert_int_equal(env.status, ENVELOPE_STATUS_READ);
	assert_false(env.has_ts);
	assert_true(parse("{\"id\":\"x\",\"type\":\"receipt\",\"ref\":\"y\",\"status\":\"delivered\"}",
				&env, &why));
	assert_int_equal(env.status, ENVELOPE_STATUS_DELIVERED);
	/* Whitespace, member order, unknown members of any JSON kind. */
	assert_true(parse(" \n{ \"body\" : \"x\" , \"type\":\"text\",\"id\":\"a\", \"extra\": [1, {\"b\": null},"
				" true, false, -1.5e3, \"s\"] }\t", &env, &why));
	/* UTF-8 and escapes in the body; surrogate pair escapes. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"h\xc3\xa9llo \xf0\x9f\x98\x80 \\\"q\\\" \\ud83d\\ude00\"}",
				&env, &why));
	assert_true(env.body.escaped);
	assert_true(envelope__unescape(&env.body, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "\"q\""));
	/* ts at both ends of its range. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":0}", &env, &why));
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":900719925474099}", &env, &why));
	assert_int_equal(env.ts, 900719925474099LL);
	/* The exact top of the range, and one past it. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":9007199254740990}", &env, &why));
	assert_int_equal(env.ts, 9007199254740990LL);
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":9007199254740991}", &env, &why));
	assert_int_equal(env.ts, ENVELOPE_MAX_TS);
	assert_false(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":9007199254740992}", &env, &why));
	/* Nesting up to the limit is fine. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"n\":[[[[[[[1]]]]]]]}", &env, &why));
}

static void test_envelope_malformed(void **state)
{
	static const struct {
		const char *json;
		const char *why;                /* NULL: any reason */
	} bad[] = {
		{"", "empty payload"},
		{"   ", NULL},
		{"hello", NULL},
		{"[]", NULL},
		{"\"s\"", NULL},
		{"null", NULL},
		{"{", NULL},
		{"{}", "missing id"},
		{"{\"type\":\"text\",\"body\":\"x\"}", "missing id"},
		{"{\"id\":\"a\",\"body\":\"x\"}", "missing type"},
		{"{\"id\":\"a\",\"type\":\"text\"}", "text without body"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\"}", "empty body"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":1}", "body is not a string"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"status\":\"read\"}", "text with status"},
		{"{\"id\":\"a\",\"type\":\"image\",\"body\":\"x\"}", "unknown type"},
		{"{\"id\":\"a\",\"type\":1,\"body\":\"x\"}", "type is not a string"},
		{"{\"id\":1,\"type\":\"text\",\"body\":\"x\"}", "id is not a string"},
		{"{\"id\":\"\",\"type\":\"text\",\"body\":\"x\"}", "invalid id"},
		{"{\"id\":\"a b\",\"type\":\"text\",\"body\":\"x\"}", "invalid id"},
		{"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"type\":\"text\",\"body\":\"x\"}",
			"invalid id"},
		{"{\"id\":\"a\",\"type\":\"receipt\",\"status\":\"read\"}", "receipt without ref"},
		{"{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b\"}", "receipt without status"},
		{"{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b\",\"status\":\"seen\"}", "invalid status"},
		{"{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b c\",\"status\":\"read\"}", "invalid ref"},
		{"{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b\",\"status\":\"read\",\"body\":\"x\"}", "receipt with body"},
		/* duplicates */
		{"{\"id\":\"a\",\"id\":\"b\",\"type\":\"text\",\"body\":\"x\"}", "duplicate member"},
		{"{\"id\":\"a\",\"type\":\"text\",\"type\":\"text\",\"body\":\"x\"}", "duplicate member"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"body\":\"y\"}", "duplicate member"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":1,\"ts\":2}", "duplicate member"},
		/* ts */
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":9007199254740992}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":99999999999999999999999}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":-1}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":1.5}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":\"1\"}", "ts is not a number"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":01}", NULL},
		/* UTF-8 and strings */
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\xff\"}", "not valid UTF-8"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\xc0\xaf\"}", "not valid UTF-8"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\xed\xa0\x80\"}", "not valid UTF-8"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\xf4\x90\x80\x80\"}", "not valid UTF-8"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\xe2\x82\"}", "not valid UTF-8"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\\ud800\"}", "lone surrogate escape"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\\udc00x\"}", "lone surrogate escape"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\\u12\"}", "bad \\u escape"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\\x\"}", "bad escape"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"a\nb\"}", "control character in string"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"\\u0000\"}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x}", NULL},
		/* structure */
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\"} x", "trailing data after the object"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\"}{}", "trailing data after the object"},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",}", NULL},
		{"{\"id\":\"a\" \"type\":\"text\",\"body\":\"x\"}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"u\":tru}", NULL},
		{"{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"n\":[[[[[[[[[1]]]]]]]]]}", "nested too deep"},
		{"{'id':'a','type':'text','body':'x'}", NULL},
	};
	struct envelope env;
	const char *why;
	size_t i;

	(void)state;
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		bool ok = parse(bad[i].json, &env, &why);
		if(ok || why == NULL || (bad[i].why && strcmp(why, bad[i].why) != 0)){
			print_error("case %zu %s: ok=%d why=%s (want %s)\n", i, bad[i].json, ok,
					why ? why : "(null)", bad[i].why ? bad[i].why : "any");
			fail();
		}
	}
	/* A NUL byte inside the payload (length-delimited). */
	assert_false(envelope__parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\0y\"}", 35, &env, &why));
	/* NULL payload. */
	assert_false(envelope__parse(NULL, 0, &env, &why));
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(utf8__valid("", 0));
	assert_true(utf8__valid("abc", 3));
	assert_true(utf8__valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_true(utf8__valid("\xf4\x8f\xbf\xbf", 4));          /* U+10FFFF */
	assert_false(utf8__valid("\xf4\x90\x80\x80", 4));         /* past U+10FFFF */
	assert_false(utf8__valid("\xed\xa0\x80", 3));             /* surrogate */
	assert_false(utf8__valid("\xc1\xbf", 2));                 /* overlong */
	assert_false(utf8__valid("\xe0\x80\xaf", 3));             /* overlong */
	assert_false(utf8__valid("\x80", 1));
	assert_false(utf8__valid("\xc3", 1));
	assert_false(utf8__valid("\xfe", 1));
}

/* ---- pwhash ---- */

static void test_pwhash_round_trip(void **state)
{
	char h1[PWHASH_STR_LEN], h2[PWHASH_STR_LEN];
	bool ok = false;

	(void)state;
	assert_int_equal(pwhash__make("secret", 6, PWHASH_MIN_ITERATIONS, h1, sizeof(h1)), MQC_OK);
	assert_int_equal(pwhash__make("secret", 6, PWHASH_MIN_ITERATIONS, h2, sizeof(h2)), MQC_OK);
	assert_int_equal(strncmp(h1, "$pbkdf2-sha512$1000$", 20), 0);
	/* Salted: same password, different stored forms. */
	assert_string_not_equal(h1, h2);
	assert_int_equal(pwhash__iterations(h1), PWHASH_MIN_ITERATIONS);
	assert_int_equal(pwhash__verify("secret", 6, h1, &ok), MQC_OK);
	assert_true(ok);
	assert_int_equal(pwhash__verify("secret", 6, h2, &ok), MQC_OK);
	assert_true(ok);
	assert_int_equal(pwhash__verify("Secret", 6, h1, &ok), MQC_OK);
	assert_false(ok);
	assert_int_equal(pwhash__verify("secre", 5, h1, &ok), MQC_OK);
	assert_false(ok);
	assert_int_equal(pwhash__verify("", 0, h1, &ok), MQC_OK);
	assert_false(ok);
	/* Length-delimited: bytes after pwlen do not count. */
	assert_int_equal(pwhash__verify("secretXYZ", 6, h1, &ok), MQC_OK);
	assert_true(ok);
	/* An empty password can be hashed and verified too. */
	assert_int_equal(pwhash__make("", 0, PWHASH_MIN_ITERATIONS, h2, sizeof(h2)), MQC_OK);
	assert_int_equal(pwhash__verify("", 0, h2, &ok), MQC_OK);
	assert_true(ok);
}

static void test_pwhash_limits(void **state)
{
	char h[PWHASH_STR_LEN], small[20];
	char *longpw = malloc(PWHASH_MAX_PASSWORD + 1);
	bool ok = true;

	(void)state;
	assert_non_null(longpw);
	memset(longpw, 'p', PWHASH_MAX_PASSWORD + 1);
	assert_int_equal(pwhash__make(longpw, PWHASH_MAX_PASSWORD + 1, PWHASH_MIN_ITERATIONS, h, sizeof(h)),
			MQC_ERR_INVAL);
	assert_int_equal(pwhash__make(longpw, PWHASH_MAX_PASSWORD, PWHASH_MIN_ITERATIONS, h, sizeof(h)), MQC_OK);
	assert_int_equal(pwhash__verify(longpw, PWHASH_MAX_PASSWORD, h, &ok), MQC_OK);
	assert_true(ok);
	/* Over-long passwords are refused without hashing. */
	assert_int_equal(pwhash__verify(longpw, PWHASH_MAX_PASSWORD + 1, h, &ok), MQC_OK);
	assert_false(ok);
	assert_int_equal(pwhash__verify(NULL, 0, h, &ok), MQC_OK);
	assert_false(ok);
	assert_int_equal(pwhash__make("x", 1, PWHASH_MIN_ITERATIONS - 1, h, sizeof(h)), MQC_ERR_INVAL);
	assert_int_equal(pwhash__make("x", 1, PWHASH_MAX_ITERATIONS + 1, h, sizeof(h)), MQC_ERR_INVAL);
	assert_int_equal(pwhash__make("x", 1, PWHASH_MIN_ITERATIONS, small, sizeof(small)), MQC_ERR_INVAL);
	assert_int_equal(pwhash__make(NULL, 0, PWHASH_MIN_ITERATIONS, h, sizeof(h)), MQC_ERR_INVAL);
	free(longpw);
}

static void test_pwhash_malformed(void **state)
{
	char h[PWHASH_STR_LEN], bad[PWHASH_STR_LEN + 8];
	static const char *const forms[] = {
		"",
		"secret",
		"$pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$x",
		"$pbkdf2-sha512$",
		"$pbkdf2-sha512$1000",
		"$pbkdf2-sha512$1000$",
		"$pbkdf2-sha512$999$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$01000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$10000001$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$-1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$1000x$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		"$pbkdf2-sha512$1000$AAAA$AAAA",
		"$pbkdf2-sha512$1000$!!!!!!!!!!!!!!!!!!!!!!==$AAAA",
	};
	size_t i;
	bool ok = true;

	(void)state;
	for(i=0; i<sizeof(forms)/sizeof(forms[0]); i++){
		ok = true;
		if(pwhash__verify("secret", 6, forms[i], &ok) != MQC_ERR_INVAL || ok){
			print_error("accepted stored form %s\n", forms[i]);
			fail();
		}
	}
	assert_int_equal(pwhash__iterations(NULL), 0);
	assert_int_equal(pwhash__iterations("$pbkdf2-sha512$4300$x$y"), 4300);
	/* A good form with its key cut short, extended, or with its salt bent. */
	assert_int_equal(pwhash__make("secret", 6, PWHASH_MIN_ITERATIONS, h, sizeof(h)), MQC_OK);
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(h) - 4, h);
	assert_int_equal(pwhash__verify("secret", 6, bad, &ok), MQC_ERR_INVAL);
	assert_false(ok);
	snprintf(bad, sizeof(bad), "%sAAAA", h);
	assert_int_equal(pwhash__verify("secret", 6, bad, &ok), MQC_ERR_INVAL);
	snprintf(bad, sizeof(bad), "%s", h);
	{
		/* Another valid base64 salt: the key no longer matches. */
		char *c = &bad[strlen("$pbkdf2-sha512$1000$") + 1];
		*c = (*c == 'A') ? 'B' : 'A';
	}
	assert_int_equal(pwhash__verify("secret", 6, bad, &ok), MQC_OK);
	assert_false(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_msgid_span16),
		cmocka_unit_test(test_split_clientid),
		cmocka_unit_test(test_register_clientid),
		cmocka_unit_test(test_envelope_valid),
		cmocka_unit_test(test_envelope_malformed),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_pwhash_round_trip),
		cmocka_unit_test(test_pwhash_limits),
		cmocka_unit_test(test_pwhash_malformed),
		cmocka_unit_test(test_archkey),
		cmocka_unit_test(test_rand_bytes),
		cmocka_unit_test(test_sqlutil_status),
		cmocka_unit_test(test_sqlutil_status_real),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
