/* throttle.c - login throttles: exponential backoff per key, and token
 * buckets (registration attempts per address).
 *
 * Tables are bounded: when full, the oldest entry (insertion order) is
 * evicted, and TICK prunes entries that no longer hold anything back. Every
 * function takes the time as an argument so tests can drive the clock. */
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define THROTTLE_KEY_MAX 256

void throttle__init_backoff(struct throttle *t, uint32_t free_failures, int64_t base_ms,
		int64_t cap_ms, size_t max_entries)
{
	memset(t, 0, sizeof(*t));
	t->free_failures = free_failures;
	t->base_ms = base_ms;
	t->cap_ms = cap_ms;
	t->max_entries = max_entries;
}

void throttle__init_bucket(struct throttle *t, double burst, int64_t period_ms,
		size_t max_entries)
{
	memset(t, 0, sizeof(*t));
	t->burst = burst;
	t->period_ms = period_ms;
	t->max_entries = max_entries;
}

static struct throttle_entry *find(struct throttle *t, const char *key, size_t len)
{
	struct throttle_entry *e = NULL;

	if(len > THROTTLE_KEY_MAX) len = THROTTLE_KEY_MAX;
	HASH_FIND(hh, t->head, key, len, e);
	return e;
}

static void drop(struct throttle *t, struct throttle_entry *e)
{
	HASH_DELETE(hh, t->head, e);
	free(e);
	t->count--;
}

/* Find or create the entry of key; NULL only when out of memory. */
static struct throttle_entry *get(struct throttle *t, const char *key, size_t len, int64_t now)
{
	struct throttle_entry *e;
	bool oom = false;

	if(len > THROTTLE_KEY_MAX) len = THROTTLE_KEY_MAX;
	e = find(t, key, len);
	if(e) return e;
	if(t->count >= t->max_entries && t->head){
		drop(t, t->head);       /* the oldest */
	}
	e = calloc(1, sizeof(*e) + len + 1);
	if(e == NULL) return NULL;
	memcpy(e->key, key, len);
	e->len = (uint16_t)len;
	e->tokens = t->burst;
	e->last = now;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) do{ oom = true; }while(0)
	HASH_ADD(hh, t->head, key, e->len, e);
	if(oom){
		free(e);
		return NULL;
	}
	t->count++;
	return e;
}

bool throttle__locked(struct throttle *t, const char *key, size_t len, int64_t now,
		int64_t *wait_ms)
{
	struct throttle_entry *e = find(t, key, len);

	if(e == NULL || e->locked_until <= now) return false;
	if(wait_ms) *wait_ms = e->locked_until - now;
	return true;
}

uint32_t throttle__fail(struct throttle *t, const char *key, size_t len, int64_t now)
{
	struct throttle_entry *e = get(t, key, len, now);
	int64_t lock;
	uint32_t shift;

	if(e == NULL) return 0;
	if(e->failures < UINT32_MAX) e->failures++;
	e->last = now;
	if(e->failures >= t->free_failures){
		shift = e->failures - t->free_failures;
		lock = t->cap_ms;
		/* base * 2^shift, without overflowing on the way to the cap. */
		if(shift < 40){
			lock = t->base_ms << shift;
			if(lock > t->cap_ms) lock = t->cap_ms;
		}
		e->locked_until = now + lock;
	}
	return e->failures;
}

void throttle__reset(struct throttle *t, const char *key, size_t len)
{
	struct throttle_entry *e = find(t, key, len);

	if(e) drop(t, e);
}

bool throttle__take(struct throttle *t, const char *key, size_t len, int64_t now)
{
	struct throttle_entry *e = get(t, key, len, now);

	/* Out of memory: refuse (fail closed). */
	if(e == NULL) return false;
	if(now > e->last){
		e->tokens += t->burst * (double)(now - e->last) / (double)t->period_ms;
		if(e->tokens > t->burst) e->tokens = t->burst;
		e->last = now;
	}
	if(e->tokens < 1.0) return false;
	e->tokens -= 1.0;
	return true;
}

void throttle__prune(struct throttle *t, int64_t now)
{
	struct throttle_entry *e, *tmp;
	int64_t idle = t->period_ms > 0 ? t->period_ms : 2 * t->cap_ms;

	HASH_ITER(hh, t->head, e, tmp){
		/* Backoff entries: a failure streak forgotten after being idle for
		 * twice the cap. Buckets: full again after one period. */
		if(e->locked_until <= now && now - e->last >= idle){
			drop(t, e);
		}
	}
}

void throttle__cleanup(struct throttle *t)
{
	struct throttle_entry *e, *tmp;

	HASH_ITER(hh, t->head, e, tmp){
		drop(t, e);
	}
}
