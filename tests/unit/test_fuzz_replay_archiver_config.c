/* test_fuzz_replay_archiver_config.c - replay the fuzz_archiver_config corpus
 * and regressions on every test run.
 *
 * archiver/config.c comes from the archiver's library, the harness is an
 * object of its own (see test_fuzz_replay.c for the scheme). */
#define FUZZ_REPLAY 1
#include "../fuzz/fuzz.h"

FUZZ_ENTRY(archiver_config);

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuzz_replay.h"

static void test_archiver_config(void **state)
{
	(void)state;
	fuzz_replay__target("archiver_config", fuzz_archiver_config__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_archiver_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
