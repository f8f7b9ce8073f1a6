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
	M_ID, M_TYPE, M_BODY, M_REF, M_STATUS, M_TS,
	M_REPLY,        /* "reply_to" or "reply_from": read by extra_members */
	M_OTHER,
	M_UNMATCHED     /* plain_key only: parse the name the general way */
};

/* Longest raw member name that can decode to a known name: "reply_from"
 * with every character written as \uXXXX. */
#define KNOWN_KEY_MAX_RAW (6 * 10)

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
		case 8:
			return memcmp(key->ptr, "reply_to", 8) == 0 ? M_REPLY : M_OTHER;
		case 10:
			return memcmp(key->ptr, "reply_from", 10) == 0 ? M_REPLY : M_OTHER;
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

static const char *const type_names[] = {
	[ENVELOPE_TEXT] = "text",
	[ENVELOPE_RECEIPT] = "receipt",
	[ENVELOPE_EVENT] = "event",
	[ENVELOPE_REACTION] = "reaction",
	[ENVELOPE_EDIT] = "edit",
	[ENVELOPE_DELETE] = "delete",
	[ENVELOPE_READ] = "read",
};
#define TYPE_COUNT (sizeof(type_names) / sizeof(type_names[0]))

const char *envelope__type_name(enum envelope_type type)
{
	return (unsigned)type < TYPE_COUNT && type_names[type] ? type_names[type] : "?";
}

/* The members only some types have. The first pass skips them (a text's
 * reply marks that it saw one); a second pass of their own, out of line,
 * reads those of the parsed type, so that a chat message's parse never
 * looks for them. */
enum extra {
	X_NONE, X_EVENT, X_USER, X_BY, X_REPLY_TO, X_REPLY_FROM, X_OF, X_EMOJI,
	X_REMOVE, X_WITH, X_ROOM, X_SEQ, X_UNREAD, X_COUNT
};

static const char *const extra_names[X_COUNT] = {
	[X_EVENT] = "event", [X_USER] = "user", [X_BY] = "by",
	[X_REPLY_TO] = "reply_to", [X_REPLY_FROM] = "reply_from", [X_OF] = "of",
	[X_EMOJI] = "emoji", [X_REMOVE] = "remove", [X_WITH] = "with",
	[X_ROOM] = "room", [X_SEQ] = "seq", [X_UNREAD] = "unread",
};

/* Why a member of the type is refused when it is not what it must be. */
static const char *const extra_invalid[X_COUNT] = {
	[X_EVENT] = "invalid event", [X_USER] = "invalid user", [X_BY] = "invalid by",
	[X_REPLY_TO] = "invalid reply_to", [X_REPLY_FROM] = "invalid reply_from",
	[X_OF] = "invalid of", [X_EMOJI] = "invalid emoji", [X_REMOVE] = "invalid remove",
	[X_WITH] = "invalid with", [X_ROOM] = "invalid room", [X_SEQ] = "invalid seq",
	[X_UNREAD] = "invalid unread",
};

#define X(k) (1u << (k))

/* Which of them each type has. */
static const unsigned extra_of_type[TYPE_COUNT] = {
	[ENVELOPE_TEXT] = X(X_REPLY_TO) | X(X_REPLY_FROM),
	[ENVELOPE_EVENT] = X(X_EVENT) | X(X_USER) | X(X_BY),
	[ENVELOPE_REACTION] = X(X_OF) | X(X_EMOJI) | X(X_REMOVE),
	[ENVELOPE_EDIT] = X(X_OF) | X(X_BY) | X(X_WITH),
	[ENVELOPE_DELETE] = X(X_OF) | X(X_BY) | X(X_WITH),
	[ENVELOPE_READ] = X(X_WITH) | X(X_ROOM) | X(X_SEQ) | X(X_UNREAD),
};

/* Longest raw member name that can decode to one of them: "reply_from"
 * with every character written as \uXXXX. */
#define EXTRA_KEY_MAX_RAW (6 * 10)

/* Which of them the name key is, by its decoded bytes as member_of reads
 * the others; X_NONE if none. */
static enum extra extra_key(const struct envelope_str *key)
{
	char buf[EXTRA_KEY_MAX_RAW + 1];
	long n = (long)key->len;
	const char *k = key->ptr;
	int i;

	if(key->escaped){
		if(key->len > EXTRA_KEY_MAX_RAW || (n = envelope__unescape(key, buf, sizeof(buf))) < 0){
			return X_NONE;
		}
		k = buf;
	}
	for(i = X_NONE + 1; i < X_COUNT; i++){
		if((size_t)n == strlen(extra_names[i]) && memcmp(k, extra_names[i], (size_t)n) == 0){
			return (enum extra)i;
		}
	}
	return X_NONE;
}

/* The field of env that the string member k fills. */
static struct envelope_str *extra_field(struct envelope *env, enum extra k)
{
	switch(k){
		case X_USER: return &env->user;
		case X_BY: return &env->by;
		case X_REPLY_TO: return &env->reply_to;
		case X_REPLY_FROM: return &env->reply_from;
		case X_OF: return &env->of;
		case X_EMOJI: return &env->emoji;
		case X_WITH: return &env->with;
		case X_ROOM: return &env->room;
		default: return NULL;
	}
}

/* A plain account (or room) name. */
static bool name_ok(const struct envelope_str *s)
{
	return !s->escaped && names__valid(s->ptr, s->len);
}

/* The code point at p (valid UTF-8, as a decoded string is); *p moves past. */
static uint32_t next_cp(const unsigned char **p)
{
	const unsigned char *q = *p;
	uint32_t cp;

	if(q[0] < 0x80){ *p = q + 1; return q[0]; }
	if(q[0] < 0xE0){ *p = q + 2; return (uint32_t)(q[0] & 0x1F) << 6 | (q[1] & 0x3F); }
	if(q[0] < 0xF0){
		*p = q + 3;
		return (uint32_t)(q[0] & 0x0F) << 12 | (uint32_t)(q[1] & 0x3F) << 6 | (q[2] & 0x3F);
	}
	cp = (uint32_t)(q[0] & 0x07) << 18 | (uint32_t)(q[1] & 0x3F) << 12
		| (uint32_t)(q[2] & 0x3F) << 6 | (q[3] & 0x3F);
	*p = q + 4;
	return cp;
}

/* A control or space character: C0, space, DEL, C1, and the rest of
 * Unicode's White_Space (U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). */
static bool control_or_space(uint32_t cp)
{
	return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x1680
		|| (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029
		|| cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* A reaction's emoji: decodes to 1..ENVELOPE_EMOJI_MAX bytes, none of them
 * a control or space character. */
static bool emoji_ok(const struct envelope_str *s)
{
	char buf[ENVELOPE_EMOJI_MAX + 1];
	const unsigned char *p = (const unsigned char *)buf, *end;
	long n = envelope__unescape(s, buf, sizeof(buf));

	if(n <= 0) return false;
	end = p + n;
	while(p < end){
		if(control_or_space(next_cp(&p))) return false;
	}
	return true;
}

/* The members of its type that only the type has (the whole object at
 * begin..end, valid already), each once at most, into env; then the rules
 * of the type on them. NULL, or why the envelope is refused. */
static __attribute__((noinline)) const char *extra_members(const unsigned char *begin,
		const unsigned char *end, struct envelope *env, enum envelope_type type)
{
	const unsigned char *p = expect(begin, end, '{');
	const unsigned want = extra_of_type[type];
	struct envelope_str key, str;
	unsigned seen = 0;
	const char *why = NULL;
	int64_t iv;
	bool is_int;
	int k;

	for(k = X_NONE + 1; k < X_COUNT; k++){
		struct envelope_str *f = extra_field(env, (enum extra)k);
		if(f && (want & X(k))) *f = (struct envelope_str){0};
	}
	if(type == ENVELOPE_EVENT) env->event = ENVELOPE_EVENT_NONE;
	if(type == ENVELOPE_REACTION) env->remove = false;
	if(type == ENVELOPE_READ){
		env->has_seq = false;
		env->seq = 0;
		env->unread = 0;
	}
	p = p ? skip_ws(p + 1, end) : NULL;
	while(p != NULL && p < end && *p == '"'){
		if((p = parse_string(begin, end, p, &key, &why)) == NULL) return why;
		if((p = expect(p, end, ':')) == NULL) return "not valid JSON";
		p = skip_ws(p + 1, end);
		if(p >= end) return "not valid JSON";
		k = extra_key(&key);
		if(!(want & X(k))) k = X_NONE;
		if(k != X_NONE){
			if(seen & X(k)) return "duplicate member";
			seen |= X(k);
		}
		switch(k){
			case X_NONE:
				p = skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, &why);
				break;
			case X_EVENT:
				/* Not a string: no event, refused below. */
				if(*p != '"'){
					p = skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, &why);
					break;
				}
				p = parse_string(begin, end, p, &str, &why);
				if(p) env->event = event_of(&str);
				break;
			case X_REMOVE:
				if(*p == 't') env->remove = true;
				else if(*p != 'f') return extra_invalid[k];
				p = skip_value(begin, end, p, 0, &why);
				break;
			case X_SEQ:
			case X_UNREAD:
				if(*p != '-' && (*p < '0' || *p > '9')) return extra_invalid[k];
				if((p = parse_number(p, end, &iv, &is_int, &why)) == NULL) return why;
				if(!is_int || iv < 0) return extra_invalid[k];
				if(k == X_SEQ){
					env->seq = iv;
					env->has_seq = true;
				}else{
					env->unread = iv;
				}
				break;
			default:
				if(*p != '"') return extra_invalid[k];
				p = parse_string(begin, end, p, extra_field(env, (enum extra)k), &why);
				break;
		}
		if(p == NULL) return why;
		p = skip_ws(p, end);
		if(p < end && *p == ',') p = skip_ws(p + 1, end);
	}
	/* Names in the name grammar, the quoted id in the id grammar. */
	for(k = X_NONE + 1; k < X_COUNT; k++){
		const struct envelope_str *f = extra_field(env, (enum extra)k);

		if(f == NULL || !(seen & X(k))) continue;
		if(k == X_EMOJI ? !emoji_ok(f)
				: k == X_REPLY_TO ? f->escaped || !names__valid_msgid(f->ptr, f->len)
				: !name_ok(f)){
			return extra_invalid[k];
		}
	}
	switch(type){
		case ENVELOPE_TEXT:
			if((seen & X(X_REPLY_TO)) && !(seen & X(X_REPLY_FROM))) return "reply_to without reply_from";
			if(!(seen & X(X_REPLY_TO)) && (seen & X(X_REPLY_FROM))) return "reply_from without reply_to";
			break;
		case ENVELOPE_EVENT:
			if(env->event == ENVELOPE_EVENT_NONE) return "invalid event";
			break;
		case ENVELOPE_REACTION:
			if(!(seen & X(X_OF))) return "reaction without of";
			if(!(seen & X(X_EMOJI))) return "reaction without emoji";
			break;
		case ENVELOPE_EDIT:
		case ENVELOPE_DELETE:
			if(!(seen & X(X_OF))) return type == ENVELOPE_EDIT ? "edit without of" : "delete without of";
			if(!(seen & X(X_BY))) return type == ENVELOPE_EDIT ? "edit without by" : "delete without by";
			break;
		case ENVELOPE_READ:
			if(!(seen & (X(X_WITH) | X(X_ROOM)))) return "read without with or room";
			if((seen & X(X_WITH)) && (seen & X(X_ROOM))) return "read with both with and room";
			if(!(seen & X(X_SEQ))) return "read without seq";
			if(!(seen & X(X_UNREAD))) return "read without unread";
			break;
		default:
			break;
	}
	return NULL;
}
#undef X

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
			else if(STR_IS(&str, "reaction")) *type = ENVELOPE_REACTION;
			else if(STR_IS(&str, "edit")) *type = ENVELOPE_EDIT;
			else if(STR_IS(&str, "delete")) *type = ENVELOPE_DELETE;
			else if(STR_IS(&str, "read")) *type = ENVELOPE_READ;
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
		case M_REPLY:           /* never: the loop made it M_OTHER */
		case M_OTHER:
		case M_UNMATCHED:       /* never: the name was parsed the general way */
			break;
	}
	return skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, why);
}

#define SEEN(m) (seen & (1u << (m)))

/* The rules of the types other than text and receipt on the members of
 * the first pass, then extra_members. Out of line: a chat message's parse
 * never comes here. */
static __attribute__((noinline)) const char *other_type(const unsigned char *begin,
		const unsigned char *end, struct envelope *env, enum envelope_type type, unsigned seen)
{
	env->type = type;
	switch(type){
		case ENVELOPE_EVENT:
			if(SEEN(M_BODY) || SEEN(M_REF) || SEEN(M_STATUS)) return "event with body, ref or status";
			break;
		case ENVELOPE_REACTION:
			if(!SEEN(M_REF)) return "reaction without ref";
			if(SEEN(M_BODY) || SEEN(M_STATUS)) return "reaction with body or status";
			break;
		case ENVELOPE_EDIT:
			if(!SEEN(M_REF)) return "edit without ref";
			if(!SEEN(M_BODY)) return "edit without body";
			if(env->body.len == 0) return "empty body";
			if(SEEN(M_STATUS)) return "edit with status";
			break;
		case ENVELOPE_DELETE:
			if(!SEEN(M_REF)) return "delete without ref";
			if(SEEN(M_BODY) || SEEN(M_STATUS)) return "delete with body or status";
			break;
		case ENVELOPE_READ:
			if(SEEN(M_BODY) || SEEN(M_REF) || SEEN(M_STATUS)) return "read with body, ref or status";
			break;
		default:
			return "unknown type";
	}
	return extra_members(begin, end, env, type);
}
#undef SEEN

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
				/* Only a text has it: the type is not known yet, so
				 * note it (many are allowed: extra_members finds a
				 * repeated one) and read it after the pass. */
				if(m == M_REPLY){
					seen |= 1u << M_REPLY;
					m = M_OTHER;
				}
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
		else if(seen & ((1u << M_STATUS) | (1u << M_REPLY))){
			/* One test for the usual text, which has neither. */
			why = seen & (1u << M_STATUS) ? "text with status"
				: extra_members(begin, end, env, ENVELOPE_TEXT);
		}else{
			/* Absent: ptr NULL and len 0 (escaped is not read then); a
			 * whole struct's store costs a text twice as much. */
			env->reply_to.ptr = env->reply_from.ptr = NULL;
			env->reply_to.len = env->reply_from.len = 0;
		}
	}else if(type == ENVELOPE_RECEIPT){
		env->type = ENVELOPE_RECEIPT;
		if(!(seen & (1u << M_REF))) why = "receipt without ref";
		else if(!(seen & (1u << M_STATUS))) why = "receipt without status";
		else if(seen & (1u << M_BODY)) why = "receipt with body";
	}else if(type == 0){
		why = "unknown type";
	}else{
		why = other_type(begin, end, env, type, seen);
	}

out:
	if(why_out) *why_out = why;
	return why == NULL;
}

/* The name key decodes to "typing". */
static bool typing_key(const struct envelope_str *key)
{
	char buf[6 * 6 + 1];
	long n = (long)key->len;
	const char *k = key->ptr;

	if(key->escaped){
		if(key->len >= sizeof(buf) || (n = envelope__unescape(key, buf, sizeof(buf))) < 0) return false;
		k = buf;
	}
	return n == 6 && memcmp(k, "typing", 6) == 0;
}

bool envelope__parse_typing(const void *payload, size_t len, bool *typing, const char **why_out)
{
	const unsigned char *const begin = payload, *end, *p;
	const char *why = NULL;
	bool seen = false;

	*typing = false;
	if(payload == NULL || len == 0) REFUSE("empty payload");
	if(len > ENVELOPE_TYPING_MAX) REFUSE("typing payload too large");
	end = begin + len;
	if((p = expect(begin, end, '{')) == NULL) REFUSE("not a JSON object");
	p = skip_ws(p + 1, end);
	if(p < end && *p == '}'){
		p++;
	}else{
		for(;;){
			struct envelope_str key;

			if((p = expect(p, end, '"')) == NULL) REFUSE("not valid JSON");
			if((p = parse_string(begin, end, p, &key, &why)) == NULL) goto out;
			if((p = expect(p, end, ':')) == NULL) REFUSE("not valid JSON");
			p = skip_ws(p + 1, end);
			if(typing_key(&key)){
				if(seen) REFUSE("duplicate member");
				seen = true;
				if(p < end && *p == 't') *typing = true;
				else if(p >= end || *p != 'f') REFUSE("typing is not a boolean");
			}
			if((p = skip_value(begin, end, p, ENVELOPE_MAX_DEPTH, &why)) == NULL) goto out;
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
	if(!seen) why = "missing typing";

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
