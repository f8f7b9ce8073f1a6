"""test_store_pg.py - the operators' CLI on a user store in PostgreSQL.

A data folder whose store.conf says `store postgresql` keeps its user
store in schema `auth` of that database (common/store_conf.h). The CLI
must work the same there: init makes the schema (and no auth.db), the
user and room commands read and write it, each change the broker must
apply leaves a row in auth.changes, and every way the setting can be
wrong ends with a clear error and nothing made.

The server is the test's own (tests/unit/pg_cluster.sh: initdb in a temp
folder, a Unix socket there only, as nobody when run as root), one per
module, a database per test; the module is skipped, saying why, when
PostgreSQL 15 is not installed."""
import os
import shutil
import threading

import pytest

from pg_util import pg_server, psql
from cli_util import NODB, OK, RUNTIME, add_user, cli, fails, ok



@pytest.fixture(scope="module")
def server():
    """The folder of a running server of this module's own."""
    with pg_server() as top:
        yield top


_dbs = iter(range(1, 1000))


@pytest.fixture
def pgdir(server, tmp_path):
    """A data folder (not yet initialised) whose store.conf names a new
    database of the server; (folder, database)."""
    db = "t%d" % next(_dbs)
    psql(server, "postgres", "CREATE DATABASE %s" % db)
    d = str(tmp_path / "data")
    os.mkdir(d)
    write_conf(d, "store postgresql\nstore_conninfo host=%s port=5432 user=mqchat dbname=%s\n"
               % (os.path.join(server, "pg"), db))
    return d, db


def write_conf(d, text):
    with open(os.path.join(d, "store.conf"), "w") as f:
        f.write(text)
    os.chmod(os.path.join(d, "store.conf"), 0o600)


def test_cli_on_postgresql(server, pgdir):
    d, db = pgdir
    r = ok(d, "init")
    assert "user store: schema auth on PostgreSQL (%s/store.conf)\n" % d in r.out
    assert not os.path.exists(os.path.join(d, "auth.db"))
    assert psql(server, db, "SELECT value FROM auth.meta WHERE key='schema_version'") == [["3"]]
    # init again: nothing new, the same schema.
    ok(d, "init")

    assert add_user(d, "alice").out == "user alice added\n"
    add_user(d, "bob")
    ok(d, "room", "create", "hall")
    ok(d, "room", "add", "hall", "alice")
    assert ok(d, "user", "disable", "bob").out == "user bob disabled\n"
    assert ok(d, "user", "list").out == (
        "alice user enabled alice\n"
        "archiver service enabled archiver\n"
        "bob user disabled bob\n")
    assert ok(d, "room", "list").out == "hall - alice\n"
    # The same refusals as on SQLite.
    r = fails(d, 4, "user", "add", "alice", "--password-stdin", stdin="correct-horse\n")
    assert "alice" in r.err
    ok(d, "user", "del", "bob")
    r = fails(d, 4, "user", "add", "bob", "--password-stdin", stdin="correct-horse\n")

    # Each change the broker must apply, in order, as the loaders will read them.
    kinds = psql(server, db, "SELECT kind, name FROM auth.changes ORDER BY id")
    assert kinds == [["user", "archiver"], ["user", "alice"], ["user", "bob"], ["room", "hall"],
                     ["join", "hall/alice"], ["disable", "bob"], ["delete", "bob"]]
    assert psql(server, db, "SELECT count(*) FROM auth.retired WHERE name='bob'") == [["1"]]


def test_two_inits_at_once(server, pgdir, tmp_path):
    """Two nodes initialised at the same moment on one database: both
    succeed, and there is one schema with one archiver account."""
    d, db = pgdir
    other = str(tmp_path / "other")
    os.mkdir(other)
    shutil.copy(os.path.join(d, "store.conf"), other)
    results = {}

    def init(folder):
        results[folder] = cli(folder, "init")

    threads = [threading.Thread(target=init, args=(f,)) for f in (d, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r.rc == OK for r in results.values()), results
    assert psql(server, db, "SELECT count(*) FROM pg_namespace WHERE nspname='auth'") == [["1"]]
    assert psql(server, db, "SELECT key, value FROM auth.meta") == [["schema_version", "3"]]
    assert ok(d, "user", "list").out == "archiver service enabled archiver\n"


def test_newer_schema_refused(server, pgdir):
    d, db = pgdir
    ok(d, "init")
    psql(server, db, "UPDATE auth.meta SET value='4' WHERE key='schema_version'")
    r = fails(d, NODB, "user", "list")
    assert ("%s/store.conf: user store schema version 4 is newer than this program's (3)" % d) in r.err
    fails(d, NODB, "init")
    assert psql(server, db, "SELECT value FROM auth.meta WHERE key='schema_version'") == [["4"]]


def test_no_schema_yet(server, pgdir):
    d, _ = pgdir
    fails(d, NODB, "user", "list",
          err="%s/store.conf: no user store (schema auth) in this database"
              " (create it with `mqchat-archiver --data DIR init`)" % d)


@pytest.mark.parametrize("text, message", [
    ("store postgres\n", "store.conf:1: store is sqlite or postgresql, not 'postgres'"),
    ("store postgresql\n", "store.conf: store postgresql needs store_conninfo"),
    ("store postgresql\nstore_conninfo\n", "store.conf:2: store_conninfo needs a libpq connection string"
     " (under 1024 bytes)"),
    ("store postgresql\nconninfo host=x\n", "store.conf:2: unknown setting 'conninfo' (store, store_conninfo)"),
])
def test_bad_setting_refused(server, pgdir, text, message):
    d, db = pgdir
    write_conf(d, text)
    fails(d, RUNTIME, "user", "list", err="%s/%s" % (d, message))
    fails(d, RUNTIME, "init", err="%s/%s" % (d, message))
    assert not os.path.exists(os.path.join(d, "auth.db"))
    assert psql(server, db, "SELECT count(*) FROM pg_namespace WHERE nspname='auth'") == [["0"]]


def test_server_unreachable(server, pgdir):
    d, _ = pgdir
    write_conf(d, "store postgresql\nstore_conninfo host=%s port=5999 user=mqchat dbname=postgres"
               " connect_timeout=5\n" % os.path.join(server, "pg"))
    r = fails(d, RUNTIME, "user", "list")
    assert r.err.startswith("Error: %s/store.conf: cannot connect to PostgreSQL (" % d), r
    assert not os.path.exists(os.path.join(d, "auth.db"))


def test_sqlite_setting_is_the_default(tmp_path):
    """`store sqlite` is what no store.conf means: auth.db."""
    d = str(tmp_path / "data")
    os.mkdir(d)
    write_conf(d, "# the default\nstore sqlite\n")
    ok(d, "init")
    assert os.path.exists(os.path.join(d, "auth.db"))
    assert ok(d, "user", "list").out == "archiver service enabled archiver\n"
