"""test_tui_mute.py - /mute and /unmute in the terminal app: the open
conversation's push notifications, said under its title and kept by the
server (what `mqchat mutes` lists)."""
import json

from tui_util import start_app, tmux, tui_stack  # noqa: F401 (fixtures)


def mutes(s, user):
    r = s.ok(user, "--json", "mutes")
    return [json.loads(line) for line in r.out.splitlines() if line.startswith("{")]


def test_mute_for_a_while_then_unmute(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "hello")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(r"hello")
    pa.type("/mute 8h")
    pa.send_keys("Enter")
    pa.wait_screen(r"-!- %s muted for 8 hours" % b)
    pa.wait_screen(r"^.{19}%s .*muted until " % b, what="the title saying muted")
    assert [m.get("with") for m in mutes(s, a)] == [b], mutes(s, a)
    assert all(m.get("until", 0) > 0 for m in mutes(s, a))

    pa.type("/mute soon")
    pa.send_keys("Enter")
    pa.wait_screen(r"-!- usage: /mute \[30m\|8h\|2d\|SECONDS\]")

    pa.type("/unmute")
    pa.send_keys("Enter")
    pa.wait_screen(r"-!- %s unmuted" % b)
    pa.wait_screen(lambda rows: "muted" not in rows[1], what="the title without muted")
    assert mutes(s, a) == []
    assert not pa.dead()
