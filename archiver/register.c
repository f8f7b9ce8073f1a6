/* register.c - self-registration: chat/register/<clientid>/req -> .../resp.
 *
 * The mode (off, invite, open) is the archiver's `registration` setting; it
 * must match the plugin's, which decides whether `_register` may connect at
 * all. A global token bucket bounds the rate of new accounts; only a
 * request that passes every check (it would create an account) takes a
 * token, so invalid ones cannot spend the budget of real ones. Each
 * `_register` client id makes one account at most (the plugin limits
 * `_register` connections per address). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mqtt.h"
#include "err.h"
#include "grow.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "nick.h"
#include "nick_answer.h"
#include "pwhash.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

#define REG_MAX_REQUEST 4096
#define REG_MAX_ID 128
/* Token bucket: registration_rate accounts a minute, bursts of twice that. */
/* A client id that made an account is remembered this long (its connection
 * is closed by the plugin after 30 s; its id is random). */
#define REG_ONCE_MS (60 * 60 * 1000)

/* Take one token; false when the bucket is empty. */
static bool take_token(struct responder *d)
{
	int64_t now = time__mono_ms();
	double rate = d->cfg->registration_rate, burst = 2.0 * rate;

	d->reg_tokens += (double)(now - d->reg_last) * rate / 60000.0;
	if(d->reg_tokens > burst) d->reg_tokens = burst;
	d->reg_last = now;
	if(d->reg_tokens < 1.0) return false;
	d->reg_tokens -= 1.0;
	return true;
}

/* Give back a token taken for a request that then made no account. */
static void give_token(struct responder *d)
{
	d->reg_tokens += 1.0;
}

/* Forget client ids remembered longer than REG_ONCE_MS. */
static void prune_done(struct responder *d, int64_t now)
{
	size_t i = 0;

	while(i < d->reg_done_n){
		if(now - d->reg_done[i].at >= REG_ONCE_MS){
			d->reg_done[i] = d->reg_done[--d->reg_done_n];
		}else{
			i++;
		}
	}
}

/* Has clientid made an account already (in the last REG_ONCE_MS)? */
static bool already_done(struct responder *d, const char *clientid)
{
	size_t i;

	prune_done(d, time__mono_ms());
	for(i = 0; i < d->reg_done_n; i++){
		if(strcmp(d->reg_done[i].clientid, clientid) == 0) return true;
	}
	return false;
}

/* Remember that clientid made an account. MQC_OK or MQC_ERR_NOMEM. */
static int remember_done(struct responder *d, const char *clientid)
{
	struct reg_done *v = grow__one(d->reg_done, &d->reg_done_cap, d->reg_done_n, sizeof(*v), 16);

	if(v == NULL) return MQC_ERR_NOMEM;
	d->reg_done = v;
	snprintf(d->reg_done[d->reg_done_n].clientid, sizeof(d->reg_done[0].clientid), "%s", clientid);
	d->reg_done[d->reg_done_n].at = time__mono_ms();
	d->reg_done_n++;
	return MQC_OK;
}

struct invite_find {
	const char *code;
	int64_t now;
	bool usable;
};

static int invite_find_cb(const char *code, int uses_left, int64_t expires, int64_t created, void *arg)
{
	struct invite_find *f = arg;

	(void)created;
	if(strcmp(code, f->code) == 0 && uses_left > 0 && (expires == 0 || expires > f->now)){
		f->usable = true;
	}
	return MQC_OK;
}

/* A string member, or NULL if absent or not a string (*bad set then). */
static const char *get_str(json_t *req, const char *key, bool *present)
{
	json_t *v = json_object_get(req, key);

	*present = v != NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The mode in force: the store's registration setting (common/settings.h,
 * `mqchat-archiver settings set registration ...`) if it holds one, else
 * the archiver's own. Read for each request (a registration is rate
 * limited and costs a hash: one more read is nothing). */
static enum registration_mode mode_of(struct responder *d)
{
	enum registration_mode mode = d->cfg->registration;
	char value[16];

	if(userdb__setting_get(d->udb, SETTING_REGISTRATION, value, sizeof(value)) == MQC_OK){
		registration__parse(value, &mode);
	}
	return mode;
}

/* New reference: the answer to one registration request. */
static json_t *answer(struct responder *d, const char *clientid, const void *payload, size_t len)
{
	enum registration_mode mode = mode_of(d);
	json_t *req, *id, *resp = NULL, *pw;
	const char *user, *nick, *invite;
	char hash[PWHASH_STR_LEN], esc[64], why[160];
	struct nick_clash clash;
	bool present, ok_done = true;
	size_t pwlen, nick_len;
	int rc;

	req = rpc__load_request(payload, len, REG_MAX_REQUEST, REG_MAX_ID, &id, &resp);
	if(req == NULL) return resp;
	if(mode == REGISTRATION_OFF){
		resp = rpc__fail(id, "closed", "registration is closed");
		goto done;
	}
	if(already_done(d, clientid)){
		resp = rpc__fail(id, "already_registered",
				"this client id has made an account; connect as it, or use a new client id");
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
	if(present && nick == NULL){
		resp = rpc__fail(id, "bad_request", "\"nick\" must be a string");
		goto done;
	}
	nick_len = nick ? json_string_length(json_object_get(req, "nick")) : strlen(user);
	if(nick == NULL) nick = user;
	invite = get_str(req, "invite", &present);
	if(present && invite == NULL){
		resp = rpc__fail(id, "bad_request", "\"invite\" must be a string");
		goto done;
	}
	if(mode == REGISTRATION_INVITE && (invite == NULL || *invite == '\0')){
		resp = rpc__fail(id, "invite_required", "registration needs an invite code");
		goto done;
	}
	/* Checks that need no lock, so that only a request that would make an
	 * account takes a token and costs a hash; the transaction below
	 * checks again (a race may still lose there, and gives the token back). */
	/* A name deleted lately is as taken as one in use (userdb__name_free),
	 * and answered alike: the app learns no more than "taken". */
	rc = userdb__name_free(d->udb, user);
	if(rc == MQC_ERR_EXISTS){
		resp = rpc__fail(id, "taken", "that name is taken");
		goto done;
	}
	if(rc != MQC_OK){
		resp = rpc__fail(id, "internal", "%s", mqc_strerror(rc));
		goto done;
	}
	/* The nick's characters, and neither it nor the name like another's. */
	rc = nick__check(d->udb, user, nick, nick_len, true, &clash, why, sizeof(why));
	if(rc != MQC_OK){
		resp = nick_answer__refusal(id, rc, &clash, why);
		goto done;
	}
	if(mode == REGISTRATION_INVITE){
		struct invite_find f = {.code = invite, .now = time__now_ms()};

		rc = userdb__invite_each(d->udb, invite_find_cb, &f);
		if(rc != MQC_OK){
			resp = rpc__fail(id, "internal", "%s", mqc_strerror(rc));
			goto done;
		}
		if(!f.usable){
			resp = rpc__fail(id, "invite_invalid", "unknown, used up or expired invite");
			goto done;
		}
	}
	if(!take_token(d)){
		resp = rpc__fail(id, "rate_limited", "too many registrations; try again in a minute");
		goto done;
	}
	if(remember_done(d, clientid) != MQC_OK){
		give_token(d);
		resp = rpc__fail(id, "internal", "out of memory");
		goto done;
	}
	/* From here on, a failure gives back the token and the client id. */
	ok_done = false;
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
	if(mode == REGISTRATION_INVITE){
		rc = userdb__invite_use(d->udb, invite, time__now_ms());
		if(rc != MQC_OK){
			userdb__rollback(d->udb);
			if(rc == MQC_ERR_NOTFOUND) resp = rpc__fail(id, "invite_invalid", "unknown, used up or expired invite");
			else resp = rpc__fail(id, "internal", "%s", mqc_strerror(rc));
			goto done;
		}
	}
	rc = nick__check(d->udb, user, nick, nick_len, true, &clash, why, sizeof(why));
	if(rc != MQC_OK){
		userdb__rollback(d->udb);
		resp = nick_answer__refusal(id, rc, &clash, why);
		goto done;
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
	metrics__store_write(MS_AUTH, rc);
	if(rc != MQC_OK){
		userdb__rollback(d->udb);
		resp = rpc__fail(id, "internal", "cannot commit: %s", mqc_strerror(rc));
		goto done;
	}
	d->registrations++;
	log_info("%s | register | %s%s", log_escape(clientid, strlen(clientid), esc, sizeof(esc)), user,
			mode == REGISTRATION_INVITE ? " (invite)" : "");
	resp = json_pack("{sOsbss}", "id", id, "ok", 1, "user", user);
	ok_done = true;
done:
	if(!ok_done){
		give_token(d);
		d->reg_done_n--; /* remember_done's entry, still the last one */
	}
	memset(hash, 0, sizeof(hash));
	json_decref(req);
	return resp;
}

void register__cleanup(struct responder *d)
{
	free(d->reg_done);
	d->reg_done = NULL;
	d->reg_done_n = d->reg_done_cap = 0;
}

void register__handle(struct responder *rs, const struct mqtt_msg *msg)
{
	char clientid[CLIENTID_MAX_LEN + 1], topic[TOPIC_MAX_LEN + 1], esc[128];
	const char *error;
	struct topic_parts tp;
	json_t *resp;

	/* chat/register/_register@<random>/req */
	if(!topic__parse(msg->topic, &tp) || tp.kind != TOPIC_REGISTER_REQ || tp.a.n == 0
			|| tp.a.n > CLIENTID_MAX_LEN){
		goto bad_topic;
	}
	memcpy(clientid, tp.a.p, tp.a.n);
	clientid[tp.a.n] = '\0';
	if(!names__register_clientid(clientid, tp.a.n, NULL)){
		goto bad_topic;
	}
	topic__build(topic, sizeof(topic), TOPIC_REGISTER_RESP, clientid, NULL);
	resp = answer(rs, clientid, msg->payload, msg->len);
	error = json_string_value(json_object_get(resp, "error"));
	metrics__count(MF_REGISTRATIONS, resp == NULL ? "internal" : error ? error : "ok", NULL);
	responder__reply(rs, topic, resp, msg);
	return;
bad_topic:
	log_warnx("registration on an unexpected topic %s ignored",
			log_escape(msg->topic, strlen(msg->topic), esc, sizeof(esc)));
}
