/* envelope.c - single-pass, allocation-free envelope validation (see envelope.h). */
#include <string.h>

#include "envelope.h"
#include "names.h"

struct cursor {
	const unsigned char *p;
	const unsigned char *end;
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

static void skip_ws(struct cursor *c)
{
	while(c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')){
		c->p++;
	}
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

#define BYTES(b) (0x0101010101010101ULL * (uint64_t)(b))
/* Any byte of v zero / below n (n <= 0x80): exact as a yes-or-no answer. */
#define HAS_ZERO(v) (((v) - BYTES(1)) & ~(v) & BYTES(0x80))
#define HAS_LESS(v, n) (((v) - BYTES(n)) & ~(v) & BYTES(0x80))

/* True if all 8 bytes of v are printable ASCII other than '"' and '\\'. */
static bool plain8(uint64_t v)
{
	return ((v & BYTES(0x80)) | HAS_LESS(v, 0x20)
			| HAS_ZERO(v ^ BYTES('"')) | HAS_ZERO(v ^ BYTES('\\'))) == 0;
}

/* Parse a JSON string at c->p (which points at the opening quote). */
static bool parse_string(struct cursor *c, struct envelope_str *out)
{
	const unsigned char *start;

	c->p++; /* opening quote */
	start = c->p;
	out->escaped = false;
	while(c->p < c->end){
		unsigned char ch;
		const unsigned char *p = c->p, *end = c->end;

		/* Fast path: the run of plain printable ASCII that makes up most
		 * of a chat message needs no UTF-8 decoding (this runs for every
		 * publish on the broker's thread): 8 bytes a step, then by byte. */
		while(end - p >= 8){
			uint64_t v;
			memcpy(&v, p, 8);
			if(!plain8(v)) break;
			p += 8;
		}
		while(p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
		c->p = p;
		if(p == end) break;
		ch = *p;
		if(ch == '"'){
			out->ptr = (const char *)start;
			out->len = (size_t)(c->p - start);
			c->p++;
			return true;
		}else if(ch == '\\'){
			out->escaped = true;
			if(c->end - c->p < 2) return fail(c, "unterminated string");
			ch = c->p[1];
			if(ch == 'u'){
				long cp;
				if(c->end - c->p < 6) return fail(c, "bad \\u escape");
				cp = hex4(c->p + 2);
				if(cp < 0) return fail(c, "bad \\u escape");
				if(cp == 0) return fail(c, "NUL in string");
				c->p += 6;
				if(cp >= 0xDC00 && cp <= 0xDFFF) return fail(c, "lone surrogate escape");
				if(cp >= 0xD800 && cp <= 0xDBFF){
					long lo;
					if(c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u'){
						return fail(c, "lone surrogate escape");
					}
					lo = hex4(c->p + 2);
					if(lo < 0xDC00 || lo > 0xDFFF) return fail(c, "lone surrogate escape");
					c->p += 6;
				}
			}else if(ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f'
					|| ch == 'n' || ch == 'r' || ch == 't'){
				c->p += 2;
			}else{
				return fail(c, "bad escape");
			}
		}else if(ch < 0x20){
			return fail(c, "control character in string");
		}else{
			size_t n = utf8_seq(c->p, c->end);
			if(n == 0) return fail(c, "not valid UTF-8");
			c->p += n;
		}
	}
	return fail(c, "unterminated string");
}

/* Parse a JSON number. If it is an integer that fits, *ival and *is_int are set. */
static bool parse_number(struct cursor *c, int64_t *ival, bool *is_int)
{
	bool neg = false, overflow = false;
	int64_t v = 0;

	*is_int = true;
	if(*c->p == '-'){
		neg = true;
		c->p++;
	}
	if(c->p >= c->end) return fail(c, "bad number");
	if(*c->p == '0'){
		c->p++;
	}else if(*c->p >= '1' && *c->p <= '9'){
		while(c->p < c->end && *c->p >= '0' && *c->p <= '9'){
			int d = *c->p - '0';
			/* Exact bound: v * 10 + d <= ENVELOPE_MAX_TS. */
			if(overflow || v > ENVELOPE_MAX_TS / 10
					|| (v == ENVELOPE_MAX_TS / 10 && d > ENVELOPE_MAX_TS % 10)){
				overflow = true;
			}else{
				v = v * 10 + d;
			}
			c->p++;
		}
	}else{
		return fail(c, "bad number");
	}
	if(c->p < c->end && *c->p == '.'){
		*is_int = false;
		c->p++;
		if(c->p >= c->end || *c->p < '0' || *c->p > '9') return fail(c, "bad number");
		while(c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
	}
	if(c->p < c->end && (*c->p == 'e' || *c->p == 'E')){
		*is_int = false;
		c->p++;
		if(c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
		if(c->p >= c->end || *c->p < '0' || *c->p > '9') return fail(c, "bad number");
		while(c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
	}
	if(overflow) *is_int = false;
	*ival = neg ? -v : v;
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

static bool str_is(const struct envelope_str *s, const char *lit)
{
	size_t n = strlen(lit);
	return !s->escaped && s->len == n && memcmp(s->ptr, lit, n) == 0;
}

enum member {
	M_ID, M_TYPE, M_BODY, M_REF, M_STATUS, M_TS, M_OTHER
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
	if(str_is(key, "id")) return M_ID;
	if(str_is(key, "type")) return M_TYPE;
	if(str_is(key, "body")) return M_BODY;
	if(str_is(key, "ref")) return M_REF;
	if(str_is(key, "status")) return M_STATUS;
	if(str_is(key, "ts")) return M_TS;
	return M_OTHER;
}

/* Parse the value of a known string member into *out. */
static bool string_member(struct cursor *c, struct envelope_str *out, const char *why)
{
	skip_ws(c);
	if(c->p >= c->end || *c->p != '"') return fail(c, why);
	return parse_string(c, out);
}

static bool parse_member(struct cursor *c, struct envelope *env, enum member m,
		struct envelope_str *type)
{
	int64_t iv;
	bool is_int;
	struct envelope_str status;

	switch(m){
		case M_ID:
			if(!string_member(c, &env->id, "id is not a string")) return false;
			if(env->id.escaped || !names__valid_msgid(env->id.ptr, env->id.len)){
				return fail(c, "invalid id");
			}
			return true;
		case M_TYPE:
			return string_member(c, type, "type is not a string");
		case M_BODY:
			return string_member(c, &env->body, "body is not a string");
		case M_REF:
			if(!string_member(c, &env->ref, "ref is not a string")) return false;
			if(env->ref.escaped || !names__valid_msgid(env->ref.ptr, env->ref.len)){
				return fail(c, "invalid ref");
			}
			return true;
		case M_STATUS:
			if(!string_member(c, &status, "status is not a string")) return false;
			if(str_is(&status, "delivered")) env->status = ENVELOPE_STATUS_DELIVERED;
			else if(str_is(&status, "read")) env->status = ENVELOPE_STATUS_READ;
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

			skip_ws(&c);
			if(c.p >= c.end || *c.p != '"'){
				fail(&c, "not valid JSON");
				goto out;
			}
			if(!parse_string(&c, &key)) goto out;
			skip_ws(&c);
			if(c.p >= c.end || *c.p != ':'){
				fail(&c, "not valid JSON");
				goto out;
			}
			c.p++;
			m = member_of(&key);
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
	}else if(str_is(&type, "text")){
		env->type = ENVELOPE_TEXT;
		if(!(seen & (1u << M_BODY))) fail(&c, "text without body");
		else if(env->body.len == 0) fail(&c, "empty body");
		else if(seen & (1u << M_STATUS)) fail(&c, "text with status");
	}else if(str_is(&type, "receipt")){
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
