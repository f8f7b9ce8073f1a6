"""Refusals an app can read: the send rate limit, chat/notice/<me>, and
login_status (why a CONNECT was refused), against a real broker."""
import json
import secrets
import time

import pytest

import harness
from plugin_util import PROTOCOLS, connect, login, publish, subscribe_ok

PW = "password-xxxx"


def notices(c, n, timeout=5.0):
    """The next n messages on chat/notice/..., parsed (others are skipped)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, "%s: %d of %d notices" % (c.client_id, len(out), n)
        try:
            m = c.messages.get(timeout=left)
        except Exception:
            continue
        if m.topic.startswith("chat/notice/"):
            out.append(json.loads(m.payload))
    return out


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_flood_is_cut_at_the_send_rate(store, make_broker, clients, v5):
    """The issue's measure: a new account pushed 1,000 messages in 0.27 s.
    With the defaults (20/s, bursts of 100) only about a burst gets through;
    the rest is refused with rate_limited, and the next message after
    retry_ms goes."""
    for u in ("alice", "bob", "eve"):
        store.add_user(u)
    b = make_broker(plugin_opts={"send_rate": None})     # the plugin's defaults
    alice = login(clients, b, "alice", PW, client_id="alice@reader")
    subscribe_ok(alice, "chat/inbox/alice/#")
    bob = login(clients, b, "bob", PW)
    eve = login(clients, b, "eve", PW, v5=v5)
    subscribe_ok(eve, "chat/notice/eve")
    t0 = time.monotonic()
    infos = [eve.c.publish("chat/inbox/alice/eve", harness.envelope("flood", id="f%04d" % i), qos=1)
             for i in range(1000)]
    harness.wait_for(lambda: all(i.is_published() for i in infos), 30, what="1000 PUBACKs")
    elapsed = time.monotonic() - t0
    # The broker handled every one of eve's messages before bob's marker:
    # once the marker is in, everything eve got through is in too.
    bob.publish("chat/inbox/alice/bob", harness.envelope("marker", id="marker"))
    got = []
    harness.wait_for(lambda: got.extend(iter_nowait(alice)) or any(
        m.topic.endswith("/bob") for m in got), 10, what="the marker")
    n = len([m for m in got if m.topic.endswith("/eve")])
    print("flood: %d of 1000 got through in %.2f s" % (n, elapsed))
    assert 100 <= n <= 100 + int(20 * elapsed) + 1, (n, elapsed)
    if v5:
        refused = [r for r in eve.puback_reasons.values() if r == 0x87]
        assert len(refused) == 1000 - n, (len(refused), n)
    ns = notices(eve, 1)
    assert ns[0]["code"] == "rate_limited" and ns[0]["retry_ms"] > 0, ns
    assert ns[0]["client"] == "eve" and ns[0]["topic"] == "chat/inbox/alice/eve", ns
    assert ns[0]["ref"].startswith("f"), ns
    # Notices are limited too: 10 at once, not one per refusal.
    more = [m for m in iter_nowait(eve) if m.topic == "chat/notice/eve"]
    assert len(more) < 50, len(more)
    # After the wait it names, the next message goes.
    time.sleep(ns[0]["retry_ms"] / 1000.0)
    harness.wait_for(lambda: publish(eve, "chat/inbox/alice/eve",
                                     harness.envelope("later", id="later%d" % time.monotonic_ns()))
                     in (0, None), 2, what="a message accepted after retry_ms")


def iter_nowait(c):
    while not c.messages.empty():
        yield c.messages.get_nowait()


def test_each_refusal_has_its_code(store, make_broker, clients):
    """MQTT 3.1.1 has no refusal at all: the notice is the only way to know."""
    store.add_user("alice")
    store.add_user("bob")
    store.add_user("carol")
    store.add_room("lab", members=["alice"])
    store.block("alice", "carol")
    b = make_broker()
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/notice/bob")
    carol = login(clients, b, "carol", PW)
    subscribe_ok(carol, "chat/notice/carol")
    cases = [
        (bob, "chat/inbox/alice/bob", "not json", False, "invalid_envelope", None),
        (bob, "chat/inbox/nobody/bob", harness.envelope("x", id="n1"), False, "no_recipient", "n1"),
        (bob, "chat/room/lab/bob", harness.envelope("x", id="n2"), False, "not_member", "n2"),
        (carol, "chat/inbox/alice/carol", harness.envelope("x", id="n3"), False, "blocked", "n3"),
        (bob, "chat/inbox/alice/bob", harness.envelope("x", id="n4"), True, "retained", "n4"),
        (bob, "chat/inbox/alice/carol", harness.envelope("x", id="n5"), False, "not_sender", "n5"),
        (bob, "chat/inbox/alice/bob", json.dumps({"id": "n6", "type": "text", "body": "x" * 66000}),
         False, "too_large", "n6"),
    ]
    for c, topic, payload, retain, code, ref in cases:
        c.publish(topic, payload, retain=retain)
        n = notices(c, 1)[0]
        assert (n["type"], n["code"], n["ref"], n["topic"], n["client"]) == (
            "refused", code, ref, topic, c.client_id), (topic, n)


def test_notices_are_private(store, make_broker, clients):
    store.add_user("alice")
    store.add_user("bob")
    b = make_broker()
    bob = login(clients, b, "bob", PW)
    assert bob.subscribe("chat/notice/alice") == 0x80
    assert bob.subscribe("chat/notice/+") == 0x80
    code = publish(login(clients, b, "alice", PW, v5=True), "chat/notice/bob", "{}")
    assert code == 0x87


def register_conn(clients, b):
    cid = "_register@" + secrets.token_hex(8)
    r = clients(b, "_register", "x", client_id=cid)
    assert r.connect() == 0
    assert r.subscribe("chat/register/%s/resp" % cid) in (0, 1)
    return r, cid


def login_status(r, cid, user):
    rid = secrets.token_hex(4)
    r.publish("chat/register/%s/req" % cid, json.dumps({"id": rid, "op": "login_status",
                                                        "user": user}))
    m = r.get()
    ans = json.loads(m.payload)
    assert ans["id"] == rid, ans
    return ans


def test_login_status_tells_what_may_be_told(store, make_broker, clients):
    """Registration is off (the default): _register still connects to ask."""
    store.add_user("alice")
    store.add_user("dave", enabled=False)
    b = make_broker()
    r, cid = register_conn(clients, b)
    assert login_status(r, cid, "alice")["status"] == "refused"
    # A disabled account with a wrong password: nothing said.
    assert connect(clients, b, "dave", "wrong-password")[1] != 0
    assert login_status(r, cid, "dave")["status"] == "refused"
    # With the right one: "disabled", to this address.
    assert connect(clients, b, "dave", PW)[1] != 0
    ans = login_status(r, cid, "dave")
    assert (ans["ok"], ans["user"], ans["status"]) == (True, "dave", "disabled"), ans
    # Throttled: a real name and an unknown one look the same.
    for name in ("alice", "nobody1"):
        for _ in range(3):
            assert connect(clients, b, name, "wrong-password")[1] != 0
        ans = login_status(r, cid, name)
        assert ans["status"] == "throttled" and ans["retry_ms"] > 0, ans
    assert login_status(r, cid, "Not A Name")["error"] == "bad_request"
