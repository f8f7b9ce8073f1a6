"""test_client_interop.py - an app on MQTT.js (tests/interop/app.js) and the
C client talk through the contract only: registration, chat both ways,
delivered/read receipts both ways, sync of the archive.

The app's dependency (npm package mqtt, pinned in tests/interop/package.json
and package-lock.json) is installed here into tests/interop/node_modules.
The test is skipped only when node or npm is not installed."""
import json
import os
import queue
import shutil
import subprocess
import threading

import pytest

import harness
from client_util import Listener, add_archiver_account, archivers, ok, texts, users  # noqa: F401

INTEROP = os.path.join(harness.ROOT, "tests", "interop")
NODE = shutil.which("node")
NPM = shutil.which("npm")


def npm_install():
    if os.path.isdir(os.path.join(INTEROP, "node_modules", "mqtt")):
        return
    p = subprocess.run([NPM, "install", "--no-audit", "--no-fund"], cwd=INTEROP,
                       capture_output=True, timeout=600)
    assert p.returncode == 0, "npm install failed:\n%s%s" % (p.stdout.decode(), p.stderr.decode())


class App:
    """The Node.js app as a process: JSON events out, commands in."""

    def __init__(self, port, user, peer, password, register):
        args = [NODE, os.path.join(INTEROP, "app.js"), "--port", str(port), "--user", user,
                "--peer", peer, "--nick", user.capitalize(), "--timeout", "15"]
        if register:
            args.append("--register")
        env = dict(os.environ, APP_PASSWORD=password)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=INTEROP)
        self.events = queue.Queue()
        self.log = []
        self.pending = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            ev = json.loads(line)
            self.log.append(ev)
            self.events.put(ev)

    def send(self, command):
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, pred, what, timeout=harness.DEFAULT_TIMEOUT):
        """The first not yet taken event matching pred, in arrival order
        (events may come in any order: a receipt can beat its PUBACK)."""
        def find():
            while True:
                try:
                    self.pending.append(self.events.get_nowait())
                except queue.Empty:
                    break
            for i, ev in enumerate(self.pending):
                if ev.get("event") == "error":
                    raise AssertionError("app failed: %r" % ev)
                if pred(ev):
                    return self.pending.pop(i)
            return None
        return harness.wait_for(find, timeout, what="app event: %s (log %r, stderr %s)" % (
            what, self.log, self.stderr() if self.proc.poll() is not None else ""))

    def stderr(self):
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


@pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are not installed")
def test_mqttjs_app_and_c_client(store, make_broker, datadir, archivers):
    npm_install()
    users(store, "alice")
    add_archiver_account(store)
    b = make_broker(registration="open")
    archivers(datadir, store, b, "alice", extra=["--registration", "open"])

    with Listener(b, datadir, "alice", timeout=5) as alice:
        alice.wait_ready()
        app = App(b.port, "nora", "alice", "noras-password-1", register=True)
        try:
            reg = app.expect(lambda e: e["event"] == "registered", "registered", timeout=20)
            assert reg["ok"] is True, reg
            app.expect(lambda e: e["event"] == "ready", "ready", timeout=20)

            # app -> C client, and the C client's delivered receipt back
            app.send("send hello from node")
            sent = app.expect(lambda e: e["event"] == "sent", "sent")
            alice.wait_texts(1)
            assert texts(alice.lines()) == [(None, "nora", "hello from node")]
            app.expect(lambda e: e["event"] == "receipt" and e["ref"] == sent["id"]
                       and e["status"] == "delivered" and e["from"] == "alice", "delivered receipt")

            # C client -> app, and the app's delivered and read receipts back
            mid = ok(b, datadir, "alice", "send", "nora", "hello node").out.strip()
            got = app.expect(lambda e: e["event"] == "text", "text from alice")
            assert (got["from"], got["id"], got["body"]) == ("alice", mid, "hello node")
            assert isinstance(got["ts"], int)
            harness.wait_for(lambda: {"receipt: %s delivered by nora" % mid,
                                      "receipt: %s read by nora" % mid} <= set(alice.lines()),
                             what="receipts from the app")
            ok(b, datadir, "alice", "chat", "nora", device="pipe", stdin="and a chat line\n")
            got = app.expect(lambda e: e["event"] == "text", "chat line")
            assert got["body"] == "and a chat line"

            # the app syncs the archive: both directions, oldest first
            want = [("nora", "alice", "hello from node"), ("alice", "nora", "hello node"),
                    ("alice", "nora", "and a chat line")]

            def synced():
                app.send("sync")
                ev = app.expect(lambda e: e["event"] == "sync", "sync")
                return [(m["from"], m["to"], m["body"]) for m in ev["messages"]] == want
            harness.wait_for(synced, interval=0.2, what="the archive to hold the conversation")

            # the C client sees the same conversation
            r = ok(b, datadir, "alice", "history", "nora")
            assert [ln.split("] ", 1)[1].split("  (")[0] for ln in r.out.splitlines()] == [
                "nora: hello from node", "alice: hello node", "alice: and a chat line"]
            assert ok(b, datadir, "alice", "whois", "nora").out == "nora: nick Nora, kind user\n"
        finally:
            rc = app.stop()
        assert rc == 0, app.log
        assert app.log[-1] == {"event": "bye"}
