"""A data folder of a previous release (auth.db at schema version 1 or 2,
made from tests/fixtures/userdb_schema_v1.sql or _v2.sql, the exact schema
each release shipped) is upgraded in place to version 3 on its first open,
with nothing lost: by the CLI, or by the broker's plugin and the archiver
when they open it first."""
import os
import secrets
import sqlite3
import time

import pytest

import harness
from archiver_util import Archiver, Rpc
from cli_util import EXISTS, fails, ok

FIXTURES = os.path.join(harness.ROOT, "tests", "fixtures")
OLD = [pytest.param(1, id="v1"), pytest.param(2, id="v2")]
PW = "password-xxxx"
TABLES = {"users": "name", "rooms": "name", "members": "room, user", "blocks": "user, blocked",
          "invites": "code"}


def make_old_folder(folder, service_pw, version):
    """auth.db as the release of that schema version left it (WAL), with a
    row in every table; archiver.pw; archive.db (its schema is unchanged)."""
    os.makedirs(folder, mode=0o750)
    path = os.path.join(folder, "auth.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with open(os.path.join(FIXTURES, "userdb_schema_v%d.sql" % version)) as f:
            db.executescript(f.read())
        now = int(time.time() * 1000)
        users = [("alice", "user", "Alice", PW, 1, now - 90 * 86400000),
                 ("bob", "user", "Bob", PW, 1, now - 80 * 86400000),
                 ("sensor1", "device", "sensor1", PW, 0, now - 70 * 86400000),
                 ("archiver", "service", "archiver", service_pw, 1, now - 100 * 86400000)]
        for name, kind, nick, pw, enabled, created in users:
            db.execute("INSERT INTO users(name, kind, nick, pwhash, enabled, created) VALUES(?,?,?,?,?,?)",
                       (name, kind, nick, harness.pbkdf2_hash(pw), enabled, created))
        db.execute("INSERT INTO rooms(name, retention_days, created) VALUES('lab', 7, ?)", (now - 60 * 86400000,))
        db.execute("INSERT INTO rooms(name, retention_days, created) VALUES('hall', 0, ?)", (now - 50 * 86400000,))
        for m in ("alice", "bob", "sensor1"):
            db.execute("INSERT INTO members(room, user) VALUES('lab', ?)", (m,))
        db.execute("INSERT INTO members(room, user) VALUES('hall', 'alice')")
        db.execute("INSERT INTO blocks(user, blocked) VALUES('bob', 'sensor1')")
        db.execute("INSERT INTO invites(code, uses_left, expires, created) VALUES('inv-1', 3, 0, ?)", (now,))
        if version >= 2:
            db.execute("INSERT INTO retired(name, created, deleted) VALUES('carol', ?, ?)",
                       (now - 40 * 86400000, now - 86400000))
    finally:
        db.close()
    fd = os.open(os.path.join(folder, "archiver.pw"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(service_pw + "\n")
    return path


def dump(path):
    db = sqlite3.connect(path)
    try:
        out = {t: db.execute("SELECT * FROM %s ORDER BY %s" % (t, k)).fetchall() for t, k in TABLES.items()}
        out["version"] = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
        out["tables"] = [t for (t,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('retired', 'devices',"
            " 'room_meta', 'room_admins', 'room_joined', 'rooms_retired')"
            " ORDER BY name")]
        if "retired" in out["tables"]:
            out["retired"] = db.execute("SELECT * FROM retired ORDER BY name").fetchall()
        return out
    finally:
        db.close()


def upgraded(before, after, version):
    """after is before at version 3: every row kept, the retired table
    (empty if version 1 had none), an empty devices table and the tables of
    rooms run by their members added."""
    assert before["version"] == [(str(version),)]
    assert before["tables"] == ([] if version == 1 else ["retired"])
    assert after["version"] == [("3",)] and after["tables"] == [
        "devices", "retired", "room_admins", "room_joined", "room_meta", "rooms_retired"]
    for t in TABLES:
        assert after[t] == before[t], t
    assert after["retired"] == before.get("retired", [])


@pytest.mark.parametrize("version", OLD)
def test_the_cli_upgrades_an_old_store_in_place(datadir, version):
    folder = os.path.join(datadir, "old")
    path = make_old_folder(folder, "svc-" + secrets.token_hex(16), version)
    before = dump(path)
    assert ok(folder, "user", "list").out == (
        "alice user enabled Alice\narchiver service enabled archiver\nbob user enabled Bob\n"
        "sensor1 device disabled sensor1\n")
    upgraded(before, dump(path), version)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM devices").fetchone() == (0,)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM room_meta").fetchone() == (0,)
    # A second open finds version 3 and changes nothing.
    assert ok(folder, "room", "list").out == "hall - alice\nlab 7 alice bob sensor1\n"
    upgraded(before, dump(path), version)
    # The new rules work on the upgraded store.
    assert ok(folder, "user", "del", "sensor1").out == "user sensor1 deleted\n"
    r = fails(folder, EXISTS, "user", "add", "sensor1", "--password-stdin", stdin=PW + "\n")
    assert "was deleted on" in r.err
    assert ok(folder, "user", "add", "sensor1", "--kind", "device", "--restore", "--password-stdin",
              stdin=PW + "\n").out == "user sensor1 restored\n"
    old = {r[0]: r for r in before["users"]}
    now = {r[0]: r for r in dump(path)["users"]}
    assert now["sensor1"][5] == old["sensor1"][5]    # the same person: the same created
    assert all(now[n] == old[n] for n in ("alice", "bob", "archiver"))


@pytest.mark.parametrize("version", OLD)
def test_the_broker_and_the_archiver_serve_an_old_folder(datadir, make_broker, clients, version):
    folder = os.path.join(datadir, "old")
    service_pw = "svc-" + secrets.token_hex(16)
    path = make_old_folder(folder, service_pw, version)
    before = dump(path)
    # The plugin opens the store first; the accounts log in as before.
    b = make_broker(db=path)
    alice = clients(b, "alice", PW, client_id="alice@phone")
    assert alice.connect() == 0
    arch = Archiver(folder, b.port)
    try:
        arch.start()
        rpc = Rpc(alice, "alice")
        ans = rpc.call("rooms")
        assert sorted((r["room"], sorted(r["members"])) for r in ans["rooms"]) == [
            ("hall", ["alice"]), ("lab", ["alice", "bob", "sensor1"])]
        assert rpc.call("sync")["messages"] == []
        after = dump(path)
        # The archiver keeps its service secret in the fast form (its one
        # change of a row at start); everything else is as it was.
        svc = [r for r in after["users"] if r[0] == "archiver"][0]
        assert svc[3].startswith("$sha256$")
        after["users"] = [r if r[0] != "archiver" else [u for u in before["users"] if u[0] == "archiver"][0]
                          for r in after["users"]]
        upgraded(before, after, version)
    finally:
        arch.stop()
