/* rpc.c - requests on chat/rpc/<user>/req, answers on chat/rpc/<user>/resp.
 *
 * The user is the topic's, never the payload's: the plugin lets only <user>
 * publish there. A user reads only their own conversations and the rooms
 * they belong to now (membership read from auth.db on each request), and of
 * those only what was stored since their account, or the room, was created:
 * a name may have had another holder before (archive.h). Every request gets
 * an answer, bad ones an error with a code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt.h"

#include "archive.h"
#include "archkey.h"
#include "daemon.h"
#include "devtoken.h"
#include "envelope.h"
#include "err.h"
#include "grow.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "nick.h"
#include "nick_answer.h"
#include "pwhash.h"
#include "rpc_edit.h"
#include "rpc_conv.h"
#include "rpc_internal.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

/* Larger requests are refused unread. */
#define RPC_MAX_REQUEST 16384
#define RPC_MAX_ID 128

typedef json_t *(*rpc_fn)(struct rpc_req *r);

json_t *rpc__ok(struct rpc_req *r)
{
	return json_pack("{sOsb}", "id", r->id, "ok", 1);
}

json_t *rpc__ok_with(struct rpc_req *r, const char *key, json_t *value)
{
	json_t *resp = rpc__ok(r);

	if(resp == NULL){
		json_decref(value);
		return NULL;
	}
	if(json_object_set_new(resp, key, value)){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

json_t *rpc__fail(json_t *id, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The message may quote the request (jansson's parse error does), which
	 * can be invalid UTF-8 or cut mid-character: JSON strings must be valid
	 * UTF-8, so keep only the ASCII of it rather than give no answer. */
	if(!utf8__valid(msg, strlen(msg))){
		for(i=0; msg[i]; i++){
			if((unsigned char)msg[i] >= 0x80) msg[i] = '?';
		}
	}
	return json_pack("{sOsbssss}", "id", id ? id : json_null(), "ok", 0, "error", code, "message", msg);
}

bool rpc__opt_int(json_t *req, const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
	json_t *v = json_object_get(req, key);

	if(v == NULL) return true;
	if(!json_is_integer(v)) return false;
	if(json_integer_value(v) < min || json_integer_value(v) > max) return false;
	*out = json_integer_value(v);
	return true;
}

/* An optional name member: NULL if absent; *bad set if present but not a
 * valid name. */
const char *rpc__opt_name(json_t *req, const char *key, bool *bad)
{
	json_t *v = json_object_get(req, key);

	if(v == NULL) return NULL;
	if(!json_is_string(v) || !names__valid_str(json_string_value(v))){
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

const char *rpc__opt_device(json_t *req, const char *key, bool *bad)
{
	json_t *v = json_object_get(req, key);

	if(v == NULL) return NULL;
	if(!json_is_string(v) || !names__valid_device(json_string_value(v), json_string_length(v))){
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

struct name_list {
	char **v;
	size_t n, cap;
	int err;
};

static int push_name(struct name_list *l, const char *s)
{
	char **v = grow__one(l->v, &l->cap, l->n, sizeof(*v), 8);

	if(v == NULL) return l->err = MQC_ERR_NOMEM;
	l->v = v;
	l->v[l->n] = strdup(s);
	if(l->v[l->n] == NULL) return l->err = MQC_ERR_NOMEM;
	l->n++;
	return MQC_OK;
}

static void free_names(struct name_list *l)
{
	size_t i;

	for(i = 0; i < l->n; i++) free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int room_of_cb(const char *room, const char *user, void *arg)
{
	(void)user;
	return push_name(arg, room);
}

int rpc__rooms_add(const char *room, int64_t created, void *rooms)
{
	struct rpc_rooms *l = rooms;
	struct archive_room *v = grow__one(l->v, &l->cap, l->n, sizeof(*v), 8);
	char **names;

	if(v == NULL) return MQC_ERR_NOMEM;
	l->v = v;
	names = grow__one(l->names, &l->ncap, l->n, sizeof(*names), 8);
	if(names == NULL) return MQC_ERR_NOMEM;
	l->names = names;
	if((l->names[l->n] = strdup(room)) == NULL) return MQC_ERR_NOMEM;
	l->v[l->n].name = l->names[l->n];
	l->v[l->n].since = created;
	l->n++;
	return MQC_OK;
}

void rpc__rooms_free(struct rpc_rooms *l)
{
	size_t i;

	for(i = 0; i < l->n; i++) free(l->names[i]);
	free(l->names);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int user_of_cb(const char *room, const char *user, void *arg)
{
	(void)room;
	return push_name(arg, user);
}

static int blocked_cb(const char *user, const char *blocked, void *arg)
{
	(void)user;
	return push_name(arg, blocked);
}

/* New reference: the names as a JSON array. */
static json_t *names_json(const struct name_list *l)
{
	json_t *a = json_array();
	size_t i;

	for(i = 0; a && i < l->n; i++){
		if(json_array_append_new(a, json_string(l->v[i]))){
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The largest JSON text of one message in an answer, and of the body part
 * of a `get` answer. */
#define RPC_MAX_MSG (RPC_MAX_ANSWER - RPC_FRAME)

/* How many bytes byte c takes inside a JSON string as jansson writes it
 * (JSON_COMPACT, no JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH). */
static size_t esc_len(unsigned char c)
{
	if(c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') return 2;
	return c < 0x20 ? 6 : 1;
}

/* The length of the longest prefix of the UTF-8 text s (len bytes) that
 * ends on a character boundary and, as a JSON string with its quotes,
 * takes at most budget bytes. */
static size_t fit_prefix(const char *s, size_t len, size_t budget)
{
	size_t i = 0, used = 2, fits = 0;

	while(i < len){
		size_t add = esc_len((unsigned char)s[i]);

		if(used + add > budget) break;
		used += add;
		i++;
		if(i == len || ((unsigned char)s[i] & 0xC0) != 0x80) fits = i;
	}
	return fits;
}

static size_t json_len(json_t *j)
{
	return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

/* Cut the body of message m (borrowed) until m's JSON takes at most max
 * bytes, marking it "truncated":true with the whole body's length in
 * "body_bytes" (the `get` op returns the rest). MQC_OK or MQC_ERR_NOMEM. */
static int truncate_msg(json_t *m, size_t max)
{
	json_t *body = json_object_get(m, "body"), *cut;
	size_t blen, rest, k;
	char *copy;

	if(!json_is_string(body)) return MQC_OK;
	blen = json_string_length(body);
	copy = malloc(blen + 1);
	if(copy == NULL) return MQC_ERR_NOMEM;
	memcpy(copy, json_string_value(body), blen + 1);
	if(json_object_set_new(m, "truncated", json_true())
			|| json_object_set_new(m, "body_bytes", json_integer((json_int_t)blen))
			|| json_object_set_new(m, "body", json_string(""))){
		free(copy);
		return MQC_ERR_NOMEM;
	}
	rest = json_len(m) - 2; /* without the empty body's quotes */
	k = rest < max ? fit_prefix(copy, blen, max - rest) : 0;
	cut = json_stringn(copy, k);
	free(copy);
	if(cut == NULL || json_object_set_new(m, "body", cut)) return MQC_ERR_NOMEM;
	return MQC_OK;
}

bool rpc__fit_messages(json_t *msgs, size_t frame, int *rc)
{
	size_t i, n = json_array_size(msgs), total = frame;
	bool alone = frame <= RPC_FRAME;

	*rc = MQC_OK;
	for(i = 0; i < n; i++){
		json_t *m = json_array_get(msgs, i);
		size_t len = json_len(m) + 1;

		if(i == 0 && !alone && total + len > RPC_MAX_ANSWER) break;
		if(i == 0 && len > RPC_MAX_MSG){
			*rc = truncate_msg(m, RPC_MAX_MSG - 1);
			if(*rc != MQC_OK) return false;
			len = json_len(m) + 1;
		}
		if(i > 0 && total + len > RPC_MAX_ANSWER) break;
		total += len;
	}
	if(i == n) return false;
	while(json_array_size(msgs) > i){
		json_array_remove(msgs, json_array_size(msgs) - 1);
	}
	return true;
}

json_t *rpc__messages_answer(struct rpc_req *r, json_t *msgs, bool more)
{
	json_t *resp;
	int rc;

	if(msgs == NULL){
		return rpc__fail(r->id, "internal", "archive read failed: %s", archive__errmsg(r->d->ar));
	}
	if(rpc__fit_messages(msgs, RPC_FRAME, &rc)) more = true;
	if(rc != MQC_OK){
		json_decref(msgs);
		return NULL;
	}
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set_new(resp, "messages", msgs)
			|| json_object_set_new(resp, "more", json_boolean(more))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* When the requester's account was created, into *created; NULL if so,
 * else the answer to give (new reference): the account may have been
 * deleted while its request waited. */
static json_t *my_created(struct rpc_req *r, int64_t *created)
{
	struct userdb_user u;
	int rc = userdb__user_get(r->d->udb, r->user, &u);

	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot read your account: %s", mqc_strerror(rc));
	*created = u.created;
	return NULL;
}

/* What of room the requester may read: since when (the room's created),
 * into *since; NULL if so, else the answer to give (new reference). A room
 * that does not exist is as forbidden as one of others (no probing). */
static json_t *room_since(struct rpc_req *r, const char *room, int64_t *since)
{
	int rc;

	if(!userdb__is_member(r->d->udb, room, r->user)){
		return rpc__fail(r->id, "forbidden", "you are not a member of that room");
	}
	rc = userdb__room_get(r->d->udb, room, NULL, since);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "forbidden", "you are not a member of that room");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot read the room: %s", mqc_strerror(rc));
	return NULL;
}

/* Start a read transaction of auth.db for r: NULL, or the answer when it
 * cannot start. */
static json_t *begin_read(struct rpc_req *r)
{
	if(userdb__begin_read(r->d->udb) == MQC_OK) return NULL;
	return rpc__fail(r->id, "internal", "cannot read the user store: %s", userdb__errmsg(r->d->udb));
}

static json_t *op_history(struct rpc_req *r)
{
	char conv[2 * NAME_MAX_LEN + 8];
	const char *with, *room;
	json_int_t before = 0, limit = 50;
	bool bad = false, more = false;
	int64_t since = 0;
	json_t *msgs, *refused;

	with = rpc__opt_name(r->req, "with", &bad);
	room = rpc__opt_name(r->req, "room", &bad);
	if(bad) return rpc__fail(r->id, "bad_request", "\"with\" and \"room\" must be valid names");
	if((with == NULL) == (room == NULL)){
		return rpc__fail(r->id, "bad_request", "give exactly one of \"with\" and \"room\"");
	}
	if(!rpc__opt_int(r->req, "before", 1, INT64_MAX, &before)){
		return rpc__fail(r->id, "bad_request", "\"before\" must be a positive integer (a seq)");
	}
	if(!rpc__opt_int(r->req, "limit", 1, 100, &limit)){
		return rpc__fail(r->id, "bad_request", "\"limit\" must be an integer from 1 to 100");
	}
	/* Membership and created times from one snapshot of auth.db. */
	if((refused = begin_read(r)) != NULL) return refused;
	if(room){
		refused = room_since(r, room, &since);
		snprintf(conv, sizeof(conv), "r:%s", room);
	}else{
		refused = my_created(r, &since);
		archkey__dm_conv(r->user, with, conv, sizeof(conv));
	}
	userdb__rollback(r->d->udb);
	if(refused) return refused;
	/* Two statements: argument evaluation order is unspecified. */
	msgs = archive__history(r->d->ar, conv, since, before, (int)limit, &more);
	return rpc__messages_answer(r, msgs, more);
}

static json_t *op_sync(struct rpc_req *r)
{
	struct rpc_rooms rooms = {0};
	json_int_t after = 0, limit = 100;
	json_t *msgs, *refused, *changes;
	int64_t since = 0;
	bool more = false;
	int rc;

	if(!rpc__opt_int(r->req, "after", 0, INT64_MAX, &after)){
		return rpc__fail(r->id, "bad_request", "\"after\" must be an integer >= 0 (a seq)");
	}
	if(!rpc__opt_int(r->req, "limit", 1, 500, &limit)){
		return rpc__fail(r->id, "bad_request", "\"limit\" must be an integer from 1 to 500");
	}
	changes = json_object_get(r->req, "changes");
	if(changes != NULL && !json_is_boolean(changes)){
		return rpc__fail(r->id, "bad_request", "\"changes\" must be true or false");
	}
	if((refused = begin_read(r)) != NULL) return refused;
	refused = my_created(r, &since);
	rc = refused ? MQC_OK : userdb__rooms_of(r->d->udb, r->user, rpc__rooms_add, &rooms);
	userdb__rollback(r->d->udb);
	if(refused == NULL && rc != MQC_OK){
		refused = rpc__fail(r->id, "internal", "cannot read your rooms: %s", mqc_strerror(rc));
	}
	if(refused){
		rpc__rooms_free(&rooms);
		return refused;
	}
	msgs = archive__sync(r->d->ar, r->user, since, rooms.v, rooms.n, after, (int)limit,
			json_is_true(changes), &more);
	rpc__rooms_free(&rooms);
	return rpc__messages_answer(r, msgs, more);
}

/* May the requester read archived message m (borrowed)? As history and
 * sync: a DM they sent or received since their account was created, a
 * room message of a room they are in now, since the room was created.
 * MQC_OK with *mine, or an MQC_ERR_* of the user store. */
static int may_read(struct rpc_req *r, json_t *m, bool *mine)
{
	json_t *room = json_object_get(m, "room"), *to = json_object_get(m, "to");
	json_t *from = json_object_get(m, "from");
	json_int_t server_ts = json_integer_value(json_object_get(m, "server_ts"));
	struct userdb_user u;
	int64_t since = 0;
	int rc;

	*mine = false;
	if(json_is_string(room)){
		if(!userdb__is_member(r->d->udb, json_string_value(room), r->user)) return MQC_OK;
		rc = userdb__room_get(r->d->udb, json_string_value(room), NULL, &since);
	}else{
		if(!(json_is_string(to) && strcmp(json_string_value(to), r->user) == 0)
				&& !(json_is_string(from) && strcmp(json_string_value(from), r->user) == 0)){
			return MQC_OK;
		}
		rc = userdb__user_get(r->d->udb, r->user, &u);
		if(rc == MQC_OK) since = u.created;
	}
	if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
	if(rc != MQC_OK) return rc;
	*mine = server_ts >= since;
	return MQC_OK;
}

/* get's answer for a membership event m (borrowed): seq, type and the
 * event's members, no body. */
static json_t *event_answer(struct rpc_req *r, json_int_t seq, json_t *m)
{
	static const char *const keys[] = {"type", "event", "user", "by", "deleted", "deleted_by"};
	json_t *resp = rpc__ok(r), *v;
	size_t i;

	if(resp == NULL || json_object_set_new(resp, "seq", json_integer(seq))){
		json_decref(resp);
		return NULL;
	}
	for(i = 0; i < sizeof(keys) / sizeof(keys[0]); i++){
		v = json_object_get(m, keys[i]);
		if(v != NULL && json_object_set(resp, keys[i], v)){
			json_decref(resp);
			return NULL;
		}
	}
	return resp;
}

/* get: the body of one message the user may read, in parts that each fit
 * an answer. The user may read what history and sync would give them
 * (may_read); any other seq is `not_found`, so nobody learns what exists. */
static json_t *op_get(struct rpc_req *r)
{
	json_int_t seq = 0, offset = 0;
	json_t *found, *m, *body, *resp = NULL;
	const char *s;
	size_t blen, k;
	bool mine = false;
	int rc = MQC_OK;

	if(json_object_get(r->req, "seq") == NULL || !rpc__opt_int(r->req, "seq", 1, INT64_MAX, &seq)){
		return rpc__fail(r->id, "bad_request", "\"seq\" must be a positive integer");
	}
	if(!rpc__opt_int(r->req, "offset", 0, INT64_MAX, &offset)){
		return rpc__fail(r->id, "bad_request", "\"offset\" must be an integer >= 0");
	}
	found = archive__get(r->d->ar, seq);
	if(found == NULL) return rpc__fail(r->id, "internal", "archive read failed: %s", archive__errmsg(r->d->ar));
	m = json_array_get(found, 0);
	if(m != NULL){
		rc = userdb__begin_read(r->d->udb);
		if(rc == MQC_OK) rc = may_read(r, m, &mine);
		userdb__rollback(r->d->udb);
	}
	if(rc != MQC_OK){
		json_decref(found);
		return rpc__fail(r->id, "internal", "cannot read the user store: %s", mqc_strerror(rc));
	}
	if(!mine){
		json_decref(found);
		return rpc__fail(r->id, "not_found", "no such message");
	}
	if(!json_is_string(json_object_get(m, "body")) || json_object_get(m, "deleted") != NULL){
		/* A membership event has no body: its own members are the
		 * answer; a tombstone's is when and by whom (docs/PROTOCOL.md,
		 * "get"). */
		resp = event_answer(r, seq, m);
		json_decref(found);
		return resp;
	}
	body = json_object_get(m, "body");
	s = json_string_value(body);
	blen = json_string_length(body);
	if((size_t)offset > blen || ((size_t)offset < blen && ((unsigned char)s[offset] & 0xC0) == 0x80)){
		json_decref(found);
		return rpc__fail(r->id, "bad_request", "\"offset\" must be a character boundary within the body (%zu bytes)", blen);
	}
	/* The part's own frame (seq, offset, next, body_bytes) is under 200 bytes. */
	k = fit_prefix(s + offset, blen - (size_t)offset, RPC_MAX_MSG - 200);
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set_new(resp, "seq", json_integer(seq))
			|| json_object_set_new(resp, "offset", json_integer(offset))
			|| json_object_set_new(resp, "body_bytes", json_integer((json_int_t)blen))
			|| json_object_set_new(resp, "body", json_stringn(s + offset, k))
			|| json_object_set_new(resp, "more", json_boolean((size_t)offset + k < blen))
			|| ((size_t)offset + k < blen
				&& json_object_set_new(resp, "next", json_integer(offset + (json_int_t)k)))){
		json_decref(resp);
		resp = NULL;
	}
	json_decref(found);
	return resp;
}

static json_t *op_rooms(struct rpc_req *r)
{
	struct name_list rooms = {0};
	json_t *arr = json_array();
	size_t i;
	int rc;

	if(arr == NULL) return NULL;
	rc = userdb__member_each(r->d->udb, NULL, r->user, room_of_cb, &rooms);
	for(i = 0; rc == MQC_OK && i < rooms.n; i++){
		struct name_list members = {0};
		json_t *o;

		rc = userdb__member_each(r->d->udb, rooms.v[i], NULL, user_of_cb, &members);
		if(rc == MQC_OK){
			o = json_pack("{ssso}", "room", rooms.v[i], "members", names_json(&members));
			rc = o == NULL ? MQC_ERR_NOMEM : rpc__room_summary(r->d->udb, rooms.v[i], r->user, o);
			if(rc == MQC_OK && json_array_append_new(arr, o)) rc = MQC_ERR_NOMEM;
			else if(rc != MQC_OK) json_decref(o);
		}
		free_names(&members);
	}
	free_names(&rooms);
	if(rc != MQC_OK){
		json_decref(arr);
		return rpc__fail(r->id, "internal", "cannot read your rooms: %s", mqc_strerror(rc));
	}
	return rpc__ok_with(r, "rooms", arr);
}

/* The answer of profile/whois for u: name, kind, nick. */
static json_t *profile_answer(struct rpc_req *r, const struct userdb_user *u, const char *key)
{
	json_t *resp = rpc__ok(r);

	if(resp == NULL || json_object_set_new(resp, key, json_string(u->name))
			|| json_object_set_new(resp, "kind", json_string(user_kind__name(u->kind)))
			|| json_object_set_new(resp, "nick", json_string(u->nick))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

static json_t *op_profile(struct rpc_req *r)
{
	struct userdb_user u;
	json_t *nick = json_object_get(r->req, "nick");
	int rc;

	if(nick){
		struct nick_clash clash;
		char why[160];

		if(!json_is_string(nick)) return rpc__fail(r->id, "bad_request", "\"nick\" must be a string");
		rc = nick__set(r->d->udb, r->user, json_string_value(nick), json_string_length(nick), &clash,
				why, sizeof(why));
		if(rc == MQC_ERR_INVAL || rc == MQC_ERR_EXISTS) return nick_answer__refusal(r->id, rc, &clash, why);
		if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
		if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot set the nick: %s", mqc_strerror(rc));
	}
	rc = userdb__user_get(r->d->udb, r->user, &u);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	return profile_answer(r, &u, "name");
}

static json_t *op_whois(struct rpc_req *r)
{
	struct userdb_user u;
	const char *who;
	bool bad = false, shown = false;
	int rc;

	who = rpc__opt_name(r->req, "user", &bad);
	if(who == NULL) return rpc__fail(r->id, "bad_request", "\"user\" must be a valid user name");
	/* Someone who does not show me their presence is, to me, nobody:
	 * the same answer as a name no account has. */
	rc = userdb__sees(r->d->udb, who, r->user, &shown);
	if(rc == MQC_OK && !shown) rc = MQC_ERR_NOTFOUND;
	if(rc == MQC_OK) rc = userdb__user_get(r->d->udb, who, &u);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	return profile_answer(r, &u, "user");
}

json_t *rpc__check_password(struct rpc_req *r, json_t *pw, const char *op, const char *wrong)
{
	struct userdb_user u;
	json_t *resp;
	size_t len = json_string_length(pw);
	bool match = false;
	int64_t now, wait;
	int rc;

	now = time__mono_ms();
	wait = pwthrottle__locked(r->d, r->user, now);
	if(wait > 0){
		resp = rpc__fail(r->id, "rate_limited", "too many password checks; try again later");
		if(resp && json_object_set_new(resp, "retry_ms", json_integer(wait))){
			json_decref(resp);
			resp = NULL;
		}
		return resp;
	}
	rc = userdb__user_get(r->d->udb, r->user, &u);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	if(!json_is_string(pw) || len > PWHASH_MAX_PASSWORD
			|| pwhash__verify(json_string_value(pw), len, u.pwhash, &match) != MQC_OK){
		match = false;
	}
	/* Record before answering: a request that cannot be recorded is not
	 * answered with the verdict, or a guesser could ignore the throttle. */
	if(pwthrottle__result(r->d, r->user, match, now) != MQC_OK){
		return rpc__fail(r->id, "internal", "out of memory");
	}
	if(!match){
		log_info("%s | %s | wrong password", r->user, op);
		return rpc__fail(r->id, "bad_password", "%s", wrong);
	}
	return NULL;
}

/* passwd: the old password is checked only when pwthrottle allows it, and
 * the new one's length and form, and what to revoke, before any hashing,
 * so a locked or hopeless request costs no hash. The new password and the
 * revocation are one write: both in force, or neither. */
static json_t *op_passwd(struct rpc_req *r)
{
	json_t *old = json_object_get(r->req, "old"), *new = json_object_get(r->req, "new"), *resp;
	struct rpc_revoke_ask ask;
	char hash[PWHASH_STR_LEN];
	size_t newlen;
	int rc, revoked = 0;

	if(!json_is_string(old) || !json_is_string(new)){
		return rpc__fail(r->id, "bad_request", "\"old\" and \"new\" must be strings");
	}
	newlen = json_string_length(new);
	if(newlen < PWHASH_MIN_PASSWORD || newlen > PWHASH_MAX_PASSWORD
			|| memchr(json_string_value(new), '\0', newlen)){
		return rpc__fail(r->id, "weak_password", "a password has %d to %d bytes",
				PWHASH_MIN_PASSWORD, PWHASH_MAX_PASSWORD);
	}
	/* The plugin takes a password of this form for a token: it could
	 * never log in. */
	if(devtoken__is_token(json_string_value(new), newlen)){
		return rpc__fail(r->id, "weak_password", "a password may not have the form of a device token"
				" (%s and 43 characters)", DEVTOKEN_PREFIX);
	}
	if((resp = rpc__revoke_arg(r, &ask)) != NULL) return resp;
	if((resp = rpc__check_password(r, old, "passwd", "the old password is wrong")) != NULL) return resp;
	rc = pwhash__make(json_string_value(new), newlen, PWHASH_DEFAULT_ITERATIONS, hash, sizeof(hash));
	if(rc == MQC_OK) rc = userdb__begin_write(r->d->udb);
	if(rc == MQC_OK){
		rc = userdb__user_set_pwhash(r->d->udb, r->user, hash);
		if(rc == MQC_OK && ask.what != RPC_REVOKE_NONE) rc = rpc__revoke(r, &ask, &revoked);
		if(rc == MQC_OK) rc = userdb__commit(r->d->udb);
		if(rc != MQC_OK) userdb__rollback(r->d->udb);
	}
	memset(hash, 0, sizeof(hash));
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot change the password: %s", mqc_strerror(rc));
	rpc__push_forget(r, &ask);
	log_info("%s | passwd | ***** (%d device token(s) revoked)", r->user, revoked);
	if(ask.what == RPC_REVOKE_NONE) return rpc__ok(r);
	return rpc__ok_with(r, "revoked", json_integer(revoked));
}

json_t *rpc__list_op(struct rpc_req *r, bool add, const char *op, const char *self,
		int (*change)(struct userdb *udb, const char *me, const char *who, bool add))
{
	const char *who;
	bool bad = false;
	int rc;

	who = rpc__opt_name(r->req, "user", &bad);
	if(who == NULL) return rpc__fail(r->id, "bad_request", "\"user\" must be a valid user name");
	if(strcmp(who, r->user) == 0) return rpc__fail(r->id, "bad_request", "%s", self);
	rc = change(r->d->udb, r->user, who, add);
	if(rc == MQC_ERR_NOTFOUND){
		if(!add) return rpc__ok(r); /* not on the list: already what was asked */
		return rpc__fail(r->id, "not_found", "no such user");
	}
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	log_info("%s | %s | %s", r->user, op, who);
	return rpc__ok(r);
}

static int block_change(struct userdb *udb, const char *me, const char *who, bool add)
{
	return add ? userdb__block_add(udb, me, who) : userdb__block_del(udb, me, who);
}

static json_t *block_op(struct rpc_req *r, bool add)
{
	return rpc__list_op(r, add, add ? "block" : "unblock", "you cannot block yourself", block_change);
}

static json_t *op_block(struct rpc_req *r)
{
	return block_op(r, true);
}

static json_t *op_unblock(struct rpc_req *r)
{
	return block_op(r, false);
}

static json_t *op_blocked(struct rpc_req *r)
{
	struct name_list l = {0};
	json_t *resp;
	int rc;

	rc = userdb__block_each(r->d->udb, r->user, blocked_cb, &l);
	if(rc != MQC_OK){
		free_names(&l);
		return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	}
	resp = rpc__ok_with(r, "users", names_json(&l));
	free_names(&l);
	return resp;
}

static const struct {
	const char *name;
	rpc_fn fn;
} ops[] = {
	{"history", op_history},
	{"sync", op_sync},
	{"get", op_get},
	{"rooms", op_rooms},
	{"profile", op_profile},
	{"whois", op_whois},
	{"passwd", op_passwd},
	{"block", op_block},
	{"unblock", op_unblock},
	{"blocked", op_blocked},
	{"device_token", rpc__op_device_token},
	{"devices", rpc__op_devices},
	{"device_revoke", rpc__op_device_revoke},
	{"privacy", rpc__op_privacy},
	{"contacts", rpc__op_contacts},
	{"contact_add", rpc__op_contact_add},
	{"contact_remove", rpc__op_contact_remove},
	{"export", rpc__op_export},
	{"delete_account", rpc__op_delete_account},
	{"room_create", rpc__op_room_create},
	{"room_add", rpc__op_room_add},
	{"room_remove", rpc__op_room_remove},
	{"room_promote", rpc__op_room_promote},
	{"room_demote", rpc__op_room_demote},
	{"room_set", rpc__op_room_set},
	{"room_leave", rpc__op_room_leave},
	{"room_delete", rpc__op_room_delete},
	{"room_info", rpc__op_room_info},
	{"hello", rpc__op_hello},
	{"conversations", rpc__op_conversations},
	{"read", rpc__op_read},
	{"edit", rpc__op_edit},
	{"delete", rpc__op_delete},
	{"search", rpc__op_search},
	{"push_config", rpc__op_push_config},
	{"push_register", rpc__op_push_register},
	{"push_unregister", rpc__op_push_unregister},
	{"push_targets", rpc__op_push_targets},
	{"push_settings", rpc__op_push_settings},
	{"mute", rpc__op_mute},
	{"unmute", rpc__op_unmute},
	{"mutes", rpc__op_mutes},
};

json_t *rpc__load_request(const void *payload, size_t len, size_t max_len, size_t max_id,
		json_t **id, json_t **answer)
{
	json_t *req;
	json_error_t jerr;

	*id = NULL;
	*answer = NULL;
	if(len > max_len){
		*answer = rpc__fail(NULL, "bad_request", "request larger than %zu bytes", max_len);
		return NULL;
	}
	req = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if(req == NULL){
		*answer = rpc__fail(NULL, "bad_request", "not JSON: %s", jerr.text);
		return NULL;
	}
	if(!json_is_object(req)){
		json_decref(req);
		*answer = rpc__fail(NULL, "bad_request", "a request is a JSON object");
		return NULL;
	}
	*id = json_object_get(req, "id");
	if(!json_is_string(*id) || json_string_length(*id) == 0 || json_string_length(*id) > max_id){
		json_decref(req);
		*id = NULL;
		*answer = rpc__fail(NULL, "bad_request", "\"id\" must be a string of 1 to %zu bytes", max_id);
		return NULL;
	}
	return req;
}

/* New reference: the answer to one request payload; *opname the op's
 * name for the metrics (the table's: NULL when the request has none,
 * "unknown" when it is not one of ours). */
static json_t *answer(struct responder *d, const char *user, const void *payload, size_t len,
		const char **opname)
{
	struct rpc_req r = {.d = d, .user = user};
	json_t *req, *id, *op, *resp = NULL;
	size_t i;

	req = rpc__load_request(payload, len, RPC_MAX_REQUEST, RPC_MAX_ID, &id, &resp);
	if(req == NULL) return resp;
	r.req = req;
	r.id = id;
	op = json_object_get(req, "op");
	if(!json_is_string(op)){
		resp = rpc__fail(id, "bad_request", "\"op\" must be a string");
		goto done;
	}
	*opname = "unknown";
	for(i = 0; i < sizeof(ops) / sizeof(ops[0]); i++){
		if(strcmp(json_string_value(op), ops[i].name) == 0){
			*opname = ops[i].name;
			resp = ops[i].fn(&r);
			if(resp == NULL) resp = rpc__fail(id, "internal", "out of memory");
			goto done;
		}
	}
	resp = rpc__fail(id, "unknown_op", "unknown op");
done:
	json_decref(req);
	return resp;
}

void rpc__handle(struct responder *rs, const struct mqtt_msg *msg)
{
	char user[NAME_MAX_LEN + 1], topic[TOPIC_MAX_LEN + 1], esc[128];
	const char *op = NULL;
	struct topic_parts tp;
	json_t *resp;

	/* chat/rpc/<user>/req */
	if(!topic__parse(msg->topic, &tp) || tp.kind != TOPIC_RPC_REQ || !names__valid(tp.a.p, tp.a.n)){
		log_warnx("request on an unexpected topic %s ignored",
				log_escape(msg->topic, strlen(msg->topic), esc, sizeof(esc)));
		return;
	}
	memcpy(user, tp.a.p, tp.a.n);
	user[tp.a.n] = '\0';
	topic__build(topic, sizeof(topic), TOPIC_RPC_RESP, user, NULL);
	if(msg->resp_topic && strcmp(msg->resp_topic, topic) != 0){
		/* Only the canonical topic reaches the user (the plugin refuses
		 * anything else), so that is where the answer goes. */
		log_debug("%s asked for answers on another topic; using %s", user, topic);
	}
	rs->rpc++;
	resp = answer(rs, user, msg->payload, msg->len, &op);
	metrics__rpc(op, json_string_value(json_object_get(resp, "error")), time__mono_ns() - rs->arrived_ns);
	responder__reply(rs, topic, resp, msg);
}
