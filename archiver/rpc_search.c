/* rpc_search.c - search of one's texts (docs/PROTOCOL.md, "search").
 *
 * The asker's account's created time and rooms (with theirs) are read from
 * one snapshot of auth.db, as sync reads them; archive__search
 * (archive_ext.h) keeps only what history would give them. */
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archive_ext.h"
#include "err.h"
#include "grow.h"
#include "rpc_edit.h"
#include "rpc_internal.h"
#include "userdb.h"

/* The text's bounds, in bytes of UTF-8; and at least this many
 * characters: the trigram index finds nothing shorter. */
#define SEARCH_TEXT_MIN 3
#define SEARCH_TEXT_MAX 256
#define SEARCH_LIMIT_DEFAULT 20
#define SEARCH_LIMIT_MAX 100

/* Characters of the UTF-8 text s. */
static size_t chars(const char *s)
{
	size_t n = 0;

	for(; *s; s++){
		if(((unsigned char)*s & 0xC0) != 0x80) n++;
	}
	return n;
}

/* Read the asker's created time and the rooms q may search (all of
 * theirs, or the one of the scope) into q and l. NULL, or the answer. */
static json_t *read_scope(struct rpc_req *r, struct archive_search *q, struct rpc_rooms *l)
{
	struct userdb *udb = r->d->udb;
	struct userdb_user u;
	json_t *refused = NULL;
	int rc;

	rc = userdb__begin_read(udb);
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot read the user store: %s", mqc_strerror(rc));
	rc = userdb__user_get(udb, r->user, &u);
	if(rc == MQC_ERR_NOTFOUND){
		refused = rpc__fail(r->id, "not_found", "no such user");
		rc = MQC_OK;
	}else if(rc == MQC_OK){
		q->user_since = u.created;
		if(q->room){
			int64_t since = 0;

			/* As history: a room one is not in (or none) is forbidden. */
			if(!userdb__is_member(udb, q->room, r->user)){
				refused = rpc__fail(r->id, "forbidden", "you are not a member of that room");
			}else if((rc = userdb__room_get(udb, q->room, NULL, &since)) == MQC_OK){
				rc = rpc__rooms_add(q->room, since, l);
			}else if(rc == MQC_ERR_NOTFOUND){
				refused = rpc__fail(r->id, "forbidden", "you are not a member of that room");
				rc = MQC_OK;
			}
		}else if(q->with == NULL){
			rc = userdb__rooms_of(udb, r->user, rpc__rooms_add, l);
		}
	}
	userdb__rollback(udb);
	if(refused == NULL && rc != MQC_OK){
		refused = rpc__fail(r->id, "internal", "cannot read your rooms: %s", mqc_strerror(rc));
	}
	return refused;
}

json_t *rpc__op_search(struct rpc_req *r)
{
	struct archive_search q;
	struct rpc_rooms l = {0};
	json_t *text = json_object_get(r->req, "text"), *msgs, *resp, *refused, *last;
	json_int_t limit = SEARCH_LIMIT_DEFAULT, before = 0;
	bool bad = false, more = false;
	int64_t next = 0;
	int rc;

	if(!json_is_string(text) || json_string_length(text) < SEARCH_TEXT_MIN
			|| json_string_length(text) > SEARCH_TEXT_MAX
			|| strlen(json_string_value(text)) != json_string_length(text)
			|| chars(json_string_value(text)) < SEARCH_TEXT_MIN){
		return rpc__fail(r->id, "bad_request", "\"text\" must be a text of %d to %d bytes and at least"
				" %d characters", SEARCH_TEXT_MIN, SEARCH_TEXT_MAX, SEARCH_TEXT_MIN);
	}
	memset(&q, 0, sizeof(q));
	q.text = json_string_value(text);
	q.user = r->user;
	q.with = rpc__opt_name(r->req, "with", &bad);
	q.room = rpc__opt_name(r->req, "room", &bad);
	if(bad) return rpc__fail(r->id, "bad_request", "\"with\" and \"room\" must be valid names");
	if(q.with && q.room) return rpc__fail(r->id, "bad_request", "give at most one of \"with\" and \"room\"");
	if(!rpc__opt_int(r->req, "limit", 1, SEARCH_LIMIT_MAX, &limit)){
		return rpc__fail(r->id, "bad_request", "\"limit\" must be an integer from 1 to %d", SEARCH_LIMIT_MAX);
	}
	if(!rpc__opt_int(r->req, "before", 1, INT64_MAX, &before)){
		return rpc__fail(r->id, "bad_request", "\"before\" must be a positive integer (a seq)");
	}
	q.limit = (int)limit;
	q.before = before;
	if((refused = read_scope(r, &q, &l)) != NULL){
		rpc__rooms_free(&l);
		return refused;
	}
	q.rooms = l.v;
	q.nrooms = l.n;
	msgs = archive__search(r->d->ar, &q, &more, &next);
	rpc__rooms_free(&l);
	if(msgs == NULL) return rpc__fail(r->id, "internal", "archive read failed: %s", archive__errmsg(r->d->ar));
	/* Cut to fit: the next page starts below the last one kept. */
	if(rpc__fit_messages(msgs, RPC_FRAME, &rc)){
		more = true;
		last = json_array_get(msgs, json_array_size(msgs) - 1);
		next = json_integer_value(json_object_get(last, "seq"));
	}
	if(rc != MQC_OK){
		json_decref(msgs);
		return NULL;
	}
	resp = rpc__ok(r);
	if(resp == NULL){
		json_decref(msgs);
		return NULL;
	}
	if(json_object_set_new(resp, "messages", msgs)
			|| json_object_set_new(resp, "more", json_boolean(more))
			|| (more && json_object_set_new(resp, "next", json_integer(next)))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}
