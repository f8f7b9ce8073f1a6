/* test_pwhash_mosquitto.c - Mosquitto's $6$ and $7$ password forms in
 * common/pwhash.c, against vectors made apart from this code:
 *   - Python's hashlib (sha512(password + salt) for $6$,
 *     pbkdf2_hmac('sha512', password, salt, n, 64) for $7$), salt bytes
 *     1..12, as `python3 -c` printed them;
 *   - the real `mosquitto_passwd -b` (Debian's mosquitto 2.0.11): its
 *     default $7$ (101 iterations) and `-H sha512` ($6$).
 * tests/integration/test_import.py makes more with the real tools at test
 * time and logs in with them through the broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "pwhash.h"

struct vector {
	const char *password;
	const char *stored;
};

static const struct vector good[] = {
	/* hashlib, salt = bytes(range(1, 13)) */
	{"correct horse", "$6$AQIDBAUGBwgJCgsM$k4h6DJTPKKgPqwiLW87w0j5t6eo2nkDOCc72xNQ6goxbMrAMEDvsnY"
		"teF9SSd1cyXtc8SuF5I0GVPt7YRi6Wdw=="},
	{"correct horse", "$7$101$AQIDBAUGBwgJCgsM$mIOMyf0G01/LkKvFuu6raA+sJydkdh2qDZD+cyTDcrMk08Rnc3"
		"N+vIiTgRJqnolJL9TU+/R/F+mbz31mQG16jg=="},
	{"", "$6$AQIDBAUGBwgJCgsM$JZltvjGgT/A+TmPJxkesbUWUdeKEVSkjjz0I9KN+vFSMGTYjIbt3MFzvdYIaM4s80+"
		"tiK6LI5ZWJGcxHBQxsDg=="},
	{"", "$7$101$AQIDBAUGBwgJCgsM$0nQUMj2QLzi3F9cnqUT9eQnLQacCIBA5kHUW/0QTjLk8eRHXrjwR4cbTg8AtMr"
		"LMTaEnp1lDDc5PP8FM5XBSsA=="},
	/* UTF-8 "pässwörd": bytes, not characters */
	{"p\xc3\xa4ssw\xc3\xb6rd", "$6$AQIDBAUGBwgJCgsM$UwQYfZGXuNpNtoME5WcuzQ8gc7yCNlAH6UNcnxPJXkWrBA"
		"X0a4UWuSdIgIoiJm7TYq93wmJROlKuM7EhRVKNaA=="},
	{"p\xc3\xa4ssw\xc3\xb6rd", "$7$101$AQIDBAUGBwgJCgsM$eFo8g1NlmPAEXBF3r79VVHlRLMK264fyspNLhSnuyi"
		"0LBb1hok569fyKkIo7SbXeHxh2aczJUz2wU+KMCD5ItA=="},
	/* hashlib, one iteration, salt of 0xff bytes */
	{"s3cret-pass", "$7$1$////////////////$ggq/x5xH/8K7MgjHf0Ha3VFPnYWBctrJ3bqBNXSbmTrGs+IY/BnC9F6"
		"Aosn4jpjoQmKgpHxzDpv7gso8QKG7lA=="},
	/* mosquitto_passwd -c -b FILE alice 'Wonder land!' */
	{"Wonder land!", "$7$101$0ZDPee3m9od/KJmK$aUL0J/GIo9gCZgtO5gE3FIAJCuTFvlQ0qG4p3cQ/JlYmiQHUQ"
		"Ef9p6W6CmeRpHFqwN17uVfZ5Ze3f1iAjC/LxA=="},
	/* mosquitto_passwd -H sha512 -b FILE bob b0b-secret */
	{"b0b-secret", "$6$Ks417ekjhi372diB$xuC+D6uJ0Shdlagx+D/g+c1j0xBZDE2C6QZtl90j/F7Zsk0YBpCZkM/r"
		"dvu6WiNaY06Wyu/PnOFQJkgoHm0i+A=="},
};
#define NGOOD (sizeof(good) / sizeof(good[0]))

static void test_vectors_verify(void **state)
{
	size_t i;
	bool ok;

	(void)state;
	for(i=0; i<NGOOD; i++){
		ok = false;
		assert_int_equal(pwhash__verify(good[i].password, strlen(good[i].password), good[i].stored, &ok),
				MQC_OK);
		if(!ok){
			print_error("vector %zu (%s) did not verify\n", i, good[i].stored);
			fail();
		}
		assert_true(pwhash__is_legacy(good[i].stored));
	}
}

static void test_vectors_wrong_password(void **state)
{
	char pw[64];
	size_t i, n;
	bool ok;

	(void)state;
	for(i=0; i<NGOOD; i++){
		n = strlen(good[i].password);
		/* one byte more, one byte less, one byte changed */
		snprintf(pw, sizeof(pw), "%sx", good[i].password);
		ok = true;
		assert_int_equal(pwhash__verify(pw, n + 1, good[i].stored, &ok), MQC_OK);
		assert_false(ok);
		if(n > 0){
			ok = true;
			assert_int_equal(pwhash__verify(good[i].password, n - 1, good[i].stored, &ok), MQC_OK);
			assert_false(ok);
			memcpy(pw, good[i].password, n);
			pw[0] ^= 0x20;
			ok = true;
			assert_int_equal(pwhash__verify(pw, n, good[i].stored, &ok), MQC_OK);
			assert_false(ok);
		}
	}
	/* Over-long and missing passwords are refused without hashing. */
	ok = true;
	assert_int_equal(pwhash__verify(NULL, 0, good[0].stored, &ok), MQC_OK);
	assert_false(ok);
	ok = true;
	assert_int_equal(pwhash__verify("x", PWHASH_MAX_PASSWORD + 1, good[1].stored, &ok), MQC_OK);
	assert_false(ok);
}

static void test_iterations_and_legacy(void **state)
{
	char h[PWHASH_STR_LEN];

	(void)state;
	assert_int_equal(pwhash__iterations(good[0].stored), 1);      /* $6$: one SHA-512 */
	assert_int_equal(pwhash__iterations(good[1].stored), 101);
	assert_int_equal(pwhash__iterations(good[6].stored), 1);      /* $7$1$ */
	/* Our own form and a secret's are not legacy. */
	assert_int_equal(pwhash__make("secret", 6, PWHASH_MIN_ITERATIONS, h, sizeof(h)), MQC_OK);
	assert_false(pwhash__is_legacy(h));
	assert_int_equal(pwhash__iterations(h), PWHASH_MIN_ITERATIONS);
	assert_int_equal(pwhash__make_secret("0123456789abcdef0123456789abcdef", 32, h, sizeof(h)), MQC_OK);
	assert_false(pwhash__is_legacy(h));
	assert_int_equal(pwhash__iterations(h), 0);
	assert_false(pwhash__is_legacy(NULL));
	assert_false(pwhash__is_legacy(""));
	assert_false(pwhash__is_legacy("$5$abc$def"));
	assert_false(pwhash__is_legacy("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"));
	/* Mosquitto's longest: a 7-digit count still fits our buffers. */
	assert_true(strlen("$7$10000000$AQIDBAUGBwgJCgsM$") + 88 < PWHASH_STR_LEN);
}

/* Forms Mosquitto would not read either (or that we refuse to read): each
 * is MQC_ERR_INVAL, *ok false, and not a password form for the store. */
static void test_malformed(void **state)
{
#define SALT "AQIDBAUGBwgJCgsM"
#define HASH "k4h6DJTPKKgPqwiLW87w0j5t6eo2nkDOCc72xNQ6goxbMrAMEDvsnYteF9SSd1cyXtc8SuF5I0GVPt7YRi6Wdw=="
	static const char *const forms[] = {
		"$6$",
		"$6$" SALT,
		"$6$" SALT "$",
		"$6$" SALT "$" HASH "$",
		"$6$" SALT "$" HASH "AAAA",
		"$6$" SALT "$" "k4h6DJTPKKgPqwiLW87w0j5t6eo2nkDOCc72xNQ6goxbMrAMEDvsnYteF9SSd1cyXtc8SuF5I0GVPt7YRi6Wdw",
		"$6$" SALT "==$" HASH,
		"$6$AQIDBAUGBwgJCgs$" HASH,                     /* 15 characters */
		"$6$AQIDBAUGBwgJCgsMDQ==$" HASH,                /* 13-byte salt */
		"$6$AQIDBAUGBwgJCg!M$" HASH,                    /* not base64 */
		"$6$$" HASH,
		"$6$" SALT "$" "!" HASH,
		"$6$101$" SALT "$" HASH,                        /* a count where the salt goes */
		"$7$",
		"$7$101",
		"$7$101$",
		"$7$101$" SALT,
		"$7$101$" SALT "$",
		"$7$" SALT "$" HASH,                            /* no count */
		"$7$0$" SALT "$" HASH,
		"$7$-1$" SALT "$" HASH,
		"$7$+101$" SALT "$" HASH,
		"$7$0101$" SALT "$" HASH,
		"$7$ 101$" SALT "$" HASH,
		"$7$101x$" SALT "$" HASH,
		"$7$10000001$" SALT "$" HASH,                   /* past PWHASH_MAX_ITERATIONS */
		"$7$99999999999999999999999$" SALT "$" HASH,
		"$7$101$" SALT "$" HASH "$",
		"$7$101$" SALT "$" HASH "\n",
		"$7$101$AQIDBAUGBwgJCgs$" HASH,
		"$7$101$" SALT "$" "AQID",
	};
	size_t i;
	bool ok;

	(void)state;
	for(i=0; i<sizeof(forms)/sizeof(forms[0]); i++){
		ok = true;
		if(pwhash__verify("correct horse", 13, forms[i], &ok) != MQC_ERR_INVAL || ok
				|| pwhash__iterations(forms[i]) != 0){
			print_error("accepted stored form %s\n", forms[i]);
			fail();
		}
		/* They start like Mosquitto's all the same. */
		assert_true(pwhash__is_legacy(forms[i]));
	}
	/* Sanity: the well-formed base of the list verifies. */
	ok = false;
	assert_int_equal(pwhash__verify("correct horse", 13, "$6$" SALT "$" HASH, &ok), MQC_OK);
	assert_true(ok);
#undef SALT
#undef HASH
}

/* A bent byte anywhere in salt or hash fails the check, not the parse. */
static void test_bent(void **state)
{
	char bent[PWHASH_STR_LEN];
	size_t i, start, len = strlen(good[1].stored);
	bool ok;

	(void)state;
	start = strlen("$7$101$");
	for(i=start; i<len; i++){
		if(good[1].stored[i] == '$' || good[1].stored[i] == '=') continue;
		snprintf(bent, sizeof(bent), "%s", good[1].stored);
		bent[i] = bent[i] == 'A' ? 'B' : 'A';
		ok = true;
		assert_int_equal(pwhash__verify("correct horse", 13, bent, &ok), MQC_OK);
		if(ok){
			print_error("bent at %zu still verified\n", i);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_verify),
		cmocka_unit_test(test_vectors_wrong_password),
		cmocka_unit_test(test_iterations_and_legacy),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
