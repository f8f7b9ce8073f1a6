#!/usr/bin/python3
"""sizes.py - the sizes to plan for: memory per connection and per user,
the archiver's memory, disk per million messages, push.db per target.

    ONLY=sizes make bench           (or BUILD=build bench/sizes.py)

`make bench` runs it after the web and push phases; QUICK=1 makes every
count smaller (the figures per unit stay comparable). Writes sizes.json and
sizes.md into OUT (default bench/results). What each figure is:

- Connections: a broker with the plugin and N accounts (one shared
  PBKDF2 hash, written into auth.db as the bench's other setups do: making
  5,000 accounts with the CLI would hash 5,000 times), then N idle
  connections of those accounts, one each (the plugin's per-account limits
  never apply), persistent sessions (MQTT 3.1.1 clean session 0; MQTT 5
  session expiry 30 days), each subscribed as the terminal app is
  (chat/inbox/<me>/#, chat/inbox/+/<me>, chat/rpc/<me>/resp at QoS 1,
  chat/typing/<me>/+ at QoS 0). The broker's memory is the PSS of the
  broker and the plugin's loader process (/proc/PID/smaps_rollup: each page
  they share counted once), read before the first connection and after N1
  and N2; per connection is the growth divided by the connections added.
  The kernel's socket buffers are not in it (they are not the process's).
- Users: the same broker idle, on an empty auth.db, on one with U
  accounts, and on one with U accounts and R rooms of M members: per user
  and per membership is the PSS growth divided by the count.
- Archiver: its RSS (VmRSS) idle after start, its peak (VmHWM) while it
  stores D messages queued for it while it was stopped (as the drain of
  bench.py), and its RSS when they are all stored.
- Disk: two archive.db files filled by `mqchat-bench prefill` (the
  archiver's own archive__store and search index, bench/prefill.c's mix of
  DMs, a room, replies and reactions) with S and 2S messages; each is then
  checkpointed (TRUNCATE: the WAL is copied into the database and emptied,
  as the archiver's checkpointer does in time) and its file measured; per
  million is the difference of the two divided by S, scaled to 1,000,000
  (what an empty archive holds is left out). The share of each table and
  index in the larger one comes from SQLite's dbstat.
- push.db: T Web Push targets (an endpoint of 180 characters and the two
  keys, as a browser's subscription has them) written as
  push_store__target_set writes them, checkpointed: bytes per target.
"""
import concurrent.futures
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

from bench import prepare, run_doc, write_results
from procs import (Broker, Unavailable, free_port, log, proc_rss_kb, proc_tree_pss_kb,
                   require_built)
from runs import archive_count, bench, new_dir, scrub
from settings import (ARCHIVER, BENCH, MEMBERS, NPAIRS_USERS, PASSWORD, PLUGIN, QUICK, ROOM)
from setups import archiver_init, mqchat_conf, mqchat_hash, setup_e, write_userdb

if QUICK:
    CONNS = (500, 1000)
    USERS, ROOMS, ROOM_MEMBERS = 20000, 2000, 10
    DRAIN, PREFILL_STEP, TARGETS = 10000, 50000, 10000
else:
    CONNS = (2000, 5000)
    USERS, ROOMS, ROOM_MEMBERS = 100000, 10000, 10
    DRAIN, PREFILL_STEP, TARGETS = 50000, 500000, 100000
HOLD_WORKERS = 32          # connections being made at once
SETTLE_S = 1.0             # after the last connection, before reading /proc
KEEPALIVE = 1200           # no PINGREQ is due while the sockets are held


# ---- a bare MQTT client: thousands of idle sockets in one process ----

def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def read_packet(s):
    """(first byte, body) of the next packet on blocking socket s."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the broker")
            buf += chunk
        return buf
    first = exact(1)[0]
    n, shift = 0, 0
    while True:
        b = exact(1)[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return first, exact(n)


def hold_one(port, version, user, password):
    """A connected, subscribed socket of user (client id user@sizes), with a
    persistent session. Raises on any refusal."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        vh = mqtt_str("MQTT") + bytes([version, 0x80 | 0x40]) + struct.pack("!H", KEEPALIVE)
        if version == 5:
            props = b"\x11" + struct.pack("!I", 30 * 86400)   # session expiry interval
            vh += varint(len(props)) + props
        s.sendall(packet(0x10, vh + mqtt_str(user + "@sizes") + mqtt_str(user) + mqtt_str(password)))
        first, body = read_packet(s)
        if first != 0x20 or len(body) < 2 or body[1] != 0:
            raise Unavailable("login of %s refused (CONNACK %s)" % (user, body[1:2].hex()))
        topics = [("chat/inbox/%s/#" % user, 1), ("chat/inbox/+/%s" % user, 1),
                  ("chat/rpc/%s/resp" % user, 1), ("chat/typing/%s/+" % user, 0)]
        body = struct.pack("!H", 1) + (b"\x00" if version == 5 else b"")
        for t, q in topics:
            body += mqtt_str(t) + bytes([q])
        s.sendall(packet(0x82, body))
        while True:
            first, body = read_packet(s)
            if first >> 4 == 9:     # SUBACK (a retained message may come first)
                break
        codes = body[3:] if version == 5 else body[2:]
        if len(codes) != len(topics) or any(c >= 0x80 for c in codes[-len(topics):]):
            raise Unavailable("subscriptions of %s refused (SUBACK %s)" % (user, codes.hex()))
        s.settimeout(None)
        return s
    except BaseException:
        s.close()
        raise


def hold(port, version, names, socks):
    """Connect names (HOLD_WORKERS at a time), appending each socket to socks."""
    with concurrent.futures.ThreadPoolExecutor(HOLD_WORKERS) as ex:
        for s in ex.map(lambda n: hold_one(port, version, n, PASSWORD), names):
            socks.append(s)


# ---- memory ----

def broker_pss(b):
    return proc_tree_pss_kb(b.proc.pid)


def connections(tmp, version):
    """Broker PSS with 0, CONNS[0] and CONNS[1] idle logged-in connections."""
    d = new_dir(tmp, "conns-v%d" % version)
    n_max = CONNS[-1]
    names = ["n%d" % i for i in range(n_max)]
    db = os.path.join(d, "auth.db")
    write_userdb(db, [(n, mqchat_hash("sizes")) for n in names])
    port = free_port()
    b = Broker(d, port, mqchat_conf(d, port, db))
    socks = []
    res = {"protocol": "MQTT 5" if version == 5 else "MQTT 3.1.1", "points": []}
    try:
        b.start()
        time.sleep(SETTLE_S)
        res["points"].append({"connections": 0, "pss_kb": broker_pss(b), "rss_kb": proc_rss_kb(b.proc.pid)})
        done = 0
        for n in CONNS:
            t0 = time.monotonic()
            hold(port, version, names[done:n], socks)
            took = time.monotonic() - t0
            done = n
            time.sleep(SETTLE_S)
            if b.proc.poll() is not None:
                raise Unavailable("broker exited (%s): %s" % (b.proc.returncode, b.tail()))
            res["points"].append({"connections": n, "pss_kb": broker_pss(b),
                                  "rss_kb": proc_rss_kb(b.proc.pid), "connect_s": round(took, 1)})
    finally:
        for s in socks:
            s.close()
        b.stop()
    p = res["points"]
    res["per_conn_kb"] = round((p[-1]["pss_kb"] - p[0]["pss_kb"]) / CONNS[-1], 2)
    res["per_conn_kb_marginal"] = round((p[-1]["pss_kb"] - p[-2]["pss_kb"]) / (CONNS[-1] - CONNS[-2]), 2)
    return res


def idle_pss(tmp, name, names, rooms=(), members=()):
    """PSS (kB) of an idle broker with the plugin on an auth.db holding
    these accounts, rooms and members, and how long the load took."""
    d = new_dir(tmp, name)
    db = os.path.join(d, "auth.db")
    h = mqchat_hash("sizes")
    write_userdb(db, [(n, h) for n in names], rooms, members)
    port = free_port()
    b = Broker(d, port, mqchat_conf(d, port, db))
    try:
        b.start()
        time.sleep(SETTLE_S)
        return broker_pss(b), round(b.start_s, 2)
    finally:
        b.stop()


def users(tmp):
    names = ["u%d" % i for i in range(USERS)]
    rooms = ["room%d" % i for i in range(ROOMS)]
    members = [(rooms[r], names[(r * ROOM_MEMBERS + k) % USERS])
               for r in range(ROOMS) for k in range(ROOM_MEMBERS)]
    empty, _ = idle_pss(tmp, "users-0", [])
    only, s1 = idle_pss(tmp, "users-u", names)
    full, s2 = idle_pss(tmp, "users-r", names, rooms, members)
    return {"users": USERS, "rooms": ROOMS, "memberships": len(members),
            "pss_kb_empty": empty, "pss_kb_users": only, "pss_kb_users_rooms": full,
            "start_s_users": s1, "start_s_users_rooms": s2,
            "per_user_bytes": round((only - empty) * 1024 / USERS),
            "per_membership_bytes": round((full - only) * 1024 / len(members)),
            "users_rooms_mb": round((full - empty) / 1024, 1)}


def archiver(tmp):
    """The archiver's RSS idle, its peak storing DRAIN queued messages, and
    after."""
    d = new_dir(tmp, "archiver")
    port = free_port()
    b = Broker(d, port, setup_e(d, port))
    try:
        b.start()
        b.start_archiver()
        time.sleep(SETTLE_S)
        pid = b.archiver.pid
        res = {"messages": DRAIN, "idle_rss_kb": proc_rss_kb(pid)}
        b.stop_archiver()
        pub = bench("pairs", b, "--qos", 1, "--seconds", 120, "--warmup-ms", 0, "--count", DRAIN,
                    "--pairs", 10, "--window", 8, timeout=300)
        if "error" in pub:
            raise Unavailable("queueing the messages: %s" % pub["error"])
        archive = os.path.join(d, "archive.db")
        target = archive_count(archive) + pub["sent"]
        t0 = time.monotonic()
        b.spawn_archiver()
        pid = b.archiver.pid
        while archive_count(archive) < target:
            if b.archiver.poll() is not None or time.monotonic() - t0 > 300:
                raise Unavailable("%d of %d stored" % (archive_count(archive), target))
            time.sleep(0.05)
        res["drain_s"] = round(time.monotonic() - t0, 1)
        time.sleep(SETTLE_S)
        with open("/proc/%d/status" % pid) as f:
            st = dict(line.split(":", 1) for line in f)
        res["peak_rss_kb"] = int(st["VmHWM"].split()[0])
        res["after_rss_kb"] = int(st["VmRSS"].split()[0])
        return res
    finally:
        b.stop()


# ---- disk ----

def checkpointed_size(path):
    """Checkpoint (TRUNCATE) the WAL into the database; the bytes of the
    database and of what is left of its WAL."""
    db = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    wal = path + "-wal"
    return os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)


def breakdown(path):
    """Bytes of each table and index (dbstat), grouped: messages and its
    indexes, the search index, the rest."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        avg = db.execute("SELECT avg(length(CAST(body AS BLOB))) FROM messages WHERE type='text'").fetchone()[0]
    finally:
        db.close()
    return {name: n for name, n in sorted(rows, key=lambda r: -r[1])}, avg


def prefill(archive, count):
    r = subprocess.run([BENCH, "prefill", "--archive-db", archive, "--count", str(count),
                        "--pairs", str(NPAIRS_USERS), "--members", str(MEMBERS), "--room", ROOM,
                        "--peers", "99"], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise Unavailable("prefill failed: %s" % r.stderr.strip()[-300:])


def disk(tmp):
    """Two archives, of PREFILL_STEP and of twice as many messages
    (prefill's message ids start at 0 in every run, so one archive cannot
    be filled twice)."""
    sizes, t0 = [], time.monotonic()
    for k in (1, 2):
        d = new_dir(tmp, "disk%d" % k)
        archiver_init(d)
        archive = os.path.join(d, "archive.db")
        empty = checkpointed_size(archive)
        prefill(archive, k * PREFILL_STEP)
        sizes.append(checkpointed_size(archive))
    parts, avg = breakdown(archive)
    total = sum(parts.values())
    one, two = sizes
    return {"step": PREFILL_STEP, "bytes_empty": empty, "bytes_step1": one, "bytes_step2": two,
            "fill_s": round(time.monotonic() - t0, 1),
            "per_million_mb": round((two - one) * 1e6 / PREFILL_STEP / 1e6, 1),
            "per_message_bytes": round((two - one) / PREFILL_STEP),
            "avg_text_body_bytes": round(avg or 0, 1),
            "share": {k: round(v / total, 3) for k, v in parts.items() if v / total >= 0.005}}


def push(tmp):
    """push.db as the archiver makes it at its start (push on, the
    default), then TARGETS Web Push targets in the row form
    push_store__target_set writes."""
    d = new_dir(tmp, "push")
    archiver_init(d)
    path = os.path.join(d, "push.db")
    port = free_port()
    b = Broker(d, port, setup_e(d, port))
    try:
        b.start()
        b.start_archiver()
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        b.stop()
    if not os.path.exists(path):
        raise Unavailable("the archiver made no push.db")
    empty = checkpointed_size(path)
    now = int(time.time() * 1000)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        for i in range(TARGETS):
            data = json.dumps({"auth": os.urandom(16).hex()[:22],
                               "endpoint": "https://fcm.googleapis.com/fcm/send/" + os.urandom(72).hex(),
                               "p256dh": "B" + os.urandom(43).hex()[:86]},
                              separators=(",", ":"), sort_keys=True)
            db.execute("INSERT INTO targets(user, device, provider, data, secret, created, last_ok, failures)"
                       " VALUES(?, 'phone', 'webpush', ?, '', ?, 0, 0)", ("u%d" % i, data, now))
        db.execute("COMMIT")
    finally:
        db.close()
    full = checkpointed_size(path)
    return {"targets": TARGETS, "bytes_empty": empty, "bytes": full,
            "per_target_bytes": round((full - empty) / TARGETS)}


# ---- report ----

def markdown(doc):
    c = doc.get("connections", {})
    L = ["# Sizes to plan for", "",
         "`%s` (%s, %d cores, mosquitto %s). bench/sizes.py says how each figure is taken." % (
             doc["command"], doc["date"], doc["cores"], doc["mosquitto"]), "",
         "| what | figure | from |", "|---|---|---|"]

    def row(what, fig, frm):
        L.append("| %s | %s | %s |" % (what, fig, frm))
    for key in ("v4", "v5"):
        r = c.get(key)
        if not r or "error" in (r or {}):
            row("broker memory per idle connection (%s)" % key, "not measured", (r or {}).get("error", ""))
            continue
        p = r["points"]
        # The figure is the growth from the first count to the second: the
        # PSS of a broker with no connection moves by a few MiB with what
        # else on the machine maps the same libraries.
        row("broker memory per idle logged-in connection, %s" % r["protocol"],
            "%.1f KiB" % r["per_conn_kb_marginal"],
            "PSS of broker + loader from %s to %s connections (%s; %.1f KiB a connection from none)" % (
                format(p[-2]["connections"], ","), format(p[-1]["connections"], ","), ", ".join(
                    "%s: %.1f MiB" % (format(x["connections"], ","), x["pss_kb"] / 1024) for x in p),
                r["per_conn_kb"]))
    u = doc.get("users", {})
    if "error" in u or not u:
        row("memory per user", "not measured", u.get("error", ""))
    else:
        row("broker memory per user (plugin snapshot)", "%d bytes" % u["per_user_bytes"],
            "%s users: PSS %.1f MiB, empty store %.1f MiB" % (
                format(u["users"], ","), u["pss_kb_users"] / 1024, u["pss_kb_empty"] / 1024))
        row("broker memory per room membership", "%d bytes" % u["per_membership_bytes"],
            "%s rooms of %d: %s memberships" % (format(u["rooms"], ","), ROOM_MEMBERS,
                                                format(u["memberships"], ",")))
        row("%s users + %s rooms + %s memberships" % (format(u["users"], ","), format(u["rooms"], ","),
                                                      format(u["memberships"], ",")),
            "%.1f MB over an empty store" % (u["users_rooms_mb"] * 1.048576),
            "loaded in %.2f s (broker start to listening)" % u["start_s_users_rooms"])
    a = doc.get("archiver", {})
    if "error" in a or not a:
        row("archiver memory", "not measured", a.get("error", ""))
    else:
        row("archiver RSS, idle", "%.1f MiB" % (a["idle_rss_kb"] / 1024), "after start, connected")
        row("archiver RSS, storing", "%.1f MiB peak, %.1f MiB after" % (
            a["peak_rss_kb"] / 1024, a["after_rss_kb"] / 1024),
            "%s messages queued while it was stopped, stored in %.1f s" % (format(a["messages"], ","),
                                                                           a["drain_s"]))
    k = doc.get("disk", {})
    if "error" in k or not k:
        row("disk per million messages", "not measured", k.get("error", ""))
    else:
        share = ", ".join("%s %d%%" % (n, round(v * 100)) for n, v in list(k["share"].items())[:6])
        row("disk per million messages (archive.db, indexes and search index)",
            "%.0f MB (%d bytes a message)" % (k["per_million_mb"], k["per_message_bytes"]),
            "archives of %s and %s messages (%.0f MB and %.0f MB), checkpointed: the difference"
            " scaled to 1,000,000; text bodies %.0f bytes on average; %s" % (
                format(k["step"], ","), format(2 * k["step"], ","), k["bytes_step1"] / 1e6,
                k["bytes_step2"] / 1e6, k["avg_text_body_bytes"], share))
    p = doc.get("push", {})
    if "error" in p or not p:
        row("push.db per target", "not measured", p.get("error", ""))
    else:
        row("push.db per Web Push target", "%d bytes" % p["per_target_bytes"],
            "%s targets, checkpointed" % format(p["targets"], ","))
    return "\n".join(L) + "\n\n"


def run(tmp):
    """Every measurement; one that fails is reported with its reason."""
    require_built(PLUGIN)
    require_built(ARCHIVER)
    require_built(BENCH)
    doc = {}
    steps = [("connections", None), ("users", users), ("archiver", archiver), ("disk", disk),
             ("push", push)]
    for name, fn in steps:
        log("sizes: %s" % name)
        if name == "connections":
            doc[name] = {}
            for v in (4, 5):
                try:
                    doc[name]["v%d" % v] = connections(tmp, v)
                except (Unavailable, OSError) as e:
                    doc[name]["v%d" % v] = {"error": scrub(e, tmp)}
            continue
        try:
            doc[name] = fn(tmp)
        except (Unavailable, OSError, subprocess.SubprocessError) as e:
            doc[name] = {"error": scrub(e, tmp)}
    return doc


def main():
    rc = prepare()
    if rc:
        return rc
    t0 = time.monotonic()
    doc = run_doc("ONLY=sizes make bench")
    tmp = tempfile.mkdtemp(prefix="mqchat-sizes-")
    try:
        doc.update(run(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc["total_s"] = round(time.monotonic() - t0, 1)
    md = markdown(doc) + "Total run time: %.0f s.\n" % doc["total_s"]
    write_results(doc, md, "sizes")
    print(md)
    bad = [k for k in ("users", "archiver", "disk", "push") if "error" in doc.get(k, {})] + [
        k for k, v in doc.get("connections", {}).items() if "error" in v]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
