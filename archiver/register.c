/* register.c - self-registration: chat/register/<clientid>/req -> .../resp.
 *
 * The mode (off, invite, open) is the archiver's `registration` setting; it
 * must match the plugin's, which decides whether `_register` may connect at
 * all. A global token bucket bounds the rate of new accounts (the plugin
 * limits `_register` connections per address). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mqtt.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "pwhash.h"
#include "timeutil.h"
#include "userdb.h"

#define REG_MAX_REQUEST 4096
#define REG_MAX_ID 128
/* Token bucket: registration_rate accounts a minute, bursts of twice that. */

/* Take one token; false when the bucket is empty. */
static bool take_token(struct daemon *d)
{
	int64_t now = time__mono_ms();
	double rate = d->cfg.registration_rate, burst = 2.0 * rate;

	d->reg_tokens += (double)(now - d->reg_last) * rate / 60000.0;
	if(d->reg_tokens > burst) d->reg_tokens = burst;
	d->reg_last = now;
	if(d->reg_tokens < 1.0) return false;
	d->reg_tokens -= 1.0;
	return true;
}

/* A string member, or NULL if absent or not a string (*bad set then). */
static const char *get_str(json_t *req, const char *key, bool *present)
{
	json_t *v = json_object_get(req, key);

	*present = v != NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* New reference: the answer to one registration request. */
static json_t *answer(struct daemon *d, const char *clientid, const void *payload, size_t len)
{
	json_t *req, *id, *resp = NULL, *pw;
	const char *user, *nick, *invite;
	char hash[PWHASH_STR_LEN], esc[64];
	bool present;
	size_t pwlen;
	int rc;

	req = rpc__load_request(payload, len, REG_MAX_REQUEST, REG_MAX_ID, &id, &resp);
	if(req == NULL) return resp;
	if(d->cfg.registration == REG_OFF){
		resp = rpc__fail(id, "closed", "registration is closed");
		goto done;
	}
	if(!take_token(d)){
		resp = rpc__fail(id, "rate_limited", "too many registrations; try again in a minute");
		goto done;
	}
	user = get_str(req, "user", &present);
	if(user == NULL || !names__valid_str(user)){
		resp = rpc__fail(id, "invalid_name", "a user name is 1 to 32 of a-z 0-9 _ . - starting with a letter or digit");
		goto done;
	}
	pw = json_object_get(req, "password");
	if(!json_is_string(pw)){
		resp = rpc__fail(id, "bad_request", "\"password\" must be a string");
		goto done;
	}
	pwlen = json_string_length(pw);
	if(pwlen < PWHASH_MIN_PASSWORD || pwlen > PWHASH_MAX_PASSWORD
			|| memchr(json_string_value(pw), '\0', pwlen)){
		resp = rpc__fail(id, "weak_password", "a password has %d to %d bytes", PWHASH_MIN_PASSWORD,
				PWHASH_MAX_PASSWORD);
		goto done;
	}
	nick = get_str(req, "nick", &present);
	if(present && (nick == NULL || !nick__valid(nick))){
		resp = rpc__fail(id, "bad_request", "\"nick\" must be 1..64 bytes of text without control characters");
		goto done;
	}
	if(nick == NULL) nick = user;
	invite = get_str(req, "invite", &present);
	if(present && invite == NULL){
		resp = rpc__fail(id, "bad_request", "\"invite\" must be a string");
		goto done;
	}
	if(d->cfg.registration == REG_INVITE && (invite == NULL || *invite == '\0')){
		resp = rpc__fail(id, "invite_required", "registration needs an invite code");
		goto done;
	}
	/* Hash before the transaction, which stays short. */
	rc = pwhash__make(json_string_value(pw), pwlen, PWHASH_DEFAULT_ITERATIONS, hash, sizeof(hash));
	if(rc != MQC_OK){
		resp = rpc__fail(id, "internal", "cannot hash the password");
		goto done;
	}
	rc = userdb__begin_write(d->udb);
	if(rc != MQC_OK){
		resp = rpc__fail(id, "internal", "user store busy: %s", mqc_strerror(rc));
		goto done;
	}
	if(d->cfg.registration == REG_INVITE){
		rc = userdb__invite_use(d->udb, invite, time__now_ms());
		if(rc != MQC_OK){
			userdb__rollback(d->udb);
			if(rc == MQC_ERR_NOTFOUND) resp = rpc__fail(id, "invite_invalid", "unknown, used up or expired invite");
			else resp = rpc__fail(id, "internal", "%s", mqc_strerror(rc));
			goto done;
		}
	}
	rc = userdb__user_add(d->udb, user, USER_KIND_USER, nick, hash);
	if(rc != MQC_OK){
		userdb__rollback(d->udb);
		if(rc == MQC_ERR_EXISTS) resp = rpc__fail(id, "taken", "that name is taken");
		else if(rc == MQC_ERR_INVAL) resp = rpc__fail(id, "invalid_name", "invalid name or nick");
		else resp = rpc__fail(id, "internal", "%s", mqc_strerror(rc));
		goto done;
	}
	rc = userdb__commit(d->udb);
	if(rc != MQC_OK){
		userdb__rollback(d->udb);
		resp = rpc__fail(id, "internal", "cannot commit: %s", mqc_strerror(rc));
		goto done;
	}
	d->stats.registrations++;
	log_info("%s | register | %s%s", log_escape(clientid, strlen(clientid), esc, sizeof(esc)), user,
			d->cfg.registration == REG_INVITE ? " (invite)" : "");
	resp = json_pack("{sOsbss}", "id", id, "ok", 1, "user", user);
done:
	memset(hash, 0, sizeof(hash));
	json_decref(req);
	return resp;
}

void register__handle(struct conn *c, const struct mqtt_msg *msg)
{
	char clientid[CLIENTID_MAX_LEN + 1], topic[CLIENTID_MAX_LEN + 32], esc[128];
	const char *rest = msg->topic + 14, *slash, *device;
	size_t len, ulen, dlen;

	/* chat/register/_register@<random>/req */
	slash = strchr(rest, '/');
	len = slash ? (size_t)(slash - rest) : 0;
	if(slash == NULL || strcmp(slash, "/req") != 0 || len == 0 || len > CLIENTID_MAX_LEN){
		goto bad_topic;
	}
	memcpy(clientid, rest, len);
	clientid[len] = '\0';
	if(!names__split_clientid(clientid, &ulen, &device, &dlen) || device == NULL
			|| ulen != strlen(REGISTER_USER) || strncmp(clientid, REGISTER_USER, ulen) != 0){
		goto bad_topic;
	}
	snprintf(topic, sizeof(topic), "chat/register/%s/resp", clientid);
	daemon__reply(c, topic, answer(c->d, clientid, msg->payload, msg->len), msg);
	return;
bad_topic:
	log_warnx("registration on an unexpected topic %s ignored",
			log_escape(msg->topic, strlen(msg->topic), esc, sizeof(esc)));
}
