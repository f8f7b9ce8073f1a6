"""test_client_chat.py - two users chatting through build/mqchat: send,
listen, receipts, messages sent while offline, chat over a pipe."""
import json
import os
import subprocess

import harness
from client_util import (DENIED, FAILED, Listener, mqchat, ok, texts, users)


def test_send_and_listen_both_ways(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob, \
            Listener(b, datadir, "alice", timeout=1) as alice:
        bob.wait_ready()
        alice.wait_ready()
        mid = ok(b, datadir, "alice", "send", "bob", "hello", "bob").out.strip()
        assert len(mid) == 26 and mid.isalnum()
        bob.wait_texts(1)
        assert texts(bob.lines()) == [(None, "alice", "hello bob")]
        ok(b, datadir, "bob", "send", "alice", "hi alice")
        # alice sees bob's answer and the delivered receipt for her message
        assert alice.wait_texts(1) == [(None, "bob", "hi alice")]
        harness.wait_for(lambda: "receipt: %s delivered by bob" % mid in alice.lines(),
                         what="the delivered receipt")
    # no archiver: listen says so on stderr but keeps the inbox
    assert "archiver did not answer" in bob.errors()


def test_listen_json_lines(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", "--json", "--count", "1", timeout=1) as bob:
        bob.wait_ready()
        mid = ok(b, datadir, "alice", "send", "bob", 'quote " and \u00e9 and\nnewline').out.strip()
        assert bob.wait_exit() == 0
        lines = bob.lines()
    assert len(lines) == 1
    m = json.loads(lines[0])
    assert m["type"] == "text" and m["from"] == "alice" and m["to"] == "bob"
    assert m["id"] == mid and m["body"] == 'quote " and \u00e9 and\nnewline'
    assert isinstance(m["ts"], int)


def test_offline_messages_arrive_on_next_listen(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    # a first listen creates bob's persistent session, then bob goes away
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
    assert bob.proc.returncode == 0
    for i in range(3):
        ok(b, datadir, "alice", "send", "bob", "while you were away %d" % i)
    with Listener(b, datadir, "bob", "--count", "3", timeout=1) as bob:
        assert bob.wait_exit() == 0
        got = texts(bob.lines())
    assert got == [(None, "alice", "while you were away %d" % i) for i in range(3)]
    # and they are not delivered twice
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        ok(b, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(1)
        assert texts(bob.lines()) == [(None, "alice", "marker")]


def test_send_from_stdin_whole_and_lines(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        r = ok(b, datadir, "alice", "send", "bob", stdin="first line\nsecond line\n")
        assert len(r.out.split()) == 1
        r = ok(b, datadir, "alice", "send", "--lines", "bob", stdin="one\n\ntwo\r\nthree")
        assert len(r.out.split()) == 3
        bob.wait_texts(4)
    got = [t[2] for t in texts(bob.lines())]
    # a multi-line message is shown with indented continuation lines
    assert bob.lines()[1] == "    second line"
    assert got == ["first line", "one", "two", "three"]


def test_chat_over_a_pipe_with_read_receipts(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "alice", timeout=1) as alice:
        alice.wait_ready()
        bob = Listener(b, datadir, "bob", "alice", command="chat", stdin=subprocess.PIPE,
                       timeout=1)
        try:
            # bob's chat session exists once it answers; make sure it is up
            # by sending a line and seeing it at alice
            bob.proc.stdin.write(b"hi from bob\n")
            bob.proc.stdin.flush()
            alice.wait_texts(1)
            assert texts(alice.lines()) == [(None, "bob", "hi from bob")]
            # another device of alice (one persistent session per device)
            r = ok(b, datadir, "alice", "chat", "bob", device="pipe",
                   stdin="line one\nline two\n/quit\nnot sent\n")
            # only bob's read receipts may show up while it waits for PUBACKs
            assert all(ln.startswith("receipt: ") for ln in r.out.splitlines()), r
            bob.wait_texts(2)
            assert texts(bob.lines()) == [(None, "alice", "line one"), (None, "alice", "line two")]
            bob.proc.stdin.close()
            assert bob.wait_exit() == 0
        finally:
            bob.stop()
        # bob's chat showed alice's lines, so alice gets "read" receipts
        def receipts():
            return [ln for ln in alice.lines() if ln.startswith("receipt: ") and "read by bob" in ln]
        harness.wait_for(lambda: len(receipts()) == 2, what="two read receipts")
        # bob's own line got a delivered receipt from alice's listen, not shown to alice
        assert not any("by alice" in ln for ln in alice.lines())


def test_chat_pipe_with_bad_line_sends_the_rest_and_fails(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        r = mqchat(b, datadir, "alice", "chat", "bob", stdin=b"good 1\n\xff\xfe bad\ngood 2\n")
        assert r.rc == FAILED, r
        assert "Error: message is not valid UTF-8" in r.err
        bob.wait_texts(2)
        assert [t[2] for t in texts(bob.lines())] == ["good 1", "good 2"]


def test_duplicate_delivery_is_shown_once(store, make_broker, datadir, clients):
    """QoS 1 may deliver twice; the id is the same and listen shows it once."""
    users(store, "alice", "bob")
    b = make_broker()
    a = clients(b, "alice", "password-xxxx", client_id="alice@py")
    assert a.connect() == 0
    with Listener(b, datadir, "bob", timeout=1) as bob:
        bob.wait_ready()
        env = harness.envelope("twice", id="dup-1")
        a.publish("chat/inbox/bob/alice", env)
        a.publish("chat/inbox/bob/alice", env)
        a.publish("chat/inbox/bob/alice", harness.envelope("after", id="dup-2"))
        bob.wait_texts(2)
        a.barrier()
        assert [t[2] for t in texts(bob.lines())] == ["twice", "after"]


def test_listen_stops_on_signals_and_after_for(store, make_broker, datadir):
    import signal
    users(store, "bob")
    b = make_broker()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with Listener(b, datadir, "bob", timeout=1) as bob:
            bob.wait_ready()
            assert bob.stop(sig) == 0
    with Listener(b, datadir, "bob", "--for", "1", timeout=1) as bob:
        assert bob.wait_exit(timeout=15) == 0
        assert bob.lines() == []


def test_two_listens_with_one_client_id(store, make_broker, datadir):
    """One device runs one persistent session: a second listen (or chat) as
    the same <user>@<device> on this machine is refused at once, saying why.
    From another machine (another config folder) the broker takes the
    session over without a reason: the two back off and say why."""
    users(store, "bob")
    b = make_broker()
    with Listener(b, datadir, "bob", timeout=1) as one:
        one.wait_ready()
        with Listener(b, datadir, "bob", timeout=1) as two:
            assert two.wait_exit() == FAILED
            # Its stderr is read by a thread: the line may come just after the exit.
            said = "another mqchat (chat or listen) is running as bob@test on this machine"
            harness.wait_for(lambda: said in two.errors(), what="the reason on stderr")
        assert one.proc.poll() is None
        elsewhere = os.path.join(datadir, "elsewhere")
        with Listener(b, elsewhere, "bob", timeout=1) as three:
            hint = "is another listen or chat running as bob@test? (use --device)"
            try:
                harness.wait_for(lambda: hint in one.errors() + three.errors(), timeout=20,
                                 what="the hint")
            except AssertionError as e:
                # What each said and whether it is still there (seen once
                # under a load of 16: one of the two stopped reconnecting).
                raise AssertionError("%s\n-- first (exit %s):\n%s\n-- other machine (exit %s):\n%s"
                                     % (e, one.proc.poll(), one.errors(), three.proc.poll(),
                                        three.errors())) from None


def test_chat_with_someone_who_cannot_get_my_lines_says_so_at_once(store, make_broker, datadir):
    """No such account (or a disabled one), or a peer who blocks me: chat
    says so and exits 1 before reading a line, instead of taking lines that
    would all be refused. It asks the broker with a typing stop, which the
    peer who exists is not shown."""
    users(store, "alice", "bob", "carol")
    store.add_user("gone", enabled=False)
    store.block("carol", "alice")
    store.add_room("team", ["bob", "carol"])
    b = make_broker()
    with Listener(b, datadir, "bob", "--typing", timeout=1) as bob:
        bob.wait_ready()
        for peer, err in (("nobody", "Error: no account named 'nobody'"),
                          ("gone", "Error: no account named 'gone'"),
                          ("carol", "Error: carol blocks you")):
            # stdin stays open: the answer cannot wait for a line or for EOF
            chat = Listener(b, datadir, "alice", peer, command="chat", stdin=subprocess.PIPE,
                            timeout=5)
            try:
                assert chat.wait_exit() == FAILED, (peer, chat.errors())
            finally:
                chat.proc.stdin.close()
                chat.stop()
            assert (chat.lines(), chat.errors()) == ([], err), peer
        # a room I am not in: its subscription is refused, as before
        r = mqchat(b, datadir, "alice", "chat", "#team", stdin="hi\n")
        assert r.rc == DENIED and "Error: not allowed to read room team" in r.err, r
        # bob exists: the chat goes on, and bob sees the line, not the probe
        r = ok(b, datadir, "alice", "chat", "bob", stdin="hello bob\n")
        ok(b, datadir, "alice", "send", "bob", "marker")
        bob.wait_texts(2)
        assert bob.lines() == ["[%s] alice: hello bob" % bob.lines()[0][1:9],
                               "[%s] alice: marker" % bob.lines()[1][1:9]]
