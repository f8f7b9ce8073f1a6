"""test_tui_driver.py - the tmux driver of the terminal app's tests
(tui_util.py), proven on plain programs: if these fail, a failing
test_tui_* says nothing about the app."""
import os

from tui_util import TERM, cells, col, split, tmux  # noqa: F401 (fixture)

SH = "/bin/sh"


def env():
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
            "SECRET_OF_THE_CALLER": "must not leak"}


def test_screen_keys_cursor_and_exit_status(tmux):
    # The program sees exactly the environment given, a UTF-8 locale and TERM.
    p = tmux.start("one", [SH, "-c", 'printf "%s|%s|%s|\\n" "$LANG" "$TERM" "$SECRET_OF_THE_CALLER";'
                                     'printf "wide: \\360\\237\\221\\215 \\342\\234\\224\\342\\234\\224 end\\n";'
                                     'printf "> "; read line; printf "got [%s]\\n" "$line"; exit 7'],
                   dict({k: v for k, v in env().items() if k != "SECRET_OF_THE_CALLER"},
                        TERM="vt52", LC_ALL="C"))
    rows = p.wait_screen(r"^>$")   # capture-pane drops trailing spaces
    assert rows[0] == "C.UTF-8|%s||" % TERM
    assert rows[1] == "wide: \U0001f44d \u2714\u2714 end"
    assert col(rows[1], "end") == len("wide: ") + 2 + 1 + 2 + 1
    assert p.size() == (80, 24) and len(rows) == 24
    assert p.cursor() == (2, 2)
    p.type("-half typed; \"quoted\" $HOME")
    p.wait_cursor(2 + len("-half typed; \"quoted\" $HOME"), 2)
    p.send_keys("Enter")
    assert p.wait_exit() == 7
    rows = p.wait_screen(r"got \[")
    assert rows[3] == "got [-half typed; \"quoted\" $HOME]"
    # the dead pane shows the program's last screen and nothing of tmux's
    assert all(r == "" for r in rows[4:]), rows


def test_resize_and_alternate_screen(tmux):
    # tput smcup/rmcup as a full-screen program does: after it, the
    # terminal shows what it showed before.
    script = ('tput smcup; clear; printf "APP FRAME\\n"; stty size;'
              'trap \'printf "resized "; stty size\' WINCH;'
              'until read line; do :; done; tput rmcup; exit 0')
    p = tmux.start("two", [SH, "-c", script], env(), banner="before the app")
    p.wait_screen(r"^24 80$")
    assert p.alternate_on()
    p.resize(60, 20)
    p.wait_screen(r"resized 20 60")
    p.resize(40, 12)
    p.wait_screen(r"resized 12 40")
    assert p.size() == (40, 12) and len(p.screen()) == 12
    p.send_keys("Enter")
    assert p.wait_exit() == 0
    assert not p.alternate_on()
    rows = p.screen()
    assert rows[0] == "before the app"
    assert "APP FRAME" not in "\n".join(rows)


def test_ctrl_c_and_cells(tmux):
    p = tmux.start("three", [SH, "-c", 'printf "ready\\n"; sleep 30'], env())
    p.wait_screen("ready")
    p.send_keys("C-c")
    assert p.wait_exit() == -2     # killed by SIGINT
    assert cells("a\u2714\U0001f44d\u00e9") == 1 + 1 + 2 + 1
    entry = ">\u25cfbob            2"          # 18 cells, then the border
    assert split(entry + "\u2502bob \u00b7 online") == (entry, "bob \u00b7 online")
    assert split("\u2502 not in column 18") == ("", "\u2502 not in column 18")
