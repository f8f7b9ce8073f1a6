/* fuzz_acl.c - libFuzzer harness for the plugin's topic policy (acl__decide).
 *
 * A fixed snapshot (users, a device, a disabled user, the service, rooms,
 * blocks) and a request made from the input:
 *   byte 0  access: SUBSCRIBE, UNSUBSCRIBE, READ, WRITE or an unknown value
 *   byte 1  bit 0 retain, bits 1-2 registration mode, bit 3 small max_payload
 *   then    username \0 clientid \0 topic \0 payload   (a missing part is NULL)
 * The decision must equal acl_ref_allows, an independent reading of the
 * topic table of docs/PROTOCOL.md (with carbons, typing and the envelope
 * types of each sender) written here (whole topic split, no level
 * cap, lookups by string), and be deterministic. The topic and payload sit
 * in exact-size buffers, so ASan sees any read past them.
 *
 * Then the cached path (aclcache__decide, what the broker calls) must give
 * the policy's verdict every time while its caches fill and hit: the
 * request itself, a WRITE of the topic and payload twice (the second finds
 * the account's kept topic), a READ of it by every account (finding the
 * kept topic), and the READs again after the topic's bytes change at the
 * same address (one byte, then one byte shorter). */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "envelope.h"
#include "err.h"
#include "plugin.h"
#include "fuzz.h"

#define ACL_REF_MAX_LEVELS 64

struct acl_ref_user {
	const char *name;
	enum user_kind kind;
	bool enabled;
};

static const struct acl_ref_user acl_ref_users[] = {
	{"alice", USER_KIND_USER, true},
	{"bob", USER_KIND_USER, true},
	{"carol", USER_KIND_USER, false},
	{"eve", USER_KIND_USER, true},
	{"dev1", USER_KIND_DEVICE, true},
	{"archiver", USER_KIND_SERVICE, true},
};
/* room, member */
static const char *acl_ref_members[][2] = {
	{"r1", "alice"}, {"r1", "bob"}, {"r1", "dev1"}, {"r1", "carol"}, {"r2", "eve"},
};
static const char *acl_ref_rooms[] = {"r1", "r2", "empty"};
/* user, blocked */
static const char *acl_ref_blocks[][2] = {
	{"bob", "eve"}, {"alice", "eve"}, {"eve", "alice"},
};

#define ACL_N(a) (sizeof(a) / sizeof((a)[0]))

static struct snapshot *acl_snapshot(void)
{
	static struct snapshot *s;
	size_t i;

	if(s) return s;
	s = snapshot__new();
	FUZZ_ASSERT(s != NULL);
	for(i=0; i<ACL_N(acl_ref_users); i++){
		FUZZ_ASSERT(snapshot__add_user(s, acl_ref_users[i].name, acl_ref_users[i].kind,
				acl_ref_users[i].enabled, "$pbkdf2-sha512$1$AA==$AA==") != NULL);
	}
	for(i=0; i<ACL_N(acl_ref_rooms); i++){
		FUZZ_ASSERT(snapshot__add_room(s, acl_ref_rooms[i]) != NULL);
	}
	for(i=0; i<ACL_N(acl_ref_members); i++){
		FUZZ_ASSERT(snapshot__add_member(s, acl_ref_members[i][0], acl_ref_members[i][1]) == MQC_OK);
	}
	for(i=0; i<ACL_N(acl_ref_blocks); i++){
		FUZZ_ASSERT(snapshot__add_block(s, acl_ref_blocks[i][0], acl_ref_blocks[i][1]) == MQC_OK);
	}
	return s;
}

struct acl_ref_level {
	const char *p;
	size_t n;
};

static bool acl_lv(const struct acl_ref_level *l, const char *s)
{
	return l->n == strlen(s) && memcmp(l->p, s, l->n) == 0;
}

static const struct acl_ref_user *acl_ref_user(const char *name, size_t n)
{
	size_t i;

	for(i=0; i<ACL_N(acl_ref_users); i++){
		if(strlen(acl_ref_users[i].name) == n && memcmp(acl_ref_users[i].name, name, n) == 0){
			return &acl_ref_users[i];
		}
	}
	return NULL;
}

static bool acl_ref_pair(const char *(*pairs)[2], size_t count, const char *a,
		const char *b, size_t bn)
{
	size_t i;

	for(i=0; i<count; i++){
		if(!strcmp(pairs[i][0], a) && strlen(pairs[i][1]) == bn && memcmp(pairs[i][1], b, bn) == 0){
			return true;
		}
	}
	return false;
}

static bool acl_ref_room(const struct acl_ref_level *l)
{
	size_t i;

	for(i=0; i<ACL_N(acl_ref_rooms); i++){
		if(acl_lv(l, acl_ref_rooms[i])) return true;
	}
	return false;
}

static int acl_split(const char *topic, struct acl_ref_level *lv)
{
	int n = 0;
	const char *start = topic, *t = topic;

	for(;; t++){
		if(*t == '/' || *t == '\0'){
			if(n == ACL_REF_MAX_LEVELS) return n + 1;
			lv[n].p = start;
			lv[n].n = (size_t)(t - start);
			n++;
			if(*t == '\0') return n;
			start = t + 1;
		}
	}
}

static bool acl_sub_tail(const struct acl_ref_level *l)
{
	return acl_lv(l, "#") || acl_lv(l, "+") || names__valid(l->p, l->n);
}

#define ACL_T(t) (1u << (t))
/* What a person may send (text, receipt, reaction); what a service may
 * send to a room (event, edit, delete) and to a person (edit, delete,
 * read). */
#define ACL_PERSON (ACL_T(ENVELOPE_TEXT) | ACL_T(ENVELOPE_RECEIPT) | ACL_T(ENVELOPE_REACTION))
#define ACL_SERVICE_ROOM (ACL_T(ENVELOPE_EVENT) | ACL_T(ENVELOPE_EDIT) | ACL_T(ENVELOPE_DELETE))
#define ACL_SERVICE_INBOX (ACL_T(ENVELOPE_EDIT) | ACL_T(ENVELOPE_DELETE) | ACL_T(ENVELOPE_READ))

/* A valid envelope of one of the types. */
static bool acl_envelope_ok(const struct mqchat *m, const struct acl_request *r, unsigned types)
{
	struct envelope env;

	return !r->retain && r->payloadlen <= m->cfg.max_payload
		&& envelope__parse(r->payload, r->payloadlen, &env, NULL)
		&& (types & ACL_T(env.type)) != 0;
}

/* A valid typing indicator. */
static bool acl_typing_ok(const struct mqchat *m, const struct acl_request *r)
{
	bool typing;

	return !r->retain && r->payloadlen <= m->cfg.max_payload
		&& envelope__parse_typing(r->payload, r->payloadlen, &typing, NULL);
}

/* me is a member of the room named by l. */
static bool acl_ref_member(const struct acl_ref_level *l, const struct acl_ref_user *me)
{
	size_t i;

	if(!acl_ref_room(l)) return false;
	for(i=0; i<ACL_N(acl_ref_members); i++){
		if(acl_lv(l, acl_ref_members[i][0]) && !strcmp(acl_ref_members[i][1], me->name)) return true;
	}
	return false;
}

/* a and b are members of one room. */
static bool acl_ref_share_room(const struct acl_ref_user *a, const struct acl_ref_user *b)
{
	size_t i, j;

	for(i=0; i<ACL_N(acl_ref_members); i++){
		if(strcmp(acl_ref_members[i][1], a->name) != 0) continue;
		for(j=0; j<ACL_N(acl_ref_members); j++){
			if(!strcmp(acl_ref_members[j][0], acl_ref_members[i][0])
					&& !strcmp(acl_ref_members[j][1], b->name)){
				return true;
			}
		}
	}
	return false;
}

/* A person or device me may write to the account named by l: it exists,
 * is enabled, is no service, and does not block me. */
static bool acl_ref_writable(const struct acl_ref_level *l, const struct acl_ref_user *me)
{
	const struct acl_ref_user *to = acl_ref_user(l->p, l->n);

	return to != NULL && to->enabled && to->kind != USER_KIND_SERVICE
		&& !acl_ref_pair(acl_ref_blocks, ACL_N(acl_ref_blocks), to->name, me->name, strlen(me->name));
}

static bool acl_json_object(const struct acl_request *r)
{
	json_t *j;
	bool ok;

	if(r->payloadlen == 0 || !utf8__valid(r->payload, r->payloadlen)) return false;
	j = json_loadb(r->payload, r->payloadlen, JSON_REJECT_DUPLICATES, NULL);
	ok = j && json_is_object(j);
	json_decref(j);
	return ok;
}

static bool acl_ref_allows(const struct mqchat *m, const struct acl_request *r)
{
	struct acl_ref_level lv[ACL_REF_MAX_LEVELS];
	const struct acl_ref_user *me, *to;
	int n;
	bool sub = r->access == MOSQ_ACL_SUBSCRIBE, rd = r->access == MOSQ_ACL_READ;
	bool wr = r->access == MOSQ_ACL_WRITE, unsub = r->access == MOSQ_ACL_UNSUBSCRIBE;

	if(r->username == NULL || r->topic == NULL) return false;
	n = acl_split(r->topic, lv);

	if(!strcmp(r->username, REGISTER_USER)){
		if(r->clientid == NULL) return false;
		if(n != 4 || !acl_lv(&lv[0], "chat") || !acl_lv(&lv[1], "register")
				|| !acl_lv(&lv[2], r->clientid)){
			return false;
		}
		if(sub || unsub || rd) return acl_lv(&lv[3], "resp");
		return wr && acl_lv(&lv[3], "req") && !r->retain && r->payloadlen <= m->cfg.max_payload
			&& r->payloadlen <= 4096 && acl_json_object(r);
	}

	me = acl_ref_user(r->username, strlen(r->username));
	if(me == NULL || !me->enabled) return false;

	if(me->kind == USER_KIND_SERVICE){
		const char *t = r->topic;
		if(unsub) return true;
		if(sub && !strncmp(t, "$share/", 7)){
			const char *g = t + 7, *slash = strchr(g, '/');
			if(slash == NULL || slash == g) return false;
			if(memchr(g, '+', (size_t)(slash - g)) || memchr(g, '#', (size_t)(slash - g))) return false;
			t = slash + 1;
		}
		if(sub || rd) return !strncmp(t, "chat/", 5);
		if(!wr || r->retain || r->payloadlen > m->cfg.max_payload) return false;
		/* A room's membership event, edit or delete, as itself, of a
		 * room that exists. */
		if(n == 4 && acl_lv(&lv[0], "chat") && acl_lv(&lv[1], "room")){
			return acl_ref_room(&lv[2]) && acl_lv(&lv[3], me->name)
				&& acl_envelope_ok(m, r, ACL_SERVICE_ROOM);
		}
		/* A person's edit, delete or read marker, as itself. */
		if(n == 4 && acl_lv(&lv[0], "chat") && acl_lv(&lv[1], "inbox")){
			to = acl_ref_user(lv[2].p, lv[2].n);
			return to != NULL && to->enabled && to->kind != USER_KIND_SERVICE
				&& acl_lv(&lv[3], me->name) && acl_envelope_ok(m, r, ACL_SERVICE_INBOX);
		}
		if(n != 4 || !acl_lv(&lv[0], "chat") || !acl_lv(&lv[3], "resp")) return false;
		if(acl_lv(&lv[1], "rpc")) return names__valid(lv[2].p, lv[2].n);
		if(acl_lv(&lv[1], "register")){
			size_t k = strlen(REGISTER_USER);
			return lv[2].n > k + 1 && memcmp(lv[2].p, REGISTER_USER, k) == 0
				&& lv[2].p[k] == '@' && names__valid_device(lv[2].p + k + 1, lv[2].n - k - 1);
		}
		return false;
	}

	/* A user or a device. */
	if(unsub) return true;
	if(n == 3 && acl_lv(&lv[0], "chat") && acl_lv(&lv[1], "presence")){
		if(sub) return acl_sub_tail(&lv[2]);
		if(rd){
			/* Shown by default to contacts: a shared room (the snapshot
			 * has no added contacts); a name no account has is free. */
			const struct acl_ref_user *t = acl_ref_user(lv[2].p, lv[2].n);

			if(!names__valid(lv[2].p, lv[2].n)) return false;
			return t == NULL || t == me || t->kind == USER_KIND_SERVICE || acl_ref_share_room(t, me);
		}
		return false;
	}
	if(n != 4 || !acl_lv(&lv[0], "chat")) return false;
	if(acl_lv(&lv[1], "inbox")){
		if(wr){
			if(!acl_lv(&lv[3], me->name)) return false;
			to = acl_ref_user(lv[2].p, lv[2].n);
			if(to == NULL || !to->enabled || to->kind == USER_KIND_SERVICE) return false;
			if(acl_ref_pair(acl_ref_blocks, ACL_N(acl_ref_blocks), to->name, me->name, strlen(me->name))){
				return false;
			}
			return acl_envelope_ok(m, r, ACL_PERSON);
		}
		/* My copies of what I send (carbons). */
		if(sub && acl_lv(&lv[2], "+")) return acl_lv(&lv[3], me->name);
		if(rd && !acl_lv(&lv[2], me->name)) return acl_lv(&lv[3], me->name);
		if(!acl_lv(&lv[2], me->name)) return false;
		if(sub) return acl_sub_tail(&lv[3]);
		if(rd) return !acl_ref_pair(acl_ref_blocks, ACL_N(acl_ref_blocks), me->name, lv[3].p, lv[3].n);
		return false;
	}
	if(acl_lv(&lv[1], "typing")){
		if(wr) return acl_lv(&lv[3], me->name) && acl_ref_writable(&lv[2], me) && acl_typing_ok(m, r);
		if(!acl_lv(&lv[2], me->name)) return false;
		if(sub) return acl_sub_tail(&lv[3]);
		if(rd) return !acl_ref_pair(acl_ref_blocks, ACL_N(acl_ref_blocks), me->name, lv[3].p, lv[3].n);
		return false;
	}
	if(acl_lv(&lv[1], "roomtyping")){
		if(!acl_ref_member(&lv[2], me)) return false;
		if(wr) return acl_lv(&lv[3], me->name) && acl_typing_ok(m, r);
		if(sub) return acl_sub_tail(&lv[3]);
		return rd;
	}
	if(acl_lv(&lv[1], "room")){
		size_t i;
		bool member = false;
		if(!acl_ref_room(&lv[2])) return false;
		for(i=0; i<ACL_N(acl_ref_members); i++){
			if(acl_lv(&lv[2], acl_ref_members[i][0]) && !strcmp(acl_ref_members[i][1], me->name)){
				member = true;
			}
		}
		if(!member) return false;
		if(wr) return acl_lv(&lv[3], me->name) && acl_envelope_ok(m, r, ACL_PERSON);
		if(sub) return acl_sub_tail(&lv[3]);
		return rd;
	}
	if(acl_lv(&lv[1], "rpc")){
		if(!acl_lv(&lv[2], me->name)) return false;
		if(wr) return acl_lv(&lv[3], "req") && !r->retain && r->payloadlen <= m->cfg.max_payload;
		if(sub || rd) return acl_lv(&lv[3], "resp");
	}
	return false;
}

/* req through the policy and through cache: the same verdict, account
 * and receipt flag. */
static void acl_same(const struct mqchat *m, const struct snapshot *s, struct acl_cache *cache,
		const struct acl_request *req)
{
	struct acl_request pure = *req, cached = *req;
	enum acl_reason r = acl__decide(m, s, &pure);

	FUZZ_ASSERT(aclcache__decide(m, s, cache, &cached) == r);
	FUZZ_ASSERT(cached.user == pure.user);
	FUZZ_ASSERT(cached.receipt == pure.receipt);
	FUZZ_ASSERT(cached.typing == pure.typing);
}

/* A READ of req's topic by every account, by the unknown "nobody", and by
 * req's own username, each compared. */
static void acl_same_reads(const struct mqchat *m, const struct snapshot *s,
		struct acl_cache *cache, const struct acl_request *req)
{
	struct acl_request rd = *req;
	size_t i;

	rd.access = MOSQ_ACL_READ;
	rd.payload = NULL;
	rd.payloadlen = 0;
	for(i=0; i<=ACL_N(acl_ref_users); i++){
		rd.username = i < ACL_N(acl_ref_users) ? acl_ref_users[i].name : "nobody";
		rd.clientid = rd.username;
		acl_same(m, s, cache, &rd);
	}
	rd.username = req->username;
	rd.clientid = req->clientid;
	acl_same(m, s, cache, &rd);
}

static void acl_cached_path(const struct mqchat *m, const struct snapshot *s,
		const struct acl_request *req, char *topic)
{
	/* Static: too big for a fuzzer's stack; emptied for every input, as
	 * the plugin empties it for every snapshot. */
	static struct acl_cache cache;
	struct acl_request wr = *req;
	size_t len;

	memset(&cache, 0, sizeof(cache));
	acl_same(m, s, &cache, req);
	wr.access = MOSQ_ACL_WRITE;
	acl_same(m, s, &cache, &wr);
	acl_same(m, s, &cache, &wr);
	acl_same_reads(m, s, &cache, req);
	if(topic == NULL || (len = strlen(topic)) == 0) return;
	topic[len - 1] = topic[len - 1] == 'a' ? 'b' : 'a';
	acl_same_reads(m, s, &cache, req);
	acl_same(m, s, &cache, &wr);
	topic[len - 1] = '\0';
	acl_same_reads(m, s, &cache, req);
	acl_same(m, s, &cache, &wr);
}

/* Cut the next NUL-terminated part off [*p, end); NULL if there is none. */
static char *acl_part(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	char *s;

	if(nul == NULL) return NULL;
	s = malloc((size_t)(nul - *p) + 1);
	FUZZ_ASSERT(s != NULL);
	memcpy(s, *p, (size_t)(nul - *p) + 1);
	*p = nul + 1;
	return s;
}

FUZZ_TARGET(acl)
{
	static const int access_of[] = {
		MOSQ_ACL_SUBSCRIBE, MOSQ_ACL_UNSUBSCRIBE, MOSQ_ACL_READ, MOSQ_ACL_WRITE, 0, 16,
	};
	static struct mqchat m;
	struct snapshot *s = acl_snapshot();
	struct acl_request req;
	const uint8_t *p = data + 2, *end = data + size;
	char *username = NULL, *clientid = NULL, *topic = NULL;
	uint8_t *payload = NULL;
	enum acl_reason r;
	int mode;

	if(size < 2) return 0;
	memset(&req, 0, sizeof(req));
	req.access = access_of[data[0] % ACL_N(access_of)];
	req.retain = data[1] & 1;
	mode = (data[1] >> 1) & 3;
	m.cfg.registration = mode == 1 ? REGISTRATION_INVITE : mode == 2 ? REGISTRATION_OPEN : REGISTRATION_OFF;
	m.cfg.max_payload = (data[1] & 8) ? CONFIG_MIN_MAX_PAYLOAD : CONFIG_DEFAULT_MAX_PAYLOAD;

	username = acl_part(&p, end);
	if(username) clientid = acl_part(&p, end);
	if(clientid) topic = acl_part(&p, end);
	if(topic){
		/* The rest is the payload, in a buffer of exactly its size. */
		payload = malloc(end > p ? (size_t)(end - p) : 1);
		FUZZ_ASSERT(payload != NULL);
		memcpy(payload, p, (size_t)(end - p));
		req.payloadlen = (uint32_t)(end - p);
	}
	/* An empty client id stands for "none" (the broker gives NULL). */
	req.username = username;
	req.clientid = clientid && *clientid ? clientid : NULL;
	req.topic = topic;
	req.payload = payload;

	r = acl__decide(&m, s, &req);
	FUZZ_ASSERT(r >= ACL_OK && r < ACL_REASON_COUNT);
	FUZZ_ASSERT(acl__decide(&m, s, &req) == r);
	FUZZ_ASSERT((r == ACL_OK) == acl_ref_allows(&m, &req));
	acl_cached_path(&m, s, &req, topic);

	free(payload);
	free(topic);
	free(clientid);
	free(username);
	return 0;
}
