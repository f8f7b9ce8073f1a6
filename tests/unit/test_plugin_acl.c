/* test_plugin_acl.c - the plugin's topic policy on a small hand-built snapshot.
 *
 * Every allowed row of the policy, the denials next to each, topic edge
 * cases (empty levels, trailing slash, long levels, odd bytes, $share), the
 * callback's counting and rate-limited logging, and a micro-benchmark of
 * the hot path (printed, not asserted).
 *
 * The topic is split 16 bytes a step and names are hashed and compared a
 * word at a time: names of every length 1..32 in every position, so topic
 * lengths cross every block boundary, and names that differ from an account
 * in one byte anywhere. Topics are exact-size heap copies, so a read past
 * the NUL is an error under `make test SAN=1`. */
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
#include "snapshot.h"
#include "timeutil.h"

#define ENV "{\"id\":\"m1\",\"type\":\"text\",\"body\":\"hi\"}"
#define EVENT "{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"bob\",\"by\":\"alice\"}"
#define RESYNC "{\"type\":\"resync\",\"ts\":1764892800000}"
#define RECEIPT "{\"id\":\"m2\",\"type\":\"receipt\",\"ref\":\"m1\",\"status\":\"read\"}"
#define REACTION "{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m1\",\"of\":\"bob\",\"emoji\":\"+1\"}"
#define REPLY "{\"id\":\"m3\",\"type\":\"text\",\"body\":\"y\",\"reply_to\":\"m1\",\"reply_from\":\"bob\"}"
#define EDIT "{\"id\":\"ed\",\"type\":\"edit\",\"ref\":\"m1\",\"of\":\"bob\",\"body\":\"new\",\"by\":\"bob\"}"
#define DELETE "{\"id\":\"dl\",\"type\":\"delete\",\"ref\":\"m1\",\"of\":\"bob\",\"by\":\"bob\"}"
#define READ "{\"id\":\"rd\",\"type\":\"read\",\"with\":\"bob\",\"seq\":5,\"unread\":0}"
#define TYPING "{\"typing\":true}"
#define HASH "$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$x"

static int64_t fake_now;
static int64_t fake_clock(void) { return fake_now; }

static struct mqchat *make_plugin(enum registration_mode reg)
{
	struct mqchat *m = calloc(1, sizeof(*m));
	struct snapshot *s = snapshot__new();

	assert_non_null(m);
	assert_non_null(s);
	plugin_config__defaults(&m->cfg);
	m->cfg.registration = reg;
	m->log.rate = 1000;
	m->clock_ms = fake_clock;
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "carol", USER_KIND_USER, false, HASH));
	assert_non_null(snapshot__add_user(s, "dev1", USER_KIND_DEVICE, true, HASH));
	assert_non_null(snapshot__add_user(s, "eve", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "archiver", USER_KIND_SERVICE, true, HASH));
	assert_non_null(snapshot__add_user(s, "oldsvc", USER_KIND_SERVICE, false, HASH));
	assert_non_null(snapshot__add_room(s, "lobby"));
	assert_non_null(snapshot__add_room(s, "empty"));
	assert_int_equal(snapshot__add_member(s, "lobby", "alice"), 0);
	assert_int_equal(snapshot__add_member(s, "lobby", "bob"), 0);
	assert_int_equal(snapshot__add_member(s, "lobby", "dev1"), 0);
	assert_int_equal(snapshot__add_member(s, "lobby", "carol"), 0);
	/* bob refuses messages from eve. */
	assert_int_equal(snapshot__add_block(s, "bob", "eve"), 0);
	m->snap = s;
	return m;
}

static void free_plugin(struct mqchat *m)
{
	/* The callback's refusal notices fill it (test_callback_counts_and_logs). */
	throttle__cleanup(&m->notice_limit);
	snapshot__free(m->snap);
	free(m);
}

static int setup(void **state)
{
	stub_reset();
	*state = make_plugin(REGISTRATION_OPEN);
	return 0;
}

static int teardown(void **state)
{
	free_plugin(*state);
	return 0;
}

struct row {
	const char *user;
	const char *clientid;
	int access;
	const char *topic;
	const char *payload;
	bool retain;
	enum acl_reason want;
};

#define R MOSQ_ACL_READ
#define W MOSQ_ACL_WRITE
#define S MOSQ_ACL_SUBSCRIBE
#define U MOSQ_ACL_UNSUBSCRIBE

static void run_rows(struct mqchat *m, const struct row *rows, size_t n)
{
	size_t i;

	for(i=0; i<n; i++){
		struct acl_request req = {
			.username = rows[i].user,
			.clientid = rows[i].clientid ? rows[i].clientid : rows[i].user,
			.access = rows[i].access,
			.topic = rows[i].topic,
			.payload = rows[i].payload,
			.payloadlen = rows[i].payload ? (uint32_t)strlen(rows[i].payload) : 0,
			.retain = rows[i].retain,
		};
		enum acl_reason got = acl__decide(m, m->snap, &req), cached;

		/* The same through the plugin's cache, filled by every
		 * earlier row: the same verdict. */
		cached = aclcache__decide(m, m->snap, &m->acl_cache, &req);
		if(cached != got){
			print_error("row %zu: %s topic \"%s\": %s with the user cache, %s without\n", i,
					rows[i].user ? rows[i].user : "(null)", rows[i].topic,
					acl__reason_name(cached), acl__reason_name(got));
			fail();
		}
		if(got != rows[i].want){
			print_error("row %zu: %s access %d topic \"%s\": got %s, want %s\n", i,
					rows[i].user ? rows[i].user : "(null)", rows[i].access, rows[i].topic,
					acl__reason_name(got), acl__reason_name(rows[i].want));
			fail();
		}
	}
}

static void test_user_inbox(void **state)
{
	static const struct row rows[] = {
		/* publish to someone's inbox as myself */
		{"alice", NULL, W, "chat/inbox/bob/alice", ENV, false, ACL_OK},
		{"alice", NULL, W, "chat/inbox/bob/alice", RECEIPT, false, ACL_OK},
		{"alice", NULL, W, "chat/inbox/dev1/alice", ENV, false, ACL_OK},
		{"dev1", NULL, W, "chat/inbox/alice/dev1", ENV, false, ACL_OK},
		{"alice", NULL, W, "chat/inbox/alice/alice", ENV, false, ACL_OK},
		/* as someone else */
		{"alice", NULL, W, "chat/inbox/bob/eve", ENV, false, ACL_DENY_NOT_OWNER},
		{"alice", NULL, W, "chat/inbox/bob/+", ENV, false, ACL_DENY_NOT_OWNER},
		/* recipient missing, disabled, a service */
		{"alice", NULL, W, "chat/inbox/zed/alice", ENV, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/inbox/carol/alice", ENV, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/inbox/archiver/alice", ENV, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/inbox//alice", ENV, false, ACL_DENY_RECIPIENT},
		/* blocked */
		{"eve", NULL, W, "chat/inbox/bob/eve", ENV, false, ACL_DENY_BLOCKED},
		{"bob", NULL, W, "chat/inbox/eve/bob", ENV, false, ACL_OK},
		/* retained, bad payloads */
		{"alice", NULL, W, "chat/inbox/bob/alice", ENV, true, ACL_DENY_RETAIN},
		{"alice", NULL, W, "chat/inbox/bob/alice", "hello", false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/bob/alice", "", false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/bob/alice", "{\"id\":\"m1\",\"type\":\"text\"}", false,
			ACL_DENY_ENVELOPE},
		/* wrong shapes */
		{"alice", NULL, W, "chat/inbox/bob", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/inbox/bob/alice/", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/inbox/bob/alice/x", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "/chat/inbox/bob/alice", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "Chat/inbox/bob/alice", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/Inbox/bob/alice", ENV, false, ACL_DENY_TOPIC},
		/* subscribe: own inbox only */
		{"alice", NULL, S, "chat/inbox/alice/#", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/inbox/alice/+", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/inbox/alice/bob", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/inbox/bob/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/+/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/alice", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/alice/", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/alice/Bob", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/alice/#/x", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/alice/a+", NULL, false, ACL_DENY_TOPIC},
		/* read: own inbox, unless I block the sender */
		{"bob", NULL, R, "chat/inbox/bob/alice", ENV, false, ACL_OK},
		{"bob", NULL, R, "chat/inbox/bob/eve", ENV, false, ACL_DENY_BLOCKED},
		/* A copy of my own message (carbons), not someone else's. */
		{"alice", NULL, R, "chat/inbox/bob/alice", ENV, false, ACL_OK},
		{"eve", NULL, R, "chat/inbox/bob/alice", ENV, false, ACL_DENY_TOPIC},
		{"eve", NULL, R, "chat/inbox/eve/bob", ENV, false, ACL_OK},
		/* unsubscribe: always */
		{"alice", NULL, U, "chat/inbox/bob/#", NULL, false, ACL_OK},
		{"alice", NULL, U, "#", NULL, false, ACL_OK},
	};
	run_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_user_room(void **state)
{
	static const struct row rows[] = {
		{"alice", NULL, W, "chat/room/lobby/alice", ENV, false, ACL_OK},
		{"dev1", NULL, W, "chat/room/lobby/dev1", ENV, false, ACL_OK},
		{"alice", NULL, W, "chat/room/lobby/bob", ENV, false, ACL_DENY_NOT_OWNER},
		{"eve", NULL, W, "chat/room/lobby/eve", ENV, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/room/nowhere/alice", ENV, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/room/empty/alice", ENV, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/room//alice", ENV, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/room/lobby/alice", ENV, true, ACL_DENY_RETAIN},
		{"alice", NULL, W, "chat/room/lobby/alice", "[1]", false, ACL_DENY_ENVELOPE},
		/* A membership event comes from a service only. */
		{"alice", NULL, W, "chat/room/lobby/alice", EVENT, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/bob/alice", EVENT, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/room/lobby", ENV, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/room/lobby/#", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/room/lobby/+", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/room/lobby/bob", NULL, false, ACL_OK},
		{"eve", NULL, S, "chat/room/lobby/#", NULL, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, S, "chat/room/+/#", NULL, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, S, "chat/room/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/room/lobby/bob", ENV, false, ACL_OK},
		{"alice", NULL, R, "chat/room/lobby/eve", ENV, false, ACL_OK},
		{"eve", NULL, R, "chat/room/lobby/alice", ENV, false, ACL_DENY_NOT_MEMBER},
	};
	run_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_user_presence_rpc(void **state)
{
	static const struct row rows[] = {
		{"alice", NULL, S, "chat/presence/bob", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/presence/+", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/presence/#", NULL, false, ACL_OK},
		{"dev1", NULL, S, "chat/presence/#", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/presence", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/presence/bob/x", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/presence/", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/presence/bob", "{}", true, ACL_OK},
		/* Presence reaches contacts only (default): alice and bob share
		 * lobby; eve shares nothing; a name with no account is free. */
		{"eve", NULL, R, "chat/presence/bob", "{}", true, ACL_DENY_PRIVATE},
		{"eve", NULL, R, "chat/presence/eve", "{}", true, ACL_OK},
		{"alice", NULL, R, "chat/presence/zed", "", true, ACL_OK},
		{"archiver", NULL, R, "chat/presence/bob", "{}", true, ACL_OK},
		{"eve", NULL, S, "chat/presence/bob", NULL, false, ACL_OK},
		/* Device logins are for services. */
		{"alice", NULL, S, "chat/seen/+", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/seen/broker", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/seen/broker", "{}", false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "chat/seen/+", NULL, false, ACL_OK},
		{"archiver", NULL, W, "chat/seen/broker", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/presence/alice", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/presence/alice", "{}", true, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/presence/alice", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/rpc/alice/req", "{\"op\":\"rooms\"}", false, ACL_OK},
		{"alice", NULL, W, "chat/rpc/alice/req", "anything: the archiver checks", false, ACL_OK},
		{"alice", NULL, W, "chat/rpc/alice/req", "{}", true, ACL_DENY_RETAIN},
		{"alice", NULL, W, "chat/rpc/bob/req", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/rpc/alice/resp", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/rpc/alice/resp", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/rpc/alice/req", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/rpc/bob/resp", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/rpc/+/resp", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/rpc/alice/resp", "{}", false, ACL_OK},
		{"alice", NULL, R, "chat/rpc/bob/resp", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/rpc/alice/req", "{}", false, ACL_DENY_TOPIC},
		/* everything else */
		{"alice", NULL, S, "#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "+", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/+/alice/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "$SYS/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "$share/g/chat/inbox/alice/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/register/alice/resp", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/register/_register@abcdefgh/req", "{}", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "other/topic", "x", false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "", "x", false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat", "x", false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/", "x", false, ACL_DENY_TOPIC},
	};
	run_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_accounts(void **state)
{
	static const struct row rows[] = {
		/* unknown, disabled, missing names deny everything */
		{"zed", NULL, S, "chat/inbox/zed/#", NULL, false, ACL_DENY_NO_USER},
		{"zed", NULL, U, "chat/inbox/zed/#", NULL, false, ACL_DENY_NO_USER},
		{NULL, "x", R, "chat/presence/bob", "{}", false, ACL_DENY_NO_USER},
		{"", "x", R, "chat/presence/bob", "{}", false, ACL_DENY_NO_USER},
		{"carol", NULL, S, "chat/inbox/carol/#", NULL, false, ACL_DENY_DISABLED},
		{"carol", NULL, R, "chat/room/lobby/alice", ENV, false, ACL_DENY_DISABLED},
		{"carol", NULL, U, "chat/inbox/carol/#", NULL, false, ACL_DENY_DISABLED},
		{"oldsvc", NULL, R, "chat/inbox/bob/alice", ENV, false, ACL_DENY_DISABLED},
		/* a name longer than any account */
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, R, "chat/presence/bob", "{}", false,
			ACL_DENY_NO_USER},
	};
	run_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_service(void **state)
{
	static const struct row rows[] = {
		{"archiver", NULL, S, "chat/#", NULL, false, ACL_OK},
		{"archiver", NULL, S, "chat/inbox/+/+", NULL, false, ACL_OK},
		{"archiver", NULL, S, "chat/rpc/+/req", NULL, false, ACL_OK},
		{"archiver", NULL, S, "$share/arch/chat/#", NULL, false, ACL_OK},
		{"archiver", NULL, S, "$share/arch/chat/room/+/+", NULL, false, ACL_OK},
		{"archiver", NULL, S, "#", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "chat", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "+/inbox/#", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "$SYS/#", NULL, false, ACL_OK},     /* read-only (test_plugin_stats.c) */
		{"archiver", NULL, S, "$share/arch/#", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "$share//chat/#", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "$share/a+/chat/#", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, S, "$share/arch", NULL, false, ACL_DENY_TOPIC},
		{"archiver", NULL, U, "#", NULL, false, ACL_OK},
		{"archiver", NULL, R, "chat/inbox/bob/alice", ENV, false, ACL_OK},
		{"archiver", NULL, R, "chat/rpc/bob/req", "{}", false, ACL_OK},
		{"archiver", NULL, R, "other", "x", false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/rpc/alice/resp", "{\"id\":\"1\",\"ok\":true}", false, ACL_OK},
		{"archiver", NULL, W, "chat/register/_register@abcdefgh/resp", "{}", false, ACL_OK},
		{"archiver", NULL, W, "chat/rpc/alice/resp", "{}", true, ACL_DENY_RETAIN},
		{"archiver", NULL, W, "chat/rpc/Alice/resp", "{}", false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/rpc/alice/req", "{}", false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/register/alice/resp", "{}", false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/register//resp", "{}", false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", ENV, false, ACL_DENY_ENVELOPE},
		/* Membership events: as itself, of a room that exists, type event
		 * only. */
		{"archiver", NULL, W, "chat/room/lobby/archiver", ENV, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/room/lobby/archiver", EVENT, false, ACL_OK},
		{"archiver", NULL, W, "chat/room/lobby/archiver", EVENT, true, ACL_DENY_RETAIN},
		{"archiver", NULL, W, "chat/room/lobby/alice", EVENT, false, ACL_DENY_NOT_OWNER},
		{"archiver", NULL, W, "chat/room/nowhere/archiver", EVENT, false, ACL_DENY_NOT_MEMBER},
		{"archiver", NULL, W, "chat/room/lobby/archiver", "{\"id\":\"e\",\"type\":\"event\"}", false,
		 ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/rpc/alice/resp/x", "{}", false, ACL_DENY_TOPIC},
		/* Resync notices (docs/PROTOCOL.md, "Several nodes"): to an
		 * enabled person or device, that type only, at most 1 KiB. */
		{"archiver", NULL, W, "chat/notice/alice", RESYNC, false, ACL_OK},
		{"archiver", NULL, W, "chat/notice/dev1", "{\"type\":\"resync\"}", false, ACL_OK},
		{"archiver", NULL, W, "chat/notice/alice", RESYNC, true, ACL_DENY_RETAIN},
		{"archiver", NULL, W, "chat/notice/carol", RESYNC, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/notice/nobody", RESYNC, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/notice/oldsvc", RESYNC, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/notice/alice", "{\"type\":\"refused\",\"code\":\"blocked\"}", false,
		 ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/notice/alice", "{\"type\":1}", false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/notice/alice", "{\"type\":\"resync\"", false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/notice/alice", "[\"resync\"]", false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/notice/alice", "", false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/notice/alice/x", RESYNC, false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/notice/+", RESYNC, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/notice/alice", RESYNC, false, ACL_DENY_TOPIC},
		{"alice", NULL, W, "chat/notice/bob", RESYNC, false, ACL_DENY_TOPIC},
		{"dev1", NULL, W, "chat/notice/dev1", RESYNC, false, ACL_DENY_TOPIC},
	};
	run_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

/* A resync notice of 1 KiB is taken, one byte more is not. */
static void test_service_resync_size(void **state)
{
	struct mqchat *m = *state;
	char payload[1026];
	const char *head = "{\"type\":\"resync\",\"pad\":\"";
	size_t n = strlen(head);
	struct acl_request req = {
		.username = "archiver", .clientid = "archiver", .access = MOSQ_ACL_WRITE,
		.topic = "chat/notice/alice", .payload = payload,
	};

	memcpy(payload, head, n);
	memset(payload + n, 'x', 1024 - n - 2);
	memcpy(payload + 1024 - 2, "\"}", 3);
	req.payloadlen = 1024;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	memcpy(payload + 1024 - 2, "x\"}", 4);
	req.payloadlen = 1025;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOO_BIG);
}

/* Conversations (docs/PROTOCOL.md): carbons, the types a person and a
 * service may send, typing. */
static void test_conversations(void **state)
{
	static const struct row rows[] = {
		/* Carbons: chat/inbox/+/<me>, nothing wider, nobody else's. */
		{"alice", NULL, S, "chat/inbox/+/alice", NULL, false, ACL_OK},
		{"dev1", NULL, S, "chat/inbox/+/dev1", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/inbox/+/bob", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/+/+", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/+/#", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/bob/alice", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/inbox/#/alice", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/inbox/alice/alice", ENV, false, ACL_OK},
		{"alice", NULL, R, "chat/inbox/eve/alice", ENV, false, ACL_OK},
		{"bob", NULL, R, "chat/inbox/eve/alice", ENV, false, ACL_DENY_TOPIC},
		/* A person sends texts (with a reply), receipts, reactions. */
		{"alice", NULL, W, "chat/inbox/bob/alice", REPLY, false, ACL_OK},
		{"alice", NULL, W, "chat/inbox/bob/alice", REACTION, false, ACL_OK},
		{"alice", NULL, W, "chat/room/lobby/alice", REACTION, false, ACL_OK},
		{"alice", NULL, W, "chat/inbox/bob/alice", EDIT, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/bob/alice", DELETE, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/bob/alice", READ, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/room/lobby/alice", EDIT, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/room/lobby/alice", DELETE, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/room/lobby/alice", READ, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/inbox/alice/archiver", READ, false, ACL_DENY_NOT_OWNER},
		/* A service: edits, deletes, read markers to a person as itself;
		 * events, edits, deletes to a room; never a text or a reaction. */
		{"archiver", NULL, W, "chat/inbox/alice/archiver", EDIT, false, ACL_OK},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", DELETE, false, ACL_OK},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", READ, false, ACL_OK},
		{"archiver", NULL, W, "chat/inbox/dev1/archiver", READ, false, ACL_OK},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", READ, true, ACL_DENY_RETAIN},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", EVENT, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", REACTION, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", RECEIPT, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/inbox/alice/archiver", "{}", false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/inbox/alice/bob", READ, false, ACL_DENY_NOT_OWNER},
		{"archiver", NULL, W, "chat/inbox/zed/archiver", READ, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/inbox/carol/archiver", READ, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/inbox/oldsvc/archiver", READ, false, ACL_DENY_RECIPIENT},
		{"archiver", NULL, W, "chat/room/lobby/archiver", EDIT, false, ACL_OK},
		{"archiver", NULL, W, "chat/room/lobby/archiver", DELETE, false, ACL_OK},
		{"archiver", NULL, W, "chat/room/lobby/archiver", READ, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/room/lobby/archiver", REACTION, false, ACL_DENY_ENVELOPE},
		{"archiver", NULL, W, "chat/room/nowhere/archiver", EDIT, false, ACL_DENY_NOT_MEMBER},
		{"archiver", NULL, R, "chat/typing/alice/bob", TYPING, false, ACL_OK},
		{"archiver", NULL, W, "chat/typing/alice/archiver", TYPING, false, ACL_DENY_TOPIC},
		{"archiver", NULL, W, "chat/roomtyping/lobby/archiver", TYPING, false, ACL_DENY_TOPIC},
		{"alice", NULL, R, "chat/inbox/alice/archiver", READ, false, ACL_OK},
		/* Typing to a person: as myself, to whom I may write. */
		{"alice", NULL, W, "chat/typing/bob/alice", TYPING, false, ACL_OK},
		{"alice", NULL, W, "chat/typing/bob/alice", "{\"typing\":false,\"x\":[1]}", false, ACL_OK},
		{"alice", NULL, W, "chat/typing/alice/alice", TYPING, false, ACL_OK},
		{"dev1", NULL, W, "chat/typing/alice/dev1", TYPING, false, ACL_OK},
		{"alice", NULL, W, "chat/typing/bob/eve", TYPING, false, ACL_DENY_NOT_OWNER},
		{"eve", NULL, W, "chat/typing/bob/eve", TYPING, false, ACL_DENY_BLOCKED},
		{"alice", NULL, W, "chat/typing/zed/alice", TYPING, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/typing/carol/alice", TYPING, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/typing/archiver/alice", TYPING, false, ACL_DENY_RECIPIENT},
		{"alice", NULL, W, "chat/typing/bob/alice", TYPING, true, ACL_DENY_RETAIN},
		{"alice", NULL, W, "chat/typing/bob/alice", ENV, false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/typing/bob/alice", "{\"typing\":1}", false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/typing/bob/alice", "", false, ACL_DENY_ENVELOPE},
		{"alice", NULL, W, "chat/typing/bob", TYPING, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/typing/alice/+", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/typing/alice/#", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/typing/alice/bob", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/typing/bob/+", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/typing/+/alice", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/typing/+/+", NULL, false, ACL_DENY_TOPIC},
		{"alice", NULL, S, "chat/typing/#", NULL, false, ACL_DENY_TOPIC},
		{"bob", NULL, R, "chat/typing/bob/alice", TYPING, false, ACL_OK},
		{"bob", NULL, R, "chat/typing/bob/eve", TYPING, false, ACL_DENY_BLOCKED},
		{"alice", NULL, R, "chat/typing/bob/alice", TYPING, false, ACL_DENY_TOPIC},
		{"eve", NULL, R, "chat/typing/bob/alice", TYPING, false, ACL_DENY_TOPIC},
		/* Typing in a room: members only. */
		{"alice", NULL, W, "chat/roomtyping/lobby/alice", TYPING, false, ACL_OK},
		{"alice", NULL, W, "chat/roomtyping/lobby/bob", TYPING, false, ACL_DENY_NOT_OWNER},
		{"eve", NULL, W, "chat/roomtyping/lobby/eve", TYPING, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/roomtyping/nowhere/alice", TYPING, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, W, "chat/roomtyping/lobby/alice", TYPING, true, ACL_DENY_RETAIN},
		{"alice", NULL, W, "chat/roomtyping/lobby/alice", "{\"typing\":\"yes\"}", false, ACL_DENY_ENVELOPE},
		{"alice", NULL, S, "chat/roomtyping/lobby/+", NULL, false, ACL_OK},
		{"alice", NULL, S, "chat/roomtyping/lobby/#", NULL, false, ACL_OK},
		{"eve", NULL, S, "chat/roomtyping/lobby/#", NULL, false, ACL_DENY_NOT_MEMBER},
		{"alice", NULL, S, "chat/roomtyping/+/#", NULL, false, ACL_DENY_NOT_MEMBER},
		{"bob", NULL, R, "chat/roomtyping/lobby/alice", TYPING, false, ACL_OK},
		{"eve", NULL, R, "chat/roomtyping/lobby/alice", TYPING, false, ACL_DENY_NOT_MEMBER},
	};
	struct mqchat *m = *state;
	struct acl_request req = {.username = "alice", .clientid = "alice", .access = W,
		.topic = "chat/typing/bob/alice", .payload = TYPING, .payloadlen = sizeof(TYPING) - 1};

	run_rows(m, rows, sizeof(rows) / sizeof(rows[0]));
	/* Typing says so (its own rate bucket); a message does not. */
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	assert_true(req.typing);
	req.typing = false;
	req.topic = "chat/inbox/bob/alice";
	req.payload = ENV;
	req.payloadlen = sizeof(ENV) - 1;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	assert_false(req.typing);
}

#define LAST_PUBLISH (stub.publishes[stub.publish_count > 0 ? stub.publish_count - 1 : 0].payload)

/* Typing: QoS 0 subscriptions only (typing_qos), its own rate bucket of
 * TYPING_BURST at once and TYPING_RATE a second, not counted against the
 * send rate; each refusal noticed. */
static void test_typing_callback(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto client = {.id = "alice@ph", .username = "alice", .address = "10.0.0.1"};
	struct mosquitto_evt_acl_check ed;
	int i;

	throttle__init_bucket(&m->notice_limit, 1000, 1000, 1000);
	assert_int_equal(ratelimit__init(&m->typing_limit, TYPING_RATE, TYPING_BURST, 64), MQC_OK);
	assert_int_equal(ratelimit__init(&m->send_limit, 1, 1, 64), MQC_OK);
	memset(&ed, 0, sizeof(ed));
	ed.client = &client;
	ed.access = MOSQ_ACL_SUBSCRIBE;
	ed.topic = "chat/typing/alice/+";
	ed.qos = 0;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	ed.topic = "chat/roomtyping/lobby/#";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	for(i=1; i<=2; i++){
		ed.qos = i;
		assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	}
	ed.topic = "chat/typing/alice/#";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(m->acl_denied[ACL_DENY_TYPING_QOS], 3);
	assert_string_equal(acl__reason_code(ACL_DENY_TYPING_QOS), "typing_qos");
	assert_non_null(strstr(LAST_PUBLISH, "\"code\":\"typing_qos\""));
	/* The policy's refusal comes first: not my typing. */
	ed.topic = "chat/typing/bob/+";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(m->acl_denied[ACL_DENY_TYPING_QOS], 3);

	ed.access = MOSQ_ACL_WRITE;
	ed.qos = 0;
	ed.topic = "chat/typing/bob/alice";
	ed.payload = TYPING;
	ed.payloadlen = sizeof(TYPING) - 1;
	m->now_ms = 100000;
	for(i=0; i<TYPING_BURST; i++){
		assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	}
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(m->acl_denied[ACL_DENY_RATE], 1);
	assert_non_null(strstr(LAST_PUBLISH, "\"code\":\"rate_limited\""));
	assert_non_null(strstr(LAST_PUBLISH, "\"retry_ms\":"));
	/* The room's typing shares the bucket. */
	ed.topic = "chat/roomtyping/lobby/alice";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	/* Half a second later, one more. */
	m->now_ms += 1000 / TYPING_RATE;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	/* Messages have their own bucket (here 1 a second), untouched. */
	ed.topic = "chat/inbox/bob/alice";
	ed.payload = ENV;
	ed.payloadlen = sizeof(ENV) - 1;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	/* ... which typing does not touch either. */
	ed.topic = "chat/typing/bob/alice";
	ed.payload = TYPING;
	ed.payloadlen = sizeof(TYPING) - 1;
	m->now_ms += 1000;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	/* A bad payload: invalid_envelope, before any bucket. */
	ed.payload = "{\"typing\":\"no\"}";
	ed.payloadlen = (uint32_t)strlen(ed.payload);
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_non_null(strstr(LAST_PUBLISH, "\"code\":\"invalid_envelope\""));
	ratelimit__cleanup(&m->typing_limit);
	ratelimit__cleanup(&m->send_limit);
}

static void test_register(void **state)
{
	struct mqchat *m = *state;
	static const char *id = "_register@abcdefgh";
	static const struct row rows[] = {
		{"_register", "_register@abcdefgh", S, "chat/register/_register@abcdefgh/resp", NULL, false, ACL_OK},
		{"_register", "_register@abcdefgh", U, "chat/register/_register@abcdefgh/resp", NULL, false, ACL_OK},
		{"_register", "_register@abcdefgh", R, "chat/register/_register@abcdefgh/resp", "{}", false, ACL_OK},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req",
			"{\"id\":\"1\",\"user\":\"zoe\",\"password\":\"long enough\"}", false, ACL_OK},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req", "{}", true,
			ACL_DENY_RETAIN},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req", "[]", false,
			ACL_DENY_ENVELOPE},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req", "{", false,
			ACL_DENY_ENVELOPE},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req",
			"{\"a\":1,\"a\":2}", false, ACL_DENY_ENVELOPE},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/req", "", false,
			ACL_DENY_ENVELOPE},
		{"_register", "_register@abcdefgh", W, "chat/register/_register@abcdefgh/resp", "{}", false,
			ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", S, "chat/register/_register@abcdefgh/req", NULL, false,
			ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", S, "chat/register/_register@other123/resp", NULL, false,
			ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", S, "chat/register/+/resp", NULL, false, ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", S, "chat/register/#", NULL, false, ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", U, "chat/rpc/_register/resp", NULL, false, ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", S, "chat/presence/#", NULL, false, ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", W, "chat/inbox/alice/_register", ENV, false, ACL_DENY_REGISTER},
		{"_register", "_register@abcdefgh", R, "chat/inbox/alice/bob", ENV, false, ACL_DENY_REGISTER},
	};
	struct acl_request req = {.username = "_register", .clientid = id, .access = W,
		.topic = "chat/register/_register@abcdefgh/req"};
	char big[5000];

	run_rows(m, rows, sizeof(rows) / sizeof(rows[0]));
	/* Over the registration request limit. */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	req.payload = big;
	req.payloadlen = sizeof(big);
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOO_BIG);
	/* Registration off: the same topics (login_status may be asked; the
	 * callback answers registration requests "closed" itself). */
	m->cfg.registration = REGISTRATION_OFF;
	req.payload = "{}";
	req.payloadlen = 2;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
}

static void test_max_payload(void **state)
{
	struct mqchat *m = *state;
	char *p;
	size_t n = 300, body;
	struct acl_request req = {.username = "alice", .clientid = "alice", .access = W,
		.topic = "chat/inbox/bob/alice"};

	m->cfg.max_payload = 256;
	p = malloc(n + 1);
	assert_non_null(p);
	/* An envelope of exactly 256 bytes passes, 257 does not. */
	body = 256 - strlen("{\"id\":\"m\",\"type\":\"text\",\"body\":\"\"}");
	snprintf(p, n, "{\"id\":\"m\",\"type\":\"text\",\"body\":\"%0*d\"}", (int)body, 0);
	req.payload = p;
	req.payloadlen = (uint32_t)strlen(p);
	assert_int_equal(req.payloadlen, 256);
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	snprintf(p, n, "{\"id\":\"m\",\"type\":\"text\",\"body\":\"%0*d\"}", (int)body + 1, 0);
	req.payloadlen = (uint32_t)strlen(p);
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOO_BIG);
	req.topic = "chat/rpc/alice/req";
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOO_BIG);
	req.topic = "chat/room/lobby/alice";
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOO_BIG);
	free(p);
}

static void test_odd_topics(void **state)
{
	struct mqchat *m = *state;
	char longlevel[70000];
	char topic[70100];
	struct acl_request req = {.username = "alice", .clientid = "alice", .access = R};
	static const char *const denied[] = {
		"chat/inbox/alice/\xff\xfe",            /* odd bytes as sender: READ allows, see below */
		"chat//alice/bob",
		"chat/inbox/alice\x01/bob",
		"chat/inbox/ali/ce",
		"chat/inbox/alice /bob",
		"chat/inbox/ALICE/bob",
		"chat/presence/\xc3\xa9",
		"chat/rpc/alice/resp/",
		"////",
		"/",
		"chat/room/lobby\xff/bob",
	};
	size_t i;

	/* Odd bytes in the sender level of my own inbox: the message got there
	 * through a WRITE check, so READ lets it through (it cannot exist). */
	req.topic = denied[0];
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	for(i=1; i<sizeof(denied)/sizeof(denied[0]); i++){
		req.topic = denied[i];
		if(acl__decide(m, m->snap, &req) == ACL_OK){
			print_error("allowed: %s\n", denied[i]);
			fail();
		}
	}
	/* Very long levels: looked up by length, refused, nothing overruns. */
	memset(longlevel, 'a', sizeof(longlevel) - 1);
	longlevel[sizeof(longlevel) - 1] = '\0';
	snprintf(topic, sizeof(topic), "chat/inbox/%s/alice", longlevel);
	req.topic = topic;
	req.access = W;
	req.payload = ENV;
	req.payloadlen = (uint32_t)strlen(ENV);
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_RECIPIENT);
	snprintf(topic, sizeof(topic), "chat/room/%s/alice", longlevel);
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_NOT_MEMBER);
	snprintf(topic, sizeof(topic), "chat/inbox/alice/%s", longlevel);
	req.access = S;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_TOPIC);
	/* A 33-character name is no account even if its first 32 are. */
	assert_non_null(snapshot__add_user(m->snap, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", USER_KIND_USER,
			true, HASH));
	req.topic = "chat/inbox/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/alice";
	req.access = W;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_DENY_RECIPIENT);
	req.topic = "chat/inbox/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/alice";
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
}

static void test_callback_counts_and_logs(void **state)
{
	struct mqchat *m = *state;
	struct mosquitto client = {.id = "alice", .username = "alice", .address = "10.0.0.1"};
	struct mosquitto_evt_acl_check ed;
	int i;

	memset(&ed, 0, sizeof(ed));
	ed.client = &client;
	ed.access = MOSQ_ACL_SUBSCRIBE;
	ed.topic = "chat/inbox/alice/#";
	ed.qos = 1;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	assert_int_equal(stub.log_count, 0);
	/* Messages need a QoS 1 subscription; presence may be taken at QoS 0. */
	ed.qos = 0;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(m->acl_denied[ACL_DENY_QOS], 1);
	ed.topic = "chat/presence/+";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	/* A connection holding max_subscriptions may take no more. */
	stub.sub_count = m->cfg.max_subscriptions;
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(m->acl_denied[ACL_DENY_SUBSCRIPTIONS], 1);
	ed.topic = "chat/inbox/alice/#";
	ed.qos = 1;
	stub_reset();

	m->log.rate = 3;
	fake_now = 5000;
	ed.topic = "#";
	for(i=0; i<10; i++){
		assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	}
	assert_int_equal(m->acl_denied[ACL_DENY_TOPIC], 10);
	assert_int_equal(stub.log_count, 3);
	assert_int_equal(stub_log_contains("mqchat: denied subscribe of \"#\" to alice (10.0.0.1)"), 3);
	/* The next second reports what was dropped. */
	fake_now = 6000;
	plog__flush(&m->log, fake_now);
	assert_int_equal(stub_log_contains("mqchat: 7 messages suppressed"), 1);

	/* A username with control bytes is logged escaped. */
	client.username = "ev\nil";
	ed.topic = "chat/inbox/x/#";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
	assert_null(strchr(stub.last_log, '\n'));
	assert_int_equal(m->acl_denied[ACL_DENY_NO_USER], 1);

	/* The registration pseudo-user is decided by its client id, which the
	 * callback fetches for it (and only for it). */
	client.username = REGISTER_USER;
	client.id = "_register@dev1";
	ed.access = MOSQ_ACL_SUBSCRIBE;
	ed.topic = "chat/register/_register@dev1/resp";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_SUCCESS);
	ed.topic = "chat/register/_register@dev2/resp";
	assert_int_equal(acl__check_cb(MOSQ_EVT_ACL_CHECK, &ed, m), MOSQ_ERR_ACL_DENIED);
}

/* The first len characters of a 32-byte name: every prefix is an account. */
static const char NAME32[] = "abcdefghijklmnopqrstuvwxyz012345";

static enum acl_reason decide_topic(struct mqchat *m, const char *user, size_t ulen, int access,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* acl__decide for user[0..ulen) on the formatted topic, an exact-size copy. */
static enum acl_reason decide_topic(struct mqchat *m, const char *user, size_t ulen, int access,
		const char *fmt, ...)
{
	char buf[256], name[NAME_MAX_LEN + 1], *topic;
	va_list ap;
	enum acl_reason r;
	struct acl_request req = {.access = access, .payload = ENV, .payloadlen = (uint32_t)strlen(ENV)};

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	topic = strdup(buf);
	assert_non_null(topic);
	memcpy(name, user, ulen);
	name[ulen] = '\0';
	req.username = name;
	req.clientid = name;
	req.topic = topic;
	r = acl__decide(m, m->snap, &req);
	free(topic);
	return r;
}

static void test_name_lengths(void **state)
{
	struct mqchat *m = *state;
	char name[NAME_MAX_LEN + 1];
	size_t to, from, pos;

	for(to=1; to<=NAME_MAX_LEN; to++){
		memcpy(name, NAME32, to);
		name[to] = '\0';
		assert_non_null(snapshot__add_user(m->snap, name, USER_KIND_USER, true, HASH));
	}
	for(to=1; to<=NAME_MAX_LEN; to++){
		/* Found by its own length, and a prefix finds the shorter account. */
		assert_non_null(snapshot__user(m->snap, NAME32, to));
		assert_int_equal(snapshot__user(m->snap, NAME32, to)->len, to);
		for(from=1; from<=NAME_MAX_LEN; from++){
			const int tl = (int)to, fl = (int)from;

			assert_int_equal(decide_topic(m, NAME32, from, W, "chat/inbox/%.*s/%.*s", tl, NAME32,
						fl, NAME32), ACL_OK);
			assert_int_equal(decide_topic(m, NAME32, to, R, "chat/inbox/%.*s/%.*s", tl, NAME32,
						fl, NAME32), ACL_OK);
			/* The sender reads its own message's copy (carbons); a
			 * name one longer or shorter than both is nobody's. */
			assert_int_equal(decide_topic(m, NAME32, from, R, "chat/inbox/%.*s/%.*s", tl,
						NAME32, fl, NAME32), ACL_OK);
			if(to != from){
				size_t other = 1;

				while(other == to || other == from) other++;
				assert_int_equal(decide_topic(m, NAME32, other, R, "chat/inbox/%.*s/%.*s", tl,
							NAME32, fl, NAME32), ACL_DENY_TOPIC);
				assert_int_equal(decide_topic(m, NAME32, to, W, "chat/inbox/%.*s/%.*s", tl,
							NAME32, fl, NAME32), ACL_DENY_NOT_OWNER);
			}
			assert_int_equal(decide_topic(m, NAME32, from, W, "chat/inbox/%.*s/%.*s/", tl, NAME32,
						fl, NAME32), ACL_DENY_TOPIC);
			assert_int_equal(decide_topic(m, NAME32, from, W, "chat/inbox/%.*s/%.*s/x", tl, NAME32,
						fl, NAME32), ACL_DENY_TOPIC);
			assert_int_equal(decide_topic(m, NAME32, from, R, "chat/inbox/%.*s/%.*s//%.*s", tl,
						NAME32, fl, NAME32, tl, NAME32), ACL_DENY_TOPIC);
		}
		/* One byte different anywhere: no such account. */
		for(pos=0; pos<to; pos++){
			memcpy(name, NAME32, to);
			name[to] = '\0';
			name[pos] = '_';
			assert_null(snapshot__user(m->snap, name, to));
			assert_int_equal(decide_topic(m, "alice", 5, W, "chat/inbox/%s/alice", name),
					ACL_DENY_RECIPIENT);
			assert_int_equal(decide_topic(m, name, to, R, "chat/inbox/%s/alice", name),
					ACL_DENY_NO_USER);
		}
	}
}

/* The word-wise name compare and hash: any one byte different, at any
 * position of a key of any length 0..40, is told apart; equal bytes in
 * different places compare and hash equal. Each key is an exact-size heap
 * block, so a read outside it is an error under SAN=1. */
static void test_name_eq_and_hash(void **state)
{
	static const unsigned char deltas[] = {0x01, 0x20, 0x80, 0xff};
	size_t len, pos, d;

	(void)state;
	for(len=0; len<=40; len++){
		unsigned char *a = malloc(len + 1), *b = malloc(len + 1);

		assert_non_null(a);
		assert_non_null(b);
		for(pos=0; pos<len; pos++) a[pos] = (unsigned char)('a' + pos % 26);
		memcpy(b, a, len);
		assert_true(snapshot__name_eq(a, b, len));
		assert_int_equal(snapshot__name_hash(a, len), snapshot__name_hash(b, len));
		for(pos=0; pos<len; pos++){
			for(d=0; d<sizeof(deltas); d++){
				b[pos] = (unsigned char)(a[pos] ^ deltas[d]);
				if(snapshot__name_eq(a, b, len) || snapshot__name_eq(b, a, len)){
					fail_msg("length %zu: byte %zu ^ 0x%02x compares equal", len, pos, deltas[d]);
				}
				b[pos] = a[pos];
			}
		}
		free(a);
		free(b);
	}
}

/* The bucket is picked by the hash's low bits: names that differ only in
 * their last bytes, their first or their middle ones must still spread over
 * the buckets about as a random hash would (sum of squared bucket sizes over
 * the names: 1 + n / buckets for a random one, 1.76 here). */
static void test_name_hash_spreads(void **state)
{
	static const struct {
		const char *head;
		int width;
		const char *tail;
	} shapes[] = {
		{"user", 6, ""}, {"u", 0, ""}, {"", 8, "xxxxxxxxxxxxxxxxxxxxxxxx"},
		{"xxxxxxxxxxxx", 8, "xxxxxxxxxxxx"}, {"xxxxxxxxxxxxxxxxxxxxxxxx", 8, ""},
		{"x", 5, "y"}, {"room-", 0, ".x"},
	};
	enum { NAMES = 100000, BUCKETS = 1 << 17 };
	unsigned *count = calloc(BUCKETS, sizeof(*count));
	size_t k;
	int i;

	(void)state;
	assert_non_null(count);
	for(k=0; k<sizeof(shapes)/sizeof(shapes[0]); k++){
		double sq = 0;
		char name[64];

		memset(count, 0, BUCKETS * sizeof(*count));
		for(i=0; i<NAMES; i++){
			int n = snprintf(name, sizeof(name), "%s%0*d%s", shapes[k].head, shapes[k].width, i,
					shapes[k].tail);
			count[snapshot__name_hash(name, (size_t)n) & (BUCKETS - 1)]++;
		}
		for(i=0; i<BUCKETS; i++) sq += (double)count[i] * count[i];
		if(sq / NAMES > 2.0){
			fail_msg("%s%0*d%s: %.2f items per probe", shapes[k].head, shapes[k].width, 0,
					shapes[k].tail, sq / NAMES);
		}
	}
	free(count);
}

/* A '/' in place of every byte of the names of an allowed 76-byte topic
 * (32-byte names, so it spans five 16-byte blocks and the 64-byte mask):
 * the levels change, and the answer is never "allowed". */
static void test_slash_everywhere(void **state)
{
	struct mqchat *m = *state;
	char topic[128], *copy;
	size_t len, k;
	struct acl_request req = {.access = W, .payload = ENV, .payloadlen = (uint32_t)strlen(ENV)};

	assert_non_null(snapshot__add_user(m->snap, NAME32, USER_KIND_USER, true, HASH));
	req.username = NAME32;
	req.clientid = NAME32;
	len = (size_t)snprintf(topic, sizeof(topic), "chat/inbox/%s/%s", NAME32, NAME32);
	req.topic = topic;
	assert_int_equal(acl__decide(m, m->snap, &req), ACL_OK);
	for(k=0; k<len; k++){
		char was = topic[k];

		if(was == '/') continue;
		topic[k] = '/';
		copy = strdup(topic);
		assert_non_null(copy);
		req.topic = copy;
		if(acl__decide(m, m->snap, &req) == ACL_OK) fail_msg("allowed with '/' at %zu: %s", k, copy);
		free(copy);
		topic[k] = was;
	}
}

/* Not a correctness test: prints ns per decision for plugin/README.md. */
static void test_bench(void **state)
{
	struct mqchat *m = *state;
	const long n = getenv("MQCHAT_BENCH") ? 2000000 : 200000;
	struct acl_request rd = {.username = "bob", .clientid = "bob", .access = R,
		.topic = "chat/room/lobby/alice", .payload = ENV, .payloadlen = (uint32_t)strlen(ENV)};
	struct acl_request rdi = rd, wr = rd;
	int64_t t0, t1, t2, t3;
	long i, ok = 0;

	rdi.topic = "chat/inbox/bob/alice";
	wr.username = "alice";
	wr.access = W;
	wr.topic = "chat/inbox/bob/alice";
	t0 = time__mono_ns();
	for(i=0; i<n; i++) ok += acl__decide(m, m->snap, &rd) == ACL_OK;
	t1 = time__mono_ns();
	for(i=0; i<n; i++) ok += acl__decide(m, m->snap, &rdi) == ACL_OK;
	t2 = time__mono_ns();
	for(i=0; i<n; i++) ok += acl__decide(m, m->snap, &wr) == ACL_OK;
	t3 = time__mono_ns();
	assert_int_equal(ok, 3 * n);
	printf("# acl bench: READ room %.0f ns, READ inbox %.0f ns, WRITE inbox+envelope (%zu B) %.0f ns\n",
			(double)(t1 - t0) / (double)n, (double)(t2 - t1) / (double)n, strlen(ENV),
			(double)(t3 - t2) / (double)n);
}

/* The user cache: a username pointer reused for another name (a client
 * freed, another one's name allocated at the same address) resolves to
 * the new name, a shorter or unknown one to nobody, and a snapshot swap
 * forgets every entry. */
static void test_user_cache(void **state)
{
	struct mqchat *m = *state;
	char name[16] = "bob";
	struct acl_request req = {.username = name, .access = R, .topic = "chat/inbox/bob/alice"};
	struct snapshot *s;

	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);           /* a hit */
	strcpy(name, "eve");                    /* same address, another client */
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_TOPIC);
	strcpy(name, "alice");                  /* the sender: its own copy */
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	req.topic = "chat/inbox/alice/bob";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	strcpy(name, "alic");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NO_USER);
	strcpy(name, "alicee");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NO_USER);
	strcpy(name, "alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);

	/* A new snapshot where alice is disabled: the cached entry must go. */
	s = snapshot__new();
	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, false, HASH));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, HASH));
	tick__swap_snapshot(m, s);
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_DISABLED);
}

/* The room-topic cache: one message checked for many subscribers reuses
 * its levels and room, but a topic at the same address with other bytes,
 * another access kind, a non-member and a swapped snapshot all get a
 * full decision. */
static void test_topic_cache(void **state)
{
	struct mqchat *m = *state;
	char topic[200] = "chat/room/lobby/alice";
	struct acl_request req = {.access = R, .topic = topic};
	struct snapshot *s;

	req.username = "bob";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	assert_ptr_equal(m->acl_cache.topic.topic, topic);
	req.username = "dev1";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);              /* a hit */
	req.username = "eve";                   /* not in lobby */
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NOT_MEMBER);
	req.username = "carol";                 /* a member, but disabled */
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_DISABLED);

	/* Same address, other bytes: a room eve is not in, one that does not
	 * exist, a topic too deep, an inbox. */
	strcpy(topic, "chat/room/empty/alice");
	req.username = "bob";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NOT_MEMBER);
	strcpy(topic, "chat/room/lobby/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	strcpy(topic, "chat/room/lobbz/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NOT_MEMBER);
	strcpy(topic, "chat/room/lobby/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	strcpy(topic, "chat/room/lobby/alice/x");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_TOPIC);
	strcpy(topic, "chat/room/lobby/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	strcpy(topic, "chat/room/lobby/alic");          /* shorter, same prefix */
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	assert_string_equal(m->acl_cache.topic.copy, topic);
	strcpy(topic, "chat/inbox/bob/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	req.username = "dev1";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_TOPIC);

	/* Other accesses never take the shortcut: a WRITE of a kept topic is
	 * still checked for the sender and the envelope. */
	strcpy(topic, "chat/room/lobby/alice");
	req.username = "bob";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	req.access = W;
	req.payload = "not json";
	req.payloadlen = 8;
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NOT_OWNER);
	req.username = "alice";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_ENVELOPE);
	req.access = R;

	/* A topic too long to keep is decided in full every time. */
	memset(topic, 0, sizeof(topic));
	strcpy(topic, "chat/room/lobby/");
	memset(topic + strlen(topic), 'a', 150);
	req.username = "bob";
	m->acl_cache.topic.topic = NULL;
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);      /* READ: membership only */
	assert_null(m->acl_cache.topic.topic);

	/* A new snapshot without bob in lobby: the kept room must go. */
	strcpy(topic, "chat/room/lobby/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_OK);
	s = snapshot__new();
	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_room(s, "lobby"));
	assert_int_equal(snapshot__add_member(s, "lobby", "alice"), 0);
	tick__swap_snapshot(m, s);
	assert_null(m->acl_cache.topic.topic);
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &req), ACL_DENY_NOT_MEMBER);
}

/* A WRITE through the cache, of topic (copied to its own heap string, so
 * every publish has a new topic pointer as the broker's have), by the
 * account named at username. */
static enum acl_reason publish(struct mqchat *m, const char *username, const char *topic,
		const char *payload, bool retain)
{
	char *t = strdup(topic);
	struct acl_request req = {.username = username, .access = W, .topic = t,
		.payload = payload, .payloadlen = (uint32_t)strlen(payload), .retain = retain};
	enum acl_reason r;

	assert_non_null(t);
	r = aclcache__decide(m, m->snap, &m->acl_cache, &req);
	free(t);
	return r;
}

/* The published-on topic kept per account: the next publish on the same
 * bytes skips the topic checks but never the payload's, and nothing kept
 * for one account, one topic or one snapshot answers for another. */
static void test_sent_cache(void **state)
{
	struct mqchat *m = *state;
	char name[40] = "alice";
	char topic[80];
	struct acl_request rd = {.access = R, .topic = topic};
	struct acl_request wr = {.username = name, .access = W, .topic = topic, .payload = ENV,
		.payloadlen = (uint32_t)strlen(ENV)};
	struct acl_cache_user *e;
	struct snapshot *s;

	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_OK);
	e = NULL;
	for(size_t i=0; i<ACL_CACHE_USERS; i++){
		if(m->acl_cache.users[i].username == name) e = &m->acl_cache.users[i];
	}
	assert_non_null(e);
	assert_string_equal(e->sent, "chat/inbox/bob/alice");
	assert_int_equal(e->sent_kind, ACL_TOPIC_INBOX);

	/* The same bytes again: the payload is still checked. */
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_OK);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", "{\"id\":\"m1\"}", false),
			ACL_DENY_ENVELOPE);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", "not json", false),
			ACL_DENY_ENVELOPE);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, true), ACL_DENY_RETAIN);
	m->cfg.max_payload = 8;
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_DENY_TOO_BIG);
	m->cfg.max_payload = 65536;

	/* A hit keeps the topic for the message's deliveries: bob reads it,
	 * eve (not the recipient) does not. */
	strcpy(topic, "chat/inbox/bob/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &wr), ACL_OK);
	assert_ptr_equal(m->acl_cache.topic.topic, topic);
	rd.username = "bob";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &rd), ACL_OK);
	rd.username = "eve";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &rd), ACL_DENY_TOPIC);

	/* Other bytes, however close, get every check - and a denied topic
	 * does not replace the kept one. */
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice/x", ENV, false), ACL_DENY_TOPIC);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alic", ENV, false), ACL_DENY_NOT_OWNER);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alicee", ENV, false), ACL_DENY_NOT_OWNER);
	assert_int_equal(publish(m, name, "chat/inbox/bo/alice", ENV, false), ACL_DENY_RECIPIENT);
	assert_int_equal(publish(m, name, "chat/inbox/carol/alice", ENV, false), ACL_DENY_RECIPIENT);
	assert_int_equal(publish(m, name, "chat/inbox/archiver/alice", ENV, false),
			ACL_DENY_RECIPIENT);
	assert_int_equal(publish(m, name, "chat/room/empty/alice", ENV, false), ACL_DENY_NOT_MEMBER);
	assert_string_equal(e->sent, "chat/inbox/bob/alice");
	assert_int_equal(publish(m, name, "chat/inbox/eve/alice", ENV, false), ACL_OK);
	assert_string_equal(e->sent, "chat/inbox/eve/alice");

	/* Another account never gets alice's topic: bob as the sender in
	 * alice's name, and alice's username buffer reused for eve and for
	 * bob (a freed client's address given to another). */
	assert_int_equal(publish(m, "bob", "chat/inbox/eve/alice", ENV, false), ACL_DENY_NOT_OWNER);
	strcpy(name, "eve");
	assert_int_equal(publish(m, name, "chat/inbox/eve/alice", ENV, false), ACL_DENY_NOT_OWNER);
	strcpy(name, "bob");
	assert_int_equal(publish(m, name, "chat/inbox/eve/alice", ENV, false), ACL_DENY_NOT_OWNER);
	/* eve blocks nobody, but bob blocks eve: eve's publish to bob after
	 * bob's own to eve. */
	assert_int_equal(publish(m, name, "chat/inbox/eve/bob", ENV, false), ACL_OK);
	strcpy(name, "eve");
	assert_int_equal(publish(m, name, "chat/inbox/bob/eve", ENV, false), ACL_DENY_BLOCKED);
	assert_int_equal(publish(m, name, "chat/inbox/bob/eve", ENV, false), ACL_DENY_BLOCKED);

	/* A room: kept for the room's deliveries too. */
	strcpy(name, "alice");
	assert_int_equal(publish(m, name, "chat/room/lobby/alice", ENV, false), ACL_OK);
	strcpy(topic, "chat/room/lobby/alice");
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &wr), ACL_OK);
	rd.username = "dev1";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &rd), ACL_OK);
	rd.username = "eve";
	assert_int_equal(aclcache__decide(m, m->snap, &m->acl_cache, &rd), ACL_DENY_NOT_MEMBER);
	assert_int_equal(publish(m, "eve", "chat/room/lobby/eve", ENV, false), ACL_DENY_NOT_MEMBER);

	/* A topic too long to keep is checked in full every time. */
#define LONG_A "a234567890123456789012345678901"
#define LONG_B "b234567890123456789012345678901"
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_OK);
	assert_non_null(snapshot__add_user(m->snap, LONG_A, USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(m->snap, LONG_B, USER_KIND_USER, true, HASH));
	strcpy(name, LONG_A);
	assert_int_equal(publish(m, name, "chat/inbox/" LONG_B "/" LONG_A, ENV, false), ACL_OK);
	assert_int_equal(e->sent_kind, 0);
	assert_int_equal(publish(m, name, "chat/inbox/" LONG_B "/" LONG_A, ENV, false), ACL_OK);
	assert_int_equal(publish(m, name, "chat/inbox/" LONG_B "/" LONG_A, "{}", false),
			ACL_DENY_ENVELOPE);
	assert_int_equal(publish(m, name, "chat/inbox/bob/" LONG_A, ENV, false), ACL_OK);
	assert_string_equal(e->sent, "chat/inbox/bob/" LONG_A);
#undef LONG_A
#undef LONG_B

	/* A new snapshot where bob blocks alice and lobby is gone: nothing
	 * kept answers for it. */
	strcpy(name, "alice");
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_OK);
	s = snapshot__new();
	assert_non_null(s);
	assert_non_null(snapshot__add_user(s, "alice", USER_KIND_USER, true, HASH));
	assert_non_null(snapshot__add_user(s, "bob", USER_KIND_USER, true, HASH));
	assert_int_equal(snapshot__add_block(s, "bob", "alice"), 0);
	tick__swap_snapshot(m, s);
	assert_int_equal(publish(m, name, "chat/inbox/bob/alice", ENV, false), ACL_DENY_BLOCKED);
	assert_int_equal(publish(m, name, "chat/room/lobby/alice", ENV, false), ACL_DENY_NOT_MEMBER);
}

static void test_presence_privacy(void **state)
{
	struct mqchat *m = *state;
	static const struct row before[] = {
		{"eve", NULL, R, "chat/presence/bob", "{}", true, ACL_DENY_PRIVATE},
		{"bob", NULL, R, "chat/presence/eve", "{}", true, ACL_DENY_PRIVATE},
		{"alice", NULL, R, "chat/presence/bob", "{}", true, ACL_OK},
	};
	static const struct row added[] = {
		/* bob added eve: she sees him; it does not make him hers. */
		{"eve", NULL, R, "chat/presence/bob", "{}", true, ACL_OK},
		{"bob", NULL, R, "chat/presence/eve", "{}", true, ACL_DENY_PRIVATE},
	};
	static const struct row settings[] = {
		/* eve shows herself to everyone; alice to nobody, not even to
		 * bob in her room, but to herself. */
		{"bob", NULL, R, "chat/presence/eve", "{}", true, ACL_OK},
		{"dev1", NULL, R, "chat/presence/eve", "{}", true, ACL_OK},
		{"bob", NULL, R, "chat/presence/alice", "{}", true, ACL_DENY_PRIVATE},
		{"alice", NULL, R, "chat/presence/alice", "{}", true, ACL_OK},
	};

	run_rows(m, before, sizeof(before) / sizeof(before[0]));
	assert_int_equal(snapshot__add_contact(m->snap, "bob", "eve"), MQC_OK);
	memset(&m->acl_cache, 0, sizeof(m->acl_cache));
	run_rows(m, added, sizeof(added) / sizeof(added[0]));
	assert_int_equal(snapshot__set_privacy(m->snap, "eve", PRIVACY_EVERYONE, PRIVACY_CONTACTS), MQC_OK);
	assert_int_equal(snapshot__set_privacy(m->snap, "alice", PRIVACY_NOBODY, PRIVACY_CONTACTS), MQC_OK);
	assert_int_equal(snapshot__set_privacy(m->snap, "zed", PRIVACY_NOBODY, PRIVACY_CONTACTS),
			MQC_ERR_NOTFOUND);
	memset(&m->acl_cache, 0, sizeof(m->acl_cache));
	run_rows(m, settings, sizeof(settings) / sizeof(settings[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_user_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_presence_rpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_privacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_resync_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conversations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_typing_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_topics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_counts_and_logs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_lengths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_topic_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_cache, setup, teardown),
		cmocka_unit_test(test_name_eq_and_hash),
		cmocka_unit_test(test_name_hash_spreads),
		cmocka_unit_test_setup_teardown(test_slash_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
