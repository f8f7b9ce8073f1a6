/* test_fuzz_replay_rpc.c - replay the fuzz_rpc corpus and regressions on every test run.
 *
 * The archiver's objects are not linked into the unit tests, so its RPC
 * code (archiver/rpc.c, archiver/pwthrottle.c, archiver/archive.c,
 * archiver/nick_answer.c) is compiled in here with the harness (see
 * tests/unit/test_fuzz_replay.c for the scheme). They come
 * before cmocka.h, whose fail() macro would clash with rpc.c's fail(). */
#define FUZZ_REPLAY 1
#include "../../archiver/archive.c"
#include "../../archiver/pwthrottle.c"
#include "../../archiver/nick_answer.c"
#include "../../archiver/rpc.c"
#include "../fuzz/fuzz_rpc.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuzz_replay.h"

static void test_rpc(void **state)
{
	(void)state;
	fuzz_replay__target("rpc", fuzz_rpc__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
