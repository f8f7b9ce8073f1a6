/* test_topic.c - common/topic.c: every kind parses and builds back to the
 * same string, every other shape is TOPIC_NONE, and the split is right at
 * the 16- and 64-byte edges of its fast path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

static void expect_parts(const char *topic, enum topic_kind kind, const char *a, const char *b)
{
	struct topic_parts p;

	assert_true(topic__parse(topic, &p));
	assert_int_equal(p.kind, kind);
	assert_int_equal(p.a.n, strlen(a));
	assert_memory_equal(p.a.p, a, p.a.n);
	assert_int_equal(p.b.n, strlen(b));
	if(p.b.n) assert_memory_equal(p.b.p, b, p.b.n);
	assert_int_equal(p.len, strlen(topic));
}

static void expect_none(const char *topic)
{
	struct topic_parts p;

	assert_false(topic__parse(topic, &p));
	assert_int_equal(p.kind, TOPIC_NONE);
}

static void test_every_kind(void **state)
{
	(void)state;
	expect_parts("chat/inbox/bob/alice", TOPIC_INBOX, "bob", "alice");
	expect_parts("chat/room/lobby/alice", TOPIC_ROOM, "lobby", "alice");
	expect_parts("chat/presence/alice", TOPIC_PRESENCE, "alice", "");
	expect_parts("chat/notice/alice", TOPIC_NOTICE, "alice", "");
	expect_parts("chat/rpc/alice/req", TOPIC_RPC_REQ, "alice", "");
	expect_parts("chat/rpc/alice/resp", TOPIC_RPC_RESP, "alice", "");
	expect_parts("chat/register/_register@ph1/req", TOPIC_REGISTER_REQ, "_register@ph1", "");
	expect_parts("chat/register/_register@ph1/resp", TOPIC_REGISTER_RESP, "_register@ph1", "");
	expect_parts("chat/seen/broker", TOPIC_SEEN, "broker", "");
	expect_parts("chat/typing/bob/alice", TOPIC_TYPING, "bob", "alice");
	expect_parts("chat/roomtyping/lobby/alice", TOPIC_ROOMTYPING, "lobby", "alice");
	expect_parts("chat/typing/alice/+", TOPIC_TYPING, "alice", "+");
	/* Filters parse too; their wildcards are the caller's rule. */
	expect_parts("chat/inbox/bob/#", TOPIC_INBOX, "bob", "#");
	expect_parts("chat/presence/+", TOPIC_PRESENCE, "+", "");
	expect_parts("chat/inbox//", TOPIC_INBOX, "", "");
}

static void test_other_shapes(void **state)
{
	(void)state;
	expect_none("");
	expect_none("chat");
	expect_none("chat/");
	expect_none("chat/inbox");
	expect_none("chat/inbox/bob");
	expect_none("chat/inbox/bob/alice/x");
	expect_none("chat/presence/alice/x");
	expect_none("chat/rpc/alice");
	expect_none("chat/rpc/alice/request");
	expect_none("chat/register/x/res");
	expect_none("chat/other/a/b");
	expect_none("chatx/inbox/bob/alice");
	expect_none("Chat/inbox/bob/alice");
	expect_none("/chat/inbox/bob/alice");
	expect_none("chat/#");
	expect_none("chat/+/bob/alice");
	expect_none("$share/g/chat/inbox/bob/alice");
	expect_none("chat/typing/bob");
	expect_none("chat/typing/#");
	expect_none("chat/typing/bob/alice/x");
	expect_none("chat/roomtyping/lobby");
	expect_none("chat/room/typing");
	expect_none("chat/Typing/bob/alice");
	expect_none("chat/typin/bob/alice");
}

static void test_build_round_trip(void **state)
{
	char buf[TOPIC_MAX_LEN + 1];
	struct topic_parts p;
	int k, n;

	(void)state;
	for(k = TOPIC_INBOX; k < TOPIC_KIND_COUNT; k++){
		n = topic__build(buf, sizeof(buf), (enum topic_kind)k, "somebody", "other");
		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(buf));
		assert_true(topic__parse(buf, &p));
		assert_int_equal(p.kind, k);
		assert_int_equal(p.a.n, strlen("somebody"));
		assert_true(topic__is_chat(buf));
		/* The filter of the whole kind is one of its topics, or under it. */
		assert_true(topic__is_chat(topic__filter_all((enum topic_kind)k)));
		assert_non_null(strstr(topic__filter_all((enum topic_kind)k), topic__kind_word((enum topic_kind)k)));
	}
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_INBOX, "bob", "#"), 16);
	assert_string_equal(buf, "chat/inbox/bob/#");
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_RPC_REQ, "+", NULL), 14);
	assert_string_equal(buf, "chat/rpc/+/req");
	assert_string_equal(topic__filter_all(TOPIC_INBOX), "chat/inbox/#");
	assert_string_equal(topic__kind_name(TOPIC_RPC_RESP), "rpc_resp");
	assert_string_equal(topic__kind_name(TOPIC_NONE), "none");
	assert_string_equal(topic__kind_word(TOPIC_RPC_RESP), "rpc");
	assert_string_equal(topic__kind_word(TOPIC_NONE), "");
	assert_string_equal(topic__filter_all(TOPIC_REGISTER_REQ), "chat/register/+/req");
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_TYPING, "bob", "alice"), 21);
	assert_string_equal(buf, "chat/typing/bob/alice");
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_ROOMTYPING, "lobby", "+"), 23);
	assert_string_equal(buf, "chat/roomtyping/lobby/+");
	assert_string_equal(topic__kind_name(TOPIC_TYPING), "typing");
	assert_string_equal(topic__kind_name(TOPIC_ROOMTYPING), "roomtyping");
	assert_string_equal(topic__filter_all(TOPIC_ROOMTYPING), "chat/roomtyping/#");
}

static void test_build_refusals(void **state)
{
	char buf[TOPIC_MAX_LEN + 1], small[12];
	char longid[CLIENTID_MAX_LEN + 1];

	(void)state;
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_NONE, "a", "b"), -1);
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_KIND_COUNT, "a", "b"), -1);
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_INBOX, "a", NULL), -1);
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_INBOX, NULL, "b"), -1);
	assert_int_equal(topic__build(small, sizeof(small), TOPIC_INBOX, "bob", "alice"), -1);
	assert_string_equal(small, "");
	/* The longest client id fits TOPIC_MAX_LEN exactly. */
	memset(longid, 'x', CLIENTID_MAX_LEN);
	longid[CLIENTID_MAX_LEN] = '\0';
	assert_int_equal(topic__build(buf, sizeof(buf), TOPIC_REGISTER_RESP, longid, NULL),
			(int)TOPIC_MAX_LEN);
}

/* The message and typing prefix tests agree with the parser on every kind. */
static void test_is_message(void **state)
{
	char buf[TOPIC_MAX_LEN + 1];
	int k, j;

	(void)state;
	for(k = TOPIC_INBOX; k < TOPIC_KIND_COUNT; k++){
		topic__build(buf, sizeof(buf), (enum topic_kind)k, "x", "y");
		assert_int_equal(topic__is_message(buf), k == TOPIC_INBOX || k == TOPIC_ROOM);
		assert_int_equal(topic__is_typing(buf), k == TOPIC_TYPING || k == TOPIC_ROOMTYPING);
		/* Names of kinds are distinct: programs look kinds up by them. */
		for(j = TOPIC_NONE; j < k; j++){
			assert_string_not_equal(topic__kind_name((enum topic_kind)k),
					topic__kind_name((enum topic_kind)j));
		}
	}
	assert_true(topic__is_message("chat/inbox/#"));
	assert_true(topic__is_message("chat/room/+/#"));
	assert_false(topic__is_message("chat/inbox"));
	assert_false(topic__is_message("chat/inboxes/a/b"));
	assert_false(topic__is_message("chat/#"));
	assert_false(topic__is_message("xchat/inbox/a/b"));
	assert_false(topic__is_message(""));
	assert_true(topic__is_typing("chat/typing/alice/#"));
	assert_true(topic__is_typing("chat/roomtyping/+/#"));
	assert_false(topic__is_typing("chat/typing"));
	assert_false(topic__is_typing("chat/typingx/a/b"));
	assert_false(topic__is_typing("chat/room/typing/a"));
	assert_false(topic__is_typing("chat/#"));
	assert_false(topic__is_typing(""));
}

/* Levels placed across the 16- and 64-byte edges of the slash mask. */
static void test_split_edges(void **state)
{
	char topic[300], a[128], b[128];
	size_t la, lb;

	(void)state;
	for(la = 1; la < 100; la++){
		for(lb = 1; lb < 100; lb += 7){
			memset(a, 'a', la);
			a[la] = '\0';
			memset(b, 'b', lb);
			b[lb] = '\0';
			snprintf(topic, sizeof(topic), "chat/inbox/%s/%s", a, b);
			expect_parts(topic, TOPIC_INBOX, a, b);
			snprintf(topic, sizeof(topic), "chat/inbox/%s/%s/x", a, b);
			expect_none(topic);
			snprintf(topic, sizeof(topic), "chat/presence/%s", a);
			expect_parts(topic, TOPIC_PRESENCE, a, "");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_other_shapes),
		cmocka_unit_test(test_build_round_trip),
		cmocka_unit_test(test_build_refusals),
		cmocka_unit_test(test_is_message),
		cmocka_unit_test(test_split_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
