"""test_client_tls.py - the client over TLS (--cafile): the server
certificate is verified, an unknown CA is refused."""
import os
import shutil
import subprocess

import pytest

import harness
from client_util import UNREACH, Listener, mqchat, ok, texts, users

OPENSSL = shutil.which("openssl")


def make_ca(d, name):
    """A CA (name.pem) and a server certificate for localhost/127.0.0.1 signed by it."""
    def run(*args):
        subprocess.run([OPENSSL] + list(args), cwd=d, check=True, capture_output=True, timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
        "-subj", "/CN=mqchat test " + name)
    run("req", *ec, "-keyout", name + "-server.key", "-out", name + "-server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", name + "-server.csr", "-CA", name + ".pem", "-CAkey", name + ".key",
        "-CAcreateserial", "-out", name + "-server.pem", "-days", "2", "-extfile", "san.ext")
    return os.path.join(d, name + ".pem")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_send_over_tls(store, make_broker, datadir):
    users(store, "alice", "bob")
    ca = make_ca(datadir, "ca")
    other = make_ca(datadir, "other")
    tls_port = harness.free_port()
    b = make_broker(extra_conf="listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n" % (
        tls_port, ca, os.path.join(datadir, "ca-server.pem"), os.path.join(datadir, "ca-server.key")))
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        ok(b, datadir, "alice", "--cafile", ca, "send", "bob", "over tls", port=tls_port)
        bob.wait_texts(1)
        # a server certificate from another CA is refused, nothing is sent
        r = mqchat(b, datadir, "alice", "--cafile", other, "send", "bob", "not sent",
                   port=tls_port, timeout=3)
        assert r.rc == UNREACH, r
        assert r.err.startswith("Error: TLS handshake with 127.0.0.1:%d failed" % tls_port), r
        # plain MQTT to the TLS port does not get through either
        r = mqchat(b, datadir, "alice", "send", "bob", "not sent", port=tls_port, timeout=5)
        assert r.rc == UNREACH, r
        assert "closed the connection" in r.err, r
        ok(b, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(2)
        assert texts(bob.lines()) == [(None, "alice", "over tls"), (None, "alice", "marker")]
