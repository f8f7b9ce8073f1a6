/* envelope.c - single-pass, allocation-free envelope validation (see envelope.h). */
#include <string.h>

#include "envelope.h"
#include "fast_digits.h"
#include "fast_scan.h"
#include "names.h"

/* Every step takes the position it starts at and returns the one after what
 * it read, or NULL after setting *why to the reason: envelope__parse keeps
 * its position and the payload's end in registers, and only a failure
 * writes to memory. A step given NULL is never called (callers stop at the
 * first failure), so the first reason is the one reported. */

/* For the steps of one member (number, string value, dispatch): inlined
 * into envelope__parse, they cost no call. */
#define HOT_INLINE static inline __attribute__((always_inline))

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

/* The end of the run of UTF-8 text that starts at p (p[0] >= 0x80): its
 * multi-byte sequences and the single plain ASCII bytes between two of
 * them (the space between words). Returns the first byte after it (ASCII,
 * or end), or NULL if a sequence is invalid. The rules of utf8_seq, with
 * the range of the second byte settled by the lead byte (E0: no overlong
 * form, ED: no surrogate, F0: no overlong form, F4: nothing past
 * U+10FFFF), so text in a non-Latin script costs one pass and no call per
 * character. */
static const unsigned char *utf8_run(const unsigned char *p, const unsigned char *end)
{
	for(;;){
		unsigned c0 = p[0], c1, lo = 0x80, hi = 0xBF;

		if(c0 < 0xC2 || c0 > 0xF4 || end - p < 2) return NULL;
		c1 = p[1];
		if(c0 < 0xE0){
			if((c1 & 0xC0) != 0x80) return NULL;
			p += 2;
		}else{
			if(c0 == 0xE0) lo = 0xA0;
			else if(c0 == 0xED) hi = 0x9F;
			else if(c0 == 0xF0) lo = 0x90;
			else if(c0 == 0xF4) hi = 0x8F;
			if(c1 < lo || c1 > hi || end - p < 3 || (p[2] & 0xC0) != 0x80) return NULL;
			if(c0 < 0xF0){
				p += 3;
			}else{
				if(end - p < 4 || (p[3] & 0xC0) != 0x80) return NULL;
				p += 4;
			}
		}
		if(p == end) return p;
		if(*p < 0x80){
			if(end - p < 2 || p[1] < 0x80 || !fast_scan__plain_byte(*p)) return p;
			p++;
		}
	}
}

/* Set *why and return NULL: a failed step. */
static const unsigned char *failed(const char **why, const char *reason)
{
	*why = reason;
	return NULL;
}

/* The first byte at or after p (at most end) that is not JSON whitespace. */
static const unsigned char *ws_run(const unsigned char *p, const unsigned char *end)
{
	while(p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
	return p;
}

/* Compact JSON has no whitespace: one compare settles the usual case. */
HOT_INLINE const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p <= ' ' ? ws_run(p, end) : p;
}

/* The byte ch at p, after any whitespace: its position, or NULL (without a
 * reason) if another byte or the end comes first. Compact JSON has it at p
 * and costs one compare. */
HOT_INLINE const unsigned char *expect(const unsigned char *p, const unsigned char *end,
		unsigned char ch)
{
	if(p < end && *p == ch) return p;
	p = ws_run(p, end);
	return p < end && *p == ch ? p : NULL;
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

/* The rest of a string from p, the first byte after start that is not
 * plain: every such byte gets the exact rules here. Returns the position
 * after the closing quote. */
static const unsigned char *string_rest(const unsigned char *begin, const unsigned char *end,
		const unsigned char *start, const unsigned char *p, struct envelope_str *out,
		const char **why)
{
	bool escaped = false;

	while(p < end){
		unsigned char ch = *p;

		if(ch == '"'){
			out->ptr = (const char *)start;
			out->len = (size_t)(p - start);
			out->escaped = escaped;
			return p + 1;
		}else if(ch == '\\'){
			escaped = true;
			if(end - p < 2) return failed(why, "unterminated string");
			ch = p[1];
			if(ch == 'u'){
				long cp;
				if(end - p < 6) return failed(why, "bad \\u escape");
				cp = hex4(p + 2);
				if(cp < 0) return failed(why, "bad \\u escape");
				if(cp == 0) return failed(why, "NUL in string");
				p += 6;
				if(cp >= 0xDC00 && cp <= 0xDFFF) return failed(why, "lone surrogate escape");
				if(cp >= 0xD800 && cp <= 0xDBFF){
					long lo;
					if(end - p < 6 || p[0] != '\\' || p[1] != 'u'){
						return failed(why, "lone surrogate escape");
					}
					lo = hex4(p + 2);
					if(lo < 0xDC00 || lo > 0xDFFF) return failed(why, "lone surrogate escape");
					p += 6;
				}
			}else if(ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f'
					|| ch == 'n' || ch == 'r' || ch == 't'){
				p += 2;
			}else{
				return failed(why, "bad escape");
			}
		}else if(ch < 0x20){
			return failed(why, "control character in string");
		}else{
			p = utf8_run(p, end);
			if(p == NULL) return failed(why, "not valid UTF-8");
		}
		p = fast_scan__plain_run(begin, p, end);
	}
	return failed(why, "unterminated string");
}

/* A JSON string at p (its opening quote) into *out. The run of plain ASCII
 * that makes up most of a chat message is skipped 16 and 32 bytes a step
 * (this runs for every publish on the broker's thread); a string that is
 * nothing else ends here, anything else goes on in string_rest. */
HOT_INLINE const unsigned char *parse_string(const unsigned char *begin,
		const unsigned char *end, const unsigned char *p, struct envelope_str *out,
		const char **why)
{
	const unsigned char *start = p + 1;

	p = fast_scan__plain_run(begin, start, end);
	if(p < end && *p == '"'){
		out->ptr = (const char *)start;
		out->len = (size_t)(p - start);
		out->escaped = false;
		return p + 1;
	}
	return string_rest(begin, end, start, p, out, why);
}

/* A JSON number at p (its first byte). If it is an integer in
 * [-ENVELOPE_MAX_TS, ENVELOPE_MAX_TS], *ival is it and *is_int is true;
 * otherwise *is_int is false. */
HOT_INLINE const unsigned char *parse_number(const unsigned char *p, const unsigned char *end,
		int64_t *ival, bool *is_int, const char **why)
{
	const unsigned char *digits;
	bool neg = false;
	uint64_t v = 0;

	*is_int = true;
	if(*p == '-'){
		neg = true;
		p++;
	}
	if(p >= end) return failed(why, "bad number");
	digits = p;
	if(*p == '0'){
		p++;
	}else if(*p >= '1' && *p <= '9'){
		/* Up to 16 digits fit a uint64_t with room to spare (ENVELOPE_MAX_TS
		 * has 16); more may wrap, but then the digit count alone refuses
		 * the value. A millisecond time has 13: 8, then 4, then 1. */
#if FAST_DIGITS_SWAR
		while(end - p >= 8){
			uint64_t w;
			memcpy(&w, p, 8);
			if(!fast_digits__eight(w)) break;
			v = v * 100000000u + fast_digits__eight_value(w);
			p += 8;
		}
		if(end - p >= 4){
			uint32_t w;
			memcpy(&w, p, 4);
			if(fast_digits__four(w)){
				v = v * 10000u + fast_digits__four_value(w);
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
		return failed(why, "bad number");
	}
	if(p < end && *p == '.'){
		*is_int = false;
		p++;
		if(p >= end || *p < '0' || *p > '9') return failed(why, "bad number");
		while(p < end && *p >= '0' && *p <= '9') p++;
	}
	if(p < end && (*p == 'e' || *p == 'E')){
		*is_int = false;
		p++;
		if(p < end && (*p == '+' || *p == '-')) p++;
		if(p >= end || *p < '0' || *p > '9') return failed(why, "bad number");
		while(p < end && *p >= '0' && *p <= '9') p++;
	}
	*ival = !*is_int ? 0 : neg ? -(int64_t)v : (int64_t)v;
	return p;
}

static const unsigned char *literal(const unsigned char *p, const unsigned char *end,
		const char *word, const char **why)
{
	size_t n = strlen(word);

	if((size_t)(end - p) < n || memcmp(p, word, n) != 0) return failed(why, "not valid JSON");
	return p + n;
}

/* Skip any JSON value (for unknown members), at most depth levels deep. */
static const unsigned char *skip_value(const unsigned char *begin, const unsigned char *end,
		const unsigned char *p, int depth, const char **why)
{
	struct envelope_str s;
	int64_t iv;
	bool is_int;
	unsigned char close;

	p = skip_ws(p, end);
	if(p >= end) return failed(why, "not valid JSON");
	switch(*p){
		case '"': return parse_string(begin, end, p, &s, why);
		case 't': return literal(p, end, "true", why);
		case 'f': return literal(p, end, "false", why);
		case 'n': return literal(p, end, "null", why);
		case '{':
		case '[':
			close = (*p == '{') ? '}' : ']';
			if(depth <= 0) return failed(why, "nested too deep");
			p = skip_ws(p + 1, end);
			if(p < end && *p == close) return p + 1;
			for(;;){
				if(close == '}'){
					p = skip_ws(p, end);
					if(p >= end || *p != '"') return failed(why, "not valid JSON");
					if((p = parse_string(begin, end, p, &s, why)) == NULL) return NULL;
					p = skip_ws(p, end);
					if(p >= end || *p != ':') return failed(why, "not valid JSON");
					p++;
				}
				if((p = skip_value(begin, end, p, depth - 1, why)) == NULL) return NULL;
				p = skip_ws(p, end);
				if(p >= end) return failed(why, "not valid JSON");
				if(*p == ',') p++;
				else if(*p == close) return p + 1;
				else return failed(why, "not valid JSON");
			}
		default:
			if(*p == '-' || (*p >= '0' && *p <= '9')) return parse_number(p, end, &iv, &is_int, why);
			return failed(why, "not valid JSON");
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

/* A known member name at p (its opening quote) written plainly and
 * followed at once by ':', as compact JSON has it: the member, and *next
 * the byte after the colon. M_UNMATCHED for anything else (whitespace,
 * escapes, another name), which the general path parses; for these exact
 * bytes it would find the same member. */
HOT_INLINE enum member plain_key(const unsigned char *p, const unsigned char *end,
		const unsigned char **next)
{
	size_t avail = (size_t)(end - p);
#define KEY_AT(lit, m) do{ \
		if(avail >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0){ \
			*next = p + sizeof(lit) - 1; \
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

/* The value of a known string member at p into *out; reason if it is not
 * a string. */
HOT_INLINE const unsigned char *string_member(const unsigned char *begin,
		const unsigned char *end, const unsigned char *p, struct envelope_str *out,
		const char *reason, const char **why)
{
	if((p = expect(p, end, '"')) == NULL) return failed(why, reason);
	return parse_string(begin, end, p, out, why);
}

/* The value of "id" or "ref": a plain string in the message-id grammar. */
HOT_INLINE const unsigned char *msgid_member(const unsigned char *begin,
		const unsigned char *end, const unsigned char *p, struct envelope_str *out,
		const char *not_string, const char *invalid, const char **why)
{
	if((p = expect(p, end, '"')) == NULL) return failed(why, not_string);
	/* The usual id: 1..15 bytes of the id alphabet (none of them special
	 * in a JSON string), then the closing quote, found with one 16-byte
	 * step when the payload has 16 bytes after the opening quote. It is
	 * what the general way below finds for these bytes; anything else
	 * (longer, escaped, empty, not an id) takes that way. */
	if(end - p > 16){
		unsigned n = fast_scan__msgid_span16((const char *)p + 1);

		if(n > 0 && n < 16 && p[n + 1] == '"'){
			out->ptr = (const char *)p + 1;
			out->len = n;
			out->escaped = false;
			return p + n + 2;
		}
	}
	if((p = parse_string(begin, end, p, out, why)) == NULL) return NULL;
	if(out->escaped || !fast_scan__msgid_in(out->ptr, out->len, (const char *)begin,
				(const char *)end)){
		return failed(why, invalid);
	}
	return p;
}

static const char *const event_names[ENVELOPE_EVENT_COUNT] = {
	[ENVELOPE_EVENT_CREATED] = "created",
	[ENVELOPE_EVENT_JOINED] = "joined",
	[ENVELOPE_EVENT_ADDED] = "added",
	[ENVELOPE_EVENT_REMOVED] = "removed",
	[ENVELOPE_EVENT_LEFT] = "left",
	[ENVELOPE_EVENT_PROMOTED] = "promoted",
	[ENVELOPE_EVENT_DEMOTED] = "demoted",
	[ENVELOPE_EVENT_CHANGED] = "changed",
	[ENVELOPE_EVENT_DELETED] = "deleted",
};

const char *envelope__event_name(enum envelope_event ev)
{
	return ev > ENVELOPE_EVENT_NONE && ev < ENVELOPE_EVENT_COUNT ? event_names[ev] : "?";
}

/* The event named by the raw string s (escapes are not names). */
static enum envelope_event event_of(const struct envelope_str *s)
{
	size_t i;

	if(s->escaped) return ENVELOPE_EVENT_NONE;
	for(i = 1; i < ENVELOPE_EVENT_COUNT; i++){
		if(s->len == strlen(event_names[i]) && memcmp(s->ptr, event_names[i], s->len) == 0){
			return (enum envelope_event)i;
		}
	}
	return ENVELOPE_EVENT_NONE;
}

/* An event's "user" or "by": absent (ptr NULL, !seen), or a plain valid
 * account name. */
static bool event_name_ok(const struct envelope_str *s, bool seen)
{
	return !seen || (s->ptr != NULL && !s->escaped && names__valid(s->ptr, s->len));
}

/* Which of an event's own members the name key is, by its decoded bytes
 * as member_of reads the others: 1 event, 2 user, 3 by, 0 none. */
static int event_key(const struct envelope_str *key)
{
	char buf[6 * 5 + 1];
	long n = (long)key->len;
	const char *k = key->ptr;

	if(key->escaped){
		if(key->len >= sizeof(buf) || (n = envelope__unescape(key, buf, sizeof(buf))) < 0) return 0;
		k = buf;
	}
	if(n == 5 && memcmp(k, "event", 5) == 0) return 1;
	if(n == 4 && memcmp(k, "user", 4) == 0) return 2;
	if(n == 2 && memcmp(k, "by", 2) == 0) return 3;
	return 0;
}

/* The members of a membership event (the whole object at begin..end,
 * valid already): event, user and by into env, each once at most. A
 * second pass of its own, out of line, so that a chat message's parse
 * never looks for them. NULL, or why the event is refused. */
static __attribute__((noinline)) const char *event_members(const unsigned char *begin,
		const unsigned char *end, struct envelope *env)
{
	const unsigned char *p = expect(begin, end, '{');
	struct envelope_str key, str, *out;
	unsigned seen = 0;
	const char *why = NULL;
	int k;

	env->event = ENVELOPE_EVENT_NONE;
	env->user = (struct envelope_str){0};
	env->by = (struct envelope_str){0};
	p = p ? skip_ws(p + 1, end) : NULL;
	while(p != NULL && p < end && *p == '"'){
		if((p = parse_string(begin, end, p, &key, &why)) == NULL) return why;
		if((p = expect(p, end, ':')) == NULL) return "not valid JSON";
		p = skip_ws(p + 1, end);
		k = event_key(&key);
		if(k != 0){
			if(seen & (1u << k)) return "duplicate member";
			seen |= 1u << k;
		}
		if(k != 0 && p < end && *p == '"'){
			out = k == 2 ? &env->user : k == 3 ? &env->by : &str;
			if((p = parse_string(begin, end, p, out, &why)) == NULL) return why;
			if(k == 1) env->event = event_of(&str);
		}else{
			if(k == 2 || k == 3) return k == 2 ? "invalid user" : "invalid by";
			if((p = skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, &why)) == NULL) return why;
		}
		p = skip_ws(p, end);
		if(p < end && *p == ',') p = skip_ws(p + 1, end);
	}
	if(env->event == ENVELOPE_EVENT_NONE) return "invalid event";
	if(!event_name_ok(&env->user, seen & (1u << 2))) return "invalid user";
	if(!event_name_ok(&env->by, seen & (1u << 3))) return "invalid by";
	return NULL;
}

/* The value of a member m whose name ends before p. */
HOT_INLINE const unsigned char *parse_member(const unsigned char *begin,
		const unsigned char *end, const unsigned char *p, enum member m,
		struct envelope *env, enum envelope_type *type, const char **why)
{
	struct envelope_str str;
	int64_t iv;
	bool is_int;

	switch(m){
		case M_ID:
			return msgid_member(begin, end, p, &env->id, "id is not a string", "invalid id", why);
		case M_TYPE:
			/* A chat message's type as compact JSON writes it: what the
			 * general way finds for these 6 bytes, without the string scan. */
			if(end - p >= 6 && memcmp(p, "\"text\"", 6) == 0){
				*type = ENVELOPE_TEXT;
				return p + 6;
			}
			p = string_member(begin, end, p, &str, "type is not a string", why);
			if(p == NULL) return NULL;
			if(STR_IS(&str, "text")) *type = ENVELOPE_TEXT;
			else if(STR_IS(&str, "receipt")) *type = ENVELOPE_RECEIPT;
			else if(STR_IS(&str, "event")) *type = ENVELOPE_EVENT;
			return p;
		case M_BODY:
			return string_member(begin, end, p, &env->body, "body is not a string", why);
		case M_REF:
			return msgid_member(begin, end, p, &env->ref, "ref is not a string", "invalid ref", why);
		case M_STATUS:
			p = string_member(begin, end, p, &str, "status is not a string", why);
			if(p == NULL) return NULL;
			if(STR_IS(&str, "delivered")) env->status = ENVELOPE_STATUS_DELIVERED;
			else if(STR_IS(&str, "read")) env->status = ENVELOPE_STATUS_READ;
			else return failed(why, "invalid status");
			return p;
		case M_TS:
			p = skip_ws(p, end);
			if(p >= end || (*p != '-' && (*p < '0' || *p > '9'))){
				return failed(why, "ts is not a number");
			}
			if((p = parse_number(p, end, &iv, &is_int, why)) == NULL) return NULL;
			if(!is_int || iv < 0) return failed(why, "ts is not a non-negative integer");
			env->ts = iv;
			env->has_ts = true;
			return p;
		case M_OTHER:
		case M_UNMATCHED:       /* never: the name was parsed the general way */
			break;
	}
	return skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, why);
}

/* Stop at the first failure: its reason is the verdict. */
#define REFUSE(reason) do{ why = (reason); goto out; }while(0)

bool envelope__parse(const void *payload, size_t len, struct envelope *env,
		const char **why_out)
{
	const unsigned char *const begin = payload, *end, *p;
	const char *why = NULL;
	enum envelope_type type = 0;      /* of a "type" that is neither: 0 */
	unsigned seen = 0;

	/* Member by member, not memset: the compiler's memset of this size
	 * is a string instruction with a start-up cost. */
	env->type = 0;
	env->id = (struct envelope_str){0};
	env->body = (struct envelope_str){0};
	env->ref = (struct envelope_str){0};
	env->status = ENVELOPE_STATUS_NONE;
	env->has_ts = false;
	env->ts = 0;
	if(payload == NULL || len == 0) REFUSE("empty payload");
	end = begin + len;
	if((p = expect(begin, end, '{')) == NULL) REFUSE("not a JSON object");
	p = skip_ws(p + 1, end);
	if(p < end && *p == '}'){
		p++;
	}else{
		for(;;){
			struct envelope_str key;
			enum member m;

			if((p = expect(p, end, '"')) == NULL) REFUSE("not valid JSON");
			m = plain_key(p, end, &p);
			if(m == M_UNMATCHED){
				if((p = parse_string(begin, end, p, &key, &why)) == NULL) goto out;
				if((p = expect(p, end, ':')) == NULL) REFUSE("not valid JSON");
				p++;
				m = member_of(&key);
			}
			if(m != M_OTHER){
				if(seen & (1u << m)) REFUSE("duplicate member");
				seen |= 1u << m;
			}
			if((p = parse_member(begin, end, p, m, env, &type, &why)) == NULL) goto out;
			/* A ',' right after the value is the usual case. */
			if(p < end && *p == ','){
				p++;
				continue;
			}
			p = skip_ws(p, end);
			if(p >= end) REFUSE("not valid JSON");
			if(*p == ','){
				p++;
				continue;
			}
			if(*p == '}'){
				p++;
				break;
			}
			REFUSE("not valid JSON");
		}
	}
	if(p != end && ws_run(p, end) != end) REFUSE("trailing data after the object");

	if(!(seen & (1u << M_ID))){
		why = "missing id";
	}else if(!(seen & (1u << M_TYPE))){
		why = "missing type";
	}else if(type == ENVELOPE_TEXT){
		env->type = ENVELOPE_TEXT;
		if(!(seen & (1u << M_BODY))) why = "text without body";
		else if(env->body.len == 0) why = "empty body";
		else if(seen & (1u << M_STATUS)) why = "text with status";
	}else if(type == ENVELOPE_RECEIPT){
		env->type = ENVELOPE_RECEIPT;
		if(!(seen & (1u << M_REF))) why = "receipt without ref";
		else if(!(seen & (1u << M_STATUS))) why = "receipt without status";
		else if(seen & (1u << M_BODY)) why = "receipt with body";
	}else if(type == ENVELOPE_EVENT){
		env->type = ENVELOPE_EVENT;
		if(seen & ((1u << M_BODY) | (1u << M_REF) | (1u << M_STATUS))) why = "event with body, ref or status";
		else why = event_members(begin, end, env);
	}else{
		why = "unknown type";
	}

out:
	if(why_out) *why_out = why;
	return why == NULL;
}
#undef REFUSE

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
