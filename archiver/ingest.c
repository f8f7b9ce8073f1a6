/* ingest.c - storing what arrives on chat/inbox/... and chat/room/...
 *
 * Sender, recipient and room come from the topic, never from the payload.
 *
 * A commit per message costs ~150 us of CPU here (four indexes, WAL frames),
 * far from the 50,000 messages/s wanted. So each message goes to the
 * in-memory pending list and its record to the journal buffer; after each
 * read from the broker the buffer is written to the journal file with one
 * write() (ingest__journal_sync), and only then are the PUBACKs sent. The
 * list is committed in one transaction when INGEST_BATCH messages wait,
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
#include "daemon.h"
#include "envelope.h"
#include "err.h"
#include "log.h"
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

int ingest__created_of(const char *user, int64_t *created, void *arg)
{
	struct daemon *d = arg;
	struct userdb_user u;
	int rc = userdb__user_get(d->udb, user, &u);

	if(rc == MQC_OK) *created = u.created;
	return rc;
}

/* Count and log (escaped, rate-limited) a payload that is not stored. */
static void invalid(struct daemon *d, const char *topic, const char *why)
{
	char esc[160];
	int64_t now = time__mono_ms();

	d->stats.invalid++;
	if(d->ar) archive__count_invalid(d->ar, 1);
	if(now - d->invalid_window >= 60000){
		if(d->invalid_suppressed){
			log_warnx("%lld more invalid message(s) not logged", (long long)d->invalid_suppressed);
		}
		d->invalid_window = now;
		d->invalid_logged = 0;
		d->invalid_suppressed = 0;
	}
	if(d->invalid_logged >= INVALID_LOG_PER_MIN){
		d->invalid_suppressed++;
		return;
	}
	d->invalid_logged++;
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

/* Store or apply one message. MQC_OK when it is dealt with (stored, a
 * duplicate, a receipt applied or ignored, or refused as invalid); an
 * MQC_ERR_* when the archive could not be written. */
static int process(struct daemon *d, const char *topic, const void *payload, size_t len,
		int64_t received)
{
	char a[NAME_MAX_LEN + 1], b[NAME_MAX_LEN + 1], id[MSGID_MAX_LEN + 1];
	char bodybuf[4096];
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
		invalid(d, topic, "unexpected topic");
		return MQC_OK;
	}
	if(tp.kind != (room ? TOPIC_ROOM : TOPIC_INBOX) || !copy_name(&tp.a, a) || !copy_name(&tp.b, b)){
		invalid(d, topic, room ? "not chat/room/<room>/<from>" : "not chat/inbox/<to>/<from>");
		return MQC_OK;
	}
	if(len > INGEST_MAX_PAYLOAD){
		invalid(d, topic, "payload too large");
		return MQC_OK;
	}
	if(!envelope__parse(payload, len, &env, &why)){
		invalid(d, topic, why ? why : "not an envelope");
		return MQC_OK;
	}
	if(envelope__unescape(&env.id, id, sizeof(id)) < 0 || !names__valid_msgid(id, strlen(id))){
		invalid(d, topic, "bad id");
		return MQC_OK;
	}

	if(env.type == ENVELOPE_RECEIPT){
		char ref[MSGID_MAX_LEN + 1];

		if(room){
			/* Receipts go to the original sender's inbox; one in a room
			 * refers to nothing we can check. */
			log_debug("receipt on a room topic ignored");
			return MQC_OK;
		}
		if(envelope__unescape(&env.ref, ref, sizeof(ref)) < 0 || !names__valid_msgid(ref, strlen(ref))){
			invalid(d, topic, "bad ref");
			return MQC_OK;
		}
		/* chat/inbox/<original sender>/<reader> */
		rc = archive__receipt(d->ar, a, ref, b,
				env.status == ENVELOPE_STATUS_READ ? "read" : "delivered",
				ingest__created_of, d, &done);
		if(rc == MQC_OK){
			d->stats.receipts++;
			if(!done) log_debug("receipt from %s for %s/%s changed nothing", b, a, ref);
		}
		return rc;
	}

	body = env.body.len < sizeof(bodybuf) ? bodybuf : malloc(env.body.len + 1);
	if(body == NULL) return MQC_ERR_NOMEM;
	if(envelope__unescape(&env.body, body, env.body.len + 1) < 0){
		if(body != bodybuf) free(body);
		invalid(d, topic, "bad body");
		return MQC_OK;
	}
	memset(&m, 0, sizeof(m));
	m.sender = b;
	if(room) m.room = a;
	else m.recipient = a;
	m.id = id;
	m.body = body;
	m.ts = env.has_ts ? env.ts : -1;
	m.server_ts = received;
	rc = archive__store(d->ar, &m, ingest__created_of, d, &done);
	if(body != bodybuf) free(body);
	if(rc == MQC_OK){
		if(done) d->stats.stored++;
		else d->stats.duplicates++;
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

/* One allocation per message: the payload, then the topic, NUL-terminated,
 * after the struct; p->topic points into it, so free(p) frees both. */
int ingest__keep(struct daemon *d, const char *topic, const void *payload, size_t len)
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
	if(d->pend_tail) d->pend_tail->next = p;
	else{
		d->pend_head = p;
		d->pend_since = time__mono_ms();
	}
	d->pend_tail = p;
	d->npending++;
	return MQC_OK;
}

/* Add one record to the journal buffer; ingest__journal_sync writes it. */
static int journal_append(struct daemon *d, const char *topic, const void *payload, size_t len)
{
	struct journal_hdr h;
	size_t tl = strlen(topic), total = sizeof(h) + tl + len;
	unsigned char *p;

	if(d->jcap - d->jlen < total){
		size_t cap = d->jcap ? d->jcap : 64 * 1024;

		while(cap - d->jlen < total) cap *= 2;
		p = realloc(d->jbuf, cap);
		if(p == NULL) return MQC_ERR_NOMEM;
		d->jbuf = p;
		d->jcap = cap;
	}
	h.magic = JOURNAL_MAGIC;
	h.topic_len = (uint32_t)tl;
	h.payload_len = (uint32_t)len;
	h.sum = fnv32(fnv32(2166136261u, topic, tl), payload, len);
	p = d->jbuf + d->jlen;
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), topic, tl);
	if(len) memcpy(p + sizeof(h) + tl, payload, len);
	d->jlen += total;
	return MQC_OK;
}

/* One write() for every record read since the last: a killed process
 * leaves it whole in the page cache, or (killed before the call) not at
 * all, and nothing in it has been acknowledged yet. */
int ingest__journal_sync(struct daemon *d)
{
	ssize_t n;

	if(d->jlen == 0) return MQC_OK;
	if(d->journal_fd < 0) return MQC_ERR_IO;
	do{
		n = write(d->journal_fd, d->jbuf, d->jlen);
	}while(n < 0 && errno == EINTR);
	if(n != (ssize_t)d->jlen){
		if(n >= 0){
			/* A short write (disk full): cut it off, so replay stays clean. */
			off_t end = lseek(d->journal_fd, 0, SEEK_END);
			if(end >= n && ftruncate(d->journal_fd, end - n) != 0) log_warn("ftruncate journal");
			errno = ENOSPC;
		}
		log_warn("journal %s", d->journal_path);
		return MQC_ERR_IO;
	}
	d->jlen = 0;
	d->stats.journal_writes++;
	return MQC_OK;
}

void ingest__message(struct daemon *d, const char *topic, const void *payload, size_t len)
{
	int rc;

	if(ingest__keep(d, topic, payload, len) != MQC_OK || journal_append(d, topic, payload, len) != MQC_OK){
		/* Not acknowledged either: leave, the broker keeps it. */
		log_error("out of memory taking a message on %s", topic);
		daemon__db_failed(d, MQC_ERR_NOMEM, "memory");
		return;
	}
	if(d->db_ok && d->npending >= INGEST_BATCH){
		rc = ingest__flush(d);
		if(rc != MQC_OK) daemon__db_failed(d, rc, "store");
	}
}

int ingest__flush(struct daemon *d)
{
	struct pending *p, *next;
	size_t n = d->npending;
	int rc;

	if(d->pend_head == NULL) return MQC_OK;
	if(d->ar == NULL) return MQC_ERR_IO;
	rc = archive__begin(d->ar);
	if(rc != MQC_OK) return rc;
	for(p = d->pend_head; p; p = p->next){
		rc = process(d, p->topic, p->payload, p->len, p->received);
		if(rc != MQC_OK){
			archive__rollback(d->ar);
			return rc;
		}
	}
	rc = archive__commit(d->ar);
	if(rc != MQC_OK){
		archive__rollback(d->ar);
		return rc;
	}
	for(p = d->pend_head; p; p = next){
		next = p->next;
		free(p);
	}
	d->pend_head = d->pend_tail = NULL;
	d->npending = 0;
	d->stats.batches++;
	if(n > 1) log_debug("committed a batch of %zu", n);
	/* Committed: the journal's records, written or not, are all in
	 * archive.db now. */
	d->jlen = 0;
	if(d->journal_fd >= 0 && ftruncate(d->journal_fd, 0) != 0){
		log_warn("truncate %s", d->journal_path);
	}
	return MQC_OK;
}

int ingest__journal_open(struct daemon *d)
{
	struct journal_hdr h;
	unsigned char *buf = NULL;
	static char topic[65536];
	size_t n = 0, need;
	off_t good = 0;
	struct stat st;
	FILE *fp;
	int fd;

	/* Never through a link: one planted in the data folder would have the
	 * damaged-tail check below truncate any file this process may write. */
	fd = open(d->journal_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if(fd < 0 && errno == ELOOP){
		log_error("%s is a symbolic link: refusing to follow it (the journal is the archiver's"
				" own file; remove the link)", d->journal_path);
		return MQC_ERR_PERM;
	}
	if(fd < 0){
		log_warn("%s", d->journal_path);
		return MQC_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		log_error("%s is not a regular file: refusing to use it as the journal", d->journal_path);
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
		if(ingest__keep(d, topic, buf + h.topic_len, h.payload_len) != MQC_OK) break;
		good += (off_t)(sizeof(h) + need);
		n++;
	}
	free(buf);
	fclose(fp);
	if(lseek(fd, 0, SEEK_END) > good){
		/* A record cut by a kill in the middle of nothing we acknowledged:
		 * write() is all or nothing for a killed process, so this is
		 * only ever garbage; drop it so appends stay readable. */
		log_warnx("%s: ignoring a damaged tail after %zu record(s)", d->journal_path, n);
		if(ftruncate(fd, good) != 0) log_warn("ftruncate %s", d->journal_path);
	}
	d->journal_fd = fd;
	if(n) log_info("%zu message(s) to replay from %s", n, d->journal_path);
	return MQC_OK;
}
