"""test_tui_outbox.py - a text typed in the terminal app while the broker is
away, and the app closed before it came back: the text is kept (the
outbox in the state folder), sent at the next start with the same id, and
arrives once."""
import json
import re
import os

import harness
from tui_util import T, mark_re, start_app, top_bar, tmux, tui_stack  # noqa: F401 (fixtures)


def history_bodies(s, user, peer):
    r = s.ok(user, "--json", "history", peer)
    return [json.loads(line).get("body") for line in r.out.splitlines() if line.startswith("{")]


def test_a_text_typed_offline_survives_quitting_and_is_sent_once(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "hello alice")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(r"hello alice", what="the history")

    s.broker.stop()
    try:
        pa.wait_screen(top_bar(a, "offline"), what="the top bar saying offline")
        pa.type("typed while the broker was away")
        pa.send_keys("Enter")
        rows = pa.wait_screen(top_bar(a, r"offline .* \u00b7 1 queued"), what="1 queued")
        assert any(re.search(mark_re("typed while the broker was away", "\u2026"), r)
                   for r in rows), "\n".join(rows)
        pa.type("/quit")
        pa.send_keys("Enter")
        assert pa.wait_exit() == 0
        outbox = os.path.join(s.home(a), "home", "state", "mqchat", "%s@tui.outbox" % a)
        assert os.path.exists(outbox), os.listdir(os.path.dirname(outbox))
        assert os.stat(outbox).st_mode & 0o077 == 0, "the outbox must be private"
    finally:
        s.broker.start()
    s.wait_archiver(a)

    pa2 = start_app(tmux, s, a, "chat", b, name="again")
    pa2.wait_screen(mark_re("typed while the broker was away", "\u2713"), what="sent")
    pa2.wait_screen("sending 1 message kept from the last run")
    harness.wait_for(lambda: "typed while the broker was away" in history_bodies(s, b, a),
                     T, what="the text in the archive")
    assert history_bodies(s, b, a).count("typed while the broker was away") == 1
    assert not os.path.exists(outbox)
    # A third start sends nothing again.
    pa2.type("/quit")
    pa2.send_keys("Enter")
    assert pa2.wait_exit() == 0
    pa3 = start_app(tmux, s, a, "chat", b, name="third")
    pa3.wait_screen(mark_re("typed while the broker was away", "\u2713"), what="the history")
    assert "kept from the last run" not in "\n".join(pa3.screen())
    assert history_bodies(s, b, a).count("typed while the broker was away") == 1
