/* fuzz_rpc.c - libFuzzer harness for the archiver's RPC requests (archiver/rpc.c).
 *
 * rpc__handle runs on a real auth.db and archive.db made once in a temp
 * folder (users, a disabled user, rooms, DMs and room messages, and the
 * messages of earlier holders of those names, stored before the accounts
 * and rooms were created), as:
 *   byte 0 < 0xf0: the user alice, bob, eve, ghost (no account) or
 *                  archiver by byte 0 % 5, topic chat/rpc/<user>/req,
 *                  payload = the rest;
 *   byte 0 >= 0xf0: topic = the bytes up to the first NUL, payload after.
 * responder__reply is replaced here to check every answer:
 *   - exactly one answer per request on a valid topic, on
 *     chat/rpc/<user>/resp, none otherwise;
 *   - a JSON object with "ok" true or false; a failure has an "error" code
 *     of [a-z_] and a "message";
 *   - the request's "id" (a string of 1..128 bytes) is echoed;
 *   - every archived message in an answer is the user's own: sent by or to
 *     them, or in a room they belong to (the fixture's memberships), and
 *     none is an earlier holder's (stored before the fixture was made), nor
 *     is the body `get` returns (seqs 1..RPC_OLD_MSGS are theirs).
 * Operations that write (passwd, profile, block) change the store as they
 * would in production; the invariants hold whatever the state. The store
 * lives under $MQCHAT_FUZZ_TMP (default /dev/shm or /tmp) and is removed at
 * exit. */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../../archiver/archive.h"
#include "envelope.h"
#include "../../archiver/daemon.h"
#include "../../archiver/mqtt.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"
#include "userdb.h"
#include "fuzz.h"

/* The first messages stored, an hour before the fixture's accounts and rooms. */
#define RPC_OLD_MSGS 8

static const char *rpc_users[] = {"alice", "bob", "eve", "ghost", "archiver"};
/* room, member: fixed (no RPC changes memberships). */
static const char *rpc_members[][2] = {
	{"r1", "alice"}, {"r1", "bob"}, {"r2", "eve"},
};

static struct {
	struct responder d;
	struct config cfg;      /* only its user: the room ops' events */
	char service[16];
	char auth_path[512], archive_path[512];
	char dir[256];
	bool ready;
	int64_t made;   /* before the accounts and rooms: older messages are earlier holders' */
	/* What the current request expects of its answer. */
	char topic[128];
	int answers;
	const char *user;
	char id[129];
	bool has_id;
} rpc_fx;

static void rpc_cleanup(void)
{
	char path[512];

	archive__close(rpc_fx.d.ar);
	userdb__close(rpc_fx.d.udb);
	snprintf(path, sizeof(path), "rm -rf '%s'", rpc_fx.dir);
	if(rpc_fx.dir[0]) (void)!system(path);
}

static void rpc_setup(void)
{
	static const char *users[][2] = {
		{"alice", "user"}, {"bob", "user"}, {"eve", "user"}, {"carol", "user"}, {"archiver", "service"},
	};
	char err[256], hash[PWHASH_STR_LEN];
	const char *tmp = getenv("MQCHAT_FUZZ_TMP");
	struct archive_msg m;
	size_t i;
	int k;

	if(rpc_fx.ready) return;
	/* A crash skips the atexit clean-up: scripts/fuzz.sh points
	 * MQCHAT_FUZZ_TMP into build/fuzz/ and empties it. */
	if(tmp == NULL || *tmp == '\0') tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	log_init("fuzz_rpc", LOG_LVL_ERROR);
	snprintf(rpc_fx.dir, sizeof(rpc_fx.dir), "%s/mqchat-fuzz-rpc-XXXXXX", tmp);
	FUZZ_ASSERT(mkdtemp(rpc_fx.dir) != NULL);
	atexit(rpc_cleanup);
	snprintf(rpc_fx.auth_path, sizeof(rpc_fx.auth_path), "%s/auth.db", rpc_fx.dir);
	snprintf(rpc_fx.archive_path, sizeof(rpc_fx.archive_path), "%s/archive.db", rpc_fx.dir);
	FUZZ_ASSERT(userdb__open(rpc_fx.auth_path, USERDB_CREATE, &rpc_fx.d.udb, err, sizeof(err)) == MQC_OK);
	snprintf(rpc_fx.service, sizeof(rpc_fx.service), "archiver");
	rpc_fx.cfg.user = rpc_fx.service;
	rpc_fx.d.cfg = &rpc_fx.cfg;
	FUZZ_ASSERT(archive__open(rpc_fx.archive_path, &rpc_fx.d.ar, err, sizeof(err)) == MQC_OK);
	rpc_fx.made = time__now_ms();
	/* Cheapest hash: passwd verifies the old password on every request. */
	FUZZ_ASSERT(pwhash__make("password-xxxx", 13, 1000, hash, sizeof(hash)) == MQC_OK);
	for(i=0; i<sizeof(users) / sizeof(users[0]); i++){
		FUZZ_ASSERT(userdb__user_add(rpc_fx.d.udb, users[i][0], user_kind__parse(users[i][1]),
				users[i][0], hash) == MQC_OK);
	}
	FUZZ_ASSERT(userdb__user_set_enabled(rpc_fx.d.udb, "carol", false) == MQC_OK);
	FUZZ_ASSERT(userdb__room_create(rpc_fx.d.udb, "r1", 0) == MQC_OK);
	FUZZ_ASSERT(userdb__room_create(rpc_fx.d.udb, "r2", 0) == MQC_OK);
	for(i=0; i<sizeof(rpc_members) / sizeof(rpc_members[0]); i++){
		FUZZ_ASSERT(userdb__member_add(rpc_fx.d.udb, rpc_members[i][0], rpc_members[i][1]) == MQC_OK);
	}
	FUZZ_ASSERT(userdb__block_add(rpc_fx.d.udb, "bob", "eve") == MQC_OK);
	for(k=0; k<48; k++){
		static const char *dm[][2] = {
			{"alice", "bob"}, {"bob", "alice"}, {"bob", "carol"}, {"eve", "bob"}, {"carol", "eve"},
		};
		char id[32], body[64];

		memset(&m, 0, sizeof(m));
		snprintf(id, sizeof(id), "m%d", k);
		snprintf(body, sizeof(body), "body %d \"q\" \\ \xc3\xa9", k);
		m.sender = dm[k % 5][0];
		if(k % 4 == 3){
			m.room = k % 8 == 3 ? "r1" : "r2";
			m.sender = k % 8 == 3 ? "alice" : "eve";
		}else{
			m.recipient = dm[k % 5][1];
		}
		m.id = id;
		m.body = body;
		m.ts = k % 3 ? 1700000000000 + k : -1;
		/* The first ones: the names' earlier holders (and rooms), an hour
		 * before the fixture was made; then the fixture's own. */
		m.server_ts = k < RPC_OLD_MSGS ? rpc_fx.made - 3600 * 1000 + k : time__now_ms() + k;
		FUZZ_ASSERT(archive__store(rpc_fx.d.ar, &m, NULL, NULL, NULL) == MQC_OK);
	}
	rpc_fx.ready = true;
}

static bool rpc_member(const char *room, const char *user)
{
	size_t i;

	for(i=0; i<sizeof(rpc_members) / sizeof(rpc_members[0]); i++){
		if(!strcmp(rpc_members[i][0], room) && !strcmp(rpc_members[i][1], user)) return true;
	}
	return false;
}

static bool rpc_code(const char *s)
{
	if(s == NULL || *s == '\0') return false;
	for(; *s; s++){
		if(!((*s >= 'a' && *s <= 'z') || *s == '_')) return false;
	}
	return true;
}

/* Replace worker.c's: a membership event of the room ops is checked and
 * dropped; "sent" at once. */
uint64_t responder__publish(struct responder *rs, const char *topic, json_t *msg, bool now)
{
	(void)now;
	FUZZ_ASSERT(rs == &rpc_fx.d);
	FUZZ_ASSERT(!strncmp(topic, "chat/room/", 10));
	FUZZ_ASSERT(json_is_string(json_object_get(msg, "event")));
	json_decref(msg);
	return 1;
}

bool responder__sent(struct responder *rs, uint64_t n, int timeout_ms)
{
	(void)rs;
	(void)timeout_ms;
	return n == 1;
}

/* Replaces worker.c's: checks the answer instead of handing it on. */
void responder__reply(struct responder *rs, const char *topic, json_t *resp, const struct mqtt_msg *req)
{
	json_t *v, *msgs;
	char *text;
	size_t i;

	(void)req;
	FUZZ_ASSERT(rs == &rpc_fx.d);
	rpc_fx.answers++;
	FUZZ_ASSERT(!strcmp(topic, rpc_fx.topic));
	FUZZ_ASSERT(resp != NULL && json_is_object(resp));
	v = json_object_get(resp, "ok");
	FUZZ_ASSERT(json_is_boolean(v));
	if(json_is_false(v)){
		FUZZ_ASSERT(json_is_string(json_object_get(resp, "error")));
		FUZZ_ASSERT(rpc_code(json_string_value(json_object_get(resp, "error"))));
		FUZZ_ASSERT(json_is_string(json_object_get(resp, "message")));
	}
	v = json_object_get(resp, "id");
	if(rpc_fx.has_id){
		FUZZ_ASSERT(json_is_string(v) && !strcmp(json_string_value(v), rpc_fx.id));
	}else{
		FUZZ_ASSERT(json_is_false(json_object_get(resp, "ok")));
	}
	if(json_is_true(json_object_get(resp, "ok")) && json_object_get(resp, "body_bytes")){
		FUZZ_ASSERT(json_integer_value(json_object_get(resp, "seq")) > RPC_OLD_MSGS);
	}
	msgs = json_object_get(resp, "messages");
	if(msgs){
		FUZZ_ASSERT(json_is_array(msgs));
		for(i=0; i<json_array_size(msgs); i++){
			json_t *msg = json_array_get(msgs, i);
			const char *from = json_string_value(json_object_get(msg, "from"));
			const char *to = json_string_value(json_object_get(msg, "to"));
			const char *room = json_string_value(json_object_get(msg, "room"));

			FUZZ_ASSERT(from != NULL && (to != NULL) != (room != NULL));
			FUZZ_ASSERT(!strcmp(from, rpc_fx.user) || (to && !strcmp(to, rpc_fx.user))
					|| (room && rpc_member(room, rpc_fx.user)));
			FUZZ_ASSERT(json_integer_value(json_object_get(msg, "server_ts")) >= rpc_fx.made);
		}
	}
	text = json_dumps(resp, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL);
	free(text);
	json_decref(resp);
}

/* The id the answer must echo: what a JSON reader finds in the request. */
static void rpc_expect_id(const uint8_t *payload, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *id = json_object_get(req, "id");

	rpc_fx.has_id = false;
	if(json_is_string(id) && json_string_length(id) >= 1 && json_string_length(id) <= 128
			&& len <= 16384 && strlen(json_string_value(id)) == json_string_length(id)){
		memcpy(rpc_fx.id, json_string_value(id), json_string_length(id) + 1);
		rpc_fx.has_id = true;
	}
	json_decref(req);
}

FUZZ_TARGET(rpc)
{
	struct mqtt_msg msg;
	char topic[256];
	uint8_t *payload;
	const uint8_t *p = data + 1, *end = data + size;
	bool expect_answer;

	if(size < 1) return 0;
	rpc_setup();
	if(data[0] >= 0xf0){
		const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
		size_t tl;
		if(nul == NULL) return 0;
		tl = (size_t)(nul - p);
		if(tl >= sizeof(topic)) return 0;
		memcpy(topic, p, tl);
		topic[tl] = '\0';
		p = nul + 1;
	}else{
		snprintf(topic, sizeof(topic), "chat/rpc/%s/req", rpc_users[data[0] % 5]);
	}
	/* The daemon hands rpc__handle topics under chat/rpc/ only. */
	if(strncmp(topic, "chat/rpc/", 9) != 0) return 0;
	{
		const char *u = topic + 9, *slash = strchr(u, '/');
		static char user[64];
		expect_answer = slash && !strcmp(slash, "/req") && names__valid(u, (size_t)(slash - u));
		if(expect_answer){
			memcpy(user, u, (size_t)(slash - u));
			user[slash - u] = '\0';
			rpc_fx.user = user;
			snprintf(rpc_fx.topic, sizeof(rpc_fx.topic), "chat/rpc/%s/resp", user);
		}
	}
	payload = malloc(end > p ? (size_t)(end - p) : 1);
	FUZZ_ASSERT(payload != NULL);
	memcpy(payload, p, (size_t)(end - p));
	rpc_expect_id(payload, (size_t)(end - p));

	memset(&msg, 0, sizeof(msg));
	msg.topic = topic;
	msg.payload = payload;
	msg.len = (size_t)(end - p);
	rpc_fx.answers = 0;
	rpc__handle(&rpc_fx.d, &msg);
	FUZZ_ASSERT(rpc_fx.answers == (expect_answer ? 1 : 0));
	free(payload);
	return 0;
}
