/* devtoken.c - device tokens: see devtoken.h. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "devtoken.h"
#include "err.h"
#include "rand.h"

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 32 bytes are 43 base64url characters (no padding): 10 groups of 3
 * bytes, then 2 bytes as 3 characters. */
static void encode32(const unsigned char in[DEVTOKEN_RANDOM_BYTES], char *out)
{
	size_t i, o = 0;
	unsigned v;

	for(i = 0; i + 3 <= DEVTOKEN_RANDOM_BYTES; i += 3){
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	v = (unsigned)in[i] << 8 | in[i + 1];
	out[o++] = b64url[v >> 10 & 63];
	out[o++] = b64url[v >> 4 & 63];
	out[o++] = b64url[(v << 2) & 63];
	out[o] = '\0';
}

int devtoken__make(char out[DEVTOKEN_LEN + 1])
{
	unsigned char raw[DEVTOKEN_RANDOM_BYTES];
	int rc = rand__bytes(raw, sizeof(raw));

	out[0] = '\0';
	if(rc != MQC_OK) return rc;
	devtoken__encode(raw, out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return MQC_OK;
}

void devtoken__encode(const unsigned char raw[DEVTOKEN_RANDOM_BYTES], char out[DEVTOKEN_LEN + 1])
{
	memcpy(out, DEVTOKEN_PREFIX, DEVTOKEN_PREFIX_LEN);
	encode32(raw, out + DEVTOKEN_PREFIX_LEN);
}

bool devtoken__is_token(const char *s, size_t len)
{
	size_t i;

	if(len != DEVTOKEN_LEN || memcmp(s, DEVTOKEN_PREFIX, DEVTOKEN_PREFIX_LEN) != 0) return false;
	for(i = DEVTOKEN_PREFIX_LEN; i < len; i++){
		const char c = s[i];
		if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
					|| c == '-' || c == '_')){
			return false;
		}
	}
	return true;
}

int devtoken__digest(const char *s, size_t len, unsigned char out[DEVTOKEN_DIGEST_LEN])
{
	unsigned int n = 0;

	if(EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) != 1 || n != DEVTOKEN_DIGEST_LEN){
		return MQC_ERR_CRYPTO;
	}
	return MQC_OK;
}

void devtoken__to_hex(const unsigned char d[DEVTOKEN_DIGEST_LEN], char out[DEVTOKEN_DIGEST_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for(i = 0; i < DEVTOKEN_DIGEST_LEN; i++){
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[DEVTOKEN_DIGEST_HEX_LEN] = '\0';
}

static int hex_value(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

bool devtoken__from_hex(const char *hex, unsigned char out[DEVTOKEN_DIGEST_LEN])
{
	size_t i;

	if(hex == NULL || strlen(hex) != DEVTOKEN_DIGEST_HEX_LEN) return false;
	for(i = 0; i < DEVTOKEN_DIGEST_LEN; i++){
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if(hi < 0 || lo < 0) return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool devtoken__digest_eq(const unsigned char a[DEVTOKEN_DIGEST_LEN],
		const unsigned char b[DEVTOKEN_DIGEST_LEN])
{
	return CRYPTO_memcmp(a, b, DEVTOKEN_DIGEST_LEN) == 0;
}
