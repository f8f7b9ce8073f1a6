/* rpc_rooms.c - rooms run by their members (docs/PROTOCOL.md, "Rooms run
 * by their members"): room_create, room_add, room_remove, room_promote,
 * room_demote, room_set, room_leave, room_delete, room_info.
 *
 * Each change is one write transaction on the worker's own connection, its
 * checks included, so two requests cannot both take the last place of a
 * room or both hand it over. responder__reply holds the answer until the
 * broker has the change in force (later.c); the membership event goes out
 * just before it, after the same wait, on chat/room/<room>/<archiver>: so
 * a member added receives the event that says so, and a member removed
 * does not. A room's last event, `deleted`, cannot wait for that (once the
 * room is gone nobody may receive it): it leaves first, and the room is
 * deleted once the poll loop has sent it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "err.h"
#include "log.h"
#include "rpc_internal.h"
#include "settings.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

/* How long room_delete waits for its `deleted` event to leave. */
#define ROOM_EVENT_SEND_MS 1000

/* One room op's request: the room, and the requester's role in it; for
 * an op about a person (room_begin_user), who, and their role. */
struct room_req {
	struct rpc_req *r;
	const char *room;
	enum room_role role;
	const char *user;
	enum room_role user_role;
};

/* A number setting of the store, or def when unset (or unreadable). */
static long setting_num(struct userdb *udb, const char *key, long def)
{
	const struct setting_def *d = settings__find(key);
	char v[32];

	if(d == NULL || userdb__setting_get(udb, key, v, sizeof(v)) != MQC_OK || settings__check(d, v)){
		return def;
	}
	return strtol(v, NULL, 10);
}

/* Publish the membership event ev of room about user (NULL: none), done by
 * the requester; now: at once rather than after the request's commit
 * (responder__publish). Returns responder__publish's number. */
static uint64_t publish_event(struct rpc_req *r, const char *room, enum envelope_event ev,
		const char *user, bool now)
{
	static unsigned counter;
	char topic[TOPIC_MAX_LEN + 1], id[48];
	int64_t ts = time__now_ms();
	json_t *msg;

	if(topic__build(topic, sizeof(topic), TOPIC_ROOM, room, r->d->cfg->user) <= 0) return 0;
	/* Unique per sender: the time and a counter of this thread. */
	snprintf(id, sizeof(id), "ev-%llx-%x", (unsigned long long)ts, ++counter);
	msg = json_pack("{ss ss ss sI}", "id", id, "type", "event", "event", envelope__event_name(ev),
			"ts", (json_int_t)ts);
	if(msg && ((user && json_object_set_new(msg, "user", json_string(user)))
				|| json_object_set_new(msg, "by", json_string(r->user)))){
		json_decref(msg);
		msg = NULL;
	}
	return responder__publish(r->d, topic, msg, now);
}

/* The answer for a store error rc. */
static json_t *store_failed(struct rpc_req *r, int rc)
{
	return rpc__fail(r->id, "internal", "the user store: %s", mqc_strerror(rc));
}

/* End the op's write transaction: commit if resp is NULL (the change is
 * made), else roll back and return resp. NULL on success, or the answer
 * to give (new reference). */
static json_t *end_write(struct rpc_req *r, json_t *resp)
{
	int rc;

	if(resp != NULL){
		userdb__rollback(r->d->udb);
		return resp;
	}
	rc = userdb__commit(r->d->udb);
	if(rc != MQC_OK){
		userdb__rollback(r->d->udb);
		return store_failed(r, rc);
	}
	return NULL;
}

/* Start a room op: the "room" member, a write transaction, and the
 * requester's role (none is `not_found`: a room you are not in is
 * nobody's business). With want_admin, a member who is not an admin is
 * `forbidden`. NULL with rq filled and the transaction open, or the answer
 * to give (nothing open). */
static json_t *room_begin(struct rpc_req *r, struct room_req *rq, bool want_admin)
{
	bool bad = false;
	int rc;

	rq->r = r;
	rq->room = rpc__opt_name(r->req, "room", &bad);
	if(rq->room == NULL) return rpc__fail(r->id, "bad_request", "\"room\" must be a valid room name");
	rc = userdb__begin_write(r->d->udb);
	if(rc != MQC_OK) return store_failed(r, rc);
	rc = userdb__room_role(r->d->udb, rq->room, r->user, &rq->role);
	if(rc != MQC_OK) return end_write(r, store_failed(r, rc));
	if(rq->role == ROOM_ROLE_NONE) return end_write(r, rpc__fail(r->id, "not_found", "no such room"));
	if(want_admin && rq->role < ROOM_ROLE_ADMIN){
		return end_write(r, rpc__fail(r->id, "forbidden", "only the room's owner and admins may"));
	}
	return NULL;
}

/* Start a room op of the owner and admins about a person (room_begin):
 * also the "user" member, and that person's role in the room, who must be
 * a member with member (else `not_member`). NULL, or the answer to give
 * (nothing open). */
static json_t *room_begin_user(struct rpc_req *r, struct room_req *rq, bool member)
{
	json_t *refused = room_begin(r, rq, true);
	bool bad = false;
	int rc;

	if(refused != NULL) return refused;
	rq->user = rpc__opt_name(r->req, "user", &bad);
	if(rq->user == NULL){
		return end_write(r, rpc__fail(r->id, "bad_request", "\"user\" must be a valid user name"));
	}
	rc = userdb__room_role(r->d->udb, rq->room, rq->user, &rq->user_role);
	if(rc != MQC_OK) return end_write(r, store_failed(r, rc));
	if(member && rq->user_role == ROOM_ROLE_NONE){
		return end_write(r, rpc__fail(r->id, "not_member", "%s is not a member", rq->user));
	}
	return NULL;
}

/* An optional title or description member into out (outlen bytes): true
 * if absent (out untouched) or valid. */
static bool opt_text(json_t *req, const char *key, size_t max_chars, char *out, size_t outlen)
{
	json_t *v = json_object_get(req, key);

	if(v == NULL) return true;
	if(!json_is_string(v) || json_string_length(v) >= outlen
			|| strlen(json_string_value(v)) != json_string_length(v)
			|| !room_text__valid(json_string_value(v), max_chars)){
		return false;
	}
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return true;
}

/* The title and description of the request into m (those absent stay):
 * false if either is bad. */
static bool texts_arg(struct rpc_req *r, struct userdb_room_meta *m)
{
	return opt_text(r->req, "title", ROOM_TITLE_MAX_CHARS, m->title, sizeof(m->title))
		&& opt_text(r->req, "description", ROOM_DESCRIPTION_MAX_CHARS, m->description,
				sizeof(m->description));
}

static json_t *bad_texts(struct rpc_req *r)
{
	return rpc__fail(r->id, "bad_request", "a title has at most %d and a description at most %d"
			" characters of UTF-8, no control characters", ROOM_TITLE_MAX_CHARS,
			ROOM_DESCRIPTION_MAX_CHARS);
}

json_t *rpc__op_room_create(struct rpc_req *r)
{
	struct userdb *udb = r->d->udb;
	struct userdb_room_meta m;
	const char *room;
	char closed[16];
	bool bad = false;
	json_t *refused = NULL, *resp;
	int rc, owned = 0;

	room = rpc__opt_name(r->req, "room", &bad);
	if(room == NULL) return rpc__fail(r->id, "bad_request", "\"room\" must be a valid room name");
	memset(&m, 0, sizeof(m));
	if(!texts_arg(r, &m)) return bad_texts(r);
	snprintf(m.owner, sizeof(m.owner), "%s", r->user);
	rc = userdb__begin_write(udb);
	if(rc != MQC_OK) return store_failed(r, rc);
	if(userdb__setting_get(udb, SETTING_ROOM_CREATE, closed, sizeof(closed)) == MQC_OK
			&& strcmp(closed, "nobody") == 0){
		refused = rpc__fail(r->id, "forbidden", "creating rooms is closed");
	}
	if(refused == NULL && (rc = userdb__rooms_owned(udb, r->user, &owned)) != MQC_OK){
		refused = store_failed(r, rc);
	}
	if(refused == NULL && owned >= setting_num(udb, SETTING_ROOMS_PER_OWNER, ROOMS_PER_OWNER_DEFAULT)){
		refused = rpc__fail(r->id, "too_many_rooms", "you own %d rooms already", owned);
	}
	if(refused == NULL){
		rc = userdb__room_create(udb, room, 0);
		if(rc == MQC_OK) rc = userdb__member_add(udb, room, r->user);
		if(rc == MQC_OK) rc = userdb__room_meta_set(udb, room, &m);
		if(rc == MQC_ERR_EXISTS){
			refused = rpc__fail(r->id, "exists", "the room exists, or was deleted less than %d days"
					" ago", USERDB_RETIRE_DAYS);
		}else if(rc == MQC_ERR_NOTFOUND){
			refused = rpc__fail(r->id, "not_found", "no such user");
		}else if(rc != MQC_OK){
			refused = store_failed(r, rc);
		}
	}
	if((refused = end_write(r, refused)) != NULL) return refused;
	log_info("%s | room_create | %s", r->user, room);
	publish_event(r, room, ENVELOPE_EVENT_CREATED, r->user, false);
	resp = rpc__ok(r);
	if(resp && json_object_set_new(resp, "room", json_string(room))){
		json_decref(resp);
		resp = NULL;
	}
	return resp;
}

/* Log the change, publish its event after the commit, answer ok. */
static json_t *changed(struct room_req *rq, const char *op, enum envelope_event ev, const char *user)
{
	log_info("%s | %s | %s %s", rq->r->user, op, rq->room, user ? user : "");
	publish_event(rq->r, rq->room, ev, user, false);
	return rpc__ok(rq->r);
}

json_t *rpc__op_room_add(struct rpc_req *r)
{
	struct userdb *udb = r->d->udb;
	struct room_req rq;
	const char *who;
	json_t *refused = NULL;
	bool may = false;
	int rc, size = 0;

	if((refused = room_begin_user(r, &rq, false)) != NULL) return refused;
	who = rq.user;
	/* Already a member: what was asked (nothing changes, no event). */
	if(rq.user_role != ROOM_ROLE_NONE) return end_write(r, rpc__ok(r));
	rc = userdb__may_add(udb, who, r->user, &may);
	if(rc == MQC_ERR_NOTFOUND) refused = rpc__fail(r->id, "not_found", "no such user");
	else if(rc != MQC_OK) refused = store_failed(r, rc);
	else if(!may) refused = rpc__fail(r->id, "forbidden", "%s does not let you add them", who);
	else if((rc = userdb__room_size(udb, rq.room, &size)) != MQC_OK) refused = store_failed(r, rc);
	else if(size >= setting_num(udb, SETTING_ROOM_MEMBERS_MAX, ROOM_MEMBERS_MAX_DEFAULT)){
		refused = rpc__fail(r->id, "room_full", "the room has %d members", size);
	}else if((rc = userdb__member_add(udb, rq.room, who)) != MQC_OK){
		refused = rc == MQC_ERR_NOTFOUND ? rpc__fail(r->id, "not_found", "no such user")
			: store_failed(r, rc);
	}
	if((refused = end_write(r, refused)) != NULL) return refused;
	return changed(&rq, "room_add", ENVELOPE_EVENT_ADDED, who);
}

/* Take user out of the room, admin row and all. */
static int member_out(struct userdb *udb, const char *room, const char *user)
{
	int rc = userdb__room_admin_set(udb, room, user, false, 0);

	return rc == MQC_OK ? userdb__member_remove(udb, room, user) : rc;
}

json_t *rpc__op_room_remove(struct rpc_req *r)
{
	struct room_req rq;
	json_t *refused;
	int rc;

	if((refused = room_begin_user(r, &rq, true)) != NULL) return refused;
	if(rq.user_role == ROOM_ROLE_OWNER){
		return end_write(r, rpc__fail(r->id, "forbidden", "the owner cannot be removed"));
	}
	rc = member_out(r->d->udb, rq.room, rq.user);
	if((refused = end_write(r, rc == MQC_OK ? NULL : store_failed(r, rc))) != NULL) return refused;
	return changed(&rq, "room_remove", ENVELOPE_EVENT_REMOVED, rq.user);
}

/* room_promote and room_demote. */
static json_t *rank_op(struct rpc_req *r, bool promote)
{
	struct room_req rq;
	json_t *refused = NULL;
	int rc;

	if((refused = room_begin_user(r, &rq, true)) != NULL) return refused;
	if(rq.user_role == ROOM_ROLE_OWNER){
		/* Promoting the owner asks for nothing new. */
		return end_write(r, promote ? rpc__ok(r)
				: rpc__fail(r->id, "forbidden", "the owner cannot be demoted"));
	}
	/* Already what was asked: nothing changes, no event. */
	if((rq.user_role == ROOM_ROLE_ADMIN) == promote) return end_write(r, rpc__ok(r));
	rc = userdb__room_admin_set(r->d->udb, rq.room, rq.user, promote, time__now_ms());
	if(rc != MQC_OK) refused = store_failed(r, rc);
	if((refused = end_write(r, refused)) != NULL) return refused;
	return changed(&rq, promote ? "room_promote" : "room_demote",
			promote ? ENVELOPE_EVENT_PROMOTED : ENVELOPE_EVENT_DEMOTED, rq.user);
}

json_t *rpc__op_room_promote(struct rpc_req *r)
{
	return rank_op(r, true);
}

json_t *rpc__op_room_demote(struct rpc_req *r)
{
	return rank_op(r, false);
}

json_t *rpc__op_room_set(struct rpc_req *r)
{
	struct userdb_room_meta m;
	struct room_req rq;
	json_t *refused;
	int rc;

	if(json_object_get(r->req, "title") == NULL && json_object_get(r->req, "description") == NULL){
		return rpc__fail(r->id, "bad_request", "give \"title\", \"description\" or both");
	}
	if((refused = room_begin(r, &rq, true)) != NULL) return refused;
	rc = userdb__room_meta_get(r->d->udb, rq.room, &m);
	if(rc == MQC_OK && !texts_arg(r, &m)) return end_write(r, bad_texts(r));
	if(rc == MQC_OK) rc = userdb__room_meta_set(r->d->udb, rq.room, &m);
	if((refused = end_write(r, rc == MQC_OK ? NULL : store_failed(r, rc))) != NULL) return refused;
	return changed(&rq, "room_set", ENVELOPE_EVENT_CHANGED, r->user);
}

/* Delete the room of rq, whose transaction is open: its `deleted` event
 * first (see the top of this file), then the room. NULL, or the answer to
 * give (the transaction ended). */
static json_t *delete_room(struct room_req *rq, const char *op)
{
	struct rpc_req *r = rq->r;
	json_t *refused;
	uint64_t n;
	int rc;

	n = publish_event(r, rq->room, ENVELOPE_EVENT_DELETED, r->user, true);
	if(n == 0 || !responder__sent(r->d, n, ROOM_EVENT_SEND_MS)){
		log_warnx("the deleted event of room %s may not have reached its members", rq->room);
	}
	rc = userdb__room_del(r->d->udb, rq->room);
	refused = end_write(r, rc == MQC_OK ? NULL : store_failed(r, rc));
	if(refused != NULL) return refused;
	log_info("%s | %s | %s deleted", r->user, op, rq->room);
	return NULL;
}

json_t *rpc__op_room_leave(struct rpc_req *r)
{
	struct userdb *udb = r->d->udb;
	struct userdb_room_meta m;
	char next[NAME_MAX_LEN + 1];
	struct room_req rq;
	json_t *refused;
	int rc;

	if((refused = room_begin(r, &rq, false)) != NULL) return refused;
	rc = userdb__room_successor(udb, rq.room, r->user, next, sizeof(next));
	if(rc == MQC_ERR_NOTFOUND){
		/* The last member: the room goes with them. */
		refused = delete_room(&rq, "room_leave");
		return refused ? refused : rpc__ok(r);
	}
	if(rc == MQC_OK) rc = member_out(udb, rq.room, r->user);
	if(rc == MQC_OK && rq.role == ROOM_ROLE_OWNER){
		/* The owner hands the room to the longest-standing admin, else
		 * member; the owner is not listed among the admins. */
		rc = userdb__room_meta_get(udb, rq.room, &m);
		if(rc == MQC_OK){
			snprintf(m.owner, sizeof(m.owner), "%s", next);
			rc = userdb__room_meta_set(udb, rq.room, &m);
		}
		if(rc == MQC_OK) rc = userdb__room_admin_set(udb, rq.room, next, false, 0);
	}
	if((refused = end_write(r, rc == MQC_OK ? NULL : store_failed(r, rc))) != NULL) return refused;
	log_info("%s | room_leave | %s", r->user, rq.room);
	publish_event(r, rq.room, ENVELOPE_EVENT_LEFT, r->user, false);
	if(rq.role == ROOM_ROLE_OWNER){
		log_info("%s | room_leave | %s now owns %s", r->user, next, rq.room);
		publish_event(r, rq.room, ENVELOPE_EVENT_PROMOTED, next, false);
	}
	return rpc__ok(r);
}

json_t *rpc__op_room_delete(struct rpc_req *r)
{
	struct room_req rq;
	json_t *refused;

	if((refused = room_begin(r, &rq, true)) != NULL) return refused;
	refused = delete_room(&rq, "room_delete");
	return refused ? refused : rpc__ok(r);
}

static int role_cb(const char *user, enum room_role role, void *arg)
{
	json_t *e = json_pack("{ss ss}", "user", user, "role", room_role__name(role));

	return e == NULL || json_array_append_new(arg, e) ? MQC_ERR_NOMEM : MQC_OK;
}

json_t *rpc__op_room_info(struct rpc_req *r)
{
	struct userdb_room_meta m;
	struct room_req rq;
	json_t *refused, *members = json_array(), *resp;
	int rc;

	if(members == NULL) return NULL;
	/* A write transaction for one consistent read, like the changes. */
	if((refused = room_begin(r, &rq, false)) != NULL){
		json_decref(members);
		return refused;
	}
	rc = userdb__room_meta_get(r->d->udb, rq.room, &m);
	if(rc == MQC_OK) rc = userdb__room_roles(r->d->udb, rq.room, role_cb, members);
	userdb__rollback(r->d->udb);
	if(rc != MQC_OK){
		json_decref(members);
		return store_failed(r, rc);
	}
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set_new(resp, "room", json_string(rq.room))
			|| json_object_set_new(resp, "title", json_string(m.title))
			|| json_object_set_new(resp, "description", json_string(m.description))
			|| json_object_set_new(resp, "owner", m.owner[0] ? json_string(m.owner) : json_null())
			|| json_object_set_new(resp, "created", json_integer(m.created))
			|| json_object_set_new(resp, "members", members)){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

int rpc__room_summary(struct userdb *udb, const char *room, const char *user, json_t *o)
{
	struct userdb_room_meta m;
	enum room_role role;
	int rc = userdb__room_meta_get(udb, room, &m);

	if(rc == MQC_OK) rc = userdb__room_role(udb, room, user, &role);
	if(rc != MQC_OK) return rc;
	if(json_object_set_new(o, "title", json_string(m.title))
			|| json_object_set_new(o, "role", json_string(room_role__name(role)))){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}
