/* test_envelope_types.c - envelope__parse: the types of conversations.
 *
 * A text's reply (reply_to, reply_from), and the types reaction, edit,
 * delete and read (docs/PROTOCOL.md): each rule once accepted and once
 * refused with its reason, the fields each type sets, and that the members
 * of one type are only unknown members to the others. And the typing
 * indicator's payload (envelope__parse_typing). Every payload is
 * parsed from a heap block of exactly its size (a read past its end is an
 * error under `make test SAN=1`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

struct env_case {
	const char *json;
	const char *why;        /* NULL: valid */
};

/* envelope__parse on an exact-size heap copy of s; slices are made to
 * point into s. */
static bool parse_exact(const char *s, struct envelope *env, const char **why)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	struct envelope_str *f[] = {&env->id, &env->body, &env->ref, &env->user, &env->by,
		&env->reply_to, &env->reply_from, &env->of, &env->emoji, &env->with, &env->room};
	bool ok;
	size_t i;

	assert_non_null(copy);
	memcpy(copy, s, len);
	/* Fields the type does not set keep this, and a test can see it. */
	memset(env, 0xA5, sizeof(*env));
	*why = NULL;
	ok = envelope__parse(copy, len, env, why);
	if(ok){
		for(i=0; i<sizeof(f)/sizeof(f[0]); i++){
			if(f[i]->ptr >= copy && f[i]->ptr <= copy + len) f[i]->ptr = s + (f[i]->ptr - copy);
		}
	}
	free(copy);
	return ok;
}

static void run_cases(const struct env_case *cases, size_t n)
{
	size_t i;

	for(i=0; i<n; i++){
		struct envelope env;
		const char *why;
		bool ok = parse_exact(cases[i].json, &env, &why);

		if(ok != (cases[i].why == NULL) || (why && (cases[i].why == NULL
						|| strcmp(why, cases[i].why) != 0))){
			fail_msg("%s: got %d (%s), want %s", cases[i].json, ok, why ? why : "-",
					cases[i].why ? cases[i].why : "valid");
		}
	}
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void assert_str(const struct envelope_str *s, const char *want)
{
	if(want == NULL){
		assert_null(s->ptr);
		return;
	}
	assert_non_null(s->ptr);
	assert_int_equal(s->len, strlen(want));
	assert_memory_equal(s->ptr, want, s->len);
}

static void test_text_reply(void **state)
{
	static const struct env_case cases[] = {
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"yes\",\"reply_to\":\"m-1\",\"reply_from\":\"bob\"}", NULL},
		{"{\"reply_from\" : \"bob\", \"reply_to\" : \"m_1\", \"id\":\"m2\",\"type\":\"text\",\"body\":\"y\"}", NULL},
		/* Escaped names are the same members. */
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"r\\u0065ply_to\":\"m1\",\"reply_from\":\"bob\"}", NULL},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"r\\u0065ply_to\":\"m1\"}",
			"reply_to without reply_from"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\"}", "reply_to without reply_from"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_from\":\"bob\"}", "reply_from without reply_to"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m/1\",\"reply_from\":\"bob\"}",
			"invalid reply_to"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"\",\"reply_from\":\"bob\"}",
			"invalid reply_to"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m\\u0031\",\"reply_from\":\"bob\"}",
			"invalid reply_to"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":1,\"reply_from\":\"bob\"}",
			"invalid reply_to"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\",\"reply_from\":\"Bob\"}",
			"invalid reply_from"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\",\"reply_from\":null}",
			"invalid reply_from"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\",\"reply_from\":\"bob\","
			"\"reply_to\":\"m2\"}", "duplicate member"},
		{"{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\",\"reply_from\":\"bob\","
			"\"reply_fro\\u006d\":\"eve\"}", "duplicate member"},
		/* The first pass still checks the text's own rules first. */
		{"{\"id\":\"m2\",\"type\":\"text\",\"reply_to\":\"m1\",\"reply_from\":\"bob\"}", "text without body"},
		/* To a receipt they are unknown members. */
		{"{\"id\":\"r\",\"type\":\"receipt\",\"ref\":\"m\",\"status\":\"read\",\"reply_to\":7,\"reply_to\":[]}", NULL},
	};
	struct envelope env;
	const char *why;

	(void)state;
	RUN(cases);
	assert_true(parse_exact(cases[0].json, &env, &why));
	assert_int_equal(env.type, ENVELOPE_TEXT);
	assert_str(&env.reply_to, "m-1");
	assert_str(&env.reply_from, "bob");
	assert_str(&env.body, "yes");
	/* Without a reply both are absent, not left as they were. */
	assert_true(parse_exact("{\"id\":\"m2\",\"type\":\"text\",\"body\":\"y\"}", &env, &why));
	assert_str(&env.reply_to, NULL);
	assert_str(&env.reply_from, NULL);
	assert_int_equal(env.reply_to.len, 0);
}

static void test_reaction(void **state)
{
	static const struct env_case cases[] = {
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m-5\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\"}", NULL},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m-5\",\"of\":\"bob\",\"emoji\":\"+1\",\"remove\":true,\"ts\":3}", NULL},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m-5\",\"of\":\"bob\",\"emoji\":\"\\ud83d\\udc4d\",\"remove\":false}", NULL},
		/* A family: ZWJ sequences are one emoji (25 bytes). */
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":"
			"\"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7\xe2\x80\x8d\xf0\x9f\x91\xa6\"}", NULL},
		/* 32 bytes is the most; 33 is one too many. */
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", NULL},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
			"invalid emoji"},
		/* Counted decoded: 8 escapes of 6 bytes are 8 bytes. */
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":"
			"\"\\u0061\\u0061\\u0061\\u0061\\u0061\\u0061\\u0061\\u0061\"}", NULL},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"a b\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"a\\nb\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"a\x7f\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"\\u0085\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"\xc2\xa0\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"\xe3\x80\x80\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"\xe2\x80\xa8\"}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":1}", "invalid emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\"}", "reaction without emoji"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"emoji\":\"x\"}", "reaction without of"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"of\":\"b\",\"emoji\":\"x\"}", "reaction without ref"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"B\",\"emoji\":\"x\"}", "invalid of"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\\u0062\",\"emoji\":\"x\"}", "invalid of"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m!\",\"of\":\"b\",\"emoji\":\"x\"}", "invalid ref"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"remove\":1}", "invalid remove"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"remove\":\"true\"}",
			"invalid remove"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"remove\":null}",
			"invalid remove"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"body\":\"y\"}",
			"reaction with body or status"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"status\":\"read\"}",
			"reaction with body or status"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"emoji\":\"y\"}",
			"duplicate member"},
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"\\u006ff\":\"c\"}",
			"duplicate member"},
		/* Other types' members are unknown to a reaction. */
		{"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m\",\"of\":\"b\",\"emoji\":\"x\",\"seq\":\"q\",\"by\":1}", NULL},
		/* And a reaction's to a text. */
		{"{\"id\":\"m\",\"type\":\"text\",\"body\":\"b\",\"emoji\":7,\"of\":\"B\",\"remove\":\"no\"}", NULL},
	};
	struct envelope env;
	const char *why;
	char out[ENVELOPE_EMOJI_MAX + 1];

	(void)state;
	RUN(cases);
	assert_true(parse_exact(cases[0].json, &env, &why));
	assert_int_equal(env.type, ENVELOPE_REACTION);
	assert_str(&env.ref, "m-5");
	assert_str(&env.of, "bob");
	assert_str(&env.emoji, "\xf0\x9f\x91\x8d");
	assert_false(env.remove);
	assert_str(&env.body, NULL);
	assert_int_equal(env.status, ENVELOPE_STATUS_NONE);
	assert_true(parse_exact(cases[1].json, &env, &why));
	assert_true(env.remove);
	assert_true(env.has_ts && env.ts == 3);
	assert_true(parse_exact(cases[2].json, &env, &why));
	assert_false(env.remove);
	assert_true(env.emoji.escaped);
	assert_int_equal(envelope__unescape(&env.emoji, out, sizeof(out)), 4);
	assert_string_equal(out, "\xf0\x9f\x91\x8d");
}

static void test_edit(void **state)
{
	static const struct env_case cases[] = {
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m-5\",\"of\":\"bob\",\"body\":\"see you!\",\"by\":\"bob\",\"with\":\"alice\"}", NULL},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m-5\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"ts\":9}", NULL},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\"}", "edit without ref"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"body\":\"x\",\"by\":\"bob\"}", "edit without of"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\"}", "edit without by"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"by\":\"bob\"}", "edit without body"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"\",\"by\":\"bob\"}", "empty body"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":7,\"by\":\"bob\"}", "body is not a string"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"status\":\"read\"}",
			"edit with status"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"Bob\"}", "invalid by"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"with\":\"\"}",
			"invalid with"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"with\":[\"a\"]}",
			"invalid with"},
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"by\":\"eve\"}",
			"duplicate member"},
		/* room and seq are a read's. */
		{"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"m\",\"of\":\"bob\",\"body\":\"x\",\"by\":\"bob\",\"room\":1,\"seq\":-1}", NULL},
	};
	struct envelope env;
	const char *why;

	(void)state;
	RUN(cases);
	assert_true(parse_exact(cases[0].json, &env, &why));
	assert_int_equal(env.type, ENVELOPE_EDIT);
	assert_str(&env.ref, "m-5");
	assert_str(&env.of, "bob");
	assert_str(&env.body, "see you!");
	assert_str(&env.by, "bob");
	assert_str(&env.with, "alice");
	assert_true(parse_exact(cases[1].json, &env, &why));
	assert_str(&env.with, NULL);
}

static void test_delete(void **state)
{
	static const struct env_case cases[] = {
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m-9\",\"of\":\"carol\",\"by\":\"bob\"}", NULL},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m-9\",\"of\":\"carol\",\"by\":\"carol\",\"with\":\"dave\"}", NULL},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"of\":\"carol\",\"by\":\"bob\"}", "delete without ref"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"by\":\"bob\"}", "delete without of"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"carol\"}", "delete without by"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"carol\",\"by\":\"bob\",\"body\":\"x\"}",
			"delete with body or status"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"carol\",\"by\":\"bob\",\"status\":\"read\"}",
			"delete with body or status"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"-carol\",\"by\":\"bob\"}", "invalid of"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"carol\",\"by\":true}", "invalid by"},
		{"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"m\",\"of\":\"carol\",\"by\":\"bob\",\"with\":\"a@b\"}",
			"invalid with"},
	};
	struct envelope env;
	const char *why;

	(void)state;
	RUN(cases);
	assert_true(parse_exact(cases[0].json, &env, &why));
	assert_int_equal(env.type, ENVELOPE_DELETE);
	assert_str(&env.ref, "m-9");
	assert_str(&env.of, "carol");
	assert_str(&env.by, "bob");
	assert_str(&env.with, NULL);
	assert_str(&env.body, NULL);
	assert_true(parse_exact(cases[1].json, &env, &why));
	assert_str(&env.with, "dave");
}

static void test_read(void **state)
{
	static const struct env_case cases[] = {
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":57,\"unread\":0}", NULL},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"room\":\"lobby\",\"seq\":0,\"unread\":9007199254740991}", NULL},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"seq\":5,\"unread\":0}", "read without with or room"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"room\":\"lobby\",\"seq\":5,\"unread\":0}",
			"read with both with and room"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"unread\":0}", "read without seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1}", "read without unread"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":-1,\"unread\":0}", "invalid seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1.5,\"unread\":0}", "invalid seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1e3,\"unread\":0}", "invalid seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":\"1\",\"unread\":0}", "invalid seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":9007199254740992,\"unread\":0}", "invalid seq"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":-2}", "invalid unread"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":null}", "invalid unread"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"room\":\"Lobby\",\"seq\":1,\"unread\":0}", "invalid room"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"b/c\",\"seq\":1,\"unread\":0}", "invalid with"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":0,\"seq\":2}", "duplicate member"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":0,\"body\":\"x\"}",
			"read with body, ref or status"},
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":0,\"ref\":\"m\"}",
			"read with body, ref or status"},
		/* A reaction's and an edit's members are unknown to a read. */
		{"{\"id\":\"rd-1\",\"type\":\"read\",\"with\":\"bob\",\"seq\":1,\"unread\":0,\"of\":0,\"by\":[]}", NULL},
	};
	struct envelope env;
	const char *why;

	(void)state;
	RUN(cases);
	assert_true(parse_exact(cases[0].json, &env, &why));
	assert_int_equal(env.type, ENVELOPE_READ);
	assert_str(&env.with, "bob");
	assert_str(&env.room, NULL);
	assert_true(env.has_seq);
	assert_int_equal(env.seq, 57);
	assert_int_equal(env.unread, 0);
	assert_true(parse_exact(cases[1].json, &env, &why));
	assert_str(&env.with, NULL);
	assert_str(&env.room, "lobby");
	assert_int_equal(env.seq, 0);
	assert_int_equal(env.unread, ENVELOPE_MAX_TS);
}

static void test_type_names(void **state)
{
	static const struct {
		enum envelope_type type;
		const char *name;
	} names[] = {
		{ENVELOPE_TEXT, "text"}, {ENVELOPE_RECEIPT, "receipt"}, {ENVELOPE_EVENT, "event"},
		{ENVELOPE_REACTION, "reaction"}, {ENVELOPE_EDIT, "edit"}, {ENVELOPE_DELETE, "delete"},
		{ENVELOPE_READ, "read"},
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(names)/sizeof(names[0]); i++){
		assert_string_equal(envelope__type_name(names[i].type), names[i].name);
	}
	assert_string_equal(envelope__type_name((enum envelope_type)0), "?");
	assert_string_equal(envelope__type_name((enum envelope_type)8), "?");
	assert_string_equal(envelope__type_name((enum envelope_type)-1), "?");
	/* Only these words: not a prefix, not another case. */
	run_cases((const struct env_case[]){
			{"{\"id\":\"a\",\"type\":\"reactio\"}", "unknown type"},
			{"{\"id\":\"a\",\"type\":\"Edit\"}", "unknown type"},
			{"{\"id\":\"a\",\"type\":\"reads\"}", "unknown type"},
			{"{\"id\":\"a\",\"type\":\"r\\u0065ad\",\"with\":\"b\",\"seq\":1,\"unread\":0}", "unknown type"},
		}, 4);
}

/* A typing indicator: {"typing":true|false}, unknown members ignored, at
 * most ENVELOPE_TYPING_MAX bytes. */
static void test_typing(void **state)
{
	static const struct {
		const char *json;
		const char *why;
		bool typing;
	} cases[] = {
		{"{\"typing\":true}", NULL, true},
		{"{\"typing\":false}", NULL, false},
		{" { \"x\" : [1, {\"a\": null}], \"typing\" : true , \"y\":\"\u00e9\" }\n", NULL, true},
		{"{\"t\\u0079ping\":true}", NULL, true},
		{"{}", "missing typing", false},
		{"{\"Typing\":true}", "missing typing", false},
		{"{\"typing\":1}", "typing is not a boolean", false},
		{"{\"typing\":\"true\"}", "typing is not a boolean", false},
		{"{\"typing\":null}", "typing is not a boolean", false},
		{"{\"typing\":tru}", "not valid JSON", false},
		{"{\"typing\":true,\"typing\":false}", "duplicate member", false},
		{"{\"typing\":true,\"typ\\u0069ng\":false}", "duplicate member", false},
		{"{\"typing\":true", "not valid JSON", false},
		{"{\"typing\":true}x", "trailing data after the object", false},
		{"[true]", "not a JSON object", false},
		{"true", "not a JSON object", false},
		{"", "empty payload", false},
		{"{\"typing\":true,\"x\":\"\xff\"}", "not valid UTF-8", false},
	};
	char big[ENVELOPE_TYPING_MAX + 2];
	size_t i, n;

	(void)state;
	for(i=0; i<sizeof(cases)/sizeof(cases[0]); i++){
		size_t len = strlen(cases[i].json);
		char *copy = malloc(len ? len : 1);
		const char *why = NULL;
		bool typing = !cases[i].typing, ok;

		assert_non_null(copy);
		memcpy(copy, cases[i].json, len);
		ok = envelope__parse_typing(copy, len, &typing, &why);
		free(copy);
		if(ok != (cases[i].why == NULL) || (why && (cases[i].why == NULL
						|| strcmp(why, cases[i].why) != 0))){
			fail_msg("%s: got %d (%s)", cases[i].json, ok, why ? why : "-");
		}
		if(ok) assert_int_equal(typing, cases[i].typing);
	}
	assert_false(envelope__parse_typing(NULL, 0, &(bool){false}, NULL));
	/* The largest accepted, and one byte more. */
	for(n = ENVELOPE_TYPING_MAX; n <= ENVELOPE_TYPING_MAX + 1; n++){
		const char *why = NULL;
		bool typing;

		memset(big, ' ', n);
		memcpy(big, "{\"typing\":true}", 15);
		assert_int_equal(envelope__parse_typing(big, n, &typing, &why), n == ENVELOPE_TYPING_MAX);
		if(n > ENVELOPE_TYPING_MAX) assert_string_equal(why, "typing payload too large");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_reply),
		cmocka_unit_test(test_reaction),
		cmocka_unit_test(test_edit),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_typing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
