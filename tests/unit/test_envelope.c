/* test_envelope.c - envelope__parse: member names are compared decoded.
 *
 * A member name written with escapes ("b\u006fdy") is the same member to
 * every JSON reader downstream; the archiver's jansson keeps the last of
 * duplicate keys. It must be validated and refused as a duplicate exactly
 * like the plain name, or a payload the plugin checked could carry another
 * id, type or body to the archive. Found by tests/fuzz/fuzz_envelope.c
 * (tests/fuzz/regressions/envelope/escaped_key_*.json).
 *
 * Also: the 16-bytes-a-step ASCII fast path of string parsing (and the
 * 8-digit number and 16-byte id paths) give the same answer as the
 * byte-by-byte rules wherever the special byte falls: at every offset of a
 * string within and across 16-byte blocks, at the very end of the payload,
 * in payloads of every short length cut at every point. Each payload is
 * parsed from a heap block of exactly its size, so a read past its end is
 * an error under `make test SAN=1`.
 *
 * And the shortcuts of the common envelope: every byte value at every
 * offset of the 16- and 32-byte steps, multi-byte UTF-8 checked a run at a
 * time (utf8__valid is the reference), the 1..15-byte id found with one
 * 16-byte step, and the type "text" taken at once; each next to the inputs
 * that must not take it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "fast_scan.h"
#include "names.h"

static bool parse(const char *s, const char **why)
{
	struct envelope env;

	*why = NULL;
	return envelope__parse(s, strlen(s), &env, why);
}

static void expect_refused(const char *s, const char *reason)
{
	const char *why;

	assert_false(parse(s, &why));
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_plain_envelopes_still_pass(void **state)
{
	const char *why;

	(void)state;
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":1}", &why));
	assert_true(parse("{\"id\":\"a\",\"type\":\"receipt\",\"ref\":\"b\",\"status\":\"read\"}", &why));
}

static void test_escaped_known_key_is_a_duplicate(void **state)
{
	(void)state;
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"b\\u006fdy\":\"evil\"}",
			"duplicate member");
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"\\u0069d\":\"b\"}",
			"duplicate member");
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"typ\\u0065\":\"receipt\"}",
			"duplicate member");
	/* Every character escaped: still "status", which a text may not have. */
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\","
			"\"\\u0073\\u0074\\u0061\\u0074\\u0075\\u0073\":\"read\"}", "text with status");
}

static void test_escaped_known_key_is_validated(void **state)
{
	struct envelope env;
	const char *why;
	const char *s = "{\"\\u0069d\":\"a\",\"type\":\"text\",\"b\\u006fdy\":\"x\"}";

	(void)state;
	/* Alone, an escaped "id" is the id: checked against the grammar ... */
	expect_refused("{\"\\u0069d\":\"../x\",\"type\":\"text\",\"body\":\"x\"}", "invalid id");
	/* ... and counted, so it satisfies "missing id" like the plain form. */
	assert_true(envelope__parse(s, strlen(s), &env, &why));
	assert_int_equal(env.id.len, 1);
	assert_memory_equal(env.id.ptr, "a", 1);
	assert_int_equal(env.body.len, 1);
}

static void test_escaped_unknown_keys_are_ignored(void **state)
{
	const char *why;

	(void)state;
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"x\\u0041\":1}", &why));
	/* Longer than any known name can be when escaped: skipped unread. */
	assert_true(parse("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\","
			"\"\\u0062\\u006f\\u0064\\u0079\\u0062\\u006f\\u0064\\u0079\":1}", &why));
	/* "\u0074s" is "ts" and must be an integer. */
	expect_refused("{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"\\u0074s\":\"1\"}",
			"ts is not a number");
}

/* One special byte (or sequence) at every offset of a 40-byte body: the
 * answer and the body's length must not depend on where it falls. */
static void test_fast_path_every_offset(void **state)
{
	static const struct {
		const char *ins;
		bool valid;
	} cases[] = {
		{"\"", false},           /* ends the string early: trailing junk */
		{"\\n", true},          /* escape */
		{"\\q", false},         /* bad escape */
		{"\x01", false},        /* control character */
		{"\x7f", true},         /* DEL is allowed raw */
		{"\xc3\xa9", true},     /* 2-byte UTF-8 */
		{"\xe2\x82\xac", true}, /* 3-byte UTF-8 */
		{"\xc3", false},        /* truncated UTF-8 */
		{"\xff", false},        /* never valid */
	};
	char body[128], json[256];
	size_t i, k;

	(void)state;
	for(k=0; k<sizeof(cases)/sizeof(cases[0]); k++){
		for(i=0; i<=40; i++){
			struct envelope env;
			const char *why = NULL;
			bool ok;

			memset(body, 'a', i);
			snprintf(body + i, sizeof(body) - i, "%s%.*s", cases[k].ins, (int)(40 - i),
					"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
			snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"%s\"}", body);
			ok = envelope__parse(json, strlen(json), &env, &why);
			if(ok != cases[k].valid){
				fail_msg("case %zu at offset %zu: got %d (%s)", k, i, ok, why ? why : "-");
			}
			if(ok) assert_int_equal(env.body.len, strlen(body));
		}
	}
}

/* envelope__parse on an exact-size heap copy of s[0..len). */
static bool parse_exact(const char *s, size_t len, struct envelope *env, const char **why)
{
	char *copy = malloc(len ? len : 1);
	bool ok;

	assert_non_null(copy);
	memcpy(copy, s, len);
	*why = NULL;
	ok = envelope__parse(copy, len, env, why);
	/* Slices point into the copy: report them relative to s. */
	if(ok){
		env->id.ptr = s + (env->id.ptr - copy);
		env->body.ptr = env->body.ptr ? s + (env->body.ptr - copy) : NULL;
		env->ref.ptr = env->ref.ptr ? s + (env->ref.ptr - copy) : NULL;
	}
	free(copy);
	return ok;
}

static const struct special {
	const char *ins;
	const char *why;        /* NULL: valid */
	size_t decoded;         /* bytes it stands for (valid ones) */
} specials[] = {
	{"\"", "not valid JSON", 0},          /* ends the string early: junk follows */
	{"\\\\", NULL, 1},                     /* escaped backslash */
	{"\\n", NULL, 1},
	{"\\u00e9", NULL, 2},
	{"\\ud83d\\ude00", NULL, 4},
	{"\\q", "bad escape", 0},
	{"\\u12", "bad \\u escape", 0},
	{"\\udc00", "lone surrogate escape", 0},
	{"\\u0000", "NUL in string", 0},
	{"\x01", "control character in string", 0},
	{"\x1f", "control character in string", 0},
	{"\t", "control character in string", 0},
	{"\x7f", NULL, 1},                     /* DEL is allowed raw */
	{"\xc3\xa9", NULL, 2},                 /* 2-byte UTF-8 */
	{"\xe2\x82\xac", NULL, 3},             /* 3-byte UTF-8 */
	{"\xf0\x9f\x98\x80", NULL, 4},         /* 4-byte UTF-8 */
	{"\xc3", "not valid UTF-8", 0},         /* truncated */
	{"\x80", "not valid UTF-8", 0},         /* lone continuation */
	{"\xff", "not valid UTF-8", 0},         /* never valid */
	{"\xc0\xaf", "not valid UTF-8", 0},     /* overlong */
	{"\xed\xa0\x80", "not valid UTF-8", 0}, /* surrogate */
	{"\xf4\x90\x80\x80", "not valid UTF-8", 0}, /* past U+10FFFF */
};

/* One special byte or sequence at every offset 0..48 of a 48-byte body and
 * of an unknown member's name, with the payload shifted by 0..15 bytes of
 * leading whitespace so that the blocks fall everywhere: the answer, the
 * reason and the body's span must not depend on where it lands. */
static void test_special_at_every_offset(void **state)
{
	char body[160], json[320];
	size_t k, off, shift;

	(void)state;
	for(k=0; k<sizeof(specials)/sizeof(specials[0]); k++){
		const struct special *sp = &specials[k];
		for(off=0; off<=48; off++){
			for(shift=0; shift<16; shift++){
				struct envelope env;
				const char *why;
				bool ok;
				int n;

				memset(body, 'a', off);
				n = snprintf(body + off, sizeof(body) - off, "%s%.*s", sp->ins, (int)(48 - off),
						"gggggggggggggggggggggggggggggggggggggggggggggggg");
				assert_true(n > 0);
				n = snprintf(json, sizeof(json), "%*s{\"id\":\"a\",\"type\":\"text\",\"body\":\"%s\"}",
						(int)shift, "", body);
				ok = parse_exact(json, (size_t)n, &env, &why);
				if(ok != (sp->why == NULL) || (why && strcmp(why, sp->why) != 0)){
					fail_msg("body: case %zu at offset %zu shift %zu: got %d (%s)", k, off, shift,
							ok, why ? why : "-");
				}
				if(ok){
					assert_int_equal(env.body.len, strlen(body));
					assert_ptr_equal(env.body.ptr, strstr(json, body));
				}
				/* The same in a member name the validator does not know. */
				n = snprintf(json, sizeof(json), "%*s{\"id\":\"a\",\"%s\":1,\"type\":\"text\",\"body\":\"x\"}",
						(int)shift, "", body);
				ok = parse_exact(json, (size_t)n, &env, &why);
				if(ok != (sp->why == NULL) || (why && strcmp(why, k == 0 ? "not valid JSON" : sp->why) != 0)){
					fail_msg("key: case %zu at offset %zu shift %zu: got %d (%s)", k, off, shift,
							ok, why ? why : "-");
				}
			}
		}
	}
}

/* A string that runs to the last byte of the payload: with its closing
 * quote (then the object is unfinished), without it, or cut inside an
 * escape or a UTF-8 sequence. Every length of string 0..48, so the end
 * falls at every position of a block. */
static void test_string_at_payload_end(void **state)
{
	static const struct {
		const char *tail;
		const char *why;
	} ends[] = {
		{"\"", "not valid JSON"},
		{"", "unterminated string"},
		{"\\", "unterminated string"},
		{"\\u00", "bad \\u escape"},
		{"\\ud83d", "lone surrogate escape"},
		{"\xc3", "not valid UTF-8"},
		{"\xe2\x82", "not valid UTF-8"},
		{"\xc3\xa9", "unterminated string"},
		{"\x01", "control character in string"},
	};
	char json[160];
	size_t k, len;

	(void)state;
	for(k=0; k<sizeof(ends)/sizeof(ends[0]); k++){
		for(len=0; len<=48; len++){
			struct envelope env;
			const char *why;
			int n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"%.*s%s",
					(int)len, "cccccccccccccccccccccccccccccccccccccccccccccccc", ends[k].tail);

			assert_false(parse_exact(json, (size_t)n, &env, &why));
			if(why == NULL || strcmp(why, ends[k].why) != 0){
				fail_msg("end %zu after %zu bytes: got %s, want %s", k, len, why ? why : "-", ends[k].why);
			}
		}
	}
}

/* Payloads of every length 0..64 (the shortest valid envelope has 35
 * bytes; longer ones carry escapes, UTF-8, a long id or a ts), each cut at
 * every point: only the whole payload is accepted, and no cut reads past
 * its end. */
static void test_every_length_every_cut(void **state)
{
	static const char *const fills[] = {
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		"\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n",
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	};
	char json[128];
	size_t f, total, cut;

	(void)state;
	for(f=0; f<sizeof(fills)/sizeof(fills[0]); f++){
		for(total=0; total<=64; total++){
			size_t base = strlen("{\"id\":\"a\",\"type\":\"text\",\"body\":\"\"}");
			size_t fill = total > base ? total - base : 1;
			int n;

			/* Whole escapes and UTF-8 sequences only: round down to even. */
			if(f > 0) fill &= ~(size_t)1;
			if(fill == 0) fill = 2;
			n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"%.*s\"}",
					(int)fill, fills[f]);
			assert_true(n > 0 && (size_t)n < sizeof(json));
			for(cut=0; cut<=(size_t)n && cut<=total; cut++){
				struct envelope env;
				const char *why;
				bool ok = parse_exact(json, cut, &env, &why);

				if(ok != (cut == (size_t)n)){
					fail_msg("fill %zu, %d-byte payload cut at %zu: got %d (%s)", f, n, cut, ok,
							why ? why : "-");
				}
				if(!ok) assert_non_null(why);
			}
		}
	}
	/* Ids of every length 1..64 (the id grammar is checked 16 bytes a
	 * step) with a bad byte at every position, and a 13..24-digit ts. */
	for(total=1; total<=64; total++){
		char id[80];
		size_t bad;

		memset(id, 'Z', total);
		id[total] = '\0';
		for(bad=0; bad<=total; bad++){
			struct envelope env;
			const char *why;
			int n;
			bool ok;

			if(bad < total) id[bad] = '.';
			n = snprintf(json, sizeof(json), "{\"id\":\"%s\",\"type\":\"text\",\"body\":\"x\"}", id);
			ok = parse_exact(json, (size_t)n, &env, &why);
			if(ok != (bad == total)){
				fail_msg("id of %zu bytes, '.' at %zu: got %d (%s)", total, bad, ok, why ? why : "-");
			}
			if(bad < total) id[bad] = (char)(bad % 3 == 0 ? '-' : bad % 3 == 1 ? '_' : '9');
		}
	}
	for(total=1; total<=24; total++){
		static const char digits[] = "900719925474099112345678";
		struct envelope env;
		const char *why;
		int n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":%.*s}",
				(int)total, digits);
		bool ok = parse_exact(json, (size_t)n, &env, &why);

		assert_int_equal(ok, total <= 16 && strncmp(digits, "9007199254740991", total) <= 0);
		if(ok){
			long long want = strtoll(digits + 0, NULL, 10);
			char buf[32];
			snprintf(buf, sizeof(buf), "%.*s", (int)total, digits);
			want = strtoll(buf, NULL, 10);
			assert_int_equal(env.ts, want);
		}
	}
}

/* Numbers whose digits wrap a 64-bit accumulator to a small value are
 * still out of range. */
static void test_ts_wrap(void **state)
{
	static const char *const big[] = {
		"18446744073709551616", "18446744073709551617", "36893488147419103232",
		"9007199254740992", "9007199254740999", "10000000000000000", "00", "01",
	};
	char json[128];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(big)/sizeof(big[0]); i++){
		struct envelope env;
		const char *why;
		int n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"x\",\"ts\":%s}",
				big[i]);

		if(parse_exact(json, (size_t)n, &env, &why)) fail_msg("ts %s accepted", big[i]);
	}
}

/* The id grammar, [A-Za-z0-9_-]{1,64}, checked 16 bytes a step for long
 * ids and with one load of the buffer around a short one: every byte value
 * at every position of ids of every length 1..64. */
static void test_msgid_every_byte(void **state)
{
	char id[MSGID_MAX_LEN + 1];
	size_t len, pos;
	unsigned b;

	(void)state;
	for(len=1; len<=MSGID_MAX_LEN; len++){
		for(pos=0; pos<len; pos++) id[pos] = "aZ09_-"[pos % 6];
		for(pos=0; pos<len; pos++){
			char keep = id[pos];
			for(b=0; b<256; b++){
				bool want = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
					|| (b >= '0' && b <= '9') || b == '_' || b == '-';
				size_t size = len < 20 ? 20 : len, at;
				char *copy = malloc(len), *buf = malloc(size);

				assert_non_null(copy);
				assert_non_null(buf);
				id[pos] = (char)b;
				memcpy(copy, id, len);
				if(names__valid_msgid(copy, len) != want
						|| fast_scan__msgid_in(copy, len, copy, copy + len) != want){
					fail_msg("id of %zu bytes, 0x%02x at %zu: got %d", len, b, pos, !want);
				}
				/* Inside a larger buffer, at its start, middle and end,
				 * the rest of it full of bytes the grammar refuses. */
				for(at=0; at<=size-len; at+=(size-len)/2 ? (size-len)/2 : 1){
					memset(buf, '.', size);
					memcpy(buf + at, id, len);
					if(fast_scan__msgid_in(buf + at, len, buf, buf + size) != want){
						fail_msg("id of %zu bytes at %zu of %zu, 0x%02x at %zu: got %d", len, at,
								size, b, pos, !want);
					}
				}
				free(copy);
				free(buf);
			}
			id[pos] = keep;
		}
	}
	assert_false(names__valid_msgid(id, 0));
	memset(id, 'a', sizeof(id));
	assert_false(names__valid_msgid(id, MSGID_MAX_LEN + 1));
}

/* What a body of plain bytes s[0..n) must get: valid UTF-8 with no quote,
 * backslash or control byte (utf8__valid is the byte-wise reference). */
static bool body_ok(const unsigned char *s, size_t n)
{
	size_t i;

	for(i=0; i<n; i++){
		if(s[i] < 0x20 || s[i] == '"' || s[i] == '\\') return false;
	}
	return utf8__valid(s, n);
}

/* Every byte value at every offset of a 100-byte body, the payload shifted
 * by 0..3 bytes: the plain-byte test of the 16- and 32-byte steps and of
 * the last partial block is exact for all 256 values. */
static void test_every_byte_every_offset(void **state)
{
	char json[256];
	unsigned char body[100];
	size_t off, shift;
	unsigned b;

	(void)state;
	for(shift=0; shift<4; shift++){
		for(off=0; off<sizeof(body); off++){
			for(b=0; b<256; b++){
				struct envelope env;
				const char *why;
				bool ok;
				int n;

				memset(body, 'k', sizeof(body));
				body[off] = (unsigned char)b;
				n = snprintf(json, sizeof(json), "%*s{\"id\":\"a\",\"type\":\"text\",\"body\":\"",
						(int)shift, "");
				memcpy(json + n, body, sizeof(body));
				n += (int)sizeof(body);
				memcpy(json + n, "\"}", 2);
				n += 2;
				ok = parse_exact(json, (size_t)n, &env, &why);
				if(ok != body_ok(body, sizeof(body))){
					fail_msg("0x%02x at %zu shift %zu: got %d (%s)", b, off, shift, ok,
							why ? why : "-");
				}
				if(ok) assert_int_equal(env.body.len, sizeof(body));
			}
		}
	}
}

/* Multi-byte sequences are checked a run at a time, the single plain ASCII
 * byte between two of them included: every lead byte with every second
 * byte and the third and fourth bytes around the limits, followed by a
 * gap byte and another sequence, or by the end of the string or payload. */
static void test_utf8_runs(void **state)
{
	static const unsigned char tails[] = {0x00, 0x20, 0x22, 0x5c, 0x7f, 0x80, 0x8f, 0x90,
		0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
	static const unsigned char last[] = {0x7f, 0x80, 0xbf, 0xc0};
	static const char *const after[] = {"", " \xc3\xa9", " ", "a", "\"", "\\n", "\x01", 
		"a\xc3\xa9", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " \x80", "  \xc3\xa9",
		" \xc3", "\xc3"};
	char json[128];
	unsigned char body[32];
	unsigned b0, b1;
	size_t t2, t3, a;

	(void)state;
	for(b0=0x80; b0<256; b0++){
		for(b1=0; b1<256; b1++){
			for(t2=0; t2<(b0 >= 0xe0 ? sizeof(tails) : 1); t2++){
				for(t3=0; t3<(b0 >= 0xf0 ? sizeof(last) : 1); t3++){
					/* Every continuation after the second byte's limits,
					 * two of them elsewhere. */
					bool limit = (b1 & 0x0f) == 0x0f || (b1 & 0x0f) == 0 || b0 < 0xe0;
					size_t nafter = limit ? sizeof(after)/sizeof(after[0]) : 2;

					for(a=0; a<nafter; a++){
						size_t n = 0, k;
						int head;
						struct envelope env;
						const char *why;
						bool ok, want;

						body[n++] = (unsigned char)b0;
						body[n++] = (unsigned char)b1;
						if(b0 >= 0xe0) body[n++] = tails[t2];
						if(b0 >= 0xf0) body[n++] = last[t3];
						memcpy(body + n, after[a], strlen(after[a]));
						n += strlen(after[a]);
						/* The body as the string's whole content ... */
						head = snprintf(json, sizeof(json), "{\"id\":\"a\",\"type\":\"text\",\"body\":\"");
						memcpy(json + head, body, n);
						memcpy(json + head + n, "\"}", 2);
						ok = parse_exact(json, (size_t)head + n + 2, &env, &why);
						want = body_ok(body, n);
						/* (an escape or quote in "after" is JSON's, not a plain byte) */
						for(k=0; k<n; k++){
							if(body[k] == '"' || body[k] == '\\') break;
						}
						if(k == n && ok != want){
							fail_msg("%02x %02x +%zu+%zu after %zu: got %d (%s)", b0, b1, t2, t3, a,
									ok, why ? why : "-");
						}
						if(k == n && ok) assert_int_equal(env.body.len, n);
						/* ... and cut at the end of the payload: never accepted. */
						ok = parse_exact(json, (size_t)head + n, &env, &why);
						assert_false(ok);
						if(k == n && want && strcmp(why, "unterminated string") != 0){
							fail_msg("%02x %02x +%zu+%zu after %zu, cut: %s", b0, b1, t2, t3, a, why);
						}
					}
				}
			}
		}
	}
}

/* An id or ref of 0..20 bytes (the 1..15-byte one is found with one
 * 16-byte step when 17 bytes follow its opening quote) at the start and
 * at the very end of the payload, so that the fast path is taken, just
 * not taken, and not possible; with a byte outside the id alphabet (or a
 * quote, a backslash, a UTF-8 byte) at every position. */
static void test_msgid_member_boundaries(void **state)
{
	static const char bad[] = {'.', ' ', '"', '\\', '\x01', '\xc3', '\x7f', '/', ':'};
	char id[24], json[160];
	size_t len, pos, k, form;

	(void)state;
	for(form=0; form<4; form++){
		for(len=0; len<=20; len++){
			for(pos=0; pos<=len; pos++){
				for(k=0; k<(pos < len ? sizeof(bad) : 1); k++){
					struct envelope env;
					const char *why;
					bool ok, want = len > 0 && pos == len;
					int n;

					for(n=0; n<(int)len; n++) id[n] = "aZ09_-"[n % 6];
					if(pos < len) id[pos] = bad[k];
					id[len] = '\0';
					if(form == 0){
						n = snprintf(json, sizeof(json), "{\"id\":\"%s\",\"type\":\"text\",\"body\":\"x\"}", id);
					}else if(form == 1){
						n = snprintf(json, sizeof(json), "{\"type\":\"text\",\"body\":\"x\",\"id\":\"%s\"}", id);
					}else if(form == 2){
						n = snprintf(json, sizeof(json), "{\"type\":\"receipt\",\"status\":\"read\","
								"\"id\":\"b\",\"ref\":\"%s\"}", id);
					}else{
						/* Escaped: never an id, whatever it decodes to. */
						n = snprintf(json, sizeof(json), "{\"id\":\"%s\\u0061\",\"type\":\"text\",\"body\":\"x\"}", id);
						want = false;
					}
					ok = parse_exact(json, (size_t)n, &env, &why);
					if(ok != want){
						fail_msg("form %zu, id of %zu, 0x%02x at %zu: got %d (%s)", form, len,
								pos < len ? (unsigned char)bad[k] : 0, pos, ok, why ? why : "-");
					}
					if(ok){
						const struct envelope_str *s = form == 2 ? &env.ref : &env.id;
						assert_int_equal(s->len, len);
						assert_false(s->escaped);
						assert_memory_equal(s->ptr, id, len);
					}
					/* A good id cut right after its last byte. */
					if(form == 1 && want){
						assert_false(parse_exact(json, (size_t)n - 2, &env, &why));
						assert_string_equal(why, "unterminated string");
					}
				}
			}
		}
	}
	expect_refused("{\"id\":\"\",\"type\":\"text\",\"body\":\"x\"}", "invalid id");
	expect_refused("{\"type\":\"text\",\"body\":\"x\",\"id\":\"\"}", "invalid id");
}

/* The type "text" written plainly is taken at once; any other spelling of
 * it, and what merely starts like it, the general way. */
static void test_type_text(void **state)
{
	static const struct {
		const char *type;       /* the bytes after "type": */
		const char *why;        /* NULL: valid */
	} cases[] = {
		{"\"text\"", NULL},
		{" \"text\"", NULL},
		{"\"te\\u0078t\"", "unknown type"},        /* escaped: as before */
		{"\"text\" ", NULL},
		{"\"texts\"", "unknown type"},
		{"\"tex\"", "unknown type"},
		{"\"Text\"", "unknown type"},
		{"\"text", "unterminated string"},
		{"\"receipt\"", "receipt without ref"},
		{"text", "type is not a string"},
		{"1", "type is not a string"},
	};
	char json[128];
	size_t i;

	(void)state;
	for(i=0; i<sizeof(cases)/sizeof(cases[0]); i++){
		struct envelope env;
		const char *why;
		bool ok;
		int n;

		n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"body\":\"x\",\"type\":%s}", cases[i].type);
		ok = parse_exact(json, (size_t)n, &env, &why);
		if(ok != (cases[i].why == NULL) || (why && strcmp(why, cases[i].why) != 0)){
			fail_msg("type %s: got %d (%s)", cases[i].type, ok, why ? why : "-");
		}
		if(ok) assert_int_equal(env.type, ENVELOPE_TEXT);
		/* The payload ending right after the value: 6 bytes left at "text". */
		n = snprintf(json, sizeof(json), "{\"id\":\"a\",\"body\":\"x\",\"type\":%s", cases[i].type);
		assert_false(parse_exact(json, (size_t)n, &env, &why));
	}
}

/* A membership event: the fixed list of events, user and by plain valid
 * names if present, no body, ref or status; its members are only
 * unknown members to a text or a receipt. */
static void test_type_event(void **state)
{
	static const struct {
		const char *json;
		const char *why;        /* NULL: valid */
	} cases[] = {
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"bob\",\"by\":\"alice\",\"ts\":5}", NULL},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"deleted\"}", NULL},
		{"{\"type\" : \"event\", \"by\" : \"a\", \"event\" : \"left\", \"id\" : \"e\"}", NULL},
		{"{\"id\":\"e1\",\"type\":\"event\"}", "invalid event"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"kicked\"}", "invalid event"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"add\\u0065d\"}", "invalid event"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":1}", "invalid event"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"Bob\"}", "invalid user"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":null}", "invalid user"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"by\":\"\"}", "invalid by"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"body\":\"x\"}",
			"event with body, ref or status"},
		{"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"a\",\"user\":\"b\"}",
			"duplicate member"},
		/* In a text, they are unknown members: any value, even twice. */
		{"{\"id\":\"m1\",\"type\":\"text\",\"body\":\"x\",\"event\":7,\"user\":[1],\"user\":\"Q\"}", NULL},
	};
	size_t i;

	(void)state;
	for(i=0; i<sizeof(cases)/sizeof(cases[0]); i++){
		struct envelope env;
		const char *why;
		bool ok = parse_exact(cases[i].json, strlen(cases[i].json), &env, &why);

		if(ok != (cases[i].why == NULL) || (why && strcmp(why, cases[i].why) != 0)){
			fail_msg("%s: got %d (%s)", cases[i].json, ok, why ? why : "-");
		}
	}
	{
		struct envelope env;
		const char *why, *j = cases[0].json;

		assert_true(parse_exact(j, strlen(j), &env, &why));
		assert_int_equal(env.type, ENVELOPE_EVENT);
		assert_int_equal(env.event, ENVELOPE_EVENT_ADDED);
		assert_string_equal(envelope__event_name(env.event), "added");
		assert_true(env.user.len == 3 && memcmp(env.user.ptr, "bob", 3) == 0);
		assert_true(env.by.len == 5 && memcmp(env.by.ptr, "alice", 5) == 0);
		assert_true(env.has_ts && env.ts == 5);
		j = cases[1].json;
		assert_true(parse_exact(j, strlen(j), &env, &why));
		assert_null(env.user.ptr);
		assert_null(env.by.ptr);
		assert_string_equal(envelope__event_name(ENVELOPE_EVENT_COUNT), "?");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_envelopes_still_pass),
		cmocka_unit_test(test_escaped_known_key_is_a_duplicate),
		cmocka_unit_test(test_escaped_known_key_is_validated),
		cmocka_unit_test(test_escaped_unknown_keys_are_ignored),
		cmocka_unit_test(test_fast_path_every_offset),
		cmocka_unit_test(test_special_at_every_offset),
		cmocka_unit_test(test_string_at_payload_end),
		cmocka_unit_test(test_every_length_every_cut),
		cmocka_unit_test(test_ts_wrap),
		cmocka_unit_test(test_msgid_every_byte),
		cmocka_unit_test(test_every_byte_every_offset),
		cmocka_unit_test(test_utf8_runs),
		cmocka_unit_test(test_msgid_member_boundaries),
		cmocka_unit_test(test_type_text),
		cmocka_unit_test(test_type_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
