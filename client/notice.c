/* notice.c - refusal notices from the broker, and their words (see notice.h). */
#include <string.h>

#include <jansson.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "notice.h"
#include "topic.h"

/* Copy a JSON string (borrowed) into out, control characters as '?'. */
static void copy_str(json_t *v, char *out, size_t len)
{
	const char *s = json_string_value(v);
	size_t i;

	out[0] = '\0';
	if(s == NULL || len == 0) return;
	for(i=0; s[i] && i + 1 < len; i++){
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}

/* A message topic, inbox or room: its kind and target. */
static void split_topic(const char *topic, struct notice *n)
{
	struct topic_parts t;

	if(topic == NULL || !topic__parse(topic, &t)) return;
	if(t.kind != TOPIC_INBOX && t.kind != TOPIC_ROOM) return;
	/* Only a valid name is shown: the topic came from the wire. */
	if(!names__valid(t.a.p, t.a.n)) return;
	snprintf(n->kind, sizeof(n->kind), "%s", topic__kind_word(t.kind));
	memcpy(n->target, t.a.p, t.a.n);
	n->target[t.a.n] = '\0';
}

bool notice__is_resync(const void *payload, size_t len)
{
	json_t *j = json_loadb(payload, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	bool yes = type != NULL && strcmp(type, "resync") == 0;

	json_decref(j);
	return yes;
}

bool notice__parse(const void *payload, size_t len, struct notice *n)
{
	json_t *j, *ref, *retry;
	const char *type;

	memset(n, 0, sizeof(*n));
	j = json_loadb(payload, len, 0, NULL);
	type = json_string_value(json_object_get(j, "type"));
	if(type == NULL || strcmp(type, "refused") != 0
			|| !json_is_string(json_object_get(j, "code"))){
		json_decref(j);
		return false;
	}
	ref = json_object_get(j, "ref");
	if(json_is_string(ref) && names__valid_msgid(json_string_value(ref), json_string_length(ref))){
		copy_str(ref, n->ref, sizeof(n->ref));
	}
	copy_str(json_object_get(j, "client"), n->client, sizeof(n->client));
	copy_str(json_object_get(j, "code"), n->code, sizeof(n->code));
	copy_str(json_object_get(j, "message"), n->message, sizeof(n->message));
	split_topic(json_string_value(json_object_get(j, "topic")), n);
	retry = json_object_get(j, "retry_ms");
	if(json_is_integer(retry) && json_integer_value(retry) > 0){
		n->retry_ms = (int64_t)json_integer_value(retry);
	}
	json_decref(j);
	return true;
}

void notice__keep(struct notice_box *b, const struct notice *n)
{
	if(b->count == NOTICE_KEEP){
		memmove(&b->n[0], &b->n[1], (NOTICE_KEEP - 1) * sizeof(b->n[0]));
		b->count--;
	}
	b->n[b->count++] = *n;
}

bool notice__take(struct notice_box *b, const char *ref, struct notice *out)
{
	int i;

	if(ref == NULL || ref[0] == '\0') return false;
	for(i=0; i<b->count; i++){
		if(strcmp(b->n[i].ref, ref) != 0) continue;
		*out = b->n[i];
		memmove(&b->n[i], &b->n[i + 1], (size_t)(b->count - i - 1) * sizeof(b->n[0]));
		b->count--;
		return true;
	}
	return false;
}

/* The words for a notice's code; NULL for a code this client does not know. */
static bool explain_code(const struct notice *n, char *out, size_t len)
{
	const char *t = n->target[0] ? n->target : NULL;
	const char *c = n->code;

	if(!strcmp(c, "blocked")){
		snprintf(out, len, "%s blocks you", t ? t : "the recipient");
	}else if(!strcmp(c, "no_recipient")){
		if(t) snprintf(out, len, "no such user %s", t);
		else snprintf(out, len, "no such recipient");
	}else if(!strcmp(c, "not_member")){
		if(t) snprintf(out, len, "you are not a member of %s", t);
		else snprintf(out, len, "you are not a member of that room");
	}else if(!strcmp(c, "rate_limited")){
		/* Rounded up to a tenth: waiting the time shown is always enough. */
		int64_t tenths = (n->retry_ms + 99) / 100;
		if(tenths < 1) tenths = 1;
		snprintf(out, len, "sending too fast, retry in %lld.%lld s",
				(long long)(tenths / 10), (long long)(tenths % 10));
	}else if(!strcmp(c, "too_large")){
		snprintf(out, len, "message too large for the server (64 KiB at most)");
	}else if(!strcmp(c, "invalid_envelope")){
		snprintf(out, len, "the server found the message malformed (%s)",
				n->message[0] ? n->message : "invalid envelope");
	}else if(!strcmp(c, "retained")){
		snprintf(out, len, "retained messages are not allowed");
	}else if(!strcmp(c, "not_sender")){
		snprintf(out, len, "you may only send as yourself");
	}else if(!strcmp(c, "topic_not_allowed")){
		snprintf(out, len, "you may not send there");
	}else if(!strcmp(c, "account_disabled")){
		snprintf(out, len, "your account is disabled: ask the operator");
	}else if(!strcmp(c, "no_account")){
		snprintf(out, len, "your account no longer exists");
	}else{
		return false;
	}
	return true;
}

void notice__explain(const struct notice *n, int reason, char *out, size_t len)
{
	if(len == 0) return;
	if(n != NULL){
		if(explain_code(n, out, len)) return;
		/* A code newer than this client: the plugin's own words. */
		snprintf(out, len, "refused by the server: %s (%s)",
				n->message[0] ? n->message : "no reason given", n->code);
		return;
	}
	switch(reason){
		case MQTT_RC_PACKET_TOO_LARGE:
			snprintf(out, len, "message too large for the server");
			break;
		case MQTT_RC_QUOTA_EXCEEDED:
			snprintf(out, len, "the server's quota is exceeded, retry later");
			break;
		default:
			/* No notice: a server without them, or more refusals at once
			 * than it explains (10 a second). */
			snprintf(out, len, "refused by the server (%s; it gave no reason)",
					mosquitto_reason_string(reason));
			break;
	}
}
