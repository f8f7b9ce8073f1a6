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

/* The one mapping of an SQLite result (primary or extended code) to an
 * MQC_ status, for every store: OK/ROW/DONE are MQC_OK; BUSY and LOCKED are
 * MQC_ERR_BUSY; CONSTRAINT is MQC_ERR_EXISTS; a full disk, a read-only file,
 * an I/O error, a file that cannot be opened or a denied lock are all "cannot
 * write here now" (MQC_ERR_IO); anything else is MQC_ERR_DB. */
int sqlutil__status(int rc);

/* Can the SQLite file at path be written now (a /health check)? NULL if
 * so, else why, in why ("not writable: ...", "cannot open: ..."). Waits
 * up to busy_ms for another connection's write lock; changes nothing. */
const char *sqlutil__writable(const char *path, int busy_ms, char *why, size_t whylen);

/* The one refusal of a store written by a newer mqchat (schema version
 * newer than known, the one this program reads), into err: the file, both
 * versions and what to do. what names the store ("user store", "archive",
 * "push store"). The refusing program changes nothing in the file. */
void sqlutil__newer_error(char *err, size_t errlen, const char *path, const char *what,
		int version, int known);

#endif
