/* fuzz_envelope.c - libFuzzer harness for envelope__parse and envelope__unescape.
 *
 * The input is a payload as a publisher would send it. Invariants checked:
 * - the result is deterministic and *why is set exactly when parsing fails;
 * - an accepted payload is valid UTF-8 and valid JSON to jansson (the
 *   archiver's parser), and jansson reads the same id, type, body, ref and ts;
 * - a typing indicator (envelope__parse_typing) is accepted only as jansson
 *   reads it, with the same boolean;
 * - every slice lies inside the payload; id and ref match the message-id
 *   grammar; the type-specific members are as envelope.h promises (an
 *   event's event, user and by; a reply, a reaction, an edit, a delete and
 *   a read too), and jansson reads the same;
 * - the body decodes into a buffer of its raw length + 1 (never more is
 *   needed), to valid UTF-8 without NUL, identical to the raw bytes when
 *   nothing was escaped, and a buffer one byte short is refused;
 * - re-escaping the decoded body gives an envelope that parses and decodes
 *   to the same bytes (round trip), with any ts in [0, ENVELOPE_MAX_TS]
 *   accepted as given and anything above refused. */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "envelope.h"
#include "names.h"
#include "fuzz.h"

static bool env_inside(const struct envelope_str *s, const uint8_t *data, size_t size)
{
	const char *lo = (const char *)data, *hi = lo + size;

	return s->ptr >= lo && s->ptr <= hi && s->len <= (size_t)(hi - s->ptr);
}

/* JSON-escape buf[0..len) into a new NUL-terminated string (caller frees). */
static char *env_escape(const char *buf, size_t len)
{
	char *out = malloc(len * 6 + 1), *o = out;
	size_t i;

	if(out == NULL) return NULL;
	for(i=0; i<len; i++){
		unsigned char c = (unsigned char)buf[i];
		if(c == '"' || c == '\\'){
			*o++ = '\\';
			*o++ = (char)c;
		}else if(c < 0x20){
			o += sprintf(o, "\\u%04x", c);
		}else{
			*o++ = (char)c;
		}
	}
	*o = '\0';
	return out;
}

/* Decode s into a new exact-size buffer; FUZZ_ASSERTs the unescape contract. */
static char *env_decode(const struct envelope_str *s, long *n)
{
	char *out = malloc(s->len + 1);

	if(out == NULL) return NULL;
	*n = envelope__unescape(s, out, s->len + 1);
	FUZZ_ASSERT(*n >= 0 && (size_t)*n <= s->len);
	FUZZ_ASSERT(out[*n] == '\0' && strlen(out) == (size_t)*n);
	FUZZ_ASSERT(utf8__valid(out, (size_t)*n));
	if(!s->escaped){
		FUZZ_ASSERT((size_t)*n == s->len && memcmp(out, s->ptr, s->len) == 0);
	}
	if(*n > 0){
		char *small = malloc((size_t)*n);
		if(small){
			FUZZ_ASSERT(envelope__unescape(s, small, (size_t)*n) == -1);
			free(small);
		}
	}
	return out;
}

/* Rebuild {"id","type":"text","body","ts"} from the decoded body with a ts
 * taken from the input: it must parse, with the same body and that ts, for
 * every ts in [0, ENVELOPE_MAX_TS], and fail just above. */
static void env_round_trip(const struct envelope *env, const char *body, size_t len,
		const uint8_t *data, size_t size)
{
	char *esc = env_escape(body, len), *doc;
	struct envelope again;
	const char *why;
	size_t doclen, i;
	uint64_t h = 1469598103934665603ull;
	int64_t ts;

	if(esc == NULL) return;
	for(i=0; i<size; i++) h = (h ^ data[i]) * 1099511628211ull;
	ts = (h & 1) ? ENVELOPE_MAX_TS - (int64_t)((h >> 1) % 3) : (int64_t)(h % ((uint64_t)ENVELOPE_MAX_TS + 1));
	doclen = strlen(esc) + env->id.len + 96;
	doc = malloc(doclen);
	if(doc){
		long n;
		char *back;
		int k = snprintf(doc, doclen, "{\"id\":\"%.*s\",\"type\":\"text\",\"body\":\"%s\",\"ts\":%lld}",
				(int)env->id.len, env->id.ptr, esc, (long long)ts);
		FUZZ_ASSERT(k > 0 && (size_t)k < doclen);
		FUZZ_ASSERT(envelope__parse(doc, (size_t)k, &again, &why));
		FUZZ_ASSERT(again.has_ts && again.ts == ts);
		back = env_decode(&again.body, &n);
		if(back){
			FUZZ_ASSERT((size_t)n == len && memcmp(back, body, len) == 0);
			free(back);
		}
		k = snprintf(doc, doclen, "{\"id\":\"%.*s\",\"type\":\"text\",\"body\":\"%s\",\"ts\":%lld}",
				(int)env->id.len, env->id.ptr, esc, (long long)ENVELOPE_MAX_TS + 1 + (long long)(h % 1000));
		FUZZ_ASSERT(k > 0 && (size_t)k < doclen);
		FUZZ_ASSERT(!envelope__parse(doc, (size_t)k, &again, &why));
		free(doc);
	}
	free(esc);
}

/* An event's "user" or "by" as jansson read it (v) and as the envelope
 * did (s): both absent, or the same name. */
static void env_same_name(json_t *v, const struct envelope_str *s)
{
	if(s->ptr == NULL){
		FUZZ_ASSERT(v == NULL);
		return;
	}
	FUZZ_ASSERT(json_is_string(v) && json_string_length(v) == s->len
			&& memcmp(json_string_value(v), s->ptr, s->len) == 0);
}

/* A string member as jansson read it (v) and as the envelope did (s),
 * decoded: both absent, or the same bytes. */
static void env_same_str(json_t *v, const struct envelope_str *s)
{
	char buf[256];
	long n;

	if(s->ptr == NULL){
		FUZZ_ASSERT(v == NULL);
		return;
	}
	FUZZ_ASSERT(json_is_string(v));
	n = envelope__unescape(s, buf, sizeof(buf));
	if(n < 0) return;
	FUZZ_ASSERT(json_string_length(v) == (size_t)n && memcmp(json_string_value(v), buf, (size_t)n) == 0);
}

/* The members of the conversation types, as jansson reads them. */
static void env_compare_conversation(json_t *root, const struct envelope *env)
{
	json_t *v;

	switch(env->type){
		case ENVELOPE_TEXT:
			env_same_str(json_object_get(root, "reply_to"), &env->reply_to);
			env_same_str(json_object_get(root, "reply_from"), &env->reply_from);
			break;
		case ENVELOPE_REACTION:
			env_same_str(json_object_get(root, "of"), &env->of);
			env_same_str(json_object_get(root, "emoji"), &env->emoji);
			v = json_object_get(root, "remove");
			FUZZ_ASSERT(v == NULL ? !env->remove : json_is_boolean(v) && json_is_true(v) == env->remove);
			break;
		case ENVELOPE_EDIT:
		case ENVELOPE_DELETE:
			env_same_str(json_object_get(root, "of"), &env->of);
			env_same_str(json_object_get(root, "by"), &env->by);
			env_same_str(json_object_get(root, "with"), &env->with);
			break;
		case ENVELOPE_READ:
			env_same_str(json_object_get(root, "with"), &env->with);
			env_same_str(json_object_get(root, "room"), &env->room);
			v = json_object_get(root, "seq");
			FUZZ_ASSERT(json_is_integer(v) && json_integer_value(v) == env->seq);
			v = json_object_get(root, "unread");
			FUZZ_ASSERT(json_is_integer(v) && json_integer_value(v) == env->unread);
			break;
		default:
			break;
	}
}

/* jansson, an independent parser, must accept what envelope__parse accepts
 * and read the same values. It refuses numbers it cannot represent, which
 * the envelope allows inside unknown members: those are skipped. */
static void env_compare_jansson(const uint8_t *data, size_t size, const struct envelope *env,
		const char *body, long bodylen)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)data, size, 0, &jerr), *v;

	if(root == NULL){
		FUZZ_ASSERT(strstr(jerr.text, "too big") || strstr(jerr.text, "overflow"));
		return;
	}
	FUZZ_ASSERT(json_is_object(root));
	v = json_object_get(root, "id");
	FUZZ_ASSERT(json_is_string(v) && json_string_length(v) == env->id.len
			&& memcmp(json_string_value(v), env->id.ptr, env->id.len) == 0);
	v = json_object_get(root, "type");
	FUZZ_ASSERT(json_is_string(v));
	FUZZ_ASSERT(!strcmp(json_string_value(v), envelope__type_name(env->type)));
	env_compare_conversation(root, env);
	if(env->type == ENVELOPE_EVENT){
		v = json_object_get(root, "event");
		FUZZ_ASSERT(json_is_string(v) && !strcmp(json_string_value(v), envelope__event_name(env->event)));
		env_same_name(json_object_get(root, "user"), &env->user);
		env_same_name(json_object_get(root, "by"), &env->by);
	}else if(env->type == ENVELOPE_TEXT || env->type == ENVELOPE_EDIT){
		v = json_object_get(root, "body");
		FUZZ_ASSERT(json_is_string(v) && (long)json_string_length(v) == bodylen
				&& memcmp(json_string_value(v), body, (size_t)bodylen) == 0);
	}
	if(env->type != ENVELOPE_TEXT && env->type != ENVELOPE_EVENT && env->type != ENVELOPE_READ){
		v = json_object_get(root, "ref");
		FUZZ_ASSERT(json_is_string(v) && json_string_length(v) == env->ref.len
				&& memcmp(json_string_value(v), env->ref.ptr, env->ref.len) == 0);
	}
	if(env->type == ENVELOPE_RECEIPT){
		v = json_object_get(root, "status");
		FUZZ_ASSERT(json_is_string(v) && !strcmp(json_string_value(v),
				env->status == ENVELOPE_STATUS_READ ? "read" : "delivered"));
	}
	v = json_object_get(root, "ts");
	if(env->has_ts){
		FUZZ_ASSERT(json_is_integer(v) && json_integer_value(v) == env->ts);
	}else{
		FUZZ_ASSERT(v == NULL);
	}
	json_decref(root);
}

/* A plain valid account name inside the payload, or absent if it may be. */
static void env_name(const struct envelope_str *s, const uint8_t *data, size_t size, bool optional)
{
	if(s->ptr == NULL){
		FUZZ_ASSERT(optional);
		return;
	}
	FUZZ_ASSERT(env_inside(s, data, size) && !s->escaped && names__valid(s->ptr, s->len));
}

/* A text's reply: both absent, or an id and a name. */
static void env_check_reply(const struct envelope *env, const uint8_t *data, size_t size)
{
	FUZZ_ASSERT((env->reply_to.ptr == NULL) == (env->reply_from.ptr == NULL));
	if(env->reply_to.ptr == NULL) return;
	FUZZ_ASSERT(env_inside(&env->reply_to, data, size) && !env->reply_to.escaped
			&& names__valid_msgid(env->reply_to.ptr, env->reply_to.len));
	env_name(&env->reply_from, data, size, false);
}

/* A reaction, an edit, a delete, a read: the members envelope.h promises. */
static void env_check_conversation(const struct envelope *env, const uint8_t *data, size_t size)
{
	char emoji[ENVELOPE_EMOJI_MAX + 1];
	long n;

	FUZZ_ASSERT(env->status == ENVELOPE_STATUS_NONE);
	if(env->type == ENVELOPE_READ){
		FUZZ_ASSERT(env->body.ptr == NULL && env->ref.ptr == NULL);
		FUZZ_ASSERT((env->with.ptr == NULL) != (env->room.ptr == NULL));
		env_name(&env->with, data, size, true);
		env_name(&env->room, data, size, true);
		FUZZ_ASSERT(env->has_seq && env->seq >= 0 && env->seq <= ENVELOPE_MAX_TS);
		FUZZ_ASSERT(env->unread >= 0 && env->unread <= ENVELOPE_MAX_TS);
		return;
	}
	FUZZ_ASSERT(env->type == ENVELOPE_REACTION || env->type == ENVELOPE_EDIT
			|| env->type == ENVELOPE_DELETE);
	FUZZ_ASSERT(env_inside(&env->ref, data, size));
	FUZZ_ASSERT(!env->ref.escaped && names__valid_msgid(env->ref.ptr, env->ref.len));
	env_name(&env->of, data, size, false);
	if(env->type == ENVELOPE_REACTION){
		FUZZ_ASSERT(env->body.ptr == NULL);
		FUZZ_ASSERT(env_inside(&env->emoji, data, size));
		n = envelope__unescape(&env->emoji, emoji, sizeof(emoji));
		FUZZ_ASSERT(n >= 1 && n <= ENVELOPE_EMOJI_MAX && utf8__valid(emoji, (size_t)n));
		FUZZ_ASSERT(strchr(emoji, ' ') == NULL);
		return;
	}
	FUZZ_ASSERT((env->type == ENVELOPE_EDIT) == (env->body.ptr != NULL));
	env_name(&env->by, data, size, false);
	env_name(&env->with, data, size, true);
}

/* The same input as a typing indicator: accepted only if it is at most
 * ENVELOPE_TYPING_MAX bytes, and then jansson reads the same boolean. */
static void env_typing(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *why = "unset";
	bool typing, again;

	if(!envelope__parse_typing(data, size, &typing, &why)){
		FUZZ_ASSERT(why != NULL);
		return;
	}
	FUZZ_ASSERT(why == NULL && size <= ENVELOPE_TYPING_MAX && utf8__valid(data, size));
	FUZZ_ASSERT(envelope__parse_typing(data, size, &again, NULL) && again == typing);
	root = json_loadb((const char *)data, size, 0, &jerr);
	if(root == NULL){
		FUZZ_ASSERT(strstr(jerr.text, "too big") || strstr(jerr.text, "overflow"));
		return;
	}
	v = json_object_get(root, "typing");
	FUZZ_ASSERT(json_is_boolean(v) && json_is_true(v) == typing);
	json_decref(root);
}

FUZZ_TARGET(envelope)
{
	struct envelope env, env2;
	const char *why = "unset", *why2 = "unset";
	bool ok = envelope__parse(data, size, &env, &why);
	bool ok2 = envelope__parse(data, size, &env2, &why2);
	char *body = NULL;
	long bodylen = 0;

	env_typing(data, size);
	FUZZ_ASSERT(ok == ok2 && why == why2);
	FUZZ_ASSERT(ok ? why == NULL : why != NULL);
	FUZZ_ASSERT(envelope__parse(data, size, &env2, NULL) == ok);
	if(!ok) return 0;

	FUZZ_ASSERT(utf8__valid(data, size));
	FUZZ_ASSERT(env_inside(&env.id, data, size));
	FUZZ_ASSERT(!env.id.escaped && names__valid_msgid(env.id.ptr, env.id.len));
	FUZZ_ASSERT(!env.has_ts || (env.ts >= 0 && env.ts <= ENVELOPE_MAX_TS));
	if(env.type == ENVELOPE_TEXT){
		FUZZ_ASSERT(env.body.ptr != NULL && env.body.len > 0);
		FUZZ_ASSERT(env_inside(&env.body, data, size));
		FUZZ_ASSERT(env.status == ENVELOPE_STATUS_NONE);
		body = env_decode(&env.body, &bodylen);
		if(body == NULL) return 0;
		/* A non-empty raw body never decodes to nothing: NUL is refused. */
		FUZZ_ASSERT(bodylen > 0);
		env_round_trip(&env, body, (size_t)bodylen, data, size);
	}else if(env.type == ENVELOPE_EVENT){
		/* A membership event: one of the fixed events, plain valid names,
		 * no body, ref or status. */
		FUZZ_ASSERT(env.body.ptr == NULL && env.ref.ptr == NULL && env.status == ENVELOPE_STATUS_NONE);
		FUZZ_ASSERT(envelope__event_name(env.event)[0] != '?');
		FUZZ_ASSERT(env.user.ptr == NULL || (env_inside(&env.user, data, size) && !env.user.escaped
					&& names__valid(env.user.ptr, env.user.len)));
		FUZZ_ASSERT(env.by.ptr == NULL || (env_inside(&env.by, data, size) && !env.by.escaped
					&& names__valid(env.by.ptr, env.by.len)));
	}else if(env.type == ENVELOPE_RECEIPT){
		FUZZ_ASSERT(env.body.ptr == NULL);
		FUZZ_ASSERT(env_inside(&env.ref, data, size));
		FUZZ_ASSERT(!env.ref.escaped && names__valid_msgid(env.ref.ptr, env.ref.len));
		FUZZ_ASSERT(env.status == ENVELOPE_STATUS_DELIVERED || env.status == ENVELOPE_STATUS_READ);
	}else{
		env_check_conversation(&env, data, size);
		if(env.type == ENVELOPE_EDIT){
			body = env_decode(&env.body, &bodylen);
			if(body == NULL) return 0;
			FUZZ_ASSERT(bodylen > 0);
		}
	}
	if(env.type == ENVELOPE_TEXT) env_check_reply(&env, data, size);
	env_compare_jansson(data, size, &env, body, bodylen);
	free(body);
	return 0;
}
