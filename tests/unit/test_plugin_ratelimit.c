/* test_plugin_ratelimit.c - the per-account send limit (plugin/ratelimit.c):
 * bursts, refill, accounts apart, a full table, and a differential test
 * against a plain token bucket kept in integers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker_stubs.h"
#include "err.h"
#include "plugin.h"

static struct snapshot *snap;

static const struct snap_user *user(const char *name)
{
	const struct snap_user *u = snapshot__user(snap, name, strlen(name));

	if(u == NULL) u = snapshot__add_user(snap, name, USER_KIND_USER, true, "x");
	assert_non_null(u);
	return u;
}

static int setup(void **state)
{
	(void)state;
	snap = snapshot__new();
	assert_non_null(snap);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	snapshot__free(snap);
	return 0;
}

static void test_off_never_refuses(void **state)
{
	struct ratelimit r;
	int i;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 0, 1, 64), MQC_OK);
	for(i=0; i<100000; i++) assert_int_equal(ratelimit__take(&r, user("alice"), 1000, false, 100), 0);
	ratelimit__cleanup(&r);
}

static void test_burst_then_rate(void **state)
{
	struct ratelimit r;
	int64_t t = 5000000;
	int i;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 10, 5, 64), MQC_OK);
	for(i=0; i<5; i++) assert_int_equal(ratelimit__take(&r, user("alice"), t, false, 100), 0);
	/* The 6th at the same ms: refused, the next one may go in 100 ms. */
	assert_int_equal(ratelimit__take(&r, user("alice"), t, false, 100), 100);
	assert_int_equal(ratelimit__take(&r, user("alice"), t + 99, false, 100), 1);
	assert_int_equal(ratelimit__take(&r, user("alice"), t + 100, false, 100), 0);
	assert_true(ratelimit__take(&r, user("alice"), t + 100, false, 100) > 0);
	/* Others are not held back by alice. */
	for(i=0; i<5; i++) assert_int_equal(ratelimit__take(&r, user("bob"), t + 100, false, 100), 0);
	/* A long pause gives a whole burst back, not more. */
	t += 100000;
	for(i=0; i<5; i++) assert_int_equal(ratelimit__take(&r, user("alice"), t, false, 100), 0);
	assert_true(ratelimit__take(&r, user("alice"), t, false, 100) > 0);
	ratelimit__cleanup(&r);
}

/* 1,000 messages pushed as fast as possible over 0.27 s (the issue's
 * figure): with 20/s and bursts of 100, 100 + 0.27 * 20 may go. */
static void test_flood_is_cut(void **state)
{
	struct ratelimit r;
	int i, sent = 0;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 20, 100, RATELIMIT_SLOTS), MQC_OK);
	for(i=0; i<1000; i++){
		if(ratelimit__take(&r, user("eve"), 1000000 + i * 270 / 1000, false, 100) == 0) sent++;
	}
	assert_in_range(sent, 100, 106);
	ratelimit__cleanup(&r);
}

/* Receipts weigh an eighth: a device that read a backlog acknowledges
 * 8 x the burst at once, and 8 x the rate after. */
static void test_receipts_are_light(void **state)
{
	struct ratelimit r;
	int i, sent = 0;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 20, 100, 64), MQC_OK);
	for(i=0; i<1000; i++){
		if(ratelimit__take(&r, user("bob"), 7000, true, 100) == 0) sent++;
	}
	/* The burst is the room for burst - 1 more after one: 99 x 8 + 1. */
	assert_int_equal(sent, 99 * RATELIMIT_LIGHT + 1);
	/* A message after them waits its turn like one more receipt would. */
	assert_true(ratelimit__take(&r, user("bob"), 7000, false, 100) > 0);
	ratelimit__cleanup(&r);
}

/* Bytes count: a message counts once per started RATELIMIT_UNIT_BYTES, so
 * large messages use the burst up 8 times faster and the sustained rate
 * bounds bytes a second (here 20 x 8 KiB). */
static void test_large_messages_cost_more(void **state)
{
	struct ratelimit r;
	int i, small = 0, large = 0, later = 0;
	int64_t t;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 20, 100, 64), MQC_OK);
	/* Exactly one unit, and one byte over it. */
	for(i=0; i<200; i++){
		if(ratelimit__take(&r, user("carol"), 5000, false, RATELIMIT_UNIT_BYTES) == 0) small++;
	}
	assert_int_equal(small, 100);
	for(i=0; i<200; i++){
		if(ratelimit__take(&r, user("dave"), 5000, false, 64 * 1024) == 0) large++;
	}
	/* 99 intervals of room: 13 messages of 8 units fit (0, 8, ... 96). */
	assert_int_equal(large, 13);
	/* Then one 64 KiB message per 8 intervals (400 ms) at 20 a second:
	 * 10 s give 25 more, never more than 160 KiB a second. */
	for(t = 5000; t <= 15000; t += 10){
		if(ratelimit__take(&r, user("dave"), t, false, 64 * 1024) == 0) later++;
	}
	assert_true(later >= 24 && later <= 26);
	assert_true(ratelimit__take(&r, user("erin"), 5000, false, RATELIMIT_UNIT_BYTES + 1) == 0);
	for(i=0; i<49; i++) assert_int_equal(ratelimit__take(&r, user("erin"), 5000, false, RATELIMIT_UNIT_BYTES + 1), 0);
	assert_true(ratelimit__take(&r, user("erin"), 5000, false, RATELIMIT_UNIT_BYTES + 1) > 0);
	ratelimit__cleanup(&r);
}

/* More busy accounts than a probe window holds: nobody is refused more
 * than the limit says; the displaced ones start a fresh burst. */
static void test_full_table(void **state)
{
	char name[16];
	struct ratelimit r;
	int i, j;

	(void)state;
	assert_int_equal(ratelimit__init(&r, 1, 2, 16), MQC_OK);
	for(i=0; i<40; i++){
		snprintf(name, sizeof(name), "u%d", i);
		for(j=0; j<2; j++) assert_int_equal(ratelimit__take(&r, user(name), 1000, false, 100), 0);
	}
	/* The last one in is still in the table: its 3rd is refused. */
	assert_true(ratelimit__take(&r, user(name), 1000, false, 100) > 0);
	ratelimit__cleanup(&r);
}

/* The plain twin: a token bucket of burst * T microseconds of credit. */
struct bucket {
	int64_t credit, last;
	bool used;
};

static void test_same_answers_as_a_token_bucket(void **state)
{
	static const char *names[] = {"a", "b", "c", "d"};
	const int rate = 8, burst = 3;
	const int64_t T = 1000000 / rate;
	struct bucket ref[4];
	struct ratelimit r;
	int64_t now = 1000;
	unsigned seed = 12345;
	int i, k;

	(void)state;
	memset(ref, 0, sizeof(ref));
	assert_int_equal(ratelimit__init(&r, rate, burst, 64), MQC_OK);
	for(i=0; i<200000; i++){
		struct bucket *b;
		bool want, got;

		seed = seed * 1103515245u + 12345u;
		now += (seed >> 16) % 97;               /* 0..96 ms apart */
		k = (int)((seed >> 8) % 4);
		b = &ref[k];
		if(!b->used){
			b->used = true;
			b->credit = burst * T;
			b->last = now;
		}
		b->credit += (now - b->last) * 1000;
		if(b->credit > burst * T) b->credit = burst * T;
		b->last = now;
		want = b->credit >= T;
		if(want) b->credit -= T;
		got = ratelimit__take(&r, user(names[k]), now, false, 100) == 0;
		assert_int_equal(got, want);
	}
	ratelimit__cleanup(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off_never_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_then_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipts_are_light, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_messages_cost_more, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_answers_as_a_token_bucket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
