/* test_push.c - the push thread's pure rules (archiver/push.c) and the
 * senders' (archiver/push_send.c): who is told, the conversation's name,
 * retry timing (backoff, Retry-After, giving up after 24 h), previews cut
 * at a character, what each provider's answer means, the notification's
 * JSON, Web Push's Topic and origins, and which URLs are accepted. The
 * requests themselves are checked end to end against the fake providers
 * (tests/integration/test_push*.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"
#include "push.h"
#include "push_send.h"

struct names {
	char v[8][40];
	int n;
};

static void collect(const char *name, void *arg)
{
	struct names *ns = arg;

	snprintf(ns->v[ns->n++], sizeof(ns->v[0]), "%s", name);
}

static void test_recipients(void **state)
{
	const char *members[] = {"alice", "bob", "carol"};
	struct names ns = {0};

	(void)state;
	/* A direct message: its recipient, not a note to self. */
	assert_int_equal(push__recipients("alice", "bob", NULL, NULL, 0, collect, &ns), 1);
	assert_string_equal(ns.v[0], "bob");
	ns.n = 0;
	assert_int_equal(push__recipients("alice", "alice", NULL, NULL, 0, collect, &ns), 0);
	assert_int_equal(ns.n, 0);
	/* A room: every member but the sender. */
	assert_int_equal(push__recipients("bob", NULL, "lobby", members, 3, collect, &ns), 2);
	assert_string_equal(ns.v[0], "alice");
	assert_string_equal(ns.v[1], "carol");
	ns.n = 0;
	assert_int_equal(push__recipients("dora", NULL, "lobby", members, 3, collect, &ns), 3);
}

static void test_conv(void **state)
{
	char conv[40];

	(void)state;
	assert_true(push__conv("alice", NULL, conv, sizeof(conv)));
	assert_string_equal(conv, "d:alice");
	assert_true(push__conv("alice", "lobby", conv, sizeof(conv)));
	assert_string_equal(conv, "r:lobby");
	assert_false(push__conv("alice", "lobby", conv, 5));
}

static void test_backoff(void **state)
{
	int64_t d;
	int i;

	(void)state;
	/* 1 s doubling, with at most a quarter of jitter on top. */
	for(i = 1; i <= 10; i++){
		int64_t base = 1000LL << (i - 1);

		if(base > PUSH_BACKOFF_MAX_MS) base = PUSH_BACKOFF_MAX_MS;
		assert_int_equal(push__backoff_ms(i, 0, 0), base);
		d = push__backoff_ms(i, 0, 0xffffffffu);
		assert_true(d >= base && d <= base + base / 4);
	}
	assert_int_equal(push__backoff_ms(200, 0, 0), PUSH_BACKOFF_MAX_MS);
	assert_int_equal(push__backoff_ms(1000000, 0, 7), PUSH_BACKOFF_MAX_MS + 7);
	/* A provider's Retry-After is honoured when it asks for longer. */
	assert_int_equal(push__backoff_ms(1, 30000, 0), 30000);
	assert_int_equal(push__backoff_ms(12, 30000, 0), PUSH_BACKOFF_MAX_MS);
}

static void test_give_up_after_a_day(void **state)
{
	int64_t total = 0;
	int attempts = 0;

	(void)state;
	assert_false(push__give_up(0));
	assert_false(push__give_up(1));
	/* The first attempts whose backoffs (without jitter) reach 24 h. */
	while(total < PUSH_GIVE_UP_MS){
		total += push__backoff_ms(attempts + 1, 0, 0);
		attempts++;
	}
	assert_false(push__give_up(attempts - 1));
	assert_true(push__give_up(attempts));
	assert_true(push__give_up(attempts + 100));
	assert_true(attempts > 100 && attempts < 200);
}

static void test_retry_after(void **state)
{
	/* RFC 9110's example date, 784111777 s since the epoch. */
	const int64_t date_ms = 784111777LL * 1000;

	(void)state;
	assert_int_equal(push__retry_after_ms("120", 0), 120000);
	assert_int_equal(push__retry_after_ms("0", 0), 0);
	assert_int_equal(push__retry_after_ms("", 0), -1);
	assert_int_equal(push__retry_after_ms(NULL, 0), -1);
	assert_int_equal(push__retry_after_ms("12a", 0), -1);
	assert_int_equal(push__retry_after_ms("-5", 0), -1);
	assert_int_equal(push__retry_after_ms("99999999999999999999", 0), -1);
	assert_int_equal(push__retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", date_ms - 5000), 5000);
	assert_int_equal(push__retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", date_ms + 5000), 0);
	assert_int_equal(push__retry_after_ms("soon", date_ms), -1);
}

static void test_preview(void **state)
{
	char text[1024], *p;
	size_t i;

	(void)state;
	p = push__preview("see you at 8");
	assert_string_equal(p, "see you at 8");
	free(p);
	memset(text, 'a', 250);
	text[250] = '\0';
	p = push__preview(text);
	assert_int_equal(strlen(p), PUSH_PREVIEW_MAX);
	free(p);
	/* Characters, not bytes: 300 two-byte characters give 200 whole ones. */
	for(i = 0; i < 300; i++) memcpy(text + 2 * i, "\xc3\xa9", 2);
	text[600] = '\0';
	p = push__preview(text);
	assert_int_equal(strlen(p), 2 * PUSH_PREVIEW_MAX);
	assert_int_equal((unsigned char)p[399], 0xa9);
	free(p);
	/* A four-byte character across the limit is kept whole. */
	memset(text, 'b', 199);
	memcpy(text + 199, "\xf0\x9f\x98\x80zz", 7);
	p = push__preview(text);
	assert_int_equal(strlen(p), 203);
	free(p);
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(push_send__classify(PUSH_WEBPUSH, 201, NULL), PUSH_SENT);
	assert_int_equal(push_send__classify(PUSH_WEBHOOK, 204, ""), PUSH_SENT);
	assert_int_equal(push_send__classify(PUSH_WEBPUSH, 410, NULL), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_WEBPUSH, 404, NULL), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_WEBHOOK, 410, NULL), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_FCM, 404, "{}"), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_FCM, 400,
			"{\"error\":{\"details\":[{\"errorCode\":\"UNREGISTERED\"}]}}"), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_FCM, 400, "{\"error\":{\"status\":\"INVALID_ARGUMENT\"}}"),
			PUSH_FAILED);
	assert_int_equal(push_send__classify(PUSH_APNS, 410, "{\"reason\":\"Unregistered\"}"), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_APNS, 400, "{\"reason\":\"BadDeviceToken\"}"), PUSH_GONE);
	assert_int_equal(push_send__classify(PUSH_APNS, 400, "{\"reason\":\"BadTopic\"}"), PUSH_FAILED);
	assert_int_equal(push_send__classify(PUSH_APNS, 404, NULL), PUSH_FAILED);
	/* Later: too many requests, the service's trouble, no answer. */
	assert_int_equal(push_send__classify(PUSH_APNS, 429, NULL), PUSH_RETRY);
	assert_int_equal(push_send__classify(PUSH_FCM, 503, NULL), PUSH_RETRY);
	assert_int_equal(push_send__classify(PUSH_WEBHOOK, 500, NULL), PUSH_RETRY);
	assert_int_equal(push_send__classify(PUSH_WEBPUSH, 0, NULL), PUSH_RETRY);
	/* Any other refusal is final. */
	assert_int_equal(push_send__classify(PUSH_WEBPUSH, 400, NULL), PUSH_FAILED);
	assert_int_equal(push_send__classify(PUSH_WEBHOOK, 403, NULL), PUSH_FAILED);
	assert_int_equal(push_send__classify(PUSH_WEBHOOK, 302, NULL), PUSH_FAILED);
}

static void test_notification(void **state)
{
	struct push_job job;
	json_t *n;
	char *s;

	(void)state;
	memset(&job, 0, sizeof(job));
	strcpy(job.conv, "d:bob");
	strcpy(job.sender, "bob");
	strcpy(job.msg_id, "m1");
	job.last_seq = 123;
	job.count = 3;
	n = push_send__notification(&job);
	s = json_dumps(n, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"count\":3,\"from\":\"bob\",\"id\":\"m1\",\"seq\":123,\"type\":\"message\","
			"\"with\":\"bob\"}");
	free(s);
	json_decref(n);
	strcpy(job.conv, "r:lobby");
	strcpy(job.sender, "carol");
	job.count = 1;
	job.preview = (char *)"see you at 8";
	n = push_send__notification(&job);
	s = json_dumps(n, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"body\":\"see you at 8\",\"count\":1,\"from\":\"carol\",\"id\":\"m1\","
			"\"room\":\"lobby\",\"seq\":123,\"type\":\"message\"}");
	free(s);
	json_decref(n);
}

static void test_topic_and_origin(void **state)
{
	char a[33], b[33], o[256];
	size_t i;

	(void)state;
	push_send__topic("d:bob", a);
	push_send__topic("d:bob", b);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 32);
	for(i = 0; i < 32; i++) assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
	push_send__topic("d:carol", b);
	assert_string_not_equal(a, b);

	assert_true(push_send__origin("https://push.example.net/wpush/v2/abc?x=1", o, sizeof(o)));
	assert_string_equal(o, "https://push.example.net");
	assert_true(push_send__origin("http://127.0.0.1:8080/sub/1", o, sizeof(o)));
	assert_string_equal(o, "http://127.0.0.1:8080");
	assert_false(push_send__origin("not a url", o, sizeof(o)));
	assert_false(push_send__origin("https://push.example.net/x", o, 10));
}

static void test_url_ok(void **state)
{
	char big[3000];

	(void)state;
	assert_true(push__url_ok("https://fcm.googleapis.com", 0));
	assert_true(push__url_ok("https://push.example.net/a/b?c=d", 0));
	assert_false(push__url_ok("http://127.0.0.1:9/hook", 0));
	assert_true(push__url_ok("http://127.0.0.1:9/hook", 1));
	assert_false(push__url_ok("ftp://example.net/x", 1));
	assert_false(push__url_ok("file:///etc/passwd", 1));
	assert_false(push__url_ok("https://user:pw@example.net/", 0));
	assert_false(push__url_ok("/relative/path", 1));
	assert_false(push__url_ok("", 1));
	assert_false(push__url_ok(NULL, 1));
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "https://x.net/", 14);
	big[sizeof(big) - 1] = '\0';
	assert_false(push__url_ok(big, 0));
}

/* Is text (an IPv4 or IPv6 address) public? */
static bool public_addr(const char *text)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if(inet_pton(AF_INET, text, &a4.sin_addr) == 1){
		a4.sin_family = AF_INET;
		return push_send__public_addr((const struct sockaddr *)&a4);
	}
	assert_int_equal(inet_pton(AF_INET6, text, &a6.sin6_addr), 1);
	a6.sin6_family = AF_INET6;
	return push_send__public_addr((const struct sockaddr *)&a6);
}

static void test_public_addresses_only(void **state)
{
	static const char *inside[] = {
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1",
		"198.18.0.1", "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "64:ff9b::a00:1",
	};
	static const char *outside[] = {
		"1.1.1.1", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "142.250.74.110",
		"2a00:1450:4001:80b::200a", "2606:4700:4700::1111", "::ffff:8.8.8.8",
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(inside) / sizeof(inside[0]); i++){
		if(public_addr(inside[i])) fail_msg("%s taken for public", inside[i]);
	}
	for(i = 0; i < sizeof(outside) / sizeof(outside[0]); i++){
		if(!public_addr(outside[i])) fail_msg("%s taken for inside", outside[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_conv),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_give_up_after_a_day),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_preview),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_notification),
		cmocka_unit_test(test_topic_and_origin),
		cmocka_unit_test(test_url_ok),
		cmocka_unit_test(test_public_addresses_only),
	};

	log_init("test_push", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
