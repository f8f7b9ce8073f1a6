"""test_push_smoke.py - the push thread end to end with the smallest provider,
a webhook receiver here (http.server on 127.0.0.1): a person who is offline
gets a signed notification, one who is online gets none, and a data folder
without vapid.pem (an older release's) gets one at `run`. The fake providers
of push_fakes.py check the four providers in depth (test_push.py)."""
import hashlib
import hmac
import http.server
import json
import os
import queue
import sqlite3
import subprocess
import threading
import time

import harness
from archiver_util import Rpc, arch_env, inbox, rpc_ok  # noqa: F401 (fixture)

COLLAPSE_MS = 300


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records each POST (path,
    headers, body) and answers 200."""

    def __init__(self):
        self.got = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got.put((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, timeout=20):
        return self.got.get(timeout=timeout)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait_presence(c, user, status, timeout=45):
    """Until c (subscribed to chat/presence/+) has seen user's presence be status."""
    deadline = time.monotonic() + timeout
    while True:
        m = c.get(max(0.05, deadline - time.monotonic()))
        if m.topic == "chat/presence/" + user and m.payload and json.loads(m.payload)["status"] == status:
            return


def register(env, user, url):
    c = env.user(user, client_id=user + "@reg")
    ans = rpc_ok(Rpc(c, user), "push_register", device="hook", provider="webhook", url=url)
    return c, ans["secret"]


def test_offline_gets_a_signed_webhook_online_does_not(arch_env, store):
    hooks = Receiver()
    # Written before the broker starts: its first snapshot has them.
    for u in ("alice", "bob", "carol"):
        store.add_user(u)
        store.set_privacy(u, presence="everyone")
    env = arch_env(args=["--push-webhook", "on", "--push-allow-http", "1",
                         "--push-collapse-ms", str(COLLAPSE_MS)])
    try:
        watch = env.user("alice", client_id="alice@watch")
        assert watch.subscribe("chat/presence/+") in (0, 1)
        alice = env.user("alice")
        bob, bob_secret = register(env, "bob", hooks.url + "/bob")
        carol, _ = register(env, "carol", hooks.url + "/carol")
        wait_presence(watch, "carol", "online")
        bob.close()
        wait_presence(watch, "bob", "offline")
        # The archiver has bob's change too once a round trip through it
        # has passed (its presence came before this request).
        rpc_ok(Rpc(alice, "alice"), "rooms")

        alice.publish(inbox("carol", "alice"), harness.envelope("hi carol", id="m-carol"))
        alice.publish(inbox("bob", "alice"), harness.envelope("hi bob", id="m-bob"))
        path, headers, body = hooks.get()
        assert path == "/bob", (path, body)
        assert headers["content-type"] == "application/json"
        ts = headers["x-mqchat-timestamp"]
        assert abs(int(ts) - time.time()) < 60
        want = hmac.new(bob_secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["x-mqchat-signature"] == "sha256=" + want
        n = json.loads(body)
        assert n == {"type": "message", "with": "alice", "from": "alice", "id": "m-bob",
                     "seq": n["seq"], "count": 1}, n
        # carol's text came first and she was online: nothing for her.
        assert hooks.got.empty()
        harness.wait_for(lambda: queue_len(env.datadir) == 0, what="push.db queue empty")
        assert hooks.got.empty()
        carol.close()
        assert env.arch.stop() == 0
        out = env.arch.output()
        assert "push: stopped: 1 sent" in out, out[-3000:]
    finally:
        hooks.stop()


def queue_len(datadir):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(datadir, "push.db"), uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM queue").fetchone()[0]
    finally:
        db.close()


def test_run_makes_the_vapid_key_of_an_older_data_folder(arch_env):
    env = arch_env()
    key = os.path.join(env.datadir, "vapid.pem")
    assert os.path.exists(key)
    assert os.stat(key).st_mode & 0o777 == 0o600
    with open(key) as f:
        pem = f.read()
    assert "PRIVATE KEY" in pem
    assert "push: made the Web Push (VAPID) key" in env.arch.output()
    env.arch.stop()
    env.arch.start()
    with open(key) as f:
        assert f.read() == pem
    assert env.arch.output().count("push: made the Web Push") == 1


def run(datadir, *args, timeout=20):
    return subprocess.run([harness.ARCHIVER, "--data", datadir, "run", "--port", "1"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def test_bad_push_settings_stop_the_start(arch_env):
    env = arch_env(start=False)
    d = env.datadir
    conf = os.path.join(d, "push.conf")
    cases = [
        (["--push-fcm-url", "http://127.0.0.1:9"], 1, "push_fcm_url http://127.0.0.1:9: not an https URL"),
        (["--push-apns-url", "ftp://x"], 1, "push_apns_url ftp://x"),
        (["--push-allow-http", "2"], 2, 'invalid value "2" for push_allow_http'),
        (["--push", "maybe"], 2, 'invalid value "maybe" for push'),
        (["--push-collapse-ms", "-1"], 2, "for push_collapse_ms"),
    ]
    for args, rc, text in cases:
        r = run(d, *args)
        assert r.returncode == rc and text in r.stderr, (args, r)
    for body, text in (("push_apns_key = %s/archiver.pw\n" % d, "go together: 1 of 4 set"),
                       ("push_fcm_credentials = %s/none.json\n" % d, "push_fcm_credentials %s/none.json" % d),
                       ("push_vapid_key = %s/none.pem\n" % d, "push_vapid_key %s/none.pem" % d),
                       ("push_vapid_subject = postmaster\n", "push_vapid_subject postmaster")):
        with open(conf, "w") as f:
            f.write(body)
        r = run(d, "-c", conf)
        assert r.returncode == 1 and text in r.stderr, (body, r)
    assert not os.path.exists(os.path.join(d, "vapid.pem"))
    # http URLs pass with push_allow_http; a bad service account is a bad setting too.
    with open(os.path.join(d, "sa.json"), "w") as f:
        f.write('{"project_id": "p"}')
    with open(conf, "w") as f:
        f.write("push_allow_http = 1\npush_fcm_url = http://127.0.0.1:9\npush_fcm_credentials = %s/sa.json\n" % d)
    r = run(d, "-c", conf)
    assert r.returncode == 1 and "not a service account" in r.stderr, r


def test_push_off(arch_env):
    env = arch_env(args=["--push", "off"])
    assert not os.path.exists(os.path.join(env.datadir, "vapid.pem"))
    assert not os.path.exists(os.path.join(env.datadir, "push.db"))
    assert "push: on" not in env.arch.output()
    assert env.arch.stop() == 0


class Hanging(Receiver):
    """A webhook endpoint that takes every request and never answers
    (until stopped)."""

    def __init__(self):
        self.release = threading.Event()
        super().__init__()
        outer = self

        def do_POST(handler):
            outer.got.put(handler.path)
            outer.release.wait(60)
        self.server.RequestHandlerClass.do_POST = do_POST

    def stop(self):
        self.release.set()
        super().stop()


def test_sigterm_leaves_unsent_jobs_for_the_next_start(arch_env, store):
    hooks = Hanging()
    for u in ("alice", "bob"):
        store.add_user(u)
    env = arch_env(args=["--push-webhook", "on", "--push-allow-http", "1", "--push-collapse-ms", "0"])
    try:
        bob, _ = register(env, "bob", hooks.url + "/bob")
        bob.close()
        alice = env.user("alice")
        # bob's presence may lag his leaving: send until a request comes.
        deadline = time.monotonic() + 40
        while hooks.got.empty():
            assert time.monotonic() < deadline, env.arch.output()[-3000:]
            alice.publish(inbox("bob", "alice"), harness.envelope("are you there?"))
            time.sleep(0.5)
        t0 = time.monotonic()
        assert env.arch.stop() == 0
        took = time.monotonic() - t0
        assert took < 8, took       # the request in flight had 2 s, then was dropped
        out = env.arch.output()
        assert "push: 1 request(s) still in flight at the stop" in out, out[-3000:]
        assert queue_len(env.datadir) == 1
    finally:
        hooks.stop()


def test_a_url_inside_the_network_is_never_connected_to(arch_env, store):
    """Without push_allow_http, people's URLs reach public addresses only:
    a webhook at https://127.0.0.1 is given up without a connection."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0)
    for u in ("alice", "bob"):
        store.add_user(u)
    env = arch_env(args=["--push-webhook", "on", "--push-collapse-ms", "0"])
    try:
        bob, _ = register(env, "bob", "https://127.0.0.1:%d/hook" % listener.getsockname()[1])
        bob.close()
        alice = env.user("alice")
        deadline = time.monotonic() + 40
        while "its host is not at a public address; given up" not in env.arch.output():
            assert time.monotonic() < deadline, env.arch.output()[-3000:]
            alice.publish(inbox("bob", "alice"), harness.envelope("are you there?"))
            time.sleep(0.5)
        try:
            conn, _ = listener.accept()
            conn.close()
            raise AssertionError("the archiver connected to 127.0.0.1")
        except BlockingIOError:
            pass
    finally:
        listener.close()
