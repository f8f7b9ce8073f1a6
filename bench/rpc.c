/* rpc.c - round-trip latency of the archiver's history and sync RPCs.
 *
 * One user, one request at a time: subscribe to chat/rpc/<me>/resp, then
 * publish each request on chat/rpc/<me>/req and wait for the answer that
 * carries its id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench.h"
#include "err.h"
#include "timeutil.h"
#include "topic.h"

#define RPC_TIMEOUT_MS 5000

struct rpc {
	char want[64];            /* "id":"<id>" of the request in flight */
	bool answered, ok;
	long bytes;
	char first_error[160];
};

static void message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct bclient *c = obj;
	struct rpc *r = c->owner;
	const char *p = msg->payload;
	size_t len = (size_t)msg->payloadlen;

	(void)mosq;
	if(p == NULL || memmem(p, len, r->want, strlen(r->want)) == NULL){
		return;
	}
	r->answered = true;
	r->bytes += (long)len;
	r->ok = memmem(p, len, "\"ok\":true", 9) != NULL;
	if(!r->ok && r->first_error[0] == '\0'){
		snprintf(r->first_error, sizeof(r->first_error), "%.*s",
				(int)(len < 120 ? len : 120), p);
	}
}

int rpc__latency(const struct bench_opts *o)
{
	struct bclient c, *cs[1] = { &c };
	struct rpc r;
	struct lat lat;
	char topic[TOPIC_MAX_LEN + 1], filter[TOPIC_MAX_LEN + 1], req[256], err[256];
	long i, ok = 0, failed = 0, timeouts = 0;
	int64_t t0, start, end, deadline;
	unsigned long long rnd = 88172645463325252ULL;
	int len, rc = 1;

	memset(&c, 0, sizeof(c));
	memset(&r, 0, sizeof(r));
	c.owner = &r;
	if(lat__init(&lat, (size_t)o->count + 1) != MQC_OK){
		return 1;
	}
	topic__build(topic, sizeof(topic), TOPIC_RPC_REQ, o->rpc_user, NULL);
	topic__build(filter, sizeof(filter), TOPIC_RPC_RESP, o->rpc_user, NULL);
	if(bclient__start(&c, o, o->rpc_user, o->rpc_user, o->password, NULL, message_cb,
				err, sizeof(err)) != MQC_OK){
		goto fail;
	}
	if(net__wait_connack(cs, 1, 10000) != 1){
		snprintf(err, sizeof(err), "login of %s refused (rc %d)", o->rpc_user, c.connack_rc);
		goto fail;
	}
	if(mosquitto_subscribe(c.mosq, NULL, filter, 1) != MOSQ_ERR_SUCCESS
			|| net__wait_suback(cs, 1, 10000) != 1){
		snprintf(err, sizeof(err), "subscription to %s refused", filter);
		goto fail;
	}
	start = time__mono_ms();
	end = start + (int64_t)(o->seconds * 1000.0);
	for(i = 0; i < o->count && time__mono_ms() < end; i++){
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		if(strcmp(o->op, "sync") == 0){
			len = snprintf(req, sizeof(req),
					"{\"id\":\"q%ld\",\"op\":\"sync\",\"after\":%llu,\"limit\":%d}", i,
					o->max_seq > 0 ? rnd % (unsigned long long)o->max_seq : 0ULL, o->rpc_limit);
		}else{
			len = snprintf(req, sizeof(req),
					"{\"id\":\"q%ld\",\"op\":\"history\",\"with\":\"%s\",\"limit\":%d}",
					i, o->rpc_with, o->rpc_limit);
		}
		snprintf(r.want, sizeof(r.want), "\"id\":\"q%ld\"", i);
		r.answered = false;
		t0 = time__mono_ns();
		if(mosquitto_publish(c.mosq, NULL, topic, len, req, 1, false) != MOSQ_ERR_SUCCESS){
			snprintf(err, sizeof(err), "publish on %s failed", topic);
			goto fail;
		}
		deadline = time__mono_ms() + RPC_TIMEOUT_MS;
		while(!r.answered && !c.lost && time__mono_ms() < deadline){
			net__pass(cs, 1, 5);
		}
		if(!r.answered){
			timeouts++;
			if(c.lost || timeouts >= 3){
				break;
			}
			continue;
		}
		lat__add(&lat, time__mono_ns() - t0);
		if(r.ok){
			ok++;
		}else{
			failed++;
		}
	}
	printf("{\"mode\":\"rpc\",\"op\":\"%s\",\"limit\":%d,\"requests\":%ld,\"ok\":%ld,\"failed\":%ld,"
			"\"timeouts\":%ld,\"seconds\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
			"\"mean_bytes\":%.0f}\n",
			o->op, o->rpc_limit, i, ok, failed, timeouts,
			(double)(time__mono_ms() - start) / 1000.0,
			lat__pct_us(&lat, 50), lat__pct_us(&lat, 99),
			(ok + failed) > 0 ? (double)r.bytes / (double)(ok + failed) : 0.0);
	if(failed > 0){
		fprintf(stderr, "rpc: first error answer: %s\n", r.first_error);
	}
	rc = (ok > 0 && timeouts == 0) ? 0 : 1;
	bclient__cleanup(&c);
	lat__cleanup(&lat);
	return rc;
fail:
	printf("{\"mode\":\"rpc\",\"op\":\"%s\",\"error\":\"%s\"}\n", o->op, err);
	fprintf(stderr, "Error: rpc: %s\n", err);
	bclient__cleanup(&c);
	lat__cleanup(&lat);
	return 1;
}
