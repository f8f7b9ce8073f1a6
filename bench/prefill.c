/* prefill.c - fill an archive.db (already created in the archiver's schema,
 * e.g. by `mqchat-archiver init`) with --count text messages, for the RPC
 * latency runs.
 *
 * Mix: 5% in the DM s0 <-> r0 (a deep history), 10% in room --room, the
 * rest DMs between random s<i> and r<j> (i, j < --pairs). Rows get the keys
 * the archiver computes (common/archkey.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "archkey.h"
#include "bench.h"
#include "timeutil.h"

int prefill__archive(const struct bench_opts *o)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sender[40], rcpt[40], conv[96], id[40], body[160];
	unsigned long long rnd = 88172645463325252ULL;
	int64_t t0 = time__mono_ns(), base_ts = time__now_ms() - o->count;
	long i;
	int rc;

	if(o->archive_db == NULL){
		fprintf(stderr, "Error: prefill needs --archive-db\n");
		return 2;
	}
	memset(body, 'y', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	rc = sqlite3_open_v2(o->archive_db, &db, SQLITE_OPEN_READWRITE, NULL);
	if(rc != SQLITE_OK
			|| sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN",
				NULL, NULL, NULL) != SQLITE_OK
			|| sqlite3_prepare_v2(db, "INSERT INTO messages(sender, recipient, room, conv, type, id,"
				" body, ts, server_ts, status, idh) VALUES(?1,?2,?3,?4,'text',?5,?6,?7,?7,'sent',?8)",
				-1, &st, NULL) != SQLITE_OK){
		goto fail;
	}
	for(i = 0; i < o->count; i++){
		bool room;
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		room = false;
		if(rnd % 100 < 5){
			snprintf(sender, sizeof(sender), (i & 1) ? "s0" : "r0");
			snprintf(rcpt, sizeof(rcpt), (i & 1) ? "r0" : "s0");
		}else if(rnd % 100 < 15){
			room = true;
			snprintf(sender, sizeof(sender), "m%llu", (rnd >> 8) % (unsigned long long)o->members);
			snprintf(conv, sizeof(conv), "r:%s", o->room);
		}else{
			snprintf(sender, sizeof(sender), "s%llu", (rnd >> 8) % (unsigned long long)o->pairs);
			snprintf(rcpt, sizeof(rcpt), "r%llu", (rnd >> 24) % (unsigned long long)o->pairs);
			if(rnd & (1ULL << 40)){
				char t[40];
				memcpy(t, sender, sizeof(t));
				memcpy(sender, rcpt, sizeof(sender));
				memcpy(rcpt, t, sizeof(rcpt));
			}
		}
		if(!room){
			archkey__dm_conv(sender, rcpt, conv, sizeof(conv));
		}
		snprintf(id, sizeof(id), "pf%ld", i);
		if(sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC) != SQLITE_OK
				|| (room ? sqlite3_bind_null(st, 2) : sqlite3_bind_text(st, 2, rcpt, -1, SQLITE_STATIC)) != SQLITE_OK
				|| (room ? sqlite3_bind_text(st, 3, o->room, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 3)) != SQLITE_OK
				|| sqlite3_bind_text(st, 4, conv, -1, SQLITE_STATIC) != SQLITE_OK
				|| sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC) != SQLITE_OK
				|| sqlite3_bind_text(st, 6, body, 40 + (int)(rnd % 100), SQLITE_STATIC) != SQLITE_OK
				|| sqlite3_bind_int64(st, 7, base_ts + i) != SQLITE_OK
				|| sqlite3_bind_int64(st, 8, archkey__id_hash(sender, id)) != SQLITE_OK){
			goto fail;
		}
		if(sqlite3_step(st) != SQLITE_DONE){
			goto fail;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if(sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK){
		goto fail;
	}
	printf("{\"mode\":\"prefill\",\"rows\":%ld,\"seconds\":%.2f}\n", o->count,
			(double)(time__mono_ns() - t0) / 1e9);
	sqlite3_close(db);
	return 0;
fail:
	fprintf(stderr, "Error: prefill %s: %s\n", o->archive_db, db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 1;
}
