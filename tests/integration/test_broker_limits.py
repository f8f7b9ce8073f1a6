"""What one account may hold in the broker (plugin/limits.c, acl.c and
config/mosquitto.conf): each attack of the report, performed against a real
broker with the real plugin, and the bound that now stops it.

- MQTT 5 properties on chat messages are dropped before fan-out, so a
  publish cannot park megabytes of uncounted user properties in queues;
- a QoS 0 subscription to messages is refused and every message goes out
  at QoS 1, so a client that stops reading is held to max_queued_bytes;
- connections at once, sessions and subscriptions per account are bounded,
  and login_status says which limit refused a login."""
import json
import secrets
import socket
import struct
import time
import uuid

import pytest

import harness
from fault_util import RssPeak, connect_packet
from plugin_util import (PROTOCOLS, _s, _varint, connect, envelope, expect_msg, login,
                         refused_sub_code, subscribe_ok)

PW = "password-xxxx"
# Under SAN=1 the broker's RSS also holds what ASan keeps of freed memory
# (its quarantine, 256 MB): the memory bounds are checked in the plain
# build, the behaviour in both.
CHECK_RSS = not harness.SAN
# The shipped broker settings this file depends on.
SHIPPED = "upgrade_outgoing_qos true\nmax_packet_size 69632\nmax_inflight_messages 100\n"


def properties(**kw):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def notices(c, timeout=5.0):
    """The next notice on chat/notice/... (others skipped), parsed."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no notice for %s" % c.client_id
        m = c.get(timeout=left)
        if m.topic.startswith("chat/notice/"):
            return json.loads(m.payload)


def test_mqtt5_properties_never_reach_recipients(store, make_broker, clients):
    """Content type, response topic, correlation data and user properties on
    an inbox or room message are dropped by the plugin: the recipient gets
    the envelope alone."""
    store.add_user("alice")
    store.add_user("bob")
    store.add_room("lab", ["alice", "bob"])
    b = make_broker(extra_conf=SHIPPED)
    bob = login(clients, b, "bob", PW, v5=True)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/lab/#")
    alice = login(clients, b, "alice", PW, v5=True)
    props = properties(UserProperty=[("x-big", "v" * 4000), ("x-from", "bob")],
                       ContentType="text/html", ResponseTopic="chat/inbox/alice/bob",
                       CorrelationData=b"\x01\x02", PayloadFormatIndicator=1)
    for topic in ("chat/inbox/bob/alice", "chat/room/lab/alice"):
        info = alice.c.publish(topic, envelope("with properties"), qos=1, properties=props)
        harness.wait_for(info.is_published, 5, what="PUBACK")
        m = expect_msg(bob, topic)
        got = m.properties.json() if m.properties is not None else {}
        assert not set(got) & {"UserProperty", "ContentType", "ResponseTopic",
                               "CorrelationData", "PayloadFormatIndicator"}, (topic, got)


def test_properties_do_not_pile_up_in_queues(store, make_broker, clients):
    """The report: user properties were not counted anywhere, 1,200
    messages grew the broker by 230 MB. Now 600 messages carrying 60 KB of
    user properties each (36 MB) queued for an offline session grow it by
    little more than their small payloads."""
    store.add_user("alice")
    store.add_user("bob")
    b = make_broker(extra_conf=SHIPPED)
    bob = login(clients, b, "bob", PW, client_id="bob@phone", clean=False)
    subscribe_ok(bob, "chat/inbox/bob/#")
    bob.close()
    alice = login(clients, b, "alice", PW, v5=True)
    props = properties(UserProperty=[("k%d" % i, "v" * 6000) for i in range(10)])
    with RssPeak(b.proc.pid) as r:
        infos = [alice.c.publish("chat/inbox/bob/alice", envelope("p", id="p%04d" % i), qos=1,
                                 properties=props) for i in range(600)]
        harness.wait_for(lambda: all(i.is_published() for i in infos), 60, what="600 PUBACKs")
    grown_mb = (r.peak - r.start) / 1024.0
    print("600 x 60 KB of user properties queued: broker +%.1f MB" % grown_mb)
    assert grown_mb < 12 or not CHECK_RSS, grown_mb
    # ... and the queued messages are all there for bob.
    bob = login(clients, b, "bob", PW, client_id="bob@phone", clean=False)
    got = set()
    deadline = time.monotonic() + 60
    while len(got) < 600:
        assert time.monotonic() < deadline, "%d of 600 queued messages" % len(got)
        got.add(json.loads(bob.get().payload)["id"])


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_qos0_subscription_to_messages_is_refused(store, make_broker, clients, v5):
    """QoS 0 deliveries to a connected client are bounded by count only in
    Mosquitto 2.0; so messages need a QoS 1 (or 2) subscription. Presence
    and notices, small and rate-limited, may still be taken at QoS 0."""
    store.add_user("alice")
    store.add_user("bob")
    store.add_room("lab", ["alice", "bob"])
    b = make_broker(extra_conf=SHIPPED)
    bob = login(clients, b, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/notice/bob")
    for f in ("chat/inbox/bob/#", "chat/inbox/bob/alice", "chat/room/lab/#", "chat/room/lab/+"):
        assert bob.subscribe(f, qos=0) == refused_sub_code(v5), f
        n = notices(bob)
        assert n["code"] == "qos0_subscription" and n["topic"] == f, n
    assert bob.subscribe("chat/inbox/bob/#", qos=1) == 1
    # A QoS 0 publish reaches the QoS 1 subscriber at QoS 1.
    alice = login(clients, b, "alice", PW)
    alice.publish("chat/inbox/bob/alice", envelope("at qos 0"), qos=0)
    m = expect_msg(bob, "chat/inbox/bob/alice")
    assert m.qos == 1, m.qos
    assert bob.subscribe("chat/presence/+", qos=0) == 0


def test_a_client_that_stops_reading_is_held_to_the_queue_limit(store, make_broker, clients):
    """The report: a connected client that never reads pinned 3,000 x 60 KB
    (+175 MB), bounded by message count only. With QoS 1 deliveries the
    broker holds at most max_inflight_messages + max_queued_bytes for it
    (here 8 MiB, to keep the test small), then drops its messages."""
    store.add_user("alice")
    store.add_user("bob")
    b = make_broker(extra_conf=SHIPPED + "max_queued_bytes 8388608\n")
    # bob subscribes over a raw socket with a tiny receive buffer and then
    # never reads again.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    try:
        s.connect(("127.0.0.1", b.port))
        s.sendall(connect_packet("bob@stuck", "bob", PW))
        assert s.recv(4) == b"\x20\x02\x00\x00"
        topic = b"chat/inbox/bob/#"
        body = struct.pack("!H", 1) + _s(topic) + b"\x01"
        s.sendall(b"\x82" + _varint(len(body)) + body)
        assert s.recv(5) == b"\x90\x03\x00\x01\x01"
        alice = login(clients, b, "alice", PW)
        body = "x" * 60000
        with RssPeak(b.proc.pid) as r:
            for i in range(0, 1500, 100):
                infos = [alice.c.publish("chat/inbox/bob/alice",
                                         envelope(body, id="s%04d" % (i + j)), qos=0)
                         for j in range(100)]
                harness.wait_for(lambda: all(x.is_published() for x in infos), 30,
                                 what="100 messages sent")
                alice.barrier()
        grown_mb = (r.peak - r.start) / 1024.0
        print("1,500 x 60 KB to a client that does not read: broker +%.1f MB" % grown_mb)
        # 8 MiB queued + 100 x 60 KB in flight + what sits in socket buffers.
        assert grown_mb < 40 or not CHECK_RSS, grown_mb
    finally:
        s.close()


def status(clients, b, user, source=None):
    """login_status for user, asked over a _register connection (from
    source, a local address, if given)."""
    cid = "_register@" + secrets.token_hex(8)
    c = clients(b, "_register", "any", client_id=cid, source=source)
    assert c.connect() == 0
    assert c.subscribe("chat/register/%s/resp" % cid) < 0x80
    rid = uuid.uuid4().hex
    c.publish("chat/register/%s/req" % cid, {"id": rid, "op": "login_status", "user": user})
    while True:
        resp = json.loads(c.get().payload)
        if resp.get("id") == rid:
            c.close()
            return resp


def test_connections_per_account(store, make_broker, clients):
    """The report: 1,000 simultaneous connections as one user were accepted.
    Now max_connections at once; a device reconnecting with its own client
    id always gets in (the broker closes its old connection)."""
    store.add_user("alice")
    store.add_user("bob")
    b = make_broker(extra_conf=SHIPPED, plugin_opts={"max_connections": 3})
    held = [login(clients, b, "alice", PW, client_id="alice@d%d" % i) for i in range(3)]
    c, code = connect(clients, b, "alice", PW, client_id="alice@d3")
    assert code != 0, "a 4th connection was accepted"
    st = status(clients, b, "alice")
    assert st["status"] == "too_many_connections" and st["limit"] == 3, st
    # A device coming back on its own client id takes its old place.
    again, code = connect(clients, b, "alice", PW, client_id="alice@d1")
    assert code == 0
    harness.wait_for(lambda: held[1].disconnected.is_set(), 5, what="the old connection closed")
    # One leaves: another may come.
    held[0].close()
    harness.wait_for(lambda: connect(clients, b, "alice", PW, client_id="alice@d4")[1] == 0, 5,
                     what="a connection after one left")
    # Other accounts are not affected.
    assert connect(clients, b, "bob", PW)[1] == 0


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_sessions_per_account(store, make_broker, clients, v5):
    """The report: 500 sessions each queued 2,000 room messages (+100 MB,
    and a 20.7 s restart). Now max_sessions client ids asking for a
    session per account; a clean connection is not counted (a tool that
    starts clean with a new client id each time must not use them up), a
    known client id always comes back."""
    store.add_user("alice")
    b = make_broker(extra_conf=SHIPPED, plugin_opts={"max_sessions": 3})
    for i in range(3):
        c = login(clients, b, "alice", PW, client_id="alice@s%d" % i, clean=False, v5=v5)
        c.close()
    c, code = connect(clients, b, "alice", PW, client_id="alice@s3", clean=False, v5=v5)
    assert code != 0, "a 4th session was accepted"
    st = status(clients, b, "alice")
    assert st["status"] == "too_many_sessions" and st["limit"] == 3, st
    assert connect(clients, b, "alice", PW, client_id="alice@s0", clean=False, v5=v5)[1] == 0
    for i in range(5):
        c, code = connect(clients, b, "alice", PW, client_id="alice@tmp%d" % i, clean=True, v5=v5)
        assert code == 0
        c.close()


def test_subscriptions_per_connection(store, make_broker, clients):
    """The report: 200,000 subscriptions (+59 MB) on one connection. Now
    max_subscriptions, with a notice saying why."""
    store.add_user("alice")
    for i in range(10):
        store.add_user("u%d" % i)
    b = make_broker(extra_conf=SHIPPED, plugin_opts={"max_subscriptions": 5})
    alice = login(clients, b, "alice", PW)
    subscribe_ok(alice, "chat/notice/alice")
    for i in range(4):
        assert alice.subscribe("chat/presence/u%d" % i) < 0x80
    assert alice.subscribe("chat/presence/u4") == refused_sub_code(False)
    n = notices(alice)
    assert n["code"] == "too_many_subscriptions" and n["topic"] == "chat/presence/u4", n
