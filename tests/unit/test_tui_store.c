/* test_tui_store.c - the terminal app's model (client/tui_store.c): live
 * envelopes, archived rows and list entries merged by (from, id), in
 * order; receipts, reads, edits, deletes and reactions; presence, typing,
 * nicks and blocks; bad input that must change nothing. The store is
 * "alice"'s throughout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tui_store.h"

static int setup(void **state)
{
	struct tstore *st = malloc(sizeof(*st));

	if(st == NULL) return -1;
	tui_store__init(st, "alice");
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	tui_store__free(*state);
	free(*state);
	return 0;
}

/* Parse json, which must be valid (a test's own text). New reference. */
static json_t *parse(const char *json)
{
	json_error_t err;
	json_t *j = json_loads(json, 0, &err);

	if(j == NULL){
		print_error("bad test JSON: %s: %s\n", err.text, json);
		fail();
	}
	return j;
}

/* A live envelope on topic at now_ms. */
static enum tui_store_live live_out(struct tstore *st, const char *topic, const char *json,
		int64_t now_ms, struct tconv **c, struct tmsg **m)
{
	json_t *env = parse(json);
	enum tui_store_live r = tui_store__live(st, topic, env, now_ms, c, m);

	json_decref(env);
	return r;
}

static enum tui_store_live live(struct tstore *st, const char *topic, const char *json, int64_t now_ms)
{
	return live_out(st, topic, json, now_ms, NULL, NULL);
}

static struct tmsg *archived(struct tstore *st, const char *json)
{
	json_t *row = parse(json);
	struct tmsg *m = tui_store__archived(st, row);

	json_decref(row);
	return m;
}

static struct tconv *entry(struct tstore *st, const char *json)
{
	json_t *e = parse(json);
	struct tconv *c = tui_store__conv_entry(st, e);

	json_decref(e);
	return c;
}

static struct tconv *direct(struct tstore *st, const char *name)
{
	return tui_store__conv(st, TCONV_DIRECT, name, false);
}

static struct tconv *room(struct tstore *st, const char *name)
{
	return tui_store__conv(st, TCONV_ROOM, name, false);
}

/* The ids of c's messages in order, joined by spaces. */
static const char *ids(struct tconv *c)
{
	static char buf[1024];
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for(i=0; c != NULL && i<c->nmsgs; i++){
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", c->msgs[i]->id);
		if(n >= sizeof(buf)) break;
	}
	return buf;
}

/* The names of the list in order, rooms with '#'. */
static const char *list(struct tstore *st)
{
	static char buf[1024];
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for(i=0; i<st->nconvs; i++){
		struct tconv *c = st->convs[i];

		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%s", i ? " " : "",
				c->kind == TCONV_ROOM ? "#" : "", c->name);
		if(n >= sizeof(buf)) break;
	}
	return buf;
}

/* The users of emoji on m, joined by spaces; NULL if m has no such reaction. */
static const char *reacted(struct tmsg *m, const char *emoji)
{
	static char buf[512];
	size_t n = 0;
	int i, j;

	for(i=0; i<m->nreactions; i++){
		if(strcmp(m->reactions[i].emoji, emoji)) continue;
		buf[0] = '\0';
		for(j=0; j<m->reactions[i].nusers; j++){
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", j ? " " : "", m->reactions[i].users[j]);
			if(n >= sizeof(buf)) break;
		}
		return buf;
	}
	return NULL;
}

#define TEXT(id, body) "{\"id\":\"" id "\",\"type\":\"text\",\"body\":\"" body "\",\"ts\":1}"

/* ---- live texts ---- */

static void test_live_text_direct(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	assert_int_equal(live_out(st, "chat/inbox/alice/bob",
			"{\"id\":\"m1\",\"type\":\"text\",\"body\":\"hi alice\",\"ts\":99,"
			"\"reply_to\":\"m0\",\"reply_from\":\"alice\"}", 1000, &c, &m), TSL_NEW);
	assert_non_null(c);
	assert_ptr_equal(c, direct(st, "bob"));
	assert_int_equal(c->kind, TCONV_DIRECT);
	assert_string_equal(c->name, "bob");
	assert_int_equal(c->unread, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_ptr_equal(m, c->msgs[0]);
	assert_string_equal(m->from, "bob");
	assert_string_equal(m->id, "m1");
	assert_string_equal(m->body, "hi alice");
	assert_string_equal(m->reply_to, "m0");
	assert_string_equal(m->reply_from, "alice");
	/* The arrival time on the server's clock, not the sender's ts. */
	assert_int_equal(m->time_ms, 1000);
	assert_int_equal(m->seq, 0);
	assert_int_equal(m->status, TMSG_SENT);
	assert_false(m->is_event);
	assert_ptr_equal(tui_store__find(c, "bob", "m1"), m);
	assert_null(tui_store__find(c, "alice", "m1"));
	assert_int_equal(tui_store__unread_total(st), 1);
}

static void test_live_text_room(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	assert_int_equal(live_out(st, "chat/room/lobby/bob", TEXT("m2", "hello lobby"), 1000, &c, &m), TSL_NEW);
	assert_ptr_equal(c, room(st, "lobby"));
	assert_int_equal(c->kind, TCONV_ROOM);
	assert_null(direct(st, "bob"));
	assert_string_equal(m->from, "bob");
	assert_int_equal(c->unread, 1);
	/* My own room message back from the broker: no badge, and clears it. */
	assert_int_equal(live(st, "chat/room/lobby/alice", TEXT("a1", "hi all"), 1100), TSL_NEW);
	assert_int_equal(c->unread, 0);
	assert_string_equal(ids(c), "m2 a1");
	assert_int_equal(c->msgs[1]->status, TMSG_SENT);
}

static void test_live_sent_copy(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	assert_int_equal(live(st, "chat/inbox/alice/bob", TEXT("b1", "hi"), 1000), TSL_NEW);
	assert_int_equal(direct(st, "bob")->unread, 1);
	/* What alice sent bob from another device: bob's conversation. */
	assert_int_equal(live_out(st, "chat/inbox/bob/alice", TEXT("a1", "hi bob"), 1100, &c, &m), TSL_NEW);
	assert_ptr_equal(c, direct(st, "bob"));
	assert_string_equal(m->from, "alice");
	assert_int_equal(m->status, TMSG_SENT);
	assert_int_equal(c->unread, 0);
	assert_string_equal(ids(c), "b1 a1");
	assert_null(direct(st, "alice"));
	/* Someone else's inbox to someone else: not mine. */
	assert_int_equal(live(st, "chat/inbox/bob/carol", TEXT("c1", "x"), 1200), TSL_IGNORED);
	assert_null(direct(st, "carol"));
}

static void test_live_note_twice(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;

	/* A note to myself matches both inbox filters: it comes twice. */
	assert_int_equal(live_out(st, "chat/inbox/alice/alice", TEXT("n1", "buy milk"), 1000, &c, NULL), TSL_NEW);
	assert_int_equal(live(st, "chat/inbox/alice/alice", TEXT("n1", "buy milk"), 1001), TSL_IGNORED);
	assert_ptr_equal(c, direct(st, "alice"));
	assert_int_equal(c->nmsgs, 1);
	assert_int_equal(c->unread, 0);
	assert_int_equal(st->nconvs, 1);
}

static void test_live_redelivery(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	assert_int_equal(live(st, "chat/inbox/alice/bob", TEXT("m1", "once"), 1000), TSL_NEW);
	/* QoS 1 again, same id (even with another body): kept once. */
	assert_int_equal(live_out(st, "chat/inbox/alice/bob", TEXT("m1", "twice"), 1500, &c, &m), TSL_IGNORED);
	assert_int_equal(c->nmsgs, 1);
	assert_string_equal(m->body, "once");
	assert_int_equal(m->time_ms, 1000);
	assert_int_equal(c->unread, 1);
	/* The same id from someone else is another message. */
	assert_int_equal(live(st, "chat/room/lobby/bob", TEXT("m1", "in a room"), 1600), TSL_NEW);
	assert_int_equal(live(st, "chat/room/lobby/carol", TEXT("m1", "mine too"), 1700), TSL_NEW);
	assert_int_equal(room(st, "lobby")->nmsgs, 2);
}

static void test_unread(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;

	live(st, "chat/inbox/alice/bob", TEXT("b1", "1"), 1000);
	live(st, "chat/inbox/alice/bob", TEXT("b2", "2"), 1001);
	live(st, "chat/inbox/alice/bob", TEXT("b3", "3"), 1002);
	live(st, "chat/room/lobby/carol", TEXT("c1", "x"), 1003);
	c = direct(st, "bob");
	assert_int_equal(c->unread, 3);
	assert_int_equal(tui_store__unread_total(st), 4);
	/* Writing reads the conversation: a sent copy clears the badge. */
	live(st, "chat/inbox/bob/alice", TEXT("a1", "yes"), 1004);
	assert_int_equal(c->unread, 0);
	assert_int_equal(tui_store__unread_total(st), 1);
	live(st, "chat/inbox/alice/bob", TEXT("b4", "4"), 1005);
	assert_int_equal(c->unread, 1);
	/* And so does sending from here. */
	assert_non_null(tui_store__outgoing(st, c, "a2", "ok", NULL, NULL, 1006));
	assert_int_equal(c->unread, 0);
	/* Events bring no badge. */
	live(st, "chat/room/lobby/archiver",
			"{\"id\":\"ev-1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"dave\",\"by\":\"carol\"}", 1007);
	assert_int_equal(room(st, "lobby")->unread, 1);
}

static void test_list_order(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;

	live(st, "chat/inbox/alice/bob", TEXT("b1", "1"), 1000);
	live(st, "chat/inbox/alice/carol", TEXT("c1", "1"), 2000);
	live(st, "chat/room/lobby/dave", TEXT("d1", "1"), 3000);
	assert_string_equal(list(st), "#lobby carol bob");
	live(st, "chat/inbox/alice/bob", TEXT("b2", "2"), 4000);
	assert_string_equal(list(st), "bob #lobby carol");
	/* A membership event moves the room up; a duplicate moves nothing. */
	live(st, "chat/room/lobby/archiver", "{\"id\":\"ev-1\",\"type\":\"event\",\"event\":\"left\",\"user\":\"dave\"}", 5000);
	assert_string_equal(list(st), "#lobby bob carol");
	live(st, "chat/inbox/alice/carol", TEXT("c1", "1"), 6000);
	assert_string_equal(list(st), "#lobby bob carol");
	/* Sending moves to the top. */
	c = direct(st, "carol");
	tui_store__outgoing(st, c, "a1", "hey", NULL, NULL, 7000);
	assert_string_equal(list(st), "carol #lobby bob");
	/* Even when the clock says earlier, new is on top, and sorting keeps it. */
	live(st, "chat/inbox/alice/bob", TEXT("b3", "3"), 10);
	assert_string_equal(list(st), "bob carol #lobby");
	tui_store__sort(st);
	assert_string_equal(list(st), "bob carol #lobby");
	/* A conversation made empty goes last; dropped ones go. */
	assert_non_null(tui_store__conv(st, TCONV_DIRECT, "erin", true));
	assert_string_equal(list(st), "bob carol #lobby erin");
	tui_store__drop_conv(st, room(st, "lobby"));
	assert_string_equal(list(st), "bob carol erin");
	assert_null(room(st, "lobby"));
	/* A newer archived text (sync) raises last_time; the order follows
	 * when the app sorts. */
	archived(st, "{\"seq\":9,\"id\":\"e1\",\"from\":\"erin\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"x\",\"server_ts\":99999,\"status\":\"sent\"}");
	assert_string_equal(list(st), "bob carol erin");
	assert_int_equal(direct(st, "erin")->last_time, 99999);
	assert_int_equal(direct(st, "erin")->last_seq, 9);
	assert_int_equal(direct(st, "erin")->unread, 0);
	tui_store__sort(st);
	assert_string_equal(list(st), "erin bob carol");
}

/* ---- live and archived ---- */

static void test_live_then_archived(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m1, *m2, *a1, *m;

	live(st, "chat/inbox/alice/bob", TEXT("m1", "one"), 5000);
	live(st, "chat/inbox/alice/bob", TEXT("m2", "two"), 5001);
	c = direct(st, "bob");
	a1 = tui_store__outgoing(st, c, "a1", "three", NULL, NULL, 5002);
	tui_store__acked(st, c, "a1", NULL);
	m1 = c->msgs[0];
	m2 = c->msgs[1];
	assert_string_equal(ids(c), "m1 m2 a1");
	/* m2 comes archived first: it takes seq and time, and goes before
	 * those without a seq. */
	m = archived(st, "{\"seq\":21,\"id\":\"m2\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"two\",\"ts\":1,\"server_ts\":4900,\"status\":\"read\"}");
	assert_ptr_equal(m, m2);
	assert_int_equal(m2->seq, 21);
	assert_int_equal(m2->time_ms, 4900);
	/* Someone else's message has no status of mine. */
	assert_int_equal(m2->status, TMSG_SENT);
	assert_string_equal(ids(c), "m2 m1 a1");
	/* Then my a1 and m1: all in seq order, each kept once. */
	m = archived(st, "{\"seq\":22,\"id\":\"a1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\","
			"\"body\":\"three\",\"server_ts\":4950,\"status\":\"delivered\"}");
	assert_ptr_equal(m, a1);
	assert_int_equal(a1->status, TMSG_DELIVERED);
	assert_int_equal(a1->time_ms, 4950);
	assert_string_equal(ids(c), "m2 a1 m1");
	archived(st, "{\"seq\":20,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"one\",\"server_ts\":4800,\"status\":\"sent\"}");
	assert_string_equal(ids(c), "m1 m2 a1");
	assert_int_equal(m1->seq, 20);
	assert_int_equal(c->nmsgs, 3);
	assert_int_equal(c->last_seq, 22);
	/* Archived rows leave the badge alone. */
	assert_int_equal(c->unread, 0);
	/* A message that is only live stays after. */
	live(st, "chat/inbox/alice/bob", TEXT("m3", "four"), 6000);
	archived(st, "{\"seq\":19,\"id\":\"m0\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"zero\",\"server_ts\":4700,\"status\":\"sent\"}");
	assert_string_equal(ids(c), "m0 m1 m2 a1 m3");
	/* A pending message the archive has: it got through. */
	m = tui_store__outgoing(st, c, "a2", "five", NULL, NULL, 7000);
	assert_int_equal(m->status, TMSG_PENDING);
	archived(st, "{\"seq\":30,\"id\":\"a2\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\","
			"\"body\":\"five\",\"server_ts\":7001,\"status\":\"sent\"}");
	assert_int_equal(m->status, TMSG_SENT);
	assert_string_equal(ids(c), "m0 m1 m2 a1 a2 m3");
}

static void test_history_pages(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	char row[256];
	static const int pages[][3] = { {50, 49, 48}, {12, 11, 10}, {30, 29, 13} };
	int p, i;

	live(st, "chat/room/hikers/bob", TEXT("live", "now"), 9000);
	for(p=0; p<3; p++){
		for(i=0; i<3; i++){
			snprintf(row, sizeof(row), "{\"seq\":%d,\"id\":\"h%d\",\"from\":\"%s\",\"room\":\"hikers\","
					"\"type\":\"text\",\"body\":\"x\",\"server_ts\":%d,\"status\":\"sent\"}",
					pages[p][i], pages[p][i], pages[p][i] % 2 ? "bob" : "alice", 1000 + pages[p][i]);
			assert_non_null(archived(st, row));
		}
	}
	/* The same page again changes nothing. */
	archived(st, "{\"seq\":30,\"id\":\"h30\",\"from\":\"alice\",\"room\":\"hikers\",\"type\":\"text\","
			"\"body\":\"x\",\"server_ts\":1030,\"status\":\"sent\"}");
	/* An event among them. */
	archived(st, "{\"seq\":20,\"id\":\"ev-20\",\"from\":\"archiver\",\"room\":\"hikers\",\"type\":\"event\","
			"\"event\":\"added\",\"user\":\"bob\",\"by\":\"alice\",\"server_ts\":1020,\"status\":\"sent\"}");
	c = room(st, "hikers");
	assert_string_equal(ids(c), "h10 h11 h12 h13 ev-20 h29 h30 h48 h49 h50 live");
	assert_true(c->msgs[4]->is_event);
	assert_string_equal(c->msgs[4]->event, "added");
	assert_string_equal(c->msgs[4]->ev_user, "bob");
	assert_string_equal(c->msgs[4]->ev_by, "alice");
	assert_string_equal(c->msgs[4]->body, "");
	assert_int_equal(c->last_seq, 50);
}

/* ---- receipts ---- */

static void test_receipts_direct(void **state)
{
	struct tstore *st = *state;
	struct tconv *c = tui_store__conv(st, TCONV_DIRECT, "bob", true);
	struct tmsg *m, *out;

	m = tui_store__outgoing(st, c, "a1", "hi", NULL, NULL, 1000);
	tui_store__acked(st, c, "a1", NULL);
	assert_int_equal(m->status, TMSG_SENT);
	assert_int_equal(live_out(st, "chat/inbox/alice/bob",
			"{\"id\":\"r1\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1100, NULL, &out),
			TSL_CHANGED);
	assert_ptr_equal(out, m);
	assert_int_equal(m->status, TMSG_DELIVERED);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r2\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"read\"}", 1200), TSL_CHANGED);
	assert_int_equal(m->status, TMSG_READ);
	/* Never back: a late delivered, nor the archive's older status. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r3\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1300), TSL_IGNORED);
	assert_int_equal(m->status, TMSG_READ);
	archived(st, "{\"seq\":5,\"id\":\"a1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\","
			"\"body\":\"hi\",\"server_ts\":1001,\"status\":\"delivered\"}");
	assert_int_equal(m->status, TMSG_READ);
	assert_int_equal(m->seq, 5);
	/* A receipt that did not come from the person it was sent to, about
	 * someone else's message, of an unknown status, or my own copy of
	 * a receipt I sent: nothing. */
	assert_int_equal(live(st, "chat/inbox/alice/carol",
			"{\"id\":\"r4\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"read\"}", 1400), TSL_IGNORED);
	live(st, "chat/inbox/alice/bob", TEXT("b1", "yo"), 1500);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r5\",\"type\":\"receipt\",\"ref\":\"b1\",\"status\":\"read\"}", 1600), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/bob/alice",
			"{\"id\":\"r6\",\"type\":\"receipt\",\"ref\":\"b1\",\"status\":\"read\"}", 1600), TSL_IGNORED);
	assert_int_equal(c->msgs[1]->status, TMSG_SENT);
	m = tui_store__outgoing(st, c, "a2", "again", NULL, NULL, 1700);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r7\",\"type\":\"receipt\",\"ref\":\"a2\",\"status\":\"seen\"}", 1800), TSL_IGNORED);
	assert_int_equal(m->status, TMSG_PENDING);
	/* A receipt before the PUBACK: it got there. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r8\",\"type\":\"receipt\",\"ref\":\"a2\",\"status\":\"delivered\"}", 1900), TSL_CHANGED);
	assert_int_equal(m->status, TMSG_DELIVERED);
	tui_store__acked(st, c, "a2", NULL);
	assert_int_equal(m->status, TMSG_DELIVERED);
}

static void test_archived_status_lower(void **state)
{
	struct tstore *st = *state;
	struct tmsg *m;

	/* Held with "read" from one page, a later (older) answer says "sent". */
	m = archived(st, "{\"seq\":7,\"id\":\"a1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\","
			"\"body\":\"hi\",\"server_ts\":1000,\"status\":\"read\"}");
	assert_int_equal(m->status, TMSG_READ);
	archived(st, "{\"seq\":7,\"id\":\"a1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\","
			"\"body\":\"hi\",\"server_ts\":1000,\"status\":\"sent\"}");
	assert_int_equal(m->status, TMSG_READ);
	assert_int_equal(direct(st, "bob")->nmsgs, 1);
}

static void test_receipts_room(void **state)
{
	struct tstore *st = *state;
	struct tconv *c = tui_store__conv(st, TCONV_ROOM, "lobby", true);
	struct tconv *rc;
	struct tmsg *m, *out;

	m = tui_store__outgoing(st, c, "a1", "hi all", NULL, NULL, 1000);
	tui_store__acked(st, c, "a1", NULL);
	/* Members' receipts come to my inbox from each of them. */
	assert_int_equal(live_out(st, "chat/inbox/alice/bob",
			"{\"id\":\"r1\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1100, &rc, &out),
			TSL_CHANGED);
	assert_ptr_equal(rc, c);
	assert_ptr_equal(out, m);
	assert_int_equal(m->room_delivered, 1);
	assert_int_equal(m->room_read, 0);
	/* Twice from bob (another device): counted once. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r2\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1200), TSL_IGNORED);
	assert_int_equal(m->room_delivered, 1);
	/* carol read it straight away: read implies delivered. */
	assert_int_equal(live(st, "chat/inbox/alice/carol",
			"{\"id\":\"r3\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"read\"}", 1300), TSL_CHANGED);
	assert_int_equal(m->room_delivered, 2);
	assert_int_equal(m->room_read, 1);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r4\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"read\"}", 1400), TSL_CHANGED);
	assert_int_equal(m->room_delivered, 2);
	assert_int_equal(m->room_read, 2);
	assert_int_equal(live(st, "chat/inbox/alice/carol",
			"{\"id\":\"r5\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"read\"}", 1500), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/carol",
			"{\"id\":\"r6\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1500), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/dave",
			"{\"id\":\"r7\",\"type\":\"receipt\",\"ref\":\"a1\",\"status\":\"delivered\"}", 1600), TSL_CHANGED);
	assert_int_equal(m->room_delivered, 3);
	assert_int_equal(m->room_read, 2);
	assert_int_equal(m->nreceipt_users, 3);
	/* A room message keeps "sent", and the archive's "sent" keeps the counts. */
	assert_int_equal(m->status, TMSG_SENT);
	archived(st, "{\"seq\":9,\"id\":\"a1\",\"from\":\"alice\",\"room\":\"lobby\",\"type\":\"text\","
			"\"body\":\"hi all\",\"server_ts\":1001,\"status\":\"sent\"}");
	assert_int_equal(m->room_delivered, 3);
	assert_int_equal(m->room_read, 2);
	/* No direct conversation was made for the members. */
	assert_null(direct(st, "bob"));
	assert_null(direct(st, "carol"));
}

/* ---- reactions, edits, deletes ---- */

static void test_reactions(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	live(st, "chat/inbox/alice/bob", TEXT("b1", "lunch?"), 1000);
	c = direct(st, "bob");
	m = c->msgs[0];
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\"}",
			1100), TSL_CHANGED);
	assert_string_equal(reacted(m, "\xf0\x9f\x91\x8d"), "bob");
	/* Twice: once. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x2\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\"}",
			1200), TSL_IGNORED);
	/* Mine, as a sent copy: the author is the topic's sender. */
	assert_int_equal(live(st, "chat/inbox/bob/alice",
			"{\"id\":\"x3\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\"}",
			1300), TSL_CHANGED);
	assert_int_equal(live(st, "chat/inbox/bob/alice",
			"{\"id\":\"x4\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x8e\x89\"}",
			1400), TSL_CHANGED);
	assert_int_equal(m->nreactions, 2);
	assert_string_equal(m->reactions[0].emoji, "\xf0\x9f\x91\x8d");
	assert_string_equal(reacted(m, "\xf0\x9f\x91\x8d"), "bob alice");
	assert_string_equal(reacted(m, "\xf0\x9f\x8e\x89"), "alice");
	/* Taken back. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x5\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\",\"remove\":true}",
			1500), TSL_CHANGED);
	assert_string_equal(reacted(m, "\xf0\x9f\x91\x8d"), "alice");
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x6\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x91\x8d\",\"remove\":true}",
			1600), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/bob/alice",
			"{\"id\":\"x7\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"\xf0\x9f\x8e\x89\",\"remove\":true}",
			1700), TSL_CHANGED);
	assert_null(reacted(m, "\xf0\x9f\x8e\x89"));
	assert_int_equal(m->nreactions, 1);
	/* To a message not held, or in another conversation: dropped. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x8\",\"type\":\"reaction\",\"ref\":\"zz\",\"of\":\"bob\",\"emoji\":\"x\"}", 1800), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/carol",
			"{\"id\":\"x9\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"x\"}", 1800), TSL_IGNORED);
	assert_null(direct(st, "carol"));
	/* A bad emoji: too long, or with a space. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"xa\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\","
			"\"emoji\":\"123456789012345678901234567890123\"}", 1900), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"xb\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"a b\"}", 1900), TSL_IGNORED);
	/* In a room. */
	live(st, "chat/room/lobby/bob", TEXT("r1", "hello"), 2000);
	assert_int_equal(live(st, "chat/room/lobby/carol",
			"{\"id\":\"xc\",\"type\":\"reaction\",\"ref\":\"r1\",\"of\":\"bob\",\"emoji\":\"!\"}", 2100), TSL_CHANGED);
	assert_string_equal(reacted(room(st, "lobby")->msgs[0], "!"), "carol");
	assert_int_equal(m->nreactions, 1);
}

static void test_edit_delete_live(void **state)
{
	struct tstore *st = *state;
	struct tconv *c, *oc;
	struct tmsg *m, *r, *out;

	live(st, "chat/inbox/alice/bob",
			"{\"id\":\"b1\",\"type\":\"text\",\"body\":\"see you\",\"reply_to\":\"a0\",\"reply_from\":\"alice\"}", 1000);
	c = direct(st, "bob");
	m = c->msgs[0];
	live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"!\"}", 1010);
	/* The archiver's edit, "with" the other person. */
	assert_int_equal(live_out(st, "chat/inbox/alice/archiver",
			"{\"id\":\"ed-1\",\"type\":\"edit\",\"ref\":\"b1\",\"of\":\"bob\",\"by\":\"bob\",\"ts\":2000,"
			"\"body\":\"see you!\",\"with\":\"bob\"}", 2001, &oc, &out), TSL_CHANGED);
	assert_ptr_equal(oc, c);
	assert_ptr_equal(out, m);
	assert_string_equal(m->body, "see you!");
	assert_int_equal(m->edited, 2000);
	/* An older edit arriving late: no. */
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"ed-0\",\"type\":\"edit\",\"ref\":\"b1\",\"of\":\"bob\",\"by\":\"bob\",\"ts\":1500,"
			"\"body\":\"see\",\"with\":\"bob\"}", 2002), TSL_IGNORED);
	assert_string_equal(m->body, "see you!");
	/* An edit from a person is not one. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"ed-2\",\"type\":\"edit\",\"ref\":\"b1\",\"of\":\"bob\",\"body\":\"forged\",\"with\":\"bob\"}",
			2003), TSL_IGNORED);
	/* Another conversation's (of, ref): not held there. */
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"ed-3\",\"type\":\"edit\",\"ref\":\"b1\",\"of\":\"bob\",\"ts\":2100,\"body\":\"x\",\"with\":\"carol\"}",
			2100), TSL_IGNORED);
	assert_string_equal(m->body, "see you!");
	/* Delete: a tombstone without body, reply, edit mark or reactions. */
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"dl-1\",\"type\":\"delete\",\"ref\":\"b1\",\"of\":\"bob\",\"by\":\"bob\",\"ts\":3000,\"with\":\"bob\"}",
			3001), TSL_CHANGED);
	assert_int_equal(m->deleted, 3000);
	assert_string_equal(m->deleted_by, "bob");
	assert_string_equal(m->body, "");
	assert_int_equal(m->nreactions, 0);
	assert_null(m->reactions);
	assert_int_equal(m->edited, 0);
	assert_string_equal(m->reply_to, "");
	assert_string_equal(m->reply_from, "");
	/* Nothing more happens to a tombstone. */
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"ed-4\",\"type\":\"edit\",\"ref\":\"b1\",\"of\":\"bob\",\"ts\":4000,\"body\":\"back\",\"with\":\"bob\"}",
			4001), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"dl-2\",\"type\":\"delete\",\"ref\":\"b1\",\"of\":\"bob\",\"by\":\"bob\",\"ts\":4000,\"with\":\"bob\"}",
			4001), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"x2\",\"type\":\"reaction\",\"ref\":\"b1\",\"of\":\"bob\",\"emoji\":\"!\"}", 4002), TSL_IGNORED);
	assert_string_equal(m->body, "");
	assert_int_equal(m->nreactions, 0);
	/* A room's, on the room's topic: an admin deletes bob's message. */
	live(st, "chat/room/lobby/bob", TEXT("r1", "spam"), 5000);
	r = room(st, "lobby")->msgs[0];
	assert_int_equal(live(st, "chat/room/lobby/archiver",
			"{\"id\":\"dl-3\",\"type\":\"delete\",\"ref\":\"r1\",\"of\":\"bob\",\"by\":\"carol\",\"ts\":6000}", 6001),
			TSL_CHANGED);
	assert_int_equal(r->deleted, 6000);
	assert_string_equal(r->deleted_by, "carol");
	/* Edit of my own note, "with" me. */
	live(st, "chat/inbox/alice/alice", TEXT("n1", "milk"), 7000);
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"ed-5\",\"type\":\"edit\",\"ref\":\"n1\",\"of\":\"alice\",\"by\":\"alice\",\"ts\":7100,"
			"\"body\":\"oat milk\",\"with\":\"alice\"}", 7101), TSL_CHANGED);
	assert_string_equal(direct(st, "alice")->msgs[0]->body, "oat milk");
}

static void test_sync_changes(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m, *r;

	m = archived(st, "{\"seq\":60,\"id\":\"m5\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"see\","
			"\"server_ts\":1000,\"status\":\"sent\"}");
	c = direct(st, "bob");
	assert_ptr_equal(archived(st, "{\"seq\":62,\"id\":\"ed-1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"edit\","
			"\"ref\":\"m5\",\"of\":\"bob\",\"body\":\"see you!\",\"by\":\"bob\",\"ts\":2000,\"server_ts\":2000,"
			"\"status\":\"sent\"}"), m);
	assert_string_equal(m->body, "see you!");
	assert_int_equal(m->edited, 2000);
	/* Change rows are not messages. */
	assert_int_equal(c->nmsgs, 1);
	/* A reaction row: the author is its from. */
	assert_ptr_equal(archived(st, "{\"seq\":64,\"id\":\"x1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"reaction\","
			"\"ref\":\"m5\",\"of\":\"bob\",\"emoji\":\"!\",\"remove\":false,\"server_ts\":3000,\"status\":\"sent\"}"), m);
	assert_string_equal(reacted(m, "!"), "alice");
	/* Applied twice: nothing changes. */
	assert_null(archived(st, "{\"seq\":64,\"id\":\"x1\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"reaction\","
			"\"ref\":\"m5\",\"of\":\"bob\",\"emoji\":\"!\",\"remove\":false,\"server_ts\":3000,\"status\":\"sent\"}"));
	assert_string_equal(reacted(m, "!"), "alice");
	assert_ptr_equal(archived(st, "{\"seq\":65,\"id\":\"x2\",\"from\":\"alice\",\"to\":\"bob\",\"type\":\"reaction\","
			"\"ref\":\"m5\",\"of\":\"bob\",\"emoji\":\"!\",\"remove\":true,\"server_ts\":3100,\"status\":\"sent\"}"), m);
	assert_int_equal(m->nreactions, 0);
	/* A room delete row, by an admin. */
	r = archived(st, "{\"seq\":43,\"id\":\"m2\",\"from\":\"bob\",\"room\":\"lobby\",\"type\":\"text\",\"body\":\"hello\","
			"\"server_ts\":900,\"status\":\"sent\",\"reactions\":[{\"emoji\":\"!\",\"users\":[\"carol\"]}]}");
	assert_string_equal(reacted(r, "!"), "carol");
	assert_ptr_equal(archived(st, "{\"seq\":66,\"id\":\"dl-1\",\"from\":\"carol\",\"room\":\"lobby\",\"type\":\"delete\","
			"\"ref\":\"m2\",\"of\":\"bob\",\"by\":\"carol\",\"ts\":4000,\"server_ts\":4000,\"status\":\"sent\"}"), r);
	assert_int_equal(r->deleted, 4000);
	assert_string_equal(r->deleted_by, "carol");
	assert_string_equal(r->body, "");
	assert_int_equal(r->nreactions, 0);
	/* Changes to messages not held are dropped, and make no conversation. */
	assert_null(archived(st, "{\"seq\":67,\"id\":\"ed-2\",\"from\":\"carol\",\"to\":\"alice\",\"type\":\"edit\","
			"\"ref\":\"q\",\"of\":\"carol\",\"body\":\"x\",\"ts\":5000,\"server_ts\":5000,\"status\":\"sent\"}"));
	assert_null(direct(st, "carol"));
	assert_null(archived(st, "{\"seq\":68,\"id\":\"ed-3\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"edit\","
			"\"ref\":\"zz\",\"of\":\"bob\",\"body\":\"x\",\"ts\":5000,\"server_ts\":5000,\"status\":\"sent\"}"));
	assert_int_equal(st->max_seq, 68);
}

static void test_archived_tombstone(void **state)
{
	struct tstore *st = *state;
	struct tmsg *m;

	/* Held live with reactions; the archive says deleted. */
	live(st, "chat/inbox/alice/bob",
			"{\"id\":\"m6\",\"type\":\"text\",\"body\":\"oops\",\"reply_to\":\"a0\",\"reply_from\":\"alice\"}", 1000);
	live(st, "chat/inbox/bob/alice",
			"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"m6\",\"of\":\"bob\",\"emoji\":\"!\"}", 1010);
	m = direct(st, "bob")->msgs[0];
	assert_int_equal(m->nreactions, 1);
	assert_ptr_equal(archived(st, "{\"seq\":61,\"id\":\"m6\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"\",\"ts\":1,\"server_ts\":999,\"status\":\"delivered\",\"deleted\":1764892950000,"
			"\"deleted_by\":\"bob\"}"), m);
	assert_int_equal(m->deleted, 1764892950000);
	assert_string_equal(m->deleted_by, "bob");
	assert_string_equal(m->body, "");
	assert_int_equal(m->nreactions, 0);
	assert_string_equal(m->reply_to, "");
	assert_int_equal(m->seq, 61);
	/* A tombstone stays one when an older page shows it whole. */
	archived(st, "{\"seq\":61,\"id\":\"m6\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"oops\",\"server_ts\":999,\"status\":\"sent\"}");
	assert_string_equal(m->body, "");
	assert_true(m->deleted > 0);
	/* A tombstone first seen archived. */
	m = archived(st, "{\"seq\":62,\"id\":\"m7\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"\",\"server_ts\":1000,\"status\":\"sent\",\"deleted\":5,\"deleted_by\":\"bob\"}");
	assert_non_null(m);
	assert_int_equal(m->deleted, 5);
	/* Edited and truncated texts. */
	m = archived(st, "{\"seq\":63,\"id\":\"m8\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"long...\",\"server_ts\":1000,\"status\":\"sent\",\"edited\":77,\"truncated\":true,"
			"\"body_bytes\":10913}");
	assert_int_equal(m->edited, 77);
	assert_true(m->truncated);
	/* A whole body held live stays when a page brings only its start. */
	live(st, "chat/inbox/alice/bob", TEXT("m9", "the whole of it"), 2000);
	m = archived(st, "{\"seq\":64,\"id\":\"m9\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"the wh\",\"server_ts\":2000,\"status\":\"sent\",\"truncated\":true,\"body_bytes\":15}");
	assert_string_equal(m->body, "the whole of it");
	assert_false(m->truncated);
}

static void test_read_envelope(void **state)
{
	struct tstore *st = *state;
	struct tconv *c, *oc;

	live(st, "chat/inbox/alice/bob", TEXT("b1", "1"), 1000);
	live(st, "chat/inbox/alice/bob", TEXT("b2", "2"), 1001);
	c = direct(st, "bob");
	assert_int_equal(c->unread, 2);
	assert_int_equal(live_out(st, "chat/inbox/alice/archiver",
			"{\"id\":\"rd-1\",\"type\":\"read\",\"seq\":57,\"unread\":0,\"ts\":1,\"with\":\"bob\"}", 1100, &oc, NULL),
			TSL_READ);
	assert_ptr_equal(oc, c);
	assert_int_equal(c->read_seq, 57);
	assert_int_equal(c->unread, 0);
	/* An older marker: stale. */
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"rd-2\",\"type\":\"read\",\"seq\":50,\"unread\":3,\"ts\":1,\"with\":\"bob\"}", 1200), TSL_IGNORED);
	assert_int_equal(c->read_seq, 57);
	assert_int_equal(c->unread, 0);
	/* A room's. */
	live(st, "chat/room/lobby/carol", TEXT("c1", "x"), 1300);
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"rd-3\",\"type\":\"read\",\"seq\":55,\"unread\":1,\"ts\":1,\"room\":\"lobby\"}", 1400), TSL_READ);
	assert_int_equal(room(st, "lobby")->read_seq, 55);
	assert_int_equal(room(st, "lobby")->unread, 1);
	/* From a person, or about a conversation not held: nothing. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"rd-4\",\"type\":\"read\",\"seq\":99,\"unread\":0,\"with\":\"bob\"}", 1500), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"rd-5\",\"type\":\"read\",\"seq\":9,\"unread\":4,\"with\":\"erin\"}", 1500), TSL_IGNORED);
	assert_null(direct(st, "erin"));
	assert_int_equal(c->read_seq, 57);
}

static void test_conv_entry(void **state)
{
	struct tstore *st = *state;
	struct tconv *c, *r;

	c = entry(st, "{\"with\":\"bob\",\"last_seq\":60,\"read_seq\":57,\"unread\":2,"
			"\"last\":{\"seq\":60,\"id\":\"m5\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"see you!\",\"ts\":null,\"server_ts\":5000,\"status\":\"sent\"}}");
	assert_non_null(c);
	assert_ptr_equal(c, direct(st, "bob"));
	assert_int_equal(c->last_seq, 60);
	assert_int_equal(c->read_seq, 57);
	assert_int_equal(c->unread, 2);
	assert_int_equal(c->last_time, 5000);
	assert_string_equal(ids(c), "m5");
	assert_int_equal(c->msgs[0]->seq, 60);
	r = entry(st, "{\"room\":\"lobby\",\"title\":\"Lobby\",\"last_seq\":55,\"read_seq\":55,\"unread\":0,"
			"\"last\":{\"seq\":55,\"id\":\"ev-1\",\"from\":\"archiver\",\"room\":\"lobby\",\"type\":\"event\","
			"\"event\":\"created\",\"user\":\"alice\",\"by\":\"alice\",\"server_ts\":6000,\"status\":\"sent\"}}");
	assert_int_equal(r->kind, TCONV_ROOM);
	assert_string_equal(r->title, "Lobby");
	assert_true(r->msgs[0]->is_event);
	/* The list by last activity. */
	assert_string_equal(list(st), "#lobby bob");
	/* A note list entry: my notes. */
	c = entry(st, "{\"with\":\"alice\",\"last_seq\":3,\"read_seq\":0,\"unread\":0,"
			"\"last\":{\"seq\":3,\"id\":\"n1\",\"from\":\"alice\",\"to\":\"alice\",\"type\":\"text\","
			"\"body\":\"milk\",\"server_ts\":100,\"status\":\"read\"}}");
	assert_ptr_equal(c, direct(st, "alice"));
	assert_int_equal(c->nmsgs, 1);
	assert_string_equal(list(st), "#lobby bob alice");
	assert_int_equal(st->max_seq, 60);
	/* The marker a read envelope moved further stays. */
	live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"rd-1\",\"type\":\"read\",\"seq\":60,\"unread\":0,\"with\":\"bob\"}", 7000);
	entry(st, "{\"with\":\"bob\",\"last_seq\":60,\"read_seq\":57,\"unread\":2}");
	assert_int_equal(direct(st, "bob")->read_seq, 60);
	assert_int_equal(direct(st, "bob")->unread, 0);
	/* Not a conversation. */
	assert_null(entry(st, "{\"last_seq\":1}"));
	assert_null(entry(st, "{\"with\":5}"));
	assert_null(entry(st, "{\"room\":\"Not A Room\"}"));
	assert_int_equal(st->nconvs, 3);
}

/* ---- sending ---- */

static void test_outgoing(void **state)
{
	struct tstore *st = *state;
	struct tconv *c = tui_store__conv(st, TCONV_DIRECT, "bob", true);
	struct tconv *r = tui_store__conv(st, TCONV_ROOM, "lobby", true);
	struct tmsg *m, *m2, *m3;

	m = tui_store__outgoing(st, c, "a1", "hi", "b0", "bob", 1000);
	assert_non_null(m);
	assert_int_equal(m->status, TMSG_PENDING);
	assert_string_equal(m->from, "alice");
	assert_string_equal(m->body, "hi");
	assert_string_equal(m->reply_to, "b0");
	assert_string_equal(m->reply_from, "bob");
	assert_int_equal(m->time_ms, 1000);
	assert_string_equal(list(st), "bob #lobby");
	/* The same id again (a retry): the same message. */
	assert_ptr_equal(tui_store__outgoing(st, c, "a1", "hi", NULL, NULL, 1001), m);
	assert_int_equal(c->nmsgs, 1);
	tui_store__acked(st, c, "a1", NULL);
	assert_int_equal(m->status, TMSG_SENT);
	assert_null(m->fail_reason);
	/* Refused. */
	m2 = tui_store__outgoing(st, c, "a2", "hi again", NULL, NULL, 1100);
	tui_store__acked(st, c, "a2", "bob blocks you");
	assert_int_equal(m2->status, TMSG_FAILED);
	assert_string_equal(m2->fail_reason, "bob blocks you");
	/* A PUBACK after the refusal changes nothing... */
	tui_store__acked(st, c, "a2", NULL);
	assert_int_equal(m2->status, TMSG_FAILED);
	/* ...and a refusal after the PUBACK wins (MQTT 3.1.1). */
	m3 = tui_store__outgoing(st, c, "a3", "third", NULL, NULL, 1200);
	tui_store__acked(st, c, "a3", NULL);
	tui_store__acked(st, c, "a3", "rate");
	assert_int_equal(m3->status, TMSG_FAILED);
	tui_store__acked(st, c, "a3", "you are not allowed");
	assert_string_equal(m3->fail_reason, "you are not allowed");
	/* Unknown ids and conversations: nothing. */
	tui_store__acked(st, c, "zz", NULL);
	tui_store__acked(st, NULL, "a1", "x");
	assert_int_equal(m->status, TMSG_SENT);
	/* A room message of mine comes back from the broker: sent. */
	m = tui_store__outgoing(st, r, "a4", "hi all", NULL, NULL, 1300);
	assert_string_equal(list(st), "#lobby bob");
	assert_int_equal(live(st, "chat/room/lobby/alice", TEXT("a4", "hi all"), 1301), TSL_CHANGED);
	assert_int_equal(m->status, TMSG_SENT);
	assert_int_equal(r->nmsgs, 1);
	/* A receipt after all: it arrived, the failure goes. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"r1\",\"type\":\"receipt\",\"ref\":\"a2\",\"status\":\"delivered\"}", 1400), TSL_CHANGED);
	assert_int_equal(m2->status, TMSG_DELIVERED);
	assert_null(m2->fail_reason);
	/* Bad arguments. */
	assert_null(tui_store__outgoing(st, NULL, "a5", "x", NULL, NULL, 1));
	assert_null(tui_store__outgoing(st, c, "bad id", "x", NULL, NULL, 1));
	assert_null(tui_store__outgoing(st, c, "a6", NULL, NULL, NULL, 1));
	/* A reply needs both members. */
	m = tui_store__outgoing(st, c, "a7", "x", "b0", NULL, 1500);
	assert_string_equal(m->reply_to, "");
}

/* ---- what is ignored ---- */

static void test_ignored(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	struct tmsg *m;

	/* A type of a later contract. */
	assert_int_equal(live_out(st, "chat/inbox/alice/bob",
			"{\"id\":\"p1\",\"type\":\"poll\",\"body\":\"?\"}", 1000, &c, &m), TSL_IGNORED);
	assert_null(c);
	assert_null(m);
	assert_int_equal(st->nconvs, 0);
	/* Service types from people, people's types from the service. */
	assert_int_equal(live(st, "chat/room/lobby/bob",
			"{\"id\":\"e1\",\"type\":\"event\",\"event\":\"added\",\"user\":\"bob\"}", 1000), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/archiver", TEXT("t1", "x"), 1000), TSL_IGNORED);
	assert_int_equal(live(st, "chat/inbox/alice/archiver",
			"{\"id\":\"e2\",\"type\":\"event\",\"event\":\"added\"}", 1000), TSL_IGNORED);
	/* Not a chat topic. */
	assert_int_equal(live(st, "chat/typing/alice/bob", TEXT("t2", "x"), 1000), TSL_IGNORED);
	assert_int_equal(live(st, "chat/presence/bob", TEXT("t3", "x"), 1000), TSL_IGNORED);
	assert_int_equal(st->nconvs, 0);
	/* Unknown members are fine. */
	assert_int_equal(live(st, "chat/inbox/alice/bob",
			"{\"id\":\"t4\",\"type\":\"text\",\"body\":\"x\",\"new\":{\"a\":[1,2]}}", 1000), TSL_NEW);
	/* Archived rows of unknown types still move the sync position. */
	assert_null(archived(st, "{\"seq\":70,\"id\":\"p1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"poll\"}"));
	assert_int_equal(st->max_seq, 70);
	assert_int_equal(direct(st, "bob")->nmsgs, 1);
}

static void test_blocked(void **state)
{
	struct tstore *st = *state;
	json_t *users = parse("[\"bob\", 7, \"NOT A NAME\", \"bob\", \"dave\"]");
	struct tconv *c;
	struct tmsg *m;

	tui_store__set_blocked(st, users);
	json_decref(users);
	assert_true(tui_store__is_blocked(st, "bob"));
	assert_true(tui_store__is_blocked(st, "dave"));
	assert_false(tui_store__is_blocked(st, "carol"));
	assert_int_equal(st->nblocked, 2);
	assert_int_equal(live(st, "chat/inbox/alice/bob", TEXT("b1", "hi"), 1000), TSL_IGNORED);
	assert_null(direct(st, "bob"));
	assert_int_equal(live(st, "chat/room/lobby/bob", TEXT("b2", "hi"), 1000), TSL_IGNORED);
	assert_null(archived(st, "{\"seq\":5,\"id\":\"b3\",\"from\":\"bob\",\"room\":\"lobby\",\"type\":\"text\","
			"\"body\":\"hi\",\"server_ts\":1,\"status\":\"sent\"}"));
	assert_int_equal(st->max_seq, 5);
	live(st, "chat/room/lobby/carol", TEXT("c1", "hello"), 1100);
	c = room(st, "lobby");
	assert_string_equal(ids(c), "c1");
	m = c->msgs[0];
	assert_int_equal(live(st, "chat/room/lobby/bob",
			"{\"id\":\"x1\",\"type\":\"reaction\",\"ref\":\"c1\",\"of\":\"carol\",\"emoji\":\"!\"}", 1200), TSL_IGNORED);
	assert_null(archived(st, "{\"seq\":6,\"id\":\"x2\",\"from\":\"bob\",\"room\":\"lobby\",\"type\":\"reaction\","
			"\"ref\":\"c1\",\"of\":\"carol\",\"emoji\":\"!\",\"remove\":false,\"server_ts\":1}"));
	assert_int_equal(m->nreactions, 0);
	/* Unblocked: his messages come again. */
	users = parse("[]");
	tui_store__set_blocked(st, users);
	json_decref(users);
	assert_false(tui_store__is_blocked(st, "bob"));
	assert_int_equal(live(st, "chat/inbox/alice/bob", TEXT("b1", "hi"), 1300), TSL_NEW);
	/* Not an array: nobody. */
	tui_store__set_blocked(st, NULL);
	assert_int_equal(st->nblocked, 0);
}

/* ---- typing, presence, nicks ---- */

static void test_typing(void **state)
{
	struct tstore *st = *state;
	struct tconv *c = tui_store__conv(st, TCONV_ROOM, "lobby", true);

	tui_store__typing(c, "bob", true, 1000);
	assert_int_equal(c->ntyping, 1);
	assert_string_equal(c->typing[0], "bob");
	assert_false(tui_store__typing_expire(st, 6999));
	assert_int_equal(c->ntyping, 1);
	/* A new "true" keeps it. */
	tui_store__typing(c, "bob", true, 5000);
	tui_store__typing(c, "carol", true, 5500);
	assert_false(tui_store__typing_expire(st, 10999));
	assert_int_equal(c->ntyping, 2);
	assert_true(tui_store__typing_expire(st, 11000));
	assert_int_equal(c->ntyping, 1);
	assert_string_equal(c->typing[0], "carol");
	assert_true(tui_store__typing_expire(st, 11500));
	assert_int_equal(c->ntyping, 0);
	/* "false" ends it, and so does a text. */
	tui_store__typing(c, "bob", true, 20000);
	tui_store__typing(c, "bob", false, 20001);
	assert_int_equal(c->ntyping, 0);
	tui_store__typing(c, "bob", true, 20002);
	live(st, "chat/room/lobby/bob", TEXT("b1", "done"), 20003);
	assert_int_equal(c->ntyping, 0);
	/* Five at once: the one quiet the longest makes room. */
	tui_store__typing(c, "u1", true, 30001);
	tui_store__typing(c, "u2", true, 30000);
	tui_store__typing(c, "u3", true, 30003);
	tui_store__typing(c, "u4", true, 30004);
	tui_store__typing(c, "u5", true, 30005);
	assert_int_equal(c->ntyping, 4);
	assert_string_equal(c->typing[0], "u1");
	assert_string_equal(c->typing[3], "u5");
	/* Bad calls. */
	tui_store__typing(NULL, "bob", true, 1);
	tui_store__typing(c, NULL, true, 1);
	tui_store__typing(c, "A NAME THAT IS NOT ONE", true, 1);
	assert_int_equal(c->ntyping, 4);
	assert_false(tui_store__typing_expire(NULL, 1));
}

static void test_presence_nicks(void **state)
{
	struct tstore *st = *state;
	const struct tpresence *p;
	const char *on = "{\"status\":\"online\",\"since\":1732665600123}";
	const char *off = "{\"status\":\"offline\",\"since\":1732665700456}";

	assert_null(tui_store__presence_of(st, "bob"));
	tui_store__presence(st, "bob", on, strlen(on));
	p = tui_store__presence_of(st, "bob");
	assert_non_null(p);
	assert_true(p->online);
	assert_int_equal(p->since, 1732665600123);
	tui_store__presence(st, "carol", on, strlen(on));
	tui_store__presence(st, "bob", off, strlen(off));
	p = tui_store__presence_of(st, "bob");
	assert_false(p->online);
	assert_int_equal(p->since, 1732665700456);
	/* Not JSON, or no status: what was known stays. */
	tui_store__presence(st, "bob", "{nope", 5);
	tui_store__presence(st, "bob", "[1]", 3);
	tui_store__presence(st, "bob", "{\"status\":5}", 12);
	assert_int_equal(tui_store__presence_of(st, "bob")->since, 1732665700456);
	/* Empty: no presence. */
	tui_store__presence(st, "bob", "", 0);
	assert_null(tui_store__presence_of(st, "bob"));
	assert_true(tui_store__presence_of(st, "carol")->online);
	tui_store__presence(st, "NOT A NAME", on, strlen(on));
	tui_store__presence(st, NULL, on, strlen(on));
	assert_int_equal(st->npresence, 1);

	assert_string_equal(tui_store__nick(st, "bob"), "bob");
	tui_store__set_nick(st, "bob", "Bobby");
	tui_store__set_nick(st, "carol", "Carol C.");
	assert_string_equal(tui_store__nick(st, "bob"), "Bobby");
	tui_store__set_nick(st, "bob", "Robert");
	assert_string_equal(tui_store__nick(st, "bob"), "Robert");
	assert_string_equal(tui_store__nick(st, "carol"), "Carol C.");
	tui_store__set_nick(st, "bob", "");
	assert_string_equal(tui_store__nick(st, "bob"), "bob");
	assert_string_equal(tui_store__nick(st, "carol"), "Carol C.");
	tui_store__set_nick(st, "carol", NULL);
	assert_string_equal(tui_store__nick(st, "carol"), "carol");
	/* A nick that could hide what it is (a terminal escape): the name. */
	tui_store__set_nick(st, "dave", "Dave\x1b[2J");
	assert_string_equal(tui_store__nick(st, "dave"), "dave");
	assert_string_equal(tui_store__nick(st, NULL), "");
	assert_int_equal(st->nnicks, 0);
	/* Many: the arrays grow. */
	{
		char user[16], nick[16];
		int i;

		for(i=0; i<40; i++){
			snprintf(user, sizeof(user), "u%d", i);
			snprintf(nick, sizeof(nick), "User %d", i);
			tui_store__set_nick(st, user, nick);
		}
		assert_int_equal(st->nnicks, 40);
		assert_string_equal(tui_store__nick(st, "u39"), "User 39");
		assert_string_equal(tui_store__nick(st, "u0"), "User 0");
	}
}

static void test_max_seq(void **state)
{
	struct tstore *st = *state;

	assert_int_equal(st->max_seq, 0);
	archived(st, "{\"seq\":42,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\","
			"\"server_ts\":1,\"status\":\"sent\"}");
	assert_int_equal(st->max_seq, 42);
	archived(st, "{\"seq\":7,\"id\":\"m0\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\","
			"\"server_ts\":1,\"status\":\"sent\"}");
	assert_int_equal(st->max_seq, 42);
	archived(st, "{\"seq\":812,\"id\":\"ev-1\",\"from\":\"archiver\",\"room\":\"hikers\",\"type\":\"event\","
			"\"event\":\"joined\",\"user\":\"alice\",\"server_ts\":1,\"status\":\"sent\"}");
	assert_int_equal(st->max_seq, 812);
	/* Live messages have none. */
	live(st, "chat/inbox/alice/bob", TEXT("m2", "x"), 1);
	assert_int_equal(st->max_seq, 812);
}

/* ---- bad input never crashes ---- */

static void test_bad_input(void **state)
{
	struct tstore *st = *state;
	static const char *const envs[] = {
		"{}",
		"[]",
		"\"text\"",
		"null",
		"{\"type\":\"text\"}",
		"{\"type\":\"text\",\"id\":\"m1\"}",
		"{\"type\":\"text\",\"id\":5,\"body\":\"x\"}",
		"{\"type\":\"text\",\"id\":\"m1\",\"body\":5}",
		"{\"type\":\"text\",\"id\":\"m1\",\"body\":null}",
		"{\"type\":5,\"id\":\"m1\",\"body\":\"x\"}",
		"{\"type\":\"text\",\"id\":\"bad id\",\"body\":\"x\"}",
		"{\"type\":\"text\",\"id\":\"\",\"body\":\"x\"}",
		/* 65 characters: one over the id limit. */
		"{\"type\":\"text\",\"id\":\"12345678901234567890123456789012345678901234567890123456789012345\",\"body\":\"x\"}",
		"{\"type\":\"receipt\",\"id\":\"r1\"}",
		"{\"type\":\"receipt\",\"id\":\"r1\",\"ref\":[],\"status\":\"read\"}",
		"{\"type\":\"reaction\",\"id\":\"x1\",\"ref\":\"m1\"}",
		"{\"type\":\"reaction\",\"id\":\"x1\",\"ref\":\"m1\",\"of\":\"bob\",\"emoji\":7}",
		"{\"type\":\"reaction\",\"id\":\"x1\",\"ref\":\"m1\",\"of\":\"bob\",\"emoji\":\"\"}",
	};
	static const char *const service[] = {
		"{\"type\":\"read\",\"id\":\"r\",\"seq\":\"5\",\"unread\":0,\"with\":\"bob\"}",
		"{\"type\":\"read\",\"id\":\"r\",\"seq\":5,\"unread\":-1,\"with\":\"bob\"}",
		"{\"type\":\"read\",\"id\":\"r\",\"seq\":5,\"unread\":99999999999,\"with\":\"bob\"}",
		"{\"type\":\"read\",\"id\":\"r\",\"seq\":5,\"unread\":0}",
		"{\"type\":\"read\",\"id\":\"r\",\"seq\":5,\"unread\":0,\"with\":{}}",
		"{\"type\":\"edit\",\"id\":\"e\",\"ref\":\"m1\",\"of\":\"bob\",\"with\":\"bob\"}",
		"{\"type\":\"edit\",\"id\":\"e\",\"ref\":\"m1\",\"of\":\"bob\",\"body\":true,\"with\":\"bob\"}",
		"{\"type\":\"delete\",\"id\":\"d\",\"ref\":\"m1\",\"of\":\"bob\",\"by\":5,\"with\":\"bob\"}",
		"{\"type\":\"delete\",\"id\":\"d\",\"ref\":\"m1\",\"of\":\"toolongtoolongtoolongtoolongtoolong\",\"with\":\"bob\"}",
		"{\"type\":\"delete\",\"id\":\"d\",\"ref\":\"m1\",\"of\":\"bob\",\"with\":\"toolongtoolongtoolongtoolongtoolong\"}",
	};
	static const char *const topics[] = {
		"chat/inbox/alice",
		"chat/inbox/alice/bob/x",
		"chat/inbox/ALICE/bob",
		"chat/inbox/alice/Bob",
		"chat/inbox/alice/",
		"chat/inbox//bob",
		"chat/inbox/alice/+",
		/* 33 characters: one over the name limit. */
		"chat/inbox/alice/abcdefghijklmnopqrstuvwxyz0123456",
		"chat/room/abcdefghijklmnopqrstuvwxyz0123456/bob",
		"chat/rpc/alice/resp",
		"",
	};
	static const char *const rows[] = {
		"{}",
		"[1,2]",
		"{\"seq\":\"1\",\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"type\":\"text\",\"body\":\"x\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"carol\",\"type\":\"text\",\"body\":\"x\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":7,\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"room\":5,\"type\":\"text\",\"body\":\"x\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"event\",\"event\":\"added\"}",
		"{\"seq\":1,\"id\":\"e1\",\"from\":\"archiver\",\"room\":\"r\",\"type\":\"event\",\"event\":5}",
		"{\"seq\":1,\"id\":\"e1\",\"from\":\"archiver\",\"room\":\"r\",\"type\":\"event\",\"event\":\"a-very-long-event-name\"}",
		"{\"seq\":1,\"id\":\"m1\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"edit\",\"ref\":5}",
	};
	struct tconv *c;
	struct tmsg *m;
	json_t *j;
	size_t i;

	for(i=0; i<sizeof(envs)/sizeof(envs[0]); i++){
		j = json_loads(envs[i], JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		assert_int_equal(tui_store__live(st, "chat/inbox/alice/bob", j, 1, &c, &m), TSL_IGNORED);
		json_decref(j);
	}
	for(i=0; i<sizeof(service)/sizeof(service[0]); i++){
		assert_int_equal(live(st, "chat/inbox/alice/archiver", service[i], 1), TSL_IGNORED);
	}
	for(i=0; i<sizeof(topics)/sizeof(topics[0]); i++){
		assert_int_equal(live(st, topics[i], TEXT("m1", "x"), 1), TSL_IGNORED);
	}
	for(i=0; i<sizeof(rows)/sizeof(rows[0]); i++){
		j = json_loads(rows[i], 0, NULL);
		assert_non_null(j);
		assert_null(tui_store__archived(st, j));
		json_decref(j);
	}
	/* None of it made a conversation. */
	assert_int_equal(st->nconvs, 0);
	assert_int_equal(tui_store__live(st, NULL, NULL, 1, NULL, NULL), TSL_IGNORED);
	assert_int_equal(tui_store__live(st, "chat/inbox/alice/bob", NULL, 1, NULL, NULL), TSL_IGNORED);
	assert_null(tui_store__archived(st, NULL));
	assert_null(tui_store__conv_entry(st, NULL));
	assert_null(tui_store__conv(st, TCONV_DIRECT, NULL, true));
	assert_null(tui_store__conv(st, TCONV_DIRECT, "abcdefghijklmnopqrstuvwxyz0123456", true));
	assert_null(tui_store__find(NULL, "bob", "m1"));
	assert_int_equal(st->nconvs, 0);

	/* Wrong types inside an otherwise good row: what is wrong is absent. */
	m = archived(st, "{\"seq\":2,\"id\":\"m2\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\","
			"\"server_ts\":\"late\",\"status\":7,\"edited\":\"no\",\"truncated\":1,\"reply_to\":5,\"reply_from\":\"bob\","
			"\"reactions\":{\"emoji\":\"!\"},\"deleted\":\"never\",\"deleted_by\":[]}");
	assert_non_null(m);
	assert_int_equal(m->time_ms, 0);
	assert_int_equal(m->edited, 0);
	assert_false(m->truncated);
	assert_string_equal(m->reply_to, "");
	assert_int_equal(m->nreactions, 0);
	assert_int_equal(m->deleted, 0);
	m = archived(st, "{\"seq\":3,\"id\":\"m3\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\",\"body\":\"x\","
			"\"reactions\":[5,{\"emoji\":\"!\"},{\"emoji\":\"!\",\"users\":[\"carol\",3,\"NOT OK\",\"carol\"]},"
			"{\"emoji\":\"far too long far too long far too long\",\"users\":[\"dave\"]}]}");
	assert_non_null(m);
	assert_int_equal(m->nreactions, 1);
	assert_string_equal(reacted(m, "!"), "carol");
	/* A nick or typing for nobody. */
	tui_store__set_nick(st, NULL, "x");
	tui_store__set_nick(st, "NOT OK", "x");
	assert_int_equal(st->nnicks, 0);
	tui_store__drop_conv(st, NULL);
	assert_int_equal(st->nconvs, 1);
}

/* A long name for the store itself is cut to nothing, not past its buffer. */
static void test_init_bad_me(void **state)
{
	struct tstore st;

	(void)state;
	tui_store__init(&st, "abcdefghijklmnopqrstuvwxyz0123456789");
	assert_string_equal(st.me, "");
	assert_int_equal(live(&st, "chat/inbox/bob/carol", TEXT("m1", "x"), 1), TSL_IGNORED);
	tui_store__free(&st);
	tui_store__init(&st, NULL);
	tui_store__free(&st);
	/* Free twice is harmless: free leaves it empty. */
	tui_store__free(&st);
}

/* Many messages out of order: the order holds, lookups find each. */
static void test_many(void **state)
{
	struct tstore *st = *state;
	struct tconv *c;
	char row[256];
	int i, seq;

	for(i=0; i<2000; i++){
		seq = (i * 7919) % 2000 + 1;
		snprintf(row, sizeof(row), "{\"seq\":%d,\"id\":\"m%d\",\"from\":\"bob\",\"to\":\"alice\",\"type\":\"text\","
				"\"body\":\"x\",\"server_ts\":%d,\"status\":\"sent\"}", seq, seq, seq);
		assert_non_null(archived(st, row));
	}
	c = direct(st, "bob");
	assert_int_equal(c->nmsgs, 2000);
	for(i=0; i<c->nmsgs; i++) assert_int_equal(c->msgs[i]->seq, i + 1);
	assert_non_null(tui_store__find(c, "bob", "m1"));
	assert_non_null(tui_store__find(c, "bob", "m2000"));
	assert_int_equal(st->max_seq, 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_live_text_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_text_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_sent_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_note_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_redelivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_then_archived, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipts_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archived_status_lower, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipts_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_delete_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archived_tombstone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outgoing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_typing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_nicks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test(test_init_bad_me),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
