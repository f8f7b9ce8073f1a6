"""cli_util.py - helpers for the tests of the operators' CLI (mqchat-archiver).

The CLI is run as a subprocess with a timeout, in its own session (so it has
no controlling terminal and cannot prompt), and its stdout, stderr and exit
status are compared exactly. Messages are put into archive.db with Python's
sqlite3 following the schema documented in archiver/archive.h, so purge,
erase, export and stats can be tested without a running daemon.
"""
import base64
import hashlib
import os
import sqlite3
import subprocess
import time

import pytest

import harness

# Exit statuses (archiver/cli.h, archiver/README.md).
OK, RUNTIME, USAGE, NOTFOUND, EXISTS, INVALID, NODB = 0, 1, 2, 3, 4, 5, 6

PASSWORD = "correct-horse"
BAD_NAMES = ["Alice", "a/b", "+", "x" * 33, "' OR 1=1", "", "_register", "a b", "é"]
DAY_MS = 86400 * 1000


class Result:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed

    def __repr__(self):
        return "rc=%s out=%r err=%r" % (self.rc, self.out, self.err)


def cli(datadir, *args, stdin=None, env=None, timeout=20, cwd=None):
    """Run `mqchat-archiver --data datadir ARGS...` (no --data if datadir is
    None); return a Result."""
    e = dict(os.environ)
    e.update(env or {})
    argv = [harness.ARCHIVER] + (["--data", datadir] if datadir is not None else []) + list(args)
    t = time.monotonic()
    p = subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True,
                       text=True, timeout=timeout, env=e, start_new_session=True, cwd=cwd)
    return Result(p, time.monotonic() - t)


def ok(datadir, *args, **kw):
    """Run the CLI and assert it succeeded with nothing on stderr."""
    r = cli(datadir, *args, **kw)
    assert r.rc == OK and r.err == "", r
    return r


def fails(datadir, rc, *args, err=None, **kw):
    """Run the CLI and assert exit status rc, nothing on stdout, and an
    "Error: ..." first line on stderr (exactly err if given)."""
    r = cli(datadir, *args, **kw)
    assert r.rc == rc, r
    assert r.out == "", r
    assert r.err.startswith("Error: "), r
    if err is not None:
        assert r.err.splitlines()[0] == "Error: " + err, r
    return r


def add_user(datadir, name, password=PASSWORD, *extra):
    return ok(datadir, "user", "add", name, "--password-stdin", *extra, stdin=password + "\n")


def db_rows(path, sql, *args):
    db = sqlite3.connect(path, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def auth_rows(datadir, sql, *args):
    return db_rows(os.path.join(datadir, "auth.db"), sql, *args)


def verify_password(stored, password):
    """Check a stored $pbkdf2-sha512$<iter>$<salt>$<hash>, or a service
    secret's $sha256$<salt>$<hash> (SHA-256 of salt and secret),
    independently of the C code."""
    if stored.startswith("$sha256$"):
        _, scheme, salt, key = stored.split("$")
        return hashlib.sha256(base64.b64decode(salt) + password.encode()).digest() == base64.b64decode(key)
    _, scheme, iters, salt, key = stored.split("$")
    assert scheme == "pbkdf2-sha512"
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iters), 64)
    return got == base64.b64decode(key)


def put_message(datadir, sender, body, recipient=None, room=None, server_ts=None, msg_id=None):
    """Store one archived message straight into archive.db; returns its seq."""
    server_ts = server_ts if server_ts is not None else int(time.time() * 1000)
    if recipient is not None:
        conv = "d:%s|%s" % tuple(sorted([sender, recipient]))
    else:
        conv = "r:%s" % room
    msg_id = msg_id or os.urandom(8).hex()
    idh = int.from_bytes(hashlib.sha256((sender + "\0" + msg_id).encode()).digest()[:7], "big")
    db = sqlite3.connect(os.path.join(datadir, "archive.db"), timeout=10, isolation_level=None)
    try:
        cur = db.execute("INSERT INTO messages(sender, recipient, room, conv, type, id, body, ts,"
                         " server_ts, idh) VALUES(?,?,?,?,'text',?,?,?,?,?)",
                         (sender, recipient, room, conv, msg_id, body, server_ts, server_ts, idh))
        return cur.lastrowid
    finally:
        db.close()


def message_bodies(datadir):
    return [r[0] for r in db_rows(os.path.join(datadir, "archive.db"),
                                  "SELECT body FROM messages ORDER BY seq")]


@pytest.fixture
def initdir(datadir):
    """A data folder after `init` (auth.db, archive.db, archiver account)."""
    ok(datadir, "init")
    return datadir
