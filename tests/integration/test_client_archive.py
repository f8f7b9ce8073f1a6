"""test_client_archive.py - the client with the archiver: rooms with three
members, history, sync (state file, paging), rooms/whois/profile, blocking,
passwd, self-registration."""
import json
import os

import pytest

import harness
from client_util import (AUTH, FAILED, USAGE, Listener, add_archiver_account, archivers,  # noqa: F401
                         mqchat, ok, texts, users)


@pytest.fixture
def world(store, make_broker, datadir, archivers):
    users(store, "alice", "bob", "carol", "dave")
    store.add_room("team", ["alice", "bob", "carol"])
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice")
    return b


def test_room_chat_with_three_members(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob, \
            Listener(b, datadir, "carol", timeout=5) as carol, \
            Listener(b, datadir, "alice", timeout=5) as alice:
        for who in (bob, carol, alice):
            who.wait_ready()
            assert "inbox and 1 room" in who.errors()
        ok(b, datadir, "alice", "send", "--room", "team", "hello team")
        ok(b, datadir, "carol", "chat", "--room", "team", device="pipe",
           stdin="hi alice\nhi bob\n")
        bob.wait_texts(3)
        assert texts(bob.lines()) == [("team", "alice", "hello team"), ("team", "carol", "hi alice"),
                                      ("team", "carol", "hi bob")]
        carol.wait_texts(1)
        alice.wait_texts(2)
        # nobody sees their own room messages echoed
        assert texts(carol.lines()) == [("team", "alice", "hello team")]
        assert [t for t in texts(alice.lines())] == [("team", "carol", "hi alice"),
                                                     ("team", "carol", "hi bob")]
        # dave is no member: refused
        r = mqchat(b, datadir, "dave", "send", "--room", "team", "let me in")
        assert r.rc == FAILED, r
    # room history: everything, oldest first
    r = ok(b, datadir, "bob", "history", "--room", "team")
    lines = r.out.splitlines()
    assert [ln.split("] ", 1)[1] for ln in lines] == [
        "#team alice: hello team", "#team carol: hi alice", "#team carol: hi bob"]


def test_history_text_json_limit_before(world, datadir):
    b = world
    for i in range(5):
        ok(b, datadir, "alice", "send", "bob", "m%d" % i)
    ok(b, datadir, "bob", "send", "alice", "reply")

    def history(*args):
        return ok(b, datadir, "alice", "history", "bob", *args)

    harness.wait_for(lambda: len(history().out.splitlines()) == 6, what="6 archived messages")
    r = history()
    assert [ln.split("] ", 1)[1] for ln in r.out.splitlines()] == [
        "alice: m0", "alice: m1", "alice: m2", "alice: m3", "alice: m4", "bob: reply"]
    js = [json.loads(ln) for ln in history("--json").out.splitlines()]
    assert [m["body"] for m in js] == ["m0", "m1", "m2", "m3", "m4", "reply"]
    assert all(m["from"] in ("alice", "bob") and isinstance(m["seq"], int) for m in js)
    r = history("--limit", "2")
    assert [ln.split("] ", 1)[1] for ln in r.out.splitlines()] == ["alice: m4", "bob: reply"]
    assert "(older messages: --before %d)" % js[4]["seq"] in r.err
    r = history("--limit", "2", "--before", str(js[4]["seq"]))
    assert [ln.split("] ", 1)[1] for ln in r.out.splitlines()] == ["alice: m2", "alice: m3"]


def test_sync_remembers_its_position_and_pages(world, datadir, clients):
    b = world
    ok(b, datadir, "alice", "send", "bob", "first")
    ok(b, datadir, "bob", "send", "--room", "team", "to the team")
    state = os.path.join(datadir, "home", "state", "mqchat", "alice@test.seq")

    def sync(*args):
        return ok(b, datadir, "alice", "sync", *args)

    harness.wait_for(lambda: len(sync("--after", "0").out.splitlines()) == 2, what="2 archived")
    assert not os.path.exists(state)     # --after looks back, it does not move the position
    r = sync()
    lines = [ln.split("] ", 1)[1] for ln in r.out.splitlines()]
    assert lines == ["alice -> bob: first", "#team bob: to the team"]
    with open(state) as f:
        seq = int(f.read())
    assert seq > 0
    assert sync().out == ""                      # nothing new
    ok(b, datadir, "carol", "send", "alice", "news")
    harness.wait_for(lambda: "carol -> alice: news" in sync("--after", str(seq)).out, what="news")
    r = sync()
    assert [ln.split("] ", 1)[1] for ln in r.out.splitlines()] == ["carol -> alice: news"]
    assert sync().out == ""

    # more than one page (the client asks for 100 per answer): everything arrives, oldest first
    sender = clients(b, "dave", "password-xxxx", client_id="dave@py")
    assert sender.connect() == 0
    infos = [sender.publish("chat/inbox/alice/dave", harness.envelope("bulk %d" % i), wait=False)
             for i in range(250)]
    harness.wait_for(lambda: all(sender.pubacks.get(i.mid) for i in infos), what="PUBACKs")
    harness.wait_for(lambda: "bulk 249" in ok(b, datadir, "alice", "history", "dave",
                                              "--limit", "1").out, what="bulk archived")
    r = ok(b, datadir, "alice", "sync", "--json")
    bodies = [json.loads(ln)["body"] for ln in r.out.splitlines()]
    assert bodies == ["bulk %d" % i for i in range(250)]


def test_rooms_whois_profile(world, datadir):
    b = world
    r = ok(b, datadir, "alice", "rooms")
    assert r.out.splitlines() == ["team: alice bob carol"]
    r = ok(b, datadir, "alice", "rooms", "--json")
    assert json.loads(r.out) == {"name": "team", "members": ["alice", "bob", "carol"]}
    r = ok(b, datadir, "alice", "profile", "--nick", "Alice A.")
    assert r.out == "alice: nick Alice A., kind user\n"
    r = ok(b, datadir, "bob", "whois", "alice")
    assert r.out == "alice: nick Alice A., kind user\n"
    r = ok(b, datadir, "bob", "--json", "whois", "alice")
    assert json.loads(r.out)["nick"] == "Alice A."
    r = mqchat(b, datadir, "bob", "whois", "nobody")
    assert r.rc == FAILED and r.err.startswith("Error: no such user (not_found)"), r


def test_block_unblock_blocked(world, datadir):
    b = world
    assert ok(b, datadir, "bob", "blocked").out == ""
    assert ok(b, datadir, "bob", "block", "alice").out == "blocked alice\n"
    assert ok(b, datadir, "bob", "blocked").out == "alice\n"

    def refused():
        r = mqchat(b, datadir, "alice", "send", "bob", "hi?")
        assert r.rc in (0, FAILED), r
        return r.rc == FAILED
    harness.wait_for(refused, what="the block to take effect")
    assert ok(b, datadir, "bob", "unblock", "alice").out == "unblocked alice\n"
    harness.wait_for(lambda: not refused(), what="the unblock to take effect")
    r = mqchat(b, datadir, "bob", "block", "bob")
    assert r.rc == FAILED and "cannot block yourself" in r.err, r


def test_passwd(world, datadir):
    b = world
    r = mqchat(b, datadir, "carol", "passwd", "--password-stdin", password=None,
               stdin="wrong-old\nnew-password-1\n")
    assert r.rc == AUTH, r            # connecting with the wrong old password
    r = mqchat(b, datadir, "carol", "passwd", "--password-stdin", password=None,
               stdin="password-xxxx\n")
    assert r.rc == USAGE and "expected two lines" in r.err, r
    r = ok(b, datadir, "carol", "passwd", "--password-stdin", password=None,
           stdin="password-xxxx\nnew-password-1\n")
    assert r.out == "password changed\n"

    def new_works():
        return mqchat(b, datadir, "carol", "send", "alice", "x", password="new-password-1").rc == 0
    harness.wait_for(new_works, what="the new password")
    r = mqchat(b, datadir, "carol", "send", "alice", "x")
    assert r.rc == AUTH, r


def test_register(store, make_broker, datadir, archivers):
    users(store, "alice")
    add_archiver_account(store)
    b = make_broker(registration="open")
    archivers(datadir, store, b, "alice", extra=["--registration", "open"])
    r = ok(b, datadir, None, "register", "erin", "--nick", "Erin", password="erins-password-1")
    assert r.out == "registered erin\n"
    r = mqchat(b, datadir, None, "register", "erin", password="erins-password-1")
    assert r.rc == FAILED and "Error: the name is already taken" in r.err, r
    r = mqchat(b, datadir, None, "register", "frank", password="x")
    assert r.rc == USAGE and "Error: the password is too weak" in r.err, r

    def erin_can_send():
        return mqchat(b, datadir, "erin", "send", "alice", "hi", password="erins-password-1").rc == 0
    harness.wait_for(erin_can_send, what="erin to be able to log in")
    assert ok(b, datadir, "alice", "whois", "erin").out == "erin: nick Erin, kind user\n"


def test_listen_rooms_stay_in_the_session_without_archiver(store, make_broker, datadir,
                                                          archivers):
    """listen learns its rooms from the archiver once; a later listen while
    the archiver is down still gets room messages sent while it was away,
    because the persistent session kept the subscription."""
    users(store, "alice", "bob")
    store.add_room("team", ["alice", "bob"])
    add_archiver_account(store)
    b = make_broker()
    a = archivers(datadir, store, b, "alice")
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        assert "inbox and 1 room" in bob.errors()
    a.stop()
    ok(b, datadir, "alice", "send", "--room", "team", "while you were away")
    with Listener(b, datadir, "bob", "--count", "1", timeout=1) as bob:
        assert bob.wait_exit() == 0
        assert texts(bob.lines()) == [("team", "alice", "while you were away")]
        assert "archiver did not answer" in bob.errors()


def test_who_and_chat_slash_commands(world, datadir):
    b = world
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        r = ok(b, datadir, "alice", "who", "bob")
        assert r.out.startswith("bob: online since ")
        assert ok(b, datadir, "alice", "who", "carol").out == "carol: unknown\n"
        js = json.loads(ok(b, datadir, "alice", "--json", "who", "bob").out)
        assert js["user"] == "bob" and js["status"] == "online" and isinstance(js["since"], int)
        everyone = ok(b, datadir, "alice", "who").out.splitlines()
        assert any(ln.startswith("bob: online") for ln in everyone)

        ok(b, datadir, "bob", "send", "--room", "team", "earlier")
        harness.wait_for(lambda: "earlier" in ok(b, datadir, "alice", "history", "--room",
                                                 "team").out, what="archived")
        r = ok(b, datadir, "alice", "chat", "--room", "team",
               stdin="/who\n/history\n//slash line\n/bogus\n")
        out = r.out.splitlines()
        # alice has just connected a dozen times (one per command above):
        # her own presence may still wait for its interval (docs/PROTOCOL.md,
        # Presence), so it says online or offline; bob's has been online.
        assert out[0].startswith(("alice: online", "alice: offline")) and out[1].startswith("bob: online")
        assert out[2] == "carol: unknown"
        assert out[3].endswith("] #team bob: earlier")
        assert "unknown command /bogus (try /help)" in r.err
        assert "connection lost" not in r.err
        bob.wait_texts(1)
        assert texts(bob.lines()) == [("team", "alice", "/slash line")]
    # bob's last connection closed: the plugin says offline (within a
    # second here: he came online less than a second ago)
    harness.wait_for(lambda: ok(b, datadir, "alice", "who", "bob").out.startswith("bob: offline"),
                     interval=0.25, what="bob offline")


def test_listen_in_many_rooms(store, make_broker, datadir, archivers):
    """More rooms than one SUBSCRIBE carries in the client (64)."""
    users(store, "alice", "bob")
    for i in range(70):
        store.add_room("r%02d" % i, ["alice", "bob"])
    add_archiver_account(store)
    b = make_broker()
    archivers(datadir, store, b, "alice")
    with Listener(b, datadir, "bob", timeout=5) as bob:
        bob.wait_ready()
        assert "inbox and 70 rooms" in bob.errors()
        ok(b, datadir, "alice", "send", "--room", "r00", "first")
        ok(b, datadir, "alice", "send", "--room", "r69", "last")
        bob.wait_texts(2)
        assert texts(bob.lines()) == [("r00", "alice", "first"), ("r69", "alice", "last")]
