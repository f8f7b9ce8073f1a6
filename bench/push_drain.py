#!/usr/bin/python3
"""push_drain.py - what push notifications cost the archiver's storing.

    BUILD=build bench/push_drain.py [--messages N] [--rounds R] [--out DIR]

`make bench` runs it last (ONLY=push: alone); QUICK=1 makes it 5,000
messages and 2 rounds instead of 20,000 and 3; OUT is the results folder.

One broker (plugin, no send limit) and data folder. 60 people have a
webhook target each (a receiver in this process that answers 200 at once)
and stay offline, so every text is work for the push thread: half the
messages are DMs to r0..r9, half go to the room `big` whose 50 members
(m0..m49) all have targets (each room text: 49 enqueues, collapsed by
conversation). For each round, with the push thread on and then off (the
order swapped every round, so the machine's other load hits both alike):
the archiver is stopped while 5 senders queue N messages for it (QoS 1),
then it starts with `--push on` or `--push off`, and the time until
archive.db holds every message gives the storing rate. With push on, also
when the push thread had read them all (push.db's cursor) and its queue was
empty again (every notification sent). Writes bench/results/push.json and
push.md: each round, the medians, and the on/off ratio of each round (both
ran within a few seconds of each other) and their median."""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from archiver_util import Archiver, Rpc, count, read_db, rpc_ok  # noqa: E402
from procs import proc_cpu_s, publish_all  # noqa: E402
from test_push_smoke import Receiver  # noqa: E402
from topics import topic  # noqa: E402

PASSWORD = "password-xxxx"
SENDERS = ["m%d" % i for i in range(5)]      # members of big, who also write DMs
DM_TO = ["r%d" % i for i in range(10)]
MEMBERS = ["m%d" % i for i in range(50)]
ARGS = ["--push-webhook", "on", "--push-allow-http", "1"]


def push_db(datadir, sql):
    rows = read_db(os.path.join(datadir, "push.db"), sql)
    return rows[0][0] if rows else 0


def max_seq(datadir):
    return read_db(os.path.join(datadir, "archive.db"),
                   "SELECT COALESCE(MAX(seq), 0) FROM messages")[0][0]


def queue_messages(senders, n, tag):
    def messages():
        for i in range(n):
            s = senders[i % len(senders)]
            me = s.client_id.split("@")[0]
            if i % 2:
                t = topic("room", "big", me)
            else:
                t = topic("inbox", DM_TO[(i // 2) % len(DM_TO)], me)
            yield s, t, harness.envelope("m%d" % i, id="%s-%06d" % (tag, i))
    publish_all(messages())


def drain(datadir, arch, push, want):
    t0 = time.monotonic()
    arch.start(wait=False, args=["--push", "on" if push else "off"])
    pid = arch.proc.proc.pid
    cpu0 = proc_cpu_s(pid)
    harness.wait_for(lambda: count(datadir) >= want, 600, interval=0.02, what="the drain")
    out = {"push": push, "stored_s": round(time.monotonic() - t0, 3), "cpu_s": round(proc_cpu_s(pid) - cpu0, 2)}
    if push:
        last = max_seq(datadir)
        harness.wait_for(lambda: push_db(datadir, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='cursor'")
                         >= last, 600, interval=0.02, what="the push thread's cursor")
        out["push_read_s"] = round(time.monotonic() - t0, 3)
        harness.wait_for(lambda: push_db(datadir, "SELECT count(*) FROM queue") == 0, 600, interval=0.05,
                         what="the push queue empty")
        out["push_sent_s"] = round(time.monotonic() - t0, 3)
    assert arch.stop() == 0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("QUICK", "") not in ("", "0")
    ap.add_argument("--messages", type=int, default=5000 if quick else 20000)
    ap.add_argument("--rounds", type=int, default=2 if quick else 3)
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"))
    args = ap.parse_args()
    datadir = harness.make_datadir()
    store = harness.Store(os.path.join(datadir, "auth.db"))
    hooks = Receiver()
    clients, broker, arch = [], None, None
    runs = []
    try:
        for u in set(SENDERS + DM_TO + MEMBERS):
            store.add_user(u)
        store.add_room("big", members=MEMBERS)
        pw = "svc-" + os.urandom(16).hex()
        store.add_user("archiver", password=pw, kind="service")
        with open(os.path.join(datadir, "archiver.pw"), "w") as f:
            f.write(pw + "\n")
        os.chmod(os.path.join(datadir, "archiver.pw"), 0o600)
        broker = harness.Broker(datadir, plugin_opts={"send_rate": 0},
                                extra_conf="max_queued_bytes 67108864\nmax_inflight_messages 100\n")
        broker.start()
        arch = Archiver(datadir, broker.port, ARGS)
        arch.start()
        for u in sorted(set(DM_TO + MEMBERS)):
            c = harness.Client(broker.port, u, PASSWORD, client_id=u + "@reg")
            assert c.connect() == 0
            rpc_ok(Rpc(c, u), "push_register", device="hook", provider="webhook", url=hooks.url + "/" + u)
            c.close()
        assert arch.stop() == 0
        senders = []
        for u in SENDERS:
            c = harness.Client(broker.port, u, PASSWORD, client_id=u + "@b")
            clients.append(c)
            assert c.connect() == 0
            senders.append(c)
        want = count(datadir)
        for r in range(args.rounds):
            for push in ((True, False) if r % 2 == 0 else (False, True)):
                queue_messages(senders, args.messages, "r%d%s" % (r, "on" if push else "off"))
                want += args.messages
                out = drain(datadir, arch, push, want)
                out.update(round=r, messages=args.messages,
                           stored_per_s=round(args.messages / out["stored_s"]))
                print(json.dumps(out), flush=True)
                runs.append(out)
    finally:
        for c in clients:
            c.close()
        if arch:
            arch.stop()
        if broker:
            broker.stop()
        hooks.stop()
        shutil.rmtree(datadir, ignore_errors=True)

    def med(push, key):
        return statistics.median(x[key] for x in runs if x["push"] == push)
    ratios = []
    for r in range(args.rounds):
        on = [x for x in runs if x["round"] == r and x["push"]][0]
        off = [x for x in runs if x["round"] == r and not x["push"]][0]
        ratios.append(on["stored_per_s"] / off["stored_per_s"])
    doc = {"command": "bench/push_drain.py --messages %d --rounds %d" % (args.messages, args.rounds),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs,
           "median_on_per_s": med(True, "stored_per_s"), "median_off_per_s": med(False, "stored_per_s"),
           "ratio_on_off_per_round": [round(x, 3) for x in ratios],
           "ratio_on_off_median": round(statistics.median(ratios), 3),
           "median_push_read_s": med(True, "push_read_s"), "median_push_sent_s": med(True, "push_sent_s")}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "push.json"), "w") as f:
        json.dump(doc, f, indent=1)
    lines = ["# Storing with push notifications on and off", "",
             "`%s` (%s): %d messages a run, half DMs to 10 people, half to a room of 50, all"
             " 60 offline with a webhook target each; the archiver drains them after a stop." % (
                 doc["command"], doc["when"], args.messages), "",
             "| round | push | stored/s | drain s | archiver CPU s | push read all s | push sent all s |",
             "|---|---|---|---|---|---|---|"]
    for x in runs:
        lines.append("| %d | %s | %d | %.2f | %.2f | %s | %s |" % (
            x["round"], "on" if x["push"] else "off", x["stored_per_s"], x["stored_s"], x["cpu_s"],
            x.get("push_read_s", "-"), x.get("push_sent_s", "-")))
    lines += ["", "Median stored/s: on %d, off %d; on/off per round %s, median %.3f." % (
        doc["median_on_per_s"], doc["median_off_per_s"], ", ".join("%.3f" % x for x in ratios),
        doc["ratio_on_off_median"]), ""]
    with open(os.path.join(args.out, "push.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
