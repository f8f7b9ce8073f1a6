"""test_tui_screen.py - the terminal app's screen as a whole: a resize
redraws every part at the new size with nothing left over, and every way
out (/quit, Ctrl-C, Ctrl-D) exits 0 and gives the terminal back as it was.

One broker + plugin + archiver for the module (tui_util.tui_stack).
"""
import re

from tui_util import (BORDER, cells, left, msg_re, right, start_app, top_bar,
                      tmux, tui_stack)  # noqa: F401 (fixtures)

LONG = ("the last message, long enough to wrap on a narrow terminal: "
        "one two three four five six seven eight")


OLDER = "an older message"


def words(text):
    return " ".join(text.split())


def norm(text, name):
    """text with its words separated by one space, times as 12:00 and
    name without angle brackets."""
    text = re.sub(r"\b\d\d:\d\d\b", "12:00", text)
    return words(text.replace("<%s>" % name, name))


def layout_problems(rows, w, h, me, peer, typed):
    """What is wrong with the screen of me's app (conversation with peer open,
    typed half typed, LONG the last message) at w x h; [] if nothing."""
    bad = []
    if len(rows) != h:
        return ["%d rows, not %d" % (len(rows), h)]
    if not re.match(top_bar(me) + r"\s+\d\d:\d\d$", rows[0]) or cells(rows[0]) not in (w - 1, w):
        bad.append("row 0 is not the top bar with the time at the right end: %r" % rows[0])
    prompt = "[%s] " % peer
    if rows[h - 1] != prompt + typed:
        bad.append("the input line is %r, not %r" % (rows[h - 1], prompt + typed))
    wide = w >= 60
    for i in range(1, h - 2):
        has = rows[i][:19].endswith(BORDER) and cells(rows[i][:18]) == 18
        if wide and not has:
            bad.append("row %d has no list border in column 18: %r" % (i, rows[i]))
    if not wide and any(BORDER in r for r in rows):
        bad.append("a list border at %d columns (the list shows from 60)" % w)
    if wide and peer not in left(rows[1]):
        bad.append("%s is not in the list: %r" % (peer, rows[1]))
    if not right(rows[1]).startswith(peer):
        bad.append("row 1 is not the title %r: %r" % (peer, rows[1]))
    if right(rows[h - 3]).strip():
        bad.append("the typing row is not blank: %r" % rows[h - 3])
    if not rows[h - 2].strip():
        bad.append("the status row is empty")
    # Messages: rows 2..h-4, the last one LONG, word-wrapped, shown once.
    body = [right(r) for r in rows[2:h - 3]]
    text = "\n".join(body)
    m = re.search(msg_re(peer, LONG.split()[0]), text)
    if not m:
        bad.append("the last message does not start on a row of its own")
    else:
        start = text.count("\n", 0, m.start())
        tail = [r for r in body[start:] if r.strip()]
        if words(" ".join(tail)).split(" ", 2)[-1] != words(LONG):
            bad.append("the message rows from its start to the bottom are not the message: %r" % tail)
        if any(cells(r) > (w - 19 if wide else w) for r in tail):
            bad.append("a message row is wider than its pane")
    # Nothing else in the message area (no leftovers of an earlier frame):
    # its rows, top to bottom, are the end of what the conversation holds,
    # with no gap before the bottom.
    shown = [r for r in body if r.strip()]
    if shown and any(not r.strip() for r in body[body.index(shown[0]):]):
        bad.append("a blank row between messages: the messages are not at the bottom")
    held = norm("\u2500\u2500 Today \u2500\u2500 12:00 <%s> %s 12:00 <%s> %s" % (
        peer, OLDER, peer, LONG), peer)
    if not held.endswith(norm(" ".join(shown), peer)):
        bad.append("the message area shows something else than the conversation's end: %r" % shown)
    for frag in (" mqchat \u00b7 ", prompt.strip()):
        n = sum(r.count(frag) for r in rows)
        if n != 1:
            bad.append("%r shows %d times" % (frag, n))
    if sum(r.count("eight") for r in rows) != 1:
        bad.append("the message's last word shows more than once (a leftover?)")
    return bad


def test_resize_redraws_every_part(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, OLDER)
    s.ok(b, "send", a, LONG)
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, OLDER))
    typed = "half typed"
    pa.type(typed)
    for w, h in ((80, 24), (60, 20), (100, 30), (40, 12), (40, 10), (80, 24)):
        if (w, h) != pa.size():
            pa.resize(w, h)
        pa.wait_check(lambda rows: layout_problems(rows, w, h, a, b, typed),
                      what="screen at %dx%d" % (w, h))
        pa.wait_cursor(cells("[%s] %s" % (b, typed)), h - 1)
    # Still working: the half typed line is sent whole.
    pa.type(" and sent")
    pa.send_keys("Enter")
    pa.wait_screen(msg_re(a, "half typed and sent"))


def exits_clean(tmux, s, user, name, keys):
    banner = "$ mqchat   (the terminal before the app: %s)" % name
    p = start_app(tmux, s, user, name=name, banner=banner)
    assert p.alternate_on(), "the app does not use the alternate screen"
    for k in keys:
        if k.startswith("/"):
            p.type(k)
        else:
            p.send_keys(k)
    st = p.wait_exit()
    rows = p.screen()
    assert st == 0, "exit status %s after %s" % (st, name)
    assert not p.alternate_on(), "the alternate screen is still on after %s" % name
    assert rows[0] == banner, rows
    assert not any(" mqchat \u00b7 " in r or BORDER in r or r.startswith("[mqchat]") for r in rows), \
        "the app's frame is left on the terminal after %s:\n%s" % (name, "\n".join(rows))


def test_quit_ctrl_c_and_ctrl_d_leave_the_terminal_as_it_was(tmux, tui_stack):
    s = tui_stack
    a, = s.people(1)
    exits_clean(tmux, s, a, "quit", ["/quit", "Enter"])
    exits_clean(tmux, s, a, "ctrl-c", ["C-c"])
    exits_clean(tmux, s, a, "ctrl-d", ["C-d"])
    # Ctrl-C with a line typed exits too; Ctrl-D then deletes, it does not exit.
    p = start_app(tmux, s, a, name="ctrl-d-typed")
    p.type("some text")
    p.send_keys("Home", "C-d")
    p.wait_screen(lambda rows: rows[-1] == "[mqchat] ome text", what="Ctrl-D deleting a character")
    p.send_keys("C-c")
    assert p.wait_exit() == 0
    assert not p.alternate_on()


def test_input_line_keys(tmux, tui_stack):
    s = tui_stack
    a, = s.people(1)
    p = start_app(tmux, s, a)
    P = len("[mqchat] ")

    def line(text, x):
        p.wait_screen(lambda rows: rows[-1] == ("[mqchat] " + text).rstrip(),
                      what="the input line %r" % text)
        p.wait_cursor(P + x, 23)

    p.type("one two three")
    line("one two three", 13)
    for keys, x in ((["Home"], 0), (["End"], 13), (["C-a"], 0), (["C-e"], 13), (["Left"], 12),
                    (["Right"], 13), (["C-b"], 12), (["C-f"], 13), (["M-b"], 8), (["M-b"], 4),
                    (["M-f"], 7)):
        p.send_keys(*keys)
        p.wait_cursor(P + x, 23)
    p.send_keys("C-k")
    line("one two", 7)
    p.send_keys("C-w")
    line("one ", 4)
    # A base character and its combining mark edit as one; a wide one is 2 cells.
    p.type("cafe\u0301 \u65e5\u672c")
    line("one cafe\u0301 \u65e5\u672c", 4 + 5 + 4)
    p.send_keys("Left")
    line("one cafe\u0301 \u65e5\u672c", 4 + 5 + 2)
    p.send_keys("End", "BSpace", "BSpace", "BSpace", "BSpace")   # 本, 日, the space, e + its accent
    line("one caf", 7)
    p.send_keys("C-a", "DC")
    line("ne caf", 0)
    p.send_keys("C-e", "C-u")
    line("", 0)

    # Up/Down recall the lines typed, and come back to the one being typed.
    for cmd in ("/help", "/blocked"):
        p.type(cmd)
        p.send_keys("Enter")
        line("", 0)
    p.type("draft")
    p.send_keys("Up")
    line("/blocked", 8)
    p.send_keys("Up")
    line("/help", 5)
    p.send_keys("Down")
    line("/blocked", 8)
    p.send_keys("Down")
    line("draft", 5)


def test_without_a_utf8_locale_the_screen_is_ascii(tmux, tui_stack):
    """client/README.md: without a UTF-8 locale the marks are drawn in ASCII;
    nothing else on the screen may need one either."""
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "plain words")
    p = tmux.start(a, s.argv(a, "chat", b), s.env(a), lang="C")
    # The words of the contract, ASCII between them (the app draws ' - ').
    rows = p.wait_screen(r"^ mqchat [!-~] %s [!-~] online\s+\d\d:\d\d$" % a, what="an ASCII top bar")
    p.wait_screen(msg_re(b, "plain words"))
    p.type("hello")
    p.send_keys("Enter")
    rows = p.wait_screen(msg_re(a, "hello") + r"\s*[!-~]+$", what="my text with an ASCII mark")
    bad = [(i, r) for i, r in enumerate(rows) if any(ord(ch) > 0x7e for ch in r)]
    assert not bad, "characters outside ASCII without a UTF-8 locale: %r" % bad
    border = {r[18:19] for r in rows[1:21]}
    assert len(border) == 1 and border != {" "} and border != {""}, "no list border in column 18: %r" % border


def test_escape_drops_the_selection_and_ctrl_l_redraws(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "the older one")
    s.ok(b, "send", a, "the newest one")
    p = start_app(tmux, s, a, "chat", b)
    p.wait_screen(msg_re(b, "the newest one"))
    # The messages with their colours and attributes (not the clock's row).
    plain = p.styled()[2:21]
    # Alt-Up twice: the older message is selected (drawn otherwise).
    p.send_keys("M-Up")
    p.wait_screen(lambda rows: p.styled()[2:21] != plain, what="a message drawn as selected")
    p.send_keys("M-Up")
    p.send_keys("Escape")
    p.wait_screen(lambda rows: p.styled()[2:21] == plain,
                  what="the messages drawn as before the selection, after Esc")
    # With nothing selected, /react goes to the newest message.
    p.type("/react \U0001f44d")
    p.send_keys("Enter")

    def under(body):
        def check(rows):
            for i, r in enumerate(rows[:-1]):
                if r.endswith(body):
                    return "\U0001f44d" in rows[i + 1]
            return False
        return check
    rows = p.wait_screen(under("the newest one"), what="the reaction under the newest message")
    assert not under("the older one")(rows), "the reaction went to the message Esc unselected"

    # Something else writes on the terminal; Ctrl-L draws the app again.
    with open(p.fmt("#{pane_tty}"), "w") as tty:
        tty.write("\x1b[5;30HSCRIBBLE FROM ELSEWHERE")
    p.wait_screen("SCRIBBLE FROM ELSEWHERE")
    p.send_keys("C-l")
    p.wait_gone("SCRIBBLE")
    p.wait_screen(msg_re(b, "the newest one"))
    assert p.row(0).startswith(" mqchat \u00b7 ")


def test_narrow_the_status_row_counts_the_unread_of_the_others(tmux, tui_stack):
    """client/README.md: the list hides below 60 columns, and the status row
    then counts the unread (of the conversations not open)."""
    s = tui_stack
    a, b, c = s.people(3)
    s.ok(b, "send", a, "hi from bob")
    p = start_app(tmux, s, a, "chat", b, x=40, y=12)
    p.wait_screen(msg_re(b, "hi from bob"))
    s.ok(c, "send", a, "hi from carol")
    s.ok(c, "send", a, "again from carol")
    p.wait_screen(lambda rows: re.search(r"\b2 unread\b", rows[10]),
                  what="'2 unread' on the status row at 40 columns")
    assert not any(BORDER in r for r in p.screen())
    p.resize(80, 24)
    rows = p.wait_screen(lambda rows: any(re.search(r"%s\s+2$" % c, left(r)) for r in rows[1:21]),
                         what="carol with 2 unread in the list at 80 columns")
    assert "unread" not in rows[22], "the list shows the counts: the status row need not"
