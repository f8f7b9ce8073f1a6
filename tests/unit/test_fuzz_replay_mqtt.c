/* test_fuzz_replay_mqtt.c - replay the fuzz_mqtt corpus and regressions on
 * every test run.
 *
 * archiver/mqtt.c is compiled in here with the harness, the archiver's
 * objects not being linked into unit tests (see test_fuzz_replay.c for the
 * scheme); both come before cmocka.h, whose fail() macro would meet
 * mqtt.c's "fail" label. */
#define FUZZ_REPLAY 1
#include "../../archiver/mqtt.c"
#include "../fuzz/fuzz_mqtt.c"

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
