/* bus.c - the NATS subjects of the bus (bus.h). */
#include <stdio.h>
#include <string.h>

#include "bus.h"

static const struct {
	const char *level;              /* chat/<level>/... */
	const char *token;              /* mq.<token>.... */
} kinds[] = {
	{"inbox", "i"},
	{"room", "r"},
	{"typing", "t"},
	{"roomtyping", "rt"},
};
#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

/* Split s at '/' into at most max levels (pointers and lengths into s);
 * returns the count, or max + 1 when there are more. */
static size_t split(const char *s, const char **lv, size_t *len, size_t max)
{
	size_t n = 0;
	const char *slash;

	for(;;){
		if(n == max) return max + 1;
		slash = strchr(s, '/');
		lv[n] = s;
		len[n] = slash ? (size_t)(slash - s) : strlen(s);
		n++;
		if(slash == NULL) return n;
		s = slash + 1;
	}
}

/* Append level s (len bytes) as a NATS token: '.' as '~'. False if a byte
 * cannot be in a token or it does not fit. */
static bool put_token(char *out, size_t outlen, size_t *at, const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	if(len == 0 || *at + len + 2 > outlen) return false;
	out[(*at)++] = '.';
	for(i=0; i<len; i++){
		c = (unsigned char)s[i];
		if(c <= ' ' || c == 0x7f || c == '*' || c == '>' || c == '~' || c == '+' || c == '#'){
			return false;
		}
		out[(*at)++] = c == '.' ? '~' : (char)c;
	}
	out[*at] = '\0';
	return true;
}

bool bus__token(const char *name, char *out, size_t outlen)
{
	char buf[BUS_SUBJECT_MAX];
	size_t at = 0;

	if(name == NULL || !put_token(buf, sizeof(buf), &at, name, strlen(name)) || at > outlen) return false;
	memcpy(out, buf + 1, at);       /* the token and its NUL, not put_token's '.' */
	return true;
}

bool bus__token_name(const char *subject, const char *prefix, char *out, size_t outlen)
{
	size_t i, n, plen = strlen(prefix);

	if(subject == NULL || strncmp(subject, prefix, plen) != 0) return false;
	subject += plen;
	n = strlen(subject);
	if(n == 0 || n >= outlen) return false;
	for(i=0; i<n; i++){
		if(subject[i] == '.' || subject[i] == '*' || subject[i] == '>'
				|| (unsigned char)subject[i] <= ' '){
			return false;
		}
		out[i] = subject[i] == '~' ? '.' : subject[i];
	}
	out[n] = '\0';
	return true;
}

static int kind_of(const char *lv, size_t len)
{
	size_t k;

	for(k=0; k<KIND_COUNT; k++){
		if(strlen(kinds[k].level) == len && memcmp(kinds[k].level, lv, len) == 0) return (int)k;
	}
	return -1;
}

bool bus__carries(const char *topic)
{
	char buf[BUS_SUBJECT_MAX];

	return bus__subject(topic, buf, sizeof(buf));
}

bool bus__subject(const char *topic, char *out, size_t outlen)
{
	const char *lv[4];
	size_t len[4], at;
	int k;

	if(topic == NULL || split(topic, lv, len, 4) != 4) return false;
	if(len[0] != 4 || memcmp(lv[0], "chat", 4) != 0) return false;
	k = kind_of(lv[1], len[1]);
	if(k < 0) return false;
	at = (size_t)snprintf(out, outlen, "mq.%s", kinds[k].token);
	if(at >= outlen) return false;
	return put_token(out, outlen, &at, lv[2], len[2]) && put_token(out, outlen, &at, lv[3], len[3]);
}

bool bus__topic(const char *subject, char *out, size_t outlen)
{
	const char *p, *dot;
	size_t at, k, n, i;

	if(subject == NULL || strncmp(subject, "mq.", 3) != 0) return false;
	p = subject + 3;
	dot = strchr(p, '.');
	if(dot == NULL) return false;
	for(k=0; k<KIND_COUNT; k++){
		if(strlen(kinds[k].token) == (size_t)(dot - p)
				&& memcmp(kinds[k].token, p, (size_t)(dot - p)) == 0) break;
	}
	if(k == KIND_COUNT) return false;
	at = (size_t)snprintf(out, outlen, "chat/%s", kinds[k].level);
	if(at >= outlen) return false;
	/* Exactly two tokens follow, neither empty nor a wildcard. */
	for(n=0, p=dot + 1; n<2; n++){
		dot = strchr(p, '.');
		if((n == 0) != (dot != NULL)) return false;
		i = dot ? (size_t)(dot - p) : strlen(p);
		if(i == 0 || at + i + 2 > outlen) return false;
		out[at++] = '/';
		for(; i>0; i--, p++){
			if(*p == '*' || *p == '>' || *p == '/' || (unsigned char)*p <= ' ') return false;
			out[at++] = *p == '~' ? '.' : *p;
		}
		out[at] = '\0';
		p++;
	}
	return true;
}

/* One level of a filter at subject position pos (2 or 3) into out. */
static bool put_filter_level(char *out, size_t outlen, size_t *at, const char *lv, size_t len,
		bool last)
{
	if(len == 1 && lv[0] == '+'){
		if(*at + 3 > outlen) return false;
		memcpy(out + *at, ".*", 3);
		*at += 2;
		return true;
	}
	if(len == 1 && lv[0] == '#'){
		/* Not last: '#' stands for both levels left. */
		if(*at + 3 > outlen) return false;
		memcpy(out + *at, last ? ".*" : ".>", 3);
		*at += 2;
		return true;
	}
	return put_token(out, outlen, at, lv, len);
}

size_t bus__filter_subjects(const char *filter, char out[][BUS_SUBJECT_MAX])
{
	const char *lv[5];
	size_t len[5], n, k, at, count = 0;
	int only = -1;

	if(filter == NULL) return 0;
	n = split(filter, lv, len, 5);
	/* A '#' may only be last (MQTT); past it nothing. */
	for(k=0; k<n && k<5; k++){
		if(memchr(lv[k], '#', len[k]) && (len[k] != 1 || k != n - 1)) return 0;
		if(memchr(lv[k], '+', len[k]) && len[k] != 1) return 0;
	}
	/* chat/... : level 0 "chat", "+" or "#". */
	if(n > 4 && !(n == 5 && len[4] == 1 && lv[4][0] == '#')) return 0;
	if(!((len[0] == 4 && memcmp(lv[0], "chat", 4) == 0) || (len[0] == 1 && lv[0][0] == '+')
				|| (len[0] == 1 && lv[0][0] == '#'))){
		return 0;
	}
	if(n >= 2 && !(len[1] == 1 && (lv[1][0] == '+' || lv[1][0] == '#'))){
		only = kind_of(lv[1], len[1]);
		if(only < 0) return 0;
	}
	for(k=0; k<KIND_COUNT; k++){
		if(only >= 0 && (size_t)only != k) continue;
		at = (size_t)snprintf(out[count], BUS_SUBJECT_MAX, "mq.%s", kinds[k].token);
		if(n <= 2){
			/* "#" or "chat/#" or "+/#"...: a filter of one or two levels
			 * matches four-level topics only through a '#'. */
			if(lv[n - 1][0] != '#' || len[n - 1] != 1) return 0;
			memcpy(out[count] + at, ".>", 3);
			count++;
			continue;
		}
		if(!put_filter_level(out[count], BUS_SUBJECT_MAX, &at, lv[2], len[2], false)) return 0;
		if(n == 3){
			/* chat/inbox/alice matches no four-level topic; chat/inbox/# did above. */
			if(!(len[2] == 1 && lv[2][0] == '#')) return 0;
			count++;
			continue;
		}
		if(!put_filter_level(out[count], BUS_SUBJECT_MAX, &at, lv[3], len[3], true)) return 0;
		count++;
	}
	return count;
}
