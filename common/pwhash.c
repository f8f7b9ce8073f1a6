/* pwhash.c - salted PBKDF2-HMAC-SHA512 password hashing, and the verification
 * of Mosquitto's $6$ and $7$ forms (see pwhash.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "pwhash.h"
#include "rand.h"

#define PREFIX "$pbkdf2-sha512$"
#define SALT_LEN 16
#define KEY_LEN 64

/* base64 lengths with padding: 4 * ceil(n / 3). */
#define B64_LEN(n) (4 * (((n) + 2) / 3))

static int derive(const char *password, size_t pwlen, const unsigned char *salt,
		size_t saltlen, unsigned iterations, unsigned char key[KEY_LEN])
{
	if(PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)saltlen, (int)iterations,
				EVP_sha512(), KEY_LEN, key) != 1){
		return MQC_ERR_CRYPTO;
	}
	return MQC_OK;
}

int pwhash__make(const char *password, size_t pwlen, unsigned iterations,
		char *out, size_t outlen)
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char salt64[B64_LEN(SALT_LEN) + 1], key64[B64_LEN(KEY_LEN) + 1];
	int n, rc;

	if(password == NULL || pwlen > PWHASH_MAX_PASSWORD
			|| iterations < PWHASH_MIN_ITERATIONS || iterations > PWHASH_MAX_ITERATIONS){
		return MQC_ERR_INVAL;
	}
	if(rand__bytes(salt, SALT_LEN) != MQC_OK) return MQC_ERR_CRYPTO;
	rc = derive(password, pwlen, salt, SALT_LEN, iterations, key);
	if(rc) return rc;

	EVP_EncodeBlock((unsigned char *)salt64, salt, SALT_LEN);
	EVP_EncodeBlock((unsigned char *)key64, key, KEY_LEN);
	OPENSSL_cleanse(key, sizeof(key));

	n = snprintf(out, outlen, PREFIX "%u$%s$%s", iterations, salt64, key64);
	if(n < 0 || (size_t)n >= outlen) return MQC_ERR_INVAL;
	return MQC_OK;
}

/* Decode exactly want bytes of base64 from s[0..len) into out. */
static bool decode_exact(const char *s, size_t len, unsigned char *out, size_t want)
{
	unsigned char buf[B64_LEN(KEY_LEN) + 4];
	int n;
	size_t pad = 0;

	if(len != B64_LEN(want) || len > sizeof(buf)) return false;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if(n < 0) return false;
	/* EVP_DecodeBlock counts padding bytes as output: take them off. */
	if(len >= 1 && s[len-1] == '=') pad++;
	if(len >= 2 && s[len-2] == '=') pad++;
	if((size_t)n - pad != want) return false;
	memcpy(out, buf, want);
	return true;
}

#define SECRET_PREFIX "$sha256$"
#define SECRET_KEY_LEN 32

static int secret_digest(const char *secret, size_t len, const unsigned char salt[SALT_LEN],
		unsigned char out[SECRET_KEY_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
		&& EVP_DigestUpdate(ctx, salt, SALT_LEN) == 1
		&& EVP_DigestUpdate(ctx, secret, len) == 1
		&& EVP_DigestFinal_ex(ctx, out, NULL) == 1;

	EVP_MD_CTX_free(ctx);
	return ok ? MQC_OK : MQC_ERR_CRYPTO;
}

int pwhash__make_secret(const char *secret, size_t len, char *out, size_t outlen)
{
	unsigned char salt[SALT_LEN], key[SECRET_KEY_LEN];
	char salt64[B64_LEN(SALT_LEN) + 1], key64[B64_LEN(SECRET_KEY_LEN) + 1];
	int n, rc;

	if(secret == NULL || len < PWHASH_MIN_SECRET || len > PWHASH_MAX_PASSWORD) return MQC_ERR_INVAL;
	if(rand__bytes(salt, SALT_LEN) != MQC_OK) return MQC_ERR_CRYPTO;
	rc = secret_digest(secret, len, salt, key);
	if(rc) return rc;
	EVP_EncodeBlock((unsigned char *)salt64, salt, SALT_LEN);
	EVP_EncodeBlock((unsigned char *)key64, key, SECRET_KEY_LEN);
	n = snprintf(out, outlen, SECRET_PREFIX "%s$%s", salt64, key64);
	if(n < 0 || (size_t)n >= outlen) return MQC_ERR_INVAL;
	return MQC_OK;
}

bool pwhash__is_secret(const char *stored)
{
	return stored != NULL && strncmp(stored, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0;
}

static int verify_secret(const char *secret, size_t len, const char *stored, bool *ok)
{
	const char *salt64 = stored + strlen(SECRET_PREFIX), *dollar = strchr(salt64, '$');
	unsigned char salt[SALT_LEN], want[SECRET_KEY_LEN], got[SECRET_KEY_LEN];
	int rc;

	if(dollar == NULL || !decode_exact(salt64, (size_t)(dollar - salt64), salt, SALT_LEN)
			|| !decode_exact(dollar + 1, strlen(dollar + 1), want, SECRET_KEY_LEN)){
		return MQC_ERR_INVAL;
	}
	if(secret == NULL || len > PWHASH_MAX_PASSWORD) return MQC_OK;
	rc = secret_digest(secret, len, salt, got);
	if(rc) return rc;
	*ok = CRYPTO_memcmp(got, want, SECRET_KEY_LEN) == 0;
	return MQC_OK;
}

/* The iteration count of a $pbkdf2-sha512$ form, or 0 if its head does not parse. */
static unsigned pbkdf2_iterations(const char *stored)
{
	const char *p;
	char *end;
	unsigned long it;

	if(stored == NULL || strncmp(stored, PREFIX, strlen(PREFIX)) != 0) return 0;
	p = stored + strlen(PREFIX);
	if(*p < '1' || *p > '9') return 0;
	it = strtoul(p, &end, 10);
	if(*end != '$' || it < PWHASH_MIN_ITERATIONS || it > PWHASH_MAX_ITERATIONS) return 0;
	return (unsigned)it;
}

/* ---- Mosquitto's forms (pwhash.h) ---- */

#define MOSQ_SHA512_PREFIX "$6$"
#define MOSQ_PBKDF2_PREFIX "$7$"
#define MOSQ_SALT_LEN 12
#define MOSQ_HASH_LEN 64

struct mosq_form {
	bool pbkdf2;                    /* $7$; false: $6$ */
	unsigned iterations;            /* $7$ only */
	unsigned char salt[MOSQ_SALT_LEN];
	unsigned char hash[MOSQ_HASH_LEN];
};

bool pwhash__is_legacy(const char *stored)
{
	return stored != NULL && (strncmp(stored, MOSQ_SHA512_PREFIX, 3) == 0
			|| strncmp(stored, MOSQ_PBKDF2_PREFIX, 3) == 0);
}

/* Parse a whole $6$ or $7$ form into f; false if it is not one. The count
 * is 1..PWHASH_MAX_ITERATIONS in plain decimal (no sign, no leading zero),
 * salt and hash exactly Mosquitto's sizes, nothing after the hash. */
static bool mosq_parse(const char *stored, struct mosq_form *f)
{
	const char *p, *dollar;
	char *end;
	unsigned long it;

	if(!pwhash__is_legacy(stored)) return false;
	f->pbkdf2 = stored[1] == '7';
	f->iterations = 1;
	p = stored + 3;
	if(f->pbkdf2){
		if(*p < '1' || *p > '9') return false;
		it = strtoul(p, &end, 10);
		if(*end != '$' || it > PWHASH_MAX_ITERATIONS) return false;
		f->iterations = (unsigned)it;
		p = end + 1;
	}
	dollar = strchr(p, '$');
	return dollar != NULL
		&& decode_exact(p, (size_t)(dollar - p), f->salt, MOSQ_SALT_LEN)
		&& decode_exact(dollar + 1, strlen(dollar + 1), f->hash, MOSQ_HASH_LEN);
}

/* Verify password against a parsed Mosquitto form (constant-time compare). */
static int mosq_verify(const char *password, size_t pwlen, const struct mosq_form *f, bool *ok)
{
	unsigned char got[MOSQ_HASH_LEN];
	EVP_MD_CTX *ctx;
	int good;

	if(f->pbkdf2){
		good = PKCS5_PBKDF2_HMAC(password, (int)pwlen, f->salt, MOSQ_SALT_LEN, (int)f->iterations,
				EVP_sha512(), MOSQ_HASH_LEN, got) == 1;
	}else{
		ctx = EVP_MD_CTX_new();
		good = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1
			&& EVP_DigestUpdate(ctx, password, pwlen) == 1
			&& EVP_DigestUpdate(ctx, f->salt, MOSQ_SALT_LEN) == 1
			&& EVP_DigestFinal_ex(ctx, got, NULL) == 1;
		EVP_MD_CTX_free(ctx);
	}
	if(good) *ok = CRYPTO_memcmp(got, f->hash, MOSQ_HASH_LEN) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return good ? MQC_OK : MQC_ERR_CRYPTO;
}

unsigned pwhash__iterations(const char *stored)
{
	struct mosq_form f;

	if(pwhash__is_legacy(stored)) return mosq_parse(stored, &f) ? f.iterations : 0;
	return pbkdf2_iterations(stored);
}

int pwhash__verify(const char *password, size_t pwlen, const char *stored, bool *ok)
{
	unsigned iterations;
	const char *salt64, *key64, *dollar;
	unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
	int rc;

	*ok = false;
	if(pwhash__is_secret(stored)) return verify_secret(password, pwlen, stored, ok);
	if(pwhash__is_legacy(stored)){
		struct mosq_form f;

		if(!mosq_parse(stored, &f)) return MQC_ERR_INVAL;
		if(password == NULL || pwlen > PWHASH_MAX_PASSWORD) return MQC_OK;
		return mosq_verify(password, pwlen, &f, ok);
	}
	iterations = pbkdf2_iterations(stored);
	if(iterations == 0) return MQC_ERR_INVAL;
	salt64 = strchr(stored + strlen(PREFIX), '$') + 1;
	dollar = strchr(salt64, '$');
	if(dollar == NULL) return MQC_ERR_INVAL;
	key64 = dollar + 1;
	if(!decode_exact(salt64, (size_t)(dollar - salt64), salt, SALT_LEN)
			|| !decode_exact(key64, strlen(key64), want, KEY_LEN)){
		return MQC_ERR_INVAL;
	}
	if(password == NULL || pwlen > PWHASH_MAX_PASSWORD) return MQC_OK;

	rc = derive(password, pwlen, salt, SALT_LEN, iterations, got);
	if(rc) return rc;
	*ok = (CRYPTO_memcmp(got, want, KEY_LEN) == 0);
	OPENSSL_cleanse(got, sizeof(got));
	return MQC_OK;
}
