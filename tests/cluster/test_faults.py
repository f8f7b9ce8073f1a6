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
  (tests/cluster/test_faults_pg.py: the same on one archive shared on
  PostgreSQL, with the moved clients' sync.)
- All of a node's processes (broker, archiver, bus) SIGKILLed at once
  under the same load, then started again as systemd would: the same,
  the restarted archiver storing from its spool position.
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


def alive(node):
    return node.proc is not None and node.proc.poll() is None


class Load:
    """QoS 1 senders through HAProxy (client ids <sender>@<tag>), one
    Publisher each, on the nodes the ring gives them; the victim is the
    running node with the most of them (the ring may leave one empty)."""

    def __init__(self, cluster, tag):
        self.cluster, self.tag = cluster, tag
        self.clients = {s: sender(cluster, s, tag) for s in SENDERS}
        for c in self.clients.values():
            assert c.connect() == 0
        where = {s: cluster.node_of("%s@%s" % (s, tag)) for s in SENDERS}
        self.victim = cluster.node(max(set(where.values()), key=list(where.values()).count))
        self.moved = [s for s in SENDERS if where[s] == self.victim.name]
        assert len(self.moved) < len(SENDERS), "all senders on %s: %s" % (self.victim.name, where)
        self.pubs = {s: Publisher(c, "chat/inbox/%s/%s" % (RECIPIENT, s), "%s-%s-a-" % (s, tag),
                                  100000) for s, c in self.clients.items()}
        self.later = {}
        for p in self.pubs.values():
            p.start()

    def acked_by_victim(self):
        return sum(len(self.pubs[s].acked()) for s in self.moved)

    def wait_acked_by_victim(self, n):
        harness.wait_for(lambda: self.acked_by_victim() >= n, 60,
                         what="%d messages acknowledged by %s" % (n, self.victim.name))

    def move(self):
        """After the kill: the victim's senders see their connection go and
        connect again through HAProxy (refused, or closed without a
        CONNACK, until it gives up on the node), each landing on one other
        node, and send AFTER_MOVE more there. Returns (seconds from
        t_kill, failed attempts)."""
        t_kill = time.monotonic()
        for s in self.moved:
            harness.wait_for(self.clients[s].disconnected.is_set, 10,
                             what="%s sees its node gone" % s)
            self.pubs[s].stop.set()
        again, failed = {}, 0
        for s in self.moved:
            deadline = time.monotonic() + MARK_DOWN_BOUND + harness.DEFAULT_TIMEOUT
            while s not in again:
                assert time.monotonic() < deadline, "%s not connected again through HAProxy" % s
                c = sender(self.cluster, s, self.tag)
                try:
                    if c.connect(timeout=1) == 0:
                        again[s] = c
                        continue
                except (OSError, AssertionError):
                    pass     # refused, or no CONNACK
                c.close()
                failed += 1
                time.sleep(0.2)
        t_back = time.monotonic() - t_kill
        for s in self.moved:
            cid = "%s@%s" % (s, self.tag)
            hosts = [n.name for n in self.cluster.nodes if n is not self.victim and n.accepted(cid)]
            assert len(hosts) == 1, "%s accepted again by %s" % (s, hosts)
        self.later = {s: Publisher(c, "chat/inbox/%s/%s" % (RECIPIENT, s),
                                   "%s-%s-b-" % (s, self.tag), AFTER_MOVE)
                      for s, c in again.items()}
        for p in self.later.values():
            p.start()
        for p in self.later.values():
            p.join(30)
            assert not p.is_alive()
            harness.wait_for(lambda p=p: len(p.acked()) == AFTER_MOVE, 30,
                             what="%s's messages on its new node acknowledged" % p.prefix)
        return t_back, failed

    def stop(self):
        """Stop every publisher; (acknowledged (sender, id)s, sent count)."""
        for p in self.pubs.values():
            p.stop.set()
        for p in self.pubs.values():
            p.join(30)
            assert not p.is_alive()
        # Every PUBACK paho read before the connection went, or before stop.
        every = list(self.pubs.items()) + list(self.later.items())
        return [(s, m) for s, p in every for m in p.acked()], sum(len(p.sent) for _, p in every)


def check_once(cluster, acked):
    """Every acknowledged message archived, nothing twice: the union's size."""
    wait_stored(cluster, acked, "acknowledged messages in the nodes' archives")
    have = archived(cluster)
    twice = [(m, k) for m, k in have.items() if k > 1]
    assert twice == [], "stored more than once: %s" % twice[:10]
    return sum(have.values())


def test_broker_killed_under_load_loses_nothing_acknowledged(cluster):
    load = Load(cluster, "load")
    victim = load.victim
    # Its archiver falls behind first (stopped), as under a burst: what the
    # broker acknowledged and the archiver has not read must survive the
    # broker (in the spool; a subscribed archiver's queue dies with it).
    archiver = cluster.archivers[victim.name].proc.proc
    load.wait_acked_by_victim(STOP_ARCHIVER_AT)
    archiver.send_signal(signal.SIGSTOP)
    try:
        load.wait_acked_by_victim(KILL_AFTER)
        victim.kill()
    finally:
        archiver.send_signal(signal.SIGCONT)
    t_back, failed = load.move()
    acked, sent = load.stop()
    stored = check_once(cluster, acked)
    print("\n%s's broker SIGKILLed: %d senders of %d on it, %d acknowledged by it; they were on"
          " other nodes %.2f s after the kill (%d attempts failed before); %d sent, %d"
          " acknowledged, %d stored (union), all acknowledged stored once" % (
              victim.name, len(load.moved), len(SENDERS), load.acked_by_victim(), t_back, failed,
              sent, len(acked), stored))


def test_all_of_a_node_killed_and_restarted_loses_nothing_acknowledged(cluster):
    """Broker, archiver and bus of a node SIGKILLed at once under load, then
    started again as systemd would: the restarted archiver stores from its
    spool position what the dead broker had acknowledged."""
    for n in cluster.nodes:
        if not alive(n):        # the previous test's
            n.start()
    harness.wait_for(lambda: set(cluster.front.states().values()) == {"UP"},
                     harness.DEFAULT_TIMEOUT, what="every node UP in HAProxy")
    load = Load(cluster, "all")
    victim = load.victim
    load.wait_acked_by_victim(KILL_AFTER)
    cluster.buses[victim.name].stop(signal.SIGKILL)
    cluster.archivers[victim.name].stop(signal.SIGKILL)
    victim.kill()
    t_back, failed = load.move()
    acked, sent = load.stop()
    victim.start()
    cluster.archivers[victim.name].start()
    cluster.buses[victim.name].start()
    stored = check_once(cluster, acked)
    print("\n%s's broker, archiver and bus SIGKILLed, then restarted: %d acknowledged by it;"
          " its senders on other nodes %.2f s after the kill (%d attempts failed before); %d sent,"
          " %d acknowledged, %d stored (union), all acknowledged stored once" % (
              victim.name, load.acked_by_victim(), t_back, failed, sent, len(acked), stored))
