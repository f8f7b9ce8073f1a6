"""Login rules of the plugin: name grammar, client id = <user>[@<device>],
passwords, disabled and unknown accounts, and no session takeover."""
import pytest

from plugin_util import (PROTOCOLS, assert_refused, connect, envelope, expect_msg,
                         expect_none, inbox, login, raw_connect, subscribe_ok)

LONG = "x" * 65535   # the longest string MQTT can carry
LONGEST = "z" + "9" * 30 + "-"   # 32 characters, the longest name


@pytest.fixture
def users(store, make_broker):
    """alice, bob, carol (users), dave (disabled), sensor1 (device), archiver
    (service); the broker starts once they exist."""
    pw = {}
    for name in ("alice", "bob", "carol"):
        pw[name] = store.add_user(name, password="pw-" + name + "-secret")
    pw["dave"] = store.add_user("dave", password="pw-dave-secret", enabled=False)
    pw["sensor1"] = store.add_user("sensor1", password="pw-sensor1-secret", kind="device")
    pw["archiver"] = store.add_user("archiver", password="pw-archiver-secret", kind="service")
    for name in (LONGEST, "0.a_b-c"):      # the grammar's edges
        pw[name] = store.add_user(name, password="pw-edge-secret")
    return pw, make_broker()


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_valid_logins_accepted(users, clients, v5):
    pw, b = users
    for user, cid in (("alice", "alice"), ("alice", "alice@phone"),
                      ("alice", "alice@" + "A-z_0.9" * 9 + "X"),   # 64-char device
                      ("bob", "bob@Laptop_2.home-1"), ("sensor1", "sensor1"),
                      ("archiver", "archiver"), ("archiver", "archiver@0"),
                      (LONGEST, LONGEST), (LONGEST, LONGEST + "@" + "D" * 64),
                      ("0.a_b-c", "0.a_b-c@X"), ("0.a_b-c", "0.a_b-c@.-_")):
        c = login(clients, b, user, pw[user], client_id=cid, v5=v5)
        c.close()


BAD_USERNAMES = [
    ("uppercase", "Alice"),
    ("empty", ""),
    ("33 chars", "a" * 33),
    ("leading underscore", "_alice"),
    ("leading dash", "-alice"),
    ("plus", "al+ce"),
    ("hash", "al#ce"),
    ("slash", "al/ce"),
    ("space", "al ice"),
    ("control char", "al\x01ce"),
    ("sql quote", "' OR '1'='1"),
    ("sql comment", "alice'--"),
    ("64 KiB", LONG),
    ("non-ascii", "alic\u00e9"),
]


@pytest.mark.parametrize("v5", PROTOCOLS)
@pytest.mark.parametrize("why,username", BAD_USERNAMES, ids=[w for w, _ in BAD_USERNAMES])
def test_bad_username_refused(users, clients, v5, why, username):
    pw, b = users
    # The client id follows the username (when that is a legal client id at
    # all), so only the name grammar can be what refuses it.
    cid = username if 0 < len(username) <= 65535 else "alice"
    _, code = connect(clients, b, username, pw["alice"], client_id=cid, v5=v5)
    # A 64 KiB name as client id too makes a CONNECT over the broker's
    # 68 KiB packet cap: closed before anyone reads it.
    assert_refused(code, v5, "username %s (%r)" % (why, username[:40]),
                   hangup=why in ("control char", "64 KiB"))
    # Nothing got broken for a good user.
    login(clients, b, "alice", pw["alice"], v5=v5).close()


def test_names_outside_grammar_in_store_still_refused(store, make_broker, clients):
    """A row an operator put in the store by hand with an illegal name (the
    schema does not check names) must still not be able to log in."""
    store.add_user("alice", password="pw-alice-secret")
    for name in ("Mallory", "ev+il", "ev#il", "ev/il", "_register"):
        store.add_user(name, password="pw-bad-secret")
    b = make_broker()
    for name in ("Mallory", "ev+il", "ev#il", "ev/il"):
        _, code = connect(clients, b, name, "pw-bad-secret", client_id=name)
        assert_refused(code, False, "stored user with illegal name %r" % name)
    # "_register" is the registration pseudo-user (it connects for
    # login_status whatever the setting), never the row of that name: it
    # gets no user's rights.
    r = login(clients, b, "_register", "pw-bad-secret", client_id="_register@abcdefgh")
    assert r.subscribe("chat/inbox/_register/#") == 0x80
    assert r.subscribe("chat/presence/+") == 0x80
    login(clients, b, "alice", "pw-alice-secret").close()


BAD_PASSWORDS = [
    ("wrong", "wrong-password"),
    ("empty", ""),
    ("missing", None),
    ("prefix", "pw-alice-secre"),
    ("extra char", "pw-alice-secret!"),
    ("case", "PW-ALICE-SECRET"),
    ("sql", "' OR '1'='1"),
    # (A NUL *after* the right password cannot be seen: the broker hands
    # plugins the password as a C string.)
    ("leading nul", "\x00pw-alice-secret"),
    ("64 KiB", LONG),
    ("other user's", "pw-bob-secret"),
]


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_bad_passwords_refused(users, clients, v5):
    pw, b = users
    # Verified once first: a throttle may refuse an account that never logged
    # in after a run of failures, but not credentials it has seen work.
    login(clients, b, "alice", pw["alice"], v5=v5).close()
    for why, password in BAD_PASSWORDS:
        _, code = connect(clients, b, "alice", password, v5=v5)
        assert_refused(code, v5, "alice with %s password" % why)
    # No username at all, with and without a password.
    _, code = connect(clients, b, None, None, client_id="alice", v5=v5)
    assert_refused(code, v5, "no username, no password")
    code = raw_connect(b.port, "alice", None, None, v5=v5)
    assert_refused(code, v5, "raw CONNECT without username")
    # alice verified before and after the failures: still fine.
    login(clients, b, "alice", pw["alice"], v5=v5).close()


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_disabled_unknown_and_service_wrong_password_refused(users, clients, v5):
    pw, b = users
    _, code = connect(clients, b, "dave", pw["dave"], v5=v5)
    assert_refused(code, v5, "disabled user dave with his right password")
    _, code = connect(clients, b, "nobody", "whatever-pass", v5=v5)
    assert_refused(code, v5, "unknown user")
    _, code = connect(clients, b, "archiver", "not-the-password", v5=v5)
    assert_refused(code, v5, "service account with a wrong password")


BAD_CLIENT_IDS = [
    ("other user", "bob"),
    ("other user's device", "bob@phone"),
    ("prefix of name", "alic"),
    ("name plus char", "alicex"),
    ("uppercase", "Alice"),
    ("empty device", "alice@"),
    ("no user part", "@phone"),
    ("device too long", "alice@" + "d" * 65),
    ("device space", "alice@my phone"),
    ("device slash", "alice@ph/one"),
    ("device plus", "alice@ph+one"),
    ("device hash", "alice@ph#one"),
    ("device quote", "alice@' OR '1'='1"),
    ("second at", "alice@phone@x"),
    ("device non-ascii", "alice@t\u00e9l"),
    ("slash in user part", "alice/x"),
    ("control char", "alice@\x01"),
    ("register pseudo-user", "_register@abcdefgh"),
]


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_bad_client_ids_refused(users, clients, v5):
    pw, b = users
    for why, cid in BAD_CLIENT_IDS:
        _, code = connect(clients, b, "alice", pw["alice"], client_id=cid, v5=v5)
        assert_refused(code, v5, "alice with client id %s (%r)" % (why, cid), hangup=(why == "control char"))
    # An empty client id: 3.1.1 clean session / MQTT 5 get a broker-made id,
    # which is not <user>[@device] either.
    _, code = connect(clients, b, "alice", pw["alice"], client_id="", v5=v5)
    assert_refused(code, v5, "alice with an empty client id")
    login(clients, b, "alice", pw["alice"], v5=v5).close()


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_other_users_client_id_does_not_kick(users, clients, v5):
    """bob (with his own right password) claims alice's client ids: refused,
    and alice's live connection stays up and keeps receiving."""
    pw, b = users
    alice = login(clients, b, "alice", pw["alice"], v5=v5)
    subscribe_ok(alice, "chat/inbox/alice/#")
    phone = login(clients, b, "alice", pw["alice"], client_id="alice@phone", v5=v5)
    for cid in ("alice", "alice@phone"):
        _, code = connect(clients, b, "bob", pw["bob"], client_id=cid, v5=v5)
        assert_refused(code, v5, "bob claiming client id %r" % cid)
    carol = login(clients, b, "carol", pw["carol"], v5=v5)
    e = envelope("still there?")
    carol.publish(inbox("alice", "carol"), e)
    expect_msg(alice, inbox("alice", "carol"), e)
    assert not alice.disconnected.is_set(), "alice was kicked by bob's attempt to use her client id"
    assert not phone.disconnected.is_set(), "alice@phone was kicked by bob's attempt"
    phone.barrier()


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_queued_messages_not_taken(users, clients, v5):
    """alice's persistent session holds a queued message; bob's attempt to
    resume it with her client id is refused and she still gets it."""
    pw, b = users
    alice = login(clients, b, "alice", pw["alice"], v5=v5, clean=False)
    subscribe_ok(alice, "chat/inbox/alice/#")
    alice.close()
    carol = login(clients, b, "carol", pw["carol"], v5=v5)
    e = envelope("queued for alice")
    carol.publish(inbox("alice", "carol"), e)
    thief, code = connect(clients, b, "bob", pw["bob"], client_id="alice", v5=v5, clean=False)
    assert_refused(code, v5, "bob resuming alice's persistent session")
    assert thief.messages.empty(), "bob received alice's queued message"
    alice2 = login(clients, b, "alice", pw["alice"], v5=v5, clean=False)
    expect_msg(alice2, inbox("alice", "carol"), e)
    expect_none(alice2)

