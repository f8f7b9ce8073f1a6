/* test_spool.c - the node's spool (common/spool.c) on real files: records
 * round trip, the ring wraps with a PAD, a full ring refuses and writes
 * nothing, positions and seq survive a reopen, a record the writer did not
 * publish is never read, corrupt records and headers are refused, and a
 * writer and a reader in two processes pass 200,000 records with none lost
 * or repeated. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "spool.h"

#define MIB (1u << 20)

struct dir {
	char path[256];
	char spool[300];
	pid_t child;                /* a writer process to stop if a test failed */
};

static int dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));
	const char *tmp = getenv("TMPDIR");

	if(d == NULL) return -1;
	snprintf(d->path, sizeof(d->path), "%s/test_spool.XXXXXX", tmp ? tmp : "/tmp");
	if(mkdtemp(d->path) == NULL) return -1;
	snprintf(d->spool, sizeof(d->spool), "%s/" SPOOL_FILE, d->path);
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;

	if(d->child > 0){
		kill(d->child, SIGKILL);
		waitpid(d->child, NULL, 0);
	}
	unlink(d->spool);
	rmdir(d->path);
	free(d);
	return 0;
}

static struct spool *open_ok(const char *path, size_t mb, int flags)
{
	struct spool *s = NULL;
	char err[256] = "";
	int rc = spool__open(path, mb, flags, &s, err, sizeof(err));

	if(rc != MQC_OK) fprintf(stderr, "spool__open: %s\n", err);
	assert_int_equal(rc, MQC_OK);
	return s;
}

static int open_rc(const char *path, size_t mb, int flags, char *err, size_t errlen)
{
	struct spool *s = NULL;
	int rc = spool__open(path, mb, flags, &s, err, errlen);

	if(rc == MQC_OK) spool__close(s);
	else assert_null(s);
	return rc;
}

static int append_text(struct spool *w, const char *cid, const char *topic, const char *text)
{
	return spool__append(w, SPOOL_F_STORE, cid, topic, text, strlen(text), NULL, 0, NULL);
}

/* ---- round trip ---- */

static void test_round_trip(void **state)
{
	struct dir *d = *state;
	struct spool *w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	struct spool *r = open_ok(d->spool, 0, 0);
	struct spool_rec rec;
	const unsigned char corr[] = {0, 1, 2, 0xff};
	const unsigned char bin[] = {'a', 0, 'b'};
	uint64_t pos, before;
	struct stat st;

	assert_int_equal(stat(d->spool, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, SPOOL_HEADER_SIZE + MIB);
	assert_int_equal(spool__ring_size(r), MIB);
	assert_int_equal(spool__next_seq(r), 1);
	assert_true(spool__epoch(r) == spool__epoch(w));

	pos = spool__position(r, SPOOL_READER_ARCHIVER);
	assert_int_equal(pos, 0);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);

	before = (uint64_t)time(NULL) * 1000;
	assert_int_equal(append_text(w, "alice@phone", "chat/inbox/bob/alice", "{\"id\":\"m1\"}"), MQC_OK);
	assert_int_equal(spool__append(w, SPOOL_F_STORE, "bob", "chat/rpc/bob/req", bin, sizeof(bin),
			corr, sizeof(corr), "chat/rpc/bob/resp"), MQC_OK);
	assert_int_equal(spool__append(w, SPOOL_F_STORE | SPOOL_F_FORWARD, "", "chat/seen/1", NULL, 0,
			NULL, 0, NULL), MQC_OK);

	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_int_equal(rec.kind, SPOOL_MESSAGE);
	assert_int_equal(rec.seq, 1);
	assert_true(rec.time_ms >= (int64_t)before - 1000 && rec.time_ms <= (int64_t)before + 60000);
	assert_int_equal(rec.flags, SPOOL_F_STORE);
	assert_string_equal(rec.client_id, "alice@phone");
	assert_string_equal(rec.topic, "chat/inbox/bob/alice");
	assert_int_equal(rec.len, strlen("{\"id\":\"m1\"}"));
	assert_memory_equal(rec.payload, "{\"id\":\"m1\"}", rec.len);
	assert_null(rec.corr);
	assert_int_equal(rec.corr_len, 0);
	assert_null(rec.resp_topic);
	assert_int_equal(rec.end % 8, 0);
	pos = rec.end;

	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_int_equal(rec.seq, 2);
	assert_string_equal(rec.client_id, "bob");
	assert_int_equal(rec.len, sizeof(bin));
	assert_memory_equal(rec.payload, bin, sizeof(bin));
	assert_int_equal(rec.corr_len, sizeof(corr));
	assert_memory_equal(rec.corr, corr, sizeof(corr));
	assert_string_equal(rec.resp_topic, "chat/rpc/bob/resp");
	pos = rec.end;

	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_int_equal(rec.seq, 3);
	assert_int_equal(rec.flags, SPOOL_F_STORE | SPOOL_F_FORWARD);
	assert_string_equal(rec.client_id, "");
	assert_int_equal(rec.len, 0);
	pos = rec.end;
	assert_int_equal(pos, spool__write_position(r));
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);

	/* Nothing consumed yet: all of it is in use. */
	assert_int_equal(spool__used(w), pos);
	spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	assert_int_equal(spool__position(w, SPOOL_READER_ARCHIVER), pos);
	assert_int_equal(spool__used(w), 0);
	/* Never backwards, never past the writer, never misaligned. */
	spool__consume(r, SPOOL_READER_ARCHIVER, 8);
	spool__consume(r, SPOOL_READER_ARCHIVER, pos + 8);
	spool__consume(r, SPOOL_READER_ARCHIVER, pos - 4);
	assert_int_equal(spool__position(r, SPOOL_READER_ARCHIVER), pos);

	/* Readers cannot write; strings over 65535 bytes cannot be stored. */
	assert_int_equal(append_text(r, "x", "chat/room/r/x", "no"), MQC_ERR_INVAL);
	{
		char *big = malloc(70000);

		assert_non_null(big);
		memset(big, 'a', 69999);
		big[69999] = '\0';
		assert_int_equal(append_text(w, "x", big, "t"), MQC_ERR_TOOBIG);
		free(big);
	}
	assert_int_equal(spool__write_position(w), pos);
	spool__close(r);
	spool__close(w);
}

/* ---- wrap, PAD, full ---- */

static void test_wrap_and_full(void **state)
{
	struct dir *d = *state;
	struct spool *w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	struct spool *r = open_ok(d->spool, 0, 0);
	struct spool_rec rec;
	size_t big = 300 * 1024;
	char *payload = malloc(MIB + 1);
	uint64_t pos = 0, wpos, seq = 1;
	int i, n;

	assert_non_null(payload);
	memset(payload, 'x', MIB + 1);
	/* Three fit in the ring; the fourth does not, and writes nothing. */
	for(i=0; i<3; i++){
		payload[0] = (char)('0' + i);
		assert_int_equal(spool__append(w, SPOOL_F_STORE, "a", "chat/room/r/a", payload, big,
				NULL, 0, NULL), MQC_OK);
	}
	wpos = spool__write_position(w);
	assert_int_equal(spool__append(w, SPOOL_F_STORE, "a", "chat/room/r/a", payload, big,
			NULL, 0, NULL), MQC_ERR_FULL);
	assert_int_equal(spool__write_position(w), wpos);
	assert_int_equal(spool__next_seq(w), 4);
	/* Larger than the ring: never. */
	assert_int_equal(spool__append(w, SPOOL_F_STORE, "a", "chat/room/r/a", payload, MIB,
			NULL, 0, NULL), MQC_ERR_TOOBIG);

	/* The reader takes one: now a PAD to the ring's end and the record
	 * at its start fit, exactly. */
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_int_equal(rec.seq, seq++);
	assert_int_equal(rec.payload[0], '0');
	pos = rec.end;
	spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	assert_int_equal(spool__append(w, SPOOL_F_STORE, "a", "chat/room/r/a", payload, big,
			NULL, 0, NULL), MQC_OK);
	/* The ring has wrapped: the new record starts at offset 0, after a PAD. */
	assert_true(spool__write_position(w) > MIB);
	assert_true(spool__write_position(w) % MIB < big + 1024);

	/* Read everything with the PAD skipped, consuming as we go, and keep
	 * writing small records around the ring a few times. */
	for(n=0; n<20000; n++){
		int rc = spool__read(r, &pos, &rec);

		if(rc == MQC_ERR_AGAIN){
			payload[0] = (char)('a' + n % 26);
			rc = spool__append(w, SPOOL_F_STORE, "a", "chat/room/r/a", payload, 1000 + n % 3000,
					NULL, 0, NULL);
			assert_int_equal(rc, MQC_OK);
			continue;
		}
		assert_int_equal(rc, MQC_OK);
		assert_int_equal(rec.seq, seq++);
		assert_int_equal(rec.kind, SPOOL_MESSAGE);
		pos = rec.end;
		spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	}
	assert_true(spool__write_position(w) > 10 * (uint64_t)MIB);
	free(payload);
	spool__close(r);
	spool__close(w);
}

/* ---- reopen, sizes, the writer's lock ---- */

static void test_reopen(void **state)
{
	struct dir *d = *state;
	struct spool *w, *r;
	struct spool_rec rec;
	uint64_t pos = 0, epoch;
	char err[256];
	int i;

	/* Before the broker made it, a reader finds nothing. */
	err[0] = '\0';
	assert_int_equal(open_rc(d->spool, 0, 0, err, sizeof(err)), MQC_ERR_NOTFOUND);
	assert_non_null(strstr(err, "does not exist"));
	assert_int_equal(open_rc(d->spool, 4097, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_ERR_INVAL);
	assert_int_equal(open_rc(d->spool, 0, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_ERR_INVAL);

	w = open_ok(d->spool, 2, SPOOL_OPEN_WRITER);
	epoch = spool__epoch(w);
	/* One writer at a time. */
	err[0] = '\0';
	assert_int_equal(open_rc(d->spool, 2, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_ERR_BUSY);
	assert_non_null(strstr(err, "another broker"));
	for(i=0; i<10; i++) assert_int_equal(append_text(w, "a", "chat/room/r/a", "hello"), MQC_OK);
	r = open_ok(d->spool, 0, 0);
	for(i=0; i<4; i++){
		assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
		pos = rec.end;
	}
	spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	spool__close(r);
	spool__close(w);

	/* Another size: refused with how to resize. */
	err[0] = '\0';
	assert_int_equal(open_rc(d->spool, 1, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_ERR_INVAL);
	assert_non_null(strstr(err, "ring of 2 MiB, not 1"));

	w = open_ok(d->spool, 2, SPOOL_OPEN_WRITER);
	r = open_ok(d->spool, 0, 0);
	assert_int_equal(spool__epoch(r), epoch);
	assert_int_equal(spool__position(r, SPOOL_READER_ARCHIVER), pos);
	assert_int_equal(spool__next_seq(w), 11);
	assert_int_equal(append_text(w, "a", "chat/room/r/a", "after"), MQC_OK);
	for(i=5; i<=11; i++){
		assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
		assert_int_equal(rec.seq, i);
		pos = rec.end;
	}
	assert_memory_equal(rec.payload, "after", 5);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);
	spool__close(r);
	spool__close(w);
}

/* ---- a record copied but not published ---- */

/* What a writer killed between its copy and its release store leaves: the
 * bytes in the ring, the position where it was. pwrite puts a whole, valid
 * record there (a copy of the last one). */
static void test_torn_write_invisible(void **state)
{
	struct dir *d = *state;
	struct spool *w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	struct spool *r = open_ok(d->spool, 0, 0);
	struct spool_rec rec;
	unsigned char copy[256];
	uint64_t pos = 0, wpos, len;
	int fd;

	assert_int_equal(append_text(w, "a", "chat/room/r/a", "one"), MQC_OK);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	len = rec.end - pos;
	assert_true(len <= sizeof(copy));
	memcpy(copy, (const unsigned char *)rec.topic - SPOOL_REC_HEAD - 2, len);   /* cid "a\0" */
	pos = rec.end;
	wpos = spool__write_position(w);
	spool__close(w);

	fd = open(d->spool, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, copy, len, (off_t)(SPOOL_HEADER_SIZE + wpos)), (ssize_t)len);
	close(fd);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);

	/* The next writer starts where the position says, over those bytes. */
	w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	assert_int_equal(spool__write_position(w), wpos);
	assert_int_equal(append_text(w, "b", "chat/room/r/b", "two"), MQC_OK);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_OK);
	assert_int_equal(rec.seq, 2);
	assert_string_equal(rec.client_id, "b");
	spool__close(r);
	spool__close(w);
}

/* ---- corrupt records and headers ---- */

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* A valid MESSAGE record in buf: client "ab", topic "t/x", payload "hi". */
static size_t make_rec(unsigned char *buf)
{
	size_t body = SPOOL_REC_HEAD + 3 + 4 + 2, len = (body + 7) & ~(size_t)7;

	memset(buf, 0, 64);
	put32(buf, (uint32_t)len);
	put16(buf + 4, SPOOL_MESSAGE);
	put16(buf + 6, SPOOL_REC_MAGIC);
	put64(buf + 8, 7);
	put64(buf + 16, 1234);
	put32(buf + 24, SPOOL_F_STORE);
	put32(buf + 28, 2);
	put16(buf + 32, 2);
	put16(buf + 34, 3);
	memcpy(buf + SPOOL_REC_HEAD, "ab\0t/x\0hi", 9);
	return len;
}

static void test_parse_corrupt(void **state)
{
	unsigned char buf[64], bad[64];
	struct spool_rec rec;
	size_t len;
	struct {
		const char *what;
		size_t at;
		int width;
		uint64_t value;
	} cases[] = {
		{"magic", 6, 2, 0x1234},
		{"length not a multiple of 8", 0, 4, 52},
		{"length past the buffer", 0, 4, 72},
		{"length under the head", 0, 4, 32},
		{"unknown kind", 4, 2, 3},
		{"seq 0", 8, 8, 0},
		{"unknown flag", 24, 4, 4},
		{"payload longer than the record", 28, 4, 10},
		{"client id length off by one", 32, 2, 1},
		{"empty topic", 34, 2, 0},
		{"correlation data past the record", 36, 2, 200},
		{"response topic past the record", 38, 2, 9},
		{"a NUL inside the client id", SPOOL_REC_HEAD + 1, 1, 0},
		{"no NUL after the topic", SPOOL_REC_HEAD + 6, 1, 'y'},
	};
	size_t i;

	(void)state;
	len = make_rec(buf);
	assert_int_equal(spool__parse(buf, len, &rec), MQC_OK);
	assert_int_equal(rec.seq, 7);
	assert_string_equal(rec.client_id, "ab");
	assert_string_equal(rec.topic, "t/x");
	assert_memory_equal(rec.payload, "hi", 2);
	assert_int_equal(rec.end, len);
	/* Every shorter view of it is refused. */
	for(i=0; i<len; i++) assert_int_equal(spool__parse(buf, i, &rec), MQC_ERR_CORRUPT);

	for(i=0; i<sizeof(cases)/sizeof(cases[0]); i++){
		memcpy(bad, buf, sizeof(buf));
		switch(cases[i].width){
			case 1: bad[cases[i].at] = (unsigned char)cases[i].value; break;
			case 2: put16(bad + cases[i].at, (uint16_t)cases[i].value); break;
			case 4: put32(bad + cases[i].at, (uint32_t)cases[i].value); break;
			default: put64(bad + cases[i].at, cases[i].value); break;
		}
		if(spool__parse(bad, sizeof(bad), &rec) != MQC_ERR_CORRUPT){
			fail_msg("accepted: %s", cases[i].what);
		}
		/* Nothing of a refused record is handed out. */
		assert_null(rec.topic);
	}

	/* A PAD is 8 bytes of head; anything after it is not looked at. */
	memset(bad, 0xee, sizeof(bad));
	put32(bad, 64);
	put16(bad + 4, SPOOL_PAD);
	put16(bad + 6, SPOOL_REC_MAGIC);
	assert_int_equal(spool__parse(bad, 64, &rec), MQC_OK);
	assert_int_equal(rec.kind, SPOOL_PAD);
	assert_int_equal(rec.end, 64);
	assert_int_equal(spool__parse(bad, 56, &rec), MQC_ERR_CORRUPT);
}

/* A corrupt record or position in the file: spool__read says so. */
static void test_read_corrupt(void **state)
{
	struct dir *d = *state;
	struct spool *w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	struct spool *r = open_ok(d->spool, 0, 0);
	struct spool_rec rec;
	uint64_t pos;
	int fd;

	assert_int_equal(append_text(w, "a", "chat/room/r/a", "one"), MQC_OK);
	assert_int_equal(append_text(w, "a", "chat/room/r/a", "two"), MQC_OK);
	pos = 4;
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_CORRUPT);
	pos = spool__write_position(r) + 8;
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_CORRUPT);

	/* The first record's magic overwritten. */
	fd = open(d->spool, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0\0", 2, SPOOL_HEADER_SIZE + 6), 2);
	pos = 0;
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_CORRUPT);
	/* A PAD that does not reach the ring's end. */
	{
		unsigned char pad[8];

		put32(pad, 16);
		put16(pad + 4, SPOOL_PAD);
		put16(pad + 6, SPOOL_REC_MAGIC);
		assert_int_equal(pwrite(fd, pad, 8, SPOOL_HEADER_SIZE), 8);
	}
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_CORRUPT);
	close(fd);
	spool__close(r);
	spool__close(w);
}

static void test_header_corrupt(void **state)
{
	struct dir *d = *state;
	struct spool *w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	char err[256];
	uint64_t v;
	int fd;

	spool__close(w);
	fd = open(d->spool, O_RDWR);
	assert_true(fd >= 0);

	/* A reader ahead of the writer. */
	v = 64;
	assert_int_equal(pwrite(fd, &v, 8, 128), 8);
	err[0] = '\0';
	assert_int_equal(open_rc(d->spool, 0, 0, err, sizeof(err)), MQC_ERR_CORRUPT);
	assert_non_null(strstr(err, "reader 0"));
	v = 0;
	assert_int_equal(pwrite(fd, &v, 8, 128), 8);
	assert_int_equal(open_rc(d->spool, 0, 0, err, sizeof(err)), MQC_OK);

	/* Another version. */
	assert_int_equal(pwrite(fd, "\x09", 1, 8), 1);
	assert_int_equal(open_rc(d->spool, 0, 0, err, sizeof(err)), MQC_ERR_CORRUPT);
	assert_non_null(strstr(err, "version 9"));
	assert_int_equal(pwrite(fd, "\x01", 1, 8), 1);

	/* Cut short. */
	assert_int_equal(ftruncate(fd, SPOOL_HEADER_SIZE + MIB - 4096), 0);
	assert_int_equal(open_rc(d->spool, 0, 0, err, sizeof(err)), MQC_ERR_CORRUPT);
	assert_int_equal(ftruncate(fd, SPOOL_HEADER_SIZE + MIB), 0);
	assert_int_equal(open_rc(d->spool, 1, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_OK);

	/* Not a spool at all. */
	assert_int_equal(pwrite(fd, "SQLite f", 8, 0), 8);
	err[0] = '\0';
	assert_int_equal(open_rc(d->spool, 1, SPOOL_OPEN_WRITER, err, sizeof(err)), MQC_ERR_CORRUPT);
	assert_non_null(strstr(err, "not a spool"));
	close(fd);
}

/* ---- two processes ---- */

#define FORK_RECORDS 200000

/* The child writes FORK_RECORDS records, each payload its index, waiting
 * (briefly) when the ring is full; the parent reads with spool__wait. */
static void test_two_processes(void **state)
{
	struct dir *d = *state;
	struct spool *w, *r;
	struct spool_rec rec;
	uint64_t pos, expect = 0, waits = 0;
	int status, timeouts = 0;
	pid_t pid;

	w = open_ok(d->spool, 1, SPOOL_OPEN_WRITER);
	spool__close(w);
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0){
		char text[300];
		struct timespec pause = {0, 100000};
		time_t deadline = time(NULL) + 60;
		uint64_t i;
		int rc;

		/* Never outlive the test, nor wait for a reader that is gone. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if(getppid() == 1) _exit(4);
		if(spool__open(d->spool, 1, SPOOL_OPEN_WRITER, &w, NULL, 0) != MQC_OK) _exit(2);
		for(i=0; i<FORK_RECORDS; i++){
			int n;

			/* The index, then up to 222 bytes of padding after its NUL. */
			memset(text, '.', sizeof(text));
			n = snprintf(text, sizeof(text), "%llu", (unsigned long long)i);

			/* Sizes vary so that the PAD falls at different places. */
			while((rc = spool__append(w, SPOOL_F_STORE, "writer", "chat/room/r/w", text,
							(size_t)n + (i % 7) * 37, NULL, 0, NULL)) == MQC_ERR_FULL){
				if(time(NULL) > deadline) _exit(5);
				nanosleep(&pause, NULL);
			}
			if(rc != MQC_OK) _exit(3);
		}
		spool__close(w);
		_exit(0);
	}
	d->child = pid;
	r = open_ok(d->spool, 0, 0);
	pos = spool__position(r, SPOOL_READER_ARCHIVER);
	while(expect < FORK_RECORDS){
		int rc = spool__read(r, &pos, &rec);

		if(rc == MQC_ERR_AGAIN){
			/* A lost wake-up would show as a timeout: 10 s is far beyond
			 * any pause of a writer that keeps writing. */
			if(spool__wait(r, SPOOL_READER_ARCHIVER, pos, 10000) == MQC_ERR_TIMEOUT) timeouts++;
			waits++;
			if(timeouts > 0) break;
			continue;
		}
		assert_int_equal(rc, MQC_OK);
		assert_int_equal(rec.seq, expect + 1);
		assert_true(rec.len >= 1);
		assert_int_equal(strtoull((const char *)rec.payload, NULL, 10), expect);
		expect++;
		pos = rec.end;
		/* Consume in batches, as the archiver does after a commit. */
		if(expect % 64 == 0 || expect == FORK_RECORDS) spool__consume(r, SPOOL_READER_ARCHIVER, pos);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	d->child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(timeouts, 0);
	assert_int_equal(expect, FORK_RECORDS);
	assert_int_equal(spool__read(r, &pos, &rec), MQC_ERR_AGAIN);
	assert_int_equal(spool__next_seq(r), FORK_RECORDS + 1);
	print_message("two processes: %d records, %llu waits\n", FORK_RECORDS, (unsigned long long)waits);
	/* Timed out with nothing to read: the flag is down again, so the
	 * writer makes no wake call for nobody. */
	assert_int_equal(spool__wait(r, SPOOL_READER_ARCHIVER, pos, 10), MQC_ERR_TIMEOUT);
	spool__close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_wrap_and_full, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_torn_write_invisible, dir_setup, dir_teardown),
		cmocka_unit_test(test_parse_corrupt),
		cmocka_unit_test_setup_teardown(test_read_corrupt, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_header_corrupt, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_two_processes, dir_setup, dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
