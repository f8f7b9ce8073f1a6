/* tick.c - MOSQ_EVT_TICK and MOSQ_EVT_RELOAD: the broker thread's chores.
 *
 * TICK fires once per main-loop pass (about 10/s idle, and under load up to
 * once per message) and carries no time in 2.0.11, so the plugin reads its
 * own clock, and does its chores at most every TICK_EVERY_MS. Each run:
 * swap in a snapshot the loader left, kick what it disabled or deleted, log
 * what the loader reported, close expired registration connections, publish
 * presence that waited (presence.c), run the start-up presence sweep,
 * now and then prune the throttle tables, and publish the figures
 * (stats.c) every plugin_opt_stats_interval.
 * Kicking fires MOSQ_EVT_DISCONNECT right away, which edits the presence
 * tables: so names and ids to kick are copied out first, kicked after. */
#include <stdlib.h>
#include <string.h>

#include "bus_plugin.h"
#include "plugin.h"

#define PRUNE_EVERY_MS 10000
#define REGISTER_KICKS_PER_TICK 64
/* Start-up presence sweep: 100,000 accounts take 100 ticks (~10 s idle). */
#define SWEEP_PER_TICK 1000
/* Presence gates looked at per tick (each publishes at most once). */
#define PRESENCE_PER_TICK 1000
/* Kicks per tick: each walks every connection of the broker. */
#define KICKS_PER_TICK 100
/* At most this often: a new snapshot waits at most this long more (the
 * reload target is 1 s), and 100 kicks per run still close 5,000
 * accounts a second. */
#define TICK_EVERY_MS 20

void tick__swap_snapshot(struct mqchat *m, struct snapshot *s)
{
	struct snapshot *old = m->snap;
	struct conn_user *u, *tmp;

	m->snap = s;
	cuts__applied(&m->cuts, s->data_version);
	m->stats.reloads++;
	m->stats.snapshot_since = m->clock_ms();
	memset(&m->acl_cache, 0, sizeof(m->acl_cache));
	/* Snapshots take turns in two slots, so a new one can sit at an old
	 * one's address: the sweep restarts on every swap, not on a new
	 * address only. */
	m->presence.sweep_started = false;
	/* Deleted accounts that are not connected: their presence goes now;
	 * the connected ones are marked below, and clear it as they go. */
	presence__vanished(m, s);
	HASH_ITER(hh, m->presence.users, u, tmp){
		const struct snap_user *su = snapshot__user(s, u->name, u->len);

		/* No connection left (its presence gate runs): nothing to kick. */
		if(u->count == 0) continue;
		if(su != NULL && su->enabled) continue;
		if(!u->kick_pending){
			u->kick_pending = true;
			m->presence.kicks_pending++;
		}
	}
	loader__retire(&m->loader, old);
	tick__kick_pending(m, KICKS_PER_TICK);
	m->stats.kicks[KICK_REVOKED] += devices__snapshot(m, s);
}

size_t tick__kick_pending(struct mqchat *m, size_t max)
{
	char (*names)[NAME_MAX_LEN + 1];
	struct conn_user *u, *tmp;
	size_t n = 0, i;

	if(m->presence.kicks_pending == 0 || max == 0) return 0;
	names = calloc(max, sizeof(*names));
	if(names == NULL) return 0;     /* next tick; the ACL denies them meanwhile */
	HASH_ITER(hh, m->presence.users, u, tmp){
		const struct snap_user *su;

		if(!u->kick_pending) continue;
		u->kick_pending = false;
		m->presence.kicks_pending--;
		/* Re-enabled since it was marked: nothing to do. */
		su = snapshot__user(m->snap, u->name, u->len);
		if(su != NULL && su->enabled) continue;
		memcpy(names[n++], u->name, u->len + 1);
		if(n == max) break;
	}
	/* Kicking fires DISCONNECT, which edits presence.users: kick after the walk. */
	for(i=0; i<n; i++){
		bool deleted = snapshot__user(m->snap, names[i], strlen(names[i])) == NULL;

		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: closing connections of %s (%s)", names[i],
				deleted ? "deleted" : "disabled");
		m->stats.kicks[deleted ? KICK_DELETED : KICK_DISABLED]++;
		mosquitto_kick_client_by_username(names[i], false);
	}
	free(names);
	return n;
}

/* Close registration connections whose time is up. */
static void expire_registrations(struct mqchat *m, int64_t now)
{
	char ids[REGISTER_KICKS_PER_TICK][CLIENTID_MAX_LEN + 1];
	struct conn *c, *tmp;
	int n = 0, i;

	HASH_ITER(hh, m->presence.registers, c, tmp){
		if(c->deadline > now) continue;
		memcpy(ids[n], c->clientid, sizeof(ids[n]));
		if(++n == REGISTER_KICKS_PER_TICK) break;
	}
	for(i=0; i<n; i++){
		mosquitto_kick_client_by_clientid(ids[i], false);
	}
	m->stats.kicks[KICK_REGISTER_TIMEOUT] += (unsigned long)n;
	/* A context the broker no longer knows by that id (already replaced)
	 * would stay; drop whatever is still expired. */
	HASH_ITER(hh, m->presence.registers, c, tmp){
		if(c->deadline + 5000 > now) continue;
		HASH_DELETE(hh, m->presence.registers, c);
		free(c);
		m->presence.register_count--;
	}
}

void tick__run(struct mqchat *m, int64_t now)
{
	struct snapshot *s;
	char msg[512];
	int level = MOSQ_LOG_NOTICE;
	bool has_msg;

	s = loader__take(&m->loader, msg, sizeof(msg), &level, &has_msg);
	if(has_msg) mosquitto_log_printf(level, "%s", msg);
	if(s) tick__swap_snapshot(m, s);
	else if(m->presence.kicks_pending) tick__kick_pending(m, KICKS_PER_TICK);
	cuts__take(m, loader__cuts(&m->loader));
	loader__watch(&m->loader, now);

	if(m->presence.registers) expire_registrations(m, now);
	if(m->presence.timed) presence__tick(m, now, PRESENCE_PER_TICK);
	if(m->presence.sweep_active) presence__sweep(m, SWEEP_PER_TICK);
	devices__tick(m, now);
	stats__tick(m, now);

	if(now >= m->next_prune){
		throttle__prune(&m->user_throttle, now);
		throttle__prune(&m->addr_throttle, now);
		throttle__prune(&m->register_limit, now);
		throttle__prune(&m->notice_limit, now);
		throttle__prune(&m->disabled_seen, now);
		m->next_prune = now + PRUNE_EVERY_MS;
	}
	plog__flush(&m->log, now);
}

int tick__tick_cb(int event, void *event_data, void *userdata)
{
	struct mqchat *m = userdata;
	const int64_t now = m->clock_ms();

	(void)event;
	(void)event_data;
	m->now_ms = now;        /* every pass: the send limit's clock */
	plugin_bus__drain(m);   /* every pass: what other nodes sent (bus.c) */
	if(now < m->next_tick) return MOSQ_ERR_SUCCESS;
	m->next_tick = now + TICK_EVERY_MS;
	tick__run(m, now);
	return MOSQ_ERR_SUCCESS;
}

int tick__reload_cb(int event, void *event_data, void *userdata)
{
	struct mqchat *m = userdata;

	(void)event;
	(void)event_data;
	/* SIGHUP: options are not passed again in 2.0; re-read the store. */
	mosquitto_log_printf(MOSQ_LOG_INFO, "mqchat: reload requested, re-reading the user store");
	loader__force(&m->loader);
	return MOSQ_ERR_SUCCESS;
}
