/* rand.h - the one source of random bytes for every part (OpenSSL's CSPRNG):
 * salts, cache keys, invite tokens, message and request ids. */
#ifndef MQCHAT_RAND_H
#define MQCHAT_RAND_H

#include <stddef.h>

/* Fill out[0..n) with cryptographically strong random bytes. Returns MQC_OK,
 * or MQC_ERR_CRYPTO when OpenSSL has none to give (out is then
 * unspecified). */
int rand__bytes(void *out, size_t n);

#endif
