"""A bad user store or bad options at start: the broker refuses to start and
says why. A store that goes bad while running: the service keeps going on
the last good snapshot."""
import os
import sqlite3
import time

import pytest

import harness
from plugin_util import Sync, envelope, expect_msg, login, subscribe_ok

PW = "password-xxxx"


def refuses(datadir, why, **kw):
    b = harness.Broker(datadir, **kw)
    try:
        rc = b.start(expect_fail=True)
        out = b.output()
    finally:
        b.stop()
    assert rc != 0, "broker exited 0 with %s" % why
    assert "mqchat" in out, "broker refused %s but its log does not say mqchat:\n%s" % (why, out)
    return out


def garbage(path, n=4096):
    with open(path, "wb") as f:
        f.write(b"this is not a database\n" + os.urandom(n))


def test_missing_store(datadir):
    refuses(datadir, "a missing store", db=os.path.join(datadir, "nope", "auth.db"))


def test_no_db_option(datadir, store):
    refuses(datadir, "no plugin_opt_dbpath", plugin_opts={"dbpath": None})


def test_store_is_a_directory(datadir):
    d = os.path.join(datadir, "dir.db")
    os.mkdir(d)
    refuses(datadir, "a directory as store", db=d)


def test_garbage_store(datadir):
    p = os.path.join(datadir, "garbage.db")
    garbage(p)
    refuses(datadir, "a garbage file as store", db=p)


def test_empty_file_store(datadir):
    p = os.path.join(datadir, "empty.db")
    open(p, "wb").close()
    refuses(datadir, "an empty file as store", db=p)


def test_store_without_schema(datadir):
    p = os.path.join(datadir, "other.db")
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE something(x)")
    db.commit()
    db.close()
    refuses(datadir, "a SQLite file with another schema", db=p)


def test_store_with_other_schema_version(datadir, store):
    """A store of a newer release (versions 1 and 2, the previous releases',
    are upgraded: test_userdb_upgrade.py)."""
    store.add_user("alice")
    store.sql("UPDATE meta SET value='4' WHERE key='schema_version'")
    refuses(datadir, "schema version 4")


def test_store_missing_a_table(datadir, store):
    store.sql("DROP TABLE blocks")
    refuses(datadir, "a store without the blocks table")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_store(datadir, store):
    os.chmod(store.path, 0)
    try:
        refuses(datadir, "an unreadable store")
    finally:
        os.chmod(store.path, 0o644)


@pytest.mark.parametrize("opt,value", [
    ("registration", "maybe"), ("max_payload", "abc"), ("max_payload", "-1"),
    ("reload_ms", "soon"), ("register_timeout", "x"), ("log_rate", "lots"),
    ("dbpath", ""),
])
def test_bad_option_values(datadir, store, opt, value):
    refuses(datadir, "plugin_opt_%s %s" % (opt, value), plugin_opts={opt: value})


def repair(path, users):
    """The schema again with these users, in one transaction: the plugin must
    never see a half-repaired store (it would kick the users not yet back)."""
    with open(harness.SCHEMA) as f:
        schema = f.read()
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        for stmt in schema.split(";"):
            if stmt.strip():
                db.execute(stmt)
        for name in users:
            db.execute("INSERT INTO users(name, kind, nick, pwhash, enabled, created) "
                       "VALUES(?, 'user', ?, ?, 1, 0)", (name, name, harness.pbkdf2_hash(PW)))
        db.execute("COMMIT")
    finally:
        db.close()


def working(clients, b, alice, bob, what):
    m = envelope("still working after " + what)
    alice.publish("chat/inbox/bob/alice", m)
    expect_msg(bob, "chat/inbox/bob/alice", m)
    assert not alice.disconnected.is_set() and not bob.disconnected.is_set(), (
        "a connection was closed after " + what)
    c = login(clients, b, "alice", PW, client_id="alice@new")
    c.close()


def settle(b):
    """Let the loader poll the broken store a few times (default 250 ms)."""
    time.sleep(1.2)
    assert b.proc.poll() is None, "the broker died:\n" + b.output()


@pytest.mark.parametrize("damage", ["tables dropped", "schema version changed",
                                    "replaced by garbage", "overwritten with garbage", "deleted"])
def test_store_goes_bad_while_running(store, make_broker, clients, damage):
    for name in ("alice", "bob"):
        store.add_user(name)
    b = make_broker()
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/inbox/bob/#")
    working(clients, b, alice, bob, "start")
    p = store.path
    if damage == "tables dropped":
        for t in ("members", "blocks", "users", "rooms"):
            store.sql("DROP TABLE %s" % t)
    elif damage == "schema version changed":
        store.sql("UPDATE meta SET value='99' WHERE key='schema_version'")
    elif damage == "replaced by garbage":
        tmp = p + ".new"
        garbage(tmp)
        os.replace(tmp, p)
        for ext in ("-wal", "-shm"):
            if os.path.exists(p + ext):
                os.unlink(p + ext)
    elif damage == "overwritten with garbage":
        with open(p, "r+b") as f:
            f.write(os.urandom(8192))
    else:
        os.unlink(p)
    settle(b)
    working(clients, b, alice, bob, "the store was " + damage)


@pytest.mark.parametrize("damage", ["tables dropped", "schema version changed"])
def test_store_recovers(store, make_broker, clients, damage):
    """Once the store is good again, its changes are picked up as usual."""
    for name in ("alice", "bob"):
        store.add_user(name)
    b = make_broker()
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/inbox/bob/#")
    if damage == "tables dropped":
        for t in ("members", "blocks", "users", "rooms"):
            store.sql("DROP TABLE %s" % t)
    else:
        store.sql("UPDATE meta SET value='99' WHERE key='schema_version'")
    settle(b)
    if damage == "tables dropped":
        repair(store.path, ("alice", "bob"))
    else:
        store.sql("UPDATE meta SET value='3' WHERE key='schema_version'")
    store.add_user("zed", password="zed-password")
    Sync(store, bob)()     # bob's new room shows once the repaired store is loaded
    login(clients, b, "zed", "zed-password").close()
    working(clients, b, alice, bob, "the store was repaired")
