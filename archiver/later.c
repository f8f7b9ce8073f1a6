/* later.c - answers that wait until the broker has applied a change.
 *
 * A registration, a block or a new password is committed to auth.db at
 * once, but is in force only when the broker's plugin has loaded it. The
 * answer ("ok") is what the app acts on - it logs in as the new account, or
 * trusts that the blocked sender is cut off - so it leaves only once the
 * broker has the change (common/applied.h), or after LATER_MAX_MS if the
 * broker does not say so (logged). Nothing else waits: messages keep being
 * stored, and other answers go at once.
 *
 * On a store shared by several nodes (PostgreSQL) the app may log in, or
 * its peers be connected, on any node: the answer waits also until every
 * node heard from in the last 3 s uses the change (userdb__in_force_version,
 * one query a round however many answers wait), as the CLI does. */
#include <stdlib.h>
#include <string.h>

#include "applied.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "mqtt.h"
#include "timeutil.h"
#include "userdb.h"

/* Answer anyway after this long. */
#define LATER_MAX_MS 5000
/* Look at the applied mark this often while answers wait. */
#define LATER_POLL_MS 5

struct later {
	struct later *next;
	int conn;               /* index in d->conns */
	int64_t commit_ns;
	int64_t change;         /* its version on a shared store; 0: none */
	int64_t deadline;       /* mono ms */
	size_t len, corr_len;
	char *topic;            /* these three in the same allocation */
	char *text;
	unsigned char *corr;
};

void later__add(struct conn *c, const char *topic, char *text, const struct mqtt_msg *req,
		int64_t commit_ns, int64_t change)
{
	struct daemon *d = c->d;
	size_t tlen = strlen(topic) + 1, len = strlen(text), clen = req && req->corr ? req->corr_len : 0;
	struct later *w = malloc(sizeof(*w) + tlen + len + clen);

	if(w == NULL){
		/* No room to wait: answer now rather than never. */
		daemon__send(c, topic, text, len, req ? req->corr : NULL, clen);
		free(text);
		return;
	}
	w->next = NULL;
	w->conn = c->index;
	w->commit_ns = commit_ns;
	w->change = change;
	w->deadline = time__mono_ms() + LATER_MAX_MS;
	w->topic = (char *)(w + 1);
	w->text = w->topic + tlen;
	w->corr = (unsigned char *)w->text + len;
	w->len = len;
	w->corr_len = clen;
	memcpy(w->topic, topic, tlen);
	memcpy(w->text, text, len);
	if(clen) memcpy(w->corr, req->corr, clen);
	free(text);
	*(d->later_tail ? &d->later_tail->next : &d->later_head) = w;
	d->later_tail = w;
}

/* Does every node use w's change? Asks the store once a round (*in_force,
 * -1 until asked); a store that cannot say waits no more (the deadline
 * would say the same, later). */
static bool everywhere(struct daemon *d, const struct later *w, int64_t *in_force)
{
	if(w->change == 0) return true;
	if(*in_force < 0 && userdb__in_force_version(d->udb, in_force) != MQC_OK) *in_force = INT64_MAX;
	return *in_force >= w->change;
}

int64_t later__run(struct daemon *d, int64_t now)
{
	struct later **pp = &d->later_head, *w;
	int64_t in_force = -1;

	d->later_tail = NULL;
	while((w = *pp) != NULL){
		struct conn *c = &d->conns[w->conn];

		if(now < w->deadline && (applied__check(userdb__path(d->udb), w->commit_ns) == APPLIED_NOT_YET
				|| !everywhere(d, w, &in_force))){
			d->later_tail = w;
			pp = &w->next;
			continue;
		}
		if(now >= w->deadline){
			log_warnx("the broker has not applied a change after %d ms; answering on %s anyway",
					LATER_MAX_MS, w->topic);
		}
		if(mqtt__is_open(c->mq)){
			daemon__send(c, w->topic, w->text, w->len, w->corr_len ? w->corr : NULL, w->corr_len);
		}else{
			log_warnx("connection closed; the answer on %s is dropped (the change is made)", w->topic);
		}
		*pp = w->next;
		free(w);
	}
	return d->later_head ? now + LATER_POLL_MS : INT64_MAX;
}

void later__cleanup(struct daemon *d)
{
	struct later *w, *next;

	for(w = d->later_head; w; w = next){
		next = w->next;
		free(w);
	}
	d->later_head = d->later_tail = NULL;
}
