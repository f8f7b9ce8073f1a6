/* names.c - the name grammar of the wire contract (see names.h). */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "names.h"

/* Character classes of the grammar, one table look-up per byte. */
enum {
	C_LOWER = 1,    /* a-z 0-9: names may start with these */
	C_UPPER = 2,    /* A-Z */
	C_UNDER = 4,    /* _ */
	C_DASH = 8,     /* - */
	C_DOT = 16,     /* . */
};

#define NAME_REST (C_LOWER | C_UNDER | C_DOT | C_DASH)
#define DEVICE_CHARS (C_LOWER | C_UPPER | C_UNDER | C_DOT | C_DASH)
#define MSGID_CHARS (C_LOWER | C_UPPER | C_UNDER | C_DASH)

static const unsigned char char_class[256] = {
	['0'] = C_LOWER, ['1'] = C_LOWER, ['2'] = C_LOWER, ['3'] = C_LOWER, ['4'] = C_LOWER,
	['5'] = C_LOWER, ['6'] = C_LOWER, ['7'] = C_LOWER, ['8'] = C_LOWER, ['9'] = C_LOWER,
	['a'] = C_LOWER, ['b'] = C_LOWER, ['c'] = C_LOWER, ['d'] = C_LOWER, ['e'] = C_LOWER,
	['f'] = C_LOWER, ['g'] = C_LOWER, ['h'] = C_LOWER, ['i'] = C_LOWER, ['j'] = C_LOWER,
	['k'] = C_LOWER, ['l'] = C_LOWER, ['m'] = C_LOWER, ['n'] = C_LOWER, ['o'] = C_LOWER,
	['p'] = C_LOWER, ['q'] = C_LOWER, ['r'] = C_LOWER, ['s'] = C_LOWER, ['t'] = C_LOWER,
	['u'] = C_LOWER, ['v'] = C_LOWER, ['w'] = C_LOWER, ['x'] = C_LOWER, ['y'] = C_LOWER,
	['z'] = C_LOWER,
	['A'] = C_UPPER, ['B'] = C_UPPER, ['C'] = C_UPPER, ['D'] = C_UPPER, ['E'] = C_UPPER,
	['F'] = C_UPPER, ['G'] = C_UPPER, ['H'] = C_UPPER, ['I'] = C_UPPER, ['J'] = C_UPPER,
	['K'] = C_UPPER, ['L'] = C_UPPER, ['M'] = C_UPPER, ['N'] = C_UPPER, ['O'] = C_UPPER,
	['P'] = C_UPPER, ['Q'] = C_UPPER, ['R'] = C_UPPER, ['S'] = C_UPPER, ['T'] = C_UPPER,
	['U'] = C_UPPER, ['V'] = C_UPPER, ['W'] = C_UPPER, ['X'] = C_UPPER, ['Y'] = C_UPPER,
	['Z'] = C_UPPER,
	['_'] = C_UNDER, ['-'] = C_DASH, ['.'] = C_DOT,
};

/* True if every byte of s[0..len) is in one of the classes of mask. The
 * classes are OR-ed together and tested once at the end: no branch per
 * byte, and a name is at most 64 bytes. */
static bool all_in(const char *s, size_t len, unsigned char mask)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char bad = 0;
	size_t i;

	for(i=0; i<len; i++){
		bad |= (char_class[p[i]] & mask) == 0;
	}
	return bad == 0;
}

bool names__valid(const char *s, size_t len)
{
	if(s == NULL || len == 0 || len > NAME_MAX_LEN) return false;
	if(!(char_class[(unsigned char)s[0]] & C_LOWER)) return false;
	return all_in(s + 1, len - 1, NAME_REST);
}

bool names__valid_str(const char *s)
{
	if(s == NULL) return false;
	/* Bound the scan: anything longer than a name is invalid anyway. */
	return names__valid(s, strnlen(s, NAME_MAX_LEN + 1));
}

bool names__valid_device(const char *s, size_t len)
{
	if(s == NULL || len == 0 || len > DEVICE_MAX_LEN) return false;
	return all_in(s, len, DEVICE_CHARS);
}

#if defined(__SSE2__)
/* Bit i set if p[i] (i < 16) is not in [A-Za-z0-9_-]. Signed compares:
 * bytes >= 0x80 are negative and fall outside every range. */
static inline unsigned msgid_bad16(const char *p)
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

/* An id of 16..MSGID_MAX_LEN bytes, 16 bytes a step, the last block being
 * the 16 bytes that end at s + len. */
static bool msgid_long(const char *s, size_t len)
{
	size_t i;

	for(i=0; i + 16 < len; i += 16){
		if(msgid_bad16(s + i)) return false;
	}
	return msgid_bad16(s + len - 16) == 0;
}
#endif

bool names__valid_msgid(const char *s, size_t len)
{
	if(s == NULL || len == 0 || len > MSGID_MAX_LEN) return false;
#if defined(__SSE2__)
	/* Every envelope's id is checked on the broker thread. */
	if(len >= 16) return msgid_long(s, len);
#endif
	return all_in(s, len, MSGID_CHARS);
}

bool names__valid_msgid_in(const char *s, size_t len, const char *lo, const char *hi)
{
#if defined(__SSE2__)
	if(s != NULL && len > 0 && len < 16 && hi - lo >= 16){
		/* The 16 bytes from s, or the last 16 of the buffer if those run
		 * past it (then s lies inside them too); bits of other bytes are
		 * shifted and masked out. */
		const char *w = hi - s >= 16 ? s : hi - 16;
		unsigned bad = msgid_bad16(w) >> (s - w);

		return (bad & ((1u << len) - 1)) == 0;
	}
	if(s != NULL && len >= 16 && len <= MSGID_MAX_LEN) return msgid_long(s, len);
#else
	(void)lo;
	(void)hi;
#endif
	return names__valid_msgid(s, len);
}

unsigned names__msgid_span16(const char *s)
{
#if defined(__SSE2__)
	return (unsigned)__builtin_ctz(msgid_bad16(s) | 0x10000u);
#else
	const unsigned char *p = (const unsigned char *)s;
	unsigned n = 0;

	while(n < 16 && (char_class[p[n]] & MSGID_CHARS)) n++;
	return n;
#endif
}

bool names__split_clientid(const char *id, size_t *user_len,
		const char **device, size_t *device_len)
{
	size_t len;
	const char *at;

	if(id == NULL) return false;
	len = strnlen(id, CLIENTID_MAX_LEN + 1);
	if(len == 0 || len > CLIENTID_MAX_LEN) return false;

	at = memchr(id, '@', len);
	if(at == NULL){
		*user_len = len;
		*device = NULL;
		*device_len = 0;
		return true;
	}
	if(at == id) return false;
	*user_len = (size_t)(at - id);
	*device = at + 1;
	*device_len = len - *user_len - 1;
	return names__valid_device(*device, *device_len);
}
