/* test_plugin_presence.c - presence coalescing (the pure gate of
 * plugin/presence.c, then the whole of presence with an injected clock and
 * TICK), and presence of deleted accounts: cleared when a connected one is
 * kicked, when a snapshot without a not-connected one is swapped in, and by
 * the start-up sweep for the store's retired names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	m->cfg.stats_interval_s = 0;     /* these count presence publishes (stats: test_plugin_stats.c) */
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

static void kick_user_disconnects(const char *username)
{
	struct conn *c, *tmp;

	HASH_ITER(hh, current->presence.conns, c, tmp){
		if(c->user && !strcmp(c->user->name, username)) presence__disconnect(current, c->client);
	}
}

/* The next snapshot: the current one's accounts but those in drop, with
 * what vanished noted as the loader does. */
static struct snapshot *without(struct mqchat *m, const char *const *drop, size_t ndrop)
{
	struct snapshot *s = snapshot__new();
	const struct snap_user *u;
	size_t i;

	assert_non_null(s);
	for(u=m->snap->users; u; u=u->next){
		for(i=0; i<ndrop && strcmp(drop[i], u->name); i++){}
		if(i < ndrop) continue;
		assert_non_null(snapshot__add_user(s, u->name, u->kind, u->enabled, u->pwhash));
	}
	assert_int_equal(snapshot__vanished(s, m->snap), MQC_OK);
	return s;
}

static void test_vanished_lists_deleted_accounts(void **state)
{
	struct mqchat *m = *state;
	static const char *const drop[] = {"bob", "dev1", "archiver"};
	struct snapshot *s = without(m, drop, 3);
	const struct snap_gone *g;
	int seen = 0;

	assert_int_equal(s->vanished_count, 3);
	for(g=s->vanished; g; g=g->next){
		enum user_kind want = !strcmp(g->name, "bob") ? USER_KIND_USER
			: !strcmp(g->name, "dev1") ? USER_KIND_DEVICE : USER_KIND_SERVICE;

		seen |= !strcmp(g->name, "bob") ? 1 : !strcmp(g->name, "dev1") ? 2
			: !strcmp(g->name, "archiver") ? 4 : 8;
		assert_int_equal(g->kind, want);
		assert_int_equal(g->len, strlen(g->name));
	}
	assert_int_equal(seen, 7);
	/* Against no snapshot (the first): nothing vanished. */
	assert_int_equal(snapshot__vanished(s, NULL), MQC_OK);
	assert_int_equal(s->vanished_count, 3);
	snapshot__free(s);
}

static void test_deleted_accounts_leave_no_presence(void **state)
{
	struct mqchat *m = *state;
	static const char *const drop[] = {"alice", "bob", "dev1", "archiver"};
	struct mosquitto a = {"alice@phone", "alice", "1"}, b = {"bob", "bob", "1"};
	struct mosquitto c = {"carol", "carol", "1"}, s1 = {"archiver", "archiver", "1"};
	const struct stub_publish *p;
	int i;

	stub.on_kick_user = kick_user_disconnects;
	/* alice connected; bob went offline a moment ago (it waits); carol
	 * connected and stays; dev1 never connected; the service is connected. */
	presence__connect(m, &a, "alice", USER_KIND_USER);
	presence__connect(m, &c, "carol", USER_KIND_USER);
	presence__connect(m, &s1, "archiver", USER_KIND_SERVICE);
	presence__connect(m, &b, "bob", USER_KIND_USER);
	fake_now += 100;
	presence__disconnect(m, &b);
	assert_int_equal(presence_publishes("chat/presence/bob"), 1);         /* online only */
	stub.publish_count = 0;

	tick__swap_snapshot(m, without(m, drop, 4));
	/* alice kicked: cleared, not "offline"; bob and dev1 cleared; carol and
	 * the service untouched. */
	assert_int_equal(stub.kicked_user_count, 2);
	for(i=0; i<stub.publish_count; i++){
		p = &stub.publishes[i];
		assert_true(p->retain);
		assert_string_equal(p->payload, "");
		assert_true(!strcmp(p->topic, "chat/presence/alice") || !strcmp(p->topic, "chat/presence/bob")
				|| !strcmp(p->topic, "chat/presence/dev1"));
	}
	assert_int_equal(presence_publishes("chat/presence/alice"), 1);
	assert_int_equal(presence_publishes("chat/presence/bob"), 1);
	assert_int_equal(presence_publishes("chat/presence/dev1"), 1);
	assert_int_equal(stub.publish_count, 3);
	/* bob's waiting "offline" is dropped with him: nothing later. */
	run_until(m, fake_now + 3 * PRESENCE_MAX_MS);
	assert_int_equal(stub.publish_count, 3);
	assert_int_equal(presence__count(m, "carol"), 1);
	assert_int_equal(HASH_COUNT(m->presence.users), 1);
	presence__disconnect(m, &c);
	assert_non_null(strstr(last_on("chat/presence/carol")->payload, "\"offline\""));
}

static void test_deleted_while_change_waits_and_connected(void **state)
{
	struct mqchat *m = *state;
	static const char *const drop[] = {"alice"};
	struct mosquitto a1 = {"alice@one", "alice", "1"}, a2 = {"alice@two", "alice", "1"};

	/* alice went offline and online again within her interval: "online"
	 * waits. Deleted now, her kick is left for later (the ACL denies her
	 * meanwhile): the waiting "online" must not go out. */
	presence__connect(m, &a1, "alice", USER_KIND_USER);
	presence__disconnect(m, &a1);
	presence__connect(m, &a2, "alice", USER_KIND_USER);
	stub.publish_count = 0;
	tick__swap_snapshot(m, without(m, drop, 1));
	assert_int_equal(stub.kicked_user_count, 1);    /* the stub kicks nobody */
	run_until(m, fake_now + 2 * PRESENCE_MIN_MS);
	assert_int_equal(stub.publish_count, 0);
	/* The connection goes: its topic is cleared. */
	presence__disconnect(m, &a2);
	assert_int_equal(stub.publish_count, 1);
	assert_string_equal(stub.publishes[0].payload, "");
	assert_int_equal(HASH_COUNT(m->presence.users), 0);
	assert_int_equal(m->presence.timed, 0);
}

static void test_sweep_clears_retired_names(void **state)
{
	struct mqchat *m = *state;
	struct snap_gone zed = {NULL, 0, 3, "zed"}, old = {&zed, 0, 3, "old"};
	struct mosquitto a = {"alice", "alice", "1"};
	int i;

	presence__connect(m, &a, "alice", USER_KIND_USER);
	m->snap->retired = &old;
	stub_reset();
	m->presence.sweep_active = true;
	/* 3 accounts to clear (bob, carol, dev1; alice is connected, the
	 * archiver has no presence), then the 2 retired names, 2 at a time. */
	for(i=0; i<3; i++){
		assert_true(m->presence.sweep_active);
		presence__sweep(m, 2);
		assert_int_equal(stub.publish_count, i < 2 ? 2 * (i + 1) : 5);
	}
	assert_false(m->presence.sweep_active);
	assert_int_equal(presence_publishes("chat/presence/old"), 1);
	assert_int_equal(presence_publishes("chat/presence/zed"), 1);
	assert_int_equal(presence_publishes("chat/presence/alice"), 0);
	presence__sweep(m, 100);
	assert_int_equal(stub.publish_count, 5);
	m->snap->retired = NULL;
}

/* ---- retired names from a real store ---- */

static void test_load_retired_names(void **state)
{
	char dir[] = "/tmp/mqchat-unit-XXXXXX", path[64], err[256], cmd[96];
	struct userdb *udb;
	struct snapshot *s;
	const struct snap_gone *g;
	int n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/auth.db", dir);
	assert_int_equal(userdb__open(path, USERDB_CREATE, &udb, err, sizeof(err)), MQC_OK);
	assert_int_equal(userdb__begin_write(udb), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "alice", USER_KIND_USER, "Alice", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "bob", USER_KIND_USER, "Bob", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(udb, "dev9", USER_KIND_DEVICE, "dev", HASH), MQC_OK);
	assert_int_equal(userdb__commit(udb), MQC_OK);
	assert_int_equal(userdb__begin_write(udb), MQC_OK);
	assert_int_equal(userdb__user_del(udb, "bob"), MQC_OK);
	assert_int_equal(userdb__user_del(udb, "dev9"), MQC_OK);
	assert_int_equal(userdb__user_del(udb, "alice"), MQC_OK);
	assert_int_equal(userdb__commit(udb), MQC_OK);
	/* alice gets her name back: hers is no retired name for the sweep. */
	assert_int_equal(userdb__begin_write(udb), MQC_OK);
	assert_int_equal(userdb__user_restore(udb, "alice", USER_KIND_USER, "Alice", HASH), MQC_OK);
	assert_int_equal(userdb__commit(udb), MQC_OK);

	assert_int_equal(snapshot__load(udb, &s, err, sizeof(err)), MQC_OK);
	for(g=s->retired; g; g=g->next){
		assert_true(!strcmp(g->name, "bob") || !strcmp(g->name, "dev9"));
		n++;
	}
	assert_int_equal(n, 2);
	assert_int_equal(s->retired_count, 2);
	assert_non_null(snapshot__user(s, "alice", 5));
	snapshot__free(s);
	userdb__close(udb);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
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
		cmocka_unit_test_setup_teardown(test_vanished_lists_deleted_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_accounts_leave_no_presence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_while_change_waits_and_connected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_clears_retired_names, setup, teardown),
		cmocka_unit_test(test_load_retired_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
