/* auth.c - MOSQ_EVT_BASIC_AUTH: who may connect, with which client id.
 *
 * Runs on the broker's only thread, so the order of the checks matters:
 * everything cheap and every throttle comes before the ~2 ms PBKDF2, and a
 * credential that verified before passes on an HMAC alone. Fail closed;
 * never log a password. */
#include <stdio.h>
#include <string.h>

#include "bus_plugin.h"
#include "err.h"
#include "plugin.h"

/* User throttle: from the 3rd consecutive failure, 0.5 s doubling to 60 s. */
#define USER_FREE_FAILURES 3
#define USER_BASE_MS 500
#define USER_CAP_MS 60000
/* Address throttle: from the 10th consecutive hashed failure, up to 30 s. */
#define ADDR_FREE_FAILURES 10
#define ADDR_BASE_MS 500
#define ADDR_CAP_MS 30000
#define THROTTLE_MAX_ENTRIES 65536
/* While an address is locked, logins to real accounts from it are still
 * checked, 5 a second (bursts of 10): failures on made-up names from a
 * shared address (a NAT, a WebSocket proxy) must not keep out everyone
 * behind it who has a password. */
#define LOCKED_ADDR_BURST 10.0
#define LOCKED_ADDR_PERIOD_MS 2000
/* Registration connections: 5 per minute per address. */
#define REGISTER_BURST 5.0
#define REGISTER_PERIOD_MS 60000
/* Device part of a registration client id: 8..64 characters. */
#define REGISTER_MIN_DEVICE 8
/* login_status says "disabled" this long after a login showed the right
 * password of a disabled account from the asking address. */
#define DISABLED_SEEN_MS 600000
/* ... and "at its connection or session limit" this long. */
#define LIMIT_SEEN_MS 60000

/* Dummy password verified for unknown or disabled names, so a miss costs
 * what a hit costs. Not a secret: nothing ever matches it. */
#define DUMMY_PASSWORD "mqchat-dummy-password"

int auth__init(struct mqchat *m)
{
	int rc;

	throttle__init_backoff(&m->user_throttle, USER_FREE_FAILURES, USER_BASE_MS, USER_CAP_MS,
			THROTTLE_MAX_ENTRIES);
	throttle__init_backoff(&m->addr_throttle, ADDR_FREE_FAILURES, ADDR_BASE_MS, ADDR_CAP_MS,
			THROTTLE_MAX_ENTRIES);
	throttle__init_bucket(&m->register_limit, REGISTER_BURST, REGISTER_PERIOD_MS,
			THROTTLE_MAX_ENTRIES);
	throttle__init_bucket(&m->notice_limit, NOTICE_BURST, NOTICE_PERIOD_MS, THROTTLE_MAX_ENTRIES);
	throttle__init_bucket(&m->locked_addr_checks, LOCKED_ADDR_BURST, LOCKED_ADDR_PERIOD_MS,
			THROTTLE_MAX_ENTRIES);
	/* A backoff entry locked from its first "failure" for DISABLED_SEEN_MS:
	 * "this address showed the right password of this disabled account". */
	throttle__init_backoff(&m->disabled_seen, 1, DISABLED_SEEN_MS, DISABLED_SEEN_MS,
			THROTTLE_MAX_ENTRIES);
	throttle__init_backoff(&m->connections_seen, 1, LIMIT_SEEN_MS, LIMIT_SEEN_MS,
			THROTTLE_MAX_ENTRIES);
	throttle__init_backoff(&m->sessions_seen, 1, LIMIT_SEEN_MS, LIMIT_SEEN_MS,
			THROTTLE_MAX_ENTRIES);
	rc = credcache__init(&m->creds, CREDCACHE_MAX_ENTRIES);
	if(rc) return rc;
	rc = ratelimit__init(&m->send_limit, m->cfg.send_rate, m->cfg.send_burst, RATELIMIT_SLOTS);
	if(rc) return rc;
	rc = ratelimit__init(&m->typing_limit, TYPING_RATE, TYPING_BURST, TYPING_SLOTS);
	if(rc) return rc;
	return pwhash__make(DUMMY_PASSWORD, strlen(DUMMY_PASSWORD), PWHASH_DEFAULT_ITERATIONS,
			m->dummy_hash, sizeof(m->dummy_hash));
}

void auth__cleanup(struct mqchat *m)
{
	throttle__cleanup(&m->user_throttle);
	throttle__cleanup(&m->addr_throttle);
	throttle__cleanup(&m->register_limit);
	throttle__cleanup(&m->notice_limit);
	throttle__cleanup(&m->locked_addr_checks);
	throttle__cleanup(&m->disabled_seen);
	throttle__cleanup(&m->connections_seen);
	throttle__cleanup(&m->sessions_seen);
	ratelimit__cleanup(&m->send_limit);
	ratelimit__cleanup(&m->typing_limit);
	credcache__cleanup(&m->creds);
}

/* One NOTICE line per refusal, rate limited; username and address escaped.
 * why: its figure (stats.c); reason: the log's words. */
static int refuse(struct mqchat *m, enum login_reason why, const char *addr, const char *username,
		const char *clientid, const char *reason)
{
	char ubuf[ESC_LEN], abuf[ESC_LEN], cbuf[ESC_LEN * 2];

	m->auth_failed++;
	m->stats.logins[why]++;
	if(!plog__begin(&m->log, m->clock_ms())) return MOSQ_ERR_AUTH;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: login refused from %s user \"%s\" client \"%s\": %s",
			plugin__esc(addr, abuf, sizeof(abuf)), plugin__esc(username, ubuf, sizeof(ubuf)),
			plugin__esc(clientid, cbuf, sizeof(cbuf)), reason);
	return MOSQ_ERR_AUTH;
}

static int register_auth(struct mqchat *m, const struct mosquitto *client, const char *addr,
		const char *taddr, const char *clientid, int64_t now)
{
	size_t devlen;

	/* With registration off it connects all the same: it may ask
	 * login_status, and any registration request is answered "closed". */
	if(!names__register_clientid(clientid, strlen(clientid), &devlen)
			|| devlen < REGISTER_MIN_DEVICE){
		return refuse(m, LOGIN_REGISTER_CLIENT_ID, addr, REGISTER_USER, clientid,
				"registration client id must be _register@<8..64 of A-Za-z0-9_.->");
	}
	/* Per address; through a front (taddr NULL) the front counts them. */
	if(taddr != NULL && !throttle__take(&m->register_limit, taddr, strlen(taddr), now)){
		m->auth_throttled++;
		return refuse(m, LOGIN_THROTTLED_REGISTER, addr, REGISTER_USER, clientid,
				"too many registration connections");
	}
	if(presence__register(m, client, clientid,
				now + (int64_t)m->cfg.register_timeout_s * 1000) != MQC_OK){
		return refuse(m, LOGIN_REGISTER_FULL, addr, REGISTER_USER, clientid,
				"too many registration connections open");
	}
	m->stats.logins[LOGIN_OK_REGISTER]++;
	return MOSQ_ERR_SUCCESS;
}

size_t auth__user_key(char out[AUTH_USER_KEY_LEN], const char *name, const char *addr)
{
	int n = snprintf(out, AUTH_USER_KEY_LEN, "%s\n%s", name, addr);

	return n < 0 ? 0 : (size_t)n < AUTH_USER_KEY_LEN ? (size_t)n : AUTH_USER_KEY_LEN - 1;
}

/* The throttles, before any hashing: this name from this address, then the
 * address. A refusal by the first does not count against the address: a
 * flood at one account from a shared address must not lock out everyone
 * else there. Nor does a locked address keep out a real account (known:
 * the name is one) whose name is not locked there: such logins are still
 * checked, at a bounded rate per address (LOCKED_ADDR_*), so failures on
 * made-up names cannot lock out the people behind a shared address, and
 * the broker still hashes at most a few a second for it. (While an
 * address is locked, a made-up name is refused sooner than a real one:
 * names are no secret to accounts, chat/presence/+ lists them.)
 * taddr: the address to key on, NULL for a front's (no address throttle;
 * ukey is then the name alone). MOSQ_ERR_SUCCESS (go on) or a refusal. */
static int check_throttles(struct mqchat *m, const char *addr, const char *taddr,
		const char *ukey, size_t uklen, const char *username, const char *clientid, bool known,
		int64_t now)
{
	if(throttle__locked(&m->user_throttle, ukey, uklen, now, NULL)){
		m->auth_throttled++;
		return refuse(m, LOGIN_THROTTLED_USER, addr, username, clientid, "throttled (user)");
	}
	if(taddr != NULL && throttle__locked(&m->addr_throttle, taddr, strlen(taddr), now, NULL)
			&& !(known && throttle__take(&m->locked_addr_checks, taddr, strlen(taddr), now))){
		m->auth_throttled++;
		return refuse(m, LOGIN_THROTTLED_ADDRESS, addr, username, clientid, "throttled (address)");
	}
	return MOSQ_ERR_SUCCESS;
}

/* A hashed attempt failed: count it for the name at this address and for
 * the address (not a front's: taddr NULL). */
static void count_failure(struct mqchat *m, const char *taddr, const char *ukey, size_t uklen,
		int64_t now)
{
	throttle__fail(&m->user_throttle, ukey, uklen, now);
	if(taddr != NULL) throttle__fail(&m->addr_throttle, taddr, strlen(taddr), now);
}

/* A name that is not an account: refuse, after the same throttles and the
 * same cost as a real check, so neither timing nor the throttle reveals
 * which names exist. */
static int refuse_unknown(struct mqchat *m, const char *addr, const char *taddr, const char *ukey,
		size_t uklen, const char *username, const char *clientid, const char *password,
		size_t pwlen, int64_t now)
{
	int rc = check_throttles(m, addr, taddr, ukey, uklen, username, clientid, false, now);
	bool ok;

	if(rc != MOSQ_ERR_SUCCESS) return rc;
	(void)pwhash__verify(password, pwlen, m->dummy_hash, &ok);
	count_failure(m, taddr, ukey, uklen, now);
	return refuse(m, LOGIN_UNKNOWN_USER, addr, username, clientid, "unknown user");
}

/* A disabled account: the same throttles and cost as any login, and the
 * same answer; if the password was right, login_status may then tell this
 * address that the account is disabled (who knows the password may know). */
static int refuse_disabled(struct mqchat *m, const char *addr, const char *taddr,
		const char *ukey, size_t uklen, const struct snap_user *u, const char *clientid,
		const char *password, size_t pwlen, int64_t now)
{
	int rc = check_throttles(m, addr, taddr, ukey, uklen, u->name, clientid, false, now);
	bool ok = false;

	if(rc != MOSQ_ERR_SUCCESS) return rc;
	if(pwhash__verify(password, pwlen, u->pwhash, &ok) != MQC_OK || !ok){
		count_failure(m, taddr, ukey, uklen, now);
		return refuse(m, LOGIN_DISABLED, addr, u->name, clientid,
				"account disabled (wrong password)");
	}
	throttle__fail(&m->disabled_seen, ukey, uklen, now);
	return refuse(m, LOGIN_DISABLED, addr, u->name, clientid, "account disabled");
}

/* A device token (common/devtoken.h) instead of the password: one
 * SHA-256 and a comparison with the snapshot's digest of this device's
 * token, so it is never throttled. A token is 256 random bits: guessing
 * is hopeless, and a device with a valid token gets in while someone
 * guesses its account's password. Unknown, disabled, no token: the same
 * answer and the same cost. *dev_out: the device, for tracking. */
static int token_auth(struct mqchat *m, const char *addr, const char *username,
		const char *clientid, const struct snap_user *u, const char *dev, size_t devlen,
		const char *token, const struct snap_device **dev_out)
{
	unsigned char digest[DEVTOKEN_DIGEST_LEN];
	const struct snap_device *d;

	if(devlen == 0){
		return refuse(m, LOGIN_BAD_CLIENT_ID, addr, username, clientid,
				"a device token needs the client id <username>@<device>");
	}
	if(devtoken__digest(token, DEVTOKEN_LEN, digest) != MQC_OK){
		return refuse(m, LOGIN_NOMEM, addr, username, clientid, "out of memory");
	}
	d = u != NULL && u->enabled && u->kind != USER_KIND_SERVICE
		? snapshot__device(u, dev, devlen) : NULL;
	if(d == NULL || !devtoken__digest_eq(d->digest, digest)){
		return refuse(m, LOGIN_BAD_TOKEN, addr, username, clientid, "invalid device token");
	}
	*dev_out = d;
	return MOSQ_ERR_SUCCESS;
}

int auth__check(struct mqchat *m, const struct mosquitto *client, const char *username,
		const char *password)
{
	const char *clientid = mosquitto_client_id(client);
	const char *addr = mosquitto_client_address(client), *taddr;
	const struct snap_user *u;
	const struct snap_device *device = NULL;
	enum login_reason how = LOGIN_OK_PASSWORD;  /* its figure, if it succeeds */
	bool by_token = false, cut;
	char ukey[AUTH_USER_KEY_LEN];
	size_t ulen, idlen_user, devlen, pwlen, uklen;
	const char *dev;
	int64_t now = m->clock_ms();
	bool ok = false;
	int rc;

	if(addr == NULL) addr = "?";
	/* The address the throttles key on; NULL for a front's, whose
	 * connections are many clients (front.c). */
	taddr = auth__throttle_address(m, addr);

	/* 1. A name and a client id are required (the broker makes one up for
	 * a client that sends none; this is for a broker that would not). */
	if(clientid == NULL){
		return refuse(m, LOGIN_BAD_CLIENT_ID, addr, username, "", "no client id");
	}
	if(username == NULL || username[0] == '\0'){
		return refuse(m, LOGIN_NO_USERNAME, addr, username, clientid, "no username");
	}
	/* 2. The registration pseudo-user. */
	if(!strcmp(username, REGISTER_USER)){
		return register_auth(m, client, addr, taddr, clientid, now);
	}
	/* 3. Name grammar, and a client id that is this user's own: nobody can
	 * present (and so take over) another user's session. */
	ulen = strnlen(username, NAME_MAX_LEN + 1);
	if(!names__valid(username, ulen) || username[ulen] != '\0'){
		return refuse(m, LOGIN_BAD_USERNAME, addr, username, clientid, "invalid username");
	}
	if(!names__split_clientid(clientid, &idlen_user, &dev, &devlen)
			|| idlen_user != ulen || memcmp(clientid, username, ulen) != 0){
		return refuse(m, LOGIN_BAD_CLIENT_ID, addr, username, clientid,
				"client id must be <username> or <username>@<device>");
	}
	/* 4. No password, or one too long to be hashed. */
	if(password == NULL){
		return refuse(m, LOGIN_NO_PASSWORD, addr, username, clientid, "no password");
	}
	pwlen = strnlen(password, PWHASH_MAX_PASSWORD + 1);
	if(pwlen > PWHASH_MAX_PASSWORD){
		return refuse(m, LOGIN_PASSWORD_TOO_LONG, addr, username, clientid, "password too long");
	}
	u = snapshot__user(m->snap, username, ulen);
	/* Cut off by a change the snapshot does not have yet (cuts.c): as if
	 * disabled (or the token invalid), until it does. */
	cut = u != NULL && m->cuts.count > 0
		&& cuts__denies(&m->cuts, username, clientid, devtoken__is_token(password, pwlen));
	/* 5. A device token: no throttle, no slow hash. */
	if(devtoken__is_token(password, pwlen)){
		rc = token_auth(m, addr, username, clientid, cut ? NULL : u, dev, devlen, password, &device);
		if(rc != MOSQ_ERR_SUCCESS) return rc;
		by_token = true;
		how = LOGIN_OK_TOKEN;
		uklen = auth__user_key(ukey, username, taddr ? taddr : "");
		goto success;
	}
	/* 6. Unknown or disabled account. The name's throttle is kept per
	 * address: someone guessing elsewhere cannot lock the owner out.
	 * Through a front, whose address is everyone's, by the name alone. */
	uklen = auth__user_key(ukey, username, taddr ? taddr : "");
	if(u == NULL){
		return refuse_unknown(m, addr, taddr, ukey, uklen, username, clientid, password, pwlen,
				now);
	}
	if(!u->enabled || cut){
		return refuse_disabled(m, addr, taddr, ukey, uklen, u, clientid, password, pwlen, now);
	}
	/* 7. A credential that verified before passes, throttled or not. */
	if(credcache__check(&m->creds, u->name, password, pwlen, u->pwhash)){
		m->auth_cached++;
		how = LOGIN_CACHED;
		goto success;
	}
	/* 8. A service's secret (pwhash.h) costs a SHA-256: no throttle, so
	 * nobody can keep the archiver out by failing on its name, and a flood
	 * of wrong ones costs the broker microseconds each. People's passwords
	 * never have this form (and are refused if a row claims it). */
	if(pwhash__is_secret(u->pwhash)){
		if(u->kind != USER_KIND_SERVICE){
			return refuse(m, LOGIN_BAD_HASH, addr, username, clientid,
					"stored password hash unreadable");
		}
		rc = pwhash__verify(password, pwlen, u->pwhash, &ok);
		if(rc != MQC_OK || !ok){
			return refuse(m, LOGIN_BAD_PASSWORD, addr, username, clientid, "wrong password");
		}
		credcache__store(&m->creds, u->name, password, pwlen, u->pwhash);
		how = LOGIN_OK_SECRET;
		goto success;
	}
	/* 9. Throttles, before any hashing. */
	rc = check_throttles(m, addr, taddr, ukey, uklen, username, clientid, true, now);
	if(rc != MOSQ_ERR_SUCCESS) return rc;
	/* 10. The real check. */
	rc = pwhash__verify(password, pwlen, u->pwhash, &ok);
	if(rc != MQC_OK || !ok){
		count_failure(m, taddr, ukey, uklen, now);
		return refuse(m, rc == MQC_OK ? LOGIN_BAD_PASSWORD : LOGIN_BAD_HASH, addr, username,
				clientid, rc == MQC_OK ? "wrong password" : "stored password hash unreadable");
	}
	credcache__store(&m->creds, u->name, password, pwlen, u->pwhash);
	throttle__reset(&m->user_throttle, ukey, uklen);

success:
	/* The password verified against one of Mosquitto's weak forms (an
	 * imported account): the loader process stores ours (loader__rehash;
	 * never waits, never hashes here). */
	if(!by_token && pwhash__is_legacy(u->pwhash)){
		loader__rehash(&m->loader, u->name, password, pwlen, u->pwhash);
	}
	/* 11. What the account holds already (limits.c); services are trusted. */
	if(u->kind != USER_KIND_SERVICE){
		enum limit_result lr = limits__admit(m, client, u->name, clientid);

		if(lr != LIMIT_OK){
			if(lr == LIMIT_CONNECTIONS) throttle__fail(&m->connections_seen, ukey, uklen, now);
			if(lr == LIMIT_SESSIONS) throttle__fail(&m->sessions_seen, ukey, uklen, now);
			return refuse(m, lr == LIMIT_CONNECTIONS ? LOGIN_CONNECTIONS
					: lr == LIMIT_SESSIONS ? LOGIN_SESSIONS : LOGIN_NOMEM,
					addr, username, clientid, limits__why(lr));
		}
	}
	/* 12. A device is tracked (devices.c), however it logged in: revoking
	 * its token, held now or given later, closes it. */
	if(device == NULL && devlen > 0) device = snapshot__device(u, dev, devlen);
	if(devlen > 0 && devices__login(m, client, clientid, ulen, device, by_token) != MQC_OK){
		limits__disconnect(m, client);
		return refuse(m, LOGIN_NOMEM, addr, username, clientid, "out of memory");
	}
	if(presence__connect(m, client, u->name, u->kind) != MQC_OK){
		limits__disconnect(m, client);
		devices__disconnect(m, client);
		return refuse(m, LOGIN_NOMEM, addr, username, clientid, "out of memory");
	}
	plugin_bus__login(m, client, clientid, u->kind);
	m->auth_ok++;
	m->stats.logins[how]++;
	return MOSQ_ERR_SUCCESS;
}

int auth__basic_auth_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;

	(void)event;
	return auth__check(userdata, ed->client, ed->username, ed->password);
}
