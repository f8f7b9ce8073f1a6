/* test_archiver_worker.c - the archiver's request queue and worker thread
 * (archiver/worker.c): accounts take turns, the queue's bounds refuse at
 * once, answers reach the poll loop (later.c for those that changed
 * auth.db), and a stop drops only what waits.
 *
 * worker.o comes from the archiver's library; this file gives link-time
 * stand-ins for what it calls in the daemon's other files, so the linker
 * takes those from here and leaves their objects in the library:
 * rpc__handle records the request's topic and holds the worker until the
 * test opens a gate, so requests pile up in a known order; daemon__send and
 * later__add record the answers. worker_internal.h gives the queue's limits
 * and the lock the test holds. The responder's auth.db is a real one in a
 * temp folder; archive.db is never opened. Every wait is bounded. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <jansson.h>

#include "archive.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "mqtt.h"
#include "timeutil.h"
#include "userdb.h"
#include "userdb_store.h"
#include "worker_internal.h"

#include <cmocka.h>

#define WAIT_MS 5000
#define MAX_SEEN 600

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool gate_open;
	int entered;                 /* requests the stand-in has begun */
	char seen[MAX_SEEN][64];     /* their topics, in the order handled */
	int nseen;
	int sent, later;             /* answers through daemon__send, later__add */
	char last_topic[128], last_text[512];
	int64_t last_commit;
} st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, {{0}}, 0, 0, 0, "", "", 0};

static struct daemon dd;
static char dir[64];

/* ---- stand-ins for the daemon's other files ---- */

void rpc__handle(struct responder *rs, const struct mqtt_msg *msg)
{
	char topic[128];

	pthread_mutex_lock(&st.mu);
	if(st.nseen < MAX_SEEN) snprintf(st.seen[st.nseen++], sizeof(st.seen[0]), "%s", msg->topic);
	st.entered++;
	pthread_cond_broadcast(&st.cond);
	while(!st.gate_open) pthread_cond_wait(&st.cond, &st.mu);
	pthread_mutex_unlock(&st.mu);
	/* "write" requests stand for one that committed to auth.db. */
	if(msg->len == 5 && memcmp(msg->payload, "write", 5) == 0) rs->udb->committed_ns += 1000;
	snprintf(topic, sizeof(topic), "%.*s/resp", (int)(strlen(msg->topic) - 4), msg->topic);
	responder__reply(rs, topic, json_pack("{sb}", "ok", 1), msg);
}

void register__handle(struct responder *rs, const struct mqtt_msg *msg)
{
	rpc__handle(rs, msg);
}

json_t *rpc__fail(json_t *id, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{sOsbssss}", "id", id ? id : json_null(), "ok", 0, "error", code, "message", msg);
}

json_t *rpc__load_request(const void *payload, size_t len, size_t max_len, size_t max_id,
		json_t **id, json_t **answer)
{
	json_t *req = len <= max_len ? json_loadb(payload, len, 0, NULL) : NULL;

	*answer = NULL;
	*id = json_object_get(req, "id");
	if(!json_is_string(*id) || json_string_length(*id) > max_id){
		json_decref(req);
		*id = NULL;
		*answer = rpc__fail(NULL, "bad_request", "no id");
		return NULL;
	}
	return req;
}

void daemon__send(struct conn *c, const char *topic, const char *text, size_t len,
		const unsigned char *corr, size_t corr_len)
{
	(void)c; (void)corr; (void)corr_len;
	pthread_mutex_lock(&st.mu);
	st.sent++;
	snprintf(st.last_topic, sizeof(st.last_topic), "%s", topic);
	snprintf(st.last_text, sizeof(st.last_text), "%.*s", (int)len, text);
	pthread_mutex_unlock(&st.mu);
}

void later__add(struct conn *c, const char *topic, char *text, const struct mqtt_msg *req,
		int64_t commit_ns, int64_t change)
{
	(void)c; (void)req; (void)change;
	pthread_mutex_lock(&st.mu);
	st.later++;
	st.last_commit = commit_ns;
	snprintf(st.last_topic, sizeof(st.last_topic), "%s", topic);
	pthread_mutex_unlock(&st.mu);
	free(text);
}

bool mqtt__is_open(const struct mqtt *m)
{
	(void)m;
	return true;
}

int archive__open(const char *path, struct archive **out, char *err, size_t errlen)
{
	static char fake;

	(void)path; (void)err; (void)errlen;
	*out = (struct archive *)&fake;
	return MQC_OK;
}

void archive__close(struct archive *ar)
{
	(void)ar;
}

void pwthrottle__cleanup(struct responder *d)
{
	(void)d;
}

void register__cleanup(struct responder *d)
{
	(void)d;
}

/* ---- helpers ---- */

static void wait_entered(int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&st.mu);
	while(st.entered < n){
		if(pthread_cond_timedwait(&st.cond, &st.mu, &ts) != 0) break;
	}
	pthread_mutex_unlock(&st.mu);
	assert_true(st.entered >= n);
}

static void open_gate(bool open)
{
	pthread_mutex_lock(&st.mu);
	st.gate_open = open;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.mu);
}

/* Deliver answers until n have come through daemon__send or later__add. */
static void wait_answers(struct worker *w, int n)
{
	int64_t end = time__mono_ms() + WAIT_MS;
	struct pollfd p = {.fd = worker__fd(w), .events = POLLIN};

	while(st.sent + st.later < n && time__mono_ms() < end){
		(void)poll(&p, 1, 50);
		worker__deliver(w, &dd);
	}
	assert_int_equal(st.sent + st.later, n);
}

static void set_quantum(struct worker *w, int64_t ms)
{
	pthread_mutex_lock(&w->mu);
	w->quantum_ms = ms;
	pthread_mutex_unlock(&w->mu);
}

static int submit(struct worker *w, const char *topic, const char *payload)
{
	struct mqtt_msg m = {.topic = topic, .payload = (const unsigned char *)payload, .len = strlen(payload)};

	return worker__submit(w, &dd.conns[0], strncmp(topic, "chat/register/", 14) == 0
			? JOB_REGISTER : JOB_RPC, &m);
}

static int setup(void **state)
{
	char err[256];
	struct userdb *udb;

	(void)state;
	memset(&st.seen, 0, sizeof(st.seen));
	st.nseen = st.entered = st.sent = st.later = 0;
	st.gate_open = false;
	memset(&dd, 0, sizeof(dd));
	snprintf(dir, sizeof(dir), "/tmp/mqchat-worker-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(dd.auth_path, sizeof(dd.auth_path), "%s/auth.db", dir);
	snprintf(dd.archive_path, sizeof(dd.archive_path), "%s/archive.db", dir);
	assert_int_equal(userdb__open(dd.auth_path, USERDB_CREATE, &udb, err, sizeof(err)), MQC_OK);
	userdb__close(udb);
	dd.cfg.registration_rate = 10;
	log_init("test_archiver_worker", LOG_LVL_ERROR);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
	return 0;
}

/* ---- tests ---- */

static void test_accounts_take_turns(void **state)
{
	static const char *want[] = {
		"chat/rpc/held/req",
		"chat/rpc/a/req", "chat/rpc/b/req", "chat/register/_register@1/req", "chat/rpc/c/req",
		"chat/rpc/a/req", "chat/register/_register@2/req", "chat/rpc/b/req",
		"chat/rpc/a/req", "chat/rpc/a/req", "chat/rpc/a/req",
	};
	struct worker *w;
	int i;

	(void)state;
	assert_int_equal(worker__start(&dd, &w), MQC_OK);
	set_quantum(w, 1000000);  /* turns by count only: a slow machine charges nobody */
	assert_int_equal(submit(w, "chat/rpc/held/req", "{}"), MQC_OK);
	wait_entered(1);          /* held is being answered: the rest waits */
	/* a floods; b, two registrations and c come later */
	for(i = 0; i < 5; i++) assert_int_equal(submit(w, "chat/rpc/a/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/b/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/register/_register@1/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/register/_register@2/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/b/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/c/req", "{}"), MQC_OK);
	open_gate(true);
	wait_answers(w, 11);
	assert_int_equal(st.nseen, 11);
	/* round 0: a b _register c (in arrival order), round 1: a _register b,
	 * then a's last three alone */
	for(i = 0; i < 11; i++) assert_string_equal(st.seen[i], want[i]);
	worker__stop(w, &dd);
	assert_int_equal(dd.stats.rpc, 0);   /* the stand-in counts nothing */
}

static void test_dear_requests_wait_behind_cheap_ones(void **state)
{
	static const char *want[] = {
		"chat/rpc/slow/req", "chat/rpc/fast/req", "chat/rpc/fast/req", "chat/rpc/slow/req",
		"chat/rpc/slow/req",
	};
	struct worker *w;
	int i;

	(void)state;
	assert_int_equal(worker__start(&dd, &w), MQC_OK);
	set_quantum(w, 5);
	assert_int_equal(submit(w, "chat/rpc/slow/req", "{}"), MQC_OK);
	wait_entered(1);
	/* in rounds: slow 0 1, fast 0 1; slow's first holds the worker (the
	 * gate) for 30 ms, which pushes its others back 6 rounds */
	assert_int_equal(submit(w, "chat/rpc/slow/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/slow/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/fast/req", "{}"), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/fast/req", "{}"), MQC_OK);
	usleep(30 * 1000);
	open_gate(true);
	wait_answers(w, 5);
	for(i = 0; i < 5; i++) assert_string_equal(st.seen[i], want[i]);
	worker__stop(w, &dd);
}

static void test_bounds_refuse_at_once(void **state)
{
	char topic[64], big[128];
	struct worker *w;
	int i, k;

	(void)state;
	assert_int_equal(worker__start(&dd, &w), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/held/req", "{}"), MQC_OK);
	wait_entered(1);
	/* one account: WORKER_MAX_PER_KEY waiting, then no room */
	for(i = 0; i < WORKER_MAX_PER_KEY; i++){
		assert_true(worker__room(w, JOB_RPC, "chat/rpc/a/req", 2));
		assert_int_equal(submit(w, "chat/rpc/a/req", "{}"), MQC_OK);
	}
	assert_false(worker__room(w, JOB_RPC, "chat/rpc/a/req", 2));
	assert_int_equal(submit(w, "chat/rpc/a/req", "{}"), MQC_ERR_BUSY);
	assert_true(worker__room(w, JOB_RPC, "chat/rpc/b/req", 2));
	/* all accounts: WORKER_MAX_JOBS */
	for(k = 1; k < WORKER_MAX_JOBS / WORKER_MAX_PER_KEY; k++){
		snprintf(topic, sizeof(topic), "chat/rpc/u%d/req", k);
		for(i = 0; i < WORKER_MAX_PER_KEY; i++) assert_int_equal(submit(w, topic, "{}"), MQC_OK);
	}
	assert_false(worker__room(w, JOB_RPC, "chat/rpc/fresh/req", 2));
	assert_false(worker__room(w, JOB_REGISTER, "chat/register/_register@x/req", 2));
	assert_int_equal(submit(w, "chat/rpc/fresh/req", "{}"), MQC_ERR_BUSY);
	/* and bytes, whatever the count */
	assert_false(worker__room(w, JOB_RPC, "chat/rpc/fresh/req", WORKER_MAX_BYTES + 1));
	/* the refusal the poll loop sends: rate_limited, the id, retry_ms */
	{
		struct mqtt_msg m = {.topic = "chat/rpc/a/req", .payload = (const unsigned char *)"{\"id\":\"q7\",\"op\":\"sync\"}"};

		m.len = strlen((const char *)m.payload);
		worker__refuse(&dd.conns[0], &m);
		assert_int_equal(st.sent, 1);
		assert_string_equal(st.last_topic, "chat/rpc/a/resp");
		assert_non_null(strstr(st.last_text, "\"id\":\"q7\""));
		assert_non_null(strstr(st.last_text, "\"error\":\"rate_limited\""));
		assert_non_null(strstr(st.last_text, "\"retry_ms\":1000"));
		m.topic = "chat/rpc/a/b/req";   /* not a request topic: no answer */
		worker__refuse(&dd.conns[0], &m);
		snprintf(big, sizeof(big), "chat/register/_register@x/req");
		m.topic = big;
		worker__refuse(&dd.conns[0], &m);
		assert_int_equal(st.sent, 2);
		assert_string_equal(st.last_topic, "chat/register/_register@x/resp");
	}
	/* a stop answers the request under way and drops the waiting ones */
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_mutex_unlock(&w->mu);
	open_gate(true);
	worker__stop(w, &dd);
	assert_int_equal(st.nseen, 1);
}

static void test_an_answer_after_a_change_waits_for_the_broker(void **state)
{
	struct worker *w;

	(void)state;
	open_gate(true);
	assert_int_equal(worker__start(&dd, &w), MQC_OK);
	assert_int_equal(submit(w, "chat/rpc/a/req", "read"), MQC_OK);
	wait_answers(w, 1);
	assert_int_equal(st.sent, 1);         /* nothing changed: at once */
	assert_int_equal(submit(w, "chat/rpc/a/req", "write"), MQC_OK);
	wait_answers(w, 2);
	assert_int_equal(st.later, 1);        /* a commit: later.c keeps it */
	assert_true(st.last_commit > 0);
	assert_string_equal(st.last_topic, "chat/rpc/a/resp");
	assert_int_equal(submit(w, "chat/rpc/a/req", "read"), MQC_OK);
	wait_answers(w, 3);
	assert_int_equal(st.sent, 2);
	worker__stop(w, &dd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accounts_take_turns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dear_requests_wait_behind_cheap_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds_refuse_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_answer_after_a_change_waits_for_the_broker, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
