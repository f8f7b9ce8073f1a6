/* seen.c - the plugin's reports of device logins (chat/seen/<node>, written
 * by plugin/devices.c) into the store's devices.last_seen.
 *
 * A report is {"seen":[{"user":..,"device":..,"ts":..},...]}. Only the
 * plugin may publish there (the ACL refuses it to people and services), but
 * the report is checked as if anybody could: a report with anything wrong
 * in it (not JSON, no "seen" array, an entry without a valid user, device
 * or positive ts, a ts far in the future, too many entries) is ignored
 * whole, with a warning at most once a minute, and the archiver goes on. A
 * good one is written in one write transaction: the plugin's loader then
 * reads the store once per report, not once per login.
 *
 * Applied by the worker thread (worker.c), which owns the responder's
 * auth.db connection; the poll loop only queues it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon.h"
#include "err.h"
#include "log.h"
#include "mqtt.h"
#include "names.h"
#include "timeutil.h"
#include "userdb.h"

/* A warning about a bad report at most this often. */
#define SEEN_WARN_EVERY_MS 60000

/* Copy the string member key of o into out (size outlen) if it passes
 * valid; false otherwise. */
static bool member(json_t *o, const char *key, bool (*valid)(const char *, size_t),
		char *out, size_t outlen)
{
	json_t *v = json_object_get(o, key);
	size_t len = json_string_length(v);

	if(!json_is_string(v) || len >= outlen || !valid(json_string_value(v), len)) return false;
	memcpy(out, json_string_value(v), len + 1);
	return true;
}

int seen__parse(const void *payload, size_t len, int64_t now, struct seen_entry **out, size_t *n,
		char *why, size_t whylen)
{
	json_t *root, *list, *e;
	json_error_t jerr;
	struct seen_entry *v = NULL;
	size_t i, count;

	*out = NULL;
	*n = 0;
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if(root == NULL){
		snprintf(why, whylen, "not JSON (%s)", jerr.text);
		return MQC_ERR_INVAL;
	}
	list = json_object_get(root, "seen");
	count = json_array_size(list);
	if(!json_is_array(list) || count == 0 || count > SEEN_MAX_ENTRIES){
		snprintf(why, whylen, "no \"seen\" array of 1 to %d entries", SEEN_MAX_ENTRIES);
		json_decref(root);
		return MQC_ERR_INVAL;
	}
	v = calloc(count, sizeof(*v));
	if(v == NULL){
		json_decref(root);
		snprintf(why, whylen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	json_array_foreach(list, i, e){
		json_t *ts = json_object_get(e, "ts");

		if(!member(e, "user", names__valid, v[i].user, sizeof(v[i].user))
				|| !member(e, "device", names__valid_device, v[i].device, sizeof(v[i].device))
				|| !json_is_integer(ts) || json_integer_value(ts) <= 0
				|| json_integer_value(ts) > now + SEEN_MAX_AHEAD_MS){
			snprintf(why, whylen, "entry %zu is not {\"user\":NAME,\"device\":DEVICE,\"ts\":MS}"
					" with a time no later than now", i);
			free(v);
			json_decref(root);
			return MQC_ERR_INVAL;
		}
		v[i].ts = json_integer_value(ts);
	}
	json_decref(root);
	*out = v;
	*n = count;
	return MQC_OK;
}

int seen__apply(struct userdb *udb, const struct seen_entry *v, size_t n)
{
	size_t i;
	int rc = userdb__begin_write(udb);

	for(i = 0; rc == MQC_OK && i < n; i++){
		rc = userdb__device_seen(udb, v[i].user, v[i].device, v[i].ts);
	}
	if(rc == MQC_OK) rc = userdb__commit(udb);
	if(rc != MQC_OK) userdb__rollback(udb);
	return rc;
}

/* Warn about a report that was not applied, at most once per
 * SEEN_WARN_EVERY_MS (a broken or hostile publisher must not fill the
 * log), saying how many were dropped quietly since. */
static void warn(struct responder *rs, const char *topic, const char *verdict, const char *why)
{
	int64_t now = time__mono_ms();
	char esc[128];

	if(rs->seen_warned != 0 && now - rs->seen_warned < SEEN_WARN_EVERY_MS){
		rs->seen_quiet++;
		return;
	}
	log_warnx("device login report on %s %s: %s (%lld more since the last warning)",
			log_escape(topic, strlen(topic), esc, sizeof(esc)), verdict, why,
			(long long)rs->seen_quiet);
	rs->seen_warned = now;
	rs->seen_quiet = 0;
}

void seen__handle(struct responder *rs, const struct mqtt_msg *msg)
{
	struct seen_entry *v;
	char why[256];
	size_t n;
	int rc;

	rc = seen__parse(msg->payload, msg->len, time__now_ms(), &v, &n, why, sizeof(why));
	if(rc != MQC_OK){
		warn(rs, msg->topic, "ignored", why);
		return;
	}
	rc = seen__apply(rs->udb, v, n);
	free(v);
	if(rc != MQC_OK){
		warn(rs, msg->topic, "not stored", mqc_strerror(rc));
		return;
	}
	log_debug("device logins: %zu stored", n);
}
