/* test_plugin_auth.c - BASIC_AUTH order of checks, throttles with an
 * injected clock, the verified-credential cache, registration connections,
 * presence and the kicks that follow a snapshot swap. */
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

#define PW "correct horse"

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static char alice_hash[PWHASH_STR_LEN];
static char bob_hash[PWHASH_STR_LEN];
static struct mqchat *current;

static struct snapshot *make_snapshot(const char *alice_pwhash)
{
	struct snapshot *s = snapshot__new();

	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, alice_pwhash));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, bob_hash));
	assert_non_null(snapshot__add_user(s, "carol", USER_KIND_USER, false, bob_hash));
	assert_non_null(snapshot__add_user(s, "dev1", USER_KIND_DEVICE, true, bob_hash));
	assert_non_null(snapshot__add_user(s, "archiver", USER_KIND_SERVICE, true, bob_hash));
	assert_non_null(snapshot__add_user(s, "broken", USER_KIND_USER, true, "$md5$nope"));
	return s;
}

static int setup(void **state)
{
	struct mqchat *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	stub_reset();
	plugin_config__defaults(&m->cfg);
	m->cfg.registration = REGISTRATION_OPEN;
	m->cfg.stats_interval_s = 0;     /* these count presence publishes (stats: test_plugin_stats.c) */
	m->log.rate = 100000;
	fake_now = 1000000;
	m->clock_ms = fake_clock;
	assert_int_equal(auth__init(m), MQC_OK);
	m->snap = make_snapshot(alice_hash);
	current = m;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct mqchat *m = *state;

	presence__cleanup(&m->presence);
	limits__cleanup(&m->limits);
	devices__cleanup(m);
	auth__cleanup(m);
	snapshot__free(m->snap);
	free(m);
	current = NULL;
	return 0;
}

static struct mosquitto login_pool[4096];
static bool login_kicked[4096];         /* its DISCONNECT fired (kick hook) */

static int login(struct mqchat *m, const char *user, const char *id, const char *pw,
		const char *addr)
{
	/* One context per attempt, as the broker makes; kept alive (static
	 * pool) because presence remembers the pointer. */
	static int next;
	struct mosquitto *c = &login_pool[next % 4096];

	login_kicked[next++ % 4096] = false;
	c->username = user;
	c->id = id;
	c->address = addr;
	return auth__check(m, c, user, pw);
}

/* ---- throttle arithmetic ---- */

static void test_backoff_arithmetic(void **state)
{
	struct throttle t;
	int64_t now = 1000, wait = 0;

	(void)state;
	throttle__init_backoff(&t, 3, 500, 60000, 100);
	assert_false(throttle__locked(&t, "k", 1, now, NULL));
	assert_int_equal(throttle__fail(&t, "k", 1, now), 1);
	assert_false(throttle__locked(&t, "k", 1, now, NULL));
	assert_int_equal(throttle__fail(&t, "k", 1, now), 2);
	assert_false(throttle__locked(&t, "k", 1, now, NULL));
	/* 3rd failure: 0.5 s. */
	assert_int_equal(throttle__fail(&t, "k", 1, now), 3);
	assert_true(throttle__locked(&t, "k", 1, now, &wait));
	assert_int_equal(wait, 500);
	assert_true(throttle__locked(&t, "k", 1, now + 499, NULL));
	assert_false(throttle__locked(&t, "k", 1, now + 500, NULL));
	/* 4th: 1 s, 5th: 2 s, ... doubling up to the cap. */
	now += 500;
	throttle__fail(&t, "k", 1, now);
	assert_true(throttle__locked(&t, "k", 1, now, &wait));
	assert_int_equal(wait, 1000);
	throttle__fail(&t, "k", 1, now);
	throttle__locked(&t, "k", 1, now, &wait);
	assert_int_equal(wait, 2000);
	for(int i=0; i<100; i++) throttle__fail(&t, "k", 1, now);
	throttle__locked(&t, "k", 1, now, &wait);
	assert_int_equal(wait, 60000);
	/* Other keys are independent; a reset forgets. */
	assert_false(throttle__locked(&t, "j", 1, now, NULL));
	throttle__reset(&t, "k", 1);
	assert_false(throttle__locked(&t, "k", 1, now, NULL));
	assert_int_equal(throttle__fail(&t, "k", 1, now), 1);
	throttle__cleanup(&t);
	assert_int_equal(t.count, 0);
}

static void test_throttle_bounded_and_pruned(void **state)
{
	struct throttle t;
	char key[16];
	int i;

	(void)state;
	throttle__init_backoff(&t, 1, 1000, 10000, 8);
	for(i=0; i<20; i++){
		snprintf(key, sizeof(key), "k%d", i);
		throttle__fail(&t, key, strlen(key), 0);
	}
	assert_int_equal(t.count, 8);
	/* The oldest went first; the youngest are still locked. */
	assert_false(throttle__locked(&t, "k0", 2, 1, NULL));
	assert_true(throttle__locked(&t, "k19", 3, 1, NULL));
	/* Locked entries survive a prune; idle unlocked ones go. */
	throttle__prune(&t, 5000);
	assert_int_equal(t.count, 8);
	throttle__prune(&t, 20000);
	assert_int_equal(t.count, 0);
	throttle__cleanup(&t);
}

static void test_token_bucket(void **state)
{
	struct throttle t;
	int i;

	(void)state;
	throttle__init_bucket(&t, 5, 60000, 100);
	for(i=0; i<5; i++) assert_true(throttle__take(&t, "a", 1, 0));
	assert_false(throttle__take(&t, "a", 1, 0));
	assert_true(throttle__take(&t, "b", 1, 0));
	/* One token every 12 s. */
	assert_false(throttle__take(&t, "a", 1, 11999));
	assert_true(throttle__take(&t, "a", 1, 12000));
	assert_false(throttle__take(&t, "a", 1, 12001));
	/* Refill is capped at the burst. */
	for(i=0; i<5; i++) assert_true(throttle__take(&t, "a", 1, 10000000));
	assert_false(throttle__take(&t, "a", 1, 10000000));
	throttle__cleanup(&t);
}

/* ---- credential cache ---- */

static void test_credcache(void **state)
{
	struct credcache c;

	(void)state;
	assert_int_equal(credcache__init(&c, 3), MQC_OK);
	assert_false(credcache__check(&c, "alice", "pw", 2, "$h1"));
	credcache__store(&c, "alice", "pw", 2, "$h1");
	assert_true(credcache__check(&c, "alice", "pw", 2, "$h1"));
	/* Wrong password, other stored hash (password changed), other name. */
	assert_false(credcache__check(&c, "alice", "pW", 2, "$h1"));
	assert_false(credcache__check(&c, "alice", "pw", 2, "$h2"));
	assert_false(credcache__check(&c, "bob", "pw", 2, "$h1"));
	/* Field boundaries are part of the digest: "a"+"bc" is not "ab"+"c". */
	credcache__store(&c, "bob", "bc", 2, "$x");
	assert_false(credcache__check(&c, "bob", "b", 1, "c$x"));
	/* One digest per name: a new password replaces the old. */
	credcache__store(&c, "alice", "new", 3, "$h2");
	assert_false(credcache__check(&c, "alice", "pw", 2, "$h1"));
	assert_true(credcache__check(&c, "alice", "new", 3, "$h2"));
	assert_int_equal(c.count, 2);
	/* Bounded: the oldest is evicted. */
	credcache__store(&c, "carol", "p", 1, "$h");
	credcache__store(&c, "dave", "p", 1, "$h");
	assert_int_equal(c.count, 3);
	assert_false(credcache__check(&c, "bob", "bc", 2, "$x"));
	assert_true(credcache__check(&c, "alice", "new", 3, "$h2"));
	credcache__forget(&c, "alice");
	assert_false(credcache__check(&c, "alice", "new", 3, "$h2"));
	credcache__cleanup(&c);
}

/* ---- BASIC_AUTH ---- */

static void test_login_ok_and_cached(void **state)
{
	struct mqchat *m = *state;

	assert_int_equal(login(m, "alice", "alice", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(m->auth_cached, 0);
	assert_int_equal(login(m, "alice", "alice@phone", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(m->auth_cached, 1);
	assert_int_equal(login(m, "dev1", "dev1", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "archiver", "archiver@0", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(m->auth_ok, 4);
	assert_int_equal(presence__count(m, "alice"), 2);
}

/* The revocation short list (cuts.c): what the loader posts, what the
 * tick closes, what logins it refuses until the snapshot has the change. */
static void test_short_list(void **state)
{
	struct mqchat *m = *state;
	static struct cut_ring r;

	memset(&r, 0, sizeof(r));
	m->snap->data_version = 5;
	cuts__post(&r, 10, "disable", "alice");
	cuts__post(&r, 11, "block", "alice/bob");       /* closes nothing: the snapshot's */
	cuts__post(&r, 12, "revoke", "bob/phone");
	cuts__post(&r, 13, "revoke", "bob");            /* a device needs its user: passed over */
	cuts__post(&r, 14, "delete", "bob/phone");      /* an account is one name: passed over */
	assert_int_equal(r.seq, 2);
	assert_string_equal(r.e[1].name, "bob@phone");

	assert_int_equal(login(m, "alice", "alice", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	cuts__take(m, &r);
	assert_int_equal(stub.kicked_user_count, 1);
	assert_string_equal(stub.kicked_users[0], "alice");
	assert_int_equal(stub.kicked_id_count, 0);      /* no token connection of bob@phone */
	assert_int_equal(m->cuts.count, 2);
	/* Refused as if disabled, though the snapshot says enabled. */
	assert_int_equal(login(m, "alice", "alice", PW, "10.0.0.1"), MOSQ_ERR_AUTH);
	assert_true(stub_log_contains("account disabled"));
	/* A revoked token refuses token logins of that device only. */
	assert_true(cuts__denies(&m->cuts, "bob", "bob@phone", true));
	assert_false(cuts__denies(&m->cuts, "bob", "bob@phone", false));
	assert_false(cuts__denies(&m->cuts, "bob", "bob@laptop", true));
	assert_int_equal(login(m, "bob", "bob@phone", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	/* Read once. */
	cuts__take(m, &r);
	assert_int_equal(stub.kicked_user_count, 1);

	/* A snapshot with the disable: alice is the snapshot's again. */
	cuts__applied(&m->cuts, 10);
	assert_int_equal(m->cuts.count, 1);
	assert_int_equal(login(m, "alice", "alice", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	cuts__applied(&m->cuts, 12);
	assert_int_equal(m->cuts.count, 0);

	/* A change the snapshot in use has already: nothing to do. */
	m->snap->data_version = 20;
	cuts__post(&r, 15, "disable", "bob");
	cuts__take(m, &r);
	assert_int_equal(stub.kicked_user_count, 1);
	assert_int_equal(m->cuts.count, 0);
}

static void test_login_refusals(void **state)
{
	struct mqchat *m = *state;
	char longpw[PWHASH_MAX_PASSWORD + 2];

	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	assert_int_equal(login(m, NULL, "alice", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "", "alice", PW, "a"), MOSQ_ERR_AUTH);
	/* Names outside the grammar, wildcards, control characters. */
	assert_int_equal(login(m, "Alice", "Alice", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "al+ce", "al+ce", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "al#", "al#", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "a/b", "a/b", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "al\x01", "al\x01", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", PW, "a"),
			MOSQ_ERR_AUTH);
	/* Client ids that are not the user's own. */
	assert_int_equal(login(m, "alice", "bob", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alicex", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice@", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice@a/b", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice@+", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "bob@alice", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "", PW, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", NULL, PW, "a"), MOSQ_ERR_AUTH);
	/* Passwords: none, too long, wrong. */
	assert_int_equal(login(m, "alice", "alice", NULL, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice", longpw, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "bob", "bob", "wrong", "b"), MOSQ_ERR_AUTH);
	/* Unknown, disabled, unreadable stored hash. */
	assert_int_equal(login(m, "zed", "zed", PW, "c"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "carol", "carol", PW, "c"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "broken", "broken", PW, "c"), MOSQ_ERR_AUTH);
	assert_int_equal(m->auth_ok, 0);
	assert_int_equal(stub_log_contains("mqchat: login refused"), (int)m->auth_failed);
	assert_int_equal(stub_log_contains("client id must be <username> or <username>@<device>"), 7);
	assert_int_equal(stub_log_contains("no client id"), 1);
	assert_int_equal(stub_log_contains("invalid username"), 6);
	assert_int_equal(stub_log_contains("unknown user"), 1);
	assert_int_equal(stub_log_contains("account disabled"), 1);
	/* Never a password in the log; control bytes escaped. */
	assert_int_equal(stub_log_contains(PW), 0);
	assert_int_equal(stub_log_contains("wrong\""), 0);
	assert_int_equal(stub_log_contains("al\x01"), 0);
	assert_int_equal(presence__count(m, "alice"), 0);
}

/* Is name locked as seen from addr? */
static bool user_locked(struct mqchat *m, const char *name, const char *addr)
{
	char key[AUTH_USER_KEY_LEN];
	size_t n = auth__user_key(key, name, addr);

	return throttle__locked(&m->user_throttle, key, n, fake_now, NULL);
}

static void test_user_throttle(void **state)
{
	struct mqchat *m = *state;
	int64_t t0 = fake_now;

	assert_int_equal(login(m, "alice", "alice", "bad1", "1.1.1.1"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice", "bad2", "1.1.1.1"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice", "bad3", "1.1.1.1"), MOSQ_ERR_AUTH);
	/* Locked for 0.5 s from that address: even the right password is
	 * refused there, unhashed. */
	assert_int_equal(login(m, "alice", "alice", PW, "1.1.1.1"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("throttled (user)"), 1);
	assert_int_equal(m->auth_throttled, 1);
	/* The owner elsewhere is not locked out by someone guessing. */
	assert_int_equal(login(m, "alice", "alice@phone", PW, "1.1.1.4"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "alice", "alice", "bad4", "1.1.1.2"), MOSQ_ERR_AUTH);
	assert_false(user_locked(m, "alice", "1.1.1.2"));
	/* Other accounts are not affected. */
	assert_int_equal(login(m, "bob", "bob", PW, "1.1.1.1"), MOSQ_ERR_SUCCESS);
	fake_now = t0 + 500;
	assert_int_equal(login(m, "alice", "alice", "not-cached", "1.1.1.1"), MOSQ_ERR_AUTH);
	fake_now = t0 + 1500;
	credcache__forget(&m->creds, "alice");
	assert_int_equal(login(m, "alice", "alice", PW, "1.1.1.1"), MOSQ_ERR_SUCCESS);
	/* The success reset the streak: two more failures lock nothing. */
	assert_int_equal(login(m, "alice", "alice", "bad", "1.1.1.1"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice", "bad", "1.1.1.1"), MOSQ_ERR_AUTH);
	assert_false(user_locked(m, "alice", "1.1.1.1"));
}

/* The archiver's secret: no throttle on its name at all, so failing on it
 * (from its own address) cannot keep it out; and a person's row cannot
 * claim that form. */
static void test_service_secret(void **state)
{
	struct mqchat *m = *state;
	const char *secret = "0123456789abcdef0123456789abcdef-svc";
	char hash[PWHASH_STR_LEN];
	struct snapshot *s = snapshot__new();
	int i;

	assert_int_equal(pwhash__make_secret(secret, strlen(secret), hash, sizeof(hash)), MQC_OK);
	assert_int_equal(pwhash__make_secret("short", 5, hash + 0, 0), MQC_ERR_INVAL);
	assert_non_null(snapshot__add_user(s, "archiver", USER_KIND_SERVICE, true, hash));
	assert_non_null(snapshot__add_user(s, "mallory", USER_KIND_USER, true, hash));
	snapshot__free(m->snap);
	m->snap = s;
	for(i=0; i<200; i++){
		assert_int_equal(login(m, "archiver", "archiver@0", "wrong", "127.0.0.1"), MOSQ_ERR_AUTH);
	}
	assert_int_equal(m->auth_throttled, 0);
	assert_false(throttle__locked(&m->addr_throttle, "127.0.0.1", 9, fake_now, NULL));
	assert_int_equal(login(m, "archiver", "archiver@0", secret, "127.0.0.1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "mallory", "mallory", secret, "127.0.0.1"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("stored password hash unreadable"), 1);
}

static void test_cache_passes_while_throttled(void **state)
{
	struct mqchat *m = *state;
	int i;

	assert_int_equal(login(m, "alice", "alice", PW, "9.9.9.9"), MOSQ_ERR_SUCCESS);
	for(i=0; i<6; i++) login(m, "alice", "alice", "bad", "9.9.9.9");
	assert_true(user_locked(m, "alice", "9.9.9.9"));
	/* The credential verified before: it passes on the cache. */
	assert_int_equal(login(m, "alice", "alice@tablet", PW, "9.9.9.9"), MOSQ_ERR_SUCCESS);
	assert_int_equal(m->auth_cached, 1);
	/* A changed stored hash (password change) is no longer in the cache. */
	snapshot__free(m->snap);
	m->snap = make_snapshot(bob_hash);
	assert_int_equal(login(m, "alice", "alice", PW, "9.9.9.9"), MOSQ_ERR_AUTH);
	assert_int_equal(m->auth_cached, 1);
}

static void test_address_throttle(void **state)
{
	struct mqchat *m = *state;
	char name[16];
	int i;

	/* Ten hashed failures from one address, spread over accounts so no
	 * account is locked. */
	for(i=0; i<10; i++){
		snprintf(name, sizeof(name), "%s", i % 2 ? "bob" : "zed");
		assert_int_equal(login(m, name, name, "bad", "6.6.6.6"), MOSQ_ERR_AUTH);
		throttle__cleanup(&m->user_throttle);
	}
	assert_true(throttle__locked(&m->addr_throttle, "6.6.6.6", 7, fake_now, NULL));
	/* The address is locked: a made-up name is refused unhashed... */
	assert_int_equal(login(m, "nobody", "nobody", PW, "6.6.6.6"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("throttled (address)"), 1);
	/* ... a real account is still checked, a few a second: the 10 of the
	 * burst go (here wrong passwords for a real name, as an attacker who
	 * knows names would send), then none until the bucket refills. */
	for(i=0; i<10; i++){
		assert_int_equal(login(m, "bob", "bob", "bad", "6.6.6.6"), MOSQ_ERR_AUTH);
		throttle__cleanup(&m->user_throttle);
	}
	assert_int_equal(stub_log_contains("throttled (address)"), 1);
	assert_int_equal(login(m, "alice", "alice", PW, "6.6.6.6"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("throttled (address)"), 2);
	/* ... other addresses are not held back. */
	assert_int_equal(login(m, "alice", "alice", PW, "7.7.7.7"), MOSQ_ERR_SUCCESS);
	/* ... and a credential in the cache passes from the locked address. */
	assert_int_equal(login(m, "alice", "alice", PW, "6.6.6.6"), MOSQ_ERR_SUCCESS);
	/* A fifth of a second later the bucket has one more check: bob's
	 * right password gets in though the address is still locked. */
	fake_now += 200;
	assert_true(throttle__locked(&m->addr_throttle, "6.6.6.6", 7, fake_now, NULL));
	assert_int_equal(login(m, "bob", "bob", PW, "6.6.6.6"), MOSQ_ERR_SUCCESS);
}

static void test_user_throttle_spares_address(void **state)
{
	struct mqchat *m = *state;
	int i;

	/* A flood at one account from a shared address: after the account
	 * locks, refusals do not count against the address. */
	for(i=0; i<100; i++) login(m, "bob", "bob", "guess", "100.64.0.1");
	assert_true(user_locked(m, "bob", "100.64.0.1"));
	assert_false(throttle__locked(&m->addr_throttle, "100.64.0.1", 10, fake_now, NULL));
	assert_int_equal(login(m, "alice", "alice", PW, "100.64.0.1"), MOSQ_ERR_SUCCESS);
}

static void test_unknown_names_throttled(void **state)
{
	struct mqchat *m = *state;
	int64_t t0;
	int i;

	for(i=0; i<3; i++) assert_int_equal(login(m, "zed", "zed", "x", "5.5.5.5"), MOSQ_ERR_AUTH);
	assert_true(user_locked(m, "zed", "5.5.5.5"));
	/* A throttled attempt costs no hash: measure it against a real one. */
	t0 = time__mono_ns();
	for(i=0; i<100; i++) login(m, "zed", "zed", "x", "5.5.5.5");
	assert_true(time__mono_ns() - t0 < 100 * 200000LL);
	assert_int_equal(m->auth_throttled, 100);
}

/* A front (plugin_opt_front_addresses): its address carries every client,
 * so no rule keys on it; the name's throttle keys on the name alone. */
static void test_front_skips_address_throttles(void **state)
{
	struct mqchat *m = *state;
	char err[128];
	int i;

	assert_int_equal(front__add(&m->cfg, "10.0.0.1 10.0.1.0/24", err, sizeof(err)), MQC_OK);
	/* Failures on many names from the front lock no address... */
	for(i=0; i<30; i++){
		const char *name = i % 2 ? "bob" : "zed";

		assert_int_equal(login(m, name, name, "bad", "10.0.0.1"), MOSQ_ERR_AUTH);
		throttle__cleanup(&m->user_throttle);
	}
	assert_int_equal(m->addr_throttle.count, 0);
	assert_int_equal(stub_log_contains("throttled"), 0);
	assert_int_equal(login(m, "alice", "alice", PW, "10.0.0.1"), MOSQ_ERR_SUCCESS);
	/* ... a name's failures lock the name through every front address
	 * (the key is the name alone), not from elsewhere. */
	for(i=0; i<3; i++) assert_int_equal(login(m, "bob", "bob", "bad", "10.0.1.7"), MOSQ_ERR_AUTH);
	assert_true(user_locked(m, "bob", ""));
	assert_int_equal(login(m, "bob", "bob", PW, "10.0.0.1"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("throttled (user)"), 1);
	assert_int_equal(login(m, "bob", "bob", PW, "10.0.2.1"), MOSQ_ERR_SUCCESS);
	/* Registration connections: not counted per front address. */
	for(i=0; i<20; i++){
		assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "10.0.1.9"),
				MOSQ_ERR_SUCCESS);
	}
	for(i=0; i<5; i++){
		assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "10.0.2.9"),
				MOSQ_ERR_SUCCESS);
	}
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "10.0.2.9"), MOSQ_ERR_AUTH);
}

/* ---- registration connections ---- */

static void test_register_login(void **state)
{
	struct mqchat *m = *state;
	int i;

	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.2"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "_register", "_register@ABCdef.-_1", "x", "2.2.2.2"), MOSQ_ERR_SUCCESS);
	assert_int_equal(m->presence.register_count, 2);
	/* Client id shape. */
	assert_int_equal(login(m, "_register", "_register@short", NULL, "2.2.2.3"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "_register", "_register", NULL, "2.2.2.3"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "_register", "alice@abcdefgh", NULL, "2.2.2.3"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "_register", "_register@abc/efgh", NULL, "2.2.2.3"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "_register", "_register@abcdefgh+", NULL, "2.2.2.3"), MOSQ_ERR_AUTH);
	/* 5 per minute per address. */
	for(i=0; i<3; i++){
		assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.2"), MOSQ_ERR_SUCCESS);
	}
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.2"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.9"), MOSQ_ERR_SUCCESS);
	fake_now += 12000;
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.2"), MOSQ_ERR_SUCCESS);
	/* No presence for registration connections. */
	assert_int_equal(stub.publish_count, 0);
	/* Off: it still connects (to ask login_status), within the same
	 * per-address budget. */
	m->cfg.registration = REGISTRATION_OFF;
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "2.2.2.7"), MOSQ_ERR_SUCCESS);
}

static void test_register_bounded(void **state)
{
	struct mqchat *m = *state;
	char addr[32];
	int i, ok = 0;

	for(i=0; i<REGISTER_MAX_CONNS + 10; i++){
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
		ok += login(m, "_register", "_register@abcdefgh", NULL, addr) == MOSQ_ERR_SUCCESS;
	}
	assert_int_equal(ok, REGISTER_MAX_CONNS);
	assert_int_equal(stub_log_contains("too many registration connections open"), 10);
}

static void kick_id_disconnects(const char *clientid)
{
	struct conn *c, *tmp;

	/* What the broker does: DISCONNECT for the kicked context at once. */
	HASH_ITER(hh, current->presence.registers, c, tmp){
		if(!strcmp(c->clientid, clientid)){
			presence__disconnect(current, c->client);
			return;
		}
	}
}

static void test_register_timeout(void **state)
{
	struct mqchat *m = *state;
	int64_t t0 = fake_now;

	stub.on_kick_id = kick_id_disconnects;
	m->cfg.register_timeout_s = 30;
	assert_int_equal(login(m, "_register", "_register@first123", NULL, "3.3.3.3"), MOSQ_ERR_SUCCESS);
	fake_now = t0 + 10000;
	assert_int_equal(login(m, "_register", "_register@second12", NULL, "3.3.3.3"), MOSQ_ERR_SUCCESS);
	tick__run(m, t0 + 29999);
	assert_int_equal(stub.kicked_id_count, 0);
	tick__run(m, t0 + 30000);
	assert_int_equal(stub.kicked_id_count, 1);
	assert_string_equal(stub.kicked_ids[0], "_register@first123");
	assert_int_equal(m->presence.register_count, 1);
	tick__run(m, t0 + 40000);
	assert_int_equal(stub.kicked_id_count, 2);
	assert_string_equal(stub.kicked_ids[1], "_register@second12");
	assert_int_equal(m->presence.register_count, 0);
}

/* ---- presence and kicks ---- */

static void test_presence(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto a1 = {"alice", "alice", "1"}, a2 = {"alice@phone", "alice", "1"};
	struct mosquitto s1 = {"archiver", "archiver", "1"}, stranger = {"x", "x", "1"};

	assert_int_equal(presence__connect(m, &a1, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(stub.publish_count, 1);
	assert_string_equal(stub.publishes[0].topic, "chat/presence/alice");
	assert_non_null(strstr(stub.publishes[0].payload, "{\"status\":\"online\",\"since\":"));
	assert_true(stub.publishes[0].retain);
	assert_int_equal(stub.publishes[0].qos, 1);
	/* A second device: no new presence; the same context twice counts once. */
	assert_int_equal(presence__connect(m, &a2, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(presence__connect(m, &a2, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(presence__count(m, "alice"), 2);
	assert_int_equal(stub.publish_count, 1);
	/* Services have no presence. */
	assert_int_equal(presence__connect(m, &s1, "archiver", USER_KIND_SERVICE), MQC_OK);
	assert_int_equal(stub.publish_count, 1);
	/* Unknown contexts disconnecting change nothing. */
	presence__disconnect(m, &stranger);
	presence__disconnect(m, &a1);
	assert_int_equal(stub.publish_count, 1);
	presence__disconnect(m, &a1);
	assert_int_equal(presence__count(m, "alice"), 1);
	presence__disconnect(m, &a2);
	assert_int_equal(presence__count(m, "alice"), 0);
	/* Within a second of "online": it waits for its interval
	 * (test_plugin_presence.c). */
	assert_int_equal(stub.publish_count, 1);
	fake_now += PRESENCE_MIN_MS;
	tick__run(m, fake_now);
	assert_int_equal(stub.publish_count, 2);
	assert_non_null(strstr(stub.publishes[1].payload, "{\"status\":\"offline\",\"since\":"));
	assert_true(stub.publishes[1].retain);
	presence__disconnect(m, &s1);
	assert_int_equal(stub.publish_count, 2);
}

static void test_presence_sweep(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto a = {"alice", "alice", "1"};
	struct snapshot *s;
	int i, cleared = 0;

	/* alice is connected; bob, carol (disabled), dev1, broken are not;
	 * archiver is a service (no presence). */
	presence__connect(m, &a, "alice", USER_KIND_USER);
	stub_reset();
	m->presence.sweep_active = true;
	presence__sweep(m, 2);
	assert_int_equal(stub.publish_count, 2);
	assert_true(m->presence.sweep_active);
	presence__sweep(m, 100);
	assert_false(m->presence.sweep_active);
	for(i=0; i<stub.publish_count; i++){
		assert_true(stub.publishes[i].retain);
		assert_string_equal(stub.publishes[i].payload, "");
		assert_string_not_equal(stub.publishes[i].topic, "chat/presence/alice");
		assert_string_not_equal(stub.publishes[i].topic, "chat/presence/archiver");
		cleared++;
	}
	assert_int_equal(cleared, 4);
	/* Done: nothing more. */
	presence__sweep(m, 100);
	assert_int_equal(stub.publish_count, 4);

	/* A snapshot swapped in mid-sweep: the sweep starts over on it. */
	stub_reset();
	m->presence.sweep_active = true;
	m->presence.sweep_started = false;
	presence__sweep(m, 1);
	s = snapshot__new();
	assert_non_null(snapshot__add_user(s, "zoe", USER_KIND_USER, true, bob_hash));
	tick__swap_snapshot(m, s);
	presence__sweep(m, 100);
	assert_false(m->presence.sweep_active);
	assert_string_equal(stub.publishes[stub.publish_count - 1].topic, "chat/presence/zoe");
	presence__disconnect(m, &a);
}

static void kick_user_disconnects(const char *username)
{
	struct conn *c, *tmp;

	HASH_ITER(hh, current->presence.conns, c, tmp){
		if(c->user && !strcmp(c->user->name, username)) presence__disconnect(current, c->client);
	}
}

static void test_swap_kicks_disabled_and_deleted(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto a = {"alice", "alice", "1"}, b = {"bob", "bob", "1"}, b2 = {"bob@x", "bob", "1"};
	struct mosquitto d = {"dev1", "dev1", "1"};
	struct snapshot *s;

	stub.on_kick_user = kick_user_disconnects;
	presence__connect(m, &a, "alice", USER_KIND_USER);
	presence__connect(m, &b, "bob", USER_KIND_USER);
	presence__connect(m, &b2, "bob", USER_KIND_USER);
	presence__connect(m, &d, "dev1", USER_KIND_DEVICE);
	/* New snapshot: bob disabled, dev1 deleted, alice unchanged. */
	s = snapshot__new();
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, alice_hash));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, false, bob_hash));
	tick__swap_snapshot(m, s);
	assert_ptr_equal(m->snap, s);
	assert_int_equal(stub.kicked_user_count, 2);
	assert_int_equal(presence__count(m, "bob"), 0);
	assert_int_equal(presence__count(m, "dev1"), 0);
	assert_int_equal(presence__count(m, "alice"), 1);
	assert_int_equal(stub_log_contains("closing connections of bob (disabled)"), 1);
	assert_int_equal(stub_log_contains("closing connections of dev1 (deleted)"), 1);
	/* And they cannot come back. */
	assert_int_equal(login(m, "bob", "bob", PW, "1"), MOSQ_ERR_AUTH);
}

static void test_mass_disable_spread_over_ticks(void **state)
{
	struct mqchat *m = *state;
	static struct mosquitto conns[250];
	static char names[250][16];
	struct snapshot *s;
	int i;

	stub.on_kick_user = kick_user_disconnects;
	s = snapshot__new();
	for(i=0; i<250; i++){
		snprintf(names[i], sizeof(names[i]), "u%03d", i);
		conns[i].id = conns[i].username = names[i];
		conns[i].address = "1";
		assert_int_equal(presence__connect(m, &conns[i], names[i], USER_KIND_USER), MQC_OK);
		/* Every other one stays enabled. */
		assert_non_null(snapshot__add_user(s, names[i], USER_KIND_USER, i % 2 == 0, bob_hash));
	}
	tick__swap_snapshot(m, s);
	assert_int_equal(stub.kicked_user_count, 100);
	assert_int_equal(m->presence.kicks_pending, 25);
	/* Re-enabled before its turn: not kicked. */
	s = snapshot__new();
	for(i=0; i<250; i++){
		assert_non_null(snapshot__add_user(s, names[i], USER_KIND_USER, i % 2 == 0 || i > 240, bob_hash));
	}
	snapshot__free(m->snap);
	m->snap = s;
	tick__run(m, fake_now);
	assert_int_equal(m->presence.kicks_pending, 0);
	for(i=0; i<250; i++){
		unsigned want = (i % 2 == 0 || i > 240) ? 1 : 0;
		if(presence__count(m, names[i]) != want){
			print_error("%s: %u connections, want %u\n", names[i], presence__count(m, names[i]), want);
			fail();
		}
	}
	assert_int_equal(stub.kicked_user_count, 125 - 5);
}

static void test_disconnect_cb_and_basic_auth_cb(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto a = {"alice", "alice", "1"};
	struct mosquitto_evt_basic_auth ba;
	struct mosquitto_evt_disconnect dc;

	memset(&ba, 0, sizeof(ba));
	ba.client = &a;
	ba.username = (char *)(uintptr_t)"alice";
	ba.password = (char *)(uintptr_t)PW;
	assert_int_equal(auth__basic_auth_cb(MOSQ_EVT_BASIC_AUTH, &ba, m), MOSQ_ERR_SUCCESS);
	assert_int_equal(presence__count(m, "alice"), 1);
	memset(&dc, 0, sizeof(dc));
	dc.client = &a;
	assert_int_equal(presence__disconnect_cb(MOSQ_EVT_DISCONNECT, &dc, m), MOSQ_ERR_SUCCESS);
	assert_int_equal(presence__count(m, "alice"), 0);
}

/* Not a correctness test: prints what the credential cache saves. */
static void test_bench_auth(void **state)
{
	struct mqchat *m = *state;
	char h[PWHASH_STR_LEN];
	struct snapshot *s = snapshot__new();
	int64_t t0, t1, t2;
	int i, ok = 0;
	const int full = 20, cached = 20000;

	assert_int_equal(pwhash__make(PW, strlen(PW), PWHASH_DEFAULT_ITERATIONS, h, sizeof(h)), MQC_OK);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, h));
	snapshot__free(m->snap);
	m->snap = s;
	t0 = time__mono_ns();
	for(i=0; i<full; i++){
		credcache__forget(&m->creds, "alice");
		ok += login(m, "alice", "alice", PW, "1") == MOSQ_ERR_SUCCESS;
	}
	t1 = time__mono_ns();
	for(i=0; i<cached; i++) ok += login(m, "alice", "alice", PW, "1") == MOSQ_ERR_SUCCESS;
	t2 = time__mono_ns();
	assert_int_equal(ok, full + cached);
	printf("# auth bench: full check (PBKDF2 %u iterations) %.2f ms, cached %.2f us\n",
			PWHASH_DEFAULT_ITERATIONS, (double)(t1 - t0) / full / 1e6,
			(double)(t2 - t1) / cached / 1e3);
	presence__cleanup(&m->presence);
}

static int group_setup(void **state)
{
	(void)state;
	/* The lowest cost the format allows keeps the tests fast. */
	assert_int_equal(pwhash__make(PW, strlen(PW), PWHASH_MIN_ITERATIONS, alice_hash,
				sizeof(alice_hash)), MQC_OK);
	assert_int_equal(pwhash__make(PW, strlen(PW), PWHASH_MIN_ITERATIONS, bob_hash,
				sizeof(bob_hash)), MQC_OK);
	return 0;
}

/* ---- device tokens ---- */

static void add_token(struct snapshot *s, const char *user, const char *device, const char *token)
{
	unsigned char d[DEVTOKEN_DIGEST_LEN];

	assert_int_equal(devtoken__digest(token, strlen(token), d), MQC_OK);
	assert_int_equal(snapshot__add_device(s, user, device, d), MQC_OK);
}

static void test_token_login(void **state)
{
	struct mqchat *m = *state;
	char tok[DEVTOKEN_LEN + 1], other[DEVTOKEN_LEN + 1], carol[DEVTOKEN_LEN + 1];
	int i;

	assert_int_equal(devtoken__make(tok), MQC_OK);
	assert_int_equal(devtoken__make(other), MQC_OK);
	assert_int_equal(devtoken__make(carol), MQC_OK);
	add_token(m->snap, "alice", "phone", tok);
	add_token(m->snap, "carol", "phone", carol);
	add_token(m->snap, "archiver", "x", other);
	assert_int_equal(login(m, "alice", "alice@phone", tok, "a"), MOSQ_ERR_SUCCESS);
	/* Bound to its account and device; the whole token. */
	assert_int_equal(login(m, "alice", "alice@laptop", tok, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice", tok, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("a device token needs the client id"), 1);
	assert_int_equal(login(m, "alice", "alice@phone", other, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "bob", "bob@phone", tok, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "zed", "zed@phone", tok, "a"), MOSQ_ERR_AUTH);
	/* A disabled account's token, and a service's, are no good. */
	assert_int_equal(login(m, "carol", "carol@phone", carol, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "archiver", "archiver@x", other, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(stub_log_contains("invalid device token"), 6);
	/* Never throttled: someone guessing alice's password from this
	 * address locks the password out, not the device. */
	for(i = 0; i < 20; i++) login(m, "alice", "alice@phone", "wrong password", "a");
	assert_int_equal(login(m, "alice", "alice@phone", PW, "a"), MOSQ_ERR_AUTH);
	assert_true(stub_log_contains("throttled") > 0);
	assert_int_equal(login(m, "alice", "alice@phone", tok, "a"), MOSQ_ERR_SUCCESS);
	/* Wrong tokens count against nothing. */
	for(i = 0; i < 50; i++) login(m, "bob", "bob@phone", other, "b");
	assert_int_equal(login(m, "bob", "bob", PW, "b"), MOSQ_ERR_SUCCESS);
}

/* The broker fires every DISCONNECT callback for a kicked context at
 * once: for the contexts login() made last, by client id. */
static void kick_id_fires_disconnect(const char *clientid)
{
	int i;

	for(i = 0; i < 4096; i++){
		struct mosquitto *c = &login_pool[i];

		if(c->id == NULL || strcmp(c->id, clientid) != 0 || login_kicked[i]) continue;
		login_kicked[i] = true;
		presence__disconnect(current, c);
		limits__disconnect(current, c);
		devices__disconnect(current, c);
	}
}

static void test_revoked_device_is_closed(void **state)
{
	struct mqchat *m = *state;
	char phone[DEVTOKEN_LEN + 1], laptop[DEVTOKEN_LEN + 1], laptop2[DEVTOKEN_LEN + 1];
	struct snapshot *s;

	memset(login_pool, 0, sizeof(login_pool));
	memset(login_kicked, 0, sizeof(login_kicked));
	stub.on_kick_id = kick_id_fires_disconnect;
	assert_int_equal(devtoken__make(phone), MQC_OK);
	assert_int_equal(devtoken__make(laptop), MQC_OK);
	assert_int_equal(devtoken__make(laptop2), MQC_OK);
	add_token(m->snap, "alice", "phone", phone);
	add_token(m->snap, "alice", "laptop", laptop);
	assert_int_equal(login(m, "alice", "alice@phone", phone, "a"), MOSQ_ERR_SUCCESS);
	/* The laptop logs in with the password: tracked all the same. */
	assert_int_equal(login(m, "alice", "alice@laptop", PW, "a"), MOSQ_ERR_SUCCESS);
	/* A device without a token is not. */
	assert_int_equal(login(m, "alice", "alice@tablet", PW, "a"), MOSQ_ERR_SUCCESS);

	/* Nothing about tokens changed: nobody is looked at or closed. */
	s = make_snapshot(alice_hash);
	add_token(s, "alice", "laptop", laptop);
	add_token(s, "alice", "phone", phone);
	tick__swap_snapshot(m, s);
	assert_int_equal(stub.kicked_id_count, 0);

	/* The phone's token revoked: the phone goes, nobody else. */
	s = make_snapshot(alice_hash);
	add_token(s, "alice", "laptop", laptop);
	tick__swap_snapshot(m, s);
	assert_int_equal(stub.kicked_id_count, 1);
	assert_string_equal(stub.kicked_ids[0], "alice@phone");
	assert_int_equal(stub_log_contains("closing alice@phone (device token revoked)"), 1);
	assert_int_equal(login(m, "alice", "alice@phone", phone, "a"), MOSQ_ERR_AUTH);

	/* A new token for the laptop: its password login stays. */
	s = make_snapshot(alice_hash);
	add_token(s, "alice", "laptop", laptop2);
	tick__swap_snapshot(m, s);
	assert_int_equal(stub.kicked_id_count, 1);
	assert_int_equal(login(m, "alice", "alice@laptop", laptop, "a"), MOSQ_ERR_AUTH);
	assert_int_equal(login(m, "alice", "alice@laptop", laptop2, "a"), MOSQ_ERR_SUCCESS);

	/* ... and a token login with the old one would have gone: the laptop
	 * that logged in with laptop2 goes when its token is replaced. */
	s = make_snapshot(alice_hash);
	add_token(s, "alice", "laptop", phone);
	tick__swap_snapshot(m, s);
	assert_int_equal(stub.kicked_id_count, 2);
	assert_string_equal(stub.kicked_ids[1], "alice@laptop");
}

/* The reports on chat/seen/... published so far; *last: the latest. */
static int seen_reports(const struct stub_publish **last)
{
	int i, n = 0;

	for(i = 0; i < stub.publish_count; i++){
		if(strcmp(stub.publishes[i].topic, "chat/seen/broker") != 0) continue;
		*last = &stub.publishes[i];
		n++;
	}
	return n;
}

static void test_device_logins_reported(void **state)
{
	struct mqchat *m = *state;
	const struct stub_publish *p = NULL;
	char tok[DEVTOKEN_LEN + 1];
	int64_t now = 5000;

	assert_int_equal(devtoken__make(tok), MQC_OK);
	add_token(m->snap, "alice", "phone", tok);
	assert_int_equal(login(m, "alice", "alice@phone", tok, "a"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "alice", "alice@phone", tok, "a"), MOSQ_ERR_SUCCESS);
	assert_int_equal(login(m, "bob", "bob@phone", PW, "a"), MOSQ_ERR_SUCCESS);   /* no token */
	devices__tick(m, now);
	assert_int_equal(seen_reports(&p), 1);
	assert_int_equal(p->qos, 1);
	assert_false(p->retain);
	assert_non_null(strstr(p->payload, "\"user\":\"alice\",\"device\":\"phone\""));
	assert_null(strstr(p->payload, "bob"));
	/* One entry for two logins; nothing new, nothing sent. */
	assert_null(strstr(strstr(p->payload, "alice") + 1, "alice"));
	devices__tick(m, now + 60000);
	assert_int_equal(seen_reports(&p), 1);
	/* The next login waits for the next report. */
	assert_int_equal(login(m, "alice", "alice@phone", tok, "a"), MOSQ_ERR_SUCCESS);
	devices__tick(m, now + 61000);
	assert_int_equal(seen_reports(&p), 1);
	devices__tick(m, now + 90000);
	assert_int_equal(seen_reports(&p), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_arithmetic),
		cmocka_unit_test(test_throttle_bounded_and_pruned),
		cmocka_unit_test(test_token_bucket),
		cmocka_unit_test(test_credcache),
		cmocka_unit_test_setup_teardown(test_login_ok_and_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_passes_while_throttled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_throttle_spares_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_front_skips_address_throttles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_names_throttled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_kicks_disabled_and_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mass_disable_spread_over_ticks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_cb_and_basic_auth_cb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bench_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoked_device_is_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_logins_reported, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
