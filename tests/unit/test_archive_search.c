/* test_archive_search.c - archive__search against a plain reading of the
 * contract: every page put together gives exactly the texts a brute-force
 * scan finds (readable by the asker as history would give them, holding
 * the text case-insensitively, not deleted, edited ones by their body now),
 * newest first, whether the texts are in the trigram index, above its
 * watermark (the search's own small index) or both; and whatever the
 * bounds of a page (few entries, no time). Bodies are ASCII, so the
 * reference folds case with tolower. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "archive.h"
#include "archive_ext.h"
#include "err.h"

#include <cmocka.h>

#define NUSERS 6
#define NROOMS 3
#define NTEXTS 400

static const char *users[NUSERS] = {"ann", "ben", "cat", "dan", "eve", "fay"};
static const char *rooms_all[NROOMS] = {"r1", "r2", "r3"};
static const char *words[] = {"Lunch", "lunchbox", "noon", "\"quoted\"", "AND", "or", "foo*", "(x)",
	"col:umn", "NEAR(a b)", "the", "The", "ZEBRA", "zebra", "x", "ab", "abc"};

/* What the reference knows of each text. */
struct ref_text {
	int64_t seq;
	char sender[8], recipient[8], room[8];
	char body[256];
	int64_t server_ts;
	bool deleted;
};

struct world {
	char dir[64];
	struct archive *ar;
	struct ref_text t[NTEXTS];
	int n;
};

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static void lower(const char *s, char *out, size_t outlen)
{
	size_t i;

	for(i = 0; s[i] && i + 1 < outlen; i++) out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
}

static bool holds(const char *body, const char *text)
{
	char b[256], t[256];

	lower(body, b, sizeof(b));
	lower(text, t, sizeof(t));
	return strstr(b, t) != NULL;
}

/* The asker of a search: a user, in some rooms since some times. */
struct asker {
	const char *user;
	int64_t since;
	struct archive_room rooms[NROOMS];
	size_t nrooms;
};

static bool readable(const struct asker *a, const struct ref_text *t, const char *with, const char *room)
{
	size_t i;

	if(t->deleted) return false;
	if(t->room[0]){
		if(with || (room && strcmp(room, t->room) != 0)) return false;
		for(i = 0; i < a->nrooms; i++){
			if(strcmp(a->rooms[i].name, t->room) == 0) return t->server_ts >= a->rooms[i].since;
		}
		return false;
	}
	if(room) return false;
	if(strcmp(t->sender, a->user) != 0 && strcmp(t->recipient, a->user) != 0) return false;
	if(with){
		const char *peer = strcmp(t->sender, a->user) == 0 ? t->recipient : t->sender;

		if(strcmp(peer, with) != 0) return false;
	}
	return t->server_ts >= a->since;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	char path[128], err[256], id[16], body[256];
	int i, k, nw;

	assert_non_null(w);
	snprintf(w->dir, sizeof(w->dir), "/tmp/mqchat-search-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(path, sizeof(path), "%s/archive.db", w->dir);
	assert_int_equal(archive__open(path, &w->ar, err, sizeof(err)), MQC_OK);
	assert_int_equal(archive__begin(w->ar), MQC_OK);
	for(i = 0; i < NTEXTS; i++){
		struct ref_text *t = &w->t[i];
		struct archive_msg m;
		bool stored = false;

		memset(&m, 0, sizeof(m));
		body[0] = '\0';
		nw = 1 + (int)rnd(5);
		for(k = 0; k < nw; k++){
			strcat(body, k ? " " : "");
			strcat(body, words[rnd(sizeof(words) / sizeof(words[0]))]);
		}
		snprintf(id, sizeof(id), "m%d", i);
		snprintf(t->sender, sizeof(t->sender), "%s", users[rnd(NUSERS)]);
		if(rnd(2)) snprintf(t->room, sizeof(t->room), "%s", rooms_all[rnd(NROOMS)]);
		else snprintf(t->recipient, sizeof(t->recipient), "%s", users[rnd(NUSERS)]);
		snprintf(t->body, sizeof(t->body), "%s", body);
		t->server_ts = 1000 + i;
		m.sender = t->sender;
		m.recipient = t->recipient[0] ? t->recipient : NULL;
		m.room = t->room[0] ? t->room : NULL;
		m.id = id;
		m.body = body;
		m.ts = -1;
		m.server_ts = t->server_ts;
		assert_int_equal(archive__store(w->ar, &m, NULL, NULL, &stored), MQC_OK);
		assert_true(stored);
		t->seq = i + 1;
	}
	assert_int_equal(archive__commit(w->ar), MQC_OK);
	w->n = NTEXTS;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	archive__close(w->ar);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	assert_int_equal(system(cmd), 0);
	free(w);
	return 0;
}

/* Edit and delete some texts, as the ops do (each its own transaction). */
static void change_some(struct world *w)
{
	struct archive_text at;
	char id[16], row[24];
	int i;
	int64_t seq;

	for(i = 0; i < w->n; i += 7){
		struct ref_text *t = &w->t[i];

		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(archive__begin(w->ar), MQC_OK);
		assert_int_equal(archive__text_find(w->ar, t->sender, id, NULL, &at), MQC_OK);
		assert_int_equal(at.seq, t->seq);
		if(i % 2){
			snprintf(row, sizeof(row), "dl-%d", i);
			assert_int_equal(archive__text_delete(w->ar, &at, t->sender, row, 5000 + i, &seq), MQC_OK);
			t->deleted = true;
		}else{
			snprintf(row, sizeof(row), "ed-%d", i);
			snprintf(t->body, sizeof(t->body), "edited ZEBRA lunch %d", i);
			assert_int_equal(archive__text_edit(w->ar, &at, t->body, row, 5000 + i, &seq), MQC_OK);
		}
		assert_int_equal(archive__commit(w->ar), MQC_OK);
	}
}

/* Every page of a search put together (limit, max_scan, budget as
 * given): the seqs found, into got; returns how many. */
static int search_all(struct world *w, const struct asker *a, const char *text, const char *with,
		const char *room, int limit, int max_scan, int budget_ms, int64_t *got)
{
	int64_t before = 0, next = 0;
	int n = 0, pages = 0;
	bool more;

	do{
		struct archive_search q = {.text = text, .user = a->user, .user_since = a->since,
			.rooms = a->rooms, .nrooms = a->nrooms, .with = with, .room = room, .before = before,
			.limit = limit, .max_scan = max_scan, .budget_ms = budget_ms};
		json_t *arr = archive__search(w->ar, &q, &more, &next), *m;
		size_t i;

		assert_non_null(arr);
		assert_true(json_array_size(arr) <= (size_t)limit);
		json_array_foreach(arr, i, m){
			int64_t seq = json_integer_value(json_object_get(m, "seq"));

			assert_true(n < NTEXTS);
			assert_true(n == 0 || seq < got[n - 1]);        /* newest first, no repeats */
			got[n++] = seq;
			assert_string_equal(json_string_value(json_object_get(m, "type")), "text");
		}
		json_decref(arr);
		if(more){
			assert_true(before == 0 || next < before);      /* always progress */
			before = next;
		}
		assert_true(++pages < 10000);
	}while(more);
	return n;
}

static int expected(struct world *w, const struct asker *a, const char *text, const char *with,
		const char *room, int64_t *want)
{
	int i, n = 0;

	for(i = w->n - 1; i >= 0; i--){
		if(readable(a, &w->t[i], with, room) && holds(w->t[i].body, text)) want[n++] = w->t[i].seq;
	}
	return n;
}

static void check_all(struct world *w)
{
	static const char *texts[] = {"lunch", "LUNCH", "\"quoted\"", "foo*", "NEAR(a b)", "col:umn",
		"ZEBRA lunch", " AND ", "the", "(x)", "abc", "noon or"};
	struct asker a;
	int64_t got[NTEXTS], want[NTEXTS];
	size_t i, u;
	int ng, nw, scope;

	for(u = 0; u < NUSERS; u++){
		memset(&a, 0, sizeof(a));
		a.user = users[u];
		a.since = u == 1 ? 1300 : 0;           /* ben is a later holder of his name */
		for(i = 0; i < NROOMS; i++){
			if((u + i) % 2 == 0){
				a.rooms[a.nrooms].name = rooms_all[i];
				a.rooms[a.nrooms].since = i == 0 ? 1200 : 0;   /* r1 made again */
				a.nrooms++;
			}
		}
		for(i = 0; i < sizeof(texts) / sizeof(texts[0]); i++){
			for(scope = 0; scope < 3; scope++){
				const char *with = scope == 1 ? users[(u + 1) % NUSERS] : NULL;
				const char *room = scope == 2 && a.nrooms ? a.rooms[0].name : NULL;
				size_t k;

				nw = expected(w, &a, texts[i], with, room, want);
				ng = search_all(w, &a, texts[i], with, room, 1 + (int)rnd(30), 0, 1000, got);
				assert_int_equal(ng, nw);
				for(k = 0; k < (size_t)nw; k++) assert_int_equal(got[k], want[k]);
				/* Small pages that look at a few entries each. */
				if(scope != 0 && i % 3 != 0) continue;
				ng = search_all(w, &a, texts[i], with, room, 1 + (int)rnd(5), 1 + (int)rnd(40), 1000, got);
				assert_int_equal(ng, nw);
				for(k = 0; k < (size_t)nw; k++) assert_int_equal(got[k], want[k]);
			}
		}
	}
}

static void index_up_to(struct world *w, int rows)
{
	int64_t left = 0;

	assert_int_equal(archive__index_step(w->ar, rows, &left), MQC_OK);
}

static void test_search_matches_a_plain_scan_indexed_or_not(void **state)
{
	struct world *w = *state;
	int64_t mark = -1, left = 0;

	assert_int_equal(archive__index_mark(w->ar, &mark), MQC_OK);
	assert_int_equal(mark, 0);
	check_all(w);                     /* nothing indexed: the search's own index */
	change_some(w);
	check_all(w);
	index_up_to(w, NTEXTS / 2);       /* half: both */
	check_all(w);
	do{
		assert_int_equal(archive__index_step(w->ar, 0, &left), MQC_OK);
	}while(left > 0);
	check_all(w);                     /* all indexed */
}

static void test_fts_literal(void **state)
{
	char out[32];

	(void)state;
	assert_true(archive__fts_literal("lunch", out, sizeof(out)));
	assert_string_equal(out, "\"lunch\"");
	assert_true(archive__fts_literal("a\"b\"", out, sizeof(out)));
	assert_string_equal(out, "\"a\"\"b\"\"\"");
	assert_true(archive__fts_literal("", out, sizeof(out)));
	assert_string_equal(out, "\"\"");
	assert_false(archive__fts_literal("\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"", out, sizeof(out)));
	assert_true(archive__fts_literal("abcdefghijklmnopqrstuvwxyz123", out, sizeof(out)));
	assert_false(archive__fts_literal("abcdefghijklmnopqrstuvwxyz1234", out, sizeof(out)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_search_matches_a_plain_scan_indexed_or_not, setup, teardown),
		cmocka_unit_test(test_fts_literal),
	};

	archive__library_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
