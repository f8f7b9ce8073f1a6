/* mqtt.c - the archiver's MQTT 5 connection (see mqtt.h).
 *
 * Wire format: MQTT 5.0 (OASIS), only what mqtt.h promises. Incoming QoS 2
 * and AUTH are protocol errors here: the archiver subscribes at QoS 1 and
 * uses no enhanced authentication. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bus.h"
#include "err.h"
#include "mqtt.h"
#include "timeutil.h"

/* Packet types (high nibble of the first byte). */
enum {
	PT_CONNECT = 1, PT_CONNACK = 2, PT_PUBLISH = 3, PT_PUBACK = 4, PT_PUBREC = 5,
	PT_PUBREL = 6, PT_PUBCOMP = 7, PT_SUBSCRIBE = 8, PT_SUBACK = 9, PT_UNSUBSCRIBE = 10,
	PT_UNSUBACK = 11, PT_PINGREQ = 12, PT_PINGRESP = 13, PT_DISCONNECT = 14, PT_AUTH = 15,
};

/* Property identifiers used here. */
#define PROP_SESSION_EXPIRY 0x11
#define PROP_SERVER_KEEP_ALIVE 0x13
#define PROP_RECEIVE_MAXIMUM 0x21
#define PROP_MAXIMUM_PACKET_SIZE 0x27
#define PROP_RESPONSE_TOPIC 0x08
#define PROP_CORRELATION_DATA 0x09
#define PROP_USER 0x26

/* The read buffer starts at this size and grows for a larger packet. */
#define IN_CHUNK (64 * 1024)
/* Largest single SSL_write: a retry after WANT_WRITE repeats this length. */
#define TLS_WRITE_MAX (16 * 1024)

struct buf {
	unsigned char *data;
	size_t start, end, cap;
};

/* A QoS 1 PUBLISH that waits for the broker's receive quota. */
struct queued {
	struct queued *next;
	size_t len;
	unsigned char data[];
};

struct mqtt {
	struct mqtt_opts o;
	struct mqtt_callbacks cb;
	void *arg;

	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool tls_want_write;  /* SSL_read asked for a writable socket */
	size_t tls_wlen;      /* length of an SSL_write to repeat, or 0 */
	bool ready;           /* CONNACK 0 received */
	bool dispatching;     /* inside a callback: no mqtt__connect */
	char *host;           /* copy of o.host: OpenSSL's SNI setter takes char * */
	int keepalive;        /* seconds: ours, or the broker's Server Keep Alive */

	struct buf in, out;
	char topic[65536];    /* the PUBLISH topic, NUL-terminated */
	char rtopic[65536];   /* its response topic */

	uint16_t next_mid;
	uint32_t inflight;    /* our QoS 1 publishes not yet acknowledged */
	uint32_t quota;       /* the broker's receive maximum */
	struct queued *q_head, *q_tail;

	int64_t opened;       /* monotonic ms: socket connected */
	int64_t last_out;     /* monotonic ms: last byte written */
	int64_t ping_sent;    /* monotonic ms of an unanswered PINGREQ, or 0 */
};

static const struct {
	int code;
	const char *text;
} reasons[] = {
	{ 0x00, "success" }, { 0x04, "disconnect with will" }, { 0x80, "unspecified error" },
	{ 0x81, "malformed packet" }, { 0x82, "protocol error" },
	{ 0x83, "implementation specific error" }, { 0x84, "unsupported protocol version" },
	{ 0x85, "client identifier not valid" }, { 0x86, "bad user name or password" },
	{ 0x87, "not authorized" }, { 0x88, "server unavailable" }, { 0x89, "server busy" },
	{ 0x8a, "banned" }, { 0x8b, "server shutting down" }, { 0x8c, "bad authentication method" },
	{ 0x8d, "keep alive timeout" }, { 0x8e, "session taken over" },
	{ 0x8f, "topic filter invalid" }, { 0x90, "topic name invalid" },
	{ 0x93, "receive maximum exceeded" }, { 0x94, "topic alias invalid" },
	{ 0x95, "packet too large" }, { 0x96, "message rate too high" },
	{ 0x97, "quota exceeded" }, { 0x98, "administrative action" },
	{ 0x99, "payload format invalid" }, { 0x9c, "use another server" },
	{ 0x9d, "server moved" }, { 0x9f, "connection rate exceeded" },
};

const char *mqtt__reason(int code)
{
	size_t i;

	for(i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++){
		if(reasons[i].code == code) return reasons[i].text;
	}
	return "unknown reason";
}

/* ---- buffers ---- */

/* Room for n more bytes at the end of b. */
static int buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	unsigned char *p;

	if(b->cap - b->end >= n) return MQC_OK;
	if(b->start > 0){
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
		if(b->cap - b->end >= n) return MQC_OK;
	}
	need = b->end + n;
	cap = b->cap ? b->cap : IN_CHUNK;
	while(cap < need) cap *= 2;
	p = realloc(b->data, cap);
	if(p == NULL) return MQC_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return MQC_OK;
}

static void buf_reset(struct buf *b)
{
	b->start = b->end = 0;
}

static void put_u8(unsigned char **p, unsigned v)
{
	*(*p)++ = (unsigned char)v;
}

static void put_u16(unsigned char **p, unsigned v)
{
	*(*p)++ = (unsigned char)(v >> 8);
	*(*p)++ = (unsigned char)v;
}

static void put_u32(unsigned char **p, uint32_t v)
{
	put_u16(p, v >> 16);
	put_u16(p, v & 0xffff);
}

static void put_bytes(unsigned char **p, const void *s, size_t n)
{
	put_u16(p, (unsigned)n);
	memcpy(*p, s, n);
	*p += n;
}

static size_t varint_len(size_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_varint(unsigned char **p, size_t v)
{
	do{
		unsigned char b = (unsigned char)(v % 128);

		v /= 128;
		if(v) b |= 0x80;
		*(*p)++ = b;
	}while(v);
}

/* Decode a variable byte integer from [p, end). Returns the bytes used, 0 if
 * more input is needed, -1 if malformed. */
static int get_varint(const unsigned char *p, const unsigned char *end, size_t *v)
{
	size_t mult = 1, val = 0;
	int i;

	for(i = 0; i < 4; i++){
		if(p + i >= end) return 0;
		val += (size_t)(p[i] & 0x7f) * mult;
		if((p[i] & 0x80) == 0){
			*v = val;
			return i + 1;
		}
		mult *= 128;
	}
	return -1;
}

/* Start a packet of remaining length rl in the output buffer; returns where
 * its variable header goes, or NULL when out of memory. */
static unsigned char *out_begin(struct mqtt *m, unsigned first, size_t rl)
{
	unsigned char *p;

	if(buf_reserve(&m->out, 1 + varint_len(rl) + rl) != MQC_OK) return NULL;
	p = m->out.data + m->out.end;
	put_u8(&p, first);
	put_varint(&p, rl);
	m->out.end = (size_t)(p - m->out.data) + rl;
	return p;
}

static uint16_t next_mid(struct mqtt *m)
{
	if(++m->next_mid == 0) m->next_mid = 1;
	return m->next_mid;
}

/* ---- the socket ---- */

struct mqtt *mqtt__new(const struct mqtt_opts *opts, const struct mqtt_callbacks *cb, void *arg)
{
	struct mqtt *m = calloc(1, sizeof(*m));

	if(m == NULL) return NULL;
	m->o = *opts;
	m->cb = *cb;
	m->arg = arg;
	m->fd = -1;
	m->host = strdup(opts->host);
	if(m->host == NULL){
		free(m);
		return NULL;
	}
	return m;
}

static void drop_queue(struct mqtt *m)
{
	struct queued *q, *next;

	for(q = m->q_head; q; q = next){
		next = q->next;
		free(q);
	}
	m->q_head = m->q_tail = NULL;
}

void mqtt__close(struct mqtt *m)
{
	if(m == NULL || m->fd < 0) return;
	if(m->ssl){
		SSL_free(m->ssl);
		m->ssl = NULL;
	}
	close(m->fd);
	m->fd = -1;
	m->ready = false;
	m->tls_want_write = false;
	m->tls_wlen = 0;
	m->inflight = 0;
	m->ping_sent = 0;
	buf_reset(&m->in);
	buf_reset(&m->out);
	drop_queue(m);
}

void mqtt__free(struct mqtt *m)
{
	if(m == NULL) return;
	mqtt__close(m);
	if(m->ctx) SSL_CTX_free(m->ctx);
	free(m->host);
	free(m->in.data);
	free(m->out.data);
	free(m);
}

bool mqtt__is_open(const struct mqtt *m)
{
	return m->fd >= 0;
}

bool mqtt__is_ready(const struct mqtt *m)
{
	return m->fd >= 0 && m->ready;
}

int mqtt__fd(const struct mqtt *m)
{
	return m->fd;
}

bool mqtt__want_write(const struct mqtt *m)
{
	return m->fd >= 0 && (m->out.end > m->out.start || m->tls_want_write);
}

bool mqtt__pending(const struct mqtt *m)
{
	return m->fd >= 0 && m->ssl && (SSL_pending(m->ssl) > 0 || m->tls_want_write);
}

/* The last OpenSSL error as text, with the certificate verdict if that was it. */
static void tls_err(struct mqtt *m, char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	long v = m->ssl ? SSL_get_verify_result(m->ssl) : X509_V_OK;
	char buf[256];

	if(v != X509_V_OK){
		mqc_seterr(err, errlen, "TLS error: %s: %s", what, X509_verify_cert_error_string(v));
	}else if(e){
		ERR_error_string_n(e, buf, sizeof(buf));
		mqc_seterr(err, errlen, "TLS error: %s: %s", what, buf);
	}else{
		mqc_seterr(err, errlen, "TLS error: %s: %s", what, errno ? strerror(errno) : "connection closed");
	}
	ERR_clear_error();
}

/* Wait until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t now;
	int rc;

	for(;;){
		now = time__mono_ms();
		if(now >= deadline) return MQC_ERR_TIMEOUT;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(deadline - now));
		if(rc > 0) return MQC_OK;
		if(rc < 0 && errno != EINTR) return MQC_ERR_IO;
	}
}

/* Non-blocking TCP connection to one address, bounded by deadline. */
static int tcp_connect(const struct addrinfo *ai, int64_t deadline, int *fdout)
{
	int fd, one = 1, soerr = 0;
	socklen_t len = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if(fd < 0) return MQC_ERR_IO;
	if(connect(fd, ai->ai_addr, ai->ai_addrlen) != 0){
		if(errno != EINPROGRESS){
			soerr = errno;
			goto fail;
		}
		if(wait_fd(fd, POLLOUT, deadline) != MQC_OK){
			soerr = ETIMEDOUT;
			goto fail;
		}
		if(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
		if(soerr) goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fdout = fd;
	return MQC_OK;
fail:
	close(fd);
	errno = soerr;
	return MQC_ERR_IO;
}

static int tls_start(struct mqtt *m, int64_t deadline, char *err, size_t errlen)
{
	struct in6_addr a6;
	struct in_addr a4;
	int rc, e;

	ERR_clear_error();
	if(m->ctx == NULL){
		m->ctx = SSL_CTX_new(TLS_client_method());
		if(m->ctx == NULL){
			tls_err(m, err, errlen, "context");
			return MQC_ERR_IO;
		}
		SSL_CTX_set_min_proto_version(m->ctx, TLS1_2_VERSION);
		SSL_CTX_set_verify(m->ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_mode(m->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if(SSL_CTX_load_verify_locations(m->ctx, m->o.cafile, NULL) != 1){
			tls_err(m, err, errlen, m->o.cafile);
			SSL_CTX_free(m->ctx);
			m->ctx = NULL;
			return MQC_ERR_IO;
		}
	}
	m->ssl = SSL_new(m->ctx);
	if(m->ssl == NULL || SSL_set_fd(m->ssl, m->fd) != 1){
		tls_err(m, err, errlen, "session");
		return MQC_ERR_IO;
	}
	/* The broker's certificate must name the host we asked for. */
	if(inet_pton(AF_INET, m->o.host, &a4) == 1 || inet_pton(AF_INET6, m->o.host, &a6) == 1){
		rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m->ssl), m->o.host);
	}else{
		rc = SSL_set_tlsext_host_name(m->ssl, m->host) == 1 && SSL_set1_host(m->ssl, m->host) == 1;
	}
	if(rc != 1){
		tls_err(m, err, errlen, "host name");
		return MQC_ERR_IO;
	}
	for(;;){
		errno = 0;
		rc = SSL_connect(m->ssl);
		if(rc == 1) return MQC_OK;
		e = SSL_get_error(m->ssl, rc);
		if(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE){
			if(wait_fd(m->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != MQC_OK){
				mqc_seterr(err, errlen, "TLS error: handshake timed out");
				return MQC_ERR_IO;
			}
			continue;
		}
		tls_err(m, err, errlen, "handshake");
		return MQC_ERR_IO;
	}
}

static int send_connect(struct mqtt *m)
{
	size_t lid = strlen(m->o.client_id), lu = strlen(m->o.user), lp = strlen(m->o.password);
	size_t props = 5 + 3 + 5, rl;
	unsigned char *p;

	if(lid > 65535 || lu > 65535 || lp > 65535) return MQC_ERR_INVAL;
	rl = 10 + varint_len(props) + props + 2 + lid + 2 + lu + 2 + lp;
	p = out_begin(m, PT_CONNECT << 4, rl);
	if(p == NULL) return MQC_ERR_NOMEM;
	put_bytes(&p, "MQTT", 4);
	put_u8(&p, 5);                     /* protocol level: MQTT 5 */
	put_u8(&p, 0x80 | 0x40);           /* user name, password; clean start off */
	put_u16(&p, (unsigned)m->o.keepalive);
	put_varint(&p, props);
	put_u8(&p, PROP_SESSION_EXPIRY);
	put_u32(&p, m->o.session_expiry);
	put_u8(&p, PROP_RECEIVE_MAXIMUM);
	put_u16(&p, m->o.receive_max);
	put_u8(&p, PROP_MAXIMUM_PACKET_SIZE);
	put_u32(&p, m->o.max_packet);
	put_bytes(&p, m->o.client_id, lid);
	put_bytes(&p, m->o.user, lu);
	put_bytes(&p, m->o.password, lp);
	return MQC_OK;
}

int mqtt__connect(struct mqtt *m, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int64_t deadline = time__mono_ms() + MQTT_CONNECT_TIMEOUT_MS;
	int rc, saved = 0;

	if(m->dispatching){
		/* The read buffer and its position belong to the connection being
		 * dispatched: a new one must wait until mqtt__read returns. */
		mqc_seterr(err, errlen, "connect from inside a callback");
		return MQC_ERR_INVAL;
	}
	mqtt__close(m);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", m->o.port);
	rc = getaddrinfo(m->o.host, port, &hints, &res);
	if(rc != 0){
		mqc_seterr(err, errlen, "%s", gai_strerror(rc));
		return MQC_ERR_IO;
	}
	rc = MQC_ERR_IO;
	for(ai = res; ai; ai = ai->ai_next){
		if(tcp_connect(ai, deadline, &m->fd) == MQC_OK){
			rc = MQC_OK;
			break;
		}
		saved = errno;
	}
	freeaddrinfo(res);
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s", strerror(saved ? saved : ECONNREFUSED));
		return MQC_ERR_IO;
	}
	m->next_mid = 0;
	m->quota = 65535;
	m->keepalive = m->o.keepalive;
	m->opened = m->last_out = time__mono_ms();
	if(m->o.cafile && tls_start(m, deadline, err, errlen) != MQC_OK){
		mqtt__close(m);
		return MQC_ERR_IO;
	}
	rc = send_connect(m);
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s", mqc_strerror(rc));
		mqtt__close(m);
		return rc;
	}
	return mqtt__flush(m, err, errlen);
}

/* For sock_read and sock_write when the connection is over: close it here,
 * once for every caller, and return their -1. */
static ssize_t sock_fail(struct mqtt *m)
{
	mqtt__close(m);
	return -1;
}

/* Read into p. Returns bytes read, 0 when nothing is there now, -1 when the
 * connection ended or failed (reason in err); it is closed then. */
static ssize_t sock_read(struct mqtt *m, void *p, size_t n, char *err, size_t errlen)
{
	ssize_t r;
	int e;

	if(m->ssl){
		ERR_clear_error();
		errno = 0;
		m->tls_want_write = false;
		r = SSL_read(m->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
		if(r > 0) return r;
		e = SSL_get_error(m->ssl, (int)r);
		if(e == SSL_ERROR_WANT_READ) return 0;
		if(e == SSL_ERROR_WANT_WRITE){
			m->tls_want_write = true;
			return 0;
		}
		if(e == SSL_ERROR_ZERO_RETURN){
			mqc_seterr(err, errlen, "the broker closed the connection");
		}else{
			tls_err(m, err, errlen, "read");
		}
		return sock_fail(m);
	}
	for(;;){
		r = read(m->fd, p, n);
		if(r > 0) return r;
		if(r == 0){
			mqc_seterr(err, errlen, "the broker closed the connection");
			return sock_fail(m);
		}
		if(errno == EINTR) continue;
		if(errno == EAGAIN || errno == EWOULDBLOCK) return 0;
		mqc_seterr(err, errlen, "%s", strerror(errno));
		return sock_fail(m);
	}
}

/* Write from p. Returns bytes written, 0 when the socket is full, -1 on
 * failure (reason in err); the connection is closed then. */
static ssize_t sock_write(struct mqtt *m, const void *p, size_t n, char *err, size_t errlen)
{
	ssize_t r;
	int e;

	if(m->ssl){
		/* A write that wanted more room must be repeated as it was. */
		if(m->tls_wlen) n = m->tls_wlen;
		else if(n > TLS_WRITE_MAX) n = TLS_WRITE_MAX;
		ERR_clear_error();
		errno = 0;
		r = SSL_write(m->ssl, p, (int)n);
		if(r > 0){
			m->tls_wlen = 0;
			return r;
		}
		e = SSL_get_error(m->ssl, (int)r);
		if(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ){
			m->tls_wlen = n;
			return 0;
		}
		tls_err(m, err, errlen, "write");
		return sock_fail(m);
	}
	for(;;){
		r = send(m->fd, p, n, MSG_NOSIGNAL);
		if(r >= 0) return r;
		if(errno == EINTR) continue;
		if(errno == EAGAIN || errno == EWOULDBLOCK) return 0;
		mqc_seterr(err, errlen, "%s", strerror(errno));
		return sock_fail(m);
	}
}

int mqtt__flush(struct mqtt *m, char *err, size_t errlen)
{
	ssize_t n;

	if(m->fd < 0){
		mqc_seterr(err, errlen, "not connected");
		return MQC_ERR_IO;
	}
	if(m->tls_want_write && m->out.end == m->out.start){
		/* SSL_read wanted to write: the next read repeats it. */
		return MQC_OK;
	}
	while(m->out.end > m->out.start){
		n = sock_write(m, m->out.data + m->out.start, m->out.end - m->out.start, err, errlen);
		if(n < 0) return MQC_ERR_IO;
		if(n == 0) break;
		m->out.start += (size_t)n;
		m->last_out = time__mono_ms();
	}
	if(m->out.start == m->out.end) buf_reset(&m->out);
	return MQC_OK;
}

/* ---- incoming packets ---- */

/* The next property in [p, end): its id, and its value as bytes (strings and
 * binary data without their length) or number. Returns the position after it,
 * or NULL if malformed. */
static const unsigned char *prop_next(const unsigned char *p, const unsigned char *end,
		int *id, const unsigned char **val, size_t *vlen, uint32_t *num)
{
	size_t n;
	int used;

	if(p >= end || (*p & 0x80)) return NULL;
	*id = *p++;
	*val = NULL;
	*vlen = 0;
	*num = 0;
	switch(*id){
		case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2a:
			if(end - p < 1) return NULL;
			*num = p[0];
			return p + 1;
		case 0x13: case 0x21: case 0x22: case 0x23:
			if(end - p < 2) return NULL;
			*num = (uint32_t)(p[0] << 8 | p[1]);
			return p + 2;
		case 0x02: case 0x11: case 0x18: case 0x27:
			if(end - p < 4) return NULL;
			*num = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			return p + 4;
		case 0x0b:
			used = get_varint(p, end, &n);
			if(used <= 0) return NULL;
			*num = (uint32_t)n;
			return p + used;
		case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1a:
		case 0x1c: case 0x1f:
			if(end - p < 2) return NULL;
			n = (size_t)(p[0] << 8 | p[1]);
			if((size_t)(end - p - 2) < n) return NULL;
			*val = p + 2;
			*vlen = n;
			return p + 2 + n;
		case 0x26:   /* user property: two strings; *val the name */
			if(end - p < 2) return NULL;
			n = (size_t)(p[0] << 8 | p[1]);
			if((size_t)(end - p - 2) < n) return NULL;
			*val = p + 2;
			*vlen = n;
			p += 2 + n;
			if(end - p < 2) return NULL;
			n = (size_t)(p[0] << 8 | p[1]);
			if((size_t)(end - p - 2) < n) return NULL;
			return p + 2 + n;
		default:
			return NULL;
	}
}

/* The property block at *pp (length, then properties) within [*pp, end):
 * *props and *pend delimit it; *pp moves past it. False if malformed. */
static bool props_block(const unsigned char **pp, const unsigned char *end,
		const unsigned char **props, const unsigned char **pend)
{
	size_t len;
	int used = get_varint(*pp, end, &len);

	if(used <= 0 || (size_t)(end - *pp - used) < len) return false;
	*props = *pp + used;
	*pend = *props + len;
	*pp = *pend;
	return true;
}

static int handle_connack(struct mqtt *m, const unsigned char *p, size_t rl, char *err, size_t errlen)
{
	const unsigned char *end = p + rl, *q, *props, *pend, *val;
	size_t vlen;
	uint32_t num;
	int id;

	if(rl < 2){
		mqc_seterr(err, errlen, "malformed CONNACK");
		return MQC_ERR_INVAL;
	}
	if(p[1] != 0){
		mqc_seterr(err, errlen, "the broker refused the connection: %s (0x%02x)", mqtt__reason(p[1]), p[1]);
		return MQC_ERR_PERM;
	}
	q = p + 2;
	if(q < end){
		if(!props_block(&q, end, &props, &pend)){
			mqc_seterr(err, errlen, "malformed CONNACK properties");
			return MQC_ERR_INVAL;
		}
		while(props < pend){
			props = prop_next(props, pend, &id, &val, &vlen, &num);
			if(props == NULL){
				mqc_seterr(err, errlen, "malformed CONNACK properties");
				return MQC_ERR_INVAL;
			}
			if(id == PROP_RECEIVE_MAXIMUM && num > 0) m->quota = num;
			/* The broker's keepalive wins over ours (MQTT 5, 3.2.2.3.14). */
			if(id == PROP_SERVER_KEEP_ALIVE) m->keepalive = (int)num;
		}
	}
	m->ready = true;
	if(m->cb.on_connack) m->cb.on_connack(m->arg, (p[0] & 1) != 0);
	return MQC_OK;
}

static int handle_publish(struct mqtt *m, unsigned flags, const unsigned char *p, size_t rl,
		char *err, size_t errlen)
{
	const unsigned char *end = p + rl, *props, *pend, *val;
	struct mqtt_msg msg;
	unsigned qos = (flags >> 1) & 3;
	unsigned mid = 0;
	size_t tl, vlen;
	uint32_t num;
	int id;

	if(qos > 1){
		mqc_seterr(err, errlen, "PUBLISH at QoS %u, above the subscription's", qos);
		return MQC_ERR_INVAL;
	}
	if(rl < 2) goto malformed;
	tl = (size_t)(p[0] << 8 | p[1]);
	if(tl == 0 || (size_t)(end - p - 2) < tl) goto malformed;
	memcpy(m->topic, p + 2, tl);
	m->topic[tl] = '\0';
	if(memchr(m->topic, '\0', tl)) goto malformed;
	p += 2 + tl;
	if(qos){
		if(end - p < 2) goto malformed;
		mid = (unsigned)(p[0] << 8 | p[1]);
		if(mid == 0) goto malformed;
		p += 2;
	}
	memset(&msg, 0, sizeof(msg));
	if(!props_block(&p, end, &props, &pend)) goto malformed;
	while(props < pend){
		props = prop_next(props, pend, &id, &val, &vlen, &num);
		if(props == NULL) goto malformed;
		if(id == PROP_CORRELATION_DATA){
			/* Echoed in the answer: more than MQTT_MAX_CORR would let a
			 * request push the answer past the broker's packet limit,
			 * which closes the archiver's connection. Not echoed. */
			msg.corr = vlen <= MQTT_MAX_CORR ? val : NULL;
			msg.corr_len = vlen <= MQTT_MAX_CORR ? vlen : 0;
		}else if(id == PROP_RESPONSE_TOPIC){
			memcpy(m->rtopic, val, vlen);
			m->rtopic[vlen] = '\0';
			msg.resp_topic = m->rtopic;
		}else if(id == PROP_USER && vlen == sizeof(BUS_ORIGIN_PROPERTY) - 1
				&& memcmp(val, BUS_ORIGIN_PROPERTY, vlen) == 0){
			msg.from_bus = true;
		}
	}
	msg.topic = m->topic;
	msg.payload = p;
	msg.len = (size_t)(end - p);
	if(m->cb.on_message) m->cb.on_message(m->arg, &msg);
	/* The callback may have closed the connection (the archive failed):
	 * then there is nothing to acknowledge on. */
	if(m->fd < 0) return MQC_OK;
	if(qos == 1){
		unsigned char *q = out_begin(m, PT_PUBACK << 4, 2);

		if(q == NULL){
			mqc_seterr(err, errlen, "out of memory");
			return MQC_ERR_NOMEM;
		}
		put_u16(&q, mid);
	}
	return MQC_OK;
malformed:
	mqc_seterr(err, errlen, "malformed PUBLISH");
	return MQC_ERR_INVAL;
}

/* One of our publishes is acknowledged: let a waiting one go. */
static int handle_puback(struct mqtt *m)
{
	struct queued *q = m->q_head;

	if(m->inflight > 0) m->inflight--;
	if(q == NULL) return MQC_OK;
	if(buf_reserve(&m->out, q->len) != MQC_OK) return MQC_ERR_NOMEM;
	memcpy(m->out.data + m->out.end, q->data, q->len);
	m->out.end += q->len;
	m->inflight++;
	m->q_head = q->next;
	if(m->q_head == NULL) m->q_tail = NULL;
	free(q);
	return MQC_OK;
}

static int handle_suback(struct mqtt *m, const unsigned char *p, size_t rl, char *err, size_t errlen)
{
	const unsigned char *end = p + rl, *props, *pend;

	if(rl < 3) goto malformed;
	p += 2;
	if(!props_block(&p, end, &props, &pend)) goto malformed;
	if(m->cb.on_suback) m->cb.on_suback(m->arg, p, (size_t)(end - p));
	return MQC_OK;
malformed:
	mqc_seterr(err, errlen, "malformed SUBACK");
	return MQC_ERR_INVAL;
}

/* One whole packet: pkt[0] is its type and flags, its body (rl bytes)
 * starts at p. */
static int handle_packet(struct mqtt *m, const unsigned char *pkt, const unsigned char *p, size_t rl,
		char *err, size_t errlen)
{
	unsigned type = pkt[0] >> 4, flags = pkt[0] & 0x0f;

	if(!m->ready && type != PT_CONNACK && type != PT_DISCONNECT){
		mqc_seterr(err, errlen, "packet type %u before CONNACK", type);
		return MQC_ERR_INVAL;
	}
	switch(type){
		case PT_CONNACK:
			if(m->ready) break;
			return handle_connack(m, p, rl, err, errlen);
		case PT_PUBLISH:
			return handle_publish(m, flags, p, rl, err, errlen);
		case PT_PUBACK:
			return handle_puback(m);
		case PT_SUBACK:
			return handle_suback(m, p, rl, err, errlen);
		case PT_UNSUBACK:
			return MQC_OK;
		case PT_PINGRESP:
			m->ping_sent = 0;
			return MQC_OK;
		case PT_DISCONNECT:
			mqc_seterr(err, errlen, "the broker disconnected: %s", rl ? mqtt__reason(p[0]) : "normal");
			return MQC_ERR_IO;
		default:
			break;
	}
	mqc_seterr(err, errlen, "unexpected packet type %u", type);
	return MQC_ERR_INVAL;
}

/* Dispatch every whole packet in the read buffer. */
static int dispatch(struct mqtt *m, char *err, size_t errlen)
{
	struct buf *b = &m->in;
	size_t rl, total;
	int used, rc;

	while(b->end - b->start >= 2){
		const unsigned char *pkt = b->data + b->start;

		used = get_varint(pkt + 1, b->data + b->end, &rl);
		if(used == 0) break;
		if(used < 0 || (size_t)used != varint_len(rl)){
			/* More than 4 bytes, or more than the value needs: both
			 * malformed (MQTT 5, 1.5.5). */
			mqc_seterr(err, errlen, "malformed packet length");
			return MQC_ERR_INVAL;
		}
		total = 1 + (size_t)used + rl;
		if(total > (size_t)m->o.max_packet){
			mqc_seterr(err, errlen, "a packet of %zu bytes, above the %u announced", total, m->o.max_packet);
			return MQC_ERR_INVAL;
		}
		if(b->end - b->start < total){
			/* Make room for the rest of it. */
			if(buf_reserve(b, total - (b->end - b->start)) != MQC_OK){
				mqc_seterr(err, errlen, "out of memory");
				return MQC_ERR_NOMEM;
			}
			break;
		}
		m->dispatching = true;
		rc = handle_packet(m, pkt, pkt + 1 + used, rl, err, errlen);
		m->dispatching = false;
		if(m->fd < 0) return MQC_OK;   /* closed by a callback */
		if(rc != MQC_OK) return rc;
		b->start += total;
	}
	if(b->start == b->end) buf_reset(b);
	return MQC_OK;
}

int mqtt__read(struct mqtt *m, size_t budget, char *err, size_t errlen)
{
	size_t got = 0;
	ssize_t n;
	int rc;

	if(m->fd < 0){
		mqc_seterr(err, errlen, "not connected");
		return MQC_ERR_IO;
	}
	while(got < budget){
		if(m->in.cap - m->in.end < IN_CHUNK / 4 && buf_reserve(&m->in, IN_CHUNK / 4) != MQC_OK){
			mqc_seterr(err, errlen, "out of memory");
			mqtt__close(m);
			return MQC_ERR_NOMEM;
		}
		n = sock_read(m, m->in.data + m->in.end, m->in.cap - m->in.end, err, errlen);
		if(n < 0) return MQC_ERR_IO;
		if(n == 0) break;
		m->in.end += (size_t)n;
		got += (size_t)n;
		rc = dispatch(m, err, errlen);
		/* Closed by a callback (dispatch closes nothing itself; a
		 * callback cannot reconnect): the caller knows. */
		if(m->fd < 0) return MQC_OK;
		if(rc != MQC_OK){
			mqtt__close(m);
			return MQC_ERR_IO;
		}
	}
	return MQC_OK;
}

/* ---- outgoing packets ---- */

static int sub_unsub(struct mqtt *m, unsigned type, const char *filter, unsigned qos)
{
	size_t fl = strlen(filter), rl;
	unsigned char *p;

	if(m->fd < 0) return MQC_ERR_IO;
	if(fl == 0 || fl > 65535) return MQC_ERR_INVAL;
	rl = 2 + 1 + 2 + fl + (type == PT_SUBSCRIBE ? 1 : 0);
	p = out_begin(m, type << 4 | 0x02, rl);
	if(p == NULL) return MQC_ERR_NOMEM;
	put_u16(&p, next_mid(m));
	put_u8(&p, 0);                     /* no properties */
	put_bytes(&p, filter, fl);
	if(type == PT_SUBSCRIBE) put_u8(&p, qos);
	return MQC_OK;
}

int mqtt__subscribe(struct mqtt *m, const char *filter)
{
	return sub_unsub(m, PT_SUBSCRIBE, filter, 1);
}

int mqtt__subscribe_qos0(struct mqtt *m, const char *filter)
{
	return sub_unsub(m, PT_SUBSCRIBE, filter, 0);
}

int mqtt__unsubscribe(struct mqtt *m, const char *filter)
{
	return sub_unsub(m, PT_UNSUBSCRIBE, filter, 0);
}

int mqtt__publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
		const void *corr, size_t corr_len)
{
	size_t tl = strlen(topic), props = corr ? 3 + corr_len : 0, rl, total;
	unsigned char *p, *start;
	struct queued *q = NULL;

	if(m->fd < 0) return MQC_ERR_IO;
	if(tl == 0 || tl > 65535 || corr_len > 65535) return MQC_ERR_INVAL;
	rl = 2 + tl + 2 + varint_len(props) + props + len;
	if(rl > 268435455) return MQC_ERR_INVAL;
	total = 1 + varint_len(rl) + rl;
	if(m->inflight < m->quota){
		if(buf_reserve(&m->out, total) != MQC_OK) return MQC_ERR_NOMEM;
		start = m->out.data + m->out.end;
		m->out.end += total;
		m->inflight++;
	}else{
		/* Over the broker's receive maximum: wait for a PUBACK. */
		q = malloc(sizeof(*q) + total);
		if(q == NULL) return MQC_ERR_NOMEM;
		q->next = NULL;
		q->len = total;
		start = q->data;
		if(m->q_tail) m->q_tail->next = q;
		else m->q_head = q;
		m->q_tail = q;
	}
	p = start;
	put_u8(&p, PT_PUBLISH << 4 | 0x02);   /* QoS 1 */
	put_varint(&p, rl);
	put_bytes(&p, topic, tl);
	put_u16(&p, next_mid(m));
	put_varint(&p, props);
	if(corr){
		put_u8(&p, PROP_CORRELATION_DATA);
		put_bytes(&p, corr, corr_len);
	}
	if(len) memcpy(p, payload, len);
	return MQC_OK;
}

int mqtt__tick(struct mqtt *m, int64_t now, int64_t *next, char *err, size_t errlen)
{
	int64_t ka = (int64_t)m->keepalive * 1000;
	unsigned char *p;

	*next = now + 1000;
	if(m->fd < 0) return MQC_OK;
	if(!m->ready){
		if(now - m->opened >= MQTT_CONNECT_TIMEOUT_MS){
			mqc_seterr(err, errlen, "no CONNACK within %d s", MQTT_CONNECT_TIMEOUT_MS / 1000);
			mqtt__close(m);
			return MQC_ERR_IO;
		}
		*next = m->opened + MQTT_CONNECT_TIMEOUT_MS;
		return MQC_OK;
	}
	if(ka <= 0) return MQC_OK;
	if(m->ping_sent && now - m->ping_sent >= ka){
		mqc_seterr(err, errlen, "no answer to PINGREQ within %d s", m->keepalive);
		mqtt__close(m);
		return MQC_ERR_IO;
	}
	if(!m->ping_sent && now - m->last_out >= ka){
		p = out_begin(m, PT_PINGREQ << 4, 0);
		if(p == NULL){
			mqc_seterr(err, errlen, "out of memory");
			return MQC_ERR_NOMEM;
		}
		m->ping_sent = now;
		if(mqtt__flush(m, err, errlen) != MQC_OK) return MQC_ERR_IO;
	}
	*next = m->ping_sent ? m->ping_sent + ka : m->last_out + ka;
	return MQC_OK;
}

/* Read and discard until the broker closes the connection or deadline. */
static void await_close(struct mqtt *m, int64_t deadline)
{
	unsigned char scratch[16384];
	char err[128];
	ssize_t n;

	for(;;){
		n = sock_read(m, scratch, sizeof(scratch), err, sizeof(err));
		if(n < 0) return;                    /* closed (or failed): done */
		if(n > 0) continue;
		if(wait_fd(m->fd, m->tls_want_write ? POLLOUT : POLLIN, deadline) != MQC_OK) return;
	}
}

void mqtt__disconnect(struct mqtt *m, bool drop_unsent, int wait_ms)
{
	int64_t deadline = time__mono_ms() + wait_ms;
	char err[128];

	if(m->fd < 0) return;
	if(drop_unsent){
		/* Unless a packet is half sent (start > 0 after a short write),
		 * forget the output: the broker then sends those messages again. */
		if(m->out.start > 0 || m->tls_wlen){
			mqtt__close(m);
			return;
		}
		buf_reset(&m->out);
		drop_queue(m);
	}
	if(out_begin(m, PT_DISCONNECT << 4, 0) != NULL){
		while(mqtt__flush(m, err, sizeof(err)) == MQC_OK && mqtt__want_write(m)){
			if(wait_fd(m->fd, POLLOUT, deadline) != MQC_OK) break;
		}
		/* Wait for the broker to close its side after our DISCONNECT.
		 * Closing first, with its PUBLISHes still arriving, would answer
		 * them with a reset, and a reset makes the broker's kernel drop
		 * what the broker had not read yet: our last PUBACKs, whose
		 * messages it would then send again. What arrives meanwhile is
		 * not acknowledged, so the broker keeps it. */
		if(m->fd >= 0 && !mqtt__want_write(m)) await_close(m, deadline);
	}
	mqtt__close(m);
}
