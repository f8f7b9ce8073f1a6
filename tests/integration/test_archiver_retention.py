"""Expiry: messages older than the retention are deleted in small batches
(a room's own retention_days wins over the global one) while ingest goes on."""
import json
import os
import sqlite3
import time

import harness
from archiver_util import DAY_MS, arch_env, inbox, publish_many  # noqa: F401 (fixture)


def insert(env, rows):
    """rows: (sender, recipient, room, id, server_ts); written like the daemon
    writes them (conv key, status sent, a dedup hash) and, like the daemon,
    in arrival order: seq order is server_ts order."""
    rows = sorted(rows, key=lambda r: r[4])
    db = sqlite3.connect(os.path.join(env.datadir, "archive.db"), isolation_level=None, timeout=10)
    try:
        db.execute("BEGIN IMMEDIATE")
        for i, (s, r, room, mid, ts) in enumerate(rows):
            conv = "r:" + room if room else "d:%s|%s" % tuple(sorted((s, r)))
            db.execute("INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts, server_ts,"
                       " status, idh) VALUES(?,?,?,?,'text',?,'old',NULL,?,'sent',?)",
                       (s, r, room, conv, mid, ts, hash((s, mid)) & 0x7fffffffffffffff))
        db.execute("COMMIT")
    finally:
        db.close()


def ids(env):
    return set(r[0] for r in env.rows("SELECT id FROM messages"))


def test_global_and_room_retention(arch_env):
    env = arch_env(users=["alice", "bob"], rooms={"short": ["alice"], "long": ["alice"], "plain": ["alice"]},
                   args=["--expiry-interval", "1", "--retention", "30"])
    env.store.sql("UPDATE rooms SET retention_days=1 WHERE name='short'")
    env.store.sql("UPDATE rooms SET retention_days=365 WHERE name='long'")
    now = int(time.time() * 1000)
    insert(env, [
        ("alice", "bob", None, "dm-old", now - 31 * DAY_MS),
        ("alice", "bob", None, "dm-new", now - 29 * DAY_MS),
        ("alice", None, "short", "short-old", now - 2 * DAY_MS),
        ("alice", None, "short", "short-new", now - DAY_MS // 2),
        ("alice", None, "long", "long-kept", now - 40 * DAY_MS),
        ("alice", None, "long", "long-old", now - 400 * DAY_MS),
        ("alice", None, "plain", "plain-old", now - 31 * DAY_MS),
    ])
    harness.wait_for(lambda: ids(env) == {"dm-new", "short-new", "long-kept"}, 10,
                     what="expiry")
    env.arch.wait_log("past their retention deleted")


def test_large_backlog_in_batches_while_ingesting(arch_env):
    env = arch_env(users=["alice", "bob"], args=["--expiry-interval", "1", "--retention", "1"])
    alice = env.user("alice")
    env.arch.stop()
    now = int(time.time() * 1000)
    insert(env, [("alice", "bob", None, "old%05d" % i, now - 3 * DAY_MS) for i in range(5000)])
    env.arch.start()
    sent = publish_many(alice, inbox("bob", "alice"), 300, prefix="live")
    harness.wait_for(lambda: ids(env) == set(sent), 20, what="backlog expired, live kept")
    env.arch.wait_log("expiry: 5000 message(s)")


def test_retention_zero_keeps_everything(arch_env):
    env = arch_env(users=["alice", "bob"], args=["--expiry-interval", "1", "--retention", "0"])
    now = int(time.time() * 1000)
    insert(env, [("alice", "bob", None, "ancient", now - 3000 * DAY_MS)])
    env.arch.wait_log("expiry: pass done", n=2)
    assert ids(env) == {"ancient"}
