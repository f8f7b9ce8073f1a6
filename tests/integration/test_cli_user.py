"""test_cli_user.py - `mqchat-archiver user ...`: output, exit codes, bad input."""
import json
import os
import select
import sqlite3
import subprocess
import time

import pytest

import harness

from cli_util import (BAD_NAMES, EXISTS, INVALID, NOTFOUND, PASSWORD, RUNTIME, USAGE, add_user,
                      auth_rows, cli, fails, initdir, message_bodies, ok, put_message,  # noqa: F401
                      verify_password)


def users(d):
    return auth_rows(d, "SELECT name, kind, nick, enabled FROM users ORDER BY name")


def test_add_list_show(initdir):
    d = initdir
    assert add_user(d, "alice", PASSWORD, "--nick", "Alice Liddell").out == "user alice added\n"
    assert add_user(d, "sensor-1.a_b", PASSWORD, "--kind", "device").out == "user sensor-1.a_b added\n"
    assert ok(d, "user", "list").out == (
        "alice user enabled Alice Liddell\n"
        "archiver service enabled archiver\n"
        "sensor-1.a_b device enabled sensor-1.a_b\n")
    listed = json.loads(ok(d, "user", "list", "--json").out)
    assert [(u["name"], u["kind"], u["nick"], u["enabled"]) for u in listed] == [
        ("alice", "user", "Alice Liddell", True), ("archiver", "service", "archiver", True),
        ("sensor-1.a_b", "device", "sensor-1.a_b", True)]
    assert all("pwhash" not in u for u in listed)
    stored = auth_rows(d, "SELECT pwhash FROM users WHERE name='alice'")[0][0]
    assert stored.startswith("$pbkdf2-sha512$4300$")
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")

    out = ok(d, "user", "show", "alice").out.splitlines()
    assert out[0:3] == ["name alice", "kind user", "enabled yes"]
    assert out[3].startswith("created 20") and out[3].endswith("Z")
    assert out[4:] == ["nick Alice Liddell", "rooms", "blocks"]
    shown = json.loads(ok(d, "user", "show", "alice", "--json").out)
    assert shown["profile"]["name"] == "alice" and shown["rooms"] == [] and shown["blocks"] == []


def test_add_reads_only_first_line_and_strips_crlf(initdir):
    add_user(initdir, "bob", "password-one\r\nsecond line")
    stored = auth_rows(initdir, "SELECT pwhash FROM users WHERE name='bob'")[0][0]
    assert verify_password(stored, "password-one")


def test_bad_names_refused_everywhere(initdir):
    d = initdir
    before = users(d)
    for name in BAD_NAMES:
        for cmd in (["add", name, "--password-stdin"], ["passwd", name, "--password-stdin"],
                    ["disable", name], ["enable", name], ["del", name], ["show", name],
                    ["export", name]):
            r = fails(d, INVALID, "user", *cmd, stdin=PASSWORD + "\n")
            assert "invalid user name" in r.err, (name, r)
    assert users(d) == before


def test_bad_kind_and_nick(initdir):
    d = initdir
    fails(d, INVALID, "user", "add", "carol", "--kind", "admin", "--password-stdin",
          stdin=PASSWORD + "\n", err="invalid kind 'admin': user, device or service")
    for nick in ["", "a\tb", "x" * 65, "bad\x7f"]:
        r = fails(d, INVALID, "user", "add", "carol", "--nick", nick, "--password-stdin",
                  stdin=PASSWORD + "\n")
        assert "invalid nick" in r.err
    assert add_user(d, "carol", PASSWORD, "--nick", "Ünïcödé " + "x" * 50).rc == 0
    assert [u for u in users(d) if u[0] == "carol"] == [("carol", "user", "Ünïcödé " + "x" * 50, 1)]


def test_duplicate_and_unknown(initdir):
    d = initdir
    add_user(d, "alice")
    before = auth_rows(d, "SELECT * FROM users ORDER BY name")
    fails(d, EXISTS, "user", "add", "alice", "--password-stdin", stdin="other-password\n",
          err="user 'alice' already exists")
    assert auth_rows(d, "SELECT * FROM users ORDER BY name") == before
    for cmd in (["passwd", "nobody", "--password-stdin"], ["disable", "nobody"], ["enable", "nobody"],
                ["del", "nobody"], ["show", "nobody"], ["export", "nobody"]):
        fails(d, NOTFOUND, "user", *cmd, stdin=PASSWORD + "\n", err="no such user 'nobody'")


@pytest.mark.parametrize("pw,why", [
    ("", "empty password"),
    ("\n", "empty password"),
    ("short77", "password too short (at least 8 bytes)"),
    ("x" * 1025, "password too long (at most 1024 bytes)"),
], ids=["eof", "empty-line", "short", "long"])
def test_weak_or_bad_passwords(initdir, pw, why):
    d = initdir
    add_user(d, "alice")
    before = auth_rows(d, "SELECT * FROM users ORDER BY name")
    fails(d, INVALID, "user", "add", "bob", "--password-stdin", stdin=pw, err=why)
    fails(d, INVALID, "user", "passwd", "alice", "--password-stdin", stdin=pw, err=why)
    assert auth_rows(d, "SELECT * FROM users ORDER BY name") == before


def test_password_limits_accepted(initdir):
    add_user(initdir, "eight", "12345678")
    add_user(initdir, "long", "y" * 1024)
    rows = dict(auth_rows(initdir, "SELECT name, pwhash FROM users"))
    assert verify_password(rows["eight"], "12345678")
    assert verify_password(rows["long"], "y" * 1024)


def test_no_terminal_without_password_stdin(initdir):
    fails(initdir, USAGE, "user", "add", "bob",
          err="no terminal to ask for the password (use --password-stdin)")
    assert "bob" not in [u[0] for u in users(initdir)]


def test_passwd(initdir):
    d = initdir
    add_user(d, "alice")
    assert ok(d, "user", "passwd", "alice", "--password-stdin",
              stdin="new-password\n").out == "password of alice changed\n"
    stored = auth_rows(d, "SELECT pwhash FROM users WHERE name='alice'")[0][0]
    assert verify_password(stored, "new-password") and not verify_password(stored, PASSWORD)


def test_passwd_of_the_service_account_warns(initdir):
    d = initdir
    r = cli(d, "user", "passwd", "archiver", "--password-stdin", stdin="new-service-pw\n")
    assert (r.rc, r.out) == (0, "password of archiver changed\n"), r
    assert r.err == ("note: %s/archiver.pw still holds the old password: put the new one there"
                     " before the archiver reconnects\n" % d)


def test_disable_enable(initdir):
    d = initdir
    add_user(d, "alice")
    assert ok(d, "user", "disable", "alice").out == "user alice disabled\n"
    assert auth_rows(d, "SELECT enabled FROM users WHERE name='alice'") == [(0,)]
    assert "alice user disabled alice\n" in ok(d, "user", "list").out
    assert ok(d, "user", "show", "alice").out.splitlines()[2] == "enabled no"
    assert ok(d, "user", "enable", "alice").out == "user alice enabled\n"
    assert auth_rows(d, "SELECT enabled FROM users WHERE name='alice'") == [(1,)]


def test_usage_errors(initdir):
    d = initdir
    r = fails(d, USAGE, "user", "add", err="expected one user name")
    assert "usage: mqchat-archiver [--data DIR] user add NAME" in r.err
    fails(d, USAGE, "user", "add", "a", "b", err="expected one user name")
    fails(d, USAGE, "user", "add", "bob", "--bogus", err="unknown option '--bogus' (see `mqchat-archiver user add --help`)")
    fails(d, USAGE, "user", "add", "bob", "--kind", err="option '--kind' needs an argument (see `mqchat-archiver user add --help`)")
    fails(d, USAGE, "user", "list", "extra", err="unexpected argument")
    fails(d, USAGE, "user", "frob", err="unknown command 'user frob' (see `mqchat-archiver user --help`)")
    fails(d, USAGE, "user", err="missing command after user")
    fails(d, USAGE, "user", "show", err="expected one user name")
    fails(d, USAGE, "user", "list", "--data", d, err="'--data' is a global option: put it before the command"
          " (see `mqchat-archiver --help`)")
    assert ok(d, "user", "add", "--help").out.startswith("usage: mqchat-archiver [--data DIR] user add NAME")
    help_text = ok(d, "user", "--help").out
    for sub in ("add", "passwd", "disable", "enable", "del", "export", "list", "show"):
        assert "  user %s" % sub in help_text


def test_del_takes_memberships_and_blocks(initdir):
    d = initdir
    add_user(d, "alice")
    add_user(d, "bob")
    ok(d, "room", "create", "general")
    ok(d, "room", "add", "general", "alice", "bob")
    auth_rows(d, "SELECT 1")  # the file is there
    db = sqlite3.connect(os.path.join(d, "auth.db"), isolation_level=None)
    db.execute("INSERT INTO blocks(user, blocked) VALUES('bob','alice')")
    db.close()
    assert ok(d, "user", "del", "alice").out == "user alice deleted\n"
    assert auth_rows(d, "SELECT user FROM members") == [("bob",)]
    assert auth_rows(d, "SELECT * FROM blocks") == []
    assert [u[0] for u in users(d)] == ["archiver", "bob"]


def test_del_erase_removes_their_messages_only(initdir):
    d = initdir
    for u in ("alice", "bob", "carol"):
        add_user(d, u)
    put_message(d, "alice", "a->b", recipient="bob")
    put_message(d, "bob", "b->a", recipient="alice")
    put_message(d, "bob", "b->c", recipient="carol")
    put_message(d, "alice", "a@room", room="general")
    put_message(d, "carol", "c@room", room="general")
    # Without --erase the messages stay.
    assert ok(d, "user", "del", "carol").out == "user carol deleted\n"
    assert len(message_bodies(d)) == 5
    assert ok(d, "user", "del", "alice", "--erase").out == (
        "3 messages of alice erased\nuser alice deleted\n")
    assert message_bodies(d) == ["b->c", "c@room"]
    assert [u[0] for u in users(d)] == ["archiver", "bob"]


def test_del_erase_without_archive_keeps_the_user(initdir):
    d = initdir
    add_user(d, "alice")
    os.unlink(os.path.join(d, "archive.db"))
    fails(d, 6, "user", "del", "alice", "--erase",
          err="%s/archive.db: no such file (run `mqchat-archiver --data %s init`)" % (d, d))
    assert "alice" in [u[0] for u in users(d)]


def test_export(initdir):
    d = initdir
    add_user(d, "alice", PASSWORD, "--nick", "Alice")
    add_user(d, "bob")
    ok(d, "room", "create", "general")
    ok(d, "room", "add", "general", "alice")
    db = sqlite3.connect(os.path.join(d, "auth.db"), isolation_level=None)
    db.execute("INSERT INTO blocks(user, blocked) VALUES('alice','bob')")
    db.close()
    s1 = put_message(d, "alice", "hi bob", recipient="bob", msg_id="m1")
    put_message(d, "bob", "not for alice", room="general")
    s3 = put_message(d, "bob", "hi alice", recipient="alice", msg_id="m2")
    doc = json.loads(ok(d, "user", "export", "alice").out)
    assert set(doc) == {"profile", "rooms", "blocks", "messages"}
    assert doc["profile"]["name"] == "alice" and doc["profile"]["nick"] == "Alice"
    assert doc["profile"]["kind"] == "user" and doc["profile"]["enabled"] is True
    assert "pwhash" not in doc["profile"]
    assert doc["rooms"] == ["general"] and doc["blocks"] == ["bob"]
    assert [(m["seq"], m["id"], m["from"], m["to"], m["body"]) for m in doc["messages"]] == [
        (s1, "m1", "alice", "bob", "hi bob"), (s3, "m2", "bob", "alice", "hi alice")]


def test_locked_database_is_a_runtime_error(initdir):
    d = initdir
    add_user(d, "alice")
    before = auth_rows(d, "SELECT * FROM users ORDER BY name")
    db = sqlite3.connect(os.path.join(d, "auth.db"), isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        env = {"MQCHAT_BUSY_TIMEOUT_MS": "500"}
        for cmd in (["user", "add", "bob", "--password-stdin"], ["user", "disable", "alice"],
                    ["user", "passwd", "alice", "--password-stdin"], ["user", "del", "alice"]):
            r = fails(d, RUNTIME, *cmd, stdin=PASSWORD + "\n", env=env, err="database is locked")
            assert 0.4 <= r.elapsed < 3.0, r.elapsed
        # Readers are not blocked by a writer (WAL).
        assert "alice user enabled alice\n" in ok(d, "user", "list", env=env).out
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert auth_rows(d, "SELECT * FROM users ORDER BY name") == before
    add_user(d, "bob")


def test_bad_busy_timeout_env(initdir):
    fails(initdir, USAGE, "user", "list", env={"MQCHAT_BUSY_TIMEOUT_MS": "soon"},
          err="MQCHAT_BUSY_TIMEOUT_MS must be a number of milliseconds")


def run_on_tty(datadir, args, typed, timeout=10):
    """Run the CLI with a pseudo-terminal as its controlling terminal, type
    the given lines when prompted; return (exit status, terminal output)."""
    master, slave = os.openpty()
    slave_name = os.ttyname(slave)

    def become_session_leader():
        os.setsid()
        os.close(os.open(slave_name, os.O_RDWR))   # the first tty opened is the controlling one

    p = subprocess.Popen([harness.ARCHIVER, "--data", datadir] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=become_session_leader)
    seen = b""
    pending = list(typed)
    deadline = time.monotonic() + timeout
    try:
        while p.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                chunk = os.read(master, 4096)
                seen += chunk
                if chunk.rstrip().endswith(b":") and pending:
                    os.write(master, pending.pop(0).encode() + b"\n")
        p.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)   # kept open until here: the terminal never hangs up on the CLI
    return p.returncode, seen.decode(errors="replace"), p.stdout.read().decode(), p.stderr.read().decode()


def test_password_prompt_on_terminal(initdir):
    d = initdir
    rc, tty, out, err = run_on_tty(d, ["user", "add", "alice"], ["tty-password", "tty-password"])
    assert (rc, out, err) == (0, "user alice added\n", ""), (rc, tty, out, err)
    assert "Password for alice: " in tty and "Retype the password: " in tty
    assert "tty-password" not in tty            # no echo
    stored = auth_rows(d, "SELECT pwhash FROM users WHERE name='alice'")[0][0]
    assert verify_password(stored, "tty-password")

    rc, tty, out, err = run_on_tty(d, ["user", "passwd", "alice"], ["new-password-1", "new-password-2"])
    assert (rc, out, err) == (INVALID, "", "Error: the passwords do not match\n"), (rc, tty, out, err)
    assert verify_password(auth_rows(d, "SELECT pwhash FROM users WHERE name='alice'")[0][0], "tty-password")
