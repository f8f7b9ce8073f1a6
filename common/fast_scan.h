/* fast_scan.h - byte-class scans of the envelope's hot path, each beside
 * its plain twin. Private to common/names.c, common/envelope.c and their
 * tests; nothing here is part of a public signature.
 *
 * Every publish's envelope is scanned on the broker's only thread, so the
 * scans that find the end of a JSON string and check a message id look at
 * 16 bytes a step (SSE2) where the machine has it. Each fast function has a
 * _plain twin written byte by byte from the grammar; tests/unit/
 * test_fast_kernels.c checks both give the same answers on every length,
 * every offset and every byte value, also against the end of a page.
 *
 * The rule for adding one: docs/CONTRIBUTING.md ("Fast paths"). */
#ifndef MQCHAT_FAST_SCAN_H
#define MQCHAT_FAST_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define FAST_SCAN_SIMD 1
#else
#define FAST_SCAN_SIMD 0
#endif

#include "names.h"

/* ---- the message-id alphabet [A-Za-z0-9_-] (names.h) ---- */

static inline bool fast_scan__msgid_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		|| c == '_' || c == '-';
}

/* Bit i set if p[i] (i < 16) is not in the alphabet; p[0..16) readable. */
static inline unsigned fast_scan__msgid_bad16_plain(const char *p)
{
	unsigned bad = 0, i;

	for(i=0; i<16; i++){
		if(!fast_scan__msgid_byte((unsigned char)p[i])) bad |= 1u << i;
	}
	return bad;
}

#if defined(__SSE2__)
/* Signed compares: bytes >= 0x80 are negative and fall outside every range. */
static inline unsigned fast_scan__msgid_bad16(const char *p)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));   /* A-Z to a-z */
	const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
			_mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
	const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
			_mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
	const __m128i punct = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
			_mm_cmpeq_epi8(v, _mm_set1_epi8('-')));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), punct)) ^ 0xFFFFu;
}
#else
#define fast_scan__msgid_bad16 fast_scan__msgid_bad16_plain
#endif

/* True if all of s[0..len) is in the alphabet, for 16 <= len: 16 bytes a
 * step, the last block being the 16 bytes that end at s + len. */
static inline bool fast_scan__msgid_long(const char *s, size_t len)
{
	size_t i;

	for(i=0; i + 16 < len; i += 16){
		if(fast_scan__msgid_bad16(s + i)) return false;
	}
	return fast_scan__msgid_bad16(s + len - 16) == 0;
}

/* How many of the 16 bytes at s, from the first, are in the alphabet (16
 * if all are); s[0..16) readable. An id followed by a byte outside it (the
 * envelope's closing quote) is checked, and its end found, in one step. */
static inline unsigned fast_scan__msgid_span16(const char *s)
{
	return (unsigned)__builtin_ctz(fast_scan__msgid_bad16(s) | 0x10000u);
}

static inline unsigned fast_scan__msgid_span16_plain(const char *s)
{
	unsigned n = 0;

	while(n < 16 && fast_scan__msgid_byte((unsigned char)s[n])) n++;
	return n;
}

/* names__valid_msgid(s, len) for s[0..len) inside a buffer lo[0..hi - lo)
 * that may be read whole: a short id is then checked with one 16-byte
 * load of the buffer around it (the envelope's id, within its payload). */
static inline bool fast_scan__msgid_in(const char *s, size_t len, const char *lo, const char *hi)
{
	if(s != NULL && len > 0 && len < 16 && hi - lo >= 16){
		/* The 16 bytes from s, or the last 16 of the buffer if those run
		 * past it (then s lies inside them too); bits of other bytes are
		 * shifted and masked out. */
		const char *w = hi - s >= 16 ? s : hi - 16;
		unsigned bad = fast_scan__msgid_bad16(w) >> (s - w);

		return (bad & ((1u << len) - 1)) == 0;
	}
	return names__valid_msgid(s, len);
}

/* ---- plain JSON string bytes ---- */

/* Printable ASCII other than '"' and '\\'. Everything else (a quote, a
 * backslash, a control byte, any byte of a multi-byte UTF-8 sequence)
 * takes the envelope parser's byte-wise rules. */
static inline bool fast_scan__plain_byte(unsigned char b)
{
	return b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
}

/* The first byte of p[0..end) that is not plain, or end. */
static inline const unsigned char *fast_scan__plain_run_plain(const unsigned char *p,
		const unsigned char *end)
{
	while(p < end && fast_scan__plain_byte(*p)) p++;
	return p;
}

#if defined(__SSE2__)
/* Bit i set if p[i] (i < 16) is not a plain byte. v ^ 0x02 maps '"' (0x22)
 * to 0x20, keeps 0x00-0x1F among themselves and moves space (0x20) to 0x22:
 * the quote, the control bytes and the bytes >= 0x80 (negative) are then
 * the bytes below 0x21, signed, found by one compare. One more finds '\\'. */
static inline unsigned fast_scan__special16(const unsigned char *p)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	const __m128i s = _mm_or_si128(
			_mm_cmplt_epi8(_mm_xor_si128(v, _mm_set1_epi8(0x02)), _mm_set1_epi8(0x21)),
			_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));

	return (unsigned)_mm_movemask_epi8(s);
}

/* The same answer as fast_scan__plain_run_plain(p, end), for p inside
 * begin[0..end - begin), all of which may be read. Reads nothing outside
 * it: 16 bytes first (most strings are short: ids, the type), then 32 a
 * step (a message body) and 16, then the last partial block is one load of
 * the 16 bytes ending at end (when the buffer has that many), with the
 * bytes before p shifted out of the mask. */
static inline const unsigned char *fast_scan__plain_run(const unsigned char *begin,
		const unsigned char *p, const unsigned char *end)
{
	unsigned m;

	if(end - p >= 16){
		m = fast_scan__special16(p);
		if(m) return p + __builtin_ctz(m);
		p += 16;
		while(end - p >= 32){
			m = fast_scan__special16(p) | fast_scan__special16(p + 16) << 16;
			if(m) return p + __builtin_ctz(m);
			p += 32;
		}
		if(end - p >= 16){
			m = fast_scan__special16(p);
			if(m) return p + __builtin_ctz(m);
			p += 16;
		}
	}
	if(p == end) return p;
	if(end - begin >= 16){
		m = fast_scan__special16(end - 16) >> (16 - (end - p));
		return m ? p + __builtin_ctz(m) : end;
	}
	return fast_scan__plain_run_plain(p, end);
}
#else
#define FAST_SCAN_BYTES(b) (0x0101010101010101ULL * (uint64_t)(b))
/* Any byte of v zero / below n (n <= 0x80): exact as a yes-or-no answer. */
#define FAST_SCAN_HAS_ZERO(v) (((v) - FAST_SCAN_BYTES(1)) & ~(v) & FAST_SCAN_BYTES(0x80))
#define FAST_SCAN_HAS_LESS(v, n) (((v) - FAST_SCAN_BYTES(n)) & ~(v) & FAST_SCAN_BYTES(0x80))

/* True if all 8 bytes of v are plain. */
static inline bool fast_scan__plain8(uint64_t v)
{
	return ((v & FAST_SCAN_BYTES(0x80)) | FAST_SCAN_HAS_LESS(v, 0x20)
			| FAST_SCAN_HAS_ZERO(v ^ FAST_SCAN_BYTES('"'))
			| FAST_SCAN_HAS_ZERO(v ^ FAST_SCAN_BYTES('\\'))) == 0;
}

/* Portable form: 8 bytes a step, then byte by byte. */
static inline const unsigned char *fast_scan__plain_run(const unsigned char *begin,
		const unsigned char *p, const unsigned char *end)
{
	(void)begin;
	while(end - p >= 8){
		uint64_t v;
		memcpy(&v, p, 8);
		if(!fast_scan__plain8(v)) break;
		p += 8;
	}
	return fast_scan__plain_run_plain(p, end);
}
#endif

#endif
