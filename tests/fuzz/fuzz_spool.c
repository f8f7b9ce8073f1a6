/* fuzz_spool.c - libFuzzer harness for the spool's record parser
 * (common/spool.c: spool__parse), which readers run on bytes another
 * process wrote.
 *
 * The input is the bytes at a read position, avail of them readable (the
 * raw input: ASan sees any read past it). spool__parse's verdict is
 * compared with a second reading of the layout in spool.h written here
 * field by field, and an accepted record must hand out only pointers inside
 * its own length, strings ending at their NUL, and the same record from
 * any longer view of the same bytes; no shorter view is accepted. */
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "spool.h"
#include "fuzz.h"

static uint64_t rd(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	/* The file is in the machine's byte order: little-endian here. */
	while(n-- > 0) v = (v << 8) | p[n];
	return v;
}

/* The reference: true if data[0..size) starts with a valid record; *len
 * its length, *kind its kind. */
static bool ref_parse(const uint8_t *d, size_t size, size_t *len, unsigned *kind)
{
	size_t need, cid, topic, corr, resp, plen, at;

	if(size < 8) return false;
	*len = (size_t)rd(d, 4);
	*kind = (unsigned)rd(d + 4, 2);
	if(rd(d + 6, 2) != SPOOL_REC_MAGIC || *len < 8 || *len % 8 || *len > size) return false;
	if(*kind == SPOOL_PAD) return true;
	if(*kind != SPOOL_MESSAGE || *len < SPOOL_REC_HEAD) return false;
	if(rd(d + 8, 8) == 0 || (rd(d + 24, 4) & ~(uint64_t)(SPOOL_F_STORE | SPOOL_F_FORWARD))) return false;
	plen = (size_t)rd(d + 28, 4);
	cid = (size_t)rd(d + 32, 2);
	topic = (size_t)rd(d + 34, 2);
	corr = (size_t)rd(d + 36, 2);
	resp = (size_t)rd(d + 38, 2);
	if(topic == 0) return false;
	need = SPOOL_REC_HEAD + cid + 1 + topic + 1 + (resp ? resp + 1 : 0) + corr + plen;
	if(((need + 7) / 8) * 8 != *len) return false;
	at = SPOOL_REC_HEAD;
	/* Each string: no NUL inside, one at its end. */
	if(memchr(d + at, 0, cid) != NULL || d[at + cid] != 0) return false;
	at += cid + 1;
	if(memchr(d + at, 0, topic) != NULL || d[at + topic] != 0) return false;
	at += topic + 1;
	if(resp && (memchr(d + at, 0, resp) != NULL || d[at + resp] != 0)) return false;
	return true;
}

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *q = p;

	return q >= base && q <= base + len && n <= (size_t)(base + len - q);
}

FUZZ_TARGET(spool)
{
	struct spool_rec rec, again;
	size_t len = 0, k;
	unsigned kind = 0;
	bool ok = spool__parse(data, size, &rec) == MQC_OK;

	FUZZ_ASSERT(ok == ref_parse(data, size, &len, &kind));
	if(!ok){
		FUZZ_ASSERT(rec.topic == NULL && rec.end == 0);
		return 0;
	}
	FUZZ_ASSERT(rec.end == len && rec.kind == (enum spool_kind)kind);
	if(rec.kind == SPOOL_MESSAGE){
		FUZZ_ASSERT(rec.seq != 0);
		FUZZ_ASSERT(inside(rec.client_id, strlen(rec.client_id) + 1, data, len));
		FUZZ_ASSERT(inside(rec.topic, strlen(rec.topic) + 1, data, len) && rec.topic[0] != '\0');
		FUZZ_ASSERT(rec.resp_topic == NULL
				|| inside(rec.resp_topic, strlen(rec.resp_topic) + 1, data, len));
		FUZZ_ASSERT((rec.corr == NULL) == (rec.corr_len == 0));
		FUZZ_ASSERT(rec.corr == NULL || inside(rec.corr, rec.corr_len, data, len));
		FUZZ_ASSERT(inside(rec.payload, rec.len, data, len));
		/* The payload ends the record but for its padding. */
		FUZZ_ASSERT(len - (size_t)(rec.payload + rec.len - data) < 8);
	}
	/* Only the record's own bytes decide. */
	FUZZ_ASSERT(spool__parse(data, len, &again) == MQC_OK && again.end == len
			&& again.seq == rec.seq && again.payload == rec.payload);
	for(k = len > 64 ? len - 64 : 0; k < len; k++){
		FUZZ_ASSERT(spool__parse(data, k, &again) == MQC_ERR_CORRUPT);
	}
	return 0;
}
