/* feed.c - incoming chat messages: print and acknowledge (see feed.h). */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "feed.h"
#include "session.h"
#include "timeutil.h"

void feed__init(struct feed *f, struct session *s, const char *me, bool json,
		const char *status)
{
	memset(f, 0, sizeof(*f));
	f->s = s;
	f->me = me;
	f->json = json;
	f->status = status;
}

/* The key of (from, id) in f->seen. */
static void seen_key(struct feed *f, const char *from, const char *id, size_t idlen, char *key)
{
	snprintf(key, sizeof(f->seen[0]), "%s/%.*s", from, (int)idlen, id);
}

static bool seen_has(struct feed *f, const char *key)
{
	int i;

	for(i=0; i<FEED_SEEN; i++){
		if(!strcmp(f->seen[i], key)) return true;
	}
	return false;
}

static void seen_add(struct feed *f, const char *key)
{
	memcpy(f->seen[f->seen_next], key, sizeof(f->seen[0]));
	f->seen_next = (f->seen_next + 1) % FEED_SEEN;
	f->seen_added++;
}

/* True if (from, id) was seen recently: QoS 1 may deliver twice, and a
 * note to self comes on both inbox filters. */
static bool seen_before(struct feed *f, const char *from, const struct envelope_str *id)
{
	char key[sizeof(f->seen[0])];

	seen_key(f, from, id->ptr, id->len, key);
	if(seen_has(f, key)) return true;
	seen_add(f, key);
	return false;
}

void feed__sent(struct feed *f, const char *id)
{
	char key[sizeof(f->seen[0])];

	seen_key(f, f->me, id, strlen(id), key);
	if(!seen_has(f, key)) seen_add(f, key);
}

/* Copy level l (a valid name, checked) into out (NAME_MAX_LEN + 1). */
static bool level_name(const struct topic_level *l, char *out)
{
	if(!names__valid(l->p, l->n)) return false;
	memcpy(out, l->p, l->n);
	out[l->n] = '\0';
	return true;
}

static void send_receipt(struct feed *f, const char *to, const struct envelope_str *ref)
{
	char topic[TOPIC_MAX_LEN + 1], id[MSGID_LEN + 1], payload[256];

	util__msgid(id);
	topic__build(topic, sizeof(topic), TOPIC_INBOX, to, f->me);
	snprintf(payload, sizeof(payload),
			"{\"id\":\"%s\",\"type\":\"receipt\",\"ref\":\"%.*s\",\"status\":\"%s\"}",
			id, (int)ref->len, ref->ptr, f->status);
	/* A lost receipt is no reason to stop reading: untracked. */
	session__publish(f->s, topic, payload, strlen(payload), false, NULL);
}

static void print_json(json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if(line){
		fputs(line, stdout);
		fputc('\n', stdout);
		free(line);
	}
	json_decref(o);
}

/* The plain string s of a parsed envelope (a name or an id: no escapes,
 * checked by the parser) into out (len bytes), or NULL if absent. */
static const char *env_plain(const struct envelope_str *s, char *out, size_t len)
{
	if(s->ptr == NULL || envelope__unescape(s, out, len) < 0) return NULL;
	return out;
}

/* Where a live message belongs, for its line and its JSON object. */
struct where {
	const char *room;       /* a room's message: its name; else NULL */
	const char *from;       /* who published it */
	const char *to;         /* a direct message: its recipient (me, or the peer of
	                         * my own copy); else NULL */
	bool mine;              /* my own, from a device of mine */
};

/* "[12:00:01] " and "#room " if in a room. */
static void print_prefix(const struct where *w, const struct envelope *env)
{
	char when[32];

	util__fmt_time(env->has_ts ? env->ts : time__now_ms(), false, when, sizeof(when));
	printf("[%s] ", when);
	if(w->room) printf("#%s ", w->room);
}

/* A new JSON object with type, from, room or to, and id of env. */
static json_t *json_head(const char *type, const struct where *w, const struct envelope *env)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "from", json_string(w->from));
	if(w->room) json_object_set_new(o, "room", json_string(w->room));
	else if(w->to) json_object_set_new(o, "to", json_string(w->to));
	json_object_set_new(o, "id", json_stringn(env->id.ptr, env->id.len));
	return o;
}

static void print_text(struct feed *f, const struct where *w, const struct envelope *env,
		const char *body, size_t blen)
{
	char rto[MSGID_MAX_LEN + 1], rfrom[NAME_MAX_LEN + 1];
	const char *reply_to = env_plain(&env->reply_to, rto, sizeof(rto));
	const char *reply_from = env_plain(&env->reply_from, rfrom, sizeof(rfrom));

	if(f->json){
		json_t *o = json_head("text", w, env);
		json_object_set_new(o, "body", json_stringn(body, blen));
		if(reply_to && reply_from){
			json_object_set_new(o, "reply_to", json_string(reply_to));
			json_object_set_new(o, "reply_from", json_string(reply_from));
		}
		if(env->has_ts) json_object_set_new(o, "ts", json_integer(env->ts));
		print_json(o);
		return;
	}
	print_prefix(w, env);
	/* My own, from another device: to whom it went. */
	if(w->mine) printf("me -> %s: ", w->to);
	else printf("%s: ", w->from);
	util__print_safe(stdout, body, blen);
	fputc('\n', stdout);
	if(reply_to && reply_from) printf("  > in reply to %s (%s)\n", reply_from, reply_to);
	fflush(stdout);
}

static void print_receipt(struct feed *f, const char *from, const struct envelope *env)
{
	const char *status = env->status == ENVELOPE_STATUS_READ ? "read" : "delivered";

	if(f->json){
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("receipt"));
		json_object_set_new(o, "from", json_string(from));
		json_object_set_new(o, "id", json_stringn(env->id.ptr, env->id.len));
		json_object_set_new(o, "ref", json_stringn(env->ref.ptr, env->ref.len));
		json_object_set_new(o, "status", json_string(status));
		print_json(o);
		return;
	}
	printf("receipt: %.*s %s by %s\n", (int)env->ref.len, env->ref.ptr, status, from);
	fflush(stdout);
}

static void print_change(enum envelope_type type, const char *who, const char *ref,
		const char *of, const char *emoji, bool remove, const char *body, size_t blen,
		const char *tail);

/* A reaction (from anyone), an edit or a delete (from the archiver) as a
 * line: "[12:00:01] alice reacted 👍 to m-5", "[..] #lobby bob edited m-5:
 * see you!", "[..] bob deleted m-6"; a change of mine in a direct
 * conversation says with whom: "alice reacted 👍 to m-5 (with bob)". */
static void show_change(struct feed *f, const struct where *w, const struct envelope *env)
{
	char ref[MSGID_MAX_LEN + 1], of[NAME_MAX_LEN + 1], by[NAME_MAX_LEN + 1];
	char with[NAME_MAX_LEN + 1], tail[NAME_MAX_LEN + 16] = "";
	char *emoji = NULL, *body = NULL;
	const struct envelope_str *text = env->type == ENVELOPE_REACTION ? &env->emoji : &env->body;
	const char *who, *peer;
	long tlen = 0;

	if(!env_plain(&env->ref, ref, sizeof(ref)) || !env_plain(&env->of, of, sizeof(of))) return;
	who = env->type == ENVELOPE_REACTION ? w->from : env_plain(&env->by, by, sizeof(by));
	if(who == NULL) return;
	if(env->type == ENVELOPE_REACTION) peer = w->mine ? w->to : NULL;
	else peer = env_plain(&env->with, with, sizeof(with));
	if(env->type != ENVELOPE_DELETE && text->ptr){
		char *t = malloc(text->len + 1);
		if(t == NULL || (tlen = envelope__unescape(text, t, text->len + 1)) < 0){
			free(t);
			return;
		}
		if(env->type == ENVELOPE_REACTION) emoji = t;
		else body = t;
	}
	f->count++;
	if(f->json){
		json_t *o = json_head(envelope__type_name(env->type), w, env);
		json_object_set_new(o, "ref", json_string(ref));
		json_object_set_new(o, "of", json_string(of));
		if(emoji) json_object_set_new(o, "emoji", json_stringn(emoji, (size_t)tlen));
		if(env->type == ENVELOPE_REACTION && env->remove) json_object_set_new(o, "remove", json_true());
		if(env->type != ENVELOPE_REACTION) json_object_set_new(o, "by", json_string(who));
		if(env->type != ENVELOPE_REACTION && peer) json_object_set_new(o, "with", json_string(peer));
		if(body) json_object_set_new(o, "body", json_stringn(body, (size_t)tlen));
		if(env->has_ts) json_object_set_new(o, "ts", json_integer(env->ts));
		print_json(o);
	}else{
		/* In a direct conversation, a change of mine says with whom. */
		if(w->room == NULL && peer && !strcmp(who, f->me)){
			snprintf(tail, sizeof(tail), " (with %s)", peer);
		}
		print_prefix(w, env);
		print_change(env->type, who, ref, of, emoji, env->type == ENVELOPE_REACTION && env->remove,
				body, (size_t)(body ? tlen : 0), tail);
		fflush(stdout);
	}
	free(emoji);
	free(body);
}

/* My read marker moved (from the archiver, on any device of mine): "read
 * up to seq 57 with bob (0 unread)", "... in #lobby ...". */
static void show_read(struct feed *f, const struct where *w, const struct envelope *env)
{
	char with[NAME_MAX_LEN + 1], room[NAME_MAX_LEN + 1];
	const char *p = env_plain(&env->with, with, sizeof(with));
	const char *r = env_plain(&env->room, room, sizeof(room));

	if(p == NULL && r == NULL) return;
	f->count++;
	if(f->json){
		json_t *o = json_head("read", w, env);
		json_object_set_new(o, r ? "room" : "with", json_string(r ? r : p));
		json_object_set_new(o, "seq", json_integer(env->seq));
		json_object_set_new(o, "unread", json_integer(env->unread));
		print_json(o);
		return;
	}
	print_prefix(w, env);
	printf("read up to seq %lld %s%s (%lld unread)\n", (long long)env->seq, r ? "in #" : "with ",
			r ? r : p, (long long)env->unread);
	fflush(stdout);
}

/* A typing indicator on chat/typing/<me>/<from> or
 * chat/roomtyping/<room>/<from>: "[12:00:01] bob is typing" (a stop is
 * said with --json only). Not counted for --count: it is no message. */
static void show_typing(struct feed *f, const char *room, const char *from,
		const void *payload, size_t len)
{
	bool typing = false;
	const char *why = NULL;
	char when[32];

	/* My own, from another device of mine: not news. */
	if(!strcmp(from, f->me)) return;
	if(!envelope__parse_typing(payload, len, &typing, &why)) return;
	if(f->json){
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("typing"));
		json_object_set_new(o, "from", json_string(from));
		if(room) json_object_set_new(o, "room", json_string(room));
		else json_object_set_new(o, "to", json_string(f->me));
		json_object_set_new(o, "typing", json_boolean(typing));
		print_json(o);
		return;
	}
	if(!typing) return;
	util__fmt_time(time__now_ms(), false, when, sizeof(when));
	printf("[%s] ", when);
	if(room) printf("#%s ", room);
	printf("%s is typing\n", from);
	fflush(stdout);
}

/* The words of the membership events (docs/PROTOCOL.md, "Rooms run by
 * their members"): about a person, "<by> <verb> <user><tail>", or without
 * by "<user><alone>"; about the room, "<by> <verb>", or "<alone>". */
static const struct {
	const char *event;
	bool about_user;
	const char *verb, *tail, *alone;
} event_words[] = {
	{"created", false, "created the room", NULL, "the room was created"},
	{"joined", true, NULL, NULL, " joined"},
	{"added", true, "added", "", " was added"},
	{"removed", true, "removed", "", " was removed"},
	{"left", true, NULL, NULL, " left"},
	{"promoted", true, "promoted", " to admin", " was promoted to admin"},
	{"demoted", true, "demoted", " to member", " was demoted to member"},
	{"changed", false, "changed the title or description", NULL,
		"the title or description was changed"},
	{"deleted", false, "deleted the room", NULL, "the room was deleted"},
};

/* Print the words of event (its name), about user, done by by (either
 * NULL if absent), and a newline. */
static void print_event_words(const char *event, const char *user, const char *by)
{
	size_t i;

	for(i=0; i<sizeof(event_words) / sizeof(event_words[0]); i++){
		if(strcmp(event, event_words[i].event) != 0) continue;
		if(event_words[i].about_user && user == NULL) break;
		if(event_words[i].verb == NULL || by == NULL){
			printf("%s%s\n", event_words[i].about_user ? user : "", event_words[i].alone);
		}else if(event_words[i].about_user){
			printf("%s %s %s%s\n", by, event_words[i].verb, user, event_words[i].tail);
		}else{
			printf("%s %s\n", by, event_words[i].verb);
		}
		return;
	}
	/* One this client has no words for: its name and whom it concerns. */
	printf("event ");
	util__print_safe(stdout, event, strlen(event));
	if(user) printf(": %s", user);
	if(by) printf(" (by %s)", by);
	printf("\n");
}

/* The name in s (of a parsed envelope; ptr NULL if absent) decoded into
 * out (NAME_MAX_LEN + 1 bytes), or NULL. */
static const char *event_name(const struct envelope_str *s, char *out)
{
	if(s->ptr == NULL || envelope__unescape(s, out, NAME_MAX_LEN + 1) < 0) return NULL;
	return out;
}

/* A membership event in room, from the archiver's account (from): a line
 * of its own, "[12:00:01] #hikers * alice added bob", or an object with
 * --json; never answered with a receipt. */
static void show_event(struct feed *f, const char *room, const char *from,
		const struct envelope *env)
{
	char ubuf[NAME_MAX_LEN + 1], bbuf[NAME_MAX_LEN + 1], when[32];
	const char *event = envelope__event_name(env->event);
	const char *user = event_name(&env->user, ubuf), *by = event_name(&env->by, bbuf);

	f->count++;
	if(f->json){
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("event"));
		json_object_set_new(o, "from", json_string(from));
		json_object_set_new(o, "room", json_string(room));
		json_object_set_new(o, "id", json_stringn(env->id.ptr, env->id.len));
		json_object_set_new(o, "event", json_string(event));
		if(user) json_object_set_new(o, "user", json_string(user));
		if(by) json_object_set_new(o, "by", json_string(by));
		if(env->has_ts) json_object_set_new(o, "ts", json_integer(env->ts));
		print_json(o);
		return;
	}
	util__fmt_time(env->has_ts ? env->ts : time__now_ms(), false, when, sizeof(when));
	printf("[%s] #%s * ", when, room);
	print_event_words(event, user, by);
	fflush(stdout);
}

void feed__message_cb(struct session *s, const char *topic, const void *payload,
		size_t len, void *ud)
{
	struct feed *f = ud;
	struct envelope env;
	struct topic_parts t;
	char a[NAME_MAX_LEN + 1], from[NAME_MAX_LEN + 1];
	struct where w = {0};
	const char *why = NULL;
	char *body;
	long blen;

	(void)s;
	/* The parser sets only the members of the type it found. */
	memset(&env, 0, sizeof(env));
	if(!topic__parse(topic, &t) || !level_name(&t.a, a) || !level_name(&t.b, from)) return;
	w.from = from;
	if(t.kind == TOPIC_TYPING || t.kind == TOPIC_ROOMTYPING){
		if(t.kind == TOPIC_ROOMTYPING || !strcmp(a, f->me)){
			show_typing(f, t.kind == TOPIC_ROOMTYPING ? a : NULL, from, payload, len);
		}
		return;
	}
	if(t.kind == TOPIC_ROOM){
		w.room = a;
		w.mine = !strcmp(from, f->me);
	}else if(t.kind == TOPIC_INBOX && (!strcmp(a, f->me) || !strcmp(from, f->me))){
		/* chat/inbox/<me>/<from>, or my own copy on chat/inbox/<to>/<me>
		 * (a note to self is both: shown as mine, once). */
		w.to = a;
		w.mine = !strcmp(from, f->me);
	}else{
		return;
	}
	if(!envelope__parse(payload, len, &env, &why)){
		/* A type of a later contract is no fault: left out quietly. */
		if(why == NULL || strcmp(why, "unknown type") != 0){
			fprintf(stderr, "warning: ignored a malformed message from %s: %s\n", from,
					why ? why : "?");
		}
		return;
	}
	if(seen_before(f, from, &env.id)) return;

	switch(env.type){
	case ENVELOPE_EVENT:
		/* Only a service may publish one (the plugin sees to it). */
		if(w.room) show_event(f, w.room, from, &env);
		return;
	case ENVELOPE_RECEIPT:
		/* My own receipts (this device's included) are no news. */
		if(w.room == NULL && !w.mine){
			print_receipt(f, from, &env);
			f->count++;
		}
		return;
	case ENVELOPE_REACTION:
	case ENVELOPE_EDIT:
	case ENVELOPE_DELETE:
		show_change(f, &w, &env);
		return;
	case ENVELOPE_READ:
		if(w.room == NULL && !strcmp(a, f->me)) show_read(f, &w, &env);
		return;
	case ENVELOPE_TEXT:
		break;
	default:
		return;
	}
	/* My own room messages come back to me: not news, and no receipt. */
	if(w.room && w.mine) return;

	body = malloc(env.body.len + 1);
	if(body == NULL) return;
	blen = envelope__unescape(&env.body, body, env.body.len + 1);
	if(blen >= 0){
		print_text(f, &w, &env, body, (size_t)blen);
		f->count++;
		if(!w.mine) send_receipt(f, from, &env.id);
	}
	free(body);
}

/* The account the archiver publishes edits and deletes from (the
 * service's name in config/archiver.conf's default): the live key of an
 * edit or delete row is (archiver, id). */
#define ARCHIVER_ACCOUNT "archiver"

void feed__archived(struct feed *f, json_t *m)
{
	static const char *const copied[] = {"id", "type", "body", "ts", "reply_to", "reply_from",
		"event", "user", "by", "ref", "of", "emoji", "remove"};
	const char *from = json_string_value(json_object_get(m, "from"));
	const char *to = json_string_value(json_object_get(m, "to"));
	const char *room = json_string_value(json_object_get(m, "room"));
	const char *type = json_string_value(json_object_get(m, "type"));
	char topic[TOPIC_MAX_LEN + 1];
	json_t *env;
	char *payload;
	size_t i;

	if(from == NULL || type == NULL || (room == NULL && to == NULL)) return;
	if(json_object_get(m, "deleted")) return;   /* its delete row says it */
	env = json_object();
	if(env == NULL) return;
	for(i=0; i<sizeof(copied) / sizeof(copied[0]); i++){
		json_t *v = json_object_get(m, copied[i]);
		if(v && !json_is_null(v)) json_object_set(env, copied[i], v);
	}
	if(!strcmp(type, "edit") || !strcmp(type, "delete")){
		/* Live, the archiver publishes them: to the room, or to my inbox
		 * with the other person of the conversation as "with". */
		if(room == NULL){
			json_object_set_new(env, "with", json_string(!strcmp(from, f->me) ? to : from));
		}
		topic__build(topic, sizeof(topic), room ? TOPIC_ROOM : TOPIC_INBOX,
				room ? room : f->me, ARCHIVER_ACCOUNT);
	}else{
		topic__build(topic, sizeof(topic), room ? TOPIC_ROOM : TOPIC_INBOX,
				room ? room : to, from);
	}
	payload = json_dumps(env, JSON_COMPACT);
	if(payload) feed__message_cb(f->s, topic, payload, strlen(payload), f);
	free(payload);
	json_decref(env);
}

/* ---- changes to a message: edit, delete, reaction ---- */

/* The words of a change to the message ref of of, done by who, without
 * the time or the conversation, and a newline:
 *   "bob edited m-5: see you!"          (body: the new text)
 *   "bob deleted m-6", "alice deleted carol's m-9"
 *   "alice reacted 👍 to m-5", "alice removed 👍 from m-5"
 * where tail (or NULL) goes before the colon or the end: " (with bob)".
 * Names are valid names; emoji and body are printed safely. */
static void print_change(enum envelope_type type, const char *who, const char *ref,
		const char *of, const char *emoji, bool remove, const char *body, size_t blen,
		const char *tail)
{
	if(tail == NULL) tail = "";
	if(type == ENVELOPE_EDIT){
		printf("%s edited %s%s: ", who, ref, tail);
		util__print_safe(stdout, body ? body : "", body ? blen : 0);
		printf("\n");
	}else if(type == ENVELOPE_DELETE){
		if(of && strcmp(of, who) != 0) printf("%s deleted %s's %s%s\n", who, of, ref, tail);
		else printf("%s deleted %s%s\n", who, ref, tail);
	}else{
		printf("%s %s ", who, remove ? "removed" : "reacted");
		util__print_safe(stdout, emoji ? emoji : "?", emoji ? strlen(emoji) : 1);
		printf(" %s %s%s\n", remove ? "from" : "to", ref, tail);
	}
}

/* ---- archived messages: history, sync, search, the conversation list ---- */

/* A member of an archived event: a name (NULL if absent or no valid name),
 * or the event's name ("?" if absent). */
static const char *archived_str(json_t *m, const char *key, bool name)
{
	const char *v = json_string_value(json_object_get(m, key));

	if(name) return v && names__valid_str(v) ? v : NULL;
	return v ? v : "?";
}

void feed__print_json(json_t *o)
{
	print_json(json_incref(o));
}

/* Print the beginning of body: its first line, at most PREVIEW_CHARS
 * characters, "..." if there is more. */
#define PREVIEW_CHARS 60
static void print_preview_text(const char *body)
{
	size_t i = 0, chars = 0, len = strlen(body);

	while(i < len && body[i] != '\n' && chars < PREVIEW_CHARS){
		unsigned char c = (unsigned char)body[i++];
		/* Count a character at its first byte; skip its continuation bytes. */
		while(i < len && ((unsigned char)body[i] & 0xC0) == 0x80 && c >= 0xC0) i++;
		chars++;
	}
	util__print_safe(stdout, body, i);
	if(i < len) printf("...");
}

/* The time of an archived message: when the archiver stored it, else what
 * the sender claimed. */
static void archived_time(json_t *m, char *when, size_t len)
{
	json_int_t ts = json_integer_value(json_object_get(m, "server_ts"));

	if(ts == 0) ts = json_integer_value(json_object_get(m, "ts"));
	util__fmt_time(ts, true, when, len);
}

void feed__print_preview(json_t *m, const char *me)
{
	const char *from = archived_str(m, "from", true), *type = json_string_value(json_object_get(m, "type"));
	const char *body = json_string_value(json_object_get(m, "body"));
	char when[32];

	if(!json_is_object(m)){
		printf("(no messages)\n");
		return;
	}
	archived_time(m, when, sizeof(when));
	printf("[%s] ", when);
	if(type && !strcmp(type, "event")){
		printf("* ");
		print_event_words(archived_str(m, "event", false), archived_str(m, "user", true),
				archived_str(m, "by", true));
		return;
	}
	printf("%s: ", from == NULL ? "?" : me && !strcmp(from, me) ? "me" : from);
	if(json_object_get(m, "deleted")) printf("(message deleted)");
	else if(body) print_preview_text(body);
	printf("\n");
}

/* The message of page (an array of archived messages, or NULL) with id
 * ref from of, or NULL. */
static json_t *find_in_page(json_t *page, const char *of, const char *ref)
{
	json_t *e;
	size_t i;

	json_array_foreach(page, i, e){
		const char *f = json_string_value(json_object_get(e, "from"));
		const char *id = json_string_value(json_object_get(e, "id"));
		if(f && id && !strcmp(f, of) && !strcmp(id, ref)) return e;
	}
	return NULL;
}

/* The lines under an archived text: what it replies to ("  > in reply to
 * alice: hello there", the quote from page if it is there, else "  > in
 * reply to alice (m-1)") and its reactions ("  reactions: 👍 alice, carol;
 * ❤ bob"). */
static void print_text_extras(json_t *m, json_t *page)
{
	const char *to = json_string_value(json_object_get(m, "reply_to"));
	const char *from = archived_str(m, "reply_from", true);
	json_t *reactions = json_object_get(m, "reactions"), *r, *u, *q;
	size_t i, k;

	if(to && from && names__valid_msgid(to, strlen(to))){
		q = find_in_page(page, from, to);
		if(q && json_object_get(q, "deleted")){
			printf("  > in reply to %s: (message deleted)\n", from);
		}else if(q && json_string_value(json_object_get(q, "body"))){
			printf("  > in reply to %s: ", from);
			print_preview_text(json_string_value(json_object_get(q, "body")));
			printf("\n");
		}else{
			printf("  > in reply to %s (%s)\n", from, to);
		}
	}
	if(json_array_size(reactions) == 0) return;
	printf("  reactions:");
	json_array_foreach(reactions, i, r){
		const char *emoji = json_string_value(json_object_get(r, "emoji"));
		if(emoji == NULL) continue;
		printf("%s ", i ? ";" : "");
		util__print_safe(stdout, emoji, strlen(emoji));
		json_array_foreach(json_object_get(r, "users"), k, u){
			const char *n = json_string_value(u);
			if(n && names__valid_str(n)) printf("%s %s", k ? "," : "", n);
		}
	}
	printf("\n");
}

/* An archived edit, delete or reaction row (sync): its line. */
static void print_archived_change(json_t *m, enum envelope_type type, const char *when,
		const char *room)
{
	const char *from = archived_str(m, "from", true), *by = archived_str(m, "by", true);
	const char *ref = json_string_value(json_object_get(m, "ref"));
	const char *body = json_string_value(json_object_get(m, "body"));

	if(ref == NULL || !names__valid_msgid(ref, strlen(ref))) return;
	printf("[%s] ", when);
	if(room) printf("#%s ", room);
	print_change(type, type == ENVELOPE_REACTION ? (from ? from : "?") : (by ? by : "?"), ref,
			archived_str(m, "of", true), json_string_value(json_object_get(m, "emoji")),
			json_is_true(json_object_get(m, "remove")), body, body ? strlen(body) : 0, NULL);
}

void feed__print_archived(json_t *m, bool json, bool with_to, const char *me, json_t *page)
{
	const char *from, *to, *room, *type, *body, *status, *by;
	char when[32];

	if(json){
		print_json(json_incref(m));
		return;
	}
	from = json_string_value(json_object_get(m, "from"));
	to = json_string_value(json_object_get(m, "to"));
	room = archived_str(m, "room", true);
	type = json_string_value(json_object_get(m, "type"));
	body = json_string_value(json_object_get(m, "body"));
	status = json_string_value(json_object_get(m, "status"));
	archived_time(m, when, sizeof(when));
	if(type && !strcmp(type, "event")){
		if(room) printf("[%s] #%s * ", when, room);
		else printf("[%s] * ", when);
		print_event_words(archived_str(m, "event", false), archived_str(m, "user", true),
				archived_str(m, "by", true));
		return;
	}
	if(type && (!strcmp(type, "edit") || !strcmp(type, "delete") || !strcmp(type, "reaction"))){
		print_archived_change(m, !strcmp(type, "edit") ? ENVELOPE_EDIT : !strcmp(type, "delete")
				? ENVELOPE_DELETE : ENVELOPE_REACTION, when, room);
		return;
	}
	/* Receipts show as the status of a text; a type this client does not
	 * know is left out (forward compatibility). */
	if(type && strcmp(type, "text") != 0) return;
	if(from == NULL || !names__valid_str(from)) return;

	if(room) printf("[%s] #%s %s: ", when, room, from);
	else if(with_to && to && names__valid_str(to)) printf("[%s] %s -> %s: ", when, from, to);
	else printf("[%s] %s: ", when, from);
	if(json_object_get(m, "deleted")){
		/* A tombstone: the text is gone, who took it away stays. */
		by = archived_str(m, "deleted_by", true);
		if(by && strcmp(by, from) != 0) printf("(message deleted by %s)\n", by);
		else printf("(message deleted)\n");
		return;
	}
	if(body == NULL) body = "";
	util__print_safe(stdout, body, strlen(body));
	if(json_object_get(m, "edited")) printf("  (edited)");
	if(me && !strcmp(from, me) && status && strcmp(status, "sent") != 0){
		printf("  (%s)", status);
	}
	fputc('\n', stdout);
	print_text_extras(m, page);
}
