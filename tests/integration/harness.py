"""harness.py - real broker, real plugin, real SQLite, real clients for tests.

Every test gets its own temp data folder and a free loopback port, starts a
real mosquitto with build/mqchat_auth.so, waits for it with a bounded poll,
and always stops what it started (pytest fixtures in conftest.py).

The user store is written here with Python's sqlite3 and hashlib, from the
one schema file common/userdb_schema.sql: an independent writer of the same
format the CLI writes, so the plugin is tested against the format, not
against our own C helpers.
"""
import base64
import hashlib
import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import paho.mqtt.client as mqtt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
PLUGIN = os.path.join(BUILD, "mqchat_auth.so")
ARCHIVER = os.path.join(BUILD, "mqchat-archiver")
CLIENT = os.path.join(BUILD, "mqchat")
SCHEMA = os.path.join(ROOT, "common", "userdb_schema.sql")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

# Low on purpose: tests create many users; the plugin reads the cost per row.
TEST_ITERATIONS = 1000
DEFAULT_TIMEOUT = 10.0


def wait_for(cond, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Poll cond() until it returns a true value; return it. Raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pbkdf2_hash(password, iterations=TEST_ITERATIONS, salt=None):
    """The stored form $pbkdf2-sha512$<iter>$<salt b64>$<hash b64>."""
    salt = salt or os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return "$pbkdf2-sha512$%d$%s$%s" % (
        iterations, base64.b64encode(salt).decode(), base64.b64encode(key).decode())


class Store:
    """The user store (auth.db) of one test, written directly with sqlite3."""

    def __init__(self, path):
        self.path = path
        with open(SCHEMA) as f:
            schema = f.read()
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        db.commit()
        db.close()

    def _db(self):
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def sql(self, statement, *args):
        db = self._db()
        try:
            cur = db.execute(statement, args)
            rows = cur.fetchall()
        finally:
            db.close()
        return rows

    def add_user(self, name, password="password-" + "x" * 4, kind="user", nick=None, enabled=True):
        self.sql("INSERT INTO users(name, kind, nick, pwhash, enabled, created) VALUES(?,?,?,?,?,?)",
                 name, kind, nick or name, pbkdf2_hash(password), 1 if enabled else 0,
                 int(time.time() * 1000))
        return password

    def set_password(self, name, password):
        self.sql("UPDATE users SET pwhash=? WHERE name=?", pbkdf2_hash(password), name)

    def set_enabled(self, name, enabled):
        self.sql("UPDATE users SET enabled=? WHERE name=?", 1 if enabled else 0, name)

    def delete_user(self, name):
        self.sql("DELETE FROM users WHERE name=?", name)

    def add_room(self, room, members=(), retention_days=0):
        self.sql("INSERT INTO rooms(name, retention_days, created) VALUES(?,?,?)",
                 room, retention_days, int(time.time() * 1000))
        for m in members:
            self.add_member(room, m)

    def add_member(self, room, user):
        self.sql("INSERT INTO members(room, user) VALUES(?,?)", room, user)

    def remove_member(self, room, user):
        self.sql("DELETE FROM members WHERE room=? AND user=?", room, user)

    def delete_room(self, room):
        self.sql("DELETE FROM rooms WHERE name=?", room)

    def block(self, user, blocked):
        self.sql("INSERT OR IGNORE INTO blocks(user, blocked) VALUES(?,?)", user, blocked)

    def unblock(self, user, blocked):
        self.sql("DELETE FROM blocks WHERE user=? AND blocked=?", user, blocked)


class Broker:
    """A real mosquitto with the real plugin on a free loopback port."""

    def __init__(self, datadir, port=None, registration="off", extra_conf="", plugin_opts=None,
                 plugin=PLUGIN, db=None):
        self.datadir = datadir
        self.port = port or free_port()
        self.conf = os.path.join(datadir, "mosquitto-%d.conf" % self.port)
        self.logpath = os.path.join(datadir, "mosquitto-%d.log" % self.port)
        self.db = db or os.path.join(datadir, "auth.db")
        self.proc = None
        opts = {"db": self.db, "registration": registration}
        opts.update(plugin_opts or {})
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            "listener %d 127.0.0.1" % self.port,
            "plugin %s" % plugin,
        ]
        lines += ["plugin_opt_%s %s" % (k, v) for k, v in opts.items() if v is not None]
        lines += [
            "persistence true",
            "persistence_location %s/" % datadir,
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # Tests are no deployment: keep the test user, so the temp folder
            # and the build tree need no ownership games.
            lines.append("user root")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_conf + "\n")

    def start(self, expect_fail=False, timeout=DEFAULT_TIMEOUT):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.datadir)
        if expect_fail:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError("broker started but was expected to fail:\n" + self.output())
            return self.proc.returncode

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("broker exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(up, timeout, what="broker on port %d" % self.port)
        return 0

    def output(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def wait_log(self, text, timeout=DEFAULT_TIMEOUT):
        return wait_for(lambda: text in self.output(), timeout, what="broker log line %r" % text)


class Client:
    """A paho client with blocking helpers and bounded waits.

    Received messages are kept in self.messages (a queue of paho messages)."""

    def __init__(self, port, username, password, client_id=None, v5=False, clean=True,
                 will=None, keepalive=30):
        self.v5 = v5
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client_id = client_id if client_id is not None else username
        if v5:
            self.c = mqtt.Client(client_id=self.client_id, protocol=proto)
        else:
            self.c = mqtt.Client(client_id=self.client_id, protocol=proto, clean_session=clean)
        self.clean = clean
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(*will)
        self.port = port
        self.keepalive = keepalive
        self.messages = queue.Queue()
        self.connack = None
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.subacks = {}
        self.pubacks = {}
        self.lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.connected = threading.Event()

    def _on_connect(self, c, u, flags, rc, props=None):
        self.connack = rc
        self.connected.set()

    def _on_disconnect(self, c, u, rc, props=None):
        self.disconnect_rc = rc
        self.disconnected.set()
        self.connected.set()

    def _on_subscribe(self, c, u, mid, granted, props=None):
        with self.lock:
            self.subacks[mid] = granted

    def _on_publish(self, c, u, mid):
        with self.lock:
            self.pubacks[mid] = True

    def connect(self, timeout=DEFAULT_TIMEOUT):
        """Connect and return the CONNACK code (0 = accepted)."""
        kw = {}
        if self.v5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            kw["clean_start"] = self.clean
            if not self.clean:
                p = Properties(PacketTypes.CONNECT)
                p.SessionExpiryInterval = 3600
                kw["properties"] = p
        self.c.connect("127.0.0.1", self.port, self.keepalive, **kw)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            raise AssertionError("no CONNACK within %.1fs" % timeout)
        rc = self.connack
        code = rc.value if hasattr(rc, "value") else rc
        if code != 0:
            self.c.loop_stop()
        return code

    def subscribe(self, topic, qos=1, timeout=DEFAULT_TIMEOUT):
        """Subscribe and return the granted code (0..2 granted, >=0x80 refused)."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == 0, "subscribe not sent: %s" % rc
        granted = wait_for(lambda: self.subacks.get(mid), timeout, what="SUBACK for %s" % topic)
        g = granted[0]
        return g.value if hasattr(g, "value") else g

    def publish(self, topic, payload, qos=1, retain=False, wait=True, timeout=DEFAULT_TIMEOUT):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if wait and qos > 0:
            wait_for(lambda: self.pubacks.get(info.mid), timeout, what="PUBACK for %s" % topic)
        return info

    def barrier(self, timeout=DEFAULT_TIMEOUT):
        """A round trip through the broker: everything the broker sent before
        it has been received once this returns (subscribe to our own RPC
        response topic is always allowed, so use an unsubscribe instead)."""
        rc, mid = self.c.unsubscribe("chat/rpc/%s/resp" % (self.client_id.split("@")[0]))
        done = threading.Event()
        prev = self.c.on_unsubscribe

        def on_unsub(c, u, m, *a):
            if m == mid:
                done.set()
        self.c.on_unsubscribe = on_unsub
        try:
            if not done.wait(timeout):
                raise AssertionError("no UNSUBACK within %.1fs" % timeout)
        finally:
            self.c.on_unsubscribe = prev

    def get(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1fs" % timeout)

    def expect_none(self):
        """After a barrier, assert nothing arrived."""
        self.barrier()
        assert self.messages.empty(), "unexpected message on %s" % self.messages.queue[0].topic

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def envelope(body="hello", **kw):
    e = {"id": kw.pop("id", uuid.uuid4().hex), "type": "text", "body": body,
         "ts": int(time.time() * 1000)}
    e.update(kw)
    return json.dumps(e)


def receipt(ref, status="read", **kw):
    e = {"id": kw.pop("id", uuid.uuid4().hex), "type": "receipt", "ref": ref, "status": status}
    e.update(kw)
    return json.dumps(e)


class Proc:
    """A started helper process (archiver, client) that is always stopped."""

    def __init__(self, args, logpath, env=None, stdin=None):
        self.logpath = logpath
        self.log = open(logpath, "ab")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL)

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def make_datadir():
    d = tempfile.mkdtemp(prefix="mqchat-test-")
    os.chmod(d, 0o755)
    return d
