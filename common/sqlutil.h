/* sqlutil.h - small SQLite helpers shared by the stores (auth.db, archive.db). */
#ifndef MQCHAT_SQLUTIL_H
#define MQCHAT_SQLUTIL_H

#include <stdbool.h>

#include <sqlite3.h>

/* Read meta.schema_version (an integer kept as text) into *version, -1 when
 * the row is missing or not a number. Returns the SQLite result: SQLITE_OK,
 * or the error of the query; *prepared tells whether the query could be
 * prepared at all (false: no meta table, so not one of our stores). */
int sqlutil__schema_version(sqlite3 *db, int *version, bool *prepared);

#endif
