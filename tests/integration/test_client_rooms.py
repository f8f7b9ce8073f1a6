"""test_client_rooms.py - the client's room, privacy and contacts commands
(client/README.md; docs/PROTOCOL.md, "Rooms run by their members" and
"Privacy: presence, contacts and room adds") against the real broker,
plugin and archiver: what each prints, its exit code, every error answer
said in words; and the membership events as listen and history show them."""
import json
import re

import pytest

import harness
from client_util import (ARCHIVER_PASSWORD, FAILED, OK, PASSWORD, TIMEOUT, USAGE,  # noqa: F401
                         Listener, add_archiver_account, archivers, events, mqchat, ok, texts,
                         users)
from plugin_util import expect_none, get, login

ROOM_SUBS = ["create", "add", "remove", "promote", "demote", "set", "leave", "delete", "info"]
# Each command as run for help and option checks: its words and operands.
COMMANDS = [["room", s, "hikers"] + (["bob"] if s in ("add", "remove", "promote", "demote")
                                     else []) for s in ROOM_SUBS] + \
    [["privacy"], ["contacts"], ["contacts", "add", "bob"], ["contacts", "remove", "bob"]]
SINCE = re.compile(r"^bob \(since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$")


@pytest.fixture
def world(store, make_broker, datadir, archivers):
    users(store, "alice", "bob", "carol", "dave")
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice")
    return b


def fails(b, datadir, user, *args, rc=FAILED):
    """A run that fails with rc: nothing on stdout, its one line on stderr."""
    r = mqchat(b, datadir, user, *args)
    assert r.rc == rc and r.out == "" and r.err.count("\n") == 1, r
    return r.err.rstrip("\n")


# ---- the command line, decided before connecting ----

def offline(datadir, *args):
    return mqchat(None, datadir, "alice", *args, port=1)


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_and_unknown_option(datadir, cmd):
    path = " ".join(w for w in cmd if w in ROOM_SUBS + ["room", "privacy", "contacts"])
    for flag in ("--help", "-h"):
        r = offline(datadir, *cmd, flag)
        assert r.rc == OK and r.err == "" and r.out.startswith("usage: mqchat %s" % path), r
    r = offline(datadir, *cmd, "--bogus")
    assert (r.rc, r.out) == (USAGE, ""), r
    assert r.err == "Error: unknown option '--bogus' (see `mqchat %s --help`)\n" % path, r


def test_group_help_and_bad_words(datadir):
    r = offline(datadir, "room", "--help")
    assert r.rc == OK and r.err == "", r
    assert [ln.split()[3] for ln in r.out.splitlines()] == ROOM_SUBS
    assert offline(datadir, "contacts", "--help").out.splitlines() == [
        "usage: mqchat contacts [--json]", "usage: mqchat contacts add USER",
        "usage: mqchat contacts remove USER"]
    top = offline(datadir, "--help").out
    for line in ("\n  room create ROOM", "\n  privacy [", "\n  contacts add USER"):
        assert line in top
    r = offline(datadir, "room")
    assert r.rc == USAGE and r.err.startswith("Error: missing command after room\n"), r
    r = offline(datadir, "room", "join", "hikers")
    assert (r.rc, r.err) == (USAGE, "Error: unknown command 'room join' (see `mqchat room "
                                    "--help`)\n"), r
    r = offline(datadir, "room", "add", "Hikers", "bob")
    assert r.rc == USAGE and r.err.startswith("Error: invalid room name 'Hikers': "), r
    r = offline(datadir, "room", "add", "hikers", "bob", "Carol")
    assert r.rc == USAGE and r.err.startswith("Error: invalid user name 'Carol': "), r
    r = offline(datadir, "room", "promote", "hikers", "bob", "carol")
    assert r.rc == USAGE and r.err.startswith("Error: unexpected argument 'carol'"), r
    r = offline(datadir, "room", "set", "hikers")
    assert r.rc == USAGE and r.err.startswith("Error: nothing to change: give --title, "
                                              "--description or both\n"), r
    r = offline(datadir, "privacy", "--presence", "friends")
    assert r.rc == USAGE and r.err.startswith(
        "Error: --presence: expected everyone, contacts or nobody, not 'friends'\n"), r
    r = offline(datadir, "contacts", "add")
    assert (r.rc, r.err) == (USAGE, "usage: mqchat contacts add USER\n"), r


# ---- privacy and contacts ----

def test_privacy_shows_and_sets(world, datadir):
    b = world
    assert ok(b, datadir, "alice", "privacy").out == "presence: contacts\nroom adds: contacts\n"
    r = ok(b, datadir, "alice", "privacy", "--presence", "everyone")
    assert r.out == "presence: everyone\nroom adds: contacts\n"
    r = ok(b, datadir, "alice", "privacy", "--room-adds", "nobody", "--json")
    assert json.loads(r.out) == {"ok": True, "presence": "everyone", "room_adds": "nobody"}
    r = ok(b, datadir, "alice", "privacy", "--presence=nobody", "--room-adds", "contacts")
    assert r.out == "presence: nobody\nroom adds: contacts\n"
    # bob's are his own
    assert ok(b, datadir, "bob", "privacy").out == "presence: contacts\nroom adds: contacts\n"


def test_contacts_add_list_remove(world, datadir):
    b = world
    assert ok(b, datadir, "alice", "contacts").out == ""
    assert ok(b, datadir, "alice", "contacts", "add", "bob").out == "bob added to your contacts\n"
    r = ok(b, datadir, "alice", "contacts")
    assert SINCE.match(r.out.rstrip("\n")) and r.out.count("\n") == 1, r
    doc = json.loads(ok(b, datadir, "alice", "contacts", "--json").out)
    assert doc["user"] == "bob" and isinstance(doc["since"], int)
    r = ok(b, datadir, "alice", "contacts", "remove", "bob")
    assert r.out == "bob removed from your contacts\n"
    assert ok(b, datadir, "alice", "contacts").out == ""
    # removing one who is none is no error (the contract)
    ok(b, datadir, "alice", "contacts", "remove", "bob")
    assert fails(b, datadir, "alice", "contacts", "add", "nemo") == \
        "Error: cannot add nemo to your contacts: no such user nemo"
    assert fails(b, datadir, "alice", "contacts", "add", "alice").startswith(
        "Error: cannot add alice to your contacts: ")


def test_without_archiver_the_op_is_named(store, make_broker, datadir):
    users(store, "alice")
    b = make_broker()
    r = mqchat(b, datadir, "alice", "contacts", "add", "bob", timeout=1)
    assert r.rc == TIMEOUT and r.err == "Error: cannot add bob to your contacts: no answer from " \
        "the archiver within 1 s (is it running?)\n", r
    r = mqchat(b, datadir, "alice", "room", "create", "hikers", timeout=1)
    assert r.rc == TIMEOUT and r.err.startswith("Error: cannot create room hikers: no answer"), r


# ---- membership events, as listen shows them ----

def test_events_are_lines_without_receipts(store, make_broker, datadir, archivers, clients):
    """Events published by hand from the archiver's account (a service)."""
    users(store, "alice", "bob")
    store.add_room("team", ["alice", "bob"])
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice")
    arch = login(clients, b, "archiver", ARCHIVER_PASSWORD, client_id="archiver@test", v5=True)
    # alice's notices: a receipt sent to the archiver would be refused, and said here
    watch = login(clients, b, "alice", PASSWORD, client_id="alice@watch", v5=True)
    assert watch.subscribe("chat/notice/alice") == 1
    sent = [{"event": "added", "user": "carol", "by": "bob"}, {"event": "joined", "user": "dave"},
            {"event": "promoted", "user": "carol", "by": "bob"}, {"event": "changed", "by": "bob"},
            {"event": "left", "user": "dave"}]
    with Listener(b, datadir, "alice", timeout=5) as alice, \
            Listener(b, datadir, "bob", "--json", device="json", timeout=5) as bob:
        alice.wait_ready()
        bob.wait_ready()
        for i, ev in enumerate(sent):
            arch.publish("chat/room/team/archiver", dict(ev, id="ev-%d" % i, type="event",
                                                         ts=1764892801000 + i))
        arch.publish("chat/room/team/archiver", dict(sent[0], id="ev-0", type="event"))  # again
        ok(b, datadir, "bob", "send", "--room", "team", "after the events")
        alice.wait_texts(1)
        assert events(alice.lines()) == [
            ("team", "bob added carol"), ("team", "dave joined"),
            ("team", "bob promoted carol to admin"),
            ("team", "bob changed the title or description"), ("team", "dave left")]
        assert len(alice.lines()) == 6, alice.lines()
        # bob: the 5 events, then alice's receipt of his text (his own text is not echoed)
        harness.wait_for(lambda: len(bob.lines()) == 6, harness.DEFAULT_TIMEOUT,
                         what="6 lines (have %r)" % bob.lines())
        got = [json.loads(ln) for ln in bob.lines()]
        assert got[0] == {"id": "ev-0", "type": "event", "event": "added", "user": "carol",
                          "by": "bob", "ts": 1764892801000, "from": "archiver", "room": "team"}
        assert [g["type"] for g in got] == ["event"] * 5 + ["receipt"] and \
            got[5]["from"] == "alice", got
        assert "warning" not in alice.errors() + bob.errors()
    # alice answered the text, never the events: no refused receipt to the archiver
    expect_none(watch)
    watch.publish("chat/inbox/archiver/alice", {"id": "r1", "type": "receipt", "ref": "ev-0",
                                                "status": "read"})
    assert json.loads(get(watch).payload)["ref"] == "r1"   # and it would have been said


# ---- rooms (the archiver's room_* ops) ----

def rooms(b, datadir, user):
    """`rooms` as {room: (the line's head, sorted members)}."""
    out = {}
    for ln in ok(b, datadir, user, "rooms").out.splitlines():
        head, members = ln.split(": ", 1) if ": " in ln else (ln.rstrip(":"), "")
        out[head.split()[0]] = (head, sorted(members.split()))
    return out


def test_room_lifecycle(world, datadir):
    b = world
    ok(b, datadir, "bob", "contacts", "add", "alice")     # bob lets alice add him
    ok(b, datadir, "carol", "privacy", "--room-adds", "everyone")
    r = ok(b, datadir, "alice", "room", "create", "hikers", "--title", "Hikers",
           "--description", "Sundays")
    assert r.out == "room hikers created\n"
    r = ok(b, datadir, "alice", "room", "add", "hikers", "bob", "carol")
    assert r.out == "bob added to hikers\ncarol added to hikers\n"
    assert rooms(b, datadir, "alice") == {"hikers": ('hikers "Hikers" (owner)',
                                                     ["alice", "bob", "carol"])}
    assert rooms(b, datadir, "bob")["hikers"][0] == 'hikers "Hikers"'
    doc = json.loads(ok(b, datadir, "alice", "rooms", "--json").out)
    assert doc["title"] == "Hikers" and doc["role"] == "owner"

    assert ok(b, datadir, "alice", "room", "promote", "hikers", "bob").out == \
        "bob is now an admin of hikers\n"
    assert rooms(b, datadir, "bob")["hikers"][0] == 'hikers "Hikers" (admin)'
    r = ok(b, datadir, "bob", "room", "set", "hikers", "--title", "Hikers 2026")
    assert r.out == "room hikers changed\n"
    lines = ok(b, datadir, "carol", "room", "info", "hikers").out.splitlines()
    assert lines[:4] == ["room: hikers", "title: Hikers 2026", "description: Sundays",
                         "owner: alice"]
    assert re.match(r"^created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", lines[4]), lines
    assert lines[5] == "members: alice (owner), bob (admin), carol" and len(lines) == 6, lines
    doc = json.loads(ok(b, datadir, "carol", "room", "info", "hikers", "--json").out)
    assert doc["room"] == "hikers" and doc["owner"] == "alice" and \
        {m["user"]: m["role"] for m in doc["members"]} == {"alice": "owner", "bob": "admin",
                                                           "carol": "member"}
    assert ok(b, datadir, "alice", "room", "demote", "hikers", "bob").out == \
        "bob is now a member of hikers\n"
    assert ok(b, datadir, "alice", "room", "remove", "hikers", "carol").out == \
        "carol removed from hikers\n"
    assert ok(b, datadir, "bob", "room", "leave", "hikers").out == "you left hikers\n"
    assert rooms(b, datadir, "bob") == {}
    assert ok(b, datadir, "alice", "room", "delete", "hikers").out == "room hikers deleted\n"
    assert rooms(b, datadir, "alice") == {}


def test_room_errors_in_words(world, datadir):
    b = world
    ok(b, datadir, "bob", "privacy", "--room-adds", "everyone")
    ok(b, datadir, "alice", "room", "create", "hikers")
    ok(b, datadir, "alice", "room", "add", "hikers", "bob")
    not_admin = "you are not the room's owner or an admin"
    said = [  # who, what, the words after "Error: cannot "
        ("carol", "create hikers", "create room hikers: room hikers exists already (or was "
         "deleted less than 30 days ago)"),
        ("carol", "info hikers", "show room hikers: you are in no room hikers"),
        ("alice", "leave nowhere", "leave nowhere: you are in no room nowhere"),
        ("alice", "add hikers nemo", "add nemo to hikers: no such user nemo, or you are in no "
         "room hikers"),
        # dave lets only his contacts add him
        ("alice", "add hikers dave", "add dave to hikers: " + not_admin + ", or they do not let "
         "you add them (they may add you as a contact, or set room adds to everyone)"),
        # a member is no admin
        ("bob", "set hikers --title Mine", "change room hikers: " + not_admin),
        ("bob", "delete hikers", "delete room hikers: " + not_admin),
        ("alice", "remove hikers carol", "remove carol from hikers: carol is not a member of "
         "hikers"),
        ("alice", "promote hikers carol", "promote carol in hikers: carol is not a member of "
         "hikers"),
        ("alice", "promote hikers bob", None),
        ("bob", "demote hikers alice", "demote alice in hikers: " + not_admin + ", or they own "
         "it (an owner cannot be demoted)"),
        ("bob", "remove hikers alice", "remove alice from hikers: " + not_admin + ", or they "
         "own it (an owner cannot be removed)"),
    ]
    for who, what, words in said:
        if words is None:
            ok(b, datadir, who, "room", *what.split())
        else:
            assert fails(b, datadir, who, "room", *what.split()) == "Error: cannot " + words
    e = "Error: cannot "
    # an invalid title is the archiver's to judge: its words, and the code
    r = mqchat(b, datadir, "alice", "room", "set", "hikers", "--title", "x" * 101)
    assert r.rc == FAILED and r.err.startswith(e + "change room hikers: ") and \
        r.err.endswith("(bad_request)\n"), r
    # several people: one refused, the others still added, exit 1
    ok(b, datadir, "carol", "privacy", "--room-adds", "everyone")
    r = mqchat(b, datadir, "alice", "room", "add", "hikers", "dave", "carol")
    assert r.rc == FAILED and r.out == "carol added to hikers\n", r
    assert r.err.startswith(e + "add dave to hikers: "), r


def test_listen_shows_membership_events(world, datadir):
    b = world
    for who in ("bob", "carol", "dave"):
        ok(b, datadir, who, "privacy", "--room-adds", "everyone")
    ok(b, datadir, "alice", "room", "create", "hikers")
    ok(b, datadir, "alice", "room", "add", "hikers", "bob")
    ok(b, datadir, "alice", "room", "promote", "hikers", "bob")
    with Listener(b, datadir, "alice", timeout=5) as alice:
        alice.wait_ready()
        ok(b, datadir, "alice", "room", "add", "hikers", "carol")
        # carol's listen subscribes to the rooms she is in when it starts
        with Listener(b, datadir, "carol", "--json", timeout=5) as carol_json:
            carol_json.wait_ready()
            ok(b, datadir, "bob", "room", "add", "hikers", "dave")
            ok(b, datadir, "bob", "send", "--room", "hikers", "welcome dave")
            ok(b, datadir, "dave", "room", "leave", "hikers")
            harness.wait_for(lambda: len(events(alice.lines())) >= 3, harness.DEFAULT_TIMEOUT,
                             what="3 events (have %r)" % alice.lines())
            assert events(alice.lines()) == [("hikers", "alice added carol"),
                                              ("hikers", "bob added dave"),
                                              ("hikers", "dave left")]
            # an event is no text: the message between them is the only one
            assert texts(alice.lines()) == [("hikers", "bob", "welcome dave")]
            harness.wait_for(lambda: len(carol_json.lines()) >= 3, harness.DEFAULT_TIMEOUT,
                             what="3 lines (have %r)" % carol_json.lines())
            got = [json.loads(ln) for ln in carol_json.lines()]
            assert [(g["type"], g.get("event"), g.get("user"), g.get("by")) for g in got] == [
                ("event", "added", "dave", "bob"), ("text", None, None, None),
                ("event", "left", "dave", "dave")]
            assert got[0]["room"] == "hikers" and got[0]["from"] == "archiver"
            assert "warning" not in alice.errors() + carol_json.errors()
    # history shows them the same way, oldest first, with the date
    lines = ok(b, datadir, "alice", "history", "--room", "hikers").out.splitlines()
    shown = [ln.split("] ", 1)[1] for ln in lines]
    assert shown[-4:] == ["#hikers * alice added carol", "#hikers * bob added dave",
                          "#hikers bob: welcome dave", "#hikers * dave left"], lines
    assert all(re.match(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ", ln) for ln in lines)
