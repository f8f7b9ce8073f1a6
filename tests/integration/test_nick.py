"""test_nick.py - the nick rule on every path that sets a nick: the CLI's
`user add --nick` and `user nick`, the `profile` RPC and registration
(common/nick.h, docs/PROTOCOL.md "Nicks").

A nick may hold no control, bidirectional or invisible character and no
space at either end, and may not look like another account's name or nick
(case, spaces, `_ - .`, accents, fullwidth forms and Latin look-alikes in
Greek and Cyrillic folded away). Every refusal says which character at
which position, or whose name it copies."""
import os
import sqlite3
import subprocess

import pytest

import harness
from archiver_util import Rpc, arch_env  # noqa: F401 (fixture)
from cli_util import (EXISTS, INVALID, NOTFOUND, OK, PASSWORD, add_user, auth_rows, cli, fails,
                      initdir)  # noqa: F401 (fixture)
from test_archiver_register import Reg

# (nick, the character named in the refusal, its position)
BAD = [
    ("Bob\u202ecba", "U+202E RIGHT-TO-LEFT OVERRIDE", 4),
    ("\u202aBob", "U+202A LEFT-TO-RIGHT EMBEDDING", 1),
    ("B\u202bob", "U+202B RIGHT-TO-LEFT EMBEDDING", 2),
    ("Bo\u202cb", "U+202C POP DIRECTIONAL FORMATTING", 3),
    ("Bo\u202db", "U+202D LEFT-TO-RIGHT OVERRIDE", 3),
    ("Bob\u2066x", "U+2066 LEFT-TO-RIGHT ISOLATE", 4),
    ("Bob\u2067x", "U+2067 RIGHT-TO-LEFT ISOLATE", 4),
    ("Bob\u2068x", "U+2068 FIRST STRONG ISOLATE", 4),
    ("Bob\u2069x", "U+2069 POP DIRECTIONAL ISOLATE", 4),
    ("Bob\u200e", "U+200E LEFT-TO-RIGHT MARK", 4),
    ("Bob\u200f", "U+200F RIGHT-TO-LEFT MARK", 4),
    ("Bo\u061cb", "U+061C ARABIC LETTER MARK", 3),
    ("Bo\u200bb", "U+200B ZERO WIDTH SPACE", 3),
    ("Bo\u200cb", "U+200C ZERO WIDTH NON-JOINER", 3),
    ("Bo\u200db", "U+200D ZERO WIDTH JOINER", 3),
    ("Bo\u2060b", "U+2060 WORD JOINER", 3),
    ("\ufeffBob", "U+FEFF ZERO WIDTH NO-BREAK SPACE", 1),
    ("Bo\u00adb", "U+00AD SOFT HYPHEN", 3),
    ("Bo\tb", "U+0009", 3),
    ("Bo\nb", "U+000A", 3),
    ("Bo\x1bb", "U+001B", 3),
    ("Bo\x7fb", "U+007F", 3),
    ("Bo\x85b", "U+0085", 3),
    ("Bo\x9fb", "U+009F", 3),
    (" Bob", "U+0020", 1),
    ("Bob ", "U+0020", 4),
    ("\u00a0Bob", "U+00A0", 1),
    ("Bob\u3000", "U+3000", 4),
]


def reason(char, pos):
    return "%s at character %d " % (char, pos)


# ---- the CLI ----

@pytest.mark.parametrize("nick,char,pos", BAD)
def test_cli_refuses_bad_characters(initdir, nick, char, pos):
    d = initdir
    r = fails(d, INVALID, "user", "add", "carol", "--nick", nick, "--password-stdin",
              stdin=PASSWORD + "\n")
    assert "invalid nick '" in r.err and reason(char, pos) in r.err, r
    add_user(d, "carol")
    r = fails(d, INVALID, "user", "nick", "carol", nick)
    assert reason(char, pos) in r.err, r
    assert auth_rows(d, "SELECT nick FROM users WHERE name='carol'") == [("carol",)]


def test_cli_refuses_empty_and_long(initdir):
    fails(initdir, INVALID, "user", "add", "carol", "--nick", "", "--password-stdin",
          stdin=PASSWORD + "\n", err="invalid nick '': empty: a nick is 1..64 bytes of UTF-8")
    fails(initdir, INVALID, "user", "add", "carol", "--nick", "x" * 65, "--password-stdin",
          stdin=PASSWORD + "\n")


@pytest.mark.parametrize("copy", ["Bob", "BOB", "b o b", "B0B", "b.o_b", "\uff22\uff2f\uff22",
                                  "\u0412\u041e\u0412", "\u0392\u039f\u0392", "B\u00f6b"])
def test_cli_refuses_a_copy_of_a_name(initdir, copy):
    d = initdir
    add_user(d, "bob")
    fails(d, EXISTS, "user", "add", "alice", "--nick", copy, "--password-stdin",
          stdin=PASSWORD + "\n", err="the nick '%s' looks like the name of account 'bob'" % copy)
    add_user(d, "alice")
    fails(d, EXISTS, "user", "nick", "alice", copy,
          err="the nick '%s' looks like the name of account 'bob'" % copy)
    assert auth_rows(d, "SELECT nick FROM users WHERE name='alice'") == [("alice",)]


def test_cli_nicks_and_names_stay_apart(initdir):
    d = initdir
    add_user(d, "carol", PASSWORD, "--nick", "Captain")
    # another account's nick
    fails(d, EXISTS, "user", "add", "dave", "--nick", "CAPTAIN", "--password-stdin",
          stdin=PASSWORD + "\n", err="the nick 'CAPTAIN' looks like the nick of account 'carol'")
    # a new name that looks like a name or a nick
    fails(d, EXISTS, "user", "add", "car0l", "--password-stdin", stdin=PASSWORD + "\n",
          err="the name 'car0l' looks like the name of account 'carol'")
    fails(d, EXISTS, "user", "add", "captain", "--nick", "Cap", "--password-stdin",
          stdin=PASSWORD + "\n", err="the name 'captain' looks like the nick of account 'carol'")
    # the service account is an account like any other
    fails(d, EXISTS, "user", "add", "dave", "--nick", "Archiver", "--password-stdin",
          stdin=PASSWORD + "\n", err="the nick 'Archiver' looks like the name of account 'archiver'")
    # one's own name and nick, in any case, and anything else
    add_user(d, "dave", PASSWORD, "--nick", "Dave")
    assert cli(d, "user", "nick", "dave", "DAVE").out == "nick of dave changed\n"
    assert cli(d, "user", "nick", "carol", "carol").rc == OK
    assert cli(d, "user", "nick", "carol", "\u0421aptain \u2603").rc == OK   # her own, Cyrillic C
    assert cli(d, "user", "nick", "dave", "Dave \u2014 the \u00e9diteur").rc == OK
    assert auth_rows(d, "SELECT name, nick FROM users WHERE name IN ('carol', 'dave') ORDER BY name") == [
        ("carol", "\u0421aptain \u2603"), ("dave", "Dave \u2014 the \u00e9diteur")]
    fails(d, NOTFOUND, "user", "nick", "nobody", "Nobody", err="no such user 'nobody'")


def test_cli_a_nick_from_before_the_rule_is_compared_without_its_controls(initdir):
    d = initdir
    add_user(d, "mallory")
    # Written before the rule existed (the CLI would refuse it now).
    db = sqlite3.connect(os.path.join(d, "auth.db"), timeout=10)
    with db:
        db.execute("UPDATE users SET nick='Bo\u202eb' WHERE name='mallory'")
    db.close()
    fails(d, EXISTS, "user", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n",
          err="the name 'bob' looks like the nick of account 'mallory'")
    # ... and its owner can be given a proper one
    assert cli(d, "user", "nick", "mallory", "Mallory").rc == OK
    assert add_user(d, "bob").rc == OK


# ---- the profile RPC ----

@pytest.fixture
def chat(arch_env):
    env = arch_env(users=["alice", "bob", "carol"])
    env.store.sql("UPDATE users SET nick='Bobby' WHERE name='bob'")
    env.rpc = Rpc(env.user("alice"), "alice")
    return env


def alice_nick(env):
    return env.store.sql("SELECT nick FROM users WHERE name='alice'")[0][0]


def test_profile_refuses_bad_characters(chat):
    for nick, char, pos in BAD + [("", "empty", 0), ("x" * 65, "65 bytes long", 0)]:
        ans = chat.rpc.call("profile", nick=nick)
        assert ans["ok"] is False and ans["error"] == "invalid_nick", (nick, ans)
        want = reason(char, pos) if pos else char
        assert ans["message"].startswith('"nick": ') and want in ans["message"], (nick, ans)
    for bad in (5, None, ["Alice"]):
        assert chat.rpc.call("profile", nick=bad)["error"] == "bad_request", bad
    assert alice_nick(chat) == "alice"


def test_profile_refuses_a_copy(chat):
    ans = chat.rpc.call("profile", nick="B\u043eB")    # Cyrillic o
    assert ans == {"id": ans["id"], "ok": False, "error": "nick_taken",
                   "message": "that nick looks like the name of account 'bob'"}
    # Another's nick: the answer does not say whose (a nick does not lead
    # to the account behind it).
    ans = chat.rpc.call("profile", nick="b o b b y")
    assert ans["error"] == "nick_taken" and ans["message"] == "that nick looks like another account's nick"
    assert alice_nick(chat) == "alice"
    # One's own name, any case; then that nick is alice's.
    ans = chat.rpc.call("profile", nick="ALICE")
    assert ans["ok"] is True and ans["nick"] == "ALICE"
    ans = chat.rpc.call("profile", nick="Wonderland")
    assert ans["ok"] is True and alice_nick(chat) == "Wonderland"
    crpc = Rpc(chat.user("carol"), "carol")
    assert crpc.call("profile", nick="W0NDERLAND")["error"] == "nick_taken"
    assert crpc.call("profile", nick="Carol \u2603")["ok"] is True


# ---- registration ----

def test_registration_applies_the_rule(arch_env):
    env = arch_env(registration="open", users=["bob"])
    env.store.sql("UPDATE users SET nick='Bobby' WHERE name='bob'")
    r = Reg(env)
    for nick, char, pos in BAD:
        ans = r.call(user="carol", password="secret-pw-1", nick=nick)
        assert ans["error"] == "invalid_nick" and reason(char, pos) in ans["message"], (nick, ans)
    ans = r.call(user="carol", password="secret-pw-1", nick="BOB")
    assert (ans["error"], ans["message"]) == ("nick_taken", "that nick looks like the name of account 'bob'")
    ans = r.call(user="carol", password="secret-pw-1", nick="bobby")
    assert (ans["error"], ans["message"]) == ("nick_taken", "that nick looks like another account's nick")
    # the name itself: as taken as bob's
    ans = r.call(user="b0b", password="secret-pw-1")
    assert (ans["error"], ans["message"]) == ("taken", "that name looks like the name of account 'bob'")
    ans = r.call(user="bobby", password="secret-pw-1", nick="Robert")
    assert (ans["error"], ans["message"]) == ("taken", "that name looks like another account's nick")
    assert env.store.sql("SELECT count(*) FROM users") == [(2,)]   # bob and archiver
    # none of that used the client id up
    ans = r.call(user="carol", password="secret-pw-1", nick="Carol")
    assert ans["ok"] is True
    assert env.store.sql("SELECT nick FROM users WHERE name='carol'") == [("Carol",)]


# ---- the client checks before it sends ----

@pytest.mark.parametrize("cmd", [["profile", "--nick"], ["register", "carol", "--nick"]])
def test_client_refuses_a_bad_nick_before_connecting(cmd):
    # Port 1: nothing listens there, and nothing is tried.
    for nick, char, pos in BAD:
        p = subprocess.run([harness.CLIENT, "--port", "1", "--user", "alice"] + cmd + [nick],
                           env=dict(os.environ, MQCHAT_PASSWORD="alice-secret-1"),
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (nick, p)
        assert p.stderr.startswith("Error: not a nickname: " + reason(char, pos)), (nick, p.stderr)
