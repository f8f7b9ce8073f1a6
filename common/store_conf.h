/* store_conf.h - which backend holds the stores: DATA/store.conf.
 *
 * A data folder without store.conf keeps its stores in SQLite files
 * (auth.db, ...), as always. With one that says
 *
 *     store postgresql
 *     store_conninfo host=db1 dbname=mqchat user=mqchat
 *
 * the user store is schema `auth` in that PostgreSQL database (the
 * connection string is libpq's, "Connection Strings"). The file sits in
 * the data folder because every program that opens a store already knows
 * that folder: the CLI and the daemon (--data) and the plugin's loader
 * (plugin_opt_dbpath), so all of them agree with no option of their own.
 * It may hold a password: keep it 0600.
 *
 * The PostgreSQL code is a module of its own, mqchat_store_pg.so,
 * loaded only when the file asks for it: a single node needs no libpq,
 * and a broker loads it only in its loader child. */
#ifndef MQCHAT_STORE_CONF_H
#define MQCHAT_STORE_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define STORE_CONF_NAME "store.conf"
#define STORE_CONNINFO_MAX 1024
#define STORE_PG_MODULE "mqchat_store_pg.so"

enum store_kind { STORE_SQLITE = 0, STORE_POSTGRESQL = 1 };

struct store_conf {
	enum store_kind kind;
	char conninfo[STORE_CONNINFO_MAX];   /* PostgreSQL only */
	char path[4096];                     /* the setting file: names the store in messages */
};

/* Read dir/store.conf into out. No file: STORE_SQLITE, MQC_OK. A file
 * that cannot be read, a link, an unknown key or value, or postgresql
 * without store_conninfo: MQC_ERR_INVAL (or MQC_ERR_IO/PERM) with err
 * naming the file and line. */
int store_conf__read(const char *dir, struct store_conf *out, char *err, size_t errlen);

/* Whether the data folder dir keeps its user store in a file, auth.db
 * (no store.conf, or `store sqlite`): what may be checked for on disk
 * before opening it. False for a store.conf that cannot be read: the file
 * is not what is wrong, and userdb__open says what is. */
bool store_conf__auth_is_file(const char *dir);

/* The folder part of path (a store file in the data folder) into out. */
void store_conf__dir_of(const char *path, char *out, size_t outlen);

/* A function of the PostgreSQL module, loaded on first use from the
 * folder of the program (or plugin) that calls (the build folder; the
 * plugin's own installed folder), then ../lib/mqchat from there (a
 * program in PREFIX/bin, wherever PREFIX was at install), then the
 * library folder of the build's PREFIX. NULL with err when it is missing. */
void *store_conf__pg_symbol(const char *name, char *err, size_t errlen);

#endif
