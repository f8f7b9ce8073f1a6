"""test_client_reasons.py - refusals say why (issue 13, items 3 and 4).

A refused message comes with a notice on chat/notice/<me> (code, ref,
topic) that only the refused connection gets, and build/mqchat prints the
one reason ("not sent: carol blocks you") and exits 1. A refused login is
explained by login_status over a _register connection ("too many attempts:
wait N s", "account disabled", "wrong user name or password")."""
import json
import re
import secrets
import subprocess
import uuid

import pytest

import harness
from client_util import AUTH, FAILED, OK, USAGE, Listener, client_env, mqchat, texts, users


@pytest.fixture
def world(store, make_broker):
    users(store, "alice", "bob", "carol")
    store.add_room("lab", ["bob", "carol"])
    store.block("carol", "alice")
    return make_broker()


def reasons(r):
    """The 'not sent: ...' lines of a run's stderr."""
    return [ln for ln in r.err.splitlines() if ln.startswith("not sent:")]


# ---- the bundled client: one reason per refused message, exit 1 ----

def test_send_names_the_reason(world, datadir):
    cases = [
        (["carol", "let me in"], "not sent: carol blocks you"),
        (["nobody", "hi"], "not sent: no such user nobody"),
        (["--room", "lab", "hello lab"], "not sent: you are not a member of lab"),
    ]
    for args, line in cases:
        r = mqchat(world, datadir, "alice", "send", *args)
        assert r.rc == FAILED, (args, r)
        assert r.err.splitlines() == [line], (args, r)
        assert r.out == "", (args, r)
    # too large an envelope: the client says so itself, before sending
    r = mqchat(world, datadir, "alice", "send", "bob", stdin="y" * 65530)
    assert r.rc == USAGE, r
    assert r.err.splitlines() == [
        "Error: message too large: 65,530 bytes of text; at most 65,458 fit in one message"], r
    # accepted: no reason line, the id on stdout
    r = mqchat(world, datadir, "alice", "send", "bob", "fine")
    assert r.rc == OK and r.err == "" and len(r.out.split()) == 1, r


def test_send_json_gives_the_code(world, datadir):
    r = mqchat(world, datadir, "alice", "--json", "send", "carol", "x")
    assert r.rc == FAILED, r
    out = json.loads(r.out)
    assert out["to"] == "carol" and out["status"] == "refused" and out["code"] == "blocked", r
    assert reasons(r) == ["not sent: carol blocks you"], r


def test_send_lines_says_which_line(store, make_broker, datadir):
    """A server set below the client's 65,536 bytes refuses what is over its
    own limit (too_large); the good lines still go."""
    users(store, "alice", "bob")
    b = make_broker(plugin_opts={"max_payload": 1024})
    with Listener(b, datadir, "bob", timeout=2) as bob:
        bob.wait_ready()
        r = mqchat(b, datadir, "alice", "send", "--lines", "bob",
                   stdin="good a\n" + "y" * 2000 + "\ngood b\n")
        assert r.rc == FAILED, r
        assert reasons(r) == ["not sent: message too large for the server (64 KiB at most) "
                              "(line 2)"], r
        assert len(r.out.split()) == 2, r
        bob.wait_texts(2)
        assert [t[2] for t in texts(bob.lines())] == ["good a", "good b"]


def test_chat_prints_the_reason_instead_of_losing_the_line(store, make_broker, datadir):
    users(store, "alice", "bob", "carol")
    store.block("carol", "alice")
    b = make_broker(plugin_opts={"max_payload": 1024})
    # a peer who can get no line is said before the first one
    r = mqchat(b, datadir, "alice", "chat", "carol", stdin="hello carol\n")
    assert (r.rc, r.err) == (FAILED, "Error: carol blocks you\n"), r
    r = mqchat(b, datadir, "alice", "chat", "nobody", stdin="one\ntwo\n")
    assert (r.rc, r.err) == (FAILED, "Error: no account named 'nobody'\n"), r
    # a line the server refuses (over its own limit here) says why, and
    # the others still go
    with Listener(b, datadir, "bob", timeout=2) as bob:
        bob.wait_ready()
        r = mqchat(b, datadir, "alice", "chat", "bob", device="pipe",
                   stdin="one\n" + "y" * 2000 + "\ntwo\n")
        assert r.rc == FAILED, r
        assert reasons(r) == ["not sent: message too large for the server (64 KiB at most)"], r
        bob.wait_texts(2)
        assert [t[2] for t in texts(bob.lines())] == ["one", "two"]


def test_sending_too_fast(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker(plugin_opts={"send_rate": 2, "send_burst": 3})
    lines = "".join("line %d\n" % i for i in range(8))
    r = mqchat(b, datadir, "alice", "send", "--lines", "bob", stdin=lines)
    assert r.rc == FAILED, r
    refused = reasons(r)
    # a burst of 3, then 2 a second: most of 8 lines at once are refused
    assert 1 <= len(r.out.split()) <= 5 and len(r.out.split()) + len(refused) == 8, r
    for ln in refused:
        m = re.match(r"^not sent: sending too fast, retry in (\d+)\.(\d) s \(line \d\)$", ln)
        assert m and int(m.group(1)) * 10 + int(m.group(2)) > 0, r
    # one message over the rate: the one reason, exit 1
    def refused_alone():
        r = mqchat(b, datadir, "alice", "send", "bob", "one more")
        if r.rc == OK:
            return None       # the bucket refilled meanwhile: try again
        assert r.rc == FAILED, r
        return r
    r = None
    for _ in range(10):
        mqchat(b, datadir, "alice", "send", "--lines", "bob", stdin="a\nb\nc\nd\n")
        r = refused_alone()
        if r:
            break
    assert r, "never refused"
    assert len(r.err.splitlines()) == 1, r
    assert re.match(r"^not sent: sending too fast, retry in \d+\.\d s$", r.err.strip()), r


def test_rpc_over_the_rate_says_so(store, make_broker, datadir):
    users(store, "alice", "bob")
    b = make_broker(plugin_opts={"send_rate": 1, "send_burst": 1})
    # No archiver: an accepted request would time out; a refused one says why.
    for _ in range(10):
        mqchat(b, datadir, "alice", "send", "bob", "uses the one token")
        r = mqchat(b, datadir, "alice", "blocked", timeout=1)
        if r.rc == FAILED:
            break
    assert r.rc == FAILED, r
    assert re.match(r"^Error: request not sent: sending too fast, retry in \d+\.\d s$",
                    r.err.strip()), r


# ---- the notice itself, seen by a plain MQTT 3.1.1 client ----

def notice_of(c, timeout=harness.DEFAULT_TIMEOUT):
    m = c.get(timeout)
    return m.topic, json.loads(m.payload)


def test_mqtt311_client_gets_the_notice(world, clients):
    a = clients(world, "alice", "password-xxxx", client_id="alice@sensor")
    assert a.connect() == 0
    assert a.subscribe("chat/notice/alice") < 0x80
    cases = [
        ("chat/inbox/nobody/alice", harness.envelope(id="m-0001"), False, "no_recipient", "m-0001"),
        ("chat/inbox/carol/alice", harness.envelope(id="m-0002"), False, "blocked", "m-0002"),
        ("chat/room/lab/alice", harness.envelope(id="m-0003"), False, "not_member", "m-0003"),
        ("chat/inbox/bob/alice", harness.envelope(id="m-0004"), True, "retained", "m-0004"),
        ("chat/inbox/bob/alice", "not an envelope", False, "invalid_envelope", None),
        ("chat/inbox/bob/alice", json.dumps({"id": "m-0006", "type": "bogus"}), False,
         "invalid_envelope", "m-0006"),
        ("chat/inbox/bob/carol", harness.envelope(id="m-0007"), False, "not_sender", "m-0007"),
    ]
    for topic, payload, retain, code, ref in cases:
        a.publish(topic, payload, retain=retain)
        ntopic, n = notice_of(a)
        assert ntopic == "chat/notice/alice", (code, ntopic)
        assert n["type"] == "refused" and n["code"] == code, (code, n)
        assert n["ref"] == ref and n["topic"] == topic, (code, n)
        assert n["client"] == "alice@sensor", (code, n)
        assert isinstance(n["message"], str) and n["message"], n
    # an accepted message gets none
    a.publish("chat/inbox/bob/alice", harness.envelope())
    a.expect_none()


def test_notice_names_the_device_that_sent(world, clients):
    # Every subscribed connection of the account gets it; "client" tells
    # the device that sent from its siblings.
    phone = clients(world, "alice", "password-xxxx", client_id="alice@phone")
    assert phone.connect() == 0
    assert phone.subscribe("chat/notice/alice") < 0x80
    a = clients(world, "alice", "password-xxxx", client_id="alice@laptop")
    assert a.connect() == 0
    assert a.subscribe("chat/notice/alice") < 0x80
    a.publish("chat/inbox/carol/alice", harness.envelope(id="m-0100"))
    for c in (a, phone):
        ntopic, n = notice_of(c)
        assert ntopic == "chat/notice/alice" and n["code"] == "blocked", n
        assert n["ref"] == "m-0100" and n["client"] == "alice@laptop", n
    a.expect_none()
    phone.expect_none()


def test_nobody_else_reads_or_writes_my_notices(world, clients):
    a = clients(world, "alice", "password-xxxx", client_id="alice@laptop")
    assert a.connect() == 0
    assert a.subscribe("chat/notice/alice") < 0x80
    bob = clients(world, "bob", "password-xxxx", client_id="bob@laptop")
    assert bob.connect() == 0
    assert bob.subscribe("chat/notice/bob") < 0x80
    for f in ("chat/notice/alice", "chat/notice/+", "chat/notice/#"):
        assert bob.subscribe(f) >= 0x80, f
    bob.publish("chat/notice/alice", json.dumps({"type": "refused", "ref": "x", "code": "blocked"}))
    # bob is told his publish was refused; alice gets nothing
    ntopic, n = notice_of(bob)
    assert ntopic == "chat/notice/bob" and n["code"] == "topic_not_allowed", n
    a.expect_none()
    # alice's refusal is not seen by bob, though he tried to subscribe
    a.publish("chat/inbox/carol/alice", harness.envelope(id="m-0200"))
    assert notice_of(a)[1]["ref"] == "m-0200"
    bob.expect_none()


# ---- why a login was refused ----

def test_wrong_password(world, datadir):
    r = mqchat(world, datadir, "alice", "send", "bob", "x", password="wrong-password")
    assert r.rc == AUTH, r
    assert r.err.splitlines() == ["Error: login as alice refused: wrong user name or password"], r
    # an unknown name reads the same (nothing says which names exist)
    r = mqchat(world, datadir, "nobody", "send", "bob", "x")
    assert r.rc == AUTH, r
    assert r.err.splitlines() == ["Error: login as nobody refused: wrong user name or password"], r


class Status:
    """login_status asked over one _register connection (raw paho)."""

    def __init__(self, clients, broker):
        self.cid = "_register@" + secrets.token_hex(8)
        self.c = clients(broker, "_register", "any", client_id=self.cid)
        assert self.c.connect() == 0
        assert self.c.subscribe("chat/register/%s/resp" % self.cid) < 0x80

    def ask(self, user):
        rid = uuid.uuid4().hex
        self.c.publish("chat/register/%s/req" % self.cid,
                       {"id": rid, "op": "login_status", "user": user})
        while True:
            resp = json.loads(self.c.get().payload)
            if resp.get("id") == rid:
                return resp


def wrong_login(broker, user):
    c = harness.Client(broker.port, user, "not-the-password", client_id=user + "@x")
    try:
        return c.connect()
    finally:
        c.close()


def test_throttled_login_says_how_long_to_wait(world, clients, datadir):
    st = Status(clients, world)
    # Failures only count once a lock is over: 3 failures lock the name for
    # 0.5 s, each more doubles it. Six make 4 s.
    for _ in range(6):
        harness.wait_for(lambda: st.ask("bob")["status"] != "throttled", 10,
                         what="bob's lock to end")
        assert wrong_login(world, "bob") == 5
    s = st.ask("bob")
    assert s["status"] == "throttled" and s["retry_ms"] > 0, s
    # the right password is refused too while the name is locked
    r = mqchat(world, datadir, "bob", "send", "alice", "x")
    assert r.rc == AUTH, r
    m = re.match(r"^Error: login as bob refused: too many attempts: wait (\d+) s$", r.err.strip())
    assert m and 1 <= int(m.group(1)) <= 4, r


def test_disabled_account_with_the_right_password(store, make_broker, datadir):
    users(store, "alice", "dave")
    store.set_enabled("dave", False)
    b = make_broker()
    # with a wrong password nothing is told
    r = mqchat(b, datadir, "dave", "send", "alice", "x", password="wrong-password")
    assert r.rc == AUTH, r
    assert r.err.splitlines() == ["Error: login as dave refused: wrong user name or password"], r
    # the right one: the account is disabled (and this address may know it
    # for a while, whatever password it tries next)
    r = mqchat(b, datadir, "dave", "send", "alice", "x")
    assert r.rc == AUTH, r
    assert r.err.splitlines() == ["Error: login as dave refused: account disabled: ask the operator"], r


def test_no_status_falls_back_to_both_causes(world, clients, datadir):
    # _register is limited to 5 connections a minute from one address
    for i in range(5):
        c = clients(world, "_register", "any", client_id="_register@" + secrets.token_hex(8))
        assert c.connect() == 0
        c.close()
    r = mqchat(world, datadir, "alice", "send", "bob", "x", password="wrong-password")
    assert r.rc == AUTH, r
    assert r.err.splitlines() == [
        "Error: login as alice refused (wrong user name or password, or too many attempts)"], r


def test_names_checked_before_connecting(world, datadir):
    port = harness.free_port()        # nothing listens: the check comes first
    cases = [
        (["--user", "Alice"], "Error: invalid user name 'Alice': upper-case 'A': names are "
                              "lower-case"),
        (["--user", "_alice"], "Error: invalid user name '_alice': it must start with a letter "
                               "or a digit, not '_'"),
        (["--user", "a" * 33], "Error: invalid user name '%s': 33 characters, at most 32" % ("a" * 33)),
        (["--user", "al@ce"], "Error: invalid user name 'al@ce': '@' is not allowed"),
        (["--device", "my phone"], "Error: invalid device name 'my phone': a space is not allowed"),
        (["--device", "p/1"], "Error: invalid device name 'p/1': '/' is not allowed"),
        (["--device", "d" * 65], "Error: invalid device name '%s': 65 characters, at most 64" % ("d" * 65)),
    ]
    for flags, err in cases:
        a = [harness.CLIENT, "--port", str(port), "--host", "127.0.0.1", "--device", "test"]
        if "--user" not in flags:
            a += ["--user", "alice"]
        p = subprocess.run(a + flags + ["send", "bob", "x"], capture_output=True, timeout=30,
                           env=client_env(datadir), start_new_session=True)
        assert p.returncode == USAGE, (flags, p)
        assert p.stderr.decode().startswith(err), (flags, p.stderr)
