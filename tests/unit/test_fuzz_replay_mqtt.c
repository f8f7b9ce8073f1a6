/* test_fuzz_replay_mqtt.c - replay the fuzz_mqtt corpus and regressions on
 * every test run.
 *
 * archiver/mqtt.c comes from the archiver's library, the harness is an
 * object of its own (see test_fuzz_replay.c for the scheme). */
#define FUZZ_REPLAY 1
#include "../fuzz/fuzz.h"

FUZZ_ENTRY(mqtt);

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuzz_replay.h"

static void test_mqtt(void **state)
{
	(void)state;
	fuzz_replay__target("mqtt", fuzz_mqtt__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mqtt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
