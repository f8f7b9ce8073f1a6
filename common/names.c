/* names.c - the name grammar of the wire contract (see names.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fast_scan.h"
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

/* Ranges are GNU C designators (gcc and clang): the same 256 bytes. */
static const unsigned char char_class[256] = {
	['0' ... '9'] = C_LOWER,
	['a' ... 'z'] = C_LOWER,
	['A' ... 'Z'] = C_UPPER,
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

bool names__valid_msgid(const char *s, size_t len)
{
	if(s == NULL || len == 0 || len > MSGID_MAX_LEN) return false;
	/* Every envelope's id is checked on the broker thread. */
	if(FAST_SCAN_SIMD && len >= 16) return fast_scan__msgid_long(s, len);
	return all_in(s, len, MSGID_CHARS);
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

bool names__register_clientid(const char *id, size_t len, size_t *device_len)
{
	const size_t plen = sizeof(REGISTER_USER "@") - 1;

	if(id == NULL || len <= plen || len > CLIENTID_MAX_LEN) return false;
	if(memcmp(id, REGISTER_USER "@", plen) != 0) return false;
	if(!names__valid_device(id + plen, len - plen)) return false;
	if(device_len) *device_len = len - plen;
	return true;
}

/* ---- nicks (see names.h) ---- */

/* The code point at p (p < end) into *cp; returns its length in bytes, or
 * 0 if the bytes there are not UTF-8 (overlong, surrogate, past U+10FFFF,
 * cut short): the rules of utf8__valid. */
static size_t utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t n, i;

	if(c < 0x80){
		*cp = c;
		return 1;
	}
	if(c >= 0xC2 && c <= 0xDF){
		n = 2, c &= 0x1F, min = 0x80;
	}else if(c >= 0xE0 && c <= 0xEF){
		n = 3, c &= 0x0F, min = 0x800;
	}else if(c >= 0xF0 && c <= 0xF4){
		n = 4, c &= 0x07, min = 0x10000;
	}else{
		return 0;
	}
	if((size_t)(end - p) < n) return 0;
	for(i=1; i<n; i++){
		if((p[i] & 0xC0) != 0x80) return 0;
		c = (c << 6) | (p[i] & 0x3Fu);
	}
	if(c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
	*cp = c;
	return n;
}

/* c as UTF-8 into out (4 bytes); returns the length. */
static size_t utf8_encode(uint32_t c, unsigned char *out)
{
	if(c < 0x80){
		out[0] = (unsigned char)c;
		return 1;
	}
	if(c < 0x800){
		out[0] = (unsigned char)(0xC0 | (c >> 6));
		out[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	if(c < 0x10000){
		out[0] = (unsigned char)(0xE0 | (c >> 12));
		out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (c >> 18));
	out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (c & 0x3F));
	return 4;
}

/* Why a character may not be in a nick. */
enum refusal {
	R_CONTROL,
	R_BIDI,
	R_INVISIBLE,
	R_NONCHAR,
};

static const char *const refusal_text[] = {
	[R_CONTROL] = "is a control character",
	[R_BIDI] = "is a bidirectional control: it reorders the text around it",
	[R_INVISIBLE] = "is invisible",
	[R_NONCHAR] = "is not a character",
};

/* Characters no nick may hold, by code point (names.h has the list). */
static const struct refused {
	uint32_t lo, hi;
	const char *name;     /* the Unicode name, or NULL for a range */
	enum refusal why;
} refused[] = {
	{0x0000, 0x001F, NULL, R_CONTROL},
	{0x007F, 0x009F, NULL, R_CONTROL},
	{0x00AD, 0x00AD, "SOFT HYPHEN", R_INVISIBLE},
	{0x034F, 0x034F, "COMBINING GRAPHEME JOINER", R_INVISIBLE},
	{0x061C, 0x061C, "ARABIC LETTER MARK", R_BIDI},
	{0x115F, 0x115F, "HANGUL CHOSEONG FILLER", R_INVISIBLE},
	{0x1160, 0x1160, "HANGUL JUNGSEONG FILLER", R_INVISIBLE},
	{0x180E, 0x180E, "MONGOLIAN VOWEL SEPARATOR", R_INVISIBLE},
	{0x200B, 0x200B, "ZERO WIDTH SPACE", R_INVISIBLE},
	{0x200C, 0x200C, "ZERO WIDTH NON-JOINER", R_INVISIBLE},
	{0x200D, 0x200D, "ZERO WIDTH JOINER", R_INVISIBLE},
	{0x200E, 0x200E, "LEFT-TO-RIGHT MARK", R_BIDI},
	{0x200F, 0x200F, "RIGHT-TO-LEFT MARK", R_BIDI},
	{0x2028, 0x2028, "LINE SEPARATOR", R_INVISIBLE},
	{0x2029, 0x2029, "PARAGRAPH SEPARATOR", R_INVISIBLE},
	{0x202A, 0x202A, "LEFT-TO-RIGHT EMBEDDING", R_BIDI},
	{0x202B, 0x202B, "RIGHT-TO-LEFT EMBEDDING", R_BIDI},
	{0x202C, 0x202C, "POP DIRECTIONAL FORMATTING", R_BIDI},
	{0x202D, 0x202D, "LEFT-TO-RIGHT OVERRIDE", R_BIDI},
	{0x202E, 0x202E, "RIGHT-TO-LEFT OVERRIDE", R_BIDI},
	{0x2060, 0x2060, "WORD JOINER", R_INVISIBLE},
	{0x2061, 0x2064, NULL, R_INVISIBLE},          /* invisible operators */
	{0x2066, 0x2066, "LEFT-TO-RIGHT ISOLATE", R_BIDI},
	{0x2067, 0x2067, "RIGHT-TO-LEFT ISOLATE", R_BIDI},
	{0x2068, 0x2068, "FIRST STRONG ISOLATE", R_BIDI},
	{0x2069, 0x2069, "POP DIRECTIONAL ISOLATE", R_BIDI},
	{0x206A, 0x206F, NULL, R_INVISIBLE},          /* deprecated format characters */
	{0x2800, 0x2800, "BRAILLE PATTERN BLANK", R_INVISIBLE},
	{0x3164, 0x3164, "HANGUL FILLER", R_INVISIBLE},
	{0xFEFF, 0xFEFF, "ZERO WIDTH NO-BREAK SPACE", R_INVISIBLE},
	{0xFFA0, 0xFFA0, "HALFWIDTH HANGUL FILLER", R_INVISIBLE},
	{0xFFF9, 0xFFFB, NULL, R_INVISIBLE},          /* interlinear annotation */
	{0xFFFE, 0xFFFF, NULL, R_NONCHAR},
	{0xE0000, 0xE007F, NULL, R_INVISIBLE},        /* tags */
};

/* The entry of refused[] that holds c, or NULL. The table is short and
 * nicks are set rarely: a plain scan. */
static const struct refused *nick_refused(uint32_t c)
{
	size_t i;

	for(i=0; i<sizeof(refused)/sizeof(refused[0]); i++){
		if(c >= refused[i].lo && c <= refused[i].hi) return &refused[i];
	}
	return NULL;
}

/* Spaces: refused at either end of a nick, dropped from keys. */
static bool is_space(uint32_t c)
{
	return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A)
		|| c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Combining marks and variation selectors: they change the character
 * before them and show nothing on their own. */
static bool is_mark(uint32_t c)
{
	return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF)
		|| (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF)
		|| (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFE20 && c <= 0xFE2F)
		|| (c >= 0xE0100 && c <= 0xE01EF);
}

/* More marks than this on one character pile up over the lines around it. */
#define NICK_MAX_MARKS 4

/* Write "U+XXXX[ NAME] at character N <why>" into err. */
static void nick_char_err(char *err, size_t errlen, uint32_t c, const char *name, size_t pos,
		const char *why)
{
	if(err == NULL || errlen == 0) return;
	snprintf(err, errlen, "U+%04X%s%s at character %zu %s", (unsigned)c, name ? " " : "",
			name ? name : "", pos, why);
}

bool names__nick_valid(const char *s, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s, *end;
	const struct refused *r;
	size_t n, pos = 0, marks = 0;
	uint32_t c = 0;

	if(s == NULL || len == 0){
		if(err && errlen) snprintf(err, errlen, "empty: a nick is 1..%d bytes of UTF-8", NICK_MAX_LEN);
		return false;
	}
	if(len > NICK_MAX_LEN){
		if(err && errlen){
			snprintf(err, errlen, "%zu bytes long: a nick is 1..%d bytes of UTF-8", len, NICK_MAX_LEN);
		}
		return false;
	}
	for(end = p + len; p < end; p += n){
		n = utf8_decode(p, end, &c);
		if(n == 0){
			if(err && errlen){
				snprintf(err, errlen, "byte %zu (0x%02X) is not UTF-8",
						(size_t)(p - (const unsigned char *)s) + 1, *p);
			}
			return false;
		}
		pos++;
		if((r = nick_refused(c)) != NULL){
			nick_char_err(err, errlen, c, r->name, pos, refusal_text[r->why]);
			return false;
		}
		if(pos == 1 && is_space(c)){
			nick_char_err(err, errlen, c, NULL, pos, "is a space: a nick may not start with one");
			return false;
		}
		marks = is_mark(c) ? marks + 1 : 0;
		if(pos == 1 && marks){
			nick_char_err(err, errlen, c, NULL, pos,
					"is a combining mark: a nick may not start with one (it would join the text before it)");
			return false;
		}
		if(marks > NICK_MAX_MARKS){
			nick_char_err(err, errlen, c, NULL, pos, "is one combining mark too many on one character");
			return false;
		}
	}
	if(is_space(c)){
		nick_char_err(err, errlen, c, NULL, pos, "is a space: a nick may not end with one");
		return false;
	}
	return true;
}

/* Upper to lower case in the scripts a key compares (Latin-1, Greek,
 * Cyrillic, fullwidth Latin); anything else is returned as it is. */
static uint32_t fold_case(uint32_t c)
{
	static const struct { uint32_t upper, lower; } single[] = {
		{0x037F, 0x03F3}, {0x03F9, 0x03F2}, {0x04AE, 0x04AF}, {0x04BA, 0x04BB},
		{0x04C0, 0x04CF}, {0x0500, 0x0501}, {0x051A, 0x051B}, {0x051C, 0x051D},
	};
	size_t i;

	if(c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;   /* fullwidth ASCII */
	if(c >= 'A' && c <= 'Z') return c + 0x20;
	if(c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
	if(c >= 0x0391 && c <= 0x03A9 && c != 0x03A2) return c + 0x20;
	if(c >= 0x0400 && c <= 0x040F) return c + 0x50;
	if(c >= 0x0410 && c <= 0x042F) return c + 0x20;
	for(i=0; i<sizeof(single)/sizeof(single[0]); i++){
		if(c == single[i].upper) return single[i].lower;
	}
	return c;
}

/* Lower-case letters that look like a Latin one (after fold_case, so an
 * upper-case Cyrillic 'В', which looks like 'B', is here as 'в'). By code
 * point. */
static const struct look_alike {
	uint32_t lo, hi;
	char latin;
} look_alike[] = {
	{0x00E0, 0x00E5, 'a'}, {0x00E7, 0x00E7, 'c'}, {0x00E8, 0x00EB, 'e'}, {0x00EC, 0x00EF, 'i'},
	{0x00F0, 0x00F0, 'd'}, {0x00F1, 0x00F1, 'n'}, {0x00F2, 0x00F6, 'o'}, {0x00F8, 0x00F8, 'o'},
	{0x00F9, 0x00FC, 'u'}, {0x00FD, 0x00FD, 'y'}, {0x00FF, 0x00FF, 'y'},
	{0x0130, 0x0131, 'i'},                                         /* İ ı */
	{0x01C0, 0x01C0, 'l'}, {0x0251, 0x0251, 'a'}, {0x0261, 0x0261, 'g'},
	/* Greek */
	{0x03B1, 0x03B1, 'a'}, {0x03B2, 0x03B2, 'b'}, {0x03B5, 0x03B5, 'e'}, {0x03B6, 0x03B6, 'z'},
	{0x03B7, 0x03B7, 'h'}, {0x03B9, 0x03B9, 'i'}, {0x03BA, 0x03BA, 'k'}, {0x03BC, 0x03BC, 'm'},
	{0x03BD, 0x03BD, 'n'}, {0x03BF, 0x03BF, 'o'}, {0x03C1, 0x03C1, 'p'}, {0x03C4, 0x03C4, 't'},
	{0x03C5, 0x03C5, 'y'}, {0x03C7, 0x03C7, 'x'}, {0x03F2, 0x03F2, 'c'}, {0x03F3, 0x03F3, 'j'},
	/* Cyrillic */
	{0x0430, 0x0430, 'a'}, {0x0432, 0x0432, 'b'}, {0x0435, 0x0435, 'e'}, {0x043A, 0x043A, 'k'},
	{0x043C, 0x043C, 'm'}, {0x043D, 0x043D, 'h'}, {0x043E, 0x043E, 'o'}, {0x0440, 0x0440, 'p'},
	{0x0441, 0x0441, 'c'}, {0x0442, 0x0442, 't'}, {0x0443, 0x0443, 'y'}, {0x0445, 0x0445, 'x'},
	{0x0451, 0x0451, 'e'}, {0x0455, 0x0455, 's'}, {0x0456, 0x0457, 'i'}, {0x0458, 0x0458, 'j'},
	{0x04AF, 0x04AF, 'y'}, {0x04BB, 0x04BB, 'h'}, {0x04CF, 0x04CF, 'l'}, {0x0501, 0x0501, 'd'},
	{0x051B, 0x051B, 'q'}, {0x051D, 0x051D, 'w'},
};

/* The Latin letter c looks like, or c itself. */
static uint32_t latin_of(uint32_t c)
{
	size_t lo = 0, hi = sizeof(look_alike) / sizeof(look_alike[0]);

	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;

		if(c < look_alike[mid].lo) hi = mid;
		else if(c > look_alike[mid].hi) lo = mid + 1;
		else return (uint32_t)(unsigned char)look_alike[mid].latin;
	}
	return c;
}

size_t names__nick_key(const char *s, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	unsigned char enc[4];
	size_t n, k = 0;
	uint32_t c;

	if(outlen == 0) return 0;
	while(p < end){
		if(*p < 0x80){
			/* Names and most nicks are ASCII: the same steps, short. A
			 * nick check keys every account, so this is the hot loop. */
			c = *p++;
			if(c < 0x20 || c == 0x7F || c == ' ' || c == '_' || c == '-' || c == '.') continue;
			if(c >= 'A' && c <= 'Z') c += 0x20;
		}else{
			n = utf8_decode(p, end, &c);
			if(n == 0){
				/* Not text: keep the byte, so different junk stays different. */
				if(k + 1 < outlen) out[k++] = (char)*p;
				p++;
				continue;
			}
			p += n;
			c = fold_case(c);   /* first: a fullwidth '-' is a '-' */
			if(is_space(c) || c == '_' || c == '-' || c == '.' || is_mark(c) || nick_refused(c)){
				continue;
			}
			c = latin_of(c);
		}
		if(c == 'i' || c == '1' || c == '|') c = 'l';
		if(c == '0') c = 'o';
		/* Two letters read as one: "rn" as "m", "vv" as "w". */
		if(k > 0 && ((c == 'n' && out[k - 1] == 'r') || (c == 'v' && out[k - 1] == 'v'))){
			out[k - 1] = c == 'n' ? 'm' : 'w';
			continue;
		}
		n = utf8_encode(c, enc);
		if(k + n >= outlen) break;
		memcpy(out + k, enc, n);
		k += n;
	}
	out[k] = '\0';
	return k;
}
