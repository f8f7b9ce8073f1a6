/* pg_fixture.h - the user store's tests on PostgreSQL: a server of the
 * test's own (tests/unit/pg_cluster.sh: initdb in a temp folder, a Unix
 * socket there only, as nobody when run as root), a connection of the
 * test's own to it, and a data folder whose store.conf names it. Included
 * by the tests that run on both backends (the Makefile gives them libpq
 * and the module beside them); functions static inline, so a test uses
 * what it needs; include it after cmocka.h (it asserts). Run from the
 * repository root, as scripts/test.sh does. */
#ifndef MQCHAT_PG_FIXTURE_H
#define MQCHAT_PG_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store_conf.h"

/* The backend under test: SQLite, or the PostgreSQL server in dir. */
static struct {
	bool pg;
	char dir[64];
	char conninfo[256];
} be;

/* A connection of the test's own to the server. */
static inline PGconn *pg_connect(void)
{
	PGconn *c = PQconnectdb(be.conninfo);

	if(PQstatus(c) != CONNECTION_OK) fail_msg("%s", PQerrorMessage(c));
	return c;
}

/* Run text (one or more statements) on the server, in schema auth. */
static inline void pg_sql(const char *text)
{
	PGconn *c = pg_connect();
	PGresult *r = PQexec(c, "SET client_min_messages TO warning; SET search_path TO auth");

	PQclear(r);
	r = PQexec(c, text);
	if(PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK){
		fail_msg("%s: %s", text, PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(c);
}

/* The first column of the first row of a query, as text. */
static inline void pg_value(const char *text, char *out, size_t outlen)
{
	PGconn *c = pg_connect();
	PGresult *r = PQexec(c, text);

	if(PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) fail_msg("%s: %s", text, PQresultErrorMessage(r));
	snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
}

/* Each test starts from an empty schema (auth, archive, ...), its folder
 * naming the server in store.conf as an operator would. */
static inline void pg_fresh_schema(const char *dir, const char *schema)
{
	char path[128], sql[96];
	FILE *fp;

	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	pg_sql(sql);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_CONF_NAME);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "# the test's own server\nstore postgresql\nstore_conninfo %s\n", be.conninfo);
	assert_int_equal(fclose(fp), 0);
}

/* The user store's tests: an empty schema auth. */
static inline void pg_fresh(const char *dir)
{
	pg_fresh_schema(dir, "auth");
}

/* The PostgreSQL run of what: start the server, run tests() in a child,
 * stop the server whatever the child did (a crash included). Skipped,
 * saying why, without PostgreSQL 15. 0: passed or skipped. */
static inline int pg_run(const char *what, int (*tests)(void))
{
	char cmd[256];
	int rc, st, failed = 1;
	pid_t pid;

	snprintf(be.dir, sizeof(be.dir), "/tmp/mqchat-unit-pg-XXXXXX");
	if(mkdtemp(be.dir) == NULL) return 1;
	snprintf(cmd, sizeof(cmd), "sh tests/unit/pg_cluster.sh start '%s'", be.dir);
	rc = system(cmd);
	if(WIFEXITED(rc) && WEXITSTATUS(rc) == 77){
		/* A comment line in cmocka's TAP output too. */
		printf("# skipped: %s on postgresql: PostgreSQL 15 is not installed"
				" (no initdb; Debian: postgresql-15)\n", what);
		failed = 0;
	}else if(rc == 0){
		be.pg = true;
		snprintf(be.conninfo, sizeof(be.conninfo), "host=%s/pg port=5432 user=mqchat dbname=postgres",
				be.dir);
		fflush(stdout);
		pid = fork();
		if(pid == 0) _exit(tests() == 0 ? 0 : 1);
		if(pid > 0 && waitpid(pid, &st, 0) == pid) failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}else{
		fprintf(stderr, "cannot start PostgreSQL (see %s/pg.log)\n", be.dir);
	}
	snprintf(cmd, sizeof(cmd), "sh tests/unit/pg_cluster.sh stop '%s'", be.dir);
	if(system(cmd) != 0) failed = 1;
	if(failed){
		fprintf(stderr, "the server's log, last lines:\n");
		snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/pg.log' >&2", be.dir);
		(void)!system(cmd);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", be.dir);
	if(system(cmd) != 0) failed = 1;
	return failed;
}

#endif
