"""Broker restart with persistence: QoS 1 messages queued for an offline
persistent session (clean session false) survive a restart, in order and
once each; presence after the restart shows who is really connected."""
import signal

import pytest

import harness
from plugin_util import (PROTOCOLS, envelope, expect_msg, expect_none, login, presence,
                        presence_of, subscribe_ok)

PW = "password-xxxx"
N = 200


def presence_now(c, user):
    """What a fresh subscription to user's presence delivers (the retained
    state): the parsed payload, or None if nothing is retained."""
    topic = presence(user)
    subscribe_ok(c, topic)
    c.barrier()
    got = None
    while not c.messages.empty():
        m = c.messages.get()
        if m.topic == topic and m.payload:
            got = presence_of(m)
    c.c.unsubscribe(topic)
    c.barrier()
    return got


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_queued_messages_and_presence_survive_restart(store, make_broker, clients, v5):
    for n in ("alice", "bob", "carol"):
        store.add_user(n)
    # One room: everyone here is everyone's contact, and sees their presence.
    store.add_room("team", ("alice", "bob", "carol"))
    b = make_broker()
    # bob's phone: persistent session, subscribed at QoS 1, then offline
    bob = login(clients, b, "bob", PW, client_id="bob@phone", v5=v5, clean=False)
    subscribe_ok(bob, "chat/inbox/bob/#")
    bob.close()
    alice = login(clients, b, "alice", PW, client_id="alice@laptop")
    sent = []
    for i in range(N):
        sent.append(envelope("queued %d" % i))
        alice.publish("chat/inbox/bob/alice", sent[-1])
    carol = login(clients, b, "carol", PW)
    assert presence_now(carol, "alice")["status"] == "online"
    alice.close()
    carol.close()

    b.restart()
    assert "Saving in-memory database" in b.output()

    # nobody is connected after the restart: no stale "online" (the plugin
    # clears what the broker persisted within a few ticks)
    carol = login(clients, b, "carol", PW, client_id="carol@2")

    def not_online():
        p = presence_now(carol, "alice")
        return p is None or p["status"] != "online"
    harness.wait_for(not_online, 3, what="alice's stale online presence cleared")

    # bob comes back: everything queued, in order, once each
    bob = login(clients, b, "bob", PW, client_id="bob@phone", v5=v5, clean=False)
    for i, m in enumerate(sent):
        expect_msg(bob, "chat/inbox/bob/alice", m, timeout=10)
    expect_none(bob)
    harness.wait_for(lambda: (presence_now(carol, "bob") or {}).get("status") == "online", 3,
                     what="bob online after his reconnect")

    # and the service goes on as usual
    alice = login(clients, b, "alice", PW, client_id="alice@laptop")
    m = envelope("after the restart")
    alice.publish("chat/inbox/bob/alice", m)
    expect_msg(bob, "chat/inbox/bob/alice", m)


def test_broker_killed_keeps_last_save(store, make_broker, clients):
    """SIGKILL skips the save at exit: what was queued since the last save
    (autosave_interval; a clean stop always saves) is lost, what was saved
    comes back, and the killed broker's file still loads."""
    for n in ("alice", "bob"):
        store.add_user(n)
    b = make_broker()
    bob = login(clients, b, "bob", PW, client_id="bob@phone", clean=False)
    subscribe_ok(bob, "chat/inbox/bob/#")
    bob.close()
    alice = login(clients, b, "alice", PW)
    saved = [envelope("saved %d" % i) for i in range(20)]
    for m in saved:
        alice.publish("chat/inbox/bob/alice", m)
    alice.close()
    b.restart()             # clean stop: saved to mosquitto.db
    alice = login(clients, b, "alice", PW)
    unsaved = envelope("after the last save")
    alice.publish("chat/inbox/bob/alice", unsaved)
    alice.close()
    b.stop(sig=signal.SIGKILL)
    b.start()
    bob = login(clients, b, "bob", PW, client_id="bob@phone", clean=False)
    for m in saved:
        expect_msg(bob, "chat/inbox/bob/alice", m, timeout=10)
    bob.barrier()
    rest = [m.payload for m in list(bob.messages.queue)]
    print("after SIGKILL: %d saved messages back, %d unsaved back" % (len(saved), len(rest)))
    assert rest in ([], [unsaved.encode()]), rest
