/* test_archiver_seen.c - archiver/seen.c, the plugin's device login reports
 * (chat/seen/<node>): the report the plugin writes is taken; every kind of
 * malformed report is refused whole, never half applied, and never
 * crashes (random bytes and mutations of a good report too); a good one
 * moves last_seen forward only, in one transaction; seen__handle warns
 * about bad reports at most once a minute.
 *
 * Only the plugin can publish on chat/seen/+ (the ACL refuses it to
 * people and services), so the integration tests cannot send a bad report
 * through the broker: the parser is tested here, on its own. What touches
 * the store runs on SQLite and on PostgreSQL (tests/unit/pg_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"
#include "err.h"
#include "log.h"
#include "mqtt.h"
#include "pg_fixture.h"
#include "pwhash.h"
#include "userdb.h"

#define NOW 1764892800000LL
#define HEX_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static int parse(const char *text, struct seen_entry **v, size_t *n)
{
	char why[256] = "";
	int rc = seen__parse(text, strlen(text), NOW, v, n, why, sizeof(why));

	if(rc != MQC_OK){
		assert_null(*v);
		assert_int_equal(*n, 0);
		assert_true(why[0] != '\0');
	}
	return rc;
}

static void test_the_plugins_report(void **state)
{
	struct seen_entry *v = NULL;
	size_t n = 0;

	(void)state;
	/* As plugin/devices.c writes it (json_pack "{s:s%, s:s, s:I}"). */
	assert_int_equal(parse("{\"seen\":[{\"user\":\"alice\",\"device\":\"phone\",\"ts\":1764892800000},"
			"{\"user\":\"bob\",\"device\":\"Laptop_2.x-y\",\"ts\":1}]}", &v, &n), MQC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].user, "alice");
	assert_string_equal(v[0].device, "phone");
	assert_int_equal(v[0].ts, NOW);
	assert_string_equal(v[1].user, "bob");
	assert_string_equal(v[1].device, "Laptop_2.x-y");
	assert_int_equal(v[1].ts, 1);
	free(v);
	/* Members it does not know are a later plugin's: ignored. */
	assert_int_equal(parse("{\"node\":\"b\",\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":5,"
			"\"by\":\"token\"}]}", &v, &n), MQC_OK);
	assert_int_equal(n, 1);
	free(v);
}

static void test_malformed_reports_are_refused_whole(void **state)
{
	static const char *bad[] = {
		"", "nul", "{", "[]", "{}", "\"seen\"", "{\"seen\":null}", "{\"seen\":{}}",
		"{\"seen\":[]}", "{\"seen\":[1]}", "{\"seen\":[[]]}", "{\"seen\":[{}]}",
		/* the user */
		"{\"seen\":[{\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"Alice\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a/b\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"+\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"al\\u0000ice\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":7,\"device\":\"d\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":null,\"device\":\"d\",\"ts\":1}]}",
		/* the device */
		"{\"seen\":[{\"user\":\"a\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"ph/one\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"ph one\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"ph@one\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"ph\\u0000\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"t\\u00e9l\",\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
			"\"ts\":1}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":[],\"ts\":1}]}",
		/* the time */
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\"}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":0}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":-5}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":1.5}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":\"1\"}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":true}]}",
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":1764893400001}]}",   /* NOW + 10 min + 1 */
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":99999999999999999999}]}",
		/* duplicate keys: which one would count? */
		"{\"seen\":[{\"user\":\"a\",\"user\":\"b\",\"device\":\"d\",\"ts\":1}]}",
		/* one bad entry spoils the report: nothing is half applied */
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":1},{\"user\":\"B\",\"device\":\"d\",\"ts\":1}]}",
		/* trailing bytes */
		"{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":1}]} x",
	};
	struct seen_entry *v = (void *)&v;
	size_t i, n = 99;

	(void)state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		int rc = parse(bad[i], &v, &n);

		if(rc != MQC_ERR_INVAL) fail_msg("taken: %s", bad[i]);
	}
	/* The latest time that is taken: 10 minutes ahead. */
	assert_int_equal(parse("{\"seen\":[{\"user\":\"a\",\"device\":\"d\",\"ts\":1764893400000}]}", &v, &n),
			MQC_OK);
	free(v);
}

/* {"seen":[ count entries ]} in a new buffer. */
static char *report_of(size_t count)
{
	static const char entry[] = "{\"user\":\"a\",\"device\":\"d\",\"ts\":1},";
	size_t len = sizeof("{\"seen\":[]}") + count * (sizeof(entry) - 1);
	char *s = malloc(len), *p = s;
	size_t i;

	assert_non_null(s);
	p += sprintf(p, "{\"seen\":[");
	for(i = 0; i < count; i++) p += sprintf(p, "%s", entry);
	if(count > 0) p--;
	sprintf(p, "]}");
	return s;
}

static void test_entry_bound(void **state)
{
	struct seen_entry *v = NULL;
	char *s;
	size_t n = 0;

	(void)state;
	s = report_of(SEEN_MAX_ENTRIES);
	assert_int_equal(parse(s, &v, &n), MQC_OK);
	assert_int_equal(n, SEEN_MAX_ENTRIES);
	free(v);
	free(s);
	s = report_of(SEEN_MAX_ENTRIES + 1);
	assert_int_equal(parse(s, &v, &n), MQC_ERR_INVAL);
	free(s);
}

/* Random bytes, and a good report with bytes changed, cut or repeated:
 * any answer, never a crash (the SAN build checks the reads), and a taken
 * report has only valid entries. */
static void test_random_input_never_crashes(void **state)
{
	static const char good[] = "{\"seen\":[{\"user\":\"alice\",\"device\":\"phone\",\"ts\":17},"
		"{\"user\":\"bob\",\"device\":\"pc\",\"ts\":18}]}";
	unsigned char buf[256];
	char why[256];
	struct seen_entry *v;
	size_t n, i, k, len;
	unsigned seed = 12345;

	(void)state;
	for(i = 0; i < 20000; i++){
		seed = seed * 1103515245u + 12345u;
		if(i % 2 == 0){
			len = sizeof(good) - 1;
			memcpy(buf, good, len);
			for(k = 0; k < 1 + (seed >> 28); k++){
				seed = seed * 1103515245u + 12345u;
				buf[(seed >> 8) % len] = (unsigned char)(seed >> 20);
			}
			if(seed & 1) len = (seed >> 4) % len;
		}else{
			len = (seed >> 8) % sizeof(buf);
			for(k = 0; k < len; k++){
				seed = seed * 1103515245u + 12345u;
				buf[k] = (unsigned char)(seed >> 16);
			}
		}
		if(seen__parse(buf, len, NOW, &v, &n, why, sizeof(why)) == MQC_OK){
			for(k = 0; k < n; k++){
				assert_true(names__valid(v[k].user, strlen(v[k].user)));
				assert_true(names__valid_device(v[k].device, strlen(v[k].device)));
				assert_true(v[k].ts > 0 && v[k].ts <= NOW + SEEN_MAX_AHEAD_MS);
			}
			free(v);
		}
	}
}

struct fx {
	char dir[64];
	char path[128];
	struct userdb *udb;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char hash[PWHASH_STR_LEN];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqchat-unit-seen-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/auth.db", f->dir);
	if(be.pg) pg_fresh(f->dir);
	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, NULL, 0), MQC_OK);
	assert_int_equal(pwhash__make("password-xxxx", 13, 1000, hash, sizeof(hash)), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "alice", USER_KIND_USER, "alice", hash), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "alice", "phone", HEX_A, 1000), MQC_OK);
	assert_int_equal(userdb__device_set(f->udb, "alice", "laptop", HEX_A, 1000), MQC_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	userdb__close(f->udb);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct seen_of {
	const char *device;
	int64_t last_seen;
};

static int last_seen_cb(const struct userdb_device *d, void *arg)
{
	struct seen_of *s = arg;

	if(strcmp(d->device, s->device) == 0) s->last_seen = d->last_seen;
	return MQC_OK;
}

static int64_t last_seen(struct fx *f, const char *device)
{
	struct seen_of s = {device, -1};

	assert_int_equal(userdb__device_each(f->udb, "alice", last_seen_cb, &s), MQC_OK);
	return s.last_seen;
}

static void test_apply_moves_forward_only(void **state)
{
	struct fx *f = *state;
	struct seen_entry v[4] = {
		{"alice", "phone", 5000},
		{"alice", "tablet", 6000},      /* no token: nothing */
		{"ghost", "phone", 7000},       /* no such user: nothing */
		{"alice", "laptop", 500},       /* older than what is stored */
	};
	int64_t before;

	/* The laptop was seen at 1000 already. */
	assert_int_equal(userdb__device_seen(f->udb, "alice", "laptop", 1000), MQC_OK);
	before = userdb__committed_ns(f->udb);
	assert_int_equal(seen__apply(f->udb, v, 4), MQC_OK);
	assert_true(userdb__committed_ns(f->udb) != before);
	assert_int_equal(last_seen(f, "phone"), 5000);
	assert_int_equal(last_seen(f, "laptop"), 1000);
	assert_int_equal(last_seen(f, "tablet"), -1);
	v[0].ts = 4000;
	assert_int_equal(seen__apply(f->udb, v, 1), MQC_OK);
	assert_int_equal(last_seen(f, "phone"), 5000);
}

static void test_handle_warns_once_a_minute(void **state)
{
	struct fx *f = *state;
	struct responder rs;
	struct mqtt_msg msg;
	static const char good[] = "{\"seen\":[{\"user\":\"alice\",\"device\":\"phone\",\"ts\":9000}]}";

	memset(&rs, 0, sizeof(rs));
	memset(&msg, 0, sizeof(msg));
	rs.udb = f->udb;
	msg.topic = "chat/seen/broker";
	msg.payload = (const unsigned char *)"not json";
	msg.len = 8;
	seen__handle(&rs, &msg);
	assert_true(rs.seen_warned != 0);
	assert_int_equal(rs.seen_quiet, 0);
	seen__handle(&rs, &msg);
	seen__handle(&rs, &msg);
	assert_int_equal(rs.seen_quiet, 2);
	/* A good one after bad ones is stored. */
	msg.payload = (const unsigned char *)good;
	msg.len = sizeof(good) - 1;
	seen__handle(&rs, &msg);
	assert_int_equal(last_seen(f, "phone"), 9000);
}

/* The tests on a store again, on PostgreSQL (tests/unit/pg_fixture.h). */
static int run_pg_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_moves_forward_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handle_warns_once_a_minute, setup, teardown),
	};

	return cmocka_run_group_tests_name("seen on postgresql", tests, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_plugins_report),
		cmocka_unit_test(test_malformed_reports_are_refused_whole),
		cmocka_unit_test(test_entry_bound),
		cmocka_unit_test(test_random_input_never_crashes),
		cmocka_unit_test_setup_teardown(test_apply_moves_forward_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handle_warns_once_a_minute, setup, teardown),
	};

	int failed;

	log_init("test_archiver_seen", LOG_LVL_ERROR);
	failed = cmocka_run_group_tests(tests, NULL, NULL) != 0;
	return pg_run("seen", run_pg_tests) || failed;
}
