/* fuzz_mqtt.c - libFuzzer harness for the archiver's MQTT 5 client
 * (archiver/mqtt.c): the byte stream a broker sends it.
 *
 * Each input is one connection: mqtt__connect to a listener of the harness
 * on 127.0.0.1, which plays the broker (it reads the CONNECT, then writes).
 * Byte 0 steers the run:
 *   bits 0-3  k: the rest arrives in pieces of k*k bytes (0: all at once),
 *             read with mqtt__read after each piece;
 *   bit 4     on_message closes the connection at the 2nd message;
 *   bit 5     mqtt__flush after every piece;
 *   bit 6     CONNACK says receive maximum 2, and the client publishes three
 *             messages of its own first (the third waits for a PUBACK);
 *   bit 7     no CONNACK from the harness: the rest is the first thing the
 *             client reads.
 * The rest of the input is what the broker sends. Invariants:
 *   - no crash, no read outside the input (ASan, UBSan);
 *   - mqtt__read returns MQC_OK with the connection open (or closed by the
 *     callback), or MQC_ERR_IO with it closed and a reason in err;
 *   - no callback once the connection is closed; at most one CONNACK;
 *   - a message's topic is non-empty and NUL-terminated; it, the payload,
 *     the correlation data and the response topic are each bytes of the
 *     input, together no longer than it; so are SUBACK codes;
 *   - the client writes whole packets only: PUBACKs (packet id not 0, no more
 *     than messages received, none at all before a flush), its own
 *     PUBLISHes, and DISCONNECT last.
 * Closes use SO_LINGER 0 on the harness's side, so a long run leaves no
 * TIME_WAIT sockets behind. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../archiver/mqtt.h"
#include "err.h"
#include "timeutil.h"
#include "fuzz.h"

/* Small, so that "above the announced size" is within the fuzzer's reach. */
#define FMQ_MAX_PACKET 2048
#define FMQ_WAIT_MS 5000

static struct {
	int lfd;                    /* the harness's listener, made once */
	int bfd;                    /* the broker's side of the connection */
	struct mqtt *m;
	const uint8_t *data;        /* the input */
	size_t size;
	bool closed;                /* the client's connection is closed */
	bool flushed;               /* mqtt__flush ran since the input began */
	int close_at;
	int msgs, connacks, subacks;
	unsigned char *out;         /* what the client wrote after its CONNECT */
	size_t out_len, out_cap;
} fmq = { .lfd = -1, .bfd = -1 };

static bool fmq_in_input(const void *p, size_t n)
{
	return n == 0 || memmem(fmq.data, fmq.size, p, n) != NULL;
}

static void fmq_on_connack(void *arg, bool session_present)
{
	(void)arg;
	(void)session_present;
	FUZZ_ASSERT(!fmq.closed && mqtt__is_open(fmq.m));
	FUZZ_ASSERT(fmq.connacks == 0);
	fmq.connacks++;
}

static void fmq_on_suback(void *arg, const unsigned char *codes, size_t n)
{
	(void)arg;
	FUZZ_ASSERT(!fmq.closed && mqtt__is_ready(fmq.m));
	FUZZ_ASSERT(n < fmq.size);
	FUZZ_ASSERT(fmq_in_input(codes, n));
	fmq.subacks++;
}

static void fmq_on_message(void *arg, const struct mqtt_msg *msg)
{
	size_t tl, rl = 0;

	(void)arg;
	FUZZ_ASSERT(!fmq.closed && mqtt__is_ready(fmq.m));
	FUZZ_ASSERT(msg->topic != NULL);
	tl = strnlen(msg->topic, 65536);
	FUZZ_ASSERT(tl >= 1 && tl <= 65535);
	FUZZ_ASSERT(fmq_in_input(msg->topic, tl));
	FUZZ_ASSERT(msg->payload != NULL || msg->len == 0);
	FUZZ_ASSERT(msg->len < fmq.size);
	FUZZ_ASSERT(fmq_in_input(msg->payload, msg->len));
	if(msg->corr){
		FUZZ_ASSERT(msg->corr_len <= 65535);
		FUZZ_ASSERT(fmq_in_input(msg->corr, msg->corr_len));
	}else{
		FUZZ_ASSERT(msg->corr_len == 0);
	}
	if(msg->resp_topic){
		rl = strnlen(msg->resp_topic, 65536);
		FUZZ_ASSERT(rl <= 65535);
		FUZZ_ASSERT(fmq_in_input(msg->resp_topic, rl));
	}
	FUZZ_ASSERT(tl + msg->len + msg->corr_len + rl < fmq.size);
	fmq.msgs++;
	if(fmq.close_at && fmq.msgs == fmq.close_at){
		mqtt__close(fmq.m);
		fmq.closed = true;
	}
}

static bool fmq_wait(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do{
		rc = poll(&p, 1, ms);
	}while(rc < 0 && errno == EINTR);
	return rc > 0;
}

static void fmq_listen(void)
{
	struct sockaddr_in a;

	if(fmq.lfd >= 0) return;
	fmq.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_ASSERT(fmq.lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_ASSERT(bind(fmq.lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	FUZZ_ASSERT(listen(fmq.lfd, 4) == 0);
}

static int fmq_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	FUZZ_ASSERT(getsockname(fmq.lfd, (struct sockaddr *)&a, &len) == 0);
	return ntohs(a.sin_port);
}

/* Keep everything the client writes (the broker's side never blocks it);
 * true once the client closed. */
static bool fmq_drain(void)
{
	ssize_t r;

	for(;;){
		if(fmq.out_cap - fmq.out_len < 4096){
			unsigned char *p = realloc(fmq.out, fmq.out_cap * 2 + 4096);

			FUZZ_ASSERT(p != NULL);
			fmq.out = p;
			fmq.out_cap = fmq.out_cap * 2 + 4096;
		}
		r = recv(fmq.bfd, fmq.out + fmq.out_len, fmq.out_cap - fmq.out_len, MSG_DONTWAIT);
		if(r > 0){
			fmq.out_len += (size_t)r;
			continue;
		}
		if(r == 0) return true;
		if(errno == EINTR) continue;
		if(errno == EAGAIN || errno == EWOULDBLOCK) return false;
		FUZZ_ASSERT(errno == ECONNRESET);
		return true;
	}
}

static int fmq_queued(int fd, unsigned long req)
{
	int n = 0;

	FUZZ_ASSERT(ioctl(fd, req, &n) == 0);
	return n;
}

/* mqtt__read once, checking what it returns. */
static void fmq_read(void)
{
	char err[256];
	int rc;

	err[0] = '\0';
	rc = mqtt__read(fmq.m, 1u << 16, err, sizeof(err));
	if(rc == MQC_OK){
		FUZZ_ASSERT(mqtt__is_open(fmq.m) == !fmq.closed);
		return;
	}
	FUZZ_ASSERT(rc == MQC_ERR_IO);
	FUZZ_ASSERT(!fmq.closed);
	FUZZ_ASSERT(!mqtt__is_open(fmq.m) && mqtt__fd(fmq.m) == -1 && !mqtt__want_write(fmq.m));
	FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	fmq.closed = true;
}

/* Send len bytes as the broker, reading on the client's side until it has
 * read them all (acknowledged, its socket empty) or closed. */
static void fmq_deliver(const uint8_t *p, size_t len)
{
	int64_t deadline = time__mono_ms() + FMQ_WAIT_MS;
	int one = 1;
	size_t off = 0;
	ssize_t n;

	for(;;){
		/* The bytes count as delivered when acknowledged: no delayed ACK. */
		FUZZ_ASSERT(setsockopt(mqtt__fd(fmq.m), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) == 0);
		if(off < len){
			n = send(fmq.bfd, p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if(n > 0) off += (size_t)n;
			else FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		}
		FUZZ_ASSERT(time__mono_ms() < deadline);
		(void)fmq_wait(mqtt__fd(fmq.m), POLLIN, 10);
		fmq_read();
		if(fmq.closed) return;
		(void)fmq_drain();
		if(off == len && fmq_queued(fmq.bfd, TIOCOUTQ) == 0 && fmq_queued(mqtt__fd(fmq.m), FIONREAD) == 0) return;
	}
}

static void fmq_flush(void)
{
	char err[256];

	fmq.flushed = true;
	if(mqtt__flush(fmq.m, err, sizeof(err)) != MQC_OK){
		FUZZ_ASSERT(!mqtt__is_open(fmq.m));
		fmq.closed = true;
	}
}

/* Read exactly n bytes the client sent. */
static void fmq_recv(unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while(got < n){
		FUZZ_ASSERT(fmq_wait(fmq.bfd, POLLIN, FMQ_WAIT_MS));
		r = recv(fmq.bfd, buf + got, n - got, MSG_DONTWAIT);
		FUZZ_ASSERT(r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)));
		if(r > 0) got += (size_t)r;
	}
}

/* Every packet the client wrote after its CONNECT is whole and expected. */
static void fmq_check_output(bool disconnected)
{
	const unsigned char *p = fmq.out, *end = fmq.out + fmq.out_len;
	int pubacks = 0, publishes = 0;
	bool last_disconnect = false;

	while(p < end){
		size_t rl = 0, mult = 1;
		int i = 1;

		FUZZ_ASSERT(!last_disconnect);
		for(;;){
			FUZZ_ASSERT(i <= 4 && p + i < end);
			rl += (size_t)(p[i] & 0x7f) * mult;
			mult *= 128;
			if((p[i] & 0x80) == 0) break;
			i++;
		}
		FUZZ_ASSERT((size_t)(end - p - i - 1) >= rl);
		switch(p[0]){
			case 0x40:
				FUZZ_ASSERT(rl == 2 && (p[2] | p[3]) != 0);
				pubacks++;
				break;
			case 0x32:
				publishes++;
				break;
			case 0xe0:
				FUZZ_ASSERT(rl == 0);
				last_disconnect = true;
				break;
			default:
				FUZZ_ASSERT(!"an unexpected packet from the client");
		}
		p += 1 + i + rl;
	}
	FUZZ_ASSERT(pubacks <= fmq.msgs);
	if(!fmq.flushed) FUZZ_ASSERT(pubacks == 0);
	FUZZ_ASSERT(publishes <= 3);
	FUZZ_ASSERT(last_disconnect == disconnected);
}

FUZZ_TARGET(mqtt)
{
	static const struct mqtt_callbacks cb = {
		.on_connack = fmq_on_connack, .on_suback = fmq_on_suback, .on_message = fmq_on_message,
	};
	static const uint8_t connack[] = {0x20, 0x03, 0x00, 0x00, 0x00};
	static const uint8_t connack_rm2[] = {0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x02};
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct mqtt_opts o;
	unsigned char hdr[5], body[512];
	char err[256];
	uint8_t ctl;
	size_t chunk, off, rl = 0, mult = 1, hl = 1;
	bool disconnected = false;
	int64_t deadline;

	if(size < 1) return 0;
	ctl = data[0];
	fmq_listen();
	fmq.data = data;
	fmq.size = size;
	fmq.closed = fmq.flushed = false;
	fmq.close_at = (ctl & 0x10) ? 2 : 0;
	fmq.msgs = fmq.connacks = fmq.subacks = 0;
	fmq.out_len = 0;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = fmq_port();
	o.client_id = "archiver@0";
	o.user = "archiver";
	o.password = "pw";
	o.keepalive = 30;
	o.session_expiry = 3600;
	o.receive_max = 100;
	o.max_packet = FMQ_MAX_PACKET;
	fmq.m = mqtt__new(&o, &cb, NULL);
	FUZZ_ASSERT(fmq.m != NULL);
	FUZZ_ASSERT(mqtt__connect(fmq.m, err, sizeof(err)) == MQC_OK);
	FUZZ_ASSERT(fmq_wait(fmq.lfd, POLLIN, FMQ_WAIT_MS));
	fmq.bfd = accept4(fmq.lfd, NULL, NULL, SOCK_CLOEXEC);
	FUZZ_ASSERT(fmq.bfd >= 0);
	FUZZ_ASSERT(setsockopt(fmq.bfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	/* The CONNECT: header, then its body. */
	fmq_recv(hdr, 2);
	FUZZ_ASSERT(hdr[0] == 0x10);
	while(hdr[hl] & 0x80){
		rl += (size_t)(hdr[hl] & 0x7f) * mult;
		mult *= 128;
		FUZZ_ASSERT(++hl < 5);
		fmq_recv(hdr + hl, 1);
	}
	rl += (size_t)hdr[hl] * mult;
	FUZZ_ASSERT(rl <= sizeof(body));
	fmq_recv(body, rl);

	if(!(ctl & 0x80)){
		if(ctl & 0x40) fmq_deliver(connack_rm2, sizeof(connack_rm2));
		else fmq_deliver(connack, sizeof(connack));
		FUZZ_ASSERT(fmq.connacks == 1 && mqtt__is_ready(fmq.m));
	}
	if((ctl & 0x40) && !fmq.closed){
		FUZZ_ASSERT(mqtt__publish(fmq.m, "chat/rpc/a/resp", "1", 1, "c", 1) == MQC_OK);
		FUZZ_ASSERT(mqtt__publish(fmq.m, "chat/rpc/a/resp", "2", 1, NULL, 0) == MQC_OK);
		FUZZ_ASSERT(mqtt__publish(fmq.m, "chat/rpc/a/resp", "3", 1, "", 0) == MQC_OK);
		fmq_flush();
		fmq.flushed = false;
	}

	chunk = (ctl & 0x0f) ? (size_t)(ctl & 0x0f) * (ctl & 0x0f) : size;
	for(off = 1; off < size && !fmq.closed; off += chunk){
		fmq_deliver(data + off, size - off < chunk ? size - off : chunk);
		if((ctl & 0x20) && !fmq.closed) fmq_flush();
	}
	if(!fmq.closed){
		fmq.flushed = true;
		mqtt__disconnect(fmq.m, false, 1000);
		disconnected = true;
	}
	FUZZ_ASSERT(!mqtt__is_open(fmq.m));
	/* Everything the client wrote, up to its close. */
	deadline = time__mono_ms() + FMQ_WAIT_MS;
	while(!fmq_drain()){
		FUZZ_ASSERT(time__mono_ms() < deadline);
		(void)fmq_wait(fmq.bfd, POLLIN, 100);
	}
	fmq_check_output(disconnected);

	close(fmq.bfd);
	fmq.bfd = -1;
	mqtt__free(fmq.m);
	fmq.m = NULL;
	return 0;
}
