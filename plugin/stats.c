/* stats.c - the plugin's figures, published for Prometheus on $SYS/mqchat/plugin.
 *
 * Counting happens where things happen (auth.c, acl.c, tick.c), as plain
 * increments on the broker's only thread: nothing here is on the message
 * path. From TICK, every plugin_opt_stats_interval seconds, the figures
 * are written in the Prometheus text format 0.0.4 into a fixed buffer in
 * struct mqchat and published as one QoS 0, non-retained message on
 * STATS_TOPIC; the archiver (connection 0 reads $SYS, as services may)
 * serves it verbatim on its /metrics (archiver/README.md). Every series
 * is written from the start, zeros included, so a rate() has a first
 * sample; the label sets are fixed, so the text is a few KiB at most. The
 * payload is printable ASCII, every line starting "mqchat_plugin_" or
 * "# ": the archiver checks exactly that. Names and labels are listed in
 * plugin/README.md, "Metrics". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus_plugin.h"
#include "err.h"
#include "plugin.h"
#include "spool.h"

static const struct {
	const char *result, *reason;
} login_labels[LOGIN_REASON_COUNT] = {
	[LOGIN_OK_PASSWORD] = {"ok", "password"},
	[LOGIN_OK_SECRET] = {"ok", "secret"},
	[LOGIN_OK_TOKEN] = {"ok", "token"},
	[LOGIN_OK_REGISTER] = {"ok", "registration"},
	[LOGIN_CACHED] = {"cached", "credential_cache"},
	[LOGIN_THROTTLED_USER] = {"throttled", "user"},
	[LOGIN_THROTTLED_ADDRESS] = {"throttled", "address"},
	[LOGIN_THROTTLED_REGISTER] = {"throttled", "registration"},
	[LOGIN_BAD_PASSWORD] = {"refused", "bad_password"},
	[LOGIN_UNKNOWN_USER] = {"refused", "unknown_user"},
	[LOGIN_DISABLED] = {"refused", "disabled"},
	[LOGIN_BAD_TOKEN] = {"refused", "bad_token"},
	[LOGIN_NO_USERNAME] = {"refused", "no_username"},
	[LOGIN_BAD_USERNAME] = {"refused", "bad_username"},
	[LOGIN_BAD_CLIENT_ID] = {"refused", "bad_client_id"},
	[LOGIN_NO_PASSWORD] = {"refused", "no_password"},
	[LOGIN_PASSWORD_TOO_LONG] = {"refused", "password_too_long"},
	[LOGIN_BAD_HASH] = {"refused", "bad_stored_hash"},
	[LOGIN_CONNECTIONS] = {"refused", "too_many_connections"},
	[LOGIN_SESSIONS] = {"refused", "too_many_sessions"},
	[LOGIN_REGISTER_CLIENT_ID] = {"refused", "registration_client_id"},
	[LOGIN_REGISTER_FULL] = {"refused", "registration_full"},
	[LOGIN_NOMEM] = {"refused", "out_of_memory"},
};

static const char *const kick_labels[KICK_REASON_COUNT] = {
	[KICK_DISABLED] = "disabled",
	[KICK_DELETED] = "deleted",
	[KICK_REVOKED] = "revoked",
	[KICK_REGISTER_TIMEOUT] = "registration_timeout",
};

const char *stats__login_result(enum login_reason r)
{
	return r < LOGIN_REASON_COUNT ? login_labels[r].result : "?";
}

const char *stats__login_reason(enum login_reason r)
{
	return r < LOGIN_REASON_COUNT ? login_labels[r].reason : "?";
}

const char *stats__kick_reason(enum kick_reason r)
{
	return r < KICK_REASON_COUNT ? kick_labels[r] : "?";
}

bool stats__escape(char *out, size_t outlen, const char *value)
{
	size_t n = 0;

	for(; *value; value++){
		const char *rep = *value == '\\' ? "\\\\" : *value == '"' ? "\\\"" : *value == '\n' ? "\\n" : NULL;
		size_t k = rep ? 2 : 1;

		if(n + k >= outlen) return false;
		if(rep) memcpy(out + n, rep, 2);
		else out[n] = *value;
		n += k;
	}
	if(n >= outlen) return false;
	out[n] = '\0';
	return true;
}

/* The text being written: buf[0..len), and the end of the last whole family. */
struct text {
	char *buf;
	size_t cap, len, whole;
	bool full;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if(t->full) return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if(n < 0 || (size_t)n >= t->cap - t->len){
		t->full = true;
		return;
	}
	t->len += (size_t)n;
}

/* A family's HELP and TYPE lines; the one before it is whole. */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
	if(!t->full) t->whole = t->len;
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name{k1="v1",k2="v2"} value, labels escaped (k2 may be NULL,
 * and k1 too for none). */
static void sample(struct text *t, const char *name, const char *k1, const char *v1,
		const char *k2, const char *v2, const char *value)
{
	char e1[128], e2[128];

	if(k1 == NULL){
		put(t, "%s %s\n", name, value);
		return;
	}
	if(!stats__escape(e1, sizeof(e1), v1) || (k2 != NULL && !stats__escape(e2, sizeof(e2), v2))){
		t->full = true;
		return;
	}
	if(k2 == NULL) put(t, "%s{%s=\"%s\"} %s\n", name, k1, e1, value);
	else put(t, "%s{%s=\"%s\",%s=\"%s\"} %s\n", name, k1, e1, k2, e2, value);
}

static const char *num(char out[32], unsigned long v)
{
	snprintf(out, 32, "%lu", v);
	return out;
}

int stats__build(const struct mqchat *m, int64_t now, char *buf, size_t buflen, size_t *len)
{
	struct text t = {buf, buflen, 0, 0, false};
	const struct snapshot *s = m->snap;
	const struct plugin_stats *st = &m->stats;
	char v[32];
	int64_t age = now - st->snapshot_since;
	int i;

	if(buflen == 0){
		*len = 0;
		return MQC_ERR_TOOBIG;
	}
	family(&t, "mqchat_plugin_logins_total", "counter",
			"Logins (MQTT CONNECT) by result (ok, cached, refused, throttled) and reason.");
	for(i=0; i<LOGIN_REASON_COUNT; i++){
		sample(&t, "mqchat_plugin_logins_total", "result", login_labels[i].result,
				"reason", login_labels[i].reason, num(v, st->logins[i]));
	}
	family(&t, "mqchat_plugin_refusals_total", "counter",
			"Subscriptions, publishes and deliveries the plugin refused, by reason (docs/PROTOCOL.md codes).");
	for(i=1; i<ACL_REASON_COUNT; i++){
		sample(&t, "mqchat_plugin_refusals_total", "reason", acl__reason_code((enum acl_reason)i),
				NULL, NULL, num(v, m->acl_denied[i]));
	}
	family(&t, "mqchat_plugin_kicks_total", "counter",
			"Connections the plugin closed, by reason (one per account, device or registration connection).");
	for(i=0; i<KICK_REASON_COUNT; i++){
		sample(&t, "mqchat_plugin_kicks_total", "reason", kick_labels[i], NULL, NULL,
				num(v, st->kicks[i]));
	}
	family(&t, "mqchat_plugin_snapshot_reloads_total", "counter",
			"Snapshots of the user store swapped in since the broker started.");
	sample(&t, "mqchat_plugin_snapshot_reloads_total", NULL, NULL, NULL, NULL, num(v, st->reloads));
	family(&t, "mqchat_plugin_snapshot_age_seconds", "gauge",
			"Seconds since the snapshot in use was swapped in (the store has not changed since).");
	snprintf(v, sizeof(v), "%lld.%03lld", (long long)(age > 0 ? age / 1000 : 0),
			(long long)(age > 0 ? age % 1000 : 0));
	sample(&t, "mqchat_plugin_snapshot_age_seconds", NULL, NULL, NULL, NULL, v);
	family(&t, "mqchat_plugin_snapshot_bytes", "gauge",
			"Bytes of the snapshot in use.");
	sample(&t, "mqchat_plugin_snapshot_bytes", NULL, NULL, NULL, NULL,
			num(v, s ? (unsigned long)s->bytes : 0));
	family(&t, "mqchat_plugin_users", "gauge",
			"Accounts (people, devices, services) in the snapshot in use.");
	sample(&t, "mqchat_plugin_users", NULL, NULL, NULL, NULL,
			num(v, s ? (unsigned long)s->user_count : 0));
	family(&t, "mqchat_plugin_rooms", "gauge", "Rooms in the snapshot in use.");
	sample(&t, "mqchat_plugin_rooms", NULL, NULL, NULL, NULL,
			num(v, s ? (unsigned long)s->room_count : 0));
	family(&t, "mqchat_plugin_connections", "gauge",
			"Logged-in connections of accounts (registration connections not included).");
	sample(&t, "mqchat_plugin_connections", NULL, NULL, NULL, NULL,
			num(v, (unsigned long)HASH_COUNT(m->presence.conns)));
	family(&t, "mqchat_plugin_registration_connections", "gauge",
			"Open _register connections.");
	sample(&t, "mqchat_plugin_registration_connections", NULL, NULL, NULL, NULL,
			num(v, (unsigned long)m->presence.register_count));
	family(&t, "mqchat_plugin_spool_appends_total", "counter",
			"Records written to the node's spool (publishes and device login reports).");
	sample(&t, "mqchat_plugin_spool_appends_total", NULL, NULL, NULL, NULL,
			num(v, m->spool.appends));
	family(&t, "mqchat_plugin_spool_refusals_total", "counter",
			"What found no room in the spool: publishes refused (unavailable), device login reports lost.");
	sample(&t, "mqchat_plugin_spool_refusals_total", "what", "publish", NULL, NULL,
			num(v, m->spool.refused));
	sample(&t, "mqchat_plugin_spool_refusals_total", "what", "seen_report", NULL, NULL,
			num(v, m->spool.reports_lost));
	family(&t, "mqchat_plugin_spool_used_bytes", "gauge",
			"Bytes of the spool the archiver has not read yet (0 without a spool).");
	sample(&t, "mqchat_plugin_spool_used_bytes", NULL, NULL, NULL, NULL,
			num(v, m->spool.sp ? (unsigned long)spool__used(m->spool.sp) : 0));
	family(&t, "mqchat_plugin_spool_size_bytes", "gauge",
			"Size of the spool's ring (0 without a spool).");
	sample(&t, "mqchat_plugin_spool_size_bytes", NULL, NULL, NULL, NULL,
			num(v, m->spool.sp ? (unsigned long)spool__ring_size(m->spool.sp) : 0));
	family(&t, "mqchat_plugin_bus_injected_total", "counter",
			"Messages from other nodes the bus brought and the broker published (0 without a bus).");
	sample(&t, "mqchat_plugin_bus_injected_total", NULL, NULL, NULL, NULL,
			num(v, m->bus ? m->bus->injected : 0));
	family(&t, "mqchat_plugin_bus_lost_total", "counter",
			"What found no room in the spool for the bus: interest changes, typing.");
	sample(&t, "mqchat_plugin_bus_lost_total", "what", "interest", NULL, NULL,
			num(v, m->bus ? m->bus->interest_lost : 0));
	sample(&t, "mqchat_plugin_bus_lost_total", "what", "typing", NULL, NULL,
			num(v, m->bus ? m->bus->forward_lost : 0));
	sample(&t, "mqchat_plugin_bus_lost_total", "what", "presence", NULL, NULL,
			num(v, m->bus ? m->bus->presence_lost : 0));
	family(&t, "mqchat_plugin_bus_takeovers_total", "counter",
			"Sessions here whose client connected on another node (bus_presence.c).");
	sample(&t, "mqchat_plugin_bus_takeovers_total", NULL, NULL, NULL, NULL,
			num(v, m->bus ? m->bus->takeovers : 0));
	family(&t, "mqchat_plugin_bus_takeover_denied_total", "counter",
			"Deliveries denied to such a session until its client is back.");
	sample(&t, "mqchat_plugin_bus_takeover_denied_total", NULL, NULL, NULL, NULL,
			num(v, m->bus ? m->bus->takeover_denied : 0));
	family(&t, "mqchat_plugin_bus_resyncs_total", "counter",
			"Resync notices to clients back on the node that kept their session.");
	sample(&t, "mqchat_plugin_bus_resyncs_total", NULL, NULL, NULL, NULL,
			num(v, m->bus ? m->bus->resyncs : 0));
	if(!t.full) t.whole = t.len;
	*len = t.whole;
	buf[t.whole] = '\0';
	return t.full ? MQC_ERR_TOOBIG : MQC_OK;
}

void stats__tick(struct mqchat *m, int64_t now)
{
	struct plugin_stats *st = &m->stats;
	size_t len;

	if(st->next == 0){
		/* The first tick: the snapshot from init has been in use since about now. */
		if(st->reloads == 0) st->snapshot_since = now;
		st->next = now;
	}
	if(m->cfg.stats_interval_s <= 0 || now < st->next) return;
	st->next = now + (int64_t)m->cfg.stats_interval_s * 1000;
	if(stats__build(m, now, st->buf, sizeof(st->buf), &len) != MQC_OK){
		if(!st->warned){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "mqchat: the figures do not fit in %zu bytes:"
					" not published", sizeof(st->buf));
		}
		st->warned = true;
		return;
	}
	/* The broker copies the payload; QoS 0, not retained: a figure is
	 * worth nothing once the next one is out. */
	(void)mosquitto_broker_publish_copy(NULL, STATS_TOPIC, (int)len, st->buf, 0, false, NULL);
}
