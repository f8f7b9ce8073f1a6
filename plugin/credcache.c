/* credcache.c - the verified-credential cache.
 *
 * For each user name it keeps HMAC-SHA256(key, name 0 password 0 pwhash)
 * of the last password that verified, under a key made at start. A
 * reconnect with the same password then costs one HMAC instead of PBKDF2,
 * and a changed stored hash (password change) no longer matches by itself.
 * A memory image reveals HMACs under a random key, never passwords. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"
#include "plugin.h"
#include "rand.h"

int credcache__init(struct credcache *c, size_t max_entries)
{
	memset(c, 0, sizeof(*c));
	c->max_entries = max_entries;
	if(rand__bytes(c->key, sizeof(c->key)) != MQC_OK) return MQC_ERR_CRYPTO;
	return MQC_OK;
}

/* The digest of (name, password, pwhash); false on bad input or failure. */
static bool digest(const struct credcache *c, const char *name, size_t namelen,
		const char *password, size_t pwlen, const char *pwhash,
		unsigned char out[CREDCACHE_DIGEST_LEN])
{
	unsigned char buf[NAME_MAX_LEN + 1 + PWHASH_MAX_PASSWORD + 1 + PWHASH_STR_LEN];
	unsigned int outlen = 0;
	size_t hlen, n = 0;
	bool ok;

	if(name == NULL || password == NULL || pwhash == NULL) return false;
	hlen = strlen(pwhash);
	if(namelen > NAME_MAX_LEN || pwlen > PWHASH_MAX_PASSWORD || hlen >= PWHASH_STR_LEN) return false;
	memcpy(buf, name, namelen);
	n += namelen;
	buf[n++] = 0;
	memcpy(buf + n, password, pwlen);
	n += pwlen;
	buf[n++] = 0;
	memcpy(buf + n, pwhash, hlen);
	n += hlen;
	ok = HMAC(EVP_sha256(), c->key, (int)sizeof(c->key), buf, n, out, &outlen) != NULL
		&& outlen == CREDCACHE_DIGEST_LEN;
	OPENSSL_cleanse(buf, n);
	return ok;
}

/* name's entry or NULL. *len gets name's length, or 0 for a name the
 * cache never holds (NULL, empty, longer than NAME_MAX_LEN). */
static struct cred_entry *find(struct credcache *c, const char *name, size_t *len)
{
	struct cred_entry *e = NULL;

	*len = name ? strnlen(name, NAME_MAX_LEN + 1) : 0;
	if(*len > NAME_MAX_LEN) *len = 0;
	if(*len == 0) return NULL;
	HASH_FIND(hh, c->head, name, *len, e);
	return e;
}

/* Unlink e, wipe its digest and free it. */
static void drop(struct credcache *c, struct cred_entry *e)
{
	HASH_DELETE(hh, c->head, e);
	OPENSSL_cleanse(e->digest, sizeof(e->digest));
	free(e);
	c->count--;
}

bool credcache__check(struct credcache *c, const char *name, const char *password,
		size_t pwlen, const char *pwhash)
{
	unsigned char d[CREDCACHE_DIGEST_LEN];
	struct cred_entry *e;
	size_t len;
	bool hit;

	e = find(c, name, &len);
	if(e == NULL) return false;
	if(!digest(c, name, len, password, pwlen, pwhash, d)) return false;
	hit = CRYPTO_memcmp(d, e->digest, sizeof(d)) == 0;
	OPENSSL_cleanse(d, sizeof(d));
	return hit;
}

void credcache__store(struct credcache *c, const char *name, const char *password,
		size_t pwlen, const char *pwhash)
{
	unsigned char d[CREDCACHE_DIGEST_LEN];
	struct cred_entry *e;
	size_t len;
	bool oom = false;

	e = find(c, name, &len);
	if(len == 0 || !digest(c, name, len, password, pwlen, pwhash, d)) return;
	if(e){
		/* Move to the young end of the eviction order. */
		HASH_DELETE(hh, c->head, e);
		c->count--;
	}else{
		if(c->count >= c->max_entries && c->head){
			drop(c, c->head);   /* the oldest */
		}
		e = calloc(1, sizeof(*e));
		if(e == NULL) return;
		memcpy(e->name, name, len);
		e->len = (uint8_t)len;
	}
	memcpy(e->digest, d, sizeof(d));
	OPENSSL_cleanse(d, sizeof(d));
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) do{ oom = true; }while(0)
	HASH_ADD_KEYPTR(hh, c->head, e->name, e->len, e);
	if(oom){
		free(e);
		return;
	}
	c->count++;
}

void credcache__forget(struct credcache *c, const char *name)
{
	size_t len;
	struct cred_entry *e = find(c, name, &len);

	if(e) drop(c, e);
}

void credcache__cleanup(struct credcache *c)
{
	struct cred_entry *e, *tmp;

	HASH_ITER(hh, c->head, e, tmp){
		drop(c, e);
	}
	OPENSSL_cleanse(c->key, sizeof(c->key));
}
