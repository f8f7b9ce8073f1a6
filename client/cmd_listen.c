/* cmd_listen.c - "listen": print what arrives in my inbox and my rooms, send
 * delivered receipts, survive broker restarts (persistent session). */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "feed.h"
#include "session.h"
#include "timeutil.h"

/* Subscribe to chat/room/<name>/# for every room the archiver names; a
 * missing answer is no error (the persistent session still holds the rooms
 * of earlier runs). Returns the number of rooms, or -1 on a fatal error
 * with *rc set. */
static int subscribe_rooms(struct session *s, int *rc)
{
	json_t *req, *resp = NULL, *rooms, *r;
	char buf[64][TOPIC_MAX_LEN + 1];
	const char *topics[64];
	size_t i;
	int n = 0, k, r2;

	*rc = EXIT_OK;
	req = json_pack("{s:s}", "op", "rooms");
	if(req == NULL) return 0;
	s->quiet = true;
	r2 = session__rpc(s, req, &resp);
	s->quiet = false;
	json_decref(req);
	if(r2 == EXIT_TIMEOUT){
		fprintf(stderr, "warning: the archiver did not answer within %d s: listening to "
				"the inbox (and rooms of earlier runs) only\n", s->opt->timeout_s);
		return 0;
	}
	if(r2 == EXIT_UNREACH || r2 == EXIT_AUTH){
		*rc = r2;
		return -1;
	}
	if(r2){
		fprintf(stderr, "warning: could not list my rooms: listening to the inbox only\n");
		return 0;
	}
	rooms = cmd_rooms__list(resp);
	json_decref(resp);
	/* One SUBSCRIBE per 64 rooms (the session's batch size). */
	for(i=0; *rc == EXIT_OK && i<json_array_size(rooms); ){
		int batch = 0;
		for(; i<json_array_size(rooms) && batch < 64; i++){
			r = json_array_get(rooms, i);
			topic__build(buf[batch], sizeof(buf[batch]), TOPIC_ROOM,
					json_string_value(json_object_get(r, "name")), "#");
			topics[batch] = buf[batch];
			batch++;
		}
		*rc = session__subscribe(s, topics, batch, 1, true);
		for(k=0; *rc == EXIT_OK && k<s->ngranted; k++){
			if(s->granted[k] >= 0x80){
				fprintf(stderr, "warning: not allowed to read %s\n", topics[k]);
			}else{
				n++;
			}
		}
	}
	json_decref(rooms);
	return *rc ? -1 : n;
}

int cmd_listen__inbox(struct session *s)
{
	char topic[TOPIC_MAX_LEN + 1];
	const char *topics[1] = {topic};
	int rc;

	topic__build(topic, sizeof(topic), TOPIC_INBOX, s->user, "#");
	rc = session__subscribe(s, topics, 1, 1, true);
	if(rc) return rc;
	if(s->granted[0] >= 0x80){
		util__error("not authorized to subscribe to %s (%s)", topic,
				mosquitto_reason_string(s->granted[0]));
		return EXIT_DENIED;
	}
	return EXIT_OK;
}

struct listen_stop {
	struct feed *f;
	long count;
};

static bool count_reached(struct session *s, void *arg)
{
	struct listen_stop *st = arg;

	(void)s;
	return st->count > 0 && st->f->count >= st->count;
}

int cmd_listen__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	struct feed *f = NULL;
	struct listen_stop st = {0};
	long long secs = cmdline__num(&a->vals, "for", 0);
	int64_t deadline = 0;
	int rc, nrooms;
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
	nrooms = subscribe_rooms(&s, &rc);
	if(rc) goto done;
	fprintf(stderr, "listening as %s (inbox and %d room%s)\n", s.client_id, nrooms,
			nrooms == 1 ? "" : "s");

	if(secs > 0) deadline = time__mono_ms() + secs * 1000;
	w = session__wait(&s, count_reached, &st, deadline, -1);
	if(w == WAIT_FATAL) rc = s.fatal;
	else if(w == WAIT_LOST) rc = session__wait_rc(&s, w, "while listening");
	else rc = EXIT_OK;
done:
	session__cleanup(&s);
	free(f);
	return rc;
}
