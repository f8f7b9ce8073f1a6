/* fuzz_replay.h - replay a fuzz harness's corpus and regressions as a cmocka test.
 *
 * Included (once) by the replay tests after cmocka.h. fuzz_replay__target
 * feeds every file of tests/fuzz/corpus/<target>/ and
 * tests/fuzz/regressions/<target>/ to the harness, each in a buffer of
 * exactly its size so a sanitized build (make test SAN=1) sees any read past
 * the input. A broken invariant fails the test and names the file. Files are
 * found under $MQCHAT_FUZZ_DIR, default tests/fuzz (the tests run from the
 * top of the tree). */
#ifndef MQCHAT_FUZZ_REPLAY_H
#define MQCHAT_FUZZ_REPLAY_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void fuzz_replay__target(const char *target, fuzz_one_fn one)
{
	int seeds = replay_dir("corpus", target, one);

	/* A target with no seeds would replay nothing and pass: refuse that. */
	if(seeds == 0) fail_msg("no seed corpus in %s/corpus/%s", fuzz_dir(), target);
	replay_dir("regressions", target, one);
}

#endif
