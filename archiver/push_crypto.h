/* push_crypto.h - the cryptography of push notifications, on OpenSSL:
 *
 * - Web Push message encryption (RFC 8291, "aes128gcm" content coding of
 *   RFC 8188): ECDH P-256 with the subscription's key, HKDF-SHA-256 with
 *   its auth secret, AES-128-GCM, one record.
 * - VAPID (RFC 8292): an ES256 JWT {aud, exp, sub} and the Authorization
 *   header "vapid t=<jwt>, k=<public key>"; and making the key pair.
 * - APNs provider tokens: an ES256 JWT {alg ES256, kid} {iss, iat}.
 * - Google OAuth 2.0 service accounts (FCM HTTP v1): an RS256 JWT assertion
 *   {iss, scope, aud, iat, exp} for the jwt-bearer grant.
 * - Webhooks: HMAC-SHA256 of "<timestamp>.<body>", hex.
 *
 * JWT signatures are JOSE's: ES256 is the raw 64-byte r||s (not DER). All
 * base64 here is base64url without padding. Pure functions (no I/O but
 * reading a key file), each returning 0 or -1 with the reason in err. */
#ifndef MQCHAT_PUSH_CRYPTO_H
#define MQCHAT_PUSH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* base64url without padding: out holds at least 4 * ((n + 2) / 3) + 1. */
void push_crypto__b64url(const unsigned char *in, size_t n, char *out);
/* Decode (padding and whitespace refused); returns the length, or -1 if
 * not base64url or longer than max. */
long push_crypto__unb64url(const char *in, unsigned char *out, size_t max);

/* A private key from a PEM file (EC P-256 "PRIVATE KEY"/"EC PRIVATE KEY",
 * as an APNs .p8 or the VAPID key; or RSA). 0 and *key (free with
 * EVP_PKEY_free), or -1. */
int push_crypto__load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen);
/* The same from PEM text in memory (a service account's "private_key"). */
int push_crypto__load_key_pem(const char *pem, size_t len, EVP_PKEY **key, char *err,
		size_t errlen);

/* A new P-256 key pair written to path as PKCS#8 PEM (mode 0600, written to
 * path.new and renamed); its public key, uncompressed (65 bytes), in
 * base64url into pub (at least 88 bytes). */
int push_crypto__vapid_generate(const char *path, char *pub, size_t publen, char *err,
		size_t errlen);
/* The public key of a P-256 private key, uncompressed, base64url. */
int push_crypto__public_b64(EVP_PKEY *key, char *pub, size_t publen);

/* RFC 8291: encrypt plain (n bytes) for the subscription whose public key
 * is p256dh (base64url, 65 bytes uncompressed) and auth secret auth
 * (base64url, 16 bytes). *out (malloc'd, *outlen bytes) is the whole
 * aes128gcm body: salt(16) | rs(4, 4096) | idlen(1, 65) | sender key(65) |
 * ciphertext with its tag, the plaintext padded with the 0x02 delimiter.
 * n is at most 3993 (one record of 4096). */
int push_crypto__webpush_encrypt(const char *p256dh, const char *auth, const void *plain,
		size_t n, unsigned char **out, size_t *outlen, char *err, size_t errlen);
/* The same with the salt and the sender's key pair given (tests: RFC 8291's
 * example, section 5, gives every byte). */
int push_crypto__webpush_encrypt_with(const char *p256dh, const char *auth, const void *plain,
		size_t n, const unsigned char salt[16], EVP_PKEY *sender, unsigned char **out,
		size_t *outlen, char *err, size_t errlen);

/* RFC 8292: the Authorization header value for a push service whose origin
 * is aud ("https://push.example.net"), "vapid t=<jwt>, k=<public key>",
 * with exp (seconds since the epoch, at most 24 h ahead) and sub (a
 * "mailto:" or "https:" contact). */
int push_crypto__vapid_header(EVP_PKEY *key, const char *aud, const char *sub, int64_t exp,
		char *out, size_t outlen, char *err, size_t errlen);

/* APNs: the provider token (a JWT) for key_id and team_id, issued at iat. */
int push_crypto__apns_jwt(EVP_PKEY *key, const char *key_id, const char *team_id, int64_t iat,
		char *out, size_t outlen, char *err, size_t errlen);

/* Google: the RS256 assertion for the jwt-bearer grant of a service
 * account: iss client_email, scope, aud token_uri, iat, exp = iat + 3600. */
int push_crypto__google_assertion(EVP_PKEY *key, const char *client_email, const char *scope,
		const char *token_uri, int64_t iat, char *out, size_t outlen, char *err, size_t errlen);

/* Webhooks: hex HMAC-SHA256 (65 bytes with the NUL into hex) of
 * "<timestamp>.<body>" with secret. */
void push_crypto__webhook_sign(const char *secret, int64_t timestamp, const void *body, size_t n,
		char hex[65]);

#endif
