"""Disk full under the archive: the data folder is a small ext4 file system
(loop mount); filled up while messages arrive, the archiver stops taking
them (leaves the broker, which keeps queueing for its session), says why in
its log, and stores every one of them, once and in order, when space is
back. Others keep chatting all along. (A file size limit instead of a full
disk: test_fault_archiver.py.)"""
import os
import shutil

import pytest

import harness
from archiver_util import arch_env, inbox, publish_many  # noqa: F401 (fixture)
from fault_util import fill, free_bytes, small_fs
from plugin_util import envelope, expect_msg, subscribe_ok


@pytest.fixture
def datadir():
    """The test's data folder on its own 8 MiB file system."""
    d = harness.make_datadir()
    with small_fs(d, mb=8):
        yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def logdir():
    """Beside the data folder: the logs of the broker and the archiver,
    where there is room to say why."""
    d = harness.make_datadir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def stored_ids(env):
    return [r[0] for r in env.rows("SELECT id FROM messages WHERE sender='alice' ORDER BY seq")]


def test_disk_full_then_space_back(arch_env, logdir):
    env = arch_env(users=["alice", "bob", "carol"], start=False, broker_kw={"start": False})
    env.broker.logpath = os.path.join(logdir, "mosquitto.log")
    env.arch.logpath = os.path.join(logdir, "archiver.log")
    env.broker.start()
    env.arch.start()
    alice = env.user("alice")
    bob = env.user("bob")
    carol = env.user("carol")
    subscribe_ok(bob, "chat/inbox/bob/#")
    pre = publish_many(alice, inbox("carol", "alice"), 10, prefix="pre")
    env.wait_rows(10)

    filler = fill(env.datadir)
    try:
        assert free_bytes(env.datadir) < 64 * 1024
        sent = publish_many(alice, inbox("carol", "alice"), 300, prefix="full")
        env.arch.wait_log("cannot be written")
        # the line before says which call failed and the system's reason
        out = env.arch.output()
        assert "No space left on device" in out, "the archiver does not say the disk is full:\n" + out[-3000:]
        # others keep chatting while the archive cannot grow
        m = envelope("chatting on a full disk")
        carol.publish(inbox("bob", "carol"), m)
        expect_msg(bob, inbox("bob", "carol"), m)
        stuck = env.count()
        print("disk full: %d of %d stored" % (stuck - 10, len(sent)))
        assert stuck < 10 + len(sent), "everything was stored on a full disk?"
        assert env.arch.running() and env.broker.proc.poll() is None
    finally:
        os.unlink(filler)
    env.arch.wait_log("writable again", timeout=15)
    env.arch.wait_ready(2, timeout=15)
    last = publish_many(alice, inbox("carol", "alice"), 1, prefix="last")
    harness.wait_for(lambda: "last000000" in stored_ids(env), 20, what="the last message stored")
    got = stored_ids(env)
    assert got == pre + sent + last, "lost or reordered: %d stored of %d" % (
        len(got), len(pre + sent + last))
    assert "dropped" not in env.broker.output()

