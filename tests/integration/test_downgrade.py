"""A store written by a newer mqchat (auth.db at schema version 4,
archive.db at 3, push.db at 2: one past what this build knows, with a table
this build has never heard of) is refused by every program of this build
that opens it: the broker's plugin at start, `mqchat-archiver run`, and the
CLI commands. The error names the file, its version, the version this
program knows and what to do; the refused program changes nothing in the
file (its bytes and its rows are the same afterwards)."""
import hashlib
import os
import shutil
import sqlite3

import pytest

import harness
from archiver_util import Archiver, inbox
from cli_util import NODB, add_user, cli, ok

PW = "correct-horse"
# store: (file, meta key, this build's version, what the error calls it)
STORES = {"auth.db": ("schema_version", 3, "user store"),
          "archive.db": ("schema_version", 2, "archive"),
          "push.db": ("schema", 1, "push store")}


def checkpoint(path):
    """Copy the WAL into the database and empty it, as a program of the
    newer release leaves the file when it stops."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


@pytest.fixture(scope="module")
def current(request):
    """A data folder of this build with a row in every store: two accounts
    (CLI), a room, a message stored by the archiver, push.db made by the
    archiver at its start with one target in it. Every store checkpointed."""
    d = harness.make_datadir()
    b = arch = None
    try:
        ok(d, "init")
        add_user(d, "alice", PW)
        add_user(d, "bob", PW)
        ok(d, "room", "create", "lab")
        ok(d, "room", "add", "lab", "alice", "bob")
        b = harness.Broker(d)
        b.start()
        arch = Archiver(d, b.port).start()
        alice = harness.Client(b.port, "alice", PW, client_id="alice@phone")
        try:
            assert alice.connect() == 0
            alice.publish(inbox("bob", "alice"), harness.envelope("before the downgrade", id="m-1"))
            harness.wait_for(lambda: harness_rows(d, "archive.db", "SELECT id FROM messages WHERE id='m-1'") == [("m-1",)],
                             what="m-1 stored")
        finally:
            alice.close()
        harness.wait_for(lambda: os.path.exists(os.path.join(d, "push.db")), what="push.db made")
        assert arch.stop() == 0
        arch = None
        b.stop()
        b = None
        db = sqlite3.connect(os.path.join(d, "push.db"), isolation_level=None, timeout=10)
        try:
            db.execute("INSERT INTO targets(user, device, provider, data, secret, created) VALUES"
                       "('bob', 'phone', 'webhook', '{\"url\":\"http://127.0.0.1:9/h\"}', 'x', 1)")
        finally:
            db.close()
        for name in STORES:
            checkpoint(os.path.join(d, name))
        yield d
    finally:
        if arch:
            print(arch.output())
            arch.stop()
        if b:
            b.stop()
        shutil.rmtree(d, ignore_errors=True)


def harness_rows(d, name, sql):
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


class Newer:
    """A copy of the current folder whose store `name` is one version past
    this build's, as a newer release would leave it."""

    def __init__(self, current, datadir, name):
        self.d = os.path.join(datadir, "newer")
        shutil.copytree(current, self.d)
        self.name = name
        self.path = os.path.join(self.d, name)
        key, known, what = STORES[name]
        self.version, self.known, self.what = known + 1, known, what
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        try:
            db.execute("BEGIN")
            db.execute("CREATE TABLE future(x INTEGER PRIMARY KEY, note TEXT NOT NULL)")
            db.execute("INSERT INTO future(note) VALUES('written by a newer release')")
            db.execute("UPDATE meta SET value=? WHERE key=?", (str(self.version), key))
            db.execute("COMMIT")
        finally:
            db.close()
        checkpoint(self.path)
        self.before = self.state()

    def state(self):
        """The store's bytes (sha256 of the file, and of its WAL if it has
        one that is not empty) and every row of every table."""
        with open(self.path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        wal = self.path + "-wal"
        wal_bytes = os.path.getsize(wal) if os.path.exists(wal) else 0
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=10)
        try:
            dump = list(db.iterdump())
        finally:
            db.close()
        return {"sha256": digest, "wal_bytes": wal_bytes, "rows": dump}

    def unchanged(self):
        after = self.state()
        assert after["rows"] == self.before["rows"], "%s: rows changed by a refused program" % self.name
        assert after == self.before, "%s: bytes changed by a refused program" % self.name

    def says(self, text):
        """The error names the file, both versions and what to do."""
        want = "%s: %s schema version %d is newer than this program's (%d): it was written by a" \
            " newer mqchat; run that release, or restore a backup made by this one" % (
                self.path, self.what, self.version, self.known)
        assert want in text, "expected %r in:\n%s" % (want, text)


@pytest.fixture
def newer(current, datadir):
    return lambda name: Newer(current, datadir, name)


def test_the_broker_refuses_a_newer_user_store(newer):
    n = newer("auth.db")
    b = harness.Broker(n.d)
    try:
        rc = b.start(expect_fail=True)
        out = b.output()
    finally:
        b.stop()
    assert rc != 0, out
    n.says(out)
    n.unchanged()


@pytest.mark.parametrize("name", ["auth.db", "archive.db", "push.db"])
def test_the_archiver_refuses_to_run(newer, name):
    n = newer(name)
    arch = Archiver(n.d, harness.free_port())
    arch.start(wait=False)
    harness.wait_for(lambda: not arch.running(), what="the archiver to exit")
    assert arch.stop() == 1, arch.output()
    n.says(arch.output())
    n.unchanged()


@pytest.mark.parametrize("name,args", [
    ("auth.db", ["init"]),
    ("auth.db", ["user", "list"]),
    ("auth.db", ["user", "add", "carol", "--password-stdin"]),
    ("auth.db", ["room", "list"]),
    ("archive.db", ["init"]),
    ("archive.db", ["stats"]),
    ("archive.db", ["user", "export", "alice"]),
    ("archive.db", ["purge", "--older-than", "1"]),
], ids=lambda x: x if isinstance(x, str) else "-".join(x[:2]))
def test_the_cli_refuses(newer, name, args):
    n = newer(name)
    r = cli(n.d, *args, stdin=PW + "\n")
    assert r.rc == NODB, r
    assert r.out == "", r
    assert r.err.startswith("Error: "), r
    n.says(r.err)
    n.unchanged()


def test_the_cli_leaves_a_newer_push_store(newer):
    """`user del` changes auth.db (this build's) and says that the push
    targets stay in the push.db it cannot read, and why."""
    n = newer("push.db")
    r = cli(n.d, "user", "del", "bob")
    assert r.rc == 0 and r.out == "user bob deleted\n", r
    assert r.err.startswith("note: the push targets of bob stay in %s: " % n.path), r
    n.says(r.err)
    n.unchanged()
