"""test_run_script.py - scripts/run.sh (make run): the shipped config with
the real plugin and archiver, refusals of bad input, a clean stop.

run.sh is started with DATA (a temp folder) and PORT (a free port) so it
never touches var/ or 1883; the shipped config/mosquitto.conf is then used
through the copy run.sh generates with those two changed."""
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import harness

RUN = os.path.join(harness.ROOT, "scripts", "run.sh")
PW = "alice-secret-1"


class Run:
    """One scripts/run.sh process; always stopped by the fixture."""

    def __init__(self, data, port, extra_env=None, prefix=()):
        self.data = data
        self.port = port
        fd, self.logpath = tempfile.mkstemp(prefix="mqchat-run-", suffix=".log")
        os.close(fd)
        # The TLS, WebSockets, web app and metrics listeners get free ports
        # too (8883, 8080, 8090 and 9464 may be taken, and tests run in
        # parallel).
        env = dict(os.environ, DATA=data, PORT=str(port), TLS_PORT=str(harness.free_port()),
                   WS_PORT=str(harness.free_port()), HTTP_PORT=str(harness.free_port()),
                   METRICS_PORT=str(harness.free_port()))
        env.update(extra_env or {})
        self.env = env
        self.log = open(self.logpath, "ab")
        # SIGINT as a terminal's Ctrl-C delivers it, even when the suite
        # itself was started with it ignored (in the background of a
        # shell without job control): bash cannot trap a signal that was
        # ignored when it started.
        # prefix: a command that starts it as another user (setpriv ...).
        self.proc = subprocess.Popen(list(prefix) + [RUN], cwd=harness.ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.bpid = self.apid = None

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    # A first start makes a CA and keys, hashes the service password and
    # waits for both processes: 10-30 s seen on 2 cores shared with other
    # builds (load 15-25), so the bound is generous; a hang still fails.
    def wait_running(self, timeout=60):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("run.sh exited with %s:\n%s" % (self.proc.returncode, self.output()))
            return re.search(r"is running on 127\.0\.0\.1:\d+ \(broker pid (\d+)(?:, archiver pid (\d+))?\)",
                             self.output())
        m = harness.wait_for(up, timeout, what="run.sh to start")
        self.bpid = int(m.group(1))
        self.apid = int(m.group(2)) if m.group(2) else None
        return self

    def wait_exit(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("run.sh still running after %ds:\n%s" % (timeout, self.output()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Never leave a child behind, whatever happened to run.sh.
        for pid in (self.bpid, self.apid):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.log.close()
        os.unlink(self.logpath)


def alive(pid):
    """True if pid is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def runs():
    made = []

    def make(data, port, **kw):
        r = Run(data, port, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


@pytest.fixture
def data_root():
    d = harness.make_datadir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def login_when_loaded(port, user, password, client_id, timeout=5.0):
    """Connect as a user just added with the CLI: the plugin picks up the
    change within a second, so retry a few times (not faster, so the
    refusals stay below the failed-login throttle). Returns the client."""
    deadline = time.monotonic() + timeout
    while True:
        c = harness.Client(port, user, password, client_id=client_id)
        c.c._reconnect_on_failure = False
        code = c.connect()
        if code == 0:
            return c
        c.close()
        if time.monotonic() >= deadline:
            raise AssertionError("%s still refused (CONNACK %s) after %.1fs" % (user, code, timeout))
        time.sleep(0.4)


def add_user(data, name, password):
    p = subprocess.run([harness.ARCHIVER, "--data", data, "user", "add", name, "--password-stdin"],
                       input=password + "\n", capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_run_starts_both_and_stops_on_sigint(runs, data_root):
    data = os.path.join(data_root, "var")
    port = harness.free_port()
    r = runs(data, port).wait_running()
    out = r.output()
    assert r.apid is not None, "archiver not started:\n" + out
    assert "user add alice" in out and "mosquitto_sub -h 127.0.0.1 -p %d" % port in out
    for f in ("auth.db", "archive.db", "archiver.pw", "../var.run/mosquitto.conf"):
        assert os.path.exists(os.path.join(data, f)), f
    assert os.stat(os.path.join(data, "archiver.pw")).st_mode & 0o777 == 0o600
    assert "listener %d 127.0.0.1" % port in open(data + ".run/mosquitto.conf").read()

    # A user added with the CLI can connect and read their inbox at once.
    add_user(data, "alice", PW)
    c = login_when_loaded(port, "alice", PW, "alice@test")
    try:
        assert c.subscribe("chat/inbox/alice/#") == 1
        assert c.subscribe("chat/#") >= 0x80
    finally:
        c.close()

    r.proc.send_signal(signal.SIGINT)
    assert r.wait_exit() == 0, r.output()
    assert not alive(r.bpid), "broker still running"
    assert not alive(r.apid), "archiver still running"
    assert "stopped" in r.output()

    # A second run reuses the data folder: alice is still there.
    r2 = runs(data, port).wait_running()
    c = harness.Client(port, "alice", PW, client_id="alice@test2")
    try:
        assert c.connect() == 0
    finally:
        c.close()
    r2.proc.send_signal(signal.SIGTERM)
    assert r2.wait_exit() == 0, r2.output()
    assert not alive(r2.bpid) and not alive(r2.apid)


def test_run_refuses_a_port_in_use(runs, data_root):
    data = os.path.join(data_root, "var")
    with harness.port_in_use() as port:
        r = runs(data, port)
        # run.sh first checks the build is up to date: slow on a busy machine.
        assert r.wait_exit(timeout=90) == 1
    out = r.output()
    assert "port %d on 127.0.0.1 is already in use" % port in out, out
    assert "PORT=" in out
    assert not os.path.exists(data), "nothing may be created when the port is taken"


@pytest.mark.parametrize("env,why", [
    ({"PORT": "abc"}, "PORT must be a number"),
    ({"PORT": "0"}, "PORT must be a number"),
    ({"PORT": "65536"}, "PORT must be a number"),
    ({"PORT": "1883; id"}, "PORT must be a number"),
    ({"DATA": "a b"}, "DATA must be a path"),
    ({"DATA": "x#y"}, "DATA must be a path"),
    ({"BUILD": "$(id)"}, "BUILD must be a path"),
    ({"HTTP_PORT": "abc"}, "HTTP_PORT must be a number"),
    ({"HTTP_PORT": "65536"}, "HTTP_PORT must be a number"),
    ({"HTTP_PORT": "-1"}, "HTTP_PORT must be a number"),
    ({"HTTP_PORT": "8090 --web-dir /"}, "HTTP_PORT must be a number"),
])
def test_run_refuses_bad_settings(runs, data_root, env, why):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env=env)
    assert r.wait_exit() == 1
    assert why in r.output(), r.output()
    assert not os.path.exists(data)


def test_run_refuses_a_folder_that_is_not_a_data_folder(runs, data_root):
    # DATA=/tmp or DATA=$HOME by mistake must not be taken over.
    keep = os.path.join(data_root, "notes.txt")
    with open(keep, "w") as f:
        f.write("mine\n")
    before = os.stat(data_root)
    r = runs(data_root, harness.free_port())
    assert r.wait_exit() == 1
    assert "not an mqchat data folder" in r.output(), r.output()
    after = os.stat(data_root)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    assert os.listdir(data_root) == ["notes.txt"]
    assert open(keep).read() == "mine\n"


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])   # effective uid
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop only happens when started as root")
def test_run_keeps_root_when_the_broker_user_cannot_reach_the_data(runs, data_root):
    # A folder only root may enter, like a checkout under /root.
    os.chmod(data_root, 0o700)
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port()).wait_running()
    out = r.output()
    assert "the broker keeps running as root" in out, out
    with open(data + ".run/mosquitto.conf") as f:
        assert "\nuser root\n" in f.read()
    assert proc_uid(r.bpid) == 0
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait_exit() == 0, r.output()
    assert not alive(r.bpid) and not alive(r.apid)

    # Reachable again: the next run is mosquitto's, if the build is
    # reachable too, and says which it did either way.
    os.chmod(data_root, 0o755)
    r = runs(data, harness.free_port()).wait_running()
    out = r.output()
    with open(data + ".run/mosquitto.conf") as f:
        local = f.read()
    if "run as the 'mosquitto' user" in out:
        assert "user root" not in local
        assert proc_uid(r.bpid) == pwd.getpwnam("mosquitto").pw_uid
    else:
        assert "cannot read" in out and "user root" in local, out


def fake_build(root, archiver_script=None):
    """A build folder with the real plugin and, if given, an archiver
    script instead of build/mqchat-archiver. Returns its path."""
    b = os.path.join(root, "build")
    os.mkdir(b)
    os.symlink(harness.PLUGIN, os.path.join(b, "mqchat_auth.so"))
    if archiver_script is not None:
        path = os.path.join(b, "mqchat-archiver")
        with open(path, "w") as f:
            f.write(archiver_script)
        os.chmod(path, 0o755)
    return b


def test_run_without_the_archiver_needs_an_existing_data_folder(runs, data_root):
    b = fake_build(data_root)
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"BUILD": b})
    assert r.wait_exit() == 1
    out = r.output()
    assert "mqchat-archiver is not built yet, so the data folder cannot be created" in out, out
    assert not os.path.exists(data)


def test_run_without_the_archiver_starts_the_broker_alone(runs, data_root):
    b = fake_build(data_root)
    data = os.path.join(data_root, "var")
    p = subprocess.run([harness.ARCHIVER, "--data", data, "init"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    add_user(data, "alice", PW)
    r = runs(data, harness.free_port(), extra_env={"BUILD": b}).wait_running()
    assert r.apid is None
    assert "the archiver is not built yet" in r.output()
    c = login_when_loaded(r.port, "alice", PW, "alice@test")
    c.close()
    r.proc.send_signal(signal.SIGINT)
    assert r.wait_exit() == 0, r.output()
    assert not alive(r.bpid)


def test_run_stops_the_broker_when_the_archiver_fails(runs, data_root):
    # init is the real one; run fails at once, as a broken archiver would.
    script = ('#!/bin/sh\n'
              'for a in "$@"; do [ "$a" = run ] && { echo "archiver: cannot start" >&2; exit 3; }; done\n'
              'exec "%s" "$@"\n' % harness.ARCHIVER)
    b = fake_build(data_root, script)
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"BUILD": b})
    assert r.wait_exit() == 3, r.output()
    out = r.output()
    assert "the archiver (pid" in out and "exited with status 3: stopping the rest" in out, out
    # No "running" banner for what did not start; its log's end instead.
    assert "mqchat is running" not in out, out
    assert "the last lines of %s/archiver.log:\n    archiver: cannot start" % data in out, out
    m = re.search(r"broker pid (\d+)", out)
    assert m, out
    assert not alive(int(m.group(1))), "broker left running"


def test_run_refuses_a_data_folder_in_use(runs, data_root):
    data = os.path.join(data_root, "var")
    r1 = runs(data, harness.free_port()).wait_running()
    conf = data + ".run/mosquitto.conf"
    with open(conf) as f:
        before = f.read()
    # The same folder, other ports: refused before anything is touched.
    r2 = runs(data, harness.free_port())
    assert r2.wait_exit() == 1
    out = r2.output()
    assert "run: Error: %s is in use by pid %d (make run; broker pid %d, archiver pid %d)" % (
        data, r1.proc.pid, r1.bpid, r1.apid) in out, out
    assert "created" not in out and "using" not in out, out
    with open(conf) as f:
        assert f.read() == before, "the first run's config was rewritten"
    assert alive(r1.bpid) and alive(r1.apid) and r1.proc.poll() is None
    # A daemon started by hand on it is refused too, naming the first one's
    # (as the folder's owner: as root on a folder another user owns, the
    # daemon refuses to start at all, test_symlinks.py).
    owner = os.stat(data).st_uid
    pre = []
    if os.geteuid() == 0 and owner != 0:
        pre = ["setpriv", "--reuid=%d" % owner, "--regid=%d" % os.stat(data).st_gid, "--clear-groups", "--"]
    p = subprocess.run(pre + [harness.ARCHIVER, "--data", data, "run", "--port", str(r1.port)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert "%s is in use by pid %d (mqchat-archiver run)" % (data, r1.apid) in p.stderr, p.stderr


def test_run_refuses_a_folder_served_by_a_daemon_started_by_hand(runs, data_root):
    data = os.path.join(data_root, "var")
    assert subprocess.run([harness.ARCHIVER, "--data", data, "init"], capture_output=True,
                          timeout=30).returncode == 0
    a = harness.Proc([harness.ARCHIVER, "--data", data, "run", "--port", str(harness.free_port())],
                     os.path.join(data_root, "archiver.out"))
    try:
        def locked():
            try:
                with open(os.path.join(data, "archiver.lock")) as f:
                    return f.read().strip() == "%d mqchat-archiver run" % a.proc.pid
            except FileNotFoundError:
                return False
        harness.wait_for(locked, what="the daemon's lock line")
        r = runs(data, harness.free_port())
        assert r.wait_exit() == 1
        assert "%s is in use by pid %d (mqchat-archiver run)" % (data, a.proc.pid) in r.output(), \
            r.output()
        assert not os.path.exists(data + ".run/mosquitto.conf")
    finally:
        a.stop()


def test_run_keeps_the_folder_while_its_broker_lives(runs, data_root):
    # run.sh killed with SIGKILL: its broker and archiver live on, and so
    # does the lock they inherited; once they are gone, the folder is free.
    data = os.path.join(data_root, "var")
    r1 = runs(data, harness.free_port()).wait_running()
    r1.proc.kill()
    r1.proc.wait()
    r2 = runs(data, harness.free_port())
    assert r2.wait_exit() == 1
    assert "is in use by pid %d (make run; broker pid %d" % (r1.proc.pid, r1.bpid) in r2.output(), \
        r2.output()
    for pid in (r1.apid, r1.bpid):
        os.kill(pid, signal.SIGKILL)
    harness.wait_for(lambda: not alive(r1.bpid) and not alive(r1.apid), what="both gone")
    r3 = runs(data, harness.free_port()).wait_running()
    assert r3.apid is not None


def test_run_names_our_earlier_run_on_a_busy_port(runs, data_root):
    port = harness.free_port()
    first = os.path.join(data_root, "first")
    r1 = runs(first, port).wait_running()
    second = os.path.join(data_root, "second")
    r2 = runs(second, port)
    assert r2.wait_exit() == 1
    out = r2.output()
    assert ("port %d on 127.0.0.1 is already in use by an earlier make run: its broker (pid %d)"
            " on DATA=%s" % (port, r1.bpid, first)) in out, out
    assert "kill %d" % r1.proc.pid in out, out
    assert "systemctl" not in out, out
    assert not os.path.exists(second)


def test_run_starts_quietly_and_says_where_the_logs_are(runs, data_root):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port()).wait_running()
    out = r.output()
    blog, alog = os.path.join(data, "mosquitto.log"), os.path.join(data, "archiver.log")
    assert "Logs: %s and %s" % (blog, alog) in out, out
    # The terminal has this script's lines only, the banner last; the
    # archiver was up before it was printed.
    assert "mosquitto version" not in out and "archiver@0" not in out, out
    with open(alog) as f:
        assert "archiver@0: subscribed" in f.read()
    # Waiting for the listeners connected to none of them: nothing to log
    # but the archiver's own connection.
    with open(blog) as f:
        log = f.read()
    assert "mosquitto version 2.0.11 running" in log, log
    for bad in ("OpenSSL Error", "Protocol error", "unexpected eof", "<unknown>"):
        assert bad not in log, log
    assert len(re.findall(r"New connection from", log)) == 1, log
    assert os.stat(blog).st_mode & 0o777 == 0o640 and os.stat(alog).st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                    reason="needs root to run a command as nobody")
def test_run_lets_local_users_read_the_ca_certificate_only(runs, data_root):
    data = os.path.join(data_root, "var")
    runs(data, harness.free_port()).wait_running()

    def nobody(*argv):
        return subprocess.run(["runuser", "-u", "nobody", "--"] + list(argv), capture_output=True,
                              text=True, timeout=20).returncode

    ca = os.path.join(data, "tls", "ca.crt")
    assert nobody("openssl", "x509", "-in", ca, "-noout") == 0, "ca.crt unreadable to others"
    for secret in ("tls/ca.key", "tls/server.key", "auth.db", "archiver.pw", "archive.db",
                   "mosquitto.log", "archiver.log"):
        assert nobody("cat", os.path.join(data, secret)) != 0, secret
    assert nobody("ls", data) != 0, "others may list the data folder"


# ---- the web app (HTTP_PORT) ----

WEB_BUILT = os.path.join(harness.BUILD, "web", "index.html")


def http_get(port, path):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def test_run_serves_the_web_app_and_prints_its_address(runs, data_root):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port()).wait_running()
    out = r.output()
    http_port, ws_port = int(r.env["HTTP_PORT"]), int(r.env["WS_PORT"])
    if not os.path.exists(WEB_BUILT):
        assert "no web app: %s is not built (make web builds it)" % os.path.relpath(
            WEB_BUILT, harness.ROOT) in out or "no web app:" in out, out
        assert "Web app:" not in out
        pytest.skip("make web has not built BUILD/web/index.html")
    assert "Web app: http://127.0.0.1:%d/" % http_port in out, out
    status, ctype, body = http_get(http_port, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8"
    status, ctype, body = http_get(http_port, "/config.json")
    assert status == 200 and ctype == "application/json"
    assert json.loads(body) == {"mqtt_url": "ws://127.0.0.1:%d" % ws_port}
    with open(os.path.join(data, "archiver.log")) as f:
        assert "http: serving" in f.read()


def test_run_without_websockets_has_no_web_app(runs, data_root):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"WS_PORT": "0"}).wait_running()
    out = r.output()
    assert "no web app: it speaks MQTT over WebSockets, and WS_PORT is 0" in out, out
    assert "Web app:" not in out
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(r.env["HTTP_PORT"])), timeout=2).close()


def test_run_with_http_port_0_has_no_web_app(runs, data_root):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"HTTP_PORT": "0"}).wait_running()
    out = r.output()
    assert "Web app:" not in out and "no web app" not in out, out


def test_run_refuses_an_http_port_of_another_listener(runs, data_root):
    data = os.path.join(data_root, "var")
    ws = str(harness.free_port())
    r = runs(data, harness.free_port(), extra_env={"WS_PORT": ws, "HTTP_PORT": ws})
    assert r.wait_exit() == 1
    assert "HTTP_PORT and WS_PORT are both %s" % ws in r.output(), r.output()
    assert not os.path.exists(data)


def test_run_refuses_a_taken_http_port(runs, data_root):
    data = os.path.join(data_root, "var")
    with harness.port_in_use() as busy:
        r = runs(data, harness.free_port(), extra_env={"HTTP_PORT": str(busy)})
        assert r.wait_exit() == 1
    out = r.output()
    assert "port %d on 127.0.0.1 is already in use" % busy in out, out
    assert "HTTP_PORT=" in out, out
    assert not os.path.exists(data)
