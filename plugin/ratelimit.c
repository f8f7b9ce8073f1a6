/* ratelimit.c - how fast one account may send (plugin_opt_send_rate and
 * plugin_opt_send_burst), checked on every publish by a user or a device.
 *
 * On the broker's hot path, so no allocation, no SQLite and no hashing: a
 * fixed table made at start, probed from the account's snapshot hash, one
 * 64-bit time per account. The rule is GCRA (the "virtual scheduling" form
 * of a token bucket): each message pushes the account's theoretical arrival
 * time (tat) on by one interval (1 s / rate) per started
 * RATELIMIT_UNIT_BYTES of payload, so the limit bounds bytes as well as
 * messages; a message is refused when tat is more than (burst - 1)
 * intervals ahead of now. An account whose tat is
 * in the past holds nothing back, so its slot is free for another: the
 * table only needs room for the accounts sending faster than their rate
 * right now. If all of an account's probe window is busy with such
 * accounts, the one nearest to idle is replaced (it may then send a burst
 * early; nobody is refused for the table being full). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "snapshot.h"

/* Slots looked at from an account's home slot. */
#define RATELIMIT_PROBE 16

int ratelimit__init(struct ratelimit *r, int rate, int burst, size_t slots)
{
	size_t n = 1;

	memset(r, 0, sizeof(*r));
	if(rate <= 0) return MQC_OK;            /* off */
	while(n < slots) n <<= 1;
	r->slots = calloc(n, sizeof(*r->slots));
	if(r->slots == NULL) return MQC_ERR_NOMEM;
	r->mask = n - 1;
	r->interval_us = 1000000 / rate > 0 ? 1000000 / rate : 1;
	r->tolerance_us = r->interval_us * (int64_t)(burst > 1 ? burst - 1 : 0);
	return MQC_OK;
}

void ratelimit__cleanup(struct ratelimit *r)
{
	free(r->slots);
	memset(r, 0, sizeof(*r));
}

/* What one message of bytes costs, in intervals. */
static int64_t cost(const struct ratelimit *r, bool light, uint32_t bytes)
{
	int64_t units = bytes > RATELIMIT_UNIT_BYTES ? 1 + (bytes - 1) / RATELIMIT_UNIT_BYTES : 1;

	return light ? r->interval_us / RATELIMIT_LIGHT : r->interval_us * units;
}

int64_t ratelimit__take(struct ratelimit *r, const struct snap_user *u, int64_t now_ms, bool light,
		uint32_t bytes)
{
	const int64_t now = now_ms * 1000;
	struct ratelimit_slot *s, *victim = NULL;
	size_t i, at;
	int64_t tat;

	if(r->slots == NULL) return 0;
	for(i=0; i<RATELIMIT_PROBE; i++){
		at = (u->hash + i) & r->mask;
		s = &r->slots[at];
		if(s->hash == u->hash && s->len == u->len && snapshot__name_eq(s->name, u->name, u->len)){
			goto found;
		}
		if(victim == NULL || s->tat < victim->tat) victim = s;
	}
	/* Not in the table: it takes the free (or nearest to free) slot. */
	s = victim;
	s->hash = u->hash;
	s->len = u->len;
	memcpy(s->name, u->name, u->len);
	s->tat = now;
found:
	tat = s->tat > now ? s->tat : now;
	if(tat - now > r->tolerance_us) return (tat - now - r->tolerance_us + 999) / 1000;
	s->tat = tat + cost(r, light, bytes);
	return 0;
}
