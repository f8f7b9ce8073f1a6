"""test_tui_reconnect.py - the terminal app through a broker restart: the
top bar says offline, a text typed meanwhile waits (… and "1 queued"),
and once the broker is back the app is online again and the text reaches
the other person exactly once, on the screen and in the archive. After a
CONNACK without its session and on a resync notice it syncs what it
missed (docs/PROTOCOL.md, "Several nodes"), each message shown once.

A broker + plugin + archiver of its own (the test stops the broker)."""
import json
import re

import harness
from client_util import ARCHIVER_PASSWORD, PASSWORD
from tui_util import T, mark_re, msg_re, start_app, top_bar, tmux, tui_stack  # noqa: F401 (fixtures)

TEXT = "typed while the broker was down"


def archived(s, user, peer):
    """The bodies of the archive's history of user's conversation with peer."""
    r = s.ok(user, "--json", "history", peer, "--limit", "100")
    return [json.loads(ln).get("body") for ln in r.out.splitlines() if ln.startswith("{")]


def test_broker_restart_queues_and_sends_once(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "before the restart")
    pa = start_app(tmux, s, a, "chat", b)
    pb = start_app(tmux, s, b, "chat", a)
    pa.wait_screen(msg_re(b, "before the restart"))

    s.broker.stop()
    try:
        pa.wait_screen(top_bar(a, r"offline \u00b7 retry in \d+ s"), what="the top bar saying offline")
        pb.wait_screen(top_bar(b, "(offline|connecting)"), what="bob's top bar saying offline")
        pa.type(TEXT)
        pa.send_keys("Enter")
        rows = pa.wait_screen(top_bar(a, r"offline \u00b7 retry in \d+ s \u00b7 1 queued") + r"\s+\d\d:\d\d$",
                              what="1 queued in the top bar")
        assert any(re.search(mark_re(TEXT, "\u2026"), r) for r in rows), \
            "the text is not shown pending (\u2026):\n" + "\n".join(rows)
        assert rows[-1] == "[%s]" % b, "the input line still holds the text sent: %r" % rows[-1]
    finally:
        s.broker.start()

    # Back: online, nothing queued, the text on its way and then read by bob,
    # who has the conversation open.
    pa.wait_screen(top_bar(a, "online") + r"\s+\d\d:\d\d$", what="online with nothing queued")
    pb.wait_screen(top_bar(b, "online"), what="bob online again")
    pb.wait_screen(msg_re(a, TEXT))
    pa.wait_screen(mark_re(TEXT, "\u2714\u2714"), what="\u2714\u2714 (read by bob)")
    # Once on bob's screen and once in the archive.
    assert sum(r.count(TEXT) for r in pb.screen()) == 1, "\n".join(pb.screen())
    assert sum(r.count(TEXT) for r in pa.screen()) == 1, "\n".join(pa.screen())
    harness.wait_for(lambda: TEXT in archived(s, b, a), T, interval=0.2, what="the text in the archive")
    assert archived(s, b, a).count(TEXT) == 1, archived(s, b, a)

    # And the conversation goes on both ways; after that round trip the
    # text is still there once (no late resend).
    pb.type("got it once")
    pb.send_keys("Enter")
    pa.wait_screen(msg_re(b, "got it once"))
    pb.wait_screen(mark_re("got it once", "\u2714\u2714"))
    assert sum(r.count(TEXT) for r in pb.screen()) == 1, "\n".join(pb.screen())
    assert archived(s, b, a).count(TEXT) == 1, archived(s, b, a)


def test_taken_over_by_another_machine_then_reconnect(tmux, tui_stack):
    """The same device from another machine (another config folder, so no
    lock between them) takes the session over: the app says so and stops
    reconnecting, until /reconnect takes it back."""
    s = tui_stack
    a, b = s.pair()
    s.wait_archiver(a)
    s.ok(b, "send", a, "hello from bob")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, "hello from bob"))
    other = s.env(a + "-elsewhere")
    p2 = tmux.start("elsewhere", s.argv(a, "chat", b), other)
    p2.wait_screen(top_bar(a, "online"))
    rows = pa.wait_screen(top_bar(a, r"taken over by another mqchat as %s@tui" % a),
                          what="the top bar saying taken over")
    assert rows[-1] == "[%s]" % b
    # It stays so: the other one keeps the session.
    p2.wait_screen(msg_re(b, "hello from bob"))
    assert re.match(top_bar(a, "online"), p2.row(0)), p2.row(0)
    p2.type("/quit")
    p2.send_keys("Enter")
    assert p2.wait_exit() == 0
    assert re.match(top_bar(a, "taken over"), pa.row(0)), pa.row(0)
    pa.type("/reconnect")
    pa.send_keys("Enter")
    pa.wait_screen(top_bar(a, "online"), what="online again after /reconnect")
    s.ok(b, "send", a, "still there?")
    pa.wait_screen(msg_re(b, "still there?"))



def take_over(s, pa, user, device="tui"):
    """A plain MQTT client connects as the app's client id with a clean
    session each time the app takes the session back, until the app gives
    way (session.h: it stops reconnecting after connections taken from it
    3 times in a row). The app's session is gone with it: the taker's own
    ends when it disconnects. Returns the taker, connected."""
    def taken():
        return re.match(top_bar(user, "taken over"), pa.row(0))
    for _ in range(10):
        c = harness.Client(s.broker.port, user, PASSWORD, client_id="%s@%s" % (user, device),
                           v5=True)
        assert c.connect() == 0
        harness.wait_for(lambda: c.disconnected.is_set() or taken(), T, interval=0.05,
                         what="the app to take its session back or give way")
        if taken() and not c.disconnected.is_set():
            return c
        c.close()
    raise AssertionError("the app never gave way:\n" + "\n".join(pa.screen()))


def test_a_connack_without_the_session_brings_what_was_missed_once(tmux, tui_stack):
    """Another program takes the app's client id with a clean session: the
    app's session is gone with what it would have queued, and when the app
    connects again its CONNACK says so (session present 0). The app syncs
    from the largest seq it holds (docs/PROTOCOL.md, "Several nodes"): what
    bob sent meanwhile shows, and nothing shows twice."""
    s = tui_stack
    a, b = s.pair()
    pa = start_app(tmux, s, a, "chat", b)
    s.ok(b, "send", a, "before")
    pa.wait_screen(msg_re(b, "before"))
    taker = take_over(s, pa, a)
    try:
        s.ok(b, "send", a, "while away 1")
        s.ok(b, "send", a, "while away 2")
        harness.wait_for(lambda: "while away 2" in archived(s, b, a), T, interval=0.1,
                         what="the texts in the archive")
    finally:
        taker.close()
    pa.type("/reconnect")
    pa.send_keys("Enter")
    pa.wait_screen(top_bar(a, "online"), what="online again after /reconnect")
    pa.wait_screen(msg_re(b, "while away 2"), what="what was sent meanwhile")
    s.ok(b, "send", a, "after")
    rows = pa.wait_screen(msg_re(b, "after"))
    for text in ("before", "while away 1", "while away 2", "after"):
        assert sum(1 for r in rows if re.search(msg_re(b, text) + "$", r)) == 1, "\n".join(rows)


def test_a_resync_notice_brings_what_was_missed_once(tmux, tui_stack):
    """A resync notice from a service (docs/PROTOCOL.md, "Several nodes"):
    the app syncs from the largest seq it holds while connected. What it
    missed here: a room message sent while alice was out of the room, which
    the broker never delivered to her; back in the room, the archive gives
    it to her (a room's messages since it was created)."""
    s = tui_stack
    a, b = s.pair()
    room = "resync-" + a
    s.store.add_room(room, members=[a, b])
    harness.wait_for(lambda: room in s.run(a, "rooms").out, T, interval=0.2,
                     what="the archiver to know room %s" % room)
    pa = start_app(tmux, s, a, "chat", "#" + room)
    harness.wait_for(lambda: s.run(b, "send", "--room", room, "said live").rc == 0, T,
                     interval=0.2, what="bob allowed to speak in %s" % room)
    pa.wait_screen(msg_re(b, "said live"))

    s.store.remove_member(room, a)
    harness.wait_for(lambda: s.run(a, "send", "--room", room, "probe").rc != 0, T, interval=0.2,
                     what="the plugin to take alice out of %s" % room)
    s.ok(b, "send", "--room", room, "said while out")
    s.store.add_member(room, a)
    harness.wait_for(lambda: "said while out" in s.run(a, "history", "--room", room).out, T,
                     interval=0.2, what="alice back in %s, the text in its history" % room)
    assert not any("said while out" in r for r in pa.screen()), "\n".join(pa.screen())

    svc = harness.Client(s.broker.port, "archiver", ARCHIVER_PASSWORD, client_id="archiver@resync")
    try:
        assert svc.connect() == 0
        svc.publish("chat/notice/%s" % a, json.dumps({"type": "resync", "ts": 1764892800000}))
    finally:
        svc.close()
    pa.wait_screen(msg_re(b, "said while out"), what="the text the notice brought")
    s.ok(b, "send", "--room", room, "said after")
    rows = pa.wait_screen(msg_re(b, "said after"))
    for text in ("said live", "said while out", "said after"):
        assert sum(1 for r in rows if re.search(msg_re(b, text) + "$", r)) == 1, "\n".join(rows)
