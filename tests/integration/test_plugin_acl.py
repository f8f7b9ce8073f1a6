"""The topic policy: who may subscribe to, receive and publish on which topic,
for MQTT 3.1.1 and 5. The service account subscribed to chat/# is the
witness that a refused publish reached nobody."""
import json

import pytest

from plugin_util import (PROTOCOLS, assert_denied_publish, drop, envelope, expect_msg,
                         expect_none, get, inbox, login, presence, publish,
                         refused_sub_code, room, subscribe_ok)


@pytest.fixture
def world(store, make_broker):
    """alice, bob, carol, dave (disabled), sensor1 (device), archiver
    (service); room r1 = alice, bob, sensor1; room r2 = carol; carol blocks
    alice."""
    for name in ("alice", "bob", "carol"):
        store.add_user(name)
    store.add_user("dave", enabled=False)
    store.add_user("sensor1", kind="device")
    store.add_user("archiver", kind="service")
    store.add_room("r1", members=["alice", "bob", "sensor1"])
    store.add_room("r2", members=["carol"])
    store.block("carol", "alice")
    return make_broker()


def pw():
    return "password-xxxx"


def witness(clients, b, v5):
    """The service account, subscribed to every chat message (presence left
    out: the plugin publishes it on its own time)."""
    w = login(clients, b, "archiver", pw(), client_id="archiver@0", v5=v5)
    subscribe_ok(w, "chat/inbox/#")
    subscribe_ok(w, "chat/room/#")
    return w


ALLOWED_SUBS = [
    "chat/inbox/alice/#", "chat/inbox/alice/+", "chat/inbox/alice/bob",
    "chat/room/r1/#", "chat/room/r1/+", "chat/room/r1/bob",
    "chat/presence/bob", "chat/presence/+", "chat/presence/#",
    "chat/rpc/alice/resp",
    "chat/inbox/+/alice",
]

DENIED_SUBS = [
    "#", "+", "+/#", "chat/#", "chat/+", "chat/+/#",
    "chat/inbox/#", "chat/inbox/+", "chat/inbox/+/#", "chat/inbox/+/+",
    "chat/inbox/+/bob",
    "chat/inbox/bob/#", "chat/inbox/bob/+", "chat/inbox/bob/alice", "chat/inbox/Alice/#",
    "$SYS/#", "$SYS/broker/uptime",
    "$share/x/chat/inbox/bob/#", "$share/x/chat/inbox/alice/#", "$share/x/chat/room/r1/#",
    "chat/room/#", "chat/room/+/#", "chat/room/+/alice", "chat/room/r2/#",
    "chat/room/r2/carol", "chat/room/nope/#",
    "chat/rpc/bob/resp", "chat/rpc/+/resp", "chat/rpc/alice/req", "chat/rpc/alice/#",
    "chat/rpc/#", "chat/register/#", "chat/register/+/resp", "chat/register/+/req",
    "chat/+/x/#", "chat/+/alice/#", "+/inbox/alice/#", "other/topic",
]


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_subscriptions(world, clients, v5):
    for cid in ("alice", "alice@phone"):
        c = login(clients, world, "alice", pw(), client_id=cid, v5=v5)
        refused = {t: c.subscribe(t) for t in ALLOWED_SUBS}
        refused = {t: "0x%02x" % g for t, g in refused.items() if g >= 0x80}
        assert not refused, "%s: allowed subscriptions refused: %s" % (cid, refused)
        want = refused_sub_code(v5)
        granted = {t: c.subscribe(t) for t in DENIED_SUBS}
        wrong = {t: "0x%02x" % g for t, g in granted.items() if g != want}
        assert not wrong, "%s: subscriptions that should get SUBACK 0x%02x: %s" % (cid, want, wrong)
        assert not c.disconnected.is_set(), "a refused subscription cost the connection"
        c.close()


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_service_subscriptions(world, clients, v5):
    w = login(clients, world, "archiver", pw(), client_id="archiver@0", v5=v5)
    for t in ("chat/#", "$share/g/chat/inbox/#", "$share/g/chat/room/#", "chat/inbox/+/#",
              "chat/rpc/+/req", "chat/register/+/req"):
        subscribe_ok(w, t)
    want = refused_sub_code(v5)
    # $SYS/# is allowed to services (test_plugin_stats.py).
    got = {t: w.subscribe(t) for t in ("#", "other/#", "+/#")}
    wrong = {t: "0x%02x" % g for t, g in got.items() if g != want}
    assert not wrong, "service: subscriptions outside chat/ should be refused: %s" % wrong
    # A shared subscription delivers as well.
    shared = login(clients, world, "archiver", pw(), client_id="archiver@1", v5=v5)
    subscribe_ok(shared, "$share/g2/chat/inbox/#")
    alice = login(clients, world, "alice", pw(), v5=v5)
    m = envelope("via a shared subscription")
    assert publish(alice, inbox("bob", "alice"), m) == 0
    expect_msg(shared, inbox("bob", "alice"), m)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_inbox_publish(world, clients, v5):
    w = witness(clients, world, v5)
    alice = login(clients, world, "alice", pw(), v5=v5)
    bob = login(clients, world, "bob", pw(), v5=v5)
    carol = login(clients, world, "carol", pw(), v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(carol, "chat/inbox/carol/#")

    denied = [
        (alice, inbox("bob", "carol"), "spoofed sender"),
        (alice, inbox("bob", "Alice"), "sender in the wrong case"),
        (alice, inbox("nobody", "alice"), "unknown receiver"),
        (alice, inbox("dave", "alice"), "disabled receiver"),
        (alice, inbox("carol", "alice"), "receiver blocks the sender"),
        (alice, inbox("bob", "alice") + "/x", "extra level"),
        (alice, "chat/inbox/bob", "missing sender level"),
        (alice, "chat/inbox/bob/", "empty sender level"),
        (alice, "chat/inbox//alice", "empty receiver level"),
        (bob, inbox("bob", "alice"), "bob writing as alice into his own inbox"),
    ]
    for c, topic, why in denied:
        code = publish(c, topic, envelope("denied: " + why))
        assert_denied_publish(c, code, "%s (%s)" % (topic, why))
    ok1, ok2 = envelope("to bob"), envelope("to carol")
    assert publish(alice, inbox("bob", "alice"), ok1) == 0, "alice -> bob: PUBACK not success"
    assert publish(bob, inbox("carol", "bob"), ok2) == 0, "bob -> carol: PUBACK not success"
    expect_msg(bob, inbox("bob", "alice"), ok1)
    expect_msg(carol, inbox("carol", "bob"), ok2)
    expect_msg(w, inbox("bob", "alice"), ok1)
    expect_msg(w, inbox("carol", "bob"), ok2)
    for c in (bob, carol, w):
        expect_none(c)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_room_publish(world, clients, v5):
    w = witness(clients, world, v5)
    alice = login(clients, world, "alice", pw(), v5=v5)
    bob = login(clients, world, "bob", pw(), v5=v5)
    carol = login(clients, world, "carol", pw(), v5=v5)
    sensor = login(clients, world, "sensor1", pw(), v5=v5)
    subscribe_ok(bob, "chat/room/r1/#")
    subscribe_ok(carol, "chat/room/r2/#")

    denied = [
        (carol, room("r1", "carol"), "not a member"),
        (alice, room("r1", "bob"), "spoofed sender"),
        (alice, room("r2", "alice"), "member of another room only"),
        (alice, room("nope", "alice"), "room does not exist"),
        (alice, room("r1", "alice") + "/x", "extra level"),
        (alice, "chat/room/r1", "missing sender level"),
    ]
    for c, topic, why in denied:
        code = publish(c, topic, envelope("denied: " + why))
        assert_denied_publish(c, code, "%s (%s)" % (topic, why))
    m1, m2 = envelope("hi room"), envelope("device reading")
    assert publish(alice, room("r1", "alice"), m1) == 0
    assert publish(sensor, room("r1", "sensor1"), m2) == 0
    for c in (bob, w):
        expect_msg(c, room("r1", "alice"), m1)
        expect_msg(c, room("r1", "sensor1"), m2)
        expect_none(c)
    expect_none(carol)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_retained_chat_messages_denied(world, clients, v5):
    w = witness(clients, world, v5)
    alice = login(clients, world, "alice", pw(), v5=v5)
    bob = login(clients, world, "bob", pw(), v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/r1/#")
    for topic in (inbox("bob", "alice"), room("r1", "alice")):
        code = publish(alice, topic, envelope("retained"), retain=True)
        assert_denied_publish(alice, code, topic + " with retain")
    expect_none(bob)
    expect_none(w)
    # Nothing was stored as retained either.
    late = login(clients, world, "bob", pw(), client_id="bob@late", v5=v5)
    subscribe_ok(late, "chat/inbox/bob/#")
    subscribe_ok(late, "chat/room/r1/#")
    expect_none(late)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_rpc_topics(world, clients, v5):
    svc = login(clients, world, "archiver", pw(), v5=v5)
    subscribe_ok(svc, "chat/rpc/+/req")
    alice = login(clients, world, "alice", pw(), v5=v5)
    bob = login(clients, world, "bob", pw(), v5=v5)
    subscribe_ok(alice, "chat/rpc/alice/resp")
    subscribe_ok(bob, "chat/rpc/bob/resp")
    req = json.dumps({"id": "c1", "op": "rooms"})
    resp = json.dumps({"id": "c1", "ok": True, "rooms": []})

    for c, topic, why in ((alice, "chat/rpc/bob/req", "request as another user"),
                          (alice, "chat/rpc/alice/resp", "user writing a response"),
                          (bob, "chat/rpc/alice/resp", "user writing another's response"),
                          (alice, "chat/rpc/alice/req/x", "extra level"),
                          (alice, "chat/register/alice/req", "user on a registration topic"),
                          (alice, "other/topic", "outside chat/"),
                          (alice, "$SYS/x", "$SYS")):
        code = publish(c, topic, req)
        assert_denied_publish(c, code, "%s (%s)" % (topic, why))
    assert publish(alice, "chat/rpc/alice/req", req) == 0
    expect_msg(svc, "chat/rpc/alice/req", req)
    expect_none(svc)
    assert publish(svc, "chat/rpc/alice/resp", resp) == 0
    expect_msg(alice, "chat/rpc/alice/resp", resp)
    expect_none(alice)
    expect_none(bob)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_service_publish_rights(world, clients, v5):
    svc = login(clients, world, "archiver", pw(), client_id="archiver@0", v5=v5)
    bob = login(clients, world, "bob", pw(), v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/r1/#")
    subscribe_ok(bob, "chat/presence/archiver")
    subscribe_ok(bob, "chat/presence/alice")
    forged = json.dumps({"status": "online", "since": 1, "forged": True})
    for topic in (inbox("bob", "archiver"), inbox("bob", "alice"), room("r1", "archiver"),
                  room("r1", "alice")):
        code = publish(svc, topic, envelope("from the service"))
        assert_denied_publish(svc, code, topic + " by the service")
    for topic in (presence("archiver"), presence("alice")):
        code = publish(svc, topic, forged)
        assert_denied_publish(svc, code, topic + " by the service")
    bob.barrier()
    got = [m for m in list(bob.messages.queue)
           if not m.topic.startswith("chat/presence/") or b"forged" in m.payload]
    assert not got, "bob received what the service may not publish: %s" % (
        [(m.topic, m.payload) for m in got])


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_wills(world, clients, v5):
    """Wills on forbidden topics, with retain or with a bad envelope never
    fire; a will on an allowed inbox topic with a valid envelope does."""
    bob = login(clients, world, "bob", pw(), v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/presence/alice")
    subscribe_ok(bob, "chat/room/r1/#")
    w = witness(clients, world, v5)
    forged = json.dumps({"status": "offline", "since": 1, "forged": True})
    bad = [
        (inbox("bob", "carol"), envelope("spoofed will"), False),
        (presence("alice"), forged, False),
        (presence("alice"), forged, True),
        (inbox("bob", "alice"), envelope("retained will"), True),
        (inbox("bob", "alice"), "not an envelope", False),
        (room("r2", "alice"), envelope("not my room"), False),
        (inbox("nobody", "alice"), envelope("nobody"), False),
    ]
    for i, (topic, payload, retain) in enumerate(bad):
        c = login(clients, world, "alice", pw(), client_id="alice@w%d" % i, v5=v5,
                  will=(topic, payload, 1, retain))
        drop(c)
    good_inbox = envelope("alice's last words")
    good_room = envelope("alice's last words to the room")
    c = login(clients, world, "alice", pw(), client_id="alice@good", v5=v5,
              will=(inbox("bob", "alice"), good_inbox, 1, False))
    drop(c)
    c = login(clients, world, "alice", pw(), client_id="alice@good2", v5=v5,
              will=(room("r1", "alice"), good_room, 1, False))
    drop(c)
    want = {(inbox("bob", "alice"), good_inbox.encode()), (room("r1", "alice"), good_room.encode())}
    got = set()
    seen = []
    while got != want:
        m = get(bob, 5.0, "the allowed wills")
        seen.append((m.topic, m.payload))
        if (m.topic, m.payload) in want:
            got.add((m.topic, m.payload))
    bob.barrier()
    seen += [(m.topic, m.payload) for m in list(bob.messages.queue)]
    leaked = [s for s in seen if s[0] != presence("alice") and (s[0], s[1]) not in want]
    leaked += [s for s in seen if s[0] == presence("alice") and b"forged" in s[1]]
    assert not leaked, "forbidden wills reached bob: %s" % leaked
    w.barrier()
    wseen = [(m.topic, m.payload) for m in list(w.messages.queue)]
    wleak = [s for s in wseen if b"forged" in s[1] or (
        not s[0].startswith("chat/presence/") and s not in want)]
    assert not wleak, "forbidden wills reached the service: %s" % wleak
    # The forged presence was not stored as retained.
    late = login(clients, world, "carol", pw(), v5=v5)
    subscribe_ok(late, presence("alice"))
    late.barrier()
    for m in list(late.messages.queue):
        assert b"forged" not in m.payload, "a forged retained presence was stored: %r" % m.payload


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_resync_notice(world, clients, v5):
    """A service may send a person a resync notice on chat/notice/<person>
    (a node that lost messages on their way tells the apps to sync); any
    other payload there, and anything a person or a device publishes there,
    is refused and reaches nobody."""
    svc = login(clients, world, "archiver", pw(), client_id="archiver@0", v5=v5)
    bob = login(clients, world, "bob", pw(), client_id="bob@watch", v5=v5)
    subscribe_ok(bob, "chat/notice/bob")
    resync = json.dumps({"type": "resync", "ts": 1764892800000})
    assert publish(svc, "chat/notice/bob", resync) == 0
    expect_msg(bob, "chat/notice/bob", resync)
    forged = [
        ("chat/notice/bob", json.dumps({"type": "refused", "ref": "m-1", "code": "blocked",
                                        "forged": True}), "a refusal"),
        ("chat/notice/bob", '{"type":"resync","forged":true', "not JSON"),
        ("chat/notice/bob", json.dumps(["resync", "forged"]), "not an object"),
        ("chat/notice/bob", json.dumps({"type": "resync", "pad": "forged" + "x" * 1100}),
         "over 1 KiB"),
        ("chat/notice/nobody", json.dumps({"type": "resync", "forged": True}), "no account"),
        ("chat/notice/dave", json.dumps({"type": "resync", "forged": True}), "disabled"),
        ("chat/notice/archiver", json.dumps({"type": "resync", "forged": True}), "a service"),
    ]
    for topic, payload, why in forged:
        code = publish(svc, topic, payload)
        assert_denied_publish(svc, code, "%s by the service (%s)" % (topic, why))
    code = publish(svc, "chat/notice/bob", resync.replace("}", ',"forged":true}'), retain=True)
    assert_denied_publish(svc, code, "chat/notice/bob by the service (retained)")
    alice = login(clients, world, "alice", pw(), v5=v5)
    sensor = login(clients, world, "sensor1", pw(), v5=v5)
    forged_resync = json.dumps({"type": "resync", "forged": True})
    for c, topic in ((bob, "chat/notice/bob"), (alice, "chat/notice/bob"),
                     (sensor, "chat/notice/sensor1"), (alice, "chat/notice/alice")):
        code = publish(c, topic, forged_resync)
        assert_denied_publish(c, code, "%s by %s" % (topic, c.client_id))
    svc.barrier()
    alice.barrier()
    sensor.barrier()
    bob.barrier()
    got = [m.payload for m in list(bob.messages.queue) if b"forged" in m.payload]
    assert not got, "bob received forged notices: %s" % got
    # A new subscriber gets no retained notice either.
    late = login(clients, world, "bob", pw(), client_id="bob@late", v5=v5)
    subscribe_ok(late, "chat/notice/bob")
    expect_none(late)
