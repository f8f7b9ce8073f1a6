/* tui_line.c - the terminal app's input line: editing, history, the shown
 * window and completion (see tui_line.h).
 *
 * The text is UTF-8 decoded with mbrtowc() and measured with wcwidth(), so
 * the app runs with a UTF-8 LC_CTYPE (setlocale(LC_ALL, "") under a UTF-8
 * LANG); in another locale only ASCII enters the line. Every edit keeps two
 * invariants: buf holds only valid UTF-8 without control characters, and
 * cur sits at a character start (tui_line__view moves a scroll that an edit
 * left inside a character back to its start).
 *
 * Characters: a code point, then every code point that joins it: those
 * wcwidth() gives 0 (combining marks, ZWJ, variation selectors, tags),
 * emoji skin tone modifiers, the code point after a ZWJ (so a ZWJ emoji
 * sequence is one character), and a second regional indicator after a
 * first (a flag). The rule looks only at neighbours, except for regional
 * indicators, which pair from the start of their run; prev_char() walks it
 * backwards the same way, so moving left never rescans the line. */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "tui_line.h"

#define ZWJ 0x200Du
#define NO_CP 0xFFFFFFFFu

/* What the buffer points to before the first insertion (cap 0: not owned). */
static char empty_buf[1];

/* ---- code points ---- */

/* Decode the code point at s (n bytes readable): its length in bytes, or
 * 0 if the bytes there are not valid UTF-8 (*cp unset). A NUL is length 1.
 * mbrtowc() takes code points past U+10FFFF and 5- and 6-byte forms, which
 * UTF-8 does not: they are refused here. */
static size_t decode(const char *s, size_t n, unsigned *cp)
{
	mbstate_t st;
	wchar_t wc = 0;
	size_t r;

	if(n == 0) return 0;
	if((unsigned char)s[0] < 0x80){
		*cp = (unsigned char)s[0];
		return 1;
	}
	memset(&st, 0, sizeof(st));
	r = mbrtowc(&wc, s, n, &st);
	if(r == (size_t)-1 || r == (size_t)-2 || r == 0 || r > 4) return 0;
	if((unsigned)wc > 0x10FFFF || ((unsigned)wc >= 0xD800 && (unsigned)wc <= 0xDFFF)) return 0;
	*cp = (unsigned)wc;
	return r;
}

/* Width of a code point: wcwidth(), and 1 where it says -1. */
static int cp_width(unsigned cp)
{
	int w = wcwidth((wchar_t)cp);

	return w < 0 ? 1 : w;
}

/* A code point that joins the one before it into one character. */
static bool extends(unsigned cp)
{
	if(cp >= 0x1F3FB && cp <= 0x1F3FF) return true;  /* skin tones */
	return cp >= 0x20 && wcwidth((wchar_t)cp) == 0;
}

static bool regional(unsigned cp)
{
	return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

/* The code point that ends just before p in the line (valid UTF-8): its
 * start, and the code point in *cp. p > 0. */
static size_t cp_before(const struct tui_line *l, size_t p, unsigned *cp)
{
	size_t q = p - 1;

	while(q > 0 && ((unsigned char)l->buf[q] & 0xC0) == 0x80) q--;
	if(decode(l->buf + q, p - q, cp) == 0) *cp = NO_CP;
	return q;
}

static unsigned cp_at(const struct tui_line *l, size_t p)
{
	unsigned cp = NO_CP;

	if(p >= l->len || decode(l->buf + p, l->len - p, &cp) == 0) return NO_CP;
	return cp;
}

/* ---- characters ---- */

/* The end of the character that starts at p (p < len), and its width in
 * *w if w is not NULL. */
static size_t next_char(const struct tui_line *l, size_t p, int *w)
{
	unsigned first, prev, cp;
	size_t k, q;
	int width;

	k = decode(l->buf + p, l->len - p, &first);
	if(k == 0) k = 1, first = NO_CP;  /* not reached: buf is valid */
	width = cp_width(first);
	q = p + k;
	prev = first;
	if(regional(first) && q < l->len){
		/* A flag: two regional indicators. */
		k = decode(l->buf + q, l->len - q, &cp);
		if(k > 0 && regional(cp)){
			width += cp_width(cp);
			prev = cp;
			q += k;
		}
	}
	while(q < l->len){
		k = decode(l->buf + q, l->len - q, &cp);
		if(k == 0 || !(extends(cp) || prev == ZWJ)) break;
		width += cp_width(cp);
		prev = cp;
		q += k;
	}
	if(w) *w = width;
	return q;
}

/* The start of the character that ends at p (p > 0). */
static size_t prev_char(const struct tui_line *l, size_t p)
{
	unsigned cp, before;
	size_t q, b;
	int run;

	q = cp_before(l, p, &cp);
	while(q > 0){
		b = cp_before(l, q, &before);
		if(!(extends(cp) || before == ZWJ)) break;
		q = b;
		cp = before;
	}
	if(regional(cp)){
		/* Regional indicators pair from the start of their run: this one
		 * is the second of a pair if an odd number come right before it.
		 * One after a ZWJ belongs to the character before: not counted. */
		size_t r = q;
		unsigned bb;

		run = 0;
		while(r > 0){
			b = cp_before(l, r, &before);
			if(!regional(before)) break;
			if(b > 0){
				cp_before(l, b, &bb);
				if(bb == ZWJ) break;
			}
			run++;
			r = b;
		}
		if(run % 2 == 1) q = cp_before(l, q, &before);
	}
	return q;
}

static bool at_char_start(const struct tui_line *l, size_t p)
{
	if(p == 0 || p >= l->len) return true;
	return next_char(l, prev_char(l, p), NULL) == p;
}

/* The start of the character holding byte p, or p if it starts one. */
static size_t char_floor(const struct tui_line *l, size_t p)
{
	if(p >= l->len) return l->len;
	while(p > 0 && ((unsigned char)l->buf[p] & 0xC0) == 0x80) p--;
	return at_char_start(l, p) ? p : prev_char(l, p);
}

/* After an edit joined text across the cursor (an inserted ZWJ, a regional
 * indicator meeting another), move it to the end of that character. */
static void fix_cursor(struct tui_line *l)
{
	if(!at_char_start(l, l->cur)) l->cur = next_char(l, prev_char(l, l->cur), NULL);
}

/* A character of a word for word moves: its base code point is a letter
 * or digit in the locale (readline's forward-word and backward-word). */
static bool word_char_at(const struct tui_line *l, size_t p)
{
	unsigned cp = cp_at(l, p);

	return cp != NO_CP && iswalnum((wint_t)cp);
}

/* ---- the buffer ---- */

/* Room for n bytes of text and the NUL. False if out of memory. */
static bool reserve(struct tui_line *l, size_t n)
{
	size_t cap;
	char *nb;

	if(n + 1 <= l->cap) return true;
	cap = l->cap ? l->cap : 64;
	while(cap < n + 1) cap *= 2;
	if(cap > TUI_LINE_MAX + 1) cap = TUI_LINE_MAX + 1;
	if(cap < n + 1) return false;
	nb = l->cap ? realloc(l->buf, cap) : malloc(cap);
	if(nb == NULL) return false;
	if(l->cap == 0){
		memcpy(nb, l->buf, l->len);
		nb[l->len] = '\0';
	}
	l->buf = nb;
	l->cap = cap;
	return true;
}

/* Remove bytes [from, to) and put the cursor at from. */
static void cut(struct tui_line *l, size_t from, size_t to)
{
	if(to <= from) return;
	memmove(l->buf + from, l->buf + to, l->len - to + 1);
	l->len -= to - from;
	l->cur = from;
	fix_cursor(l);
}

/* Filter s (n bytes) into out (NULL: only count): what tui_line__insert
 * keeps. Returns the bytes kept. */
static size_t filter(const char *s, size_t n, char *out)
{
	size_t i = 0, o = 0, k;
	unsigned cp;

	while(i < n){
		k = decode(s + i, n - i, &cp);
		if(k == 0){
			i++;  /* an invalid byte: dropped, and decoding resumes after it */
			continue;
		}
		if(cp == '\t' || cp == '\n' || cp == '\r'){
			/* A CR LF line end is one break: one space. */
			if(cp == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
			if(out) out[o] = ' ';
			o++;
		}else if(cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)){
			/* NUL, C0, DEL, C1: dropped */
		}else{
			if(out) memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	return o;
}

/* ---- public ---- */

void tui_line__init(struct tui_line *l)
{
	memset(l, 0, sizeof(*l));
	l->buf = empty_buf;
}

void tui_line__free(struct tui_line *l)
{
	int i;

	if(l == NULL) return;
	if(l->cap) free(l->buf);
	for(i=0; i<l->nhist; i++) free(l->hist[i]);
	free(l->hist);
	free(l->draft);
	tui_line__init(l);
}

/* Also false when out of memory (nothing inserted then either). */
bool tui_line__insert(struct tui_line *l, const char *s, size_t n)
{
	size_t add;

	add = filter(s, n, NULL);
	if(add == 0) return true;
	if(add > TUI_LINE_MAX - l->len) return false;
	if(!reserve(l, l->len + add)) return false;
	memmove(l->buf + l->cur + add, l->buf + l->cur, l->len - l->cur + 1);
	filter(s, n, l->buf + l->cur);
	l->len += add;
	l->cur += add;
	fix_cursor(l);
	return true;
}

bool tui_line__insert_cp(struct tui_line *l, unsigned cp)
{
	char u[4];
	size_t n;

	if(cp < 0x80){
		u[0] = (char)cp;
		n = 1;
	}else if(cp < 0x800){
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	}else if(cp < 0x10000){
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	}else if(cp <= 0x10FFFF){
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}else{
		return true;  /* not a code point: dropped like invalid UTF-8 */
	}
	return tui_line__insert(l, u, n);
}

void tui_line__left(struct tui_line *l)
{
	if(l->cur > 0) l->cur = prev_char(l, l->cur);
}

void tui_line__right(struct tui_line *l)
{
	if(l->cur < l->len) l->cur = next_char(l, l->cur, NULL);
}

void tui_line__home(struct tui_line *l)
{
	l->cur = 0;
}

void tui_line__end(struct tui_line *l)
{
	l->cur = l->len;
}

void tui_line__word_left(struct tui_line *l)
{
	size_t p = l->cur, q;

	while(p > 0){
		q = prev_char(l, p);
		if(word_char_at(l, q)) break;
		p = q;
	}
	while(p > 0){
		q = prev_char(l, p);
		if(!word_char_at(l, q)) break;
		p = q;
	}
	l->cur = p;
}

void tui_line__word_right(struct tui_line *l)
{
	size_t p = l->cur;

	while(p < l->len && !word_char_at(l, p)) p = next_char(l, p, NULL);
	while(p < l->len && word_char_at(l, p)) p = next_char(l, p, NULL);
	l->cur = p;
}

void tui_line__backspace(struct tui_line *l)
{
	if(l->cur > 0) cut(l, prev_char(l, l->cur), l->cur);
}

void tui_line__delete(struct tui_line *l)
{
	if(l->cur < l->len) cut(l, l->cur, next_char(l, l->cur, NULL));
}

/* Words here are separated by spaces only (unix-word-rubout): Ctrl-W after
 * "/msg bob" takes "bob", after "see you." takes "you.". */
void tui_line__kill_word(struct tui_line *l)
{
	size_t p = l->cur;

	while(p > 0 && l->buf[p - 1] == ' ') p--;
	while(p > 0 && l->buf[p - 1] != ' ') p--;
	cut(l, p, l->cur);
}

void tui_line__kill_start(struct tui_line *l)
{
	cut(l, 0, l->cur);
}

void tui_line__kill_end(struct tui_line *l)
{
	if(l->cur < l->len){
		l->len = l->cur;
		l->buf[l->len] = '\0';
	}
}

/* Stop browsing the history: the draft is dropped. */
static void stop_browsing(struct tui_line *l)
{
	free(l->draft);
	l->draft = NULL;
	l->hpos = l->nhist;
}

/* Replace the text, cursor at the end; browsing untouched. A text longer
 * than TUI_LINE_MAX is cut at the last code point that fits. */
static void replace(struct tui_line *l, const char *s)
{
	size_t n = strlen(s), i, k;
	unsigned cp;

	l->len = 0;
	l->cur = 0;
	l->scroll = 0;
	if(l->cap) l->buf[0] = '\0';
	if(tui_line__insert(l, s, n)) return;
	for(i=0; i<n && i <= TUI_LINE_MAX; i += k){
		k = decode(s + i, n - i, &cp);
		if(k == 0) k = 1;
		if(i + k > TUI_LINE_MAX) break;
	}
	tui_line__insert(l, s, i);
}

void tui_line__clear(struct tui_line *l)
{
	replace(l, "");
	stop_browsing(l);
}

/* Also stops browsing the history: the text is the app's, not an entry's. */
void tui_line__set(struct tui_line *l, const char *s)
{
	replace(l, s);
	stop_browsing(l);
}

/* Edits made to a line recalled from the history are not kept when moving
 * on to another; the draft (the line typed before browsing) is. */
void tui_line__hist_prev(struct tui_line *l)
{
	if(l->hpos > l->nhist) l->hpos = l->nhist;
	if(l->hpos <= 0) return;
	if(l->hpos == l->nhist){
		free(l->draft);
		l->draft = strdup(l->buf);
		if(l->draft == NULL) return;
	}
	l->hpos--;
	replace(l, l->hist[l->hpos]);
}

void tui_line__hist_next(struct tui_line *l)
{
	if(l->hpos >= l->nhist) return;
	l->hpos++;
	if(l->hpos < l->nhist){
		replace(l, l->hist[l->hpos]);
		return;
	}
	replace(l, l->draft ? l->draft : "");
	free(l->draft);
	l->draft = NULL;
}

/* Add a copy of s as the newest entry, dropping the oldest when full.
 * Out of memory: not added. */
static void hist_add(struct tui_line *l, const char *s)
{
	char *copy;

	if(s[0] == '\0') return;
	if(l->nhist > 0 && strcmp(l->hist[l->nhist - 1], s) == 0) return;
	if(l->hist == NULL){
		l->hist = calloc(TUI_LINE_HISTORY, sizeof(*l->hist));
		if(l->hist == NULL) return;
	}
	copy = strdup(s);
	if(copy == NULL) return;
	if(l->nhist == TUI_LINE_HISTORY){
		free(l->hist[0]);
		memmove(l->hist, l->hist + 1, (TUI_LINE_HISTORY - 1) * sizeof(*l->hist));
		l->nhist--;
	}
	l->hist[l->nhist++] = copy;
}

/* NULL if out of memory (the line is left as it was). */
char *tui_line__take(struct tui_line *l)
{
	char *text = strdup(l->buf);

	if(text == NULL) return NULL;
	hist_add(l, text);
	tui_line__clear(l);
	return text;
}

int tui_line__width(const char *s, size_t n)
{
	size_t i = 0, k;
	unsigned cp;
	int w = 0;

	while(i < n){
		k = decode(s + i, n - i, &cp);
		if(k == 0){
			w++;  /* an invalid byte: one column, as a terminal shows it */
			i++;
			continue;
		}
		w += cp_width(cp);
		i += k;
	}
	return w;
}

/* Width of [from, to) in the line, character by character. */
static int span_width(const struct tui_line *l, size_t from, size_t to)
{
	int w = 0, cw;

	while(from < to){
		from = next_char(l, from, &cw);
		w += cw;
	}
	return w;
}

/* The view keeps the cursor's cell and the character under it in the field
 * (a wide character's two cells), scrolling right as little as needed so the
 * most text on the left stays shown; when the cursor goes left of the
 * field, about a quarter of the field of text left of it is shown; and when
 * the whole end of the line fits, nothing is left hidden on the left. */
int tui_line__view(struct tui_line *l, int cols, size_t *start, size_t *end)
{
	size_t p;
	int col, cw, w, tail;

	if(cols < 1) cols = 1;
	if(l->scroll > l->len) l->scroll = l->len;
	l->scroll = char_floor(l, l->scroll);
	if(l->cur < l->scroll){
		/* Left of the field: a quarter of it of context before the cursor. */
		l->scroll = l->cur;
		w = 0;
		while(l->scroll > 0){
			p = prev_char(l, l->scroll);
			w += span_width(l, p, l->scroll);
			if(w > cols / 4) break;
			l->scroll = p;
		}
	}
	cw = 1;
	if(l->cur < l->len){
		next_char(l, l->cur, &cw);
		if(cw < 1) cw = 1;
		if(cw > 2) cw = 2;
	}
	col = span_width(l, l->scroll, l->cur);
	while(col + cw > cols && l->scroll < l->cur){
		/* Right of the field: scroll just enough. */
		next_char(l, l->scroll, &w);
		l->scroll = next_char(l, l->scroll, NULL);
		col -= w;
	}
	/* The end of the line fits with room left: show more of the start. */
	tail = span_width(l, l->scroll, l->len) + 1;
	while(l->scroll > 0){
		p = prev_char(l, l->scroll);
		w = span_width(l, p, l->scroll);
		if(tail + w > cols) break;
		tail += w;
		col += w;
		l->scroll = p;
	}
	*start = l->scroll;
	w = 0;
	p = l->scroll;
	while(p < l->len){
		size_t q = next_char(l, p, &cw);

		if(w + cw > cols) break;
		w += cw;
		p = q;
	}
	*end = p;
	if(col > cols - 1) col = cols - 1;  /* a character wider than the field */
	return col;
}

/* Start of the word being completed: after the last space before the cursor. */
static size_t word_start(const struct tui_line *l)
{
	size_t p = l->cur;

	while(p > 0 && l->buf[p - 1] != ' ') p--;
	return p;
}

void tui_line__word(const struct tui_line *l, char *out, size_t len, bool *first_word)
{
	size_t ws = word_start(l), n = l->cur - ws, i;

	if(first_word){
		for(i=0; i<ws && l->buf[i] == ' '; i++);
		*first_word = (i == ws);
	}
	if(len == 0) return;
	if(n > len - 1){
		/* Cut at a code point start. */
		n = len - 1;
		while(n > 0 && ((unsigned char)l->buf[ws + n] & 0xC0) == 0x80) n--;
	}
	memcpy(out, l->buf + ws, n);
	out[n] = '\0';
}

/* A single match is followed by a space, unless one is under the cursor
 * already (completing in the middle of a line): then the cursor steps over
 * it. Candidates named twice count once. Nothing changes (0 is returned)
 * when the text would pass TUI_LINE_MAX. */
int tui_line__complete(struct tui_line *l, const char *const *cands, int ncands)
{
	size_t ws = word_start(l), wlen = l->cur - ws, lcp = 0, k, m;
	const char *first = NULL;
	int i, j, n = 0;
	unsigned cp;
	bool space;

	for(i=0; i<ncands; i++){
		if(cands[i] == NULL || strncmp(cands[i], l->buf + ws, wlen) != 0) continue;
		for(j=0; j<i; j++){
			if(cands[j] && strcmp(cands[j], cands[i]) == 0) break;
		}
		if(j < i) continue;
		if(first == NULL){
			first = cands[i];
			lcp = strlen(first);
		}else{
			for(k=0; k<lcp && first[k] == cands[i][k]; k++);
			lcp = k;
		}
		n++;
	}
	if(n == 0) return 0;
	/* The common prefix ends at a code point start: a shared first byte of
	 * two different characters is not a prefix of either. */
	for(k=0; k<lcp; k += m){
		m = decode(first + k, lcp - k, &cp);
		if(m == 0) break;
	}
	lcp = k;
	space = n == 1 && l->buf[l->cur] != ' ';
	if(lcp - wlen + (space ? 1 : 0) > TUI_LINE_MAX - l->len) return 0;
	if(lcp > wlen && !tui_line__insert(l, first + wlen, lcp - wlen)) return 0;
	if(space) tui_line__insert(l, " ", 1);
	else if(n == 1) l->cur++;
	return n;
}
