"""Each schema step, from the program the other upgrade tests do not start
with: auth.db of version 1 and 2 opened first by `mqchat-archiver run`
(test_userdb_upgrade.py: first by the CLI and by the plugin), and
archive.db of version 1 opened first by the CLI (test_archive_upgrade.py:
first by the archiver). Each starts from the old form with rows in it and
compares rows after the upgrade, not counts."""
import os
import secrets
import shutil
import sqlite3
import subprocess

import pytest

import harness
from archiver_util import Archiver, Rpc, arch_env  # noqa: F401 (a fixture)
from test_archive_upgrade import COLS, FIXTURE as ARCHIVE_V1, fixture_rows
from test_userdb_upgrade import OLD, PW, dump, make_old_folder, upgraded


def without_service_secret(after, before):
    """after with the archiver's own row as before had it: the archiver
    keeps its service secret in the fast form (its one change of a row at
    start, test_userdb_upgrade.py)."""
    svc = [r for r in after["users"] if r[0] == "archiver"][0]
    assert svc[3].startswith("$sha256$"), svc
    old = [u for u in before["users"] if u[0] == "archiver"][0]
    out = dict(after)
    out["users"] = [r if r[0] != "archiver" else old for r in after["users"]]
    return out


@pytest.mark.parametrize("version", OLD)
def test_the_archiver_upgrades_an_old_user_store_first(datadir, make_broker, clients, version):
    folder = os.path.join(datadir, "old")
    path = make_old_folder(folder, "svc-" + secrets.token_hex(16), version)
    before = dump(path)
    port = harness.free_port()
    # No broker yet: the archiver opens (and upgrades) the stores at its
    # start, before it connects.
    arch = Archiver(folder, port)
    try:
        arch.start(wait=False)
        arch.wait_log("archiving 127.0.0.1:%d" % port)
        upgraded(before, without_service_secret(dump(path), before), version)
        # Then the broker: every account as before, the rooms served.
        b = make_broker(db=path, port=port)
        arch.wait_ready(timeout=60)
        alice = clients(b, "alice", PW, client_id="alice@phone")
        assert alice.connect() == 0
        bob = clients(b, "bob", PW, client_id="bob@phone")
        assert bob.connect() == 0
        sensor = clients(b, "sensor1", PW, client_id="sensor1@box")
        assert sensor.connect() != 0          # disabled in the old store, and still
        ans = Rpc(alice, "alice").call("rooms")
        assert sorted((r["room"], sorted(r["members"])) for r in ans["rooms"]) == [
            ("hall", ["alice"]), ("lab", ["alice", "bob", "sensor1"])]
        ans = Rpc(bob, "bob").call("blocked")
        assert ans["users"] == ["sensor1"]
        upgraded(before, without_service_secret(dump(path), before), version)
    finally:
        assert arch.stop() == 0, arch.output()


def v1_archive(folder):
    """folder/archive.db of schema version 1 (WAL) from the fixture."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "archive.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with open(ARCHIVE_V1) as f:
            db.executescript(f.read())
    finally:
        db.close()
    return path


def copy_db(src, dst):
    """A copy of the SQLite database src (its WAL included) at dst."""
    a, b = sqlite3.connect(src, timeout=10), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def all_tables(path):
    """Every row of every table but the search index's own and the meta
    'probe' (a write test of the archiver's start), in order."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        out = {}
        for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE"
                               " 'sqlite_%' AND name NOT LIKE 'msg_fts%'"):
            rows = db.execute('SELECT * FROM "%s"' % t).fetchall()
            out[t] = sorted((r for r in rows if not (t == "meta" and r[0] == "probe")), key=repr)
        out["fts"] = db.execute("SELECT rowid FROM msg_fts WHERE msg_fts MATCH 'lunch' OR msg_fts MATCH"
                                " 'milk' OR msg_fts MATCH 'lobby' ORDER BY rowid").fetchall()
        out["fts_docs"] = db.execute("SELECT id FROM msg_fts_docsize ORDER BY id").fetchall()
        return out
    finally:
        db.close()


def test_the_cli_upgrades_an_old_archive_first(arch_env):
    """An archive of version 1 opened first by the CLI (stats) is upgraded
    in place with everything kept, and comes out exactly as when the
    archiver opens it first (whose result test_archive_upgrade.py checks
    field by field)."""
    env = arch_env(users=["alice", "bob", "carol"], rooms={"lobby": ["alice", "bob", "carol"]},
                   start=False)
    env.store.sql("UPDATE users SET created=1")
    env.store.sql("UPDATE rooms SET created=1")
    path = v1_archive(env.datadir)
    twin = os.path.join(env.datadir, "twin")
    os.makedirs(twin)
    copy_db(path, os.path.join(twin, "archive.db"))
    before = fixture_rows()

    r = subprocess.run([harness.ARCHIVER, "--data", env.datadir, "stats"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "messages %d" % len(before) in r.stdout, r.stdout
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall() == [("2",)]
        assert db.execute("SELECT %s FROM messages ORDER BY seq" % COLS).fetchall() == before
    finally:
        db.close()
    cli_first = all_tables(path)

    # The same file opened first by the archiver (in the twin folder, with
    # the same accounts): the same tables, row for row.
    copy_db(env.store.path, os.path.join(twin, "auth.db"))
    shutil.copy(os.path.join(env.datadir, "archiver.pw"), os.path.join(twin, "archiver.pw"))
    arch = Archiver(twin, env.broker.port)
    try:
        arch.start()
        # the search index is filled by the archiver's index step: wait for it
        harness.wait_for(lambda: all_tables(os.path.join(twin, "archive.db"))["fts_docs"]
                         == cli_first["fts_docs"], what="the twin's search index")
    finally:
        assert arch.stop() == 0, arch.output()
    assert all_tables(os.path.join(twin, "archive.db")) == cli_first

    # And the archiver serves the CLI-upgraded archive: every old message.
    env.arch.start()
    rpc = Rpc(env.user("alice"), "alice")
    ans = rpc.call("sync", limit=500)
    assert [m["id"] for m in ans["messages"]] == [
        r[6] for r in before if r[1] == "alice" or r[2] == "alice" or r[3] == "lobby"]
