"""test_client_tty.py - the client on a terminal: the password prompt
(on /dev/tty, without echo), and `chat` on a terminal opening the app."""
import os
import pty
import select
import signal
import time

import harness
from client_util import Listener, archivers, argv, client_env, ok, texts, users  # noqa: F401


class Tty:
    """A client whose controlling terminal is a pseudo-terminal."""

    def __init__(self, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                      # child
            try:
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        self.buf = b""
        self.status = None

    def read_until(self, text, timeout=harness.DEFAULT_TIMEOUT):
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal within %.1fs; got %r" % (
                    text, timeout, self.buf))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError("terminal closed before %r; got %r" % (text, self.buf))
                self.buf += data
        return self.buf.decode(errors="replace")

    def write(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=harness.DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                self._drain()
                break
            if time.monotonic() > deadline:
                raise AssertionError("client still running; terminal: %r" % self.buf)
            # drain output so the child never blocks on a full terminal
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:
                    pass
        return self.status

    def _drain(self):
        """Read what the exited child left on the terminal."""
        while True:
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if not r:
                return
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.buf += data

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        os.close(self.fd)


def test_password_prompt_without_echo(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        t = Tty(argv(b, "alice", "send", "bob", "typed password"),
                client_env(datadir, password=None))
        try:
            t.read_until("Password for alice: ")
            t.write("password-xxxx\n")
            assert t.wait() == 0
            assert "password-xxxx" not in t.buf.decode(), "the password was echoed"
        finally:
            t.close()
        bob.wait_texts(1)
        assert texts(bob.lines()) == [(None, "alice", "typed password")]

        t = Tty(argv(b, "alice", "send", "bob", "x"), client_env(datadir, password=None))
        try:
            t.read_until("Password for alice: ")
            t.write("wrong-password\n")
            assert t.wait() == 3
            assert "Error: login as alice refused: wrong user name or password" in t.buf.decode()
        finally:
            t.close()


def test_password_prompt_refuses_a_line_too_long(store, make_broker, datadir):
    """The prompt (common/prompt.h) reads at most 1023 bytes: a longer line
    is refused in one line, not cut into a password nobody typed."""
    users(store, "alice")
    b = make_broker()
    t = Tty(argv(b, "alice", "send", "alice", "x"), client_env(datadir, password=None))
    try:
        t.read_until("Password for alice: ")
        t.write("p" * 1100 + "\n")
        assert t.wait() == 2
        screen = t.buf.decode()
        assert screen.count("Error: ") == 1, screen
        assert "Error: password too long (at most 1023 bytes)" in screen
        assert "p" * 40 not in screen, "the password was echoed"
    finally:
        t.close()


def test_chat_on_a_terminal_is_the_app(store, make_broker, datadir):
    """`chat bob` on a terminal opens the full-screen app (tests/integration/
    test_tui_*.py drive it in tmux): it takes the alternate screen, sends what
    is typed, and /quit gives the terminal back as it was."""
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        env = client_env(datadir, extra={"TERM": "xterm-256color", "LANG": "C.UTF-8"})
        t = Tty(argv(b, "alice", "chat", "bob"), env)
        try:
            t.read_until("\x1b[?1049h")           # the alternate screen: the app is up
            t.write("hello from a terminal\r")
            bob.wait_texts(1)
            assert texts(bob.lines()) == [(None, "alice", "hello from a terminal")]
            t.write("/quit\r")
            assert t.wait() == 0
            assert t.buf.rfind(b"\x1b[?1049l") > t.buf.rfind(b"\x1b[?1049h"), \
                "the terminal was not given back"
        finally:
            t.close()


def test_passwd_and_register_prompts(store, make_broker, datadir, archivers):
    from client_util import add_archiver_account, mqchat
    users(store, "alice")
    add_archiver_account(store)
    b = make_broker(registration="open")
    archivers(datadir, store, b, "alice", extra=["--registration", "open"])

    t = Tty(argv(b, "alice", "passwd"), client_env(datadir, password=None))
    try:
        for prompt, answer in (("Old password: ", "password-xxxx"),
                               ("New password: ", "new-password-2"),
                               ("New password again: ", "new-password-2")):
            t.read_until(prompt)
            t.write(answer + "\n")
        assert t.wait() == 0
        screen = t.buf.decode()
        assert "password changed" in screen
        assert "password-xxxx" not in screen and "new-password-2" not in screen
    finally:
        t.close()
    harness.wait_for(lambda: mqchat(b, datadir, "alice", "whois", "alice",
                                    password="new-password-2").rc == 0, what="new password")

    # registration asks twice; a mismatch sends nothing
    t = Tty(argv(b, None, "register", "zoe"), client_env(datadir, password=None))
    try:
        t.read_until("New password for zoe: ")
        t.write("zoes-password-1\n")
        t.read_until("Again: ")
        t.write("zoes-password-2\n")
        assert t.wait() == 2
        assert "Error: the passwords differ" in t.buf.decode()
    finally:
        t.close()
    t = Tty(argv(b, None, "register", "zoe"), client_env(datadir, password=None))
    try:
        t.read_until("New password for zoe: ")
        t.write("zoes-password-1\n")
        t.read_until("Again: ")
        t.write("zoes-password-1\n")
        assert t.wait() == 0
        assert "registered zoe" in t.buf.decode()
    finally:
        t.close()
