/* sqlutil.c - small SQLite helpers shared by the stores (see sqlutil.h). */
#include <stdio.h>

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
