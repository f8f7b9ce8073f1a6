/* test_fuzz_replay.c - replay the fuzz corpora and regressions on every test run.
 *
 * Each libFuzzer harness of tests/fuzz/ that tests common/ or plugin/ code is
 * an object (FUZZ_REPLAY, see tests/fuzz/fuzz.h) linked into this test and
 * replayed by fuzz_replay.h. The archiver's harnesses have files of their
 * own (test_fuzz_replay_rpc.c, test_fuzz_replay_archiver_config.c,
 * test_fuzz_replay_mqtt.c): fuzz_rpc.c stands in for part of the daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FUZZ_REPLAY 1
#include "../fuzz/fuzz.h"

FUZZ_ENTRY(envelope);
FUZZ_ENTRY(names);
FUZZ_ENTRY(acl);
FUZZ_ENTRY(plugin_config);
FUZZ_ENTRY(auth);

#include "fuzz_replay.h"

static void test_envelope(void **state)
{
	(void)state;
	fuzz_replay__target("envelope", fuzz_envelope__one);
}

static void test_names(void **state)
{
	(void)state;
	fuzz_replay__target("names", fuzz_names__one);
}

static void test_acl(void **state)
{
	(void)state;
	fuzz_replay__target("acl", fuzz_acl__one);
}

static void test_plugin_config(void **state)
{
	(void)state;
	fuzz_replay__target("plugin_config", fuzz_plugin_config__one);
}

static void test_auth(void **state)
{
	(void)state;
	fuzz_replay__target("auth", fuzz_auth__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_plugin_config),
		cmocka_unit_test(test_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
