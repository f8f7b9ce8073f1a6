"""Presence of an account that connects and disconnects in a loop: the
plugin publishes it at most once per interval (1 s, doubling to 30 s while
the account keeps changing), so 300 cycles give a watcher a handful of
messages, not 600, and the last one is the account's real state.

The bound: changes are published at 0, 1, 3, 7, 15 s... after the first, so
cycles that take T seconds end with a publish at most 2T + 1 s after the
first, and give at most 1 + log2(2T + 2) messages: 6 for T up to 15 s,
which the cycles must not exceed here (300 raw connections with a cached
credential take well under a second)."""
import math
import time

import pytest

from plugin_util import (expect_none, get, login, presence, presence_of, quiet, raw_connect,
                         subscribe_ok)

PW = "password-xxxx"
CYCLES = 300
FLOOD_BOUND = 15.0     # seconds the 300 cycles may take
MAX_MESSAGES = 6       # 1 + log2(2 * 15 + 2)
SLACK = 2.0            # seconds of TICK and scheduling lag allowed on a busy machine


@pytest.fixture
def pres(store, make_broker):
    for name in ("alice", "bob"):
        store.add_user(name)
    # One room: everyone here is everyone's contact, and sees their presence.
    store.add_room("team", ("alice", "bob"))
    return make_broker()


def now_ms():
    return int(time.time() * 1000)


def statuses(c):
    """Every presence status c has received so far, in order."""
    out = []
    while not c.messages.empty():
        m = c.messages.get_nowait()
        assert m.topic == presence("alice"), "unexpected message on %s" % m.topic
        out.append(presence_of(m))
    return out


def retained(clients, b, user):
    """What a fresh subscriber finds retained on user's presence, or None."""
    c = login(clients, b, "bob", PW, client_id="bob@r%d" % (time.monotonic_ns() % 10**9))
    subscribe_ok(c, presence(user))
    c.barrier()
    got = None
    while not c.messages.empty():
        m = c.messages.get_nowait()
        if m.retain and m.payload:
            got = presence_of(m)
    c.close()
    return got


def flap(b, client_id):
    """CYCLES connect/disconnect cycles of alice; the seconds they took."""
    t0 = time.monotonic()
    for i in range(CYCLES):
        code = raw_connect(b.port, client_id, "alice", PW)
        assert code == 0, "cycle %d: alice refused with CONNACK %r" % (i, code)
        took = time.monotonic() - t0
        assert took < FLOOD_BOUND, "%d cycles took over %.0fs" % (i + 1, FLOOD_BOUND)
    return time.monotonic() - t0


@pytest.mark.parametrize("end", ["offline", "online"])
def test_flapping_account_is_coalesced(pres, clients, end):
    bob = login(clients, pres, "bob", PW)
    subscribe_ok(bob, presence("alice"))
    expect_none(bob)   # alice never connected: nothing retained
    first_ms = now_ms()
    t0 = time.monotonic()
    flap(pres, "alice@flap")
    if end == "online":
        alice = login(clients, pres, "alice", PW, client_id="alice@phone")
    last_change_ms = now_ms()
    flood = time.monotonic() - t0

    # The real state arrives within the interval running when the cycles
    # ended (at most 2T + 1 s after the first publish)...
    settle = 2 * flood + 1 + SLACK
    got = []

    def settled():
        got.extend(statuses(bob))
        return got and got[-1]["status"] == end
    deadline = t0 + settle
    while not settled():
        assert time.monotonic() < deadline, (
            "alice's presence did not end %s within %.1fs of %d cycles in %.1fs: %r" % (
                end, settle, CYCLES, flood, [p["status"] for p in got[-12:]]))
        time.sleep(0.05)
    # ... and nothing follows it.
    quiet(bob, max(0.0, deadline - time.monotonic()) + 0.5)

    assert len(got) <= MAX_MESSAGES, (
        "%d cycles in %.1fs sent the watcher %d presence messages (bound %d): %r..." % (
            CYCLES, flood, len(got), MAX_MESSAGES, [p["status"] for p in got[:12]]))
    assert len(got) <= 1 + math.floor(math.log2(2 * flood + 2 + 2 * SLACK)), (
        "%d messages for %.1fs of cycles: more than one per interval" % (len(got), flood))
    for prev, cur in zip(got, got[1:]):
        assert prev["status"] != cur["status"], "the same status twice in a row: %r" % got
    assert got[0]["status"] == "online"
    # "since" is the time of a real change, not of a later publish.
    for p in got:
        assert first_ms - 50 <= p["since"] <= last_change_ms + 50, (
            "since %d outside the cycles (%d..%d)" % (p["since"], first_ms, last_change_ms))
    r = retained(clients, pres, "alice")
    assert r is not None and r["status"] == end, "retained presence after the cycles: %r" % r
    if end == "online":
        # Still counted right: her last connection going is "offline".
        alice.close()
        t1 = time.monotonic()
        p = presence_of(get(bob, 30 + SLACK, "alice's offline after her last connection"))
        assert p["status"] == "offline", p
        assert time.monotonic() - t1 <= 30 + SLACK


def test_second_device_keeps_online_through_flapping(pres, clients):
    """alice@two stays connected while alice@one connects and disconnects
    300 times: alice never goes offline, so watchers hear nothing."""
    bob = login(clients, pres, "bob", PW)
    subscribe_ok(bob, presence("alice"))
    two = login(clients, pres, "alice", PW, client_id="alice@two")
    assert presence_of(get(bob, 5, "alice online"))["status"] == "online"
    flap(pres, "alice@one")
    quiet(bob, 1.0)
    r = retained(clients, pres, "alice")
    assert r is not None and r["status"] == "online", r
    two.close()
    p = presence_of(get(bob, 2 * 1 + SLACK, "alice offline after her last device"))
    assert p["status"] == "offline", p
