/* test_archive.c - archiver/archive.c, schema version 2: the tables the
 * triggers and the batched indexing keep (convs, reads, reactions,
 * msg_fts) stay what a plain reading of the messages says, whatever mix of
 * stores, reactions, index steps, edits, deletes (tombstones), expiry,
 * purges and erasures ran before, in any order (seeded random runs). The
 * edits and deletes are written as the edit and delete ops write them
 * (UPDATE of body/edited, deleted/deleted_by), through archive__db.
 *
 * Each run drives two archives in step: the plain path (archive__store in
 * its own transaction: the triggers keep convs and reads) and the batch
 * path ingest uses (archive__batch_begin .. archive__batch_commit around
 * runs of stores and receipts of random length: the bookkeeping in
 * memory, written once per batch). Both must pass the checks and hold
 * the same rows in every table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "archive.h"
#include "archive_sqlite.h"
#include "err.h"
#include "log.h"

struct fx {
	char dir[64];
	char path[128];
	char pathb[128];
	struct archive *ar;     /* the plain path */
	struct archive *arb;    /* the batch path */
	bool inbatch;           /* arb is in a batch */
	int64_t clock;       /* server_ts of the next message */
	unsigned seed;
	int ids;
};

static const char *const users[] = {"ann", "ben", "cat", "dan"};
static const char *const rooms[] = {"hall", "yard"};
static const char *const emojis[] = {"\xf0\x9f\x91\x8d", "\xe2\x9d\xa4", "x"};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_archive.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/archive.db", f->dir);
	assert_int_equal(archive__open(f->path, &f->ar, err, sizeof(err)), MQC_OK);
	snprintf(f->pathb, sizeof(f->pathb), "%s/archive-b.db", f->dir);
	assert_int_equal(archive__open(f->pathb, &f->arb, err, sizeof(err)), MQC_OK);
	f->clock = 1000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	archive__close(f->ar);
	archive__close(f->arb);
	for(int i = 0; i < 2; i++){
		const char *path = i ? f->pathb : f->path;

		snprintf(p, sizeof(p), "%s-wal", path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", path);
		unlink(p);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static unsigned rnd(struct fx *f, unsigned n)
{
	return (unsigned)rand_r(&f->seed) % n;
}

/* The single integer of sql on ar (with ?1 bound to a if a >= 0). */
static int64_t one_in(struct archive *ar, const char *sql, int64_t a)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL), SQLITE_OK);
	if(a >= 0) sqlite3_bind_int64(st, 1, a);
	if(sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The same on the plain path's archive. */
static int64_t one(struct fx *f, const char *sql, int64_t a)
{
	return one_in(f->ar, sql, a);
}

/* End the batch path's batch, if one is open. */
static void end_batch(struct fx *f)
{
	if(!f->inbatch) return;
	assert_int_equal(archive__batch_commit(f->arb), MQC_OK);
	f->inbatch = false;
}

/* Store m on both paths: the plain one in its own transaction, the batch
 * one in the open batch (begun if none), which ends now and then. */
static bool store_both(struct fx *f, const struct archive_msg *m)
{
	bool a = false, b = false;

	assert_int_equal(archive__store(f->ar, m, NULL, NULL, &a), MQC_OK);
	if(!f->inbatch){
		assert_int_equal(archive__batch_begin(f->arb), MQC_OK);
		f->inbatch = true;
	}
	assert_int_equal(archive__store(f->arb, m, NULL, NULL, &b), MQC_OK);
	assert_int_equal(a, b);
	if(rnd(f, 12) == 0) end_batch(f);
	return a;
}

static void run_in(struct archive *ar, const char *sql, int64_t a, const char *text)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, a);
	if(text) sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* Run sql on both paths' archives (outside a batch). */
static void run(struct fx *f, const char *sql, int64_t a, const char *text)
{
	end_batch(f);
	run_in(f->ar, sql, a, text);
	run_in(f->arb, sql, a, text);
}

/* A body no other message has: one word the trigram index finds alone. */
static void token(struct fx *f, char *out, size_t len)
{
	snprintf(out, len, "tok%c%c%c%05d", 'a' + rnd(f, 26), 'a' + rnd(f, 26), 'a' + rnd(f, 26), ++f->ids);
}

static void store_text(struct fx *f)
{
	struct archive_msg m;
	char id[32], body[32], ref[32];
	bool again = f->ids > 0 && rnd(f, 20) == 0;

	memset(&m, 0, sizeof(m));
	m.sender = users[rnd(f, 4)];
	if(rnd(f, 3) == 0) m.room = rooms[rnd(f, 2)];
	else m.recipient = users[rnd(f, 4)];
	/* now and then an id used before: stored again only if no copy of
	 * (sender, id) is left */
	snprintf(id, sizeof(id), "m%u", again ? 1 + rnd(f, (unsigned)f->ids) : (unsigned)f->ids + 1);
	token(f, body, sizeof(body));
	m.id = id;
	m.body = body;
	m.ts = -1;
	m.server_ts = f->clock++;
	if(rnd(f, 4) == 0){
		snprintf(ref, sizeof(ref), "m%u", 1 + rnd(f, (unsigned)f->ids));
		m.reply_to = ref;
		m.reply_from = users[rnd(f, 4)];
	}
	if(rnd(f, 10) == 0 && m.room){
		/* a membership event, as the archiver posts them */
		m.type = ARCHIVE_TYPE_EVENT;
		m.body = "{\"event\":\"joined\",\"user\":\"ann\"}";
		m.reply_to = m.reply_from = NULL;
	}
	assert_true(store_both(f, &m) || again);
}

/* A receipt for a random text (in a batch on the batch path, as ingest
 * applies them). */
static void receipt(struct fx *f)
{
	int64_t n = one(f, "SELECT count(*) FROM messages WHERE type='text' AND recipient IS NOT NULL", -1);
	sqlite3_stmt *st;
	char sender[16], recipient[16], id[32];
	bool a = false, b = false;
	const char *status = rnd(f, 2) ? "read" : "delivered";

	if(n <= 0) return;
	assert_int_equal(sqlite3_prepare_v2(archive__db(f->ar), "SELECT sender, recipient, id FROM messages"
				" WHERE type='text' AND recipient IS NOT NULL ORDER BY seq LIMIT 1 OFFSET ?1", -1, &st, NULL),
			SQLITE_OK);
	sqlite3_bind_int64(st, 1, (int64_t)rnd(f, (unsigned)n));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(sender, sizeof(sender), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(recipient, sizeof(recipient), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	assert_int_equal(archive__receipt(f->ar, sender, id, recipient, status, NULL, NULL, &a), MQC_OK);
	if(!f->inbatch){
		assert_int_equal(archive__batch_begin(f->arb), MQC_OK);
		f->inbatch = true;
	}
	assert_int_equal(archive__receipt(f->arb, sender, id, recipient, status, NULL, NULL, &b), MQC_OK);
	assert_int_equal(a, b);
}

static void store_reaction(struct fx *f)
{
	struct archive_msg m;
	char id[32], ref[32];
	int64_t n = one(f, "SELECT count(*) FROM messages WHERE type='text'", -1);
	int64_t seq = n > 0 ? one(f, "SELECT seq FROM messages WHERE type='text' ORDER BY seq LIMIT 1 OFFSET ?1",
			(int64_t)rnd(f, (unsigned)n)) : -1;
	sqlite3_stmt *st;

	memset(&m, 0, sizeof(m));
	snprintf(id, sizeof(id), "r%d", ++f->ids);
	m.id = id;
	m.body = "";
	m.type = ARCHIVE_TYPE_REACTION;
	m.ts = -1;
	m.server_ts = f->clock++;
	m.emoji = emojis[rnd(f, 3)];
	m.remove = rnd(f, 3) == 0;
	if(seq < 0 || rnd(f, 8) == 0){
		/* nothing to react to */
		m.sender = users[rnd(f, 4)];
		m.room = rooms[0];
		m.ref = "nothing";
		m.of = users[0];
		store_both(f, &m);
		return;
	}
	/* in the target's conversation, as the plugin's topic makes it */
	assert_int_equal(sqlite3_prepare_v2(archive__db(f->ar),
				"SELECT sender, recipient, room, id FROM messages WHERE seq=?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(ref, sizeof(ref), "%s", (const char *)sqlite3_column_text(st, 3));
	m.ref = ref;
	m.of = users[0];
	for(int i = 0; i < 4; i++){
		if(strcmp(users[i], (const char *)sqlite3_column_text(st, 0)) == 0) m.of = users[i];
	}
	if(sqlite3_column_type(st, 2) != SQLITE_NULL){
		m.room = strcmp((const char *)sqlite3_column_text(st, 2), rooms[0]) == 0 ? rooms[0] : rooms[1];
		m.sender = users[rnd(f, 4)];
	}else{
		/* one of the two people, to the other */
		bool first = rnd(f, 2) == 0;
		const char *a = m.of, *b = NULL;

		for(int i = 0; i < 4; i++){
			if(strcmp(users[i], (const char *)sqlite3_column_text(st, 1)) == 0) b = users[i];
		}
		m.sender = first ? a : b;
		m.recipient = first ? b : a;
	}
	sqlite3_finalize(st);
	store_both(f, &m);
}

static void edit_or_delete(struct fx *f, bool edit)
{
	int64_t n = one(f, "SELECT count(*) FROM messages WHERE type='text' AND deleted IS NULL", -1);
	int64_t seq;
	char body[32];

	if(n <= 0) return;
	seq = one(f, "SELECT seq FROM messages WHERE type='text' AND deleted IS NULL ORDER BY seq"
			" LIMIT 1 OFFSET ?1", (int64_t)rnd(f, (unsigned)n));
	if(edit){
		token(f, body, sizeof(body));
		run(f, "UPDATE messages SET body=?2, edited=1 WHERE seq=?1", seq, body);
	}else{
		run(f, "UPDATE messages SET body='', deleted=1, deleted_by=?2 WHERE seq=?1", seq, users[0]);
	}
}

/* Everything the triggers and the index steps keep, against the messages,
 * in ar. */
static void check_one(struct archive *ar)
{
	sqlite3 *db = archive__db(ar);
	sqlite3_stmt *st, *q;
	int64_t mark, indexed = 0;

	assert_int_equal(archive__index_mark(ar, &mark), MQC_OK);
	/* the index: exactly the texts not deleted up to the mark, each with its body now */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT seq, body, deleted FROM messages WHERE type='text'",
				-1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT rowid FROM msg_fts WHERE msg_fts MATCH ?1", -1, &q, NULL),
			SQLITE_OK);
	while(sqlite3_step(st) == SQLITE_ROW){
		int64_t seq = sqlite3_column_int64(st, 0);
		bool want = seq <= mark && sqlite3_column_type(st, 2) == SQLITE_NULL;

		if(want) indexed++;
		if(sqlite3_column_bytes(st, 1) == 0) continue;   /* a tombstone: nothing to look for */
		sqlite3_bind_text(q, 1, (const char *)sqlite3_column_text(st, 1), -1, SQLITE_TRANSIENT);
		if(want){
			assert_int_equal(sqlite3_step(q), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int64(q, 0), seq);
		}
		assert_int_equal(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(st);
	assert_int_equal(one_in(ar, "SELECT count(*) FROM msg_fts_docsize", -1), indexed);
	/* conversations: last_seq the last text or event left (0: none), n never below a text's */
	assert_int_equal(one_in(ar, "SELECT count(*) FROM convs AS c WHERE c.last_seq <> COALESCE((SELECT max(seq)"
				" FROM messages WHERE conv=c.conv AND type IN ('text','event')), 0)"
				" OR c.n < COALESCE((SELECT max(n) FROM messages WHERE conv=c.conv), 0)", -1), 0);
	assert_int_equal(one_in(ar, "SELECT count(*) FROM (SELECT DISTINCT conv FROM messages"
				" WHERE type IN ('text','event')) WHERE conv NOT IN (SELECT conv FROM convs)", -1), 0);
	/* n numbers each conversation's texts in seq order, without repeats */
	assert_int_equal(one_in(ar, "SELECT count(*) FROM messages AS a JOIN messages AS b ON a.conv=b.conv"
				" AND a.type='text' AND b.type='text' AND a.seq<b.seq AND a.n>=b.n", -1), 0);
	assert_int_equal(one_in(ar, "SELECT count(*) FROM messages WHERE (type='text') <> (n IS NOT NULL)", -1), 0);
	/* reactions only on texts there and not deleted; markers within their conversation */
	assert_int_equal(one_in(ar, "SELECT count(*) FROM reactions AS r WHERE NOT EXISTS (SELECT 1 FROM messages"
				" WHERE seq=r.seq AND type='text' AND deleted IS NULL)", -1), 0);
	assert_int_equal(one_in(ar, "SELECT count(*) FROM reads AS r JOIN convs AS c ON c.conv=r.conv"
				" WHERE r.read_n > c.n", -1), 0);
	/* nothing left of a conversation: nothing unread in it */
	assert_int_equal(one_in(ar, "SELECT count(*) FROM reads AS r JOIN convs AS c ON c.conv=r.conv"
				" WHERE c.last_seq=0 AND r.read_n <> c.n", -1), 0);
}

/* Every row of sql (all columns, as text) on ar, in one string. */
static char *dump(struct archive *ar, const char *sql)
{
	sqlite3_stmt *st;
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);

	assert_non_null(out);
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(archive__db(ar), sql, -1, &st, NULL), SQLITE_OK);
	while(sqlite3_step(st) == SQLITE_ROW){
		for(int i = 0; i < sqlite3_column_count(st); i++){
			const char *v = (const char *)sqlite3_column_text(st, i);
			size_t vl = v ? strlen(v) : 4;

			while(len + vl + 3 > cap){
				cap *= 2;
				out = realloc(out, cap);
				assert_non_null(out);
			}
			memcpy(out + len, v ? v : "NULL", vl);
			len += vl;
			out[len++] = i + 1 < sqlite3_column_count(st) ? '|' : '\n';
			out[len] = '\0';
		}
	}
	sqlite3_finalize(st);
	return out;
}

/* Both paths right, and holding the same rows. */
static void check(struct fx *f)
{
	static const char *const tables[] = {
		"SELECT * FROM messages ORDER BY seq",
		"SELECT * FROM convs ORDER BY conv",
		"SELECT * FROM reads ORDER BY user, conv",
		"SELECT * FROM reactions ORDER BY seq, user, emoji",
		"SELECT * FROM msg_fts_docsize ORDER BY id",
		"SELECT * FROM meta WHERE key<>'probe' ORDER BY key",
	};

	end_batch(f);
	check_one(f->ar);
	check_one(f->arb);
	for(size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++){
		char *a = dump(f->ar, tables[i]), *b = dump(f->arb, tables[i]);

		assert_string_equal(a, b);
		free(a);
		free(b);
	}
}

static void random_run(struct fx *f, unsigned seed, int steps)
{
	int64_t deleted, deleted_b, left, left_b;
	bool done, done_b;

	f->seed = seed;
	for(int i = 0; i < steps; i++){
		unsigned op = rnd(f, 100);

		if(op < 45) store_text(f);
		else if(op < 62) store_reaction(f);
		else if(op < 65) receipt(f);
		else if(op < 75){
			int rows = 1 + (int)rnd(f, 40);

			end_batch(f);
			assert_int_equal(archive__index_step(f->ar, rows, &left), MQC_OK);
			assert_int_equal(archive__index_step(f->arb, rows, &left_b), MQC_OK);
			assert_int_equal(left, left_b);
		}else if(op < 83) edit_or_delete(f, true);
		else if(op < 90) edit_or_delete(f, false);
		else if(op < 94){
			const char *conv = rnd(f, 2) ? "r:hall" : NULL;
			int64_t cursor = 0, cursor_b = 0;

			end_batch(f);
			deleted = deleted_b = 0;
			do{
				assert_int_equal(archive__expire_step(f->ar, conv, NULL, 0,
							f->clock - 150, 7, &cursor, &deleted, &done), MQC_OK);
				assert_int_equal(archive__expire_step(f->arb, conv, NULL, 0,
							f->clock - 150, 7, &cursor_b, &deleted_b, &done_b), MQC_OK);
				assert_int_equal(done, done_b);
			}while(!done);
			assert_int_equal(deleted, deleted_b);
		}else if(op < 97){
			end_batch(f);
			assert_int_equal(archive__purge(f->ar, f->clock - 200, &deleted), MQC_OK);
			assert_int_equal(archive__purge(f->arb, f->clock - 200, &deleted_b), MQC_OK);
			assert_int_equal(deleted, deleted_b);
		}else{
			const char *user = users[rnd(f, 4)];

			end_batch(f);
			assert_int_equal(archive__erase_user(f->ar, user, 0, &deleted), MQC_OK);
			assert_int_equal(archive__erase_user(f->arb, user, 0, &deleted_b), MQC_OK);
			assert_int_equal(deleted, deleted_b);
		}
		if(i % 25 == 24) check(f);
	}
	end_batch(f);
	for(int k = 0; k < 2; k++){
		struct archive *ar = k ? f->arb : f->ar;

		do{
			assert_int_equal(archive__index_step(ar, 0, &left), MQC_OK);
		}while(left > 0);
	}
	check(f);
	/* caught up: the mark at (or past, when the last rows went) the last seq */
	assert_int_equal(archive__index_mark(f->ar, &left), MQC_OK);
	assert_true(left >= one(f, "SELECT COALESCE(max(seq), 0) FROM messages", -1));
}

static void test_random_runs_keep_every_table_right(void **state)
{
	struct fx *f = *state;

	for(unsigned seed = 1; seed <= 8; seed++) random_run(f, seed, 400);
}

/* The read forms' reactions: emojis in the order of their first reaction
 * still there, users in the order they reacted, duplicates once; a
 * tombstone has none and no body. */
static void test_reactions_in_the_read_form(void **state)
{
	struct fx *f = *state;
	struct archive_msg m;
	json_t *arr, *x;
	char *s;
	const char *who[] = {"ben", "ann", "ben", "ben", "ann", "ann"};
	const char *what[] = {"A", "B", "B", "A", "A", "A"};
	bool rm[] = {false, false, false, false, false, true};
	char id[16];

	memset(&m, 0, sizeof(m));
	m.sender = "ann";
	m.recipient = "ben";
	m.id = "t1";
	m.body = "hello";
	m.ts = -1;
	m.server_ts = 10;
	assert_int_equal(archive__store(f->ar, &m, NULL, NULL, NULL), MQC_OK);
	for(int i = 0; i < 6; i++){
		memset(&m, 0, sizeof(m));
		snprintf(id, sizeof(id), "x%d", i);
		m.sender = who[i];
		m.recipient = strcmp(who[i], "ben") == 0 ? "ann" : "ben";
		m.id = id;
		m.body = "";
		m.type = ARCHIVE_TYPE_REACTION;
		m.ref = "t1";
		m.of = "ann";
		m.emoji = what[i];
		m.remove = rm[i];
		m.ts = -1;
		m.server_ts = 20 + i;
		assert_int_equal(archive__store(f->ar, &m, NULL, NULL, NULL), MQC_OK);
	}
	/* ben: A; ann: B; ben: B; ben: A again (once); ann: A; ann takes A back */
	arr = archive__get(f->ar, 1);
	assert_non_null(arr);
	x = json_object_get(json_array_get(arr, 0), "reactions");
	s = json_dumps(x, JSON_COMPACT);
	assert_string_equal(s, "[{\"emoji\":\"A\",\"users\":[\"ben\"]},{\"emoji\":\"B\",\"users\":[\"ann\",\"ben\"]}]");
	free(s);
	json_decref(arr);
	run(f, "UPDATE messages SET body='', deleted=99, deleted_by=?2 WHERE seq=?1", 1, "ann");
	arr = archive__get(f->ar, 1);
	s = json_dumps(json_array_get(arr, 0), JSON_COMPACT);
	assert_string_equal(s, "{\"seq\":1,\"id\":\"t1\",\"from\":\"ann\",\"to\":\"ben\",\"type\":\"text\","
			"\"body\":\"\",\"ts\":null,\"server_ts\":10,\"status\":\"sent\",\"deleted\":99,"
			"\"deleted_by\":\"ann\"}");
	free(s);
	json_decref(arr);
	assert_int_equal(one(f, "SELECT count(*) FROM reactions", -1), 0);
	/* the reaction rows stay, for sync */
	arr = archive__get(f->ar, 2);
	s = json_dumps(json_array_get(arr, 0), JSON_COMPACT);
	assert_string_equal(s, "{\"seq\":2,\"id\":\"x0\",\"from\":\"ben\",\"to\":\"ann\",\"type\":\"reaction\","
			"\"ref\":\"t1\",\"of\":\"ann\",\"emoji\":\"A\",\"remove\":false,\"ts\":null,\"server_ts\":20,"
			"\"status\":\"sent\"}");
	free(s);
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_runs_keep_every_table_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reactions_in_the_read_form, setup, teardown),
	};

	log_init("test_archive", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
