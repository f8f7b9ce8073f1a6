/* conn.c - connect+auth rates: cold (first login after the broker started),
 * warm (the same users again), under a flood of wrong passwords sent from
 * another loopback address, and resume: persistent sessions logging in
 * again after a broker restart, with passwords or device tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench.h"
#include "devtoken.h"
#include "err.h"
#include "timeutil.h"

#define ATTEMPT_TIMEOUT_MS 10000
#define MAX_SLOTS 256

/* A stream of login attempts, `conc` at a time, cycling over names. */
struct stream {
	const char *label;
	const char *prefix[2];    /* names: prefix[k % 2] + k / 2, or prefix[0] + k */
	long nnames;
	const char *password;     /* NULL: a wrong one per attempt */
	const char *token_seed;   /* not NULL: each user's device token instead */
	bool persistent;          /* client id <user>@bench, keeping its session */
	const char *bind;
	int conc;
	long limit;               /* attempts to start; <0 for no limit */
	long next;
	long attempts, ok, refused, timeouts, errors;
	struct bclient slot[MAX_SLOTS];
	int64_t started[MAX_SLOTS];
	bool busy[MAX_SLOTS];
	struct lat lat;
	char err[256];
};

static void name_of(const struct stream *s, long k, char *out, size_t len)
{
	long i = k % s->nnames;

	if(s->prefix[1]){
		snprintf(out, len, "%s%ld", s->prefix[i % 2], i / 2);
	}else{
		snprintf(out, len, "%s%ld", s->prefix[0], i);
	}
}

/* The device token of user name, derived from seed: the base64url of
 * SHA-256("<seed>:<name>") behind the token prefix. bench/setups.py
 * derives the same to store its digest. */
static void token_of(const char *seed, const char *name, char out[DEVTOKEN_LEN + 1])
{
	unsigned char raw[DEVTOKEN_DIGEST_LEN];
	char in[256];
	int n = snprintf(in, sizeof(in), "%s:%s", seed, name);

	if(n < 0 || (size_t)n >= sizeof(in) || devtoken__digest(in, (size_t)n, raw) != MQC_OK){
		memset(raw, 0, sizeof(raw));
	}
	devtoken__encode(raw, out);
}

static void stream_fill(struct stream *s, const struct bench_opts *o)
{
	char name[64], wrong[64], id[80], token[DEVTOKEN_LEN + 1];
	const char *pw;
	int i;

	for(i = 0; i < s->conc; i++){
		if(s->busy[i] || (s->limit >= 0 && s->next >= s->limit)){
			continue;
		}
		name_of(s, s->next, name, sizeof(name));
		snprintf(wrong, sizeof(wrong), "wrong-password-%ld", s->next);
		snprintf(id, sizeof(id), s->persistent || s->token_seed ? "%s@bench" : "%s", name);
		pw = s->password ? s->password : wrong;
		if(s->token_seed){
			token_of(s->token_seed, name, token);
			pw = token;
		}
		s->next++;
		s->attempts++;
		memset(&s->slot[i], 0, sizeof(s->slot[i]));
		s->started[i] = time__mono_ns();
		if(bclient__start(&s->slot[i], o, id, name, pw, s->bind, NULL, s->err, sizeof(s->err)) != MQC_OK){
			s->errors++;
			continue;
		}
		s->busy[i] = true;
	}
}

static void stream_reap(struct stream *s)
{
	int64_t now = time__mono_ns();
	struct bclient *c;
	int i;

	for(i = 0; i < s->conc; i++){
		if(!s->busy[i]){
			continue;
		}
		c = &s->slot[i];
		if(c->connack && c->connack_rc == 0){
			s->ok++;
			lat__add(&s->lat, now - s->started[i]);
		}else if(c->connack || c->lost){
			s->refused++;
		}else if(now - s->started[i] > (int64_t)ATTEMPT_TIMEOUT_MS * 1000000){
			s->timeouts++;
		}else{
			continue;
		}
		bclient__cleanup(c);
		s->busy[i] = false;
	}
}

static bool stream_active(const struct stream *s)
{
	int i;

	for(i = 0; i < s->conc; i++){
		if(s->busy[i]){
			return true;
		}
	}
	return false;
}

/* Drive the streams until the first one is done (its limit reached and its
 * slots idle) or seconds passed. Returns the elapsed seconds. */
static double drive(struct stream **ss, int nss, const struct bench_opts *o, double seconds)
{
	struct bclient *act[2 * MAX_SLOTS];
	int64_t t0 = time__mono_ns(), end = time__mono_ms() + (int64_t)(seconds * 1000.0);
	size_t n;
	int k, i;

	for(;;){
		for(k = 0; k < nss; k++){
			stream_reap(ss[k]);
		}
		if(!stream_active(ss[0]) && ss[0]->limit >= 0 && ss[0]->next >= ss[0]->limit){
			break;
		}
		if(time__mono_ms() >= end){
			ss[0]->limit = ss[0]->next; /* start no more */
			if(!stream_active(ss[0])){
				break;
			}
		}
		for(k = 0; k < nss; k++){
			stream_fill(ss[k], o);
		}
		n = 0;
		for(k = 0; k < nss; k++){
			for(i = 0; i < ss[k]->conc; i++){
				if(ss[k]->busy[i]){
					act[n++] = &ss[k]->slot[i];
				}
			}
		}
		net__pass(act, n, 5);
	}
	return (double)(time__mono_ns() - t0) / 1e9;
}

static void print_stream(struct stream *s, double secs, double cpu_s)
{
	printf("\"%s\":{\"attempts\":%ld,\"ok\":%ld,\"refused\":%ld,\"timeouts\":%ld,\"errors\":%ld,"
			"\"seconds\":%.3f,\"ok_per_s\":%.1f,\"attempts_per_s\":%.1f,"
			"\"p50_us\":%.1f,\"p99_us\":%.1f,\"broker_cpu_s\":%.3f,\"cpu_us_per_ok\":%.1f}",
			s->label, s->attempts, s->ok, s->refused, s->timeouts, s->errors, secs,
			secs > 0 ? (double)s->ok / secs : 0.0,
			secs > 0 ? (double)s->attempts / secs : 0.0,
			lat__pct_us(&s->lat, 50), lat__pct_us(&s->lat, 99), cpu_s,
			(cpu_s >= 0 && s->ok > 0) ? cpu_s * 1e6 / (double)s->ok : -1.0);
}

/* A new stream of limit attempts (<0: no limit), conc at a time, as the
 * login set's users; NULL if out of memory. stream_free frees it. */
static struct stream *stream_new(const char *label, const struct bench_opts *o, int conc,
		long limit)
{
	struct stream *s = calloc(1, sizeof(*s));

	if(s == NULL){
		return NULL;
	}
	s->label = label;
	s->prefix[0] = "s";
	s->prefix[1] = "r";
	s->nnames = o->users;
	s->password = o->password;
	s->bind = o->bind_good;
	s->conc = conc < 1 ? 1 : conc > MAX_SLOTS ? MAX_SLOTS : conc;
	s->limit = limit;
	if(lat__init(&s->lat, (size_t)(limit > 0 ? limit : o->count) + 16) != MQC_OK){
		free(s);
		return NULL;
	}
	return s;
}

/* Close the stream's connections and free it; NULL is fine. */
static void stream_free(struct stream *s)
{
	int i;

	if(s == NULL){
		return;
	}
	for(i = 0; i < s->conc; i++){
		if(s->busy[i]){
			bclient__cleanup(&s->slot[i]);
		}
	}
	lat__cleanup(&s->lat);
	free(s);
}

int conn__rate(const struct bench_opts *o)
{
	struct stream *cold = NULL, *warm = NULL;
	struct stream *ss[1];
	double c0, c1, c2, secs_cold, secs_warm;
	int rc = 1;

	cold = stream_new("cold", o, o->concurrency, o->users);
	warm = stream_new("warm", o, o->concurrency, o->count);
	if(cold == NULL || warm == NULL){
		fprintf(stderr, "Error: out of memory\n");
		goto out;
	}
	c0 = proc__cpu_s(o->broker_pid);
	ss[0] = cold;
	secs_cold = drive(ss, 1, o, o->seconds);
	c1 = proc__cpu_s(o->broker_pid);
	ss[0] = warm;
	secs_warm = drive(ss, 1, o, o->seconds);
	c2 = proc__cpu_s(o->broker_pid);
	printf("{\"mode\":\"connect\",\"users\":%d,\"concurrency\":%d,", o->users, cold->conc);
	print_stream(cold, secs_cold, c0 >= 0 ? c1 - c0 : -1.0);
	printf(",");
	print_stream(warm, secs_warm, c0 >= 0 ? c2 - c1 : -1.0);
	printf("}\n");
	rc = (cold->ok > 0 && warm->ok > 0) ? 0 : 1;
	if(rc){
		fprintf(stderr, "Error: connect: logins failed (cold ok %ld, warm ok %ld) %s\n",
				cold->ok, warm->ok, cold->err);
	}
out:
	stream_free(cold);
	stream_free(warm);
	return rc;
}

int conn__resume(const struct bench_opts *o)
{
	struct stream *s;
	struct stream *ss[1];
	double c0, c1, secs;
	int rc;

	/* Every user of the resume set once: --prefix 0..--users-1. */
	s = stream_new("resume", o, o->concurrency, o->users);
	if(s == NULL){
		fprintf(stderr, "Error: out of memory\n");
		return 1;
	}
	s->prefix[0] = o->prefix;
	s->prefix[1] = NULL;
	s->persistent = o->persistent != 0;
	s->token_seed = o->token_seed;
	ss[0] = s;
	c0 = proc__cpu_s(o->broker_pid);
	secs = drive(ss, 1, o, o->seconds);
	c1 = proc__cpu_s(o->broker_pid);
	printf("{\"mode\":\"resume\",\"users\":%d,\"concurrency\":%d,\"tokens\":%s,",
			o->users, s->conc, o->token_seed ? "true" : "false");
	print_stream(s, secs, c0 >= 0 ? c1 - c0 : -1.0);
	printf("}\n");
	rc = s->ok == o->users ? 0 : 1;
	if(rc){
		fprintf(stderr, "Error: resume: %ld of %d logins (refused %ld, timeouts %ld) %s\n",
				s->ok, o->users, s->refused, s->timeouts, s->err);
	}
	stream_free(s);
	return rc;
}

int conn__flood(const struct bench_opts *o)
{
	struct stream *good = NULL, *bad = NULL;
	struct stream *ss[2];
	double c0, c1, secs;
	int rc = 1;

	good = stream_new("good", o, o->concurrency, o->count);
	bad = stream_new("bad", o, o->flood, -1);
	if(good == NULL || bad == NULL){
		fprintf(stderr, "Error: out of memory\n");
		goto out;
	}
	/* The flood goes at other users (m0..) from another address. */
	bad->prefix[0] = "m";
	bad->prefix[1] = NULL;
	bad->nnames = o->members;
	bad->password = NULL;
	bad->bind = o->bind_flood;
	ss[0] = good;
	ss[1] = bad;
	c0 = proc__cpu_s(o->broker_pid);
	secs = drive(ss, 2, o, o->seconds);
	c1 = proc__cpu_s(o->broker_pid);
	printf("{\"mode\":\"flood\",\"users\":%d,\"concurrency\":%d,\"flood\":%d,",
			o->users, good->conc, bad->conc);
	print_stream(good, secs, c0 >= 0 ? c1 - c0 : -1.0);
	printf(",");
	print_stream(bad, secs, -1.0);
	printf("}\n");
	rc = good->ok > 0 ? 0 : 1;
	if(rc){
		fprintf(stderr, "Error: flood: no good login succeeded %s\n", good->err);
	}
out:
	stream_free(good);
	stream_free(bad);
	return rc;
}
