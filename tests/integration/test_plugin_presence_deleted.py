"""Presence of deleted accounts: deleting an account clears its retained
chat/presence/<name> (an empty retained message) whether it was connected
(it is kicked, and its last connection going clears instead of saying
"offline") or not (the plugin sees it vanish between two snapshots), and
also when it was deleted while the broker was down (the start-up sweep
clears the store's retired names). The next holder of the name inherits
no "offline since <old time>"; an account that exists keeps its presence."""
import time

import harness
from cli_util import PASSWORD as CLI_PW, ok
from plugin_util import (RELOAD_BOUND, Sync, login, presence, presence_of, quiet, subscribe_ok,
                         wait_disconnected)

PW = "password-xxxx"
# A reload, a kick and a tick; the start-up sweep runs within a few ticks.
CLEAR_BOUND = RELOAD_BOUND + 2.0


def presence_now(c, user):
    """What a fresh subscription of c to user's presence finds retained:
    the parsed payload, or None."""
    topic = presence(user)
    subscribe_ok(c, topic)
    c.barrier()
    got = None
    while not c.messages.empty():
        m = c.messages.get_nowait()
        if m.topic == topic and m.retain and m.payload:
            got = presence_of(m)
    c.c.unsubscribe(topic)
    c.barrier()
    while not c.messages.empty():   # a clear or a change in flight meanwhile
        c.messages.get_nowait()
    return got


def status(c, user):
    return (presence_now(c, user) or {}).get("status")


def assert_nothing_retained(clients, b, watcher, users):
    """A new subscriber to each user's presence gets nothing within a
    short window."""
    c = login(clients, b, watcher, PW, client_id="%s@new" % watcher)
    for u in users:
        subscribe_ok(c, presence(u))
    quiet(c, 0.5)
    c.close()


def test_deleted_accounts_leave_no_presence(datadir, store, make_broker, clients):
    for name in ("alice", "bob", "carol", "dave"):
        store.add_user(name)
    # One room: everyone here is everyone's contact, and sees their presence.
    store.add_room("team", ("alice", "bob", "carol", "dave"))
    b = make_broker()
    dave = login(clients, b, "dave", PW)
    # bob and carol were here and left; alice is connected.
    for name in ("bob", "carol"):
        login(clients, b, name, PW).close()
    alice = login(clients, b, "alice", PW, client_id="alice@phone")
    harness.wait_for(lambda: status(dave, "bob") == "offline" and status(dave, "carol") == "offline"
                     and status(dave, "alice") == "online", 5, 0.1, "presence of alice, bob, carol")

    # alice deleted while connected (with the CLI: the command returns
    # once the broker has the change); bob while offline, straight in the
    # store, as a script might (no retired row: the plugin sees him vanish).
    ok(datadir, "user", "del", "alice")
    store.delete_user("bob")
    wait_disconnected(alice, RELOAD_BOUND, "alice was deleted")
    harness.wait_for(lambda: presence_now(dave, "alice") is None and presence_now(dave, "bob") is None,
                     CLEAR_BOUND, 0.1, "the presence of alice and bob cleared")
    assert_nothing_retained(clients, b, "dave", ["alice", "bob"])
    assert status(dave, "carol") == "offline", "carol exists: her presence must stay"

    # A new alice (same name, given back) inherits nothing, and what she
    # shows is not cleared by later reloads.
    ok(datadir, "user", "add", "alice", "--restore", "--password-stdin", stdin=CLI_PW + "\n")
    store.add_member("team", "alice")   # her room went with the account
    Sync(store, dave)()
    again = login(clients, b, "alice", CLI_PW, client_id="alice@again")
    assert status(dave, "alice") == "online"
    Sync(store, dave)()
    Sync(store, dave)()
    assert status(dave, "alice") == "online", "a reload cleared the presence of an account that exists"
    again.close()
    harness.wait_for(lambda: status(dave, "alice") == "offline", 2 + 1, 0.1, "alice offline again")


def test_deleted_while_the_broker_was_down(datadir, store, make_broker, clients):
    for name in ("bob", "erin", "dave"):
        store.add_user(name)
    # One room: everyone here is everyone's contact, and sees their presence.
    store.add_room("team", ("bob", "erin", "dave"))
    b = make_broker()
    dave = login(clients, b, "dave", PW)
    for name in ("bob", "erin"):
        login(clients, b, name, PW).close()
    harness.wait_for(lambda: status(dave, "bob") == "offline" and status(dave, "erin") == "offline",
                     5, 0.1, "bob and erin offline")
    dave.close()
    b.stop()   # the retained "offline" of both is saved with the broker's state

    ok(datadir, "user", "del", "bob")
    b.start()
    dave = login(clients, b, "dave", PW, client_id="dave@2")
    harness.wait_for(lambda: presence_now(dave, "bob") is None, CLEAR_BOUND, 0.1,
                     "the presence of bob, deleted while the broker was down, cleared")
    assert_nothing_retained(clients, b, "dave", ["bob"])
    # erin exists (the sweep clears her stale state too, as for every
    # account not connected at start): she shows up as usual.
    login(clients, b, "erin", PW)
    harness.wait_for(lambda: status(dave, "erin") == "online", 3, 0.1, "erin online")
