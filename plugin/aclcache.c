/* aclcache.c - the ACL's memory between checks, around the pure policy.
 *
 * acl__decide (acl.c) is the policy: it remembers nothing. The broker asks
 * through aclcache__decide, which answers from struct acl_cache (plugin.h
 * says what it keeps and why each part is sound) when it can and from the
 * policy otherwise, keeping what the policy found:
 *   - the account a username pointer names (find_user);
 *   - a message's topic, for the READs of its deliveries (decide_kept);
 *   - an account's last published-on topic, for its next WRITE there.
 * Every answer equals acl__decide's for the same request and snapshot:
 * tests/fuzz/fuzz_acl.c drives a WRITE and then READs by every account
 * through both and compares each verdict. */
#include <string.h>

#include "plugin.h"
#include "snapshot.h"

/* True if topic is the topic c keeps: the same pointer holding the same
 * bytes (a freed topic's address may come back with others). */
static bool topic_hit(const struct acl_cache *c, const char *topic)
{
	if(c->topic.topic != topic) return false;
	/* strcmp stops at topic's NUL: nothing past it is read. */
	return strcmp(c->topic.copy, topic) == 0;
}

/* Keep topic (len bytes) as naming kind: a room (which may be NULL), or
 * an inbox's recipient and sender. */
static void topic_keep(struct acl_cache *c, const char *topic, size_t len,
		enum acl_topic_kind kind, const struct snap_room *room,
		const struct snap_user *to, const struct snap_user *from)
{
	if(len >= sizeof(c->topic.copy)) return;
	memcpy(c->topic.copy, topic, len);
	c->topic.copy[len] = '\0';
	c->topic.kind = kind;
	c->topic.room = room;
	c->topic.to = to;
	c->topic.from = from;
	c->topic.topic = topic;
}

/* Remember that e's account may publish on topic (len bytes, 4 levels),
 * as far as the topic goes: kind, and its room or recipient. */
static void sent_keep(struct acl_cache_user *e, const char *topic, size_t len,
		enum acl_topic_kind kind, const struct snap_room *room, const struct snap_user *to)
{
	if(e == NULL || len >= sizeof(e->sent)) return;
	memcpy(e->sent, topic, len);
	e->sent[len] = '\0';
	e->sent_len = len;
	e->sent_kind = kind;
	e->sent_room = room;
	e->sent_to = to;
}

/* A READ of the topic c keeps, by me: what the policy finds in full, from
 * what the topic named. An inbox is mine if I am its recipient, and its
 * sent copy (a carbon) mine if I am its sender (names are unique in a
 * snapshot, and c is of this one). */
static enum acl_reason decide_kept(const struct acl_cache *c, const struct snap_user *me)
{
	if(c->topic.kind == ACL_TOPIC_ROOM){
		return c->topic.room != NULL && snapshot__user_in(&c->topic.room->members, me)
			? ACL_OK : ACL_DENY_NOT_MEMBER;
	}
	if(c->topic.to != me) return c->topic.from == me ? ACL_OK : ACL_DENY_TOPIC;
	return snapshot__user_in(&me->blocked, c->topic.from) ? ACL_DENY_BLOCKED : ACL_OK;
}

/* The account named username[0..len) (len is its strlen), through cache;
 * *entry: its entry in cache (NULL without an account). */
static const struct snap_user *find_user(const struct snapshot *s, struct acl_cache *cache,
		const char *username, size_t len, struct acl_cache_user **entry)
{
	struct acl_cache_user *e;
	const struct snap_user *u;

	*entry = NULL;
	/* Strings are 16-byte aligned: mix the pointer's other bits. */
	e = &cache->users[(size_t)((((uintptr_t)username >> 4) * SNAPSHOT_HASH_K1) >> 54)
		% ACL_CACHE_USERS];
	u = e->user;
	/* username holds len bytes before its NUL: the compare stays inside. */
	if(e->username == username && u->len == len && snapshot__name_eq(u->name, username, len)){
		*entry = e;
		return u;
	}
	u = snapshot__user(s, username, len);
	if(u != NULL){
		e->username = username;
		e->user = u;
		e->sent_kind = 0;
		*entry = e;
	}
	return u;
}

enum acl_reason aclcache__decide(const struct mqchat *m, const struct snapshot *s,
		struct acl_cache *cache, struct acl_request *req)
{
	const struct snap_user *me;
	struct acl_cache_user *e;
	struct acl_named named;
	enum acl_reason r;
	size_t ulen;

	/* No account to cache for: the policy alone. */
	if(req->topic == NULL || req->username == NULL || acl__is_register(req->username, &ulen)){
		return acl__decide(m, s, req);
	}
	me = find_user(s, cache, req->username, ulen, &e);
	if(me != NULL && me->enabled && me->kind != USER_KIND_SERVICE){
		/* The deliveries of a message whose WRITE (or first READ) was just
		 * decided: only the reader is left to check. */
		if(req->access == MOSQ_ACL_READ && topic_hit(cache, req->topic)){
			req->user = me;
			return decide_kept(cache, me);
		}
		/* The next message of a conversation: the same topic as my last
		 * one; the payload is all that is left to check, and the topic is
		 * kept for the message's deliveries. */
		if(req->access == MOSQ_ACL_WRITE && e != NULL && e->sent_kind != 0
				&& strcmp(e->sent, req->topic) == 0){
			req->user = me;
			topic_keep(cache, req->topic, e->sent_len, e->sent_kind, e->sent_room, e->sent_to, me);
			return acl__write_payload(m, req);
		}
	}
	named.kind = 0;
	named.sent = false;
	r = acl__decide_account(m, s, me, req, &named);
	if(named.kind != 0){
		/* Kept even if the payload was refused: the topic's checks do
		 * not depend on it. */
		if(named.sent){
			sent_keep(e, req->topic, named.len, named.kind, named.room, named.to);
		}
		topic_keep(cache, req->topic, named.len, named.kind, named.room, named.to, named.from);
	}
	return r;
}
