/* mqtt.h - the archiver's MQTT 5 connection to the broker.
 *
 * A small client for exactly what the archiver does: keep a persistent
 * session, take QoS 1 messages as fast as the broker sends them, publish
 * answers at QoS 1. It replaces libmosquitto on this path because
 * libmosquitto reads every packet with three or four read() calls and sends
 * every PUBACK with a write() of its own plus one to its wake-up socket:
 * about six system calls per message, which was half of the archiver's CPU.
 * Here the socket is read in large chunks, and the PUBACKs of a chunk leave
 * in one write() -- and only when the caller says so (mqtt__flush), after it
 * has made the chunk's messages durable. So no PUBACK ever goes out for a
 * message that a killed process could lose.
 *
 * One struct mqtt per connection, driven by the caller's poll() loop; not
 * thread-safe:
 *   mqtt__new        once
 *   mqtt__connect    TCP (and TLS) connection, then CONNECT; blocks at most
 *                    MQTT_CONNECT_TIMEOUT_MS. The CONNACK arrives through
 *                    mqtt__read like any packet.
 *   mqtt__read       on POLLIN: read and dispatch packets (callbacks)
 *   mqtt__flush      on POLLOUT, and after the caller made what it read safe
 *   mqtt__tick       keepalive
 *   mqtt__disconnect say DISCONNECT (the session stays), or mqtt__close:
 *                    drop the connection and everything not yet sent.
 * A closed connection can be connected again; the broker's session keeps
 * whatever it had not received a PUBACK for. Callbacks may publish,
 * subscribe, flush, disconnect or close, but not connect (refused with
 * MQC_ERR_INVAL): that waits until mqtt__read has returned. */
#ifndef MQCHAT_ARCHIVER_MQTT_H
#define MQCHAT_ARCHIVER_MQTT_H

/* Correlation data longer than this is not echoed (mqtt.c). */
#define MQTT_MAX_CORR 1024

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTT_CONNECT_TIMEOUT_MS 5000

struct mqtt;

/* What the caller needs to know to connect. Strings are borrowed and must
 * outlive the struct mqtt. */
struct mqtt_opts {
	const char *host;
	int port;
	const char *client_id;
	const char *user;
	const char *password;
	const char *cafile;        /* TLS, verifying the broker against it, when set */
	int keepalive;             /* seconds; a Server Keep Alive in the CONNACK wins */
	uint32_t session_expiry;   /* seconds the broker keeps the session */
	uint16_t receive_max;      /* QoS 1 messages the broker may have in flight to us */
	uint32_t max_packet;       /* largest packet we accept (the broker drops larger) */
};

/* One PUBLISH received. Everything points into the read buffer and is valid
 * until the callback returns. */
struct mqtt_msg {
	const char *topic;         /* NUL-terminated */
	const unsigned char *payload;
	size_t len;
	const unsigned char *corr; /* MQTT 5 correlation data (<= MQTT_MAX_CORR), or NULL */
	size_t corr_len;
	const char *resp_topic;    /* MQTT 5 response topic (NUL-terminated), or NULL */
	bool from_bus;             /* it has the user property BUS_ORIGIN_PROPERTY (common/bus.h):
	                            * another node's message, which that node stores */
};

struct mqtt_callbacks {
	/* The broker accepted the connection. */
	void (*on_connack)(void *arg, bool session_present);
	/* SUBACK: one reason code per filter (>= 0x80: refused). */
	void (*on_suback)(void *arg, const unsigned char *codes, size_t n);
	/* A message. For QoS 1 its PUBACK is queued, and leaves with the next
	 * mqtt__flush. */
	void (*on_message)(void *arg, const struct mqtt_msg *msg);
};

/* NULL when out of memory. */
struct mqtt *mqtt__new(const struct mqtt_opts *opts, const struct mqtt_callbacks *cb, void *arg);
void mqtt__free(struct mqtt *m);

/* Connect and send CONNECT. MQC_OK, or MQC_ERR_IO / MQC_ERR_NOMEM with the
 * reason in err (errno text, "TLS error: ...", "timed out"). */
int mqtt__connect(struct mqtt *m, char *err, size_t errlen);

bool mqtt__is_open(const struct mqtt *m);
/* True once the broker accepted the connection (CONNACK 0). */
bool mqtt__is_ready(const struct mqtt *m);
/* The socket, or -1 when closed. */
int mqtt__fd(const struct mqtt *m);
/* Does output wait for the socket (poll for POLLOUT)? */
bool mqtt__want_write(const struct mqtt *m);
/* Has TLS already decrypted input that poll() cannot see? */
bool mqtt__pending(const struct mqtt *m);

/* Read up to about budget bytes and dispatch every whole packet. MQC_OK while
 * the connection stays open (also when nothing was there); MQC_ERR_IO when
 * it closed, with the reason in err (the broker's DISCONNECT reason or
 * refusal, end of stream, a protocol error). */
int mqtt__read(struct mqtt *m, size_t budget, char *err, size_t errlen);
/* Write what waits, as far as the socket takes it. MQC_OK, or MQC_ERR_IO
 * when the connection failed (then closed, reason in err). */
int mqtt__flush(struct mqtt *m, char *err, size_t errlen);

/* Queue SUBSCRIBE (QoS 1) / UNSUBSCRIBE of one filter. */
int mqtt__subscribe(struct mqtt *m, const char *filter);
int mqtt__unsubscribe(struct mqtt *m, const char *filter);
/* SUBSCRIBE at QoS 0: what the broker sends on it is never queued for the
 * session while we are away (figures that would be stale by then, which
 * must not take the queue's room from messages). */
int mqtt__subscribe_qos0(struct mqtt *m, const char *filter);
/* Queue a QoS 1 PUBLISH, with correlation data when corr is not NULL.
 * Beyond the broker's receive maximum it waits for a PUBACK. */
int mqtt__publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
		const void *corr, size_t corr_len);

/* Keepalive at monotonic time now (ms): PINGREQ when we have been quiet, and
 * a close when the broker stays silent. Returns MQC_OK or MQC_ERR_IO (closed,
 * reason in err); *next is when it wants to run again. */
int mqtt__tick(struct mqtt *m, int64_t now, int64_t *next, char *err, size_t errlen);

/* Send what waits (or, with drop_unsent, nothing: PUBACKs not yet sent are
 * dropped, so the broker sends those messages again) and DISCONNECT
 * (normal: the session stays), waiting at most wait_ms for the socket, then
 * close. */
void mqtt__disconnect(struct mqtt *m, bool drop_unsent, int wait_ms);
/* Close at once; whatever was not sent (PUBACKs included) is dropped, so the
 * broker sends those messages again. */
void mqtt__close(struct mqtt *m);

/* Text for an MQTT 5 reason code ("not authorized"). */
const char *mqtt__reason(int code);

#endif
