/* test_archive_backends.c - the archive through archive.h on both backends:
 * SQLite (archive.db) and PostgreSQL (schema archive, on a server of the
 * test's own: tests/unit/pg_fixture.h; skipped, saying why, without
 * PostgreSQL 15).
 *
 * On PostgreSQL every operation runs on an SQLite archive too, the
 * reference, and every answer (stored or not, sync, history, get, the
 * conversations, the markers) must be the same, seq for seq: the
 * backends give one meaning. Then what only several writers can break:
 * writers in several processes storing at once while a reader runs sync
 * in a loop, which must never see a seq whose smaller ones come later
 * (the seq lock, docs/SCALING.md "seq across several archivers"); the
 * schema made by several programs opening at once; a newer schema
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "archive.h"
#include "archive_ext.h"
#include "archkey.h"
#include "err.h"
#include "pg_fixture.h"

struct fx {
	char dir[64];
	char path[128];
	char refdir[64];
	char refpath[128];
	struct archive *ar;    /* the backend under test */
	struct archive *ref;   /* on PostgreSQL: the same operations on SQLite */
	int64_t clock;
	unsigned seed;
	int ids;
};

static const char *const users[] = {"ann", "ben", "cat", "dan"};
static const char *const rooms[] = {"hall", "yard"};

static void open_ok(const char *path, struct archive **out)
{
	char err[512] = "";
	int rc = archive__open(path, out, err, sizeof(err));

	if(rc != MQC_OK) fail_msg("archive__open: %s", err);
}

/* An empty archive in a folder of its own; on PostgreSQL the folder's
 * store.conf names the test's server, as an operator's would. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_archive_be.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/archive.db", f->dir);
	if(be.pg){
		pg_fresh_schema(f->dir, "archive");
		snprintf(f->refdir, sizeof(f->refdir), "/tmp/test_archive_ref.XXXXXX");
		assert_non_null(mkdtemp(f->refdir));
		snprintf(f->refpath, sizeof(f->refpath), "%s/archive.db", f->refdir);
		open_ok(f->refpath, &f->ref);
	}
	open_ok(f->path, &f->ar);
	f->clock = 1000;
	f->seed = 1;
	*state = f;
	return 0;
}

static void rm_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	archive__close(f->ar);
	archive__close(f->ref);
	rm_dir(f->dir);
	if(f->ref) rm_dir(f->refdir);
	free(f);
	return 0;
}

/* ---- every operation on both, answers compared ---- */

static void same_json(json_t *a, json_t *b, const char *what)
{
	if(!json_equal(a, b)){
		char *sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
		char *sb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);

		fail_msg("%s differs:\n  postgresql %s\n  sqlite     %s", what, sa ? sa : "NULL", sb ? sb : "NULL");
	}
}

/* The holder rule's account times: created_of for the tests' users
 * (arg: a struct of one reset name). */
struct holders {
	const char *name;   /* this one was created at created; others at 0 */
	int64_t created;
};

static int created_of(const char *user, int64_t *created, void *arg)
{
	const struct holders *h = arg;

	*created = h && h->name && strcmp(user, h->name) == 0 ? h->created : 0;
	return MQC_OK;
}

static bool store_on(struct fx *f, const struct archive_msg *m, struct holders *h)
{
	bool a = false, b = false;

	assert_int_equal(archive__store(f->ar, m, created_of, h, &a), MQC_OK);
	if(f->ref){
		assert_int_equal(archive__store(f->ref, m, created_of, h, &b), MQC_OK);
		assert_int_equal(a, b);
	}
	return a;
}

static bool text(struct fx *f, const char *from, const char *to, const char *room, const char *id,
		const char *body)
{
	struct archive_msg m = {.sender = from, .recipient = to, .room = room, .id = id, .body = body,
		.ts = f->clock - 5, .server_ts = f->clock++};

	return store_on(f, &m, NULL);
}

static void begin_both(struct fx *f, bool batch)
{
	assert_int_equal(batch ? archive__batch_begin(f->ar) : archive__begin(f->ar), MQC_OK);
	if(f->ref) assert_int_equal(batch ? archive__batch_begin(f->ref) : archive__begin(f->ref), MQC_OK);
}

static void commit_both(struct fx *f, bool batch)
{
	assert_int_equal(batch ? archive__batch_commit(f->ar) : archive__commit(f->ar), MQC_OK);
	if(f->ref) assert_int_equal(batch ? archive__batch_commit(f->ref) : archive__commit(f->ref), MQC_OK);
}

static json_t *sync_of(struct archive *ar, const char *user, int64_t since, int64_t after, int limit,
		bool changes, bool *more)
{
	struct archive_room r[2] = {{"hall", 0}, {"yard", 0}};
	json_t *j = archive__sync(ar, user, since, r, 2, after, limit, changes, more);

	if(j == NULL) fail_msg("sync: %s", archive__errmsg(ar));
	return j;
}

/* Every read of archive.h, on both, equal. */
static void compare_reads(struct fx *f)
{
	size_t u, k;
	int64_t last = 0, s;

	if(f->ref == NULL) return;
	for(u = 0; u < 4; u++){
		for(int limit = 1; limit <= 64; limit *= 4){
			for(int ch = 0; ch < 2; ch++){
				for(int64_t after = 0; after < 40; after += 7){
					bool ma, mb;
					json_t *a = sync_of(f->ar, users[u], 0, after, limit, ch, &ma);
					json_t *b = sync_of(f->ref, users[u], 0, after, limit, ch, &mb);

					same_json(a, b, "sync");
					assert_int_equal(ma, mb);
					json_decref(a);
					json_decref(b);
				}
			}
		}
		for(k = 0; k < 4 + 2; k++){
			char conv[64];
			struct archive_conv ca, cb;
			bool ma, mb;
			json_t *a, *b;

			if(k < 4) archkey__dm_conv(users[u], users[k], conv, sizeof(conv));
			else snprintf(conv, sizeof(conv), "r:%s", rooms[k - 4]);
			for(int64_t before = 0; before < 40; before += 9){
				a = archive__history(f->ar, conv, 0, before, 5, &ma);
				b = archive__history(f->ref, conv, 0, before, 5, &mb);
				assert_non_null(a);
				same_json(a, b, "history");
				assert_int_equal(ma, mb);
				json_decref(a);
				json_decref(b);
			}
			assert_int_equal(archive__conv_get(f->ar, users[u], conv, &ca), MQC_OK);
			assert_int_equal(archive__conv_get(f->ref, users[u], conv, &cb), MQC_OK);
			assert_memory_equal(&ca, &cb, sizeof(ca));
			for(int64_t q = 0; q < 40; q += 5){
				int64_t na, nb;

				assert_int_equal(archive__text_n_at(f->ar, conv, q, &na), MQC_OK);
				assert_int_equal(archive__text_n_at(f->ref, conv, q, &nb), MQC_OK);
				assert_int_equal(na, nb);
			}
		}
	}
	/* search: a few texts, each user, narrowed or not, page by page */
	for(u = 0; u < 4; u++){
		static const char *const texts[] = {"text", "ext 1", "from ann", "HELLO", "xyz", "resent"};
		struct archive_room rr[2] = {{"hall", 0}, {"yard", 0}};

		for(k = 0; k < sizeof(texts) / sizeof(texts[0]); k++){
			for(int narrow = 0; narrow < 3; narrow++){
				struct archive_search q = {.text = texts[k], .user = users[u], .rooms = rr,
					.nrooms = 2, .limit = 3, .max_scan = 100000, .budget_ms = 10000};
				int64_t before = 0;

				if(narrow == 1) q.with = users[(u + 1) % 4];
				if(narrow == 2) q.room = "hall";
				for(int page = 0; page < 20; page++){
					bool ma, mb;
					int64_t na, nb;
					json_t *a, *b;

					q.before = before;
					a = archive__search(f->ar, &q, &ma, &na);
					b = archive__search(f->ref, &q, &mb, &nb);
					if(a == NULL) fail_msg("search: %s", archive__errmsg(f->ar));
					same_json(a, b, "search");
					assert_int_equal(ma, mb);
					json_decref(a);
					json_decref(b);
					if(!ma) break;
					assert_int_equal(na, nb);
					before = na;
				}
			}
		}
	}
	/* export, page by page and whole; stats but for the bytes */
	for(u = 0; u < 4; u++){
		int64_t after = 0;

		for(int page = 0; page < 100; page++){
			bool ma, mb;
			json_t *a = archive__export_page(f->ar, users[u], 0, after, 4, &ma);
			json_t *b = archive__export_page(f->ref, users[u], 0, after, 4, &mb);

			assert_non_null(a);
			same_json(a, b, "export page");
			assert_int_equal(ma, mb);
			if(json_array_size(a) > 0) after = json_integer_value(json_object_get(json_array_get(a, json_array_size(a) - 1), "seq"));
			json_decref(a);
			json_decref(b);
			if(!ma) break;
		}
		{
			json_t *a = archive__export_user(f->ar, users[u], 0), *b = archive__export_user(f->ref, users[u], 0);

			same_json(a, b, "export");
			json_decref(a);
			json_decref(b);
		}
	}
	{
		json_t *a = archive__stats(f->ar), *b = archive__stats(f->ref);

		assert_non_null(a);
		assert_true(json_integer_value(json_object_get(a, "db_bytes")) > 0);
		json_object_del(a, "db_bytes");
		json_object_del(b, "db_bytes");
		same_json(a, b, "stats");
		json_decref(a);
		json_decref(b);
	}
	/* get of every seq (and one past the end) */
	assert_int_equal(archive__index_mark(f->ar, &last), MQC_OK);
	for(s = 0; s <= last + 1; s++){
		json_t *a = archive__get(f->ar, s), *b = archive__get(f->ref, s);

		assert_non_null(a);
		same_json(a, b, "get");
		json_decref(a);
		json_decref(b);
	}
	for(s = 0; s < f->clock + 2; s += 3){
		int64_t fa, fb;

		assert_int_equal(archive__seq_floor(f->ar, s, &fa), MQC_OK);
		assert_int_equal(archive__seq_floor(f->ref, s, &fb), MQC_OK);
		assert_int_equal(fa, fb);
	}
}

/* ---- tests ---- */

/* What a few stores give, spelled out: seq from 1 in order, a copy not
 * stored again, the conversation's count and the markers, a reaction in
 * the read form, a receipt raising the status. */
static void test_store_and_read(void **state)
{
	struct fx *f = *state;
	struct archive_msg react = {.sender = "ben", .recipient = "ann", .id = "r1", .body = "",
		.type = ARCHIVE_TYPE_REACTION, .ref = "a1", .of = "ann", .emoji = "x", .ts = -1};
	struct archive_msg ev = {.sender = "cat", .room = "hall", .id = "e1",
		.body = "{\"event\":\"join\",\"user\":\"cat\",\"by\":\"cat\"}", .type = ARCHIVE_TYPE_EVENT,
		.ts = -1};
	struct archive_conv c;
	bool more, updated;
	json_t *j, *m, *rx;
	int64_t n, found;

	assert_true(text(f, "ann", "ben", NULL, "a1", "hello ben"));
	assert_false(text(f, "ann", "ben", NULL, "a1", "hello ben"));   /* a resend: a copy */
	assert_true(text(f, "ben", "ann", NULL, "b1", "hi ann"));
	react.server_ts = f->clock++;
	assert_true(store_on(f, &react, NULL));
	ev.server_ts = f->clock++;
	assert_true(store_on(f, &ev, NULL));
	assert_true(text(f, "cat", NULL, "hall", "c1", "room text"));
	assert_int_equal(archive__receipt(f->ar, "ann", "a1", "ben", "read", NULL, NULL, &updated), MQC_OK);
	assert_true(updated);
	if(f->ref) assert_int_equal(archive__receipt(f->ref, "ann", "a1", "ben", "read", NULL, NULL, &updated), MQC_OK);
	/* never lowered; a room message keeps "sent" */
	assert_int_equal(archive__receipt(f->ar, "ann", "a1", "ben", "delivered", NULL, NULL, &updated), MQC_OK);
	assert_false(updated);
	assert_int_equal(archive__receipt(f->ar, "cat", "c1", "ann", "read", NULL, NULL, &updated), MQC_OK);
	assert_false(updated);

	j = sync_of(f->ar, "ann", 0, 0, 10, true, &more);
	assert_false(more);
	assert_int_equal(json_array_size(j), 5);
	for(size_t i = 0; i < json_array_size(j); i++){
		assert_int_equal(json_integer_value(json_object_get(json_array_get(j, i), "seq")), (json_int_t)i + 1);
	}
	m = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(m, "body")), "hello ben");
	assert_string_equal(json_string_value(json_object_get(m, "status")), "read");
	rx = json_array_get(json_object_get(m, "reactions"), 0);
	assert_non_null(rx);
	assert_string_equal(json_string_value(json_object_get(rx, "emoji")), "x");
	assert_string_equal(json_string_value(json_array_get(json_object_get(rx, "users"), 0)), "ben");
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 3), "event")), "join");
	json_decref(j);
	/* without the change rows: no reaction row */
	j = sync_of(f->ar, "ann", 0, 0, 10, false, &more);
	assert_int_equal(json_array_size(j), 4);
	json_decref(j);
	/* a page cut: more */
	j = sync_of(f->ar, "ann", 0, 1, 2, true, &more);
	assert_true(more);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "seq")), 2);
	json_decref(j);
	j = archive__history(f->ar, "d:ann|ben", 0, 0, 1, &more);
	assert_int_equal(json_array_size(j), 1);
	assert_true(more);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "b1");
	json_decref(j);

	assert_int_equal(archive__conv_get(f->ar, "ben", "d:ann|ben", &c), MQC_OK);
	assert_int_equal(c.last_seq, 2);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.read_seq, 2);
	assert_int_equal(c.read_n, 2);
	assert_string_equal(c.peer, "ann");
	assert_int_equal(archive__conv_get(f->ar, "ann", "d:ann|ben", &c), MQC_OK);
	assert_int_equal(c.read_seq, 1);
	assert_int_equal(archive__read_set(f->ar, "ann", "d:ann|ben", "ben", NULL, 2, 2), MQC_OK);
	assert_int_equal(archive__read_set(f->ar, "ann", "d:ann|ben", "ben", NULL, 1, 1), MQC_OK);
	assert_int_equal(archive__conv_get(f->ar, "ann", "d:ann|ben", &c), MQC_OK);
	assert_int_equal(c.read_seq, 2);   /* never back */
	assert_int_equal(archive__text_n_at(f->ar, "d:ann|ben", 1, &n), MQC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(archive__conv_target(f->ar, "d:ann|ben", 0, "ann", "a1", 0, &found), MQC_OK);
	assert_int_equal(found, 1);
	assert_int_equal(archive__conv_target(f->ar, "d:ann|ben", 0, "ann", "zz", 0, &found), MQC_ERR_NOTFOUND);
	assert_int_equal(archive__conv_target(f->ar, "r:hall", 4, NULL, NULL, 0, &found), MQC_OK);
	assert_int_equal(archive__count_invalid(f->ar, 2), MQC_OK);
	if(f->ref) assert_int_equal(archive__count_invalid(f->ref, 2), MQC_OK);
	assert_int_equal(archive__probe(f->ar), MQC_OK);
	if(f->ref) assert_int_equal(archive__read_set(f->ref, "ann", "d:ann|ben", "ben", NULL, 2, 2), MQC_OK);
	compare_reads(f);
}

/* A name's next holder may use the ids of the one before: stored, keyed
 * by the new account's created; its own resend is a copy. */
static void test_holder_rule(void **state)
{
	struct fx *f = *state;
	struct holders h = {NULL, 0};
	struct archive_msg m = {.sender = "ann", .recipient = "ben", .id = "x1", .body = "old holder",
		.ts = -1};
	bool more;
	json_t *j;

	m.server_ts = f->clock++;
	assert_true(store_on(f, &m, &h));
	h.name = "ann";
	h.created = f->clock++;
	m.body = "new holder";
	m.server_ts = f->clock++;
	assert_true(store_on(f, &m, &h));
	m.server_ts = f->clock++;
	assert_false(store_on(f, &m, &h));
	j = archive__history(f->ar, "d:ann|ben", h.created, 0, 10, &more);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "body")), "new holder");
	json_decref(j);
	compare_reads(f);
}

/* An edit and a delete, as the edit ops make them: the text changed in
 * place (a tombstone loses its reactions and leaves search), a row of
 * its own that sync returns. */
static void edit_both(struct fx *f, const char *sender, const char *id, const char *room,
		const char *body, const char *who)
{
	struct archive_text ta, tb;
	int64_t sa, sb;

	begin_both(f, false);
	assert_int_equal(archive__text_find(f->ar, sender, id, room, &ta), MQC_OK);
	if(f->ref){
		assert_int_equal(archive__text_find(f->ref, sender, id, room, &tb), MQC_OK);
		assert_memory_equal(&ta, &tb, sizeof(ta));
	}
	if(body){
		assert_int_equal(archive__text_edit(f->ar, &ta, body, "ed1", f->clock, &sa), MQC_OK);
		if(f->ref) assert_int_equal(archive__text_edit(f->ref, &tb, body, "ed1", f->clock, &sb), MQC_OK);
	}else{
		assert_int_equal(archive__text_delete(f->ar, &ta, who, "del1", f->clock, &sa), MQC_OK);
		if(f->ref) assert_int_equal(archive__text_delete(f->ref, &tb, who, "del1", f->clock, &sb), MQC_OK);
	}
	if(f->ref) assert_int_equal(sa, sb);
	f->clock++;
	commit_both(f, false);
}

static void test_edit_delete_search(void **state)
{
	struct fx *f = *state;
	struct archive_msg react = {.sender = "ben", .recipient = "ann", .id = "r1", .body = "",
		.type = ARCHIVE_TYPE_REACTION, .ref = "a2", .of = "ann", .emoji = "x", .ts = -1};
	struct archive_room rr[1] = {{"hall", 0}};
	struct archive_search q = {.text = "hello", .user = "ben", .rooms = rr, .nrooms = 1, .limit = 10};
	struct archive_text t;
	bool more;
	int64_t next;
	json_t *j;

	assert_true(text(f, "ann", "ben", NULL, "a1", "Hello there"));
	assert_true(text(f, "ann", "ben", NULL, "a2", "hello again 100%_done"));
	assert_true(text(f, "cat", NULL, "hall", "c1", "hello hall"));
	react.server_ts = f->clock++;
	assert_true(store_on(f, &react, NULL));
	edit_both(f, "ann", "a1", NULL, "goodbye there", NULL);
	edit_both(f, "ann", "a2", NULL, NULL, "ann");
	assert_int_equal(archive__text_find(f->ar, "ann", "zz", NULL, &t), MQC_ERR_NOTFOUND);
	j = archive__get(f->ar, 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "body")), "");
	assert_null(json_object_get(json_array_get(j, 0), "reactions"));
	json_decref(j);
	j = archive__search(f->ar, &q, &more, &next);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 1);   /* the room's: a1 edited, a2 deleted */
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "c1");
	json_decref(j);
	q.text = "GOODBYE";
	j = archive__search(f->ar, &q, &more, &next);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	q.text = "%_d";   /* LIKE's own characters are literals */
	j = archive__search(f->ar, &q, &more, &next);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	compare_reads(f);
}

/* Random stores in plain transactions and batches (texts, events,
 * reactions, resends, receipts), every read compared with SQLite's. */
static void random_fill(struct fx *f, int rounds)
{
	char id[32], body[64];

	for(int round = 0; round < rounds; round++){
		bool batch = rand_r(&f->seed) % 2, tx = batch || rand_r(&f->seed) % 3 == 0;
		int n = 1 + rand_r(&f->seed) % 6;

		if(tx) begin_both(f, batch);
		for(int i = 0; i < n; i++){
			const char *from = users[rand_r(&f->seed) % 4];
			int kind = rand_r(&f->seed) % 10;

			if(kind < 5){
				bool room = rand_r(&f->seed) % 3 == 0;

				snprintf(id, sizeof(id), "m%d", ++f->ids);
				snprintf(body, sizeof(body), "text %d from %s", f->ids, from);
				text(f, from, room ? NULL : users[rand_r(&f->seed) % 4],
						room ? rooms[rand_r(&f->seed) % 2] : NULL, id, body);
			}else if(kind < 6 && f->ids > 0){
				/* a resend of an earlier id of someone's */
				snprintf(id, sizeof(id), "m%d", 1 + rand_r(&f->seed) % f->ids);
				text(f, from, users[rand_r(&f->seed) % 4], NULL, id, "resent");
			}else if(kind < 8 && f->ids > 0){
				struct archive_msg m = {.sender = from, .type = ARCHIVE_TYPE_REACTION, .body = "",
					.emoji = rand_r(&f->seed) % 2 ? "x" : "y", .remove = rand_r(&f->seed) % 4 == 0,
					.of = users[rand_r(&f->seed) % 4], .ts = -1, .server_ts = f->clock++};
				char ref[32];

				snprintf(ref, sizeof(ref), "m%d", 1 + rand_r(&f->seed) % f->ids);
				m.ref = ref;
				snprintf(id, sizeof(id), "re%d", ++f->ids);
				m.id = id;
				m.recipient = users[rand_r(&f->seed) % 4];
				store_on(f, &m, NULL);
			}else if(kind < 9){
				struct archive_msg m = {.sender = from, .room = rooms[rand_r(&f->seed) % 2],
					.type = ARCHIVE_TYPE_EVENT, .ts = -1, .server_ts = f->clock++,
					.body = "{\"event\":\"join\",\"user\":\"x\",\"by\":\"y\"}"};

				snprintf(id, sizeof(id), "ev%d", ++f->ids);
				m.id = id;
				store_on(f, &m, NULL);
			}else if(f->ids > 0){
				bool a = false, b = false;
				const char *reader = users[rand_r(&f->seed) % 4];

				snprintf(id, sizeof(id), "m%d", 1 + rand_r(&f->seed) % f->ids);
				assert_int_equal(archive__receipt(f->ar, from, id, reader, "delivered", NULL, NULL, &a), MQC_OK);
				if(f->ref) assert_int_equal(archive__receipt(f->ref, from, id, reader, "delivered", NULL, NULL, &b), MQC_OK);
				if(f->ref) assert_int_equal(a, b);
			}
		}
		if(tx) commit_both(f, batch);
	}
}

static void test_random_same_answers(void **state)
{
	struct fx *f = *state;

	random_fill(f, 40);
	compare_reads(f);
}

/* Expiry (a room's, then all but a room), erasure and purge on the same
 * random archive: the same rows go, the conversations and markers left
 * the same. */
static void test_expire_erase_purge(void **state)
{
	struct fx *f = *state;
	int64_t cut, da = 0, db = 0, ca, cb;
	bool done;
	int steps;

	random_fill(f, 40);
	cut = 1000 + (f->clock - 1000) / 3;
	for(int pass = 0; pass < 2; pass++){
		const char *skip[1] = {"yard"};

		ca = cb = 0;
		for(steps = 0, done = false; !done && steps < 1000; steps++){
			assert_int_equal(archive__expire_step(f->ar, pass ? NULL : "r:hall", skip, pass, cut, 7,
						&ca, &da, &done), MQC_OK);
		}
		for(steps = 0, done = false; f->ref && !done && steps < 1000; steps++){
			assert_int_equal(archive__expire_step(f->ref, pass ? NULL : "r:hall", skip, pass, cut, 7,
						&cb, &db, &done), MQC_OK);
		}
		if(f->ref) assert_int_equal(da, db);
		compare_reads(f);
		cut += (f->clock - 1000) / 3;
	}
	assert_true(da > 0);
	assert_int_equal(archive__erase_user(f->ar, "ben", 0, &da), MQC_OK);
	if(f->ref){
		assert_int_equal(archive__erase_user(f->ref, "ben", 0, &db), MQC_OK);
		assert_int_equal(da, db);
	}
	compare_reads(f);
	assert_int_equal(archive__purge(f->ar, cut, &da), MQC_OK);
	if(f->ref){
		assert_int_equal(archive__purge(f->ref, cut, &db), MQC_OK);
		assert_int_equal(da, db);
	}
	compare_reads(f);
}

/* PostgreSQL only: several writers (processes, each its own connection,
 * each sending to r in a conversation of its own, so nothing but the seq
 * lock orders them) store batches while this process syncs r in a loop,
 * moving `after` to the largest seq seen, as an app does. Afterwards a
 * sync from 0 must hold exactly the messages the loop saw: a seq committed
 * after a larger one was seen would be missing from the loop's. */
#define WRITERS 3
#define BATCHES 40
static void test_no_seq_hole_seen(void **state)
{
	struct fx *f = *state;
	pid_t pids[WRITERS];
	int64_t after = 0, seen = 0, total;
	int st, running = WRITERS;
	time_t end = time(NULL) + 60;
	bool more;
	json_t *j;

	for(int w = 0; w < WRITERS; w++){
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if(pids[w] == 0){
			struct archive *ar;
			char err[256], from[16], id[32];

			if(archive__open(f->path, &ar, err, sizeof(err)) != MQC_OK) _exit(2);
			snprintf(from, sizeof(from), "w%d", w);
			for(int b = 0; b < BATCHES; b++){
				int n = 1 + b % 5;

				if(archive__batch_begin(ar) != MQC_OK) _exit(3);
				for(int i = 0; i < n; i++){
					struct archive_msg m = {.sender = from, .recipient = "r", .body = "x", .ts = -1,
						.server_ts = 1000 + b};

					snprintf(id, sizeof(id), "%d.%d", b, i);
					m.id = id;
					if(archive__store(ar, &m, NULL, NULL, NULL) != MQC_OK) _exit(4);
				}
				/* Hold the transaction a moment: what a slow batch does. */
				nanosleep(&(struct timespec){0, (long)(w + 1) * 300000L}, NULL);
				if(archive__batch_commit(ar) != MQC_OK) _exit(5);
			}
			archive__close(ar);
			_exit(0);
		}
	}
	for(;;){
		int was_running = running;

		for(int w = 0; w < WRITERS; w++){
			if(pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == pids[w]){
				assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
				pids[w] = 0;
				running--;
			}
		}
		assert_true(time(NULL) < end);
		j = archive__sync(f->ar, "r", 0, NULL, 0, after, 50, false, &more);
		assert_non_null(j);
		for(size_t i = 0; i < json_array_size(j); i++){
			int64_t s = json_integer_value(json_object_get(json_array_get(j, i), "seq"));

			assert_true(s > after);
			after = s;
			seen++;
		}
		json_decref(j);
		/* Every writer had ended before this sync: it saw the rest. */
		if(was_running == 0 && !more) break;
	}
	total = 0;
	for(int b = 0; b < BATCHES; b++) total += 1 + b % 5;
	total *= WRITERS;
	assert_int_equal(seen, total);
	j = archive__sync(f->ar, "r", 0, NULL, 0, 0, 100000, false, &more);
	assert_int_equal(json_array_size(j), (size_t)total);
	json_decref(j);
}

/* PostgreSQL only: four programs making the schema at once all open it. */
static void test_open_at_once(void **state)
{
	struct fx *f = *state;
	pid_t pids[4];
	int st;

	archive__close(f->ar);
	f->ar = NULL;
	pg_sql("DROP SCHEMA archive CASCADE");
	for(int i = 0; i < 4; i++){
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if(pids[i] == 0){
			struct archive *ar;
			char err[256];
			int rc = archive__open(f->path, &ar, err, sizeof(err));

			if(rc != MQC_OK) fprintf(stderr, "open %d: %s\n", i, err);
			archive__close(ar);
			_exit(rc == MQC_OK ? 0 : 1);
		}
	}
	for(int i = 0; i < 4; i++){
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	open_ok(f->path, &f->ar);
	assert_true(text(f, "ann", "ben", NULL, "a", "after"));
}

/* PostgreSQL only: the server restarted (every connection cut, as a
 * crash would) under an open handle: its next read and its next batch
 * work on a new connection, and the numbering goes on. */
static void test_server_restarted(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	bool more;
	json_t *j;

	assert_true(text(f, "ann", "ben", NULL, "a1", "before"));
	snprintf(cmd, sizeof(cmd), "sh tests/unit/pg_cluster.sh restart '%s'", be.dir);
	assert_int_equal(system(cmd), 0);
	j = archive__history(f->ar, "d:ann|ben", 0, 0, 10, &more);
	if(j == NULL) fail_msg("history after the restart: %s", archive__errmsg(f->ar));
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	assert_int_equal(system(cmd), 0);
	begin_both(f, true);
	assert_true(text(f, "ann", "ben", NULL, "a2", "after"));
	commit_both(f, true);
	j = archive__get(f->ar, 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "body")), "after");
	json_decref(j);
}

/* PostgreSQL only: a schema newer than this build is refused, as on
 * SQLite, and left as it is. */
static void test_newer_schema_and_not_yet(void **state)
{
	struct fx *f = *state;
	struct archive *ar = NULL;
	char err[512] = "", v[16];
	int64_t left = -1;

	assert_int_equal(archive__index_step(f->ar, 0, &left), MQC_OK);   /* no watermark: nothing to do */
	assert_int_equal(left, 0);
	pg_sql("UPDATE archive.meta SET value='99' WHERE key='schema_version'");
	assert_int_equal(archive__open(f->path, &ar, err, sizeof(err)), MQC_ERR_SCHEMA);
	assert_null(ar);
	assert_non_null(strstr(err, "newer than this program's"));
	pg_value("SELECT value FROM archive.meta WHERE key='schema_version'", v, sizeof(v));
	assert_string_equal(v, "99");
}

/* The status of the message with this seq, on the backend under test. */
static void status_is(struct fx *f, int64_t seq, const char *status)
{
	json_t *j = archive__get(f->ar, seq);

	if(j == NULL || json_array_size(j) != 1) fail_msg("no message %lld", (long long)seq);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "status")), status);
	json_decref(j);
}

static void early_is(const char *where, const char *expect)
{
	char sql[256], v[64];

	snprintf(sql, sizeof(sql), "SELECT COALESCE(string_agg(status, ',' ORDER BY reader), '-')"
			" FROM archive.early_receipts WHERE %s", where);
	pg_value(sql, v, sizeof(v));
	assert_string_equal(v, expect);
}

static bool receipt_on(struct fx *f, const char *sender, const char *ref, const char *reader,
		const char *status, struct holders *h)
{
	bool updated = true;

	assert_int_equal(archive__receipt(f->ar, sender, ref, reader, status, created_of, h, &updated),
			MQC_OK);
	return updated;
}

static bool store_one(struct fx *f, const char *from, const char *to, const char *room, const char *id)
{
	struct archive_msg m = {.sender = from, .recipient = to, .room = room, .id = id, .body = "b",
		.ts = f->clock - 5, .server_ts = f->clock++};
	bool stored = false;

	assert_int_equal(archive__store(f->ar, &m, NULL, NULL, &stored), MQC_OK);
	return stored;
}

/* PostgreSQL only: a receipt stored before its message (the sender's
 * node behind) is kept and raises the message once it is stored; a
 * lower one never lowers it; a room message keeps its status; the
 * reader's account rule holds; one that never meets its message goes
 * after a day. */
static void test_receipt_before_message(void **state)
{
	struct fx *f = *state;
	struct holders late = {"dan", 1000000};
	int64_t deleted = 0;

	assert_false(receipt_on(f, "ann", "e1", "ben", "delivered", NULL));
	early_is("id='e1'", "delivered");
	assert_false(receipt_on(f, "ann", "e1", "ben", "read", NULL));
	early_is("id='e1'", "read");
	assert_false(receipt_on(f, "ann", "e1", "ben", "delivered", NULL));
	early_is("id='e1'", "read");
	assert_false(receipt_on(f, "ann", "e2", "ben", "delivered", NULL));
	assert_false(receipt_on(f, "ann", "r1", "ben", "read", NULL));
	assert_false(receipt_on(f, "ann", "e3", "dan", "read", &late));   /* dan's account is newer */
	/* One batch stores them all (as the ingest does): seqs 1-4. */
	assert_int_equal(archive__batch_begin(f->ar), MQC_OK);
	assert_true(store_one(f, "ann", "ben", NULL, "e1"));
	assert_true(store_one(f, "ann", "ben", NULL, "e2"));
	assert_true(store_one(f, "ann", NULL, "hall", "r1"));
	assert_true(store_one(f, "ann", "dan", NULL, "e3"));
	assert_int_equal(archive__batch_commit(f->ar), MQC_OK);
	status_is(f, 1, "read");
	status_is(f, 2, "delivered");
	status_is(f, 3, "sent");
	status_is(f, 4, "sent");
	early_is("true", "-");
	/* Then as before: never lowered, raised once. */
	assert_false(receipt_on(f, "ann", "e1", "ben", "delivered", NULL));
	status_is(f, 1, "read");
	assert_true(receipt_on(f, "ann", "e2", "ben", "read", NULL));
	status_is(f, 2, "read");
	early_is("true", "-");
	/* A store outside a batch (its own transaction) applies them too. */
	assert_false(receipt_on(f, "ben", "e4", "ann", "read", NULL));
	assert_true(store_one(f, "ben", "ann", NULL, "e4"));
	status_is(f, 5, "read");
	/* A receipt whose message never comes is dropped after a day, when
	 * the next early one is kept. */
	assert_false(receipt_on(f, "cat", "never", "ann", "read", NULL));
	assert_false(receipt_on(f, "cat", "recent", "ann", "read", NULL));
	pg_sql("UPDATE archive.early_receipts SET at = at - 86400000 - 60000 WHERE id='never'");
	early_is("sender='cat'", "read,read");
	assert_false(receipt_on(f, "cat", "new", "ann", "delivered", NULL));
	early_is("id='never'", "-");
	early_is("id='recent'", "read");
	early_is("id='new'", "delivered");
	/* Erasing a user takes the receipts given or awaited with them. */
	assert_false(receipt_on(f, "ann", "x", "ben", "read", NULL));
	assert_false(receipt_on(f, "dan", "y", "cat", "read", NULL));
	assert_int_equal(archive__erase_user(f->ar, "ann", 0, &deleted), MQC_OK);
	early_is("true", "read");
	early_is("sender='dan'", "read");
}

/* PostgreSQL only: an archive made at version 2 (without early_receipts)
 * is brought to version 3 on open, its messages kept, and a receipt
 * before its message works on it. */
static void test_upgrade_from_v2(void **state)
{
	struct fx *f = *state;
	char v[16];

	assert_true(store_one(f, "ann", "ben", NULL, "old"));
	archive__close(f->ar);
	f->ar = NULL;
	/* Version 2's form: version 3 only added the table. */
	pg_sql("DROP TABLE archive.early_receipts;"
			" UPDATE archive.meta SET value='2' WHERE key='schema_version'");
	pg_value("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname='archive'"
			" AND tablename='early_receipts'", v, sizeof(v));
	assert_string_equal(v, "0");
	open_ok(f->path, &f->ar);
	pg_value("SELECT value FROM archive.meta WHERE key='schema_version'", v, sizeof(v));
	assert_string_equal(v, "3");
	status_is(f, 1, "sent");
	assert_false(receipt_on(f, "ann", "new", "ben", "read", NULL));
	assert_true(store_one(f, "ann", "ben", NULL, "new"));
	status_is(f, 2, "read");
}

/* On both backends (on SQLite alone, without a reference to compare
 * with: the expectations spelled out still hold). */
static const struct CMUnitTest both[] = {
	cmocka_unit_test_setup_teardown(test_store_and_read, setup, teardown),
	cmocka_unit_test_setup_teardown(test_holder_rule, setup, teardown),
	cmocka_unit_test_setup_teardown(test_random_same_answers, setup, teardown),
	cmocka_unit_test_setup_teardown(test_edit_delete_search, setup, teardown),
	cmocka_unit_test_setup_teardown(test_expire_erase_purge, setup, teardown),
};

/* What only a shared server has: several writers, several openers, its
 * schema version. */
static const struct CMUnitTest pg_only[] = {
	cmocka_unit_test_setup_teardown(test_no_seq_hole_seen, setup, teardown),
	cmocka_unit_test_setup_teardown(test_open_at_once, setup, teardown),
	cmocka_unit_test_setup_teardown(test_server_restarted, setup, teardown),
	cmocka_unit_test_setup_teardown(test_newer_schema_and_not_yet, setup, teardown),
	cmocka_unit_test_setup_teardown(test_receipt_before_message, setup, teardown),
	cmocka_unit_test_setup_teardown(test_upgrade_from_v2, setup, teardown),
};

static int run_pg_tests(void)
{
	int failed = cmocka_run_group_tests_name("archive on postgresql", both, NULL, NULL);

	return failed + cmocka_run_group_tests_name("archive on postgresql, several programs", pg_only,
			NULL, NULL);
}

int main(void)
{
	int failed = cmocka_run_group_tests_name("archive on sqlite", both, NULL, NULL) != 0;

	return pg_run("archive", run_pg_tests) || failed;
}
