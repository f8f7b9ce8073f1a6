"""The user store made read-only (immutable) or locked by another writer
while everything runs: logins of existing users, first logins included,
keep working on the snapshot the plugin holds; the CLI says why it cannot
write (status 1) and changes nothing; the archiver's RPC answers; once the
store is writable again, changes flow as usual. (Deleted, corrupted and
replaced stores: test_plugin_store.py.)"""
import sqlite3
import subprocess
import time

import pytest

from archiver_util import Rpc, arch_env  # noqa: F401 (fixture)
from cli_util import RUNTIME, cli
from plugin_util import RELOAD_BOUND, envelope, expect_msg, login, subscribe_ok, wait_login

PW = "password-xxxx"
NEW_PW = "new-user-password"
BUSY = {"MQCHAT_BUSY_TIMEOUT_MS": "300"}


def chattr(flag, path):
    try:
        return subprocess.run(["chattr", flag, path], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


def chatting(alice, bob, what):
    m = envelope("still chatting " + what)
    alice.publish("chat/inbox/bob/alice", m)
    expect_msg(bob, "chat/inbox/bob/alice", m)


def start_chat(env):
    alice = env.user("alice")
    bob = env.user("bob")
    subscribe_ok(bob, "chat/inbox/bob/#")
    return alice, bob


def add_user_fails(env, name, err):
    r = cli(env.datadir, "user", "add", name, "--password-stdin", stdin=NEW_PW + "\n", env=BUSY)
    assert r.rc == RUNTIME, r
    assert r.out == "" and r.err.startswith("Error: ") and err in r.err, r
    return r


def user_exists(env, name):
    db = sqlite3.connect("file:%s?mode=ro" % env.store.path, uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM users WHERE name=?", (name,)).fetchone()[0] == 1
    finally:
        db.close()


def still_serving(env, clients, alice, bob, what):
    chatting(alice, bob, what)
    # a first login (no cached credential): verified against the snapshot
    login(clients, env.broker, "carol", PW).close()
    # the archiver's RPC only reads auth.db for whois
    ans = Rpc(alice, "alice").call("whois", user="bob")
    assert ans["ok"] and ans["user"] == "bob", ans
    assert env.broker.proc.poll() is None and env.arch.running()


def test_store_immutable_while_running(arch_env, clients):
    env = arch_env(users=["alice", "bob", "carol"], rooms={"team": ["alice", "bob"]})
    alice, bob = start_chat(env)
    path = env.store.path
    if not chattr("+i", path):
        pytest.skip("cannot make auth.db immutable here (chattr +i; root ignores file modes)")
    try:
        add_user_fails(env, "dave", "Error: ")  # "adding the user: database error"
        assert not user_exists(env, "dave")
        # The archiver opened auth.db before it became immutable: its
        # writes still go to the WAL (the immutable flag is checked at
        # open). Either way it answers, and what it answered holds.
        ans = Rpc(alice, "alice").call("passwd", old=PW, new="another-password")
        assert ans.get("ok") is True or ans.get("error") == "internal", ans
        alice_pw = "another-password" if ans["ok"] else PW
        print("passwd RPC with auth.db immutable: %r" % ans)
        time.sleep(0.6)     # a few reload polls against the immutable file
        still_serving(env, clients, alice, bob, "with auth.db immutable")
    finally:
        chattr("-i", path)
    # writable again: the CLI works and the plugin picks it up
    r = cli(env.datadir, "user", "add", "dave", "--password-stdin", stdin=NEW_PW + "\n")
    assert r.rc == 0, r
    wait_login(clients, env.broker, "dave", NEW_PW, timeout=RELOAD_BOUND)[0].close()
    wait_login(clients, env.broker, "alice", alice_pw, client_id="alice@2")[0].close()
    assert env.store.sql("PRAGMA integrity_check") == [("ok",)]


def test_store_locked_while_running(arch_env, clients):
    env = arch_env(users=["alice", "bob", "carol"], rooms={"team": ["alice", "bob"]})
    alice, bob = start_chat(env)
    db = sqlite3.connect(env.store.path, isolation_level=None, timeout=10)
    t0 = time.monotonic()
    try:
        db.execute("BEGIN EXCLUSIVE")
        db.execute("UPDATE users SET nick='held' WHERE name='alice'")
        r = add_user_fails(env, "dave", "Error: database is locked")
        assert r.err.splitlines()[0] == "Error: database is locked", r
        assert r.elapsed < 5, "the CLI waited %.1f s for a 0.3 s busy timeout" % r.elapsed
        still_serving(env, clients, alice, bob, "with auth.db locked")
        # the lock is held a few seconds: the scenario itself
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        chatting(alice, bob, "3 s into the lock")
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert not user_exists(env, "dave")
    r = cli(env.datadir, "user", "add", "dave", "--password-stdin", stdin=NEW_PW + "\n")
    assert r.rc == 0, r
    wait_login(clients, env.broker, "dave", NEW_PW, timeout=RELOAD_BOUND)[0].close()
    assert env.arch.running()
    assert env.store.sql("SELECT nick FROM users WHERE name='alice'") == [("alice",)]
