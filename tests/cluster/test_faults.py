"""test_faults.py - docs/SCALING.md "Faults" and "Tests" scenario 7 with
the parts that exist: three nodes, each a broker with the plugin (spool and
inbox on), an archiver reading its spool and a bus, one nats-server, and
HAProxy in front.

- One node's broker SIGKILLed while QoS 1 senders on every node publish
  through HAProxy: every message acknowledged to a sender (its PUBACK
  came) is in an archive exactly once. Until the archive is shared
  (build plan 5b) each node stores its own senders' messages in its own
  archive.db, so the check is over the union of the three; the killed
  node's archiver, still running, stores from its spool what its broker
  acknowledged, also what it acknowledged while that archiver was
  stopped (behind). The killed node's senders connect again through HAProxy,
  land on the other nodes, and what they send there is stored too.
"""
import collections
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_util import MARK_DOWN_BOUND, PASSWORD, Cluster  # noqa: E402
import harness  # noqa: E402
import archiver_util  # noqa: E402
from test_spool_archive import Publisher  # noqa: E402

SENDERS = ["s%d" % i for i in range(9)]
RECIPIENT = "sink"
# The killed node's archiver is stopped once its senders have this many
# messages acknowledged, and its broker SIGKILLed at KILL_AFTER: mid-load,
# with more in flight behind them, and more unread by the archiver than
# the 1,000 its broker may have in flight to it (the archiver's MQTT 5
# Receive Maximum; a subscribed archiver's socket holds those).
STOP_ARCHIVER_AT = 300
KILL_AFTER = 3000
AFTER_MOVE = 200           # sent by each moved sender on its new node
STORE_BOUND = 60


@pytest.fixture(scope="module")
def cluster(request):
    # The per-account send rate lifted: a refused publish is acknowledged
    # all the same in MQTT 3.1.1 and would count as lost.
    c = Cluster(k=3, bus=True, front=True,
                plugin_opts={"send_rate": 1000000, "send_burst": 1000000})
    for u in SENDERS + [RECIPIENT]:
        c.store.add_user(u, password=PASSWORD)
    yield from harness.serve_stack(request, c)


def sender(cluster, name, tag):
    """A sender through HAProxy that never reconnects by itself: paho would
    send its unacknowledged messages again on the new connection, and those
    the dead broker had spooled would then be stored twice, by two nodes."""
    c = cluster.client(name, client_id="%s@%s" % (name, tag))
    c.c.reconnect_delay_set(min_delay=3600, max_delay=3600)
    return c


def archived(cluster):
    """Counter of (sender, id) over every node's archive.db."""
    n = collections.Counter()
    for node in cluster.nodes:
        n.update(archiver_util.rows(node.datadir, "SELECT sender, id FROM messages"))
    return n


def wait_stored(cluster, want, what):
    """Wait (bounded) until every (sender, id) of want is archived."""
    def missing():
        have = archived(cluster)
        return [m for m in want if not have[m]]
    try:
        harness.wait_for(lambda: not missing(), STORE_BOUND, interval=0.2, what=what)
    except AssertionError:
        lost = missing()
        raise AssertionError("%s: %d of %d missing, e.g. %s" % (what, len(lost), len(want), lost[:10]))


def test_broker_killed_under_load_loses_nothing_acknowledged(cluster):
    clients = {s: sender(cluster, s, "load") for s in SENDERS}
    for c in clients.values():
        assert c.connect() == 0
    where = {s: cluster.node_of("%s@load" % s) for s in SENDERS}
    # The node with the most senders goes; the ring may leave one empty.
    victim = cluster.node(max(set(where.values()), key=list(where.values()).count))
    moved = [s for s in SENDERS if where[s] == victim.name]
    assert len(moved) < len(SENDERS), "all senders on %s: %s" % (victim.name, where)
    pubs = {s: Publisher(c, "chat/inbox/%s/%s" % (RECIPIENT, s), s + "-a-", 100000)
            for s, c in clients.items()}
    for p in pubs.values():
        p.start()
    # Its archiver falls behind first (stopped), as under a burst: what the
    # broker acknowledged and the archiver has not read must survive the
    # broker (in the spool; a subscribed archiver's queue dies with it).
    archiver = cluster.archivers[victim.name].proc.proc
    harness.wait_for(lambda: sum(len(pubs[s].acked()) for s in moved) >= STOP_ARCHIVER_AT, 60,
                     what="%d messages acknowledged by %s" % (STOP_ARCHIVER_AT, victim.name))
    archiver.send_signal(signal.SIGSTOP)
    try:
        harness.wait_for(lambda: sum(len(pubs[s].acked()) for s in moved) >= KILL_AFTER, 60,
                         what="%d messages acknowledged by %s" % (KILL_AFTER, victim.name))
        victim.kill()
    finally:
        archiver.send_signal(signal.SIGCONT)
    t_kill = time.monotonic()
    for s in moved:
        harness.wait_for(clients[s].disconnected.is_set, 10, what="%s sees its node gone" % s)
        pubs[s].stop.set()

    # The killed node's senders connect again through HAProxy: refused (or
    # closed without a CONNACK) until it marks the node down, then placed
    # on another node.
    again, failed = {}, 0
    for s in moved:
        deadline = time.monotonic() + MARK_DOWN_BOUND + harness.DEFAULT_TIMEOUT
        while s not in again:
            assert time.monotonic() < deadline, "%s not connected again through HAProxy" % s
            c = sender(cluster, s, "load")
            try:
                if c.connect(timeout=1) == 0:
                    again[s] = c
                    continue
            except (OSError, AssertionError):
                pass     # refused, or no CONNACK: the node is not marked down yet
            c.close()
            failed += 1
            time.sleep(0.2)
    t_back = time.monotonic() - t_kill
    for s in moved:
        hosts = [n.name for n in cluster.nodes if n is not victim and n.accepted("%s@load" % s)]
        assert len(hosts) == 1, "%s accepted again by %s" % (s, hosts)
    later = {s: Publisher(c, "chat/inbox/%s/%s" % (RECIPIENT, s), s + "-b-", AFTER_MOVE)
             for s, c in again.items()}
    for p in later.values():
        p.start()
    for p in later.values():
        p.join(30)
        assert not p.is_alive()
        harness.wait_for(lambda p=p: len(p.acked()) == AFTER_MOVE, 30,
                         what="%s's messages on its new node acknowledged" % p.prefix)
    for p in pubs.values():
        p.stop.set()
    for p in pubs.values():
        p.join(30)
        assert not p.is_alive()
    # Every PUBACK paho read before the connection went, or before stop.
    acked = [(s, m) for s, p in list(pubs.items()) + list(later.items()) for m in p.acked()]
    sent = sum(len(p.sent) for p in list(pubs.values()) + list(later.values()))
    wait_stored(cluster, acked, "acknowledged messages in the nodes' archives")
    have = archived(cluster)
    twice = [(m, k) for m, k in have.items() if k > 1]
    assert twice == [], "stored more than once: %s" % twice[:10]
    from_victim = sum(len(pubs[s].acked()) for s in moved)
    print("\n%s SIGKILLed: %d senders of %d on it, %d acknowledged by it; they were on other"
          " nodes %.2f s after the kill (%d attempts failed before); %d sent, %d acknowledged,"
          " %d stored (union), all acknowledged stored once" % (victim.name, len(moved), len(SENDERS), from_victim,
                                          t_back, failed, sent, len(acked), sum(have.values())))
