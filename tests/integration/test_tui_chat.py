"""test_tui_chat.py - the terminal app (build/mqchat on a terminal) in a
real tmux: two people chat, history on open, the 80x24 layout, a line
half typed when a message comes, and the commands.

One broker + plugin + archiver for the module (tui_util.tui_stack); each
test has accounts of its own (alice<n>, bob<n>, carol<n>), so the tests do
not see each other's conversations. What is checked is what a person sees:
text on rows, per the screen contract in client/README.md.
"""
import re
import time

import harness
from tui_util import (BORDER, T, cells, left, mark_re, msg_re, right, start_app, top_bar,
                      tmux, tui_stack)  # noqa: F401 (fixtures)


def conv_rows(rows):
    """The conversation's message rows (2..LINES-4), right pane only."""
    return [right(r) for r in rows[2:len(rows) - 3]]


def test_two_people_chat_both_ways_with_history_and_marks(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    # Before either app runs: one message each way (the history).
    s.ok(b, "send", a, "from bob before the app")
    s.ok(a, "send", b, "from alice before the app")

    pa = start_app(tmux, s, a, "chat", b)
    # History shows on open, oldest first, with the server's time.
    rows = pa.wait_screen(msg_re(a, "from alice before the app"), what="the history")
    text = "\n".join(rows)
    assert text.index("from bob before the app") < text.index("from alice before the app")
    assert re.search(msg_re(b, "from bob before the app") + "$", text, re.M), text
    assert "\u2500\u2500 Today \u2500\u2500" in text.split("from bob before the app")[0], \
        "no day separator above today's first message"

    # The 80x24 layout.
    assert len(rows) == 24
    # the time at the right end (a margin of one cell or none)
    assert re.match(top_bar(a) + r"\s+\d\d:\d\d$", rows[0]) and cells(rows[0]) in (79, 80), rows[0]
    for i in range(1, 22):
        assert left(rows[i]) != "" or cells(rows[i]) > 18, "row %d has no list border: %r" % (i, rows[i])
        assert rows[i][:19].endswith(BORDER), "row %d: %r" % (i, rows[i])
    assert left(rows[1]).startswith(">") and b in left(rows[1]), rows[1]
    assert right(rows[1]).startswith("%s \u00b7 " % b) or right(rows[1]) == b, rows[1]
    assert rows[22].strip(), "the status row is empty"
    status = pa.styled()[22]
    assert status.startswith("\x1b[7m"), "the status row is not in reverse video: %r" % status
    assert rows[23] == "[%s]" % b
    assert pa.cursor() == (len("[%s] " % b), 23)

    # Alice writes while bob runs no app: the broker has it (one mark).
    pa.type("hi bob, from the app")
    pa.send_keys("Enter")
    pa.wait_screen(mark_re("hi bob, from the app", "\u2713"))
    assert pa.row(23) == "[%s]" % b

    # Bob starts with nothing open: his list shows alice with 2 unread.
    pb = start_app(tmux, s, b)
    rows = pb.wait_screen(lambda rows: re.search(r"%s\s+2$" % a, left(rows[1])),
                          what="%s with 2 unread in the list" % a)
    assert "no conversation open: /open NAME or /help" in right(rows[1])
    assert rows[23] == "[mqchat]"
    # His app got alice's message by sync: delivered (docs/PROTOCOL.md,
    # "Writing an app", step 10: "delivered when it arrives (live or by
    # sync)"). Checked at the end, so that the rest is seen too.
    late = []
    try:
        pa.wait_screen(mark_re("hi bob, from the app", "\u2713\u2713"),
                       what="\u2713\u2713 (delivered) once bob's app has the message by sync", timeout=T / 2)
    except AssertionError as e:
        late.append(str(e))

    # A message while bob's app runs but has nothing open: delivered, unread 3.
    pa.type("are you there?")
    pa.send_keys("Enter")
    pa.wait_screen(mark_re("are you there?", "\u2713\u2713"), what="\u2713\u2713 on a live message")
    pb.wait_screen(lambda rows: re.search(r"%s\s+3$" % a, left(rows[1])),
                   what="%s with 3 unread" % a)

    # Bob opens the conversation: he reads it, the count goes, alice sees it read.
    pb.type("/open %s" % a)
    pb.send_keys("Enter")
    rows = pb.wait_screen(msg_re(a, "are you there?"))
    pb.wait_screen(lambda rows: rows[23] == "[%s]" % a and re.match(r"^>.?%s\s*$" % a, left(rows[1])),
                   what="the conversation open, no unread count")
    assert right(rows[1]).startswith(a), rows[1]
    for body in ("hi bob, from the app", "are you there?"):
        pa.wait_screen(mark_re(body, "\u2714\u2714"), what="\u2714\u2714 (read) on %r" % body)

    # Bob answers; alice, who has the conversation open, reads it at once.
    pb.type("hello alice")
    pb.send_keys("Enter")
    pa.wait_screen(msg_re(b, "hello alice") + "$")
    pb.wait_screen(mark_re("hello alice", "\u2714\u2714"))
    # Alice's list has no unread count for the open conversation.
    assert re.match(r"^>.?%s\s*$" % b, left(pa.row(1))), pa.row(1)
    assert not late, late[0]


def test_a_message_arriving_leaves_a_half_typed_line_alone(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    pa = start_app(tmux, s, a, "chat", b)
    prompt = "[%s] " % b
    pa.type("a half typed line")
    pa.send_keys("Left", "Left", "Left", "Left")      # the cursor before "line"
    pa.wait_cursor(len(prompt + "a half typed "), 23)

    s.ok(b, "send", a, "arrives while alice types")
    s.ok(b, "send", a, "and another one")
    rows = pa.wait_screen(msg_re(b, "and another one"))
    assert re.search(msg_re(b, "arrives while alice types"), "\n".join(rows))
    assert rows[23] == prompt + "a half typed line"
    assert pa.cursor() == (len(prompt + "a half typed "), 23)

    # Typing goes on where the cursor was; Enter sends the whole line.
    pa.type("whole ")
    pa.wait_screen(lambda rows: rows[23] == prompt + "a half typed whole line", what="the edited line")
    pa.send_keys("Enter")
    pa.wait_screen(msg_re(a, "a half typed whole line"))
    pa.wait_screen(lambda rows: rows[23] == prompt.rstrip(), what="an empty input line")
    pa.wait_cursor(len(prompt), 23)
    harness.wait_for(lambda: "] %s: a half typed whole line" % a in s.run(b, "history", a).out,
                     T, interval=0.2, what="the whole line in the archive")


def test_open_of_an_unknown_account_says_so_at_once(tmux, tui_stack):
    s = tui_stack
    a, = s.people(1)
    pa = start_app(tmux, s, a)
    pa.type("/open nobody")
    t0 = time.monotonic()
    pa.send_keys("Enter")
    rows = pa.wait_screen(r"-!- no account\b.*\bnobody\b", timeout=T)
    assert time.monotonic() - t0 < 8, "not at once: after %.1fs" % (time.monotonic() - t0)
    assert rows[23] == "[mqchat]"


def test_room_create_and_tab_completion(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    room = "hikers" + a[len("alice"):]
    s.ok(b, "send", a, "hi, it's bob")          # so alice's app knows bob's name
    pa = start_app(tmux, s, a)
    pa.wait_screen(lambda rows: any(b in left(r) for r in rows[1:21]), what="%s in the list" % b)

    # Tab completes a command.
    pa.type("/sea")
    pa.send_keys("Tab")
    pa.wait_screen(lambda rows: rows[23].startswith("[mqchat] /search"), what="/sea completed to /search")
    pa.send_keys("C-u")
    pa.wait_screen(lambda rows: rows[23] == "[mqchat]", what="an empty line after Ctrl-U")

    pa.type("/room create %s" % room)
    pa.send_keys("Enter")
    pa.wait_screen(lambda rows: any(("#" + room) in left(r) for r in rows[1:21]) or
                   any(re.search(r"-!- .*#%s\b" % room, r) for r in rows),
                   what="#%s in the list or said created" % room)
    assert s.ok(a, "rooms").out.startswith(room), "the archiver has no room %s" % room

    # Tab completes a room's name, then a person's.
    pa.type("/open #%s" % room[:4])
    pa.send_keys("Tab")
    pa.wait_screen(lambda rows: re.match(r"^\[mqchat\] /open #%s ?$" % room, rows[23]),
                   what="/open #%s completed" % room[:4])
    pa.send_keys("Enter")
    rows = pa.wait_screen(lambda rows: rows[23] == "[#%s]" % room, what="the room open")
    assert right(rows[1]).startswith("#" + room), rows[1]
    pa.type("/room add %s" % b[:2])
    pa.send_keys("Tab")
    pa.wait_screen(lambda rows: re.match(r"^\[#%s\] /room add %s ?$" % (room, b), rows[23]),
                   what="/room add %s completed" % b[:2])
    pa.send_keys("Enter")
    pa.wait_screen(r"\d\d:\d\d -- %s added %s" % (a, b))
    pa.type("/room title Hiking club")
    pa.send_keys("Enter")
    pa.wait_screen(lambda rows: right(rows[1]) == "#%s \u00b7 Hiking club \u00b7 2 members" % room,
                   what="the title row '#%s \u00b7 Hiking club \u00b7 2 members'" % room)


def test_search_finds_a_message(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.ok(b, "send", a, "lunch at noon?")
    s.ok(b, "send", a, "something else")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, "something else"))
    pa.type("/search at noon")
    pa.send_keys("Enter")
    rows = pa.wait_screen(r"-!- .*lunch at noon\?")
    hits = [r for r in rows if "-!- " in r and "something else" in r]
    assert not hits, "a message without the text was found: %r" % hits


def test_edit_delete_and_reactions_show_as_they_are(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    id1 = s.ok(b, "send", a, "see you at 5").out.strip()
    id2 = s.ok(b, "send", a, "this one goes away").out.strip()
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, "this one goes away"))

    # Bob edits his first message and reacts to it, from his one-shot commands.
    s.ok(b, "edit", id1, "see you at 6")
    rows = pa.wait_screen(msg_re(b, "see you at 6 (edited)"))
    assert "see you at 5" not in "\n".join(rows)
    s.ok(b, "react", a, b, id1, "\U0001f44d")

    def reaction_under(who, emoji):
        def check(rows):
            for i, r in enumerate(rows[:-1]):
                if "see you at 6" in r:
                    return re.search("%s[^\n]*%s" % (emoji, who), right(rows[i + 1]))
            return False
        check.__name__ = "%s %s under the message" % (emoji, who)
        return check
    pa.wait_screen(reaction_under(b, "\U0001f44d"))

    # Alice selects it (Alt-Up: the newest, then the one before) and reacts.
    pa.send_keys("M-Up")
    pa.send_keys("M-Up")
    pa.type("/react \U0001f389")
    pa.send_keys("Enter")
    rows = pa.wait_screen(reaction_under(a, "\U0001f389"))
    assert "\U0001f44d" in "\n".join(rows), "bob's reaction went"
    harness.wait_for(lambda: "\U0001f389 %s" % a in s.run(b, "history", a).out, T, interval=0.2,
                     what="alice's reaction in the archive")

    # Bob deletes his second message.
    s.ok(b, "delete", id2)
    rows = pa.wait_screen(msg_re(b, "(message deleted)"))
    assert "this one goes away" not in "\n".join(rows)


def test_ctrl_n_and_ctrl_p_go_through_the_conversations(tmux, tui_stack):
    s = tui_stack
    a, b, c = s.people(3)
    said = {b: "from bob", c: "from carol"}
    s.ok(b, "send", a, said[b])
    s.ok(c, "send", a, said[c])
    pa = start_app(tmux, s, a)
    pa.wait_screen(lambda rows: b in left(rows[2]) and c in left(rows[1]),
                   what="carol, then bob in the list (latest first)")
    seen = []
    for key in ("C-n", "C-n", "C-p"):
        before = pa.row(23)
        pa.send_keys(key)
        rows = pa.wait_screen(lambda rows: rows[23] != before and rows[23] in ("[%s]" % b, "[%s]" % c),
                              what="another conversation open after %s" % key)
        name = rows[23][1:-1]
        other = b if name == c else c
        seen.append(name)
        rows = pa.wait_screen(msg_re(name, said[name]), what="%s's message" % name)
        assert not any(said[other] in right(r) for r in rows[2:21]), "the other conversation's message shows"
        row = rows[1 + [c, b].index(name)]          # the list: carol, then bob
        assert re.match(r"^>.?%s\b" % name, left(row)), "no > at %s in the list: %r" % (name, row)
    assert seen[0] != seen[1] and seen[2] == seen[0], seen


def test_page_up_scrolls_back_and_loads_older_history(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    n = 70
    s.ok(b, "send", "--lines", a, stdin="".join("line %02d\n" % i for i in range(1, n + 1)))
    pa = start_app(tmux, s, a, "chat", b)
    rows = pa.wait_screen(msg_re(b, "line %02d" % n))

    def numbers(rows):
        return [int(m.group(1)) for r in rows[2:21] for m in [re.search(r"line (\d\d)$", right(r))] if m]
    seen = set(numbers(rows))
    assert max(seen) == n
    for _ in range(12):
        if 1 in seen:
            break
        top = min(numbers(pa.screen()))
        pa.send_keys("PPage")
        rows = pa.wait_screen(lambda rows: numbers(rows) and min(numbers(rows)) < top,
                              what="older messages above line %02d after PgUp" % top)
        got = numbers(rows)
        assert got == sorted(got), "not in order: %r" % got
        assert max(got) >= top - 1, \
            "PgUp skipped messages: the page shows %r, the one before began at %d" % (got, top)
        seen |= set(got)
    assert seen == set(range(1, n + 1)), "never shown: %r" % sorted(set(range(1, n + 1)) - seen)
    # PgDn goes back down to the newest.
    for _ in range(12):
        if n in numbers(pa.screen()):
            break
        bottom = max(numbers(pa.screen()))
        pa.send_keys("NPage")
        pa.wait_screen(lambda rows: numbers(rows) and max(numbers(rows)) > bottom,
                       what="newer messages after PgDn")
    assert n in numbers(pa.screen())


def test_typing_a_reply_and_a_refused_text(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    pa = start_app(tmux, s, a, "chat", b)
    pb = start_app(tmux, s, b, "chat", a)

    # Bob types: alice sees it above her status row until he sends.
    pb.type("I am typing")
    pa.wait_screen(lambda rows: re.match(r"^%s is typing\u2026$" % b, right(rows[21])),
                   what="'%s is typing\u2026' on the row above the status row" % b)
    pb.send_keys("Enter")
    pa.wait_screen(msg_re(b, "I am typing"))
    pa.wait_screen(lambda rows: not right(rows[21]).strip(), what="the typing row cleared by the text")

    # Alice selects bob's text (Alt-Up: the newest) and replies to it.
    pa.send_keys("M-Up")
    pa.type("/reply a reply to you")
    pa.send_keys("Enter")

    def quoted(rows):
        for i in range(3, 21):
            if re.search(msg_re(a, "a reply to you"), rows[i]):
                return re.search(r"^\s+\u250c <?%s>? I am typing" % b, right(rows[i - 1]))
        return False
    quoted.__name__ = "the reply under a quote of bob's text"
    pb.wait_screen(quoted)
    pa.wait_screen(quoted)
    harness.wait_for(lambda: "in reply to %s: I am typing" % b in s.run(b, "history", a).out, T,
                     interval=0.2, what="the reply in the archive")

    # Bob blocks alice: her next text is refused and says why.
    s.ok(b, "block", a)
    harness.wait_for(lambda: s.run(a, "send", b, "probe").rc == 1, T, interval=0.3,
                     what="the plugin refusing alice's texts to bob")
    pa.type("are you blocking me?")
    pa.send_keys("Enter")
    pa.wait_screen(re.escape("are you blocking me?") + r"\s*\u2717 not sent: \S.*$",
                   what="the text marked \u2717 not sent, with the reason")


def test_a_room_marks_delivered_and_read_by_every_member(tmux, tui_stack):
    s = tui_stack
    a, b, c = s.people(3)
    room = "lab" + a[len("alice"):]
    for who in (b, c):
        s.store.set_privacy(who, room_adds="everyone")
    s.ok(a, "room", "create", room)
    s.ok(a, "room", "add", room, b, c)
    pb = start_app(tmux, s, b, "chat", "#" + room)      # reads it as it comes
    pc = start_app(tmux, s, c)                          # has it, does not look
    pa = start_app(tmux, s, a, "chat", "#" + room)
    rows = pa.wait_screen(r"\d\d:\d\d -- %s added %s" % (a, b), what="the membership events")
    assert re.match(r"^#%s\b" % room, right(rows[1])) and "3 members" in right(rows[1]), rows[1]
    assert rows[23] == "[#%s]" % room
    pc.wait_screen(lambda rows: any(("#" + room) in left(r) for r in rows[1:21]),
                   what="the room in carol's list")

    pa.type("hello room")
    pa.send_keys("Enter")
    pb.wait_screen(msg_re(a, "hello room"))
    pc.wait_screen(lambda rows: any(re.search(r"#%s\s+1$" % room, left(r)) for r in rows[1:21]),
                   what="#%s with 1 unread in carol's list" % room)
    # Bob read it, carol only has it: delivered to all, not read by all.
    pa.wait_screen(mark_re("hello room", "\u2713\u2713"), what="\u2713\u2713: every member got it")
    pc.type("/open #%s" % room)
    pc.send_keys("Enter")
    pc.wait_screen(msg_re(a, "hello room"))
    pa.wait_screen(mark_re("hello room", "\u2714\u2714"), what="\u2714\u2714: every member read it")


def test_presence_in_the_list_and_the_title(tmux, tui_stack):
    s = tui_stack
    a, b = s.pair()
    s.store.add_contact(b, a)               # bob shows alice his presence
    s.ok(b, "send", a, "I'll be around")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, "I'll be around"))
    pb = start_app(tmux, s, b)
    rows = pa.wait_screen(lambda rows: right(rows[1]) == "%s \u00b7 online" % b,
                          what="the title '%s \u00b7 online'" % b)
    assert re.match(r"^>\u25cf%s\b" % b, left(rows[1])), "no \u25cf at %s in the list: %r" % (b, rows[1])
    pb.send_keys("C-c")
    assert pb.wait_exit() == 0
    rows = pa.wait_screen(lambda rows: re.match(r"^%s \u00b7 last seen \d\d:\d\d$" % b, right(rows[1])),
                          what="the title '%s \u00b7 last seen HH:MM'" % b)
    assert re.match(r"^> %s\b" % b, left(rows[1])), "\u25cf still at %s: %r" % (b, rows[1])


def test_my_own_edit_delete_slash_text_and_msg(tmux, tui_stack):
    s = tui_stack
    a, b, c = s.people(3)
    pa = start_app(tmux, s, a, "chat", b)
    pa.type("my typo")
    pa.send_keys("Enter")
    pa.wait_screen(mark_re("my typo", "\u2713"))
    # /edit and /delete act on my newest text when nothing is selected.
    pa.type("/edit my fix")
    pa.send_keys("Enter")
    rows = pa.wait_screen(msg_re(a, "my fix (edited)"))
    assert "my typo" not in "\n".join(rows)
    harness.wait_for(lambda: "] %s: my fix  (edited)" % a in s.run(b, "history", a).out, T,
                     interval=0.2, what="the edit in the archive")
    pa.type("/delete")
    pa.send_keys("Enter")
    rows = pa.wait_screen(msg_re(a, "(message deleted)"))
    assert "my fix" not in "\n".join(rows)
    # A text that starts with / is written //.
    pa.type("//etc/hosts is a path")
    pa.send_keys("Enter")
    pa.wait_screen(msg_re(a, "/etc/hosts is a path"))
    harness.wait_for(lambda: "] %s: /etc/hosts is a path" % a in s.run(b, "history", a).out, T,
                     interval=0.2, what="the text with its / in the archive")
    # /msg sends to someone else.
    pa.type("/msg %s psst, carol" % c)
    pa.send_keys("Enter")
    harness.wait_for(lambda: "] %s: psst, carol" % a in s.run(c, "history", a).out, T,
                     interval=0.2, what="the /msg text at carol's")
    pa.wait_screen(lambda rows: any(c in left(r) for r in rows[1:21]), what="%s in the list" % c)


def test_every_command_answers_and_the_app_stays_responsive(tmux, tui_stack):
    """Each command says something (a -!- line, or a change on the screen)
    and the input line works right after it: none blocks the app."""
    s = tui_stack
    a, b = s.pair()
    room = "club" + a[len("alice"):]
    s.store.set_privacy(b, room_adds="everyone")
    s.ok(b, "send", a, "hi")
    pa = start_app(tmux, s, a, "chat", b)
    pa.wait_screen(msg_re(b, "hi"))
    commands = ["/help", "/who", "/whois %s" % b, "/profile", "/rooms", "/blocked", "/devices",
                "/block %s" % b, "/blocked", "/unblock %s" % b, "/search nothing like this",
                "/room create %s" % room, "/open #%s" % room, "/room add %s" % b, "/room info",
                "/room promote %s" % b, "/room demote %s" % b, "/room remove %s" % b,
                "/rooms", "/room delete %s" % room, "/open %s" % b, "/nick Ally", "/profile",
                "/react \U0001f44d", "/unreact \U0001f44d", "/bogus"]
    for i, cmd in enumerate(commands):
        before = pa.screen()
        pa.type(cmd)
        pa.send_keys("Enter")
        pa.wait_screen(lambda rows: rows[2:22] != before[2:22] or rows[1] != before[1],
                       what="an answer to %r" % cmd)
        marker = "still here %d" % i
        pa.type(marker)
        pa.wait_screen(lambda rows: rows[23].endswith(marker), timeout=T,
                       what="the input line working after %r" % cmd)
        pa.send_keys("C-u")
        pa.wait_screen(lambda rows: not rows[23].endswith(marker), what="an empty input line")
        assert not pa.dead(), "the app exited after %r" % cmd
    rows = pa.screen()
    assert re.search(r"-!- .*bogus", "\n".join(rows)), "no word about an unknown command"
