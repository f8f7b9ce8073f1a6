/* test_plugin_config.c - plugin_opt_* parsing, and init/cleanup of the whole
 * plugin against the broker stubs (a missing or foreign store refuses to
 * start; every callback registered is unregistered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker_stubs.h"
#include "err.h"
#include "plugin.h"

#define OPT(k, v) {(char *)(uintptr_t)(k), (char *)(uintptr_t)(v)}

static int parse(struct mosquitto_opt *opts, int n, struct mqchat_config *cfg, char *err)
{
	err[0] = '\0';
	return plugin_config__parse(cfg, opts, n, err, 256);
}

static void test_defaults(void **state)
{
	struct mqchat_config cfg;
	struct mosquitto_opt opts[] = {OPT("dbpath", "/x/auth.db")};
	char err[256];

	(void)state;
	assert_int_equal(parse(opts, 1, &cfg, err), MQC_OK);
	assert_string_equal(cfg.db, "/x/auth.db");
	assert_int_equal(cfg.registration, REGISTRATION_OFF);
	assert_int_equal(cfg.max_payload, 65536);
	assert_int_equal(cfg.reload_ms, 250);
	assert_int_equal(cfg.register_timeout_s, 30);
	assert_int_equal(cfg.log_rate, 20);
	assert_true(cfg.watch);
	plugin_config__cleanup(&cfg);
	assert_null(cfg.db);
}

static void test_all_options(void **state)
{
	struct mqchat_config cfg;
	struct mosquitto_opt opts[] = {
		OPT("db", "a.db"), OPT("registration", "invite"), OPT("max_payload", "256"),
		OPT("reload_ms", "100"), OPT("register_timeout", "5"), OPT("log_rate", "1"),
		OPT("watch", "off"), OPT("dbpath", "b.db"),
	};
	char err[256];

	(void)state;
	stub_reset();
	assert_int_equal(parse(opts, 8, &cfg, err), MQC_OK);
	assert_false(cfg.watch);
	assert_string_equal(cfg.db, "b.db");
	assert_int_equal(cfg.registration, REGISTRATION_INVITE);
	assert_int_equal(cfg.max_payload, 256);
	assert_int_equal(cfg.reload_ms, 100);
	assert_int_equal(cfg.register_timeout_s, 5);
	assert_int_equal(cfg.log_rate, 1);
	assert_int_equal(stub.log_count, 0);
	plugin_config__cleanup(&cfg);

	opts[1].value = "open";
	opts[2].value = "268435455";
	assert_int_equal(parse(opts, 3, &cfg, err), MQC_OK);
	assert_int_equal(cfg.registration, REGISTRATION_OPEN);
	assert_int_equal(cfg.max_payload, 268435455);
	plugin_config__cleanup(&cfg);
}

static void test_bad_values(void **state)
{
	static const struct {
		const char *key, *value, *msg;
	} bad[] = {
		{"registration", "on", "plugin_opt_registration must be off, invite or open"},
		{"registration", "", "plugin_opt_registration must be"},
		{"registration", "OPEN", "plugin_opt_registration must be"},
		{"max_payload", "255", "plugin_opt_max_payload must be an integer in 256..268435455"},
		{"max_payload", "268435456", "plugin_opt_max_payload must be"},
		{"max_payload", "-1", "plugin_opt_max_payload must be"},
		{"max_payload", "64k", "plugin_opt_max_payload must be"},
		{"max_payload", " 300", "plugin_opt_max_payload must be"},
		{"max_payload", "99999999999999999999999", "plugin_opt_max_payload must be"},
		{"reload_ms", "0", "plugin_opt_reload_ms must be"},
		{"reload_ms", "1.5", "plugin_opt_reload_ms must be"},
		{"register_timeout", "0", "plugin_opt_register_timeout must be"},
		{"log_rate", "", "plugin_opt_log_rate must be"},
		{"watch", "yes", "plugin_opt_watch must be on or off"},
		{"watch", "", "plugin_opt_watch must be on or off"},
		{"dbpath", "", "plugin_opt_dbpath is empty"},
		{"front_addresses", "", "plugin_opt_front_addresses is empty"},
		{"front_addresses", " , ", "plugin_opt_front_addresses is empty"},
		{"front_addresses", "10.0.0.256", "\"10.0.0.256\" is not an IPv4 or IPv6 address"},
		{"front_addresses", "10.0.0.1 haproxy", "\"haproxy\" is not an IPv4 or IPv6"},
		{"front_addresses", "10.0.0.0/33", "\"10.0.0.0/33\" is not"},
		{"front_addresses", "fd00::/129", "\"fd00::/129\" is not"},
		{"front_addresses", "10.0.0.0/", "is not"},
		{"front_addresses", "/8", "is not"},
		{"front_addresses", "10.0.0.0/08", "is not"},
		{"front_addresses", "10.0.0.0/+8", "is not"},
		{"front_addresses", "10.0.0.0/8/8", "is not"},
		{"front_addresses", "10.0.0.1/8", "\"10.0.0.1/8\" has bits set past its prefix"},
		{"front_addresses", "fd00::1/64", "has bits set past its prefix"},
		{"front_addresses", "10.0.0.1;10.0.0.2", "is not"},
	};
	struct mqchat_config cfg;
	struct mosquitto_opt opts[2] = {OPT("dbpath", "a.db"), OPT("x", "y")};
	char err[256];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		opts[1].key = (char *)(uintptr_t)bad[i].key;
		opts[1].value = (char *)(uintptr_t)bad[i].value;
		assert_int_equal(parse(opts, 2, &cfg, err), MQC_ERR_INVAL);
		if(strstr(err, bad[i].msg) == NULL){
			print_error("%s=%s: \"%s\" lacks \"%s\"\n", bad[i].key, bad[i].value, err, bad[i].msg);
			fail();
		}
		plugin_config__cleanup(&cfg);
	}
}

static void test_front_addresses(void **state)
{
	struct mqchat_config cfg;
	struct mosquitto_opt opts[] = {
		OPT("dbpath", "a.db"), OPT("front_addresses", "10.0.0.5, 192.168.8.0/22\tfd00:1::/64"),
		OPT("front_addresses", "203.0.113.7/32,::ffff:198.51.100.1"),
	};
	struct mosquitto_opt many[FRONT_MAX + 2];
	char err[256], addrs[FRONT_MAX + 1][32];
	int i;

	(void)state;
	assert_int_equal(parse(opts, 1, &cfg, err), MQC_OK);
	assert_false(front__match(&cfg, "10.0.0.5"));   /* none by default */
	plugin_config__cleanup(&cfg);
	/* Lines add up; spaces, tabs and commas separate. */
	assert_int_equal(parse(opts, 3, &cfg, err), MQC_OK);
	assert_int_equal(cfg.front_count, 5);
	assert_true(front__match(&cfg, "10.0.0.5"));
	assert_true(front__match(&cfg, "::ffff:10.0.0.5"));  /* a dual-stack listener's form */
	assert_false(front__match(&cfg, "10.0.0.6"));
	assert_false(front__match(&cfg, "10.0.0.50"));
	assert_true(front__match(&cfg, "192.168.8.0"));
	assert_true(front__match(&cfg, "192.168.11.255"));
	assert_false(front__match(&cfg, "192.168.12.0"));
	assert_false(front__match(&cfg, "192.168.7.255"));
	assert_true(front__match(&cfg, "fd00:1::abcd"));
	assert_true(front__match(&cfg, "fd00:1:0:0:ffff::1"));
	assert_false(front__match(&cfg, "fd00:1:0:1::1"));
	assert_true(front__match(&cfg, "203.0.113.7"));
	assert_true(front__match(&cfg, "198.51.100.1"));
	assert_false(front__match(&cfg, "::1"));
	assert_false(front__match(&cfg, "?"));
	assert_false(front__match(&cfg, "fe80::1%eth0"));
	assert_false(front__match(&cfg, NULL));
	plugin_config__cleanup(&cfg);
	/* Everything: 0.0.0.0/0 and ::/0. */
	opts[1].value = "0.0.0.0/0";
	assert_int_equal(parse(opts, 2, &cfg, err), MQC_OK);
	assert_true(front__match(&cfg, "1.2.3.4"));
	assert_false(front__match(&cfg, "2001:db8::1"));
	plugin_config__cleanup(&cfg);
	opts[1].value = "::/0";
	assert_int_equal(parse(opts, 2, &cfg, err), MQC_OK);
	assert_true(front__match(&cfg, "2001:db8::1"));
	assert_true(front__match(&cfg, "1.2.3.4"));
	plugin_config__cleanup(&cfg);
	/* At most FRONT_MAX. */
	many[0] = (struct mosquitto_opt)OPT("dbpath", "a.db");
	for(i=0; i<=FRONT_MAX; i++){
		snprintf(addrs[i], sizeof(addrs[i]), "10.9.%d.%d", i / 256, i % 256);
		many[i + 1] = (struct mosquitto_opt)OPT("front_addresses", addrs[i]);
	}
	assert_int_equal(parse(many, FRONT_MAX + 1, &cfg, err), MQC_OK);
	plugin_config__cleanup(&cfg);
	assert_int_equal(parse(many, FRONT_MAX + 2, &cfg, err), MQC_ERR_INVAL);
	assert_non_null(strstr(err, "plugin_opt_front_addresses: more than 64 addresses"));
	plugin_config__cleanup(&cfg);
}

static void test_db_required_unknown_ignored(void **state)
{
	struct mqchat_config cfg;
	struct mosquitto_opt opts[] = {OPT("registration", "open"), OPT("colour", "blue")};
	char err[256];

	(void)state;
	stub_reset();
	assert_int_equal(parse(opts, 2, &cfg, err), MQC_ERR_INVAL);
	assert_non_null(strstr(err, "plugin_opt_dbpath (the user store, auth.db) is required"));
	assert_int_equal(stub_log_contains("mqchat: unknown option plugin_opt_colour ignored"), 1);
	plugin_config__cleanup(&cfg);
	assert_int_equal(parse(NULL, 0, &cfg, err), MQC_ERR_INVAL);
	plugin_config__cleanup(&cfg);
}

/* ---- the whole plugin ---- */

static void make_store(const char *path, bool good)
{
	sqlite3 *db;
	char pwh[PWHASH_STR_LEN], sql[512];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if(good){
		struct userdb *udb;
		char err[256];

		sqlite3_close(db);
		assert_int_equal(userdb__open(path, USERDB_CREATE, &udb, err, sizeof(err)), MQC_OK);
		assert_int_equal(pwhash__make("pw", 2, PWHASH_MIN_ITERATIONS, pwh, sizeof(pwh)), MQC_OK);
		assert_int_equal(userdb__user_add(udb, "alice", USER_KIND_USER, "Alice", pwh), MQC_OK);
		userdb__close(udb);
		return;
	}
	snprintf(sql, sizeof(sql), "CREATE TABLE t(x);");
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_init_refuses_bad_store(void **state)
{
	char dir[] = "/tmp/mqchat-unit-XXXXXX", path[256];
	struct mosquitto_opt opts[] = {OPT("dbpath", path)};
	void *ud = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	stub_reset();
	/* Missing. */
	snprintf(path, sizeof(path), "%s/missing.db", dir);
	assert_int_not_equal(mosquitto_plugin_init(NULL, &ud, opts, 1), MOSQ_ERR_SUCCESS);
	assert_null(ud);
	assert_int_equal(stub_log_contains("mqchat: cannot open user store "), 1);
	assert_int_equal(stub.registered, 0);
	/* Not ours. */
	snprintf(path, sizeof(path), "%s/foreign.db", dir);
	make_store(path, false);
	assert_int_not_equal(mosquitto_plugin_init(NULL, &ud, opts, 1), MOSQ_ERR_SUCCESS);
	assert_int_equal(stub_log_contains("mqchat: cannot open user store "), 2);
	assert_non_null(strstr(stub.last_log, "foreign.db"));
	unlink(path);
	/* Bad option. */
	opts[0].key = (char *)(uintptr_t)"registration";
	opts[0].value = (char *)(uintptr_t)"maybe";
	assert_int_not_equal(mosquitto_plugin_init(NULL, &ud, opts, 1), MOSQ_ERR_SUCCESS);
	assert_int_equal(stub_log_contains("plugin_opt_registration must be off, invite or open"), 1);
	rmdir(dir);
}

static void test_init_and_cleanup(void **state)
{
	char dir[] = "/tmp/mqchat-unit-XXXXXX", path[256], cmd[300];
	struct mosquitto_opt opts[] = {OPT("dbpath", path), OPT("registration", "open")};
	void *ud = NULL;
	struct mqchat *m;
	int unused = 0;

	(void)state;
	assert_int_equal(mosquitto_plugin_version(1, &unused), -1);
	unused = 5;
	assert_int_equal(mosquitto_plugin_version(1, &unused), 5);

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/auth.db", dir);
	make_store(path, true);
	stub_reset();
	assert_int_equal(mosquitto_plugin_init((mosquitto_plugin_id_t *)(uintptr_t)1, &ud, opts, 2),
			MOSQ_ERR_SUCCESS);
	m = ud;
	assert_non_null(m);
	assert_int_equal(stub.registered, 9);
	assert_int_equal(m->snap->user_count, 1);
	assert_int_equal(stub_log_contains("mqchat: loaded 1 users, 0 rooms"), 1);
	assert_int_equal(mosquitto_plugin_cleanup(ud, opts, 2), MOSQ_ERR_SUCCESS);
	assert_int_equal(stub.unregistered, 9);

	/* A failing registration unwinds everything. */
	stub_reset();
	stub.register_fail_at = 3;
	ud = NULL;
	assert_int_not_equal(mosquitto_plugin_init((mosquitto_plugin_id_t *)(uintptr_t)1, &ud, opts, 2),
			MOSQ_ERR_SUCCESS);
	assert_null(ud);
	assert_int_equal(stub.unregistered, 9);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_front_addresses),
		cmocka_unit_test(test_db_required_unknown_ignored),
		cmocka_unit_test(test_init_refuses_bad_store),
		cmocka_unit_test(test_init_and_cleanup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
