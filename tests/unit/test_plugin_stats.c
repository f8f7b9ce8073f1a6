/* test_plugin_stats.c - the plugin's figures (stats.c): the Prometheus text
 * it builds, checked by a reader of the exposition format 0.0.4 written
 * here (names, labels and their escapes, one HELP and TYPE per family
 * before its samples, no series twice, values that parse), a buffer too
 * small for it, the publish from TICK, the counting where things happen
 * (logins by result and reason, refusals, kicks, reloads),
 * plugin_opt_stats_interval, and $SYS for services only. */
#include <ctype.h>
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

#define PW "correct horse"
#define OPT(k, v) {(char *)(uintptr_t)(k), (char *)(uintptr_t)(v)}

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }
static char pw_hash[PWHASH_STR_LEN];

static struct snapshot *make_snapshot(bool alice_enabled, bool with_bob)
{
	struct snapshot *s = snapshot__new();

	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, alice_enabled, pw_hash));
	if(with_bob) assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, pw_hash));
	assert_non_null(snapshot__add_user(s, "carol", USER_KIND_USER, false, pw_hash));
	assert_non_null(snapshot__add_user(s, "archiver", USER_KIND_SERVICE, true, pw_hash));
	assert_non_null(snapshot__add_user(s, "oldsvc", USER_KIND_SERVICE, false, pw_hash));
	assert_non_null(snapshot__add_room(s, "lobby"));
	assert_int_equal(snapshot__add_member(s, "lobby", "alice"), 0);
	return s;
}

static int setup(void **state)
{
	struct mqchat *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	stub_reset();
	plugin_config__defaults(&m->cfg);
	m->cfg.registration = REGISTRATION_OPEN;
	m->log.rate = 100000;
	fake_now = 1000000;
	m->clock_ms = fake_clock;
	if(pw_hash[0] == '\0'){
		assert_int_equal(pwhash__make(PW, strlen(PW), PWHASH_MIN_ITERATIONS, pw_hash,
					sizeof(pw_hash)), MQC_OK);
	}
	assert_int_equal(auth__init(m), MQC_OK);
	m->snap = make_snapshot(true, true);
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
	return 0;
}

/* ---- a reader of the text format, independent of stats.c ---- */

#define MAX_FAMILIES 64
#define MAX_SERIES 256

struct parsed {
	char family[MAX_FAMILIES][96];
	char type[MAX_FAMILIES][16];
	int families;
	char series[MAX_SERIES][192];   /* name{labels} as written */
	double value[MAX_SERIES];
	int count;
};

static bool name_ok(const char *p, size_t n)
{
	size_t i;

	if(n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':')) return false;
	for(i=1; i<n; i++){
		if(!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':')) return false;
	}
	return true;
}

/* The labels at *p ("{" already read) up to "}": k="v" pairs, comma
 * separated, v with \\, \" and \n escapes only. */
static void read_labels(const char **p, const char *line)
{
	const char *s = *p;

	for(;;){
		const char *k = s;

		while(isalnum((unsigned char)*s) || *s == '_') s++;
		if(!name_ok(k, (size_t)(s - k)) || isdigit((unsigned char)*k) || *s++ != '=' || *s++ != '"'){
			fail_msg("bad label name in: %s", line);
		}
		while(*s != '"'){
			if(*s == '\0' || *s == '\n') fail_msg("unterminated label value in: %s", line);
			if(*s == '\\'){
				s++;
				if(*s != '\\' && *s != '"' && *s != 'n') fail_msg("bad escape in: %s", line);
			}
			s++;
		}
		s++;
		if(*s == '}') break;
		if(*s++ != ',') fail_msg("expected , or } in: %s", line);
	}
	*p = s + 1;
}

/* Parse text (len bytes) into out, failing the test on anything the format
 * (or the archiver's check) does not allow. */
static void parse_text(const char *text, size_t len, struct parsed *out)
{
	const char *p = text, *end = text + len;
	int current = -1;               /* the family whose samples may follow */
	bool help_seen = false;
	char help_name[96] = "";

	memset(out, 0, sizeof(*out));
	assert_int_equal(strlen(text), len);
	while(p < end){
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[512];
		size_t n, i;

		if(nl == NULL) fail_msg("last line has no newline");
		n = (size_t)(nl - p);
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		for(i=0; i<n; i++){
			if(line[i] < 0x20 || line[i] > 0x7e) fail_msg("not printable ASCII: %s", line);
		}
		if(strncmp(line, "# ", 2) != 0 && strncmp(line, "mqchat_plugin_", 14) != 0){
			fail_msg("line starts neither \"# \" nor \"mqchat_plugin_\": %s", line);
		}
		if(!strncmp(line, "# HELP ", 7)){
			const char *sp = strchr(line + 7, ' ');

			assert_non_null(sp);
			assert_true(name_ok(line + 7, (size_t)(sp - line - 7)));
			snprintf(help_name, sizeof(help_name), "%.*s", (int)(sp - line - 7), line + 7);
			help_seen = true;
		}else if(!strncmp(line, "# TYPE ", 7)){
			char name[96], type[16];
			int f;

			assert_int_equal(sscanf(line + 7, "%95s %15s", name, type), 2);
			assert_true(name_ok(name, strlen(name)));
			for(f=0; f<out->families; f++){
				if(!strcmp(out->family[f], name)) fail_msg("a second TYPE of %s", name);
			}
			if(!help_seen || strcmp(help_name, name)) fail_msg("TYPE %s without its HELP before", name);
			help_seen = false;
			if(strcmp(type, "counter") && strcmp(type, "gauge")) fail_msg("type %s", type);
			if(!strcmp(type, "counter")){
				assert_true(strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
			}
			assert_true(out->families < MAX_FAMILIES);
			current = out->families++;
			snprintf(out->family[current], sizeof(out->family[current]), "%s", name);
			snprintf(out->type[current], sizeof(out->type[current]), "%s", type);
		}else if(line[0] == '#'){
			fail_msg("a comment that is neither HELP nor TYPE: %s", line);
		}else{
			const char *s = line, *vs;
			char *ve;
			int k;

			while(isalnum((unsigned char)*s) || *s == '_' || *s == ':') s++;
			if(current < 0 || strlen(out->family[current]) != (size_t)(s - line)
					|| strncmp(out->family[current], line, (size_t)(s - line))){
				fail_msg("sample outside its family (after its TYPE): %s", line);
			}
			if(*s == '{'){
				s++;
				read_labels(&s, line);
			}
			if(*s != ' ') fail_msg("no space before the value: %s", line);
			vs = s + 1;
			assert_true(out->count < MAX_SERIES);
			snprintf(out->series[out->count], sizeof(out->series[0]), "%.*s", (int)(s - line), line);
			for(k=0; k<out->count; k++){
				if(!strcmp(out->series[k], out->series[out->count])) fail_msg("twice: %s", line);
			}
			out->value[out->count] = strtod(vs, &ve);
			if(ve == vs || *ve != '\0') fail_msg("value does not parse: %s", line);
			out->count++;
		}
		p = nl + 1;
	}
	if(help_seen) fail_msg("HELP without TYPE at the end");
}

/* The value of a series ("name{labels}" as written); fails if absent. */
static double value_of(const struct parsed *t, const char *series)
{
	int i;

	for(i=0; i<t->count; i++){
		if(!strcmp(t->series[i], series)) return t->value[i];
	}
	fail_msg("no series %s", series);
	return -1;
}

static void build(struct mqchat *m, struct parsed *out, char *buf, size_t buflen)
{
	size_t len = 0;

	assert_int_equal(stats__build(m, fake_now, buf, buflen, &len), MQC_OK);
	assert_true(len < STATS_MAX_BYTES);
	parse_text(buf, len, out);
}

/* ---- tests ---- */

static void test_labels(void **state)
{
	int i, j;

	(void)state;
	for(i=0; i<LOGIN_REASON_COUNT; i++){
		const char *res = stats__login_result((enum login_reason)i);
		const char *why = stats__login_reason((enum login_reason)i);

		assert_non_null(res);
		assert_non_null(why);
		assert_true(!strcmp(res, "ok") || !strcmp(res, "cached") || !strcmp(res, "refused")
				|| !strcmp(res, "throttled"));
		assert_true(why[0] != '\0' && strspn(why, "abcdefghijklmnopqrstuvwxyz_") == strlen(why));
		for(j=0; j<i; j++){
			assert_false(!strcmp(res, stats__login_result((enum login_reason)j))
					&& !strcmp(why, stats__login_reason((enum login_reason)j)));
		}
	}
	assert_string_equal(stats__login_result(LOGIN_CACHED), "cached");
	assert_string_equal(stats__login_reason(LOGIN_BAD_PASSWORD), "bad_password");
	assert_string_equal(stats__login_result(LOGIN_THROTTLED_ADDRESS), "throttled");
	for(i=0; i<KICK_REASON_COUNT; i++){
		assert_true(strspn(stats__kick_reason((enum kick_reason)i), "abcdefghijklmnopqrstuvwxyz_") > 0);
	}
	assert_string_equal(stats__kick_reason(KICK_REVOKED), "revoked");
	assert_string_equal(stats__login_reason(LOGIN_REASON_COUNT), "?");
}

static void test_escape(void **state)
{
	char out[32];

	(void)state;
	assert_true(stats__escape(out, sizeof(out), "a\\b\"c\nd"));
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	assert_true(stats__escape(out, sizeof(out), ""));
	assert_string_equal(out, "");
	/* Exactly fits (3 + NUL), one short, an escape cut in half. */
	assert_true(stats__escape(out, 4, "abc"));
	assert_false(stats__escape(out, 3, "abc"));
	assert_false(stats__escape(out, 2, "\""));
	assert_true(stats__escape(out, 3, "\""));
	assert_string_equal(out, "\\\"");
}

static void test_text_parses_and_says_what_happened(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto c1 = {"alice", "alice", "1"}, c2 = {"alice@two", "alice", "1"};
	struct mosquitto r1 = {"_register@abcdefgh", "_register", "1"};
	static char buf[STATS_MAX_BYTES];
	struct parsed t;
	int i;

	m->stats.logins[LOGIN_BAD_PASSWORD] = 7;
	m->stats.logins[LOGIN_CACHED] = 3;
	m->stats.kicks[KICK_DELETED] = 2;
	m->stats.reloads = 4;
	m->stats.snapshot_since = fake_now - 12345;
	m->acl_denied[ACL_DENY_NOT_MEMBER] = 5;
	m->acl_denied[ACL_DENY_PRIVATE] = 1000000000UL;
	assert_int_equal(presence__connect(m, &c1, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(presence__connect(m, &c2, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(presence__register(m, &r1, r1.id, fake_now + 1000), MQC_OK);

	build(m, &t, buf, sizeof(buf));
	assert_float_equal(value_of(&t, "mqchat_plugin_logins_total{result=\"refused\",reason=\"bad_password\"}"), 7, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_logins_total{result=\"cached\",reason=\"credential_cache\"}"), 3, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_logins_total{result=\"ok\",reason=\"password\"}"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_refusals_total{reason=\"not_member\"}"), 5, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_refusals_total{reason=\"private\"}"), 1e9, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_kicks_total{reason=\"deleted\"}"), 2, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_reloads_total"), 4, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_age_seconds"), 12.345, 1e-9);
	assert_float_equal(value_of(&t, "mqchat_plugin_users"), 5, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_rooms"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_connections"), 2, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_registration_connections"), 1, 0);
	assert_true(value_of(&t, "mqchat_plugin_snapshot_bytes") > 0);
	/* No spool here: its counters as they are, its sizes 0. */
	m->spool.appends = 11;
	m->spool.refused = 3;
	m->spool.reports_lost = 2;
	build(m, &t, buf, sizeof(buf));
	assert_float_equal(value_of(&t, "mqchat_plugin_spool_appends_total"), 11, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_spool_refusals_total{what=\"publish\"}"), 3, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_spool_refusals_total{what=\"seen_report\"}"), 2, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_spool_used_bytes"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_spool_size_bytes"), 0, 0);
	/* No bus: its figures 0. */
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_injected_total"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_lost_total{what=\"interest\"}"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_lost_total{what=\"typing\"}"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_lost_total{what=\"presence\"}"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_takeovers_total"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_takeover_denied_total"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_bus_resyncs_total"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_refusals_total{reason=\"unavailable\"}"), 0, 0);
	/* Every series from the start: each login reason, each refusal but
	 * "ok", each kick. */
	assert_int_equal(t.count, LOGIN_REASON_COUNT + ACL_REASON_COUNT - 1 + KICK_REASON_COUNT + 19);
	for(i=1; i<ACL_REASON_COUNT; i++){
		char series[128];

		snprintf(series, sizeof(series), "mqchat_plugin_refusals_total{reason=\"%s\"}",
				acl__reason_code((enum acl_reason)i));
		(void)value_of(&t, series);
	}
	assert_int_equal(t.families, 19);
	for(i=0; i<t.families; i++) assert_int_equal(strncmp(t.family[i], "mqchat_plugin_", 14), 0);
	/* No snapshot (cannot happen after init, but the text stays whole). */
	snapshot__free(m->snap);
	m->snap = NULL;
	build(m, &t, buf, sizeof(buf));
	assert_float_equal(value_of(&t, "mqchat_plugin_users"), 0, 0);
	m->snap = make_snapshot(true, true);
}

static void test_buffer_too_small(void **state)
{
	struct mqchat *m = *state;
	static char full[STATS_MAX_BYTES], small[STATS_MAX_BYTES];
	size_t full_len = 0, len, cap;
	struct parsed t;
	int prev_families = -1;

	m->stats.logins[LOGIN_OK_PASSWORD] = 123456789;
	assert_int_equal(stats__build(m, fake_now, full, sizeof(full), &full_len), MQC_OK);
	/* Every size short of the whole text: too big, and what is left is
	 * whole families, a prefix of the full text, NUL-terminated. */
	for(cap=0; cap<=full_len; cap++){
		memset(small, 'x', sizeof(small));
		len = 99999;
		assert_int_equal(stats__build(m, fake_now, small, cap, &len), MQC_ERR_TOOBIG);
		assert_true(cap == 0 ? len == 0 : len < cap);
		if(cap == 0){
			assert_int_equal(small[0], 'x');
			continue;
		}
		assert_int_equal(small[len], '\0');
		assert_memory_equal(small, full, len);
		parse_text(small, len, &t);
		assert_true(len == 0 || t.families > 0);
		assert_true(t.families >= prev_families);
		prev_families = t.families;
	}
	assert_int_equal(prev_families, 18);    /* all but the last family */
	assert_int_equal(stats__build(m, fake_now, small, full_len + 1, &len), MQC_OK);
	assert_int_equal(len, full_len);
	assert_string_equal(small, full);
	/* The real buffer holds it with room to spare. */
	assert_true(full_len < STATS_MAX_BYTES / 2);
}

static void test_tick_publishes_every_interval(void **state)
{
	struct mqchat *m = *state;
	struct parsed t;

	m->cfg.stats_interval_s = 5;
	stub_reset();
	tick__run(m, fake_now);
	assert_int_equal(stub.publish_count, 1);
	assert_string_equal(stub.publishes[0].topic, "$SYS/mqchat/plugin");
	assert_int_equal(stub.publishes[0].qos, 0);
	assert_false(stub.publishes[0].retain);
	assert_int_equal(strncmp(stub.publishes[0].payload, "# HELP mqchat_plugin_", 21), 0);
	/* What went out is what was built (the stub keeps the start only). */
	parse_text(m->stats.buf, strlen(m->stats.buf), &t);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_age_seconds"), 0, 0);
	fake_now += 4999;
	tick__run(m, fake_now);
	assert_int_equal(stub.publish_count, 1);
	fake_now += 1;
	tick__run(m, fake_now);
	assert_int_equal(stub.publish_count, 2);
	parse_text(m->stats.buf, strlen(m->stats.buf), &t);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_age_seconds"), 5, 0);
	fake_now += 60000;
	tick__run(m, fake_now);
	tick__run(m, fake_now);
	assert_int_equal(stub.publish_count, 3);
	assert_int_equal(stub_log_contains("do not fit"), 0);
}

static void test_interval_zero_publishes_nothing(void **state)
{
	struct mqchat *m = *state;
	int i;

	m->cfg.stats_interval_s = 0;
	stub_reset();
	for(i=0; i<1000; i++){
		fake_now += 100;
		tick__run(m, fake_now);
	}
	assert_int_equal(stub.publish_count, 0);
}

static int login(struct mqchat *m, const char *user, const char *id, const char *pw, const char *addr)
{
	static struct mosquitto pool[64];
	static int next;
	struct mosquitto *c = &pool[next++ % 64];

	c->username = user;
	c->id = id;
	c->address = addr;
	return auth__check(m, c, user, pw);
}

static void test_logins_counted_by_result_and_reason(void **state)
{
	struct mqchat *m = *state;
	static const struct {
		const char *user, *id, *pw, *addr;
		int rc;
		enum login_reason why;
	} steps[] = {
		{"alice", "alice", PW, "1", MOSQ_ERR_SUCCESS, LOGIN_OK_PASSWORD},
		{"alice", "alice@phone", PW, "1", MOSQ_ERR_SUCCESS, LOGIN_CACHED},
		{"bob", "bob", "wrong", "1", MOSQ_ERR_AUTH, LOGIN_BAD_PASSWORD},
		{"bob", "bob", "wrong", "1", MOSQ_ERR_AUTH, LOGIN_BAD_PASSWORD},
		{"bob", "bob", "wrong", "1", MOSQ_ERR_AUTH, LOGIN_BAD_PASSWORD},
		/* the 4th in a row from the same address: the name is locked there */
		{"bob", "bob", PW, "1", MOSQ_ERR_AUTH, LOGIN_THROTTLED_USER},
		{"bob", "bob", PW, "2", MOSQ_ERR_SUCCESS, LOGIN_OK_PASSWORD},
		{"zed", "zed", PW, "3", MOSQ_ERR_AUTH, LOGIN_UNKNOWN_USER},
		{"carol", "carol", PW, "3", MOSQ_ERR_AUTH, LOGIN_DISABLED},
		{"carol", "carol", "wrong", "3", MOSQ_ERR_AUTH, LOGIN_DISABLED},
		{"alice", "bob", PW, "3", MOSQ_ERR_AUTH, LOGIN_BAD_CLIENT_ID},
		{"alice", "alice", NULL, "3", MOSQ_ERR_AUTH, LOGIN_NO_PASSWORD},
		{"", "x", PW, "3", MOSQ_ERR_AUTH, LOGIN_NO_USERNAME},
		{"Not/A+Name", "Not/A+Name", PW, "3", MOSQ_ERR_AUTH, LOGIN_BAD_USERNAME},
		{"_register", "_register@short", NULL, "3", MOSQ_ERR_AUTH, LOGIN_REGISTER_CLIENT_ID},
		{"_register", "_register@abcdefgh", NULL, "3", MOSQ_ERR_SUCCESS, LOGIN_OK_REGISTER},
		{"archiver", "archiver", PW, "3", MOSQ_ERR_SUCCESS, LOGIN_OK_PASSWORD},
	};
	unsigned long want[LOGIN_REASON_COUNT] = {0}, refused = 0;
	size_t i;
	int r;

	for(i=0; i<sizeof(steps)/sizeof(steps[0]); i++){
		int rc = login(m, steps[i].user, steps[i].id, steps[i].pw, steps[i].addr);

		if(rc != steps[i].rc) fail_msg("step %zu (%s): rc %d", i, steps[i].user, rc);
		want[steps[i].why]++;
		if(steps[i].rc != MOSQ_ERR_SUCCESS) refused++;
		for(r=0; r<LOGIN_REASON_COUNT; r++){
			if(m->stats.logins[r] != want[r]){
				fail_msg("after step %zu: %s/%s is %lu, not %lu", i,
						stats__login_result((enum login_reason)r),
						stats__login_reason((enum login_reason)r), m->stats.logins[r], want[r]);
			}
		}
	}
	/* The old totals agree. */
	assert_int_equal(m->auth_failed, refused);
	assert_int_equal(m->auth_throttled, 1);
	/* A limit: one connection at most. */
	m->cfg.max_connections = 1;
	assert_int_equal(login(m, "bob", "bob@x", PW, "2"), MOSQ_ERR_AUTH);
	assert_int_equal(m->stats.logins[LOGIN_CONNECTIONS], 1);
}

static void test_refusals_kicks_and_reloads_counted(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto a = {"alice", "alice", "1"}, b = {"bob", "bob", "1"};
	struct mosquitto_evt_acl_check ed;
	static char buf[STATS_MAX_BYTES];
	struct parsed t;

	/* A refused publish and subscription, as the broker asks. */
	memset(&ed, 0, sizeof(ed));
	ed.client = &b;
	ed.access = MOSQ_ACL_WRITE;
	ed.topic = "chat/room/lobby/bob";
	ed.payload = "{\"id\":\"m1\",\"type\":\"text\",\"body\":\"hi\"}";
	ed.payloadlen = (uint32_t)strlen(ed.payload);
	ed.qos = 1;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	ed.access = MOSQ_ACL_SUBSCRIBE;
	ed.topic = "$SYS/#";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);

	/* alice disabled and bob deleted while connected: two kicks. */
	assert_int_equal(login(m, "alice", "alice", PW, "1"), MOSQ_ERR_SUCCESS);
	assert_int_equal(presence__connect(m, &a, "alice", USER_KIND_USER), MQC_OK);
	assert_int_equal(presence__connect(m, &b, "bob", USER_KIND_USER), MQC_OK);
	fake_now += 1000;
	tick__swap_snapshot(m, make_snapshot(false, false));
	assert_int_equal(stub.kicked_user_count, 2);
	fake_now += 2500;

	build(m, &t, buf, sizeof(buf));
	assert_float_equal(value_of(&t, "mqchat_plugin_refusals_total{reason=\"not_member\"}"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_refusals_total{reason=\"topic_not_allowed\"}"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_kicks_total{reason=\"disabled\"}"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_kicks_total{reason=\"deleted\"}"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_kicks_total{reason=\"revoked\"}"), 0, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_reloads_total"), 1, 0);
	assert_float_equal(value_of(&t, "mqchat_plugin_snapshot_age_seconds"), 2.5, 1e-9);
	assert_float_equal(value_of(&t, "mqchat_plugin_users"), 4, 0);
}

static void test_registration_timeout_kick_counted(void **state)
{
	struct mqchat *m = *state;
	struct parsed t;
	static char buf[STATS_MAX_BYTES];

	m->cfg.stats_interval_s = 0;
	assert_int_equal(login(m, "_register", "_register@abcdefgh", NULL, "1"), MOSQ_ERR_SUCCESS);
	fake_now += (int64_t)m->cfg.register_timeout_s * 1000;
	tick__run(m, fake_now);
	assert_int_equal(stub.kicked_id_count, 1);
	build(m, &t, buf, sizeof(buf));
	assert_float_equal(value_of(&t, "mqchat_plugin_kicks_total{reason=\"registration_timeout\"}"), 1, 0);
}

static void test_stats_interval_option(void **state)
{
	static const char *const bad[] = {"-1", "3601", "5s", "", " 5"};
	struct mqchat_config cfg;
	struct mosquitto_opt opts[2] = {OPT("dbpath", "a.db"), OPT("stats_interval", "0")};
	char err[256];
	size_t i;

	(void)state;
	assert_int_equal(plugin_config__parse(&cfg, opts, 1, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.stats_interval_s, 5);
	plugin_config__cleanup(&cfg);
	assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.stats_interval_s, 0);
	plugin_config__cleanup(&cfg);
	opts[1].value = "3600";
	assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_OK);
	assert_int_equal(cfg.stats_interval_s, 3600);
	plugin_config__cleanup(&cfg);
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		opts[1].value = (char *)(uintptr_t)bad[i];
		assert_int_equal(plugin_config__parse(&cfg, opts, 2, err, sizeof(err)), MQC_ERR_INVAL);
		if(strstr(err, "plugin_opt_stats_interval must be an integer in 0..3600") == NULL){
			fail_msg("%s: %s", bad[i], err);
		}
		plugin_config__cleanup(&cfg);
	}
}

static void test_sys_for_services_only(void **state)
{
	struct mqchat *m = *state;
	static const struct {
		const char *user;
		int access;
		const char *topic;
		enum acl_reason want;
	} rows[] = {
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$SYS/#", ACL_OK},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$SYS/broker/#", ACL_OK},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$SYS/mqchat/plugin", ACL_OK},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$share/m/$SYS/broker/#", ACL_OK},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$share//$SYS/#", ACL_DENY_TOPIC},
		{"archiver", MOSQ_ACL_READ, "$SYS/mqchat/plugin", ACL_OK},
		{"archiver", MOSQ_ACL_READ, "$SYS/broker/clients/connected", ACL_OK},
		{"archiver", MOSQ_ACL_WRITE, "$SYS/mqchat/plugin", ACL_DENY_TOPIC},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$SYS", ACL_DENY_TOPIC},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$SYSTEM/#", ACL_DENY_TOPIC},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "$sys/#", ACL_DENY_TOPIC},
		{"archiver", MOSQ_ACL_SUBSCRIBE, "#", ACL_DENY_TOPIC},
		{"oldsvc", MOSQ_ACL_SUBSCRIBE, "$SYS/#", ACL_DENY_DISABLED},
		{"oldsvc", MOSQ_ACL_READ, "$SYS/mqchat/plugin", ACL_DENY_DISABLED},
		{"alice", MOSQ_ACL_SUBSCRIBE, "$SYS/#", ACL_DENY_TOPIC},
		{"alice", MOSQ_ACL_SUBSCRIBE, "$SYS/mqchat/plugin", ACL_DENY_TOPIC},
		{"alice", MOSQ_ACL_READ, "$SYS/mqchat/plugin", ACL_DENY_TOPIC},
		{"alice", MOSQ_ACL_READ, "$SYS/broker/uptime", ACL_DENY_TOPIC},
		{"_register", MOSQ_ACL_SUBSCRIBE, "$SYS/#", ACL_DENY_REGISTER},
		{"zed", MOSQ_ACL_SUBSCRIBE, "$SYS/#", ACL_DENY_NO_USER},
	};
	size_t i;

	for(i=0; i<sizeof(rows)/sizeof(rows[0]); i++){
		struct acl_request req;
		enum acl_reason r, rc;

		memset(&req, 0, sizeof(req));
		req.username = rows[i].user;
		req.clientid = "_register@abcdefgh";
		req.access = rows[i].access;
		req.topic = rows[i].topic;
		req.payload = "1";
		req.payloadlen = 1;
		r = acl__decide(m, m->snap, &req);
		rc = aclcache__decide(m, m->snap, &m->acl_cache, &req);
		if(r != rows[i].want || rc != r){
			fail_msg("%s %d %s: %s (cached %s), not %s", rows[i].user, rows[i].access,
					rows[i].topic, acl__reason_code(r), acl__reason_code(rc),
					acl__reason_code(rows[i].want));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_escape),
		cmocka_unit_test_setup_teardown(test_text_parses_and_says_what_happened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_publishes_every_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interval_zero_publishes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logins_counted_by_result_and_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_kicks_and_reloads_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration_timeout_kick_counted, setup, teardown),
		cmocka_unit_test(test_stats_interval_option),
		cmocka_unit_test_setup_teardown(test_sys_for_services_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
