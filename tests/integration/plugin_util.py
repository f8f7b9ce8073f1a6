"""plugin_util.py - helpers shared by the plugin's integration tests.

    from plugin_util import PROTOCOLS, connect, login, assert_refused

    @pytest.mark.parametrize("v5", PROTOCOLS)
    def test_x(store, make_broker, clients, v5):
        pw = store.add_user("alice")
        b = make_broker()
        alice = login(clients, b, "alice", pw, v5=v5)

Everything here builds on harness.py and the fixtures of conftest.py; every
client made here comes from the `clients` fixture, so it is closed at the end
of the test. Waits are bounded; the only fixed pauses are the explicit
`quiet()` windows that prove something did NOT happen.
"""
import json
import socket
import struct
import time

import pytest

import harness

PROTOCOLS = [pytest.param(False, id="v311"), pytest.param(True, id="v5")]

# Spec: a live change takes effect within 1 s; tests allow this much.
RELOAD_BOUND = 3.0

def inbox(to, frm):
    return "chat/inbox/%s/%s" % (to, frm)


def room(name, frm):
    return "chat/room/%s/%s" % (name, frm)


def presence(user):
    return "chat/presence/%s" % user


def client(clients, broker, username, password, client_id=None, v5=False, **kw):
    """A harness.Client that does not reconnect by itself (a kicked or dropped
    client must stay down, or it would hide what the test looks at)."""
    c = clients(broker, username, password, client_id=client_id, v5=v5, **kw)
    c.c._reconnect_on_failure = False
    track_pubacks(c)
    return c


def connect(clients, broker, username, password, client_id=None, v5=False, **kw):
    """Connect once; return (client, CONNACK code or None if the broker hung up
    without a CONNACK)."""
    c = client(clients, broker, username, password, client_id=client_id, v5=v5, **kw)
    try:
        code = c.connect()
    except (ConnectionError, OSError) as e:
        code = "socket error: %s" % e
    return c, code


def login(clients, broker, username, password, client_id=None, v5=False, **kw):
    """Connect and assert the broker accepted."""
    c, code = connect(clients, broker, username, password, client_id=client_id, v5=v5, **kw)
    assert code == 0, "login of %r (client id %r, %s) refused with CONNACK %r" % (
        username, client_id if client_id is not None else username, proto(v5), code)
    return c


def wait_login(clients, broker, username, password, client_id=None, v5=False,
               timeout=RELOAD_BOUND, **kw):
    """Retry a login until accepted (for a user added while the broker runs);
    return (client, seconds it took). Polls every 100 ms so a not-yet-loaded
    user costs few failed attempts."""
    t0 = time.monotonic()
    last = None
    while True:
        c, code = connect(clients, broker, username, password, client_id=client_id, v5=v5, **kw)
        if code == 0:
            return c, time.monotonic() - t0
        c.close()
        last = code
        if time.monotonic() - t0 > timeout:
            raise AssertionError("login of %r still refused (CONNACK %r) after %.1fs" % (
                username, last, timeout))
        time.sleep(0.1)


def proto(v5):
    return "MQTT 5" if v5 else "MQTT 3.1.1"


def assert_refused(code, v5, what, hangup=False):
    """A refusal at CONNECT: 3.1.1 CONNACK 4 or 5 (2 for an identifier the
    broker itself rejects), MQTT 5 any reason code >= 0x80. hangup=True also
    accepts a connection closed without CONNACK: mosquitto itself does that
    for strings MQTT forbids (control characters), before any plugin runs."""
    if hangup and code is None:
        return
    if v5:
        ok = isinstance(code, int) and code >= 0x80
        want = "a reason code >= 0x80"
    else:
        ok = code in (2, 4, 5)
        want = "CONNACK 4 or 5"
    assert ok, "%s: expected %s refusal with %s, got %r%s" % (
        what, proto(v5), want, code, " (ACCEPTED)" if code == 0 else "")


def track_pubacks(c):
    """Record the reason code of every PUBACK in c.puback_reasons[mid]
    (0 for MQTT 3.1.1, which has none). paho 1.6.1 reads it and drops it,
    so this looks at the raw packet before paho handles it."""
    inner = c.c
    orig = inner._handle_pubackcomp
    c.puback_reasons = {}

    def handler(cmd):
        pkt = inner._in_packet["packet"]
        if cmd == "PUBACK" and len(pkt) >= 2:
            mid = struct.unpack("!H", pkt[:2])[0]
            c.puback_reasons[mid] = pkt[2] if len(pkt) > 2 else 0
        return orig(cmd)
    inner._handle_pubackcomp = handler


def publish(c, topic, payload, qos=1, retain=False):
    """Publish; for QoS 1 wait for the PUBACK and return its reason code."""
    info = c.publish(topic, payload, qos=qos, retain=retain)
    if qos == 0:
        return None
    return harness.wait_for(lambda: c.puback_reasons.get(info.mid) is not None
                            and c.puback_reasons[info.mid] + 1,
                            what="PUBACK for %s" % topic) - 1


def assert_denied_publish(c, code, topic):
    """MQTT 5 QoS 1: a refused publish gets a PUBACK reason >= 0x80. 3.1.1:
    there is no way to say no, so the PUBACK is plain (checked elsewhere by
    non-delivery)."""
    if c.v5:
        assert code is not None and code >= 0x80, (
            "MQTT 5 publish to %s should get PUBACK reason >= 0x80 (0x87), got %r" % (topic, code))


def subscribe_ok(c, topic):
    code = c.subscribe(topic)
    assert code < 0x80, "%s: subscribe %r refused (SUBACK 0x%02x)" % (c.client_id, topic, code)
    return code


def refused_sub_code(v5):
    return 0x87 if v5 else 0x80


def get(c, timeout=harness.DEFAULT_TIMEOUT, what="a message"):
    try:
        return c.messages.get(timeout=timeout)
    except Exception:
        raise AssertionError("%s: no %s within %.1fs" % (c.client_id, what, timeout))


def expect_msg(c, topic, payload=None, timeout=5.0):
    """The next message c receives is on topic (with payload, if given)."""
    m = get(c, timeout, "message on %s" % topic)
    assert m.topic == topic, "%s: expected a message on %s, got one on %s: %r" % (
        c.client_id, topic, m.topic, m.payload[:200])
    if payload is not None:
        if isinstance(payload, str):
            payload = payload.encode()
        assert m.payload == payload, "%s: on %s expected %r, got %r" % (
            c.client_id, topic, payload[:200], m.payload[:200])
    return m


def expect_none(c):
    """Round trip through the broker, then assert c's queue is empty."""
    c.barrier()
    if not c.messages.empty():
        m = c.messages.queue[0]
        raise AssertionError("%s: unexpected message on %s: %r" % (c.client_id, m.topic, m.payload[:200]))


def quiet(c, seconds=0.6):
    """For what the broker does on its own time (presence, kicks): wait a
    fixed window, then assert nothing arrived. Only used to show a negative."""
    time.sleep(seconds)
    expect_none(c)


def stop_loop(c):
    """paho's loop_stop() waits for the network thread's 1 s select() to time
    out; wake it through paho's own socketpair so it stops at once."""
    inner = c.c
    inner._thread_terminate = True
    try:
        inner._sockpairW.send(b"\0")
    except (OSError, AttributeError):
        pass
    inner.loop_stop()


def drop(c):
    """Lose the connection without DISCONNECT (the Will fires)."""
    inner = c.c
    stop_loop(c)
    s = inner._sock
    if s is not None:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
    inner._sock = None


def stall(c):
    """Stop the network loop but keep the socket open: no more PINGREQ, so
    the broker times the client out after 1.5 x keepalive."""
    stop_loop(c)


def wait_disconnected(c, timeout=RELOAD_BOUND, what="disconnect"):
    t0 = time.monotonic()
    assert c.disconnected.wait(timeout), "%s: still connected %.1fs after %s" % (
        c.client_id, timeout, what)
    return time.monotonic() - t0


def envelope(body="hello", **kw):
    return harness.envelope(body, **kw)


def presence_of(m):
    try:
        return json.loads(m.payload)
    except ValueError:
        raise AssertionError("presence payload on %s is not JSON: %r" % (m.topic, m.payload))


class Sync:
    """A reload barrier that costs no failed logins: add a fresh room with
    `user` as its only member, and retry subscribing to it until the broker
    grants it. Snapshots are whole-store reads, so when the room is visible,
    every change written before it is too. Returns the seconds it took."""

    def __init__(self, store, watcher):
        self.store = store
        self.watcher = watcher
        self.n = 0

    def __call__(self, timeout=RELOAD_BOUND):
        self.n += 1
        name = "sync%d-%d" % (self.n, int(time.monotonic() * 1000) % 100000)
        user = self.watcher.client_id.split("@")[0]
        self.store.add_room(name, members=[user])
        t0 = time.monotonic()
        topic = "chat/room/%s/#" % name
        while True:
            code = self.watcher.subscribe(topic)
            if code < 0x80:
                self.watcher.c.unsubscribe(topic)
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError("the plugin did not reload the store within %.1fs "
                                     "(room %s still refused)" % (timeout, name))
            time.sleep(0.05)


# ---- raw MQTT: for CONNECT packets paho would not send and for fast floods.

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id, username=None, password=None, v5=False, will=None):
    """A CONNECT as bytes (clean session, keepalive 30; will: (topic, payload))."""
    flags = 0x02
    payload = _s(client_id)
    if will:
        flags |= 0x04 | 0x08          # will flag, will QoS 1
        payload += (b"\x00" if v5 else b"") + _s(will[0]) + _s(will[1])
    if username is not None:
        flags |= 0x80
        payload += _s(username)
    if password is not None:
        flags |= 0x40
        payload += _s(password)
    var = _s("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack("!H", 30)
    if v5:
        var += b"\x00"
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def raw_connect(port, client_id, username=None, password=None, v5=False, timeout=5.0,
                source=None):
    """Send one CONNECT on a fresh socket (from the local address source, if
    given); return the CONNACK return/reason code, or None if the broker
    closed the connection without one. The socket is closed before
    returning (a DISCONNECT is sent when accepted)."""
    pkt = connect_packet(client_id, username, password, v5)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.sendall(pkt)
        head = _recv(s, 2)
        if head is None:
            return None
        rl = head[1]
        rest = _recv(s, rl)
        if head[0] != 0x20 or rest is None or len(rest) < 2:
            return None
        code = rest[1]
        if code == 0:
            s.sendall(b"\xe0\x00")
        return code
    finally:
        s.close()


def _recv(s, n):
    buf = b""
    try:
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
    except (ConnectionError, socket.timeout):
        return None
    return buf
