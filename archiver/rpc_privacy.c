/* rpc_privacy.c - the privacy ops (docs/PROTOCOL.md, "Privacy: presence,
 * contacts and room adds"): privacy, contacts, contact_add, contact_remove.
 *
 * The plugin applies the settings (who receives a presence) from its
 * snapshot; these ops only write them. Every write commits on the
 * worker's own connection, so responder__reply holds its answer until the
 * broker has the change in force (later.c). */
#include <string.h>

#include "err.h"
#include "log.h"
#include "rpc_internal.h"
#include "timeutil.h"
#include "userdb.h"

/* An optional privacy level member: *out unchanged if absent; false if
 * present but not one of the levels. */
static bool opt_level(json_t *req, const char *key, enum privacy_level *out)
{
	json_t *v = json_object_get(req, key);

	if(v == NULL) return true;
	return json_is_string(v) && privacy__parse(json_string_value(v), out);
}

static json_t *privacy_answer(struct rpc_req *r, const struct userdb_privacy *p)
{
	json_t *resp = rpc__ok(r);

	if(resp == NULL || json_object_set_new(resp, "presence", json_string(privacy__name(p->presence)))
			|| json_object_set_new(resp, "room_adds", json_string(privacy__name(p->room_adds)))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

json_t *rpc__op_privacy(struct rpc_req *r)
{
	struct userdb *udb = r->d->udb;
	struct userdb_privacy p, was;
	int rc = userdb__privacy_get(udb, r->user, &p);

	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	was = p;
	if(!opt_level(r->req, "presence", &p.presence) || !opt_level(r->req, "room_adds", &p.room_adds)){
		return rpc__fail(r->id, "bad_request",
				"\"presence\" and \"room_adds\" are \"everyone\", \"contacts\" or \"nobody\"");
	}
	if(p.presence == was.presence && p.room_adds == was.room_adds) return privacy_answer(r, &p);
	rc = userdb__privacy_set(udb, r->user, &p);
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	log_info("%s | privacy | presence %s, room adds %s", r->user, privacy__name(p.presence),
			privacy__name(p.room_adds));
	return privacy_answer(r, &p);
}

static int contact_cb(const char *user, const char *contact, int64_t since, void *arg)
{
	json_t *e;

	(void)user;
	e = json_pack("{s:s, s:I}", "user", contact, "since", (json_int_t)since);
	return e == NULL || json_array_append_new(arg, e) ? MQC_ERR_NOMEM : MQC_OK;
}

json_t *rpc__op_contacts(struct rpc_req *r)
{
	json_t *list = json_array();
	int rc = list ? userdb__contact_each(r->d->udb, r->user, contact_cb, list) : MQC_ERR_NOMEM;

	if(rc != MQC_OK){
		json_decref(list);
		return rpc__fail(r->id, "internal", "%s", mqc_strerror(rc));
	}
	return rpc__ok_with(r, "contacts", list);
}

static int contact_change(struct userdb *udb, const char *me, const char *who, bool add)
{
	return add ? userdb__contact_add(udb, me, who, time__now_ms()) : userdb__contact_del(udb, me, who);
}

/* contact_add and contact_remove: the other account, checked. */
static json_t *contact_op(struct rpc_req *r, bool add)
{
	return rpc__list_op(r, add, add ? "contact_add" : "contact_remove",
			"you are always your own contact", contact_change);
}

json_t *rpc__op_contact_add(struct rpc_req *r)
{
	return contact_op(r, true);
}

json_t *rpc__op_contact_remove(struct rpc_req *r)
{
	return contact_op(r, false);
}
