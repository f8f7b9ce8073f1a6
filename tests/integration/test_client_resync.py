"""test_client_resync.py - `mqchat listen` syncs what it may have missed
(docs/PROTOCOL.md, "Several nodes"): after a CONNACK without its session
(here the broker was killed and came back without its saved state, as a
node replaced by another) and on a resync notice from a service, it syncs
from the largest seq it has and shows what it had not shown, each message
once. The terminal app's side is in test_tui_reconnect.py."""
import json
import os
import signal
import time

import harness
from archiver_util import rows
from client_util import (ARCHIVER_PASSWORD, Listener, ok, texts, users,
                         archivers)  # noqa: F401 (fixture)


def archived(datadir, body):
    return any(r[0] == body for r in rows(datadir, "SELECT body FROM messages WHERE type='text'"))


def wait_archived(datadir, *bodies):
    for body in bodies:
        harness.wait_for(lambda: archived(datadir, body), harness.DEFAULT_TIMEOUT, interval=0.05,
                         what="%r in the archive" % body)


def bodies(listener):
    return [t[2] for t in texts(listener.lines())]


def test_listen_syncs_after_a_connack_without_its_session(store, make_broker, datadir, archivers):
    users(store, "alice", "bob")
    b = make_broker()
    arch = archivers(datadir, store, b, "alice")
    with Listener(b, datadir, "alice") as lis:
        lis.wait_ready()
        ok(b, datadir, "bob", "send", "alice", "before the crash")
        lis.wait_texts(1)
        # Listen stopped, so it sees nothing until the broker is back: then
        # the broker has no session for it (SIGKILL skips the save, and the
        # saved state is gone as on a new node), and what bob sends
        # meanwhile is only in the archive.
        lis.proc.send_signal(signal.SIGSTOP)
        try:
            b.stop(sig=signal.SIGKILL)
            db = os.path.join(datadir, "mosquitto.db")
            if os.path.exists(db):
                os.unlink(db)
            b.start()
            # The archiver is back (it answers), subscribed again.
            arch.wait_ready("bob")
            ok(b, datadir, "bob", "send", "alice", "while away 1")
            ok(b, datadir, "bob", "send", "alice", "while away 2")
            wait_archived(datadir, "while away 1", "while away 2")
        finally:
            lis.proc.send_signal(signal.SIGCONT)
        lis.wait_err("reconnected (new session)")
        lis.wait_texts(3)
        ok(b, datadir, "bob", "send", "alice", "after the crash")
        lis.wait_texts(4)
        assert bodies(lis) == ["before the crash", "while away 1", "while away 2",
                               "after the crash"], lis.lines()
        assert "warning" not in lis.errors(), lis.errors()


def test_listen_syncs_on_a_resync_notice(store, make_broker, datadir, archivers):
    users(store, "alice", "bob")
    store.add_room("late", members=["bob"])
    b = make_broker()
    archivers(datadir, store, b, "alice")
    with Listener(b, datadir, "alice") as lis:
        lis.wait_ready()
        ok(b, datadir, "bob", "send", "alice", "direct, live")
        lis.wait_texts(1)
        # Alice is added to a room after listen subscribed to hers: what is
        # said there never reaches it live, as a message lost on its way.
        store.add_member("late", "alice")
        harness.wait_for(lambda: "late" in ok(b, datadir, "alice", "rooms").out,
                         harness.DEFAULT_TIMEOUT, interval=0.1, what="alice in room late")
        ok(b, datadir, "bob", "send", "--room", "late", "said in the room")
        wait_archived(datadir, "said in the room")
        ok(b, datadir, "bob", "send", "alice", "direct, live too")
        lis.wait_texts(2)
        assert bodies(lis) == ["direct, live", "direct, live too"], lis.lines()

        svc = harness.Client(b.port, "archiver", ARCHIVER_PASSWORD, client_id="archiver@resync")
        try:
            assert svc.connect() == 0
            svc.publish("chat/notice/alice", json.dumps({"type": "resync",
                                                         "ts": int(time.time() * 1000)}))
        finally:
            svc.close()
        got = lis.wait_texts(3)
        assert ("late", "bob", "said in the room") in got, lis.lines()
        # The direct messages came again in the sync: shown once each.
        ok(b, datadir, "bob", "send", "alice", "the last one")
        lis.wait_texts(4)
        assert sorted(bodies(lis)) == sorted(["direct, live", "direct, live too",
                                              "said in the room", "the last one"]), lis.lines()
        assert "warning" not in lis.errors(), lis.errors()


def test_listen_syncs_before_it_forgets_and_shows_each_once(store, make_broker, datadir, archivers):
    """Listen remembers the last 256 envelopes it saw (a text and the copy
    of its own receipt take two places); it syncs every 128, so that a
    catch-up never returns one it showed but forgot (with every 128 texts
    instead, burst 000 showed twice). What that sync finds that never came
    live (a room alice was added to) shows; the 130 that came live show
    once each."""
    users(store, "alice", "bob")
    store.add_room("late", members=["bob"])
    b = make_broker()
    archivers(datadir, store, b, "alice")
    with Listener(b, datadir, "alice") as lis:
        lis.wait_ready()
        store.add_member("late", "alice")
        harness.wait_for(lambda: "late" in ok(b, datadir, "alice", "rooms").out,
                         harness.DEFAULT_TIMEOUT, interval=0.1, what="alice in room late")
        ok(b, datadir, "bob", "send", "--room", "late", "said in the room")
        wait_archived(datadir, "said in the room")
        bob = harness.Client(b.port, "bob", "password-xxxx", client_id="bob@burst")
        try:
            assert bob.connect() == 0
            for i in range(130):
                bob.publish("chat/inbox/alice/bob", harness.envelope("burst %03d" % i))
        finally:
            bob.close()
        got = lis.wait_texts(131, timeout=30)
        assert ("late", "bob", "said in the room") in got, lis.lines()
        want = sorted(["burst %03d" % i for i in range(130)] + ["said in the room"])
        assert sorted(bodies(lis)) == want, lis.lines()
        assert "warning" not in lis.errors(), lis.errors()
