/* test_spool_plugin.c - the plugin's side of the spool (plugin/spool.c)
 * against the broker stubs and a real DATA/spool: the option, which topics
 * are spooled, what a record holds, and the refusal when there is no room. */
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
#include "spool.h"
#include "timeutil.h"

#define OPT(k, v) {(char *)(uintptr_t)(k), (char *)(uintptr_t)(v)}

static void test_option(void **state)
{
	static const char *const bad[] = {"-1", "4097", "1.5", "", "1M", " 8"};
	struct mosquitto_opt opts[] = {OPT("dbpath", "/x/auth.db"), OPT("spool_mb", "16")};
	struct mqchat_config cfg;
	char err[256];
	size_t i;

	(void)state;
	assert_int_equal(plugin_config__parse(&cfg, opts, 1, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.spool_mb, 0);
	plugin_config__cleanup(&cfg);
	assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.spool_mb, 16);
	plugin_config__cleanup(&cfg);
	opts[1].value = "4096";
	assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.spool_mb, 4096);
	plugin_config__cleanup(&cfg);
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		opts[1].value = (char *)(uintptr_t)bad[i];
		err[0] = '\0';
		assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_ERR_INVAL);
		assert_non_null(strstr(err, "plugin_opt_spool_mb must be an integer in 0..4096"));
		plugin_config__cleanup(&cfg);
	}
}

/* The archiver's five filters, as MQTT matches them. */
static void test_takes(void **state)
{
	static const struct {
		const char *topic;
		bool takes;
	} cases[] = {
		{"chat/inbox/bob/alice", true}, {"chat/inbox", true}, {"chat/inbox/", true},
		{"chat/inbox/a/b/c", true}, {"chat/room/r/alice", true}, {"chat/room", true},
		{"chat/rpc/alice/req", true}, {"chat/rpc//req", true},
		{"chat/register/x@y/req", true}, {"chat/seen/1", true}, {"chat/seen/", true},
		{"chat/inboxes/a/b", false}, {"chat/roomtyping/r/a", false}, {"chat/rooms", false},
		{"chat/rpc/alice/resp", false}, {"chat/rpc/alice/req/x", false}, {"chat/rpc/a/b/req", false},
		{"chat/rpc/alice", false}, {"chat/register/x/resp", false}, {"chat/seen/1/2", false},
		{"chat/seen", false}, {"chat/typing/bob/alice", false}, {"chat/presence/alice", false},
		{"chat/notice/alice", false}, {"$SYS/broker/uptime", false}, {"chat", false},
		{"", false}, {"xchat/inbox/a/b", false}, {"/chat/inbox/a/b", false},
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(cases)/sizeof(cases[0]); i++){
		if(plugin_spool__takes(cases[i].topic) != cases[i].takes){
			fail_msg("%s: expected %d", cases[i].topic, cases[i].takes);
		}
	}
}

struct fixture {
	char dir[64], db[128], spool[128];
	struct mqchat *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mqchat *m;

	if(f == NULL) return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqchat-spool-XXXXXX");
	if(mkdtemp(f->dir) == NULL) return -1;
	snprintf(f->db, sizeof(f->db), "%s/auth.db", f->dir);
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->dir);
	m = calloc(1, sizeof(*m));
	if(m == NULL) return -1;
	plugin_config__defaults(&m->cfg);
	m->cfg.db = strdup(f->db);
	m->cfg.spool_mb = 1;
	m->clock_ms = time__mono_ms;
	throttle__init_bucket(&m->notice_limit, 1000, 1000, 1000);
	m->snap = snapshot__new();
	if(m->snap == NULL || snapshot__add_user(m->snap, "alice", USER_KIND_USER, true, "x") == NULL
			|| snapshot__add_user(m->snap, "archiver", USER_KIND_SERVICE, true, "x") == NULL){
		return -1;
	}
	f->m = m;
	stub_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	plugin_spool__cleanup(&f->m->spool);
	throttle__cleanup(&f->m->notice_limit);
	snapshot__free(f->m->snap);
	plugin_config__cleanup(&f->m->cfg);
	free(f->m);
	unlink(f->spool);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int publish(struct mqchat *m, struct mosquitto *c, const char *topic, const char *payload,
		size_t len)
{
	struct mosquitto_evt_message ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.topic = (char *)(uintptr_t)topic;
	ed.payload = (void *)(uintptr_t)payload;
	ed.payloadlen = (uint32_t)len;
	ed.qos = 1;
	return plugin_spool__message_cb(MOSQ_EVT_MESSAGE, &ed, m);
}

static void test_spooled_and_refused(void **state)
{
	struct fixture *f = *state;
	struct mqchat *m = f->m;
	struct mosquitto alice = {"alice@phone", "alice", "127.0.0.1"};
	struct mosquitto svc = {"archiver@0", "archiver", "127.0.0.1"};
	struct spool *r;
	struct spool_rec rec;
	static char big[60000];
	uint64_t pos = 0;
	char err[256];
	int rc, n, i;

	/* Off: nothing made, everything passes. */
	m->cfg.spool_mb = 0;
	assert_int_equal(plugin_spool__init(m, err, sizeof(err)), MQC_OK);
	assert_int_equal(publish(m, &alice, "chat/inbox/bob/alice", "x", 1), MOSQ_ERR_SUCCESS);
	assert_int_equal(access(f->spool, F_OK), -1);

	/* A ring that cannot hold the largest message: refused with the size to set. */
	m->cfg.spool_mb = 1;
	m->cfg.max_payload = 900000;
	assert_int_equal(plugin_spool__init(m, err, sizeof(err)), MQC_ERR_INVAL);
	assert_non_null(strstr(err, "plugin_opt_spool_mb 1 cannot hold a message of plugin_opt_max_payload"
			" 900000 bytes: make it at least 2"));
	m->cfg.max_payload = 65536;

	assert_int_equal(plugin_spool__init(m, err, sizeof(err)), MQC_OK);
	assert_int_equal(stub_log_contains("mqchat: spool "), 1);
	assert_int_equal(publish(m, &alice, "chat/inbox/bob/alice", "{\"id\":\"m1\"}", 11), MOSQ_ERR_SUCCESS);
	assert_int_equal(publish(m, &alice, "chat/typing/bob/alice", "{}", 2), MOSQ_ERR_SUCCESS);
	assert_int_equal(publish(m, &svc, "chat/room/r/archiver", "{\"ev\":1}", 8), MOSQ_ERR_SUCCESS);
	plugin_spool__report(m, "chat/seen/1", "{\"seen\":[]}", 11);
	assert_int_equal(m->spool.appends, 3);

	assert_int_equal(spool__open(f->spool, 0, 0, &r, err, sizeof(err)), MQC_OK);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_string_equal(rec.client_id, "alice@phone");
	assert_string_equal(rec.topic, "chat/inbox/bob/alice");
	assert_memory_equal(rec.payload, "{\"id\":\"m1\"}", 11);
	assert_int_equal(rec.flags, SPOOL_F_STORE);
	pos = rec.end;
	/* Typing is not the archiver's; the service's own publish is. */
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_string_equal(rec.client_id, "archiver@0");
	assert_string_equal(rec.topic, "chat/room/r/archiver");
	pos = rec.end;
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_string_equal(rec.client_id, "");
	assert_string_equal(rec.topic, "chat/seen/1");
	pos = rec.end;
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);

	/* Nobody consumes: it fills, and then refuses with a notice. */
	memset(big, 'x', sizeof(big));
	stub_reset();
	for(n=0; n<100; n++){
		rc = publish(m, &alice, "chat/inbox/bob/alice", big, sizeof(big));
		if(rc != MOSQ_ERR_SUCCESS) break;
	}
	assert_int_equal(rc, MOSQ_ERR_ACL_DENIED);
	assert_true(n >= 15 && n <= 17);
	assert_int_equal(m->spool.refused, 1);
	assert_int_equal(m->acl_denied[ACL_DENY_UNAVAILABLE], 1);
	assert_int_equal(stub_log_contains("the spool is full"), 1);
	assert_int_equal(stub.publish_count, 1);
	assert_string_equal(stub.publishes[0].topic, "chat/notice/alice");
	assert_non_null(strstr(stub.publishes[0].payload, "\"code\":\"unavailable\""));
	assert_non_null(strstr(stub.publishes[0].payload, "\"retry_ms\":1000"));
	assert_non_null(strstr(stub.publishes[0].payload, "the server cannot take messages now"));
	/* A service is refused too, without a notice; a report is lost and counted. */
	assert_int_equal(publish(m, &svc, "chat/room/r/archiver", big, sizeof(big)), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(stub.publish_count, 1);
	plugin_spool__report(m, "chat/seen/1", big, sizeof(big));
	assert_int_equal(m->spool.reports_lost, 1);
	/* Said once, not per refusal. */
	assert_int_equal(stub_log_contains("the spool is full"), 1);
	/* Topics the archiver does not take still pass. */
	assert_int_equal(publish(m, &alice, "chat/typing/bob/alice", big, 10), MOSQ_ERR_SUCCESS);

	/* The reader catches up: accepted again, and said so. */
	for(i=0; i<1000 && spool__read(r, &pos, &rec) == MQC_OK; i++) pos = rec.end;
	spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	assert_int_equal(publish(m, &alice, "chat/inbox/bob/alice", big, sizeof(big)), MOSQ_ERR_SUCCESS);
	assert_int_equal(stub_log_contains("the spool takes messages again (2 refused)"), 1);
	spool__close(r);

	/* A second broker on the same data folder cannot write it. */
	{
		struct plugin_spool first = m->spool;

		memset(&m->spool, 0, sizeof(m->spool));
		assert_int_equal(plugin_spool__init(m, err, sizeof(err)), MQC_ERR_BUSY);
		assert_non_null(strstr(err, "mqchat: cannot open the spool:"));
		assert_non_null(strstr(err, "written by another broker"));
		m->spool = first;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_option),
		cmocka_unit_test(test_takes),
		cmocka_unit_test_setup_teardown(test_spooled_and_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
