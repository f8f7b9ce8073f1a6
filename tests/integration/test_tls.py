"""test_tls.py - the TLS and WebSockets listeners of the shipped setup.

Certificates come from scripts/mkcert.sh (a local CA and a server
certificate for localhost/127.0.0.1), made once per module: "good" is the
broker's CA, "other" a second CA whose certificates nobody here trusts.
Each test starts a harness broker with, besides its plain listener, a TLS
listener (TLS 1.2 minimum, as config/mosquitto.conf) on a second free port
and a WebSockets listener on `lo`; sessions over them go through the real
plugin (authentication, ACL), the client build/mqchat and the archiver.

test_client_tls.py covers `mqchat send` over TLS with a wrong CA and plain
MQTT sent to the TLS port; this file covers the rest: paho, listen,
the archiver and RPC, mkcert.sh itself and make run's TLS setup."""
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import types

import paho.mqtt.client as mqtt
import pytest

import harness
import archiver_util
from archiver_util import inbox
from client_util import PASSWORD, UNREACH, Listener, mqchat, ok, texts
import test_run_script
from test_run_script import PW, add_user

MKCERT = os.path.join(harness.ROOT, "scripts", "mkcert.sh")
OPENSSL = shutil.which("openssl")

# Fixtures of other modules, used here.
arch_env = archiver_util.arch_env
runs = test_run_script.runs
data_root = test_run_script.data_root

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def mkcert(*args):
    return subprocess.run([MKCERT] + list(args), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def cas():
    """Two CAs with a server certificate each: {"good": dir, "other": dir}."""
    d = tempfile.mkdtemp(prefix="mqchat-tls-")
    try:
        out = {}
        for name in ("good", "other"):
            r = mkcert(os.path.join(d, name))
            assert r.returncode == 0, r.stderr
            out[name] = os.path.join(d, name)
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tls_conf(port, tlsdir, ws_port=None):
    """Listener lines as in config/mosquitto.conf, on free ports."""
    lines = ["listener %d 127.0.0.1" % port,
             "cafile %s/ca.crt" % tlsdir,
             "certfile %s/server.crt" % tlsdir,
             "keyfile %s/server.key" % tlsdir,
             "tls_version tlsv1.2"]
    if ws_port:
        lines += ["listener %d lo" % ws_port, "protocol websockets"]
    return "\n".join(lines) + "\n"


class Tls:
    """One test's broker with a TLS (and a WebSockets) listener."""

    def __init__(self, make_broker, cas, ws=False, **kw):
        self.cas = cas
        self.ca = os.path.join(cas["good"], "ca.crt")
        self.other_ca = os.path.join(cas["other"], "ca.crt")
        self.port = harness.free_port()
        self.ws_port = harness.free_port() if ws else None
        self.broker = make_broker(extra_conf=tls_conf(self.port, cas["good"], self.ws_port), **kw)
        # The harness waits for the plain listener; these open just after it.
        for p in (self.port, self.ws_port):
            if p:
                harness.wait_for(lambda: listening_addresses(p), what="a listener on port %d" % p)


@pytest.fixture
def tls(make_broker, cas):
    def make(**kw):
        return Tls(make_broker, cas, **kw)
    return make


@pytest.fixture
def paho_clients():
    """Factory: a harness.Client over TLS (ca) or WebSockets; all closed at the end."""
    made = []

    def make(port, user, password=PASSWORD, ca=None, ws=False, **kw):
        c = harness.Client(port, user, password, **kw)
        if ws:
            # Same callbacks and credentials, WebSockets transport.
            old = c.c
            c.c = mqtt.Client(client_id=c.client_id, protocol=mqtt.MQTTv311, clean_session=c.clean,
                              transport="websockets")
            c.c.username_pw_set(user, password)
            for cb in ("on_connect", "on_message", "on_disconnect", "on_subscribe", "on_publish"):
                setattr(c.c, cb, getattr(old, cb))
        if ca:
            # Verifies the chain and the host name (127.0.0.1, in the SAN).
            c.c.tls_set_context(ssl.create_default_context(cafile=ca))
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def tls_listener(port, ca, datadir, user, *args):
    """`mqchat --cafile CA listen` on the TLS port (client_util.Listener
    puts its arguments after the command; --cafile is a global option)."""
    return Listener(types.SimpleNamespace(port=port), datadir, user, ca, "listen", *args,
                    command="--cafile")


# ---- mkcert.sh ----

def test_mkcert_makes_a_ca_and_a_server_certificate_once(tmp_path):
    d = str(tmp_path / "tls")
    r = mkcert(d)
    assert r.returncode == 0, r.stderr
    assert "made a local CA" in r.stdout and "made a server certificate" in r.stdout
    modes = {f: stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
             for f in ("ca.key", "ca.crt", "server.key", "server.crt")}
    assert modes == {"ca.key": 0o600, "ca.crt": 0o644, "server.key": 0o600, "server.crt": 0o644}
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.key", "server.crt", "server.key"]
    text = subprocess.run([OPENSSL, "x509", "-in", os.path.join(d, "server.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    v = subprocess.run([OPENSSL, "verify", "-CAfile", os.path.join(d, "ca.crt"),
                        os.path.join(d, "server.crt")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr

    # A second run changes nothing.
    before = {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)}
    r = mkcert(d)
    assert r.returncode == 0 and r.stdout == "", r
    assert {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)} == before

    # Without a server certificate, a new one is signed by the same CA.
    os.unlink(os.path.join(d, "server.crt"))
    os.unlink(os.path.join(d, "server.key"))
    r = mkcert(d)
    assert r.returncode == 0, r.stderr
    assert "made a local CA" not in r.stdout
    assert open(os.path.join(d, "ca.crt"), "rb").read() == before["ca.crt"]
    assert open(os.path.join(d, "server.crt"), "rb").read() != before["server.crt"]
    v = subprocess.run([OPENSSL, "verify", "-CAfile", os.path.join(d, "ca.crt"),
                        os.path.join(d, "server.crt")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_mkcert_owner_gets_the_server_key_only(tmp_path):
    import pwd
    try:
        who = pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user")
    d = str(tmp_path / "tls")
    r = mkcert("--owner", "mosquitto", d)
    assert r.returncode == 0, r.stderr
    assert os.stat(os.path.join(d, "server.key")).st_uid == who.pw_uid
    assert os.stat(os.path.join(d, "ca.key")).st_uid == 0
    # A complete set made without --owner gets it on the next run.
    os.chown(os.path.join(d, "server.key"), 0, -1)
    assert mkcert("--owner", "mosquitto", d).returncode == 0
    assert os.stat(os.path.join(d, "server.key")).st_uid == who.pw_uid


@pytest.mark.parametrize("present,why", [
    (("server.key",), "only part of a server certificate"),
    (("server.crt",), "only part of a server certificate"),
    (("ca.crt",), "has ca.crt but not ca.key"),
    (("ca.key",), "has ca.key but not ca.crt"),
])
def test_mkcert_refuses_a_partial_set_and_overwrites_nothing(tmp_path, present, why):
    d = tmp_path / "tls"
    d.mkdir()
    for f in present:
        (d / f).write_bytes(b"operator's " + f.encode())
    r = mkcert(str(d))
    assert r.returncode == 1
    assert r.stderr.startswith("mkcert: Error: ") and why in r.stderr, r.stderr
    assert sorted(os.listdir(str(d))) == sorted(present)
    for f in present:
        assert (d / f).read_bytes() == b"operator's " + f.encode()


@pytest.mark.parametrize("args,why", [
    ((), "usage: scripts/mkcert.sh"),
    (("--days", "x", "D"), "--days must be a number"),
    (("--days", "0", "D"), "--days must be a number"),
    (("--owner", "no-such-user-here", "D"), "there is no user"),
    (("--bogus", "D"), "unknown option --bogus"),
    (("D", "E"), "usage: scripts/mkcert.sh"),
])
def test_mkcert_bad_arguments(tmp_path, args, why):
    args = [str(tmp_path / "tls") if a == "D" else a for a in args]
    r = mkcert(*args)
    assert r.returncode == 1 and why in r.stderr, r
    assert not os.path.exists(str(tmp_path / "tls"))


def test_mkcert_refuses_a_file_as_folder(tmp_path):
    f = tmp_path / "tls"
    f.write_text("x")
    r = mkcert(str(f))
    assert r.returncode == 1 and "is not a folder" in r.stderr, r
    assert f.read_text() == "x"


# ---- sessions over TLS ----

def test_paho_over_tls_with_auth_and_acl(store, tls, paho_clients):
    store.add_user("alice")
    store.add_user("bob")
    t = tls()
    bob = paho_clients(t.port, "bob", ca=t.ca, client_id="bob@phone")
    assert bob.connect() == 0
    assert bob.c.socket().version() in ("TLSv1.2", "TLSv1.3")
    assert bob.subscribe("chat/inbox/bob/#") == 1
    # The ACL holds over TLS as on the plain port: no one else's inbox.
    assert bob.subscribe("chat/inbox/alice/#") >= 0x80

    alice = paho_clients(t.port, "alice", ca=t.ca, client_id="alice@phone")
    assert alice.connect() == 0
    alice.publish(inbox("bob", "alice"), harness.envelope("over tls"))
    m = bob.get()
    assert m.topic == "chat/inbox/bob/alice" and b"over tls" in m.payload
    # alice may not sign as carol, nor send a message that is no envelope.
    alice.publish(inbox("bob", "carol"), harness.envelope("forged"))
    alice.publish(inbox("bob", "alice"), "not json")
    bob.expect_none()

    # A wrong password is refused over TLS too (CONNACK 5: not authorized).
    eve = paho_clients(t.port, "alice", "wrong-password", ca=t.ca, client_id="alice@eve")
    assert eve.connect() == 5


def test_tls_1_2_and_1_3_accepted(store, tls):
    store.add_user("alice")
    t = tls()
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=t.ca)
        ctx.minimum_version = ctx.maximum_version = v
        with socket.create_connection(("127.0.0.1", t.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as ts:
                assert ts.version() == v.name.replace("_", ".")


def test_paho_refuses_a_server_of_another_ca(store, tls, paho_clients, clients):
    store.add_user("alice")
    store.add_user("bob")
    t = tls()
    bob = clients(t.broker, "bob", PASSWORD, client_id="bob@plain")
    assert bob.connect() == 0 and bob.subscribe("chat/inbox/bob/#") == 1
    c = paho_clients(t.port, "alice", ca=t.other_ca, client_id="alice@x")
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        c.connect()
    assert "certificate verify failed" in str(e.value)
    # Nothing got through, and the broker serves TLS clients as before.
    bob.expect_none()
    good = paho_clients(t.port, "alice", ca=t.ca, client_id="alice@y")
    assert good.connect() == 0
    good.publish(inbox("bob", "alice"), harness.envelope("after"))
    assert b"after" in bob.get().payload


def test_mqchat_listen_and_send_over_tls(store, tls, datadir):
    store.add_user("alice")
    store.add_user("bob")
    t = tls()
    with tls_listener(t.port, t.ca, datadir, "bob") as bob:
        bob.wait_ready()
        ok(t.broker, datadir, "alice", "--cafile", t.ca, "send", "bob", "hello over tls",
           port=t.port)
        bob.wait_texts(1)
        assert texts(bob.lines()) == [(None, "alice", "hello over tls")]
    # Both came in on the TLS listener.
    assert t.broker.output().count("on port %d." % t.port) >= 2


def test_mqchat_listen_with_another_ca_fails_clearly(store, tls, datadir):
    store.add_user("bob")
    t = tls()
    with tls_listener(t.port, t.other_ca, datadir, "bob") as bob:
        rc = bob.wait_exit(timeout=20)
        assert rc == UNREACH, (rc, bob.errors())
        assert bob.errors().startswith("Error: TLS handshake with 127.0.0.1:%d failed" % t.port), \
            bob.errors()
        assert bob.lines() == []


def archiver_tls_conf(datadir, ca, port):
    """An archiver config file that speaks TLS to port (the archiver has
    `cafile` as a config key, no flag)."""
    conf = os.path.join(datadir, "archiver-tls.conf")
    with open(conf, "w") as f:
        f.write("cafile = %s\nport = %d\n" % (ca, port))
    return conf


def test_archiver_over_tls_stores_and_answers(datadir, arch_env, cas):
    port = harness.free_port()
    ca = os.path.join(cas["good"], "ca.crt")
    env = arch_env(users=("alice", "bob"), start=False,
                   broker_kw={"extra_conf": tls_conf(port, cas["good"])},
                   args=["-c", archiver_tls_conf(datadir, ca, port)])
    env.arch.port = port
    env.arch.start()
    assert "archiver@0: connected to 127.0.0.1:%d" % port in env.arch.output()
    ok(env.broker, datadir, "alice", "--cafile", ca, "send", "bob", "kept over tls", port=port)
    env.wait_rows(1)
    assert [(r[0], r[1], r[6]) for r in env.rows()] == [("alice", "bob", "kept over tls")]
    # RPC over TLS both ways: bob's client asks, the archiver answers.
    r = ok(env.broker, datadir, "bob", "--cafile", ca, "history", "alice", port=port)
    assert "alice: kept over tls" in r.out, r
    assert "on port %d" % port in env.broker.output()


def test_archiver_checks_the_broker_certificate_names_the_host(datadir, arch_env, cas):
    """The certificate names 127.0.0.1 and localhost: a broker reached as
    127.0.0.2 is refused even with the right CA."""
    port = harness.free_port()
    ca = os.path.join(cas["good"], "ca.crt")
    conf = tls_conf(port, cas["good"]).replace("listener %d 127.0.0.1" % port,
                                               "listener %d 127.0.0.2" % port)
    env = arch_env(users=("alice", "bob"), start=False, broker_kw={"extra_conf": conf},
                   args=["-c", archiver_tls_conf(datadir, ca, port), "--host", "127.0.0.2"])
    env.arch.port = port
    env.arch.start(wait=False)
    env.arch.wait_log("archiver@0: connect to 127.0.0.2:%d: TLS error: handshake:"
                      " IP address mismatch" % port)
    assert env.arch.running(), env.arch.output()
    assert "subscribed" not in env.arch.output()


def test_archiver_over_tls_by_host_name(datadir, arch_env, cas):
    port = harness.free_port()
    ca = os.path.join(cas["good"], "ca.crt")
    env = arch_env(users=("alice", "bob"), start=False,
                   broker_kw={"extra_conf": tls_conf(port, cas["good"])},
                   args=["-c", archiver_tls_conf(datadir, ca, port), "--host", "localhost"])
    env.arch.port = port
    env.arch.start()
    assert "archiver@0: connected to localhost:%d" % port in env.arch.output()


def test_archiver_with_another_ca_keeps_retrying_and_says_why(datadir, arch_env, cas):
    port = harness.free_port()
    env = arch_env(users=("alice", "bob"), start=False,
                   broker_kw={"extra_conf": tls_conf(port, cas["good"])},
                   args=["-c", archiver_tls_conf(datadir, os.path.join(cas["other"], "ca.crt"), port)])
    env.arch.port = port
    env.arch.start(wait=False)
    # It says why once at warning level (seen without -v), keeps retrying
    # with its backoff and says why again on each try at the debug level;
    # the broker names the cause; nothing is subscribed.
    harness.wait_for(lambda: any("[warning]: archiver@0:" in line and "TLS error" in line
                                 and ":%d" % port in line
                                 for line in env.arch.output().splitlines()),
                     what="a warning that the TLS connection failed")
    env.arch.wait_log("archiver@0: connect to 127.0.0.1:%d: TLS error: handshake: self-signed certificate in certificate chain" % port, n=2)
    env.broker.wait_log("tlsv1 alert unknown ca")
    assert env.arch.running(), env.arch.output()
    assert "subscribed" not in env.arch.output()


# ---- WebSockets ----

def listening_addresses(port):
    """Local addresses of the sockets listening on port (from /proc/net)."""
    out = []
    for name in ("tcp", "tcp6"):
        with open("/proc/net/" + name) as f:
            next(f)
            for line in f:
                local, _, state = line.split()[1:4]
                addr, p = local.split(":")
                if state == "0A" and int(p, 16) == port:
                    out.append(addr)
    return out


# 127.0.0.1 as it appears in /proc/net/tcp and (v4-mapped) in tcp6.
LOOPBACK = ("0100007F", "0000000000000000FFFF00000100007F")


def test_websockets_through_the_plugin_on_loopback_only(store, tls, paho_clients):
    store.add_user("alice")
    store.add_user("bob")
    t = tls(ws=True)
    # `listener PORT lo` binds to 127.0.0.1 only (an IP address there would
    # be ignored and every interface taken).
    addrs = listening_addresses(t.ws_port)
    assert addrs and all(a in LOOPBACK for a in addrs), addrs

    bob = paho_clients(t.ws_port, "bob", ws=True, client_id="bob@browser")
    assert bob.connect() == 0
    assert bob.subscribe("chat/inbox/bob/#") == 1
    assert bob.subscribe("chat/inbox/alice/#") >= 0x80
    alice = paho_clients(t.broker.port, "alice", client_id="alice@plain")
    assert alice.connect() == 0
    alice.publish(inbox("bob", "alice"), harness.envelope("to the browser"))
    m = bob.get()
    assert m.topic == "chat/inbox/bob/alice" and b"to the browser" in m.payload
    bob.publish(inbox("alice", "mallory"), harness.envelope("forged"))
    alice_sub = paho_clients(t.broker.port, "alice", client_id="alice@reader")
    assert alice_sub.connect() == 0 and alice_sub.subscribe("chat/inbox/alice/#") == 1
    bob.publish(inbox("alice", "bob"), harness.envelope("from the browser"))
    assert b"from the browser" in alice_sub.get().payload
    alice_sub.expect_none()

    wrong = paho_clients(t.ws_port, "bob", "wrong-password", ws=True, client_id="bob@x")
    assert wrong.connect() == 5


# ---- make run (scripts/run.sh) ----

def run_env(**kw):
    """run.sh settings with free ports."""
    env = {"TLS_PORT": str(harness.free_port()), "WS_PORT": str(harness.free_port())}
    env.update(kw)
    return env


def test_make_run_makes_certificates_once_and_serves_tls(runs, data_root):
    data = os.path.join(data_root, "var")
    port = harness.free_port()
    env = run_env()
    tls_port = int(env["TLS_PORT"])
    r = runs(data, port, extra_env=env).wait_running()
    tlsdir = os.path.join(data, "tls")
    ca = os.path.join(tlsdir, "ca.crt")
    # The banner's last line.
    r_out = harness.wait_for(lambda: "ws://127.0.0.1:%s" % env["WS_PORT"] in r.output() and r.output(),
                             what="the banner")
    assert "made a local CA" in r_out
    assert "mqchat --cafile %s --port %d --user alice" % (ca, tls_port) in r_out, r_out
    assert "-p %d --cafile %s " % (tls_port, ca) in r_out, r_out
    out = r_out
    key = os.stat(os.path.join(tlsdir, "server.key"))
    assert stat.S_IMODE(key.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(tlsdir, "ca.key")).st_mode) == 0o600
    if os.geteuid() == 0 and "run as the 'mosquitto' user" in out:
        import pwd
        assert key.st_uid == pwd.getpwnam("mosquitto").pw_uid
    conf = open(data + ".run/mosquitto.conf").read()
    assert "\nlistener %d 127.0.0.1\n" % tls_port in conf and "\ncafile %s/ca.crt\n" % tlsdir in conf, conf

    add_user(data, "alice", PW)
    add_user(data, "bob", "bob-secret-12")
    # The plugin picks new users up within a second: retry the first login.
    b = types.SimpleNamespace(port=port)
    harness.wait_for(lambda: mqchat(b, data_root, "alice", "--cafile", ca, "send", "bob", "hi",
                                    port=tls_port, password=PW, timeout=2).rc == 0,
                     timeout=10, interval=0.4, what="alice's first send over TLS")
    h = ok(b, data_root, "bob", "--cafile", ca, "history", "alice", port=tls_port,
           password="bob-secret-12")
    assert "alice: hi" in h.out, h
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait_exit() == 0, r.output()

    # The second run keeps the same CA (clients keep trusting it).
    before = open(ca, "rb").read()
    r2 = runs(data, port, extra_env=run_env()).wait_running()
    assert "made a local CA" not in r2.output()
    assert open(ca, "rb").read() == before


def test_make_run_with_the_operators_certificates(runs, data_root, cas):
    data = os.path.join(data_root, "var")
    port = harness.free_port()
    # The operator's folder, readable by the broker's user (as root, the
    # broker runs as `mosquitto` when it can reach the data folder).
    own = os.path.join(data_root, "own-tls")
    shutil.copytree(cas["good"], own)
    os.chmod(own, 0o755)
    if os.geteuid() == 0:
        import pwd
        try:
            os.chown(os.path.join(own, "server.key"), pwd.getpwnam("mosquitto").pw_uid, -1)
        except KeyError:
            pass
    env = run_env(TLS_DIR=own)
    r = runs(data, port, extra_env=env).wait_running()
    assert "mkcert" not in r.output()
    assert not os.path.exists(os.path.join(data, "tls"))
    ctx = ssl.create_default_context(cafile=os.path.join(own, "ca.crt"))
    with socket.create_connection(("127.0.0.1", int(env["TLS_PORT"])), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ts:
            assert ts.version() in ("TLSv1.2", "TLSv1.3")


def test_make_run_without_tls_and_websockets(runs, data_root):
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"TLS_PORT": "0", "WS_PORT": "0"}).wait_running()
    conf = open(data + ".run/mosquitto.conf").read()
    assert "cafile" not in "\n".join(ln for ln in conf.splitlines() if not ln.startswith("#"))
    assert "protocol websockets" not in conf
    assert conf.count("\nlistener ") == 1
    assert not os.path.exists(os.path.join(data, "tls"))
    assert "Over TLS" not in r.output() and "ws://" not in r.output()


@pytest.mark.parametrize("env,why", [
    ({"TLS_PORT": "x"}, "TLS_PORT must be a number"),
    ({"TLS_PORT": "65536"}, "TLS_PORT must be a number"),
    ({"WS_PORT": "-1"}, "WS_PORT must be a number"),
    ({"TLS_PORT": "PORT"}, "TLS_PORT and PORT are both"),
    ({"TLS_PORT": "WS"}, "TLS_PORT and WS_PORT are both"),
    ({"TLS_DIR": "a b"}, "TLS_DIR must be a path"),
])
def test_make_run_refuses_bad_tls_settings(runs, data_root, env, why):
    data = os.path.join(data_root, "var")
    port = harness.free_port()
    e = run_env()
    e.update(env)
    if e["TLS_PORT"] == "PORT":
        e["TLS_PORT"] = str(port)
    if e["TLS_PORT"] == "WS":
        e["TLS_PORT"] = e["WS_PORT"]
    r = runs(data, port, extra_env=e)
    assert r.wait_exit() == 1
    assert why in r.output(), r.output()
    assert not os.path.exists(data)


def test_make_run_refuses_a_tls_dir_without_certificates(runs, data_root, tmp_path):
    data = os.path.join(data_root, "var")
    (tmp_path / "ca.crt").write_text("x")
    r = runs(data, harness.free_port(), extra_env=run_env(TLS_DIR=str(tmp_path)))
    assert r.wait_exit() == 1
    assert "has no readable server.crt" in r.output(), r.output()
    assert not os.path.exists(data + ".run/mosquitto.conf")
    assert sorted(os.listdir(str(tmp_path))) == ["ca.crt"]


def test_make_run_refuses_a_busy_tls_port(runs, data_root):
    data = os.path.join(data_root, "var")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        busy = s.getsockname()[1]
        r = runs(data, harness.free_port(), extra_env=run_env(TLS_PORT=str(busy)))
        assert r.wait_exit() == 1
    finally:
        s.close()
    assert "port %d on 127.0.0.1 is already in use" % busy in r.output(), r.output()
    assert not os.path.exists(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the broker as the mosquitto user")
def test_make_run_refuses_a_tls_dir_the_broker_cannot_read(runs, data_root, cas, tmp_path):
    data = os.path.join(data_root, "var")
    own = str(tmp_path / "tls")     # under a 0700 folder of root's
    shutil.copytree(cas["good"], own)
    r = runs(data, harness.free_port(), extra_env=run_env(TLS_DIR=own))
    assert r.wait_exit() == 1
    out = r.output()
    if "run as the 'mosquitto' user" not in out:
        pytest.skip("the broker keeps running as root here:\n" + out)
    assert "the 'mosquitto' user cannot read %s/ca.crt" % own in out, out
    assert "mosquitto version" not in out, "the broker was started:\n" + out
