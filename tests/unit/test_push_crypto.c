/* test_push_crypto.c - archiver/push_crypto.c against independent readings:
 * RFC 8291's worked example byte for byte, a receiver written here (ECDH,
 * HKDF by EVP_KDF, AES-GCM decryption) that opens what the random path
 * sends, JWTs split, decoded with OpenSSL's base64 and verified with
 * EVP_DigestVerify, an HMAC vector from the openssl command, base64url's
 * edges, and bad keys and inputs refused with a reason. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "push_crypto.h"

/* RFC 8291 section 5, the example (appendix A gives its intermediate values). */
static const char rfc_plain[] = "When I grow up, I want to be a watermelon";
static const char rfc_as_private[] = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
static const char rfc_as_public[] =
	"BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
static const char rfc_ua_private[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
static const char rfc_ua_public[] =
	"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
static const char rfc_salt[] = "DGv6ra1nlYgDCS1FRnbzlw";
static const char rfc_auth[] = "BTBZMqHH6r4Tts7J_aSIgg";
static const char rfc_body[] =
	"DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

/* Keys made once for the whole run (RSA is slow under the sanitizers). */
static struct {
	EVP_PKEY *ec, *rsa;
	char dir[64];
} fx;

/* ---- independent helpers ---- */

/* base64url (no padding) decoded by OpenSSL's own base64 (EVP_DecodeBlock
 * after turning it into the standard alphabet with padding), not by the
 * code under test. Returns the length; fails the test on bad input. */
static size_t b64dec(const char *in, unsigned char *out, size_t max)
{
	size_t n = strlen(in), pad = (4 - n % 4) % 4, i;
	char *std = malloc(n + pad + 1);
	unsigned char *tmp = malloc((n + pad) / 4 * 3 + 1);
	int len;

	assert_non_null(std);
	assert_non_null(tmp);
	for(i = 0; i < n; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	for(; i < n + pad; i++) std[i] = '=';
	std[i] = '\0';
	len = EVP_DecodeBlock(tmp, (const unsigned char *)std, (int)(n + pad));
	assert_true(len >= 0);
	assert_true((size_t)len >= pad);
	len -= (int)pad;
	assert_true((size_t)len <= max);
	memcpy(out, tmp, (size_t)len);
	free(std);
	free(tmp);
	return (size_t)len;
}

/* HKDF-SHA-256 by EVP_KDF (the code under test uses the EVP_PKEY method). */
static void kdf(const unsigned char *salt, size_t saltlen, const unsigned char *ikm, size_t ikmlen,
		const void *info, size_t infolen, unsigned char *out, size_t outlen)
{
	unsigned char s[64], k[64], i[256];
	EVP_KDF *k_alg = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(k_alg);
	OSSL_PARAM params[5];

	assert_true(saltlen <= sizeof(s) && ikmlen <= sizeof(k) && infolen <= sizeof(i));
	memcpy(s, salt, saltlen);
	memcpy(k, ikm, ikmlen);
	memcpy(i, info, infolen);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, s, saltlen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k, ikmlen);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, i, infolen);
	params[4] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(ctx, out, outlen, params), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(k_alg);
}

/* A P-256 public key from its uncompressed point. */
static EVP_PKEY *point_key(const unsigned char pt[65])
{
	unsigned char copy[65];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;
	OSSL_PARAM params[3];

	memcpy(copy, pt, 65);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy, 65);
	params[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* The receiving browser (RFC 8291 section 3.4, RFC 8188 section 2):
 * decrypts body with the receiver's key; returns the plaintext length and
 * the text in plain, or -1 if the tag or the layout is wrong. */
static long receive(const unsigned char *body, size_t len, EVP_PKEY *ua, const unsigned char ua_pub[65],
		const unsigned char auth[16], unsigned char *plain)
{
	unsigned char shared[32], ikm[32], cek[16], nonce[12], info[14 + 130], tag[16];
	EVP_PKEY *as;
	EVP_PKEY_CTX *dctx;
	EVP_CIPHER_CTX *c;
	size_t slen = sizeof(shared), clen;
	uint32_t rs;
	int l1 = 0, l2 = 0, ok;

	if(len < 86 + 17) return -1;
	rs = (uint32_t)body[16] << 24 | (uint32_t)body[17] << 16 | (uint32_t)body[18] << 8 | body[19];
	if(rs != 4096 || body[20] != 65) return -1;
	as = point_key(body + 21);
	dctx = EVP_PKEY_CTX_new(ua, NULL);
	assert_int_equal(EVP_PKEY_derive_init(dctx), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(dctx, as), 1);
	assert_int_equal(EVP_PKEY_derive(dctx, shared, &slen), 1);
	assert_int_equal(slen, 32);
	EVP_PKEY_CTX_free(dctx);
	memcpy(info, "WebPush: info\0", 14);
	memcpy(info + 14, ua_pub, 65);
	memcpy(info + 79, body + 21, 65);
	kdf(auth, 16, shared, 32, info, sizeof(info), ikm, 32);
	kdf(body, 16, ikm, 32, "Content-Encoding: aes128gcm\0", 28, cek, 16);
	kdf(body, 16, ikm, 32, "Content-Encoding: nonce\0", 24, nonce, 12);
	EVP_PKEY_free(as);

	clen = len - 86 - 16;
	memcpy(tag, body + len - 16, 16);
	c = EVP_CIPHER_CTX_new();
	ok = EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, cek, nonce)
		&& EVP_DecryptUpdate(c, plain, &l1, body + 86, (int)clen)
		&& EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag)
		&& EVP_DecryptFinal_ex(c, plain + l1, &l2) == 1;
	EVP_CIPHER_CTX_free(c);
	ERR_clear_error();
	if(!ok || (size_t)(l1 + l2) != clen) return -1;
	/* The last record: trailing zero padding, then the 0x02 delimiter. */
	while(clen > 0 && plain[clen - 1] == 0) clen--;
	if(clen == 0 || plain[clen - 1] != 0x02) return -1;
	return (long)(clen - 1);
}

/* A P-256 private key from its raw 32-byte scalar, as SEC1 "EC PRIVATE KEY"
 * PEM text (RFC 5915: version 1, privateKey, [0] prime256v1; no public key,
 * so OpenSSL computes it), read by push_crypto__load_key_pem. */
static EVP_PKEY *raw_p256(const char *d_b64)
{
	static const unsigned char head[] = {0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20};
	static const unsigned char tail[] = {0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
		0x03, 0x01, 0x07};
	unsigned char der[sizeof(head) + 32 + sizeof(tail)];
	char b64[80], pem[200], err[256];
	EVP_PKEY *key = NULL;

	assert_int_equal(b64dec(d_b64, der + sizeof(head), 32), 32);
	memcpy(der, head, sizeof(head));
	memcpy(der + sizeof(head) + 32, tail, sizeof(tail));
	EVP_EncodeBlock((unsigned char *)b64, der, (int)sizeof(der));
	snprintf(pem, sizeof(pem), "-----BEGIN EC PRIVATE KEY-----\n%s\n-----END EC PRIVATE KEY-----\n", b64);
	assert_int_equal(push_crypto__load_key_pem(pem, strlen(pem), &key, err, sizeof(err)), 0);
	return key;
}

/* Our uncompressed point, read by OpenSSL's encoded-public-key parameter. */
static void point_of(EVP_PKEY *key, unsigned char pt[65])
{
	size_t len = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, 65, &len), 1);
	assert_int_equal(len, 65);
	assert_int_equal(pt[0], 0x04);
}

/* Split a JWT, check its header text exactly, verify its signature with
 * key (ES256: JOSE r||s turned back into DER), and return its claims (new
 * reference). */
static json_t *verify_jwt(const char *jwt, EVP_PKEY *key, int es256, const char *header)
{
	const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	char part[2048];
	unsigned char buf[2048], sig[512], *der = NULL;
	size_t n, siglen;
	EVP_MD_CTX *md;
	json_t *claims;
	json_error_t jerr;
	int derlen;

	assert_non_null(dot1);
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));
	assert_null(strchr(jwt, '='));

	assert_true((size_t)(dot1 - jwt) < sizeof(part));
	memcpy(part, jwt, (size_t)(dot1 - jwt));
	part[dot1 - jwt] = '\0';
	n = b64dec(part, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	assert_string_equal((char *)buf, header);

	assert_true((size_t)(dot2 - dot1 - 1) < sizeof(part));
	memcpy(part, dot1 + 1, (size_t)(dot2 - dot1 - 1));
	part[dot2 - dot1 - 1] = '\0';
	n = b64dec(part, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	claims = json_loads((char *)buf, 0, &jerr);
	assert_non_null(claims);
	assert_true(json_is_object(claims));

	siglen = b64dec(dot2 + 1, sig, sizeof(sig));
	if(es256){
		ECDSA_SIG *s = ECDSA_SIG_new();

		assert_int_equal(siglen, 64);
		assert_int_equal(ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
		derlen = i2d_ECDSA_SIG(s, &der);
		assert_true(derlen > 0);
		ECDSA_SIG_free(s);
	}else{
		assert_int_equal(siglen, (size_t)EVP_PKEY_get_size(key));
	}
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestVerify(md, es256 ? der : sig, es256 ? (size_t)derlen : siglen,
		(const unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return claims;
}

static void write_text(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Write key to dir/name as PEM: PKCS#8 or the traditional form (SEC1,
 * PKCS#1); returns the path (static buffer). */
static const char *write_key(const char *name, EVP_PKEY *key, int traditional)
{
	static char path[128];
	BIO *bio;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	bio = BIO_new_file(path, "w");
	assert_non_null(bio);
	if(traditional)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(BIO_free(bio), 1);
	return path;
}

static int group_setup(void **state)
{
	(void)state;
	fx.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_push_crypto.XXXXXX");
	return fx.ec && fx.rsa && mkdtemp(fx.dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(fx.dir);
	struct dirent *e;
	char path[512];

	(void)state;
	while(d && (e = readdir(d))){
		if(e->d_name[0] == '.') continue;
		snprintf(path, sizeof(path), "%s/%s", fx.dir, e->d_name);
		unlink(path);
	}
	if(d) closedir(d);
	rmdir(fx.dir);
	EVP_PKEY_free(fx.ec);
	EVP_PKEY_free(fx.rsa);
	return 0;
}

/* ---- base64url ---- */

static void test_b64url(void **state)
{
	/* RFC 4648 section 10, without the padding. */
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	static const unsigned char url[] = {0xfb, 0xff, 0xbf};
	unsigned char out[16];
	char text[32];
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(plain) / sizeof(*plain); i++){
		push_crypto__b64url((const unsigned char *)plain[i], strlen(plain[i]), text);
		assert_string_equal(text, coded[i]);
		memset(out, 0, sizeof(out));
		assert_int_equal(push_crypto__unb64url(coded[i], out, sizeof(out)), (long)strlen(plain[i]));
		assert_memory_equal(out, plain[i], strlen(plain[i]));
	}
	/* The two characters that differ from base64: - and _. */
	push_crypto__b64url(url, sizeof(url), text);
	assert_string_equal(text, "-_-_");
	assert_int_equal(push_crypto__unb64url("-_-_", out, sizeof(out)), 3);
	assert_memory_equal(out, url, 3);

	/* Refused: padding, the standard alphabet, whitespace, other bytes, an
	 * impossible length, bits left over in the last character. */
	assert_int_equal(push_crypto__unb64url("Zg==", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm8=", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("+/+/", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm9v\n", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url(" Zm9v", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm 9v", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm9\xc3\xa9", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Z", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm9vY", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zh", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url("Zm9", out, sizeof(out)), -1);
	assert_int_equal(push_crypto__unb64url(NULL, out, sizeof(out)), -1);

	/* max: exactly fits, one byte over does not, and nothing is written past it. */
	memset(out, 0xee, sizeof(out));
	assert_int_equal(push_crypto__unb64url("Zm9vYmFy", out, 6), 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(out[6], 0xee);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(push_crypto__unb64url("Zm9vYmFy", out, 5), -1);
	assert_int_equal(push_crypto__unb64url("Zm9vYmE", out, 4), -1);
	assert_int_equal(out[4], 0xee);
	assert_int_equal(out[5], 0xee);
	assert_int_equal(push_crypto__unb64url("", out, 0), 0);
	assert_int_equal(push_crypto__unb64url("Zg", out, 0), -1);
}

/* Every length round-trips and matches OpenSSL's base64 read as base64url. */
static void test_b64url_lengths(void **state)
{
	unsigned char in[100], back[100], ref[100];
	char text[4 * ((sizeof(in) + 2) / 3) + 1];
	size_t n;

	(void)state;
	assert_int_equal(RAND_bytes(in, sizeof(in)), 1);
	for(n = 0; n <= sizeof(in); n++){
		memset(text, 'X', sizeof(text));
		push_crypto__b64url(in, n, text);
		assert_int_equal(strlen(text), (4 * n + 2) / 3);
		assert_int_equal(push_crypto__unb64url(text, back, n), (long)n);
		assert_memory_equal(back, in, n);
		assert_int_equal(b64dec(text, ref, sizeof(ref)), n);
		assert_memory_equal(ref, in, n);
	}
}

/* ---- Web Push ---- */

static void test_rfc8291_example(void **state)
{
	unsigned char salt[16], body[512], ua_pub[65], auth[16], plain[512], *out = NULL;
	char pub[88], err[256] = "", text[512];
	EVP_PKEY *as = raw_p256(rfc_as_private), *ua = raw_p256(rfc_ua_private);
	size_t outlen = 0, bodylen;
	long n;

	(void)state;
	/* The public keys OpenSSL computed from the raw private values are the RFC's. */
	assert_int_equal(push_crypto__public_b64(as, pub, sizeof(pub)), 0);
	assert_string_equal(pub, rfc_as_public);
	assert_int_equal(push_crypto__public_b64(ua, pub, sizeof(pub)), 0);
	assert_string_equal(pub, rfc_ua_public);

	assert_int_equal(b64dec(rfc_salt, salt, sizeof(salt)), 16);
	assert_int_equal(push_crypto__webpush_encrypt_with(rfc_ua_public, rfc_auth, rfc_plain,
		strlen(rfc_plain), salt, as, &out, &outlen, err, sizeof(err)), 0);
	bodylen = b64dec(rfc_body, body, sizeof(body));
	assert_int_equal(outlen, bodylen);
	assert_int_equal(outlen, 86 + strlen(rfc_plain) + 1 + 16);
	assert_memory_equal(out, body, bodylen);
	push_crypto__b64url(out, outlen, text);
	assert_string_equal(text, rfc_body);

	/* And the receiver written here opens the RFC's body. */
	assert_int_equal(b64dec(rfc_ua_public, ua_pub, sizeof(ua_pub)), 65);
	assert_int_equal(b64dec(rfc_auth, auth, sizeof(auth)), 16);
	n = receive(body, bodylen, ua, ua_pub, auth, plain);
	assert_int_equal(n, (long)strlen(rfc_plain));
	assert_memory_equal(plain, rfc_plain, (size_t)n);

	free(out);
	EVP_PKEY_free(as);
	EVP_PKEY_free(ua);
}

static void test_webpush_roundtrip(void **state)
{
	EVP_PKEY *ua = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char ua_pub[65], auth[16], *a = NULL, *b = NULL, msg[3994], plain[4096];
	char p256dh[88], auth64[23], err[256] = "";
	size_t alen = 0, blen = 0;
	static const char text[] = "{\"type\":\"message\",\"with\":\"bob\",\"from\":\"bob\",\"id\":\"m1\",\"seq\":123,\"count\":3}";

	(void)state;
	assert_non_null(ua);
	point_of(ua, ua_pub);
	push_crypto__b64url(ua_pub, 65, p256dh);
	assert_int_equal(RAND_bytes(auth, sizeof(auth)), 1);
	push_crypto__b64url(auth, 16, auth64);

	assert_int_equal(push_crypto__webpush_encrypt(p256dh, auth64, text, strlen(text), &a, &alen,
		err, sizeof(err)), 0);
	assert_int_equal(push_crypto__webpush_encrypt(p256dh, auth64, text, strlen(text), &b, &blen,
		err, sizeof(err)), 0);
	assert_int_equal(alen, 86 + strlen(text) + 17);
	assert_int_equal(blen, alen);
	/* Fresh salt and sender key each time, so the bodies differ. */
	assert_memory_not_equal(a, b, 16);
	assert_memory_not_equal(a + 21, b + 21, 65);
	assert_int_equal(receive(a, alen, ua, ua_pub, auth, plain), (long)strlen(text));
	assert_memory_equal(plain, text, strlen(text));
	assert_int_equal(receive(b, blen, ua, ua_pub, auth, plain), (long)strlen(text));
	assert_memory_equal(plain, text, strlen(text));
	/* A flipped bit anywhere in the record fails the tag. */
	a[alen - 20] ^= 1;
	assert_int_equal(receive(a, alen, ua, ua_pub, auth, plain), -1);
	free(a);
	free(b);

	/* The largest text gives a body of exactly 4096 bytes; one more byte is refused. */
	assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
	assert_int_equal(push_crypto__webpush_encrypt(p256dh, auth64, msg, 3993, &a, &alen, err,
		sizeof(err)), 0);
	assert_int_equal(alen, 4096);
	assert_int_equal(receive(a, alen, ua, ua_pub, auth, plain), 3993);
	assert_memory_equal(plain, msg, 3993);
	free(a);
	assert_int_equal(push_crypto__webpush_encrypt(p256dh, auth64, msg, 3994, &a, &alen, err,
		sizeof(err)), -1);
	assert_null(a);
	assert_int_equal(alen, 0);
	assert_non_null(strstr(err, "3994"));

	/* An empty text is still a record (the delimiter alone). */
	assert_int_equal(push_crypto__webpush_encrypt(p256dh, auth64, "", 0, &a, &alen, err,
		sizeof(err)), 0);
	assert_int_equal(alen, 86 + 17);
	assert_int_equal(receive(a, alen, ua, ua_pub, auth, plain), 0);
	free(a);
	EVP_PKEY_free(ua);
}

/* One refused encryption: -1, no body, a reason containing want. */
static void refused(const char *p256dh, const char *auth, EVP_PKEY *sender, const char *want)
{
	unsigned char salt[16] = {0}, *out = (unsigned char *)"x";
	size_t outlen = 7;
	char err[256] = "";

	assert_int_equal(push_crypto__webpush_encrypt_with(p256dh, auth, "hi", 2, salt, sender, &out,
		&outlen, err, sizeof(err)), -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
	if(!strstr(err, want)) fail_msg("error \"%s\" does not say \"%s\"", err, want);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_webpush_bad_inputs(void **state)
{
	unsigned char pt[65], *out = NULL;
	char text[100], err[256] = "";
	size_t outlen = 0;

	(void)state;
	/* 0x04 then x and y that are not on the curve, and the point at zero. */
	memset(pt, 1, sizeof(pt));
	pt[0] = 0x04;
	push_crypto__b64url(pt, 65, text);
	refused(text, rfc_auth, fx.ec, "not a point on P-256");
	memset(pt + 1, 0, 64);
	push_crypto__b64url(pt, 65, text);
	refused(text, rfc_auth, fx.ec, "not a point on P-256");
	/* A point on the curve with the y of another: also not on it. */
	assert_int_equal(b64dec(rfc_ua_public, pt, 65), 65);
	pt[64] ^= 1;
	push_crypto__b64url(pt, 65, text);
	refused(text, rfc_auth, fx.ec, "not a point on P-256");
	/* Right length, wrong form byte; compressed; short; long; not base64url. */
	assert_int_equal(b64dec(rfc_ua_public, pt, 65), 65);
	pt[0] = 0x03;
	push_crypto__b64url(pt, 65, text);
	refused(text, rfc_auth, fx.ec, "p256dh is not base64url of a 65-byte");
	pt[0] = 0x02;
	push_crypto__b64url(pt, 33, text);
	refused(text, rfc_auth, fx.ec, "p256dh is not base64url of a 65-byte");
	pt[0] = 0x04;
	push_crypto__b64url(pt, 64, text);
	refused(text, rfc_auth, fx.ec, "p256dh");
	snprintf(text, sizeof(text), "%sAA", rfc_ua_public);
	refused(text, rfc_auth, fx.ec, "p256dh");
	snprintf(text, sizeof(text), "%s=", rfc_ua_public);
	refused(text, rfc_auth, fx.ec, "p256dh");
	refused("not a key!", rfc_auth, fx.ec, "p256dh");
	refused("", rfc_auth, fx.ec, "p256dh");
	refused(NULL, rfc_auth, fx.ec, "p256dh");
	/* auth: 15 and 17 bytes, padded, missing. */
	refused(rfc_ua_public, "BTBZMqHH6r4Tts7J_aSI", fx.ec, "auth is not base64url of 16 bytes");
	refused(rfc_ua_public, "BTBZMqHH6r4Tts7J_aSIggAA", fx.ec, "auth");
	refused(rfc_ua_public, "BTBZMqHH6r4Tts7J_aSIgg==", fx.ec, "auth");
	refused(rfc_ua_public, NULL, fx.ec, "auth");
	/* The sender must be a P-256 key. */
	refused(rfc_ua_public, rfc_auth, fx.rsa, "sender key is not EC P-256");
	refused(rfc_ua_public, rfc_auth, NULL, "sender key is not EC P-256");
	/* The random path refuses the same way. */
	assert_int_equal(push_crypto__webpush_encrypt("AAAA", rfc_auth, "x", 1, &out, &outlen, err,
		sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "p256dh"));
}

/* ---- keys ---- */

static void test_load_key(void **state)
{
	static const char *const names[] = {"ec8.pem", "ecsec1.pem", "rsa8.pem", "rsa1.pem"};
	EVP_PKEY *key = NULL, *ed, *p384;
	char path[128], pub[88], ref[88], err[256] = "";
	unsigned char pt[65];
	FILE *f;
	BIO *bio;
	char *pem;
	long pemlen;
	size_t i;

	(void)state;
	/* EC P-256 as PKCS#8 and SEC1; RSA as PKCS#8 and PKCS#1. */
	write_key(names[0], fx.ec, 0);
	write_key(names[1], fx.ec, 1);
	write_key(names[2], fx.rsa, 0);
	write_key(names[3], fx.rsa, 1);
	point_of(fx.ec, pt);
	push_crypto__b64url(pt, 65, ref);
	for(i = 0; i < 4; i++){
		snprintf(path, sizeof(path), "%s/%s", fx.dir, names[i]);
		assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), 0);
		assert_int_equal(EVP_PKEY_eq(key, i < 2 ? fx.ec : fx.rsa), 1);
		if(i < 2){
			assert_int_equal(push_crypto__public_b64(key, pub, sizeof(pub)), 0);
			assert_string_equal(pub, ref);
		}else{
			assert_int_equal(push_crypto__public_b64(key, pub, sizeof(pub)), -1);
		}
		EVP_PKEY_free(key);
		key = NULL;
	}
	assert_int_equal(push_crypto__public_b64(fx.ec, pub, 87), -1);

	/* PEM text in memory, as a service account's "private_key" (after a
	 * certificate-less preamble line, which PEM readers skip). */
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(BIO_puts(bio, "a comment line\n"), 15);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, fx.rsa, NULL, NULL, 0, NULL, NULL), 1);
	pemlen = BIO_get_mem_data(bio, &pem);
	assert_int_equal(push_crypto__load_key_pem(pem, (size_t)pemlen, &key, err, sizeof(err)), 0);
	assert_int_equal(EVP_PKEY_eq(key, fx.rsa), 1);
	EVP_PKEY_free(key);
	key = NULL;
	/* Cut short: refused. */
	assert_int_equal(push_crypto__load_key_pem(pem, (size_t)pemlen / 2, &key, err, sizeof(err)), -1);
	assert_null(key);
	BIO_free(bio);

	/* Missing file: the path and the system's reason. */
	snprintf(path, sizeof(path), "%s/missing.pem", fx.dir);
	key = (EVP_PKEY *)fx.ec;
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), -1);
	assert_null(key);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(push_crypto__load_key(fx.dir, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, fx.dir));
	assert_int_equal(push_crypto__load_key("", &key, err, sizeof(err)), -1);
	assert_int_equal(push_crypto__load_key(NULL, &key, err, sizeof(err)), -1);

	/* Keys of other kinds: the kind is named. */
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_non_null(ed);
	assert_non_null(p384);
	assert_int_equal(push_crypto__load_key(write_key("ed.pem", ed, 0), &key, err, sizeof(err)), -1);
	assert_null(key);
	assert_non_null(strstr(err, "ED25519"));
	assert_non_null(strstr(err, "not EC P-256 or RSA"));
	assert_int_equal(push_crypto__load_key(write_key("p384.pem", p384, 0), &key, err, sizeof(err)), -1);
	assert_null(key);
	assert_non_null(strstr(err, "secp384r1"));

	/* A public key only, an empty file, text that is no PEM. */
	snprintf(path, sizeof(path), "%s/pub.pem", fx.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, fx.ec), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no unencrypted PEM private key"));
	snprintf(path, sizeof(path), "%s/empty.pem", fx.dir);
	write_text(path, "", 0);
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	snprintf(path, sizeof(path), "%s/junk.pem", fx.dir);
	write_text(path, "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", 65);
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no unencrypted PEM private key"));
	assert_null(key);

	/* An encrypted key fails without asking for a passphrase. */
	snprintf(path, sizeof(path), "%s/enc.pem", fx.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PKCS8PrivateKey(f, fx.ec, EVP_aes_128_cbc(), "pw", 2, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), -1);
	assert_null(key);
	assert_int_equal(push_crypto__load_key_pem("", 0, &key, err, sizeof(err)), -1);
	assert_int_equal(ERR_peek_error(), 0);

	EVP_PKEY_free(ed);
	EVP_PKEY_free(p384);
}

static void test_vapid_generate(void **state)
{
	char path[128], tmp[140], pub[88], pub2[88], small[40], err[256] = "", head[64];
	EVP_PKEY *key = NULL;
	struct stat st;
	FILE *f;
	unsigned char pt[65];

	(void)state;
	snprintf(path, sizeof(path), "%s/vapid.pem", fx.dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	/* A stale path.new of another mode is replaced. */
	write_text(tmp, "stale", 5);
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(push_crypto__vapid_generate(path, pub, sizeof(pub), err, sizeof(err)), 0);
	assert_int_equal(strlen(pub), 87);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(access(tmp, F_OK), -1);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(head, sizeof(head), f));
	fclose(f);
	assert_string_equal(head, "-----BEGIN PRIVATE KEY-----\n");
	assert_int_equal(push_crypto__load_key(path, &key, err, sizeof(err)), 0);
	assert_int_equal(push_crypto__public_b64(key, pub2, sizeof(pub2)), 0);
	assert_string_equal(pub, pub2);
	assert_int_equal(b64dec(pub, pt, sizeof(pt)), 65);
	assert_int_equal(pt[0], 0x04);
	EVP_PKEY_free(key);

	/* A second one is another key. */
	assert_int_equal(push_crypto__vapid_generate(path, pub2, sizeof(pub2), err, sizeof(err)), 0);
	assert_string_not_equal(pub, pub2);

	/* A folder that is not there, a buffer too small. */
	snprintf(path, sizeof(path), "%s/no/such/vapid.pem", fx.dir);
	assert_int_equal(push_crypto__vapid_generate(path, pub, sizeof(pub), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	snprintf(path, sizeof(path), "%s/small.pem", fx.dir);
	assert_int_equal(push_crypto__vapid_generate(path, small, sizeof(small), err, sizeof(err)), -1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- tokens ---- */

static void test_vapid_header(void **state)
{
	char hdr[1024], pub[88], err[256] = "";
	const char *t, *k;
	char jwt[900];
	json_t *claims;
	size_t full;

	(void)state;
	assert_int_equal(push_crypto__public_b64(fx.ec, pub, sizeof(pub)), 0);
	assert_int_equal(push_crypto__vapid_header(fx.ec, "https://push.example.net",
		"mailto:postmaster@localhost", 1764936000, hdr, sizeof(hdr), err, sizeof(err)), 0);
	/* "vapid t=<jwt>, k=<key>" */
	assert_memory_equal(hdr, "vapid t=", 8);
	full = strlen(hdr);
	t = hdr + 8;
	k = strstr(hdr, ", k=");
	assert_non_null(k);
	assert_string_equal(k + 4, pub);
	assert_true((size_t)(k - t) < sizeof(jwt));
	memcpy(jwt, t, (size_t)(k - t));
	jwt[k - t] = '\0';
	claims = verify_jwt(jwt, fx.ec, 1, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}");
	assert_int_equal(json_object_size(claims), 3);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), "https://push.example.net");
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1764936000);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "mailto:postmaster@localhost");
	json_decref(claims);

	/* Refused: an RSA key, no aud, a buffer too small for the header. */
	assert_int_equal(push_crypto__vapid_header(fx.rsa, "https://push.example.net", "mailto:a@b",
		1764936000, hdr, sizeof(hdr), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "EC P-256"));
	assert_int_equal(push_crypto__vapid_header(fx.ec, "", "mailto:a@b", 1764936000, hdr,
		sizeof(hdr), err, sizeof(err)), -1);
	assert_int_equal(push_crypto__vapid_header(fx.ec, "https://push.example.net", "mailto:a@b",
		1764936000, hdr, 100, err, sizeof(err)), -1);
	assert_string_equal(hdr, "");
	/* The header and its NUL fit exactly; one byte less does not. */
	assert_int_equal(push_crypto__vapid_header(fx.ec, "https://push.example.net",
		"mailto:postmaster@localhost", 1764936000, hdr, full, err, sizeof(err)), -1);
	assert_string_equal(hdr, "");
	assert_int_equal(push_crypto__vapid_header(fx.ec, "https://push.example.net",
		"mailto:postmaster@localhost", 1764936000, hdr, full + 1, err, sizeof(err)), 0);
	assert_int_equal(strlen(hdr), full);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_apns_jwt(void **state)
{
	char a[512], b[512], err[256] = "";
	json_t *claims;

	(void)state;
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "ABC123DEFG", "DEF123GHIJ", 1764936000, a,
		sizeof(a), err, sizeof(err)), 0);
	claims = verify_jwt(a, fx.ec, 1, "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}");
	assert_int_equal(json_object_size(claims), 2);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "DEF123GHIJ");
	assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1764936000);
	json_decref(claims);
	/* ECDSA is randomised: a second token differs and verifies too. */
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "ABC123DEFG", "DEF123GHIJ", 1764936000, b,
		sizeof(b), err, sizeof(err)), 0);
	assert_string_not_equal(a, b);
	json_decref(verify_jwt(b, fx.ec, 1, "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}"));

	/* A kid that needs escaping stays valid JSON. */
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "a\"b\\c", "T", 1, a, sizeof(a), err,
		sizeof(err)), 0);
	json_decref(verify_jwt(a, fx.ec, 1, "{\"alg\":\"ES256\",\"kid\":\"a\\\"b\\\\c\"}"));

	assert_int_equal(push_crypto__apns_jwt(fx.rsa, "K", "T", 1, a, sizeof(a), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ES256 needs an EC P-256 key"));
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "K", "", 1, a, sizeof(a), err, sizeof(err)), -1);
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "K\xff", "T", 1, a, sizeof(a), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "UTF-8"));
	assert_int_equal(push_crypto__apns_jwt(fx.ec, "K", "T", 1, a, 40, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not fit"));
	assert_string_equal(a, "");
	assert_int_equal(push_crypto__apns_jwt(NULL, "K", "T", 1, a, sizeof(a), err, sizeof(err)), -1);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_google_assertion(void **state)
{
	static const char scope[] = "https://www.googleapis.com/auth/firebase.messaging";
	static const char uri[] = "https://oauth2.googleapis.com/token";
	char jwt[2048], err[256] = "";
	json_t *claims;

	(void)state;
	assert_int_equal(push_crypto__google_assertion(fx.rsa, "push@proj.iam.gserviceaccount.com",
		scope, uri, 1764936000, jwt, sizeof(jwt), err, sizeof(err)), 0);
	claims = verify_jwt(jwt, fx.rsa, 0, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
	assert_int_equal(json_object_size(claims), 5);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")),
		"push@proj.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(claims, "scope")), scope);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), uri);
	assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1764936000);
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1764936000 + 3600);
	json_decref(claims);

	assert_int_equal(push_crypto__google_assertion(fx.ec, "a@b", scope, uri, 1, jwt, sizeof(jwt),
		err, sizeof(err)), -1);
	assert_non_null(strstr(err, "RS256 needs an RSA key"));
	assert_int_equal(push_crypto__google_assertion(fx.rsa, "a@b", scope, NULL, 1, jwt,
		sizeof(jwt), err, sizeof(err)), -1);
	assert_int_equal(push_crypto__google_assertion(fx.rsa, "a@b", scope, uri, 1, jwt, 300, err,
		sizeof(err)), -1);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- webhooks ---- */

static void test_webhook_sign(void **state)
{
	static const char body[] =
		"{\"type\":\"message\",\"with\":\"bob\",\"from\":\"bob\",\"id\":\"m1\",\"seq\":123,\"count\":3}";
	char hex[65], other[65];

	(void)state;
	/* Made once with:
	 *   printf '%s' '1764900000.{"type":"message","with":"bob","from":"bob","id":"m1","seq":123,"count":3}' \
	 *     | openssl dgst -sha256 -hmac 'c2VjcmV0LWtleS1mb3Itd2ViaG9va3M'
	 * (the key is the secret's text, as a webhook's receiver holds it). */
	push_crypto__webhook_sign("c2VjcmV0LWtleS1mb3Itd2ViaG9va3M", 1764900000, body, strlen(body), hex);
	assert_string_equal(hex, "f887d0a1efa01cb83850d9c5b5b9c90440a58591ec88467b9123824badbdcd03");
	/* Another time or body, another MAC. */
	push_crypto__webhook_sign("c2VjcmV0LWtleS1mb3Itd2ViaG9va3M", 1764900001, body, strlen(body), other);
	assert_string_not_equal(hex, other);
	push_crypto__webhook_sign("c2VjcmV0LWtleS1mb3Itd2ViaG9va3M", 1764900000, body, strlen(body) - 1, other);
	assert_string_not_equal(hex, other);
	/* An empty body: printf '%s' '1764900000.' | openssl dgst -sha256 -hmac (the same key). */
	push_crypto__webhook_sign("c2VjcmV0LWtleS1mb3Itd2ViaG9va3M", 1764900000, "", 0, other);
	assert_string_equal(other, "f9ea2fd0f440a1c33122882ea6ef45acfd18b620d95eb37ce58bc9bfff336c80");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_b64url_lengths),
		cmocka_unit_test(test_rfc8291_example),
		cmocka_unit_test(test_webpush_roundtrip),
		cmocka_unit_test(test_webpush_bad_inputs),
		cmocka_unit_test(test_load_key),
		cmocka_unit_test(test_vapid_generate),
		cmocka_unit_test(test_vapid_header),
		cmocka_unit_test(test_apns_jwt),
		cmocka_unit_test(test_google_assertion),
		cmocka_unit_test(test_webhook_sign),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
