"""client_util.py - helpers for the tests of the chat client build/mqchat.

    from client_util import mqchat, Listener, start_archiver, users

    def test_x(store, make_broker, datadir):
        users(store, "alice", "bob")
        b = make_broker()
        with Listener(b, datadir, "bob") as bob:
            r = mqchat(b, datadir, "alice", "send", "bob", "hi")
            assert r.rc == 0
            bob.wait_lines(1)

Every run gets its own config and state folders inside the test's data
folder, the password in MQCHAT_PASSWORD, and a timeout; every process
started here is stopped by the test (context managers / fixtures).
"""
import os
import re
import signal
import subprocess
import threading

import pytest

import harness

PASSWORD = "password-xxxx"      # harness.Store.add_user's default
RUN_TIMEOUT = 30                 # seconds for one client run
DEVICE = "test"
ARCHIVER_PASSWORD = "archiver-secret-1"

# Exit codes (client/README.md).
OK, FAILED, USAGE, AUTH, DENIED, UNREACH, TIMEOUT = 0, 1, 2, 3, 4, 5, 6

TEXT_LINE = re.compile(r"^\[(\d\d:\d\d:\d\d)\] (#\S+ )?([a-z0-9][a-z0-9_.-]*): (.*)$")


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout.decode(errors="replace")
        self.err = proc.stderr.decode(errors="replace")

    def __repr__(self):
        return "rc=%s\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


def users(store, *names, password=PASSWORD):
    for n in names:
        store.add_user(n, password)


def client_env(datadir, password=PASSWORD, extra=None):
    """The environment of a client run: private config/state folders."""
    env = dict(os.environ)
    for k in ("MQCHAT_PASSWORD", "MQCHAT_HOST", "MQCHAT_PORT", "XDG_CONFIG_HOME",
              "XDG_STATE_HOME"):
        env.pop(k, None)
    home = os.path.join(datadir, "home")
    os.makedirs(home, exist_ok=True)
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, "config")
    env["XDG_STATE_HOME"] = os.path.join(home, "state")
    if password is not None:
        env["MQCHAT_PASSWORD"] = password
    env.update(extra or {})
    return env


def argv(broker, user, *args, device=DEVICE, timeout=None, port=None):
    a = [harness.CLIENT, "--port", str(port or broker.port), "--host", "127.0.0.1",
         "--device", device]
    if user is not None:
        a += ["--user", user]
    if timeout is not None:
        a += ["--timeout", str(timeout)]
    return a + list(args)


def mqchat(broker, datadir, user, *args, password=PASSWORD, stdin=None, env=None,
           device=DEVICE, timeout=None, port=None, run_timeout=RUN_TIMEOUT):
    """Run the client once and return a Result (rc, out, err)."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    p = subprocess.run(argv(broker, user, *args, device=device, timeout=timeout, port=port),
                       input=stdin if stdin is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=client_env(datadir, password, env), timeout=run_timeout,
                       start_new_session=True)  # no controlling tty: no prompt
    return Result(p)


def ok(*a, **kw):
    r = mqchat(*a, **kw)
    assert r.rc == 0, r
    return r


class Listener:
    """A running `mqchat listen` (or chat) whose output lines are collected."""

    def __init__(self, broker, datadir, user, *args, command="listen", device=DEVICE,
                 password=PASSWORD, stdin=None, env=None, timeout=None):
        self.proc = subprocess.Popen(
            argv(broker, user, command, *args, device=device, timeout=timeout),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            env=client_env(datadir, password, env))
        self.out = []
        self.err = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self, f, into):
        for line in iter(f.readline, b""):
            with self.lock:
                into.append(line.decode(errors="replace").rstrip("\n"))

    def lines(self):
        with self.lock:
            return list(self.out)

    def errors(self):
        with self.lock:
            return "\n".join(self.err)

    def wait_ready(self, timeout=harness.DEFAULT_TIMEOUT + 5):
        """Until the client says it is subscribed (or it died)."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("client exited with %s:\n%s" % (self.proc.returncode,
                                                                       self.errors()))
            return "listening as" in self.errors()
        harness.wait_for(ready, timeout, what="listen to be ready")
        return self

    def wait_lines(self, n, timeout=harness.DEFAULT_TIMEOUT):
        harness.wait_for(lambda: len(self.lines()) >= n, timeout,
                         what="%d output lines (have %r; stderr %r)" % (n, self.lines(),
                                                                       self.errors()))
        return self.lines()

    def wait_texts(self, n, timeout=harness.DEFAULT_TIMEOUT):
        """Until n text messages were printed (receipt lines do not count)."""
        harness.wait_for(lambda: len(texts(self.lines())) >= n, timeout,
                         what="%d text lines (have %r; stderr %r)" % (n, self.lines(),
                                                                     self.errors()))
        return texts(self.lines())

    def wait_err(self, text, timeout=harness.DEFAULT_TIMEOUT):
        harness.wait_for(lambda: text in self.errors(), timeout,
                         what="%r on stderr (have %r)" % (text, self.errors()))

    def wait_exit(self, timeout=harness.DEFAULT_TIMEOUT):
        """The exit status, once the program has exited and everything it
        wrote has been read: its pipes are read by threads, which may still
        hold its last lines when the process is gone."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("client still running after %.1fs; out %r err %r" % (
                timeout, self.lines(), self.errors()))
        for t in self.threads:
            t.join(timeout=timeout)
        return rc

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self.threads:
            t.join(timeout=5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def texts(lines):
    """(room or None, sender, body) of the text lines of listen's output."""
    out = []
    for ln in lines:
        m = TEXT_LINE.match(ln)
        if m:
            out.append(((m.group(2) or "").strip()[1:] or None, m.group(3), m.group(4)))
    return out


class Archiver:
    """build/mqchat-archiver run against the test's broker and data folder."""

    def __init__(self, datadir, store, broker, extra=()):
        self.datadir = datadir
        add_archiver_account(store)
        pw = ARCHIVER_PASSWORD
        self.pwfile = os.path.join(datadir, "archiver.pw")
        with open(self.pwfile, "w") as f:
            f.write(pw + "\n")
        os.chmod(self.pwfile, 0o600)
        self.broker = broker
        self.extra = list(extra)
        self.proc = None

    def start(self):
        self.proc = harness.Proc([harness.ARCHIVER, "--data", self.datadir, "run",
                                  "--host", "127.0.0.1", "--port", str(self.broker.port),
                                  "--password-file", self.pwfile] + self.extra,
                                 os.path.join(self.datadir, "archiver-%d.log" % self.broker.port))
        return self

    def wait_ready(self, user, timeout=15):
        """Until an RPC of user is answered (proves the whole path works)."""
        def answered():
            if self.proc.proc.poll() is not None:
                raise AssertionError("archiver exited:\n" + self.proc.output())
            r = mqchat(self.broker, self.datadir, user, "blocked", timeout=1)
            return r.rc == 0
        harness.wait_for(answered, timeout, interval=0.1, what="archiver to answer RPC")
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def output(self):
        return self.proc.output() if self.proc else ""


def add_archiver_account(store):
    """Create the service account before the broker starts (no reload wait)."""
    if not store.sql("SELECT name FROM users WHERE name='archiver'"):
        store.add_user("archiver", ARCHIVER_PASSWORD, kind="service")


@pytest.fixture
def archivers():
    """Factory: archivers(datadir, store, broker, ready_user) -> a started,
    answering Archiver; every one is stopped at the end of the test."""
    made = []

    def make(datadir, store, broker, ready_user, extra=()):
        a = Archiver(datadir, store, broker, extra)
        made.append(a)
        a.start()
        try:
            a.wait_ready(ready_user)
        except Exception:
            print(a.output())
            raise
        return a
    yield make
    for a in made:
        a.stop()


# A membership event line of listen and chat: "[12:00:01] #hikers * alice added bob".
EVENT_LINE = re.compile(r"^\[(\d\d:\d\d:\d\d)\] #(\S+) \* (.*)$")


def events(lines):
    """(room, words) of the membership event lines of listen's output."""
    return [(m.group(2), m.group(3)) for m in map(EVENT_LINE.match, lines) if m]
