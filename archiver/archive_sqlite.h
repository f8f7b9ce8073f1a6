/* archive_sqlite.h - inside the archive's SQLite backend: archive.c,
 * archive_edit.c, archive_search.c and archive_feed.c are the archive in
 * an SQLite file (archive.db); the rest of the program reaches it through
 * archive.h and archive_ext.h only. restore.c (SQLite-only by nature) and
 * tests' raw SQL use the connection too. */
#ifndef MQCHAT_ARCHIVE_SQLITE_H
#define MQCHAT_ARCHIVE_SQLITE_H

#include <sqlite3.h>

#include "archive.h"

/* The handle's own SQLite connection, for the backend's other files to
 * prepare their statements on: same thread, same transactions. Never
 * closed by the caller. */
sqlite3 *archive__db(struct archive *ar);

#endif
