/* push_store_sqlite.h - the push store's own SQLite connection, for what
 * only SQLite has (a test's raw SQL on push.db). */
#ifndef MQCHAT_PUSH_STORE_SQLITE_H
#define MQCHAT_PUSH_STORE_SQLITE_H

#include <sqlite3.h>

#include "push_store.h"

/* The connection of a push store push_store__open opened. */
sqlite3 *push_store_sqlite__handle(struct push_store *ps);

#endif
