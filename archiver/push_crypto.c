/* push_crypto.c - the cryptography of push notifications on OpenSSL 3's EVP
 * APIs: see push_crypto.h. Every primitive is OpenSSL's (ECDH by
 * EVP_PKEY_derive, HKDF by the EVP_PKEY HKDF method, AES-128-GCM, ECDSA and
 * RSA by EVP_DigestSign, HMAC by EVP_MAC); this file only lays out the bytes
 * the RFCs ask for. Nothing here keeps state: every function may run on any
 * thread. OpenSSL's per-thread error queue is left empty on return. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "err.h"
#include "push_crypto.h"
#include "rand.h"

#define P256_POINT_LEN 65       /* 0x04 | x(32) | y(32) */
#define AUTH_LEN 16             /* RFC 8291 section 3.2 */
#define SALT_LEN 16             /* RFC 8188 section 2.1 */
#define RECORD_SIZE 4096
#define HEADER_LEN (SALT_LEN + 4 + 1 + P256_POINT_LEN)
#define TAG_LEN 16
#define CEK_LEN 16
#define NONCE_LEN 12
#define PLAIN_MAX (RECORD_SIZE - HEADER_LEN - 1 - TAG_LEN)  /* 3993: the body fits 4096 */
#define KEY_FILE_MAX (1 << 20)
#define B64_LEN(n) ((4 * (n) + 2) / 3)  /* unpadded, without the NUL */

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Set err and return -1, emptying OpenSSL's error queue (whatever failed
 * left its reasons there). */
static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if(err && errlen){
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return -1;
}

/* As fail, with OpenSSL's reason for the last error appended. */
static int fail_ssl(char *err, size_t errlen, const char *what)
{
	const char *why = ERR_reason_error_string(ERR_peek_last_error());

	return fail(err, errlen, "%s%s%s", what, why ? ": " : "", why ? why : "");
}

void push_crypto__b64url(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned long v;

	for(i = 0; i + 3 <= n; i += 3){
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
		out[o++] = b64url_chars[v & 63];
	}
	if(n - i == 1){
		v = (unsigned long)in[i] << 16;
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
	}else if(n - i == 2){
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
	}
	out[o] = '\0';
}

static int b64url_value(char c)
{
	if(c >= 'A' && c <= 'Z') return c - 'A';
	if(c >= 'a' && c <= 'z') return c - 'a' + 26;
	if(c >= '0' && c <= '9') return c - '0' + 52;
	if(c == '-') return 62;
	if(c == '_') return 63;
	return -1;
}

/* Strict: only the 64 characters, no padding, no whitespace, and the
 * unused low bits of the last character zero (one text per byte string,
 * so a key cannot be registered twice under two spellings). */
long push_crypto__unb64url(const char *in, unsigned char *out, size_t max)
{
	size_t len, i, o = 0;
	unsigned long acc = 0;
	int bits = 0, v;

	if(!in) return -1;
	len = strlen(in);
	if(len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > max) return -1;
	for(i = 0; i < len; i++){
		if((v = b64url_value(in[i])) < 0) return -1;
		acc = (acc << 6 | (unsigned long)v) & 0xffffff;
		bits += 6;
		if(bits >= 8){
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if(acc & ((1ul << bits) - 1)) return -1;
	return (long)o;
}

/* Whether key is an EC key on P-256 (named curve). */
static int is_p256(EVP_PKEY *key)
{
	char group[64];
	size_t len = 0;

	return key && EVP_PKEY_is_a(key, "EC")
		&& EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
			sizeof(group), &len)
		&& (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
}

/* "EC secp384r1", "ED25519", ...: what a refused key is, for the message. */
static void key_kind(EVP_PKEY *key, char *buf, size_t len)
{
	char group[64] = "";
	size_t glen = 0;
	const char *type = EVP_PKEY_get0_type_name(key);

	if(EVP_PKEY_is_a(key, "EC"))
		EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
			sizeof(group), &glen);
	snprintf(buf, len, "%s%s%s", type ? type : "of an unknown type", group[0] ? " " : "", group);
	ERR_clear_error();
}

/* The public point of a P-256 key, uncompressed, whatever form the key was
 * read in. 0 or -1. */
static int public_point(EVP_PKEY *key, unsigned char pt[P256_POINT_LEN])
{
	BIGNUM *x = NULL, *y = NULL;
	int ok = is_p256(key)
		&& EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x)
		&& EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y)
		&& BN_bn2binpad(x, pt + 1, 32) == 32 && BN_bn2binpad(y, pt + 33, 32) == 32;

	pt[0] = 0x04;
	BN_free(x);
	BN_free(y);
	if(!ok) ERR_clear_error();
	return ok ? 0 : -1;
}

/* A passphrase callback that has none: an encrypted key file fails instead
 * of OpenSSL asking on the terminal. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int push_crypto__load_key_pem(const char *pem, size_t len, EVP_PKEY **key, char *err,
		size_t errlen)
{
	BIO *bio;
	EVP_PKEY *k;
	char kind[96];

	*key = NULL;
	if(!pem || len == 0) return fail(err, errlen, "no key (empty text)");
	if(len > INT_MAX) return fail(err, errlen, "key text too long");
	if(!(bio = BIO_new_mem_buf(pem, (int)len))) return fail_ssl(err, errlen, "out of memory");
	k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL);
	BIO_free(bio);
	if(!k)
		return fail_ssl(err, errlen, "no unencrypted PEM private key (EC P-256 or RSA) found");
	if(!is_p256(k) && !EVP_PKEY_is_a(k, "RSA")){
		key_kind(k, kind, sizeof(kind));
		EVP_PKEY_free(k);
		return fail(err, errlen, "the key is %s, not EC P-256 or RSA", kind);
	}
	*key = k;
	ERR_clear_error();
	return 0;
}

/* The whole of a small file, NUL-terminated, into *buf (malloc'd). */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f;
	char *b;
	size_t n;

	*buf = NULL;
	if(!(f = fopen(path, "rb"))) return fail(err, errlen, "%s: %s", path, strerror(errno));
	if(!(b = malloc(KEY_FILE_MAX + 1))){
		fclose(f);
		return fail(err, errlen, "%s: out of memory", path);
	}
	n = fread(b, 1, KEY_FILE_MAX + 1, f);
	if(ferror(f) || n > KEY_FILE_MAX){
		int e = ferror(f) ? errno : 0;

		fclose(f);
		OPENSSL_cleanse(b, n);
		free(b);
		return e ? fail(err, errlen, "%s: %s", path, strerror(e))
			: fail(err, errlen, "%s: over %d bytes, not a key file", path, KEY_FILE_MAX);
	}
	fclose(f);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int push_crypto__load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	char *text, why[200];
	size_t len = 0;
	int rc;

	*key = NULL;
	if(!path || !*path) return fail(err, errlen, "no key file named");
	if(read_file(path, &text, &len, err, errlen)) return -1;
	rc = push_crypto__load_key_pem(text, len, key, why, sizeof(why));
	OPENSSL_cleanse(text, len);
	free(text);
	if(rc) return fail(err, errlen, "%s: %s", path, why);
	return 0;
}

int push_crypto__public_b64(EVP_PKEY *key, char *pub, size_t publen)
{
	unsigned char pt[P256_POINT_LEN];

	if(publen < B64_LEN(P256_POINT_LEN) + 1 || public_point(key, pt)) return -1;
	push_crypto__b64url(pt, sizeof(pt), pub);
	return 0;
}

/* Write len bytes of data to fd, through short writes and EINTR. */
static int write_all(int fd, const char *data, size_t len)
{
	ssize_t w;

	while(len){
		w = write(fd, data, len);
		if(w < 0 && errno == EINTR) continue;
		if(w <= 0) return -1;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

int push_crypto__vapid_generate(const char *path, char *pub, size_t publen, char *err,
		size_t errlen)
{
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	char *tmp = NULL, *pem;
	long pemlen;
	int fd = -1, created = 0, rc = -1;

	if(!path || !*path) return fail(err, errlen, "no key file named");
	if(publen < B64_LEN(P256_POINT_LEN) + 1)
		return fail(err, errlen, "public key buffer too small");
	if(!(tmp = malloc(strlen(path) + sizeof(".new")))) return fail(err, errlen, "out of memory");
	sprintf(tmp, "%s.new", path);

	if(!(key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))){
		fail_ssl(err, errlen, "cannot make a P-256 key");
		goto fail;
	}
	/* PEM_write_bio_PrivateKey writes PKCS#8 ("PRIVATE KEY"), unencrypted. */
	if(!(bio = BIO_new(BIO_s_secmem())) || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
			NULL, NULL) || (pemlen = BIO_get_mem_data(bio, &pem)) <= 0){
		fail_ssl(err, errlen, "cannot encode the key");
		goto fail;
	}
	if(push_crypto__public_b64(key, pub, publen)){
		fail(err, errlen, "cannot export the public key");
		goto fail;
	}
	/* Whatever mode an old path.new had, and whatever the umask: 0600. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	created = fd >= 0;
	if(fd < 0 || fchmod(fd, 0600) || write_all(fd, pem, (size_t)pemlen) || fsync(fd)){
		fail(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if(close(fd)){
		fd = -1;
		fail(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if(rename(tmp, path)){
		fail(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	if(fd >= 0) close(fd);
	if(rc && created) unlink(tmp);
	if(rc && pub && publen) pub[0] = '\0';
	BIO_free(bio);  /* a secure-heap BIO: cleared as it is freed */
	EVP_PKEY_free(key);
	free(tmp);
	return rc;
}

/* HKDF-SHA-256 (RFC 5869), extract then expand, into out (outlen bytes). */
static int hkdf(const unsigned char *salt, size_t saltlen, const unsigned char *ikm,
		size_t ikmlen, const unsigned char *info, size_t infolen, unsigned char *out,
		size_t outlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "HKDF", NULL);
	size_t len = outlen;
	int ok = ctx && EVP_PKEY_derive_init(ctx) > 0
		&& EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0
		&& EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)saltlen) > 0
		&& EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikmlen) > 0
		&& EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)infolen) > 0
		&& EVP_PKEY_derive(ctx, out, &len) > 0 && len == outlen;

	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* A P-256 public key from its uncompressed point. EVP_PKEY_fromdata
 * refuses a point that is not on the curve. */
static EVP_PKEY *p256_public(unsigned char pt[P256_POINT_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, P256_POINT_LEN),
		OSSL_PARAM_construct_end(),
	};

	if(!ctx || EVP_PKEY_fromdata_init(ctx) <= 0
			|| EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* ECDH: the 32-byte shared secret of our private key and peer's public
 * key (validated again by EVP_PKEY_derive_set_peer_ex). */
static int ecdh(EVP_PKEY *ours, EVP_PKEY *peer, unsigned char secret[32])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
	size_t len = 32;
	int ok = ctx && EVP_PKEY_derive_init(ctx) > 0
		&& EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) > 0
		&& EVP_PKEY_derive(ctx, secret, &len) > 0 && len == 32;

	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* AES-128-GCM of plain (n bytes) then the one byte last, into out (n + 1
 * bytes) and its tag after them. */
static int aes128gcm(const unsigned char cek[CEK_LEN], const unsigned char nonce[NONCE_LEN],
		const void *plain, size_t n, unsigned char last, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0, l3 = 0;
	int ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL)
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL)
		&& EVP_EncryptInit_ex(ctx, NULL, NULL, cek, nonce)
		&& (n == 0 || EVP_EncryptUpdate(ctx, out, &l1, plain, (int)n))
		&& EVP_EncryptUpdate(ctx, out + l1, &l2, &last, 1)
		&& EVP_EncryptFinal_ex(ctx, out + l1 + l2, &l3)
		&& (size_t)(l1 + l2 + l3) == n + 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + n + 1);

	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int push_crypto__webpush_encrypt_with(const char *p256dh, const char *auth, const void *plain,
		size_t n, const unsigned char salt[16], EVP_PKEY *sender, unsigned char **out,
		size_t *outlen, char *err, size_t errlen)
{
	static const char key_label[] = "WebPush: info";          /* with its NUL */
	static const char cek_label[] = "Content-Encoding: aes128gcm";
	static const char nonce_label[] = "Content-Encoding: nonce";
	unsigned char ua_pub[P256_POINT_LEN + 1], as_pub[P256_POINT_LEN], secret[AUTH_LEN + 1];
	unsigned char shared[32], ikm[32], cek[CEK_LEN], nonce[NONCE_LEN];
	unsigned char key_info[sizeof(key_label) + 2 * P256_POINT_LEN], *body = NULL;
	EVP_PKEY *peer = NULL;
	size_t len;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if(!plain && n) return fail(err, errlen, "no message");
	if(n > PLAIN_MAX) return fail(err, errlen, "message of %zu bytes, over %d", n, PLAIN_MAX);
	if(push_crypto__unb64url(p256dh, ua_pub, sizeof(ua_pub)) != P256_POINT_LEN
			|| ua_pub[0] != 0x04)
		return fail(err, errlen, "p256dh is not base64url of a 65-byte uncompressed point");
	if(push_crypto__unb64url(auth, secret, sizeof(secret)) != AUTH_LEN)
		return fail(err, errlen, "auth is not base64url of 16 bytes");
	if(public_point(sender, as_pub)) return fail(err, errlen, "sender key is not EC P-256");
	if(!(peer = p256_public(ua_pub)))
		return fail(err, errlen, "p256dh is not a point on P-256");

	/* RFC 8291 section 3.3: IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00
	 * ua_public as_public, 32); section 3.4 (RFC 8188 section 2.2): CEK and
	 * nonce from HKDF(salt, IKM, "Content-Encoding: aes128gcm|nonce" 0x00). */
	memcpy(key_info, key_label, sizeof(key_label));
	memcpy(key_info + sizeof(key_label), ua_pub, P256_POINT_LEN);
	memcpy(key_info + sizeof(key_label) + P256_POINT_LEN, as_pub, P256_POINT_LEN);
	if(ecdh(sender, peer, shared)){
		fail_ssl(err, errlen, "ECDH failed");
		goto fail;
	}
	if(hkdf(secret, AUTH_LEN, shared, sizeof(shared), key_info, sizeof(key_info), ikm,
				sizeof(ikm))
			|| hkdf(salt, SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)cek_label,
				sizeof(cek_label), cek, sizeof(cek))
			|| hkdf(salt, SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)nonce_label,
				sizeof(nonce_label), nonce, sizeof(nonce))){
		fail_ssl(err, errlen, "HKDF failed");
		goto fail;
	}

	/* RFC 8188 section 2.1: salt | rs (uint32, big-endian) | idlen | keyid,
	 * then the one record: the text and the last record's delimiter 0x02,
	 * no further padding. */
	len = HEADER_LEN + n + 1 + TAG_LEN;
	if(!(body = malloc(len))){
		fail(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(body, salt, SALT_LEN);
	body[SALT_LEN] = (unsigned char)(RECORD_SIZE >> 24);
	body[SALT_LEN + 1] = (unsigned char)(RECORD_SIZE >> 16 & 0xff);
	body[SALT_LEN + 2] = (unsigned char)(RECORD_SIZE >> 8 & 0xff);
	body[SALT_LEN + 3] = (unsigned char)(RECORD_SIZE & 0xff);
	body[SALT_LEN + 4] = P256_POINT_LEN;
	memcpy(body + SALT_LEN + 5, as_pub, P256_POINT_LEN);
	if(aes128gcm(cek, nonce, plain, n, 0x02, body + HEADER_LEN)){
		fail_ssl(err, errlen, "AES-128-GCM failed");
		goto fail;
	}
	*out = body;
	*outlen = len;
	body = NULL;
	rc = 0;
fail:
	free(body);
	EVP_PKEY_free(peer);
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(ikm, sizeof(ikm));
	OPENSSL_cleanse(cek, sizeof(cek));
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

int push_crypto__webpush_encrypt(const char *p256dh, const char *auth, const void *plain,
		size_t n, unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	unsigned char salt[SALT_LEN];
	EVP_PKEY *sender;
	int rc;

	*out = NULL;
	*outlen = 0;
	if(rand__bytes(salt, sizeof(salt)) != MQC_OK)
		return fail_ssl(err, errlen, "no random bytes for the salt");
	/* A new sender key pair for every message (RFC 8291 section 2). */
	if(!(sender = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
		return fail_ssl(err, errlen, "cannot make a P-256 key");
	rc = push_crypto__webpush_encrypt_with(p256dh, auth, plain, n, salt, sender, out, outlen,
		err, errlen);
	EVP_PKEY_free(sender);
	return rc;
}

/* JOSE's ES256 signature from OpenSSL's DER ECDSA-Sig-Value: r and s, each
 * as 32 big-endian bytes (RFC 7518 section 3.4). */
static int der_to_jose(const unsigned char *der, size_t len, unsigned char rs[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;
	int ok;

	if(!sig) return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

/* header.claims.signature into out: ES256 with a P-256 key when es256, else
 * RS256 with an RSA key. header and claims are borrowed. */
static int sign_jwt(EVP_PKEY *key, int es256, json_t *header, json_t *claims, char *out,
		size_t outlen, char *err, size_t errlen)
{
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	char *h = NULL, *c = NULL, *input = NULL;
	unsigned char *sig = NULL, rs[64];
	size_t hl, cl, il, siglen = 0, b64len;
	EVP_MD_CTX *md = NULL;
	int rc = -1;

	if(out && outlen) out[0] = '\0';
	if(!key) return fail(err, errlen, "no key");
	if(es256 ? !is_p256(key) : !EVP_PKEY_is_a(key, "RSA"))
		return fail(err, errlen, "%s needs an %s key", es256 ? "ES256" : "RS256",
			es256 ? "EC P-256" : "RSA");
	if(!header || !claims){
		/* json_pack's NULL: a missing string or one that is not UTF-8. */
		return fail(err, errlen, "a claim is missing or not UTF-8");
	}
	if(!(h = json_dumps(header, flags)) || !(c = json_dumps(claims, flags))){
		fail(err, errlen, "out of memory");
		goto fail;
	}
	hl = B64_LEN(strlen(h));
	cl = B64_LEN(strlen(c));
	if(!(input = malloc(hl + 1 + cl + 1))){
		fail(err, errlen, "out of memory");
		goto fail;
	}
	push_crypto__b64url((const unsigned char *)h, strlen(h), input);
	il = strlen(input);
	input[il++] = '.';
	push_crypto__b64url((const unsigned char *)c, strlen(c), input + il);
	il += strlen(input + il);

	if(!(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0
			|| EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, il) <= 0
			|| !(sig = malloc(siglen))
			|| EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, il) <= 0){
		fail_ssl(err, errlen, "signing failed");
		goto fail;
	}
	if(es256){
		if(der_to_jose(sig, siglen, rs)){
			fail_ssl(err, errlen, "bad ECDSA signature");
			goto fail;
		}
		memcpy(sig, rs, sizeof(rs));  /* DER is longer than 64 bytes */
		siglen = sizeof(rs);
	}
	b64len = B64_LEN(siglen);
	if(il + 1 + b64len + 1 > outlen){
		fail(err, errlen, "token of %zu bytes does not fit %zu", il + 1 + b64len, outlen);
		goto fail;
	}
	memcpy(out, input, il);
	out[il] = '.';
	push_crypto__b64url(sig, siglen, out + il + 1);
	rc = 0;
fail:
	EVP_MD_CTX_free(md);
	free(sig);
	free(input);
	free(h);
	free(c);
	ERR_clear_error();
	return rc;
}

int push_crypto__vapid_header(EVP_PKEY *key, const char *aud, const char *sub, int64_t exp,
		char *out, size_t outlen, char *err, size_t errlen)
{
	json_t *header, *claims;
	char pub[B64_LEN(P256_POINT_LEN) + 1];
	static const char prefix[] = "vapid t=";
	size_t jl;
	int rc;

	if(out && outlen) out[0] = '\0';
	if(!aud || !*aud || !sub || !*sub) return fail(err, errlen, "VAPID needs aud and sub");
	if(push_crypto__public_b64(key, pub, sizeof(pub)))
		return fail(err, errlen, "ES256 needs an EC P-256 key");
	if(outlen < sizeof(prefix)) return fail(err, errlen, "header buffer too small");
	header = json_pack("{s:s, s:s}", "typ", "JWT", "alg", "ES256");
	claims = json_pack("{s:s, s:I, s:s}", "aud", aud, "exp", (json_int_t)exp, "sub", sub);
	memcpy(out, prefix, sizeof(prefix));
	rc = sign_jwt(key, 1, header, claims, out + sizeof(prefix) - 1,
		outlen - (sizeof(prefix) - 1), err, errlen);
	json_decref(header);
	json_decref(claims);
	if(rc){
		out[0] = '\0';
		return rc;
	}
	jl = strlen(out);
	if(jl + strlen(", k=") + strlen(pub) + 1 > outlen){
		out[0] = '\0';
		return fail(err, errlen, "header does not fit %zu bytes", outlen);
	}
	sprintf(out + jl, ", k=%s", pub);
	return 0;
}

int push_crypto__apns_jwt(EVP_PKEY *key, const char *key_id, const char *team_id, int64_t iat,
		char *out, size_t outlen, char *err, size_t errlen)
{
	json_t *header, *claims;
	int rc;

	if(out && outlen) out[0] = '\0';
	if(!key_id || !*key_id || !team_id || !*team_id)
		return fail(err, errlen, "APNs needs a key id and a team id");
	header = json_pack("{s:s, s:s}", "alg", "ES256", "kid", key_id);
	claims = json_pack("{s:s, s:I}", "iss", team_id, "iat", (json_int_t)iat);
	rc = sign_jwt(key, 1, header, claims, out, outlen, err, errlen);
	json_decref(header);
	json_decref(claims);
	return rc;
}

int push_crypto__google_assertion(EVP_PKEY *key, const char *client_email, const char *scope,
		const char *token_uri, int64_t iat, char *out, size_t outlen, char *err, size_t errlen)
{
	json_t *header, *claims;
	int rc;

	if(out && outlen) out[0] = '\0';
	if(!client_email || !*client_email || !scope || !*scope || !token_uri || !*token_uri)
		return fail(err, errlen, "the assertion needs client_email, scope and token_uri");
	header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", client_email, "scope", scope,
		"aud", token_uri, "iat", (json_int_t)iat, "exp", (json_int_t)(iat + 3600));
	rc = sign_jwt(key, 0, header, claims, out, outlen, err, errlen);
	json_decref(header);
	json_decref(claims);
	return rc;
}

/* The key is the secret's text as given (the base64url string handed out at
 * registration, not its decoded bytes). On an OpenSSL failure hex is ""
 * (no signature matches it). */
void push_crypto__webhook_sign(const char *secret, int64_t timestamp, const void *body, size_t n,
		char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	unsigned char md[32];
	char ts[24];
	size_t len = 0, i;
	int tl = snprintf(ts, sizeof(ts), "%lld.", (long long)timestamp);
	int ok = ctx && secret
		&& EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)
		&& EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tl)
		&& (n == 0 || EVP_MAC_update(ctx, body, n))
		&& EVP_MAC_final(ctx, md, &len, sizeof(md)) && len == sizeof(md);

	hex[0] = '\0';
	if(ok){
		for(i = 0; i < sizeof(md); i++){
			hex[2 * i] = digits[md[i] >> 4];
			hex[2 * i + 1] = digits[md[i] & 15];
		}
		hex[64] = '\0';
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	ERR_clear_error();
}
