/* devtoken.h - device tokens: what a device presents instead of its
 * account's password once it has logged in with it (docs/PROTOCOL.md,
 * "Device tokens").
 *
 * A token is DEVTOKEN_PREFIX and 43 base64url characters: 256 random bits.
 * That much randomness needs no slow hash: the store keeps only its
 * SHA-256 (hex), so a token login costs a microsecond, and a copy of the
 * store gives nobody a token. The prefix tells a token from a password
 * (people's passwords never start with it: see devtoken__is_token). */
#ifndef MQCHAT_DEVTOKEN_H
#define MQCHAT_DEVTOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define DEVTOKEN_PREFIX "mqt1."
#define DEVTOKEN_PREFIX_LEN (sizeof(DEVTOKEN_PREFIX) - 1)
#define DEVTOKEN_RANDOM_BYTES 32
#define DEVTOKEN_LEN (DEVTOKEN_PREFIX_LEN + 43)
#define DEVTOKEN_DIGEST_LEN 32
#define DEVTOKEN_DIGEST_HEX_LEN (DEVTOKEN_DIGEST_LEN * 2)

/* A new token into out (NUL-terminated). MQC_OK or MQC_ERR_CRYPTO. */
int devtoken__make(char out[DEVTOKEN_LEN + 1]);
/* The token of 32 given bytes (devtoken__make's form): for the bench,
 * which derives its users' tokens from a seed. */
void devtoken__encode(const unsigned char raw[DEVTOKEN_RANDOM_BYTES], char out[DEVTOKEN_LEN + 1]);

/* True if s[0..len) has the form of a token: the prefix, then exactly 43
 * base64url characters. A password of that form is refused at login as a
 * password, so nobody chooses one (`passwd` refuses it too). */
bool devtoken__is_token(const char *s, size_t len);

/* The SHA-256 of s[0..len). MQC_OK or MQC_ERR_CRYPTO. */
int devtoken__digest(const char *s, size_t len, unsigned char out[DEVTOKEN_DIGEST_LEN]);

/* The digest as 64 lowercase hex digits (the store's form) and back;
 * devtoken__from_hex is false for anything but exactly that form. */
void devtoken__to_hex(const unsigned char d[DEVTOKEN_DIGEST_LEN], char out[DEVTOKEN_DIGEST_HEX_LEN + 1]);
bool devtoken__from_hex(const char *hex, unsigned char out[DEVTOKEN_DIGEST_LEN]);

/* Constant-time comparison of two digests. */
bool devtoken__digest_eq(const unsigned char a[DEVTOKEN_DIGEST_LEN],
		const unsigned char b[DEVTOKEN_DIGEST_LEN]);

#endif
