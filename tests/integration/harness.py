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
import contextlib
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

# Sanitized runs (make test SAN=1: build-san/, -fsanitize=address,undefined).
# The archiver and the client are sanitized programs: they report on stderr
# and exit with SAN_EXITCODE, which no program of ours uses, so a test that
# checks an exit status (or calls Proc.stop) sees the report. The broker is
# an unsanitized mosquitto loading the sanitized plugin: Broker.start
# preloads the ASan runtime (and the plugin itself, so a leak report still
# names the plugin's functions after mosquitto has dlclose()d it), sends its
# reports to files in the data folder, and Broker.stop raises with them.
SAN = os.environ.get("SAN") == "1"
SAN_EXITCODE = 86
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "SUMMARY: UndefinedBehaviorSanitizer")
if SAN:
    os.environ.setdefault("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1:exitcode=%d" % SAN_EXITCODE)
    os.environ.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=%d" % SAN_EXITCODE)


def san_report(text):
    """The sanitizer report in a process's output, or None."""
    for m in SAN_MARKERS:
        i = text.find(m)
        if i >= 0:
            return text[text.rfind("\n", 0, i) + 1:]
    return None


def san_own_leaks(report, own):
    """The report without the leaks that have no stack frame mentioning one
    of the strings in own (our sources or the plugin): an unsanitized broker
    leaks a little on its own error exits (e.g. a refused config), which is
    not ours to fix. Any other error is kept whole. None if nothing is left."""
    if "ERROR: LeakSanitizer" not in report:
        return report
    kept, block = [], None
    for line in report.splitlines() + [""]:
        if line.startswith(("Direct leak", "Indirect leak")):
            block = [line]
        elif block is not None:
            if line.strip():
                block.append(line)
            else:
                if any(o in f for f in block[1:] for o in own):
                    kept.append("\n".join(block))
                block = None
    if not kept:
        return None
    return "ERROR: LeakSanitizer: detected memory leaks (ours only)\n\n" + "\n\n".join(kept)


def asan_runtime(plugin):
    """Path of the ASan runtime the plugin was linked with (for LD_PRELOAD)."""
    try:
        out = subprocess.run(["ldd", plugin], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0].startswith("libasan.so") and len(parts) >= 3:
                return parts[2]
    except (OSError, subprocess.SubprocessError):
        pass
    cc = os.environ.get("CC") or "cc"
    return subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                          text=True, timeout=10).stdout.strip()

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


# Ports for test listeners. A port the kernel hands out (bind to port 0,
# and every outgoing connection's local port) comes from the ephemeral
# range, so a broker restarted on its old port could find it taken by
# another test's client connection or listener meanwhile ("address already
# in use"). Test ports therefore come from below that range, and each is
# reserved for the life of the test process that got it: a byte-range lock
# at offset <port> in one shared file (released by the kernel when the
# process exits, however it exits), so no parallel worker, nor another
# test run on this machine, is given the same port, and this process never
# hands it out twice.
PORT_LOCKS = os.path.join(tempfile.gettempdir(), "mqchat-test-ports.lock")
_port_lock_fd = None
_ports_given = set()


def port_range():
    """The [low, high] range test ports are taken from: the 16384 ports
    below the kernel's ephemeral range (ip_local_port_range), or above it
    if that leaves too few."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            elow, ehigh = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        elow, ehigh = 32768, 60999
    if elow - 1 - 10000 >= 2048:
        return max(10000, elow - 16384), elow - 1
    return ehigh + 1, 65535


def _port_reservable(port):
    """Lock byte <port> of PORT_LOCKS without waiting: True if this process
    now holds it (a lock this process already holds succeeds too, hence
    _ports_given)."""
    import fcntl
    global _port_lock_fd
    if _port_lock_fd is None:
        fd = os.open(PORT_LOCKS, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.fchmod(fd, 0o666)   # shared by root and non-root runs
        except OSError:
            pass
        _port_lock_fd = fd
    try:
        fcntl.lockf(_port_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def port_in_use():
    """A 127.0.0.1 port something listens on while the with block lasts:
    one a program must refuse as taken. Yields the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]
    finally:
        s.close()


def free_port():
    """A loopback TCP port for a test listener, not in the kernel's ephemeral
    range, free now and reserved for this process until it exits (see
    PORT_LOCKS): a restart on it finds it free."""
    low, high = port_range()
    span = high - low + 1
    # Start at a different place in each process, then walk.
    start = (os.getpid() * 7919 + int(time.monotonic() * 1000)) % span
    for i in range(span):
        port = low + (start + i) % span
        if port in _ports_given or not _port_reservable(port):
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As mosquitto binds (SO_REUSEADDR): a port in TIME_WAIT is usable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            _ports_given.add(port)   # someone else's: never try it again
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise AssertionError("no free test port in %d-%d" % (low, high))


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

    def add_contact(self, user, contact):
        """contact may see user's presence (user added them)."""
        self.sql("INSERT OR IGNORE INTO contacts(user, contact, since) VALUES(?,?,?)",
                 user, contact, int(time.time() * 1000))

    def remove_contact(self, user, contact):
        self.sql("DELETE FROM contacts WHERE user=? AND contact=?", user, contact)

    def set_privacy(self, user, presence="contacts", room_adds="contacts"):
        self.sql("INSERT OR REPLACE INTO privacy(user, presence, room_adds) VALUES(?,?,?)",
                 user, presence, room_adds)


class Broker:
    """A real mosquitto with the real plugin on a free loopback port."""

    def __init__(self, datadir, port=None, registration="off", extra_conf="", plugin_opts=None,
                 plugin=PLUGIN, db=None):
        self.datadir = datadir
        self.port = port or free_port()
        self.conf = os.path.join(datadir, "mosquitto-%d.conf" % self.port)
        self.logpath = os.path.join(datadir, "mosquitto-%d.log" % self.port)
        self.db = db or os.path.join(datadir, "auth.db")
        self.plugin = plugin
        self.san_prefix = os.path.join(datadir, "san-%d" % self.port)
        self.proc = None
        # "dbpath", not "db": mosquitto 2.0.11 refuses plugin_opt_ keys
        # shorter than 3 characters ("Invalid auth_opt_ config option").
        # No send rate limit unless a test asks for one: most tests send
        # faster than a person (test_plugin_ratelimit.py tests the limit).
        opts = {"dbpath": self.db, "registration": registration, "send_rate": 0}
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
            # As config/mosquitto.conf: messages go out at the subscription's
            # QoS (the plugin refuses QoS 0 ones to messages), packets are
            # capped near the message limit.
            "upgrade_outgoing_qos true",
            "max_packet_size 69632",
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
                                     stderr=subprocess.STDOUT, cwd=self.datadir, env=self.env())
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

    def env(self):
        """The broker's environment: under SAN=1, the ASan runtime preloaded
        and every report written to <datadir>/san-<port>.{asan,ubsan}.<pid>."""
        e = dict(os.environ)
        if not SAN:
            return e
        preload = [asan_runtime(self.plugin)]
        if os.path.exists(self.plugin):
            preload.append(self.plugin)
        e["LD_PRELOAD"] = ":".join(preload)
        e["ASAN_OPTIONS"] = "halt_on_error=1:detect_leaks=1:exitcode=%d:log_path=%s.asan" % (
            SAN_EXITCODE, self.san_prefix)
        e["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=%d:log_path=%s.ubsan" % (
            SAN_EXITCODE, self.san_prefix)
        return e

    def san_reports(self):
        """Sanitizer reports the broker wrote and nobody has seen yet: [(path, text)]."""
        d = os.path.dirname(self.san_prefix)
        base = os.path.basename(self.san_prefix) + "."
        out = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            if name.startswith(base) and not name.endswith(".seen"):
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    out.append((path, f.read().decode(errors="replace")))
        return out

    def output(self):
        try:
            with open(self.logpath, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            text = ""
        for path, report in self.san_reports():
            text += "\n---- %s ----\n%s" % (os.path.basename(path), report)
        return text

    def stop(self, sig=signal.SIGTERM):
        """Stop the broker. Raises AssertionError if a sanitizer reported
        anything (each report is raised once, then renamed *.seen)."""
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            rc = self.proc.returncode
            self.log.close()
        self.proc = None
        reports = self.san_reports()
        own = (ROOT + "/", self.plugin, os.path.basename(self.plugin))
        mine = []
        for path, text in reports:
            os.rename(path, path + ".seen")
            text = san_own_leaks(text, own)
            if text:
                mine.append(text)
        if mine:
            raise AssertionError("sanitizer report from the broker on port %d:\n%s" % (
                self.port, "\n".join(mine)))
        if SAN and rc == SAN_EXITCODE and not reports:
            raise AssertionError("broker on port %d exited with the sanitizer's status %d:\n%s" % (
                self.port, rc, self.output()[-4000:]))

    def restart(self):
        self.stop()
        self.start()

    def wait_log(self, text, timeout=DEFAULT_TIMEOUT):
        return wait_for(lambda: text in self.output(), timeout, what="broker log line %r" % text)


class Client:
    """A paho client with blocking helpers and bounded waits.

    Received messages are kept in self.messages (a queue of paho messages)."""

    def __init__(self, port, username, password, client_id=None, v5=False, clean=True,
                 will=None, keepalive=30, source=None):
        self.v5 = v5
        self.source = source    # a local address to connect from (127.0.0.x); None: any
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
        self.c.connect("127.0.0.1", self.port, self.keepalive, bind_address=self.source or "",
                       **kw)
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
        # The callback is in place before the UNSUBSCRIBE goes out: on
        # loopback the UNSUBACK can arrive before unsubscribe() returns.
        acked = set()
        prev = self.c.on_unsubscribe

        def on_unsub(c, u, m, *a):
            acked.add(m)
        self.c.on_unsubscribe = on_unsub
        try:
            rc, mid = self.c.unsubscribe("chat/rpc/%s/resp" % (self.client_id.split("@")[0]))
            wait_for(lambda: mid in acked, timeout, interval=0.005, what="UNSUBACK")
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
        # Give the descriptors back now, not when the test ends: paho's loop
        # uses select(), which fails on descriptors past 1024, and a test
        # that connects hundreds of times would get there.
        try:
            self.c._reset_sockets()
        except Exception:
            pass


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
        """Everything the process wrote so far ("" if its log is gone, as when
        a test unmounts the file system it was on)."""
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop the process and return its exit status. Under SAN=1, raises
        AssertionError if its output holds a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        if SAN:
            report = san_report(self.output())
            if report or self.proc.returncode == SAN_EXITCODE:
                raise AssertionError("sanitizer report from %s (exit %s):\n%s" % (
                    self.proc.args[0], self.proc.returncode, report or self.output()[-4000:]))
        return self.proc.returncode


def make_datadir():
    d = tempfile.mkdtemp(prefix="mqchat-test-")
    os.chmod(d, 0o755)
    return d


def module_failed(request):
    """True if a test of request's module failed (its logs are then worth printing)."""
    return any(getattr(item, "rep_call", None) is not None and item.rep_call.failed
               for item in request.session.items if item.module is request.module)


def serve_stack(request, s, also_stop=()):
    """The body of a module-scoped fixture: start s (a stack with start()
    and stop(failed) -> logs), yield it, stop it, printing its logs if it
    failed to start or a test of the module failed. also_stop: more things
    with stop() (fakes) that go with it."""
    try:
        s.start()
    except BaseException:
        for o in also_stop:
            o.stop()
        print(s.stop(failed=True))
        raise
    try:
        yield s
    finally:
        for o in also_stop:
            o.stop()
        print(s.stop(failed=module_failed(request)))
