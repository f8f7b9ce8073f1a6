/* test_spool_replay.c - replay the fuzz_spool corpus and regressions on
 * every test run (the scheme: test_fuzz_replay.c). */
#define FUZZ_REPLAY 1
#include "../fuzz/fuzz.h"

FUZZ_ENTRY(spool);

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuzz_replay.h"

static void test_spool(void **state)
{
	(void)state;
	fuzz_replay__target("spool", fuzz_spool__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
