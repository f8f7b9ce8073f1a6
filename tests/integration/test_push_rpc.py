"""The push notification ops of the archiver (docs/PROTOCOL.md, "Push
notifications"): push_config, push_register, push_unregister,
push_targets, push_settings, mute, unmute and mutes, each with its checks
and error codes, and the targets that go with a revoked device token
(device_revoke, passwd with revoke_devices, `user revoke`) or a deleted
account (delete_account, `user del`). Nothing is sent here: the providers
and the push thread are tested with fake providers (test_push_*.py).

push.db is read straight from the test, read-only, as the store keeps it
(archiver/push_store.h)."""
import base64
import hashlib
import json
import os
import secrets
import sqlite3
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import harness
from archiver_util import Rpc, arch_env, rpc_fails, rpc_ok, PASSWORD  # noqa: F401 (fixture)
from cli_util import cli

WEBHOOK = "https://hooks.example.net/mqchat"


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def vapid_key(datadir):
    """Write DATADIR/vapid.pem as `init` would; returns its public key as
    push_config must give it (base64url of the uncompressed point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(os.path.join(datadir, "vapid.pem"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return b64u(key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint))


def subscription(endpoint="https://push.example.net/s/abc"):
    """A browser's PushSubscription as the app sends it."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": endpoint, "p256dh": b64u(point), "auth": b64u(secrets.token_bytes(16))}


def push_rows(datadir, sql, *args):
    path = os.path.join(datadir, "push.db")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def targets_of(env, user="alice"):
    return [r[0] for r in push_rows(env.datadir, "SELECT device FROM targets WHERE user=?"
                                    " ORDER BY device", user)]


@pytest.fixture
def world(arch_env, datadir):
    """alice and bob, in lobby; the service offers Web Push (a VAPID key)
    and webhooks, not FCM or APNs. args: more `run` flags."""
    def make(args=(), vapid=True):
        pub = vapid_key(datadir) if vapid else None
        env = arch_env(users=["alice", "bob"], rooms={"lobby": ["alice", "bob"]},
                       args=["--push-webhook", "on"] + list(args))
        env.vapid_pub = pub
        env.alice = env.user("alice", client_id="alice@rpc")
        env.rpc = Rpc(env.alice, "alice")
        return env
    return make


def register_webhook(env, device, url=WEBHOOK, rpc=None):
    ans = rpc_ok(rpc or env.rpc, "push_register", device=device, provider="webhook", url=url)
    assert set(ans) == {"id", "ok", "device", "provider", "secret"}, ans
    return ans


# ---- what the service offers ----

def test_hello_lists_push_and_mute(world):
    env = world()
    features = rpc_ok(env.rpc, "hello")["features"]
    assert "push" in features and "mute" in features, features


def test_push_config_lists_only_what_the_operator_set_up(world):
    env = world()
    ans = rpc_ok(env.rpc, "push_config")
    assert ans["providers"] == ["webpush", "webhook"], ans
    assert ans["vapid_public_key"] == env.vapid_pub
    assert len(base64.urlsafe_b64decode(ans["vapid_public_key"] + "=")) == 65


def test_push_off_offers_nothing(world):
    env = world(args=["--push", "off"])
    ans = rpc_ok(env.rpc, "push_config")
    assert ans["providers"] == [] and "vapid_public_key" not in ans, ans
    rpc_fails(env.rpc, "not_configured", "push_register", device="phone", provider="webhook",
              url=WEBHOOK)
    assert targets_of(env) == []


# ---- push_register ----

def test_register_each_provider_and_list(world):
    env = world()
    t0 = int(time.time() * 1000)
    ans = rpc_ok(env.rpc, "push_register", device="phone", provider="webpush", **subscription())
    assert ans == {"id": ans["id"], "ok": True, "device": "phone", "provider": "webpush"}, ans
    hook = register_webhook(env, "bot")
    assert len(hook["secret"]) == 43 and hook["device"] == "bot" and hook["provider"] == "webhook"
    assert base64.urlsafe_b64decode(hook["secret"] + "=") and len(
        base64.urlsafe_b64decode(hook["secret"] + "=")) == 32
    # the secret is kept for signing, and shown only once
    assert push_rows(env.datadir, "SELECT secret FROM targets WHERE device='bot'") == [(hook["secret"],)]
    targets = rpc_ok(env.rpc, "push_targets")["targets"]
    assert [(t["device"], t["provider"]) for t in targets] == [("bot", "webhook"), ("phone", "webpush")]
    for t in targets:
        assert set(t) == {"device", "provider", "created", "last_ok", "failures"}, t
        assert t0 <= t["created"] <= int(time.time() * 1000) and t["last_ok"] == 0 and t["failures"] == 0
    assert "secret" not in json.dumps(targets)
    # bob sees none of alice's
    bob = Rpc(env.user("bob"), "bob")
    assert rpc_ok(bob, "push_targets")["targets"] == []
    # the same device again: replaced (one per device), with a new secret
    again = register_webhook(env, "bot", url=WEBHOOK + "/2")
    assert again["secret"] != hook["secret"]
    assert push_rows(env.datadir, "SELECT data FROM targets WHERE device='bot'") == [
        (json.dumps({"url": WEBHOOK + "/2"}, separators=(",", ":")),)]
    rpc_ok(env.rpc, "push_register", device="bot", provider="webpush", **subscription())
    assert [(t["device"], t["provider"]) for t in rpc_ok(env.rpc, "push_targets")["targets"]] == [
        ("bot", "webpush"), ("phone", "webpush")]


def test_register_bad_requests(world):
    env = world()
    sub = subscription()
    bad = [
        {"provider": "webhook", "url": WEBHOOK},                              # no device
        {"device": "a/b", "provider": "webhook", "url": WEBHOOK},
        {"device": "", "provider": "webhook", "url": WEBHOOK},
        {"device": "x" * 65, "provider": "webhook", "url": WEBHOOK},
        {"device": 5, "provider": "webhook", "url": WEBHOOK},
        {"device": "phone", "url": WEBHOOK},                                  # no provider
        {"device": "phone", "provider": "sms", "url": WEBHOOK},
        {"device": "phone", "provider": 1},
        {"device": "phone", "provider": "webhook"},                           # no url
        {"device": "phone", "provider": "webhook", "url": "http://hooks.example.net/x"},
        {"device": "phone", "provider": "webhook", "url": "ftp://hooks.example.net/x"},
        {"device": "phone", "provider": "webhook", "url": "not a url"},
        {"device": "phone", "provider": "webhook", "url": "https://"},
        {"device": "phone", "provider": "webhook", "url": "https://h.example.net/" + "a" * 2030},
        {"device": "phone", "provider": "webhook", "url": ["https://h.example.net/"]},
        dict(sub, device="phone", provider="webpush", endpoint="http://push.example.net/s"),
        dict(sub, device="phone", provider="webpush", endpoint="https://p.example.net/" + "a" * 2030),
        dict(sub, device="phone", provider="webpush", p256dh=b64u(b"\x04" + b"x" * 63)),
        dict(sub, device="phone", provider="webpush", p256dh=b64u(b"\x05" + b"x" * 64)),
        dict(sub, device="phone", provider="webpush", p256dh=sub["p256dh"] + "="),
        dict(sub, device="phone", provider="webpush", auth=b64u(b"x" * 15)),
        dict(sub, device="phone", provider="webpush", auth=None),
        {"device": "phone", "provider": "webpush", "endpoint": sub["endpoint"], "auth": sub["auth"]},
    ]
    for args in bad:
        ans = env.rpc.call("push_register", **args)
        assert ans["ok"] is False and ans["error"] == "bad_request", (args, ans)
        assert ans["message"], ans
    # exactly at the limit is fine
    url = "https://h.example.net/" + "a" * (2048 - len("https://h.example.net/"))
    register_webhook(env, "edge", url=url)
    assert targets_of(env) == ["edge"]


def test_providers_the_operator_did_not_set_up(world):
    env = world()
    rpc_fails(env.rpc, "not_configured", "push_register", device="phone", provider="fcm",
              token="fcm-registration-token")
    rpc_fails(env.rpc, "not_configured", "push_register", device="iphone", provider="apns",
              token="ab" * 32)
    assert targets_of(env) == []


def test_webhooks_off_unless_the_operator_turns_them_on(world):
    env = world(args=["--push-webhook", "off"], vapid=False)
    providers = rpc_ok(env.rpc, "push_config")["providers"]
    assert "webhook" not in providers
    rpc_fails(env.rpc, "not_configured", "push_register", device="bot", provider="webhook", url=WEBHOOK)


def test_http_when_the_operator_allows_it(world):
    env = world(args=["--push-allow-http", "1"])
    register_webhook(env, "bot", url="http://127.0.0.1:9/hook")
    rpc_ok(env.rpc, "push_register", device="phone", provider="webpush",
           **subscription("http://127.0.0.1:9/push/1"))
    assert targets_of(env) == ["bot", "phone"]


def test_too_many_devices(world):
    env = world()
    for i in range(32):
        register_webhook(env, "d%02d" % i)
    ans = rpc_fails(env.rpc, "too_many_devices", "push_register", device="d32", provider="webhook",
                    url=WEBHOOK)
    assert "32" in ans["message"]
    # one of the 32 may register again; after an unregister a new one fits
    register_webhook(env, "d07", url=WEBHOOK + "/new")
    assert rpc_ok(env.rpc, "push_unregister", device="d00")["removed"] == 1
    register_webhook(env, "d32")
    assert len(targets_of(env)) == 32


def test_unregister(world):
    env = world()
    register_webhook(env, "bot")
    register_webhook(env, "bot2")
    ans = rpc_ok(env.rpc, "push_unregister", device="bot")
    assert ans["removed"] == 1, ans
    assert rpc_ok(env.rpc, "push_unregister", device="bot")["removed"] == 0
    assert targets_of(env) == ["bot2"]
    for args in ({}, {"device": "a b"}, {"device": None}):
        rpc_fails(env.rpc, "bad_request", "push_unregister", **args)
    assert targets_of(env) == ["bot2"]


# ---- settings and mutes ----

def test_previews_off_until_asked(world):
    env = world()
    assert rpc_ok(env.rpc, "push_settings")["previews"] is False
    assert rpc_ok(env.rpc, "push_settings", previews=True)["previews"] is True
    assert rpc_ok(env.rpc, "push_settings")["previews"] is True
    for v in ("yes", 1, None):
        rpc_fails(env.rpc, "bad_request", "push_settings", previews=v)
    assert rpc_ok(env.rpc, "push_settings", previews=False)["previews"] is False
    bob = Rpc(env.user("bob"), "bob")
    assert rpc_ok(bob, "push_settings")["previews"] is False


def test_mute_unmute_mutes(world):
    env = world()
    assert rpc_ok(env.rpc, "mutes")["mutes"] == []
    assert rpc_ok(env.rpc, "mute", **{"with": "bob"})["until"] == 0
    t0 = int(time.time() * 1000)
    until = rpc_ok(env.rpc, "mute", room="lobby", for_s=3600)["until"]
    assert t0 + 3600 * 1000 - 5000 <= until <= int(time.time() * 1000) + 3600 * 1000, until
    assert rpc_ok(env.rpc, "mutes")["mutes"] == [{"with": "bob", "until": 0},
                                                  {"room": "lobby", "until": until}]
    # muting again sets the new time
    assert rpc_ok(env.rpc, "mute", room="lobby")["until"] == 0
    rpc_ok(env.rpc, "unmute", **{"with": "bob"})
    rpc_ok(env.rpc, "unmute", **{"with": "bob"})          # not muted: ok all the same
    rpc_ok(env.rpc, "unmute", room="nowhere")
    assert rpc_ok(env.rpc, "mutes")["mutes"] == [{"room": "lobby", "until": 0}]
    bob = Rpc(env.user("bob"), "bob")
    assert rpc_ok(bob, "mutes")["mutes"] == []


def test_a_mute_for_a_while_ends(world):
    env = world()
    rpc_ok(env.rpc, "mute", **{"with": "bob", "for_s": 1})
    assert len(rpc_ok(env.rpc, "mutes")["mutes"]) == 1
    harness.wait_for(lambda: rpc_ok(env.rpc, "mutes")["mutes"] == [], 10, what="the mute to end")


def test_mute_bad_requests(world):
    env = world()
    bad = [{}, {"with": "bob", "room": "lobby"}, {"with": "Bob"}, {"room": "a/b"}, {"with": 5},
           {"with": "bob", "for_s": 0}, {"with": "bob", "for_s": -1}, {"with": "bob", "for_s": "60"},
           {"with": "bob", "for_s": 1.5}, {"with": "bob", "for_s": 365 * 86400 + 1}]
    for args in bad:
        ans = env.rpc.call("mute", **args)
        assert ans["ok"] is False and ans["error"] == "bad_request", (args, ans)
    for args in bad[:5]:
        ans = env.rpc.call("unmute", **args)
        assert ans["ok"] is False and ans["error"] == "bad_request", (args, ans)
    assert rpc_ok(env.rpc, "mutes")["mutes"] == []
    assert rpc_ok(env.rpc, "mute", **{"with": "bob", "for_s": 365 * 86400})["until"] > 0


# ---- targets go with the device token or the account ----

def provision(env, user, device):
    """Give user's device a token straight in auth.db (as test_device_tokens.py)."""
    token = "mqt1." + b64u(secrets.token_bytes(32))
    env.store.sql("INSERT OR REPLACE INTO devices(user, device, token_sha256, created, last_seen)"
                  " VALUES(?,?,?,?,0)", user, device, hashlib.sha256(token.encode()).hexdigest(),
                  int(time.time() * 1000))
    return token


def ask(rpc, op, timeout=15, **args):
    """Call op, again after retry_ms while the password check is throttled."""
    deadline = time.monotonic() + timeout
    while True:
        ans = rpc.call(op, **args)
        if ans.get("error") != "rate_limited":
            return ans
        assert time.monotonic() < deadline, ans
        time.sleep(min(ans["retry_ms"], 2000) / 1000.0)


def test_device_revoke_removes_the_target_and_its_queue(world):
    env = world()
    for d in ("phone", "laptop", "tablet", "watch"):
        provision(env, "alice", d)
        register_webhook(env, d)
    register_webhook(env, "bot")       # no token: only "others" and "all" reach it
    db = sqlite3.connect(os.path.join(env.datadir, "push.db"), timeout=10)
    db.execute("INSERT INTO queue(user, device, conv, count, last_seq, msg_id, sender, preview, due,"
               " attempts, created) VALUES('alice', 'laptop', 'd:bob', 1, 1, 'm1', 'bob', NULL, 0, 0, 0)")
    db.commit()
    db.close()
    assert rpc_ok(env.rpc, "device_revoke", device="laptop")["revoked"] == 1
    assert targets_of(env) == ["bot", "phone", "tablet", "watch"]
    assert push_rows(env.datadir, "SELECT count(*) FROM queue") == [(0,)]
    # a device without a token: not_found, and its target stays
    rpc_fails(env.rpc, "not_found", "device_revoke", device="bot")
    assert "bot" in targets_of(env)
    assert rpc_ok(env.rpc, "device_revoke", others="phone")["revoked"] == 2
    assert targets_of(env) == ["phone"]
    bob = Rpc(env.user("bob"), "bob")
    register_webhook(env, "bobs", rpc=bob)
    provision(env, "alice", "tablet")
    register_webhook(env, "tablet")
    assert rpc_ok(env.rpc, "device_revoke", all=True)["revoked"] == 2
    assert targets_of(env) == [] and targets_of(env, "bob") == ["bobs"]


def test_passwd_revoking_devices_removes_their_targets(world):
    env = world()
    for d in ("phone", "laptop"):
        provision(env, "alice", d)
        register_webhook(env, d)
    ans = ask(env.rpc, "passwd", old=PASSWORD, new="a-new-password-1", revoke_devices="others",
              device="phone")
    assert ans["ok"] is True and ans["revoked"] == 1, ans
    assert targets_of(env) == ["phone"]


def test_delete_account_removes_everything_of_it(world):
    env = world()
    register_webhook(env, "bot")
    rpc_ok(env.rpc, "mute", **{"with": "bob"})
    rpc_ok(env.rpc, "push_settings", previews=True)
    bob = Rpc(env.user("bob"), "bob")
    register_webhook(env, "bobs", rpc=bob)
    env.alice.publish("chat/rpc/alice/req", json.dumps(
        {"id": "del1", "op": "delete_account", "password": PASSWORD}))
    assert env.alice.disconnected.wait(harness.DEFAULT_TIMEOUT)
    for table in ("targets", "mutes", "prefs", "queue"):
        assert push_rows(env.datadir, "SELECT count(*) FROM %s WHERE user='alice'" % table) == [(0,)], table
    assert targets_of(env, "bob") == ["bobs"]


def test_cli_revoke_and_del_remove_targets(world):
    env = world()
    for d in ("phone", "laptop"):
        provision(env, "alice", d)
        register_webhook(env, d)
    rpc_ok(env.rpc, "mute", room="lobby")
    r = cli(env.datadir, "user", "revoke", "alice", "laptop")
    assert r.rc == 0 and r.err == "", r
    assert targets_of(env) == ["phone"]
    r = cli(env.datadir, "user", "revoke", "alice", "--all")
    assert r.rc == 0 and r.err == "", r
    assert targets_of(env) == []
    register_webhook(env, "phone")
    r = cli(env.datadir, "user", "del", "alice")
    assert r.rc == 0 and r.err == "" and r.out == "user alice deleted\n", r
    assert targets_of(env) == []
    assert push_rows(env.datadir, "SELECT count(*) FROM mutes WHERE user='alice'") == [(0,)]


def test_cli_without_push_db_changes_nothing_there(arch_env):
    env = arch_env(users=["alice"], start=False)
    provision(env, "alice", "phone")
    assert not os.path.exists(os.path.join(env.datadir, "push.db"))
    r = cli(env.datadir, "user", "revoke", "alice", "phone")
    assert r.rc == 0 and r.err == "", r
    assert not os.path.exists(os.path.join(env.datadir, "push.db"))
