"""Self-registration through the archiver: chat/register/<clientid>/req."""
import json
import secrets
import threading
import time

import pytest

import harness
from archiver_util import arch_env  # noqa: F401 (fixture)


class Reg:
    """A _register connection with its response subscription."""

    def __init__(self, env, v5=False):
        self.cid = "_register@" + secrets.token_hex(6)
        self.c = env.clients(env.broker, "_register", "x", client_id=self.cid, v5=v5)
        assert self.c.connect() == 0
        assert self.c.subscribe("chat/register/%s/resp" % self.cid) in (0, 1)

    def send(self, payload):
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.c.publish("chat/register/%s/req" % self.cid, payload)

    def answer(self, timeout=harness.DEFAULT_TIMEOUT):
        return json.loads(self.c.get(timeout).payload)

    def call(self, **req):
        req.setdefault("id", secrets.token_hex(4))
        self.send(req)
        ans = self.answer()
        assert ans["id"] == req["id"]
        return ans


def login(env, user, pw):
    c = harness.Client(env.broker.port, user, pw)
    try:
        return c.connect()
    finally:
        c.close()


def test_open_registration(arch_env):
    env = arch_env(registration="open", users=["bob"])
    r = Reg(env)
    ans = r.call(user="alice", password="secret-pw-1", nick="Alice \u00c5")
    assert ans["ok"] is True and ans["user"] == "alice"
    assert env.store.sql("SELECT kind, nick, enabled FROM users WHERE name='alice'") == [
        ("user", "Alice \u00c5", 1)]
    harness.wait_for(lambda: login(env, "alice", "secret-pw-1") == 0, 5, what="new account logs in")
    assert r.call(user="alice", password="secret-pw-2")["error"] == "already_registered"
    r = Reg(env)   # this client id has made its account
    assert r.call(user="alice", password="secret-pw-2")["error"] == "taken"
    assert r.call(user="bob", password="secret-pw-2")["error"] == "taken"
    for bad in ("Alice", "a/b", "_register", "", "x" * 33, 5):
        assert r.call(user=bad, password="secret-pw-1")["error"] == "invalid_name", bad
    assert r.call(user="carol", password="short")["error"] == "weak_password"
    assert r.call(user="carol", password=12345678)["error"] == "bad_request"
    assert r.call(user="carol", password="secret-pw-1", nick="")["error"] == "invalid_nick"
    assert r.call(user="carol", password="secret-pw-1", nick=5)["error"] == "bad_request"
    # nick defaults to the name (a new client id: each makes one account)
    assert Reg(env).call(user="dave", password="secret-pw-1")["ok"] is True
    assert env.store.sql("SELECT nick FROM users WHERE name='dave'") == [("dave",)]
    # malformed requests (the plugin already refuses what is not a JSON
    # object): answered with id null
    for raw in (json.dumps({"user": "x", "password": "secret-pw-1"}).encode(),
                json.dumps({"id": 5, "user": "x"}).encode(), json.dumps({"id": "z" * 200}).encode()):
        r.send(raw)
        ans = r.answer()
        assert ans["ok"] is False and ans["error"] == "bad_request" and ans["id"] is None, raw[:40]


def test_closed_when_archiver_says_off(arch_env):
    env = arch_env(registration="open", args=["--registration", "off"])
    r = Reg(env)
    assert r.call(user="alice", password="secret-pw-1")["error"] == "closed"
    assert env.store.sql("SELECT count(*) FROM users WHERE name='alice'") == [(0,)]


def test_invite_registration(arch_env):
    env = arch_env(registration="invite")
    now = int(time.time() * 1000)
    env.store.sql("INSERT INTO invites(code, uses_left, expires, created) VALUES('good', 1, 0, ?)", now)
    env.store.sql("INSERT INTO invites(code, uses_left, expires, created) VALUES('old', 5, ?, ?)",
                  now - 1000, now - 5000)
    r = Reg(env)
    assert r.call(user="alice", password="secret-pw-1")["error"] == "invite_required"
    assert r.call(user="alice", password="secret-pw-1", invite="nope")["error"] == "invite_invalid"
    assert r.call(user="alice", password="secret-pw-1", invite="old")["error"] == "invite_invalid"
    # a taken name does not spend the code
    assert r.call(user="archiver", password="secret-pw-1", invite="good")["error"] == "taken"
    assert env.store.sql("SELECT uses_left FROM invites WHERE code='good'") == [(1,)]
    assert r.call(user="alice", password="secret-pw-1", invite="good")["ok"] is True
    assert Reg(env).call(user="bob", password="secret-pw-1", invite="good")["error"] == "invite_invalid"
    assert env.store.sql("SELECT count(*) FROM users WHERE name='bob'") == [(0,)]


def test_race_one_name_two_clients(arch_env):
    env = arch_env(registration="open")
    regs = [Reg(env) for _ in range(2)]
    for i in range(3):
        name = "racer%d" % i
        for r in regs:
            r.send({"id": "q", "user": name, "password": "secret-pw-%d" % i})
        got = [regs[0].answer(), regs[1].answer()]
        oks = [a for a in got if a["ok"]]
        assert len(oks) == 1, got
        assert [a["error"] for a in got if not a["ok"]] == ["taken"]
        assert env.store.sql("SELECT count(*) FROM users WHERE name=?", name) == [(1,)]
        # the winner's client id is spent; a new one races the loser next
        if i < 2:
            regs = [r for r, a in zip(regs, got) if not a["ok"]] + [Reg(env)]


def test_one_account_per_client_id(arch_env):
    """One `_register` connection made 6 accounts (issue 14): a client id
    makes one, and the next request gets `already_registered` and changes
    nothing."""
    env = arch_env(registration="open")
    r = Reg(env)
    assert r.call(user="alice", password="secret-pw-1")["ok"] is True
    for i, name in enumerate(["bob", "carol", "dave", "erin", "frank"]):
        ans = r.call(user=name, password="secret-pw-%d" % i)
        assert ans["ok"] is False and ans["error"] == "already_registered", ans
    assert env.store.sql("SELECT name FROM users WHERE kind='user' ORDER BY name") == [("alice",)]
    # a failed request does not spend a client id
    r2 = Reg(env)
    assert r2.call(user="alice", password="secret-pw-1")["error"] == "taken"
    assert r2.call(user="Bad Name", password="secret-pw-1")["error"] == "invalid_name"
    assert r2.call(user="bob", password="secret-pw-1")["ok"] is True
    assert r2.call(user="carol", password="secret-pw-1")["error"] == "already_registered"


def test_invalid_requests_do_not_spend_the_budget(arch_env):
    """Invalid registrations used up the global budget so a real one was
    refused `rate_limited` (issue 14): only a request that would make an
    account takes a token."""
    env = arch_env(registration="open", users=["bob"], args=["--registration-rate", "1"])  # bursts of 2
    r = Reg(env)
    bad = [dict(user="Bad Name", password="secret-pw-1"), dict(user="carol", password="short"),
           dict(user="bob", password="secret-pw-1"), dict(user="carol", password=12345678),
           dict(user="carol", password="secret-pw-1", nick="")]
    want = ["invalid_name", "weak_password", "taken", "bad_request", "invalid_nick"]
    for _ in range(6):
        assert [r.call(**b)["error"] for b in bad] == want
    assert env.store.sql("SELECT count(*) FROM users WHERE name='carol'") == [(0,)]
    # the whole burst is still there for real requests ...
    assert r.call(user="carol", password="secret-pw-1")["ok"] is True
    assert Reg(env).call(user="dave", password="secret-pw-1")["ok"] is True
    # ... and past it, the global limit holds
    ans = Reg(env).call(user="erin", password="secret-pw-1")
    assert ans["ok"] is False and ans["error"] == "rate_limited", ans
    assert env.store.sql("SELECT count(*) FROM users WHERE name='erin'") == [(0,)]
