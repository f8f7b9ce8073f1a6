#!/bin/sh
# bench.sh - what `make bench` runs: the same loads against five broker
# setups that differ only in authentication and access control, then one
# table in bench/results/latest.md and latest.json.
#
#   (a) mosquitto, allow_anonymous true, no ACL: the ceiling
#   (b) mosquitto, password_file + acl_file with %u patterns
#   (c) mosquitto, dynamic-security plugin, equivalent per-user roles
#   (d) mosquitto + the mqchat plugin (build/mqchat_auth.so)
#   (e) (d) + the archiver (build/mqchat-archiver run)
#
# Every broker runs on a free 127.0.0.1 port in a temp folder and is stopped
# by its PID. Setups whose parts are not built (or do not work) are reported
# as "not available" with the reason; the others still run.
#
# Environment: BUILD (default build), QUICK=1 for the short run (< 2 min),
# SETUPS (e.g. "a d", default all), OUT (default bench/results).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
# libmosquitto takes 3 descriptors per client: 100 pairs need ~600.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 2>/dev/null || true
if [ ! -x "$BUILD/mqchat-bench" ]; then
	make "$BUILD/mqchat-bench"
fi
exec /usr/bin/python3 - "$@" <<'PYEOF'
import base64, datetime, hashlib, json, os, re, shutil, signal, socket, sqlite3
import subprocess, sys, tempfile, time

ROOT = os.getcwd()
BUILD = os.environ.get("BUILD", "build")
BENCH = os.path.join(ROOT, BUILD, "mqchat-bench")
PLUGIN = os.path.join(ROOT, BUILD, "mqchat_auth.so")
ARCHIVER = os.path.join(ROOT, BUILD, "mqchat-archiver")
DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
SCHEMA = os.path.join(ROOT, "common", "userdb_schema.sql")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OUT = os.environ.get("OUT", os.path.join("bench", "results"))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
SETUPS = os.environ.get("SETUPS", "a b c d e").split()

PASSWORD = "bench-password"
ITERATIONS = 4300          # PWHASH_DEFAULT_ITERATIONS in common/pwhash.h
ROOM = "bench"
MEMBERS = 100

# The targets' own figure, (d) against (a) on pairs 10 QoS 0, gets many more
# paired rounds of its own: single rounds move by up to 1.5x here, and 5
# rounds leave the median of their ratios a few percent either way.
KEY_LOAD = ("pairs", 10, 0)
if QUICK:
    KEY_ROUNDS = 4
    SECONDS, WARMUP, ROUNDS, CONN_USERS, WARM_COUNT = 0.5, 150, 2, 200, 2000
    FLOOD_SECONDS, RPC_COUNT, ARCHIVE_ROWS = 1.5, 200, 100000
    DRAIN_MSGS = 20000
else:
    KEY_ROUNDS = 30
    # 5 rounds: the machine's background load moves single rounds by up to
    # 1.5x; the paired ratios below need a few rounds to settle.
    SECONDS, WARMUP, ROUNDS, CONN_USERS, WARM_COUNT = 2.0, 500, 5, 1000, 10000
    FLOOD_SECONDS, RPC_COUNT, ARCHIVE_ROWS = 4.0, 1000, 1000000
    DRAIN_MSGS = 80000   # below the bench brokers' max_queued_messages (100,000)
BIG_USERS, BIG_ROOMS, BIG_MEMBERS = 100000, 10000, 10
NPAIRS_USERS = max(100, CONN_USERS // 2)   # s0.., r0..
LOADS = [("pairs", 10, 0), ("pairs", 10, 1), ("pairs", 100, 0), ("pairs", 100, 1),
         ("fanout", MEMBERS, 0), ("fanout", MEMBERS, 1)]
if QUICK:
    LOADS = [("pairs", 10, 0), ("pairs", 100, 1), ("fanout", MEMBERS, 0)]
WINDOW = {10: 8, 100: 2}   # messages in flight per publisher
# Paced runs (deliveries/s) for CPU per message and latency: the same work
# per wake-up in every setup, well below the slowest setup's capacity.
PACE = {"pairs": 5000, "fanout": 10000}
DROP_LINE = "Outgoing messages are being dropped"
# Messages stored so far, cheaply: every stored message takes the next seq
# (duplicates and receipts take none), and max(seq) is one index look-up
# where count(*) walks a million rows, stealing a core from what is measured.
STORED_SQL = "SELECT coalesce(max(seq), 0) FROM messages"

TITLES = {
    "a": "mosquitto, anonymous, no ACL (ceiling)",
    "b": "mosquitto, password_file + acl_file (%u patterns)",
    "c": "mosquitto, dynamic-security plugin",
    "d": "mosquitto + mqchat plugin",
    "e": "mosquitto + mqchat plugin + archiver",
}


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def load_name(kind, n, qos):
    return "%s%d_q%d" % (kind, n, qos)


def users():
    for i in range(NPAIRS_USERS):
        yield "s%d" % i
        yield "r%d" % i
    for i in range(MEMBERS):
        yield "m%d" % i


# ---- credentials for each setup ------------------------------------------

_mqchat_hashes = {}


def mqchat_hash(name):
    """PBKDF2-SHA512 at the default cost, one salt per user (cached)."""
    h = _mqchat_hashes.get(name)
    if h is None:
        salt = os.urandom(16)
        key = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, ITERATIONS, 64)
        h = "$pbkdf2-sha512$%d$%s$%s" % (ITERATIONS, base64.b64encode(salt).decode(),
                                         base64.b64encode(key).decode())
        _mqchat_hashes[name] = h
    return h


def write_userdb(path, names, rooms=(), members=()):
    with open(SCHEMA) as f:
        schema = f.read()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    now = int(time.time() * 1000)
    db.execute("BEGIN")
    db.executemany("INSERT OR IGNORE INTO users(name, kind, nick, pwhash, enabled, created)"
                   " VALUES(?,?,?,?,1,?)", ((n, "user", n, h, now) for n, h in names))
    db.executemany("INSERT OR IGNORE INTO rooms(name, retention_days, created) VALUES(?,0,?)",
                   ((r, now) for r in rooms))
    db.executemany("INSERT OR IGNORE INTO members(room, user) VALUES(?,?)", members)
    db.execute("COMMIT")
    db.close()


def mqchat_userdb(path):
    write_userdb(path, [(n, mqchat_hash(n)) for n in users()], [ROOM],
                 [(ROOM, "m%d" % i) for i in range(MEMBERS)])


def conf_common(d, port):
    lines = ["listener %d 127.0.0.1" % port,
             "set_tcp_nodelay true",
             "persistence false",
             "max_queued_messages 100000",
             "log_dest file %s" % os.path.join(d, "mosquitto.log"),
             "log_type error", "log_type warning", "log_type notice", "log_type information"]
    if os.geteuid() == 0:
        lines.append("user root")
    return lines


def setup_a(d, port):
    return conf_common(d, port) + ["allow_anonymous true"]


def setup_b(d, port):
    pw = os.path.join(d, "passwd")
    with open(pw, "w") as f:
        for n in users():
            f.write("%s:%s\n" % (n, PASSWORD))
    subprocess.run(["mosquitto_passwd", "-U", pw], check=True, timeout=120)
    acl = os.path.join(d, "acl")
    with open(acl, "w") as f:
        f.write("# the inbox rule of the mqchat plugin, as %u patterns\n"
                "pattern write chat/inbox/+/%u\n"
                "pattern read chat/inbox/%u/#\n"
                "# one room: everybody reads it, writes as themselves\n"
                "pattern write chat/room/" + ROOM + "/%u\n"
                "pattern read chat/room/" + ROOM + "/#\n")
    return conf_common(d, port) + ["allow_anonymous false", "password_file " + pw,
                                   "acl_file " + acl]


def setup_c(d, port):
    # dynamic-security in 2.0 has no %u: one role per user with its own topics.
    clients, roles = [], []
    for n in users():
        salt = os.urandom(12)
        key = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 101, 64)
        rl = [{"rolename": "u_" + n}]
        acls = [{"acltype": "publishClientSend", "topic": "chat/inbox/+/" + n, "allow": True},
                {"acltype": "subscribePattern", "topic": "chat/inbox/%s/#" % n, "allow": True},
                {"acltype": "publishClientReceive", "topic": "chat/inbox/%s/#" % n, "allow": True}]
        if n.startswith("m"):
            acls.append({"acltype": "publishClientSend", "topic": "chat/room/%s/%s" % (ROOM, n),
                         "allow": True})
            rl.append({"rolename": "room_" + ROOM})
        roles.append({"rolename": "u_" + n, "acls": acls})
        clients.append({"username": n, "password": base64.b64encode(key).decode(),
                        "salt": base64.b64encode(salt).decode(), "iterations": 101,
                        "roles": rl})
    roles.append({"rolename": "room_" + ROOM, "acls": [
        {"acltype": "subscribePattern", "topic": "chat/room/%s/#" % ROOM, "allow": True},
        {"acltype": "publishClientReceive", "topic": "chat/room/%s/#" % ROOM, "allow": True}]})
    cfg = {"clients": clients, "roles": roles, "groups": [],
           "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                "subscribe": False, "unsubscribe": True}}
    path = os.path.join(d, "dynamic-security.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return conf_common(d, port) + ["allow_anonymous false", "plugin " + DYNSEC,
                                   "plugin_opt_config_file " + path]


def mqchat_conf(d, port, db):
    # per_listener_settings must come before the listener it applies to.
    return ["per_listener_settings false"] + conf_common(d, port) + ["allow_anonymous false",
                                   "plugin " + PLUGIN, "plugin_opt_dbpath " + db,
                                   "plugin_opt_registration off"] + SEND_LIMIT_OPTS


# The send limit is on, so its cost is measured, but high enough that no
# load here is ever refused (a bench sender is no person).
SEND_LIMIT_OPTS = ["plugin_opt_send_rate 1000000", "plugin_opt_send_burst 1000000"]


def setup_d(d, port):
    if not os.path.exists(PLUGIN):
        raise Unavailable("%s is not built" % os.path.relpath(PLUGIN))
    db = os.path.join(d, "auth.db")
    mqchat_userdb(db)
    return mqchat_conf(d, port, db)


def archiver_init(d):
    if not os.path.exists(PLUGIN):
        raise Unavailable("%s is not built" % os.path.relpath(PLUGIN))
    if not os.path.exists(ARCHIVER):
        raise Unavailable("%s is not built" % os.path.relpath(ARCHIVER))
    r = subprocess.run([ARCHIVER, "--data", d, "init"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(os.path.join(d, "archive.db")):
        raise Unavailable("mqchat-archiver init failed: %s" % (r.stderr.strip()[-200:] or r.returncode))


def setup_e(d, port):
    archiver_init(d)
    db = os.path.join(d, "auth.db")
    mqchat_userdb(db)
    return mqchat_conf(d, port, db)


SETUP_FN = {"a": setup_a, "b": setup_b, "c": setup_c, "d": setup_d, "e": setup_e}


class Unavailable(Exception):
    pass


# ---- processes -------------------------------------------------------------

class Broker:
    def __init__(self, d, port, lines):
        self.d, self.port = d, port
        self.conf = os.path.join(d, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.archiver = None
        self.start_s = None

    def start(self, timeout=60):
        t0 = time.monotonic()
        self.out = open(os.path.join(self.d, "mosquitto.out"), "wb")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=self.d)
        while True:
            if self.proc.poll() is not None:
                raise Unavailable("broker exited (%s): %s" % (self.proc.returncode, self.tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise Unavailable("broker did not listen within %ds" % timeout)
            time.sleep(0.005)
        self.start_s = time.monotonic() - t0

    def tail(self, n=300):
        text = ""
        for name in ("mosquitto.out", "mosquitto.log"):
            try:
                with open(os.path.join(self.d, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return " | ".join(text.strip().splitlines()[-4:])[-n:]

    def log_text(self):
        try:
            with open(os.path.join(self.d, "mosquitto.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start_archiver(self):
        alog = open(os.path.join(self.d, "archiver.out"), "wb")
        self.archiver = subprocess.Popen([ARCHIVER, "--data", self.d, "run", "--port",
                                          str(self.port)], stdout=alog, stderr=subprocess.STDOUT,
                                         cwd=self.d)
        time.sleep(0.05)
        deadline = time.monotonic() + 10
        # Ready when the broker has seen its session (the log names its client id).
        while time.monotonic() < deadline:
            if self.archiver.poll() is not None:
                with open(os.path.join(self.d, "archiver.out"), errors="replace") as f:
                    t = " | ".join(f.read().strip().splitlines()[-3:])
                raise Unavailable("archiver exited (%s): %s" % (self.archiver.returncode, t[-300:]))
            if re.search(r"New client connected .* as archiver", self.log_text()):
                return
            time.sleep(0.05)
        raise Unavailable("archiver did not connect within 10 s")

    def stop_one(self, p):
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self):
        self.stop_one(self.archiver)
        self.stop_one(self.proc)


def bench(mode, broker, *args, timeout=None):
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


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def proc_tree_pss_kb(pid):
    """Proportional set size of pid and its child processes (the plugin's
    loader shares the snapshot's pages with the broker: PSS counts each
    page once over both, RSS would count it in each)."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                total += proc_tree_pss_kb(kid)
            except OSError:
                pass
    return total


# ---- the runs --------------------------------------------------------------

def scrub(text, tmp):
    """No machine paths in committed results."""
    return str(text).replace(tmp, "<tmp>").replace(ROOT + "/", "")


def start_setup(key, tmp):
    """Prepare and start one setup; returns (result dict, Broker or None)."""
    d = os.path.join(tmp, key)
    os.makedirs(d)
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
    return {"median": s[(len(s) - 1) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2,
            "q1": s[len(s) // 4], "q3": s[(3 * len(s)) // 4], "ratios": rs}


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


def proc_cpu_s(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


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
        broker.stop_one(broker.archiver)
        pub = bench("pairs", broker, "--qos", 1, "--seconds", 60, "--warmup-ms", 0,
                    "--count", DRAIN_MSGS, "--pairs", 10, "--window", 8, timeout=180)
        if "error" in pub:
            rounds.append({"error": pub["error"]})
            break
        target = archive_count(archive) + pub["sent"]
        b0 = proc_cpu_s(broker.proc.pid)
        t0 = time.monotonic()
        alog = open(os.path.join(broker.d, "archiver.out"), "ab")
        broker.archiver = subprocess.Popen([ARCHIVER, "--data", broker.d, "run", "--port",
                                            str(broker.port)], stdout=alog,
                                           stderr=subprocess.STDOUT, cwd=broker.d)
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
    log("(%s) flood" % key)
    res["flood"] = bench("flood", broker, "--users", 2 * NPAIRS_USERS, "--members", MEMBERS,
                         "--count", WARM_COUNT, "--seconds", FLOOD_SECONDS)
    res["rss_kb_end"] = proc_rss_kb(broker.proc.pid)
    broker.stop()
    text = broker.log_text()
    res["dropped_lines"] = text.count(DROP_LINE)
    # Whose messages: a recipient of a load, or the archiver.
    res["dropped_for"] = sorted(set(re.findall(DROP_LINE + r" for client (\S+?)\.?$", text, re.M)))
    res["plugin_log"] = [scrub(l, tmp) for l in text.splitlines() if "mqchat: loaded" in l][:2]


def run_rpc(tmp):
    """history and sync on a prefilled archive (setup e)."""
    d = os.path.join(tmp, "rpc")
    os.makedirs(d)
    port = free_port()
    res = {"rows": ARCHIVE_ROWS}
    broker = None
    try:
        if not os.path.exists(os.path.join(ROOT, "archiver", "archive.c")):
            raise Unavailable("archiver/archive.c does not exist")
        archiver_init(d)
        db = os.path.join(d, "auth.db")
        mqchat_userdb(db)
        t0 = time.monotonic()
        pf = subprocess.run([BENCH, "prefill", "--archive-db", os.path.join(d, "archive.db"),
                             "--count", str(ARCHIVE_ROWS), "--pairs", str(NPAIRS_USERS),
                             "--members", str(MEMBERS), "--room", ROOM],
                            capture_output=True, text=True, timeout=600)
        if pf.returncode != 0:
            raise Unavailable("prefill failed: %s" % pf.stderr.strip()[-300:])
        res["prefill_s"] = time.monotonic() - t0
        broker = Broker(d, port, mqchat_conf(d, port, db))
        broker.start()
        broker.start_archiver()
        for op, limit in (("history", 50), ("sync", 100)):
            log("(e) rpc %s" % op)
            res[op] = bench("rpc", broker, "--op", op, "--limit", limit, "--user", "s0",
                            "--with", "r0", "--count", RPC_COUNT, "--max-seq", ARCHIVE_ROWS,
                            "--seconds", 60, timeout=120)
        res["available"] = all("error" not in res[op] for op in ("history", "sync"))
        if not res["available"]:
            res["reason"] = res["history"].get("error") or res["sync"].get("error")
    except Unavailable as e:
        res.update(available=False, reason=scrub(e, tmp))
        log("rpc not available: %s" % e)
    finally:
        if broker:
            broker.stop()
    return res


def run_rss(tmp):
    """Start-up time and memory: no plugin vs. the plugin with 100k users, 10k rooms."""
    res = {"users": BIG_USERS, "rooms": BIG_ROOMS, "members_per_room": BIG_MEMBERS}
    d = os.path.join(tmp, "rss-a")
    os.makedirs(d)
    port = free_port()
    b = Broker(d, port, setup_a(d, port))
    try:
        b.start()
        time.sleep(0.3)
        res["a_start_s"], res["a_rss_kb"] = b.start_s, proc_tree_pss_kb(b.proc.pid)
    finally:
        b.stop()
    if not os.path.exists(PLUGIN):
        res.update(available=False, reason="%s is not built" % os.path.relpath(PLUGIN))
        return res
    d = os.path.join(tmp, "rss-d")
    os.makedirs(d)
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
    b = Broker(d, port, mqchat_conf(d, port, db))
    try:
        b.start()
        time.sleep(0.3)
        res["d_start_s"], res["d_rss_kb"] = b.start_s, proc_tree_pss_kb(b.proc.pid)
        lines = [l for l in b.log_text().splitlines() if "mqchat: loaded" in l]
        res["plugin_log"] = [scrub(l, tmp) for l in lines[:2]]
        m = re.search(r" in (\d+) ms", lines[0]) if lines else None
        res["plugin_load_ms"] = int(m.group(1)) if m else None
        res["available"] = True
    except Unavailable as e:
        res.update(available=False, reason=scrub(e, tmp))
    finally:
        b.stop()
    return res


# ---- the report ------------------------------------------------------------

def fmt(v, nd=0):
    if v is None:
        return "n/a"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{nd}f}".format(v, nd=nd)


def ratio(v, base):
    if v is None or not base:
        return None
    return v / base


def get(results, key, test, field, sub=None):
    r = results.get(key, {})
    if not r.get("available"):
        return None
    t = r.get(test) or {}
    if sub:
        t = t.get(sub) or {}
    if "error" in t:
        return None
    v = t.get(field)
    return v if isinstance(v, (int, float)) and v >= 0 else None


def build_targets(results, rpc, rss, kf=None):
    """kf: run_key's figures, or None."""
    T = []

    def add(name, setup, value, base, limit, ok, unit="", paired_ratio=None):
        T.append({"target": name, "setup": setup, "value": value, "a": base,
                  "ratio": ratio(value, base) if base is not None else None,
                  "paired": paired_ratio,
                  "limit": limit, "unit": unit,
                  "verdict": "n/a" if ok is None else ("pass" if ok else "short")})

    def paired_of(key, test):
        p = (results.get(key, {}).get(test) or {}).get("paired")
        return p["median"] if p else None

    for key in ("d", "e"):
        for kind, n, qos in LOADS:
            name = load_name(kind, n, qos)
            # The verdict is on the paired ratio (median of per-round
            # ratios) when there is one, else on the ratio of the medians.
            a = get(results, "a", name + "_paced", "cpu_us_per_msg")
            v = get(results, key, name + "_paced", "cpu_us_per_msg")
            pr = paired_of(key, name + "_paced")
            r = pr if pr is not None else (v / a if v is not None and a else None)
            add("broker CPU/msg %s <= 1.05x (a)" % name, key, v, a, "1.05x",
                None if r is None else r <= 1.05, "us", pr)
            a = get(results, "a", name, "msgs_per_s")
            v = get(results, key, name, "msgs_per_s")
            pr = paired_of(key, name)
            r = pr if pr is not None else (v / a if v is not None and a else None)
            add("msgs/s %s >= 0.95x (a)" % name, key, v, a, "0.95x",
                None if r is None else r >= 0.95, "/s", pr)
        if key == "d" and kf and kf.get("cpu") and kf.get("msgs"):
            a, v = (kf["a_paced"] or {}).get("cpu_us_per_msg"), (kf["d_paced"] or {}).get("cpu_us_per_msg")
            add("broker CPU/msg %s <= 1.05x (a), %d paired rounds" % (kf["load"], kf["rounds"]), key,
                v, a, "1.05x", kf["cpu"]["median"] <= 1.05, "us", kf["cpu"]["median"])
            a, v = (kf["a_full"] or {}).get("msgs_per_s"), (kf["d_full"] or {}).get("msgs_per_s")
            add("msgs/s %s >= 0.95x (a), %d paired rounds" % (kf["load"], kf["rounds"]), key,
                v, a, "0.95x", kf["msgs"]["median"] >= 0.95, "/s", kf["msgs"]["median"])
        a = get(results, "a", "connect", "ok_per_s", "warm")
        v = get(results, key, "connect", "ok_per_s", "warm")
        add("warm reconnect rate >= 0.8x (a)", key, v, a, "0.8x",
            None if v is None or not a else v / a >= 0.8, "/s")
    if rss.get("available"):
        load_s = rss["d_start_s"]
        add("100k users + 10k rooms: start to listening < 1 s", "d", load_s, rss["a_start_s"],
            "1 s", load_s < 1.0, "s")
        if rss.get("plugin_load_ms") is not None:
            v = rss["plugin_load_ms"] / 1000.0
            add("100k users + 10k rooms: plugin's own load time < 1 s", "d", v, None, "1 s",
                v < 1.0, "s")
        add_mb = (rss["d_rss_kb"] - rss["a_rss_kb"]) / 1024.0
        add("100k users + 10k rooms: memory added (PSS, broker + loader) < 100 MB", "d", add_mb, None, "100 MB",
            add_mb < 100, "MB")
    else:
        add("100k users + 10k rooms: start < 1 s", "d", None, None, "1 s", None)
        add("100k users + 10k rooms: memory added (PSS, broker + loader) < 100 MB", "d", None, None, "100 MB", None)
    e = results.get("e", {})
    dr = e.get("drain")
    if dr and "error" not in dr:
        add("archiver ingest >= 50,000 msg/s stored (drain of %s queued)" % fmt(dr["messages"]),
            "e", dr["stored_per_s"], None, "50,000/s", dr["stored_per_s"] >= 50000, "/s")
    else:
        add("archiver ingest >= 50,000 msg/s stored", "e", None, None, "50,000/s", None)
    best = any((e.get("ingest_" + load_name(k, n, q)) or {}).get("archive")
               for k, n, q in LOADS if k == "pairs") if e.get("available") else False
    if best:
        lost = 0
        bounded = True
        for kind, n, qos in LOADS:
            a2 = (e.get("ingest_" + load_name(kind, n, qos)) or {}).get("archive") if kind == "pairs" else None
            if a2:
                lost += max(0, a2["final_lag"])
                bounded = bounded and a2["drain_ms"] >= 0
        add("archiver lag bounded, nothing dropped", "e", lost, None, "0 lost, 0 log lines",
            bounded and lost == 0 and e.get("dropped_lines", 0) == 0, "msgs")
    else:
        add("archiver lag bounded, nothing dropped", "e", None, None, "0 lost", None)
    h = rpc.get("history") if rpc.get("available") else None
    v = h.get("p99_us") / 1000.0 if h and "p99_us" in h else None
    add("history 50 on %s messages p99 < 5 ms" % fmt(rpc.get("rows")), "e", v, None, "5 ms",
        None if v is None else v < 5.0, "ms")
    return T


def markdown(doc):
    R = doc["setups"]
    keys = [k for k in "abcde" if k in R]
    L = []
    L.append("# mqchat benchmarks")
    L.append("")
    L.append("`%s` on %s, %d cores (shared), mosquitto %s, %s run. Loads ran in %d interleaved "
             "rounds of %.1f s per setup; each cell is the median round: value (ratio to (a))."
             % (doc["command"], doc["date"], doc["cores"], doc["mosquitto"],
                "QUICK" if doc["quick"] else "full", doc["rounds"], doc["seconds_per_load"]))
    L.append("")
    for k in keys:
        r = R[k]
        L.append("- (%s) %s%s" % (k, r["title"], "" if r.get("available") else
                                  ": **not available** (%s)" % r.get("reason")))
    L.append("")

    def cell(k, test, field, sub=None, nd=0, scale=1.0, with_ratio=True):
        v = get(R, k, test, field, sub)
        if v is None:
            t = (R.get(k, {}).get(test) or {})
            return "error" if R.get(k, {}).get("available") and "error" in t else "n/a"
        a = get(R, "a", test, field, sub)
        s = fmt(v * scale, nd)
        if a and k != "a" and with_ratio:
            s += " (%.2f)" % (v / a)
        return s

    def table(title, rows, with_ratio=True):
        L.append("### " + title)
        L.append("")
        L.append("| | " + " | ".join("(%s)" % k for k in keys) + " |")
        L.append("|---|" + "---:|" * len(keys))
        for label, test, field, sub, nd, scale in rows:
            L.append("| %s | %s |" % (label, " | ".join(
                cell(k, test, field, sub, nd, scale, with_ratio) for k in keys)))
        L.append("")

    lrows = lambda field, nd, scale=1.0, sfx="": [
        ("%s %d, QoS %d" % ("pairs" if kind == "pairs" else "room of", n, q),
         load_name(kind, n, q) + sfx, field, None, nd, scale) for kind, n, q in LOADS]
    table("Broker CPU per delivered message (us), paced at %s deliveries/s (pairs) and "
          "%s (room): the key figure" % (fmt(PACE["pairs"]), fmt(PACE["fanout"])),
          lrows("cpu_us_per_msg", 2, 1.0, "_paced"))
    table("Noise: max/min of that CPU per message over the %d rounds" % doc["rounds"],
          lrows("spread", 2, 1.0, "_paced"), with_ratio=False)
    table("Messages delivered per second, end to end, full speed", lrows("msgs_per_s", 0))
    table("Latency p50 (ms), paced", lrows("p50_us", 2, 0.001, "_paced"))
    table("Latency p99 (ms), paced", lrows("p99_us", 2, 0.001, "_paced"))
    table("Broker CPU per delivered message (us), full speed", lrows("cpu_us_per_msg", 2))
    table("Logins", [
        ("cold: first login /s", "connect", "ok_per_s", "cold", 0, 1.0),
        ("cold: broker CPU per login (us)", "connect", "cpu_us_per_ok", "cold", 0, 1.0),
        ("warm: reconnect /s", "connect", "ok_per_s", "warm", 0, 1.0),
        ("warm: broker CPU per login (us)", "connect", "cpu_us_per_ok", "warm", 0, 1.0),
        ("under wrong-password flood: good logins /s", "flood", "ok_per_s", "good", 0, 1.0),
        ("flood: wrong-password attempts /s", "flood", "attempts_per_s", "bad", 0, 1.0),
        ("flood: wrong passwords accepted", "flood", "ok", "bad", 0, 1.0),
    ])
    e = R.get("e", {})
    if e.get("available"):
        L.append("### Archiver ingest (e)")
        L.append("")
        L.append("| load | published/s | stored/s | max lag | drain after stop (ms) | final lag |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for kind, n, q in LOADS:
            a = (e.get("ingest_" + load_name(kind, n, q)) or {}).get("archive")
            if a:
                L.append("| pairs %d, QoS %d | %s | %s | %s | %s | %s |" % (
                    n, q, fmt(a["published_per_s"]), fmt(a["stored_per_s"]), fmt(a["max_lag"]),
                    fmt(a["drain_ms"]) if a["drain_ms"] >= 0 else "never", fmt(a["final_lag"])))
        L.append("")
        L.append("Broker log lines \"%s\": %d%s." % (
            DROP_LINE, e.get("dropped_lines", 0),
            " (for %s)" % ", ".join(e["dropped_for"]) if e.get("dropped_for") else ""))
        L.append("")
        dr = e.get("drain")
        if dr and "error" not in dr:
            L.append("Ingest capacity: %s messages queued while the archiver was stopped, then"
                     " stored in %.2f s: **%s msg/s** (median of %d rounds, %s to %s);"
                     " archiver CPU %.1f us/msg, broker CPU %.1f us/msg meanwhile." % (
                         fmt(dr["messages"]), dr["seconds"], fmt(dr["stored_per_s"]),
                         dr["rounds"], fmt(dr["min"]), fmt(dr["max"]),
                         dr["archiver_cpu_us_per_msg"], dr["broker_cpu_us_per_msg"]))
        elif dr:
            L.append("Ingest capacity: not measured (%s)." % dr["error"])
        L.append("")
    rpc = doc["rpc"]
    L.append("### RPC on a %s-message archive (e)" % fmt(rpc.get("rows")))
    L.append("")
    if rpc.get("available"):
        L.append("| op | requests | ok | p50 (ms) | p99 (ms) |")
        L.append("|---|---:|---:|---:|---:|")
        for op in ("history", "sync"):
            r = rpc[op]
            L.append("| %s limit %d | %d | %d | %.2f | %.2f |" % (
                op, r["limit"], r["requests"], r["ok"], r["p50_us"] / 1000, r["p99_us"] / 1000))
    else:
        L.append("Not available: %s" % rpc.get("reason"))
    L.append("")
    rss = doc["rss"]
    L.append("### Start-up and memory with %s users, %s rooms" % (fmt(rss["users"]), fmt(rss["rooms"])))
    L.append("")
    L.append("| broker | start to listening (s) | memory, PSS of broker + loader (MB) |")
    L.append("|---|---:|---:|")
    L.append("| (a) no plugin | %.3f | %.1f |" % (rss["a_start_s"], rss["a_rss_kb"] / 1024))
    if rss.get("available"):
        L.append("| (d) mqchat plugin, %s users | %.3f | %.1f |" % (
            fmt(rss["users"]), rss["d_start_s"], rss["d_rss_kb"] / 1024))
    else:
        L.append("| (d) mqchat plugin | n/a | n/a |")
    L.append("")
    kf = doc.get("key")
    if kf and kf.get("cpu") and kf.get("msgs"):
        kind, n, qos = KEY_LOAD
        L.append("### In depth: (d) against (a), %s %d, QoS %d, %d paired rounds" % (
            kind, n, qos, kf["rounds"]))
        L.append("")
        L.append("Only (a) and (d), the order swapped every round. Each round's ratio (d)/(a);")
        L.append("their median and quartiles.")
        L.append("")
        L.append("| figure | (a) median | (d) median | paired ratio | quartiles |")
        L.append("|---|---:|---:|---:|---|")
        for label, fa, fd, field, nd, p in (
                ("broker CPU per message (us), paced", "a_paced", "d_paced", "cpu_us_per_msg", 2, kf["cpu"]),
                ("messages per second, full speed", "a_full", "d_full", "msgs_per_s", 0, kf["msgs"])):
            L.append("| %s | %s | %s | %.3f | %.3f - %.3f |" % (
                label, fmt((kf[fa] or {}).get(field), nd), fmt((kf[fd] or {}).get(field), nd),
                p["median"], p["q1"], p["q3"]))
        L.append("")
    L.append("### Targets")
    L.append("")
    L.append("Ratios to (a): of the two medians, and paired (the median over the rounds of each")
    L.append("round's own ratio; the verdict uses it where there is one).")
    L.append("")
    L.append("| target | setup | value | (a) | ratio | paired | verdict |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for t in doc["targets"]:
        nd = 2 if t["unit"] in ("us", "ms", "s") else 0
        L.append("| %s | (%s) | %s | %s | %s | %s | %s |" % (
            t["target"], t["setup"], fmt(t["value"], nd) + (" " + t["unit"] if t["value"] is not None else ""),
            fmt(t["a"], nd) if t["a"] is not None else "", "%.2f" % t["ratio"] if t["ratio"] else "",
            "%.2f" % t["paired"] if t.get("paired") else "", t["verdict"]))
    L.append("")
    return "\n".join(L)


def main():
    t0 = time.monotonic()
    mv = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout
    m = re.search(r"mosquitto version (\S+)", mv)
    doc = {"command": "make bench" + (" QUICK=1" if QUICK else ""),
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "quick": QUICK, "cores": os.cpu_count(), "mosquitto": m.group(1) if m else "?",
           "seconds_per_load": SECONDS, "rounds": ROUNDS, "setups": {}}
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
        if brokers:
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
    finally:
        for b in brokers.values():
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    doc["targets"] = build_targets(doc["setups"], doc["rpc"], doc["rss"], doc.get("key"))
    doc["total_s"] = round(time.monotonic() - t0, 1)
    md = markdown(doc) + "Total run time: %.0f s.\n" % doc["total_s"]
    os.makedirs(OUT, exist_ok=True)
    for name, text in (("latest.json", json.dumps(doc, indent=1) + "\n"), ("latest.md", md)):
        tmpf = os.path.join(OUT, name + ".tmp")
        with open(tmpf, "w") as f:
            f.write(text)
        os.replace(tmpf, os.path.join(OUT, name))
    print(md)


main()
PYEOF
