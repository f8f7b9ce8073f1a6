/* fuzz_auth.c - libFuzzer harness for the plugin's CONNECT decision (auth__check).
 *
 * A fixed snapshot (alice and a device with known passwords, a disabled
 * user, the service) and a CONNECT made from the input:
 *   byte 0  bits 0-1 registration mode
 *   then    username \0 client id \0 address \0 password  (missing: NULL)
 * Accepted must mean exactly: a known, enabled account, its own password
 * (byte for byte), and a client id that is <username> or
 * <username>@<device>; or _register (in every registration mode) and client
 * id _register@<8..64 device characters>. The clock moves 61 s per input, past
 * every throttle, so a right CONNECT is always accepted and a wrong one
 * never. Uses tests/unit/broker_stubs.c for the broker's exports. */
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "../unit/broker_stubs.h"
#include "fuzz.h"

struct auth_ref_user {
	const char *name;
	enum user_kind kind;
	bool enabled;
	const char *password;
};

static const struct auth_ref_user auth_ref_users[] = {
	{"alice", USER_KIND_USER, true, "alice-secret"},
	{"bob", USER_KIND_USER, false, "bob-secret"},
	{"dev1", USER_KIND_DEVICE, true, "d"},
	{"archiver", USER_KIND_SERVICE, true, "service-pw"},
};

#define AUTH_N (sizeof(auth_ref_users) / sizeof(auth_ref_users[0]))

static int64_t auth_now;

static int64_t auth_clock(void)
{
	return auth_now;
}

static struct mqchat *auth_plugin(void)
{
	static struct mqchat m;
	static bool ready;
	size_t i;

	if(ready) return &m;
	plugin_config__defaults(&m.cfg);
	m.clock_ms = auth_clock;
	m.log.rate = 5;
	FUZZ_ASSERT(auth__init(&m) == MQC_OK);
	m.snap = snapshot__new();
	FUZZ_ASSERT(m.snap != NULL);
	for(i=0; i<AUTH_N; i++){
		char hash[PWHASH_STR_LEN];
		const char *pw = auth_ref_users[i].password;
		FUZZ_ASSERT(pwhash__make(pw, strlen(pw), PWHASH_MIN_ITERATIONS, hash, sizeof(hash)) == MQC_OK);
		FUZZ_ASSERT(snapshot__add_user(m.snap, auth_ref_users[i].name, auth_ref_users[i].kind,
				auth_ref_users[i].enabled, hash) != NULL);
	}
	ready = true;
	return &m;
}

static char *auth_part(const uint8_t **p, const uint8_t *end, bool last)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	size_t n;
	char *s;

	if(nul == NULL && !last) return NULL;
	if(*p >= end && nul == NULL) return NULL;
	n = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
	s = malloc(n + 1);
	FUZZ_ASSERT(s != NULL);
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nul ? 1 : 0);
	return s;
}

static bool auth_ref_accepts(const struct mqchat *m, const char *username, const char *clientid,
		const char *password)
{
	size_t i, ulen;

	/* _register connects whatever the registration mode (login_status). */
	(void)m->cfg.registration;
	if(username == NULL || clientid == NULL) return false;
	if(!strcmp(username, REGISTER_USER)){
		size_t k = strlen(REGISTER_USER), n = strlen(clientid);
		return n >= k + 1 + 8 && n <= k + 1 + 64
			&& !strncmp(clientid, REGISTER_USER, k) && clientid[k] == '@'
			&& names__valid_device(clientid + k + 1, n - k - 1);
	}
	if(password == NULL) return false;
	for(i=0; i<AUTH_N; i++){
		if(strcmp(username, auth_ref_users[i].name)) continue;
		ulen = strlen(username);
		return auth_ref_users[i].enabled && !strcmp(password, auth_ref_users[i].password)
			&& !strncmp(clientid, username, ulen)
			&& (clientid[ulen] == '\0' || (clientid[ulen] == '@'
				&& names__valid_device(clientid + ulen + 1, strlen(clientid + ulen + 1))));
	}
	return false;
}

FUZZ_TARGET(auth)
{
	struct mqchat *m = auth_plugin();
	struct mosquitto client;
	const uint8_t *p = data + 1, *end = data + size;
	char *username = NULL, *clientid = NULL, *address = NULL, *password = NULL;
	int mode, rc;
	bool expect;

	if(size < 1) return 0;
	stub_reset();
	auth_now += 61000;
	mode = data[0] & 3;
	m->cfg.registration = mode == 1 ? REGISTRATION_INVITE : mode == 2 ? REGISTRATION_OPEN : REGISTRATION_OFF;

	username = auth_part(&p, end, false);
	if(username) clientid = auth_part(&p, end, false);
	if(clientid) address = auth_part(&p, end, false);
	if(address) password = auth_part(&p, end, true);

	memset(&client, 0, sizeof(client));
	client.id = clientid;
	client.username = username;
	client.address = address;

	rc = auth__check(m, &client, username, password);
	FUZZ_ASSERT(rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_AUTH);
	expect = auth_ref_accepts(m, username, clientid, password);
	FUZZ_ASSERT((rc == MOSQ_ERR_SUCCESS) == expect);
	/* The broker fires DISCONNECT for every context; so does this. */
	presence__disconnect(m, &client);

	free(password);
	free(address);
	free(clientid);
	free(username);
	return 0;
}
