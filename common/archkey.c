/* archkey.c - the keys of archive.db's messages (see archkey.h). */
#include <stdio.h>
#include <string.h>

#include "archkey.h"

#define FNV64_OFFSET 1469598103934665603ULL
#define FNV64_PRIME 1099511628211ULL

int64_t archkey__id_hash(const char *sender, const char *id)
{
	uint64_t h = FNV64_OFFSET;
	const unsigned char *p;

	for(p = (const unsigned char *)sender; *p; p++){
		h ^= *p;
		h *= FNV64_PRIME;
	}
	h *= FNV64_PRIME;       /* the 0 byte between them (h ^= 0) */
	for(p = (const unsigned char *)id; *p; p++){
		h ^= *p;
		h *= FNV64_PRIME;
	}
	return (int64_t)h;
}

void archkey__dm_conv(const char *a, const char *b, char *out, size_t outlen)
{
	if(strcmp(a, b) > 0){
		const char *t = a;
		a = b;
		b = t;
	}
	snprintf(out, outlen, "d:%s|%s", a, b);
}
