/* rpc_internal.h - what rpc.c shares with the files of its other ops
 * (rpc_devices.c, rpc_privacy.c, rpc_account.c, rpc_rooms.c): the request
 * being answered and the helpers every op answers with. Nothing outside the
 * RPC files includes it; the daemon sees rpc__handle in daemon.h. */
#ifndef MQCHAT_RPC_INTERNAL_H
#define MQCHAT_RPC_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "archive.h"
#include "daemon.h"

/* At most this many devices of one account hold a token
 * (docs/PROTOCOL.md, "Device tokens": too_many_devices). */
#define RPC_MAX_DEVICES 32

/* Largest answer with messages: every payload must stay under the 64 KiB
 * the contract promises (the broker's message_size_limit is above it). */
#define RPC_MAX_ANSWER 60000
/* Room for the rest of an answer around its messages: the id (128 bytes,
 * up to 6 times that once JSON-escaped), "ok", "more" and the keys. */
#define RPC_FRAME 1024

struct rpc_req {
	struct responder *d;   /* the worker's: its own store connections */
	const char *user;
	json_t *req;   /* borrowed */
	json_t *id;    /* borrowed: the request's id, or json null */
};

/* New reference: {"id":..,"ok":true}. */
json_t *rpc__ok(struct rpc_req *r);
/* rpc__ok with key set to value (taken, whatever happens); NULL if out of
 * memory. */
json_t *rpc__ok_with(struct rpc_req *r, const char *key, json_t *value);
/* The answer to an op on one of the requester's lists of other accounts
 * (blocks, contacts): the request's "user" must be a valid name and not the
 * requester's (self: the bad_request message then); change(udb, me, who,
 * add) does it. Removing one who is not on the list is done already;
 * adding an unknown account is not_found. Logged as "<me> | <op> | <who>". */
json_t *rpc__list_op(struct rpc_req *r, bool add, const char *op, const char *self,
		int (*change)(struct userdb *udb, const char *me, const char *who, bool add));

/* Check the password pw (borrowed, any JSON) of the requester as `passwd`
 * checks `old`: throttled per account (pwthrottle.c), the result recorded
 * before the verdict is told. NULL if it is right; else the answer to give
 * (new reference): rate_limited with retry_ms, bad_password (wrong says
 * what was wrong, op names the op in the log), not_found or internal. */
json_t *rpc__check_password(struct rpc_req *r, json_t *pw, const char *op, const char *wrong);

/* Which devices lose their token: passwd's revoke_devices, device_revoke. */
enum rpc_revoke {
	RPC_REVOKE_NONE = 0,   /* nothing asked */
	RPC_REVOKE_ONE,        /* the device named */
	RPC_REVOKE_OTHERS,     /* all but the device named */
	RPC_REVOKE_ALL,
};

struct rpc_revoke_ask {
	enum rpc_revoke what;
	const char *device;    /* borrowed from the request; NULL for ALL and NONE */
};

/* passwd's optional "revoke_devices" ("others" with "device", or "all")
 * into *ask: NULL, or the bad_request answer (new reference). */
json_t *rpc__revoke_arg(struct rpc_req *r, struct rpc_revoke_ask *ask);
/* Revoke what ask says of the requester's devices, inside the caller's
 * write transaction; *count gets how many. MQC_ERR_NOTFOUND when RPC_REVOKE_ONE
 * names a device without a token, else MQC_OK or the store's MQC_ERR_*. */
int rpc__revoke(struct rpc_req *r, const struct rpc_revoke_ask *ask, int *count);

/* Cut msgs (borrowed, archived messages in paging order) from its end
 * until they fit in an answer whose other members take frame bytes (at
 * least RPC_FRAME): true if it cut anything (the answer then says
 * "more"). The end is the side the next page starts from. With frame ==
 * RPC_FRAME (an answer of messages only) at least one message stays: one
 * too large to share a page comes alone on the next one, and one that
 * does not fit even alone has its body cut ("truncated", "body_bytes";
 * the `get` op gives the rest). A larger frame may leave none. MQC_OK, or
 * MQC_ERR_NOMEM in *rc if a truncation failed. */
bool rpc__fit_messages(json_t *msgs, size_t frame, int *rc);
/* New reference: {"id","ok":true,"messages":msgs,"more"} with msgs (a new
 * reference, stolen; NULL: the archive read failed) cut to fit
 * (rpc__fit_messages); NULL if out of memory. */
json_t *rpc__messages_answer(struct rpc_req *r, json_t *msgs, bool more);

/* An optional name member of req: NULL if absent; *bad set if present but
 * not a valid account or room name. */
const char *rpc__opt_name(json_t *req, const char *key, bool *bad);
/* The same for a device name (the client id's device part). */
const char *rpc__opt_device(json_t *req, const char *key, bool *bad);
/* The rooms an account is in, with their created times, in the form the
 * archive's reads take (archive_room: v[i].name is names[i]). */
struct rpc_rooms {
	struct archive_room *v;
	char **names;           /* the same names, to free */
	size_t n, cap, ncap;
};
/* Add one (also a userdb__rooms_of callback): MQC_OK or MQC_ERR_NOMEM. */
int rpc__rooms_add(const char *room, int64_t created, void *rooms);
void rpc__rooms_free(struct rpc_rooms *l);
/* An optional integer member into *out: true if absent (out untouched)
 * or an integer in [min, max]. */
bool rpc__opt_int(json_t *req, const char *key, json_int_t min, json_int_t max, json_int_t *out);

/* ---- the ops of rpc_devices.c ---- */
json_t *rpc__op_device_token(struct rpc_req *r);
json_t *rpc__op_devices(struct rpc_req *r);
json_t *rpc__op_device_revoke(struct rpc_req *r);

/* ---- the ops of rpc_privacy.c ---- */
json_t *rpc__op_privacy(struct rpc_req *r);
json_t *rpc__op_contacts(struct rpc_req *r);
json_t *rpc__op_contact_add(struct rpc_req *r);
json_t *rpc__op_contact_remove(struct rpc_req *r);

/* ---- the ops of rpc_account.c ---- */
json_t *rpc__op_export(struct rpc_req *r);
json_t *rpc__op_delete_account(struct rpc_req *r);

/* ---- the ops of rpc_push.c ---- */
json_t *rpc__op_push_config(struct rpc_req *r);
json_t *rpc__op_push_register(struct rpc_req *r);
json_t *rpc__op_push_unregister(struct rpc_req *r);
json_t *rpc__op_push_targets(struct rpc_req *r);
json_t *rpc__op_push_settings(struct rpc_req *r);
json_t *rpc__op_mute(struct rpc_req *r);
json_t *rpc__op_unmute(struct rpc_req *r);
json_t *rpc__op_mutes(struct rpc_req *r);
/* After a revocation committed: remove the push targets of the devices
 * ask revoked (and their queued notifications); ask NULL: the account is
 * deleted, everything of it in push.db goes. A failure is logged, never
 * answered: the revocation stands. */
void rpc__push_forget(struct rpc_req *r, const struct rpc_revoke_ask *ask);

/* ---- the ops of rpc_rooms.c ---- */
json_t *rpc__op_room_create(struct rpc_req *r);
json_t *rpc__op_room_add(struct rpc_req *r);
json_t *rpc__op_room_remove(struct rpc_req *r);
json_t *rpc__op_room_promote(struct rpc_req *r);
json_t *rpc__op_room_demote(struct rpc_req *r);
json_t *rpc__op_room_set(struct rpc_req *r);
json_t *rpc__op_room_leave(struct rpc_req *r);
json_t *rpc__op_room_delete(struct rpc_req *r);
json_t *rpc__op_room_info(struct rpc_req *r);
/* Add room's "title" and user's "role" in it to o (borrowed), for `rooms`.
 * MQC_OK or an MQC_ERR_*. */
int rpc__room_summary(struct userdb *udb, const char *room, const char *user, json_t *o);

#endif
