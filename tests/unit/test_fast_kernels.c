/* test_fast_kernels.c - every fast kernel against its plain twin.
 *
 * The SIMD and bit-trick kernels of common/fast_scan.h,
 * common/fast_digits.h, plugin/fast_topic.h and plugin/snapshot.h each
 * sit beside a plain version written byte by byte from the same rule
 * (docs/CONTRIBUTING.md, "Fast paths"). Here both get the same inputs and
 * must give the same answers: every length a kernel takes, every position
 * of an interesting byte, every byte value, many pseudo-random buffers
 * (a fixed seed, so a failure repeats), and buffers that end at the end of
 * a readable page, with an unreadable one after it, so a kernel that reads
 * one byte too far crashes here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "fast_digits.h"
#include "fast_scan.h"
#include "fast_topic.h"
#include "names.h"
#include "plugin.h"
#include "snapshot.h"

#define RANDOM_ROUNDS 20000

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A byte drawn mostly from alphabet (NUL-terminated), sometimes any byte. */
static unsigned char pick(const char *alphabet)
{
	uint64_t r = rng();

	if(r % 8 == 0) return (unsigned char)(r >> 8);
	return (unsigned char)alphabet[(r >> 8) % strlen(alphabet)];
}

static void fill(unsigned char *p, size_t n, const char *alphabet)
{
	size_t i;

	for(i=0; i<n; i++) p[i] = pick(alphabet);
}

#define MSGID_ALPHABET "abcXYZ019_-"
#define JSON_ALPHABET "abc XYZ:{}019\"\\\x01\x7f\xc3\xa9"
#define TOPIC_ALPHABET "abc/x/"

/* One readable page followed by an unreadable one: page_end() is the first
 * byte that may not be read. */
static unsigned char *guard;
static size_t page;

static int guard_setup(void **state)
{
	(void)state;
	page = (size_t)sysconf(_SC_PAGESIZE);
	guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if(guard == MAP_FAILED) return -1;
	return mprotect(guard + page, page, PROT_NONE);
}

static int guard_teardown(void **state)
{
	(void)state;
	return munmap(guard, 2 * page);
}

static unsigned char *page_end(void)
{
	return guard + page;
}

/* ---- common/fast_scan.h: the message-id alphabet ---- */

static void check_msgid16(const char *p)
{
	assert_int_equal(fast_scan__msgid_bad16(p), fast_scan__msgid_bad16_plain(p));
	assert_int_equal(fast_scan__msgid_span16(p), fast_scan__msgid_span16_plain(p));
}

/* A byte b at pos among alphabet bytes. */
static void test_msgid16(void **state)
{
	char buf[16];
	unsigned b, pos, i;

	(void)state;
	for(b=0; b<256; b++){
		assert_int_equal(fast_scan__msgid_byte((unsigned char)b), names__valid_msgid((char[]){(char)b}, 1));
		for(pos=0; pos<16; pos++){
			memset(buf, 'k', sizeof(buf));
			buf[pos] = (char)b;
			check_msgid16(buf);
		}
	}
	for(i=0; i<RANDOM_ROUNDS; i++){
		fill((unsigned char *)buf, sizeof(buf), MSGID_ALPHABET);
		check_msgid16(buf);
	}
	/* The last 16 readable bytes. */
	for(i=0; i<1000; i++){
		fill(page_end() - 16, 16, MSGID_ALPHABET);
		check_msgid16((const char *)page_end() - 16);
	}
}

/* Every id length, in a buffer of its own size or inside a larger one
 * that ends at the page's end: names__valid_msgid and the in-buffer check
 * both equal the byte-by-byte reading. */
static void test_msgid_lengths(void **state)
{
	size_t len, size, at, i;

	(void)state;
	for(i=0; i<RANDOM_ROUNDS; i++){
		len = 1 + rng() % (MSGID_MAX_LEN + 4);
		size = len + rng() % 24;
		at = size > len ? rng() % (size - len + 1) : 0;
		{
			unsigned char *buf = page_end() - size, *s = buf + at;
			bool want = len <= MSGID_MAX_LEN;
			size_t k;

			fill(buf, size, MSGID_ALPHABET);
			for(k=0; k<len; k++) want = want && fast_scan__msgid_byte(s[k]);
			assert_int_equal(names__valid_msgid((const char *)s, len), want);
			assert_int_equal(fast_scan__msgid_in((const char *)s, len, (const char *)buf,
						(const char *)buf + size), want);
			if(len >= 16 && len <= MSGID_MAX_LEN){
				assert_int_equal(fast_scan__msgid_long((const char *)s, len), want);
			}
		}
	}
}

/* ---- common/fast_scan.h: plain JSON string bytes ---- */

static void check_plain_run(const unsigned char *begin, const unsigned char *p,
		const unsigned char *end)
{
	const unsigned char *fast = fast_scan__plain_run(begin, p, end);
	const unsigned char *plain = fast_scan__plain_run_plain(p, end);

	if(fast != plain){
		fail_msg("buffer of %zu, from %zu: fast stops at %zu, plain at %zu", (size_t)(end - begin),
				(size_t)(p - begin), (size_t)(fast - begin), (size_t)(plain - begin));
	}
}

static void test_plain_run(void **state)
{
	size_t size, from, pos, i;
	unsigned b;

	(void)state;
	/* Every buffer size to 80, every start, one special byte everywhere,
	 * the buffer ending at the page's end. */
	for(size=0; size<=80; size++){
		unsigned char *buf = page_end() - size;

		for(pos=0; pos<=size; pos++){
			memset(buf, 'a', size);
			if(pos < size) buf[pos] = '"';
			for(from=0; from<=size; from++) check_plain_run(buf, buf + from, buf + size);
		}
	}
	/* Every byte value at every position of a 40-byte buffer. */
	for(b=0; b<256; b++){
		unsigned char *buf = page_end() - 40;

		for(pos=0; pos<40; pos++){
			memset(buf, 'x', 40);
			buf[pos] = (unsigned char)b;
			check_plain_run(buf, buf, buf + 40);
			check_plain_run(buf, buf + 3, buf + 40);
		}
	}
	for(i=0; i<RANDOM_ROUNDS; i++){
		unsigned char *buf;

		size = rng() % 200;
		buf = page_end() - size;
		fill(buf, size, (rng() & 1) ? JSON_ALPHABET : "abcdefgh ");
		from = size ? rng() % (size + 1) : 0;
		check_plain_run(buf, buf + from, buf + size);
	}
}

/* ---- common/fast_digits.h ---- */

static void check_digits(uint64_t w)
{
	assert_int_equal(fast_digits__eight(w), fast_digits__eight_plain(w));
	if(fast_digits__eight_plain(w)){
		assert_int_equal(fast_digits__eight_value(w), fast_digits__eight_value_plain(w));
	}
	assert_int_equal(fast_digits__four((uint32_t)w), fast_digits__four_plain((uint32_t)w));
	if(fast_digits__four_plain((uint32_t)w)){
		assert_int_equal(fast_digits__four_value((uint32_t)w),
				fast_digits__four_value_plain((uint32_t)w));
	}
}

static void test_digits(void **state)
{
	unsigned char bytes[8];
	uint64_t w;
	unsigned pos, b, i;

	(void)state;
	/* Digits everywhere but one byte, which takes every value. */
	for(i=0; i<200; i++){
		for(pos=0; pos<8; pos++) bytes[pos] = (unsigned char)('0' + rng() % 10);
		for(pos=0; pos<8; pos++){
			unsigned char keep = bytes[pos];

			for(b=0; b<256; b++){
				bytes[pos] = (unsigned char)b;
				memcpy(&w, bytes, 8);
				check_digits(w);
			}
			bytes[pos] = keep;
		}
	}
	for(i=0; i<RANDOM_ROUNDS; i++){
		for(pos=0; pos<8; pos++) bytes[pos] = pick("0123456789");
		memcpy(&w, bytes, 8);
		check_digits(w);
		check_digits(rng());
	}
	/* The extremes. */
	memcpy(&w, "99999999", 8);
	check_digits(w);
	assert_int_equal(fast_digits__eight_value(w), 99999999u);
	memcpy(&w, "00000000", 8);
	check_digits(w);
}

/* ---- plugin/fast_topic.h ---- */

static void test_slashes(void **state)
{
	size_t len, pos, i;

	(void)state;
	for(len=16; len<=64; len++){
		char *t = (char *)page_end() - len;

		for(pos=0; pos<len; pos++){
			memset(t, 'a', len);
			t[pos] = '/';
			assert_true(fast_topic__slashes(t, len) == fast_topic__slashes_plain(t, len));
			assert_true(fast_topic__slashes(t, len) == (uint64_t)1 << pos);
		}
	}
	for(i=0; i<RANDOM_ROUNDS; i++){
		char *t;

		len = 16 + rng() % 49;
		t = (char *)page_end() - len;
		fill((unsigned char *)t, len, TOPIC_ALPHABET);
		assert_true(fast_topic__slashes(t, len) == fast_topic__slashes_plain(t, len));
	}
}

/* ---- plugin/snapshot.h ---- */

static void test_names(void **state)
{
	size_t len, pos, i;

	(void)state;
	for(i=0; i<RANDOM_ROUNDS; i++){
		unsigned char *a, b[NAME_MAX_LEN + 9];

		len = rng() % (NAME_MAX_LEN + 9);
		a = page_end() - len;
		fill(a, len, "abc.-_09");
		memcpy(b, a, len);
		assert_int_equal(snapshot__name_hash(a, len), snapshot__name_hash_plain(a, len));
		assert_true(snapshot__name_eq(a, b, len));
		assert_true(snapshot__name_eq_plain(a, b, len));
		pos = len ? rng() % len : 0;
		if(len) b[pos] = (unsigned char)(b[pos] ^ (1u << (rng() % 8)));
		assert_int_equal(snapshot__name_eq(a, b, len), snapshot__name_eq_plain(a, b, len));
		assert_int_equal(snapshot__name_eq(b, a, len), snapshot__name_eq_plain(b, a, len));
		assert_int_equal(snapshot__name_hash(b, len), snapshot__name_hash_plain(b, len));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgid16),
		cmocka_unit_test(test_msgid_lengths),
		cmocka_unit_test(test_plain_run),
		cmocka_unit_test(test_digits),
		cmocka_unit_test(test_slashes),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
