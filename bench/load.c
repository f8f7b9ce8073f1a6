/* load.c - the message loads: direct messages between pairs, and one room's
 * fan-out.
 *
 * Closed loop: each publisher keeps at most `window` messages (times the
 * fan-out) in flight, so the broker runs at its full rate without queues
 * growing past max_queued_messages. A warm-up phase runs first; the measured
 * phase then ends after `count` deliveries or `seconds`, whichever is first;
 * a drain phase afterwards counts what never arrived.
 *
 * With --rate the load is paced instead: publishers take turns so that the
 * offered deliveries per second stay at that rate (still within the window).
 * Setups compared at the same paced rate do the same work per wake-up, so
 * their broker CPU per message compares fairly; at full speed a slower
 * setup batches more per wake-up, which flatters it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "archwatch.h"
#include "bench.h"
#include "err.h"
#include "timeutil.h"
#include "topic.h"

#define CONNECT_TIMEOUT_MS 30000
#define STALL_MS 1000
#define DRAIN_MS 3000
/* --cpu-pids: the processes of a cluster (brokers, archivers, buses,
 * nats-server, HAProxy) measured over the same phase as the load. */
#define MAX_CPU_PIDS 32

struct load {
	const struct bench_opts *o;
	const char *mode;
	size_t npub, nsub;
	int fan;                  /* deliveries per message */
	struct bclient *pub, *sub;
	struct bclient **all;
	size_t nall;
	char (*topic)[128];       /* per publisher */
	char (*idprefix)[48];
	long *sent, *recv, *writeoff;
	int64_t *last_progress;
	long recv_total, sent_total;
	int64_t pace_t0;          /* mono ns the pacing counts from */
	long pace_base;           /* sent_total at pace_t0 */
	size_t next_pub;          /* round robin under pacing */
	bool measuring;
	struct lat lat;
	struct archwatch aw;
	struct bench_opts subo;   /* o with the subscribers' host and port */
	int cpu_pid[MAX_CPU_PIDS];
	double cpu0[MAX_CPU_PIDS], cpu1[MAX_CPU_PIDS];
	size_t ncpu;
	double self0, self1;      /* this process's own CPU, with --cpu-pids */
	char err[256];
};

static void message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct bclient *c = obj;
	struct load *L = c->owner;
	int64_t sent_ns;

	(void)mosq;
	L->recv[c->idx]++;
	L->recv_total++;
	L->last_progress[c->idx] = time__mono_ms();
	if(L->measuring){
		sent_ns = payload__sent_ns(msg->payload, msg->payloadlen);
		if(sent_ns > 0){
			lat__add(&L->lat, time__mono_ns() - sent_ns);
		}
	}
}

static void load_cleanup(struct load *L)
{
	size_t i;

	for(i = 0; L->pub && i < L->npub; i++){
		bclient__cleanup(&L->pub[i]);
	}
	for(i = 0; L->sub && i < L->nsub; i++){
		bclient__cleanup(&L->sub[i]);
	}
	free(L->pub);
	free(L->sub);
	free(L->all);
	free(L->topic);
	free(L->idprefix);
	free(L->sent);
	free(L->recv);
	free(L->writeoff);
	free(L->last_progress);
	lat__cleanup(&L->lat);
	archwatch__cleanup(&L->aw);
}

static int load_alloc(struct load *L)
{
	size_t lcap = (size_t)L->o->count + 1024;

	L->pub = calloc(L->npub, sizeof(*L->pub));
	L->sub = calloc(L->nsub, sizeof(*L->sub));
	L->all = calloc(L->npub + L->nsub, sizeof(*L->all));
	L->topic = calloc(L->npub, sizeof(*L->topic));
	L->idprefix = calloc(L->npub, sizeof(*L->idprefix));
	L->sent = calloc(L->npub, sizeof(*L->sent));
	L->recv = calloc(L->npub, sizeof(*L->recv));
	L->writeoff = calloc(L->npub, sizeof(*L->writeoff));
	L->last_progress = calloc(L->npub, sizeof(*L->last_progress));
	if(!L->pub || !L->sub || !L->all || !L->topic || !L->idprefix || !L->sent
			|| !L->recv || !L->writeoff || !L->last_progress
			|| lat__init(&L->lat, lcap) != MQC_OK){
		snprintf(L->err, sizeof(L->err), "out of memory");
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* Publish whatever the window allows, then one pass of the loop. */
static void pump(struct load *L, bool send)
{
	const struct bench_opts *o = L->o;
	char buf[65536];
	int64_t now = time__mono_ms();
	long inflight, budget = -1, k;
	size_t g;
	int len;

	if(send && o->rate > 0){
		/* Messages allowed so far; a message is `fan` deliveries. */
		budget = L->pace_base + (long)((double)(time__mono_ns() - L->pace_t0) / 1e9
				* o->rate / L->fan) - L->sent_total;
		if(budget < 0){
			budget = 0;
		}
	}
	for(k = 0; send && k < (long)L->npub; k++){
		g = (L->next_pub + (size_t)k) % L->npub;
		if(L->pub[g].lost){
			continue;
		}
		for(;;){
			if(budget == 0){
				L->next_pub = g;
				break;
			}
			inflight = L->sent[g] * L->fan - L->recv[g] - L->writeoff[g];
			if(inflight >= (long)o->window * L->fan){
				/* A QoS 0 message lost for good would shrink the window
				 * forever: after a stall, write the missing ones off. */
				if(now - L->last_progress[g] > STALL_MS){
					L->writeoff[g] += inflight;
					L->last_progress[g] = now;
					continue;
				}
				break;
			}
			len = payload__make(buf, o->size, L->idprefix[g], L->sent[g], time__mono_ns());
			if(len < 0 || mosquitto_publish(L->pub[g].mosq, NULL, L->topic[g], len, buf,
						o->qos, false) != MOSQ_ERR_SUCCESS){
				break;
			}
			if(L->sent[g] == 0){
				L->last_progress[g] = now;
			}
			L->sent[g]++;
			L->sent_total++;
			if(budget > 0){
				budget--;
				/* One message per publisher per turn. */
				L->next_pub = (g + 1) % L->npub;
				break;
			}
		}
	}
	net__pass(L->all, L->nall, 1);
	archwatch__sample(&L->aw, L->sent_total);
}

static int connect_all(struct load *L, const char *pubprefix, const char *subprefix, bool pub_is_sub)
{
	const struct bench_opts *o = L->o;
	char name[64];
	size_t i;

	for(i = 0; i < L->npub; i++){
		L->pub[i].owner = L;
		L->pub[i].idx = (int)i;
		snprintf(name, sizeof(name), "%s%zu", pubprefix, i);
		if(bclient__start(&L->pub[i], o, name, name, o->password, NULL, message_cb,
					L->err, sizeof(L->err)) != MQC_OK){
			return MQC_ERR_IO;
		}
		L->all[L->nall++] = &L->pub[i];
	}
	for(i = 0; i < L->nsub; i++){
		L->sub[i].owner = L;
		L->sub[i].idx = L->fan > 1 ? 0 : (int)i;
		if(pub_is_sub && i == 0){
			continue;
		}
		snprintf(name, sizeof(name), "%s%zu", subprefix, i);
		if(bclient__start(&L->sub[i], &L->subo, name, name, o->password, NULL, message_cb,
					L->err, sizeof(L->err)) != MQC_OK){
			return MQC_ERR_IO;
		}
		L->all[L->nall++] = &L->sub[i];
	}
	if(net__wait_connack(L->all, L->nall, CONNECT_TIMEOUT_MS) != L->nall){
		for(i = 0; i < L->nall; i++){
			if(!L->all[i]->connack || L->all[i]->connack_rc != 0){
				snprintf(L->err, sizeof(L->err), "client %zu of %zu not connected (connack %s, rc %d)",
						i, L->nall, L->all[i]->connack ? "yes" : "no", L->all[i]->connack_rc);
				break;
			}
		}
		return MQC_ERR_PERM;
	}
	return MQC_OK;
}

static int subscribe_all(struct load *L, bool pub_is_sub)
{
	struct bclient **subs;
	char filter[TOPIC_MAX_LEN + 1], name[NAME_MAX_LEN + 1];
	size_t i, n = 0;
	int rc = MQC_OK;

	subs = calloc(L->nsub, sizeof(*subs));
	if(subs == NULL){
		return MQC_ERR_NOMEM;
	}
	for(i = 0; i < L->nsub; i++){
		struct bclient *c = (pub_is_sub && i == 0) ? &L->pub[0] : &L->sub[i];
		if(L->fan > 1){
			topic__build(filter, sizeof(filter), TOPIC_ROOM, L->o->room, "#");
		}else{
			snprintf(name, sizeof(name), "r%zu", i);
			topic__build(filter, sizeof(filter), TOPIC_INBOX, name, "#");
		}
		c->idx = L->fan > 1 ? 0 : (int)i;
		/* The plugin refuses QoS 0 subscriptions to messages; a QoS 1
		 * one still takes QoS 0 publishes at QoS 0 (the bench's brokers
		 * do not set upgrade_outgoing_qos), so --qos 0 loads as before. */
		if(mosquitto_subscribe(c->mosq, NULL, filter, L->o->qos > 0 ? L->o->qos : 1)
				!= MOSQ_ERR_SUCCESS){
			snprintf(L->err, sizeof(L->err), "subscribe %s failed", filter);
			rc = MQC_ERR_IO;
			goto out;
		}
		subs[n++] = c;
	}
	if(net__wait_suback(subs, n, CONNECT_TIMEOUT_MS) != n){
		snprintf(L->err, sizeof(L->err), "a subscription was refused or not answered");
		rc = MQC_ERR_PERM;
	}
out:
	free(subs);
	return rc;
}

static void print_result(struct load *L, double secs, long measured, double cpu_s, long lost)
{
	const struct bench_opts *o = L->o;

	printf("{\"mode\":\"%s\",\"publishers\":%zu,\"subscribers\":%zu,\"qos\":%d,\"size\":%d,"
			"\"rate\":%.0f,\"window\":%d,\"sent\":%ld,\"received\":%ld,\"lost\":%ld,\"measured\":%ld,"
			"\"seconds\":%.3f,\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
			"\"broker_cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f",
			L->mode, L->npub, L->nsub, o->qos, o->size, o->rate, o->window, L->sent_total,
			L->recv_total, lost, measured, secs, secs > 0 ? (double)measured / secs : 0.0,
			lat__pct_us(&L->lat, 50), lat__pct_us(&L->lat, 99), cpu_s,
			(cpu_s >= 0 && measured > 0) ? cpu_s * 1e6 / (double)measured : -1.0);
	if(L->aw.db){
		printf(",\"archive\":");
		archwatch__print(&L->aw, stdout);
	}
	if(L->ncpu > 0){
		size_t i;

		printf(",\"cpu_pids\":{");
		for(i = 0; i < L->ncpu; i++){
			printf("%s\"%d\":%.4f", i ? "," : "", L->cpu_pid[i],
					(L->cpu0[i] >= 0 && L->cpu1[i] >= 0) ? L->cpu1[i] - L->cpu0[i] : -1.0);
		}
		printf("},\"generator_cpu_s\":%.4f", L->self1 - L->self0);
	}
	printf("}\n");
}

/* --cpu-pids into L->cpu_pid. MQC_OK, or an error in L->err. */
static int parse_cpu_pids(struct load *L)
{
	const char *p = L->o->cpu_pids;
	char *end;
	long pid;

	while(p && *p){
		pid = strtol(p, &end, 10);
		if(end == p || pid <= 0 || pid > 1L << 30 || (*end != ',' && *end != '\0')
				|| L->ncpu == MAX_CPU_PIDS){
			snprintf(L->err, sizeof(L->err), "--cpu-pids: at most %d PIDs separated by commas",
					MAX_CPU_PIDS);
			return MQC_ERR_INVAL;
		}
		L->cpu_pid[L->ncpu++] = (int)pid;
		p = *end ? end + 1 : end;
	}
	return MQC_OK;
}

static void cpu_read(struct load *L, double *into)
{
	size_t i;

	for(i = 0; i < L->ncpu; i++){
		into[i] = proc__cpu_s(L->cpu_pid[i]);
	}
	*(into == L->cpu0 ? &L->self0 : &L->self1) = proc__cpu_s((int)getpid());
}

static int run(struct load *L)
{
	const struct bench_opts *o = L->o;
	int64_t t0, t1, end, now, last;
	double cpu0, cpu1;
	long recv0, measured, lost;
	size_t i;

	/* Nothing sent while the subscriptions settle: on a cluster a SUBACK
	 * comes before the recipient's node has told the bus (NATS) of it. */
	end = time__mono_ms() + o->settle_ms;
	while(time__mono_ms() < end){
		net__pass(L->all, L->nall, 1);
	}
	L->pace_t0 = time__mono_ns();
	end = time__mono_ms() + o->warmup_ms;
	while(time__mono_ms() < end){
		pump(L, true);
	}
	recv0 = L->recv_total;
	cpu0 = proc__cpu_s(o->broker_pid);
	cpu_read(L, L->cpu0);
	t0 = time__mono_ns();
	archwatch__mark(&L->aw, L->sent_total);
	L->measuring = true;
	end = time__mono_ms() + (int64_t)(o->seconds * 1000.0);
	while(L->recv_total - recv0 < o->count && time__mono_ms() < end){
		pump(L, true);
	}
	L->measuring = false;
	t1 = time__mono_ns();
	cpu1 = proc__cpu_s(o->broker_pid);
	cpu_read(L, L->cpu1);
	measured = L->recv_total - recv0;
	archwatch__mark(&L->aw, L->sent_total);

	/* Drain: wait for what is still in flight, bounded. */
	now = last = time__mono_ms();
	while(L->recv_total < L->sent_total * L->fan && now - last < DRAIN_MS){
		long before = L->recv_total;
		pump(L, false);
		now = time__mono_ms();
		if(L->recv_total != before){
			last = now;
		}
	}
	lost = L->sent_total * L->fan - L->recv_total;
	archwatch__drain(&L->aw, L->sent_total);
	for(i = 0; i < L->nall; i++){
		if(L->all[i]->lost){
			snprintf(L->err, sizeof(L->err), "client %zu lost its connection", i);
		}
	}
	print_result(L, (double)(t1 - t0) / 1e9, measured,
			(cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0, lost);
	return MQC_OK;
}

static int fail_json(struct load *L)
{
	printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", L->mode, L->err);
	fprintf(stderr, "Error: %s: %s\n", L->mode, L->err);
	return 1;
}

/* Connect the publishers (names pub<i>) and subscribers (sub<i>), subscribe,
 * run the load and report it; frees L. Returns the exit status. fanout: the
 * room load, where the publisher is one of the subscribers. */
static int connect_and_run(struct load *L, const char *pub, const char *sub, bool fanout)
{
	int rc;

	L->subo = *L->o;
	if(L->o->sub_host){
		L->subo.host = L->o->sub_host;
	}
	if(L->o->sub_port){
		L->subo.port = L->o->sub_port;
	}
	if(parse_cpu_pids(L) != MQC_OK || connect_all(L, pub, sub, fanout) != MQC_OK || subscribe_all(L, fanout) != MQC_OK){
		rc = fail_json(L);
	}else{
		rc = run(L) == MQC_OK ? 0 : 1;
	}
	load_cleanup(L);
	return rc;
}

int load__pairs(const struct bench_opts *o)
{
	struct load L;
	unsigned nonce = (unsigned)(time__now_ms() & 0xffffff);
	size_t i;
	int rc;

	memset(&L, 0, sizeof(L));
	L.o = o;
	L.mode = "pairs";
	L.npub = L.nsub = (size_t)o->pairs;
	L.fan = 1;
	if(load_alloc(&L) != MQC_OK){
		goto fail;
	}
	for(i = 0; i < L.npub; i++){
		char to[NAME_MAX_LEN + 1], from[NAME_MAX_LEN + 1];

		snprintf(to, sizeof(to), "r%zu", i);
		snprintf(from, sizeof(from), "s%zu", i);
		topic__build(L.topic[i], sizeof(L.topic[i]), TOPIC_INBOX, to, from);
		snprintf(L.idprefix[i], sizeof(L.idprefix[i]), "b%x-%zu", nonce, i);
	}
	if(o->archive_db && archwatch__init(&L.aw, o->archive_db, o->archive_sql,
				L.err, sizeof(L.err)) != MQC_OK){
		goto fail;
	}
	return connect_and_run(&L, "s", "r", false);
fail:
	rc = fail_json(&L);
	load_cleanup(&L);
	return rc;
}

int load__fanout(const struct bench_opts *o)
{
	struct load L;
	unsigned nonce = (unsigned)(time__now_ms() & 0xffffff);
	int rc;

	memset(&L, 0, sizeof(L));
	L.o = o;
	L.mode = "fanout";
	L.npub = 1;
	L.nsub = (size_t)o->members;
	L.fan = o->members;
	if(load_alloc(&L) != MQC_OK){
		goto fail;
	}
	topic__build(L.topic[0], sizeof(L.topic[0]), TOPIC_ROOM, o->room, "m0");
	snprintf(L.idprefix[0], sizeof(L.idprefix[0]), "f%x", nonce);
	return connect_and_run(&L, "m", "m", true);
fail:
	rc = fail_json(&L);
	load_cleanup(&L);
	return rc;
}
