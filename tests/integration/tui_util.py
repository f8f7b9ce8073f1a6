"""tui_util.py - drive the terminal app (build/mqchat on a terminal) in a
real tmux, and read the screen the way a person sees it.

    from tui_util import msg_re, start_app, tmux, tui_stack  # noqa: F401 (fixtures)

    def test_x(tmux, tui_stack):
        alice, bob = tui_stack.pair()           # fresh accounts of this module's stack
        a = start_app(tmux, tui_stack, alice, "chat", bob)   # waits for "online"
        a.type("hello")
        a.send_keys("Enter")
        rows = a.wait_screen(msg_re(alice, "hello"))          # the screen, a list of rows

Each test gets its own tmux server (`tmux -L <unique socket> -f /dev/null`:
none of the user's configuration applies), with no status line, the pane
kept when its program exits (remain-on-exit, so the last screen and the
exit status stay readable) and no "Pane is dead" line written into it.
A person is a detached session of an exact size running one program, with
exactly the environment given (env -i). The server is killed at the end of
the test, pass or fail; on failure every pane's last screen is printed.

All waits are bounded polls of capture-pane; none sleeps a fixed time.
"""
import os
import re
import shutil
import signal
import subprocess
import time
import unicodedata

import pytest

import harness
from client_util import ARCHIVER_PASSWORD, PASSWORD, add_archiver_account, argv, client_env, mqchat

TMUX = shutil.which("tmux")
# Generous: the machine running the tests may be busy (2 cores, sanitizers).
T = 20.0


def terminfo_has(name):
    """True if the terminfo database has an entry for name."""
    for d in (os.path.expanduser("~/.terminfo"), "/etc/terminfo", "/lib/terminfo",
              "/usr/share/terminfo", "/usr/lib/terminfo"):
        if os.path.exists(os.path.join(d, name[0], name)) or \
                os.path.exists(os.path.join(d, "%02x" % ord(name[0]), name)):
            return True
    return False


# The terminal tmux emulates; the app reads its terminfo entry.
TERM = "tmux-256color" if terminfo_has("tmux-256color") else "xterm-256color"


def skip_reason():
    if not TMUX:
        return "tmux is not installed (scripts/deps.sh installs it)"
    return None


def cells(text):
    """Width of text in terminal cells (wide characters count 2, combining
    marks 0), as tmux lays it out."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch) or ch in "\u200b\u200d\ufe0f":
            continue
        n += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return n


def col(row, sub):
    """The cell column where sub starts in row, or -1."""
    i = row.find(sub)
    return -1 if i < 0 else cells(row[:i])


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state first,
    start time at [19]), or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def show(rows, title=""):
    """A screen framed for an error message: row numbers, the right edge."""
    out = ["---- %s ----" % title if title else "----"]
    out += ["%2d|%s|" % (i, r) for i, r in enumerate(rows)]
    return "\n".join(out)


class Tmux:
    """One private tmux server; start() makes a session per person."""

    def __init__(self, cwd=None):
        if skip_reason():
            pytest.skip(skip_reason())
        self.socket = "mqchat-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
        self.cwd = cwd or os.getcwd()
        self.panes = []
        # exit-empty off in the same command list as start-server, so the
        # server stays up with no session (until kill-server); the other
        # options then hold before any program runs.
        self.run("start-server", ";", "set", "-s", "exit-empty", "off")
        self.run("set", "-s", "escape-time", "10", ";",
                 "set", "-g", "default-terminal", TERM, ";",
                 "set", "-g", "status", "off", ";",
                 "set", "-g", "history-limit", "1000", ";",
                 "set", "-g", "remain-on-exit", "on")
        # tmux 3.3 writes "Pane is dead ..." into the pane at the bottom,
        # scrolling the screen by a row, unless this is empty (older tmux
        # has no such option, and writes nothing).
        self.run("set", "-g", "remain-on-exit-format", "", check=False)
        # tmux 3.3 leaves its socket behind after kill-server: kill() removes it.
        self.socket_path = self.run("display-message", "-p", "#{socket_path}").strip()

    def run(self, *args, check=True, timeout=10):
        """Run one tmux command on this server; its stdout."""
        env = dict(os.environ)
        env.pop("TMUX", None)
        p = subprocess.run([TMUX, "-u", "-L", self.socket, "-f", "/dev/null"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           cwd=self.cwd, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("tmux %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                           p.stderr.decode(errors="replace")))
        return p.stdout.decode("utf-8", errors="replace")

    def start(self, name, args, env, x=80, y=24, banner=None, lang="C.UTF-8"):
        """Run args in a new detached session `name` of x by y cells, with
        exactly the environment env, but TERM the terminal tmux emulates
        (not the caller's) and the locale LANG=lang (no LC_*). banner, if
        given, is printed on the terminal first (what the screen shows
        before the program starts, and again after it exits if it restores
        the terminal). Returns the Pane."""
        e = {k: v for k, v in env.items() if not k.startswith("LC_")}
        e["LANG"] = lang
        e["TERM"] = TERM
        for k in ("TMUX", "TMUX_PANE", "COLUMNS", "LINES"):
            e.pop(k, None)
        if harness.SAN:
            # Reports to files: a terminal shows them only until the next redraw.
            prefix = os.path.join(self.cwd, "san-%s" % name)
            e["ASAN_OPTIONS"] = "halt_on_error=1:detect_leaks=1:exitcode=%d:log_path=%s.asan" % (
                harness.SAN_EXITCODE, prefix)
            e["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=%d:log_path=%s.ubsan" % (
                harness.SAN_EXITCODE, prefix)
        cmd = ["/usr/bin/env", "-i"] + ["%s=%s" % kv for kv in sorted(e.items())]
        if banner is not None:
            cmd += ["/bin/sh", "-c", 'printf "%s\\n" "$0"; exec "$@"', banner]
        cmd += list(args)
        pane_id = self.run("new-session", "-d", "-s", name, "-x", str(x), "-y", str(y),
                           "-c", self.cwd, "-P", "-F", "#{pane_id}", *cmd).strip()
        p = Pane(self, name, pane_id)
        p.pid = int(p.fmt("#{pane_pid}"))
        p.started = proc_stat(p.pid)[19]       # start time: the pid is this program's
        self.panes.append(p)
        return p

    def dump(self):
        """Every pane's screen and state (for a failed test)."""
        out = []
        for p in self.panes:
            try:
                state = p.fmt("#{pane_width}x#{pane_height} dead=#{pane_dead} "
                              "status=#{pane_dead_status} signal=#{pane_dead_signal} "
                              "cursor=#{cursor_x},#{cursor_y} alternate=#{alternate_on}")
                out.append(show(p.screen(), "%s (%s): %s" % (p.name, p.id, state)))
            except Exception as ex:   # the server may be gone
                out.append("---- %s: %s" % (p.name, ex))
        return "\n".join(out)

    def san_reports(self):
        """Sanitizer reports the programs wrote (SAN=1), as one text, or ""."""
        out = []
        for n in sorted(os.listdir(self.cwd)):
            if n.startswith("san-") and (".asan." in n or ".ubsan." in n):
                with open(os.path.join(self.cwd, n), errors="replace") as f:
                    out.append("---- %s ----\n%s" % (n, f.read()))
        return "\n".join(out)

    def running(self):
        """The panes whose program still runs (not exited, not a zombie)."""
        out = []
        for p in self.panes:
            st = proc_stat(p.pid) if p.pid else None
            if st and st[19] == p.started and st[0] != "Z":
                out.append(p)
        return out

    def stop_programs(self, timeout=5):
        """After kill(): wait until every program it ran has exited (the
        terminal hung up: SIGHUP), so a sanitizer has written its report.
        Any still running then is killed (SIGKILL, by its pid); returns
        their names."""
        try:
            harness.wait_for(lambda: not self.running(), timeout, interval=0.05,
                             what="the programs to exit")
            return []
        except AssertionError:
            pass
        stuck = self.running()
        for p in stuck:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return [p.name for p in stuck]

    def kill(self):
        """Kill this server (its programs get SIGHUP) and remove its socket;
        only ours."""
        try:
            self.run("kill-server", check=False)
        except (OSError, subprocess.SubprocessError):
            pass
        if getattr(self, "socket_path", None):
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass


class Pane:
    """One person's terminal: a session with a single pane."""

    def __init__(self, tmux, name, pane_id):
        self.tmux = tmux
        self.name = name
        self.id = pane_id
        self.last = []
        self.pid = None
        self.started = None

    def fmt(self, f):
        """A tmux format about this pane (display-message -p)."""
        return self.tmux.run("display-message", "-p", "-t", self.id, f).rstrip("\n")

    def send_keys(self, *keys):
        """Keys by tmux's names: "Enter", "C-c", "Tab", "Up", "M-Up", "BSpace"..."""
        self.tmux.run("send-keys", "-t", self.id, *keys)

    def type(self, text):
        """Literal text, as typed (send-keys -l)."""
        self.tmux.run("send-keys", "-t", self.id, "-l", "--", text)

    def size(self):
        w, h = self.fmt("#{pane_width} #{pane_height}").split()
        return int(w), int(h)

    def screen(self):
        """The visible rows, top to bottom, without trailing spaces (no -J:
        a wrapped line stays two rows)."""
        # capture-pane prints one line per row of the pane, each ended by
        # a newline: exactly the pane's height.
        rows = self.tmux.run("capture-pane", "-p", "-t", self.id).split("\n")
        if rows and rows[-1] == "":
            rows.pop()
        self.last = rows
        return rows

    def styled(self):
        """The visible rows with their SGR escapes (capture-pane -e)."""
        rows = self.tmux.run("capture-pane", "-p", "-e", "-t", self.id).split("\n")
        if rows and rows[-1] == "":
            rows.pop()
        return rows

    def row(self, n):
        """Row n of the screen (negative: from the bottom)."""
        return self.screen()[n]

    def cursor(self):
        """(x, y) of the cursor, in cells."""
        x, y = self.fmt("#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def dead(self):
        return self.fmt("#{pane_dead}") == "1"

    def alternate_on(self):
        return self.fmt("#{alternate_on}") == "1"

    def wait_screen(self, want, timeout=T, what=None):
        """Poll the screen until want holds and return it. want is a regex
        (searched in the rows joined by newlines) or a function of the list
        of rows. On timeout, fail with the last screen."""
        if isinstance(want, str):
            rx = re.compile(want, re.M)
            test = lambda rows: rx.search("\n".join(rows))  # noqa: E731
            what = what or "/%s/" % want
        else:
            test = want
            what = what or getattr(want, "__name__", "condition")
        deadline = time.monotonic() + timeout
        while True:
            rows = self.screen()
            if test(rows):
                return rows
            if time.monotonic() >= deadline:
                dead = ""
                if self.dead():
                    dead = " (the program exited with status %s)" % self.exit_status()
                raise AssertionError("%s: no %s within %.1fs%s\n%s" % (
                    self.name, what, timeout, dead, show(rows, self.name)))
            time.sleep(0.05)

    def wait_check(self, check, timeout=T, what="a correct screen"):
        """Poll until check(rows) returns no problems (a list of strings
        saying what is wrong) and return the rows; on timeout, fail with the
        last problems and screen."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.screen()
            problems = check(rows)
            if not problems:
                return rows
            if time.monotonic() >= deadline:
                raise AssertionError("%s: no %s within %.1fs:\n  %s\n%s" % (
                    self.name, what, timeout, "\n  ".join(problems), show(rows, self.name)))
            time.sleep(0.05)

    def wait_gone(self, regex, timeout=T):
        """Until regex no longer matches the screen."""
        rx = re.compile(regex, re.M)
        return self.wait_screen(lambda rows: not rx.search("\n".join(rows)), timeout,
                                what="screen without /%s/" % regex)

    def wait_cursor(self, x, y, timeout=T):
        deadline = time.monotonic() + timeout
        while True:
            c = self.cursor()
            if c == (x, y):
                return c
            if time.monotonic() >= deadline:
                raise AssertionError("%s: cursor at %s, not (%d, %d), after %.1fs\n%s" % (
                    self.name, c, x, y, timeout, show(self.screen(), self.name)))
            time.sleep(0.05)

    def resize(self, x, y, timeout=T):
        """Resize the window (and its one pane) to x by y cells."""
        self.tmux.run("resize-window", "-t", self.id, "-x", str(x), "-y", str(y))
        harness.wait_for(lambda: self.size() == (x, y), timeout, interval=0.05,
                         what="%s's pane to be %dx%d" % (self.name, x, y))

    def exit_status(self):
        """The program's exit status (-N: killed by signal N), or None while
        it runs. tmux 3.3 sometimes leaves an exited program unreaped (a
        zombie, pane_dead=1 with no status, seen about one time in three
        here): then its status is read where the kernel keeps it, field 52
        (exit_code, as waitpid reports it) of /proc/<pid>/stat."""
        dead, status, sig, pid = self.fmt(
            "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pane_pid}").split("|")
        if dead != "1":
            return None
        if status or sig:
            return int(status) if status else -int(sig)
        fields = proc_stat(int(pid))
        if fields is None:
            return None          # reaped meanwhile: tmux has the status now
        if fields[0] != "Z" or len(fields) < 50:
            return None
        code = int(fields[49])
        return -(code & 0x7f) if code & 0x7f else (code >> 8) & 0xff

    def wait_exit(self, timeout=T):
        """Until the program has exited; its exit status, or -N if signal N
        killed it (as subprocess says it)."""
        deadline = time.monotonic() + timeout
        while True:
            # The pane is dead at EOF on its terminal, which may come before
            # tmux has reaped the program: wait for the status too.
            st = self.exit_status()
            if st is not None:
                if harness.SAN and st == harness.SAN_EXITCODE:
                    raise AssertionError("%s: exit %d, a sanitizer report:\n%s" % (
                        self.name, st, self.tmux.san_reports() or "\n".join(self.screen())))
                return st
            if time.monotonic() >= deadline:
                raise AssertionError("%s: still running after %.1fs (pane_dead=%s)\n%s" % (
                    self.name, timeout, self.fmt("#{pane_dead}"), show(self.screen(), self.name)))
            time.sleep(0.05)


@pytest.fixture
def tmux(request, tmp_path):
    """A private tmux server for one test, killed at its end; on failure the
    screens of all its panes are printed. A program that does not exit when
    its terminal goes away (SIGHUP from kill-server) fails the test, and is
    killed; under SAN=1 so does a sanitizer report."""
    t = Tmux(cwd=str(tmp_path))
    try:
        yield t
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(t.dump())
        t.kill()
        stuck = t.stop_programs()
    if stuck:
        pytest.fail("still running when their terminal went away (SIGHUP), killed: %s" % ", ".join(stuck),
                    pytrace=False)
    if harness.SAN:
        reports = t.san_reports()
        if reports:
            pytest.fail("sanitizer reports from the programs in tmux:\n" + reports, pytrace=False)


# ---- the app's screen (the contract in client/README.md) --------------------

LIST_W = 18          # the conversation list's width; its border is in column 18
BORDER = "\u2502"    # │


def split(row):
    """(list part, conversation part) of a row: the left pane and the right
    one when the row has the border in column 18, else ("", row)."""
    n = 0
    for i, ch in enumerate(row):
        if n == LIST_W:
            return (row[:i], row[i + 1:]) if ch == BORDER else ("", row)
        if n > LIST_W:
            break
        n += cells(ch)
    return "", row


def left(row):
    return split(row)[0]


def right(row):
    return split(row)[1]


def top_bar(me, state="online"):
    """Regex of row 0: ' mqchat · <me> · <state>' ... 'HH:MM' at the end."""
    return r"^ mqchat \u00b7 %s \u00b7 %s" % (re.escape(me), state)


def start_app(tmux, stack, user, *args, name=None, x=80, y=24, banner=None, state="online"):
    """Start build/mqchat ARGS as user on a terminal of x by y cells and
    wait until its top bar says state (None: do not wait). The Pane."""
    p = tmux.start(name or user, stack.argv(user, *args), stack.env(user), x=x, y=y,
                   banner=banner)
    if state:
        p.wait_screen(top_bar(user, state), what="the top bar '%s · %s'" % (user, state))
    return p


def msg_re(name, body):
    """Regex of a text's row: 'HH:MM <name> body' (the name bare or in angle
    brackets: the contract leaves it open)."""
    return r"\d\d:\d\d <?%s>? %s" % (re.escape(name), re.escape(body))


def mark_re(body, mark):
    """A row that ends with my text body and then exactly mark."""
    return re.escape(body) + r"\s*" + re.escape(mark) + "$"


# ---- a broker + plugin + archiver for a test module -------------------------

class Stack:
    """A real broker with the plugin and the archiver in one data folder,
    with pairs of fresh accounts so the tests of a module do not see each
    other's conversations."""

    def __init__(self, pairs=10):
        self.datadir = harness.make_datadir()
        self.store = harness.Store(os.path.join(self.datadir, "auth.db"))
        self.n = 0
        self.made = pairs
        for i in range(1, pairs + 1):
            for p in ("alice", "bob", "carol"):
                self.store.add_user("%s%d" % (p, i), PASSWORD)
        add_archiver_account(self.store)
        self.broker = harness.Broker(self.datadir)
        self.arch = None

    def start(self):
        self.broker.start()
        pwfile = os.path.join(self.datadir, "archiver.pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ARCHIVER_PASSWORD + "\n")
        self.arch = harness.Proc([harness.ARCHIVER, "--data", self.datadir, "run",
                                  "--host", "127.0.0.1", "--port", str(self.broker.port),
                                  "--password-file", pwfile],
                                 os.path.join(self.datadir, "archiver.log"))
        self.wait_archiver("alice1")
        return self

    def wait_archiver(self, user):
        """Until an RPC of user is answered (the whole path works)."""
        def answered():
            if self.arch.proc.poll() is not None:
                raise AssertionError("archiver exited:\n" + self.arch.output())
            return self.run(user, "blocked", timeout=1).rc == 0
        harness.wait_for(answered, T, interval=0.1, what="the archiver to answer RPC")

    def pair(self):
        """Two fresh accounts (alice<n>, bob<n>) nobody has used yet."""
        return self.people(2)

    def people(self, k):
        """k fresh accounts of one set (alice<n>, bob<n>, carol<n>)."""
        self.n += 1
        if self.n > self.made:
            for p in ("alice", "bob", "carol"):
                name = "%s%d" % (p, self.n)
                self.store.add_user(name, PASSWORD)
                harness.wait_for(lambda: self.run(name, "blocked", timeout=2).rc == 0, T,
                                 interval=0.2, what="the plugin to let %s in" % name)
        return tuple("%s%d" % (p, self.n) for p in ("alice", "bob", "carol")[:k])

    def home(self, user):
        return os.path.join(self.datadir, "people", user)

    def env(self, user, extra=None):
        """The app's environment: the password in MQCHAT_PASSWORD, a home,
        config and state folder of its own."""
        d = self.home(user)
        os.makedirs(d, exist_ok=True)
        return client_env(d, PASSWORD, extra)

    def argv(self, user, *args, device="tui"):
        """The app's command line: build/mqchat --host --port --user --device ARGS."""
        return argv(self.broker, user, *args, device=device)

    def run(self, user, *args, **kw):
        """A one-shot command as user (client_util.mqchat): a Result."""
        return mqchat(self.broker, self.home(user), user, *args, **kw)

    def ok(self, user, *args, **kw):
        r = self.run(user, *args, **kw)
        assert r.rc == 0, r
        return r

    def stop(self, failed=False):
        logs = ""
        try:
            if self.arch:
                self.arch.stop()
        finally:
            self.broker.stop()
        if failed:
            logs = "---- archiver log ----\n%s\n---- broker log ----\n%s" % (
                self.arch.output()[-6000:] if self.arch else "", self.broker.output()[-6000:])
        shutil.rmtree(self.datadir, ignore_errors=True)
        return logs


@pytest.fixture(scope="module")
def tui_stack(request):
    """One broker + plugin + archiver for the module."""
    if skip_reason():
        pytest.skip(skip_reason())
    yield from harness.serve_stack(request, Stack())
