/* test_bus.c - common/bus.c: topics to NATS subjects and back (names with
 * '.' sent as '~'), filters to the subjects that cover them (wildcards),
 * and what has no subject. Every subject made is checked against
 * nats-server's rules for a published subject or a subscription, and the
 * filter mapping against MQTT's own matching: for every filter and topic
 * of a small alphabet, a filter matches a carried topic exactly when one
 * of its subjects matches the topic's subject by NATS's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"

/* nats-server 2.9 (server/sublist.go, IsValidSubject / IsValidLiteralSubject):
 * tokens split at '.', none empty, no whitespace; '*' and '>' only as a
 * whole token, '>' only last; literal: no wildcard at all. */
static bool nats_valid(const char *s, bool literal)
{
	const char *p = s, *dot;
	size_t len;

	if(*s == '\0') return false;
	for(;;){
		dot = strchr(p, '.');
		len = dot ? (size_t)(dot - p) : strlen(p);
		if(len == 0) return false;
		for(size_t i=0; i<len; i++){
			if(p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') return false;
			if((p[i] == '*' || p[i] == '>') && (literal || len != 1)) return false;
		}
		if(len == 1 && p[0] == '>' && dot != NULL) return false;
		if(dot == NULL) return true;
		p = dot + 1;
	}
}

static void expect_subject(const char *topic, const char *subject)
{
	char out[BUS_SUBJECT_MAX], back[BUS_SUBJECT_MAX];

	assert_true(bus__subject(topic, out, sizeof(out)));
	assert_string_equal(out, subject);
	assert_true(nats_valid(out, true));
	assert_true(bus__carries(topic));
	assert_true(bus__topic(out, back, sizeof(back)));
	assert_string_equal(back, topic);
}

static void subjects_of_topics(void **state)
{
	(void)state;
	expect_subject("chat/inbox/alice/bob", "mq.i.alice.bob");
	expect_subject("chat/room/general/bob", "mq.r.general.bob");
	expect_subject("chat/typing/alice/bob", "mq.t.alice.bob");
	expect_subject("chat/roomtyping/general/bob", "mq.rt.general.bob");
	/* Names may hold '.', a NATS token may not. */
	expect_subject("chat/inbox/a.b/c.d.e", "mq.i.a~b.c~d~e");
	expect_subject("chat/room/team.x/bob_1-2", "mq.r.team~x.bob_1-2");
}

static void topics_without_subject(void **state)
{
	static const char *bad[] = {
		"chat/inbox/alice", "chat/inbox/alice/bob/x", "chat/inbox//bob", "chat/inbox/alice/",
		"chat/presence/alice", "chat/rpc/alice/req", "chat/notice/alice", "chat/seen/node1",
		"chat/inbox/al ice/bob", "chat/inbox/a*/bob", "chat/inbox/alice/>", "chat/inbox/a~b/c",
		"chat/inbox/+/bob", "other/inbox/alice/bob", "", "chat",
	};
	char out[BUS_SUBJECT_MAX];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(bad) / sizeof(bad[0]); i++){
		if(bus__subject(bad[i], out, sizeof(out))) fail_msg("%s gave %s", bad[i], out);
		assert_false(bus__carries(bad[i]));
	}
	/* Too small a buffer is a refusal, never a cut subject. */
	assert_false(bus__subject("chat/inbox/alice/bob", out, 10));
}

static void topics_of_bad_subjects(void **state)
{
	static const char *bad[] = {
		"mq.i.alice", "mq.i.alice.bob.x", "mq.x.alice.bob", "mq.i.*.bob", "mq.i.alice.>",
		"mq.i..bob", "mq.i.alice.", "nq.i.alice.bob", "mq.i", "mq.hb.node1",
	};
	char out[BUS_SUBJECT_MAX];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(bad) / sizeof(bad[0]); i++){
		if(bus__topic(bad[i], out, sizeof(out))) fail_msg("%s gave %s", bad[i], out);
	}
}

static void expect_filter(const char *filter, size_t n, const char *const *want)
{
	char out[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	size_t got, i;

	got = bus__filter_subjects(filter, out);
	if(got != n) fail_msg("%s: %zu subjects, want %zu", filter, got, n);
	for(i=0; i<n; i++){
		assert_string_equal(out[i], want[i]);
		assert_true(nats_valid(out[i], false));
	}
}

static void subjects_of_filters(void **state)
{
	(void)state;
	expect_filter("chat/inbox/alice/#", 1, (const char *[]){"mq.i.alice.*"});
	expect_filter("chat/inbox/alice/+", 1, (const char *[]){"mq.i.alice.*"});
	expect_filter("chat/inbox/+/alice", 1, (const char *[]){"mq.i.*.alice"});
	expect_filter("chat/inbox/alice/bob", 1, (const char *[]){"mq.i.alice.bob"});
	expect_filter("chat/inbox/alice/bob/#", 1, (const char *[]){"mq.i.alice.bob"});
	expect_filter("chat/room/team.x/#", 1, (const char *[]){"mq.r.team~x.*"});
	expect_filter("chat/typing/a.b/+", 1, (const char *[]){"mq.t.a~b.*"});
	expect_filter("chat/roomtyping/general/#", 1, (const char *[]){"mq.rt.general.*"});
	expect_filter("chat/inbox/#", 1, (const char *[]){"mq.i.>"});
	expect_filter("chat/room/+/+", 1, (const char *[]){"mq.r.*.*"});
	expect_filter("chat/#", 4, (const char *[]){"mq.i.>", "mq.r.>", "mq.t.>", "mq.rt.>"});
	expect_filter("#", 4, (const char *[]){"mq.i.>", "mq.r.>", "mq.t.>", "mq.rt.>"});
	expect_filter("+/+/alice/#", 4,
			(const char *[]){"mq.i.alice.*", "mq.r.alice.*", "mq.t.alice.*", "mq.rt.alice.*"});
	expect_filter("chat/+/x/y", 4, (const char *[]){"mq.i.x.y", "mq.r.x.y", "mq.t.x.y", "mq.rt.x.y"});
}

static void filters_without_subject(void **state)
{
	static const char *none[] = {
		"chat/presence/#", "chat/rpc/alice/resp", "chat/notice/alice", "chat/inbox/alice",
		"chat/inbox/+", "chat/inbox", "chat/+", "+", "chat/inbox/alice/bob/x", "chat/inbox/al#/x",
		"chat/inbox/a+/x", "chat/inbox/#/x", "chat/inbox/a b/#", "chat/inbox/a~b/#", "$SYS/#",
		"chat/inbox/alice/bob/x/#", "",
	};
	char out[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	size_t i, n;

	(void)state;
	for(i=0; i<sizeof(none) / sizeof(none[0]); i++){
		n = bus__filter_subjects(none[i], out);
		if(n != 0) fail_msg("%s gave %zu subjects (%s)", none[i], n, out[0]);
	}
}

/* MQTT 3.1.1 section 4.7 matching (no '$' topics here). */
static bool mqtt_match(const char *f, const char *t)
{
	for(;;){
		if(f[0] == '#' && f[1] == '\0') return true;
		if(f[0] == '+' && (f[1] == '/' || f[1] == '\0')){
			while(*t && *t != '/') t++;
			f++;
		}else{
			while(*f && *f != '/' && *t && *t != '/'){
				if(*f++ != *t++) return false;
			}
			if((*f == '/' || *f == '\0') != (*t == '/' || *t == '\0')) return false;
		}
		if(*f == '\0' && *t == '\0') return true;
		/* "a/#" matches "a": the filter's "/#" after the topic's end. */
		if(*t == '\0') return strcmp(f, "/#") == 0;
		if(*f == '\0') return false;
		f++;
		t++;
	}
}

/* NATS matching: '*' one token, '>' one or more, last. */
static bool nats_match(const char *s, const char *t)
{
	for(;;){
		if(s[0] == '>' && s[1] == '\0') return *t != '\0';
		if(s[0] == '*' && (s[1] == '.' || s[1] == '\0')){
			if(*t == '\0' || *t == '.') return false;
			while(*t && *t != '.') t++;
			s++;
		}else{
			while(*s && *s != '.' && *t && *t != '.'){
				if(*s++ != *t++) return false;
			}
			if((*s == '.' || *s == '\0') != (*t == '.' || *t == '\0')) return false;
		}
		if(*s == '\0' || *t == '\0') return *s == '\0' && *t == '\0';
		s++;
		t++;
	}
}

static void filters_match_as_mqtt_does(void **state)
{
	static const char *const lv0[] = {"chat", "+", "#", "x"};
	static const char *const lv1[] = {"inbox", "room", "typing", "roomtyping", "presence", "+", "#"};
	static const char *const lv[] = {"a", "b.c", "+", "#"};
	static const char *const names[] = {"a", "b.c", "d"};
	static const char *const kinds[] = {"inbox", "room", "typing", "roomtyping", "presence"};
	char filter[128], topic[128], tsubj[BUS_SUBJECT_MAX];
	char subjects[BUS_SUBJECTS_PER_FILTER][BUS_SUBJECT_MAX];
	size_t a, b, c, d, e, k, x, y, i, n, depth, checked = 0;
	bool want, got;

	(void)state;
	/* Filters of 1 to 5 levels from the alphabets above. */
	for(depth=1; depth<=5; depth++)
	for(a=0; a<4; a++) for(b=0; b<(depth > 1 ? 7u : 1u); b++)
	for(c=0; c<(depth > 2 ? 4u : 1u); c++) for(d=0; d<(depth > 3 ? 4u : 1u); d++)
	for(e=0; e<(depth > 4 ? 4u : 1u); e++){
		const char *parts[5] = {lv0[a], lv1[b], lv[c], lv[d], lv[e]};

		filter[0] = '\0';
		for(i=0; i<depth; i++){
			strcat(filter, parts[i]);
			if(i + 1 < depth) strcat(filter, "/");
		}
		n = bus__filter_subjects(filter, subjects);
		for(k=0; k<5; k++) for(x=0; x<3; x++) for(y=0; y<3; y++){
			snprintf(topic, sizeof(topic), "chat/%s/%s/%s", kinds[k], names[x], names[y]);
			if(!bus__subject(topic, tsubj, sizeof(tsubj))){
				assert_int_equal(k, 4);         /* presence is not carried */
				continue;
			}
			want = strchr(filter, '#') == NULL || strchr(filter, '#')[1] == '\0'
				? mqtt_match(filter, topic) : false;
			got = false;
			for(i=0; i<n; i++) got = got || nats_match(subjects[i], tsubj);
			if(want != got){
				fail_msg("filter %s, topic %s: MQTT %d, subjects %d (%zu subjects, first %s)",
						filter, topic, want, got, n, n ? subjects[0] : "-");
			}
			checked++;
		}
	}
	assert_true(checked == 2384 * 36);
}

/* Names as single tokens (presence, heartbeats, takeover): '.' as '~'
 * and back; nothing a token may not hold. */
static void names_as_tokens(void **state)
{
	char tok[64], name[64];
	const char *bad[] = {"", "a b", "a*", "a>", "a~b", "a+b", "a#", "a\tb", NULL};
	size_t i;

	(void)state;
	assert_true(bus__token("alice", tok, sizeof(tok)));
	assert_string_equal(tok, "alice");
	assert_true(bus__token("al.ice@tab.2", tok, sizeof(tok)));
	assert_string_equal(tok, "al~ice@tab~2");
	assert_true(nats_valid(tok, true));
	assert_true(bus__token_name("mq.to.al~ice@tab~2", "mq.to.", name, sizeof(name)));
	assert_string_equal(name, "al.ice@tab.2");
	for(i=0; bad[i]; i++) assert_false(bus__token(bad[i], tok, sizeof(tok)));
	/* Exactly as long as fits, then one more. */
	assert_true(bus__token("abcd", tok, 5));
	assert_false(bus__token("abcde", tok, 5));
	assert_false(bus__token_name("mq.p.", "mq.p.", name, sizeof(name)));
	assert_false(bus__token_name("mq.p.a.b", "mq.p.", name, sizeof(name)));
	assert_false(bus__token_name("mq.p.*", "mq.p.", name, sizeof(name)));
	assert_false(bus__token_name("mq.hb.alice", "mq.p.", name, sizeof(name)));
	assert_false(bus__token_name("mq.p.abcde", "mq.p.", name, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(subjects_of_topics),
		cmocka_unit_test(topics_without_subject),
		cmocka_unit_test(topics_of_bad_subjects),
		cmocka_unit_test(subjects_of_filters),
		cmocka_unit_test(filters_without_subject),
		cmocka_unit_test(filters_match_as_mqtt_does),
		cmocka_unit_test(names_as_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
