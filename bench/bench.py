#!/usr/bin/python3
"""bench.py - what `make bench` runs: the same loads against five broker
setups that differ only in authentication and access control, then one
table in bench/results/latest.md and latest.json.

  (a) mosquitto, allow_anonymous true, no ACL: the ceiling
  (b) mosquitto, password_file + acl_file with %u patterns
  (c) mosquitto, dynamic-security plugin, equivalent per-user roles
  (d) mosquitto + the mqchat plugin (build/mqchat_auth.so)
  (e) (d) + the archiver (build/mqchat-archiver run)

Every broker runs on a free 127.0.0.1 port in a temp folder and is stopped
by its PID. Setups whose parts are not built (or do not work) are reported
as "not available" with the reason; the others still run. The loads
themselves are build/mqchat-bench (bench/*.c); this driver starts the
brokers, runs the loads in interleaved rounds, takes medians and per-round
ratios to (a), and checks the targets. bench/README.md says what each
figure means.

Environment: BUILD (default build), QUICK=1 for the short run (< 2 min),
SETUPS (e.g. "a d", default all), OUT (default bench/results), ONLY=rpc for
the RPC phase alone (rpc.md and rpc.json in OUT), ONLY=spool for the
archiver with the spool against without (spool_bench.py: spool.md and
spool.json), ONLY=cluster for three nodes with the bus (cluster_bench.py:
cluster.md and cluster.json).

    bench/bench.py              (or scripts/bench.sh, or make bench)

The parts: settings.py (what is measured), setups.py (the brokers'
users and configuration), procs.py (processes and /proc), runs.py (the
phases), report.py (targets and the Markdown table).
"""
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from procs import log
from report import build_targets, markdown, markdown_rpc, rpc_targets
from runs import (finish_setup, run_drain, run_ingest, run_key, run_loads, run_resume, run_rpc,
                  run_rss, start_setup)
from settings import (BENCH, BUILD, MOSQUITTO, ONLY, OUT, QUICK, ROOT, ROUNDS, SECONDS, SETUPS,
                      TITLES)


def prepare():
    """Work from the repository's root with descriptors enough for every
    client, and build build/mqchat-bench if it is missing. Returns make's
    exit status (0 when nothing had to be built)."""
    os.chdir(ROOT)
    os.environ["BUILD"] = BUILD
    # libmosquitto takes 3 descriptors per client: 100 pairs need ~600.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for soft in (hard, 4096):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            break
        except (ValueError, OSError):
            pass
    if os.access(BENCH, os.X_OK):
        return 0
    return subprocess.run(["make", os.path.join(BUILD, "mqchat-bench")]).returncode


def write_results(doc, md, base="latest"):
    """<base>.json and <base>.md in OUT, each replaced atomically."""
    os.makedirs(OUT, exist_ok=True)
    for name, text in ((base + ".json", json.dumps(doc, indent=1) + "\n"), (base + ".md", md)):
        tmpf = os.path.join(OUT, name + ".tmp")
        with open(tmpf, "w") as f:
            f.write(text)
        os.replace(tmpf, os.path.join(OUT, name))


def main_rpc(doc, t0):
    """ONLY=rpc: the RPC phase alone, into rpc.json and rpc.md (latest.*
    stay the whole run's)."""
    tmp = tempfile.mkdtemp(prefix="mqchat-bench-")
    try:
        log("rpc")
        doc["rpc"] = run_rpc(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc["targets"] = rpc_targets(doc["rpc"])
    doc["total_s"] = round(time.monotonic() - t0, 1)
    md = markdown_rpc(doc) + "Total run time: %.0f s.\n" % doc["total_s"]
    write_results(doc, md, "rpc")
    print(md)
    return 0


def run_doc(command):
    """What every results file starts with: the command, when, on what."""
    mv = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout
    m = re.search(r"mosquitto version (\S+)", mv)
    return {"command": command + (" QUICK=1" if QUICK else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": QUICK, "cores": os.cpu_count(), "mosquitto": m.group(1) if m else "?"}


def main():
    rc = prepare()
    if rc:
        return rc
    t0 = time.monotonic()
    doc = run_doc("make bench")
    doc.update({"seconds_per_load": SECONDS, "rounds": ROUNDS, "setups": {}})
    if ONLY == "rpc":
        doc["command"] = "ONLY=rpc " + doc["command"]
        return main_rpc(doc, t0)
    if ONLY == "spool":
        # The archiver with the spool against without (bench/spool_bench.py).
        return subprocess.run([sys.executable, os.path.join(ROOT, "bench", "spool_bench.py")]).returncode
    if ONLY == "cluster":
        # Three nodes with the bus (bench/cluster_bench.py).
        return subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cluster_bench.py")]).returncode
    tmp = tempfile.mkdtemp(prefix="mqchat-bench-")
    brokers = {}
    try:
        for key in SETUPS:
            log("setup (%s) %s" % (key, TITLES[key]))
            doc["setups"][key], b = start_setup(key, tmp)
            if b:
                brokers[key] = b
        if brokers:
            run_loads(doc["setups"], brokers)
            doc["key"] = run_key(brokers)
        if "e" in brokers:
            run_ingest(doc["setups"]["e"], brokers["e"])
            run_drain(doc["setups"]["e"], brokers["e"])
        for key in list(brokers):
            finish_setup(key, doc["setups"][key], brokers.pop(key), tmp)
        log("rpc")
        doc["rpc"] = run_rpc(tmp) if "e" in SETUPS else {"available": False, "reason": "not run"}
        log("start-up and memory")
        doc["rss"] = run_rss(tmp)
        doc["resume"] = run_resume(tmp) if "d" in SETUPS else {}
    finally:
        for b in brokers.values():
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    doc["targets"] = build_targets(doc["setups"], doc["rpc"], doc["rss"], doc.get("key"),
                                   doc.get("resume"))
    doc["total_s"] = round(time.monotonic() - t0, 1)
    md = markdown(doc) + "Total run time: %.0f s.\n" % doc["total_s"]
    write_results(doc, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
