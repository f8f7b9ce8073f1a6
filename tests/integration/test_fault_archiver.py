"""The archiver killed again and again while it drains a backlog (the
live-load case is test_archiver_durability.py): no SIGKILL loses a message
(a PUBACK leaves only after its journal write), nothing is stored twice, what is stored keeps the order it was sent in, and users
keep chatting through every kill. A file size limit (RLIMIT_FSIZE,
`ulimit -f`) must be handled like a full disk, not end the process."""
import json
import shutil
import signal
import subprocess
import threading
import time

import pytest

import harness
from archiver_util import arch_env, inbox, publish_many  # noqa: F401 (fixture)
from plugin_util import envelope, expect_msg, subscribe_ok

BACKLOG = 20000


def in_order(stored, sent):
    """stored is a subsequence of sent (same relative order)."""
    it = iter(sent)
    return all(any(x == y for y in it) for x in stored)


@pytest.mark.parametrize("sig,kills", [(signal.SIGKILL, 6), (signal.SIGTERM, 4)], ids=["kill", "term"])
def test_repeated_signals_while_draining(arch_env, sig, kills):
    env = arch_env(users=["alice", "bob", "carol"])
    alice = env.user("alice")
    bob = env.user("bob")
    carol = env.user("carol")
    subscribe_ok(bob, "chat/inbox/bob/#")
    alice.c.max_inflight_messages_set(100)
    assert env.arch.stop() == 0
    sent = publish_many(alice, inbox("carol", "alice"), BACKLOG, prefix="q")

    stop = threading.Event()
    at_signal = []   # messages stored when each signal was sent
    chatted = []
    errors = []

    def chat():
        try:
            while not stop.is_set():
                m = envelope("through the kills %d" % len(chatted))
                carol.publish(inbox("bob", "carol"), m)
                expect_msg(bob, inbox("bob", "carol"), m)
                chatted.append(m)
        except AssertionError as e:
            errors.append(e)
    t = threading.Thread(target=chat)
    t.start()
    try:
        for k in range(kills):
            mark = len(env.arch.output())
            env.arch.start(wait=(k % 2 == 0))
            if k % 2 == 0:
                # after some progress
                n = env.count()
                harness.wait_for(lambda: env.count() >= min(n + 150, BACKLOG), 30, what="progress")
            else:
                # as early as possible: during the journal replay or the subscribe
                time.sleep(0.05)
            at_signal.append(env.count())
            rc = env.arch.stop(sig)
            if sig == signal.SIGTERM:
                # A SIGTERM before the handler is in place (start-up, before
                # any connection) ends the process by default: nothing was
                # taken from the broker yet, so nothing is at stake.
                run = env.arch.output()[mark:]
                early = rc == -signal.SIGTERM and "archiver@0: connected" not in run
                assert rc == 0 or early, "SIGTERM exit status %s:\n%s" % (rc, run[-2000:])
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors[0]
    assert chatted, "nobody could chat while the archiver was killed"
    assert any(0 < n < BACKLOG for n in at_signal), "no signal came during the drain: %s" % at_signal
    env.arch.start()
    barrier = "barrier"
    alice.publish(inbox("carol", "alice"), json.dumps({"id": barrier, "type": "text", "body": "b"}))
    harness.wait_for(lambda: env.rows("SELECT 1 FROM messages WHERE id=?", barrier), 30,
                     what="the barrier message stored")
    stored = [r[0] for r in env.rows("SELECT id FROM messages WHERE sender='alice' ORDER BY seq")]
    assert stored[-1] == barrier
    stored = stored[:-1]
    lost = sorted(set(sent) - set(stored))
    print("%s x%d during a drain of %d (stored at each: %s): %d lost %s; %d chat messages"
          " meanwhile" % (signal.Signals(sig).name, kills, BACKLOG, at_signal, len(lost), lost,
                          len(chatted)))
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert in_order(stored, sent), "stored out of the order sent"
    assert lost == [], "%d lost in %d %s: %s" % (len(lost), kills, signal.Signals(sig).name, lost)


def alice_ids(env):
    return [r[0] for r in env.rows("SELECT id FROM messages WHERE sender='alice' ORDER BY seq")]


def prlimit_fsize(pid, limit):
    r = subprocess.run(["prlimit", "--pid", str(pid), "--fsize=%s:" % limit],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip("prlimit failed: %s" % r.stderr.strip())


def test_file_size_limit_then_lifted(arch_env):
    """Every file the archiver writes (journal, WAL, its log on stdout) is
    past a 1-byte limit, so each write fails, or raises SIGXFSZ if that is
    not ignored. Its log cannot be written either: the broker's log shows
    it leaving."""
    if not shutil.which("prlimit"):
        pytest.skip("prlimit is not installed")
    env = arch_env(users=["alice", "carol"])
    alice = env.user("alice")
    pre = publish_many(alice, inbox("carol", "alice"), 10, prefix="pre")
    env.wait_rows(10)
    pid = env.arch.proc.proc.pid
    left = env.broker.output().count("Client archiver@0 disconnected")
    prlimit_fsize(pid, 1)
    try:
        sent = publish_many(alice, inbox("carol", "alice"), 200, prefix="big")
        harness.wait_for(lambda: not env.arch.running()
                         or env.broker.output().count("Client archiver@0 disconnected") > left,
                         what="the archiver to leave the broker at the file size limit")
        assert env.arch.running(), "the archiver died (status %s):\n%s" % (
            env.arch.proc.proc.returncode, env.arch.output()[-2000:])
        assert env.count() < 10 + len(sent)
    finally:
        if env.arch.running():
            prlimit_fsize(pid, "unlimited")
    env.arch.wait_log("writable again", timeout=15)
    harness.wait_for(lambda: len(alice_ids(env)) >= len(pre + sent), 30, what="everything stored")
    assert alice_ids(env) == pre + sent
