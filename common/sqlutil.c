/* sqlutil.c - small SQLite helpers shared by the stores (see sqlutil.h). */
#include <stdio.h>

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
