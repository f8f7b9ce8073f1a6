"""Presence: the plugin publishes chat/presence/<user> retained, online on the
first connection and offline when the last one ends, however it ends."""
import json
import time

import pytest

from plugin_util import (PROTOCOLS, assert_denied_publish, assert_refused, connect, drop,
                         expect_none, get, login, presence, presence_of, publish, quiet,
                         stall, subscribe_ok, wait_disconnected)

PW = "password-xxxx"


@pytest.fixture
def pres(store, make_broker):
    for name in ("alice", "bob", "carol"):
        store.add_user(name)
    # One room: everyone here is everyone's contact, and sees their presence.
    store.add_room("team", ("alice", "bob", "carol"))
    return make_broker()


def next_status(c, user, timeout=5.0):
    m = get(c, timeout, "presence of %s" % user)
    assert m.topic == presence(user), "expected presence of %s, got %s %r" % (user, m.topic, m.payload)
    p = presence_of(m)
    assert set(p) >= {"status", "since"}, "presence payload lacks status/since: %r" % m.payload
    assert isinstance(p["since"], int) and not isinstance(p["since"], bool), (
        "presence since is not an integer: %r" % m.payload)
    return p


def retained_status(clients, b, user, watcher="carol", v5=False):
    """What a fresh subscriber finds retained on chat/presence/<user>."""
    c = login(clients, b, watcher, PW, client_id="%s@r%d" % (watcher, time.monotonic_ns() % 10**9), v5=v5)
    subscribe_ok(c, presence(user))
    m = get(c, 5.0, "retained presence of %s" % user)
    assert m.retain, "presence of %s is not retained" % user
    c.close()
    return presence_of(m)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_online_then_offline(pres, clients, v5):
    bob = login(clients, pres, "bob", PW, v5=v5)
    subscribe_ok(bob, presence("alice"))
    expect_none(bob)  # alice never connected: nothing retained
    before = int(time.time() * 1000)
    alice = login(clients, pres, "alice", PW, v5=v5)
    p = next_status(bob, "alice")
    assert p["status"] == "online", "first connection: %r" % p
    assert before - 5000 <= p["since"] <= int(time.time() * 1000) + 5000, (
        "online since %d is not the connection time (~%d ms)" % (p["since"], before))
    r = retained_status(clients, pres, "alice", v5=v5)
    assert r["status"] == "online", "retained presence while alice is online: %r" % r
    alice.close()
    q = next_status(bob, "alice")
    assert q["status"] == "offline", "after alice's only connection closed: %r" % q
    assert q["since"] >= p["since"], "offline since %d before online since %d" % (q["since"], p["since"])
    r = retained_status(clients, pres, "alice", v5=v5)
    assert r["status"] == "offline", "retained presence after alice left: %r" % r


def test_two_devices(pres, clients):
    bob = login(clients, pres, "bob", PW)
    subscribe_ok(bob, presence("alice"))
    a1 = login(clients, pres, "alice", PW, client_id="alice@one")
    assert next_status(bob, "alice")["status"] == "online"
    a2 = login(clients, pres, "alice", PW, client_id="alice@two")
    a1.close()
    quiet(bob, 0.7)   # neither the second connection nor the first closing changes presence
    assert retained_status(clients, pres, "alice")["status"] == "online", (
        "alice shown offline while alice@two is still connected")
    a2.close()
    assert next_status(bob, "alice")["status"] == "offline", "last device gone: not offline"


@pytest.mark.parametrize("how", ["kick", "socket closed", "keepalive timeout"])
def test_offline_after_abnormal_end(store, pres, clients, how):
    bob = login(clients, pres, "bob", PW)
    subscribe_ok(bob, presence("alice"))
    alice = login(clients, pres, "alice", PW, keepalive=2)
    assert next_status(bob, "alice")["status"] == "online"
    t0 = time.monotonic()
    if how == "kick":
        store.set_enabled("alice", False)
        wait_disconnected(alice, 3.0, "alice was disabled")
    elif how == "socket closed":
        drop(alice)
    else:
        # mosquitto drops it after 1.5 x keepalive = 3 s, but 2.0.11 looks
        # at keepalives only every 5 s or so (src/keepalive.c): up to ~10 s.
        stall(alice)
    p = next_status(bob, "alice", timeout=13.0 if how == "keepalive timeout" else 3.0)
    took = time.monotonic() - t0
    assert p["status"] == "offline", "after %s: %r" % (how, p)
    if how == "keepalive timeout":
        assert took >= 2.0, "offline after %.2fs, before the keepalive could expire" % took
    assert retained_status(clients, pres, "alice")["status"] == "offline"


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_clients_cannot_publish_presence(pres, clients, v5):
    bob = login(clients, pres, "bob", PW, v5=v5)
    subscribe_ok(bob, presence("bob"))
    assert next_status(bob, "bob")["status"] == "online"
    subscribe_ok(bob, "chat/presence/#")
    bob.barrier()
    while not bob.messages.empty():   # bob's own retained presence again
        bob.messages.get_nowait()
    alice = login(clients, pres, "alice", PW, v5=v5)
    got = next_status(bob, "alice")
    assert got["status"] == "online"
    forged = json.dumps({"status": "offline", "since": 1})
    for topic, retain in ((presence("alice"), True), (presence("alice"), False),
                          (presence("carol"), True), ("chat/presence/alice/x", False)):
        code = publish(alice, topic, forged, retain=retain)
        assert_denied_publish(alice, code, topic)
    expect_none(bob)
    assert retained_status(clients, pres, "alice", watcher="bob", v5=v5)["status"] == "online"
    c = login(clients, pres, "bob", PW, client_id="bob@check", v5=v5)
    subscribe_ok(c, presence("carol"))
    expect_none(c)   # carol never connected, and alice could not forge hers


def test_session_takeover_by_same_device_keeps_online(pres, clients):
    """alice@phone connecting again takes over her own session (the broker
    closes the old connection): she is still online, and goes offline only
    when the new connection ends."""
    bob = login(clients, pres, "bob", PW)
    subscribe_ok(bob, presence("alice"))
    old = login(clients, pres, "alice", PW, client_id="alice@phone")
    assert next_status(bob, "alice")["status"] == "online"
    new = login(clients, pres, "alice", PW, client_id="alice@phone")
    wait_disconnected(old, 3.0, "the takeover by the same client id")
    quiet(bob, 0.7)
    assert retained_status(clients, pres, "alice")["status"] == "online", (
        "alice shown offline after her own session takeover while connected")
    new.close()
    assert next_status(bob, "alice")["status"] == "offline", "not offline after the last connection"


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_refused_logins_do_not_change_presence(store, pres, clients, v5):
    """Refused attempts under alice's name (wrong password, her client id
    claimed by bob) neither end her session nor mark her offline."""
    bob = login(clients, pres, "bob", PW, v5=v5)
    subscribe_ok(bob, presence("alice"))
    alice = login(clients, pres, "alice", PW, v5=v5)
    assert next_status(bob, "alice")["status"] == "online"
    for user, password, cid in (("alice", "wrong-password", "alice"),
                                ("alice", "wrong-password", "alice@x"),
                                ("bob", PW, "alice")):
        _, code = connect(clients, pres, user, password, client_id=cid, v5=v5)
        assert_refused(code, v5, "%s as %s" % (user, cid))
    quiet(bob, 0.7)
    assert not alice.disconnected.is_set(), "alice's connection was closed by a refused login"
    assert retained_status(clients, pres, "alice", v5=v5)["status"] == "online"
