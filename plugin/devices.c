/* devices.c - the connections of devices that hold a token, and their
 * logins as the archiver learns them (docs/PROTOCOL.md, "Device tokens").
 *
 * A device holds a token when the store has a row for it (common/userdb.h,
 * devices); the snapshot has the token's SHA-256 (snap_device). Every
 * login from a client id with a device part (<user>@<device>) is tracked
 * here until its DISCONNECT, with the token or the password:
 *
 * - Revocation: when a snapshot comes whose tokens differ from the last
 *   one's (snapshot.devices_sum), every tracked connection is checked: a
 *   device that held a token (at login, or given one since: an app logs in
 *   with the password, then asks for its token on that connection) and no
 *   longer does, or that logged in with a token that is no longer its own,
 *   is closed. So a revoked device is disconnected as soon as the broker
 *   takes the change (the archiver and the CLI answer only then), and
 *   refused after. A device that never held a token is left alone.
 * - Last seen: each tracked login is remembered (one entry per device,
 *   the latest time), and every plugin_opt_seen_report_s (30 s) the plugin
 *   publishes them on chat/seen/<node> for the archiver, which writes them
 *   to the store.
 *   Batched, so that logins never write to the store one by one: each
 *   write makes the loader read the store again.
 *
 * Only logins, disconnections and ticks reach this file, never a message. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "plugin.h"
#include "timeutil.h"
#include "topic.h"

/* How many logins go in one report (each entry is ~60 bytes of JSON: 500
 * stay far below any packet limit); how often: plugin_opt_seen_report_s. */
#define DEVICES_REPORT_BATCH 500
/* The one node of a single-broker service: the <node> of chat/seen/<node>. */
#define DEVICES_NODE "broker"

struct device_conn {
	UT_hash_handle hh;              /* by client pointer */
	const struct mosquitto *client;
	bool by_token;                  /* logged in with the token (else the password) */
	bool had_token;                 /* its device held a token at login or since */
	unsigned char digest[DEVTOKEN_DIGEST_LEN];  /* the device's token at login (by_token) */
	size_t ulen;                    /* clientid[0..ulen) is the user */
	char clientid[CLIENTID_MAX_LEN + 1];        /* <user>@<device> */
};

struct device_seen {
	UT_hash_handle hh;              /* by client id */
	int64_t ts;                     /* wall clock, ms */
	size_t ulen;
	char clientid[CLIENTID_MAX_LEN + 1];
};

int devices__login(struct mqchat *m, const struct mosquitto *client, const char *clientid,
		size_t ulen, const struct snap_device *d, bool by_token)
{
	struct devices *dv = &m->devices;
	struct device_conn *c;
	struct device_seen *s;
	size_t idlen = strlen(clientid);

	if(idlen > CLIENTID_MAX_LEN) return MQC_ERR_INVAL;
	HASH_FIND(hh, dv->conns, &client, sizeof(client), c);
	if(c == NULL){
		c = calloc(1, sizeof(*c));
		if(c == NULL) return MQC_ERR_NOMEM;
		c->client = client;
		HASH_ADD(hh, dv->conns, client, sizeof(c->client), c);
	}
	c->by_token = by_token;
	c->had_token = d != NULL;
	if(d != NULL) memcpy(c->digest, d->digest, sizeof(c->digest));
	c->ulen = ulen;
	memcpy(c->clientid, clientid, idlen + 1);

	/* Last seen, of devices with a token (devices lists those): a failure
	 * here loses a time, not the login. */
	if(d == NULL) return MQC_OK;
	HASH_FIND(hh, dv->seen, clientid, idlen, s);
	if(s == NULL && (s = calloc(1, sizeof(*s))) != NULL){
		memcpy(s->clientid, clientid, idlen + 1);
		s->ulen = ulen;
		HASH_ADD(hh, dv->seen, clientid[0], idlen, s);
	}
	if(s != NULL) s->ts = time__now_ms();
	return MQC_OK;
}

void devices__disconnect(struct mqchat *m, const struct mosquitto *client)
{
	struct device_conn *c;

	HASH_FIND(hh, m->devices.conns, &client, sizeof(client), c);
	if(c == NULL) return;
	HASH_DELETE(hh, m->devices.conns, c);
	free(c);
}

int devices__disconnect_cb(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;

	(void)event;
	devices__disconnect(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}

/* Does connection c keep its right to be connected in snapshot s? A
 * device given its first token since c logged in is marked as holding one
 * (so that revoking it closes c). */
static bool still_valid(const struct snapshot *s, struct device_conn *c)
{
	const struct snap_user *u = snapshot__user(s, c->clientid, c->ulen);
	const char *dev = c->clientid + c->ulen + 1;
	const struct snap_device *d;

	/* A deleted or disabled account is closed by tick.c already. */
	if(u == NULL || !u->enabled) return true;
	d = snapshot__device(u, dev, strlen(dev));
	if(d == NULL) return !c->had_token;             /* revoked, or never had one */
	c->had_token = true;
	return !c->by_token || devtoken__digest_eq(d->digest, c->digest);
}

size_t devices__snapshot(struct mqchat *m, const struct snapshot *s)
{
	struct devices *dv = &m->devices;
	struct device_conn *c, *tmp;
	char (*ids)[CLIENTID_MAX_LEN + 1] = NULL;
	size_t n = 0, cap = 0, i;

	if(s->devices_sum == dv->devices_sum) return 0;
	dv->devices_sum = s->devices_sum;
	/* Kicking fires DISCONNECT, which edits the table: ids first. */
	HASH_ITER(hh, dv->conns, c, tmp){
		if(still_valid(s, c)) continue;
		if(n == cap){
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(ids, ncap * sizeof(*ids));
			if(p == NULL) break;    /* the rest at the next change; refused at login meanwhile */
			ids = p;
			cap = ncap;
		}
		memcpy(ids[n++], c->clientid, sizeof(c->clientid));
	}
	for(i = 0; i < n; i++){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: closing %s (device token revoked)", ids[i]);
		mosquitto_kick_client_by_clientid(ids[i], false);
	}
	free(ids);
	return n;
}

size_t devices__close_token(struct mqchat *m, const char *clientid)
{
	char ids[4][CLIENTID_MAX_LEN + 1];
	struct device_conn *c, *tmp;
	size_t n = 0, i;

	/* One client id is one session; a few at most while one replaces
	 * another. Kicking edits the table: ids first. */
	HASH_ITER(hh, m->devices.conns, c, tmp){
		if(c->by_token && !strcmp(c->clientid, clientid) && n < 4) memcpy(ids[n++], c->clientid, sizeof(ids[0]));
	}
	for(i = 0; i < n; i++){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: closing %s (device token revoked;"
				" the snapshot follows)", ids[i]);
		mosquitto_kick_client_by_clientid(ids[i], false);
	}
	return n;
}

/* Publish up to DEVICES_REPORT_BATCH entries of the seen table (removed);
 * false when there was nothing left or nothing could be built. */
static bool report_batch(struct mqchat *m)
{
	struct devices *dv = &m->devices;
	struct device_seen *s, *tmp;
	char topic[TOPIC_MAX_LEN + 1], *text;
	json_t *list = json_array(), *msg;
	size_t n = 0;

	if(list == NULL) return false;
	HASH_ITER(hh, dv->seen, s, tmp){
		json_t *e = json_pack("{s:s%, s:s, s:I}", "user", s->clientid, s->ulen,
				"device", s->clientid + s->ulen + 1, "ts", (json_int_t)s->ts);
		if(e == NULL || json_array_append_new(list, e)) break;
		HASH_DELETE(hh, dv->seen, s);
		free(s);
		if(++n == DEVICES_REPORT_BATCH) break;
	}
	msg = json_pack("{s:o}", "seen", list);
	text = n > 0 && msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if(text == NULL) return false;
	topic__build(topic, sizeof(topic), TOPIC_SEEN, DEVICES_NODE, NULL);
	/* Before the broker takes text: a node with a spool hands the archiver
	 * everything through it. */
	plugin_spool__report(m, topic, text, strlen(text));
	/* QoS 1: the archiver's session keeps it while it is away. The broker
	 * takes text and frees it. */
	if(mosquitto_broker_publish(NULL, topic, (int)strlen(text), text, 1, false, NULL)
			!= MOSQ_ERR_SUCCESS){
		free(text);
	}
	return true;
}

void devices__tick(struct mqchat *m, int64_t now)
{
	struct devices *dv = &m->devices;

	if(now < dv->next_report) return;
	dv->next_report = now + (int64_t)m->cfg.seen_report_s * 1000;
	while(dv->seen != NULL && report_batch(m)){}
}

void devices__cleanup(struct mqchat *m)
{
	struct device_conn *c, *ctmp;
	struct device_seen *s, *stmp;

	HASH_FREE_ALL(m->devices.conns, c, ctmp);
	HASH_FREE_ALL(m->devices.seen, s, stmp);
}
