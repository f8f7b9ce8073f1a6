/* test_fuzz_replay_rpc.c - replay the fuzz_rpc corpus and regressions on every test run.
 *
 * The RPC code (archiver/rpc.c and what it calls: pwthrottle.c,
 * archive.c, nick_answer.c) comes from the archiver's library; the harness
 * is an object of its own (see test_fuzz_replay.c for the scheme) and its
 * responder__reply stands in for the worker's, so worker.o stays in the
 * library. */
#define FUZZ_REPLAY 1
#include "../fuzz/fuzz.h"

FUZZ_ENTRY(rpc);

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
