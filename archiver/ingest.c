/* ingest.c - storing what arrives on chat/inbox/... and chat/room/...
 *
 * Sender, recipient and room come from the topic, never from the payload.
 * Each message is committed in its own transaction before on_message
 * returns. When the archive cannot be written the message in hand is kept
 * in memory (the pending list) and written first once it can. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "daemon.h"
#include "envelope.h"
#include "err.h"
#include "log.h"
#include "names.h"
#include "timeutil.h"
#include "userdb.h"

/* Invalid payloads logged per minute; the rest are only counted. */
#define INVALID_LOG_PER_MIN 10

bool ingest__is_member(const char *room, const char *user, void *arg)
{
	struct daemon *d = arg;

	return userdb__is_member(d->udb, room, user);
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

/* Split "chat/<kind>/<a>/<b>" into a and b (copied, NUL-terminated).
 * False unless both are valid names and nothing else follows. */
static bool split_topic(const char *rest, char *a, char *b)
{
	const char *slash = strchr(rest, '/');
	size_t la, lb;

	if(slash == NULL) return false;
	la = (size_t)(slash - rest);
	lb = strlen(slash + 1);
	if(!names__valid(rest, la) || !names__valid(slash + 1, lb)) return false;
	memcpy(a, rest, la);
	a[la] = '\0';
	memcpy(b, slash + 1, lb);
	b[lb] = '\0';
	return true;
}

/* Store or apply one message. MQC_OK when it is dealt with (stored, a
 * duplicate, a receipt applied or ignored, or refused as invalid); an
 * MQC_ERR_* when the archive could not be written. */
static int process(struct daemon *d, const char *topic, const void *payload, size_t len)
{
	char a[NAME_MAX_LEN + 1], b[NAME_MAX_LEN + 1], id[MSGID_MAX_LEN + 1];
	struct archive_msg m;
	struct envelope env;
	const char *why = NULL;
	bool room, done = false;
	char *body;
	int rc;

	if(strncmp(topic, "chat/inbox/", 11) == 0){
		room = false;
		if(!split_topic(topic + 11, a, b)){
			invalid(d, topic, "not chat/inbox/<to>/<from>");
			return MQC_OK;
		}
	}else if(strncmp(topic, "chat/room/", 10) == 0){
		room = true;
		if(!split_topic(topic + 10, a, b)){
			invalid(d, topic, "not chat/room/<room>/<from>");
			return MQC_OK;
		}
	}else{
		invalid(d, topic, "unexpected topic");
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
				ingest__is_member, d, &done);
		if(rc == MQC_OK){
			d->stats.receipts++;
			if(!done) log_debug("receipt from %s for %s/%s changed nothing", b, a, ref);
		}
		return rc;
	}

	body = malloc(env.body.len + 1);
	if(body == NULL) return MQC_ERR_NOMEM;
	if(envelope__unescape(&env.body, body, env.body.len + 1) < 0){
		free(body);
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
	m.server_ts = time__now_ms();
	rc = archive__store(d->ar, &m, &done);
	free(body);
	if(rc == MQC_OK){
		if(done) d->stats.stored++;
		else d->stats.duplicates++;
	}
	return rc;
}

int ingest__keep(struct daemon *d, const char *topic, const void *payload, size_t len)
{
	struct pending *p = malloc(sizeof(*p) + len);

	if(p == NULL) return MQC_ERR_NOMEM;
	p->topic = strdup(topic);
	if(p->topic == NULL){
		free(p);
		return MQC_ERR_NOMEM;
	}
	p->next = NULL;
	p->len = len;
	if(len) memcpy(p->payload, payload, len);
	if(d->pend_tail) d->pend_tail->next = p;
	else d->pend_head = p;
	d->pend_tail = p;
	d->npending++;
	return MQC_OK;
}

void ingest__message(struct daemon *d, const char *topic, const void *payload, size_t len)
{
	int rc;

	/* What waits is older: keep the order. */
	if(!d->db_ok || d->pend_head){
		if(ingest__keep(d, topic, payload, len) != MQC_OK){
			log_error("out of memory: a message on %s was lost", topic);
		}
		return;
	}
	rc = process(d, topic, payload, len);
	if(rc == MQC_OK) return;
	if(ingest__keep(d, topic, payload, len) != MQC_OK){
		log_error("out of memory: a message on %s was lost", topic);
	}
	daemon__db_failed(d, rc, "store");
}

int ingest__flush(struct daemon *d)
{
	struct pending *p;
	bool had = d->pend_head != NULL;
	int rc;

	while((p = d->pend_head) != NULL){
		rc = process(d, p->topic, p->payload, p->len);
		if(rc != MQC_OK) return rc;
		d->pend_head = p->next;
		if(d->pend_head == NULL) d->pend_tail = NULL;
		d->npending--;
		free(p->topic);
		free(p);
	}
	if(had){
		log_info("pending messages written");
		if(unlink(d->pending_path) != 0 && errno != ENOENT){
			log_warn("unlink %s", d->pending_path);
		}
	}
	return MQC_OK;
}

/* Record: u32 topic length, topic, u32 payload length, payload (host order:
 * the file only ever goes back to the same machine). */
int ingest__save_pending(struct daemon *d)
{
	char tmp[sizeof(d->pending_path) + 8];
	struct pending *p;
	FILE *fp;
	int fd, ok = 1;

	snprintf(tmp, sizeof(tmp), "%s.new", d->pending_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if(fd < 0) return MQC_ERR_IO;
	fp = fdopen(fd, "w");
	if(fp == NULL){
		close(fd);
		return MQC_ERR_IO;
	}
	for(p = d->pend_head; p && ok; p = p->next){
		uint32_t tl = (uint32_t)strlen(p->topic), pl = (uint32_t)p->len;

		ok = fwrite(&tl, sizeof(tl), 1, fp) == 1 && fwrite(p->topic, 1, tl, fp) == tl
			&& fwrite(&pl, sizeof(pl), 1, fp) == 1 && fwrite(p->payload, 1, pl, fp) == pl;
	}
	ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	if(fclose(fp) != 0) ok = 0;
	if(!ok || rename(tmp, d->pending_path) != 0){
		unlink(tmp);
		return MQC_ERR_IO;
	}
	return MQC_OK;
}

int ingest__load_pending(struct daemon *d)
{
	FILE *fp;
	uint32_t tl, pl;
	char *topic = NULL;
	unsigned char *payload = NULL;
	size_t n = 0;
	int rc = MQC_OK;

	fp = fopen(d->pending_path, "r");
	if(fp == NULL){
		if(errno == ENOENT) return MQC_OK;
		log_warn("%s", d->pending_path);
		return MQC_ERR_IO;
	}
	while(fread(&tl, sizeof(tl), 1, fp) == 1){
		if(tl == 0 || tl > 65535){
			rc = MQC_ERR_INVAL;
			break;
		}
		topic = calloc(1, (size_t)tl + 1);
		if(topic == NULL || fread(topic, 1, tl, fp) != tl || fread(&pl, sizeof(pl), 1, fp) != 1
				|| pl > INGEST_MAX_PAYLOAD + 1){
			rc = MQC_ERR_INVAL;
			break;
		}
		payload = malloc(pl ? pl : 1);
		if(payload == NULL || fread(payload, 1, pl, fp) != pl){
			rc = MQC_ERR_INVAL;
			break;
		}
		if(ingest__keep(d, topic, payload, pl) != MQC_OK){
			rc = MQC_ERR_NOMEM;
			break;
		}
		free(topic);
		free(payload);
		topic = NULL;
		payload = NULL;
		n++;
	}
	free(topic);
	free(payload);
	fclose(fp);
	if(rc != MQC_OK){
		log_error("%s is damaged after %zu message(s); move it away to start", d->pending_path, n);
		return rc;
	}
	log_info("%zu pending message(s) loaded from %s", n, d->pending_path);
	return MQC_OK;
}
