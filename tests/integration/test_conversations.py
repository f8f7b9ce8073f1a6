"""The conversation list, read markers, replies and reactions
(docs/PROTOCOL.md: hello, conversations, read): the list newest first and
paged, unread counts that my own texts and the read op move (forward
only, by seq or by ref and of), the read envelope reaching my other
device live, only what history would give (names are not forever, rooms I
left are gone), replies and reactions archived and shown, sync with the
reaction rows, and every bad input refused with a clear error and nothing
changed."""
import json
import os
import sqlite3
import time
import uuid

import pytest

import harness
from archiver_util import Rpc, arch_env, inbox, room  # noqa: F401 (fixture)
from archiver_util import rpc_fails as fails, rpc_ok as ok

READ_TOPIC = "chat/inbox/%s/archiver"


def text(client, topic, mid, body=None, **kw):
    env = {"id": mid, "type": "text", "body": body or mid, "ts": int(time.time() * 1000)}
    env.update(kw)
    client.publish(topic, json.dumps(env))


def react(client, topic, ref, of, emoji, remove=None, mid=None):
    env = {"id": mid or "x-" + uuid.uuid4().hex[:12], "type": "reaction", "ref": ref, "of": of,
           "emoji": emoji}
    if remove is not None:
        env["remove"] = remove
    client.publish(topic, json.dumps(env))


def seq_of(env, mid):
    r = env.rows("SELECT seq FROM messages WHERE id=? ORDER BY seq DESC LIMIT 1", mid)
    assert r, "no message %s" % mid
    return r[0][0]


def wait_stored(env, *ids):
    harness.wait_for(lambda: all(env.rows("SELECT 1 FROM messages WHERE id=?", i) for i in ids),
                     what="messages %s archived" % (ids,))


def convs(rpc, **args):
    return ok(rpc, "conversations", **args)


def key(c):
    return c.get("with") or "#" + c["room"]


@pytest.fixture
def chat(arch_env):
    env = arch_env(users=["alice", "bob", "carol", "dave"])
    env.alice = env.user("alice", client_id="alice@laptop")
    env.bob = env.user("bob")
    env.carol = env.user("carol")
    env.arpc = Rpc(env.alice, "alice")
    env.brpc = Rpc(env.bob, "bob")
    env.dave = env.user("dave")
    env.drpc = Rpc(env.dave, "dave")
    # anyone may add them to a room
    for rpc in (env.brpc, Rpc(env.carol, "carol"), env.drpc):
        ok(rpc, "privacy", room_adds="everyone")
    # a room made by its members: title "Lobby"
    ok(env.arpc, "room_create", room="lobby", title="Lobby")
    ok(env.arpc, "room_add", room="lobby", user="bob")
    ok(env.arpc, "room_add", room="lobby", user="carol")
    return env


def test_hello(chat):
    ans = ok(chat.arpc, "hello")
    assert ans["protocol"] == 2
    assert set(ans["features"]) >= {"carbons", "conversations", "read", "edit", "delete",
                                    "reactions", "replies", "typing", "search"}
    assert isinstance(ans["edit_window_s"], int) and ans["edit_window_s"] >= 0


def test_order_paging_unread(chat):
    text(chat.bob, inbox("alice", "bob"), "b1")
    text(chat.bob, inbox("alice", "bob"), "b2")
    text(chat.bob, inbox("alice", "bob"), "b3")
    wait_stored(chat, "b1", "b2", "b3")
    text(chat.carol, inbox("alice", "carol"), "c1")
    wait_stored(chat, "c1")
    text(chat.alice, inbox("dave", "alice"), "a1")
    wait_stored(chat, "a1")
    text(chat.bob, room("lobby", "bob"), "l1")
    wait_stored(chat, "l1")
    text(chat.alice, inbox("alice", "alice"), "self1", body="note to self")
    wait_stored(chat, "self1")
    ans = convs(chat.arpc)
    assert ans["more"] is False
    got = ans["conversations"]
    assert [key(c) for c in got] == ["alice", "#lobby", "dave", "carol", "bob"]
    by = {key(c): c for c in got}
    assert [c["last_seq"] for c in got] == sorted((c["last_seq"] for c in got), reverse=True)
    # bob: three texts, none read; the last message in the archived form
    b = by["bob"]
    assert (b["unread"], b["read_seq"], b["last_seq"]) == (3, 0, seq_of(chat, "b3"))
    assert b["last"]["id"] == "b3" and b["last"]["from"] == "bob" and b["last"]["to"] == "alice"
    assert b["last"]["body"] == "b3" and b["last"]["seq"] == b["last_seq"]
    # my own text: nothing unread there, my marker at it
    assert (by["dave"]["unread"], by["dave"]["read_seq"]) == (0, seq_of(chat, "a1"))
    assert (by["alice"]["unread"], by["alice"]["last"]["body"]) == (0, "note to self")
    # the room: its title, bob's text unread, the membership events not counted
    lob = by["#lobby"]
    assert (lob["title"], lob["unread"], lob["read_seq"]) == ("Lobby", 1, 0)
    assert lob["last"]["id"] == "l1" and lob["last"]["room"] == "lobby"
    assert "with" not in lob and "room" not in b
    # paging: limit, then before = the smallest last_seq of the page
    p1 = convs(chat.arpc, limit=2)
    assert [key(c) for c in p1["conversations"]] == ["alice", "#lobby"] and p1["more"] is True
    p2 = convs(chat.arpc, limit=2, before=p1["conversations"][-1]["last_seq"])
    assert [key(c) for c in p2["conversations"]] == ["dave", "carol"] and p2["more"] is True
    p3 = convs(chat.arpc, limit=2, before=p2["conversations"][-1]["last_seq"])
    assert [key(c) for c in p3["conversations"]] == ["bob"] and p3["more"] is False
    p4 = convs(chat.arpc, before=p3["conversations"][-1]["last_seq"])
    assert p4["conversations"] == [] and p4["more"] is False
    # a new text moves its conversation to the top
    text(chat.bob, inbox("alice", "bob"), "b4")
    wait_stored(chat, "b4")
    top = convs(chat.arpc, limit=1)["conversations"][0]
    assert (key(top), top["unread"], top["last"]["id"]) == ("bob", 4, "b4")
    # bob's side: his own texts, nothing unread; dave's: alice's text unread
    bob_side = {key(c): c for c in convs(chat.brpc)["conversations"]}
    assert bob_side["alice"]["unread"] == 0 and bob_side["#lobby"]["unread"] == 0
    d = convs(chat.drpc)["conversations"]
    assert [(key(c), c["unread"]) for c in d] == [("alice", 1)]


def test_read_marker_forward_only(chat):
    for i in range(1, 5):
        text(chat.bob, inbox("alice", "bob"), "b%d" % i)
    wait_stored(chat, "b1", "b2", "b3", "b4")
    s = {i: seq_of(chat, "b%d" % i) for i in range(1, 5)}
    ans = ok(chat.arpc, "read", **{"with": "bob", "seq": s[2]})
    assert (ans["read_seq"], ans["unread"]) == (s[2], 2)
    ans = ok(chat.arpc, "read", **{"with": "bob", "ref": "b3", "of": "bob"})
    assert (ans["read_seq"], ans["unread"]) == (s[3], 1)
    # never back, by seq or by ref
    ans = ok(chat.arpc, "read", **{"with": "bob", "seq": s[1]})
    assert (ans["read_seq"], ans["unread"]) == (s[3], 1)
    ans = ok(chat.arpc, "read", **{"with": "bob", "ref": "b2", "of": "bob"})
    assert (ans["read_seq"], ans["unread"]) == (s[3], 1)
    c = convs(chat.arpc)["conversations"][0]
    assert (key(c), c["read_seq"], c["unread"]) == ("bob", s[3], 1)
    # my own text clears the rest
    text(chat.alice, inbox("bob", "alice"), "a1")
    wait_stored(chat, "a1")
    c = convs(chat.arpc)["conversations"][0]
    assert (c["read_seq"], c["unread"]) == (seq_of(chat, "a1"), 0)
    # bob's marker is his own: alice's text is unread for him
    assert convs(chat.brpc)["conversations"][0]["unread"] == 1
    # in a room: the marker at a membership event counts the texts before it
    text(chat.bob, room("lobby", "bob"), "l1")
    text(chat.bob, room("lobby", "bob"), "l2")
    wait_stored(chat, "l1", "l2")
    ans = ok(chat.arpc, "read", room="lobby", seq=seq_of(chat, "l1"))
    assert (ans["read_seq"], ans["unread"]) == (seq_of(chat, "l1"), 1)
    ok(chat.arpc, "room_add", room="lobby", user="dave")
    harness.wait_for(lambda: chat.rows("SELECT seq FROM messages WHERE room='lobby' AND type='event'"
                                       " AND body LIKE '%dave%'"), what="the added event archived")
    ev = chat.rows("SELECT seq FROM messages WHERE room='lobby' AND type='event' ORDER BY seq DESC LIMIT 1")[0][0]
    ans = ok(chat.arpc, "read", room="lobby", seq=ev)
    assert (ans["read_seq"], ans["unread"]) == (ev, 0)


def test_read_envelope_reaches_my_other_device(chat):
    phone = chat.user("alice", client_id="alice@phone")
    assert phone.subscribe("chat/inbox/alice/#") in (1, 2)
    text(chat.bob, inbox("alice", "bob"), "b1")
    text(chat.bob, inbox("alice", "bob"), "b2")
    text(chat.bob, room("lobby", "bob"), "l1")
    wait_stored(chat, "b1", "b2", "l1")
    n = chat.count()
    ans = ok(chat.arpc, "read", **{"with": "bob", "seq": seq_of(chat, "b1")})
    seen = []
    while True:
        m = phone.get()
        if m.topic == READ_TOPIC % "alice":
            break
        seen.append(m.topic)
    assert all(t == inbox("alice", "bob") for t in seen)
    env = json.loads(m.payload)
    assert env["type"] == "read" and env["id"].startswith("rd-")
    assert (env["with"], env["seq"], env["unread"]) == ("bob", ans["read_seq"], ans["unread"])
    assert "room" not in env
    ans = ok(chat.arpc, "read", room="lobby", ref="l1", of="bob")
    m = phone.get()
    env = json.loads(m.payload)
    assert m.topic == READ_TOPIC % "alice"
    assert (env["type"], env["room"], env["seq"], env["unread"]) == ("read", "lobby", ans["read_seq"], 0)
    # a marker that does not move tells nobody
    ok(chat.arpc, "read", **{"with": "bob", "seq": seq_of(chat, "b1")})
    phone.expect_none()
    # never stored: the archive holds the texts only
    assert chat.count() == n
    assert chat.rows("SELECT count(*) FROM messages WHERE type NOT IN ('text','event')") == [(0,)]


def test_names_not_forever(chat):
    text(chat.bob, inbox("carol", "bob"), "old1", body="to the first carol")
    text(chat.carol, room("lobby", "carol"), "oldroom")
    wait_stored(chat, "old1", "oldroom")
    crpc = Rpc(chat.carol, "carol")
    assert [key(c) for c in convs(crpc)["conversations"]] == ["#lobby", "bob"]
    # carol's account goes, and the name is someone else's later
    chat.carol.close()
    chat.store.sql("DELETE FROM members WHERE user='carol'")
    chat.store.delete_user("carol")
    time.sleep(0.01)
    carol2 = chat.user("carol", add=True)
    crpc2 = Rpc(carol2, "carol")
    assert convs(crpc2)["conversations"] == []
    # bob still has his side
    assert "carol" in [key(c) for c in convs(chat.brpc)["conversations"]]
    text(chat.bob, inbox("carol", "bob"), "new1", body="to the new carol")
    wait_stored(chat, "new1")
    got = convs(crpc2)["conversations"]
    assert [(key(c), c["unread"], c["read_seq"], c["last"]["id"]) for c in got] == [("bob", 1, 0, "new1")]
    # the read op never reaches the earlier holder's messages
    fails(crpc2, "not_found", "read", **{"with": "bob", "ref": "old1", "of": "bob"})
    fails(crpc2, "not_found", "read", **{"with": "bob", "seq": seq_of(chat, "old1")})
    ans = ok(crpc2, "read", **{"with": "bob", "ref": "new1", "of": "bob"})
    assert (ans["read_seq"], ans["unread"]) == (seq_of(chat, "new1"), 0)


def test_rooms_i_left_are_gone(chat):
    ok(chat.arpc, "room_create", room="hikers", title="Hikers")
    text(chat.bob, room("lobby", "bob"), "l1")
    wait_stored(chat, "l1")
    assert [key(c) for c in convs(chat.arpc)["conversations"]] == ["#lobby", "#hikers"]
    ok(chat.arpc, "room_leave", room="lobby")
    assert [key(c) for c in convs(chat.arpc)["conversations"]] == ["#hikers"]
    fails(chat.arpc, "forbidden", "read", room="lobby", seq=seq_of(chat, "l1"))
    # deleted and made again: the new room starts empty for everyone
    ok(chat.arpc, "room_delete", room="hikers")
    assert convs(chat.arpc)["conversations"] == []
    assert [key(c) for c in convs(chat.brpc)["conversations"]] == ["#lobby"]


def history(rpc, **args):
    return ok(rpc, "history", **args)["messages"]


def test_replies_and_reactions(chat):
    t = inbox("alice", "bob")
    text(chat.bob, t, "m1", body="lunch?")
    wait_stored(chat, "m1")
    text(chat.alice, inbox("bob", "alice"), "m2", body="yes!", reply_to="m1", reply_from="bob")
    wait_stored(chat, "m2")
    react(chat.alice, inbox("bob", "alice"), "m1", "bob", "\U0001F44D", mid="x1")
    wait_stored(chat, "x1")
    react(chat.bob, t, "m1", "bob", "\u2764", mid="x2")
    wait_stored(chat, "x2")
    react(chat.bob, t, "m1", "bob", "\U0001F44D", mid="x3")
    wait_stored(chat, "x3")
    # a second add by alice (another id) changes nothing; a redelivery neither
    react(chat.alice, inbox("bob", "alice"), "m1", "bob", "\U0001F44D", mid="x4")
    react(chat.alice, inbox("bob", "alice"), "m1", "bob", "\U0001F44D", mid="x1")
    wait_stored(chat, "x4")
    h = history(chat.arpc, **{"with": "bob"})
    assert [m["id"] for m in h] == ["m2", "m1"]          # texts only
    m2, m1 = h
    assert (m2["reply_to"], m2["reply_from"], m2["body"]) == ("m1", "bob", "yes!")
    assert "reactions" not in m2 and "reply_to" not in m1
    assert m1["reactions"] == [{"emoji": "\U0001F44D", "users": ["alice", "bob"]},
                               {"emoji": "\u2764", "users": ["bob"]}]
    assert "edited" not in m1 and "deleted" not in m1
    # taken back
    react(chat.alice, inbox("bob", "alice"), "m1", "bob", "\U0001F44D", remove=True, mid="x5")
    wait_stored(chat, "x5")
    m1 = history(chat.brpc, **{"with": "alice"})[1]
    # emojis in the order of the first reaction still there
    assert m1["reactions"] == [{"emoji": "\u2764", "users": ["bob"]},
                               {"emoji": "\U0001F44D", "users": ["bob"]}]
    # a reaction to nothing is kept for sync, and applies to nothing
    react(chat.bob, t, "nope", "alice", "\U0001F600", mid="x6")
    wait_stored(chat, "x6")
    assert chat.rows("SELECT count(*) FROM reactions") == [(2,)]
    # sync with the change rows: the reactions as rows of their own, oldest first
    s = ok(chat.arpc, "sync", limit=500, changes=True)["messages"]
    dm = [m for m in s if m.get("to") in ("alice", "bob")]
    assert [m["id"] for m in dm] == ["m1", "m2", "x1", "x2", "x3", "x4", "x5", "x6"]
    x1 = dm[2]
    assert (x1["type"], x1["ref"], x1["of"], x1["emoji"], x1["remove"], x1["from"], x1["to"]) == \
        ("reaction", "m1", "bob", "\U0001F44D", False, "alice", "bob")
    assert "body" not in x1
    # sync without them (an app of protocol 1): texts as they are now, and
    # events, as history gives them; a bad flag changes nothing.
    plain = [m for m in ok(chat.arpc, "sync", limit=500)["messages"] if m.get("to") in ("alice", "bob")]
    assert [m["id"] for m in plain] == ["m1", "m2"] and all(m["type"] == "text" for m in plain)
    assert plain[0]["reactions"] == m1["reactions"]
    for bad in ("yes", 1, None):
        fails(chat.arpc, "bad_request", "sync", changes=bad)
    assert dm[6]["remove"] is True
    # a reaction in a room
    text(chat.bob, room("lobby", "bob"), "l1")
    wait_stored(chat, "l1")
    react(chat.carol, room("lobby", "carol"), "l1", "bob", "\U0001F389", mid="x7")
    wait_stored(chat, "x7")
    h = history(chat.arpc, room="lobby")
    assert h[0]["id"] == "l1" and h[0]["reactions"] == [{"emoji": "\U0001F389", "users": ["carol"]}]
    # the conversation list shows the text, not the reaction
    c = convs(chat.arpc)["conversations"]
    assert c[0]["last"]["id"] == "l1" and c[1]["last"]["id"] == "m2"


def test_tombstone_drops_reactions_and_index(chat):
    """A deleted text (what the delete op writes) reads as a tombstone
    everywhere: no body, deleted and deleted_by; its reactions and its
    index entry go with it."""
    text(chat.bob, inbox("alice", "bob"), "m1", body="secret lunch plans")
    wait_stored(chat, "m1")
    react(chat.alice, inbox("bob", "alice"), "m1", "bob", "\U0001F44D", mid="x1")
    wait_stored(chat, "x1")
    seq = seq_of(chat, "m1")
    harness.wait_for(lambda: chat.rows("SELECT rowid FROM msg_fts WHERE msg_fts MATCH 'lunch'") == [(seq,)],
                     what="m1 indexed")
    db = sqlite3.connect(os.path.join(chat.datadir, "archive.db"), timeout=10)
    with db:
        db.execute("UPDATE messages SET body='', deleted=1764892950000, deleted_by='bob' WHERE seq=?", (seq,))
    db.close()
    assert chat.rows("SELECT count(*) FROM reactions") == [(0,)]
    assert chat.rows("SELECT rowid FROM msg_fts WHERE msg_fts MATCH 'lunch'") == []
    m = history(chat.arpc, **{"with": "bob"})[0]
    assert m == {"seq": seq, "id": "m1", "from": "bob", "to": "alice", "type": "text", "body": "", "ts": m["ts"],
                 "server_ts": m["server_ts"], "status": "sent", "deleted": 1764892950000,
                 "deleted_by": "bob"}
    ans = ok(chat.arpc, "get", seq=seq)
    assert ans == {"id": ans["id"], "ok": True, "seq": seq, "type": "text", "deleted": 1764892950000,
                   "deleted_by": "bob"}
    assert convs(chat.arpc)["conversations"][0]["last"] == m


def snapshot(env):
    return env.rows("SELECT * FROM reads ORDER BY user, conv"), env.count()


def test_bad_inputs(chat):
    text(chat.bob, inbox("alice", "bob"), "b1")
    text(chat.carol, inbox("bob", "carol"), "c1")
    ok(chat.brpc, "room_create", room="secret")
    wait_stored(chat, "b1", "c1")
    harness.wait_for(lambda: chat.rows("SELECT 1 FROM messages WHERE room='secret'"), what="secret created")
    before = snapshot(chat)
    a = chat.arpc
    for bad in (0, 101, -1, "5", 1.5, None, True):
        ans = fails(a, "bad_request", "conversations", limit=bad)
        assert "limit" in ans["message"]
    for bad in (0, -3, "9", 2.0, None, []):
        ans = fails(a, "bad_request", "conversations", before=bad)
        assert "before" in ans["message"]
    b1 = seq_of(chat, "b1")
    fails(a, "bad_request", "read", seq=b1)                                   # neither with nor room
    fails(a, "bad_request", "read", **{"with": "bob", "room": "lobby", "seq": b1})
    fails(a, "bad_request", "read", **{"with": "Bob!", "seq": b1})
    fails(a, "bad_request", "read", **{"with": 7, "seq": b1})
    fails(a, "bad_request", "read", room="a/b", seq=b1)
    fails(a, "bad_request", "read", **{"with": "bob"})                        # no seq, no ref
    fails(a, "bad_request", "read", **{"with": "bob", "seq": b1, "ref": "b1", "of": "bob"})
    for bad in (0, -1, "1", 1.0, None):
        ans = fails(a, "bad_request", "read", **{"with": "bob", "seq": bad})
        assert "seq" in ans["message"]
    fails(a, "bad_request", "read", **{"with": "bob", "ref": "b1"})           # ref without of
    fails(a, "bad_request", "read", **{"with": "bob", "of": "bob"})
    fails(a, "bad_request", "read", **{"with": "bob", "ref": "b 1", "of": "bob"})
    fails(a, "bad_request", "read", **{"with": "bob", "ref": "x" * 65, "of": "bob"})
    fails(a, "bad_request", "read", **{"with": "bob", "ref": "b1", "of": "Bob"})
    fails(a, "bad_request", "read", **{"with": "bob", "ref": 5, "of": "bob"})
    # nothing there: unknown conversation, a message of another one, an unknown ref
    ans = fails(a, "not_found", "read", **{"with": "dave", "seq": b1})
    assert "no such message" in ans["message"]
    fails(a, "not_found", "read", **{"with": "nobody", "seq": b1})
    fails(a, "not_found", "read", **{"with": "bob", "seq": seq_of(chat, "c1")})
    fails(a, "not_found", "read", **{"with": "bob", "seq": 10 ** 12})
    fails(a, "not_found", "read", **{"with": "bob", "ref": "b1", "of": "alice"})
    fails(a, "not_found", "read", **{"with": "bob", "ref": "c1", "of": "carol"})
    fails(a, "not_found", "read", room="lobby", seq=b1)
    # rooms I am not in, or that do not exist: as history
    fails(a, "forbidden", "read", room="secret", seq=b1)
    fails(a, "forbidden", "read", room="nope", seq=b1)
    assert snapshot(chat) == before


def test_retention_and_erasure_keep_it_sane(chat):
    """Messages going away (purge and retention delete alike) take their
    index entries and reactions along; a conversation's last message moves
    back to what is left, and one with nothing left leaves the list with
    nothing unread; erasing a person also takes their reactions and
    markers."""
    from cli_util import cli, put_message
    old = int(time.time() * 1000) - 40 * 86400 * 1000
    # an old conversation of bob and carol, and an old text in bob and alice's
    o1 = put_message(chat.datadir, "carol", "ancient zebra talk", recipient="bob", server_ts=old, msg_id="o1")
    o2 = put_message(chat.datadir, "bob", "old giraffe news", recipient="alice", server_ts=old + 1, msg_id="o2")
    text(chat.bob, inbox("alice", "bob"), "new1", body="fresh okapi news")
    wait_stored(chat, "new1")
    react(chat.carol, room("lobby", "carol"), "l0", "bob", "\U0001F44D", mid="x0")   # nothing yet: no target
    text(chat.bob, room("lobby", "bob"), "l1", body="lobby llama")
    wait_stored(chat, "l1")
    react(chat.carol, room("lobby", "carol"), "l1", "bob", "\U0001F44D", mid="x1")
    react(chat.alice, inbox("bob", "alice"), "new1", "bob", "\u2764", mid="x2")
    wait_stored(chat, "x1", "x2")
    db = sqlite3.connect(os.path.join(chat.datadir, "archive.db"), timeout=10)
    with db:
        db.execute("INSERT INTO reactions(seq, user, emoji, at) VALUES(?, 'bob', 'z', ?)", (o1, old))
    db.close()
    for word, seq in (("zebra", o1), ("giraffe", o2), ("okapi", seq_of(chat, "new1"))):
        harness.wait_for(lambda: chat.rows("SELECT rowid FROM msg_fts WHERE msg_fts MATCH ?", word) == [(seq,)],
                         what="%s indexed" % word)
    assert chat.rows("SELECT last_seq, n FROM convs WHERE conv='d:bob|carol'") == [(o1, 1)]
    r = cli(chat.datadir, "purge", "--older-than", "30")
    assert r.rc == 0, r
    assert "2 messages purged" in r.out
    assert chat.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH 'zebra OR giraffe'") == [(0,)]
    assert chat.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH 'okapi'") == [(1,)]
    assert chat.rows("SELECT seq FROM reactions ORDER BY seq") == [(seq_of(chat, "new1"),), (seq_of(chat, "l1"),)]
    # nothing left between bob and carol: out of the list, nothing unread; n kept
    assert chat.rows("SELECT last_seq, n FROM convs WHERE conv='d:bob|carol'") == [(0, 1)]
    assert chat.rows("SELECT read_n FROM reads WHERE user='bob' AND conv='d:bob|carol'") == [(1,)]
    assert "carol" not in [key(c) for c in convs(chat.brpc)["conversations"]]
    assert chat.rows("SELECT last_seq FROM convs WHERE conv='d:alice|bob'") == [(seq_of(chat, "new1"),)]
    # carol erased: her messages, reactions and markers
    chat.carol.close()
    r = cli(chat.datadir, "user", "del", "carol", "--erase")
    assert r.rc == 0, r
    assert chat.rows("SELECT count(*) FROM messages WHERE sender='carol' OR recipient='carol'") == [(0,)]
    assert chat.rows("SELECT user FROM reactions") == [("alice",)]
    assert chat.rows("SELECT count(*) FROM reads WHERE user='carol'") == [(0,)]
    h = history(chat.arpc, room="lobby")
    assert h[0]["id"] == "l1" and "reactions" not in h[0]
