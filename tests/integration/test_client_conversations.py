"""test_client_conversations.py - the client's commands of the issue 17
contract (client/README.md; docs/PROTOCOL.md, "Every device in step",
"Replies and reactions", "Typing", "Conversations", "read", "Edit and
delete", "search") against the real broker, plugin and archiver:
conversations, read, edit, delete, react, send --reply-to, search; what
listen and chat show live (my own messages from my other devices, edits,
deletes, reactions, read markers, typing) and what history shows (replies,
edit marks, tombstones, reactions). Every bad input: its one clear error,
its exit code, and nothing sent or stored."""
import json
import re
import subprocess

import pytest

import cli_util
import harness
from client_util import (FAILED, OK, USAGE, Listener, add_archiver_account,  # noqa: F401
                         archivers, mqchat, ok, texts, users)
from plugin_util import login

WHEN = re.compile(r"^\[(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\] ")


@pytest.fixture
def world(store, make_broker, datadir, archivers):  # noqa: F811
    users(store, "alice", "bob", "carol", "dave")
    store.add_room("lobby", ["alice", "bob", "carol"])
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice")
    return b


def shown(lines):
    """Lines without their time stamp."""
    return [WHEN.sub("", ln) for ln in lines]


def fails(b, datadir, user, *args, rc=FAILED):
    """A run that fails with rc: nothing on stdout, its one line on stderr."""
    r = mqchat(b, datadir, user, *args)
    assert r.rc == rc and r.out == "" and r.err.count("\n") == 1, r
    return r.err.rstrip("\n")


def send(b, datadir, user, *args, device="test"):
    """Send one text; its id."""
    return ok(b, datadir, user, "send", *args, device=device).out.strip()


def until(b, datadir, user, *args, cond, what=None):
    """Run the command until cond(stdout lines) holds (the archiver stores
    what was sent a moment after the broker took it); the last lines."""
    seen = []

    def done():
        seen[:] = [ok(b, datadir, user, *args).out.splitlines()]
        return cond(seen[0])
    harness.wait_for(done, harness.DEFAULT_TIMEOUT,
                     what=(what or " ".join(args)) + " (last %r)" % (seen[:1],))
    return seen[0]


def wait_line(listener, line, timeout=harness.DEFAULT_TIMEOUT):
    """Until listener printed line (time stamp aside)."""
    harness.wait_for(lambda: line in shown(listener.lines()), timeout,
                     what="%r (have %r; stderr %r)" % (line, listener.lines(),
                                                      listener.errors()))


def history(b, datadir, user, *args):
    return shown(ok(b, datadir, user, "history", *args).out.splitlines())


# ---- the command line, decided before connecting ----

NEW_COMMANDS = [["conversations"], ["read", "bob"], ["edit", "m-1", "x"], ["delete", "m-1"],
                ["react", "bob", "bob", "m-1", "x"], ["search", "lunch"]]


@pytest.mark.parametrize("cmd", NEW_COMMANDS, ids=lambda c: c[0])
def test_help_and_unknown_option(datadir, cmd):
    for flag in ("--help", "-h"):
        r = mqchat(None, datadir, "alice", *cmd, flag, port=1)
        assert r.rc == OK and r.err == "" and r.out.startswith("usage: mqchat %s" % cmd[0]), r
    r = mqchat(None, datadir, "alice", *cmd, "--bogus", port=1)
    assert (r.rc, r.out) == (USAGE, ""), r
    assert r.err == "Error: unknown option '--bogus' (see `mqchat %s --help`)\n" % cmd[0], r
    top = mqchat(None, datadir, "alice", "--help", port=1).out
    assert "\n  %s" % cmd[0] in top


# Each: the arguments, and the start of the one error line (or the usage).
BAD_ARGUMENTS = [
    (["conversations", "--limit", "0"], "Error: --limit: expected 1..100"),
    (["conversations", "--limit", "101"], "Error: --limit: expected 1..100"),
    (["conversations", "--limit", "x"], "Error: --limit: expected 1..100"),
    (["conversations", "--before", "-1"], "Error: --before: expected a sequence number"),
    (["conversations", "bob"], "Error: unexpected argument 'bob'"),
    (["read"], "usage: mqchat read"),
    (["read", "Bob"], "Error: invalid user name 'Bob'"),
    (["read", "#Lobby"], "Error: invalid room name 'Lobby'"),
    (["read", "bob", "--seq", "x"], "Error: --seq: expected a sequence number"),
    (["read", "bob", "carol"], "Error: unexpected argument 'carol'"),
    (["edit", "m-1"], "usage: mqchat edit"),
    (["edit", "m 1", "new text"], "Error: invalid message id 'm 1'"),
    (["edit", "m-1", ""], "Error: empty message"),
    (["delete"], "usage: mqchat delete"),
    (["delete", "--room", "lobby", "m-1"], "Error: --room and --of go together"),
    (["delete", "--of", "bob", "m-1"], "Error: --room and --of go together"),
    (["delete", "--room", "Lobby", "--of", "bob", "m-1"], "Error: invalid room name 'Lobby'"),
    (["delete", "--room", "lobby", "--of", "Bob", "m-1"], "Error: invalid user name 'Bob'"),
    (["delete", "m/1"], "Error: invalid message id 'm/1'"),
    (["send", "#Lobby", "hi"], "Error: invalid room name 'Lobby'"),
    (["send", "#", "hi"], "Error: invalid room name ''"),
    (["history", "#Lobby"], "Error: invalid room name 'Lobby'"),
    (["history", "--room", "lobby", "#lobby"], "usage: mqchat history"),
    (["chat", "#Lobby"], "Error: invalid room name 'Lobby'"),
    (["chat", "--room", "lobby", "bob"], "usage: mqchat chat"),
    (["react", "bob", "bob", "m-1"], "usage: mqchat react"),
    (["react", "Bob", "bob", "m-1", "x"], "Error: invalid user name 'Bob'"),
    (["react", "#Lobby", "bob", "m-1", "x"], "Error: invalid room name 'Lobby'"),
    (["react", "bob", "Bob", "m-1", "x"], "Error: invalid user name 'Bob'"),
    (["react", "bob", "bob", "m 1", "x"], "Error: invalid message id 'm 1'"),
    (["react", "bob", "bob", "m-1", "thumbs up"], "Error: invalid reaction: "),
    (["react", "bob", "bob", "m-1", "x" * 33], "Error: invalid reaction: "),
    (["react", "bob", "bob", "m-1", "x", "y"], "Error: unexpected argument 'y'"),
    (["send", "bob", "--reply-to", "m-1", "hi"], "Error: --reply-to and --reply-from go together"),
    (["send", "bob", "--reply-from", "bob", "hi"],
     "Error: --reply-to and --reply-from go together"),
    (["send", "bob", "--reply-to", "m 1", "--reply-from", "bob", "hi"],
     "Error: --reply-to: invalid message id 'm 1'"),
    (["send", "bob", "--reply-to", "m-1", "--reply-from", "Bob", "hi"],
     "Error: invalid user name 'Bob'"),
    (["search"], "usage: mqchat search"),
    (["search", "lunch", "--with", "bob", "--room", "lobby"],
     "Error: give --with or --room, not both"),
    (["search", "lunch", "--limit", "0"], "Error: --limit: expected 1..100"),
    (["search", "lunch", "--with", "Bob"], "Error: invalid user name 'Bob'"),
    (["search", "lunch", "--room", "a/b"], "Error: invalid room name 'a/b'"),
    (["listen", "--typing=yes"], "Error: option '--typing' takes no argument"),
]


def test_bad_arguments_are_2_and_send_or_store_nothing(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        for args, err in BAD_ARGUMENTS:
            r = mqchat(b, datadir, "alice", *args)
            assert r.rc == USAGE, (args, r)
            assert r.err.startswith(err), (args, r)
            assert r.out == "" or r.out.startswith("usage:"), (args, r)
        ok(b, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(1)
        bob.stop()
        assert shown(bob.lines()) == ["alice: marker"], bob.lines()
    # the archive holds the marker only: nothing of the bad runs
    lines = until(b, datadir, "alice", "sync", "--json", cond=lambda ls: len(ls) >= 1)
    assert [json.loads(ln)["body"] for ln in lines] == ["marker"]


# ---- conversations and read ----

def test_conversations_list_and_read(world, datadir):
    b = world
    send(b, datadir, "alice", "bob", "hello bob")
    send(b, datadir, "bob", "alice", "hi alice")
    send(b, datadir, "alice", "--room", "lobby", "morning all")
    send(b, datadir, "alice", "alice", "note to self")
    send(b, datadir, "bob", "alice", "see you at lunch\nand after")
    lines = until(b, datadir, "alice", "conversations",
                  cond=lambda ls: len(ls) == 3 and "lunch" in ls[0])
    # newest first; my marker is at my own last text: bob's two are unread
    assert [re.sub(r"\[[-0-9: ]+\] ", "", ln) for ln in lines] == [
        "bob (2 unread): bob: see you at lunch...",
        "alice: me: note to self",
        "#lobby: me: morning all"], lines
    assert all(re.search(r": \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ", ln) for ln in lines), lines
    convs = [json.loads(ln) for ln in ok(b, datadir, "alice", "conversations", "--json").out
             .splitlines()]
    assert [c.get("with") or "#" + c["room"] for c in convs] == ["bob", "alice", "#lobby"]
    assert convs[0]["unread"] == 2 and convs[0]["last"]["body"] == "see you at lunch\nand after"
    # pages: --limit, then --before the oldest last_seq of the page
    r = ok(b, datadir, "alice", "conversations", "--limit", "2")
    assert len(r.out.splitlines()) == 2
    assert r.err == "(more conversations: --before %d)\n" % convs[1]["last_seq"], r
    r = ok(b, datadir, "alice", "conversations", "--before", str(convs[1]["last_seq"]))
    assert [re.sub(r"\[[-0-9: ]+\] ", "", ln) for ln in r.out.splitlines()] == [
        "#lobby: me: morning all"] and r.err == "", r

    # read: up to the newest by default
    r = ok(b, datadir, "alice", "read", "bob")
    assert r.out == "read up to seq %d with bob (0 unread)\n" % convs[0]["last_seq"], r
    assert ok(b, datadir, "alice", "conversations", "--limit", "1").out.startswith("bob: [")
    # bob's side is his own: alice's text is unread for him, until he reads it
    lines = ok(b, datadir, "bob", "conversations").out.splitlines()
    assert lines[0].startswith("alice: ") and lines[1].startswith("#lobby (1 unread): "), lines
    r = ok(b, datadir, "bob", "read", "#lobby", "--json")
    doc = json.loads(r.out)
    assert doc["ok"] is True and doc["unread"] == 0 and doc["read_seq"] == convs[2]["last_seq"]
    # --seq: the marker only moves forward
    r = ok(b, datadir, "alice", "read", "bob", "--seq", "1")
    assert r.out == "read up to seq %d with bob (0 unread)\n" % convs[0]["last_seq"], r

    # errors in words
    assert fails(b, datadir, "alice", "read", "nemo") == \
        "Error: cannot mark the conversation with nemo read: no messages with nemo"
    assert fails(b, datadir, "dave", "read", "#lobby") == \
        "Error: cannot mark the conversation in #lobby read: no messages in #lobby"
    assert fails(b, datadir, "alice", "read", "bob", "--seq", "999999") == \
        "Error: cannot mark the conversation with bob read: no message with seq 999999 " \
        "with bob (or no such user)"
    assert fails(b, datadir, "dave", "read", "#lobby", "--seq", str(convs[2]["last_seq"])) in (
        "Error: cannot mark the conversation in #lobby read: you are in no room lobby",
        "Error: cannot mark the conversation in #lobby read: no message with seq %d in #lobby "
        "(or you are in no such room)" % convs[2]["last_seq"])


def test_read_reaches_my_other_devices(world, datadir):
    b = world
    send(b, datadir, "bob", "alice", "are you there?")
    until(b, datadir, "alice", "conversations", cond=lambda ls: len(ls) == 1)
    with Listener(b, datadir, "alice", device="laptop", timeout=5) as laptop:
        laptop.wait_ready()
        r = ok(b, datadir, "alice", "read", "bob", device="phone")
        wait_line(laptop, r.out.rstrip("\n"))
        assert r.out.startswith("read up to seq ") and r.out.endswith(" with bob (0 unread)\n")


# ---- edit and delete ----

def test_edit_and_delete_my_own(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob, \
            Listener(b, datadir, "alice", device="laptop", timeout=5) as laptop, \
            Listener(b, datadir, "bob", "--json", device="json", timeout=5) as bob_json:
        for ln in (bob, laptop, bob_json):
            ln.wait_ready()
        mid = send(b, datadir, "alice", "bob", "see you at 5", device="phone")
        other = send(b, datadir, "alice", "bob", "and bring a cake", device="phone")
        bob.wait_texts(2)
        until(b, datadir, "bob", "history", "alice", cond=lambda ls: len(ls) == 2)
        r = ok(b, datadir, "alice", "edit", mid, "see", "you", "at", "6")
        assert r.out == "edited %s\n" % mid, r
        wait_line(bob, "alice edited %s: see you at 6" % mid)
        # my other device hears it too, with whom
        wait_line(laptop, "alice edited %s (with bob): see you at 6" % mid)
        assert history(b, datadir, "bob", "alice")[0] == "alice: see you at 6  (edited)"
        doc = json.loads(ok(b, datadir, "alice", "edit", other, "bring two", "--json").out)
        assert doc["ok"] is True and isinstance(doc["edited"], int) and isinstance(doc["seq"], int)

        assert ok(b, datadir, "alice", "delete", mid).out == "deleted %s\n" % mid
        wait_line(bob, "alice deleted %s" % mid)
        wait_line(laptop, "alice deleted %s (with bob)" % mid)
        assert history(b, datadir, "bob", "alice") == ["alice: (message deleted)",
                                                       "alice: bring two  (edited)"]
        harness.wait_for(lambda: len(bob_json.lines()) >= 5, harness.DEFAULT_TIMEOUT,
                         what="5 lines (have %r)" % bob_json.lines())
        got = [json.loads(ln) for ln in bob_json.lines()]
        assert [g["type"] for g in got] == ["text", "text", "edit", "edit", "delete"], got
        assert {k: got[2][k] for k in ("from", "to", "ref", "of", "by", "with", "body")} == {
            "from": "archiver", "to": "bob", "ref": mid, "of": "alice", "by": "alice",
            "with": "alice", "body": "see you at 6"}
        # edits and deletes get no receipt, and count as lines of their own
        assert texts(bob.lines()) == [(None, "alice", "see you at 5"),
                                      (None, "alice", "and bring a cake")]
    # sync gives the changes as rows of their own, in the words of listen
    lines = shown(ok(b, datadir, "alice", "sync").out.splitlines())
    changes = [ln for ln in lines if not ln.startswith("alice -> bob: ")]
    assert changes == ["alice edited %s: see you at 6" % mid, "alice edited %s: bring two" % other,
                       "alice deleted %s" % mid], lines
    assert lines[0] == "alice -> bob: (message deleted)", lines
    assert lines[1].startswith("alice -> bob: bring two  (edited)"), lines
    # gone is gone; someone else's is not mine to change
    assert fails(b, datadir, "alice", "edit", mid, "again") == \
        "Error: cannot edit %s: you sent no message %s (or it was deleted)" % (mid, mid)
    assert fails(b, datadir, "alice", "delete", mid) == \
        "Error: cannot delete %s: you sent no message %s (or it was deleted)" % (mid, mid)
    assert fails(b, datadir, "bob", "edit", other, "mine now") == \
        "Error: cannot edit %s: you sent no message %s (or it was deleted)" % (other, other)
    assert fails(b, datadir, "alice", "edit", "nope", "x") == \
        "Error: cannot edit nope: you sent no message nope (or it was deleted)"
    # a body over 64 KiB is refused before connecting, as send does
    r = mqchat(b, datadir, "alice", "edit", other, "x" * 70000)
    assert (r.rc, r.err) == (FAILED, "Error: message too large: 70000 bytes (limit 65536)\n"), r


def test_edit_window_past_is_too_late(world, datadir):
    b = world
    mid = send(b, datadir, "alice", "bob", "typo hre")
    until(b, datadir, "bob", "history", "alice", cond=lambda ls: len(ls) == 1)
    cli_util.ok(datadir, "settings", "set", "edit_window", "0")
    words = "it was sent longer ago than the server lets messages be changed (its edit window)"

    def refused():
        r = mqchat(b, datadir, "alice", "edit", mid, "typo here")
        return r.rc == FAILED and r.err == "Error: cannot edit %s: %s\n" % (mid, words)
    harness.wait_for(refused, harness.DEFAULT_TIMEOUT, what="edit refused too_late")
    assert fails(b, datadir, "alice", "delete", mid) == "Error: cannot delete %s: %s" % (mid,
                                                                                         words)


def test_room_admin_deletes_a_members_message(world, datadir):
    b = world
    for who in ("bob", "carol"):
        ok(b, datadir, who, "privacy", "--room-adds", "everyone")
    ok(b, datadir, "alice", "room", "create", "hikers", "--title", "Hikers \u26f0")
    ok(b, datadir, "alice", "room", "add", "hikers", "bob", "carol")
    # a room's last message may be an event: said as in history (events are
    # never unread: texts are)
    lines = until(b, datadir, "bob", "conversations", cond=lambda ls: len(ls) == 1)
    assert re.sub(r"\[[-0-9: ]+\] ", "", lines[0]) == \
        '#hikers "Hikers \u26f0": * alice added carol', lines
    with Listener(b, datadir, "carol", timeout=5) as carol:
        carol.wait_ready()
        mid = send(b, datadir, "bob", "--room", "hikers", "buy my stuff")
        carol.wait_texts(1)
        until(b, datadir, "alice", "history", "--room", "hikers",
              cond=lambda ls: any("buy my stuff" in ln for ln in ls))
        assert fails(b, datadir, "carol", "delete", "--room", "hikers", "--of", "bob", mid) == \
            "Error: cannot delete bob's %s in #hikers: you are not the owner or an admin of " \
            "hikers" % mid
        r = ok(b, datadir, "alice", "delete", "--room", "hikers", "--of", "bob", mid)
        assert r.out == "deleted bob's %s in #hikers\n" % mid
        wait_line(carol, "#hikers alice deleted bob's %s" % mid)
    assert history(b, datadir, "carol", "--room", "hikers")[-1] == \
        "#hikers bob: (message deleted by alice)"
    lines = ok(b, datadir, "carol", "conversations").out.splitlines()
    assert re.sub(r"\[[-0-9: ]+\] ", "", lines[0]) == \
        '#hikers "Hikers \u26f0" (1 unread): bob: (message deleted)', lines
    err = fails(b, datadir, "alice", "delete", "--room", "hikers", "--of", "bob", "nope")
    assert err == "Error: cannot delete bob's nope in #hikers: bob sent no message nope in " \
        "#hikers (or it was deleted, or you are in no room hikers)"
    err = fails(b, datadir, "alice", "delete", "--room", "nowhere", "--of", "bob", mid)
    assert err.startswith("Error: cannot delete bob's %s in #nowhere: " % mid), err


# ---- reactions and replies ----

def test_react_and_take_back(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        mid = send(b, datadir, "bob", "alice", "lunch?")
        rid = ok(b, datadir, "alice", "react", "bob", "bob", mid, "\U0001F44D").out.strip()
        assert len(rid) == 26 and rid.isalnum()
        wait_line(bob, "alice reacted \U0001F44D to %s" % mid)
        lines = until(b, datadir, "bob", "history", "alice",
                      cond=lambda ls: len(ls) == 2 and "reactions" in ls[1])
        assert shown(lines) == ["bob: lunch?", "  reactions: \U0001F44D alice"], lines
        r = ok(b, datadir, "alice", "react", "bob", "bob", mid, "\U0001F44D", "--remove", "--json")
        assert json.loads(r.out)["status"] == "accepted" and json.loads(r.out)["to"] == "bob"
        wait_line(bob, "alice removed \U0001F44D from %s" % mid)
        until(b, datadir, "bob", "history", "alice", cond=lambda ls: len(ls) == 1)
        # in a room, on the room's topic
        rmid = send(b, datadir, "bob", "--room", "lobby", "party at 8")
        ok(b, datadir, "carol", "react", "#lobby", "bob", rmid, "\U0001F389")
        wait_line(bob, "#lobby carol reacted \U0001F389 to %s" % rmid)
        # no receipt for a reaction, and none counts as a text
        assert texts(bob.lines()) == []
    lines = until(b, datadir, "alice", "history", "--room", "lobby",
                  cond=lambda ls: len(ls) == 2)
    assert shown(lines)[1] == "  reactions: \U0001F389 carol", lines
    # refusals, said as for send
    r = mqchat(b, datadir, "alice", "react", "nemo", "nemo", "m-1", "\U0001F44D")
    assert (r.rc, r.out, r.err) == (FAILED, "", "not sent: no such user nemo\n"), r
    r = mqchat(b, datadir, "dave", "react", "#lobby", "bob", rmid, "\U0001F44D")
    assert (r.rc, r.out, r.err) == (FAILED, "", "not sent: you are not a member of lobby\n"), r


def test_reply_shows_what_it_quotes(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob, \
            Listener(b, datadir, "bob", "--json", device="json", timeout=5) as bob_json:
        bob.wait_ready()
        bob_json.wait_ready()
        mid = send(b, datadir, "bob", "alice", "lunch at noon?")
        rid = send(b, datadir, "alice", "bob", "--reply-to", mid, "--reply-from", "bob", "yes",
                   "please")
        bob.wait_texts(1)
        wait_line(bob, "  > in reply to bob (%s)" % mid)
        # his own text first, as sent from another device of his
        assert shown(bob.lines()) == ["me -> alice: lunch at noon?", "alice: yes please",
                                      "  > in reply to bob (%s)" % mid]
        harness.wait_for(lambda: len(bob_json.lines()) >= 2, harness.DEFAULT_TIMEOUT,
                         what="2 JSON lines")
        got = json.loads(bob_json.lines()[1])
        assert (got["id"], got["body"], got["reply_to"], got["reply_from"]) == (
            rid, "yes please", mid, "bob")
    lines = until(b, datadir, "bob", "history", "alice", cond=lambda ls: len(ls) >= 3)
    assert shown(lines) == ["bob: lunch at noon?", "alice: yes please",
                            "  > in reply to bob: lunch at noon?"], lines
    doc = json.loads(ok(b, datadir, "bob", "history", "alice", "--json").out.splitlines()[1])
    assert (doc["reply_to"], doc["reply_from"]) == (mid, "bob")


def test_a_room_is_named_as_the_list_shows_it(world, datadir):
    """#lobby names the room in send, history and chat as in read and react
    (and as the conversation list shows it); --room still works."""
    b = world
    first = send(b, datadir, "alice", "#lobby", "hello lobby")
    second = send(b, datadir, "bob", "--room", "lobby", "hi all")
    lines = until(b, datadir, "carol", "history", "#lobby", cond=lambda ls: len(ls) >= 2)
    assert shown(lines)[-2:] == ["#lobby alice: hello lobby", "#lobby bob: hi all"], lines
    assert shown(ok(b, datadir, "carol", "history", "--room", "lobby").out.splitlines()) == shown(lines)
    out = ok(b, datadir, "carol", "history", "#lobby", "--json").out
    docs = [json.loads(ln) for ln in out.splitlines()]
    assert [(d["id"], d["room"]) for d in docs if d["type"] == "text"] == [(first, "lobby"), (second, "lobby")]
    # nothing went to a person called "lobby"
    assert ok(b, datadir, "alice", "history", "lobby").out == ""


# ---- search ----

def test_search(world, datadir):
    b = world
    send(b, datadir, "alice", "bob", "Lunch at noon?")
    send(b, datadir, "alice", "bob", "dinner later")
    send(b, datadir, "carol", "--room", "lobby", "lunchtime in the lobby")
    lines = until(b, datadir, "alice", "search", "lunch", cond=lambda ls: len(ls) == 2)
    assert shown(lines) == ["#lobby carol: lunchtime in the lobby", "alice -> bob: Lunch at noon?"]
    assert shown(ok(b, datadir, "alice", "search", "lunch", "--with", "bob").out
                 .splitlines()) == ["alice -> bob: Lunch at noon?"]
    assert shown(ok(b, datadir, "alice", "search", "LUNCH", "--room", "lobby").out
                 .splitlines()) == ["#lobby carol: lunchtime in the lobby"]
    r = ok(b, datadir, "alice", "search", "lunch", "--limit", "1")
    assert shown(r.out.splitlines()) == ["#lobby carol: lunchtime in the lobby"], r
    m = re.match(r"^\(more results: --before (\d+)\)\n$", r.err)
    assert m, r
    r = ok(b, datadir, "alice", "search", "lunch", "--before", m.group(1))
    assert shown(r.out.splitlines()) == ["alice -> bob: Lunch at noon?"], r
    doc = json.loads(ok(b, datadir, "alice", "search", "dinner", "--json").out)
    assert doc["body"] == "dinner later" and doc["to"] == "bob"
    # dave is in no conversation with them: nothing
    assert ok(b, datadir, "dave", "search", "lunch").out == ""
    r = mqchat(b, datadir, "alice", "search", "lu")
    assert r.rc == FAILED and r.err.startswith("Error: cannot search: ") and \
        r.err.endswith("(bad_request)\n"), r
    assert fails(b, datadir, "dave", "search", "lunch", "--room", "lobby") == \
        "Error: cannot search: you are in no room lobby"


# ---- every device in step, live ----

def test_listen_shows_what_i_send_from_other_devices(world, datadir):
    b = world
    with Listener(b, datadir, "alice", device="laptop", timeout=5) as laptop, \
            Listener(b, datadir, "alice", "--json", device="tablet", timeout=5) as tablet:
        laptop.wait_ready()
        tablet.wait_ready()
        send(b, datadir, "alice", "bob", "from my phone", device="phone")
        wait_line(laptop, "me -> bob: from my phone")
        # a note to self matches both inbox filters: shown once
        send(b, datadir, "alice", "alice", "note to self", device="phone")
        send(b, datadir, "bob", "alice", "hi alice")
        wait_line(laptop, "bob: hi alice")
        harness.wait_for(lambda: len(tablet.lines()) >= 3, harness.DEFAULT_TIMEOUT,
                         what="3 lines (have %r)" % tablet.lines())
        # my own receipt for bob's text (and my other device's) is no news
        ok(b, datadir, "alice", "send", "bob", "marker", device="phone")
        wait_line(laptop, "me -> bob: marker")
        assert shown(laptop.lines()) == ["me -> bob: from my phone", "me -> alice: note to self",
                                         "bob: hi alice", "me -> bob: marker"], laptop.lines()
        # none of mine is a text from someone (texts() would count it)
        assert texts(laptop.lines()) == [(None, "bob", "hi alice")]
        harness.wait_for(lambda: len(tablet.lines()) >= 4, harness.DEFAULT_TIMEOUT,
                         what="4 lines")
        got = [json.loads(ln) for ln in tablet.lines()]
        assert [(g["type"], g["from"], g["to"], g["body"]) for g in got] == [
            ("text", "alice", "bob", "from my phone"), ("text", "alice", "alice", "note to self"),
            ("text", "bob", "alice", "hi alice"), ("text", "alice", "bob", "marker")], got
        assert "warning" not in laptop.errors() + tablet.errors()


def test_listen_typing(world, datadir, clients):
    b = world
    bob = login(clients, b, "bob", "password-xxxx", client_id="bob@kbd", v5=True)
    carol = login(clients, b, "carol", "password-xxxx", client_id="carol@kbd", v5=True)
    with Listener(b, datadir, "alice", "--typing", timeout=5) as alice, \
            Listener(b, datadir, "alice", "--typing", "--json", device="json",
                     timeout=5) as alice_json, \
            Listener(b, datadir, "alice", device="plain", timeout=5) as plain:
        for ln in (alice, alice_json, plain):
            ln.wait_ready()
        bob.publish("chat/typing/alice/bob", {"typing": True}, qos=0)
        wait_line(alice, "bob is typing")
        bob.publish("chat/typing/alice/bob", {"typing": False}, qos=0)
        # (two connections: carol's after bob's stop has come, for the order)
        harness.wait_for(lambda: len(alice_json.lines()) >= 2, harness.DEFAULT_TIMEOUT,
                         what="2 JSON lines (have %r)" % alice_json.lines())
        carol.publish("chat/roomtyping/lobby/carol", {"typing": True}, qos=0)
        wait_line(alice, "#lobby carol is typing")
        # a stop is said in JSON only
        assert shown(alice.lines()) == ["bob is typing", "#lobby carol is typing"]
        harness.wait_for(lambda: len(alice_json.lines()) >= 3, harness.DEFAULT_TIMEOUT,
                         what="3 JSON lines (have %r)" % alice_json.lines())
        assert [json.loads(ln) for ln in alice_json.lines()] == [
            {"type": "typing", "from": "bob", "to": "alice", "typing": True},
            {"type": "typing", "from": "bob", "to": "alice", "typing": False},
            {"type": "typing", "from": "carol", "room": "lobby", "typing": True}]
        # without --typing nothing of it; a text after it is the only line
        ok(b, datadir, "bob", "send", "alice", "marker")
        plain.wait_texts(1)
        assert shown(plain.lines()) == ["bob: marker"]
        assert "warning" not in alice.errors() + alice_json.errors() + plain.errors()


def test_chat_shows_my_other_devices_and_typing_but_not_its_own_lines(world, datadir,
                                                                       clients):
    b = world
    bob = login(clients, b, "bob", "password-xxxx", client_id="bob@kbd", v5=True)
    with Listener(b, datadir, "alice", "bob", command="chat", device="laptop",
                  stdin=subprocess.PIPE, timeout=5) as chat, \
            Listener(b, datadir, "bob", timeout=5) as bob_listen:
        bob_listen.wait_ready()
        # chat says nothing when it is ready over a pipe: a typing signal
        # shows once its subscriptions are in
        harness.wait_for(lambda: (bob.publish("chat/typing/alice/bob", {"typing": True}, qos=0)
                                  and "bob is typing" in shown(chat.lines())),
                         harness.DEFAULT_TIMEOUT, interval=0.2, what="typing in chat")
        chat.proc.stdin.write(b"typed in chat\n")
        chat.proc.stdin.flush()
        bob_listen.wait_texts(1)
        send(b, datadir, "alice", "bob", "from my phone", device="phone")
        wait_line(chat, "me -> bob: from my phone")
        chat.proc.stdin.close()
        assert chat.wait_exit() == 0
    # (bob's receipts aside) the line typed in chat is not shown again
    assert [ln for ln in shown(chat.lines()) if ln != "bob is typing"
            and not ln.startswith("receipt: ")] == ["me -> bob: from my phone"], chat.lines()
    assert texts(bob_listen.lines()) == [(None, "alice", "typed in chat"),
                                         (None, "alice", "from my phone")]


# ---- a later contract: what this client does not know is left out ----

class BareBroker:
    """mosquitto without the plugin: it passes on whatever is published, as
    a server of a later contract would pass envelope types this client does
    not know."""

    def __init__(self, datadir):
        self.port = harness.free_port()
        conf = "%s/bare-%d.conf" % (datadir, self.port)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % self.port)
        self.proc = harness.Proc([harness.MOSQUITTO, "-c", conf],
                                 "%s/bare-%d.log" % (datadir, self.port))

    def wait_ready(self, clients):
        def up():
            c = clients(self, "probe", "x", client_id="probe")
            try:
                return c.connect() == 0
            except (ConnectionError, OSError):
                return False
        harness.wait_for(up, harness.DEFAULT_TIMEOUT, interval=0.1, what="bare broker")
        return self


def test_unknown_envelope_types_are_left_out_quietly(datadir, clients):
    bare = BareBroker(datadir)
    try:
        bare.wait_ready(clients)
        bob = clients(bare, "bob", "x", client_id="bob@x")
        assert bob.connect() == 0
        with Listener(bare, datadir, "alice", timeout=1) as alice:
            alice.wait_ready()
            bob.publish("chat/inbox/alice/bob", {"id": "p1", "type": "poll", "question": "when?"})
            bob.publish("chat/inbox/alice/bob", {"id": "p2", "type": "text", "body": "ok",
                                                 "future": {"member": [1, 2]}})
            alice.wait_texts(1)
            bob.publish("chat/inbox/alice/bob", "not an envelope")
            alice.wait_err("ignored a malformed message from bob")
            assert shown(alice.lines()) == ["bob: ok"]
            # the unknown type said nothing; the malformed one is the only warning
            assert alice.errors().count("ignored a malformed") == 1, alice.errors()
    finally:
        bare.proc.stop()
