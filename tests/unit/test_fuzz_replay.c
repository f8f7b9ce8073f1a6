/* test_fuzz_replay.c - replay the fuzz corpora and regressions on every test run.
 *
 * Each libFuzzer harness of tests/fuzz/ is compiled in here (FUZZ_REPLAY, see
 * tests/fuzz/fuzz.h) and fed every file of tests/fuzz/corpus/<target>/ and
 * tests/fuzz/regressions/<target>/, each in a buffer of exactly its size so
 * that a sanitized build (make test SAN=1) sees any read past the input.
 * A broken invariant fails the target's test and names the file.
 *
 * Files are found under $MQCHAT_FUZZ_DIR, default tests/fuzz (the tests run
 * from the top of the tree). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FUZZ_REPLAY 1
#include "../fuzz/fuzz_envelope.c"
#include "../fuzz/fuzz_names.c"
#include "../fuzz/fuzz_acl.c"

static char current[4096];

void fuzz__fail(const char *cond, const char *file, int line)
{
	fail_msg("%s: %s:%d: invariant broken: %s", current, file, line, cond);
}

typedef int (*fuzz_one_fn)(const uint8_t *data, size_t size);

static const char *fuzz_dir(void)
{
	const char *d = getenv("MQCHAT_FUZZ_DIR");
	return d && *d ? d : "tests/fuzz";
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every regular file of <fuzz_dir>/<kind>/<target>; returns how many.
 * A missing folder counts 0 files; any other error fails the test. */
static int replay_dir(const char *kind, const char *target, fuzz_one_fn one)
{
	char path[2048];
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, cap = 0, i;
	int replayed = 0;

	snprintf(path, sizeof(path), "%s/%s/%s", fuzz_dir(), kind, target);
	d = opendir(path);
	if(d == NULL){
		if(errno == ENOENT) return 0;
		fail_msg("%s: %s", path, strerror(errno));
	}
	while((e = readdir(d)) != NULL){
		if(e->d_name[0] == '.') continue;
		if(count == cap){
			char **n = realloc(names, (cap ? cap * 2 : 64) * sizeof(*names));
			assert_non_null(n);
			names = n;
			cap = cap ? cap * 2 : 64;
		}
		names[count] = strdup(e->d_name);
		assert_non_null(names[count]);
		count++;
	}
	closedir(d);
	if(count) qsort(names, count, sizeof(*names), by_name);

	for(i=0; i<count; i++){
		FILE *f;
		long len;
		uint8_t *buf;

		snprintf(current, sizeof(current), "%s/%s", path, names[i]);
		f = fopen(current, "rb");
		if(f == NULL) fail_msg("%s: %s", current, strerror(errno));
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		len = ftell(f);
		assert_true(len >= 0);
		rewind(f);
		buf = malloc(len > 0 ? (size_t)len : 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
		fclose(f);
		one(buf, (size_t)len);
		free(buf);
		replayed++;
		free(names[i]);
	}
	free(names);
	return replayed;
}

static void replay(const char *target, fuzz_one_fn one)
{
	int seeds = replay_dir("corpus", target, one);

	/* A target with no seeds would replay nothing and pass: refuse that. */
	if(seeds == 0) fail_msg("no seed corpus in %s/corpus/%s", fuzz_dir(), target);
	replay_dir("regressions", target, one);
}

static void test_envelope(void **state)
{
	(void)state;
	replay("envelope", fuzz_envelope__one);
}

static void test_names(void **state)
{
	(void)state;
	replay("names", fuzz_names__one);
}

static void test_acl(void **state)
{
	(void)state;
	replay("acl", fuzz_acl__one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_acl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
