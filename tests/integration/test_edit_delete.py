"""edit and delete (docs/PROTOCOL.md, "edit", "delete"): a person changes
their own texts within the edit_window setting, a room's owner and admins
delete anyone's text there at any time. The change reaches both people of
a direct conversation (every device of each) or the room live, from the
archiver's account, before the answer; history and get show the text as
it is now (edited, or a tombstone with no body), sync the edit and delete
rows; every refusal changes nothing."""
import json
import time

import harness
from archiver_util import Rpc, arch_env, inbox, room  # noqa: F401 (a fixture)
from cli_util import ok
from plugin_util import subscribe_ok
from test_rooms_members import Person, call_ok, fails
from test_search import found

ARCH_INBOX = "chat/inbox/%s/archiver"
ARCH_ROOM = "chat/room/%s/archiver"


def send(client, topic, body, mid):
    client.publish(topic, harness.envelope(body, id=mid))


def text_row(env, sender, mid):
    """The archived row of the text (sender, mid): body, edited, deleted, deleted_by."""
    r = env.rows("SELECT body, edited, deleted, deleted_by FROM messages WHERE sender=? AND id=?"
                 " AND type='text' ORDER BY seq DESC LIMIT 1", sender, mid)
    return r[0] if r else None


def wait_text(env, sender, mid):
    harness.wait_for(lambda: text_row(env, sender, mid) is not None, what="%s's %s archived" % (sender, mid))


def snapshot(env):
    """Everything a refusal must leave as it was."""
    return (env.rows("SELECT * FROM messages ORDER BY seq"),
            env.rows("SELECT * FROM reactions ORDER BY 1, 2, 3"))


def change_of(p, topic, timeout=5.0):
    """The next edit or delete envelope p receives on topic (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "%s: no change on %s" % (p.user if hasattr(p, "user") else p, topic)
        m = p.next(left) if hasattr(p, "next") else p.get(left)
        if m.topic == topic:
            pl = json.loads(m.payload)
            if pl.get("type") in ("edit", "delete"):
                return pl


def history(rpc, **scope):
    return call_ok(rpc, "history", **scope)["messages"]


def by_id(msgs, mid):
    found = [m for m in msgs if m["id"] == mid]
    assert len(found) == 1, (mid, msgs)
    return found[0]


def test_edit_reaches_the_peer_and_my_other_device_and_shows_everywhere(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")                       # alice@phone edits
    laptop = env.user("alice", client_id="alice@laptop")
    subscribe_ok(laptop, "chat/inbox/alice/#")
    bob = Person(env, "bob")
    subscribe_ok(bob.c, "chat/inbox/bob/#")
    send(alice.c, inbox("bob", "alice"), "see you", "m-1")
    assert bob.next().topic == inbox("bob", "alice")
    wait_text(env, "alice", "m-1")

    ans = call_ok(alice, "edit", ref="m-1", body="see you!")
    assert isinstance(ans["seq"], int) and isinstance(ans["edited"], int), ans
    # Live, before the answer (alice's phone): bob's devices and alice's.
    got = change_of(bob, ARCH_INBOX % "bob")
    assert {k: got[k] for k in ("type", "ref", "of", "body", "by", "with")} == {
        "type": "edit", "ref": "m-1", "of": "alice", "body": "see you!", "by": "alice", "with": "alice"}
    mine = change_of(laptop, ARCH_INBOX % "alice")
    assert (mine["type"], mine["ref"], mine["body"], mine["with"]) == ("edit", "m-1", "see you!", "bob")
    assert mine["id"] == got["id"]
    assert text_row(env, "alice", "m-1")[:2] == ("see you!", ans["edited"])

    # history: the text as it is now, marked edited; sync: the edit row too.
    for rpc, peer in ((bob, "alice"), (alice, "bob")):
        m = by_id(history(rpc, **{"with": peer}), "m-1")
        assert (m["body"], m["edited"]) == ("see you!", ans["edited"]), m
        assert "deleted" not in m
        msgs = call_ok(rpc, "sync", changes=True)["messages"]
        edits = [x for x in msgs if x["type"] == "edit"]
        assert len(edits) == 1, msgs
        e = edits[0]
        assert (e["seq"], e["id"], e["ref"], e["of"], e["body"], e["by"], e["from"], e["to"]) == (
            ans["seq"], got["id"], "m-1", "alice", "see you!", "alice", "alice", "bob"), e
    # The edit is not a text of its own in history.
    assert [x["id"] for x in history(bob, **{"with": "alice"})] == ["m-1"]
    # Edited again: the newest body wins.
    call_ok(alice, "edit", ref="m-1", body="see you later")
    assert by_id(history(bob, **{"with": "alice"}), "m-1")["body"] == "see you later"


def test_delete_leaves_a_tombstone_with_no_body_anywhere(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")
    bob = Person(env, "bob")
    subscribe_ok(bob.c, "chat/inbox/bob/#")
    subscribe_ok(alice.c, "chat/inbox/alice/#")
    send(alice.c, inbox("bob", "alice"), "a secret plan", "m-2")
    wait_text(env, "alice", "m-2")
    text_seq = by_id(history(alice, **{"with": "bob"}), "m-2")["seq"]
    # bob reacts to it: the tombstone drops the reaction.
    bob.c.publish(inbox("alice", "bob"), {"id": "x-1", "type": "reaction", "ref": "m-2", "of": "alice",
                                          "emoji": "\U0001F44D"})
    harness.wait_for(lambda: env.rows("SELECT count(*) FROM reactions WHERE seq=?", text_seq) == [(1,)],
                     what="bob's reaction applied")
    assert by_id(history(alice, **{"with": "bob"}), "m-2")["reactions"] == [
        {"emoji": "\U0001F44D", "users": ["bob"]}]
    alice.kept.clear()

    ans = call_ok(alice, "delete", ref="m-2")
    # The envelope left before the answer: alice's phone has it already.
    assert [m.topic for m in alice.kept] == [ARCH_INBOX % "alice"], alice.kept
    got = change_of(bob, ARCH_INBOX % "bob")
    assert {k: got.get(k) for k in ("type", "ref", "of", "by", "with", "body")} == {
        "type": "delete", "ref": "m-2", "of": "alice", "by": "alice", "with": "alice", "body": None}
    assert change_of(alice, ARCH_INBOX % "alice")["with"] == "bob"
    body, _, deleted, deleted_by = text_row(env, "alice", "m-2")
    assert (body, deleted_by) == ("", "alice") and isinstance(deleted, int)

    for rpc, peer in ((bob, "alice"), (alice, "bob")):
        m = by_id(history(rpc, **{"with": peer}), "m-2")
        assert m["body"] == "" and (m["deleted"], m["deleted_by"]) == (deleted, "alice"), m
        g = call_ok(rpc, "get", seq=text_seq)
        assert "body" not in g and (g["type"], g["deleted"], g["deleted_by"]) == ("text", deleted, "alice"), g
        assert found(rpc, "secret") == []
        rows = [x for x in call_ok(rpc, "sync", changes=True)["messages"] if x["type"] == "delete"]
        assert [(x["seq"], x["ref"], x["of"], x["by"]) for x in rows] == [(ans["seq"], "m-2", "alice", "alice")]
        assert by_id(call_ok(rpc, "sync")["messages"], "m-2")["body"] == ""
    assert env.rows("SELECT count(*) FROM reactions") == [(0,)]
    assert "reactions" not in by_id(history(bob, **{"with": "alice"}), "m-2")
    # Nothing left in the index.
    assert env.rows("SELECT count(*) FROM msg_fts WHERE msg_fts MATCH '\"secret\"'") == [(0,)]
    # Gone is gone: neither edited nor deleted again.
    before = snapshot(env)
    fails(alice, "not_found", "edit", ref="m-2", body="back")
    fails(alice, "not_found", "delete", ref="m-2")
    assert snapshot(env) == before


def room_of_three(env):
    """hikers: alice owns it, bob and carol are members; all subscribed."""
    alice, bob, carol = (Person(env, n) for n in ("alice", "bob", "carol"))
    for n in ("bob", "carol"):
        env.store.set_privacy(n, room_adds="everyone")
    call_ok(alice, "room_create", room="hikers")
    call_ok(alice, "room_add", room="hikers", user="bob")
    call_ok(alice, "room_add", room="hikers", user="carol")
    for p in (alice, bob, carol):
        subscribe_ok(p.c, "chat/room/hikers/#")
    return alice, bob, carol


def test_owner_and_admins_delete_others_texts_a_member_cannot(arch_env):
    env = arch_env(users=("alice", "bob", "carol", "dave"))
    alice, bob, carol = room_of_three(env)
    send(carol.c, room("hikers", "carol"), "spam one", "c-1")
    send(carol.c, room("hikers", "carol"), "spam two", "c-2")
    wait_text(env, "carol", "c-2")
    # No window for them: even with edits closed.
    ok(env.datadir, "settings", "set", "edit_window", "0")

    before = snapshot(env)
    fails(bob, "forbidden", "delete", room="hikers", ref="c-1", of="carol")
    dave = Person(env, "dave")
    fails(dave, "not_found", "delete", room="hikers", ref="c-1", of="carol")
    assert snapshot(env) == before

    ans = call_ok(alice, "delete", room="hikers", ref="c-1", of="carol")
    for p in (bob, carol):
        got = change_of(p, ARCH_ROOM % "hikers")
        assert {k: got.get(k) for k in ("type", "ref", "of", "by", "with")} == {
            "type": "delete", "ref": "c-1", "of": "carol", "by": "alice", "with": None}
    m = by_id(history(carol, room="hikers"), "c-1")
    assert m["body"] == "" and m["deleted_by"] == "alice"
    row = [x for x in call_ok(bob, "sync", changes=True)["messages"] if x["type"] == "delete"]
    assert [(x["seq"], x["from"], x["room"], x["ref"], x["of"], x["by"]) for x in row] == [
        (ans["seq"], "alice", "hikers", "c-1", "carol", "alice")]

    # An admin may too; the text must be of that room.
    call_ok(alice, "room_promote", room="hikers", user="bob")
    fails(bob, "not_found", "delete", room="hikers", ref="nope", of="carol")
    call_ok(bob, "delete", room="hikers", ref="c-2", of="carol")
    assert text_row(env, "carol", "c-2")[3] == "bob"
    # A room's text of someone else needs the room named.
    fails(bob, "bad_request", "delete", ref="c-2", of="carol")


def test_own_texts_in_a_room_within_the_window(arch_env):
    env = arch_env(users=("alice", "bob", "carol"))
    alice, bob, carol = room_of_three(env)
    send(bob.c, room("hikers", "bob"), "meet at 9", "b-1")
    send(bob.c, room("hikers", "bob"), "bring water", "b-2")
    wait_text(env, "bob", "b-2")
    call_ok(bob, "edit", ref="b-1", body="meet at 10")
    got = change_of(carol, ARCH_ROOM % "hikers")
    assert (got["type"], got["ref"], got["of"], got["body"], got["by"]) == ("edit", "b-1", "bob", "meet at 10", "bob")
    assert "with" not in got
    call_ok(bob, "delete", room="hikers", ref="b-2")
    assert change_of(carol, ARCH_ROOM % "hikers")["type"] == "delete"
    # A room bob left: his texts there are no longer his to change.
    send(bob.c, room("hikers", "bob"), "bye", "b-3")
    wait_text(env, "bob", "b-3")
    call_ok(bob, "room_leave", room="hikers")
    harness.wait_for(lambda: env.rows("SELECT count(*) FROM messages WHERE type='event'"
                                      " AND body LIKE '%\"left\"%'") == [(1,)], what="the left event archived")
    before = snapshot(env)
    fails(bob, "not_found", "edit", ref="b-3", body="bye!")
    fails(bob, "not_found", "delete", ref="b-3")
    assert snapshot(env) == before


def test_window_passed_is_too_late(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")
    send(alice.c, inbox("bob", "alice"), "first", "m-1")
    wait_text(env, "alice", "m-1")
    ok(env.datadir, "settings", "set", "edit_window", "0")
    assert call_ok(alice, "hello")["edit_window_s"] == 0
    before = snapshot(env)
    ans = fails(alice, "too_late", "edit", ref="m-1", body="changed")
    assert "0 s" in ans["message"], ans
    fails(alice, "too_late", "delete", ref="m-1")
    assert snapshot(env) == before

    # A window of one second: past it once the text is a second old.
    ok(env.datadir, "settings", "set", "edit_window", "1")
    (stored,) = env.rows("SELECT server_ts FROM messages WHERE id='m-1'")[0]
    harness.wait_for(lambda: time.time() * 1000 > stored + 1100, 5, what="m-1 a second old")
    fails(alice, "too_late", "edit", ref="m-1", body="changed")
    fails(alice, "too_late", "delete", ref="m-1")
    send(alice.c, inbox("bob", "alice"), "second", "m-2")
    wait_text(env, "alice", "m-2")
    # The default again (an hour): a fresh text may be changed.
    ok(env.datadir, "settings", "unset", "edit_window")
    call_ok(alice, "edit", ref="m-2", body="second!")
    assert text_row(env, "alice", "m-1") == ("first", None, None, None)
    assert text_row(env, "alice", "m-2")[0] == "second!"


def test_someone_elses_or_no_such_text_is_not_found(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice, bob = Person(env, "alice"), Person(env, "bob")
    send(bob.c, inbox("alice", "bob"), "hello", "b-1")
    wait_text(env, "bob", "b-1")
    before = snapshot(env)
    fails(alice, "not_found", "edit", ref="b-1", body="mine now")
    fails(alice, "not_found", "edit", ref="b-1", of="bob", body="mine now")
    fails(alice, "not_found", "delete", ref="b-1")
    fails(alice, "not_found", "edit", ref="never-sent", body="x")
    fails(alice, "not_found", "delete", ref="never-sent")
    assert snapshot(env) == before


def test_a_previous_holder_of_my_name_is_not_me(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")
    send(alice.c, inbox("bob", "alice"), "old alice", "m-1")
    wait_text(env, "alice", "m-1")
    alice.c.close()
    ok(env.datadir, "user", "del", "alice")
    env.store.sql("DELETE FROM retired WHERE name='alice'")   # 30 days later
    env.store.add_user("alice")   # created now: after m-1
    alice = Person(env, "alice")
    before = snapshot(env)
    fails(alice, "not_found", "edit", ref="m-1", body="hijacked")
    fails(alice, "not_found", "delete", ref="m-1")
    assert snapshot(env) == before


def test_bad_input_is_bad_request_and_changes_nothing(arch_env):
    env = arch_env(users=("alice", "bob"))
    alice = Person(env, "alice")
    send(alice.c, inbox("bob", "alice"), "text", "m-1")
    wait_text(env, "alice", "m-1")
    before = snapshot(env)
    for args in ({"body": "x"}, {"ref": "", "body": "x"}, {"ref": "bad id!", "body": "x"},
                 {"ref": 5, "body": "x"}, {"ref": "m-1"}, {"ref": "m-1", "body": ""},
                 {"ref": "m-1", "body": 7}, {"ref": "m-1", "body": None},
                 {"ref": "m-1", "body": "x", "of": "Not A Name"}):
        ans = fails(alice, "bad_request", "edit", **args)
        assert ans["message"], ans
    for args in ({}, {"ref": "bad id!"}, {"ref": "m-1", "room": "Bad Room"},
                 {"ref": "m-1", "of": "bob"}, {"ref": "m-1", "of": 3}):
        fails(alice, "bad_request", "delete", **args)
    # Over-long: larger than a request may be (16 KiB), let alone a text.
    ans = alice.call(raw=json.dumps({"id": "big", "op": "edit", "ref": "m-1", "body": "x" * 20000}))
    assert ans["ok"] is False and ans["error"] == "bad_request", ans
    assert snapshot(env) == before
    assert text_row(env, "alice", "m-1")[0] == "text"
