"""test_client_tokens.py - the client keeps a device token instead of the
password (client/README.md, "Device tokens"; docs/PROTOCOL.md, "Device
tokens"), with the real broker, plugin and archiver.

A login with the password (`mqchat login`, or a prompted password) stores
two tokens: <user>@<device> for listen and chat, <user>@<device>.cmd for
the one-shot commands. Runs with password=None have no password source at
all and no terminal (client_util runs every client in its own session)."""
import json
import os
import pty
import re
import select
import stat
import time

import pytest

import harness
from cli_util import cli
from client_util import (AUTH, DEVICE, OK, PASSWORD, UNREACH, USAGE, Listener,
                         add_archiver_account, archivers, client_env, mqchat, ok,  # noqa: F401
                         users)
from client_util import argv as client_argv

TOKEN = re.compile(r"^mqt1\.[A-Za-z0-9_-]{43}\n$")
# Well-formed, but no device's token.
BOGUS = "mqt1." + "A" * 43


@pytest.fixture
def world(store, make_broker, datadir, archivers):
    users(store, "alice", "bob")
    add_archiver_account(store)
    b = make_broker(plugin_opts={"seen_report_s": 1})
    arch = archivers(datadir, store, b, "alice")
    return b, arch


def token_dir(datadir):
    return os.path.join(datadir, "home", "config", "mqchat", "tokens")


def token_file(datadir, user="alice", device=DEVICE):
    return os.path.join(token_dir(datadir), "%s@%s" % (user, device))


def read_token(datadir, device=DEVICE):
    with open(token_file(datadir, device=device)) as f:
        return f.read()


def login(b, datadir, device=DEVICE):
    r = ok(b, datadir, "alice", "login", device=device)
    assert r.out == "logged in as alice@%s: device token stored, no password needed from " \
        "now on\n" % device, r
    return r


def test_login_stores_private_tokens_then_no_password(world, datadir):
    b, _ = world
    login(b, datadir)
    d = token_dir(datadir)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert sorted(n for n in os.listdir(d) if not n.endswith(".lock")) == \
        ["alice@test", "alice@test.cmd"]
    for dev in (DEVICE, DEVICE + ".cmd"):
        assert stat.S_IMODE(os.stat(token_file(datadir, device=dev)).st_mode) == 0o600
        assert TOKEN.match(read_token(datadir, dev))
    assert read_token(datadir) != read_token(datadir, DEVICE + ".cmd")
    # No password source at all, no terminal: the token logs in.
    r = ok(b, datadir, "alice", "send", "bob", "by token", password=None)
    assert r.err == "", r
    ok(b, datadir, "alice", "blocked", password=None)
    r = ok(b, datadir, "alice", "login", password=None)
    assert r.out.startswith("already logged in as alice@test"), r
    # The messages went as alice.
    r = ok(b, datadir, "bob", "history", "alice")
    assert r.out.endswith("alice: by token\n"), r


def run_on_tty(argv, env, answer, timeout=20):
    """Run argv on a new terminal; type answer after the password prompt.
    Returns (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    seen, deadline, typed = b"", time.monotonic() + timeout, False
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                seen += data
            if not typed and b"Password for alice: " in seen:
                os.write(fd, answer.encode() + b"\n")
                typed = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def tty_run(b, datadir, *args, answer=PASSWORD):
    """A run on a terminal with no password given: only the prompt has one."""
    return run_on_tty(client_argv(b, "alice", *args), client_env(datadir, password=None), answer)


def test_prompted_password_stores_token_and_is_not_asked_again(world, datadir):
    b, _ = world
    rc, shown = tty_run(b, datadir, "send", "bob", "first")
    assert rc == OK and "Password for alice: " in shown, shown
    assert TOKEN.match(read_token(datadir)) and TOKEN.match(read_token(datadir, DEVICE + ".cmd"))
    # On a terminal again: no prompt this time.
    rc, shown = tty_run(b, datadir, "send", "bob", "second")
    assert rc == OK and "Password" not in shown, shown


def test_listen_and_send_by_token_at_once(world, datadir):
    """listen holds <user>@<device>, send <user>@<device>.cmd: neither
    throws the other out."""
    b, _ = world
    login(b, datadir)
    with Listener(b, datadir, "alice", password=None, timeout=5) as alice:
        alice.wait_ready()
        assert "listening as alice@test " in alice.errors()
        for i in range(3):
            ok(b, datadir, "alice", "send", "bob", "m%d" % i, password=None)
        ok(b, datadir, "bob", "send", "alice", "to the listener")
        alice.wait_texts(1)
        assert "connection lost" not in alice.errors()


REFUSED = "the device token of alice@test.cmd was refused (revoked or replaced): " \
    "logging in with the password"


def test_revoked_token_falls_back_to_password_and_renews(world, datadir):
    b, _ = world
    login(b, datadir)
    old = read_token(datadir, DEVICE + ".cmd")
    # Revoked from another device of alice's (with the password).
    r = ok(b, datadir, "alice", "devices", "revoke", DEVICE, device="other")
    assert r.out == "revoked 2 device tokens\n", r
    rc, shown = tty_run(b, datadir, "send", "bob", "after revoke")
    assert rc == OK and REFUSED in shown and "Password for alice: " in shown, shown
    new = read_token(datadir, DEVICE + ".cmd")
    assert TOKEN.match(new) and new != old
    ok(b, datadir, "alice", "send", "bob", "by the new token", password=None)
    # Revoked by the operator's CLI.
    r = cli(datadir, "user", "revoke", "alice", "--all")
    assert r.rc == 0, r
    rc, shown = tty_run(b, datadir, "blocked")
    assert rc == OK and REFUSED in shown, shown
    assert TOKEN.match(read_token(datadir, DEVICE + ".cmd"))
    ok(b, datadir, "alice", "blocked", password=None)


def test_refused_token_without_password_fails_clearly(world, datadir):
    b, _ = world
    login(b, datadir)
    assert cli(datadir, "user", "revoke", "alice", "--all").rc == 0
    r = mqchat(b, datadir, "alice", "send", "bob", "x", password=None)
    assert r.rc == USAGE, r
    assert r.err.endswith("Error: no password: use --password-file, MQCHAT_PASSWORD or a "
                          "terminal\n"), r
    assert not os.path.exists(token_file(datadir, device=DEVICE + ".cmd"))


def test_devices_lists_this_device(world, datadir):
    b, _ = world
    login(b, datadir)
    r = ok(b, datadir, "alice", "devices", password=None)
    lines = r.out.splitlines()
    assert len(lines) == 2, r
    assert re.match(r"^test: token since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, .* \(this device\)$",
                    lines[0]), r
    assert lines[1].startswith("test.cmd: token since ") and \
        lines[1].endswith(" (this device's one-shot commands)"), r
    # The plugin reports logins every second (seen_report_s): the one-shot
    # device's last_seen arrives.
    def seen():
        r = ok(b, datadir, "alice", "--json", "devices", password=None)
        objs = [json.loads(ln) for ln in r.out.splitlines()]
        assert all(o["this_device"] is True for o in objs), r
        return {o["device"]: o["last_seen"] for o in objs}.get("test.cmd", 0) > 0
    harness.wait_for(seen, 15, interval=0.5, what="last_seen of test.cmd")


def phone_listening(b, datadir):
    """alice logged in on her phone and on this device; the phone's listen
    (by token) is subscribed."""
    login(b, datadir, device="phone")
    login(b, datadir)
    phone = Listener(b, datadir, "alice", device="phone", password=None, timeout=5)
    try:
        phone.wait_ready()
    except Exception:
        phone.stop()
        raise
    return phone


def test_revoke_others_closes_the_other_devices_listen(world, datadir):
    b, _ = world
    with phone_listening(b, datadir) as phone:
        r = ok(b, datadir, "alice", "devices", "revoke", "--others", password=None)
        assert r.out == "revoked 2 device tokens (other devices)\n", r
        # The broker closes it; its reconnect with the token is refused: exit 3.
        assert phone.wait_exit() == AUTH, phone.errors()
        assert "Error: reconnect refused: Not authorized (the device token was revoked or " \
            "replaced" in phone.errors()
    r = ok(b, datadir, "alice", "devices", password=None)
    assert [ln.split(":")[0] for ln in r.out.splitlines()] == ["test", "test.cmd"], r
    # Without a password the phone cannot get in again.
    r = mqchat(b, datadir, "alice", "blocked", device="phone", password=None)
    assert r.rc == USAGE, r


def test_passwd_logout_others(world, datadir):
    b, _ = world
    with phone_listening(b, datadir) as phone:
        # The archiver checks a password at most once a second after a
        # success (the logins just made): retry within a bound.
        def changed():
            nonlocal r
            r = mqchat(b, datadir, "alice", "passwd", "--password-stdin", "--logout-others",
                       password=None, stdin=PASSWORD + "\nnew-password-1\n")
            assert r.rc == OK or "(rate_limited)" in r.err, r
            return r.rc == OK
        r = None
        harness.wait_for(changed, 10, interval=0.3, what="passwd past the throttle")
        # phone, phone.cmd and this device's one-shot token test.cmd
        assert r.out == "password changed; 3 device tokens revoked (this device's one-shot " \
            "commands get a new one)\n", r
        assert r.err == "", r
        assert phone.wait_exit() == AUTH, phone.errors()
    # This device keeps working without a password, both kinds of command.
    ok(b, datadir, "alice", "blocked", password=None)
    with Listener(b, datadir, "alice", password=None, timeout=5) as alice:
        alice.wait_ready()
    r = mqchat(b, datadir, "alice", "blocked", device="phone")   # the old password
    assert r.rc == AUTH, r
    ok(b, datadir, "alice", "blocked", device="phone", password="new-password-1")


def test_logout_forgets_and_revokes(world, datadir):
    b, _ = world
    login(b, datadir)
    r = ok(b, datadir, "alice", "logout", password=None)
    assert r.out == "logged out alice@test: device token revoked and forgotten\n", r
    assert [n for n in os.listdir(token_dir(datadir)) if not n.endswith(".lock")] == []
    r = ok(b, datadir, "alice", "devices")
    assert r.out == "", r
    r = ok(b, datadir, "alice", "logout", password=None)
    assert r.out == "no device token stored for alice@test\n", r


def test_logout_with_the_server_down_still_forgets(world, datadir):
    b, _ = world
    login(b, datadir)
    b.stop()
    r = mqchat(b, datadir, "alice", "logout", password=None)
    assert r.rc == UNREACH, r
    assert "forgot the device token of alice@test, but the server was not told: revoke it " \
        "with `mqchat devices revoke test` from another device" in r.err, r
    assert [n for n in os.listdir(token_dir(datadir)) if not n.endswith(".lock")] == []


def test_explicit_password_wins_over_token(world, datadir):
    b, _ = world
    login(b, datadir)
    pw = os.path.join(datadir, "wrong.pw")
    with open(pw, "w") as f:
        f.write("wrong-password\n")
    os.chmod(pw, 0o600)
    # A wrong password given explicitly is used (and refused), token or not.
    r = mqchat(b, datadir, "alice", "--password-file", pw, "blocked", password=None)
    assert r.rc == AUTH, r
    r = mqchat(b, datadir, "alice", "blocked", password="wrong-password")
    assert r.rc == AUTH, r
    assert TOKEN.match(read_token(datadir, DEVICE + ".cmd"))
    ok(b, datadir, "alice", "blocked", password=None)


@pytest.mark.parametrize("damage", ["group-readable", "corrupt", "folder-open"])
def test_bad_token_file_is_refused_and_nothing_sent(world, datadir, damage):
    b, _ = world
    login(b, datadir)
    path = token_file(datadir, device=DEVICE + ".cmd")
    if damage == "group-readable":
        os.chmod(path, 0o640)
        want = "Error: device token file %s is accessible by group or others; run: chmod 600 " \
            "%s\n" % (path, path)
    elif damage == "corrupt":
        with open(path, "w") as f:
            f.write("not a token\n")
        want = "Error: device token file %s holds no device token; remove it (mqchat logout) " \
            "to log in with the password\n" % path
    else:
        os.chmod(token_dir(datadir), 0o750)
        want = "Error: device token folder %s is accessible by group or others; run: chmod 700 " \
            "%s\n" % (token_dir(datadir), token_dir(datadir))
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        r = mqchat(b, datadir, "alice", "send", "bob", "never", password=None)
        assert r.rc == USAGE and r.err == want and r.out == "", r
        # bob gets what alice sends next, and nothing before it
        ok(b, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(1)
        assert [ln.split(": ", 1)[1] for ln in bob.lines()] == ["marker"]


def test_archiver_down_the_password_still_works_with_a_warning(world, datadir):
    b, arch = world
    login(b, datadir)
    arch.stop()
    # A token the broker refuses: the prompted password is used, a new
    # token asked for, and nobody answers.
    path = token_file(datadir, device=DEVICE + ".cmd")
    with open(path, "w") as f:
        f.write(BOGUS + "\n")
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        rc, shown = tty_run(b, datadir, "send", "bob", "still sent")
        assert rc == OK and REFUSED in shown, shown
        assert shown.count("warning: no device token for alice@test.cmd: no answer from the "
                           "archiver (is it running?); the password will be needed next "
                           "time") == 1, shown
        bob.wait_texts(1)
    assert not os.path.exists(path)


def test_revoke_all_takes_this_device_too(world, datadir):
    b, _ = world
    login(b, datadir, device="phone")
    login(b, datadir)
    # By token: the revocation closes this very connection before the answer.
    r = ok(b, datadir, "alice", "devices", "revoke", "--all", password=None)
    assert r.out == "revoked every device token, this device's too\n", r
    assert sorted(n for n in os.listdir(token_dir(datadir)) if not n.endswith(".lock")) == \
        ["alice@phone", "alice@phone.cmd"]
    r = ok(b, datadir, "alice", "devices")
    assert r.out == "", r
    # With the password the answer comes, with its count.
    login(b, datadir)
    r = ok(b, datadir, "alice", "--json", "devices", "revoke", "--all", device="other")
    assert r.out == '{"revoked":2}\n', r
