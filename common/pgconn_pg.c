/* pgconn_pg.c - the connection plumbing of the stores on PostgreSQL (see
 * pgconn.h). Built into mqchat_store_pg.so only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pgconn.h"
#include "sqlutil.h"

/* SQLSTATE class 23 (a constraint: a duplicate key) is EXISTS as SQLite's
 * CONSTRAINT is; 55P03 (lock_timeout), 40P01 (a deadlock), 40001 (a
 * serialization failure) and 57014 (a cancel) are BUSY as SQLite's busy
 * timeout is. */
int pgconn__status(PGconn *c, PGresult *res, char *errmsg, size_t errmsglen)
{
	const char *state;

	if(res == NULL){
		snprintf(errmsg, errmsglen, "%s", PQerrorMessage(c));
		errmsg[strcspn(errmsg, "\n")] = '\0';
		return PQstatus(c) == CONNECTION_BAD ? MQC_ERR_IO : MQC_ERR_NOMEM;
	}
	switch(PQresultStatus(res)){
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			return MQC_OK;
		default:
			break;
	}
	snprintf(errmsg, errmsglen, "%s", PQresultErrorMessage(res));
	errmsg[strcspn(errmsg, "\n")] = '\0';
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	/* No SQLSTATE: the connection failed, not the statement (libpq may not
	 * have marked it bad yet). 57P0x: the server is shutting down or
	 * restarting. */
	if(PQstatus(c) == CONNECTION_BAD || state == NULL || !strncmp(state, "57P0", 4)){
		return MQC_ERR_IO;
	}
	if(!strncmp(state, "23", 2)) return MQC_ERR_EXISTS;
	if(!strcmp(state, "55P03") || !strcmp(state, "40P01") || !strcmp(state, "40001")
			|| !strcmp(state, "57014")){
		return MQC_ERR_BUSY;
	}
	return MQC_ERR_DB;
}

int pgconn__result(PGresult *r, int rc, PGresult **res)
{
	if(rc != MQC_OK || res == NULL){
		PQclear(r);
		if(res) *res = NULL;
		return rc;
	}
	*res = r;
	return MQC_OK;
}

int pgconn__exec(PGconn *c, const char *sql, char *errmsg, size_t errmsglen)
{
	PGresult *r = PQexec(c, sql);
	int rc = pgconn__status(c, r, errmsg, errmsglen);

	PQclear(r);
	return rc;
}

/* libpq prints notices (a CREATE ... IF NOT EXISTS that skips) to stderr
 * by default; they are not errors. */
static void no_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

void pgconn__quiet(PGconn *c)
{
	PQsetNoticeProcessor(c, no_notices, NULL);
}

int pgconn__connect(const char *conninfo, const char *path, PGconn **out, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);
	char msg[512];

	*out = c;
	if(c == NULL) return MQC_ERR_NOMEM;
	if(PQstatus(c) != CONNECTION_OK){
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		/* Named by the setting file, never by the connection string (it
		 * may hold a password). */
		mqc_seterr(err, errlen, "%s: cannot connect to PostgreSQL (%s)", path, msg);
		return MQC_ERR_IO;
	}
	pgconn__quiet(c);
	return MQC_OK;
}

/* The store is shared and outlives this program's connection (the server
 * restarted, a failover): the stores make it again where nothing was done
 * on the old one yet. */
int pgconn__reset(PGconn *c, char *errmsg, size_t errmsglen)
{
	PQreset(c);
	if(PQstatus(c) != CONNECTION_OK){
		snprintf(errmsg, errmsglen, "%s", PQerrorMessage(c));
		errmsg[strcspn(errmsg, "\n")] = '\0';
		return MQC_ERR_IO;
	}
	return MQC_OK;
}

/* At open and again after a reconnection. Texts in UTF-8: every name,
 * nick and title is (the database must be able to hold them: created with
 * ENCODING 'UTF8'). A busy_ms of 0 is "do not wait" as for SQLite, not
 * PostgreSQL's "wait for ever": the shortest wait there is. */
int pgconn__session(PGconn *c, const char *schema, int busy_ms, const char *more, char *errmsg,
		size_t errmsglen)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SET client_encoding TO 'UTF8'; SET search_path TO %s;"
			" SET lock_timeout = %d%s", schema, busy_ms > 0 ? busy_ms : 1, more ? more : "");
	return pgconn__exec(c, sql, errmsg, errmsglen);
}

/* The schema's version: 0 when there is no SCHEMA.meta (no schema yet),
 * -1 without a version row. */
static int read_version(PGconn *c, const char *schema, int *version, char *errmsg, size_t errmsglen)
{
	const char *args[1] = {schema};
	char sql[128];
	PGresult *r;
	int rc;

	*version = 0;
	/* A scan of the catalog with this statement's snapshot, not
	 * to_regclass: its name look-up goes through a cache that an advisory
	 * lock does not refresh, so it may still miss a table another program
	 * committed while this one waited for the lock. */
	r = PQexecParams(c, "SELECT EXISTS(SELECT 1 FROM pg_catalog.pg_tables"
			" WHERE schemaname=$1 AND tablename='meta')", 1, NULL, args, NULL, NULL, 0);
	rc = pgconn__status(c, r, errmsg, errmsglen);
	if(rc != MQC_OK || strcmp(PQgetvalue(r, 0, 0), "t") != 0){
		PQclear(r);
		return rc;
	}
	PQclear(r);
	snprintf(sql, sizeof(sql), "SELECT value FROM %s.meta WHERE key='schema_version'", schema);
	r = PQexec(c, sql);
	rc = pgconn__status(c, r, errmsg, errmsglen);
	if(rc == MQC_OK) *version = PQntuples(r) > 0 ? atoi(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return rc;
}

/* Bring the schema to this build's, one step per transaction under the
 * schema lock. Another program may be doing the same: each step reads the
 * version again under the lock and does nothing if someone else did it. */
static int upgrade(PGconn *c, const struct pgconn_schema *sc, const char *path, char *errmsg,
		size_t errmsglen, char *err, size_t errlen)
{
	char lock[96];
	size_t i;
	int rc, version;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%s)", sc->lock);
	for(i = 0; i < sc->nsteps; i++){
		rc = pgconn__exec(c, "BEGIN", errmsg, errmsglen);
		if(rc == MQC_OK) rc = pgconn__exec(c, lock, errmsg, errmsglen);
		if(rc == MQC_OK) rc = read_version(c, sc->name, &version, errmsg, errmsglen);
		if(rc == MQC_OK && version == sc->steps[i].from){
			rc = pgconn__exec(c, sc->steps[i].sql, errmsg, errmsglen);
		}
		if(rc == MQC_OK) rc = pgconn__exec(c, "COMMIT", errmsg, errmsglen);
		if(rc != MQC_OK){
			mqc_seterr(err, errlen, "%s: cannot make the %s schema version %d (%s)", path,
					sc->what, sc->steps[i].to, errmsg);
			if(PQtransactionStatus(c) != PQTRANS_IDLE){
				(void)pgconn__exec(c, "ROLLBACK", errmsg, errmsglen);
			}
			return rc == MQC_ERR_DB && sc->refused_step_is_schema ? MQC_ERR_SCHEMA : rc;
		}
	}
	return MQC_OK;
}

int pgconn__check_schema(PGconn *c, const struct pgconn_schema *sc, bool may_upgrade,
		const char *path, int *version, char *errmsg, size_t errmsglen, char *err, size_t errlen)
{
	int rc;

	rc = read_version(c, sc->name, version, errmsg, errmsglen);
	if(rc == MQC_OK && *version >= 0 && *version < sc->version && may_upgrade){
		rc = upgrade(c, sc, path, errmsg, errmsglen, err, errlen);
		if(rc != MQC_OK) return rc;
		rc = read_version(c, sc->name, version, errmsg, errmsglen);
	}
	if(rc != MQC_OK){
		mqc_seterr(err, errlen, "%s: %s", path, errmsg);
		return rc;
	}
	if(*version == 0 && sc->missing){
		mqc_seterr(err, errlen, "%s: %s", path, sc->missing);
		return MQC_ERR_NOTFOUND;
	}
	if(*version > sc->version){
		sqlutil__newer_error(err, errlen, path, sc->what, *version, sc->version);
		return MQC_ERR_SCHEMA;
	}
	if(*version != sc->version){
		mqc_seterr(err, errlen, "%s: %s version %d, this build needs %d", path, sc->label,
				*version, sc->version);
		return MQC_ERR_SCHEMA;
	}
	if(pgconn__exec(c, sc->tables, errmsg, errmsglen) != MQC_OK){
		mqc_seterr(err, errlen, "%s: wrong %s (%s)", path, sc->label, errmsg);
		return MQC_ERR_SCHEMA;
	}
	return MQC_OK;
}
