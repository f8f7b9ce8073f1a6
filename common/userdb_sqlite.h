/* userdb_sqlite.h - the SQLite user store's own connection, for what only
 * SQLite has (a test's raw SQL on the file as the store holds it). */
#ifndef MQCHAT_USERDB_SQLITE_H
#define MQCHAT_USERDB_SQLITE_H

#include <sqlite3.h>

#include "userdb.h"

/* The connection of a store the SQLite backend opened. */
sqlite3 *userdb_sqlite__handle(struct userdb *udb);

#endif
