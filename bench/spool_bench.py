#!/usr/bin/python3
"""spool_bench.py - the archiver with the node's spool against without it.

    ONLY=spool make bench        (or BUILD=build bench/spool_bench.py)

Two setups, both (e) of bench/README.md (broker, plugin, archiver): "sub",
the archiver subscribed as today, and "spool", the plugin writing DATA/spool
(plugin_opt_spool_mb 256) and the archiver reading it (--spool). ROUNDS
rounds (2 with QUICK=1), the two setups' order swapped every round, so the
machine's other load hits both alike. Each round, on each setup:

- paced: 10 pairs QoS 1 at 5,000 deliveries/s (build/mqchat-bench pairs
  --rate): broker CPU per delivered message (schedstat, as every load of
  make bench), the archiver's CPU per delivered message (/proc/PID/stat
  over the same run), and latency. Without the spool the broker also
  delivers each message to the archiver; with it, the plugin copies it
  into the spool instead.
- drain: with the archiver stopped, 10 publishers send DRAIN_MSGS QoS 1
  messages (queued for its session, or written to the spool); it is
  started and timed until all are in archive.db: stored/s, and the
  archiver's and the broker's CPU per message over the drain.

Writes bench/results/spool.json and spool.md (OUT for another folder)."""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from procs import Broker, Unavailable, free_port, log, proc_cpu_s  # noqa: E402
from runs import archive_count, bench  # noqa: E402
from settings import DRAIN_MSGS, OUT, PACE, QUICK, ROOT, SECONDS, WARMUP  # noqa: E402
from setups import setup_e  # noqa: E402

SPOOL_MB = 256
ROUNDS = 2 if QUICK else 5
PAIRS = 10
SETUPS = {
    "sub": ("archiver subscribed (no spool)", [], []),
    "spool": ("archiver reading the spool (plugin_opt_spool_mb %d, --spool)" % SPOOL_MB,
              ["plugin_opt_spool_mb %d" % SPOOL_MB], ["--spool"]),
}


def start(key, tmp):
    d = os.path.join(tmp, key)
    os.makedirs(d)
    port = free_port()
    _, conf, args = SETUPS[key]
    b = Broker(d, port, setup_e(d, port) + conf)
    b.archiver_args = args
    b.start()
    b.start_archiver()
    return b


def paced(b):
    a0 = proc_cpu_s(b.archiver.pid)
    res = bench("pairs", b, "--qos", 1, "--pairs", PAIRS, "--window", 8, "--rate", PACE["pairs"],
                "--seconds", max(SECONDS, 2), "--warmup-ms", WARMUP, "--count", 10000000)
    a1 = proc_cpu_s(b.archiver.pid)
    if "error" not in res and res.get("measured"):
        # The archiver's CPU over warm-up and measured phase, per message
        # sent in them (the broker's figure is over the measured phase).
        res["archiver_cpu_us_per_msg"] = (a1 - a0) * 1e6 / (res["sent"] or 1)
    return res


def drain(b):
    archive = os.path.join(b.d, "archive.db")
    b.stop_archiver()
    pub = bench("pairs", b, "--qos", 1, "--seconds", 60, "--warmup-ms", 0, "--count", DRAIN_MSGS,
                "--pairs", PAIRS, "--window", 8, timeout=180)
    if "error" in pub:
        return {"error": pub["error"]}
    target = archive_count(archive) + pub["sent"]
    b0 = proc_cpu_s(b.proc.pid)
    t0 = time.monotonic()
    b.spawn_archiver()
    n, el = 0, None
    while time.monotonic() - t0 < 120 and b.archiver.poll() is None:
        n = archive_count(archive)
        if n >= target:
            el = time.monotonic() - t0
            break
        time.sleep(0.005)
    if el is None:
        return {"error": "%d of %d stored after 120 s" % (n, target)}
    return {"messages": pub["sent"], "seconds": el, "stored_per_s": pub["sent"] / el,
            "archiver_cpu_us_per_msg": proc_cpu_s(b.archiver.pid) * 1e6 / pub["sent"],
            "broker_cpu_us_per_msg": (proc_cpu_s(b.proc.pid) - b0) * 1e6 / pub["sent"]}


def med(runs, key, field):
    vals = [r[key][field] for r in runs if "error" not in r[key] and field in r[key]]
    return statistics.median(vals) if vals else None


def main():
    os.chdir(ROOT)
    tmp = tempfile.mkdtemp(prefix="mqchat-bench-spool-")
    brokers, runs = {}, []
    try:
        for key in SETUPS:
            log("(%s) start" % key)
            brokers[key] = start(key, tmp)
        for r in range(ROUNDS):
            order = list(SETUPS) if r % 2 == 0 else list(SETUPS)[::-1]
            row = {"round": r}
            for key in order:
                log("(%s) round %d/%d: paced" % (key, r + 1, ROUNDS))
                row[key + "_paced"] = paced(brokers[key])
            for key in order:
                log("(%s) round %d/%d: drain" % (key, r + 1, ROUNDS))
                row[key + "_drain"] = drain(brokers[key])
            print(json.dumps(row), flush=True)
            runs.append(row)
    except Unavailable as e:
        log("not available: %s" % e)
        return 1
    finally:
        for b in brokers.values():
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    doc = {"command": "ONLY=spool make bench" + (" QUICK=1" if QUICK else ""),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rounds": runs,
           "drain_messages": DRAIN_MSGS, "pace": PACE["pairs"], "cores": os.cpu_count()}
    fig = {}
    for key in SETUPS:
        fig[key] = {
            "broker_cpu_us_per_msg": med(runs, key + "_paced", "cpu_us_per_msg"),
            "archiver_cpu_us_per_msg_paced": med(runs, key + "_paced", "archiver_cpu_us_per_msg"),
            "p50_us": med(runs, key + "_paced", "p50_us"),
            "p99_us": med(runs, key + "_paced", "p99_us"),
            "stored_per_s": med(runs, key + "_drain", "stored_per_s"),
            "archiver_cpu_us_per_msg_drain": med(runs, key + "_drain", "archiver_cpu_us_per_msg"),
            "broker_cpu_us_per_msg_drain": med(runs, key + "_drain", "broker_cpu_us_per_msg"),
        }
    doc["medians"] = fig
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "spool.json"), "w") as f:
        json.dump(doc, f, indent=1)

    def cell(v, fmt):
        return fmt % v if isinstance(v, (int, float)) else "-"
    lines = ["# The archiver with the spool and without", "",
             "`%s` (%s, %d cores): medians of %d rounds, the two setups' order swapped every"
             " round. Paced: %d pairs QoS 1 at %d deliveries/s. Drain: %d QoS 1 messages sent"
             " with the archiver stopped, then stored." % (
                 doc["command"], doc["when"], doc["cores"], ROUNDS, PAIRS, PACE["pairs"],
                 DRAIN_MSGS), "",
             "| setup | broker CPU us/msg (paced) | archiver CPU us/msg (paced) | p50 us | p99 us |"
             " drain stored/s | archiver CPU us/msg (drain) | broker CPU us/msg (drain) |",
             "|---|---|---|---|---|---|---|---|"]
    for key, (title, _, _) in SETUPS.items():
        f = fig[key]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            title, cell(f["broker_cpu_us_per_msg"], "%.2f"),
            cell(f["archiver_cpu_us_per_msg_paced"], "%.2f"), cell(f["p50_us"], "%.0f"),
            cell(f["p99_us"], "%.0f"), cell(f["stored_per_s"], "%.0f"),
            cell(f["archiver_cpu_us_per_msg_drain"], "%.2f"),
            cell(f["broker_cpu_us_per_msg_drain"], "%.2f")))
    lines += ["", "Every round:", "", "| round | setup | broker CPU us/msg | archiver CPU us/msg |"
              " drain stored/s |", "|---|---|---|---|---|"]
    for row in runs:
        for key in SETUPS:
            p, d = row[key + "_paced"], row[key + "_drain"]
            lines.append("| %d | %s | %s | %s | %s |" % (
                row["round"], key, cell(p.get("cpu_us_per_msg"), "%.2f"),
                cell(p.get("archiver_cpu_us_per_msg"), "%.2f"),
                cell(d.get("stored_per_s"), "%.0f") if "error" not in d else d["error"]))
    lines.append("")
    with open(os.path.join(OUT, "spool.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
