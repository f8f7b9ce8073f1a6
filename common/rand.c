/* rand.c - random bytes from OpenSSL (see rand.h). */
#include <limits.h>

#include <openssl/rand.h>

#include "err.h"
#include "rand.h"

int rand__bytes(void *out, size_t n)
{
	unsigned char *p = out;

	while(n > 0){
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if(RAND_bytes(p, chunk) != 1) return MQC_ERR_CRYPTO;
		p += chunk;
		n -= (size_t)chunk;
	}
	return MQC_OK;
}
