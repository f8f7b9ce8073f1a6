"""test_presence.py - presence across nodes, heartbeats and the takeover
denial (docs/SCALING.md, "Presence", "The session directory is NATS's
interest", "Faults"): three real nodes on 127.0.0.2-4, each a mosquitto
with the plugin, its archiver and `mqchat-archiver bus`, and one
nats-server. Clients connect straight to the node a test puts them on.

- an account online on node 1 is online for a watcher on node 3; online on
  nodes 1 and 2, it leaves node 1: still online; leaves node 2: offline;
- a node's broker SIGKILLed: its accounts are offline on the other nodes
  within a bound (its bus says so); restarted, it has the retained
  presence of accounts online on other nodes again;
- a node's bus SIGKILLed or SIGSTOPped: its accounts go offline on the
  other nodes after its heartbeat has been silent 3 s, and online again
  when it is back;
- takeover: a persistent session on node 1, its client connects on node 2
  with the same client id; what is sent meanwhile (on node 1 and on node 3)
  is not queued in the old session, and back on node 1 the client gets a
  resync notice instead, also after node 1's broker restarted;
- NATS restarted: presence is right again and goes on;
- presence messages the buses cannot read change nothing.
"""
import json
import os
import signal
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import PASSWORD, Cluster  # noqa: E402
import harness  # noqa: E402

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "henry", "ivan"]


@pytest.fixture(scope="module")
def cluster(request):
    c = Cluster(k=3, bus=True, front=False)
    for u in USERS:
        c.store.add_user(u, password=PASSWORD)
    # One room of everyone: everyone is everyone's contact and may see
    # their presence.
    c.store.add_room("everyone", members=USERS)
    yield from harness.serve_stack(request, c)


def node(cluster, i):
    return cluster.nodes[i - 1]


def bus(cluster, i):
    return cluster.buses["node%d" % i]


def watcher(cluster, i, who, me="carol"):
    """A client on node i that sees who's presence (retained first)."""
    w = cluster.node_client(node(cluster, i), me, client_id="%s@w%d" % (me, time.monotonic_ns() % 10**9))
    assert w.connect() == 0
    assert w.subscribe("chat/presence/%s" % who) == 1
    return w


def next_status(w, who, timeout=harness.DEFAULT_TIMEOUT):
    """The next presence of who that w receives: "online" or "offline"."""
    m = w.get(timeout)
    assert m.topic == "chat/presence/%s" % who, (m.topic, m.payload)
    return json.loads(m.payload)["status"]


def wait_status(w, who, status, timeout=harness.DEFAULT_TIMEOUT):
    """Read w's presence messages of who until one says status (bounded);
    returns the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "%s not %s within %.1f s" % (who, status, timeout)
        if next_status(w, who, left) == status:
            return time.monotonic() - t0


def quiet(client, seconds):
    """Nothing arrives within seconds (a bounded wait for an absence)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert client.messages.empty(), "unexpected message on %s: %r" % (
            client.messages.queue[0].topic, client.messages.queue[0].payload)
        time.sleep(0.02)


def test_presence_across_nodes(cluster):
    w = watcher(cluster, 3, "alice")
    a1 = cluster.node_client(node(cluster, 1), "alice", client_id="alice@one")
    assert a1.connect() == 0
    assert wait_status(w, "alice", "online") < harness.DEFAULT_TIMEOUT

    a2 = cluster.node_client(node(cluster, 2), "alice", client_id="alice@two")
    assert a2.connect() == 0
    # Node 3's bus has alice on node 2 too before she leaves node 1.
    bus(cluster, 3).wait_log("bus: alice online on node2\n")
    a1.close()
    bus(cluster, 3).wait_log("bus: alice offline on node1\n")
    # Still online (node 2): no "offline" past the rate rule's first
    # interval (1 s), and a new subscriber on node 3 finds "online".
    quiet(w, 2.5)
    w2 = watcher(cluster, 3, "alice", me="dave")
    assert next_status(w2, "alice") == "online"

    a2.close()
    assert wait_status(w, "alice", "offline") < harness.DEFAULT_TIMEOUT
    # And on node 1, which had her first.
    w1 = watcher(cluster, 1, "alice", me="dave")
    assert next_status(w1, "alice") == "offline"


def nats_publish(cluster, messages):
    """Publish (subject, payload) pairs on the cluster's NATS as another
    client would (the NATS text protocol), and wait for the server's PONG:
    they have been handed to the subscribers."""
    with socket.create_connection(("127.0.0.1", cluster.nats.port), timeout=5) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"INFO "), "not a NATS server"
        out = b'CONNECT {"verbose":false,"pedantic":false}\r\n'
        for subject, payload in messages:
            out += b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)
        s.sendall(out + b"PING\r\n")
        line = f.readline()
        assert line == b"PONG\r\n", line


def test_bad_presence_messages_change_nothing(cluster):
    """What the buses cannot read on the presence subjects is dropped and
    said (debug); a node that never sends a heartbeat after a presence
    message is dropped 3 s later like a silent one."""
    w = watcher(cluster, 3, "gina", me="erin")
    # Whatever is retained (offline, or nothing if gina never connected).
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        if not w.messages.empty():
            assert next_status(w, "gina") == "offline"
        time.sleep(0.02)
    before = bus(cluster, 3).output().count("a presence message not understood")
    bad = [
        ("mq.p.gina", b"garbage"),
        ("mq.p.gina", b'{"node":"node1","run":1,"online":true'),            # cut short
        ("mq.p.gina", b'{"node":"No Node","run":1,"online":true,"since":1}'),
        ("mq.p.gina", b'{"node":"node9","run":1,"online":true,"since":1}' + b" " * 300),
        ("mq.p.Not~A~Name!", b'{"node":"node9","run":1,"online":true,"since":1}'),
        ("mq.hb.node9", b"not a heartbeat"),
        ("mq.to.gina@tab", b"No Node"),
        ("mq.to.gina@tab", b""),
    ]
    nats_publish(cluster, bad)
    bus(cluster, 3).wait_log("a presence message not understood", n=before + 5)
    quiet(w, 1.5)
    for i in (1, 2, 3):
        assert bus(cluster, i).running()
    # A node nobody heard a heartbeat of: its word counts until it has
    # been silent 3 s.
    nats_publish(cluster, [("mq.p.gina", b'{"node":"node9","run":7,"online":true,"since":1}')])
    assert wait_status(w, "gina", "online") < harness.DEFAULT_TIMEOUT
    t0 = time.monotonic()
    assert wait_status(w, "gina", "offline") < harness.DEFAULT_TIMEOUT
    took = time.monotonic() - t0
    assert 2.0 <= took < 6.0, took
    bus(cluster, 3).wait_log("bus: node node9 silent for 3 s: 1 accounts dropped")


def test_takeover_an_old_session_receives_nothing_after_its_client_moved(cluster):
    """frank@tab has a persistent session on node 1 and connects on node 2
    (a failover): node 1 stops delivering to the old session, both what
    node 1's own clients send (READ denied) and what other nodes send (its
    interest dropped). Back on node 1, its session holds only what was
    queued before the move, and a resync notice."""
    frank = cluster.node_client(node(cluster, 1), "frank", client_id="frank@tab", clean=False)
    assert frank.connect() == 0
    assert frank.subscribe("chat/inbox/frank/#") == 1
    bus(cluster, 1).wait_log("bus: subscribed mq.i.frank.*\n")
    frank.close()
    erin = cluster.node_client(node(cluster, 1), "erin", client_id="erin@one")
    gina = cluster.node_client(node(cluster, 3), "gina", client_id="gina@three")
    for c in (erin, gina):
        assert c.connect() == 0
    before = json.loads(harness.envelope("queued before the move"))
    erin.publish("chat/inbox/frank/erin", json.dumps(before))

    moved = cluster.node_client(node(cluster, 2), "frank", client_id="frank@tab", clean=False)
    assert moved.connect() == 0
    assert moved.subscribe("chat/inbox/frank/#") == 1
    bus(cluster, 2).wait_log("bus: subscribed mq.i.frank.*\n")
    bus(cluster, 1).wait_log("bus: takeover of frank@tab by node2")
    # Node 1 no longer asks NATS for frank's messages (no other session
    # of node 1 wants them).
    bus(cluster, 1).wait_log("bus: unsubscribed mq.i.frank.*\n")
    harness.wait_for(lambda: "frank@tab connected on node2" in node(cluster, 1).output(),
                     what="node1's broker taking the takeover")
    local = json.loads(harness.envelope("from node 1 while on node 2"))
    remote = json.loads(harness.envelope("from node 3 while on node 2"))
    erin.publish("chat/inbox/frank/erin", json.dumps(local))
    gina.publish("chat/inbox/frank/gina", json.dumps(remote))
    got = {json.loads(moved.get().payload)["id"] for _ in range(2)}
    assert got == {local["id"], remote["id"]}
    moved.close()

    back = cluster.node_client(node(cluster, 1), "frank", client_id="frank@tab", clean=False)
    flags = {}
    on_connect = back.c.on_connect

    def keep_flags(c, u, f, rc, props=None):
        flags.update(f)
        on_connect(c, u, f, rc, props)
    back.c.on_connect = keep_flags
    assert back.connect() == 0
    assert flags.get("session present") == 1, flags
    ids, notices = [], []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            m = back.messages.get(timeout=0.1)
        except Exception:
            continue
        if m.topic == "chat/notice/frank":
            notices.append(json.loads(m.payload))
        else:
            ids.append(json.loads(m.payload)["id"])
    assert ids == [before["id"]], "the old session delivered %r (before the move: %s)" % (
        ids, before["id"])
    assert [n["type"] for n in notices] == ["resync"], notices
    bus(cluster, 1).wait_log("bus: frank@tab is back on this node")
    bus(cluster, 1).wait_log("bus: subscribed mq.i.frank.*\n", n=2)
    # And it receives again, from both.
    again = json.loads(harness.envelope("back on node 1"))
    gina.publish("chat/inbox/frank/gina", json.dumps(again))
    assert json.loads(back.get().payload)["id"] == again["id"]


def back_on(cluster, i, client_id, seconds=1.5):
    """Connect client_id (persistent) to node i: (session present, message
    ids, notices) of what arrives within seconds."""
    c = cluster.node_client(node(cluster, i), client_id.split("@")[0], client_id=client_id,
                            clean=False)
    flags = {}
    on_connect = c.c.on_connect

    def keep_flags(cl, u, f, rc, props=None):
        flags.update(f)
        on_connect(cl, u, f, rc, props)
    c.c.on_connect = keep_flags
    assert c.connect() == 0
    ids, notices = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            m = c.messages.get(timeout=0.1)
        except Exception:
            continue
        if m.topic.startswith("chat/notice/"):
            notices.append(json.loads(m.payload)["type"])
        else:
            ids.append(json.loads(m.payload)["id"])
    return flags.get("session present"), ids, notices


def test_the_takeover_denial_outlives_a_broker_restart(cluster):
    """The broker keeps its denials in memory; its bus gives them again
    when it connects to the restarted broker (mosquitto.db brought the
    old session back)."""
    frank = cluster.node_client(node(cluster, 1), "frank", client_id="frank@desk", clean=False)
    assert frank.connect() == 0
    assert frank.subscribe("chat/inbox/frank/#") == 1
    frank.close()
    moved = cluster.node_client(node(cluster, 2), "frank", client_id="frank@desk", clean=False)
    assert moved.connect() == 0
    assert moved.subscribe("chat/inbox/frank/#") == 1
    n1 = node(cluster, 1)
    harness.wait_for(lambda: "frank@desk connected on node2" in n1.output(),
                     what="node1's broker taking the takeover")
    n1.stop()
    n1.start()
    harness.wait_for(lambda: "frank@desk connected on another node" in n1.output(),
                     what="node1's bus giving the takeover again")
    erin = cluster.node_client(n1, "erin", client_id="erin@restart")
    assert erin.connect() == 0
    local = json.loads(harness.envelope("from node 1 after its restart"))
    erin.publish("chat/inbox/frank/erin", json.dumps(local))
    assert json.loads(moved.get().payload)["id"] == local["id"]
    moved.close()
    present, ids, notices = back_on(cluster, 1, "frank@desk")
    assert present == 1
    assert ids == [], "the old session delivered %r" % ids
    assert notices == ["resync"], notices


def test_a_killed_broker_takes_its_accounts_offline(cluster):
    w = watcher(cluster, 3, "bob")
    bob = cluster.node_client(node(cluster, 1), "bob", client_id="bob@one")
    assert bob.connect() == 0
    assert wait_status(w, "bob", "online") < harness.DEFAULT_TIMEOUT
    n1 = node(cluster, 1)
    t0 = time.monotonic()
    n1.kill()
    wait_status(w, "bob", "offline", timeout=10)
    took = time.monotonic() - t0
    print("\nbroker SIGKILLed: its account offline on another node after %.2f s" % took)
    # The bus sees its MQTT connection break within its 1 s check.
    assert took < 4.0, took
    # Restarted: the broker's retained presence of an account online on
    # another node (the watcher, carol on node 3) is back, from the bus.
    n1.start()
    w1 = watcher(cluster, 1, "carol", me="erin")
    deadline = time.monotonic() + harness.DEFAULT_TIMEOUT
    while next_status(w1, "carol", harness.DEFAULT_TIMEOUT) != "online":
        assert time.monotonic() < deadline
    bob = cluster.node_client(node(cluster, 1), "bob", client_id="bob@one")
    assert bob.connect() == 0
    assert wait_status(w, "bob", "online") < harness.DEFAULT_TIMEOUT


# One account each: the rate rule would make a second round's "offline"
# wait for a longer interval.
@pytest.mark.parametrize("sig,who", [(signal.SIGKILL, "henry"), (signal.SIGSTOP, "ivan")])
def test_a_silent_bus_takes_its_accounts_offline(cluster, sig, who):
    w = watcher(cluster, 3, who, me="erin")
    acct = cluster.node_client(node(cluster, 2), who, client_id="%s@two" % who)
    assert acct.connect() == 0
    assert wait_status(w, who, "online") < harness.DEFAULT_TIMEOUT
    b2 = bus(cluster, 2)
    t0 = time.monotonic()
    if sig == signal.SIGKILL:
        b2.stop(signal.SIGKILL)
    else:
        b2.proc.proc.send_signal(signal.SIGSTOP)
    try:
        wait_status(w, who, "offline", timeout=10)
        took = time.monotonic() - t0
        print("\nbus %s: its account offline on another node after %.2f s" % (
            "SIGKILLed" if sig == signal.SIGKILL else "stopped", took))
        # Silent 3 s, checked every 0.5 s, on a busy machine.
        assert 2.5 <= took < 6.0, took
    finally:
        if sig == signal.SIGKILL:
            b2.start()
        else:
            b2.proc.proc.send_signal(signal.SIGCONT)
    # Back: it is asked for its list, and the account is online again.
    assert wait_status(w, who, "online") < harness.DEFAULT_TIMEOUT
    acct.close()
    assert wait_status(w, who, "offline") < harness.DEFAULT_TIMEOUT


def test_presence_after_nats_restarted(cluster):
    """NATS killed and started again: every bus reconnects and sends its
    list; an account online on node 1 is online on node 3 (a new watcher
    finds it retained), and its going offline still crosses."""
    acct = cluster.node_client(node(cluster, 1), "ivan", client_id="ivan@nats")
    assert acct.connect() == 0
    w = watcher(cluster, 3, "ivan", me="gina")
    assert wait_status(w, "ivan", "online") < harness.DEFAULT_TIMEOUT
    again = {i: bus(cluster, i).output().count("bus: NATS connected again") for i in (1, 2, 3)}
    sent = bus(cluster, 1).output().count("bus: presence list sent")
    cluster.nats.stop(signal.SIGKILL)
    cluster.nats.start()
    for i in (1, 2, 3):
        bus(cluster, i).wait_log("bus: NATS connected again", n=again[i] + 1, timeout=20)
    # Connected again, node 1's bus sends its whole list (the others may
    # have dropped it had the outage passed 3 s).
    bus(cluster, 1).wait_log("bus: presence list sent", n=sent + 1)
    w2 = watcher(cluster, 3, "ivan", me="erin")
    assert next_status(w2, "ivan") == "online"
    acct.close()
    bus(cluster, 1).wait_log("bus: ivan offline here")
    assert wait_status(w2, "ivan", "offline") < harness.DEFAULT_TIMEOUT
