"""scripts/run.sh with SPOOL_MB: the broker's config gets the spool and the
archiver reads it; a bad value stops the start before anything runs; no
SPOOL_MB leaves make run as it was."""
import json
import os
import signal

import pytest

import harness
from archiver_util import rows
from test_run_script import Run, add_user, data_root, login_when_loaded, runs  # noqa: F401

PW = "alice-secret-1"


def test_run_with_the_spool(runs, data_root):  # noqa: F811
    data = os.path.join(data_root, "var")
    port = harness.free_port()
    r = runs(data, port, extra_env={"SPOOL_MB": "8", "TLS_PORT": "0", "HTTP_PORT": "0"})
    r.wait_running()
    assert r.apid is not None, r.output()
    conf = open(data + ".run/mosquitto.conf").read()
    assert "\nplugin_opt_spool_mb 8\n" in conf, conf
    assert os.path.getsize(os.path.join(data, "spool")) >= 8 << 20
    add_user(data, "alice", PW)
    add_user(data, "bob", PW)
    c = login_when_loaded(port, "alice", PW, "alice@test")
    try:
        c.publish("chat/inbox/bob/alice", json.dumps({"id": "m1", "type": "text", "body": "hi"}))
        harness.wait_for(lambda: rows(data, "SELECT id FROM messages") == [("m1",)], 10,
                         what="the message stored from the spool")
    finally:
        c.close()
    alog = open(os.path.join(data, "archiver.log"), errors="replace").read()
    assert "messages from the spool" in alog, alog[-2000:]
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait_exit() == 0, r.output()


def test_run_without_the_spool_is_unchanged(runs, data_root):  # noqa: F811
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"TLS_PORT": "0", "HTTP_PORT": "0"})
    r.wait_running()
    assert "spool" not in open(data + ".run/mosquitto.conf").read()
    assert not os.path.exists(os.path.join(data, "spool"))
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait_exit() == 0, r.output()


@pytest.mark.parametrize("value", ["abc", "-1", "4097", "12345", "8 ; id"])
def test_run_refuses_a_bad_spool_size(runs, data_root, value):  # noqa: F811
    data = os.path.join(data_root, "var")
    r = runs(data, harness.free_port(), extra_env={"SPOOL_MB": value})
    assert r.wait_exit(timeout=30) == 1
    out = r.output()
    assert "SPOOL_MB must be a number from 1 to 4096, or 0 for no spool (got '%s')" % value in out, out
    assert not os.path.exists(data), "nothing may be created with a bad SPOOL_MB"
