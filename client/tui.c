/* tui.c - the terminal app's loop: the connection, what arrives, the
 * requests on their way, the keys (see tui.h). */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "timeutil.h"
#include "tui.h"

/* Typing etiquette (docs/PROTOCOL.md, "Writing an app" step 11). */
#define TYPING_AGAIN_MS 3000
#define TYPING_IDLE_MS 5000
/* Rooms added elsewhere show up within this long. */
#define ROOMS_EVERY_MS 15000
/* Pages of one catch-up sync after a reconnect (500 messages each). */
#define SYNC_PAGES_MAX 20
/* A history page. */
#define HISTORY_PAGE 50

/* Keys curses does not name: defined from their escape sequences. */
enum {
	KEY_SEL_UP = 0x4000,
	KEY_SEL_DOWN,
	KEY_WORD_LEFT,
	KEY_WORD_RIGHT,
};

static void on_hup(int sig)
{
	(void)sig;
	session_stop = 1;
}

int64_t tui__now(const struct tui *t)
{
	return time__now_ms() + t->st.clock_offset;
}

void tui__info(struct tui *t, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if(t->ninfo == TUI_INFO_MAX){
		free(t->info[0]);
		memmove(t->info, t->info + 1, (TUI_INFO_MAX - 1) * sizeof(t->info[0]));
		t->ninfo--;
	}
	t->info[t->ninfo] = strdup(buf);
	if(t->info[t->ninfo]) t->ninfo++;
	t->scroll = 0;
	t->dirty = true;
}

static void clear_info(struct tui *t)
{
	int i;

	for(i=0; i<t->ninfo; i++) free(t->info[i]);
	t->ninfo = 0;
}

/* ---- requests ---- */

struct tui_rpc *tui__rpc(struct tui *t, json_t *req, enum tui_rpc_kind kind)
{
	struct tui_rpc *r;

	if(req == NULL) return NULL;
	if(!t->s.connected || t->nrpcs == TUI_RPCS){
		if(kind == TRPC_PLAIN || kind == TRPC_SEARCH || kind == TRPC_DEVICES
				|| kind == TRPC_ROOM_INFO){
			tui__info(t, "%s", t->s.connected ? "too many requests on their way: try again"
					: "offline: try again once connected");
		}
		json_decref(req);
		return NULL;
	}
	r = &t->rpcs[t->nrpcs];
	memset(r, 0, sizeof(*r));
	if(session__rpc_send(&t->s, req, r->id) != EXIT_OK){
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	r->kind = kind;
	r->deadline = time__mono_ms() + (int64_t)t->opt->timeout_s * 1000;
	t->nrpcs++;
	return r;
}

void tui__rpc_plain(struct tui *t, json_t *req, const char *done, const char *doing)
{
	struct tui_rpc *r = tui__rpc(t, req, TRPC_PLAIN);

	if(r == NULL) return;
	snprintf(r->done, sizeof(r->done), "%s", done);
	snprintf(r->doing, sizeof(r->doing), "%s", doing);
}

static struct tui_rpc *conv_rpc(struct tui *t, json_t *req, enum tui_rpc_kind kind,
		const struct tconv *c)
{
	struct tui_rpc *r = tui__rpc(t, req, kind);

	if(r && c){
		r->ckind = c->kind;
		snprintf(r->cname, sizeof(r->cname), "%s", c->name);
	}
	return r;
}

json_t *tui__conv_req(const char *op, const struct tconv *c)
{
	return json_pack("{s:s, s:s}", "op", op, c->kind == TCONV_ROOM ? "room" : "with", c->name);
}

static void ask_history(struct tui *t, struct tconv *c, int64_t before)
{
	json_t *req = tui__conv_req("history", c);
	struct tui_rpc *r;

	if(req == NULL || t->history_asked){
		json_decref(req);
		return;
	}
	json_object_set_new(req, "limit", json_integer(HISTORY_PAGE));
	if(before > 0) json_object_set_new(req, "before", json_integer(before));
	r = conv_rpc(t, req, TRPC_HISTORY, c);
	if(r){
		r->silent = true;
		t->history_asked = true;
	}
}

static void ask_sync(struct tui *t)
{
	json_t *req = json_pack("{s:s, s:I, s:i, s:b}", "op", "sync", "after",
			(json_int_t)t->st.max_seq, "limit", 500, "changes", 1);
	struct tui_rpc *r = tui__rpc(t, req, TRPC_SYNC);

	if(r) r->silent = true;
}

void tui__ask_mutes(struct tui *t)
{
	struct tui_rpc *r = tui__rpc(t, json_pack("{s:s}", "op", "mutes"), TRPC_MUTES);

	if(r) r->silent = true;   /* a server without mute answers unknown_op */
}

bool tui__muted(const struct tui *t, const struct tconv *c, int64_t *until)
{
	json_t *m;
	size_t i;

	json_array_foreach(t->mutes, i, m){
		const char *name = json_string_value(json_object_get(m,
					c->kind == TCONV_ROOM ? "room" : "with"));
		int64_t u = json_integer_value(json_object_get(m, "until"));
		if(name == NULL || strcmp(name, c->name) != 0) continue;
		if(u != 0 && u <= tui__now(t)) return false;
		if(until) *until = u;
		return true;
	}
	return false;
}

/* Sync from the largest seq held until more is false (the answers ask
 * for the next pages). */
static void catch_up(struct tui *t)
{
	t->sync_pages = 0;
	ask_sync(t);
}

/* What the app asks at every connection: the contract it speaks, the rooms
 * (their topics), the list, the blocks, my nick; and after a reconnect what
 * was missed (sync from the largest seq seen; from 0 too if the session was
 * lost: whatever the broker had queued for it is gone). */
static void ask_all(struct tui *t, bool reconnect, bool lost)
{
	static const struct { const char *op; enum tui_rpc_kind kind; } asks[] = {
		{"hello", TRPC_HELLO}, {"rooms", TRPC_ROOMS}, {"blocked", TRPC_BLOCKED},
		{"profile", TRPC_PROFILE},
	};
	struct tui_rpc *r;
	size_t i;

	for(i=0; i<sizeof(asks)/sizeof(asks[0]); i++){
		r = tui__rpc(t, json_pack("{s:s}", "op", asks[i].op), asks[i].kind);
		if(r) r->silent = true;
	}
	r = tui__rpc(t, json_pack("{s:s, s:i}", "op", "conversations", "limit", 100),
			TRPC_CONVERSATIONS);
	if(r) r->silent = true;
	tui__ask_mutes(t);
	if(lost || (reconnect && t->st.max_seq > 0)) catch_up(t);
	if(reconnect && t->open && !t->open->history_loaded) ask_history(t, t->open, 0);
	t->next_rooms_ms = time__mono_ms() + ROOMS_EVERY_MS;
}

/* ---- publishing ---- */

static void publish_untracked(struct tui *t, const char *topic, json_t *env)
{
	char *payload = json_dumps(env, JSON_COMPACT);

	if(payload) session__publish(&t->s, topic, payload, strlen(payload), false, NULL);
	free(payload);
}

static void send_receipt(struct tui *t, const struct tmsg *m, const char *status)
{
	char topic[TOPIC_MAX_LEN + 1], id[MSGID_LEN + 1];
	json_t *env;

	if(!strcmp(m->from, t->st.me) || !strcmp(m->from, "archiver") || m->is_event) return;
	util__msgid(id);
	env = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "type", "receipt", "ref", m->id,
			"status", status);
	if(env == NULL) return;
	topic__build(topic, sizeof(topic), TOPIC_INBOX, m->from, t->st.me);
	publish_untracked(t, topic, env);
	json_decref(env);
}

static void typing_publish(struct tui *t, enum tconv_kind kind, const char *name, bool on)
{
	char topic[TOPIC_MAX_LEN + 1];
	const char *payload = on ? "{\"typing\":true}" : "{\"typing\":false}";

	if(!t->s.connected) return;
	if(kind == TCONV_DIRECT && !strcmp(name, t->st.me)) return; /* notes */
	topic__build(topic, sizeof(topic), kind == TCONV_ROOM ? TOPIC_ROOMTYPING : TOPIC_TYPING,
			name, t->st.me);
	/* QoS 0: typing is never queued, and a lost one is never sent again. */
	mosquitto_publish_v5(t->s.mosq, NULL, topic, (int)strlen(payload), payload, 0, false, NULL);
}

static void typing_stop(struct tui *t)
{
	if(!t->typing_on) return;
	typing_publish(t, t->typing_kind, t->typing_name, false);
	t->typing_on = false;
}

/* A key changed the line of the open conversation. */
static void typing_key(struct tui *t)
{
	int64_t now = time__mono_ms();
	struct tconv *c = t->open;

	if(c == NULL) return;
	if(t->line.len == 0 || t->line.buf[0] == '/'){
		typing_stop(t);
		return;
	}
	t->typing_key_ms = now;
	if(t->typing_on && (t->typing_kind != c->kind || strcmp(t->typing_name, c->name))){
		typing_stop(t);
	}
	if(!t->typing_on || now - t->typing_sent_ms >= TYPING_AGAIN_MS){
		t->typing_on = true;
		t->typing_kind = c->kind;
		snprintf(t->typing_name, sizeof(t->typing_name), "%s", c->name);
		t->typing_sent_ms = now;
		typing_publish(t, c->kind, c->name, true);
	}
}

static void conv_topic(const struct tui *t, const struct tconv *c, char *topic, size_t len)
{
	if(c->kind == TCONV_ROOM) topic__build(topic, len, TOPIC_ROOM, c->name, t->st.me);
	else topic__build(topic, len, TOPIC_INBOX, c->name, t->st.me);
}

static int grow_outs(struct tui *t)
{
	int cap;
	struct tui_out *n;

	if(t->nouts < t->capouts) return 0;
	cap = t->capouts ? t->capouts * 2 : 16;
	n = realloc(t->outs, (size_t)cap * sizeof(*n));
	if(n == NULL) return -1;
	t->outs = n;
	t->capouts = cap;
	return 0;
}

void tui__send_text(struct tui *t, const char *body, const struct tmsg *reply)
{
	char id[MSGID_LEN + 1], why[200];
	struct tconv *c = t->open;
	struct tui_out *o;
	char *payload;
	size_t len;

	if(c == NULL){
		tui__info(t, "no conversation open: /open NAME or /open #ROOM first");
		return;
	}
	if(cmd_send__envelope(body, strlen(body), reply ? reply->id : NULL,
				reply ? reply->from : NULL, id, &payload, why, sizeof(why)) != EXIT_OK){
		tui__info(t, "not sent: %s", why);
		return;
	}
	len = strlen(payload);
	if(grow_outs(t) != 0){
		free(payload);
		return;
	}
	o = &t->outs[t->nouts];
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->ckind = c->kind;
	snprintf(o->cname, sizeof(o->cname), "%s", c->name);
	conv_topic(t, c, o->topic, sizeof(o->topic));
	o->payload = payload;
	tui_store__outgoing(&t->st, c, id, body, reply ? reply->id : NULL,
			reply ? reply->from : NULL, tui__now(t));
	if(session__publish(&t->s, o->topic, payload, len, true, &o->mid) != EXIT_OK){
		tui_store__acked(&t->st, c, id, "cannot publish");
		free(payload);
		return;
	}
	t->nouts++;
	typing_stop(t);
	t->scroll = 0;
	t->sel = -1;
	t->dirty = true;
}

void tui__react(struct tui *t, const struct tmsg *m, const char *emoji, bool remove)
{
	char id[MSGID_LEN + 1], topic[TOPIC_MAX_LEN + 1];
	json_t *env;

	if(t->open == NULL) return;
	util__msgid(id);
	env = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "type", "reaction", "ref", m->id,
			"of", m->from, "emoji", emoji);
	if(env == NULL) return;
	if(remove) json_object_set_new(env, "remove", json_true());
	conv_topic(t, t->open, topic, sizeof(topic));
	publish_untracked(t, topic, env);
	json_decref(env);
}

/* The PUBACKs of my texts: sent, refused (in words), or sent again later
 * (rate_limited, unavailable: after retry_ms, with the same id). */
static void collect_acks(struct tui *t)
{
	int i = 0, k;

	while(i < t->nouts){
		struct tui_out *o = &t->outs[i];
		struct tconv *c = tui_store__conv(&t->st, o->ckind, o->cname, false);
		bool done = false;
		int reason = 0;

		if(o->resend_at){
			if(t->s.connected && time__mono_ms() >= o->resend_at){
				o->resend_at = 0;
				if(session__publish(&t->s, o->topic, o->payload, strlen(o->payload), true,
							&o->mid) != EXIT_OK){
					o->resend_at = time__mono_ms() + 1000;
				}
			}
			i++;
			continue;
		}
		for(k=0; k<t->s.npubs; k++){
			if(t->s.pubs[k].mid == o->mid && t->s.pubs[k].done){
				done = true;
				reason = t->s.pubs[k].reason;
				t->s.pubs[k] = t->s.pubs[--t->s.npubs];
				break;
			}
		}
		if(!done){
			i++;
			continue;
		}
		t->dirty = true;
		if(reason >= 0x80){
			struct notice n;
			char why[256];
			bool have = notice__take(&t->s.notices, o->id, &n)
				|| session__notice(&t->s, o->id, &n);
			/* Too fast, or the node cannot take messages now: nothing was
			 * taken, so the same envelope again, later. */
			if(have && (!strcmp(n.code, "rate_limited") || !strcmp(n.code, "unavailable"))){
				o->resend_at = time__mono_ms() + (n.retry_ms > 100 ? n.retry_ms : 100);
				i++;
				continue;
			}
			notice__explain(have ? &n : NULL, reason, why, sizeof(why));
			if(c) tui_store__acked(&t->st, c, o->id, why);
		}else if(c){
			tui_store__acked(&t->st, c, o->id, NULL);
		}
		free(o->payload);
		t->outs[i] = t->outs[--t->nouts];
	}
}

/* ---- reading ---- */

/* "delivered" for the newest text from someone else in c that came by
 * the list or a sync (step 10 of "Writing an app": it says "got up to
 * here"), once per message; the open conversation is read instead. */
static void deliver_newest(struct tui *t, struct tconv *c)
{
	char key[NAME_MAX_LEN + MSGID_MAX_LEN + 2];
	struct tmsg *m = NULL;
	int i;

	if(c == NULL || c == t->open || c->unread <= 0) return;
	for(i=c->nmsgs - 1; i>=0 && m == NULL; i--){
		if(!c->msgs[i]->is_event) m = c->msgs[i];
	}
	if(m == NULL || m->receipt_sent || !strcmp(m->from, t->st.me)
			|| (m->seq > 0 && m->seq <= c->read_seq)){
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", m->from, m->id);
	for(i=0; i<TUI_DELIVERED; i++){
		if(!strcmp(t->delivered[i], key)) return;
	}
	snprintf(t->delivered[t->ndelivered % TUI_DELIVERED], sizeof(t->delivered[0]), "%s", key);
	t->ndelivered++;
	send_receipt(t, m, "delivered");
}

/* The open conversation is on screen up to its newest message: move my
 * read marker there (once per look) and tell the senders. */
static void mark_read(struct tui *t)
{
	struct tconv *c = t->open;
	struct tmsg *n = NULL, *m;
	char done[8][NAME_MAX_LEN + 1];
	int i, ndone = 0, seen = 0;
	json_t *req;

	if(c == NULL || t->scroll > 0 || !t->s.connected || c->nmsgs == 0) return;
	n = c->msgs[c->nmsgs - 1];
	if(n->receipt_sent && c->unread == 0) return;
	if(strcmp(n->from, t->st.me) != 0 && (n->seq == 0 || n->seq > c->read_seq || c->unread > 0)){
		req = tui__conv_req("read", c);
		if(req && n->seq > 0){
			json_object_set_new(req, "seq", json_integer(n->seq));
		}else if(req){
			json_object_set_new(req, "ref", json_string(n->id));
			json_object_set_new(req, "of", json_string(n->from));
		}
		struct tui_rpc *r = conv_rpc(t, req, TRPC_READ, c);
		if(r) r->silent = true;
	}
	c->unread = 0;
	/* One read receipt per sender, for their newest message: it says
	 * "read up to here" (apps show the ones before it read too). */
	for(i=c->nmsgs - 1; i>=0 && seen < 200; i--, seen++){
		int k;
		bool have = false;
		m = c->msgs[i];
		if(m->receipt_sent) break;
		m->receipt_sent = true;
		if(m->is_event || m->deleted || !strcmp(m->from, t->st.me)) continue;
		if(m->seq > 0 && m->seq <= c->read_seq) continue;
		for(k=0; k<ndone; k++) have = have || !strcmp(done[k], m->from);
		if(have || ndone == 8) continue;
		snprintf(done[ndone++], sizeof(done[0]), "%s", m->from);
		send_receipt(t, m, "read");
	}
	t->dirty = true;
}

/* ---- rooms ---- */

void tui__room_subscribe(struct tui *t, const char *room)
{
	char a[TOPIC_MAX_LEN + 1], b[TOPIC_MAX_LEN + 1];
	const char *one[1];
	char **n;
	int i;

	for(i=0; i<t->nsubscribed; i++){
		if(!strcmp(t->subscribed_rooms[i], room)) return;
	}
	if(!t->s.connected) return;
	topic__build(a, sizeof(a), TOPIC_ROOM, room, "#");
	topic__build(b, sizeof(b), TOPIC_ROOMTYPING, room, "+");
	one[0] = a;
	if(session__subscribe(&t->s, one, 1, 1, true) != EXIT_OK) return;
	one[0] = b;
	session__subscribe(&t->s, one, 1, 0, true);
	n = realloc(t->subscribed_rooms, (size_t)(t->nsubscribed + 1) * sizeof(*n));
	if(n == NULL) return;
	t->subscribed_rooms = n;
	if((n[t->nsubscribed] = strdup(room))) t->nsubscribed++;
}

static void room_unsubscribe(struct tui *t, const char *room)
{
	char a[TOPIC_MAX_LEN + 1];
	int i, k;

	for(i=0; i<t->nsubscribed; i++){
		if(strcmp(t->subscribed_rooms[i], room)) continue;
		free(t->subscribed_rooms[i]);
		t->subscribed_rooms[i] = t->subscribed_rooms[--t->nsubscribed];
		/* The session's remembered filters go too. */
		for(k=0; k<t->s.nsubs; k++){
			topic__build(a, sizeof(a), TOPIC_ROOM, room, "#");
			if(!strcmp(t->s.subs[k].topic, a)){
				free(t->s.subs[k].topic);
				t->s.subs[k] = t->s.subs[--t->s.nsubs];
				break;
			}
		}
		return;
	}
}

static void set_members(struct tconv *c, json_t *members)
{
	size_t i, n = json_array_size(members);
	json_t *v;
	int k;

	for(k=0; k<c->nmembers; k++) free(c->members ? c->members[k] : NULL);
	free(c->members);
	c->members = calloc(n ? n : 1, sizeof(char *));
	c->nmembers = 0;
	if(c->members == NULL) return;
	json_array_foreach(members, i, v){
		const char *name = json_string_value(v);
		if(name == NULL) name = json_string_value(json_object_get(v, "user"));
		if(name && (c->members[c->nmembers] = strdup(name))) c->nmembers++;
	}
}

static void set_title(struct tconv *c, const char *title)
{
	char *n;

	if(title == NULL) return;
	n = strdup(title);
	if(n == NULL) return;
	free(c->title);
	c->title = n;
}

/* The rooms answer is the truth about which rooms I am in. */
static void got_rooms(struct tui *t, json_t *resp)
{
	json_t *rooms = json_object_get(resp, "rooms"), *r;
	size_t i;
	int k;

	json_array_foreach(rooms, i, r){
		const char *name = json_string_value(json_object_get(r, "room"));
		struct tconv *c;
		if(name == NULL) name = json_string_value(json_object_get(r, "name"));
		if(name == NULL || !names__valid_str(name)) continue;
		c = tui_store__conv(&t->st, TCONV_ROOM, name, true);
		if(c == NULL) continue;
		set_title(c, json_string_value(json_object_get(r, "title")));
		set_members(c, json_object_get(r, "members"));
		snprintf(c->role, sizeof(c->role), "%s",
				json_string_value(json_object_get(r, "role")) ?
				json_string_value(json_object_get(r, "role")) : "member");
		tui__room_subscribe(t, name);
	}
	for(k=t->st.nconvs - 1; k>=0; k--){
		struct tconv *c = t->st.convs[k];
		bool in = false;
		if(c->kind != TCONV_ROOM) continue;
		json_array_foreach(rooms, i, r){
			const char *name = json_string_value(json_object_get(r, "room"));
			if(name == NULL) name = json_string_value(json_object_get(r, "name"));
			in = in || (name && !strcmp(name, c->name));
		}
		if(in) continue;
		room_unsubscribe(t, c->name);
		if(t->open == c){
			t->open = NULL;
			tui__info(t, "you are no longer in #%s", c->name);
		}
		tui_store__drop_conv(&t->st, c);
	}
	tui_store__sort(&t->st);
}

/* ---- answers ---- */

static struct tconv *rpc_conv(struct tui *t, const struct tui_rpc *r)
{
	return r->cname[0] ? tui_store__conv(&t->st, r->ckind, r->cname, false) : NULL;
}

static void fmt_when(const struct tui *t, int64_t ms, char *out, size_t len)
{
	struct tm a, b;
	time_t x = (time_t)(ms / 1000), now = (time_t)(tui__now(t) / 1000);

	localtime_r(&x, &a);
	localtime_r(&now, &b);
	if(a.tm_year == b.tm_year && a.tm_yday == b.tm_yday) strftime(out, len, "%H:%M", &a);
	else strftime(out, len, "%a %-d %b %Y %H:%M", &a);
}

static void got_search(struct tui *t, json_t *resp)
{
	json_t *msgs = json_object_get(resp, "messages"), *m;
	size_t i;

	if(json_array_size(msgs) == 0){
		tui__info(t, "search: nothing found%s", json_is_true(json_object_get(resp, "more"))
				? " in the newest messages (the archive is large: narrow it down)" : "");
		return;
	}
	json_array_foreach(msgs, i, m){
		const char *from = json_string_value(json_object_get(m, "from"));
		const char *to = json_string_value(json_object_get(m, "to"));
		const char *room = json_string_value(json_object_get(m, "room"));
		const char *body = json_string_value(json_object_get(m, "body"));
		char when[40], where[NAME_MAX_LEN + 2];
		fmt_when(t, json_integer_value(json_object_get(m, "server_ts")), when, sizeof(when));
		if(room) snprintf(where, sizeof(where), "#%s", room);
		else snprintf(where, sizeof(where), "%s", from && to && !strcmp(from, t->st.me) ? to
				: from ? from : "?");
		tui__info(t, "%s %s <%s> %s", when, where, from ? tui_store__nick(&t->st, from) : "?",
				body ? body : "");
	}
	tui__info(t, "search: %zu found%s; /open a conversation to read on", json_array_size(msgs),
			json_is_true(json_object_get(resp, "more")) ? " (more: narrow it down)" : "");
}

static void got_devices(struct tui *t, json_t *resp)
{
	json_t *devs = json_object_get(resp, "devices"), *d;
	size_t i;

	tui__info(t, "devices holding a token (log one out: /devices revoke NAME, or --others):");
	json_array_foreach(devs, i, d){
		const char *name = json_string_value(json_object_get(d, "device"));
		int64_t seen = json_integer_value(json_object_get(d, "last_seen"));
		char when[40] = "not since";
		if(seen > 0) fmt_when(t, seen, when, sizeof(when));
		tui__info(t, "  %s%s · last seen %s", name ? name : "?",
				name && (!strcmp(name, t->opt->device)) ? " (this one)" : "", when);
	}
	if(json_array_size(devs) == 0) tui__info(t, "  none");
}

static void got_room_info(struct tui *t, json_t *resp)
{
	const char *room = json_string_value(json_object_get(resp, "room"));
	const char *title = json_string_value(json_object_get(resp, "title"));
	const char *desc = json_string_value(json_object_get(resp, "description"));
	json_t *members = json_object_get(resp, "members"), *m;
	struct tconv *c = room ? tui_store__conv(&t->st, TCONV_ROOM, room, false) : NULL;
	size_t i;

	tui__info(t, "#%s%s%s%s%s", room ? room : "?", title && *title ? " · " : "",
			title ? title : "", desc && *desc ? " · " : "", desc ? desc : "");
	if(c) set_members(c, members);
	json_array_foreach(members, i, m){
		const char *u = json_string_value(json_object_get(m, "user"));
		const char *role = json_string_value(json_object_get(m, "role"));
		const struct tpresence *p = u ? tui_store__presence_of(&t->st, u) : NULL;
		tui__info(t, "  %s%s%s%s", u ? u : "?", role && strcmp(role, "member") ? " (" : "",
				role && strcmp(role, "member") ? role : "",
				role && strcmp(role, "member") ? ")" : "");
		(void)p;
	}
}

static void rpc_failed(struct tui *t, const struct tui_rpc *r, json_t *resp)
{
	const char *msg = json_string_value(json_object_get(resp, "message"));
	const char *code = json_string_value(json_object_get(resp, "error"));

	if(r->silent) return;
	tui__info(t, "cannot %s: %s%s%s%s", r->doing[0] ? r->doing : "do that",
			msg ? msg : "refused", code ? " (" : "", code ? code : "", code ? ")" : "");
}

static void on_answer(struct tui *t, struct tui_rpc *r, json_t *resp)
{
	json_t *msgs = json_object_get(resp, "messages"), *m;
	struct tconv *c = rpc_conv(t, r);
	size_t i;

	if(!json_is_true(json_object_get(resp, "ok"))){
		if(r->kind == TRPC_HISTORY) t->history_asked = false;
		rpc_failed(t, r, resp);
		return;
	}
	t->dirty = true;
	switch(r->kind){
		case TRPC_HELLO:
			t->edit_window_s = (int)json_integer_value(json_object_get(resp, "edit_window_s"));
			break;
		case TRPC_CONVERSATIONS:
			json_array_foreach(json_object_get(resp, "conversations"), i, m){
				struct tconv *e = tui_store__conv_entry(&t->st, m);
				if(e && e->kind == TCONV_ROOM) tui__room_subscribe(t, e->name);
				if(i < 20) deliver_newest(t, e);
			}
			tui_store__sort(&t->st);
			break;
		case TRPC_ROOMS:
			got_rooms(t, resp);
			break;
		case TRPC_BLOCKED:
			tui_store__set_blocked(&t->st, json_object_get(resp, "users"));
			break;
		case TRPC_PROFILE:
			tui_store__set_nick(&t->st, t->st.me,
					json_string_value(json_object_get(resp, "nick")));
			break;
		case TRPC_HISTORY:
			t->history_asked = false;
			if(c == NULL) break;
			json_array_foreach(msgs, i, m) tui_store__archived(&t->st, m);
			c->history_loaded = true;
			c->more_before = json_is_true(json_object_get(resp, "more"));
			break;
		case TRPC_SYNC: {
			struct tconv *got[20];
			int ngot = 0, k;
			json_array_foreach(msgs, i, m){
				struct tmsg *x = tui_store__archived(&t->st, m);
				const char *with = json_string_value(json_object_get(m, "to"));
				const char *from = json_string_value(json_object_get(m, "from"));
				const char *room = json_string_value(json_object_get(m, "room"));
				struct tconv *xc;
				bool have = false;
				if(x == NULL || from == NULL || !strcmp(from, t->st.me)) continue;
				xc = room ? tui_store__conv(&t->st, TCONV_ROOM, room, false)
					: with ? tui_store__conv(&t->st, TCONV_DIRECT, from, false) : NULL;
				for(k=0; k<ngot; k++) have = have || got[k] == xc;
				if(xc && !have && ngot < 20) got[ngot++] = xc;
			}
			for(k=0; k<ngot; k++) deliver_newest(t, got[k]);
			if(json_is_true(json_object_get(resp, "more")) && ++t->sync_pages < SYNC_PAGES_MAX){
				ask_sync(t);
			}
			tui_store__sort(&t->st);
			break;
		}
		case TRPC_READ:
			if(c){
				c->unread = (int)json_integer_value(json_object_get(resp, "unread"));
				if(json_integer_value(json_object_get(resp, "read_seq")) > c->read_seq){
					c->read_seq = json_integer_value(json_object_get(resp, "read_seq"));
				}
			}
			break;
		case TRPC_SEARCH:
			got_search(t, resp);
			break;
		case TRPC_DEVICES:
			got_devices(t, resp);
			break;
		case TRPC_ROOM_INFO:
			got_room_info(t, resp);
			break;
		case TRPC_WHOIS: {
			const char *u = json_string_value(json_object_get(resp, "user"));
			const char *nick = json_string_value(json_object_get(resp, "nick"));
			const char *kind = json_string_value(json_object_get(resp, "kind"));
			if(u) tui_store__set_nick(&t->st, u, nick);
			if(r->silent) break;
			tui__info(t, "%s%s%s%s · %s", u ? u : "?", nick ? " (" : "", nick ? nick : "",
					nick ? ")" : "", kind ? kind : "user");
			break;
		}
		case TRPC_MUTES:
			json_decref(t->mutes);
			t->mutes = json_incref(json_object_get(resp, "mutes"));
			break;
		case TRPC_PLAIN:
			if(r->done[0]) tui__info(t, "%s", r->done);
			if(!strncmp(r->doing, "mute", 4) || !strncmp(r->doing, "unmute", 6)) tui__ask_mutes(t);
			/* What a command changed shows in the lists at once. */
			if(!strncmp(r->done, "blocked", 7) || !strncmp(r->done, "unblocked", 9)){
				struct tui_rpc *b = tui__rpc(t, json_pack("{s:s}", "op", "blocked"), TRPC_BLOCKED);
				if(b) b->silent = true;
			}
			if(!strncmp(r->doing, "create", 6) || !strncmp(r->doing, "leave", 5)
					|| !strncmp(r->doing, "delete #", 8) || !strncmp(r->doing, "set the title", 13)
					|| !strncmp(r->doing, "add ", 4) || !strncmp(r->doing, "remove ", 7)){
				struct tui_rpc *b = tui__rpc(t, json_pack("{s:s}", "op", "rooms"), TRPC_ROOMS);
				if(b) b->silent = true;
			}
			if(!strncmp(r->done, "nick", 4)){
				struct tui_rpc *b = tui__rpc(t, json_pack("{s:s}", "op", "profile"), TRPC_PROFILE);
				if(b) b->silent = true;
			}
			break;
	}
}

/* Answers are handled outside libmosquitto's callback: a handler may wait
 * for a SUBACK (a room's topics), which reads from the socket again. */
static void on_rpc(struct session *s, json_t *answer, void *ud)
{
	struct tui *t = ud;

	(void)s;
	json_array_append(t->answers, answer);
}

static void answer(struct tui *t, json_t *answer)
{
	const char *id = json_string_value(json_object_get(answer, "id"));
	int i;

	if(id == NULL) return;
	for(i=0; i<t->nrpcs; i++){
		if(strcmp(t->rpcs[i].id, id)) continue;
		struct tui_rpc r = t->rpcs[i];
		/* Free the slot first: the handler may send requests. */
		t->rpcs[i] = t->rpcs[--t->nrpcs];
		on_answer(t, &r, answer);
		return;
	}
}

static void expire_rpcs(struct tui *t)
{
	int64_t now = time__mono_ms();
	int i = 0;

	while(i < t->nrpcs){
		struct tui_rpc r = t->rpcs[i];
		if(now < r.deadline){
			i++;
			continue;
		}
		t->rpcs[i] = t->rpcs[--t->nrpcs];
		if(r.kind == TRPC_HISTORY) t->history_asked = false;
		if(!r.silent){
			tui__info(t, "no answer from the archiver%s%s (is it running?)",
					r.doing[0] ? " to " : "", r.doing);
		}
	}
}

/* ---- what arrives ---- */

static void on_live(struct tui *t, const char *topic, const struct topic_parts *tp,
		const void *payload, size_t len)
{
	json_t *env = json_loadb(payload, len, 0, NULL);
	struct tconv *c = NULL;
	struct tmsg *m = NULL;
	enum tui_store_live what;
	json_t *ts;

	if(!json_is_object(env)){
		json_decref(env);
		return;
	}
	/* The archiver's envelopes carry its clock: the server's. */
	ts = json_object_get(env, "ts");
	if(tp->b.n == 8 && !memcmp(tp->b.p, "archiver", 8) && json_is_integer(ts)){
		t->st.clock_offset = json_integer_value(ts) - time__now_ms();
	}
	what = tui_store__live(&t->st, topic, env, tui__now(t), &c, &m);
	json_decref(env);
	if(what == TSL_IGNORED) return;
	t->dirty = true;
	if(what != TSL_NEW || m == NULL || c == NULL) return;
	if(m->is_event){
		/* Someone changed the room: its members and title, or me out of it. */
		if(!strcmp(m->ev_user, t->st.me) || !strcmp(m->event, "changed")
				|| !strcmp(m->event, "added") || !strcmp(m->event, "removed")
				|| !strcmp(m->event, "left") || !strcmp(m->event, "joined")
				|| !strcmp(m->event, "deleted")){
			struct tui_rpc *r = tui__rpc(t, json_pack("{s:s}", "op", "rooms"), TRPC_ROOMS);
			if(r) r->silent = true;
		}
		return;
	}
	if(!strcmp(m->from, t->st.me)) return;
	tui_store__typing(c, m->from, false, time__mono_ms());
	if(c != t->open || t->scroll > 0){
		send_receipt(t, m, "delivered");
	}
}

static void on_message(struct session *s, const char *topic, const void *payload, size_t len,
		void *ud)
{
	struct tui *t = ud;
	struct topic_parts tp;
	char a[NAME_MAX_LEN + 1], b[NAME_MAX_LEN + 1];
	struct tconv *c;
	json_t *j;

	(void)s;
	if(!topic__parse(topic, &tp) || tp.a.n > NAME_MAX_LEN || tp.b.n > NAME_MAX_LEN) return;
	memcpy(a, tp.a.p, tp.a.n);
	a[tp.a.n] = '\0';
	memcpy(b, tp.b.p, tp.b.n);
	b[tp.b.n] = '\0';
	switch(tp.kind){
		case TOPIC_INBOX:
		case TOPIC_ROOM:
			on_live(t, topic, &tp, payload, len);
			break;
		case TOPIC_PRESENCE:
			tui_store__presence(&t->st, a, payload, len);
			t->dirty = true;
			break;
		case TOPIC_TYPING:
		case TOPIC_ROOMTYPING:
			if(!strcmp(b, t->st.me)) break;
			c = tui_store__conv(&t->st, tp.kind == TOPIC_TYPING ? TCONV_DIRECT : TCONV_ROOM,
					tp.kind == TOPIC_TYPING ? b : a, false);
			j = json_loadb(payload, len, 0, NULL);
			if(c && json_is_boolean(json_object_get(j, "typing"))
					&& !tui_store__is_blocked(&t->st, b)){
				tui_store__typing(c, b, json_is_true(json_object_get(j, "typing")),
						time__mono_ms());
				t->dirty = true;
			}
			json_decref(j);
			break;
		default:
			break;
	}
}

/* ---- opening ---- */

void tui__open(struct tui *t, struct tconv *c)
{
	if(c != t->open) typing_stop(t);
	if(c != t->open) clear_info(t);
	t->open = c;
	t->scroll = 0;
	t->sel = -1;
	t->history_asked = false;
	t->dirty = true;
	if(c && !c->history_loaded) ask_history(t, c, 0);
	/* The person's nick, shown in place of the name (if they show it to me). */
	if(c && c->kind == TCONV_DIRECT && strcmp(c->name, t->st.me) != 0){
		struct tui_rpc *r = tui__rpc(t, json_pack("{s:s, s:s}", "op", "whois", "user", c->name),
				TRPC_WHOIS);
		if(r) r->silent = true;
	}
}

/* Older history when the view is scrolled to the top of what is held. */
static void maybe_older(struct tui *t)
{
	struct tconv *c = t->open;
	int i;

	if(c == NULL || !t->at_top || !c->more_before || t->history_asked) return;
	for(i=0; i<c->nmsgs; i++){
		if(c->msgs[i]->seq > 0){
			ask_history(t, c, c->msgs[i]->seq);
			return;
		}
	}
}

/* ---- keys ---- */

static void switch_conv(struct tui *t, int step)
{
	int i, at = -1;

	if(t->st.nconvs == 0) return;
	for(i=0; i<t->st.nconvs; i++){
		if(t->st.convs[i] == t->open) at = i;
	}
	at = at < 0 ? 0 : (at + step + t->st.nconvs) % t->st.nconvs;
	tui__open(t, t->st.convs[at]);
}

static void select_msg(struct tui *t, int step)
{
	struct tconv *c = t->open;

	if(c == NULL || c->nmsgs == 0) return;
	if(t->sel < 0) t->sel = step < 0 ? c->nmsgs - 1 : -1;
	else t->sel += step;
	if(t->sel >= c->nmsgs) t->sel = -1;
	if(t->sel < -1) t->sel = 0;
	if(t->sel == -1 && step < 0) t->sel = 0;
	t->dirty = true;
}

static void enter(struct tui *t)
{
	char *text = tui_line__take(&t->line);

	if(text == NULL) return;
	if(text[0] == '/' && text[1] != '/'){
		tui_cmd__run(t, text);
	}else if(text[0] != '\0'){
		/* "//x" sends "/x". */
		const char *body = text[0] == '/' ? text + 1 : text;
		size_t n = strlen(body);
		while(n > 0 && body[n - 1] == ' ') n--;
		if(n > 0) tui__send_text(t, body, NULL);
	}
	free(text);
	t->dirty = true;
}

static void key_code(struct tui *t, wint_t ch)
{
	switch(ch){
		case KEY_RESIZE: break;
		case KEY_LEFT: tui_line__left(&t->line); break;
		case KEY_RIGHT: tui_line__right(&t->line); break;
		case KEY_HOME: tui_line__home(&t->line); break;
		case KEY_END: tui_line__end(&t->line); break;
		case KEY_UP: tui_line__hist_prev(&t->line); break;
		case KEY_DOWN: tui_line__hist_next(&t->line); break;
		case KEY_BACKSPACE: tui_line__backspace(&t->line); typing_key(t); break;
		case KEY_DC: tui_line__delete(&t->line); typing_key(t); break;
		case KEY_ENTER: enter(t); break;
		case KEY_PPAGE: t->scroll += tui_view__page(t) - 1; break;
		case KEY_NPAGE:
			t->scroll -= tui_view__page(t) - 1;
			if(t->scroll < 0) t->scroll = 0;
			break;
		case KEY_SEL_UP: select_msg(t, -1); break;
		case KEY_SEL_DOWN: select_msg(t, 1); break;
		case KEY_WORD_LEFT: tui_line__word_left(&t->line); break;
		case KEY_WORD_RIGHT: tui_line__word_right(&t->line); break;
		case KEY_F(1): tui_cmd__run(t, "/help"); break;
		default: break;
	}
}

/* Alt+key: curses gives Escape, then the key. */
static void key_alt(struct tui *t, wint_t ch)
{
	switch(ch){
		case 'b': tui_line__word_left(&t->line); break;
		case 'f': tui_line__word_right(&t->line); break;
		case 127: case 8: tui_line__kill_word(&t->line); typing_key(t); break;
		default: break;
	}
}

static void key_char(struct tui *t, wint_t ch)
{
	switch(ch){
		case '\r': case '\n': enter(t); return;
		case '\t': tui_cmd__complete(t); return;
		case 1: tui_line__home(&t->line); return;             /* Ctrl-A */
		case 2: tui_line__left(&t->line); return;             /* Ctrl-B */
		case 4:                                               /* Ctrl-D */
			if(t->line.len == 0) t->quit = true;
			else tui_line__delete(&t->line);
			return;
		case 5: tui_line__end(&t->line); return;              /* Ctrl-E */
		case 6: tui_line__right(&t->line); return;            /* Ctrl-F */
		case 11: tui_line__kill_end(&t->line); break;         /* Ctrl-K */
		case 12: clearok(curscr, TRUE); return;               /* Ctrl-L */
		case 14: switch_conv(t, 1); return;                   /* Ctrl-N */
		case 16: switch_conv(t, -1); return;                  /* Ctrl-P */
		case 21: tui_line__kill_start(&t->line); break;       /* Ctrl-U */
		case 23: tui_line__kill_word(&t->line); break;        /* Ctrl-W */
		case 127: case 8: tui_line__backspace(&t->line); break;
		default:
			if(ch < 32) return;
			if(!tui_line__insert_cp(&t->line, (unsigned)ch)){
				snprintf(t->notice, sizeof(t->notice), "the line is full");
			}
			break;
	}
	typing_key(t);
}

static void read_keys(struct tui *t)
{
	wint_t ch;
	int r;

	while((r = get_wch(&ch)) != ERR){
		t->dirty = true;
		t->notice[0] = '\0';
		if(r == KEY_CODE_YES){
			key_code(t, ch);
		}else if(ch == 27){
			wint_t next;
			int r2 = get_wch(&next);
			if(r2 == ERR){
				t->sel = -1;        /* Escape alone: unselect */
			}else if(r2 == OK){
				key_alt(t, next);
			}else{
				key_code(t, next);
			}
		}else{
			key_char(t, ch);
		}
		if(t->quit) return;
	}
}

/* ---- the loop ---- */

static void tick(struct tui *t)
{
	int64_t now = time__mono_ms();
	/* A CONNACK without my session, or a resync notice: messages on
	 * their way to me may be lost (docs/PROTOCOL.md, "Several nodes"). */
	bool lost = t->s.connected && t->s.resyncs != t->resyncs;

	if(lost) t->resyncs = t->s.resyncs;
	if(t->s.connected != t->was_connected){
		t->dirty = true;
		if(t->s.connected){
			/* Back: what was missed, and the lists as they are now. */
			ask_all(t, true, lost);
		}
		t->was_connected = t->s.connected;
	}else if(lost){
		catch_up(t);
	}
	while(json_array_size(t->answers) > 0){
		json_t *a = json_incref(json_array_get(t->answers, 0));
		json_array_remove(t->answers, 0);
		answer(t, a);
		json_decref(a);
	}
	collect_acks(t);
	expire_rpcs(t);
	if(t->typing_on && now - t->typing_key_ms >= TYPING_IDLE_MS) typing_stop(t);
	if(tui_store__typing_expire(&t->st, now)) t->dirty = true;
	if(t->s.connected && now >= t->next_rooms_ms){
		struct tui_rpc *r = tui__rpc(t, json_pack("{s:s}", "op", "rooms"), TRPC_ROOMS);
		if(r) r->silent = true;
		t->next_rooms_ms = now + ROOMS_EVERY_MS;
	}
	if(now >= t->next_clock_ms){
		/* The clock, "retry in N s" and "last seen" move. */
		t->dirty = true;
		t->next_clock_ms = now + 1000;
	}
}

static void define_keys(void)
{
	static const struct { const char *seq; int code; } keys[] = {
		{"\033[1;3A", KEY_SEL_UP}, {"\033[1;5A", KEY_SEL_UP}, {"\033\033[A", KEY_SEL_UP},
		{"\033[1;3B", KEY_SEL_DOWN}, {"\033[1;5B", KEY_SEL_DOWN}, {"\033\033[B", KEY_SEL_DOWN},
		{"\033[1;5D", KEY_WORD_LEFT}, {"\033[1;3D", KEY_WORD_LEFT},
		{"\033[1;5C", KEY_WORD_RIGHT}, {"\033[1;3C", KEY_WORD_RIGHT},
	};
	size_t i;

	for(i=0; i<sizeof(keys)/sizeof(keys[0]); i++) define_key(keys[i].seq, keys[i].code);
}

/* ---- the outbox: texts not acknowledged when the app closed ---- */

/* <state dir>/<user>@<device>.outbox: a JSON array of {"topic","payload"},
 * written at exit and sent again (the same ids) at the next start. */
static int outbox_path(const struct tui *t, char *path, size_t len, bool create)
{
	return options__state_path(t->opt, ".outbox", path, len, create);
}

static int save_outbox(struct tui *t)
{
	char path[4200], tmp[4300];
	json_t *arr = json_array();
	int i, rc = -1;

	if(arr == NULL || outbox_path(t, path, sizeof(path), true) != 0){
		json_decref(arr);
		return -1;
	}
	for(i=0; i<t->nouts; i++){
		json_array_append_new(arr, json_pack("{s:s, s:s}", "topic", t->outs[i].topic,
					"payload", t->outs[i].payload));
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	{
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if(fd >= 0){
			if(json_dumpfd(arr, fd, JSON_COMPACT) == 0 && fsync(fd) == 0) rc = 0;
			if(close(fd) != 0) rc = -1;
			if(rc == 0 && rename(tmp, path) != 0) rc = -1;
		}
	}
	json_decref(arr);
	return rc;
}

/* Publish again what the last run could not, each shown as waiting in its
 * conversation; the same ids, so whoever has one already keeps one. */
static void load_outbox(struct tui *t)
{
	char path[4200];
	json_t *arr, *e;
	size_t i;
	int n = 0;

	if(outbox_path(t, path, sizeof(path), false) != 0) return;
	arr = json_load_file(path, 0, NULL);
	json_array_foreach(arr, i, e){
		const char *topic = json_string_value(json_object_get(e, "topic"));
		const char *payload = json_string_value(json_object_get(e, "payload"));
		json_t *env = payload ? json_loads(payload, 0, NULL) : NULL;
		const char *id = json_string_value(json_object_get(env, "id"));
		const char *body = json_string_value(json_object_get(env, "body"));
		struct topic_parts tp;
		char name[NAME_MAX_LEN + 1];
		struct tconv *c;
		struct tui_out *o;
		if(topic && id && body && strlen(id) == MSGID_LEN && topic__parse(topic, &tp)
				&& (tp.kind == TOPIC_INBOX || tp.kind == TOPIC_ROOM) && tp.a.n <= NAME_MAX_LEN
				&& tp.b.n == strlen(t->st.me) && !memcmp(tp.b.p, t->st.me, tp.b.n)
				&& strlen(topic) <= TOPIC_MAX_LEN && t->nouts < 1000){
			memcpy(name, tp.a.p, tp.a.n);
			name[tp.a.n] = '\0';
			c = tui_store__conv(&t->st, tp.kind == TOPIC_ROOM ? TCONV_ROOM : TCONV_DIRECT, name, true);
			if(c && grow_outs(t) == 0){
				o = &t->outs[t->nouts];
				memset(o, 0, sizeof(*o));
				snprintf(o->id, sizeof(o->id), "%s", id);
				o->ckind = c->kind;
				snprintf(o->cname, sizeof(o->cname), "%s", c->name);
				snprintf(o->topic, sizeof(o->topic), "%s", topic);
				o->payload = strdup(payload);
				tui_store__outgoing(&t->st, c, id, body,
						json_string_value(json_object_get(env, "reply_to")),
						json_string_value(json_object_get(env, "reply_from")), tui__now(t));
				if(o->payload && session__publish(&t->s, o->topic, o->payload,
							strlen(o->payload), true, &o->mid) == EXIT_OK){
					t->nouts++;
					n++;
				}else{
					free(o->payload);
				}
			}
		}
		json_decref(env);
	}
	json_decref(arr);
	unlink(path);
	if(n > 0) tui__info(t, "sending %d message%s kept from the last run", n, n == 1 ? "" : "s");
}

static int setup(struct tui *t, const char *conv)
{
	const char *with = NULL, *room = NULL;
	const char *presence[1] = {"chat/presence/+"};
	char why[256];
	int rc;

	if(conv && (rc = login__conv_operand(conv, &with, &room))) return rc;
	/* Before connecting: what the subscriptions bring goes in at once. */
	tui_store__init(&t->st, t->opt->user);
	tui_line__init(&t->line);
	if((rc = session__init(&t->s, t->opt, SESSION_PERSISTENT))) return rc;
	t->s.on_message = on_message;
	t->s.on_rpc = on_rpc;
	t->s.ud = t;
	t->s.pause_on_takeover = true;
	if((rc = session__connect(&t->s))) return rc;
	if((rc = cmd_listen__inbox(&t->s))) return rc;
	if((rc = cmd_listen__typing(&t->s, NULL, false))) return rc;
	if((rc = session__subscribe(&t->s, presence, 1, 1, true))) return rc;
	if((rc = session__rpc_subscribe(&t->s))) return rc;
	if(with && strcmp(with, t->opt->user) != 0
			&& cmd_chat__probe(&t->s, with, NULL, why, sizeof(why)) != EXIT_OK){
		util__error("%s", why);
		return EXIT_FAILED;
	}
	if(room && cmd_chat__probe(&t->s, NULL, room, why, sizeof(why)) != EXIT_OK){
		util__error("%s", why);
		return EXIT_FAILED;
	}
	t->was_connected = true;
	t->resyncs = t->s.resyncs;
	t->sel = -1;
	ask_all(t, false, false);
	if(with || room){
		struct tconv *c = tui_store__conv(&t->st, room ? TCONV_ROOM : TCONV_DIRECT,
				room ? room : with, true);
		if(c) tui__open(t, c);
	}
	load_outbox(t);
	return EXIT_OK;
}

int tui__run(struct options *opt, const char *conv)
{
	struct tui *t;
	struct sigaction sa;
	int rc, saved_err = -1, devnull, i, unsent;

	if((rc = options__need_user(opt))) return rc;
	if(!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)){
		util__error("the chat app needs a terminal; scripts use send, listen, or chat with "
				"lines on stdin");
		return EXIT_USAGE;
	}
	t = calloc(1, sizeof(*t));
	if(t == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	t->opt = opt;
	t->s.lock_fd = -1;
	/* Names and texts are UTF-8: the terminal's locale says whether it
	 * shows them (wcwidth, curses' wide characters). */
	setlocale(LC_ALL, "");
	t->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	t->answers = json_array();
	rc = t->answers ? setup(t, conv) : EXIT_FAILED;
	if(rc == EXIT_OK){
		/* Nothing may write over the screen: what the session would say on
		 * stderr shows in the top bar instead. */
		fflush(stderr);
		saved_err = dup(STDERR_FILENO);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if(devnull >= 0){
			dup2(devnull, STDERR_FILENO);
			close(devnull);
		}
		tui_view__start(t);
		define_keys();
		while(!t->quit && !session_stop && t->s.fatal == 0){
			/* Keys, and KEY_RESIZE: a SIGWINCH only interrupts the poll,
			 * curses tells of it at the next read. */
			session__step(&t->s, t->dirty ? 0 : 200, STDIN_FILENO);
			read_keys(t);
			tick(t);
			if(t->dirty){
				t->dirty = false;
				tui_view__draw(t);
				maybe_older(t);
				mark_read(t);
			}
		}
		typing_stop(t);
		tui_view__stop(t);
		if(saved_err >= 0){
			dup2(saved_err, STDERR_FILENO);
			close(saved_err);
		}
		if(t->s.fatal){
			util__error("the broker refused to let this device back in (the password changed, "
					"or the device was logged out): run mqchat again to log in");
			rc = t->s.fatal;
		}
	}
	/* The last PUBACKs, then what is still unacknowledged is said. */
	if(t->s.mosq && t->s.connected && t->nouts > 0){
		session__flush(&t->s, time__mono_ms() + 2000);
		collect_acks(t);
	}
	unsent = t->nouts;
	session__cleanup(&t->s);
	if(unsent > 0 && save_outbox(t) == 0){
		fprintf(stderr, "%d message%s not acknowledged by the broker yet: kept, and sent "
				"again when mqchat starts next\n", unsent, unsent == 1 ? "" : "s");
	}else if(unsent > 0){
		fprintf(stderr, "%d message%s not acknowledged by the broker, and they could not "
				"be kept: check the conversation when you come back\n", unsent,
				unsent == 1 ? "" : "s");
	}
	for(i=0; i<t->nouts; i++) free(t->outs[i].payload);
	free(t->outs);
	for(i=0; i<t->nsubscribed; i++) free(t->subscribed_rooms[i]);
	free(t->subscribed_rooms);
	clear_info(t);
	json_decref(t->answers);
	json_decref(t->mutes);
	tui_line__free(&t->line);
	tui_store__free(&t->st);
	free(t);
	return rc;
}
