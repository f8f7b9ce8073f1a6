"""test_bus.py - the bus between nodes (docs/SCALING.md, "The bus"): three
real nodes on 127.0.0.2-4, each a mosquitto with the plugin (spool and
inbox on), an archiver reading its spool and `mqchat-archiver bus`, and one
nats-server. Clients connect straight to the node a test puts them on.

- a direct message and a room message between clients on three different
  nodes: delivered once, live, with mqchat-origin to MQTT 5; stored once,
  by the sender's node's archiver;
- offline delivery: a persistent session away from node 2 keeps its
  interest (DATA/bus.interest), a message sent on node 3 is queued on node 2
  and arrives when it comes back;
- order: 1,000 numbered room messages from one sender arrive in order on
  every node, and the archive's seq has the same order;
- typing crosses nodes;
- the archiver's own publishes (an edit) cross nodes too;
- a bus SIGKILLed: what other nodes send meanwhile reaches its node once
  it is back (the others replay it: test_bus_replay.py has more); what its
  node accepted meanwhile is sent when it is back (its spool position),
  and its interest is back from DATA/bus.interest;
- a stopped bus never makes its node refuse a message (its spool slot is
  soft); back, it goes on from the newest record;
- UNSUBSCRIBE and a clean session's end take the interest away;
- a restarted broker's persistent sessions still get other nodes' messages;
- NATS killed and restarted: every bus reconnects with its subscriptions.
"""
import json
import os
import signal
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import PASSWORD, Cluster  # noqa: E402
import harness  # noqa: E402
import archiver_util  # noqa: E402

USERS = ["alice", "bob", "carol", "dave", "erin"]
ROOM = "team.x"            # a '.' in the name: sent as '~' on NATS


def ring_header(path):
    """(write position, first reader's position, second reader's position)
    of a ring file (common/spool.h: line 1 the writer's position, reader
    slot i at line 2 + 2i)."""
    with open(path, "rb") as f:
        h = f.read(320)
    assert h[:8] == b"MQCSPOOL", h[:8]
    (wpos,) = struct.unpack_from("=Q", h, 64)
    (r0,) = struct.unpack_from("=Q", h, 128)
    (r1,) = struct.unpack_from("=Q", h, 256)
    return wpos, r0, r1


@pytest.fixture(scope="module")
def cluster(request):
    c = Cluster(k=3, bus=True, front=False)
    for u in USERS:
        c.store.add_user(u, password=PASSWORD)
    c.store.add_room(ROOM, members=["alice", "bob", "carol"])
    yield from harness.serve_stack(request, c)


def node(cluster, i):
    return cluster.nodes[i - 1]


def bus(cluster, i):
    return cluster.buses["node%d" % i]


def subscribed(cluster, i, subject, n=1):
    """Wait until node i's bus has subscribed to subject on NATS (logged
    after the server confirmed it: a message published later reaches it)."""
    bus(cluster, i).wait_log("bus: subscribed %s\n" % subject, n=n)


def stored(cluster, msg_id):
    """Rows of message id over every node's archive, once every archiver
    has read its whole spool."""
    for n in cluster.nodes:
        harness.wait_for(lambda: ring_header(os.path.join(n.datadir, "spool"))[1]
                         == ring_header(os.path.join(n.datadir, "spool"))[0],
                         what="%s's archiver at the end of its spool" % n.name)
    return sum(len(archiver_util.rows(n.datadir, "SELECT seq FROM messages WHERE id=?", msg_id))
               for n in cluster.nodes)


def payloads(client, n, timeout=harness.DEFAULT_TIMEOUT):
    return [client.get(timeout) for _ in range(n)]


def quiet(client, seconds=0.5):
    """Nothing more arrives within seconds (a bounded wait for an absence:
    what crosses nodes takes a few milliseconds here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert client.messages.empty(), "unexpected message on %s: %r" % (
            client.messages.queue[0].topic, client.messages.queue[0].payload)
        time.sleep(0.02)


def test_dm_and_room_across_three_nodes(cluster):
    alice = cluster.node_client(node(cluster, 1), "alice", client_id="alice@one")
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@two", v5=True)
    carol = cluster.node_client(node(cluster, 3), "carol", client_id="carol@three")
    for c, me in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        assert c.connect() == 0
        assert c.subscribe("chat/inbox/%s/#" % me) == 1
        assert c.subscribe("chat/room/%s/#" % ROOM) == 1
    # Alice's sent copies on node 2 too: the DM below matches two
    # subscriptions of node 2 (mq.i.bob.* and mq.i.*.alice), so NATS sends
    # it there twice; the bus takes it once.
    copies = cluster.node_client(node(cluster, 2), "alice", client_id="alice@two")
    assert copies.connect() == 0
    assert copies.subscribe("chat/inbox/+/alice") == 1
    subscribed(cluster, 2, "mq.i.bob.*")
    subscribed(cluster, 2, "mq.i.*.alice")
    for i in (1, 2, 3):
        subscribed(cluster, i, "mq.r.team~x.*")

    dm = json.loads(harness.envelope("hello bob"))
    alice.publish("chat/inbox/bob/alice", json.dumps(dm))
    m = bob.get()
    assert m.topic == "chat/inbox/bob/alice" and json.loads(m.payload)["id"] == dm["id"]
    # MQTT 5: where it came from, as a user property.
    assert ("mqchat-origin", "node1") in (m.properties.UserProperty or [])
    m = copies.get()
    assert m.topic == "chat/inbox/bob/alice" and json.loads(m.payload)["id"] == dm["id"]

    room = json.loads(harness.envelope("hello team"))
    carol.publish("chat/room/%s/carol" % ROOM, json.dumps(room))
    for c in (alice, bob, carol):
        m = c.get()
        assert m.topic == "chat/room/%s/carol" % ROOM and json.loads(m.payload)["id"] == room["id"]
    for c in (alice, bob, carol, copies):
        quiet(c)
    # Stored once, by the sender's node.
    assert stored(cluster, dm["id"]) == 1
    assert archiver_util.rows(node(cluster, 1).datadir, "SELECT sender FROM messages WHERE id=?",
                              dm["id"]) == [("alice",)]
    assert stored(cluster, room["id"]) == 1
    assert archiver_util.rows(node(cluster, 3).datadir, "SELECT sender FROM messages WHERE id=?",
                              room["id"]) == [("carol",)]


def test_offline_delivery_across_nodes(cluster):
    dave = cluster.node_client(node(cluster, 2), "dave", client_id="dave@tab", clean=False)
    assert dave.connect() == 0
    assert dave.subscribe("chat/inbox/dave/#") == 1
    subscribed(cluster, 2, "mq.i.dave.*")
    dave.close()
    # The interest outlives the connection, also on disk.
    interest = os.path.join(node(cluster, 2).datadir, "bus.interest")
    harness.wait_for(lambda: os.path.exists(interest)
                     and "dave@tab\tchat/inbox/dave/#\n" in open(interest).read(),
                     what="dave's filter in bus.interest")

    inbox = os.path.join(node(cluster, 2).datadir, "inbox")
    before = ring_header(inbox)[0]
    erin = cluster.node_client(node(cluster, 3), "erin", client_id="erin@three")
    assert erin.connect() == 0
    env = json.loads(harness.envelope("while you were away"))
    erin.publish("chat/inbox/dave/erin", json.dumps(env))
    # On node 2 and published by its broker while dave is away.
    harness.wait_for(lambda: ring_header(inbox)[0] > before and ring_header(inbox)[1] == ring_header(inbox)[0],
                     what="node2's broker publishing its inbox")

    dave = cluster.node_client(node(cluster, 2), "dave", client_id="dave@tab", clean=False)
    assert dave.connect() == 0
    m = dave.get()
    assert m.topic == "chat/inbox/dave/erin" and json.loads(m.payload)["id"] == env["id"]
    quiet(dave)


def test_order_of_one_sender_across_nodes(cluster):
    members = [cluster.node_client(node(cluster, i), u, client_id="%s@order" % u)
               for i, u in ((1, "alice"), (2, "bob"), (3, "carol"))]
    for c in members:
        assert c.connect() == 0
        assert c.subscribe("chat/room/%s/#" % ROOM) == 1
    for i in (1, 2, 3):
        subscribed(cluster, i, "mq.r.team~x.*")
    alice = members[0]
    n = 1000
    ids = []
    infos = []
    for k in range(n):
        env = json.loads(harness.envelope("n=%d" % k))
        ids.append(env["id"])
        infos.append(alice.publish("chat/room/%s/alice" % ROOM, json.dumps(env), wait=False))
    harness.wait_for(lambda: all(alice.pubacks.get(i.mid) for i in infos), 30, what="1,000 PUBACKs")
    t0 = time.monotonic()
    for c in members:
        got = [json.loads(m.payload)["id"] for m in payloads(c, n, timeout=30)]
        assert got == ids, "%s: out of order or missing" % c.client_id
    print("\n1,000 room messages on 3 nodes, after the last PUBACK: all in %.2f s" % (
        time.monotonic() - t0))
    harness.wait_for(lambda: len(archiver_util.rows(
        node(cluster, 1).datadir, "SELECT id FROM messages WHERE sender='alice' AND room=?", ROOM))
        >= n, 30, what="the archive of node1")
    order = [r[0] for r in archiver_util.rows(
        node(cluster, 1).datadir, "SELECT id FROM messages WHERE sender='alice' AND room=?"
        " ORDER BY seq", ROOM)]
    assert order[-n:] == ids


def test_typing_across_nodes(cluster):
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@typing")
    assert bob.connect() == 0
    assert bob.subscribe("chat/typing/bob/#", qos=0) == 0
    subscribed(cluster, 2, "mq.t.bob.*")
    alice = cluster.node_client(node(cluster, 1), "alice", client_id="alice@typing")
    assert alice.connect() == 0
    alice.publish("chat/typing/bob/alice", {"typing": True}, qos=0)
    m = bob.get()
    assert m.topic == "chat/typing/bob/alice" and json.loads(m.payload) == {"typing": True}
    assert m.qos == 0


def test_bus_killed_and_restarted(cluster):
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@kill")
    carol = cluster.node_client(node(cluster, 3), "carol", client_id="carol@kill")
    for c, me in ((bob, "bob"), (carol, "carol")):
        assert c.connect() == 0
        assert c.subscribe("chat/inbox/%s/#" % me) == 1
    subscribed(cluster, 3, "mq.i.carol.*")
    b2 = bus(cluster, 2)
    b2.stop(signal.SIGKILL)

    # Node 3 to node 2 while node 2's bus is down: NATS has no interest of
    # node 2 and keeps nothing; stored, and replayed once the bus is back.
    lost = json.loads(harness.envelope("replayed"))
    carol.publish("chat/inbox/bob/carol", json.dumps(lost))
    # Node 2 to node 3 while its bus is down: accepted and spooled.
    later = json.loads(harness.envelope("sent when the bus is back"))
    bob.publish("chat/inbox/carol/bob", json.dumps(later))
    quiet(bob, 1.0)
    assert carol.messages.empty()
    assert stored(cluster, lost["id"]) == 1

    b2.start()
    # Its interest is back from DATA/bus.interest, and it goes on in the
    # spool from where it was: the message node 2 took meanwhile goes out.
    b2.wait_log("filters of sessions from", n=2)
    m = carol.get()
    assert m.topic == "chat/inbox/carol/bob" and json.loads(m.payload)["id"] == later["id"]
    # Node 3's bus replays what it published since node 2's stopped
    # receiving (DATA/bus.seen says when), once.
    m = bob.get()
    assert m.topic == "chat/inbox/bob/carol" and json.loads(m.payload)["id"] == lost["id"]
    subscribed(cluster, 2, "mq.i.bob.*", n=2)
    after = json.loads(harness.envelope("after the restart"))
    carol.publish("chat/inbox/bob/carol", json.dumps(after))
    m = bob.get()
    assert json.loads(m.payload)["id"] == after["id"]
    quiet(bob)


def test_the_archivers_own_publishes_cross_nodes(cluster):
    """An edit: node 1's archiver answers alice's request and publishes the
    edit envelope on its broker; the bus carries it to bob on node 2."""
    alice = cluster.node_client(node(cluster, 1), "alice", client_id="alice@edit")
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@edit")
    for c in (alice, bob):
        assert c.connect() == 0
    assert bob.subscribe("chat/inbox/bob/#") == 1
    subscribed(cluster, 2, "mq.i.bob.*")
    rpc = archiver_util.Rpc(alice, "alice")
    text = json.loads(harness.envelope("see you at 5"))
    alice.publish("chat/inbox/bob/alice", json.dumps(text))
    assert json.loads(bob.get().payload)["id"] == text["id"]
    harness.wait_for(lambda: archiver_util.rows(node(cluster, 1).datadir,
                                                "SELECT seq FROM messages WHERE id=?", text["id"]),
                     what="the text in node1's archive")
    answer = rpc.call("edit", ref=text["id"], body="see you at 6")
    assert answer.get("ok") is True, answer
    m = bob.get()
    edit = json.loads(m.payload)
    # The archiver publishes as itself (PROTOCOL.md, "Every device in step").
    assert m.topic == "chat/inbox/bob/archiver", m.topic
    assert edit["type"] == "edit" and edit["ref"] == text["id"] and edit["body"] == "see you at 6", edit
    quiet(bob)


def test_interest_follows_subscriptions(cluster):
    """UNSUBSCRIBE and the end of a clean session take a node's interest
    away (on NATS and in DATA/bus.interest); then nothing comes."""
    b3 = bus(cluster, 3)
    gone = b3.output().count("bus: unsubscribed mq.i.erin.*\n")
    erin = cluster.node_client(node(cluster, 3), "erin", client_id="erin@clean")
    assert erin.connect() == 0
    assert erin.subscribe("chat/inbox/erin/#") == 1
    subscribed(cluster, 3, "mq.i.erin.*")
    erin.c.unsubscribe("chat/inbox/erin/#")
    b3.wait_log("bus: unsubscribed mq.i.erin.*\n", n=gone + 1)
    assert erin.subscribe("chat/inbox/erin/#") == 1
    subscribed(cluster, 3, "mq.i.erin.*", n=2)
    erin.close()
    b3.wait_log("bus: unsubscribed mq.i.erin.*\n", n=gone + 2)
    interest = os.path.join(node(cluster, 3).datadir, "bus.interest")
    harness.wait_for(lambda: "erin@clean" not in open(interest).read(),
                     what="erin@clean gone from bus.interest")


def test_a_stopped_bus_never_makes_its_node_refuse(cluster):
    """The bus's slot in the spool is soft: with node 3's bus stopped, node 3
    takes more than its whole spool (8 MiB) and refuses nothing; the bus,
    back, says what it missed and goes on from the newest record."""
    b3 = bus(cluster, 3)
    skips = b3.output().count("going on from")
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@soft")
    erin = cluster.node_client(node(cluster, 3), "erin", client_id="erin@soft")
    for c in (bob, erin):
        assert c.connect() == 0
    assert bob.subscribe("chat/inbox/bob/#") == 1
    subscribed(cluster, 2, "mq.i.bob.*")
    b3.proc.proc.send_signal(signal.SIGSTOP)
    try:
        big = "x" * 60000
        infos = [erin.publish("chat/inbox/alice/erin", harness.envelope(big), wait=False)
                 for _ in range(180)]
        harness.wait_for(lambda: all(erin.pubacks.get(i.mid) for i in infos), 60,
                         what="180 PUBACKs with the bus stopped")
        wpos, _, bus_pos = ring_header(os.path.join(node(cluster, 3).datadir, "spool"))
        assert wpos - bus_pos > 8 << 20, (wpos, bus_pos)
    finally:
        b3.proc.proc.send_signal(signal.SIGCONT)
    b3.wait_log("going on from", n=skips + 1)
    env = json.loads(harness.envelope("after the gap"))
    erin.publish("chat/inbox/bob/erin", json.dumps(env))
    m = bob.get()
    assert json.loads(m.payload)["id"] == env["id"]


def test_a_restarted_broker_keeps_its_nodes_interest(cluster):
    """Node 2's broker restarts: its persistent sessions come back from its
    persistence without a SUBSCRIBE, and the bus (which kept their filters)
    still brings them what other nodes send; the plugin reopens DATA/inbox."""
    dave = cluster.node_client(node(cluster, 2), "dave", client_id="dave@desk", clean=False)
    assert dave.connect() == 0
    assert dave.subscribe("chat/inbox/dave/#") == 1
    bus(cluster, 2).wait_log("bus: subscribed mq.i.dave.*\n")
    dave.close()
    n2 = node(cluster, 2)
    n2.stop()
    n2.start()
    erin = cluster.node_client(node(cluster, 3), "erin", client_id="erin@restart")
    assert erin.connect() == 0
    env = json.loads(harness.envelope("after your broker restarted"))
    erin.publish("chat/inbox/dave/erin", json.dumps(env))
    dave = cluster.node_client(node(cluster, 2), "dave", client_id="dave@desk", clean=False)
    assert dave.connect() == 0
    got = set()
    deadline = time.monotonic() + harness.DEFAULT_TIMEOUT
    while env["id"] not in got:
        assert time.monotonic() < deadline, "not delivered after the broker's restart: %s" % got
        got.add(json.loads(dave.get().payload)["id"])


def test_nats_restarted(cluster):
    """NATS killed and started again on its port: every bus reconnects by
    itself with its subscriptions, and messages cross again (what was sent
    while it was down: test_bus_replay.py)."""
    bob = cluster.node_client(node(cluster, 2), "bob", client_id="bob@nats")
    carol = cluster.node_client(node(cluster, 3), "carol", client_id="carol@nats")
    for c in (bob, carol):
        assert c.connect() == 0
    assert bob.subscribe("chat/inbox/bob/#") == 1
    subscribed(cluster, 2, "mq.i.bob.*")
    again = {i: bus(cluster, i).output().count("bus: NATS connected again") for i in (1, 2, 3)}
    cluster.nats.stop(signal.SIGKILL)
    cluster.nats.start()
    for i in (1, 2, 3):
        bus(cluster, i).wait_log("bus: NATS connected again", n=again[i] + 1, timeout=20)
    env = json.loads(harness.envelope("after NATS came back"))
    # The reconnect resends the subscriptions before anything else; a
    # message right after may still pass the server before node 2's
    # SUB: send until one arrives (bounded), then check it is ours.
    deadline = time.monotonic() + harness.DEFAULT_TIMEOUT
    while bob.messages.empty():
        assert time.monotonic() < deadline, "nothing crossed after NATS came back"
        carol.publish("chat/inbox/bob/carol", json.dumps(env))
        time.sleep(0.2)
    assert json.loads(bob.get().payload)["id"] == env["id"]
