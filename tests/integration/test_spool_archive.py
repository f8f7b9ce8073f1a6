"""The archiver reading the node's spool (`spool yes`, plugin_opt_spool_mb):
a broker killed with SIGKILL loses nothing it acknowledged, and goes on
with the same spool after a restart; a killed archiver loses nothing and
stores nothing twice; RPC answers hold every message sent before the
request; requests read while the broker is down are dropped and counted.
At the end, some of the archiver's tests run again with the spool (their
module's arch_env is replaced by this one's)."""
import json
import os
import signal
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

import harness
from archiver_util import (Rpc, env_factory, inbox, publish_many, room)

SPOOL_MB = 16
# SIGKILL of the broker after this many acknowledged messages, of all
# publishers together: mid-load, with more queued behind it.
KILL_AFTER = 1500
# How long the archiver may take to store what the dead broker acknowledged.
STORE_BOUND = 30


@pytest.fixture
def arch_env(datadir, store, make_broker, clients, request):
    """archiver_util's arch_env with the spool on (broker and archiver)."""
    yield from env_factory(datadir, store, make_broker, clients, request, spool_mb=SPOOL_MB)


def spool_header(datadir):
    """(epoch, write position, next seq, the archiver's position) from the
    spool's header (common/spool.h: 64-byte lines; line 0 holds the epoch
    at byte 24, line 1 the writer's position and next seq, line 2 the
    archiver's position)."""
    with open(os.path.join(datadir, "spool"), "rb") as f:
        h = f.read(192)
    assert h[:8] == b"MQCSPOOL", h[:8]
    (epoch,) = struct.unpack_from("=Q", h, 24)
    wpos, seq = struct.unpack_from("=QQ", h, 64)
    (apos,) = struct.unpack_from("=Q", h, 128)
    return epoch, wpos, seq, apos


class Publisher(threading.Thread):
    """One sender publishing numbered QoS 1 messages to topic until n are
    sent or stop is set. acked() lists the ids whose PUBACK came (paho marks
    a message published only then)."""

    def __init__(self, client, topic, prefix, n):
        super().__init__(daemon=True)
        self.client, self.topic, self.prefix, self.n = client, topic, prefix, n
        self.sent = []
        self.stop = threading.Event()
        client.c.max_inflight_messages_set(50)

    def run(self):
        self.t0 = time.monotonic()
        for i in range(self.n):
            if self.stop.is_set() or self.client.disconnected.is_set():
                return
            mid = "%s%06d" % (self.prefix, i)
            info = self.client.c.publish(self.topic, json.dumps(
                {"id": mid, "type": "text", "body": "x", "ts": int(time.time() * 1000)}), qos=1)
            if info.rc != 0:
                return   # the connection is gone: paho queues it, it was not sent
            self.sent.append((mid, info))
            self.after_send(i)

    def after_send(self, i):
        """After the i-th publish (from 0): a window of 200 unacknowledged,
        so the broker stays busy and the kill finds messages in every
        state."""
        if len(self.sent) > 200:
            oldest = self.sent[-200][1]
            deadline = time.monotonic() + 30
            while not oldest.is_published() and not self.stop.is_set():
                assert time.monotonic() < deadline, "no PUBACK within 30 s"
                time.sleep(0.005)

    def acked(self):
        return [m for m, info in list(self.sent) if info.is_published()]


def stored_ids(env, sender=None):
    if sender is None:
        return [r[0] for r in env.rows("SELECT id FROM messages")]
    return [r[0] for r in env.rows("SELECT id FROM messages WHERE sender=? ORDER BY seq", sender)]


def assert_once(env):
    twice = env.rows("SELECT sender, id, count(*) FROM messages GROUP BY sender, id"
                     " HAVING count(*) > 1")
    assert twice == [], "stored more than once: %s" % twice[:10]


def wait_all_in(have, want, bound, what, interval=0.2):
    """Until every item of want is in have() (a collection, read again each
    time); on timeout, fail saying how many are missing and which."""
    def missing():
        got = have()
        return [m for m in want if m not in got]
    try:
        harness.wait_for(lambda: not missing(), bound, interval=interval, what=what)
    except AssertionError:
        lost = missing()
        raise AssertionError("%s: %d of %d missing, e.g. %s" % (what, len(lost), len(want), lost[:10]))


def wait_all_stored(env, want, bound, what):
    wait_all_in(lambda: set(stored_ids(env)), want, bound, what)


def kill_broker_under_load(env, senders):
    """Start a publisher per sender (to bob), SIGKILL the broker once
    KILL_AFTER messages are acknowledged, and return (acked ids, all
    publishers) once every publisher has seen the connection go."""
    pubs = []
    for s in senders:
        c = env.user(s)
        pubs.append(Publisher(c, inbox("bob", s), s + "-", 100000))
    for p in pubs:
        p.start()
    harness.wait_for(lambda: sum(len(p.acked()) for p in pubs) >= KILL_AFTER, 60,
                     what="%d messages acknowledged" % KILL_AFTER)
    env.broker.stop(signal.SIGKILL)
    for p in pubs:
        harness.wait_for(p.client.disconnected.is_set, 10, what="publisher sees the broker gone")
        p.stop.set()
        p.join(10)
        assert not p.is_alive()
    # Every PUBACK that came was read by paho before it saw the close.
    acked = [m for p in pubs for m in p.acked()]
    return acked, pubs


def test_broker_killed_loses_nothing_acknowledged(arch_env):
    senders = ["s%d" % i for i in range(4)]
    env = arch_env(users=senders + ["bob"])
    acked, pubs = kill_broker_under_load(env, senders)
    sent = sum(len(p.sent) for p in pubs)
    # The broker stays dead: everything it acknowledged comes from the spool.
    wait_all_stored(env, acked, STORE_BOUND, "acknowledged messages stored with the broker dead")
    assert_once(env)
    stored = set(stored_ids(env))
    print("broker SIGKILL with the spool: %d sent, %d acknowledged, %d stored, %d acknowledged"
          " missing" % (sent, len(acked), len(stored), len([m for m in acked if m not in stored])))
    epoch, wpos, seq, apos = spool_header(env.datadir)
    harness.wait_for(lambda: spool_header(env.datadir)[3] == wpos, 10, what="spool consumed")
    for p in pubs:
        p.client.close()

    # The broker comes back on the same spool: seq goes on, later messages
    # are stored too.
    env.broker.start()
    env.arch.wait_ready(2)
    alice = env.user("s0")
    later = publish_many(alice, inbox("bob", "s0"), 200, prefix="after-")
    wait_all_stored(env, later, STORE_BOUND, "messages sent after the restart")
    epoch2, wpos2, seq2, _ = spool_header(env.datadir)
    assert epoch2 == epoch, "the broker made a new spool instead of continuing"
    assert seq2 >= seq + 200 and wpos2 > wpos, (seq, seq2, wpos, wpos2)
    assert_once(env)
    assert [m for m in stored_ids(env, "s0") if m.startswith("after-")] == later


def test_broker_killed_while_the_archiver_is_behind(arch_env):
    # The archiver stopped, 5,000 messages acknowledged: without the spool,
    # all but the 1,000 in flight to the archiver (its receive maximum)
    # die with the broker's memory.
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    os.kill(env.arch.proc.proc.pid, signal.SIGSTOP)
    try:
        sent = publish_many(alice, inbox("bob", "alice"), 5000, prefix="behind-")
        env.broker.stop(signal.SIGKILL)
    finally:
        os.kill(env.arch.proc.proc.pid, signal.SIGCONT)
    wait_all_stored(env, sent, STORE_BOUND, "acknowledged messages stored with the broker dead")
    assert stored_ids(env, "alice") == sent
    assert_once(env)


def test_archiver_killed_under_load_loses_nothing(arch_env):
    senders = ["k%d" % i for i in range(3)]
    env = arch_env(users=senders + ["bob"])
    clients = [env.user(s) for s in senders]
    total, kills = 3000, 3
    sent = {}

    def pub(c, s):
        c.c.max_inflight_messages_set(100)
        sent[s] = publish_many(c, inbox("bob", s), total, prefix=s + "-")
    threads = [threading.Thread(target=pub, args=(c, s), daemon=True) for c, s in zip(clients, senders)]
    for t in threads:
        t.start()
    under_load = []
    for k in range(kills):
        n = env.count()
        harness.wait_for(lambda: env.count() >= n + 300 or not any(t.is_alive() for t in threads),
                         30, what="progress")
        under_load.append(any(t.is_alive() for t in threads))
        env.arch.stop(signal.SIGKILL)
        env.arch.start()
    for t in threads:
        t.join(60)
    assert under_load[0], "the publishers were done before the first kill"
    assert sorted(sent) == senders
    want = [m for s in senders for m in sent[s]]
    wait_all_stored(env, want, STORE_BOUND, "messages stored after %d archiver kills" % kills)
    assert_once(env)
    for s in senders:
        assert stored_ids(env, s) == sent[s], "conversation of %s out of order" % s
    _, wpos, _, _ = spool_header(env.datadir)
    harness.wait_for(lambda: spool_header(env.datadir)[3] == wpos, 10, what="spool consumed")


def test_rpc_answers_hold_what_was_sent_before(arch_env):
    env = arch_env(users=["alice", "bob"], rooms={"lobby": ["alice", "bob"]})
    alice, bob = env.user("alice"), env.user("bob")
    rpc = Rpc(alice, "alice")
    for rnd in range(3):
        # No wait for the archive between sending and asking: the answer
        # must hold every message, since the request comes after them.
        sent = publish_many(alice, inbox("bob", "alice"), 100, prefix="h%d-" % rnd)
        ans = rpc.call("history", **{"with": "bob", "limit": 100})
        assert ans["ok"] is True, ans
        assert [m["id"] for m in ans["messages"]] == sent[::-1]
    dms = publish_many(bob, inbox("alice", "bob"), 60, prefix="d-")
    msgs = publish_many(bob, room("lobby", "bob"), 60, prefix="r-")
    got, after = [], 0
    for _ in range(50):
        ans = rpc.call("sync", after=after, limit=100)
        assert ans["ok"] is True, ans
        got += [m["id"] for m in ans["messages"]]
        if not ans["more"]:
            break
        after = ans["messages"][-1]["seq"]
    assert [m for m in got if m[0] in "dr"] == dms + msgs
    assert_once(env)


def test_requests_read_while_the_broker_is_down_are_dropped(arch_env):
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    assert alice.subscribe("chat/rpc/alice/resp") in (0, 1)
    # The archiver stopped: the request and a message wait in the spool.
    os.kill(env.arch.proc.proc.pid, signal.SIGSTOP)
    try:
        alice.publish("chat/rpc/alice/req", json.dumps({"id": "q1", "op": "rooms"}))
        alice.publish(inbox("bob", "alice"), json.dumps({"id": "m1", "type": "text", "body": "x"}))
        env.broker.stop(signal.SIGKILL)
    finally:
        os.kill(env.arch.proc.proc.pid, signal.SIGCONT)
    env.wait_rows(1)
    assert stored_ids(env) == ["m1"]
    env.arch.wait_log("requests read from the spool while the broker is down are dropped")
    env.broker.start()
    env.arch.wait_log("1 request(s) read from the spool while the broker was down were dropped")
    # Answered again once it is back.
    alice2 = env.user("alice", client_id="alice@2")
    assert Rpc(alice2, "alice").call("rooms")["ok"] is True


def test_waits_for_the_broker_to_make_the_spool(arch_env, make_broker):
    # A broker without the spool first: the archiver waits for the file
    # (it never makes it: the broker's plugin_opt_spool_mb says its size).
    env = arch_env(users=["alice", "bob"], start=False, spool_mb=0)
    env.arch.args.append("--spool")
    env.arch.start()
    env.arch.wait_log("does not exist yet: waiting for the broker to make it")
    port = env.broker.port
    env.broker.stop()
    env.broker = make_broker(port=port, plugin_opts={"spool_mb": SPOOL_MB})
    env.arch.wait_log("reading %s from position 0" % os.path.join(env.datadir, "spool"))
    alice = env.user("alice")
    sent = publish_many(alice, inbox("bob", "alice"), 50)
    wait_all_stored(env, sent, STORE_BOUND, "messages stored from the new spool")


def test_turning_the_spool_on_loses_nothing(arch_env, make_broker):
    # A run without the spool leaves a session with its subscriptions and
    # a queue; the first run with it takes the queue once, drops the
    # subscriptions (else every message would come twice) and reads the
    # spool.
    env = arch_env(users=["alice", "bob"], spool_mb=0)
    alice = env.user("alice")
    before = publish_many(alice, inbox("bob", "alice"), 10, prefix="before-")
    env.wait_rows(10)
    assert env.arch.stop() == 0
    queued = publish_many(alice, inbox("bob", "alice"), 100, prefix="queued-")
    alice.close()
    port = env.broker.port
    env.broker.stop()   # SIGTERM: the queue is saved with the session
    env.broker = make_broker(port=port, plugin_opts={"spool_mb": SPOOL_MB})
    env.arch.args.append("--spool")
    env.arch.start()
    alice = env.user("alice", client_id="alice@2")
    after = publish_many(alice, inbox("bob", "alice"), 100, prefix="after-")
    wait_all_stored(env, before + queued + after, STORE_BOUND, "messages of both runs")
    assert stored_ids(env, "alice") == before + queued + after
    assert env.arch.stop() == 0
    assert "stored, 0 duplicates" in env.arch.output().split("stopped:")[-1], env.arch.output()[-2000:]


def test_metrics_count_the_spool(arch_env):
    port = harness.free_port()
    env = arch_env(users=["alice", "bob"], args=["--metrics-port", str(port)])
    alice = env.user("alice")
    publish_many(alice, inbox("bob", "alice"), 20)
    env.wait_rows(20)

    def figures():
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
        return dict(line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")

    def caught_up():
        f = figures()
        return (float(f["mqchat_archiver_spool_records_total"]) >= 20
                and float(f["mqchat_archiver_spool_lag_bytes"]) == 0 and f)
    f = harness.wait_for(caught_up, 10, what="spool figures")
    assert float(f["mqchat_archiver_requests_dropped_total"]) == 0
    # A clean stop, the waiting thread included.
    assert env.arch.stop() == 0, env.arch.output()
    assert "stopped: 20 stored" in env.arch.output()


def run(datadir, *args, timeout=10):
    return subprocess.run([harness.ARCHIVER, "--data", datadir, "run"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def test_bad_spool_settings(datadir):
    conf = os.path.join(datadir, "bad.conf")
    with open(conf, "w") as f:
        f.write("spool = maybe\n")
    r = run(datadir, "-c", conf)
    assert r.returncode == 2 and 'bad.conf:1: invalid value "maybe" for spool' in r.stderr, r.stderr
    r = run(datadir, "--spool=yes")
    assert r.returncode == 2 and "--spool" in r.stderr, r.stderr
    r = run(datadir, "--help")
    assert r.returncode == 0 and "[--spool]" in r.stdout


# Some of the archiver's tests again, with the spool: they take arch_env
# from this module.
from test_archiver_ingest import (  # noqa: E402,F401
    test_dm_and_room_stored_with_topic_names, test_duplicate_id_stored_once,
    test_receipts_raise_status_never_lower, test_invalid_payloads_counted_not_stored)
from test_archiver_rpc import (  # noqa: E402,F401
    chat, test_history_paging_both_ways, test_sync_dms_and_rooms, test_v5_correlation_data_echoed)
# archive.db locked or read-only: the spool is not read meanwhile, and
# what was read when the store failed is read again (spool_in.c).
from test_archiver_durability import (  # noqa: E402,F401
    test_broker_restart_reconnects_and_keeps_the_queue, test_signal_under_load,
    test_locked_database_loses_nothing, test_read_only_database_waits_then_stores)
from test_archiver_register import test_open_registration  # noqa: E402,F401
# The archiver's own publishes (membership events, edits) come back to it
# through the spool, as through its subscriptions, and are stored.
from test_rooms_members import test_create_add_promote_set_info  # noqa: E402,F401
from test_edit_delete import (  # noqa: E402,F401
    test_edit_reaches_the_peer_and_my_other_device_and_shows_everywhere)
# Device login reports reach the archiver through the spool too.
from test_device_tokens import env, test_devices_lists_them_and_last_seen_follows_logins  # noqa: E402,F401
