"""test_bus_config.py - the bus's settings, refused clearly: the plugin's
plugin_opt_bus_inbox_mb (out of range, or without the spool the bus reads
from) stops the broker with a line saying why; `mqchat-archiver bus`
without its node or NATS server, or with a node name that is not a name,
exits 2 with the reason and its usage, before it opens anything. A broker
with plugin_opt_bus_inbox_mb makes DATA/inbox beside its auth.db."""
import os
import subprocess

import pytest

import harness


@pytest.mark.parametrize("opts,says", [
    ({"bus_inbox_mb": 4}, "plugin_opt_bus_inbox_mb needs the spool (plugin_opt_spool_mb)"),
    ({"spool_mb": 2, "bus_inbox_mb": 4097}, "plugin_opt_bus_inbox_mb must be an integer in 0..4096"),
    ({"spool_mb": 2, "bus_inbox_mb": "x"}, "plugin_opt_bus_inbox_mb must be an integer in 0..4096"),
    ({"spool_mb": 2, "bus_inbox_mb": -1}, "plugin_opt_bus_inbox_mb must be an integer in 0..4096"),
], ids=["no-spool", "too-big", "not-a-number", "negative"])
def test_bad_inbox_options_stop_the_broker(store, make_broker, datadir, opts, says):
    b = make_broker(start=False, plugin_opts=opts)
    assert b.start(expect_fail=True) != 0
    assert says in b.output(), b.output()
    assert not os.path.exists(os.path.join(datadir, "inbox"))


def test_the_broker_makes_the_inbox(store, make_broker, datadir):
    make_broker(plugin_opts={"spool_mb": 2, "bus_inbox_mb": 1})
    with open(os.path.join(datadir, "inbox"), "rb") as f:
        assert f.read(8) == b"MQCSPOOL"
    assert os.stat(os.path.join(datadir, "inbox")).st_size == 4096 + (1 << 20)


@pytest.mark.parametrize("args,says", [
    (["--nats", "nats://127.0.0.1:1"], "the bus needs `node` and `nats` (--node, --nats)"),
    (["--node", "node1"], "the bus needs `node` and `nats` (--node, --nats)"),
    (["--node", "Node 1", "--nats", "nats://127.0.0.1:1"], 'node "Node 1": a name of a-z 0-9'),
    (["--node", "node1", "--nats", "nats://127.0.0.1:1", "--wake", "maybe"], "wake"),
], ids=["no-node", "no-nats", "bad-node", "bad-wake"])
def test_bad_bus_arguments(datadir, args, says):
    r = subprocess.run([harness.ARCHIVER, "--data", datadir, "bus"] + args, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, r
    assert says in r.stderr, r.stderr
    assert "usage: mqchat-archiver [--data DIR] bus --node NAME --nats URL" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(datadir, "bus.interest"))


def test_unknown_bus_option(datadir):
    r = subprocess.run([harness.ARCHIVER, "--data", datadir, "bus", "--node", "node1", "--bogus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    assert r.stderr == "Error: unknown option '--bogus' (see `mqchat-archiver bus --help`)\n", r


def test_bus_help():
    r = subprocess.run([harness.ARCHIVER, "bus", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("usage: mqchat-archiver [--data DIR] bus "), r


def test_bus_settings_from_the_config_file(datadir):
    """node, nats and wake come from the file too (archiver.conf)."""
    conf = os.path.join(datadir, "archiver.conf")
    with open(conf, "w") as f:
        f.write("nats = nats://127.0.0.1:1\nnode = Bad\n")
    r = subprocess.run([harness.ARCHIVER, "--data", datadir, "bus", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and 'node "Bad": a name of a-z 0-9' in r.stderr, r
    with open(conf, "w") as f:
        f.write("nats = nats://127.0.0.1:1\nnode = node1\nwake = sometimes\n")
    r = subprocess.run([harness.ARCHIVER, "--data", datadir, "bus", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "wake" in r.stderr, r
