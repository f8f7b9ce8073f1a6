/* fast_topic.h - where a topic's '/' are, 16 bytes a step, beside its
 * plain twin. Private to common/topic.c (the plugin's ACL splits every
 * topic it checks) and its tests; nothing here is part of a public
 * signature.
 *
 * tests/unit/test_fast_kernels.c checks fast_topic__slashes against
 * fast_topic__slashes_plain on every length, every position of a slash
 * and against the end of a page. The rule: docs/CONTRIBUTING.md. */
#ifndef MQCHAT_FAST_TOPIC_H
#define MQCHAT_FAST_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bit i set if t[i] is '/', for i < len: 16 <= len <= 64, and exactly
 * t[0..len) is read. */
static inline uint64_t fast_topic__slashes_plain(const char *t, size_t len)
{
	uint64_t mask = 0;
	size_t i;

	for(i=0; i<len; i++){
		if(t[i] == '/') mask |= (uint64_t)1 << i;
	}
	return mask;
}

#if defined(__SSE2__)
/* Bit i set if t[i] is '/', for i < 16. */
static inline unsigned fast_topic__slashes16(const char *t)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)t);

	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')));
}

/* The same answer as fast_topic__slashes_plain: 16 bytes a load; the last
 * partial block is the 16 bytes that end at t + len, shifted. */
static inline uint64_t fast_topic__slashes(const char *t, size_t len)
{
	uint64_t mask = 0;
	size_t off;

	for(off=0; off + 16 <= len; off += 16){
		mask |= (uint64_t)fast_topic__slashes16(t + off) << off;
	}
	if(off < len){
		mask |= (uint64_t)(fast_topic__slashes16(t + len - 16) >> (16 - (len - off))) << off;
	}
	return mask;
}
#else
#define fast_topic__slashes fast_topic__slashes_plain
#endif

#endif
