/* rpc_devices.c - the device token ops (docs/PROTOCOL.md, "Device tokens"):
 * device_token, devices, device_revoke, and what passwd's revoke_devices
 * shares with device_revoke.
 *
 * The store keeps only a token's SHA-256 (common/devtoken.h); the token
 * itself exists in the answer to device_token and nowhere else. Every
 * write commits on the worker's own connection, so responder__reply holds
 * its answer until the broker has the change in force (later.c): a token
 * works, and a revoked device is closed, by the time the answer comes. */
#include <string.h>

#include <openssl/crypto.h>

#include "devtoken.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "rpc_internal.h"
#include "timeutil.h"
#include "userdb.h"

static json_t *bad_device(struct rpc_req *r, const char *key)
{
	return rpc__fail(r->id, "bad_request", "\"%s\" must be a device name: 1 to %d of"
			" A-Z a-z 0-9 _ . -", key, DEVICE_MAX_LEN);
}

/* How many devices of the user hold a token, and whether one is `device`. */
struct count_ctx {
	const char *device;
	int n;
	bool found;
};

static int count_cb(const struct userdb_device *d, void *arg)
{
	struct count_ctx *c = arg;

	c->n++;
	if(strcmp(d->device, c->device) == 0) c->found = true;
	return MQC_OK;
}

/* Give device a token of digest hex, issued at now, unless the account
 * holds RPC_MAX_DEVICES tokens of other devices already: then *full is set
 * and nothing is written. One write transaction, so two requests cannot
 * both take the last place. MQC_OK or the store's MQC_ERR_*. */
static int issue(struct rpc_req *r, const char *device, const char *hex, int64_t now, bool *full)
{
	struct userdb *udb = r->d->udb;
	struct count_ctx c = {.device = device};
	int rc = userdb__begin_write(udb);

	*full = false;
	if(rc == MQC_OK) rc = userdb__device_each(udb, r->user, count_cb, &c);
	if(rc == MQC_OK && !c.found && c.n >= RPC_MAX_DEVICES) *full = true;
	if(rc == MQC_OK && !*full) rc = userdb__device_set(udb, r->user, device, hex, now);
	if(rc == MQC_OK && !*full) rc = userdb__commit(udb);
	if(rc != MQC_OK || *full) userdb__rollback(udb);
	return rc;
}

json_t *rpc__op_device_token(struct rpc_req *r)
{
	json_t *pw = json_object_get(r->req, "password"), *resp;
	unsigned char digest[DEVTOKEN_DIGEST_LEN];
	char token[DEVTOKEN_LEN + 1], hex[DEVTOKEN_DIGEST_HEX_LEN + 1];
	const char *device;
	bool bad = false, full = false;
	int64_t now;
	int rc;

	device = rpc__opt_device(r->req, "device", &bad);
	if(device == NULL) return bad_device(r, "device");
	if(!json_is_string(pw)) return rpc__fail(r->id, "bad_request", "\"password\" must be a string");
	if((resp = rpc__check_password(r, pw, "device_token", "the password is wrong")) != NULL) return resp;
	rc = devtoken__make(token);
	if(rc == MQC_OK) rc = devtoken__digest(token, DEVTOKEN_LEN, digest);
	if(rc != MQC_OK){
		OPENSSL_cleanse(token, sizeof(token));
		return rpc__fail(r->id, "internal", "cannot make a token: %s", mqc_strerror(rc));
	}
	devtoken__to_hex(digest, hex);
	now = time__now_ms();
	rc = issue(r, device, hex, now, &full);
	if(rc != MQC_OK || full){
		OPENSSL_cleanse(token, sizeof(token));
		if(full){
			return rpc__fail(r->id, "too_many_devices", "%d of your devices hold a token already;"
					" revoke one", RPC_MAX_DEVICES);
		}
		if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "no such user");
		return rpc__fail(r->id, "internal", "cannot store the token: %s", mqc_strerror(rc));
	}
	log_info("%s | device_token | %s *****", r->user, device);
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set_new(resp, "device", json_string(device))
			|| json_object_set_new(resp, "token", json_string(token))
			|| json_object_set_new(resp, "created", json_integer(now))){
		json_decref(resp);
		resp = NULL;
	}
	OPENSSL_cleanse(token, sizeof(token));
	return resp;
}

static int device_json_cb(const struct userdb_device *d, void *arg)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "device", d->device, "created", (json_int_t)d->created,
			"last_seen", (json_int_t)d->last_seen);

	return o == NULL || json_array_append_new(arg, o) ? MQC_ERR_NOMEM : MQC_OK;
}

json_t *rpc__op_devices(struct rpc_req *r)
{
	json_t *arr = json_array();
	int rc;

	if(arr == NULL) return NULL;
	rc = userdb__device_each(r->d->udb, r->user, device_json_cb, arr);
	if(rc != MQC_OK){
		json_decref(arr);
		return rpc__fail(r->id, "internal", "cannot read your devices: %s", mqc_strerror(rc));
	}
	return rpc__ok_with(r, "devices", arr);
}

int rpc__revoke(struct rpc_req *r, const struct rpc_revoke_ask *ask, int *count)
{
	int rc;

	*count = 0;
	switch(ask->what){
	case RPC_REVOKE_ONE:
		rc = userdb__device_del(r->d->udb, r->user, ask->device);
		if(rc == MQC_OK) *count = 1;
		return rc;
	case RPC_REVOKE_OTHERS:
		return userdb__device_del_others(r->d->udb, r->user, ask->device, count);
	case RPC_REVOKE_ALL:
		return userdb__device_del_others(r->d->udb, r->user, NULL, count);
	case RPC_REVOKE_NONE:
		break;
	}
	return MQC_OK;
}

json_t *rpc__revoke_arg(struct rpc_req *r, struct rpc_revoke_ask *ask)
{
	json_t *v = json_object_get(r->req, "revoke_devices");
	const char *s = json_string_value(v);
	bool bad = false;

	memset(ask, 0, sizeof(*ask));
	if(v == NULL) return NULL;
	if(s != NULL && strcmp(s, "all") == 0){
		ask->what = RPC_REVOKE_ALL;
		return NULL;
	}
	if(s == NULL || strcmp(s, "others") != 0){
		return rpc__fail(r->id, "bad_request", "\"revoke_devices\" must be \"others\" or \"all\"");
	}
	ask->what = RPC_REVOKE_OTHERS;
	ask->device = rpc__opt_device(r->req, "device", &bad);
	if(ask->device == NULL){
		return rpc__fail(r->id, "bad_request", "\"revoke_devices\":\"others\" needs \"device\":"
				" the device to keep (1 to %d of A-Z a-z 0-9 _ . -)", DEVICE_MAX_LEN);
	}
	return NULL;
}

/* device_revoke: exactly one of "device", "others" and "all":true. */
json_t *rpc__op_device_revoke(struct rpc_req *r)
{
	json_t *all = json_object_get(r->req, "all");
	struct rpc_revoke_ask ask = {RPC_REVOKE_NONE, NULL};
	const char *one, *others;
	bool bad = false;
	int given, rc, count = 0;

	one = rpc__opt_device(r->req, "device", &bad);
	if(bad) return bad_device(r, "device");
	others = rpc__opt_device(r->req, "others", &bad);
	if(bad) return bad_device(r, "others");
	if(all != NULL && !json_is_true(all)) return rpc__fail(r->id, "bad_request", "\"all\" must be true");
	given = (one != NULL) + (others != NULL) + (all != NULL);
	if(given != 1){
		return rpc__fail(r->id, "bad_request", "give exactly one of \"device\", \"others\" and \"all\"");
	}
	if(one){
		ask.what = RPC_REVOKE_ONE;
		ask.device = one;
	}else if(others){
		ask.what = RPC_REVOKE_OTHERS;
		ask.device = others;
	}else{
		ask.what = RPC_REVOKE_ALL;
	}
	rc = userdb__begin_write(r->d->udb);
	if(rc == MQC_OK) rc = rpc__revoke(r, &ask, &count);
	if(rc == MQC_OK) rc = userdb__commit(r->d->udb);
	if(rc != MQC_OK) userdb__rollback(r->d->udb);
	if(rc == MQC_ERR_NOTFOUND) return rpc__fail(r->id, "not_found", "that device has no token");
	if(rc != MQC_OK) return rpc__fail(r->id, "internal", "cannot revoke: %s", mqc_strerror(rc));
	rpc__push_forget(r, &ask);
	log_info("%s | device_revoke | %s%s (%d revoked)", r->user,
			ask.what == RPC_REVOKE_ALL ? "all" : ask.what == RPC_REVOKE_OTHERS ? "all but " : "",
			ask.device ? ask.device : "", count);
	return rpc__ok_with(r, "revoked", json_integer(count));
}
