#!/usr/bin/python3
"""cluster_bench.py - the cluster phase of make bench (docs/SCALING.md, "Bench").

    ONLY=cluster make bench      (or BUILD=build bench/cluster_bench.py)

Three nodes from tests/cluster/cluster_util.py with the bus (each a broker
with the plugin, its spool and inbox on, an archiver reading the spool and
`mqchat-archiver bus`; one nats-server), all on this machine's loopback,
every process stopped by its PID. The plugin's per-account send rate is
lifted (plugin_opt_send_rate 1000000) and the spool made 64 MiB, so neither
limit is what is measured. The loads are build/mqchat-bench `pairs`
(s<i> sends to r<i>, QoS 1, 200-byte envelopes); every process's CPU is
taken by mqchat-bench itself at the start and end of the measured phase
(`--cpu-pids`: schedstat, else /proc/PID/stat utime+stime, with children).

1. Cross-node against same-node, ROUNDS rounds, the order swapped every
   round: 10 pairs paced at PACE deliveries/s, senders on node 1 and
   recipients on node 2 (cross), then both on node 2 (same), straight to
   the nodes' own addresses. Per message delivered: the brokers' CPU (both
   nodes': sender's plus recipient's), the buses', nats-server's and the
   archivers' apart; latency p50/p99 (publish to delivery). Ratios
   cross/same are taken round by round and their median kept.
2. Messages per second with 1, 2 and 3 nodes: SPEED_PAIRS pairs at full
   speed (window 4), through HAProxy (config/haproxy.cfg with the nodes
   1..k, its per-address limits lifted: every client comes from 127.0.0.1),
   which places each client by the ring, so pairs are spread as real ones
   are. The three fronts run side by side and each round goes round them,
   the order rotated; the rate with k nodes is divided by the rate with
   one node in the same round. The CPU of each process kind per message.

On 2 shared cores the curve cannot rise: the table says so with the CPU
each kind took. Writes bench/results/cluster.json and cluster.md (OUT for
another folder)."""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from procs import log  # noqa: E402
from settings import BENCH, ONLY, OUT, QUICK, ROOT  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import cluster_util  # noqa: E402
from cluster_util import PASSWORD, Cluster, Front  # noqa: E402

ROUNDS = 2 if QUICK else 5
PAIRS = 10
PACE = 2000                # deliveries/s of the cross/same loads
PACED_SECONDS = 1.0 if QUICK else 3.0
SPEED_PAIRS = 20
SPEED_SECONDS = 1.0 if QUICK else 3.0
WARMUP_MS = 500
# A SUBACK comes before the recipient's bus has subscribed on NATS (and no
# replay yet, docs/SCALING.md build plan 9): the first messages of a
# cross-node pair would be lost, each stalling its sender's window.
SETTLE_MS = 500
PLUGIN_OPTS = {"send_rate": 1000000, "send_burst": 1000000, "spool_mb": 64}
FRONT_ENV = {"MQCHAT_CONN_RATE": "1000000", "MQCHAT_CONN_OPEN": "1000000"}
KINDS = ("broker", "archiver", "bus", "nats-server", "haproxy", "generator")


def missing():
    """Why the phase cannot run here, or None."""
    for path, what in ((BENCH, "build/mqchat-bench"), (cluster_util.NATS_SERVER, "nats-server"),
                       (cluster_util.HAPROXY, "haproxy"),
                       (cluster_util.harness.ARCHIVER, "the archiver")):
        if not os.access(path, os.X_OK):
            return "%s not found (%s)" % (what, os.path.relpath(path, ROOT)
                                          if path.startswith(ROOT) else path)
    return None


def pids(cluster, nodes, fronts=()):
    """{pid: kind} of the nodes' processes, NATS and the fronts."""
    out = {}
    for n in nodes:
        out[n.proc.pid] = "broker"
        out[cluster.archivers[n.name].proc.proc.pid] = "archiver"
        out[cluster.buses[n.name].proc.proc.pid] = "bus"
    out[cluster.nats.proc.proc.pid] = "nats-server"
    for f in fronts:
        out[f.proc.proc.pid] = "haproxy"
    return out


def run_pairs(host, port, who, pairs, extra):
    """build/mqchat-bench pairs against host:port with the CPU of every
    process in who ({pid: kind}); its JSON with "cpu" ({kind: seconds})
    added, or {"error": ...}."""
    cmd = [BENCH, "pairs", "--host", host, "--port", port, "--password", PASSWORD,
           "--qos", 1, "--pairs", pairs, "--settle-ms", SETTLE_MS, "--warmup-ms", WARMUP_MS,
           "--count", 10000000,
           "--cpu-pids", ",".join(str(p) for p in who)] + list(extra)
    try:
        r = subprocess.run([str(a) for a in cmd], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 120 s"}
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (r.stderr.strip() or "no output, exit %d" % r.returncode)[-300:]}
    if r.returncode != 0 or "error" in res:
        return {"error": res.get("error") or r.stderr.strip()[-300:]}
    cpu = {k: 0.0 for k in KINDS if k != "generator"}
    for pid, s in res.pop("cpu_pids").items():
        if s < 0:
            return {"error": "no CPU reading of PID %s (%s)" % (pid, who[int(pid)])}
        cpu[who[int(pid)]] += s
    cpu["generator"] = res.pop("generator_cpu_s")
    res["cpu"] = cpu
    n = res["measured"] or 1
    res["cpu_us_per_msg"] = {k: v * 1e6 / n for k, v in cpu.items()}
    return res


def paced(cluster, cross):
    """10 pairs at PACE/s: senders on node 1 (cross) or node 2 (same),
    recipients on node 2."""
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    src = n1 if cross else n2
    return run_pairs(src.host, src.port, pids(cluster, (n1, n2)), PAIRS,
                     ["--sub-host", n2.host, "--sub-port", n2.port, "--window", 8,
                      "--rate", PACE, "--seconds", PACED_SECONDS])


def full_speed(cluster, front, k):
    return run_pairs("127.0.0.1", front.port, pids(cluster, cluster.nodes[:k], (front,)),
                     SPEED_PAIRS, ["--window", 4, "--seconds", SPEED_SECONDS])


def placement(cluster, before):
    """{client id: node} of the clients whose accept count grew since before
    (a {(node, client id): count}, from placement_counts)."""
    now = placement_counts(cluster)
    return {cid: node for (node, cid), c in now.items() if c > before.get((node, cid), 0)}


def placement_counts(cluster):
    ids = ["s%d" % i for i in range(SPEED_PAIRS)] + ["r%d" % i for i in range(SPEED_PAIRS)]
    return {(n.name, cid): n.accepted(cid) for n in cluster.nodes for cid in ids}


def med(vals):
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cell(v, fmt):
    return fmt % v if isinstance(v, (int, float)) else "-"


def service_cpu(res):
    """CPU per message of the service's processes (not the generator)."""
    return sum(v for k, v in res["cpu_us_per_msg"].items() if k != "generator")


def summarize(doc):
    """Medians and paired ratios into doc["cross_same"] and doc["nodes"]."""
    rounds = doc["rounds"]
    cs = {}
    for key in ("cross", "same"):
        ok = [r[key] for r in rounds if "error" not in r[key]]
        cs[key] = {"p50_us": med([x["p50_us"] for x in ok]),
                   "p99_us": med([x["p99_us"] for x in ok]),
                   "lost": sum(x["lost"] for x in ok),
                   "cpu_us_per_msg": {k: med([x["cpu_us_per_msg"][k] for x in ok]) for k in KINDS}}
    ok = [r for r in rounds if "error" not in r["cross"] and "error" not in r["same"]]
    cs["paired"] = {
        "broker_cpu": med([ratio(r["cross"]["cpu_us_per_msg"]["broker"],
                                 r["same"]["cpu_us_per_msg"]["broker"]) for r in ok]),
        "p50": med([ratio(r["cross"]["p50_us"], r["same"]["p50_us"]) for r in ok]),
        "p99": med([ratio(r["cross"]["p99_us"], r["same"]["p99_us"]) for r in ok]),
        "all_cpu": med([ratio(service_cpu(r["cross"]), service_cpu(r["same"])) for r in ok])}
    doc["cross_same"] = cs
    nodes = {}
    for k in (1, 2, 3):
        ok = [r["k%d" % k] for r in rounds if "error" not in r["k%d" % k]]
        nodes[k] = {
            "msgs_per_s": med([x["msgs_per_s"] for x in ok]),
            "lost": sum(x["lost"] for x in ok),
            "cpu_us_per_msg": {kd: med([x["cpu_us_per_msg"][kd] for x in ok]) for kd in KINDS},
            # Cores busy: each kind's CPU over the measured phase's length.
            "cores": {kd: med([x["cpu"][kd] / x["seconds"] for x in ok]) for kd in KINDS},
            "paired": med([ratio(r["k%d" % k].get("msgs_per_s"), r["k1"].get("msgs_per_s"))
                           for r in rounds if "error" not in r["k%d" % k] and "error" not in r["k1"]]),
        }
    doc["nodes"] = nodes


def markdown(doc):
    cs, nodes = doc["cross_same"], doc["nodes"]
    lines = ["# The cluster: a message across nodes, and 1, 2, 3 nodes", "",
             "`%s` (%s, %d cores, load average %s at the start, %s at the end): medians of %d"
             " rounds; nodes on 127.0.0.2-4, each mosquitto + plugin (spool, inbox),"
             " `mqchat-archiver run --spool` and `mqchat-archiver bus`; one nats-server."
             " Total %.0f s." % (doc["command"], doc["date"], doc["cores"], doc["load_start"],
                                 doc["load_end"], doc["rounds_n"], doc["total_s"]), "",
             "## A direct message across nodes against one on the same node", "",
             "%d pairs, QoS 1, paced at %d deliveries/s for %.0f s, straight to the nodes;"
             " cross: senders on node 1, recipients on node 2; same: all on node 2. CPU in"
             " microseconds per delivered message; broker = both nodes' brokers." % (
                 PAIRS, PACE, PACED_SECONDS), "",
             "| | p50 us | p99 us | broker | bus | nats-server | archiver | these four | lost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in ("cross", "same"):
        f = cs[key]
        c = f["cpu_us_per_msg"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
            key, cell(f["p50_us"], "%.0f"), cell(f["p99_us"], "%.0f"), cell(c["broker"], "%.1f"),
            cell(c["bus"], "%.1f"), cell(c["nats-server"], "%.1f"), cell(c["archiver"], "%.1f"),
            cell(sum(v for kd, v in c.items() if v is not None and kd != "generator"), "%.1f"),
            f["lost"]))
    p = cs["paired"]
    lines += ["", "Cross / same, the median of the per-round ratios: broker CPU %s, the"
              " four kinds' CPU %s, p50 %s, p99 %s." % (
                  cell(p["broker_cpu"], "%.2fx"), cell(p["all_cpu"], "%.2fx"),
                  cell(p["p50"], "%.2fx"), cell(p["p99"], "%.2fx")), "",
              "## Messages per second with 1, 2 and 3 nodes", "",
              "%d pairs, QoS 1, full speed (4 in flight per sender) for %.0f s, through HAProxy"
              " (`config/haproxy.cfg` with nodes 1..k): the ring places each client. CPU in"
              " microseconds per delivered message, and in cores busy (CPU seconds per"
              " second)." % (SPEED_PAIRS, SPEED_SECONDS), "",
              "| nodes | msgs/s | x 1 node (paired) | cross-node pairs | broker | archiver | bus |"
              " nats-server | haproxy | load generator | cores busy (all these) | lost |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in (1, 2, 3):
        f = nodes[k]
        c, cores = f["cpu_us_per_msg"], f["cores"]
        busy = sum(v for v in cores.values() if v is not None)
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %d |" % (
            k, cell(f["msgs_per_s"], "%.0f"), cell(f["paired"], "%.2f"),
            doc["cross_pairs"].get(str(k), "-"),
            cell(c["broker"], "%.1f"), cell(c["archiver"], "%.1f"), cell(c["bus"], "%.1f"),
            cell(c["nats-server"], "%.1f"), cell(c["haproxy"], "%.1f"),
            cell(c["generator"], "%.1f"), busy, f["lost"]))
    lines += ["", "What limits the curve here: every node's broker, archiver and bus,"
              " nats-server, HAProxy and the load generator (one process, one thread) share"
              " this machine's %d cores with whatever else runs on it (the load average above)."
              " More nodes bring no more cores, only more work: the bus's for each pair whose"
              " ends the ring put on different nodes, and a second broker handling each such"
              " message. So messages per second cannot rise with nodes here, and they move by"
              " 1.5x and more between rounds with the machine's other load; the cost per"
              " message of each process kind is the figure that carries over to real"
              " machines." % doc["cores"], "",
              "Every round (msgs/s; cross and same broker CPU us/msg):", "",
              "| round | cross broker | same broker | cross p50 | same p50 | 1 node | 2 nodes |"
              " 3 nodes |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["rounds"]:
        def g(key, field, fmt):
            x = r[key]
            if "error" in x:
                return x["error"][:60]
            v = x[field]["broker"] if field == "cpu_us_per_msg" else x[field]
            return cell(v, fmt)
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            r["round"], g("cross", "cpu_us_per_msg", "%.1f"), g("same", "cpu_us_per_msg", "%.1f"),
            g("cross", "p50_us", "%.0f"), g("same", "p50_us", "%.0f"),
            g("k1", "msgs_per_s", "%.0f"), g("k2", "msgs_per_s", "%.0f"),
            g("k3", "msgs_per_s", "%.0f")))
    return "\n".join(lines) + "\n"


def main():
    os.chdir(ROOT)
    t0 = time.monotonic()
    doc = {"command": ("ONLY=cluster " if ONLY == "cluster" else "") + "make bench"
           + (" QUICK=1" if QUICK else ""),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
           "rounds_n": ROUNDS, "pace": PACE, "pairs": PAIRS, "speed_pairs": SPEED_PAIRS,
           "load_start": loadavg(), "rounds": [], "cross_pairs": {}}
    why = missing()
    if why:
        log("cluster: not available: %s" % why)
        doc["available"] = False
        doc["reason"] = why
        md = "# The cluster\n\nNot run: %s.\n" % why
        write(doc, md)
        return 0
    cluster = Cluster(k=3, bus=True, front=False, plugin_opts=PLUGIN_OPTS)
    fronts = {}
    try:
        for i in range(max(PAIRS, SPEED_PAIRS)):
            cluster.store.add_user("s%d" % i, password=PASSWORD)
            cluster.store.add_user("r%d" % i, password=PASSWORD)
        log("cluster: starting 3 nodes and nats-server")
        cluster.start()
        for k in (1, 2, 3):
            fronts[k] = Front(cluster.root, cluster.nodes[:k], env=FRONT_ENV, name="haproxy%d" % k)
            fronts[k].start()
        for r in range(ROUNDS):
            row = {"round": r}
            for key in (("cross", "same") if r % 2 == 0 else ("same", "cross")):
                log("cluster: round %d/%d: %s-node, paced" % (r + 1, ROUNDS, key))
                row[key] = paced(cluster, key == "cross")
            for k in [1 + (r + j) % 3 for j in range(3)]:
                log("cluster: round %d/%d: %d node(s), full speed" % (r + 1, ROUNDS, k))
                before = placement_counts(cluster) if r == 0 else None
                row["k%d" % k] = full_speed(cluster, fronts[k], k)
                if before is not None:
                    where = placement(cluster, before)
                    cross = sum(1 for i in range(SPEED_PAIRS)
                                if where.get("s%d" % i) != where.get("r%d" % i))
                    doc["cross_pairs"][str(k)] = "%d of %d" % (cross, SPEED_PAIRS)
            print(json.dumps(row), flush=True)
            doc["rounds"].append(row)
    finally:
        for f in fronts.values():
            f.stop()
        cluster.stop()
    doc["load_end"] = loadavg()
    doc["total_s"] = round(time.monotonic() - t0, 1)
    summarize(doc)
    md = markdown(doc)
    write(doc, md)
    print(md)
    return 0


def write(doc, md):
    os.makedirs(OUT, exist_ok=True)
    for name, text in (("cluster.json", json.dumps(doc, indent=1) + "\n"), ("cluster.md", md)):
        tmpf = os.path.join(OUT, name + ".tmp")
        with open(tmpf, "w") as f:
            f.write(text)
        os.replace(tmpf, os.path.join(OUT, name))


if __name__ == "__main__":
    sys.exit(main())
