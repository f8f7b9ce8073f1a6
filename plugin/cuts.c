/* cuts.c - the revocation short list (docs/SCALING.md, "Revocation within
 * 1 s"; the ring is plugin.h's).
 *
 * Why: with a shared store (PostgreSQL) a change reaches every node's
 * loader as a notification at once, but takes effect only with the next
 * snapshot, and a rebuild of 100,000 accounts from PostgreSQL took 0.34 to
 * 0.88 s on a busy two-core machine, SQLite 0.23 to 0.43 s
 * (bench/micro/rebuild_bench.sh); three nodes rebuilding at once on those
 * cores closed a disabled account 0.61 to 0.71 s after the CLI started.
 * With the notification and the tick added, a larger store or a busier
 * machine passes the 1 s the design promises. So the loader copies the
 * changes that cut someone off into the shared header as they arrive, and
 * the tick acts on them at once: it closes the account's connections (a
 * device's token connections for a revoked token) and refuses their
 * logins until a snapshot with the change is in use.
 *
 * Only closing is done early. A change that only narrows what someone may
 * do (block, leave) waits for the snapshot, as every other change does:
 * the ACL is the snapshot's. */
#include <stdio.h>
#include <string.h>

#include "plugin.h"

void cuts__post(struct cut_ring *r, int64_t version, const char *kind, const char *name)
{
	uint32_t seq = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
	struct cut_entry *e = &r->e[seq % CUT_RING];
	char *slash;

	if(!strcmp(kind, "disable") || !strcmp(kind, "delete")) e->kind = CUT_USER;
	else if(!strcmp(kind, "revoke")) e->kind = CUT_DEVICE;
	else return;
	if(snprintf(e->name, sizeof(e->name), "%s", name) >= (int)sizeof(e->name)) return;
	/* The store names a device <user>/<device>; its client id is <user>@<device>. */
	slash = strchr(e->name, '/');
	if((e->kind == CUT_DEVICE) != (slash != NULL)) return;
	if(slash) *slash = '@';
	e->version = version;
	__atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELEASE);
}

static void keep(struct cuts *c, const struct cut_entry *e)
{
	/* Full: the oldest goes (its snapshot is the likeliest to be in use). */
	c->kept[c->next] = *e;
	c->next = (c->next + 1) % CUTS_KEPT;
	if(c->count < CUTS_KEPT) c->count++;
}

static void act(struct mqchat *m, const struct cut_entry *e)
{
	if(e->kind == CUT_USER){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: closing connections of %s (disabled or"
				" deleted; the snapshot follows)", e->name);
		m->stats.kicks[KICK_DISABLED]++;
		mosquitto_kick_client_by_username(e->name, false);
	}else{
		m->stats.kicks[KICK_REVOKED] += devices__close_token(m, e->name);
	}
}

void cuts__take(struct mqchat *m, const struct cut_ring *r)
{
	struct cut_entry acted[CUT_RING];
	uint32_t seq, i;
	size_t n = 0, k;

	if(r == NULL) return;
	seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
	if(seq == m->cuts.seen) return;
	/* Half a ring behind at most: the loader may be writing the entry
	 * after the newest. */
	if(seq - m->cuts.seen > CUT_RING / 2) m->cuts.seen = seq - CUT_RING / 2;
	for(i = m->cuts.seen; i != seq; i++){
		const struct cut_entry *e = &r->e[i % CUT_RING];

		/* In the snapshot in use already: done at its swap. */
		if(e->version <= m->snap->data_version) continue;
		keep(&m->cuts, e);
		acted[n++] = *e;
	}
	m->cuts.seen = seq;
	/* Kicking fires DISCONNECT, which edits the tables the kicks walk:
	 * copied first, then closed. */
	for(k = 0; k < n; k++) act(m, &acted[k]);
}

void cuts__applied(struct cuts *c, int64_t version)
{
	unsigned i, n = 0;

	/* Compact what the snapshot lacks still, oldest first. */
	for(i = 0; i < c->count; i++){
		const struct cut_entry *e = &c->kept[(c->next + CUTS_KEPT - c->count + i) % CUTS_KEPT];

		if(e->version > version) c->kept[n++] = *e;
	}
	c->count = n;
	c->next = n % CUTS_KEPT;
}

bool cuts__denies(const struct cuts *c, const char *username, const char *clientid, bool by_token)
{
	unsigned i;

	for(i = 0; i < c->count; i++){
		const struct cut_entry *e = &c->kept[(c->next + CUTS_KEPT - c->count + i) % CUTS_KEPT];

		if(e->kind == CUT_USER ? !strcmp(e->name, username)
				: by_token && !strcmp(e->name, clientid)){
			return true;
		}
	}
	return false;
}
