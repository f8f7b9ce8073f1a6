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

/* True if (from, id) was seen recently: QoS 1 may deliver twice. */
static bool seen_before(struct feed *f, const char *from, const struct envelope_str *id)
{
	char key[sizeof(f->seen[0])];
	int i;

	snprintf(key, sizeof(key), "%s/%.*s", from, (int)id->len, id->ptr);
	for(i=0; i<FEED_SEEN; i++){
		if(!strcmp(f->seen[i], key)) return true;
	}
	memcpy(f->seen[f->seen_next], key, sizeof(key));
	f->seen_next = (f->seen_next + 1) % FEED_SEEN;
	return false;
}

/* A message topic, inbox or room, of two valid names copied into a and
 * b; TOPIC_NONE for anything else. */
static enum topic_kind split_topic(const char *topic, char *a, char *b)
{
	struct topic_parts t;

	if(!topic__parse(topic, &t) || (t.kind != TOPIC_INBOX && t.kind != TOPIC_ROOM)
			|| !names__valid(t.a.p, t.a.n) || !names__valid(t.b.p, t.b.n)){
		return TOPIC_NONE;
	}
	memcpy(a, t.a.p, t.a.n);
	a[t.a.n] = '\0';
	memcpy(b, t.b.p, t.b.n);
	b[t.b.n] = '\0';
	return t.kind;
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

static void print_text(struct feed *f, const char *room, const char *from,
		const struct envelope *env, const char *body, size_t blen)
{
	char when[32];
	int64_t ts = env->has_ts ? env->ts : time__now_ms();

	if(f->json){
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("text"));
		json_object_set_new(o, "from", json_string(from));
		if(room) json_object_set_new(o, "room", json_string(room));
		else json_object_set_new(o, "to", json_string(f->me));
		json_object_set_new(o, "id", json_stringn(env->id.ptr, env->id.len));
		json_object_set_new(o, "body", json_stringn(body, blen));
		if(env->has_ts) json_object_set_new(o, "ts", json_integer(env->ts));
		print_json(o);
		return;
	}
	util__fmt_time(ts, false, when, sizeof(when));
	if(room) printf("[%s] #%s %s: ", when, room, from);
	else printf("[%s] %s: ", when, from);
	util__print_safe(stdout, body, blen);
	fputc('\n', stdout);
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
	char a[NAME_MAX_LEN + 1], from[NAME_MAX_LEN + 1];
	enum topic_kind kind;
	const char *why = NULL, *room = NULL;
	char *body;
	long blen;

	(void)s;
	kind = split_topic(topic, a, from);
	if(kind == TOPIC_ROOM){
		room = a;
	}else if(kind != TOPIC_INBOX || strcmp(a, f->me) != 0){
		return;
	}
	if(!envelope__parse(payload, len, &env, &why)){
		fprintf(stderr, "warning: ignored a malformed message from %s: %s\n", from, why);
		return;
	}
	if(seen_before(f, from, &env.id)) return;

	if(env.type == ENVELOPE_EVENT){
		/* Only a service may publish one (the plugin sees to it). */
		if(room) show_event(f, room, from, &env);
		return;
	}

	if(env.type == ENVELOPE_RECEIPT){
		if(room == NULL){
			print_receipt(f, from, &env);
			f->count++;
		}
		return;
	}
	/* My own room messages come back to me: not news, and no receipt. */
	if(room && !strcmp(from, f->me)) return;

	body = malloc(env.body.len + 1);
	if(body == NULL) return;
	blen = envelope__unescape(&env.body, body, env.body.len + 1);
	if(blen >= 0){
		print_text(f, room, from, &env, body, (size_t)blen);
		f->count++;
		if(strcmp(from, f->me) != 0) send_receipt(f, from, &env.id);
	}
	free(body);
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
