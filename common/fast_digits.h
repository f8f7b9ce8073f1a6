/* fast_digits.h - ASCII digits a word at a time (SWAR bit tricks), each
 * beside its plain twin. Private to common/envelope.c (the "ts" of every
 * envelope: a millisecond time has 13 digits, read 8, then 4, then 1) and
 * its tests; nothing here is part of a public signature.
 *
 * A word holds the bytes in memory order, so these need a little-endian
 * machine: FAST_DIGITS_SWAR says whether the fast forms are used.
 * tests/unit/test_fast_kernels.c checks each against its _plain twin, which
 * reads the same word byte by byte. The rule: docs/CONTRIBUTING.md. */
#ifndef MQCHAT_FAST_DIGITS_H
#define MQCHAT_FAST_DIGITS_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FAST_DIGITS_SWAR 1
#else
#define FAST_DIGITS_SWAR 0
#endif

/* Byte i of w (little-endian: the i-th in memory). */
static inline unsigned fast_digits__byte(uint64_t w, unsigned i)
{
	return (unsigned)(w >> (8 * i)) & 0xFFu;
}

/* True if the n bytes of w are all ASCII digits, byte by byte. */
static inline bool fast_digits__all_plain(uint64_t w, unsigned n)
{
	unsigned i;

	for(i=0; i<n; i++){
		if(fast_digits__byte(w, i) - '0' > 9u) return false;
	}
	return true;
}

/* The value of n ASCII digits in w, the first in memory most significant. */
static inline uint64_t fast_digits__value_plain(uint64_t w, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for(i=0; i<n; i++) v = v * 10 + (fast_digits__byte(w, i) - '0');
	return v;
}

static inline bool fast_digits__eight_plain(uint64_t w) { return fast_digits__all_plain(w, 8); }
static inline uint64_t fast_digits__eight_value_plain(uint64_t w) { return fast_digits__value_plain(w, 8); }
static inline bool fast_digits__four_plain(uint32_t w) { return fast_digits__all_plain(w, 4); }
static inline uint32_t fast_digits__four_value_plain(uint32_t w)
{
	return (uint32_t)fast_digits__value_plain(w, 4);
}

/* True if the 8 bytes of w (little-endian) are all ASCII digits: each byte's
 * high nibble is 3, and adding 6 to it does not carry out of the low one. */
static inline bool fast_digits__eight(uint64_t w)
{
	return ((w & 0xF0F0F0F0F0F0F0F0u)
			| (((w + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4))
		== 0x3333333333333333u;
}

/* The value of 8 ASCII digits (first byte most significant), by pairs,
 * then quads, then the whole. */
static inline uint64_t fast_digits__eight_value(uint64_t w)
{
	w = (w & 0x0F0F0F0F0F0F0F0Fu) * 2561 >> 8;
	w = (w & 0x00FF00FF00FF00FFu) * 6553601 >> 16;
	return (w & 0x0000FFFF0000FFFFu) * 42949672960001u >> 32;
}

/* The same for 4 digits. */
static inline bool fast_digits__four(uint32_t w)
{
	return ((w & 0xF0F0F0F0u) | (((w + 0x06060606u) & 0xF0F0F0F0u) >> 4)) == 0x33333333u;
}

static inline uint32_t fast_digits__four_value(uint32_t w)
{
	w = (w & 0x0F0F0F0Fu) * 2561 >> 8;
	return (w & 0x00FF00FFu) * 6553601 >> 16;
}

#endif
