"""An archive.db of schema version 1 (tests/fixtures/archive_schema_v1.sql,
the schema the previous release shipped, with rows of every kind it held)
is upgraded in place to version 2 when the archiver opens it first: every
message is still served (history, sync, get) as it was, and the new
members are filled in: each text's ordinal n, the conversations, the read
markers, the full-text index; new messages count on from there."""
import json
import os
import sqlite3
import subprocess

import pytest

import harness
from archiver_util import Rpc, arch_env, inbox, rows  # noqa: F401 (fixture)

FIXTURE = os.path.join(harness.ROOT, "tests", "fixtures", "archive_schema_v1.sql")
COLS = "seq, sender, recipient, room, conv, type, id, body, ts, server_ts, status"


def fixture_rows():
    db = sqlite3.connect(":memory:")
    with open(FIXTURE) as f:
        db.executescript(f.read())
    out = db.execute("SELECT %s FROM messages ORDER BY seq" % COLS).fetchall()
    db.close()
    return out


@pytest.fixture
def old(arch_env):
    """The archiver's data folder with the version 1 archive (WAL, as the
    release left it), accounts and the room created before its messages."""
    env = arch_env(users=["alice", "bob", "carol"], rooms={"lobby": ["alice", "bob", "carol"]},
                   start=False)
    env.store.sql("UPDATE users SET created=1")
    env.store.sql("UPDATE rooms SET created=1")
    db = sqlite3.connect(os.path.join(env.datadir, "archive.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    with open(FIXTURE) as f:
        db.executescript(f.read())
    db.close()
    env.before = fixture_rows()
    env.arch.start()
    env.alice = env.user("alice")
    return env


def archived(row):
    """The archived-message form of a version 1 row."""
    seq, sender, recipient, rm, conv, typ, mid, body, ts, server_ts, status = row
    m = {"seq": seq, "id": mid, "from": sender, "type": typ, "ts": ts, "server_ts": server_ts,
         "status": status}
    if recipient:
        m["to"] = recipient
    else:
        m["room"] = rm
    if typ == "event":
        m.update(json.loads(body))
    else:
        m["body"] = body
    return m


def test_every_message_still_served(old):
    rpc = Rpc(old.alice, "alice")
    mine = [archived(r) for r in old.before
            if r[1] == "alice" or r[2] == "alice" or r[3] == "lobby"]
    ans = rpc.call("sync", limit=500)
    assert ans["ok"] is True and ans["more"] is False
    assert ans["messages"] == mine
    ans = rpc.call("history", **{"with": "bob"})
    assert ans["messages"] == [m for m in reversed(mine) if {m["from"], m.get("to")} == {"alice", "bob"}]
    assert [m["id"] for m in ans["messages"]] == ["m-4", "m-3", "m-2", "m-1"]
    assert ans["messages"][0]["body"] == "it's 'quoted' \"double\" and \\ back"
    ans = rpc.call("history", room="lobby")
    assert [m["id"] for m in ans["messages"]] == ["ev-2", "r-2", "r-1", "ev-1"]
    assert ans["messages"][1]["body"] == "hi all \u00e9t\u00e9 \U0001F600"
    assert ans["messages"][0]["event"] == "added" and "body" not in ans["messages"][0]
    ans = rpc.call("history", **{"with": "alice"})
    assert [m["body"] for m in ans["messages"]] == ["note to self: buy milk"]
    # bob's side and carol's are whole too
    bob = Rpc(old.user("bob"), "bob")
    assert [m["id"] for m in bob.call("history", **{"with": "carol"})["messages"]] == ["c-1"]
    seq = [r[0] for r in old.before if r[6] == "m-1"][0]
    ans = rpc.call("get", seq=seq)
    assert ans["ok"] is True and ans["body"] == "hi alice" and ans["more"] is False
    # the statuses receipts set are kept
    assert [m["status"] for m in mine if m["id"] in ("m-1", "m-2")] == ["read", "delivered"]


def test_new_members_filled_in(old):
    d = old.datadir
    assert rows(d, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    assert rows(d, "SELECT value FROM meta WHERE key='invalid'") == [("2",)]
    # every old row is there, unchanged
    assert rows(d, "SELECT %s FROM messages ORDER BY seq" % COLS) == old.before
    assert rows(d, "SELECT id, n FROM messages ORDER BY seq") == [
        ("m-1", 1), ("m-2", 2), ("m-3", 3), ("n-1", 1), ("ev-1", None), ("r-1", 1), ("r-2", 2),
        ("c-1", 1), ("m-4", 4), ("ev-2", None)]
    # new columns: NULL in the old rows
    assert rows(d, "SELECT count(*) FROM messages WHERE ref IS NOT NULL OR of IS NOT NULL"
                " OR reply_to IS NOT NULL OR reply_from IS NOT NULL OR emoji IS NOT NULL"
                " OR remove IS NOT NULL OR edited IS NOT NULL OR deleted IS NOT NULL"
                " OR deleted_by IS NOT NULL") == [(0,)]
    seqs = {r[6]: r[0] for r in old.before}
    assert rows(d, "SELECT conv, last_seq, n FROM convs ORDER BY conv") == [
        ("d:alice|alice", seqs["n-1"], 1), ("d:alice|bob", seqs["m-4"], 4),
        ("d:bob|carol", seqs["c-1"], 1), ("r:lobby", seqs["ev-2"], 2)]
    # a marker at each person's own last text, or the last one they marked read
    assert rows(d, "SELECT user, conv, peer, room, read_seq, read_n FROM reads ORDER BY user, conv") == [
        ("alice", "d:alice|alice", "alice", None, seqs["n-1"], 1),
        ("alice", "d:alice|bob", "bob", None, seqs["m-2"], 2),
        ("alice", "r:lobby", None, "lobby", seqs["r-1"], 1),
        ("bob", "d:alice|bob", "alice", None, seqs["m-4"], 4),
        ("bob", "d:bob|carol", "carol", None, seqs["c-1"], 1),
        ("carol", "d:bob|carol", "bob", None, 0, 0),
        ("carol", "r:lobby", None, "lobby", seqs["r-2"], 2)]
    assert rows(d, "SELECT count(*) FROM reactions") == [(0,)]
    # every text is indexed (trigram: any 3 characters, any case), events are not
    assert rows(d, "SELECT rowid FROM msg_fts WHERE msg_fts MATCH 'LUNCH'") == [(seqs["m-2"],)]
    assert rows(d, "SELECT rowid FROM msg_fts WHERE msg_fts MATCH '\u00e9t\u00e9'") == [(seqs["r-2"],)]
    assert rows(d, "SELECT count(*) FROM msg_fts WHERE msg_fts MATCH 'event'") == [(0,)]
    assert rows(d, "SELECT count(*) FROM msg_fts_docsize") == [(8,)]
    assert rows(d, "SELECT value FROM meta WHERE key='fts_seq'") == [(str(old.before[-1][0]),)]


def test_new_messages_count_on(old):
    bob = old.user("bob")
    bob.publish(inbox("alice", "bob"), json.dumps({"id": "m-5", "type": "text", "body": "after the upgrade"}))
    harness.wait_for(lambda: rows(old.datadir, "SELECT n FROM messages WHERE id='m-5'") == [(5,)],
                     what="m-5 stored as the 5th text")
    seq = rows(old.datadir, "SELECT seq FROM messages WHERE id='m-5'")[0][0]
    assert seq > old.before[-1][0]
    assert rows(old.datadir, "SELECT last_seq, n FROM convs WHERE conv='d:alice|bob'") == [(seq, 5)]
    # sending moved bob's marker; alice has two texts unread (m-3 no, m-4 and m-5)
    assert rows(old.datadir, "SELECT read_seq, read_n FROM reads WHERE user='bob' AND conv='d:alice|bob'") \
        == [(seq, 5)]
    # indexed by the next step (ingest__index_tick), within a second
    harness.wait_for(lambda: rows(old.datadir, "SELECT rowid FROM msg_fts WHERE msg_fts MATCH 'upgrade'")
                     == [(seq,)], what="m-5 in the full-text index")
    assert int(rows(old.datadir, "SELECT value FROM meta WHERE key='fts_seq'")[0][0]) >= seq
    ans = Rpc(old.alice, "alice").call("history", **{"with": "bob", "limit": 1})
    assert ans["messages"][0]["id"] == "m-5" and ans["more"] is True


def test_opened_again_stays(old):
    """A second open (the CLI, the archiver again) finds version 2 and
    changes nothing."""
    old.arch.stop()
    before = rows(old.datadir, "SELECT * FROM convs ORDER BY conv") + \
        rows(old.datadir, "SELECT * FROM reads ORDER BY user, conv")
    r = subprocess.run([harness.ARCHIVER, "--data", old.datadir, "stats"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "messages %d" % len(old.before) in r.stdout
    old.arch.start()
    after = rows(old.datadir, "SELECT * FROM convs ORDER BY conv") + \
        rows(old.datadir, "SELECT * FROM reads ORDER BY user, conv")
    assert after == before
    assert rows(old.datadir, "SELECT count(*) FROM msg_fts_docsize") == [(8,)]


def test_conversations_after_the_upgrade(old):
    """The conversation list of an upgraded archive: newest first, unread
    counted from the markers the upgrade set."""
    seqs = {r[6]: r[0] for r in old.before}
    ans = Rpc(old.alice, "alice").call("conversations")
    assert ans["ok"] is True and ans["more"] is False
    got = [(c.get("with") or "#" + c["room"], c["last_seq"], c["read_seq"], c["unread"], c["last"]["id"])
           for c in ans["conversations"]]
    assert got == [("#lobby", seqs["ev-2"], seqs["r-1"], 1, "ev-2"),
                   ("bob", seqs["m-4"], seqs["m-2"], 2, "m-4"),
                   ("alice", seqs["n-1"], seqs["n-1"], 0, "n-1")]
    assert ans["conversations"][0]["title"] == ""
