/* test_metrics.c - archiver/metrics.c: the Prometheus text it renders
 * (every family typed once, histogram buckets cumulative up to +Inf equal
 * to _count), label escaping, counts from many threads at once summing
 * right, the $SYS name and value rules, the plugin payload's check and
 * its staleness. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "metrics.h"

/* The rendered text (the caller frees it). */
static char *render(int64_t now)
{
	struct metrics_buf b = {0};

	metrics__render(&b, "/nonexistent-datadir", now);
	assert_false(b.failed);
	assert_non_null(b.p);
	return b.p;
}

/* The line of text that starts with prefix, or NULL. */
static const char *line_of(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while(p && *p){
		if(strncmp(p, prefix, n) == 0) return p;
		p = strchr(p, '\n');
		if(p) p++;
	}
	return NULL;
}

/* The value of the sample line that starts with "prefix " (-1: none). */
static double sample(const char *text, const char *prefix)
{
	char key[256];
	const char *l;

	snprintf(key, sizeof(key), "%s ", prefix);
	l = line_of(text, key);
	return l ? strtod(l + strlen(key), NULL) : -1;
}

static int setup(void **state)
{
	(void)state;
	metrics__reset();
	return 0;
}

static void test_counters_and_gauges_render(void **state)
{
	char *t;

	(void)state;
	metrics__add(MC_MESSAGES_STORED, 41);
	metrics__add(MC_MESSAGES_STORED, 1);
	metrics__set(MG_PENDING, 7);
	metrics__set(MG_COMMIT_LAG_MS, 250);
	metrics__store_write(MS_PUSH, MQC_ERR_IO);
	t = render(1000);
	assert_non_null(line_of(t, "# HELP mqchat_archiver_messages_stored_total "));
	assert_non_null(line_of(t, "# TYPE mqchat_archiver_messages_stored_total counter\n"));
	assert_true(sample(t, "mqchat_archiver_messages_stored_total") == 42);
	assert_non_null(line_of(t, "# TYPE mqchat_archiver_pending_messages gauge\n"));
	assert_true(sample(t, "mqchat_archiver_pending_messages") == 7);
	assert_true(sample(t, "mqchat_archiver_commit_lag_seconds") == 0.25);
	assert_true(sample(t, "mqchat_archiver_store_write_ok{file=\"push.db\"}") == 0);
	assert_true(sample(t, "mqchat_archiver_store_write_ok{file=\"auth.db\"}") == 1);
	assert_true(sample(t, "mqchat_archiver_broker_up") == 0);
	/* never seen: left out, and said so */
	assert_true(sample(t, "mqchat_plugin_up") == 0);
	/* every line ends; no sample before its family's TYPE */
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

static void test_histogram_cumulative_with_inf(void **state)
{
	static const char *le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
		"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};
	/* ns: in the first bucket, on a bound (le is inclusive), in the
	 * third, and past the last bound */
	static const int64_t obs[] = {300000, 1000000, 2000000, 20000000000LL};
	static const double want[] = {1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4};
	char *t, key[128];
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) metrics__rpc("history", NULL, obs[i]);
	metrics__rpc("sync", "bad_request", 5000);
	t = render(1000);
	assert_non_null(line_of(t, "# TYPE mqchat_archiver_rpc_seconds histogram\n"));
	for(i = 0; i < sizeof(le) / sizeof(le[0]); i++){
		snprintf(key, sizeof(key), "mqchat_archiver_rpc_seconds_bucket{op=\"history\",le=\"%s\"}", le[i]);
		assert_true(sample(t, key) == want[i]);
	}
	assert_true(sample(t, "mqchat_archiver_rpc_seconds_count{op=\"history\"}") == 4);
	assert_true(sample(t, "mqchat_archiver_rpc_seconds_sum{op=\"history\"}") == 20.0033);
	assert_true(sample(t, "mqchat_archiver_rpc_seconds_count{op=\"sync\"}") == 1);
	assert_true(sample(t, "mqchat_archiver_rpc_errors_total{op=\"sync\",code=\"bad_request\"}") == 1);
	/* an ok answer is no error */
	assert_null(line_of(t, "mqchat_archiver_rpc_errors_total{op=\"history\""));
	free(t);
}

static void test_label_escaping(void **state)
{
	char out[64], *t;

	(void)state;
	metrics__escape("a\"b\\c\nd", out, sizeof(out));
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	/* cut to fit, never in the middle of an escape */
	metrics__escape("\"\"\"", out, 5);
	assert_string_equal(out, "\\\"\\\"");
	metrics__count(MF_REGISTRATIONS, "we\"ird\\", NULL);
	t = render(1000);
	assert_true(sample(t, "mqchat_archiver_registrations_total{result=\"we\\\"ird\\\\\"}") == 1);
	free(t);
}

static void test_full_label_table_counts_as_other(void **state)
{
	char v[16], *t;
	int i;

	(void)state;
	for(i = 0; i < METRICS_SLOTS + 10; i++){
		snprintf(v, sizeof(v), "r%d", i);
		metrics__count(MF_REGISTRATIONS, v, NULL);
	}
	t = render(1000);
	assert_true(sample(t, "mqchat_archiver_registrations_total{result=\"r0\"}") == 1);
	assert_true(sample(t, "mqchat_archiver_registrations_total{result=\"other\"}") == 11);
	free(t);
}

#define THREADS 8
#define PER_THREAD 200000

static void *counting(void *arg)
{
	static const char *const providers[] = {"webpush", "fcm", "apns", "webhook"};
	intptr_t id = (intptr_t)arg;
	int i;

	for(i = 0; i < PER_THREAD; i++){
		metrics__add(MC_MESSAGES_STORED, 1);
		metrics__count(MF_PUSH_SENT, providers[(i + id) % 4], NULL);
		if(i % 1000 == 0) metrics__rpc("get", NULL, 1000);
	}
	return NULL;
}

static void test_threads_sum_right(void **state)
{
	pthread_t th[THREADS];
	double sum = 0;
	char *t;
	intptr_t i;

	(void)state;
	for(i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, counting, (void *)i), 0);
	for(i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
	t = render(1000);
	assert_true(sample(t, "mqchat_archiver_messages_stored_total") == (double)THREADS * PER_THREAD);
	sum += sample(t, "mqchat_archiver_push_sent_total{provider=\"webpush\"}");
	sum += sample(t, "mqchat_archiver_push_sent_total{provider=\"fcm\"}");
	sum += sample(t, "mqchat_archiver_push_sent_total{provider=\"apns\"}");
	sum += sample(t, "mqchat_archiver_push_sent_total{provider=\"webhook\"}");
	assert_true(sum == (double)THREADS * PER_THREAD);
	/* each provider once: the threads raced for the first slot of each */
	assert_true(sample(t, "mqchat_archiver_push_sent_total{provider=\"fcm\"}") == (double)THREADS * PER_THREAD / 4);
	assert_true(sample(t, "mqchat_archiver_rpc_seconds_count{op=\"get\"}") == THREADS * (PER_THREAD / 1000));
	free(t);
}

static void expect_name(const char *path, const char *name, bool counter)
{
	char out[96];
	bool c;

	assert_true(metrics__broker_name(path, out, sizeof(out), &c));
	assert_string_equal(out, name);
	assert_int_equal(c, counter);
}

static void test_broker_names_and_values(void **state)
{
	char out[96];
	double v;
	bool c;

	(void)state;
	expect_name("clients/connected", "mosquitto_clients_connected", false);
	expect_name("messages/received", "mosquitto_messages_received_total", true);
	expect_name("publish/bytes/sent", "mosquitto_publish_bytes_sent_total", true);
	expect_name("messages/stored", "mosquitto_messages_stored", false);
	expect_name("retained messages/count", "mosquitto_retained_messages_count", false);
	expect_name("load/messages/received/1min", "mosquitto_load_messages_received_1min", false);
	expect_name("some-thing/x", "mosquitto_some_thing_x", false);
	expect_name("uptime", "mosquitto_uptime_seconds", true);
	assert_false(metrics__broker_name("a.b", out, sizeof(out), &c));
	assert_false(metrics__broker_name("a\"b", out, sizeof(out), &c));
	assert_false(metrics__broker_name("", out, sizeof(out), &c));
	assert_false(metrics__broker_name("messages/received", out, 20, &c));

	assert_true(metrics__broker_value("12", 2, &v) && v == 12);
	assert_true(metrics__broker_value("0.50", 4, &v) && v == 0.5);
	assert_true(metrics__broker_value("36 seconds", 10, &v) && v == 36);
	assert_false(metrics__broker_value("mosquitto version 2.0.11", 24, &v));
	assert_false(metrics__broker_value("inf", 3, &v));
	assert_false(metrics__broker_value("nan", 3, &v));
	assert_false(metrics__broker_value("0x10", 4, &v));
	assert_false(metrics__broker_value("12 apples", 9, &v));
	assert_false(metrics__broker_value("", 0, &v));
}

static void test_sys_messages_render(void **state)
{
	char *t;

	(void)state;
	metrics__sys_message("$SYS/broker/clients/connected", "3", 1, 1000);
	metrics__sys_message("$SYS/broker/uptime", "99 seconds", 10, 1000);
	metrics__sys_message("$SYS/broker/version", "mosquitto version 2.0.11", 24, 1000);
	metrics__sys_message("$SYS/broker/clients/connected", "4", 1, 1001);
	metrics__sys_message("$SYS/other/x", "5", 1, 1000);
	t = render(1002);
	assert_non_null(line_of(t, "# TYPE mosquitto_clients_connected gauge\nmosquitto_clients_connected 4\n"));
	assert_non_null(line_of(t, "# TYPE mosquitto_uptime_seconds counter\nmosquitto_uptime_seconds 99\n"));
	assert_null(strstr(t, "version"));
	assert_null(strstr(t, "mosquitto_x"));
	free(t);
	metrics__broker_forget();
	t = render(1003);
	assert_null(strstr(t, "mosquitto_"));
	free(t);
}

static const char good[] =
	"# HELP mqchat_plugin_users Accounts.\n"
	"# TYPE mqchat_plugin_users gauge\n"
	"mqchat_plugin_users 3\n"
	"# a comment\n"
	"mqchat_plugin_logins_total{result=\"refused\",reason=\"bad_password\"} 2\n";

static void test_plugin_payload_check(void **state)
{
	(void)state;
	assert_true(metrics__plugin_valid(good, strlen(good)));
	assert_false(metrics__plugin_valid(good, strlen(good) - 1));          /* no final newline */
	assert_false(metrics__plugin_valid("", 0));
	assert_false(metrics__plugin_valid("mqchat_plugin_x 1\n\n", 19));      /* an empty line */
	assert_false(metrics__plugin_valid("other_metric 1\n", 15));
	assert_false(metrics__plugin_valid("# TYPE other_metric gauge\n", 26));
	assert_false(metrics__plugin_valid("# HELP mqchat_archiver_x y\n", 27));
	assert_false(metrics__plugin_valid("mqchat_plugin_x 1\r\n", 19));
	assert_false(metrics__plugin_valid("mqchat_plugin_x \xc3\xa9\n", 19));
	assert_false(metrics__plugin_valid("mqchat_plugin_up 1\n", 19));
	assert_false(metrics__plugin_valid("# TYPE mqchat_plugin_up gauge\n", 30));
	assert_true(metrics__plugin_valid("mqchat_plugin_uptime 1\n", 23));
}

static void test_plugin_payload_fresh_then_stale(void **state)
{
	char *t;

	(void)state;
	metrics__sys_message("$SYS/mqchat/plugin", good, strlen(good), 10000);
	t = render(10000 + 15000);          /* three of the default 5 s */
	assert_non_null(strstr(t, good));
	assert_true(sample(t, "mqchat_plugin_up") == 1);
	free(t);
	t = render(10000 + 15001);
	assert_null(strstr(t, "mqchat_plugin_users"));
	assert_true(sample(t, "mqchat_plugin_up") == 0);
	free(t);
	/* two payloads a second apart: stale after three seconds */
	metrics__sys_message("$SYS/mqchat/plugin", good, strlen(good), 30000);
	metrics__sys_message("$SYS/mqchat/plugin", good, strlen(good), 31000);
	t = render(34000);
	assert_true(sample(t, "mqchat_plugin_up") == 1);
	free(t);
	t = render(34001);
	assert_true(sample(t, "mqchat_plugin_up") == 0);
	free(t);
	/* a bad payload is not taken: the last good one stays (and ages) */
	metrics__sys_message("$SYS/mqchat/plugin", "evil 1\n", 7, 34002);
	t = render(34003);
	assert_true(sample(t, "mqchat_plugin_up") == 0);
	assert_null(strstr(t, "evil"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_counters_and_gauges_render, setup),
		cmocka_unit_test_setup(test_histogram_cumulative_with_inf, setup),
		cmocka_unit_test_setup(test_label_escaping, setup),
		cmocka_unit_test_setup(test_full_label_table_counts_as_other, setup),
		cmocka_unit_test_setup(test_threads_sum_right, setup),
		cmocka_unit_test_setup(test_broker_names_and_values, setup),
		cmocka_unit_test_setup(test_sys_messages_render, setup),
		cmocka_unit_test_setup(test_plugin_payload_check, setup),
		cmocka_unit_test_setup(test_plugin_payload_fresh_then_stale, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
