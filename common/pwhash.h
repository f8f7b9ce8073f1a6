/* pwhash.h - password hashing: salted PBKDF2-HMAC-SHA512 (OpenSSL).
 *
 * Stored form, self-describing so the cost can be raised later per row:
 *   $pbkdf2-sha512$<iterations>$<salt, base64>$<hash, base64>
 * with a 16-byte random salt and a 64-byte derived key. */
#ifndef MQCHAT_PWHASH_H
#define MQCHAT_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

/* Default cost: chosen so one verification takes about 2 ms on the 2-core
 * reference machine (measured: 4,300 iterations took 2.0 ms here); the
 * plugin's verified-credential cache keeps reconnects cheap. */
#define PWHASH_DEFAULT_ITERATIONS 4300u
#define PWHASH_MIN_ITERATIONS 1000u
#define PWHASH_MAX_ITERATIONS 10000000u
/* Longest password accepted anywhere; longer ones are refused unhashed. */
#define PWHASH_MAX_PASSWORD 1024
/* Shortest password registration and `passwd` accept. */
#define PWHASH_MIN_PASSWORD 8
/* Room for the stored form, NUL included. */
#define PWHASH_STR_LEN 160

/* Hash password[0..pwlen) with a fresh random salt into out (NUL-terminated).
 * Returns MQC_OK, MQC_ERR_INVAL (bad iterations or password too long,
 * outlen too small) or MQC_ERR_CRYPTO. */
int pwhash__make(const char *password, size_t pwlen, unsigned iterations,
		char *out, size_t outlen);

/* Verify password[0..pwlen) against a stored form, comparing in constant
 * time. Returns MQC_OK and sets *ok; MQC_ERR_INVAL if stored is not a form
 * this code understands (then *ok is false); MQC_ERR_CRYPTO on OpenSSL failure. */
int pwhash__verify(const char *password, size_t pwlen, const char *stored, bool *ok);

/* The iteration count of a stored form, or 0 if it cannot be parsed. */
unsigned pwhash__iterations(const char *stored);

/* Secrets: random strings made by a program (the archiver's service
 * password), never chosen by a person. Guessing one is hopeless, so a slow
 * hash protects nothing and a fast one lets the broker verify a flood of
 * wrong ones at no cost (and so never throttle the right one):
 *   $sha256$<salt, base64>$<SHA-256(salt || secret), base64>
 * pwhash__verify understands both forms; the plugin accepts this one for
 * service accounts only. */
#define PWHASH_MIN_SECRET 32
/* MQC_ERR_INVAL if secret is shorter than PWHASH_MIN_SECRET or too long. */
int pwhash__make_secret(const char *secret, size_t len, char *out, size_t outlen);
/* True if stored is of the secret form. */
bool pwhash__is_secret(const char *stored);

#endif
