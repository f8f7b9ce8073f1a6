/* sqlutil.c - small SQLite helpers shared by the stores (see sqlutil.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "sqlutil.h"

int sqlutil__schema_version(sqlite3 *db, int *version, bool *prepared)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*version = -1;
	rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL);
	*prepared = (rc == SQLITE_OK);
	if(rc != SQLITE_OK) return rc;
	rc = sqlite3_step(st);
	if(rc == SQLITE_ROW){
		const unsigned char *v = sqlite3_column_text(st, 0);
		if(v) sscanf((const char *)v, "%d", version);
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
}

int sqlutil__status(int rc)
{
	switch(rc & 0xff){
		case SQLITE_OK:
		case SQLITE_DONE:
		case SQLITE_ROW:
			return MQC_OK;
		case SQLITE_BUSY:
		case SQLITE_LOCKED:
			return MQC_ERR_BUSY;
		case SQLITE_CONSTRAINT:
			return MQC_ERR_EXISTS;
		case SQLITE_NOMEM:
			return MQC_ERR_NOMEM;
		case SQLITE_FULL:
		case SQLITE_READONLY:
		case SQLITE_IOERR:
		case SQLITE_CANTOPEN:
		case SQLITE_PERM:
			return MQC_ERR_IO;
		default:
			return MQC_ERR_DB;
	}
}

void sqlutil__newer_error(char *err, size_t errlen, const char *path, const char *what,
		int version, int known)
{
	mqc_seterr(err, errlen, "%s: %s schema version %d is newer than this program's (%d):"
			" it was written by a newer mqchat; run that release, or restore a backup"
			" made by this one (the file is left as it is)", path, what, version, known);
}

/* First the file and its WAL as the kernel sees them (an immutable file, a
 * read-only mount, modes): SQLite cannot tell, as it hands a new
 * connection a descriptor of this process's that is open for writing
 * already. Then the write lock, on a connection of its own. */
const char *sqlutil__writable(const char *path, int busy_ms, char *why, size_t whylen)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	sqlite3 *db = NULL;
	size_t i;
	int rc;

	for(i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++){
		char p[4200];

		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if(faccessat(AT_FDCWD, p, W_OK, AT_EACCESS) != 0 && (i == 0 || errno != ENOENT)){
			snprintf(why, whylen, "not writable: %s%s%s", strerror(errno), i ? " (" : "",
					i ? suffix[i] + 1 : "");
			if(i) snprintf(why + strlen(why), whylen - strlen(why), ")");
			return why;
		}
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if(rc == SQLITE_OK){
		sqlite3_busy_timeout(db, busy_ms);
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL, NULL);
		if(rc == SQLITE_OK){
			sqlite3_close(db);
			return NULL;
		}
		snprintf(why, whylen, "not writable: %s", sqlite3_errmsg(db));
	}else{
		snprintf(why, whylen, "cannot open: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	}
	sqlite3_close(db);
	return why;
}
