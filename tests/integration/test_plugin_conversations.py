"""Conversations at the broker (docs/PROTOCOL.md): carbons of what I send to
my other devices, typing indicators (to a person, in a room; QoS 0 only,
never queued, rate limited on their own), replies and reactions from
anyone, and edits, deletes and read markers from a service only. Against a
real broker with the plugin; every refusal shows its notice and that
nothing was delivered."""
import json
import time

import pytest

import harness
from plugin_util import (PROTOCOLS, assert_denied_publish, expect_msg, expect_none, inbox,
                         login, publish, refused_sub_code, room, subscribe_ok)

PW = "password-xxxx"
TYPING_ON = b'{"typing":true}'
TYPING_OFF = b'{"typing":false}'


def typing(to, frm):
    return "chat/typing/%s/%s" % (to, frm)


def roomtyping(name, frm):
    return "chat/roomtyping/%s/%s" % (name, frm)


def env(**kw):
    """An envelope with exactly these members, compact, as bytes."""
    return json.dumps(kw, separators=(",", ":")).encode()


def notice(c, timeout=5.0):
    """The next message c receives, which must be a notice; parsed."""
    m = expect_msg(c, "chat/notice/%s" % c.client_id.split("@")[0], timeout=timeout)
    return json.loads(m.payload)


def typing_sub(c, f):
    """Subscribe to typing: at QoS 0, granted."""
    code = c.subscribe(f, qos=0)
    assert code == 0, "%s: typing subscription %r refused (SUBACK 0x%02x)" % (c.client_id, f, code)


def pace():
    """Refusal notices are limited to 10 a second per account (more are
    dropped, not delayed): a test that causes more keeps under it."""
    time.sleep(0.11)


def expect_refused(c, code, topic):
    n = notice(c)
    assert (n["type"], n["code"], n["topic"]) == ("refused", code, topic), n
    return n


@pytest.fixture
def chat(store, make_broker):
    """alice, bob, carol (in lobby with alice and bob), eve (whom bob
    blocks), dan (in no room), the archiver service."""
    for name in ("alice", "bob", "carol", "eve", "dan"):
        store.add_user(name)
    store.add_user("archiver", kind="service")
    store.add_room("lobby", members=["alice", "bob", "carol"])
    store.block("bob", "eve")
    return make_broker()


# ---- carbons ----

@pytest.mark.parametrize("v5", PROTOCOLS)
def test_carbons_reach_my_other_device(chat, clients, v5):
    """What alice sends from her laptop reaches her phone live, through
    chat/inbox/+/alice: texts, receipts, reactions, to anyone."""
    phone = login(clients, chat, "alice", PW, client_id="alice@phone", v5=v5)
    subscribe_ok(phone, "chat/inbox/+/alice")
    laptop = login(clients, chat, "alice", PW, client_id="alice@laptop", v5=v5)
    bob = login(clients, chat, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    sent = [
        (inbox("bob", "alice"), env(id="c1", type="text", body="hi bob")),
        (inbox("bob", "alice"), env(id="c2", type="receipt", ref="b1", status="read")),
        (inbox("bob", "alice"), env(id="c3", type="reaction", ref="b1", of="bob", emoji="+1")),
        (inbox("carol", "alice"), env(id="c4", type="text", body="hi carol")),
    ]
    for topic, payload in sent:
        assert publish(laptop, topic, payload) == 0
        expect_msg(phone, topic, payload)
    for topic, payload in sent[:3]:
        expect_msg(bob, topic, payload)
    expect_none(bob)
    # Note to self: on both of alice's filters; at least one copy.
    subscribe_ok(phone, "chat/inbox/alice/#")
    expect_none(phone)
    note = env(id="c5", type="text", body="note")
    assert publish(laptop, inbox("alice", "alice"), note) == 0
    expect_msg(phone, inbox("alice", "alice"), note)
    phone.barrier()
    while not phone.messages.empty():
        m = phone.messages.get_nowait()
        assert (m.topic, m.payload) == (inbox("alice", "alice"), note), m.topic


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_carbons_need_qos1_and_are_mine_only(chat, clients, v5):
    eve = login(clients, chat, "eve", PW, v5=v5)
    subscribe_ok(eve, "chat/notice/eve")
    want = refused_sub_code(v5)
    for f in ("chat/inbox/+/alice", "chat/inbox/+/#", "chat/inbox/+/+", "chat/inbox/alice/alice",
              "chat/inbox/#"):
        assert eve.subscribe(f) == want, f
    # Mine, but at QoS 0: refused like every message filter.
    assert eve.subscribe("chat/inbox/+/eve", qos=0) == want
    n = notice(eve)
    assert n["code"] == "qos0_subscription", n
    subscribe_ok(eve, "chat/inbox/+/eve")
    # What alice sends reaches neither eve's carbons nor anything else of hers.
    bob = login(clients, chat, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    alice = login(clients, chat, "alice", PW, v5=v5)
    secret = env(id="s1", type="text", body="secret")
    assert publish(alice, inbox("bob", "alice"), secret) == 0
    expect_msg(bob, inbox("bob", "alice"), secret)
    expect_none(eve)


# ---- typing ----

@pytest.mark.parametrize("v5", PROTOCOLS)
def test_typing_reaches_the_recipient_only(chat, clients, v5):
    bob = login(clients, chat, "bob", PW, v5=v5)
    typing_sub(bob, "chat/typing/bob/+")
    dan = login(clients, chat, "dan", PW, v5=v5)
    typing_sub(dan, "chat/typing/dan/#")
    alice = login(clients, chat, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    alice.publish(typing("bob", "alice"), TYPING_ON, qos=0)
    m = expect_msg(bob, typing("bob", "alice"), TYPING_ON)
    assert m.qos == 0
    alice.publish(typing("bob", "alice"), TYPING_OFF, qos=1)
    m = expect_msg(bob, typing("bob", "alice"), TYPING_OFF)
    assert m.qos == 0, "a typing indicator goes out at the subscription's QoS 0"
    expect_none(dan)
    # Nobody else's typing topic: not to subscribe, not to publish as.
    want = refused_sub_code(v5)
    for f in ("chat/typing/bob/+", "chat/typing/+/alice", "chat/typing/+/+", "chat/typing/#"):
        assert dan.subscribe(f, qos=0) == want, f
    expect_none(alice)
    alice.publish(typing("bob", "dan"), TYPING_ON, qos=0)
    expect_refused(alice, "not_sender", typing("bob", "dan"))
    alice.publish(typing("nobody", "alice"), TYPING_ON, qos=0)
    expect_refused(alice, "no_recipient", typing("nobody", "alice"))
    alice.publish(typing("archiver", "alice"), TYPING_ON, qos=0)
    expect_refused(alice, "no_recipient", typing("archiver", "alice"))
    # bob blocks eve: her typing is refused like her messages.
    eve = login(clients, chat, "eve", PW, v5=v5)
    subscribe_ok(eve, "chat/notice/eve")
    eve.publish(typing("bob", "eve"), TYPING_ON, qos=0)
    expect_refused(eve, "blocked", typing("bob", "eve"))
    expect_none(bob)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_room_typing_reaches_members_only(store, chat, clients, v5):
    bob = login(clients, chat, "bob", PW, v5=v5)
    typing_sub(bob, "chat/roomtyping/lobby/+")
    carol = login(clients, chat, "carol", PW, v5=v5)
    typing_sub(carol, "chat/roomtyping/lobby/#")
    dan = login(clients, chat, "dan", PW, v5=v5)
    subscribe_ok(dan, "chat/notice/dan")
    want = refused_sub_code(v5)
    assert dan.subscribe("chat/roomtyping/lobby/#", qos=0) == want
    assert dan.subscribe("chat/roomtyping/+/#", qos=0) == want
    alice = login(clients, chat, "alice", PW, v5=v5)
    alice.publish(roomtyping("lobby", "alice"), TYPING_ON, qos=0)
    expect_msg(bob, roomtyping("lobby", "alice"), TYPING_ON)
    expect_msg(carol, roomtyping("lobby", "alice"), TYPING_ON)
    dan.publish(roomtyping("lobby", "dan"), TYPING_ON, qos=0)
    expect_refused(dan, "not_member", roomtyping("lobby", "dan"))
    expect_none(bob)
    expect_none(carol)
    # A member who leaves stops seeing it at once (every delivery is checked).
    store.remove_member("lobby", "carol")
    harness.wait_for(lambda: carol.subscribe("chat/roomtyping/lobby/#", qos=0) == want,
                     interval=0.1, what="carol out of lobby")
    alice.publish(roomtyping("lobby", "alice"), TYPING_OFF, qos=0)
    expect_msg(bob, roomtyping("lobby", "alice"), TYPING_OFF)
    expect_none(carol)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_typing_is_never_queued_for_an_offline_session(chat, clients, v5):
    """A persistent session that is away gets its messages when it comes
    back, and none of the typing sent meanwhile."""
    bob = login(clients, chat, "bob", PW, client_id="bob@phone", v5=v5, clean=False)
    assert bob.subscribe("chat/typing/bob/+", qos=0) == 0
    subscribe_ok(bob, "chat/inbox/bob/#")
    bob.close()
    alice = login(clients, chat, "alice", PW, v5=v5)
    for qos in (0, 1):
        alice.publish(typing("bob", "alice"), TYPING_ON, qos=qos)
    text = env(id="q1", type="text", body="while you were away")
    assert publish(alice, inbox("bob", "alice"), text) == 0
    alice.publish(typing("bob", "alice"), TYPING_OFF, qos=0)
    alice.barrier()
    back = login(clients, chat, "bob", PW, client_id="bob@phone", v5=v5, clean=False)
    expect_msg(back, inbox("bob", "alice"), text)
    expect_none(back)
    # The session still holds the typing subscription: live typing arrives.
    alice.publish(typing("bob", "alice"), TYPING_ON, qos=0)
    expect_msg(back, typing("bob", "alice"), TYPING_ON)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_typing_subscription_must_be_qos0(chat, clients, v5):
    alice = login(clients, chat, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    want = refused_sub_code(v5)
    for f, qos in (("chat/typing/alice/+", 1), ("chat/typing/alice/#", 2),
                   ("chat/roomtyping/lobby/+", 1)):
        assert alice.subscribe(f, qos=qos) == want, (f, qos)
        n = notice(alice)
        assert (n["code"], n["topic"]) == ("typing_qos", f), n
    assert alice.subscribe("chat/typing/alice/+", qos=0) == 0
    assert alice.subscribe("chat/roomtyping/lobby/+", qos=0) == 0
    bob = login(clients, chat, "bob", PW, v5=v5)
    bob.publish(typing("alice", "bob"), TYPING_ON, qos=1)
    expect_msg(alice, typing("alice", "bob"), TYPING_ON)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_typing_rate_limit(store, make_broker, clients, v5):
    """2 a second in bursts of 6, per account, in a bucket of its own: a
    message still goes right after (send rate here 1 a second, burst 2)."""
    for name in ("alice", "bob"):
        store.add_user(name)
    store.add_room("lobby", members=["alice", "bob"])
    b = make_broker(plugin_opts={"send_rate": 1, "send_burst": 2})
    bob = login(clients, b, "bob", PW, v5=v5)
    assert bob.subscribe("chat/typing/bob/+", qos=0) == 0
    assert bob.subscribe("chat/roomtyping/lobby/+", qos=0) == 0
    subscribe_ok(bob, "chat/inbox/bob/#")
    alice = login(clients, b, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    codes = []
    for i in range(6):
        codes.append(publish(alice, typing("bob", "alice"), TYPING_ON))
    assert codes == [0] * 6, codes
    code = publish(alice, roomtyping("lobby", "alice"), TYPING_ON)
    assert_denied_publish(alice, code, roomtyping("lobby", "alice"))
    n = expect_refused(alice, "rate_limited", roomtyping("lobby", "alice"))
    assert 0 < n["retry_ms"] <= 500, n
    for i in range(6):
        expect_msg(bob, typing("bob", "alice"), TYPING_ON)
    expect_none(bob)
    # Messages are not held back by typing.
    text = env(id="r1", type="text", body="typed it")
    assert publish(alice, inbox("bob", "alice"), text) == 0
    expect_msg(bob, inbox("bob", "alice"), text)
    # After the wait it names (and the plugin's clock, read once a tick), typing goes
    # again.
    time.sleep(n["retry_ms"] / 1000.0 + 0.25)
    assert publish(alice, typing("bob", "alice"), TYPING_OFF) == 0
    expect_msg(bob, typing("bob", "alice"), TYPING_OFF)


BAD_TYPING = [
    ("not json", b"typing"),
    ("empty", b""),
    ("no typing member", b'{"x":true}'),
    ("typing a number", b'{"typing":1}'),
    ("typing a string", b'{"typing":"true"}'),
    ("typing null", b'{"typing":null}'),
    ("typing twice", b'{"typing":true,"typing":false}'),
    ("an array", b"[true]"),
    ("trailing data", b'{"typing":true}x'),
    ("invalid utf-8", b'{"typing":true,"x":"\xff"}'),
    ("257 bytes", b'{"typing":true,"pad":"' + b"p" * 233 + b'"}'),
    ("an envelope", env(id="e1", type="text", body="x")),
]


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_bad_typing_payloads_are_refused(chat, clients, v5):
    bob = login(clients, chat, "bob", PW, v5=v5)
    assert bob.subscribe("chat/typing/bob/+", qos=0) == 0
    alice = login(clients, chat, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    assert len(BAD_TYPING[-2][1]) == 257
    for what, payload in BAD_TYPING:
        pace()
        code = publish(alice, typing("bob", "alice"), payload)
        assert_denied_publish(alice, code, what)
        n = expect_refused(alice, "invalid_envelope", typing("bob", "alice"))
        assert n["client"] == "alice", (what, n)
    pace()
    code = publish(alice, typing("bob", "alice"), TYPING_ON, retain=True)
    assert_denied_publish(alice, code, "retained typing")
    expect_refused(alice, "retained", typing("bob", "alice"))
    expect_none(bob)
    # 256 bytes, unknown members: fine.
    good = b'{"typing":true,"pad":"' + b"p" * 232 + b'"}'
    assert len(good) == 256
    assert publish(alice, typing("bob", "alice"), good) == 0
    expect_msg(bob, typing("bob", "alice"), good)


# ---- replies, reactions; the services' types ----

@pytest.mark.parametrize("v5", PROTOCOLS)
def test_replies_and_reactions_are_delivered(chat, clients, v5):
    bob = login(clients, chat, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/lobby/#")
    alice = login(clients, chat, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    good = [
        (inbox("bob", "alice"), env(id="p1", type="text", body="yes", reply_to="b-1", reply_from="bob")),
        (inbox("bob", "alice"), env(id="p2", type="reaction", ref="b-1", of="bob",
                                    emoji="\U0001F44D")),
        (inbox("bob", "alice"), env(id="p3", type="reaction", ref="b-1", of="bob",
                                    emoji="\U0001F44D", remove=True)),
        (room("lobby", "alice"), env(id="p4", type="reaction", ref="c-9", of="carol", emoji="+1")),
        (room("lobby", "alice"), env(id="p5", type="text", body="agreed", reply_to="c-9",
                                     reply_from="carol")),
    ]
    for topic, payload in good:
        assert publish(alice, topic, payload) == 0, topic
        expect_msg(bob, topic, payload)
    bad = [
        env(id="q1", type="text", body="x", reply_to="b-1"),
        env(id="q2", type="text", body="x", reply_to="b 1", reply_from="bob"),
        env(id="q3", type="reaction", ref="b-1", of="bob", emoji="a b"),
        env(id="q4", type="reaction", ref="b-1", of="bob", emoji="x" * 33),
        env(id="q5", type="reaction", ref="b-1", emoji="+1"),
        env(id="q6", type="reaction", ref="b-1", of="bob", emoji="+1", body="x"),
        env(id="q7", type="reaction", ref="b-1", of="bob", emoji="+1", remove="yes"),
    ]
    for payload in bad:
        code = publish(alice, inbox("bob", "alice"), payload)
        assert_denied_publish(alice, code, payload)
        n = expect_refused(alice, "invalid_envelope", inbox("bob", "alice"))
        assert n["ref"] == json.loads(payload)["id"], n
    expect_none(bob)


SERVICE_ONLY = [
    ("edit", env(id="x1", type="edit", ref="m-1", of="alice", body="new", by="alice")),
    ("delete", env(id="x2", type="delete", ref="m-1", of="alice", by="alice")),
    ("read", env(id="x3", type="read", **{"with": "bob"}, seq=5, unread=0)),
    ("event", env(id="x4", type="event", event="added", user="bob", by="alice")),
]


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_edit_delete_read_from_a_person_are_refused(chat, clients, v5):
    bob = login(clients, chat, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/inbox/bob/#")
    subscribe_ok(bob, "chat/room/lobby/#")
    svc = login(clients, chat, "archiver", PW, client_id="archiver@0", v5=v5)
    subscribe_ok(svc, "chat/inbox/#")
    subscribe_ok(svc, "chat/room/#")
    alice = login(clients, chat, "alice", PW, v5=v5)
    subscribe_ok(alice, "chat/notice/alice")
    subscribe_ok(alice, "chat/inbox/alice/#")
    for what, payload in SERVICE_ONLY:
        for topic in (inbox("bob", "alice"), room("lobby", "alice"), inbox("alice", "alice")):
            pace()
            code = publish(alice, topic, payload)
            assert_denied_publish(alice, code, "%s on %s" % (what, topic))
            n = expect_refused(alice, "invalid_envelope", topic)
            assert n["ref"] == json.loads(payload)["id"], n
        # Nor as the archiver: the sender level is the publisher.
        pace()
        code = publish(alice, inbox("alice", "archiver"), payload)
        assert_denied_publish(alice, code, what)
        expect_refused(alice, "not_sender", inbox("alice", "archiver"))
    expect_none(bob)
    expect_none(svc)


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_edit_delete_read_from_the_archiver_are_delivered(chat, clients, v5):
    alice = login(clients, chat, "alice", PW, client_id="alice@phone", v5=v5)
    subscribe_ok(alice, "chat/inbox/alice/#")
    subscribe_ok(alice, "chat/room/lobby/#")
    bob = login(clients, chat, "bob", PW, v5=v5)
    subscribe_ok(bob, "chat/room/lobby/#")
    dan = login(clients, chat, "dan", PW, v5=v5)
    subscribe_ok(dan, "chat/inbox/dan/#")
    svc = login(clients, chat, "archiver", PW, client_id="archiver@0", v5=v5)
    to_alice = [
        env(id="ed-1", type="edit", ref="m-1", of="alice", body="new", by="alice", **{"with": "bob"}),
        env(id="dl-1", type="delete", ref="m-2", of="alice", by="alice", **{"with": "bob"}),
        env(id="rd-1", type="read", **{"with": "bob"}, seq=57, unread=0),
        env(id="rd-2", type="read", room="lobby", seq=60, unread=3),
    ]
    for payload in to_alice:
        assert publish(svc, inbox("alice", "archiver"), payload) == 0
        expect_msg(alice, inbox("alice", "archiver"), payload)
    to_lobby = [
        env(id="ed-2", type="edit", ref="m-3", of="bob", body="fixed", by="bob"),
        env(id="dl-2", type="delete", ref="m-4", of="carol", by="alice"),
        env(id="ev-1", type="event", event="joined", user="carol"),
    ]
    for payload in to_lobby:
        assert publish(svc, room("lobby", "archiver"), payload) == 0
        expect_msg(alice, room("lobby", "archiver"), payload)
        expect_msg(bob, room("lobby", "archiver"), payload)
    # Never a text, a reaction, a receipt, a read marker to a room, or as
    # somebody else; dan sees nothing of it.
    refused = [
        (inbox("alice", "archiver"), env(id="n1", type="text", body="from the service")),
        (inbox("alice", "archiver"), env(id="n2", type="reaction", ref="m", of="bob", emoji="+1")),
        (inbox("alice", "archiver"), env(id="n3", type="receipt", ref="m", status="read")),
        (room("lobby", "archiver"), env(id="n4", type="read", room="lobby", seq=1, unread=0)),
        (room("lobby", "archiver"), env(id="n5", type="text", body="x")),
        (inbox("alice", "bob"), to_alice[2]),
        (inbox("nobody", "archiver"), to_alice[2]),
        (typing("alice", "archiver"), TYPING_ON),
    ]
    for topic, payload in refused:
        code = publish(svc, topic, payload)
        assert_denied_publish(svc, code, topic)
    expect_none(alice)
    expect_none(bob)
    expect_none(dan)
