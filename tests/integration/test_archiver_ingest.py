"""The archiver stores what is sent on inbox and room topics, once, with the
sender, recipient and room taken from the topic; receipts raise a message's
status; what is not a valid envelope is counted, never stored."""
import json
import os
import struct
import time

import harness
from archiver_util import arch_env, inbox, room  # noqa: F401 (fixture)


def journal_record(topic, payload):
    """One record of archive.journal: magic, lengths, FNV-1a, topic, payload."""
    t = topic.encode()
    h = 2166136261
    for b in t + payload:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return struct.pack("=IIII", 0x4d514a31, len(t), len(payload), h) + t + payload


def test_dm_and_room_stored_with_topic_names(arch_env):
    env = arch_env(users=["alice", "bob"], rooms={"lobby": ["alice", "bob"]})
    alice = env.user("alice")
    alice.publish(inbox("bob", "alice"), json.dumps(
        {"id": "dm1", "type": "text", "body": "h\u00e9llo \\ \"q\"", "ts": 1234, "from": "mallory"}))
    alice.publish(room("lobby", "alice"), json.dumps({"id": "rm1", "type": "text", "body": "to all"}))
    env.wait_rows(2)
    got = env.rows()
    assert got[0] == ("alice", "bob", None, "d:alice|bob", "text", "dm1", "h\u00e9llo \\ \"q\"", 1234,
                      got[0][8], "sent")
    assert got[1][:8] == ("alice", None, "lobby", "r:lobby", "text", "rm1", "to all", None)
    assert abs(got[0][8] - time.time() * 1000) < 60000


def test_duplicate_id_stored_once(arch_env):
    env = arch_env(users=["alice", "bob", "carol"])
    alice = env.user("alice")
    for _ in range(3):
        alice.publish(inbox("bob", "alice"), json.dumps({"id": "same", "type": "text", "body": "once"}))
    # the same id from another sender is another message
    carol = env.user("carol")
    carol.publish(inbox("bob", "carol"), json.dumps({"id": "same", "type": "text", "body": "other"}))
    # a barrier: a later message is stored only after the earlier ones
    alice.publish(inbox("bob", "alice"), json.dumps({"id": "last", "type": "text", "body": "end"}))
    env.wait_rows(3)
    time.sleep(0.2)
    assert sorted(env.rows("SELECT sender, id FROM messages")) == [
        ("alice", "last"), ("alice", "same"), ("carol", "same")]


def test_receipts_raise_status_never_lower(arch_env):
    env = arch_env(users=["alice", "bob", "carol"])
    alice = env.user("alice")
    bob = env.user("bob")
    carol = env.user("carol")
    alice.publish(inbox("bob", "alice"), json.dumps({"id": "m1", "type": "text", "body": "hi"}))
    env.wait_rows(1)

    def status():
        return env.rows("SELECT status FROM messages WHERE id='m1'")[0][0]

    # carol was not the recipient: her receipt changes nothing
    carol.publish(inbox("alice", "carol"), json.dumps(
        {"id": "r0", "type": "receipt", "ref": "m1", "status": "read"}))
    bob.publish(inbox("alice", "bob"), json.dumps(
        {"id": "r1", "type": "receipt", "ref": "m1", "status": "delivered"}))
    harness.wait_for(lambda: status() == "delivered", what="delivered")
    bob.publish(inbox("alice", "bob"), json.dumps(
        {"id": "r2", "type": "receipt", "ref": "m1", "status": "read"}))
    harness.wait_for(lambda: status() == "read", what="read")
    bob.publish(inbox("alice", "bob"), json.dumps(
        {"id": "r3", "type": "receipt", "ref": "m1", "status": "delivered"}))
    # barrier: a message after the downgrade attempt
    alice.publish(inbox("bob", "alice"), json.dumps({"id": "m2", "type": "text", "body": "x"}))
    env.wait_rows(2)
    assert status() == "read"
    # receipts are not stored as messages
    assert [r[0] for r in env.rows("SELECT id FROM messages ORDER BY seq")] == ["m1", "m2"]


def test_room_receipts_leave_the_status(arch_env):
    """A room message's stored status is not raised by receipts: one
    member's "read" says nothing of the others (the receipt still reaches
    the sender's inbox; test_name_reuse.py). Nor, as before, by a
    non-member's."""
    env = arch_env(users=["alice", "bob", "carol"], rooms={"lobby": ["alice", "bob"]})
    alice = env.user("alice")
    bob = env.user("bob")
    carol = env.user("carol")
    alice.publish(room("lobby", "alice"), json.dumps({"id": "rm", "type": "text", "body": "hi room"}))
    env.wait_rows(1)

    def status():
        return env.rows("SELECT status FROM messages WHERE id='rm'")[0][0]
    carol.publish(inbox("alice", "carol"), json.dumps(
        {"id": "c1", "type": "receipt", "ref": "rm", "status": "read"}))
    bob.publish(inbox("alice", "bob"), json.dumps(
        {"id": "b2", "type": "receipt", "ref": "rm", "status": "read"}))
    # barrier: bob's next message is stored after his receipt was handled
    bob.publish(inbox("alice", "bob"), json.dumps({"id": "b3", "type": "text", "body": "x"}))
    env.wait_rows(2)
    assert status() == "sent", "a receipt changed a room message's status"


def test_invalid_payloads_counted_not_stored(arch_env):
    """The plugin refuses these at publish time, so no client can get them to
    the archiver; its own check is reached through the journal it replays at
    start, which goes through the same ingest code. A torn last record (a
    kill in the middle of a write) is dropped."""
    env = arch_env()
    env.arch.stop()
    recs = [
        ("chat/inbox/bob/alice", b"not json"),
        ("chat/inbox/bob/alice", b'{"id":"x","type":"text"}'),
        ("chat/inbox/bob/alice", b'{"id":"bad id!","type":"text","body":"b"}'),
        ("chat/inbox/bob/alice", b"\xff\xfe"),
        ("chat/inbox/Bob/alice", b'{"id":"ok1","type":"text","body":"b"}'),
        ("chat/inbox/bob/alice/extra", b'{"id":"ok2","type":"text","body":"b"}'),
        ("chat/room/lobby", b'{"id":"ok3","type":"text","body":"b"}'),
        ("chat/inbox/bob/alice", b'{"id":"nul","type":"text","body":"a\\u0000b"}'),
        ("chat/inbox/bob/alice", b'{"id":"good","type":"text","body":"\\n\\u001b[31m"}'),
    ]
    with open(env.datadir + "/archive.journal", "wb") as f:
        for t, p in recs:
            f.write(journal_record(t, p))
        f.write(journal_record("chat/inbox/bob/alice", b'{"id":"torn","type":"text","body":"b"}')[:-3])
    env.arch.start()
    env.arch.wait_log("journal replayed: 9 message(s)")
    assert "damaged tail" in env.arch.output()
    assert os.path.getsize(env.datadir + "/archive.journal") == 0
    assert env.rows("SELECT id, body FROM messages") == [("good", "\n\x1b[31m")]
    assert env.rows("SELECT value FROM meta WHERE key='invalid'")[0][0] == "8"
    out = env.arch.output()
    assert out.count("not archived") == 8
    assert "\x1b" not in out
