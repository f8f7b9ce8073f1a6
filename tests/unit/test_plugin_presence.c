/* test_plugin_presence.c - presence coalescing: the pure gate of
 * plugin/presence.c, then the whole of presence with an injected clock and
 * TICK. */
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
#include "timeutil.h"

#define HASH "$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
#define CYCLES 300

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }
static struct mqchat *current;

/* ---- the gate alone ---- */

static void test_gate_first_change_goes_at_once(void **state)
{
	struct presence_gate g = {0};

	(void)state;
	assert_int_equal(presence__gate_change(&g, true, 5000, 111), PRESENCE_PUBLISH);
	assert_true(g.online);
	assert_int_equal(g.since, 111);
	assert_int_equal(g.shown, PRESENCE_SHOWN_ONLINE);
	assert_int_equal(g.due, 5000 + PRESENCE_MIN_MS);
	/* Nothing due before the interval is over. */
	assert_int_equal(presence__gate_fire(&g, 5999, true), PRESENCE_KEEP);
	assert_int_equal(g.due, 6000);
}

static void test_gate_change_in_interval_waits_and_keeps_its_time(void **state)
{
	struct presence_gate g = {0};

	(void)state;
	assert_int_equal(presence__gate_change(&g, true, 0, 100), PRESENCE_PUBLISH);
	assert_int_equal(presence__gate_change(&g, false, 10, 222), PRESENCE_KEEP);
	assert_true(g.pending);
	/* TICK at the end of the interval: the real state, with the time of
	 * the real change, not of the publish. */
	assert_int_equal(presence__gate_fire(&g, 1000, false), PRESENCE_PUBLISH);
	assert_false(g.online);
	assert_int_equal(g.since, 222);
	assert_int_equal(g.shown, PRESENCE_SHOWN_OFFLINE);
	/* Published while an interval ran: the next one is twice as long. */
	assert_int_equal(g.due, 1000 + 2 * PRESENCE_MIN_MS);
}

static void test_gate_back_where_it_was_says_nothing(void **state)
{
	struct presence_gate g = {0};

	(void)state;
	presence__gate_change(&g, true, 0, 1);
	assert_int_equal(presence__gate_change(&g, false, 100, 2), PRESENCE_KEEP);
	assert_int_equal(presence__gate_change(&g, true, 200, 3), PRESENCE_KEEP);
	/* Online again when the interval ends: what is shown is right. */
	assert_int_equal(presence__gate_fire(&g, 1000, true), PRESENCE_KEEP);
	assert_true(g.cooling);
	assert_int_equal(g.due, 2000);
	/* A change in the quiet interval goes at once, but counts as flapping. */
	assert_int_equal(presence__gate_change(&g, false, 1500, 4), PRESENCE_PUBLISH);
	assert_false(g.cooling);
	assert_int_equal(g.level, 1);
	assert_int_equal(g.due, 1500 + 2000);
}

static void test_gate_interval_doubles_to_the_cap_and_resets(void **state)
{
	static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	struct presence_gate g = {0};
	int64_t now = 0, last;
	bool online = true;
	size_t i;

	(void)state;
	assert_int_equal(presence__gate_change(&g, online, now, 0), PRESENCE_PUBLISH);
	last = now;
	for(i=1; i<sizeof(want)/sizeof(want[0]); i++){
		/* A change right after every publish: each waits a whole interval. */
		online = !online;
		assert_int_equal(presence__gate_change(&g, online, now + 1, 0), PRESENCE_KEEP);
		now = g.due;
		assert_int_equal(now - last, want[i - 1]);
		assert_int_equal(presence__gate_fire(&g, now, true), PRESENCE_PUBLISH);
		last = now;
	}
	assert_int_equal(g.due - now, PRESENCE_MAX_MS);
	/* Quiet: the interval ends, a quiet one follows, then it starts over. */
	now = g.due;
	assert_int_equal(presence__gate_fire(&g, now, true), PRESENCE_KEEP);
	assert_true(g.cooling);
	now = g.due;
	assert_int_equal(presence__gate_fire(&g, now, true), PRESENCE_KEEP);
	assert_int_equal(g.due, 0);
	assert_int_equal(presence__gate_change(&g, !online, now + 5, 0), PRESENCE_PUBLISH);
	assert_int_equal(g.due - (now + 5), PRESENCE_MIN_MS);
}

static void test_gate_forget_only_when_disconnected_and_quiet(void **state)
{
	struct presence_gate g = {0};

	(void)state;
	presence__gate_change(&g, false, 0, 0);
	assert_int_equal(presence__gate_fire(&g, 1000, false), PRESENCE_KEEP);    /* quiet interval */
	assert_int_equal(presence__gate_fire(&g, 1999, false), PRESENCE_KEEP);    /* not yet */
	assert_int_equal(presence__gate_fire(&g, 2000, false), PRESENCE_FORGET);
	memset(&g, 0, sizeof(g));
	presence__gate_change(&g, true, 0, 0);
	presence__gate_fire(&g, 1000, true);
	assert_int_equal(presence__gate_fire(&g, 2000, true), PRESENCE_KEEP);
	assert_int_equal(g.due, 0);
	/* No timer: firing does nothing. */
	assert_int_equal(presence__gate_fire(&g, 99999, true), PRESENCE_KEEP);
}

/* 300 connect/disconnect cycles of 10 ms (3 s), TICK every 20 ms: at most
 * one publish per interval (0, 1, 3 s and the end state at 7 s at most),
 * ending in the real state. */
static void flap(bool end_online)
{
	struct presence_gate g = {0};
	int64_t now = 0, last_pub = -PRESENCE_MIN_MS, next_tick = 0;
	int publishes = 0, i;
	bool online = false;

	for(i=0; i<2 * CYCLES + (end_online ? 1 : 0); i++){
		online = !online;
		if(presence__gate_change(&g, online, now, now) == PRESENCE_PUBLISH){
			assert_true(now - last_pub >= PRESENCE_MIN_MS);
			publishes++;
			last_pub = now;
		}
		now += 5;
		for(; next_tick <= now; next_tick += 20){
			if(presence__gate_fire(&g, next_tick, online) == PRESENCE_PUBLISH){
				assert_true(next_tick - last_pub >= PRESENCE_MIN_MS);
				publishes++;
				last_pub = next_tick;
			}
		}
	}
	for(; g.due != 0 && next_tick < now + 100000; next_tick += 20){
		if(presence__gate_fire(&g, next_tick, online) == PRESENCE_PUBLISH){
			assert_true(next_tick - last_pub >= PRESENCE_MIN_MS);
			publishes++;
			last_pub = next_tick;
		}
	}
	assert_int_equal(g.due, 0);
	assert_true(publishes >= 2);
	assert_true(publishes <= 4);
	assert_true(last_pub <= 7000 + 20);
	assert_int_equal(g.shown, end_online ? PRESENCE_SHOWN_ONLINE : PRESENCE_SHOWN_OFFLINE);
}

static void test_gate_flapping_ends_offline(void **state)
{
	(void)state;
	flap(false);
}

static void test_gate_flapping_ends_online(void **state)
{
	(void)state;
	flap(true);
}

/* ---- presence with the broker's stubs ---- */

static struct snapshot *make_snapshot(void)
{
	struct snapshot *s = snapshot__new();

	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "carol", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "dev1", USER_KIND_DEVICE, true, HASH));
	assert_non_null(snapshot__add_user(s, "archiver", USER_KIND_SERVICE, true, HASH));
	return s;
}

static int setup(void **state)
{
	struct mqchat *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	stub_reset();
	plugin_config__defaults(&m->cfg);
	m->log.rate = 100000;
	fake_now = 1000000;
	m->clock_ms = fake_clock;
	m->snap = make_snapshot();
	current = m;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct mqchat *m = *state;

	presence__cleanup(&m->presence);
	snapshot__free(m->snap);
	free(m);
	current = NULL;
	return 0;
}

/* TICK every 20 ms of fake time up to until. */
static void run_until(struct mqchat *m, int64_t until)
{
	while(fake_now < until){
		fake_now += 20;
		tick__run(m, fake_now);
	}
}

static int presence_publishes(const char *topic)
{
	int i, n = 0;

	for(i=0; i<stub.publish_count; i++){
		if(!strcmp(stub.publishes[i].topic, topic)) n++;
	}
	return n;
}

static const struct stub_publish *last_on(const char *topic)
{
	int i;

	for(i=stub.publish_count - 1; i >= 0; i--){
		if(!strcmp(stub.publishes[i].topic, topic)) return &stub.publishes[i];
	}
	return NULL;
}

static void flap_account(bool end_online)
{
	struct mqchat *m = current;
	static struct mosquitto ctx[2 * CYCLES + 1];
	const struct stub_publish *p;
	int i;

	for(i=0; i<CYCLES; i++){
		ctx[i] = (struct mosquitto){"alice@flap", "alice", "1"};
		assert_int_equal(presence__connect(m, &ctx[i], "alice", USER_KIND_USER), MQC_OK);
		fake_now += 5;
		tick__run(m, fake_now);
		presence__disconnect(m, &ctx[i]);
		fake_now += 5;
		tick__run(m, fake_now);
	}
	if(end_online){
		ctx[CYCLES] = (struct mosquitto){"alice@phone", "alice", "1"};
		assert_int_equal(presence__connect(m, &ctx[CYCLES], "alice", USER_KIND_USER), MQC_OK);
	}
	/* Whatever waits is published within the longest interval. */
	run_until(m, fake_now + PRESENCE_MAX_MS);
	i = presence_publishes("chat/presence/alice");
	assert_true(i >= 2);
	assert_true(i <= 4);
	p = last_on("chat/presence/alice");
	assert_non_null(p);
	assert_true(p->retain);
	assert_non_null(strstr(p->payload, end_online ? "\"online\"" : "\"offline\""));
	/* Then nothing runs, and a disconnected account is forgotten. */
	run_until(m, fake_now + 2 * PRESENCE_MAX_MS);
	assert_int_equal(m->presence.timed, 0);
	assert_int_equal(HASH_COUNT(m->presence.users), end_online ? 1 : 0);
	assert_int_equal(presence__count(m, "alice"), end_online ? 1 : 0);
}

static void test_flapping_account_ends_offline(void **state)
{
	(void)state;
	flap_account(false);
}

static void test_flapping_account_ends_online(void **state)
{
	(void)state;
	flap_account(true);
}

static void test_other_device_hides_flapping(void **state)
{
	struct mqchat *m = *state;
	static struct mosquitto ctx[CYCLES];
	struct mosquitto two = {"alice@two", "alice", "1"};
	int i;

	assert_int_equal(presence__connect(m, &two, "alice", USER_KIND_USER), MQC_OK);
	for(i=0; i<CYCLES; i++){
		ctx[i] = (struct mosquitto){"alice@one", "alice", "1"};
		presence__connect(m, &ctx[i], "alice", USER_KIND_USER);
		assert_int_equal(presence__count(m, "alice"), 2);
		fake_now += 5;
		tick__run(m, fake_now);
		presence__disconnect(m, &ctx[i]);
		fake_now += 5;
		tick__run(m, fake_now);
	}
	run_until(m, fake_now + PRESENCE_MAX_MS);
	assert_int_equal(presence_publishes("chat/presence/alice"), 1);
	assert_non_null(strstr(last_on("chat/presence/alice")->payload, "\"online\""));
	presence__disconnect(m, &two);
	assert_int_equal(presence_publishes("chat/presence/alice"), 2);
	assert_non_null(strstr(last_on("chat/presence/alice")->payload, "\"offline\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_first_change_goes_at_once),
		cmocka_unit_test(test_gate_change_in_interval_waits_and_keeps_its_time),
		cmocka_unit_test(test_gate_back_where_it_was_says_nothing),
		cmocka_unit_test(test_gate_interval_doubles_to_the_cap_and_resets),
		cmocka_unit_test(test_gate_forget_only_when_disconnected_and_quiet),
		cmocka_unit_test(test_gate_flapping_ends_offline),
		cmocka_unit_test(test_gate_flapping_ends_online),
		cmocka_unit_test_setup_teardown(test_flapping_account_ends_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flapping_account_ends_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_device_hides_flapping, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
