/* spool.c - the node's spool: DATA/spool, a ring of records in a shared
 * file mapping (the layout, the publishing order and the wake-up protocol
 * are in spool.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "rand.h"
#include "spool.h"
#include "timeutil.h"

#define LINE 64

/* The shared header. Only the __atomic builtins touch the fields that two
 * processes use (positions, seq, sleeping words). */
struct spool_header {
	/* line 0: written once, at creation */
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t ring_size;
	uint64_t epoch;
	int64_t created_ms;
	unsigned char pad0[LINE - 40];
	/* line 1: the writer's */
	uint64_t write_pos;
	uint64_t next_seq;
	unsigned char pad1[LINE - 16];
	/* lines 2..: two per reader */
	struct {
		uint64_t pos;           /* consumed up to here */
		uint32_t hard;          /* 1: the writer never overwrites past pos */
		unsigned char pad[LINE - 12];
		uint32_t sleeping;      /* the futex word: 1 while the reader waits */
		unsigned char pad2[LINE - 4];
	} readers[SPOOL_READERS];
};

_Static_assert(sizeof(struct spool_header) == LINE * (2 + 2 * SPOOL_READERS), "spool header lines");
_Static_assert(sizeof(struct spool_header) <= SPOOL_HEADER_SIZE, "spool header fits its page");

/* Offsets in a MESSAGE record (spool.h). */
enum {
	R_LEN = 0, R_KIND = 4, R_MAGIC = 6, R_SEQ = 8, R_TIME = 16, R_FLAGS = 24,
	R_PAYLOAD_LEN = 28, R_CID_LEN = 32, R_TOPIC_LEN = 34, R_CORR_LEN = 36, R_RESP_LEN = 38,
};
_Static_assert(R_RESP_LEN + 2 == SPOOL_REC_HEAD, "record head");

#define PAD_HEAD 8              /* len, kind, magic */
#define KNOWN_FLAGS (SPOOL_F_STORE | SPOOL_F_FORWARD)
#define STR_MAX 0xffffu

struct spool {
	struct spool_header *h;
	unsigned char *ring;
	uint64_t ring_size;
	size_t map_len;
	int fd;                     /* the writer's, holding its flock; else -1 */
	bool writer;
	/* The writer's own copies: it is the only one to change them. */
	uint64_t wpos, seq;
	uint64_t limit;             /* writes may reach this far (a cached bound) */
};

static uint64_t align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* The lowest position of a hard reader (the writer may write up to it
 * plus the ring's size). */
static uint64_t slowest(const struct spool_header *h, uint64_t wpos)
{
	uint64_t low = wpos, p;
	int i;

	for(i=0; i<SPOOL_READERS; i++){
		if(!__atomic_load_n(&h->readers[i].hard, __ATOMIC_RELAXED)) continue;
		p = __atomic_load_n(&h->readers[i].pos, __ATOMIC_ACQUIRE);
		if(p < low) low = p;
	}
	return low;
}

/* ---- creation and opening ---- */

/* Build a complete spool under a temporary name beside path, then link()
 * it into place: whoever opens path sees a whole header or no file. A
 * concurrent creator that links first wins; the loser opens its file.
 * MQC_OK (created, or found made by another), or an error with err. */
static int create(const char *path, uint64_t ring, char *err, size_t errlen)
{
	struct spool_header h;
	char tmp[PATH_MAX];
	int fd, rc, tries;

	if((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >= sizeof(tmp)){
		mqc_seterr(err, errlen, "%s: path too long", path);
		return MQC_ERR_INVAL;
	}
	/* A file of that name is one this pid left behind in an earlier life
	 * (killed while creating): take its place. */
	for(tries=0; ; tries++){
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if(fd >= 0 || errno != EEXIST || tries > 0) break;
		(void)unlink(tmp);
	}
	if(fd < 0){
		mqc_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return errno == EACCES || errno == EPERM ? MQC_ERR_PERM : MQC_ERR_IO;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SPOOL_MAGIC, sizeof(h.magic));
	h.version = SPOOL_VERSION;
	h.header_size = SPOOL_HEADER_SIZE;
	h.ring_size = ring;
	h.created_ms = time__now_ms();
	h.next_seq = 1;
	h.readers[SPOOL_READER_ARCHIVER].hard = 1;
	if(rand__bytes(&h.epoch, sizeof(h.epoch)) != MQC_OK){
		h.epoch = (uint64_t)time__mono_ns() ^ ((uint64_t)getpid() << 32);
	}
	/* Blocks reserved now: a write into a hole of a full disk through the
	 * mapping would kill the broker with SIGBUS. */
	rc = posix_fallocate(fd, 0, (off_t)(SPOOL_HEADER_SIZE + ring));
	if(rc != 0){
		mqc_seterr(err, errlen, "cannot reserve %llu MiB for %s: %s",
				(unsigned long long)(ring >> 20), path, strerror(rc));
		goto fail;
	}
	if(pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || fsync(fd) != 0){
		mqc_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if(link(tmp, path) != 0 && errno != EEXIST){
		mqc_seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto fail;
	}
	(void)unlink(tmp);
	close(fd);
	return MQC_OK;

fail:
	(void)unlink(tmp);
	close(fd);
	return MQC_ERR_IO;
}

/* Check a mapped header against the file's size; MQC_OK or
 * MQC_ERR_CORRUPT with err. */
static int check_header(const struct spool_header *h, uint64_t file_size, const char *path,
		char *err, size_t errlen)
{
	uint64_t ring = h->ring_size, w, p;
	int i;

	if(memcmp(h->magic, SPOOL_MAGIC, sizeof(h->magic)) != 0){
		mqc_seterr(err, errlen, "%s is not a spool file", path);
		return MQC_ERR_CORRUPT;
	}
	if(h->version != SPOOL_VERSION || h->header_size != SPOOL_HEADER_SIZE){
		mqc_seterr(err, errlen, "%s is a spool of version %u, this program reads version %d",
				path, h->version, SPOOL_VERSION);
		return MQC_ERR_CORRUPT;
	}
	if(ring < ((uint64_t)SPOOL_MB_MIN << 20) || ring > ((uint64_t)SPOOL_MB_MAX << 20)
			|| ring % (1u << 20) != 0 || file_size != SPOOL_HEADER_SIZE + ring){
		mqc_seterr(err, errlen, "%s: ring of %llu bytes in a file of %llu bytes", path,
				(unsigned long long)ring, (unsigned long long)file_size);
		return MQC_ERR_CORRUPT;
	}
	w = __atomic_load_n(&h->write_pos, __ATOMIC_ACQUIRE);
	if(w % 8 != 0 || h->next_seq == 0){
		mqc_seterr(err, errlen, "%s: bad write position %llu", path, (unsigned long long)w);
		return MQC_ERR_CORRUPT;
	}
	for(i=0; i<SPOOL_READERS; i++){
		p = __atomic_load_n(&h->readers[i].pos, __ATOMIC_ACQUIRE);
		if(p > w || p % 8 != 0 || (h->readers[i].hard && w - p > ring)){
			mqc_seterr(err, errlen, "%s: reader %d at %llu, writer at %llu", path, i,
					(unsigned long long)p, (unsigned long long)w);
			return MQC_ERR_CORRUPT;
		}
	}
	return MQC_OK;
}

int spool__open(const char *path, size_t size_mb, int flags, struct spool **out,
		char *err, size_t errlen)
{
	struct spool *s;
	struct stat st;
	void *map;
	uint64_t ring = (uint64_t)size_mb << 20;
	int fd, rc, tries;

	*out = NULL;
	if(size_mb != 0 && (size_mb < SPOOL_MB_MIN || size_mb > SPOOL_MB_MAX)){
		mqc_seterr(err, errlen, "spool size %zu MiB: must be %d to %d", size_mb,
				SPOOL_MB_MIN, SPOOL_MB_MAX);
		return MQC_ERR_INVAL;
	}
	if((flags & SPOOL_OPEN_WRITER) && size_mb == 0){
		mqc_seterr(err, errlen, "%s: the writer must give the spool's size", path);
		return MQC_ERR_INVAL;
	}
	for(tries=0; ; tries++){
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if(fd >= 0 || errno != ENOENT || tries > 0) break;
		if(size_mb == 0){
			mqc_seterr(err, errlen, "%s does not exist yet (the broker makes it when"
					" plugin_opt_spool_mb is set)", path);
			return MQC_ERR_NOTFOUND;
		}
		rc = create(path, ring, err, errlen);
		if(rc) return rc;
	}
	if(fd < 0){
		mqc_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		if(errno == ENOENT) return MQC_ERR_NOTFOUND;
		return errno == EACCES || errno == EPERM ? MQC_ERR_PERM : MQC_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		mqc_seterr(err, errlen, "%s is not a regular file", path);
		close(fd);
		return MQC_ERR_IO;
	}
	if((uint64_t)st.st_size < SPOOL_HEADER_SIZE + ((uint64_t)SPOOL_MB_MIN << 20)
			|| (uint64_t)st.st_size > SPOOL_HEADER_SIZE + ((uint64_t)SPOOL_MB_MAX << 20)){
		mqc_seterr(err, errlen, "%s is not a spool file (%lld bytes)", path, (long long)st.st_size);
		close(fd);
		return MQC_ERR_CORRUPT;
	}
	if((flags & SPOOL_OPEN_WRITER) && flock(fd, LOCK_EX | LOCK_NB) != 0){
		rc = errno == EWOULDBLOCK ? MQC_ERR_BUSY : MQC_ERR_IO;
		mqc_seterr(err, errlen, rc == MQC_ERR_BUSY ? "%s is written by another broker"
				: "cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if(map == MAP_FAILED){
		mqc_seterr(err, errlen, "cannot map %s: %s", path, strerror(errno));
		close(fd);
		return errno == ENOMEM ? MQC_ERR_NOMEM : MQC_ERR_IO;
	}
	rc = check_header(map, (uint64_t)st.st_size, path, err, errlen);
	if(rc == MQC_OK && size_mb != 0 && ((struct spool_header *)map)->ring_size != ring){
		mqc_seterr(err, errlen, "%s has a ring of %llu MiB, not %zu: to resize it, stop the"
				" broker, let the archiver read everything, then remove the file", path,
				(unsigned long long)(((struct spool_header *)map)->ring_size >> 20), size_mb);
		rc = MQC_ERR_INVAL;
	}
	s = rc == MQC_OK ? calloc(1, sizeof(*s)) : NULL;
	if(s == NULL){
		if(rc == MQC_OK){
			mqc_seterr(err, errlen, "out of memory");
			rc = MQC_ERR_NOMEM;
		}
		munmap(map, (size_t)st.st_size);
		close(fd);
		return rc;
	}
	s->h = map;
	s->ring = (unsigned char *)map + SPOOL_HEADER_SIZE;
	s->ring_size = s->h->ring_size;
	s->map_len = (size_t)st.st_size;
	s->writer = (flags & SPOOL_OPEN_WRITER) != 0;
	if(s->writer){
		s->fd = fd;             /* the lock lives as long as this descriptor */
		s->wpos = __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE);
		s->seq = s->h->next_seq;
		s->limit = slowest(s->h, s->wpos) + s->ring_size;
	}else{
		s->fd = -1;
		close(fd);
	}
	*out = s;
	return MQC_OK;
}

void spool__close(struct spool *s)
{
	if(s == NULL) return;
	munmap(s->h, s->map_len);
	if(s->fd >= 0) close(s->fd);
	free(s);
}

/* ---- the writer ---- */

static void put16(unsigned char *p, size_t v)
{
	uint16_t x = (uint16_t)v;

	memcpy(p, &x, sizeof(x));
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* After publishing: wake the readers that said they sleep. The seq_cst
 * store of the position before this seq_cst load pairs with the reader's
 * store of its flag before its load of the position (spool.h). */
static void wake_sleepers(struct spool_header *h)
{
	int i;

	for(i=0; i<SPOOL_READERS; i++){
		if(__atomic_load_n(&h->readers[i].sleeping, __ATOMIC_SEQ_CST) == 0) continue;
		if(__atomic_exchange_n(&h->readers[i].sleeping, 0, __ATOMIC_SEQ_CST) == 0) continue;
		(void)syscall(SYS_futex, &h->readers[i].sleeping, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

int spool__append(struct spool *s, uint32_t flags, const char *client_id, const char *topic,
		const void *payload, size_t len, const void *corr, size_t corr_len, const char *resp_topic)
{
	size_t cid_len = strlen(client_id), topic_len = strlen(topic);
	size_t resp_len = resp_topic ? strlen(resp_topic) : 0;
	uint64_t need, off, tail, total, seq;
	unsigned char *p;

	if(!s->writer) return MQC_ERR_INVAL;
	if(corr == NULL) corr_len = 0;
	if(cid_len > STR_MAX || topic_len > STR_MAX || resp_len > STR_MAX || corr_len > STR_MAX
			|| len > UINT32_MAX){
		return MQC_ERR_TOOBIG;
	}
	need = align8(SPOOL_REC_HEAD + cid_len + 1 + topic_len + 1 + (resp_len ? resp_len + 1 : 0)
			+ corr_len + len);
	if(need > s->ring_size) return MQC_ERR_TOOBIG;
	off = s->wpos % s->ring_size;
	tail = s->ring_size - off;
	total = need <= tail ? need : tail + need;
	if(s->wpos + total > s->limit){
		/* The cached bound is old: look at the readers again (only now,
		 * so a spool with room reads no other process's line). */
		s->limit = slowest(s->h, s->wpos) + s->ring_size;
		if(s->wpos + total > s->limit) return MQC_ERR_FULL;
	}
	if(need > tail){
		p = s->ring + off;
		put32(p + R_LEN, (uint32_t)tail);
		put16(p + R_KIND, SPOOL_PAD);
		put16(p + R_MAGIC, SPOOL_REC_MAGIC);
		s->wpos += tail;
		off = 0;
	}
	p = s->ring + off;
	seq = s->seq;
	put32(p + R_LEN, (uint32_t)need);
	put16(p + R_KIND, SPOOL_MESSAGE);
	put16(p + R_MAGIC, SPOOL_REC_MAGIC);
	memcpy(p + R_SEQ, &seq, sizeof(seq));
	{
		int64_t now = time__now_ms();

		memcpy(p + R_TIME, &now, sizeof(now));
	}
	put32(p + R_FLAGS, flags);
	put32(p + R_PAYLOAD_LEN, (uint32_t)len);
	put16(p + R_CID_LEN, cid_len);
	put16(p + R_TOPIC_LEN, topic_len);
	put16(p + R_CORR_LEN, corr_len);
	put16(p + R_RESP_LEN, resp_len);
	p += SPOOL_REC_HEAD;
	memcpy(p, client_id, cid_len + 1);
	p += cid_len + 1;
	memcpy(p, topic, topic_len + 1);
	p += topic_len + 1;
	if(resp_len){
		memcpy(p, resp_topic, resp_len + 1);
		p += resp_len + 1;
	}
	if(corr_len) memcpy(p, corr, corr_len);
	p += corr_len;
	if(len) memcpy(p, payload, len);
	p += len;
	memset(p, 0, (size_t)(s->ring + off + need - p));

	/* Publish: seq first, so a kill between the two stores skips a number
	 * rather than reuses one. */
	s->seq = seq + 1;
	s->wpos += need;
	__atomic_store_n(&s->h->next_seq, s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h->write_pos, s->wpos, __ATOMIC_SEQ_CST);
	wake_sleepers(s->h);
	return MQC_OK;
}

/* ---- readers ---- */

static uint16_t get16(const unsigned char *p)
{
	uint16_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

/* A string of n bytes at p followed by its NUL, with no NUL inside. */
static bool whole_string(const unsigned char *p, size_t n)
{
	return p[n] == '\0' && memchr(p, '\0', n) == NULL;
}

int spool__parse(const unsigned char *buf, size_t avail, struct spool_rec *rec)
{
	uint32_t len, plen;
	uint16_t kind, cid_len, topic_len, corr_len, resp_len;
	uint64_t body;
	const unsigned char *p;

	memset(rec, 0, sizeof(*rec));
	if(avail < PAD_HEAD) return MQC_ERR_CORRUPT;
	/* Each field is read once into a local: a writer gone wrong cannot
	 * change a length between its check and its use. */
	len = get32(buf + R_LEN);
	kind = get16(buf + R_KIND);
	if(get16(buf + R_MAGIC) != SPOOL_REC_MAGIC || len < PAD_HEAD || len % 8 != 0 || len > avail){
		return MQC_ERR_CORRUPT;
	}
	if(kind == SPOOL_PAD){
		rec->kind = SPOOL_PAD;
		rec->end = len;
		return MQC_OK;
	}
	if(kind != SPOOL_MESSAGE || len < SPOOL_REC_HEAD) return MQC_ERR_CORRUPT;
	memcpy(&rec->seq, buf + R_SEQ, sizeof(rec->seq));
	memcpy(&rec->time_ms, buf + R_TIME, sizeof(rec->time_ms));
	rec->flags = get32(buf + R_FLAGS);
	plen = get32(buf + R_PAYLOAD_LEN);
	cid_len = get16(buf + R_CID_LEN);
	topic_len = get16(buf + R_TOPIC_LEN);
	corr_len = get16(buf + R_CORR_LEN);
	resp_len = get16(buf + R_RESP_LEN);
	body = (uint64_t)SPOOL_REC_HEAD + cid_len + 1u + topic_len + 1u
		+ (resp_len ? resp_len + 1u : 0) + corr_len + plen;
	if(align8(body) != len || rec->seq == 0 || topic_len == 0 || (rec->flags & ~KNOWN_FLAGS) != 0){
		goto corrupt;
	}
	p = buf + SPOOL_REC_HEAD;
	if(!whole_string(p, cid_len)) goto corrupt;
	rec->client_id = (const char *)p;
	p += cid_len + 1u;
	if(!whole_string(p, topic_len)) goto corrupt;
	rec->topic = (const char *)p;
	p += topic_len + 1u;
	if(resp_len){
		if(!whole_string(p, resp_len)) goto corrupt;
		rec->resp_topic = (const char *)p;
		p += resp_len + 1u;
	}
	if(corr_len){
		rec->corr = p;
		rec->corr_len = corr_len;
		p += corr_len;
	}
	rec->payload = p;
	rec->len = plen;
	rec->kind = SPOOL_MESSAGE;
	rec->end = len;
	return MQC_OK;

corrupt:
	memset(rec, 0, sizeof(*rec));
	return MQC_ERR_CORRUPT;
}

int spool__read(struct spool *s, uint64_t *pos, struct spool_rec *rec)
{
	uint64_t w, p, off, avail;
	int pads;

	/* At most one PAD before a message: after it the ring starts again. */
	for(pads=0; pads<2; pads++){
		w = __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE);
		p = *pos;
		if(p == w) return MQC_ERR_AGAIN;
		if(p > w || w - p > s->ring_size || p % 8 != 0) return MQC_ERR_CORRUPT;
		off = p % s->ring_size;
		avail = s->ring_size - off;
		if(w - p < avail) avail = w - p;
		if(spool__parse(s->ring + off, (size_t)avail, rec) != MQC_OK) return MQC_ERR_CORRUPT;
		if(rec->kind == SPOOL_MESSAGE){
			rec->end += p;
			return MQC_OK;
		}
		/* A PAD reaches exactly to the ring's end. */
		if(rec->end != s->ring_size - off) return MQC_ERR_CORRUPT;
		*pos = p + rec->end;
	}
	return MQC_ERR_CORRUPT;
}

uint64_t spool__position(const struct spool *s, enum spool_reader who)
{
	return __atomic_load_n(&s->h->readers[who].pos, __ATOMIC_ACQUIRE);
}

void spool__consume(struct spool *s, enum spool_reader who, uint64_t pos)
{
	uint64_t cur = __atomic_load_n(&s->h->readers[who].pos, __ATOMIC_RELAXED);

	/* Only forward, and never past what was written. */
	if(pos <= cur || pos > __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE) || pos % 8 != 0) return;
	__atomic_store_n(&s->h->readers[who].pos, pos, __ATOMIC_RELEASE);
}

int spool__wait(struct spool *s, enum spool_reader who, uint64_t pos, int timeout_ms)
{
	uint32_t *word = &s->h->readers[who].sleeping;
	struct timespec ts;
	long r;
	int e;

	if(__atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE) != pos) return MQC_OK;
	__atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
	if(__atomic_load_n(&s->h->write_pos, __ATOMIC_SEQ_CST) != pos){
		__atomic_store_n(word, 0, __ATOMIC_RELAXED);
		return MQC_OK;
	}
	if(timeout_ms >= 0){
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	}
	/* Not FUTEX_PRIVATE_FLAG: the word is shared with another process. */
	r = syscall(SYS_futex, word, FUTEX_WAIT, 1, timeout_ms >= 0 ? &ts : NULL, NULL, 0);
	e = errno;
	/* Woken, the writer has cleared it; timed out, clear it ourselves so the
	 * writer does not make wake calls for nobody. */
	__atomic_store_n(word, 0, __ATOMIC_RELAXED);
	if(r == -1 && e == ETIMEDOUT
			&& __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE) == pos){
		return MQC_ERR_TIMEOUT;
	}
	return MQC_OK;
}

/* ---- figures ---- */

uint64_t spool__write_position(const struct spool *s)
{
	return __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE);
}

uint64_t spool__ring_size(const struct spool *s)
{
	return s->ring_size;
}

uint64_t spool__used(const struct spool *s)
{
	uint64_t w = __atomic_load_n(&s->h->write_pos, __ATOMIC_ACQUIRE);

	return w - slowest(s->h, w);
}

uint64_t spool__next_seq(const struct spool *s)
{
	return __atomic_load_n(&s->h->next_seq, __ATOMIC_RELAXED);
}

uint64_t spool__epoch(const struct spool *s)
{
	return s->h->epoch;
}
