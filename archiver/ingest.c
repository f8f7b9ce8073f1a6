/* ingest.c - storing what arrives on chat/inbox/... and chat/room/...
 *
 * Sender, recipient and room come from the topic, never from the payload.
 *
 * A commit per message costs ~150 us of CPU here (four indexes, WAL frames),
 * far from the 50,000 messages/s wanted. So each message goes to the
 * in-memory pending list and its record to the journal buffer; after each
 * read from the broker the buffer is written to the journal file with one
 * write() (ingest__journal_sync), and only then are the PUBACKs sent. The
 * list is committed in one transaction when a batch is full (INGEST_BATCH
 * messages, up to INGEST_BATCH_MAX while a backlog drains: ingest.h),
 * INGEST_MAX_DELAY_MS after the oldest arrived, or before an RPC answer,
 * and only then is the journal emptied. Not when the socket runs dry: the
 * broker sends a QoS 1 subscriber one message per loop pass, so it is dry
 * after nearly every message. At start the journal is replayed; dedup by
 * (sender, id) makes a replay idempotent.
 *
 * When the archive cannot be written the pending list stays in memory and
 * in the journal, and is written first once it can. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "archive.h"
#include "archkey.h"
#include "envelope.h"
#include "err.h"
#include "grow.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "timeutil.h"
#include "topic.h"
#include "userdb.h"

/* Invalid payloads logged per minute; the rest are only counted. */
#define INVALID_LOG_PER_MIN 10
/* Journal record: this header, then the topic, then the payload. */
#define JOURNAL_MAGIC 0x4d514a31u /* "MQJ1" */
struct journal_hdr {
	uint32_t magic;
	uint32_t topic_len;
	uint32_t payload_len;
	uint32_t sum;      /* FNV-1a over topic and payload: a torn tail is seen */
};

/* A message taken from the broker but not yet committed to archive.db. */
struct pending {
	struct pending *next;
	char *topic;
	int64_t received;    /* wall clock ms: the message's server_ts */
	size_t len;
	unsigned char payload[];
};

/* The stores a commit writes to, borrowed from the daemon for its length. */
struct commit {
	struct ingest *in;
	struct archive *ar;
	struct userdb *udb;
};

/* An archive_created_fn (archive.h): when the account user was created,
 * from auth.db; arg is the userdb. */
static int created_of(const char *user, int64_t *created, void *arg)
{
	struct userdb_user u;
	int rc = userdb__user_get(arg, user, &u);

	if(rc == MQC_OK) *created = u.created;
	return rc;
}

/* Count and log (escaped, rate-limited) a payload that is not stored. */
static void invalid(struct commit *cm, const char *topic, const char *why)
{
	struct ingest *in = cm->in;
	char esc[160];
	int64_t now = time__mono_ms();

	in->stats.invalid++;
	archive__count_invalid(cm->ar, 1);
	if(now - in->invalid_window >= 60000){
		if(in->invalid_suppressed){
			log_warnx("%lld more invalid message(s) not logged", (long long)in->invalid_suppressed);
		}
		in->invalid_window = now;
		in->invalid_logged = 0;
		in->invalid_suppressed = 0;
	}
	if(in->invalid_logged >= INVALID_LOG_PER_MIN){
		in->invalid_suppressed++;
		return;
	}
	in->invalid_logged++;
	log_warnx("invalid message on %s not archived: %s",
			log_escape(topic, strlen(topic), esc, sizeof(esc)), why);
}

/* True if topic lies under the filter of every topic of kind, a filter
 * ending in "/#" (inbox, room): it begins with the filter less its '#'. */
static bool under(const char *topic, enum topic_kind kind)
{
	const char *f = topic__filter_all(kind);

	return strncmp(topic, f, strlen(f) - 1) == 0;
}

bool ingest__takes(const char *topic)
{
	return under(topic, TOPIC_INBOX) || under(topic, TOPIC_ROOM);
}

/* Copy a level that is a valid name into out (NAME_MAX_LEN + 1 bytes). */
static bool copy_name(const struct topic_level *l, char *out)
{
	if(!names__valid(l->p, l->n)) return false;
	memcpy(out, l->p, l->n);
	out[l->n] = '\0';
	return true;
}

/* ---- contacts (docs/PROTOCOL.md, "Privacy") ----
 * Whom a person writes to may see them: the first direct message from
 * <from> to <to> makes <to> a contact of <from> in auth.db. The pairs
 * known to be there are remembered by a 64-bit hash (a collision would
 * only skip a write), so the next messages cost a lookup, not a write;
 * the new ones of a batch are written after its commit, in one
 * transaction. The table is emptied when it is 3/4 full (its pairs are
 * then written again as they come: INSERT OR IGNORE). */

struct contact_pair {
	char user[NAME_MAX_LEN + 1];
	char contact[NAME_MAX_LEN + 1];
};

/* The slot of key in the table: where it is, or the empty one where it
 * would go. */
static uint64_t *contact_slot(struct ingest_contacts *c, uint64_t key)
{
	size_t i = (size_t)key & (INGEST_CONTACT_SLOTS - 1);

	while(c->known[i] != 0 && c->known[i] != key) i = (i + 1) & (INGEST_CONTACT_SLOTS - 1);
	return &c->known[i];
}

static void contacts_forget(struct ingest_contacts *c)
{
	if(c->known) memset(c->known, 0, INGEST_CONTACT_SLOTS * sizeof(*c->known));
	c->nknown = 0;
}

/* from wrote to to: note the pair if it is new. Best effort: a pair not
 * noted (out of memory) is noted by the next message. */
static void note_contact(struct ingest *in, const char *from, const char *to)
{
	struct ingest_contacts *c = &in->contacts;
	uint64_t key = (uint64_t)archkey__id_hash(from, to) | 1, *slot;
	struct contact_pair *fresh;

	if(c->known == NULL && (c->known = calloc(INGEST_CONTACT_SLOTS, sizeof(*c->known))) == NULL){
		return;
	}
	if(c->nknown >= INGEST_CONTACT_SLOTS / 4 * 3) contacts_forget(c);
	slot = contact_slot(c, key);
	if(*slot == key) return;
	fresh = grow__one(c->fresh, &c->capfresh, c->nfresh, sizeof(*c->fresh), 64);
	if(fresh == NULL) return;
	c->fresh = fresh;
	snprintf(fresh[c->nfresh].user, sizeof(fresh->user), "%s", from);
	snprintf(fresh[c->nfresh].contact, sizeof(fresh->contact), "%s", to);
	c->nfresh++;
	*slot = key;
	c->nknown++;
}

/* The batch was not committed: its pairs come again with its messages. */
static void drop_batch_contacts(struct ingest_contacts *c)
{
	c->nfresh = 0;
	contacts_forget(c);
}

/* Write the batch's new pairs to auth.db. A failure is logged and the
 * table forgotten, so the pairs are tried again with the next messages;
 * the messages themselves are committed already. */
static void write_contacts(struct ingest *in, struct userdb *udb)
{
	struct ingest_contacts *c = &in->contacts;
	int64_t now = time__now_ms();
	size_t i;
	int rc;

	if(c->nfresh == 0) return;
	rc = udb ? userdb__begin_write(udb) : MQC_ERR_IO;
	for(i = 0; rc == MQC_OK && i < c->nfresh; i++){
		rc = userdb__contact_add(udb, c->fresh[i].user, c->fresh[i].contact, now);
		/* An account deleted since: nothing to write. */
		if(rc == MQC_ERR_NOTFOUND || rc == MQC_ERR_INVAL) rc = MQC_OK;
	}
	if(rc == MQC_OK) rc = userdb__commit(udb);
	metrics__store_write(MS_AUTH, rc);
	if(rc != MQC_OK){
		if(udb) userdb__rollback(udb);
		log_warnx("cannot record %zu new contact(s) in the user store: %s", c->nfresh,
				mqc_strerror(rc));
		contacts_forget(c);
	}
	c->nfresh = 0;
}

/* Decode s (an id if id, else an account name) into out: false if it does
 * not fit or breaks its grammar (the plugin checked it: this is the
 * archiver's second look). */
static bool copy_field(const struct envelope_str *s, char *out, size_t outlen, bool id)
{
	long n = s->ptr ? envelope__unescape(s, out, outlen) : -1;

	if(n <= 0) return false;
	return id ? names__valid_msgid(out, (size_t)n) : names__valid(out, (size_t)n);
}

/* An event's members (env from envelope__parse, type event) as the
 * compact JSON object the archive keeps in its body (archive.h). The names
 * are plain (envelope__parse refuses escapes there). MQC_OK, or
 * MQC_ERR_INVAL if it does not fit. */
static int event_body(const struct envelope *env, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "{\"event\":\"%s\"", envelope__event_name(env->event));

	if(n > 0 && env->user.ptr && (size_t)n < outlen){
		n += snprintf(out + n, outlen - (size_t)n, ",\"user\":\"%.*s\"", (int)env->user.len,
				env->user.ptr);
	}
	if(n > 0 && env->by.ptr && (size_t)n < outlen){
		n += snprintf(out + n, outlen - (size_t)n, ",\"by\":\"%.*s\"", (int)env->by.len,
				env->by.ptr);
	}
	if(n > 0 && (size_t)n < outlen) n += snprintf(out + n, outlen - (size_t)n, "}");
	return n > 0 && (size_t)n < outlen ? MQC_OK : MQC_ERR_INVAL;
}

/* Store or apply one message. MQC_OK when it is dealt with (stored, a
 * duplicate, a receipt applied or ignored, or refused as invalid); an
 * MQC_ERR_* when the archive could not be written. */
static int process(struct commit *cm, const char *topic, const void *payload, size_t len,
		int64_t received)
{
	struct ingest *in = cm->in;
	char a[NAME_MAX_LEN + 1], b[NAME_MAX_LEN + 1], id[MSGID_MAX_LEN + 1];
	char bodybuf[4096], ref[MSGID_MAX_LEN + 1], of[NAME_MAX_LEN + 1];
	char reply_to[MSGID_MAX_LEN + 1], reply_from[NAME_MAX_LEN + 1], emoji[ENVELOPE_EMOJI_MAX * 2 + 1];
	struct archive_msg m;
	struct envelope env;
	struct topic_parts tp;
	const char *why = NULL;
	bool room, done = false;
	char *body;
	int rc;

	/* Sender, recipient and room come from the topic table's parse
	 * (common/topic.h); the message says which shape it missed. */
	topic__parse(topic, &tp);
	room = under(topic, TOPIC_ROOM);
	if(!room && !under(topic, TOPIC_INBOX)){
		invalid(cm, topic, "unexpected topic");
		return MQC_OK;
	}
	if(tp.kind != (room ? TOPIC_ROOM : TOPIC_INBOX) || !copy_name(&tp.a, a) || !copy_name(&tp.b, b)){
		invalid(cm, topic, room ? "not chat/room/<room>/<from>" : "not chat/inbox/<to>/<from>");
		return MQC_OK;
	}
	if(len > INGEST_MAX_PAYLOAD){
		invalid(cm, topic, "payload too large");
		return MQC_OK;
	}
	if(!envelope__parse(payload, len, &env, &why)){
		invalid(cm, topic, why ? why : "not an envelope");
		return MQC_OK;
	}
	if(envelope__unescape(&env.id, id, sizeof(id)) < 0 || !names__valid_msgid(id, strlen(id))){
		invalid(cm, topic, "bad id");
		return MQC_OK;
	}

	if(env.type == ENVELOPE_RECEIPT){
		if(room){
			/* Receipts go to the original sender's inbox; one in a room
			 * refers to nothing we can check. */
			log_debug("receipt on a room topic ignored");
			return MQC_OK;
		}
		if(envelope__unescape(&env.ref, ref, sizeof(ref)) < 0 || !names__valid_msgid(ref, strlen(ref))){
			invalid(cm, topic, "bad ref");
			return MQC_OK;
		}
		/* chat/inbox/<original sender>/<reader> */
		rc = archive__receipt(cm->ar, a, ref, b,
				env.status == ENVELOPE_STATUS_READ ? "read" : "delivered",
				created_of, cm->udb, &done);
		if(rc == MQC_OK){
			in->stats.receipts++;
			if(!done) log_debug("receipt from %s for %s/%s changed nothing", b, a, ref);
		}
		return rc;
	}

	if(env.type == ENVELOPE_EDIT || env.type == ENVELOPE_DELETE || env.type == ENVELOPE_READ){
		/* The archiver's own, published after the RPC that already
		 * wrote what they say (edit and delete rows, read markers). */
		return MQC_OK;
	}
	memset(&m, 0, sizeof(m));
	if(env.type == ENVELOPE_TEXT && env.reply_to.ptr){
		if(!copy_field(&env.reply_to, reply_to, sizeof(reply_to), true)
				|| !copy_field(&env.reply_from, reply_from, sizeof(reply_from), false)){
			invalid(cm, topic, "bad reply_to or reply_from");
			return MQC_OK;
		}
		m.reply_to = reply_to;
		m.reply_from = reply_from;
	}
	if(env.type == ENVELOPE_REACTION){
		if(!copy_field(&env.ref, ref, sizeof(ref), true) || !copy_field(&env.of, of, sizeof(of), false)
				|| envelope__unescape(&env.emoji, emoji, sizeof(emoji)) <= 0){
			invalid(cm, topic, "bad reaction");
			return MQC_OK;
		}
		m.ref = ref;
		m.of = of;
		m.emoji = emoji;
		m.remove = env.remove;
		m.type = ARCHIVE_TYPE_REACTION;
		body = bodybuf;
		bodybuf[0] = '\0';
	}else if(env.type == ENVELOPE_EVENT){
		/* Only a service may publish one, on a room (the plugin's
		 * rule): its members are the stored body (archive.h). */
		if(!room){
			invalid(cm, topic, "event outside a room");
			return MQC_OK;
		}
		if(event_body(&env, bodybuf, sizeof(bodybuf)) != MQC_OK){
			invalid(cm, topic, "bad event");
			return MQC_OK;
		}
		body = bodybuf;
		m.type = ARCHIVE_TYPE_EVENT;
	}else if(env.type == ENVELOPE_TEXT){
		body = env.body.len < sizeof(bodybuf) ? bodybuf : malloc(env.body.len + 1);
		if(body == NULL) return MQC_ERR_NOMEM;
		if(envelope__unescape(&env.body, body, env.body.len + 1) < 0){
			if(body != bodybuf) free(body);
			invalid(cm, topic, "bad body");
			return MQC_OK;
		}
	}else{
		invalid(cm, topic, "unexpected type");
		return MQC_OK;
	}
	m.sender = b;
	if(room) m.room = a;
	else m.recipient = a;
	m.id = id;
	m.body = body;
	m.ts = env.has_ts ? env.ts : -1;
	m.server_ts = received;
	rc = archive__store(cm->ar, &m, created_of, cm->udb, &done);
	if(body != bodybuf) free(body);
	if(rc == MQC_OK){
		if(done) in->stats.stored++;
		else in->stats.duplicates++;
		/* Writing to someone makes them a contact; reacting does not. */
		if(done && !room && env.type == ENVELOPE_TEXT) note_contact(in, b, a);
	}
	return rc;
}

static uint32_t fnv32(uint32_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;

	for(i = 0; i < len; i++){
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* Keep a copy of (topic, payload) at the end of the pending list. One
 * allocation per message: the payload, then the topic, NUL-terminated,
 * after the struct; p->topic points into it, so free(p) frees both. */
static int keep(struct ingest *in, const char *topic, const void *payload, size_t len)
{
	size_t tl = strlen(topic);
	struct pending *p = malloc(sizeof(*p) + len + tl + 1);

	if(p == NULL) return MQC_ERR_NOMEM;
	p->topic = (char *)p->payload + len;
	memcpy(p->topic, topic, tl + 1);
	p->next = NULL;
	p->received = time__now_ms();
	p->len = len;
	if(len) memcpy(p->payload, payload, len);
	if(in->pend_tail) in->pend_tail->next = p;
	else{
		in->pend_head = p;
		in->pend_since = time__mono_ms();
	}
	in->pend_tail = p;
	in->npending++;
	metrics__set(MG_PENDING, (int64_t)in->npending);
	return MQC_OK;
}

/* Add one record to the journal buffer; ingest__journal_sync writes it. */
static int journal_append(struct ingest *in, const char *topic, const void *payload, size_t len)
{
	struct journal_hdr h;
	size_t tl = strlen(topic), total = sizeof(h) + tl + len;
	unsigned char *p;

	if(in->jcap - in->jlen < total){
		size_t cap = in->jcap ? in->jcap : 64 * 1024;

		while(cap - in->jlen < total) cap *= 2;
		p = realloc(in->jbuf, cap);
		if(p == NULL) return MQC_ERR_NOMEM;
		in->jbuf = p;
		in->jcap = cap;
	}
	h.magic = JOURNAL_MAGIC;
	h.topic_len = (uint32_t)tl;
	h.payload_len = (uint32_t)len;
	h.sum = fnv32(fnv32(2166136261u, topic, tl), payload, len);
	p = in->jbuf + in->jlen;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), topic, tl);
	if(len) memcpy(p + sizeof(h) + tl, payload, len);
	in->jlen += total;
	return MQC_OK;
}

/* One write() for every record read since the last: a killed process
 * leaves it whole in the page cache, or (killed before the call) not at
 * all, and nothing in it has been acknowledged yet. */
int ingest__journal_sync(struct ingest *in)
{
	ssize_t n;

	if(in->jlen == 0) return MQC_OK;
	if(in->journal_fd < 0) return MQC_ERR_IO;
	do{
		n = write(in->journal_fd, in->jbuf, in->jlen);
	}while(n < 0 && errno == EINTR);
	if(n != (ssize_t)in->jlen){
		if(n >= 0){
			/* A short write (disk full): cut it off, so replay stays clean. */
			off_t end = lseek(in->journal_fd, 0, SEEK_END);
			if(end >= n && ftruncate(in->journal_fd, end - n) != 0) log_warn("ftruncate journal");
			errno = ENOSPC;
		}
		log_warn("journal %s", in->journal_path);
		return MQC_ERR_IO;
	}
	in->jlen = 0;
	in->stats.journal_writes++;
	return MQC_OK;
}

enum ingest_result ingest__message(struct ingest *in, const char *topic, const void *payload,
		size_t len)
{
	if(keep(in, topic, payload, len) != MQC_OK || journal_append(in, topic, payload, len) != MQC_OK){
		/* Not acknowledged either: the daemon leaves, the broker keeps it. */
		log_error("out of memory taking a message on %s", topic);
		return INGEST_NOMEM;
	}
	in->last_msg = time__mono_ms();
	return in->npending >= in->batch_limit ? INGEST_FULL : INGEST_KEPT;
}

int ingest__flush(struct ingest *in, struct archive *ar, struct userdb *udb)
{
	struct commit cm = { .in = in, .ar = ar, .udb = udb };
	const struct ingest_stats before = in->stats;
	struct pending *p, *next;
	size_t n = in->npending;
	int rc;

	if(in->pend_head == NULL) return MQC_OK;
	if(ar == NULL) return MQC_ERR_IO;
	/* The batch path: conversations and read markers written once per
	 * batch, not per message (archive.h). */
	rc = archive__batch_begin(ar);
	if(rc != MQC_OK) return rc;
	for(p = in->pend_head; p; p = p->next){
		rc = process(&cm, p->topic, p->payload, p->len, p->received);
		if(rc != MQC_OK){
			archive__batch_rollback(ar);
			drop_batch_contacts(&in->contacts);
			return rc;
		}
	}
	rc = archive__batch_commit(ar);
	if(rc != MQC_OK){
		drop_batch_contacts(&in->contacts);
		return rc;
	}
	metrics__committed(&before, &in->stats, time__mono_ms() - in->pend_since);
	write_contacts(in, udb);
	for(p = in->pend_head; p; p = next){
		next = p->next;
		free(p);
	}
	in->pend_head = in->pend_tail = NULL;
	in->npending = 0;
	in->stats.batches++;
	if(n > 1) log_debug("committed a batch of %zu", n);
	/* A full batch: a backlog is draining, the next may be larger
	 * (ingest.h); any other commit (timer, RPC, end) starts again small. */
	if(n >= in->batch_limit){
		in->batch_limit = 2 * in->batch_limit < INGEST_BATCH_MAX ? 2 * in->batch_limit : INGEST_BATCH_MAX;
	}else{
		in->batch_limit = INGEST_BATCH;
	}
	/* Committed: the journal's records, written or not, are all in
	 * archive.db now. */
	in->jlen = 0;
	if(in->journal_fd >= 0 && ftruncate(in->journal_fd, 0) != 0){
		log_warn("truncate %s", in->journal_path);
	}
	return MQC_OK;
}

int ingest__journal_open(struct ingest *in, const char *path)
{
	struct journal_hdr h;
	unsigned char *buf = NULL;
	static char topic[65536];
	size_t n = 0, need;
	off_t good = 0;
	struct stat st;
	FILE *fp;
	int fd;

	snprintf(in->journal_path, sizeof(in->journal_path), "%s", path);
	/* Never through a link: one planted in the data folder would have the
	 * damaged-tail check below truncate any file this process may write. */
	fd = open(in->journal_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if(fd < 0 && errno == ELOOP){
		log_error("%s is a symbolic link: refusing to follow it (the journal is the archiver's"
				" own file; remove the link)", in->journal_path);
		return MQC_ERR_PERM;
	}
	if(fd < 0){
		log_warn("%s", in->journal_path);
		return MQC_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		log_error("%s is not a regular file: refusing to use it as the journal", in->journal_path);
		close(fd);
		return MQC_ERR_PERM;
	}
	fp = fdopen(dup(fd), "r");
	if(fp == NULL){
		close(fd);
		return MQC_ERR_IO;
	}
	while(fread(&h, sizeof(h), 1, fp) == 1){
		if(h.magic != JOURNAL_MAGIC || h.topic_len == 0 || h.topic_len > 65535
				|| h.payload_len > INGEST_MAX_PAYLOAD + 1){
			break;
		}
		need = (size_t)h.topic_len + h.payload_len;
		free(buf);
		buf = malloc(need + 1);
		if(buf == NULL || fread(buf, 1, need, fp) != need) break;
		if(fnv32(2166136261u, buf, need) != h.sum) break;
		memcpy(topic, buf, h.topic_len);
		topic[h.topic_len] = '\0';
		if(keep(in, topic, buf + h.topic_len, h.payload_len) != MQC_OK) break;
		good += (off_t)(sizeof(h) + need);
		n++;
	}
	free(buf);
	fclose(fp);
	if(lseek(fd, 0, SEEK_END) > good){
		/* A record cut by a kill in the middle of nothing we acknowledged:
		 * write() is all or nothing for a killed process, so this is
		 * only ever garbage; drop it so appends stay readable. */
		log_warnx("%s: ignoring a damaged tail after %zu record(s)", in->journal_path, n);
		if(ftruncate(fd, good) != 0) log_warn("ftruncate %s", in->journal_path);
	}
	in->journal_fd = fd;
	if(n) log_info("%zu message(s) to replay from %s", n, in->journal_path);
	return MQC_OK;
}

void ingest__init(struct ingest *in)
{
	memset(in, 0, sizeof(*in));
	in->journal_fd = -1;
	in->batch_limit = INGEST_BATCH;
}

int64_t ingest__index_tick(struct ingest *in, struct archive *ar, int64_t now)
{
	int64_t left = 0, took;
	int rc;

	if(now < in->index_next) return in->index_next;
	if(ar == NULL){
		in->index_next = now + INGEST_INDEX_IDLE_MS;
		return in->index_next;
	}
	rc = archive__index_step(ar, INGEST_INDEX_ROWS, &left);
	took = time__mono_ms() - now;
	if(rc != MQC_OK){
		log_warnx("full-text index: %s (%s); trying again later", mqc_strerror(rc), archive__errmsg(ar));
		left = 0;
	}
	if(took <= 0) took = 1;
	if(left <= 0) in->index_next = now + INGEST_INDEX_IDLE_MS;
	else if(left > INGEST_INDEX_LAG || now - in->last_msg >= INGEST_MAX_DELAY_MS){
		/* too far behind, or nothing arrives: half the thread (the
		 * gaps leave the write lock to the worker's connection) */
		in->index_next = now + took;
	}else{
		in->index_next = now + 5 * took;
	}
	return in->index_next;
}

size_t ingest__pending(const struct ingest *in)
{
	return in->npending;
}

int64_t ingest__due(const struct ingest *in)
{
	return in->pend_head ? in->pend_since + INGEST_MAX_DELAY_MS : INT64_MAX;
}

const char *ingest__journal_path(const struct ingest *in)
{
	return in->journal_path;
}

void ingest__cleanup(struct ingest *in)
{
	struct pending *p, *next;

	for(p = in->pend_head; p; p = next){
		next = p->next;
		free(p);   /* the topic is in the same allocation (keep) */
	}
	in->pend_head = in->pend_tail = NULL;
	in->npending = 0;
	free(in->jbuf);
	in->jbuf = NULL;
	in->jlen = in->jcap = 0;
	free(in->contacts.known);
	free(in->contacts.fresh);
	memset(&in->contacts, 0, sizeof(in->contacts));
	if(in->journal_fd >= 0) close(in->journal_fd);
	in->journal_fd = -1;
}
