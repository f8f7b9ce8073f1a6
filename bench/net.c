/* net.c - libmosquitto clients driven by one poll() loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench.h"
#include "err.h"
#include "timeutil.h"

static void connect_cb(struct mosquitto *mosq, void *obj, int rc)
{
	struct bclient *c = obj;

	(void)mosq;
	c->connack = true;
	c->connack_rc = rc;
}

static void subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted)
{
	struct bclient *c = obj;

	(void)mosq;
	(void)mid;
	c->suback = true;
	c->granted = qos_count > 0 ? granted[0] : 128;
}

static void disconnect_cb(struct mosquitto *mosq, void *obj, int rc)
{
	struct bclient *c = obj;

	(void)mosq;
	(void)rc;
	c->lost = true;
}

int bclient__start(struct bclient *c, const struct bench_opts *o, const char *clientid,
		const char *username, const char *password, const char *bind_addr,
		void (*on_message)(struct mosquitto *, void *, const struct mosquitto_message *),
		char *err, size_t errlen)
{
	int rc;

	c->connack = c->suback = c->lost = false;
	c->connack_rc = -1;
	c->granted = -1;
	c->mosq = mosquitto_new(clientid, !o->persistent, c);
	if(c->mosq == NULL){
		snprintf(err, errlen, "mosquitto_new: out of memory");
		return MQC_ERR_NOMEM;
	}
	mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_callback_set(c->mosq, connect_cb);
	mosquitto_subscribe_callback_set(c->mosq, subscribe_cb);
	mosquitto_disconnect_callback_set(c->mosq, disconnect_cb);
	if(on_message){
		mosquitto_message_callback_set(c->mosq, on_message);
	}
	if(username && mosquitto_username_pw_set(c->mosq, username, password) != MOSQ_ERR_SUCCESS){
		snprintf(err, errlen, "mosquitto_username_pw_set failed");
		rc = MQC_ERR_INVAL;
		goto fail;
	}
	rc = mosquitto_connect_bind(c->mosq, o->host, o->port, 60, bind_addr);
	if(rc != MOSQ_ERR_SUCCESS){
		snprintf(err, errlen, "connect to %s:%d as %s: %s", o->host, o->port,
				clientid, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		rc = MQC_ERR_IO;
		goto fail;
	}
	return MQC_OK;
fail:
	mosquitto_destroy(c->mosq);
	c->mosq = NULL;
	return rc;
}

void bclient__cleanup(struct bclient *c)
{
	if(c == NULL || c->mosq == NULL){
		return;
	}
	if(!c->lost){
		mosquitto_disconnect(c->mosq);
	}
	mosquitto_destroy(c->mosq);
	c->mosq = NULL;
}

/* Read everything the socket holds: mosquitto_loop_read stops at EAGAIN,
 * which it reports only through errno. */
static void read_all(struct bclient *c)
{
	int i, rc;

	for(i = 0; i < 1024; i++){
		errno = 0;
		rc = mosquitto_loop_read(c->mosq, 1);
		if(rc != MOSQ_ERR_SUCCESS){
			c->lost = true;
			return;
		}
		if(errno == EAGAIN || errno == EWOULDBLOCK){
			return;
		}
	}
}

void net__pass(struct bclient **cs, size_t n, int timeout_ms)
{
	static struct pollfd *pfd;
	static size_t pfd_cap;
	size_t i;
	int fd;

	if(n > pfd_cap){
		struct pollfd *p = realloc(pfd, n * sizeof(*p));
		if(p == NULL){
			return;
		}
		pfd = p;
		pfd_cap = n;
	}
	for(i = 0; i < n; i++){
		fd = (cs[i]->mosq && !cs[i]->lost) ? mosquitto_socket(cs[i]->mosq) : -1;
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
		if(fd >= 0 && mosquitto_want_write(cs[i]->mosq)){
			pfd[i].events |= POLLOUT;
		}
		pfd[i].revents = 0;
	}
	if(poll(pfd, (nfds_t)n, timeout_ms) < 0){
		return;
	}
	for(i = 0; i < n; i++){
		if(pfd[i].fd < 0){
			continue;
		}
		if(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)){
			read_all(cs[i]);
		}
		if(!cs[i]->lost && (pfd[i].revents & POLLOUT)){
			if(mosquitto_loop_write(cs[i]->mosq, 1) != MOSQ_ERR_SUCCESS){
				cs[i]->lost = true;
			}
		}
		if(!cs[i]->lost && mosquitto_loop_misc(cs[i]->mosq) != MOSQ_ERR_SUCCESS){
			cs[i]->lost = true;
		}
	}
}

/* Where a client stands on one handshake: 1 answered and accepted, 0 done
 * without that (refused, lost, never started), -1 still waiting. */
static int connack_state(const struct bclient *c)
{
	if(c->connack && c->connack_rc == 0 && !c->lost){
		return 1;
	}
	return (c->connack || c->lost || c->mosq == NULL) ? 0 : -1;
}

static int suback_state(const struct bclient *c)
{
	if(c->suback && c->granted >= 0 && c->granted < 128){
		return 1;
	}
	return (c->suback || c->lost || c->mosq == NULL) ? 0 : -1;
}

/* Run passes until no client is waiting by state() or timeout_ms; returns
 * the number accepted. */
static size_t wait_all(struct bclient **cs, size_t n, int timeout_ms,
		int (*state)(const struct bclient *c))
{
	int64_t end = time__mono_ms() + timeout_ms;
	size_t i, done, ok;
	int st;

	for(;;){
		done = ok = 0;
		for(i = 0; i < n; i++){
			st = state(cs[i]);
			if(st >= 0){
				done++;
			}
			if(st > 0){
				ok++;
			}
		}
		if(done == n || time__mono_ms() >= end){
			return ok;
		}
		net__pass(cs, n, 10);
	}
}

size_t net__wait_connack(struct bclient **cs, size_t n, int timeout_ms)
{
	return wait_all(cs, n, timeout_ms, connack_state);
}

size_t net__wait_suback(struct bclient **cs, size_t n, int timeout_ms)
{
	return wait_all(cs, n, timeout_ms, suback_state);
}
