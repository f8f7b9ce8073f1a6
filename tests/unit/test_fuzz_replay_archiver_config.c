/* test_fuzz_replay_archiver_config.c - replay the fuzz_archiver_config corpus
 * and regressions on every test run.
 *
 * archiver/config.c is compiled in here with the harness, the archiver's
 * objects not being linked into unit tests (see test_fuzz_replay.c for the
 * scheme); a file of its own because its static helpers share names with
 * archive.c's. */
#define FUZZ_REPLAY 1
#include "../../archiver/config.c"
#include "../fuzz/fuzz_archiver_config.c"

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
