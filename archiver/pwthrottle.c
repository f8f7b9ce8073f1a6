/* pwthrottle.c - how often an account may have its password checked over RPC.
 *
 * `passwd` checks the old password with a deliberately slow hash, on the
 * worker thread (worker.c), which answers everybody's requests in turns.
 * Unthrottled, one user could guess hundreds of passwords a second past the
 * plugin's login throttle, and keep the worker hashing meanwhile. The rule follows the plugin's login throttle:
 * from the third wrong password in a row an account is locked for 0.5 s,
 * doubling up to 60 s; a right one clears the count but locks the account
 * for PWT_AFTER_OK_MS, so even someone who knows the password cannot keep
 * the archiver hashing. While locked a request is answered at once, without
 * hashing. State lives in memory only (a restart forgets it), the worker
 * thread's alone. */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "err.h"
#include "grow.h"
#include "names.h"

#define PWT_FREE_FAILS 3
#define PWT_BASE_MS 500
#define PWT_MAX_MS 60000
#define PWT_AFTER_OK_MS 1000
/* An entry unused this long (and not locked) is forgotten. */
#define PWT_FORGET_MS (15 * 60 * 1000)

struct pwt_entry {
	char user[NAME_MAX_LEN + 1];
	int fails;              /* wrong passwords in a row */
	int64_t locked_until;   /* mono ms */
	int64_t last;           /* mono ms of the last check */
};

/* Drop entries that say nothing any more. */
static void prune(struct responder *d, int64_t now)
{
	size_t i = 0;

	while(i < d->pwt_n){
		struct pwt_entry *e = &d->pwt[i];

		if(e->locked_until <= now && now - e->last >= PWT_FORGET_MS){
			*e = d->pwt[--d->pwt_n];
		}else{
			i++;
		}
	}
}

static struct pwt_entry *find(struct responder *d, const char *user)
{
	size_t i;

	for(i = 0; i < d->pwt_n; i++){
		if(strcmp(d->pwt[i].user, user) == 0) return &d->pwt[i];
	}
	return NULL;
}

int64_t pwthrottle__locked(struct responder *d, const char *user, int64_t now)
{
	struct pwt_entry *e = find(d, user);

	return e && e->locked_until > now ? e->locked_until - now : 0;
}

int pwthrottle__result(struct responder *d, const char *user, bool right, int64_t now)
{
	struct pwt_entry *e;

	prune(d, now);
	e = find(d, user);
	if(e == NULL){
		struct pwt_entry *v = grow__one(d->pwt, &d->pwt_cap, d->pwt_n, sizeof(*v), 16);

		if(v == NULL) return MQC_ERR_NOMEM;
		d->pwt = v;
		e = &d->pwt[d->pwt_n++];
		memset(e, 0, sizeof(*e));
		strncpy(e->user, user, NAME_MAX_LEN);
	}
	e->last = now;
	if(right){
		e->fails = 0;
		e->locked_until = now + PWT_AFTER_OK_MS;
		return MQC_OK;
	}
	e->fails++;
	if(e->fails >= PWT_FREE_FAILS){
		int64_t ms = PWT_BASE_MS;
		int i;

		for(i = PWT_FREE_FAILS; i < e->fails && ms < PWT_MAX_MS; i++) ms *= 2;
		if(ms > PWT_MAX_MS) ms = PWT_MAX_MS;
		e->locked_until = now + ms;
	}
	return MQC_OK;
}

void pwthrottle__cleanup(struct responder *d)
{
	free(d->pwt);
	d->pwt = NULL;
	d->pwt_n = d->pwt_cap = 0;
}
