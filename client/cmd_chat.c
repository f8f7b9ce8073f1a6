/* cmd_chat.c - "chat": a conversation with one user or a room. Lines typed
 * are sent, incoming messages appear as they come with read receipts (and
 * who is typing to me, or in the room: a line reader only sees whole
 * lines, so chat itself sends no typing), and /history, /who, /quit do
 * what they say. Over a pipe it sends every line,
 * waits for the PUBACKs and exits at EOF. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "feed.h"
#include "session.h"
#include "timeutil.h"

/* A line longer than this cannot fit in a message (the envelope adds to
 * it): it is dropped as it comes, and only its length kept. */
#define LINE_MAX_BYTES (PAYLOAD_MAX + 2)

struct pending {
	int mid;
	char id[MSGID_LEN + 1];
};

struct chat {
	struct session *s;
	struct options *opt;
	struct feed *f;
	const char *peer;       /* NULL in a room */
	const char *room;       /* NULL with a peer */
	char topic[TOPIC_MAX_LEN + 1];  /* where my lines go */
	bool interactive;
	struct pending *mids;   /* my messages awaiting their PUBACK */
	int nmids, capmids;
	int failed;             /* lines refused or invalid */
	char *buf;              /* stdin bytes not yet a whole line */
	size_t len;
	bool discarding;        /* inside an over-long line */
	size_t dropped;         /* ... and the bytes of it dropped so far */
};

/* Report the PUBACKs that have come in; a refused line gets its reason
 * ("not sent: bob blocks you"), not a silent loss. */
static void collect(struct chat *c, bool wait)
{
	int i = 0, reason, rc;

	while(i < c->nmids){
		bool done = false;
		int k;
		for(k=0; k<c->s->npubs; k++){
			if(c->s->pubs[k].mid == c->mids[i].mid) done = c->s->pubs[k].done;
		}
		if(!done && !wait){
			i++;
			continue;
		}
		rc = session__pub_wait(c->s, c->mids[i].mid, &reason);
		if(rc){
			c->failed++;
		}else if(reason >= 0x80){
			cmd_send__refused(c->s, c->mids[i].id, reason, NULL);
			c->failed++;
		}
		c->mids[i] = c->mids[--c->nmids];
	}
}

static void history(struct chat *c)
{
	json_t *req, *resp = NULL, *msgs;
	size_t n, k;

	req = json_pack("{s:s, s:s, s:i}", "op", "history", c->peer ? "with" : "room",
			c->peer ? c->peer : c->room, "limit", 20);
	if(req == NULL) return;
	if(session__rpc(c->s, req, &resp) == EXIT_OK){
		msgs = json_object_get(resp, "messages");
		n = json_array_size(msgs);
		for(k=n; k>0; k--){
			feed__print_archived(json_array_get(msgs, k - 1), c->opt->json, false,
					c->opt->user, msgs);
		}
		if(n == 0) fprintf(stderr, "(no history)\n");
	}
	json_decref(req);
	json_decref(resp);
}

static void who(struct chat *c)
{
	json_t *req, *resp = NULL, *rooms, *r;
	size_t i;

	if(c->peer){
		cmd_who__show(c->s, c->peer, NULL, c->opt->json);
		return;
	}
	req = json_pack("{s:s}", "op", "rooms");
	if(req == NULL) return;
	if(session__rpc(c->s, req, &resp) == EXIT_OK){
		rooms = cmd_rooms__list(resp);
		json_array_foreach(rooms, i, r){
			const char *name = json_string_value(json_object_get(r, "name"));
			if(name && !strcmp(name, c->room)){
				cmd_who__show(c->s, NULL, json_object_get(r, "members"), c->opt->json);
			}
		}
		json_decref(rooms);
	}
	json_decref(req);
	json_decref(resp);
}

/* Handle one line; returns false on /quit. */
static bool line(struct chat *c, char *l, size_t len)
{
	char id[MSGID_LEN + 1];
	int mid = 0;

	if(len > 0 && l[len-1] == '\r') l[--len] = '\0';
	if(len == 0) return true;
	if(l[0] == '/' && l[1] != '/'){
		if(!strcmp(l, "/quit") || !strcmp(l, "/q")) return false;
		if(!strcmp(l, "/history")) history(c);
		else if(!strcmp(l, "/who")) who(c);
		else if(!strcmp(l, "/help")){
			fprintf(stderr, "/history  the last 20 messages\n/who      presence\n"
					"/quit     leave\n//text    send a line starting with /\n");
		}else{
			fprintf(stderr, "unknown command %s (try /help)\n", l);
		}
		return true;
	}
	if(l[0] == '/'){
		l++;
		len--;
	}
	/* Its size is checked as the envelope is built (cmd_send__publish). */
	if(util__check_text(l, len)){
		c->failed++;
		return true;
	}
	if(c->nmids == c->capmids){
		int cap = c->capmids ? c->capmids * 2 : 32;
		struct pending *n = realloc(c->mids, (size_t)cap * sizeof(*n));
		if(n == NULL){
			util__error("out of memory");
			c->failed++;
			return true;
		}
		c->mids = n;
		c->capmids = cap;
	}
	if(cmd_send__publish(c->s, c->topic, l, len, NULL, NULL, id, &mid) != EXIT_OK){
		c->failed++;
		return true;
	}
	/* My own copy (chat/inbox/<peer>/<me>) comes back: the line is on
	 * the screen already. */
	feed__sent(c->f, id);
	c->mids[c->nmids].mid = mid;
	memcpy(c->mids[c->nmids].id, id, sizeof(id));
	c->nmids++;
	return true;
}

/* A line too long to keep (len bytes) was dropped: say so as for any text
 * too large, with how much fits (measured on a one-byte text's envelope). */
static void too_long(struct chat *c, size_t len)
{
	char id[MSGID_LEN + 1], why[300], *p = NULL;
	size_t rest = 0;

	if(cmd_send__envelope("x", 1, NULL, NULL, id, &p, why, sizeof(why)) == EXIT_OK){
		rest = strlen(p) - 1;
	}
	free(p);
	if(util__envelope_fits(rest + len, NULL, len, why, sizeof(why)) == EXIT_OK){
		snprintf(why, sizeof(why), "message too large: %zu bytes", len);
	}
	util__error("%s", why);
	c->failed++;
}

/* Read what stdin has; handle whole lines. Returns false at EOF or /quit. */
static bool read_input(struct chat *c)
{
	ssize_t r;
	size_t start = 0, i;

	r = read(STDIN_FILENO, c->buf + c->len, LINE_MAX_BYTES - c->len);
	if(r < 0) return errno == EINTR || errno == EAGAIN;
	if(r == 0){
		if(c->discarding){
			too_long(c, c->dropped + c->len);
		}else if(c->len > 0){
			c->buf[c->len] = '\0';
			(void)line(c, c->buf, c->len);
		}
		c->len = 0;
		return false;
	}
	c->len += (size_t)r;
	for(i=0; i<c->len; i++){
		if(c->buf[i] != '\n') continue;
		c->buf[i] = '\0';
		if(c->discarding){
			/* While discarding, the buffer starts inside the long line. */
			too_long(c, c->dropped + i - start);
			c->discarding = false;
		}else if(!line(c, c->buf + start, i - start)){
			return false;
		}
		start = i + 1;
	}
	memmove(c->buf, c->buf + start, c->len - start);
	c->len -= start;
	if(c->discarding){
		c->dropped += c->len;
		c->len = 0;
	}else if(c->len == LINE_MAX_BYTES){
		c->discarding = true;
		c->dropped = c->len;
		c->len = 0;
	}
	return true;
}

int cmd_chat__probe(struct session *s, const char *peer, const char *room, char *why,
		size_t why_len)
{
	char topic[TOPIC_MAX_LEN + 1], id[MSGID_LEN + 1], payload[80];
	struct notice n;
	int rc, mid = 0, reason = 0;

	/* A typing stop reaches nobody who matters (it says what they see
	 * already), is never queued or archived, and the plugin judges its
	 * topic as it judges a message to the same peer or room. The id is
	 * not part of the typing payload (unknown members are ignored): the
	 * plugin puts it in the notice's ref, so the notice can be claimed. */
	util__msgid(id);
	snprintf(payload, sizeof(payload), "{\"id\":\"%s\",\"typing\":false}", id);
	topic__build(topic, sizeof(topic), peer ? TOPIC_TYPING : TOPIC_ROOMTYPING,
			peer ? peer : room, s->opt->user);
	rc = session__publish(s, topic, payload, strlen(payload), true, &mid);
	if(rc == EXIT_OK) rc = session__pub_wait(s, mid, &reason);
	if(rc){
		snprintf(why, why_len, "%s", rc == EXIT_TIMEOUT ? "no answer from the broker in time"
				: rc == EXIT_UNREACH ? "connection to the broker lost" : "cannot ask the broker");
		return rc;
	}
	if(reason < 0x80 || !session__notice(s, id, &n)) return EXIT_OK;
	if(!strcmp(n.code, "no_recipient") && peer){
		snprintf(why, why_len, "no account named '%s'", peer);
	}else if(!strcmp(n.code, "blocked") && peer){
		snprintf(why, why_len, "%s blocks you", peer);
	}else if(!strcmp(n.code, "not_member") && room){
		snprintf(why, why_len, "you are not a member of room %s, or there is no such room",
				room);
	}else{
		/* rate_limited, a server without typing, ...: it cannot tell. */
		return EXIT_OK;
	}
	return EXIT_FAILED;
}

int cmd_chat__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	struct feed *f;
	struct chat c;
	char rtopic[TOPIC_MAX_LEN + 1];
	const char *topics[1] = {rtopic};
	static const struct cmdline_opt opts[] = {
		{"room", 0, CMDLINE_REQUIRED, 'r'},
		{"json", 0, CMDLINE_NO_ARG, 'j'},
		{0}};
	struct cmdline cl;
	int o, rc;
	enum session_wait w;

	memset(&c, 0, sizeof(c));
	cmd__options(&cl, "chat", opts, a->nargs, a->args);
	while((o = cmdline__next(&cl)) > 0){
		if(o == 'j') opt->json = true;
		else if(o == 'r') c.room = cl.value;
	}
	if(o < 0) return cmd__options_end(&cl, "chat", o);
	if(cl.nargs > 1) return cmd__usage("chat");
	if(cl.nargs == 1 && c.room != NULL) return cmd__usage("chat");
	if(cl.nargs == 1 && (rc = login__conv_operand(cl.args[0], &c.peer, &c.room))) return rc;
	if(c.peer == NULL && c.room == NULL) return cmd__usage("chat");
	if(!names__valid_str(c.peer ? c.peer : c.room)){
		return login__bad_name(c.peer ? "user" : "room", c.peer ? c.peer : c.room);
	}
	if((rc = options__need_user(opt))) return rc;

	f = calloc(1, sizeof(*f));
	c.buf = malloc(LINE_MAX_BYTES + 1);
	if(f == NULL || c.buf == NULL){
		free(f);
		free(c.buf);
		util__error("out of memory");
		return EXIT_FAILED;
	}
	c.opt = opt;
	c.s = &s;
	c.f = f;
	c.interactive = isatty(STDIN_FILENO);
	topic__build(c.topic, sizeof(c.topic), c.peer ? TOPIC_INBOX : TOPIC_ROOM,
			c.peer ? c.peer : c.room, opt->user);

	if((rc = session__init(&s, opt, SESSION_PERSISTENT))) goto done;
	feed__init(f, &s, opt->user, opt->json, "read");
	s.on_message = feed__message_cb;
	s.ud = f;
	if((rc = session__connect(&s))) goto done;
	/* A peer who cannot get my lines is said at once, not after the first
	 * line (a room I am not in: its subscription is refused below). */
	if(c.peer){
		char why[200];
		if((rc = cmd_chat__probe(&s, c.peer, NULL, why, sizeof(why)))){
			if(rc == EXIT_FAILED) util__error("%s", why);
			goto done;
		}
	}
	if((rc = cmd_listen__inbox(&s))) goto done;
	if(c.room){
		topic__build(rtopic, sizeof(rtopic), TOPIC_ROOM, c.room, "#");
		if((rc = session__subscribe(&s, topics, 1, 1, true))) goto done;
		if(s.granted[0] >= 0x80){
			util__error("not allowed to read room %s (are you a member?)", c.room);
			rc = EXIT_DENIED;
			goto done;
		}
		/* Who is typing in the room (QoS 0, never queued); a server
		 * without typing refuses it, and chat goes on without. */
		topic__build(rtopic, sizeof(rtopic), TOPIC_ROOMTYPING, c.room, "+");
		if((rc = session__subscribe(&s, topics, 1, 0, true))) goto done;
	}else if((rc = cmd_listen__typing(&s, c.peer, false))){
		goto done;
	}
	if(c.interactive){
		fprintf(stderr, "chatting with %s%s as %s (/history, /who, /quit)\n",
				c.room ? "#" : "", c.peer ? c.peer : c.room, opt->user);
	}
	for(;;){
		w = session__wait(&s, NULL, NULL, 0, STDIN_FILENO);
		if(w != WAIT_FD) break;
		if(!read_input(&c)) break;
		collect(&c, false);
	}
	if(w == WAIT_FATAL){
		rc = s.fatal;
	}else{
		session_stop = 0;
		collect(&c, true);
		rc = c.failed ? EXIT_FAILED : EXIT_OK;
	}
done:
	session__cleanup(&s);
	free(c.mids);
	free(c.buf);
	free(f);
	return rc;
}
