"""test_cli_invite.py - `mqchat-archiver invite ...`: codes, listing, revoking."""
import json
import os
import re
import sqlite3
import time

import pytest

from cli_util import INVALID, NOTFOUND, USAGE, auth_rows, fails, initdir, ok  # noqa: F401

CODE = re.compile(r"^[A-Za-z0-9_-]{22}$")
HOUR_MS = 3600 * 1000


def test_create_list_revoke(initdir):
    d = initdir
    t0 = int(time.time() * 1000)
    a = ok(d, "invite", "create").out
    b = ok(d, "invite", "create", "--uses", "5", "--expires", "2").out
    c = ok(d, "invite", "create", "--expires", "0").out
    t1 = int(time.time() * 1000)
    codes = [x.rstrip("\n") for x in (a, b, c)]
    assert all(x.endswith("\n") and x.count("\n") == 1 for x in (a, b, c))
    assert all(CODE.match(x) for x in codes), codes
    assert len(set(codes)) == 3
    rows = dict((r[0], r[1:]) for r in auth_rows(d, "SELECT code, uses_left, expires FROM invites"))
    assert rows[codes[0]][0] == 1 and t0 + 168 * HOUR_MS <= rows[codes[0]][1] <= t1 + 168 * HOUR_MS
    assert rows[codes[1]][0] == 5 and t0 + 2 * HOUR_MS <= rows[codes[1]][1] <= t1 + 2 * HOUR_MS
    assert rows[codes[2]] == (1, 0)

    lines = ok(d, "invite", "list").out.splitlines()
    assert len(lines) == 3
    by_code = {ln.split()[0]: ln.split()[1:] for ln in lines}
    assert by_code[codes[1]][0] == "5" and by_code[codes[1]][2] == "valid"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", by_code[codes[1]][1])
    assert by_code[codes[2]] == ["1", "never", "valid"]
    listed = json.loads(ok(d, "invite", "list", "--json").out)
    assert {x["code"]: (x["uses_left"], x["state"]) for x in listed} == {
        codes[0]: (1, "valid"), codes[1]: (5, "valid"), codes[2]: (1, "valid")}

    assert ok(d, "invite", "revoke", codes[1]).out == "invite %s revoked\n" % codes[1]
    assert sorted(r[0] for r in auth_rows(d, "SELECT code FROM invites")) == sorted([codes[0], codes[2]])
    fails(d, NOTFOUND, "invite", "revoke", codes[1], err="no such invite '%s'" % codes[1])


def test_states(initdir):
    d = initdir
    now = int(time.time() * 1000)
    db = sqlite3.connect(os.path.join(d, "auth.db"), isolation_level=None)
    db.execute("INSERT INTO invites(code, uses_left, expires, created) VALUES('old', 3, ?, ?)",
               (now - 1000, now - 5000))
    db.execute("INSERT INTO invites(code, uses_left, expires, created) VALUES('spent', 0, 0, ?)",
               (now - 4000,))
    db.close()
    out = ok(d, "invite", "list").out.splitlines()
    assert [ln.split()[0] + " " + ln.split()[-1] for ln in out] == ["old expired", "spent used"]


@pytest.mark.parametrize("code", ["a/b", "+", "x" * 65, "' OR 1=1", "", "a b"])
def test_bad_codes(initdir, code):
    r = fails(initdir, INVALID, "invite", "revoke", code)
    assert r.err.startswith("Error: invalid invite code")


@pytest.mark.parametrize("args,why", [
    (["--uses", "0"], "--uses needs a number (1..1000000)"),
    (["--uses", "many"], "--uses needs a number (1..1000000)"),
    (["--uses", "-3"], "--uses needs a number (1..1000000)"),
    (["--expires", "-1"], "--expires needs a number of hours (0 for never, up to 876000)"),
    (["--expires", "1.5"], "--expires needs a number of hours (0 for never, up to 876000)"),
    (["--uses"], "option '--uses' needs an argument (see `mqchat-archiver invite create --help`)"),
    (["extra"], "unexpected argument"),
])
def test_bad_options(initdir, args, why):
    fails(initdir, USAGE, "invite", "create", *args, err=why)
    assert auth_rows(initdir, "SELECT * FROM invites") == []
