/* cmd_listen.c - "listen": print what arrives in my inbox and my rooms (and
 * what I send from my other devices, and with --typing who is typing), send
 * delivered receipts, survive broker restarts (persistent session), and
 * sync what a lost session or a resync notice may have kept from me. */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "feed.h"
#include "session.h"
#include "timeutil.h"

/* Ask the archiver req (taken) without printing its errors: listen says
 * in its own words what a failed answer means for it. */
static int quiet_rpc(struct session *s, json_t *req, json_t **resp)
{
	int rc;

	s->quiet = true;
	rc = session__rpc(s, req, resp);
	s->quiet = false;
	json_decref(req);
	return rc;
}

/* The rooms the archiver names (a new array of cmd_rooms__list's objects),
 * or NULL: no answer (said on stderr, as "listening to the inbox (and rooms
 * of earlier runs) only"), or a fatal error with *rc set. */
static json_t *my_rooms(struct session *s, int *rc)
{
	json_t *req, *resp = NULL, *rooms;
	int r2;

	*rc = EXIT_OK;
	req = json_pack("{s:s}", "op", "rooms");
	if(req == NULL) return NULL;
	r2 = quiet_rpc(s, req, &resp);
	if(r2 == EXIT_TIMEOUT){
		fprintf(stderr, "warning: the archiver did not answer within %d s: listening to "
				"the inbox (and rooms of earlier runs) only\n", s->opt->timeout_s);
		return NULL;
	}
	if(r2 == EXIT_UNREACH || r2 == EXIT_AUTH){
		*rc = r2;
		return NULL;
	}
	if(r2){
		fprintf(stderr, "warning: could not list my rooms: listening to the inbox only\n");
		return NULL;
	}
	rooms = cmd_rooms__list(resp);
	json_decref(resp);
	return rooms;
}

/* Subscribe at qos to the topic of kind (TOPIC_ROOM or TOPIC_ROOMTYPING)
 * with "+"/"#" as sender (last) for every room of rooms, 64 to a
 * SUBSCRIBE (the session's batch size). Refusals are said (what: "read",
 * "see typing in") unless quiet; returns the number granted, or -1 on a
 * fatal error with *rc set. */
static int subscribe_rooms(struct session *s, json_t *rooms, enum topic_kind kind,
		const char *last, int qos, const char *what, int *rc)
{
	char buf[64][TOPIC_MAX_LEN + 1];
	const char *topics[64];
	size_t i;
	int n = 0, k;

	*rc = EXIT_OK;
	for(i=0; *rc == EXIT_OK && i<json_array_size(rooms); ){
		int batch = 0;
		for(; i<json_array_size(rooms) && batch < 64; i++){
			json_t *r = json_array_get(rooms, i);
			topic__build(buf[batch], sizeof(buf[batch]), kind,
					json_string_value(json_object_get(r, "name")), last);
			topics[batch] = buf[batch];
			batch++;
		}
		*rc = session__subscribe(s, topics, batch, qos, true);
		for(k=0; *rc == EXIT_OK && k<s->ngranted; k++){
			if(s->granted[k] >= 0x80){
				fprintf(stderr, "warning: not allowed to %s %s\n", what, topics[k]);
			}else{
				n++;
			}
		}
	}
	return *rc ? -1 : n;
}

int cmd_listen__inbox(struct session *s)
{
	char inbox[TOPIC_MAX_LEN + 1], mine[TOPIC_MAX_LEN + 1];
	const char *topics[2] = {inbox, mine};
	int rc;

	/* chat/inbox/<me>/# brings what others send me; chat/inbox/+/<me>
	 * what I send from my other devices. */
	topic__build(inbox, sizeof(inbox), TOPIC_INBOX, s->user, "#");
	topic__build(mine, sizeof(mine), TOPIC_INBOX, "+", s->user);
	rc = session__subscribe(s, topics, 2, 1, true);
	if(rc) return rc;
	if(s->granted[0] >= 0x80){
		util__error("not authorized to subscribe to %s (%s)", inbox,
				mosquitto_reason_string(s->granted[0]));
		return EXIT_DENIED;
	}
	if(s->granted[1] >= 0x80){
		/* A server before the issue 17 contract: the rest still works. */
		fprintf(stderr, "warning: the server refused %s: messages I send from my other "
				"devices will not show\n", mine);
	}
	return EXIT_OK;
}

int cmd_listen__typing(struct session *s, const char *peer, bool warn)
{
	char topic[TOPIC_MAX_LEN + 1];
	const char *topics[1] = {topic};
	int rc;

	/* QoS 0: typing is never queued, and the broker refuses it at 1. */
	topic__build(topic, sizeof(topic), TOPIC_TYPING, s->user, peer ? peer : "+");
	rc = session__subscribe(s, topics, 1, 0, true);
	if(rc == EXIT_OK && warn && s->granted[0] >= 0x80){
		fprintf(stderr, "warning: the server refused %s: typing will not show\n", topic);
	}
	return rc;
}

/* Pages of one catch-up sync (500 messages each), as the terminal app. */
#define CATCHUP_PAGES_MAX 20
/* A catch-up that failed is tried again this much later. */
#define CATCHUP_RETRY_MS 5000

struct listen_stop {
	struct feed *f;
	long count;
	/* The catch-up (docs/PROTOCOL.md, "Several nodes"): the largest seq
	 * synced, the session's resyncs it has answered, and f->seen_added at
	 * its last sync. */
	int64_t seq;
	bool seq_known;
	unsigned resyncs;
	long seen_synced;
	int64_t retry_at;           /* monotonic ms; 0: now */
};

static bool count_reached(struct session *s, void *arg)
{
	struct listen_stop *st = arg;

	(void)s;
	return st->count > 0 && st->f->count >= st->count;
}

/* A catch-up is due: the session was lost or a resync notice came; or
 * half of the feed's memory of what it showed has been filled since the
 * last sync (each text takes two places: it and my receipt's copy), so
 * that a later catch-up, which starts from that sync's seq, still knows
 * everything it returns that was shown live. */
static bool catch_up_due(struct session *s, struct listen_stop *st)
{
	if(!st->seq_known || !s->connected || time__mono_ms() < st->retry_at) return false;
	return s->resyncs != st->resyncs || st->f->seen_added - st->seen_synced >= FEED_SEEN / 2;
}

static bool listen_cond(struct session *s, void *arg)
{
	return count_reached(s, arg) || catch_up_due(s, arg);
}

/* Sync from the largest seq listen has until more is false, showing each
 * row as it would have come live (feed__archived: what was shown is not
 * shown again) unless show is false (at start: only the position moves).
 * A failure is said and the catch-up tried again later; fatal errors
 * return their exit code. */
static int catch_up(struct session *s, struct listen_stop *st, bool show)
{
	unsigned resyncs = s->resyncs;
	int pages, rc;

	for(pages=0; pages<CATCHUP_PAGES_MAX; pages++){
		json_t *req, *resp = NULL, *m;
		size_t i;
		bool more;

		req = json_pack("{s:s, s:I, s:i, s:b}", "op", "sync", "after", (json_int_t)st->seq,
				"limit", 500, "changes", 1);
		if(req == NULL) return EXIT_FAILED;
		rc = quiet_rpc(s, req, &resp);
		if(rc == EXIT_AUTH || s->fatal) return rc ? rc : s->fatal;
		if(rc){
			fprintf(stderr, "warning: could not sync what may have been missed (%s): "
					"trying again\n", s->rpc_error[0] ? s->rpc_error : "no answer");
			st->retry_at = time__mono_ms() + CATCHUP_RETRY_MS;
			return EXIT_OK;
		}
		json_array_foreach(json_object_get(resp, "messages"), i, m){
			json_int_t seq = json_integer_value(json_object_get(m, "seq"));
			if(seq > st->seq) st->seq = seq;
			if(show) feed__archived(st->f, m);
		}
		more = json_is_true(json_object_get(resp, "more"));
		json_decref(resp);
		if(!more) break;
	}
	st->resyncs = resyncs;
	st->seen_synced = st->f->seen_added;
	st->retry_at = 0;
	return EXIT_OK;
}

/* Where catch-ups start: the largest seq of my archive now, so that one
 * shows only what came after listen started. The newest conversation's
 * last_seq, then a sync from it that shows nothing (the changes after it).
 * An archiver without conversations: no catch-ups, said. */
static int catch_up_start(struct session *s, struct listen_stop *st)
{
	json_t *req = json_pack("{s:s, s:i}", "op", "conversations", "limit", 1), *resp = NULL;
	int rc;

	if(req == NULL) return EXIT_FAILED;
	rc = quiet_rpc(s, req, &resp);
	if(rc == EXIT_AUTH || s->fatal) return rc ? rc : s->fatal;
	if(rc){
		fprintf(stderr, "warning: could not ask where my archive ends: what a lost "
				"connection keeps from me will not be synced\n");
		return EXIT_OK;
	}
	st->seq = json_integer_value(json_object_get(json_array_get(
					json_object_get(resp, "conversations"), 0), "last_seq"));
	json_decref(resp);
	st->seq_known = true;
	st->resyncs = s->resyncs;
	return catch_up(s, st, false);
}

int cmd_listen__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	struct feed *f = NULL;
	struct listen_stop st = {0};
	long long secs = cmdline__num(&a->vals, "for", 0);
	bool typing = cmdline__given(&a->vals, "typing");
	json_t *rooms = NULL;
	int64_t deadline = 0;
	int rc, nrooms = 0;
	enum session_wait w;

	st.count = (long)cmdline__num(&a->vals, "count", 0);
	if((rc = options__need_user(opt))) return rc;
	f = calloc(1, sizeof(*f));
	if(f == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	st.f = f;
	rc = session__init(&s, opt, SESSION_PERSISTENT);
	if(rc) goto done;
	feed__init(f, &s, opt->user, opt->json, "delivered");
	s.on_message = feed__message_cb;
	s.ud = f;

	if((rc = session__connect(&s))) goto done;
	if((rc = cmd_listen__inbox(&s))) goto done;
	rooms = my_rooms(&s, &rc);
	if(rc) goto done;
	nrooms = subscribe_rooms(&s, rooms, TOPIC_ROOM, "#", 1, "read", &rc);
	if(rc) goto done;
	if(typing && ((rc = cmd_listen__typing(&s, NULL, true))
			|| subscribe_rooms(&s, rooms, TOPIC_ROOMTYPING, "+", 0, "see typing in", &rc) < 0)){
		goto done;
	}
	/* An archiver that did not answer (said above) is not asked again:
	 * no catch-ups then, rather than a second wait. */
	if(rooms != NULL && (rc = catch_up_start(&s, &st))) goto done;
	fprintf(stderr, "listening as %s (inbox and %d room%s)\n", s.client_id, nrooms,
			nrooms == 1 ? "" : "s");

	if(secs > 0) deadline = time__mono_ms() + secs * 1000;
	for(;;){
		w = session__wait(&s, listen_cond, &st, deadline, -1);
		if(w != WAIT_DONE || count_reached(&s, &st)) break;
		if((rc = catch_up(&s, &st, true))) goto done;
	}
	if(w == WAIT_FATAL) rc = s.fatal;
	else if(w == WAIT_LOST) rc = session__wait_rc(&s, w, "while listening");
	else rc = EXIT_OK;
done:
	json_decref(rooms);
	session__cleanup(&s);
	free(f);
	return rc;
}
