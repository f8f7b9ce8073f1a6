/* fuzz.h - what every libFuzzer harness in tests/fuzz/ shares.
 *
 * A harness defines its entry point with FUZZ_TARGET(name) and checks its
 * invariants with FUZZ_ASSERT. Built by clang with -fsanitize=fuzzer (see
 * tests/fuzz/fuzz.mk) the entry point is LLVMFuzzerTestOneInput and a broken
 * invariant aborts, which libFuzzer records as a crash. Compiled with
 * FUZZ_REPLAY defined (the top-level Makefile) each harness is an object
 * whose entry point is fuzz_<name>__one, declared by FUZZ_ENTRY(name); the
 * replay unit tests (tests/unit/test_fuzz_replay*.c) link those objects, so
 * the seed corpora and tests/fuzz/regressions/ replay on every `make test`,
 * and a broken invariant fails that cmocka test. */
#ifndef MQCHAT_FUZZ_H
#define MQCHAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef FUZZ_REPLAY
/* Defined by the replay test: fails the current cmocka test. */
void fuzz__fail(const char *cond, const char *file, int line);
/* The replay entry point of harness name (a declaration with a ';'). */
#define FUZZ_ENTRY(name) int fuzz_##name##__one(const uint8_t *data, size_t size)
#define FUZZ_TARGET(name) \
	FUZZ_ENTRY(name); \
	FUZZ_ENTRY(name)
#else
static inline void fuzz__fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, cond);
	abort();
}
#define FUZZ_TARGET(name) \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#endif

#define FUZZ_ASSERT(cond) do{ \
		if(!(cond)) fuzz__fail(#cond, __FILE__, __LINE__); \
	}while(0)

#endif
