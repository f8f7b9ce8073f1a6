"""test_push.py - push notifications end to end: a real broker, plugin and
archiver whose config points Web Push, FCM, APNs and webhooks at the fake
providers of push_fakes.py, which check every request as the real services
do (a refusal fails the test with the fake's reason).

One stack per module (per pytest worker): `init` makes the data folder and
its VAPID key, the accounts and rooms are written before the broker starts,
alice sends and watches presence (everyone here shows her theirs). Each test
has accounts of its own, so the tests do not depend on each other's order.
A person registers targets over RPC while connected (so online), then
disconnects; a scenario starts only once alice has seen them offline and
an RPC round trip has passed after it (the archiver has had the presence
change by then). "Nothing was sent" is shown by a later notification to
zed (a sentinel whose webhook always answers): the push thread handles
messages in order, and push.db's queue holds no job for the person."""
import contextlib
import email.utils
import json
import os
import queue
import shutil
import subprocess
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization

import harness
from archiver_util import Archiver, Rpc, inbox, read_db, room, rpc_fails, rpc_ok
from push_fakes import ApnsFake, FcmFake, WebhookFake, WebPushFake, apns_token, b64u, p256_raw

PASSWORD = "password-xxxx"
COLLAPSE_MS = 600
T = 20            # seconds a notification may take on a busy machine
PROVIDERS = ("webpush", "fcm", "apns", "webhook")
PEOPLE = ("alice", "bob", "carol", "dora", "lena", "kate", "mona", "ivan", "henry", "grace",
          "frank", "sam", "mike", "nina", "paul", "olga", "quinn", "rita", "zed")
ROOMS = {"den": ("alice", "carol", "dora"), "attic": ("alice", "ivan"), "yard": ("sam", "frank")}


class Presence:
    """Everyone's presence as alice sees it (all show it to her)."""

    def __init__(self, port):
        self.c = harness.Client(port, "alice", PASSWORD, client_id="alice@presence")
        assert self.c.connect() == 0
        self.latest = {}
        assert self.c.subscribe("chat/presence/+") in (0, 1)

    def _drain(self, timeout):
        try:
            m = self.c.messages.get(timeout=timeout)
        except queue.Empty:
            return
        user = m.topic.rsplit("/", 1)[1]
        self.latest[user] = json.loads(m.payload)["status"] if m.payload else None

    def wait(self, user, status, timeout=45):
        """Until user's presence is status (presence changes may wait up to
        30 s for an account that comes and goes, see docs/PROTOCOL.md)."""
        deadline = time.monotonic() + timeout
        while self.latest.get(user) != status:
            assert time.monotonic() < deadline, "%s never %s (is %r)" % (user, status, self.latest.get(user))
            self._drain(0.05)

    def close(self):
        self.c.close()


class Targets:
    """One person's push targets: provider -> (device, fake, key)."""

    def __init__(self, stack, user):
        self.stack = stack
        self.user = user
        self.by = {}

    def keys(self):
        return [(p, dev, fake, key) for p, (dev, fake, key) in self.by.items()]

    def wait(self, n=1, timeout=T):
        """Each target's notifications once every target has n (provider ->
        list, FCM's data as sent: strings)."""
        return {p: [r["notification"] for r in fake.wait_delivered(n, key=key, timeout=timeout)]
                for p, dev, fake, key in self.keys()}

    def requests(self):
        return {p: fake.requests_of(key) for p, dev, fake, key in self.keys()}


def until(cond, what, state, timeout=T):
    """harness.wait_for, saying on timeout what state() is then."""
    try:
        return harness.wait_for(cond, timeout, what=what)
    except AssertionError as e:
        raise AssertionError("%s; now %r" % (e, state()))


def as_fcm(n):
    """A notification as FCM's data carries it: every value a string, and
    "sender" for "from" (a key FCM reserves: the fake refuses it as FCM does)."""
    return {("sender" if k == "from" else k): str(v) for k, v in n.items()}


def expect(targets, got, want):
    """Every provider's last notification is want (FCM's with string values)."""
    for p, notes in got.items():
        assert notes[-1] == (as_fcm(want) if p == "fcm" else want), (targets.user, p, notes)


class Stack:
    def __init__(self):
        self.datadir = harness.make_datadir()
        r = subprocess.run([harness.ARCHIVER, "--data", self.datadir, "init"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.store = harness.Store(os.path.join(self.datadir, "auth.db"))
        for u in PEOPLE:
            self.store.add_user(u, password=PASSWORD)
            if u != "alice":
                self.store.add_contact(u, "alice")
        for name, members in ROOMS.items():
            self.store.add_room(name, members=members)
        self.webpush = WebPushFake()
        self.fcm = FcmFake(folder=self.datadir)
        self.apns = ApnsFake(folder=self.datadir)
        self.webhook = WebhookFake()
        self.fakes = (self.webpush, self.fcm, self.apns, self.webhook)
        self.conf = os.path.join(self.datadir, "archiver.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join("%s = %s" % kv for kv in (
                ("push_fcm_credentials", self.fcm.credentials),
                ("push_fcm_url", self.fcm.origin),
                ("push_apns_key", self.apns.key_path),
                ("push_apns_key_id", self.apns.key_id),
                ("push_apns_team_id", self.apns.team_id),
                ("push_apns_topic", self.apns.topic),
                ("push_apns_url", self.apns.url),
                ("push_webhook", "on"),
                ("push_allow_http", "1"),
                ("push_collapse_ms", str(COLLAPSE_MS)),
                ("push_vapid_subject", "mailto:ops@mqchat.test"),
            )) + "\n")
        self.broker = harness.Broker(self.datadir)
        self.arch = Archiver(self.datadir, self.broker.port, ["-c", self.conf])
        self.alice = self.presence = None
        self.vapid_key = None
        self.runs = 0             # archiver runs: each may make its own tokens
        self.fcm_expired = 0      # times a test expired the FCM tokens

    def start(self):
        self.broker.start()
        self.arch.start()
        self.runs += 1
        self.alice = harness.Client(self.broker.port, "alice", PASSWORD, client_id="alice@sender")
        assert self.alice.connect() == 0
        self.rpc = Rpc(self.alice, "alice")
        self.presence = Presence(self.broker.port)
        cfg = rpc_ok(self.rpc, "push_config")
        self.vapid_key = cfg.get("vapid_public_key")
        self.zed = self.register("zed", webhook="bot")
        return self

    def stop(self, failed=False):
        out = ""
        for c in (self.alice, self.presence):
            if c is not None:
                c.close()
        for f in self.fakes:
            f.stop()
            if f.refused:
                out += "---- %s refused ----\n%s\n" % (f.name, json.dumps(f.refused, indent=1))
        self.arch.stop()
        self.broker.stop()
        if failed:
            out += "---- archiver log ----\n%s\n---- broker log ----\n%s" % (
                self.arch.output()[-30000:], self.broker.output()[-5000:])
        shutil.rmtree(self.datadir, ignore_errors=True)
        return out

    # ---- people and their targets ----

    @contextlib.contextmanager
    def session(self, user, device="app", barrier=True):
        """user connected (online) with an RPC channel; on leaving, offline
        as alice sees it, and (barrier) as the archiver knows it."""
        c = harness.Client(self.broker.port, user, PASSWORD, client_id="%s@%s" % (user, device))
        assert c.connect() == 0
        try:
            self.presence.wait(user, "online")
            yield Rpc(c, user)
        finally:
            c.close()
        self.presence.wait(user, "offline")
        if barrier:
            self.barrier()

    def barrier(self):
        """An RPC round trip of alice: the archiver has read everything the
        broker sent it before (a presence change seen by alice's watcher)."""
        rpc_ok(self.rpc, "push_config")

    def register(self, user, webpush=None, fcm=None, apns=None, webhook=None, rpc=None):
        """Register the given devices' targets (device names as values)."""
        t = Targets(self, user)
        with (contextlib.nullcontext(rpc) if rpc else self.session(user)) as r:
            if webpush:
                sub = self.webpush.subscribe(server_key=self.vapid_key)
                ans = rpc_ok(r, "push_register", device=webpush, provider="webpush", endpoint=sub.endpoint,
                             p256dh=sub.p256dh, auth=sub.auth)
                assert (ans["device"], ans["provider"]) == (webpush, "webpush"), ans
                t.by["webpush"] = (webpush, self.webpush, sub.id)
            if fcm:
                token = "fcm-%s-%s" % (user, uuid.uuid4().hex)
                ans = rpc_ok(r, "push_register", device=fcm, provider="fcm", token=token)
                assert (ans["device"], ans["provider"]) == (fcm, "fcm"), ans
                t.by["fcm"] = (fcm, self.fcm, token)
            if apns:
                token = apns_token()
                ans = rpc_ok(r, "push_register", device=apns, provider="apns", token=token)
                assert (ans["device"], ans["provider"]) == (apns, "apns"), ans
                t.by["apns"] = (apns, self.apns, token)
            if webhook:
                hid, url = self.webhook.hook()
                ans = rpc_ok(r, "push_register", device=webhook, provider="webhook", url=url)
                assert (ans["device"], ans["provider"]) == (webhook, "webhook"), ans
                assert isinstance(ans.get("secret"), str) and len(ans["secret"]) >= 32, ans
                self.webhook.set_secret(hid, ans["secret"])
                t.by["webhook"] = (webhook, self.webhook, hid)
        return t

    # ---- messages ----

    def send(self, to=None, room_name=None, body="hello", stored=True):
        """alice sends a text to a person or a room; returns (id, seq), seq
        once the archive has it (None if not stored=True)."""
        mid = uuid.uuid4().hex
        topic = inbox(to, "alice") if to else room(room_name, "alice")
        self.alice.publish(topic, harness.envelope(body, id=mid))
        return mid, self.seq_of(mid) if stored else None

    def seq_of(self, mid, sender="alice"):
        def stored():
            r = self.rows("SELECT seq FROM messages WHERE id=? AND sender=?", mid, sender)
            return r[0][0] if r else None
        return harness.wait_for(stored, T, what="message %s stored" % mid)

    def rows(self, sql, *args):
        return read_db(os.path.join(self.datadir, "archive.db"), sql, *args)

    def push_db(self, sql, *args):
        """Read push.db as it is now ([] if it has no such table yet)."""
        return read_db(os.path.join(self.datadir, "push.db"), sql, *args)

    def jobs(self, user):
        return self.push_db("SELECT device, conv, count FROM queue WHERE user=?", user)

    def nothing_for(self, *targets):
        """Nothing was or will be sent to these people's targets for what
        was sent so far: a later notification to zed has arrived, and no job
        of theirs waits in push.db."""
        before = len(self.webhook.deliveries(self.zed.by["webhook"][2]))
        self.send("zed", body="sentinel")
        self.zed.wait(before + 1)
        for t in targets:
            assert all(not reqs for reqs in t.requests().values()), (t.user, t.requests())
            assert self.jobs(t.user) == [], (t.user, self.jobs(t.user))


@pytest.fixture(scope="module")
def stack(request):
    yield from harness.serve_stack(request, Stack())


@pytest.fixture(autouse=True)
def refused_nothing(stack):
    """No fake refused anything during the test (what a real service would
    refuse never reaches a phone; the refusals are then forgotten, so that
    the next test starts clean), and the archiver reused its tokens."""
    yield
    refused = {}
    for f in stack.fakes:
        with f.lock:
            if f.refused:
                refused[f.name], f.refused[:] = list(f.refused), []
    assert not refused, "refused: %s" % json.dumps(refused, indent=1)
    # An APNs provider token is reused for up to 50 min (APNs refuses
    # updates more often than every 20), FCM's OAuth token until it is near
    # its end or refused: one of each per archiver run.
    assert len(stack.apns.provider_tokens) <= stack.runs, stack.apns.provider_tokens
    assert len(stack.fcm.token_requests) <= stack.runs + stack.fcm_expired, stack.fcm.token_requests


def direct(sender, mid, seq, count=1):
    return {"type": "message", "with": sender, "from": sender, "id": mid, "seq": seq, "count": count}


def in_room(name, sender, mid, seq, count=1):
    return {"type": "message", "room": name, "from": sender, "id": mid, "seq": seq, "count": count}


# ---- configuration and registration ------------------------------------------------

def test_push_config_offers_every_configured_provider(stack):
    cfg = rpc_ok(stack.rpc, "push_config")
    assert sorted(cfg["providers"]) == sorted(PROVIDERS), cfg
    # The VAPID key is the one init made in the data folder.
    with open(os.path.join(stack.datadir, "vapid.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    assert cfg["vapid_public_key"] == b64u(p256_raw(key.public_key()))
    features = rpc_ok(stack.rpc, "hello")["features"]
    assert "push" in features and "mute" in features, features


def test_register_list_and_unregister(stack):
    with stack.session("olga") as r:
        t = stack.register("olga", webpush="browser", fcm="android", apns="iphone", webhook="bot", rpc=r)
        got = rpc_ok(r, "push_targets")["targets"]
        assert sorted((x["device"], x["provider"]) for x in got) == sorted(
            (dev, p) for p, (dev, _, _) in t.by.items())
        for x in got:
            assert x["created"] > 0 and x["failures"] == 0, x
        # Registering a device again replaces its target.
        rpc_ok(r, "push_register", device="bot", provider="fcm", token="fcm-olga-again")
        assert {(x["device"], x["provider"]) for x in rpc_ok(r, "push_targets")["targets"]} == {
            ("browser", "webpush"), ("android", "fcm"), ("iphone", "apns"), ("bot", "fcm")}
        assert rpc_ok(r, "push_unregister", device="bot")["removed"] == 1
        assert rpc_ok(r, "push_unregister", device="bot")["removed"] == 0
        assert len(rpc_ok(r, "push_targets")["targets"]) == 3
        sub = stack.webpush.subscribe()
        rpc_fails(r, "bad_request", "push_register", device="x", provider="pigeon", token="t")
        rpc_fails(r, "bad_request", "push_register", device="x", provider="webpush", endpoint=sub.endpoint,
                  p256dh=sub.p256dh[:-4], auth=sub.auth)
        rpc_fails(r, "bad_request", "push_register", device="x", provider="webpush", endpoint=sub.endpoint,
                  p256dh=sub.p256dh, auth=b64u(os.urandom(8)))
        rpc_fails(r, "bad_request", "push_register", device="x", provider="webhook",
                  url="http://127.0.0.1/" + "a" * 2048)
        rpc_fails(r, "bad_request", "push_register", device="x/y", provider="fcm", token="t")
        rpc_fails(r, "bad_request", "push_register", device="x", provider="fcm")
        rpc_fails(r, "bad_request", "push_register", device="x", provider="webhook", url="ftp://127.0.0.1/x")


# ---- who is notified --------------------------------------------------------------

def test_offline_person_notified_on_every_provider(stack):
    bob = stack.register("bob", webpush="browser", fcm="android", apns="iphone", webhook="bot")
    mid, seq = stack.send("bob", body="meet at the usual place")
    got = bob.wait(1)
    expect(bob, got, direct("alice", mid, seq))
    # No text without previews, anywhere in any request.
    for p, reqs in bob.requests().items():
        assert len(reqs) == 1, (p, reqs)
        assert "usual place" not in json.dumps({k: v for k, v in reqs[0].items() if k != "at"}), (p, reqs[0])
    wp = bob.requests()["webpush"][0]
    assert wp["ttl"] == 86400 and wp["urgency"] == "high" and wp["topic"], wp
    assert wp["vapid"]["sub"] == "mailto:ops@mqchat.test"
    fcm = bob.requests()["fcm"][0]["message"]
    assert fcm["android"]["priority"].lower() == "high" and fcm["android"]["collapse_key"] == "d:alice", fcm
    ap = bob.requests()["apns"][0]
    assert ap["headers"]["apns-collapse-id"] == "d:alice" and ap["headers"]["apns-priority"] == "10", ap
    assert ap["payload"]["aps"]["thread-id"] == "d:alice" and ap["payload"]["aps"]["alert"], ap
    # Done: nothing left in the queue (once each answer has been read).
    until(lambda: stack.jobs("bob") == [], "bob's jobs done", lambda: stack.jobs("bob"))


def test_room_members_notified_never_the_sender(stack):
    alice = stack.register("alice", webhook="alice-bot", rpc=stack.rpc)
    carol = stack.register("carol", webpush="browser", apns="iphone")
    dora = stack.register("dora", fcm="android", webhook="bot")
    mid, seq = stack.send(room_name="den", body="see you at 8")
    for t in (carol, dora):
        expect(t, t.wait(1), in_room("den", "alice", mid, seq))
    assert stack.apns.requests_of(carol.by["apns"][2])[0]["headers"]["apns-collapse-id"] == "r:den"
    # A note to herself notifies nobody either.
    stack.send("alice", body="note to self")
    stack.nothing_for(alice)


def test_online_person_not_notified(stack):
    kate = stack.register("kate", fcm="android", webhook="bot")
    with stack.session("kate"):
        stack.barrier()
        stack.send("kate", body="you are here")
        stack.nothing_for(kate)
    mid, seq = stack.send("kate", body="now you are not")
    expect(kate, kate.wait(1), direct("alice", mid, seq))


def test_a_job_whose_person_came_online_is_dropped(stack):
    rita = stack.register("rita", webhook="bot")
    key = rita.by["webhook"][2]
    # The first try fails and the next waits 6 s: time enough to come online
    # (the person's presence may wait for the interval of her last change).
    stack.webhook.answer(key, 503, times=1, retry_after=6)
    stack.send("rita", body="are you there?")
    stack.webhook.wait_requests(1, key=key)
    with stack.session("rita"):
        stack.barrier()
        until(lambda: stack.jobs("rita") == [], "rita's job dropped", lambda: stack.jobs("rita"), timeout=T)
    assert [r["status"] for r in stack.webhook.requests_of(key)] == [503]


def test_messages_collapse_into_one_notification(stack):
    mona = stack.register("mona", webpush="browser", webhook="bot")
    ids = ["c%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(5)]
    infos = [stack.alice.c.publish(inbox("mona", "alice"), harness.envelope("quick %d" % i, id=i_d), qos=1)
             for i, i_d in enumerate(ids)]
    for info in infos:
        info.wait_for_publish(timeout=10)
    seq = stack.seq_of(ids[-1])
    expect(mona, mona.wait(1), direct("alice", ids[-1], seq, count=5))
    stack.nothing_for()
    assert all(len(r) == 1 for r in mona.requests().values()), mona.requests()


def test_previews_when_the_person_opts_in(stack):
    with stack.session("lena") as r:
        assert rpc_ok(r, "push_settings")["previews"] is False
        assert rpc_ok(r, "push_settings", previews=True)["previews"] is True
        assert rpc_ok(r, "push_settings")["previews"] is True
        lena = stack.register("lena", webpush="browser", apns="iphone", webhook="bot", rpc=r)
    body = "Grüße aus Köln! " * 20     # 320 characters, more bytes
    mid, seq = stack.send("lena", body=body)
    want = dict(direct("alice", mid, seq), body=body[:200])
    expect(lena, lena.wait(1), want)
    alert = stack.apns.requests_of(lena.by["apns"][2])[0]["payload"]["aps"]["alert"]
    assert body[:40] in json.dumps(alert, ensure_ascii=False), alert


# ---- mute ---------------------------------------------------------------------

def test_mute_and_unmute(stack):
    with stack.session("ivan") as r:
        ivan = stack.register("ivan", webhook="bot", rpc=r)
        now = time.time() * 1000
        until = rpc_ok(r, "mute", **{"with": "alice", "for_s": 3600})["until"]
        assert now + 3600e3 - 60e3 < until < now + 3600e3 + 60e3, until
        assert rpc_ok(r, "mute", room="attic")["until"] == 0
        assert sorted(rpc_ok(r, "mutes")["mutes"], key=json.dumps) == sorted(
            [{"with": "alice", "until": until}, {"room": "attic", "until": 0}], key=json.dumps)
    stack.send("ivan", body="muted")
    stack.send(room_name="attic", body="muted too")
    stack.nothing_for(ivan)
    with stack.session("ivan") as r:
        rpc_ok(r, "unmute", **{"with": "alice"})
        rpc_ok(r, "unmute", room="attic")
        assert rpc_ok(r, "mutes")["mutes"] == []
    mid, seq = stack.send("ivan", body="heard")
    expect(ivan, ivan.wait(1), direct("alice", mid, seq))
    mid, seq = stack.send(room_name="attic", body="heard too")
    expect(ivan, ivan.wait(2), in_room("attic", "alice", mid, seq))


# ---- what providers answer -------------------------------------------------------

def test_gone_targets_are_removed(stack):
    with stack.session("henry") as r:
        henry = stack.register("henry", webpush="browser", fcm="android", apns="iphone", webhook="bot", rpc=r)
        ipad = stack.register("henry", apns="ipad", rpc=r)
    stack.webpush.answer(henry.by["webpush"][2], 410)
    stack.fcm.answer(henry.by["fcm"][2], 404)                # NOT_FOUND, UNREGISTERED
    stack.apns.answer(henry.by["apns"][2], 410)              # Unregistered
    stack.apns.answer(ipad.by["apns"][2], 400)               # BadDeviceToken
    stack.send("henry", body="anyone there?")
    for t in (henry, ipad):
        for p, dev, fake, key in t.keys():
            fake.wait_requests(1, key=key)

    def gone():
        return sorted(dev for (dev,) in stack.push_db("SELECT device FROM targets WHERE user='henry'")) == ["bot"]
    until(gone, "henry's gone targets removed",
          lambda: stack.push_db("SELECT device, provider FROM targets WHERE user='henry'"))
    with stack.session("henry") as r:
        assert [(x["device"], x["provider"]) for x in rpc_ok(r, "push_targets")["targets"]] == [("bot", "webhook")]
    mid, seq = stack.send("henry", body="and now?")
    hook = stack.webhook.wait_delivered(2, key=henry.by["webhook"][2])
    assert hook[-1]["notification"] == direct("alice", mid, seq)
    stack.nothing_for()
    for t in (henry, ipad):
        for p, dev, fake, key in t.keys():
            if p != "webhook":
                assert len(fake.requests_of(key)) == 1, (p, dev, fake.requests_of(key))


def test_429_is_retried_after_retry_after(stack):
    grace = stack.register("grace", webpush="browser", fcm="android", apns="iphone", webhook="bot")
    stack.webpush.answer(grace.by["webpush"][2], 429, times=1, retry_after=1)
    # An HTTP date two seconds ahead: at least one after the answer.
    stack.fcm.answer(grace.by["fcm"][2], 429, times=1, retry_after=email.utils.formatdate(time.time() + 2, usegmt=True))
    stack.apns.answer(grace.by["apns"][2], 429, times=1)     # TooManyRequests, no Retry-After
    stack.webhook.answer(grace.by["webhook"][2], 503, times=1, retry_after=1)
    mid, seq = stack.send("grace", body="try again")
    expect(grace, grace.wait(1, timeout=T + 10), direct("alice", mid, seq))
    for p, reqs in grace.requests().items():
        assert [r["status"] // 100 for r in reqs] == [4 if p != "webhook" else 5, 2], (p, reqs)
        gap = reqs[1]["at"] - reqs[0]["at"]
        # Retry-After: 1, or (APNs sent none) the first backoff step: 1 s with jitter.
        assert (0.5 if p == "apns" else 0.95) <= gap < 10, (p, gap)
    stack.nothing_for()
    assert all(len(r) == 2 for r in grace.requests().values()), grace.requests()


def test_fcm_token_expired_is_fetched_again(stack):
    quinn = stack.register("quinn", fcm="android")
    key = quinn.by["fcm"][2]
    mid, seq = stack.send("quinn", body="one")
    quinn.wait(1)
    tokens = len(stack.fcm.token_requests)
    stack.fcm.expire_tokens()
    stack.fcm_expired += 1
    try:
        mid, seq = stack.send("quinn", body="two")
        harness.wait_for(lambda: len(stack.fcm.deliveries(key)) >= 2, T, what="quinn's second FCM notification")
    finally:
        # The one refusal expected: the expired token.
        with stack.fcm.lock:
            refused, stack.fcm.refused[:] = list(stack.fcm.refused), []
    assert [(r["status"], "expired" in r["reason"]) for r in refused] == [(401, True)], refused
    assert stack.fcm.notifications(key)[-1] == as_fcm(direct("alice", mid, seq))
    assert len(stack.fcm.token_requests) == tokens + 1


def test_provider_down_and_archiver_restart_lose_nothing(stack):
    frank = stack.register("frank", webpush="browser", fcm="android", apns="iphone", webhook="bot")
    sam = stack.register("sam", webhook="bot")
    for f in stack.fakes:
        f.down()
    try:
        ids = [stack.send("frank", body="while down %d" % i)[0] for i in range(3)]

        def tried():
            # Every job holds the 3 messages, and the webhook's has failed.
            rows = stack.push_db("SELECT device, count, attempts FROM queue WHERE user='frank'")
            return sorted((d, c) for d, c, _ in rows) == sorted((d, 3) for _, d, _, _ in frank.keys()) \
                and any(d == "bot" and a >= 1 for d, _, a in rows)
        until(tried, "frank's jobs, each with 3 messages, tried", lambda: stack.jobs("frank"))
        assert stack.arch.stop() == 0
        # Stored by the next archiver (the broker keeps them in its session):
        # 2 more from alice, and sam writes in a room while the archiver
        # cannot know he is online, then leaves: he is a member, but the
        # sender, so his own target is never notified.
        ids += [stack.send("frank", body="while stopped %d" % i, stored=False)[0] for i in range(2)]
        ymid = uuid.uuid4().hex
        with stack.session("sam", barrier=False) as r:
            r.c.publish(room("yard", "sam"), harness.envelope("in the yard", id=ymid))
        stack.arch.start()
        stack.runs += 1
        seq = stack.seq_of(ids[-1])
        yseq = stack.seq_of(ymid, "sam")
        until(lambda: sorted((conv, n) for _, conv, n in stack.jobs("frank")) ==
              sorted([("d:alice", 5)] * 4 + [("r:yard", 1)] * 4),
              "frank's jobs: alice's 5 messages and sam's 1", lambda: stack.jobs("frank"))
    finally:
        for f in stack.fakes:
            f.up()
    got = frank.wait(2, timeout=60)
    want = [direct("alice", ids[-1], seq, count=5), in_room("yard", "sam", ymid, yseq)]
    for p, notes in got.items():
        assert sorted(notes, key=lambda n: "room" in n) == [as_fcm(w) if p == "fcm" else w for w in want], (p, notes)
    stack.nothing_for(sam)
    assert all(len(r) == 2 for r in frank.requests().values()), frank.requests()


# ---- targets go with the device and the account ----------------------------------

def device_token(rpc, device):
    """A token for device; password checks are throttled: wait as told."""
    deadline = time.monotonic() + T
    while True:
        ans = rpc.call("device_token", device=device, password=PASSWORD)
        if ans["ok"] or ans["error"] != "rate_limited" or time.monotonic() > deadline:
            assert ans["ok"] is True, ans
            return ans["token"]
        time.sleep(ans["retry_ms"] / 1000)


def test_revoked_device_and_deleted_account_lose_their_targets(stack):
    with stack.session("mike") as r:
        for dev in ("phone", "tablet"):
            device_token(r, dev)
        stack.register("mike", webhook="phone", fcm="tablet", rpc=r)
        stack.register("mike", webpush="laptop", rpc=r)
        assert rpc_ok(r, "device_revoke", device="phone")["revoked"] == 1
        assert sorted(x["device"] for x in rpc_ok(r, "push_targets")["targets"]) == ["laptop", "tablet"]
    # The operator's revoke, and user del, do the same.
    cli = subprocess.run([harness.ARCHIVER, "--data", stack.datadir, "user", "revoke", "mike", "tablet"],
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    assert stack.push_db("SELECT device FROM targets WHERE user='mike'") == [("laptop",)]
    stack.register("paul", webhook="bot", fcm="phone")
    cli = subprocess.run([harness.ARCHIVER, "--data", stack.datadir, "user", "del", "paul"],
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    assert stack.push_db("SELECT * FROM targets WHERE user='paul'") == []
    # delete_account over RPC: the broker closes the connection, the answer may not come.
    stack.register("nina", webpush="browser", webhook="bot")
    c = harness.Client(stack.broker.port, "nina", PASSWORD, client_id="nina@app")
    assert c.connect() == 0
    try:
        c.subscribe("chat/rpc/nina/resp")
        c.publish("chat/rpc/nina/req", {"id": "z1", "op": "delete_account", "password": PASSWORD})
        harness.wait_for(lambda: stack.push_db("SELECT * FROM targets WHERE user='nina'") == [], T,
                         what="nina's targets gone with her account")
    finally:
        c.close()
