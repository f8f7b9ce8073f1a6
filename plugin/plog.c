/* plog.c - rate-limited NOTICE lines for auth failures and ACL denials.
 *
 * A flood of bad logins must not become a flood of log lines: at most
 * `rate` lines per second are written, the rest are counted and reported by
 * a single "N messages suppressed" line once the second is over. */
#include <stdio.h>

#include "log.h"
#include "plugin.h"

static void report_suppressed(struct plog *p)
{
	if(p->suppressed > 0){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqchat: %lu messages suppressed", p->suppressed);
	}
	p->suppressed = 0;
}

/* Move to the second of now_ms, reporting what the last one dropped. */
static void advance(struct plog *p, int64_t now_ms)
{
	int64_t window = now_ms / 1000;

	if(window != p->window){
		report_suppressed(p);
		p->window = window;
		p->count = 0;
	}
}

bool plog__begin(struct plog *p, int64_t now_ms)
{
	advance(p, now_ms);
	if(p->count >= p->rate){
		p->suppressed++;
		return false;
	}
	p->count++;
	return true;
}

void plog__flush(struct plog *p, int64_t now_ms)
{
	advance(p, now_ms);
}

const char *plugin__esc(const char *s, char *buf, size_t buflen)
{
	size_t len;

	if(s == NULL) return "(null)";
	/* Bound the scan: only the start of a huge string is logged. */
	for(len=0; len < 4 * buflen && s[len]; len++){
	}
	return log_escape(s, len, buf, buflen);
}
