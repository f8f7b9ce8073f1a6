"""RPC on chat/rpc/<user>/req: history, sync, rooms, profile, whois, passwd,
block; a user reads only their own conversations and rooms they belong to;
bad requests get an error answer, never silence."""
import json
import time

import pytest

import harness
from archiver_util import Rpc, arch_env, inbox, room, PASSWORD  # noqa: F401 (fixture)


def dm(client, to, frm, mid, body=None):
    client.publish(inbox(to, frm), json.dumps({"id": mid, "type": "text", "body": body or mid,
                                                "ts": 1000}))


@pytest.fixture
def chat(arch_env):
    env = arch_env(users=["alice", "bob", "carol"],
                   rooms={"lobby": ["alice", "bob"], "secret": ["bob", "carol"]})
    env.alice = env.user("alice")
    env.bob = env.user("bob")
    env.carol = env.user("carol")
    return env


def test_history_paging_both_ways(chat):
    for i in range(7):
        dm(chat.alice, "bob", "alice", "a%d" % i)
        dm(chat.bob, "alice", "bob", "b%d" % i)
    dm(chat.carol, "bob", "carol", "c0")   # another conversation of bob's
    chat.wait_rows(15)
    rpc = Rpc(chat.alice, "alice")
    ans = rpc.call("history", **{"with": "bob", "limit": 5})
    assert ans["ok"] is True and ans["more"] is True
    page1 = ans["messages"]
    assert [m["id"] for m in page1] == ["b6", "a6", "b5", "a5", "b4"]
    m = page1[0]
    assert set(m) == {"seq", "id", "from", "to", "type", "body", "ts", "server_ts", "status"}
    assert (m["from"], m["to"], m["type"], m["body"], m["ts"], m["status"]) == \
        ("bob", "alice", "text", "b6", 1000, "sent")
    seen = [x["id"] for x in page1]
    before = page1[-1]["seq"]
    while True:
        ans = rpc.call("history", **{"with": "bob", "limit": 5, "before": before})
        seen += [x["id"] for x in ans["messages"]]
        if not ans["more"]:
            break
        before = ans["messages"][-1]["seq"]
    assert len(seen) == 14 and len(set(seen)) == 14
    # bob sees the same conversation from his side
    ans = Rpc(chat.bob, "bob").call("history", **{"with": "alice", "limit": 100})
    assert [x["id"] for x in ans["messages"]] == seen
    assert ans["more"] is False
    # default limit 50, empty conversation
    ans = rpc.call("history", **{"with": "carol"})
    assert ans == {"id": ans["id"], "ok": True, "messages": [], "more": False}
    # carol cannot read alice and bob's conversation: she only ever gets her own
    crpc = Rpc(chat.carol, "carol")
    assert crpc.call("history", **{"with": "alice"})["messages"] == []
    assert [m["id"] for m in crpc.call("history", **{"with": "bob"})["messages"]] == ["c0"]
    assert [m["id"] for m in crpc.call("sync")["messages"]] == ["c0"]


def test_room_history_members_only(chat):
    chat.alice.publish(room("lobby", "alice"), json.dumps({"id": "l1", "type": "text", "body": "x"}))
    chat.bob.publish(room("secret", "bob"), json.dumps({"id": "s1", "type": "text", "body": "y"}))
    chat.wait_rows(2)
    ans = Rpc(chat.alice, "alice").call("history", room="lobby")
    assert [m["id"] for m in ans["messages"]] == ["l1"] and ans["messages"][0]["room"] == "lobby"
    assert "to" not in ans["messages"][0]
    ans = Rpc(chat.alice, "alice").call("history", room="secret")
    assert ans["ok"] is False and ans["error"] == "forbidden"
    assert Rpc(chat.carol, "carol").call("history", room="secret")["messages"][0]["id"] == "s1"
    # a room that does not exist is just as forbidden (no probing)
    assert Rpc(chat.carol, "carol").call("history", room="nope")["error"] == "forbidden"


def test_sync_dms_and_rooms(chat):
    dm(chat.bob, "alice", "bob", "d1")          # to alice
    dm(chat.alice, "carol", "alice", "d2")      # from alice
    dm(chat.bob, "carol", "bob", "d3")          # not alice's
    chat.bob.publish(room("lobby", "bob"), json.dumps({"id": "r1", "type": "text", "body": "x"}))
    chat.bob.publish(room("secret", "bob"), json.dumps({"id": "r2", "type": "text", "body": "x"}))
    chat.alice.publish(room("lobby", "alice"), json.dumps({"id": "r3", "type": "text", "body": "x"}))
    chat.wait_rows(6)
    rpc = Rpc(chat.alice, "alice")
    ans = rpc.call("sync", after=0)
    assert [m["id"] for m in ans["messages"]] == ["d1", "d2", "r1", "r3"] and ans["more"] is False
    seqs = [m["seq"] for m in ans["messages"]]
    assert seqs == sorted(seqs)
    # paging forward
    ans = rpc.call("sync", after=0, limit=2)
    assert [m["id"] for m in ans["messages"]] == ["d1", "d2"] and ans["more"] is True
    ans = rpc.call("sync", after=ans["messages"][-1]["seq"], limit=2)
    assert [m["id"] for m in ans["messages"]] == ["r1", "r3"] and ans["more"] is False
    assert rpc.call("sync", after=seqs[-1])["messages"] == []
    # membership is read now: alice leaves lobby, its messages leave her sync
    chat.store.remove_member("lobby", "alice")
    assert [m["id"] for m in rpc.call("sync", after=0)["messages"]] == ["d1", "d2"]
    assert rpc.call("history", room="lobby")["error"] == "forbidden"


def test_rooms_profile_whois(chat):
    rpc = Rpc(chat.bob, "bob")
    ans = rpc.call("rooms")
    assert ans["ok"] and sorted((r["room"], sorted(r["members"])) for r in ans["rooms"]) == [
        ("lobby", ["alice", "bob"]), ("secret", ["bob", "carol"])]
    ans = rpc.call("profile")
    assert (ans["ok"], ans["name"], ans["kind"], ans["nick"]) == (True, "bob", "user", "bob")
    ans = rpc.call("profile", nick="Bob \u2603")
    assert ans["ok"] and ans["nick"] == "Bob \u2603"
    assert chat.store.sql("SELECT nick FROM users WHERE name='bob'") == [("Bob \u2603",)]
    for bad in ("", "x" * 65, "a\nb"):
        assert rpc.call("profile", nick=bad)["error"] == "invalid_nick", bad   # test_nick.py
    for bad in (5, None):
        assert rpc.call("profile", nick=bad)["error"] == "bad_request", bad
    ans = rpc.call("whois", user="bob")
    assert (ans["user"], ans["nick"], ans["kind"]) == ("bob", "Bob \u2603", "user")
    assert rpc.call("whois", user="archiver")["kind"] == "service"
    assert rpc.call("whois", user="nobody")["error"] == "not_found"
    assert rpc.call("whois", user="Bad Name")["error"] == "bad_request"
    assert rpc.call("whois")["error"] == "bad_request"


def test_passwd(chat):
    rpc = Rpc(chat.alice, "alice")
    assert rpc.call("passwd", old="wrong-password", new="new-password-1")["error"] == "bad_password"
    assert rpc.call("passwd", old=PASSWORD, new="short")["error"] == "weak_password"
    assert rpc.call("passwd", old=PASSWORD, new=5)["error"] == "bad_request"
    ans = rpc.call("passwd", old=PASSWORD, new="new-password-1")
    assert ans == {"id": ans["id"], "ok": True}
    # the old password no longer works, the new one does (plugin reload <= 1 s)
    def login(pw):
        c = harness.Client(chat.broker.port, "alice", pw, client_id="alice@t%d" % int(time.monotonic() * 1e6))
        try:
            return c.connect()
        finally:
            c.close()
    harness.wait_for(lambda: login("new-password-1") == 0, 5, what="new password accepted")
    assert login(PASSWORD) != 0


def test_block_unblock_blocked(chat):
    rpc = Rpc(chat.alice, "alice")
    assert rpc.call("blocked")["users"] == []
    assert rpc.call("block", user="bob")["ok"] is True
    assert rpc.call("block", user="bob")["ok"] is True          # twice is fine
    assert rpc.call("block", user="nobody")["error"] == "not_found"
    assert rpc.call("block", user="alice")["error"] == "bad_request"
    assert rpc.call("blocked")["users"] == ["bob"]
    assert chat.store.sql("SELECT user, blocked FROM blocks") == [("alice", "bob")]
    # the plugin enforces it: bob's DMs to alice stop reaching the archive
    def delivered(mid):
        dm(chat.bob, "alice", "bob", mid)
        chat.carol.publish(inbox("bob", "carol"), json.dumps({"id": "bar" + mid, "type": "text", "body": "x"}))
        harness.wait_for(lambda: chat.rows("SELECT 1 FROM messages WHERE id=?", "bar" + mid), what="barrier")
        return bool(chat.rows("SELECT 1 FROM messages WHERE id=?", mid))
    harness.wait_for(lambda: not delivered("t%d" % int(time.monotonic() * 1000)), 5, what="block enforced")
    assert rpc.call("unblock", user="bob")["ok"] is True
    assert rpc.call("unblock", user="bob")["ok"] is True
    assert rpc.call("blocked")["users"] == []


@pytest.mark.parametrize("v5", [False, True])
def test_bad_requests_get_errors(arch_env, v5):
    env = arch_env(users=["alice"])
    c = env.user("alice", v5=v5)
    rpc = Rpc(c, "alice")
    assert rpc.call(raw=b"not json")["error"] == "bad_request"
    assert rpc.call(raw=b"[1,2]")["error"] == "bad_request"
    assert rpc.call(raw=b"")["error"] == "bad_request"
    assert rpc.call(raw=json.dumps({"op": "rooms"}))["error"] == "bad_request"           # no id
    assert rpc.call(raw=json.dumps({"id": 7, "op": "rooms"}))["error"] == "bad_request"  # id not a string
    assert rpc.call(raw=json.dumps({"id": "x" * 129, "op": "rooms"}))["error"] == "bad_request"
    big = json.dumps({"id": "big", "op": "rooms", "pad": "x" * 20000})
    ans = rpc.call(raw=big)
    assert ans["error"] == "bad_request" and ans["id"] is None and "larger" in ans["message"]
    for req, code in (
            ({"op": "frobnicate"}, "unknown_op"),
            ({"op": 5}, "bad_request"),
            ({}, "bad_request"),
            ({"op": "history"}, "bad_request"),
            ({"op": "history", "with": "bob", "room": "x"}, "bad_request"),
            ({"op": "history", "with": "bob", "limit": 0}, "bad_request"),
            ({"op": "history", "with": "bob", "limit": 101}, "bad_request"),
            ({"op": "history", "with": "bob", "limit": "5"}, "bad_request"),
            ({"op": "history", "with": "bob", "limit": 5.5}, "bad_request"),
            ({"op": "history", "with": "bob", "before": -1}, "bad_request"),
            ({"op": "history", "with": "../x"}, "bad_request"),
            ({"op": "sync", "after": "0"}, "bad_request"),
            ({"op": "sync", "limit": 501}, "bad_request"),
            ({"op": "sync", "after": -5}, "bad_request"),
            ({"op": "passwd"}, "bad_request"),
            ({"op": "block"}, "bad_request")):
        ans = rpc.call(**req)
        assert ans["ok"] is False and ans["error"] == code, (req, ans)
        assert isinstance(ans["message"], str) and ans["message"]
    # still alive and answering
    assert rpc.call("rooms")["ok"] is True


def test_v5_correlation_data_echoed(arch_env):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    env = arch_env(users=["alice"])
    c = env.user("alice", v5=True)
    assert c.subscribe("chat/rpc/alice/resp") in (0, 1)
    p = Properties(PacketTypes.PUBLISH)
    p.ResponseTopic = "chat/rpc/alice/resp"
    p.CorrelationData = b"\x00corr-42"
    c.c.publish("chat/rpc/alice/req", json.dumps({"id": "q1", "op": "rooms"}), qos=1, properties=p)
    m = c.get()
    assert json.loads(m.payload)["id"] == "q1"
    assert m.properties.CorrelationData == b"\x00corr-42"


def test_large_answers_are_cut_to_fit(chat):
    """Answers stay under 64 KiB: fewer messages and more=true, and paging
    still reaches every message."""
    for i in range(5):
        dm(chat.alice, "bob", "alice", "big%d" % i, body=("%d" % i) * 25000)
    chat.wait_rows(5)
    rpc = Rpc(chat.alice, "alice")
    got, before = [], None
    while True:
        args = {"with": "bob", "limit": 100}
        if before:
            args["before"] = before
        ans = rpc.call("history", **args)
        assert 1 <= len(ans["messages"]) <= 2
        assert len(json.dumps(ans)) < 64 * 1024
        got += [m["id"] for m in ans["messages"]]
        if not ans["more"]:
            break
        before = ans["messages"][-1]["seq"]
    assert got == ["big4", "big3", "big2", "big1", "big0"]
    brpc = Rpc(chat.bob, "bob")
    got, after = [], 0
    while True:
        ans = brpc.call("sync", after=after, limit=500)
        assert 1 <= len(ans["messages"]) <= 2 and len(json.dumps(ans)) < 64 * 1024
        got += [m["id"] for m in ans["messages"]]
        if not ans["more"]:
            break
        after = ans["messages"][-1]["seq"]
    assert got == ["big0", "big1", "big2", "big3", "big4"]


def test_sync_with_many_rooms(arch_env):
    """Past 400 rooms sync reads them through one IN (json_each) instead of
    one query term per room: same answer."""
    env = arch_env(users=["alice", "bob"], rooms={"r000": ["alice", "bob"]})
    import sqlite3
    import os
    db = sqlite3.connect(os.path.join(env.datadir, "auth.db"), isolation_level=None, timeout=10)
    try:
        db.execute("BEGIN IMMEDIATE")
        for i in range(1, 450):
            db.execute("INSERT INTO rooms(name, retention_days, created) VALUES(?, 0, 0)", ("r%03d" % i,))
            db.execute("INSERT INTO members(room, user) VALUES(?, 'alice')", ("r%03d" % i,))
        db.execute("COMMIT")
    finally:
        db.close()
    bob = env.user("bob")
    bob.publish(room("r000", "bob"), json.dumps({"id": "x1", "type": "text", "body": "x"}))
    dm(bob, "alice", "bob", "x2")
    env.wait_rows(2)
    ans = Rpc(env.user("alice"), "alice").call("sync")
    assert [m["id"] for m in ans["messages"]] == ["x1", "x2"]
    assert len(Rpc(env.user("alice", client_id="alice@2"), "alice").call("rooms")["rooms"]) == 450
