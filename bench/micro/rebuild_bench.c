/* rebuild_bench.c - how long the plugin's loader takes to build a snapshot
 * of a user store (snapshot__load_into into a fresh slot, as
 * plugin/loader.c builds one), without a broker. Not part of `make`:
 *
 *   make all && bench/micro/rebuild_bench.sh DATA/auth.db [RUNS]
 *
 * DATA is a data folder after `mqchat-archiver --data DATA init`; with a
 * store.conf saying `store postgresql` the store is PostgreSQL's (the
 * module is looked for beside the program: the script copies it). The
 * figures of plugin/cuts.c came from 100,000 accounts, 10,000 rooms and
 * 100,000 memberships added with SQL after init, in SQLite:
 *
 *   WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<100000)
 *     INSERT INTO users(name, kind, nick, pwhash, enabled, created)
 *     SELECT 'u'||i, 'user', 'u'||i, (SELECT pwhash FROM users WHERE name='archiver'), 1, 0 FROM s;
 *   (rooms 'r1'..'r10000'; members ('r'||(i%10000+1), 'u'||i) likewise)
 *
 * and the same with generate_series in PostgreSQL (schema auth). Prints
 * each build's wall-clock seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "err.h"
#include "plugin.h"
#include "timeutil.h"
#include "userdb.h"

/* As large as plugin_opt_snapshot_mb may make a slot; pages are used as
 * the build touches them. */
#define SLOT_BYTES ((size_t)1024 << 20)

int main(int argc, char **argv)
{
	struct userdb *udb;
	char err[400];
	int i, runs = argc > 2 ? atoi(argv[2]) : 5, rc;

	if(argc < 2){
		fprintf(stderr, "usage: rebuild_bench DATA/auth.db [RUNS]\n");
		return 2;
	}
	if(userdb__open(argv[1], 0, &udb, err, sizeof(err)) != MQC_OK){
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 1;
	}
	for(i = 0; i < runs; i++){
		void *slot = mmap(NULL, SLOT_BYTES, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		int64_t t0 = time__mono_ns();
		struct snapshot *s = slot != MAP_FAILED ? snapshot__new_in(slot, SLOT_BYTES) : NULL;

		rc = s ? snapshot__load_into(udb, s, err, sizeof(err)) : MQC_ERR_NOMEM;
		if(rc != MQC_OK){
			fprintf(stderr, "build %d: %s\n", i, s ? err : "no memory");
			return 1;
		}
		printf("build %d: %.3f s\n", i, (double)(time__mono_ns() - t0) / 1e9);
		munmap(slot, SLOT_BYTES);
	}
	userdb__close(udb);
	return 0;
}
