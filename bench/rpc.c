/* rpc.c - round-trip latency of the archiver's RPCs, as a device sees it.
 *
 * One user, one request at a time: subscribe to chat/rpc/<me>/resp, then
 * publish each request on chat/rpc/<me>/req (QoS 1) and wait for the
 * answer that carries its id. The latency of a request is from just before
 * its publish to the arrival of its answer. --op:
 *
 *   history        history with --with, --limit
 *   sync           sync from a random after below --max-seq, --limit
 *   conversations  the conversation list, --limit a page: first every page
 *                  is walked once (the total is reported), then page
 *                  --depth (0: the first) is asked --count times, with the
 *                  before that walk found for it
 *   search         search for --text, --limit
 *   catchup        a new device catching up: sync pages of --limit from
 *                  --after until more is false, --count times; the figure
 *                  is each run's total time (answers parsed as an app
 *                  would, to find the next after)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mosquitto.h>

#include "bench.h"
#include "err.h"
#include "timeutil.h"
#include "topic.h"

#define RPC_TIMEOUT_MS 5000
/* Bounds of the walks: pages of the conversation list, pages of a catch-up. */
#define WALK_MAX_PAGES 200
#define CATCHUP_MAX_PAGES 2000

struct rpc {
	struct bclient c;
	char topic[TOPIC_MAX_LEN + 1];
	long next_id;
	char want[64];            /* "id":"<id>" of the request in flight */
	bool answered, ok;
	char *answer;             /* a copy of the last answer (NUL-terminated), owned */
	size_t answer_len;
	long bytes, answers, failed, timeouts;
	char first_error[160];
};

static void message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct bclient *c = obj;
	struct rpc *r = c->owner;
	const char *p = msg->payload;
	size_t len = (size_t)msg->payloadlen;
	char *copy;

	(void)mosq;
	if(p == NULL || memmem(p, len, r->want, strlen(r->want)) == NULL){
		return;
	}
	copy = malloc(len + 1);
	if(copy == NULL){
		return;
	}
	memcpy(copy, p, len);
	copy[len] = '\0';
	free(r->answer);
	r->answer = copy;
	r->answer_len = len;
	r->answered = true;
	r->bytes += (long)len;
	r->answers++;
	r->ok = memmem(p, len, "\"ok\":true", 9) != NULL;
	if(!r->ok){
		r->failed++;
		if(r->first_error[0] == '\0'){
			snprintf(r->first_error, sizeof(r->first_error), "%.*s",
					(int)(len < 120 ? len : 120), p);
		}
	}
}

/* Send {"id":"q<n>",<members>} and wait (up to RPC_TIMEOUT_MS) for its
 * answer, left in r->answer. *ns gets the round trip. MQC_OK (the answer
 * may still be an error answer: r->ok), MQC_ERR_TIMEOUT or MQC_ERR_IO
 * (publish failed, connection lost) with err filled. */
static int call(struct rpc *r, const char *members, int64_t *ns, char *err, size_t errlen)
{
	struct bclient *cs[1] = { &r->c };
	char req[1024];
	int64_t t0, deadline;
	long n = r->next_id++;
	int len;

	len = snprintf(req, sizeof(req), "{\"id\":\"q%ld\",%s}", n, members);
	if(len < 0 || (size_t)len >= sizeof(req)){
		mqc_seterr(err, errlen, "request too long");
		return MQC_ERR_INVAL;
	}
	snprintf(r->want, sizeof(r->want), "\"id\":\"q%ld\"", n);
	r->answered = false;
	t0 = time__mono_ns();
	if(mosquitto_publish(r->c.mosq, NULL, r->topic, len, req, 1, false) != MOSQ_ERR_SUCCESS){
		mqc_seterr(err, errlen, "publish on %s failed", r->topic);
		return MQC_ERR_IO;
	}
	deadline = time__mono_ms() + RPC_TIMEOUT_MS;
	while(!r->answered && !r->c.lost && time__mono_ms() < deadline){
		net__pass(cs, 1, 5);
	}
	*ns = time__mono_ns() - t0;
	if(r->answered){
		return MQC_OK;
	}
	if(r->c.lost){
		mqc_seterr(err, errlen, "connection lost");
		return MQC_ERR_IO;
	}
	r->timeouts++;
	mqc_seterr(err, errlen, "no answer to q%ld within %d ms", n, RPC_TIMEOUT_MS);
	return MQC_ERR_TIMEOUT;
}

/* New reference: the last answer parsed, or NULL (not JSON, or not ok). */
static json_t *parsed(const struct rpc *r)
{
	json_t *j;

	if(!r->answered || !r->ok || r->answer == NULL){
		return NULL;
	}
	j = json_loadb(r->answer, r->answer_len, 0, NULL);
	if(j && !json_is_object(j)){
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The conversation list walked page by page (limit a page): *total
 * conversations, *pages, and befores[k] the before that asks for page k
 * (befores[0] = 0: none). MQC_OK or an error with err filled. */
static int walk_conversations(struct rpc *r, int limit, long *befores, int maxpages,
		long *total, int *pages, char *err, size_t errlen)
{
	char members[128];
	int64_t ns;
	bool more = true;
	int rc;

	*total = 0;
	*pages = 0;
	befores[0] = 0;
	while(more && *pages < maxpages){
		json_t *a, *list, *conv;
		size_t k;
		long least = -1;

		if(befores[*pages] > 0){
			snprintf(members, sizeof(members), "\"op\":\"conversations\",\"limit\":%d,\"before\":%ld",
					limit, befores[*pages]);
		}else{
			snprintf(members, sizeof(members), "\"op\":\"conversations\",\"limit\":%d", limit);
		}
		rc = call(r, members, &ns, err, errlen);
		if(rc != MQC_OK) return rc;
		a = parsed(r);
		list = a ? json_object_get(a, "conversations") : NULL;
		if(!json_is_array(list)){
			mqc_seterr(err, errlen, "conversations: %.160s", r->answer ? r->answer : "no answer");
			json_decref(a);
			return MQC_ERR_INVAL;
		}
		json_array_foreach(list, k, conv){
			json_int_t s = json_integer_value(json_object_get(conv, "last_seq"));
			if(least < 0 || s < least) least = (long)s;
		}
		*total += (long)json_array_size(list);
		more = json_is_true(json_object_get(a, "more")) && least > 0;
		json_decref(a);
		(*pages)++;
		if(*pages < maxpages) befores[*pages] = least;
	}
	return MQC_OK;
}

/* One catch-up: sync pages from after until more is false. *msgs and
 * *pages get the counts. MQC_OK or an error with err filled. */
static int catchup(struct rpc *r, long after, int limit, long *msgs, int *pages,
		char *err, size_t errlen)
{
	char members[128];
	int64_t ns;
	bool more = true;
	int rc;

	*msgs = 0;
	*pages = 0;
	while(more){
		json_t *a, *list, *last;

		if(*pages >= CATCHUP_MAX_PAGES){
			mqc_seterr(err, errlen, "catch-up not done after %d pages", *pages);
			return MQC_ERR_TOOBIG;
		}
		/* With the change rows: a device that held messages before applies them. */
		snprintf(members, sizeof(members), "\"op\":\"sync\",\"after\":%ld,\"limit\":%d,\"changes\":true",
				after, limit);
		rc = call(r, members, &ns, err, errlen);
		if(rc != MQC_OK) return rc;
		a = parsed(r);
		list = a ? json_object_get(a, "messages") : NULL;
		if(!json_is_array(list)){
			mqc_seterr(err, errlen, "sync: %.160s", r->answer ? r->answer : "no answer");
			json_decref(a);
			return MQC_ERR_INVAL;
		}
		(*pages)++;
		*msgs += (long)json_array_size(list);
		more = json_is_true(json_object_get(a, "more"));
		last = json_array_get(list, json_array_size(list) - 1);
		if(last){
			after = (long)json_integer_value(json_object_get(last, "seq"));
		}else if(more){
			mqc_seterr(err, errlen, "sync: an empty page with more");
			json_decref(a);
			return MQC_ERR_INVAL;
		}
		json_decref(a);
	}
	return MQC_OK;
}

/* The members of the next measured request of op (history, sync,
 * conversations, search) into buf. */
static void request_members(const struct bench_opts *o, long before, const char *text_json,
		unsigned long long *rnd, char *buf, size_t len)
{
	if(strcmp(o->op, "sync") == 0){
		*rnd ^= *rnd << 13;
		*rnd ^= *rnd >> 7;
		*rnd ^= *rnd << 17;
		snprintf(buf, len, "\"op\":\"sync\",\"after\":%llu,\"limit\":%d",
				o->max_seq > 0 ? *rnd % (unsigned long long)o->max_seq : 0ULL, o->rpc_limit);
	}else if(strcmp(o->op, "conversations") == 0){
		if(before > 0){
			snprintf(buf, len, "\"op\":\"conversations\",\"limit\":%d,\"before\":%ld",
					o->rpc_limit, before);
		}else{
			snprintf(buf, len, "\"op\":\"conversations\",\"limit\":%d", o->rpc_limit);
		}
	}else if(strcmp(o->op, "search") == 0){
		snprintf(buf, len, "\"op\":\"search\",\"text\":%s,\"limit\":%d", text_json, o->rpc_limit);
	}else{
		snprintf(buf, len, "\"op\":\"history\",\"with\":\"%s\",\"limit\":%d", o->rpc_with,
				o->rpc_limit);
	}
}

int rpc__latency(const struct bench_opts *o)
{
	struct bclient *cs[1];
	struct rpc r;
	struct lat lat;
	char filter[TOPIC_MAX_LEN + 1], members[512], err[256], extra[256];
	long i = 0, ok = 0, before = 0, befores[WALK_MAX_PAGES], found = 0, with_more = 0;
	long total = 0, msgs = 0, run_msgs = -1;
	int64_t start, end, ns;
	unsigned long long rnd = 88172645463325252ULL;
	char *text_json = NULL;
	bool is_catchup = strcmp(o->op, "catchup") == 0;
	bool is_search = strcmp(o->op, "search") == 0;
	int rc = 1, pages = 0, run_pages = 0;

	memset(&r, 0, sizeof(r));
	r.c.owner = &r;
	cs[0] = &r.c;
	err[0] = extra[0] = '\0';
	if(lat__init(&lat, (size_t)o->count + 1) != MQC_OK){
		return 1;
	}
	if(is_search){
		json_t *t = json_string(o->text ? o->text : "");
		text_json = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL;
		json_decref(t);
		if(text_json == NULL || strlen(text_json) > 300){
			snprintf(err, sizeof(err), "--text missing or too long");
			goto fail;
		}
	}
	topic__build(r.topic, sizeof(r.topic), TOPIC_RPC_REQ, o->rpc_user, NULL);
	topic__build(filter, sizeof(filter), TOPIC_RPC_RESP, o->rpc_user, NULL);
	if(bclient__start(&r.c, o, o->rpc_user, o->rpc_user, o->password, NULL, message_cb,
				err, sizeof(err)) != MQC_OK){
		goto fail;
	}
	if(net__wait_connack(cs, 1, 10000) != 1){
		snprintf(err, sizeof(err), "login of %s refused (rc %d)", o->rpc_user, r.c.connack_rc);
		goto fail;
	}
	if(mosquitto_subscribe(r.c.mosq, NULL, filter, 1) != MOSQ_ERR_SUCCESS
			|| net__wait_suback(cs, 1, 10000) != 1){
		snprintf(err, sizeof(err), "subscription to %s refused", filter);
		goto fail;
	}
	if(strcmp(o->op, "conversations") == 0){
		if(walk_conversations(&r, o->rpc_limit, befores, WALK_MAX_PAGES, &total, &pages,
					err, sizeof(err)) != MQC_OK){
			goto fail;
		}
		if(o->depth >= pages){
			snprintf(err, sizeof(err), "page %d asked for, the list has %d pages (%ld conversations)",
					o->depth, pages, total);
			goto fail;
		}
		before = befores[o->depth];
		snprintf(extra, sizeof(extra), ",\"conversations_total\":%ld,\"pages\":%d,\"depth\":%d,"
				"\"before\":%ld", total, pages, o->depth, before);
	}
	start = time__mono_ms();
	end = start + (int64_t)(o->seconds * 1000.0);
	for(i = 0; i < o->count && time__mono_ms() < end; i++){
		if(is_catchup){
			int64_t t0 = time__mono_ns();
			rc = catchup(&r, o->after, o->rpc_limit, &msgs, &run_pages, err, sizeof(err));
			if(rc != MQC_OK){
				goto fail;
			}
			lat__add(&lat, time__mono_ns() - t0);
			if(run_msgs >= 0 && msgs != run_msgs){
				snprintf(err, sizeof(err), "catch-up runs differ: %ld then %ld messages", run_msgs, msgs);
				goto fail;
			}
			run_msgs = msgs;
			ok++;
			continue;
		}
		request_members(o, before, text_json, &rnd, members, sizeof(members));
		rc = call(&r, members, &ns, err, sizeof(err));
		if(rc == MQC_ERR_TIMEOUT && r.timeouts < 3){
			continue;
		}
		if(rc != MQC_OK){
			break;
		}
		lat__add(&lat, ns);
		if(r.ok){
			ok++;
		}
		if(is_search && r.ok){
			json_t *a = parsed(&r);
			found += (long)json_array_size(json_object_get(a, "messages"));
			with_more += json_is_true(json_object_get(a, "more"));
			json_decref(a);
		}
	}
	if(is_search){
		snprintf(extra, sizeof(extra), ",\"text\":%s,\"mean_found\":%.1f,\"more_share\":%.2f",
				text_json, ok ? (double)found / (double)ok : 0.0,
				ok ? (double)with_more / (double)ok : 0.0);
	}else if(is_catchup){
		snprintf(extra, sizeof(extra), ",\"after\":%ld,\"messages_per_run\":%ld,\"pages_per_run\":%d",
				o->after, run_msgs, run_pages);
	}
	printf("{\"mode\":\"rpc\",\"op\":\"%s\",\"limit\":%d,\"requests\":%ld,\"ok\":%ld,\"failed\":%ld,"
			"\"timeouts\":%ld,\"seconds\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
			"\"mean_bytes\":%.0f%s}\n",
			o->op, o->rpc_limit, i, ok, r.failed, r.timeouts,
			(double)(time__mono_ms() - start) / 1000.0,
			lat__pct_us(&lat, 50), lat__pct_us(&lat, 99), lat__pct_us(&lat, 100),
			r.answers > 0 ? (double)r.bytes / (double)r.answers : 0.0, extra);
	if(r.failed > 0){
		fprintf(stderr, "rpc: first error answer: %s\n", r.first_error);
	}
	rc = (ok > 0 && r.timeouts == 0 && r.failed == 0) ? 0 : 1;
	if(rc && err[0]){
		fprintf(stderr, "rpc: %s\n", err);
	}
	bclient__cleanup(&r.c);
	lat__cleanup(&lat);
	free(r.answer);
	free(text_json);
	return rc;
fail:
	printf("{\"mode\":\"rpc\",\"op\":\"%s\",\"error\":", o->op);
	{
		json_t *e = json_string(err[0] ? err : "failed");
		char *s = e ? json_dumps(e, JSON_ENCODE_ANY) : NULL;
		printf("%s}\n", s ? s : "\"failed\"");
		free(s);
		json_decref(e);
	}
	fprintf(stderr, "Error: rpc: %s\n", err);
	bclient__cleanup(&r.c);
	lat__cleanup(&lat);
	free(r.answer);
	free(text_json);
	return 1;
}
