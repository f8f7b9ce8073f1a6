/* spool.h - the node's spool: a ring of records in DATA/spool, shared by
 * the broker's plugin (the one writer) and the node's readers.
 *
 * Why it exists (docs/SCALING.md, "The node's spool"): Mosquitto 2.0
 * acknowledges a client's publish once the plugin's MESSAGE callback
 * returns, and cannot delay that. The plugin copies each accepted message
 * into this file, mapped MAP_SHARED, before it returns: the page cache
 * outlives a killed broker, so what was acknowledged is there for the
 * archiver to store. Only a crash of the machine loses what the kernel has
 * not written back yet.
 *
 * The file: a 4 KiB header, then the ring. Header fields that different
 * processes write each have their own 64-byte cache line, so the writer's
 * stores do not bounce a reader's line and the other way round:
 *
 *   line 0   magic "MQCSPOOL", version, header size, ring size, epoch
 *            (random, new per file: a reader tells a recreated file from
 *            the one it knew), creation time. Written once, at creation.
 *   line 1   write position, next seq (the writer's)
 *   line 2+  per reader slot (SPOOL_READERS of them): its position, and
 *            whether the writer must respect it (hard) or may overwrite
 *            past it (soft: the bus, later); on the next line its
 *            "sleeping" futex word
 *
 * Positions are byte counts since the file was made: they only grow, and
 * the offset in the ring is pos % ring size. Records are 8-byte aligned and
 * never split across the ring's end: a PAD record fills the rest of the
 * ring when the next record does not fit there. A record is
 *
 *   u32 len            whole record in bytes, padding included (multiple of 8)
 *   u16 kind           SPOOL_MESSAGE or SPOOL_PAD
 *   u16 magic          SPOOL_REC_MAGIC (a cheap check that len points at a record)
 *   -- the rest for MESSAGE only (a PAD is just these 8 bytes, then anything) --
 *   u64 seq            1, 2, ... per file; a writer killed between copying a
 *                      record and publishing it leaves a gap, never a reuse
 *   i64 time_ms        wall clock when spooled
 *   u32 flags          SPOOL_F_*
 *   u32 payload_len
 *   u16 client_id_len, topic_len, corr_len, resp_topic_len (0: none)
 *   client id, NUL; topic, NUL; response topic, NUL (if any);
 *   correlation data; payload; zeros to the next multiple of 8
 *
 * all in the machine's byte order (the file never leaves the machine).
 *
 * Publishing: the writer copies the record, then stores the new write
 * position with release order; readers load it with acquire order. A
 * writer killed in the middle leaves the position where it was, so the
 * half-written record is never read. The writer never writes over bytes a
 * hard reader has not consumed: an append that does not fit returns
 * MQC_ERR_FULL and writes nothing.
 *
 * Waking (the "sleeping" flag protocol): a reader with nothing to read
 * stores 1 in its sleeping word, then (seq_cst) looks at the write position
 * again, and only if it has not moved calls futex(FUTEX_WAIT) on the word
 * (a shared mapping: the non-private futex op, which works across
 * processes). The writer, after publishing, (seq_cst) looks at each sleeping
 * word and only when one is set swaps it to 0 and calls FUTEX_WAKE. Either
 * the reader sees the new position or the writer sees the flag, so no
 * wake-up is lost, and a writer whose readers keep up makes no system call.
 *
 * Thread use: one writer (process) at a time, which holds an exclusive
 * flock on the file (a second broker on the same data folder is refused);
 * each reader slot has one reader. A struct spool is not shared between
 * threads, except that spool__wait may run in another thread than
 * spool__read of the same reader (it only reads the header). */
#ifndef MQCHAT_SPOOL_H
#define MQCHAT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_FILE "spool"              /* in the data folder */
#define SPOOL_MAGIC "MQCSPOOL"          /* 8 bytes, no NUL */
#define SPOOL_VERSION 1
#define SPOOL_HEADER_SIZE 4096
#define SPOOL_REC_MAGIC 0x5352          /* "RS" little-endian */
#define SPOOL_REC_HEAD 40               /* bytes before a MESSAGE's strings */
#define SPOOL_MB_MAX 4096               /* ring size limits (plugin_opt_spool_mb) */
#define SPOOL_MB_MIN 1

enum spool_kind { SPOOL_MESSAGE = 1, SPOOL_PAD = 2 /* filler to the ring's end */ };
enum spool_reader { SPOOL_READER_ARCHIVER = 0, SPOOL_READER_BUS = 1, SPOOL_READERS = 2 };

/* Record flags: who takes it. */
#define SPOOL_F_STORE 1u                /* the archiver stores or answers it */
#define SPOOL_F_FORWARD 2u              /* the bus forwards it (later) */

/* spool__open flags. */
#define SPOOL_OPEN_WRITER 1             /* the broker: takes the writer's lock */

/* A decoded record; pointers into the mapping (or into the buffer given to
 * spool__parse), valid until the space is consumed and reused. */
struct spool_rec {
	enum spool_kind kind;          /* SPOOL_MESSAGE (spool__read never returns a PAD) */
	uint64_t seq;                  /* 1, 2, ... per spool file (never reused) */
	int64_t time_ms;               /* wall clock when spooled */
	uint32_t flags;                /* SPOOL_F_* */
	const char *client_id;         /* NUL-terminated */
	const char *topic;             /* NUL-terminated */
	const unsigned char *payload; size_t len;
	const unsigned char *corr; size_t corr_len;   /* MQTT 5 correlation data, or NULL/0 */
	const char *resp_topic;        /* MQTT 5 response topic, or NULL */
	uint64_t end;                  /* spool__read: position just past this record
	                                * (pass to spool__consume); spool__parse: the
	                                * record's length in bytes */
};

struct spool;                      /* opaque: a mapping of DATA/spool */

/* Open path (DATA/spool), creating it if absent with a ring of size_mb MiB
 * (SPOOL_MB_MIN..SPOOL_MB_MAX). size_mb 0: open an existing file with the
 * ring it has; MQC_ERR_NOTFOUND if there is none yet (the broker makes it).
 * A file with another ring size than a non-zero size_mb: MQC_ERR_INVAL
 * (err says both sizes; the ring cannot be resized in place).
 * flags SPOOL_OPEN_WRITER: also take the writer's lock (MQC_ERR_BUSY if
 * another process has it). Creation is safe against a concurrent opener: the
 * file is built under a temporary name and link()ed into place.
 * Returns MQC_OK with *out (free with spool__close), or MQC_ERR_INVAL,
 * MQC_ERR_NOTFOUND, MQC_ERR_BUSY, MQC_ERR_PERM, MQC_ERR_IO, MQC_ERR_NOMEM,
 * MQC_ERR_CORRUPT (not a spool, another version, a header that does not
 * hold together) with err naming the path. */
int spool__open(const char *path, size_t size_mb, int flags, struct spool **out,
		char *err, size_t errlen);
void spool__close(struct spool *s);

/* ---- the writer ---- */

/* Append one MESSAGE record. corr/resp_topic may be NULL. MQC_OK;
 * MQC_ERR_FULL: it does not fit before the slowest hard reader's position
 * (nothing written); MQC_ERR_TOOBIG: it could never fit (longer than the
 * ring, or a string over 65535 bytes); MQC_ERR_INVAL: not opened as the
 * writer. No system call, unless a reader sleeps (then one FUTEX_WAKE). */
int spool__append(struct spool *s, uint32_t flags, const char *client_id, const char *topic,
		const void *payload, size_t len, const void *corr, size_t corr_len, const char *resp_topic);

/* ---- readers ---- */

/* The MESSAGE record at *pos (a position from spool__position or a previous
 * rec->end), skipping PAD records (*pos moves past them). MQC_OK: *rec
 * filled, the next record at rec->end. MQC_ERR_AGAIN: nothing more yet.
 * MQC_ERR_CORRUPT: the bytes at *pos are not a valid record, or *pos is not
 * a position of this ring (misaligned, ahead of the writer, or so far
 * behind that the space was reused): the caller logs it; nothing is read
 * outside the mapping. */
int spool__read(struct spool *s, uint64_t *pos, struct spool_rec *rec);

/* Reader who's saved position: where it starts after a restart. */
uint64_t spool__position(const struct spool *s, enum spool_reader who);

/* Record that who has finished with everything before pos (a release
 * store; pos never moves back: a smaller one is ignored); the writer may
 * then reuse that space. */
void spool__consume(struct spool *s, enum spool_reader who, uint64_t pos);

/* Sleep until the write position is past pos or timeout_ms passes (< 0:
 * no limit). MQC_OK: there is something at pos (or a wake-up came);
 * MQC_ERR_TIMEOUT. Spurious returns are possible: read again. */
int spool__wait(struct spool *s, enum spool_reader who, uint64_t pos, int timeout_ms);

/* ---- both ---- */

/* Parse the record at buf, of which avail bytes may be read (avail: to
 * the ring's end or the write position, whichever is first). Validates
 * every length against avail: MQC_OK (rec->kind says MESSAGE or PAD,
 * rec->end its length) or MQC_ERR_CORRUPT. */
int spool__parse(const unsigned char *buf, size_t avail, struct spool_rec *rec);

/* Figures for metrics and tests: the write position, the ring's size, the
 * bytes not yet consumed by the slowest hard reader, the seq the next
 * record gets, and the file's epoch. Plain loads: no system call. */
uint64_t spool__write_position(const struct spool *s);
uint64_t spool__ring_size(const struct spool *s);
uint64_t spool__used(const struct spool *s);
uint64_t spool__next_seq(const struct spool *s);
uint64_t spool__epoch(const struct spool *s);

#endif
