"""Device tokens end to end (docs/PROTOCOL.md, "Device tokens"): the
archiver's device_token, devices, device_revoke and passwd revoke_devices
against a real broker with the real plugin, the plugin's device login
reports stored as last_seen, and the operators' `user devices` and `user
revoke`.

Tokens a test needs but does not ask for (the 32 of too_many_devices, the
devices a revocation takes) are written straight into auth.db as the store
keeps them (the token's SHA-256 in hex): asking costs a password check,
which the throttle spaces a second apart. Malformed chat/seen reports are
tested in tests/unit/test_archiver_seen.c: the broker refuses that topic to
every client."""
import base64
import hashlib
import json
import os
import re
import secrets
import time

import pytest

import harness
from archiver_util import Rpc, arch_env, PASSWORD  # noqa: F401 (fixture)
from cli_util import EXISTS, INVALID, NOTFOUND, USAGE, cli, fails, ok

TOKEN_RE = re.compile(r"^mqt1\.[A-Za-z0-9_-]{43}$")


@pytest.fixture
def env(arch_env):
    e = arch_env(users=["alice", "bob"], broker_kw={"plugin_opts": {"seen_report_s": 1}})
    e.alice = e.user("alice", client_id="alice@rpc")
    e.rpc = Rpc(e.alice, "alice")
    return e


def make_token():
    return "mqt1." + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def provision(env, user, device, created=None):
    """Give user's device a token straight in auth.db; returns the token."""
    token = make_token()
    env.store.sql("INSERT OR REPLACE INTO devices(user, device, token_sha256, created, last_seen)"
                  " VALUES(?,?,?,?,0)", user, device, digest(token),
                  created or int(time.time() * 1000))
    return token


def devices_rows(env, user="alice"):
    return env.store.sql("SELECT device, token_sha256, created, last_seen FROM devices WHERE user=?"
                         " ORDER BY device", user)


def pwhash(env, user="alice"):
    return env.store.sql("SELECT pwhash FROM users WHERE name=?", user)[0][0]


def try_login(env, user, password, client_id):
    """Connect; returns (CONNACK code, client), the client closed if refused."""
    c = env.clients(env.broker, user, password, client_id=client_id)
    code = c.connect()
    if code != 0:
        c.close()
    return code, c


def login(env, user, password, client_id, timeout=5):
    """Log in, retrying while the plugin has not taken a change yet."""
    last = {}

    def once():
        last["r"] = try_login(env, user, password, client_id)
        return last["r"][0] == 0
    harness.wait_for(once, timeout, interval=0.1, what="login of %s as %s" % (client_id, user))
    return last["r"][1]


def refused(env, user, password, client_id):
    return try_login(env, user, password, client_id)[0] != 0


def ask(rpc, op, timeout=15, **args):
    """Call op, sending it again after retry_ms while the password check
    is throttled (a right password locks the next check for a second)."""
    deadline = time.monotonic() + timeout
    while True:
        ans = rpc.call(op, **args)
        if ans.get("error") != "rate_limited":
            return ans
        assert time.monotonic() < deadline, ans
        time.sleep(min(ans["retry_ms"], 2000) / 1000.0)


def closed_within(client, since, limit=1.0):
    """The client's connection was closed by since + limit (monotonic)."""
    assert client.disconnected.wait(max(0.0, since + limit - time.monotonic()) + 0.001), \
        "connection %s still open %.1f s after the answer" % (client.client_id, limit)


def still_open(client):
    client.barrier()
    assert not client.disconnected.is_set(), client.client_id


# ---- device_token and logins ----

def test_a_token_logs_in_as_its_device_only(env):
    phone = login(env, "alice", PASSWORD, "alice@phone")
    prpc = Rpc(phone, "alice")
    t0 = int(time.time() * 1000)
    ans = ask(prpc, "device_token", device="phone", password=PASSWORD)
    assert set(ans) == {"id", "ok", "device", "token", "created"}, ans
    assert ans["ok"] is True and ans["device"] == "phone", ans
    assert TOKEN_RE.match(ans["token"]), ans
    assert t0 - 1000 <= ans["created"] <= int(time.time() * 1000) + 1000, ans
    token = ans["token"]
    # The store keeps its SHA-256 only, never the token.
    rows = devices_rows(env)
    assert [(r[0], r[1], r[2]) for r in rows] == [("phone", digest(token), ans["created"])]
    with open(os.path.join(env.datadir, "auth.db"), "rb") as f:
        assert token.encode() not in f.read()
    # In force when answered: no retry needed.
    code, c = try_login(env, "alice", token, "alice@phone")
    assert code == 0
    # Its own client id only.
    assert refused(env, "alice", token, "alice@laptop")
    assert refused(env, "alice", token, "alice")
    assert refused(env, "bob", token, "bob@phone")
    assert refused(env, "bob", token, "alice@phone")
    # The password still works for the device too.
    c.close()
    assert try_login(env, "alice", PASSWORD, "alice@phone2")[0] == 0


def test_asking_again_replaces_the_token_and_closes_the_old_ones_connection(env):
    first = ask(env.rpc, "device_token", device="phone", password=PASSWORD)["token"]
    c1 = login(env, "alice", first, "alice@phone")
    ans = ask(env.rpc, "device_token", device="phone", password=PASSWORD)
    answered = time.monotonic()
    second = ans["token"]
    assert ans["ok"] is True and second != first
    closed_within(c1, answered)
    assert refused(env, "alice", first, "alice@phone")
    assert try_login(env, "alice", second, "alice@phone")[0] == 0
    assert [r[1] for r in devices_rows(env)] == [digest(second)]


def test_devices_lists_them_and_last_seen_follows_logins(env):
    a = ask(env.rpc, "device_token", device="phone", password=PASSWORD)
    b = ask(env.rpc, "device_token", device="laptop", password=PASSWORD)
    ans = env.rpc.call("devices")
    assert ans["ok"] is True
    listed = ans["devices"]
    assert [d["device"] for d in listed] == ["laptop", "phone"], ans
    assert {d["device"]: d["created"] for d in listed} == {"phone": a["created"], "laptop": b["created"]}
    for d in listed:
        assert set(d) == {"device", "created", "last_seen"}, d
        assert d["last_seen"] == 0, d   # not seen since the token was issued
    login(env, "alice", a["token"], "alice@phone")
    t_login = int(time.time() * 1000)

    def seen():
        d = {x["device"]: x for x in env.rpc.call("devices")["devices"]}
        return d["phone"]["last_seen"] > a["created"] and d
    # Reported every second (seen_report_s 1), stored by the archiver.
    d = harness.wait_for(seen, 10, interval=0.2, what="phone's last_seen")
    assert a["created"] < d["phone"]["last_seen"] <= t_login + 1000, d
    assert d["laptop"]["last_seen"] == 0, d
    # bob sees only his own (none).
    ans = Rpc(env.user("bob"), "bob").call("devices")
    assert ans == {"id": ans["id"], "ok": True, "devices": []}, ans


# ---- device_revoke ----

def test_revoke_one_closes_it_within_a_second(env):
    token = provision(env, "alice", "phone")
    provision(env, "alice", "laptop")
    c = login(env, "alice", token, "alice@phone")
    ans = env.rpc.call("device_revoke", device="phone")
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 1}, ans
    closed_within(c, answered)
    assert refused(env, "alice", token, "alice@phone")
    assert [r[0] for r in devices_rows(env)] == ["laptop"]
    # A revoked device logs in with the password again.
    assert try_login(env, "alice", PASSWORD, "alice@phone")[0] == 0


def test_revoke_others_closes_password_logins_of_token_devices_too(env):
    keep = provision(env, "alice", "phone")
    laptop = provision(env, "alice", "laptop")
    provision(env, "alice", "tablet")
    kept = login(env, "alice", keep, "alice@phone")
    by_token = login(env, "alice", laptop, "alice@laptop")
    # tablet holds a token but logs in with the password: closed all the same.
    by_password = login(env, "alice", PASSWORD, "alice@tablet")
    ans = env.rpc.call("device_revoke", others="phone")
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 2}, ans
    closed_within(by_token, answered)
    closed_within(by_password, answered)
    still_open(kept)
    still_open(env.alice)     # alice@rpc never held a token
    assert refused(env, "alice", laptop, "alice@laptop")
    assert [r[0] for r in devices_rows(env)] == ["phone"]


def test_revoke_closes_the_password_login_that_asked_for_the_token(env):
    """An app logs in with the password, then asks for its device's token
    on that connection (PROTOCOL "Writing an app", step 2): revoking the
    token closes that connection too, though it logged in without one."""
    web = login(env, "alice", PASSWORD, "alice@web")
    ans = ask(Rpc(web, "alice"), "device_token", device="web", password=PASSWORD)
    assert ans["ok"] is True, ans
    still_open(web)
    # Another device's token coming and going leaves it alone.
    provision(env, "alice", "phone")
    assert env.rpc.call("device_revoke", device="phone")["ok"] is True
    still_open(web)
    ans = env.rpc.call("device_revoke", others="rpc")
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 1}, ans
    closed_within(web, answered)
    still_open(env.alice)     # alice@rpc never held a token


def test_revoke_all(env):
    tokens = {d: provision(env, "alice", d) for d in ("phone", "laptop")}
    conns = [login(env, "alice", t, "alice@" + d) for d, t in tokens.items()]
    provision(env, "bob", "phone")
    ans = env.rpc.call("device_revoke", all=True)
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 2}, ans
    for c in conns:
        closed_within(c, answered)
    for d, t in tokens.items():
        assert refused(env, "alice", t, "alice@" + d)
    assert devices_rows(env) == []
    assert [r[0] for r in devices_rows(env, "bob")] == ["phone"]    # others' stay
    ans = env.rpc.call("device_revoke", all=True)
    assert ans == {"id": ans["id"], "ok": True, "revoked": 0}, ans


# ---- passwd revoke_devices ----

def test_passwd_revokes_others_or_all(env):
    keep = provision(env, "alice", "phone")
    other = provision(env, "alice", "laptop")
    kept = login(env, "alice", keep, "alice@phone")
    gone = login(env, "alice", other, "alice@laptop")
    ans = ask(env.rpc, "passwd", old=PASSWORD, new="alice-secret-2", revoke_devices="others", device="phone")
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 1}, ans
    closed_within(gone, answered)
    still_open(kept)
    assert refused(env, "alice", other, "alice@laptop")
    assert try_login(env, "alice", "alice-secret-2", "alice@new")[0] == 0
    assert refused(env, "alice", PASSWORD, "alice@old")
    # "all", and an answer without revoke_devices has no "revoked".
    ans = ask(env.rpc, "passwd", old="alice-secret-2", new="alice-secret-3", revoke_devices="all")
    answered = time.monotonic()
    assert ans == {"id": ans["id"], "ok": True, "revoked": 1}, ans
    closed_within(kept, answered)
    assert devices_rows(env) == []
    ans = ask(env.rpc, "passwd", old="alice-secret-3", new="alice-secret-4")
    assert ans == {"id": ans["id"], "ok": True}, ans


# ---- the throttle ----

def test_a_token_gets_in_while_the_password_is_throttled(env):
    token = provision(env, "alice", "phone")
    login(env, "alice", token, "alice@phone").close()
    r = env.clients(env.broker, "_register", "x", client_id="_register@" + secrets.token_hex(8))
    assert r.connect() == 0
    assert r.subscribe("chat/register/%s/resp" % r.client_id) in (0, 1)

    def status():
        rid = secrets.token_hex(4)
        r.publish("chat/register/%s/req" % r.client_id,
                  json.dumps({"id": rid, "op": "login_status", "user": "alice"}))
        while True:
            ans = json.loads(r.get().payload)
            if ans.get("id") == rid:
                return ans

    def throttled():
        assert refused(env, "alice", "wrong-password", "alice@guess")
        return status()["status"] == "throttled"
    harness.wait_for(throttled, 10, interval=0, what="alice's password throttled")
    t0 = time.monotonic()
    assert try_login(env, "alice", token, "alice@phone")[0] == 0
    # Not made to wait for the lock either.
    assert time.monotonic() - t0 < 2.0


# ---- bad requests: the exact code, and nothing changed ----

def unchanged(env):
    return devices_rows(env), devices_rows(env, "bob"), pwhash(env), pwhash(env, "bob")


def refused_unchanged(env, code, op, **args):
    """alice's op with args is refused with code, and changes nothing."""
    before = unchanged(env)
    ans = env.rpc.call(op, **args)
    assert ans["ok"] is False and ans["error"] == code, ans
    assert unchanged(env) == before
    return ans


@pytest.mark.parametrize("args", [
    {"password": PASSWORD},
    {"device": "", "password": PASSWORD},
    {"device": "ph/one", "password": PASSWORD},
    {"device": "ph one", "password": PASSWORD},
    {"device": "ph+", "password": PASSWORD},
    {"device": "x" * 65, "password": PASSWORD},
    {"device": 7, "password": PASSWORD},
    {"device": None, "password": PASSWORD},
    {"device": "phone"},
    {"device": "phone", "password": 12345678},
])
def test_device_token_bad_request(env, args):
    provision(env, "alice", "laptop")
    refused_unchanged(env, "bad_request", "device_token", **args)


def test_device_token_wrong_password_then_rate_limited(env):
    for _ in range(3):
        refused_unchanged(env, "bad_password", "device_token", device="phone", password="wrong-password")
    ans = refused_unchanged(env, "rate_limited", "device_token", device="phone", password=PASSWORD)
    assert 0 < ans["retry_ms"] <= 60000, ans
    # The throttle is passwd's too: one per account.
    refused_unchanged(env, "rate_limited", "passwd", old=PASSWORD, new="alice-secret-2")


def test_too_many_devices_at_33(env):
    for i in range(32):
        provision(env, "alice", "d%02d" % i)
    refused_unchanged(env, "too_many_devices", "device_token", device="d32", password=PASSWORD)
    # A device that holds one may ask again.
    ans = ask(env.rpc, "device_token", device="d05", password=PASSWORD)
    assert ans["ok"] is True, ans
    rows = devices_rows(env)
    assert len(rows) == 32 and dict((r[0], r[1]) for r in rows)["d05"] == digest(ans["token"])


@pytest.mark.parametrize("args", [
    {},
    {"device": "phone", "others": "laptop"},
    {"device": "phone", "all": True},
    {"others": "phone", "all": True},
    {"device": "phone", "others": "laptop", "all": True},
    {"all": False},
    {"all": "yes"},
    {"device": "ph/one"},
    {"device": ""},
    {"others": 5},
])
def test_device_revoke_bad_request(env, args):
    provision(env, "alice", "phone")
    provision(env, "alice", "laptop")
    refused_unchanged(env, "bad_request", "device_revoke", **args)


def test_device_revoke_not_found(env):
    provision(env, "alice", "phone")
    provision(env, "bob", "laptop")
    for device in ("laptop", "tablet"):      # bob's is not alice's
        refused_unchanged(env, "not_found", "device_revoke", device=device)


@pytest.mark.parametrize("args,code", [
    ({"new": make_token()}, "weak_password"),
    ({"new": make_token(), "revoke_devices": "all"}, "weak_password"),
    ({"new": "alice-secret-2", "revoke_devices": "some"}, "bad_request"),
    ({"new": "alice-secret-2", "revoke_devices": True}, "bad_request"),
    ({"new": "alice-secret-2", "revoke_devices": "others"}, "bad_request"),
    ({"new": "alice-secret-2", "revoke_devices": "others", "device": "ph/one"}, "bad_request"),
])
def test_passwd_refusals(env, args, code):
    provision(env, "alice", "phone")
    refused_unchanged(env, code, "passwd", old=PASSWORD, **args)
    # Refused before the password was looked at: no throttle left behind.
    ans = env.rpc.call("passwd", old=PASSWORD, new="alice-secret-2")
    assert ans["ok"] is True, ans


# ---- the operators' CLI ----

def test_cli_user_devices(env):
    d = env.datadir
    a = ask(env.rpc, "device_token", device="phone", password=PASSWORD)
    provision(env, "alice", "laptop", created=1764892800000)
    env.store.sql("UPDATE devices SET last_seen=1764896400000 WHERE device='laptop'")
    r = ok(d, "user", "devices", "alice")
    phone_created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a["created"] // 1000))
    lines = r.out.splitlines()
    assert lines[0] == "laptop 2025-12-05T00:00:00Z 2025-12-05T01:00:00Z", r
    assert lines[1] in ("phone %s never" % phone_created, "phone %s %s" % (phone_created, phone_created)), r
    assert len(lines) == 2
    r = ok(d, "user", "devices", "alice", "--json")
    got = json.loads(r.out)
    assert got[0] == {"device": "laptop", "created": 1764892800000, "last_seen": 1764896400000}
    assert got[1]["device"] == "phone" and got[1]["created"] == a["created"]
    assert "token" not in r.out and a["token"] not in r.out and digest(a["token"]) not in r.out
    assert ok(d, "user", "devices", "bob").out == ""
    assert ok(d, "user", "devices", "bob", "--json").out == "[]\n"
    fails(d, NOTFOUND, "user", "devices", "ghost", err="no such user 'ghost'")
    fails(d, INVALID, "user", "devices", "Alice")
    fails(d, USAGE, "user", "devices")
    fails(d, USAGE, "user", "devices", "alice", "bob")
    fails(d, USAGE, "user", "devices", "alice", "--all")
    r = ok(d, "user", "devices", "--help")
    assert r.out.startswith("usage: mqchat-archiver [--data DIR] user devices NAME [--json]\n"), r


def test_cli_user_revoke(env):
    d = env.datadir
    phone = provision(env, "alice", "phone")
    laptop = provision(env, "alice", "laptop")
    provision(env, "bob", "phone")
    c = login(env, "alice", phone, "alice@phone")
    r = ok(d, "user", "revoke", "alice", "phone")
    done = time.monotonic()
    assert r.out == "device phone of alice revoked\n", r
    closed_within(c, done)
    assert refused(env, "alice", phone, "alice@phone")
    fails(d, NOTFOUND, "user", "revoke", "alice", "phone",
          err="user 'alice' has no device 'phone' with a token")
    fails(d, NOTFOUND, "user", "revoke", "ghost", "phone", err="no such user 'ghost'")
    fails(d, NOTFOUND, "user", "revoke", "ghost", "--all", err="no such user 'ghost'")
    fails(d, INVALID, "user", "revoke", "alice", "ph/one")
    fails(d, INVALID, "user", "revoke", "Alice", "phone")
    fails(d, USAGE, "user", "revoke", "alice")
    fails(d, USAGE, "user", "revoke", "alice", "phone", "--all")
    fails(d, USAGE, "user", "revoke", "alice", "phone", "laptop")
    fails(d, USAGE, "user", "revoke", "alice", "--bogus")
    assert [r[0] for r in devices_rows(env)] == ["laptop"]
    c = login(env, "alice", laptop, "alice@laptop")
    r = ok(d, "user", "revoke", "alice", "--all")
    done = time.monotonic()
    assert r.out == "1 device of alice revoked\n", r
    closed_within(c, done)
    assert ok(d, "user", "revoke", "alice", "--all").out == "0 devices of alice revoked\n"
    assert [r[0] for r in devices_rows(env, "bob")] == ["phone"]
    r = ok(d, "user", "revoke", "--help")
    assert r.out.startswith("usage: mqchat-archiver [--data DIR] user revoke NAME DEVICE|--all\n"), r
    r = ok(d, "user", "--help")
    assert "user devices NAME [--json]" in r.out and "user revoke NAME DEVICE|--all" in r.out


def test_cli_refuses_token_form_passwords(env):
    d = env.datadir
    token = make_token()
    before = pwhash(env)
    err = ("a password may not have the form of a device token"
           " (mqt1. and 43 characters of A-Z a-z 0-9 _ -)")
    fails(d, INVALID, "user", "add", "carol", "--password-stdin", stdin=token + "\n", err=err)
    fails(d, INVALID, "user", "passwd", "alice", "--password-stdin", stdin=token + "\n", err=err)
    assert pwhash(env) == before
    assert env.store.sql("SELECT count(*) FROM users WHERE name='carol'")[0][0] == 0
    # One character more or less is a password like any other.
    ok(d, "user", "add", "carol", "--password-stdin", stdin=token + "x\n")
    assert cli(d, "user", "add", "carol", "--password-stdin", stdin=token[:-1] + "\n").rc == EXISTS
    ok(d, "user", "passwd", "alice", "--password-stdin", stdin=token[:-1] + "\n")
