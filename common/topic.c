/* topic.c - the topic table: see topic.h.
 *
 * The plugin's ACL parses the topic of every delivery, so the split is
 * done in place with the slash mask of fast_topic.h and the table is
 * searched by the length of the kind's word first. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fast_topic.h"
#include "topic.h"

#define ROOT "chat"
/* The deepest topic is 4 levels; one more tells "too deep". */
#define MAX_LEVELS 5

struct kind_row {
	const char *name;               /* the kind's name, for tables */
	const char *word;               /* chat/<word>/... */
	int levels;                     /* 3 or 4 */
	const char *last;               /* the fixed 4th level, or NULL for <b> */
	const char *all;                /* the filter of every topic of the kind */
};

/* The table: the messages first, they are parsed most often. */
static const struct kind_row rows[TOPIC_KIND_COUNT] = {
	[TOPIC_NONE]          = { "none",         "",         0, NULL,   ROOT "/#" },
	[TOPIC_INBOX]         = { "inbox",        "inbox",    4, NULL,   ROOT "/inbox/#" },
	[TOPIC_ROOM]          = { "room",         "room",     4, NULL,   ROOT "/room/#" },
	[TOPIC_PRESENCE]      = { "presence",     "presence", 3, NULL,   ROOT "/presence/+" },
	[TOPIC_NOTICE]        = { "notice",       "notice",   3, NULL,   ROOT "/notice/+" },
	[TOPIC_RPC_REQ]       = { "rpc_req",      "rpc",      4, "req",  ROOT "/rpc/+/req" },
	[TOPIC_RPC_RESP]      = { "rpc_resp",     "rpc",      4, "resp", ROOT "/rpc/+/resp" },
	[TOPIC_REGISTER_REQ]  = { "register_req", "register", 4, "req",  ROOT "/register/+/req" },
	[TOPIC_REGISTER_RESP] = { "register_resp","register", 4, "resp", ROOT "/register/+/resp" },
	[TOPIC_SEEN]          = { "seen",         "seen",     3, NULL,   ROOT "/seen/+" },
	[TOPIC_TYPING]        = { "typing",       "typing",   4, NULL,   ROOT "/typing/#" },
	[TOPIC_ROOMTYPING]    = { "roomtyping",   "roomtyping", 4, NULL, ROOT "/roomtyping/#" },
};

bool topic__level_is(const struct topic_level *l, const char *s)
{
	size_t n = strlen(s);
	return l->n == n && memcmp(l->p, s, n) == 0;
}

/* Split t (of length len) at '/' into at most MAX_LEVELS levels; the
 * number of levels (MAX_LEVELS means "at least that many"). */
static int split(const char *t, size_t len, struct topic_level *lv)
{
	const char *start = t, *q;
	size_t off = 0;
	int n = 0;

	/* The slashes of the first 64 bytes as one mask (fast_topic.h). */
	if(len >= 16){
		const size_t lim = len < 64 ? len : 64;
		uint64_t mask = fast_topic__slashes(t, lim);

		off = lim;
		for(; mask; mask &= mask - 1){
			q = t + __builtin_ctzll(mask);
			lv[n].p = start;
			lv[n].n = (size_t)(q - start);
			if(++n == MAX_LEVELS) return n;
			start = q + 1;
		}
	}
	/* Short topics, and whatever lies past the first 64 bytes. */
	if(off == len){
		lv[n].p = start;
		lv[n].n = (size_t)(t + len - start);
		return n + 1;
	}
	for(;;){
		q = memchr(t + off, '/', len - off);
		if(q == NULL) q = t + len;
		lv[n].p = start;
		lv[n].n = (size_t)(q - start);
		n++;
		if(q == t + len || n == MAX_LEVELS) break;
		start = q + 1;
		off = (size_t)(start - t);
	}
	return n;
}

bool topic__parse(const char *topic, struct topic_parts *out)
{
	struct topic_level lv[MAX_LEVELS];
	int count, k;

	out->kind = TOPIC_NONE;
	out->a.p = out->b.p = "";
	out->a.n = out->b.n = 0;
	out->len = strlen(topic);
	count = split(topic, out->len, lv);
	if(count < 3 || count > 4 || !topic__level_is(&lv[0], ROOT)) return false;
	for(k = TOPIC_INBOX; k < TOPIC_KIND_COUNT; k++){
		const struct kind_row *r = &rows[k];

		if(r->levels != count || !topic__level_is(&lv[1], r->word)) continue;
		if(r->last != NULL && !topic__level_is(&lv[3], r->last)) continue;
		out->kind = (enum topic_kind)k;
		out->a = lv[2];
		if(r->last == NULL && count == 4) out->b = lv[3];
		return true;
	}
	return false;
}

int topic__build(char *buf, size_t size, enum topic_kind kind, const char *a, const char *b)
{
	const struct kind_row *r;
	int n;

	if(size > 0) buf[0] = '\0';
	if(kind <= TOPIC_NONE || kind >= TOPIC_KIND_COUNT || a == NULL) return -1;
	r = &rows[kind];
	if(r->levels == 3){
		n = snprintf(buf, size, ROOT "/%s/%s", r->word, a);
	}else{
		if(r->last == NULL && b == NULL) return -1;
		n = snprintf(buf, size, ROOT "/%s/%s/%s", r->word, a, r->last ? r->last : b);
	}
	if(n < 0 || (size_t)n >= size){
		if(size > 0) buf[0] = '\0';
		return -1;
	}
	return n;
}

const char *topic__filter_all(enum topic_kind kind)
{
	if(kind < TOPIC_NONE || kind >= TOPIC_KIND_COUNT) kind = TOPIC_NONE;
	return rows[kind].all;
}

bool topic__is_chat(const char *topic)
{
	return strncmp(topic, ROOT "/", sizeof(ROOT)) == 0;
}

/* True if s starts with word and a '/'. */
static bool starts_with_level(const char *s, const char *word)
{
	size_t n = strlen(word);
	return strncmp(s, word, n) == 0 && s[n] == '/';
}

bool topic__is_message(const char *topic)
{
	if(!topic__is_chat(topic)) return false;
	topic += sizeof(ROOT);
	return starts_with_level(topic, rows[TOPIC_INBOX].word)
		|| starts_with_level(topic, rows[TOPIC_ROOM].word);
}

bool topic__is_typing(const char *topic)
{
	if(!topic__is_chat(topic)) return false;
	topic += sizeof(ROOT);
	return starts_with_level(topic, rows[TOPIC_TYPING].word)
		|| starts_with_level(topic, rows[TOPIC_ROOMTYPING].word);
}

const char *topic__kind_name(enum topic_kind kind)
{
	if(kind < TOPIC_NONE || kind >= TOPIC_KIND_COUNT) kind = TOPIC_NONE;
	return rows[kind].name;
}

const char *topic__kind_word(enum topic_kind kind)
{
	if(kind <= TOPIC_NONE || kind >= TOPIC_KIND_COUNT) return "";
	return rows[kind].word;
}
