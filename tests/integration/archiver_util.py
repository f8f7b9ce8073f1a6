"""archiver_util.py - helpers for the archiver daemon's integration tests.

    from archiver_util import arch_env, rpc, ...

    def test_x(arch_env):
        env = arch_env()                    # broker + plugin + archiver running
        alice = env.user("alice")           # a connected harness.Client
        alice.publish(inbox("bob", "alice"), envelope("hi"))
        env.wait_rows(1)                    # archive.db read with sqlite3

The archiver runs as a harness.Proc with a temp data folder holding auth.db
(written by harness.Store), the service account `archiver` (kind service)
and its password in archiver.pw (0600). Everything started is stopped by the
fixture, pass or fail; on failure the archiver's log is printed.
"""
import json
import os
import secrets
import signal
import sqlite3
import threading
import time
import uuid

import pytest

import harness

PASSWORD = "password-xxxx"   # harness.Store.add_user's default
DAY_MS = 86400 * 1000


def inbox(to, frm):
    return "chat/inbox/%s/%s" % (to, frm)


def room(name, frm):
    return "chat/room/%s/%s" % (name, frm)


def rows(datadir, sql="SELECT sender, recipient, room, conv, type, id, body, ts, server_ts, status"
         " FROM messages ORDER BY seq", *args):
    """Read archive.db directly (read-only, so a test never writes by accident)."""
    return read_db(os.path.join(datadir, "archive.db"), sql, *args)


def read_db(path, sql, *args):
    """Rows of sql on the SQLite file at path, opened read-only; [] if the
    file or the table is not there yet."""
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        db.close()


def count(datadir):
    return rows(datadir, "SELECT count(*) FROM messages")[0][0] if rows(
        datadir, "SELECT name FROM sqlite_master WHERE name='messages'") else 0


class Archiver:
    """The daemon as a subprocess of the test."""

    def __init__(self, datadir, port, args=()):
        self.datadir = datadir
        self.port = port
        self.args = list(args)
        self.proc = None
        self.logpath = os.path.join(datadir, "archiver-%d.log" % port)

    def start(self, wait=True, args=()):
        argv = [harness.ARCHIVER, "--data", self.datadir, "run", "--port", str(self.port),
                "-v"] + self.args + list(args)
        before = self.output().count("archiver@0: subscribed")
        self.proc = harness.Proc(argv, self.logpath)
        if wait:
            self.wait_ready(before + 1)
        return self

    def wait_ready(self, n=1, timeout=harness.DEFAULT_TIMEOUT):
        def ready():
            if self.proc.proc.poll() is not None:
                raise AssertionError("archiver exited with %s:\n%s" % (self.proc.proc.returncode,
                                                                         self.output()))
            return self.output().count("archiver@0: subscribed") >= n
        harness.wait_for(ready, timeout, what="archiver subscribed")

    def output(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=harness.DEFAULT_TIMEOUT, n=1):
        return harness.wait_for(lambda: self.output().count(text) >= n, timeout,
                                what="archiver log line %r" % text)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None:
            return None
        rc = self.proc.stop(sig, timeout)
        self.proc = None
        return rc

    def running(self):
        return self.proc is not None and self.proc.proc.poll() is None


class Env:
    """One test's world: data folder, user store, broker, archiver, clients."""

    def __init__(self, datadir, store, make_broker, clients, registration="off", args=(),
                 start=True, broker_kw=None, users=(), rooms=None, spool_mb=0):
        """spool_mb > 0: the plugin writes DATA/spool of that many MiB and
        the archiver reads it (--spool) instead of subscribing."""
        self.datadir = datadir
        if spool_mb:
            broker_kw = dict(broker_kw or {})
            broker_kw["plugin_opts"] = dict(broker_kw.get("plugin_opts") or {}, spool_mb=spool_mb)
            args = list(args) + ["--spool"]
        self.store = store
        self.clients = clients
        # Users and rooms exist before the broker starts, so the plugin's
        # first snapshot has them (no wait for a reload).
        for u in users:
            store.add_user(u)
        for r, members in (rooms or {}).items():
            store.add_room(r, members=members)
        self.pw = "svc-" + secrets.token_hex(16)   # a secret of 36: init makes 32
        store.add_user("archiver", password=self.pw, kind="service")
        pwfile = os.path.join(datadir, "archiver.pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.pw + "\n")
        self.broker = make_broker(registration=registration, **(broker_kw or {}))
        self.arch = Archiver(datadir, self.broker.port, ["--registration", registration] + list(args))
        if start:
            self.arch.start()

    def user(self, name, password=PASSWORD, v5=False, add=False, **kw):
        """Connect a user (made at setup, or added now with add=True, then
        retried until the plugin has reloaded); returns the client."""
        if add:
            self.store.add_user(name, password=password)
        c = self.clients(self.broker, name, password, v5=v5, **kw)
        deadline = time.monotonic() + 5
        while True:
            code = c.connect()
            if code == 0:
                return c
            # The plugin may not have reloaded auth.db yet.
            c.close()
            assert time.monotonic() < deadline, "login of %s refused: %s" % (name, code)
            time.sleep(0.1)
            c = self.clients(self.broker, name, password, v5=v5, **kw)

    def rows(self, *a):
        return rows(self.datadir, *a)

    def count(self):
        return count(self.datadir)

    def wait_rows(self, n, timeout=harness.DEFAULT_TIMEOUT):
        return harness.wait_for(lambda: self.count() >= n, timeout,
                                what="%d archived messages (have %d)" % (n, self.count()))


class Rpc:
    """A user's RPC channel: subscribe to chat/rpc/<me>/resp, call ops."""

    def __init__(self, client, user):
        self.c = client
        self.user = user
        assert client.subscribe("chat/rpc/%s/resp" % user) in (0, 1)

    def call(self, op=None, raw=None, timeout=harness.DEFAULT_TIMEOUT, **args):
        """Send a request (a dict with a fresh id, or raw bytes) and return
        the parsed answer with the matching id (or id null for raw)."""
        if raw is None:
            req = {"id": uuid.uuid4().hex, "op": op}
            req.update(args)
            payload = json.dumps(req)
            want = req["id"]
        else:
            payload = raw
            want = None
        self.c.publish("chat/rpc/%s/req" % self.user, payload)
        return self.wait(want, timeout)

    def wait(self, want, timeout=harness.DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            m = self.c.get(max(0.05, deadline - time.monotonic()))
            if m.topic != "chat/rpc/%s/resp" % self.user:
                continue
            ans = json.loads(m.payload)
            if ans.get("id") == want:
                return ans
            assert time.monotonic() < deadline, "no answer with id %r" % want


def rpc_ok(rpc, op, **args):
    """Call op and return its answer, which must be ok."""
    ans = rpc.call(op, **args)
    assert ans["ok"] is True, (op, args, ans)
    return ans


def rpc_fails(rpc, code, op, **args):
    """Call op and return its answer, which must be the error code, with a
    message for people."""
    ans = rpc.call(op, **args)
    assert ans["ok"] is False and ans["error"] == code, (op, args, ans)
    assert ans["message"], ans
    return ans


def env_factory(datadir, store, make_broker, clients, request, **defaults):
    """The body of arch_env, with defaults for Env (spool_mb=4 runs a
    module's tests with the spool: test_spool_archive.py)."""
    made = []

    def make(**kw):
        e = Env(datadir, store, make_broker, clients, **dict(defaults, **kw))
        made.append(e)
        return e
    yield make
    failed = getattr(request.node, "rep_call", None)
    for e in made:
        for c in list(getattr(e, "extra_procs", [])):
            c.stop()
        e.arch.stop()
        if failed is not None and failed.failed:
            print("---- archiver log ----\n%s" % e.arch.output()[-20000:])


@pytest.fixture
def arch_env(datadir, store, make_broker, clients, request):
    """Factory: arch_env(registration="off", args=[...], start=True) -> Env."""
    yield from env_factory(datadir, store, make_broker, clients, request)


def publish_many(client, topic, n, prefix="m", body="x"):
    """Publish n QoS 1 envelopes as fast as paho allows and wait for every
    PUBACK; returns the ids in order."""
    ids = ["%s%06d" % (prefix, i) for i in range(n)]
    infos = []
    for i in ids:
        infos.append(client.c.publish(topic, json.dumps(
            {"id": i, "type": "text", "body": body, "ts": int(time.time() * 1000)}), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=30)
        assert info.is_published()
    return ids
