#!/usr/bin/python3
"""metrics_cost.py - the archiver's CPU per stored message with /metrics on
(scraped every second) and off, over the same bounded load.

    BUILD=build bench/metrics_cost.py [--messages N] [--rounds R]

Each round, on a fresh broker (plugin, no send limit, $SYS and the
plugin's figures every second) and data folder: the archiver is stopped;
4 senders queue N small messages for it (QoS 1); then it starts, with
--metrics-port and a scraper reading /metrics every second, or without
either, and its CPU time (from /proc) until archive.db holds every message
gives the CPU per stored message. Rounds alternate off/on (R of each), so
a slow moment of the machine falls on both; the medians are printed as a
JSON line. Then, on an idle archiver, what one scrape of /metrics and one
/health cost it (CPU over 500 and 100 back-to-back requests, less its idle
CPU for as long). Needs no root; everything is on loopback."""
import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness  # noqa: E402
from archiver_util import Archiver, count  # noqa: E402
from procs import proc_cpu_s, publish_all  # noqa: E402
from topics import topic  # noqa: E402

SENDERS = ["s%d" % i for i in range(4)]


def run(n_msgs, metrics):
    datadir = harness.make_datadir()
    store = harness.Store(os.path.join(datadir, "auth.db"))
    clients, broker, arch, scrapes = [], None, None, [0]
    stop = threading.Event()
    try:
        for u in SENDERS + ["r0"]:
            store.add_user(u)
        pw = "svc-" + os.urandom(16).hex()
        store.add_user("archiver", password=pw, kind="service")
        with open(os.path.join(datadir, "archiver.pw"), "w") as f:
            f.write(pw + "\n")
        os.chmod(os.path.join(datadir, "archiver.pw"), 0o600)
        broker = harness.Broker(datadir, plugin_opts={"send_rate": 0, "stats_interval": 1},
                                extra_conf="sys_interval 1\nmax_queued_bytes 67108864\n")
        broker.start()
        port = harness.free_port()
        args = ["--metrics-port", str(port)] if metrics else []
        arch = Archiver(datadir, broker.port, args)
        arch.start()                       # makes archive.db and the session
        assert arch.stop() == 0
        senders = []
        for u in SENDERS:
            c = harness.Client(broker.port, u, "password-xxxx", client_id=u + "@b")
            clients.append(c)
            assert c.connect() == 0
            senders.append(c)
        publish_all((senders[i % len(senders)],
                     topic("inbox", "r0", senders[i % len(senders)].client_id.split("@")[0]),
                     harness.envelope("m%d" % i, id="d%06d" % i)) for i in range(n_msgs))

        def scraper():
            url = "http://127.0.0.1:%d/metrics" % port
            while not stop.wait(1.0):
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        r.read()
                    scrapes[0] += 1
                except OSError:
                    pass
        t0 = time.monotonic()
        arch.start(wait=False)
        pid = arch.proc.proc.pid
        cpu0 = proc_cpu_s(pid)
        th = None
        if metrics:
            th = threading.Thread(target=scraper)
            th.start()
        harness.wait_for(lambda: count(datadir) >= n_msgs, 600, interval=0.05, what="the drain")
        elapsed = time.monotonic() - t0
        cpu = proc_cpu_s(pid) - cpu0
        stop.set()
        if th:
            th.join()
        out = {"metrics": metrics, "messages": n_msgs, "drain_s": round(elapsed, 3),
               "cpu_s": round(cpu, 3), "cpu_us_per_msg": round(cpu / n_msgs * 1e6, 2),
               "scrapes": scrapes[0]}
        print(json.dumps(out), flush=True)
        return out
    finally:
        stop.set()
        for c in clients:
            c.close()
        if arch:
            arch.stop()
        if broker:
            broker.stop()
        shutil.rmtree(datadir, ignore_errors=True)


def scrape_cost():
    """Archiver CPU per /metrics scrape and per /health, idle archiver."""
    datadir = harness.make_datadir()
    store = harness.Store(os.path.join(datadir, "auth.db"))
    broker = arch = None
    try:
        pw = "svc-" + os.urandom(16).hex()
        store.add_user("archiver", password=pw, kind="service")
        with open(os.path.join(datadir, "archiver.pw"), "w") as f:
            f.write(pw + "\n")
        os.chmod(os.path.join(datadir, "archiver.pw"), 0o600)
        broker = harness.Broker(datadir, plugin_opts={"stats_interval": 1}, extra_conf="sys_interval 1")
        broker.start()
        port = harness.free_port()
        arch = Archiver(datadir, broker.port, ["--metrics-port", str(port)])
        arch.start()
        base = "http://127.0.0.1:%d" % port
        harness.wait_for(lambda: b"mosquitto_uptime_seconds" in urllib.request.urlopen(base + "/metrics").read(),
                         30, what="the broker's figures")
        pid = arch.proc.proc.pid
        c0, t0 = proc_cpu_s(pid), time.monotonic()
        time.sleep(5)
        idle = (proc_cpu_s(pid) - c0) / (time.monotonic() - t0)
        out = {"idle_cpu_s_per_s": round(idle, 4)}
        for path, n in (("/metrics", 500), ("/health", 100)):
            c0, t0 = proc_cpu_s(pid), time.monotonic()
            for _ in range(n):
                with urllib.request.urlopen(base + path, timeout=10) as r:
                    size = len(r.read())
            cpu = proc_cpu_s(pid) - c0 - idle * (time.monotonic() - t0)
            out[path + "_us"] = round(cpu / n * 1e6)
            out[path + "_bytes"] = size
        print(json.dumps(out), flush=True)
    finally:
        if arch:
            arch.stop()
        if broker:
            broker.stop()
        shutil.rmtree(datadir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=40000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    res = {False: [], True: []}
    for _ in range(args.rounds):
        for metrics in (False, True):
            res[metrics].append(run(args.messages, metrics)["cpu_us_per_msg"])
    off, on = statistics.median(res[False]), statistics.median(res[True])
    print(json.dumps({"summary": "cpu_us_per_msg", "messages": args.messages, "rounds": args.rounds,
                      "off": res[False], "on": res[True], "median_off": off, "median_on": on,
                      "on_vs_off_pct": round((on - off) / off * 100, 1)}), flush=True)
    scrape_cost()


if __name__ == "__main__":
    main()
