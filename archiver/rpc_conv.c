/* rpc_conv.c - what an app asks first and most often (docs/PROTOCOL.md):
 * hello (what this server speaks), conversations (my conversation list,
 * newest first, with unread counts) and read (move my read marker).
 *
 * A conversation's state is the archive's (archive.h): convs gives its
 * last text or event and how many texts it has had, reads my marker in
 * it; unread = convs.n - reads.read_n. Both are kept by the archive as
 * messages are stored, so a list costs one index range of my markers, a
 * look-up per conversation and the page's last messages: never a scan of
 * my messages.
 *
 * Names are not forever: a list shows only what history would give
 * (direct conversations with messages stored since my account was
 * created, rooms I am in now with messages since the room was created).
 * A marker left by an earlier holder of my name, or of a room's, counts
 * as no marker: the texts before the holder's start (seq floor) are
 * counted as read, those after as unread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archkey.h"
#include "err.h"
#include "grow.h"
#include "log.h"
#include "names.h"
#include "rpc_conv.h"
#include "rpc_edit.h"
#include "rpc_internal.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

/* hello's protocol version and features (docs/PROTOCOL.md, "hello"). */
#define CONV_PROTOCOL 2
static const char *const features[] = {
	"carbons", "conversations", "read", "edit", "delete", "reactions", "replies", "typing", "search",
	"push", "mute",
};

/* conversations' limit and default. */
#define CONV_LIMIT_MAX 100
#define CONV_LIMIT_DEFAULT 50
/* A list entry's last message keeps at most this many bytes of its body
 * (cut at a character, "truncated" and "body_bytes" as in history): a
 * preview; the whole is a `get` away. */
#define CONV_PREVIEW_BYTES 1024

static json_t *internal(struct rpc_req *r, const char *what, int rc)
{
	return rpc__fail(r->id, "internal", "%s: %s", what, mqc_strerror(rc));
}

/* ---- hello ---- */

json_t *rpc__op_hello(struct rpc_req *r)
{
	json_t *resp = rpc__ok(r), *list = json_array();
	size_t i;

	for(i = 0; list && i < sizeof(features) / sizeof(features[0]); i++){
		if(json_array_append_new(list, json_string(features[i]))){
			json_decref(list);
			list = NULL;
		}
	}
	if(resp == NULL || list == NULL){
		json_decref(resp);
		json_decref(list);
		return NULL;
	}
	/* json_object_set_new takes list whatever happens. */
	if(json_object_set_new(resp, "protocol", json_integer(CONV_PROTOCOL))
			|| json_object_set_new(resp, "features", list)
			|| json_object_set_new(resp, "edit_window_s", json_integer(rpc__edit_window_s(r->d->udb)))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* ---- state of one conversation for me ---- */

/* My marker in c as it counts for the holder whose messages start at
 * floor (archive__seq_floor): *read_seq, *read_n; unread from them. */
static int my_marker(struct rpc_req *r, const struct archive_conv *c, int64_t floor,
		int64_t *read_seq, int64_t *read_n)
{
	int64_t base = 0;
	int rc;

	*read_seq = c->read_seq;
	*read_n = c->read_n;
	if(floor <= 1 || c->read_seq >= floor) return MQC_OK;
	/* No marker of mine (or an earlier holder's): what came before my
	 * start is not mine to read. */
	rc = archive__text_n_at(r->d->ar, c->conv, floor - 1, &base);
	if(rc != MQC_OK) return rc;
	*read_seq = 0;
	if(base > *read_n) *read_n = base;
	return MQC_OK;
}

static int64_t unread_of(const struct archive_conv *c, int64_t read_n)
{
	return c->n > read_n ? c->n - read_n : 0;
}

/* ---- conversations ---- */

/* One candidate of the list. */
struct conv_item {
	struct archive_conv c;
	char room[NAME_MAX_LEN + 1];   /* "" for a DM */
	int64_t since;                 /* my account's created, or the room's */
	int64_t floor;                 /* archive__seq_floor(since); -1: not yet known */
};

struct conv_list {
	struct conv_item *v;
	size_t n, cap;
	int64_t since, floor;          /* of my direct conversations */
};

static int add_item(struct conv_list *l, const struct archive_conv *c, const char *room, int64_t since,
		int64_t floor)
{
	struct conv_item *v = grow__one(l->v, &l->cap, l->n, sizeof(*v), 32);

	if(v == NULL) return MQC_ERR_NOMEM;
	l->v = v;
	memset(&v[l->n], 0, sizeof(v[l->n]));
	v[l->n].c = *c;
	snprintf(v[l->n].room, sizeof(v[l->n].room), "%s", room ? room : "");
	v[l->n].since = since;
	v[l->n].floor = floor;
	l->n++;
	return MQC_OK;
}

static int dm_cb(const struct archive_conv *c, void *arg)
{
	struct conv_list *l = arg;

	return add_item(l, c, NULL, l->since, l->floor);
}

/* The rooms I am in now, with their created times. */
static int by_last_desc(const void *a, const void *b)
{
	const struct conv_item *x = a, *y = b;

	return x->c.last_seq < y->c.last_seq ? 1 : x->c.last_seq > y->c.last_seq ? -1 : 0;
}

/* Cut the body of message m (borrowed) to CONV_PREVIEW_BYTES, at a
 * character boundary, saying so as history does. Non-zero if out of
 * memory. */
static int preview(json_t *m)
{
	json_t *body = json_object_get(m, "body");
	const char *s;
	size_t len, k;

	if(!json_is_string(body) || json_string_length(body) <= CONV_PREVIEW_BYTES) return 0;
	s = json_string_value(body);
	len = json_string_length(body);
	k = CONV_PREVIEW_BYTES;
	while(k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
	return json_object_set_new(m, "truncated", json_true())
		|| json_object_set_new(m, "body_bytes", json_integer((json_int_t)len))
		|| json_object_set_new(m, "body", json_stringn(s, k));
}

/* New reference: the list entry of it, or NULL with *rc set (MQC_OK: the
 * conversation is not mine to see after all: its last message predates
 * my start, which a wall clock set back can make). */
static json_t *entry(struct rpc_req *r, struct conv_item *it, int *rc)
{
	struct userdb_room_meta meta;
	json_t *found, *m, *e;
	int64_t read_seq, read_n;

	*rc = MQC_OK;
	if(it->floor < 0){
		*rc = archive__seq_floor(r->d->ar, it->since, &it->floor);
		if(*rc != MQC_OK) return NULL;
	}
	found = archive__get(r->d->ar, it->c.last_seq);
	if(found == NULL){
		*rc = MQC_ERR_DB;
		return NULL;
	}
	m = json_array_get(found, 0);
	if(m == NULL || json_integer_value(json_object_get(m, "server_ts")) < it->since){
		json_decref(found);
		return NULL;
	}
	json_incref(m);
	json_decref(found);
	*rc = my_marker(r, &it->c, it->floor, &read_seq, &read_n);
	if(*rc == MQC_OK && it->room[0]) *rc = userdb__room_meta_get(r->d->udb, it->room, &meta);
	if(*rc != MQC_OK || preview(m)){
		if(*rc == MQC_OK) *rc = MQC_ERR_NOMEM;
		json_decref(m);
		return NULL;
	}
	if(it->room[0]) e = json_pack("{sssssI}", "room", it->room, "title", meta.title, "last_seq", (json_int_t)it->c.last_seq);
	else e = json_pack("{sssI}", "with", it->c.peer, "last_seq", (json_int_t)it->c.last_seq);
	if(e == NULL){
		json_decref(m);
		*rc = MQC_ERR_NOMEM;
		return NULL;
	}
	if(json_object_set_new(e, "read_seq", json_integer(read_seq))
			|| json_object_set_new(e, "unread", json_integer(unread_of(&it->c, read_n)))){
		json_decref(m);
		json_decref(e);
		*rc = MQC_ERR_NOMEM;
		return NULL;
	}
	if(json_object_set_new(e, "last", m)){     /* takes m whatever happens */
		json_decref(e);
		*rc = MQC_ERR_NOMEM;
		return NULL;
	}
	return e;
}

/* Gather my conversations with a last text or event before `before`:
 * direct ones from my markers, rooms from my memberships. */
static json_t *gather(struct rpc_req *r, int64_t before, struct conv_list *l)
{
	struct rpc_rooms rooms = {0};
	struct userdb_user u;
	struct archive_conv c;
	char conv[NAME_MAX_LEN + 3];
	json_t *refused = NULL;
	size_t i;
	int rc;

	rc = userdb__user_get(r->d->udb, r->user, &u);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc == MQC_OK) rc = userdb__rooms_of(r->d->udb, r->user, rpc__rooms_add, &rooms);
	if(rc != MQC_OK){
		refused = internal(r, "cannot read your account", rc);
		goto done;
	}
	l->since = u.created;
	rc = archive__seq_floor(r->d->ar, u.created, &l->floor);
	if(rc == MQC_OK) rc = archive__dm_convs(r->d->ar, r->user, l->floor > 1 ? l->floor : 1, before, dm_cb, l);
	for(i = 0; rc == MQC_OK && i < rooms.n; i++){
		snprintf(conv, sizeof(conv), "r:%s", rooms.v[i].name);
		rc = archive__conv_get(r->d->ar, r->user, conv, &c);
		if(rc != MQC_OK || c.last_seq <= 0) continue;
		if(before > 0 && c.last_seq >= before) continue;
		c.peer[0] = '\0';
		/* The room's floor only for the entries of the page (entry):
		 * a binary search per room would be most of a list's cost. */
		rc = add_item(l, &c, rooms.v[i].name, rooms.v[i].since, -1);
	}
	if(rc != MQC_OK) refused = internal(r, "cannot read the archive", rc);
done:
	rpc__rooms_free(&rooms);
	return refused;
}

json_t *rpc__op_conversations(struct rpc_req *r)
{
	struct conv_list l = {0};
	json_int_t limit = CONV_LIMIT_DEFAULT, before = 0;
	json_t *list = NULL, *resp = NULL, *e;
	size_t i, size = RPC_FRAME;
	bool more = false;
	int rc = MQC_OK;

	if(!rpc__opt_int(r->req, "limit", 1, CONV_LIMIT_MAX, &limit)){
		return rpc__fail(r->id, "bad_request", "\"limit\" must be an integer from 1 to %d", CONV_LIMIT_MAX);
	}
	if(!rpc__opt_int(r->req, "before", 1, INT64_MAX, &before)){
		return rpc__fail(r->id, "bad_request", "\"before\" must be a positive integer (a last_seq)");
	}
	/* One snapshot of auth.db for my account, my rooms and their titles. */
	if(userdb__begin_read(r->d->udb) != MQC_OK){
		return rpc__fail(r->id, "internal", "cannot read the user store: %s", userdb__errmsg(r->d->udb));
	}
	resp = gather(r, before, &l);
	if(resp != NULL) goto done;
	if(l.n > 1) qsort(l.v, l.n, sizeof(*l.v), by_last_desc);
	list = json_array();
	if(list == NULL) goto done;
	for(i = 0; i < l.n; i++){
		size_t len;

		e = entry(r, &l.v[i], &rc);
		if(e == NULL){
			if(rc != MQC_OK) break;
			continue;          /* not mine to see */
		}
		len = json_dumpb(e, NULL, 0, JSON_COMPACT) + 1;
		if(json_array_size(list) >= (size_t)limit
				|| (json_array_size(list) > 0 && size + len > RPC_MAX_ANSWER)){
			/* One more that may be seen: the next page has it. */
			json_decref(e);
			more = true;
			break;
		}
		size += len;
		if(json_array_append_new(list, e)){
			rc = MQC_ERR_NOMEM;
			break;
		}
	}
	if(rc != MQC_OK){
		resp = internal(r, "cannot read the archive", rc);
		goto done;
	}
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set(resp, "conversations", list)
			|| json_object_set_new(resp, "more", json_boolean(more))){
		json_decref(resp);
		resp = NULL;
	}
done:
	userdb__rollback(r->d->udb);
	json_decref(list);
	free(l.v);
	return resp;
}

/* ---- read ---- */

/* Publish my new marker to all my devices: the `read` envelope on
 * chat/inbox/<me>/<archiver>, before the answer (responder__publish). */
static void publish_read(struct rpc_req *r, const char *with, const char *room, int64_t seq,
		int64_t unread)
{
	static unsigned counter;
	char topic[TOPIC_MAX_LEN + 1], id[48];
	int64_t ts = time__now_ms();
	json_t *msg;

	if(topic__build(topic, sizeof(topic), TOPIC_INBOX, r->user, r->d->cfg->user) <= 0) return;
	/* Unique per sender: the time and a counter of this thread. */
	snprintf(id, sizeof(id), "rd-%llx-%x", (unsigned long long)ts, ++counter);
	msg = json_pack("{ss ss sI sI sI}", "id", id, "type", "read", "seq", (json_int_t)seq,
			"unread", (json_int_t)unread, "ts", (json_int_t)ts);
	if(msg && json_object_set_new(msg, with ? "with" : "room", json_string(with ? with : room))){
		json_decref(msg);
		msg = NULL;
	}
	responder__publish(r->d, topic, msg, false);
}

json_t *rpc__op_read(struct rpc_req *r)
{
	char conv[2 * NAME_MAX_LEN + 8];
	const char *with, *room, *ref = NULL, *of = NULL;
	json_t *jref = json_object_get(r->req, "ref"), *jof = json_object_get(r->req, "of");
	json_int_t seq = 0;
	struct archive_conv c;
	struct userdb_user u;
	int64_t since = 0, floor = 0, target = 0, target_n = 0, read_seq, read_n;
	bool bad = false, has_seq = json_object_get(r->req, "seq") != NULL;
	int rc;

	with = rpc__opt_name(r->req, "with", &bad);
	room = rpc__opt_name(r->req, "room", &bad);
	if(bad) return rpc__fail(r->id, "bad_request", "\"with\" and \"room\" must be valid names");
	if((with == NULL) == (room == NULL)){
		return rpc__fail(r->id, "bad_request", "give exactly one of \"with\" and \"room\"");
	}
	if(has_seq == (jref != NULL || jof != NULL)){
		return rpc__fail(r->id, "bad_request", "give either \"seq\" or \"ref\" with \"of\"");
	}
	if(has_seq && !rpc__opt_int(r->req, "seq", 1, INT64_MAX, &seq)){
		return rpc__fail(r->id, "bad_request", "\"seq\" must be a positive integer");
	}
	if(!has_seq){
		ref = json_string_value(jref);
		of = json_string_value(jof);
		if(ref == NULL || !names__valid_msgid(ref, strlen(ref))){
			return rpc__fail(r->id, "bad_request", "\"ref\" must be a message id");
		}
		if(of == NULL || !names__valid_str(of)){
			return rpc__fail(r->id, "bad_request", "\"of\" must be a valid user name");
		}
	}
	/* Who I am and what I may read, as history decides. */
	if(userdb__begin_read(r->d->udb) != MQC_OK){
		return rpc__fail(r->id, "internal", "cannot read the user store: %s", userdb__errmsg(r->d->udb));
	}
	if(room){
		rc = userdb__is_member(r->d->udb, room, r->user) ? userdb__room_get(r->d->udb, room, NULL, &since)
			: MQC_ERR_PERM;
		snprintf(conv, sizeof(conv), "r:%s", room);
	}else{
		rc = userdb__user_get(r->d->udb, r->user, &u);
		if(rc == MQC_OK) since = u.created;
		archkey__dm_conv(r->user, with, conv, sizeof(conv));
	}
	userdb__rollback(r->d->udb);
	if(room && (rc == MQC_ERR_PERM || rc == MQC_ERR_NOTFOUND)){
		return rpc__fail(r->id, "forbidden", "you are not a member of that room");
	}
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return internal(r, "cannot read the user store", rc);

	rc = archive__conv_target(r->d->ar, conv, seq, of, ref, since, &target);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such message in that conversation");
	if(rc == MQC_OK) rc = archive__text_n_at(r->d->ar, conv, target, &target_n);
	if(rc == MQC_OK) rc = archive__conv_get(r->d->ar, r->user, conv, &c);
	if(rc == MQC_OK) rc = archive__seq_floor(r->d->ar, since, &floor);
	if(rc == MQC_OK) rc = my_marker(r, &c, floor, &read_seq, &read_n);
	if(rc != MQC_OK) return internal(r, "cannot read the archive", rc);
	if(target <= read_seq){
		/* Only forward: the marker stays where it is. */
		return json_pack("{sOsbsIsI}", "id", r->id, "ok", 1, "read_seq", (json_int_t)read_seq,
				"unread", (json_int_t)unread_of(&c, read_n));
	}
	if(target_n < read_n) target_n = read_n;
	rc = archive__read_set(r->d->ar, r->user, conv, with, room, target, target_n);
	if(rc != MQC_OK) return internal(r, "cannot write the archive", rc);
	log_debug("%s | read | %s %lld", r->user, conv, (long long)target);
	publish_read(r, with, room, target, unread_of(&c, target_n));
	return json_pack("{sOsbsIsI}", "id", r->id, "ok", 1, "read_seq", (json_int_t)target,
			"unread", (json_int_t)unread_of(&c, target_n));
}
