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

/* Verify password[0..pwlen) against a stored form (this file's three:
 * the one above, a secret's, and Mosquitto's two below), comparing in
 * constant time. Returns MQC_OK and sets *ok; MQC_ERR_INVAL if stored is
 * not a form this code understands (then *ok is false); MQC_ERR_CRYPTO on
 * OpenSSL failure. */
int pwhash__verify(const char *password, size_t pwlen, const char *stored, bool *ok);

/* The cost of a stored password form: the iteration count of
 * $pbkdf2-sha512$ and of Mosquitto's $7$, 1 for Mosquitto's $6$ (one
 * SHA-512); 0 if stored is not a password form this code verifies (a
 * secret's form is not one). The user store takes a row's hash only if
 * this is not 0. Mosquitto's forms are checked whole (salt and hash
 * decoded), $pbkdf2-sha512$ up to its count. */
unsigned pwhash__iterations(const char *stored);

/* Mosquitto's forms (a password_file made by mosquitto_passwd, the
 * dynamic-security plugin's JSON), imported with `mqchat-archiver import`
 * and verified here so their people keep their passwords:
 *   $6$<salt, base64>$<hash, base64>   SHA-512(password || salt), once
 *   $7$<iterations>$<salt, base64>$<hash, base64>
 *                                      PBKDF2-HMAC-SHA512 (Mosquitto's
 *                                      default: 101 iterations)
 * with a 12-byte salt (16 base64 characters) and a 64-byte hash (88 with
 * padding), as Mosquitto 2.0 writes and reads them. Both are far cheaper to
 * guess than our form: after a login with one, the plugin stores
 * pwhash__make's form of the same password (plugin/loader.c).
 * True if stored starts like one of them (well formed or not:
 * pwhash__verify decides); a prefix test, cheap enough for every login. */
bool pwhash__is_legacy(const char *stored);

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
