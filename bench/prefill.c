/* prefill.c - fill an archive.db with --count text messages for the RPC
 * latency runs, through the archiver's own code (archive__store of
 * libmqchat-archiver.a, in transactions of PREFILL_BATCH messages): every
 * row, index and per-conversation record is the one the archiver would
 * have written had the messages come through the broker, only without the
 * broker and the MQTT round trips, which would take an hour for a million.
 *
 * Mix: 5% in the DM s0 <-> r0 (a deep history), 10% in room --room (posted
 * by m<k> for k < --members and, with --peers, one post in ten by c0), with
 * --peers P > 0 15% in the DMs of c0 with c1..c<P> (the asker of the
 * conversation list, search and catch-up runs: P direct conversations and
 * the room), the rest DMs between random s<i> and r<j> (i, j < --pairs).
 * In c0's conversations 3% of the rows after a text are reactions to it
 * and 5% replies quoting it, stored like the others (archive__store applies
 * a reaction to its target).
 * Stored times (server_ts) are spread evenly over the PREFILL_SPAN_MS before
 * now, inside the archiver's default retention, so the accounts must be
 * created before that (bench/setups.py rpc_userdb).
 *
 * Bodies are 4..16 words of a fixed list of common English words, so a
 * trigram index sees realistic text: a word of the list is in about 5% of
 * the messages, the 3 bytes "ing" in about a third, and PREFILL_RARE
 * ("zeppelin", whose trigrams "lin" and "eli" the list shares) in one in
 * 10,000 (bench/README.md, "RPC"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "bench.h"
#include "err.h"
#include "timeutil.h"

/* Messages per transaction. Each commit writes every index page the batch
 * touched (the (sender, id) hash index is touched all over) to the WAL and
 * copies it to the database at the checkpoint: 300,000 messages (schema 1)
 * took 44 s in batches of 20,000, 28 s in batches of 200,000 (same CPU
 * time, less I/O). The WAL stays under a few hundred MB. A bigger page
 * cache (archive__db, cache_size 384 MB) gained nothing: the fill is CPU
 * bound, the archiver's own work per message (about 90 us of CPU a message
 * on the way to 1,000,000 in schema 2, triggers and trigram index included). */
#define PREFILL_BATCH 200000
/* Two days: well inside the default retention (30 days). */
#define PREFILL_SPAN_MS (2LL * 86400 * 1000)
#define PREFILL_RARE "zeppelin"
#define PREFILL_RARE_PER 10000

static const char *const words[] = {
	"the", "and", "you", "that", "was", "for", "are", "with", "his", "they",
	"this", "have", "from", "one", "had", "word", "but", "not", "what", "all",
	"were", "when", "your", "can", "said", "there", "use", "each", "which", "she",
	"how", "their", "will", "other", "about", "out", "many", "then", "them", "these",
	"some", "her", "would", "make", "like", "him", "into", "time", "has", "look",
	"two", "more", "write", "see", "number", "way", "could", "people", "than", "first",
	"water", "been", "call", "who", "now", "find", "long", "down", "day", "did",
	"get", "come", "made", "may", "part", "over", "new", "sound", "take", "only",
	"little", "work", "know", "place", "year", "live", "back", "give", "most", "very",
	"after", "thing", "our", "just", "name", "good", "sentence", "man", "think", "say",
	"great", "where", "help", "through", "much", "before", "line", "right", "too", "mean",
	"old", "any", "same", "tell", "boy", "follow", "came", "want", "show", "also",
	"around", "form", "three", "small", "set", "put", "end", "does", "another", "well",
	"large", "must", "big", "even", "such", "because", "turn", "here", "why", "ask",
	"went", "men", "read", "need", "land", "different", "home", "move", "try", "kind",
	"hand", "picture", "again", "change", "off", "play", "spell", "air", "away", "animal",
	"house", "point", "page", "letter", "mother", "answer", "found", "study", "still", "learn",
	"should", "world", "high", "every", "near", "add", "food", "between", "own", "below",
	"country", "plant", "last", "school", "father", "keep", "tree", "never", "start", "city",
	"earth", "eyes", "light", "thought", "head", "under", "story", "saw", "left", "few",
	"while", "along", "might", "close", "something", "seem", "next", "hard", "open", "example",
	"begin", "life", "always", "those", "both", "paper", "together", "got", "group", "often",
	"meeting", "morning", "evening", "nothing", "going", "bring", "feeling", "sing", "during", "lunch",
	"coffee", "tomorrow", "tonight", "weekend", "train", "ticket", "review", "deploy", "build", "release",
	"missing", "waiting", "running", "working", "thinking", "looking", "coming", "talking", "reading", "sending",
};

#define NWORDS (sizeof(words) / sizeof(words[0]))

/* In c0's conversations (--peers), the share of reactions and of replies
 * among the rows that follow a text (percent). */
#define PREFILL_REACTION_PCT 3
#define PREFILL_REPLY_PCT 5

/* Thumbs up, red heart, face with tears of joy (UTF-8). */
static const char *const emojis[] = { "\xf0\x9f\x91\x8d", "\xe2\x9d\xa4\xef\xb8\x8f", "\xf0\x9f\x98\x82" };

#define NEMOJIS (sizeof(emojis) / sizeof(emojis[0]))

/* The last text of one of c0's conversations: its index + 1 (0: none yet)
 * and sender. */
struct conv_last {
	long idx1;
	char from[40];
};

static unsigned long long next_rnd(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* 4..16 words of the list (and, one time in PREFILL_RARE_PER, PREFILL_RARE
 * among them) into buf, NUL-terminated. */
static void make_body(unsigned long long *s, char *buf, size_t len)
{
	unsigned long long r = next_rnd(s);
	int n = 4 + (int)(r % 13), rare = (r >> 8) % PREFILL_RARE_PER == 0 ? (int)((r >> 24) % (unsigned)n) : -1;
	size_t at = 0;
	int k;

	buf[0] = '\0';
	for(k = 0; k < n && at + 20 < len; k++){
		const char *w = k == rare ? PREFILL_RARE : words[next_rnd(s) % NWORDS];

		at += (size_t)snprintf(buf + at, len - at, "%s%s", k ? " " : "", w);
	}
}

/* Index every text stored so far, as the archiver does after its commits
 * (archive__index_step, the daemon's own batch size): a search then finds
 * the archive indexed as a running archiver keeps it, not a backlog. */
static int index_all(struct archive *ar)
{
	int64_t left = 0;
	int rc;

	do{
		rc = archive__index_step(ar, 0, &left);
	}while(rc == MQC_OK && left > 0);
	return rc;
}

int prefill__archive(const struct bench_opts *o)
{
	struct archive *ar = NULL;
	struct archive_msg m;
	struct conv_last *lasts = NULL;
	char sender[40], rcpt[40], id[40], ref[40], body[256], err[256];
	unsigned long long rnd = 88172645463325252ULL, r;
	int64_t t0 = time__mono_ns(), t1, index_ns = 0, base_ts, step;
	long i, asker_rows = 0, reactions = 0, replies = 0;
	bool stored;
	int rc, conv;

	if(o->archive_db == NULL){
		fprintf(stderr, "Error: prefill needs --archive-db\n");
		return 2;
	}
	err[0] = '\0';
	lasts = calloc((size_t)o->peers + 1, sizeof(*lasts));
	if(lasts == NULL){
		fprintf(stderr, "Error: prefill: out of memory\n");
		return 1;
	}
	base_ts = time__now_ms() - PREFILL_SPAN_MS;
	step = PREFILL_SPAN_MS / o->count > 0 ? PREFILL_SPAN_MS / o->count : 1;
	archive__library_init();
	rc = archive__open(o->archive_db, &ar, err, sizeof(err));
	if(rc != MQC_OK) goto fail;
	rc = archive__begin(ar);
	for(i = 0; rc == MQC_OK && i < o->count; i++){
		r = next_rnd(&rnd);
		memset(&m, 0, sizeof(m));
		m.sender = sender;
		rcpt[0] = '\0';
		conv = -1;
		if(r % 100 < 5){
			snprintf(sender, sizeof(sender), (i & 1) ? "s0" : "r0");
			snprintf(rcpt, sizeof(rcpt), (i & 1) ? "r0" : "s0");
			m.recipient = rcpt;
		}else if(r % 100 < 15){
			if(o->peers > 0 && (r >> 8) % 10 == 0){
				snprintf(sender, sizeof(sender), "c0");
			}else{
				snprintf(sender, sizeof(sender), "m%llu", (r >> 8) % (unsigned long long)o->members);
			}
			m.room = o->room;
			conv = o->peers > 0 ? 0 : -1;
		}else if(o->peers > 0 && r % 100 < 30){
			snprintf(sender, sizeof(sender), "c0");
			conv = 1 + (int)((r >> 8) % (unsigned long long)o->peers);
			snprintf(rcpt, sizeof(rcpt), "c%d", conv);
			if(r & (1ULL << 40)){
				memcpy(sender, rcpt, sizeof(sender));
				snprintf(rcpt, sizeof(rcpt), "c0");
			}
			m.recipient = rcpt;
		}else{
			snprintf(sender, sizeof(sender), "s%llu", (r >> 8) % (unsigned long long)o->pairs);
			snprintf(rcpt, sizeof(rcpt), "r%llu", (r >> 24) % (unsigned long long)o->pairs);
			if(r & (1ULL << 40)){
				char t[40];
				memcpy(t, sender, sizeof(t));
				memcpy(sender, rcpt, sizeof(sender));
				memcpy(rcpt, t, sizeof(rcpt));
			}
			m.recipient = rcpt;
		}
		if(o->peers > 0 && (m.room || strcmp(sender, "c0") == 0 || strcmp(rcpt, "c0") == 0)){
			asker_rows++;
		}
		snprintf(id, sizeof(id), "pf%ld", i);
		make_body(&rnd, body, sizeof(body));
		m.id = id;
		m.body = body;
		if(conv >= 0 && lasts[conv].idx1 > 0){
			/* In c0's conversations, a few reactions and replies to the
			 * conversation's last text, as apps send them. */
			unsigned long long r2 = next_rnd(&rnd);

			snprintf(ref, sizeof(ref), "pf%ld", lasts[conv].idx1 - 1);
			if(r2 % 100 < PREFILL_REACTION_PCT){
				m.type = ARCHIVE_TYPE_REACTION;
				m.ref = ref;
				m.of = lasts[conv].from;
				m.emoji = emojis[(r2 >> 8) % NEMOJIS];
				m.body = "";
				reactions++;
			}else if(r2 % 100 < PREFILL_REACTION_PCT + PREFILL_REPLY_PCT){
				m.reply_to = ref;
				m.reply_from = lasts[conv].from;
				replies++;
			}
		}
		if(conv >= 0 && m.type == NULL){
			lasts[conv].idx1 = i + 1;
			snprintf(lasts[conv].from, sizeof(lasts[conv].from), "%s", sender);
		}
		m.server_ts = base_ts + i * step;
		m.ts = m.server_ts - 40;
		rc = archive__store(ar, &m, NULL, NULL, &stored);
		if(rc == MQC_OK && !stored){
			snprintf(err, sizeof(err), "message %ld taken for a copy", i);
			rc = MQC_ERR_INVAL;
		}
		if(rc == MQC_OK && (i + 1) % PREFILL_BATCH == 0){
			rc = archive__commit(ar);
			t1 = time__mono_ns();
			if(rc == MQC_OK) rc = index_all(ar);
			index_ns += time__mono_ns() - t1;
			if(rc == MQC_OK) rc = archive__begin(ar);
		}
	}
	if(rc == MQC_OK) rc = archive__commit(ar);
	t1 = time__mono_ns();
	if(rc == MQC_OK) rc = index_all(ar);
	index_ns += time__mono_ns() - t1;
	if(rc != MQC_OK) goto fail;
	archive__close(ar);
	free(lasts);
	printf("{\"mode\":\"prefill\",\"rows\":%ld,\"asker_rows\":%ld,\"reactions\":%ld,"
			"\"replies\":%ld,\"seconds\":%.2f,\"index_seconds\":%.2f}\n", o->count, asker_rows,
			reactions, replies, (double)(time__mono_ns() - t0) / 1e9, (double)index_ns / 1e9);
	return 0;
fail:
	fprintf(stderr, "Error: prefill %s: %s\n", o->archive_db,
			err[0] ? err : ar ? archive__errmsg(ar) : mqc_strerror(rc));
	if(ar) archive__rollback(ar);
	archive__close(ar);
	free(lasts);
	return 1;
}
