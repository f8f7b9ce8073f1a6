"""test_cli_admin.py - `mqchat-archiver init`, `purge`, `stats`, help and the
global options; missing and foreign databases."""
import json
import os
import pwd
import sqlite3
import stat
import subprocess
import time

import pytest

import harness

from cli_util import (DAY_MS, EXISTS, NODB, USAGE, add_user, auth_rows, cli, fails, initdir,  # noqa: F401
                      message_bodies, ok, put_message, verify_password)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_everything_once(datadir):
    d = os.path.join(datadir, "data")
    r = ok(d, "init")
    assert r.out == ("created {d}\ncreated {d}/auth.db\ncreated {d}/archive.db\n"
                     "created service account archiver (password in {d}/archiver.pw)\n"
                     "created {d}/vapid.pem (the Web Push key)\n").format(d=d)
    assert mode(d) == 0o750
    assert mode(os.path.join(d, "archiver.pw")) == 0o600
    assert mode(os.path.join(d, "auth.db")) == 0o640
    assert mode(os.path.join(d, "archive.db")) == 0o640
    assert mode(os.path.join(d, "vapid.pem")) == 0o600
    with open(os.path.join(d, "archiver.pw")) as f:
        content = f.read()
    pw = content.rstrip("\n")
    assert content == pw + "\n" and len(pw) == 32
    assert all(c.isalnum() or c in "-_" for c in pw)
    rows = auth_rows(d, "SELECT name, kind, enabled, pwhash FROM users")
    assert [r[:3] for r in rows] == [("archiver", "service", 1)]
    assert verify_password(rows[0][3], pw)
    assert sorted(os.listdir(d)) == ["archive.db", "archiver.pw", "auth.db", "vapid.pem"]
    with open(os.path.join(d, "vapid.pem")) as f:
        vapid = f.read()
    assert "PRIVATE KEY" in vapid

    before = auth_rows(d, "SELECT * FROM users")
    r = ok(d, "init")
    assert r.out == "%s is already initialised: nothing changed\n" % d
    assert auth_rows(d, "SELECT * FROM users") == before
    with open(os.path.join(d, "archiver.pw")) as f:
        assert f.read() == content
    with open(os.path.join(d, "vapid.pem")) as f:
        assert f.read() == vapid


def test_init_makes_a_lost_vapid_key(initdir):
    """A data folder of a release before push notifications has no
    vapid.pem: init adds it and changes nothing else."""
    os.unlink(os.path.join(initdir, "vapid.pem"))
    r = ok(initdir, "init")
    assert r.out == "created %s/vapid.pem (the Web Push key)\n" % initdir
    assert mode(os.path.join(initdir, "vapid.pem")) == 0o600


def test_init_on_existing_store_keeps_users(datadir, store):
    store.add_user("alice")
    r = ok(datadir, "init")
    assert r.out == ("created {d}/archive.db\n"
                     "created service account archiver (password in {d}/archiver.pw)\n"
                     "created {d}/vapid.pem (the Web Push key)\n").format(d=datadir)
    assert [u[0] for u in auth_rows(datadir, "SELECT name FROM users ORDER BY name")] == ["alice", "archiver"]


def test_init_replaces_a_lost_password_file(initdir):
    d = initdir
    os.unlink(os.path.join(d, "archiver.pw"))
    r = ok(d, "init")
    assert r.out == "new password for service account archiver in %s/archiver.pw (the file was missing)\n" % d
    with open(os.path.join(d, "archiver.pw")) as f:
        pw = f.read().rstrip("\n")
    # A random secret: stored in the fast form the plugin never throttles.
    assert auth_rows(d, "SELECT pwhash FROM users WHERE name='archiver'")[0][0].startswith("$sha256$")
    assert verify_password(auth_rows(d, "SELECT pwhash FROM users WHERE name='archiver'")[0][0], pw)
    assert mode(os.path.join(d, "archiver.pw")) == 0o600


def test_init_refuses_a_non_service_archiver(datadir, store):
    store.add_user("archiver", kind="user")
    fails(datadir, EXISTS, "init", err="user 'archiver' exists but is not a service account")
    assert not os.path.exists(os.path.join(datadir, "archiver.pw"))
    assert auth_rows(datadir, "SELECT kind FROM users") == [("user",)]


def test_init_missing_parent(datadir):
    d = os.path.join(datadir, "no", "such")
    r = fails(d, 1, "init")
    assert r.err.startswith("Error: cannot create %s: " % d)


def test_init_owner(datadir):
    d = os.path.join(datadir, "data")
    try:
        broker_user = pwd.getpwnam("mosquitto")
    except KeyError:
        broker_user = None
    r = cli(d, "init", "--owner", "mosquitto")
    assert r.rc == 0, r
    if os.geteuid() != 0:
        assert r.err == "note: not running as root, --owner mosquitto ignored\n"
        assert os.stat(d).st_uid == os.geteuid()
        return
    if broker_user is None:
        assert r.err == "note: no system user 'mosquitto', --owner ignored\n"
        return
    assert r.out.endswith("owner of {d} set to mosquitto\nowner of {d}/auth.db set to mosquitto\n"
                          "owner of {d}/archive.db set to mosquitto\n"
                          "owner of {d}/archiver.pw set to mosquitto\n"
                          "owner of {d}/vapid.pem set to mosquitto\n".format(d=d))
    # The archiver's files too: it runs as the folder's owner, never as
    # root in a folder another user owns (docs/SECURITY.md).
    for p in (d, os.path.join(d, "auth.db"), os.path.join(d, "archiver.pw"), os.path.join(d, "archive.db"),
              os.path.join(d, "vapid.pem")):
        assert (os.stat(p).st_uid, os.stat(p).st_gid) == (broker_user.pw_uid, broker_user.pw_gid)
    assert ok(d, "init", "--owner", "mosquitto").out == "%s is already initialised: nothing changed\n" % d
    add_user(d, "alice")   # root still writes the store, -wal/-shm get the file's owner
    r = cli(d, "init", "--owner", "no-such-user-here")
    assert r.rc == 0 and r.err == "note: no system user 'no-such-user-here', --owner ignored\n", r


def test_missing_database(datadir):
    d = os.path.join(datadir, "empty")
    os.mkdir(d)
    auth_msg = "%s/auth.db: no such file (run `mqchat-archiver --data %s init`)" % (d, d)
    for cmd in (["user", "add", "alice", "--password-stdin"], ["user", "passwd", "alice", "--password-stdin"],
                ["user", "disable", "alice"], ["user", "enable", "alice"], ["user", "del", "alice"],
                ["user", "show", "alice"], ["user", "export", "alice"], ["user", "list"],
                ["room", "create", "r"], ["room", "add", "r", "alice"], ["room", "remove", "r", "alice"],
                ["room", "del", "r"], ["room", "list"], ["invite", "create"], ["invite", "list"],
                ["invite", "revoke", "abc"], ["stats"]):
        fails(d, NODB, *cmd, stdin="password1\n", err=auth_msg)
    fails(d, NODB, "purge", err="%s/archive.db: no such file (run `mqchat-archiver --data %s init`)" % (d, d))
    assert os.listdir(d) == []


def test_default_data_folder(datadir):
    """Without --data the folder is var/ under the working directory."""
    r = cli(None, "user", "list", cwd=datadir)
    assert (r.rc, r.out) == (NODB, ""), r
    assert r.err == "Error: var/auth.db: no such file (run `mqchat-archiver --data var/ init`)\n"
    assert cli(None, "init", cwd=datadir).out.startswith("created var/\ncreated var/auth.db\n")
    r = cli(None, "user", "list", cwd=datadir)
    assert (r.rc, r.out) == (0, "archiver service enabled archiver\n"), r
    assert os.path.isfile(os.path.join(datadir, "var", "archiver.pw"))


@pytest.mark.parametrize("content", ["garbage", "foreign", "version3"])
def test_wrong_schema(datadir, content):
    path = os.path.join(datadir, "auth.db")
    if content == "garbage":
        with open(path, "w") as f:
            f.write("this is not a database at all, not even close" * 100)
    else:
        db = sqlite3.connect(path)
        if content == "foreign":
            db.execute("CREATE TABLE t(x)")
        else:
            db.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
            db.execute("INSERT INTO meta VALUES('schema_version', '4')")
        db.commit()
        db.close()
    fails(datadir, NODB, "user", "list")
    fails(datadir, NODB, "init")
    assert not os.path.exists(os.path.join(datadir, "archiver.pw"))


def test_foreign_archive(initdir):
    with open(os.path.join(initdir, "archive.db"), "w") as f:
        f.write("x" * 4096)
    fails(initdir, NODB, "stats")
    fails(initdir, NODB, "purge")
    fails(initdir, NODB, "init")


def test_purge(initdir):
    d = initdir
    now = int(time.time() * 1000)
    put_message(d, "alice", "40 days", recipient="bob", server_ts=now - 40 * DAY_MS)
    put_message(d, "alice", "31 days", room="general", server_ts=now - 31 * DAY_MS)
    put_message(d, "alice", "10 days", recipient="bob", server_ts=now - 10 * DAY_MS)
    put_message(d, "alice", "now", recipient="bob", server_ts=now - 60 * 1000)
    assert ok(d, "purge").out == "2 messages purged\n"
    assert message_bodies(d) == ["10 days", "now"]
    assert ok(d, "purge").out == "0 messages purged\n"
    assert ok(d, "purge", "--older-than", "5").out == "1 messages purged\n"
    assert message_bodies(d) == ["now"]
    assert ok(d, "purge", "--older-than", "0").out == "1 messages purged\n"
    assert message_bodies(d) == []


@pytest.mark.parametrize("arg", ["-1", "x", "36501", ""])
def test_purge_bad_days(initdir, arg):
    put_message(initdir, "alice", "old", recipient="bob", server_ts=1000)
    fails(initdir, USAGE, "purge", "--older-than", arg, err="--older-than needs a number of days (0..36500)")
    assert message_bodies(initdir) == ["old"]


def test_stats(initdir):
    d = initdir
    add_user(d, "alice")
    add_user(d, "dev1", "password-1", "--kind", "device")
    ok(d, "user", "disable", "dev1")
    ok(d, "room", "create", "general")
    ok(d, "room", "add", "general", "alice", "dev1")
    ok(d, "invite", "create")
    now = int(time.time() * 1000)
    put_message(d, "alice", "one", recipient="dev1", server_ts=now)
    put_message(d, "alice", "two", room="general", server_ts=now)
    last = put_message(d, "dev1", "three", recipient="alice", server_ts=now - 2 * DAY_MS)
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    old_day = time.strftime("%Y-%m-%d", time.gmtime((now - 2 * DAY_MS) / 1000))
    lines = ok(d, "stats").out.splitlines()
    values = dict(ln.split(" ", 1) for ln in lines)
    assert len(values) == len(lines)
    # The room's three membership events (created, two joined) are
    # archived messages too.
    expect = {"users": "3", "users_by_kind.user": "1", "users_by_kind.device": "1",
              "users_by_kind.service": "1", "users_disabled": "1", "rooms": "1", "members": "2",
              "invites": "1", "messages": "6", "invalid": "0", "last_seq": str(last),
              "by_day." + day: "5", "by_day." + old_day: "1"}
    for k, v in expect.items():
        assert values.get(k) == v, (k, lines)
    assert int(values["auth_db_bytes"]) >= os.path.getsize(os.path.join(d, "auth.db")) > 0
    assert int(values["archive_db_bytes"]) >= os.path.getsize(os.path.join(d, "archive.db")) > 0
    doc = json.loads(ok(d, "stats", "--json").out)
    assert doc["users"] == 3 and doc["messages"] == 6 and doc["by_day"] == {day: 5, old_day: 1}
    assert doc["users_by_kind"] == {"user": 1, "device": 1, "service": 1}
    assert "db_bytes" not in doc


def test_help_and_global_options(initdir):
    d = initdir
    r = ok(None, "--help")
    for c in ("run", "init", "user", "room", "invite", "purge", "stats"):
        assert "\n  %s " % c in r.out
    assert "exit status: 0 ok" in r.out
    assert ok(None, "help").out == r.out
    for c in ("init", "purge", "stats"):
        assert ok(d, c, "--help").out.startswith("usage: mqchat-archiver [--data DIR] %s" % c)
    assert ok(None, "--data=" + d, "user", "list").out == ok(None, "-d", d, "user", "list").out
    r = cli(None)
    assert r.rc == USAGE and r.out == "" and r.err.startswith("Error: missing command\n"), r
    fails(None, USAGE, "--bogus", "user", "list", err="unknown option '--bogus' (see `mqchat-archiver --help`)")
    fails(None, USAGE, "--data", err="option '--data' needs an argument (see `mqchat-archiver --help`)")
    fails(None, USAGE, "--data", "", "user", "list", err="empty --data folder")
    fails(d, USAGE, "frobnicate", err="unknown command 'frobnicate' (see `mqchat-archiver --help`)")
    fails(d, USAGE, "stats", "--bogus", err="unknown option '--bogus' (see `mqchat-archiver stats --help`)")
    fails(d, USAGE, "init", "extra", err="unexpected argument")


def test_concurrent_inits(datadir):
    """Several inits at once: all succeed, one account, one password file
    that matches it."""
    d = os.path.join(datadir, "data")
    procs = [subprocess.Popen([harness.ARCHIVER, "--data", d, "init"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
             for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        results.append((p.returncode, out, err))
    assert all(rc == 0 and err == "" for rc, out, err in results), results
    made = [out for rc, out, err in results if "created service account archiver" in out]
    assert len(made) == 1, results
    with open(os.path.join(d, "archiver.pw")) as f:
        pw = f.read().rstrip("\n")
    assert verify_password(auth_rows(d, "SELECT pwhash FROM users WHERE name='archiver'")[0][0], pw)
    assert sorted(os.listdir(d)) == ["archive.db", "archiver.pw", "auth.db", "vapid.pem"]
