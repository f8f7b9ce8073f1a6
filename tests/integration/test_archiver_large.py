"""Messages too large to share an answer (issue 14, medium 5): a valid
65,524-byte message whose body JSON-escapes to as much again made every
`history` and `sync` page that reached it too big to deliver. Now it comes
alone, truncated if even alone it does not fit, and `get` returns the
whole body in parts: every reader pages past it and reads it whole."""
import json
import uuid

import pytest

import harness
from archiver_util import arch_env, inbox, room  # noqa: F401 (fixture)

SIZE = 65524        # bytes of payload, just under the plugin's 64 KiB
MAX_PAYLOAD = 65536  # what the contract promises every answer fits in


def envelope(mid, unit, fill="a"):
    """An envelope of exactly SIZE bytes whose body is mostly `unit` (as
    written in JSON), padded with fill."""
    head = '{"id":"%s","type":"text","body":"' % mid
    tail = '"}'
    room_left = SIZE - len(head) - len(tail)
    ulen = len(unit.encode())
    n = room_left // ulen
    body = unit * n + fill * (room_left - n * ulen)
    text = head + body + tail
    assert len(text.encode()) == SIZE
    return text, json.loads(text)["body"]


def call(client, user, op, **args):
    """One RPC; returns (answer, raw payload length)."""
    rid = uuid.uuid4().hex
    req = {"id": rid, "op": op}
    req.update(args)
    client.publish("chat/rpc/%s/req" % user, json.dumps(req))
    while True:
        m = client.get(harness.DEFAULT_TIMEOUT)
        if m.topic != "chat/rpc/%s/resp" % user:
            continue
        a = json.loads(m.payload)
        if a.get("id") == rid:
            return a, len(m.payload)


def whole_body(client, user, msg):
    """The message's body, fetched with `get` if the page truncated it."""
    if not msg.get("truncated"):
        assert "body_bytes" not in msg
        return msg["body"]
    parts, offset = [], 0
    while True:
        a, size = call(client, user, "get", seq=msg["seq"], offset=offset)
        assert size <= MAX_PAYLOAD and a["ok"] is True, a
        assert a["seq"] == msg["seq"] and a["offset"] == offset and a["body_bytes"] == msg["body_bytes"]
        parts.append(a["body"])
        if not a["more"]:
            assert "next" not in a
            break
        offset = a["next"]
        assert offset == len("".join(parts).encode())
    body = "".join(parts)
    assert len(body.encode()) == msg["body_bytes"]
    assert body.startswith(msg["body"])   # the page held its beginning
    return body


def page_all(client, user, op, limit, **args):
    """Every message of a history (newest first) or sync (oldest first),
    page by page, each answer checked to fit."""
    out = []
    while True:
        a, size = call(client, user, op, limit=limit, **args)
        assert a["ok"] is True, a
        assert size <= MAX_PAYLOAD, size
        assert a["messages"], a
        for m in a["messages"]:
            if m.get("truncated"):
                assert len(a["messages"]) == 1      # too large to share: alone
        out += a["messages"]
        if not a["more"]:
            return out
        if op == "history":
            args["before"] = a["messages"][-1]["seq"]
        else:
            args["after"] = a["messages"][-1]["seq"]


@pytest.fixture
def world(arch_env):
    env = arch_env(users=["alice", "bob", "carol", "dave"],
                   rooms={"lobby": ["alice", "bob", "carol"]})
    env.c = {u: env.user(u) for u in ("alice", "bob", "carol", "dave")}
    for u, c in env.c.items():
        assert c.subscribe("chat/rpc/%s/resp" % u) in (0, 1)
    return env


def test_every_reader_pages_past_large_messages_and_reads_them_whole(world):
    sent = {}

    def send(client, topic, mid, text=None, body=None):
        if text is None:
            text, body = json.dumps({"id": mid, "type": "text", "body": mid}), mid
        client.publish(topic, text)
        sent[mid] = body
    a, b = world.c["alice"], world.c["bob"]
    send(a, inbox("bob", "alice"), "d1")
    send(a, inbox("bob", "alice"), "big1", *envelope("big1", "\\u0001"))         # 6 bytes again once stored
    send(b, inbox("alice", "bob"), "d2")
    send(b, inbox("alice", "bob"), "big2", *envelope("big2", '\\"\\u001f\u00e9\\n'))  # mixed, 2-byte UTF-8
    send(a, inbox("bob", "alice"), "big3", *envelope("big3", "\\u0002"))         # two large ones in a row
    send(a, inbox("bob", "alice"), "d3")
    send(b, room("lobby", "bob"), "r1")
    send(b, room("lobby", "bob"), "bigr", *envelope("bigr", "\\u0007"))
    send(b, room("lobby", "bob"), "r2")
    world.wait_rows(len(sent))
    dm = ["d1", "big1", "d2", "big2", "big3", "d3"]
    lobby = ["r1", "bigr", "r2"]
    cases = [("alice", "history", {"with": "bob"}, dm), ("bob", "history", {"with": "alice"}, dm),
             ("alice", "history", {"room": "lobby"}, lobby), ("bob", "history", {"room": "lobby"}, lobby),
             ("carol", "history", {"room": "lobby"}, lobby),
             ("alice", "sync", {}, dm + lobby), ("bob", "sync", {}, dm + lobby), ("carol", "sync", {}, lobby)]
    for user, op, args, want in cases:
        for limit in (1, 2, 100):
            got = page_all(world.c[user], user, op, limit, **dict(args))
            ids = [m["id"] for m in got]
            assert sorted(ids) == sorted(want), (user, op, limit, ids)
            assert len(ids) == len(set(ids))
            seqs = [m["seq"] for m in got]
            assert seqs == (sorted(seqs, reverse=True) if op == "history" else sorted(seqs)), (user, op, seqs)
            truncated = [m["id"] for m in got if m.get("truncated")]
            assert set(truncated) <= {"big1", "big2", "big3", "bigr"}
            for m in got:
                assert whole_body(world.c[user], user, m) == sent[m["id"]], (user, op, m["id"])
    # every large one needed cutting (so `get` was exercised for each)
    got = page_all(world.c["alice"], "alice", "sync", 100)
    assert sorted(m["id"] for m in got if m.get("truncated")) == ["big1", "big2", "big3", "bigr"]


def test_get_is_for_readers_only(world):
    a, b = world.c["alice"], world.c["bob"]
    text, body = envelope("big", "\\u0001")
    a.publish(inbox("bob", "alice"), text)
    b.publish(room("lobby", "bob"), json.dumps({"id": "r", "type": "text", "body": "h\u00e9llo"}))
    world.wait_rows(2)
    msgs = page_all(a, "alice", "sync", 100)
    dm_seq = [m["seq"] for m in msgs if m["id"] == "big"][0]
    room_seq = [m["seq"] for m in msgs if m["id"] == "r"][0]
    # carol is in the room but not in the DM; dave in neither: both just
    # "not found", like a seq that does not exist
    for user, seq in (("carol", dm_seq), ("dave", dm_seq), ("dave", room_seq), ("alice", room_seq + 100)):
        ans, _ = call(world.c[user], user, "get", seq=seq)
        assert ans["ok"] is False and ans["error"] == "not_found", (user, seq, ans)
    ans, _ = call(world.c["carol"], "carol", "get", seq=room_seq)
    assert ans["ok"] is True and ans["body"] == "h\u00e9llo" and ans["more"] is False
    assert ans["body_bytes"] == len("h\u00e9llo".encode())
    # bad arguments: a clear error
    for args in ({}, {"seq": 0}, {"seq": "1"}, {"seq": room_seq, "offset": -1},
                 {"seq": room_seq, "offset": 2},      # inside the 2-byte e-acute
                 {"seq": room_seq, "offset": 7}):     # past the end
        ans, _ = call(world.c["carol"], "carol", "get", **args)
        assert ans["ok"] is False and ans["error"] == "bad_request", (args, ans)
    # the end itself is a valid offset: an empty last part
    ans, _ = call(world.c["carol"], "carol", "get", seq=room_seq, offset=6)
    assert ans["ok"] is True and ans["body"] == "" and ans["more"] is False
    assert whole_body(b, "bob", {"seq": dm_seq, "truncated": True, "body_bytes": len(body.encode()),
                                 "body": ""}) == body
