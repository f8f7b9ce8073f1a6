/* test_envelope.c - envelope__parse: member names are compared decoded.
 *
 * A member name written with escapes ("b\u006fdy") is the same member to
 * every JSON reader downstream; the archiver's jansson keeps the last of
 * duplicate keys. It must be validated and refused as a duplicate exactly
 * like the plain name, or a payload the plugin checked could carry another
 * id, type or body to the archive. Found by tests/fuzz/fuzz_envelope.c
 * (tests/fuzz/regressions/envelope/escaped_key_*.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_envelopes_still_pass),
		cmocka_unit_test(test_escaped_known_key_is_a_duplicate),
		cmocka_unit_test(test_escaped_known_key_is_validated),
		cmocka_unit_test(test_escaped_unknown_keys_are_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
