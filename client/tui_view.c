/* tui_view.c - the terminal app's screen (see tui.h and client/README.md,
 * "The terminal app"): the top bar, the conversation list, the open
 * conversation, the typing row, the status row and the input line. Each
 * frame is drawn whole; curses sends the terminal only what changed. */
#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "timeutil.h"
#include "tui.h"

/* The list pane: this wide, shown from this many columns. */
#define LIST_W 18
#define LIST_FROM_COLS 60
/* The separator dot, in ASCII without a UTF-8 locale. */
#define DOT(t) ((t)->utf8 ? "\u00b7" : "-")
#define SEP(t) ((t)->utf8 ? " \u00b7 " : " - ")
/* Indent of a message's continuation rows, quote and reactions. */
#define INDENT 6

enum {
	PAIR_BAR = 1,
	PAIR_ME,
	PAIR_THEM,
	PAIR_TIME,
	PAIR_EVENT,
	PAIR_MARK,
	PAIR_INFO,
	PAIR_FAIL,
};

/* A styled part of a row: bytes [start, end) of its text. */
struct vspan {
	int start, end;
	attr_t attr;
};

struct vrow {
	char *text;
	int indent;
	attr_t attr;          /* of the whole row (the selection) */
	struct vspan spans[4];
	int nspans;
};

struct vrows {
	struct vrow *r;
	int n, cap;
};

static attr_t pair(int p)
{
	return has_colors() ? COLOR_PAIR(p) : 0;
}

void tui_view__start(struct tui *t)
{
	(void)t;
	initscr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	if(has_colors()){
		start_color();
		use_default_colors();
		init_pair(PAIR_BAR, -1, -1);
		init_pair(PAIR_ME, COLOR_GREEN, -1);
		init_pair(PAIR_THEM, COLOR_CYAN, -1);
		init_pair(PAIR_TIME, -1, -1);
		init_pair(PAIR_EVENT, COLOR_YELLOW, -1);
		init_pair(PAIR_MARK, COLOR_BLUE, -1);
		init_pair(PAIR_INFO, COLOR_MAGENTA, -1);
		init_pair(PAIR_FAIL, COLOR_RED, -1);
	}
	t->dirty = true;
}

void tui_view__stop(struct tui *t)
{
	(void)t;
	endwin();
}

/* ---- text ---- */

/* Text as it may reach the terminal: control characters, and characters
 * the terminal would not advance over as wcwidth says (format controls
 * such as bidi overrides), become '?'; a newline stays if keep_nl. Returns
 * a new string. */
static char *safe_text(const char *s, bool keep_nl)
{
	size_t n = strlen(s), i = 0, o = 0;
	char *out = malloc(n + 1);
	mbstate_t ps;

	if(out == NULL) return NULL;
	memset(&ps, 0, sizeof(ps));
	while(i < n){
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &ps);
		if(k == (size_t)-1 || k == (size_t)-2 || k == 0){
			memset(&ps, 0, sizeof(ps));
			out[o++] = '?';
			i++;
			continue;
		}
		if(wc == L'\n' && keep_nl){
			out[o++] = '\n';
		}else if(wc == L'\t'){
			out[o++] = ' ';
		}else if(wc < 32 || (wc >= 0x7f && wc < 0xa0) || wcwidth(wc) < 0){
			out[o++] = '?';
		}else{
			memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* The width of the code point at s (length *k). */
static int cp_width(const char *s, size_t n, size_t *k)
{
	wchar_t wc;
	mbstate_t ps;
	int w;

	memset(&ps, 0, sizeof(ps));
	*k = mbrtowc(&wc, s, n, &ps);
	if(*k == (size_t)-1 || *k == (size_t)-2 || *k == 0){
		*k = 1;
		return 1;
	}
	w = wcwidth(wc);
	return w < 0 ? 1 : w;
}

/* Bytes of s (n long) that fit in cols columns, whole characters. */
static size_t fit(const char *s, size_t n, int cols)
{
	size_t i = 0, k;
	int w = 0;

	while(i < n){
		int cw = cp_width(s + i, n - i, &k);
		if(w + cw > cols) break;
		w += cw;
		i += k;
	}
	return i;
}

/* ---- rows ---- */

static struct vrow *add_row(struct vrows *v)
{
	if(v->n == v->cap){
		int cap = v->cap ? v->cap * 2 : 64;
		struct vrow *n = realloc(v->r, (size_t)cap * sizeof(*n));
		if(n == NULL) return NULL;
		v->r = n;
		v->cap = cap;
	}
	memset(&v->r[v->n], 0, sizeof(v->r[0]));
	return &v->r[v->n++];
}

static void free_rows(struct vrows *v)
{
	int i;

	for(i=0; i<v->n; i++) free(v->r[i].text);
	free(v->r);
	memset(v, 0, sizeof(*v));
}

/* Word-wrap text (with styled spans of it) into rows of width cols, the
 * first at indent first_indent, the others at next_indent; appended to v. */
static void wrap(struct vrows *v, const char *text, const struct vspan *spans, int nspans,
		int cols, int first_indent, int next_indent, attr_t row_attr)
{
	size_t n = strlen(text), start = 0;
	bool first = true;

	while(start < n || first){
		int indent = first ? first_indent : next_indent;
		int width = cols - indent, w = 0;
		size_t i = start, brk = 0, k, end, next;
		struct vrow *r;
		int s;

		if(width < 1) width = 1;
		while(i < n && text[i] != '\n'){
			int cw = cp_width(text + i, n - i, &k);
			if(w + cw > width) break;
			if(text[i] == ' ') brk = i;
			w += cw;
			i += k;
		}
		if(i >= n || text[i] == '\n'){
			end = i;
			next = i < n ? i + 1 : n;
		}else if(brk > start){
			end = brk;
			next = brk + 1;
		}else{
			end = i > start ? i : start + 1;
			next = end;
		}
		r = add_row(v);
		if(r == NULL) return;
		r->text = strndup(text + start, end - start);
		r->indent = indent;
		r->attr = row_attr;
		for(s=0; s<nspans && r->nspans < 4; s++){
			int a = spans[s].start - (int)start, b = spans[s].end - (int)start;
			if(b <= 0 || a >= (int)(end - start)) continue;
			r->spans[r->nspans].start = a < 0 ? 0 : a;
			r->spans[r->nspans].end = b > (int)(end - start) ? (int)(end - start) : b;
			r->spans[r->nspans].attr = spans[s].attr;
			r->nspans++;
		}
		first = false;
		start = next;
		if(start >= n && (end == n || text[n - 1] != '\n')) break;
	}
}

static void draw_row(const struct vrow *r, int y, int x0, int cols)
{
	int len = r->text ? (int)strlen(r->text) : 0, at = 0, s;

	move(y, x0);
	attrset(r->attr);
	if(r->attr) hline(' ', cols);
	move(y, x0 + r->indent);
	while(at < len){
		int next = len;
		attr_t a = r->attr;
		for(s=0; s<r->nspans; s++){
			if(r->spans[s].start <= at && at < r->spans[s].end){
				a |= r->spans[s].attr;
				if(r->spans[s].end < next) next = r->spans[s].end;
			}else if(r->spans[s].start > at && r->spans[s].start < next){
				next = r->spans[s].start;
			}
		}
		attrset(a);
		addnstr(r->text + at, next - at);
		at = next;
	}
	attrset(A_NORMAL);
}

/* ---- times ---- */

static void local_tm(int64_t ms, struct tm *tm)
{
	time_t x = (time_t)(ms / 1000);

	localtime_r(&x, tm);
}

static bool same_day(int64_t a, int64_t b)
{
	struct tm x, y;

	local_tm(a, &x);
	local_tm(b, &y);
	return x.tm_year == y.tm_year && x.tm_yday == y.tm_yday;
}

/* "12:03" today, "Thu 3 Dec 12:03" this year, else with the year. */
static void fmt_seen(const struct tui *t, int64_t ms, char *out, size_t len)
{
	struct tm a, b;

	local_tm(ms, &a);
	local_tm(tui__now(t), &b);
	if(a.tm_year == b.tm_year && a.tm_yday == b.tm_yday) strftime(out, len, "%H:%M", &a);
	else if(a.tm_year == b.tm_year) strftime(out, len, "%a %-d %b %H:%M", &a);
	else strftime(out, len, "%-d %b %Y", &a);
}

static void day_row(struct tui *t, struct vrows *v, int64_t ms, int cols)
{
	char label[64], text[160];
	const char *bar = t->utf8 ? "──" : "--";
	struct tm tm;
	struct vspan sp;

	if(same_day(ms, tui__now(t))){
		snprintf(label, sizeof(label), "Today");
	}else{
		local_tm(ms, &tm);
		strftime(label, sizeof(label), "%A %-d %B %Y", &tm);
	}
	snprintf(text, sizeof(text), "%s %s %s", bar, label, bar);
	sp = (struct vspan){0, (int)strlen(text), A_BOLD};
	wrap(v, text, &sp, 1, cols, 0, 0, 0);
}

/* ---- one message ---- */

static const char *mark(const struct tui *t, const struct tconv *c, const struct tmsg *m,
		enum tmsg_status shown, attr_t *attr)
{
	int others = c->nmembers > 1 ? c->nmembers - 1 : 1;

	*attr = pair(PAIR_MARK);
	if(c->kind == TCONV_ROOM && shown >= TMSG_SENT){
		if(m->room_read >= others) return t->utf8 ? "✔✔" : "**";
		if(m->room_delivered >= others) return t->utf8 ? "✓✓" : "++";
		return t->utf8 ? "✓" : "+";
	}
	switch(shown){
		case TMSG_PENDING: *attr = A_DIM; return t->utf8 ? "…" : "...";
		case TMSG_FAILED: *attr = pair(PAIR_FAIL) | A_BOLD; return t->utf8 ? "✗" : "x";
		case TMSG_SENT: return t->utf8 ? "✓" : "+";
		case TMSG_DELIVERED: return t->utf8 ? "✓✓" : "++";
		case TMSG_READ: *attr = pair(PAIR_MARK) | A_BOLD; return t->utf8 ? "✔✔" : "**";
	}
	return "";
}

static void event_words(const struct tui *t, const struct tmsg *m, const char *room,
		char *out, size_t len)
{
	const char *by = m->ev_by[0] ? tui_store__nick(&t->st, m->ev_by) : "an operator";
	const char *user = m->ev_user[0] ? tui_store__nick(&t->st, m->ev_user) : "";
	const char *e = m->event;

	if(!strcmp(e, "created")) snprintf(out, len, "%s created #%s", by, room);
	else if(!strcmp(e, "joined")) snprintf(out, len, "%s joined (added by an operator)", user);
	else if(!strcmp(e, "added")) snprintf(out, len, "%s added %s", by, user);
	else if(!strcmp(e, "removed")) snprintf(out, len, "%s removed %s", by, user);
	else if(!strcmp(e, "left")) snprintf(out, len, "%s left", user);
	else if(!strcmp(e, "promoted")) snprintf(out, len, "%s made %s an admin", by, user);
	else if(!strcmp(e, "demoted")) snprintf(out, len, "%s made %s a member", by, user);
	else if(!strcmp(e, "changed")) snprintf(out, len, "%s changed the title or description", by);
	else if(!strcmp(e, "deleted")) snprintf(out, len, "%s deleted #%s", by, room);
	else snprintf(out, len, "%s: %s", e, user);
}

/* The rows of message m (quote, text, reactions), appended to v. */
static void message_rows(struct tui *t, struct tconv *c, const struct tmsg *m,
		enum tmsg_status shown, int cols, attr_t sel, struct vrows *v)
{
	char hhmm[8], *body = NULL, *text;
	struct vspan sp[4];
	struct tm tm;
	const char *name;
	size_t need;
	int ns = 0;

	local_tm(m->time_ms, &tm);
	strftime(hhmm, sizeof(hhmm), "%H:%M", &tm);
	if(m->is_event){
		char words[300], *w;
		event_words(t, m, c->name, words, sizeof(words));
		w = safe_text(words, false);
		need = strlen(hhmm) + strlen(w ? w : "") + 8;
		text = malloc(need);
		if(text){
			snprintf(text, need, "%s -- %s", hhmm, w ? w : "");
			sp[0] = (struct vspan){0, 5, pair(PAIR_TIME) | A_DIM};
			sp[1] = (struct vspan){6, (int)strlen(text), pair(PAIR_EVENT)};
			wrap(v, text, sp, 2, cols, 0, INDENT, sel);
		}
		free(w);
		free(text);
		return;
	}
	name = tui_store__nick(&t->st, m->from);
	if(m->reply_to[0]){
		struct tmsg *q = tui_store__find(c, m->reply_from, m->reply_to);
		const char *qt = q == NULL ? "(an earlier message)" : q->deleted ? "(message deleted)"
			: q->body ? q->body : "";
		char quote[200], *safe;
		size_t cut;
		safe = safe_text(qt, false);
		if(safe){
			cut = fit(safe, strlen(safe), cols - INDENT - 6 - (int)strlen(m->reply_from));
			snprintf(quote, sizeof(quote), "%s <%s> %.*s%s", t->utf8 ? "┌" : ",",
					tui_store__nick(&t->st, m->reply_from), (int)(cut > 120 ? 120 : cut), safe,
					cut < strlen(safe) ? (t->utf8 ? "…" : "...") : "");
			sp[0] = (struct vspan){0, (int)strlen(quote), A_DIM};
			wrap(v, quote, sp, 1, cols, INDENT, INDENT, sel);
			free(safe);
		}
	}
	if(m->deleted){
		body = strdup("(message deleted)");
	}else{
		body = safe_text(m->body ? m->body : "", true);
	}
	if(body == NULL) return;
	{
		char *nm = safe_text(name, false);
		const char *mk = "";
		attr_t mattr = 0;
		char why[300] = "";
		bool mine = !strcmp(m->from, t->st.me);
		if(mine) mk = mark(t, c, m, shown, &mattr);
		if(mine && shown == TMSG_FAILED){
			snprintf(why, sizeof(why), " not sent: %s", m->fail_reason ? m->fail_reason : "refused");
		}
		need = strlen(hhmm) + strlen(nm ? nm : "") + strlen(body) + strlen(mk) + strlen(why) + 40;
		text = malloc(need);
		if(text){
			int at;
			snprintf(text, need, "%s <%s> %s%s%s%s%s", hhmm, nm ? nm : "", body,
					m->edited && !m->deleted ? " (edited)" : "", m->truncated ? " [...]" : "",
					mk[0] ? " " : "", mk);
			sp[ns++] = (struct vspan){0, 5, pair(PAIR_TIME) | A_DIM};
			sp[ns++] = (struct vspan){6, 8 + (int)strlen(nm ? nm : ""),
				(mine ? pair(PAIR_ME) : pair(PAIR_THEM)) | A_BOLD};
			if(m->deleted){
				sp[ns++] = (struct vspan){9 + (int)strlen(nm ? nm : ""), (int)strlen(text), A_DIM};
			}
			at = (int)strlen(text);
			if(mk[0]) sp[ns++] = (struct vspan){at - (int)strlen(mk), at, mattr};
			if(why[0]){
				size_t tl = strlen(text);
				snprintf(text + tl, need - tl, "%s", why);
				sp[ns - 1].end = (int)strlen(text);
			}
			wrap(v, text, sp, ns, cols, 0, INDENT, sel);
			free(text);
		}
		free(nm);
	}
	free(body);
	if(m->nreactions > 0 && !m->deleted){
		char line[600] = "";
		size_t o = 0;
		int r, u;
		for(r=0; r<m->nreactions && o < sizeof(line) - 80; r++){
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", r ? "  " : "",
					m->reactions[r].emoji);
			for(u=0; u<m->reactions[r].nusers && o < sizeof(line) - 40; u++){
				o += (size_t)snprintf(line + o, sizeof(line) - o, " %s",
						tui_store__nick(&t->st, m->reactions[r].users[u]));
			}
		}
		text = safe_text(line, false);
		if(text){
			sp[0] = (struct vspan){0, (int)strlen(text), A_DIM};
			wrap(v, text, sp, 1, cols, INDENT, INDENT, sel);
			free(text);
		}
	}
}

/* ---- panes ---- */

void tui_view__label(const struct tconv *c, char *out, size_t len)
{
	snprintf(out, len, "%s%s", c->kind == TCONV_ROOM ? "#" : "", c->name);
}

static void draw_list(struct tui *t, int rows)
{
	int i, y = 1;
	const char *sep = t->utf8 ? "│" : "|";

	for(y=1; y<rows - 2; y++) mvaddstr(y, LIST_W, sep);
	y = 1;
	for(i=0; i<t->st.nconvs && y < rows - 2; i++, y++){
		struct tconv *c = t->st.convs[i];
		const struct tpresence *p = c->kind == TCONV_DIRECT
			? tui_store__presence_of(&t->st, c->name) : NULL;
		char label[NAME_MAX_LEN + 2], count[8] = "";
		int room;
		size_t cut;

		tui_view__label(c, label, sizeof(label));
		if(c->unread > 0) snprintf(count, sizeof(count), c->unread > 999 ? "999+" : "%d", c->unread);
		room = LIST_W - 2 - (count[0] ? (int)strlen(count) + 1 : 0);
		if(c == t->open) attrset(A_BOLD | A_REVERSE);
		else if(tui__muted(t, c, NULL)) attrset(A_DIM);
		move(y, 0);
		hline(' ', LIST_W);
		mvaddstr(y, 0, c == t->open ? ">" : " ");
		if(p && p->online){
			attron(pair(PAIR_ME));
			mvaddstr(y, 1, t->utf8 ? "●" : "*");
			attroff(pair(PAIR_ME));
		}
		cut = fit(label, strlen(label), room);
		if(cut < strlen(label)){
			cut = fit(label, strlen(label), room - 1);
			mvaddnstr(y, 2, label, (int)cut);
			addstr(t->utf8 ? "…" : "~");
		}else{
			mvaddstr(y, 2, label);
		}
		if(count[0]){
			attron(A_BOLD);
			mvaddstr(y, LIST_W - (int)strlen(count), count);
		}
		attrset(A_NORMAL);
	}
}

static void draw_top(struct tui *t, int cols)
{
	char left[300], state[200], clock[8];
	const char *dot = DOT(t);
	int64_t now = time__mono_ms();
	struct tm tm;

	if(t->s.taken_over){
		snprintf(state, sizeof(state), "taken over by another mqchat as %s", t->s.client_id);
	}else if(t->s.connected){
		snprintf(state, sizeof(state), "online");
	}else if(t->s.retry_at > now){
		snprintf(state, sizeof(state), "offline %s retry in %d s", dot,
				(int)((t->s.retry_at - now + 999) / 1000));
	}else{
		snprintf(state, sizeof(state), "connecting");
	}
	snprintf(left, sizeof(left), " mqchat %s %s %s %s", dot, t->st.me, dot, state);
	if(t->nouts > 0){
		size_t l = strlen(left);
		snprintf(left + l, sizeof(left) - l, " %s %d queued", dot, t->nouts);
	}
	local_tm(tui__now(t), &tm);
	strftime(clock, sizeof(clock), "%H:%M", &tm);
	attrset(A_REVERSE);
	move(0, 0);
	hline(' ', cols);
	/* On a narrow terminal the state matters more than the clock. */
	if(fit(left, strlen(left), cols - 7) == strlen(left)){
		mvaddstr(0, 0, left);
		mvaddstr(0, cols - 6, clock);
	}else{
		mvaddnstr(0, 0, left, (int)fit(left, strlen(left), cols));
	}
	attrset(A_NORMAL);
}

static void draw_title(struct tui *t, int x0, int cols)
{
	char text[400];
	struct tconv *c = t->open;

	if(c == NULL){
		snprintf(text, sizeof(text), "no conversation open: /open NAME or /help");
	}else if(c->kind == TCONV_ROOM){
		snprintf(text, sizeof(text), "#%s%s%s %s %d member%s", c->name,
				c->title && c->title[0] ? SEP(t) : "", c->title ? c->title : "",
				DOT(t), c->nmembers, c->nmembers == 1 ? "" : "s");
	}else if(!strcmp(c->name, t->st.me)){
		snprintf(text, sizeof(text), "%s %s notes to yourself", c->name, DOT(t));
	}else{
		const struct tpresence *p = tui_store__presence_of(&t->st, c->name);
		const char *nick = tui_store__nick(&t->st, c->name);
		char seen[64] = "";
		if(p && p->online) snprintf(seen, sizeof(seen), " %s online", DOT(t));
		else if(p && p->since > 0){
			char when[48];
			fmt_seen(t, p->since, when, sizeof(when));
			snprintf(seen, sizeof(seen), " %s last seen %s", DOT(t), when);
		}
		snprintf(text, sizeof(text), "%s%s%s%s%s", c->name, strcmp(nick, c->name) ? " (" : "",
				strcmp(nick, c->name) ? nick : "", strcmp(nick, c->name) ? ")" : "", seen);
	}
	if(c){
		int64_t until = 0;
		if(tui__muted(t, c, &until)){
			size_t l = strlen(text);
			char when[48] = "";
			if(until > 0) fmt_seen(t, until, when, sizeof(when));
			snprintf(text + l, sizeof(text) - l, " %s muted%s%s", DOT(t), until ? " until " : "",
					when);
		}
	}
	{
		char *s = safe_text(text, false);
		if(s){
			attrset(A_BOLD);
			mvaddnstr(1, x0, s, (int)fit(s, strlen(s), cols));
			attrset(A_NORMAL);
			free(s);
		}
	}
}

/* The open conversation's rows, oldest first, enough for the screen. */
static void conversation_rows(struct tui *t, int cols, int want, struct vrows *v,
		int *sel_top, int *sel_end)
{
	struct tconv *c = t->open;
	struct vrows rev = {0}, block = {0};
	enum tmsg_status shown = TMSG_SENT, best_mine = TMSG_PENDING;
	int i, k;

	*sel_top = *sel_end = -1;
	/* Info lines at the bottom, then messages upwards, newest first; each
	 * message's block is built in order and then stacked reversed. */
	for(i=t->ninfo - 1; i>=0; i--){
		char *s = safe_text(t->info[i], true);
		struct vspan sp;
		if(s == NULL) continue;
		char *line = malloc(strlen(s) + 5);
		if(line){
			sprintf(line, "-!- %s", s);
			sp = (struct vspan){0, 3, pair(PAIR_INFO) | A_BOLD};
			wrap(&block, line, &sp, 1, cols, 0, 4, 0);
			for(k=block.n - 1; k>=0; k--){
				struct vrow *r = add_row(&rev);
				if(r) *r = block.r[k];
			}
			block.n = 0;
			free(line);
		}
		free(s);
	}
	t->at_top = true;
	for(i=c ? c->nmsgs - 1 : -1; i>=0; i--){
		struct tmsg *m = c->msgs[i];
		bool mine = !strcmp(m->from, t->st.me) && !m->is_event;
		if(rev.n >= want && (t->sel < 0 || i < t->sel)){
			t->at_top = false;
			break;
		}
		/* A read receipt says "read up to here" in a direct conversation:
		 * my earlier texts show at least what a later one has. */
		shown = m->status;
		if(mine && c->kind == TCONV_DIRECT && m->status >= TMSG_SENT){
			if(best_mine > shown) shown = best_mine;
			if(m->status > best_mine) best_mine = m->status;
		}
		message_rows(t, c, m, shown, cols, i == t->sel ? A_REVERSE : 0, &block);
		if(i == 0 || !same_day(c->msgs[i - 1]->time_ms, m->time_ms)){
			/* The day's separator goes above the first message of a day. */
			struct vrows with_day = {0};
			day_row(t, &with_day, m->time_ms, cols);
			for(k=0; k<block.n; k++){
				struct vrow *r = add_row(&with_day);
				if(r) *r = block.r[k];
			}
			free(block.r);
			block = with_day;
		}
		if(i == t->sel) *sel_end = rev.n;
		for(k=block.n - 1; k>=0; k--){
			struct vrow *r = add_row(&rev);
			if(r) *r = block.r[k];
		}
		if(i == t->sel) *sel_top = rev.n;
		block.n = 0;
	}
	free(block.r);
	/* rev is newest first: turn it around. */
	for(k=rev.n - 1; k>=0; k--){
		struct vrow *r = add_row(v);
		if(r) *r = rev.r[k];
	}
	free(rev.r);
}

int tui_view__page(const struct tui *t)
{
	(void)t;
	return LINES - 5 > 1 ? LINES - 5 : 1;
}

static void draw_typing(struct tui *t, int y, int x0, int cols)
{
	struct tconv *c = t->open;
	char text[200];

	if(c == NULL || c->ntyping == 0) return;
	if(c->ntyping == 1){
		snprintf(text, sizeof(text), "%s is typing%s", tui_store__nick(&t->st, c->typing[0]),
				t->utf8 ? "…" : "...");
	}else if(c->ntyping == 2){
		snprintf(text, sizeof(text), "%s and %s are typing%s", tui_store__nick(&t->st, c->typing[0]),
				tui_store__nick(&t->st, c->typing[1]), t->utf8 ? "…" : "...");
	}else{
		snprintf(text, sizeof(text), "%d people are typing%s", c->ntyping, t->utf8 ? "…" : "...");
	}
	char *s = safe_text(text, false);
	if(s == NULL) return;
	attrset(A_DIM);
	mvaddnstr(y, x0, s, (int)fit(s, strlen(s), cols));
	attrset(A_NORMAL);
	free(s);
}

static void draw_status(struct tui *t, int y, int cols)
{
	char text[400], count[48] = "";
	int others = 0, i;

	for(i=0; i<t->st.nconvs; i++){
		if(t->st.convs[i] != t->open) others += t->st.convs[i]->unread;
	}
	/* Without the list the status row says what waits elsewhere, first,
	 * so a narrow terminal still shows it. */
	if(others > 0 && COLS < LIST_FROM_COLS){
		snprintf(count, sizeof(count), " %d unread %s", others, DOT(t));
	}
	if(t->notice[0]){
		snprintf(text, sizeof(text), "%s %s", count, t->notice);
	}else if(t->sel >= 0){
		snprintf(text, sizeof(text), "%s selected: /reply /react /edit /delete %s Esc unselects",
				count, DOT(t));
	}else if(t->scroll > 0){
		snprintf(text, sizeof(text), "%s scrolled back %s PgDn for newer", count, DOT(t));
	}else{
		snprintf(text, sizeof(text), "%s /help %s Ctrl-N/P next/prev %s PgUp/PgDn scroll", count,
				DOT(t), DOT(t));
	}
	attrset(A_REVERSE);
	move(y, 0);
	hline(' ', cols);
	mvaddnstr(y, 0, text, (int)fit(text, strlen(text), cols));
	attrset(A_NORMAL);
}

void tui_view__draw(struct tui *t)
{
	int rows = LINES, cols = COLS, x0 = 0, w, msg_h, i, first, sel_top, sel_end, total;
	struct vrows v = {0};
	char prompt[NAME_MAX_LEN + 8];
	size_t a, b;
	int cur;

	erase();
	if(rows < 8 || cols < 30){
		mvaddstr(0, 0, "mqchat: the terminal is too small");
		refresh();
		return;
	}
	if(cols >= LIST_FROM_COLS){
		draw_list(t, rows);
		x0 = LIST_W + 1;
	}
	w = cols - x0;
	msg_h = rows - 5;
	draw_top(t, cols);
	draw_title(t, x0, w);

	conversation_rows(t, w, msg_h + t->scroll, &v, &sel_top, &sel_end);
	total = v.n;
	/* Keep the selection on screen. */
	if(sel_top >= 0){
		if(sel_end < t->scroll) t->scroll = sel_end;
		if(sel_top > t->scroll + msg_h) t->scroll = sel_top - msg_h;
	}
	if(t->scroll > total - msg_h) t->scroll = total - msg_h > 0 ? total - msg_h : 0;
	first = total - t->scroll - msg_h;
	/* Older history is asked for once the oldest row held is on screen. */
	t->at_top = t->at_top && first <= 0;
	for(i=0; i<msg_h; i++){
		int k = first + i;
		if(k < 0 || k >= total) continue;
		draw_row(&v.r[k], 2 + i, x0, w);
	}
	free_rows(&v);

	draw_typing(t, rows - 3, x0, w);
	draw_status(t, rows - 2, cols);

	if(t->open) snprintf(prompt, sizeof(prompt), "[%s%s] ",
			t->open->kind == TCONV_ROOM ? "#" : "", t->open->name);
	else snprintf(prompt, sizeof(prompt), "[mqchat] ");
	attrset(A_BOLD);
	mvaddstr(rows - 1, 0, prompt);
	attrset(A_NORMAL);
	{
		int pw = (int)strlen(prompt);
		cur = tui_line__view(&t->line, cols - pw > 4 ? cols - pw : 4, &a, &b);
		mvaddnstr(rows - 1, pw, t->line.buf + a, (int)(b - a));
		move(rows - 1, pw + cur);
	}
	curs_set(1);
	refresh();
}
