"""test_cli_archive.py - the CLI's archive commands (user export, user del
--erase, stats, purge) on messages ingested by the real daemon through a
real broker, while the daemon keeps running."""
import json

from archiver_util import arch_env, inbox, room  # noqa: F401
from cli_util import ok
from harness import envelope


def test_export_erase_stats_purge_beside_the_daemon(arch_env):  # noqa: F811
    env = arch_env(users=("alice", "bob", "carol"), rooms={"general": ["alice", "bob", "carol"]})
    d = env.datadir
    alice = env.user("alice")
    bob = env.user("bob")
    alice.publish(inbox("bob", "alice"), envelope("hi bob", id="a1"))
    bob.publish(inbox("alice", "bob"), envelope("hi alice", id="b1"))
    bob.publish(inbox("carol", "bob"), envelope("hi carol", id="b2"))
    alice.publish(room("general", "alice"), envelope("hello room", id="a2"))
    env.wait_rows(4)

    doc = json.loads(ok(d, "user", "export", "alice").out)
    assert doc["rooms"] == ["general"]
    assert [(m["id"], m["from"], m.get("to"), m.get("room"), m["body"]) for m in doc["messages"]] == [
        ("a1", "alice", "bob", None, "hi bob"), ("b1", "bob", "alice", None, "hi alice"),
        ("a2", "alice", None, "general", "hello room")]
    stats = json.loads(ok(d, "stats", "--json").out)
    assert stats["messages"] == 4 and stats["users"] == 4 and stats["rooms"] == 1

    assert ok(d, "user", "del", "alice", "--erase").out == "3 messages of alice erased\nuser alice deleted\n"
    assert env.rows("SELECT id FROM messages ORDER BY seq") == [("b2",)]

    # The daemon goes on archiving; purge works beside it.
    bob.publish(inbox("carol", "bob"), envelope("still here", id="b3"))
    env.wait_rows(2)
    assert ok(d, "purge").out == "0 messages purged\n"
    assert ok(d, "purge", "--older-than", "0").out == "2 messages purged\n"
    assert env.count() == 0
    bob.publish(inbox("carol", "bob"), envelope("after the purge", id="b4"))
    env.wait_rows(1)
    assert env.arch.running()
