/* tui_line.h - the terminal app's input line: a UTF-8 text with a cursor,
 * edited the way readline edits (insert, delete, move by character and by
 * word, kill to start/end), a history of the lines typed, and the window of
 * it that fits the screen. Pure: no curses, no I/O, so tests drive it.
 *
 * A "character" here is what the cursor steps over: a code point with the
 * combining marks and zero-width joiners/variation selectors that follow it
 * (a base character and its marks move and delete as one). Widths are
 * wcwidth()'s in the current locale (0 for marks, 2 for CJK and most emoji);
 * a control character or invalid byte never enters the line. */
#ifndef MQCHAT_TUI_LINE_H
#define MQCHAT_TUI_LINE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line in bytes (a message body fits; the app checks the envelope). */
#define TUI_LINE_MAX (64 * 1024)
/* Lines kept in the history (oldest dropped). */
#define TUI_LINE_HISTORY 200

struct tui_line {
	char *buf;          /* UTF-8, NUL-terminated, len bytes */
	size_t len, cap;
	size_t cur;         /* cursor: byte offset, always at a character start */
	char **hist;        /* hist[0] oldest; each owned */
	int nhist;
	int hpos;           /* browsing: index into hist, nhist when not browsing */
	char *draft;        /* the line being typed when browsing started (owned) */
	size_t scroll;      /* byte offset of the first shown character (tui_line__view) */
};

void tui_line__init(struct tui_line *l);
void tui_line__free(struct tui_line *l);

/* Insert UTF-8 text at the cursor (a typed key or a paste); invalid UTF-8,
 * NUL and control characters (C0, DEL, C1) are dropped, a tab becomes a
 * space, CR/LF become spaces. Returns false if it would pass TUI_LINE_MAX
 * (then nothing is inserted). */
bool tui_line__insert(struct tui_line *l, const char *s, size_t n);
/* Insert one code point (from get_wch), with the same rules. */
bool tui_line__insert_cp(struct tui_line *l, unsigned cp);

void tui_line__left(struct tui_line *l);        /* one character */
void tui_line__right(struct tui_line *l);
void tui_line__home(struct tui_line *l);        /* Ctrl-A, Home */
void tui_line__end(struct tui_line *l);         /* Ctrl-E, End */
void tui_line__word_left(struct tui_line *l);   /* Alt-B, Ctrl-Left */
void tui_line__word_right(struct tui_line *l);  /* Alt-F, Ctrl-Right */
void tui_line__backspace(struct tui_line *l);   /* the character before the cursor */
void tui_line__delete(struct tui_line *l);      /* the character under it (Delete, Ctrl-D on a non-empty line) */
void tui_line__kill_word(struct tui_line *l);   /* Ctrl-W: the word before the cursor, and the spaces after it */
void tui_line__kill_start(struct tui_line *l);  /* Ctrl-U: start of line to cursor */
void tui_line__kill_end(struct tui_line *l);    /* Ctrl-K: cursor to end */
void tui_line__clear(struct tui_line *l);       /* empty it, cursor 0, stop browsing */
/* Replace the whole text (cursor at the end). */
void tui_line__set(struct tui_line *l, const char *s);

/* History. Enter: the app takes the text with tui_line__take. */
/* Up: the previous line of the history (the line being typed is kept as
 * the draft and comes back with down past the newest). No-op at the oldest. */
void tui_line__hist_prev(struct tui_line *l);
void tui_line__hist_next(struct tui_line *l);
/* The text, newly allocated (caller frees); the line is cleared and the
 * text, unless empty or the same as the newest entry, added to the history. */
char *tui_line__take(struct tui_line *l);

/* Display width (columns) of the first n bytes of s: sum of wcwidth of its
 * code points, a code point wcwidth says -1 for counted as 1. */
int tui_line__width(const char *s, size_t n);

/* What to draw in a field of cols columns (cols >= 4): sets *start and *end
 * (byte offsets of the shown part; never splits a character, and a wide
 * character that does not fit whole at the right edge is left out) and
 * returns the column of the cursor within the field (0..cols-1). Scrolls
 * (l->scroll) so the cursor stays visible, keeping a few characters of
 * context on its left when the line is longer than the field. */
int tui_line__view(struct tui_line *l, int cols, size_t *start, size_t *end);

/* Completion (Tab). The word being completed is the text from the last
 * space before the cursor (or the start) up to the cursor. Given the
 * candidates (borrowed), tui_line__complete replaces that word with the
 * single match, or with the longest common prefix of several matches
 * (case-sensitive), adding a space after a single match. Returns the number
 * of matches (0: nothing changed). first_word: true if the word is the
 * first of the line (the app offers commands there and names elsewhere). */
int tui_line__complete(struct tui_line *l, const char *const *cands, int ncands);
/* The word being completed: a copy into out (len bytes); *first_word true
 * if nothing but spaces comes before it. */
void tui_line__word(const struct tui_line *l, char *out, size_t len, bool *first_word);

#endif
