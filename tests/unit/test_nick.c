/* test_nick.c - the nick rule: which characters a nick may hold
 * (names__nick_valid), which texts look alike (names__nick_key), and the
 * check against the other accounts of a store (common/nick.c), on SQLite
 * and on PostgreSQL (tests/unit/pg_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "err.h"
#include "names.h"
#include "nick.h"
#include "pg_fixture.h"
#include "userdb.h"

#define HASH "$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="

static bool valid(const char *s)
{
	return names__nick_valid(s, strlen(s), NULL, 0);
}

/* The refusal of s, which must be refused. */
static const char *why(const char *s, size_t len)
{
	static char err[200];

	err[0] = '\0';
	if(names__nick_valid(s, len, err, sizeof(err))){
		print_error("accepted: %s\n", s);
		fail();
	}
	return err;
}

/* ---- characters ---- */

static void test_nick_good(void **state)
{
	static const char *const good[] = {
		"a", "Alice", "Alice Liddell", "Bob \xe2\x98\x83", "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9",
		"\xe6\x9d\x8e\xe5\xb0\x8f\xe9\xbe\x8d",            /* CJK */
		"\xd8\xb9\xd9\x84\xd9\x8a",                         /* Arabic letters: right to left, no control */
		"\xe2\x9d\xa4\xef\xb8\x8f Ann",                     /* heart + variation selector */
		"e\xcc\x81" "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81",    /* up to 4 marks on a letter */
		"Anne-Marie O'Neil (away)", "x\xc2\xa0y",            /* a no-break space inside */
		"...", "\xf0\x9f\x98\x80",                           /* an emoji of 4 bytes */
	};
	char max[NICK_MAX_LEN + 1];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(good)/sizeof(good[0]); i++){
		if(!valid(good[i])){
			char err[200];

			names__nick_valid(good[i], strlen(good[i]), err, sizeof(err));
			print_error("refused: %s (%s)\n", good[i], err);
			fail();
		}
	}
	memset(max, 'x', NICK_MAX_LEN);
	max[NICK_MAX_LEN] = '\0';
	assert_true(valid(max));
	/* Length-bounded: a valid prefix of a longer buffer. */
	assert_true(names__nick_valid("Bob\xe2\x80\xae", 3, NULL, 0));
}

/* Every character the rule names, alone in the middle of a nick: refused,
 * with the character and its position in the message. */
static void test_nick_refused_characters(void **state)
{
	static const uint32_t bad[] = {
		/* bidirectional controls */
		0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F,
		0x061C,
		/* invisible and format characters */
		0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x2061, 0x2064, 0x206A, 0x206F,
		0x034F, 0x115F, 0x1160, 0x180E, 0x2028, 0x2029, 0x2800, 0x3164, 0xFFA0, 0xFFF9,
		0xFFFB, 0xFFFE, 0xFFFF, 0xE0001, 0xE0041, 0xE007F,
		/* C0, DEL, C1 */
		0x01, 0x09, 0x0A, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F,
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(bad)/sizeof(bad[0]); i++){
		char s[16], want[32];
		const char *err;
		size_t n = 0;
		uint32_t c = bad[i];

		s[n++] = 'A';
		s[n++] = 'b';
		if(c < 0x80){
			s[n++] = (char)c;
		}else if(c < 0x800){
			s[n++] = (char)(0xC0 | (c >> 6));
			s[n++] = (char)(0x80 | (c & 0x3F));
		}else if(c < 0x10000){
			s[n++] = (char)(0xE0 | (c >> 12));
			s[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[n++] = (char)(0x80 | (c & 0x3F));
		}else{
			s[n++] = (char)(0xF0 | (c >> 18));
			s[n++] = (char)(0x80 | ((c >> 12) & 0x3F));
			s[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[n++] = (char)(0x80 | (c & 0x3F));
		}
		s[n++] = 'c';
		s[n] = '\0';
		assert_true(utf8__valid(s, n));
		snprintf(want, sizeof(want), "U+%04X", (unsigned)c);
		err = why(s, n);
		if(strncmp(err, want, strlen(want)) != 0 || strstr(err, " at character 3 ") == NULL){
			print_error("U+%04X: %s\n", (unsigned)c, err);
			fail();
		}
	}
}

static void test_nick_messages(void **state)
{
	(void)state;
	assert_string_equal(why("Bob\xe2\x80\xae" "cba", 9),
			"U+202E RIGHT-TO-LEFT OVERRIDE at character 4 is a bidirectional control:"
			" it reorders the text around it");
	assert_string_equal(why("\xe2\x81\xa6x", 4),
			"U+2066 LEFT-TO-RIGHT ISOLATE at character 1 is a bidirectional control:"
			" it reorders the text around it");
	assert_string_equal(why("Al\xe2\x80\x8bice", 8), "U+200B ZERO WIDTH SPACE at character 3 is invisible");
	assert_string_equal(why("Al\xc2\xad" "ice", 6), "U+00AD SOFT HYPHEN at character 3 is invisible");
	assert_string_equal(why("\xef\xbb\xbf" "Alice", 8),
			"U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1 is invisible");
	assert_string_equal(why("a\tb", 3), "U+0009 at character 2 is a control character");
	assert_string_equal(why("a\xc2\x85" "b", 4), "U+0085 at character 2 is a control character");
	assert_string_equal(why(" Alice", 6), "U+0020 at character 1 is a space: a nick may not start with one");
	assert_string_equal(why("Alice ", 6), "U+0020 at character 6 is a space: a nick may not end with one");
	assert_string_equal(why("\xc2\xa0" "Alice", 7),
			"U+00A0 at character 1 is a space: a nick may not start with one");
	assert_string_equal(why("Alice\xe3\x80\x80", 8),
			"U+3000 at character 6 is a space: a nick may not end with one");
	assert_string_equal(why(" ", 1), "U+0020 at character 1 is a space: a nick may not start with one");
	assert_string_equal(why("\xcc\x81" "a", 3), "U+0301 at character 1 is a combining mark:"
			" a nick may not start with one (it would join the text before it)");
	assert_string_equal(why("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81", 11),
			"U+0301 at character 6 is one combining mark too many on one character");
	assert_string_equal(why("", 0), "empty: a nick is 1..64 bytes of UTF-8");
	assert_string_equal(why("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 65),
			"65 bytes long: a nick is 1..64 bytes of UTF-8");
	assert_string_equal(why("ab\xff", 3), "byte 3 (0xFF) is not UTF-8");
	assert_string_equal(why("a\xc0\x80", 3), "byte 2 (0xC0) is not UTF-8");        /* overlong */
	assert_string_equal(why("a\xed\xa0\x80", 4), "byte 2 (0xED) is not UTF-8");    /* surrogate */
	assert_string_equal(why("a\xe2\x82", 3), "byte 2 (0xE2) is not UTF-8");        /* cut short */
	assert_string_equal(why("a\xf4\x90\x80\x80", 5), "byte 2 (0xF4) is not UTF-8"); /* past U+10FFFF */
	assert_false(names__nick_valid(NULL, 0, NULL, 0));
}

/* The nick's own UTF-8 decoder agrees with utf8__valid (which the
 * envelope check uses) on every string of 3 interesting bytes: valid
 * UTF-8 is never called otherwise, and what is not is never a nick. */
static void test_nick_utf8_agrees(void **state)
{
	static const unsigned char bytes[] = {
		'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED,
		0xEE, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
	};
	const size_t nb = sizeof(bytes);
	size_t a, b, c;

	(void)state;
	for(a=0; a<nb; a++) for(b=0; b<nb; b++) for(c=0; c<nb; c++){
		/* 'x' before: never a leading mark or space; a cut sequence at the end. */
		char s[4] = {'x', (char)bytes[a], (char)bytes[b], (char)bytes[c]};
		char err[200] = "";
		bool ok = names__nick_valid(s, 4, err, sizeof(err));
		bool utf8 = utf8__valid(s, 4);

		bool says_utf8 = !ok && strstr(err, "is not UTF-8") != NULL;

		/* Another refusal (a control character) may come first. */
		if((utf8 && says_utf8) || (!utf8 && ok)){
			print_error("%02x %02x %02x: utf8__valid %d, nick: %s\n", bytes[a], bytes[b], bytes[c],
					utf8, ok ? "ok" : err);
			fail();
		}
	}
}

/* ---- look-alike keys ---- */

static const char *key(const char *s)
{
	static char out[2][NICK_MAX_LEN + 1];
	static int which;

	which = !which;
	names__nick_key(s, strlen(s), out[which], sizeof(out[which]));
	return out[which];
}

static void test_nick_key_alike(void **state)
{
	static const char *const alike[][2] = {
		{"Alice", "alice"}, {"ALICE", "alice"}, {"A l i c e", "alice"},
		{"alice\xe3\x80\x80x", "alicex"},                      /* ideographic space */
		{"\xd0\x90lice", "alice"},                             /* Cyrillic A */
		{"\xd0\xb0lice", "alice"},                             /* Cyrillic a */
		{"\xce\x91lice", "alice"},                             /* Greek Alpha */
		{"AIice", "alice"}, {"a1ice", "alice"}, {"a|ice", "alice"}, {"al\xc4\xb1" "ce", "alice"},
		{"B0b", "bob"}, {"BOB", "b0b"}, {"rnary", "mary"}, {"vvill", "will"},
		{"\xef\xbd\x82\xef\xbd\x8f\xef\xbd\x82", "bob"},      /* fullwidth */
		{"\xef\xbc\xa2\xef\xbc\xaf\xef\xbc\xa2", "bob"},      /* fullwidth upper case */
		{"\xef\xbc\x8d" "bob", "bob"},                      /* a fullwidth '-' is a '-' */
		{"Alic\xc3\xa9", "alice"}, {"\xc3\x81lice", "alice"}, /* accents */
		{"bob.smith", "Bob Smith"}, {"bob_smith", "BOB-SMITH"},
		{"Bo\xe2\x80\x8b" "b", "bob"},                         /* a stored nick from before the rule */
		{"Bo\xe2\x80\xae" "b", "bob"},
		{"e\xcc\x81", "e"},
		{"\xd0\x92\xd0\x9e\xd0\x92", "bob"},                  /* Cyrillic ВОВ */
		{"\xd0\xa0\xd0\x90\xd0\xa3\xd0\xa0\xd0\x90L", "paypal"}, /* Cyrillic РАУРА + L */
		{"\xce\x92\xce\x9f\xce\x92", "bob"},                  /* Greek ΒΟΒ */
		{"\xd0\xb5\xd0\xb2\xd0\xb5", "ebe"},
		{"\xd0\x91\xd0\xbe\xd1\x80\xd0\xb8\xd1\x81", "\xd0\xb1\xd0\xbe\xd1\x80\xd0\xb8\xd1\x81"}, /* Борис */
		{"\xce\x94\xce\xb7\xce\xbc\xce\xae\xcf\x84\xcf\x81\xce\xb7\xcf\x82",
		 "\xce\xb4\xce\xb7\xce\xbc\xce\xae\xcf\x84\xcf\x81\xce\xb7\xcf\x82"},                       /* Δημήτρης */
	};
	static const char *const apart[][2] = {
		{"alice", "alicia"}, {"bob", "rob"}, {"bob", "bobby"}, {"Anna", "Hanna"},
		{"\xe6\x9d\x8e", "\xe5\xb0\x8f"}, {"mary", "many"}, {"a", "b"},
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(alike)/sizeof(alike[0]); i++){
		if(strcmp(key(alike[i][0]), key(alike[i][1])) != 0){
			print_error("apart: '%s' (%s) and '%s' (%s)\n", alike[i][0], key(alike[i][0]),
					alike[i][1], key(alike[i][1]));
			fail();
		}
	}
	for(i=0; i<sizeof(apart)/sizeof(apart[0]); i++){
		if(strcmp(key(apart[i][0]), key(apart[i][1])) == 0){
			print_error("alike: '%s' and '%s' (%s)\n", apart[i][0], apart[i][1], key(apart[i][0]));
			fail();
		}
	}
	assert_string_equal(key("Alice"), "allce");
	assert_string_equal(key("..._-"), "");
	/* Not UTF-8: the bytes are kept, so junk does not look like a name. */
	assert_string_equal(key("a\xff" "b"), "a\xff" "b");
}

static void test_nick_key_bounds(void **state)
{
	char big[NICK_MAX_LEN + 1], out[NICK_MAX_LEN + 1], small[4];
	size_t i, n;

	(void)state;
	/* Never longer than the text: fullwidth (3 bytes) becomes 1. */
	for(i=0; i+3 <= NICK_MAX_LEN; i += 3) memcpy(big + i, "\xef\xbc\xa1", 3);
	n = names__nick_key(big, i, out, sizeof(out));
	assert_int_equal(n, i / 3);
	/* A small buffer cuts the key, NUL-terminated. */
	n = names__nick_key("abcdef", 6, small, sizeof(small));
	assert_int_equal(n, 3);
	assert_string_equal(small, "abc");
	/* Every byte value, and every pair, in a key of its own length or less. */
	for(i=0; i<256; i++){
		char s[2] = {(char)i, (char)(255 - i)};

		assert_true(names__nick_key(s, 2, out, sizeof(out)) <= 2);
	}
	assert_int_equal(names__nick_key("abc", 3, out, 0), 0);
}

/* ---- against the store ---- */

struct store {
	char dir[64];
	char path[128];
	struct userdb *udb;
};

static int setup_store(void **state)
{
	struct store *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqchat-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/auth.db", f->dir);
	if(be.pg) pg_fresh(f->dir);
	assert_int_equal(userdb__open(f->path, USERDB_CREATE, &f->udb, err, sizeof(err)), MQC_OK);
	assert_int_equal(userdb__begin_write(f->udb), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "alice", USER_KIND_USER, "Alice", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "bob", USER_KIND_USER, "Bobby", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "carol", USER_KIND_USER, "carol", HASH), MQC_OK);
	assert_int_equal(userdb__user_add(f->udb, "archiver", USER_KIND_SERVICE, "archiver", HASH), MQC_OK);
	assert_int_equal(userdb__commit(f->udb), MQC_OK);
	*state = f;
	return 0;
}

static int teardown_store(void **state)
{
	struct store *f = *state;
	char cmd[128];

	userdb__close(f->udb);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* nick__check of a NUL-terminated nick; the message in err. */
static int check(struct store *f, const char *self, const char *nick, bool new_account,
		struct nick_clash *c, char *err)
{
	return nick__check(f->udb, self, nick, strlen(nick), new_account, c, err, 200);
}

static int set(struct store *f, const char *self, const char *nick, char *err)
{
	return nick__set(f->udb, self, nick, strlen(nick), NULL, err, 200);
}

static void test_nick_check_store(void **state)
{
	struct store *f = *state;
	struct nick_clash c;
	struct userdb_user u;
	char err[200];

	/* One's own name and nick, in any case or spacing. */
	assert_int_equal(check(f, "alice", "ALICE", false, &c, err), MQC_OK);
	assert_int_equal(check(f, "alice", "A l i c e", false, &c, err), MQC_OK);
	assert_int_equal(check(f, "alice", "Alice in Wonderland", false, &c, err), MQC_OK);

	/* Another account's name. */
	assert_int_equal(check(f, "alice", "B0B", false, &c, err), MQC_ERR_EXISTS);
	assert_string_equal(c.account, "bob");
	assert_false(c.of_nick);
	assert_false(c.by_name);
	assert_string_equal(err, "the nick 'B0B' looks like the name of account 'bob'");
	/* Another account's nick, with a Cyrillic o. */
	assert_int_equal(check(f, "alice", "B\xd0\xbe" "bby", false, &c, err), MQC_ERR_EXISTS);
	assert_string_equal(c.account, "bob");
	assert_true(c.of_nick);
	assert_string_equal(err, "the nick 'B\xd0\xbe" "bby' looks like the nick of account 'bob'");
	/* The service account's name. */
	assert_int_equal(check(f, "alice", "Archiver", false, &c, err), MQC_ERR_EXISTS);
	assert_string_equal(c.account, "archiver");
	/* Characters come first. */
	assert_int_equal(check(f, "alice", "Bo\xe2\x80\xae" "b", false, &c, err), MQC_ERR_INVAL);
	assert_string_equal(err, "U+202E RIGHT-TO-LEFT OVERRIDE at character 3 is a bidirectional control:"
			" it reorders the text around it");
	assert_int_equal(nick__check(f->udb, "alice", NULL, 0, false, &c, err, sizeof(err)), MQC_ERR_INVAL);
	/* A NUL inside (a JSON string may hold one) is a control character. */
	assert_int_equal(nick__check(f->udb, "alice", "Al\0\xe2\x80\xae", 6, false, NULL, err, sizeof(err)),
			MQC_ERR_INVAL);
	assert_string_equal(err, "U+0000 at character 3 is a control character");

	/* A new account: its name counts as well as its nick. */
	assert_int_equal(check(f, "dave", "Dave", true, &c, err), MQC_OK);
	assert_int_equal(check(f, "b0b", "Robert", true, &c, err), MQC_ERR_EXISTS);
	assert_true(c.by_name);
	assert_string_equal(c.account, "bob");
	assert_string_equal(err, "the name 'b0b' looks like the name of account 'bob'");
	assert_int_equal(check(f, "bobby", "bobby", true, &c, err), MQC_ERR_EXISTS);
	assert_true(c.of_nick);
	assert_true(c.by_name);
	assert_string_equal(err, "the name 'bobby' looks like the nick of account 'bob'");
	assert_int_equal(check(f, "dave", "Bobby", true, &c, err), MQC_ERR_EXISTS);
	assert_true(c.of_nick);
	assert_false(c.by_name);
	assert_int_equal(check(f, "dave", "CAROL", true, &c, err), MQC_ERR_EXISTS);
	assert_string_equal(c.account, "carol");

	/* nick__set stores what passes and nothing else. */
	assert_int_equal(set(f, "alice", "Al", err), MQC_OK);
	assert_int_equal(userdb__user_get(f->udb, "alice", &u), MQC_OK);
	assert_string_equal(u.nick, "Al");
	assert_int_equal(set(f, "alice", "Carol", err), MQC_ERR_EXISTS);
	assert_int_equal(userdb__user_get(f->udb, "alice", &u), MQC_OK);
	assert_string_equal(u.nick, "Al");
	/* Now "Al" is alice's: carol may not take it. */
	assert_int_equal(set(f, "carol", "AL", err), MQC_ERR_EXISTS);
	assert_string_equal(err, "the nick 'AL' looks like the nick of account 'alice'");
	assert_int_equal(set(f, "nobody", "Nobody", err), MQC_ERR_NOTFOUND);
}

/* The store's test again, on PostgreSQL. */
static int run_pg_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nick_check_store, setup_store, teardown_store),
	};

	return cmocka_run_group_tests_name("nick on postgresql", tests, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nick_good),
		cmocka_unit_test(test_nick_refused_characters),
		cmocka_unit_test(test_nick_messages),
		cmocka_unit_test(test_nick_utf8_agrees),
		cmocka_unit_test(test_nick_key_alike),
		cmocka_unit_test(test_nick_key_bounds),
		cmocka_unit_test_setup_teardown(test_nick_check_store, setup_store, teardown_store),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL) != 0;

	return pg_run("nick", run_pg_tests) || failed;
}
