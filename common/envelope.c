/* envelope.c - single-pass, allocation-free envelope validation (see envelope.h). */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "envelope.h"
#include "names.h"

/* For the steps of one member (number, string value, dispatch): inlined
 * into envelope__parse, they cost no call and its cursor stays in registers. */
#define HOT_INLINE static inline __attribute__((always_inline))

struct cursor {
	const unsigned char *p;
	const unsigned char *end;
	const unsigned char *begin;     /* the payload: no read ever goes before it */
	const char *why;
};

/* Length of the UTF-8 sequence starting at p (at most end), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n, i;
	uint32_t cp;

	if(c < 0x80) return 1;
	if(c >= 0xC2 && c <= 0xDF){ n = 2; cp = c & 0x1Fu; }
	else if(c >= 0xE0 && c <= 0xEF){ n = 3; cp = c & 0x0Fu; }
	else if(c >= 0xF0 && c <= 0xF4){ n = 4; cp = c & 0x07u; }
	else return 0;

	if((size_t)(end - p) < n) return 0;
	for(i=1; i<n; i++){
		if((p[i] & 0xC0) != 0x80) return 0;
		cp = (cp << 6) | (p[i] & 0x3Fu);
	}
	if(n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
	if(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
	return n;
}

bool utf8__valid(const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len;

	while(p < end){
		size_t n = utf8_seq(p, end);
		if(n == 0) return false;
		p += n;
	}
	return true;
}

static bool fail(struct cursor *c, const char *why)
{
	if(c->why == NULL) c->why = why;
	return false;
}

static void skip_ws_run(struct cursor *c)
{
	while(c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')){
		c->p++;
	}
}

/* Compact JSON has no whitespace: one compare settles the usual case. */
static inline void skip_ws(struct cursor *c)
{
	if(c->p < c->end && *c->p <= ' ') skip_ws_run(c);
}

static int hexval(unsigned char h)
{
	if(h >= '0' && h <= '9') return h - '0';
	if(h >= 'a' && h <= 'f') return h - 'a' + 10;
	if(h >= 'A' && h <= 'F') return h - 'A' + 10;
	return -1;
}

/* Read 4 hex digits at p (caller checked there are 4). -1 if not hex. */
static long hex4(const unsigned char *p)
{
	long v = 0;
	int i;

	for(i=0; i<4; i++){
		int h = hexval(p[i]);
		if(h < 0) return -1;
		v = (v << 4) | h;
	}
	return v;
}

/* Plain string bytes: printable ASCII other than '"' and '\\'. Everything
 * else (a quote, a backslash, a control byte, any byte of a multi-byte UTF-8
 * sequence) goes through parse_string's byte-wise rules. */
static inline bool plain_byte(unsigned char b)
{
	return b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
}

#if defined(__SSE2__)
/* Bit i set if p[i] (i < 16) is not a plain byte. One signed compare finds
 * both the control bytes (0x00-0x1F) and the bytes >= 0x80 (negative). */
static inline unsigned special16(const unsigned char *p)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	const __m128i s = _mm_or_si128(
			_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
				_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
			_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));

	return (unsigned)_mm_movemask_epi8(s);
}

/* The first byte of p[0..end) that is not plain, or end. Reads nothing
 * outside [begin, end): the last partial block is one load of the 16 bytes
 * ending at end (when the payload has that many), with the bytes before p
 * shifted out of the mask. */
static inline const unsigned char *scan_plain(const unsigned char *begin,
		const unsigned char *p, const unsigned char *end)
{
	unsigned m;

	while(end - p >= 16){
		m = special16(p);
		if(m) return p + __builtin_ctz(m);
		p += 16;
	}
	if(p == end) return p;
	if(end - begin >= 16){
		m = special16(end - 16) >> (16 - (end - p));
		return m ? p + __builtin_ctz(m) : end;
	}
	while(p < end && plain_byte(*p)) p++;
	return p;
}
#else
#define BYTES(b) (0x0101010101010101ULL * (uint64_t)(b))
/* Any byte of v zero / below n (n <= 0x80): exact as a yes-or-no answer. */
#define HAS_ZERO(v) (((v) - BYTES(1)) & ~(v) & BYTES(0x80))
#define HAS_LESS(v, n) (((v) - BYTES(n)) & ~(v) & BYTES(0x80))

/* True if all 8 bytes of v are plain. */
static inline bool plain8(uint64_t v)
{
	return ((v & BYTES(0x80)) | HAS_LESS(v, 0x20)
			| HAS_ZERO(v ^ BYTES('"')) | HAS_ZERO(v ^ BYTES('\\'))) == 0;
}

/* Portable form: 8 bytes a step, then byte by byte. */
static inline const unsigned char *scan_plain(const unsigned char *begin,
		const unsigned char *p, const unsigned char *end)
{
	(void)begin;
	while(end - p >= 8){
		uint64_t v;
		memcpy(&v, p, 8);
		if(!plain8(v)) break;
		p += 8;
	}
	while(p < end && plain_byte(*p)) p++;
	return p;
}
#endif

/* The rest of parse_string from p, the first byte after start that is not
 * plain: every such byte gets the exact rules here. */
static bool parse_string_rest(struct cursor *c, struct envelope_str *out,
		const unsigned char *start, const unsigned char *p)
{
	const unsigned char *end = c->end;

	out->escaped = false;
	for(;;){
		unsigned char ch;

		if(p == end) break;
		ch = *p;
		if(ch == '"'){
			out->ptr = (const char *)start;
			out->len = (size_t)(p - start);
			c->p = p + 1;
			return true;
		}else if(ch == '\\'){
			out->escaped = true;
			if(end - p < 2) return fail(c, "unterminated string");
			ch = p[1];
			if(ch == 'u'){
				long cp;
				if(end - p < 6) return fail(c, "bad \\u escape");
				cp = hex4(p + 2);
				if(cp < 0) return fail(c, "bad \\u escape");
				if(cp == 0) return fail(c, "NUL in string");
				p += 6;
				if(cp >= 0xDC00 && cp <= 0xDFFF) return fail(c, "lone surrogate escape");
				if(cp >= 0xD800 && cp <= 0xDBFF){
					long lo;
					if(end - p < 6 || p[0] != '\\' || p[1] != 'u'){
						return fail(c, "lone surrogate escape");
					}
					lo = hex4(p + 2);
					if(lo < 0xDC00 || lo > 0xDFFF) return fail(c, "lone surrogate escape");
					p += 6;
				}
			}else if(ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f'
					|| ch == 'n' || ch == 'r' || ch == 't'){
				p += 2;
			}else{
				return fail(c, "bad escape");
			}
		}else if(ch < 0x20){
			return fail(c, "control character in string");
		}else{
			size_t n = utf8_seq(p, end);
			if(n == 0) return fail(c, "not valid UTF-8");
			p += n;
		}
		p = scan_plain(c->begin, p, end);
	}
	c->p = p;
	return fail(c, "unterminated string");
}

/* Parse a JSON string at c->p (which points at the opening quote). The run
 * of plain ASCII that makes up most of a chat message is skipped 16 bytes a
 * step (this runs for every publish on the broker's thread); a string that
 * is nothing else ends here, anything else goes on in parse_string_rest. */
static inline bool parse_string(struct cursor *c, struct envelope_str *out)
{
	const unsigned char *start = c->p + 1;
	const unsigned char *p = scan_plain(c->begin, start, c->end);

	if(p < c->end && *p == '"'){
		out->ptr = (const char *)start;
		out->len = (size_t)(p - start);
		out->escaped = false;
		c->p = p + 1;
		return true;
	}
	return parse_string_rest(c, out, start, p);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* True if the 8 bytes of w (little-endian) are all ASCII digits: each byte's
 * high nibble is 3, and adding 6 to it does not carry out of the low one. */
static inline bool eight_digits(uint64_t w)
{
	return ((w & 0xF0F0F0F0F0F0F0F0u)
			| (((w + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4))
		== 0x3333333333333333u;
}

/* The value of 8 ASCII digits (first byte most significant), by pairs,
 * then quads, then the whole. */
static inline uint64_t eight_digits_value(uint64_t w)
{
	w = (w & 0x0F0F0F0F0F0F0F0Fu) * 2561 >> 8;
	w = (w & 0x00FF00FF00FF00FFu) * 6553601 >> 16;
	return (w & 0x0000FFFF0000FFFFu) * 42949672960001u >> 32;
}

/* The same for 4 digits. */
static inline bool four_digits(uint32_t w)
{
	return ((w & 0xF0F0F0F0u) | (((w + 0x06060606u) & 0xF0F0F0F0u) >> 4)) == 0x33333333u;
}

static inline uint32_t four_digits_value(uint32_t w)
{
	w = (w & 0x0F0F0F0Fu) * 2561 >> 8;
	return (w & 0x00FF00FFu) * 6553601 >> 16;
}
#endif

/* Parse a JSON number. If it is an integer in [-ENVELOPE_MAX_TS,
 * ENVELOPE_MAX_TS], *ival is it and *is_int is true; otherwise *is_int is
 * false. */
HOT_INLINE bool parse_number(struct cursor *c, int64_t *ival, bool *is_int)
{
	const unsigned char *p = c->p, *end = c->end, *digits;
	bool neg = false;
	uint64_t v = 0;

	*is_int = true;
	if(*p == '-'){
		neg = true;
		p++;
	}
	if(p >= end) return fail(c, "bad number");
	digits = p;
	if(*p == '0'){
		p++;
	}else if(*p >= '1' && *p <= '9'){
		/* Up to 16 digits fit a uint64_t with room to spare (ENVELOPE_MAX_TS
		 * has 16); more may wrap, but then the digit count alone refuses
		 * the value. A millisecond time has 13: 8, then 4, then 1. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		while(end - p >= 8){
			uint64_t w;
			memcpy(&w, p, 8);
			if(!eight_digits(w)) break;
			v = v * 100000000u + eight_digits_value(w);
			p += 8;
		}
		if(end - p >= 4){
			uint32_t w;
			memcpy(&w, p, 4);
			if(four_digits(w)){
				v = v * 10000u + four_digits_value(w);
				p += 4;
			}
		}
#endif
		while(p < end && (unsigned)(*p - '0') < 10){
			v = v * 10 + (unsigned)(*p - '0');
			p++;
		}
		if(p - digits > 16 || v > (uint64_t)ENVELOPE_MAX_TS) *is_int = false;
	}else{
		return fail(c, "bad number");
	}
	if(p < end && *p == '.'){
		*is_int = false;
		p++;
		if(p >= end || *p < '0' || *p > '9') return fail(c, "bad number");
		while(p < end && *p >= '0' && *p <= '9') p++;
	}
	if(p < end && (*p == 'e' || *p == 'E')){
		*is_int = false;
		p++;
		if(p < end && (*p == '+' || *p == '-')) p++;
		if(p >= end || *p < '0' || *p > '9') return fail(c, "bad number");
		while(p < end && *p >= '0' && *p <= '9') p++;
	}
	c->p = p;
	*ival = !*is_int ? 0 : neg ? -(int64_t)v : (int64_t)v;
	return true;
}

static bool literal(struct cursor *c, const char *word)
{
	size_t n = strlen(word);

	if((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0){
		return fail(c, "not valid JSON");
	}
	c->p += n;
	return true;
}

/* Skip any JSON value (for unknown members), at most depth levels deep. */
static bool skip_value(struct cursor *c, int depth)
{
	struct envelope_str s;
	int64_t iv;
	bool is_int;

	skip_ws(c);
	if(c->p >= c->end) return fail(c, "not valid JSON");
	switch(*c->p){
		case '"':
			return parse_string(c, &s);
		case 't': return literal(c, "true");
		case 'f': return literal(c, "false");
		case 'n': return literal(c, "null");
		case '{':
		case '[':
		{
			unsigned char close = (*c->p == '{') ? '}' : ']';
			bool object = (close == '}');

			if(depth <= 0) return fail(c, "nested too deep");
			c->p++;
			skip_ws(c);
			if(c->p < c->end && *c->p == close){
				c->p++;
				return true;
			}
			for(;;){
				if(object){
					skip_ws(c);
					if(c->p >= c->end || *c->p != '"') return fail(c, "not valid JSON");
					if(!parse_string(c, &s)) return false;
					skip_ws(c);
					if(c->p >= c->end || *c->p != ':') return fail(c, "not valid JSON");
					c->p++;
				}
				if(!skip_value(c, depth - 1)) return false;
				skip_ws(c);
				if(c->p >= c->end) return fail(c, "not valid JSON");
				if(*c->p == ','){
					c->p++;
					continue;
				}
				if(*c->p == close){
					c->p++;
					return true;
				}
				return fail(c, "not valid JSON");
			}
		}
		default:
			if(*c->p == '-' || (*c->p >= '0' && *c->p <= '9')){
				return parse_number(c, &iv, &is_int);
			}
			return fail(c, "not valid JSON");
	}
}

/* Unescaped s is exactly the literal lit (length, then bytes). */
#define STR_IS(s, lit) (!(s)->escaped && (s)->len == sizeof(lit) - 1 \
		&& memcmp((s)->ptr, lit, sizeof(lit) - 1) == 0)

enum member {
	M_ID, M_TYPE, M_BODY, M_REF, M_STATUS, M_TS, M_OTHER,
	M_UNMATCHED     /* plain_key only: parse the name the general way */
};

/* Longest raw member name that can decode to a known name: "status" with
 * every character written as \uXXXX. */
#define KNOWN_KEY_MAX_RAW (6 * 6)

static enum member member_of(const struct envelope_str *key)
{
	/* Compare the decoded name, not the raw bytes: "b\u006fdy" is "body" to
	 * every JSON reader downstream (the archiver's jansson keeps the last of
	 * duplicate keys), so it must be validated, and refused as a duplicate,
	 * exactly like "body". */
	if(key->escaped){
		char buf[KNOWN_KEY_MAX_RAW + 1];
		long n;
		struct envelope_str plain;

		if(key->len > KNOWN_KEY_MAX_RAW) return M_OTHER;
		n = envelope__unescape(key, buf, sizeof(buf));
		if(n < 0) return M_OTHER;
		plain.ptr = buf;
		plain.len = (size_t)n;
		plain.escaped = false;
		return member_of(&plain);
	}
	/* By length first: one or two fixed-size compares per member. */
	switch(key->len){
		case 2:
			if(memcmp(key->ptr, "id", 2) == 0) return M_ID;
			if(memcmp(key->ptr, "ts", 2) == 0) return M_TS;
			return M_OTHER;
		case 3:
			return memcmp(key->ptr, "ref", 3) == 0 ? M_REF : M_OTHER;
		case 4:
			if(memcmp(key->ptr, "type", 4) == 0) return M_TYPE;
			if(memcmp(key->ptr, "body", 4) == 0) return M_BODY;
			return M_OTHER;
		case 6:
			return memcmp(key->ptr, "status", 6) == 0 ? M_STATUS : M_OTHER;
	}
	return M_OTHER;
}

/* A known member name at p (its opening quote, avail bytes left) written
 * plainly and followed at once by ':', as compact JSON has it: the member,
 * and *n the bytes that make up name and colon. M_UNMATCHED for anything
 * else (whitespace, escapes, another name), which the general path parses;
 * for these exact bytes it would find the same member. */
static inline enum member plain_key(const unsigned char *p, size_t avail, size_t *n)
{
#define KEY_AT(lit, m) do{ \
		if(avail >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0){ \
			*n = sizeof(lit) - 1; \
			return m; \
		} \
	}while(0)
	if(avail < 5) return M_UNMATCHED;
	switch(p[1]){
		case 'i': KEY_AT("\"id\":", M_ID); break;
		case 't':
			KEY_AT("\"type\":", M_TYPE);
			KEY_AT("\"ts\":", M_TS);
			break;
		case 'b': KEY_AT("\"body\":", M_BODY); break;
		case 'r': KEY_AT("\"ref\":", M_REF); break;
		case 's': KEY_AT("\"status\":", M_STATUS); break;
	}
	return M_UNMATCHED;
#undef KEY_AT
}

/* Parse the value of a known string member into *out. */
HOT_INLINE bool string_member(struct cursor *c, struct envelope_str *out, const char *why)
{
	skip_ws(c);
	if(c->p >= c->end || *c->p != '"') return fail(c, why);
	return parse_string(c, out);
}

HOT_INLINE bool parse_member(struct cursor *c, struct envelope *env, enum member m,
		struct envelope_str *type)
{
	int64_t iv;
	bool is_int;
	struct envelope_str status;

	switch(m){
		case M_ID:
			if(!string_member(c, &env->id, "id is not a string")) return false;
			if(env->id.escaped || !names__valid_msgid_in(env->id.ptr, env->id.len,
						(const char *)c->begin, (const char *)c->end)){
				return fail(c, "invalid id");
			}
			return true;
		case M_TYPE:
			return string_member(c, type, "type is not a string");
		case M_BODY:
			return string_member(c, &env->body, "body is not a string");
		case M_REF:
			if(!string_member(c, &env->ref, "ref is not a string")) return false;
			if(env->ref.escaped || !names__valid_msgid_in(env->ref.ptr, env->ref.len,
						(const char *)c->begin, (const char *)c->end)){
				return fail(c, "invalid ref");
			}
			return true;
		case M_STATUS:
			if(!string_member(c, &status, "status is not a string")) return false;
			if(STR_IS(&status, "delivered")) env->status = ENVELOPE_STATUS_DELIVERED;
			else if(STR_IS(&status, "read")) env->status = ENVELOPE_STATUS_READ;
			else return fail(c, "invalid status");
			return true;
		case M_TS:
			skip_ws(c);
			if(c->p >= c->end || (*c->p != '-' && (*c->p < '0' || *c->p > '9'))){
				return fail(c, "ts is not a number");
			}
			if(!parse_number(c, &iv, &is_int)) return false;
			if(!is_int || iv < 0) return fail(c, "ts is not a non-negative integer");
			env->ts = iv;
			env->has_ts = true;
			return true;
		case M_OTHER:
			return skip_value(c, ENVELOPE_MAX_DEPTH);
		case M_UNMATCHED:
			break;
	}
	return fail(c, "not valid JSON");
}

bool envelope__parse(const void *payload, size_t len, struct envelope *env,
		const char **why)
{
	struct cursor c;
	struct envelope_str type = {0};
	unsigned seen = 0;

	memset(env, 0, sizeof(*env));
	c.p = payload;
	c.begin = c.p;
	c.end = c.p + len;
	c.why = NULL;

	if(payload == NULL || len == 0){
		fail(&c, "empty payload");
		goto out;
	}
	skip_ws(&c);
	if(c.p >= c.end || *c.p != '{'){
		fail(&c, "not a JSON object");
		goto out;
	}
	c.p++;
	skip_ws(&c);
	if(c.p < c.end && *c.p == '}'){
		c.p++;
	}else{
		for(;;){
			struct envelope_str key;
			enum member m;
			size_t n;

			skip_ws(&c);
			if(c.p >= c.end || *c.p != '"'){
				fail(&c, "not valid JSON");
				goto out;
			}
			m = plain_key(c.p, (size_t)(c.end - c.p), &n);
			if(m != M_UNMATCHED){
				c.p += n;
			}else{
				if(!parse_string(&c, &key)) goto out;
				skip_ws(&c);
				if(c.p >= c.end || *c.p != ':'){
					fail(&c, "not valid JSON");
					goto out;
				}
				c.p++;
				m = member_of(&key);
			}
			if(m != M_OTHER){
				if(seen & (1u << m)){
					fail(&c, "duplicate member");
					goto out;
				}
				seen |= 1u << m;
			}
			if(!parse_member(&c, env, m, &type)) goto out;
			skip_ws(&c);
			if(c.p >= c.end){
				fail(&c, "not valid JSON");
				goto out;
			}
			if(*c.p == ','){
				c.p++;
				continue;
			}
			if(*c.p == '}'){
				c.p++;
				break;
			}
			fail(&c, "not valid JSON");
			goto out;
		}
	}
	skip_ws(&c);
	if(c.p != c.end){
		fail(&c, "trailing data after the object");
		goto out;
	}

	if(!(seen & (1u << M_ID))){
		fail(&c, "missing id");
	}else if(!(seen & (1u << M_TYPE))){
		fail(&c, "missing type");
	}else if(STR_IS(&type, "text")){
		env->type = ENVELOPE_TEXT;
		if(!(seen & (1u << M_BODY))) fail(&c, "text without body");
		else if(env->body.len == 0) fail(&c, "empty body");
		else if(seen & (1u << M_STATUS)) fail(&c, "text with status");
	}else if(STR_IS(&type, "receipt")){
		env->type = ENVELOPE_RECEIPT;
		if(!(seen & (1u << M_REF))) fail(&c, "receipt without ref");
		else if(!(seen & (1u << M_STATUS))) fail(&c, "receipt without status");
		else if(seen & (1u << M_BODY)) fail(&c, "receipt with body");
	}else{
		fail(&c, "unknown type");
	}

out:
	if(why) *why = c.why;
	return c.why == NULL;
}

/* Append the UTF-8 form of cp to out[*n..outlen). */
static bool put_utf8(char *out, size_t outlen, size_t *n, uint32_t cp)
{
	unsigned char b[4];
	size_t k, i;

	if(cp < 0x80){ b[0] = (unsigned char)cp; k = 1; }
	else if(cp < 0x800){
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		k = 2;
	}else if(cp < 0x10000){
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		k = 3;
	}else{
		b[0] = (unsigned char)(0xF0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		k = 4;
	}
	if(*n + k >= outlen) return false;
	for(i=0; i<k; i++) out[(*n)++] = (char)b[i];
	return true;
}

long envelope__unescape(const struct envelope_str *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s->ptr, *end = p + s->len;
	size_t n = 0;

	if(outlen == 0) return -1;
	while(p < end){
		uint32_t cp;
		if(*p != '\\'){
			if(n + 1 >= outlen) return -1;
			out[n++] = (char)*p++;
			continue;
		}
		switch(p[1]){
			case 'b': cp = '\b'; p += 2; break;
			case 'f': cp = '\f'; p += 2; break;
			case 'n': cp = '\n'; p += 2; break;
			case 'r': cp = '\r'; p += 2; break;
			case 't': cp = '\t'; p += 2; break;
			case 'u':
				cp = (uint32_t)hex4(p + 2);
				p += 6;
				if(cp >= 0xD800 && cp <= 0xDBFF){
					uint32_t lo = (uint32_t)hex4(p + 2);
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					p += 6;
				}
				break;
			default: cp = p[1]; p += 2; break;
		}
		if(!put_utf8(out, outlen, &n, cp)) return -1;
	}
	out[n] = '\0';
	return (long)n;
}
