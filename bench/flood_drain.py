#!/usr/bin/python3
"""flood_drain.py - how fast the archiver stores while requests flood it.

    BUILD=build bench/flood_drain.py [--messages N] [--requests R]

For each kind of flood (none, `passwd` with wrong old passwords, `sync` of
500 over a room of 60 KB messages), on a fresh broker (plugin, no send
limit: this measures the archiver, not the plugin) and data folder: the
archiver is stopped; 5 senders queue N small messages for it (QoS 1) while
4 other accounts send R requests between them (QoS 0; the broker queues
them for the archiver in the same order); then the archiver starts, and
the time until archive.db holds every message gives the storing rate.
Also printed: the archiver's CPU time for the drain (from /proc) and when
the last answer reached the requesters. One JSON line per flood.

BUILD selects the programs (default build), as for the tests, so the same
run can measure another archiver binary: BUILD=/path/to/other/build."""
import argparse
import json
import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402
from archiver_util import Archiver, count  # noqa: E402
from procs import proc_cpu_s  # noqa: E402
from topics import topic  # noqa: E402

SENDERS = ["s%d" % i for i in range(5)]
ATTACKERS = ["m%d" % i for i in range(4)]
BIG = 60 * 1000
SEEDED = 500


def seed_room(datadir):
    """SEEDED messages of BIG bytes in room den, as the daemon writes them."""
    db = sqlite3.connect(os.path.join(datadir, "archive.db"), isolation_level=None, timeout=10)
    now = int(time.time() * 1000)
    try:
        db.execute("BEGIN IMMEDIATE")
        for i in range(SEEDED):
            db.execute("INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts,"
                       " status, idh) VALUES(?,NULL,'den','r:den','text',?,?,?,?,'sent',?)",
                       (ATTACKERS[i % 4], "seed%04d" % i, "s" * BIG, now, now, 1 + i))
        db.execute("COMMIT")
    finally:
        db.close()


def run(kind, n_msgs, n_reqs):
    datadir = harness.make_datadir()
    store = harness.Store(os.path.join(datadir, "auth.db"))
    clients, broker, arch = [], None, None
    try:
        for u in SENDERS + ATTACKERS + ["r0"]:
            store.add_user(u)
        store.add_room("den", members=ATTACKERS)
        pw = "svc-" + os.urandom(16).hex()
        store.add_user("archiver", password=pw, kind="service")
        with open(os.path.join(datadir, "archiver.pw"), "w") as f:
            f.write(pw + "\n")
        os.chmod(os.path.join(datadir, "archiver.pw"), 0o600)
        broker = harness.Broker(datadir, plugin_opts={"send_rate": 0},
                                extra_conf="max_queued_bytes 67108864\nmax_inflight_messages 100\n")
        broker.start()
        arch = Archiver(datadir, broker.port)
        arch.start()                       # makes archive.db and the session
        seed_room(datadir)
        assert arch.stop() == 0
        senders = []
        for u in SENDERS:
            c = harness.Client(broker.port, u, "password-xxxx", client_id=u + "@b")
            clients.append(c)
            assert c.connect() == 0
            senders.append(c)
        attackers = []
        for u in ATTACKERS:
            c = harness.Client(broker.port, u, "password-xxxx", client_id=u + "@b")
            clients.append(c)
            assert c.connect() == 0
            assert c.subscribe(topic("rpc_resp", u)) in (0, 1)
            attackers.append(c)
        every = max(1, n_msgs // n_reqs) if kind != "none" else 0
        infos, sent_reqs = [], 0
        for i in range(n_msgs):
            s = senders[i % len(senders)]
            infos.append(s.c.publish(topic("inbox", "r0", s.client_id.split("@")[0]),
                                     harness.envelope("m%d" % i, id="d%06d" % i), qos=1))
            if every and i % every == 0 and sent_reqs < n_reqs:
                a = attackers[sent_reqs % len(attackers)]
                user = a.client_id.split("@")[0]
                req = {"id": "q%d" % sent_reqs, "op": kind}
                if kind == "passwd":
                    req.update(old="guess-%d" % sent_reqs, new="new-password-1")
                else:
                    req.update(limit=500)
                a.c.publish(topic("rpc_req", user), json.dumps(req), qos=0)
                sent_reqs += 1
            if len(infos) >= 1000:
                for info in infos:
                    info.wait_for_publish(timeout=60)
                infos = []
        for info in infos:
            info.wait_for_publish(timeout=60)
        for a in attackers:
            # every request of a is at the broker (a round trip behind
            # them), then its answers topic again (the barrier leaves it)
            a.barrier()
            assert a.subscribe(topic("rpc_resp", a.client_id.split("@")[0])) in (0, 1)
        want = SEEDED + n_msgs
        t0 = time.monotonic()
        arch.start(wait=False)
        pid = arch.proc.proc.pid
        cpu0 = proc_cpu_s(pid)
        harness.wait_for(lambda: count(datadir) >= want, 600, interval=0.05, what="the drain")
        t_stored = time.monotonic() - t0
        cpu_stored = proc_cpu_s(pid) - cpu0

        def answered():
            return sum(c.messages.qsize() for c in attackers) >= sent_reqs
        harness.wait_for(answered, 600, interval=0.05, what="every answer")
        t_answered = time.monotonic() - t0
        out = {"flood": kind, "messages": n_msgs, "requests": sent_reqs,
               "stored_s": round(t_stored, 3), "stored_per_s": round(n_msgs / t_stored),
               "archiver_cpu_s_to_store": round(cpu_stored, 2),
               "all_answered_s": round(t_answered, 3)}
        dropped = "Outgoing messages are being dropped" in broker.output()
        if dropped:
            out["broker_dropped"] = True
        print(json.dumps(out), flush=True)
    finally:
        for c in clients:
            c.close()
        if arch:
            arch.stop()
        if broker:
            broker.stop()
        shutil.rmtree(datadir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--floods", default="none,passwd,sync")
    args = ap.parse_args()
    for kind in args.floods.split(","):
        run(kind, args.messages, args.requests)


if __name__ == "__main__":
    main()
