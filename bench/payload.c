/* payload.c - the 200-byte text envelopes the load sends. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "timeutil.h"

#define BODY_KEY "\"body\":\""

int payload__make(char *buf, int size, const char *idprefix, long seq, int64_t now_ns)
{
	int head, tail, pad;
	char tailbuf[64];

	/* {"id":"<prefix>-<seq>","type":"text","body":"<ns> <seq> xxx...","ts":<ms>} */
	head = snprintf(buf, (size_t)size + 1, "{\"id\":\"%s-%ld\",\"type\":\"text\","
			BODY_KEY "%" PRId64 " %ld ", idprefix, seq, now_ns, seq);
	tail = snprintf(tailbuf, sizeof(tailbuf), "\",\"ts\":%" PRId64 "}", time__now_ms());
	if(head < 0 || tail < 0 || head + tail > size){
		return -1;
	}
	pad = size - head - tail;
	memset(buf + head, 'x', (size_t)pad);
	memcpy(buf + head + pad, tailbuf, (size_t)tail);
	buf[size] = '\0';
	return size;
}

int64_t payload__sent_ns(const void *payload, int len)
{
	const char *p, *q;
	char num[24];
	size_t n;

	if(payload == NULL || len <= 0){
		return -1;
	}
	p = memmem(payload, (size_t)len, BODY_KEY, sizeof(BODY_KEY) - 1);
	if(p == NULL){
		return -1;
	}
	p += sizeof(BODY_KEY) - 1;
	q = memchr(p, ' ', (size_t)((const char *)payload + len - p));
	if(q == NULL || (n = (size_t)(q - p)) == 0 || n >= sizeof(num)){
		return -1;
	}
	memcpy(num, p, n);
	num[n] = '\0';
	return strtoll(num, NULL, 10);
}
