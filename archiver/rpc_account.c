/* rpc_account.c - a person's own data and account (docs/PROTOCOL.md,
 * "Your data: export and delete_account"): export, delete_account.
 *
 * export reads what `mqchat-archiver user export` prints, in pages that
 * each fit an answer: the account and its lists first (paged by name if
 * they do not fit in one answer), then the messages by seq, as sync pages
 * them. delete_account checks the password as passwd checks old, then
 * does what `mqchat-archiver user del NAME [--erase]` does: messages
 * first, so a failure leaves the account to ask again. Its commit makes
 * responder__reply hold the answer until the broker has the deletion in
 * force, and by then the broker has closed the asking connection: the
 * contract says how an app learns the outcome anyway. */
#include <string.h>

#include "archive.h"
#include "err.h"
#include "log.h"
#include "rpc_internal.h"
#include "userdb.h"

/* Messages read for one page; fewer go out when they do not fit. */
#define EXPORT_PAGE 500

/* The lists of export, in the order they are paged, and the member of an
 * entry that is its place in the list (NULL: the entry is the name). */
enum export_list { LIST_ROOMS, LIST_CONTACTS, LIST_BLOCKS, LIST__COUNT };
static const struct {
	const char *name;
	const char *key;
} lists[LIST__COUNT] = {
	[LIST_ROOMS] = {"rooms", "room"},
	[LIST_CONTACTS] = {"contacts", "user"},
	[LIST_BLOCKS] = {"blocks", NULL},
};

/* What export reads of auth.db, in one transaction. */
struct export_data {
	struct userdb_user u;
	struct userdb_privacy p;
	json_t *devices;             /* new references, or NULL */
	json_t *list[LIST__COUNT];
};

static int append_new(json_t *arr, json_t *e)
{
	return e == NULL || json_array_append_new(arr, e) ? MQC_ERR_NOMEM : MQC_OK;
}

/* The rooms of user, each with user's role in it. */
struct room_ctx {
	struct userdb *udb;
	const char *user;
	json_t *list;
};

static int room_cb(const char *room, int64_t created, void *arg)
{
	struct room_ctx *c = arg;
	enum room_role role;
	int rc = userdb__room_role(c->udb, room, c->user, &role);

	(void)created;
	if(rc != MQC_OK) return rc;
	return append_new(c->list, json_pack("{s:s, s:s}", "room", room, "role", room_role__name(role)));
}

static int contact_cb(const char *user, const char *contact, int64_t since, void *arg)
{
	(void)user;
	return append_new(arg, json_pack("{s:s, s:I}", "user", contact, "since", (json_int_t)since));
}

static int block_cb(const char *user, const char *blocked, void *arg)
{
	(void)user;
	return append_new(arg, json_string(blocked));
}

/* No digests: what a device's token hashes to is not the person's data. */
static int device_cb(const struct userdb_device *d, void *arg)
{
	return append_new(arg, json_pack("{s:s, s:I, s:I}", "device", d->device,
				"created", (json_int_t)d->created, "last_seen", (json_int_t)d->last_seen));
}

static void export_free(struct export_data *x)
{
	int k;

	json_decref(x->devices);
	for(k = 0; k < LIST__COUNT; k++) json_decref(x->list[k]);
}

/* Read the requester's account, settings, devices and lists into x (one
 * read transaction). MQC_OK, MQC_ERR_NOTFOUND (no such account now) or
 * another MQC_ERR_*; x is the caller's to free either way. */
static int export_read(struct rpc_req *r, struct export_data *x)
{
	struct userdb *udb = r->d->udb;
	struct room_ctx rooms;
	int rc, k;

	memset(x, 0, sizeof(*x));
	x->devices = json_array();
	for(k = 0; k < LIST__COUNT; k++) x->list[k] = json_array();
	if(x->devices == NULL || !x->list[LIST_ROOMS] || !x->list[LIST_CONTACTS] || !x->list[LIST_BLOCKS]){
		return MQC_ERR_NOMEM;
	}
	if((rc = userdb__begin_read(udb)) != MQC_OK) return rc;
	rc = userdb__user_get(udb, r->user, &x->u);
	if(rc == MQC_OK) rc = userdb__privacy_get(udb, r->user, &x->p);
	if(rc == MQC_OK) rc = userdb__device_each(udb, r->user, device_cb, x->devices);
	rooms.udb = udb;
	rooms.user = r->user;
	rooms.list = x->list[LIST_ROOMS];
	if(rc == MQC_OK) rc = userdb__rooms_of(udb, r->user, room_cb, &rooms);
	if(rc == MQC_OK) rc = userdb__contact_each(udb, r->user, contact_cb, x->list[LIST_CONTACTS]);
	if(rc == MQC_OK) rc = userdb__block_each(udb, r->user, block_cb, x->list[LIST_BLOCKS]);
	userdb__rollback(udb);
	return rc;
}

static size_t json_len(json_t *j)
{
	return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

/* The name of entry e of list k (its place in the list). */
static const char *entry_name(int k, json_t *e)
{
	return json_string_value(lists[k].key ? json_object_get(e, lists[k].key) : e);
}

/* Put lists k.. of x into resp (borrowed), list k from after its entry
 * named after (NULL: from its start), while the answer stays under
 * RPC_MAX_ANSWER. Returns true if they all went; false with
 * "lists_next":{"list","after"} set in resp where the next answer starts
 * (*rc: MQC_ERR_NOMEM if a member could not be set). */
static bool put_lists(json_t *resp, struct export_data *x, int k, const char *after, int *rc)
{
	size_t total = json_len(resp) + RPC_FRAME;
	json_t *part, *e;
	size_t i;

	*rc = MQC_OK;
	for(; k < LIST__COUNT; k++, after = NULL){
		const char *last = after;

		part = json_array();
		if(part == NULL || json_object_set_new(resp, lists[k].name, part)){
			*rc = MQC_ERR_NOMEM;
			return false;
		}
		total += strlen(lists[k].name) + 6;
		json_array_foreach(x->list[k], i, e){
			const char *name = entry_name(k, e);
			size_t len = json_len(e) + 1;

			if(after && strcmp(name, after) <= 0) continue;
			if(total + len > RPC_MAX_ANSWER){
				/* last NULL (nothing of list k fit): from its start. */
				if(json_object_set_new(resp, "lists_next", json_pack("{s:s, s:s?}",
								"list", lists[k].name, "after", last))){
					*rc = MQC_ERR_NOMEM;
				}
				return false;
			}
			if(json_array_append(part, e)){
				*rc = MQC_ERR_NOMEM;
				return false;
			}
			total += len;
			last = name;
		}
	}
	return true;
}

/* The request's "lists_from" {"list": NAME, "after": NAME}: true with *k
 * and *after (borrowed) if valid, or absent (*k = -1). */
static bool lists_from(struct rpc_req *r, int *k, const char **after)
{
	json_t *from = json_object_get(r->req, "lists_from"), *list, *a;
	bool bad = false;

	*k = -1;
	*after = NULL;
	if(from == NULL) return true;
	list = json_object_get(from, "list");
	a = json_object_get(from, "after");
	if(!json_is_object(from) || !json_is_string(list) || (a && !json_is_null(a) && !json_is_string(a))){
		return false;
	}
	for(*k = 0; *k < LIST__COUNT; (*k)++){
		if(strcmp(json_string_value(list), lists[*k].name) == 0) break;
	}
	if(*k == LIST__COUNT) return false;
	if(json_is_string(a)) *after = rpc__opt_name(from, "after", &bad);
	return !bad;
}

/* The first answer's account, privacy and devices members. */
static int put_account(json_t *resp, struct export_data *x)
{
	json_t *a = json_pack("{s:s, s:s, s:s, s:I}", "name", x->u.name, "nick", x->u.nick,
			"kind", user_kind__name(x->u.kind), "created", (json_int_t)x->u.created);
	json_t *p = json_pack("{s:s, s:s}", "presence", privacy__name(x->p.presence),
			"room_adds", privacy__name(x->p.room_adds));

	/* Not ||: each set_new takes its value, even a NULL one, even failing. */
	if(json_object_set_new(resp, "account", a) | json_object_set_new(resp, "privacy", p)
			| json_object_set(resp, "devices", x->devices)){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* The messages after seq after, fit into resp (borrowed) beside what it
 * holds already; sets "messages" and "more". */
static int put_messages(struct rpc_req *r, json_t *resp, int64_t created, int64_t after)
{
	bool more = false;
	json_t *msgs = archive__export_page(r->d->ar, r->user, created, after, EXPORT_PAGE, &more);
	int rc;

	if(msgs == NULL) return MQC_ERR_DB;
	if(rpc__fit_messages(msgs, json_len(resp) + RPC_FRAME, &rc)) more = true;
	if(rc != MQC_OK || json_object_set_new(resp, "messages", msgs)
			|| json_object_set_new(resp, "more", json_boolean(more))){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* The answer when reading the account failed with rc (not MQC_OK). */
static json_t *read_failed(struct rpc_req *r, int rc)
{
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	return rpc__fail(r->id, "internal", "cannot read your account: %s", mqc_strerror(rc));
}

/* A later page: the messages after seq after only, as sync pages them. */
static json_t *messages_page(struct rpc_req *r, int64_t after)
{
	struct userdb_user u;
	json_t *msgs;
	bool more = false;
	int rc = userdb__user_get(r->d->udb, r->user, &u);

	if(rc != MQC_OK) return read_failed(r, rc);
	/* Two statements: argument evaluation order is unspecified. */
	msgs = archive__export_page(r->d->ar, r->user, u.created, after, EXPORT_PAGE, &more);
	return rpc__messages_answer(r, msgs, more);
}

json_t *rpc__op_export(struct rpc_req *r)
{
	struct export_data x;
	json_int_t after = -1;
	json_t *a = json_object_get(r->req, "after"), *resp = NULL;
	const char *from_name;
	int rc, k;

	if(a != NULL && (!json_is_integer(a) || json_integer_value(a) < 0)){
		return rpc__fail(r->id, "bad_request", "\"after\" must be an integer >= 0 (a seq)");
	}
	if(a != NULL) after = json_integer_value(a);
	if(!lists_from(r, &k, &from_name)){
		return rpc__fail(r->id, "bad_request", "\"lists_from\" must be {\"list\": \"rooms\", "
				"\"contacts\" or \"blocks\", \"after\": a name}, as an answer's \"lists_next\"");
	}
	if(a != NULL && k >= 0) return rpc__fail(r->id, "bad_request", "give \"after\" or \"lists_from\", not both");
	if(after >= 0) return messages_page(r, after);
	rc = export_read(r, &x);
	if(rc != MQC_OK){
		export_free(&x);
		return read_failed(r, rc);
	}
	resp = rpc__ok(r);
	rc = resp ? MQC_OK : MQC_ERR_NOMEM;
	if(rc == MQC_OK && k < 0) rc = put_account(resp, &x);
	if(rc == MQC_OK){
		if(put_lists(resp, &x, k < 0 ? 0 : k, from_name, &rc)) rc = put_messages(r, resp, x.u.created, 0);
		else if(rc == MQC_OK && (json_object_set_new(resp, "messages", json_array())
					|| json_object_set_new(resp, "more", json_true()))) rc = MQC_ERR_NOMEM;
	}
	export_free(&x);
	if(rc == MQC_ERR_DB){
		json_decref(resp);
		return rpc__fail(r->id, "internal", "archive read failed: %s", archive__errmsg(r->d->ar));
	}
	if(rc != MQC_OK){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

json_t *rpc__op_delete_account(struct rpc_req *r)
{
	json_t *pw = json_object_get(r->req, "password"), *erase = json_object_get(r->req, "erase"), *resp;
	struct userdb_user u;
	int64_t erased = 0;
	int rc;

	if(!json_is_string(pw)) return rpc__fail(r->id, "bad_request", "\"password\" must be a string");
	if(erase != NULL && !json_is_boolean(erase)){
		return rpc__fail(r->id, "bad_request", "\"erase\" must be true or false");
	}
	rc = userdb__user_get(r->d->udb, r->user, &u);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	/* The archiver's own account (and any service) is the operators'. */
	if(u.kind == USER_KIND_SERVICE){
		return rpc__fail(r->id, "forbidden", "a service account is deleted by an operator");
	}
	if((resp = rpc__check_password(r, pw, "delete_account", "the password is wrong")) != NULL) return resp;
	if(json_is_true(erase)){
		rc = archive__erase_user(r->d->ar, r->user, u.created, &erased);
		if(rc != MQC_OK){
			return rpc__fail(r->id, "internal", "cannot erase your messages (the account is kept): %s",
					mqc_strerror(rc));
		}
	}
	rc = userdb__begin_write(r->d->udb);
	if(rc == MQC_OK){
		rc = userdb__user_del(r->d->udb, r->user);
		if(rc == MQC_OK) rc = userdb__commit(r->d->udb);
		if(rc != MQC_OK) userdb__rollback(r->d->udb);
	}
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot delete the account: %s", mqc_strerror(rc));
	rpc__push_forget(r, NULL);
	log_info("%s | delete_account | %s (%lld messages erased)", r->user,
			json_is_true(erase) ? "erase" : "messages kept", (long long)erased);
	return rpc__ok(r);
}
