/* test_devtoken.c - common/devtoken.c: tokens have their form and differ,
 * the form check refuses every near miss, the digest is SHA-256 and its
 * hex form goes both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devtoken.h"
#include "err.h"

static void test_make(void **state)
{
	char a[DEVTOKEN_LEN + 1], b[DEVTOKEN_LEN + 1];
	int i;

	(void)state;
	for(i = 0; i < 100; i++){
		assert_int_equal(devtoken__make(a), MQC_OK);
		assert_int_equal(devtoken__make(b), MQC_OK);
		assert_int_equal(strlen(a), DEVTOKEN_LEN);
		assert_true(devtoken__is_token(a, strlen(a)));
		assert_true(devtoken__is_token(b, strlen(b)));
		assert_string_not_equal(a, b);
		assert_memory_equal(a, DEVTOKEN_PREFIX, DEVTOKEN_PREFIX_LEN);
	}
}

static void test_form(void **state)
{
	char t[DEVTOKEN_LEN + 2];

	(void)state;
	assert_int_equal(devtoken__make(t), MQC_OK);
	assert_false(devtoken__is_token(t, DEVTOKEN_LEN - 1));
	t[DEVTOKEN_LEN] = 'A';
	t[DEVTOKEN_LEN + 1] = '\0';
	assert_false(devtoken__is_token(t, DEVTOKEN_LEN + 1));
	t[DEVTOKEN_LEN] = '\0';
	t[10] = '=';
	assert_false(devtoken__is_token(t, DEVTOKEN_LEN));
	t[10] = '+';
	assert_false(devtoken__is_token(t, DEVTOKEN_LEN));
	t[10] = 'x';
	t[0] = 'M';
	assert_false(devtoken__is_token(t, DEVTOKEN_LEN));
	assert_false(devtoken__is_token("", 0));
	assert_false(devtoken__is_token("correct horse battery staple", 28));
	assert_true(devtoken__is_token("mqt1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DEVTOKEN_LEN));
	assert_true(devtoken__is_token("mqt1.-_09azAZ-_09azAZ-_09azAZ-_09azAZ-_09azAZ-AB", DEVTOKEN_LEN));
}

static void test_digest(void **state)
{
	unsigned char d[DEVTOKEN_DIGEST_LEN], back[DEVTOKEN_DIGEST_LEN], other[DEVTOKEN_DIGEST_LEN];
	char hex[DEVTOKEN_DIGEST_HEX_LEN + 1];

	(void)state;
	/* FIPS 180-2, appendix B.1. */
	assert_int_equal(devtoken__digest("abc", 3, d), MQC_OK);
	devtoken__to_hex(d, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(devtoken__from_hex(hex, back));
	assert_true(devtoken__digest_eq(d, back));
	assert_int_equal(devtoken__digest("abd", 3, other), MQC_OK);
	assert_false(devtoken__digest_eq(d, other));

	assert_false(devtoken__from_hex(NULL, back));
	assert_false(devtoken__from_hex("", back));
	assert_false(devtoken__from_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", back));
	hex[63] = 'g';
	assert_false(devtoken__from_hex(hex, back));
	hex[63] = '\0';
	assert_false(devtoken__from_hex(hex, back));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
