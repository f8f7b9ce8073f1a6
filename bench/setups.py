"""setups.py - the five broker setups: their users, credentials and configuration.

Each setup_X(d, port) writes what its broker needs into folder d and returns
the lines of its mosquitto.conf; it raises Unavailable when a part is not
built or does not work. All setups know the same users with the same
password; (b) and (c) hash at their own default cost, (d) and (e) at
mqchat's.
"""
import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import time

from procs import Unavailable, require_built
from settings import (ARCHIVER, ASKER, ASKER_PEERS, DYNSEC, ITERATIONS, MEMBERS, NPAIRS_USERS,
                      PASSWORD, PLUGIN, ROOM, SCHEMA, SEND_LIMIT_OPTS, TOKEN_SEED)
from topics import topic


def users():
    """s0.., r0.. (pairs and logins), then m0..m99 (the room)."""
    for i in range(NPAIRS_USERS):
        yield "s%d" % i
        yield "r%d" % i
    for i in range(MEMBERS):
        yield "m%d" % i


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


def write_userdb(path, names, rooms=(), members=(), created=None):
    """An auth.db in common/userdb_schema.sql: names is (user, pwhash) pairs,
    members (room, user) pairs; accounts and rooms created at created (ms;
    None: now)."""
    with open(SCHEMA) as f:
        schema = f.read()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    now = int(time.time() * 1000) if created is None else created
    db.execute("BEGIN")
    db.executemany("INSERT OR IGNORE INTO users(name, kind, nick, pwhash, enabled, created)"
                   " VALUES(?,?,?,?,1,?)", ((n, "user", n, h, now) for n, h in names))
    db.executemany("INSERT OR IGNORE INTO rooms(name, retention_days, created) VALUES(?,0,?)",
                   ((r, now) for r in rooms))
    db.executemany("INSERT OR IGNORE INTO members(room, user) VALUES(?,?)", members)
    db.execute("COMMIT")
    db.close()


def bench_token(name):
    """The device token mqchat-bench --token-seed TOKEN_SEED derives for
    name (bench/conn.c token_of): base64url of SHA-256("<seed>:<name>")."""
    raw = hashlib.sha256(("%s:%s" % (TOKEN_SEED, name)).encode()).digest()
    return "mqt1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def add_bench_devices(path, names):
    """Give each of names the device "bench" with its bench_token: the
    store keeps the token's SHA-256 only."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.executemany("INSERT OR REPLACE INTO devices(user, device, token_sha256, created, last_seen)"
                   " VALUES(?, 'bench', ?, ?, 0)",
                   ((n, hashlib.sha256(bench_token(n).encode()).hexdigest(), now) for n in names))
    db.execute("COMMIT")
    db.close()


def mqchat_userdb(path):
    write_userdb(path, [(n, mqchat_hash(n)) for n in users()], [ROOM],
                 [(ROOM, "m%d" % i) for i in range(MEMBERS)])


def rpc_userdb(path):
    """The accounts of the prefilled archive (bench/prefill.c): those of
    mqchat_userdb and the asker ASKER with its ASKER_PEERS peers
    c1..c<ASKER_PEERS>, the asker a member of ROOM too. All created ten
    days ago: before every prefilled message (two days at most), which
    history, sync and the rest answer only if stored since then."""
    ago = int(time.time() * 1000) - 10 * 86400 * 1000
    peers = ["c%d" % i for i in range(1, ASKER_PEERS + 1)]
    h = mqchat_hash(ASKER)
    write_userdb(path, [(n, mqchat_hash(n)) for n in users()] + [(n, h) for n in [ASKER] + peers],
                 [ROOM], [(ROOM, "m%d" % i) for i in range(MEMBERS)] + [(ROOM, ASKER)], ago)


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


def mqchat_conf(d, port, db):
    # per_listener_settings must come before the listener it applies to.
    return ["per_listener_settings false"] + conf_common(d, port) + [
        "allow_anonymous false", "plugin " + PLUGIN, "plugin_opt_dbpath " + db,
        "plugin_opt_registration off"] + SEND_LIMIT_OPTS


def archiver_init(d):
    """`mqchat-archiver init` on data folder d."""
    require_built(PLUGIN)
    require_built(ARCHIVER)
    r = subprocess.run([ARCHIVER, "--data", d, "init"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(os.path.join(d, "archive.db")):
        raise Unavailable("mqchat-archiver init failed: %s" % (r.stderr.strip()[-200:] or r.returncode))


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
        f.write("# the inbox rule of the mqchat plugin, as %%u patterns\n"
                "pattern write %s\n"
                "pattern read %s\n"
                "# one room: everybody reads it, writes as themselves\n"
                "pattern write %s\n"
                "pattern read %s\n"
                % (topic("inbox", "+", "%u"), topic("inbox", "%u", "#"),
                   topic("room", ROOM, "%u"), topic("room", ROOM, "#")))
    return conf_common(d, port) + ["allow_anonymous false", "password_file " + pw,
                                   "acl_file " + acl]


def setup_c(d, port):
    # dynamic-security in 2.0 has no %u: one role per user with its own topics.
    clients, roles = [], []
    for n in users():
        salt = os.urandom(12)
        key = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 101, 64)
        rl = [{"rolename": "u_" + n}]
        acls = [{"acltype": "publishClientSend", "topic": topic("inbox", "+", n), "allow": True},
                {"acltype": "subscribePattern", "topic": topic("inbox", n, "#"), "allow": True},
                {"acltype": "publishClientReceive", "topic": topic("inbox", n, "#"), "allow": True}]
        if n.startswith("m"):
            acls.append({"acltype": "publishClientSend", "topic": topic("room", ROOM, n),
                         "allow": True})
            rl.append({"rolename": "room_" + ROOM})
        roles.append({"rolename": "u_" + n, "acls": acls})
        clients.append({"username": n, "password": base64.b64encode(key).decode(),
                        "salt": base64.b64encode(salt).decode(), "iterations": 101,
                        "roles": rl})
    roles.append({"rolename": "room_" + ROOM, "acls": [
        {"acltype": "subscribePattern", "topic": topic("room", ROOM, "#"), "allow": True},
        {"acltype": "publishClientReceive", "topic": topic("room", ROOM, "#"), "allow": True}]})
    cfg = {"clients": clients, "roles": roles, "groups": [],
           "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                "subscribe": False, "unsubscribe": True}}
    path = os.path.join(d, "dynamic-security.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return conf_common(d, port) + ["allow_anonymous false", "plugin " + DYNSEC,
                                   "plugin_opt_config_file " + path]


def setup_d(d, port):
    require_built(PLUGIN)
    db = os.path.join(d, "auth.db")
    mqchat_userdb(db)
    return mqchat_conf(d, port, db)


def setup_e(d, port):
    """(d) on a data folder the archiver has initialised."""
    archiver_init(d)
    return setup_d(d, port)


def rpc_data(d):
    """Data folder d for (e) with rpc_userdb's accounts, for the prefilled
    archive; its auth.db's path. The broker's configuration comes after the
    fill (mqchat_conf): a port taken before a minute of filling may be
    someone else's by then."""
    archiver_init(d)
    require_built(PLUGIN)
    db = os.path.join(d, "auth.db")
    rpc_userdb(db)
    return db


SETUP_FN = {"a": setup_a, "b": setup_b, "c": setup_c, "d": setup_d, "e": setup_e}
