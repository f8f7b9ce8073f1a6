/* rpc_edit.c - edit and delete of texts (docs/PROTOCOL.md, "edit",
 * "delete").
 *
 * A person edits or deletes their own texts: the newest text with that
 * id they sent since their account was created, in a conversation they
 * may still read (a room they are in now), within the edit_window setting
 * of when the archiver stored it. A room's owner and admins delete anyone's
 * text of the room ("room" and "of" in the request), at any time.
 *
 * The change is one write transaction of the worker's archive connection
 * (archive_ext.h): the text found, checked and changed, the edit or delete
 * row stored, so nothing changes the text in between. Then the edit or
 * delete envelope goes out from the archiver's account (the archiver's
 * ingest does not store those: this op wrote its row), to both people of a
 * direct conversation (chat/inbox/<peer>/archiver with "with":<me>, and
 * chat/inbox/<me>/archiver with "with":<peer>, which reach every device of
 * each) or to the room (chat/room/<room>/archiver); the answer follows
 * them (responder__publish keeps the order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archive_ext.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "rand.h"
#include "rpc_edit.h"
#include "settings.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

int64_t rpc__edit_window_s(struct userdb *udb)
{
	const struct setting_def *d = settings__find(SETTING_EDIT_WINDOW);
	char v[32];

	if(d == NULL || userdb__setting_get(udb, SETTING_EDIT_WINDOW, v, sizeof(v)) != MQC_OK
			|| settings__check(d, v)){
		return EDIT_WINDOW_DEFAULT;
	}
	return strtoll(v, NULL, 10);
}

/* What the requester asked, and what the store says of it. */
struct change {
	struct rpc_req *r;
	const char *ref;             /* the text's id */
	const char *of;              /* its sender */
	const char *room;            /* NULL: own text, wherever it is */
	enum room_role role;         /* the requester's in room */
	int64_t room_since;          /* room's created */
	int64_t my_since;            /* the requester's account's created */
	int64_t window_s;
	struct archive_text t;
};

/* The request's "ref" (a message id): NULL if missing or bad. */
static const char *ref_arg(struct rpc_req *r)
{
	json_t *v = json_object_get(r->req, "ref");

	if(!json_is_string(v) || !names__valid_msgid(json_string_value(v), json_string_length(v))) return NULL;
	return json_string_value(v);
}

static json_t *store_failed(struct rpc_req *r, const char *what, int rc)
{
	return rpc__fail(r->id, "internal", "%s: %s", what, mqc_strerror(rc));
}

/* Read what c needs of auth.db in one snapshot: the requester's account,
 * the window, and with c->room the requester's role there. NULL, or the
 * answer to give. */
static json_t *read_auth(struct change *c)
{
	struct rpc_req *r = c->r;
	struct userdb *udb = r->d->udb;
	struct userdb_user u;
	json_t *refused = NULL;
	int rc;

	rc = userdb__begin_read(udb);
	if(rc != MQC_OK) return store_failed(r, "cannot read the user store", rc);
	rc = userdb__user_get(udb, r->user, &u);
	if(rc == MQC_OK){
		c->my_since = u.created;
		c->window_s = rpc__edit_window_s(udb);
		c->role = ROOM_ROLE_NONE;
		if(c->room) rc = userdb__room_role(udb, c->room, r->user, &c->role);
		if(rc == MQC_OK && c->room && c->role != ROOM_ROLE_NONE){
			rc = userdb__room_get(udb, c->room, NULL, &c->room_since);
		}
		if(rc == MQC_ERR_NOTFOUND || (rc == MQC_OK && c->room && c->role == ROOM_ROLE_NONE)){
			/* A room one is not in is nobody's business (room ops). */
			refused = rpc__fail(r->id, "not_found", "no such room");
			rc = MQC_OK;
		}
	}else if(rc == MQC_ERR_NOTFOUND){
		refused = rpc__fail(r->id, "not_found", "no such user");
		rc = MQC_OK;
	}
	userdb__rollback(udb);
	if(rc != MQC_OK) return store_failed(r, "cannot read the user store", rc);
	return refused;
}

/* May the requester still read the room message t (a room they are in
 * now, stored since the room was created)? */
static int room_readable(struct rpc_req *r, const struct archive_text *t, bool *yes)
{
	int64_t since = 0;
	int rc;

	*yes = false;
	if(!userdb__is_member(r->d->udb, t->room, r->user)) return MQC_OK;
	rc = userdb__room_get(r->d->udb, t->room, NULL, &since);
	if(rc == MQC_ERR_NOTFOUND) return MQC_OK;
	if(rc != MQC_OK) return rc;
	*yes = t->server_ts >= since;
	return MQC_OK;
}

/* Find c's text inside the open archive transaction and check that the
 * requester may change it (admin: as the room's owner or admin, else as
 * its sender, within the window). NULL, or the answer to give. */
static json_t *find_target(struct change *c, bool admin)
{
	struct rpc_req *r = c->r;
	bool yes = true;
	int rc;

	rc = archive__text_find(r->d->ar, c->of, c->ref, c->room, &c->t);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such text");
	if(rc != MQC_OK) return store_failed(r, "cannot read the archive", rc);
	if(admin){
		yes = c->t.server_ts >= c->room_since;
	}else{
		yes = c->t.server_ts >= c->my_since;
		if(yes && c->t.room[0]){
			rc = room_readable(r, &c->t, &yes);
			if(rc != MQC_OK) return store_failed(r, "cannot read the user store", rc);
		}
	}
	if(!yes || c->t.deleted) return rpc__fail(r->id, "not_found", "no such text");
	if(!admin && (c->window_s == 0 || time__now_ms() - c->t.server_ts > c->window_s * 1000)){
		return rpc__fail(r->id, "too_late", "texts may be changed for %lld s after they are sent",
				(long long)c->window_s);
	}
	return NULL;
}

/* A new row id for a change by the requester: prefix and 16 random hex
 * digits (ids are unique per sender). */
static int new_id(const char *prefix, char *out, size_t outlen)
{
	unsigned char b[8];
	size_t i;
	int n;

	if(rand__bytes(b, sizeof(b)) != MQC_OK) return MQC_ERR_CRYPTO;
	n = snprintf(out, outlen, "%s-", prefix);
	for(i = 0; i < sizeof(b) && n >= 0 && (size_t)n + 2 < outlen; i++){
		n += snprintf(out + n, outlen - (size_t)n, "%02x", b[i]);
	}
	return MQC_OK;
}

/* Publish msg (borrowed) with "with" set to with on chat/inbox/<to>/<archiver>. */
static void publish_inbox(struct rpc_req *r, json_t *msg, const char *to, const char *with)
{
	char topic[TOPIC_MAX_LEN + 1];
	json_t *copy = json_deep_copy(msg);

	if(copy == NULL || json_object_set_new(copy, "with", json_string(with))
			|| topic__build(topic, sizeof(topic), TOPIC_INBOX, to, r->d->cfg->user) <= 0){
		json_decref(copy);
		log_warnx("cannot tell %s of a change of a text", to);
		return;
	}
	responder__publish(r->d, topic, copy, false);
}

/* Is the holder of the name peer now the one who was sent text t (their
 * account made before it was stored)? Only they are told of a change. */
static bool peer_had_it(struct rpc_req *r, const char *peer, const struct archive_text *t)
{
	struct userdb_user u;

	return userdb__user_get(r->d->udb, peer, &u) == MQC_OK && u.created <= t->server_ts;
}

/* Publish the change's envelope msg (stolen): to the room, or to both
 * people of a direct conversation. */
static void publish_change(struct rpc_req *r, const struct archive_text *t, json_t *msg)
{
	char topic[TOPIC_MAX_LEN + 1];
	const char *peer;

	if(msg == NULL){
		log_warnx("out of memory: a change of a text was not published");
		return;
	}
	if(t->room[0]){
		if(topic__build(topic, sizeof(topic), TOPIC_ROOM, t->room, r->d->cfg->user) > 0){
			responder__publish(r->d, topic, msg, false);
			return;
		}
		json_decref(msg);
		return;
	}
	/* Only the sender changes a direct message: the peer is the other. */
	peer = strcmp(t->sender, r->user) == 0 ? t->recipient : t->sender;
	if(strcmp(peer, r->user) != 0 && peer_had_it(r, peer, t)) publish_inbox(r, msg, peer, r->user);
	publish_inbox(r, msg, r->user, peer);
	json_decref(msg);
}

/* The envelope of a change: id, type, ref, of, by, ts (and the caller adds
 * body). */
static json_t *envelope(const char *id, const char *type, const struct archive_text *t, const char *by,
		int64_t now)
{
	return json_pack("{ss ss ss ss ss sI}", "id", id, "type", type, "ref", t->id, "of", t->sender,
			"by", by, "ts", (json_int_t)now);
}

/* End the archive transaction: commit if resp is NULL, else roll back
 * and return resp. */
static json_t *end_archive(struct rpc_req *r, json_t *resp)
{
	int rc;

	if(resp != NULL){
		archive__rollback(r->d->ar);
		return resp;
	}
	rc = archive__commit(r->d->ar);
	if(rc != MQC_OK){
		archive__rollback(r->d->ar);
		return store_failed(r, "cannot write the archive", rc);
	}
	return NULL;
}

json_t *rpc__op_edit(struct rpc_req *r)
{
	struct change c = {.r = r};
	json_t *body = json_object_get(r->req, "body"), *refused, *resp, *msg;
	char row_id[MSGID_MAX_LEN + 1];
	bool bad = false;
	int64_t now, seq = 0;
	int rc;

	c.ref = ref_arg(r);
	if(c.ref == NULL) return rpc__fail(r->id, "bad_request", "\"ref\" must be a message id");
	if(!json_is_string(body) || json_string_length(body) == 0 || json_string_length(body) > RPC_EDIT_BODY_MAX
			|| strlen(json_string_value(body)) != json_string_length(body)){
		return rpc__fail(r->id, "bad_request", "\"body\" must be a text of 1 to %d bytes", RPC_EDIT_BODY_MAX);
	}
	c.of = rpc__opt_name(r->req, "of", &bad);
	if(bad) return rpc__fail(r->id, "bad_request", "\"of\" must be a valid user name");
	/* Only one's own texts are edited: another's is none of one's texts. */
	if(c.of != NULL && strcmp(c.of, r->user) != 0) return rpc__fail(r->id, "not_found", "no such text");
	c.of = r->user;
	if((refused = read_auth(&c)) != NULL) return refused;
	if(new_id("ed", row_id, sizeof(row_id)) != MQC_OK) return rpc__fail(r->id, "internal", "no random bytes");
	rc = archive__begin(r->d->ar);
	if(rc != MQC_OK) return store_failed(r, "cannot write the archive", rc);
	refused = find_target(&c, false);
	now = time__now_ms();
	if(refused == NULL){
		rc = archive__text_edit(r->d->ar, &c.t, json_string_value(body), row_id, now, &seq);
		if(rc != MQC_OK) refused = store_failed(r, "cannot write the archive", rc);
	}
	if((refused = end_archive(r, refused)) != NULL) return refused;
	log_info("%s | edit | %s (seq %lld)", r->user, c.ref, (long long)c.t.seq);
	msg = envelope(row_id, "edit", &c.t, r->user, now);
	if(msg && json_object_set(msg, "body", body)){
		json_decref(msg);
		msg = NULL;
	}
	publish_change(r, &c.t, msg);
	resp = rpc__ok(r);
	if(resp && (json_object_set_new(resp, "seq", json_integer(seq))
				|| json_object_set_new(resp, "edited", json_integer(now)))){
		json_decref(resp);
		resp = NULL;
	}
	return resp;
}

json_t *rpc__op_delete(struct rpc_req *r)
{
	struct change c = {.r = r};
	char row_id[MSGID_MAX_LEN + 1];
	json_t *refused;
	bool bad = false, admin;
	int64_t now, seq = 0;
	int rc;

	c.ref = ref_arg(r);
	if(c.ref == NULL) return rpc__fail(r->id, "bad_request", "\"ref\" must be a message id");
	c.of = rpc__opt_name(r->req, "of", &bad);
	c.room = rpc__opt_name(r->req, "room", &bad);
	if(bad) return rpc__fail(r->id, "bad_request", "\"of\" and \"room\" must be valid names");
	if(c.of == NULL) c.of = r->user;
	if(strcmp(c.of, r->user) != 0 && c.room == NULL){
		return rpc__fail(r->id, "bad_request", "another's text is deleted in a room: give \"room\"");
	}
	if((refused = read_auth(&c)) != NULL) return refused;
	/* The room's owner and admins delete any of its texts, any time;
	 * everyone else their own, within the window. */
	admin = c.room != NULL && c.role >= ROOM_ROLE_ADMIN;
	if(!admin && strcmp(c.of, r->user) != 0){
		return rpc__fail(r->id, "forbidden", "only the room's owner and admins delete others' texts");
	}
	if(new_id("dl", row_id, sizeof(row_id)) != MQC_OK) return rpc__fail(r->id, "internal", "no random bytes");
	rc = archive__begin(r->d->ar);
	if(rc != MQC_OK) return store_failed(r, "cannot write the archive", rc);
	refused = find_target(&c, admin);
	now = time__now_ms();
	if(refused == NULL){
		rc = archive__text_delete(r->d->ar, &c.t, r->user, row_id, now, &seq);
		if(rc != MQC_OK) refused = store_failed(r, "cannot write the archive", rc);
	}
	if((refused = end_archive(r, refused)) != NULL) return refused;
	log_info("%s | delete | %s of %s (seq %lld)", r->user, c.ref, c.of, (long long)c.t.seq);
	publish_change(r, &c.t, envelope(row_id, "delete", &c.t, r->user, now));
	return rpc__ok_with(r, "seq", json_integer(seq));
}
