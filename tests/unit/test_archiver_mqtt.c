/* test_archiver_mqtt.c - the archiver's MQTT 5 client (archiver/mqtt.c)
 * against a broker played by the test.
 *
 * The test listens on 127.0.0.1 (port 0), lets mqtt__connect connect to it,
 * accepts, and then speaks the broker's side byte by byte: it checks the
 * CONNECT, writes the packets a real broker never sends (malformed, split at
 * every byte, above the announced size, QoS 2, AUTH) and checks the
 * callbacks and what the client writes back. Every wait is bounded (poll with
 * a timeout); "nothing sent" is a bounded poll that stays quiet.
 *
 * mqtt.o comes from the archiver's library and is tested through mqtt.h
 * only; the bytes the test plays are written by the test's own encoder
 * (wire_*), not the client's. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "mqtt.h"
#include "timeutil.h"

#define CLIENT_ID "archiver@0"
#define USER "archiver"
#define PASSWORD "s3cret"
#define KEEPALIVE 30
#define SESSION_EXPIRY 2592000u
#define RECEIVE_MAX 1000
#define MAX_PACKET (1024u * 1024u)
#define WAIT_MS 5000
/* How long "the client sent nothing" is watched. Loopback delivers a send()
 * before it returns, so this only guards against a slow machine. */
#define QUIET_MS 50

/* One message as on_message saw it (copied: the originals live only during
 * the callback). */
struct seen {
	char topic[256];
	unsigned char *payload;   /* malloc'd copy */
	size_t len;
	bool has_corr;
	unsigned char corr[256];
	size_t corr_len;
	bool has_resp;
	char resp[256];
	bool from_bus;
};

struct fx {
	int lfd;                  /* the listening socket */
	int bfd;                  /* the broker's side of the connection */
	struct mqtt *m;
	struct mqtt_opts o;
	char err[512];
	unsigned char connect[512];   /* the CONNECT the client sent */
	size_t connect_len;
	const void *param;        /* the prestate of a table-driven test */

	int connacks;
	bool session_present;
	int subacks;
	unsigned char codes[16];
	size_t ncodes;
	int msgs;
	struct seen msg[8];       /* the first 8 messages */
	struct seen last;         /* the last one */
	int close_at;             /* on_message closes the connection at this message, 0: never */
};

/* ---- the callbacks ---- */

static void seen_copy(struct seen *s, const struct mqtt_msg *msg)
{
	size_t tl = strlen(msg->topic);

	free(s->payload);
	memset(s, 0, sizeof(*s));
	assert_true(tl < sizeof(s->topic));
	memcpy(s->topic, msg->topic, tl + 1);
	s->payload = malloc(msg->len ? msg->len : 1);
	assert_non_null(s->payload);
	if(msg->len) memcpy(s->payload, msg->payload, msg->len);
	s->len = msg->len;
	if(msg->corr){
		assert_true(msg->corr_len <= sizeof(s->corr));
		s->has_corr = true;
		memcpy(s->corr, msg->corr, msg->corr_len);
		s->corr_len = msg->corr_len;
	}else{
		assert_int_equal(msg->corr_len, 0);
	}
	if(msg->resp_topic){
		assert_true(strlen(msg->resp_topic) < sizeof(s->resp));
		s->has_resp = true;
		strcpy(s->resp, msg->resp_topic);
	}
	s->from_bus = msg->from_bus;
}

static void on_connack_cb(void *arg, bool session_present)
{
	struct fx *f = arg;

	f->connacks++;
	f->session_present = session_present;
}

static void on_suback_cb(void *arg, const unsigned char *codes, size_t n)
{
	struct fx *f = arg;

	f->subacks++;
	assert_true(n <= sizeof(f->codes));
	memcpy(f->codes, codes, n);
	f->ncodes = n;
}

static void on_message_cb(void *arg, const struct mqtt_msg *msg)
{
	struct fx *f = arg;

	/* Never a message on a connection that is already closed. */
	assert_true(mqtt__is_open(f->m));
	if(f->msgs < 8) seen_copy(&f->msg[f->msgs], msg);
	seen_copy(&f->last, msg);
	f->msgs++;
	if(f->close_at && f->msgs == f->close_at) mqtt__close(f->m);
}

/* ---- the broker's side ---- */

static int listen_local(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* Wait at most ms for events on fd; true if they came. */
static bool wait_for(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t deadline = time__mono_ms() + ms, now;
	int rc;

	for(;;){
		now = time__mono_ms();
		rc = poll(&p, 1, now < deadline ? (int)(deadline - now) : 0);
		if(rc > 0) return true;
		if(rc == 0) return false;
		assert_int_equal(errno, EINTR);
	}
}

/* Read exactly n bytes of what the client sent, within WAIT_MS. */
static void broker_read(struct fx *f, unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while(got < n){
		if(!wait_for(f->bfd, POLLIN, WAIT_MS)) fail_msg("the client sent %zu of %zu bytes", got, n);
		r = recv(f->bfd, buf + got, n - got, MSG_DONTWAIT);
		if(r == 0) fail_msg("the client closed after %zu of %zu bytes", got, n);
		if(r < 0){
			assert_true(errno == EAGAIN || errno == EINTR);
			continue;
		}
		got += (size_t)r;
	}
}

/* Read one whole packet the client sent into buf; returns its length. */
static size_t broker_packet(struct fx *f, unsigned char *buf, size_t cap)
{
	size_t n = 2, rl = 0, mult = 1;
	int i;

	broker_read(f, buf, 2);
	for(i = 1; ; i++){
		rl += (size_t)(buf[i] & 0x7f) * mult;
		mult *= 128;
		if((buf[i] & 0x80) == 0) break;
		assert_true(i < 4);
		broker_read(f, buf + n, 1);
		n++;
	}
	assert_true(n + rl <= cap);
	broker_read(f, buf + n, rl);
	return n + rl;
}

/* Expect exactly these bytes next from the client. */
static void broker_expect(struct fx *f, const void *want, size_t n)
{
	unsigned char got[1024];

	assert_true(n <= sizeof(got));
	broker_read(f, got, n);
	assert_memory_equal(got, want, n);
}

#define EXPECT(f, ...) do{ \
		const unsigned char want_[] = {__VA_ARGS__}; \
		broker_expect((f), want_, sizeof(want_)); \
	}while(0)

/* True if the client sent nothing for QUIET_MS. */
static bool broker_quiet(struct fx *f)
{
	return !wait_for(f->bfd, POLLIN, QUIET_MS);
}

/* The client closed the connection, with nothing more sent before. */
static void broker_expect_eof(struct fx *f)
{
	unsigned char c;
	ssize_t r;

	if(!wait_for(f->bfd, POLLIN, WAIT_MS)) fail_msg("the client did not close the connection");
	r = recv(f->bfd, &c, 1, MSG_DONTWAIT);
	if(r > 0) fail_msg("the client sent 0x%02x instead of closing", c);
	/* A close with our bytes unread resets the connection. */
	assert_true(r == 0 || errno == ECONNRESET);
}

static size_t unsent(int fd)
{
	int n = 0;

	assert_int_equal(ioctl(fd, TIOCOUTQ, &n), 0);
	return (size_t)n;
}

static size_t unread(int fd)
{
	int n = 0;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return (size_t)n;
}

static void quickack(int fd)
{
	int one = 1;

	assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)), 0);
}

/* Write len bytes from the broker's side and call mqtt__read until the
 * client has read all of it (or closed). Returns the last mqtt__read status. */
static int deliver(struct fx *f, const void *data, size_t len)
{
	const unsigned char *p = data;
	int64_t deadline = time__mono_ms() + WAIT_MS;
	size_t off = 0;
	ssize_t n;
	int rc;

	f->err[0] = '\0';
	for(;;){
		/* The broker's side counts a byte as delivered when it is
		 * acknowledged: no delayed ACK on the client's side. */
		quickack(mqtt__fd(f->m));
		if(off < len){
			n = send(f->bfd, p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if(n > 0) off += (size_t)n;
			else assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		}
		if(time__mono_ms() > deadline) fail_msg("delivering %zu bytes: stuck at %zu", len, off);
		(void)wait_for(mqtt__fd(f->m), POLLIN, 10);
		rc = mqtt__read(f->m, 1u << 20, f->err, sizeof(f->err));
		if(rc != MQC_OK || !mqtt__is_open(f->m)) return rc;
		if(off == len && unsent(f->bfd) == 0 && unread(mqtt__fd(f->m)) == 0) return rc;
	}
}

#define DELIVER(f, ...) ({ \
		const unsigned char pkt_[] = {__VA_ARGS__}; \
		deliver((f), pkt_, sizeof(pkt_)); \
	})

static void accept_client(struct fx *f)
{
	size_t n;

	if(!wait_for(f->lfd, POLLIN, WAIT_MS)) fail_msg("no connection");
	f->bfd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->bfd >= 0);
	n = broker_packet(f, f->connect, sizeof(f->connect));
	f->connect_len = n;
}

/* Connected, CONNECT read, no CONNACK yet. */
static int setup_connected(void **state)
{
	static const struct mqtt_callbacks cb = {
		.on_connack = on_connack_cb, .on_suback = on_suback_cb, .on_message = on_message_cb,
	};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->param = *state;
	f->bfd = -1;
	f->lfd = listen_local();
	f->o.host = "127.0.0.1";
	f->o.port = local_port(f->lfd);
	f->o.client_id = CLIENT_ID;
	f->o.user = USER;
	f->o.password = PASSWORD;
	f->o.keepalive = KEEPALIVE;
	f->o.session_expiry = SESSION_EXPIRY;
	f->o.receive_max = RECEIVE_MAX;
	f->o.max_packet = MAX_PACKET;
	f->m = mqtt__new(&f->o, &cb, f);
	assert_non_null(f->m);
	assert_int_equal(mqtt__connect(f->m, f->err, sizeof(f->err)), MQC_OK);
	accept_client(f);
	*state = f;
	return 0;
}

/* Connected and accepted (CONNACK 0, no properties). */
static int setup_ready(void **state)
{
	struct fx *f;

	setup_connected(state);
	f = *state;
	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x00, 0x00, 0x00), MQC_OK);
	assert_int_equal(f->connacks, 1);
	assert_true(mqtt__is_ready(f->m));
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	mqtt__free(f->m);
	if(f->bfd >= 0) close(f->bfd);
	close(f->lfd);
	for(i = 0; i < 8; i++) free(f->msg[i].payload);
	free(f->last.payload);
	free(f);
	return 0;
}

/* The connection is closed on the client's side, and was so for the broker,
 * with nothing sent before. */
static void assert_closed(struct fx *f)
{
	assert_false(mqtt__is_open(f->m));
	assert_false(mqtt__is_ready(f->m));
	assert_int_equal(mqtt__fd(f->m), -1);
	assert_false(mqtt__want_write(f->m));
	broker_expect_eof(f);
}

#define assert_err_has(f, s) do{ \
		if(strstr((f)->err, (s)) == NULL) fail_msg("err \"%s\" lacks \"%s\"", (f)->err, (s)); \
	}while(0)

/* ---- CONNECT and CONNACK ---- */

static void test_connect_bytes(void **state)
{
	struct fx *f = *state;
	static const unsigned char want[] = {
		0x10, 54,
		0x00, 0x04, 'M', 'Q', 'T', 'T',
		0x05,                          /* protocol level 5 */
		0xc0,                          /* user name, password; clean start off */
		0x00, KEEPALIVE,
		13,                            /* properties */
		0x11, 0x00, 0x27, 0x8d, 0x00,  /* session expiry 2592000 s */
		0x21, 0x03, 0xe8,              /* receive maximum 1000 */
		0x27, 0x00, 0x10, 0x00, 0x00,  /* maximum packet size 1 MiB */
		0x00, 10, 'a', 'r', 'c', 'h', 'i', 'v', 'e', 'r', '@', '0',
		0x00, 8, 'a', 'r', 'c', 'h', 'i', 'v', 'e', 'r',
		0x00, 6, 's', '3', 'c', 'r', 'e', 't',
	};

	assert_int_equal(f->connect_len, sizeof(want));
	assert_memory_equal(f->connect, want, sizeof(want));
	assert_int_equal(f->connect[9] & 0x02, 0);     /* clean start off: the session stays */
	assert_true(mqtt__is_open(f->m));
	assert_false(mqtt__is_ready(f->m));
	assert_false(mqtt__want_write(f->m));
	assert_false(mqtt__pending(f->m));
	assert_true(broker_quiet(f));
	/* Nothing there yet: mqtt__read returns at once, still open. */
	assert_int_equal(mqtt__read(f->m, 4096, f->err, sizeof(f->err)), MQC_OK);
	assert_true(mqtt__is_open(f->m));
	assert_int_equal(f->connacks, 0);
}

static void test_connack_accepted(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x00, 0x00, 0x00), MQC_OK);
	assert_int_equal(f->connacks, 1);
	assert_false(f->session_present);
	assert_true(mqtt__is_ready(f->m));
	assert_true(broker_quiet(f));
}

static void test_connack_session_present(void **state)
{
	struct fx *f = *state;

	/* With properties the archiver ignores (assigned client id, reason
	 * string, user property, maximum QoS, topic alias maximum). */
	assert_int_equal(DELIVER(f, 0x20, 0x19, 0x01, 0x00, 0x16,
			0x12, 0x00, 0x02, 'i', 'd',
			0x1f, 0x00, 0x02, 'o', 'k',
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
			0x24, 0x01,
			0x22, 0x00, 0x0a), MQC_OK);
	assert_int_equal(f->connacks, 1);
	assert_true(f->session_present);
	assert_true(mqtt__is_ready(f->m));
}

static void test_connack_no_properties(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x20, 0x02, 0x00, 0x00), MQC_OK);
	assert_int_equal(f->connacks, 1);
	assert_true(mqtt__is_ready(f->m));
}

static void test_connack_refused_86(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x00, 0x86, 0x00), MQC_ERR_IO);
	assert_err_has(f, "bad user name or password");
	assert_err_has(f, "0x86");
	assert_int_equal(f->connacks, 0);
	assert_closed(f);
}

static void test_connack_refused_87(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x00, 0x87, 0x00), MQC_ERR_IO);
	assert_err_has(f, "not authorized");
	assert_err_has(f, "0x87");
	assert_int_equal(f->connacks, 0);
	assert_closed(f);
	/* Reading a closed connection says so. */
	assert_int_equal(mqtt__read(f->m, 4096, f->err, sizeof(f->err)), MQC_ERR_IO);
	assert_err_has(f, "not connected");
}

static void test_publish_before_connack(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x30, 0x05, 0x00, 0x01, 'a', 0x00, 'x'), MQC_ERR_IO);
	assert_err_has(f, "before CONNACK");
	assert_int_equal(f->msgs, 0);
	assert_int_equal(f->connacks, 0);
	assert_closed(f);
}

static void test_suback_before_connack(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x90, 0x04, 0x00, 0x01, 0x00, 0x00), MQC_ERR_IO);
	assert_err_has(f, "packet type 9 before CONNACK");
	assert_int_equal(f->subacks, 0);
	assert_closed(f);
}

static void test_disconnect_before_connack(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0xe0, 0x01, 0x87), MQC_ERR_IO);
	assert_err_has(f, "the broker disconnected: not authorized");
	assert_closed(f);
}

static void test_connack_timeout(void **state)
{
	struct fx *f = *state;
	int64_t now = time__mono_ms(), next = 0;

	assert_int_equal(mqtt__tick(f->m, now, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(next > now && next <= now + MQTT_CONNECT_TIMEOUT_MS);
	assert_true(mqtt__is_open(f->m));
	assert_true(broker_quiet(f));     /* no PINGREQ before CONNACK */
	assert_int_equal(mqtt__tick(f->m, now + MQTT_CONNECT_TIMEOUT_MS, &next, f->err, sizeof(f->err)),
			MQC_ERR_IO);
	assert_err_has(f, "no CONNACK within 5 s");
	assert_closed(f);
}

/* ---- PUBLISH from the broker ---- */

static void test_publish_qos0(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x30, 0x0d, 0x00, 0x05, 'a', '/', 'b', '/', 'c', 0x00,
			'h', 'e', 'l', 'l', 'o'), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_string_equal(f->last.topic, "a/b/c");
	assert_int_equal(f->last.len, 5);
	assert_memory_equal(f->last.payload, "hello", 5);
	assert_false(f->last.has_corr);
	assert_false(f->last.has_resp);
	/* QoS 0: nothing to acknowledge, even after a flush. */
	assert_false(mqtt__want_write(f->m));
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	assert_true(broker_quiet(f));
}

static void test_publish_qos0_empty_payload(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x30, 0x04, 0x00, 0x01, 't', 0x00), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_string_equal(f->last.topic, "t");
	assert_int_equal(f->last.len, 0);
}

/* A QoS 1 PUBLISH with every property a broker may forward: the archiver
 * reads correlation data and response topic and skips the others. */
static const unsigned char pub_props[] = {
	0x32, 0x4b,
	0x00, 0x0f, 'c', 'h', 'a', 't', '/', 'r', 'p', 'c', '/', 'b', 'o', 'b', '/', 'r', 'q',
	0x12, 0x34,                                    /* packet id */
	0x2c,                                          /* properties: 44 bytes */
	0x01, 0x01,                                    /* payload format: UTF-8 */
	0x02, 0x00, 0x00, 0x0e, 0x10,                  /* message expiry 3600 */
	0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v', 'v',   /* user property */
	0x0b, 0xac, 0x02,                              /* subscription identifier 300 */
	0x03, 0x00, 0x04, 'j', 's', 'o', 'n',          /* content type */
	0x09, 0x00, 0x03, 0x01, 0x00, 0xff,            /* correlation data, with a NUL */
	0x08, 0x00, 0x0a, 'r', 'e', 's', 'p', '/', 't', 'o', 'p', 'i', 'c',   /* response topic */
	'{', '"', 'o', 'p', '"', ':', '1', '}', 0x00, 0x01, 0x02,
};

static void check_pub_props(const struct seen *s)
{
	static const unsigned char payload[] = {'{', '"', 'o', 'p', '"', ':', '1', '}', 0x00, 0x01, 0x02};
	static const unsigned char corr[] = {0x01, 0x00, 0xff};

	assert_string_equal(s->topic, "chat/rpc/bob/rq");
	assert_int_equal(s->len, sizeof(payload));
	assert_memory_equal(s->payload, payload, sizeof(payload));
	assert_true(s->has_corr);
	assert_int_equal(s->corr_len, sizeof(corr));
	assert_memory_equal(s->corr, corr, sizeof(corr));
	assert_true(s->has_resp);
	assert_string_equal(s->resp, "resp/topic");
}

static void test_publish_qos1_properties(void **state)
{
	struct fx *f = *state;

	assert_int_equal(deliver(f, pub_props, sizeof(pub_props)), MQC_OK);
	assert_int_equal(f->msgs, 1);
	check_pub_props(&f->last);
	/* The PUBACK waits for mqtt__flush: the caller first makes the message
	 * durable. */
	assert_true(mqtt__want_write(f->m));
	assert_true(broker_quiet(f));
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x40, 0x02, 0x12, 0x34);
	assert_false(mqtt__want_write(f->m));
	assert_true(broker_quiet(f));
}

/* Another node's message (the bus's user property mqchat-origin) is
 * marked, whatever other user properties come with it; a property whose
 * value is "mqchat-origin" is not that property. */
static void test_publish_from_bus(void **state)
{
	struct fx *f = *state;
	static const unsigned char pkts[] = {
		0x30, 0x1e, 0x00, 0x01, 'a',
		0x19,                                                   /* properties: 25 bytes */
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
		0x26, 0x00, 0x0d, 'm', 'q', 'c', 'h', 'a', 't', '-', 'o', 'r', 'i', 'g', 'i', 'n',
		0x00, 0x00,
		'A',
		0x30, 0x1d, 0x00, 0x01, 'b',
		0x18,                                                   /* properties: 24 bytes */
		0x26, 0x00, 0x06, 'o', 'r', 'i', 'g', 'i', 'n',
		0x00, 0x0d, 'm', 'q', 'c', 'h', 'a', 't', '-', 'o', 'r', 'i', 'g', 'i', 'n',
		'B',
	};

	assert_int_equal(deliver(f, pkts, sizeof(pkts)), MQC_OK);
	assert_int_equal(f->msgs, 2);
	assert_string_equal(f->msg[0].topic, "a");
	assert_true(f->msg[0].from_bus);
	assert_string_equal(f->msg[1].topic, "b");
	assert_false(f->msg[1].from_bus);
	assert_false(f->last.from_bus);
}

static void test_several_in_one_write(void **state)
{
	struct fx *f = *state;
	static const unsigned char pkts[] = {
		0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00,          /* QoS 1, id 1, empty */
		0x30, 0x05, 0x00, 0x01, 'b', 0x00, 'B',                 /* QoS 0 */
		0xd0, 0x00,                                             /* PINGRESP */
		0x32, 0x07, 0x00, 0x01, 'c', 0x00, 0x02, 0x00, 'C',     /* QoS 1, id 2 */
		0x90, 0x04, 0x00, 0x07, 0x00, 0x01,                     /* SUBACK */
		0x32, 0x07, 0x00, 0x01, 'd', 0xff, 0xff, 0x00, 'D',     /* QoS 1, id 65535 */
	};

	assert_int_equal(deliver(f, pkts, sizeof(pkts)), MQC_OK);
	assert_int_equal(f->msgs, 4);
	assert_string_equal(f->msg[0].topic, "a");
	assert_int_equal(f->msg[0].len, 0);
	assert_string_equal(f->msg[1].topic, "b");
	assert_memory_equal(f->msg[1].payload, "B", 1);
	assert_string_equal(f->msg[2].topic, "c");
	assert_memory_equal(f->msg[2].payload, "C", 1);
	assert_string_equal(f->msg[3].topic, "d");
	assert_int_equal(f->subacks, 1);
	assert_true(broker_quiet(f));
	/* The three PUBACKs leave together, in order. */
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02, 0x40, 0x02, 0xff, 0xff);
	assert_true(broker_quiet(f));
}

static void test_split_byte_by_byte(void **state)
{
	struct fx *f = *state;
	size_t i;

	for(i = 0; i < sizeof(pub_props); i++){
		assert_int_equal(deliver(f, pub_props + i, 1), MQC_OK);
		if(f->msgs != (i + 1 == sizeof(pub_props) ? 1 : 0)){
			fail_msg("after byte %zu of %zu: %d messages", i + 1, sizeof(pub_props), f->msgs);
		}
	}
	check_pub_props(&f->last);
	assert_true(broker_quiet(f));
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x40, 0x02, 0x12, 0x34);
	assert_true(broker_quiet(f));
}

/* The packet in two reads, cut at each byte in turn; then the same with a
 * whole packet before it and one after it in the same writes. */
static void test_split_every_boundary(void **state)
{
	struct fx *f = *state;
	static const unsigned char q0[] = {0x30, 0x05, 0x00, 0x01, 'z', 0x00, 'Z'};
	unsigned char two[sizeof(q0) + sizeof(pub_props) + sizeof(q0)];
	size_t k;
	int before;

	memcpy(two, q0, sizeof(q0));
	memcpy(two + sizeof(q0), pub_props, sizeof(pub_props));
	memcpy(two + sizeof(q0) + sizeof(pub_props), q0, sizeof(q0));
	for(k = 1; k < sizeof(pub_props); k++){
		before = f->msgs;
		assert_int_equal(deliver(f, pub_props, k), MQC_OK);
		if(f->msgs != before) fail_msg("cut at %zu: a message from a partial packet", k);
		assert_int_equal(deliver(f, pub_props + k, sizeof(pub_props) - k), MQC_OK);
		if(f->msgs != before + 1) fail_msg("cut at %zu: %d messages", k, f->msgs - before);
		check_pub_props(&f->last);
		assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
		EXPECT(f, 0x40, 0x02, 0x12, 0x34);
	}
	for(k = 1; k < sizeof(two); k++){
		before = f->msgs;
		assert_int_equal(deliver(f, two, k), MQC_OK);
		assert_int_equal(deliver(f, two + k, sizeof(two) - k), MQC_OK);
		if(f->msgs != before + 3) fail_msg("cut at %zu: %d messages", k, f->msgs - before);
		assert_string_equal(f->last.topic, "z");
		assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
		EXPECT(f, 0x40, 0x02, 0x12, 0x34);
	}
	assert_true(broker_quiet(f));
}

/* ---- the broker's encoder (MQTT 5, 1.5.2, 1.5.4, 1.5.5) ---- */

static void wire_u16(unsigned char **p, unsigned v)
{
	*(*p)++ = (unsigned char)(v >> 8);
	*(*p)++ = (unsigned char)v;
}

/* A UTF-8 string or binary data: its length in two bytes, then the bytes. */
static void wire_bytes(unsigned char **p, const void *s, size_t n)
{
	wire_u16(p, (unsigned)n);
	memcpy(*p, s, n);
	*p += n;
}

/* A variable byte integer: 7 bits a byte, low first, high bit "more". */
static void wire_varint(unsigned char **p, size_t v)
{
	do{
		unsigned char b = (unsigned char)(v % 128);

		v /= 128;
		if(v) b |= 0x80;
		*(*p)++ = b;
	}while(v);
}

/* A packet of 300,000 bytes: well past the 64 KiB the read buffer starts
 * with, so it grows twice; then a small one, read from the grown buffer. */
static void test_large_packet(void **state)
{
	struct fx *f = *state;
	size_t plen = 300000 - 10, rl = 2 + 5 + 2 + 1 + plen, n, i;
	unsigned char *pkt = malloc(rl + 5), *p = pkt;

	assert_non_null(pkt);
	*p++ = 0x32;
	wire_varint(&p, rl);
	wire_bytes(&p, "big/t", 5);
	wire_u16(&p, 0x0102);
	*p++ = 0x00;
	for(i = 0; i < plen; i++) *p++ = (unsigned char)(i * 7 + i / 251);
	n = (size_t)(p - pkt);
	assert_int_equal(deliver(f, pkt, n), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_string_equal(f->last.topic, "big/t");
	assert_int_equal(f->last.len, plen);
	assert_memory_equal(f->last.payload, pkt + n - plen, plen);
	free(pkt);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x40, 0x02, 0x01, 0x02);
	assert_int_equal(DELIVER(f, 0x30, 0x05, 0x00, 0x01, 's', 0x00, 'S'), MQC_OK);
	assert_int_equal(f->msgs, 2);
	assert_string_equal(f->last.topic, "s");
}

/* ---- malformed input: the connection closes, no callback, no PUBACK ---- */

struct bad {
	const char *name;
	const unsigned char *bytes;
	size_t len;
	const char *err;
};

#define BYTES(...) (const unsigned char[]){__VA_ARGS__}, sizeof((const unsigned char[]){__VA_ARGS__})

static const struct bad bad_varint5 = {
	"remaining length with 5 continuation bytes", BYTES(0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x01, 'a'),
	"malformed packet length",
};
/* 0x85 0x00 is 5 in two bytes where one would do: malformed (MQTT 5,
 * 1.5.5), and read as 5 it would shift the body by a byte. */
static const struct bad bad_varint_long = {
	"remaining length not in its shortest form",
	BYTES(0x30, 0x85, 0x00, 0x00, 0x01, 'T', 0x00, 'P', 'Q'),
	"malformed packet length",
};
static const struct bad bad_topic_len = {
	"topic length past the end", BYTES(0x32, 0x07, 0x00, 0x09, 'a', 'b', 'c', 0x00, 0x01),
	"malformed PUBLISH",
};
static const struct bad bad_props_len = {
	"property length past the end", BYTES(0x30, 0x07, 0x00, 0x01, 'a', 0x08, 0x01, 0x01, 'x'),
	"malformed PUBLISH",
};
static const struct bad bad_prop_value = {
	"property value past the end", BYTES(0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x08, 0x00, 0x09, 'x'),
	"malformed PUBLISH",
};
static const struct bad bad_prop_id = {
	"unknown property id", BYTES(0x32, 0x0a, 0x00, 0x01, 'a', 0x00, 0x01, 0x02, 0x04, 0x00, 'x', 'y'),
	"malformed PUBLISH",
};
static const struct bad bad_prop_varint = {
	"subscription identifier of 5 bytes",
	BYTES(0x30, 0x0a, 0x00, 0x01, 'a', 0x06, 0x0b, 0xff, 0xff, 0xff, 0xff, 0x01),
	"malformed PUBLISH",
};
static const struct bad bad_qos2 = {
	"QoS 2", BYTES(0x34, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 0x00, 'x'), "QoS 2",
};
static const struct bad bad_qos3 = {
	"QoS 3", BYTES(0x36, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 0x00, 'x'), "QoS 3",
};
static const struct bad bad_mid0 = {
	"packet id 0 at QoS 1", BYTES(0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x00, 0x00, 'x'),
	"malformed PUBLISH",
};
static const struct bad bad_qos1_short = {
	"QoS 1 without a packet id", BYTES(0x32, 0x04, 0x00, 0x01, 'a', 0x00),
	"malformed PUBLISH",
};
static const struct bad bad_too_big = {
	/* Only the header: the size alone is refused, before the body arrives. */
	"packet above max_packet", BYTES(0x30, 0x80, 0x80, 0x40, 0x00, 0x01, 'a'),
	"above the 1048576 announced",
};
static const struct bad bad_nul_topic = {
	"topic with a NUL byte", BYTES(0x30, 0x07, 0x00, 0x03, 'a', 0x00, 'b', 0x00, 'x'),
	"malformed PUBLISH",
};
static const struct bad bad_empty_topic = {
	"empty topic (no alias was allowed)", BYTES(0x30, 0x04, 0x00, 0x00, 0x00, 'x'),
	"malformed PUBLISH",
};
static const struct bad bad_auth = {
	"AUTH", BYTES(0xf0, 0x02, 0x18, 0x00), "unexpected packet type 15",
};
static const struct bad bad_type0 = {
	"packet type 0", BYTES(0x00, 0x00), "unexpected packet type 0",
};
static const struct bad bad_pubrel = {
	"PUBREL (QoS 2 flow)", BYTES(0x62, 0x02, 0x00, 0x01), "unexpected packet type 6",
};
static const struct bad bad_pingreq = {
	"PINGREQ from the broker", BYTES(0xc0, 0x00), "unexpected packet type 12",
};
static const struct bad bad_connack2 = {
	"a second CONNACK", BYTES(0x20, 0x03, 0x00, 0x00, 0x00), "unexpected packet type 2",
};
static const struct bad bad_suback = {
	"SUBACK without properties", BYTES(0x90, 0x02, 0x00, 0x01), "malformed SUBACK",
};

static void test_malformed(void **state)
{
	struct fx *f = *state;
	const struct bad *b = f->param;

	print_message("# %s\n", b->name);
	assert_int_equal(deliver(f, b->bytes, b->len), MQC_ERR_IO);
	assert_err_has(f, b->err);
	assert_int_equal(f->msgs, 0);
	assert_int_equal(f->subacks, 0);
	assert_int_equal(f->connacks, 1);
	assert_closed(f);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_ERR_IO);
}

/* A good QoS 1 message, then a bad packet in the same read: the message was
 * handed over, but its PUBACK dies with the connection (the broker sends it
 * again). */
static void test_malformed_after_good(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f,
			0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x05, 0x00, 'x',
			0x34, 0x07, 0x00, 0x01, 'a', 0x00, 0x06, 0x00, 'x'), MQC_ERR_IO);
	assert_err_has(f, "QoS 2");
	assert_int_equal(f->msgs, 1);
	assert_closed(f);
}

static void test_disconnect_session_taken_over(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0xe0, 0x01, 0x8e), MQC_ERR_IO);
	assert_err_has(f, "session taken over");
	assert_closed(f);
}

static void test_disconnect_normal(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0xe0, 0x00), MQC_ERR_IO);
	assert_err_has(f, "the broker disconnected: normal");
	assert_closed(f);
}

static void test_broker_closes(void **state)
{
	struct fx *f = *state;

	assert_true(wait_for(f->bfd, POLLOUT, WAIT_MS));
	close(f->bfd);
	f->bfd = -1;
	assert_true(wait_for(mqtt__fd(f->m), POLLIN, WAIT_MS));
	assert_int_equal(mqtt__read(f->m, 4096, f->err, sizeof(f->err)), MQC_ERR_IO);
	assert_err_has(f, "the broker closed the connection");
	assert_false(mqtt__is_open(f->m));
}

/* ---- our publishes ---- */

static void test_publish_bytes(void **state)
{
	struct fx *f = *state;
	static const unsigned char want[] = {
		0x32, 40,
		0x00, 19, 'c', 'h', 'a', 't', '/', 'r', 'p', 'c', '/', 'a', 'l', 'i', 'c', 'e',
		'/', 'r', 'e', 's', 'p',
		0x00, 0x01,                        /* packet id */
		0x05, 0x09, 0x00, 0x02, 'c', 0x00, /* correlation data */
		'{', '"', 'o', 'k', '"', ':', 't', 'r', 'u', 'e', '}',
	};
	static const unsigned char want2[] = {
		0x32, 0x08, 0x00, 0x01, 'x', 0x00, 0x02, 0x00, 'h', 'i',
	};

	assert_int_equal(mqtt__publish(f->m, "chat/rpc/alice/resp", "{\"ok\":true}", 11, "c\0", 2), MQC_OK);
	/* Queued: nothing leaves before mqtt__flush. */
	assert_true(mqtt__want_write(f->m));
	assert_true(broker_quiet(f));
	assert_int_equal(mqtt__publish(f->m, "x", "hi", 2, NULL, 0), MQC_OK);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	broker_expect(f, want, sizeof(want));
	broker_expect(f, want2, sizeof(want2));
	assert_false(mqtt__want_write(f->m));
	assert_int_equal(mqtt__publish(f->m, "", "hi", 2, NULL, 0), MQC_ERR_INVAL);
}

/* CONNACK receive maximum 2: the third publish waits for a PUBACK. */
static void test_receive_maximum(void **state)
{
	struct fx *f = *state;
	unsigned char pkt[64];
	size_t n;

	assert_int_equal(DELIVER(f, 0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x02), MQC_OK);
	assert_true(mqtt__is_ready(f->m));
	assert_int_equal(mqtt__publish(f->m, "t/1", "1", 1, NULL, 0), MQC_OK);
	assert_int_equal(mqtt__publish(f->m, "t/2", "2", 1, NULL, 0), MQC_OK);
	assert_int_equal(mqtt__publish(f->m, "t/3", "3", 1, NULL, 0), MQC_OK);
	assert_int_equal(mqtt__publish(f->m, "t/4", "4", 1, NULL, 0), MQC_OK);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	n = broker_packet(f, pkt, sizeof(pkt));
	assert_int_equal(n, 11);
	assert_memory_equal(pkt + 2, "\0\3t/1\0\1", 7);
	n = broker_packet(f, pkt, sizeof(pkt));
	assert_memory_equal(pkt + 2, "\0\3t/2\0\2", 7);
	assert_true(broker_quiet(f));
	assert_false(mqtt__want_write(f->m));
	/* One PUBACK lets one more go. */
	assert_int_equal(DELIVER(f, 0x40, 0x02, 0x00, 0x01), MQC_OK);
	assert_true(mqtt__want_write(f->m));
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	n = broker_packet(f, pkt, sizeof(pkt));
	assert_memory_equal(pkt + 2, "\0\3t/3\0\3", 7);
	assert_true(broker_quiet(f));
	assert_int_equal(DELIVER(f, 0x40, 0x03, 0x00, 0x02, 0x00), MQC_OK);   /* with a reason code */
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	n = broker_packet(f, pkt, sizeof(pkt));
	assert_memory_equal(pkt + 2, "\0\3t/4\0\4", 7);
	assert_true(broker_quiet(f));
	assert_int_equal(DELIVER(f, 0x40, 0x02, 0x00, 0x03, 0x40, 0x02, 0x00, 0x04), MQC_OK);
	assert_false(mqtt__want_write(f->m));
	assert_true(broker_quiet(f));
}

/* ---- SUBSCRIBE, SUBACK, UNSUBSCRIBE ---- */

static void test_suback_codes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mqtt__subscribe(f->m, "chat/#"), MQC_OK);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x82, 12, 0x00, 0x01, 0x00, 0x00, 0x06, 'c', 'h', 'a', 't', '/', '#', 0x01);
	assert_int_equal(DELIVER(f, 0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x87), MQC_OK);
	assert_int_equal(f->subacks, 1);
	assert_int_equal(f->ncodes, 2);
	assert_int_equal(f->codes[0], 0x01);
	assert_int_equal(f->codes[1], 0x87);
	/* With a reason string property. */
	assert_int_equal(DELIVER(f, 0x90, 0x08, 0x00, 0x02, 0x04, 0x1f, 0x00, 0x01, 'r', 0x80), MQC_OK);
	assert_int_equal(f->subacks, 2);
	assert_int_equal(f->ncodes, 1);
	assert_int_equal(f->codes[0], 0x80);
	assert_int_equal(mqtt__unsubscribe(f->m, "chat/#"), MQC_OK);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0xa2, 11, 0x00, 0x02, 0x00, 0x00, 0x06, 'c', 'h', 'a', 't', '/', '#');
	assert_int_equal(DELIVER(f, 0xb0, 0x04, 0x00, 0x02, 0x00, 0x00), MQC_OK);
	assert_true(mqtt__is_ready(f->m));
	assert_int_equal(mqtt__subscribe(f->m, ""), MQC_ERR_INVAL);
}

/* ---- keepalive ---- */

static void test_keepalive_no_answer(void **state)
{
	struct fx *f = *state;
	int64_t now = time__mono_ms(), t, next = 0;

	assert_int_equal(mqtt__tick(f->m, now, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(broker_quiet(f));
	t = now + KEEPALIVE * 1000 + 1;
	assert_int_equal(mqtt__tick(f->m, t, &next, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0xc0, 0x00);
	assert_int_equal(next, t + KEEPALIVE * 1000);
	/* Just before the keepalive runs out: still waiting, no second PINGREQ. */
	assert_int_equal(mqtt__tick(f->m, t + KEEPALIVE * 1000 - 1, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(mqtt__is_open(f->m));
	assert_true(broker_quiet(f));
	assert_int_equal(mqtt__tick(f->m, t + KEEPALIVE * 1000, &next, f->err, sizeof(f->err)), MQC_ERR_IO);
	assert_err_has(f, "no answer to PINGREQ");
	assert_closed(f);
}

static void test_keepalive_pingresp(void **state)
{
	struct fx *f = *state;
	int64_t t = time__mono_ms() + KEEPALIVE * 1000 + 1, next = 0;

	assert_int_equal(mqtt__tick(f->m, t, &next, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0xc0, 0x00);
	assert_int_equal(DELIVER(f, 0xd0, 0x00), MQC_OK);
	/* Answered: a keepalive later there is a new PINGREQ, not a close. */
	t += KEEPALIVE * 1000;
	assert_int_equal(mqtt__tick(f->m, t, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(mqtt__is_open(f->m));
	EXPECT(f, 0xc0, 0x00);
	assert_int_equal(DELIVER(f, 0xd0, 0x00), MQC_OK);
	assert_int_equal(mqtt__tick(f->m, t + KEEPALIVE * 1000, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(mqtt__is_open(f->m));
	EXPECT(f, 0xc0, 0x00);
}

/* A Server Keep Alive in the CONNACK (10 s here, ours is 30 s) is the one
 * to keep (MQTT 5, 3.2.2.3.14). */
static void test_keepalive_from_server(void **state)
{
	struct fx *f = *state;
	int64_t t, next = 0;

	assert_int_equal(DELIVER(f, 0x20, 0x06, 0x00, 0x00, 0x03, 0x13, 0x00, 0x0a), MQC_OK);
	assert_true(mqtt__is_ready(f->m));
	t = time__mono_ms();
	assert_int_equal(mqtt__tick(f->m, t, &next, f->err, sizeof(f->err)), MQC_OK);
	assert_true(next <= t + 10 * 1000);
	assert_true(broker_quiet(f));
	t += 10 * 1000 + 1;
	assert_int_equal(mqtt__tick(f->m, t, &next, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0xc0, 0x00);
	assert_int_equal(mqtt__tick(f->m, t + 10 * 1000, &next, f->err, sizeof(f->err)), MQC_ERR_IO);
	assert_err_has(f, "no answer to PINGREQ within 10 s");
}

/* ---- closing ---- */

static int reconnect_rc;

static void on_message_reconnect(void *arg, const struct mqtt_msg *msg)
{
	struct fx *f = arg;

	(void)msg;
	f->msgs++;
	mqtt__close(f->m);
	reconnect_rc = mqtt__connect(f->m, f->err, sizeof(f->err));
}

/* mqtt__connect from inside a callback is refused: the read buffer being
 * dispatched belongs to the old connection. */
static void test_connect_in_callback_refused(void **state)
{
	struct fx *f = *state;
	static const struct mqtt_callbacks cb = { .on_message = on_message_reconnect };
	struct mqtt *m = f->m;

	f->m = mqtt__new(&f->o, &cb, f);
	assert_non_null(f->m);
	mqtt__free(m);
	close(f->bfd);
	f->bfd = -1;
	assert_int_equal(mqtt__connect(f->m, f->err, sizeof(f->err)), MQC_OK);
	accept_client(f);
	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x00, 0x00, 0x00,
			0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 0x00, '1',
			0x32, 0x07, 0x00, 0x01, 'b', 0x00, 0x02, 0x00, '2'), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_int_equal(reconnect_rc, MQC_ERR_INVAL);
	assert_err_has(f, "connect from inside a callback");
	assert_false(mqtt__is_open(f->m));
	/* After mqtt__read returned, connecting works again. */
	assert_int_equal(mqtt__connect(f->m, f->err, sizeof(f->err)), MQC_OK);
	assert_true(mqtt__is_open(f->m));
}

/* on_message closes the connection: no PUBACK (not even for the message
 * before it), the rest of that read is dropped, and after a new connection
 * nothing of it comes back. */
static void test_close_in_callback(void **state)
{
	struct fx *f = *state;

	f->close_at = 2;
	assert_int_equal(DELIVER(f,
			0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 0x00, '1',
			0x32, 0x07, 0x00, 0x01, 'b', 0x00, 0x02, 0x00, '2',
			0x32, 0x07, 0x00, 0x01, 'c', 0x00, 0x03, 0x00, '3',
			0x90, 0x04, 0x00, 0x01, 0x00, 0x01), MQC_OK);
	assert_int_equal(f->msgs, 2);
	assert_int_equal(f->subacks, 0);
	assert_string_equal(f->last.topic, "b");
	assert_closed(f);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_ERR_IO);
	assert_int_equal(mqtt__publish(f->m, "t", "x", 1, NULL, 0), MQC_ERR_IO);
	close(f->bfd);
	f->bfd = -1;

	/* Connect again: a fresh CONNECT, and only what the new connection
	 * brings is read. */
	f->close_at = 0;
	assert_int_equal(mqtt__connect(f->m, f->err, sizeof(f->err)), MQC_OK);
	accept_client(f);
	assert_int_equal(f->connect[0], 0x10);
	assert_int_equal(DELIVER(f, 0x20, 0x03, 0x01, 0x00, 0x00,
			0x32, 0x07, 0x00, 0x01, 'n', 0x00, 0x01, 0x00, 'N'), MQC_OK);
	assert_int_equal(f->connacks, 2);
	assert_true(f->session_present);
	assert_int_equal(f->msgs, 3);
	assert_string_equal(f->last.topic, "n");
	assert_int_equal(f->subacks, 0);
	assert_int_equal(mqtt__flush(f->m, f->err, sizeof(f->err)), MQC_OK);
	EXPECT(f, 0x40, 0x02, 0x00, 0x01);
	assert_true(broker_quiet(f));
}

/* Close in the callback of the last message of a read, and of the first. */
static void test_close_in_callback_first(void **state)
{
	struct fx *f = *state;

	f->close_at = 1;
	assert_int_equal(DELIVER(f, 0x30, 0x05, 0x00, 0x01, 'a', 0x00, '1'), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_closed(f);
}

static void test_disconnect_drop_unsent(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x09, 0x00, 'x'), MQC_OK);
	assert_int_equal(f->msgs, 1);
	assert_int_equal(mqtt__publish(f->m, "t", "x", 1, NULL, 0), MQC_OK);
	assert_true(mqtt__want_write(f->m));
	/* The broker closes its side at once (it would after DISCONNECT). */
	shutdown(f->bfd, SHUT_WR);
	mqtt__disconnect(f->m, true, 1000);
	EXPECT(f, 0xe0, 0x00);
	assert_closed(f);
}

static void test_disconnect_sends_unsent(void **state)
{
	struct fx *f = *state;

	assert_int_equal(DELIVER(f, 0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x09, 0x00, 'x'), MQC_OK);
	shutdown(f->bfd, SHUT_WR);
	mqtt__disconnect(f->m, false, 1000);
	EXPECT(f, 0x40, 0x02, 0x00, 0x09, 0xe0, 0x00);
	assert_closed(f);
}

/* After DISCONNECT the client waits for the broker to close, reading and
 * acknowledging nothing: a PUBLISH still on its way stays the broker's.
 * Closing at once would answer it with a reset, and a reset drops the
 * PUBACKs the broker had not read yet. */
static void test_disconnect_waits_for_close(void **state)
{
	struct fx *f = *state;
	static const unsigned char late[] = { 0x32, 0x07, 0x00, 0x01, 'z', 0x00, 0x0a, 0x00, 'z' };
	int64_t t0;

	assert_int_equal(DELIVER(f, 0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x09, 0x00, 'x'), MQC_OK);
	/* A PUBLISH the client has not read yet, then the broker's close. */
	assert_int_equal(write(f->bfd, late, sizeof(late)), (ssize_t)sizeof(late));
	shutdown(f->bfd, SHUT_WR);
	t0 = time__mono_ms();
	mqtt__disconnect(f->m, false, 2000);
	assert_true(time__mono_ms() - t0 < 1000);
	EXPECT(f, 0x40, 0x02, 0x00, 0x09, 0xe0, 0x00);
	assert_int_equal(f->msgs, 1);
	assert_closed(f);
}

/* A broker that never closes: the wait ends at wait_ms. */
static void test_disconnect_wait_bounded(void **state)
{
	struct fx *f = *state;
	int64_t t0 = time__mono_ms(), el;

	mqtt__disconnect(f->m, false, 300);
	el = time__mono_ms() - t0;
	assert_true(el >= 250 && el < 2000);
	EXPECT(f, 0xe0, 0x00);
	assert_closed(f);
}

static void test_reason_text(void **state)
{
	(void)state;
	assert_string_equal(mqtt__reason(0x8e), "session taken over");
	assert_string_equal(mqtt__reason(0x86), "bad user name or password");
	assert_string_equal(mqtt__reason(0x00), "success");
	assert_string_equal(mqtt__reason(0x7f), "unknown reason");
}

#define T_CONN(fn) cmocka_unit_test_setup_teardown(fn, setup_connected, teardown)
#define T_READY(fn) cmocka_unit_test_setup_teardown(fn, setup_ready, teardown)
#define T_BAD(b) { "test_malformed: " #b, test_malformed, setup_ready, teardown, (void *)(uintptr_t)&(b) }

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_CONN(test_connect_bytes),
		T_CONN(test_connack_accepted),
		T_CONN(test_connack_session_present),
		T_CONN(test_connack_no_properties),
		T_CONN(test_connack_refused_86),
		T_CONN(test_connack_refused_87),
		T_CONN(test_publish_before_connack),
		T_CONN(test_suback_before_connack),
		T_CONN(test_disconnect_before_connack),
		T_CONN(test_connack_timeout),
		T_READY(test_publish_qos0),
		T_READY(test_publish_qos0_empty_payload),
		T_READY(test_publish_qos1_properties),
		T_READY(test_publish_from_bus),
		T_READY(test_several_in_one_write),
		T_READY(test_split_byte_by_byte),
		T_READY(test_split_every_boundary),
		T_READY(test_large_packet),
		T_BAD(bad_varint5),
		T_BAD(bad_varint_long),
		T_BAD(bad_topic_len),
		T_BAD(bad_props_len),
		T_BAD(bad_prop_value),
		T_BAD(bad_prop_id),
		T_BAD(bad_prop_varint),
		T_BAD(bad_qos2),
		T_BAD(bad_qos3),
		T_BAD(bad_mid0),
		T_BAD(bad_qos1_short),
		T_BAD(bad_too_big),
		T_BAD(bad_nul_topic),
		T_BAD(bad_empty_topic),
		T_BAD(bad_auth),
		T_BAD(bad_type0),
		T_BAD(bad_pubrel),
		T_BAD(bad_pingreq),
		T_BAD(bad_connack2),
		T_BAD(bad_suback),
		T_READY(test_malformed_after_good),
		T_READY(test_disconnect_session_taken_over),
		T_READY(test_disconnect_normal),
		T_READY(test_broker_closes),
		T_READY(test_publish_bytes),
		T_CONN(test_receive_maximum),
		T_READY(test_suback_codes),
		T_READY(test_keepalive_no_answer),
		T_READY(test_keepalive_pingresp),
		T_CONN(test_keepalive_from_server),
		T_CONN(test_connect_in_callback_refused),
		T_READY(test_close_in_callback),
		T_READY(test_close_in_callback_first),
		T_READY(test_disconnect_drop_unsent),
		T_READY(test_disconnect_sends_unsent),
		T_READY(test_disconnect_waits_for_close),
		T_READY(test_disconnect_wait_bounded),
		cmocka_unit_test(test_reason_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
