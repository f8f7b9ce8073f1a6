"""runs.py - the bench driver's measurements, one function per phase.

Every load runs build/mqchat-bench, which prints one JSON object; a run
that fails gives {"error": "..."} in its place. Medians and per-round
ratios to (a) are taken here; bench/README.md says why each phase is
measured as it is.
"""
import json
import os
import re
import sqlite3
import statistics
import subprocess
import time

from procs import (Broker, Unavailable, free_port, log, proc_cpu_s, proc_rss_kb,
                   proc_tree_pss_kb, require_built)
from settings import (ARCHIVE_ROWS, ASKER, ASKER_PEERS, BENCH, BIG_MEMBERS, BIG_ROOMS, BIG_USERS,
                      CATCHUP_LIMIT, CATCHUP_MSGS, CATCHUP_RUNS, CONV_DEEP_PAGE, CONV_LIMIT,
                      DRAIN_MSGS, DROP_LINE, FEATURE_COUNT, FLOOD_SECONDS, KEY_LOAD, KEY_ROUNDS,
                      LOADS, MEMBERS, NPAIRS_USERS, PACE, PASSWORD, PLUGIN, RESUME_CONCURRENCY,
                      RESUME_USERS, ROOM, ROOT, ROUNDS, RPC_COUNT, SEARCH_LIMIT, SEARCHES, SECONDS,
                      STORED_SQL, TITLES, TOKEN_SEED, WARM_COUNT, WARMUP, WINDOW, load_name)
from setups import (SETUP_FN, add_bench_devices, mqchat_conf, mqchat_hash, rpc_data, setup_a,
                    write_userdb)


def bench(mode, broker, *args, timeout=None):
    """build/mqchat-bench MODE against broker: its JSON result, or
    {"error": ...} when it fails, times out or prints nothing."""
    cmd = [BENCH, mode, "--port", str(broker.port), "--password", PASSWORD,
           "--broker-pid", str(broker.proc.pid)] + [str(a) for a in args]
    t = timeout or (SECONDS * 3 + 60)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=t)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %ds" % t}
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        res = {"error": (r.stderr.strip() or "no output, exit %d" % r.returncode)[-300:]}
    if r.returncode != 0 and "error" not in res:
        res["error"] = (r.stderr.strip() or "exit %d" % r.returncode)[-300:]
    return res


def scrub(text, tmp):
    """No machine paths in committed results."""
    return str(text).replace(tmp, "<tmp>").replace(ROOT + "/", "")


def new_dir(tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    return d


def loaded_lines(log_text):
    """The plugin's "mqchat: loaded ..." lines of a broker log."""
    return [line for line in log_text.splitlines() if "mqchat: loaded" in line]


def start_setup(key, tmp):
    """Prepare and start one setup; returns (result dict, Broker or None)."""
    d = new_dir(tmp, key)
    port = free_port()
    res = {"title": TITLES[key]}
    broker = None
    try:
        broker = Broker(d, port, SETUP_FN[key](d, port))
        broker.start()
        res["start_s"] = broker.start_s
        res["rss_kb_idle"] = proc_rss_kb(broker.proc.pid)
        if key == "e":
            broker.start_archiver()
        # First login of every user after the broker started, then again.
        log("(%s) logins" % key)
        res["connect"] = bench("connect", broker, "--users", 2 * NPAIRS_USERS,
                               "--count", WARM_COUNT, "--seconds", max(SECONDS * 4, 10))
        if "error" in res["connect"] and key in ("d", "e"):
            raise Unavailable("login refused: %s" % res["connect"]["error"])
        res["available"] = True
        return res, broker
    except (Unavailable, OSError, subprocess.SubprocessError) as e:
        if broker:
            broker.stop()
        log("(%s) not available: %s" % (key, e))
        return {"title": TITLES[key], "available": False, "reason": scrub(e, tmp)}, None


def load_args(kind, n, qos):
    args = ["--qos", qos, "--seconds", SECONDS, "--warmup-ms", WARMUP, "--count", 10000000]
    if kind == "pairs":
        return args + ["--pairs", n, "--window", WINDOW[n]]
    return args + ["--members", n, "--room", ROOM, "--window", 4]


def median_run(runs, field="cpu_us_per_msg"):
    """The run with the median value of field (errors last); None if none."""
    ok = [r for r in runs if "error" not in r and isinstance(r.get(field), (int, float))]
    if not ok:
        return runs[0] if runs else None
    ok.sort(key=lambda r: r[field])
    med = dict(ok[(len(ok) - 1) // 2])
    vals = [r[field] for r in ok]
    med["rounds"] = len(ok)
    med["min"], med["max"] = min(vals), max(vals)
    med["spread"] = max(vals) / min(vals) if min(vals) > 0 else None
    return med


def paired(runs, base, field):
    """Ratio to (a) round by round (in one round every setup runs the load
    once, within about half a minute): the median of those ratios and each
    of them. Less moved by the machine's drift than the ratio of the two
    medians, which may come from different rounds."""
    rs = []
    for r, b in zip(runs, base):
        v, w = r.get(field), b.get(field)
        if "error" in r or "error" in b or not isinstance(v, (int, float)) or not w:
            continue
        rs.append(v / w)
    if not rs:
        return None
    s = sorted(rs)
    return {"median": statistics.median(s), "q1": s[len(s) // 4], "q3": s[(3 * len(s)) // 4],
            "ratios": rs}


def interleave(brokers, keys, load, rounds):
    """load on the setups keys, rounds times, paced then full speed, the
    setup order rotated each round (so a change in the machine's background
    load hits every setup alike): ({key: paced runs}, {key: full runs})."""
    kind, n, qos = load
    name = load_name(kind, n, qos)
    paced, full = {k: [] for k in keys}, {k: [] for k in keys}
    for rnd in range(rounds):
        order = keys[rnd % len(keys):] + keys[:rnd % len(keys)]
        log("%s round %d/%d (%s)" % (name, rnd + 1, rounds, " ".join(keys)))
        for k in order:
            args = load_args(kind, n, qos)
            paced[k].append(bench(kind, brokers[k], *(args + ["--rate", PACE[kind]])))
            full[k].append(bench(kind, brokers[k], *args))
    return paced, full


def run_loads(results, brokers):
    """Every load on every running setup, interleaved, ROUNDS rounds.
    Medians are reported."""
    keys = list(brokers)
    for load in LOADS:
        name = load_name(*load)
        paced, full = interleave(brokers, keys, load, ROUNDS)
        for k in keys:
            results[k][name + "_paced"] = median_run(paced[k], "cpu_us_per_msg")
            results[k][name] = median_run(full[k], "msgs_per_s")
            if k != "a" and "a" in paced:
                results[k][name + "_paced"]["paired"] = paired(paced[k], paced["a"], "cpu_us_per_msg")
                results[k][name]["paired"] = paired(full[k], full["a"], "msgs_per_s")


def run_key(brokers):
    """KEY_LOAD on (a) and (d) only, KEY_ROUNDS rounds (the two swap places
    every round): the paired ratios of the targets' own figure from many
    rounds rather than ROUNDS."""
    if "a" not in brokers or "d" not in brokers:
        return None
    paced, full = interleave(brokers, ["a", "d"], KEY_LOAD, KEY_ROUNDS)
    key = {"load": load_name(*KEY_LOAD), "rounds": KEY_ROUNDS}
    for k in ("a", "d"):
        key[k + "_paced"] = median_run(paced[k], "cpu_us_per_msg")
        key[k + "_full"] = median_run(full[k], "msgs_per_s")
    key["cpu"] = paired(paced["d"], paced["a"], "cpu_us_per_msg")
    key["msgs"] = paired(full["d"], full["a"], "msgs_per_s")
    return key


def run_ingest(results, broker):
    """The archiver's ingest at the broker's full rate (setup e), with the
    archive watched: waits (up to 20 s) for what earlier loads left, then
    (up to 20 s) for the archiver to catch up after publishing stops."""
    archive = os.path.join(broker.d, "archive.db")
    for kind, n, qos in LOADS:
        if kind != "pairs":
            continue
        name = load_name(kind, n, qos)
        log("(e) ingest %s" % name)
        results["ingest_" + name] = bench(kind, broker, *(load_args(kind, n, qos) + [
            "--archive-db", archive, "--archive-sql", STORED_SQL]),
            timeout=SECONDS * 3 + 120)


def archive_count(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return db.execute(STORED_SQL).fetchone()[0]
    finally:
        db.close()


def run_drain(results, broker):
    """The archiver's own ingest capacity (setup e): with the archiver
    stopped, 10 publishers queue DRAIN_MSGS messages (QoS 1) in its
    session; then it starts, and the time until all are in archive.db gives
    stored/s. Live loads cannot show this: the publishers and the broker,
    which share the machine, run out first. ROUNDS rounds, median."""
    archive = os.path.join(broker.d, "archive.db")
    rounds = []
    for rnd in range(ROUNDS):
        log("(e) drain round %d/%d" % (rnd + 1, ROUNDS))
        broker.stop_archiver()
        pub = bench("pairs", broker, "--qos", 1, "--seconds", 60, "--warmup-ms", 0,
                    "--count", DRAIN_MSGS, "--pairs", 10, "--window", 8, timeout=180)
        if "error" in pub:
            rounds.append({"error": pub["error"]})
            break
        target = archive_count(archive) + pub["sent"]
        b0 = proc_cpu_s(broker.proc.pid)
        t0 = time.monotonic()
        broker.spawn_archiver()
        n, el = 0, None
        while time.monotonic() - t0 < 120 and broker.archiver.poll() is None:
            n = archive_count(archive)
            if n >= target:
                el = time.monotonic() - t0
                break
            time.sleep(0.005)
        if el is None:
            rounds.append({"error": "%d of %d stored after 120 s" % (n, target)})
            break
        a_cpu = proc_cpu_s(broker.archiver.pid)
        b_cpu = proc_cpu_s(broker.proc.pid) - b0
        rounds.append({"messages": pub["sent"], "seconds": el, "stored_per_s": pub["sent"] / el,
                       "archiver_cpu_us_per_msg": a_cpu * 1e6 / pub["sent"],
                       "broker_cpu_us_per_msg": b_cpu * 1e6 / pub["sent"]})
    results["drain"] = median_run(rounds, "stored_per_s")
    results["drain_rounds"] = rounds


def finish_setup(key, res, broker, tmp):
    """The wrong-password flood, then stop the setup and search its log."""
    log("(%s) flood" % key)
    res["flood"] = bench("flood", broker, "--users", 2 * NPAIRS_USERS, "--members", MEMBERS,
                         "--count", WARM_COUNT, "--seconds", FLOOD_SECONDS)
    res["rss_kb_end"] = proc_rss_kb(broker.proc.pid)
    broker.stop()
    text = broker.log_text()
    res["dropped_lines"] = text.count(DROP_LINE)
    # Whose messages: a recipient of a load, or the archiver.
    res["dropped_for"] = sorted(set(re.findall(DROP_LINE + r" for client (\S+?)\.?$", text, re.M)))
    res["plugin_log"] = [scrub(line, tmp) for line in loaded_lines(text)[:2]]


def catchup_after(path, user, rooms, n):
    """The seq after which exactly n of user's messages (direct ones and
    those of rooms) follow in the archive at path: where a device that
    missed the last n left off. 0 when there are fewer."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        marks = ",".join("?" * len(rooms))
        row = db.execute("SELECT seq FROM messages WHERE recipient=? OR (sender=? AND recipient"
                         " IS NOT NULL) OR room IN (%s) ORDER BY seq DESC LIMIT 1 OFFSET ?" % marks,
                         [user, user] + list(rooms) + [n]).fetchone()
        return row[0] if row else 0
    finally:
        db.close()


def first_answer(broker, limit_s=60):
    """Seconds until the archiver, just started, answers a history request
    (on a big archive it may have work of its own first), or None after
    limit_s: the figures below are of an archiver that answers."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        r = bench("rpc", broker, "--op", "history", "--limit", 1, "--user", "s0", "--with", "r0",
                  "--count", 1, "--seconds", 10, timeout=30)
        if "error" not in r:
            return time.monotonic() - t0
    return None


def rpc_features(broker, after):
    """Issue 17's figures as ASKER: the conversation list (first and a
    deeper page), search (SEARCHES) and a new device's catch-up from
    after. {name: bench result}; an RPC the archiver does not have yet
    gives its error answer as the error."""
    res = {}
    common = ["--user", ASKER, "--seconds", 60]
    for name, depth in (("conversations_first", 0), ("conversations_deep", CONV_DEEP_PAGE)):
        log("(e) rpc conversations, page %d" % depth)
        res[name] = bench("rpc", broker, "--op", "conversations", "--limit", CONV_LIMIT,
                          "--depth", depth, "--count", FEATURE_COUNT, *common, timeout=180)
    for k, (label, text) in enumerate(SEARCHES):
        log("(e) rpc search %r" % text)
        res["search_%d" % k] = bench("rpc", broker, "--op", "search", "--text", text,
                                     "--limit", SEARCH_LIMIT, "--count", FEATURE_COUNT,
                                     *common, timeout=180)
        res["search_%d" % k]["label"] = label
    log("(e) rpc catch-up of %d messages" % CATCHUP_MSGS)
    res["catchup"] = bench("rpc", broker, "--op", "catchup", "--after", after,
                           "--limit", CATCHUP_LIMIT, "--count", CATCHUP_RUNS, *common,
                           timeout=240)
    return res


def run_rpc(tmp):
    """history and sync, then issue 17's conversation list, search and
    catch-up, on an archive prefilled with the archiver's own code
    (bench/prefill.c), behind setup (e)."""
    d = new_dir(tmp, "rpc")
    res = {"rows": ARCHIVE_ROWS, "loadavg": [os.getloadavg()[0]]}
    broker = None
    try:
        if not os.path.exists(os.path.join(ROOT, "archiver", "archive.c")):
            raise Unavailable("archiver/archive.c does not exist")
        db = rpc_data(d)
        archive = os.path.join(d, "archive.db")
        log("(e) prefill %d messages" % ARCHIVE_ROWS)
        t0 = time.monotonic()
        pf = subprocess.run([BENCH, "prefill", "--archive-db", archive,
                             "--count", str(ARCHIVE_ROWS), "--pairs", str(NPAIRS_USERS),
                             "--members", str(MEMBERS), "--room", ROOM,
                             "--peers", str(ASKER_PEERS)],
                            capture_output=True, text=True, timeout=900)
        if pf.returncode != 0:
            raise Unavailable("prefill failed: %s" % pf.stderr.strip()[-300:])
        res["prefill_s"] = time.monotonic() - t0
        res["prefill_rows_per_s"] = ARCHIVE_ROWS / res["prefill_s"]
        pfr = json.loads(pf.stdout.strip().splitlines()[-1])
        res["asker_rows"], res["index_s"] = pfr.get("asker_rows"), pfr.get("index_seconds")
        res["reactions"], res["replies"] = pfr.get("reactions"), pfr.get("replies")
        res["db_mb"] = os.path.getsize(archive) / 1e6
        after = catchup_after(archive, ASKER, [ROOM], CATCHUP_MSGS)
        port = free_port()
        broker = Broker(d, port, mqchat_conf(d, port, db))
        broker.start()
        broker.start_archiver()
        res["first_answer_s"] = first_answer(broker)
        for op, limit in (("history", 50), ("sync", 100)):
            log("(e) rpc %s" % op)
            res[op] = bench("rpc", broker, "--op", op, "--limit", limit, "--user", "s0",
                            "--with", "r0", "--count", RPC_COUNT, "--max-seq", ARCHIVE_ROWS,
                            "--seconds", 60, timeout=120)
        res["available"] = all("error" not in res[op] for op in ("history", "sync"))
        if not res["available"]:
            res["reason"] = res["history"].get("error") or res["sync"].get("error")
        res["features"] = rpc_features(broker, after)
        res["loadavg"].append(os.getloadavg()[0])
    except Unavailable as e:
        res.update(available=False, reason=scrub(e, tmp))
        log("rpc not available: %s" % e)
    finally:
        if broker:
            broker.stop()
    return res


def resume_variant(tmp, name, how):
    """One broker with RESUME_USERS persistent sessions (clean session
    false, client id p<i>@bench), restarted, and every session logging in
    again at once: the bench's resume result. how: None for (a), no auth;
    "token" or "password" for (d)."""
    d = new_dir(tmp, "resume-" + name)
    port = free_port()
    names = ["p%d" % i for i in range(RESUME_USERS)]
    if how is None:
        lines = setup_a(d, port)
    else:
        require_built(PLUGIN)
        db = os.path.join(d, "auth.db")
        # One hash for every user: 15,000 PBKDF2 runs in Python would take
        # a minute, and the broker hashes each login all the same.
        write_userdb(db, [(n, mqchat_hash("resume")) for n in names])
        add_bench_devices(db, names)
        lines = mqchat_conf(d, port, db)
    lines = [x for x in lines if not x.startswith("persistence ")] + [
        "persistence true", "persistence_location %s/" % d]
    args = ["--users", RESUME_USERS, "--prefix", "p", "--persistent", 1,
            "--concurrency", RESUME_CONCURRENCY, "--seconds", 600]
    b = Broker(d, port, lines)
    try:
        b.start()
        # The sessions, made with the quick way in: the token where the
        # broker checks one.
        made = bench("resume", b, *args, *(["--token-seed", TOKEN_SEED] if how else []), timeout=900)
        if "error" in made:
            return {"error": "making the sessions: %s" % made["error"]}
        b.stop()
        b.start()
        return bench("resume", b, *args, *(["--token-seed", TOKEN_SEED] if how == "token" else []),
                     timeout=900)
    finally:
        b.stop()


def run_resume(tmp):
    """After a broker restart every phone logs in again at once: (a)
    without auth, (d) with device tokens, (d) with passwords (nothing
    cached after a restart: one PBKDF2 each on the broker's thread)."""
    res = {"users": RESUME_USERS, "concurrency": RESUME_CONCURRENCY}
    for name, how in (("a", None), ("d_token", "token"), ("d_password", "password")):
        log("resume (%s): %d persistent sessions after a restart" % (name, RESUME_USERS))
        try:
            res[name] = resume_variant(tmp, name, how)
        except Unavailable as e:
            res[name] = {"error": scrub(e, tmp)}
    return res


def idle_broker(d, port, lines):
    """Starts a broker, lets it settle 0.3 s and stops it: (seconds to
    listening, PSS of it and its children in kB, its log)."""
    b = Broker(d, port, lines)
    try:
        b.start()
        time.sleep(0.3)
        return b.start_s, proc_tree_pss_kb(b.proc.pid), b.log_text()
    finally:
        b.stop()


def run_rss(tmp):
    """Start-up time and memory: no plugin vs. the plugin with 100k users, 10k rooms."""
    res = {"users": BIG_USERS, "rooms": BIG_ROOMS, "members_per_room": BIG_MEMBERS}
    d = new_dir(tmp, "rss-a")
    port = free_port()
    res["a_start_s"], res["a_rss_kb"], _ = idle_broker(d, port, setup_a(d, port))
    try:
        require_built(PLUGIN)
        d = new_dir(tmp, "rss-d")
        db = os.path.join(d, "auth.db")
        # One hash for every user: the load does not verify them and 100k
        # PBKDF2 runs would take minutes.
        h = mqchat_hash("big")
        names = [("u%d" % i, h) for i in range(BIG_USERS)]
        rooms = ["room%d" % i for i in range(BIG_ROOMS)]
        members = [(rooms[r], "u%d" % ((r * BIG_MEMBERS + k) % BIG_USERS))
                   for r in range(BIG_ROOMS) for k in range(BIG_MEMBERS)]
        write_userdb(db, names, rooms, members)
        port = free_port()
        res["d_start_s"], res["d_rss_kb"], text = idle_broker(d, port, mqchat_conf(d, port, db))
    except Unavailable as e:
        res.update(available=False, reason=scrub(e, tmp))
        return res
    lines = loaded_lines(text)
    res["plugin_log"] = [scrub(line, tmp) for line in lines[:2]]
    m = re.search(r" in (\d+) ms", lines[0]) if lines else None
    res["plugin_load_ms"] = int(m.group(1)) if m else None
    res["available"] = True
    return res
