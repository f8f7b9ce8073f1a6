/* test_envelope.c - envelope__parse: member names are compared decoded.
 *
 * A member name written with escapes ("b\u006fdy") is the same member to
 * every JSON reader downstream; the archiver's jansson keeps the last of
 * duplicate keys. It must be validated and refused as a duplicate exactly
 * like the plain name, or a payload the plugin checked could carry another
 * id, type or body to the archive. Found by tests/fuzz/fuzz_envelope.c
 * (tests/fuzz/regressions/envelope/escaped_key_*.json).
 *
 * Also: the 8-bytes-a-step ASCII fast path of string parsing gives the same
 * answer as the byte-by-byte rules for a special byte at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static bool parse(const char *s, const char **why)
{
	struct envelope env;

	*why = NULL;
	return envelope__parse(s, strlen(s), &env, why);
}

static void expect_refused(const char *s, const char *reason)
{
	const char *why;

	assert_false(parse(s, &why));
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_plain_envelopes_still_pass(void **state)
{
	const char *why;

	(void)state;
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":1}", &why));
	assert_true(parse("{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b\",\"status\":\"read\"}", &why));
}

static void test_escaped_known_key_is_a_duplicate(void **state)
{
	(void)state;
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"b\\u006fdy\":\"evil\"}",
			"duplicate member");
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"\\u0069d\":\"b\"}",
			"duplicate member");
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"typ\\u0065\":\"receipt\"}",
			"duplicate member");
	/* Every character escaped: still "status", which a text may not have. */
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\","
			"\"\\u0073\\u0074\\u0061\\u0074\\u0075\\u0073\":\"read\"}", "text with status");
}

static void test_escaped_known_key_is_validated(void **state)
{
	struct envelope env;
	const char *why;
	const char *s = "{\"\\u0069d\":\"a\",\"type\":\"text\",\"b\\u006fdy\":\"x\"}";

	(void)state;
	/* Alone, an escaped "id" is the id: checked against the grammar ... */
	expect_refused("{\"\\u0069d\":\"../x\",\"type\":\"text\",\"body\":\"x\"}", "invalid id");
	/* ... and counted, so it satisfies "missing id" like the plain form. */
	assert_true(envelope__parse(s, strlen(s), &env, &why));
	assert_int_equal(env.id.len, 1);
	assert_memory_equal(env.id.ptr, "a", 1);
	assert_int_equal(env.body.len, 1);
}

static void test_escaped_unknown_keys_are_ignored(void **state)
{
	const char *why;

	(void)state;
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"x\\u0041\":1}", &why));
	/* Longer than any known name can be when escaped: skipped unread. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\","
			"\"\\u0062\\u006f\\u0064\\u0079\\u0062\\u006f\\u0064\\u0079\":1}", &why));
	/* "\u0074s" is "ts" and must be an integer. */
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"\\u0074s\":\"1\"}",
			"ts is not a number");
}

/* One special byte (or sequence) at every offset of a 40-byte body: the
 * answer and the body's length must not depend on where it falls. */
static void test_fast_path_every_offset(void **state)
{
	static const struct {
		const char *ins;
		bool valid;
	} cases[] = {
		{"\"", false},           /* ends the string early: trailing junk */
		{"\\n", true},          /* escape */
		{"\\q", false},         /* bad escape */
		{"\x01", false},        /* control character */
		{"\x7f", true},         /* DEL is allowed raw */
		{"\xc3\xa9", true},     /* 2-byte UTF-8 */
		{"\xe2\x82\xac", true}, /* 3-byte UTF-8 */
		{"\xc3", false},        /* truncated UTF-8 */
		{"\xff", false},        /* never valid */
	};
	char body[128], json[256];
	size_t i, k;

	(void)state;
	for(k=0; k<sizeof(cases)/sizeof(cases[0]); k++){
		for(i=0; i<=40; i++){
			struct envelope env;
			const char *why = NULL;
			bool ok;

			memset(body, 'a', i);
			snprintf(body + i, sizeof(body) - i, "%s%.*s", cases[k].ins, (int)(40 - i),
					"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
			snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"%s\"}", body);
			ok = envelope__parse(json, strlen(json), &env, &why);
			if(ok != cases[k].valid){
				fail_msg("case %zu at offset %zu: got %d (%s)", k, i, ok, why ? why : "-");
			}
			if(ok) assert_int_equal(env.body.len, strlen(body));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_envelopes_still_pass),
		cmocka_unit_test(test_escaped_known_key_is_a_duplicate),
		cmocka_unit_test(test_escaped_known_key_is_validated),
		cmocka_unit_test(test_escaped_unknown_keys_are_ignored),
		cmocka_unit_test(test_fast_path_every_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
