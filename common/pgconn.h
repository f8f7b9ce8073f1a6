/* pgconn.h - the connection plumbing the stores on PostgreSQL share
 * (userdb_pg.c, archive_pg.c, push_store_pg.c): connecting, the session's
 * settings, the mapping of a result to an MQC_ code, a reconnection, and
 * the schema's version, made or upgraded in steps, checked. Each store
 * keeps its own statements, transactions and messages. Built only into
 * mqchat_store_pg.so (the one part linking libpq). */
#ifndef MQCHAT_PGCONN_H
#define MQCHAT_PGCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* The MQC_ code of a result (NULL: libpq could not make one): MQC_OK for
 * one that succeeded; else errmsg gets the message's first line and the
 * code says why: a constraint EXISTS, a lock not had in time, a deadlock,
 * a serialization failure or a cancel BUSY, a lost connection IO,
 * anything else DB. */
int pgconn__status(PGconn *c, PGresult *res, char *errmsg, size_t errmsglen);

/* Hand r, the result of a statement whose pgconn__status is rc, to the
 * caller: *res (if res is not NULL) gets it when rc is MQC_OK, to read and
 * PQclear; else (*res NULL) it is cleared here. Returns rc. */
int pgconn__result(PGresult *r, int rc, PGresult **res);

/* Statements without parameters, several at once; pgconn__status's code. */
int pgconn__exec(PGconn *c, const char *sql, char *errmsg, size_t errmsglen);

/* A connection to conninfo, its notices silenced: MQC_OK, MQC_ERR_NOMEM,
 * or MQC_ERR_IO with "PATH: cannot connect to PostgreSQL (...)" in err.
 * *out is set in every case (NULL only without memory): PQfinish it. */
int pgconn__connect(const char *conninfo, const char *path, PGconn **out, char *err, size_t errlen);

/* Silence c's notices (libpq prints them to stderr). */
void pgconn__quiet(PGconn *c);

/* Make a broken connection again: MQC_OK, or MQC_ERR_IO with errmsg.
 * The session's settings are the caller's to set again. */
int pgconn__reset(PGconn *c, char *errmsg, size_t errmsglen);

/* The session's settings: UTF-8 texts, schema's tables without a prefix,
 * locks waited for busy_ms, then more (NULL, or "; SET ..."). */
int pgconn__session(PGconn *c, const char *schema, int busy_ms, const char *more, char *errmsg,
		size_t errmsglen);

/* One step of a schema: a store of version from (0: no schema) becomes
 * one of version to. */
struct pgconn_step {
	int from, to;
	const char *sql;
};

/* A store's schema, as pgconn__check_schema checks it. */
struct pgconn_schema {
	const char *name;          /* the schema: auth, archive, push */
	const char *lock;          /* the advisory lock of its upgrades (two bigints, SQL text) */
	int version;               /* this build's */
	const struct pgconn_step *steps;
	size_t nsteps;
	const char *tables;        /* selects every table with the columns this build reads */
	const char *what;          /* the store in messages: "user store", "archive", "push store" */
	const char *label;         /* the schema in messages: "schema", "archive schema", ... */
	const char *missing;       /* NULL: version 0 is made; else the refusal of none */
	bool refused_step_is_schema;   /* a step the server refuses is MQC_ERR_SCHEMA, not DB */
};

/* Read the version (upgrading the schema first when may_upgrade and it is
 * older) and check the schema is this build's: MQC_OK, or an MQC_ code
 * with "PATH: ..." in err. *version gets what was read. */
int pgconn__check_schema(PGconn *c, const struct pgconn_schema *sc, bool may_upgrade,
		const char *path, int *version, char *errmsg, size_t errmsglen, char *err, size_t errlen);

#endif
