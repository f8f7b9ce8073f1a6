"""Ingest commits in batches: a timer or a full batch, never a transaction
per message (the socket runs dry after nearly every message, so committing
then meant one commit per message). Durability comes from the journal, so
the batching must not delay what an RPC answer or a reader sees beyond the
commit delay."""
import re
import signal

import harness
from archiver_util import Rpc, arch_env, inbox, publish_many  # noqa: F401 (fixture)


def commits_at_stop(env):
    """Stop the archiver with SIGTERM and read its commit count."""
    assert env.arch.stop(signal.SIGTERM) == 0, env.arch.output()
    found = re.findall(r"stopped: (\d+) stored, .*; (\d+) commits", env.arch.output())
    assert found, "no stop line with a commit count:\n" + env.arch.output()[-4000:]
    stored, commits = found[-1]
    return int(stored), int(commits)


def test_queued_messages_are_committed_in_batches(arch_env):
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    assert env.arch.stop() == 0, env.arch.output()
    sent = publish_many(alice, inbox("bob", "alice"), 2000)
    env.arch.start()
    env.wait_rows(2000, timeout=60)
    assert [r[0] for r in env.rows("SELECT id FROM messages ORDER BY seq")] == sent
    stored, commits = commits_at_stop(env)
    assert stored == 2000
    # A commit per message would be 2,000; batches of up to 1,000 or 50 ms
    # need 2 and at most one per 50 ms of draining (100 = 5 s, 400 msg/s).
    assert 2 <= commits <= 100, "%d commits for %d messages" % (commits, stored)


def test_a_lone_message_is_committed_by_the_timer(arch_env):
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    for i in range(3):
        publish_many(alice, inbox("bob", "alice"), 1, prefix="lone%d-" % i)
        # Nothing else arrives: only the commit timer can store it.
        env.wait_rows(i + 1, timeout=5)
    stored, commits = commits_at_stop(env)
    assert (stored, commits) == (3, 3)


def test_history_right_after_a_burst_has_every_message(arch_env):
    env = arch_env(users=["alice", "bob"])
    alice = env.user("alice")
    rpc = Rpc(alice, "alice")
    # The broker hands the archiver alice's messages and then her request on
    # the one connection, in that order: the answer must hold all of them,
    # though the batch timer has not fired yet.
    sent = publish_many(alice, inbox("bob", "alice"), 300, prefix="burst")
    ans = rpc.call("history", **{"with": "bob", "limit": 100})
    assert ans["ok"], ans
    assert [m["id"] for m in reversed(ans["messages"])] == sent[-100:]
    harness.wait_for(lambda: env.count() == 300, what="300 rows")
