"""test_cli_room.py - `mqchat-archiver room ...`: output, exit codes, bad input."""
import json
import os
import sqlite3

import pytest

from cli_util import (BAD_NAMES, EXISTS, INVALID, NOTFOUND, RUNTIME, USAGE, add_user, auth_rows,
                      fails, initdir, ok)  # noqa: F401


def members(d):
    return auth_rows(d, "SELECT room, user FROM members ORDER BY room, user")


@pytest.fixture
def people(initdir):
    for u in ("alice", "bob", "carol"):
        add_user(initdir, u)
    return initdir


def test_create_add_list(people):
    d = people
    assert ok(d, "room", "create", "general").out == "room general created\n"
    assert ok(d, "room", "create", "ops.team-1", "--retention", "7").out == "room ops.team-1 created\n"
    assert auth_rows(d, "SELECT name, retention_days FROM rooms ORDER BY name") == [
        ("general", 0), ("ops.team-1", 7)]
    assert ok(d, "room", "add", "general", "alice", "bob").out == (
        "alice added to general\nbob added to general\n")
    ok(d, "room", "add", "ops.team-1", "carol")
    assert ok(d, "room", "list").out == "general - alice bob\nops.team-1 7 carol\n"
    rooms = json.loads(ok(d, "room", "list", "--json").out)
    assert [(r["name"], r["retention_days"], r["members"]) for r in rooms] == [
        ("general", 0, ["alice", "bob"]), ("ops.team-1", 7, ["carol"])]
    assert ok(d, "user", "show", "alice").out.splitlines()[5] == "rooms general"


def test_empty_list(initdir):
    assert ok(initdir, "room", "list").out == ""
    assert json.loads(ok(initdir, "room", "list", "--json").out) == []


def test_bad_room_names(people):
    d = people
    ok(d, "room", "create", "general")
    for name in BAD_NAMES:
        for cmd in (["create", name], ["add", name, "alice"], ["remove", name, "alice"], ["del", name]):
            r = fails(d, INVALID, "room", *cmd)
            assert "invalid room name" in r.err, (name, r)
        r = fails(d, INVALID, "room", "add", "general", "alice", name)
        assert "invalid user name" in r.err, (name, r)
    assert auth_rows(d, "SELECT name FROM rooms") == [("general",)]
    assert members(d) == []


def test_duplicates_change_nothing(people):
    d = people
    ok(d, "room", "create", "general")
    fails(d, EXISTS, "room", "create", "general", err="room 'general' already exists")
    ok(d, "room", "add", "general", "alice")
    # All or nothing: bob is not added because alice already is.
    fails(d, EXISTS, "room", "add", "general", "bob", "alice",
          err="'alice' is already a member of 'general'")
    fails(d, EXISTS, "room", "add", "general", "carol", "carol",
          err="'carol' is already a member of 'general'")
    assert members(d) == [("general", "alice")]


def test_unknown_change_nothing(people):
    d = people
    ok(d, "room", "create", "general")
    fails(d, NOTFOUND, "room", "add", "nowhere", "alice", err="no such room 'nowhere'")
    fails(d, NOTFOUND, "room", "add", "general", "bob", "nobody", err="no such user 'nobody'")
    assert members(d) == []
    ok(d, "room", "add", "general", "alice", "bob")
    fails(d, NOTFOUND, "room", "remove", "nowhere", "alice", err="no such room 'nowhere'")
    fails(d, NOTFOUND, "room", "remove", "general", "alice", "carol",
          err="'carol' is not a member of 'general'")
    assert members(d) == [("general", "alice"), ("general", "bob")]
    fails(d, NOTFOUND, "room", "del", "nowhere", err="no such room 'nowhere'")


def test_remove_and_del(people):
    d = people
    ok(d, "room", "create", "general")
    ok(d, "room", "create", "other")
    ok(d, "room", "add", "general", "alice", "bob", "carol")
    ok(d, "room", "add", "other", "alice")
    assert ok(d, "room", "remove", "general", "alice", "carol").out == (
        "alice removed from general\ncarol removed from general\n")
    assert members(d) == [("general", "bob"), ("other", "alice")]
    assert ok(d, "room", "del", "general").out == "room general deleted\n"
    assert members(d) == [("other", "alice")]
    assert ok(d, "room", "list").out == "other - alice\n"


def test_bad_retention(people):
    for days in ["0", "-1", "abc", "36501", "7d", "", " 7"]:
        r = fails(people, USAGE, "room", "create", "general", "--retention", days,
                  err="--retention needs a number of days (1..36500)")
        assert "usage: mqchat-archiver [--data DIR] room create ROOM" in r.err
    assert auth_rows(people, "SELECT name FROM rooms") == []


def test_usage(people):
    d = people
    fails(d, USAGE, "room", "add", "general", err="missing argument")
    fails(d, USAGE, "room", "create", err="expected one room name")
    fails(d, USAGE, "room", "del", "a", "b", err="too many arguments")
    fails(d, USAGE, "room", "list", "--bogus",
          err="unknown option '--bogus' (see `mqchat-archiver room list --help`)")
    fails(d, USAGE, "room", "rename", "a", err="unknown command 'room rename' (see `mqchat-archiver room --help`)")
    assert "  room create ROOM [--retention DAYS]" in ok(d, "room", "--help").out


def test_locked(people):
    d = people
    ok(d, "room", "create", "general")
    db = sqlite3.connect(os.path.join(d, "auth.db"), isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        env = {"MQCHAT_BUSY_TIMEOUT_MS": "300"}
        fails(d, RUNTIME, "room", "add", "general", "alice", env=env, err="database is locked")
        fails(d, RUNTIME, "room", "create", "x", env=env, err="database is locked")
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert members(d) == []
