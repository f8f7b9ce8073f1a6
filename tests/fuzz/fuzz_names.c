/* fuzz_names.c - libFuzzer harness for the name grammar (common/names.c).
 *
 * Each function is compared with an independent, obviously-correct
 * reference written from the grammar in names.h, on the raw input (explicit
 * length, not NUL-terminated: ASan sees any read past it) and on a
 * NUL-terminated copy. names__split_clientid must also return parts that
 * put the id back together. Nicks have no second reading to compare with:
 * their look-alike keys must keep their invariants instead. */
#include <stdbool.h>
#include <string.h>

#include "names.h"
#include "fuzz.h"

static bool nm_in(char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

#define NM_LOWER "abcdefghijklmnopqrstuvwxyz0123456789"
#define NM_ALNUM NM_LOWER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static bool nm_all(const char *s, size_t len, const char *set)
{
	size_t i;

	for(i=0; i<len; i++){
		if(!nm_in(s[i], set)) return false;
	}
	return true;
}

static bool nm_ref_name(const char *s, size_t len)
{
	return len >= 1 && len <= 32 && nm_in(s[0], NM_LOWER) && nm_all(s, len, NM_LOWER "_.-");
}

static bool nm_ref_device(const char *s, size_t len)
{
	return len >= 1 && len <= 64 && nm_all(s, len, NM_ALNUM "_.-");
}

static bool nm_ref_msgid(const char *s, size_t len)
{
	return len >= 1 && len <= 64 && nm_all(s, len, NM_ALNUM "_-");
}

/* names__nick_key: never longer than its text, NUL-terminated; a valid
 * nick's key is its own key (folding twice changes nothing); ASCII case
 * never matters. */
static void nm_nick(const char *s, size_t len)
{
	char key[NICK_MAX_LEN + 1], again[NICK_MAX_LEN + 1], flip[NICK_MAX_LEN];
	size_t k, i;

	if(len > NICK_MAX_LEN) len = NICK_MAX_LEN;
	k = names__nick_key(s, len, key, sizeof(key));
	FUZZ_ASSERT(k <= len && key[k] == '\0');
	if(names__nick_valid(s, len, NULL, 0)){
		FUZZ_ASSERT(len >= 1);
		FUZZ_ASSERT(names__nick_key(key, k, again, sizeof(again)) == k && memcmp(key, again, k) == 0);
	}
	for(i=0; i<len; i++){
		char c = s[i];

		flip[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	FUZZ_ASSERT(names__nick_key(flip, len, again, sizeof(again)) == k && memcmp(key, again, k) == 0);
}

FUZZ_TARGET(names)
{
	char *copy = malloc(size + 1);
	size_t clen, ulen = 12345, dlen = 12345;
	const char *dev = (const char *)1;
	bool ok;

	if(copy == NULL) return 0;
	FUZZ_ASSERT(names__valid((const char *)data, size) == nm_ref_name((const char *)data, size));
	FUZZ_ASSERT(names__valid_device((const char *)data, size) == nm_ref_device((const char *)data, size));
	FUZZ_ASSERT(names__valid_msgid((const char *)data, size) == nm_ref_msgid((const char *)data, size));
	nm_nick((const char *)data, size);

	memcpy(copy, data, size);
	copy[size] = '\0';
	clen = strlen(copy);
	FUZZ_ASSERT(names__valid_str(copy) == nm_ref_name(copy, clen));

	ok = names__split_clientid(copy, &ulen, &dev, &dlen);
	{
		const char *at = memchr(copy, '@', clen);
		bool expect = clen >= 1 && clen <= CLIENTID_MAX_LEN && at != copy
			&& (at == NULL || nm_ref_device(at + 1, clen - (size_t)(at - copy) - 1));
		FUZZ_ASSERT(ok == expect);
		if(ok && at == NULL){
			FUZZ_ASSERT(ulen == clen && dev == NULL && dlen == 0);
		}else if(ok){
			FUZZ_ASSERT(ulen >= 1 && ulen == (size_t)(at - copy));
			FUZZ_ASSERT(dev == at + 1 && ulen + 1 + dlen == clen);
			FUZZ_ASSERT(memchr(copy, '@', ulen) == NULL);
			FUZZ_ASSERT(dlen <= DEVICE_MAX_LEN && names__valid_device(dev, dlen));
		}
		/* A valid user name with a valid device always splits. */
		if(at && nm_ref_name(copy, (size_t)(at - copy))
				&& nm_ref_device(at + 1, clen - (size_t)(at - copy) - 1)){
			FUZZ_ASSERT(ok);
		}
	}
	free(copy);
	return 0;
}
