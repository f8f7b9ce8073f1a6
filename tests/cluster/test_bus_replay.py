"""test_bus_replay.py - the bus's replay window and resync notices
(docs/SCALING.md, "Replay and resync: when the bus lost something";
archiver/bus_replay.c), on three real nodes with their brokers, archivers
and buses and one nats-server (tests/cluster/test_bus.py's set-up, a cluster
of its own: a replay of a whole window reaches every session of a node).

- NATS killed and started again while three people on three nodes send to
  each other before, during and right after the outage: every message
  reaches the live sessions on the other nodes once, in each sender's
  order;
- a bus SIGKILLed and restarted while other nodes send to its people: what
  they sent arrives once, and no resync notice (DATA/bus.seen says what it
  had taken and since when it was away);
- the same without DATA/bus.seen, or with one it did not write (the bus
  cannot tell what it had taken):
  the whole window comes again, and each local person gets one
  {"type":"resync","ts":...} on chat/notice/<user>; every message arrives, repeats
  only of earlier ones (apps keep one per (from, id));
- a sender's bus restarted (its window lost) while another node's bus was
  away: its answer says so, and that node's people get a resync notice.
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
from test_bus import ring_header  # noqa: E402

USERS = ["alice", "bob", "carol"]
NOTICE = "chat/notice/%s"


@pytest.fixture(scope="module")
def cluster(request):
    c = Cluster(k=3, bus=True, front=False)
    for u in USERS:
        c.store.add_user(u, password=PASSWORD)
    yield from harness.serve_stack(request, c)


def bus(cluster, i):
    return cluster.buses["node%d" % i]


def person(cluster, i, user, tag):
    """user on node i, subscribed to its inbox and its notices."""
    c = cluster.node_client(cluster.nodes[i - 1], user, client_id="%s@%s" % (user, tag))
    assert c.connect() == 0
    assert c.subscribe("chat/inbox/%s/#" % user) == 1
    assert c.subscribe(NOTICE % user) == 1
    bus(cluster, i).wait_log("bus: subscribed mq.i.%s.*\n" % user)
    return c


def send(client, me, to, label):
    env = json.loads(harness.envelope(label))
    client.publish("chat/inbox/%s/%s" % (to, me), json.dumps(env))
    return env["id"]


def collect(client, n, timeout=30):
    """n messages (topic, payload) within timeout, notices apart."""
    got, notices = [], []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, "%d of %d arrived: %r" % (len(got), n, got)
        m = client.get(left)
        if m.topic.startswith("chat/notice/"):
            notices.append(json.loads(m.payload))
        else:
            got.append((m.topic, json.loads(m.payload)["id"]))
    return got, notices


def quiet(client, seconds=1.0):
    """Nothing more within seconds: no repeat comes late (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert client.messages.empty(), "unexpected: %s %r" % (
            client.messages.queue[0].topic, client.messages.queue[0].payload)
        time.sleep(0.02)


def test_nats_restarted_while_three_nodes_send(cluster):
    alice = person(cluster, 1, "alice", "nats")
    bob = person(cluster, 2, "bob", "nats")
    carol = person(cluster, 3, "carol", "nats")
    sent = {"alice": [], "bob": [], "carol": []}       # ids to bob, to carol, to alice

    def round_(label, n):
        for k in range(n):
            sent["alice"].append(send(alice, "alice", "bob", "%s a%d" % (label, k)))
            sent["carol"].append(send(carol, "carol", "bob", "%s c%d" % (label, k)))
            sent["bob"].append(send(bob, "bob", "carol", "%s b%d" % (label, k)))

    round_("before", 5)
    collect(bob, 10)
    collect(carol, 5)
    again = {i: bus(cluster, i).output().count("bus: NATS connected again") for i in (1, 2, 3)}
    short = {i: bus(cluster, i).output().count("does not reach back") for i in (1, 2, 3)}
    cluster.nats.stop(signal.SIGKILL)
    round_("during", 20)
    t0 = time.monotonic()
    cluster.nats.start()
    # Right after the start, while the buses reconnect one by one: these
    # race the replay; they must still come after the outage's ones.
    round_("after", 10)
    got_bob, notices_b = collect(bob, 60)
    got_carol, notices_c = collect(carol, 30)
    took = time.monotonic() - t0
    for i in (1, 2, 3):
        bus(cluster, i).wait_log("bus: NATS connected again", n=again[i] + 1, timeout=20)
    # Once each, in each sender's order.
    assert [i for t, i in got_bob if t == "chat/inbox/bob/alice"] == sent["alice"][5:]
    assert [i for t, i in got_bob if t == "chat/inbox/bob/carol"] == sent["carol"][5:]
    assert [i for t, i in got_carol] == sent["bob"][5:]
    # Everything could be replayed: nobody is told to sync.
    assert notices_b == [] and notices_c == []
    for i in (1, 2, 3):
        assert bus(cluster, i).output().count("does not reach back") == short[i]
    quiet(bob)
    quiet(carol)
    print("\nNATS restart: 90 messages across 3 nodes all delivered %.2f s after"
          " nats-server was started again" % took)


def seen_path(cluster, i):
    return os.path.join(cluster.nodes[i - 1].datadir, "bus.seen")


def test_restarted_bus_gets_what_it_missed_once(cluster):
    alice = person(cluster, 1, "alice", "kill")
    bob = person(cluster, 2, "bob", "kill")
    carol = person(cluster, 3, "carol", "kill")
    b2 = bus(cluster, 2)
    b2.stop(signal.SIGKILL)
    ids = {"alice": [send(alice, "alice", "bob", "a%d" % k) for k in range(5)],
           "carol": [send(carol, "carol", "bob", "c%d" % k) for k in range(5)]}
    b2.start()
    got, notices = collect(bob, 10)
    assert [i for t, i in got if t == "chat/inbox/bob/alice"] == ids["alice"]
    assert [i for t, i in got if t == "chat/inbox/bob/carol"] == ids["carol"]
    # DATA/bus.seen said what it had taken and since when it was away.
    assert notices == []
    quiet(bob)


@pytest.mark.parametrize("record", ["gone", "garbage"])
def test_restarted_bus_without_its_record_sends_resync_notices(cluster, record):
    alice = person(cluster, 1, "alice", "blind-" + record)
    bob = person(cluster, 2, "bob", "blind-" + record)
    carol = person(cluster, 3, "carol", "blind-" + record)
    b2 = bus(cluster, 2)
    notices_before = b2.output().count("resync notice to")
    blind_before = b2.output().count("bus: no record of what was received")
    b2.stop(signal.SIGKILL)
    if record == "gone":
        os.unlink(seen_path(cluster, 2))
    else:
        with open(seen_path(cluster, 2), "w") as f:
            f.write("not what the bus wrote\n")
    ids = [send(alice, "alice", "bob", "a%d" % k) for k in range(5)]
    ids += [send(carol, "carol", "bob", "c%d" % k) for k in range(5)]
    b2.start()
    b2.wait_log("bus: no record of what was received", n=blind_before + 1)
    # The whole window comes again (repeats of what bob had, which apps
    # drop by (from, id)), and bob is told to sync, once.
    got, notices = set(), []
    deadline = time.monotonic() + 30
    while not set(ids) <= got or notices == []:
        assert time.monotonic() < deadline, (ids, got, notices)
        m = bob.get(deadline - time.monotonic())
        if m.topic == NOTICE % "bob":
            notices.append(json.loads(m.payload))
        else:
            got.add(json.loads(m.payload)["id"])
    assert len(notices) == 1 and notices[0]["type"] == "resync", notices
    assert abs(notices[0]["ts"] / 1000 - time.time()) < 60, notices
    b2.wait_log("resync notice to", n=notices_before + 1)
    # One round, for the two people with sessions on node 2 (bob here and
    # bob of the earlier tests: one notice per user), not one per message.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        m = None if bob.messages.empty() else bob.get()
        assert m is None or m.topic != NOTICE % "bob", "a second notice"
        time.sleep(0.02)


def test_a_senders_lost_window_sends_resync_notices(cluster):
    """Node 2's bus is away while carol (node 3) writes to bob, and node 3's
    bus restarts meanwhile: what it had published is gone with it, so its
    answer says its window does not reach back, and bob is told to sync."""
    bob = person(cluster, 2, "bob", "lost")
    carol = person(cluster, 3, "carol", "lost")
    b2, b3 = bus(cluster, 2), bus(cluster, 3)
    b2.stop(signal.SIGKILL)
    ids = [send(carol, "carol", "bob", "c%d" % k) for k in range(5)]
    # Wait until node 3's bus has read them (its spool position moved on),
    # then restart it: its window is lost.
    spool = os.path.join(cluster.nodes[2].datadir, "spool")
    harness.wait_for(lambda: ring_header(spool)[0] == ring_header(spool)[2],
                     what="node 3's bus at the end of its spool")
    b3.stop(signal.SIGKILL)
    b3.start()
    b2.start()
    deadline = time.monotonic() + 30
    notices = []
    while notices == []:
        assert time.monotonic() < deadline, "no resync notice"
        m = bob.get(deadline - time.monotonic())
        if m.topic == NOTICE % "bob":
            notices.append(json.loads(m.payload))
        else:
            # Only what was said before node 2's bus went away could come.
            assert json.loads(m.payload)["id"] not in ids
    assert len(notices) == 1 and notices[0]["type"] == "resync", notices
    assert abs(notices[0]["ts"] / 1000 - time.time()) < 60, notices
    b2.wait_log("window does not reach back")


def test_records_lost_in_a_senders_spool_send_resync_notices(cluster):
    """Node 3's bus stopped while its node takes more than the whole spool
    (8 MiB; its slot is soft): what was written over never goes out, and
    the other nodes' people are told to sync."""
    alice = person(cluster, 1, "alice", "overrun")
    bob = person(cluster, 2, "bob", "overrun")
    carol = person(cluster, 3, "carol", "overrun")
    b3 = bus(cluster, 3)
    skips = b3.output().count("going on from")
    b3.proc.proc.send_signal(signal.SIGSTOP)
    try:
        big = "x" * 60000
        infos = [carol.publish("chat/inbox/alice/carol", harness.envelope(big), wait=False)
                 for _ in range(180)]
        harness.wait_for(lambda: all(carol.pubacks.get(i.mid) for i in infos), 60,
                         what="180 PUBACKs with the bus stopped")
    finally:
        b3.proc.proc.send_signal(signal.SIGCONT)
    b3.wait_log("going on from", n=skips + 1)
    for who in (alice, bob):
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "no resync notice"
            m = who.get(deadline - time.monotonic())
            if m.topic.startswith("chat/notice/"):
                assert json.loads(m.payload)["type"] == "resync"
                break


def nats_publish(cluster, subject, headers=None, payload=b"x"):
    """One message on NATS from a plain socket (the protocol's PUB, or HPUB
    with headers), as another program on the same server could send."""
    with socket.create_connection(("127.0.0.1", cluster.nats.port), timeout=5) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"INFO ")
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n')
        if headers is None:
            s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
        else:
            hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                             for k, v in headers.items()) + b"\r\n"
            s.sendall(b"HPUB %s %d %d\r\n%s%s\r\n" % (subject.encode(), len(hdr),
                                                     len(hdr) + len(payload), hdr, payload))
        s.sendall(b"PING\r\n")
        while f.readline() != b"PONG\r\n":
            pass


@pytest.mark.parametrize("subject,headers,says", [
    ("mq.ctl.resync", None, "no Mq-Origin that is a node's name"),
    ("mq.ctl.resync", {"Mq-Origin": "Node 9", "Mq-Since": "1", "Mq-Nonce": "1"},
     "no Mq-Origin that is a node's name"),
    ("mq.ctl.resync", {"Mq-Origin": "node2", "Mq-Since": "1", "Mq-Nonce": "1"},
     "from a bus with this node's name"),
    ("mq.ctl.resync", {"Mq-Origin": "node9", "Mq-Since": "yesterday", "Mq-Nonce": "1"},
     "a request without a numeric Mq-Since and Mq-Nonce"),
    ("mq.rp.node2", {"Mq-Origin": "node9", "Mq-End": "1"},
     "an end mark without a numeric Mq-Nonce"),
    ("mq.rp.node2", {"Mq-Origin": "node9", "Mq-Epoch": "1", "Mq-Seq": "-5",
                     "Mq-Subject": "mq.i.bob.carol"},
     "a record without numeric Mq-Epoch and Mq-Seq and an Mq-Subject the bus carries"),
    ("mq.rp.node2", {"Mq-Origin": "node9", "Mq-Epoch": "1", "Mq-Seq": "5",
                     "Mq-Subject": "mq.x.bob.carol"},
     "a record without numeric Mq-Epoch and Mq-Seq and an Mq-Subject the bus carries"),
], ids=["no-headers", "bad-origin", "own-name", "bad-since", "end-no-nonce", "bad-seq",
        "bad-subject"])
def test_control_messages_not_from_a_bus_are_said_and_ignored(request, cluster, subject,
                                                             headers, says):
    # A client id per case: a second connection with the same id would
    # take the session over, and its end could race the new SUBSCRIBE.
    tag = "ctl-%s" % request.node.callspec.id
    bob = person(cluster, 2, "bob", tag)
    carol = person(cluster, 3, "carol", tag)
    b2 = bus(cluster, 2)
    before = b2.output().count(says)
    nats_publish(cluster, subject, headers)
    b2.wait_log(says, n=before + 1)
    # Nothing else happened to node 2: nothing injected, messages cross.
    quiet(bob, 0.3)
    mid = send(carol, "carol", "bob", "still crossing")
    got, notices = collect(bob, 1)
    assert got == [("chat/inbox/bob/carol", mid)] and notices == []
