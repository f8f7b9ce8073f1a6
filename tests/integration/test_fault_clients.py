"""Hostile or numerous clients: 1,000 logins at once all succeed while two
other users keep chatting; a client sending garbage, half a packet, or
announcing a 100 MB packet is dropped (or costs nothing while it waits),
the others keep chatting and the broker's memory stays bounded."""
import socket
import threading
import time

import pytest

import harness
from fault_util import (RssPeak, bulk_users, close_all, closed_by_peer, connect_many,
                        connect_packet, nofile_of, raise_nofile)
from plugin_util import _varint, envelope, expect_msg, login, subscribe_ok

PW = "password-xxxx"
N = 1000
# A packet larger than this closes the connection (the broker's own check,
# before it allocates anything); set well above message_size_limit so a
# too-large chat message still gets the gentler PUBACK 0x95.
LIMITS = "message_size_limit 131072\nmax_packet_size 262144\n"
RSS_BOUND_KB = 20 * 1024


def chat(alice, bob, text):
    m = envelope(text)
    alice.publish("chat/inbox/bob/alice", m)
    expect_msg(bob, "chat/inbox/bob/alice", m)


# 1,000 first logins are 1,000 PBKDF2 checks on the broker's thread: 2 s
# here, but under SAN=1 beside the archiver flood test they took 55 s, and
# the cached second wave must fit too.
@pytest.mark.timeout(300)
def test_1000_clients_at_once(store, make_broker, clients):
    # 3 fds per connection on our side is plenty; the broker inherits this.
    assert raise_nofile(2 * N + 256) >= N + 128, "RLIMIT_NOFILE too low for %d clients" % N
    store.add_user("alice")
    store.add_user("bob")
    names = ["u%04d" % i for i in range(N)]
    bulk_users(store, names, PW)
    b = make_broker()
    # mosquitto needs a descriptor per client plus its own few
    assert nofile_of(b.proc.pid) >= N + 64, "broker's RLIMIT_NOFILE: %s" % nofile_of(b.proc.pid)
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/inbox/bob/#")
    chat(alice, bob, "before")

    stop = threading.Event()
    during = []

    def keep_chatting():
        while not stop.is_set():
            t0 = time.monotonic()
            chat(alice, bob, "during %d" % len(during))
            during.append(time.monotonic() - t0)
    t = threading.Thread(target=keep_chatting)
    t.start()
    socks = []
    try:
        t0 = time.monotonic()
        socks, codes = connect_many(b.port, [(n, n, PW) for n in names])
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        t.join(30)
    try:
        refused = [(names[i], c) for i, c in enumerate(codes) if c != 0]
        assert refused == [], "%d of %d logins not accepted, e.g. %r" % (len(refused), N, refused[:5])
        print("%d logins in %.2f s; %d messages meanwhile, slowest %.0f ms" % (
            N, elapsed, len(during), 1000 * max(during or [0])))
        assert during, "no message went through while the clients connected"
        chat(alice, bob, "after, all connected")
        assert b.proc.poll() is None
    finally:
        close_all(socks)
    chat(alice, bob, "after, all gone")
    # a second wave is served from the credential cache
    t0 = time.monotonic()
    socks, codes = connect_many(b.port, [(n + "@again", n, PW) for n in names])
    print("%d cached logins in %.2f s" % (N, time.monotonic() - t0))
    close_all(socks)
    assert codes.count(0) == N


def bad_garbage(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\xff\xfe\x00garbage, not MQTT\r\n" * 64)
    return s


def bad_half_publish(port):
    """A valid login with a 2 s keepalive, then half a PUBLISH and silence."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(connect_packet("mallory", "mallory", PW, keepalive=2))
    head = s.recv(4)
    assert head[:1] == b"\x20" and head[3:4] == b"\x00", "mallory's login refused: %r" % head
    s.sendall(b"\x30" + _varint(200) + b"\x00\x14chat/inbox/bob/mall")
    return s


def bad_big_announce(port):
    """A CONNECT announcing 100 MB, then data streamed for up to 2 s."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\x10" + _varint(100 * 1024 * 1024))
    chunk = b"A" * 65536
    deadline = time.monotonic() + 2
    try:
        while time.monotonic() < deadline:
            s.sendall(chunk)
    except OSError:
        pass    # dropped: what we want
    return s


@pytest.mark.parametrize("bad,drop_within", [
    (bad_garbage, 3.0), (bad_half_publish, 12.0), (bad_big_announce, 3.0),
], ids=["garbage", "half-packet", "100MB-announced"])
def test_bad_client_is_dropped(store, make_broker, clients, bad, drop_within):
    for n in ("alice", "bob", "mallory"):
        store.add_user(n)
    b = make_broker(extra_conf=LIMITS)
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/inbox/bob/#")
    chat(alice, bob, "before")
    with RssPeak(b.proc.pid) as rss:
        s = bad(b.port)
        try:
            chat(alice, bob, "while the bad client is connected")
            # the half packet is only noticed by the keepalive check (1.5 x
            # 2 s, checked every 5 s by the broker)
            assert closed_by_peer(s, drop_within), (
                "the broker kept the bad client for %.0f s" % drop_within)
        finally:
            s.close()
        chat(alice, bob, "after")
    print("broker RSS %d KiB before, peak %d KiB" % (rss.start, rss.peak))
    assert rss.peak - rss.start < RSS_BOUND_KB, "broker RSS grew by %d KiB" % (rss.peak - rss.start)
    assert b.proc.poll() is None


def test_unfinished_connects_are_bounded_by_the_packet_cap(store, make_broker, clients):
    """The report: 400 unfinished CONNECTs of 256 KiB held 100 MB for over
    30 s. Mosquitto allocates a packet whole as soon as its header says how
    long it is, and holds a socket that has not finished its CONNECT until
    the default keepalive runs out; so what one such socket can hold is the
    broker's max_packet_size, now 68 KiB (config/mosquitto.conf, the harness
    uses the same). 400 sockets sending all but the last byte of a packet
    just under the cap hold about 400 x 68 KiB; one announcing more than the
    cap is closed before the broker buffers anything."""
    store.add_user("alice")
    store.add_user("bob")
    b = make_broker()
    alice = login(clients, b, "alice", PW)
    bob = login(clients, b, "bob", PW)
    subscribe_ok(bob, "chat/inbox/bob/#")
    cap = 69632
    socks = []
    with RssPeak(b.proc.pid) as rss:
        try:
            big = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            socks.append(big)
            big.sendall(b"\x10" + _varint(256 * 1024))
            assert closed_by_peer(big, 5), "a CONNECT announcing 256 KiB was kept"
            length = cap - 8
            head = b"\x10" + _varint(length)
            body = b"\x00\x04MQTT\x04\x02\x00\x3c" + b"\x00" * (length - 10 - 1)
            for _ in range(400):
                s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
                socks.append(s)
                s.sendall(head + body)
            chat(alice, bob, "with 400 unfinished logins waiting")
        finally:
            close_all(socks)
    grown_mb = (rss.peak - rss.start) / 1024.0
    print("broker +%.1f MB with 400 unfinished CONNECTs of %d bytes" % (grown_mb, cap))
    # 400 x 68 KiB = 27 MB, and some room; with the old 256 KiB cap: 100 MB.
    assert grown_mb < 45, grown_mb
    chat(alice, bob, "after")
    harness.wait_for(lambda: b.proc.poll() is None, what="broker alive")
