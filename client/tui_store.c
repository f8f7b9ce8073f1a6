/* tui_store.c - the terminal app's model: conversations and their messages
 * merged from live envelopes, archived rows and the conversation list (see
 * tui_store.h).
 *
 * Everything that comes from outside is checked before it is kept: names
 * and ids against the wire grammar (names.h), JSON members by type. A
 * member that is missing or of the wrong type makes the envelope or row
 * ignored (or, for an optional one, absent); nothing is cut to fit.
 *
 * Decisions:
 * - Messages of a conversation stay in display order as they are added:
 *   those with a seq by seq, then those without by arrival (order). A live
 *   message that gets its seq from the archive is taken out and put back
 *   at its place. Linear searches: a conversation holds a few thousand.
 * - Status only goes up (pending < sent < delivered < read); a refused
 *   message is the one exception: a refusal may come after the PUBACK
 *   (MQTT 3.1.1 has no reason code in it), so it turns pending or sent into
 *   failed, and a PUBACK after a refusal changes nothing. Whatever shows the
 *   message got through (a receipt, my own copy back, the archive) lifts a
 *   pending or failed one.
 * - Room receipts: receipt_users lists each member who sent one, once; the
 *   first room_read of them read the message, the rest only got it
 *   (room_delivered == nreceipt_users: read implies delivered).
 * - "Moves to the top" sets last_time to at least the top conversation's, so
 *   a later tui_store__sort keeps it there whatever the clocks said. An
 *   archived text or event newer than the conversation's last raises its
 *   last_seq and last_time but moves nothing (the app sorts when it wants
 *   the list to follow); a conversations entry sorts the list itself.
 * - A read envelope or list entry never moves the marker back: an older
 *   one (a list answer made before the read) leaves marker and badge.
 * - Anything from someone blocked is dropped (texts, reactions, receipts;
 *   the archiver's edits and deletes still apply: they are the archive's).
 *   What is held already stays; the view decides whether to show it. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "names.h"
#include "topic.h"
#include "tui_store.h"

/* The archiver's account: membership events, edits, deletes, read markers. */
#define ARCHIVER "archiver"
/* Typing is forgotten this long after the last "true" (PROTOCOL.md step 11). */
#define TYPING_MS 6000
#define TYPING_SLOTS ((int)(sizeof(((struct tconv *)0)->typing) / sizeof(((struct tconv *)0)->typing[0])))
/* The longest emoji a reaction may carry, in bytes. */
#define EMOJI_MAX 32

/* ---- small helpers ---- */

/* The string member key of o (borrowed), or NULL when absent or not a
 * string (o may be anything, NULL too). */
static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The integer member key of o, or 0 when absent or not an integer. */
static int64_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static bool valid_name(const char *s)
{
	return s != NULL && names__valid_str(s);
}

static bool valid_id(const char *s)
{
	return s != NULL && names__valid_msgid(s, strlen(s));
}

/* Copy s into dst (NAME_MAX_LEN + 1 or MSGID_MAX_LEN + 1 bytes) after the
 * caller checked it: valid names and ids fit. */
static void copy_checked(char *dst, const char *s)
{
	size_t n = strlen(s);

	memcpy(dst, s, n + 1);
}

/* A topic level that is a valid name, NUL-terminated into dst. */
static bool level_name(const struct topic_level *l, char dst[NAME_MAX_LEN + 1])
{
	if(!names__valid(l->p, l->n)) return false;
	memcpy(dst, l->p, l->n);
	dst[l->n] = '\0';
	return true;
}

/* An emoji as a reaction may carry it: 1..32 bytes, no spaces or
 * control characters (the plugin checks the rest). */
static bool valid_emoji(const char *s)
{
	size_t i, n;

	if(s == NULL) return false;
	n = strlen(s);
	if(n == 0 || n > EMOJI_MAX) return false;
	for(i=0; i<n; i++){
		unsigned char ch = (unsigned char)s[i];

		if(ch <= ' ' || ch == 0x7f) return false;
	}
	return true;
}

/* Room for one more in a growing array of *cap items of size bytes, n of
 * them used: the (maybe moved) array, or NULL when out of memory (the old
 * one untouched). */
static void *grow(void *items, int *cap, int n, size_t size)
{
	size_t c = (size_t)*cap;
	void *v;

	if(*cap >= INT_MAX / 2) return NULL;
	v = grow__one(items, &c, (size_t)n, size, 8);
	if(v != NULL) *cap = (int)c;
	return v;
}

/* Append a copy of s to *arr of *n strings (no capacity kept: these lists
 * are short). False when out of memory, nothing changed. */
static bool strv_add(char ***arr, int *n, const char *s)
{
	char **v;
	char *dup;

	if(*n >= INT_MAX - 1) return false;
	dup = strdup(s);
	if(dup == NULL) return false;
	v = realloc(*arr, (size_t)(*n + 1) * sizeof(*v));
	if(v == NULL){
		free(dup);
		return false;
	}
	v[(*n)++] = dup;
	*arr = v;
	return true;
}

/* Index of s in arr, or -1. */
static int strv_find(char **arr, int n, const char *s)
{
	int i;

	for(i=0; i<n; i++){
		if(!strcmp(arr[i], s)) return i;
	}
	return -1;
}

static void strv_free(char **arr, int n)
{
	int i;

	for(i=0; i<n; i++) free(arr[i]);
	free(arr);
}

/* Replace *dst (owned) with a copy of s. False when out of memory (*dst
 * kept). */
static bool set_str(char **dst, const char *s)
{
	char *dup = strdup(s);

	if(dup == NULL) return false;
	free(*dst);
	*dst = dup;
	return true;
}

/* ---- messages ---- */

static void reactions_clear(struct tmsg *m)
{
	int i;

	for(i=0; i<m->nreactions; i++) strv_free(m->reactions[i].users, m->reactions[i].nusers);
	free(m->reactions);
	m->reactions = NULL;
	m->nreactions = 0;
}

static void msg_free(struct tmsg *m)
{
	if(m == NULL) return;
	free(m->body);
	free(m->fail_reason);
	reactions_clear(m);
	strv_free(m->receipt_users, m->nreceipt_users);
	free(m);
}

/* A new message (from, id), both checked by the caller, with an empty
 * body, the next arrival order and the status of someone else's message.
 * The caller owns it (msg_free); NULL when out of memory. */
static struct tmsg *msg_new(struct tstore *st, const char *from, const char *id)
{
	struct tmsg *m = calloc(1, sizeof(*m));

	if(m == NULL) return NULL;
	m->body = strdup("");
	if(m->body == NULL){
		free(m);
		return NULL;
	}
	copy_checked(m->from, from);
	copy_checked(m->id, id);
	m->order = ++st->next_order;
	m->status = TMSG_SENT;
	return m;
}

/* The reply members of o (text envelope or row), both or neither. */
static void take_reply(struct tmsg *m, json_t *o)
{
	const char *to = jstr(o, "reply_to"), *from = jstr(o, "reply_from");

	if(valid_id(to) && valid_name(from)){
		copy_checked(m->reply_to, to);
		copy_checked(m->reply_from, from);
	}
}

/* Raise m's status to s (SENT or above): never down. A pending or failed
 * message that s shows got through takes it, and loses its failure. */
static bool raise_status(struct tmsg *m, enum tmsg_status s)
{
	if(s <= m->status) return false;
	m->status = s;
	free(m->fail_reason);
	m->fail_reason = NULL;
	return true;
}

/* The archive's word for a status; anything else is "sent". */
static enum tmsg_status status_of(const char *s)
{
	if(s != NULL && !strcmp(s, "read")) return TMSG_READ;
	if(s != NULL && !strcmp(s, "delivered")) return TMSG_DELIVERED;
	return TMSG_SENT;
}

/* The reaction emoji on m, or NULL. */
static struct treaction *reaction_find(struct tmsg *m, const char *emoji)
{
	int i;

	for(i=0; i<m->nreactions; i++){
		if(!strcmp(m->reactions[i].emoji, emoji)) return &m->reactions[i];
	}
	return NULL;
}

/* user puts emoji on m (or takes it back): each person once per emoji,
 * emoji in the order of their first reaction, people in the order they
 * reacted. True if m changed. */
static bool apply_reaction(struct tmsg *m, const char *user, const char *emoji, bool remove)
{
	struct treaction *r = reaction_find(m, emoji);
	struct treaction *v;
	int i;

	if(remove){
		if(r == NULL || (i = strv_find(r->users, r->nusers, user)) < 0) return false;
		free(r->users[i]);
		memmove(&r->users[i], &r->users[i + 1], (size_t)(r->nusers - i - 1) * sizeof(r->users[0]));
		r->nusers--;
		if(r->nusers == 0){
			i = (int)(r - m->reactions);
			free(r->users);
			memmove(&m->reactions[i], &m->reactions[i + 1],
					(size_t)(m->nreactions - i - 1) * sizeof(m->reactions[0]));
			m->nreactions--;
		}
		return true;
	}
	if(r != NULL) return strv_find(r->users, r->nusers, user) < 0 && strv_add(&r->users, &r->nusers, user);
	if(m->nreactions >= INT_MAX - 1) return false;
	v = realloc(m->reactions, (size_t)(m->nreactions + 1) * sizeof(*v));
	if(v == NULL) return false;
	m->reactions = v;
	r = &v[m->nreactions];
	memset(r, 0, sizeof(*r));
	copy_checked(r->emoji, emoji);
	if(!strv_add(&r->users, &r->nusers, user)) return false;
	m->nreactions++;
	return true;
}

/* The reactions of a row ([{"emoji":..,"users":[..]}], borrowed) in place
 * of m's: the archive's are as they are now. */
static void take_reactions(struct tmsg *m, json_t *arr)
{
	size_t i, j;
	json_t *r, *u;

	reactions_clear(m);
	json_array_foreach(arr, i, r){
		const char *emoji = jstr(r, "emoji");

		if(!valid_emoji(emoji)) continue;
		json_array_foreach(json_object_get(r, "users"), j, u){
			if(valid_name(json_string_value(u))) apply_reaction(m, json_string_value(u), emoji, false);
		}
	}
}

/* The new body of a text at ts. False when nothing changed (m gone, or
 * edited later already). */
static bool apply_edit(struct tmsg *m, const char *body, int64_t ts)
{
	if(m == NULL || m->is_event || m->deleted || (m->edited && ts < m->edited)) return false;
	if(!set_str(&m->body, body)) return false;
	m->edited = ts;
	m->truncated = false;
	return true;
}

/* Make m a tombstone: deleted at ts by by ("" when unknown); body,
 * reactions, reply and edit gone. False if it was already. */
static bool apply_delete(struct tmsg *m, int64_t ts, const char *by)
{
	char *empty;

	if(m == NULL || m->is_event || m->deleted) return false;
	empty = strdup("");
	if(empty == NULL) return false;
	free(m->body);
	m->body = empty;
	m->truncated = false;
	m->edited = 0;
	m->reply_to[0] = m->reply_from[0] = '\0';
	reactions_clear(m);
	m->deleted = ts > 0 ? ts : 1;
	if(valid_name(by)) copy_checked(m->deleted_by, by);
	else m->deleted_by[0] = '\0';
	return true;
}

/* Count user's room receipt on my message m (see the file comment for
 * how receipt_users is kept). True if a count changed. */
static bool count_receipt(struct tmsg *m, const char *user, bool read)
{
	char *tmp;
	int i = strv_find(m->receipt_users, m->nreceipt_users, user);

	if(i < 0){
		if(!strv_add(&m->receipt_users, &m->nreceipt_users, user)) return false;
		i = m->nreceipt_users - 1;
		m->room_delivered = m->nreceipt_users;
		if(!read) return true;
	}else if(!read || i < m->room_read){
		return false;
	}
	/* Read: move it into the read part, at its end. */
	tmp = m->receipt_users[i];
	m->receipt_users[i] = m->receipt_users[m->room_read];
	m->receipt_users[m->room_read] = tmp;
	m->room_read++;
	return true;
}

/* ---- a conversation's messages, in order ---- */

struct tmsg *tui_store__find(struct tconv *c, const char *from, const char *id)
{
	int i;

	if(c == NULL || from == NULL || id == NULL) return NULL;
	/* Newest first: what is looked up is mostly recent. */
	for(i=c->nmsgs - 1; i>=0; i--){
		if(!strcmp(c->msgs[i]->id, id) && !strcmp(c->msgs[i]->from, from)) return c->msgs[i];
	}
	return NULL;
}

/* Where m belongs in c: by seq, then those without a seq by order. */
static int msg_place(const struct tconv *c, const struct tmsg *m)
{
	int i = c->nmsgs;

	if(m->seq > 0){
		while(i > 0 && (c->msgs[i - 1]->seq == 0 || c->msgs[i - 1]->seq > m->seq)) i--;
	}else{
		while(i > 0 && c->msgs[i - 1]->seq == 0 && c->msgs[i - 1]->order > m->order) i--;
	}
	return i;
}

/* Put m (owned from now on by c) at its place. False when out of memory
 * (m still the caller's). */
static bool msg_insert(struct tconv *c, struct tmsg *m)
{
	struct tmsg **v;
	int i;

	v = grow(c->msgs, &c->capmsgs, c->nmsgs, sizeof(*v));
	if(v == NULL) return false;
	c->msgs = v;
	i = msg_place(c, m);
	memmove(&v[i + 1], &v[i], (size_t)(c->nmsgs - i) * sizeof(*v));
	v[i] = m;
	c->nmsgs++;
	return true;
}

/* m, held by c, got its seq: move it to its place. */
static void msg_reorder(struct tconv *c, struct tmsg *m)
{
	int i, j;

	for(i=0; i<c->nmsgs && c->msgs[i] != m; i++);
	if(i == c->nmsgs) return;
	memmove(&c->msgs[i], &c->msgs[i + 1], (size_t)(c->nmsgs - i - 1) * sizeof(c->msgs[0]));
	c->nmsgs--;
	j = msg_place(c, m);
	memmove(&c->msgs[j + 1], &c->msgs[j], (size_t)(c->nmsgs - j) * sizeof(c->msgs[0]));
	c->msgs[j] = m;
	c->nmsgs++;
}

/* ---- conversations ---- */

static void conv_free(struct tconv *c)
{
	int i;

	if(c == NULL) return;
	for(i=0; i<c->nmsgs; i++) msg_free(c->msgs[i]);
	free(c->msgs);
	free(c->title);
	strv_free(c->members, c->nmembers);
	free(c);
}

static int conv_index(const struct tstore *st, const struct tconv *c)
{
	int i;

	for(i=0; i<st->nconvs; i++){
		if(st->convs[i] == c) return i;
	}
	return -1;
}

struct tconv *tui_store__conv(struct tstore *st, enum tconv_kind kind, const char *name,
		bool create)
{
	struct tconv *c, **v;
	int i;

	if(st == NULL || !valid_name(name)) return NULL;
	for(i=0; i<st->nconvs; i++){
		c = st->convs[i];
		if(c->kind == kind && !strcmp(c->name, name)) return c;
	}
	if(!create) return NULL;
	v = grow(st->convs, &st->capconvs, st->nconvs, sizeof(*v));
	if(v == NULL) return NULL;
	st->convs = v;
	c = calloc(1, sizeof(*c));
	if(c == NULL || (c->title = strdup("")) == NULL){
		free(c);
		return NULL;
	}
	c->kind = kind;
	copy_checked(c->name, name);
	st->convs[st->nconvs++] = c;
	return c;
}

void tui_store__drop_conv(struct tstore *st, struct tconv *c)
{
	int i = conv_index(st, c);

	if(i < 0) return;
	memmove(&st->convs[i], &st->convs[i + 1], (size_t)(st->nconvs - i - 1) * sizeof(st->convs[0]));
	st->nconvs--;
	conv_free(c);
}

void tui_store__sort(struct tstore *st)
{
	int i, j;

	/* Insertion sort: stable, and the list is nearly sorted already. */
	for(i=1; i<st->nconvs; i++){
		struct tconv *c = st->convs[i];

		for(j=i; j>0 && st->convs[j - 1]->last_time < c->last_time; j--) st->convs[j] = st->convs[j - 1];
		st->convs[j] = c;
	}
}

/* c has a new text or event at now_ms: first in the list, with a
 * last_time that keeps it there. */
static void to_top(struct tstore *st, struct tconv *c, int64_t now_ms)
{
	int i = conv_index(st, c);

	if(i < 0) return;
	if(now_ms > c->last_time) c->last_time = now_ms;
	if(st->convs[0]->last_time > c->last_time) c->last_time = st->convs[0]->last_time;
	memmove(&st->convs[1], &st->convs[0], (size_t)i * sizeof(st->convs[0]));
	st->convs[0] = c;
}

/* The conversation a row (or the list's "last") belongs to: its room, or
 * for a direct message the other one of from and to (me for my notes).
 * Writes name; false when it names none of mine. */
static bool row_conv(const struct tstore *st, json_t *m, const char *from,
		enum tconv_kind *kind, char name[NAME_MAX_LEN + 1])
{
	const char *room = jstr(m, "room"), *to = jstr(m, "to");

	if(room != NULL){
		if(!valid_name(room)) return false;
		*kind = TCONV_ROOM;
		copy_checked(name, room);
		return true;
	}
	if(!valid_name(to)) return false;
	*kind = TCONV_DIRECT;
	if(!strcmp(from, st->me)) copy_checked(name, to);
	else if(!strcmp(to, st->me)) copy_checked(name, from);
	else return false;
	return true;
}

/* ---- the store ---- */

void tui_store__init(struct tstore *st, const char *me)
{
	memset(st, 0, sizeof(*st));
	if(valid_name(me)) copy_checked(st->me, me);
}

void tui_store__free(struct tstore *st)
{
	int i;

	if(st == NULL) return;
	for(i=0; i<st->nconvs; i++) conv_free(st->convs[i]);
	free(st->convs);
	free(st->presence);
	strv_free(st->nick_users, st->nnicks);
	strv_free(st->nicks, st->nnicks);
	strv_free(st->blocked, st->nblocked);
	memset(st, 0, sizeof(*st));
}

/* ---- live envelopes ---- */

/* What tui_store__live knows of one envelope while applying it. */
struct live {
	struct tstore *st;
	json_t *env;
	int64_t now_ms;
	bool room;                      /* chat/room/<a>/<from>, else chat/inbox/<a>/<from> */
	char a[NAME_MAX_LEN + 1];       /* the inbox's owner or the room */
	char from[NAME_MAX_LEN + 1];    /* the topic's sender */
	struct tconv *conv;             /* out */
	struct tmsg *msg;               /* out */
};

/* The conversation of a person's envelope: the room; in an inbox, the
 * other person (me for a note), whichever inbox it came to. */
static struct tconv *live_conv(struct live *lv, bool create)
{
	const char *me = lv->st->me;

	if(lv->room) return tui_store__conv(lv->st, TCONV_ROOM, lv->a, create);
	if(!strcmp(lv->a, me)) return tui_store__conv(lv->st, TCONV_DIRECT, lv->from, create);
	if(!strcmp(lv->from, me)) return tui_store__conv(lv->st, TCONV_DIRECT, lv->a, create);
	return NULL;
}

static enum tui_store_live live_text(struct live *lv)
{
	struct tstore *st = lv->st;
	const char *id = jstr(lv->env, "id"), *body = jstr(lv->env, "body");
	bool mine = !strcmp(lv->from, st->me);
	struct tconv *c;
	struct tmsg *m;

	if(!valid_id(id) || body == NULL || (c = live_conv(lv, true)) == NULL) return TSL_IGNORED;
	lv->conv = c;
	if((m = tui_store__find(c, lv->from, id)) != NULL){
		/* A redelivery, a note's second copy, or my own message back
		 * from the broker: the broker has it. */
		lv->msg = m;
		return mine && raise_status(m, TMSG_SENT) ? TSL_CHANGED : TSL_IGNORED;
	}
	if((m = msg_new(st, lv->from, id)) == NULL || !set_str(&m->body, body)){
		msg_free(m);
		return TSL_IGNORED;
	}
	take_reply(m, lv->env);
	m->time_ms = lv->now_ms;
	if(!msg_insert(c, m)){
		msg_free(m);
		return TSL_IGNORED;
	}
	lv->msg = m;
	to_top(st, c, lv->now_ms);
	if(mine) c->unread = 0;
	else if(c->unread < INT_MAX) c->unread++;
	/* A text ends its sender's typing. */
	tui_store__typing(c, lv->from, false, 0);
	return TSL_NEW;
}

static enum tui_store_live live_event(struct live *lv)
{
	const char *id = jstr(lv->env, "id"), *ev = jstr(lv->env, "event");
	const char *user = jstr(lv->env, "user"), *by = jstr(lv->env, "by");
	struct tconv *c;
	struct tmsg *m;

	if(!lv->room || !valid_id(id) || ev == NULL || ev[0] == '\0' || strlen(ev) >= sizeof(m->event)) return TSL_IGNORED;
	if((c = tui_store__conv(lv->st, TCONV_ROOM, lv->a, true)) == NULL) return TSL_IGNORED;
	lv->conv = c;
	if((m = tui_store__find(c, lv->from, id)) != NULL){
		lv->msg = m;
		return TSL_IGNORED;
	}
	if((m = msg_new(lv->st, lv->from, id)) == NULL) return TSL_IGNORED;
	m->is_event = true;
	strcpy(m->event, ev);
	if(valid_name(user)) copy_checked(m->ev_user, user);
	if(valid_name(by)) copy_checked(m->ev_by, by);
	m->time_ms = lv->now_ms;
	if(!msg_insert(c, m)){
		msg_free(m);
		return TSL_IGNORED;
	}
	lv->msg = m;
	to_top(lv->st, c, lv->now_ms);
	return TSL_NEW;
}

/* A receipt from a person for my message ref: in our direct conversation
 * it raises the status; else the message is mine in a room, where the
 * member is counted. */
static enum tui_store_live live_receipt(struct live *lv)
{
	struct tstore *st = lv->st;
	const char *ref = jstr(lv->env, "ref"), *status = jstr(lv->env, "status");
	struct tconv *c;
	struct tmsg *m;
	bool read;
	int i;

	if(lv->room || strcmp(lv->a, st->me) || !strcmp(lv->from, st->me) || !valid_id(ref) || status == NULL) return TSL_IGNORED;
	if(strcmp(status, "read") && strcmp(status, "delivered")) return TSL_IGNORED;
	read = !strcmp(status, "read");
	c = tui_store__conv(st, TCONV_DIRECT, lv->from, false);
	if((m = tui_store__find(c, st->me, ref)) != NULL){
		lv->conv = c;
		lv->msg = m;
		return raise_status(m, read ? TMSG_READ : TMSG_DELIVERED) ? TSL_CHANGED : TSL_IGNORED;
	}
	for(i=0; i<st->nconvs; i++){
		c = st->convs[i];
		if(c->kind != TCONV_ROOM || (m = tui_store__find(c, st->me, ref)) == NULL) continue;
		lv->conv = c;
		lv->msg = m;
		return count_receipt(m, lv->from, read) ? TSL_CHANGED : TSL_IGNORED;
	}
	return TSL_IGNORED;
}

static enum tui_store_live live_reaction(struct live *lv)
{
	const char *ref = jstr(lv->env, "ref"), *of = jstr(lv->env, "of"), *emoji = jstr(lv->env, "emoji");
	struct tconv *c;
	struct tmsg *m;

	if(!valid_id(ref) || !valid_name(of) || !valid_emoji(emoji)) return TSL_IGNORED;
	c = live_conv(lv, false);
	m = tui_store__find(c, of, ref);
	if(m == NULL || m->is_event || m->deleted) return TSL_IGNORED;
	lv->conv = c;
	lv->msg = m;
	return apply_reaction(m, lv->from, emoji, json_is_true(json_object_get(lv->env, "remove")))
		? TSL_CHANGED : TSL_IGNORED;
}

/* The conversation an archiver's envelope names: the topic's room, else
 * its "with" or "room" member (in my inbox). */
static struct tconv *service_conv(struct live *lv)
{
	struct tstore *st = lv->st;
	const char *with = jstr(lv->env, "with"), *room = jstr(lv->env, "room");

	if(lv->room) return tui_store__conv(st, TCONV_ROOM, lv->a, false);
	if(strcmp(lv->a, st->me)) return NULL;
	if(with != NULL) return tui_store__conv(st, TCONV_DIRECT, with, false);
	return tui_store__conv(st, TCONV_ROOM, room, false);
}

static enum tui_store_live live_change(struct live *lv, bool edit)
{
	const char *ref = jstr(lv->env, "ref"), *of = jstr(lv->env, "of"), *body = jstr(lv->env, "body");
	int64_t ts = jint(lv->env, "ts");
	struct tconv *c;
	struct tmsg *m;
	bool done;

	if(!valid_id(ref) || !valid_name(of) || (edit && body == NULL)) return TSL_IGNORED;
	c = service_conv(lv);
	if((m = tui_store__find(c, of, ref)) == NULL) return TSL_IGNORED;
	if(ts <= 0) ts = lv->now_ms;
	done = edit ? apply_edit(m, body, ts) : apply_delete(m, ts, jstr(lv->env, "by"));
	if(!done) return TSL_IGNORED;
	lv->conv = c;
	lv->msg = m;
	return TSL_CHANGED;
}

static enum tui_store_live live_read(struct live *lv)
{
	json_t *seq = json_object_get(lv->env, "seq"), *unread = json_object_get(lv->env, "unread");
	struct tconv *c;
	int64_t s, u;

	if(lv->room || !json_is_integer(seq) || !json_is_integer(unread)) return TSL_IGNORED;
	s = (int64_t)json_integer_value(seq);
	u = (int64_t)json_integer_value(unread);
	if(s < 0 || u < 0 || u > INT_MAX || (c = service_conv(lv)) == NULL) return TSL_IGNORED;
	/* The marker only moves forward: an older envelope is stale. */
	if(s < c->read_seq || (s == c->read_seq && u == c->unread)) return TSL_IGNORED;
	c->read_seq = s;
	c->unread = (int)u;
	lv->conv = c;
	return TSL_READ;
}

enum tui_store_live tui_store__live(struct tstore *st, const char *topic, json_t *env,
		int64_t now_ms, struct tconv **conv, struct tmsg **out)
{
	struct live lv;
	struct topic_parts tp;
	enum tui_store_live r = TSL_IGNORED;
	const char *type = jstr(env, "type");

	if(conv != NULL) *conv = NULL;
	if(out != NULL) *out = NULL;
	if(st == NULL || topic == NULL || type == NULL || !topic__parse(topic, &tp)) return TSL_IGNORED;
	if(tp.kind != TOPIC_INBOX && tp.kind != TOPIC_ROOM) return TSL_IGNORED;
	memset(&lv, 0, sizeof(lv));
	if(!level_name(&tp.a, lv.a) || !level_name(&tp.b, lv.from)) return TSL_IGNORED;
	if(strcmp(lv.from, st->me) && tui_store__is_blocked(st, lv.from)) return TSL_IGNORED;
	lv.st = st;
	lv.env = env;
	lv.now_ms = now_ms;
	lv.room = tp.kind == TOPIC_ROOM;

	if(!strcmp(lv.from, ARCHIVER)){
		if(!strcmp(type, "event")) r = live_event(&lv);
		else if(!strcmp(type, "edit")) r = live_change(&lv, true);
		else if(!strcmp(type, "delete")) r = live_change(&lv, false);
		else if(!strcmp(type, "read")) r = live_read(&lv);
	}else{
		if(!strcmp(type, "text")) r = live_text(&lv);
		else if(!strcmp(type, "receipt")) r = live_receipt(&lv);
		else if(!strcmp(type, "reaction")) r = live_reaction(&lv);
	}
	if(conv != NULL) *conv = lv.conv;
	if(out != NULL) *out = lv.msg;
	return r;
}

/* ---- archived messages ---- */

/* True if a text or event row has what it needs: an event its name, a
 * text its body (or, a tombstone, when it was deleted). */
static bool row_complete(json_t *row, bool event)
{
	const char *ev = jstr(row, "event");

	if(event) return ev != NULL && ev[0] != '\0' && strlen(ev) < sizeof(((struct tmsg *)0)->event);
	return jstr(row, "body") != NULL || jint(row, "deleted") > 0;
}

/* A complete text or event row merged into c by (from, id). */
static struct tmsg *merge_row(struct tstore *st, struct tconv *c, json_t *row, const char *from,
		const char *id, bool event)
{
	struct tmsg *m = tui_store__find(c, from, id);
	bool fresh = m == NULL;
	int64_t seq = jint(row, "seq"), server_ts = jint(row, "server_ts");
	const char *body = jstr(row, "body"), *ev = jstr(row, "event");

	if(fresh){
		if((m = msg_new(st, from, id)) == NULL) return NULL;
	}else if(m->is_event != event){
		return NULL;
	}
	if(event){
		const char *user = jstr(row, "user"), *by = jstr(row, "by");

		m->is_event = true;
		strcpy(m->event, ev);
		if(valid_name(user)) copy_checked(m->ev_user, user);
		if(valid_name(by)) copy_checked(m->ev_by, by);
	}else if(jint(row, "deleted") > 0){
		const char *by = jstr(row, "deleted_by");

		if(!m->deleted) apply_delete(m, jint(row, "deleted"), by);
	}else if(!m->deleted){
		/* (A message held deleted stays so: the row is older than the delete.) */
		int64_t edited = jint(row, "edited");
		bool truncated = json_is_true(json_object_get(row, "truncated"));

		/* A newer edit held (it came live after the page was made) stays;
		 * so does a whole body held where the row brings only its start. */
		if(body != NULL && (fresh || edited > m->edited
				|| (edited == m->edited && (!truncated || m->truncated)))){
			if(!set_str(&m->body, body)){
				if(fresh) msg_free(m);
				return NULL;
			}
			m->truncated = truncated;
		}
		if(edited > m->edited) m->edited = edited;
		take_reply(m, row);
		take_reactions(m, json_object_get(row, "reactions"));
	}
	if(!strcmp(from, st->me)) raise_status(m, status_of(jstr(row, "status")));
	if(server_ts > 0) m->time_ms = server_ts;
	if(seq > 0 && m->seq == 0){
		m->seq = seq;
		if(!fresh) msg_reorder(c, m);
	}
	if(fresh && !msg_insert(c, m)){
		msg_free(m);
		return NULL;
	}
	if(m->seq > c->last_seq){
		c->last_seq = m->seq;
		if(m->time_ms > c->last_time) c->last_time = m->time_ms;
	}
	return m;
}

/* An edit, delete or reaction row applied to (of, ref) of c. Returns the
 * message if it changed. */
static struct tmsg *change_row(struct tstore *st, struct tconv *c, json_t *row, const char *from,
		const char *type)
{
	const char *ref = jstr(row, "ref"), *of = jstr(row, "of");
	int64_t ts = jint(row, "ts");
	struct tmsg *m;
	bool done = false;

	if(!valid_id(ref) || !valid_name(of) || (m = tui_store__find(c, of, ref)) == NULL) return NULL;
	if(ts <= 0) ts = jint(row, "server_ts");
	if(!strcmp(type, "edit")){
		const char *body = jstr(row, "body");

		done = body != NULL && apply_edit(m, body, ts);
	}else if(!strcmp(type, "delete")){
		const char *by = jstr(row, "by");

		done = apply_delete(m, ts, by != NULL ? by : from);
	}else{
		const char *emoji = jstr(row, "emoji");

		if(m->is_event || m->deleted || !valid_emoji(emoji)) return NULL;
		if(strcmp(from, st->me) && tui_store__is_blocked(st, from)) return NULL;
		done = apply_reaction(m, from, emoji, json_is_true(json_object_get(row, "remove")));
	}
	return done ? m : NULL;
}

struct tmsg *tui_store__archived(struct tstore *st, json_t *m)
{
	const char *type = jstr(m, "type"), *id = jstr(m, "id"), *from = jstr(m, "from");
	char name[NAME_MAX_LEN + 1];
	enum tconv_kind kind;
	struct tconv *c;
	int64_t seq = jint(m, "seq");

	/* Every archived row has its seq: one without is not one. */
	if(st == NULL || seq <= 0) return NULL;
	/* The sync position passes every row, those skipped below too. */
	if(seq > st->max_seq) st->max_seq = seq;
	if(type == NULL || !valid_id(id) || !valid_name(from) || !row_conv(st, m, from, &kind, name)) return NULL;
	if(!strcmp(type, "text") || !strcmp(type, "event")){
		bool event = !strcmp(type, "event");

		if(strcmp(from, st->me) && tui_store__is_blocked(st, from)) return NULL;
		if((event && kind != TCONV_ROOM) || !row_complete(m, event)) return NULL;
		if((c = tui_store__conv(st, kind, name, true)) == NULL) return NULL;
		return merge_row(st, c, m, from, id, event);
	}
	if(strcmp(type, "edit") && strcmp(type, "delete") && strcmp(type, "reaction")) return NULL;
	c = tui_store__conv(st, kind, name, false);
	return c != NULL ? change_row(st, c, m, from, type) : NULL;
}

struct tconv *tui_store__conv_entry(struct tstore *st, json_t *entry)
{
	const char *with = jstr(entry, "with"), *room = jstr(entry, "room"), *title = jstr(entry, "title");
	json_t *last = json_object_get(entry, "last");
	int64_t last_seq = jint(entry, "last_seq"), read_seq = jint(entry, "read_seq");
	int64_t unread = jint(entry, "unread"), t;
	struct tconv *c;

	if(st == NULL) return NULL;
	if(room != NULL) c = tui_store__conv(st, TCONV_ROOM, room, true);
	else c = tui_store__conv(st, TCONV_DIRECT, with, true);
	if(c == NULL) return NULL;
	if(last_seq > c->last_seq) c->last_seq = last_seq;
	/* A read envelope may have moved the marker past what this (older)
	 * answer says: keep the newer one. */
	if(read_seq >= c->read_seq && unread >= 0 && unread <= INT_MAX){
		c->read_seq = read_seq;
		c->unread = (int)unread;
	}
	if(c->kind == TCONV_ROOM && title != NULL) set_str(&c->title, title);
	if(json_is_object(last)){
		t = jint(last, "server_ts");
		if(t > c->last_time) c->last_time = t;
		tui_store__archived(st, last);
	}
	tui_store__sort(st);
	return c;
}

/* ---- my messages ---- */

struct tmsg *tui_store__outgoing(struct tstore *st, struct tconv *c, const char *id,
		const char *body, const char *reply_to, const char *reply_from, int64_t now_ms)
{
	struct tmsg *m;

	if(st == NULL || c == NULL || !valid_id(id) || body == NULL) return NULL;
	if((m = tui_store__find(c, st->me, id)) != NULL) return m;
	if((m = msg_new(st, st->me, id)) == NULL || !set_str(&m->body, body)){
		msg_free(m);
		return NULL;
	}
	if(valid_id(reply_to) && valid_name(reply_from)){
		copy_checked(m->reply_to, reply_to);
		copy_checked(m->reply_from, reply_from);
	}
	m->status = TMSG_PENDING;
	m->time_ms = now_ms;
	if(!msg_insert(c, m)){
		msg_free(m);
		return NULL;
	}
	to_top(st, c, now_ms);
	c->unread = 0;
	return m;
}

void tui_store__acked(struct tstore *st, struct tconv *c, const char *id, const char *reason)
{
	struct tmsg *m;

	if(st == NULL || (m = tui_store__find(c, st->me, id)) == NULL) return;
	if(reason == NULL){
		if(m->status == TMSG_PENDING) m->status = TMSG_SENT;
		return;
	}
	/* Refused: unless a receipt says it arrived all the same. */
	if(m->status <= TMSG_SENT && set_str(&m->fail_reason, reason)) m->status = TMSG_FAILED;
}

/* ---- presence, typing, nicks, blocks ---- */

static int presence_index(const struct tstore *st, const char *user)
{
	int i;

	for(i=0; i<st->npresence; i++){
		if(!strcmp(st->presence[i].user, user)) return i;
	}
	return -1;
}

void tui_store__presence(struct tstore *st, const char *user, const void *payload, size_t len)
{
	struct tpresence *p;
	const char *status;
	json_t *o;
	int i;

	if(st == NULL || !valid_name(user)) return;
	i = presence_index(st, user);
	if(payload == NULL || len == 0){
		/* No presence (a deleted account, or not connected since a restart). */
		if(i >= 0){
			memmove(&st->presence[i], &st->presence[i + 1],
					(size_t)(st->npresence - i - 1) * sizeof(st->presence[0]));
			st->npresence--;
		}
		return;
	}
	o = json_loadb(payload, len, 0, NULL);
	status = jstr(o, "status");
	if(status != NULL && i < 0){
		p = grow(st->presence, &st->cappresence, st->npresence, sizeof(*p));
		if(p != NULL){
			st->presence = p;
			i = st->npresence++;
			memset(&p[i], 0, sizeof(p[i]));
			copy_checked(p[i].user, user);
		}
	}
	if(status != NULL && i >= 0){
		st->presence[i].online = !strcmp(status, "online");
		st->presence[i].since = jint(o, "since");
	}
	json_decref(o);
}

const struct tpresence *tui_store__presence_of(const struct tstore *st, const char *user)
{
	int i;

	if(st == NULL || user == NULL) return NULL;
	i = presence_index(st, user);
	return i >= 0 ? &st->presence[i] : NULL;
}

static void typing_remove(struct tconv *c, int i)
{
	memmove(&c->typing[i], &c->typing[i + 1], (size_t)(c->ntyping - i - 1) * sizeof(c->typing[0]));
	memmove(&c->typing_at[i], &c->typing_at[i + 1], (size_t)(c->ntyping - i - 1) * sizeof(c->typing_at[0]));
	c->ntyping--;
}

void tui_store__typing(struct tconv *c, const char *who, bool typing, int64_t mono_ms)
{
	int i, oldest;

	if(c == NULL || !valid_name(who)) return;
	for(i=0; i<c->ntyping && strcmp(c->typing[i], who); i++);
	if(!typing){
		if(i < c->ntyping) typing_remove(c, i);
		return;
	}
	if(i < c->ntyping){
		c->typing_at[i] = mono_ms;
		return;
	}
	if(c->ntyping == TYPING_SLOTS){
		/* Full: the one quiet the longest makes room. */
		for(oldest=0, i=1; i<c->ntyping; i++){
			if(c->typing_at[i] < c->typing_at[oldest]) oldest = i;
		}
		typing_remove(c, oldest);
	}
	copy_checked(c->typing[c->ntyping], who);
	c->typing_at[c->ntyping++] = mono_ms;
}

bool tui_store__typing_expire(struct tstore *st, int64_t mono_ms)
{
	bool changed = false;
	int i, j;

	if(st == NULL) return false;
	for(i=0; i<st->nconvs; i++){
		struct tconv *c = st->convs[i];

		for(j=c->ntyping - 1; j>=0; j--){
			if(mono_ms - c->typing_at[j] >= TYPING_MS){
				typing_remove(c, j);
				changed = true;
			}
		}
	}
	return changed;
}

void tui_store__set_nick(struct tstore *st, const char *user, const char *nick)
{
	char **v;
	int i;

	if(st == NULL || !valid_name(user)) return;
	i = strv_find(st->nick_users, st->nnicks, user);
	/* A nick that is not one (control characters, ...) is shown as
	 * nothing: the name stands in for it. */
	if(nick == NULL || !names__nick_valid(nick, strlen(nick), NULL, 0)){
		if(i >= 0){
			free(st->nick_users[i]);
			free(st->nicks[i]);
			st->nnicks--;
			st->nick_users[i] = st->nick_users[st->nnicks];
			st->nicks[i] = st->nicks[st->nnicks];
		}
		return;
	}
	if(i >= 0){
		set_str(&st->nicks[i], nick);
		return;
	}
	/* Two parallel arrays with one capacity: grow both before adding. */
	if(st->nnicks == st->capnicks){
		int cap = st->capnicks;

		v = grow(st->nick_users, &cap, st->nnicks, sizeof(*v));
		if(v == NULL) return;
		st->nick_users = v;
		cap = st->capnicks;
		v = grow(st->nicks, &cap, st->nnicks, sizeof(*v));
		if(v == NULL) return;
		st->nicks = v;
		st->capnicks = cap;
	}
	st->nick_users[st->nnicks] = strdup(user);
	st->nicks[st->nnicks] = strdup(nick);
	if(st->nick_users[st->nnicks] == NULL || st->nicks[st->nnicks] == NULL){
		free(st->nick_users[st->nnicks]);
		free(st->nicks[st->nnicks]);
		return;
	}
	st->nnicks++;
}

const char *tui_store__nick(const struct tstore *st, const char *user)
{
	int i;

	if(user == NULL) return "";
	if(st == NULL) return user;
	i = strv_find(st->nick_users, st->nnicks, user);
	return i >= 0 ? st->nicks[i] : user;
}

void tui_store__set_blocked(struct tstore *st, json_t *users)
{
	json_t *u;
	size_t i;

	if(st == NULL) return;
	strv_free(st->blocked, st->nblocked);
	st->blocked = NULL;
	st->nblocked = 0;
	json_array_foreach(users, i, u){
		const char *name = json_string_value(u);

		if(valid_name(name) && strv_find(st->blocked, st->nblocked, name) < 0)
			strv_add(&st->blocked, &st->nblocked, name);
	}
}

bool tui_store__is_blocked(const struct tstore *st, const char *user)
{
	return st != NULL && user != NULL && strv_find(st->blocked, st->nblocked, user) >= 0;
}

int tui_store__unread_total(const struct tstore *st)
{
	int i, n = 0;

	if(st == NULL) return 0;
	for(i=0; i<st->nconvs; i++){
		if(st->convs[i]->unread > 0 && n < INT_MAX - st->convs[i]->unread) n += st->convs[i]->unread;
	}
	return n;
}
