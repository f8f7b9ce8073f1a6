/* test_tui_line.c - client/tui_line.c, the terminal app's input line:
 * what enters it (UTF-8, marks, emoji, nothing invalid or control), moving
 * and deleting by whole characters, words and kills, the history, widths,
 * the shown window (checked for every cursor position against the rules
 * of tui_line.h) and completion. Runs in C.UTF-8: widths are wcwidth()'s. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <cmocka.h>

#include "tui_line.h"

#define E_ACUTE "\xc3\xa9"                 /* é, one code point */
#define COMB_ACUTE "\xcc\x81"              /* U+0301 */
#define COMB_CIRC "\xcc\x82"               /* U+0302 */
#define ZHONG "\xe4\xb8\xad"               /* 中 U+4E2D, width 2 */
#define YA "\xe4\xb8\xab"                  /* 丫 U+4E2B: same first two bytes as 中 */
#define GRIN "\xf0\x9f\x98\x80"            /* U+1F600, width 2 */
#define ZWJ_S "\xe2\x80\x8d"               /* U+200D */
#define FAMILY "\xf0\x9f\x91\xa8" ZWJ_S "\xf0\x9f\x91\xa9" ZWJ_S "\xf0\x9f\x91\xa7"
#define HEART_VS "\xe2\x9d\xa4\xef\xb8\x8f" /* U+2764 U+FE0F */
#define THUMB_TONE "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd" /* U+1F44D U+1F3FD */
#define RI_F "\xf0\x9f\x87\xab"
#define RI_R "\xf0\x9f\x87\xb7"
#define RI_D "\xf0\x9f\x87\xa9"
#define RI_E "\xf0\x9f\x87\xaa"

static void put(struct tui_line *l, const char *s)
{
	assert_true(tui_line__insert(l, s, strlen(s)));
}

static void expect(const struct tui_line *l, const char *text, size_t cur)
{
	assert_string_equal(l->buf, text);
	assert_int_equal(l->len, strlen(text));
	assert_int_equal(l->cur, cur);
}

/* The cursor positions left() takes from the end, in order. */
static void expect_left_stops(struct tui_line *l, const size_t *stops, size_t n)
{
	size_t i;

	tui_line__end(l);
	for(i=0; i<n; i++){
		tui_line__left(l);
		assert_int_equal(l->cur, stops[i]);
	}
	tui_line__left(l);
	assert_int_equal(l->cur, 0);
}

/* Every stop of right() from the start: stops[0..n), n returned. */
static size_t right_stops(const struct tui_line *l, size_t *stops)
{
	struct tui_line c = *l;
	size_t n = 0;

	c.cur = 0;
	while(c.cur < c.len){
		tui_line__right(&c);
		stops[n++] = c.cur;
	}
	return n;
}

/* ---- insertion ---- */

static void test_insert_ascii(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	expect(&l, "", 0);
	put(&l, "hello");
	expect(&l, "hello", 5);
	tui_line__left(&l);
	tui_line__left(&l);
	put(&l, "XY");
	expect(&l, "helXYlo", 5);
	assert_true(tui_line__insert_cp(&l, '!'));
	expect(&l, "helXY!lo", 6);
	tui_line__home(&l);
	assert_true(tui_line__insert_cp(&l, '>'));
	expect(&l, ">helXY!lo", 1);
	/* A length, not a NUL, ends the text. */
	assert_true(tui_line__insert(&l, "abc", 2));
	expect(&l, ">abhelXY!lo", 3);
	tui_line__free(&l);
	tui_line__free(&l);  /* a freed line is an empty one */
	expect(&l, "", 0);
}

static void test_insert_utf8(void **state)
{
	static const size_t stops[] = {6, 3, 1};
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	put(&l, "a" E_ACUTE ZHONG GRIN);
	expect(&l, "a" E_ACUTE ZHONG GRIN, 10);
	expect_left_stops(&l, stops, 3);
	tui_line__free(&l);

	/* The same, a code point at a time (get_wch). */
	tui_line__init(&l);
	assert_true(tui_line__insert_cp(&l, 'a'));
	assert_true(tui_line__insert_cp(&l, 0xE9));
	assert_true(tui_line__insert_cp(&l, 0x4E2D));
	assert_true(tui_line__insert_cp(&l, 0x1F600));
	expect(&l, "a" E_ACUTE ZHONG GRIN, 10);
	tui_line__home(&l);
	tui_line__right(&l);
	assert_int_equal(l.cur, 1);
	tui_line__right(&l);
	assert_int_equal(l.cur, 3);
	tui_line__right(&l);
	assert_int_equal(l.cur, 6);
	tui_line__right(&l);
	assert_int_equal(l.cur, 10);
	tui_line__right(&l);
	assert_int_equal(l.cur, 10);
	/* Backspace and delete take whole code points. */
	tui_line__backspace(&l);
	expect(&l, "a" E_ACUTE ZHONG, 6);
	tui_line__home(&l);
	tui_line__right(&l);
	tui_line__delete(&l);
	expect(&l, "a" ZHONG, 1);
	tui_line__free(&l);
}

static void test_combining_marks(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* a, e+acute, b, e+acute+circumflex */
	put(&l, "ae" COMB_ACUTE "be" COMB_ACUTE COMB_CIRC);
	assert_int_equal(l.len, 10);
	tui_line__home(&l);
	tui_line__right(&l);
	assert_int_equal(l.cur, 1);
	tui_line__right(&l);
	assert_int_equal(l.cur, 4);
	tui_line__right(&l);
	assert_int_equal(l.cur, 5);
	tui_line__right(&l);
	assert_int_equal(l.cur, 10);
	tui_line__left(&l);
	assert_int_equal(l.cur, 5);
	tui_line__left(&l);
	assert_int_equal(l.cur, 4);
	tui_line__left(&l);
	assert_int_equal(l.cur, 1);
	/* Delete under the cursor: the e and its mark. */
	tui_line__delete(&l);
	expect(&l, "abe" COMB_ACUTE COMB_CIRC, 1);
	/* Backspace at the end: the e and both marks. */
	tui_line__end(&l);
	tui_line__backspace(&l);
	expect(&l, "ab", 2);
	/* A mark typed after a letter joins it; the cursor stays after both. */
	assert_true(tui_line__insert_cp(&l, 0x301));
	expect(&l, "ab" COMB_ACUTE, 4);
	tui_line__left(&l);
	assert_int_equal(l.cur, 1);
	/* A mark typed in the middle joins the letter before the cursor. */
	tui_line__set(&l, "ab");
	tui_line__left(&l);
	put(&l, COMB_ACUTE);
	expect(&l, "a" COMB_ACUTE "b", 3);
	tui_line__left(&l);
	assert_int_equal(l.cur, 0);
	/* A mark at the start of the line has no base: it is a character. */
	tui_line__set(&l, COMB_ACUTE "x");
	tui_line__home(&l);
	tui_line__right(&l);
	assert_int_equal(l.cur, 2);
	tui_line__free(&l);
}

static void test_emoji_sequences(void **state)
{
	static const size_t flags[] = {8};
	static const size_t odd_flags[] = {8};
	static const size_t mixed[] = {15, 7, 1};
	static const size_t longer[] = {34, 16, 15, 7, 1};
	static const size_t after_zwj[] = {16, 8};
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* A ZWJ family is one character. */
	put(&l, FAMILY);
	assert_int_equal(l.len, 18);
	tui_line__left(&l);
	assert_int_equal(l.cur, 0);
	tui_line__right(&l);
	assert_int_equal(l.cur, 18);
	tui_line__backspace(&l);
	expect(&l, "", 0);
	put(&l, "x" FAMILY "y");
	tui_line__home(&l);
	tui_line__right(&l);
	tui_line__delete(&l);
	expect(&l, "xy", 1);

	/* Two flags (pairs of regional indicators); three indicators make a
	 * flag and a lone one. */
	tui_line__set(&l, RI_F RI_R RI_D RI_E);
	expect_left_stops(&l, flags, 1);
	tui_line__set(&l, RI_F RI_R RI_D);
	expect_left_stops(&l, odd_flags, 1);
	/* An indicator after a ZWJ joins the character before it; the pairs
	 * start after it. */
	tui_line__set(&l, "a" ZWJ_S RI_F RI_R RI_D);
	expect_left_stops(&l, flags, 1);
	tui_line__set(&l, "a" ZWJ_S RI_F RI_R RI_D RI_E);
	expect_left_stops(&l, after_zwj, 2);
	tui_line__set(&l, RI_F RI_R RI_D);
	tui_line__end(&l);
	tui_line__backspace(&l);
	expect(&l, RI_F RI_R, 8);
	tui_line__backspace(&l);
	expect(&l, "", 0);

	/* A variation selector and a skin tone stay with their emoji. */
	tui_line__set(&l, "a" HEART_VS THUMB_TONE "b" FAMILY "c");
	expect_left_stops(&l, longer, 5);
	tui_line__set(&l, "a" HEART_VS THUMB_TONE "b");
	expect_left_stops(&l, mixed, 3);
	tui_line__end(&l);
	tui_line__left(&l);
	tui_line__backspace(&l);
	expect(&l, "a" HEART_VS "b", 7);

	/* A ZWJ typed before a character joins it to the one before: the cursor
	 * moves past the joined character, never inside it. */
	tui_line__set(&l, "\xf0\x9f\x91\xa8\xf0\x9f\x91\xa9");
	tui_line__left(&l);
	assert_int_equal(l.cur, 4);
	put(&l, ZWJ_S);
	assert_int_equal(l.cur, 11);
	tui_line__left(&l);
	assert_int_equal(l.cur, 0);
	/* And a regional indicator before a lone one pairs with it. */
	tui_line__set(&l, "x" RI_R);
	tui_line__left(&l);
	put(&l, RI_F);
	expect(&l, "x" RI_F RI_R, 9);
	tui_line__free(&l);
}

/* right() and left() find characters each their own way (left() never
 * rescans from the start): on lines made of every kind of piece, typed one
 * piece at a time anywhere, they agree, and the cursor is always at a
 * character start. */
static void test_left_right_agree(void **state)
{
	static const char *const pieces[] = {
		"a", " ", E_ACUTE, COMB_ACUTE, ZWJ_S, RI_F, RI_R, ZHONG, GRIN,
		"\xef\xb8\x8f", "\xf0\x9f\x8f\xbd", FAMILY, ",",
	};
	const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
	struct tui_line l;
	size_t stops[128], n, i, k, pos;
	uint32_t seed = 12345;
	int round, j, len;

	(void)state;
	tui_line__init(&l);
	for(round=0; round<3000; round++){
		tui_line__clear(&l);
		seed = seed * 1103515245u + 12345u;
		len = (int)(seed >> 16) % 10 + 1;
		for(j=0; j<len; j++){
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 16) % npieces;
			seed = seed * 1103515245u + 12345u;
			/* somewhere in the line: a few lefts from the end */
			tui_line__end(&l);
			for(i=0; i<(seed >> 16) % 3; i++) tui_line__left(&l);
			pos = l.cur;
			put(&l, pieces[k]);
			assert_true(l.cur >= pos + strlen(pieces[k]));
			n = right_stops(&l, stops);
			for(i=0; i<n && stops[i] != l.cur; i++);
			assert_true(l.cur == 0 || i < n);
		}
		n = right_stops(&l, stops);
		tui_line__end(&l);
		for(i=n; i-- > 0;){
			assert_int_equal(l.cur, stops[i]);
			tui_line__left(&l);
		}
		assert_int_equal(l.cur, 0);
		/* Backspace from the end takes exactly the last character. */
		tui_line__end(&l);
		for(i=n; i-- > 0;){
			assert_int_equal(l.len, stops[i]);
			tui_line__backspace(&l);
		}
		expect(&l, "", 0);
	}
	tui_line__free(&l);
}

static void test_insert_dropped(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* invalid bytes, a cut sequence, an overlong NUL, a surrogate, past U+10FFFF */
	put(&l, "a\xff" "b\x80" "c\xe4\xb8" "d\xc0\x80" "e\xed\xa0\x80" "f\xf4\x90\x80\x80" "g\xf8\x88\x80\x80\x80" "h\xc3");
	expect(&l, "abcdefgh", 8);
	tui_line__clear(&l);
	/* C0 (an escape sequence keeps only its printable tail), DEL, C1, NUL */
	assert_true(tui_line__insert(&l, "a\x1b[A\x7f\x01\xc2\x85\xc2\x9b" "b\0c", 13));
	expect(&l, "a[Abc", 5);
	tui_line__clear(&l);
	/* tab, CR, LF to spaces; a CR LF pair to one */
	put(&l, "a\tb\nc\rd\r\ne");
	expect(&l, "a b c d e", 9);
	tui_line__clear(&l);
	/* Nothing kept: accepted, nothing changes. */
	put(&l, "xy");
	tui_line__left(&l);
	put(&l, "\x1b\xff\x01");
	assert_true(tui_line__insert(&l, "", 0));
	expect(&l, "xy", 1);
	/* code points */
	assert_true(tui_line__insert_cp(&l, 0x1b));
	assert_true(tui_line__insert_cp(&l, 0x7f));
	assert_true(tui_line__insert_cp(&l, 0x9b));
	assert_true(tui_line__insert_cp(&l, 0));
	assert_true(tui_line__insert_cp(&l, 0xD800));
	assert_true(tui_line__insert_cp(&l, 0x110000));
	expect(&l, "xy", 1);
	assert_true(tui_line__insert_cp(&l, '\t'));
	assert_true(tui_line__insert_cp(&l, '\n'));
	assert_true(tui_line__insert_cp(&l, 0x10FFFD));
	expect(&l, "x  \xf4\x8f\xbf\xbdy", 7);
	tui_line__free(&l);
}

static void test_insert_max(void **state)
{
	struct tui_line l;
	char *big = malloc(TUI_LINE_MAX + 2);
	size_t i;

	(void)state;
	assert_non_null(big);
	tui_line__init(&l);
	/* One byte too many in one paste: all refused. */
	memset(big, 'a', TUI_LINE_MAX + 1);
	assert_false(tui_line__insert(&l, big, TUI_LINE_MAX + 1));
	expect(&l, "", 0);
	/* What counts is what is kept: dropped bytes do not. */
	big[0] = '\x01';
	assert_true(tui_line__insert(&l, big, TUI_LINE_MAX + 1));
	assert_int_equal(l.len, TUI_LINE_MAX);
	assert_false(tui_line__insert(&l, "b", 1));
	assert_false(tui_line__insert_cp(&l, 'b'));
	assert_int_equal(l.len, TUI_LINE_MAX);
	/* A two-byte character does not fit in the last byte. */
	tui_line__backspace(&l);
	assert_false(tui_line__insert(&l, E_ACUTE, 2));
	assert_false(tui_line__insert_cp(&l, 0xE9));
	assert_int_equal(l.len, TUI_LINE_MAX - 1);
	assert_true(tui_line__insert(&l, "b", 1));
	assert_int_equal(l.len, TUI_LINE_MAX);
	assert_int_equal(l.buf[TUI_LINE_MAX - 1], 'b');
	assert_int_equal(l.buf[TUI_LINE_MAX], '\0');
	tui_line__free(&l);

	/* set() of a longer text keeps what fits, whole code points. */
	tui_line__init(&l);
	big[0] = 'a';
	for(i=1; i + 1 < TUI_LINE_MAX + 2; i += 2) memcpy(big + i, E_ACUTE, 2);
	big[TUI_LINE_MAX + 1] = '\0';
	tui_line__set(&l, big);
	assert_int_equal(l.len, TUI_LINE_MAX - 1);
	assert_int_equal(l.cur, TUI_LINE_MAX - 1);
	assert_memory_equal(l.buf, big, TUI_LINE_MAX - 1);
	tui_line__free(&l);
	free(big);
}

/* ---- moving and deleting ---- */

static void test_moves(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	tui_line__left(&l);
	tui_line__right(&l);
	tui_line__home(&l);
	tui_line__end(&l);
	tui_line__backspace(&l);
	tui_line__delete(&l);
	tui_line__word_left(&l);
	tui_line__word_right(&l);
	tui_line__kill_word(&l);
	tui_line__kill_start(&l);
	tui_line__kill_end(&l);
	expect(&l, "", 0);
	put(&l, "abc");
	tui_line__right(&l);
	assert_int_equal(l.cur, 3);
	tui_line__home(&l);
	tui_line__left(&l);
	assert_int_equal(l.cur, 0);
	tui_line__backspace(&l);
	expect(&l, "abc", 0);
	tui_line__end(&l);
	tui_line__delete(&l);
	expect(&l, "abc", 3);
	tui_line__home(&l);
	tui_line__delete(&l);
	expect(&l, "bc", 0);
	tui_line__free(&l);
}

static void test_word_moves(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	put(&l, "hello, world  foo");
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 14);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 7);
	tui_line__left(&l);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 0);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 0);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 5);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 12);
	tui_line__right(&l);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 17);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 17);
	/* From inside a word: to its start and its end. */
	tui_line__set(&l, "one two");
	tui_line__home(&l);
	tui_line__right(&l);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 3);
	tui_line__left(&l);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 0);
	/* Letters beyond ASCII, with marks, and CJK are word characters. */
	tui_line__set(&l, "caf" E_ACUTE " cafe" COMB_ACUTE " " ZHONG ZHONG "!x");
	tui_line__home(&l);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 5);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 12);
	tui_line__word_right(&l);
	assert_int_equal(l.cur, 19);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 13);
	tui_line__word_left(&l);
	assert_int_equal(l.cur, 6);
	tui_line__free(&l);
}

static void test_kills(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* Ctrl-W: the word and the spaces between it and the cursor. */
	put(&l, "/msg bob  ");
	tui_line__kill_word(&l);
	expect(&l, "/msg ", 5);
	tui_line__kill_word(&l);
	expect(&l, "", 0);
	/* Words are separated by spaces only. */
	tui_line__set(&l, "see you.");
	tui_line__kill_word(&l);
	expect(&l, "see ", 4);
	/* In the middle: what is after the cursor stays. */
	tui_line__set(&l, "one two three");
	tui_line__word_left(&l);
	tui_line__left(&l);
	tui_line__kill_word(&l);
	expect(&l, "one  three", 4);
	tui_line__home(&l);
	tui_line__kill_word(&l);
	expect(&l, "one  three", 0);
	/* Multi-byte words. */
	tui_line__set(&l, "x " ZHONG "e" COMB_ACUTE GRIN);
	tui_line__kill_word(&l);
	expect(&l, "x ", 2);
	/* Ctrl-U, Ctrl-K */
	tui_line__set(&l, "hello world");
	tui_line__word_left(&l);
	tui_line__kill_start(&l);
	expect(&l, "world", 0);
	tui_line__right(&l);
	tui_line__right(&l);
	tui_line__kill_end(&l);
	expect(&l, "wo", 2);
	tui_line__kill_end(&l);
	expect(&l, "wo", 2);
	tui_line__set(&l, ZHONG "e" COMB_ACUTE "z");
	tui_line__left(&l);
	tui_line__kill_start(&l);
	expect(&l, "z", 0);
	tui_line__free(&l);
}

static void test_clear_set(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	tui_line__set(&l, "abc");
	expect(&l, "abc", 3);
	tui_line__set(&l, "a\x1b" ZHONG);
	expect(&l, "a" ZHONG, 4);
	tui_line__clear(&l);
	expect(&l, "", 0);
	tui_line__set(&l, "");
	expect(&l, "", 0);
	tui_line__free(&l);
}

/* ---- history ---- */

static void take_expect(struct tui_line *l, const char *text)
{
	char *s = tui_line__take(l);

	assert_non_null(s);
	assert_string_equal(s, text);
	free(s);
	expect(l, "", 0);
}

static void test_history_browse(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* An empty history: up and down do nothing. */
	put(&l, "x");
	tui_line__hist_prev(&l);
	tui_line__hist_next(&l);
	expect(&l, "x", 1);
	tui_line__clear(&l);

	put(&l, "one");
	take_expect(&l, "one");
	put(&l, "two");
	take_expect(&l, "two");
	put(&l, "three");
	take_expect(&l, "three");
	assert_int_equal(l.nhist, 3);

	put(&l, "draft");
	tui_line__left(&l);
	tui_line__hist_prev(&l);
	expect(&l, "three", 5);
	tui_line__hist_prev(&l);
	expect(&l, "two", 3);
	tui_line__hist_prev(&l);
	expect(&l, "one", 3);
	tui_line__hist_prev(&l);
	expect(&l, "one", 3);
	tui_line__hist_next(&l);
	expect(&l, "two", 3);
	tui_line__hist_next(&l);
	expect(&l, "three", 5);
	tui_line__hist_next(&l);
	expect(&l, "draft", 5);
	tui_line__hist_next(&l);
	expect(&l, "draft", 5);
	/* The draft is taken again when browsing starts again. */
	tui_line__kill_word(&l);
	tui_line__hist_prev(&l);
	tui_line__hist_next(&l);
	expect(&l, "", 0);

	/* A recalled line, edited and sent, is a new entry; the history
	 * entry it came from is unchanged. */
	tui_line__hist_prev(&l);
	tui_line__hist_prev(&l);
	put(&l, "!");
	take_expect(&l, "two!");
	assert_int_equal(l.nhist, 4);
	assert_string_equal(l.hist[1], "two");
	assert_string_equal(l.hist[3], "two!");
	tui_line__hist_prev(&l);
	expect(&l, "two!", 4);
	/* clear() stops browsing: down does nothing, up starts from the newest. */
	tui_line__hist_prev(&l);
	tui_line__clear(&l);
	tui_line__hist_next(&l);
	expect(&l, "", 0);
	tui_line__hist_prev(&l);
	expect(&l, "two!", 4);
	tui_line__free(&l);
}

static void test_history_dups_empty(void **state)
{
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	take_expect(&l, "");
	assert_int_equal(l.nhist, 0);
	put(&l, "a");
	take_expect(&l, "a");
	put(&l, "a");
	take_expect(&l, "a");
	assert_int_equal(l.nhist, 1);
	put(&l, "b");
	take_expect(&l, "b");
	put(&l, "a");
	take_expect(&l, "a");
	assert_int_equal(l.nhist, 3);
	take_expect(&l, "");
	assert_int_equal(l.nhist, 3);
	/* Recalling the newest and sending it again adds nothing. */
	tui_line__hist_prev(&l);
	take_expect(&l, "a");
	assert_int_equal(l.nhist, 3);
	tui_line__free(&l);
}

static void test_history_cap(void **state)
{
	struct tui_line l;
	char s[32];
	int i;

	(void)state;
	tui_line__init(&l);
	for(i=0; i<TUI_LINE_HISTORY + 5; i++){
		snprintf(s, sizeof(s), "line %d", i);
		put(&l, s);
		take_expect(&l, s);
	}
	assert_int_equal(l.nhist, TUI_LINE_HISTORY);
	assert_string_equal(l.hist[0], "line 5");
	snprintf(s, sizeof(s), "line %d", TUI_LINE_HISTORY + 4);
	assert_string_equal(l.hist[TUI_LINE_HISTORY - 1], s);
	for(i=0; i<TUI_LINE_HISTORY + 3; i++) tui_line__hist_prev(&l);
	expect(&l, "line 5", 6);
	for(i=0; i<TUI_LINE_HISTORY; i++) tui_line__hist_next(&l);
	expect(&l, "", 0);
	tui_line__free(&l);
}

/* ---- width ---- */

static int width(const char *s)
{
	return tui_line__width(s, strlen(s));
}

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(width(""), 0);
	assert_int_equal(width("abc"), 3);
	assert_int_equal(width(E_ACUTE), 1);
	assert_int_equal(width("e" COMB_ACUTE COMB_CIRC), 1);
	assert_int_equal(width(ZHONG ZHONG), 4);
	assert_int_equal(tui_line__width(ZHONG ZHONG, 3), 2);
	assert_int_equal(width(GRIN), 2);
	assert_int_equal(width(HEART_VS), 1);
	assert_int_equal(width(RI_F RI_R), 2);
	/* The sum of its code points' widths, as the header says. */
	assert_int_equal(width(FAMILY), 6);
	/* What wcwidth gives -1 for, and invalid bytes: one column each. */
	assert_int_equal(width("\x01"), 1);
	assert_int_equal(width("a\xff" "b"), 3);
	assert_int_equal(tui_line__width(ZHONG, 2), 2);
}

/* ---- the view ---- */

/* Every character start of the line, as right() finds them: starts[p]. */
static bool *char_starts(const struct tui_line *l)
{
	struct tui_line c = *l;
	bool *starts = calloc(l->len + 1, sizeof(*starts));

	assert_non_null(starts);
	c.cur = 0;
	for(;;){
		starts[c.cur] = true;
		if(c.cur == c.len) break;
		tui_line__right(&c);
	}
	return starts;
}

/* The view at the line's cursor, against every rule of tui_line.h. */
static int check_view(struct tui_line *l, int cols)
{
	bool *starts = char_starts(l);
	size_t start = 9999999, end = 9999999, next;
	int col, cw;
	struct tui_line c;

	col = tui_line__view(l, cols, &start, &end);
	assert_true(start <= l->cur);
	assert_true(end <= l->len);
	assert_true(starts[start]);
	assert_true(starts[end]);
	assert_int_equal(l->scroll, start);
	assert_in_range(col, 0, cols - 1);
	assert_int_equal(col, tui_line__width(l->buf + start, l->cur - start));
	assert_true(tui_line__width(l->buf + start, end - start) <= cols);
	if(l->cur < l->len){
		c = *l;
		tui_line__right(&c);
		next = c.cur;
		cw = tui_line__width(l->buf + l->cur, next - l->cur);
		if(cw <= cols - col){
			/* The character under the cursor is shown whole. */
			assert_true(next <= end);
		}else{
			assert_int_equal(end, l->cur);
			assert_true(col == 0 || cw > 2);
		}
		if(cw == 2) assert_true(col + 2 <= cols);
	}else{
		assert_int_equal(end, l->len);
	}
	/* What is left out on the right did not fit. */
	if(end < l->len){
		c = *l;
		c.cur = end;
		tui_line__right(&c);
		assert_true(tui_line__width(l->buf + start, c.cur - start) > cols);
	}
	/* Nothing is hidden on the left when the end of the line (and the
	 * cursor's cell after it) would fit with one more character. */
	if(start > 0){
		c = *l;
		c.cur = start;
		tui_line__left(&c);
		assert_true(tui_line__width(l->buf + c.cur, l->len - c.cur) + 1 > cols);
	}
	free(starts);
	return col;
}

/* check_view at every cursor position: right from the start, then left
 * from the end, then home and end. */
static void sweep(struct tui_line *l, int cols)
{
	size_t last;

	tui_line__home(l);
	check_view(l, cols);
	do{
		last = l->cur;
		tui_line__right(l);
		check_view(l, cols);
	}while(l->cur != last);
	do{
		last = l->cur;
		tui_line__left(l);
		check_view(l, cols);
	}while(l->cur != last);
	tui_line__end(l);
	check_view(l, cols);
	tui_line__home(l);
	check_view(l, cols);
}

static void test_view_short(void **state)
{
	struct tui_line l;
	size_t start, end;

	(void)state;
	tui_line__init(&l);
	assert_int_equal(tui_line__view(&l, 4, &start, &end), 0);
	assert_int_equal(start, 0);
	assert_int_equal(end, 0);
	put(&l, "hello");
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 5);
	assert_int_equal(start, 0);
	assert_int_equal(end, 5);
	tui_line__left(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 4);
	/* Exactly full with the cursor cell at the end. */
	assert_int_equal(tui_line__view(&l, 6, &start, &end), 4);
	tui_line__end(&l);
	assert_int_equal(tui_line__view(&l, 6, &start, &end), 5);
	assert_int_equal(start, 0);
	assert_int_equal(end, 5);
	/* Wide characters count two columns. */
	tui_line__set(&l, ZHONG "a" GRIN);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 5);
	assert_int_equal(end, l.len);
	tui_line__left(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 3);
	tui_line__free(&l);
}

static void test_view_scroll(void **state)
{
	struct tui_line l;
	size_t start, end;
	int col, i;

	(void)state;
	tui_line__init(&l);
	put(&l, "abcdefghijklmnopqrstuvwxyz");
	/* At the end: the tail, the cursor in the last column. */
	col = tui_line__view(&l, 10, &start, &end);
	assert_int_equal(col, 9);
	assert_int_equal(start, 17);
	assert_int_equal(end, 26);
	/* Left inside the field: no scrolling. */
	for(i=0; i<9; i++) tui_line__left(&l);
	col = tui_line__view(&l, 10, &start, &end);
	assert_int_equal(col, 0);
	assert_int_equal(start, 17);
	/* One more: scrolls left, with context on the cursor's left. */
	tui_line__left(&l);
	col = tui_line__view(&l, 10, &start, &end);
	assert_int_equal(l.cur, 16);
	assert_true(col >= 1 && col <= 3);
	assert_int_equal(start, 16 - (size_t)col);
	assert_int_equal(end, start + 10);
	/* Home: the start. */
	tui_line__home(&l);
	col = tui_line__view(&l, 10, &start, &end);
	assert_int_equal(col, 0);
	assert_int_equal(start, 0);
	assert_int_equal(end, 10);
	/* Right to the edge and past it: scrolls one at a time. */
	for(i=0; i<9; i++) tui_line__right(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 9);
	assert_int_equal(start, 0);
	tui_line__right(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 9);
	assert_int_equal(start, 1);
	/* Deleting from the end brings the hidden start back into view. */
	tui_line__end(&l);
	tui_line__view(&l, 10, &start, &end);
	for(i=0; i<20; i++) tui_line__backspace(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 6);
	assert_int_equal(start, 0);
	assert_int_equal(end, 6);
	/* So does a shorter text set() while scrolled, and kill_start. */
	tui_line__set(&l, "abcdefghijklmnopqrstuvwxyz");
	tui_line__view(&l, 10, &start, &end);
	tui_line__set(&l, "abc");
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 3);
	assert_int_equal(start, 0);
	tui_line__set(&l, "abcdefghijklmnopqrstuvwxyz");
	tui_line__view(&l, 10, &start, &end);
	tui_line__left(&l);
	tui_line__kill_start(&l);
	assert_int_equal(tui_line__view(&l, 10, &start, &end), 0);
	assert_int_equal(start, 0);
	assert_int_equal(end, 1);
	sweep(&l, 10);
	tui_line__set(&l, "abcdefghijklmnopqrstuvwxyz");
	sweep(&l, 10);
	sweep(&l, 4);
	sweep(&l, 27);
	tui_line__free(&l);
}

static void test_view_wide(void **state)
{
	struct tui_line l;
	size_t start, end;
	int i;

	(void)state;
	tui_line__init(&l);
	/* An odd field of wide characters: the one that would need the last
	 * column and one more is left out. */
	for(i=0; i<20; i++) put(&l, ZHONG);
	tui_line__home(&l);
	assert_int_equal(tui_line__view(&l, 9, &start, &end), 0);
	assert_int_equal(start, 0);
	assert_int_equal(end, 12);
	tui_line__set(&l, "a" ZHONG ZHONG ZHONG);
	tui_line__home(&l);
	assert_int_equal(tui_line__view(&l, 4, &start, &end), 0);
	assert_int_equal(end, 4);
	/* The cursor on a wide character at the edge: scrolled so it shows. */
	tui_line__right(&l);
	tui_line__right(&l);
	assert_int_equal(tui_line__view(&l, 4, &start, &end), 2);
	assert_int_equal(start, 1);
	assert_int_equal(end, 7);
	/* A wider field: the scroll stays while the cursor is in view. */
	assert_int_equal(tui_line__view(&l, 5, &start, &end), 2);
	assert_int_equal(start, 1);
	assert_int_equal(end, 7);
	tui_line__home(&l);
	tui_line__view(&l, 5, &start, &end);
	tui_line__right(&l);
	tui_line__right(&l);
	assert_int_equal(tui_line__view(&l, 5, &start, &end), 3);
	assert_int_equal(start, 0);
	assert_int_equal(end, 7);

	for(i=0; i<20; i++) put(&l, ZHONG);
	sweep(&l, 9);
	sweep(&l, 4);
	sweep(&l, 5);
	tui_line__set(&l, "a" ZHONG "b" GRIN "cc" ZHONG ZHONG "d" GRIN GRIN "e" ZHONG "f");
	sweep(&l, 4);
	sweep(&l, 5);
	sweep(&l, 7);
	sweep(&l, 80);
	tui_line__free(&l);
}

static void test_view_characters(void **state)
{
	struct tui_line l;
	size_t start, end;
	int i;

	(void)state;
	tui_line__init(&l);
	/* Marks and sequences are never split by the view's edges. */
	for(i=0; i<30; i++) put(&l, "e" COMB_ACUTE COMB_CIRC);
	sweep(&l, 10);
	sweep(&l, 4);
	tui_line__clear(&l);
	for(i=0; i<10; i++) put(&l, "x" HEART_VS THUMB_TONE RI_F RI_R "y" FAMILY);
	sweep(&l, 4);
	sweep(&l, 6);
	sweep(&l, 11);
	sweep(&l, 40);
	/* A character wider than the field (the family sums to 6) can never
	 * show: it is left out, the cursor on the cell where it starts. */
	tui_line__set(&l, "ab" FAMILY "cd");
	tui_line__home(&l);
	tui_line__right(&l);
	tui_line__right(&l);
	assert_int_equal(tui_line__view(&l, 4, &start, &end), 2);
	assert_int_equal(start, 0);
	assert_int_equal(end, 2);
	/* A scroll inside a character (the text changed under it) is moved
	 * back to that character's start. */
	tui_line__clear(&l);
	for(i=0; i<10; i++) put(&l, ZHONG "e" COMB_ACUTE);
	tui_line__home(&l);
	tui_line__right(&l);
	tui_line__right(&l);
	l.scroll = 4;  /* the mark of the first e */
	assert_int_equal(check_view(&l, 6), 1);
	assert_int_equal(l.scroll, 3);
	l.scroll = 1;  /* inside the first 中 */
	assert_int_equal(check_view(&l, 6), 3);
	assert_int_equal(l.scroll, 0);
	tui_line__end(&l);
	l.scroll = l.len + 10;
	check_view(&l, 6);
	tui_line__free(&l);
}

/* ---- completion ---- */

static void word(const struct tui_line *l, const char *want, bool want_first)
{
	char out[64];
	bool first = !want_first;

	tui_line__word(l, out, sizeof(out), &first);
	assert_string_equal(out, want);
	assert_int_equal(first, want_first);
}

static void test_word(void **state)
{
	struct tui_line l;
	char out[5];
	bool first;

	(void)state;
	tui_line__init(&l);
	word(&l, "", true);
	put(&l, "/he");
	word(&l, "/he", true);
	tui_line__set(&l, "  /he");
	word(&l, "/he", true);
	tui_line__set(&l, "/msg bo");
	word(&l, "bo", false);
	tui_line__set(&l, "/msg ");
	word(&l, "", false);
	tui_line__set(&l, "hi bob there");
	tui_line__word_left(&l);
	tui_line__left(&l);
	tui_line__left(&l);
	word(&l, "bo", false);
	tui_line__home(&l);
	word(&l, "", true);
	tui_line__right(&l);
	word(&l, "h", true);
	/* A short buffer: cut at a code point start. */
	tui_line__set(&l, ZHONG ZHONG);
	tui_line__word(&l, out, sizeof(out), &first);
	assert_string_equal(out, ZHONG);
	assert_true(first);
	tui_line__word(&l, out, 1, NULL);
	assert_string_equal(out, "");
	tui_line__free(&l);
}

static int complete(struct tui_line *l, const char *const *cands)
{
	int n = 0;

	while(cands[n]) n++;
	return tui_line__complete(l, cands, n);
}

static void test_complete(void **state)
{
	static const char *const cmds[] = {
		"/help", "/quit", "/reply", "/react", "/rooms", "/room", "/reconnect", NULL
	};
	static const char *const names[] = {"bob", "bobby", "carol", "Bea", "bob", NULL};
	static const char *const cjk[] = {"x" ZHONG, "x" YA, NULL};
	struct tui_line l;

	(void)state;
	tui_line__init(&l);
	/* One match: the word becomes it, and a space follows. */
	put(&l, "/he");
	assert_int_equal(complete(&l, cmds), 1);
	expect(&l, "/help ", 6);
	/* Several: their longest common prefix, no space. */
	tui_line__set(&l, "/r");
	assert_int_equal(complete(&l, cmds), 5);
	expect(&l, "/r", 2);
	tui_line__set(&l, "/ro");
	assert_int_equal(complete(&l, cmds), 2);
	expect(&l, "/room", 5);
	assert_int_equal(complete(&l, cmds), 2);
	expect(&l, "/room", 5);
	tui_line__set(&l, "/rep");
	assert_int_equal(complete(&l, cmds), 1);
	expect(&l, "/reply ", 7);
	/* None: nothing changes. */
	tui_line__set(&l, "/x");
	assert_int_equal(complete(&l, cmds), 0);
	expect(&l, "/x", 2);
	assert_int_equal(tui_line__complete(&l, cmds, 0), 0);
	expect(&l, "/x", 2);
	/* Names; case matters; a name given twice counts once. */
	tui_line__set(&l, "/msg b");
	assert_int_equal(complete(&l, names), 2);
	expect(&l, "/msg bob", 8);
	tui_line__set(&l, "/msg c");
	assert_int_equal(complete(&l, names), 1);
	expect(&l, "/msg carol ", 11);
	tui_line__set(&l, "/msg B");
	assert_int_equal(complete(&l, names), 1);
	expect(&l, "/msg Bea ", 9);
	tui_line__set(&l, "/msg bobb");
	assert_int_equal(complete(&l, names), 1);
	expect(&l, "/msg bobby ", 11);
	tui_line__set(&l, "/msg z");
	assert_int_equal(complete(&l, names), 0);
	/* An empty word matches everything. */
	tui_line__set(&l, "/msg ");
	assert_int_equal(complete(&l, names), 4);
	expect(&l, "/msg ", 5);
	/* In the middle of a line: the text after it stays, and its space
	 * serves as the one after the match. */
	tui_line__set(&l, "hi ca there");
	tui_line__word_left(&l);
	tui_line__left(&l);
	assert_int_equal(complete(&l, names), 1);
	expect(&l, "hi carol there", 9);
	tui_line__set(&l, "hi ca,");
	tui_line__left(&l);
	assert_int_equal(complete(&l, names), 1);
	expect(&l, "hi carol ,", 9);
	/* The common prefix never ends inside a code point: 中 and 丫 share
	 * two bytes. */
	tui_line__set(&l, "x");
	assert_int_equal(complete(&l, cjk), 2);
	expect(&l, "x", 1);
	tui_line__set(&l, "x" ZHONG);
	assert_int_equal(complete(&l, cjk), 1);
	expect(&l, "x" ZHONG " ", 5);
	tui_line__free(&l);
}

static void test_complete_max(void **state)
{
	static const char *const names[] = {"bob", NULL};
	struct tui_line l;
	char *big = malloc(TUI_LINE_MAX + 1);

	(void)state;
	assert_non_null(big);
	tui_line__init(&l);
	/* "ob" and the space need three bytes; two are left. */
	memset(big, 'x', TUI_LINE_MAX - 4);
	memcpy(big + TUI_LINE_MAX - 4, " b", 3);
	tui_line__set(&l, big);
	assert_int_equal(l.len, TUI_LINE_MAX - 2);
	assert_int_equal(complete(&l, names), 0);
	assert_int_equal(l.len, TUI_LINE_MAX - 2);
	/* With three, it fits exactly. */
	tui_line__home(&l);
	tui_line__delete(&l);
	tui_line__end(&l);
	assert_int_equal(complete(&l, names), 1);
	assert_int_equal(l.len, TUI_LINE_MAX);
	assert_memory_equal(l.buf + TUI_LINE_MAX - 5, " bob ", 5);
	tui_line__free(&l);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_ascii),
		cmocka_unit_test(test_insert_utf8),
		cmocka_unit_test(test_combining_marks),
		cmocka_unit_test(test_emoji_sequences),
		cmocka_unit_test(test_left_right_agree),
		cmocka_unit_test(test_insert_dropped),
		cmocka_unit_test(test_insert_max),
		cmocka_unit_test(test_moves),
		cmocka_unit_test(test_word_moves),
		cmocka_unit_test(test_kills),
		cmocka_unit_test(test_clear_set),
		cmocka_unit_test(test_history_browse),
		cmocka_unit_test(test_history_dups_empty),
		cmocka_unit_test(test_history_cap),
		cmocka_unit_test(test_width),
		cmocka_unit_test(test_view_short),
		cmocka_unit_test(test_view_scroll),
		cmocka_unit_test(test_view_wide),
		cmocka_unit_test(test_view_characters),
		cmocka_unit_test(test_word),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_complete_max),
	};

	/* Widths and decoding are the locale's: without UTF-8 nothing here
	 * means anything. */
	if(setlocale(LC_ALL, "C.UTF-8") == NULL || wcwidth(0x4E2D) != 2){
		fprintf(stderr, "test_tui_line: cannot set the C.UTF-8 locale (or wcwidth is not UTF-8's)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
