/* test_cli_token.c - the CLI's random tokens (invite codes, service
 * passwords): base64url of the asked length, and never a leading '-',
 * which getopt would take for an option (`invite revoke -Xy...` failed
 * with "unknown option" for 1 code in 64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

/* 20,000 tokens: with a leading '-' allowed, about 312 would have one. */
static void test_no_leading_dash(void **state)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char tok[32];
	unsigned first[64] = {0};
	int i;

	(void)state;
	for(i=0; i<20000; i++){
		const char *at;

		assert_int_equal(cli__random_token(16, tok, sizeof(tok)), CLI_OK);
		assert_int_equal(strlen(tok), 22);
		assert_int_equal(strspn(tok, alphabet), 22);
		if(tok[0] == '-') fail_msg("token %s starts with '-'", tok);
		at = strchr(alphabet, tok[0]);
		first[at - alphabet]++;
	}
	/* The other 63 first characters all still come up ('-' inside and
	 * '_' first included). */
	for(i=0; i<64; i++){
		if(alphabet[i] != '-' && first[i] == 0) fail_msg("no token starts with %c", alphabet[i]);
	}
}

static void test_sizes(void **state)
{
	char tok[64];

	(void)state;
	assert_int_equal(cli__random_token(24, tok, sizeof(tok)), CLI_OK);     /* service password */
	assert_int_equal(strlen(tok), 32);
	assert_int_not_equal(cli__random_token(24, tok, 32), CLI_OK);          /* no room */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_leading_dash),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
