"""Envelope validation at publish time on inbox and room topics: nothing
malformed reaches a receiver (or the service), and the next valid message
from the same connection still arrives."""
import json

import pytest

from harness import wait_for

from plugin_util import (PROTOCOLS, assert_denied_publish, envelope, expect_msg,
                         expect_none, login, publish, subscribe_ok)

MAX = 1024


def obj(**kw):
    return json.dumps(kw).encode()


def sized(n, **kw):
    """A valid text envelope of exactly n bytes."""
    base = {"id": "sized1", "type": "text", "body": ""}
    base.update(kw)
    empty = len(json.dumps(base).encode())
    base["body"] = "b" * (n - empty)
    out = json.dumps(base).encode()
    assert len(out) == n
    return out


def nested(depth):
    return b'{"id":"n1","type":"text","body":"x","x":' + b"[" * depth + b"]" * depth + b"}"


BAD = [
    ("not json", b"hello"),
    ("empty payload", b""),
    ("json array", b'[{"id":"a1","type":"text","body":"x"}]'),
    ("json string", b'"hello"'),
    ("json null", b"null"),
    ("missing id", obj(type="text", body="x")),
    ("empty id", obj(id="", type="text", body="x")),
    ("id with space", obj(id="a b", type="text", body="x")),
    ("id with dot", obj(id="a.b", type="text", body="x")),
    ("id with slash", obj(id="a/b", type="text", body="x")),
    ("id non-ascii", '{"id":"\u00e9t\u00e9","type":"text","body":"x"}'.encode()),
    ("65-char id", obj(id="i" * 65, type="text", body="x")),
    ("id a number", b'{"id":12,"type":"text","body":"x"}'),
    ("missing type", obj(id="a1", body="x")),
    ("unknown type", obj(id="a1", type="image", body="x")),
    ("type not string", b'{"id":"a1","type":1,"body":"x"}'),
    ("text without body", obj(id="a1", type="text")),
    ("text empty body", obj(id="a1", type="text", body="")),
    ("text body a number", b'{"id":"a1","type":"text","body":5}'),
    ("text body null", b'{"id":"a1","type":"text","body":null}'),
    ("text with status", obj(id="a1", type="text", body="x", status="read")),
    ("receipt without ref", obj(id="a1", type="receipt", status="read")),
    ("receipt without status", obj(id="a1", type="receipt", ref="b1")),
    ("receipt bad status", obj(id="a1", type="receipt", ref="b1", status="seen")),
    ("receipt bad ref", obj(id="a1", type="receipt", ref="b 1", status="read")),
    ("receipt with body", obj(id="a1", type="receipt", ref="b1", status="read", body="x")),
    ("ts negative", b'{"id":"a1","type":"text","body":"x","ts":-1}'),
    ("ts float", b'{"id":"a1","type":"text","body":"x","ts":1.5}'),
    ("ts exponent", b'{"id":"a1","type":"text","body":"x","ts":1e3}'),
    ("ts string", b'{"id":"a1","type":"text","body":"x","ts":"1"}'),
    ("duplicate id", b'{"id":"a1","id":"a2","type":"text","body":"x"}'),
    ("duplicate body", b'{"id":"a1","type":"text","body":"x","body":"y"}'),
    ("invalid utf-8 byte", b'{"id":"a1","type":"text","body":"\xff"}'),
    ("bare 0xff", b"\xff"),
    ("overlong utf-8", b'{"id":"a1","type":"text","body":"\xc0\xaf"}'),
    ("raw surrogate utf-8", b'{"id":"a1","type":"text","body":"\xed\xa0\x80"}'),
    ("lone surrogate escape", b'{"id":"a1","type":"text","body":"\\ud800"}'),
    ("lone low surrogate escape", b'{"id":"a1","type":"text","body":"\\udc00x"}'),
    ("bad escape", b'{"id":"a1","type":"text","body":"\\q"}'),
    ("raw control char", b'{"id":"a1","type":"text","body":"a\x01b"}'),
    ("trailing garbage", b'{"id":"a1","type":"text","body":"x"}x'),
    ("two objects", b'{"id":"a1","type":"text","body":"x"}{}'),
    ("truncated", b'{"id":"a1","type":"text","body":"x"'),
    ("trailing comma", b'{"id":"a1","type":"text","body":"x",}'),
    ("single quotes", b"{'id':'a1','type':'text','body':'x'}"),
    ("nested 100 deep", nested(100)),
    ("over max_payload", sized(MAX + 1)),
]

SOME_BAD = BAD[:3] + [b for b in BAD if b[0] in (
    "duplicate id", "lone surrogate escape", "nested 100 deep", "over max_payload",
    "invalid utf-8 byte")]

GOOD = [
    ("exactly max_payload", sized(MAX)),
    ("receipt", obj(id="r1", type="receipt", ref="a1", status="delivered")),
    ("receipt read", obj(id="r2", type="receipt", ref="a1", status="read")),
    ("unknown members", b'{"id":"u1","type":"text","body":"x","nick":"A","x":{"y":[1,2]}}'),
    ("ts zero", b'{"id":"t0","type":"text","body":"x","ts":0}'),
    ("whitespace", b' \n{ "id" : "w1" , "type" : "text" , "body" : "x" }\n '),
    ("unicode body", '{"id":"u2","type":"text","body":"h\u00e9llo \U0001F600"}'.encode()),
    ("escaped surrogate pair", b'{"id":"u3","type":"text","body":"\\ud83d\\ude00"}'),
    ("64-char id", obj(id="I" * 64, type="text", body="x")),
    ("id charset", obj(id="aZ09_-", type="text", body="x")),
]


@pytest.fixture
def chat(store, make_broker):
    for name in ("alice", "bob"):
        store.add_user(name)
    store.add_user("archiver", kind="service")
    store.add_room("r1", members=["alice", "bob"])
    return make_broker(plugin_opts={"max_payload": MAX})


def parties(clients, b, v5):
    alice = login(clients, b, "alice", "password-xxxx", v5=v5)
    bob = login(clients, b, "bob", "password-xxxx", v5=v5)
    svc = login(clients, b, "archiver", "password-xxxx", v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/r1/#")
    subscribe_ok(svc, "chat/inbox/#")
    subscribe_ok(svc, "chat/room/#")
    return alice, bob, svc


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_malformed_envelopes_dropped(chat, clients, v5):
    """Every malformed payload, on an inbox and on a room topic, at QoS 1 and
    QoS 0; then one valid message per topic arrives (nothing lost, the
    connection still works)."""
    alice, bob, svc = parties(clients, chat, v5)
    sent = []
    for why, payload in BAD:
        for topic in ("chat/inbox/bob/alice", "chat/room/r1/alice"):
            info = alice.publish(topic, payload, qos=1, wait=False)
            sent.append((why, topic, info.mid))
            alice.publish(topic, payload, qos=0)
    wait_for(lambda: all(mid in alice.puback_reasons for _, _, mid in sent),
             what="PUBACKs for the malformed envelopes")
    wrong_puback = ["%s on %s: 0x%02x" % (why, topic, alice.puback_reasons[mid])
                    for why, topic, mid in sent if v5 and alice.puback_reasons[mid] < 0x80]
    ok_inbox, ok_room = envelope("after the bad ones"), envelope("room after the bad ones")
    assert publish(alice, "chat/inbox/bob/alice", ok_inbox) == 0
    assert publish(alice, "chat/room/r1/alice", ok_room) == 0
    got = []
    for c in (bob, svc):
        m1 = c.messages.get(timeout=5)
        m2 = c.messages.get(timeout=5)
        c.barrier()
        got.append((c.client_id, [(m1.topic, m1.payload), (m2.topic, m2.payload)]
                    + [(m.topic, m.payload) for m in list(c.messages.queue)]))
    want = [("chat/inbox/bob/alice", ok_inbox.encode()), ("chat/room/r1/alice", ok_room.encode())]
    for who, msgs in got:
        leaked = [(t, p[:60]) for t, p in msgs if (t, p) not in want]
        names = [why for why, payload in BAD if any(p == payload for _, p in msgs)]
        assert not leaked, "%s received malformed envelopes (%s): %s" % (who, names, leaked)
        assert sorted(msgs) == sorted(want), "%s: valid messages lost: %s" % (who, msgs)
    assert not alice.disconnected.is_set(), "the publisher was disconnected"
    assert not wrong_puback, "MQTT 5 PUBACK for a refused envelope should be >= 0x80: %s" % wrong_puback


@pytest.mark.parametrize("v5", PROTOCOLS)
@pytest.mark.parametrize("case", SOME_BAD, ids=[why for why, _ in SOME_BAD])
def test_one_malformed_then_valid(chat, clients, v5, case):
    """One bad payload alone, then a valid one: the receiver gets exactly the
    valid one (a clear per-case report for the most telling cases)."""
    why, payload = case
    alice, bob, _ = parties(clients, chat, v5)
    code = publish(alice, "chat/inbox/bob/alice", payload)
    assert_denied_publish(alice, code, "chat/inbox/bob/alice with %s" % why)
    ok = envelope("valid after " + why)
    assert publish(alice, "chat/inbox/bob/alice", ok) == 0
    expect_msg(bob, "chat/inbox/bob/alice", ok)
    expect_none(bob)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_valid_envelopes_delivered(chat, clients, v5):
    alice, bob, svc = parties(clients, chat, v5)
    for why, payload in GOOD:
        for topic in ("chat/inbox/bob/alice", "chat/room/r1/alice"):
            code = publish(alice, topic, payload)
            assert code == 0, "valid envelope (%s) on %s refused: PUBACK 0x%02x" % (why, topic, code)
            for c in (bob, svc):
                m = c.messages.get(timeout=5)
                assert (m.topic, m.payload) == (topic, payload), (
                    "%s: valid envelope (%s) on %s not delivered intact: got %s %r" % (
                        c.client_id, why, topic, m.topic, m.payload[:80]))
    expect_none(bob)


def test_default_max_payload(store, make_broker, clients):
    """Without plugin_opt_max_payload the limit is 65536 bytes."""
    for name in ("alice", "bob"):
        store.add_user(name)
    b = make_broker()
    alice = login(clients, b, "alice", "password-xxxx", v5=True)
    bob = login(clients, b, "bob", "password-xxxx", v5=True)
    subscribe_ok(bob, "chat/inbox/bob/#")
    big, at = sized(65537), sized(65536)
    code = publish(alice, "chat/inbox/bob/alice", big)
    assert_denied_publish(alice, code, "a 65537-byte envelope")
    assert publish(alice, "chat/inbox/bob/alice", at) == 0, "a 65536-byte envelope was refused"
    m = expect_msg(bob, "chat/inbox/bob/alice")
    assert len(m.payload) == 65536, "bob got %d bytes, not the 65536-byte envelope" % len(m.payload)
    expect_none(bob)
