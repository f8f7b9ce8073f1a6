/* rpc_push.c - the push notification ops (docs/PROTOCOL.md, "Push
 * notifications"): push_config, push_register, push_unregister,
 * push_targets, push_settings, mute, unmute, mutes; and rpc__push_forget,
 * which takes a revoked device's target (or a deleted account's) away.
 *
 * All on the requester's own account, in push.db (push_store.h) through
 * the worker's own connection, opened at the first op that needs it: a
 * push.db that cannot be opened costs these ops an "internal" answer and
 * nothing else. What the operator set up (which providers) is read from
 * the daemon's config for each request. */
#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "err.h"
#include "log.h"
#include "names.h"
#include "push_crypto.h"
#include "push.h"
#include "push_store.h"
#include "rpc_internal.h"
#include "timeutil.h"

/* The longest endpoint or webhook URL, and FCM or APNs token, taken. */
#define PUSH_URL_MAX 2048
#define PUSH_TOKEN_MAX 4096
/* An APNs device token in hex: 32 bytes now; Apple says it may grow. */
#define APNS_TOKEN_MIN_HEX 64
#define APNS_TOKEN_MAX_HEX 200
/* A mute's longest for_s: a year. */
#define MUTE_FOR_MAX_S (365 * 24 * 3600)

/* The worker's push.db, opened at the first use. NULL (logged) if it
 * cannot be opened now; the next request tries again. */
static struct push_store *push_db(struct responder *d)
{
	char err[512] = "";

	if(d->push == NULL && push_store__open(d->cfg->datadir, &d->push, err, sizeof(err)) != MQC_OK){
		log_warnx("push.db: %s", err);
		d->push = NULL;
	}
	return d->push;
}

static json_t *no_store(struct rpc_req *r)
{
	return rpc__fail(r->id, "internal", "the push store cannot be opened now; retry later");
}

static json_t *store_failed(struct rpc_req *r, const char *what, int rc)
{
	return rpc__fail(r->id, "internal", "cannot %s: %s", what, mqc_strerror(rc));
}

/* Is provider p set up by the operator (archiver/README.md, "Push
 * notifications")? Web Push when the VAPID key file exists. */
static bool configured(const struct config *cfg, enum push_provider p)
{
	if(!cfg->push) return false;
	switch(p){
	case PUSH_WEBPUSH:
		return cfg->push_vapid_key && access(cfg->push_vapid_key, R_OK) == 0;
	case PUSH_FCM:
		return cfg->push_fcm_credentials && cfg->push_fcm_credentials[0];
	case PUSH_APNS:
		return cfg->push_apns_key && cfg->push_apns_key[0] && cfg->push_apns_key_id
			&& cfg->push_apns_key_id[0] && cfg->push_apns_team_id && cfg->push_apns_team_id[0]
			&& cfg->push_apns_topic && cfg->push_apns_topic[0];
	case PUSH_WEBHOOK:
		return cfg->push_webhook != 0;
	}
	return false;
}

/* The VAPID public key (base64url, uncompressed P-256) into pub. */
static int vapid_public(const struct config *cfg, char *pub, size_t publen)
{
	EVP_PKEY *key = NULL;
	char err[256];
	int rc;

	if(push_crypto__load_key(cfg->push_vapid_key, &key, err, sizeof(err)) != 0){
		log_warnx("push_config: %s", err);
		return MQC_ERR_CRYPTO;
	}
	rc = push_crypto__public_b64(key, pub, publen) == 0 ? MQC_OK : MQC_ERR_CRYPTO;
	EVP_PKEY_free(key);
	return rc;
}

json_t *rpc__op_push_config(struct rpc_req *r)
{
	const struct config *cfg = r->d->cfg;
	json_t *list = json_array(), *resp;
	char pub[128];
	int p;

	if(list == NULL) return NULL;
	for(p = PUSH_WEBPUSH; p <= PUSH_WEBHOOK; p++){
		if(configured(cfg, (enum push_provider)p)
				&& json_array_append_new(list, json_string(push_store__provider_name((enum push_provider)p)))){
			json_decref(list);
			return NULL;
		}
	}
	resp = rpc__ok_with(r, "providers", list);
	if(resp == NULL || !configured(cfg, PUSH_WEBPUSH)) return resp;
	if(vapid_public(cfg, pub, sizeof(pub)) != MQC_OK){
		json_decref(resp);
		return rpc__fail(r->id, "internal", "the Web Push key cannot be read now");
	}
	if(json_object_set_new(resp, "vapid_public_key", json_string(pub))){
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* ---- push_register ---- */

static json_t *bad_device(struct rpc_req *r)
{
	return rpc__fail(r->id, "bad_request", "\"device\" must be a device name: 1 to %d of"
			" A-Z a-z 0-9 _ . -", DEVICE_MAX_LEN);
}

/* Printable ASCII without spaces, quotes or backslashes: what a URL or a
 * token may hold here (they go into headers and JSON). */
static bool plain_ascii(const char *s, size_t n)
{
	size_t i;

	for(i = 0; i < n; i++){
		if(s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\') return false;
	}
	return true;
}

/* The string member key of the request if it is a URL the archiver will
 * POST to: https (http too when the operator allows it), with a host, at
 * most PUSH_URL_MAX bytes; else NULL with why filled. */
static const char *url_member(struct rpc_req *r, const char *key, char *why, size_t whylen)
{
	json_t *v = json_object_get(r->req, key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if(!json_is_string(v) || n == 0){
		snprintf(why, whylen, "\"%s\" must be a URL", key);
		return NULL;
	}
	if(n > PUSH_URL_MAX){
		snprintf(why, whylen, "\"%s\" is longer than %d bytes", key, PUSH_URL_MAX);
		return NULL;
	}
	if(!plain_ascii(s, n)){
		snprintf(why, whylen, "\"%s\" must be a URL of printable ASCII without spaces", key);
		return NULL;
	}
	/* The rule the push thread sends by (push.c). */
	if(!push__url_ok(s, r->d->cfg->push_allow_http)){
		snprintf(why, whylen, "\"%s\" must be an https:// URL with a host and no user or "
				"password%s", key, r->d->cfg->push_allow_http ? " (or http://)" : "");
		return NULL;
	}
	return s;
}

/* The string member key, base64url of exactly want bytes; NULL if not. */
static const char *b64_member(struct rpc_req *r, const char *key, size_t want)
{
	const char *s = json_string_value(json_object_get(r->req, key));
	unsigned char buf[128];

	if(s == NULL || strlen(s) > 2 * sizeof(buf)) return NULL;
	if(push_crypto__unb64url(s, buf, sizeof(buf)) != (long)want) return NULL;
	/* p256dh: an uncompressed point */
	if(want == 65 && buf[0] != 0x04) return NULL;
	return s;
}

/* The provider's data member of a target from the request into *data (new
 * reference); NULL if so, else the bad_request answer. */
static json_t *target_data(struct rpc_req *r, enum push_provider p, json_t **data)
{
	const char *a, *b, *c;
	json_t *v;
	char why[160];
	size_t n, i;

	*data = NULL;
	switch(p){
	case PUSH_WEBPUSH:
		if((a = url_member(r, "endpoint", why, sizeof(why))) == NULL){
			return rpc__fail(r->id, "bad_request", "%s", why);
		}
		if((b = b64_member(r, "p256dh", 65)) == NULL){
			return rpc__fail(r->id, "bad_request", "\"p256dh\" must be the subscription's public key:"
					" base64url of 65 bytes (an uncompressed P-256 point)");
		}
		if((c = b64_member(r, "auth", 16)) == NULL){
			return rpc__fail(r->id, "bad_request", "\"auth\" must be the subscription's auth secret:"
					" base64url of 16 bytes");
		}
		*data = json_pack("{s:s, s:s, s:s}", "endpoint", a, "p256dh", b, "auth", c);
		break;
	case PUSH_FCM:
		v = json_object_get(r->req, "token");
		n = json_string_length(v);
		if(!json_is_string(v) || n == 0 || n > PUSH_TOKEN_MAX || !plain_ascii(json_string_value(v), n)){
			return rpc__fail(r->id, "bad_request", "\"token\" must be the FCM registration token:"
					" 1 to %d bytes of printable ASCII", PUSH_TOKEN_MAX);
		}
		*data = json_pack("{s:s}", "token", json_string_value(v));
		break;
	case PUSH_APNS: {
		char hex[APNS_TOKEN_MAX_HEX + 1];

		v = json_object_get(r->req, "token");
		n = json_string_length(v);
		a = json_string_value(v);
		if(!json_is_string(v) || n < APNS_TOKEN_MIN_HEX || n > APNS_TOKEN_MAX_HEX || n % 2){
			n = 0;
		}
		for(i = 0; i < n; i++){
			if(!isxdigit((unsigned char)a[i])) break;
			hex[i] = (char)tolower((unsigned char)a[i]);
		}
		if(n == 0 || i < n){
			return rpc__fail(r->id, "bad_request", "\"token\" must be the APNs device token in hex"
					" (%d to %d digits)", APNS_TOKEN_MIN_HEX, APNS_TOKEN_MAX_HEX);
		}
		hex[n] = '\0';
		*data = json_pack("{s:s}", "token", hex);
		break;
	}
	case PUSH_WEBHOOK:
		if((a = url_member(r, "url", why, sizeof(why))) == NULL){
			return rpc__fail(r->id, "bad_request", "%s", why);
		}
		*data = json_pack("{s:s}", "url", a);
		break;
	}
	return NULL;
}

/* Set the target unless the account has PUSH_TARGETS_MAX of other devices
 * (*full then, nothing written): one transaction, count and write. */
static int register_target(struct push_store *db, struct rpc_req *r, const char *device,
		enum push_provider p, json_t *data, char *secret, bool *full)
{
	json_t *list = NULL, *t;
	size_t i;
	bool mine = false;
	int rc = push_store__begin(db);

	*full = false;
	if(rc == MQC_OK) rc = push_store__targets_json(db, r->user, &list);
	json_array_foreach(list, i, t){
		if(strcmp(json_string_value(json_object_get(t, "device")), device) == 0) mine = true;
	}
	if(rc == MQC_OK && !mine && json_array_size(list) >= PUSH_TARGETS_MAX) *full = true;
	json_decref(list);
	if(rc == MQC_OK && !*full) rc = push_store__target_set(db, r->user, device, p, data, secret, time__now_ms());
	if(rc == MQC_OK && !*full) return push_store__commit(db);
	push_store__rollback(db);
	return rc;
}

json_t *rpc__op_push_register(struct rpc_req *r)
{
	json_t *prov = json_object_get(r->req, "provider"), *data, *resp;
	struct push_store *db;
	const char *device;
	char secret[64] = "";
	bool bad = false, full = false;
	int p, rc;

	device = rpc__opt_device(r->req, "device", &bad);
	if(device == NULL) return bad_device(r);
	p = push_store__provider_parse(json_string_value(prov));
	if(p == 0){
		return rpc__fail(r->id, "bad_request", "\"provider\" must be \"webpush\", \"fcm\", \"apns\""
				" or \"webhook\"");
	}
	if(!configured(r->d->cfg, (enum push_provider)p)){
		return rpc__fail(r->id, "not_configured", "this service does not send %s notifications"
				" (push_config lists those it does)", push_store__provider_name((enum push_provider)p));
	}
	if((resp = target_data(r, (enum push_provider)p, &data)) != NULL) return resp;
	if(data == NULL) return NULL;
	if((db = push_db(r->d)) == NULL){
		json_decref(data);
		return no_store(r);
	}
	rc = register_target(db, r, device, (enum push_provider)p, data, secret, &full);
	json_decref(data);
	if(full){
		return rpc__fail(r->id, "too_many_devices", "%d of your devices get notifications already;"
				" unregister one", PUSH_TARGETS_MAX);
	}
	if(rc != MQC_OK) return store_failed(r, "register the device", rc);
	log_info("%s | push_register | %s %s", r->user, device, push_store__provider_name((enum push_provider)p));
	resp = rpc__ok(r);
	if(resp == NULL || json_object_set_new(resp, "device", json_string(device))
			|| json_object_set_new(resp, "provider", json_string(push_store__provider_name((enum push_provider)p)))
			|| (p == PUSH_WEBHOOK && json_object_set_new(resp, "secret", json_string(secret)))){
		json_decref(resp);
		resp = NULL;
	}
	memset(secret, 0, sizeof(secret));
	return resp;
}

json_t *rpc__op_push_unregister(struct rpc_req *r)
{
	struct push_store *db;
	const char *device;
	bool bad = false;
	int rc, removed = 0;

	device = rpc__opt_device(r->req, "device", &bad);
	if(device == NULL) return bad_device(r);
	if((db = push_db(r->d)) == NULL) return no_store(r);
	rc = push_store__target_remove(db, r->user, device, &removed);
	if(rc != MQC_OK) return store_failed(r, "unregister the device", rc);
	log_info("%s | push_unregister | %s (%d removed)", r->user, device, removed);
	return rpc__ok_with(r, "removed", json_integer(removed));
}

json_t *rpc__op_push_targets(struct rpc_req *r)
{
	struct push_store *db = push_db(r->d);
	json_t *list;
	int rc;

	if(db == NULL) return no_store(r);
	rc = push_store__targets_json(db, r->user, &list);
	if(rc != MQC_OK) return store_failed(r, "read your devices", rc);
	return rpc__ok_with(r, "targets", list);
}

json_t *rpc__op_push_settings(struct rpc_req *r)
{
	json_t *previews = json_object_get(r->req, "previews");
	struct push_store *db;
	int rc;

	if(previews != NULL && !json_is_boolean(previews)){
		return rpc__fail(r->id, "bad_request", "\"previews\" must be true or false");
	}
	if((db = push_db(r->d)) == NULL) return no_store(r);
	if(previews != NULL){
		rc = push_store__previews_set(db, r->user, json_is_true(previews));
		if(rc != MQC_OK) return store_failed(r, "change the setting", rc);
		log_info("%s | push_settings | previews %s", r->user, json_is_true(previews) ? "on" : "off");
	}
	return rpc__ok_with(r, "previews", json_boolean(push_store__previews(db, r->user)));
}

/* ---- mute, unmute, mutes ---- */

/* The conversation of a mute request, "d:<with>" or "r:<room>", into conv;
 * NULL if so, else the bad_request answer. */
static json_t *mute_conv(struct rpc_req *r, char *conv, size_t convlen)
{
	bool bad = false;
	const char *with = rpc__opt_name(r->req, "with", &bad);
	const char *room = rpc__opt_name(r->req, "room", &bad);

	if(bad || (with == NULL) == (room == NULL)){
		return rpc__fail(r->id, "bad_request", "give one of \"with\" (a user name) and \"room\""
				" (a room name)");
	}
	snprintf(conv, convlen, "%s:%s", with ? "d" : "r", with ? with : room);
	return NULL;
}

json_t *rpc__op_mute(struct rpc_req *r)
{
	char conv[NAME_MAX_LEN + 3];
	struct push_store *db;
	json_int_t for_s = 0;
	int64_t until = 0;
	json_t *resp;
	int rc;

	if((resp = mute_conv(r, conv, sizeof(conv))) != NULL) return resp;
	if(!rpc__opt_int(r->req, "for_s", 1, MUTE_FOR_MAX_S, &for_s)){
		return rpc__fail(r->id, "bad_request", "\"for_s\" must be an integer of 1 to %d (seconds);"
				" without it, for ever", MUTE_FOR_MAX_S);
	}
	if(for_s > 0) until = time__now_ms() + (int64_t)for_s * 1000;
	if((db = push_db(r->d)) == NULL) return no_store(r);
	rc = push_store__mute(db, r->user, conv, until);
	/* What is queued for it already is not sent either. */
	if(rc == MQC_OK) rc = push_store__jobs_drop(db, r->user, conv);
	if(rc != MQC_OK) return store_failed(r, "mute", rc);
	log_info("%s | mute | %s %lld", r->user, conv, (long long)until);
	return rpc__ok_with(r, "until", json_integer(until));
}

json_t *rpc__op_unmute(struct rpc_req *r)
{
	char conv[NAME_MAX_LEN + 3];
	struct push_store *db;
	json_t *resp;
	int rc;

	if((resp = mute_conv(r, conv, sizeof(conv))) != NULL) return resp;
	if((db = push_db(r->d)) == NULL) return no_store(r);
	/* Not muted: already what was asked. */
	rc = push_store__unmute(db, r->user, conv);
	if(rc != MQC_OK) return store_failed(r, "unmute", rc);
	log_info("%s | unmute | %s", r->user, conv);
	return rpc__ok(r);
}

json_t *rpc__op_mutes(struct rpc_req *r)
{
	struct push_store *db = push_db(r->d);
	json_t *list;
	int rc;

	if(db == NULL) return no_store(r);
	rc = push_store__mutes_json(db, r->user, time__now_ms(), &list);
	if(rc != MQC_OK) return store_failed(r, "read your mutes", rc);
	return rpc__ok_with(r, "mutes", list);
}

/* ---- removal ---- */

void rpc__push_forget(struct rpc_req *r, const struct rpc_revoke_ask *ask)
{
	struct push_store *db;
	int rc = MQC_OK, removed = 0;

	if(ask && ask->what == RPC_REVOKE_NONE) return;
	if((db = push_db(r->d)) == NULL){
		log_warnx("%s: push targets not removed (push.db cannot be opened)", r->user);
		return;
	}
	if(ask == NULL){
		rc = push_store__user_forget(db, r->user);
		if(rc != MQC_OK) log_warnx("%s: push data not removed: %s", r->user, mqc_strerror(rc));
		return;
	}
	switch(ask->what){
	case RPC_REVOKE_ONE:
		rc = push_store__target_remove(db, r->user, ask->device, &removed);
		break;
	case RPC_REVOKE_OTHERS:
		rc = push_store__target_remove_others(db, r->user, ask->device, &removed);
		break;
	case RPC_REVOKE_ALL:
		rc = push_store__target_remove(db, r->user, NULL, &removed);
		break;
	case RPC_REVOKE_NONE:
		break;
	}
	if(rc != MQC_OK) log_warnx("%s: push targets not removed: %s", r->user, mqc_strerror(rc));
	else if(removed) log_info("%s | push targets removed | %d", r->user, removed);
}
